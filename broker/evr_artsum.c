/*  evr_artsum.c: digests of whole artifact files, kept and read off the
    loop (evr_artsum.h).

    Kept digests live in a zhashx keyed by "JOB/STEP/PATH", each with the
    stat it is of and a use clock; when full, the least recently used is
    dropped (a scan, once per digest added to a full store).  Files too
    large to read at once go to a czmq actor over its pipe: a request
    "KEY PATH STAT" is answered "KEY STAT HEX" (HEX "-": the file could
    not be read, or it was not the file of STAT before or after).  Files
    being read are remembered (pending) so that one is asked once.
*/
#include <czmq.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "evr_artsum.h"

#define S_PENDING_MAX 64
#define S_READ_BYTES (1u << 20)
/*  A failed read is remembered this long (a file the broker cannot read
    is not read again at each ask; one that failed for a passing reason,
    out of descriptors or an I/O error, is read again after it). */
#define S_RETRY_NS (60ull * 1000000000ull)

typedef struct {
    uint64_t ino, size, used;
    int64_t sec;
    long nsec;
    bool failed;       /* the worker could not read this file: hex unset */
    uint64_t failed_at;     /* mono ns of that failure: it is tried again after S_RETRY_NS */
    char hex[EVR_SHA256_HEX];
} s_sum_t;

/*  What the loop and the worker share: stop, set before the worker is
    destroyed (it stops reading between 1 MiB reads and drops the files
    still asked for); bytes, those the worker read (for tests). */
typedef struct {
    atomic_bool stop;
    atomic_uint_fast64_t bytes;
} s_shared_t;

struct evr_artsum {
    zhashx_t *sums;    /* key -> s_sum_t */
    zhashx_t *pending; /* key -> its stat, as text: the worker reads it */
    zactor_t *worker;
    s_shared_t *shared;
    size_t max;
    uint64_t inline_max, clock, reads;
};

/*  sb as "INO SIZE SEC NSEC" (the text both ends of the pipe compare). */
static void
s_stat_text(const struct stat *sb, char out[96])
{
    snprintf(out, 96, "%llu %llu %lld %ld", (unsigned long long) sb->st_ino,
             (unsigned long long) sb->st_size, (long long) sb->st_mtim.tv_sec,
             (long) sb->st_mtim.tv_nsec);
}

/*  The sha256 of the open file fd, which must stay the file of stat
    (text); false: it cannot be read or is another file, or (shared set:
    the worker's) it was stopped. */
static bool
s_read_fd(int fd, const char *stat, char hex[EVR_SHA256_HEX], s_shared_t *shared)
{
    struct stat sb;
    char now[96];
    if (fstat(fd, &sb) != 0 || (s_stat_text(&sb, now), strcmp(now, stat)))
        return false;
    evr_sha256_t *h = evr_sha256_new();
    uint8_t *buf = evr_malloc(S_READ_BYTES);
    uint64_t got = 0;
    ssize_t n = 0;
    while ((!shared || !atomic_load(&shared->stop)) && (n = read(fd, buf, S_READ_BYTES)) > 0) {
        evr_sha256_update(h, buf, (size_t) n);
        got += (uint64_t) n;
        if (shared)
            atomic_fetch_add(&shared->bytes, (uint64_t) n);
    }
    if (shared && atomic_load(&shared->stop))
        n = -1;
    free(buf);
    evr_sha256_finish(&h, hex);
    return n == 0 && got == (uint64_t) sb.st_size && fstat(fd, &sb) == 0
        && (s_stat_text(&sb, now), !strcmp(now, stat));
}

static bool
s_read_path(const char *path, const char *stat, char hex[EVR_SHA256_HEX], s_shared_t *shared)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = s_read_fd(fd, stat, hex, shared);
    close(fd);
    return ok;
}

/*  The worker: reads the files asked for, one at a time, until $TERM;
    once stop is set, those still asked for are dropped unread (and the
    one being read left). */
static void
s_worker(zsock_t *pipe, void *arg)
{
    s_shared_t *shared = arg;
    sigset_t all; /* signals are the loop's (a flag each): never this thread's
                     (blocked already by the thread that made it: evr_artsum_new) */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    zsock_signal(pipe, 0);
    while (true) {
        char *key = NULL, *path = NULL, *stat = NULL;
        if (zstr_recvx(pipe, &key, &path, &stat, NULL) < 1 && errno == EINTR)
            continue;
        if (!key || !strcmp(key, "$TERM") || !path || !stat) {
            bool term = !key || !strcmp(key, "$TERM");
            zstr_free(&key);
            zstr_free(&path);
            zstr_free(&stat);
            if (term)
                break;
            continue;
        }
        char hex[EVR_SHA256_HEX];
        if (!atomic_load(&shared->stop)) {
            if (!s_read_path(path, stat, hex, shared))
                strcpy(hex, "-");
            if (!atomic_load(&shared->stop))
                zstr_sendx(pipe, key, stat, hex, NULL);
        }
        zstr_free(&key);
        zstr_free(&path);
        zstr_free(&stat);
    }
}

evr_artsum_t *
evr_artsum_new(size_t max, uint64_t inline_max)
{
    assert(max > 0);
    evr_artsum_t *self = evr_calloc(1, sizeof *self);
    self->sums = zhashx_new();
    zhashx_set_destructor(self->sums, (zhashx_destructor_fn *) zstr_free);
    self->pending = zhashx_new();
    zhashx_set_destructor(self->pending, (zhashx_destructor_fn *) zstr_free);
    zhashx_set_duplicator(self->pending, (zhashx_duplicator_fn *) strdup);
    self->shared = evr_calloc(1, sizeof *self->shared);
    atomic_init(&self->shared->stop, false);
    atomic_init(&self->shared->bytes, 0);
    /* the worker starts with every signal blocked: none is delivered to
       it before it blocks them itself */
    sigset_t all, was;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &was);
    self->worker = zactor_new(s_worker, self->shared);
    pthread_sigmask(SIG_SETMASK, &was, NULL);
    self->max = max;
    self->inline_max = inline_max;
    return self;
}

void
evr_artsum_stop(evr_artsum_t *self)
{
    /* the file being read is left at its next 1 MiB, those asked for
       dropped: $TERM does not wait behind them */
    atomic_store(&self->shared->stop, true);
    zactor_destroy(&self->worker);
}

void
evr_artsum_destroy(evr_artsum_t **self_p)
{
    evr_artsum_t *self = *self_p;
    if (!self)
        return;
    evr_artsum_stop(self);
    free(self->shared);
    zhashx_destroy(&self->sums);
    zhashx_destroy(&self->pending);
    free(self);
    *self_p = NULL;
}

static bool
s_same(const s_sum_t *s, const struct stat *sb)
{
    return s->ino == (uint64_t) sb->st_ino && s->size == (uint64_t) sb->st_size
        && s->sec == (int64_t) sb->st_mtim.tv_sec && s->nsec == (long) sb->st_mtim.tv_nsec;
}

bool
evr_artsum_lookup(evr_artsum_t *self, const char *key, const struct stat *sb,
                  char hex[EVR_SHA256_HEX])
{
    s_sum_t *s = zhashx_lookup(self->sums, key);
    if (!s || s->failed || !s_same(s, sb))
        return false;
    s->used = ++self->clock;
    memcpy(hex, s->hex, EVR_SHA256_HEX);
    return true;
}

/*  Keeps hex (NULL: the file could not be read) for key's file sb. */
static void
s_put(evr_artsum_t *self, const char *key, const struct stat *sb, const char *hex)
{
    s_sum_t *s = zhashx_lookup(self->sums, key);
    if (!s && zhashx_size(self->sums) >= self->max) {
        const char *oldest = NULL;
        uint64_t least = UINT64_MAX;
        for (s_sum_t *x = zhashx_first(self->sums); x; x = zhashx_next(self->sums))
            if (x->used < least) {
                least = x->used;
                oldest = zhashx_cursor(self->sums);
            }
        char *drop = strdup(oldest);
        zhashx_delete(self->sums, drop);
        free(drop);
    }
    if (!s) {
        s = evr_calloc(1, sizeof *s);
        zhashx_insert(self->sums, key, s);
    }
    s->ino = (uint64_t) sb->st_ino;
    s->size = (uint64_t) sb->st_size;
    s->sec = (int64_t) sb->st_mtim.tv_sec;
    s->nsec = (long) sb->st_mtim.tv_nsec;
    s->used = ++self->clock;
    s->failed = !hex;
    s->failed_at = hex ? 0 : evr_mono_ns();
    snprintf(s->hex, sizeof s->hex, "%s", hex ? hex : "");
}

void
evr_artsum_put(evr_artsum_t *self, const char *key, const struct stat *sb, const char *hex)
{
    /* the worker's reading of another copy, if any, is no longer the
       current one's: its digest is not kept over this one (collect) */
    char stat[96];
    s_stat_text(sb, stat);
    const char *was = zhashx_lookup(self->pending, key);
    if (was && strcmp(was, stat))
        zhashx_delete(self->pending, key);
    s_put(self, key, sb, hex);
}

evr_artsum_rc_t
evr_artsum_get(evr_artsum_t *self, const char *key, const char *path, const struct stat *sb,
               char hex[EVR_SHA256_HEX], evr_err_t *err)
{
    if (evr_artsum_lookup(self, key, sb, hex))
        return EVR_ARTSUM_KNOWN;
    const s_sum_t *known = zhashx_lookup(self->sums, key);
    if (known && known->failed && s_same(known, sb)
        && evr_mono_ns() - known->failed_at < S_RETRY_NS) {
        evr_err_set(err, EVR_ERR_IO,
                    "%s could not be read, or changed while read, when its sha256 was read "
                    "(it is read again a minute after, or once its inode, size or mtime "
                    "change)", path);
        return EVR_ARTSUM_FAILED;
    }
    char stat[96];
    s_stat_text(sb, stat);
    if ((uint64_t) sb->st_size <= self->inline_max) {
        self->reads++;
        errno = 0;
        if (!s_read_path(path, stat, hex, NULL)) {
            evr_err_set(err, EVR_ERR_IO,
                        "%s changed or could not be read while its sha256 "
                        "was read (%s)",
                        path, errno ? strerror(errno) : "another file");
            return EVR_ARTSUM_FAILED;
        }
        evr_artsum_put(self, key, sb, hex);
        return EVR_ARTSUM_KNOWN;
    }
    const char *was = zhashx_lookup(self->pending, key);
    if (was && !strcmp(was, stat))
        return EVR_ARTSUM_READING;
    if (!self->worker || (!was && zhashx_size(self->pending) >= S_PENDING_MAX))
        return EVR_ARTSUM_BUSY; /* nothing asked: asked again later, when the worker caught up */
    char *before = was ? strdup(was) : NULL;
    zhashx_update(self->pending, key, stat);
    if (zstr_sendx(self->worker, key, path, stat, NULL) != 0) {
        if (before) /* the earlier request is still the worker's */
            zhashx_update(self->pending, key, before);
        else
            zhashx_delete(self->pending, key);
        free(before);
        return EVR_ARTSUM_BUSY;
    }
    free(before);
    return EVR_ARTSUM_READING;
}

int
evr_artsum_collect(evr_artsum_t *self, evr_artsum_done_fn *done, void *arg)
{
    int n = 0;
    while (self->worker && (zsock_events(zactor_sock(self->worker)) & ZMQ_POLLIN)) {
        char *key = NULL, *stat = NULL, *hex = NULL;
        if (zstr_recvx(self->worker, &key, &stat, &hex, NULL) == 3) {
            self->reads++;
            const char *want = zhashx_lookup(self->pending, key);
            bool current = want && !strcmp(want, stat);
            if (current)
                zhashx_delete(self->pending, key);
            unsigned long long ino, size;
            long long sec;
            long nsec;
            /* kept only when asked for last, or nothing is kept for key:
               an older copy's result never replaces the current copy's */
            if ((current || !zhashx_lookup(self->sums, key))
                && sscanf(stat, "%llu %llu %lld %ld", &ino, &size, &sec, &nsec) == 4) {
                struct stat sb = { 0 };
                sb.st_ino = (ino_t) ino;
                sb.st_size = (off_t) size;
                sb.st_mtim.tv_sec = (time_t) sec;
                sb.st_mtim.tv_nsec = nsec;
                bool ok = strcmp(hex, "-") != 0;
                s_put(self, key, &sb, ok ? hex : NULL);
                if (ok && done)
                    done(arg, key, &sb, hex);
                n += ok;
            }
        }
        zstr_free(&key);
        zstr_free(&stat);
        zstr_free(&hex);
    }
    return n;
}

uint64_t
evr_artsum_worker_bytes(const evr_artsum_t *self)
{
    return atomic_load(&self->shared->bytes);
}

void *
evr_artsum_sock(evr_artsum_t *self)
{
    return self->worker ? zsock_resolve(zactor_sock(self->worker)) : NULL;   /* NULL: stopped */
}

uint64_t
evr_artsum_reads(const evr_artsum_t *self)
{
    return self->reads;
}

size_t
evr_artsum_size(const evr_artsum_t *self)
{
    return zhashx_size(self->sums);
}
