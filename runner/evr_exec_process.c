/*  evr_exec_process.c: the process executor (see evr_exec_process.h).

    Every operation becomes an s_op_t in the executor's list.  Its
    outcome is set once (s_ok, s_fail) and reported from the next turn of
    the loop (s_fire), never from inside the call.  Operations that wait
    on a unit (attach, wait, stop, remove) watch its directory with
    inotify: a write to an output file, the supervisor's `exit` renamed
    into place or its lock closed wake them for a turn; a one-second
    timer backs the watch up.  Reads are bounded (64 KiB per stream per
    turn), so a step printing fast cannot hold the loop.

    The files of a unit, and the supervisor that outlives the runner, are
    in evr_unit.c and evr_shim.c; the workspaces, put and get on disk in
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

#include "evr_exec_process.h"
#include "evr_exec_process_ws.h"
#include "evr_shim.h"
#include "evr_tarout.h"
#include "evr_unit.h"

#define S_CHUNK 65536               /* bytes per stream per turn */
#define S_BACKSTOP_MS 1000          /* a watched unit is looked at this often anyway */
#define S_POLL_MS 20                /* ... and this often without inotify */
#define S_LINE 600                  /* the supervisor's report, at most */

typedef enum { K_CALL, K_START, K_ATTACH, K_LOGS, K_WAIT, K_STOP, K_REMOVE, K_GET } s_kind_t;

typedef struct s_op s_op_t;

typedef struct {
    evr_exec_t base;
    char *state_dir, *units, *work, *describe;
    int ino;                    /* inotify fd, -1 without */
    s_op_t *ops;                /* in flight */
    uint64_t seq;               /* names of temporary directories */
    uint8_t buf[S_CHUNK];
} s_ex_t;

struct s_op {
    s_op_t *next;
    s_ex_t *ex;
    s_kind_t kind;
    char *name;                 /* the unit (or the job) */
    char *dir;                  /* the unit's directory (remove: where it was moved) */
    uint64_t timer;             /* the next turn, or the report */
    uint64_t kill_timer;        /* stop: SIGKILL after the grace */
    int wd;                     /* inotify watch of dir, -1 */
    int fd[2];                  /* attach, logs: the output files; start: fd[0] the pipe */
    uint64_t off[2], end[2];    /* attach, logs: read from, up to */
    bool headed;                /* attach: head called */
    bool final;                 /* attach: end[] is the output's final size */
    bool done;                  /* the outcome is set; s_fire reports it */
    bool soon;                  /* its next turn is the loop's next one */
    evr_exec_fn *fn, *head;
    evr_exec_output_fn *out;
    evr_exec_data_fn *data;
    void *arg;
    evr_exec_result_t r;
    char *msg, *id, *names;
    char line[S_LINE];          /* start: the supervisor's report */
    size_t llen;
    evr_tarout_t *tar;          /* get */
};

static void s_turn(evr_loop_t *loop, void *arg);

/* ------------------------------------------------------------ operations */

static s_op_t *
s_op_new(s_ex_t *ex, s_kind_t kind, const char *name, evr_exec_fn *fn, void *arg)
{
    s_op_t *op = evr_calloc(1, sizeof *op);
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
s_unwatch(s_op_t *op)
{
    s_ex_t *ex = op->ex;
    if (op->wd < 0)
        return;
    bool shared = false;
    for (s_op_t *o = ex->ops; o && !shared; o = o->next)
        shared = o != op && o->wd == op->wd;
    if (!shared)
        inotify_rm_watch(ex->ino, op->wd);
    op->wd = -1;
}

/*  Lets go of what the operation holds in the loop and the kernel. */
static void
s_op_release(s_op_t *op)
{
    s_ex_t *ex = op->ex;
    evr_loop_timer_cancel(ex->base.loop, op->timer);
    evr_loop_timer_cancel(ex->base.loop, op->kill_timer);
    op->timer = op->kill_timer = 0;
    s_unwatch(op);
    for (int i = 0; i < 2; i++)
        if (op->fd[i] >= 0) {
            if (op->kind == K_START)
                evr_loop_fd_remove(ex->base.loop, op->fd[i]);
            close(op->fd[i]);
            op->fd[i] = -1;
        }
    evr_tarout_destroy(&op->tar);
}

static void
s_op_free(s_op_t *op)
{
    free(op->name);
    free(op->dir);
    free(op->msg);
    free(op->id);
    free(op->names);
    free(op);
}

static void
s_unlink(s_op_t *op)
{
    for (s_op_t **pp = &op->ex->ops; *pp; pp = &(*pp)->next)
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
    s_op_t *op = arg;
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
s_post(s_op_t *op)
{
    if (op->done)
        return;
    op->done = true;
    evr_loop_timer_cancel(op->ex->base.loop, op->timer);
    op->timer = evr_loop_timer_add(op->ex->base.loop, 0, s_fire, op);
}

static void
s_ok(s_op_t *op)
{
    s_post(op);
}

static void s_fail(s_op_t *op, evr_rc_t rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
s_fail(s_op_t *op, evr_rc_t rc, const char *fmt, ...)
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

static void
s_not_found(s_op_t *op)
{
    op->r.not_found = true;
    s_fail(op, EVR_ERR_IO, "no such unit %s (%s/%s)", op->name, op->ex->units, op->name);
}

/*  The operation's next turn in ms (replacing one planned). */
static void
s_kick(s_op_t *op, uint64_t ms)
{
    if (op->done)
        return;
    evr_loop_timer_cancel(op->ex->base.loop, op->timer);
    op->timer = evr_loop_timer_add(op->ex->base.loop, ms, s_turn, op);
    op->soon = ms == 0;
}

/*  Nothing to do until the unit changes: the watch, or the backstop. */
static void
s_idle(s_op_t *op)
{
    s_kick(op, op->ex->ino >= 0 && op->wd >= 0 ? S_BACKSTOP_MS : S_POLL_MS);
}

/* ---------------------------------------------------------------- inotify */

static void
s_on_inotify(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) loop;
    (void) events;
    s_ex_t *ex = arg;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *e = (const struct inotify_event *) p;
            /* a fast writer makes an event per write: one turn for them all */
            for (s_op_t *op = ex->ops; op; op = op->next)
                if (!op->done && !op->soon && (op->wd == e->wd || (e->mask & IN_Q_OVERFLOW)))
                    s_kick(op, 0);
            p += sizeof *e + e->len;
        }
    }
}

/*  Watches op->dir (nothing without inotify: the timer polls then). */
static void
s_watch(s_op_t *op)
{
    if (op->ex->ino < 0)
        return;
    op->wd = inotify_add_watch(op->ex->ino, op->dir, IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO
                                                         | IN_CREATE | IN_DELETE_SELF
                                                         | IN_MOVE_SELF);
}

/* ---------------------------------------------------------------- helpers */

static char *
s_unit_dir(const s_ex_t *ex, const char *name)
{
    return evr_asprintf("%s/%s", ex->units, name);
}

/*  A new op for a unit name; done already (failed) when the name is bad. */
static s_op_t *
s_unit_op(s_ex_t *ex, s_kind_t kind, const char *name, evr_exec_fn *fn, void *arg)
{
    s_op_t *op = s_op_new(ex, kind, name, fn, arg);
    op->dir = s_unit_dir(ex, op->name);
    if (!name || !evr_unit_name_ok(name))
        s_fail(op, EVR_ERR_IO, "\"%s\": not a unit name (1-200 bytes, no '/', not starting "
               "with '.')", op->name);
    return op;
}

/*  Probes op->dir; false once the op has failed (it could not be read). */
static bool
s_probe(s_op_t *op, evr_unit_info_t *info)
{
    evr_err_t err;
    if (evr_unit_probe(op->dir, info, &err) == EVR_OK)
        return true;
    s_fail(op, EVR_ERR_IO, "%s", err.msg);
    return false;
}

static void
s_lost(s_op_t *op)
{
    s_fail(op, EVR_ERR_IO, "the supervisor of %s ended without writing its exit status (was "
           "it killed?): see %s/supervisor.log", op->name, op->dir);
}

/* ------------------------------------------------------------ create, start */

static void
s_create(evr_exec_t *base, const evr_exec_spec_t *spec, evr_exec_fn *fn, void *arg)
{
    s_ex_t *ex = (s_ex_t *) base;
    s_op_t *op = s_unit_op(ex, K_CALL, spec->name, fn, arg);
    if (op->done)
        return;
    if (!spec->job_id || !evr_unit_name_ok(spec->job_id)) {
        s_fail(op, EVR_ERR_IO, "%s: \"%s\" is not a job id", op->name,
               spec->job_id ? spec->job_id : "");
        return;
    }
    if (spec->layout != EVR_EXEC_LAYOUT_WORKSPACE) {   /* the spec refuses a source here */
        s_fail(op, EVR_ERR_IO, "%s: the process executor has no /job layout", op->name);
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
        env[k++] = output;   /* first: it wins over a step's own EVRUN_OUTPUT */
    for (uint32_t i = 0; i < n; i++) {
        has_home |= !strcmp(spec->env->k[i], "HOME");
        own[i] = evr_asprintf("%s=%s", spec->env->k[i], spec->env->v[i]);
        if (strcmp(spec->env->k[i], "PATH") && (!ctl || strcmp(spec->env->k[i], "EVRUN_CONTROL")))
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
                                    .cpu_s = (spec->limits->cpu + 999) / 1000,
                                    .memory = spec->limits->memory };
    evr_rc_t rc = evr_unit_make(ex->units, spec->name, spec->script ? spec->script : "", env, k,
                                ws, &lim, &exists, &err);
    if (rc)
        s_fail(op, rc, "creating %s: %s", spec->name, err.msg);
    else if (exists) {
        op->r.exists = true;
        s_fail(op, EVR_ERR_IO, "%s exists already (%s)", spec->name, op->dir);
    }
    else {
        op->id = evr_strdup(spec->name);   /* no pid before it starts */
        s_ok(op);
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

/*  The supervisor's report: "started PID NS" or "error MESSAGE", then
    the end of the pipe. */
static void
s_on_report(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) loop;
    (void) events;
    s_op_t *op = arg;
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
        s_ok(op);
    }
    else if (!strncmp(op->line, "error ", 6))
        s_fail(op, EVR_ERR_IO, "starting %s: %s", op->name, op->line + 6);
    else
        s_fail(op, EVR_ERR_IO, "starting %s: its supervisor (/proc/self/exe %s %s) ended "
               "without a word: see %s/supervisor.log", op->name, "--shim", op->dir, op->dir);
}

static bool
s_spawn_shim(s_op_t *op)
{
    evr_err_t err;
    if (evr_shim_spawn(op->dir, &op->fd[0], &err)) {
        s_fail(op, EVR_ERR_IO, "starting %s: %s", op->name, err.msg);
        return false;
    }
    if (evr_loop_fd_add(op->ex->base.loop, op->fd[0], EVR_LOOP_READ, s_on_report, op)) {
        s_fail(op, EVR_ERR_IO, "starting %s: the loop watches too many fds (%d) to hear its "
               "supervisor", op->name, EVR_LOOP_MAX_FDS);
        return false;
    }
    return true;
}

static void
s_start(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg)
{
    s_op_t *op = s_unit_op((s_ex_t *) base, K_START, name, fn, arg);
    evr_unit_info_t info;
    if (op->done || !s_probe(op, &info))
        return;
    switch (info.state) {
    case EVR_EXEC_ABSENT: s_not_found(op); return;
    case EVR_EXEC_RUNNING:
    case EVR_EXEC_PAUSED:
        if (info.pid)
            op->id = evr_asprintf("%ld", (long) info.pid);
        s_ok(op);   /* as podman: starting a running unit does nothing */
        return;
    case EVR_EXEC_EXITED:
        s_fail(op, EVR_ERR_IO, "%s has run already (%s)", name, op->dir);
        return;
    case EVR_EXEC_CREATED: s_spawn_shim(op); return;
    }
}

/* ----------------------------------------------------- attach, logs, detach */

/*  Opens the output files of op->dir; false once the op has failed. */
static bool
s_open_output(s_op_t *op)
{
    static const char *const files[2] = { "stdout", "stderr" };
    for (int i = 0; i < 2; i++) {
        char *p = evr_asprintf("%s/%s", op->dir, files[i]);
        op->fd[i] = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        int e = errno;
        free(p);
        if (op->fd[i] < 0) {
            if (e == ENOENT)
                s_not_found(op);
            else
                s_fail(op, EVR_ERR_IO, "opening %s/%s: %s", op->dir, files[i], strerror(e));
            return false;
        }
    }
    return true;
}

/*  Reads at most S_CHUNK of each stream and passes it on; true when
    something was read (more may follow).  The op may be done after. */
static bool
s_read_some(s_op_t *op)
{
    static const char *const files[2] = { "stdout", "stderr" };
    bool more = false;
    for (int si = 0; si < 2 && !op->done; si++) {
        if (op->off[si] >= op->end[si])
            continue;
        uint64_t want = op->end[si] - op->off[si];
        ssize_t n = pread(op->fd[si], op->ex->buf, want < S_CHUNK ? (size_t) want : S_CHUNK,
                          (off_t) op->off[si]);
        if (n < 0 && errno == EINTR) {
            more = true;
            continue;
        }
        if (n < 0) {
            s_fail(op, EVR_ERR_IO, "reading %s/%s at %" PRIu64 ": %s", op->dir, files[si],
                   op->off[si], strerror(errno));
            return false;
        }
        if (n == 0)
            continue;
        op->off[si] += (uint64_t) n;
        op->out(si + 1, op->ex->buf, (size_t) n, op->arg);
        more = true;
    }
    return more;
}

/*  One turn of an attach or logs. */
static void
s_tail_turn(s_op_t *op)
{
    if (op->kind == K_ATTACH && !op->headed) {
        op->headed = true;
        evr_exec_result_t r = { 0 };
        if (op->head)
            op->head(&r, op->arg);
        s_kick(op, 0);   /* nothing when head detached it */
        return;
    }
    if (s_read_some(op)) {
        s_kick(op, 0);
        return;
    }
    if (op->done)
        return;
    if (op->kind == K_LOGS || op->final) {
        s_ok(op);
        return;
    }
    evr_unit_info_t info;
    if (!s_probe(op, &info))
        return;
    if (info.state == EVR_EXEC_ABSENT) {
        s_fail(op, EVR_ERR_IO, "%s was removed while its output was read", op->name);
        return;
    }
    if (info.lost) {
        s_lost(op);
        return;
    }
    if (info.state == EVR_EXEC_EXITED) {
        /* the output is the files' first size[] bytes: read up to there */
        op->end[0] = info.size[0];
        op->end[1] = info.size[1];
        op->final = true;
        s_kick(op, 0);
        return;
    }
    s_idle(op);
}


static void *
s_attach(evr_exec_t *base, const char *name, evr_exec_output_fn *out, evr_exec_fn *head,
         evr_exec_fn *done, void *arg)
{
    s_op_t *op = s_unit_op((s_ex_t *) base, K_ATTACH, name, done, arg);
    op->out = out;
    op->head = head;
    op->end[0] = op->end[1] = UINT64_MAX;
    if (!op->done && s_open_output(op)) {
        s_watch(op);
        s_kick(op, 0);
    }
    return op;
}

/*  The files hold raw output, every byte of them final once written: a
    read so far is a prefix of the final output whether so_far or not. */
static void *
s_logs(evr_exec_t *base, const char *name, const uint64_t from[2], bool so_far,
       evr_exec_output_fn *out, evr_exec_fn *done, void *arg)
{
    (void) so_far;
    s_op_t *op = s_unit_op((s_ex_t *) base, K_LOGS, name, done, arg);
    op->out = out;
    evr_unit_info_t info;
    if (op->done || !s_probe(op, &info))
        return op;
    if (info.state == EVR_EXEC_ABSENT) {
        s_not_found(op);
        return op;
    }
    if (!s_open_output(op))
        return op;
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (info.state == EVR_EXEC_EXITED && !info.lost)
            op->end[i] = info.size[i];
        else if (fstat(op->fd[i], &st) == 0)
            op->end[i] = (uint64_t) st.st_size;
        op->off[i] = from ? from[i] : 0;
    }
    s_kick(op, 0);
    return op;
}

static void
s_detach(evr_exec_t *base, void *handle)
{
    (void) base;
    s_op_t *op = handle;
    if (op && !op->done)
        s_fail(op, EVR_ERR_IO, "%s: output no longer followed (detached)", op->name);
}

/* ------------------------------------------------------------------ wait */

static void
s_wait_turn(s_op_t *op)
{
    evr_unit_info_t info;
    if (!s_probe(op, &info))
        return;
    if (info.state == EVR_EXEC_ABSENT)
        s_not_found(op);
    else if (info.lost)
        s_lost(op);
    else if (info.state == EVR_EXEC_EXITED) {
        op->r.exit_code = info.exit_code;
        s_ok(op);
    }
    else
        s_idle(op);
}

static void
s_wait(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg)
{
    s_op_t *op = s_unit_op((s_ex_t *) base, K_WAIT, name, fn, arg);
    if (op->done)
        return;
    s_watch(op);
    s_kick(op, 0);
}

/* --------------------------------------------------- inspect, pause, resume */

static void
s_inspect(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg)
{
    s_op_t *op = s_unit_op((s_ex_t *) base, K_CALL, name, fn, arg);
    evr_unit_info_t info;
    if (op->done || !s_probe(op, &info))
        return;
    op->r.state = info.state;
    if (info.state == EVR_EXEC_ABSENT) {
        s_not_found(op);
        return;
    }
    op->id = info.pid ? evr_asprintf("%ld", (long) info.pid) : evr_strdup(op->name);
    op->r.exit_code = info.exit_code;
    op->r.started_at = info.started_at;
    if (info.lost)
        op->msg = evr_strdup("its supervisor ended without writing its exit status");
    s_ok(op);
}

/*  Signals a running unit's group; false once the op has failed. */
static bool
s_signal(s_op_t *op, int sig, bool *sent)
{
    evr_err_t err;
    if (evr_unit_signal(op->dir, sig, sent, &err) == EVR_OK)
        return true;
    s_fail(op, EVR_ERR_IO, "%s", err.msg);
    return false;
}

static void
s_not_running(s_op_t *op, const evr_unit_info_t *info)
{
    if (info->state == EVR_EXEC_ABSENT)
        s_not_found(op);
    else
        s_fail(op, EVR_ERR_IO, "%s is not running (%s)", op->name,
               evr_exec_state_name(info->state));
}

/*  The op of a call on a unit that must run (or be paused); NULL when the
    call has been answered already (the probe failed, or it does not run). */
static s_op_t *
s_running_op(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg,
             evr_unit_info_t *info)
{
    s_op_t *op = s_unit_op((s_ex_t *) base, K_CALL, name, fn, arg);
    if (op->done || !s_probe(op, info))
        return NULL;
    if (info->state != EVR_EXEC_RUNNING && info->state != EVR_EXEC_PAUSED) {
        s_not_running(op, info);
        return NULL;
    }
    return op;
}

/*  The marker first, then SIGSTOP: a runner killed between the two
    finds it paused and resumes it if the job is not. */
static void
s_pause(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_unit_info_t info;
    s_op_t *op = s_running_op(base, name, fn, arg, &info);
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
        s_fail(op, EVR_ERR_IO, "%s is not running (it has exited)", op->name);
    }
    if (dfd >= 0)
        close(dfd);
    if (rc)
        s_fail(op, rc, "%s", err.msg);
    s_ok(op);   /* nothing when it failed */
}

/*  SIGCONT first, then the marker goes: a runner killed between the two
    finds it paused and resumes it again, which does no harm. */
static void
s_resume(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_unit_info_t info;
    s_op_t *op = s_running_op(base, name, fn, arg, &info);
    if (!op)
        return;
    bool sent;
    if (!s_signal(op, SIGCONT, &sent))
        return;
    char *p = evr_asprintf("%s/paused", op->dir);
    if (unlink(p) != 0 && errno != ENOENT)
        s_fail(op, EVR_ERR_IO, "removing %s: %s", p, strerror(errno));
    free(p);
    s_ok(op);
}

/* ------------------------------------------------------------------ stop */

static void
s_stop_kill(evr_loop_t *loop, void *arg)
{
    (void) loop;
    s_op_t *op = arg;
    op->kill_timer = 0;
    bool sent;
    if (s_signal(op, SIGKILL, &sent))
        s_kick(op, 0);
}

static void
s_stop_turn(s_op_t *op)
{
    evr_unit_info_t info;
    if (!s_probe(op, &info))
        return;
    if (info.state == EVR_EXEC_RUNNING || info.state == EVR_EXEC_PAUSED)
        s_idle(op);
    else
        s_ok(op);   /* ended (or gone, or never started) */
}

/*  TERM (or KILL) to the group, CONT so that a paused one gets it; then
    KILL after the grace, and the outcome once it has ended.  Stays in
    flight (for its KILL) even when fn is NULL. */
static void
s_stop(evr_exec_t *base, const char *name, int grace_s, evr_exec_fn *fn, void *arg)
{
    s_op_t *op = s_unit_op((s_ex_t *) base, K_STOP, name, fn, arg);
    evr_unit_info_t info;
    if (op->done || !s_probe(op, &info))
        return;
    if (info.state == EVR_EXEC_ABSENT) {
        s_not_found(op);
        return;
    }
    if (info.state != EVR_EXEC_RUNNING && info.state != EVR_EXEC_PAUSED) {
        s_ok(op);
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
    s_watch(op);
    s_kick(op, 0);
}

/* ---------------------------------------------------------------- remove */

static bool
s_starting(const s_op_t *op)
{
    for (const s_op_t *o = op->ex->ops; o; o = o->next)
        if (o->kind == K_START && !o->done && !strcmp(o->name, op->name))
            return true;
    return false;
}

/*  The unit has been moved aside (its name is free): kill what runs,
    remove the directory once its supervisor has ended. */
static void
s_remove_turn(s_op_t *op)
{
    evr_unit_info_t info;
    if (!s_probe(op, &info))
        return;
    if (info.state == EVR_EXEC_RUNNING || info.state == EVR_EXEC_PAUSED || s_starting(op)) {
        bool sent;
        if (s_signal(op, SIGKILL, &sent) && s_signal(op, SIGCONT, &sent))
            s_idle(op);
        return;
    }
    evr_err_t err;
    if (evr_unit_rmtree(op->dir, &err))
        s_fail(op, EVR_ERR_IO, "removing %s: %s", op->name, err.msg);
    else
        s_ok(op);
}

static void
s_remove(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg)
{
    s_ex_t *ex = (s_ex_t *) base;
    s_op_t *op = s_unit_op(ex, K_REMOVE, name, fn, arg);
    evr_unit_info_t info;
    if (op->done || !s_probe(op, &info))
        return;
    if (info.state == EVR_EXEC_ABSENT) {
        s_not_found(op);
        return;
    }
    char *trash = evr_asprintf("%s/.rm-%s-%ld-%" PRIu64, ex->units, name, (long) getpid(),
                               ++ex->seq);
    if (rename(op->dir, trash) != 0) {
        s_fail(op, EVR_ERR_IO, "removing %s: renaming %s to %s: %s", name, op->dir, trash,
               strerror(errno));
        free(trash);
        return;
    }
    free(op->dir);
    op->dir = trash;
    s_watch(op);
    s_kick(op, 0);
}

/* ------------------------------------------------- list, workspaces, get */

/*  The names in dir (starting with prefix) into op->names, or failed. */
static void
s_names(s_op_t *op, const char *dir, const char *prefix)
{
    evr_err_t err;
    if ((op->names = evr_exec_process_ws_names(dir, prefix, &err)))
        s_ok(op);
    else
        s_fail(op, EVR_ERR_IO, "%s", err.msg);
}

static void
s_list(evr_exec_t *base, const char *prefix, evr_exec_fn *fn, void *arg)
{
    s_ex_t *ex = (s_ex_t *) base;
    s_names(s_op_new(ex, K_CALL, prefix, fn, arg), ex->units, prefix);
}

/*  A new op for a job's workspace; done already (failed) on a bad id. */
static s_op_t *
s_ws_op(s_ex_t *ex, const char *job_id, evr_exec_fn *fn, void *arg)
{
    s_op_t *op = s_op_new(ex, K_CALL, job_id, fn, arg);
    if (!job_id || !evr_unit_name_ok(job_id))
        s_fail(op, EVR_ERR_IO, "\"%s\": not a job id", op->name);
    return op;
}

/*  The outcome of a workspace call. */
static void
s_ws_done(s_op_t *op, evr_rc_t rc, bool not_found, const evr_err_t *err)
{
    op->r.not_found = not_found;
    if (rc)
        s_fail(op, rc, "%s", err->msg);
    else
        s_ok(op);
}

static void
s_ws_create(evr_exec_t *base, const char *job_id, evr_exec_fn *fn, void *arg)
{
    s_ex_t *ex = (s_ex_t *) base;
    s_op_t *op = s_ws_op(ex, job_id, fn, arg);
    evr_err_t err;
    if (op->done)
        return;
    evr_rc_t rc = evr_exec_process_ws_create(ex->work, job_id, &op->r.exists, &err);
    s_ws_done(op, rc, false, &err);
}

static void
s_ws_remove(evr_exec_t *base, const char *job_id, evr_exec_fn *fn, void *arg)
{
    s_ex_t *ex = (s_ex_t *) base;
    s_op_t *op = s_ws_op(ex, job_id, fn, arg);
    evr_err_t err;
    bool nf = false;
    if (op->done)
        return;
    evr_rc_t rc = evr_exec_process_ws_remove(ex->work, job_id, &ex->seq, &nf, &err);
    s_ws_done(op, rc, nf, &err);
}

/*  The host directory of a job's workspace (a hook's context); no cache
    volumes here (no cache_remove: a pipeline with caches is refused). */
static void
s_dir(evr_exec_t *base, const char *job_id, const char *volume, evr_exec_fn *fn, void *arg)
{
    s_ex_t *ex = (s_ex_t *) base;
    s_op_t *op = s_ws_op(ex, volume ? NULL : job_id, fn, arg);
    if (op->done)
        return;
    op->names = evr_asprintf("%s/%s", ex->work, job_id);
    s_ok(op);
}

static void
s_ws_list(evr_exec_t *base, evr_exec_fn *fn, void *arg)
{
    s_ex_t *ex = (s_ex_t *) base;
    s_names(s_op_new(ex, K_CALL, NULL, fn, arg), ex->work, NULL);
}

static void
s_put(evr_exec_t *base, const char *job_id, evr_exec_area_t area, const char *image,
      const char *tar_file, evr_exec_fn *fn, void *arg)
{
    (void) image;
    s_ex_t *ex = (s_ex_t *) base;
    s_op_t *op = s_ws_op(ex, job_id, fn, arg);
    evr_err_t err;
    bool nf = false;
    if (op->done)
        return;
    if (area != EVR_EXEC_AREA_WORKSPACE) {   /* the spec refuses a source here */
        s_fail(op, EVR_ERR_IO, "the process executor has no CI area (no /job layout)");
        return;
    }
    evr_rc_t rc = evr_exec_process_ws_put(ex->work, job_id, tar_file, &nf, &err);
    s_ws_done(op, rc, nf, &err);
}

static bool
s_get_data(const uint8_t *data, size_t len, void *arg)
{
    s_op_t *op = arg;
    return op->data(data, len, op->arg);
}

static void
s_get_turn(s_op_t *op)
{
    bool done = false;
    evr_err_t err;
    if (evr_tarout_step(op->tar, 4 * S_CHUNK, &done, &err))
        s_fail(op, EVR_ERR_IO, "copying out of %s: %s", op->name, err.msg);
    else if (done)
        s_ok(op);
    else
        s_kick(op, 0);
}

/*  The stream is made at once; it is copied a turn at a time. */
static void
s_get(evr_exec_t *base, const char *name, const char *job_id, evr_exec_layout_t layout,
      const char *path, evr_exec_data_fn *data, evr_exec_fn *fn, void *arg)
{
    (void) name;
    (void) layout;   /* one layout: the workspace directory */
    s_ex_t *ex = (s_ex_t *) base;
    s_op_t *op = s_ws_op(ex, job_id, fn, arg);
    op->kind = K_GET;
    op->data = data;
    if (op->done)
        return;
    free(op->name);
    op->name = evr_asprintf("%s/%s/%s", ex->work, job_id, path ? path : "");   /* for messages */
    evr_err_t err;
    bool nf = false;
    op->tar = evr_exec_process_ws_get(ex->work, job_id, path, s_get_data, op, &nf, &err);
    if (op->tar)
        s_kick(op, 0);
    else
        s_ws_done(op, EVR_ERR_IO, nf, &err);
}

/* ------------------------------------------------------- words, lifecycle */

static void
s_turn(evr_loop_t *loop, void *arg)
{
    (void) loop;
    s_op_t *op = arg;
    op->timer = 0;
    op->soon = false;
    if (op->done)
        return;
    switch (op->kind) {
    case K_ATTACH:
    case K_LOGS: s_tail_turn(op); break;
    case K_WAIT: s_wait_turn(op); break;
    case K_STOP: s_stop_turn(op); break;
    case K_REMOVE: s_remove_turn(op); break;
    case K_GET: s_get_turn(op); break;
    case K_CALL:
    case K_START: break;
    }
}

static void
s_remove_hint(const evr_exec_t *base, const char *name, char *buf, size_t size)
{
    char *dir = s_unit_dir((const s_ex_t *) base, name);
    evr_unit_remove_hint(dir, buf, size);
    free(dir);
}

static const char *
s_describe(const evr_exec_t *base)
{
    return ((const s_ex_t *) base)->describe;
}

static void
s_destroy(evr_exec_t *base)
{
    s_ex_t *ex = (s_ex_t *) base;
    while (ex->ops) {
        s_op_t *op = ex->ops;
        s_op_release(op);
        ex->ops = op->next;
        s_op_free(op);
    }
    if (ex->ino >= 0) {
        evr_loop_fd_remove(ex->base.loop, ex->ino);
        close(ex->ino);
    }
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
    .attach = s_attach,
    .detach = s_detach,
    .logs = s_logs,
    .wait = s_wait,
    .inspect = s_inspect,
    .pause = s_pause,
    .resume = s_resume,
    .stop = s_stop,
    .remove = s_remove,
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
    s_ex_t *ex = evr_calloc(1, sizeof *ex);
    ex->base.ops = &s_ops;
    ex->base.loop = loop;
    ex->ino = -1;
    ex->state_dir = evr_strdup(state_dir);
    ex->units = evr_asprintf("%s/units", state_dir);
    ex->work = evr_asprintf("%s/work", state_dir);
    ex->describe = evr_asprintf("process (host commands in %s)", ex->work);
    if (!s_mkdir(ex->units, err) || !s_mkdir(ex->work, err)) {
        s_destroy(&ex->base);
        return NULL;
    }
    evr_unit_sweep(ex->units);
    evr_unit_sweep(ex->work);
    ex->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ex->ino >= 0 && evr_loop_fd_add(loop, ex->ino, EVR_LOOP_READ, s_on_inotify, ex)) {
        close(ex->ino);
        ex->ino = -1;   /* the timers poll instead */
    }
    return &ex->base;
}
