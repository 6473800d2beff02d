/*  evr_retain.c: retention of finished jobs in the event log: compaction
    (a job's events deleted, its projection kept and marked compacted) and
    dropping output (the bytes of its step.output events emptied).  Each
    job is rewritten in a write transaction of its own (evr_store_write).
*/
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "evr_store_int.h"

/*  Ids of final jobs that finished before `before` and still need the
    change marked by `flag_off` (offset of a bool in evr_job_t). */
typedef struct {
    uint64_t before;
    size_t flag_off;
    char (*ids)[EVR_ULID_LEN + 1];
    size_t n, cap;
} s_pick_t;

static int
s_pick(const evr_job_t *job, void *arg)
{
    s_pick_t *p = arg;
    if (!evr_job_is_final(job) || job->finished >= p->before
        || *(const bool *) ((const char *) job + p->flag_off))
        return 0;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->ids = evr_realloc(p->ids, p->cap * sizeof *p->ids);
    }
    memcpy(p->ids[p->n++], job->id, EVR_ULID_LEN + 1);
    return 0;
}

/*  One job to rewrite. */
typedef struct {
    const char *id;
    bool compact;
} s_retain_t;

/*  Rewrites one job's events (an evr_store_txn_fn): compact deletes them
    all, otherwise the bytes of its output events are emptied. */
static evr_rc_t
s_retain_job(evr_store_t *self, MDB_txn *txn, void *arg, evr_err_t *err, int *mdbrc)
{
    const s_retain_t *r = arg;
    const char *id = r->id;
    bool compact = r->compact;
    MDB_cursor *cur;
    if ((*mdbrc = mdb_cursor_open(txn, self->by_job, &cur)))
        return evr_store_mdb_err(err, "mdb_cursor_open", *mdbrc);
    uint8_t key[EVR_STORE_KEYLEN];
    evr_store_jobkey(key, id, 1);
    MDB_val k = { EVR_STORE_KEYLEN, key }, v;
    evr_rc_t erc = EVR_OK;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && !erc && memcmp(k.mv_data, id, EVR_ULID_LEN) == 0) {
        uint8_t seqkey[8];
        memcpy(seqkey, v.mv_data, 8);
        MDB_val ek = { 8, seqkey }, ev_val;
        if (compact) {
            rc = mdb_del(txn, self->events, &ek, NULL);
            if (rc == 0 || rc == MDB_NOTFOUND)
                rc = mdb_cursor_del(cur, 0);
            if (rc == 0)
                rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
            if (rc == EINVAL)   /* deleted the last entry: nothing is current */
                rc = MDB_NOTFOUND;
            /* after mdb_cursor_del the cursor points at the next entry */
            continue;
        }
        rc = mdb_get(txn, self->events, &ek, &ev_val);
        if (rc == 0) {
            evr_event_t ev = { 0 };
            erc = evr_store_decode_event(&ev_val, evr_store_get64(seqkey), &ev, err);
            if (!erc && evr_event_kind(&ev) == EVR_EV_STEP_OUTPUT && ev.data.bytes.len) {
                free(ev.data.bytes.data);
                ev.data.bytes.data = NULL;
                ev.data.bytes.len = 0;
                uint8_t *buf;
                size_t len;
                evr_event_encode(&ev, &buf, &len);
                MDB_val nv = { len, buf };
                rc = mdb_put(txn, self->events, &ek, &nv, 0);
                free(buf);
            }
            evr_rec_free(&evr_event_type, &ev);
        }
        if (rc == 0 && !erc)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (!erc && rc && rc != MDB_NOTFOUND) {
        *mdbrc = rc;
        erc = evr_store_mdb_err(err, compact ? "compact" : "drop output", rc);
    }
    if (!erc) {
        evr_job_t job = { 0 };
        erc = evr_store_load_job(self, txn, id, &job, err);
        if (!erc) {
            if (compact)
                job.compacted = true;
            else
                job.output_dropped = true;
            erc = evr_store_put_job(self, txn, &job, err, mdbrc);
        }
        evr_rec_free(&evr_job_type, &job);
    }
    return erc;
}

static evr_rc_t
s_retain(evr_store_t *self, uint64_t before, bool compact, uint32_t *njobs, evr_err_t *err)
{
    if (self->flags & EVR_STORE_RDONLY)
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: opened read-only", self->dir);
    s_pick_t pick = { before, compact ? offsetof(evr_job_t, compacted)
                                      : offsetof(evr_job_t, output_dropped), NULL, 0, 0 };
    evr_rc_t erc = evr_store_jobs(self, EVR_JOB_NONE, s_pick, &pick, err);
    uint32_t done = 0;
    for (size_t i = 0; i < pick.n && !erc; i++) {
        s_retain_t r = { pick.ids[i], compact };
        /* rewriting needs room too: a full map grows as for an append */
        erc = evr_store_write(self, compact ? "compaction of a job" : "dropping a job's output",
                              s_retain_job, &r, err);
        done += !erc;
    }
    free(pick.ids);
    if (njobs)
        *njobs = done;
    return erc;
}

evr_rc_t
evr_store_compact(evr_store_t *self, uint64_t before, uint32_t *njobs, evr_err_t *err)
{
    return s_retain(self, before, true, njobs, err);
}

evr_rc_t
evr_store_drop_output(evr_store_t *self, uint64_t before, uint32_t *njobs, evr_err_t *err)
{
    return s_retain(self, before, false, njobs, err);
}

