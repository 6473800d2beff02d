/*  evrun-cli: the user's command line.  main() only picks the subcommand;
    each lives in its own cli_*.c file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} s_commands[] = {
    { "validate", evr_cli_validate, "check pipeline files; --print shows the normalized spec" },
};

static void
s_usage(FILE *out)
{
    fprintf(out, "usage: evrun-cli COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        fprintf(out, "  %-10s %s\n", s_commands[i].name, s_commands[i].summary);
    fprintf(out, "\n'evrun-cli COMMAND --help' describes a command.\n"
                 "Not yet built: run, submit, cancel, pause, resume, status, jobs, logs,\n"
                 "runners, drain, up, down (they arrive with the broker).\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        s_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("evrun-cli %s\n", EVR_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (!strcmp(argv[1], s_commands[i].name))
            return s_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "evrun-cli: unknown command \"%s\"\n\n", argv[1]);
    s_usage(stderr);
    return 2;
}
