/*  evr_follow.c: see evr_follow.h: which events, in which order, asked of
    whom; evr_fprint.c prints them. */
#include "evr_follow.h"

#include <string.h>

#include "evr_bus.h"
#include "evr_codec.h"
#include "evr_fprint.h"
#include "evr_job.h"

#define S_JOBS_MAX 4096             /* jobs tracked at once (--all) */
#define S_TURN_MS 100               /* the live loop looks at lines not shown this often */

typedef struct s_fjob {
    char id[EVR_ULID_LEN + 1];
    uint32_t last;          /* highest jseq printed */
    bool known;             /* pipeline checked */
    bool match;             /* printed at all */
    bool done;
    bool retry;             /* owed: its history, or its pipeline when !known (the
                               broker did not answer, or cut a history short) */
    char *status;           /* of job.finished */
    evr_fprint_job_t *pj;   /* its lines being printed (NULL once it finished) */
    struct s_fjob *next;
} s_fjob_t;

typedef struct {
    const char *prog;
    const evr_follow_opts_t *o;
    evr_client_t *client;
    s_fjob_t *jobs;
    size_t njobs;
    bool failed;            /* the broker failed us: exit 2 */
    bool in_history;        /* a history stream is being read */
    uint32_t page;          /* events in the history page being read */
    bool outage;            /* the broker's last answer did not come */
    bool said_conn;         /* a failed reconnect said in this outage */
    uint64_t asked_time;    /* wall clock when the last request was sent */
    uint64_t lost_time;     /* ... the first failed one of this outage */
    uint64_t retry_ns;      /* no request before (a second after one that failed) */
    evr_fprint_t *pr;       /* the printing: lines, the open one, a failed write */
    int base_ms;            /* the client's timeout_ms; doubled in an outage up to cap_ms */
    int cap_ms;
    volatile sig_atomic_t *stop;
} s_follow_t;

#define S_RETRY_NS 1000000000ull    /* a second between a failed request and the next */
#define S_WAIT_CAP_MS 60000         /* the longest wait an outage doubles timeout_ms to */
#define S_ASK_MAX 16                /* requests one pass of s_reask sends at most */
#define S_QUEUED_NS 2000000000ull   /* queued_note: said of a job still queued this long */

/*  After a print: a write that failed and was said ends the follow, exit
    2 (one whose reader went away set *stop instead). */
static void
s_printed(s_follow_t *f)
{
    if (evr_fprint_failed(f->pr))
        f->failed = true;
}

/* what s_history and s_pipeline did */
typedef enum { S_SKIPPED, S_ANSWERED, S_LOST } s_asked_t;

static s_fjob_t *
s_job(s_follow_t *f, const char *id)
{
    for (s_fjob_t *j = f->jobs; j; j = j->next)
        if (!strcmp(j->id, id))
            return j;
    s_fjob_t *j = evr_calloc(1, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", id);
    j->pj = evr_fprint_job_new(f->pr, id);
    j->next = f->jobs;
    f->jobs = j;
    f->njobs++;
    return j;
}

/*  Forgets finished jobs when too many are tracked (--all over days). */
static void
s_trim(s_follow_t *f)
{
    if (f->njobs < S_JOBS_MAX)
        return;
    for (s_fjob_t **pp = &f->jobs; *pp;) {
        s_fjob_t *j = *pp;
        if (j->done) {
            *pp = j->next;
            evr_fprint_job_destroy(f->pr, &j->pj);
            free(j->status);
            free(j);
            f->njobs--;
        }
        else
            pp = &j->next;
    }
}

/* ------------------------------------------------------------ ordering */

static void s_take(s_follow_t *f, const evr_event_t *ev);

static int
s_hist_item(const evr_msg_t *m, void *arg)
{
    s_follow_t *f = arg;
    if (m->type == EVR_MSG_EVENT && m->event && m->event->job) {
        f->page++;
        s_take(f, m->event);
    }
    return 0;
}

/*  A request that got no answer or could not be sent (EVR_ERR_IO) while
    following: the broker is busy, stopped for a while or restarting, and
    the job goes on.  Said once an outage; the connection is made afresh,
    so its late answer is never read as the next request's; history is
    asked again later.  Without --follow there is no later: exit 2. */
static void
s_lost(s_follow_t *f, const char *what, const evr_err_t *err)
{
    evr_err_t e2;
    if (!f->o->follow) {
        fprintf(stderr, "%s: %s: %s\n", f->prog, what, err->msg);
        f->failed = true;
        return;
    }
    f->retry_ns = evr_mono_ns() + S_RETRY_NS;
    if (f->stop && *f->stop)
        return;     /* interrupted (SIGINT): the caller says it stopped */
    if (!f->outage) {
        f->lost_time = f->asked_time;
        fprintf(stderr, "%s: %s: %s; following on, asking again a second after each wait "
                "(each wait twice the last, up to %d ms) until it answers\n", f->prog, what,
                err->msg, f->cap_ms);
    }
    /* a slow broker is asked less and less often (its answers were still made) */
    int ms = evr_client_timeout(f->client);
    evr_client_set_timeout(f->client, ms > f->cap_ms / 2 ? f->cap_ms : ms * 2);
    f->outage = true;
    if (evr_client_reconnect(f->client, &e2) && !f->said_conn) {
        fprintf(stderr, "%s: %s\n", f->prog, e2.msg);
        f->said_conn = true;
    }
}

/*  The broker answered (the wait is timeout_ms again), or published an
    event and nothing is owed: after an outage, said once; what is owed is
    asked now. */
static void
s_back(s_follow_t *f, bool answered)
{
    if (answered)
        evr_client_set_timeout(f->client, f->base_ms);
    if (!f->outage)
        return;
    f->outage = f->said_conn = false;
    f->retry_ns = 0;
    fprintf(stderr, "%s: the broker at %s answers again; following on\n", f->prog,
            evr_client_endpoint(f->client));
}

/*  Whether a request may go now: not in an outage before a second passed. */
static bool
s_may_ask(const s_follow_t *f)
{
    return !f->outage || evr_mono_ns() >= f->retry_ns;
}

/*  An `error{unavailable}` answer: the broker cut a stream short (its
    queue for this client full); asked again from there a second later. */
static bool
s_cut(s_follow_t *f, const evr_err_t *err)
{
    if (strncmp(err->msg, "unavailable:", 12) || !f->o->follow)
        return false;
    f->retry_ns = evr_mono_ns() + S_RETRY_NS;
    return true;
}

/*  Asks the broker for job's events from jseq `from` on and takes them.
    An `error` answer (no such job) ends the follow; no answer does not
    (s_lost), nor a cut one (s_cut): the job is marked to be asked again.
    In an outage only s_reask asks, once a second (the job is marked). */
static s_asked_t
s_history(s_follow_t *f, const char *job, uint32_t from, bool reask)
{
    evr_msg_t req = { .type = EVR_MSG_HISTORY, .job = (char *) job, .from = from };
    evr_err_t err;
    if (f->in_history)
        return S_SKIPPED;   /* one request at a time: the next quiet second asks again */
    if (f->outage && (!reask || !s_may_ask(f))) {
        s_job(f, job)->retry = true;
        return S_SKIPPED;
    }
    f->in_history = true;
    evr_rc_t rc;
    uint32_t before;
    bool more;
    do {    /* the broker answers in pages: ask on while an `end` says more; then
               the live stream goes on from here (a gap asks history again) */
        s_fjob_t *j = s_job(f, job);
        evr_msg_t end = { 0 };
        before = j->last;
        req.from = j->last + 1 > from ? j->last + 1 : from;
        f->page = 0;
        f->asked_time = evr_now_ns();
        rc = evr_client_stream_end(f->client, &req, s_hist_item, f, &end, &err);
        more = end.more;
        evr_msg_clear(&end);
    } while (rc == EVR_OK && more && f->page > 0 && s_job(f, job)->last > before
             && !s_job(f, job)->done && !evr_fprint_ended(f->pr));
    f->in_history = false;
    s_job(f, job)->retry = rc == EVR_ERR_IO || (rc == EVR_ERR_STATE && s_cut(f, &err));
    if (rc == EVR_ERR_IO) {
        char what[128];
        snprintf(what, sizeof what, "history of %s", job);
        s_lost(f, what, &err);
        return S_LOST;
    }
    s_back(f, true);
    if (rc && !s_job(f, job)->retry) {
        fprintf(stderr, "%s: history of %s: %s\n", f->prog, job, err.msg);
        f->failed = true;
    }
    return S_ANSWERED;
}

/*  Asks the broker for j's pipeline (status) and whether it is followed;
    no answer leaves it unknown and owed (s_reask asks again). */
static s_asked_t
s_pipeline(s_follow_t *f, s_fjob_t *j)
{
    evr_msg_t req = { .type = EVR_MSG_STATUS, .job = j->id }, rep = { 0 };
    evr_err_t err;
    f->asked_time = evr_now_ns();
    evr_rc_t rc = evr_client_call(f->client, &req, &rep, &err);
    if (rc == EVR_OK && rep.type == EVR_MSG_JOB)
        j->match = rep.pipeline && !strcmp(rep.pipeline, f->o->pipeline);
    evr_msg_clear(&rep);
    j->known = rc != EVR_ERR_IO;
    j->retry = !j->known;
    if (rc == EVR_ERR_IO) {
        char what[128];
        snprintf(what, sizeof what, "status of %s", j->id);
        s_lost(f, what, &err);
        return S_LOST;
    }
    if (rc == EVR_OK)
        s_back(f, true);
    return S_ANSWERED;
}

/*  Whether a job is followed at all: its pipeline, asked once. */
static bool
s_matches(s_follow_t *f, s_fjob_t *j, const evr_event_t *ev)
{
    if (j->known)
        return j->match;
    j->known = true;
    if (f->o->job)
        return j->match = !strcmp(j->id, f->o->job);
    if (!f->o->pipeline)
        return j->match = true;
    if (evr_event_kind(ev) == EVR_EV_JOB_ACCEPTED)
        return j->match = ev->data.pipeline && !strcmp(ev->data.pipeline, f->o->pipeline);
    if (f->outage) {    /* owed: s_reask asks, in turn */
        j->known = false;
        j->retry = true;
        return false;
    }
    s_pipeline(f, j);
    return j->match;
}

/*  --step S of one job against the job's step names: a name no step has
    ends the follow (exit 2, as for no such job), naming them. */
bool
evr_follow_step_named(const char *want, const evr_strlist_t *steps, char *names, size_t size)
{
    size_t n = strlen(want), len = 0;
    /* on_error, the pipeline's, is a step of the output (README): a
       stub spec (the live job.accepted of a large one) may not carry it */
    if (!strcmp(want, EVR_ON_ERROR_NAME))
        return true;
    if (size)
        names[0] = '\0';
    for (uint32_t i = 0; i < steps->n; i++) {
        const char *name = steps->v[i];
        size_t k = strlen(name);
        if (evr_spec_step_matches(want, name)   /* NAME[K=v] of an unexpanded matrix */
            || (n > k && !strncmp(want, name, k) && want[k] == '['))
            return true;
        if (len + 1 < size)
            len += (size_t) snprintf(names + len, size - len, "%s%s", i ? ", " : "", name);
        if (size && len >= size)
            len = size - 1;
    }
    return false;
}

static void
s_check_names(s_follow_t *f, const evr_strlist_t *steps)
{
    char names[512];
    if (evr_follow_step_named(f->o->step, steps, names, sizeof names))
        return;
    fprintf(stderr, "%s: job %s has no step \"%s\" (names are case-sensitive); its steps: "
            "%s\n", f->prog, f->o->job, f->o->step, names);
    f->failed = true;
}

/*  Whether --step is to be checked against job's names (evrun-cli logs,
    evrun-tail: not the gateway's log). */
static bool
s_step_checked(const s_follow_t *f)
{
    return f->o->step && f->o->job && !f->o->any_step;
}

/*  --step S of one job, once its job.accepted gives the steps. */
static void
s_check_step(s_follow_t *f, const evr_event_t *ev)
{
    const evr_spec_t *spec = ev->data.spec;
    if (!s_step_checked(f) || evr_event_kind(ev) != EVR_EV_JOB_ACCEPTED || !spec)
        return;
    evr_strlist_t steps = { 0 };
    for (uint32_t i = 0; i < evr_spec_job_steps(spec); i++)
        if (evr_spec_job_step_name(spec, i))
            evr_strlist_push(&steps, evr_spec_job_step_name(spec, i));
    s_check_names(f, &steps);
    evr_strlist_free(&steps);
}

/*  A job with no history yet (still queued, or paused in the queue):
    with note (without --follow; with queued_note, once it stayed so for
    S_QUEUED_NS), stderr says why nothing is printed (and why it waits,
    the status's reason); with --step S, its steps are those of
    the spec the broker holds with it, which `status` answers with (its
    `steps`).  An answer without them (a broker before they were added)
    leaves --step unchecked until the job.accepted (s_check_step); no
    answer is an outage (s_lost). */
static void
s_check_queued(s_follow_t *f, const s_fjob_t *j, bool note)
{
    if ((!s_step_checked(f) && !note) || f->failed || j->last > 0 || j->retry)
        return;
    evr_msg_t req = { .type = EVR_MSG_STATUS, .job = (char *) j->id }, rep = { 0 };
    evr_err_t err;
    f->asked_time = evr_now_ns();
    evr_rc_t rc = evr_client_call(f->client, &req, &rep, &err);
    if (rc == EVR_OK && rep.type == EVR_MSG_JOB && rep.step_states.n > 0 && s_step_checked(f)) {
        evr_strlist_t steps = { .n = rep.step_states.n, .v = rep.step_states.k };
        s_check_names(f, &steps);
    }
    if (rc == EVR_OK && rep.type == EVR_MSG_JOB && note && !f->failed && rep.status
        && (!strcmp(rep.status, "queued") || !strcmp(rep.status, "paused")))
        fprintf(stderr, "%s: job %s is %s in the broker's queue: no output yet (%s)%s%s\n",
                f->prog, j->id, rep.status, f->o->follow ? "following: its output comes once "
                "a runner runs it; `evrun-cli status` says why it waits" : "--follow waits for it",
                rep.reason ? "; " : "", rep.reason ? rep.reason : "");
    else if (rc == EVR_ERR_IO) {
        char what[128];
        snprintf(what, sizeof what, "status of %s", j->id);
        s_lost(f, what, &err);  /* no answer: as for history (without --follow, exit 2) */
    }
    evr_msg_clear(&rep);
}

static void
s_take(s_follow_t *f, const evr_event_t *ev)
{
    if (f->failed || evr_fprint_ended(f->pr))
        return;     /* ended (--step names no step, stdout gone): nothing more printed */
    s_fjob_t *j = s_job(f, ev->job);
    if (!s_matches(f, j, ev)) {
        j->done = j->known;     /* not followed: s_trim may forget it */
        return;
    }
    if (ev->jseq <= j->last)
        return;
    if (ev->jseq > j->last + 1) {
        /* a gap: what is missing comes from history (this event with it) */
        s_history(f, j->id, j->last + 1, false);
        return;
    }
    j->last = ev->jseq;
    if (!f->in_history)
        j->retry = false;   /* live and next in order: nothing of it is missing */
    s_check_step(f, ev);
    if (f->failed)
        return;
    if (j->pj)      /* NULL only past its job.finished: not for a sound broker */
        evr_fprint_event(f->pr, j->pj, ev);
    s_printed(f);
    if (evr_event_kind(ev) == EVR_EV_JOB_FINISHED) {
        /* flushed by evr_fprint_event; a long tail keeps no buffers */
        evr_fprint_job_destroy(f->pr, &j->pj);
        j->done = true;
        free(j->status);
        j->status = evr_strdup(ev->data.status ? ev->data.status : "failed");
    }
}

/* ---------------------------------------------------------------- loop */

typedef struct {
    char (*ids)[EVR_ULID_LEN + 1];
    size_t n;
    bool from_start;
} s_open_t;

static int
s_open_item(const evr_msg_t *m, void *arg)
{
    s_open_t *o = arg;
    if (m->type != EVR_MSG_JOB || !m->job || o->n >= 1000)
        return 0;
    evr_job_status_t st = EVR_JOB_NONE;
    evr_job_status_parse(m->status, &st);
    bool final = st >= EVR_JOB_SUCCEEDED;
    if (!final || o->from_start)
        snprintf(o->ids[o->n++], EVR_ULID_LEN + 1, "%s", m->job);
    return 0;
}

/*  --pipeline / --all: the jobs running now (and, from_start, the ones
    finished before), oldest first, printed from their first event.  While
    following, a `jobs` request with no answer (or a cut one) is asked
    again as history is (s_lost, s_cut), until *stop. */
static void
s_backfill(s_follow_t *f)
{
    s_open_t o = { evr_calloc(1000, sizeof *o.ids), 0, f->o->from_start };
    evr_msg_t req = { .type = EVR_MSG_JOBS, .pipeline = (char *) f->o->pipeline,
                      .limit = f->o->from_start ? 100 : 1000 };
    evr_err_t err;
    for (;;) {
        o.n = 0;
        f->asked_time = evr_now_ns();
        evr_rc_t rc = evr_client_stream(f->client, &req, s_open_item, &o, &err);
        if (rc == EVR_ERR_IO)
            s_lost(f, "jobs", &err);
        else if (rc == EVR_ERR_STATE && s_cut(f, &err))
            s_back(f, true);
        else if (rc) {
            fprintf(stderr, "%s: %s\n", f->prog, err.msg);
            f->failed = true;
        }
        else {
            s_back(f, true);
            break;
        }
        while (!f->failed && !(f->stop && *f->stop) && evr_mono_ns() < f->retry_ns)
            zclock_sleep(50);
        if (f->failed || (f->stop && *f->stop))
            break;
    }
    for (size_t i = o.n; i-- > 0 && !f->failed;) {   /* the list is newest first */
        s_fjob_t *j = s_job(f, o.ids[i]);
        j->known = j->match = true;
        s_history(f, j->id, j->last + 1, false);
    }
    free(o.ids);
}

static int
s_status_code(const s_follow_t *f, const s_fjob_t *j)
{
    if (f->failed)
        return 2;
    if (!j || !j->done)
        return 0;
    return strcmp(j->status, "succeeded") == 0 ? 0 : 1;
}

static void
s_free(s_follow_t *f)
{
    while (f->jobs) {
        s_fjob_t *j = f->jobs;
        f->jobs = j->next;
        evr_fprint_job_destroy(f->pr, &j->pj);
        free(j->status);
        free(j);
    }
}

/*  Asks again what is owed (jobs marked retry: their history, or their
    pipeline), those first, then, when `quiet`, the history of the jobs
    followed and not finished (a publication may be lost, the last one of
    a job too); at most S_ASK_MAX requests sent, none after one with no
    answer (the next pass, a second later, goes on). */
static void
s_reask(s_follow_t *f, const s_fjob_t *mine, bool quiet)
{
    int sent = 0;
    if (!s_may_ask(f))
        return;     /* in an outage, a second after the last failure */
    for (int owed = 1; owed >= 0; owed--) {
        for (s_fjob_t *j = f->jobs; j && sent < S_ASK_MAX && !f->failed; j = j->next) {
            if (j->done || (bool) owed != j->retry)
                continue;
            if (!owed && !(quiet && j->match && (j == mine || j->last)))
                continue;
            if (f->stop && *f->stop)
                return;
            s_asked_t a = S_SKIPPED;
            if (!j->known)
                a = s_pipeline(f, j);
            if (j->known && j->match && a != S_LOST)
                a = s_history(f, j->id, j->last + 1, true);
            else if (j->known && !j->match)
                j->retry = false;   /* not followed after all */
            if (a == S_LOST)
                return;
            sent += a != S_SKIPPED;
        }
    }
}

/*  Jobs whose history or pipeline is owed. */
static size_t
s_owed(const s_follow_t *f)
{
    size_t n = 0;
    for (const s_fjob_t *j = f->jobs; j; j = j->next)
        n += j->retry && !j->done;
    return n;
}

static void
s_live(s_follow_t *f, zsock_t *sub, volatile sig_atomic_t *stop)
{
    s_fjob_t *mine = f->o->job ? s_job(f, f->o->job) : NULL;
    uint64_t quiet_since = evr_mono_ns(), start = quiet_since;
    bool noted = !f->o->queued_note || !mine || f->o->json;
    while (!f->failed && !(stop && *stop) && !(mine && mine->done)) {
        zmq_pollitem_t it = { zsock_resolve(sub), 0, ZMQ_POLLIN, 0 };
        zmq_poll(&it, 1, S_TURN_MS);
        for (int i = 0; i < 1024 && evr_bus_readable(sub); i++) {
            char *topic = NULL;
            evr_msg_t m = { 0 };
            evr_err_t err;
            if (evr_bus_recv_pub(sub, &topic, &m, &err) == EVR_OK && m.event && m.event->job) {
                s_take(f, m.event);
                /* it publishes (not only what was on its way) and nothing is
                   owed (a busy broker too slow to answer keeps its longer wait) */
                if (f->outage && m.event->time >= f->lost_time && !s_owed(f))
                    s_back(f, false);
            }
            evr_msg_clear(&m);
            free(topic);
            quiet_since = evr_mono_ns();
        }
        uint64_t now = evr_mono_ns();
        bool quiet = now - quiet_since > 1000000000ull;
        if (quiet || (now >= f->retry_ns && s_owed(f) > 0)) {
            /* what is owed, however busy the stream (at most once a second
               after a failure); and quiet, what a lost publication hides */
            s_reask(f, mine, quiet);
            quiet_since = evr_mono_ns();
        }
        if (!noted && !mine->last && !f->outage && now - start >= S_QUEUED_NS) {
            noted = true;   /* still in the queue: said once (s_check_queued) */
            s_check_queued(f, mine, true);
        }
        evr_fprint_show(f->pr);
        s_printed(f);
        s_trim(f);
    }
}

int
evr_follow(const char *prog, const evr_config_t *cfg, evr_client_t *client,
           const evr_follow_opts_t *o, volatile sig_atomic_t *stop)
{
    return evr_follow_on(prog, cfg, client, o, NULL, stop);
}

int
evr_follow_on(const char *prog, const evr_config_t *cfg, evr_client_t *client,
              const evr_follow_opts_t *o, zsock_t **sub_p, volatile sig_atomic_t *stop)
{
    s_follow_t f = { .prog = prog, .o = o, .client = client, .stop = stop,
                     .base_ms = evr_client_timeout(client) };
    f.cap_ms = f.base_ms > S_WAIT_CAP_MS ? f.base_ms
             : f.base_ms * 8 < S_WAIT_CAP_MS ? f.base_ms * 8 : S_WAIT_CAP_MS;
    zsock_t *sub = sub_p ? *sub_p : NULL;
    evr_err_t err;
    volatile sig_atomic_t *was_stop = stop ? evr_client_set_stop(client, stop) : NULL;
    if (sub_p)
        *sub_p = NULL;
    if (sub && !o->follow)
        zsock_destroy(&sub);
    f.pr = evr_fprint_new(prog, o, stop);
    if (o->follow && !sub) {
        char prefix[64] = "ev.";
        if (o->job)
            snprintf(prefix, sizeof prefix, "ev.%s.", o->job);
        if (!(sub = evr_client_subscribe(cfg, prefix, &err))) {
            fprintf(stderr, "%s: %s\n", prog, err.msg);
            evr_fprint_destroy(&f.pr);
            if (stop)
                evr_client_set_stop(client, was_stop);
            return 2;
        }
    }
    if (o->job) {
        s_fjob_t *j = s_job(&f, o->job);
        j->known = j->match = true;
        s_history(&f, o->job, 1, false);
        s_check_queued(&f, j, !o->follow && !o->json);
    }
    else
        s_backfill(&f);
    if (sub)
        s_live(&f, sub, stop);
    evr_fprint_flush(f.pr);
    s_printed(&f);
    int status = s_status_code(&f, o->job ? s_job(&f, o->job) : NULL);
    evr_client_set_timeout(client, f.base_ms);
    if (stop)
        evr_client_set_stop(client, was_stop);
    zsock_destroy(&sub);
    s_free(&f);
    evr_fprint_destroy(&f.pr);
    return status;
}
