/*  evrun-bench-gw-bus: submit -> accepted latency on the bus, the figure
    tests/bench/bench-gateway prints next to the HTTP one.

        evrun-bench-gw-bus STATE_DIR FILE RATE SECONDS

    Submits the pipeline FILE (YAML) RATE times a second for SECONDS, one
    request at a time on one client connection to the broker of STATE_DIR
    (the `evrun-cli up` / --local one, as evrun-cli finds it: bus client of
    tools/evr_client.h), each timed from its send to its `accepted`.  The
    pacing is open-loop: a submit that is late starts at once, the next
    keeps the schedule.  Prints

        bus_submit_ms_median: X
        bus_submit_ms_p90: X
        bus_submits: N

    Exit status 1 when a submit is refused or unanswered (said on stderr),
    2 on bad arguments.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evr_client.h"
#include "evr_spec.h"
#include "evr_ulid.h"
#include "evr_yaml.h"

static int
s_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

/*  The spec of FILE into m (a submit); false, said on stderr, when it
    cannot be read or loaded. */
static bool
s_load(const char *file, evr_msg_t *m)
{
    FILE *fp = fopen(file, "rb");
    char buf[65536];
    size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp)
        fclose(fp);
    if (!n) {
        fprintf(stderr, "evrun-bench-gw-bus: cannot read %s\n", file);
        return false;
    }
    m->spec = evr_spec_new();
    evr_diag_t *d = evr_diag_new(file);
    bool ok = evr_yaml_load(buf, n, m->spec, d) == EVR_OK;
    if (!ok)
        fprintf(stderr, "evrun-bench-gw-bus: %s\n", evr_diag_count(d) ? evr_diag_get(d, 0) : file);
    evr_diag_destroy(&d);
    return ok;
}

static void
s_sleep_until(uint64_t t)
{
    uint64_t now = evr_mono_ns();
    if (now >= t)
        return;
    struct timespec ts = { (time_t) ((t - now) / 1000000000u), (long) ((t - now) % 1000000000u) };
    nanosleep(&ts, NULL);
}

int
main(int argc, char **argv)
{
    if (argc != 5 || atof(argv[3]) <= 0 || atof(argv[4]) <= 0) {
        fprintf(stderr, "usage: evrun-bench-gw-bus STATE_DIR FILE RATE SECONDS\n");
        return 2;
    }
    double rate = atof(argv[3]), secs = atof(argv[4]);
    size_t total = (size_t) (rate * secs), done = 0;
    double *ms = evr_calloc(total + 1, sizeof *ms);
    evr_config_t *cfg = evr_config_new(evr_client_keys, evr_client_nkeys);
    evr_config_set(cfg, "state_dir", argv[1], "argument");
    evr_client_endpoints(cfg);
    evr_client_t *c = NULL;
    evr_msg_t m = { .type = EVR_MSG_SUBMIT };
    evr_err_t err;
    int status = s_load(argv[2], &m) ? 0 : 2;
    if (!status && evr_client_new(cfg, &c, &err)) {
        fprintf(stderr, "evrun-bench-gw-bus: %s\n", err.msg);
        status = 1;
    }
    uint64_t t0 = evr_mono_ns();
    for (; !status && done < total; done++) {
        s_sleep_until(t0 + (uint64_t) ((double) done * 1e9 / rate));
        char id[EVR_ULID_LEN + 1];
        evr_ulid_new(id);
        free(m.job);
        m.job = evr_strdup(id);
        evr_msg_t rep = { 0 };
        uint64_t t = evr_mono_ns();
        if (evr_client_call(c, &m, &rep, &err)) {
            fprintf(stderr, "evrun-bench-gw-bus: %s\n", err.msg);
            status = 1;
        }
        else if (rep.type != EVR_MSG_ACCEPTED) {
            fprintf(stderr, "evrun-bench-gw-bus: answer %s: %s\n", evr_msgtype_name(rep.type),
                    rep.message ? rep.message : "");
            status = 1;
        }
        ms[done] = (double) (evr_mono_ns() - t) / 1e6;
        evr_msg_clear(&rep);
    }
    if (!status && done) {
        qsort(ms, done, sizeof *ms, s_cmp);
        printf("bus_submit_ms_median: %.2f\n", ms[done / 2]);
        printf("bus_submit_ms_p90: %.2f\n", ms[done * 9 / 10]);
        printf("bus_submits: %zu\n", done);
    }
    evr_client_destroy(&c);
    evr_msg_clear(&m);
    evr_config_destroy(&cfg);
    free(ms);
    return status;
}
