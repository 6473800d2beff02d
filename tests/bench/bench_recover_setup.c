/*  evrun-bench-recover-setup --dir D [--finished N] [--running M]: writes a
    runner store holding N finished synthetic jobs (4 steps with output)
    and M jobs stopped in their first step (started, some output), for
    tests/bench/bench-recover to measure recovery on. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "evr_store.h"
#include "evr_synth.h"

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' }, { "finished", required_argument, NULL, 'f' },
        { "running", required_argument, NULL, 'r' }, { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL;
    long finished = 10000, running = 10;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'f': finished = atol(optarg); break;
        case 'r': running = atol(optarg); break;
        default: return 2;
        }
    }
    if (!dir || finished < 0 || running < 0 || finished + running > 99999999) {
        fprintf(stderr, "usage: evrun-bench-recover-setup --dir D [--finished N] [--running M]\n");
        return 2;
    }
    evr_store_t *st;
    evr_err_t err;
    if (evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (long j = 0; j < finished + running; j++) {
        char id[48];
        snprintf(id, sizeof id, "01JQ7ZK3M8X2V9T4B6%08u", (unsigned) (j + 1));
        size_t n;
        evr_event_t **evs = evr_synth_job(id, 4, 2048, 1024, &n);
        /* a running job: accepted, started, step 1 queued..started, 1 chunk */
        size_t take = j < finished ? n : 6;
        if (evr_store_append(st, evs, take, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        evr_synth_free(evs, n);
    }
    uint64_t last = 0;
    evr_store_last_seq(st, &last, &err);
    printf("jobs: %ld finished, %ld running; events: %llu\n", finished, running,
           (unsigned long long) last);
    evr_store_destroy(&st);
    return 0;
}
