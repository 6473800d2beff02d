/*  evr_store_int.h: the store's private parts, shared by evr_store.c (the
    log) and evr_archive.c (sources and the key-value table).  Not for use
    outside store/.
*/
#ifndef EVR_STORE_INT_H_INCLUDED
#define EVR_STORE_INT_H_INCLUDED

#include <lmdb.h>

#include "evr_store.h"

struct evr_store {
    char *dir;
    int flags;
    MDB_env *env;
    MDB_dbi events, by_job, jobs, meta, open, kv;
    bool no_kv;             /* read-only on a store older than `kv` */
    size_t mapsize;
};

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

/*  The highest seq stored from source (0 when none), and its update, in
    the caller's transaction. */
evr_rc_t evr_store_source_get(evr_store_t *self, MDB_txn *txn, const char *source,
                              uint64_t *seq, evr_err_t *err);
evr_rc_t evr_store_source_put(evr_store_t *self, MDB_txn *txn, const char *source,
                              uint64_t seq, evr_err_t *err, int *mdbrc);

#endif
