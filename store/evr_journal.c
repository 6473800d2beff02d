/*  evr_journal.c: the append-only journal (evr_journal.h).

    A batch is built in memory (evr_journal_add; the CRCs at the write), written with one pwrite
    at the write offset (evr_journal_write) and flushed with one fdatasync
    (evr_journal_sync).  The header is little-endian: magic, payload
    length (u32; its top bit marks the last record of a batch), seq
    (u64), CRC-32C (u32) of the length word, seq and payload.
*/
#define _GNU_SOURCE   /* memmem */
#include "evr_journal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAGIC 0x314a5645u     /* "EVJ1" */
#define S_END 0x80000000u       /* in the length word: the last record of its batch */

struct evr_journal {
    int fd;
    char *path;
    bool nosync;
    bool failed;        /* a write or flush failed: no more records */
    uint64_t off;       /* the write offset: bytes since the last rewind */
    uint64_t seq;       /* the last record's */
    uint8_t *buf;       /* the batch being built */
    size_t len, cap;
};

static uint32_t s_crc_table[256];

static void
s_crc_init(void)
{
    if (s_crc_table[1])
        return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;   /* Castagnoli, reflected */
        s_crc_table[i] = c;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/*  The same with SSE 4.2's crc32 instruction (CRC-32C), 8 bytes a step. */
__attribute__((target("sse4.2"))) static uint32_t
s_crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
    }
    uint32_t c32 = (uint32_t) c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

static uint32_t
s_crc(uint32_t crc, const uint8_t *p, size_t n)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("sse4.2"))
        return s_crc_hw(crc, p, n);
#endif
    crc = ~crc;
    while (n--)
        crc = s_crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void
s_put(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++, v >>= 8)
        p[i] = (uint8_t) v;
}

static uint64_t
s_get(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t
s_rec_crc(const uint8_t *hdr, const uint8_t *data, size_t len)
{
    return s_crc(s_crc(0, hdr + 4, 12), data, len);     /* length and seq, then payload */
}

/*  Zeros up to EVR_JOURNAL_AHEAD (within RLIMIT_FSIZE), flushed once:
    best effort, a write that fails is the records' to report. */
static void
s_ahead(evr_journal_t *self)
{
    struct stat st;
    if (fstat(self->fd, &st) || (uint64_t) st.st_size >= EVR_JOURNAL_AHEAD)
        return;
    uint64_t want = EVR_JOURNAL_AHEAD;
    struct rlimit fsize;
    if (getrlimit(RLIMIT_FSIZE, &fsize) == 0 && fsize.rlim_cur != RLIM_INFINITY
        && want > fsize.rlim_cur / 2)
        want = fsize.rlim_cur / 2;
    static const uint8_t zeros[65536];
    for (uint64_t off = (uint64_t) st.st_size; off < want;) {
        size_t n = want - off < sizeof zeros ? (size_t) (want - off) : sizeof zeros;
        ssize_t w = pwrite(self->fd, zeros, n, (off_t) off);
        if (w <= 0)
            return;
        off += (uint64_t) w;
    }
    if (!self->nosync)
        fdatasync(self->fd);
}

evr_rc_t
evr_journal_open(const char *path, bool nosync, evr_journal_t **out, evr_err_t *err)
{
    *out = NULL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return evr_err_set(err, EVR_ERR_STORE, "store: open %s: %s", path, strerror(errno));
    s_crc_init();
    evr_journal_t *self = evr_calloc(1, sizeof *self);
    self->fd = fd;
    self->path = evr_strdup(path);
    self->nosync = nosync;
    s_ahead(self);
    *out = self;
    return EVR_OK;
}

void
evr_journal_destroy(evr_journal_t **self_p)
{
    evr_journal_t *self = *self_p;
    if (!self)
        return;
    close(self->fd);
    free(self->path);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

/*  Reads n bytes at off: 1 whole, 0 short (the end of the file), -1 an
    error (errno). */
static int
s_read(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (uint8_t *) buf + got, n - got, (off_t) (off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        got += (size_t) r;
    }
    return 1;
}

typedef struct {
    uint64_t off;       /* of the next record */
    uint64_t prev;      /* the seq of the record before; 0: none read yet */
    uint64_t seq, len;  /* the record read */
    bool end;           /* it ends its batch */
    uint8_t *data;
    size_t cap;
} s_cursor_t;

/*  Reads the record at c->off into c: 1 a whole record that follows the
    one before, 0 the end (none, torn, or stale), -1 a read error. */
static int
s_next(evr_journal_t *self, s_cursor_t *c, evr_err_t *err)
{
    uint8_t hdr[EVR_JOURNAL_HDR];
    int r = s_read(self->fd, hdr, sizeof hdr, c->off);
    if (r > 0) {
        uint64_t word = s_get(hdr + 4, 4);
        c->len = word & ~S_END;
        c->end = (word & S_END) != 0;
        c->seq = s_get(hdr + 8, 8);
        if (s_get(hdr, 4) != S_MAGIC || c->len > EVR_JOURNAL_REC_MAX
            || (c->prev && c->seq != c->prev + 1))
            return 0;
        if (c->len > c->cap) {
            c->cap = c->len;
            c->data = evr_realloc(c->data, c->cap);
        }
        r = s_read(self->fd, c->data, c->len, c->off + sizeof hdr);
    }
    if (r < 0) {
        evr_err_set(err, EVR_ERR_STORE, "store: read %s: %s", self->path, strerror(errno));
        return -1;
    }
    if (r == 0 || s_rec_crc(hdr, c->data, c->len) != s_get(hdr + 16, 4))
        return 0;   /* the file ends, or the record is torn */
    c->prev = c->seq;
    c->off += sizeof hdr + c->len;
    return 1;
}

/*  After a record that is not whole at c->off: the offset of the next
    whole record (magic, length, CRC) newer than min, at or past c->off +
    1; false when none follows (a torn tail, or only older records a
    rewind left).  The file is searched for the magic in windows. */
#define S_WINDOW (1u << 20)
static bool
s_resync(evr_journal_t *self, const s_cursor_t *c, uint64_t min, uint64_t *found)
{
    static const uint8_t magic[4] = { 0x45, 0x56, 0x4a, 0x31 };   /* "EVJ1" */
    struct stat st;
    if (fstat(self->fd, &st) != 0)
        return false;
    uint64_t size = (uint64_t) st.st_size;
    uint8_t *win = evr_malloc(S_WINDOW);
    bool ok = false;
    uint64_t base = c->off + 1;
    for (;;) {
        ssize_t n = pread(self->fd, win, S_WINDOW, (off_t) base);
        if (n < (ssize_t) sizeof magic)
            break;
        for (uint8_t *p = win; (p = memmem(p, (size_t) n - (size_t) (p - win), magic, 4));
             p++) {
            uint64_t at = base + (uint64_t) (p - win);
            uint8_t hdr[EVR_JOURNAL_HDR];
            if (s_read(self->fd, hdr, sizeof hdr, at) <= 0 || s_get(hdr + 8, 8) <= min
                || at + sizeof hdr + (s_get(hdr + 4, 4) & ~S_END) > size)
                continue;   /* older, or longer than the file: not a record to take */
            s_cursor_t t = { .off = at };
            evr_err_t ign;
            int r = s_next(self, &t, &ign);
            free(t.data);
            if (r > 0) {
                *found = at;
                ok = true;
                goto out;
            }
        }
        if ((size_t) n < S_WINDOW)
            break;
        base += S_WINDOW - (sizeof magic - 1);   /* a magic across the windows' edge */
    }
out:
    free(win);
    return ok;
}

/*  One record on: s_next, and past a record that is not whole when a
    newer whole one follows it (damage, not the file's end): *gap_off its
    offset, *gap_seq the first seq it may have held (0: none passed). */
static int
s_step(evr_journal_t *self, s_cursor_t *c, uint64_t after, uint64_t *gap_off,
       uint64_t *gap_seq, evr_err_t *err)
{
    *gap_seq = 0;
    int r = s_next(self, c, err);
    uint64_t min = c->prev > after ? c->prev : after, at;
    if (r != 0 || !s_resync(self, c, min, &at))
        return r;
    *gap_off = c->off;
    *gap_seq = min + 1;
    c->off = at;
    c->prev = 0;
    return s_next(self, c, err);
}

evr_rc_t
evr_journal_replay(evr_journal_t *self, uint64_t after, evr_journal_fn *fn,
                   evr_journal_gap_fn *gap, void *arg, uint64_t *last, evr_err_t *err)
{
    /* first the end of the last whole batch, then its records up to there */
    s_cursor_t c = { 0 };
    uint64_t end = 0, high = after, goff, gseq;
    int r;
    while ((r = s_step(self, &c, after, &goff, &gseq, err)) > 0) {
        end = c.end ? c.off : end;
        high = c.seq > high ? c.seq : high;
    }
    evr_rc_t rc = r < 0 ? EVR_ERR_STORE : EVR_OK;
    *last = after;
    c.off = c.prev = 0;
    while (!rc && c.off < end && (r = s_step(self, &c, after, &goff, &gseq, err)) > 0) {
        /* a gap before a batch's end: records lost inside the file, not a torn tail */
        if (gseq && gap && c.seq > gseq)
            gap(goff, c.off - (EVR_JOURNAL_HDR + c.len) - goff, gseq, c.seq - 1, arg);
        if (c.seq <= after)
            continue;
        if (fn(c.seq, c.data, c.len, arg))
            rc = evr_err_set(err, EVR_ERR_STORE, "store: %s: record %llu not taken up",
                             self->path, (unsigned long long) c.seq);
        *last = c.seq;
    }
    if (!rc && r < 0)
        rc = EVR_ERR_STORE;
    free(c.data);
    /* new records follow every seq read, a torn batch's too: none is reused */
    self->seq = high;
    self->off = 0;      /* the owner checkpoints what was read, then writes from 0 */
    return rc;
}

uint8_t *
evr_journal_add(evr_journal_t *self, size_t len, uint64_t *seq)
{
    assert(len <= EVR_JOURNAL_REC_MAX);
    if (self->len + EVR_JOURNAL_HDR + len > self->cap) {
        self->cap = (self->len + EVR_JOURNAL_HDR + len) * 2;
        self->buf = evr_realloc(self->buf, self->cap);
    }
    uint8_t *h = self->buf + self->len;
    *seq = ++self->seq;
    s_put(h, S_MAGIC, 4);
    s_put(h + 4, len, 4);
    s_put(h + 8, *seq, 8);
    self->len += EVR_JOURNAL_HDR + len;
    return h + EVR_JOURNAL_HDR;
}

evr_rc_t
evr_journal_write(evr_journal_t *self, evr_err_t *err)
{
    size_t len = self->len;
    self->len = 0;
    for (size_t at = 0; at < len;) {     /* the CRCs, now that the payloads are filled */
        uint8_t *h = self->buf + at;
        size_t n = (size_t) s_get(h + 4, 4);
        if (at + EVR_JOURNAL_HDR + n == len)
            s_put(h + 4, n | S_END, 4);
        s_put(h + 16, s_rec_crc(h, h + EVR_JOURNAL_HDR, n), 4);
        at += EVR_JOURNAL_HDR + n;
    }
    if (self->failed)
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: an earlier write failed",
                           self->path);
    for (size_t done = 0; done < len;) {
        ssize_t w = pwrite(self->fd, self->buf + done, len - done, (off_t) (self->off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            self->failed = true;
            return evr_err_set(err, EVR_ERR_STORE, "store: write %s: %s", self->path,
                               w < 0 ? strerror(errno) : "nothing written");
        }
        done += (size_t) w;
    }
    self->off += len;
    return EVR_OK;
}

evr_rc_t
evr_journal_sync(evr_journal_t *self, evr_err_t *err)
{
    if (self->failed)
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: an earlier write failed",
                           self->path);
    if (!self->nosync && fdatasync(self->fd) != 0) {
        self->failed = true;    /* what reached the disk is unknown (a failed flush) */
        return evr_err_set(err, EVR_ERR_STORE, "store: fdatasync %s: %s", self->path,
                           strerror(errno));
    }
    return EVR_OK;
}

void
evr_journal_rewind(evr_journal_t *self)
{
    self->off = 0;
}

uint64_t
evr_journal_used(const evr_journal_t *self)
{
    return self->off;
}

uint64_t
evr_journal_seq(const evr_journal_t *self)
{
    return self->seq;
}
