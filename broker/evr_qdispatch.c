/*  evr_qdispatch.c: the dispatch of queued jobs (evr_queue.c keeps the
    queue and its records): each pass hands waiting jobs, in queue order,
    to the runners with free slots and all their labels, writes the
    assignments (one synced commit) before it sends `dispatch`; a job's
    job.accepted takes it out of the queue (evr_queue_accepted), and a
    runner lost or refused gives its dispatched jobs back
    (evr_queue_requeue). */
#include <stdlib.h>
#include <string.h>

#include "evr_broker_int.h"

#define S_DISPATCH_BATCH 64

/*  A runner that may take work this pass, and its free slots. */
typedef struct {
    evr_runners_session_t *r;
    uint32_t free;
} s_cand_t;

/*  The runners that may take work, with their free slots: min(credit,
    capacity - jobs assigned), counted once per pass (not per queued job),
    and their sum (*nfree).  Caller frees *out. */
static size_t
s_candidates(const evr_broker_t *b, s_cand_t **out, uint64_t *nfree)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    *nfree = 0;
    for (evr_runners_session_t *r = b->rlist; r; r = r->next) {
        if (!r->rid || !r->resynced || r->draining || r->lost || !r->credit)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = evr_realloc(*out, cap * sizeof **out);
        }
        uint32_t used = evr_queue_assigned(b, r->id);
        uint32_t room = r->capacity > used ? r->capacity - used : 0;
        (*out)[n++] = (s_cand_t) { r, r->credit < room ? r->credit : room };
        *nfree += (*out)[n - 1].free;
    }
    return n;
}

/*  The candidate with the most free slots and every label of j, that j was
    not taken from; *taken: one with a free slot was passed over for that. */
static s_cand_t *
s_pick(const evr_broker_t *b, s_cand_t *cands, size_t n, const evr_queue_job_t *j, bool *taken)
{
    s_cand_t *best = NULL;
    *taken = false;
    for (size_t k = 0; k < n; k++) {
        s_cand_t *c = &cands[k];
        if (!c->free || (best && c->free <= best->free))
            continue;
        if (b->taken && evr_lease_taken(b, j->id, c->r->id)) {
            *taken = true;
            continue;   /* taken from it while it was lost: it may hold a copy */
        }
        bool match = true;
        for (uint32_t i = 0; i < j->labels.n && match; i++)
            match = evr_spec_runner_has_label(&c->r->labels, j->labels.v[i]);
        if (match)
            best = c;
    }
    return best;
}

/*  Persists the n jobs a pass assigned, then sends each its dispatch; one
    not sent waits again. */
static void
s_send(evr_broker_t *b, evr_queue_job_t **sent, size_t n)
{
    evr_err_t err;
    if (evr_queue_persist(b, sent, n, &err)) {
        evr_broker_fail(b, &err);
        for (size_t i = 0; i < n; i++)
            evr_queue_set_state(b, sent[i], B_QUEUED);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        evr_queue_job_t *j = sent[i];
        evr_runners_session_t *r = evr_runners_find(b, j->runner);
        evr_msg_t *sub = evr_queue_submit_of(b, j);
        if (!sub) {     /* it decoded when recorded: not expected */
            evr_queue_set_runner(b, j, NULL);
            if (evr_queue_end_unstarted(b, j, "failed", "its queue record no longer decodes "
                                        "(the broker's log says why)", &err) == EVR_OK)
                b->changed = true;
            continue;
        }
        evr_rc_t rc = EVR_ERR_PROTO;
        if (r->rid) {
            evr_msg_t m = { .type = EVR_MSG_DISPATCH, .job = j->id, .spec = sub->spec,
                            .args = sub->args, .source_tar = sub->source_tar,
                            .ci_source_tar = sub->ci_source_tar,
                            .parent_job = sub->parent_job, .parent_step = sub->parent_step };
            rc = evr_bus_send(b->runners, r->rid, &m, &err);
        }
        evr_msg_destroy(&sub);
        if (rc == EVR_OK) {
            evr_broker_info(b, "job %s dispatched to %s", j->id, r->id);
            evr_queue_note_sent(j, r->id);
            evr_demand_dispatched(b, r, j);
            continue;
        }
        /* Not sent (the runner is gone): the job waits again; the runner, if
           alive, is asked to say hello again by its next message. */
        evr_broker_warn(b, "dispatch of %s to %s failed (%s): queued again", j->id, r->id,
                        r->rid ? err.msg : "not connected");
        zframe_destroy(&r->rid);
        evr_queue_set_state(b, j, B_QUEUED);
        evr_queue_set_runner(b, j, NULL);
        if (evr_queue_persist(b, &j, 1, &err))
            evr_broker_fail(b, &err);
        b->changed = true;
    }
}

void
evr_queue_dispatch(evr_broker_t *b)
{
    if ((!b->changed && !b->fresh) || b->failure)
        return;
    /* a pass over the fresh jobs only: the others found no runner in the
       last pass, and nothing that could give them one came since */
    bool whole = b->changed;
    uint64_t pass = ++b->passes;
    /* a whole pass walks the pipelines' lists merged in queue order,
       leaving out a pipeline once its jobs found no runner */
    evr_queue_walk_t walk;
    if (whole)
        evr_queue_walk_pipes(b, &walk, pass);
    else
        evr_queue_walk_from(&walk, b->fresh);
    b->changed = false;
    b->fresh = NULL;
    s_cand_t *cands;
    uint64_t nfree;     /* a sum of what runners say: wide enough for any */
    size_t ncand = s_candidates(b, &cands, &nfree);
    evr_queue_job_t *sent[S_DISPATCH_BATCH];
    size_t n = 0;
    uint64_t now = evr_now_ns(), due = 0;
    /* until no runner has a free slot: the rest waits for one (a credit,
       a job's end: a change) */
    for (evr_queue_job_t *j; n < S_DISPATCH_BATCH && nfree && (j = evr_queue_walk_next(&walk));) {
        if (j->state != B_QUEUED)
            continue;
        if (j->not_before > now) {  /* in its start_delay: the loop's timer wakes it */
            due = !due || j->not_before < due ? j->not_before : due;
            continue;
        }
        /* free slots only go down during a pass: labels that found no
           runner with a free slot find none later in it either */
        if (j->common && j->pipe->dead == pass)
            continue;
        bool taken;
        s_cand_t *c = s_pick(b, cands, ncand, j, &taken);
        if (!c && j->common && !taken)
            j->pipe->dead = pass;
        if (!c)
            continue;
        uint32_t conc = j->concurrency;
        if (conc && j->pipe->nbusy >= conc)
            continue;
        evr_queue_set_state(b, j, B_DISPATCHED);
        evr_queue_set_runner(b, j, c->r->id);
        nfree--;
        c->free--;
        c->r->credit--;
        sent[n++] = j;
    }
    free(cands);
    bool all = evr_queue_walk_done(&walk);
    evr_queue_walk_fini(&walk);
    /* a pass that stopped early, or saw the fresh jobs only, keeps the
       earlier due time too (at worst a wake-up that finds nothing due) */
    b->next_due = all && whole ? due
                : !due || (b->next_due && b->next_due < due) ? b->next_due : due;
    if (n == S_DISPATCH_BATCH)
        b->changed = true;  /* more next turn */
    if (n)
        s_send(b, sent, n);
}

void
evr_queue_accepted(evr_broker_t *b, evr_queue_job_t *j, const char *runner)
{
    bool was_queued = j->state != B_ACTIVE;
    evr_queue_set_state(b, j, B_ACTIVE);
    if (runner && (!j->runner || strcmp(j->runner, runner) != 0)) {
        evr_queue_set_runner(b, j, runner);
        b->changed = true;  /* a slot of the runner it was sent to is free */
    }
    /* a cancel asked while it was dispatched goes before its record (which
       holds the cancel) is deleted: a broker killed in between finds the
       record at start and holds the cancel for the runner
       (evr_queue_load); one that cannot go now is held so at once */
    if (j->cancel_pending) {
        char why[256];
        if (!evr_runners_control(b, j->runner, "cancel", j->id, j->cancel_reason, j->cancel_force,
                                 why, sizeof why)) {
            evr_err_t err;
            evr_broker_warn(b, "cancel of %s: %s: sent when its runner is back", j->id, why);
            if (evr_policy_hold(b, j, &err)) {
                evr_broker_fail(b, &err);
                return;     /* its record (the cancel in it) stays: a leftover at start */
            }
        }
        else {
            j->cancel_pending = false;
            j->cancel_sent = true;
            if (was_queued && b->test_accept_delay_ms)  /* the tests' kill lands here */
                zclock_sleep((int) b->test_accept_delay_ms);
        }
    }
    if (was_queued) {
        evr_err_t err;
        evr_queue_keep_if_retried(b, j);
        if (evr_queue_persist(b, &j, 1, &err))
            evr_broker_warn(b, "job %s: queue record not deleted (%s); it is at the next "
                            "start", j->id, err.msg);
        free(j->body);
        j->body = NULL;
        j->blen = 0;
    }
}

void
evr_queue_requeue(evr_broker_t *b, const char *runner)
{
    evr_queue_job_t **v;
    size_t n = evr_queue_runner_jobs(b, runner, B_DISPATCHED, &v);
    for (size_t i = 0; i < n; i++) {
        evr_queue_job_t *j = v[i];
        evr_err_t err;
        evr_queue_set_state(b, j, B_QUEUED);
        evr_queue_set_runner(b, j, NULL);
        evr_broker_info(b, "job %s: %s did not take it; queued again", j->id, runner);
        if (j->cancel_pending)
            evr_queue_cancel_queued(b, j, j->cancel_reason ? j->cancel_reason : "cancelled", &err);
        else if (evr_queue_persist(b, &j, 1, &err))
            evr_broker_fail(b, &err);
        b->changed = true;
    }
    free(v);
}
