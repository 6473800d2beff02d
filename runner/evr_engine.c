/*  evr_engine.c: jobs and steps as state machines driven by podman
    callbacks, events committed before their effects.

    A turn of the loop: wait for podman (callbacks change state and queue
    events and after-commit actions), check timers (output flush, step and
    job timeouts), schedule steps, then commit the queued events in one
    transaction and run the actions that were waiting for them.
*/
#include "evr_engine.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_artifact.h"
#include "evr_http.h"
#include "evr_output.h"

typedef enum { P_PENDING, P_STARTING, P_RUNNING, P_ENDING, P_DONE } s_phase_t;
typedef enum { J_PREPARING, J_RUNNING, J_CLEANUP, J_DONE } s_jphase_t;

typedef struct s_job s_job_t;
typedef struct evr_engine evr_engine_t;

typedef struct {
    uint64_t raw_off;       /* raw bytes of this stream already stored */
    uint8_t *buf;           /* masked bytes not yet stored */
    size_t len, cap;
    uint64_t raw_in_buf;    /* raw bytes buf stands for */
    uint64_t since;         /* mono ns of the oldest byte in buf */
    evr_mask_t *mask;
    bool line_start;        /* printing: next byte starts a line */
} s_stream_t;

typedef struct {
    s_job_t *job;
    uint32_t index;
    const evr_step_t *spec;
    s_phase_t phase;
    evr_step_status_t status;
    uint32_t attempt;
    char *container;
    char *container_id;
    void *attach;
    bool attach_done, exit_known, stop_sent, kill_sent, timed_out, cancelled, lost;
    int64_t exit_code;
    uint64_t t_start, t_end;
    s_stream_t out[2];
    char *reason;
    uint32_t artifacts_left;
} s_step_t;

struct s_job {
    evr_engine_t *eng;
    char *id;
    evr_spec_t *spec;
    evr_strmap_t env;
    char *volume;
    char **secrets;
    size_t nsecrets;
    s_step_t *steps;
    uint32_t n;
    bool dag;
    s_jphase_t phase;
    evr_job_status_t final;
    bool failed, cancelling, killing, timed_out;
    uint64_t t_start, deadline;
    uint32_t running, parallel;
    int calls;              /* cleanup calls in flight */
    uint32_t res_index;     /* resource being fetched */
    char *res_helper;       /* container that receives resources */
    char *res_file;
    FILE *res_fp;
    uint64_t res_bytes;
    s_job_t *next;
};

typedef struct s_action {
    void (*fn)(void *arg, void *data, size_t len);
    void *arg;
    void *data;
    size_t len;
} s_action_t;

struct evr_engine {
    evr_engine_opts_t opts;
    evr_store_t *store;
    evr_podman_t *pm;
    s_job_t *jobs;
    evr_event_t **pending;
    size_t npending, cap;
    s_action_t *actions;
    size_t nactions, acap;
    evr_rc_t failure;
    char failmsg[EVR_ERR_MAX];
};

static const char *const s_stream_names[2] = { "stdout", "stderr" };

/* ------------------------------------------------------- events, actions */

static evr_event_t *
s_emit(s_job_t *job, evr_evtype_t t, const s_step_t *st)
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
    e->pending[e->npending++] = ev;
    return ev;
}

/*  Runs fn(arg, data, len) once the events queued so far are committed.
    data (may be NULL) is copied and freed after. */
static void
s_after(evr_engine_t *e, void (*fn)(void *, void *, size_t), void *arg, const void *data,
        size_t len)
{
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

static void s_fail_all(evr_engine_t *e);

/*  Commits the queued events (in batches), then runs the waiting actions;
    actions may queue more, so until both are empty. */
static void
s_flush(evr_engine_t *e)
{
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
            s_fail_all(e);
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

/* ---------------------------------------------------------------- output */

/*  After an output chunk is stored: print it, the step name before each
    line.  data: 1 byte stream index, then the bytes. */
static void
s_print_lines(void *arg, void *data, size_t len)
{
    s_step_t *st = arg;
    const uint8_t *p = data;
    s_stream_t *s = &st->out[p[0]];
    const uint8_t *b = p + 1;
    size_t n = len - 1;
    for (size_t i = 0; i < n;) {
        if (s->line_start)
            printf("%s | ", st->spec->name);
        const uint8_t *nl = memchr(b + i, '\n', n - i);
        size_t end = nl ? (size_t) (nl - b) + 1 : n;
        fwrite(b + i, 1, end - i, stdout);
        s->line_start = nl != NULL;
        i = end;
    }
    fflush(stdout);
}

/*  Queues a step.output event of what stream si holds (with final, also
    the bytes the masker held back). */
static void
s_emit_output(s_step_t *st, int si, bool final)
{
    s_stream_t *s = &st->out[si];
    if (final && evr_mask_pending(s->mask))
        s->raw_in_buf += evr_mask_feed(s->mask, NULL, 0, true, &s->buf, &s->len, &s->cap);
    if (s->raw_in_buf == 0 && s->len == 0)
        return;
    evr_event_t *ev = s_emit(st->job, EVR_EV_STEP_OUTPUT, st);
    ev->data.stream = evr_strdup(s_stream_names[si]);
    ev->data.offset = s->raw_off;
    ev->data.raw = (uint32_t) s->raw_in_buf;
    ev->data.bytes.data = evr_malloc(s->len ? s->len : 1);
    memcpy(ev->data.bytes.data, s->buf, s->len);
    ev->data.bytes.len = (uint32_t) s->len;
    if (st->job->eng->opts.print && s->len) {
        uint8_t *copy = evr_malloc(s->len + 1);
        copy[0] = (uint8_t) si;
        memcpy(copy + 1, s->buf, s->len);
        s_after(st->job->eng, s_print_lines, st, copy, s->len + 1);
        free(copy);
    }
    s->raw_off += s->raw_in_buf;
    s->raw_in_buf = 0;
    s->len = 0;
}

static void s_mark_started(s_step_t *st);

static void
s_on_output(int stream, const uint8_t *data, size_t len, void *arg)
{
    s_step_t *st = arg;
    s_mark_started(st);   /* output proves it runs: step.started comes first */
    int si = stream == 1 ? 0 : 1;
    s_stream_t *s = &st->out[si];
    while (len > 0) {
        size_t room = EVR_OUTPUT_CHUNK_MAX - (size_t) s->raw_in_buf;
        size_t take = len < room ? len : room;
        if (s->len == 0 && s->raw_in_buf == 0)
            s->since = evr_mono_ns();
        s->raw_in_buf += evr_mask_feed(s->mask, data, take, false, &s->buf, &s->len, &s->cap);
        data += take;
        len -= take;
        if (s->raw_in_buf >= EVR_OUTPUT_CHUNK_MAX || s->len >= EVR_OUTPUT_CHUNK_MAX)
            s_emit_output(st, si, false);
    }
}

/* ----------------------------------------------------------------- steps */

static void s_maybe_end(s_step_t *st);
static void s_step_finish(s_step_t *st);

static void
s_step_log(const s_step_t *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
s_step_log(const s_step_t *st, const char *fmt, ...)
{
    if (!st->job->eng->opts.print)
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("%s > ", st->spec->name);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

static void
s_set_reason(s_step_t *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
s_set_reason(s_step_t *st, const char *fmt, ...)
{
    if (st->reason)
        return;   /* the first reason is the cause */
    char buf[EVR_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    st->reason = evr_strdup(buf);
}

/*  A podman call of the step's start failed: the step ends failed without
    having run. */
static void
s_step_broken(s_step_t *st, const char *what, const evr_podman_result_t *r)
{
    s_set_reason(st, "%s: %s", what, r->msg);
    st->exit_code = -1;
    st->exit_known = true;
    st->attach_done = true;
    if (st->attach) {
        void *h = st->attach;
        st->attach = NULL;
        evr_podman_detach(st->job->eng->pm, h);
    }
    s_maybe_end(st);
}

static void
s_on_exit(const evr_podman_result_t *r, void *arg)
{
    s_step_t *st = arg;
    if (st->exit_known)
        return;
    if (r->rc) {
        st->lost = r->not_found;
        s_set_reason(st, "waiting for the container: %s", r->msg);
        st->exit_code = -1;
    }
    else
        st->exit_code = r->exit_code;
    st->exit_known = true;
    st->t_end = evr_mono_ns();
    s_maybe_end(st);
}

/*  The container runs: on start's answer, or earlier when its first output
    arrives (the stream is attached before start, so output can come first).
    Records step.started once, then waits for the exit. */
static void
s_mark_started(s_step_t *st)
{
    if (st->phase != P_STARTING)
        return;
    st->phase = P_RUNNING;
    st->t_start = evr_mono_ns();
    evr_event_t *ev = s_emit(st->job, EVR_EV_STEP_STARTED, st);
    ev->data.container_id = evr_strdup(st->container_id ? st->container_id : st->container);
    evr_podman_wait(st->job->eng->pm, st->container, s_on_exit, st);
    /* a cancel that came while starting */
    if (st->job->cancelling || st->job->failed || st->job->timed_out) {
        st->cancelled = !st->job->timed_out;
        st->timed_out = st->job->timed_out;
        st->stop_sent = true;
        evr_podman_stop(st->job->eng->pm, st->container, st->job->eng->opts.grace_s, NULL, NULL);
    }
}

static void
s_on_started(const evr_podman_result_t *r, void *arg)
{
    s_step_t *st = arg;
    if (r->rc) {
        s_step_broken(st, "start", r);
        return;
    }
    s_mark_started(st);
}

static void
s_on_attached(const evr_podman_result_t *r, void *arg)
{
    s_step_t *st = arg;
    if (r->rc) {
        s_step_broken(st, "attach", r);
        return;
    }
    evr_podman_start(st->job->eng->pm, st->container, s_on_started, st);
}

static void
s_on_attach_end(const evr_podman_result_t *r, void *arg)
{
    s_step_t *st = arg;
    st->attach = NULL;
    if (st->attach_done)
        return;
    if (r->rc && r->status != 0 && !st->exit_known)
        s_set_reason(st, "output stream: %s", r->msg);
    st->attach_done = true;
    s_maybe_end(st);
}

static void
s_on_created(const evr_podman_result_t *r, void *arg)
{
    s_step_t *st = arg;
    if (r->rc) {
        s_step_broken(st, "create", r);
        return;
    }
    st->container_id = evr_strdup(r->id);
    st->attach = evr_podman_attach(st->job->eng->pm, st->container, s_on_output, s_on_attached,
                                   s_on_attach_end, st);
}

/*  After step.starting is committed: create the container. */
static void
s_do_create(void *arg, void *data, size_t len)
{
    (void) data;
    (void) len;
    s_step_t *st = arg;
    s_job_t *job = st->job;
    evr_strmap_t env = { 0 };
    for (uint32_t i = 0; i < job->env.n; i++)
        evr_strmap_set(&env, job->env.k[i], job->env.v[i]);
    for (uint32_t i = 0; i < st->spec->env.n; i++)
        evr_strmap_set(&env, st->spec->env.k[i], st->spec->env.v[i]);
    evr_podman_spec_t spec = {
        .name = st->container,
        .image = st->spec->image ? st->spec->image : job->spec->image,
        .script = st->spec->run,
        .env = &env,
        .volume = job->volume,
        .network = false,
    };
    evr_podman_create(job->eng->pm, &spec, s_on_created, st);
    evr_strmap_free(&env);
}

static void
s_step_begin(s_step_t *st)
{
    s_job_t *job = st->job;
    st->phase = P_STARTING;
    st->attempt = 1;
    st->container = evr_asprintf("evrun-%s-%s-%u", job->id, st->spec->name, st->attempt);
    for (char *c = st->container; *c; c++)   /* container names: lower case */
        if (*c >= 'A' && *c <= 'Z')
            *c = (char) (*c - 'A' + 'a');
    job->running++;
    s_emit(job, EVR_EV_STEP_QUEUED, st);
    evr_event_t *ev = s_emit(job, EVR_EV_STEP_STARTING, st);
    ev->data.container = evr_strdup(st->container);
    s_step_log(st, "starting (%s)", st->spec->image ? st->spec->image : job->spec->image);
    s_after(job->eng, s_do_create, st, NULL, 0);
}

static void
s_step_skip(s_step_t *st, const char *reason)
{
    st->phase = P_DONE;
    st->status = EVR_STEP_SKIPPED;
    st->reason = evr_strdup(reason);
    evr_event_t *ev = s_emit(st->job, EVR_EV_STEP_SKIPPED, st);
    ev->data.reason = evr_strdup(reason);
    s_step_log(st, "skipped: %s", reason);
}

/* ------------------------------------------------------------- artifacts */

typedef struct {
    s_step_t *st;
    char *path;         /* inside /workspace */
    char *tmpfile;
    FILE *fp;
} s_artifact_t;

static bool
s_artifact_data(const uint8_t *p, size_t n, void *arg)
{
    s_artifact_t *a = arg;
    return fwrite(p, 1, n, a->fp) == n;
}

static void
s_artifact_done(const evr_podman_result_t *r, void *arg)
{
    s_artifact_t *a = arg;
    s_step_t *st = a->st;
    fclose(a->fp);
    if (r->rc)
        s_set_reason(st, "artifact %s: %s", a->path, r->msg);
    else {
        /* the archive holds the path's last component: unpack it where
           the path says, below the step's directory */
        char *sub = evr_strdup(a->path);
        char *slash = strrchr(sub, '/');
        if (slash)
            *slash = '\0';
        char *dest = evr_asprintf("%s/%s/%s%s%s", st->job->eng->opts.artifacts_dir, st->job->id,
                                  st->spec->name, slash ? "/" : "", slash ? sub : "");
        free(sub);
        uint32_t files = 0;
        evr_err_t err;
        if (evr_artifact_unpack(a->tmpfile, dest, &files, &err))
            s_set_reason(st, "artifact %s: %s", a->path, err.msg);
        else
            s_step_log(st, "artifact %s: %u file%s in %s", a->path, files, files == 1 ? "" : "s",
                       dest);
        free(dest);
    }
    unlink(a->tmpfile);
    free(a->tmpfile);
    free(a->path);
    free(a);
    if (--st->artifacts_left == 0)
        s_step_finish(st);
}

/*  Copies each artifact out; s_step_finish when all are done. */
static void
s_collect_artifacts(s_step_t *st)
{
    evr_engine_t *e = st->job->eng;
    st->artifacts_left = st->spec->artifacts.n;
    for (uint32_t i = 0; i < st->spec->artifacts.n; i++) {
        s_artifact_t *a = evr_calloc(1, sizeof *a);
        a->st = st;
        a->path = evr_strdup(st->spec->artifacts.v[i]);
        char *dir = evr_asprintf("%s/%s", e->opts.artifacts_dir, st->job->id);
        evr_err_t err;
        evr_mkdirs(dir, &err);
        a->tmpfile = evr_asprintf("%s/.download-XXXXXX", dir);
        free(dir);
        int fd = mkstemp(a->tmpfile);
        a->fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
        if (!a->fp) {
            evr_podman_result_t r = { .rc = EVR_ERR_IO, .msg = strerror(errno) };
            a->fp = fopen("/dev/null", "wb");
            s_artifact_done(&r, a);
            continue;
        }
        char *path = evr_asprintf("/workspace/%s", a->path);
        evr_podman_archive_get(e->pm, st->container, path, s_artifact_data, s_artifact_done, a);
        free(path);
    }
}

/* ------------------------------------------------------------ step's end */

static void
s_removed(const evr_podman_result_t *r, void *arg)
{
    s_job_t *job = arg;
    if (r->rc && !r->not_found && job->eng->opts.print)
        printf("evrun-runner: removing a container of job %s: %s\n", job->id, r->msg);
    job->calls--;
}

/*  After step.finished is committed: remove the container. */
static void
s_do_remove(void *arg, void *data, size_t len)
{
    (void) data;
    (void) len;
    s_step_t *st = arg;
    if (st->job->eng->opts.keep)
        return;
    st->job->calls++;
    evr_podman_remove(st->job->eng->pm, st->container, s_removed, st->job);
}

static void
s_step_finish(s_step_t *st)
{
    s_job_t *job = st->job;
    if (st->timed_out)
        st->status = EVR_STEP_TIMED_OUT;
    else if (st->cancelled)
        st->status = EVR_STEP_CANCELLED;
    else if (st->lost)
        st->status = EVR_STEP_LOST;
    else if (st->exit_code == 0 && !st->reason)
        st->status = EVR_STEP_SUCCEEDED;
    else
        st->status = EVR_STEP_FAILED;
    st->phase = P_DONE;
    job->running--;
    uint64_t ms = st->t_start && st->t_end > st->t_start ? (st->t_end - st->t_start) / 1000000u : 0;
    evr_event_t *ev = s_emit(job, EVR_EV_STEP_FINISHED, st);
    ev->data.exit_code = st->exit_code;
    ev->data.duration = ms;
    ev->data.status = evr_strdup(evr_step_status_name(st->status));
    if (st->reason)
        ev->data.reason = evr_strdup(st->reason);
    if (st->status != EVR_STEP_SUCCEEDED && !st->cancelled)
        job->failed = true;
    s_step_log(st, "%s (exit %lld, %llu.%03llus)%s%s", evr_step_status_name(st->status),
               (long long) st->exit_code, (unsigned long long) (ms / 1000),
               (unsigned long long) (ms % 1000), st->reason ? ": " : "",
               st->reason ? st->reason : "");
    s_after(job->eng, s_do_remove, st, NULL, 0);
}

/*  Output ended and the exit code is known: store the rest of the output,
    copy artifacts out, record the result. */
static void
s_maybe_end(s_step_t *st)
{
    if (!st->attach_done || !st->exit_known || st->phase == P_ENDING || st->phase == P_DONE)
        return;
    if (!st->t_end)
        st->t_end = evr_mono_ns();
    st->phase = P_ENDING;
    for (int si = 0; si < 2; si++)
        s_emit_output(st, si, true);
    if (st->spec->artifacts.n && st->exit_code == 0 && !st->reason && !st->timed_out
        && !st->cancelled && st->container_id)
        s_collect_artifacts(st);
    else
        s_step_finish(st);
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

static void
s_stop_step(s_step_t *st, bool now)
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
            s_stop_step(st, now);
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
        evr_event_t *ev = s_emit(job, EVR_EV_JOB_CANCEL_REQUESTED, NULL);
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
static void
s_fail_all(evr_engine_t *e)
{
    for (s_job_t *j = e->jobs; j; j = j->next) {
        j->cancelling = true;
        for (uint32_t i = 0; i < j->n; i++)
            s_stop_step(&j->steps[i], true);
    }
}

static void
s_volume_gone(const evr_podman_result_t *r, void *arg)
{
    s_job_t *job = arg;
    if (r->rc && !r->not_found && job->eng->opts.print)
        printf("evrun-runner: removing volume %s: %s\n", job->volume, r->msg);
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
    evr_event_t *ev = s_emit(job, EVR_EV_JOB_FINISHED, NULL);
    ev->data.status = evr_strdup(evr_job_status_name(status));
    if (job->eng->opts.print)
        printf("evrun-runner: job %s %s\n", job->id, evr_job_status_name(status));
}

/*  Preparation failed: nothing runs, every step is skipped, the job fails. */
static void
s_prep_failed(s_job_t *job, const char *reason)
{
    if (job->eng->opts.print)
        printf("evrun-runner: %s\n", reason);
    job->failed = true;
    job->phase = J_RUNNING;
    s_emit(job, EVR_EV_JOB_STARTED, NULL)->data.runner = evr_strdup(job->eng->opts.runner_id);
    for (uint32_t i = 0; i < job->n; i++)
        s_step_skip(&job->steps[i], reason);
}

static void
s_job_go(s_job_t *job)
{
    job->phase = J_RUNNING;
    job->t_start = evr_mono_ns();
    if (job->spec->timeout)
        job->deadline = job->t_start + job->spec->timeout * 1000000ull;
    s_emit(job, EVR_EV_JOB_STARTED, NULL)->data.runner = evr_strdup(job->eng->opts.runner_id);
}

/* ------------------------------------------------------------- resources */

#define S_RESOURCE_MAX (1ull << 30)

static void s_res_next(s_job_t *job);

static void
s_res_helper_gone(const evr_podman_result_t *r, void *arg)
{
    (void) r;
    s_job_t *job = arg;
    job->calls--;
}

/*  Ends the resource phase: the helper container goes, then the steps run
    (or, with reason, nothing runs). */
static void
s_res_end(s_job_t *job, const char *reason)
{
    if (job->res_fp) {
        fclose(job->res_fp);
        job->res_fp = NULL;
    }
    if (job->res_file) {
        unlink(job->res_file);
        free(job->res_file);
        job->res_file = NULL;
    }
    if (job->res_helper) {
        job->calls++;
        evr_podman_remove(job->eng->pm, job->res_helper, s_res_helper_gone, job);
        free(job->res_helper);
        job->res_helper = NULL;
    }
    if (reason)
        s_prep_failed(job, reason);
    else
        s_job_go(job);
}

static void
s_res_uploaded(const evr_podman_result_t *r, void *arg)
{
    s_job_t *job = arg;
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    if (r->rc) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "resource %s: copying into /workspace: %s", res->name,
                 r->msg);
        s_res_end(job, reason);
        return;
    }
    if (job->eng->opts.print)
        printf("evrun-runner: resource %s: %llu bytes from %s into /workspace/%s\n", res->name,
               (unsigned long long) job->res_bytes, res->url, res->path);
    job->res_index++;
    s_res_next(job);
}

static bool
s_res_data(evr_http_req_t *req, const uint8_t *data, size_t len, void *arg)
{
    s_job_t *job = arg;
    if (evr_http_status(req) >= 300)
        return true;   /* not content: the status says what went wrong */
    job->res_bytes += len;
    if (job->res_bytes > S_RESOURCE_MAX)
        return false;
    return fwrite(data, 1, len, job->res_fp) == len;
}

static void
s_res_fetched(evr_http_req_t *req, void *arg)
{
    s_job_t *job = arg;
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    char reason[2 * EVR_ERR_MAX] = "";
    const char *msg;
    long status = evr_http_status(req);
    fclose(job->res_fp);
    job->res_fp = NULL;
    if (job->res_bytes > S_RESOURCE_MAX)
        snprintf(reason, sizeof reason, "resource %s: %s is larger than %llu bytes", res->name,
                 res->url, (unsigned long long) S_RESOURCE_MAX);
    else if (evr_http_error(req, &msg))
        snprintf(reason, sizeof reason, "resource %s: %s", res->name, msg);
    else if (status != 200)
        snprintf(reason, sizeof reason, "resource %s: %s answered HTTP %ld", res->name, res->url,
                 status);
    if (*reason) {
        s_res_end(job, reason);
        return;
    }
    uint8_t *tar;
    size_t len;
    evr_err_t err;
    if (evr_resource_tar(job->res_file, res->path, &tar, &len, &err)) {
        snprintf(reason, sizeof reason, "resource %s: %s", res->name, err.msg);
        s_res_end(job, reason);
        return;
    }
    unlink(job->res_file);
    evr_podman_archive_put(job->eng->pm, job->res_helper, "/workspace", tar, len, s_res_uploaded,
                           job);
    free(tar);
}

static void
s_res_next(s_job_t *job)
{
    if (job->res_index >= job->spec->resources.n) {
        s_res_end(job, NULL);
        return;
    }
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    char *dir = evr_asprintf("%s/%s", job->eng->opts.artifacts_dir, job->id);
    evr_err_t err;
    evr_mkdirs(dir, &err);
    free(job->res_file);
    job->res_file = evr_asprintf("%s/.resource-XXXXXX", dir);
    free(dir);
    int fd = mkstemp(job->res_file);
    job->res_fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!job->res_fp) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "resource %s: temporary file in %s: %s", res->name,
                 job->res_file, strerror(errno));
        free(job->res_file);
        job->res_file = NULL;
        s_res_end(job, reason);
        return;
    }
    job->res_bytes = 0;
    evr_http_opts_t o = { .method = "GET", .path = res->url, .timeout_ms = 300000,
                          .on_data = s_res_data, .on_done = s_res_fetched, .arg = job };
    evr_http_start(evr_podman_http(job->eng->pm), &o);
}

static void
s_res_helper_made(const evr_podman_result_t *r, void *arg)
{
    s_job_t *job = arg;
    if (r->rc) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "resources: a container to copy them in: %s", r->msg);
        free(job->res_helper);
        job->res_helper = NULL;
        s_res_end(job, reason);
        return;
    }
    s_res_next(job);
}

static void
s_on_volume(const evr_podman_result_t *r, void *arg)
{
    s_job_t *job = arg;
    if (r->rc) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "workspace volume %s: %s", job->volume, r->msg);
        s_prep_failed(job, reason);
        return;
    }
    if (job->spec->resources.n == 0) {
        s_job_go(job);
        return;
    }
    /* Resources go into the volume through a container that mounts it and
       never runs. */
    job->res_helper = evr_asprintf("%s-resources", job->volume);
    const evr_step_t *first = evr_spec_step(job->spec, 0);
    evr_podman_spec_t spec = { .name = job->res_helper,
                               .image = job->spec->image ? job->spec->image : first->image,
                               .script = "true", .volume = job->volume };
    evr_podman_create(job->eng->pm, &spec, s_res_helper_made, job);
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
        if (st->phase == P_PENDING) {
            char why[256];
            int r = stopping ? -1 : s_ready(job, i, why, sizeof why);
            if (stopping)
                snprintf(why, sizeof why, "%s", job->timed_out ? "the job timed out"
                                                : job->cancelling ? "the job was cancelled"
                                                                  : "an earlier step failed");
            if (r < 0)
                s_step_skip(st, why);
            else if (r > 0 && job->running < job->parallel)
                s_step_begin(st);
        }
        if (st->phase != P_DONE)
            all_done = false;
    }
    if (all_done)
        s_job_finish(job);
}

static void
s_cleanup(s_job_t *job)
{
    if (job->phase != J_CLEANUP || job->calls > 0 || job->eng->npending)
        return;
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
                    s_emit_output(st, si, false);
                else if (s->since + flush < next)
                    next = s->since + flush;
            }
            if (st->spec->timeout && !st->timed_out) {
                uint64_t dl = st->t_start + st->spec->timeout * 1000000ull;
                if (now >= dl) {
                    st->timed_out = true;
                    s_set_reason(st, "timed out after %llu ms",
                                 (unsigned long long) st->spec->timeout);
                    s_stop_step(st, false);
                }
                else if (dl < next)
                    next = dl;
            }
        }
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

evr_rc_t
evr_engine_submit(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
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
            evr_rc_t rc = evr_err_set(err, EVR_ERR_CONFIG,
                                      "secret %s: not set in the runner's environment%s%s",
                                      spec->secrets.v[i],
                                      self->opts.secrets_dir ? " nor in " : "",
                                      self->opts.secrets_dir ? self->opts.secrets_dir : "");
            s_job_free(job);
            return rc;
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

    evr_event_t *ev = s_emit(job, EVR_EV_JOB_ACCEPTED, NULL);
    ev->data.pipeline = evr_strdup(spec->pipeline);
    ev->data.spec = evr_spec_new();
    evr_rec_copy(&evr_spec_type, ev->data.spec, spec);
    for (uint32_t i = 0; args && i < args->n; i++)
        evr_strmap_set(&ev->data.args, args->k[i], args->v[i]);
    ev->data.runner = evr_strdup(self->opts.runner_id);
    s_flush(self);
    if (self->failure)
        return evr_err_set(err, self->failure, "%s", self->failmsg);
    evr_podman_volume_create(self->pm, job->volume, s_on_volume, job);
    return EVR_OK;
}

int
evr_engine_turn(evr_engine_t *self, int timeout_ms)
{
    int wait = s_timers(self);
    evr_podman_poll(self->pm, wait < timeout_ms ? wait : timeout_ms);
    s_timers(self);
    for (s_job_t *j = self->jobs; j; j = j->next)
        s_schedule(j);
    s_flush(self);
    int open = 0;
    for (s_job_t *j = self->jobs; j; j = j->next) {
        s_cleanup(j);
        if (j->phase != J_DONE)
            open++;
    }
    return open;
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
    uint64_t total = 0;
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
        (void) total;
    }
    uint64_t jms = j->t_start ? (evr_mono_ns() - j->t_start) / 1000000u : 0;
    fprintf(out, "job %s %s in %llu.%03llus\n", j->id, evr_job_status_name(j->final),
            (unsigned long long) (jms / 1000), (unsigned long long) (jms % 1000));
}
