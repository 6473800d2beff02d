/*  evr_policy.c: a pipeline's queue policy, applied by the broker when it
    takes a submit (schema/PROTOCOL.md, record `queue`).

    The wait list of a pipeline is its jobs accepted but not dispatched
    yet (queued or paused in the queue).  `limit` bounds it (absent: the
    broker's --queue-limit); `limit: 0` means no wait list: a submit that
    would have to wait for the pipeline's `concurrency` is refused with
    `busy` (one that only waits for a free runner is not).  The strategy
    says what a submit does to the jobs already there:

      append               a full wait list refuses the submit (queue_full)
      replace              the oldest waiting jobs are replaced until there
                           is room, and so is every waiting job still in
                           its start_delay (a debounce)
      partitioned_replace  the waiting job(s) with the same value of the
                           partition_by arg are replaced; a wait list full
                           of other partitions refuses

    With `interrupt: true` (replace strategies) the running jobs of the
    pipeline (of the partition) are cancelled too, through the runner as a
    user's cancel, with the reason "interrupted by JOB"; they no longer
    count against `concurrency` for a `limit: 0` submit.  A replaced job
    ends as a user-cancelled queued job does: job.accepted and
    job.finished{cancelled, "replaced by JOB"} in the log.

    The policy decides first and acts after: a refused submit changes
    nothing.  Its effects are on disk before the submit is journaled and
    answered (evr_qcommit.c): a replaced job's events in the archive, an
    interrupted dispatched job's pending cancel in its queue record.  A
    broker killed between the two has acted for a submit it never
    answered; the client's resend (the same job id) is taken then.  An
    interrupted running job whose runner is away holds its cancel until
    the runner is back (evr_policy_resend), in "interrupt/<job>" (its
    reason) meanwhile: a restarted broker holds it again
    (evr_policy_load).

    `start_delay` is kept by evr_queue.c (a job's not_before);
    evr_policy_due turns its end into a wake-up of the broker's loop.
*/
#include <stdlib.h>
#include <string.h>

#include "evr_broker_int.h"

#define S_HELD "interrupt/"     /* + job: a held cancel's reason */

typedef struct {
    evr_queue_job_t **replaced; /* waiting jobs the submit replaces */
    size_t nreplaced;
    evr_queue_job_t **interrupted; /* running jobs it cancels */
    size_t ninterrupted;
} s_plan_t;

/*  Adds waiting job j to the jobs the plan replaces (marked planned). */
static void
s_replace(s_plan_t *plan, evr_queue_job_t *j)
{
    j->planned = true;
    plan->replaced[plan->nreplaced++] = j;
}

/*  Whether the queue surely has room for one more job of pipeline p: the
    jobs it holds of p (in any state) and in all, with the staged ones,
    are bounds of the waiting ones that need no walk of the queue. */
static bool
s_room_sure(const evr_broker_t *b, const char *p, uint32_t limit)
{
    size_t mine = evr_queue_count(b, p);
    for (size_t i = 0; i < b->nstaged; i++)
        mine += strcmp(b->staged[i].job->pipeline, p) == 0;
    return b->njobs + b->nstaged < EVR_BROKER_MAX_QUEUED && mine < limit;
}

/*  The partition of a running job the broker took up from its archive
    at start (its submit is gone): from its job.accepted, once. */
static const char *
s_partition(const evr_broker_t *b, evr_queue_job_t *j)
{
    if (j->partition_read)
        return j->partition;
    j->partition_read = true;
    evr_spec_t *spec = NULL;
    evr_strmap_t args = { 0 };
    evr_err_t err;
    if (evr_store_job_spec(b->store, j->id, &spec, &args, &err) == EVR_OK) {
        const char *part = evr_spec_queue_partition(spec, &args);
        j->partition = part ? evr_strdup(part) : NULL;
    }
    evr_spec_destroy(&spec);
    evr_strmap_free(&args);
    return j->partition;
}

/*  The running side of the plan: with interrupt, the dispatched and
    active jobs of pipeline pl (of partition part) not interrupted before,
    in queue order (the walk ends at the last of them). */
static void
s_plan_interrupts(const evr_broker_t *b, const evr_queue_pipe_t *pl, const char *part,
                  s_plan_t *plan)
{
    size_t seen = 0;
    for (evr_queue_job_t *j = pl->head; j && seen < pl->nbusy; j = j->pnext) {
        if (j->state != B_DISPATCHED && j->state != B_ACTIVE)
            continue;
        seen++;
        if (j->interrupted)
            continue;
        const char *jp = part ? s_partition(b, j) : NULL;
        if (!part || (jp && strcmp(jp, part) == 0))
            plan->interrupted[plan->ninterrupted++] = j;
    }
}

/*  Jobs of pipeline pl that hold or will take a concurrency slot after
    the plan: running ones not interrupted, waiting ones not replaced (the
    jobs of the plan are distinct jobs of pl). */
static uint32_t
s_holding(const evr_queue_pipe_t *pl, const s_plan_t *plan)
{
    if (!pl)
        return 0;
    size_t n = pl->njobs - pl->ninterrupted;
    for (size_t i = 0; i < plan->nreplaced; i++)
        n -= !plan->replaced[i]->interrupted;
    for (size_t i = 0; i < plan->ninterrupted; i++)
        n -= !plan->interrupted[i]->interrupted;
    return (uint32_t) n;
}

/*  The waiting side of the plan, before the oldest make room: the waiting
    jobs of pipeline pl in partition part (partitioned_replace; all of
    them when part is NULL), or in their start_delay (replace), in queue
    order. */
static void
s_plan_waiting(const evr_broker_t *b, evr_queue_pipe_t *pl, evr_queue_strategy_t st,
               const char *p, const char *part, s_plan_t *plan)
{
    uint64_t now = evr_now_ns();
    if (st == EVR_QUEUE_PARTITIONED && part) {
        const evr_queue_part_t *pt = evr_queue_part(b, p, part);
        for (evr_queue_job_t *j = pt ? pt->head : NULL; j; j = j->tnext)
            if (evr_queue_waits(j, p, part))
                s_replace(plan, j);
    }
    else if (st == EVR_QUEUE_PARTITIONED || (st == EVR_QUEUE_REPLACE && pl->ndelayed))
        for (evr_queue_job_t *j = pl->head; j; j = j->pnext)
            if (evr_queue_waits(j, p, NULL)
                && (st == EVR_QUEUE_PARTITIONED || j->not_before > now))
                s_replace(plan, j);
}

/*  Plans what the submit msg does; false with *code and why when it is
    refused. */
static bool
s_plan(const evr_broker_t *b, const evr_msg_t *msg, s_plan_t *plan, const char **code, char *why,
       size_t len)
{
    const evr_spec_t *spec = msg->spec;
    const char *p = spec->pipeline;
    evr_queue_strategy_t st = evr_spec_queue_strategy(spec);
    const char *part = evr_spec_queue_partition(spec, &msg->args);
    uint32_t limit = spec->queue.limit.set ? spec->queue.limit.v : b->opts.queue_limit;
    evr_queue_pipe_t *pl = evr_queue_pipe(b, p);
    size_t waiting = pl ? pl->nwaiting : 0;
    if (pl)
        s_plan_waiting(b, pl, st, p, part, plan);
    if (pl && spec->queue.interrupt && st != EVR_QUEUE_APPEND)
        s_plan_interrupts(b, pl, part, plan);
    /* replace: the oldest waiting make room */
    size_t keep = limit ? limit : 1;
    for (evr_queue_job_t *j = pl ? pl->head : NULL;
         j && st == EVR_QUEUE_REPLACE && waiting - plan->nreplaced >= keep; j = j->pnext)
        if (evr_queue_waits(j, p, NULL) && !j->planned)
            s_replace(plan, j);
    size_t left = waiting - plan->nreplaced;
    if (limit && left >= limit) {
        *code = EVR_CODE_QUEUE_FULL;
        if (st == EVR_QUEUE_PARTITIONED)
            snprintf(why, len,
                     "pipeline %s has %u job%s waiting of other %s values than "
                     "\"%s\", its queue limit; try again later",
                     p, limit, limit == 1 ? "" : "s", spec->queue.partition_by, part);
        else
            snprintf(why, len,
                     "pipeline %s has %u job%s waiting, its queue limit; try again "
                     "later, or set queue: {strategy: replace}",
                     p, limit, limit == 1 ? "" : "s");
        return false;
    }
    uint32_t conc = spec->concurrency, held;
    if (!limit && conc && (held = s_holding(pl, plan)) >= conc) {
        *code = EVR_CODE_BUSY;
        snprintf(why, len,
                 "pipeline %s has %u of its %u concurrent jobs running or about "
                 "to, and queue.limit 0 (no wait list): submit again when one has finished, "
                 "or give it a wait list (queue: {limit: N})",
                 p, held, conc);
        return false;
    }
    return true;
}

/*  What an interrupt leaves to write: nothing (sent, or written
    before), the dispatched job's record, or the held cancel of a running
    job whose runner is away. */
typedef enum { S_WRITTEN, S_RECORD, S_HOLD } s_write_t;

/*  Cancels the running job j (dispatched: once its runner has taken it;
    its runner away: once it is back); a job keeps the reason of a cancel
    already pending for it (a job's cancel reason is its first cancel's,
    evr_control.c). */
static s_write_t
s_interrupt(evr_broker_t *b, evr_queue_job_t *j, const char *reason)
{
    evr_queue_set_interrupted(b, j);
    char why[256];
    if (j->state == B_ACTIVE
        && evr_runners_control(b, j->runner, "cancel", j->id, reason, false, why, sizeof why)) {
        evr_broker_info(b, "job %s: %s", j->id, reason);
        return S_WRITTEN;
    }
    bool changed = !j->cancel_pending || !j->cancel_reason;
    if (changed) {
        free(j->cancel_reason);
        j->cancel_reason = evr_strdup(reason);
    }
    j->cancel_pending = true;
    if (j->state == B_DISPATCHED)
        evr_broker_info(b, "job %s: %s (when its runner has taken it)", j->id, reason);
    else
        evr_broker_warn(b, "job %s: %s: cancel not sent (%s): sent when the runner is back", j->id,
                        reason, why);
    return !changed ? S_WRITTEN : j->state == B_DISPATCHED ? S_RECORD : S_HOLD;
}

/*  Writes the held cancels of the n running jobs of v ("interrupt/<job>":
    its reason, then for a forced one a NUL and 'f'), or deletes them
    (del), in one synced commit. */
static evr_rc_t
s_held_write(evr_broker_t *b, evr_queue_job_t *const *v, size_t n, bool del, evr_err_t *err)
{
    evr_store_kv_t *ops = evr_calloc(n + 1, sizeof *ops);
    char (*keys)[sizeof S_HELD + EVR_ULID_LEN] = evr_calloc(n + 1, sizeof *keys);
    char **vals = evr_calloc(n + 1, sizeof *vals);
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], S_HELD "%s", v[i]->id);
        ops[i] = (evr_store_kv_t) { keys[i], NULL, 0 };
        if (del)
            continue;
        const char *why = v[i]->cancel_reason ? v[i]->cancel_reason : "";
        size_t wl = strlen(why);
        vals[i] = evr_malloc(wl + 2);
        memcpy(vals[i], why, wl);
        vals[i][wl] = '\0';
        vals[i][wl + 1] = 'f';
        ops[i].val = vals[i];
        ops[i].len = wl + (v[i]->cancel_force ? 2 : 0);
    }
    evr_rc_t rc = evr_store_kv_write(b->store, ops, n, err);
    for (size_t i = 0; i < n; i++)
        free(vals[i]);
    free(vals);
    free(keys);
    free(ops);
    return rc;
}

/*  Interrupts the n jobs of v for the submit of job.  What stays pending
    is on disk before the submit is journaled and answered (evr_qcommit.c),
    so a broker killed after `accepted` carries it out: a dispatched job's
    cancel in its record, a held one in "interrupt/<job>".  Killed before
    the submit's journal flush, the cancels stay and the submit is not
    answered: a client resends it with its id and it is taken then (the
    jobs keep their reason "interrupted by JOB"), as a replace has ended
    its waiting jobs before the submit's commit too. */
static evr_rc_t
s_interrupt_all(evr_broker_t *b, evr_queue_job_t **v, size_t n, const char *job, evr_err_t *err)
{
    char reason[64];
    snprintf(reason, sizeof reason, "interrupted by %s", job);
    evr_queue_job_t **held = evr_calloc(n + 1, sizeof *held);
    size_t nrec = 0, nheld = 0;
    for (size_t i = 0; i < n; i++) {
        s_write_t w = s_interrupt(b, v[i], reason);
        if (w == S_RECORD)
            v[nrec++] = v[i];   /* in place: i >= nrec */
        else if (w == S_HOLD)
            held[nheld++] = v[i];
    }
    evr_rc_t rc = nrec ? evr_queue_persist(b, v, nrec, err) : EVR_OK;
    if (!rc && nheld)
        rc = s_held_write(b, held, nheld, false, err);
    if (rc)
        evr_broker_fail(b, err);
    free(held);
    return rc;
}

evr_rc_t
evr_policy_hold(evr_broker_t *b, evr_queue_job_t *j, evr_err_t *err)
{
    return s_held_write(b, &j, 1, false, err);
}

typedef struct {
    evr_broker_t *b;
    char (*gone)[EVR_ULID_LEN + 1];     /* ids whose held cancel is left over */
    size_t ngone, cap;
} s_load_t;

static int
s_load_one(const char *key, const uint8_t *val, size_t len, void *arg)
{
    s_load_t *ld = arg;
    const char *id = key + sizeof S_HELD - 1;
    if (!evr_ulid_valid(id))
        return 0;
    evr_queue_job_t *j = evr_queue_find(ld->b, id);
    if (j && j->state == B_ACTIVE && !j->cancel_pending) {
        size_t rl = strnlen((const char *) val, len);
        j->cancel_pending = true;
        j->cancel_reason = evr_strndup((const char *) val, rl);
        j->cancel_force = rl + 2 == len && val[rl + 1] == 'f';   /* s_held_write */
        evr_queue_set_interrupted(ld->b, j);
        return 0;
    }
    if (ld->ngone == ld->cap) {
        ld->cap = ld->cap ? 2 * ld->cap : 16;
        ld->gone = evr_realloc(ld->gone, ld->cap * sizeof *ld->gone);
    }
    snprintf(ld->gone[ld->ngone++], sizeof *ld->gone, "%s", id);
    return 0;
}

evr_rc_t
evr_policy_load(evr_broker_t *b, evr_err_t *err)
{
    s_load_t ld = { b, NULL, 0, 0 };
    evr_rc_t rc = evr_store_kv_scan(b->store, S_HELD, s_load_one, &ld, err);
    if (!rc && ld.ngone) {  /* their jobs ended (or were never taken up) */
        evr_queue_job_t **v = evr_calloc(ld.ngone, sizeof *v);
        for (size_t i = 0; i < ld.ngone; i++) {
            v[i] = evr_calloc(1, sizeof **v);
            memcpy(v[i]->id, ld.gone[i], sizeof v[i]->id);
        }
        rc = s_held_write(b, v, ld.ngone, true, err);
        for (size_t i = 0; i < ld.ngone; i++)
            free(v[i]);
        free(v);
    }
    free(ld.gone);
    return rc;
}

void
evr_policy_resend(evr_broker_t *b, const char *runner)
{
    evr_queue_job_t **v;
    size_t n = evr_queue_runner_jobs(b, runner, B_ACTIVE, &v);
    for (size_t i = 0; i < n; i++) {
        evr_queue_job_t *j = v[i];
        if (!j->cancel_pending)
            continue;
        char why[256];
        if (evr_runners_control(b, runner, "cancel", j->id, j->cancel_reason, j->cancel_force,
                                why, sizeof why)) {
            j->cancel_pending = false;
            j->cancel_sent = true;
            evr_err_t err;  /* left: sent again after a restart, the runner keeps the first */
            if (s_held_write(b, &j, 1, true, &err))
                evr_broker_warn(b, "job %s: held cancel not deleted: %s", j->id, err.msg);
        }
        else
            evr_broker_warn(b, "cancel of %s: %s", j->id, why);
    }
    free(v);
}

bool
evr_policy_admit(evr_broker_t *b, const evr_msg_t *msg, const char **code, char *why, size_t len)
{
    const evr_spec_t *spec = msg->spec;
    uint32_t limit = spec->queue.limit.set ? spec->queue.limit.v : b->opts.queue_limit;
    if (evr_spec_queue_strategy(spec) == EVR_QUEUE_APPEND && limit
        && s_room_sure(b, spec->pipeline, limit))
        return true;
    evr_queue_flush(b); /* the exact count (and a replace) needs them in the queue */
    if (b->failure) {
        *code = EVR_CODE_UNAVAILABLE;
        snprintf(why, len, "the broker's store failed: %s", b->failmsg);
        return false;
    }
    size_t total = b->nunstarted;
    if (total >= EVR_BROKER_MAX_QUEUED) {
        *code = EVR_CODE_QUEUE_FULL;
        snprintf(why, len,
                 "the broker holds %zu jobs not yet running, its limit; try again "
                 "later",
                 total);
        return false;
    }
    size_t mine = evr_queue_count(b, spec->pipeline);
    s_plan_t plan = { evr_calloc(mine + 1, sizeof(void *)), 0, evr_calloc(mine + 1, sizeof(void *)),
                      0 };
    bool ok = s_plan(b, msg, &plan, code, why, len);
    for (size_t i = 0; i < plan.nreplaced; i++)
        plan.replaced[i]->planned = false;
    evr_err_t err;
    if (ok && s_interrupt_all(b, plan.interrupted, plan.ninterrupted, msg->job, &err)) {
        *code = EVR_CODE_INTERNAL;
        snprintf(why, len, "%s", err.msg);
        ok = false;
    }
    char reason[64];
    snprintf(reason, sizeof reason, "replaced by %s", msg->job);
    for (size_t i = 0; ok && i < plan.nreplaced; i++)
        if (evr_queue_cancel_queued(b, plan.replaced[i], reason, &err)) {
            *code = EVR_CODE_INTERNAL;
            snprintf(why, len, "%s", err.msg);
            ok = false;
        }
    free(plan.replaced);
    free(plan.interrupted);
    return ok;
}

int
evr_policy_due(evr_broker_t *b, int max_ms)
{
    if (!b->next_due)
        return max_ms;
    uint64_t now = evr_now_ns();
    if (now >= b->next_due) {
        b->changed = true; /* the dispatch pass after it finds the next due time */
        b->next_due = 0;
        return 0;
    }
    uint64_t ns = b->next_due - now;   /* rounded up to ms (next_due may be UINT64_MAX) */
    uint64_t ms = ns / 1000000 + (ns % 1000000 != 0);
    return ms < (uint64_t) max_ms ? (int) ms : max_ms;
}
