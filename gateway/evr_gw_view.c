/*  evr_gw_view.c: what GET /jobs/{id} and the artifact routes read from a
    job's history: its steps (state, times, exit code), its sources and
    its artifact files, folded from its events.

    Folding reads every event of the job, its output included, from the
    broker; a page of history is up to 8 MiB, and the broker reads and
    sends it whole.  A job page that a browser polls every second would
    have the broker send a long job's whole output every second, and hold
    the gateway's broker connection (shared by every request) while it
    does.  So the folded view of the last S_VIEWS jobs asked is kept:
    the next request asks only for the events after the last one folded
    (for an ended job an empty page, which also says the job still
    exists).  A view with more than S_ITEMS_KEPT steps and files is
    folded for its request and not kept; the least recently used view
    makes room.  One mutex guards the views: requests for views take
    turns, as their broker calls would anyway.  See evr_gw.h.
*/
#include "evr_gw.h"

#include <stdlib.h>
#include <string.h>

#include "evr_event.h"
#include "evr_job.h"
#include "evr_json.h"

#define S_VIEWS 64
#define S_ITEMS_KEPT 4096       /* steps + files of a view that is kept */
#define S_STEPS_MAX 4096
#define S_FILES_MAX 100000

typedef struct {
    char job[EVR_ULID_LEN + 1];     /* "" when the slot is free */
    json_t *steps;                  /* array, in the pipeline's order */
    json_t *byname;                 /* the same objects by step name */
    json_t *source, *ci_source;
    json_t *files;                  /* array of {step, path, size, sha256} */
    json_t *findex;                 /* "step/path" -> the same object */
    uint32_t last;                  /* the last jseq folded */
    uint32_t page;                  /* events in the page being read */
    bool finished;
    uint64_t used;                  /* when last asked (mono ns) */
} s_view_t;

struct evr_gw_views {
    pthread_mutex_t mu;
    s_view_t v[S_VIEWS];
};

static void
s_view_init(s_view_t *v, const char *job)
{
    memset(v, 0, sizeof *v);
    snprintf(v->job, sizeof v->job, "%s", job);
    v->steps = json_array();
    v->byname = json_object();
    v->files = json_array();
    v->findex = json_object();
}

static void
s_view_free(s_view_t *v)
{
    json_decref(v->steps);
    json_decref(v->byname);
    json_decref(v->source);
    json_decref(v->ci_source);
    json_decref(v->files);
    json_decref(v->findex);
    memset(v, 0, sizeof *v);
}

void
evr_gw_views_new(evr_gw_t *gw)
{
    gw->views = evr_calloc(1, sizeof *gw->views);
    pthread_mutex_init(&gw->views->mu, NULL);
}

void
evr_gw_views_destroy(evr_gw_t *gw)
{
    if (!gw->views)
        return;
    for (size_t i = 0; i < S_VIEWS; i++)
        s_view_free(&gw->views->v[i]);
    pthread_mutex_destroy(&gw->views->mu);
    free(gw->views);
    gw->views = NULL;
}

/* ------------------------------------------------------------------ fold */

static json_t *
s_step(s_view_t *v, const char *name)
{
    json_t *st = json_object_get(v->byname, name);
    if (!st && json_array_size(v->steps) < S_STEPS_MAX) {
        st = json_pack("{s:s,s:s}", "name", name, "status", "pending");
        json_array_append_new(v->steps, st);
        json_object_set(v->byname, name, st);
    }
    return st;
}

/*  A step's place in the graph, for drawing it (the web UI): its needs
    (empty in a DAG whose steps have none: they start at once) and a
    `when` other than on_success. */
static void
s_step_shape(json_t *st, const evr_step_t *sp, bool dag)
{
    if (!st)
        return;
    if (sp->needs.n || dag) {
        json_t *needs = json_array();
        for (uint32_t k = 0; k < sp->needs.n; k++)
            json_array_append_new(needs, json_string(sp->needs.v[k]));
        json_object_set_new(st, "needs", needs);
    }
    if (sp->when == EVR_WHEN_ON_FAILURE || sp->when == EVR_WHEN_ALWAYS)
        json_object_set_new(st, "when", json_string(evr_when_names[sp->when]));
}

static void
s_file(s_view_t *v, const evr_evdata_t *x)
{
    if (!x->step || !x->path || !x->sha256)
        return;
    char *key = evr_asprintf("%s/%s", x->step, x->path);
    json_t *f = json_object_get(v->findex, key);
    if (!f && json_array_size(v->files) < S_FILES_MAX) {
        f = json_pack("{s:s,s:s}", "step", x->step, "path", x->path);
        if (f) {
            json_array_append_new(v->files, f);
            json_object_set(v->findex, key, f);
        }
    }
    if (f) {    /* the latest of a step and path wins */
        json_object_set_new(f, "size", evr_json_u64(x->size));
        json_object_set_new(f, "sha256", json_string(x->sha256));
    }
    free(key);
}

/*  Whether the step's attempt that ended had started (its step.queued
    set `attempt` and cleared `started`, its step.started set `started`):
    one that never started has no duration. */
static bool
s_attempt_started(json_t *st, uint32_t attempt)
{
    json_t *a = json_object_get(st, "attempt");
    return json_object_get(st, "started")
        && (!attempt || !a || json_integer_value(a) == (json_int_t) attempt);
}

static void
s_step_event(json_t *st, evr_evtype_t t, const evr_event_t *ev)
{
    const evr_evdata_t *x = &ev->data;
    switch (t) {
    case EVR_EV_STEP_QUEUED:
        /* an attempt begins (a retry's too): what the one before had
           (started, exit code, duration, reason) is not this one's */
        json_object_set_new(st, "status", json_string("queued"));
        if (x->attempt)
            json_object_set_new(st, "attempt", json_integer(x->attempt));
        json_object_del(st, "started");
        json_object_del(st, "finished");
        json_object_del(st, "exit_code");
        json_object_del(st, "duration_ms");
        json_object_del(st, "reason");
        break;
    case EVR_EV_STEP_STARTING:
        json_object_set_new(st, "status", json_string("starting"));
        break;
    case EVR_EV_STEP_STARTED:
        json_object_set_new(st, "status", json_string("running"));
        evr_gw_time_set(st, "started", ev->time);
        if (x->attempt)
            json_object_set_new(st, "attempt", json_integer(x->attempt));
        break;
    case EVR_EV_STEP_FINISHED:
        json_object_set_new(st, "status", json_string(x->status ? x->status : "failed"));
        if (x->exit_code != EVR_STEP_NO_EXIT)   /* absent: the step never started */
            json_object_set_new(st, "exit_code", json_integer(x->exit_code));
        if (s_attempt_started(st, x->attempt))   /* absent too: it had no duration */
            json_object_set_new(st, "duration_ms", evr_json_u64(x->duration));
        else
            json_object_del(st, "duration_ms");
        evr_gw_time_set(st, "finished", ev->time);
        break;
    case EVR_EV_STEP_SKIPPED: json_object_set_new(st, "status", json_string("skipped")); break;
    default: break;
    }
    if (x->reason && (t == EVR_EV_STEP_FINISHED || t == EVR_EV_STEP_SKIPPED))
        json_object_set_new(st, "reason", json_string(x->reason));
}

/*  The source the spec asks for (its kind, url, ref: no sha), until its
    job.source says what was fetched: a fetch that failed has none. */
static void
s_source_asked(json_t **slot, const evr_source_t *src)
{
    const char *kind = evr_source_kind(src);
    if (*slot || !kind)
        return;
    const char *url = evr_source_url(src);
    const char *ref = src->git.present ? (src->git.ref ? src->git.ref : "HEAD") : NULL;
    *slot = json_pack("{s:s,s:s?,s:s?}", "kind", kind, "url", url, "ref", ref);
}

static void
s_fold(s_view_t *v, const evr_event_t *ev)
{
    const evr_evdata_t *x = &ev->data;
    evr_evtype_t t = evr_event_kind(ev);
    if (t == EVR_EV_JOB_FINISHED)
        v->finished = true;
    if (t == EVR_EV_STEP_ARTIFACT)
        s_file(v, x);
    json_t *st = x->step && t != EVR_EV_STEP_OUTPUT ? s_step(v, x->step) : NULL;
    if (t == EVR_EV_JOB_ACCEPTED && x->spec) {
        for (uint32_t i = 0; i < x->spec->steps.n; i++)
            s_step_shape(s_step(v, evr_spec_step(x->spec, i)->name), evr_spec_step(x->spec, i),
                         x->spec->dag);
        s_source_asked(&v->source, &x->spec->source);
        s_source_asked(&v->ci_source, &x->spec->ci_source);
    }
    else if (t == EVR_EV_JOB_SOURCE) {
        json_t *src = json_pack("{s:s?,s:s?,s:s?,s:s?}", "kind", x->kind, "url", x->url,
                                "ref", x->ref, "sha", x->commit);
        json_t **slot = x->source && !strcmp(x->source, "ci_source") ? &v->ci_source
                                                                        : &v->source;
        json_decref(*slot);
        *slot = src;
    }
    if (st)
        s_step_event(st, t, ev);
}

static int
s_item(const evr_msg_t *m, void *arg)
{
    s_view_t *v = arg;
    if (m->type == EVR_MSG_EVENT && m->event && m->event->jseq > v->last) {
        v->last = m->event->jseq;
        v->page++;
        s_fold(v, m->event);
    }
    return 0;
}

/*  Folds v's events after v->last, page by page; false with req's
    answer set when the broker fails or does not know the job. */
static bool
s_catch_up(evr_gw_t *gw, evr_gw_req_t *req, s_view_t *v)
{
    bool more = true;
    for (int pages = 0; more && pages < 10000; pages++) {
        evr_msg_t h = { .type = EVR_MSG_HISTORY, .job = v->job, .from = v->last + 1 };
        evr_msg_t end = { 0 };
        v->page = 0;
        evr_rc_t rc = evr_gw_stream(gw, req, &h, s_item, v, &end);
        __atomic_fetch_add(&gw->history_events, end.count, __ATOMIC_RELAXED);
        more = !rc && end.more && v->page;
        evr_msg_clear(&end);
        if (rc)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------- get */

/*  The kept view of job, or the least recently used slot made anew for
    it (views->mu held). */
static s_view_t *
s_slot(struct evr_gw_views *vs, const char *job)
{
    s_view_t *lru = &vs->v[0];
    for (size_t i = 0; i < S_VIEWS; i++) {
        if (!strcmp(vs->v[i].job, job))
            return &vs->v[i];
        if (vs->v[i].used < lru->used)
            lru = &vs->v[i];
    }
    s_view_free(lru);
    s_view_init(lru, job);
    return lru;
}

bool
evr_gw_view_get(evr_gw_t *gw, evr_gw_req_t *req, const char *job, evr_gw_view_t *out)
{
    memset(out, 0, sizeof *out);
    /* the wait for a connection being made is not made under views->mu
       (every job's view would wait behind it): once, before it, and 503
       at once under it */
    if (!evr_gw_bus_wait(gw, req))
        return false;
    req->bus_nowait = true;
    pthread_mutex_lock(&gw->views->mu);
    s_view_t *v = s_slot(gw->views, job);
    v->used = evr_mono_ns();
    bool ok = s_catch_up(gw, req, v);
    if (ok) {
        out->steps = json_deep_copy(v->steps);
        out->source = v->source ? json_deep_copy(v->source) : NULL;
        out->ci_source = v->ci_source ? json_deep_copy(v->ci_source) : NULL;
        out->files = json_deep_copy(v->files);
        out->events = v->last;
        out->finished = v->finished;
    }
    /* a job the broker does not know (any more), or one too big to keep */
    if (!ok || json_array_size(v->steps) + json_array_size(v->files) > S_ITEMS_KEPT)
        s_view_free(v);
    pthread_mutex_unlock(&gw->views->mu);
    req->bus_nowait = false;
    return ok;
}

void
evr_gw_view_clear(evr_gw_view_t *v)
{
    json_decref(v->steps);
    json_decref(v->source);
    json_decref(v->ci_source);
    json_decref(v->files);
    memset(v, 0, sizeof *v);
}
