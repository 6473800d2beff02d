/*  evr_follow.c: see evr_follow.h. */
#include "evr_follow.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#include "evr_bus.h"
#include "evr_codec.h"
#include "evr_job.h"
#include "evr_json.h"

#define S_LINE_MAX (64u * 1024u)    /* a longer line is printed in pieces */
#define S_JOBS_MAX 4096             /* jobs tracked at once (--all) */
#define S_SHOW_NS 100000000ull      /* a line with no newline yet is shown after this */

typedef struct s_line {
    char *step;
    int stream;
    char *buf;
    size_t len;
    size_t shown;           /* of buf, the bytes on the screen (the open line's) */
    uint64_t since;         /* mono ns: the first byte of buf not shown came */
    struct s_line *next;
} s_line_t;

typedef struct s_fjob {
    char id[EVR_ULID_LEN + 1];
    uint32_t last;          /* highest jseq printed */
    bool known;             /* pipeline checked */
    bool match;             /* printed at all */
    bool done;
    bool retry;             /* owed: its history, or its pipeline when !known (the
                               broker did not answer, or cut a history short) */
    char *status;           /* of job.finished */
    evr_strmap_t started;   /* step -> the attempt whose step.started came: a
                               step.finished of another never started */
    s_line_t *lines;
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
    s_line_t *open;         /* the line shown without its newline yet (live only) */
    int write_err;          /* errno of a failed write to o->out: nothing more printed */
    int base_ms;            /* the client's timeout_ms; doubled in an outage up to cap_ms */
    int cap_ms;
    volatile sig_atomic_t *stop;
} s_follow_t;

#define S_RETRY_NS 1000000000ull    /* a second between a failed request and the next */
#define S_WAIT_CAP_MS 60000         /* the longest wait an outage doubles timeout_ms to */
#define S_ASK_MAX 16                /* requests one pass of s_reask sends at most */

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
    j->next = f->jobs;
    f->jobs = j;
    f->njobs++;
    return j;
}

static void
s_free_lines(s_follow_t *f, s_fjob_t *j)
{
    while (j->lines) {
        s_line_t *l = j->lines;
        if (f->open == l)
            f->open = NULL;     /* (flushed before: not on the screen) */
        j->lines = l->next;
        free(l->step);
        free(l->buf);
        free(l);
    }
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
            s_free_lines(f, j);
            free(j->status);
            evr_strmap_free(&j->started);
            free(j);
            f->njobs--;
        }
        else
            pp = &j->next;
    }
}

/* ------------------------------------------------------------ printing */

/*  After a print: a write to o->out that failed ends the follow, nothing
    more printed.  Its reader gone (EPIPE: `evrun-tail --all | head`) sets
    *stop, as SIGINT would, and is not said; another error (a full disk)
    is said, exit 2. */
static void
s_wrote(s_follow_t *f)
{
    FILE *out = f->o->out;
    errno = 0;
    if ((fflush(out) == 0 && !ferror(out)) || f->write_err)
        return;
    int e = errno, fd = fileno(out);
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    if (e != EPIPE && fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLERR))
        e = EPIPE;      /* a pipe whose reader is gone (an earlier write's errno lost) */
    f->write_err = e ? e : EIO;
    if (f->write_err == EPIPE && f->stop) {
        *f->stop = 1;
        return;
    }
    fprintf(stderr, "%s: writing %s: %s\n", f->prog, out == stdout ? "to stdout" : "the output",
            strerror(f->write_err));
    f->failed = true;
}

/*  o->out for a line of its own: a line shown without its newline yet
    (s_show) is ended first, and the bytes of it shown are done with: its
    rest comes later as a line of its own ("step | rest"), as
    `evrun-runner --exec` prints it. */
static FILE *
s_out(s_follow_t *f)
{
    s_line_t *l = f->open;
    if (l) {
        fputc('\n', f->o->out);
        memmove(l->buf, l->buf + l->shown, l->len - l->shown);
        l->len -= l->shown;
        l->shown = 0;
        l->since = evr_mono_ns();
        f->open = NULL;
    }
    return f->o->out;
}

static void
s_prefix(s_follow_t *f, const s_fjob_t *j, const char *step)
{
    FILE *out = s_out(f);
    if (f->o->job_prefix)
        fprintf(out, "%s/%s | ", j->id, step ? step : "-");
    else
        fprintf(out, "%s | ", step ? step : "-");
}

static s_line_t *
s_line(s_fjob_t *j, const char *step, int stream)
{
    for (s_line_t *l = j->lines; l; l = l->next)
        if (l->stream == stream && !strcmp(l->step, step))
            return l;
    s_line_t *l = evr_calloc(1, sizeof *l);
    l->step = evr_strdup(step);
    l->stream = stream;
    l->buf = evr_malloc(S_LINE_MAX);
    l->next = j->lines;
    j->lines = l;
    return l;
}

/*  Prints l's line with its newline: the open line's rest after what is
    shown of it, any other whole. */
static void
s_flush_line(s_follow_t *f, const s_fjob_t *j, s_line_t *l)
{
    if (!l->len)
        return;
    if (f->open != l)
        s_prefix(f, j, l->step);
    fwrite(l->buf + l->shown, 1, l->len - l->shown, f->o->out);
    fputc('\n', f->o->out);
    l->len = l->shown = 0;
    if (f->open == l)
        f->open = NULL;
}

/*  A line of S_LINE_MAX bytes before byte c: printed up to its last
    character boundary, a character c goes on (one cut short) carried into
    the next piece, so a piece never ends inside a character (unless
    its first bytes were shown already). */
static void
s_flush_long(s_follow_t *f, const s_fjob_t *j, s_line_t *l, uint8_t c)
{
    size_t at = l->len;
    if ((c & 0xc0) == 0x80) {
        size_t lead = evr_utf8_cut(l->buf, l->len, l->len - 1, false);
        uint8_t b = (uint8_t) l->buf[lead];
        size_t need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
        if (lead > 0 && l->len - lead < need && lead >= l->shown)
            at = lead;
    }
    size_t tail = l->len - at;
    l->len = at;
    s_flush_line(f, j, l);
    memmove(l->buf, l->buf + at, tail);
    l->len = tail;
    l->since = evr_mono_ns();
}

static void
s_flush_step(s_follow_t *f, s_fjob_t *j, const char *step)
{
    for (s_line_t *l = j->lines; l; l = l->next)
        if (!step || !strcmp(l->step, step))
            s_flush_line(f, j, l);
}

/*  While following live, the bytes of a line with no newline yet (a
    step printing dots, a prompt) that waited S_SHOW_NS are printed as
    they are, the line left open: more of it goes on it, and anything
    else printed first ends it there (s_out). */
static void
s_show(s_follow_t *f)
{
    uint64_t now = evr_mono_ns();
    bool shown = false;
    for (s_fjob_t *j = f->jobs; j; j = j->next)
        for (s_line_t *l = j->lines; l && j->match && !f->o->json; l = l->next) {
            if (l->len <= l->shown || now - l->since < S_SHOW_NS)
                continue;
            if (f->open != l) {
                s_prefix(f, j, l->step);
                f->open = l;
            }
            fwrite(l->buf + l->shown, 1, l->len - l->shown, f->o->out);
            l->shown = l->len;
            shown = true;
        }
    if (shown)
        s_wrote(f);
}

static void
s_output(s_follow_t *f, s_fjob_t *j, const evr_event_t *ev)
{
    const evr_evdata_t *d = &ev->data;
    if (!d->bytes.len && d->raw) {
        /* retention dropped the bytes (evr_prune.h): said once a stream */
        if (d->offset == 0) {
            s_prefix(f, j, d->step);
            fprintf(f->o->out, "[%s output removed by retention]\n",
                    d->stream ? d->stream : "");
        }
        return;
    }
    s_line_t *l = s_line(j, d->step, d->stream && !strcmp(d->stream, "stderr"));
    for (size_t i = 0; i < d->bytes.len; i++) {
        uint8_t c = d->bytes.data[i];
        if (c == '\n') {
            if (!l->len) {
                s_prefix(f, j, l->step);
                fputc('\n', f->o->out);
            }
            else
                s_flush_line(f, j, l);
            continue;
        }
        if (l->len == S_LINE_MAX)
            s_flush_long(f, j, l, c);
        if (l->len == l->shown)
            l->since = evr_mono_ns();   /* the first byte not shown */
        l->buf[l->len++] = (char) c;
    }
}

/*  Whether the attempt of a step.finished had started (its step.started
    came): one that never started has no duration. */
static bool
s_started(const s_fjob_t *j, const evr_evdata_t *d)
{
    char at[16];
    snprintf(at, sizeof at, "%u", d->attempt);
    const char *was = d->step ? evr_strmap_get(&j->started, d->step) : NULL;
    return was && !strcmp(was, at);
}

static void
s_lifecycle(s_follow_t *f, const s_fjob_t *j, const evr_event_t *ev)
{
    const evr_evdata_t *d = &ev->data;
    FILE *out = s_out(f);
    if (f->o->job_prefix)
        fprintf(out, "%s%s%s -- %s", j->id, d->step ? "/" : "", d->step ? d->step : "",
                evr_evtype_name(evr_event_kind(ev)));
    else
        fprintf(out, "%s -- %s", d->step ? d->step : "job", evr_evtype_name(evr_event_kind(ev)));
    if (d->status)
        fprintf(out, ": %s%s", d->status, d->allowed ? " (allowed)" : "");
    if (d->force)   /* job.cancel_requested of a second cancel */
        fprintf(out, ": again, its when: always steps stopped too");
    if (evr_event_kind(ev) == EVR_EV_SECRET_REGISTERED)   /* the name only */
        fprintf(out, ": %s", d->name ? d->name : "?");
    if (d->source)   /* job.source */
        fprintf(out, ": %s %s %s%s%s", d->source, d->kind ? d->kind : "", d->url ? d->url : "",
                d->commit ? " at " : "", d->commit ? d->commit : "");
    if (evr_event_kind(ev) == EVR_EV_STEP_FINISHED && d->exit_code != EVR_STEP_NO_EXIT)
        fprintf(out, " (exit %lld, %llu ms)", (long long) d->exit_code,
                (unsigned long long) d->duration);
    else if (evr_event_kind(ev) == EVR_EV_STEP_FINISHED && s_started(j, d))   /* lost */
        fprintf(out, " (%llu ms)", (unsigned long long) d->duration);
    else if (evr_event_kind(ev) == EVR_EV_STEP_FINISHED)   /* no duration: it had none */
        fprintf(out, " (never started)");
    if (d->attempt > 1)
        fprintf(out, " attempt %u", d->attempt);
    if (d->how)
        fprintf(out, " (%s)", d->how);
    if (d->path && d->sha256)   /* step.artifact */
        fprintf(out, " %s (%llu bytes, sha256 %s)", d->path, (unsigned long long) d->size,
                d->sha256);
    for (uint32_t i = 0; i < d->outputs.n; i++)   /* step.outputs (masked) */
        fprintf(out, " %s=%s", d->outputs.k[i], d->outputs.v[i]);
    if (d->runner)
        fprintf(out, " on %s", d->runner);
    if (d->reason)
        fprintf(out, " -- %s", d->reason);
    fputc('\n', out);
}

/*  A pull's progress, shown as output is (without --events too): one
    line per event, "image NAME | text" (image.progress: one per layer). */
static void
s_image(s_follow_t *f, const s_fjob_t *j, const evr_event_t *ev)
{
    const evr_evdata_t *d = &ev->data;
    FILE *out = s_out(f);
    if (f->o->job_prefix)
        fprintf(out, "%s/", j->id);
    fprintf(out, "image %s | ", d->image ? d->image : "?");
    switch (evr_event_kind(ev)) {
    case EVR_EV_IMAGE_PULLING: fprintf(out, "pulling"); break;
    case EVR_EV_IMAGE_PROGRESS: fprintf(out, "%s", d->text ? d->text : ""); break;
    case EVR_EV_IMAGE_PULLED:
        fprintf(out, "pulled (%s, %llu bytes, %llu.%03llus)", d->digest ? d->digest : "no digest",
                (unsigned long long) d->size, (unsigned long long) (d->duration / 1000),
                (unsigned long long) (d->duration % 1000));
        break;
    default: fprintf(out, "failed: %s", d->reason ? d->reason : "?"); break;
    }
    fputc('\n', out);
}

/*  A lifecycle hook's run, shown as images are: "hook NAME (PHASE) |
    started", then "| succeeded (12 ms)" or "| refused: why (12 ms)". */
static void
s_hook(s_follow_t *f, const s_fjob_t *j, const evr_event_t *ev)
{
    const evr_evdata_t *d = &ev->data;
    FILE *out = s_out(f);
    if (f->o->job_prefix)
        fprintf(out, "%s/", j->id);
    fprintf(out, "hook %s (%s) | ", d->name ? d->name : "?", d->phase ? d->phase : "?");
    if (evr_event_kind(ev) == EVR_EV_HOOK_STARTED)
        fprintf(out, "started");
    else
        fprintf(out, "%s%s%s (%llu ms)", d->status ? d->status : "?", d->reason ? ": " : "",
                d->reason ? d->reason : "", (unsigned long long) d->duration_ms);
    fputc('\n', out);
}

/*  Without --events, a step that ended other than succeeded still gets
    one line, so the output alone says which step failed and why, as
    `evrun-runner --exec` does: "STEP > timed_out (exit 143): timed out
    after 2000 ms", "STEP > failed (exit 1, attempt 2)" for a retry,
    "STEP > failed: image ..." for one that never started. */
static void
s_step_end(s_follow_t *f, const s_fjob_t *j, const evr_event_t *ev)
{
    const evr_evdata_t *d = &ev->data;
    if (!d->status || !strcmp(d->status, "succeeded"))
        return;
    FILE *out = s_out(f);
    if (f->o->job_prefix)
        fprintf(out, "%s/", j->id);
    fprintf(out, "%s > %s%s", d->step ? d->step : "?", d->status, d->allowed ? " (allowed)" : "");
    /* no exit code for a step that never started, nor a 0 its reason explains */
    bool told = evr_step_exit_told(d->exit_code, false);
    if (told)
        fprintf(out, " (exit %lld", (long long) d->exit_code);
    if (d->attempt > 1)
        fprintf(out, "%sattempt %u", told ? ", " : " (", d->attempt);
    fprintf(out, "%s%s%s\n", told || d->attempt > 1 ? ")" : "", d->reason ? ": " : "",
            d->reason ? d->reason : "");
}

/*  ... a skipped step too, as `evrun-runner --exec` says it: "STEP >
    skipped: step a before it did not succeed". */
static void
s_step_skip(s_follow_t *f, const s_fjob_t *j, const evr_event_t *ev)
{
    const evr_evdata_t *d = &ev->data;
    FILE *out = s_out(f);
    if (f->o->job_prefix)
        fprintf(out, "%s/", j->id);
    fprintf(out, "%s > skipped%s%s\n", d->step ? d->step : "?", d->reason ? ": " : "",
            d->reason ? d->reason : "");
}

/*  ... and (job_end) a job that ended other than succeeded, as the last
    line of `run --follow` says it: "job ID failed: REASON". */
static void
s_job_end(s_follow_t *f, const s_fjob_t *j, const evr_event_t *ev)
{
    const evr_evdata_t *d = &ev->data;
    if (!f->o->job_end || !d->status || !strcmp(d->status, "succeeded"))
        return;
    fprintf(s_out(f), "job %s %s%s%s\n", j->id, d->status, d->reason ? ": " : "",
            d->reason ? d->reason : "");
}

/*  ... and a retry's start says so: "STEP > retrying (attempt 2)". */
static void
s_step_retry(s_follow_t *f, const s_fjob_t *j, const evr_event_t *ev)
{
    const evr_evdata_t *d = &ev->data;
    if (d->attempt < 2)
        return;
    FILE *out = s_out(f);
    if (f->o->job_prefix)
        fprintf(out, "%s/", j->id);
    fprintf(out, "%s > retrying (attempt %u)\n", d->step ? d->step : "?", d->attempt);
}

static void
s_print(s_follow_t *f, s_fjob_t *j, const evr_event_t *ev)
{
    evr_evtype_t t = evr_event_kind(ev);
    const char *step = ev->data.step;
    if (t == EVR_EV_STEP_STARTED && step) {   /* read by s_started */
        char at[16];
        snprintf(at, sizeof at, "%u", ev->data.attempt);
        evr_strmap_set(&j->started, step, at);
    }
    if (f->o->step && step && !evr_spec_step_matches(f->o->step, step))
        return;
    if (f->o->step && !step && t != EVR_EV_JOB_FINISHED)
        return;
    if (f->o->json) {
        if (t == EVR_EV_STEP_OUTPUT || f->o->events) {
            json_t *js = evr_json_from_rec(&evr_event_type, ev);
            char *s = json_dumps(js, JSON_COMPACT);
            fprintf(s_out(f), "%s\n", s);
            free(s);
            json_decref(js);
        }
    }
    else if (t == EVR_EV_STEP_OUTPUT)
        s_output(f, j, ev);
    else if (t >= EVR_EV_IMAGE_PULLING && t <= EVR_EV_IMAGE_PULL_FAILED)
        s_image(f, j, ev);
    else if (t == EVR_EV_HOOK_STARTED || t == EVR_EV_HOOK_FINISHED)
        s_hook(f, j, ev);
    else if (t == EVR_EV_SECRET_REGISTERED)   /* shown as hooks are: also without --events */
        s_lifecycle(f, j, ev);
    else {
        if (t == EVR_EV_STEP_FINISHED || t == EVR_EV_STEP_SKIPPED || t == EVR_EV_JOB_FINISHED)
            s_flush_step(f, j, t == EVR_EV_JOB_FINISHED ? NULL : step);
        if (f->o->events)
            s_lifecycle(f, j, ev);
        else if (t == EVR_EV_STEP_FINISHED)
            s_step_end(f, j, ev);
        else if (t == EVR_EV_STEP_SKIPPED)
            s_step_skip(f, j, ev);
        else if (t == EVR_EV_JOB_FINISHED)
            s_job_end(f, j, ev);
        else if (t == EVR_EV_STEP_STARTED)
            s_step_retry(f, j, ev);
    }
    s_wrote(f);
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
             && !s_job(f, job)->done && !f->write_err);
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
    without --follow, stderr says why nothing is printed (and why it
    waits, the status's reason); with --step S, its steps are those of
    the spec the broker holds with it, which `status` answers with (its
    `steps`).  An answer without them (a broker before they were added)
    leaves --step unchecked until the job.accepted (s_check_step); no
    answer is an outage (s_lost). */
static void
s_check_queued(s_follow_t *f, const s_fjob_t *j)
{
    bool note = !f->o->follow && !f->o->json;
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
        fprintf(stderr, "%s: job %s is %s in the broker's queue: no output yet (--follow "
                "waits for it)%s%s\n", f->prog, j->id, rep.status, rep.reason ? "; " : "",
                rep.reason ? rep.reason : "");
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
    if (f->failed || f->write_err)
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
    s_print(f, j, ev);
    if (evr_event_kind(ev) == EVR_EV_JOB_FINISHED) {
        s_free_lines(f, j);    /* flushed by s_print; a long tail keeps no buffers */
        j->done = true;
        free(j->status);
        evr_strmap_free(&j->started);
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
        s_free_lines(f, j);
        free(j->status);
        evr_strmap_free(&j->started);
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
    uint64_t quiet_since = evr_mono_ns();
    while (!f->failed && !(stop && *stop) && !(mine && mine->done)) {
        zmq_pollitem_t it = { zsock_resolve(sub), 0, ZMQ_POLLIN, 0 };
        zmq_poll(&it, 1, (long) (S_SHOW_NS / 1000000));
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
        s_show(f);
        s_trim(f);
    }
}

int
evr_follow(const char *prog, const evr_config_t *cfg, evr_client_t *client,
           const evr_follow_opts_t *o, volatile sig_atomic_t *stop)
{
    s_follow_t f = { .prog = prog, .o = o, .client = client, .stop = stop,
                     .base_ms = evr_client_timeout(client) };
    f.cap_ms = f.base_ms > S_WAIT_CAP_MS ? f.base_ms
             : f.base_ms * 8 < S_WAIT_CAP_MS ? f.base_ms * 8 : S_WAIT_CAP_MS;
    zsock_t *sub = NULL;
    evr_err_t err;
    if (o->follow) {
        char prefix[64] = "ev.";
        if (o->job)
            snprintf(prefix, sizeof prefix, "ev.%s.", o->job);
        if (!(sub = evr_client_subscribe(cfg, prefix, &err))) {
            fprintf(stderr, "%s: %s\n", prog, err.msg);
            return 2;
        }
    }
    if (o->job) {
        s_fjob_t *j = s_job(&f, o->job);
        j->known = j->match = true;
        s_history(&f, o->job, 1, false);
        s_check_queued(&f, j);
    }
    else
        s_backfill(&f);
    if (sub)
        s_live(&f, sub, stop);
    for (s_fjob_t *j = f.jobs; j; j = j->next)
        if (j->match && !o->json && !f.write_err)
            s_flush_step(&f, j, NULL);
    s_wrote(&f);
    int status = s_status_code(&f, o->job ? s_job(&f, o->job) : NULL);
    evr_client_set_timeout(client, f.base_ms);
    zsock_destroy(&sub);
    s_free(&f);
    return status;
}
