/*  evr_control.c: a client's cancel, pause, resume and drain.

    A job still in the queue (queued, held, dispatched) is the broker's to
    act on: a pause holds it, a resume queues it again, a cancel ends it
    (or, dispatched, goes to its runner once it takes the job).  A running
    job's command goes to its runner as `control`, and `ok` then says it
    was sent: the runner's job.paused, job.resumed or job.finished says it
    was done.  Until that event comes, the job's state in the archive is
    the old one, so the broker remembers the pause or resume it sent
    (j->asked): a resume right after a pause is sent too (the runner gets
    both, in order), and a second pause before the job.paused is answered
    `ok` as already asked, not sent again.  A runner that refuses the
    command (the job ended meanwhile, or is being cancelled) sends no
    event: what was asked counts for the runner's lease (lease_ms) at
    most, then the archive's state decides again.  A job's cancel reason
    is its first cancel's, as a runner keeps the first it gets: a second
    cancel of a dispatched job is answered `ok` as already asked and
    changes nothing but this: asked again, the runner gets it with force.
    A cancel of a running job being cancelled already (its
    job.cancel_requested in the archive, or a cancel sent to its runner)
    is a second cancel: sent with force, the runner stops its `when:
    always` steps and on_error too, at once.
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "evr_broker_int.h"

static void
s_ok(evr_broker_t *b, zframe_t *rid, const char *job, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
s_ok(evr_broker_t *b, zframe_t *rid, const char *job, const char *fmt, ...)
{
    evr_msg_t m = { .type = EVR_MSG_OK, .job = (char *) job };
    va_list ap;
    va_start(ap, fmt);
    evr_bus_vsend_text(b->clients, rid, &m, fmt, ap);   /* a reason quoted: whole, UTF-8 */
    va_end(ap);
}

/*  A request about a queued job (the broker acts itself); true when it
    answered. */
static bool
s_control_queued(evr_broker_t *b, zframe_t *rid, const evr_msg_t *req, evr_queue_job_t *j)
{
    evr_err_t err;
    const char *reason = req->reason ? req->reason : "cancelled by a user";
    switch (req->type) {
    case EVR_MSG_CANCEL:
        if (j->state == B_DISPATCHED && j->cancel_pending) {   /* the first cancel's reason stays */
            bool was = j->cancel_force;
            j->cancel_force = true;     /* in its record too, as the first cancel */
            if (!was && evr_queue_persist(b, &j, 1, &err)) {
                evr_broker_fail(b, &err);
                evr_bus_send_error(b->clients, rid, EVR_CODE_INTERNAL, "%s", err.msg);
            }
            else
                s_ok(b, rid, j->id, "cancel already asked (%s): it reaches %s as soon as it "
                     "takes the job; asked again, it stops the job's when: always steps too",
                     j->cancel_reason ? j->cancel_reason : "no reason", j->runner);
        }
        else if (j->state == B_DISPATCHED) {
            /* in its record before the answer: a restarted broker carries
               it out (evr_queue.c) */
            j->cancel_pending = true;
            free(j->cancel_reason);
            j->cancel_reason = evr_strdup(reason);
            if (evr_queue_persist(b, &j, 1, &err)) {
                evr_broker_fail(b, &err);
                evr_bus_send_error(b->clients, rid, EVR_CODE_INTERNAL, "%s", err.msg);
            }
            else
                s_ok(b, rid, j->id, "cancel will reach %s as soon as it takes the job",
                     j->runner);
        }
        else if (evr_queue_cancel_queued(b, j, reason, &err))
            evr_bus_send_error(b->clients, rid, EVR_CODE_INTERNAL, "%s", err.msg);
        else
            s_ok(b, rid, req->job, "cancelled while queued");
        return true;
    case EVR_MSG_PAUSE:
    case EVR_MSG_RESUME: {
        bool pause = req->type == EVR_MSG_PAUSE;
        if (j->state == B_DISPATCHED) {
            evr_bus_send_error(b->clients, rid, EVR_CODE_CONFLICT, "job %s is being handed to "
                               "runner %s; try again in a moment", j->id, j->runner);
            return true;
        }
        if ((j->state == B_HELD) == pause) {
            evr_bus_send_error(b->clients, rid, EVR_CODE_CONFLICT, "job %s is %s", j->id,
                               pause ? "already paused (in the queue)" : "not paused (queued)");
            return true;
        }
        evr_queue_set_state(b, j, pause ? B_HELD : B_QUEUED);
        if (evr_queue_persist(b, &j, 1, &err)) {
            evr_broker_fail(b, &err);
            evr_bus_send_error(b->clients, rid, EVR_CODE_INTERNAL, "%s", err.msg);
            return true;
        }
        b->changed = true;
        s_ok(b, rid, j->id, pause ? "paused in the queue: no runner gets it until resumed"
                                  : "resumed: back in the queue");
        return true;
    }
    default: return false;
    }
}

/*  The pause or resume sent to runner for active job j and not confirmed
    yet (NULL j, another runner, or past the lease: none). */
static evr_control_asked_t
s_asked(const evr_broker_t *b, const evr_queue_job_t *j, const char *runner)
{
    if (!j || !j->asked || !j->runner || !runner || strcmp(j->runner, runner) != 0)
        return EVR_CONTROL_NONE;
    if (evr_mono_ns() - j->asked_at > (uint64_t) b->opts.lease_ms * 1000000ull)
        return EVR_CONTROL_NONE;
    return j->asked;
}

void
evr_control_confirmed(evr_queue_job_t *j, evr_evtype_t t)
{
    if ((t == EVR_EV_JOB_PAUSED && j->asked == EVR_CONTROL_PAUSE)
        || (t == EVR_EV_JOB_RESUMED && j->asked == EVR_CONTROL_RESUME))
        j->asked = EVR_CONTROL_NONE;
}

/*  Why a pause (pause) or resume of a running job with status st is
    refused, given what was asked of its runner; NULL: it is sent.
    *again: already asked (answered ok, not sent). */
static const char *
s_conflict(evr_job_status_t st, evr_control_asked_t asked, bool pause, bool *again)
{
    *again = false;
    if (asked) {
        *again = (asked == EVR_CONTROL_PAUSE) == pause;
        return NULL;
    }
    if (pause && st != EVR_JOB_RUNNING)
        return st == EVR_JOB_PAUSED ? "is already paused"
                                    : "has not started its steps yet; only a running job pauses";
    if (!pause && st != EVR_JOB_PAUSED)
        return "is not paused";
    return NULL;
}

void
evr_control_job(evr_broker_t *b, zframe_t *rid, const evr_msg_t *req)
{
    evr_queue_job_t *j = evr_queue_find(b, req->job);
    if (j && j->state != B_ACTIVE && s_control_queued(b, rid, req, j))
        return;
    evr_job_t pj = { 0 };
    evr_err_t err;
    if (evr_store_get_job(b->store, req->job, &pj, &err)) {
        evr_retention_no_job(b, rid, req->job);
        evr_rec_free(&evr_job_type, &pj);
        return;
    }
    bool cancel = req->type == EVR_MSG_CANCEL, pause = req->type == EVR_MSG_PAUSE, again = false;
    const char *command = cancel ? "cancel" : pause ? "pause" : "resume";
    evr_control_asked_t asked = s_asked(b, j, pj.runner);
    const char *conflict = evr_job_is_final(&pj) ? "has finished"
                         : cancel ? NULL : s_conflict(pj.status, asked, pause, &again);
    /* a cancel of a job being cancelled (its job.cancel_requested in
       the archive, or a cancel sent to its runner): a second cancel */
    bool force = cancel && !conflict
              && (pj.cancel_requested || (j && j->cancel_sent && j->runner && pj.runner
                                          && strcmp(j->runner, pj.runner) == 0));
    char why[256];
    if (conflict)
        evr_bus_send_error(b->clients, rid, EVR_CODE_CONFLICT, "job %s %s (%s)", req->job,
                           conflict, evr_job_status_name(pj.status));
    else if (again)
        s_ok(b, rid, req->job, "%s already sent to runner %s, not done yet (its job.%s has not "
             "come): not sent again", command, pj.runner, pause ? "paused" : "resumed");
    else if (!evr_runners_control(b, pj.runner, command, req->job, req->reason, force, why,
                                  sizeof why))
        evr_bus_send_error(b->clients, rid, EVR_CODE_UNAVAILABLE, "%s", why);
    else if (force)
        s_ok(b, rid, req->job, "cancel sent to runner %s again: the job was being cancelled "
             "already, so its when: always steps are stopped too, at once",
             pj.runner);
    else {
        if (!cancel && j && j->runner && strcmp(j->runner, pj.runner) == 0) {
            j->asked = pause ? EVR_CONTROL_PAUSE : EVR_CONTROL_RESUME;
            j->asked_at = evr_mono_ns();
        }
        if (cancel && j && j->runner && strcmp(j->runner, pj.runner) == 0)
            j->cancel_sent = true;
        s_ok(b, rid, req->job, "%s sent to runner %s%s", command, pj.runner,
             asked && !cancel ? " after its pending one" : "");
    }
    evr_rec_free(&evr_job_type, &pj);
}

void
evr_control_drain(evr_broker_t *b, zframe_t *rid, const evr_msg_t *req)
{
    char why[256];
    evr_runners_session_t *r = evr_runners_find(b, req->runner);
    if (!r)
        evr_bus_send_error(b->clients, rid, EVR_CODE_NOT_FOUND, "no runner %s: the broker knows "
                           "the runners connected, those holding jobs and those lost less than "
                           "forget_ms ago (evrun-cli runners)", req->runner);
    else if (!evr_runners_drain(b, r, why, sizeof why))
        evr_bus_send_error(b->clients, rid, EVR_CODE_INTERNAL, "%s", why);
    else if (r->drain_unsent)
        s_ok(b, rid, NULL, "runner %s gets no new jobs; it is not reachable now, and the drain "
             "is held for it and sent when it is (its next hello, or heartbeat)", req->runner);
    else
        s_ok(b, rid, NULL, "runner %s drains: it takes no new jobs and finishes its own",
             req->runner);
}
