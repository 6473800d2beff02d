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
#include <string.h>

#include "evr_engine_int.h"

void
evr_eng_end_reason(const evr_eng_job_t *job, char *why, size_t size)
{
    snprintf(why, size, "%s", job->timed_out ? "the job timed out"
                              : job->cancelling ? "the job was cancelled"
                                                : "an earlier step failed");
}

void
evr_eng_wind_down(evr_eng_job_t *job, bool now)
{
    if (job->res_req)   /* a resource download: its end ends the job's preparation */
        evr_fetch_cancel(job->eng->fetch, job->res_req);
    evr_eng_source_abort(job);   /* a checkout: the same */
    evr_eng_images_stop(job);   /* a pull would hold the job's end */
    char why[64];
    evr_eng_end_reason(job, why, sizeof why);
    for (uint32_t i = 0; i < job->n; i++) {
        evr_eng_step_t *st = &job->steps[i];
        if (evr_eng_step_has_started(st)) {
            if (job->timed_out)
                st->timed_out = true;
            else
                st->cancelled = true;
            evr_eng_stop_step(st, now);
        }
        else
            evr_eng_step_abandon(st, why);   /* CREATING, ATTACHING, STARTING */
    }
}


static void
s_cleaned(const evr_exec_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    if (r->rc && !r->not_found && job->eng->opts.print)
        printf("evrun-runner: cleaning up after job %s: %s\n", job->id, r->msg);
    job->calls--;
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
    evr_eng_print(job->eng, "evrun-runner: job %s %s", job->id, evr_job_status_name(status));
}

/*  Preparation failed: nothing runs, every step is skipped, the job fails. */
void
evr_eng_prep_failed(evr_eng_job_t *job, const char *reason)
{
    evr_eng_print(job->eng, "evrun-runner: %s", reason);
    job->failed = true;
    job->phase = EVR_ENG_JOB_RUNNING;
    evr_eng_emit(job, EVR_EV_JOB_STARTED, NULL)->data.runner = evr_strdup(job->eng->opts.runner_id);
    for (uint32_t i = 0; i < job->n; i++)
        evr_eng_step_skip(&job->steps[i], reason);
}

void
evr_eng_job_go(evr_eng_job_t *job)
{
    job->phase = EVR_ENG_JOB_RUNNING;
    job->t_start = evr_mono_ns();
    if (job->spec->timeout)
        job->deadline = job->t_start + job->spec->timeout * 1000000ull;
    evr_eng_emit(job, EVR_EV_JOB_STARTED, NULL)->data.runner = evr_strdup(job->eng->opts.runner_id);
}

/*  Whether step i may begin, must be skipped (reason), or waits. */
static int
s_ready(const evr_eng_job_t *job, uint32_t i, char *why, size_t size)
{
    const evr_eng_step_t *st = &job->steps[i];
    if (!job->dag) {
        if (i == 0)
            return 1;
        const evr_eng_step_t *prev = &job->steps[i - 1];
        if (!evr_eng_step_done(prev))
            return 0;
        if (prev->status == EVR_STEP_SUCCEEDED)
            return 1;
        snprintf(why, size, "step %s before it did not succeed", prev->spec->name);
        return -1;
    }
    for (uint32_t k = 0; k < st->spec->needs.n; k++) {
        int j = evr_spec_step_index(job->spec, st->spec->needs.v[k]);
        const evr_eng_step_t *dep = &job->steps[j];
        if (!evr_eng_step_done(dep))
            return 0;
        if (dep->status != EVR_STEP_SUCCEEDED) {
            snprintf(why, size, "needs %s, which %s", dep->spec->name,
                     dep->status == EVR_STEP_SKIPPED ? "was skipped" : "did not succeed");
            return -1;
        }
    }
    return 1;
}

/*  Step i waits for its turn: begin it, launch it (created early), create
    it ahead, skip it, or let it wait. */
static void
s_schedule_step(evr_eng_job_t *job, uint32_t i)
{
    evr_eng_step_t *st = &job->steps[i];
    char why[256];
    int r = s_ready(job, i, why, sizeof why);
    /* a job that ends skips what waits; after a failure, a step of a DAG
       whose need failed says which */
    bool own = job->dag && r < 0 && !job->cancelling && !job->timed_out;
    if (evr_eng_ending(job) && !own) {
        r = -1;
        evr_eng_end_reason(job, why, sizeof why);
    }
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
             && evr_eng_step_begun(&job->steps[i - 1]))
        /* the step before has begun: create this one meanwhile (one
           unit at most ahead: the steps after it wait for its turn) */
        evr_eng_step_prepare(st);
}

void
evr_eng_schedule(evr_eng_job_t *job)
{
    if (job->phase != EVR_ENG_JOB_RUNNING)
        return;
    bool stopping = evr_eng_stopping(job);
    if (stopping)
        evr_eng_wind_down(job, job->killing);
    /* paused: no step begins (an ending job still skips what waits) */
    bool hold = job->paused && !evr_eng_ending(job);
    bool all_done = true;
    for (uint32_t i = 0; i < job->n; i++) {
        evr_eng_step_t *st = &job->steps[i];
        if (st->state == EVR_ENG_STEP_HELD && stopping) {
            char why[256];
            evr_eng_end_reason(job, why, sizeof why);
            evr_eng_step_skip_held(st, why);
        }
        else if (evr_eng_step_waiting(st) && !hold)
            s_schedule_step(job, i);
        if (!evr_eng_step_done(st))
            all_done = false;
    }
    if (all_done)
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
    job->phase = EVR_ENG_JOB_DONE;
}
