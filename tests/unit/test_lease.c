/*  test_lease.c: the broker's leases (broker/evr_lease.c) over its
    queue's index by runner (evr_queue_of_runner): a broker on a real
    store in a temporary directory, its queue and runner sessions set up
    in memory, evr_lease_check called as a heartbeat would.  The same
    jobs are taken as before the index (a lost or unknown runner's, past
    reclaim_ms; a lost runner's within it, a live runner's and the
    queued ones untouched), at most 64 a heartbeat; the index follows
    dispatch, acceptance, requeue and removal; a job dispatched to a
    runner whose job.accepted was refused is ended failed.  And the
    submit linger's bookkeeping (evr_queue_linger) over real commits of
    that broker.

    test_lease --bench N: N queued jobs and 8 live runners of 4 jobs
    each, 100 heartbeats' lease checks, for callgrind:
        valgrind --tool=callgrind --toggle-collect=evr_lease_check \
            build/bin/test_lease --bench 10000
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_btest.h"
#include "evr_diag.h"
#include "evr_log.h"
#include "evr_test.h"
#include "evr_yaml.h"

static char s_root[64];
static unsigned s_seq;

static evr_broker_t *
s_broker(const char *name)
{
    evr_broker_t *b = evr_btest_broker(s_root, name, NULL, 0);
    if (b)
        b->started = evr_mono_ns() - 60000000000ull;   /* up for a minute */
    return b;
}

/*  A runner session: live (connected), or lost ago_ms ago. */
static void
s_runner(evr_broker_t *b, const char *id, bool live, uint64_t ago_ms)
{
    evr_runners_session_t *r = evr_calloc(1, sizeof *r);
    r->id = evr_strdup(id);
    if (live)
        r->rid = zframe_new("x", 1);
    else {
        r->lost = true;
        r->lost_at = evr_mono_ns() - ago_ms * 1000000ull;
    }
    r->next = b->rlist;
    b->rlist = r;
}

/*  A job in the queue, in state st on runner (NULL: none); its id. */
static const char *
s_job(evr_broker_t *b, evr_queue_state_t st, const char *runner)
{
    evr_queue_job_t *j = evr_calloc(1, sizeof *j);
    snprintf(j->id, sizeof j->id, "01J0000000000000000%07u", ++s_seq % 10000000u);
    j->pipeline = evr_strdup("t");
    j->state = st;
    j->runner = runner ? evr_strdup(runner) : NULL;
    j->created = 1;
    static const char y[] = "pipeline: t\nimage: img\nsteps: [{name: s, run: \"true\"}]\n";
    evr_msg_t *m = evr_msg_new(EVR_MSG_SUBMIT);
    m->job = evr_strdup(j->id);
    m->spec = evr_spec_new();
    evr_diag_t *diag = evr_diag_new("t.yml");
    CHECK(evr_yaml_load(y, sizeof y - 1, m->spec, diag) == EVR_OK);
    evr_diag_destroy(&diag);
    evr_msg_encode(m, &j->body, &j->blen);     /* as the queue keeps it */
    evr_msg_destroy(&m);
    evr_queue_append(b, j);
    return j->id;
}

static size_t
s_count(const evr_broker_t *b, const char *runner)
{
    size_t n = 0;
    for (const evr_queue_job_t *j = evr_queue_of_runner(b, runner); j; j = j->rnext) {
        CHECK(j->runner && strcmp(j->runner, runner) == 0);
        n++;
    }
    return n;
}

static bool
s_on(const evr_broker_t *b, const char *id, evr_queue_state_t st, const char *runner)
{
    const evr_queue_job_t *j = evr_queue_find(b, id);
    return j && j->state == st && (runner ? j->runner && !strcmp(j->runner, runner) : !j->runner);
}

static void
test_lost_taken(void)
{
    evr_broker_t *b = s_broker("lost");
    s_runner(b, "live", true, 0);
    s_runner(b, "gone", false, 10000);     /* lost 10 s: past reclaim_ms */
    s_runner(b, "fresh", false, 100);      /* lost 0.1 s: within it */
    char live_a[3][32], live_d[2][32], gone_a[3][32], gone_d[2][32], fresh[2][32], unk[2][32];
    char queued[32], stale[32];
    for (int i = 0; i < 3; i++) {
        snprintf(live_a[i], 32, "%s", s_job(b, B_ACTIVE, "live"));
        snprintf(gone_a[i], 32, "%s", s_job(b, B_ACTIVE, "gone"));
    }
    for (int i = 0; i < 2; i++) {
        snprintf(live_d[i], 32, "%s", s_job(b, B_DISPATCHED, "live"));
        snprintf(gone_d[i], 32, "%s", s_job(b, B_DISPATCHED, "gone"));
        snprintf(fresh[i], 32, "%s", s_job(b, B_ACTIVE, "fresh"));
        snprintf(unk[i], 32, "%s", s_job(b, B_ACTIVE, "unknown"));   /* no session */
    }
    snprintf(queued, 32, "%s", s_job(b, B_QUEUED, NULL));
    snprintf(stale, 32, "%s", s_job(b, B_QUEUED, "gone"));   /* a dispatch not persisted */
    CHECK(s_count(b, "live") == 5 && s_count(b, "gone") == 6 && s_count(b, "unknown") == 2);
    evr_lease_check(b);
    CHECK(!b->failure);
    for (int i = 0; i < 3; i++) {
        CHECK(s_on(b, live_a[i], B_ACTIVE, "live"));
        CHECK(!evr_queue_find(b, gone_a[i]));   /* ended lost (the archive holds none) */
    }
    for (int i = 0; i < 2; i++) {
        CHECK(s_on(b, live_d[i], B_DISPATCHED, "live"));
        CHECK(s_on(b, gone_d[i], B_QUEUED, NULL));   /* queued again */
        CHECK(s_on(b, fresh[i], B_ACTIVE, "fresh"));
        CHECK(!evr_queue_find(b, unk[i]));
    }
    CHECK(s_on(b, queued, B_QUEUED, NULL));
    CHECK(s_on(b, stale, B_QUEUED, "gone"));
    CHECK(s_count(b, "live") == 5 && s_count(b, "gone") == 1 && s_count(b, "unknown") == 0);
    CHECK(s_count(b, "fresh") == 2);
    /* a second heartbeat takes nothing more */
    evr_lease_check(b);
    CHECK(s_count(b, "live") == 5 && s_count(b, "fresh") == 2 && b->njobs == 11);
    evr_broker_destroy(&b);
}

static void
test_per_beat(void)
{
    evr_broker_t *b = s_broker("beat");
    s_runner(b, "gone", false, 10000);
    for (int i = 0; i < 100; i++)
        s_job(b, B_DISPATCHED, "gone");
    evr_lease_check(b);
    CHECK(s_count(b, "gone") == 100 - 64);   /* at most 64 a heartbeat */
    evr_lease_check(b);
    CHECK(s_count(b, "gone") == 0);
    size_t queued = 0;
    for (const evr_queue_job_t *j = b->jobs; j; j = j->next)
        queued += j->state == B_QUEUED && !j->runner;
    CHECK(queued == 100);
    evr_broker_destroy(&b);
}

static void
test_index(void)
{
    evr_broker_t *b = s_broker("index");
    const char *a = s_job(b, B_QUEUED, NULL);
    char id[32];
    snprintf(id, sizeof id, "%s", a);
    s_job(b, B_ACTIVE, "r1");
    s_job(b, B_ACTIVE, "r1");
    evr_queue_job_t *j = evr_queue_find(b, id);
    CHECK(s_count(b, "r1") == 2 && s_count(b, "r2") == 0);
    j->state = B_DISPATCHED;            /* dispatched */
    evr_queue_set_runner(b, j, "r2");
    CHECK(s_count(b, "r1") == 2 && s_count(b, "r2") == 1);
    evr_queue_accepted(b, j, "r1");     /* accepted by another runner */
    CHECK(s_count(b, "r1") == 3 && s_count(b, "r2") == 0 && j->state == B_ACTIVE);
    evr_queue_remove(b, j);             /* finished */
    CHECK(s_count(b, "r1") == 2 && !evr_queue_find(b, id));
    evr_queue_set_runner(b, evr_queue_of_runner(b, "r1"), NULL);
    CHECK(s_count(b, "r1") == 1);
    evr_broker_destroy(&b);
}

/*  A refused job.accepted of a job dispatched to its runner: the record
    'r' s_refuse writes before the batch is stored (here as a broker
    killed then finds it at its start) makes the next heartbeat end the
    job failed with the broker's own job.accepted and job.finished; the
    job leaves the queue (the runner's slot is free), the record becomes
    'a' and keeps the reason. */
static void
test_refused_dispatched(void)
{
    evr_broker_t *b = s_broker("refused");
    s_runner(b, "r3", false, 100);   /* away 0.1 s: nothing taken for that */
    char id[32], key[64], val[256];
    snprintf(id, sizeof id, "%s", s_job(b, B_DISPATCHED, "r3"));
    snprintf(key, sizeof key, "lost/%s/r3", id);
    snprintf(val, sizeof val, "rthe broker refused event seq 1 (job.accepted) of runner r3: "
             "why; the job is ended here");
    evr_store_kv_t op = { key, val, strlen(val) };
    evr_err_t err;
    CHECK(evr_store_kv_write(b->store, &op, 1, &err) == EVR_OK);
    CHECK(evr_lease_load(b, &err) == EVR_OK && evr_lease_taken(b, id, "r3"));
    CHECK(s_count(b, "r3") == 1);
    evr_lease_check(b);
    CHECK(!b->failure && !evr_queue_find(b, id) && s_count(b, "r3") == 0);
    evr_job_t pj = { 0 };
    CHECK(evr_store_get_job(b->store, id, &pj, &err) == EVR_OK);
    CHECK(pj.status == EVR_JOB_FAILED && !pj.runner && pj.last_jseq == 2);
    CHECK_STR(pj.reason, val + 1);
    evr_rec_free(&evr_job_type, &pj);
    char now[256];
    CHECK(evr_store_kv_get(b->store, key, now, sizeof now, &err) == EVR_OK);
    CHECK(now[0] == 'a' && !strcmp(now + 1, val + 1));
    evr_lease_check(b);   /* once */
    CHECK(evr_store_get_job(b->store, id, &pj, &err) == EVR_OK && pj.last_jseq == 2);
    evr_rec_free(&evr_job_type, &pj);
    evr_broker_destroy(&b);
}

static int
s_bench(int n)
{
    evr_broker_t *b = s_broker("bench");
    char id[16];
    for (int r = 0; r < 8; r++) {
        snprintf(id, sizeof id, "r%d", r);
        s_runner(b, id, true, 0);
        for (int i = 0; i < 4; i++)
            s_job(b, B_ACTIVE, id);
    }
    for (int i = 0; i < n; i++)
        s_job(b, B_QUEUED, NULL);
    for (int i = 0; i < 100; i++)
        evr_lease_check(b);
    printf("%zu jobs, 100 lease checks\n", b->njobs);
    evr_broker_destroy(&b);
    return 0;
}

/*  A client's submit of a new job, from a connection named client. */
static void
s_submit(evr_broker_t *b, const char *client)
{
    static const char y[] = "pipeline: t\nimage: img\nsteps: [{name: s, run: \"true\"}]\n";
    char id[EVR_ULID_LEN + 1];
    snprintf(id, sizeof id, "01J1000000000000000%07u", ++s_seq % 10000000u);
    evr_msg_t m = { .type = EVR_MSG_SUBMIT, .job = evr_strdup(id), .spec = evr_spec_new() };
    evr_diag_t *diag = evr_diag_new("t.yml");
    CHECK(evr_yaml_load(y, sizeof y - 1, m.spec, diag) == EVR_OK);
    evr_diag_destroy(&diag);
    zframe_t *rid = zframe_new(client, strlen(client));
    size_t staged = b->nstaged;
    evr_queue_submit(b, rid, &m, "submit", NULL);
    CHECK(b->nstaged == staged + 1);
    evr_msg_clear(&m);
    zframe_destroy(&rid);
}

/*  A turn's submits wait for the clients the last commit answered, until
    0.3 ms after it, while one has not submitted again: not before a
    first commit, not once every one is back, not with nothing staged. */
static void
test_linger(void)
{
    evr_log_set_level(EVR_LOG_WARN);    /* not a line a job */
    evr_broker_t *b = s_broker("linger");
    s_submit(b, "A");
    s_submit(b, "B");
    CHECK(evr_queue_linger(b) == 0);    /* no commit has answered anyone */
    evr_queue_flush(b);
    CHECK(b->nstaged == 0 && b->njobs == 2);
    CHECK(evr_queue_linger(b) == 0);    /* nothing staged */
    s_submit(b, "A");
    CHECK(evr_queue_linger(b) == b->last_commit + 300000);   /* B not back yet */
    s_submit(b, "B");
    CHECK(evr_queue_linger(b) == 0);    /* both back */
    evr_queue_flush(b);
    s_submit(b, "C");                   /* one the last commit did not answer */
    CHECK(evr_queue_linger(b) == b->last_commit + 300000);
    evr_queue_flush(b);                 /* answered C alone */
    s_submit(b, "C");
    CHECK(evr_queue_linger(b) == 0);
    evr_broker_destroy(&b);
}

int
main(int argc, char **argv)
{
    snprintf(s_root, sizeof s_root, "/tmp/evr-test-lease-XXXXXX");
    if (!mkdtemp(s_root)) {
        perror("mkdtemp");
        return 1;
    }
    int rc = -1;
    if (argc == 3 && !strcmp(argv[1], "--bench"))
        rc = s_bench(atoi(argv[2]));
    else {
        EVR_TEST_RUN(test_lost_taken);
        EVR_TEST_RUN(test_per_beat);
        EVR_TEST_RUN(test_index);
        EVR_TEST_RUN(test_refused_dispatched);
        EVR_TEST_RUN(test_linger);
    }
    char *cmd = evr_asprintf("rm -rf '%s'", s_root);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    free(cmd);
    if (rc >= 0)
        return rc;
    EVR_TEST_END();
}
