/*  evr_exec_process_ctl.c: the process executor's calls on a unit that
    is there (see evr_exec_process_int.h): wait, inspect, pause, resume,
    stop and remove.  Each probes the unit's directory (evr_unit.c);
    signals go to the unit's process group.  wait, stop and remove watch
    the unit and take turns (evr_xp_*_turn) until it has ended.  Also the
    sweep, at the start, of what an earlier run left (evr_xp_sweep_start).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_exec_process_int.h"
#include "evr_log.h"

/* ------------------------------------------------------------------ wait */

void
evr_xp_wait_turn(evr_xp_op_t *op)
{
    evr_unit_info_t info;
    if (!evr_xp_probe(op, &info))
        return;
    if (info.state == EVR_EXEC_ABSENT)
        evr_xp_not_found(op);
    else if (info.lost)
        evr_xp_lost(op, &info);
    else if (info.state == EVR_EXEC_EXITED && info.full)
        /* what the step wrote once the disk was full is lost: a success
           would be a lie about its output */
        evr_xp_fail(op, EVR_ERR_IO, "no space left on device in %s when the step ended (exit "
                    "%" PRId64 "): its output may be cut short (what it wrote once the disk was "
                    "full is lost); free space there", op->dir, info.exit_code);
    else if (info.state == EVR_EXEC_EXITED) {
        op->r.exit_code = info.exit_code;
        op->r.signal = info.signal;
        evr_xp_ok(op);
    }
    else
        evr_xp_idle(op);
}

void
evr_xp_wait(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_xp_op_t *op = evr_xp_unit_op((evr_xp_t *) base, EVR_XP_WAIT, name, fn, arg);
    if (op->done)
        return;
    evr_xp_watch(op);
    evr_xp_kick(op, 0);
}

/* --------------------------------------------------- inspect, pause, resume */

void
evr_xp_inspect(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_xp_op_t *op = evr_xp_unit_op((evr_xp_t *) base, EVR_XP_CALL, name, fn, arg);
    evr_unit_info_t info;
    if (op->done || !evr_xp_probe(op, &info))
        return;
    op->r.state = info.state;
    if (info.state == EVR_EXEC_ABSENT) {
        evr_xp_not_found(op);
        return;
    }
    op->id = info.pid ? evr_asprintf("%ld", (long) info.pid) : evr_strdup(op->name);
    op->r.exit_code = info.exit_code;
    op->r.signal = info.signal;
    op->r.started_at = info.started_at;
    op->r.finished_at = info.finished_at;
    if (info.lost) {
        evr_xp_kill_lost(op, &info);
        op->r.lost = true;
        op->msg = evr_strdup("its supervisor ended without writing its exit status");
    }
    evr_xp_ok(op);
}

/*  Signals a running unit's group; false once the op has failed. */
static bool
s_signal(evr_xp_op_t *op, int sig, bool *sent)
{
    evr_err_t err;
    if (evr_unit_signal(op->dir, sig, sent, &err) == EVR_OK)
        return true;
    evr_xp_fail(op, EVR_ERR_IO, "%s", err.msg);
    return false;
}

static void
s_not_running(evr_xp_op_t *op, const evr_unit_info_t *info)
{
    if (info->state == EVR_EXEC_ABSENT)
        evr_xp_not_found(op);
    else
        evr_xp_fail(op, EVR_ERR_IO, "%s is not running (%s)", op->name,
               evr_exec_state_name(info->state));
}

/*  The op of a call on a unit that must run (or be paused); NULL when the
    call has been answered already (the probe failed, or it does not run). */
static evr_xp_op_t *
s_running_op(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg,
             evr_unit_info_t *info)
{
    evr_xp_op_t *op = evr_xp_unit_op((evr_xp_t *) base, EVR_XP_CALL, name, fn, arg);
    if (op->done || !evr_xp_probe(op, info))
        return NULL;
    if (info->state != EVR_EXEC_RUNNING && info->state != EVR_EXEC_PAUSED) {
        s_not_running(op, info);
        return NULL;
    }
    return op;
}

/*  The marker first, then SIGSTOP: a runner killed between the two
    finds it paused and resumes it if the job is not. */
void
evr_xp_pause(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_unit_info_t info;
    evr_xp_op_t *op = s_running_op(base, name, fn, arg, &info);
    if (!op)
        return;
    evr_err_t err;
    int dfd = open(op->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    evr_rc_t rc = dfd < 0 ? evr_err_set(&err, EVR_ERR_IO, "opening %s: %s", op->dir,
                                        strerror(errno))
                          : evr_unit_write(dfd, op->dir, "paused", "", 0, &err);
    bool sent = false;
    if (!rc && s_signal(op, SIGSTOP, &sent) && !sent) {
        unlinkat(dfd, "paused", 0);
        evr_xp_fail(op, EVR_ERR_IO, "%s is not running (it has exited)", op->name);
    }
    if (dfd >= 0)
        close(dfd);
    if (rc)
        evr_xp_fail(op, rc, "%s", err.msg);
    evr_xp_ok(op);   /* nothing when it failed */
}

/*  SIGCONT first, then the marker goes: a runner killed between the two
    finds it paused and resumes it again, which does no harm. */
void
evr_xp_resume(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_unit_info_t info;
    evr_xp_op_t *op = s_running_op(base, name, fn, arg, &info);
    if (!op)
        return;
    bool sent;
    if (!s_signal(op, SIGCONT, &sent))
        return;
    char *p = evr_asprintf("%s/paused", op->dir);
    if (unlink(p) != 0 && errno != ENOENT)
        evr_xp_fail(op, EVR_ERR_IO, "removing %s: %s", p, strerror(errno));
    free(p);
    evr_xp_ok(op);
}

/* ------------------------------------------------------------------ stop */

static void
s_stop_kill(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_xp_op_t *op = arg;
    op->kill_timer = 0;
    bool sent;
    if (s_signal(op, SIGKILL, &sent))
        evr_xp_kick(op, 0);
}

void
evr_xp_stop_turn(evr_xp_op_t *op)
{
    evr_unit_info_t info;
    if (!evr_xp_probe(op, &info))
        return;
    if (info.state == EVR_EXEC_RUNNING || info.state == EVR_EXEC_PAUSED)
        evr_xp_idle(op);
    else
        evr_xp_ok(op);   /* ended (or gone, or never started) */
}

/*  TERM (or KILL) to the group, CONT so that a paused one gets it; then
    KILL after the grace, and the outcome once it has ended.  Stays in
    flight (for its KILL) even when fn is NULL. */
void
evr_xp_stop(evr_exec_t *base, const char *name, int grace_s, evr_exec_fn *fn, void *arg)
{
    evr_xp_op_t *op = evr_xp_unit_op((evr_xp_t *) base, EVR_XP_STOP, name, fn, arg);
    evr_unit_info_t info;
    if (op->done || !evr_xp_probe(op, &info))
        return;
    if (info.state == EVR_EXEC_ABSENT) {
        evr_xp_not_found(op);
        return;
    }
    if (info.state != EVR_EXEC_RUNNING && info.state != EVR_EXEC_PAUSED) {
        evr_xp_ok(op);
        return;
    }
    bool sent;
    if (!s_signal(op, grace_s < 0 ? SIGKILL : SIGTERM, &sent) || !s_signal(op, SIGCONT, &sent))
        return;
    char *p = evr_asprintf("%s/paused", op->dir);
    unlink(p);
    free(p);
    if (grace_s >= 0)
        op->kill_timer = evr_loop_timer_add(op->ex->base.loop, (uint64_t) grace_s * 1000,
                                            s_stop_kill, op);
    evr_xp_watch(op);
    evr_xp_kick(op, 0);
}

/* ---------------------------------------------------------------- remove */

static bool
s_starting(const evr_xp_op_t *op)
{
    for (const evr_xp_op_t *o = op->ex->ops; o; o = o->next)
        if (o->kind == EVR_XP_START && !o->done && !strcmp(o->name, op->name))
            return true;
    return false;
}

/*  In the child: the unit's directory, moved aside to op->dir, removed
    (op is its snapshot, read only). */
static void
s_rm_work(void *arg, void *out, size_t size)
{
    (void) size;
    const evr_xp_op_t *op = arg;
    evr_xp_rm_t *p = out;
    evr_err_t err = { 0 };
    p->rc = (int32_t) evr_unit_rmtree(op->dir, &err);
    if (p->rc)
        snprintf(p->msg, sizeof p->msg, "%s", err.msg);
}

static void
s_removed(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    evr_xp_op_t *op = arg;
    const evr_xp_rm_t *p = out;
    op->work = NULL;
    evr_xp_rm_end(op);
    if (rc == EVR_ERR_LIMIT) {   /* no child: the name is free all the same */
        evr_xp_put_off(op->ex, op->name, op->dir, msg);
        evr_xp_ok(op);
    }
    else if (rc || p->rc)
        evr_xp_fail(op, EVR_ERR_IO, "removing %s: %s", op->name, rc ? msg : p->msg);
    else
        evr_xp_ok(op);
}

/*  The unit has been moved aside (its name is free): kill what runs,
    remove the directory once its supervisor has ended, in a child
    process (evr_offload.h; a removal cut short leaves the .rm- directory
    the executor's next start sweeps; one whose child could not start,
    or was stopped at its time limit, is put off, evr_xp_put_off). */
void
evr_xp_remove_turn(evr_xp_op_t *op)
{
    evr_unit_info_t info;
    if (op->work || op->rm_turn)
        return;   /* the tree being removed (its end reports), or waiting for its turn */
    if (!evr_xp_probe(op, &info))
        return;
    if (info.state == EVR_EXEC_RUNNING || info.state == EVR_EXEC_PAUSED || s_starting(op)) {
        bool sent;
        if (s_signal(op, SIGKILL, &sent) && s_signal(op, SIGCONT, &sent))
            evr_xp_idle(op);
        return;
    }
    if (info.lost)  /* its supervisor killed: nothing else would end what is left of it */
        evr_xp_kill_lost(op, &info);
    evr_xp_rm_start(op, s_rm_work, s_removed);
}

static void s_trash_start(evr_xp_t *ex);

/*  A limit in words: "300 s", or "250 ms" (a test's). */
static void
s_limit_words(uint64_t ms, char *buf, size_t size)
{
    snprintf(buf, size, "%llu %s", (unsigned long long) (ms % 1000 ? ms : ms / 1000),
             ms % 1000 ? "ms" : "s");
}

/*  A removal past its time limit: its child killed (what it removed
    stays removed), reported as one whose child could not start (done
    calls evr_xp_rm_end: its slot to the next; the tree put off). */
static void
s_rm_late(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_xp_op_t *op = arg;
    op->rm_timer = 0;
    evr_offload_cancel(&op->work);
    char limit[32], msg[128];
    s_limit_words(op->ex->rm_limit_ms, limit, sizeof limit);
    snprintf(msg, sizeof msg, "its removal stopped after %s (the time limit of a removal)",
             limit);
    evr_xp_rm_t out = { 0 };
    op->rm_done(EVR_ERR_LIMIT, msg, &out, op);
}

static void
s_rm_go(evr_xp_op_t *op)
{
    evr_xp_t *ex = op->ex;
    op->rm_turn = 0;
    op->rm_counted = true;
    ex->removing++;
    op->work = evr_offload_start(ex->base.loop, op->rm_work, sizeof(evr_xp_rm_t), op->rm_done,
                                 op);
    evr_offload_what(op->work, "process executor: removing %s", op->name);
    op->rm_timer = evr_loop_timer_add(ex->base.loop, ex->rm_limit_ms, s_rm_late, op);
}

/*  The removals waiting started, oldest first (that of the trees put
    off among them), while fewer than EVR_XP_RM_MAX are under way. */
static void
s_rm_next(evr_xp_t *ex)
{
    while (!ex->closing && ex->removing < EVR_XP_RM_MAX) {
        evr_xp_op_t *first = NULL;
        for (evr_xp_op_t *o = ex->ops; o; o = o->next)
            if (o->rm_turn && (!first || o->rm_turn < first->rm_turn))
                first = o;
        if (ex->trash_turn && (!first || ex->trash_turn < first->rm_turn))
            s_trash_start(ex);
        else if (first)
            s_rm_go(first);
        else
            return;
    }
}

void
evr_xp_rm_start(evr_xp_op_t *op, evr_offload_work_fn *work, evr_offload_done_fn *done)
{
    evr_xp_t *ex = op->ex;
    op->rm_work = work;
    op->rm_done = done;
    op->rm_turn = ++ex->rm_seq;
    s_rm_next(ex);
}

void
evr_xp_rm_end(evr_xp_op_t *op)
{
    evr_xp_t *ex = op->ex;
    op->rm_turn = 0;
    evr_loop_timer_cancel(ex->base.loop, op->rm_timer);
    op->rm_timer = 0;
    if (!op->rm_counted)
        return;
    op->rm_counted = false;
    ex->removing--;
    s_rm_next(ex);
}

void
evr_xp_remove(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_xp_t *ex = (evr_xp_t *) base;
    evr_xp_op_t *op = evr_xp_unit_op(ex, EVR_XP_REMOVE, name, fn, arg);
    evr_unit_info_t info;
    if (op->done || !evr_xp_probe(op, &info))
        return;
    if (info.state == EVR_EXEC_ABSENT) {
        evr_xp_not_found(op);
        return;
    }
    char *trash = evr_asprintf("%s/.rm-%s-%ld-%" PRIu64, ex->units, name, (long) getpid(),
                               ++ex->seq);
    if (rename(op->dir, trash) != 0) {
        evr_xp_fail(op, EVR_ERR_IO, "removing %s: renaming %s to %s: %s", name, op->dir, trash,
               strerror(errno));
        free(trash);
        return;
    }
    free(op->dir);
    op->dir = trash;
    evr_xp_watch(op);
    evr_xp_kick(op, 0);
    evr_xp_trash_kick(ex);
}

/* ------------------------------------------------------ removals put off */

#define S_TRASH_FIRST_MS 1000
#define S_TRASH_MAX_MS 60000

/*  What the child removing the trees put off reports: how many it could
    not remove, the first's error. */
typedef struct {
    uint32_t failed;
    char msg[EVR_ERR_MAX];
} s_trashed_t;
EVR_OFFLOAD_FITS(s_trashed_t);

static void s_trash_go(evr_loop_t *loop, void *arg);

/*  In the child: the first ex->trash_taken trees removed (ex is its
    snapshot, read only). */
static void
s_trash_work(void *arg, void *out, size_t size)
{
    (void) size;
    const evr_xp_t *ex = arg;
    s_trashed_t *t = out;
    for (uint32_t i = 0; i < ex->trash_taken; i++) {
        evr_err_t err = { 0 };
        if (evr_unit_rmtree(ex->trash[i], &err) && t->failed++ == 0)
            snprintf(t->msg, sizeof t->msg, "%s", err.msg);
    }
}

/*  The next try in ex->trash_ms (then twice as long, up to a minute),
    unless one is planned or under way already. */
static void
s_trash_later(evr_xp_t *ex)
{
    if (ex->trash_timer || ex->trash_work || !ex->ntrash)
        return;
    ex->trash_timer = evr_loop_timer_add(ex->base.loop, ex->trash_ms, s_trash_go, ex);
    ex->trash_at = evr_mono_ns() + ex->trash_ms * 1000000;
    ex->trash_ms = ex->trash_ms * 2 < S_TRASH_MAX_MS ? ex->trash_ms * 2 : S_TRASH_MAX_MS;
}

/*  When the trees put off are tried again, in words: the planned try's
    delay (its timer's, whatever ex->trash_ms has become since), or after
    the removal of those put off under way. */
static void
s_trash_when(const evr_xp_t *ex, char *buf, size_t size)
{
    if (ex->trash_work) {
        snprintf(buf, size, "once the removal under way of those put off before ends");
        return;
    }
    uint64_t now = evr_mono_ns();
    uint64_t s = ex->trash_at > now ? (ex->trash_at - now + 999999999) / 1000000000 : 0;
    snprintf(buf, size, "tried again in %llu s, and with the next removal",
             (unsigned long long) (s ? s : 1));
}

/*  The child of the trees put off is over (reaped, or killed at its time
    limit): its slot to the next removal. */
static void
s_trash_over(evr_xp_t *ex)
{
    ex->trash_work = NULL;
    ex->trash_taken = 0;
    evr_loop_timer_cancel(ex->base.loop, ex->trash_late);
    ex->trash_late = 0;
    ex->removing--;
}

static void
s_trashed(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    evr_xp_t *ex = arg;
    const s_trashed_t *t = out;
    uint32_t taken = ex->trash_taken;
    s_trash_over(ex);
    if (rc) {   /* no child again, it died or took too long: all tried again later */
        s_trash_later(ex);
        char when[96];
        s_trash_when(ex, when, sizeof when);
        evr_log_warn("evrun-runner", "process executor: removing %u tree%s put off (%s%s): "
                     "%s: %s", taken, taken == 1 ? "" : "s", ex->trash[0],
                     taken > 1 ? ", ..." : "", msg, when);
        s_rm_next(ex);
        return;
    }
    if (t->failed)
        evr_log_warn("evrun-runner", "process executor: %u of %u tree%s put off not removed "
                     "(%s): left to the executor's next start", t->failed, taken,
                     taken == 1 ? "" : "s", t->msg);
    else
        evr_log_info("evrun-runner", "process executor: %u tree%s put off removed (%s%s)",
                     taken, taken == 1 ? "" : "s", ex->trash[0], taken > 1 ? ", ..." : "");
    for (uint32_t i = 0; i < taken; i++)
        free(ex->trash[i]);
    ex->ntrash -= taken;
    memmove(ex->trash, ex->trash + taken, ex->ntrash * sizeof *ex->trash);
    ex->trash_ms = S_TRASH_FIRST_MS;
    if (ex->ntrash)   /* put off while the child ran */
        evr_xp_trash_kick(ex);
    s_rm_next(ex);
}

/*  The child of the trees put off past its time limit: killed (what it
    removed stays removed), all tried again later. */
static void
s_trash_late(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_xp_t *ex = arg;
    ex->trash_late = 0;
    evr_offload_cancel(&ex->trash_work);
    char limit[32], msg[128];
    s_limit_words(ex->rm_limit_ms, limit, sizeof limit);
    snprintf(msg, sizeof msg, "stopped after %s (the time limit of a removal)", limit);
    s_trashed_t out = { 0 };
    s_trashed(EVR_ERR_LIMIT, msg, &out, ex);
}

static void
s_trash_go(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_xp_t *ex = arg;
    ex->trash_timer = 0;
    evr_xp_trash_kick(ex);
}

/*  Its turn come: the trees put off so far removed by one child, which
    counts in EVR_XP_RM_MAX and has a removal's time limit. */
static void
s_trash_start(evr_xp_t *ex)
{
    ex->trash_turn = 0;
    evr_loop_timer_cancel(ex->base.loop, ex->trash_timer);
    ex->trash_timer = 0;
    ex->trash_taken = ex->ntrash;
    ex->removing++;
    ex->trash_work = evr_offload_start(ex->base.loop, s_trash_work, sizeof(s_trashed_t),
                                       s_trashed, ex);
    evr_offload_what(ex->trash_work, "process executor: removing %u trees put off (%s first)",
                     ex->trash_taken, ex->trash[0]);
    ex->trash_late = evr_loop_timer_add(ex->base.loop, ex->rm_limit_ms, s_trash_late, ex);
}

void
evr_xp_trash_kick(evr_xp_t *ex)
{
    if (ex->trash_work || ex->trash_turn || !ex->ntrash || ex->closing)
        return;   /* under way, waiting for its turn already, or nothing to do */
    ex->trash_turn = ++ex->rm_seq;
    s_rm_next(ex);
}

void
evr_xp_put_off(evr_xp_t *ex, const char *what, const char *path, const char *why)
{
    if (ex->ntrash >= EVR_XP_TRASH_MAX) {
        evr_log_warn("evrun-runner", "process executor: removing %s: %s: its tree %s is left "
                     "to the executor's next start (%d put off already)", what, why, path,
                     EVR_XP_TRASH_MAX);
        return;
    }
    if (!ex->trash)
        ex->trash = evr_calloc(EVR_XP_TRASH_MAX, sizeof *ex->trash);
    ex->trash[ex->ntrash++] = evr_strdup(path);
    if (!ex->trash_ms)
        ex->trash_ms = S_TRASH_FIRST_MS;
    s_trash_later(ex);
    char when[96];
    s_trash_when(ex, when, sizeof when);
    evr_log_warn("evrun-runner", "process executor: removing %s: %s: its tree %s is removed "
                 "later (%s)", what, why, path, when);
}

void
evr_xp_trash_free(evr_xp_t *ex)
{
    evr_offload_cancel(&ex->trash_work);   /* its child killed: the next start sweeps */
    evr_loop_timer_cancel(ex->base.loop, ex->trash_timer);
    evr_loop_timer_cancel(ex->base.loop, ex->trash_late);
    ex->trash_timer = ex->trash_late = ex->trash_turn = 0;
    for (uint32_t i = 0; i < ex->ntrash; i++)
        free(ex->trash[i]);
    free(ex->trash);
    ex->trash = NULL;
    ex->ntrash = ex->trash_taken = 0;
}

/* ----------------------------------------------------------------- sweep */

/*  What the sweep's child reports: how many leftovers it could not
    remove, and why the first. */
typedef struct {
    uint32_t nfail;
    char msg[EVR_ERR_MAX];
} s_swept_t;
EVR_OFFLOAD_FITS(s_swept_t);

/*  In the child: ex->swept removed (ex is its snapshot, read only). */
static void
s_sweep_work(void *arg, void *out, size_t size)
{
    (void) size;
    const evr_xp_t *ex = arg;
    s_swept_t *sw = out;
    for (size_t i = 0; i < ex->nswept; i++) {
        evr_err_t err;
        if (evr_unit_rmtree(ex->swept[i], &err) && !sw->nfail++)
            snprintf(sw->msg, sizeof sw->msg, "%s", err.msg);
    }
}

static void
s_sweep_free(evr_xp_t *ex)
{
    for (size_t i = 0; i < ex->nswept; i++)
        free(ex->swept[i]);
    free(ex->swept);
    ex->swept = NULL;
    ex->nswept = 0;
}

static void
s_swept(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    evr_xp_t *ex = arg;
    const s_swept_t *sw = out;
    ex->sweep = NULL;
    if (rc || sw->nfail)
        evr_log_warn("evrun-runner", "process executor: removing what an earlier run left in "
                     "%s (%zu directories, %s first): %s%s; the next start tries again",
                     ex->state_dir, ex->nswept, ex->swept[0], rc ? msg : sw->msg,
                     !rc && sw->nfail > 1 ? " (and more)" : "");
    s_sweep_free(ex);
}

void
evr_xp_sweep_start(evr_xp_t *ex)
{
    evr_unit_sweep_aside(ex->units, &ex->swept, &ex->nswept);
    evr_unit_sweep_aside(ex->work, &ex->swept, &ex->nswept);
    if (ex->nswept) {
        ex->sweep = evr_offload_start(ex->base.loop, s_sweep_work, sizeof(s_swept_t), s_swept,
                                      ex);
        evr_offload_what(ex->sweep, "process executor: removing what an earlier run left in "
                         "%s (%zu directories, %s first)", ex->state_dir, ex->nswept,
                         ex->swept[0]);
    }
}

void
evr_xp_sweep_stop(evr_xp_t *ex)
{
    evr_offload_cancel(&ex->sweep);
    s_sweep_free(ex);
}
