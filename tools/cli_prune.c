/*  cli_prune.c: `evrun-cli prune [--dry-run]`: asks the broker to run
    retention now (a `prune` message, schema/PROTOCOL.md), again while it
    answers `more`, and prints what was (or would be) removed. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_bus.h"

static void
s_help(void)
{
    printf("usage: evrun-cli prune [--dry-run] [options]\n\n"
           "Runs the broker's retention now, with its settings (retention.max_age,\n"
           "retention.keep_per_pipeline, retention.output_max_age; see evrun-broker\n"
           "--help): finished jobs it lets go are removed with all their records and\n"
           "artifacts, the output of older ones dropped.  Queued and running jobs are\n"
           "never touched.  The broker also does this by itself, every\n"
           "retention.interval.  For a runner's own store: evrun-runner --prune.\n\n"
           "  --dry-run            count what would be removed, remove nothing\n%s\n"
           "With --json: {\"jobs\":N,\"outputs\":N,\"events\":N,\"records\":N,\"bytes\":N,\n"
           "\"dry_run\":BOOL}, every count given (0 too).\n\n"
           "exit status: 0 done; 1 refused (retention is off, or the store failed); 2\n"
           "usage, or the broker unreachable\n", EVR_CLI_COMMON_HELP);
}

int
evr_cli_prune(int argc, char **argv)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "dry-run", no_argument, NULL, 'n' }, { NULL, 0, NULL, 0 },
    };
    evr_cli_t cli = { .prog = "evrun-cli prune" };
    bool dry = false;
    int c, status = 0;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, "h", opts)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        if (c == 'n')
            dry = true;
        else if (c == 'h') {
            s_help();
            return 0;
        }
        else
            status = 2;
    }
    if (!status && optind != argc) {
        fprintf(stderr, "%s: unexpected argument %s (see --help)\n", cli.prog, argv[optind]);
        status = 2;
    }
    if (status || (status = evr_cli_connect(&cli)))
        return status;
    evr_msg_t req = { .type = EVR_MSG_PRUNE, .dry_run = dry }, sum = { .type = EVR_MSG_PRUNED };
    sum.dry_run = dry;
    bool more = true;
    /* each request runs bounded batches; a long backlog takes a few */
    for (int round = 0; more && !status && round < 1000; round++) {
        evr_msg_t rep = { 0 };
        if (!(status = evr_cli_call(&cli, &req, EVR_MSG_PRUNED, &rep))) {
            sum.pr_jobs += rep.pr_jobs;
            sum.pr_outputs += rep.pr_outputs;
            sum.pr_events += rep.pr_events;
            sum.pr_records += rep.pr_records;
            sum.pr_bytes += rep.pr_bytes;
            more = rep.more && !dry;
        }
        evr_msg_clear(&rep);
    }
    if (!status && cli.json)   /* every count, 0 too (the record's JSON leaves 0 out) */
        printf("{\"jobs\":%llu,\"outputs\":%llu,\"events\":%llu,\"records\":%llu,"
               "\"bytes\":%llu,\"dry_run\":%s}\n", (unsigned long long) sum.pr_jobs,
               (unsigned long long) sum.pr_outputs, (unsigned long long) sum.pr_events,
               (unsigned long long) sum.pr_records, (unsigned long long) sum.pr_bytes,
               dry ? "true" : "false");
    else if (!status)
        printf("%s %llu finished jobs (%llu events, %llu other records) and %s the output "
               "of %llu: %llu bytes\n", dry ? "would remove" : "removed",
               (unsigned long long) sum.pr_jobs, (unsigned long long) sum.pr_events,
               (unsigned long long) sum.pr_records, dry ? "drop" : "dropped",
               (unsigned long long) sum.pr_outputs, (unsigned long long) sum.pr_bytes);
    evr_cli_done(&cli);
    return status;
}
