/*  cli_pipelines.c: the registered pipelines in evrun-cli: `pipelines`
    lists the files of the broker's pipelines directory (their state,
    schedule and load error), `start NAME` starts one by name.  Each sends
    one request; start follows or waits for its job as `run` does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_bus.h"

static int
s_print_pipeline(const evr_msg_t *m, void *arg)
{
    const evr_cli_t *cli = arg;
    if (cli->json) {
        evr_cli_json(m);
        return 0;
    }
    char next[32] = "-", conc[16] = "-", last[64] = "-";
    if (m->next_run)
        evr_time_format(m->next_run, next, sizeof next);
    if (m->concurrency)
        snprintf(conc, sizeof conc, "%u", m->concurrency);
    if (m->last_job)
        snprintf(last, sizeof last, "%s %s", m->last_job, m->last_status ? m->last_status : "");
    printf("%-20s  %-24s  %4s  %4u  %4u  %-37s  %s\n", m->pipeline[0] ? m->pipeline : "-",
           m->file ? m->file : "-", conc, m->waiting, m->running, last, next);
    for (uint32_t i = 0; i < m->arg_specs.n; i++) {
        const evr_arg_t *a = evr_reclist_at(&evr_arg_type, &m->arg_specs, i);
        printf("%s%s", i ? ", " : "    args: ", a->name);
        if (a->def)
            printf("=\"%s\"", a->def);
        else
            printf(" (required)");
    }
    if (m->arg_specs.n)
        printf("\n");
    if (m->schedule)
        printf("    schedule \"%s\" %s; last fire: %s%s%s\n", m->schedule,
               m->timezone ? m->timezone : "UTC", m->fire_status ? m->fire_status : "none yet",
               m->fire_job ? ", job " : "", m->fire_job ? m->fire_job : "");
    if (m->load_error) {
        printf("    load error:\n");
        for (const char *p = m->load_error; *p;) {
            const char *nl = strchr(p, '\n');
            int n = nl ? (int) (nl - p) : (int) strlen(p);
            printf("      %.*s\n", n, p);
            p += n + (nl != NULL);
        }
    }
    return 0;
}

int
evr_cli_pipelines(int argc, char **argv)
{
    static const struct option opts[] = { EVR_CLI_COMMON_OPTS, { NULL, 0, NULL, 0 } };
    evr_cli_t cli = { .prog = "evrun-cli pipelines" };
    int c, status = 0;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, "h", opts)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        if (c == 'h') {
            printf("usage: evrun-cli pipelines [options]\n\n"
                   "Lists the registered pipelines: the *.yml / *.yaml files of the broker's\n"
                   "pipelines_dir, with the pipeline name each registers, its concurrency,\n"
                   "jobs waiting and running, its newest job and that job's status, and its\n"
                   "next scheduled run; under it its args (NAME=\"DEFAULT\", or NAME (required)),\n"
                   "the schedule and its last fire, and the\n"
                   "file's load error when its content is refused (the last good version\n"
                   "serves).  Start one with evrun-cli start NAME.\n\n%s\n"
                   "exit status: 0 ok; 1 refused; 2 usage, or the broker unreachable\n",
                   EVR_CLI_COMMON_HELP);
            return 0;
        }
        status = 2;
    }
    if (!status && optind != argc) {
        fprintf(stderr, "%s: unexpected arguments (see --help)\n", cli.prog);
        status = 2;
    }
    if (status || (status = evr_cli_connect(&cli))) {
        evr_cli_done(&cli);
        return status;
    }
    if (!cli.json)
        printf("%-20s  %-24s  %4s  %4s  %4s  %-37s  %s\n", "PIPELINE", "FILE", "CONC", "WAIT",
               "RUN", "LAST JOB", "NEXT RUN");
    evr_msg_t req = { .type = EVR_MSG_PIPELINES };
    evr_err_t err;
    evr_rc_t rc = evr_client_stream(cli.client, &req, s_print_pipeline, &cli, &err);
    if (rc) {
        fprintf(stderr, "%s: %s\n", cli.prog, err.msg);
        status = rc == EVR_ERR_STATE ? 1 : 2;
    }
    evr_cli_done(&cli);
    return status;
}

static void
s_start_help(FILE *out)
{
    fprintf(out,
            "usage: evrun-cli start NAME [-a NAME=VALUE]... [--label L]... [--follow | --wait]\n"
            "                       [options]\n"
            "\n"
            "Starts the registered pipeline NAME (evrun-cli pipelines lists them): the\n"
            "broker submits its pipeline file's last good version as a new job, as\n"
            "`evrun-cli run FILE` would, and this prints the job id once it is queued\n"
            "(alone on stdout, \"job ID accepted (pipeline P)\" on stderr; with --follow\n"
            "or --wait that line on stdout, as run prints it).\n"
            "A start that gets no answer is sent again with the same job id.\n"
            "\n"
            "  -a, --arg NAME=VALUE an arg of the pipeline (repeatable, each NAME once: a\n"
            "                       NAME given twice is refused)\n"
            "  --label L            a label the runner must have, beyond the pipeline's\n"
            "  -f, --follow         print the job's output live; exit with its status\n"
            "                       (a broker that does not answer within --timeout-ms\n"
            "                       is said once on stderr and asked again a second\n"
            "                       after each wait, each wait doubled up to 8x); its\n"
            "                       event stream is checked before the submit: with\n"
            "                       none at --events-endpoint nothing is submitted\n"
            "  -w, --wait           wait for the job to end; exit with its status\n"
            "  --events             with --follow: lifecycle events too\n"
            EVR_CLI_COMMON_HELP
            "\n"
            "With --json, stdout has JSON objects only, as run's: the accepted answer,\n"
            "{\"job\":ID}; with --follow the output as event objects; with --follow or\n"
            "--wait at the end the job's status object (as `evrun-cli status --json`).\n"
            "\n"
            "exit status: 0 accepted (and, with --follow/--wait, the job succeeded);\n"
            "1 refused by the broker (no such pipeline, queue full, bad args), or the job\n"
            "failed, was cancelled or timed out; 2 usage, or the broker unreachable\n"
            "(with --follow, its event stream: nothing submitted); 130 --follow/--wait\n"
            "interrupted (Ctrl-C, SIGTERM) before the job ended: it goes on (before the\n"
            "submit, while --follow checks the event stream: nothing submitted)\n");
}

static void
s_start_help_cb(FILE *out, const void *arg)
{
    (void) arg;
    s_start_help(out);
}

int
evr_cli_start(int argc, char **argv)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "arg", required_argument, NULL, 'a' },
        { "label", required_argument, NULL, 'l' }, { "follow", no_argument, NULL, 'f' },
        { "wait", no_argument, NULL, 'w' }, { "events", no_argument, NULL, 'e' },
        { NULL, 0, NULL, 0 },
    };
    evr_cli_t cli = { .prog = "evrun-cli start" };
    evr_msg_t req = { .type = EVR_MSG_START };
    bool follow = false, wait = false, events = false;
    int c, status = 0;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, "a:fwh", opts)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        int taken = evr_cli_job_opt(cli.prog, c, optarg, &req);
        if (taken >= 0) {
            status = taken;
            continue;
        }
        switch (c) {
        case 'f': follow = true; break;
        case 'w': wait = true; break;
        case 'e': events = true; break;
        case 'h': s_start_help(stdout); evr_msg_clear(&req); return 0;
        default: status = 2; break;
        }
    }
    if (!status && follow && wait) {
        fprintf(stderr, "%s: --follow or --wait, not both (--follow waits too, printing the "
                "output)\n", cli.prog);
        status = 2;
    }
    else if (!status && optind != argc - 1) {
        fprintf(stderr, "%s: expected one pipeline NAME (evrun-cli pipelines lists them)\n",
                cli.prog);
        status = 2;
    }
    else if (!status && !evr_spec_name_ok(argv[optind])) {
        fprintf(stderr, "%s: \"%s\": a pipeline name is letters, digits, _ . - (at most %d "
                "bytes); to run a file: evrun-cli run FILE\n", cli.prog, argv[optind],
                EVR_SPEC_MAX_NAME);
        status = 2;
    }
    if (status) {
        evr_cli_brief(cli.prog, s_start_help_cb, NULL);
        evr_msg_clear(&req);
        return status;
    }
    char job[EVR_ULID_LEN + 1];
    evr_ulid_new(job);
    req.job = evr_strdup(job);
    req.pipeline = evr_strdup(argv[optind]);
    if ((follow || wait) && !(status = evr_cli_settings(&cli)))
        evr_cli_catch_stop();
    if (!status)
        status = evr_cli_connect(&cli);
    if (!status && follow)
        status = evr_cli_follow_first(&cli, job);
    cli.id_only = !follow && !wait;   /* J=$(evrun-cli start P) takes the id alone, as submit */
    if (!status)
        status = evr_cli_send_job(&cli, &req);
    if (!status)
        status = evr_cli_after_submit(&cli, job, follow, wait, events);
    evr_msg_clear(&req);
    evr_cli_done(&cli);
    return status;
}
