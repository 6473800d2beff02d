/*  evr_conmon.c: conmon's attach socket, read by a thread of its own and
    handed to the event loop through a pipe.

    The socket's path (the bundle directory, ~125 bytes under podman's
    default storage) is longer than a unix socket address holds (107):
    the directory is opened and the socket reached through
    /proc/self/fd/N/attach, as conmon binds it and podman connects.

    Why a thread: conmon blocks on a reader that does not take its
    packets, and its socket holds only ~200 KiB (~3 ms of its fastest
    output here).  The runner's loop stops for each commit of the store
    (fdatasync: 3 ms typically, up to ~100 ms on a busy disk), so a
    socket read only from the loop stalled conmon, and with it the step,
    at every commit: under load the output came slower than through
    podman's attach (whose service buffers another socketful).  The
    thread only moves bytes: it takes conmon's packets as they come
    (recvmmsg) and writes them, framed, into a pipe of up to 1 MiB that
    the loop reads; it shares no memory with the loop and stops when
    either end closes (the style of the project's actors: a pipe, state
    of its own).  The pipe alone was not enough: a commit of ~2 MB of
    output takes 10-40 ms on this project's machine, more than the pipe
    holds of conmon's fastest output (~12 ms), so the thread keeps what
    the pipe cannot take, up to S_HOLD bytes (waiting in poll(2) for
    either end), and only a full hold stops it reading: that bound
    stays, as conmon then waits.

    Frames in the pipe: a 4-byte length (host order) and that many bytes
    of one packet (its stream byte first, then the data); a length of
    S_END ends the stream (conmon closed the socket), S_TRUNC says a
    packet was longer than a slot (bytes lost), S_ERROR is followed by an
    errno (4 bytes).

    Bulk output is moved in batches, not one packet at a time (12,000
    wakeups of each side for 100 MB): the thread rests S_REST_MS after a
    call that took S_REST_MIN bytes or more but did not fill its slots,
    and the loop lets the pipe rest as long after such a read; a trickle
    (a line now and then) is passed on the moment it comes.
*/
#define _GNU_SOURCE   /* recvmmsg, O_PATH, F_SETPIPE_SZ, pipe2, struct ucred */
#include "evr_conmon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define S_SLOT (32u * 1024)     /* conmon 2.1 sends at most 8 KiB + 1 */
#define S_SLOTS 16
#define S_PIPE (1u << 20)       /* the pipe's size asked for (Linux's limit for all users) */
#define S_FRAMES (S_SLOTS * (S_SLOT + 4) + 8)   /* the most one receive adds */
#define S_HOLD (16u << 20)      /* the thread's bytes past the pipe, at most */
#define S_READ (256u * 1024)    /* the loop's read of the pipe */
#define S_REST_MIN (8u * 1024)
#define S_REST_MS 1
#define S_END 0xffffffffu
#define S_TRUNC 0xfffffffeu
#define S_ERROR 0xfffffffdu

struct evr_conmon {
    evr_loop_t *loop;
    int sock;           /* conmon's socket, read by the thread */
    pid_t peer;         /* the process listening there (SO_PEERCRED), or 0 */
    int pr, pw;         /* the pipe: the loop reads pr, the thread writes pw */
    pthread_t thread;
    bool started;       /* the thread runs (to be joined) */
    evr_conmon_output_fn *out;
    evr_conmon_end_fn *end;
    void *arg;
    bool ended;         /* end called: reads no more */
    bool reading;       /* inside s_on_fd: destroy only marks it */
    bool dead;          /* destroyed while reading: s_on_fd frees it */
    uint64_t rest;      /* the timer ending a rest (the pipe not watched), or 0 */
    uint8_t *buf;       /* S_READ + S_SLOT + 8: frames read, the last maybe partial */
    size_t len;
};

/* ----------------------------------------------------------- the thread */

/*  What the thread holds for the pipe: frames [off, len) of buf. */
typedef struct {
    uint8_t *buf;
    size_t off, len, cap;
} s_hold_t;

/*  Makes room for `need` more bytes at the end of h (the written part
    dropped first, then grown up to S_HOLD); false when it would pass that. */
static bool
s_hold_room(s_hold_t *h, size_t need)
{
    if (h->len - h->off + need > S_HOLD)
        return false;
    if (h->off && h->len + need > h->cap) {
        memmove(h->buf, h->buf + h->off, h->len - h->off);
        h->len -= h->off;
        h->off = 0;
    }
    if (h->len + need > h->cap) {
        size_t cap = h->cap;
        while (cap < h->len + need)
            cap *= 2;
        h->buf = evr_realloc(h->buf, cap < S_HOLD ? cap : S_HOLD);
        h->cap = cap < S_HOLD ? cap : S_HOLD;
    }
    return true;
}

/*  Passes on the frames of the n packets conmon sent (or the end, or the
    error of a failed call, errno e): straight from the slots into the
    pipe (writev) when nothing is held before them, and what the pipe
    does not take into h (which has room for S_FRAMES).  *bytes: the
    frames' size; *gone: the pipe's reader is.  False once the stream
    is over. */
static bool
s_pass_frames(s_hold_t *h, int pw, const struct mmsghdr *m, int n, int e, const uint8_t *slots,
              size_t *bytes, bool *gone)
{
    uint32_t words[S_SLOTS + 2];
    struct iovec v[2 * S_SLOTS + 1];
    int nv = 0;
    bool on = n >= 0;
    if (n < 0) {
        words[0] = S_ERROR;
        words[1] = (uint32_t) e;
        v[nv++] = (struct iovec) { .iov_base = words, .iov_len = 8 };
    }
    for (int i = 0; i < n && on; i++) {
        uint32_t len = m[i].msg_len;
        bool last = len == 0 || (m[i].msg_hdr.msg_flags & MSG_TRUNC);
        words[i] = len == 0 ? S_END : last ? S_TRUNC : len;
        v[nv++] = (struct iovec) { .iov_base = &words[i], .iov_len = 4 };
        if (last)
            on = false;
        else
            v[nv++] = (struct iovec) { .iov_base = (void *) (slots + (size_t) i * S_SLOT),
                                       .iov_len = len };
    }
    *bytes = 0;
    for (int k = 0; k < nv; k++)
        *bytes += v[k].iov_len;
    size_t skip = 0;
    if (h->off == h->len && nv) {
        ssize_t w = writev(pw, v, nv);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            *gone = true;
        else if (w > 0)
            skip = (size_t) w;
    }
    for (int k = 0; k < nv; k++) {
        if (skip >= v[k].iov_len) {
            skip -= v[k].iov_len;
            continue;
        }
        memcpy(h->buf + h->len, (const uint8_t *) v[k].iov_base + skip, v[k].iov_len - skip);
        h->len += v[k].iov_len - skip;
        skip = 0;
    }
    return on;
}

/*  Receives what conmon has sent (up to S_SLOTS packets, without waiting)
    and passes it on (s_pass_frames); false once the stream is over.
    *bulk: a batch worth a rest. */
static bool
s_receive(int sock, s_hold_t *h, int pw, uint8_t *slots, bool *bulk, bool *gone)
{
    struct iovec iov[S_SLOTS];
    struct mmsghdr m[S_SLOTS];
    memset(m, 0, sizeof m);
    for (unsigned i = 0; i < S_SLOTS; i++) {
        iov[i] = (struct iovec) { .iov_base = slots + (size_t) i * S_SLOT, .iov_len = S_SLOT };
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(sock, m, S_SLOTS, MSG_DONTWAIT, NULL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    size_t bytes;
    bool on = s_pass_frames(h, pw, m, n, errno, slots, &bytes, gone);
    /* bulk: a rest, so that the next call takes what conmon sent
       meanwhile (its socket holds ~3 ms of its fastest output) */
    *bulk = on && n < (int) S_SLOTS && bytes >= S_REST_MIN;
    return on;
}

static uint64_t
s_ns_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

/*  The thread: conmon's packets into the pipe, framed, until the socket
    ends (or fails) and all of it is in the pipe, or the pipe's reader is
    gone.  A full pipe (the loop in a long commit) does not hold conmon
    up: the thread keeps taking its packets, up to S_HOLD bytes of its
    own past the pipe's 1 MiB, and only then stops reading the socket. */
static void *
s_thread(void *arg)
{
    evr_conmon_t *self = arg;
    int sock = self->sock, pw = self->pw;
    uint8_t *slots = evr_malloc((size_t) S_SLOTS * S_SLOT);
    s_hold_t h = { .cap = S_FRAMES };
    h.buf = evr_malloc(h.cap);
    bool on = true;
    uint64_t rest_end = 0;   /* ns: the socket rests until then */
    for (;;) {
        if (h.off < h.len) {
            ssize_t w = write(pw, h.buf + h.off, h.len - h.off);
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                break;   /* the loop's end is closed */
            if (w > 0 && (h.off += (size_t) w) == h.len)
                h.off = h.len = 0;
        }
        if (!on && h.off == h.len)
            break;   /* all passed on */
        uint64_t now = rest_end ? s_ns_now() : 0;
        if (now >= rest_end)
            rest_end = 0;
        bool room = on && !rest_end && s_hold_room(&h, S_FRAMES);
        struct pollfd p[2] = {
            { .fd = room ? sock : -1, .events = POLLIN },
            { .fd = h.off < h.len ? pw : -1, .events = POLLOUT },
        };
        int timeout = rest_end ? (int) ((rest_end - now + 999999u) / 1000000u) : -1;
        if (poll(p, 2, timeout) < 0 && errno != EINTR)
            break;
        if (p[1].revents & (POLLERR | POLLHUP | POLLNVAL))
            break;   /* the loop's end is closed */
        bool bulk = false, gone = false;
        if (p[0].revents)
            on = s_receive(sock, &h, pw, slots, &bulk, &gone);
        if (gone)
            break;   /* the loop's end is closed */
        if (bulk)
            rest_end = s_ns_now() + S_REST_MS * 1000000ull;
    }
    free(slots);
    free(h.buf);
    return NULL;
}

/* -------------------------------------------------------------- the loop */

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

/*  Stops the thread (its pipe's reader closed: a write fails; its socket
    shut down: a read ends) and frees everything. */
static void
s_free(evr_conmon_t *self)
{
    evr_loop_timer_cancel(self->loop, self->rest);
    if (self->pr >= 0) {
        evr_loop_fd_remove(self->loop, self->pr);
        close(self->pr);
    }
    if (self->started) {
        shutdown(self->sock, SHUT_RDWR);
        pthread_join(self->thread, NULL);
    }
    if (self->sock >= 0)
        close(self->sock);
    if (self->pw >= 0)
        close(self->pw);
    free(self->buf);
    free(self);
}

/*  The end, once: the pipe is no longer watched. */
static void
s_end(evr_conmon_t *self, evr_rc_t rc, const char *msg)
{
    self->ended = true;
    evr_loop_fd_remove(self->loop, self->pr);
    self->end(rc, msg, self->arg);
}

/*  Passes on the whole frames in buf, keeps a partial one; false once the
    read ended or the reader was destroyed. */
static bool
s_frames(evr_conmon_t *self)
{
    char msg[160];
    size_t at = 0;
    bool on = true;
    while (on && self->len - at >= 4) {
        uint32_t len;
        memcpy(&len, self->buf + at, 4);
        if (len == S_END) {   /* conmon closed the socket: the output has ended */
            s_end(self, EVR_OK, "");
            return false;
        }
        if (len == S_TRUNC || len == S_ERROR) {
            uint32_t e = 0;
            if (len == S_ERROR && self->len - at < 8)
                break;
            if (len == S_ERROR)
                memcpy(&e, self->buf + at + 4, 4);
            if (len == S_TRUNC)
                snprintf(msg, sizeof msg, "conmon's attach socket sent a packet of more than "
                         "%u bytes (this runner reads at most that)", S_SLOT);
            else
                snprintf(msg, sizeof msg, "reading conmon's attach socket: %s",
                         strerror((int) e));
            s_end(self, EVR_ERR_PODMAN, msg);
            return false;
        }
        if (self->len - at - 4 < len)
            break;   /* the rest of it comes with the next read */
        uint8_t id = self->buf[at + 4];
        if (id != 2 && id != 3) {
            snprintf(msg, sizeof msg, "conmon's attach socket sent a packet of stream %u "
                     "(expected 2, stdout, or 3, stderr)", id);
            s_end(self, EVR_ERR_PODMAN, msg);
            return false;
        }
        if (len > 1)
            self->out(id - 1, self->buf + at + 5, len - 1, self->arg);
        at += 4 + len;
        on = !self->dead;
    }
    memmove(self->buf, self->buf + at, self->len - at);
    self->len -= at;
    return on;
}

static void s_on_fd(evr_loop_t *loop, int fd, int events, void *arg);

/*  The end of a rest: the pipe is watched again, and read at once. */
static void
s_rested(evr_loop_t *loop, void *arg)
{
    evr_conmon_t *self = arg;
    self->rest = 0;
    if (evr_loop_fd_add(loop, self->pr, EVR_LOOP_READ, s_on_fd, self) != EVR_OK) {
        s_end(self, EVR_ERR_PODMAN, "conmon's attach socket: the event loop watches too many "
                                    "fds");
        return;
    }
    s_on_fd(loop, self->pr, EVR_LOOP_READ, self);
}

static void
s_on_fd(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) events;
    evr_conmon_t *self = arg;
    size_t room = S_READ + S_SLOT + 8 - self->len;
    ssize_t n = read(fd, self->buf + self->len, room);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {   /* the thread is gone without its end: cannot be, but said */
        s_end(self, EVR_ERR_PODMAN, n == 0 ? "conmon's attach socket: its reader ended"
                                           : "conmon's attach socket: reading its pipe failed");
        return;
    }
    self->len += (size_t) n;
    self->reading = true;
    bool on = s_frames(self);
    self->reading = false;
    if (self->dead) {
        s_free(self);
        return;
    }
    if (on && (size_t) n >= S_REST_MIN && (size_t) n < room) {
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
    self->sock = fd;
    struct ucred cred;
    socklen_t clen = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 && clen == sizeof cred)
        self->peer = cred.pid;
    self->pr = self->pw = -1;
    self->out = out;
    self->end = end;
    self->arg = arg;
    self->buf = evr_malloc(S_READ + S_SLOT + 8);
    int p[2];
    evr_rc_t rc = EVR_OK;
    const char *what = "";
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        rc = EVR_ERR_IO;
        what = strerror(errno);
        goto out;
    }
    self->pr = p[0];
    self->pw = p[1];
    fcntl(self->pr, F_SETPIPE_SZ, (int) S_PIPE);   /* less is fine: the default is 64 KiB */
    if (evr_loop_fd_add(loop, self->pr, EVR_LOOP_READ, s_on_fd, self) != EVR_OK) {
        rc = EVR_ERR_IO;
        what = "the event loop watches too many fds";
        goto out;
    }
    /* the thread takes no signal (SIGPIPE, the loop's): all stay with
       the threads that had them */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&self->thread, NULL, s_thread, self);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        rc = EVR_ERR_IO;
        what = strerror(e);
        goto out;
    }
    self->started = true;
out:
    if (rc) {
        evr_err_set(err, rc, "conmon's attach socket %s/attach: %s", dir, what);
        s_free(self);
        return NULL;
    }
    return self;
}

pid_t
evr_conmon_pid(const evr_conmon_t *self)
{
    return self->peer;
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
