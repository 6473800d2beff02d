/*  evr_ship.c: the artifact queue and its shipper; see evr_ship.h. */
#include "evr_ship.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_log.h"
#include "evr_sha256.h"

#define S_MAGIC "evrun-ship 2"
#define S_SCAN_NS 200000000ull      /* the queue looked at when idle */
#define S_ACK_NS 10000000000ull     /* a piece unacknowledged this long: asked again */
/*  a probe (no data) unacknowledged this long: asked again; the broker
    leaves a probe unanswered while it reads a large copy's sha256 */
#define S_PROBE_ACK_NS 1000000000ull
#define S_ENTRY_MAX 4096            /* bytes of one entry */
#define S_HOLD_MAX 4096             /* names of entries held from one look at the queue */

struct evr_ship {
    char *dir, *artifacts_dir;
    uint64_t next_scan;     /* mono ns */
    /* the oldest entries at the last look at dir (s_look), sorted: those
       from next on are still to take; count: the entries dir held then,
       less those taken and gone since */
    char **names;
    uint32_t held, next, count;
    /* the file under way: its entry (a name in dir), what it names */
    char *entry;
    char *job, *step, *path;
    char sha256[EVR_SHA256_HEX];
    uint64_t size;
    char *identity;         /* of the file when it was queued */
    int fd;
    uint64_t offset;        /* what the broker holds, by its last ack */
    bool probe;             /* the next piece asks where the bytes end */
    bool waiting;           /* a piece awaits its ack, sent at sent_at */
    uint64_t sent_at;
};

#define s_warn(...) evr_log_at(EVR_LOG_WARN, "evrun-runner", __VA_ARGS__)
#define s_info(...) evr_log_at(EVR_LOG_INFO, "evrun-runner", __VA_ARGS__)

/*  Writes path whole (a temporary name, renamed) and, with sync,
    durably (the file synced before the rename, the directory after);
    without sync, only the temporary name PATH.tmp is written: the
    shipper never takes it (evr_ship_sync renames it into place once
    synced). */
static evr_rc_t
s_write_entry(const char *dir, const char *path, const char *text, bool sync, evr_err_t *err)
{
    char *tmp = evr_asprintf("%s.tmp", path);
    evr_rc_t rc = EVR_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    size_t n = strlen(text);
    if (fd < 0)
        rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tmp, strerror(errno));
    else {
        errno = 0;      /* a short write sets none */
        if (write(fd, text, n) != (ssize_t) n || (sync && fsync(fd) != 0))
            rc = evr_err_write(err, tmp, errno ? errno : ENOSPC);
    }
    if (fd >= 0 && close(fd) != 0 && !rc)
        rc = evr_err_write(err, tmp, errno);
    if (!rc && sync && rename(tmp, path) != 0)
        rc = evr_err_set(err, EVR_ERR_IO, "rename %s: %s", tmp, strerror(errno));
    if (rc)
        unlink(tmp);
    else if (sync) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    free(tmp);
    return rc;
}

/*  The identity of a file: device, inode, mtime (ns), size. */
static char *
s_identity(const struct stat *sb)
{
    return evr_asprintf("%llu:%llu:%lld.%09ld:%lld", (unsigned long long) sb->st_dev,
                        (unsigned long long) sb->st_ino, (long long) sb->st_mtim.tv_sec,
                        sb->st_mtim.tv_nsec, (long long) sb->st_size);
}

/*  The entry of a file (see evr_ship_enqueue), written unsynced or not;
    *entry (when not NULL) its path, for the caller to free. */
static evr_rc_t
s_enqueue(const char *dir, const char *file, const char *job, const char *step,
          const char *path, uint64_t size, const char *sha256, bool sync, char **entry,
          evr_err_t *err)
{
    static uint32_t seq;
    struct stat sb;
    if (entry)
        *entry = NULL;
    if (lstat(file, &sb) != 0)
        return evr_err_set(err, EVR_ERR_IO, "%s: %s", file, strerror(errno));
    evr_rc_t rc = evr_mkdirs(dir, err);
    if (rc)
        return rc;
    /* wall ns, then a counter: names sort in the order of queueing, also
       across restarts; then the pid, as queueing runs in children forked
       from the loop with the same counter (evr_step_artifact.c), two of
       them side by side never make the same name */
    char *name = evr_asprintf("%s/%020llu-%06u-%ld.ship", dir, (unsigned long long) evr_now_ns(),
                              seq++ % 1000000u, (long) getpid());
    char *id = s_identity(&sb);
    char *text = evr_asprintf("%s\n%s\n%s\n%s\n%llu\n%s\n%s\n", S_MAGIC, job, step, path,
                              (unsigned long long) size, sha256, id);
    rc = s_write_entry(dir, name, text, sync, err);
    free(id);
    free(text);
    if (!rc && entry)
        *entry = name;
    else
        free(name);
    return rc;
}

evr_rc_t
evr_ship_enqueue(const char *dir, const char *file, const char *job, const char *step,
                 const char *path, uint64_t size, const char *sha256, evr_err_t *err)
{
    return s_enqueue(dir, file, job, step, path, size, sha256, true, NULL, err);
}

evr_rc_t
evr_ship_enqueue_unsynced(const char *dir, const char *file, const char *job, const char *step,
                          const char *path, uint64_t size, const char *sha256, char **entry,
                          evr_err_t *err)
{
    return s_enqueue(dir, file, job, step, path, size, sha256, false, entry, err);
}

evr_rc_t
evr_ship_sync(const char *dir, char *const *entries, size_t n, evr_err_t *err)
{
    /* every entry's data first, then the renames one after another: a
       child killed meanwhile (a cancel) most likely leaves temporary
       files only, which no event names and the shipper never takes */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            if (!entries[i])
                continue;
            char *tmp = evr_asprintf("%s.tmp", entries[i]);
            evr_rc_t rc = EVR_OK;
            if (pass == 0) {
                int fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 || fdatasync(fd) != 0)
                    rc = evr_err_set(err, EVR_ERR_IO, "syncing the artifact queue entry %s: %s",
                                     tmp, strerror(errno));
                if (fd >= 0)
                    close(fd);
            }
            else if (rename(tmp, entries[i]) != 0)
                rc = evr_err_set(err, EVR_ERR_IO, "rename %s: %s", tmp, strerror(errno));
            free(tmp);
            if (rc)
                return rc;
        }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    evr_rc_t rc = EVR_OK;
    if (dfd < 0 || fsync(dfd) != 0)
        rc = evr_err_set(err, EVR_ERR_IO, "syncing the artifact queue %s: %s", dir,
                         strerror(errno));
    if (dfd >= 0)
        close(dfd);
    return rc;
}

void
evr_ship_unqueue(const char *entry)
{
    char *tmp = evr_asprintf("%s.tmp", entry);
    unlink(tmp);
    unlink(entry);
    free(tmp);
}

/*  Removes the entries' temporary files (NAME.ship.tmp) a runner killed
    while it queued left in dir: never taken up, they would keep the
    queue from ever looking empty (retention waits for that). */
static void
s_sweep_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n > 9 && !strcmp(e->d_name + n - 9, ".ship.tmp"))
            unlinkat(dirfd(d), e->d_name, 0);
    }
    if (d)
        closedir(d);
}

evr_ship_t *
evr_ship_new(const char *dir, const char *artifacts_dir)
{
    s_sweep_tmp(dir);
    evr_ship_t *self = evr_calloc(1, sizeof *self);
    self->dir = evr_strdup(dir);
    self->artifacts_dir = evr_strdup(artifacts_dir);
    self->fd = -1;
    return self;
}

/*  Forgets the file under way; with drop, its entry is removed. */
static void
s_end(evr_ship_t *self, bool drop)
{
    if (drop && self->entry) {
        char *p = evr_asprintf("%s/%s", self->dir, self->entry);
        unlink(p);
        free(p);
        if (self->count)
            self->count--;
    }
    if (self->fd >= 0)
        close(self->fd);
    self->fd = -1;
    free(self->entry);
    free(self->job);
    free(self->step);
    free(self->path);
    free(self->identity);
    self->entry = self->job = self->step = self->path = self->identity = NULL;
    self->waiting = false;
}

void
evr_ship_destroy(evr_ship_t **self_p)
{
    evr_ship_t *self = *self_p;
    if (!self)
        return;
    s_end(self, false);
    while (self->next < self->held)
        free(self->names[self->next++]);
    free(self->names);
    free(self->dir);
    free(self->artifacts_dir);
    free(self);
    *self_p = NULL;
}

/*  The held names' heap while reading: a max-heap by strcmp (its root
    the newest name, the first to give way to an older one). */
static bool
s_newer(const void *a, const void *b)
{
    return strcmp(a, b) > 0;
}

static int
s_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/*  Looks at dir again: the names held (those not taken yet dropped) are
    the S_HOLD_MAX oldest entries now there, sorted, the one under way
    left out; count all of them.  One read of dir, whatever its size, and
    a bounded heap: a long queue (thousands of files of a job, or a
    backlog after the broker was away) is read once for every S_HOLD_MAX
    files shipped, not once a file. */
static void
s_look(evr_ship_t *self)
{
    while (self->next < self->held)
        free(self->names[self->next++]);
    self->held = self->next = self->count = 0;
    DIR *d = opendir(self->dir);
    if (!d)
        return;
    if (!self->names)
        self->names = evr_calloc(S_HOLD_MAX, sizeof *self->names);
    char **h = self->names;     /* a max-heap while reading, then sorted */
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".ship") != 0 || e->d_type == DT_DIR)
            continue;   /* (a directory so named is none of ours: it could not be removed) */
        self->count++;
        if (self->entry && !strcmp(e->d_name, self->entry))
            continue;
        if (self->held < S_HOLD_MAX) {
            h[self->held] = evr_strdup(e->d_name);
            evr_heap_up((void **) h, self->held++, s_newer);
        }
        else if (strcmp(e->d_name, h[0]) < 0) {   /* older than the newest held */
            free(h[0]);
            h[0] = evr_strdup(e->d_name);
            evr_heap_down((void **) h, self->held, 0, s_newer);
        }
    }
    closedir(d);
    qsort(h, self->held, sizeof *h, s_name_cmp);
}

uint32_t
evr_ship_pending(evr_ship_t *self, bool look)
{
    if (look || self->next == self->held)
        s_look(self);
    return self->count;
}

/*  The next line of *p (cut in place), or NULL. */
static char *
s_line(char **p)
{
    char *nl = strchr(*p, '\n');
    if (!nl)
        return NULL;
    char *line = *p;
    *nl = '\0';
    *p = nl + 1;
    return line;
}

typedef enum { S_LOADED, S_GONE, S_UNUSABLE } s_load_t;

/*  Reads the entry name into self (which takes name); S_GONE when it is
    no longer there (its queuer removed it since the look that found it:
    evr_ship_unqueue of a batch whose sync failed). */
static s_load_t
s_load(evr_ship_t *self, char *name)
{
    char *path = evr_asprintf("%s/%s", self->dir, name);
    char buf[S_ENTRY_MAX + 1];
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    bool gone = fd < 0 && errno == ENOENT;
    ssize_t n = fd >= 0 ? read(fd, buf, S_ENTRY_MAX) : -1;
    if (fd >= 0)
        close(fd);
    free(path);
    self->entry = name;
    if (gone)
        return S_GONE;
    if (n <= 0)
        return S_UNUSABLE;
    buf[n] = '\0';
    char *p = buf, *magic = s_line(&p), *job = s_line(&p), *step = s_line(&p);
    char *apath = s_line(&p), *size = s_line(&p), *sha = s_line(&p), *id = s_line(&p);
    if (!id || strcmp(magic, S_MAGIC) || evr_ulid_problem(job) || !evr_spec_step_name_ok(step)
        || evr_event_artifact_path_problem(apath) || evr_event_sha256_problem(sha))
        return S_UNUSABLE;
    char *end;
    errno = 0;
    unsigned long long sz = strtoull(size, &end, 10);
    if (errno || *end || end == size)
        return S_UNUSABLE;
    self->job = evr_strdup(job);
    self->step = evr_strdup(step);
    self->path = evr_strdup(apath);
    self->size = sz;
    memcpy(self->sha256, sha, EVR_SHA256_HEX);
    self->identity = evr_strdup(id);
    return S_LOADED;
}

/*  Opens the artifact file of the entry; false (said) when it is gone or
    no longer the file queued (a later attempt's copy replaced it: that
    one has an entry of its own).  Told by its identity, not read: the
    broker checks the sha256 of what it receives. */
static bool
s_open(evr_ship_t *self)
{
    char *file = evr_asprintf("%s/%s/%s/%s", self->artifacts_dir, self->job, self->step,
                              self->path);
    struct stat sb;
    char *id = NULL;
    bool ok = false;
    self->fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (self->fd < 0 || fstat(self->fd, &sb) != 0)
        s_warn("artifact %s/%s of job %s not shipped: %s: %s", self->step, self->path,
               self->job, file, strerror(errno));
    else if (strcmp((id = s_identity(&sb)), self->identity) != 0
             || (uint64_t) sb.st_size != self->size)
        s_warn("artifact %s/%s of job %s not shipped: %s changed since it was queued (a later "
               "attempt's copy, queued in turn)", self->step, self->path, self->job, file);
    else
        ok = true;
    free(id);
    free(file);
    return ok;
}

/*  Takes up the oldest entry of those held, looking at the queue again
    when none is left; false when there is none now. */
static bool
s_take(evr_ship_t *self, uint64_t now)
{
    if (now < self->next_scan)
        return false;
    bool looked = false;
    for (;;) {
        if (self->next == self->held) {
            if (looked) {   /* none of what the look found could be taken (nor removed) */
                self->next_scan = now + S_SCAN_NS;
                return false;
            }
            s_look(self);
            looked = true;
            if (!self->held) {
                self->next_scan = now + S_SCAN_NS;
                return false;
            }
        }
        char *name = self->names[self->next++];
        s_load_t got = s_load(self, name);
        if (got == S_LOADED && s_open(self)) {
            self->probe = true;
            self->offset = 0;
            return true;
        }
        if (got == S_UNUSABLE)
            s_warn("%s/%s: not an artifact queue entry: removed", self->dir, name);
        s_end(self, true);
    }
}

bool
evr_ship_next(evr_ship_t *self, uint64_t now, evr_msg_t *msg)
{
    if (self->waiting && now - self->sent_at < (self->probe ? S_PROBE_ACK_NS : S_ACK_NS))
        return false;
    if (self->waiting) {   /* unanswered: where do the bytes end? */
        self->waiting = false;
        self->probe = true;
    }
    if (!self->entry && !s_take(self, now))
        return false;
    msg->type = EVR_MSG_ARTIFACT_CHUNK;
    msg->job = evr_strdup(self->job);
    msg->step = evr_strdup(self->step);
    msg->path = evr_strdup(self->path);
    msg->sha256 = evr_strdup(self->sha256);
    msg->size = self->size;
    msg->offset = self->probe ? 0 : self->offset;
    uint64_t left = self->size - msg->offset;
    size_t n = self->probe ? 0 : left < EVR_MSG_CHUNK_MAX ? (size_t) left : EVR_MSG_CHUNK_MAX;
    if (n) {
        msg->data.data = evr_malloc(n);
        ssize_t got = pread(self->fd, msg->data.data, n, (off_t) msg->offset);
        if (got != (ssize_t) n) {
            s_warn("artifact %s/%s of job %s not shipped: reading it: %s", self->step,
                   self->path, self->job, got < 0 ? strerror(errno) : "the file shrank");
            evr_msg_clear(msg);
            s_end(self, true);
            return false;
        }
        msg->data.len = (uint32_t) n;
    }
    self->waiting = true;
    self->sent_at = now;
    return true;
}

void
evr_ship_on_ack(evr_ship_t *self, const evr_msg_t *a)
{
    if (!self->entry || !self->waiting || strcmp(a->job, self->job) || strcmp(a->step, self->step)
        || strcmp(a->path, self->path) || strcmp(a->sha256, self->sha256))
        return;
    if (a->offset > self->size && !a->reason && !a->done) {
        /*  no broker holds more than the size: asked again once the
            probe's wait passes (at once, the two would loop) */
        s_warn("artifact %s/%s of job %s: the broker says it holds %llu of %llu bytes: asking "
               "again in a second", self->step, self->path, self->job,
               (unsigned long long) a->offset, (unsigned long long) self->size);
        self->probe = true;
        return;
    }
    self->waiting = false;
    if (a->reason) {
        s_warn("artifact %s/%s of job %s: the broker refuses it: %s", self->step, self->path,
               self->job, a->reason);
        s_end(self, true);
    }
    else if (a->done) {
        s_info("artifact %s/%s of job %s shipped to the broker (%llu bytes)", self->step,
               self->path, self->job, (unsigned long long) self->size);
        s_end(self, true);
    }
    else {
        self->offset = a->offset;
        self->probe = false;
    }
}

void
evr_ship_reset(evr_ship_t *self)
{
    self->waiting = false;
    self->probe = true;
    self->next_scan = 0;
}
