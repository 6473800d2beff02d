/*  evr_artstore.c: the artifacts the broker holds, received from runners
    and served to clients (schema/PROTOCOL.md "Artifacts").

    A runner ships each artifact file as `artifact_chunk` messages, one at
    a time, each answered by an `artifact_ack` saying how many bytes of
    the file the broker holds.  The bytes gather in DIR/JOB/.partial/SHA256
    (the file's content names it, so a runner that comes back after a
    crash, or a resend, carries on where the bytes end and never writes
    twice); once whole, the partial file is synced, its sha256 checked and
    renamed to DIR/JOB/STEP/PATH, so that path never holds a partial file.
    A step name cannot start with '.', so ".partial" is no step.  DIR is
    the broker's (0700); a job's files, whole and partial, are at most
    artifact_job_max_bytes, and its partial files S_PARTIALS_MAX
    (checked as each file starts).
    Clients read files with `fetch`, one bounded piece per request; a
    fetch naming a sha256 is served only by the copy of that sha256.
    The sha256 of each whole file is kept in DIR/JOB/.sha256/STEP/PATH
    (s_sum_*), and in memory (evr_artsum.h: a sum not written does not
    make it read again); a file whose sum is lost is read again at once
    when small, else by a worker thread, the fetch answered not_found
    (S_CHECKING) meanwhile: the loop never reads a large file whole.
    A file refused for good (over the job's limit, or a write that failed)
    is noted in DIR/JOB/.refused, a line each ("CODE\tSHA256\tSTEP\tPATH\t
    REASON", at most S_REFUSED_MAX bytes in all; a file received after a
    note, "received" as its CODE): a fetch naming the sha256 of a copy
    refused is answered with the refusal, so a client stops waiting for a
    file that never comes.
*/
#define _XOPEN_SOURCE 700   /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_broker_int.h"
#include "evr_codec.h"
#include "evr_artsum.h"
#include "evr_sha256.h"

/*  The sha256 of partial files, taken as their pieces arrive, so that a
    whole file is checked without reading it again: one per file being
    received (a few runners at once), the least recently used replaced.
    A partial file with none (the broker restarted meanwhile) is read
    again when it is whole. */
#define S_HASHES 16
/*  The bytes of a job's files, whole and partial, kept in memory for the
    jobs that ship (a few runners at once), the least recently used
    replaced: a file's start checks artifact_job_max_bytes against them
    instead of walking the job's directory (a walk a file made shipping
    N files cost N^2 / 2 stats on the loop: a job of 2000 files took 13 s
    of the broker, one of 100,000 small files would have stopped it for
    hours).  Counted by one walk when first needed (after a restart
    too), then kept up to date by each piece written; forgotten, to be
    walked again, when bytes go otherwise (a partial file dropped, a
    copy replaced).  Retention removes only jobs no runner ships for. */
#define S_TOTALS 16
/*  Partial files a job holds at most (files begun, not whole): a runner
    ships one file at a time, so it leaves a few at most (one a crash);
    without a bound a runner could begin millions of 1-byte files within
    artifact_job_max_bytes, each an inode and a block of the disk. */
#define S_PARTIALS_MAX 4096
#define S_SUMS_KEPT 4096            /* digests of whole files kept in memory (evr_artsum) */
#define S_SUM_INLINE (1u << 20)     /* files read on the loop, at most; larger: by the worker */
#define S_REFUSED_MAX (256u << 10)    /* DIR/JOB/.refused, at most (notes past it: dropped) */
#define S_RECEIVED "received"   /* a note's code: a copy of the file was received after all */

typedef struct {
    char job[EVR_ULID_LEN + 1];
    char sha256[EVR_SHA256_HEX];
    uint64_t held;          /* bytes hashed: the partial file's length */
    uint64_t used;          /* s_clock at the last piece */
    evr_sha256_t *h;        /* NULL: a free slot */
} s_hash_t;

typedef struct {
    char job[EVR_ULID_LEN + 1];     /* "": a free slot */
    uint64_t bytes;                 /* its files, whole and partial (not sums, notes) */
    uint32_t partials;              /* of them, partial files (begun, not whole) */
    uint64_t used;                  /* s_clock at the last use */
} s_total_t;

struct evr_artstore {
    s_hash_t hashes[S_HASHES];
    s_total_t totals[S_TOTALS];
    uint64_t clock;
    evr_artsum_t *sums;
};

evr_artstore_t *
evr_artstore_new(void)
{
    evr_artstore_t *self = evr_calloc(1, sizeof(evr_artstore_t));
    self->sums = evr_artsum_new(S_SUMS_KEPT, S_SUM_INLINE);
    return self;
}

void
evr_artstore_destroy(evr_artstore_t **self_p)
{
    evr_artstore_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < S_HASHES; i++)
        evr_sha256_destroy(&self->hashes[i].h);
    evr_artsum_destroy(&self->sums);
    free(self);
    *self_p = NULL;
}

/*  The hash of the partial file of m, at held bytes; with start (held 0)
    a slot is taken for it.  NULL: none. */
static s_hash_t *
s_hash(evr_artstore_t *as, const evr_msg_t *m, uint64_t held, bool start)
{
    s_hash_t *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < S_HASHES; i++) {
        s_hash_t *x = &as->hashes[i];
        if (x->h && !strcmp(x->job, m->job) && !strcmp(x->sha256, m->sha256)) {
            if (x->held == held)
                return x;
            evr_sha256_destroy(&x->h);   /* out of step with the file: dropped */
        }
        if (!x->h && !free_slot)
            free_slot = x;
        if (x->h && (!oldest || x->used < oldest->used))
            oldest = x;
    }
    if (!start)
        return NULL;
    s_hash_t *x = free_slot ? free_slot : oldest;
    evr_sha256_destroy(&x->h);
    snprintf(x->job, sizeof x->job, "%s", m->job);
    snprintf(x->sha256, sizeof x->sha256, "%s", m->sha256);
    x->held = 0;
    x->h = evr_sha256_new();
    return x;
}

static void
s_ack(evr_broker_t *b, zframe_t *rid, const evr_msg_t *m, uint64_t held, bool done,
      const char *reason)
{
    evr_msg_t a = { .type = EVR_MSG_ARTIFACT_ACK, .job = m->job, .step = m->step,
                    .path = m->path, .sha256 = m->sha256, .offset = held, .done = done,
                    .reason = (char *) reason };
    evr_bus_send(b->runners, rid, &a, NULL);
}

/*  Notes the refusal of m's file (code, why) in DIR/JOB/.refused; best
    effort: a note that cannot be written leaves a client waiting, as
    before, and the broker's log says why.  Refusals are noted while the
    file is under S_REFUSED_MAX, S_RECEIVED notes (code) under twice that
    (so that one can always clear a refusal noted before).  A line starts
    on a line of its own (after a torn one), and a short write is cut
    back off. */
static void
s_note_refusal(evr_broker_t *b, const evr_msg_t *m, const char *code, const char *why)
{
    char *jobdir = evr_asprintf("%s/%s", b->opts.artifacts_dir, m->job);
    char *path = evr_asprintf("%s/.refused", jobdir);
    evr_err_t err;
    off_t cap = strcmp(code, S_RECEIVED) ? S_REFUSED_MAX : 2 * S_REFUSED_MAX;
    int fd = -1;
    struct stat sb;
    if (evr_mkdirs(jobdir, &err) == EVR_OK)
        fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size < cap) {
        char one[1024];     /* why on one line: no tab or newline (step and path have none) */
        snprintf(one, sizeof one, "%s", why);
        for (char *c = one; *c; c++)
            if ((unsigned char) *c < 0x20)
                *c = ' ';
        char last = '\n';
        if (sb.st_size > 0 && pread(fd, &last, 1, sb.st_size - 1) != 1)
            last = '\n';
        char *line = evr_asprintf("%s%s\t%s\t%s\t%s\t%s\n", last == '\n' ? "" : "\n", code,
                                  m->sha256, m->step, m->path, one);
        if (write(fd, line, strlen(line)) != (ssize_t) strlen(line)) {
            evr_broker_warn(b, "artifact %s/%s of job %s: cannot note its refusal in %s: %s",
                            m->step, m->path, m->job, path, strerror(errno ? errno : ENOSPC));
            if (ftruncate(fd, sb.st_size) != 0)
                evr_broker_warn(b, "%s: a torn note left (%s)", path, strerror(errno));
        }
        free(line);
    }
    else if (fd < 0)
        evr_broker_warn(b, "artifact %s/%s of job %s: cannot note its refusal in %s: %s",
                        m->step, m->path, m->job, path, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(path);
    free(jobdir);
}

/*  Refuses the file for good, said in the broker's log and to the runner;
    code: noted for fetch (s_note_refusal) with that error code, NULL: not
    (a job the runner may not ship for, a piece out of bounds). */
static void
s_refuse(evr_broker_t *b, zframe_t *rid, const evr_msg_t *m, const char *code,
         const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
s_refuse(evr_broker_t *b, zframe_t *rid, const evr_msg_t *m, const char *code,
         const char *fmt, ...)
{
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    evr_broker_warn(b, "artifact %s/%s of job %s refused: %s", m->step, m->path, m->job, why);
    if (code)
        s_note_refusal(b, m, code, why);
    s_ack(b, rid, m, 0, false, why);
}

/*  The refusal DIR/JOB/.refused notes of step's path of the file
    sha256, unless a note after it says that copy was received after all:
    its code and reason into code and why; false: none.  Lines holding a
    NUL or not ended (torn) are skipped. */
static bool
s_refusal(const char *jobdir, const char *step, const char *path, const char *sha256,
          char code[33], char *why, size_t len)
{
    char *file = evr_asprintf("%s/.refused", jobdir);
    int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    free(file);
    if (fd < 0)
        return false;
    size_t max = 2 * S_REFUSED_MAX + 4096;    /* the notes' bound, and a line past it */
    char *buf = evr_malloc(max + 1);
    ssize_t n = read(fd, buf, max);
    close(fd);
    bool found = false;
    for (char *line = buf, *end = buf + (n > 0 ? n : 0), *nl; line < end; line = nl + 1) {
        if (!(nl = memchr(line, '\n', (size_t) (end - line))))
            break;      /* a torn last line */
        *nl = '\0';
        if (memchr(line, '\0', (size_t) (nl - line)))
            continue;   /* zeros of a crash */
        char *f[5] = { line };
        int k = 1;
        for (char *c = line; *c && k < 5; c++)
            if (*c == '\t') {
                *c = '\0';
                f[k++] = c + 1;
            }
        if (k == 5 && !strcmp(f[1], sha256) && !strcmp(f[2], step) && !strcmp(f[3], path)) {
            found = strcmp(f[0], S_RECEIVED) != 0;  /* the last of them counts */
            snprintf(code, 33, "%s", f[0]);
            snprintf(why, len, "%s", f[4]);
        }
    }
    free(buf);
    return found;
}

/*  A S_RECEIVED note of m's file when refusals were noted for the job:
    a copy refused before may have come after all. */
static void
s_note_received(evr_broker_t *b, const evr_msg_t *m)
{
    char *notes = evr_asprintf("%s/%s/.refused", b->opts.artifacts_dir, m->job);
    struct stat sb;
    if (lstat(notes, &sb) == 0)
        s_note_refusal(b, m, S_RECEIVED, "");
    free(notes);
}

/*  Bytes a job's files take, whole or partial, besides the file at skip
    (which a new copy replaces), the partial file skip_partial and the
    sha256 sums (a line a file; nftw has no argument: one walk at a
    time, the broker has one thread). */
static uint64_t s_walk_total;
static uint32_t s_walk_partials;
static const char *s_walk_skip, *s_walk_skip_partial;
static char *s_walk_sums;    /* JOBDIR/.sha256/ */

static int
s_walk_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    if (type == FTW_F && S_ISREG(sb->st_mode) && strcmp(path, s_walk_skip) != 0
        && strcmp(path, s_walk_skip_partial) != 0
        && strncmp(path, s_walk_sums, strlen(s_walk_sums)) != 0
        && !(ftw->level == 1 && !strcmp(path + ftw->base, ".refused"))) {  /* notes, bounded */
        s_walk_total += (uint64_t) sb->st_size;
        if (ftw->level == 2 && ftw->base >= 10 && !strncmp(path + ftw->base - 10, "/.partial/", 10))
            s_walk_partials++;
    }
    return 0;
}

static uint64_t
s_job_bytes(const char *jobdir, const char *skip, const char *skip_partial)
{
    s_walk_total = 0;
    s_walk_partials = 0;
    s_walk_skip = skip;
    s_walk_skip_partial = skip_partial;
    s_walk_sums = evr_asprintf("%s/.sha256/", jobdir);
    nftw(jobdir, s_walk_one, 16, FTW_PHYS);
    free(s_walk_sums);
    s_walk_sums = NULL;
    return s_walk_total;
}

/*  The kept total of job, NULL when none is kept. */
static s_total_t *
s_total_find(evr_artstore_t *as, const char *job)
{
    for (int i = 0; i < S_TOTALS; i++)
        if (!strcmp(as->totals[i].job, job))
            return &as->totals[i];
    return NULL;
}

/*  The total of job's files (jobdir), whole and partial: the one kept,
    or a walk of jobdir that is then kept. */
static s_total_t *
s_total_of(evr_artstore_t *as, const char *job, const char *jobdir)
{
    s_total_t *t = s_total_find(as, job);
    if (!t) {
        t = &as->totals[0];
        for (int i = 0; i < S_TOTALS; i++) {
            s_total_t *x = &as->totals[i];
            if (!x->job[0] || x->used < t->used)
                t = x;
            if (!x->job[0])
                break;
        }
        snprintf(t->job, sizeof t->job, "%s", job);
        t->bytes = s_job_bytes(jobdir, "", "");
        t->partials = s_walk_partials;
    }
    t->used = ++as->clock;
    return t;
}

/*  n more bytes of job written (a piece appended), and partials more
    partial files (1: the piece began one, -1: one became whole), when
    its total is kept. */
static void
s_total_add(evr_artstore_t *as, const char *job, uint64_t n, int partials)
{
    s_total_t *t = s_total_find(as, job);
    if (t) {
        t->bytes += n;
        t->partials = (uint32_t) ((int64_t) t->partials + partials);
    }
}

/*  Bytes of job gone otherwise (a partial file dropped, a copy replaced):
    its total walked again when next asked. */
static void
s_total_forget(evr_artstore_t *as, const char *job)
{
    s_total_t *t = s_total_find(as, job);
    if (t)
        t->job[0] = '\0';
}

/*  The bytes of m's job besides the copy at final (which a new copy
    replaces): what s_job_bytes(jobdir, final, partial) counts when m's
    partial file is empty or absent, as at a file's start. */
static uint64_t
s_job_bytes_besides(evr_broker_t *b, const evr_msg_t *m, const char *jobdir, const char *final)
{
    uint64_t all = s_total_of(b->artstore, m->job, jobdir)->bytes;
    struct stat sb;
    uint64_t own = lstat(final, &sb) == 0 && S_ISREG(sb.st_mode) ? (uint64_t) sb.st_size : 0;
    if (own <= all)
        return all - own;
    s_total_forget(b->artstore, m->job);    /* out of step: counted again */
    return s_total_of(b->artstore, m->job, jobdir)->bytes - own;
}

/*  The sum of a whole file DIR/JOB/STEP/PATH is DIR/JOB/.sha256/STEP/PATH
    (".sha256" is no step): one line "SHA256 SIZE INODE MTIME_S MTIME_NS"
    written once the file is in place (or its sha256 was read again).
    It counts only while the file's size, inode and mtime are the ones it
    names: a file replaced since (a later copy, renamed over it: another
    inode), or a sum lost or torn by a crash, is read again, and its sum
    written again.  So the sum needs no sync, and an old sum cannot name
    a new copy. */
static char *
s_sum_path(const evr_broker_t *b, const evr_msg_t *m)
{
    return evr_asprintf("%s/%s/.sha256/%s/%s", b->opts.artifacts_dir, m->job, m->step,
                        m->path);
}

/*  Writes the sum of m's whole file (sb its stat): best effort, a sum
    not written is kept in memory (evr_artsum) and only read again once
    that forgot it. */
static void
s_sum_write(evr_broker_t *b, const evr_msg_t *m, const struct stat *sb, const char *hex)
{
    char *sum = s_sum_path(b, m), *dir = evr_strdup(sum);
    *strrchr(dir, '/') = '\0';
    evr_err_t err;
    char line[160];
    int n = snprintf(line, sizeof line, "%s %llu %llu %lld %ld\n", hex,
                     (unsigned long long) sb->st_size, (unsigned long long) sb->st_ino,
                     (long long) sb->st_mtim.tv_sec, (long) sb->st_mtim.tv_nsec);
    const char *why = NULL;
    int fd = -1;
    if (evr_mkdirs(dir, &err))
        why = err.msg;
    else if ((fd = open(sum, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
        why = strerror(errno);
    else if (write(fd, line, (size_t) n) != n)
        why = strerror(errno ? errno : ENOSPC);
    if (why)
        evr_broker_warn(b, "artifact %s/%s of job %s: cannot write its sha256 to %s (%s): it "
                        "is kept in memory, and read again after a restart", m->step, m->path, m->job, sum, why);
    if (fd >= 0)
        close(fd);
    free(dir);
    free(sum);
}

/*  The digests the worker read: kept (evr_artsum) and their sums written. */
static void
s_sum_done(void *arg, const char *key, const struct stat *sb, const char *hex)
{
    evr_broker_t *b = arg;
    char *k = evr_strdup(key), *step = strchr(k, '/'), *path = step ? strchr(step + 1, '/') : NULL;
    if (path) {
        *step++ = '\0';
        *path++ = '\0';
        evr_msg_t m = { .job = k, .step = step, .path = path };
        /* written only while the digest is of the file there: the sum of
           a copy since replaced would overwrite the current one's */
        char *final = evr_asprintf("%s/%s/%s/%s", b->opts.artifacts_dir, k, step, path);
        struct stat now;
        bool same = lstat(final, &now) == 0 && now.st_ino == sb->st_ino
            && now.st_size == sb->st_size && now.st_mtim.tv_sec == sb->st_mtim.tv_sec
            && now.st_mtim.tv_nsec == sb->st_mtim.tv_nsec;
        free(final);
        if (!same) {
            free(k);
            return;
        }
        evr_broker_debug(b, "artifact %s/%s of job %s: its sha256 read again by the worker "
                         "(%llu bytes; %llu whole files read so far)", step, path, k,
                         (unsigned long long) sb->st_size,
                         (unsigned long long) evr_artsum_reads(b->artstore->sums));
        s_sum_write(b, &m, sb, hex);
    }
    free(k);
}

void
evr_artstore_turn(evr_broker_t *b)
{
    evr_artsum_collect(b->artstore->sums, s_sum_done, b);
}

void *
evr_artstore_sock(evr_broker_t *b)
{
    return evr_artsum_sock(b->artstore->sums);
}

/*  The sha256 of m's whole file (sb its stat, final its path) into hex:
    kept in memory, from its sum, or read again: at once for a small file
    (and the sum written), by the worker for a large one (READING: ask
    again later).  FAILED: the file cannot be read (said in err). */
static evr_artsum_rc_t
s_sum(evr_broker_t *b, const evr_msg_t *m, const char *final, const struct stat *sb,
      char hex[EVR_SHA256_HEX], evr_err_t *err)
{
    evr_artsum_t *sums = b->artstore->sums;
    evr_artsum_collect(sums, s_sum_done, b);
    char *key = evr_asprintf("%s/%s/%s", m->job, m->step, m->path);
    evr_artsum_rc_t rc = EVR_ARTSUM_KNOWN;
    if (evr_artsum_lookup(sums, key, sb, hex))
        goto out;
    char *sum = s_sum_path(b, m), line[160];
    int fd = open(sum, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, line, sizeof line - 1) : -1;
    if (fd >= 0)
        close(fd);
    free(sum);
    unsigned long long size, ino;
    long long sec;
    long nsec;
    int used = 0;
    if (n > 0) {
        line[n] = '\0';
        if (sscanf(line, "%64[0-9a-f] %llu %llu %lld %ld\n%n", hex, &size, &ino, &sec, &nsec,
                   &used) == 5 && used == n && line[n - 1] == '\n' && strlen(hex) == 64
            && size == (unsigned long long) sb->st_size
            && ino == (unsigned long long) sb->st_ino && sec == (long long) sb->st_mtim.tv_sec
            && nsec == (long) sb->st_mtim.tv_nsec) {
            evr_artsum_put(sums, key, sb, hex);
            goto out;
        }
    }
    uint64_t before = evr_artsum_reads(sums);
    rc = evr_artsum_get(sums, key, final, sb, hex, err);
    if (rc == EVR_ARTSUM_KNOWN && evr_artsum_reads(sums) != before) {
        evr_broker_debug(b, "artifact %s/%s of job %s: its sha256 read again (%llu bytes; "
                         "%llu whole files read so far)", m->step, m->path, m->job,
                         (unsigned long long) sb->st_size,
                         (unsigned long long) evr_artsum_reads(sums));
        s_sum_write(b, m, sb, hex);
    }
out:
    free(key);
    return rc;
}

/*  Whether final holds the file (its size and digest): 1 yes, 0 no, -1
    not known yet (a large file the worker reads, or is busy before). */
static int
s_holds(evr_broker_t *b, const char *final, const evr_msg_t *m)
{
    struct stat sb;
    if (lstat(final, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t) sb.st_size != m->size)
        return 0;
    char hex[EVR_SHA256_HEX];
    evr_err_t err;
    evr_artsum_rc_t rc = s_sum(b, m, final, &sb, hex, &err);
    if (rc == EVR_ARTSUM_READING || rc == EVR_ARTSUM_BUSY)
        return -1;
    return rc == EVR_ARTSUM_KNOWN && strcmp(hex, m->sha256) == 0;
}

/*  Appends data at held to the partial file; the new length, or -1
    (errno) when the write failed. */
static int64_t
s_append(const char *partial, const evr_msg_t *m, uint64_t held)
{
    int fd = open(partial, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int64_t out = (int64_t) held;
    for (uint32_t off = 0; off < m->data.len;) {
        ssize_t w = pwrite(fd, m->data.data + off, m->data.len - off, (off_t) (held + off));
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            out = -1;
            break;
        }
        off += (uint32_t) w;
        out += w;
    }
    int en = errno;
    close(fd);
    errno = en;
    return out;
}

/*  The partial file is whole: synced, checked, renamed into place, and
    the runner told (done); a digest that differs starts over (offset 0). */
static void
s_complete(evr_broker_t *b, zframe_t *rid, const evr_msg_t *m, const char *partial,
           const char *final)
{
    int fd = open(partial, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    bool synced = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    char hex[EVR_SHA256_HEX] = "";
    uint64_t size = m->size;
    evr_err_t err;
    s_hash_t *x = s_hash(b->artstore, m, m->size, false);
    bool seen = x != NULL;   /* every byte came to this process: none lost in a crash */
    if (x)   /* taken as the pieces came */
        evr_sha256_finish(&x->h, hex);
    else if (evr_sha256_file(partial, hex, &size, &err))
        hex[0] = '\0';
    if (seen && synced && strcmp(hex, m->sha256)) {
        /* the runner's bytes are not those of its sha256: sent again,
           they would be again, for ever (the runner's shipping stuck) */
        unlink(partial);
        s_total_forget(b->artstore, m->job);
        s_refuse(b, rid, m, EVR_CODE_INTERNAL, "the %llu bytes received have the sha256 %s, "
                 "not the file's (the runner's copy changed since it was recorded?)",
                 (unsigned long long) m->size, hex);
        return;
    }
    if (!synced || strcmp(hex, m->sha256) || size != m->size) {
        /* torn by a crash of the broker, say: the runner sends it again */
        evr_broker_warn(b, "artifact %s/%s of job %s: the received bytes do not match its "
                        "sha256; asking for them again", m->step, m->path, m->job);
        unlink(partial);
        s_total_forget(b->artstore, m->job);
        s_ack(b, rid, m, 0, false, NULL);
        return;
    }
    char *dir = evr_strdup(final), *sum = s_sum_path(b, m);
    *strrchr(dir, '/') = '\0';
    unlink(sum);     /* the earlier copy's (would not count anyway: another inode) */
    free(sum);
    evr_rc_t rc = evr_mkdirs(dir, &err);
    struct stat old;
    bool replaces = lstat(final, &old) == 0;    /* an earlier copy's bytes go */
    if (!rc && rename(partial, final) != 0)
        rc = evr_err_set(&err, EVR_ERR_IO, "rename to %s: %s", final, strerror(errno));
    if (!rc && replaces)
        s_total_forget(b->artstore, m->job);
    else if (!rc && m->size)     /* an empty file's partial was never counted */
        s_total_add(b->artstore, m->job, 0, -1);
    if (!rc) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        evr_broker_info(b, "artifact %s/%s of job %s received (%llu bytes)", m->step, m->path,
                        m->job, (unsigned long long) m->size);
        struct stat sb;
        if (lstat(final, &sb) == 0) {
            char *key = evr_asprintf("%s/%s/%s", m->job, m->step, m->path);
            evr_artsum_put(b->artstore->sums, key, &sb, hex);
            free(key);
            s_sum_write(b, m, &sb, hex);
        }
        s_note_received(b, m);
        s_ack(b, rid, m, m->size, true, NULL);
    }
    else
        s_refuse(b, rid, m, EVR_CODE_INTERNAL, "%s (another artifact of the step in the way?)",
                 err.msg);
    free(dir);
}

/*  The job is known and runs on runner; else the file is refused (or,
    the store failing, left unanswered: the runner asks again). */
static bool
s_job_ok(evr_broker_t *b, zframe_t *rid, const char *runner, const evr_msg_t *m)
{
    evr_job_t job = { 0 };
    evr_err_t err;
    evr_rc_t rc = evr_store_get_job(b->store, m->job, &job, &err);
    bool ok = false;
    if (rc == EVR_ERR_NOTFOUND)
        s_refuse(b, rid, m, NULL, "the broker knows no job %s", m->job);
    else if (rc)
        evr_broker_error(b, "artifact of job %s: %s (not answered)", m->job, err.msg);
    else if (!job.runner || strcmp(job.runner, runner) != 0)
        s_refuse(b, rid, m, NULL, "job %s is not runner %s's (it is %s's)", m->job, runner,
                 job.runner ? job.runner : "no runner");
    else
        ok = true;
    evr_rec_free(&evr_job_type, &job);
    return ok;
}

void
evr_artstore_chunk(evr_broker_t *b, zframe_t *rid, const char *runner, const evr_msg_t *m)
{
    uint64_t cap = b->opts.artifact_job_max_bytes;
    if (m->offset > m->size || m->data.len > m->size - m->offset) {
        s_refuse(b, rid, m, NULL, "a piece at %llu of %u bytes passes the size %llu",
                 (unsigned long long) m->offset, m->data.len, (unsigned long long) m->size);
        return;
    }
    if (!s_job_ok(b, rid, runner, m))
        return;
    char *jobdir = evr_asprintf("%s/%s", b->opts.artifacts_dir, m->job);
    char *final = evr_asprintf("%s/%s/%s", jobdir, m->step, m->path);
    char *partial = evr_asprintf("%s/.partial/%s", jobdir, m->sha256);
    struct stat sb;
    uint64_t held = lstat(partial, &sb) == 0 && S_ISREG(sb.st_mode) ? (uint64_t) sb.st_size : 0;
    if (held > m->size) {
        unlink(partial);
        s_total_forget(b->artstore, m->job);
        held = 0;
    }
    evr_err_t err;
    if (held == 0 && m->offset == 0) {   /* the file's start: a probe, or its first piece */
        /* a copy held already needs no room (a probe of it after a
           restart, or a retried step's identical file) */
        int holds = m->data.len ? 0 : s_holds(b, final, m);
        if (holds > 0) {
            s_note_received(b, m);
            s_ack(b, rid, m, m->size, true, NULL);
            goto out;
        }
        if (holds < 0) {
            /* not answered: the runner probes again when no ack came
               (runner/evr_ship.c S_PROBE_ACK_NS, 1 s), till the digest is known,
               instead of sending up to 4 GiB again */
            evr_broker_debug(b, "artifact %s/%s of job %s: a probe left unanswered while its "
                             "copy's sha256 is read (the runner asks again)", m->step, m->path,
                             m->job);
            goto out;
        }
        /* partial files count too: a runner cannot pile them up */
        uint64_t used = s_job_bytes_besides(b, m, jobdir, final);
        if (m->size > cap || used > cap - m->size) {
            s_refuse(b, rid, m, EVR_CODE_TOO_LARGE, "%llu bytes, with the %llu bytes the job "
                     "holds, over the "
                     "broker's limit of %llu bytes a job (its artifact_job_max_bytes setting)",
                     (unsigned long long) m->size, (unsigned long long) used,
                     (unsigned long long) cap);
            goto out;
        }
        if (lstat(partial, &sb) != 0
            && s_total_of(b->artstore, m->job, jobdir)->partials >= S_PARTIALS_MAX) {
            s_refuse(b, rid, m, EVR_CODE_TOO_LARGE, "the job holds %u files begun and not "
                     "whole already, the broker's limit", S_PARTIALS_MAX);
            goto out;
        }
        char *pdir = evr_asprintf("%s/.partial", jobdir);
        evr_rc_t rc = evr_mkdirs(pdir, &err);
        free(pdir);
        if (rc) {
            s_refuse(b, rid, m, EVR_CODE_INTERNAL, "%s", err.msg);
            goto out;
        }
    }
    if (m->data.len && m->offset == held) {
        int64_t now = s_append(partial, m, held);
        if (now < 0) {
            evr_err_write(&err, partial, errno);
            s_total_forget(b->artstore, m->job);    /* a short write may have left some */
            s_refuse(b, rid, m, EVR_CODE_INTERNAL, "%s", err.msg);
            goto out;
        }
        s_total_add(b->artstore, m->job, (uint64_t) now - held, held == 0 ? 1 : 0);
        s_hash_t *x = s_hash(b->artstore, m, held, held == 0);
        if (x) {
            evr_sha256_update(x->h, m->data.data, m->data.len);
            x->held = (uint64_t) now;
            x->used = ++b->artstore->clock;
        }
        held = (uint64_t) now;
    }
    else if (held == 0 && !m->size)
        s_hash(b->artstore, m, 0, true);   /* an empty file: its hash is of nothing */
    if (held == m->size) {
        if (!m->size) {   /* an empty file: its partial is made now */
            int fd = open(partial, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (fd >= 0)
                close(fd);
        }
        s_complete(b, rid, m, partial, final);
    }
    else
        s_ack(b, rid, m, held, false, NULL);
out:
    free(partial);
    free(final);
    free(jobdir);
}

void
evr_artstore_fetch(evr_broker_t *b, zframe_t *rid, const evr_msg_t *m)
{
    char *final = evr_asprintf("%s/%s/%s/%s", b->opts.artifacts_dir, m->job, m->step, m->path);
    int fd = open(final, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    bool held = fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    char code[33], why[1024];
    char *jobdir = evr_asprintf("%s/%s", b->opts.artifacts_dir, m->job);
    /* the copy asked for (by its sha256) refused: looked at with the
       first piece (the later ones follow a first that was not refused) */
    bool refused = m->sha256 && (!held || !m->offset)
                && s_refusal(jobdir, m->step, m->path, m->sha256, code, why, sizeof why);
    free(jobdir);
    if (refused) {   /* the reason whole: a long path cut (on a UTF-8 boundary) */
        size_t plen = strlen(m->path), cut = plen > 200 ? evr_utf8_cut(m->path, plen, 200, false)
                                                        : plen;
        evr_bus_send_error(b->clients, rid, code, "the broker refused artifact %.*s%s of step "
                           "%s of job %s for good (it never comes): %s", (int) cut, m->path,
                           cut < plen ? "..." : "", m->step, m->job, why);
        goto out;
    }
    char receiving[96] = "";   /* the partial file of the copy asked for */
    if (m->sha256 && (!held || !m->offset)) {
        char *partial = evr_asprintf("%s/%s/.partial/%s", b->opts.artifacts_dir, m->job,
                                     m->sha256);
        struct stat pb;
        if (lstat(partial, &pb) == 0 && S_ISREG(pb.st_mode))
            snprintf(receiving, sizeof receiving, ": %llu byte%s of it received so far",
                     (unsigned long long) pb.st_size, pb.st_size == 1 ? "" : "s");
        free(partial);
    }
    if (!held) {
        evr_bus_send_error(b->clients, rid, EVR_CODE_NOT_FOUND,
                           "the broker holds no artifact %s of step %s of job %s (not shipped "
                           "by its runner yet%s)", m->path, m->step, m->job,
                           receiving[0] ? receiving : ", or never");
        goto out;
    }
    uint64_t size = (uint64_t) sb.st_size;
    char hex[EVR_SHA256_HEX];
    evr_err_t err;
    evr_artsum_rc_t known = m->sha256 ? s_sum(b, m, final, &sb, hex, &err) : EVR_ARTSUM_KNOWN;
    if (known == EVR_ARTSUM_FAILED) {
        evr_bus_send_error(b->clients, rid, EVR_CODE_INTERNAL, "%s", err.msg);
        goto out;
    }
    if (known == EVR_ARTSUM_READING) {
        /* not_found: what clients ask again for (as a file not there yet) */
        evr_bus_send_error(b->clients, rid, EVR_CODE_NOT_FOUND,
                           EVR_MSG_READING "%llu bytes) of artifact %s of step %s of job %s "
                           "again, to tell whether it is the copy of sha256 %s: ask again shortly",
                           (unsigned long long) size, m->path, m->step, m->job, m->sha256);
        goto out;
    }
    if (known == EVR_ARTSUM_BUSY) {   /* nothing asked of the worker: said so */
        evr_bus_send_error(b->clients, rid, EVR_CODE_NOT_FOUND,
                           EVR_MSG_BUSY_READING "%llu bytes) of artifact %s of step %s of job "
                           "%s, to tell whether it is the copy of sha256 %s: busy, ask again "
                           "later", (unsigned long long) size, m->path, m->step, m->job,
                           m->sha256);
        goto out;
    }
    if (m->sha256 && strcmp(hex, m->sha256) != 0) {
        /* never another copy's bytes: the client checks against the event */
        evr_bus_send_error(b->clients, rid, EVR_CODE_NOT_FOUND,
                           EVR_MSG_OTHER_COPY "sha256 %s, %llu bytes) of artifact %s of step %s of "
                           "job %s, not the copy of sha256 %s (not shipped by its runner yet%s; "
                           "or a later copy replaced it)", hex, (unsigned long long) size,
                           m->path, m->step, m->job, m->sha256, receiving);
        goto out;
    }
    if (m->offset > size) {
        evr_bus_send_error(b->clients, rid, EVR_CODE_BAD_REQUEST,
                           "fetch.offset: %llu is past the end of artifact %s (%llu bytes)",
                           (unsigned long long) m->offset, m->path, (unsigned long long) size);
        goto out;
    }
    uint64_t n = size - m->offset < EVR_MSG_CHUNK_MAX ? size - m->offset : EVR_MSG_CHUNK_MAX;
    uint8_t *buf = evr_malloc(n ? n : 1);
    ssize_t got = n ? pread(fd, buf, n, (off_t) m->offset) : 0;
    if (got < 0 || (uint64_t) got != n)
        evr_bus_send_error(b->clients, rid, EVR_CODE_INTERNAL, "reading %s: %s", final,
                           got < 0 ? strerror(errno) : "the file shrank");
    else {
        evr_msg_t d = { .type = EVR_MSG_ARTIFACT_DATA, .step = m->step, .path = m->path,
                        .size = size, .offset = m->offset,
                        .data = { .data = buf, .len = (uint32_t) n } };
        evr_bus_send(b->clients, rid, &d, NULL);
    }
    free(buf);
out:
    if (fd >= 0)
        close(fd);
    free(final);
}
