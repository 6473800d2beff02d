/*  evrun-bench-store: throughput of the event store, beside the raw LMDB
    floor measured in the same run, and the figures of issue 13 with their
    targets.

    1. Writes synthetic but valid job lifecycles through evr_store_append
       in batches of K events, then the same puts with plain mdb_put of the
       same encoded bytes (one key per event, same batch size, same sync
       mode) and a plain cursor scan, so the ratios hold on a noisy
       machine.
    2. Builds a store of about --scale-events events (default 1,000,000)
       of the same jobs, and times replay with apply (evr_rebuild_new),
       evr_rebuild_verify and the real `evrun-replay DIR --verify`.
    3. Builds a store of --list-jobs one-step jobs (default 100,000) and
       times the newest page of jobs from the store (evr_store_list) and
       through the real user path: `evrun-cli jobs` against an
       evrun-broker started on that store (binaries beside this one).
    4. With --prune-jobs P: builds a store of P finished one-step jobs
       and times retention as the broker runs it (evr_store_prune in
       batches of 200 until none is left): a pass that finds nothing
       (the first, then the median of --runs more a minute apart each), a
       dry run, and the pass that removes every job, with its slowest
       batch (one run each: the pass is destructive).
    Each timing is the median of --runs runs; *_cpu_* figures are the CPU
    time of the same runs (less moved by the other processes of a shared
    machine than the wall clock the targets are about).  Prints one
    `name: value` per line, and each figure with a target of issue 13 as
    `name_target: OP X` right after it.  The stores left in DIR/store and DIR/scale pass
    `evrun-replay DIR/store --verify`.
*/
#include <fcntl.h>
#include <getopt.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evr_prune.h"
#include "evr_rebuild.h"
#include "evr_store.h"
#include "evr_synth.h"

#define S_RUNS_MAX 99

typedef struct {
    const char *dir;
    long jobs, steps, bytes, batch, scale, list, prune, runs;
    bool nosync;
    char bindir[4096];      /* where evrun-replay, evrun-cli, evrun-broker are */
} s_opts_t;

static void
s_usage(FILE *out)
{
    fprintf(out, "usage: evrun-bench-store --dir D [--jobs N] [--steps S] [--output-bytes B]\n"
                 "                         [--batch K] [--nosync] [--scale-events E]\n"
                 "                         [--list-jobs J] [--prune-jobs P] [--runs R]\n"
                 "  --dir D           directory for the stores (created; D/store, D/raw,\n"
                 "                    D/scale, D/list, D/prune)\n"
                 "  --jobs N          jobs to write in part 1 (default 2000)\n"
                 "  --steps S         steps per job (default 4)\n"
                 "  --output-bytes B  output bytes per step, in 4 KiB chunks (default 8192)\n"
                 "  --batch K         events per append transaction (default 256)\n"
                 "  --nosync          no fsync per commit (default: sync)\n"
                 "  --scale-events E  events of the replay and verify store (default 1000000;\n"
                 "                    0 skips part 2)\n"
                 "  --list-jobs J     jobs of the listing store (default 100000; 0 skips part 3)\n"
                 "  --prune-jobs P    jobs of the retention store (default 0: skips part 4)\n"
                 "  --runs R          timed runs of each figure, median printed (default 3)\n");
}

static double
s_secs(uint64_t from)
{
    return (double) (evr_mono_ns() - from) / 1e9;
}

/*  CPU seconds of this process so far: beside the wall clock, a figure
    less moved by the other processes of a shared machine. */
static double
s_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
s_die(const char *what, const char *msg)
{
    fprintf(stderr, "evrun-bench-store: %s: %s\n", what, msg);
    return 1;
}

static int
s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static double
s_median(double *v, long n)
{
    qsort(v, (size_t) n, sizeof *v, s_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*  Runs argv (argv[0] a path) with stdout and stderr to /dev/null; its
    exit status, or -1 when it could not run or was killed.  *cpu (NULL:
    not wanted) gets its CPU seconds. */
static int
s_spawn(char *const argv[], double *cpu)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st))
        return -1;
    if (cpu)
        *cpu = (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
             + (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    return WEXITSTATUS(st);
}

/*  Appends n jobs of the given shape to st in batches of about batch
    events (made a few jobs at a time, so a big store needs little
    memory); *events counts them. */
static int
s_fill(evr_store_t *st, long n, long steps, long bytes, long batch, size_t *events)
{
    evr_err_t err;
    evr_event_t **evs = NULL;
    size_t have = 0, cap = 0;
    *events = 0;
    for (long j = 0; j < n; j++) {
        char id[48];
        snprintf(id, sizeof id, "01JQ7ZK3M8X2V9T4B6%08u", (unsigned) (j + 1) % 100000000u);
        size_t k;
        evr_event_t **one = evr_synth_job(id, (uint32_t) steps, (uint32_t) bytes, 4096, &k);
        if (have + k > cap) {
            cap = (have + k) * 2;
            evs = evr_realloc(evs, cap * sizeof *evs);
        }
        memcpy(evs + have, one, k * sizeof *one);
        have += k;
        free(one);
        if (have < (size_t) batch && j + 1 < n)
            continue;
        for (size_t i = 0; i < have; i += EVR_STORE_MAX_BATCH) {
            size_t m = have - i < EVR_STORE_MAX_BATCH ? have - i : EVR_STORE_MAX_BATCH;
            if (evr_store_append(st, evs + i, m, &err)) {
                evr_synth_free(evs, have);
                return s_die("append", err.msg);
            }
        }
        *events += have;
        for (size_t i = 0; i < have; i++)
            evr_event_destroy(&evs[i]);
        have = 0;
    }
    free(evs);
    return 0;
}

/*  The raw floor: the same encoded events, one mdb_put each. */
static int
s_raw(const char *dir, uint8_t **bufs, size_t *lens, size_t n, size_t batch, bool nosync,
      double *put_s, double *scan_s)
{
    mkdir(dir, 0700);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    mdb_env_set_mapsize(env, 64ull << 30);
    if (!rc)
        rc = mdb_env_open(env, dir, MDB_NOTLS | (nosync ? MDB_NOSYNC : 0), 0600);
    if (rc)
        return s_die("raw mdb_env_open", mdb_strerror(rc));
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, 0, &dbi);
    mdb_txn_commit(txn);
    uint64_t t0 = evr_mono_ns();
    for (size_t i = 0; i < n; i += batch) {
        if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
            return s_die("raw mdb_txn_begin", mdb_strerror(rc));
        for (size_t j = i; j < i + batch && j < n; j++) {
            uint8_t key[8];
            uint64_t seq = j + 1;
            for (int b = 7; b >= 0; b--, seq >>= 8)
                key[b] = (uint8_t) seq;
            MDB_val k = { 8, key }, v = { lens[j], bufs[j] };
            if ((rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND)))
                return s_die("raw mdb_put", mdb_strerror(rc));
        }
        if ((rc = mdb_txn_commit(txn)))
            return s_die("raw mdb_txn_commit", mdb_strerror(rc));
    }
    *put_s = s_secs(t0);
    t0 = evr_mono_ns();
    MDB_cursor *cur;
    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    mdb_cursor_open(txn, dbi, &cur);
    MDB_val k, v;
    size_t seen = 0, sum = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        sum += ((const uint8_t *) v.mv_data)[0];   /* touch the value */
        seen++;
    }
    *scan_s = s_secs(t0);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    if (seen != n)
        return s_die("raw scan", "count differs");
    return sum == 0 ? 1 : 0;   /* keeps the touch from being optimized away */
}


/*  Part 1: append, and the raw LMDB floor. */
static int
s_part_append(const s_opts_t *o)
{
    char *store_dir = evr_asprintf("%s/store", o->dir), *raw_dir = evr_asprintf("%s/raw", o->dir);
    /* Generate every event up front: the timing covers the store only. */
    size_t total = 0, cap = 0;
    evr_event_t **all = NULL;
    for (long j = 0; j < o->jobs; j++) {
        char id[48];
        snprintf(id, sizeof id, "01JQ7ZK3M8X2V9T4B6%08u", (unsigned) (j + 1) % 100000000u);
        size_t n;
        evr_event_t **evs = evr_synth_job(id, (uint32_t) o->steps, (uint32_t) o->bytes, 4096, &n);
        if (total + n > cap) {
            cap = (total + n) * 2;
            all = evr_realloc(all, cap * sizeof *all);
        }
        memcpy(all + total, evs, n * sizeof *evs);
        total += n;
        free(evs);
    }
    evr_store_t *st;
    evr_err_t err;
    if (evr_store_open(store_dir, o->nosync ? EVR_STORE_NOSYNC : EVR_STORE_SYNC, &st, &err))
        return s_die("open", err.msg);
    uint64_t t0 = evr_mono_ns();
    for (size_t i = 0; i < total; i += (size_t) o->batch) {
        size_t n = total - i < (size_t) o->batch ? total - i : (size_t) o->batch;
        if (evr_store_append(st, all + i, n, &err))
            return s_die("append", err.msg);
    }
    double append_s = s_secs(t0);
    evr_store_destroy(&st);
    /* the same events, encoded as the store wrote them, for the floor */
    uint8_t **bufs = evr_calloc(total, sizeof *bufs);
    size_t *lens = evr_calloc(total, sizeof *lens), encoded = 0;
    for (size_t i = 0; i < total; i++) {
        evr_event_encode(all[i], &bufs[i], &lens[i]);
        encoded += lens[i];
        evr_event_destroy(&all[i]);
    }
    free(all);
    double put_s = 0, scan_s = 0;
    int rc = s_raw(raw_dir, bufs, lens, total, (size_t) o->batch, o->nosync, &put_s, &scan_s);
    for (size_t i = 0; i < total; i++)
        free(bufs[i]);
    free(bufs);
    free(lens);
    free(store_dir);
    free(raw_dir);
    if (rc)
        return rc;
    printf("events: %zu\n", total);
    printf("event_bytes_avg: %.0f\n", (double) encoded / (double) total);
    printf("sync: %s\n", o->nosync ? "nosync" : "sync");
    printf("batch: %ld\n", o->batch);
    printf("append_events_per_s: %.0f\n", (double) total / append_s);
    printf("append_mb_per_s: %.1f\n", (double) encoded / append_s / 1e6);
    printf("raw_put_events_per_s: %.0f\n", (double) total / put_s);
    printf("raw_scan_events_per_s: %.0f\n", (double) total / scan_s);
    printf("append_vs_raw_put: %.2f\n", put_s / append_s);
    return 0;
}

/*  Part 2: replay with apply and verify over about o->scale events. */
static int
s_part_scale(const s_opts_t *o)
{
    char *dir = evr_asprintf("%s/scale", o->dir);
    evr_store_t *st;
    evr_err_t err;
    size_t events;
    size_t per_job = 3 + (size_t) o->steps * (4 + ((size_t) o->bytes + 4095) / 4096);
    long jobs = (long) (((size_t) o->scale + per_job - 1) / per_job);
    if (evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err))
        return s_die("open", err.msg);
    if (s_fill(st, jobs, o->steps, o->bytes, 1024, &events))
        return 1;
    double replay[S_RUNS_MAX], replay_cpu[S_RUNS_MAX], verify[S_RUNS_MAX];
    double verify_cpu[S_RUNS_MAX], cli[S_RUNS_MAX], cli_cpu[S_RUNS_MAX];
    for (long r = 0; r < o->runs; r++) {
        uint64_t t0 = evr_mono_ns();
        double c0 = s_cpu();
        evr_rebuild_t *rb;
        if (evr_rebuild_new(st, 0, NULL, NULL, &rb, &err))
            return s_die("rebuild", err.msg);
        replay[r] = s_secs(t0);
        replay_cpu[r] = s_cpu() - c0;
        if (evr_rebuild_count(rb) != (size_t) jobs || evr_rebuild_illegal(rb))
            return s_die("rebuild", "wrong job count or illegal events");
        evr_rebuild_destroy(&rb);
        t0 = evr_mono_ns();
        c0 = s_cpu();
        evr_rebuild_verify_t v;
        if (evr_rebuild_verify(st, NULL, NULL, &v, &err))
            return s_die("verify", err.msg);
        verify[r] = s_secs(t0);
        verify_cpu[r] = s_cpu() - c0;
        if (v.differences)
            return s_die("verify", "differences found");
        char *bin = evr_asprintf("%s/evrun-replay", o->bindir);
        char *argv[] = { bin, dir, "--verify", NULL };
        t0 = evr_mono_ns();
        int rc = s_spawn(argv, &cli_cpu[r]);
        cli[r] = s_secs(t0);
        free(bin);
        if (rc != 0)
            return s_die("evrun-replay --verify", "failed");
    }
    evr_store_destroy(&st);
    free(dir);
    double rs = s_median(replay, o->runs);
    printf("scale_events: %zu\n", events);
    printf("scale_jobs: %ld\n", jobs);
    printf("replay_events_per_s: %.0f\n", (double) events / rs);
    printf("replay_events_per_s_target: >= 2000000\n");
    printf("replay_cpu_events_per_s: %.0f\n", (double) events / s_median(replay_cpu, o->runs));
    printf("verify_s: %.3f\n", s_median(verify, o->runs));
    printf("verify_s_target: < 1.000 (1M events)\n");
    printf("verify_cpu_s: %.3f\n", s_median(verify_cpu, o->runs));
    printf("replay_verify_cli_s: %.3f\n", s_median(cli, o->runs));
    printf("replay_verify_cli_s_target: < 1.000 (1M events)\n");
    printf("replay_verify_cli_cpu_s: %.3f\n", s_median(cli_cpu, o->runs));
    return 0;
}

static int
s_count_id(const char *id, evr_job_status_t status, void *arg)
{
    (void) id;
    (void) status;
    ++*(uint32_t *) arg;
    return 0;
}

/*  The listing before the store kept it cheap: every projection decoded,
    the ids sorted newest first (what the broker did). */
static int
s_count_job(const evr_job_t *job, void *arg)
{
    (void) job;
    ++*(uint32_t *) arg;
    return 0;
}

/*  Starts evrun-broker on DIR (store DIR/broker) and waits for its client
    socket; its pid, or -1. */
static pid_t
s_broker(const s_opts_t *o, const char *dir)
{
    char *bin = evr_asprintf("%s/evrun-broker", o->bindir);
    char *sock = evr_asprintf("%s/bus/clients", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        char *argv[] = { bin, "--local", "--state-dir", (char *) dir, NULL };
        execv(bin, argv);
        _exit(127);
    }
    struct stat sb;
    for (int i = 0; pid > 0 && i < 1000 && stat(sock, &sb) != 0; i++)
        usleep(10000);
    if (pid > 0 && stat(sock, &sb) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        pid = -1;
    }
    free(bin);
    free(sock);
    return pid;
}

/*  Part 3: the newest page of jobs over o->list jobs. */
static int
s_part_list(const s_opts_t *o)
{
    char *dir = evr_asprintf("%s/list", o->dir), *sdir = evr_asprintf("%s/list/broker", o->dir);
    mkdir(dir, 0700);
    evr_store_t *st;
    evr_err_t err;
    size_t events;
    if (evr_store_open(sdir, EVR_STORE_NOSYNC, &st, &err))
        return s_die("open", err.msg);
    if (s_fill(st, o->list, 1, 0, 4096, &events))
        return 1;
    double page[S_RUNS_MAX], full[S_RUNS_MAX], cli[S_RUNS_MAX];
    for (long r = 0; r < o->runs; r++) {
        uint32_t n = 0, all = 0;
        uint64_t t0 = evr_mono_ns();
        if (evr_store_list(st, EVR_JOB_NONE, NULL, NULL, 100, s_count_id, &n, &err))
            return s_die("list", err.msg);
        page[r] = s_secs(t0) * 1e3;
        t0 = evr_mono_ns();
        if (evr_store_jobs(st, EVR_JOB_NONE, s_count_job, &all, &err))
            return s_die("jobs", err.msg);
        full[r] = s_secs(t0) * 1e3;
        if (n != 100 && n != (uint32_t) o->list)
            return s_die("list", "wrong count");
    }
    evr_store_destroy(&st);
    pid_t broker = s_broker(o, dir);
    if (broker < 0)
        return s_die("evrun-broker", "did not start (its client socket never appeared)");
    char *bin = evr_asprintf("%s/evrun-cli", o->bindir);
    char *ep = evr_asprintf("ipc://%s/bus/clients", dir);
    char *argv[] = { bin, "jobs", "--state-dir", dir, "--broker", ep, NULL };
    int rc = s_spawn(argv, NULL);   /* warm: the broker's first answer */
    for (long r = 0; r < o->runs && rc == 0; r++) {
        uint64_t t0 = evr_mono_ns();
        rc = s_spawn(argv, NULL);
        cli[r] = s_secs(t0) * 1e3;
    }
    kill(broker, SIGTERM);
    waitpid(broker, NULL, 0);
    free(bin);
    free(ep);
    free(dir);
    free(sdir);
    if (rc != 0)
        return s_die("evrun-cli jobs", "failed");
    printf("list_jobs: %ld\n", o->list);
    printf("list_store_page_ms: %.3f\n", s_median(page, o->runs));
    printf("list_store_decode_all_ms: %.3f\n", s_median(full, o->runs));
    printf("list_cli_ms: %.1f\n", s_median(cli, o->runs));
    printf("list_cli_ms_target: < 100 (100k jobs)\n");
    return 0;
}

/*  Part 4: retention over o->prune finished jobs, batches of 200. */
static int
s_part_prune(const s_opts_t *o)
{
    char *dir = evr_asprintf("%s/prune", o->dir);
    evr_store_t *st;
    evr_err_t err;
    size_t events;
    if (evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err))
        return s_die("open", err.msg);
    if (s_fill(st, o->prune, 1, 4096, 4096, &events))
        return 1;
    uint64_t later = evr_now_ns() + 1000000000ull;
    evr_prune_policy_t none = { .max_age_ms = 3650ull * 86400000 }, all = { .max_age_ms = 1 };
    evr_prune_stats_t ps = { 0 };
    bool more = false;
    uint64_t t0 = evr_mono_ns();
    if (evr_store_prune(st, &none, later, 200, false, NULL, NULL, &ps, &more, &err))
        return s_die("prune", err.msg);
    double idle = s_secs(t0);
    double next[64];    /* the passes after it, as the broker's timer runs them */
    long nruns = o->runs < 64 ? o->runs : 64;
    for (long r = 0; r < nruns; r++) {
        t0 = evr_mono_ns();
        if (evr_store_prune(st, &none, later + (uint64_t) (r + 1) * 60000000000ull, 200, false,
                            NULL, NULL, &ps, &more, &err))
            return s_die("prune", err.msg);
        next[r] = s_secs(t0) * 1e3;
    }
    if (ps.jobs)
        return s_die("prune", "a pass with nothing to do removed jobs");
    t0 = evr_mono_ns();
    if (evr_store_prune(st, &all, later, 200, true, NULL, NULL, &ps, &more, &err))
        return s_die("prune --dry-run", err.msg);
    double dry = s_secs(t0);
    if (ps.jobs != (uint64_t) o->prune)
        return s_die("prune --dry-run", "wrong count");
    memset(&ps, 0, sizeof ps);
    double slowest = 0, c0 = s_cpu();
    long batches = 0;
    t0 = evr_mono_ns();
    do {
        uint64_t b0 = evr_mono_ns();
        if (evr_store_prune(st, &all, later, 200, false, NULL, NULL, &ps, &more, &err))
            return s_die("prune", err.msg);
        double b = s_secs(b0);
        slowest = b > slowest ? b : slowest;
        batches++;
    } while (more);
    double pass = s_secs(t0), cpu = s_cpu() - c0;
    if (ps.jobs != (uint64_t) o->prune)
        return s_die("prune", "wrong count");
    evr_store_destroy(&st);
    free(dir);
    printf("prune_jobs: %ld\n", o->prune);
    printf("prune_events: %zu\n", events);
    printf("prune_idle_ms: %.1f\n", idle * 1e3);
    printf("prune_idle_next_us: %.1f\n", s_median(next, nruns) * 1e3);
    printf("prune_dry_run_s: %.3f\n", dry);
    printf("prune_pass_s: %.3f\n", pass);
    printf("prune_pass_cpu_s: %.3f\n", cpu);
    printf("prune_batches: %ld\n", batches);
    printf("prune_batch_max_ms: %.1f\n", slowest * 1e3);
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' }, { "jobs", required_argument, NULL, 'j' },
        { "steps", required_argument, NULL, 's' },
        { "output-bytes", required_argument, NULL, 'b' },
        { "batch", required_argument, NULL, 'k' }, { "nosync", no_argument, NULL, 'n' },
        { "scale-events", required_argument, NULL, 'e' },
        { "list-jobs", required_argument, NULL, 'l' },
        { "prune-jobs", required_argument, NULL, 'p' }, { "runs", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    s_opts_t o = { .jobs = 2000, .steps = 4, .bytes = 8192, .batch = 256, .scale = 1000000,
                   .list = 100000, .runs = 3 };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': o.dir = optarg; break;
        case 'j': o.jobs = atol(optarg); break;
        case 's': o.steps = atol(optarg); break;
        case 'b': o.bytes = atol(optarg); break;
        case 'k': o.batch = atol(optarg); break;
        case 'n': o.nosync = true; break;
        case 'e': o.scale = atol(optarg); break;
        case 'l': o.list = atol(optarg); break;
        case 'p': o.prune = atol(optarg); break;
        case 'r': o.runs = atol(optarg); break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (!o.dir || o.jobs < 1 || o.jobs > 99999999 || o.steps < 1 || o.steps > 256 || o.bytes < 0
        || o.batch < 1 || o.batch > EVR_STORE_MAX_BATCH || o.scale < 0 || o.scale > 100000000
        || o.list < 0 || o.list > 99999999 || o.prune < 0 || o.prune > 99999999
        || o.runs < 1 || o.runs > S_RUNS_MAX) {
        s_usage(stderr);
        return 2;
    }
    ssize_t n = readlink("/proc/self/exe", o.bindir, sizeof o.bindir - 1);
    char *slash = n > 0 ? (o.bindir[n] = '\0', strrchr(o.bindir, '/')) : NULL;
    if (!slash)
        return s_die("/proc/self/exe", "cannot find the directory of this binary");
    *slash = '\0';
    mkdir(o.dir, 0700);
    char *cmd = evr_asprintf("rm -rf '%s/store' '%s/raw' '%s/scale' '%s/list' '%s/prune'", o.dir,
                             o.dir, o.dir, o.dir, o.dir);
    if (system(cmd) != 0)
        return s_die("rm", cmd);
    free(cmd);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = s_part_append(&o);
    if (!rc && o.scale)
        rc = s_part_scale(&o);
    if (!rc && o.list)
        rc = s_part_list(&o);
    if (!rc && o.prune)
        rc = s_part_prune(&o);
    return rc;
}
