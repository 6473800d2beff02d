/*  test_archive: the broker's side of the store on a real LMDB: events
    ingested from a runner's log keep their per-job seq, a resend is
    stored once, a gap is refused with nothing written, the source's seq
    survives a reopen, events marked to drop are counted but not stored;
    the key-value table (the durable queue), a batch larger than the
    map, more keys than one read transaction visits. */
#include <string.h>
#include <unistd.h>

#include "evr_rebuild.h"
#include "evr_store.h"
#include "evr_synth.h"
#include "evr_test.h"

static char s_root[256];

typedef struct {
    evr_event_t *v;
    size_t n;
} s_events_t;

static int
s_copy(const evr_event_t *ev, void *arg)
{
    s_events_t *e = arg;
    evr_rec_copy(&evr_event_type, &e->v[e->n++], ev);
    return 0;
}

/*  A runner log with two jobs, read back as the runner would send it. */
static void
s_runner_log(const char *dir, s_events_t *out)
{
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    size_t total = 0;
    for (int j = 0; j < 2; j++) {
        size_t n;
        char id[32];
        snprintf(id, sizeof id, "01JQ7ZK3M8X2V9T4B6N000000%d", j);
        evr_event_t **evs = evr_synth_job(id, 2, 3000, 1000, &n);
        CHECK(evr_store_append(st, evs, n, &err) == EVR_OK);
        evr_synth_free(evs, n);
        total += n;
    }
    out->v = evr_calloc(total, sizeof *out->v);
    CHECK(evr_store_scan(st, 1, 0, s_copy, out, &err) == EVR_OK);
    CHECK(out->n == total);
    evr_store_destroy(&st);
}

static void
s_free(s_events_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        evr_rec_free(&evr_event_type, &e->v[i]);
    free(e->v);
}

/*  Ingests events [from, to) of e as one batch (copies: ingest rewrites
    seq); returns the rc and counts the stored ones. */
static evr_rc_t
s_ingest_drop(evr_store_t *st, const char *src, const s_events_t *e, size_t from, size_t to,
              const bool *drop, size_t *stored, evr_err_t *err)
{
    size_t n = to - from;
    evr_event_t *copy = evr_calloc(n, sizeof *copy);
    evr_event_t **p = evr_calloc(n, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        evr_rec_copy(&evr_event_type, &copy[i], &e->v[from + i]);
        p[i] = &copy[i];
    }
    evr_rc_t rc = evr_store_ingest(st, src, p, drop, n, NULL, err);
    *stored = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == EVR_OK && copy[i].seq)
            (*stored)++;
        evr_rec_free(&evr_event_type, &copy[i]);
    }
    free(copy);
    free(p);
    return rc;
}

static evr_rc_t
s_ingest(evr_store_t *st, const char *src, const s_events_t *e, size_t from, size_t to,
         size_t *stored, evr_err_t *err)
{
    return s_ingest_drop(st, src, e, from, to, NULL, stored, err);
}

static int
s_count(const evr_event_t *ev, void *arg)
{
    (void) ev;
    (*(size_t *) arg)++;
    return 0;
}

/*  Keeps the runner of a job's first event (its job.accepted) in *arg. */
static int
s_first_runner(const evr_event_t *ev, void *arg)
{
    char **runner = arg;
    if (ev->jseq == 1 && !*runner)
        *runner = evr_strdup(ev->data.runner ? ev->data.runner : "(none)");
    return 0;
}

static void
test_ingest(void)
{
    char *rdir = evr_asprintf("%s/runner", s_root), *bdir = evr_asprintf("%s/broker", s_root);
    s_events_t log = { 0 };
    s_runner_log(rdir, &log);
    evr_store_t *b;
    evr_err_t err;
    size_t stored, half = log.n / 2;
    CHECK(evr_store_open(bdir, EVR_STORE_NOSYNC, &b, &err) == EVR_OK);
    CHECK(s_ingest(b, "r1", &log, 0, half, &stored, &err) == EVR_OK);
    CHECK(stored == half);
    /* a resend overlapping what is held: only the new part is stored */
    CHECK(s_ingest(b, "r1", &log, 0, log.n, &stored, &err) == EVR_OK);
    CHECK(stored == log.n - half);
    CHECK(s_ingest(b, "r1", &log, 0, log.n, &stored, &err) == EVR_OK);
    CHECK(stored == 0);
    uint64_t high = 0, last = 0;
    CHECK(evr_store_source_seq(b, "r1", &high, &err) == EVR_OK && high == log.n);
    CHECK(evr_store_last_seq(b, &last, &err) == EVR_OK && last == log.n);
    /* per-job seqs kept: the job's events read back dense, the projection
       equals the runner's */
    size_t n = 0;
    CHECK(evr_store_job_events(b, log.v[0].job, 1, s_count, &n, &err) == EVR_OK);
    evr_job_t jb = { 0 }, jr = { 0 };
    evr_store_t *r;
    CHECK(evr_store_open(rdir, EVR_STORE_RDONLY, &r, &err) == EVR_OK);
    CHECK(evr_store_get_job(b, log.v[0].job, &jb, &err) == EVR_OK);
    CHECK(evr_store_get_job(r, log.v[0].job, &jr, &err) == EVR_OK);
    CHECK(n == jr.last_jseq && jb.last_jseq == jr.last_jseq);
    CHECK(jb.status == jr.status && jb.status == EVR_JOB_SUCCEEDED);
    CHECK(jb.steps.n == 2);
    /* its job.accepted named no runner: stored as the sender's */
    CHECK(jr.runner == NULL);
    CHECK_STR(jb.runner, "r1");
    char *runner = NULL;
    CHECK(evr_store_job_events(b, log.v[0].job, 1, s_first_runner, &runner, &err) == EVR_OK);
    CHECK_STR(runner, "r1");
    free(runner);
    evr_rec_free(&evr_job_type, &jb);
    evr_rec_free(&evr_job_type, &jr);
    evr_store_destroy(&r);
    /* another source's numbering is its own */
    CHECK(evr_store_source_seq(b, "r2", &high, &err) == EVR_OK && high == 0);
    evr_rebuild_verify_t v;
    CHECK(evr_rebuild_verify(b, NULL, NULL, &v, &err) == EVR_OK);
    CHECK(v.differences == 0);
    evr_store_destroy(&b);
    /* the source's seq survives a reopen */
    CHECK(evr_store_open(bdir, EVR_STORE_NOSYNC, &b, &err) == EVR_OK);
    CHECK(evr_store_source_seq(b, "r1", &high, &err) == EVR_OK && high == log.n);
    evr_store_destroy(&b);
    s_free(&log);
    free(rdir);
    free(bdir);
}

static void
test_ingest_gap(void)
{
    char *rdir = evr_asprintf("%s/runner-gap", s_root), *bdir = evr_asprintf("%s/broker-gap", s_root);
    s_events_t log = { 0 };
    s_runner_log(rdir, &log);
    evr_store_t *b;
    evr_err_t err;
    size_t stored;
    CHECK(evr_store_open(bdir, EVR_STORE_NOSYNC, &b, &err) == EVR_OK);
    CHECK(s_ingest(b, "r1", &log, 0, 3, &stored, &err) == EVR_OK);
    /* seq 5.. after 3: a gap, refused whole */
    evr_rc_t rc = s_ingest(b, "r1", &log, 4, log.n, &stored, &err);
    CHECK(rc == EVR_ERR_STATE);
    CHECK_CONTAINS(err.msg, "a gap");
    uint64_t high = 0, last = 0;
    CHECK(evr_store_source_seq(b, "r1", &high, &err) == EVR_OK && high == 3);
    CHECK(evr_store_last_seq(b, &last, &err) == EVR_OK && last == 3);
    /* a per-job seq out of order is refused by the state machine */
    evr_event_t bad = { 0 }, *p = &bad;
    evr_rec_copy(&evr_event_type, &bad, &log.v[3]);
    bad.jseq = 9;
    size_t refused = 9;
    CHECK(evr_store_ingest(b, "r1", &p, NULL, 1, &refused, &err) == EVR_ERR_STATE);
    CHECK(refused == 0);   /* the event refused for what it says */
    evr_rec_free(&evr_event_type, &bad);
    evr_rec_copy(&evr_event_type, &bad, &log.v[4]);   /* a gap is no one event's fault */
    CHECK(evr_store_ingest(b, "r1", &p, NULL, 1, &refused, &err) == EVR_ERR_STATE);
    CHECK(refused == 1);
    evr_rec_free(&evr_event_type, &bad);
    CHECK(s_ingest(b, "r1", &log, 3, log.n, &stored, &err) == EVR_OK);
    CHECK(stored == log.n - 3);
    evr_store_destroy(&b);
    s_free(&log);
    free(rdir);
    free(bdir);
}

/*  A runner sends events of its own jobs only: an event of a job the
    archive holds from another runner, or naming another runner, is
    refused for what it says (evr-wire-audit's rogue runner). */
static void
test_ingest_owner(void)
{
    char *rdir = evr_asprintf("%s/runner-owner", s_root);
    char *bdir = evr_asprintf("%s/broker-owner", s_root);
    s_events_t log = { 0 };
    s_runner_log(rdir, &log);   /* two jobs; their job.accepted name no runner */
    evr_store_t *b;
    evr_err_t err;
    size_t stored, refused = 9;
    CHECK(evr_store_open(bdir, EVR_STORE_NOSYNC, &b, &err) == EVR_OK);
    evr_event_t ev = { 0 }, *p = &ev;
    evr_rec_copy(&evr_event_type, &ev, &log.v[0]);   /* job.accepted, seq 1 */
    ev.data.runner = evr_strdup("r1");
    CHECK(evr_store_ingest(b, "r2", &p, NULL, 1, &refused, &err) == EVR_ERR_STATE);
    CHECK(refused == 0);
    CHECK_CONTAINS(err.msg, "names runner r1, but comes from runner r2");
    CHECK(evr_store_ingest(b, "r1", &p, NULL, 1, &refused, &err) == EVR_OK);
    evr_rec_free(&evr_event_type, &ev);
    evr_rec_copy(&evr_event_type, &ev, &log.v[1]);   /* job.started of that job, from r2 */
    ev.seq = 1;
    CHECK(evr_store_ingest(b, "r2", &p, NULL, 1, &refused, &err) == EVR_ERR_STATE);
    CHECK(refused == 0);
    CHECK_CONTAINS(err.msg, "comes from runner r2, but the job runs on runner r1");
    /* named by the seq r2 sent (1), not the one the archive would give it (2) */
    CHECK_CONTAINS(err.msg, "job.started (jseq 2, seq 1) comes from runner r2");
    evr_rec_free(&evr_event_type, &ev);
    CHECK(s_ingest(b, "r1", &log, 1, 2, &stored, &err) == EVR_OK && stored == 1);
    /* a runner event too: r2 cannot record that r1 started (PROTOCOL.md
       "events": an event whose runner names another runner is refused) */
    ev = (evr_event_t) { .seq = 1, .time = 1, .type = EVR_EV_RUNNER_STARTED };
    ev.data.runner = evr_strdup("r1");
    ev.data.version = evr_strdup("0");
    CHECK(evr_store_ingest(b, "r2", &p, NULL, 1, &refused, &err) == EVR_ERR_STATE);
    CHECK(refused == 0);
    CHECK_CONTAINS(err.msg, "runner.started (seq 1) names runner r1, but comes from runner r2");
    CHECK(ev.seq == 1);
    ev.seq = 3;
    CHECK(evr_store_ingest(b, "r1", &p, NULL, 1, &refused, &err) == EVR_OK);   /* its own */
    evr_rec_free(&evr_event_type, &ev);
    evr_store_destroy(&b);
    s_free(&log);
    free(rdir);
    free(bdir);
}

/*  Events marked to drop count in the source's seq but are not stored:
    the broker's way with events of a job it took from a lost runner. */
static void
test_ingest_drop(void)
{
    char *rdir = evr_asprintf("%s/runner-drop", s_root);
    char *bdir = evr_asprintf("%s/broker-drop", s_root);
    s_events_t log = { 0 };
    s_runner_log(rdir, &log);
    const char *gone = log.v[log.n - 1].job;   /* the second job */
    bool *drop = evr_calloc(log.n, sizeof *drop);
    size_t kept = 0;
    for (size_t i = 0; i < log.n; i++) {
        drop[i] = log.v[i].job && strcmp(log.v[i].job, gone) == 0;
        kept += !drop[i];
    }
    CHECK(kept > 0 && kept < log.n);
    evr_store_t *b;
    evr_err_t err;
    size_t stored;
    CHECK(evr_store_open(bdir, EVR_STORE_NOSYNC, &b, &err) == EVR_OK);
    CHECK(s_ingest_drop(b, "r1", &log, 0, log.n, drop, &stored, &err) == EVR_OK);
    CHECK(stored == kept);
    uint64_t high = 0, last = 0;
    CHECK(evr_store_source_seq(b, "r1", &high, &err) == EVR_OK && high == log.n);
    CHECK(evr_store_last_seq(b, &last, &err) == EVR_OK && last == kept);
    evr_job_t j = { 0 };
    CHECK(evr_store_get_job(b, gone, &j, &err) == EVR_ERR_NOTFOUND);
    CHECK(evr_store_get_job(b, log.v[0].job, &j, &err) == EVR_OK);
    CHECK(j.status == EVR_JOB_SUCCEEDED);
    evr_rec_free(&evr_job_type, &j);
    /* a resend of all of it stores nothing more */
    CHECK(s_ingest(b, "r1", &log, 0, log.n, &stored, &err) == EVR_OK);
    CHECK(stored == 0);
    evr_store_destroy(&b);
    free(drop);
    s_free(&log);
    free(rdir);
    free(bdir);
}

typedef struct {
    char keys[8][64];
    size_t n;
} s_keys_t;

static int
s_key(const char *key, const uint8_t *val, size_t len, void *arg)
{
    s_keys_t *k = arg;
    (void) val;
    if (k->n < 8)
        snprintf(k->keys[k->n++], 64, "%s=%zu", key, len);
    return 0;
}

static void
test_kv(void)
{
    char *dir = evr_asprintf("%s/kv", s_root);
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    evr_store_kv_t ops[] = { { "q/B", "bb", 2 }, { "q/A", "a", 1 }, { "x/C", "ccc", 3 } };
    CHECK(evr_store_kv_write(st, ops, 3, &err) == EVR_OK);
    s_keys_t k = { 0 };
    CHECK(evr_store_kv_scan(st, "q/", s_key, &k, &err) == EVR_OK);
    CHECK(k.n == 2);
    CHECK_STR(k.keys[0], "q/A=1");
    CHECK_STR(k.keys[1], "q/B=2");
    char v[8];
    CHECK(evr_store_kv_get(st, "x/C", v, sizeof v, &err) == EVR_OK);
    CHECK_STR(v, "ccc");
    CHECK(evr_store_kv_get(st, "x/C", v, 3, &err) == EVR_OK);   /* cut to fit */
    CHECK_STR(v, "cc");
    CHECK(evr_store_kv_get(st, "q/", v, sizeof v, &err) == EVR_ERR_NOTFOUND);   /* no prefix match */
    CHECK(evr_store_kv_get(st, "x/", v, sizeof v, &err) == EVR_ERR_NOTFOUND);
    evr_store_kv_t del[] = { { "q/A", NULL, 0 }, { "q/none", NULL, 0 } };
    CHECK(evr_store_kv_write(st, del, 2, &err) == EVR_OK);
    char longkey[300];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    evr_store_kv_t big = { longkey, "v", 1 };
    CHECK(evr_store_kv_write(st, &big, 1, &err) == EVR_ERR_LIMIT);
    evr_store_destroy(&st);
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
    memset(&k, 0, sizeof k);
    CHECK(evr_store_kv_scan(st, "", s_key, &k, &err) == EVR_OK);
    CHECK(k.n == 2);
    CHECK_STR(k.keys[0], "q/B=2");
    CHECK_STR(k.keys[1], "x/C=3");
    evr_store_kv_t ro = { "q/Z", "z", 1 };
    CHECK(evr_store_kv_write(st, &ro, 1, &err) == EVR_ERR_STORE);
    evr_store_destroy(&st);
    free(dir);
}

/*  A lazy kv write (its meta page flushed later) is visible at once and
    after a reopen, with sync and with a store without sync; an ordinary
    write after it and evr_store_sync work as before. */
static void
test_kv_lazy(void)
{
    for (int nosync = 0; nosync < 2; nosync++) {
        char *dir = evr_asprintf("%s/kvlazy%d", s_root, nosync);
        evr_store_t *st;
        evr_err_t err;
        CHECK(evr_store_open(dir, nosync ? EVR_STORE_NOSYNC : 0, &st, &err) == EVR_OK);
        evr_store_kv_t a = { "q/A", "aa", 2 }, b = { "q/B", "b", 1 };
        CHECK(evr_store_kv_write_lazy(st, &a, 1, &err) == EVR_OK);
        char v[8];
        CHECK(evr_store_kv_get(st, "q/A", v, sizeof v, &err) == EVR_OK);
        CHECK_STR(v, "aa");
        CHECK(evr_store_kv_write(st, &b, 1, &err) == EVR_OK);
        CHECK(evr_store_kv_write_lazy(st, &a, 1, &err) == EVR_OK);
        CHECK(evr_store_sync(st, &err) == EVR_OK);
        evr_store_destroy(&st);
        CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
        s_keys_t k = { 0 };
        CHECK(evr_store_kv_scan(st, "q/", s_key, &k, &err) == EVR_OK);
        CHECK(k.n == 2);
        CHECK_STR(k.keys[0], "q/A=2");
        CHECK_STR(k.keys[1], "q/B=1");
        CHECK(evr_store_kv_write_lazy(st, &b, 1, &err) == EVR_ERR_STORE);   /* read-only */
        CHECK(evr_store_sync(st, &err) == EVR_OK);
        evr_store_destroy(&st);
        free(dir);
    }
}

static int
s_count_kv(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void) key;
    (void) val;
    (void) len;
    (*(size_t *) arg)++;
    return 0;
}

/*  A kv batch larger than the map grows it and is written whole; a scan
    sees every one of more keys than one read transaction visits. */
static void
test_kv_growth(void)
{
    char *dir = evr_asprintf("%s/kvgrow", s_root);
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    size_t initial = evr_store_mapsize(st);
    enum { BIG = 80, MANY = 5000 };
    size_t vlen = 1u << 20;
    char *val = evr_calloc(1, vlen);
    evr_store_kv_t *ops = evr_calloc(MANY, sizeof *ops);
    char (*keys)[32] = evr_calloc(MANY, sizeof *keys);
    for (int i = 0; i < BIG; i++) {
        snprintf(keys[i], sizeof keys[i], "big/%03d", i);
        ops[i] = (evr_store_kv_t) { keys[i], val, vlen };
    }
    evr_rc_t rc = evr_store_kv_write(st, ops, BIG, &err);
    if (rc)
        fprintf(stderr, "  kv_write: %s\n", err.msg);
    CHECK(rc == EVR_OK);
    CHECK(evr_store_mapsize(st) > initial && evr_store_mapsize(st) >= (size_t) BIG * vlen);
    size_t n = 0;
    CHECK(evr_store_kv_scan(st, "big/", s_count_kv, &n, &err) == EVR_OK && n == BIG);
    for (int i = 0; i < MANY; i++) {
        snprintf(keys[i], sizeof keys[i], "q/%05d", i);
        ops[i] = (evr_store_kv_t) { keys[i], "x", 1 };
    }
    CHECK(evr_store_kv_write(st, ops, MANY, &err) == EVR_OK);
    n = 0;
    CHECK(evr_store_kv_scan(st, "q/", s_count_kv, &n, &err) == EVR_OK && n == MANY);
    n = 0;
    CHECK(evr_store_kv_scan(st, "", s_count_kv, &n, &err) == EVR_OK && n == MANY + BIG);
    free(keys);
    free(ops);
    free(val);
    evr_store_destroy(&st);
    free(dir);
}

int
main(void)
{
    snprintf(s_root, sizeof s_root, "/tmp/evr-test-archive-XXXXXX");
    if (!mkdtemp(s_root)) {
        perror("mkdtemp");
        return 1;
    }
    EVR_TEST_RUN(test_ingest);
    EVR_TEST_RUN(test_ingest_gap);
    EVR_TEST_RUN(test_ingest_drop);
    EVR_TEST_RUN(test_ingest_owner);
    EVR_TEST_RUN(test_kv);
    EVR_TEST_RUN(test_kv_lazy);
    EVR_TEST_RUN(test_kv_growth);
    char *cmd = evr_asprintf("rm -rf '%s'", s_root);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    free(cmd);
    EVR_TEST_END();
}
