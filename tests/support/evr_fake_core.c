/*  evr_fake_core.c: the fake executor's machinery (see evr_exec_fake.h).

    Every call becomes an item of one FIFO queue that a single loop timer
    pumps: an operation is carried out and answered when its item comes up
    (so never from inside the call), and the output of a unit is queued to
    its followers as it is printed.  Items added while the pump runs wait
    for its next run, as the loop's own timers do, so an engine's turn
    sees one round of answers at a time.  Streams (attach, logs) are kept
    until the fake is destroyed, so that a stale handle is caught as a
    breach of the contract rather than a crash.  A wait or a stop that
    must see its unit exit is parked until then.  A unit carries out its
    program (evr_fake_prog.h) on loop timers: a pause cancels the timer
    and keeps what was left of the sleep.
*/
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "evr_fake_int.h"

bool
evr_fake_match(const char *pattern, const char *name)
{
    return !pattern || fnmatch(pattern, name ? name : "", 0) == 0;
}

void
evr_fake_violation(evr_exec_fake_t *f, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "evr_exec_fake: contract breach: %s\n", buf);
    f->viol = evr_realloc(f->viol, (f->nviol + 1) * sizeof *f->viol);
    f->viol[f->nviol++] = evr_strdup(buf);
}

/* ------------------------------------------------------------ the queue */

static void s_pump(evr_loop_t *loop, void *arg);

/*  The pump's timer set for the earliest item due (none while it runs:
    it sets it when it ends). */
void
evr_fake_arm(evr_exec_fake_t *f)
{
    if (f->in_pump)
        return;
    uint64_t due = UINT64_MAX;
    for (evr_fake_item_t *it = f->queue; it; it = it->next)
        if (!it->held && it->due < due)
            due = it->due;
    if (f->pump_timer && f->pump_due == due)
        return;
    evr_loop_timer_cancel(f->base.loop, f->pump_timer);
    f->pump_timer = 0;
    if (due == UINT64_MAX)
        return;
    uint64_t now = evr_mono_ns();
    uint64_t ms = due > now ? (due - now + 999999) / 1000000 : 0;
    f->pump_timer = evr_loop_timer_add(f->base.loop, ms, s_pump, f);
    f->pump_due = due;
}

void
evr_fake_enqueue(evr_exec_fake_t *f, evr_fake_item_t *it)
{
    it->seq = f->next_seq++;
    if (!it->due)
        it->due = evr_mono_ns();
    it->next = NULL;
    *f->qtail = it;
    f->qtail = &it->next;
    evr_fake_arm(f);
}

void
evr_fake_enqueue_front(evr_exec_fake_t *f, evr_fake_item_t *it)
{
    it->seq = f->next_seq++;
    if (!it->due)
        it->due = evr_mono_ns();
    it->next = f->queue;
    if (!f->queue)
        f->qtail = &it->next;
    f->queue = it;
    evr_fake_arm(f);
}

void
evr_fake_item_free(evr_fake_item_t *it)
{
    free(it->fault_msg);
    free(it->name);
    free(it->job_id);
    free(it->path);
    free(it->script);
    evr_strmap_free(&it->env);
    free(it->data);
    free((char *) it->end.msg);
    free((char *) it->end.id);
    free((char *) it->end.names);
    free(it);
}

evr_fake_unit_t *
evr_fake_unit(const evr_exec_fake_t *f, const char *name)
{
    for (evr_fake_unit_t *u = f->units; u; u = u->next)
        if (strcmp(u->name, name) == 0)
            return u;
    return NULL;
}

/*  The waits and stops parked for unit u come up again, knowing how it
    ended (it may be removed before they run). */
static void
s_unpark(evr_exec_fake_t *f, const evr_fake_unit_t *u)
{
    evr_fake_item_t **pp = &f->parked;
    while (*pp) {
        evr_fake_item_t *it = *pp;
        if (strcmp(it->name, u->name) == 0) {
            it->exited = u->state == EVR_EXEC_EXITED;
            it->exit_code = u->exit_code;
            it->signal = u->signal;
            it->oom = u->oom;
            *pp = it->next;
            it->due = 0;
            if (f->wait_early)
                evr_fake_enqueue_front(f, it);
            else
                evr_fake_enqueue(f, it);
        }
        else
            pp = &it->next;
    }
}

/* --------------------------------------------------------------- streams */

/*  Queues the end of s (once): done with rc (EVR_OK, or the fake's error
    code with msg). */
void
evr_fake_end(evr_exec_fake_t *f, evr_fake_stream_t *s, bool ok, bool not_found, bool transport,
      const char *msg)
{
    if (s->ended)
        return;
    s->ended = true;
    s->live = false;
    evr_fake_item_t *it = evr_calloc(1, sizeof *it);
    it->kind = EVR_FAKE_I_END;
    it->s = s;
    it->name = evr_strdup(s->name);
    it->end.rc = ok ? EVR_OK : f->err_rc;
    it->end.not_found = not_found;
    it->end.transport = transport;
    it->end.msg = evr_strdup(msg ? msg : "");
    evr_fake_enqueue(f, it);
}

static void
s_out(evr_exec_fake_t *f, evr_fake_stream_t *s, int stream, const uint8_t *data, size_t len)
{
    if (s->ended || !len)
        return;
    evr_fake_item_t *it = evr_calloc(1, sizeof *it);
    it->kind = EVR_FAKE_I_OUT;
    it->s = s;
    it->name = evr_strdup(s->name);
    it->stream = stream;
    it->data = evr_malloc(len);
    memcpy(it->data, data, len);
    it->len = len;
    evr_fake_enqueue(f, it);
}

static void
s_run_end(evr_exec_fake_t *f, evr_fake_item_t *it)
{
    evr_fake_stream_t *s = it->s;
    if (s->done_called || s->dead)
        return;
    s->done_called = true;
    evr_exec_result_t r = it->end;
    if (s->detached && !r.rc) {
        r.rc = f->err_rc;
        r.msg = "the stream was detached";
    }
    if (!f->mute)
        s->done(&r, s->arg);
}

static void
s_run_out(evr_exec_fake_t *f, evr_fake_item_t *it)
{
    evr_fake_stream_t *s = it->s;
    if (s->dead || s->done_called || s->detached)
        return;
    size_t n = it->len;
    bool drop = s->drop_after != UINT64_MAX && s->passed + n >= s->drop_after;
    if (drop)
        n = (size_t) (s->drop_after - s->passed);
    s->passed += n;
    if (n && !f->mute)
        s->out(it->stream, it->data, n, s->arg);
    if (drop && !s->done_called && !s->dead && !s->detached) {
        s->ended = true;
        s->live = false;
        s->done_called = true;
        evr_exec_result_t r = { .rc = f->err_rc, .transport = true,
                                .msg = "fake: the output stream broke" };
        if (!f->mute)
            s->done(&r, s->arg);
    }
}

/* ----------------------------------------------------------------- units */

static void s_unit_run(evr_fake_unit_t *u);

static void
s_unit_tick(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_fake_unit_t *u = arg;
    u->timer = 0;
    s_unit_run(u);
}

static void
s_unit_sleep(evr_fake_unit_t *u, uint64_t ms)
{
    u->wake_at = evr_mono_ns() + ms * 1000000ull;
    u->timer = evr_loop_timer_add(u->f->base.loop, ms, s_unit_tick, u);
}

/*  The unit has ended: its followers' streams end, its waits answer. */
static void
s_unit_exit(evr_fake_unit_t *u, int64_t code, int sig, bool oom)
{
    evr_exec_fake_t *f = u->f;
    evr_loop_timer_cancel(f->base.loop, u->timer);
    evr_loop_timer_cancel(f->base.loop, u->kill_timer);
    u->timer = u->kill_timer = 0;
    u->state = EVR_EXEC_EXITED;
    u->exit_code = code;
    u->signal = sig;
    u->oom = oom;
    for (evr_fake_stream_t *s = f->streams; s; s = s->next)
        if (s->live && !s->logs && strcmp(s->name, u->name) == 0)
            evr_fake_end(f, s, true, false, false, NULL);
    s_unpark(f, u);
}

static void
s_unit_print(evr_fake_unit_t *u, int stream, const uint8_t *data, size_t len)
{
    evr_exec_fake_t *f = u->f;
    if (!len)
        return;
    if (u->nlog == u->logcap) {
        u->logcap = u->logcap ? u->logcap * 2 : 16;
        u->log = evr_realloc(u->log, u->logcap * sizeof *u->log);
    }
    evr_fake_rec_t *r = &u->log[u->nlog++];
    r->stream = stream;
    r->data = evr_malloc(len);
    memcpy(r->data, data, len);
    r->len = len;
    u->printed[stream == 1 ? 0 : 1] += len;
    for (evr_fake_stream_t *s = f->streams; s; s = s->next)
        if (s->live && !s->logs && strcmp(s->name, u->name) == 0)
            s_out(f, s, stream, data, len);
}

evr_fake_ws_t *
evr_fake_ws_of(const evr_exec_fake_t *f, const char *job_id)
{
    for (size_t i = 0; job_id && i < f->nws; i++)
        if (strcasecmp(evr_fake_ws_job(f->ws[i]), job_id) == 0)
            return f->ws[i];
    return NULL;
}

static void
s_unit_act(evr_fake_unit_t *u, const evr_fake_act_t *a)
{
    evr_fake_ws_t *w = evr_fake_ws_of(u->f, u->job_id);
    char msg[1100];
    switch (a->kind) {
    case EVR_FAKE_A_OUT:
        s_unit_print(u, a->stream, a->data, a->len);
        break;
    case EVR_FAKE_A_STATUS:
        u->status = a->code;
        break;
    case EVR_FAKE_A_FILE:
        if (w)
            evr_fake_ws_write(w, a->path, a->data, a->len, a->append);
        else {
            int n = snprintf(msg, sizeof msg, "sh: cannot create %s: no workspace\n", a->path);
            s_unit_print(u, 2, (const uint8_t *) msg, (size_t) n);
        }
        u->status = w ? 0 : 2;
        break;
    case EVR_FAKE_A_CAT: {
        size_t len = 0;
        const uint8_t *x = w ? evr_fake_ws_read(w, a->path, &len) : NULL;
        if (x)
            s_unit_print(u, a->stream, x, len);
        else {
            int n = snprintf(msg, sizeof msg, "cat: %s: No such file or directory\n", a->path);
            s_unit_print(u, 2, (const uint8_t *) msg, (size_t) n);
        }
        u->status = x ? 0 : 1;
        break;
    }
    default:
        break;
    }
}

/*  Carries out the program from where it is until a sleep or the exit. */
static void
s_unit_run(evr_fake_unit_t *u)
{
    while (u->state == EVR_EXEC_RUNNING && u->pc < u->prog.n) {
        const evr_fake_act_t *a = &u->prog.v[u->pc++];
        if (a->kind == EVR_FAKE_A_SLEEP) {
            if (a->ms != EVR_FAKE_FOREVER)
                s_unit_sleep(u, a->ms);
            return;
        }
        if (a->kind == EVR_FAKE_A_EXIT) {
            s_unit_exit(u, a->code < 0 ? u->status : a->code, a->sig, u->prog.oom);
            return;
        }
        s_unit_act(u, a);
    }
    if (u->state == EVR_EXEC_RUNNING)
        s_unit_exit(u, u->status, 0, false);
}

void
evr_fake_unit_start(evr_fake_unit_t *u)
{
    u->state = EVR_EXEC_RUNNING;
    u->started_at = evr_now_ns();
    u->pc = 0;
    u->status = 0;
    s_unit_sleep(u, 0);   /* it begins in a later turn */
}

void
evr_fake_unit_freeze(evr_fake_unit_t *u, bool frozen)
{
    if (frozen) {
        u->state = EVR_EXEC_PAUSED;
        u->slept = u->timer != 0;
        if (u->timer) {
            uint64_t now = evr_mono_ns();
            u->left_ms = u->wake_at > now ? (u->wake_at - now) / 1000000 : 0;
            evr_loop_timer_cancel(u->f->base.loop, u->timer);
            u->timer = 0;
        }
        return;
    }
    u->state = EVR_EXEC_RUNNING;
    if (u->slept)
        s_unit_sleep(u, u->left_ms);
    u->slept = false;
    if (u->term_pending) {
        u->term_pending = false;
        if (!u->prog.ignore_term)
            s_unit_exit(u, 143, 0, false);
    }
}

static void
s_unit_killed(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_fake_unit_t *u = arg;
    u->kill_timer = 0;
    if (u->state == EVR_EXEC_RUNNING || u->state == EVR_EXEC_PAUSED)
        s_unit_exit(u, 137, 0, false);
}

/*  SIGTERM (a frozen unit sees it when thawed), SIGKILL after the grace;
    grace_s < 0: SIGKILL now. */
static void
s_unit_term(evr_fake_unit_t *u, int grace_s)
{
    evr_exec_fake_t *f = u->f;
    if (grace_s < 0) {
        s_unit_exit(u, 137, 0, false);
        return;
    }
    if (!u->kill_timer)
        u->kill_timer = evr_loop_timer_add(f->base.loop, (uint64_t) grace_s * f->grace_ms_per_s,
                                           s_unit_killed, u);
    if (u->state == EVR_EXEC_PAUSED)
        u->term_pending = true;
    else if (!u->prog.ignore_term)
        s_unit_exit(u, 143, 0, false);
}

evr_fake_unit_t *
evr_fake_unit_new(evr_exec_fake_t *f, const char *name, const char *job_id, const char *script,
           const evr_strmap_t *env)
{
    evr_fake_unit_t *u = evr_calloc(1, sizeof *u);
    u->f = f;
    u->name = evr_strdup(name);
    u->job_id = job_id ? evr_strdup(job_id) : NULL;
    u->id = evr_asprintf("fake%llu", (unsigned long long) ++f->next_id);
    u->state = EVR_EXEC_CREATED;
    const evr_fake_behaverec_t *b = f->behaves;
    while (b && !evr_fake_match(b->pattern, name))
        b = b->next;
    if (b)
        evr_fake_prog_behave(&u->prog, &b->b);
    else
        evr_fake_prog_script(&u->prog, script, env);
    evr_fake_unit_t **pp = &f->units;
    while (*pp)
        pp = &(*pp)->next;
    *pp = u;
    return u;
}

void
evr_fake_unit_free(evr_exec_fake_t *f, evr_fake_unit_t *u)
{
    for (evr_fake_unit_t **pp = &f->units; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    evr_loop_timer_cancel(f->base.loop, u->timer);
    evr_loop_timer_cancel(f->base.loop, u->kill_timer);
    for (size_t i = 0; i < u->nlog; i++)
        free(u->log[i].data);
    free(u->log);
    evr_fake_prog_free(&u->prog);
    free(u->name);
    free(u->job_id);
    free(u->id);
    free(u);
}

/* ----------------------------------------------------- carrying out ops */

static char *
s_dup(const char *s)
{
    return s ? evr_strdup(s) : NULL;
}

/*  Answers the operation of it with r: now, or (a LATE or HOLD_ANSWER
    fault) as an item of its own, the effect having taken place. */
static void
s_answer(evr_exec_fake_t *f, const evr_fake_item_t *it, const evr_exec_result_t *r)
{
    if (!it->fn || f->mute)
        return;
    if (it->fault != EVR_FAKE_LATE && it->fault != EVR_FAKE_HOLD_ANSWER) {
        it->fn(r, it->arg);
        return;
    }
    evr_fake_item_t *a = evr_calloc(1, sizeof *a);
    a->kind = EVR_FAKE_I_ANSWER;
    a->op = it->op;
    a->name = evr_strdup(it->name);
    a->fn = it->fn;
    a->arg = it->arg;
    a->end = *r;
    a->end.msg = s_dup(r->msg);
    a->end.id = s_dup(r->id);
    a->end.names = s_dup(r->names);
    a->held = it->fault == EVR_FAKE_HOLD_ANSWER;
    a->due = it->fault == EVR_FAKE_LATE ? evr_mono_ns() + it->late_ms * 1000000ull : 0;
    evr_fake_enqueue(f, a);
}

/*  The error an injected fault (or msg, with not_found) answers. */
static void
s_answer_err(evr_exec_fake_t *f, const evr_fake_item_t *it, bool not_found, const char *msg)
{
    evr_exec_result_t r = { .rc = f->err_rc, .not_found = not_found, .msg = msg,
                            .transport = it->fault == EVR_FAKE_TRANSPORT };
    s_answer(f, it, &r);
}

/*  An injected error: true when it answered. */
static bool
s_faulted(evr_exec_fake_t *f, const evr_fake_item_t *it)
{
    if (it->fault == EVR_FAKE_FAIL || it->fault == EVR_FAKE_TRANSPORT) {
        s_answer_err(f, it, false, it->fault_msg ? it->fault_msg : "fake: injected failure");
        return true;
    }
    if (it->fault == EVR_FAKE_NOT_FOUND) {
        s_answer_err(f, it, true, it->fault_msg ? it->fault_msg : "fake: injected: no such unit");
        return true;
    }
    if (it->fault == EVR_FAKE_LOST) {
        evr_exec_result_t r = { .rc = f->err_rc, .lost = true,
                                .msg = it->fault_msg ? it->fault_msg
                                                     : "fake: injected: its supervisor was killed" };
        s_answer(f, it, &r);
        return true;
    }
    return false;
}

static void
s_park(evr_exec_fake_t *f, evr_fake_item_t *it)
{
    it->next = f->parked;
    f->parked = it;
}

static void
s_do_create(evr_exec_fake_t *f, evr_fake_item_t *it)
{
    char msg[512];
    if (s_faulted(f, it))
        return;
    if (it->fault == EVR_FAKE_EXISTS || evr_fake_unit(f, it->name)) {
        snprintf(msg, sizeof msg, "fake: the name %s is in use", it->name);
        evr_exec_result_t r = { .rc = f->err_rc, .exists = true, .msg = msg };
        s_answer(f, it, &r);
        return;
    }
    if (it->job_id && !evr_fake_ws_of(f, it->job_id))
        evr_fake_violation(f, "create %s: job %s has no workspace (workspace_create first)", it->name,
                    it->job_id);
    evr_fake_unit_t *u = evr_fake_unit_new(f, it->name, it->job_id, it->script, &it->env);
    evr_exec_result_t r = { .id = u->id };
    s_answer(f, it, &r);
}

/*  Kills what runs, ends what follows it, answers its waits, frees it. */
static void
s_unit_remove(evr_exec_fake_t *f, evr_fake_unit_t *u)
{
    if (u->state == EVR_EXEC_RUNNING || u->state == EVR_EXEC_PAUSED)
        s_unit_exit(u, 137, 0, false);
    for (evr_fake_stream_t *s = f->streams; s; s = s->next)
        if (s->live && strcmp(s->name, u->name) == 0)
            evr_fake_end(f, s, false, true, false, "fake: the unit was removed");
    s_unpark(f, u);
    evr_fake_unit_free(f, u);
}

/*  start, pause, resume, stop, remove, inspect, wait: of one unit. */
static void
s_do_unit_op(evr_exec_fake_t *f, evr_fake_item_t *it)
{
    evr_fake_unit_t *u = evr_fake_unit(f, it->name);
    char msg[512];
    /* a wait answers once its unit has exited or is gone, its fault then */
    if (it->op == EVR_FAKE_WAIT && u && u->state != EVR_EXEC_EXITED) {
        s_park(f, it);
        return;
    }
    if (s_faulted(f, it))
        return;
    if (it->exited) {   /* unparked: how it ended, though removed since */
        evr_exec_result_t r = { .exit_code = it->exit_code, .signal = it->signal,
                                .oom_killed = it->oom, .state = EVR_EXEC_EXITED };
        s_answer(f, it, &r);
        return;
    }
    if (!u) {
        snprintf(msg, sizeof msg, "fake: no such unit: %s", it->name);
        evr_exec_result_t r = { .rc = f->err_rc, .not_found = true, .msg = msg,
                                .state = EVR_EXEC_ABSENT };
        s_answer(f, it, &r);
        return;
    }
    const char *want = NULL;
    switch (it->op) {
    case EVR_FAKE_START:
        if (u->state != EVR_EXEC_CREATED)
            want = "created";
        else
            evr_fake_unit_start(u);
        break;
    case EVR_FAKE_PAUSE:
        if (u->state != EVR_EXEC_RUNNING)
            want = "running";
        else
            evr_fake_unit_freeze(u, true);
        break;
    case EVR_FAKE_RESUME:
        if (u->state != EVR_EXEC_PAUSED)
            want = "paused";
        else
            evr_fake_unit_freeze(u, false);
        break;
    case EVR_FAKE_STOP:
        if (u->state == EVR_EXEC_RUNNING || u->state == EVR_EXEC_PAUSED)
            s_unit_term(u, it->grace_s);
        if (u->state == EVR_EXEC_RUNNING || u->state == EVR_EXEC_PAUSED) {
            s_park(f, it);   /* answers once it has exited */
            return;
        }
        break;
    case EVR_FAKE_REMOVE:
        s_unit_remove(f, u);
        u = NULL;
        break;
    default:
        break;
    }
    if (want) {
        snprintf(msg, sizeof msg, "fake: unit %s is %s, not %s", u->name,
                 evr_exec_state_name(u->state), want);
        s_answer_err(f, it, false, msg);
        return;
    }
    evr_exec_result_t r = { .rc = EVR_OK };
    if (u) {
        r.id = u->id;
        r.state = u->state;
        r.exit_code = u->exit_code;
        r.signal = u->signal;
        r.oom_killed = u->oom;
        r.started_at = u->started_at;
    }
    s_answer(f, it, &r);
}

/*  attach: head, then the log so far, then the output as it comes. */
static void
s_do_attach(evr_exec_fake_t *f, evr_fake_item_t *it)
{
    evr_fake_stream_t *s = it->s;
    if (s->detached || s->dead)
        return;   /* its end is queued */
    char msg[512];
    evr_exec_result_t r = { .rc = f->err_rc, .transport = it->fault == EVR_FAKE_TRANSPORT };
    evr_fake_unit_t *u = evr_fake_unit(f, it->name);
    if (it->fault == EVR_FAKE_FAIL || it->fault == EVR_FAKE_TRANSPORT)
        r.msg = it->fault_msg ? it->fault_msg : "fake: injected failure";
    else if (it->fault == EVR_FAKE_NOT_FOUND || !u) {
        snprintf(msg, sizeof msg, "fake: no such unit: %s", it->name);
        r.msg = msg;
        r.not_found = true;
    }
    if (r.msg) {
        if (!f->mute)
            s->head(&r, s->arg);
        evr_fake_end(f, s, false, r.not_found, r.transport, r.msg);
        return;
    }
    evr_exec_result_t ok = { .rc = EVR_OK };
    if (!f->mute)
        s->head(&ok, s->arg);
    u = evr_fake_unit(f, it->name);   /* head may have removed it */
    if (s->ended || s->detached)
        return;
    if (!u) {
        evr_fake_end(f, s, false, true, false, "fake: the unit was removed");
        return;
    }
    s->live = true;
    for (size_t i = 0; i < u->nlog; i++)
        s_out(f, s, u->log[i].stream, u->log[i].data, u->log[i].len);
    if (u->state == EVR_EXEC_EXITED)
        evr_fake_end(f, s, true, false, false, NULL);
}

static void
s_do_logs(evr_exec_fake_t *f, evr_fake_item_t *it)
{
    evr_fake_stream_t *s = it->s;
    if (s->detached || s->dead)
        return;
    evr_fake_unit_t *u = evr_fake_unit(f, it->name);
    char msg[512];
    if (it->fault == EVR_FAKE_FAIL || it->fault == EVR_FAKE_TRANSPORT) {
        evr_fake_end(f, s, false, false, it->fault == EVR_FAKE_TRANSPORT,
              it->fault_msg ? it->fault_msg : "fake: injected failure");
        return;
    }
    if (it->fault == EVR_FAKE_NOT_FOUND || !u) {
        snprintf(msg, sizeof msg, "fake: no such unit: %s", it->name);
        evr_fake_end(f, s, false, true, false, msg);
        return;
    }
    uint64_t skip[2] = { it->from[0], it->from[1] };
    for (size_t i = 0; i < u->nlog; i++) {
        const evr_fake_rec_t *rec = &u->log[i];
        uint64_t *k = &skip[rec->stream == 1 ? 0 : 1];
        if (*k >= rec->len) {
            *k -= rec->len;
            continue;
        }
        s_out(f, s, rec->stream, rec->data + *k, rec->len - (size_t) *k);
        *k = 0;
    }
    evr_fake_end(f, s, true, false, false, NULL);
}

/*  Names, one per line, into a new string. */
static char *
s_names(evr_exec_fake_t *f, const char *prefix, bool ws)
{
    size_t cap = 1, len = 0;
    char *out = evr_malloc(cap);
    out[0] = '\0';
    size_t n = ws ? f->nws : 0;
    const evr_fake_unit_t *u = ws ? NULL : f->units;
    for (size_t i = 0; ws ? i < n : u != NULL; i++) {
        const char *name = ws ? evr_fake_ws_job(f->ws[i]) : u->name;
        if (!ws)
            u = u->next;
        if (strncmp(name, prefix, strlen(prefix)) != 0)
            continue;
        size_t k = strlen(name);
        out = evr_realloc(out, cap += k + 1);
        for (size_t c = 0; c < k; c++)   /* workspaces as a backend may spell them */
            out[len + c] = ws && name[c] >= 'A' && name[c] <= 'Z' ? (char) (name[c] + 32)
                                                                  : name[c];
        len += k;
        out[len++] = '\n';
        out[len] = '\0';
    }
    return out;
}

static void
s_do_workspace(evr_exec_fake_t *f, evr_fake_item_t *it)
{
    char msg[EVR_ERR_MAX + 64];
    if (s_faulted(f, it))
        return;
    evr_fake_ws_t *w = evr_fake_ws_of(f, it->name);
    evr_exec_result_t r = { .rc = EVR_OK };
    char *names = NULL;
    if (it->op == EVR_FAKE_LIST || it->op == EVR_FAKE_WS_LIST) {
        r.names = names = s_names(f, it->name, it->op == EVR_FAKE_WS_LIST);
    }
    else if (it->op == EVR_FAKE_WS_CREATE && w) {
        snprintf(msg, sizeof msg, "fake: workspace of job %s exists", it->name);
        r = (evr_exec_result_t) { .rc = f->err_rc, .exists = true, .msg = msg };
    }
    else if (it->op == EVR_FAKE_WS_CREATE) {
        f->ws = evr_realloc(f->ws, (f->nws + 1) * sizeof *f->ws);
        f->ws[f->nws++] = evr_fake_ws_new(it->name);
    }
    else if (!w) {
        snprintf(msg, sizeof msg, "fake: job %s has no workspace", it->name);
        r = (evr_exec_result_t) { .rc = f->err_rc, .not_found = true, .msg = msg };
    }
    else if (it->op == EVR_FAKE_WS_REMOVE) {
        const evr_fake_unit_t *u = f->units;
        while (u && !(u->job_id && strcasecmp(u->job_id, it->name) == 0))
            u = u->next;
        if (u) {
            snprintf(msg, sizeof msg, "fake: workspace of job %s is in use by unit %s",
                     it->name, u->name);
            r = (evr_exec_result_t) { .rc = f->err_rc, .msg = msg };
        }
        else {
            size_t i = 0;
            while (f->ws[i] != w)
                i++;
            evr_fake_ws_destroy(&f->ws[i]);
            f->ws[i] = f->ws[--f->nws];
        }
    }
    else {   /* put */
        evr_err_t err;
        if (evr_fake_ws_unpack(w, it->path, &err)) {
            snprintf(msg, sizeof msg, "fake: put: %s", err.msg);
            r = (evr_exec_result_t) { .rc = f->err_rc, .msg = msg };
        }
    }
    s_answer(f, it, &r);
    free(names);
}

static void
s_do_get(evr_exec_fake_t *f, evr_fake_item_t *it)
{
    char msg[EVR_ERR_MAX + 64];
    if (s_faulted(f, it))
        return;
    const evr_fake_ws_t *w = evr_fake_ws_of(f, it->job_id);
    evr_err_t err;
    uint8_t *tar = NULL;
    size_t len = 0;
    evr_exec_result_t r = { .rc = EVR_OK };
    if (!evr_fake_unit(f, it->name)) {
        snprintf(msg, sizeof msg, "fake: no such unit: %s", it->name);
        r = (evr_exec_result_t) { .rc = f->err_rc, .not_found = true, .msg = msg };
    }
    else if (!w || evr_fake_ws_pack(w, it->path, &tar, &len, &err)) {
        snprintf(msg, sizeof msg, "fake: get %s: %s", it->path,
                 w ? err.msg : "the job has no workspace");
        r = (evr_exec_result_t) { .rc = f->err_rc, .not_found = true, .msg = msg };
    }
    for (size_t at = 0; !r.rc && at < len && !f->mute;) {
        size_t n = len - at < 16384 ? len - at : 16384;
        if (!it->data_fn(tar + at, n, it->arg))
            r = (evr_exec_result_t) { .rc = f->err_rc, .msg = "fake: get: the copy was aborted" };
        at += n;
    }
    free(tar);
    s_answer(f, it, &r);
}

/*  Carries out one item of the queue (it is freed, or parked). */
void
evr_fake_run(evr_exec_fake_t *f, evr_fake_item_t *it)
{
    if (it->kind == EVR_FAKE_I_ANSWER) {
        if (!f->mute)
            it->fn(&it->end, it->arg);
    }
    else if (it->kind == EVR_FAKE_I_OUT)
        s_run_out(f, it);
    else if (it->kind == EVR_FAKE_I_END)
        s_run_end(f, it);
    else if (it->op == EVR_FAKE_CREATE)
        s_do_create(f, it);
    else if (it->op == EVR_FAKE_ATTACH)
        s_do_attach(f, it);
    else if (it->op == EVR_FAKE_LOGS)
        s_do_logs(f, it);
    else if (it->op == EVR_FAKE_GET)
        s_do_get(f, it);
    else if (it->op >= EVR_FAKE_LIST)
        s_do_workspace(f, it);
    else {
        s_do_unit_op(f, it);
        for (evr_fake_item_t *p = f->parked; p; p = p->next)
            if (p == it)
                return;
    }
    evr_fake_item_free(it);
}

static void
s_pump(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_exec_fake_t *f = arg;
    f->pump_timer = 0;
    f->in_pump = true;
    uint64_t limit = f->next_seq, now = evr_mono_ns();
    for (;;) {
        evr_fake_item_t **pp = &f->queue;
        while (*pp && ((*pp)->held || (*pp)->seq >= limit || (*pp)->due > now))
            pp = &(*pp)->next;
        evr_fake_item_t *it = *pp;
        if (!it)
            break;
        *pp = it->next;
        if (f->qtail == &it->next)
            f->qtail = pp;
        it->next = NULL;
        evr_fake_run(f, it);
    }
    f->in_pump = false;
    evr_fake_arm(f);
}

