/*  evr_hook_run.c: one run of a lifecycle hook, on the runner's loop.

    fork, then in the child: its own process group, signals unblocked
    (the loop blocks the ones it reads through a signalfd), stdin, stdout
    and stderr on pipes, `/bin/sh -c RUN`.  The parent writes the input
    without blocking, reads stdout (up to EVR_HOOK_OUT_MAX bytes, the rest
    drained) and stderr (up to EVR_HOOK_ERR_MAX), and learns of the exit
    through a pidfd (or, where there is none, a 20 ms poll of waitpid).
    The run ends once the child has exited and both pipes have ended, or
    at its timeout: then its whole process group is killed (SIGKILL) and
    reaped; a run whose child had exited while a process it moved out of
    its group (setsid) held a pipe open times out too, saying so (held):
    that process is not the hook's to kill, and its output no answer.  A stop (a cancelled job) sends SIGTERM to the group and
    SIGKILL after a grace.  The callback always comes from a turn of the
    loop.

    A runner killed (kill -9) takes the hook's shell with it (the
    parent-death signal), not what the shell runs: so the group is
    recorded in the state directory (evr_hook_pg.h) while it runs, and
    the child waits on a fourth pipe until the record is written before
    it runs the command.  The next runner kills the recorded group before
    any hook runs again; a runner killed before it wrote the record
    closes that pipe by dying, and the child exits without running it.
*/
#define _GNU_SOURCE
#include "evr_hooks.h"

#include "evr_hook_pg.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct evr_hook_run {
    evr_loop_t *loop;
    evr_hook_done_fn *fn;
    void *arg;
    pid_t pid;
    char *dir;                  /* where its group's record is (NULL: none) */
    bool kept;                  /* the record written: removed once the group is killed */
    int in, out, err, pidfd;    /* -1 once closed */
    char *input;
    size_t in_len, in_off;
    char *obuf;
    size_t olen;
    bool ocut;
    bool ecut;
    char ebuf[EVR_HOOK_ERR_MAX + 1];
    size_t elen;
    bool exited, timed_out, stopped;
    int held;                   /* timed out after the exit: the pipes still open (1 out, 2 err) */
    int status;
    uint64_t t0, timer, poll;
    char msg[EVR_ERR_MAX];
};

static void s_check(evr_hook_run_t *r);

static void
s_close(evr_hook_run_t *r, int *fd)
{
    if (*fd >= 0) {
        evr_loop_fd_remove(r->loop, *fd);
        close(*fd);
        *fd = -1;
    }
}

static void
s_free(evr_hook_run_t *r)
{
    s_close(r, &r->in);
    s_close(r, &r->out);
    s_close(r, &r->err);
    s_close(r, &r->pidfd);
    evr_loop_timer_cancel(r->loop, r->timer);
    evr_loop_timer_cancel(r->loop, r->poll);
    if (r->kept)   /* every way here killed the group and reaped its leader */
        evr_hook_pg_drop(r->dir, r->pid);
    free(r->dir);
    free(r->input);
    free(r->obuf);
    free(r);
}

static void
s_finish(evr_hook_run_t *r)
{
    r->obuf[r->olen] = '\0';
    r->ebuf[r->elen] = '\0';   /* as written: the engine masks it, then makes it one line */
    evr_hook_result_t res = {
        .end = r->pid <= 0 ? EVR_HOOK_NOT_RUN : r->stopped ? EVR_HOOK_STOPPED
               : r->timed_out || r->held ? EVR_HOOK_TIMED_OUT : EVR_HOOK_EXITED,
        .out = r->obuf, .out_len = r->olen, .out_cut = r->ocut, .err_text = r->ebuf,
        .err_cut = r->ecut,
        .duration_ms = (evr_mono_ns() - r->t0) / 1000000u, .msg = r->msg, .held = r->held,
    };
    if (res.end == EVR_HOOK_EXITED || r->held) {
        res.exit_code = WIFEXITED(r->status) ? WEXITSTATUS(r->status)
                                             : 128 + WTERMSIG(r->status);
        res.wait_status = r->status;
    }
    r->fn(&res, r->arg);
    s_free(r);
}

/*  Kills the group and reaps the child (SIGKILL: the wait is short).
    Once the child is reaped its group was killed already (s_reap), and
    its id may be another's now: nothing is sent. */
static void
s_kill(evr_hook_run_t *r)
{
    if (r->pid <= 0 || r->exited)
        return;
    kill(-r->pid, SIGKILL);
    if (!r->exited) {
        while (waitpid(r->pid, &r->status, 0) < 0 && errno == EINTR)
            ;
        r->exited = true;
    }
}

/*  Once the hook has exited: what it left running in its group is killed
    (while its zombie still holds the group's id), then it is reaped. */
static void
s_reap(evr_hook_run_t *r)
{
    if (r->exited)
        return;
    siginfo_t si = { 0 };
    if (waitid(P_PID, (id_t) r->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0)
        return;   /* it runs */
    kill(-r->pid, SIGKILL);
    while (waitpid(r->pid, &r->status, 0) < 0 && errno == EINTR)
        ;
    r->exited = true;
    s_close(r, &r->pidfd);
    evr_loop_timer_cancel(r->loop, r->poll);
    r->poll = 0;
}

static void
s_check(evr_hook_run_t *r)
{
    s_reap(r);
    if (r->exited && r->out < 0 && r->err < 0)
        s_finish(r);
}

static void
s_on_timeout(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_hook_run_t *r = arg;
    r->timer = 0;
    r->timed_out = !r->exited && !r->stopped;
    if (r->exited && !r->stopped)   /* it ended, but a process out of its group holds a pipe */
        r->held = (r->out >= 0 ? 1 : 0) | (r->err >= 0 ? 2 : 0);
    s_kill(r);
    s_finish(r);
}

static void
s_on_poll(evr_loop_t *loop, void *arg)
{
    evr_hook_run_t *r = arg;
    r->poll = 0;
    s_reap(r);
    if (!r->exited)
        r->poll = evr_loop_timer_add(loop, 20, s_on_poll, r);
    s_check(r);
}

static void
s_on_pidfd(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) loop, (void) fd, (void) events;
    s_check(arg);
}

static void
s_on_in(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) loop, (void) events;
    evr_hook_run_t *r = arg;
    ssize_t n = write(fd, r->input + r->in_off, r->in_len - r->in_off);
    if (n > 0)
        r->in_off += (size_t) n;
    if ((n < 0 && errno != EAGAIN && errno != EINTR) || r->in_off == r->in_len)
        s_close(r, &r->in);   /* all written, or it does not read it (EPIPE) */
}

static void
s_on_read(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) loop, (void) events;
    evr_hook_run_t *r = arg;
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        s_close(r, fd == r->out ? &r->out : &r->err);
        s_check(r);
        return;
    }
    size_t k = (size_t) n;
    if (fd == r->out) {
        size_t room = EVR_HOOK_OUT_MAX - r->olen;
        if (k > room)
            r->ocut = true;
        memcpy(r->obuf + r->olen, tmp, k < room ? k : room);
        r->olen += k < room ? k : room;
    }
    else {
        size_t room = EVR_HOOK_ERR_MAX - r->elen;
        if (k > room)
            r->ecut = true;
        memcpy(r->ebuf + r->elen, tmp, k < room ? k : room);
        r->elen += k < room ? k : room;
    }
}

/*  In the child: never returns.  go: the pipe whose one byte says the
    group is recorded (its end of EOF: the runner died first). */
static void __attribute__((noreturn))
s_child(const char *run, int in, int out, int err, int go)
{
    setpgid(0, 0);
    /* a runner killed (kill -9) takes the shell with it at once; what the
       shell runs is killed by the next runner, through the record */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    char c;
    ssize_t n;
    while ((n = read(go, &c, 1)) < 0 && errno == EINTR)
        ;
    if (n != 1)
        _exit(127);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(127);
#ifdef SYS_close_range
    /* none of the runner's files (its store, its sockets) for the hook,
       CLOEXEC or not */
    syscall(SYS_close_range, 3u, ~0u, 0u);
#endif
    execl("/bin/sh", "sh", "-c", run, (char *) NULL);
    _exit(127);
}

static void
s_not_run(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_hook_run_t *r = arg;
    r->timer = 0;
    s_finish(r);
}

/*  Records the group of the child just forked, then lets it run (go: the
    write end of its pipe); false with r->msg when it cannot be recorded:
    the child, let go with EOF, exits unrun and is reaped. */
static bool
s_keep(evr_hook_run_t *r, int go)
{
    evr_err_t err;
    if (r->dir && evr_hook_pg_keep(r->dir, r->pid, &err)) {
        snprintf(r->msg, sizeof r->msg, "%s", err.msg);
        close(go);
        while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        r->pid = 0;
        return false;
    }
    r->kept = r->dir != NULL;
    ssize_t n;
    while ((n = write(go, "x", 1)) < 0 && errno == EINTR)
        ;
    close(go);
    return true;
}

evr_hook_run_t *
evr_hook_run(evr_loop_t *loop, const evr_hook_t *h, const char *dir, const char *input,
             size_t len, evr_hook_done_fn *fn, void *arg)
{
    evr_hook_run_t *r = evr_calloc(1, sizeof *r);
    r->loop = loop;
    r->fn = fn;
    r->arg = arg;
    r->in = r->out = r->err = r->pidfd = -1;
    r->dir = dir ? evr_strdup(dir) : NULL;
    r->obuf = evr_malloc(EVR_HOOK_OUT_MAX + 1);
    r->input = evr_malloc(len + 1);
    memcpy(r->input, input, len);
    r->in_len = len;
    r->t0 = evr_mono_ns();
    int p[4][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 } };   /* in out err go */
    for (int i = 0; i < 4; i++)
        if (pipe2(p[i], O_CLOEXEC) != 0) {
            snprintf(r->msg, sizeof r->msg, "pipe: %s", strerror(errno));
            goto fail;
        }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r->msg, sizeof r->msg, "fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        close(p[3][1]);   /* its EOF must come when the runner dies */
        s_child(h->run, p[0][0], p[1][1], p[2][1], p[3][0]);
    }
    setpgid(pid, pid);   /* as the child does: no race with a kill of the group */
    r->pid = pid;
    close(p[0][0]);
    close(p[1][1]);
    close(p[2][1]);
    close(p[3][0]);
    p[0][0] = p[1][1] = p[2][1] = p[3][0] = -1;
    int go = p[3][1];
    p[3][1] = -1;
    if (!s_keep(r, go))
        goto fail;
    r->in = p[0][1];
    r->out = p[1][0];
    r->err = p[2][0];
    for (int i = 0; i < 3; i++) {
        int fd = i == 0 ? r->in : i == 1 ? r->out : r->err;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    if (len)
        evr_loop_fd_add(loop, r->in, EVR_LOOP_WRITE, s_on_in, r);
    else
        s_close(r, &r->in);
    evr_loop_fd_add(loop, r->out, EVR_LOOP_READ, s_on_read, r);
    evr_loop_fd_add(loop, r->err, EVR_LOOP_READ, s_on_read, r);
#ifdef SYS_pidfd_open
    r->pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
#endif
    if (r->pidfd >= 0)
        evr_loop_fd_add(loop, r->pidfd, EVR_LOOP_READ, s_on_pidfd, r);
    else
        r->poll = evr_loop_timer_add(loop, 20, s_on_poll, r);
    r->timer = evr_loop_timer_add(loop, (uint64_t) h->timeout * 1000u, s_on_timeout, r);
    return r;
fail:
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 2; k++)
            if (p[i][k] >= 0)
                close(p[i][k]);
    r->timer = evr_loop_timer_add(loop, 0, s_not_run, r);
    return r;
}

void
evr_hook_run_abort(evr_hook_run_t *r)
{
    if (!r)
        return;
    s_kill(r);
    s_free(r);
}

void
evr_hook_run_stop(evr_hook_run_t *r, uint32_t grace_ms)
{
    if (!r || r->pid <= 0 || (r->stopped && grace_ms))
        return;   /* a second stop only shortens the grace to none */
    if (!r->stopped && !r->exited)
        kill(-r->pid, SIGTERM);
    r->stopped = true;
    evr_loop_timer_cancel(r->loop, r->timer);
    r->timer = evr_loop_timer_add(r->loop, grace_ms, s_on_timeout, r);
}
