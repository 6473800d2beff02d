/*  evr_store_int.h: the store's private parts, shared by evr_store.c (the
    log, and the helpers every write goes through), evr_store_read.c (the
    readers), evr_store_meta.c (the meta key-values), evr_store_walk.c
    (the walks of every reader), evr_store_list.c (the job listing),
    evr_rebuild.c (verify) and evr_store_check.c (its check of the
    pages), evr_prune.c (retention) and evr_archive.c (sources and the
    key-value table).  Not for use outside store/.
*/
#ifndef EVR_STORE_INT_H_INCLUDED
#define EVR_STORE_INT_H_INCLUDED

#include <lmdb.h>
#include <string.h>

#include "evr_store.h"

struct evr_store {
    char *dir;
    int flags;
    MDB_env *env;
    MDB_dbi events, by_job, jobs, meta, open, kv;
    bool no_kv;             /* read-only on a store older than `kv` */
    size_t mapsize;
    bool unsynced;          /* a lazy commit's meta page is not flushed yet */
    /* the largest key of `jobs` this process knows of, at least as large as
       any the table holds (the writer's; evr_store_has_job) */
    char job_max[EVR_ULID_LEN + 1];
    bool job_max_known;
    uint64_t ahead_used;    /* LMDB's used bytes at the last s_ahead (evr_store.c) */
    /* retention's pass under way: what its walk of the projections decided,
       taken batch by batch (evr_prune.c); NULL between passes */
    struct evr_prune_plan *prune_plan;
    /* what the last pass that found no more to do must see change before
       the next one reads the projections again (evr_prune.c); NULL when
       none is known */
    struct evr_prune_quiet *prune_quiet;
};

/*  Frees a pass of retention left under way (evr_prune.c). */
void evr_prune_plan_free(evr_store_t *self);

/*  Frees the pass under way and what the last one left to watch
    (evr_prune.c), as the store handle goes. */
void evr_prune_forget(evr_store_t *self);

/*  The `meta` key whose value (8 bytes, big-endian) is the last seq of a
    write transaction that stored a finished job's projection (appended
    events; not retention's own rewrites): retention reads the
    projections again only when it moved (evr_prune.c). */
#define EVR_STORE_FINAL_SEQ "final_seq"

/*  An LMDB failure as EVR_ERR_STORE, keeping LMDB's text. */
evr_rc_t evr_store_mdb_err(evr_err_t *err, const char *what, int rc);

/*  A failed mdb_txn_commit as EVR_ERR_STORE naming the file: a full disk
    as "no space left on device writing DIR/data.mdb" (LMDB says
    ENOSPC, or EIO for a short write), EIO, EDQUOT, EROFS with the file,
    others as evr_store_mdb_err. */
evr_rc_t evr_store_commit_err(const evr_store_t *self, evr_err_t *err, int rc);

/*  Begins a transaction; a reader adopts a map grown by the writer.
    Returns LMDB's code. */
int evr_store_txn_begin(evr_store_t *self, unsigned flags, MDB_txn **txn);

/*  The body of a write transaction: writes in txn, returns EVR_OK or an
    error with *mdbrc set to LMDB's code when an LMDB call failed.  After
    MDB_MAP_FULL it runs again in a new transaction, so it must start
    from the same state each time (undo what a failed run changed in arg
    at its start). */
typedef evr_rc_t (evr_store_txn_fn)(evr_store_t *self, MDB_txn *txn, void *arg, evr_err_t *err,
                                    int *mdbrc);

/*  Runs body in a write transaction and commits it.  On MDB_MAP_FULL
    (from body or the commit) nothing is written: the map is doubled and
    body runs again, up to EVR_STORE_GROW_TRIES times.  Errors: body's;
    EVR_ERR_STORE for mdb_txn_begin, mdb_env_set_mapsize, the commit
    (evr_store_commit_err), or "store: WHAT does not fit even after
    growing the map to N bytes".  The caller refuses a read-only store. */
#define EVR_STORE_GROW_TRIES 16
evr_rc_t evr_store_write(evr_store_t *self, const char *what, evr_store_txn_fn *body,
                         void *arg, evr_err_t *err);

/*  A read transaction and a cursor on dbi; both released by the caller
    (mdb_cursor_close, mdb_txn_abort).  Errors: EVR_ERR_STORE. */
evr_rc_t evr_store_read_begin(evr_store_t *self, MDB_dbi dbi, MDB_txn **txn, MDB_cursor **cur,
                              evr_err_t *err);

/*  Checks the pages of database name (its B-tree in the map) as LMDB 0.9
    lays them out, so that a walk never reads a damaged page (LMDB trusts
    its pages: one of random bytes is a SIGSEGV in mdb_cursor_get).  *ok
    false and what[0..size) saying the first problem ("page N: ...") when
    a page fails; a database the store lacks is ok.  Errors:
    EVR_ERR_STORE (a read transaction could not begin) (evr_store_check.c). */
evr_rc_t evr_store_check_db(evr_store_t *self, const char *name, bool *ok, char *what,
                            size_t size, evr_err_t *err);

/*  As evr_store_check_db, for LMDB's own trees in the meta page of a
    read transaction's snapshot: the free pages (which a writer reads to
    reuse them, and a compacting copy to count them) and the main one
    (the databases' records; the free pages only with free_pages);
    what[] then begins "free pages: " or "main: " (evr_store_check.c). */
evr_rc_t evr_store_check_core(evr_store_t *self, bool free_pages, bool *ok, char *what,
                              size_t size, evr_err_t *err);

/*  One entry of evr_store_walk: k, v and txn (for lookups in other
    databases) are valid during the call only.  Set *stop to end the walk;
    an error ends it too. */
typedef evr_rc_t (evr_store_walk_fn)(evr_store_t *self, MDB_txn *txn, const MDB_val *k,
                                     const MDB_val *v, void *arg, bool *stop, evr_err_t *err);

/*  Visits the entries of dbi in key order, from the first key at or after
    from[0..len) (len 0: from the first entry), in read transactions of at
    most EVR_STORE_CHUNK entries each, so a long walk never pins old pages
    of a live writer: the next transaction starts again at the key the last
    one reached.  db names dbi in messages.  Errors: fn's, EVR_ERR_STORE
    for LMDB's. */
#define EVR_STORE_CHUNK 4096
evr_rc_t evr_store_walk(evr_store_t *self, MDB_dbi dbi, const char *db, const void *from,
                        size_t len, evr_store_walk_fn *fn, void *arg, evr_err_t *err);

/*  As evr_store_walk, backwards: the entries of dbi in descending key
    order, from the last key below before[0..len) (len 0: from the last
    entry). */
evr_rc_t evr_store_walk_back(evr_store_t *self, MDB_dbi dbi, const char *db, const void *before,
                             size_t len, evr_store_walk_fn *fn, void *arg, evr_err_t *err);

/*  The highest seq stored from source (0 when none), and its update, in
    the caller's transaction. */
evr_rc_t evr_store_source_get(evr_store_t *self, MDB_txn *txn, const char *source,
                              uint64_t *seq, evr_err_t *err);
evr_rc_t evr_store_source_put(evr_store_t *self, MDB_txn *txn, const char *source,
                              uint64_t seq, evr_err_t *err, int *mdbrc);

#define EVR_STORE_KEYLEN (EVR_ULID_LEN + 4)     /* by_job key: id + jseq */

/*  The events key: a seq as 8 bytes big-endian, and back. */
static inline void
evr_store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t) v;
}

static inline uint64_t
evr_store_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/*  The by_job key of (job, jseq): the id's 26 bytes, jseq big-endian. */
static inline void
evr_store_jobkey(uint8_t key[EVR_STORE_KEYLEN], const char *job, uint32_t jseq)
{
    memcpy(key, job, EVR_ULID_LEN);
    for (int i = 3; i >= 0; i--, jseq >>= 8)
        key[EVR_ULID_LEN + i] = (uint8_t) jseq;
}

/*  A job's projection from `jobs` in txn: EVR_ERR_NOTFOUND when none,
    EVR_ERR_STORE when it does not decode. */
evr_rc_t evr_store_load_job(evr_store_t *self, MDB_txn *txn, const char *id, evr_job_t *job,
                            evr_err_t *err);

/*  Writes a job's projection, and keeps the `open` index (ids of the jobs
    not finished) in step with it; *mdbrc is LMDB's code of a failure. */
evr_rc_t evr_store_put_job(evr_store_t *self, MDB_txn *txn, const evr_job_t *job,
                           evr_err_t *err, int *mdbrc);

/*  Decodes the stored event of seq; EVR_ERR_STORE naming the seq when it
    does not decode. */
evr_rc_t evr_store_decode_event(const MDB_val *v, uint64_t seq, evr_event_t *ev,
                                evr_err_t *err);

#endif
