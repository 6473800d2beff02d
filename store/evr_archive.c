/*  evr_archive.c: what the broker's store holds beyond a log of its own.

    Sources: the broker stores events that runners numbered, and remembers
    per runner the highest seq it holds (meta "src/<runner>"), written in
    the transaction that stores the events, so a resend is recognised
    whatever crashed.  The key-value table `kv` holds the broker's durable
    queue: small records written in one transaction per batch, read in
    key order.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_store_int.h"

#define S_SRCKEY_MAX 80

static size_t
s_srckey(char key[S_SRCKEY_MAX], const char *source)
{
    int n = snprintf(key, S_SRCKEY_MAX, "src/%s", source);
    return n < 0 || n >= S_SRCKEY_MAX ? S_SRCKEY_MAX - 1 : (size_t) n;
}

evr_rc_t
evr_store_source_get(evr_store_t *self, MDB_txn *txn, const char *source, uint64_t *seq,
                     evr_err_t *err)
{
    char key[S_SRCKEY_MAX];
    MDB_val k = { s_srckey(key, source), key }, v;
    int rc = mdb_get(txn, self->meta, &k, &v);
    *seq = 0;
    if (rc == MDB_NOTFOUND)
        return EVR_OK;
    if (rc)
        return evr_store_mdb_err(err, "mdb_get source seq", rc);
    if (v.mv_size != 8)
        return evr_err_set(err, EVR_ERR_STORE, "store: meta %s has %zu bytes", key, v.mv_size);
    const uint8_t *p = v.mv_data;
    for (int i = 0; i < 8; i++)
        *seq = (*seq << 8) | p[i];
    return EVR_OK;
}

evr_rc_t
evr_store_source_put(evr_store_t *self, MDB_txn *txn, const char *source, uint64_t seq,
                     evr_err_t *err, int *mdbrc)
{
    char key[S_SRCKEY_MAX];
    uint8_t buf[8];
    for (int i = 7; i >= 0; i--, seq >>= 8)
        buf[i] = (uint8_t) seq;
    MDB_val k = { s_srckey(key, source), key }, v = { 8, buf };
    *mdbrc = mdb_put(txn, self->meta, &k, &v, 0);
    return *mdbrc ? evr_store_mdb_err(err, "mdb_put source seq", *mdbrc) : EVR_OK;
}

evr_rc_t
evr_store_source_seq(evr_store_t *self, const char *source, uint64_t *seq, evr_err_t *err)
{
    MDB_txn *txn;
    int rc = evr_store_txn_begin(self, MDB_RDONLY, &txn);
    if (rc)
        return evr_store_mdb_err(err, "mdb_txn_begin", rc);
    evr_rc_t erc = evr_store_source_get(self, txn, source, seq, err);
    mdb_txn_abort(txn);
    return erc;
}

typedef struct {
    const evr_store_kv_t *ops;
    size_t n;
} s_kv_batch_t;

static evr_rc_t
s_kv_txn(evr_store_t *self, MDB_txn *txn, void *arg, evr_err_t *err, int *mdbrc)
{
    const s_kv_batch_t *b = arg;
    for (size_t i = 0; i < b->n; i++) {
        const evr_store_kv_t *op = &b->ops[i];
        MDB_val k = { strlen(op->key), (void *) op->key };
        if (op->val) {
            MDB_val v = { op->len, (void *) op->val };
            *mdbrc = mdb_put(txn, self->kv, &k, &v, 0);
        }
        else if ((*mdbrc = mdb_del(txn, self->kv, &k, NULL)) == MDB_NOTFOUND)
            *mdbrc = 0;
        if (*mdbrc)
            return evr_store_mdb_err(err, op->val ? "mdb_put kv" : "mdb_del kv", *mdbrc);
    }
    return EVR_OK;
}

evr_rc_t
evr_store_kv_write(evr_store_t *self, const evr_store_kv_t *ops, size_t n, evr_err_t *err)
{
    if (self->flags & EVR_STORE_RDONLY)
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: opened read-only", self->dir);
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(ops[i].key);
        if (kl == 0 || kl > 255)
            return evr_err_set(err, EVR_ERR_LIMIT, "store: kv key of %zu bytes (1..255)", kl);
    }
    s_kv_batch_t b = { ops, n };
    return evr_store_write(self, "kv batch", s_kv_txn, &b, err);
}

evr_rc_t
evr_store_kv_write_lazy(evr_store_t *self, const evr_store_kv_t *ops, size_t n, evr_err_t *err)
{
    if (self->flags & (EVR_STORE_RDONLY | EVR_STORE_NOSYNC))
        return evr_store_kv_write(self, ops, n, err);
    int rc = mdb_env_set_flags(self->env, MDB_NOMETASYNC, 1);
    if (rc)
        return evr_store_mdb_err(err, "mdb_env_set_flags", rc);
    evr_rc_t erc = evr_store_kv_write(self, ops, n, err);
    mdb_env_set_flags(self->env, MDB_NOMETASYNC, 0);
    if (erc == EVR_OK)
        self->unsynced = true;
    return erc;
}

evr_rc_t
evr_store_sync(evr_store_t *self, evr_err_t *err)
{
    if (self->flags & (EVR_STORE_RDONLY | EVR_STORE_NOSYNC) || !self->unsynced)
        return EVR_OK;
    int rc = mdb_env_sync(self->env, 1);
    if (rc)
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: mdb_env_sync: %s", self->dir,
                           mdb_strerror(rc));
    self->unsynced = false;
    return EVR_OK;
}

evr_rc_t
evr_store_kv_get(evr_store_t *self, const char *key, char *buf, size_t size, evr_err_t *err)
{
    if (size)
        buf[0] = '\0';
    if (self->no_kv)
        return evr_err_set(err, EVR_ERR_NOTFOUND, "store: no key %s", key);
    MDB_txn *txn;
    int rc = evr_store_txn_begin(self, MDB_RDONLY, &txn);
    if (rc)
        return evr_store_mdb_err(err, "mdb_txn_begin", rc);
    MDB_val k = { strlen(key), (void *) key }, v;
    rc = mdb_get(txn, self->kv, &k, &v);
    evr_rc_t erc = EVR_OK;
    if (rc == MDB_NOTFOUND)
        erc = evr_err_set(err, EVR_ERR_NOTFOUND, "store: no key %s", key);
    else if (rc)
        erc = evr_store_mdb_err(err, "mdb_get kv", rc);
    else if (size) {
        size_t n = v.mv_size < size - 1 ? v.mv_size : size - 1;
        memcpy(buf, v.mv_data, n);
        buf[n] = '\0';
    }
    mdb_txn_abort(txn);
    return erc;
}

typedef struct {
    const char *prefix;
    size_t len;
    evr_store_kv_fn *fn;
    void *arg;
} s_kv_scan_t;

static evr_rc_t
s_kv_one(evr_store_t *self, MDB_txn *txn, const MDB_val *k, const MDB_val *v, void *arg,
         bool *stop, evr_err_t *err)
{
    (void) self;
    (void) txn;
    (void) err;
    const s_kv_scan_t *sc = arg;
    if (k->mv_size < sc->len || memcmp(k->mv_data, sc->prefix, sc->len) != 0) {
        *stop = true;   /* past the prefix */
        return EVR_OK;
    }
    char key[256];
    size_t kl = k->mv_size < sizeof key ? k->mv_size : sizeof key - 1;
    memcpy(key, k->mv_data, kl);
    key[kl] = '\0';
    *stop = sc->fn(key, v->mv_data, v->mv_size, sc->arg) != 0;
    return EVR_OK;
}

evr_rc_t
evr_store_kv_scan(evr_store_t *self, const char *prefix, evr_store_kv_fn *fn, void *arg,
                  evr_err_t *err)
{
    if (self->no_kv)
        return EVR_OK;
    s_kv_scan_t sc = { prefix, strlen(prefix), fn, arg };
    return evr_store_walk(self, self->kv, "kv", prefix, sc.len, s_kv_one, &sc, err);
}
