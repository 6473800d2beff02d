/*  evr_gw_metrics.c: GET /metrics, the Prometheus text format (0.0.4).

    Two sources, so that a scrape never floods the broker:
    - the event stream: a thread of its own subscribes to every event
      (`ev.`) and counts as they pass: events by type, jobs finished by
      pipeline and status, step durations (step.finished's duration) and
      job durations (job.started to job.finished) as histograms by
      pipeline.  A step whose attempt never started (a step.finished
      with no step.started for it) has no duration: it is counted apart,
      not as a 0 s sample.  A job's pipeline comes from its job.accepted;
      for a job accepted before the gateway started it is asked once
      (`status`), and so its steps' starts before are not known: one of
      its steps that ended with no exit code after 0 ms counts as never
      started.
      These are counters since the gateway started, as Prometheus wants.
    - the broker's state: `runners`, `pipelines` and `jobs` (status
      queued, paused, running: one page of at most 1000 each) asked at
      most once per S_CACHE_NS, all of them within S_ASK_NS (else
      evrun_broker_up 0: a hung broker costs a scrape that much, not
      timeout_ms); the scrapes in between get the same text, and so do
      the scrapes that come while one asks (they do not wait for it,
      but the first ever: there is no text before).  A pipeline file
      that another file's registered name is refused for is listed by
      the broker too: only the registered entry counts.
    The broker's round-trip time is each request/answer call the gateway
    makes (evr_gw_call), as a histogram.

    The SUB socket holds at most S_HWM publications: events published
    while the thread lags further behind are dropped, not counted.
    Label values are bounded: at most S_PIPES_MAX pipelines have their
    own (the rest count as "_other", one more), the fixed job statuses,
    runner states and event types.  See evr_gw.h. */
#include "evr_gw.h"

#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "evr_bus.h"
#include "evr_event.h"
#include "evr_job.h"
#include "evr_log.h"

#define S_PIPES_MAX 256                   /* pipelines with a label of their own (README) */
#define S_OTHER S_PIPES_MAX               /* the slot of the rest: "_other" */
#define S_JOBS 4096                       /* jobs whose pipeline and start are kept */
#define S_CACHE_NS 5000000000ull          /* the broker's state is asked this seldom... */
#define S_ASK_NS 2000000000ull            /* ...and answers within this (README "Metrics") */
#define S_NSTATUS 5
#define S_HWM 1000       /* publications held for the thread (bounded memory) */

static const double s_dur_b[] = { 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600 };
static const double s_rtt_b[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                  0.5, 1, 2.5, 5, 10 };
static const char *const s_status[S_NSTATUS] = { "succeeded", "failed", "cancelled",
                                                 "timed_out", "lost" };

typedef struct {
    uint64_t b[16];     /* observations per bucket (not cumulative: summed when written) */
    uint64_t count;
    double sum;
} s_hist_t;

typedef struct {
    char name[EVR_SPEC_MAX_NAME + 1];
    uint64_t finished[S_NSTATUS];
    uint64_t unstarted;     /* steps that ended without starting (no duration) */
    s_hist_t step, job;
} s_pipe_t;

typedef struct {
    char job[EVR_ULID_LEN + 1];
    int pipe;
    uint64_t started;   /* ns, 0: not seen */
    bool whole;         /* seen from its job.accepted: every step.started seen */
    evr_strmap_t steps; /* step -> the attempt whose step.started came */
} s_jobrec_t;

struct evr_gw_metrics {
    pthread_mutex_t mu;                 /* guards what follows up to cache_mu */
    s_pipe_t pipes[S_PIPES_MAX + 1];    /* and [S_OTHER] once one more came */
    int npipes;
    s_jobrec_t jobs[S_JOBS];
    size_t jnext;
    uint64_t events[EVR_EV_COUNT_];
    s_hist_t rtt;
    pthread_mutex_t cache_mu;           /* guards what follows up to thread */
    pthread_cond_t cache_cv;            /* asking ended */
    char *cache;
    uint64_t cache_at;
    bool asking;                        /* a scrape asks the broker (one at a time) */
    pthread_t thread;
    bool started;
};

/* ---------------------------------------------------------------- format */

void
evr_gw_prom_label(FILE *out, const char *v)
{
    for (; v && *v; v++)
        if (*v == '\\' || *v == '"')
            fprintf(out, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
}

static void
s_head(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
s_observe(s_hist_t *h, const double *bounds, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    h->b[i]++;      /* i == nb: only +Inf */
    h->count++;
    h->sum += v;
}

/*  One histogram's lines; label "pipeline" when pipe is not NULL. */
static void
s_hist_write(FILE *out, const char *name, const s_hist_t *h, const double *bounds, size_t nb,
             const char *pipe)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= nb; i++) {
        cum += h->b[i];
        fprintf(out, "%s_bucket{", name);
        if (pipe) {
            fputs("pipeline=\"", out);
            evr_gw_prom_label(out, pipe);
            fputs("\",", out);
        }
        if (i < nb)
            fprintf(out, "le=\"%g\"} %llu\n", bounds[i], (unsigned long long) cum);
        else
            fprintf(out, "le=\"+Inf\"} %llu\n", (unsigned long long) cum);
    }
    const char *open = pipe ? "{pipeline=\"" : "";
    fprintf(out, "%s_sum%s", name, open);
    if (pipe) {
        evr_gw_prom_label(out, pipe);
        fputs("\"}", out);
    }
    fprintf(out, " %.6f\n%s_count%s", h->sum, name, open);
    if (pipe) {
        evr_gw_prom_label(out, pipe);
        fputs("\"}", out);
    }
    fprintf(out, " %llu\n", (unsigned long long) h->count);
}

/* ------------------------------------------------------------ the events */

/*  The slot of pipeline name among the *n used of S_PIPES_MAX + 1 slots
    of stride bytes at base, each starting with its name (a char array of
    EVR_SPEC_MAX_NAME + 1): S_PIPES_MAX names get one of their own, the
    rest share S_OTHER ("_other"). */
static int
s_slot(void *base, size_t stride, int *n, const char *name)
{
    char *b = base;
    for (int i = 0; i < *n && i < S_PIPES_MAX; i++)
        if (!strcmp(b + (size_t) i * stride, name))
            return i;
    if (*n < S_PIPES_MAX) {
        snprintf(b + (size_t) *n * stride, EVR_SPEC_MAX_NAME + 1, "%s", name);
        return (*n)++;
    }
    snprintf(b + (size_t) S_OTHER * stride, EVR_SPEC_MAX_NAME + 1, "_other");
    *n = S_PIPES_MAX + 1;
    return S_OTHER;
}

_Static_assert(offsetof(s_pipe_t, name) == 0, "s_slot: the name first");

/*  The index of pipeline name among the events' (m->mu held). */
static int
s_pipe(evr_gw_metrics_t *m, const char *name)
{
    return s_slot(m->pipes, sizeof m->pipes[0], &m->npipes, name);
}

static s_jobrec_t *
s_job_find(evr_gw_metrics_t *m, const char *job)
{
    for (size_t i = 0; i < S_JOBS; i++)
        if (!strcmp(m->jobs[i].job, job))
            return &m->jobs[i];
    return NULL;
}

static s_jobrec_t *
s_job_add(evr_gw_metrics_t *m, const char *job, const char *pipeline, uint64_t started,
          bool whole)
{
    s_jobrec_t *r = &m->jobs[m->jnext++ % S_JOBS];
    snprintf(r->job, sizeof r->job, "%s", job);
    r->pipe = s_pipe(m, pipeline);
    r->started = started;
    r->whole = whole;
    evr_strmap_free(&r->steps);     /* an earlier job's, whose slot this was */
    return r;
}

/*  Whether the attempt of the step that step.finished ev ended had
    started: its step.started was seen (an attempt absent, from an older
    runner: any), or, for a job whose start the gateway did not see
    whole, the step has an exit code or a duration. */
static bool
s_step_started(const s_jobrec_t *r, const evr_event_t *ev)
{
    const evr_evdata_t *x = &ev->data;
    const char *a = x->step ? evr_strmap_get(&r->steps, x->step) : NULL;
    if (a)
        return !x->attempt || strtoul(a, NULL, 10) == x->attempt;
    return !r->whole && (x->exit_code != EVR_STEP_NO_EXIT || x->duration);
}

/*  The record of job (m->mu held); a job not seen since the gateway
    started is asked of the broker (m->mu let go meanwhile). */
static s_jobrec_t *
s_job(evr_gw_t *gw, evr_gw_metrics_t *m, const char *job)
{
    s_jobrec_t *r = s_job_find(m, job);
    if (r)
        return r;
    pthread_mutex_unlock(&m->mu);
    evr_msg_t q = { .type = EVR_MSG_STATUS, .job = (char *) job }, rep = { 0 };
    evr_gw_req_t quiet = { 0 };
    bool ok = !evr_gw_call(gw, &quiet, &q, &rep) && rep.type == EVR_MSG_JOB && rep.pipeline;
    json_decref(quiet.json);
    pthread_mutex_lock(&m->mu);
    r = s_job_add(m, job, ok ? rep.pipeline : "", ok ? rep.started : 0, false);
    evr_msg_clear(&rep);
    return r;
}

static void
s_event(evr_gw_t *gw, evr_gw_metrics_t *m, const evr_event_t *ev)
{
    evr_evtype_t t = evr_event_kind(ev);
    pthread_mutex_lock(&m->mu);
    if ((int) t >= 0 && t < EVR_EV_COUNT_)
        m->events[t]++;
    s_jobrec_t *r;
    if (!ev->job)
        ;
    else if (t == EVR_EV_JOB_ACCEPTED && ev->data.pipeline)
        s_job_add(m, ev->job, ev->data.pipeline, 0, true);
    else if (t == EVR_EV_JOB_STARTED && (r = s_job(gw, m, ev->job)))
        r->started = ev->time;
    else if (t == EVR_EV_STEP_STARTED && ev->data.step && (r = s_job(gw, m, ev->job))) {
        char a[16];
        snprintf(a, sizeof a, "%u", ev->data.attempt);
        evr_strmap_set(&r->steps, ev->data.step, a);
    }
    else if (t == EVR_EV_STEP_FINISHED && (r = s_job(gw, m, ev->job))) {
        if (s_step_started(r, ev))
            s_observe(&m->pipes[r->pipe].step, s_dur_b, EVR_ARRAY_LEN(s_dur_b),
                      (double) ev->data.duration / 1000.0);
        else    /* its 0 is no duration: not a sample */
            m->pipes[r->pipe].unstarted++;
    }
    else if (t == EVR_EV_JOB_FINISHED && (r = s_job(gw, m, ev->job))) {
        for (int i = 0; i < S_NSTATUS; i++)
            if (ev->data.status && !strcmp(ev->data.status, s_status[i]))
                m->pipes[r->pipe].finished[i]++;
        if (r->started && ev->time >= r->started)
            s_observe(&m->pipes[r->pipe].job, s_dur_b, EVR_ARRAY_LEN(s_dur_b),
                      (double) (ev->time - r->started) / 1e9);
        r->job[0] = '\0';     /* ended: its slot is free to find again */
        evr_strmap_free(&r->steps);
    }
    pthread_mutex_unlock(&m->mu);
}

/*  The gateway's background thread: it counts the event stream and, at
    start and then hourly, prunes the Idempotency-Key records older than
    a day (evr_gw_idem_prune). */
static void *
s_thread(void *arg)
{
    evr_gw_t *gw = arg;
    zsock_t *sub = NULL;
    const evr_config_t *sub_cfg = NULL;     /* the endpoints sub was made with */
    uint64_t prune_at = 0;
    while (!gw->stopping) {
        evr_err_t err;
        if (evr_mono_ns() >= prune_at) {
            size_t n = evr_gw_idem_prune(evr_config_get(gw->cfg, "state_dir"),
                                         EVR_GW_IDEM_AGE_S, evr_now_ns() / 1000000000ull);
            if (n)
                evr_log_info("gateway", "%zu Idempotency-Key records older than a day removed",
                             n);
            prune_at = evr_mono_ns() + 3600ull * 1000000000ull;
        }
        const evr_config_t *cfg = evr_gw_bus_cfg(gw);
        if (sub && cfg != sub_cfg)      /* the broker answers at another endpoint now */
            zsock_destroy(&sub);
        if (!sub && !(sub = evr_client_subscribe_hwm(cfg, "ev.", S_HWM, &err))) {
            /* no broker yet: tried again in a second, or at once when the
               watch finds one (a job run right after must be counted) */
            for (int t = 0; t < 20 && !gw->stopping && evr_gw_bus_cfg(gw) == cfg; t++)
                zclock_sleep(50);
            continue;
        }
        sub_cfg = cfg;
        zmq_pollitem_t it = { zsock_resolve(sub), 0, ZMQ_POLLIN, 0 };
        zmq_poll(&it, 1, 200);
        for (int i = 0; i < 1024 && !gw->stopping && evr_bus_readable(sub); i++) {
            char *topic = NULL;
            evr_msg_t msg = { 0 };
            if (evr_bus_recv_pub(sub, &topic, &msg, &err) == EVR_OK && msg.event)
                s_event(gw, gw->metrics, msg.event);
            evr_msg_clear(&msg);
            free(topic);
        }
    }
    zsock_destroy(&sub);
    return NULL;
}

void
evr_gw_metrics_start(evr_gw_t *gw)
{
    evr_gw_metrics_t *m = evr_calloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->cache_mu, NULL);
    pthread_cond_init(&m->cache_cv, NULL);
    gw->metrics = m;
    m->started = !pthread_create(&m->thread, NULL, s_thread, gw);
}

void
evr_gw_metrics_stop(evr_gw_t *gw)
{
    evr_gw_metrics_t *m = gw->metrics;
    if (!m)
        return;
    gw->stopping = 1;
    if (m->started)
        pthread_join(m->thread, NULL);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->cache_mu);
    pthread_cond_destroy(&m->cache_cv);
    for (size_t i = 0; i < S_JOBS; i++)
        evr_strmap_free(&m->jobs[i].steps);
    free(m->cache);
    free(m);
    gw->metrics = NULL;
}

void
evr_gw_metrics_rtt(evr_gw_t *gw, uint64_t ns)
{
    evr_gw_metrics_t *m = gw->metrics;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    s_observe(&m->rtt, s_rtt_b, EVR_ARRAY_LEN(s_rtt_b), (double) ns / 1e9);
    pthread_mutex_unlock(&m->mu);
}

/* ------------------------------------------------------ the broker's state */

typedef struct {
    char name[EVR_SPEC_MAX_NAME + 1];   /* the pipeline's */
    uint32_t n[3];      /* queued, paused, running */
} s_active_t;

_Static_assert(offsetof(s_active_t, name) == 0, "s_slot: the name first");

/*  The runner states of `runners` (schema/PROTOCOL.md, message runner). */
#define S_RSTATES 5
static const char *const s_rstates[S_RSTATES] = { "idle", "busy", "draining", "lost",
                                                   "stopped" };

typedef struct {
    s_active_t *v;      /* S_PIPES_MAX + 1 slots (s_slot) */
    int n;
    int status;         /* index into n[] of the current query */
    uint32_t runners[S_RSTATES];
    FILE *pipes;        /* the lines of the pipelines */
    FILE *pipes_run;
    evr_strlist_t named;    /* the pipeline names written */
} s_state_t;

static int
s_job_item(const evr_msg_t *m, void *arg)
{
    s_state_t *s = arg;
    if (m->type != EVR_MSG_JOB || !m->pipeline)
        return 0;
    s->v[s_slot(s->v, sizeof s->v[0], &s->n, m->pipeline)].n[s->status]++;
    return 0;
}

static int
s_runner_item(const evr_msg_t *m, void *arg)
{
    s_state_t *s = arg;
    for (int i = 0; i < S_RSTATES && m->type == EVR_MSG_RUNNER; i++)
        if (m->state && !strcmp(m->state, s_rstates[i]))
            s->runners[i]++;
    return 0;
}

static int
s_pipeline_item(const evr_msg_t *m, void *arg)
{
    s_state_t *s = arg;
    if (m->type != EVR_MSG_PIPELINE || !m->pipeline || !m->pipeline[0])
        return 0;
    /* a second file naming a registered pipeline is listed too, refused
       (load_error): the first of a name is the registered one (README
       "Registered pipelines and schedules"), and its series is written once */
    for (uint32_t i = 0; i < s->named.n; i++)
        if (!strcmp(s->named.v[i], m->pipeline) && m->load_error)
            return 0;
    evr_strlist_push(&s->named, m->pipeline);
    fputs("evrun_pipeline_waiting{pipeline=\"", s->pipes);
    evr_gw_prom_label(s->pipes, m->pipeline);
    fprintf(s->pipes, "\"} %u\n", m->waiting);
    fputs("evrun_pipeline_running{pipeline=\"", s->pipes_run);
    evr_gw_prom_label(s->pipes_run, m->pipeline);
    fprintf(s->pipes_run, "\"} %u\n", m->running);
    return 0;
}

/*  The broker's state as metric text (caller frees). */
static char *
s_state_text(evr_gw_t *gw)
{
    static const char *const st[3] = { "queued", "paused", "running" };
    s_state_t s = { .v = evr_calloc(S_PIPES_MAX + 1, sizeof *s.v) };
    /* every question by one deadline: a hung broker is down for a scrape */
    uint64_t until = evr_mono_ns() + S_ASK_NS;
    char *pb = NULL, *rb = NULL, *text = NULL;
    size_t pn = 0, rn = 0, tn = 0;
    s.pipes = open_memstream(&pb, &pn);
    s.pipes_run = open_memstream(&rb, &rn);
    bool up = true;
    for (int i = 0; i < 3 && up; i++) {
        evr_msg_t q = { .type = EVR_MSG_JOBS, .status = (char *) st[i], .limit = 1000 };
        evr_msg_t end = { 0 };
        evr_gw_req_t quiet = { .until_ns = until };
        s.status = i;
        up = !evr_gw_stream(gw, &quiet, &q, s_job_item, &s, &end);
        evr_msg_clear(&end);
        json_decref(quiet.json);
    }
    evr_msg_t q1 = { .type = EVR_MSG_RUNNERS }, q2 = { .type = EVR_MSG_PIPELINES }, end = { 0 };
    evr_gw_req_t quiet = { .until_ns = until };
    up = up && !evr_gw_stream(gw, &quiet, &q1, s_runner_item, &s, &end);
    evr_msg_clear(&end);
    up = up && !evr_gw_stream(gw, &quiet, &q2, s_pipeline_item, &s, &end);
    evr_msg_clear(&end);
    json_decref(quiet.json);
    fclose(s.pipes);
    fclose(s.pipes_run);
    FILE *out = open_memstream(&text, &tn);
    s_head(out, "evrun_broker_up", "gauge", "1 when the broker answered the last queries "
           "of its state (asked at most every 5 s) within 2 s, else 0");
    fprintf(out, "evrun_broker_up %d\n", up);
    if (up) {
        s_head(out, "evrun_jobs", "gauge", "Jobs queued, paused or running, by pipeline and "
               "status (at most 1000 per status are counted)");
        for (int i = 0; i < s.n; i++)
            for (int k = 0; k < 3; k++) {
                fputs("evrun_jobs{pipeline=\"", out);
                evr_gw_prom_label(out, s.v[i].name);
                fprintf(out, "\",status=\"%s\"} %u\n", st[k], s.v[i].n[k]);
            }
        s_head(out, "evrun_runners", "gauge", "Runners the broker knows, by state");
        for (int i = 0; i < S_RSTATES; i++)
            fprintf(out, "evrun_runners{state=\"%s\"} %u\n", s_rstates[i], s.runners[i]);
        s_head(out, "evrun_pipeline_waiting", "gauge",
               "Jobs of a registered pipeline waiting in the queue (queued or paused)");
        fputs(pb, out);
        s_head(out, "evrun_pipeline_running", "gauge",
               "Jobs of a registered pipeline handed to a runner and not finished");
        fputs(rb, out);
    }
    fclose(out);
    free(pb);
    free(rb);
    free(s.v);
    evr_strlist_free(&s.named);
    return text;
}

/* ---------------------------------------------------------------- scrape */

/*  The counters of the event stream and the round-trip histogram. */
static void
s_counters(evr_gw_metrics_t *m, FILE *out)
{
    pthread_mutex_lock(&m->mu);
    s_head(out, "evrun_events_total", "counter", "Events the broker appended and published, "
           "by type, seen since the gateway started");
    for (int t = EVR_EV_NONE + 1; t < EVR_EV_COUNT_; t++)    /* NONE has no name */
        fprintf(out, "evrun_events_total{type=\"%s\"} %llu\n", evr_evtype_name((evr_evtype_t) t),
                (unsigned long long) m->events[t]);
    s_head(out, "evrun_jobs_finished_total", "counter", "Jobs that ended, by pipeline and "
           "status, since the gateway started");
    for (int i = 0; i < m->npipes; i++)
        for (int k = 0; k < S_NSTATUS; k++) {
            fputs("evrun_jobs_finished_total{pipeline=\"", out);
            evr_gw_prom_label(out, m->pipes[i].name);
            fprintf(out, "\",status=\"%s\"} %llu\n", s_status[k],
                    (unsigned long long) m->pipes[i].finished[k]);
        }
    s_head(out, "evrun_step_duration_seconds", "histogram", "Durations of the steps that "
           "ended (step.finished) after they started (step.started), by pipeline, since the "
           "gateway started");
    for (int i = 0; i < m->npipes; i++)
        s_hist_write(out, "evrun_step_duration_seconds", &m->pipes[i].step, s_dur_b,
                     EVR_ARRAY_LEN(s_dur_b), m->pipes[i].name);
    s_head(out, "evrun_steps_never_started_total", "counter", "Steps that ended without "
           "starting (a step.finished with no step.started for its attempt: no duration, "
           "not in evrun_step_duration_seconds), by pipeline, since the gateway started");
    for (int i = 0; i < m->npipes; i++) {
        fputs("evrun_steps_never_started_total{pipeline=\"", out);
        evr_gw_prom_label(out, m->pipes[i].name);
        fprintf(out, "\"} %llu\n", (unsigned long long) m->pipes[i].unstarted);
    }
    s_head(out, "evrun_job_duration_seconds", "histogram", "Durations of the jobs that ended, "
           "from job.started to job.finished, by pipeline, since the gateway started");
    for (int i = 0; i < m->npipes; i++)
        s_hist_write(out, "evrun_job_duration_seconds", &m->pipes[i].job, s_dur_b,
                     EVR_ARRAY_LEN(s_dur_b), m->pipes[i].name);
    s_head(out, "evrun_broker_request_duration_seconds", "histogram",
           "Round-trip times of the gateway's request/answer calls to the broker");
    s_hist_write(out, "evrun_broker_request_duration_seconds", &m->rtt, s_rtt_b,
                 EVR_ARRAY_LEN(s_rtt_b), NULL);
    pthread_mutex_unlock(&m->mu);
}

/*  The gateway's own: its connections (evr_gw_limits.c) and what it read
    of jobs' histories. */
static void
s_gateway(evr_gw_t *gw, FILE *out)
{
    pthread_mutex_lock(&gw->conns_mu);
    int conns = gw->nconns;
    pthread_mutex_unlock(&gw->conns_mu);
    s_head(out, "evrun_gateway_connections", "gauge", "HTTP connections open now");
    fprintf(out, "evrun_gateway_connections %d\n", conns);
    s_head(out, "evrun_gateway_requests_cut_total", "counter", "Connections closed because "
           "a request's headers and body did not all come within http_request_timeout");
    fprintf(out, "evrun_gateway_requests_cut_total %llu\n",
            (unsigned long long) __atomic_load_n(&gw->requests_cut, __ATOMIC_RELAXED));
    s_head(out, "evrun_gateway_history_events_total", "counter", "Events the broker sent the "
           "gateway from jobs' histories (job views, live logs; text logs aside)");
    fprintf(out, "evrun_gateway_history_events_total %llu\n",
            (unsigned long long) __atomic_load_n(&gw->history_events, __ATOMIC_RELAXED));
}

void
evr_gw_h_metrics(evr_gw_t *gw, evr_gw_req_t *req)
{
    evr_gw_metrics_t *m = gw->metrics;
    if (gw->metrics_auth && !evr_gw_auth(gw, req, false))
        return;
    if (!m) {
        evr_gw_error(req, 503, "unavailable", "metrics are not collected");
        req->retry_after = 1;
        return;
    }
    /* one scrape asks (by S_ASK_NS), without cache_mu held meanwhile: the
       others take the text there is, and wait only when there is none */
    pthread_mutex_lock(&m->cache_mu);
    bool ask = !m->asking && (!m->cache || evr_mono_ns() - m->cache_at >= S_CACHE_NS);
    m->asking |= ask;
    while (!ask && !m->cache)
        pthread_cond_wait(&m->cache_cv, &m->cache_mu);
    pthread_mutex_unlock(&m->cache_mu);
    char *fresh = ask ? s_state_text(gw) : NULL;
    pthread_mutex_lock(&m->cache_mu);
    if (ask) {
        free(m->cache);
        m->cache = fresh;
        m->cache_at = evr_mono_ns();
        m->asking = false;
        pthread_cond_broadcast(&m->cache_cv);
    }
    char *text = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&text, &n);
    fputs(m->cache, out);
    pthread_mutex_unlock(&m->cache_mu);
    s_counters(m, out);
    s_gateway(gw, out);
    fclose(out);
    req->resp = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(req->resp, "Content-Type", "text/plain; version=0.0.4; "
                            "charset=utf-8");
    req->status = 200;
}
