/*  evr_store_walk.c: the walks of the store's readers over one database,
    forwards and backwards, in short read transactions (at most
    EVR_STORE_CHUNK entries each), so a long scan never pins old pages of
    a live writer.  A forward walk reads a few entries ahead of the one at
    hand, so that their first bytes come from memory while the one at hand
    is decoded.
*/
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "evr_store_int.h"

#define S_MAX_KEY 511   /* LMDB's default bound on a key */

/*  Entries a scan reads ahead of the one at hand (evr_store_walk). */
#define S_AHEAD 4

static void
s_prefetch(int rc, const MDB_val *v)
{
    if (rc)
        return;
    __builtin_prefetch(v->mv_data);
    if (v->mv_size > 64)
        __builtin_prefetch((const char *) v->mv_data + 64);
}

/*  The next entry of cur, its first bytes asked from memory. */
static int
s_next(MDB_cursor *cur, MDB_val *k, MDB_val *v)
{
    int rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
    s_prefetch(rc, v);
    return rc;
}

evr_rc_t
evr_store_walk(evr_store_t *self, MDB_dbi dbi, const char *db, const void *from, size_t len,
               evr_store_walk_fn *fn, void *arg, evr_err_t *err)
{
    uint8_t next[S_MAX_KEY];
    assert(len <= sizeof next);
    if (len)
        memcpy(next, from, len);
    bool more = true;
    while (more) {
        MDB_txn *txn;
        MDB_cursor *cur;
        evr_rc_t erc = evr_store_read_begin(self, dbi, &txn, &cur, err);
        if (erc)
            return erc;
        /* a ring of the entry at hand and S_AHEAD - 1 after it: their
           first bytes are on their way from memory while fn reads this
           one (values stay valid for the transaction) */
        MDB_val k[S_AHEAD], v[S_AHEAD];
        int rc[S_AHEAD];
        k[0] = (MDB_val) { len, next };
        rc[0] = mdb_cursor_get(cur, &k[0], &v[0], len ? MDB_SET_RANGE : MDB_FIRST);
        s_prefetch(rc[0], &v[0]);
        for (unsigned i = 1; i < S_AHEAD; i++)
            rc[i] = rc[i - 1] ? rc[i - 1] : s_next(cur, &k[i], &v[i]);
        unsigned h = 0;
        int count = 0;
        bool stop = false;
        more = false;
        while (rc[h] == 0) {
            if (++count > EVR_STORE_CHUNK && k[h].mv_size <= sizeof next) {
                /* end this transaction, go on from this key in a new one */
                len = k[h].mv_size;
                memcpy(next, k[h].mv_data, len);
                more = true;
                break;
            }
            unsigned last = (h + S_AHEAD - 1) % S_AHEAD;
            MDB_val nk = { 0, NULL }, nv = { 0, NULL };
            int nrc = rc[last] ? rc[last] : s_next(cur, &nk, &nv);
            if ((erc = fn(self, txn, &k[h], &v[h], arg, &stop, err)) || stop)
                break;
            k[h] = nk;
            v[h] = nv;
            rc[h] = nrc;
            h = (h + 1) % S_AHEAD;
        }
        if (!erc && !more && !stop && rc[h] != MDB_NOTFOUND) {
            char what[64];
            snprintf(what, sizeof what, "mdb_cursor_get %s", db);
            erc = evr_store_mdb_err(err, what, rc[h]);
        }
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
        if (erc)
            return erc;
    }
    return EVR_OK;
}

evr_rc_t
evr_store_walk_back(evr_store_t *self, MDB_dbi dbi, const char *db, const void *before,
                    size_t len, evr_store_walk_fn *fn, void *arg, evr_err_t *err)
{
    uint8_t next[S_MAX_KEY];
    assert(len <= sizeof next);
    if (len)
        memcpy(next, before, len);
    bool more = true, resume = false;
    while (more) {
        MDB_txn *txn;
        MDB_cursor *cur;
        evr_rc_t erc = evr_store_read_begin(self, dbi, &txn, &cur, err);
        if (erc)
            return erc;
        MDB_val k = { len, next }, v;
        int rc;
        if (!len)
            rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        else {
            /* the first key at or after `next` (none: every key is below
               it); the walk starts before it, or at it when a chunk ended
               there undelivered */
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            bool at = rc == 0 && k.mv_size == len && memcmp(k.mv_data, next, len) == 0;
            if (rc == MDB_NOTFOUND)
                rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
            else if (rc == 0 && !(at && resume))
                rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
        }
        int count = 0;
        bool stop = false;
        more = false;
        while (rc == 0) {
            if (++count > EVR_STORE_CHUNK && k.mv_size <= sizeof next) {
                /* end this transaction; the next one starts at this key */
                len = k.mv_size;
                memcpy(next, k.mv_data, len);
                more = resume = true;
                break;
            }
            if ((erc = fn(self, txn, &k, &v, arg, &stop, err)) || stop)
                break;
            rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
        }
        if (!erc && rc && rc != MDB_NOTFOUND) {
            char what[64];
            snprintf(what, sizeof what, "mdb_cursor_get %s", db);
            erc = evr_store_mdb_err(err, what, rc);
        }
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
        if (erc)
            return erc;
    }
    return EVR_OK;
}
