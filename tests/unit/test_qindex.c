/*  test_qindex.c: the broker's queue in memory (broker/evr_qindex.c) under
    its users: a broker on a real store in a temporary directory, jobs
    submitted through evr_queue_offer (the queue policy, the group commit),
    runner sessions set up in memory with a real connection to the
    broker's runner socket for dispatch.

    After every step the lists and counts are checked against a walk of
    the whole queue (s_check): the queue linked both ways in order, each
    pipeline's and partition's list the queue's jobs of it in the same
    order, every count by state as the walk counts.  Covered: a job
    leaving from the head, the middle, the end; replace, partitioned
    replace, interrupt, limit 0 with concurrency; cancels; dispatch (a
    pass after submits looks at the new jobs only, stops with no free
    slot; concurrency), requeue and acceptance.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_btest.h"
#include "evr_diag.h"
#include "evr_log.h"
#include "evr_test.h"
#include "evr_codec.h"
#include "evr_ulid.h"
#include "evr_yaml.h"

static char s_root[64];
static char s_runner_ep[128];  /* of the last broker made */

static evr_broker_t *
s_broker(const char *name)
{
    return evr_btest_broker(s_root, name, s_runner_ep, sizeof s_runner_ep);
}

/*  Checks j's list (next/prev through the offsets) holds exactly the
    queue's jobs that belong (in queue order), both ways. */
static void
s_check_pipe(const evr_broker_t *b, const char *p, const evr_queue_pipe_t *pl)
{
    const evr_queue_job_t *x = pl->head, *last = NULL;
    size_t n = 0, waiting = 0, busy = 0, delayed = 0, intr = 0, uncommon = 0;
    for (const evr_queue_job_t *j = b->jobs; j; j = j->next) {
        if (strcmp(j->pipeline, p) != 0)
            continue;
        CHECK(x == j && j->pipe == pl && j->pprev == last);
        if (x != j)
            return;
        bool waits = j->state == B_QUEUED || j->state == B_HELD;
        n++;
        waiting += waits;
        busy += !waits;
        delayed += waits && j->not_before;
        uncommon += waits && !j->common;
        intr += j->interrupted;
        last = x;
        x = x->pnext;
    }
    CHECK(!x && pl->tail == last);
    CHECK(pl->njobs == n && pl->nwaiting == waiting && pl->nbusy == busy);
    CHECK(pl->ndelayed == delayed && pl->ninterrupted == intr && pl->nuncommon == uncommon);
    CHECK(evr_queue_count(b, p) == n);
}

/*  The partition of j's: the queue's jobs of j's pipeline that came with
    j's partition, in order. */
static void
s_check_part(const evr_broker_t *b, const evr_queue_job_t *first)
{
    const evr_queue_part_t *pt = first->part;
    CHECK(evr_queue_part(b, first->pipeline, first->partition) == pt && pt->head == first);
    const evr_queue_job_t *x = pt->head, *last = NULL;
    for (const evr_queue_job_t *j = b->jobs; j; j = j->next) {
        if (j->part != pt)
            continue;
        CHECK(x == j && j->tprev == last && !strcmp(j->partition, first->partition)
              && !strcmp(j->pipeline, first->pipeline));
        if (x != j)
            return;
        last = x;
        x = x->tnext;
    }
    CHECK(!x && pt->tail == last);
}

/*  The queue's lists and counts against a walk of it. */
static void
s_check(const evr_broker_t *b)
{
    size_t n = 0, unstarted = 0, pipes = 0;
    const evr_queue_job_t *prev = NULL;
    for (const evr_queue_job_t *j = b->jobs; j; prev = j, j = j->next) {
        CHECK(j->prev == prev && j->pipe && evr_queue_find(b, j->id) == j);
        CHECK(!prev || prev->order < j->order);
        n++;
        unstarted += j->state != B_ACTIVE;
        if (j->pipe->head == j) {
            pipes++;
            s_check_pipe(b, j->pipeline, j->pipe);
        }
        if (j->part && j->part->head == j)
            s_check_part(b, j);
        CHECK(!j->planned);
    }
    CHECK(b->last == prev && b->njobs == n && b->nunstarted == unstarted);
    CHECK(zhashx_size(b->qpipes) == pipes && zhashx_size(b->index) == n);
}

/*  The ids of the queue's jobs, as "i j k" by their number in ids. */
static void
s_order(const evr_broker_t *b, char (*ids)[EVR_ULID_LEN + 1], size_t nids, char *out, size_t len)
{
    size_t at = 0;
    out[0] = '\0';
    for (const evr_queue_job_t *j = b->jobs; j && at < len; j = j->next)
        for (size_t i = 0; i < nids; i++)
            if (!strcmp(j->id, ids[i]))
                at += (size_t) snprintf(out + at, len - at, "%s%zu", at ? " " : "", i);
}

/*  A submit of yml (args K=k when k) as the broker's own (no client):
    true when accepted; its id into id; committed. */
static bool
s_offer(evr_broker_t *b, const char *yml, const char *k, char *id, const char **code)
{
    evr_msg_t m = { .type = EVR_MSG_SUBMIT, .spec = evr_spec_new() };
    char job[EVR_ULID_LEN + 1];
    evr_ulid_new(job);
    m.job = evr_strdup(job);
    evr_diag_t *diag = evr_diag_new("t.yml");
    CHECK(evr_yaml_load(yml, strlen(yml), m.spec, diag) == EVR_OK);
    evr_diag_destroy(&diag);
    if (k)
        evr_strmap_set(&m.args, "K", k);
    bool existing;
    char why[1024];
    *code = NULL;
    bool ok = evr_queue_offer(b, NULL, &m, "submit", &existing, code, why, sizeof why);
    evr_queue_flush(b);
    if (id)
        snprintf(id, EVR_ULID_LEN + 1, "%s", job);
    evr_msg_clear(&m);
    return ok && !existing;
}

#define S_STEPS "image: img\nsteps: [{name: s, run: \"true\"}]\n"

/*  A refusal longer than an error's message (64 undeclared args: 50
    reasons kept and "and 14 more", over 4096 bytes) is cut within the
    protocol's 4096 bytes on a character, "…" last, not at an internal
    buffer's size mid-word. */
static void
test_refusal_fits(void)
{
    evr_broker_t *b = s_broker("fits");
    evr_msg_t m = { .type = EVR_MSG_SUBMIT, .spec = evr_spec_new() };
    char job[EVR_ULID_LEN + 1];
    evr_ulid_new(job);
    m.job = evr_strdup(job);
    const char *yml = "pipeline: p\n" S_STEPS;
    evr_diag_t *diag = evr_diag_new("t.yml");
    CHECK(evr_yaml_load(yml, strlen(yml), m.spec, diag) == EVR_OK);
    evr_diag_destroy(&diag);
    for (int i = 0; i < 64; i++) {
        char k[16];
        snprintf(k, sizeof k, "A%d", i);
        evr_strmap_set(&m.args, k, "v");
    }
    bool existing;
    const char *code = NULL;
    char why[EVR_MESSAGE_MAX + 1];
    CHECK(!evr_queue_offer(b, NULL, &m, "submit", &existing, &code, why, sizeof why));
    size_t n = strlen(why);
    CHECK(n > 3000 && n <= EVR_MESSAGE_MAX);
    /* whole reasons, then how many more were left out */
    unsigned more = 0;
    const char *tail = strstr(why, "; and ");
    CHECK(tail && sscanf(tail, "; and %u more", &more) == 1 && more > 0 && more < 64);
    CHECK(n > 5 && !strcmp(why + n - 5, " more"));
    CHECK_CONTAINS(why, "submit: args.A0: the pipeline declares no arg \"A0\"");
    CHECK_CONTAINS(why, "submit: args.A30: the pipeline declares no arg");
    /* one arg whose name is 1000 two-byte characters: cut, valid UTF-8 */
    evr_strmap_free(&m.args);
    char big[2001];
    for (int i = 0; i < 1000; i++)
        memcpy(big + 2 * i, "\xc3\xa9", 2);
    big[2000] = '\0';
    evr_strmap_set(&m.args, big, "v");
    CHECK(!evr_queue_offer(b, NULL, &m, "submit", &existing, &code, why, sizeof why));
    CHECK(evr_utf8_valid(why, strlen(why)));
    CHECK_CONTAINS(why, EVR_CUT_MARK);
    evr_msg_clear(&m);
    evr_broker_destroy(&b);
}

/*  A job leaves from the head, the middle and the end of the queue and
    of its pipeline's list; one pushed at the front comes first. */
static void
test_unlink(void)
{
    evr_broker_t *b = s_broker("unlink");
    char ids[7][EVR_ULID_LEN + 1], order[128];
    const char *code;
    for (int i = 0; i < 6; i++)
        CHECK(s_offer(b, i % 2 ? "pipeline: a\n" S_STEPS : "pipeline: b\n" S_STEPS, NULL, ids[i],
                      &code));
    s_check(b);
    s_order(b, ids, 6, order, sizeof order);
    CHECK_STR(order, "0 1 2 3 4 5");
    evr_queue_remove(b, evr_queue_find(b, ids[2]));   /* the middle */
    s_check(b);
    evr_queue_remove(b, evr_queue_find(b, ids[5]));   /* the end */
    s_check(b);
    evr_queue_remove(b, evr_queue_find(b, ids[0]));   /* the head */
    s_check(b);
    s_order(b, ids, 6, order, sizeof order);
    CHECK_STR(order, "1 3 4");
    CHECK(evr_queue_count(b, "a") == 2 && evr_queue_count(b, "b") == 1);
    evr_queue_job_t *j = evr_calloc(1, sizeof *j);
    evr_ulid_new(ids[6]);
    snprintf(j->id, sizeof j->id, "%s", ids[6]);
    j->pipeline = evr_strdup("b");
    j->state = B_ACTIVE;
    j->runner = evr_strdup("r1");
    evr_queue_push_front(b, j);     /* met first in a runner's log */
    s_check(b);
    s_order(b, ids, 7, order, sizeof order);
    CHECK_STR(order, "6 1 3 4");
    CHECK(evr_queue_assigned(b, "r1") == 1 && b->nunstarted == 3);
    evr_queue_remove(b, evr_queue_find(b, ids[4]));   /* b's only waiting one */
    s_check(b);
    evr_queue_remove(b, evr_queue_find(b, ids[6]));
    s_check(b);
    CHECK(!evr_queue_pipe(b, "b") && evr_queue_count(b, "b") == 0);
    while (b->jobs)
        evr_queue_remove(b, b->jobs);
    s_check(b);
    CHECK(!b->jobs && !b->last && zhashx_size(b->qpipes) == 0);
    evr_broker_destroy(&b);
}

/*  The counts follow state changes, an interrupt, a start_delay, a cancel
    in the queue. */
static void
test_counts(void)
{
    evr_broker_t *b = s_broker("counts");
    char ids[4][EVR_ULID_LEN + 1];
    const char *code;
    CHECK(s_offer(b, "pipeline: c\n" S_STEPS, NULL, ids[0], &code));
    CHECK(s_offer(b, "pipeline: c\nstart_delay: 60s\n" S_STEPS, NULL, ids[1], &code));
    CHECK(s_offer(b, "pipeline: c\n" S_STEPS, NULL, ids[2], &code));
    CHECK(s_offer(b, "pipeline: c\n" S_STEPS, NULL, ids[3], &code));
    s_check(b);
    const evr_queue_pipe_t *pl = evr_queue_pipe(b, "c");
    CHECK(pl && pl->nwaiting == 4 && pl->ndelayed == 1 && pl->nbusy == 0);
    evr_queue_job_t *j0 = evr_queue_find(b, ids[0]), *j1 = evr_queue_find(b, ids[1]);
    evr_queue_set_state(b, j1, B_HELD);     /* paused: waits still */
    s_check(b);
    CHECK(pl->ndelayed == 1 && pl->nwaiting == 4);
    evr_queue_set_state(b, j0, B_DISPATCHED);
    evr_queue_set_runner(b, j0, "r1");
    s_check(b);
    CHECK(pl->nbusy == 1 && b->nunstarted == 4 && evr_queue_assigned(b, "r1") == 1);
    evr_queue_accepted(b, j0, "r1");
    s_check(b);
    CHECK(pl->nbusy == 1 && b->nunstarted == 3);
    evr_queue_set_interrupted(b, j0);
    s_check(b);
    CHECK(pl->ninterrupted == 1);
    evr_err_t err;
    CHECK(evr_queue_cancel_queued(b, evr_queue_find(b, ids[2]), "test", &err) == EVR_OK);
    s_check(b);
    CHECK(!evr_queue_find(b, ids[2]) && pl->nwaiting == 2 && b->nunstarted == 2);
    evr_queue_remove(b, j0);    /* finished */
    s_check(b);
    CHECK(pl->ninterrupted == 0 && pl->nbusy == 0 && pl->njobs == 2);
    evr_broker_destroy(&b);
}

/*  A broker started again over the same store rebuilds the lists and
    counts from what it reloads: the same jobs, in the same order. */
static void
test_reload(void)
{
    evr_broker_t *b = s_broker("reload");
    char ids[5][EVR_ULID_LEN + 1], before[64], after[64];
    const char *code;
    CHECK(s_offer(b, "pipeline: r\n" S_STEPS, NULL, ids[0], &code));
    CHECK(s_offer(b, "pipeline: q\nstart_delay: 60s\n" S_STEPS, NULL, ids[1], &code));
    CHECK(s_offer(b, "pipeline: r\n" S_STEPS, NULL, ids[2], &code));
    CHECK(s_offer(b, "pipeline: q\n" S_STEPS, NULL, ids[3], &code));
    CHECK(s_offer(b, "pipeline: r\n" S_STEPS, NULL, ids[4], &code));
    evr_err_t err;
    CHECK(evr_queue_cancel_queued(b, evr_queue_find(b, ids[2]), "test", &err) == EVR_OK);
    s_check(b);
    s_order(b, ids, 5, before, sizeof before);
    CHECK_STR(before, "0 1 3 4");
    evr_broker_destroy(&b);
    b = s_broker("reload");
    s_check(b);
    s_order(b, ids, 5, after, sizeof after);
    CHECK_STR(after, before);
    const evr_queue_pipe_t *r = evr_queue_pipe(b, "r"), *q = evr_queue_pipe(b, "q");
    CHECK(r && r->njobs == 2 && r->nwaiting == 2 && r->nbusy == 0);
    CHECK(q && q->njobs == 2 && q->nwaiting == 2 && q->ndelayed == 1);
    CHECK(b->njobs == 4 && b->nunstarted == 4);
    evr_broker_destroy(&b);
}

/*  The queue policies' outcomes over the per-pipeline lists: the jobs a
    submit replaces, in order; a full wait list; limit 0 with concurrency,
    where an interrupted job no longer holds its slot. */
static void
test_policy(void)
{
    evr_log_set_level(EVR_LOG_ERROR);   /* not a line a job */
    evr_broker_t *b = s_broker("policy");
    char ids[12][EVR_ULID_LEN + 1], order[128];
    const char *code;
    static const char rep[] = "pipeline: r\nqueue: {strategy: replace, limit: 2}\n" S_STEPS;
    static const char other[] = "pipeline: o\n" S_STEPS;
    CHECK(s_offer(b, rep, NULL, ids[0], &code));
    CHECK(s_offer(b, other, NULL, ids[1], &code));
    CHECK(s_offer(b, rep, NULL, ids[2], &code));
    CHECK(s_offer(b, rep, NULL, ids[3], &code));    /* replaces 0, the oldest */
    s_check(b);
    s_order(b, ids, 4, order, sizeof order);
    CHECK_STR(order, "1 2 3");
    static const char full[] = "pipeline: r\nqueue: {limit: 2}\n" S_STEPS;
    CHECK(!s_offer(b, full, NULL, NULL, &code) && !strcmp(code, EVR_CODE_QUEUE_FULL));
    s_check(b);
    /* debounce: every waiting job in its start_delay goes */
    static const char deb[] = "pipeline: r\nstart_delay: 60s\n"
                              "queue: {strategy: replace, limit: 5}\n" S_STEPS;
    CHECK(s_offer(b, deb, NULL, ids[4], &code));
    CHECK(s_offer(b, deb, NULL, ids[5], &code));    /* replaces 4 */
    s_check(b);
    s_order(b, ids, 6, order, sizeof order);
    CHECK_STR(order, "1 2 3 5");
    /* partitioned: the same value's waiting jobs go, the others stay */
    static const char part[] = "pipeline: p\nargs: {K: {}}\n"
                               "queue: {strategy: partitioned_replace, partition_by: K}\n" S_STEPS;
    CHECK(s_offer(b, part, "x", ids[6], &code));
    CHECK(s_offer(b, part, "y", ids[7], &code));
    CHECK(s_offer(b, part, "x", ids[8], &code));    /* replaces 6 */
    s_check(b);
    s_order(b, ids, 9, order, sizeof order);
    CHECK_STR(order, "1 2 3 5 7 8");
    evr_queue_job_t *j7 = evr_queue_find(b, ids[7]);
    evr_queue_set_state(b, j7, B_DISPATCHED);   /* running: not replaced */
    evr_queue_set_runner(b, j7, "r1");
    evr_queue_accepted(b, j7, "r1");
    CHECK(s_offer(b, part, "y", ids[9], &code));
    s_check(b);
    CHECK(evr_queue_find(b, ids[7]) && evr_queue_pipe(b, "p")->nwaiting == 2);
    /* limit 0, concurrency 1: j7 holds the slot until interrupted */
    static const char busy[] = "pipeline: p\nconcurrency: 1\nargs: {K: {}}\n"
                               "queue: {strategy: partitioned_replace, partition_by: K, "
                               "limit: 0}\n" S_STEPS;
    CHECK(!s_offer(b, busy, "z", NULL, &code) && !strcmp(code, EVR_CODE_BUSY));
    s_check(b);
    static const char intr[] = "pipeline: p\nconcurrency: 1\nargs: {K: {}}\n"
                               "queue: {strategy: partitioned_replace, partition_by: K, "
                               "limit: 0, interrupt: true}\n" S_STEPS;
    /* y: interrupts 7 (running), replaces 9 (waiting); 8 (x) still holds a slot */
    CHECK(!s_offer(b, intr, "y", NULL, &code) && !strcmp(code, EVR_CODE_BUSY));
    s_check(b);
    CHECK(!j7->interrupted);    /* a refused submit changes nothing */
    evr_err_t err;
    CHECK(evr_queue_cancel_queued(b, evr_queue_find(b, ids[8]), "test", &err) == EVR_OK);
    CHECK(s_offer(b, intr, "y", ids[10], &code));
    s_check(b);
    CHECK(j7->interrupted && j7->cancel_pending && !evr_queue_find(b, ids[9]));
    CHECK(evr_queue_pipe(b, "p")->ninterrupted == 1);
    s_order(b, ids, 11, order, sizeof order);
    CHECK_STR(order, "1 2 3 5 7 10");
    evr_broker_destroy(&b);
}

/*  A runner session on a real connection to b's runner socket (routing
    id = its id), resynced, with labels l (comma-separated), capacity and
    credit cap. */
static zsock_t *
s_runner(evr_broker_t *b, const char *id, const char *l, uint32_t cap)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    zsock_set_identity(s, id);
    zsock_set_sndtimeo(s, 5000);
    zsock_connect(s, "%s", s_runner_ep);
    CHECK(zstr_send(s, "hi") == 0);     /* once the broker's socket has it, the peer is known */
    zmq_pollitem_t it = { zsock_resolve(b->runners), 0, ZMQ_POLLIN, 0 };
    CHECK(zmq_poll(&it, 1, 5000) == 1);
    zmsg_t *m = zmsg_recv(b->runners);
    zmsg_destroy(&m);
    evr_runners_session_t *r = evr_calloc(1, sizeof *r);
    r->id = evr_strdup(id);
    r->rid = zframe_new(id, strlen(id));
    r->resynced = true;
    r->capacity = r->credit = cap;
    char *all = evr_strdup(l);
    for (char *save = NULL, *t = strtok_r(all, ",", &save); t; t = strtok_r(NULL, ",", &save))
        evr_strlist_push(&r->labels, t);
    free(all);
    r->next = b->rlist;
    b->rlist = r;
    return s;
}

static bool
s_on(const evr_broker_t *b, const char *id, evr_queue_state_t st, const char *runner)
{
    const evr_queue_job_t *j = evr_queue_find(b, id);
    return j && j->state == st && (runner ? j->runner && !strcmp(j->runner, runner) : !j->runner);
}

/*  Dispatch: a pass after submits only looks at the new jobs, and those
    the last pass left for want of a free slot are dispatched at the next
    change; concurrency from the pipeline's count; requeue in order. */
static void
test_dispatch(void)
{
    evr_broker_t *b = s_broker("dispatch");
    char ids[8][EVR_ULID_LEN + 1];
    const char *code;
    static const char ya[] = "pipeline: a\nlabels: [a]\n" S_STEPS;
    static const char yb[] = "pipeline: b\nlabels: [b]\n" S_STEPS;
    static const char yc[] = "pipeline: c\nlabels: [b]\nconcurrency: 1\n" S_STEPS;
    CHECK(s_offer(b, ya, NULL, ids[0], &code));
    zsock_t *rs = s_runner(b, "rb", "b", 2);
    evr_queue_dispatch(b);      /* a whole pass (a new broker): nothing for rb */
    CHECK(s_on(b, ids[0], B_QUEUED, NULL) && !b->changed && !b->fresh);
    CHECK(s_offer(b, yb, NULL, ids[1], &code));
    CHECK(b->fresh == evr_queue_find(b, ids[1]) && !b->changed);
    evr_queue_dispatch(b);
    CHECK(s_on(b, ids[0], B_QUEUED, NULL) && s_on(b, ids[1], B_DISPATCHED, "rb"));
    s_check(b);
    CHECK(s_offer(b, ya, NULL, ids[2], &code));
    CHECK(s_offer(b, yb, NULL, ids[3], &code));
    CHECK(s_offer(b, yb, NULL, ids[4], &code));
    evr_queue_dispatch(b);      /* one slot left: 3 */
    CHECK(s_on(b, ids[3], B_DISPATCHED, "rb") && s_on(b, ids[4], B_QUEUED, NULL));
    CHECK(s_offer(b, yb, NULL, ids[5], &code));
    evr_queue_dispatch(b);      /* no slot */
    CHECK(s_on(b, ids[5], B_QUEUED, NULL));
    s_check(b);
    /* 1 finishes on rb and rb gives credit again: 4 goes (not 5) */
    evr_queue_remove(b, evr_queue_find(b, ids[1]));
    b->changed = true;
    evr_runners_find(b, "rb")->credit = 1;
    evr_queue_dispatch(b);
    CHECK(s_on(b, ids[4], B_DISPATCHED, "rb") && s_on(b, ids[5], B_QUEUED, NULL));
    s_check(b);
    /* rb did not take its jobs (a resync): they wait again, in order */
    evr_queue_requeue(b, "rb");
    CHECK(s_on(b, ids[3], B_QUEUED, NULL) && s_on(b, ids[4], B_QUEUED, NULL));
    CHECK(evr_queue_assigned(b, "rb") == 0 && b->changed);
    s_check(b);
    /* concurrency 1: one of c at a time, counted by its pipeline */
    zsock_t *rc = s_runner(b, "rc", "b", 8);
    CHECK(s_offer(b, yc, NULL, ids[6], &code));
    CHECK(s_offer(b, yc, NULL, ids[7], &code));
    evr_queue_dispatch(b);
    CHECK(s_on(b, ids[6], B_DISPATCHED, NULL) == false && evr_queue_find(b, ids[6])->state
          == B_DISPATCHED);
    CHECK(s_on(b, ids[7], B_QUEUED, NULL) && evr_queue_pipe(b, "c")->nbusy == 1);
    s_check(b);
    evr_queue_accepted(b, evr_queue_find(b, ids[6]), NULL);
    evr_queue_remove(b, evr_queue_find(b, ids[6]));
    b->changed = true;
    evr_queue_dispatch(b);
    CHECK(evr_queue_find(b, ids[7])->state == B_DISPATCHED);
    s_check(b);
    evr_broker_destroy(&b);
    zsock_destroy(&rs);
    zsock_destroy(&rc);
}

/*  A pass skips the jobs whose pipeline's common labels found no runner
    earlier in it, but not a job of other labels, nor after a job that
    found none only because it was taken from the runner that fits. */
static void
test_dead_labels(void)
{
    evr_broker_t *b = s_broker("dead");
    char ids[6][EVR_ULID_LEN + 1];
    const char *code;
    static const char dx[] = "pipeline: d\nlabels: [x]\n" S_STEPS;
    static const char db[] = "pipeline: d\nlabels: [b]\n" S_STEPS;
    static const char eb[] = "pipeline: e\nlabels: [b]\n" S_STEPS;
    CHECK(s_offer(b, dx, NULL, ids[0], &code));
    CHECK(s_offer(b, dx, NULL, ids[1], &code));
    CHECK(s_offer(b, db, NULL, ids[2], &code));     /* of d, not its common labels */
    CHECK(evr_queue_find(b, ids[0])->common && !evr_queue_find(b, ids[2])->common);
    CHECK(s_offer(b, eb, NULL, ids[3], &code));
    /* e's first job was dispatched to rl, which was then lost past reclaim_ms */
    zsock_t *rs = s_runner(b, "rl", "b", 2);
    evr_runners_session_t *r = evr_runners_find(b, "rl");
    evr_queue_job_t *e0 = evr_queue_find(b, ids[3]);
    evr_queue_set_state(b, e0, B_DISPATCHED);
    evr_queue_set_runner(b, e0, "rl");
    r->lost = true;
    r->lost_at = evr_mono_ns() - 2000000000ull;
    evr_lease_check(b);
    CHECK(s_on(b, ids[3], B_QUEUED, NULL) && evr_lease_taken(b, ids[3], "rl"));
    CHECK(s_offer(b, eb, NULL, ids[4], &code));
    r->lost = false;    /* back */
    r->lost_at = 0;
    b->changed = true;
    evr_queue_dispatch(b);
    CHECK(s_on(b, ids[0], B_QUEUED, NULL) && s_on(b, ids[1], B_QUEUED, NULL));
    CHECK(s_on(b, ids[2], B_DISPATCHED, "rl"));
    CHECK(s_on(b, ids[3], B_QUEUED, NULL) && s_on(b, ids[4], B_DISPATCHED, "rl"));
    s_check(b);
    evr_broker_destroy(&b);
    zsock_destroy(&rs);
}

/*  The walk over the pipelines' lists merged (a whole dispatch pass):
    every job of a pipeline with waiting jobs, in the queue's order, also
    one put at the head; a pipeline whose dead is the pass is left out
    after the job that found it so, unless one of its waiting jobs has
    other labels or a start_delay; one with busy jobs only is not walked. */
static void
s_walk(evr_broker_t *b, uint64_t pass, const char *dead, char (*ids)[EVR_ULID_LEN + 1],
       size_t nids, char *out, size_t len)
{
    evr_queue_walk_t w;
    evr_queue_walk_pipes(b, &w, pass);
    size_t at = 0;
    out[0] = '\0';
    for (evr_queue_job_t *j; (j = evr_queue_walk_next(&w)) && at < len;) {
        for (size_t i = 0; i < nids; i++)
            if (!strcmp(j->id, ids[i]))
                at += (size_t) snprintf(out + at, len - at, "%s%zu", at ? " " : "", i);
        if (dead && !strcmp(j->pipeline, dead))
            j->pipe->dead = pass;   /* as a pass marks it when its labels find no runner */
    }
    CHECK(evr_queue_walk_done(&w));
    evr_queue_walk_fini(&w);
}

static void
test_walk(void)
{
    evr_broker_t *b = s_broker("walk");
    char ids[9][EVR_ULID_LEN + 1] = { { 0 } };
    char got[128];
    const char *code;
    static const char *y[] = { "pipeline: p\nlabels: [x]\n" S_STEPS,
                               "pipeline: q\nlabels: [x]\n" S_STEPS,
                               "pipeline: r\nlabels: [x]\n" S_STEPS };
    int of[] = { 0, 1, 0, 2, 1, 0, 0, 2 };  /* p q p r q p p r */
    for (int i = 0; i < 8; i++)
        CHECK(s_offer(b, y[of[i]], NULL, ids[i], &code));
    s_walk(b, 1, NULL, ids, 9, got, sizeof got);
    CHECK(!strcmp(got, "0 1 2 3 4 5 6 7"));
    /* p found no runner at its first job: the rest of p is left out */
    s_walk(b, 2, "p", ids, 9, got, sizeof got);
    CHECK_STR(got, "0 1 3 4 7");
    /* a job put at the head comes first, as in the queue */
    evr_queue_job_t *h = evr_calloc(1, sizeof *h);
    snprintf(h->id, sizeof h->id, "%s", "01HEADHEADHEADHEADHEADHEAD");
    snprintf(ids[8], sizeof ids[8], "%s", h->id);
    h->pipeline = evr_strdup("q");
    h->state = B_QUEUED;
    evr_queue_push_front(b, h);
    s_check(b);
    s_walk(b, 3, NULL, ids, 9, got, sizeof got);
    CHECK_STR(got, "8 0 1 2 3 4 5 6 7");
    /* busy jobs are walked (passed over by the pass), a pipeline with
       busy jobs only is not */
    evr_queue_job_t *r3 = evr_queue_find(b, ids[3]), *r7 = evr_queue_find(b, ids[7]);
    evr_queue_set_state(b, r3, B_DISPATCHED);
    s_walk(b, 4, NULL, ids, 9, got, sizeof got);
    CHECK_STR(got, "8 0 1 2 3 4 5 6 7");
    evr_queue_set_state(b, r7, B_DISPATCHED);
    s_walk(b, 5, NULL, ids, 9, got, sizeof got);
    CHECK_STR(got, "8 0 1 2 4 5 6");
    evr_queue_set_state(b, r3, B_QUEUED);
    evr_queue_set_state(b, r7, B_QUEUED);
    /* p with a job of other labels, or a delayed one, is walked to its end */
    CHECK(s_offer(b, "pipeline: p\nlabels: [z]\n" S_STEPS, NULL, ids[7], &code));
    CHECK(!evr_queue_find(b, ids[7])->common && evr_queue_pipe(b, "p")->nuncommon == 1);
    s_walk(b, 6, "p", ids, 9, got, sizeof got);
    CHECK_STR(got, "8 0 1 2 3 4 5 6 7");   /* 7 is p's new job now (r's old one unnamed) */
    s_check(b);
    evr_queue_remove(b, evr_queue_find(b, ids[7]));
    CHECK(s_offer(b, "pipeline: p\nlabels: [x]\nstart_delay: 60s\n" S_STEPS, NULL, ids[7],
                  &code));
    CHECK(evr_queue_find(b, ids[7])->common && evr_queue_pipe(b, "p")->ndelayed == 1);
    s_walk(b, 7, "p", ids, 9, got, sizeof got);
    CHECK_STR(got, "8 0 1 2 3 4 5 6 7");
    s_check(b);
    evr_broker_destroy(&b);
}

/*  A whole pass that stops early (no free slot left) keeps the due time
    of a delayed job it passed, also of a pipeline whose labels found no
    runner (such a pipeline is walked to its end while a job of it is
    delayed). */
static void
test_walk_due(void)
{
    evr_broker_t *b = s_broker("walkdue");
    char ids[5][EVR_ULID_LEN + 1];
    const char *code;
    CHECK(s_offer(b, "pipeline: p\nlabels: [x]\n" S_STEPS, NULL, ids[0], &code));
    CHECK(s_offer(b, "pipeline: p\nlabels: [x]\nstart_delay: 60s\n" S_STEPS, NULL, ids[1],
                  &code));
    for (int i = 2; i < 5; i++)
        CHECK(s_offer(b, "pipeline: q\nlabels: [b]\n" S_STEPS, NULL, ids[i], &code));
    zsock_t *rs = s_runner(b, "rb", "b", 1);
    b->changed = true;
    b->next_due = 0;
    evr_queue_dispatch(b);
    CHECK(s_on(b, ids[2], B_DISPATCHED, "rb") && s_on(b, ids[3], B_QUEUED, NULL));
    CHECK(s_on(b, ids[0], B_QUEUED, NULL) && s_on(b, ids[1], B_QUEUED, NULL));
    CHECK(b->next_due && b->next_due == evr_queue_find(b, ids[1])->not_before);
    s_check(b);
    evr_broker_destroy(&b);
    zsock_destroy(&rs);
}

int
main(void)
{
    snprintf(s_root, sizeof s_root, "/tmp/evr-test-qindex-XXXXXX");
    if (!mkdtemp(s_root)) {
        perror("mkdtemp");
        return 1;
    }
    evr_log_set_level(EVR_LOG_ERROR);
    EVR_TEST_RUN(test_refusal_fits);
    EVR_TEST_RUN(test_unlink);
    EVR_TEST_RUN(test_counts);
    EVR_TEST_RUN(test_reload);
    EVR_TEST_RUN(test_policy);
    EVR_TEST_RUN(test_dispatch);
    EVR_TEST_RUN(test_dead_labels);
    EVR_TEST_RUN(test_walk);
    EVR_TEST_RUN(test_walk_due);
    char *cmd = evr_asprintf("rm -rf '%s'", s_root);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    free(cmd);
    EVR_TEST_END();
}
