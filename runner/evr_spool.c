/*  evr_spool.c: bytes from one thread to the loop in place (evr_spool.h).

    A list of segments, oldest first.  The producer writes at the free end
    of the last one (tail) and publishes with put (len grows); the loop
    reads the first one (head) from done to len and takes (done grows).
    One mutex guards the list and both counters; the bytes themselves are
    written outside it, in the part of the tail no one else reads.  When
    the loop has taken all of the tail, the producer starts it over from
    its start (the loop keeps up: one segment, warm in the cache); a full
    tail gets a new segment after it, and a segment the loop has taken
    whole and that is no longer the tail goes to a list of spares, which
    new segments come from first (kept till the spool goes, as the pipe's
    hold was: a bulk burst that outruns a commit of the loop's does not
    fault in fresh memory each time; at most `max` bytes in all).

    Wake-ups: `wake` says the loop's eventfd was written and not read
    yet (both under the lock), so a put writes it once however many puts
    come before the loop looks, and a look (peek) reads it only then.  `want_room` says the producer was
    refused room: the take that gives room back writes its eventfd. */
#define _GNU_SOURCE
#include "evr_spool.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "evr_common.h"

typedef struct s_seg {
    struct s_seg *next;
    size_t len;     /* bytes put */
    size_t done;    /* bytes taken */
    uint8_t data[];
} s_seg_t;

struct evr_spool {
    pthread_mutex_t mu;
    s_seg_t *head, *tail;
    s_seg_t *spare;         /* segments taken whole, for new ones */
    size_t seg, max;
    size_t held;            /* bytes of the segments in the list */
    int fd;                 /* the loop's eventfd */
    int room_fd;            /* the producer's */
    bool wake;              /* fd written, not read yet */
    bool want_room;         /* the producer was refused room */
    bool closed;            /* by the loop */
};

static void
s_signal(int fd)
{
    uint64_t one = 1;
    ssize_t w;
    do
        w = write(fd, &one, sizeof one);
    while (w < 0 && errno == EINTR);
    /* EAGAIN: the counter is full, so the fd is readable anyway */
}

static void
s_drain(int fd)
{
    uint64_t v;
    ssize_t r;
    do
        r = read(fd, &v, sizeof v);
    while (r < 0 && errno == EINTR);
}

evr_spool_t *
evr_spool_new(size_t seg, size_t max)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int room_fd = fd < 0 ? -1 : eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (room_fd < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e;
        return NULL;
    }
    evr_spool_t *self = evr_calloc(1, sizeof *self);
    pthread_mutex_init(&self->mu, NULL);
    self->seg = seg;
    self->max = max < seg ? seg : max;
    self->fd = fd;
    self->room_fd = room_fd;
    return self;
}

void
evr_spool_destroy(evr_spool_t **self_p)
{
    evr_spool_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    for (s_seg_t *s = self->head, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    for (s_seg_t *s = self->spare, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    close(self->fd);
    close(self->room_fd);
    pthread_mutex_destroy(&self->mu);
    free(self);
}

uint8_t *
evr_spool_room(evr_spool_t *self, size_t need, size_t *room)
{
    assert(need <= self->seg);
    *room = 0;
    pthread_mutex_lock(&self->mu);
    s_seg_t *t = self->tail;
    uint8_t *at = NULL;
    if (self->closed)
        goto out;
    if (t && t == self->head && t->done == t->len)
        t->done = t->len = 0;   /* all taken: over again from its start */
    if (t && self->seg - t->len >= need) {
        at = t->data + t->len;
        *room = self->seg - t->len;
        goto out;
    }
    if (self->held + self->seg > self->max) {
        self->want_room = true;
        goto out;
    }
    s_seg_t *s = self->spare;
    if (s)
        self->spare = s->next;
    else {   /* allocated outside the lock: the loop may want it meanwhile */
        pthread_mutex_unlock(&self->mu);
        s = evr_malloc(sizeof *s + self->seg);
        pthread_mutex_lock(&self->mu);
    }
    s->next = NULL;
    s->len = s->done = 0;
    if (self->tail)
        self->tail->next = s;
    else
        self->head = s;
    self->tail = s;
    self->held += self->seg;
    at = s->data;
    *room = self->seg;
out:
    pthread_mutex_unlock(&self->mu);
    return at;
}

void
evr_spool_put(evr_spool_t *self, size_t n)
{
    pthread_mutex_lock(&self->mu);
    self->tail->len += n;
    if (!self->wake && n) {
        self->wake = true;
        s_signal(self->fd);
    }
    pthread_mutex_unlock(&self->mu);
}

int
evr_spool_room_fd(const evr_spool_t *self)
{
    return self->room_fd;
}

bool
evr_spool_closed(evr_spool_t *self)
{
    pthread_mutex_lock(&self->mu);
    bool closed = self->closed;
    pthread_mutex_unlock(&self->mu);
    return closed;
}

int
evr_spool_fd(const evr_spool_t *self)
{
    return self->fd;
}

/*  Drops the head while it is taken whole and not the tail (under the
    lock); true when one went. */
static bool
s_drop_taken(evr_spool_t *self)
{
    bool gone = false;
    s_seg_t *s;
    while ((s = self->head) && s != self->tail && s->done == s->len) {
        self->head = s->next;
        self->held -= self->seg;
        s->next = self->spare;
        self->spare = s;
        gone = true;
    }
    return gone;
}

const uint8_t *
evr_spool_peek(evr_spool_t *self, size_t *len)
{
    pthread_mutex_lock(&self->mu);
    if (self->wake)   /* read only when written: a put after the look signals again */
        s_drain(self->fd);
    self->wake = false;
    bool gone = s_drop_taken(self);
    bool signal = gone && self->want_room;
    if (signal)
        self->want_room = false;
    s_seg_t *s = self->head;
    const uint8_t *at = NULL;
    *len = 0;
    if (s && s->len > s->done) {
        at = s->data + s->done;
        *len = s->len - s->done;
    }
    pthread_mutex_unlock(&self->mu);
    if (signal)
        s_signal(self->room_fd);
    return at;
}

void
evr_spool_take(evr_spool_t *self, size_t n)
{
    pthread_mutex_lock(&self->mu);
    s_seg_t *s = self->head;
    if (s)
        s->done += n;
    bool room = s_drop_taken(self) || (s && s == self->tail && s->done == s->len);
    bool signal_room = room && self->want_room;
    if (signal_room)
        self->want_room = false;
    bool left = false;
    for (s = self->head; s && !left; s = s->next)
        left = s->len > s->done;
    if (left && !self->wake) {
        self->wake = true;
        s_signal(self->fd);
    }
    pthread_mutex_unlock(&self->mu);
    if (signal_room)
        s_signal(self->room_fd);
}

void
evr_spool_close(evr_spool_t *self)
{
    pthread_mutex_lock(&self->mu);
    self->closed = true;
    pthread_mutex_unlock(&self->mu);
    s_signal(self->room_fd);
}
