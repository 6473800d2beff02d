/*  evrun-tail: follows the event stream live, with late-join backfill
    (evr_follow).  main() only parses options and wires things. */
#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_bus.h"
#include "evr_follow.h"
#include "evr_getopt.h"

static volatile sig_atomic_t s_stop;

static void
s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static void
s_help(FILE *out)
{
    fprintf(out,
            "usage: evrun-tail (--job ID | --pipeline NAME | --all) [--events] [--json]\n"
            "                  [--from-start] [--step S] [options]\n"
            "\n"
            "Prints jobs' output live as `job/step | line`.  It subscribes to the broker's\n"
            "event stream first, then asks for what was stored before (history), so every\n"
            "line is printed exactly once, in order, however late it starts.  A broker\n"
            "that does not answer within --timeout-ms (busy, stopped, restarting) is said\n"
            "once on stderr and asked again a second after each wait, each wait twice the\n"
            "last (up to 8x --timeout-ms, at most 60 s); the lines come when it answers.\n"
            "A step that did not succeed gets a line (`job/step > failed (exit 1)`,\n"
            "`job/step > skipped: why`), and so does a job that did not (`job ID failed:\n"
            "why`).  A line with no newline yet is printed once it waited 100 ms, and\n"
            "more of it goes on it until another line comes first.  A reader of stdout\n"
            "that goes away (`| head`) ends it as SIGINT does.\n"
            "\n"
            "  --job ID             one job, from its first line; exits when the job ends,\n"
            "                       with its status (started after the end: prints the\n"
            "                       whole output and exits)\n"
            "  --pipeline NAME      the jobs of one pipeline (runs until interrupted)\n"
            "  --all                every job (runs until interrupted)\n"
            "  --from-start         --pipeline/--all: also the last 100 jobs that finished\n"
            "                       before (else only the ones running now are backfilled)\n"
            "  --events             lifecycle events too (step started, finished...)\n"
            "  --step S             only step S (a matrix step's name: all its\n"
            "                       combinations; a name the job has no step for:\n"
            "                       exit 2, naming its steps)\n"
            EVR_CLI_COMMON_HELP
            "  --version            print the version, exit (given alone)\n"
            "\n"
            "exit status: 0 the job succeeded (without --job: stopped by SIGINT or SIGTERM);\n"
            "1 the job failed, was cancelled or timed out, or --job was interrupted before\n"
            "it ended; 2 usage, no such job, the broker unreachable, or stdout not written\n");
}

static void
s_help_cb(FILE *out, const void *arg)
{
    (void) arg;
    s_help(out);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "job", required_argument, NULL, 'j' },
        { "pipeline", required_argument, NULL, 'p' }, { "all", no_argument, NULL, 'a' },
        { "events", no_argument, NULL, 'e' }, { "from-start", no_argument, NULL, 'F' },
        { "step", required_argument, NULL, 's' }, { NULL, 0, NULL, 0 },
    };
    evr_cli_t cli = { .prog = "evrun-tail" };
    evr_follow_opts_t fo = { .follow = true, .job_prefix = true, .job_end = true,
                             .queued_note = true, .out = stdout };
    char *job = NULL;
    bool all = false;
    int c, status = 0;
    while ((c = evr_getopt("evrun-tail", argc, argv, "h", opts)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        switch (c) {
        case 'j':
            free(job);
            if (!(job = evr_client_job_arg(cli.prog, optarg)))
                status = 2;
            break;
        case 'p':
            fo.pipeline = optarg;
            if (!evr_cli_pipeline_arg(cli.prog, "--pipeline", optarg))
                status = 2;
            break;
        case 'a': all = true; break;
        case 'e': fo.events = true; break;
        case 'F': fo.from_start = true; break;
        case 's':
            fo.step = optarg;
            if (!evr_cli_step_arg(cli.prog, optarg))
                status = 2;
            break;
        case 'h': s_help(stdout); return 0;
        default: status = 2; break;
        }
    }
    if (!status && optind != argc) {
        const char *a = argv[optind];
        char up[EVR_ULID_LEN + 1] = "";
        for (size_t i = 0; a[i] && i < EVR_ULID_LEN; i++)   /* a job id, any case? */
            up[i] = (char) toupper((unsigned char) a[i]);
        bool id = strlen(a) == EVR_ULID_LEN && !evr_ulid_problem(up);
        fprintf(stderr, "evrun-tail: unexpected argument \"%s\"%s%s%s\n", a,
                id ? " (a job: evrun-tail --job " : "", id ? a : "", id ? ")" : "");
        status = 2;
    }
    if (!status && (job != NULL) + (fo.pipeline != NULL) + all != 1) {
        fprintf(stderr, "evrun-tail: give exactly one of --job ID, --pipeline NAME, --all\n");
        status = 2;
    }
    if (!status && job && fo.from_start) {   /* not taken in silence: it does nothing there */
        fprintf(stderr, "evrun-tail: --from-start goes with --pipeline or --all (--job prints "
                "the job from its first line)\n");
        status = 2;
    }
    if (status) {
        evr_cli_brief("evrun-tail", s_help_cb, NULL);
        free(job);
        return status;
    }
    /* from before the connect: a Ctrl-C then is not lost (a script's
       background command starts with SIGINT ignored) or fatal; after the
       settings, whose read would go on after a counted signal */
    if ((status = evr_cli_settings(&cli))) {
        free(job);
        evr_cli_done(&cli);
        return status;
    }
    evr_cli_on_stop(s_on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (!(status = evr_cli_connect(&cli))) {
        fo.job = job;
        fo.json = cli.json;
        status = evr_follow(cli.prog, cli.cfg, cli.client, &fo, &s_stop);
        if (job && s_stop && status == 0)
            status = 1;     /* interrupted before the job ended */
    }
    free(job);
    evr_cli_done(&cli);
    return status;
}
