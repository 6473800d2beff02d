/*  evr_conmon.c: conmon's attach socket, read on the event loop.

    The socket's path (the bundle directory, ~125 bytes under podman's
    default storage) is longer than a unix socket address holds (107):
    the directory is opened and the socket reached through
    /proc/self/fd/N/attach, as conmon binds it and podman connects.

    Each readable turn takes up to S_SLOTS packets per recvmmsg(2) call,
    and calls it again while packets keep coming, up to S_CALLS calls; the
    loop gets its turn back between batches.  A packet is at most 8 KiB +
    1 from conmon 2.x; a slot holds S_SLOT bytes, and a packet longer than
    that (cut by the kernel: bytes lost) ends the read with an error
    rather than passing on a hole.

    Output that comes in bulk is read in batches: a turn that took
    S_REST_MIN bytes or more lets the socket rest S_REST_MS before it is
    watched again, so that the next turn takes what conmon sent meanwhile
    (conmon blocks only once ~200 KiB wait on the socket, ~3 ms of its
    fastest output here), not one packet per turn (12,000 turns, each a
    poll, for 100 MB).  A turn that took less (a line now and then) or
    filled every slot of every call (a sender faster than rests let
    through) watches the socket again at once.
*/
#define _GNU_SOURCE   /* recvmmsg, O_PATH */
#include "evr_conmon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define S_SLOT (32u * 1024)     /* conmon 2.1 sends at most 8 KiB + 1 */
#define S_SLOTS 16
#define S_CALLS 8
#define S_REST_MIN (8u * 1024)
#define S_REST_MS 1

struct evr_conmon {
    evr_loop_t *loop;
    int fd;
    evr_conmon_output_fn *out;
    evr_conmon_end_fn *end;
    void *arg;
    bool ended;         /* end called: reads no more */
    bool reading;       /* inside s_on_fd: destroy only marks it */
    bool dead;          /* destroyed while reading: s_on_fd frees it */
    uint64_t rest;      /* the timer ending a rest (the socket not watched), or 0 */
    size_t taken;       /* bytes the turn under way passed on */
    uint8_t head[S_SLOTS];
    uint8_t *slots;     /* S_SLOTS * S_SLOT */
};

/*  Connects fd to dir's "attach" socket; -1 with errno when it cannot. */
static int
s_connect(int fd, const char *dir)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int n = snprintf(a.sun_path, sizeof a.sun_path, "%s/attach", dir);
    if (n > 0 && (size_t) n < sizeof a.sun_path)
        return connect(fd, (struct sockaddr *) &a, sizeof a);
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    snprintf(a.sun_path, sizeof a.sun_path, "/proc/self/fd/%d/attach", dfd);
    int rc = connect(fd, (struct sockaddr *) &a, sizeof a);
    int e = errno;
    close(dfd);
    errno = e;
    return rc;
}

static void
s_free(evr_conmon_t *self)
{
    evr_loop_timer_cancel(self->loop, self->rest);
    if (self->fd >= 0) {
        evr_loop_fd_remove(self->loop, self->fd);
        close(self->fd);
    }
    free(self->slots);
    free(self);
}

/*  The end, once: the socket is no longer watched. */
static void
s_end(evr_conmon_t *self, evr_rc_t rc, const char *msg)
{
    self->ended = true;
    evr_loop_fd_remove(self->loop, self->fd);
    self->end(rc, msg, self->arg);
}

/*  Passes on the n packets received; false once the read ended (EOF, a
    packet not of conmon's form) or the reader was destroyed. */
static bool
s_pass(evr_conmon_t *self, const struct mmsghdr *m, unsigned n)
{
    char msg[160];
    for (unsigned i = 0; i < n; i++) {
        size_t len = m[i].msg_len;
        if (len == 0) {   /* conmon closed the socket: the output has ended */
            s_end(self, EVR_OK, "");
            return false;
        }
        if (m[i].msg_hdr.msg_flags & MSG_TRUNC) {
            snprintf(msg, sizeof msg, "conmon's attach socket sent a packet of more than %u "
                     "bytes (this runner reads at most that)", S_SLOT + 1);
            s_end(self, EVR_ERR_PODMAN, msg);
            return false;
        }
        uint8_t id = self->head[i];
        if (id != 2 && id != 3) {
            snprintf(msg, sizeof msg, "conmon's attach socket sent a packet of stream %u "
                     "(expected 2, stdout, or 3, stderr)", id);
            s_end(self, EVR_ERR_PODMAN, msg);
            return false;
        }
        self->taken += len - 1;
        if (len > 1)
            self->out(id - 1, self->slots + (size_t) i * S_SLOT, len - 1, self->arg);
        if (self->dead)
            return false;
    }
    return true;
}

static void s_on_fd(evr_loop_t *loop, int fd, int events, void *arg);

/*  The end of a rest: the socket is watched again, and read at once. */
static void
s_rested(evr_loop_t *loop, void *arg)
{
    evr_conmon_t *self = arg;
    self->rest = 0;
    if (evr_loop_fd_add(loop, self->fd, EVR_LOOP_READ, s_on_fd, self) != EVR_OK) {
        s_end(self, EVR_ERR_PODMAN, "conmon's attach socket: the event loop watches too many "
                                    "fds");
        return;
    }
    s_on_fd(loop, self->fd, EVR_LOOP_READ, self);
}

static void
s_on_fd(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) events;
    evr_conmon_t *self = arg;
    struct iovec iov[S_SLOTS][2];
    struct mmsghdr m[S_SLOTS];
    bool full = true;   /* every slot of every call filled */
    self->reading = true;
    self->taken = 0;
    for (int call = 0; call < S_CALLS && !self->ended && !self->dead; call++) {
        memset(m, 0, sizeof m);
        for (unsigned i = 0; i < S_SLOTS; i++) {
            iov[i][0] = (struct iovec) { .iov_base = &self->head[i], .iov_len = 1 };
            iov[i][1] = (struct iovec) { .iov_base = self->slots + (size_t) i * S_SLOT,
                                         .iov_len = S_SLOT };
            m[i].msg_hdr.msg_iov = iov[i];
            m[i].msg_hdr.msg_iovlen = 2;
        }
        int n = recvmmsg(fd, m, S_SLOTS, MSG_DONTWAIT, NULL);
        full = n == S_SLOTS;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                char msg[160];
                snprintf(msg, sizeof msg, "reading conmon's attach socket: %s", strerror(errno));
                s_end(self, EVR_ERR_PODMAN, msg);
            }
            break;
        }
        if (!s_pass(self, m, (unsigned) n) || n < S_SLOTS)
            break;   /* ended, or what was queued is taken: the loop's turn */
    }
    self->reading = false;
    if (self->dead) {
        s_free(self);
        return;
    }
    if (!self->ended && !full && self->taken >= S_REST_MIN) {
        evr_loop_fd_remove(loop, fd);
        self->rest = evr_loop_timer_add(loop, S_REST_MS, s_rested, self);
    }
}

evr_conmon_t *
evr_conmon_attach(evr_loop_t *loop, const char *dir, evr_conmon_output_fn *out,
                  evr_conmon_end_fn *end, void *arg, evr_err_t *err)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || s_connect(fd, dir) != 0) {
        evr_err_set(err, EVR_ERR_IO, "conmon's attach socket %s/attach: %s", dir,
                    strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    evr_conmon_t *self = evr_calloc(1, sizeof *self);
    self->loop = loop;
    self->fd = fd;
    self->out = out;
    self->end = end;
    self->arg = arg;
    self->slots = evr_malloc((size_t) S_SLOTS * S_SLOT);
    evr_rc_t rc = evr_loop_fd_add(loop, fd, EVR_LOOP_READ, s_on_fd, self);
    if (rc) {
        evr_err_set(err, rc, "conmon's attach socket %s/attach: the event loop watches too "
                    "many fds", dir);
        s_free(self);
        return NULL;
    }
    return self;
}

void
evr_conmon_destroy(evr_conmon_t **self_p)
{
    evr_conmon_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    if (self->reading) {
        self->dead = true;   /* s_on_fd frees it once its callback returns */
        return;
    }
    s_free(self);
}
