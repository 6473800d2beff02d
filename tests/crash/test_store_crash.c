/*  test_store_crash: a writer process appends whole job lifecycles (one or
    two jobs per batch) to a real LMDB store with fsync per commit, and is
    killed with SIGKILL at random moments, again and again.  After every
    kill the store must open, hold dense seqs 1..last, every job whole
    (its batch was committed entirely or not at all), and pass verify.
    Then a pruner process removes finished jobs in batches of 50 (a
    retention pass, its plan kept across batches) from a store of 3,000
    jobs, and is killed likewise: after every kill each job is whole or
    gone, the jobs and events left and those `meta` counts removed add up
    to what was written, and verify is clean.

    EVR_CRASH_ROUNDS sets the number of kills of each (default 25).
*/
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evr_prune.h"
#include "evr_rebuild.h"
#include "evr_store.h"
#include "evr_synth.h"
#include "evr_test.h"

#define STEPS 2
#define BYTES 3000
#define CHUNK 1000

static size_t s_events_per_job;

static int
s_count(const evr_job_t *job, void *arg)
{
    (void) job;
    (*(uint32_t *) arg)++;
    return 0;
}

/*  The writer: continues numbering after the jobs already stored. */
static void
s_writer(const char *dir)
{
    evr_store_t *st;
    evr_err_t err;
    if (evr_store_open(dir, EVR_STORE_SYNC, &st, &err)) {
        fprintf(stderr, "writer: %s\n", err.msg);
        _exit(3);
    }
    uint32_t next = 0;
    if (evr_store_jobs(st, EVR_JOB_NONE, s_count, &next, &err))
        _exit(4);
    srand((unsigned) getpid());
    for (;;) {
        int jobs = 1 + rand() % 2;   /* one or two jobs per batch */
        evr_event_t *batch[64];
        evr_event_t **evs[2];
        size_t n[2], total = 0;
        for (int j = 0; j < jobs; j++) {
            char id[32];
            snprintf(id, sizeof id, "01JQ7ZK3M8X2V9T4B6N%07u", ++next);
            evs[j] = evr_synth_job(id, STEPS, BYTES, CHUNK, &n[j]);
            for (size_t i = 0; i < n[j]; i++)
                batch[total++] = evs[j][i];
        }
        if (evr_store_append(st, batch, total, &err)) {
            fprintf(stderr, "writer: %s\n", err.msg);
            _exit(5);
        }
        for (int j = 0; j < jobs; j++)
            evr_synth_free(evs[j], n[j]);
    }
}

typedef struct {
    uint64_t expect;
    bool dense;
    uint64_t count;
} s_dense_t;

static int
s_dense(const evr_event_t *ev, void *arg)
{
    s_dense_t *d = arg;
    if (ev->seq != d->expect)
        d->dense = false;
    d->expect = ev->seq + 1;
    d->count++;
    return 0;
}

typedef struct {
    uint32_t jobs, whole;
} s_whole_t;

static int
s_whole(const evr_job_t *job, void *arg)
{
    s_whole_t *w = arg;
    w->jobs++;
    if (job->status == EVR_JOB_SUCCEEDED && job->last_jseq == s_events_per_job
        && evr_job_steps_done(job) == STEPS)
        w->whole++;
    return 0;
}

static void
s_report(const char *line, void *arg)
{
    (void) arg;
    fprintf(stderr, "  verify: %s\n", line);
}

/*  Appends jobs first..first+n-1 (the writer's shape) to the store in dir. */
static void
s_fill(const char *dir, uint32_t first, uint32_t n)
{
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    for (uint32_t i = first; st && i < first + n; i++) {
        char id[32];
        snprintf(id, sizeof id, "01JQ7ZK3M8X2V9T4B6N%07u", i);
        size_t k;
        evr_event_t **evs = evr_synth_job(id, STEPS, BYTES, CHUNK, &k);
        CHECK(evr_store_append(st, evs, k, &err) == EVR_OK);
        evr_synth_free(evs, k);
    }
    evr_store_destroy(&st);
}

/*  The pruner: retention's passes in batches of 50 until nothing is left. */
static void
s_pruner(const char *dir)
{
    evr_store_t *st;
    evr_err_t err;
    if (evr_store_open(dir, EVR_STORE_SYNC, &st, &err))
        _exit(3);
    evr_prune_policy_t pol = { .max_age_ms = 1 };
    evr_prune_stats_t ps = { 0 };
    bool more = true;
    while (more)
        if (evr_store_prune(st, &pol, evr_now_ns() + 1000000000ull, 50, false, NULL, NULL, &ps,
                            &more, &err)) {
            fprintf(stderr, "pruner: %s\n", err.msg);
            _exit(5);
        }
    evr_store_destroy(&st);
    _exit(0);
}

/*  Rounds of a pruner killed at random moments; jobs refilled when none
    is left.  The number of jobs removed over all rounds. */
static uint64_t
s_prune_rounds(const char *store_dir, int rounds)
{
    uint32_t written = 0;
    uint64_t pruned = 0;
    for (int round = 0; round < rounds; round++) {
        if (written == pruned) {
            s_fill(store_dir, written + 1, 3000);
            written += 3000;
        }
        pid_t pid = fork();
        if (pid == 0)
            s_pruner(store_dir);
        struct timespec ts = { 0, (2 + rand() % 59) * 1000000L };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
              || (WIFEXITED(status) && WEXITSTATUS(status) == 0));

        evr_store_t *st;
        evr_err_t err;
        CHECK(evr_store_open(store_dir, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
        if (!st)
            break;
        evr_prune_meta_t pm;
        CHECK(evr_store_pruned(st, &pm, &err) == EVR_OK);
        uint64_t last = 0;
        CHECK(evr_store_last_seq(st, &last, &err) == EVR_OK);
        s_dense_t d = { 1, true, 0 };
        CHECK(evr_store_scan(st, 1, 0, s_dense, &d, &err) == EVR_OK);
        CHECK(d.count + pm.events == last);
        s_whole_t w = { 0, 0 };
        CHECK(evr_store_jobs(st, EVR_JOB_NONE, s_whole, &w, &err) == EVR_OK);
        CHECK(w.whole == w.jobs && w.jobs + pm.jobs == written);
        CHECK((uint64_t) w.jobs * s_events_per_job == d.count);
        evr_rebuild_verify_t v;
        CHECK(evr_rebuild_verify(st, s_report, NULL, &v, &err) == EVR_OK);
        CHECK(v.differences == 0 && v.pruned == pm.jobs);
        if (w.whole != w.jobs || v.differences)
            fprintf(stderr, "  prune round %d: %u of %u jobs whole, %llu differences\n", round,
                    w.whole, w.jobs, (unsigned long long) v.differences);
        pruned = pm.jobs;
        evr_store_destroy(&st);
    }
    return pruned;
}

int
main(void)
{
    size_t n;
    evr_event_t **probe = evr_synth_job("01JQ7ZK3M8X2V9T4B6N0000000", STEPS, BYTES, CHUNK, &n);
    evr_synth_free(probe, n);
    s_events_per_job = n;
    const char *env = getenv("EVR_CRASH_ROUNDS");
    int rounds = env ? atoi(env) : 25;
    char dir[] = "/tmp/evr-test-crash-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char store_dir[256];
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    srand((unsigned) time(NULL));
    uint32_t last_jobs = 0;
    int grew = 0;
    bool opened = false;    /* a round found the store committed */
    for (int round = 0; round < rounds; round++) {
        pid_t pid = fork();
        if (pid == 0)
            s_writer(store_dir);
        /* 2..60 ms: sometimes during open, mostly mid-append */
        struct timespec ts = { 0, (2 + rand() % 59) * 1000000L };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        evr_store_t *st;
        evr_err_t err;
        evr_rc_t rc = evr_store_open(store_dir, EVR_STORE_RDONLY, &st, &err);
        if (rc == EVR_ERR_STORE && !opened && strstr(err.msg, "no evrun store")) {
            continue;   /* killed before the first commit (a loaded machine: more than once) */
        }
        opened = opened || rc == EVR_OK;
        if (rc)
            fprintf(stderr, "  round %d: %s\n", round, err.msg);
        CHECK(rc == EVR_OK);
        if (rc)
            break;
        uint64_t last = 0;
        CHECK(evr_store_last_seq(st, &last, &err) == EVR_OK);
        s_dense_t d = { 1, true, 0 };
        CHECK(evr_store_scan(st, 1, 0, s_dense, &d, &err) == EVR_OK);
        CHECK(d.dense && d.count == last);
        s_whole_t w = { 0, 0 };
        CHECK(evr_store_jobs(st, EVR_JOB_NONE, s_whole, &w, &err) == EVR_OK);
        if (w.whole != w.jobs)
            fprintf(stderr, "  round %d: %u of %u jobs whole\n", round, w.whole, w.jobs);
        CHECK(w.whole == w.jobs);
        CHECK((uint64_t) w.jobs * s_events_per_job == last);
        evr_rebuild_verify_t v;
        CHECK(evr_rebuild_verify(st, s_report, NULL, &v, &err) == EVR_OK);
        CHECK(v.differences == 0);
        grew += w.jobs > last_jobs;
        last_jobs = w.jobs;
        evr_store_destroy(&st);
    }
    fprintf(stderr, "%d kills, %u jobs stored, progress in %d rounds\n", rounds, last_jobs, grew);
    CHECK(last_jobs > 0);   /* the writer got work done between kills */
    char prune_dir[300];
    snprintf(prune_dir, sizeof prune_dir, "%s/pruned", dir);
    uint64_t pruned = s_prune_rounds(prune_dir, rounds);
    fprintf(stderr, "%d kills of a pruner, %llu jobs removed\n", rounds,
            (unsigned long long) pruned);
    CHECK(pruned > 0);      /* the pruner got work done between kills */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", dir);
    EVR_TEST_END();
}
