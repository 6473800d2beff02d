/*  test_prune: retention (store/evr_prune.c) on a real LMDB in a
    temporary directory: removal by count per pipeline and by age in
    bounded batches (jobs and events) with the kv records of each job, a
    dry run that changes nothing (also of a store at its map size), output
    dropped with the other events kept, running jobs and jobs not yet
    acknowledged never touched, `evrun-replay --verify`'s check clean
    afterwards (and while retention removes jobs), the used pages of
    the file bounded over rounds of appends and prunes, and a pass that
    walks the projections once, not once per batch, whose later batches
    check each job again; a pass with nothing to do after one that left
    nothing undone, which reads no projection until a job finishes, an
    age comes or a held job is let go; and a compacted copy that gets the
    file's space back. */
#include <lmdb.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evr_event.h"
#include "evr_prune.h"
#include "evr_rebuild.h"
#include "evr_stest.h"
#include "evr_store.h"
#include "evr_synth.h"
#include "evr_test.h"


static char *
s_job_id(int i)
{
    return evr_asprintf("01JQ7ZK3M8X2V9T4B6N%07d", i);
}

/*  Appends one synthetic job of pipeline; finished unless running. */
static void
s_job(evr_store_t *st, int i, const char *pipeline, bool running)
{
    char *id = s_job_id(i);
    size_t n;
    evr_event_t **evs = evr_synth_job(id, 2, 2000, 500, &n);
    free(evs[0]->data.pipeline);
    evs[0]->data.pipeline = evr_strdup(pipeline);
    evr_err_t err;
    evr_rc_t rc = evr_store_append(st, evs, running ? n - 2 : n, &err);
    if (rc)
        fprintf(stderr, "  append %s: %s\n", id, err.msg);
    CHECK(rc == EVR_OK);
    evr_synth_free(evs, n);
    free(id);
}

static bool
s_known(evr_store_t *st, int i)
{
    char *id = s_job_id(i);
    evr_job_t job = { 0 };
    evr_err_t err;
    bool known = evr_store_get_job(st, id, &job, &err) == EVR_OK;
    evr_rec_free(&evr_job_type, &job);
    free(id);
    return known;
}

static void
s_print(const char *line, void *arg)
{
    (*(int *) arg)++;
    fprintf(stderr, "  verify: %s\n", line);
}

static void
s_verify_clean(evr_store_t *st, uint64_t pruned)
{
    evr_rebuild_verify_t v;
    evr_err_t err;
    int lines = 0;
    CHECK(evr_rebuild_verify(st, s_print, &lines, &v, &err) == EVR_OK);
    CHECK(v.differences == 0 && lines == 0 && v.pruned == pruned);
}

static void
s_removed(const char *job, void *arg)
{
    (void) job;
    (*(int *) arg)++;
}

static const char *const s_prefixes[] = { "q/", "lost/", NULL };

static void
s_kv(evr_store_t *st, const char *key)
{
    evr_store_kv_t op = { key, "x", 1 };
    evr_err_t err;
    CHECK(evr_store_kv_write(st, &op, 1, &err) == EVR_OK);
}

static bool
s_has_kv(evr_store_t *st, const char *key)
{
    char buf[8];
    evr_err_t err;
    return evr_store_kv_get(st, key, buf, sizeof buf, &err) == EVR_OK;
}

static void
test_keep_per_pipeline(void)
{
    char *dir = evr_stest_dir("keep");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    for (int i = 1; i <= 8; i++)
        s_job(st, i, "a", false);
    s_job(st, 9, "b", false);
    s_job(st, 10, "b", false);
    s_job(st, 11, "a", true);            /* running: never pruned, not counted */
    char *first = s_job_id(1), *kept = s_job_id(8);
    char *k1 = evr_asprintf("q/%s", first), *k2 = evr_asprintf("lost/%s/r1", first);
    char *k3 = evr_asprintf("lost/%s/r1", kept), *k4 = evr_asprintf("lost/%sX", first);
    s_kv(st, k1);
    s_kv(st, k2);
    s_kv(st, k3);
    s_kv(st, k4);
    evr_prune_policy_t pol = { .keep_per_pipeline = 3, .kv_prefixes = s_prefixes };
    uint64_t last0 = 0;
    CHECK(evr_store_last_seq(st, &last0, &err) == EVR_OK);

    /* a dry run counts all five and changes nothing */
    evr_prune_stats_t dry = { 0 };
    bool more = true;
    int removed = 0;
    CHECK(evr_store_prune(st, &pol, evr_now_ns(), 2, true, s_removed, &removed, &dry, &more,
                          &err) == EVR_OK);
    CHECK(dry.jobs == 5 && !more && removed == 0 && dry.events > 0 && dry.bytes > 10000);
    CHECK(s_known(st, 1) && s_has_kv(st, k1));

    /* batches of two: 2, 2, 1 */
    evr_prune_stats_t done = { 0 };
    int rounds = 0;
    do {
        CHECK(evr_store_prune(st, &pol, evr_now_ns(), 2, false, s_removed, &removed, &done,
                              &more, &err) == EVR_OK);
        rounds++;
    } while (more && rounds < 10);
    CHECK(rounds == 3 && removed == 5);
    CHECK(done.jobs == dry.jobs && done.events == dry.events && done.bytes == dry.bytes
          && done.records == dry.records);
    for (int i = 1; i <= 5; i++)
        CHECK(!s_known(st, i));
    for (int i = 6; i <= 11; i++)
        CHECK(s_known(st, i));
    CHECK(!s_has_kv(st, k1) && !s_has_kv(st, k2));
    CHECK(s_has_kv(st, k3) && s_has_kv(st, k4));   /* a kept job's; another key */
    s_verify_clean(st, 5);
    evr_prune_meta_t pm;
    CHECK(evr_store_pruned(st, &pm, &err) == EVR_OK);
    CHECK(pm.jobs == 5 && pm.events == done.events);
    char *fifth = s_job_id(5);
    CHECK(strcmp(pm.upto, fifth) == 0);
    /* nothing more to do; the seq goes on past the removed events */
    CHECK(evr_store_prune(st, &pol, evr_now_ns(), 2, false, NULL, NULL, &done, &more, &err)
          == EVR_OK && !more && done.jobs == 5);
    s_job(st, 12, "b", false);
    uint64_t last1 = 0;
    CHECK(evr_store_last_seq(st, &last1, &err) == EVR_OK && last1 > last0);
    s_verify_clean(st, 5);
    free(fifth);
    free(first);
    free(kept);
    free(k1);
    free(k2);
    free(k3);
    free(k4);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);
}

static void
test_max_age_and_output(void)
{
    char *dir = evr_stest_dir("age");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    for (int i = 1; i <= 4; i++)
        s_job(st, i, "a", false);
    s_job(st, 5, "a", true);
    uint64_t now = evr_now_ns();
    uint64_t hour = 3600ull * 1000000000ull;

    /* output older than an hour, an hour from now: dropped, events kept */
    evr_prune_policy_t out = { .output_max_age_ms = 3600000 };
    evr_prune_stats_t st1 = { 0 };
    bool more;
    CHECK(evr_store_prune(st, &out, now + 2 * hour, 100, false, NULL, NULL, &st1, &more, &err)
          == EVR_OK);
    CHECK(st1.outputs == 4 && st1.jobs == 0 && st1.bytes >= 4 * 4000);
    char *id = s_job_id(2);
    evr_job_t job = { 0 };
    CHECK(evr_store_get_job(st, id, &job, &err) == EVR_OK && job.output_dropped);
    evr_rec_free(&evr_job_type, &job);
    s_verify_clean(st, 0);
    /* done once: a second pass finds nothing */
    evr_prune_stats_t st2 = { 0 };
    CHECK(evr_store_prune(st, &out, now + 2 * hour, 100, false, NULL, NULL, &st2, &more, &err)
          == EVR_OK && st2.outputs == 0);

    /* max_age: nothing is old yet now; an hour later every finished job goes */
    evr_prune_policy_t age = { .max_age_ms = 3600000 };
    evr_prune_stats_t st3 = { 0 };
    CHECK(evr_store_prune(st, &age, now, 100, false, NULL, NULL, &st3, &more, &err) == EVR_OK
          && st3.jobs == 0);
    /* not yet acknowledged past job 2's last event: jobs 3 and 4 stay */
    CHECK(evr_store_get_job(st, id, &job, &err) == EVR_OK);
    age.upto_seq = job.last_seq;
    evr_rec_free(&evr_job_type, &job);
    CHECK(evr_store_prune(st, &age, now + 2 * hour, 100, false, NULL, NULL, &st3, &more, &err)
          == EVR_OK && st3.jobs == 2);
    CHECK(!s_known(st, 1) && !s_known(st, 2) && s_known(st, 3) && s_known(st, 4));
    age.upto_seq = 0;
    CHECK(evr_store_prune(st, &age, now + 2 * hour, 100, false, NULL, NULL, &st3, &more, &err)
          == EVR_OK && st3.jobs == 4);
    CHECK(s_known(st, 5));   /* running */
    s_verify_clean(st, 4);
    /* a read-only store refuses */
    evr_store_t *ro;
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &ro, &err) == EVR_OK);
    CHECK(evr_store_prune(ro, &age, now, 100, false, NULL, NULL, &st3, &more, &err)
          == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "read-only");
    evr_store_destroy(&ro);
    free(id);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);
}

/*  A batch stops past 50,000 events: three jobs of 26,000 events each go
    in two batches although max_jobs would take them all at once. */
static void
test_batch_events(void)
{
    char *dir = evr_stest_dir("events");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    for (int i = 1; i <= 3; i++) {
        char *id = s_job_id(i);
        size_t n;
        evr_event_t **evs = evr_synth_job(id, 1, 26000, 1, &n);
        for (size_t k = 0; k < n; k += EVR_STORE_MAX_BATCH)
            CHECK(evr_store_append(st, evs + k, n - k < EVR_STORE_MAX_BATCH ? n - k
                                                                          : EVR_STORE_MAX_BATCH,
                                   &err) == EVR_OK);
        evr_synth_free(evs, n);
        free(id);
    }
    evr_prune_policy_t pol = { .max_age_ms = 1 };
    evr_prune_stats_t ps = { 0 };
    bool more = false;
    uint64_t later = evr_now_ns() + 1000000000ull;
    CHECK(evr_store_prune(st, &pol, later, 100, false, NULL, NULL, &ps, &more, &err) == EVR_OK);
    CHECK(ps.jobs == 2 && more);
    CHECK(evr_store_prune(st, &pol, later, 100, false, NULL, NULL, &ps, &more, &err) == EVR_OK);
    CHECK(ps.jobs == 3 && !more && ps.events > 78000);
    s_verify_clean(st, 3);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);
}

/*  Puts an event the state machine refuses (jseq 2 of a job never
    accepted) at the log's next seq, as no writer of evrun does, with
    LMDB alone: --verify reports it (its one difference) while reading the
    log, and its report is the moment a test acts "while checking". */
static void
s_put_illegal(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi events, meta;
    CHECK(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 8);
    CHECK(mdb_env_open(env, dir, 0, 0600) == 0);
    CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    CHECK(mdb_dbi_open(txn, "events", 0, &events) == 0);
    CHECK(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
    MDB_val mk = { 8, "last_seq" }, mv;
    CHECK(mdb_get(txn, meta, &mk, &mv) == 0 && mv.mv_size == 8);
    uint8_t key[8];
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++)
        seq = seq << 8 | ((const uint8_t *) mv.mv_data)[i];
    seq++;
    for (int i = 7; i >= 0; i--)
        key[7 - i] = (uint8_t) (seq >> (8 * i));
    evr_event_t *ev = evr_event_new(EVR_EV_JOB_STARTED);
    ev->seq = seq;
    ev->job = evr_strdup("01JQ7ZK3M8X2V9T4B6N9999999");
    ev->jseq = 2;
    ev->time = evr_now_ns();
    uint8_t *buf;
    size_t len;
    evr_event_encode(ev, &buf, &len);
    MDB_val k = { 8, key }, v = { len, buf };
    CHECK(mdb_put(txn, events, &k, &v, 0) == 0);
    mv = (MDB_val) { 8, key };
    CHECK(mdb_put(txn, meta, &mk, &mv, 0) == 0);
    CHECK(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    free(buf);
    evr_event_destroy(&ev);
}

typedef struct {
    evr_store_t *st;
    int lines, pruned;
    bool said_other;
} s_during_t;

/*  --verify's report: at its first line (the illegal event) retention
    removes every finished job; any other line is a difference it found. */
static void
s_prune_during(const char *line, void *arg)
{
    s_during_t *d = arg;
    if (d->lines++ == 0) {
        evr_prune_policy_t pol = { .max_age_ms = 1 };
        evr_prune_stats_t ps = { 0 };
        bool more = true;
        evr_err_t err;
        for (int k = 0; more && k < 100; k++)
            CHECK(evr_store_prune(d->st, &pol, evr_now_ns() + 1000000000ull, 10000, false,
                                  NULL, NULL, &ps, &more, &err) == EVR_OK);
        d->pruned = (int) ps.jobs;
    }
    if (!strstr(line, "illegal event")) {
        d->said_other = true;
        fprintf(stderr, "  verify: %s\n", line);
    }
}

/*  Retention that removes jobs while --verify reads the log (a live
    broker's or runner's store): the jobs it removed after their events
    were read, and the gaps it left in the part of the log read after it,
    are no difference (they were "in the log, but no projection is
    stored", and "N gaps" in the sequence, before).  The log's first 3
    jobs come before the illegal event, 250 (about 4,750 events) after
    it, past the first read transaction's 4,096 entries. */
static void
test_verify_while_pruned(void)
{
    char *dir = evr_stest_dir("verifyprune");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    for (int i = 1; i <= 3; i++)
        s_job(st, i, "a", false);
    evr_store_destroy(&st);
    s_put_illegal(dir);
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    for (int i = 4; i <= 253; i++)
        s_job(st, i, "a", false);
    s_job(st, 254, "a", true);     /* running: kept */
    s_during_t d = { .st = st };
    evr_rebuild_verify_t v;
    CHECK(evr_rebuild_verify(st, s_prune_during, &d, &v, &err) == EVR_OK);
    CHECK(d.pruned == 253);
    CHECK(!d.said_other && d.lines == 1 && v.differences == 1);
    CHECK(v.changed > 3 && v.changed < 253);   /* those read before they went */
    fprintf(stderr, "  verify while pruned: %llu events, %llu jobs, %llu changed\n",
            (unsigned long long) v.events, (unsigned long long) v.jobs,
            (unsigned long long) v.changed);
    /* once done, the check that counts is clean but for the illegal event */
    s_during_t after = { .st = NULL, .lines = 1 };
    CHECK(evr_rebuild_verify(st, s_prune_during, &after, &v, &err) == EVR_OK);
    CHECK(!after.said_other && after.lines == 2 && v.differences == 1 && v.changed == 0
          && v.pruned == 253);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);
}

/*  A dry run of a store filled to just below its map size: its batch's
    transaction needs fresh pages (copy-on-write) that the map has no room
    for; the map grows as for the prune written, and the dry run counts
    what the prune then removes (it failed with MDB_MAP_FULL before).  The
    first store finds how many jobs fill the map; the second holds one
    fewer (LMDB lays out the same appends alike). */
static void
test_dry_run_near_map_size(void)
{
    char *dir = evr_stest_dir("mapfull1");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    size_t map0 = evr_store_mapsize(st);
    int fill = 0;
    for (int i = 1; i <= 200000 && !fill; i++) {
        s_job(st, i, "a", false);
        if (evr_store_mapsize(st) != map0)
            fill = i;
    }
    CHECK(fill > 100);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);

    dir = evr_stest_dir("mapfull2");
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    for (int i = 1; i < fill; i++)
        s_job(st, i, "a", false);
    CHECK(evr_store_mapsize(st) == map0);
    evr_prune_policy_t pol = { .max_age_ms = 1 };
    uint64_t later = evr_now_ns() + 1000000000ull;
    evr_prune_stats_t dry = { 0 }, done = { 0 };
    bool more = true;
    evr_rc_t rc = evr_store_prune(st, &pol, later, 10000, true, NULL, NULL, &dry, &more, &err);
    if (rc)
        fprintf(stderr, "  dry run: %s\n", err.msg);
    CHECK(rc == EVR_OK && !more && dry.jobs == (uint64_t) fill - 1);
    CHECK(s_known(st, 1) && s_known(st, fill - 1));
    s_verify_clean(st, 0);
    int rounds = 0;
    do
        CHECK(evr_store_prune(st, &pol, later, 10000, false, NULL, NULL, &done, &more, &err)
              == EVR_OK);
    while (more && ++rounds < 1000);
    CHECK(done.jobs == dry.jobs && done.events == dry.events && done.bytes == dry.bytes
          && done.records == dry.records);
    CHECK(!s_known(st, 1) && !s_known(st, fill - 1));
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);
}

/*  Rounds of 40 jobs each, pruned to 10 per pipeline after each round:
    the file's used pages stop growing (LMDB reuses the freed pages). */
static void
test_pages_bounded(void)
{
    char *dir = evr_stest_dir("pages");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    evr_prune_policy_t pol = { .keep_per_pipeline = 10, .kv_prefixes = s_prefixes };
    uint64_t pages[6] = { 0 };
    uint32_t psize = 0;
    int next = 1;
    for (int r = 0; r < 6; r++) {
        for (int i = 0; i < 40; i++, next++)
            s_job(st, next, i % 2 ? "a" : "b", false);
        evr_prune_stats_t ps = { 0 };
        bool more = true;
        for (int k = 0; more && k < 100; k++)
            CHECK(evr_store_prune(st, &pol, evr_now_ns(), 7, false, NULL, NULL, &ps, &more,
                                  &err) == EVR_OK);
        CHECK(ps.jobs == (r == 0 ? 20 : 40));
        CHECK(evr_store_pages(st, &pages[r], &psize, &err) == EVR_OK);
    }
    fprintf(stderr, "  used pages after each round: %llu %llu %llu %llu %llu %llu (of %u bytes)\n",
            (unsigned long long) pages[0], (unsigned long long) pages[1],
            (unsigned long long) pages[2], (unsigned long long) pages[3],
            (unsigned long long) pages[4], (unsigned long long) pages[5], psize);
    /* settled after the first rounds: no growth from round 3 on */
    CHECK(pages[5] <= pages[2] + pages[2] / 10);
    s_verify_clean(st, 220);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);
}

static double
s_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/*  n finished one-step jobs with no output, numbered from first. */
static void
s_small_jobs(evr_store_t *st, int first, int n)
{
    evr_event_t *batch[EVR_STORE_MAX_BATCH];
    size_t have = 0;
    evr_event_t **own[64];
    size_t nown[64], k = 0;
    evr_err_t err;
    for (int i = first; i < first + n; i++) {
        char *id = s_job_id(i);
        own[k] = evr_synth_job(id, 1, 0, 1, &nown[k]);
        for (size_t j = 0; j < nown[k]; j++)
            batch[have++] = own[k][j];
        k++;
        free(id);
        if (k == 64 || i + 1 == first + n) {
            CHECK(evr_store_append(st, batch, have, &err) == EVR_OK);
            for (size_t j = 0; j < k; j++)
                evr_synth_free(own[j], nown[j]);
            have = k = 0;
        }
    }
}

/*  A pass of 500 batches over 5,000 jobs costs about what a dry run of
    them costs (one walk, then each job's removal): it walked every
    projection again for each batch before (some 25 times the dry run's
    CPU time here). */
static void
test_pass_walks_once(void)
{
    char *dir = evr_stest_dir("once");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    s_small_jobs(st, 1, 5000);
    evr_prune_policy_t pol = { .max_age_ms = 1 };
    uint64_t later = evr_now_ns() + 1000000000ull;
    evr_prune_stats_t dry = { 0 }, done = { 0 };
    bool more = true;
    double c0 = s_cpu();
    CHECK(evr_store_prune(st, &pol, later, 10, true, NULL, NULL, &dry, &more, &err) == EVR_OK);
    double dry_s = s_cpu() - c0;
    CHECK(dry.jobs == 5000);
    int batches = 0;
    c0 = s_cpu();
    do
        CHECK(evr_store_prune(st, &pol, later, 10, false, NULL, NULL, &done, &more, &err)
              == EVR_OK);
    while (more && ++batches < 1000);
    double pass_s = s_cpu() - c0;
    fprintf(stderr, "  5,000 jobs: dry run %.3f s CPU, the pass of %d batches %.3f s CPU\n",
            dry_s, batches + 1, pass_s);
    CHECK(done.jobs == 5000 && batches == 499);
    CHECK(pass_s < 4 * dry_s + 0.05);
    s_verify_clean(st, 5000);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);
}

typedef struct {
    const char *held;
    int removed;
    char last[EVR_ULID_LEN + 1];
} s_hold_t;

static bool
s_holds(const char *job, void *arg)
{
    const s_hold_t *h = arg;
    return h->held && strcmp(job, h->held) == 0;
}

static void
s_note_removed(const char *job, void *arg)
{
    s_hold_t *h = arg;
    h->removed++;
    snprintf(h->last, sizeof h->last, "%s", job);
}

/*  The batches after the first take what the pass's walk decided, each
    job asked again: one the caller holds by then is kept (and not
    reported removed); a job that finished after the walk waits for the
    next pass, which removes it as the walk then decides. */
static void
test_pass_checks_again(void)
{
    char *dir = evr_stest_dir("again");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    for (int i = 1; i <= 6; i++)
        s_job(st, i, "a", false);
    s_hold_t h = { 0 };
    evr_prune_policy_t pol = { .keep_per_pipeline = 1, .busy = s_holds, .busy_arg = &h };
    evr_prune_stats_t ps = { 0 };
    bool more = false;
    CHECK(evr_store_prune(st, &pol, evr_now_ns(), 2, false, s_note_removed, &h, &ps, &more,
                          &err) == EVR_OK);
    CHECK(ps.jobs == 2 && more && h.removed == 2);
    char *three = s_job_id(3);
    h.held = three;             /* held by the caller now */
    s_job(st, 7, "a", false);   /* finished after the walk */
    do
        CHECK(evr_store_prune(st, &pol, evr_now_ns(), 2, false, s_note_removed, &h, &ps,
                              &more, &err) == EVR_OK);
    while (more && ps.jobs < 10);
    CHECK(ps.jobs == 4 && h.removed == 4);   /* 1, 2, 4, 5 */
    CHECK(s_known(st, 3) && s_known(st, 6) && s_known(st, 7));
    /* the next pass: 6 (no longer the newest), and 3 once let go */
    h.held = NULL;
    CHECK(evr_store_prune(st, &pol, evr_now_ns(), 2, false, s_note_removed, &h, &ps, &more,
                          &err) == EVR_OK);
    CHECK(ps.jobs == 6 && !more && h.removed == 6);
    CHECK(!s_known(st, 3) && !s_known(st, 6) && s_known(st, 7));
    s_verify_clean(st, 6);
    free(three);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);
}

typedef struct {
    const char *held;
    int asked;      /* busy asked: a walk asks of every finished job */
} s_ask_t;

static bool
s_ask(const char *job, void *arg)
{
    s_ask_t *a = arg;
    a->asked++;
    return a->held && strcmp(job, a->held) == 0;
}

/*  One pass to its end (batches of 3); the jobs it removed and dropped
    the output of in *st, how many times it asked busy in a->asked. */
static void
s_pass(evr_store_t *st, const evr_prune_policy_t *pol, uint64_t now, s_ask_t *a,
       evr_prune_stats_t *ps)
{
    /* (a walk asks of each finished job, a batch again of each it takes) */
    evr_err_t err;
    bool more = true;
    memset(ps, 0, sizeof *ps);
    a->asked = 0;
    for (int k = 0; more && k < 100; k++)
        CHECK(evr_store_prune(st, pol, now, 3, false, NULL, NULL, ps, &more, &err) == EVR_OK);
    CHECK(!more);
}

/*  A pass with nothing to do after one that left nothing undone reads no
    projection (busy is asked of none: before, every pass walked every
    job); one gets to work again, and removes exactly what the policy
    says, once a job finishes, a kept job's age or its output's comes, a
    held job is let go or the acknowledged seq passes a kept job; also
    when the job finished in another process's append. */
static void
test_quiet_pass(void)
{
    char *dir = evr_stest_dir("quiet");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    for (int i = 1; i <= 8; i++)
        s_job(st, i, "a", false);
    s_job(st, 9, "a", true);
    uint64_t now = evr_now_ns(), min = 60ull * 1000000000ull;
    s_ask_t a = { 0 };
    evr_prune_policy_t pol = { .max_age_ms = 60 * 60000, .output_max_age_ms = 30 * 60000,
                               .keep_per_pipeline = 6, .busy = s_ask, .busy_arg = &a };
    evr_prune_stats_t ps;
    s_pass(st, &pol, now, &a, &ps);     /* the first walks: 1 and 2 beyond the six */
    CHECK(ps.jobs == 2 && ps.outputs == 0 && a.asked >= 8);
    CHECK(!s_known(st, 2) && s_known(st, 3));
    s_pass(st, &pol, now + min, &a, &ps);   /* nothing to do: no walk */
    CHECK(ps.jobs == 0 && ps.outputs == 0 && a.asked == 0);
    s_pass(st, &pol, now + 29 * min, &a, &ps);
    CHECK(ps.jobs == 0 && a.asked == 0);

    /* a job finishes: 3 goes, beyond the six again */
    s_job(st, 10, "a", false);
    s_pass(st, &pol, now + 29 * min, &a, &ps);
    CHECK(ps.jobs == 1 && a.asked >= 7 && !s_known(st, 3) && s_known(st, 4));
    s_pass(st, &pol, now + 29 * min, &a, &ps);
    CHECK(ps.jobs == 0 && a.asked == 0);
    /* a running job's event that does not finish it: still quiet */
    s_pass(st, &pol, now + 29 * min, &a, &ps);
    CHECK(a.asked == 0);

    /* the output's age comes (31 min): dropped, 5 held by the caller */
    char *five = s_job_id(5);
    a.held = five;
    s_pass(st, &pol, now + 31 * min, &a, &ps);
    CHECK(ps.jobs == 0 && ps.outputs == 5 && a.asked >= 6);
    s_pass(st, &pol, now + 32 * min, &a, &ps);  /* asks of 5 alone */
    CHECK(ps.outputs == 0 && a.asked == 1);
    a.held = NULL;                              /* let go: walked, dropped */
    s_pass(st, &pol, now + 32 * min, &a, &ps);
    CHECK(ps.outputs == 1 && a.asked >= 6);
    s_pass(st, &pol, now + 59 * min, &a, &ps);
    CHECK(ps.jobs == 0 && ps.outputs == 0 && a.asked == 0);

    /* max_age comes: all six finished go, 9 (running) stays */
    s_pass(st, &pol, now + 61 * min, &a, &ps);
    CHECK(ps.jobs == 6 && a.asked >= 6);
    CHECK(s_known(st, 9) && !s_known(st, 10) && !s_known(st, 4));
    s_pass(st, &pol, now + 62 * min, &a, &ps);
    CHECK(ps.jobs == 0 && a.asked == 0);
    s_verify_clean(st, 9);

    /* a runner's store: kept past the acknowledged seq until the ack
       passes it, then removed */
    s_job(st, 11, "a", false);
    evr_job_t job = { 0 };
    char *eleven = s_job_id(11);
    CHECK(evr_store_get_job(st, eleven, &job, &err) == EVR_OK);
    evr_prune_policy_t run = { .max_age_ms = 60000, .upto_seq = job.last_seq - 1 };
    s_pass(st, &run, now + 62 * min, &a, &ps);
    CHECK(ps.jobs == 0 && s_known(st, 11));
    s_pass(st, &run, now + 63 * min, &a, &ps);
    CHECK(ps.jobs == 0);
    run.upto_seq = job.last_seq;
    s_pass(st, &run, now + 63 * min, &a, &ps);
    CHECK(ps.jobs == 1 && !s_known(st, 11));
    evr_rec_free(&evr_job_type, &job);

    /* another process's append moves final_seq as well */
    now = evr_now_ns() + min;
    s_pass(st, &pol, now, &a, &ps);
    CHECK(ps.jobs == 0);
    s_pass(st, &pol, now, &a, &ps);
    CHECK(a.asked == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int before = evr_test_failed;
        evr_store_t *other;
        if (evr_store_open(dir, EVR_STORE_NOSYNC, &other, &err) != EVR_OK)
            _exit(2);
        for (int i = 12; i <= 19; i++)
            s_job(other, i, "b", false);
        evr_store_destroy(&other);
        _exit(evr_test_failed != before ? 1 : 0);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)
          && WEXITSTATUS(status) == 0);
    s_pass(st, &pol, now, &a, &ps);
    CHECK(ps.jobs == 2 && a.asked >= 8 && !s_known(st, 13) && s_known(st, 14));
    s_pass(st, &pol, now, &a, &ps);
    CHECK(ps.jobs == 0 && a.asked == 0);
    s_verify_clean(st, 12);
    free(five);
    free(eleven);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);
}

static uint64_t
s_file_size(const char *dir)
{
    char *path = evr_asprintf("%s/data.mdb", dir);
    struct stat sb;
    uint64_t n = stat(path, &sb) == 0 ? (uint64_t) sb.st_size : 0;
    free(path);
    return n;
}

/*  Retention frees pages but the file keeps its size; a compacted copy
    (evrun-replay --compact) is as large as the pages in use, put in place
    of the store's data.mdb (its lock.mdb kept) it opens as the writer's
    store again, verifies with the removed jobs counted, and takes new
    events.  A copy into a directory that holds a data.mdb is refused. */
static void
test_compact_copy(void)
{
    char *dir = evr_stest_dir("compact"), *copy = evr_asprintf("%s-copy", dir);
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    for (int i = 1; i <= 400; i++)
        s_job(st, i, "a", false);
    uint64_t full = s_file_size(dir);
    evr_prune_policy_t pol = { .keep_per_pipeline = 10 };
    evr_prune_stats_t ps = { 0 };
    bool more = true;
    for (int k = 0; more && k < 100; k++)
        CHECK(evr_store_prune(st, &pol, evr_now_ns(), 200, false, NULL, NULL, &ps, &more, &err)
              == EVR_OK);
    CHECK(ps.jobs == 390);
    CHECK(s_file_size(dir) >= full);   /* pages freed, the file as large */
    uint64_t bytes = 0;
    CHECK(evr_store_compact_copy(st, copy, &bytes, &err) == EVR_OK);
    fprintf(stderr, "  400 jobs: %llu bytes; 390 removed: %llu; compacted copy: %llu\n",
            (unsigned long long) full, (unsigned long long) s_file_size(dir),
            (unsigned long long) bytes);
    CHECK(bytes == s_file_size(copy) && bytes > 0 && bytes < full / 10);
    CHECK(evr_store_compact_copy(st, copy, &bytes, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "already holds a data.mdb");
    evr_store_destroy(&st);
    char *from = evr_asprintf("%s/data.mdb", copy), *to = evr_asprintf("%s/data.mdb", dir);
    CHECK(rename(from, to) == 0);
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    CHECK(s_known(st, 400) && !s_known(st, 390));
    s_verify_clean(st, 390);
    s_job(st, 401, "a", false);
    CHECK(s_known(st, 401));
    s_verify_clean(st, 390);
    evr_store_destroy(&st);
    free(from);
    free(to);
    evr_stest_rm_rf(dir);
    evr_stest_rm_rf(copy);
    free(copy);
    free(dir);
}

int
main(void)
{
    if (!evr_stest_begin("prune"))
        return 1;
    EVR_TEST_RUN(test_keep_per_pipeline);
    EVR_TEST_RUN(test_max_age_and_output);
    EVR_TEST_RUN(test_batch_events);
    EVR_TEST_RUN(test_pages_bounded);
    EVR_TEST_RUN(test_dry_run_near_map_size);
    EVR_TEST_RUN(test_verify_while_pruned);
    EVR_TEST_RUN(test_pass_walks_once);
    EVR_TEST_RUN(test_pass_checks_again);
    EVR_TEST_RUN(test_quiet_pass);
    EVR_TEST_RUN(test_compact_copy);
    evr_stest_rm_rf(evr_stest_root);
    EVR_TEST_END();
}
