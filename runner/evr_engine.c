/*  evr_engine.c: jobs and steps as state machines driven by podman
    callbacks, events committed before their effects.

    A turn of the loop: wait for podman (callbacks change state and queue
    events and after-commit actions), check timers (output flush, step and
    job timeouts), schedule steps, then commit the queued events in one
    transaction and run the actions that were waiting for them.  A step's
    own lifecycle is in evr_step.c, the workspace and resources in
    evr_prepare.c.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_engine_int.h"

const char *const evr_eng_stream_names[2] = { "stdout", "stderr" };

/*  Longest wait of stored output for its commit (and its printing). */
#define S_OUTPUT_COMMIT_MS 25

/* ------------------------------------------------------- events, actions */

evr_event_t *
evr_eng_emit(s_job_t *job, evr_evtype_t t, const s_step_t *st)
{
    evr_engine_t *e = job->eng;
    evr_event_t *ev = evr_event_new(t);
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
    e->actions[e->nactions++] = (s_action_t) { fn, arg, copy, len };
}


/*  Commits the queued events (in batches), then runs the waiting actions;
    actions may queue more, so until both are empty. */
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
        s_action_t *run = evr_malloc(n * sizeof *run);
        memcpy(run, e->actions, n * sizeof *run);
        e->nactions = 0;
        for (size_t i = 0; i < n; i++) {
            run[i].fn(run[i].arg, run[i].data, run[i].len);
            free(run[i].data);
        }
        free(run);
    }
}

/* ------------------------------------------------------------------ jobs */

static s_job_t *
s_find_job(const evr_engine_t *e, const char *id)
{
    for (s_job_t *j = e->jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

void
evr_eng_stop_step(s_step_t *st, bool now)
{
    evr_engine_t *e = st->job->eng;
    if (st->phase != P_RUNNING)
        return;
    if (now && !st->kill_sent) {
        st->kill_sent = true;
        evr_podman_kill(e->pm, st->container, "SIGKILL", NULL, NULL);
    }
    else if (!st->stop_sent) {
        st->stop_sent = true;
        evr_podman_stop(e->pm, st->container, e->opts.grace_s, NULL, NULL);
    }
}

/*  Stops what runs (cancelled, or timed out), skips what has not begun. */
static void
s_wind_down(s_job_t *job, bool now)
{
    for (uint32_t i = 0; i < job->n; i++) {
        s_step_t *st = &job->steps[i];
        if (st->phase == P_RUNNING) {
            if (job->timed_out)
                st->timed_out = true;
            else
                st->cancelled = true;
            evr_eng_stop_step(st, now);
        }
    }
}

static void
s_job_cancel(s_job_t *job, const char *reason, bool now)
{
    if (job->phase == J_DONE || job->phase == J_CLEANUP)
        return;
    if (!job->cancelling) {
        job->cancelling = true;
        evr_event_t *ev = evr_eng_emit(job, EVR_EV_JOB_CANCEL_REQUESTED, NULL);
        ev->data.reason = evr_strdup(reason);
        if (job->eng->opts.print)
            printf("evrun-runner: cancelling job %s: %s\n", job->id, reason);
    }
    if (now)
        job->killing = true;
    s_wind_down(job, now);
}

void
evr_engine_cancel_all(evr_engine_t *self, const char *reason, bool now)
{
    for (s_job_t *j = self->jobs; j; j = j->next)
        s_job_cancel(j, reason, now);
}

/*  A store failure: no more events can be recorded, so stop everything. */
void
evr_eng_fail_all(evr_engine_t *e)
{
    for (s_job_t *j = e->jobs; j; j = j->next) {
        j->cancelling = true;
        for (uint32_t i = 0; i < j->n; i++)
            evr_eng_stop_step(&j->steps[i], true);
    }
}

static void
s_volume_gone(const evr_podman_result_t *r, void *arg)
{
    s_job_t *job = arg;
    if (r->rc && !r->not_found && job->eng->opts.print)
        printf("evrun-runner: cleaning up after job %s: %s\n", job->id, r->msg);
    job->calls--;
}

static void
s_job_finish(s_job_t *job)
{
    evr_job_status_t status = EVR_JOB_SUCCEEDED;
    if (job->timed_out)
        status = EVR_JOB_TIMED_OUT;
    else if (job->cancelling)
        status = EVR_JOB_CANCELLED;
    else if (job->failed)
        status = EVR_JOB_FAILED;
    job->final = status;
    job->phase = J_CLEANUP;
    evr_event_t *ev = evr_eng_emit(job, EVR_EV_JOB_FINISHED, NULL);
    ev->data.status = evr_strdup(evr_job_status_name(status));
    if (job->eng->opts.print)
        printf("evrun-runner: job %s %s\n", job->id, evr_job_status_name(status));
}

/*  Preparation failed: nothing runs, every step is skipped, the job fails. */
void
evr_eng_prep_failed(s_job_t *job, const char *reason)
{
    if (job->eng->opts.print)
        printf("evrun-runner: %s\n", reason);
    job->failed = true;
    job->phase = J_RUNNING;
    evr_eng_emit(job, EVR_EV_JOB_STARTED, NULL)->data.runner = evr_strdup(job->eng->opts.runner_id);
    for (uint32_t i = 0; i < job->n; i++)
        evr_eng_step_skip(&job->steps[i], reason);
}

void
evr_eng_job_go(s_job_t *job)
{
    job->phase = J_RUNNING;
    job->t_start = evr_mono_ns();
    if (job->spec->timeout)
        job->deadline = job->t_start + job->spec->timeout * 1000000ull;
    evr_eng_emit(job, EVR_EV_JOB_STARTED, NULL)->data.runner = evr_strdup(job->eng->opts.runner_id);
}

/*  Whether step i may begin, must be skipped (reason), or waits. */
static int
s_ready(const s_job_t *job, uint32_t i, char *why, size_t size)
{
    const s_step_t *st = &job->steps[i];
    if (!job->dag) {
        if (i == 0)
            return 1;
        const s_step_t *prev = &job->steps[i - 1];
        if (prev->phase != P_DONE)
            return 0;
        if (prev->status == EVR_STEP_SUCCEEDED)
            return 1;
        snprintf(why, size, "step %s before it did not succeed", prev->spec->name);
        return -1;
    }
    for (uint32_t k = 0; k < st->spec->needs.n; k++) {
        int j = evr_spec_step_index(job->spec, st->spec->needs.v[k]);
        const s_step_t *dep = &job->steps[j];
        if (dep->phase != P_DONE)
            return 0;
        if (dep->status != EVR_STEP_SUCCEEDED) {
            snprintf(why, size, "needs %s, which %s", dep->spec->name,
                     dep->status == EVR_STEP_SKIPPED ? "was skipped" : "did not succeed");
            return -1;
        }
    }
    return 1;
}

static void
s_schedule(s_job_t *job)
{
    if (job->phase != J_RUNNING)
        return;
    bool stopping = job->cancelling || job->failed || job->timed_out;
    bool let_finish = job->failed && !job->cancelling && !job->timed_out
                   && job->spec->on_failure == EVR_ON_FAILURE_FINISH;
    if (stopping && !let_finish)
        s_wind_down(job, job->killing);
    bool all_done = true;
    for (uint32_t i = 0; i < job->n; i++) {
        s_step_t *st = &job->steps[i];
        bool waiting = (st->phase == P_PENDING
                        || (st->early && !st->launched && st->phase == P_STARTING))
                    && !st->inspecting;   /* recovery decides first */
        if (waiting) {
            char why[256];
            int r = stopping ? -1 : s_ready(job, i, why, sizeof why);
            if (stopping)
                snprintf(why, sizeof why, "%s", job->timed_out ? "the job timed out"
                                                : job->cancelling ? "the job was cancelled"
                                                                  : "an earlier step failed");
            if (r < 0 && st->phase == P_STARTING)
                evr_eng_step_skip_early(st, why);
            else if (r < 0)
                evr_eng_step_skip(st, why);
            else if (r > 0 && job->running < job->parallel && st->phase == P_STARTING)
                evr_eng_step_launch(st);
            else if (r > 0 && job->running < job->parallel)
                evr_eng_step_begin(st);
            else if (r == 0 && !job->dag && st->phase == P_PENDING && i > 0
                     && job->steps[i - 1].phase == P_RUNNING)
                /* the step before runs: create this one meanwhile */
                evr_eng_step_prepare(st);
        }
        if (st->phase != P_DONE)
            all_done = false;
    }
    if (all_done)
        s_job_finish(job);
}

static void
s_remove_leftover(const char *name, void *arg)
{
    s_job_t *job = arg;
    job->calls++;
    evr_podman_remove(job->eng->pm, name, s_volume_gone, job);
}

static void
s_swept(const evr_podman_result_t *r, void *arg)
{
    s_job_t *job = arg;
    job->calls--;
    if (!r->rc)
        evr_podman_each_name(r->id, s_remove_leftover, job);
}

static void
s_cleanup(s_job_t *job)
{
    if (job->phase != J_CLEANUP || job->calls > 0 || job->eng->npending)
        return;
    if (!job->swept && !job->eng->opts.keep) {
        /* containers of the job a crash or a failed call left behind */
        job->swept = true;
        job->calls++;
        char *prefix = evr_asprintf("%s-", job->volume);
        evr_podman_list(job->eng->pm, prefix, s_swept, job);
        free(prefix);
        return;
    }
    if (job->volume && !job->eng->opts.keep) {
        char *v = job->volume;
        job->volume = NULL;
        job->calls++;
        evr_podman_volume_remove(job->eng->pm, v, s_volume_gone, job);
        free(v);
        return;
    }
    job->phase = J_DONE;
}

/* ----------------------------------------------------------------- timers */

static int
s_timers(evr_engine_t *e)
{
    uint64_t now = evr_mono_ns(), next = now + 100 * 1000000ull;
    uint64_t flush = (uint64_t) e->opts.flush_ms * 1000000ull;
    for (s_job_t *job = e->jobs; job; job = job->next) {
        if (job->phase != J_RUNNING)
            continue;
        if (job->deadline && !job->timed_out) {
            if (now >= job->deadline) {
                job->timed_out = true;
                if (e->opts.print)
                    printf("evrun-runner: job %s timed out\n", job->id);
            }
            else if (job->deadline < next)
                next = job->deadline;
        }
        for (uint32_t i = 0; i < job->n; i++) {
            s_step_t *st = &job->steps[i];
            if (st->phase != P_RUNNING)
                continue;
            for (int si = 0; si < 2; si++) {
                s_stream_t *s = &st->out[si];
                if (!s->len && !s->raw_in_buf)
                    continue;
                if (now >= s->since + flush)
                    evr_eng_emit_output(st, si, false);
                else if (s->since + flush < next)
                    next = s->since + flush;
            }
            if (st->spec->timeout && !st->timed_out) {
                uint64_t dl = st->t_start + st->spec->timeout * 1000000ull;
                if (now >= dl) {
                    st->timed_out = true;
                    evr_eng_set_reason(st, "timed out after %llu ms",
                                 (unsigned long long) st->spec->timeout);
                    evr_eng_stop_step(st, false);
                }
                else if (dl < next)
                    next = dl;
            }
        }
    }
    if (e->npending) {
        uint64_t commit = e->pending_since + S_OUTPUT_COMMIT_MS * 1000000ull;
        if (commit < next)
            next = commit;
    }
    uint64_t wait = next > now ? (next - now) / 1000000u : 0;
    return (int) (wait > 100 ? 100 : wait);
}

/* ------------------------------------------------------------------- API */

evr_engine_t *
evr_engine_new(const evr_engine_opts_t *opts, evr_store_t *store, evr_podman_t *podman)
{
    evr_engine_t *e = evr_calloc(1, sizeof *e);
    e->opts = *opts;
    if (!e->opts.grace_s)
        e->opts.grace_s = 10;
    if (!e->opts.parallel)
        e->opts.parallel = 4;
    if (!e->opts.flush_ms)
        e->opts.flush_ms = 50;
    if (!e->opts.runner_id)
        e->opts.runner_id = "local";
    e->store = store;
    e->pm = podman;
    return e;
}

static void
s_job_free(s_job_t *job)
{
    for (uint32_t i = 0; i < job->n; i++) {
        s_step_t *st = &job->steps[i];
        while (st->toks) {
            s_tok_t *t = st->toks;
            st->toks = t->next;
            free(t);
        }
        free(st->container);
        free(st->container_id);
        free(st->reason);
        for (int si = 0; si < 2; si++) {
            free(st->out[si].buf);
            evr_mask_destroy(&st->out[si].mask);
        }
    }
    for (size_t i = 0; i < job->nsecrets; i++)
        free(job->secrets[i]);
    free(job->secrets);
    free(job->steps);
    evr_spec_destroy(&job->spec);
    evr_strmap_free(&job->env);
    free(job->volume);
    free(job->res_helper);
    free(job->res_file);
    if (job->res_fp)
        fclose(job->res_fp);
    free(job->id);
    free(job);
}

void
evr_engine_destroy(evr_engine_t **self_p)
{
    evr_engine_t *e = *self_p;
    if (!e)
        return;
    for (size_t i = 0; i < e->npending; i++)
        evr_event_destroy(&e->pending[i]);
    free(e->pending);
    for (size_t i = 0; i < e->nactions; i++)
        free(e->actions[i].data);
    free(e->actions);
    while (e->jobs) {
        s_job_t *j = e->jobs;
        e->jobs = j->next;
        s_job_free(j);
    }
    free(e);
    *self_p = NULL;
}

/*  A secret's value: the runner's environment, else secrets_dir/NAME
    (one trailing newline dropped). */
static char *
s_secret(const evr_engine_t *e, const char *name)
{
    const char *v = getenv(name);
    if (v)
        return evr_strdup(v);
    if (!e->opts.secrets_dir)
        return NULL;
    char *path = evr_asprintf("%s/%s", e->opts.secrets_dir, name);
    FILE *fp = fopen(path, "rb");
    free(path);
    if (!fp)
        return NULL;
    char *buf = evr_malloc(65537);
    size_t n = fread(buf, 1, 65536, fp);
    fclose(fp);
    if (n && buf[n - 1] == '\n')
        n--;
    buf[n] = '\0';
    return buf;
}

s_job_t *
evr_eng_job_new(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
                const evr_strmap_t *args, evr_err_t *err)
{
    s_job_t *job = evr_calloc(1, sizeof *job);
    job->eng = self;
    job->id = evr_strdup(job_id);
    job->spec = evr_spec_new();
    evr_rec_copy(&evr_spec_type, job->spec, spec);
    for (uint32_t i = 0; i < spec->env.n; i++)
        evr_strmap_set(&job->env, spec->env.k[i], spec->env.v[i]);
    for (uint32_t i = 0; args && i < args->n; i++)
        evr_strmap_set(&job->env, args->k[i], args->v[i]);
    job->secrets = evr_calloc(spec->secrets.n + 1, sizeof(char *));
    for (uint32_t i = 0; i < spec->secrets.n; i++) {
        char *v = s_secret(self, spec->secrets.v[i]);
        if (!v) {
            evr_err_set(err, EVR_ERR_CONFIG, "secret %s: not set in the runner's environment%s%s",
                        spec->secrets.v[i], self->opts.secrets_dir ? " nor in " : "",
                        self->opts.secrets_dir ? self->opts.secrets_dir : "");
            s_job_free(job);
            return NULL;
        }
        evr_strmap_set(&job->env, spec->secrets.v[i], v);
        job->secrets[job->nsecrets++] = v;
    }
    job->n = spec->steps.n;
    job->steps = evr_calloc(job->n, sizeof(s_step_t));
    for (uint32_t i = 0; i < job->n; i++) {
        s_step_t *st = &job->steps[i];
        st->job = job;
        st->index = i;
        st->spec = evr_spec_step(job->spec, i);
        if (st->spec->needs.n)
            job->dag = true;
        for (int si = 0; si < 2; si++) {
            st->out[si].mask = evr_mask_new((const char *const *) job->secrets, job->nsecrets);
            st->out[si].line_start = true;
        }
    }
    job->parallel = spec->parallel ? spec->parallel : self->opts.parallel;
    if (!job->dag)
        job->parallel = 1;
    job->volume = evr_asprintf("evrun-%s", job_id);
    for (char *c = job->volume; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char) (*c - 'A' + 'a');
    job->phase = J_PREPARING;
    job->next = self->jobs;
    self->jobs = job;
    return job;
}

evr_rc_t
evr_engine_submit(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
                  const evr_strmap_t *args, evr_err_t *err)
{
    s_job_t *job = evr_eng_job_new(self, job_id, spec, args, err);
    if (!job)
        return EVR_ERR_CONFIG;
    evr_event_t *ev = evr_eng_emit(job, EVR_EV_JOB_ACCEPTED, NULL);
    ev->data.pipeline = evr_strdup(spec->pipeline);
    ev->data.spec = evr_spec_new();
    evr_rec_copy(&evr_spec_type, ev->data.spec, spec);
    for (uint32_t i = 0; args && i < args->n; i++)
        evr_strmap_set(&ev->data.args, args->k[i], args->v[i]);
    ev->data.runner = evr_strdup(self->opts.runner_id);
    evr_eng_flush(self);
    if (self->failure)
        return evr_err_set(err, self->failure, "%s", self->failmsg);
    evr_podman_volume_create(self->pm, job->volume, evr_eng_on_volume, job);
    return EVR_OK;
}

void
evr_eng_test_pause(const char *point, const s_step_t *st)
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
    for (;;)
        pause();
}

int
evr_engine_turn(evr_engine_t *self, int timeout_ms)
{
    int wait = s_timers(self);
    evr_podman_poll(self->pm, wait < timeout_ms ? wait : timeout_ms);
    s_timers(self);
    for (s_job_t *j = self->jobs; j; j = j->next)
        s_schedule(j);
    /* Group commit: output alone waits up to S_OUTPUT_COMMIT_MS (or a full
       batch) so a chatty step costs one fsync per interval, not per read;
       every other event is committed in the turn it arose in. */
    if (self->urgent || self->npending >= 256
        || (self->npending
            && evr_mono_ns() - self->pending_since >= S_OUTPUT_COMMIT_MS * 1000000ull))
        evr_eng_flush(self);
    if (self->failure)
        return 0;   /* nothing can be recorded any more: stop (main says why) */
    int open = self->sweeping > 0;
    for (s_job_t *j = self->jobs; j; j = j->next) {
        s_cleanup(j);
        if (j->phase != J_DONE)
            open++;
    }
    return open;
}

bool
evr_engine_all_succeeded(const evr_engine_t *self)
{
    if (self->unrecoverable)
        return false;
    for (const s_job_t *j = self->jobs; j; j = j->next)
        if (j->phase < J_CLEANUP || j->final != EVR_JOB_SUCCEEDED)
            return false;
    return true;
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
    const s_job_t *j = s_find_job(self, job_id);
    return j && j->phase >= J_CLEANUP ? j->final : EVR_JOB_NONE;
}

void
evr_engine_summary(const evr_engine_t *self, const char *job_id, FILE *out)
{
    const s_job_t *j = s_find_job(self, job_id);
    if (!j)
        return;
    fprintf(out, "\n%-24s  %-10s  %5s  %10s\n", "STEP", "STATUS", "EXIT", "DURATION");
    for (uint32_t i = 0; i < j->n; i++) {
        const s_step_t *st = &j->steps[i];
        uint64_t ms = st->t_start && st->t_end > st->t_start
                          ? (st->t_end - st->t_start) / 1000000u : 0;
        char exit[16] = "-";
        if (st->exit_known && st->status != EVR_STEP_SKIPPED)
            snprintf(exit, sizeof exit, "%lld", (long long) st->exit_code);
        fprintf(out, "%-24.24s  %-10s  %5s  %6llu.%03llus\n", st->spec->name,
                evr_step_status_name(st->status), exit, (unsigned long long) (ms / 1000),
                (unsigned long long) (ms % 1000));
    }
    uint64_t jms = j->t_start ? (evr_mono_ns() - j->t_start) / 1000000u : 0;
    fprintf(out, "job %s %s in %llu.%03llus\n", j->id, evr_job_status_name(j->final),
            (unsigned long long) (jms / 1000), (unsigned long long) (jms % 1000));
}
