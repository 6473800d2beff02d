/*  evr_loop.c: poll(2), a short list of one-shot timers and a signalfd.

    The daemons watch a handful of fds (curl's sockets, a ZeroMQ socket, a
    monitor, an executor's inotify fd) and a few timers, so plain arrays
    scanned per turn are the simplest thing that is fast enough.  Each
    watch carries a generation: a callback that removes or replaces a
    watch makes the rest of the turn skip the stale entry.
*/
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "evr_loop.h"

typedef struct {
    int fd;
    int events;
    evr_loop_fd_fn *fn;
    void *arg;
    uint64_t gen;
} s_watch_t;

typedef struct {
    uint64_t id;
    uint64_t due;       /* mono ns */
    evr_loop_timer_fn *fn;
    void *arg;
} s_timer_t;

typedef struct {
    int signo;
    evr_loop_signal_fn *fn;
    void *arg;
} s_sig_t;

struct evr_loop {
    s_watch_t *w;
    size_t nw, wcap;
    s_timer_t *t;
    size_t nt, tcap;
    uint64_t next_id, next_gen;
    s_sig_t sigs[64];
    size_t nsigs;
    sigset_t sigmask;
    int sigfd;
    bool stop;
};

evr_loop_t *
evr_loop_new(void)
{
    evr_loop_t *self = evr_calloc(1, sizeof *self);
    self->sigfd = -1;
    sigemptyset(&self->sigmask);
    return self;
}

void
evr_loop_destroy(evr_loop_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    evr_loop_t *self = *self_p;
    if (self->sigfd >= 0) {
        close(self->sigfd);
        sigprocmask(SIG_UNBLOCK, &self->sigmask, NULL);
    }
    free(self->w);
    free(self->t);
    free(self);
    *self_p = NULL;
}

static s_watch_t *
s_find(evr_loop_t *self, int fd)
{
    for (size_t i = 0; i < self->nw; i++)
        if (self->w[i].fd == fd)
            return &self->w[i];
    return NULL;
}

evr_rc_t
evr_loop_fd_add(evr_loop_t *self, int fd, int events, evr_loop_fd_fn *fn, void *arg)
{
    s_watch_t *w = s_find(self, fd);
    if (!w) {
        if (self->nw >= EVR_LOOP_MAX_FDS)
            return EVR_ERR_LIMIT;
        if (self->nw == self->wcap) {
            self->wcap = self->wcap ? self->wcap * 2 : 16;
            self->w = evr_realloc(self->w, self->wcap * sizeof *self->w);
        }
        w = &self->w[self->nw++];
        w->fd = fd;
    }
    w->events = events & (EVR_LOOP_READ | EVR_LOOP_WRITE);
    w->fn = fn;
    w->arg = arg;
    w->gen = ++self->next_gen;
    return EVR_OK;
}

void
evr_loop_fd_remove(evr_loop_t *self, int fd)
{
    s_watch_t *w = s_find(self, fd);
    if (!w)
        return;
    *w = self->w[--self->nw];
}

uint64_t
evr_loop_timer_add(evr_loop_t *self, uint64_t ms, evr_loop_timer_fn *fn, void *arg)
{
    if (self->nt == self->tcap) {
        self->tcap = self->tcap ? self->tcap * 2 : 16;
        self->t = evr_realloc(self->t, self->tcap * sizeof *self->t);
    }
    s_timer_t *t = &self->t[self->nt++];
    t->id = ++self->next_id;
    t->due = evr_mono_ns() + ms * 1000000ull;
    t->fn = fn;
    t->arg = arg;
    return t->id;
}

void
evr_loop_timer_cancel(evr_loop_t *self, uint64_t id)
{
    for (size_t i = 0; id && i < self->nt; i++)
        if (self->t[i].id == id) {
            memmove(&self->t[i], &self->t[i + 1], (self->nt - i - 1) * sizeof *self->t);
            self->nt--;
            return;
        }
}

evr_rc_t
evr_loop_signal_add(evr_loop_t *self, int signo, evr_loop_signal_fn *fn, void *arg,
                    evr_err_t *err)
{
    if (self->nsigs >= EVR_ARRAY_LEN(self->sigs) || signo <= 0 || signo >= 65)
        return evr_err_set(err, EVR_ERR_CONFIG, "signal %d: cannot be watched", signo);
    sigaddset(&self->sigmask, signo);
    sigprocmask(SIG_BLOCK, &self->sigmask, NULL);
    int fd = signalfd(self->sigfd, &self->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return evr_err_set(err, EVR_ERR_IO, "signalfd: %s", strerror(errno));
    self->sigfd = fd;
    self->sigs[self->nsigs++] = (s_sig_t) { signo, fn, arg };
    return EVR_OK;
}

int
evr_loop_next_timer_ms(const evr_loop_t *self)
{
    if (!self->nt)
        return -1;
    uint64_t first = UINT64_MAX, now = evr_mono_ns();
    for (size_t i = 0; i < self->nt; i++)
        if (self->t[i].due < first)
            first = self->t[i].due;
    if (first <= now)
        return 0;
    uint64_t ms = (first - now + 999999) / 1000000;
    return ms > 3600000 ? 3600000 : (int) ms;
}

/*  Runs the timers due now, earliest first; those a callback adds wait
    for a later turn. */
static int
s_run_timers(evr_loop_t *self)
{
    int ran = 0;
    uint64_t now = evr_mono_ns(), limit = self->next_id;
    for (;;) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < self->nt; i++)
            if (self->t[i].due <= now && self->t[i].id <= limit
                && (best == SIZE_MAX || self->t[i].due < self->t[best].due))
                best = i;
        if (best == SIZE_MAX)
            return ran;
        s_timer_t t = self->t[best];
        memmove(&self->t[best], &self->t[best + 1], (self->nt - best - 1) * sizeof *self->t);
        self->nt--;
        t.fn(self, t.arg);
        ran++;
    }
}

static int
s_run_signals(evr_loop_t *self)
{
    int ran = 0;
    struct signalfd_siginfo si;
    while (read(self->sigfd, &si, sizeof si) == (ssize_t) sizeof si)
        for (size_t i = 0; i < self->nsigs; i++)
            if ((uint32_t) self->sigs[i].signo == si.ssi_signo) {
                self->sigs[i].fn(self, (int) si.ssi_signo, self->sigs[i].arg);
                ran++;
            }
    return ran;
}

int
evr_loop_once(evr_loop_t *self, int timeout_ms)
{
    size_t n = self->nw;
    struct pollfd *pfd = evr_calloc(n + 1, sizeof *pfd);
    uint64_t *gen = evr_calloc(n + 1, sizeof *gen);
    for (size_t i = 0; i < n; i++) {
        pfd[i].fd = self->w[i].fd;
        pfd[i].events = (short) (((self->w[i].events & EVR_LOOP_READ) ? POLLIN : 0)
                                 | ((self->w[i].events & EVR_LOOP_WRITE) ? POLLOUT : 0));
        gen[i] = self->w[i].gen;
    }
    size_t np = n;
    if (self->sigfd >= 0) {
        pfd[np].fd = self->sigfd;
        pfd[np++].events = POLLIN;
    }
    int next = evr_loop_next_timer_ms(self);
    int wait = timeout_ms;
    if (next >= 0 && (wait < 0 || next < wait))
        wait = next;
    int rc = poll(pfd, (nfds_t) np, wait);
    int ran = 0;
    if (rc < 0 && errno != EINTR) {
        ran = -1;
        goto out;
    }
    ran += s_run_timers(self);
    if (self->sigfd >= 0 && np > n && (pfd[n].revents & POLLIN))
        ran += s_run_signals(self);
    for (size_t i = 0; rc > 0 && i < n; i++) {
        if (!pfd[i].revents)
            continue;
        s_watch_t *w = s_find(self, pfd[i].fd);
        if (!w || w->gen != gen[i])
            continue;   /* removed or replaced by an earlier callback */
        int ev = ((pfd[i].revents & POLLIN) ? EVR_LOOP_READ : 0)
               | ((pfd[i].revents & POLLOUT) ? EVR_LOOP_WRITE : 0)
               | ((pfd[i].revents & (POLLHUP | POLLERR | POLLNVAL)) ? EVR_LOOP_ERROR : 0);
        w->fn(self, w->fd, ev, w->arg);
        ran++;
    }
out:
    free(pfd);
    free(gen);
    return ran;
}

void
evr_loop_run(evr_loop_t *self)
{
    self->stop = false;
    while (!self->stop)
        if (evr_loop_once(self, -1) < 0)
            break;
}

void
evr_loop_stop(evr_loop_t *self)
{
    self->stop = true;
}
