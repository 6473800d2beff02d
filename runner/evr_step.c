/*  evr_step.c: one step's unit (through the job's executor) from creation
    to result: attach before start, output masked and stored in chunks,
    the exit code, artifacts copied out, step.finished, then removal.
    The step moves through the states of evr_step_state.c; a step created
    ahead of its turn (EARLY_*) and a create that finds its name taken
    (s_on_taken) have their own helpers here, recovery's states are in
    evr_recover.c, pausing the unit in evr_step_pause.c, the step's end
    (result, retry, removal) in evr_step_end.c. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_engine_int.h"
#include "evr_artifact.h"
#include "evr_cache.h"

/* ---------------------------------------------------------------- output */

#define S_GIVE_MIN (16u * 1024)   /* a chunk this large moves to its event, not copied */

/*  After an output chunk is stored: print the first len bytes of the
    stream's laid out text, written as they lie (what stdio holds goes
    first): copying 100 MB into stdout's buffer cost ~4% of the runner's
    CPU.  One write a chunk (~1,400 for 100 MB of output); what else a
    commit's actions print goes out in one write (evr_eng_flush).  A
    write that fails is given up, as stdio gives up its output. */
static void
s_print_text(evr_eng_stream_t *s, size_t len)
{
    fflush(stdout);
    const uint8_t *p = s->text + s->tdone;
    for (size_t left = len; left;) {
        ssize_t w = write(STDOUT_FILENO, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {   /* a stdout left non-blocking: wait, as a blocking one */
            struct pollfd pf = { .fd = STDOUT_FILENO, .events = POLLOUT };
            if (poll(&pf, 1, -1) >= 0 || errno == EINTR)
                continue;
        }
        if (w <= 0)
            break;
        p += w;
        left -= (size_t) w;
    }
    s->tdone += len;
    if (s->tdone < s->tlen)
        return;
    /* a commit of less than a chunk's text: the burst is over, what it
       took goes back (not after any smaller commit: growing the text
       again, copied and faulted in, was ~4% of the runner's CPU) */
    bool idle = s->tcap > 256 * 1024 && s->tlen < EVR_OUTPUT_CHUNK_MAX;
    s->tdone = s->tlen = 0;   /* all printed (after each commit, as a rule) */
    if (idle) {
        free(s->text);
        s->text = NULL;
        s->tcap = 0;
    }
}

static void
s_print_stdout(void *arg, void *data, size_t len)
{
    (void) data;
    s_print_text(&((evr_eng_step_t *) arg)->out[0], len);
}

static void
s_print_stderr(void *arg, void *data, size_t len)
{
    (void) data;
    s_print_text(&((evr_eng_step_t *) arg)->out[1], len);
}

/*  Appends stream s's masked bytes b[0,n) to its text as they are
    printed: the step name before each line.  Returns the bytes added.
    A line costs a memchr and two copies (the prefix made once; one of 16
    bytes, a single store, when it is that short: the text keeps 16 bytes
    to spare). */
static size_t
s_layout(const evr_eng_step_t *st, evr_eng_stream_t *s, const uint8_t *b, size_t n)
{
    if (s->tdone > s->tcap / 2) {   /* printing lags (a failed store): keep the rest only */
        memmove(s->text, s->text + s->tdone, s->tlen - s->tdone);
        s->tlen -= s->tdone;
        s->tdone = 0;
    }
    char pre[160] = { 0 };
    const char *name = st->spec->name;
    size_t nlen = strlen(name), plen = nlen + 3;
    char *prefix = plen <= sizeof pre ? pre : evr_malloc(plen);
    memcpy(prefix, name, nlen);
    memcpy(prefix + nlen, " | ", 3);
    bool short_prefix = plen <= 16;
    size_t start = s->tlen;
    evr_engine_t *e = st->job->eng;
    if (n && e->print_mid && e->print_mid != s) {
        /* another stream's line is open (a parallel step's, or this
           step's other stream): ended first; its rest comes prefixed */
        if (s->tlen + 1 > s->tcap) {
            s->tcap = 2 * s->tcap + 64;
            s->text = evr_realloc(s->text, s->tcap);
        }
        s->text[s->tlen++] = '\n';
        e->print_mid->line_start = true;
        e->print_mid = NULL;
    }
    for (size_t i = 0; i < n;) {
        const uint8_t *nl = memchr(b + i, '\n', n - i);
        size_t end = nl ? (size_t) (nl - b) + 1 : n;
        if (s->tlen + plen + (end - i) + 16 > s->tcap) {
            s->tcap = 2 * s->tcap + plen + (end - i) + 16 + n / 16;
            s->text = evr_realloc(s->text, s->tcap);
        }
        uint8_t *d = s->text + s->tlen;
        if (s->line_start) {
            if (short_prefix)
                memcpy(d, prefix, 16);   /* past plen: overwritten by the line, or spare */
            else
                memcpy(d, prefix, plen);
            d += plen;
        }
        memcpy(d, b + i, end - i);
        s->tlen = (size_t) (d - s->text) + (end - i);
        s->line_start = nl != NULL;
        i = end;
    }
    if (n)
        e->print_mid = s->line_start ? NULL : s;
    if (prefix != pre)
        free(prefix);
    return s->tlen - start;
}

/*  Queues a step.output event of what stream si holds. */
static void
s_emit_chunk(evr_eng_step_t *st, int si)
{
    evr_eng_stream_t *s = &st->out[si];
    if (s->raw_in_buf == 0 && s->len == 0)
        return;
    evr_event_t *ev = evr_eng_emit(st->job, EVR_EV_STEP_OUTPUT, st);
    ev->data.stream = evr_strdup(evr_eng_stream_names[si]);
    ev->data.offset = s->raw_off;
    ev->data.raw = (uint32_t) s->raw_in_buf;
    ev->data.bytes.len = (uint32_t) s->len;
    if (st->job->eng->opts.print && s->len)   /* the text stays with the stream: no copy */
        evr_eng_after_soon(st->job->eng, si ? s_print_stderr : s_print_stdout, st, NULL,
                           s_layout(st, s, s->buf, s->len));
    if (s->len >= S_GIVE_MIN) {
        /* bulk: the event takes the buffer itself (shrunk in place), the
           stream a new one, not a copy of 64 KiB per chunk.  The new one
           holds a chunk as it comes without masks: the size of the
           buffers the committed events free, so malloc hands those back
           (a larger one grew the heap and faulted in fresh pages) */
        ev->data.bytes.data = evr_realloc(s->buf, s->len);
        s->cap = EVR_OUTPUT_CHUNK_MAX;
        s->buf = evr_malloc(s->cap);
    }
    else {
        ev->data.bytes.data = evr_malloc(s->len ? s->len : 1);
        memcpy(ev->data.bytes.data, s->buf, s->len);
    }
    s->raw_off += s->raw_in_buf;
    s->raw_in_buf = 0;
    s->len = 0;
}

/*  Queues a step.output event of what stream si holds; with final, also
    of the bytes the masker held back (in more than one event when their
    masks would not fit in one: evr_mask_limit). */
void
evr_eng_emit_output(evr_eng_step_t *st, int si, bool final)
{
    evr_eng_stream_t *s = &st->out[si];
    do {
        if (final && evr_mask_pending(s->mask))
            s->raw_in_buf += evr_mask_feed(s->mask, NULL, 0, true, &s->buf, &s->len, &s->cap);
        s_emit_chunk(st, si);
    } while (final && evr_mask_pending(s->mask));
}


/*  Keeps the first line of the step's stderr (evr_eng_step_t.err_head),
    which may come in any pieces (catatonit writes its error in three). */
static void
s_err_head(evr_eng_step_t *st, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len && !st->err_head_done; i++) {
        if (data[i] == '\n' || st->err_head_len >= EVR_ENG_ERR_HEAD - 1)
            st->err_head_done = true;
        else
            st->err_head[st->err_head_len++] = (char) data[i];
    }
    st->err_head[st->err_head_len] = '\0';
}

void
evr_eng_on_output(int stream, const uint8_t *data, size_t len, void *arg)
{
    evr_eng_step_t *st = evr_eng_live(arg);
    if (!st)
        return;   /* about an earlier attempt */
    evr_eng_mark_started(st);   /* output proves it runs: step.started comes first */
    int si = stream == 1 ? 0 : 1;
    evr_eng_stream_t *s = &st->out[si];
    if (si == 1)
        s_err_head(st, data, len);
    /* whole lines the other stream holds came first: their event goes
       first, so stdout and stderr keep their order as the executor read
       them, line by line (a part of a line waits: streams that switch
       within lines make no event for each switch) */
    evr_eng_stream_t *o = &st->out[1 - si];
    if (len && o->len && o->buf[o->len - 1] == '\n')
        s_emit_chunk(st, 1 - si);
    while (len > 0) {
        size_t room = EVR_OUTPUT_CHUNK_MAX - (size_t) s->raw_in_buf;
        size_t take = len < room ? len : room;
        if (s->len == 0 && s->raw_in_buf == 0)
            s->since = evr_mono_ns();
        s->raw_in_buf += evr_mask_feed(s->mask, data, take, false, &s->buf, &s->len, &s->cap);
        data += take;
        len -= take;
        while (s->raw_in_buf >= EVR_OUTPUT_CHUNK_MAX || s->len >= EVR_OUTPUT_CHUNK_MAX) {
            s_emit_chunk(st, si);
            /* what the masker kept back for want of room (evr_mask_limit) */
            s->since = evr_mono_ns();
            s->raw_in_buf += evr_mask_feed(s->mask, NULL, 0, false, &s->buf, &s->len, &s->cap);
        }
    }
}

/* ----------------------------------------------------------------- steps */


void
evr_eng_step_note(evr_eng_step_t *st, const char *about, const char *text)
{
    evr_eng_stream_t *s = &st->out[1];
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        char *line = evr_asprintf("evrun: %s: %.*s\n", about, (int) n, p);
        s->raw_in_buf += evr_mask_feed(s->mask, (const uint8_t *) line, strlen(line), true,
                                       &s->buf, &s->len, &s->cap);
        free(line);
        p += n + (p[n] == '\n');
    }
    evr_eng_emit_output(st, 1, true);
}

void
evr_eng_step_log(const evr_eng_step_t *st, const char *fmt, ...)
{
    if (!st->job->eng->opts.print)
        return;
    char buf[2 * EVR_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* a last line without a newline, this step's or another's, is ended
       first (evr_eng_print): the status line does not go on after it */
    evr_eng_print(st->job->eng, "%s > %s", st->spec->name, buf);
}

void
evr_eng_set_reason(evr_eng_step_t *st, const char *fmt, ...)
{
    if (st->reason)
        return;   /* the first reason is the cause */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *buf = evr_malloc((size_t) (n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(buf, (size_t) (n < 0 ? 0 : n) + 1, fmt, ap);
    va_end(ap);
    /* masked whole, before the cut: a reason may quote what the step made
       (an artifact's link target, a file name), which may hold a secret */
    const evr_eng_job_t *job = st->job;
    st->reason = evr_mask_text((const char *const *) job->secrets, job->nsecrets, buf);
    free(buf);
    evr_text_fit(st->reason, EVR_REASON_MAX);   /* the protocol's limit, "…" last */
}

void
evr_eng_step_drop_stream(evr_eng_step_t *st)
{
    st->attach_done = true;   /* its end is of no interest now */
    if (st->attach) {
        void *h = st->attach;
        st->attach = NULL;
        st->job->ex->ops->detach(st->job->ex, h);
    }
}

void
evr_eng_step_end_now(evr_eng_step_t *st)
{
    st->exit_code = -1;
    st->exit_known = true;
    evr_eng_step_drop_stream(st);
    evr_eng_maybe_end(st);
}

/*  An executor call of the step's start failed: the step ends failed
    without having run. */
static void
s_step_broken(evr_eng_step_t *st, const char *what, const evr_exec_result_t *r)
{
    evr_eng_set_reason(st, "%s: %s", what, r->msg);
    evr_eng_step_end_now(st);
}

void
evr_eng_on_exit(const evr_exec_result_t *r, void *arg)
{
    evr_eng_step_t *st = evr_eng_live_end(arg);
    if (!st)
        return;   /* about an earlier attempt */
    if (st->exit_known)
        return;
    if (r->rc) {
        st->lost = r->not_found || r->lost;   /* gone, or its supervisor killed */
        evr_eng_set_reason(st, "waiting for the %s: %s", st->job->ex->ops->unit_word, r->msg);
        st->exit_code = -1;
        /* its end was seen, and the wait failed after (podman's service gone) */
        uint64_t now_wall = evr_now_ns(), now = evr_mono_ns();
        if (r->finished_at && r->finished_at < now_wall && now_wall - r->finished_at < now)
            st->exited_at = now - (now_wall - r->finished_at);
    }
    else {
        st->exit_code = r->exit_code;
        st->oom_killed = r->oom_killed;
        st->signal = r->signal;
    }
    st->exit_known = true;
    /* podman's FinishedAt of a fast step may come before the start
       recorded for it */
    st->t_end = !st->exited_at ? evr_mono_ns()
                : st->exited_at > st->t_start ? st->exited_at : st->t_start;
    if (st->state == EVR_ENG_STEP_REATTACHED) {   /* recovered while it ran: its log, now whole */
        evr_eng_step_to(st, EVR_ENG_STEP_RUNNING);
        evr_eng_replay(st);
    }
    /* PEEKING: the read under way ends first, then the log is read whole */
    evr_eng_maybe_end(st);
}

/*  The unit runs: on start's answer, or earlier when its first output
    arrives (the stream is attached before start, so output can come first).
    Records step.started once, then waits for the exit. */
static void
s_pause_running(void *arg, void *data, size_t len)
{
    (void) data;
    (void) len;
    evr_eng_test_pause("running", arg);
}

void
evr_eng_mark_started(evr_eng_step_t *st)
{
    if (st->state == EVR_ENG_STEP_STARTING)
        evr_eng_record_start(st, EVR_ENG_STEP_RUNNING, 0);
}

void
evr_eng_record_start(evr_eng_step_t *st, evr_eng_state_t to, uint64_t started)
{
    evr_eng_step_to(st, to);
    uint64_t now_wall = evr_now_ns(), now = evr_mono_ns();
    if (!started || started > now_wall || now_wall - started >= now)
        started = now_wall;
    st->t_start = now - (now_wall - started);
    evr_event_t *ev = evr_eng_emit(st->job, EVR_EV_STEP_STARTED, st);
    ev->time = started;
    ev->data.container_id = evr_strdup(st->unit_id ? st->unit_id : st->unit);
    st->job->ex->ops->wait(st->job->ex, st->unit, evr_eng_on_exit, evr_eng_tok(st));
    if (getenv("EVR_TEST_PAUSE_AT"))
        evr_eng_after(st->job->eng, s_pause_running, st, NULL, 0);
    /* a cancel that came while starting (with on_failure: finish, another
       step's failure lets it run), or a pause while its start was under way */
    evr_eng_job_t *job = st->job;
    if (evr_eng_stopping(job) && !evr_eng_spared(st)) {
        st->cancelled = !job->timed_out;
        st->timed_out = job->timed_out;
        evr_eng_stop_step(st, job->killing);
    }
    else if (job->paused)
        evr_eng_step_freeze(st, true);
}

static void
s_on_started(const evr_exec_result_t *r, void *arg)
{
    evr_eng_step_t *st = evr_eng_live_end(arg);
    if (!st || evr_eng_step_done(st))
        return;   /* about an earlier attempt, or a step given up (evr_eng_step_abandon) */
    if (r->rc) {
        st->lost = st->lost || r->lost;   /* its supervisor killed before it answered */
        s_step_broken(st, "start", r);
        return;
    }
    if (st->state == EVR_ENG_STEP_STARTING)   /* crash tests: it runs, step.started not recorded */
        evr_eng_test_pause("started", st);
    evr_eng_mark_started(st);
}

/*  The stream of an ATTACHING step is set up: start it (or hold it while
    its job is paused). */
static void
s_attached(evr_eng_step_t *st)
{
    evr_eng_test_pause("attached", st);   /* a crash test kills the runner here */
    if (st->job->paused && !evr_eng_stopping(st->job)) {
        evr_eng_step_to(st, EVR_ENG_STEP_HELD);   /* evr_eng_step_release starts it on resume */
        return;
    }
    evr_eng_step_to(st, EVR_ENG_STEP_STARTING);
    st->job->ex->ops->start(st->job->ex, st->unit, s_on_started, evr_eng_tok(st));
}

void
evr_eng_on_attached(const evr_exec_result_t *r, void *arg)
{
    evr_eng_step_t *st = evr_eng_live(arg);
    if (st && st->state == EVR_ENG_STEP_EARLY_CREATED) {
        st->early_head = !r->rc;   /* a failed one ends: attached again at the turn */
        return;
    }
    if (!st || st->state != EVR_ENG_STEP_ATTACHING)
        return;   /* about an earlier attempt, or a step given up (evr_eng_step_abandon) */
    if (r->rc) {
        s_step_broken(st, "attach", r);
        return;
    }
    s_attached(st);
}

void
evr_eng_on_attach_end(const evr_exec_result_t *r, void *arg)
{
    evr_eng_step_t *st = evr_eng_live_end(arg);
    if (!st)
        return;   /* about an earlier attempt */
    st->attach = NULL;
    if (st->attach_done)
        return;
    if (st->state == EVR_ENG_STEP_EARLY_CREATED) {
        /* the stream set up ahead broke before the turn (it never
           started): attached again at the turn */
        st->early_head = false;
        return;
    }
    if (r->rc && st->state == EVR_ENG_STEP_ATTACHING) {
        /* it failed before it was set up: the unit never started */
        s_step_broken(st, "attach", r);
        return;
    }
    /* a stream that broke, at the transport or not, may have lost output:
       the step does not pass (unless its exit came first) */
    if (r->rc && !st->exit_known) {
        evr_eng_set_reason(st, "output stream: %s", r->msg);
        st->lost = st->lost || r->lost;   /* its supervisor killed: the wait says so too */
    }
    else if (!r->rc)
        evr_eng_test_pause("output_ended", st);   /* before the exit is read */
    st->attach_done = true;
    evr_eng_maybe_end(st);
}

evr_eng_tok_t *
evr_eng_tok(evr_eng_step_t *st)
{
    if (!st->toks || st->toks->attempt != st->attempt) {
        evr_eng_tok_t *t = evr_calloc(1, sizeof *t);
        t->st = st;
        t->attempt = st->attempt;
        t->next = st->toks;
        st->toks = t;
    }
    st->job->inflight++;
    return st->toks;
}

evr_eng_step_t *
evr_eng_live(void *tok)
{
    evr_eng_tok_t *t = tok;
    return t->attempt == t->st->attempt ? t->st : NULL;
}

evr_eng_step_t *
evr_eng_live_end(void *tok)
{
    evr_eng_tok_t *t = tok;
    t->st->job->inflight--;
    return evr_eng_live(tok);
}

static void
s_early_removed(const evr_exec_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    if (r->rc && !r->not_found)
        job->doubt = true;   /* its cleanup looks for it again */
    job->calls--;
}

void
evr_eng_attach(evr_eng_step_t *st)
{
    evr_exec_t *ex = st->job->ex;
    st->attach = ex->ops->attach(ex, st->unit, evr_eng_on_output, evr_eng_on_attached,
                                 evr_eng_on_attach_end, evr_eng_tok(st));
}

/*  The outcome of the step's create (r->id: the unit's id): attach, or
    wait for the turn of a step created ahead of it. */
static void
s_created(evr_eng_step_t *st, const evr_exec_result_t *r)
{
    evr_eng_job_t *job = st->job;
    if (r->rc)
        job->doubt = true;   /* a failed create may have made something */
    if (st->create_dropped) {
        /* skipped or ended while its create was under way (counted in
           calls by evr_eng_step_skip_early, evr_eng_step_abandon): what
           it made must not stay */
        st->create_dropped = false;
        job->calls--;
        if (!r->rc) {
            job->calls++;
            job->ex->ops->remove(job->ex, st->unit, s_early_removed, job);
        }
        return;
    }
    if (r->rc) {
        if (st->state == EVR_ENG_STEP_EARLY_CREATING) {
            /* reported when its turn comes, as a step that could not start */
            evr_eng_set_reason(st, "create: %s", r->msg);
            evr_eng_step_to(st, EVR_ENG_STEP_EARLY_FAILED);
            return;
        }
        s_step_broken(st, "create", r);
        return;
    }
    st->unit_id = evr_strdup(r->id);
    evr_eng_test_pause("after_create", st);
    if (st->state == EVR_ENG_STEP_EARLY_CREATING) {
        /* its stream is set up ahead too: its turn costs only the start */
        evr_eng_step_to(st, EVR_ENG_STEP_EARLY_CREATED);
        evr_eng_attach(st);
        return;
    }
    evr_eng_step_to(st, EVR_ENG_STEP_ATTACHING);
    evr_eng_attach(st);
}

/* ------------------------------------------------------ a taken name */

/*  A create that finds the step's name taken: the name is unique per job,
    step and attempt, so what holds it is this step's unit, from a create
    a killed runner sent and the executor carried out after the recovery
    looked for it.  It is inspected (s_on_taken) and taken when it was created
    and never started.  A name held by a create still under way (podman
    reserves it before the container exists), or by one that failed and
    freed it, is not shown yet: the step creates again after S_RETAKE_MS
    (a loop timer, st->retake_timer), S_RETAKES times at most.  The step
    stays CREATING (or EARLY_CREATING) meanwhile. */
#define S_RETAKE_MS 100
#define S_RETAKES 300

static void
s_retake_due(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_eng_step_t *st = arg;
    st->retake_timer = 0;
    evr_eng_do_create(st, NULL, 0);
}

/*  The unit holding the step's name, inspected. */
static void
s_on_taken(const evr_exec_result_t *r, void *arg)
{
    evr_eng_step_t *st = evr_eng_live_end(arg);
    if (!st)
        return;   /* about an earlier attempt */
    evr_exec_t *ex = st->job->ex;
    const char *unit = ex->ops->unit_word;
    if (st->create_dropped) {   /* given up meanwhile: what holds it goes */
        evr_exec_result_t gone = { .rc = r->rc ? r->rc : EVR_OK, .msg = r->msg };
        s_created(st, &gone);
        return;
    }
    if (r->not_found && st->retakes < S_RETAKES) {
        if (!st->retakes++)
            evr_eng_step_log(st, "%s %s: its name is held by a create under way; "
                             "waiting for it", unit, st->unit);
        st->retake_timer = evr_loop_timer_add(st->job->eng->loop, S_RETAKE_MS, s_retake_due,
                                              st);
        return;
    }
    if (r->not_found) {
        char hint[EVR_ERR_MAX / 2], msg[EVR_ERR_MAX + 96];
        ex->ops->remove_hint(ex, st->unit, hint, sizeof hint);
        snprintf(msg, sizeof msg, "the name %s stayed taken for %d s by a %s %s does not "
                 "show; remove it (%s) and retry", st->unit, S_RETAKES * S_RETAKE_MS / 1000,
                 unit, ex->ops->name, hint);
        evr_exec_result_t why = { .rc = r->rc, .msg = msg };
        s_created(st, &why);
        return;
    }
    if (r->rc || r->state == EVR_EXEC_CREATED) {
        s_created(st, r);
        return;
    }
    char msg[EVR_ERR_MAX + 64];
    snprintf(msg, sizeof msg, "%s %s exists already and is %s, not new", unit, st->unit,
             evr_exec_state_name(r->state));
    evr_exec_result_t why = { .rc = EVR_ERR_STATE, .msg = msg };
    s_created(st, &why);
}

static void
s_on_created(const evr_exec_result_t *r, void *arg)
{
    evr_eng_step_t *st = evr_eng_live_end(arg);
    if (!st)
        return;   /* about an earlier attempt */
    if (r->rc && r->exists)
        st->job->doubt = true;   /* another create made it */
    if (r->rc && r->exists && !st->create_dropped) {
        evr_exec_t *ex = st->job->ex;
        evr_eng_step_log(st, "%s %s exists: taking it", ex->ops->unit_word, st->unit);
        ex->ops->inspect(ex, st->unit, s_on_taken, evr_eng_tok(st));
        return;
    }
    s_created(st, r);
}

/*  What the step runs in, for its "starting" line: its image, or the
    executor's name when it has none (a process pipeline). */
static const char *
s_runs_in(const evr_eng_step_t *st)
{
    const char *image = st->spec->image ? st->spec->image : st->job->spec->image;
    return image ? image : st->job->ex->ops->name;
}

/*  The step's image was pulled (or its pull failed): its create goes on
    once the pull's events are committed. */
static void
s_image_came(void *arg)
{
    evr_eng_step_t *st = arg;
    evr_eng_after(st->job->eng, evr_eng_do_create, st, NULL, 0);
}

/*  Whether the step's image is there: its create goes on.  False while a
    pull runs (s_image_came creates it then), and for a pull that failed:
    the step fails without a unit, as one whose create failed. */
static bool
s_image_ready(evr_eng_step_t *st)
{
    evr_eng_job_t *job = st->job;
    const char *why;
    const char *image = st->spec->image ? st->spec->image : job->spec->image;
    int ready = evr_eng_image_need(job, image, evr_spec_step_pull(job->spec, st->spec),
                                   s_image_came, st, &why);
    st->pulling = ready == 0;
    if (ready >= 0)
        return ready > 0;
    evr_eng_set_reason(st, "%s", why);
    if (st->state == EVR_ENG_STEP_EARLY_CREATING)
        evr_eng_step_to(st, EVR_ENG_STEP_EARLY_FAILED);   /* reported at its turn */
    else
        evr_eng_step_end_now(st);
    return false;
}

/*  The variables every step gets, under the pipeline's env, args,
    secrets and the step's env (which may set the same names).  A job
    with a source adds EVRUN_SOURCE_URL, _REF and _SHA here. */
static void
s_predefined_env(const evr_eng_step_t *st, evr_strmap_t *env)
{
    const evr_eng_job_t *job = st->job;
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%u", st->attempt);
    evr_strmap_set(env, "CI", "true");
    evr_strmap_set(env, "EVRUN_JOB_ID", job->id);
    evr_strmap_set(env, "EVRUN_PIPELINE", job->spec->pipeline ? job->spec->pipeline : "");
    evr_strmap_set(env, "EVRUN_STEP", st->spec->name);
    evr_strmap_set(env, "EVRUN_ATTEMPT", attempt);
    evr_strmap_set(env, "EVRUN_RUNNER", job->eng->opts.runner_id ? job->eng->opts.runner_id
                                                                 : "local");
}

void
evr_eng_do_create(void *arg, void *data, size_t len)
{
    (void) data;
    (void) len;
    evr_eng_step_t *st = arg;
    evr_eng_job_t *job = st->job;
    if (st->create_dropped) {
        /* given up before the create was sent: nothing to wait for */
        st->create_dropped = false;
        job->calls--;
        return;
    }
    if (!s_image_ready(st))
        return;
    evr_eng_test_pause("before_create", st);
    evr_strmap_t env = { 0 };
    s_predefined_env(st, &env);
    for (uint32_t i = 0; i < job->env.n; i++)
        evr_strmap_set(&env, job->env.k[i], job->env.v[i]);
    evr_eng_secrets_env(st, &env);   /* registered by earlier steps (evr_step_chan.c) */
    for (uint32_t i = 0; i < st->spec->env.n; i++)
        evr_strmap_set(&env, st->spec->env.k[i], st->spec->env.v[i]);
    /* sources (issue 14): EVRUN_SOURCE_*; an untrusted step gets no secret */
    evr_eng_source_env(job, &env);
    evr_eng_failed_env(st, &env);   /* on_error, `when: on_failure | always` */
    evr_eng_outputs_env(st, &env);   /* EVRUN_OUT_<STEP>_<KEY> of the steps it needs */
    if (st->spec->untrusted) {
        evr_strmap_t kept = { 0 };
        for (uint32_t i = 0; i < env.n; i++) {
            bool secret = evr_eng_hooks_secret(job, env.k[i]);
            for (uint32_t k = 0; k < job->spec->secrets.n && !secret; k++)
                secret = !strcmp(env.k[i], job->spec->secrets.v[k]);
            if (!secret)
                evr_strmap_set(&kept, env.k[i], env.v[i]);
        }
        evr_strmap_free(&env);
        env = kept;
    }
    evr_limits_t limits;
    evr_spec_limits_merge(job->spec, st->spec, &limits);
    st->memory_limit = limits.memory;
    evr_exec_spec_t spec = {
        .name = st->unit,
        .job_id = job->no_ws ? NULL : job->id,
        .image = st->spec->image ? st->spec->image : job->spec->image,
        .script = st->spec->run,
        .env = &env,
        .network = evr_spec_step_network(job->spec, st->spec),
        .limits = &limits,
        .layout = evr_spec_has_source(job->spec) ? EVR_EXEC_LAYOUT_JOB
                                                 : EVR_EXEC_LAYOUT_WORKSPACE,
    };
    spec.mounts = evr_cache_mounts(job->caches, st->index, &spec.nmounts);
    spec.mounts_readonly = st->spec->untrusted;   /* it reads caches, never fills them */
    char *output = evr_eng_output_file(st);
    spec.output = output;
    spec.control_dir = evr_eng_chan_open(st);
    job->ex->ops->create(job->ex, &spec, s_on_created, evr_eng_tok(st));
    free(output);
    evr_strmap_free(&env);
    evr_rec_free(&evr_limits_type, &limits);
}

/*  evrun-<job id in lower case>-<step>-<attempt> (job->unit_prefix, then
    the rest).  Podman takes either case; the id is lower case as in
    every name evrun gave (the workspace volume's too, which recovery
    finds by it), and the step name keeps its case: steps "Build" and
    "build" are two steps, two units.  A matrix step's name takes its
    container form (evr_spec_step_unit_form; validation keeps it unique). */
char *
evr_eng_unit_name(const evr_eng_job_t *job, const evr_eng_step_t *st)
{
    /* a matrix step's name in its container form: build[OS=a] -> build.OS-a */
    char *form = evr_spec_step_unit_form(st->spec->name);
    char *u = evr_asprintf("%s%s-%u", job->unit_prefix, form, st->attempt);
    free(form);
    return u;
}

void
evr_eng_step_begin(evr_eng_step_t *st)
{
    evr_eng_job_t *job = st->job;
    evr_eng_step_to(st, EVR_ENG_STEP_CREATING);
    if (!st->attempt)
        st->attempt = 1;
    st->unit = evr_eng_unit_name(job, st);
    job->running++;
    evr_eng_emit(job, EVR_EV_STEP_QUEUED, st);
    evr_event_t *ev = evr_eng_emit(job, EVR_EV_STEP_STARTING, st);
    ev->data.container = evr_strdup(st->unit);
    evr_eng_step_log(st, "starting (%s)", s_runs_in(st));
    evr_eng_after(job->eng, evr_eng_do_create, st, NULL, 0);
}

void
evr_eng_step_skip(evr_eng_step_t *st, const char *reason)
{
    evr_eng_step_to(st, EVR_ENG_STEP_SKIPPED);
    evr_eng_chan_close(st);
    st->status = EVR_STEP_SKIPPED;
    st->reason = evr_strdup(reason);
    evr_text_fit(st->reason, EVR_REASON_MAX);   /* the protocol's limit, "…" last */
    evr_event_t *ev = evr_eng_emit(st->job, EVR_EV_STEP_SKIPPED, st);
    ev->data.reason = evr_strdup(st->reason);
    evr_eng_step_log(st, "skipped: %s", reason);
}

/*  The step after a running one: its intent recorded and its unit
    created now, so its turn costs only the start. */
void
evr_eng_step_prepare(evr_eng_step_t *st)
{
    evr_eng_job_t *job = st->job;
    evr_eng_step_to(st, EVR_ENG_STEP_EARLY_CREATING);
    if (!st->attempt)
        st->attempt = 1;
    st->unit = evr_eng_unit_name(job, st);
    evr_eng_emit(job, EVR_EV_STEP_QUEUED, st);
    evr_eng_emit(job, EVR_EV_STEP_STARTING, st)->data.container = evr_strdup(st->unit);
    evr_eng_after(job->eng, evr_eng_do_create, st, NULL, 0);
}

/*  An early step's turn: attach (or once its create is done), or end
    it when its create failed. */
void
evr_eng_step_launch(evr_eng_step_t *st)
{
    evr_eng_job_t *job = st->job;
    job->running++;
    evr_eng_step_log(st, "starting (%s)", s_runs_in(st));
    switch (st->state) {
    case EVR_ENG_STEP_EARLY_CREATING:
        evr_eng_step_to(st, EVR_ENG_STEP_CREATING);   /* s_created attaches */
        return;
    case EVR_ENG_STEP_EARLY_FAILED:   /* as a step that could not start */
        st->exit_code = -1;
        st->exit_known = st->attach_done = true;
        evr_eng_maybe_end(st);
        return;
    default:
        evr_eng_step_to(st, EVR_ENG_STEP_ATTACHING);
        if (!st->attach)
            evr_eng_attach(st);   /* none ahead (recovery's, or it broke) */
        else if (st->early_head)
            s_attached(st);       /* set up ahead: start it */
        /* else its head, when it comes, starts it (evr_eng_on_attached) */
        st->early_head = false;
        return;
    }
}

void
evr_eng_step_skip_early(evr_eng_step_t *st, const char *reason)
{
    evr_eng_job_t *job = st->job;
    bool exists = st->state == EVR_ENG_STEP_EARLY_CREATED;
    if (st->state == EVR_ENG_STEP_EARLY_CREATING && st->retake_timer) {
        /* waiting to create again (a taken name): nothing was made */
        evr_loop_timer_cancel(job->eng->loop, st->retake_timer);
        st->retake_timer = 0;
    }
    else if (st->state == EVR_ENG_STEP_EARLY_CREATING) {
        st->create_dropped = true;   /* the create's answer (s_created) removes what it made */
        job->calls++;
    }
    free(st->reason);
    st->reason = NULL;
    evr_eng_step_drop_stream(st);   /* the one set up ahead */
    evr_eng_step_skip(st, reason);
    if (exists && !job->eng->opts.keep) {
        job->calls++;
        job->ex->ops->remove(job->ex, st->unit, s_early_removed, job);
    }
}

/*  A step of a job that stops, whose start is under way: ended now, as a
    stop would end it once started (cancelled, timed out), so that an
    executor call that does not answer (a create, an attach's head, a
    start) holds neither the job's timeout nor a cancel.  A create under
    way is dropped: its answer removes what it made, and the job's
    cleanup waits for it (job->calls).  A unit already created is removed
    after step.finished, as any step's; the answers of its attach and
    start, if they come, find the step over. */
void
evr_eng_step_abandon(evr_eng_step_t *st, const char *why)
{
    evr_eng_job_t *job = st->job;
    const char *call;
    switch (st->state) {
    case EVR_ENG_STEP_CREATING:
        call = st->pulling ? "image pull" : "create";
        if (st->retake_timer) {   /* waiting to create again (a taken name) */
            evr_loop_timer_cancel(job->eng->loop, st->retake_timer);
            st->retake_timer = 0;
        }
        else if (!st->create_dropped) {
            st->create_dropped = true;
            job->calls++;
        }
        break;
    case EVR_ENG_STEP_ATTACHING:
        call = "attach";
        break;
    case EVR_ENG_STEP_STARTING:
        call = "start";
        break;
    default:
        return;
    }
    st->timed_out = job->timed_out;
    st->cancelled = !job->timed_out;
    evr_eng_set_reason(st, "stopped before its %s started (the %s had not answered): %s",
                       job->ex->ops->unit_word, call, why);
    evr_eng_step_end_now(st);
}

/* ------------------------------------------------------ held by a pause */

void
evr_eng_step_release(evr_eng_step_t *st)
{
    if (st->state != EVR_ENG_STEP_HELD)
        return;
    evr_eng_step_to(st, EVR_ENG_STEP_STARTING);
    st->job->ex->ops->start(st->job->ex, st->unit, s_on_started, evr_eng_tok(st));
}

void
evr_eng_step_skip_held(evr_eng_step_t *st, const char *reason)
{
    evr_eng_job_t *job = st->job;
    evr_eng_step_drop_stream(st);
    job->running--;
    free(st->reason);
    st->reason = NULL;
    evr_eng_step_skip(st, reason);
    if (!job->eng->opts.keep) {
        job->calls++;
        job->ex->ops->remove(job->ex, st->unit, s_early_removed, job);
    }
}
