/*  evr_store_check.c: the pages of one database checked before a walk
    reads them (evrun-replay's views, --verify and --compact).

    LMDB keeps no checksum of its pages and trusts them: a page of random
    bytes (a damaged disk block, a bad copy) makes mdb_cursor_get read
    wherever its node offsets point, and the process dies of SIGSEGV
    before any error.  This walks a database's B-tree through the map
    LMDB made (read only), from the root its record in the main database
    names, and checks each page as LMDB 0.9's format has it (lmdb's
    mdb.c): its header names its own page number and says it is a branch
    or a leaf, node offsets and sizes lie within the page, child and
    overflow pages within the file.  A page that fails is said with what is wrong, and the walk
    that would crash on it is not done.

    The format is LMDB's, not its API: the check runs only with the
    LMDB 0.9 it was written against (another version: nothing checked).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_store_int.h"

#if MDB_VERSION_MAJOR == 0 && MDB_VERSION_MINOR == 9

#define S_HDR 16                /* PAGEHDRSZ: pgno, pad, flags, lower, upper */
#define S_NODE 8                /* NODESIZE: lo, hi, flags, ksize */
#define S_BRANCH 0x01
#define S_LEAF 0x02
#define S_META_MAGIC 0xbeefc0deu  /* MDB_meta's mm_magic, after the page header */
#define S_BIGDATA 0x01          /* a leaf node's data is on overflow pages */
#define S_DEPTH_MAX 32

typedef struct {
    const uint8_t *map;
    uint64_t npages;            /* pages the file holds */
    size_t psize;
    uint64_t pages;             /* pages checked */
    char what[256];             /* the first problem */
} s_check_t;

static unsigned
s_u16(const uint8_t *p)
{
    return (unsigned) p[0] | (unsigned) p[1] << 8;
}

static uint64_t
s_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static bool
s_bad(s_check_t *c, uint64_t pgno, const char *why)
{
    snprintf(c->what, sizeof c->what, "page %llu: %s", (unsigned long long) pgno, why);
    return false;
}

/*  The page pgno, when the file holds it and its header names it. */
static const uint8_t *
s_page(s_check_t *c, uint64_t pgno)
{
    if (pgno < 2 || pgno >= c->npages) {
        s_bad(c, pgno, "a page number past the file's end (or a meta page's)");
        return NULL;
    }
    const uint8_t *p = c->map + pgno * c->psize;
    if (s_u64(p) != pgno) {
        char why[96];
        snprintf(why, sizeof why, "its header names page %llu: not a page of this tree",
                 (unsigned long long) s_u64(p));
        s_bad(c, pgno, why);
        return NULL;
    }
    return p;
}

/*  A value on overflow pages: those the file holds (their header is not
    read: a page fault for each value of a large log, and LMDB reads only
    their bytes). */
static bool
s_overflow(s_check_t *c, uint64_t pgno, uint64_t size)
{
    uint64_t n = (size + S_HDR + c->psize - 1) / c->psize;
    if (pgno < 2 || pgno + n > c->npages)
        return s_bad(c, pgno, "a value's overflow pages lie past the file's end");
    return true;
}

static bool s_tree(s_check_t *c, uint64_t pgno, unsigned depth);

/*  The nodes of a page: offsets and sizes within it; a branch's children,
    a leaf's overflow values.  (Keys out of order make LMDB find wrong
    entries, never read outside its map: not checked, the walks after
    this compare what they read.) */
static bool
s_nodes(s_check_t *c, uint64_t pgno, const uint8_t *p, bool branch, unsigned depth)
{
    unsigned lower = s_u16(p + 12), upper = s_u16(p + 14);
    if (lower < S_HDR || (lower - S_HDR) % 2 || lower > upper || upper > c->psize)
        return s_bad(c, pgno, "its free space bounds are out of the page");
    unsigned n = (lower - S_HDR) / 2;
    if (n == 0 && branch)
        return s_bad(c, pgno, "a branch page without nodes");
    for (unsigned i = 0; i < n; i++) {
        unsigned at = s_u16(p + S_HDR + 2 * i);
        if (at < upper || at + S_NODE > c->psize)
            return s_bad(c, pgno, "a node's offset is out of the page");
        const uint8_t *node = p + at;
        size_t ksize = s_u16(node + 6);
        uint64_t lohi = (uint64_t) s_u16(node) | (uint64_t) s_u16(node + 2) << 16;
        unsigned flags = s_u16(node + 4);
        size_t dsize = branch ? 0 : (flags & S_BIGDATA) ? 8 : (size_t) lohi;
        if (at + S_NODE + ksize + dsize > c->psize)
            return s_bad(c, pgno, "a node runs past the page's end");
        if (branch && !s_tree(c, lohi | (uint64_t) flags << 32, depth + 1))
            return false;
        if (!branch && (flags & S_BIGDATA)
            && !s_overflow(c, s_u64(node + S_NODE + ksize), lohi))
            return false;
    }
    return true;
}

static bool
s_tree(s_check_t *c, uint64_t pgno, unsigned depth)
{
    if (depth > S_DEPTH_MAX)
        return s_bad(c, pgno, "the tree is deeper than any LMDB makes");
    const uint8_t *p = s_page(c, pgno);
    if (!p)
        return false;
    c->pages++;
    unsigned flags = s_u16(p + 10);
    bool branch = flags & S_BRANCH, leaf = flags & S_LEAF;
    if (branch == leaf)
        return s_bad(c, pgno, "neither a branch nor a leaf page");
    return s_nodes(c, pgno, p, branch, depth);
}

evr_rc_t
evr_store_check_db(evr_store_t *self, const char *name, bool *ok, char *what, size_t size,
                   evr_err_t *err)
{
    *ok = true;
    MDB_stat ms;
    if (mdb_env_stat(self->env, &ms))
        return EVR_OK;  /* nothing to check against: the walk says what is wrong */
    MDB_txn *txn;
    int rc = evr_store_txn_begin(self, MDB_RDONLY, &txn);
    if (rc)
        return evr_store_mdb_err(err, "mdb_txn_begin", rc);
    MDB_dbi main_dbi;
    MDB_val k = { strlen(name), (void *) name }, v;
    rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (!rc)
        rc = mdb_get(txn, main_dbi, &k, &v);
    if (rc == MDB_NOTFOUND || (!rc && v.mv_size != 48)) {
        mdb_txn_abort(txn);
        return EVR_OK;  /* no such database (yet): nothing to walk */
    }
    if (rc) {
        mdb_txn_abort(txn);
        return evr_store_mdb_err(err, "mdb_get main", rc);
    }
    uint64_t root = s_u64((const uint8_t *) v.mv_data + 40);    /* MDB_db's md_root */
    /* LMDB's own map, whose address its API does not give: the record just
       read lies in a page of the main database, which names its page
       number in its header (LMDB's pages are the system's, the map
       aligned to them); a map of the file's own when that does not hold
       (one of its own every time would cost --verify ~100 ms of 1M
       events, 13%: its page faults) */
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", self->dir);
    struct stat st;
    if (stat(path, &st) != 0) {
        mdb_txn_abort(txn);
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: %s", path, strerror(errno));
    }
    s_check_t c = { .psize = ms.ms_psize, .npages = (uint64_t) st.st_size / ms.ms_psize };
    long os_page = sysconf(_SC_PAGESIZE);
    uintptr_t in = (uintptr_t) v.mv_data, base = in & ~((uintptr_t) ms.ms_psize - 1);
    uint64_t pgno = s_u64((const uint8_t *) base);
    void *map = MAP_FAILED;
    if (os_page == (long) ms.ms_psize && pgno >= 2 && pgno < c.npages
        && base >= pgno * ms.ms_psize) {
        /* it is the map when page 0 there is mapped and a meta page */
        uint8_t *at = (uint8_t *) (base - pgno * ms.ms_psize);
        if (msync(at, ms.ms_psize, MS_ASYNC) == 0
            && (s_u64(at + S_HDR) & 0xffffffffu) == S_META_MAGIC)
            c.map = at;
    }
    if (!c.map) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && st.st_size > 0)
            map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (fd >= 0)
            close(fd);
        if (map == MAP_FAILED) {
            mdb_txn_abort(txn);
            return evr_err_set(err, EVR_ERR_STORE, "store: mmap %s: %s", path,
                               strerror(errno));
        }
        c.map = map;
    }
    /* LMDB's map may be shorter than the file (a reader's, until it grows) */
    MDB_envinfo info;
    if (c.map != map && mdb_env_info(self->env, &info) == 0
        && info.me_mapsize / ms.ms_psize < c.npages)
        c.npages = info.me_mapsize / ms.ms_psize;
    if (root != (uint64_t) -1 && !s_tree(&c, root, 0)) {   /* P_INVALID: an empty tree */
        *ok = false;
        snprintf(what, size, "%s", c.what);
    }
    if (map != MAP_FAILED)
        munmap(map, (size_t) st.st_size);
    mdb_txn_abort(txn);
    return EVR_OK;
}

/*  The page of meta of the snapshot txnid in map (NULL when neither names it). */
static const uint8_t *
s_meta_of(const s_check_t *c, uint64_t txnid)
{
    for (uint64_t i = 0; i < 2 && (i + 1) * c->psize <= c->npages * c->psize; i++) {
        const uint8_t *p = c->map + i * c->psize;
        if ((s_u64(p + S_HDR) & 0xffffffffu) == S_META_MAGIC && s_u64(p + S_HDR + 128) == txnid)
            return p;
    }
    return NULL;
}

evr_rc_t
evr_store_check_core(evr_store_t *self, bool free_pages, bool *ok, char *what, size_t size,
                     evr_err_t *err)
{
    *ok = true;
    MDB_stat ms;
    if (mdb_env_stat(self->env, &ms))
        return EVR_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", self->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 2 * (off_t) ms.ms_psize) {
        evr_rc_t rc = fd < 0 ? evr_err_set(err, EVR_ERR_STORE, "store: %s: %s", path,
                                           strerror(errno))
                             : EVR_OK;  /* evr_store_open refuses a file that short */
        if (fd >= 0)
            close(fd);
        return rc;
    }
    void *map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return evr_err_set(err, EVR_ERR_STORE, "store: mmap %s: %s", path, strerror(errno));
    MDB_txn *txn;
    int rc = evr_store_txn_begin(self, MDB_RDONLY, &txn);
    if (rc) {
        munmap(map, (size_t) st.st_size);
        return evr_store_mdb_err(err, "mdb_txn_begin", rc);
    }
    s_check_t c = { .map = map, .psize = ms.ms_psize,
                    .npages = (uint64_t) st.st_size / ms.ms_psize };
    const uint8_t *meta = s_meta_of(&c, (uint64_t) mdb_txn_id(txn));
    /* MDB_meta after the page header: magic, version, address, mapsize,
       then mm_dbs[FREE_DBI] and mm_dbs[MAIN_DBI], each md_root at 40 */
    static const struct { const char *name; unsigned at; } trees[] = {
        { "free pages", S_HDR + 24 + 40 }, { "main", S_HDR + 24 + 48 + 40 },
    };
    for (size_t i = free_pages ? 0 : 1; meta && *ok && i < 2; i++) {
        uint64_t root = s_u64(meta + trees[i].at);
        if (root != (uint64_t) -1 && !s_tree(&c, root, 0)) {
            *ok = false;
            snprintf(what, size, "%s: %s", trees[i].name, c.what);
        }
    }
    mdb_txn_abort(txn);
    munmap(map, (size_t) st.st_size);
    return EVR_OK;
}

#else

evr_rc_t
evr_store_check_core(evr_store_t *self, bool free_pages, bool *ok, char *what, size_t size,
                     evr_err_t *err)
{
    (void) self;
    (void) free_pages;
    (void) what;
    (void) size;
    (void) err;
    *ok = true;
    return EVR_OK;
}

evr_rc_t
evr_store_check_db(evr_store_t *self, const char *name, bool *ok, char *what, size_t size,
                   evr_err_t *err)
{
    (void) self;
    (void) name;
    (void) what;
    (void) size;
    (void) err;
    *ok = true;
    return EVR_OK;
}

#endif

evr_rc_t
evr_store_check_pages(evr_store_t *self, const char *const *dbs, const char *doing,
                      evr_err_t *err)
{
    static const char *const all[] = { "events", "by_job", "jobs", "open", "meta", "kv", NULL };
    {   /* LMDB's own trees first: every read begins in main, a write (and
           a compacting copy) reads the free pages, a read-only view not */
        bool ok;
        char what[256];
        bool free_pages = !dbs || !(self->flags & EVR_STORE_RDONLY);
        evr_rc_t rc = evr_store_check_core(self, free_pages, &ok, what, sizeof what, err);
        if (rc)
            return rc;
        if (!ok)
            return evr_err_set(err, EVR_ERR_STORE, "store: %s: %s: LMDB's own tree is "
                               "damaged; %s (evrun-replay %s --verify checks every database; "
                               "restore the store from a backup, or move the directory aside "
                               "to start anew)", self->dir, what, doing, self->dir);
    }
    for (const char *const *db = dbs ? dbs : all; *db; db++) {
        bool ok;
        char what[256];
        evr_rc_t rc = evr_store_check_db(self, *db, &ok, what, sizeof what, err);
        if (rc)
            return rc;
        if (!ok)
            return evr_err_set(err, EVR_ERR_STORE, "store: %s: %s: %s: the database is damaged "
                               "(LMDB would read past its pages); %s (evrun-replay %s --verify "
                               "checks every database; restore the store from a backup, or "
                               "move the directory aside to start anew)", self->dir, *db, what,
                               doing, self->dir);
    }
    return EVR_OK;
}
