/*  test_spool.c: evr_spool, the hand-off of bytes from a thread to the
    loop in place.  One thread: what is put is peeked as it lies, whole
    and in order, across segments; the loop's fd is readable exactly while
    bytes are left; a segment taken whole is written again from its start
    (no new memory while the loop keeps up), and segments taken whole are
    used again; the bound refuses room until
    a take gives some back, and says so on the producer's fd; a close
    refuses room and wakes the producer.  Two threads: a producer writing
    numbered records of every size through a small spool while the loop
    takes them in pieces gets every byte once and in order; a producer
    waiting for room ends once the loop closes. */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "evr_spool.h"
#include "evr_test.h"

static bool
s_readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void
s_clear(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof v) == sizeof v)
        ;
}

static void
test_put_peek_take(void)
{
    evr_spool_t *sp = evr_spool_new(64, 256);
    CHECK(sp != NULL);
    size_t len, room;
    CHECK(evr_spool_peek(sp, &len) == NULL && len == 0);
    CHECK(!s_readable(evr_spool_fd(sp)));
    uint8_t *w = evr_spool_room(sp, 10, &room);
    CHECK(w != NULL && room == 64);
    memcpy(w, "hello", 5);
    evr_spool_put(sp, 5);
    CHECK(s_readable(evr_spool_fd(sp)));
    uint8_t *w2 = evr_spool_room(sp, 10, &room);
    CHECK(w2 == w + 5 && room == 59);   /* the same segment, after it */
    memcpy(w2, " world", 6);
    evr_spool_put(sp, 6);
    const uint8_t *r = evr_spool_peek(sp, &len);
    CHECK(r == w && len == 11 && memcmp(r, "hello world", 11) == 0);   /* in place */
    CHECK(!s_readable(evr_spool_fd(sp)));   /* peeked: cleared */
    evr_spool_take(sp, 6);
    CHECK(s_readable(evr_spool_fd(sp)));    /* bytes are left */
    r = evr_spool_peek(sp, &len);
    CHECK(len == 5 && memcmp(r, "world", 5) == 0);
    evr_spool_take(sp, 5);
    CHECK(!s_readable(evr_spool_fd(sp)));
    CHECK(evr_spool_peek(sp, &len) == NULL);
    /* all taken: the producer writes the segment from its start again */
    CHECK(evr_spool_room(sp, 64, &room) == w && room == 64);
    evr_spool_destroy(&sp);
    CHECK(sp == NULL);
    evr_spool_destroy(&sp);   /* NULL is fine */
}

/*  A put that does not fit the tail goes to a new segment, whole; peek
    gives one segment's bytes at a time, oldest first. */
static void
test_segments(void)
{
    evr_spool_t *sp = evr_spool_new(64, 1024);
    size_t len, room;
    uint8_t *a = evr_spool_room(sp, 40, &room);
    memset(a, 'a', 40);
    evr_spool_put(sp, 40);
    uint8_t *b = evr_spool_room(sp, 40, &room);   /* 24 left: a new segment */
    CHECK(b != NULL && b != a + 40 && room == 64);
    memset(b, 'b', 40);
    evr_spool_put(sp, 40);
    const uint8_t *r = evr_spool_peek(sp, &len);
    CHECK(r == a && len == 40);
    evr_spool_take(sp, 40);
    CHECK(s_readable(evr_spool_fd(sp)));   /* the next segment's are left */
    r = evr_spool_peek(sp, &len);
    CHECK(r == b && len == 40 && r[0] == 'b' && r[39] == 'b');
    evr_spool_take(sp, 40);
    CHECK(evr_spool_peek(sp, &len) == NULL);
    /* the first went (kept as the spare), the second is all taken and
       is written again from its start */
    CHECK(evr_spool_room(sp, 64, &room) == b);
    evr_spool_destroy(&sp);
}

/*  Segments taken whole are kept: a later burst writes into them again,
    not into fresh memory, up to the bound in all. */
static void
test_spares(void)
{
    evr_spool_t *sp = evr_spool_new(64, 256);
    size_t len, room;
    uint8_t *seg[4];
    for (int i = 0; i < 4; i++) {
        seg[i] = evr_spool_room(sp, 64, &room);
        CHECK(seg[i] != NULL && room == 64);
        evr_spool_put(sp, 64);
    }
    CHECK(evr_spool_room(sp, 1, &room) == NULL);   /* 256 bytes held */
    while (evr_spool_peek(sp, &len))
        evr_spool_take(sp, len);
    /* three went to the spares; the tail, all taken, is written again */
    CHECK(evr_spool_room(sp, 64, &room) == seg[3]);
    evr_spool_put(sp, 64);
    bool reused = true;
    for (int i = 0; i < 3; i++) {
        uint8_t *w = evr_spool_room(sp, 64, &room);
        reused = reused && (w == seg[0] || w == seg[1] || w == seg[2]);
        evr_spool_put(sp, 64);
    }
    CHECK(reused);
    CHECK(evr_spool_room(sp, 1, &room) == NULL);   /* still the bound */
    evr_spool_destroy(&sp);
}

/*  At max bytes held, room is refused until the loop takes a segment;
    the producer's fd says when. */
static void
test_bound(void)
{
    evr_spool_t *sp = evr_spool_new(64, 128);
    size_t len, room;
    int rfd = evr_spool_room_fd(sp);
    for (int i = 0; i < 2; i++) {
        uint8_t *w = evr_spool_room(sp, 64, &room);
        CHECK(w != NULL && room == 64);
        memset(w, '0' + i, 64);
        evr_spool_put(sp, 64);
    }
    CHECK(evr_spool_room(sp, 1, &room) == NULL && room == 0);
    CHECK(!evr_spool_closed(sp));
    CHECK(!s_readable(rfd));
    const uint8_t *r = evr_spool_peek(sp, &len);
    CHECK(len == 64 && r[0] == '0');
    evr_spool_take(sp, 10);   /* a part: no room yet */
    CHECK(!s_readable(rfd));
    CHECK(evr_spool_room(sp, 1, &room) == NULL);
    evr_spool_take(sp, 54);
    CHECK(s_readable(rfd));
    s_clear(rfd);
    uint8_t *w = evr_spool_room(sp, 64, &room);
    CHECK(w != NULL);
    evr_spool_put(sp, 0);   /* nothing put: no wake-up */
    r = evr_spool_peek(sp, &len);
    CHECK(len == 64 && r[0] == '1');
    evr_spool_take(sp, 64);
    CHECK(evr_spool_peek(sp, &len) == NULL);
    /* a spool of one segment: all of the tail taken gives room back too */
    evr_spool_destroy(&sp);
    sp = evr_spool_new(64, 64);
    rfd = evr_spool_room_fd(sp);
    evr_spool_room(sp, 64, &room);
    evr_spool_put(sp, 60);
    CHECK(evr_spool_room(sp, 8, &room) == NULL);
    evr_spool_peek(sp, &len);
    evr_spool_take(sp, 60);
    CHECK(s_readable(rfd));
    CHECK(evr_spool_room(sp, 8, &room) != NULL && room == 64);
    evr_spool_destroy(&sp);
}

static void
test_close(void)
{
    evr_spool_t *sp = evr_spool_new(64, 64);
    size_t room;
    CHECK(evr_spool_room(sp, 8, &room) != NULL);
    evr_spool_put(sp, 8);
    evr_spool_close(sp);
    CHECK(evr_spool_closed(sp));
    CHECK(s_readable(evr_spool_room_fd(sp)));
    CHECK(evr_spool_room(sp, 8, &room) == NULL);
    evr_spool_destroy(&sp);   /* with bytes not taken: freed */
}

/* ------------------------------------------------------------- threaded */

#define S_RECORDS 200000

typedef struct {
    evr_spool_t *sp;
    uint32_t sent;      /* records put */
    bool stopped;       /* the producer saw the close */
} s_prod_t;

/*  Record k: a 4-byte length n (1-300), then n bytes of (k + i) % 251. */
static size_t
s_rec_len(uint32_t k)
{
    return 1 + (k * 2654435761u >> 7) % 300;
}

/*  The producer: records into the spool, waiting for room in poll(2) as
    conmon's reader thread does, until all are put or the loop closes. */
static void *
s_producer(void *arg)
{
    s_prod_t *p = arg;
    uint32_t k = 0;
    while (k < S_RECORDS) {
        size_t room;
        uint8_t *w = evr_spool_room(p->sp, 4 + 300, &room);
        if (!w) {
            if (evr_spool_closed(p->sp))
                break;
            struct pollfd pf = { .fd = evr_spool_room_fd(p->sp), .events = POLLIN };
            poll(&pf, 1, -1);
            s_clear(pf.fd);
            continue;
        }
        size_t used = 0;
        while (k < S_RECORDS && used + 4 + s_rec_len(k) <= room && used < 1000) {
            uint32_t n = (uint32_t) s_rec_len(k);
            memcpy(w + used, &n, 4);
            for (uint32_t i = 0; i < n; i++)
                w[used + 4 + i] = (uint8_t) ((k + i) % 251);
            used += 4 + n;
            k++;
        }
        evr_spool_put(p->sp, used);
    }
    p->sent = k;
    p->stopped = k < S_RECORDS;
    return NULL;
}

/*  Every record once and in order through a spool of 4 segments of 4 KiB,
    the loop taking at most 3000 bytes a look (records are never split). */
static void
test_threads_in_order(void)
{
    s_prod_t p = { .sp = evr_spool_new(4096, 16384) };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, s_producer, &p) == 0);
    uint32_t k = 0;
    bool ok = true;
    size_t looks = 0;
    while (k < S_RECORDS && ok) {
        struct pollfd pf = { .fd = evr_spool_fd(p.sp), .events = POLLIN };
        if (poll(&pf, 1, 10000) != 1) {
            ok = false;   /* no wake-up while records were due */
            break;
        }
        size_t len;
        const uint8_t *r = evr_spool_peek(p.sp, &len);
        if (!r)
            continue;   /* a wake-up that finds nothing: allowed */
        looks++;
        size_t at = 0;
        while (at < len && at < 3000 && ok) {
            uint32_t n;
            memcpy(&n, r + at, 4);
            ok = n == s_rec_len(k) && at + 4 + n <= len;
            for (uint32_t i = 0; ok && i < n; i++)
                ok = r[at + 4 + i] == (uint8_t) ((k + i) % 251);
            at += 4 + n;
            k++;
        }
        evr_spool_take(p.sp, at);
    }
    CHECK(ok);
    CHECK(k == S_RECORDS);
    pthread_join(t, NULL);
    CHECK(p.sent == S_RECORDS && !p.stopped);
    size_t len;
    CHECK(evr_spool_peek(p.sp, &len) == NULL);
    fprintf(stderr, "  (%d records in %zu looks)\n", S_RECORDS, looks);
    evr_spool_destroy(&p.sp);
}

/*  The loop closes while the producer waits for room: it wakes and ends. */
static void
test_threads_close(void)
{
    s_prod_t p = { .sp = evr_spool_new(4096, 8192) };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, s_producer, &p) == 0);
    struct pollfd pf = { .fd = evr_spool_fd(p.sp), .events = POLLIN };
    CHECK(poll(&pf, 1, 10000) == 1);
    usleep(50 * 1000);   /* the producer fills the spool and waits */
    evr_spool_close(p.sp);
    pthread_join(t, NULL);
    CHECK(p.stopped && p.sent < S_RECORDS);
    evr_spool_destroy(&p.sp);
}

int
main(void)
{
    EVR_TEST_RUN(test_put_peek_take);
    EVR_TEST_RUN(test_segments);
    EVR_TEST_RUN(test_spares);
    EVR_TEST_RUN(test_bound);
    EVR_TEST_RUN(test_close);
    EVR_TEST_RUN(test_threads_in_order);
    EVR_TEST_RUN(test_threads_close);
    EVR_TEST_END();
}
