/*  evr_exec_process.c: the process executor (see evr_exec_process.h).

    Every operation becomes an evr_xp_op_t in the executor's list.  Its
    outcome is set once (evr_xp_ok, evr_xp_fail) and reported from the next turn of
    the loop (s_fire), never from inside the call.  Operations that wait
    on a unit (attach, wait, stop, remove) watch its directory with
    inotify: a write to an output file, the supervisor's `exit` renamed
    into place or its lock closed wake them for a turn; a one-second
    timer backs the watch up.  Reads are bounded (64 KiB per stream per
    turn), so a step printing fast cannot hold the loop.

    wait, inspect, pause, resume, stop and remove are in
    evr_exec_process_ctl.c, attach, logs and detach in
    evr_exec_process_out.c (the parts the files share in
    evr_exec_process_int.h).  The files of a unit, and the supervisor that
    outlives the runner, are in evr_unit.c and evr_shim.c; the workspaces, put and get on disk in
    evr_exec_process_ws.c, the tar stream of `get` in evr_tarout.c.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_codec.h"
#include "evr_exec_process.h"
#include "evr_exec_process_int.h"
#include "evr_exec_process_ws.h"
#include "evr_log.h"
#include "evr_shim.h"

#define S_BACKSTOP_MS 1000          /* a watched unit is looked at this often anyway */
#define S_POLL_MS 20                /* ... and this often without inotify */

static void s_turn(evr_loop_t *loop, void *arg);

/* ------------------------------------------------------------ operations */

static evr_xp_op_t *
s_op_new(evr_xp_t *ex, evr_xp_kind_t kind, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_xp_op_t *op = evr_calloc(1, sizeof *op);
    op->ex = ex;
    op->kind = kind;
    op->name = evr_strdup(name ? name : "");
    op->wd = -1;
    op->fd[0] = op->fd[1] = -1;
    op->fn = fn;
    op->arg = arg;
    op->next = ex->ops;
    ex->ops = op;
    return op;
}

static void
s_unwatch(evr_xp_op_t *op)
{
    evr_xp_t *ex = op->ex;
    if (op->wd < 0)
        return;
    bool shared = false;
    for (evr_xp_op_t *o = ex->ops; o && !shared; o = o->next)
        shared = o != op && o->wd == op->wd;
    if (!shared)
        inotify_rm_watch(ex->ino, op->wd);
    op->wd = -1;
}

/*  Lets go of what the operation holds in the loop and the kernel. */
static void
s_op_release(evr_xp_op_t *op)
{
    evr_xp_t *ex = op->ex;
    evr_loop_timer_cancel(ex->base.loop, op->timer);
    evr_loop_timer_cancel(ex->base.loop, op->kill_timer);
    op->timer = op->kill_timer = 0;
    s_unwatch(op);
    for (int i = 0; i < 2; i++)
        if (op->fd[i] >= 0) {
            if (op->kind == EVR_XP_START)
                evr_loop_fd_remove(ex->base.loop, op->fd[i]);
            close(op->fd[i]);
            op->fd[i] = -1;
        }
    evr_tarout_destroy(&op->tar);
    evr_offload_cancel(&op->work);
    evr_xp_rm_end(op);   /* a removal under way: the next one's turn */
}

static void
s_op_free(evr_xp_op_t *op)
{
    free(op->name);
    free(op->dir);
    free(op->msg);
    free(op->id);
    free(op->names);
    free(op->file);
    free(op);
}

static void
s_unlink(evr_xp_op_t *op)
{
    for (evr_xp_op_t **pp = &op->ex->ops; *pp; pp = &(*pp)->next)
        if (*pp == op) {
            *pp = op->next;
            return;
        }
}

/*  The turn that reports the outcome: the operation leaves the list
    first, so its callback may start others or destroy the executor. */
static void
s_fire(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_xp_op_t *op = arg;
    op->timer = 0;
    s_op_release(op);
    s_unlink(op);
    op->r.msg = op->msg ? op->msg : (op->r.rc ? evr_strerror(op->r.rc) : NULL);
    op->r.id = op->id;
    op->r.names = op->names;
    if (op->fn)
        op->fn(&op->r, op->arg);
    s_op_free(op);
}

/*  The outcome is set: reported from the next turn. */
static void
s_post(evr_xp_op_t *op)
{
    if (op->done)
        return;
    op->done = true;
    evr_loop_timer_cancel(op->ex->base.loop, op->timer);
    op->timer = evr_loop_timer_add(op->ex->base.loop, 0, s_fire, op);
}

void
evr_xp_ok(evr_xp_op_t *op)
{
    s_post(op);
}

void
evr_xp_fail(evr_xp_op_t *op, evr_rc_t rc, const char *fmt, ...)
{
    if (op->done)
        return;
    va_list ap;
    va_start(ap, fmt);
    char buf[EVR_ERR_MAX];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(op->msg);
    op->msg = evr_strdup(buf);
    op->r.rc = rc;
    s_post(op);
}

void
evr_xp_not_found(evr_xp_op_t *op)
{
    op->r.not_found = true;
    evr_xp_fail(op, EVR_ERR_IO, "no such unit %s (%s/%s)", op->name, op->ex->units, op->name);
}

/*  The operation's next turn in ms (replacing one planned). */
void
evr_xp_kick(evr_xp_op_t *op, uint64_t ms)
{
    if (op->done)
        return;
    evr_loop_timer_cancel(op->ex->base.loop, op->timer);
    op->timer = evr_loop_timer_add(op->ex->base.loop, ms, s_turn, op);
    op->soon = ms == 0;
}

/*  Nothing to do until the unit changes: the watch, or the backstop. */
void
evr_xp_idle(evr_xp_op_t *op)
{
    evr_xp_kick(op, op->ex->ino >= 0 && op->wd >= 0 ? S_BACKSTOP_MS : S_POLL_MS);
}

/* ---------------------------------------------------------------- inotify */

static void
s_on_inotify(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) loop;
    (void) events;
    evr_xp_t *ex = arg;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *e = (const struct inotify_event *) p;
            /* a fast writer makes an event per write: one turn for them all */
            for (evr_xp_op_t *op = ex->ops; op; op = op->next)
                if (!op->done && !op->soon && (op->wd == e->wd || (e->mask & IN_Q_OVERFLOW)))
                    evr_xp_kick(op, 0);
            p += sizeof *e + e->len;
        }
    }
}

/*  Watches op->dir (nothing without inotify: the timer polls then). */
void
evr_xp_watch(evr_xp_op_t *op)
{
    if (op->ex->ino < 0)
        return;
    op->wd = inotify_add_watch(op->ex->ino, op->dir, IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO
                                                         | IN_CREATE | IN_DELETE_SELF
                                                         | IN_MOVE_SELF);
}

/* ---------------------------------------------------------------- helpers */

/*  limits.cpu (ms) as RLIMIT_CPU's whole seconds, rounded up, at most
    the spec's longest duration: the kernel counts the limit in ns, and a
    larger one wraps to a limit already used up (SIGKILL at once). */
static uint64_t
s_cpu_s(uint64_t ms)
{
    if (ms > EVR_SPEC_MAX_DURATION_MS)
        ms = EVR_SPEC_MAX_DURATION_MS;
    return ms / 1000 + (ms % 1000 != 0);
}

static char *
s_unit_dir(const evr_xp_t *ex, const char *name)
{
    return evr_asprintf("%s/%s", ex->units, name);
}

/*  A new op for a unit name; done already (failed) when the name is bad. */
evr_xp_op_t *
evr_xp_unit_op(evr_xp_t *ex, evr_xp_kind_t kind, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_xp_op_t *op = s_op_new(ex, kind, name, fn, arg);
    op->dir = s_unit_dir(ex, op->name);
    if (!name || !evr_unit_name_ok(name))
        evr_xp_fail(op, EVR_ERR_IO, "\"%s\": not a unit name (1-200 bytes, no '/', not starting "
               "with '.')", op->name);
    return op;
}

/*  Probes op->dir; false once the op has failed (it could not be read). */
bool
evr_xp_probe(evr_xp_op_t *op, evr_unit_info_t *info)
{
    evr_err_t err;
    if (evr_unit_probe(op->dir, info, &err) == EVR_OK)
        return true;
    evr_xp_fail(op, EVR_ERR_IO, "%s", err.msg);
    return false;
}

void
evr_xp_kill_lost(evr_xp_op_t *op, const evr_unit_info_t *info)
{
    bool killed;
    evr_err_t err;
    if (evr_unit_kill_lost(op->dir, info, &killed, &err))
        evr_log_warn("evrun-runner", "%s", err.msg);
    else if (killed)
        evr_log_info("evrun-runner", "%s: its supervisor was killed; what was left of the "
                     "step's process group was killed", op->name);
}

/*  The last lines of the unit's supervisor.log, on one line (the unit and
    its log are removed with the step: a message does not send to it). */
static void
s_supervisor_said(const char *dir, char *buf, size_t size)
{
    buf[0] = '\0';
    char *path = evr_asprintf("%s/supervisor.log", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    free(path);
    if (fd < 0)
        return;
    char tail[400];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t at = end > (off_t) sizeof tail - 1 ? end - (off_t) sizeof tail + 1 : 0;
    ssize_t n = pread(fd, tail, sizeof tail - 1, at);
    close(fd);
    if (n <= 0)
        return;
    tail[n] = '\0';
    evr_utf8_clean(tail);
    for (char *p = tail; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = *(p + 1) ? ' ' : '\0';
    snprintf(buf, size, "; its supervisor.log ends: %s%s", at ? "..." : "", tail);
}

void
evr_xp_lost(evr_xp_op_t *op, const evr_unit_info_t *info)
{
    evr_xp_kill_lost(op, info);
    char said[480];
    s_supervisor_said(op->dir, said, sizeof said);
    if (!op->done)
        op->r.lost = true;   /* the step is lost (retry: {on: [lost]}), not failed */
    evr_xp_fail(op, EVR_ERR_IO, "the supervisor of %s ended without writing its exit status (was "
           "it killed?); what was left of the step's processes was killed%s", op->name,
           said[0] ? said : "; its supervisor.log is empty");
}

/* ------------------------------------------------------------ create, start */

static void
s_create(evr_exec_t *base, const evr_exec_spec_t *spec, evr_exec_fn *fn, void *arg)
{
    evr_xp_t *ex = (evr_xp_t *) base;
    evr_xp_op_t *op = evr_xp_unit_op(ex, EVR_XP_CALL, spec->name, fn, arg);
    if (op->done)
        return;
    if (!spec->job_id || !evr_unit_name_ok(spec->job_id)) {
        evr_xp_fail(op, EVR_ERR_IO, "%s: \"%s\" is not a job id", op->name,
               spec->job_id ? spec->job_id : "");
        return;
    }
    if (spec->layout != EVR_EXEC_LAYOUT_WORKSPACE) {   /* the spec refuses a source here */
        evr_xp_fail(op, EVR_ERR_IO, "%s: the process executor has no /job layout", op->name);
        return;
    }
    char *ws = evr_asprintf("%s/%s", ex->work, spec->job_id);
    /* the control channel (evr_exec.h): its socket, its bin first in PATH */
    const char *cd = spec->control_dir;
    const char *given = spec->env ? evr_strmap_get(spec->env, "PATH") : NULL;
    char *path = given && !*given && cd ? evr_asprintf("PATH=%s/bin", cd)
               : evr_asprintf("PATH=%s%s%s", cd ? cd : "", cd ? "/bin:" : "",
                              given ? given : EVR_EXEC_PROCESS_PATH);
    char *home = evr_asprintf("HOME=%s", ws);
    char *ctl = cd ? evr_asprintf("EVRUN_CONTROL=%s/control.sock", cd) : NULL;
    uint32_t n = spec->env ? spec->env->n : 0;
    const char **env = evr_calloc(n + 4, sizeof(char *));   /* output, own, PATH, HOME, ctl */
    char **own = evr_calloc(n + 1, sizeof(char *));
    char *output = spec->output ? evr_asprintf("EVRUN_OUTPUT=%s/%s", ws, spec->output) : NULL;
    size_t k = 0;
    bool has_home = false;
    if (output)
        env[k++] = output;
    for (uint32_t i = 0; i < n; i++) {
        const char *key = spec->env->k[i];
        has_home |= !strcmp(key, "HOME");
        own[i] = evr_asprintf("%s=%s", key, spec->env->v[i]);
        /* the runner's EVRUN_OUTPUT and EVRUN_CONTROL over the step's own:
           left out, not put beside them (with a name twice, the shell
           takes the later) */
        if (strcmp(key, "PATH") && (!ctl || strcmp(key, "EVRUN_CONTROL"))
            && (!output || strcmp(key, "EVRUN_OUTPUT")))
            env[k++] = own[i];
    }
    env[k++] = path;
    if (!has_home)
        env[k++] = home;
    if (ctl)
        env[k++] = ctl;
    bool exists = false;
    evr_err_t err;
    evr_unit_limits_t lim = { 0 };
    if (spec->limits && spec->limits->present)
        lim = (evr_unit_limits_t) { .nofile = spec->limits->nofile,
                                    .nproc = spec->limits->nproc,
                                    .cpu_s = s_cpu_s(spec->limits->cpu),
                                    .memory = spec->limits->memory };
    evr_rc_t rc = evr_unit_make(ex->units, spec->name, spec->script ? spec->script : "", env, k,
                                ws, &lim, &exists, &err);
    if (rc)
        evr_xp_fail(op, rc, "creating %s: %s", spec->name, err.msg);
    else if (exists) {
        op->r.exists = true;
        evr_xp_fail(op, EVR_ERR_IO, "%s exists already (%s)", spec->name, op->dir);
    }
    else {
        op->id = evr_strdup(spec->name);   /* no pid before it starts */
        evr_xp_ok(op);
    }
    for (uint32_t i = 0; i < n; i++)
        free(own[i]);
    free(own);
    free(env);
    free(path);
    free(ctl);
    free(home);
    free(output);
    free(ws);
}

/*  The start's outcome read from the unit, when its supervisor did not
    report "started".  held: it found the unit's lock held by another
    supervisor, one an earlier run of the runner spawned just before it
    was killed, the start not in that run's log (recovery probed the unit
    before that one took the lock): that one runs the step, once, and the
    start is done.  Else the pipe ended without a word: the supervisor was
    killed, or died, before it reported the start.  As for a supervisor
    killed later (evr_xp_lost), the step is lost, not failed (retry: {on:
    [lost]}): one it had started is killed with what is left of its group;
    one it had not is lost before its start.  A step started that has
    ended meanwhile (its `exit` written) is started: its wait reads that. */
static void
s_start_from_unit(evr_xp_op_t *op, bool held)
{
    evr_unit_info_t info;
    if (!evr_xp_probe(op, &info))
        return;
    if (info.lost) {
        evr_xp_lost(op, &info);
        return;
    }
    bool started = info.state != EVR_EXEC_CREATED && info.state != EVR_EXEC_ABSENT;
    if (started && (info.pid || held)) {   /* held: the other may not have written it yet */
        if (info.pid)
            op->id = evr_asprintf("%ld", (long) info.pid);
        evr_xp_ok(op);
        return;
    }
    if (held) {
        evr_xp_fail(op, EVR_ERR_IO, "starting %s: another supervisor held the unit and left it "
                    "unstarted", op->name);
        return;
    }
    char said[480];
    s_supervisor_said(op->dir, said, sizeof said);
    op->r.lost = true;
    evr_xp_fail(op, EVR_ERR_IO, "the supervisor of %s was killed (it ended without a word) "
                "before it started the step%s", op->name,
                said[0] ? said : "; its supervisor.log is empty");
}

/*  The supervisor's report: "started PID NS", "held" or "error MESSAGE",
    then the end of the pipe. */
static void
s_on_report(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) loop;
    (void) events;
    evr_xp_op_t *op = arg;
    ssize_t n;
    do
        n = read(fd, op->line + op->llen, sizeof op->line - 1 - op->llen);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        op->llen += (size_t) n;
        if (op->llen < sizeof op->line - 1)
            return;   /* the rest, or the end, comes */
    }
    else if (n < 0 && errno == EAGAIN)
        return;
    evr_loop_fd_remove(op->ex->base.loop, fd);
    op->line[op->llen] = '\0';
    op->line[strcspn(op->line, "\n")] = '\0';
    long pid = 0;
    if (sscanf(op->line, "started %ld", &pid) == 1 && pid > 1) {
        op->id = evr_asprintf("%ld", pid);
        evr_xp_ok(op);
    }
    else if (!strcmp(op->line, "held"))
        s_start_from_unit(op, true);
    else if (!strncmp(op->line, "error ", 6))
        evr_xp_fail(op, EVR_ERR_IO, "starting %s: %s", op->name, op->line + 6);
    else
        s_start_from_unit(op, false);
}

static bool
s_spawn_shim(evr_xp_op_t *op)
{
    evr_err_t err;
    if (evr_shim_spawn(op->dir, &op->fd[0], &err)) {
        evr_xp_fail(op, EVR_ERR_IO, "starting %s: %s", op->name, err.msg);
        return false;
    }
    if (evr_loop_fd_add(op->ex->base.loop, op->fd[0], EVR_LOOP_READ, s_on_report, op)) {
        evr_xp_fail(op, EVR_ERR_IO, "starting %s: the loop watches too many fds (%d) to hear its "
               "supervisor", op->name, EVR_LOOP_MAX_FDS);
        return false;
    }
    return true;
}

static void
s_start(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_xp_op_t *op = evr_xp_unit_op((evr_xp_t *) base, EVR_XP_START, name, fn, arg);
    evr_unit_info_t info;
    if (op->done || !evr_xp_probe(op, &info))
        return;
    switch (info.state) {
    case EVR_EXEC_ABSENT: evr_xp_not_found(op); return;
    case EVR_EXEC_RUNNING:
    case EVR_EXEC_PAUSED:
        if (info.pid)
            op->id = evr_asprintf("%ld", (long) info.pid);
        evr_xp_ok(op);   /* as podman: starting a running unit does nothing */
        return;
    case EVR_EXEC_EXITED:
        evr_xp_fail(op, EVR_ERR_IO, "%s has run already (%s)", name, op->dir);
        return;
    case EVR_EXEC_CREATED: s_spawn_shim(op); return;
    }
}

/* ------------------------------------------------- list, workspaces, get */

/*  The names in dir (starting with prefix) into op->names, or failed. */
static void
s_names(evr_xp_op_t *op, const char *dir, const char *prefix)
{
    evr_err_t err;
    if ((op->names = evr_exec_process_ws_names(dir, prefix, &err)))
        evr_xp_ok(op);
    else
        evr_xp_fail(op, EVR_ERR_IO, "%s", err.msg);
}

static void
s_list(evr_exec_t *base, const char *prefix, evr_exec_fn *fn, void *arg)
{
    evr_xp_t *ex = (evr_xp_t *) base;
    s_names(s_op_new(ex, EVR_XP_CALL, prefix, fn, arg), ex->units, prefix);
}

/*  A new op for a job's workspace; done already (failed) on a bad id. */
static evr_xp_op_t *
s_ws_op(evr_xp_t *ex, const char *job_id, evr_exec_fn *fn, void *arg)
{
    evr_xp_op_t *op = s_op_new(ex, EVR_XP_CALL, job_id, fn, arg);
    if (!job_id || !evr_unit_name_ok(job_id))
        evr_xp_fail(op, EVR_ERR_IO, "\"%s\": not a job id", op->name);
    return op;
}

/*  The outcome of a workspace call. */
static void
s_ws_done(evr_xp_op_t *op, evr_rc_t rc, bool not_found, const evr_err_t *err)
{
    op->r.not_found = not_found;
    if (rc)
        evr_xp_fail(op, rc, "%s", err->msg);
    else
        evr_xp_ok(op);
}

static void
s_ws_create(evr_exec_t *base, const char *job_id, evr_exec_fn *fn, void *arg)
{
    evr_xp_t *ex = (evr_xp_t *) base;
    evr_xp_op_t *op = s_ws_op(ex, job_id, fn, arg);
    evr_err_t err;
    if (op->done)
        return;
    evr_rc_t rc = evr_exec_process_ws_create(ex->work, job_id, &op->r.exists, &err);
    s_ws_done(op, rc, false, &err);
}

/*  In the child: the workspace's tree, renamed aside to op->file,
    removed (op is its snapshot, read only). */
static void
s_ws_purge_work(void *arg, void *out, size_t size)
{
    (void) size;
    const evr_xp_op_t *op = arg;
    evr_xp_rm_t *p = out;
    evr_err_t err = { 0 };
    p->rc = (int32_t) evr_exec_process_ws_purge(op->ex->work, op->name, op->file, &err);
    if (p->rc)
        snprintf(p->msg, sizeof p->msg, "%s", err.msg);
}

static void
s_ws_purged(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    evr_xp_op_t *op = arg;
    const evr_xp_rm_t *p = out;
    op->work = NULL;
    evr_xp_rm_end(op);
    if (rc == EVR_ERR_LIMIT) {   /* no child: the id is free all the same */
        char *what = evr_asprintf("the workspace %s/%s", op->ex->work, op->name);
        evr_xp_put_off(op->ex, what, op->file, msg);
        free(what);
        evr_xp_ok(op);
    }
    else if (rc)
        evr_xp_fail(op, EVR_ERR_IO, "removing the workspace %s/%s: %s", op->ex->work, op->name,
                    msg);
    else if (p->rc)
        evr_xp_fail(op, (evr_rc_t) p->rc, "%s", p->msg);
    else
        evr_xp_ok(op);
}

/*  The workspace renamed aside at once (its id free), then its tree
    removed in a child process (evr_offload.h): a large workspace holds
    no other job's turn.  A removal cut short (the executor destroyed, the
    runner killed) leaves the .rm- directory its next start sweeps; one
    whose child could not start, or was stopped at its time limit, is put
    off (evr_xp_put_off). */
static void
s_ws_remove(evr_exec_t *base, const char *job_id, evr_exec_fn *fn, void *arg)
{
    evr_xp_t *ex = (evr_xp_t *) base;
    evr_xp_op_t *op = s_ws_op(ex, job_id, fn, arg);
    evr_err_t err;
    bool nf = false;
    if (op->done)
        return;
    evr_rc_t rc = evr_exec_process_ws_aside(ex->work, job_id, &ex->seq, &op->file, &nf, &err);
    if (rc)
        s_ws_done(op, rc, nf, &err);
    else
        evr_xp_rm_start(op, s_ws_purge_work, s_ws_purged);
    evr_xp_trash_kick(ex);
}

/*  The host directory of a job's workspace (a hook's context); no cache
    volumes here (no cache_remove: a pipeline with caches is refused). */
static void
s_dir(evr_exec_t *base, const char *job_id, const char *volume, evr_exec_fn *fn, void *arg)
{
    evr_xp_t *ex = (evr_xp_t *) base;
    evr_xp_op_t *op = s_ws_op(ex, volume ? NULL : job_id, fn, arg);
    if (op->done)
        return;
    op->names = evr_asprintf("%s/%s", ex->work, job_id);
    evr_xp_ok(op);
}

static void
s_ws_list(evr_exec_t *base, evr_exec_fn *fn, void *arg)
{
    evr_xp_t *ex = (evr_xp_t *) base;
    s_names(s_op_new(ex, EVR_XP_CALL, NULL, fn, arg), ex->work, NULL);
}

/*  What a put's child reports. */
typedef struct {
    int32_t rc;
    bool not_found;
    char msg[EVR_ERR_MAX];
} s_put_t;
EVR_OFFLOAD_FITS(s_put_t);

/*  In the child: the tar unpacked into the workspace (op is its
    snapshot, read only). */
static void
s_put_work(void *arg, void *out, size_t size)
{
    (void) size;
    const evr_xp_op_t *op = arg;
    s_put_t *p = out;
    evr_err_t err = { 0 };
    p->rc = (int32_t) evr_exec_process_ws_put(op->ex->work, op->name, op->file, &p->not_found,
                                              &err);
    if (p->rc)
        snprintf(p->msg, sizeof p->msg, "%s", err.msg);
}

static void
s_put_done(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    evr_xp_op_t *op = arg;
    const s_put_t *p = out;
    op->work = NULL;
    evr_err_t err;
    if (rc)
        evr_xp_fail(op, EVR_ERR_IO, "unpacking %s: %s", op->file, msg);
    else {
        snprintf(err.msg, sizeof err.msg, "%s", p->msg);
        s_ws_done(op, (evr_rc_t) p->rc, p->not_found, &err);
    }
}

/*  The tar unpacked into the job's workspace in a child process
    (evr_offload.h): a large source holds no other job's turn. */
static void
s_put(evr_exec_t *base, const char *job_id, evr_exec_area_t area, const char *image,
      const char *tar_file, evr_exec_fn *fn, void *arg)
{
    (void) image;
    evr_xp_t *ex = (evr_xp_t *) base;
    evr_xp_op_t *op = s_ws_op(ex, job_id, fn, arg);
    if (op->done)
        return;
    if (area != EVR_EXEC_AREA_WORKSPACE) {   /* the spec refuses a source here */
        evr_xp_fail(op, EVR_ERR_IO, "the process executor has no CI area (no /job layout)");
        return;
    }
    op->file = evr_strdup(tar_file);
    op->work = evr_offload_start(ex->base.loop, s_put_work, sizeof(s_put_t), s_put_done, op);
    evr_offload_what(op->work, "unpacking %s into the workspace of %s", op->file, op->name);
}

static bool
s_get_data(const uint8_t *data, size_t len, void *arg)
{
    evr_xp_op_t *op = arg;
    return op->data(data, len, op->arg);
}

static void
s_get_turn(evr_xp_op_t *op)
{
    bool done = false;
    evr_err_t err;
    if (evr_tarout_step(op->tar, 4 * EVR_XP_CHUNK, &done, &err))
        evr_xp_fail(op, EVR_ERR_IO, "copying out of %s: %s", op->name, err.msg);
    else if (done)
        evr_xp_ok(op);
    else
        evr_xp_kick(op, 0);
}

/*  The stream is made at once; it is copied a turn at a time. */
static void
s_get(evr_exec_t *base, const char *name, const char *job_id, evr_exec_layout_t layout,
      const char *path, evr_exec_data_fn *data, evr_exec_fn *fn, void *arg)
{
    (void) name;
    (void) layout;   /* one layout: the workspace directory */
    evr_xp_t *ex = (evr_xp_t *) base;
    evr_xp_op_t *op = s_ws_op(ex, job_id, fn, arg);
    op->kind = EVR_XP_GET;
    op->data = data;
    if (op->done)
        return;
    free(op->name);
    op->name = evr_asprintf("%s/%s/%s", ex->work, job_id, path ? path : "");   /* for messages */
    evr_err_t err;
    bool nf = false;
    op->tar = evr_exec_process_ws_get(ex->work, job_id, path, s_get_data, op, &nf, &err);
    if (op->tar)
        evr_xp_kick(op, 0);
    else
        s_ws_done(op, EVR_ERR_IO, nf, &err);
}

/* ------------------------------------------------------- words, lifecycle */

static void
s_turn(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_xp_op_t *op = arg;
    op->timer = 0;
    op->soon = false;
    if (op->done)
        return;
    switch (op->kind) {
    case EVR_XP_ATTACH:
    case EVR_XP_LOGS: evr_xp_tail_turn(op); break;
    case EVR_XP_WAIT: evr_xp_wait_turn(op); break;
    case EVR_XP_STOP: evr_xp_stop_turn(op); break;
    case EVR_XP_REMOVE: evr_xp_remove_turn(op); break;
    case EVR_XP_GET: s_get_turn(op); break;
    case EVR_XP_CALL:
    case EVR_XP_START: break;
    }
}

static void
s_remove_hint(const evr_exec_t *base, const char *name, char *buf, size_t size)
{
    char *dir = s_unit_dir((const evr_xp_t *) base, name);
    evr_unit_remove_hint(dir, buf, size);
    free(dir);
}

static const char *
s_describe(const evr_exec_t *base)
{
    return ((const evr_xp_t *) base)->describe;
}

static void
s_destroy(evr_exec_t *base)
{
    evr_xp_t *ex = (evr_xp_t *) base;
    ex->closing = true;   /* a removal killed below starts no waiting one */
    while (ex->ops) {
        evr_xp_op_t *op = ex->ops;
        s_op_release(op);
        ex->ops = op->next;
        s_op_free(op);
    }
    evr_xp_trash_free(ex);
    if (ex->ino >= 0) {
        evr_loop_fd_remove(ex->base.loop, ex->ino);
        close(ex->ino);
    }
    evr_xp_sweep_stop(ex);
    free(ex->state_dir);
    free(ex->units);
    free(ex->work);
    free(ex->describe);
    free(ex);
}

static const evr_exec_ops_t s_ops = {
    .name = "process",
    .destroy = s_destroy,
    .create = s_create,
    .start = s_start,
    .attach = evr_xp_attach,
    .detach = evr_xp_detach,
    .logs = evr_xp_logs,
    .wait = evr_xp_wait,
    .inspect = evr_xp_inspect,
    .pause = evr_xp_pause,
    .resume = evr_xp_resume,
    .stop = evr_xp_stop,
    .remove = evr_xp_remove,
    .list = s_list,
    .workspace_create = s_ws_create,
    .workspace_remove = s_ws_remove,
    .workspace_list = s_ws_list,
    .dir = s_dir,
    .put = s_put,
    .get = s_get,
    .unit_word = "process",
    .workspace_word = "the workspace directory",
    .remove_hint = s_remove_hint,
    .describe = s_describe,
};

static bool
s_mkdir(const char *path, evr_err_t *err)
{
    struct stat st;
    if (mkdir(path, 0700) == 0 || (errno == EEXIST && lstat(path, &st) == 0 && S_ISDIR(st.st_mode)))
        return true;
    evr_err_set(err, EVR_ERR_IO, "creating %s: %s", path,
                errno == EEXIST ? "not a directory" : strerror(errno));
    return false;
}

evr_exec_t *
evr_exec_process_new(const char *state_dir, evr_loop_t *loop, evr_err_t *err)
{
    evr_xp_t *ex = evr_calloc(1, sizeof *ex);
    ex->base.ops = &s_ops;
    ex->base.loop = loop;
    ex->ino = -1;
    ex->state_dir = evr_strdup(state_dir);
    ex->units = evr_asprintf("%s/units", state_dir);
    ex->work = evr_asprintf("%s/work", state_dir);
    ex->describe = evr_asprintf("process (host commands in %s)", ex->work);
    const char *lim = getenv("EVR_TEST_RM_LIMIT_MS");   /* tests: a short limit */
    ex->rm_limit_ms = lim && atoll(lim) > 0 ? (uint64_t) atoll(lim) : EVR_XP_RM_LIMIT_MS;
    if (!s_mkdir(ex->units, err) || !s_mkdir(ex->work, err)) {
        s_destroy(&ex->base);
        return NULL;
    }
    evr_xp_sweep_start(ex);
    ex->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ex->ino >= 0 && evr_loop_fd_add(loop, ex->ino, EVR_LOOP_READ, s_on_inotify, ex)) {
        close(ex->ino);
        ex->ino = -1;   /* the timers poll instead */
    }
    return &ex->base;
}
