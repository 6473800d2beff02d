/*  evr_fprint.c: see evr_fprint.h. */
#include "evr_fprint.h"

#include <errno.h>
#include <poll.h>
#include <stdio_ext.h>
#include <string.h>

#include "evr_codec.h"
#include "evr_job.h"
#include "evr_json.h"

#define S_LINE_MAX (64u * 1024u)    /* a longer line is printed in pieces */
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

struct evr_fprint_job {
    char id[EVR_ULID_LEN + 1];
    evr_strmap_t started;   /* step -> the attempt whose step.started came: a
                               step.finished of another never started */
    s_line_t *lines;
    struct evr_fprint_job *next;
};

struct evr_fprint {
    const char *prog;
    const evr_follow_opts_t *o;
    evr_fprint_job_t *jobs;
    s_line_t *open;         /* the line shown without its newline yet (live only) */
    int write_err;          /* errno of a failed write to o->out: nothing more printed */
    bool failed;            /* ... and said (exit 2) */
    volatile sig_atomic_t *stop;
};

evr_fprint_t *
evr_fprint_new(const char *prog, const evr_follow_opts_t *o, volatile sig_atomic_t *stop)
{
    evr_fprint_t *f = evr_calloc(1, sizeof *f);
    f->prog = prog;
    f->o = o;
    f->stop = stop;
    return f;
}

void
evr_fprint_destroy(evr_fprint_t **self_p)
{
    evr_fprint_t *f = *self_p;
    if (!f)
        return;
    while (f->jobs) {
        evr_fprint_job_t *j = f->jobs;
        evr_fprint_job_destroy(f, &j);
    }
    free(f);
    *self_p = NULL;
}

evr_fprint_job_t *
evr_fprint_job_new(evr_fprint_t *self, const char *id)
{
    evr_fprint_job_t *j = evr_calloc(1, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", id);
    j->next = self->jobs;
    self->jobs = j;
    return j;
}

static void
s_free_lines(evr_fprint_t *f, evr_fprint_job_t *j)
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

void
evr_fprint_job_destroy(evr_fprint_t *self, evr_fprint_job_t **job_p)
{
    evr_fprint_job_t *j = *job_p;
    if (!j)
        return;
    for (evr_fprint_job_t **pp = &self->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    s_free_lines(self, j);
    evr_strmap_free(&j->started);
    free(j);
    *job_p = NULL;
}

/*  After a print: a write to o->out that failed ends the follow, nothing
    more printed.  Its reader gone (EPIPE: `evrun-tail --all | head`) sets
    *stop, as SIGINT would, and is not said; another error (a full disk)
    is said, exit 2.  errno is set to 0 before the print (s_print_begin):
    a print longer than stdio's buffer (a --json line) wrote and failed
    inside, giving its buffer up, so the fflush here finds nothing to
    write and only errno still holds why. */
static void
s_print_begin(void)
{
    errno = 0;
}

static void
s_wrote(evr_fprint_t *f)
{
    FILE *out = f->o->out;
    int before = errno;     /* of a write that failed inside a print */
    if (f->write_err)
        return;
    /* a stream whose write failed (ferror) is not flushed again: what the
       print put in it since would be written to the reader that does not
       read, blocking with no signal left to end it (EINTR, below) */
    errno = 0;
    bool failed = ferror(out) || fflush(out) != 0 || ferror(out);
    if (!failed)
        return;
    __fpurge(out);  /* ... nor at exit */
    int e = errno ? errno : before, fd = fileno(out);
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    if (e != EPIPE && fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLERR))
        e = EPIPE;      /* a pipe whose reader is gone (an earlier write's errno lost) */
    f->write_err = e ? e : EIO;
    /* a write a SIGINT interrupted (blocked on a reader that does not
       read: evr_cli_on_stop) ends it as the signal does */
    if (f->stop && (f->write_err == EPIPE || (f->write_err == EINTR && *f->stop))) {
        *f->stop = 1;
        return;
    }
    fprintf(stderr, "%s: writing %s: %s\n", f->prog, out == stdout ? "to stdout" : "the output",
            strerror(f->write_err));
    f->failed = true;
}

/*  o->out for a line of its own: a line shown without its newline yet
    (evr_fprint_show) is ended first, and the bytes of it shown are done with: its
    rest comes later as a line of its own ("step | rest"), as
    `evrun-runner --exec` prints it. */
static FILE *
s_out(evr_fprint_t *f)
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
s_prefix(evr_fprint_t *f, const evr_fprint_job_t *j, const char *step)
{
    FILE *out = s_out(f);
    if (f->o->job_prefix)
        fprintf(out, "%s/%s | ", j->id, step ? step : "-");
    else
        fprintf(out, "%s | ", step ? step : "-");
}

static s_line_t *
s_line(evr_fprint_job_t *j, const char *step, int stream)
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
s_flush_line(evr_fprint_t *f, const evr_fprint_job_t *j, s_line_t *l)
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
s_flush_long(evr_fprint_t *f, const evr_fprint_job_t *j, s_line_t *l, uint8_t c)
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
s_flush_step(evr_fprint_t *f, evr_fprint_job_t *j, const char *step)
{
    for (s_line_t *l = j->lines; l; l = l->next)
        if (!step || !strcmp(l->step, step))
            s_flush_line(f, j, l);
}

/*  The bytes of a line with no newline yet that waited S_SHOW_NS are
    printed as they are, the line left open: more of it goes on it, and
    anything else printed first ends it there (s_out). */
void
evr_fprint_show(evr_fprint_t *f)
{
    uint64_t now = evr_mono_ns();
    bool shown = false;
    s_print_begin();
    for (evr_fprint_job_t *j = f->jobs; j; j = j->next)
        for (s_line_t *l = j->lines; l && !f->o->json; l = l->next) {
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
s_output(evr_fprint_t *f, evr_fprint_job_t *j, const evr_event_t *ev)
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
    for (size_t i = 0; i < d->bytes.len && !ferror(f->o->out); i++) {
        /* (a write failed: nothing more, s_wrote says why; a SIGINT's
           EINTR would else be followed by a write that blocks again) */
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
s_started(const evr_fprint_job_t *j, const evr_evdata_t *d)
{
    char at[16];
    snprintf(at, sizeof at, "%u", d->attempt);
    const char *was = d->step ? evr_strmap_get(&j->started, d->step) : NULL;
    return was && !strcmp(was, at);
}

static void
s_lifecycle(evr_fprint_t *f, const evr_fprint_job_t *j, const evr_event_t *ev)
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
s_image(evr_fprint_t *f, const evr_fprint_job_t *j, const evr_event_t *ev)
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
s_hook(evr_fprint_t *f, const evr_fprint_job_t *j, const evr_event_t *ev)
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
s_step_end(evr_fprint_t *f, const evr_fprint_job_t *j, const evr_event_t *ev)
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
s_step_skip(evr_fprint_t *f, const evr_fprint_job_t *j, const evr_event_t *ev)
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
s_job_end(evr_fprint_t *f, const evr_fprint_job_t *j, const evr_event_t *ev)
{
    const evr_evdata_t *d = &ev->data;
    if (!f->o->job_end || !d->status || !strcmp(d->status, "succeeded"))
        return;
    fprintf(s_out(f), "job %s %s%s%s\n", j->id, d->status, d->reason ? ": " : "",
            d->reason ? d->reason : "");
}

/*  ... and a retry's start says so: "STEP > retrying (attempt 2)". */
static void
s_step_retry(evr_fprint_t *f, const evr_fprint_job_t *j, const evr_event_t *ev)
{
    const evr_evdata_t *d = &ev->data;
    if (d->attempt < 2)
        return;
    FILE *out = s_out(f);
    if (f->o->job_prefix)
        fprintf(out, "%s/", j->id);
    fprintf(out, "%s > retrying (attempt %u)\n", d->step ? d->step : "?", d->attempt);
}

void
evr_fprint_event(evr_fprint_t *f, evr_fprint_job_t *j, const evr_event_t *ev)
{
    evr_evtype_t t = evr_event_kind(ev);
    const char *step = ev->data.step;
    s_print_begin();
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

void
evr_fprint_flush(evr_fprint_t *self)
{
    s_print_begin();
    for (evr_fprint_job_t *j = self->jobs; j; j = j->next)
        if (!self->o->json && !self->write_err)
            s_flush_step(self, j, NULL);
    s_wrote(self);
}

bool
evr_fprint_ended(const evr_fprint_t *self)
{
    return self->write_err != 0;
}

bool
evr_fprint_failed(const evr_fprint_t *self)
{
    return self->failed;
}
