/*  evr_stest.h: what the event store's tests share (test_store.c,
    test_store_open.c): a temporary root that each case makes its
    directories in, its removal, and raw writes into the LMDB environment
    behind the store's back (formats, kinds and projections it did not
    write).  Static, as evr_test.h's counters are: each test program has
    its own copy.
*/
#ifndef EVR_STEST_H_INCLUDED
#define EVR_STEST_H_INCLUDED

#include <lmdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "evr_common.h"

static char evr_stest_root[256];

/*  Makes the root, /tmp/evr-test-NAME-XXXXXX; false, said, when it cannot. */
static inline bool
evr_stest_begin(const char *name)
{
    snprintf(evr_stest_root, sizeof evr_stest_root, "/tmp/evr-test-%s-XXXXXX", name);
    if (!mkdtemp(evr_stest_root)) {
        perror("mkdtemp");
        return false;
    }
    return true;
}

/*  ROOT/NAME (caller frees); not made. */
static inline char *
evr_stest_dir(const char *name)
{
    return evr_asprintf("%s/%s", evr_stest_root, name);
}

/*  Removes dir and all in it; a failure is said, not fatal. */
static inline void
evr_stest_rm_rf(const char *dir)
{
    char *cmd = evr_asprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed: %s\n", cmd);
    free(cmd);
}

/*  Writes key -> val into database db of the LMDB environment in dir,
    behind the store's back (db is created when create; key NULL writes
    nothing).  True on success. */
static inline bool
evr_stest_raw_put(const char *dir, const char *db, bool create, const void *key, size_t klen,
                  const void *val, size_t vlen)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    if (mdb_env_create(&env))
        return false;
    mdb_env_set_maxdbs(env, 8);
    bool ok = mdb_env_open(env, dir, 0, 0600) == 0 && mdb_txn_begin(env, NULL, 0, &txn) == 0;
    if (ok) {
        ok = mdb_dbi_open(txn, db, create ? MDB_CREATE : 0, &dbi) == 0;
        MDB_val k = { klen, (void *) key }, v = { vlen, (void *) val };
        if (ok && key)
            ok = mdb_put(txn, dbi, &k, &v, 0) == 0;
        if (ok)
            ok = mdb_txn_commit(txn) == 0;
        else
            mdb_txn_abort(txn);
    }
    mdb_env_close(env);
    return ok;
}

#endif
