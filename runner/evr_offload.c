/*  evr_offload.c: work in a forked child, its fixed-size result read back
    through a pipe the loop watches (see evr_offload.h).  The same shape
    as a git checkout's child (evr_source.c): the pipe's end says the
    child is done, a short timer reaps it.  A cancelled work's child is
    killed and reaped from the loop's timers too (evr_reap.h): the loop
    never waits in waitpid for a child that may take its time to die (a
    write to a slow disk finishing first).  The
    works under way are on a list (s_live) that the runner's exit reads:
    what is still running then is killed and named (evr_offload_abandon). */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_log.h"
#include "evr_offload.h"
#include "evr_reap.h"
#include "evr_unit.h"

#define S_REAP_MS 2
#define S_CLOSE_MAX 65536   /* fds the child closes one by one at most */

struct evr_offload {
    evr_loop_t *loop;
    evr_offload_done_fn *done;
    void *arg;
    pid_t pid;
    int fd;                 /* the child's end of the pipe; -1 once it ended */
    uint64_t timer;
    size_t size, got;
    unsigned char out[EVR_OFFLOAD_MAX];
    char why[256];          /* set: the work failed to run */
    bool unstarted;         /* ... its child could not start or be watched */
    char *temps[EVR_OFFLOAD_TEMPS];
    bool tree[EVR_OFFLOAD_TEMPS];   /* the temp is a directory, removed whole */
    size_t ntemps;
    uint64_t t0;            /* evr_mono_ns at the start */
    char what[160];         /* what the work does, in words (evr_offload_what) */
    evr_offload_t *live;    /* on s_live while its child runs, watched */
};

/*  The works whose child runs and is watched: started, not yet reported
    nor cancelled. */
static evr_offload_t *s_live;

static void
s_unlive(evr_offload_t *self)
{
    for (evr_offload_t **p = &s_live; *p; p = &(*p)->live)
        if (*p == self) {
            *p = self->live;
            self->live = NULL;
            return;
        }
}

static void s_report(evr_offload_t *self);

static void
s_reap(evr_loop_t *loop, void *arg)
{
    evr_offload_t *self = arg;
    self->timer = 0;
    int status = 0;
    pid_t r = self->pid > 0 ? waitpid(self->pid, &status, WNOHANG) : -1;
    if (r == 0) {   /* its pipe closed a moment before it exits */
        self->timer = evr_loop_timer_add(loop, S_REAP_MS, s_reap, self);
        return;
    }
    /* how it ended says more than "ended without its result" */
    if (r > 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        snprintf(self->why, sizeof self->why, "the child process %s %d", WIFSIGNALED(status)
                 ? "was killed by signal" : "exited with", WIFSIGNALED(status)
                 ? WTERMSIG(status) : WEXITSTATUS(status));
    self->pid = 0;
    s_report(self);
}

static void
s_readable(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) events;
    evr_offload_t *self = arg;
    unsigned char scrap[64];
    unsigned char *to = self->got < self->size ? self->out + self->got : scrap;
    size_t room = self->got < self->size ? self->size - self->got : sizeof scrap;
    ssize_t n = read(fd, to, room);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        if (to != scrap)
            self->got += (size_t) n;
        return;
    }
    evr_loop_fd_remove(loop, fd);
    close(fd);
    self->fd = -1;
    if (self->got < self->size && !self->why[0])
        snprintf(self->why, sizeof self->why, "the child process ended without its result");
    s_reap(loop, self);
}

static void
s_report(evr_offload_t *self)
{
    evr_offload_done_fn *done = self->done;
    void *arg = self->arg;
    unsigned char out[EVR_OFFLOAD_MAX];
    char why[sizeof self->why];
    bool ok = !self->why[0];
    memcpy(out, self->out, self->size);
    if (!ok)
        memset(out, 0, self->size);
    memcpy(why, self->why, sizeof why);
    if (self->pid <= 0) {   /* ended: its files are done's caller's now */
        for (size_t i = 0; i < self->ntemps; i++)
            free(self->temps[i]);
        self->ntemps = 0;
    }
    evr_rc_t rc = ok ? EVR_OK : self->unstarted ? EVR_ERR_LIMIT : EVR_ERR_IO;
    s_unlive(self);
    evr_offload_cancel(&self);   /* a child still there (not watched): its files removed, now
                                    and once it is reaped */
    done(rc, ok ? "" : why, out, arg);
}

static void
s_start_failed(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_offload_t *self = arg;
    self->timer = 0;
    s_report(self);
}

/*  The child: closes what it inherited but its end of the pipe, works,
    writes the result, exits (no atexit handler of the parent's runs). */
static void __attribute__((noreturn))
s_child(pid_t parent, int wfd, int maxfd, evr_offload_work_fn *work, void *arg, size_t size,
        bool hang)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(3);
    /* the runner's handlers only count: a SIGTERM to the runner's process
       group (timeout(1), a service manager) ends the child too */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    /* where close_range fails (a kernel before 5.9, a seccomp filter), a
       loop up to the soft limit: no lock, pipe or socket of the runner's
       may stay open in the child (a conmon reader waits for its pipe's
       reader to close) */
    if ((wfd > 3 && close_range(3, (unsigned) wfd - 1, 0) != 0)
        || close_range((unsigned) wfd + 1, ~0u, 0) != 0)
        for (int fd = 3; fd < maxfd; fd++)
            if (fd != wfd)
                close(fd);
    if (hang)   /* the test hook: as a child stuck at its first lock would */
        for (;;)
            pause();
    unsigned char out[EVR_OFFLOAD_MAX];
    memset(out, 0, size);
    work(arg, out, size);
    size_t at = 0;
    while (at < size) {
        ssize_t n = write(wfd, out + at, size - at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(2);
        at += (size_t) n;
    }
    _exit(0);
}

/*  True when the test hook NAME (an environment variable) names a file
    that exists. */
static bool
s_hook(const char *name)
{
    const char *f = getenv(name);
    return f && *f && access(f, F_OK) == 0;
}

/*  Test hooks (tests only), the one seam: with
    EVR_TEST_OFFLOAD_FORK_FAIL=FILE in the environment, a work started
    while FILE exists fails as a fork that failed with EAGAIN (a runner
    past RLIMIT_NPROC) would: no child.  With EVR_TEST_OFFLOAD_HANG=FILE,
    its child never works nor ends (*hang), as one stuck at a lock
    another thread of the runner held as it forked would. */
static pid_t
s_fork(bool *hang)
{
    if (s_hook("EVR_TEST_OFFLOAD_FORK_FAIL")) {
        errno = EAGAIN;
        return -1;
    }
    *hang = s_hook("EVR_TEST_OFFLOAD_HANG");
    return fork();
}

evr_offload_t *
evr_offload_start(evr_loop_t *loop, evr_offload_work_fn *work, size_t size,
                  evr_offload_done_fn *done, void *arg)
{
    evr_offload_t *self = evr_calloc(1, sizeof *self);
    self->loop = loop;
    self->done = done;
    self->arg = arg;
    self->fd = -1;
    self->t0 = evr_mono_ns();
    snprintf(self->what, sizeof self->what, "offloaded work");
    assert(size <= EVR_OFFLOAD_MAX);   /* a programmer's error: raise EVR_OFFLOAD_MAX */
    self->size = size < EVR_OFFLOAD_MAX ? size : EVR_OFFLOAD_MAX;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(self->why, sizeof self->why, "pipe: %s", strerror(errno));
        self->unstarted = true;
        self->timer = evr_loop_timer_add(loop, 0, s_start_failed, self);
        return self;
    }
    struct rlimit rl;
    int maxfd = S_CLOSE_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t) S_CLOSE_MAX)
        maxfd = (int) rl.rlim_cur;
    pid_t parent = getpid();
    bool hang = false;
    pid_t pid = s_fork(&hang);
    int fork_errno = errno;   /* the closes below may change it */
    if (pid == 0)
        s_child(parent, p[1], maxfd, work, arg, self->size, hang);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        snprintf(self->why, sizeof self->why, "fork: %s", strerror(fork_errno));
        self->unstarted = true;
        self->timer = evr_loop_timer_add(loop, 0, s_start_failed, self);
        return self;
    }
    self->pid = pid;
    self->fd = p[0];
    fcntl(self->fd, F_SETFL, fcntl(self->fd, F_GETFL) | O_NONBLOCK);
    if (evr_loop_fd_add(loop, self->fd, EVR_LOOP_READ, s_readable, self) != EVR_OK) {
        /* the child is killed at once (it does no work the caller will call
           failed) and reaped as a cancelled work's is */
        kill(pid, SIGKILL);
        snprintf(self->why, sizeof self->why, "the loop watches too many files");
        self->unstarted = true;
        close(self->fd);
        self->fd = -1;
        self->timer = evr_loop_timer_add(loop, 0, s_start_failed, self);
        return self;
    }
    self->live = s_live;
    s_live = self;
    return self;
}

void
evr_offload_what(evr_offload_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->what, sizeof self->what, fmt, ap);
    va_end(ap);
}

uint32_t
evr_offload_running(void)
{
    uint32_t n = 0;
    for (const evr_offload_t *o = s_live; o; o = o->live)
        n += o->fd >= 0;
    return n;
}

uint32_t
evr_offload_abandon(const char *who)
{
    uint32_t n = 0;
    uint64_t now = evr_mono_ns();
    for (evr_offload_t *o = s_live; o; o = o->live) {
        if (o->fd < 0)   /* its result read: exiting, not working */
            continue;
        n++;
        kill(o->pid, SIGKILL);
        evr_log_warn(who, "exiting: gave up waiting for the child process %ld (%s, running "
                     "for %llu ms): killed; what it did not finish is done again at the "
                     "next start", (long) o->pid, o->what,
                     (unsigned long long) ((now - o->t0) / 1000000));
    }
    return n;
}

static void
s_temp(evr_offload_t *self, const char *path, bool tree)
{
    assert(self->ntemps < EVR_OFFLOAD_TEMPS);   /* a programmer's error: raise the limit */
    if (self->ntemps < EVR_OFFLOAD_TEMPS) {
        self->tree[self->ntemps] = tree;
        self->temps[self->ntemps++] = evr_strdup(path);
    }
}

void
evr_offload_temp(evr_offload_t *self, const char *path)
{
    s_temp(self, path, false);
}

void
evr_offload_temp_dir(evr_offload_t *self, const char *path)
{
    s_temp(self, path, true);
}

static void
s_free(evr_offload_t *self)
{
    for (size_t i = 0; i < self->ntemps; i++)
        free(self->temps[i]);
    free(self);
}

static void
s_unlink_temps(const evr_offload_t *self)
{
    evr_err_t err;
    for (size_t i = 0; i < self->ntemps; i++)
        if (!self->tree[i])
            unlink(self->temps[i]);
        else
            evr_unit_rmtree(self->temps[i], &err);   /* none there: no error */
}

/*  A cancelled work's killed child, once reaped (evr_reap.h): its
    temporary files removed again (one it was creating as the signal
    came may have appeared since), the work freed. */
static void
s_killed_reaped(void *arg)
{
    evr_offload_t *self = arg;
    s_unlink_temps(self);
    s_free(self);
}

void
evr_offload_cancel(evr_offload_t **self_p)
{
    evr_offload_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    s_unlive(self);
    evr_loop_timer_cancel(self->loop, self->timer);
    self->timer = 0;
    if (self->fd >= 0) {
        evr_loop_fd_remove(self->loop, self->fd);
        close(self->fd);
        self->fd = -1;
    }
    if (self->pid <= 0) {   /* reported, or never started */
        s_free(self);
        return;
    }
    kill(self->pid, SIGKILL);
    s_unlink_temps(self);
    evr_reap_later(self->loop, self->pid, s_killed_reaped, self);
}
