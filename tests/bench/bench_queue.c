/*  evrun-bench-queue: what the broker's deep queue costs it, per
    operation (tests/bench/bench-queue runs it).

        evrun-bench-queue STATE_DIR BROKER_PID N

    Talks to the broker of STATE_DIR (the `evrun-cli up` / --local one:
    its client socket as evrun-cli finds it, its runner socket at
    STATE_DIR/bus/runners), whose pid is BROKER_PID, and measures each
    operation's broker CPU time (the sum of its threads' run time in
    /proc/PID/task/{*}/schedstat, so the client's own time and the wire do not
    count):

      fill          N submits of pipeline qa (append, queue limit raised):
                    the first and the last 1000 of them apart
      append        more submits to qa (append)
      append_full   submits to qa refused: its queue limit is reached
      busy          submits to qa refused: concurrency 1, limit 0
      replace       submits to qa with strategy replace (a limit above
                    what waits: nothing replaced)
      replace_one   the same with the limit at what waits: each replaces
                    the oldest job
      partitioned   submits to qa, partitioned_replace, each of its own
                    partition (nothing replaced), then of one partition
                    (each replaces the one before: partitioned_one)
      interrupt     submits to qa, replace with interrupt: true
      cancel_mid    cancels of jobs in the middle of the queue
      cancel_end    cancels of the newest jobs
      jobs          `jobs` listings (default limit), and of pipeline qa
      dispatch      a runner with labels only the last 64 jobs have (of
                    pipeline qz) connects: from its hello to its 64th
                    dispatch
      submit_runner submits to qa while that runner waits with credit
                    (each ends in a dispatch pass)
      conc_dispatch 200 jobs of pipeline qc (concurrency 1) at the end,
                    one running: submits to qa then (each a dispatch pass
                    that asks qc's running count for each qc job)
      whole_pass    a second runner, whose labels no job has, changes its
                    credit (a change: a dispatch pass over the whole
                    queue, the first runner idle with credit), each change
                    followed by a `runners` request (counted in)
      runners       that `runners` request alone

    Prints `name_us: X` (broker CPU per operation, microseconds) lines,
    figures only.  Exit status 1 when the broker answers otherwise than
    expected (said on stderr), 2 on bad arguments.
*/
#include <czmq.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_bus.h"
#include "evr_client.h"
#include "evr_diag.h"
#include "evr_spec.h"
#include "evr_ulid.h"
#include "evr_yaml.h"

#define S_P "image: localhost/evrun-busybox:latest\nsteps:\n  - { name: s, run: \":\" }\n"

static int s_pid;
static evr_client_t *s_cli;
static int s_status;

/*  The broker's CPU time so far, ns (every thread's). */
static uint64_t
s_cpu(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", s_pid);
    DIR *d = opendir(path);
    uint64_t sum = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[300];
        snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", s_pid, e->d_name);
        FILE *fp = fopen(p, "r");
        unsigned long long ns = 0;
        if (fp && fscanf(fp, "%llu", &ns) == 1)
            sum += ns;
        if (fp)
            fclose(fp);
    }
    if (d)
        closedir(d);
    return sum;
}

static evr_spec_t *
s_spec(const char *yml)
{
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *d = evr_diag_new("bench.yml");
    if (evr_yaml_load(yml, strlen(yml), spec, d)) {
        fprintf(stderr, "evrun-bench-queue: %s\n", evr_diag_get(d, 0));
        exit(1);
    }
    evr_diag_destroy(&d);
    return spec;
}

/*  Submits spec (with arg k=kval when kval): the answer's type, its job
    id into id (when not NULL). */
static evr_msgtype_t
s_submit(evr_spec_t *spec, const char *kval, char *id)
{
    char job[EVR_ULID_LEN + 1];
    evr_ulid_new(job);
    evr_msg_t m = { .type = EVR_MSG_SUBMIT, .job = job, .spec = spec };
    if (kval)
        evr_strmap_set(&m.args, "k", kval);
    evr_msg_t rep = { 0 };
    evr_err_t err;
    if (evr_client_call(s_cli, &m, &rep, &err)) {
        fprintf(stderr, "evrun-bench-queue: %s\n", err.msg);
        exit(1);
    }
    evr_strmap_free(&m.args);
    evr_msgtype_t t = rep.type;
    if (id)
        snprintf(id, EVR_ULID_LEN + 1, "%s", job);
    evr_msg_clear(&rep);
    return t;
}

/*  n submits of spec, each answered want (with arg k=kpre, or k=kpre<i>
    when each): broker us per submit. */
static double
s_submits(evr_spec_t *spec, size_t n, evr_msgtype_t want, const char *kpre, bool each,
          char (*ids)[27])
{
    uint64_t c0 = s_cpu();
    for (size_t i = 0; i < n; i++) {
        char k[32];
        if (kpre && each)
            snprintf(k, sizeof k, "%s%zu", kpre, i);
        else if (kpre)
            snprintf(k, sizeof k, "%s", kpre);
        evr_msgtype_t t = s_submit(spec, kpre ? k : NULL, ids ? ids[i] : NULL);
        if (t != want) {
            fprintf(stderr, "evrun-bench-queue: submit answered %s, not %s\n",
                    evr_msgtype_name(t), evr_msgtype_name(want));
            s_status = 1;
            return 0;
        }
    }
    return (double) (s_cpu() - c0) / 1e3 / (double) n;
}

static void
s_fig(const char *name, double us)
{
    printf("%s_us: %.1f\n", name, us);
    fflush(stdout);
}

static double
s_cancels(char (*ids)[27], size_t n)
{
    uint64_t c0 = s_cpu();
    for (size_t i = 0; i < n; i++) {
        evr_msg_t m = { .type = EVR_MSG_CANCEL, .job = ids[i] }, rep = { 0 };
        evr_err_t err;
        if (evr_client_call(s_cli, &m, &rep, &err) || rep.type != EVR_MSG_OK) {
            fprintf(stderr, "evrun-bench-queue: cancel %s failed\n", ids[i]);
            s_status = 1;
        }
        evr_msg_clear(&rep);
    }
    return (double) (s_cpu() - c0) / 1e3 / (double) n;
}

static int
s_count(const evr_msg_t *m, void *arg)
{
    (void) m;
    (*(size_t *) arg)++;
    return 0;
}

static double
s_jobs(const char *pipeline, size_t n)
{
    uint64_t c0 = s_cpu();
    for (size_t i = 0; i < n; i++) {
        evr_msg_t m = { .type = EVR_MSG_JOBS, .pipeline = (char *) pipeline };
        size_t got = 0;
        evr_err_t err;
        if (evr_client_stream(s_cli, &m, s_count, &got, &err) || !got) {
            fprintf(stderr, "evrun-bench-queue: jobs failed\n");
            s_status = 1;
        }
    }
    return (double) (s_cpu() - c0) / 1e3 / (double) n;
}

/*  A runner on the broker's runner socket: hello with labels, credit. */
static zsock_t *
s_runner(const char *dir, const char *id, const char *l1, const char *l2, uint32_t cap)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    evr_bus_setup(s);
    zsock_connect(s, "ipc://%s/bus/runners", dir);
    evr_msg_t hello = { .type = EVR_MSG_HELLO, .runner = (char *) id, .capacity = cap,
                        .version = EVR_VERSION };
    evr_strlist_push(&hello.labels, "executor:podman");
    evr_strlist_push(&hello.labels, l1);
    if (l2)
        evr_strlist_push(&hello.labels, l2);
    evr_bus_send(s, NULL, &hello, NULL);
    evr_strlist_free(&hello.labels);
    return s;
}

/*  The next message the runner socket s reads into *m (cleared by the
    caller), before the mono ns until: false past it. */
static bool
s_next(zsock_t *s, uint64_t until, evr_msg_t *m)
{
    while (evr_mono_ns() < until) {
        zmq_pollitem_t it = { zsock_resolve(s), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, 200) <= 0)
            continue;
        const char *code;
        evr_err_t err;
        if (evr_bus_recv(s, NULL, m, &code, &err) == EVR_OK)
            return true;
        evr_msg_clear(m);
    }
    return false;
}

/*  Reads the runner's messages until want dispatches came (credit cap
    after welcome); false after 60 s. */
static bool
s_dispatches(zsock_t *s, uint32_t cap, size_t want)
{
    size_t got = 0;
    uint64_t until = evr_mono_ns() + 60000000000ull;
    for (evr_msg_t m = { 0 }; got < want && s_next(s, until, &m); evr_msg_clear(&m)) {
        if (m.type == EVR_MSG_WELCOME) {
            evr_msg_t c = { .type = EVR_MSG_CREDIT, .credit = cap };
            evr_bus_send(s, NULL, &c, NULL);
        }
        got += m.type == EVR_MSG_DISPATCH;
    }
    return got == want;
}

/*  Waits for the runner's welcome (10 s at most). */
static void
s_welcome(zsock_t *s)
{
    uint64_t until = evr_mono_ns() + 10000000000ull;
    bool done = false;
    for (evr_msg_t m = { 0 }; !done && s_next(s, until, &m); evr_msg_clear(&m))
        done = m.type == EVR_MSG_WELCOME;
}

/*  n times: runner r's credit changed (1, 0, 1...), then a `runners`
    request answered: broker us for each. */
static double
s_passes(zsock_t *r, size_t n)
{
    uint64_t c0 = s_cpu();
    for (size_t i = 0; i < n; i++) {
        if (r) {
            evr_msg_t c = { .type = EVR_MSG_CREDIT, .credit = (uint32_t) ((i + 1) % 2) };
            evr_bus_send(r, NULL, &c, NULL);
        }
        evr_msg_t m = { .type = EVR_MSG_RUNNERS };
        size_t got = 0;
        evr_err_t err;
        if (evr_client_stream(s_cli, &m, s_count, &got, &err)) {
            fprintf(stderr, "evrun-bench-queue: runners failed\n");
            s_status = 1;
        }
    }
    return (double) (s_cpu() - c0) / 1e3 / (double) n;
}

int
main(int argc, char **argv)
{
    if (argc != 4 || atoi(argv[2]) <= 0 || atol(argv[3]) < 2000) {
        fprintf(stderr, "usage: evrun-bench-queue STATE_DIR BROKER_PID N (N >= 2000)\n");
        return 2;
    }
    s_pid = atoi(argv[2]);
    size_t n = (size_t) atol(argv[3]);
    evr_config_t *cfg = evr_config_new(evr_client_keys, evr_client_nkeys);
    evr_config_set(cfg, "state_dir", argv[1], "argument");
    evr_client_endpoints(cfg);
    evr_err_t err;
    if (evr_client_new(cfg, &s_cli, &err)) {
        fprintf(stderr, "evrun-bench-queue: %s\n", err.msg);
        return 1;
    }
    evr_client_set_timeout(s_cli, 120000);
    char lim[64];
    snprintf(lim, sizeof lim, "%zu", n);
    evr_spec_t *fill = s_spec("pipeline: qa\nlabels: [fill]\nqueue: {limit: 1000000}\n" S_P);
    char (*ids)[27] = evr_calloc(n, sizeof *ids);
    s_fig("fill_first1000", s_submits(fill, 1000, EVR_MSG_ACCEPTED, NULL, false, ids));
    s_submits(fill, n - 2000, EVR_MSG_ACCEPTED, NULL, false, ids + 1000);
    s_fig("fill_last1000", s_submits(fill, 1000, EVR_MSG_ACCEPTED, NULL, false, ids + n - 1000));
    s_fig("append", s_submits(fill, 200, EVR_MSG_ACCEPTED, NULL, false, NULL));
    size_t waiting = n + 200;
    char *yml = evr_asprintf("pipeline: qa\nlabels: [fill]\nqueue: {limit: %zu}\n" S_P, waiting);
    evr_spec_t *full = s_spec(yml);
    free(yml);
    s_fig("append_full", s_submits(full, 200, EVR_MSG_ERROR, NULL, false, NULL));
    evr_spec_t *busy = s_spec("pipeline: qa\nlabels: [fill]\nconcurrency: 1\n"
                              "queue: {limit: 0}\n" S_P);
    s_fig("busy", s_submits(busy, 200, EVR_MSG_ERROR, NULL, false, NULL));
    evr_spec_t *rep = s_spec("pipeline: qa\nlabels: [fill]\n"
                             "queue: {strategy: replace, limit: 1000000}\n" S_P);
    s_fig("replace", s_submits(rep, 200, EVR_MSG_ACCEPTED, NULL, false, NULL));
    waiting += 200;
    yml = evr_asprintf("pipeline: qa\nlabels: [fill]\nqueue: {strategy: replace, limit: %zu}\n"
                       S_P, waiting);
    evr_spec_t *rep1 = s_spec(yml);
    free(yml);
    s_fig("replace_one", s_submits(rep1, 200, EVR_MSG_ACCEPTED, NULL, false, NULL));
    evr_spec_t *part = s_spec("pipeline: qa\nlabels: [fill]\nargs: {k: {default: x}}\n"
                              "queue: {strategy: partitioned_replace, partition_by: k, "
                              "limit: 1000000}\n" S_P);
    s_fig("partitioned", s_submits(part, 200, EVR_MSG_ACCEPTED, "p", true, NULL));
    s_fig("partitioned_one", s_submits(part, 200, EVR_MSG_ACCEPTED, "same", false, NULL));
    waiting += 201;
    evr_spec_t *intr = s_spec("pipeline: qa\nlabels: [fill]\n"
                              "queue: {strategy: replace, interrupt: true, limit: 1000000}\n" S_P);
    s_fig("interrupt", s_submits(intr, 200, EVR_MSG_ACCEPTED, NULL, false, NULL));
    s_fig("cancel_mid", s_cancels(ids + n / 2, 200));
    s_fig("cancel_end", s_cancels(ids + n - 200, 200));
    s_fig("jobs", s_jobs(NULL, 20));
    s_fig("jobs_pipeline", s_jobs("qa", 20));
    /* dispatch: 64 jobs of qz at the end; a runner that only they match */
    evr_spec_t *qz = s_spec("pipeline: qz\nlabels: [qz]\n" S_P);
    s_submits(qz, 64, EVR_MSG_ACCEPTED, NULL, false, NULL);
    uint64_t c0 = s_cpu();
    zsock_t *r = s_runner(argv[1], "bench-qz", "qz", "qc", 1000);
    if (!s_dispatches(r, 1000, 64)) {
        fprintf(stderr, "evrun-bench-queue: the runner did not get its 64 jobs\n");
        s_status = 1;
    }
    s_fig("dispatch", (double) (s_cpu() - c0) / 1e3);
    s_fig("submit_runner", s_submits(fill, 200, EVR_MSG_ACCEPTED, NULL, false, NULL));
    evr_spec_t *qc = s_spec("pipeline: qc\nlabels: [qc]\nconcurrency: 1\n"
                            "queue: {limit: 1000}\n" S_P);
    s_submits(qc, 200, EVR_MSG_ACCEPTED, NULL, false, NULL);
    s_dispatches(r, 1000, 1);
    s_fig("conc_dispatch", s_submits(fill, 50, EVR_MSG_ACCEPTED, NULL, false, NULL));
    zsock_t *r2 = s_runner(argv[1], "bench-none", "none", NULL, 1);
    s_welcome(r2);
    s_fig("runners", s_passes(NULL, 100));
    s_fig("whole_pass", s_passes(r2, 100));
    zsock_destroy(&r2);
    zsock_destroy(&r);
    evr_spec_destroy(&fill);
    evr_spec_destroy(&full);
    evr_spec_destroy(&busy);
    evr_spec_destroy(&rep);
    evr_spec_destroy(&rep1);
    evr_spec_destroy(&part);
    evr_spec_destroy(&intr);
    evr_spec_destroy(&qz);
    evr_spec_destroy(&qc);
    free(ids);
    evr_client_destroy(&s_cli);
    evr_config_destroy(&cfg);
    return s_status;
}
