/*  evr_conmon.c: conmon's attach socket, read by a thread of its own and
    handed to the event loop in place (evr_spool.h).

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
    (recvmmsg) straight into a spool the loop reads where they lie, up to
    S_HOLD bytes (a commit of ~2 MB of output takes 10-40 ms on this
    project's machine), and only a full spool stops it reading: that
    bound stays, as conmon then waits.  The spool replaced a pipe of 1
    MiB between them (written, and read into a buffer of the loop's: two
    copies through the kernel and four system calls a batch, ~15% of the
    runner's CPU on bulk output).

    Records in the spool: an 8-byte header (the length, then the distance
    to the next record, host order) and that many bytes of one packet
    (its stream byte first, then the data).  A receive lays its packets
    out at a fixed stride (S_STRIDE: each slot takes the longest packet),
    so a short packet leaves a gap the distance skips, and the next
    receive begins right after its last packet.  A length of S_END ends
    the stream (conmon closed the socket), S_TRUNC says a packet was
    longer than a slot (bytes lost), S_ERROR is followed by an errno (4
    bytes).

    Bulk output is moved in batches, not one packet at a time (12,000
    wakeups of each side for 100 MB): the thread rests S_REST_US after a
    call that took S_REST_MIN bytes or more but did not fill its slots
    (ppoll: a rest of poll's 1 ms, ~1.1 ms with the timer's slack, held
    conmon up: 100 MB took 1.42 s against 1.16 s with 0.5 ms and 1.31 s
    for `podman run`, medians of 6 rounds; no rest at all cost ~1.5x the
    CPU), and the loop lets the
    spool rest S_LOOP_REST_MS after such a read (the spool holds ~0.2 s:
    4 ms rather than 1 took ~10% off the runner's CPU on bulk output); a
    trickle (a line now and then) is passed on the moment it comes.
*/
#define _GNU_SOURCE   /* recvmmsg, O_PATH, struct ucred */
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

#include "evr_spool.h"

/* conmon 2.1 sends at most 8 KiB + 1 (its STDIO_BUF_SIZE and the stream
   byte); podman's own attach reads with a buffer of exactly that */
#define S_SLOT (8u * 1024 + 64)
#define S_HDR 8u
#define S_STRIDE (S_HDR + S_SLOT)
#define S_SLOTS 16
#define S_SEG (512u * 1024)     /* a segment of the spool: ~63 packets */
#define S_HOLD (16u << 20)      /* the thread's bytes not taken by the loop, at most */
#define S_READ (1024u * 1024)   /* the loop's bytes per turn, at most */
#define S_REST_MIN (8u * 1024)
#ifndef S_REST_US
#define S_REST_US 500
#endif
#define S_LOOP_REST_MS 4        /* the loop's rest after a bulk read */
#define S_END 0xffffffffu
#define S_TRUNC 0xfffffffeu
#define S_ERROR 0xfffffffdu

struct evr_conmon {
    evr_loop_t *loop;
    int sock;           /* conmon's socket, read by the thread */
    evr_spool_t *spool; /* the thread's packets, read by the loop */
    pid_t peer;         /* the process listening there (SO_PEERCRED), or 0 */
    pthread_t thread;
    bool started;       /* the thread runs (to be joined) */
    bool watched;       /* the spool's fd is watched by the loop */
    evr_conmon_output_fn *out;
    evr_conmon_end_fn *end;
    void *arg;
    bool ended;         /* end called: reads no more */
    bool reading;       /* inside s_on_fd: destroy only marks it */
    bool dead;          /* destroyed while reading: s_on_fd frees it */
    uint64_t rest;      /* the timer ending a rest (the spool not watched), or 0 */
};

/* ----------------------------------------------------------- the thread */

static void
s_header(uint8_t *at, uint32_t len, uint32_t next)
{
    memcpy(at, &len, 4);
    memcpy(at + 4, &next, 4);
}

/*  Receives what conmon has sent (up to S_SLOTS packets, as many as room
    bytes at `at` hold, without waiting) into records there and puts them
    in the spool (or the end, or the error of a failed call).  False once
    the stream is over; *bulk: a batch worth a rest. */
static bool
s_receive(int sock, evr_spool_t *sp, uint8_t *at, size_t room, bool *bulk)
{
    struct iovec iov[S_SLOTS];
    struct mmsghdr m[S_SLOTS];
    size_t slots = room / S_STRIDE < S_SLOTS ? room / S_STRIDE : S_SLOTS;
    memset(m, 0, sizeof m);
    for (size_t i = 0; i < slots; i++) {
        iov[i] = (struct iovec) { .iov_base = at + i * S_STRIDE + S_HDR, .iov_len = S_SLOT };
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(sock, m, (unsigned) slots, MSG_DONTWAIT, NULL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    bool on = true;
    size_t used = 0, bytes = 0;
    if (n < 0) {
        uint32_t e = (uint32_t) errno;
        s_header(at, S_ERROR, S_HDR + 4);
        memcpy(at + S_HDR, &e, 4);
        used = S_HDR + 4;
        on = false;
    }
    for (int i = 0; i < n && on; i++) {
        uint32_t len = m[i].msg_len;
        uint8_t *rec = at + (size_t) i * S_STRIDE;
        if (len == 0 || (m[i].msg_hdr.msg_flags & MSG_TRUNC)) {
            s_header(rec, len == 0 ? S_END : S_TRUNC, S_HDR);
            used = (size_t) (rec - at) + S_HDR;
            on = false;
            break;
        }
        bool last = i + 1 == n;
        s_header(rec, len, last ? S_HDR + len : S_STRIDE);
        used = (size_t) (rec - at) + S_HDR + len;
        bytes += len;
    }
    evr_spool_put(sp, used);
    /* bulk: a rest, so that the next call takes what conmon sent
       meanwhile (its socket holds ~3 ms of its fastest output) */
    *bulk = on && n < (int) slots && bytes >= S_REST_MIN;
    return on;
}

static uint64_t
s_ns_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

/*  The thread: conmon's packets into the spool until the socket ends (or
    fails), or the loop closes the spool.  A loop busy in a long commit
    does not hold conmon up: the thread keeps taking its packets, up to
    S_HOLD bytes not taken, and only then stops reading the socket (until
    the loop takes some). */
static void *
s_thread(void *arg)
{
    evr_conmon_t *self = arg;
    int sock = self->sock;
    evr_spool_t *sp = self->spool;
    bool on = true;
    uint64_t rest_end = 0;   /* ns: the socket rests until then */
    while (on) {
        uint64_t now = rest_end ? s_ns_now() : 0;
        if (now >= rest_end)
            rest_end = 0;
        size_t room = 0;
        uint8_t *at = rest_end ? NULL : evr_spool_room(sp, S_STRIDE, &room);
        if (!at && evr_spool_closed(sp))
            break;   /* the loop is gone */
        struct pollfd p[2] = {
            { .fd = at ? sock : -1, .events = POLLIN },
            { .fd = evr_spool_room_fd(sp), .events = POLLIN },
        };
        struct timespec ts = { 0, 0 };
        if (rest_end) {
            ts.tv_sec = (time_t) ((rest_end - now) / 1000000000u);
            ts.tv_nsec = (long) ((rest_end - now) % 1000000000u);
        }
        if (ppoll(p, 2, rest_end ? &ts : NULL, NULL) < 0 && errno != EINTR)
            break;
        if (p[1].revents) {   /* room came back, or the loop is gone */
            uint64_t v;
            if (read(p[1].fd, &v, sizeof v) < 0 && errno != EAGAIN && errno != EINTR)
                break;
        }
        bool bulk = false;
        if (at && p[0].revents)
            on = s_receive(sock, sp, at, room, &bulk);
        if (bulk)
            rest_end = s_ns_now() + S_REST_US * 1000ull;
    }
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

/*  Stops the thread (the spool closed: it is refused room and woken; its
    socket shut down: a read ends) and frees everything. */
static void
s_free(evr_conmon_t *self)
{
    evr_loop_timer_cancel(self->loop, self->rest);
    if (self->watched)
        evr_loop_fd_remove(self->loop, evr_spool_fd(self->spool));
    if (self->started) {
        evr_spool_close(self->spool);
        shutdown(self->sock, SHUT_RDWR);
        pthread_join(self->thread, NULL);
    }
    if (self->sock >= 0)
        close(self->sock);
    evr_spool_destroy(&self->spool);
    free(self);
}

/*  The end, once: the spool is no longer watched. */
static void
s_end(evr_conmon_t *self, evr_rc_t rc, const char *msg)
{
    self->ended = true;
    if (self->watched)
        evr_loop_fd_remove(self->loop, evr_spool_fd(self->spool));
    self->watched = false;
    self->end(rc, msg, self->arg);
}

/*  Passes on the records in p[0, len) (all whole) until *took bytes pass
    max; false once the read ended or the reader was destroyed. */
static bool
s_records(evr_conmon_t *self, const uint8_t *p, size_t len, size_t max, size_t *took)
{
    char msg[160];
    size_t at = 0;
    bool on = true;
    while (on && at < len && at < max) {
        uint32_t n, next;
        memcpy(&n, p + at, 4);
        memcpy(&next, p + at + 4, 4);
        if (n == S_END) {   /* conmon closed the socket: the output has ended */
            s_end(self, EVR_OK, "");
            return false;
        }
        if (n == S_TRUNC || n == S_ERROR) {
            uint32_t e = 0;
            if (n == S_ERROR)
                memcpy(&e, p + at + S_HDR, 4);
            if (n == S_TRUNC)
                snprintf(msg, sizeof msg, "conmon's attach socket sent a packet of more than "
                         "%u bytes (conmon sends at most 8193: its 8 KiB and the stream byte)", S_SLOT);
            else
                snprintf(msg, sizeof msg, "reading conmon's attach socket: %s",
                         strerror((int) e));
            s_end(self, EVR_ERR_PODMAN, msg);
            return false;
        }
        uint8_t id = p[at + S_HDR];
        if (id != 2 && id != 3) {
            snprintf(msg, sizeof msg, "conmon's attach socket sent a packet of stream %u "
                     "(expected 2, stdout, or 3, stderr)", id);
            s_end(self, EVR_ERR_PODMAN, msg);
            return false;
        }
        if (n > 1)
            self->out(id - 1, p + at + S_HDR + 1, n - 1, self->arg);
        at += next;
        on = !self->dead;
    }
    *took = at;
    return on;
}

static void s_on_fd(evr_loop_t *loop, int fd, int events, void *arg);

/*  The end of a rest: the spool is watched again, and read at once. */
static void
s_rested(evr_loop_t *loop, void *arg)
{
    evr_conmon_t *self = arg;
    self->rest = 0;
    int fd = evr_spool_fd(self->spool);
    if (evr_loop_fd_add(loop, fd, EVR_LOOP_READ, s_on_fd, self) != EVR_OK) {
        s_end(self, EVR_ERR_PODMAN, "conmon's attach socket: the event loop watches too many "
                                    "fds");
        return;
    }
    self->watched = true;
    s_on_fd(loop, fd, EVR_LOOP_READ, self);
}

/*  The spool has records: up to S_READ bytes of them are passed on (the
    rest wait for the next turn, the spool's fd staying readable). */
static void
s_on_fd(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) events;
    evr_conmon_t *self = arg;
    size_t done = 0, len;
    bool on = true;
    const uint8_t *p;
    self->reading = true;
    while (on && done < S_READ && (p = evr_spool_peek(self->spool, &len))) {
        size_t took = 0;
        on = s_records(self, p, len, S_READ - done, &took);
        if (!self->dead)
            evr_spool_take(self->spool, took);
        done += took;
    }
    self->reading = false;
    if (self->dead) {
        s_free(self);
        return;
    }
    if (on && !self->ended && done >= S_REST_MIN && done < S_READ) {
        evr_loop_fd_remove(loop, fd);
        self->watched = false;
        self->rest = evr_loop_timer_add(loop, S_LOOP_REST_MS, s_rested, self);
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
    self->out = out;
    self->end = end;
    self->arg = arg;
    evr_rc_t rc = EVR_OK;
    const char *what = "";
    self->spool = evr_spool_new(S_SEG, S_HOLD);
    if (!self->spool) {
        rc = EVR_ERR_IO;
        what = strerror(errno);
        goto out;
    }
    if (evr_loop_fd_add(loop, evr_spool_fd(self->spool), EVR_LOOP_READ, s_on_fd, self)
        != EVR_OK) {
        rc = EVR_ERR_IO;
        what = "the event loop watches too many fds";
        goto out;
    }
    self->watched = true;
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
