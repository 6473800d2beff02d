/*  evr_engine_sched.c: a job's course once it runs.

    Each turn the engine calls evr_eng_schedule for every job: a step
    whose turn has come (the step before it, or its needs, are over) is
    begun, launched (created ahead) or skipped; a job that ends (cancel,
    timeout, failure) is wound down; once every step is over the job
    finishes (job.finished), then evr_eng_cleanup removes what is left of
    it (leftover units, its caches measured, its workspace).
    evr_engine.c holds the turn itself, events and control from outside.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_engine_int.h"

static bool s_failed(const evr_eng_step_t *st);

/*  A failing job names its first failed step in file order (as its
    reason does), so a step it skips or stops says which one. */
void
evr_eng_end_reason(const evr_eng_job_t *job, char *why, size_t size)
{
    if (job->timed_out || job->cancelling) {
        snprintf(why, size, "%s", job->timed_out ? "the job timed out" : "the job was cancelled");
        return;
    }
    for (uint32_t i = 0; i < job->n; i++) {
        const evr_eng_step_t *st = &job->steps[i];
        if (s_failed(st)) {
            snprintf(why, size, "step %s %s", st->spec->name,
                     st->status == EVR_STEP_TIMED_OUT ? "timed out"
                     : st->status == EVR_STEP_LOST    ? "was lost"
                                                      : "failed");
            return;
        }
    }
    snprintf(why, size, "an earlier step failed");
}

bool
evr_eng_spared(const evr_eng_step_t *st)
{
    const evr_eng_job_t *job = st->job;
    if (job->killing)
        return false;
    if (st->on_error || st->spec->when == EVR_WHEN_ALWAYS)
        return true;
    return st->spec->when == EVR_WHEN_ON_FAILURE && !job->cancelling && !job->timed_out;
}

void
evr_eng_job_ends(evr_eng_job_t *job)
{
    if (!job->end_at)
        job->end_at = evr_mono_ns();
}

/*  Whether a step the job's end spares has not ended yet (its image may
    still be wanted). */
static bool
s_spared_left(const evr_eng_job_t *job)
{
    for (uint32_t i = 0; i < job->n; i++)
        if (!evr_eng_step_done(&job->steps[i]) && evr_eng_spared(&job->steps[i]))
            return true;
    return false;
}

void
evr_eng_wind_down(evr_eng_job_t *job, bool now)
{
    if (job->res_req)   /* a resource download: its end ends the job's preparation */
        evr_fetch_cancel(job->eng->fetch, job->res_req);
    evr_eng_resource_abort(job);   /* a resource's tar being made: the same */
    evr_eng_source_abort(job);   /* a checkout: the same */
    evr_eng_hooks_stop(job);     /* a hook before the steps: the same */
    if (!s_spared_left(job))
        evr_eng_images_stop(job);   /* a pull would hold the job's end */
    char why[128];
    evr_eng_end_reason(job, why, sizeof why);
    for (uint32_t i = 0; i < job->n; i++) {
        evr_eng_step_t *st = &job->steps[i];
        if (evr_eng_spared(st))
            continue;   /* `when: always`, on_error: bounded by their grace */
        if (evr_eng_step_has_started(st)) {
            if (job->timed_out && st->exited_at && st->exited_at < job->deadline)
                continue;   /* it ended in time (a recovery found it so): its own outcome */
            if (job->timed_out) {
                st->timed_out = true;
                evr_eng_set_reason(st, "%s", job->reason ? job->reason : "the job timed out");
            }
            else {
                st->cancelled = true;
                if (!job->cancelling)   /* a failure stops it: say which */
                    evr_eng_set_reason(st, "stopped: %s (on_failure: stop)", why);
                else if (job->killing && (st->on_error || st->spec->when == EVR_WHEN_ALWAYS))
                    evr_eng_set_reason(st, "stopped: the job was cancelled again");
            }
            evr_eng_stop_step(st, now);
        }
        else
            evr_eng_step_abandon(st, why);   /* CREATING, ATTACHING, STARTING */
    }
}

/* ------------------------------------------------------- failed steps' env */

static bool
s_failed(const evr_eng_step_t *st)
{
    return evr_eng_step_done(st) && !st->allowed && st->status != EVR_STEP_SUCCEEDED
        && st->status != EVR_STEP_SKIPPED && st->status != EVR_STEP_CANCELLED;
}

void
evr_eng_failed_env(const evr_eng_step_t *st, evr_strmap_t *env)
{
    const evr_eng_job_t *job = st->job;
    if (!st->on_error && st->spec->when == EVR_WHEN_ON_SUCCESS)
        return;
    size_t cap = 1, len = 0;
    for (uint32_t i = 0; i < job->n; i++)
        cap += strlen(job->steps[i].spec->name) + 1;
    char *names = evr_calloc(cap, 1);
    for (uint32_t i = 0; i < job->n; i++) {
        const evr_eng_step_t *f = &job->steps[i];
        if (f == st || !s_failed(f))
            continue;
        len += (size_t) snprintf(names + len, cap - len, "%s%s", len ? "," : "", f->spec->name);
        char *key = evr_step_env_name("EVRUN_FAILED_REASON_", f->spec->name);
        char code[64];
        snprintf(code, sizeof code, "%s", evr_step_status_name(f->status));
        if (evr_step_exit_told(f->exit_code, false))
            snprintf(code, sizeof code, "%s (exit %lld)", evr_step_status_name(f->status),
                     (long long) f->exit_code);
        evr_strmap_set(env, key, f->reason ? f->reason : code);
        free(key);
    }
    evr_strmap_set(env, "EVRUN_FAILED_STEPS", names);
    free(names);
    if (job->prep_failed && job->reason)   /* what went wrong before the steps */
        evr_strmap_set(env, "EVRUN_PREPARE_FAILED", job->reason);
}

static void
s_cleaned(const evr_exec_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    if (r->rc && !r->not_found && job->eng->opts.print)
        printf("evrun-runner: cleaning up after job %s: %s\n", job->id, r->msg);
    job->calls--;
}

/*  text (owned, returned) within the protocol's limit of a reason (cut on a
    character, "…" last). */
static char *
s_reason(char *text)
{
    evr_text_fit(text, EVR_REASON_MAX);
    return text;
}

/*  A failed job's reason when no hook gave one: what the engine said of
    the job (its preparation's failure, which the steps that ran after it
    did not cause), else its first failed step (in file order) and how,
    so `status`, `jobs` and the end of `run --follow` say which step to
    look at, else the first skipped step's reason; NULL when none says
    anything. */
static char *
s_failed_steps_reason(const evr_eng_job_t *job)
{
    const evr_eng_step_t *first = NULL, *skipped = NULL;
    uint32_t more = 0;
    for (uint32_t i = 0; i < job->n; i++)
        if (s_failed(&job->steps[i])) {
            if (first)
                more++;
            else
                first = &job->steps[i];
        }
        else if (!skipped && job->steps[i].status == EVR_STEP_SKIPPED && job->steps[i].reason)
            skipped = &job->steps[i];
    if (job->reason)   /* its preparation failed: the steps after that are not the cause */
        return s_reason(evr_strdup(job->reason));
    if (!first)
        return skipped ? s_reason(evr_strdup(skipped->reason)) : NULL;
    char others[48] = "";
    if (more)
        snprintf(others, sizeof others, " (and %u more step%s)", more, more == 1 ? "" : "s");
    char code[32] = "";   /* none for a step that never ran (its reason says why) */
    if (evr_step_exit_told(first->exit_code, false))
        snprintf(code, sizeof code, " (exit %lld)", (long long) first->exit_code);
    return s_reason(evr_asprintf("step %s %s%s%s%s%s", first->spec->name,
                                 evr_step_status_name(first->status), code, others,
                                 first->reason ? ": " : "", first->reason ? first->reason : ""));
}

/*  Whether the job failed before its hooks after the steps: its
    preparation, or a step (not allowed to). */
static bool
s_steps_failed(const evr_eng_job_t *job)
{
    for (uint32_t i = 0; i < job->n; i++)
        if (s_failed(&job->steps[i]))
            return true;
    return job->reason != NULL;
}

static void
s_job_finish(evr_eng_job_t *job)
{
    evr_job_status_t status = EVR_JOB_SUCCEEDED;
    if (job->timed_out)
        status = EVR_JOB_TIMED_OUT;
    else if (job->cancelling)
        status = EVR_JOB_CANCELLED;
    else if (job->failed)
        status = EVR_JOB_FAILED;
    job->final = status;
    job->phase = EVR_ENG_JOB_CLEANUP;
    evr_event_t *ev = evr_eng_emit(job, EVR_EV_JOB_FINISHED, NULL);
    ev->data.status = evr_strdup(evr_job_status_name(status));
    bool after = false;
    const char *hook = evr_eng_hooks_reason(job, &after);
    char *first = NULL;   /* the job's own failure, before a hook's after the steps */
    if (hook && after && status == EVR_JOB_FAILED && s_steps_failed(job))
        first = s_failed_steps_reason(job);
    else if (hook && after && status == EVR_JOB_TIMED_OUT && job->reason)
        first = evr_strdup(job->reason);
    else if (hook && after && status == EVR_JOB_CANCELLED)   /* the cancel's, as without it */
        first = evr_strdup(job->cancel_reason ? job->cancel_reason : "cancelled");
    if (hook && status != EVR_JOB_SUCCEEDED) {
        ev->data.reason = s_reason(first ? evr_asprintf("%s; then %s", first, hook)
                                         : evr_strdup(hook));
        free(first);
    }
    else if (status == EVR_JOB_FAILED)
        ev->data.reason = s_failed_steps_reason(job);
    else if (status == EVR_JOB_TIMED_OUT && job->reason)
        ev->data.reason = s_reason(evr_strdup(job->reason));
    else if (status == EVR_JOB_CANCELLED && job->cancel_reason)   /* logs, run --follow say it */
        ev->data.reason = s_reason(evr_strdup(job->cancel_reason));
    free(job->reason);   /* from now on, job.finished's (the summary of --exec says it) */
    job->reason = ev->data.reason ? evr_strdup(ev->data.reason) : NULL;
    uint32_t allowed = 0;
    for (uint32_t i = 0; i < job->n; i++)
        allowed += job->steps[i].allowed;
    if (allowed)
        evr_eng_print(job->eng, "evrun-runner: job %s %s (%u step%s failed (allowed))", job->id,
                      evr_job_status_name(status), allowed, allowed == 1 ? "" : "s");
    else
        evr_eng_print(job->eng, "evrun-runner: job %s %s", job->id,
                      evr_job_status_name(status));
}

/*  The job ends before its steps began: job.started (with reason: what a
    restarted runner reads back, evr_recover.c), then every step skipped
    with reason but, with spare, those that run after a failure (`when:
    always`, `on_failure`, on_error), which the scheduler runs or skips
    as after a failed step. */
static void
s_not_started(evr_eng_job_t *job, const char *reason, bool spare)
{
    evr_eng_print(job->eng, "evrun-runner: %s", reason);
    job->failed = job->prep_failed = true;
    free(job->doing);
    job->doing = NULL;
    if (!job->reason)
        job->reason = evr_strdup(reason);
    job->phase = EVR_ENG_JOB_RUNNING;
    evr_event_t *ev = evr_eng_emit(job, EVR_EV_JOB_STARTED, NULL);
    ev->data.runner = evr_strdup(job->eng->opts.runner_id);
    ev->data.reason = evr_strdup(reason);
    evr_text_fit(ev->data.reason, EVR_REASON_MAX);
    for (uint32_t i = 0; i < job->n; i++)
        if (!spare || !evr_eng_after_failure(&job->steps[i]))
            evr_eng_step_skip(&job->steps[i], reason);
}

bool
evr_eng_after_failure(const evr_eng_step_t *st)
{
    return st->on_error || st->spec->when == EVR_WHEN_ALWAYS
        || st->spec->when == EVR_WHEN_ON_FAILURE;
}

void
evr_eng_prep_failed(evr_eng_job_t *job, const char *reason)
{
    s_not_started(job, reason, job->ws_ready);
}

void
evr_eng_job_refused(evr_eng_job_t *job, const char *reason)
{
    s_not_started(job, reason, false);
}

void
evr_eng_job_go(evr_eng_job_t *job)
{
    free(job->doing);   /* prepared: what comes is a hook's (evr_eng_hooks_doing) */
    job->doing = NULL;
    evr_eng_hooks_go(job);
}

void
evr_eng_job_started(evr_eng_job_t *job)
{
    job->phase = EVR_ENG_JOB_RUNNING;
    job->t_start = evr_mono_ns();
    free(job->doing);
    job->doing = NULL;
    evr_eng_emit(job, EVR_EV_JOB_STARTED, NULL)->data.runner = evr_strdup(job->eng->opts.runner_id);
}

/*  Whether the steps step i comes after are over: the one before it
    (a sequence); its needs (a DAG), or, for a DAG step that is not
    `when: on_success` and has no needs, every step before it in the
    file; for on_error, every other step.  *bad: one of them that did not
    succeed (failed and not allowed, or skipped; a sequence: not skipped),
    else NULL. */
static bool
s_after_done(const evr_eng_job_t *job, uint32_t i, const evr_eng_step_t **bad)
{
    const evr_eng_step_t *st = &job->steps[i];
    *bad = NULL;
    if (!job->dag && !st->on_error) {
        const evr_eng_step_t *prev = i ? &job->steps[i - 1] : NULL;
        if (prev && !evr_eng_step_done(prev))
            return false;
        if (prev && prev->status != EVR_STEP_SUCCEEDED && prev->status != EVR_STEP_SKIPPED
            && !prev->allowed)
            *bad = prev;
        return true;
    }
    if (st->spec->needs.n) {
        bool done = true;
        for (uint32_t k = 0; k < st->spec->needs.n; k++) {
            const evr_eng_step_t *dep =
                &job->steps[evr_spec_step_index(job->spec, st->spec->needs.v[k])];
            if (!evr_eng_step_done(dep))
                done = false;
            else if (!*bad && dep->status != EVR_STEP_SUCCEEDED && !dep->allowed)
                *bad = dep;
        }
        return done;
    }
    if (st->spec->when == EVR_WHEN_ON_SUCCESS && !st->on_error)
        return true;
    for (uint32_t k = 0; k < job->n; k++)
        if ((k < i || st->on_error) && k != i && !evr_eng_step_done(&job->steps[k]))
            return false;
    return true;
}

/*  on_error: once every other step is over, it runs when the job failed
    or timed out (not when it succeeded, nor when it was cancelled). */
static int
s_ready_on_error(const evr_eng_job_t *job, uint32_t i, char *why, size_t size)
{
    const evr_eng_step_t *bad;
    if (job->killing) {
        evr_eng_end_reason(job, why, size);
        return -1;
    }
    if (!s_after_done(job, i, &bad))
        return 0;
    if (job->cancelling && !job->timed_out) {
        snprintf(why, size, "on_error runs when the job fails: the job was cancelled");
        return -1;
    }
    if (!job->failed && !job->timed_out) {
        snprintf(why, size, "on_error runs when the job fails: no step failed");
        return -1;
    }
    return 1;
}

/*  Whether step i may begin (1), must be skipped (-1, reason in why), or
    waits (0), by its `when`: on_success (the default) runs when nothing
    failed and the steps it comes after succeeded; on_failure when the
    job is failing (not cancelled nor timed out) once they are over;
    always once they are over, whatever happened (not when the job is
    killed). */
static int
s_ready(const evr_eng_job_t *job, uint32_t i, char *why, size_t size)
{
    const evr_eng_step_t *st = &job->steps[i];
    if (st->on_error)
        return s_ready_on_error(job, i, why, size);
    const evr_eng_step_t *bad;
    bool done = s_after_done(job, i, &bad);
    bool halted = job->cancelling || job->timed_out;
    switch (st->spec->when) {
    case EVR_WHEN_ALWAYS:
        if (job->killing) {
            evr_eng_end_reason(job, why, size);
            return -1;
        }
        return done;
    case EVR_WHEN_ON_FAILURE:
        if (halted) {
            evr_eng_end_reason(job, why, size);
            return -1;
        }
        if (!done)
            return 0;
        if (!job->failed) {
            snprintf(why, size, "when: on_failure, and no step failed");
            return -1;
        }
        return 1;
    default:
        if (!halted && bad && job->dag)
            snprintf(why, size, "needs %s, which %s", bad->spec->name,
                     bad->status == EVR_STEP_SKIPPED ? "was skipped" : "did not succeed");
        else if (!halted && bad)
            snprintf(why, size, "step %s before it did not succeed", bad->spec->name);
        else if (evr_eng_ending(job))
            evr_eng_end_reason(job, why, size);
        else
            return done;
        return -1;
    }
}

/*  Step i waits for its turn: begin it, launch it (created early), create
    it ahead, skip it, or let it wait. */
static void
s_schedule_step(evr_eng_job_t *job, uint32_t i)
{
    evr_eng_step_t *st = &job->steps[i];
    char why[256];
    int r = s_ready(job, i, why, sizeof why);
    bool early = evr_eng_step_early(st);
    if (r < 0 && early)
        evr_eng_step_skip_early(st, why);
    else if (r < 0)
        evr_eng_step_skip(st, why);
    else if (r > 0 && job->running < job->parallel && early)
        evr_eng_step_launch(st);
    else if (r > 0 && job->running < job->parallel)
        evr_eng_step_begin(st);
    else if (r == 0 && !job->dag && st->state == EVR_ENG_STEP_PENDING && i > 0
             && st->spec->when == EVR_WHEN_ON_SUCCESS && !st->on_error
             && evr_eng_step_begun(&job->steps[i - 1]))
        /* the step before has begun: create this one meanwhile (one
           unit at most ahead: the steps after it wait for its turn).  A
           step of another `when` may not run, and its environment says
           which steps failed: it is created at its turn. */
        evr_eng_step_prepare(st);
}

void
evr_eng_schedule(evr_eng_job_t *job)
{
    if (job->phase != EVR_ENG_JOB_RUNNING || evr_eng_hooks_busy(job))
        return;
    bool stopping = evr_eng_stopping(job);
    if (stopping)
        evr_eng_wind_down(job, job->killing);
    /* paused: no step begins (an ending job still skips what waits) */
    bool hold = job->paused && !evr_eng_ending(job);
    bool all_done = true;
    for (uint32_t i = 0; i < job->n; i++) {
        evr_eng_step_t *st = &job->steps[i];
        if (st->state == EVR_ENG_STEP_HELD && stopping && evr_eng_spared(st))
            evr_eng_step_release(st);   /* the job cannot resume: it goes on */
        else if (st->state == EVR_ENG_STEP_HELD && stopping) {
            char why[256];
            evr_eng_end_reason(job, why, sizeof why);
            evr_eng_step_skip_held(st, why);
        }
        else if (evr_eng_step_waiting(st) && !hold)
            s_schedule_step(job, i);
        if (!evr_eng_step_done(st))
            all_done = false;
    }
    if (all_done && !evr_eng_hooks_end(job))
        s_job_finish(job);
}

static void
s_remove_leftover(const char *name, void *arg)
{
    evr_eng_job_t *job = arg;
    job->calls++;
    job->ex->ops->remove(job->ex, name, s_cleaned, job);
}

static void
s_swept(const evr_exec_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    job->calls--;
    if (!r->rc)
        evr_eng_each_name(r->names, s_remove_leftover, job);
}

void
evr_eng_cleanup(evr_eng_job_t *job)
{
    if (job->phase != EVR_ENG_JOB_CLEANUP || job->calls > 0 || job->eng->npending)
        return;
    evr_exec_t *ex = job->ex;
    if (!job->swept && !job->eng->opts.keep && job->doubt) {
        /* units of the job a crash or a failed call left behind */
        job->swept = true;
        job->calls++;
        ex->ops->list(ex, job->unit_prefix, s_swept, job);
        return;
    }
    if (evr_eng_cache_measure(job))
        return;   /* the caches' sizes, once the units are gone */
    if (!job->ws_removed && !job->eng->opts.keep && (!job->no_ws || job->recovered)) {
        job->ws_removed = true;
        job->calls++;
        ex->ops->workspace_remove(ex, job->id, s_cleaned, job);
        return;
    }
    evr_eng_hooks_done(job);
    evr_eng_secrets_remove(job);   /* what its steps registered: no step runs any more */
    evr_eng_trigger_files_remove(job);
    job->phase = EVR_ENG_JOB_DONE;
}
