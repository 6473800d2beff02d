/*  evr_store_read.c: the store's readers: the log scanned in seq order
    (evr_store_scan, and evr_store_replay with the fast decoder), a job's
    events through the by_job index, its projection, the job table walked
    by status, the jobs not finished (the `open` index), and a step's
    output.  Each walks through evr_store_walk (evr_store_walk.c), in
    short read transactions, so a long read never pins old pages of a
    live writer; the log and its writes are in evr_store.c.
*/
#include <string.h>

#include "evr_codec.h"
#include "evr_eventread.h"
#include "evr_store_int.h"

evr_rc_t
evr_store_decode_event(const MDB_val *v, uint64_t seq, evr_event_t *ev, evr_err_t *err)
{
    evr_rc_t erc = evr_event_decode(v->mv_data, v->mv_size, ev, err);
    if (erc)
        return evr_err_set(err, EVR_ERR_STORE, "store: event %llu does not decode: %s",
                           (unsigned long long) seq, err ? err->msg : "");
    return EVR_OK;
}

evr_rc_t
evr_store_read_begin(evr_store_t *self, MDB_dbi dbi, MDB_txn **txn, MDB_cursor **cur, evr_err_t *err)
{
    int rc = evr_store_txn_begin(self, MDB_RDONLY, txn);
    if (rc)
        return evr_store_mdb_err(err, "mdb_txn_begin", rc);
    if ((rc = mdb_cursor_open(*txn, dbi, cur))) {
        mdb_txn_abort(*txn);
        return evr_store_mdb_err(err, "mdb_cursor_open", rc);
    }
    return EVR_OK;
}

/*  A reader's callback and its argument, and what the walk keeps. */
typedef struct {
    evr_store_event_fn *fn;
    void *arg;
    uint64_t to;            /* scan: the last seq (0: to the end) */
    const char *job;        /* job_events: the job */
    bool any;               /* job_events: an entry of the job seen */
    evr_eventread_t *rd;    /* replay: the fast decoder; NULL: evr_event_decode */
} s_events_t;

/*  Decodes one stored event and hands it to e's fn; *stop says whether fn
    asked to stop. */
static evr_rc_t
s_deliver(const MDB_val *v, uint64_t seq, s_events_t *e, bool *stop, evr_err_t *err)
{
    if (e->rd) {
        const evr_event_t *ev;
        if (evr_eventread_decode(e->rd, v->mv_data, v->mv_size, &ev, err))
            return evr_err_set(err, EVR_ERR_STORE, "store: event %llu does not decode: %s",
                               (unsigned long long) seq, err ? err->msg : "");
        *stop = e->fn(ev, e->arg) != 0;
        return EVR_OK;
    }
    evr_event_t ev = { 0 };
    evr_rc_t erc = evr_store_decode_event(v, seq, &ev, err);
    if (erc)
        return erc;
    *stop = e->fn(&ev, e->arg) != 0;
    evr_rec_free(&evr_event_type, &ev);
    return EVR_OK;
}

static evr_rc_t
s_scan_one(evr_store_t *self, MDB_txn *txn, const MDB_val *k, const MDB_val *v, void *arg,
           bool *stop, evr_err_t *err)
{
    (void) self;
    (void) txn;
    s_events_t *e = arg;
    uint64_t seq = evr_store_get64(k->mv_data);
    if (e->to && seq > e->to) {
        *stop = true;
        return EVR_OK;
    }
    return s_deliver(v, seq, e, stop, err);
}

evr_rc_t
evr_store_scan(evr_store_t *self, uint64_t from, uint64_t to, evr_store_event_fn *fn,
               void *arg, evr_err_t *err)
{
    uint8_t key[8];
    evr_store_be64(key, from ? from : 1);
    s_events_t e = { .fn = fn, .arg = arg, .to = to };
    return evr_store_walk(self, self->events, "events", key, sizeof key, s_scan_one, &e, err);
}

evr_rc_t
evr_store_replay(evr_store_t *self, uint64_t from, uint64_t to, unsigned what,
                 evr_store_event_fn *fn, void *arg, evr_err_t *err)
{
    uint8_t key[8];
    evr_store_be64(key, from ? from : 1);
    s_events_t e = { .fn = fn, .arg = arg, .to = to, .rd = evr_eventread_new(what) };
    evr_rc_t erc = evr_store_walk(self, self->events, "events", key, sizeof key, s_scan_one,
                                  &e, err);
    evr_eventread_destroy(&e.rd);
    return erc;
}

static evr_rc_t
s_job_event(evr_store_t *self, MDB_txn *txn, const MDB_val *k, const MDB_val *v, void *arg,
            bool *stop, evr_err_t *err)
{
    s_events_t *e = arg;
    if (k->mv_size != EVR_STORE_KEYLEN || memcmp(k->mv_data, e->job, EVR_ULID_LEN) != 0) {
        *stop = true;   /* past the job's entries */
        return EVR_OK;
    }
    const uint8_t *kp = k->mv_data;
    uint32_t jseq = (uint32_t) kp[26] << 24 | (uint32_t) kp[27] << 16
                  | (uint32_t) kp[28] << 8 | kp[29];
    e->any = true;
    MDB_val ek = { 8, v->mv_data }, ev_val;
    int grc = mdb_get(txn, self->events, &ek, &ev_val);
    if (grc)
        return evr_err_set(err, EVR_ERR_STORE, "store: job %s jseq %u: index points to seq "
                           "%llu: %s", e->job, jseq,
                           (unsigned long long) evr_store_get64(v->mv_data), mdb_strerror(grc));
    return s_deliver(&ev_val, evr_store_get64(v->mv_data), e, stop, err);
}

/*  evr_store_job_events, decoding with rd (NULL: evr_event_decode). */
static evr_rc_t
s_job_events(evr_store_t *self, const char *job, uint32_t from_jseq, evr_eventread_t *rd,
             evr_store_event_fn *fn, void *arg, evr_err_t *err)
{
    if (!evr_ulid_valid(job))
        return evr_err_set(err, EVR_ERR_NOTFOUND, "store: \"%s\" is not a job id", job);
    uint8_t key[EVR_STORE_KEYLEN];
    evr_store_jobkey(key, job, from_jseq ? from_jseq : 1);
    s_events_t e = { .fn = fn, .arg = arg, .job = job, .rd = rd };
    evr_rc_t erc = evr_store_walk(self, self->by_job, "by_job", key, sizeof key, s_job_event,
                                  &e, err);
    if (erc || e.any)
        return erc;
    evr_job_t j = { 0 };
    erc = evr_store_get_job(self, job, &j, err);
    evr_rec_free(&evr_job_type, &j);
    return erc;   /* NOTFOUND for an unknown job; OK for one with no events left */
}

evr_rc_t
evr_store_job_events(evr_store_t *self, const char *job, uint32_t from_jseq,
                     evr_store_event_fn *fn, void *arg, evr_err_t *err)
{
    return s_job_events(self, job, from_jseq, NULL, fn, arg, err);
}

evr_rc_t
evr_store_get_job(evr_store_t *self, const char *job, evr_job_t *out, evr_err_t *err)
{
    if (!evr_ulid_valid(job))
        return evr_err_set(err, EVR_ERR_NOTFOUND, "store: \"%s\" is not a job id", job);
    MDB_txn *txn;
    int rc = evr_store_txn_begin(self, MDB_RDONLY, &txn);
    if (rc)
        return evr_store_mdb_err(err, "mdb_txn_begin", rc);
    evr_rc_t erc = evr_store_load_job(self, txn, job, out, err);
    mdb_txn_abort(txn);
    if (erc == EVR_ERR_NOTFOUND)
        evr_err_set(err, EVR_ERR_NOTFOUND, "store: no job %s", job);
    return erc;
}

evr_rc_t
evr_store_has_job(evr_store_t *self, const char *job, bool *has, evr_err_t *err)
{
    *has = false;
    if (strnlen(job, EVR_ULID_LEN + 1) != EVR_ULID_LEN)
        return EVR_OK;  /* no key of the table has another length */
    /* above every key the writer has put (a new job's id, most often: job
       ids begin with their time): no need to look */
    if (self->job_max_known && !(self->flags & EVR_STORE_RDONLY)
        && memcmp(job, self->job_max, EVR_ULID_LEN) > 0)
        return EVR_OK;
    MDB_txn *txn;
    int rc = evr_store_txn_begin(self, MDB_RDONLY, &txn);
    if (rc)
        return evr_store_mdb_err(err, "mdb_txn_begin", rc);
    MDB_val k = { EVR_ULID_LEN, (void *) job }, v;
    rc = mdb_get(txn, self->jobs, &k, &v);
    mdb_txn_abort(txn);
    if (rc && rc != MDB_NOTFOUND)
        return evr_store_mdb_err(err, "mdb_get jobs", rc);
    *has = rc == 0;
    return EVR_OK;
}

typedef struct {
    evr_job_status_t status;
    evr_store_job_fn *fn;
    void *arg;
} s_jobs_t;

static evr_rc_t
s_job_one(evr_store_t *self, MDB_txn *txn, const MDB_val *k, const MDB_val *v, void *arg,
          bool *stop, evr_err_t *err)
{
    (void) self;
    (void) txn;
    s_jobs_t *j = arg;
    evr_job_t job = { 0 };
    if (evr_codec_decode(v->mv_data, v->mv_size, &evr_job_type, &job, "job", err)) {
        evr_rec_free(&evr_job_type, &job);
        return evr_err_set(err, EVR_ERR_STORE, "store: projection of job %.26s: %s",
                           (const char *) k->mv_data, err ? err->msg : "");
    }
    if (j->status == EVR_JOB_NONE || job.status == (uint32_t) j->status)
        *stop = j->fn(&job, j->arg) != 0;
    evr_rec_free(&evr_job_type, &job);
    return EVR_OK;
}

evr_rc_t
evr_store_jobs(evr_store_t *self, evr_job_status_t status, evr_store_job_fn *fn, void *arg,
               evr_err_t *err)
{
    s_jobs_t j = { status, fn, arg };
    return evr_store_walk(self, self->jobs, "jobs", NULL, 0, s_job_one, &j, err);
}

typedef struct {
    const char *step;
    evr_store_output_fn *fn;
    void *arg;
} s_output_ctx_t;

static int
s_output_one(const evr_event_t *ev, void *arg)
{
    s_output_ctx_t *ctx = arg;
    if (evr_event_kind(ev) != EVR_EV_STEP_OUTPUT)
        return 0;
    if (ctx->step && strcmp(ctx->step, ev->data.step) != 0)
        return 0;
    return ctx->fn(ev->data.step, ev->data.attempt, ev->data.stream, ev->data.bytes.data,
                   ev->data.bytes.len, ctx->arg);
}

evr_rc_t
evr_store_output(evr_store_t *self, const char *job, const char *step, evr_store_output_fn *fn,
                 void *arg, evr_err_t *err)
{
    /* the replay decoder: the output bytes handed over where they lie */
    s_output_ctx_t ctx = { step, fn, arg };
    evr_eventread_t *rd = evr_eventread_new(EVR_EVENTREAD_BYTES);
    evr_rc_t erc = s_job_events(self, job, 1, rd, s_output_one, &ctx, err);
    evr_eventread_destroy(&rd);
    return erc;
}

evr_rc_t
evr_store_open_ids(evr_store_t *self, char (**out)[EVR_ULID_LEN + 1], size_t *count,
                   evr_err_t *err)
{
    *out = NULL;
    *count = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    evr_rc_t berc = evr_store_read_begin(self, self->open, &txn, &cur, err);
    if (berc)
        return berc;
    int rc;
    char (*ids)[EVR_ULID_LEN + 1] = NULL;
    size_t n = 0, cap = 0;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != EVR_ULID_LEN)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            ids = evr_realloc(ids, cap * sizeof *ids);
        }
        memcpy(ids[n], k.mv_data, EVR_ULID_LEN);
        ids[n++][EVR_ULID_LEN] = '\0';
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc != MDB_NOTFOUND) {
        free(ids);
        return evr_store_mdb_err(err, "mdb_cursor_get open", rc);
    }
    *out = ids;
    *count = n;
    return EVR_OK;
}

evr_rc_t
evr_store_open_jobs(evr_store_t *self, evr_store_job_fn *fn, void *arg, evr_err_t *err)
{
    /* Few ids: collect them in one short transaction, then read each. */
    char (*ids)[EVR_ULID_LEN + 1];
    size_t n;
    evr_rc_t erc = evr_store_open_ids(self, &ids, &n, err);
    for (size_t i = 0; i < n && !erc; i++) {
        evr_job_t job = { 0 };
        erc = evr_store_get_job(self, ids[i], &job, err);
        int stop = erc ? 0 : fn(&job, arg);
        evr_rec_free(&evr_job_type, &job);
        if (stop)
            break;
    }
    free(ids);
    return erc;
}
