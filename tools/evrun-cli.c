/*  evrun-cli: the user's command line.  main() only picks the subcommand;
    each lives in its own cli_*.c file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "evr_diag.h"
#include "evr_source.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} s_commands[] = {
    { "run", evr_cli_run, "submit a pipeline file; --follow prints its output live" },
    { "submit", evr_cli_submit, "submit a pipeline file and return" },
    { "start", evr_cli_start, "start a registered pipeline by name (-a, --follow like run)" },
    { "pipelines", evr_cli_pipelines, "list the registered pipelines, their schedules and load errors" },
    { "status", evr_cli_status, "one job's state" },
    { "jobs", evr_cli_jobs, "list jobs (--pipeline, --status, --limit)" },
    { "logs", evr_cli_logs, "a job's output (--follow, --step)" },
    { "artifacts", evr_cli_artifacts, "fetch a job's artifact files from the broker (--step, -o, --wait)" },
    { "cancel", evr_cli_cancel, "cancel a queued or running job" },
    { "pause", evr_cli_pause, "pause a queued or running job" },
    { "resume", evr_cli_resume, "resume a paused job" },
    { "runners", evr_cli_runners, "list runners" },
    { "drain", evr_cli_drain, "let a runner finish its jobs and take no new ones" },
    { "prune", evr_cli_prune, "run the broker's retention now (--dry-run counts only)" },
    { "validate", evr_cli_validate, "check pipeline files; --print shows the normalized spec" },
    { "up", evr_cli_up, "start a local broker, runners (and podman) in the background" },
    { "down", evr_cli_down, "stop what up started" },
    { "token", evr_cli_token, "print a bearer token for evrun-gateway's HTTP API" },
    { "hook-token", evr_cli_hook_token, "print the token of a pipeline's webhook (POST /hooks/NAME)" },
};

static void
s_usage(FILE *out)
{
    fprintf(out, "usage: evrun-cli COMMAND [ARGS...]\n"
                 "       evrun-cli [OPTIONS...] COMMAND [ARGS...]   (the command's options)\n"
                 "\ncommands:\n");
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        fprintf(out, "  %-10s %s\n", s_commands[i].name, s_commands[i].summary);
    fprintf(out, "\n'evrun-cli COMMAND --help' (or 'evrun-cli help COMMAND') describes a "
                 "command; 'evrun-cli --version' prints the version.\n"
                 "exit status: 0 ok; 1 the job failed, the command was refused, or (validate)\n"
                 "a pipeline file is invalid; 2 usage or connection errors, a bad pipeline\n"
                 "file (run, submit), a stdout that could not be written, and for logs\n"
                 "and artifacts no such job; 130 a --follow or --wait interrupted\n"
                 "(Ctrl-C) before the job ended\n"
                 "--json: stdout has JSON objects only, one per line; messages go to stderr\n");
}

/*  An unknown command, said on one line (the whole usage after it hid
    it): a near-miss, or another tool's word for one, is named; else the
    commands are. */
static void
s_unknown(const char *prog, const char *word)
{
    static const char *const other[][2] = { { "ls", "jobs" },       { "ps", "jobs" },
                                            { "list", "jobs" },     { "check", "validate" },
                                            { "lint", "validate" }, { "tail", "logs" } };
    size_t n = sizeof s_commands / sizeof s_commands[0];
    const char *names[sizeof s_commands / sizeof s_commands[0]];
    for (size_t i = 0; i < n; i++)
        names[i] = s_commands[i].name;
    const char *near = evr_diag_near(word, names, n);
    for (size_t i = 0; !near && i < sizeof other / sizeof other[0]; i++)
        if (!strcmp(word, other[i][0]))
            near = other[i][1];
    if (near) {
        fprintf(stderr, "%s: unknown command \"%s\"; did you mean %s? (evrun-cli --help lists "
                "the commands)\n", prog, word, near);
        return;
    }
    if (word[0] == '-')   /* options given, none of them followed by a command */
        fprintf(stderr, "%s: no command after the option %s: expected one of", prog, word);
    else
        fprintf(stderr, "%s: unknown command \"%s\": expected one of", prog, word);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s %s", i ? "," : "", names[i]);
    fprintf(stderr, " (evrun-cli --help describes them)\n");
}

/*  A command's end: what it printed to stdout and did not write (a full
    disk, /dev/full) is said, exit 2, where the command said nothing and
    exited 0; one that failed already said why (logs, run and submit say
    their write error themselves). */
static int
s_done(const char *name, int status)
{
    errno = 0;
    if ((fflush(stdout) == 0 && !ferror(stdout)) || status)
        return status;
    /* a write that failed before, inside a print, took its errno along */
    fprintf(stderr, "evrun-cli %s: writing to stdout: %s\n", name,
            errno ? strerror(errno) : "a write failed, the output is cut short");
    return 2;
}

int
main(int argc, char **argv)
{
    evr_source_locale();    /* a copy: source's names past ASCII */
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        /* help --help (and -h, help): help too, not "no command after the
           option --help", exit 2 */
        if (argc == 2 || (argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")
                                        || !strcmp(argv[2], "help")))) {
            s_usage(stdout);
            return 0;
        }
        /* help COMMAND: that command's --help */
        for (size_t i = 0; argc == 3 && i < sizeof s_commands / sizeof s_commands[0]; i++)
            if (!strcmp(argv[2], s_commands[i].name)) {
                char *args[] = { argv[2], (char *) "--help", NULL };
                return s_commands[i].fn(2, args);
            }
        if (argc == 3) {
            char *prog = evr_asprintf("evrun-cli %s", argv[1]);
            s_unknown(prog, argv[2]);
            free(prog);
        }
        else
            fprintf(stderr, "evrun-cli %s: unexpected arguments after \"%s\": expected one "
                    "command (evrun-cli --help lists them)\n", argv[1], argv[2]);
        return 2;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("evrun-cli %s\n", EVR_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (!strcmp(argv[1], s_commands[i].name))
            return s_done(s_commands[i].name, s_commands[i].fn(argc - 1, argv + 1));
    /* options before the command (`evrun-cli --broker EP status ID`, as
       docker and kubectl take them): the first command named goes first,
       and the command's own parser takes or refuses the options */
    for (int k = 2; argv[1][0] == '-' && k < argc; k++)
        for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
            if (!strcmp(argv[k], s_commands[i].name)) {
                char *cmd = argv[k];
                memmove(argv + 2, argv + 1, (size_t) (k - 1) * sizeof *argv);
                argv[1] = cmd;
                return s_done(s_commands[i].name, s_commands[i].fn(argc - 1, argv + 1));
            }
    s_unknown("evrun-cli", argv[1]);
    return 2;
}
