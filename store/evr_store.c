/*  evr_store.c: the LMDB event log: open, append (group commit) (the
    readers are in evr_store_read.c, retention in evr_prune.c, the meta
    key-values in evr_store_meta.c).

    Every LMDB call goes through evr_store_mdb_err(), which keeps LMDB's own text:
    "store: mdb_txn_commit: MDB_MAP_FULL: ...".  Every write runs through
    evr_store_write (a full map grown and the write run again); readers
    walk through evr_store_walk, in short transactions (at most
    EVR_STORE_CHUNK entries each) so a long scan never pins old pages of a
    live writer (evr_store_walk.c).

    A store that syncs keeps data.mdb a quarter of its used size (256 KiB
    to 8 MiB) past LMDB's last page, zeros written ahead (s_ahead): LMDB's
    new pages then land inside the file, and a commit's flush (fdatasync)
    has no file size or block allocation to write, only the pages.  On this project's ext4 a
    flush of a few pages takes ~0.16 ms that way against ~0.3 ms at the
    end of a growing file; the broker's acknowledged submits wait for
    such flushes.
*/
#define _GNU_SOURCE   /* fallocate */
#include "evr_store.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "evr_codec.h"
#include "evr_store_int.h"

#define S_MAP_INITIAL (64ull << 20)     /* 64 MiB, grows by doubling */
#define S_FULL_BYTES (1u << 20)         /* less free space than this: the disk is full */
#define S_AHEAD_MIN (256u << 10)        /* data.mdb's zeros past LMDB's last page (s_ahead) */
#define S_AHEAD_MAX (8u << 20)
#define S_AHEAD_BULK (1u << 20)         /* a commit this large: s_ahead allocates, writes nothing */


evr_rc_t
evr_store_mdb_err(evr_err_t *err, const char *what, int rc)
{
    return evr_err_set(err, EVR_ERR_STORE, "store: %s: %s", what, mdb_strerror(rc));
}

/*  A write that failed at the process's file size limit: EFBIG, or EIO
    (LMDB's short write) with data.mdb within a page run of the limit. */
static bool
s_at_fsize(const evr_store_t *self, int rc, uint64_t *limit)
{
    struct rlimit rl;
    if ((rc != EIO && rc != EFBIG) || getrlimit(RLIMIT_FSIZE, &rl) != 0
        || rl.rlim_cur == RLIM_INFINITY)
        return false;
    *limit = (uint64_t) rl.rlim_cur;
    if (rc == EFBIG)
        return true;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", self->dir);
    uint64_t near = *limit / 8 > S_FULL_BYTES ? *limit / 8 : S_FULL_BYTES;
    return stat(path, &st) == 0 && (uint64_t) st.st_size + near >= *limit;
}

/*  LMDB writes with pwrite and reports a short one, what a full disk gives
    a write of several pages, as EIO: the free space tells the two apart
    (and the file size limit, s_at_fsize). */
evr_rc_t
evr_store_commit_err(const evr_store_t *self, evr_err_t *err, int rc)
{
    uint64_t limit;
    if (s_at_fsize(self, rc, &limit))
        return evr_err_set(err, EVR_ERR_STORE, "store: the file size limit of this process "
                           "(RLIMIT_FSIZE, ulimit -f: %llu bytes) stops %s/data.mdb from "
                           "growing (mdb_txn_commit: %s): raise the limit; the log is as it "
                           "was before this write", (unsigned long long) limit, self->dir,
                           mdb_strerror(rc));
    struct statvfs vfs;
    bool full = rc == ENOSPC
             || (rc == EIO && statvfs(self->dir, &vfs) == 0
                 && (uint64_t) vfs.f_bavail * vfs.f_frsize < S_FULL_BYTES);
    if (full)
        return evr_err_set(err, EVR_ERR_STORE, "store: no space left on device writing "
                           "%s/data.mdb (mdb_txn_commit: %s): free some space, the log is as "
                           "it was before this write", self->dir, mdb_strerror(rc));
    if (rc == EDQUOT || rc == EIO || rc == EROFS)
        return evr_err_set(err, EVR_ERR_STORE, "store: mdb_txn_commit: %s writing %s/data.mdb",
                           mdb_strerror(rc), self->dir);
    return evr_store_mdb_err(err, "mdb_txn_commit", rc);
}

/* ------------------------------------------------------------------ open */

/*  A process killed inside a read transaction (an evrun-replay piped into
    `head`, a SIGKILL) keeps its slot in lock.mdb's reader table: once
    its 126 slots are taken, every read fails with MDB_READERS_FULL until
    the last process closes the environment.  The slots of dead processes
    are freed at open and when the table is full (then the read is tried
    once more). */
int
evr_store_txn_begin(evr_store_t *self, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(self->env, NULL, flags, txn);
    if (rc == MDB_READERS_FULL) {
        int dead = 0;
        if (mdb_reader_check(self->env, &dead) == 0 && dead > 0)
            rc = mdb_txn_begin(self->env, NULL, flags, txn);
    }
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(self->env, 0);
        rc = mdb_txn_begin(self->env, NULL, flags, txn);
    }
    if (rc == 0) {
        MDB_envinfo info;
        mdb_env_info(self->env, &info);
        self->mapsize = info.me_mapsize;
    }
    return rc;
}

/*  Once less than half of `ahead` (a quarter of the used size, within
    S_AHEAD_MIN..S_AHEAD_MAX: a new store's first flush stays small) of
    data.mdb lies past LMDB's last page, writes zeros past its end up to
    `ahead` past that page (at most to the map's size and the process's
    file size limit).  The zeros are flushed once, with the next commit.
    After a commit of S_AHEAD_BULK or more (a step's bulk output) the
    space is allocated instead (fallocate), when the file system can:
    zeros would write every page of such commits twice, and the next
    commits are large anyway, so a flush's extent conversion weighs
    little (100 MB in 64 KiB events, 32 a commit: the store's CPU time
    0.157 -> 0.108 s, medians of 7 alternating runs at load 8-9; its
    wall time moved within the noise).
    Best effort: a write that fails (a full disk) is left for LMDB's own
    to report; LMDB reads nothing past its last page. */
static void
s_ahead(evr_store_t *self)
{
    MDB_envinfo info;
    MDB_stat ms;
    int fd;
    struct stat st;
    if (mdb_env_info(self->env, &info) || mdb_env_stat(self->env, &ms)
        || mdb_env_get_fd(self->env, &fd) || fstat(fd, &st))
        return;
    uint64_t used = ((uint64_t) info.me_last_pgno + 1) * ms.ms_psize;
    bool bulk = self->ahead_used && used >= self->ahead_used + S_AHEAD_BULK;
    self->ahead_used = used;
    uint64_t ahead = used / 4 < S_AHEAD_MIN ? S_AHEAD_MIN
                   : used / 4 > S_AHEAD_MAX ? S_AHEAD_MAX : used / 4;
    if ((uint64_t) st.st_size >= used + ahead / 2)
        return;
    uint64_t want = used + ahead;
    struct rlimit fsize;
    if (getrlimit(RLIMIT_FSIZE, &fsize) == 0 && fsize.rlim_cur != RLIM_INFINITY
        && want > fsize.rlim_cur)
        want = fsize.rlim_cur;
    if (want > self->mapsize)
        want = self->mapsize;
    /* bulk: allocated, not written (unwritten extents, that a flush
       converts as it writes the pages) */
    if (bulk && fallocate(fd, 0, st.st_size, (off_t) (want - (uint64_t) st.st_size)) == 0)
        return;
    static const char zeros[65536];
    for (uint64_t off = (uint64_t) st.st_size; off < want;) {
        size_t n = want - off < sizeof zeros ? (size_t) (want - off) : sizeof zeros;
        ssize_t w = pwrite(fd, zeros, n, (off_t) off);
        if (w <= 0)
            return;
        off += (uint64_t) w;
    }
}

evr_rc_t
evr_store_write(evr_store_t *self, const char *what, evr_store_txn_fn *body, void *arg,
                evr_err_t *err)
{
    for (int tries = 0; tries < EVR_STORE_GROW_TRIES; tries++) {
        MDB_txn *txn;
        int mdbrc = evr_store_txn_begin(self, 0, &txn);
        if (mdbrc)
            return evr_store_mdb_err(err, "mdb_txn_begin", mdbrc);
        evr_rc_t erc = body(self, txn, arg, err, &mdbrc);
        if (erc)
            mdb_txn_abort(txn);
        else if ((mdbrc = mdb_txn_commit(txn)))
            erc = evr_store_commit_err(self, err, mdbrc);
        if (erc == EVR_OK && !(self->flags & EVR_STORE_NOSYNC)) {
            self->unsynced = false;     /* its flush took a lazy commit's meta along */
            s_ahead(self);
        }
        if (erc == EVR_OK || mdbrc != MDB_MAP_FULL)
            return erc;
        /* Nothing was written and no transaction is open: grow, run again. */
        size_t size = self->mapsize * 2;
        if ((mdbrc = mdb_env_set_mapsize(self->env, size)))
            return evr_store_mdb_err(err, "mdb_env_set_mapsize", mdbrc);
        self->mapsize = size;
    }
    return evr_err_set(err, EVR_ERR_STORE, "store: %s does not fit even after growing the "
                       "map to %zu bytes", what, self->mapsize);
}

/*  An LMDB failure while opening the store in dir, naming it, with what
    to do when the file is damaged (LMDB's words alone give neither). */
static evr_rc_t
s_open_err(const char *dir, evr_err_t *err, const char *what, int rc)
{
    bool damaged = rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID
                || rc == MDB_BAD_TXN;
    if (rc == EACCES) {
        char lock[4096];
        snprintf(lock, sizeof lock, "%s/lock.mdb", dir);
        bool has_lock = access(lock, F_OK) == 0;
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: %s: %s: %s", dir, what,
                           mdb_strerror(rc),
                           has_lock ? "its lock.mdb must be writable (readers write their "
                                      "slot in it too) and data.mdb readable"
                                    : "lock.mdb must be creatable there (the directory "
                                      "writable), or made by the store's owner first");
    }
    return evr_err_set(err, EVR_ERR_STORE, "store: %s: %s: %s%s", dir, what, mdb_strerror(rc),
                       damaged ? ": data.mdb is damaged (or no LMDB file); restore it from a "
                                 "backup, or move the directory aside to start anew"
                               : "");
}

/*  What to do about a path stat could not look at (errno e). */
static const char *
s_access_hint(int e)
{
    return e == EACCES ? ": run as the user who owns the directory (or give this one search "
                         "and read rights on it)"
                       : "";
}

static evr_rc_t
s_check_dir(const char *dir, bool rdonly, evr_err_t *err)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || rdonly)
            return evr_err_set(err, EVR_ERR_STORE, "store: %s: %s%s", dir, strerror(errno),
                               s_access_hint(errno));
        if (mkdir(dir, 0700) != 0)
            return evr_err_set(err, EVR_ERR_STORE, "store: mkdir %s: %s", dir, strerror(errno));
        return EVR_OK;
    }
    if (!S_ISDIR(st.st_mode))
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: not a directory", dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st) != 0 && errno != ENOENT)   /* a directory this user may not search */
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: %s%s", path, strerror(errno),
                           s_access_hint(errno));
    if (stat(path, &st) != 0) {
        if (!rdonly)
            return EVR_OK;
        snprintf(path, sizeof path, "%s/broker/data.mdb", dir);
        if (stat(path, &st) == 0)
            return evr_err_set(err, EVR_ERR_STORE, "store: %s: a state directory, not a "
                               "store: the broker's store is %s/broker", dir, dir);
        return evr_err_set(err, EVR_ERR_STORE,
                           "store: %s: no evrun store here (no data.mdb)", dir);
    }
    if (!S_ISREG(st.st_mode))
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: data.mdb is %s, not a file: no "
                           "evrun store", dir,
                           S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                           : S_ISSOCK(st.st_mode) ? "a socket"
                           : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                         : "not a regular file");
    /* LMDB maps the file and reads its pages where the meta pages say:
       a file cut short would be a SIGBUS there, not an error */
    long psize = sysconf(_SC_PAGESIZE);
    if (st.st_size == 0 && rdonly)
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: data.mdb is empty (0 bytes): no "
                           "evrun store was ever written here", dir);
    if (st.st_size > 0 && psize > 0 && st.st_size < 2 * psize)
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: data.mdb is %lld bytes, less than "
                           "the two meta pages of an LMDB file (%ld bytes): no evrun store, "
                           "or one cut short (a copy that stopped early, a full disk); "
                           "restore it from a backup, or move the directory aside to start "
                           "anew", dir, (long long) st.st_size, 2 * psize);
    return EVR_OK;
}

/*  After mdb_env_open: the file holds every page up to the last one its
    meta page names (a file cut short is refused before a read of a page
    past its end, a SIGBUS, could happen). */
static evr_rc_t
s_check_size(evr_store_t *self, evr_err_t *err)
{
    char path[4096];
    struct stat st;
    MDB_envinfo info;
    MDB_stat ms;
    snprintf(path, sizeof path, "%s/data.mdb", self->dir);
    if (stat(path, &st) != 0 || mdb_env_info(self->env, &info) || mdb_env_stat(self->env, &ms))
        return EVR_OK;  /* nothing to compare: the reads that follow say what is wrong */
    uint64_t need = ((uint64_t) info.me_last_pgno + 1) * ms.ms_psize;
    if ((uint64_t) st.st_size >= need)
        return EVR_OK;
    return evr_err_set(err, EVR_ERR_STORE, "store: %s: data.mdb is %lld bytes, but its pages "
                       "reach %llu bytes (page %zu of %u bytes): the file is cut short (a copy "
                       "that stopped early, a full disk); restore it from a backup, or move "
                       "the directory aside to start anew", self->dir, (long long) st.st_size,
                       (unsigned long long) need, info.me_last_pgno, ms.ms_psize);
}

/*  The largest key of `jobs` (unknown when it is not a job id:
    evr_store_has_job then always looks); LMDB's code when it cannot be
    read (the page is damaged). */
static int
s_job_max_load(evr_store_t *self, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    self->job_max_known = false;
    int rc = mdb_cursor_open(txn, self->jobs, &cur);
    if (rc)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == MDB_NOTFOUND)
        self->job_max_known = true;     /* none: job_max "" is below every id */
    else if (!rc && k.mv_size == EVR_ULID_LEN) {
        memcpy(self->job_max, k.mv_data, EVR_ULID_LEN);
        self->job_max_known = true;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;   /* an error leaves the transaction unusable */
}

/*  The kind the writer says (EVR_STORE_BROKER, EVR_STORE_RUNNER), or NULL. */
static const char *
s_kind(const evr_store_t *self)
{
    return self->flags & EVR_STORE_BROKER   ? "broker"
           : self->flags & EVR_STORE_RUNNER ? "runner"
                                            : NULL;
}

/*  A writer's kind against the store's meta "kind": recorded when there
    is none (and the store bears no mark of the other kind), refused
    when it is the other. */
static evr_rc_t
s_check_kind(evr_store_t *self, MDB_txn *txn, evr_err_t *err)
{
    const char *want = s_kind(self);
    if (!want)
        return EVR_OK;
    MDB_val k = { 4, "kind" }, v;
    int rc = mdb_get(txn, self->meta, &k, &v);
    const char *other = NULL;
    if (rc == 0) {
        if (v.mv_size == strlen(want) && memcmp(v.mv_data, want, v.mv_size) == 0)
            return EVR_OK;
        other = v.mv_size == 6 && memcmp(v.mv_data, "broker", 6) == 0 ? "broker"
              : v.mv_size == 6 && memcmp(v.mv_data, "runner", 6) == 0 ? "runner" : "unknown";
    }
    else if (rc != MDB_NOTFOUND)
        return evr_store_mdb_err(err, "mdb_get kind", rc);
    else {   /* none: a new store, or an older one; its marks tell */
        MDB_val mk = { 9, "runner_id" }, kk = { 15, "journal/submits" }, mv;
        if (!strcmp(want, "broker") && mdb_get(txn, self->meta, &mk, &mv) == 0)
            other = "runner";
        else if (!strcmp(want, "runner") && mdb_get(txn, self->kv, &kk, &mv) == 0)
            other = "broker";
    }
    if (other)
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: a%s %s's event store, not a %s's: "
                           "%s", self->dir, strcmp(other, "unknown") ? "" : "n", other, want,
                           !strcmp(want, "runner")
                               ? "a runner keeps a store of its own in its --state-dir (is "
                                 "this a copy of a broker's STATE/broker?); give it another "
                                 "directory"
                               : "the broker keeps its store in STATE/broker of its own state "
                                 "directory; give it another --state-dir");
    if (self->flags & EVR_STORE_NOMARK)
        return EVR_OK;   /* a dry run leaves an older store as it is */
    v = (MDB_val) { strlen(want), (void *) want };
    if ((rc = mdb_put(txn, self->meta, &k, &v, 0)))
        return evr_store_mdb_err(err, "mdb_put kind", rc);
    return EVR_OK;
}

/*  No meta database: an environment nothing was ever committed to (a
    writer makes it a store: *fresh), or a foreign one, never written. */
static evr_rc_t
s_no_meta(evr_store_t *self, MDB_txn *txn, bool *fresh, evr_err_t *err)
{
    MDB_stat stat = { 0 };
    MDB_dbi main_dbi;
    if (mdb_dbi_open(txn, NULL, 0, &main_dbi) == MDB_SUCCESS)
        mdb_stat(txn, main_dbi, &stat);
    if (stat.ms_entries)
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: not an evrun store (an LMDB "
                           "environment without evrun's meta database)", self->dir);
    /* a process killed before its first commit; a dry run makes no store */
    if (self->flags & (EVR_STORE_RDONLY | EVR_STORE_NOMARK))
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: no evrun store here (an empty "
                           "LMDB environment: nothing was ever committed)", self->dir);
    int rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &self->meta);
    if (rc)
        return s_open_err(self->dir, err, "mdb_dbi_open meta", rc);
    *fresh = true;
    return EVR_OK;
}

/*  True when a format record is "evrun-store N" with N above this
    build's: a store a newer evrun wrote (rather than no evrun's). */
static bool
s_newer_format(const MDB_val *v)
{
    static const char prefix[] = "evrun-store ";
    size_t n = sizeof prefix - 1;
    const char *p = v->mv_data;
    if (v->mv_size <= n || v->mv_size > n + 9 || memcmp(p, prefix, n) != 0)
        return false;
    unsigned long num = 0;
    for (size_t i = n; i < v->mv_size; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        num = num * 10 + (unsigned long) (p[i] - '0');
    }
    return num > strtoul(EVR_STORE_FORMAT + n, NULL, 10);
}

/*  Opens the six databases and checks (or writes) the format and kind. */
static evr_rc_t
s_open_dbs(evr_store_t *self, evr_err_t *err)
{
    bool rdonly = self->flags & EVR_STORE_RDONLY, fresh = false;
    bool nomark = rdonly || (self->flags & EVR_STORE_NOMARK);
    MDB_txn *txn;
    int rc = evr_store_txn_begin(self, rdonly ? MDB_RDONLY : 0, &txn);
    if (rc)
        return evr_store_mdb_err(err, "mdb_txn_begin", rc);
    unsigned create = nomark ? 0 : MDB_CREATE;
    evr_rc_t erc = EVR_OK;
    rc = mdb_dbi_open(txn, "meta", 0, &self->meta);
    if (rc == MDB_NOTFOUND)
        erc = s_no_meta(self, txn, &fresh, err);
    else if (rc)
        erc = s_open_err(self->dir, err, "mdb_dbi_open meta", rc);
    if (erc)
        goto out;
    MDB_val k = { 6, "format" }, v;
    rc = mdb_get(txn, self->meta, &k, &v);
    if (rc == MDB_NOTFOUND && fresh) {
        v.mv_size = strlen(EVR_STORE_FORMAT);
        v.mv_data = (void *) EVR_STORE_FORMAT;
        rc = mdb_put(txn, self->meta, &k, &v, 0);
        if (rc) {
            erc = evr_store_mdb_err(err, "mdb_put format", rc);
            goto out;
        }
    }
    else if (rc == MDB_NOTFOUND) {   /* evrun writes meta and format together */
        erc = evr_err_set(err, EVR_ERR_STORE, "store: %s: not an evrun store (a meta "
                          "database without evrun's format record)", self->dir);
        goto out;
    }
    else if (rc) {
        erc = s_open_err(self->dir, err, "mdb_get format", rc);
        goto out;
    }
    else if (v.mv_size != strlen(EVR_STORE_FORMAT)
             || memcmp(v.mv_data, EVR_STORE_FORMAT, v.mv_size) != 0) {
        erc = evr_err_set(err, EVR_ERR_STORE, "store: %s: format \"%.*s\", but this evrun "
                          "reads \"%s\"%s", self->dir, (int) (v.mv_size > 64 ? 64 : v.mv_size),
                          (const char *) v.mv_data, EVR_STORE_FORMAT,
                          s_newer_format(&v) ? ": a newer evrun wrote it; use that evrun (or "
                                               "a newer one) with this directory" : "");
        goto out;
    }
    const struct { const char *name; MDB_dbi *dbi; } dbs[] = {
        { "events", &self->events }, { "by_job", &self->by_job }, { "jobs", &self->jobs },
        { "open", &self->open }, { "kv", &self->kv },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(dbs); i++) {
        rc = mdb_dbi_open(txn, dbs[i].name, create, dbs[i].dbi);
        if (rc == MDB_NOTFOUND && nomark && dbs[i].dbi == &self->kv) {
            self->no_kv = true;     /* a store written before `kv` existed */
            continue;
        }
        if (rc) {
            char what[64];
            snprintf(what, sizeof what, "mdb_dbi_open %s", dbs[i].name);
            erc = s_open_err(self->dir, err, what, rc);
            goto out;
        }
    }
    if (!rdonly && (erc = s_check_kind(self, txn, err)))
        goto out;
    /* a reader never asks (evr_store_has_job), nor reads the table here:
       evrun-replay checks a table's pages before it reads them, and a
       damaged page of `jobs` crashed every view, --verify too, here */
    if (!rdonly && (rc = s_job_max_load(self, txn))) {
        erc = s_open_err(self->dir, err, "mdb_cursor_get jobs", rc);
        goto out;
    }
out:
    /* Committing (also a read-only transaction) keeps the handles open. */
    if (erc)
        mdb_txn_abort(txn);
    else if ((rc = mdb_txn_commit(txn)))
        erc = evr_store_commit_err(self, err, rc);
    return erc;
}

evr_rc_t
evr_store_open(const char *dir, int flags, evr_store_t **out, evr_err_t *err)
{
    *out = NULL;
    bool rdonly = flags & EVR_STORE_RDONLY;
    evr_rc_t erc = s_check_dir(dir, rdonly || (flags & EVR_STORE_NOMARK), err);
    if (erc)
        return erc;
    evr_store_t *self = evr_calloc(1, sizeof *self);
    self->dir = evr_strdup(dir);
    self->flags = flags;
    int rc = mdb_env_create(&self->env);
    if (rc) {
        free(self->dir);
        free(self);
        return evr_store_mdb_err(err, "mdb_env_create", rc);
    }
    mdb_env_set_maxdbs(self->env, 8);
    mdb_env_set_maxreaders(self->env, 126);
    if (!rdonly) {
        /* Start at the file's size, so reopening never shrinks the map. */
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        size_t size = S_MAP_INITIAL;
        if (stat(path, &st) == 0 && (size_t) st.st_size > size)
            size = (size_t) st.st_size * 2;
        mdb_env_set_mapsize(self->env, size);
    }
    unsigned envflags = MDB_NOTLS;
    if (rdonly)
        envflags |= MDB_RDONLY;
    if (flags & EVR_STORE_NOSYNC)
        envflags |= MDB_NOSYNC;
    rc = mdb_env_open(self->env, dir, envflags, 0600);
    if (rc) {
        erc = s_open_err(dir, err, "mdb_env_open", rc);
        evr_store_destroy(&self);
        return erc;
    }
    int dead;
    mdb_reader_check(self->env, &dead);   /* see evr_store_txn_begin */
    erc = s_check_size(self, err);
    /* a writer reads the last projection here, then walks the open jobs
       and its kv records at its start, and LMDB reads its free pages for
       every write: a damaged page there crashed it (SIGSEGV at the start
       of a runner or the broker).  Those trees are checked; the events
       and their index, as large as the history (+0.3 s at the start over
       a million events), are read where a view or --verify checks them */
    static const char *const at_start[] = { "jobs", "open", "meta", "kv", NULL };
    if (!erc && !rdonly)
        erc = evr_store_check_pages(self, at_start, "the store is not opened", err);
    if (!erc)
        erc = s_open_dbs(self, err);
    if (erc) {
        evr_store_destroy(&self);
        return erc;
    }
    *out = self;
    return EVR_OK;
}

void
evr_store_destroy(evr_store_t **self_p)
{
    evr_store_t *self = *self_p;
    if (!self)
        return;
    evr_prune_forget(self);
    if (self->env)
        mdb_env_close(self->env);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

const char *
evr_store_dir(const evr_store_t *self)
{
    return self->dir;
}

size_t
evr_store_mapsize(const evr_store_t *self)
{
    return self->mapsize;
}

/* ---------------------------------------------------------------- append */

/*  Jobs touched by one batch: loaded once, written once at the end. */
typedef struct {
    evr_job_t job;
} s_batchjob_t;

evr_rc_t
evr_store_load_job(evr_store_t *self, MDB_txn *txn, const char *id, evr_job_t *job, evr_err_t *err)
{
    MDB_val k = { EVR_ULID_LEN, (void *) id }, v;
    int rc = mdb_get(txn, self->jobs, &k, &v);
    if (rc == MDB_NOTFOUND)
        return EVR_ERR_NOTFOUND;
    if (rc)
        return evr_store_mdb_err(err, "mdb_get jobs", rc);
    evr_rc_t erc = evr_codec_decode(v.mv_data, v.mv_size, &evr_job_type, job, "job", err);
    if (erc)
        return evr_err_set(err, EVR_ERR_STORE, "store: projection of job %.26s: %s", id,
                           err ? err->msg : "undecodable");
    return EVR_OK;
}

evr_rc_t
evr_store_put_job(evr_store_t *self, MDB_txn *txn, const evr_job_t *job, evr_err_t *err, int *mdbrc)
{
    uint8_t *buf;
    size_t len;
    evr_codec_encode(&evr_job_type, job, &buf, &len);
    MDB_val k = { EVR_ULID_LEN, job->id }, v = { len, buf };
    if (memcmp(job->id, self->job_max, EVR_ULID_LEN) > 0)   /* kept even if txn aborts */
        memcpy(self->job_max, job->id, EVR_ULID_LEN);
    *mdbrc = mdb_put(txn, self->jobs, &k, &v, 0);
    free(buf);
    if (*mdbrc)
        return evr_store_mdb_err(err, "mdb_put jobs", *mdbrc);
    MDB_val none = { 0, NULL };
    if (evr_job_is_final(job)) {
        *mdbrc = mdb_del(txn, self->open, &k, NULL);
        if (*mdbrc == MDB_NOTFOUND)
            *mdbrc = 0;
    }
    else
        *mdbrc = mdb_put(txn, self->open, &k, &none, 0);
    return *mdbrc ? evr_store_mdb_err(err, "open index", *mdbrc) : EVR_OK;
}

static evr_rc_t
s_get_last_seq(evr_store_t *self, MDB_txn *txn, uint64_t *seq, evr_err_t *err)
{
    MDB_val k = { 8, "last_seq" }, v;
    int rc = mdb_get(txn, self->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *seq = 0;
        return EVR_OK;
    }
    if (rc)
        return evr_store_mdb_err(err, "mdb_get last_seq", rc);
    if (v.mv_size != 8)
        return evr_err_set(err, EVR_ERR_STORE, "store: meta last_seq has %zu bytes", v.mv_size);
    *seq = evr_store_get64(v.mv_data);
    return EVR_OK;
}

/*  Ingest (source != NULL): an event at or below the source's high seq is
    a resend, marked skipped (seq 0); the others must continue it densely;
    their per-job seq is kept (evr_job_apply checks it). */
static evr_rc_t
s_source_step(evr_event_t *ev, const char *source, uint64_t *high, evr_err_t *err)
{
    if (ev->seq <= *high) {
        ev->seq = 0;
        return EVR_OK;
    }
    if (ev->seq != *high + 1)
        return evr_err_set(err, EVR_ERR_STATE, "store: events of %s: seq %llu follows %llu "
                           "(a gap)", source, (unsigned long long) ev->seq,
                           (unsigned long long) *high);
    *high = ev->seq;
    return EVR_OK;
}

/*  Ingest: a runner sends events of its own jobs only.  An event of a
    job the archive holds from another runner (the runner its job.accepted
    or job.started named), or one naming another runner than the source,
    is refused for what it says (EVR_ERR_STATE), so that a runner cannot
    start, end or change another runner's job. */
static evr_rc_t
s_owner_check(const evr_job_t *job, const evr_event_t *ev, const char *source, evr_err_t *err)
{
    const char *type = evr_evtype_name(evr_event_kind(ev)) ? evr_evtype_name(evr_event_kind(ev))
                                                           : "?";
    if (job->runner && strcmp(job->runner, source) != 0)
        return evr_err_set(err, EVR_ERR_STATE, "job %s: %s (jseq %u, seq %llu) comes from "
                           "runner %s, but the job runs on runner %s: a runner sends events of "
                           "its own jobs only", ev->job, type, ev->jseq,
                           (unsigned long long) ev->seq, source, job->runner);
    if (ev->data.runner && strcmp(ev->data.runner, source) != 0)
        return evr_err_set(err, EVR_ERR_STATE, "job %s: %s (jseq %u, seq %llu) names runner "
                           "%s, but comes from runner %s", ev->job, type, ev->jseq,
                           (unsigned long long) ev->seq, ev->data.runner, source);
    return EVR_OK;
}

/*  A batch to append or ingest (source != NULL).  *refused: the index of
    the event refused for what it says (n: none). */
typedef struct {
    const char *source;
    evr_event_t *const *events;
    const bool *drop;
    size_t n;
    const uint64_t *orig;   /* the events' seq as they came */
    size_t *refused;
} s_batch_t;

/*  The batch's writes (an evr_store_txn_fn). */
static evr_rc_t
s_append_txn(evr_store_t *self, MDB_txn *txn, void *arg, evr_err_t *err, int *mdbrc)
{
    s_batch_t *b = arg;
    const char *source = b->source;
    evr_event_t *const *events = b->events;
    const bool *drop = b->drop;
    size_t n = b->n, *refused = b->refused;
    for (size_t i = 0; i < n; i++)   /* a run after a full map starts afresh */
        events[i]->seq = b->orig[i];
    *refused = n;
    s_batchjob_t *jobs = evr_calloc(n, sizeof *jobs);
    size_t njobs = 0;
    uint64_t seq, high = 0;
    evr_rc_t erc = s_get_last_seq(self, txn, &seq, err);
    if (!erc && source)
        erc = evr_store_source_get(self, txn, source, &high, err);
    uint64_t now = evr_now_ns();
    for (size_t i = 0; i < n && !erc; i++) {
        evr_event_t *ev = events[i];
        if (source) {
            if ((erc = s_source_step(ev, source, &high, err)) || ev->seq == 0)
                continue;
            if (drop && drop[i]) {   /* counted in the source's seq, not stored */
                ev->seq = 0;
                continue;
            }
            if (!ev->job && ev->jseq) {
                erc = evr_err_set(err, EVR_ERR_STATE, "store: events of %s: a runner event "
                                  "with a per-job seq", source);
                *refused = i;
                break;
            }
        }
        else
            ev->jseq = 0;
        ev->seq = ++seq;
        if (!ev->time)
            ev->time = now;
        evr_job_t *job = NULL;
        if (ev->job) {
            for (size_t j = 0; j < njobs && !job; j++)
                if (strcmp(jobs[j].job.id, ev->job) == 0)
                    job = &jobs[j].job;
            if (!job) {
                job = &jobs[njobs].job;
                erc = evr_store_load_job(self, txn, ev->job, job, err);
                if (erc == EVR_ERR_NOTFOUND)
                    erc = EVR_OK;   /* a new job: job.accepted fills it */
                if (erc)
                    break;
                njobs++;
            }
            if (!source)
                ev->jseq = job->last_jseq + 1;
            else
                ev->seq = b->orig[i];   /* a refusal names the seq the runner sent */
            /* a job.accepted that names no runner is the sender's */
            if (source && evr_event_kind(ev) == EVR_EV_JOB_ACCEPTED && !ev->data.runner)
                ev->data.runner = evr_strdup(source);
            bool bad = (source && (erc = s_owner_check(job, ev, source, err)))
                       || (erc = source ? evr_job_apply_sent(job, ev, err)
                                        : evr_job_apply(job, ev, err));
            ev->seq = seq;              /* stored under the archive's own seq */
            if (bad) {
                *refused = i;
                break;
            }
            job->last_seq = seq;
        }
        else if (evr_event_kind(ev) != EVR_EV_RUNNER_STARTED
                 && evr_event_kind(ev) != EVR_EV_RUNNER_RECOVERED) {
            erc = evr_err_set(err, EVR_ERR_STATE, "store: %s event without a job",
                              evr_evtype_name(evr_event_kind(ev)) ? evr_evtype_name(evr_event_kind(ev)) : "untyped");
            *refused = i;
            break;
        }
        else if (source && ev->data.runner && strcmp(ev->data.runner, source) != 0) {
            /* a runner speaks for itself only, in its runner events too */
            erc = evr_err_set(err, EVR_ERR_STATE, "%s (seq %llu) names runner %s, but comes "
                              "from runner %s", evr_evtype_name(evr_event_kind(ev)),
                              (unsigned long long) b->orig[i], ev->data.runner, source);
            *refused = i;
            break;
        }
        /* encoded in place: a step.output's 64 KiB go from the event
           straight into LMDB's page, not through a buffer of their own */
        uint8_t key[8];
        size_t len = evr_codec_size(&evr_event_type, ev);
        evr_store_be64(key, ev->seq);
        MDB_val k = { 8, key }, v = { len, NULL };
        *mdbrc = mdb_put(txn, self->events, &k, &v, MDB_APPEND | MDB_RESERVE);
        if (*mdbrc == MDB_KEYEXIST)   /* an append at or below the log's last seq */
            erc = evr_err_set(err, EVR_ERR_STORE, "store: %s: seq %llu is taken: the log holds "
                              "events past the last seq its meta records, so no event can be "
                              "appended (the store is damaged: evrun-replay %s --verify says "
                              "more; restore it from a backup, or move the directory aside to "
                              "start anew)", self->dir, (unsigned long long) ev->seq,
                              self->dir);
        else if (*mdbrc)
            erc = evr_store_mdb_err(err, "mdb_put events", *mdbrc);
        if (*mdbrc)
            break;
        evr_codec_encode_to(&evr_event_type, ev, v.mv_data, len);
        if (ev->job) {
            uint8_t jk[EVR_STORE_KEYLEN];
            evr_store_jobkey(jk, ev->job, ev->jseq);
            MDB_val k2 = { EVR_STORE_KEYLEN, jk }, v2 = { 8, key };
            *mdbrc = mdb_put(txn, self->by_job, &k2, &v2, 0);
            if (*mdbrc)
                erc = evr_store_mdb_err(err, "mdb_put by_job", *mdbrc);
        }
    }
    bool final = false;
    for (size_t j = 0; j < njobs && !erc; j++) {
        erc = evr_store_put_job(self, txn, &jobs[j].job, err, mdbrc);
        final = final || evr_job_is_final(&jobs[j].job);
    }
    uint8_t sv[8];
    evr_store_be64(sv, seq);
    if (!erc) {
        MDB_val k = { 8, "last_seq" }, v = { 8, sv };
        *mdbrc = mdb_put(txn, self->meta, &k, &v, 0);
        if (*mdbrc)
            erc = evr_store_mdb_err(err, "mdb_put last_seq", *mdbrc);
    }
    if (!erc && final) {    /* retention's cue to read the projections again */
        MDB_val k = { sizeof EVR_STORE_FINAL_SEQ - 1, EVR_STORE_FINAL_SEQ }, v = { 8, sv };
        *mdbrc = mdb_put(txn, self->meta, &k, &v, 0);
        if (*mdbrc)
            erc = evr_store_mdb_err(err, "mdb_put " EVR_STORE_FINAL_SEQ, *mdbrc);
    }
    if (!erc && source)
        erc = evr_store_source_put(self, txn, source, high, err, mdbrc);
    for (size_t j = 0; j < n; j++)   /* slots past njobs are zeroed or half-loaded */
        evr_rec_free(&evr_job_type, &jobs[j].job);
    free(jobs);
    return erc;
}

/*  Append and ingest: one transaction (evr_store_write grows a full map
    and runs it again with the events as they came: ingest rewrites their
    seq). */
static evr_rc_t
s_write(evr_store_t *self, const char *source, evr_event_t *const *events, const bool *drop,
        size_t n, size_t *refused, evr_err_t *err)
{
    *refused = n;
    if (self->flags & EVR_STORE_RDONLY)
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: opened read-only", self->dir);
    if (n == 0)
        return EVR_OK;
    if (n > EVR_STORE_MAX_BATCH)
        return evr_err_set(err, EVR_ERR_LIMIT, "store: batch of %zu events exceeds %d", n,
                           EVR_STORE_MAX_BATCH);
    uint64_t *orig = evr_malloc(n * sizeof *orig);
    for (size_t i = 0; i < n; i++)
        orig[i] = events[i]->seq;
    s_batch_t b = { source, events, drop, n, orig, refused };
    evr_rc_t erc = evr_store_write(self, "batch", s_append_txn, &b, err);
    /* nothing was written: appended events keep no seq, ingested ones the
       seq they came with */
    for (size_t i = 0; erc && i < n; i++) {
        events[i]->seq = source ? orig[i] : 0;
        if (!source)
            events[i]->jseq = 0;
    }
    free(orig);
    return erc;
}

evr_rc_t
evr_store_append(evr_store_t *self, evr_event_t *const *events, size_t n, evr_err_t *err)
{
    for (size_t i = 0; i < n; i++)
        evr_event_fit(events[i]);   /* what is appended always reads back */
    size_t refused;
    return s_write(self, NULL, events, NULL, n, &refused, err);
}

evr_rc_t
evr_store_ingest(evr_store_t *self, const char *source, evr_event_t *const *events,
                 const bool *drop, size_t n, size_t *refused, evr_err_t *err)
{
    size_t none;
    return s_write(self, source, events, drop, n, refused ? refused : &none, err);
}

evr_rc_t
evr_store_last_seq(evr_store_t *self, uint64_t *seq, evr_err_t *err)
{
    MDB_txn *txn;
    int rc = evr_store_txn_begin(self, MDB_RDONLY, &txn);
    if (rc)
        return evr_store_mdb_err(err, "mdb_txn_begin", rc);
    evr_rc_t erc = s_get_last_seq(self, txn, seq, err);
    mdb_txn_abort(txn);
    return erc;
}
