/*  evr_job.c: the job and step state machine (apply) and the projection's
    field table.

    Every check happens before the first change, so an illegal event
    leaves the state exactly as it was.
*/
#include "evr_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_job_names[] = { "none", "queued", "running", "paused",
                                           "succeeded", "failed", "cancelled", "timed_out",
                                           "lost", NULL };
static const char *const s_step_names[] = { "pending", "queued", "starting", "running",
                                            "succeeded", "failed", "cancelled", "timed_out",
                                            "lost", "skipped", NULL };

#define S(key, type, member, doc)                                                                \
    { key, type, false, 0, offsetof(evr_stepstate_t, member), NULL, NULL, NULL, doc, NULL, NULL }
static const evr_field_t s_step_fields[] = {
    { "name", EVR_FT_STR, true, 64, offsetof(evr_stepstate_t, name), NULL, NULL, NULL,
      "step name", NULL, NULL },
    { "status", EVR_FT_ENUM, false, 0, offsetof(evr_stepstate_t, status), NULL, NULL, NULL,
      "step status", s_step_names, NULL },
    S("attempt", EVR_FT_U32, attempt, "attempt, from 1"),
    S("container", EVR_FT_STR, container, "container name"),
    S("container_id", EVR_FT_STR, container_id, "podman container id"),
    S("exit_code", EVR_FT_I64, exit_code, "exit code"),
    S("started", EVR_FT_U64, started, "ns"),
    S("finished", EVR_FT_U64, finished, "ns"),
    S("duration", EVR_FT_DURATION, duration, "as reported"),
    S("out_stdout", EVR_FT_U64, out_stdout, "raw stdout bytes stored"),
    S("out_stderr", EVR_FT_U64, out_stderr, "raw stderr bytes stored"),
    S("chunks", EVR_FT_U32, chunks, "output events"),
    S("recoveries", EVR_FT_U32, recoveries, "step.recovered events"),
    S("reason", EVR_FT_STR, reason, "why it was skipped or failed"),
    S("allowed", EVR_FT_BOOL, allowed, "it failed with allow_failure: the job does not fail"),
    { "outputs", EVR_FT_STRMAP, false, EVR_OUTPUTS_MAX_KEYS, offsetof(evr_stepstate_t, outputs),
      NULL, NULL, NULL, "step.outputs of this attempt", NULL, NULL },
};
const evr_rectype_t evr_stepstate_type = { "stepstate", sizeof(evr_stepstate_t), s_step_fields,
                                           EVR_ARRAY_LEN(s_step_fields), EVR_NO_PRESENT, NULL };

#define J(key, type, member, doc)                                                                \
    { key, type, false, 0, offsetof(evr_job_t, member), NULL, NULL, NULL, doc, NULL, NULL }
static const evr_field_t s_job_fields[] = {
    { "id", EVR_FT_STR, true, EVR_ULID_LEN, offsetof(evr_job_t, id), NULL, NULL, NULL,
      "job id", NULL, NULL },
    J("pipeline", EVR_FT_STR, pipeline, "pipeline name"),
    { "status", EVR_FT_ENUM, false, 0, offsetof(evr_job_t, status), NULL, NULL, NULL,
      "job status", s_job_names, NULL },
    J("runner", EVR_FT_STR, runner, "runner id"),
    J("reason", EVR_FT_STR, reason, "why it ended or was cancelled"),
    J("created", EVR_FT_U64, created, "ns"),
    J("started", EVR_FT_U64, started, "ns"),
    J("finished", EVR_FT_U64, finished, "ns"),
    J("last_jseq", EVR_FT_U32, last_jseq, "per-job seq of the last event"),
    J("last_seq", EVR_FT_U64, last_seq, "runner seq of the last event"),
    J("cancel_requested", EVR_FT_BOOL, cancel_requested, "a cancel is pending"),
    J("cancel_forced", EVR_FT_BOOL, cancel_forced,
      "a second cancel: its `always` steps are stopped too"),
    J("compacted", EVR_FT_BOOL, compacted, "events removed by retention"),
    J("output_dropped", EVR_FT_BOOL, output_dropped, "output bytes removed by retention"),
    { "steps", EVR_FT_RECLIST, false, 256, offsetof(evr_job_t, steps), &evr_stepstate_type,
      NULL, NULL, "steps", NULL, NULL },
};
const evr_rectype_t evr_job_type = { "job", sizeof(evr_job_t), s_job_fields,
                                     EVR_ARRAY_LEN(s_job_fields), EVR_NO_PRESENT, NULL };

const char *
evr_job_status_name(evr_job_status_t s)
{
    return (size_t) s < EVR_ARRAY_LEN(s_job_names) - 1 ? s_job_names[s] : "?";
}

const char *
evr_step_status_name(evr_step_status_t s)
{
    return (size_t) s < EVR_ARRAY_LEN(s_step_names) - 1 ? s_step_names[s] : "?";
}

bool
evr_step_exit_told(int64_t exit_code, bool succeeded)
{
    return exit_code != EVR_STEP_NO_EXIT && (exit_code != 0 || succeeded);
}

bool
evr_job_status_parse(const char *s, evr_job_status_t *out)
{
    for (size_t i = 1; s_job_names[i]; i++)
        if (strcmp(s, s_job_names[i]) == 0) {
            *out = (evr_job_status_t) i;
            return true;
        }
    return false;
}

bool
evr_job_is_final(const evr_job_t *job)
{
    return job->status >= EVR_JOB_SUCCEEDED;
}

bool
evr_job_step_is_final(const evr_stepstate_t *st)
{
    return st->status >= EVR_STEP_SUCCEEDED;
}

evr_stepstate_t *
evr_job_step(const evr_job_t *job, uint32_t i)
{
    return evr_reclist_at(&evr_stepstate_type, &job->steps, i);
}

evr_stepstate_t *
evr_job_find_step(const evr_job_t *job, const char *name)
{
    for (uint32_t i = 0; i < job->steps.n; i++) {
        evr_stepstate_t *st = evr_job_step(job, i);
        if (strcmp(st->name, name) == 0)
            return st;
    }
    return NULL;
}

uint32_t
evr_job_steps_done(const evr_job_t *job)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < job->steps.n; i++)
        n += evr_job_step_is_final(evr_job_step(job, i));
    return n;
}

evr_job_t *
evr_job_new(void)
{
    return evr_calloc(1, sizeof(evr_job_t));
}

void
evr_job_destroy(evr_job_t **self_p)
{
    if (!*self_p)
        return;
    evr_rec_free(&evr_job_type, *self_p);
    free(*self_p);
    *self_p = NULL;
}

static void
s_set(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? evr_strdup(src) : NULL;
}

static evr_rc_t
s_illegal(evr_err_t *err, const evr_job_t *job, const evr_event_t *ev, const char *why)
{
    return evr_err_set(err, EVR_ERR_STATE, "job %s: %s (jseq %u, seq %llu) illegal in state %s: %s",
                       ev->job ? ev->job : "-", evr_evtype_name(evr_event_kind(ev)) ? evr_evtype_name(evr_event_kind(ev)) : "?", ev->jseq,
                       (unsigned long long) ev->seq, evr_job_status_name(job->status), why);
}

static evr_rc_t
s_step_illegal(evr_err_t *err, const evr_job_t *job, const evr_stepstate_t *st,
               const evr_event_t *ev, const char *why)
{
    char buf[256];
    snprintf(buf, sizeof buf, "step %s is %s (attempt %u): %s", st->name,
             evr_step_status_name(st->status), st->attempt, why);
    return s_illegal(err, job, ev, buf);
}

static evr_step_status_t
s_finished_status(const evr_evdata_t *d)
{
    static const struct { const char *name; evr_step_status_t st; } map[] = {
        { "succeeded", EVR_STEP_SUCCEEDED }, { "failed", EVR_STEP_FAILED },
        { "cancelled", EVR_STEP_CANCELLED }, { "timed_out", EVR_STEP_TIMED_OUT },
        { "lost", EVR_STEP_LOST },
    };
    if (d->status)
        for (size_t i = 0; i < EVR_ARRAY_LEN(map); i++)
            if (strcmp(d->status, map[i].name) == 0)
                return map[i].st;
    return d->exit_code == 0 ? EVR_STEP_SUCCEEDED : EVR_STEP_FAILED;
}

/*  step.* events: check, then change. */
static evr_rc_t
s_apply_step(evr_job_t *job, evr_evtype_t t, const evr_event_t *ev, evr_err_t *err)
{
    const evr_evdata_t *d = &ev->data;
    if (job->status != EVR_JOB_RUNNING && job->status != EVR_JOB_PAUSED)
        return s_illegal(err, job, ev, "steps move only while the job runs");
    evr_stepstate_t *st = d->step ? evr_job_find_step(job, d->step) : NULL;
    if (!st)
        return s_illegal(err, job, ev, "no such step in the pipeline");
    uint32_t attempt = d->attempt ? d->attempt : (st->attempt ? st->attempt : 1);
    bool retry = false;
    switch (t) {
    case EVR_EV_STEP_QUEUED:
        retry = st->status == EVR_STEP_FAILED || st->status == EVR_STEP_LOST
             || st->status == EVR_STEP_TIMED_OUT;
        if (st->status != EVR_STEP_PENDING && !retry)
            return s_step_illegal(err, job, st, ev, "only a pending or retryable step is queued");
        if (retry && attempt <= st->attempt)
            return s_step_illegal(err, job, st, ev, "a retry needs a higher attempt");
        break;
    case EVR_EV_STEP_STARTING:
        if (st->status != EVR_STEP_QUEUED)
            return s_step_illegal(err, job, st, ev, "only a queued step starts");
        if (attempt != st->attempt)
            return s_step_illegal(err, job, st, ev, "attempt does not match");
        break;
    case EVR_EV_STEP_STARTED:
        if (st->status != EVR_STEP_STARTING)
            return s_step_illegal(err, job, st, ev, "only a starting step is started");
        break;
    case EVR_EV_STEP_OUTPUT: {
        if (st->status != EVR_STEP_RUNNING)
            return s_step_illegal(err, job, st, ev, "output only from a running step");
        uint64_t have = strcmp(d->stream, "stderr") == 0 ? st->out_stderr : st->out_stdout;
        if (d->offset != have) {
            char why[128];
            snprintf(why, sizeof why, "%s offset %llu but %llu bytes are stored", d->stream,
                     (unsigned long long) d->offset, (unsigned long long) have);
            return s_step_illegal(err, job, st, ev, why);
        }
        break;
    }
    case EVR_EV_STEP_FINISHED:
        if (st->status != EVR_STEP_STARTING && st->status != EVR_STEP_RUNNING
            && st->status != EVR_STEP_QUEUED)
            return s_step_illegal(err, job, st, ev, "only a queued, starting or running step finishes");
        break;
    case EVR_EV_STEP_SKIPPED:
        /* starting: its container may exist, created ahead, but never ran */
        if (st->status != EVR_STEP_PENDING && st->status != EVR_STEP_QUEUED
            && st->status != EVR_STEP_STARTING)
            return s_step_illegal(err, job, st, ev, "only a step that has not started is skipped");
        break;
    case EVR_EV_STEP_RECOVERED:
        if (st->status != EVR_STEP_STARTING && st->status != EVR_STEP_RUNNING
            && st->status != EVR_STEP_QUEUED)
            return s_step_illegal(err, job, st, ev, "only an unfinished step is recovered");
        break;
    case EVR_EV_STEP_ARTIFACT:   /* copied out after the exit, before step.finished */
        if (st->status != EVR_STEP_RUNNING)
            return s_step_illegal(err, job, st, ev, "artifacts only from a running step");
        if (attempt != st->attempt)
            return s_step_illegal(err, job, st, ev, "attempt does not match");
        break;
    case EVR_EV_STEP_OUTPUTS:   /* read after the exit, before step.finished, once */
        if (st->status != EVR_STEP_RUNNING)
            return s_step_illegal(err, job, st, ev, "outputs only from a running step");
        if (attempt != st->attempt)
            return s_step_illegal(err, job, st, ev, "attempt does not match");
        if (st->outputs.n)
            return s_step_illegal(err, job, st, ev, "outputs recorded already");
        break;
    default: return s_illegal(err, job, ev, "not a step event");
    }
    /* legal: change */
    switch (t) {
    case EVR_EV_STEP_QUEUED:
        st->status = EVR_STEP_QUEUED;
        st->attempt = attempt;
        st->out_stdout = st->out_stderr = 0;
        st->chunks = 0;
        st->exit_code = 0;
        st->started = st->finished = st->duration = 0;
        s_set(&st->container_id, NULL);
        s_set(&st->reason, NULL);
        st->allowed = false;
        evr_strmap_free(&st->outputs);
        break;
    case EVR_EV_STEP_STARTING:
        st->status = EVR_STEP_STARTING;
        s_set(&st->container, d->container);
        break;
    case EVR_EV_STEP_STARTED:
        st->status = EVR_STEP_RUNNING;
        st->started = ev->time;
        s_set(&st->container_id, d->container_id);
        break;
    case EVR_EV_STEP_OUTPUT:
        if (strcmp(d->stream, "stderr") == 0)
            st->out_stderr += d->raw;
        else
            st->out_stdout += d->raw;
        st->chunks++;
        break;
    case EVR_EV_STEP_FINISHED:
        st->status = s_finished_status(d);
        st->exit_code = d->exit_code;
        st->duration = d->duration;
        st->finished = ev->time;
        s_set(&st->reason, d->reason);
        st->allowed = d->allowed;
        break;
    case EVR_EV_STEP_SKIPPED:
        st->status = EVR_STEP_SKIPPED;
        st->finished = ev->time;
        s_set(&st->reason, d->reason);
        break;
    case EVR_EV_STEP_RECOVERED: st->recoveries++; break;
    case EVR_EV_STEP_OUTPUTS:
        for (uint32_t i = 0; i < d->outputs.n; i++)
            evr_strmap_set(&st->outputs, d->outputs.k[i], d->outputs.v[i]);
        break;
    default: break;
    }
    return EVR_OK;
}

static evr_rc_t
s_accept(evr_job_t *job, const evr_event_t *ev, evr_err_t *err)
{
    const evr_evdata_t *d = &ev->data;
    if (job->status != EVR_JOB_NONE)
        return s_illegal(err, job, ev, "the job was accepted before");
    if (!d->spec || d->spec->steps.n == 0)
        return s_illegal(err, job, ev, "job.accepted carries no steps");
    s_set(&job->id, ev->job);
    s_set(&job->pipeline, d->pipeline);
    s_set(&job->runner, d->runner);
    job->status = EVR_JOB_QUEUED;
    job->created = ev->time;
    job->steps.n = evr_spec_job_steps(d->spec);   /* its on_error last */
    job->steps.v = evr_calloc(job->steps.n, sizeof(evr_stepstate_t));
    for (uint32_t i = 0; i < job->steps.n; i++)
        evr_job_step(job, i)->name = evr_strdup(evr_spec_job_step_name(d->spec, i));
    return EVR_OK;
}

static evr_rc_t
s_apply_job(evr_job_t *job, evr_evtype_t t, const evr_event_t *ev, evr_err_t *err)
{
    const evr_evdata_t *d = &ev->data;
    bool live = job->status == EVR_JOB_QUEUED || job->status == EVR_JOB_RUNNING
             || job->status == EVR_JOB_PAUSED;
    switch (t) {
    case EVR_EV_JOB_ACCEPTED: return s_accept(job, ev, err);
    case EVR_EV_JOB_STARTED:
        if (job->status != EVR_JOB_QUEUED)
            return s_illegal(err, job, ev, "only a queued job starts");
        job->status = EVR_JOB_RUNNING;
        job->started = ev->time;
        if (d->runner)
            s_set(&job->runner, d->runner);
        return EVR_OK;
    case EVR_EV_JOB_SOURCE:   /* preparation: before job.started (again after a restart) */
        if (job->status != EVR_JOB_QUEUED)
            return s_illegal(err, job, ev, "a source is put in before the job starts");
        return EVR_OK;
    case EVR_EV_JOB_PAUSED:
        if (job->status != EVR_JOB_RUNNING)
            return s_illegal(err, job, ev, "only a running job pauses");
        job->status = EVR_JOB_PAUSED;
        return EVR_OK;
    case EVR_EV_JOB_RESUMED:
        if (job->status != EVR_JOB_PAUSED)
            return s_illegal(err, job, ev, "only a paused job resumes");
        job->status = EVR_JOB_RUNNING;
        return EVR_OK;
    case EVR_EV_JOB_CANCEL_REQUESTED:
        if (!live)
            return s_illegal(err, job, ev, "only a queued, running or paused job is cancelled");
        /* a second one (force) stops the `always` steps too; the job
           keeps the first one's reason */
        if (!job->cancel_requested)
            s_set(&job->reason, d->reason);
        job->cancel_requested = true;
        job->cancel_forced |= d->force;
        return EVR_OK;
    case EVR_EV_JOB_FINISHED: {
        evr_job_status_t s;
        if (!live)
            return s_illegal(err, job, ev, "only a queued, running or paused job finishes");
        if (!d->status || !evr_job_status_parse(d->status, &s) || s < EVR_JOB_SUCCEEDED)
            return s_illegal(err, job, ev, "job.finished needs a final status");
        job->status = s;
        job->finished = ev->time;
        if (d->reason)
            s_set(&job->reason, d->reason);
        return EVR_OK;
    }
    case EVR_EV_IMAGE_PULLING:
    case EVR_EV_IMAGE_PROGRESS:
    case EVR_EV_IMAGE_PULLED:
    case EVR_EV_IMAGE_PULL_FAILED:   /* a record of a pull; the job's state stays */
        if (!live)   /* queued: resources go in through the job's image, before job.started */
            return s_illegal(err, job, ev, "images are pulled only for a job not ended");
        return EVR_OK;
    case EVR_EV_HOOK_STARTED:
    case EVR_EV_HOOK_FINISHED:   /* a lifecycle hook's run; the job's state stays */
        if (!live)
            return s_illegal(err, job, ev, "hooks run only for a job not ended");
        return EVR_OK;
    case EVR_EV_SECRET_REGISTERED:   /* a record of a registration; the job's state stays */
        if (!live)
            return s_illegal(err, job, ev, "secrets are registered only while the job runs");
        return EVR_OK;
    default: return s_apply_step(job, t, ev, err);
    }
}

/*  What the broker asks more of an event a runner sends than the state
    machine does (the runner's own events always pass: its job.accepted
    takes the spec's pipeline, and its job.finished{succeeded} comes after
    job.started once every step has ended).  The runner's own log and
    archives written before these checks keep being folded without them. */
static evr_rc_t
s_sent_check(const evr_job_t *job, evr_evtype_t t, const evr_event_t *ev, evr_err_t *err)
{
    const evr_evdata_t *d = &ev->data;
    if (t == EVR_EV_JOB_ACCEPTED && job->status == EVR_JOB_NONE && d->spec && d->pipeline
        && d->spec->pipeline && strcmp(d->pipeline, d->spec->pipeline) != 0) {
        char why[256];
        snprintf(why, sizeof why, "its pipeline \"%s\" is not its spec's (\"%s\")", d->pipeline,
                 d->spec->pipeline);
        return s_illegal(err, job, ev, why);
    }
    if (t != EVR_EV_JOB_FINISHED || !d->status || strcmp(d->status, "succeeded") != 0)
        return EVR_OK;
    if (job->status == EVR_JOB_QUEUED)
        return s_illegal(err, job, ev, "a job succeeds only once started (job.started)");
    if (job->status != EVR_JOB_RUNNING && job->status != EVR_JOB_PAUSED)
        return EVR_OK;   /* the state machine refuses it, saying why */
    for (uint32_t i = 0; i < job->steps.n; i++) {
        const evr_stepstate_t *st = evr_job_step(job, i);
        if (!evr_job_step_is_final(st)) {
            char why[160];
            snprintf(why, sizeof why, "step %s is %s: a job succeeds only once every step has "
                     "ended", st->name, evr_step_status_name(st->status));
            return s_illegal(err, job, ev, why);
        }
    }
    return EVR_OK;
}

static evr_rc_t
s_apply(evr_job_t *job, const evr_event_t *ev, bool sent, evr_err_t *err)
{
    evr_evtype_t t = evr_event_kind(ev);
    if (t == EVR_EV_NONE || t == EVR_EV_RUNNER_STARTED || t == EVR_EV_RUNNER_RECOVERED)
        return s_illegal(err, job, ev, "not a job event");
    if (!ev->job)
        return s_illegal(err, job, ev, "the event names no job");
    if (job->id && strcmp(job->id, ev->job) != 0)
        return s_illegal(err, job, ev, "the event belongs to another job");
    if (evr_job_is_final(job))
        return s_illegal(err, job, ev, "the job has finished");
    if (ev->jseq != job->last_jseq + 1) {
        char why[96];
        snprintf(why, sizeof why, "per-job seq %u expected", job->last_jseq + 1);
        return s_illegal(err, job, ev, why);
    }
    evr_rc_t rc = sent ? s_sent_check(job, t, ev, err) : EVR_OK;
    if (rc == EVR_OK)
        rc = s_apply_job(job, t, ev, err);
    if (rc == EVR_OK) {
        job->last_jseq = ev->jseq;
        job->last_seq = ev->seq;
    }
    return rc;
}

evr_rc_t
evr_job_apply(evr_job_t *job, const evr_event_t *ev, evr_err_t *err)
{
    return s_apply(job, ev, false, err);
}

evr_rc_t
evr_job_apply_sent(evr_job_t *job, const evr_event_t *ev, evr_err_t *err)
{
    return s_apply(job, ev, true, err);
}
