/*  evr_engine.c: jobs and steps as state machines driven by executor
    callbacks, events committed before their effects.

    A turn: one turn of the event loop (executor callbacks change state
    and queue events and after-commit actions), check timers (output flush, step and
    job timeouts), schedule steps, then commit the queued events in one
    transaction and run the actions that were waiting for them.  Control
    from outside the loop (cancel, pause, resume of one job) queues its
    event and its effect as such an action, and commits at once.  Which
    step begins or is skipped, and a job's end, are in evr_engine_sched.c;
    a step's own lifecycle is in evr_step.c (its unit's pause in evr_step_pause.c);
    making a job, its workspace and resources in evr_prepare.c.
*/
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_engine_int.h"
#include "evr_log.h"
#include "evr_artifact.h"

const char *const evr_eng_stream_names[2] = { "stdout", "stderr" };

/*  Longest wait of stored output for its commit (and its printing). */
#define S_OUTPUT_COMMIT_MS 25
/*  Output waits for a commit no longer than it waits to be stored. */
#define S_COMMIT_NS(e) ((uint64_t) ((e)->opts.flush_ms < S_OUTPUT_COMMIT_MS ? (e)->opts.flush_ms  \
                                    : S_OUTPUT_COMMIT_MS) * 1000000ull)

/* ------------------------------------------------------- events, actions */

evr_event_t *
evr_eng_emit(evr_eng_job_t *job, evr_evtype_t t, const evr_eng_step_t *st)
{
    evr_engine_t *e = job->eng;
    evr_event_t *ev = evr_event_new(t);
    /* stamped now, not at its commit (up to a group commit's wait later):
       a recovery counts timeouts from step.started's and job.accepted's
       times, which must be the instants the live runner counted from
       (t_start, t_accept), or a step the live runner stopped for its
       timeout looks to the recovery as if it had ended in time */
    ev->time = evr_now_ns();
    ev->job = evr_strdup(job->id);
    if (st) {
        ev->data.step = evr_strdup(st->spec->name);
        ev->data.attempt = st->attempt;
    }
    if (e->npending == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->pending = evr_realloc(e->pending, e->cap * sizeof *e->pending);
    }
    if (!e->npending)
        e->pending_since = evr_mono_ns();
    e->pending[e->npending++] = ev;
    /* Output may wait for the next timed commit; anything else is a step
       of the state machine whose effect waits for it. */
    if (t != EVR_EV_STEP_OUTPUT)
        e->urgent = true;
    return ev;
}

/*  Runs fn(arg, data, len) once the events queued so far are committed.
    data (may be NULL) is copied and freed after. */
void
evr_eng_after_soon(evr_engine_t *e, void (*fn)(void *, void *, size_t), void *arg,
                   const void *data, size_t len)
{
    bool urgent = e->urgent;
    evr_eng_after(e, fn, arg, data, len);
    e->urgent = urgent;
}

void
evr_eng_after(evr_engine_t *e, void (*fn)(void *, void *, size_t), void *arg, const void *data,
        size_t len)
{
    e->urgent = true;
    if (e->nactions == e->acap) {
        e->acap = e->acap ? e->acap * 2 : 64;
        e->actions = evr_realloc(e->actions, e->acap * sizeof *e->actions);
    }
    void *copy = NULL;
    if (data) {
        copy = evr_malloc(len);
        memcpy(copy, data, len);
    }
    e->actions[e->nactions++] = (evr_eng_action_t) { fn, arg, copy, len };
}


static void
s_print_act(void *arg, void *data, size_t len)
{
    (void) arg;
    (void) len;
    fputs(data, stdout);
    fflush(stdout);
}

void
evr_eng_print(evr_engine_t *e, const char *fmt, ...)
{
    if (!e->opts.print)
        return;
    char buf[4 * EVR_ERR_MAX];
    size_t at = 0;
    if (e->print_mid) {   /* a step's line laid out without its newline: ended first */
        buf[at++] = '\n';
        e->print_mid->line_start = true;   /* its rest comes prefixed */
        e->print_mid = NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + at, sizeof buf - 1 - at, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? at : at + (size_t) n < sizeof buf - 1 ? at + (size_t) n : sizeof buf - 2;
    buf[len++] = '\n';
    buf[len++] = '\0';
    evr_eng_after_soon(e, s_print_act, NULL, buf, len);
}

/*  Commits the queued events (in batches), then runs the waiting actions;
    actions may queue more, so until both are empty.  What the actions
    printed goes out at the end, in one write when it fits stdout's
    buffer. */
void
evr_eng_flush(evr_engine_t *e)
{
    e->urgent = false;
    while (e->npending || e->nactions) {
        size_t done = 0;
        while (done < e->npending && !e->failure) {
            size_t n = e->npending - done;
            if (n > EVR_STORE_MAX_BATCH)
                n = EVR_STORE_MAX_BATCH;
            evr_err_t err;
            if (evr_store_append(e->store, e->pending + done, n, &err)) {
                e->failure = EVR_ERR_STORE;
                snprintf(e->failmsg, sizeof e->failmsg, "%s", err.msg);
                break;
            }
            done += n;
        }
        for (size_t i = 0; i < e->npending; i++)
            evr_event_destroy(&e->pending[i]);
        e->npending = 0;
        if (e->failure) {
            for (size_t i = 0; i < e->nactions; i++)
                free(e->actions[i].data);
            e->nactions = 0;
            evr_eng_fail_all(e);
            return;
        }
        size_t n = e->nactions;
        if (n == 0)
            continue;
        evr_eng_action_t *run = evr_malloc(n * sizeof *run);
        memcpy(run, e->actions, n * sizeof *run);
        e->nactions = 0;
        bool nested = e->in_flush;
        e->in_flush = true;
        for (size_t i = 0; i < n; i++) {
            run[i].fn(run[i].arg, run[i].data, run[i].len);
            free(run[i].data);
        }
        e->in_flush = nested;
        free(run);
    }
    if (e->opts.print)
        fflush(stdout);
}

void
evr_eng_each_name(const char *names, void (*fn)(const char *name, void *arg), void *arg)
{
    for (const char *p = names; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t) (nl - p) : strlen(p);
        char *name = evr_strndup(p, n);
        if (n)
            fn(name, arg);
        free(name);
        p += n + (nl ? 1 : 0);
    }
}

static bool s_warn_log;     /* evr_engine_log_warnings */

void
evr_engine_log_warnings(void)
{
    s_warn_log = true;
}

void
evr_eng_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (s_warn_log) {
        evr_log_vwrite(EVR_LOG_WARN, "evrun-runner", fmt, ap);
        va_end(ap);
        return;
    }
    fprintf(stderr, "evrun-runner: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    va_end(ap);
}

/* ------------------------------------------------------------------ jobs */

static evr_eng_job_t *
s_find_job(const evr_engine_t *e, const char *id)
{
    for (evr_eng_job_t *j = e->jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

bool
evr_eng_ending(const evr_eng_job_t *job)
{
    return job->cancelling || job->failed || job->timed_out;
}

bool
evr_eng_halted(const evr_eng_job_t *job)
{
    return job->cancelling || job->timed_out;
}

bool
evr_eng_stopping(const evr_eng_job_t *job)
{
    bool let_finish = job->failed && !job->cancelling && !job->timed_out
                   && job->spec->on_failure == EVR_ON_FAILURE_FINISH;
    return evr_eng_ending(job) && !let_finish;
}

/*  The removal after a stop that failed: the wait and the stream end
    with the unit.  When it fails too, the engine gives the unit up: the
    step ends now (as it was to end: cancelled or timed out), and the
    job's cleanup tries the removal again. */
static void
s_stop_removed(const evr_exec_result_t *r, void *arg)
{
    if (r->rc && !r->not_found)
        ((evr_eng_tok_t *) arg)->st->job->doubt = true;
    evr_eng_step_t *st = evr_eng_live_end(arg);
    if (!st || !r->rc || r->not_found || st->exit_known || !evr_eng_step_runs(st))
        return;
    evr_eng_warn("job %s: removing step %s (%s %s) failed too: %s; the step ends without it",
                 st->job->id, st->spec->name, st->job->ex->ops->unit_word, st->unit, r->msg);
    evr_eng_step_end_now(st);
}

/*  A stop that failed (not for a unit that is gone, nor one that has
    ended meanwhile): the unit is removed, which kills what runs, so that
    a cancel or a timeout ends the step all the same. */
static void
s_stopped(const evr_exec_result_t *r, void *arg)
{
    evr_eng_step_t *st = evr_eng_live_end(arg);
    if (!st || !r->rc || r->not_found || st->exit_known || !evr_eng_step_runs(st))
        return;
    evr_exec_t *ex = st->job->ex;
    evr_eng_warn("job %s: stopping step %s (%s %s): %s; removing it", st->job->id,
                 st->spec->name, ex->ops->unit_word, st->unit, r->msg);
    ex->ops->remove(ex, st->unit, s_stop_removed, evr_eng_tok(st));
}

void
evr_eng_stop_step(evr_eng_step_t *st, bool now)
{
    evr_engine_t *e = st->job->eng;
    evr_exec_t *ex = st->job->ex;
    if (!evr_eng_step_runs(st))
        return;
    if (evr_eng_step_thaw_first(st)) {
        /* a paused unit does not see SIGTERM: resume it first, then the
           answer to the resume stops it */
        if (now || !st->stop_after)
            st->stop_after = now ? 2 : 1;
        evr_eng_step_freeze(st, false);
        return;
    }
    if (now && !st->kill_sent) {
        st->kill_sent = true;
        ex->ops->stop(ex, st->unit, -1, s_stopped, evr_eng_tok(st));
    }
    else if (!st->stop_sent) {
        st->stop_sent = true;
        ex->ops->stop(ex, st->unit, e->opts.grace_s, s_stopped, evr_eng_tok(st));
    }
}

static void
s_wind_down_act(void *arg, void *data, size_t len)
{
    (void) data;
    (void) len;
    evr_eng_job_t *job = arg;
    evr_eng_wind_down(job, job->killing);
}

/*  Queues job.cancel_requested (once) and, once it is committed, stops
    the running steps and ends the starting ones; the scheduler skips
    the others.  now (a second cancel, or a first one asked as such)
    kills them at once, the spared ones (`when: always`, on_error) too:
    recorded once, as job.cancel_requested with force (the first one's,
    when it is the first), so that a runner restarted meanwhile carries
    on the same way. */
static void
s_job_cancel(evr_eng_job_t *job, const char *reason, bool now)
{
    if (job->phase == EVR_ENG_JOB_DONE || job->phase == EVR_ENG_JOB_CLEANUP)
        return;
    if (!job->cancelling || (now && !job->killing)) {
        bool first = !job->cancelling;
        job->cancelling = true;
        job->killing |= now;
        evr_eng_job_ends(job);
        evr_event_t *ev = evr_eng_emit(job, EVR_EV_JOB_CANCEL_REQUESTED, NULL);
        ev->data.reason = evr_strdup(reason);
        ev->data.force = now;
        if (first) {
            free(job->cancel_reason);
            job->cancel_reason = reason ? evr_strdup(reason) : NULL;
        }
        evr_eng_print(job->eng, "evrun-runner: %s job %s: %s", first && !now ? "cancelling"
                      : first ? "cancelling (at once, its when: always steps too)"
                              : "cancelled again: stopping its when: always steps too, at once",
                      job->id, reason);
    }
    evr_eng_after(job->eng, s_wind_down_act, job, NULL, 0);
}

/*  Commits what is queued (and runs the actions waiting for it). */
static evr_rc_t
s_commit(evr_engine_t *e, evr_err_t *err)
{
    evr_eng_flush(e);
    if (e->failure)
        return evr_err_set(err, e->failure, "%s", e->failmsg);
    return EVR_OK;
}

/*  The live job job_id for an operation (what: "cancelled", "paused"...):
    EVR_ERR_NOTFOUND when not held, EVR_ERR_STATE when finished. */
static evr_rc_t
s_live_job(evr_engine_t *e, const char *job_id, const char *what, evr_eng_job_t **out,
           evr_err_t *err)
{
    evr_eng_job_t *job = s_find_job(e, job_id);
    if (!job)
        return evr_err_set(err, EVR_ERR_NOTFOUND, "job %s: this runner does not hold it",
                           job_id);
    if (job->phase >= EVR_ENG_JOB_CLEANUP)
        return evr_err_set(err, EVR_ERR_STATE, "job %s has finished (%s): it cannot be %s",
                           job_id, evr_job_status_name(job->final), what);
    if (e->failure)
        return evr_err_set(err, e->failure, "%s", e->failmsg);
    *out = job;
    return EVR_OK;
}

evr_rc_t
evr_engine_cancel(evr_engine_t *self, const char *job_id, const char *reason, bool force,
                  evr_err_t *err)
{
    evr_eng_job_t *job;
    evr_rc_t rc = s_live_job(self, job_id, "cancelled", &job, err);
    if (rc)
        return rc;
    s_job_cancel(job, reason, force);
    return s_commit(self, err);
}

void
evr_engine_cancel_all(evr_engine_t *self, const char *reason, bool now)
{
    for (evr_eng_job_t *j = self->jobs; j; j = j->next)
        s_job_cancel(j, reason, now);
    if (now)    /* the git cache's trim too: nothing waits for it any more */
        evr_eng_source_trim_stop(self);
    evr_eng_flush(self);
}

/* ---------------------------------------------------------- pause, resume */

static void
s_pause_act(void *arg, void *data, size_t len)
{
    (void) data;
    (void) len;
    evr_eng_job_t *job = arg;
    if (!job->paused || evr_eng_stopping(job))
        return;   /* ended meanwhile */
    for (uint32_t i = 0; i < job->n; i++)
        evr_eng_step_freeze(&job->steps[i], true);
}

static void
s_resume_act(void *arg, void *data, size_t len)
{
    (void) data;
    (void) len;
    evr_eng_job_t *job = arg;
    if (job->paused)
        return;   /* paused again meanwhile */
    for (uint32_t i = 0; i < job->n; i++) {
        evr_eng_step_freeze(&job->steps[i], false);
        evr_eng_step_release(&job->steps[i]);
    }
}

/*  Why the job cannot pause (or resume, with resume): NULL when it can. */
static const char *
s_why_not(const evr_eng_job_t *job, bool resume)
{
    if (job->cancelling)
        return "is being cancelled";
    if (job->timed_out)
        return "timed out and is stopping";
    if (evr_eng_stopping(job))
        return "is stopping after a failed step";
    if (job->phase == EVR_ENG_JOB_PREPARING)
        return "is preparing its workspace and resources";
    if (resume && !job->paused)
        return "is running";
    if (!resume && job->paused)
        return "is paused already";
    return NULL;
}

evr_rc_t
evr_engine_pause(evr_engine_t *self, const char *job_id, evr_err_t *err)
{
    evr_eng_job_t *job;
    evr_rc_t rc = s_live_job(self, job_id, "paused", &job, err);
    if (rc)
        return rc;
    const char *why = s_why_not(job, false);
    if (why)
        return evr_err_set(err, EVR_ERR_STATE, "job %s %s: only a running job pauses", job_id,
                           why);
    job->paused = true;
    job->paused_at = evr_mono_ns();
    evr_eng_emit(job, EVR_EV_JOB_PAUSED, NULL);
    evr_eng_after(self, s_pause_act, job, NULL, 0);
    if (self->opts.print)
        printf("evrun-runner: job %s paused\n", job->id);
    return s_commit(self, err);
}

/*  The pause is over: the deadlines move by its length (for a step, by
    the part of it since the step started). */
static void
s_credit_pause(evr_eng_job_t *job)
{
    uint64_t now = evr_mono_ns();
    if (now <= job->paused_at)
        return;
    if (job->deadline)
        job->deadline = evr_add_sat(job->deadline, now - job->paused_at);
    for (uint32_t i = 0; i < job->n; i++) {
        evr_eng_step_t *st = &job->steps[i];
        uint64_t from = st->t_start > job->paused_at ? st->t_start : job->paused_at;
        if (evr_eng_step_has_started(st) && st->t_start && now > from)
            st->paused_ns += now - from;
    }
}

evr_rc_t
evr_engine_resume(evr_engine_t *self, const char *job_id, evr_err_t *err)
{
    evr_eng_job_t *job;
    evr_rc_t rc = s_live_job(self, job_id, "resumed", &job, err);
    if (rc)
        return rc;
    const char *why = s_why_not(job, true);
    if (why)
        return evr_err_set(err, EVR_ERR_STATE, "job %s %s: only a paused job resumes", job_id,
                           why);
    s_credit_pause(job);
    job->paused = false;
    evr_eng_emit(job, EVR_EV_JOB_RESUMED, NULL);
    evr_eng_after(self, s_resume_act, job, NULL, 0);
    if (self->opts.print)
        printf("evrun-runner: job %s resumed\n", job->id);
    return s_commit(self, err);
}

/*  A store failure: no more events can be recorded, so stop everything. */
void
evr_eng_fail_all(evr_engine_t *e)
{
    for (evr_eng_job_t *j = e->jobs; j; j = j->next) {
        j->cancelling = j->killing = true;
        for (uint32_t i = 0; i < j->n; i++)
            evr_eng_stop_step(&j->steps[i], true);
    }
}

/* ----------------------------------------------------------------- timers */

/*  A running step's own timeout and, for a step that runs on after its
    job was cancelled or timed out (`when: always`, on_error), the grace
    from then (or from its start, when later): the first that falls due
    stops it, timed out. */
static void
s_step_deadline(evr_eng_step_t *st, uint64_t now, uint64_t *next)
{
    evr_eng_job_t *job = st->job;
    uint64_t dl = UINT64_MAX, grace = UINT64_MAX;
    if (st->spec->timeout)
        dl = evr_add_sat(st->t_start + st->paused_ns, evr_ms_to_ns(st->spec->timeout));
    if (job->end_at && evr_eng_spared(st)) {
        uint64_t from = st->t_start > job->end_at ? st->t_start : job->end_at;
        grace = from + (uint64_t) job->eng->opts.when_grace_ms * 1000000ull;
    }
    if (st->exited_at) {
        /* it ended while no runner watched (found so by a recovery): a
           deadline passed since does not make it time out */
        if (st->exited_at < dl && st->exited_at < grace)
            return;
        now = now > st->exited_at ? st->exited_at : now;
    }
    if (now >= dl || now >= grace) {
        st->timed_out = true;
        if (now >= dl)
            evr_eng_set_reason(st, "timed out after %llu ms",
                               (unsigned long long) st->spec->timeout);
        else
            evr_eng_set_reason(st, "stopped %u ms after the job was %s (the grace of steps "
                               "that run after it)", job->eng->opts.when_grace_ms,
                               job->timed_out ? "timed out" : "cancelled");
        evr_eng_stop_step(st, false);
    }
    else if ((dl < grace ? dl : grace) < *next)
        *next = dl < grace ? dl : grace;
}

/*  The job's timeout (counted from job.accepted) passed: it ends timed
    out, its reason saying what ran when it is not the steps (a hook
    before them, its preparation: "... passed while downloading resource
    src"); what runs is stopped once that is committed, as for a cancel
    (its preparation's download, child or hook too). */
static void
s_job_timed_out(evr_eng_job_t *job)
{
    job->timed_out = true;
    evr_eng_job_ends(job);
    char hook[EVR_SPEC_MAX_NAME + 64], what[300] = "";
    const char *doing = evr_eng_hooks_doing(job, hook, sizeof hook) ? hook
                        : job->phase == EVR_ENG_JOB_PREPARING
                        ? (job->doing ? job->doing : "preparing the job") : NULL;
    if (doing)
        snprintf(what, sizeof what, " while %s", doing);
    uint64_t ms = job->spec->timeout;
    free(job->reason);
    job->reason = ms % 1000 ? evr_asprintf("the pipeline's timeout (%llu ms) passed%s",
                                           (unsigned long long) ms, what)
                            : evr_asprintf("the pipeline's timeout (%llu s) passed%s",
                                           (unsigned long long) (ms / 1000), what);
    evr_text_fit(job->reason, EVR_REASON_MAX);
    evr_eng_print(job->eng, "evrun-runner: job %s timed out: %s", job->id, job->reason);
    evr_eng_after(job->eng, s_wind_down_act, job, NULL, 0);
}

/*  Whether the job's timeout, past, waits: a step is being inspected by a
    recovery, or a step whose unit ended before
    the job's deadline (found so by a recovery) is still being finished,
    or such a step was the last and every other one is over (the job
    ends).  So a restart after the deadline does not time out a job whose
    steps all ended in time; one with a step left to run still times out
    (once its ended steps are finished). */
static bool
s_ended_in_time(const evr_eng_job_t *job)
{
    bool in_time = false;
    for (uint32_t i = 0; i < job->n; i++) {
        const evr_eng_step_t *st = &job->steps[i];
        if (st->state == EVR_ENG_STEP_INSPECTING || st->state == EVR_ENG_STEP_INSPECTING_RUN)
            return true;   /* the recovery has not heard what became of it yet */
        if (st->exited_at && st->exited_at < job->deadline) {
            if (evr_eng_step_runs(st))
                return true;
            in_time = true;
        }
        else if (!evr_eng_step_done(st))
            return false;
    }
    return in_time;
}

static int
s_timers(evr_engine_t *e)
{
    uint64_t now = evr_mono_ns(), next = now + 100 * 1000000ull;
    uint64_t flush = (uint64_t) e->opts.flush_ms * 1000000ull;
    for (evr_eng_job_t *job = e->jobs; job; job = job->next) {
        if (job->phase != EVR_ENG_JOB_RUNNING && job->phase != EVR_ENG_JOB_PREPARING)
            continue;
        /* paused: no timeout fires (resuming moves the deadlines) */
        if (job->deadline && !job->timed_out && !job->paused) {
            if (now >= job->deadline) {
                if (!s_ended_in_time(job))
                    s_job_timed_out(job);
            }
            else if (job->deadline < next)
                next = job->deadline;
        }
        for (uint32_t i = 0; i < job->n; i++) {
            evr_eng_step_t *st = &job->steps[i];
            if (!evr_eng_step_runs(st))
                continue;
            evr_eng_peek(st, now, &next);
            for (int si = 0; si < 2; si++) {
                evr_eng_stream_t *s = &st->out[si];
                if (!s->len && !s->raw_in_buf)
                    continue;
                if (now >= s->since + flush) {
                    /* it has waited its flush delay: stored at once, not
                       after the group commit's wait on top */
                    evr_eng_emit_output(st, si, false);
                    e->urgent = true;
                }
                else if (s->since + flush < next)
                    next = s->since + flush;
            }
            /* a step already stopped as cancelled (a cancel, another's
               failure) stays so, though its timeout passes in the grace */
            if (!st->timed_out && !st->cancelled && !job->paused)
                s_step_deadline(st, now, &next);
        }
    }
    if (e->npending) {
        uint64_t commit = e->pending_since + S_COMMIT_NS(e);
        if (commit < next)
            next = commit;
    }
    /* rounded up: a timer that fires before the deadline would make a
       turn that finds nothing due */
    uint64_t wait = next > now ? (next - now + 999999u) / 1000000u : 0;
    return (int) (wait > 100 ? 100 : wait);
}

/* ------------------------------------------------------------------- API */

evr_engine_t *
evr_engine_new(const evr_engine_opts_t *opts, evr_store_t *store, evr_loop_t *loop,
               evr_exec_t *const *execs)
{
    evr_engine_t *e = evr_calloc(1, sizeof *e);
    e->opts = *opts;
    if (!e->opts.grace_s)
        e->opts.grace_s = 10;
    if (!e->opts.when_grace_ms)
        e->opts.when_grace_ms = EVR_WHEN_GRACE_MS;
    if (!e->opts.parallel)
        e->opts.parallel = 4;
    if (!e->opts.flush_ms)
        e->opts.flush_ms = 50;
    if (!e->opts.artifact_max_bytes)
        e->opts.artifact_max_bytes = EVR_MAX_BYTES_DEFAULT;
    if (!e->opts.artifact_job_max_bytes)
        e->opts.artifact_job_max_bytes = EVR_ARTIFACT_JOB_MAX_DEFAULT;
    if (!e->opts.cache_max_bytes)
        e->opts.cache_max_bytes = EVR_CACHE_MAX_DEFAULT;
    if (!e->opts.resource_max_bytes)
        e->opts.resource_max_bytes = EVR_MAX_BYTES_DEFAULT;
    if (!e->opts.secrets_allow)
        e->opts.secrets_allow = EVR_SECRETS_ALLOW_DEFAULT;
    if (!e->opts.runner_id)
        e->opts.runner_id = "local";
    e->store = store;
    e->loop = loop;
    for (size_t i = 0; execs && i < EVR_ENGINE_MAX_EXECS && execs[i]; i++)
        e->execs[i] = execs[i];
    e->fetch = evr_fetch_new(loop);
    evr_eng_outputs_key(e);
    return e;
}

evr_loop_t *
evr_engine_loop(const evr_engine_t *self)
{
    return self->loop;
}

void
evr_engine_destroy(evr_engine_t **self_p)
{
    evr_engine_t *e = *self_p;
    if (!e)
        return;
    e->closing = true;      /* a job freed below starts no other's artifact unpack */
    for (size_t i = 0; i < e->npending; i++)
        evr_event_destroy(&e->pending[i]);
    free(e->pending);
    e->pending = NULL;
    e->npending = 0;
    for (size_t i = 0; i < e->nactions; i++)
        free(e->actions[i].data);
    free(e->actions);
    e->actions = NULL;
    e->nactions = 0;
    evr_fetch_destroy(&e->fetch);   /* downloads under way are dropped */
    evr_eng_source_trim_stop(e);
    evr_loop_timer_cancel(e->loop, e->tick);
    while (e->jobs) {
        evr_eng_job_t *j = e->jobs;
        e->jobs = j->next;
        evr_eng_job_free(j);
    }
    evr_eng_trigs_free(e);
    free(e);
    *self_p = NULL;
}

/*  EVR_ERR_STATE when job_id is not new: held, or known to the store (a
    second job.accepted would fail the whole commit). */
static evr_rc_t
s_check_new(evr_engine_t *e, const char *job_id, evr_err_t *err)
{
    if (e->failure)
        return evr_err_set(err, e->failure, "%s", e->failmsg);
    if (s_find_job(e, job_id))
        return evr_err_set(err, EVR_ERR_STATE, "job %s: this runner holds it already", job_id);
    evr_job_t rec = { 0 };
    evr_rc_t rc = EVR_OK;
    if (evr_store_get_job(e->store, job_id, &rec, NULL) == EVR_OK)
        rc = evr_err_set(err, EVR_ERR_STATE, "job %s: the event store knows it already (%s)",
                         job_id, evr_job_status_name(rec.status));
    evr_rec_free(&evr_job_type, &rec);
    return rc;
}

static void
s_fill_accepted(const evr_engine_t *e, evr_event_t *ev, const evr_spec_t *spec,
                const evr_strmap_t *args)
{
    ev->data.pipeline = evr_strdup(spec->pipeline);
    ev->data.spec = evr_spec_new();
    evr_rec_copy(&evr_spec_type, ev->data.spec, spec);
    for (uint32_t i = 0; args && i < args->n; i++)
        evr_strmap_set(&ev->data.args, args->k[i], args->v[i]);
    ev->data.runner = evr_strdup(e->opts.runner_id);
}

evr_rc_t
evr_engine_submit(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
                  const evr_strmap_t *args, evr_err_t *err)
{
    return evr_engine_submit_child(self, job_id, spec, args, NULL, NULL, err);
}

evr_rc_t
evr_engine_submit_child(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
                        const evr_strmap_t *args, const char *parent_job,
                        const char *parent_step, evr_err_t *err)
{
    evr_rc_t rc = s_check_new(self, job_id, err);
    if (rc)
        return rc;
    /* with hooks, the runner's checks come after PRE_VALIDATION's, and a
       job they fail goes through the hooks' end (CLEANUP) as any other */
    bool hooks = self->opts.hooks && self->opts.hooks->n;
    evr_eng_job_t *job = evr_eng_job_new(self, job_id, spec, args, hooks, err);
    if (!job)
        return EVR_ERR_CONFIG;
    evr_event_t *acc = evr_eng_emit(job, EVR_EV_JOB_ACCEPTED, NULL);
    s_fill_accepted(self, acc, spec, args);
    /* the job's timeout counts from now: its preparation and the hooks
       before its steps are in it (a restart counts from job.accepted's
       time, evr_recover.c) */
    job->t_accept = evr_mono_ns();
    if (job->spec->timeout)
        job->deadline = evr_add_sat(job->t_accept, evr_ms_to_ns(job->spec->timeout));
    if (parent_job && parent_step) {
        acc->data.parent_job = evr_strdup(parent_job);
        acc->data.parent_step = evr_strdup(parent_step);
    }
    bool now = job->no_ws && !hooks;
    if (now) {
        /* nothing to make before its steps: it starts in the same commit
           (its first create asked once that is done) */
        evr_eng_job_prepare(job);
        evr_eng_schedule(job);
    }
    rc = s_commit(self, err);
    if (rc)
        return rc;
    if (!now)
        evr_eng_hooks_accepted(job);
    return EVR_OK;
}

evr_rc_t
evr_engine_reject(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
                  const evr_strmap_t *args, const char *reason, evr_err_t *err)
{
    evr_rc_t rc = s_check_new(self, job_id, err);
    if (rc)
        return rc;
    evr_event_t *evs[2] = { evr_event_new(EVR_EV_JOB_ACCEPTED),
                            evr_event_new(EVR_EV_JOB_FINISHED) };
    s_fill_accepted(self, evs[0], spec, args);
    evs[1]->data.status = evr_strdup(evr_job_status_name(EVR_JOB_FAILED));
    evs[1]->data.reason = evr_strdup(reason);
    for (int i = 0; i < 2; i++)
        evs[i]->job = evr_strdup(job_id);
    evr_err_t e;
    rc = evr_store_append(self->store, evs, 2, &e);
    for (int i = 0; i < 2; i++)
        evr_event_destroy(&evs[i]);
    if (rc == EVR_ERR_STORE) {   /* the store failed, as in evr_eng_flush */
        self->failure = rc;
        snprintf(self->failmsg, sizeof self->failmsg, "%s", e.msg);
        evr_eng_fail_all(self);
    }
    if (rc)
        return evr_err_set(err, rc, "%s", e.msg);
    if (self->opts.print)
        printf("evrun-runner: job %s failed: %s\n", job_id, reason);
    return EVR_OK;
}

void
evr_eng_test_pause(const char *point, const evr_eng_step_t *st)
{
    const char *want = getenv("EVR_TEST_PAUSE_AT");
    if (!want)
        return;
    size_t n = strlen(point);
    if (strncmp(want, point, n) != 0 || (want[n] && want[n] != ':'))
        return;
    if (want[n] == ':' && (!st || strcmp(want + n + 1, st->spec->name) != 0))
        return;
    fprintf(stderr, "evrun-runner: test pause at %s%s%s\n", point, st ? " of step " : "",
            st ? st->spec->name : "");
    fflush(stderr);
    fflush(stdout);
    raise(SIGSTOP);
}

void
evr_engine_test_pause(const char *point)
{
    evr_eng_test_pause(point, NULL);
}

/*  The engine's next deadline fell due: the turn it ends runs s_timers. */
static void
s_tick(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_engine_t *e = arg;
    e->tick = 0;
}

int
evr_engine_turn(evr_engine_t *self, int timeout_ms)
{
    /* the nearest of the engine's deadlines (timeouts, output flush,
       group commit, log reads of re-attached steps; at most 100 ms away)
       is one loop timer, armed again each turn */
    int wait = s_timers(self);
    /* events queued since the last turn (by a call from outside the
       loop, or by the timers just now) are committed at the end of this
       one: the loop only takes what is ready, it does not wait */
    if (self->urgent || (self->nactions && !self->npending))
        wait = 0;
    evr_loop_timer_cancel(self->loop, self->tick);
    self->tick = evr_loop_timer_add(self->loop, (uint64_t) wait, s_tick, self);
    evr_loop_once(self->loop, timeout_ms);
    s_timers(self);
    for (evr_eng_job_t *j = self->jobs; j; j = j->next)
        evr_eng_schedule(j);
    /* Group commit: output alone waits up to S_OUTPUT_COMMIT_MS (or a full
       batch) so a chatty step costs one fsync per interval, not per read;
       every other event is committed in the turn it arose in. */
    if (self->urgent || self->npending >= 256 || (self->nactions && !self->npending)
        || (self->npending
            && evr_mono_ns() - self->pending_since >= S_COMMIT_NS(self)))
        evr_eng_flush(self);
    if (self->failure)
        return 0;   /* nothing can be recorded any more: stop (main says why) */
    int open = self->sweeping > 0 || self->src_trim;   /* (a trim ends before --exec does) */
    for (evr_eng_job_t *j = self->jobs; j; j = j->next) {
        evr_eng_cleanup(j);
        if (j->phase != EVR_ENG_JOB_DONE)
            open++;
    }
    return open;
}

bool
evr_engine_all_succeeded(const evr_engine_t *self)
{
    if (self->unrecoverable)
        return false;
    for (const evr_eng_job_t *j = self->jobs; j; j = j->next)
        if (j->phase < EVR_ENG_JOB_CLEANUP || j->final != EVR_JOB_SUCCEEDED)
            return false;
    return true;
}

uint32_t
evr_engine_active(const evr_engine_t *self)
{
    uint32_t n = 0;
    for (const evr_eng_job_t *j = self->jobs; j; j = j->next)
        if (j->phase < EVR_ENG_JOB_CLEANUP)
            n++;
    return n;
}

uint32_t
evr_engine_ending(const evr_engine_t *self)
{
    uint32_t n = 0;
    for (const evr_eng_job_t *j = self->jobs; j; j = j->next)
        if (j->phase == EVR_ENG_JOB_CLEANUP)
            n++;
    return n;
}

void
evr_engine_forget_finished(evr_engine_t *self)
{
    if (self->npending || self->nactions || self->in_flush)
        return;   /* actions queued or running may point into jobs: later */
    evr_eng_job_t **pp = &self->jobs;
    while (*pp) {
        evr_eng_job_t *j = *pp;
        if (j->phase == EVR_ENG_JOB_DONE && j->calls == 0 && j->inflight == 0) {
            *pp = j->next;
            evr_eng_job_free(j);
        }
        else
            pp = &j->next;
    }
}

evr_rc_t
evr_engine_failure(const evr_engine_t *self, const char **msg)
{
    if (msg)
        *msg = self->failmsg;
    return self->failure;
}

evr_job_status_t
evr_engine_job_status(const evr_engine_t *self, const char *job_id)
{
    const evr_eng_job_t *j = s_find_job(self, job_id);
    return j && j->phase >= EVR_ENG_JOB_CLEANUP ? j->final : EVR_JOB_NONE;
}

void
evr_engine_summary(const evr_engine_t *self, const char *job_id, FILE *out)
{
    const evr_eng_job_t *j = s_find_job(self, job_id);
    if (!j)
        return;
    /* STEP as wide as the longest name (a matrix combination's is up to 64
       bytes: cut, two of them would read the same); STATUS fits the
       longest, "timed_out (allowed)" */
    int w = 24;
    for (uint32_t i = 0; i < j->n; i++)
        if (strlen(j->steps[i].spec->name) > (size_t) w)
            w = (int) strlen(j->steps[i].spec->name);
    fprintf(out, "\n%-*s  %-19s  %5s  %10s\n", w, "STEP", "STATUS", "EXIT", "DURATION");
    for (uint32_t i = 0; i < j->n; i++) {
        const evr_eng_step_t *st = &j->steps[i];
        uint64_t ms = st->t_start && st->t_end > st->t_start
                          ? (st->t_end - st->t_start) / 1000000u : 0;
        char exit[16] = "-", dur[32] = "-";   /* none for a step that never started */
        if (st->t_start)
            snprintf(dur, sizeof dur, "%llu.%03llus", (unsigned long long) (ms / 1000),
                     (unsigned long long) (ms % 1000));
        if (st->exit_known && st->status != EVR_STEP_SKIPPED && st->exit_code != EVR_STEP_NO_EXIT)
            snprintf(exit, sizeof exit, "%lld", (long long) st->exit_code);
        char status[32];
        snprintf(status, sizeof status, "%s%s", evr_step_status_name(st->status),
                 st->allowed ? " (allowed)" : "");
        fprintf(out, "%-*s  %-19s  %5s  %10s\n", w, st->spec->name, status, exit, dur);
    }
    uint64_t from = j->t_accept ? j->t_accept : j->t_start;   /* its preparation counts */
    uint64_t jms = from ? (evr_mono_ns() - from) / 1000000u : 0;
    fprintf(out, "job %s %s in %llu.%03llus%s%s\n", j->id, evr_job_status_name(j->final),
            (unsigned long long) (jms / 1000), (unsigned long long) (jms % 1000),
            j->reason ? ": " : "", j->reason ? j->reason : "");
}
