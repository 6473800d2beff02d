/*  evr_store_meta.c: the small named values of the store's `meta`
    database (a runner's id, the seq the broker acknowledged, ...): one
    read in a short read transaction, one write through evr_store_write
    (a full map grown and the write run again).  The store's own keys
    (format, kind, last_seq, final_seq) are kept by the code that owns
    them (evr_store.c, evr_prune.c), in their own transactions.
*/
#include <string.h>

#include "evr_store_int.h"

evr_rc_t
evr_store_meta_get(evr_store_t *self, const char *key, char **val, evr_err_t *err)
{
    MDB_txn *txn;
    int rc = evr_store_txn_begin(self, MDB_RDONLY, &txn);
    if (rc)
        return evr_store_mdb_err(err, "mdb_txn_begin", rc);
    MDB_val k = { strlen(key), (void *) key }, v;
    rc = mdb_get(txn, self->meta, &k, &v);
    evr_rc_t erc = EVR_OK;
    if (rc == MDB_NOTFOUND)
        erc = evr_err_set(err, EVR_ERR_NOTFOUND, "store: no meta \"%s\"", key);
    else if (rc)
        erc = evr_store_mdb_err(err, "mdb_get meta", rc);
    else
        *val = evr_strndup(v.mv_data, v.mv_size);
    mdb_txn_abort(txn);
    return erc;
}

typedef struct {
    const char *key, *val;
} s_meta_t;

static evr_rc_t
s_meta_txn(evr_store_t *self, MDB_txn *txn, void *arg, evr_err_t *err, int *mdbrc)
{
    const s_meta_t *m = arg;
    MDB_val k = { strlen(m->key), (void *) m->key }, v = { strlen(m->val), (void *) m->val };
    *mdbrc = mdb_put(txn, self->meta, &k, &v, 0);
    return *mdbrc ? evr_store_mdb_err(err, "mdb_put meta", *mdbrc) : EVR_OK;
}

evr_rc_t
evr_store_meta_set(evr_store_t *self, const char *key, const char *val, evr_err_t *err)
{
    if (self->flags & EVR_STORE_RDONLY)
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: opened read-only", self->dir);
    s_meta_t m = { key, val };
    return evr_store_write(self, "meta value", s_meta_txn, &m, err);
}
