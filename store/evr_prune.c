/*  evr_prune.c: retention of finished jobs (evr_prune.h).

    A pass first walks the projections (short read transactions, as
    every reader) and notes of each finished job its id, pipeline, end
    time and last seq; then picks, oldest first, the jobs past max_age or
    beyond keep_per_pipeline (counted from the newest finished job of
    each pipeline) to remove, and the jobs past output_max_age to drop
    the output of; then rewrites at most max_jobs of them in one write
    transaction, so a long backlog goes in bounded steps and never holds
    the writer long.  What the walk decided is kept in the store handle
    (the plan) and the next call takes its next batch from there, so a
    pass over N jobs that removes K costs one walk and K removals, not one
    walk per batch.  The plan holds while the policy is the same and time
    does not go back; each job is checked again in the batch's own
    transaction (still stored, finished, no event since the walk, not held
    by the caller), so a plan made a while ago never removes what the
    walk would not remove now: a job whose age or count let it go still
    does, later, and a job that changed is left to the next walk.

    A pass whose walk left nothing undone also notes what could give the
    next one work (the quiet watch): a job finishing (the store's
    final_seq, which every append that stores a finished projection
    moves), the first moment a kept job's age lets it or its output go,
    a job it kept for the caller (busy, or past upto_seq) let go.  While
    none of these moved, the next pass with the same policy has nothing
    to do and says so without reading a projection; when one did, it
    walks as the first pass did.
*/
#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_codec.h"
#include "evr_codec_read.h"
#include "evr_prune.h"
#include "evr_store_int.h"

#define S_MAX_BATCH 10000
#define S_MAX_EVENTS 50000      /* events a batch rewrites at most (past its first job) */

/*  A finished job as the walk noted it. */
typedef struct {
    char id[EVR_ULID_LEN + 1];
    char *pipeline;
    uint64_t finished, last_seq;
    uint32_t events;            /* its per-job events (last_jseq) */
    bool output_dropped;
    uint8_t act;                /* S_KEEP, S_REMOVE, S_DROP */
    uint8_t held;               /* kept for the caller: S_HELD_UPTO, S_HELD_BUSY (or 0) */
    bool done;                  /* removed or dropped by its batch's transaction */
} s_cand_t;

enum { S_KEEP, S_REMOVE, S_DROP };
enum { S_HELD_UPTO = 1, S_HELD_BUSY };

typedef struct {
    s_cand_t *v;
    size_t n, cap;
} s_cands_t;

/*  A pass under way (evr_store_int.h): the walk's candidates, decided,
    and the policy and time they were decided with. */
struct evr_prune_plan {
    s_cands_t c;
    size_t next;                /* the first candidate no batch took yet */
    uint64_t max_age_ms, output_max_age_ms, now_ns;
    uint32_t keep_per_pipeline;
    uint64_t final_seq;         /* the store's final_seq before the walk */
    bool final_known;           /* ...read (else no quiet watch comes of the pass) */
    bool missed;                /* a candidate picked was left (changed, held) */
};

#define S_QUIET_HELD 1024       /* held jobs a quiet watch asks about again, at most */

/*  The quiet watch (evr_store_int.h): what the last walk that left
    nothing undone saw, so that the next pass knows without a walk that
    it would find nothing. */
struct evr_prune_quiet {
    uint64_t max_age_ms, output_max_age_ms, now_ns;
    uint32_t keep_per_pipeline;
    uint64_t final_seq;         /* the store's final_seq before the walk */
    uint64_t due_ns;            /* the first time a kept job's age lets it (or its output) go */
    uint64_t upto_wait;         /* lowest last seq of a job kept for upto_seq (UINT64_MAX: none) */
    char (*held)[EVR_ULID_LEN + 1];     /* the jobs kept as busy */
    size_t nheld;
};

static int
s_note(const evr_job_t *job, void *arg)
{
    s_cands_t *c = arg;
    if (!evr_job_is_final(job))
        return 0;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->v = evr_realloc(c->v, c->cap * sizeof *c->v);
    }
    s_cand_t *x = &c->v[c->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->id, sizeof x->id, "%s", job->id);
    x->pipeline = evr_strdup(job->pipeline ? job->pipeline : "");
    x->finished = job->finished;
    x->last_seq = job->last_seq;
    x->events = job->last_jseq;
    x->output_dropped = job->output_dropped;
    return 0;
}

/*  The fields s_note reads of a stored projection, straight from its
    msgpack bytes (no decode of its steps); false when they are not as
    written (then the full decoder reads it or says what is wrong). */
static bool
s_peek(const uint8_t *buf, size_t len, evr_job_t *job)
{
    evr_codec_rd_t r = { buf, buf + len };
    uint32_t n;
    if (!evr_codec_rd_map(&r, &n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *k, *v;
        uint32_t kn, vn;
        if (!evr_codec_rd_raw(&r, false, &k, &kn))
            return false;
        uint64_t u;
        int64_t si;
        bool neg;
#define S_KEY(name) (kn == sizeof(name) - 1 && memcmp(k, name, kn) == 0)
        if (S_KEY("status") || S_KEY("pipeline")) {
            if (!evr_codec_rd_raw(&r, false, &v, &vn) || vn > 255 || memchr(v, '\0', vn))
                return false;
            char str[256];
            memcpy(str, v, vn);
            str[vn] = '\0';
            evr_job_status_t st;
            if (S_KEY("pipeline"))
                job->pipeline = evr_strdup(str);
            else if (!evr_job_status_parse(str, &st))
                return false;
            else
                job->status = st;
        }
        else if (S_KEY("last_jseq")) {
            if (!evr_codec_rd_int(&r, &u, &si, &neg) || neg || u > UINT32_MAX)
                return false;
            job->last_jseq = (uint32_t) u;
        }
        else if (S_KEY("finished") || S_KEY("last_seq")) {
            if (!evr_codec_rd_int(&r, &u, &si, &neg) || neg)
                return false;
            *(S_KEY("finished") ? &job->finished : &job->last_seq) = u;
        }
        else if (S_KEY("output_dropped")) {
            if (r.p >= r.end || (*r.p != 0xc2 && *r.p != 0xc3))
                return false;
            job->output_dropped = *r.p++ == 0xc3;
        }
        else {
            size_t skip = evr_codec_skip(r.p, (size_t) (r.end - r.p), EVR_CODEC_MAX_DEPTH - 1);
            if (!skip)
                return false;
            r.p += skip;
        }
#undef S_KEY
    }
    return true;
}

/*  The fields s_note reads of the projection of id stored in v: peeked,
    or else decoded whole.  The caller frees *job (evr_rec_free) also on
    error.  Errors: EVR_ERR_STORE, a projection that does not decode. */
static evr_rc_t
s_read(const char *id, const MDB_val *v, evr_job_t *job, evr_err_t *err)
{
    if (s_peek(v->mv_data, v->mv_size, job))
        return EVR_OK;
    evr_rec_free(&evr_job_type, job);
    memset(job, 0, sizeof *job);
    if (evr_codec_decode(v->mv_data, v->mv_size, &evr_job_type, job, "job", err))
        return evr_err_set(err, EVR_ERR_STORE, "store: projection of job %s: %s", id,
                           err ? err->msg : "");
    return EVR_OK;
}

/*  One stored projection (an evr_store_walk_fn) into the candidates. */
static evr_rc_t
s_note_raw(evr_store_t *self, MDB_txn *txn, const MDB_val *k, const MDB_val *v, void *arg,
           bool *stop, evr_err_t *err)
{
    (void) self;
    (void) txn;
    (void) stop;
    if (k->mv_size != EVR_ULID_LEN)
        return EVR_OK;
    evr_job_t job = { 0 };
    char id[EVR_ULID_LEN + 1];
    memcpy(id, k->mv_data, EVR_ULID_LEN);
    id[EVR_ULID_LEN] = '\0';
    evr_rc_t rc = s_read(id, v, &job, err);
    if (!rc) {
        char *own = job.id;
        job.id = id;
        s_note(&job, arg);
        job.id = own;
    }
    evr_rec_free(&evr_job_type, &job);
    return rc;
}

static void
s_cands_free(s_cands_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].pipeline);
    free(c->v);
}

void
evr_prune_plan_free(evr_store_t *self)
{
    if (!self->prune_plan)
        return;
    s_cands_free(&self->prune_plan->c);
    free(self->prune_plan);
    self->prune_plan = NULL;
}

static void
s_quiet_free(evr_store_t *self)
{
    if (!self->prune_quiet)
        return;
    free(self->prune_quiet->held);
    free(self->prune_quiet);
    self->prune_quiet = NULL;
}

void
evr_prune_forget(evr_store_t *self)
{
    evr_prune_plan_free(self);
    s_quiet_free(self);
}

/*  The store's final_seq (0 when no append stored one).  Errors:
    EVR_ERR_STORE (LMDB's, a value not of 8 bytes). */
static evr_rc_t
s_final_seq(evr_store_t *self, uint64_t *seq, evr_err_t *err)
{
    *seq = 0;
    MDB_txn *txn;
    int rc = evr_store_txn_begin(self, MDB_RDONLY, &txn);
    if (rc)
        return evr_store_mdb_err(err, "mdb_txn_begin", rc);
    MDB_val k = { sizeof EVR_STORE_FINAL_SEQ - 1, EVR_STORE_FINAL_SEQ }, v;
    evr_rc_t erc = EVR_OK;
    if ((rc = mdb_get(txn, self->meta, &k, &v)) == 0 && v.mv_size == 8)
        *seq = evr_store_get64(v.mv_data);
    else if (rc == 0)
        erc = evr_err_set(err, EVR_ERR_STORE, "store: meta " EVR_STORE_FINAL_SEQ " has %zu bytes",
                          v.mv_size);
    else if (rc != MDB_NOTFOUND)
        erc = evr_store_mdb_err(err, "mdb_get " EVR_STORE_FINAL_SEQ, rc);
    mdb_txn_abort(txn);
    return erc;
}

static uint64_t
s_add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/*  The quiet watch of a plan whose batches left nothing undone; NULL
    when it would have to ask about too many held jobs (the next pass
    walks then, as every pass did before). */
static struct evr_prune_quiet *
s_quiet_new(const struct evr_prune_plan *p)
{
    struct evr_prune_quiet *q = evr_calloc(1, sizeof *q);
    q->max_age_ms = p->max_age_ms;
    q->output_max_age_ms = p->output_max_age_ms;
    q->keep_per_pipeline = p->keep_per_pipeline;
    q->now_ns = p->now_ns;
    q->final_seq = p->final_seq;
    q->due_ns = q->upto_wait = UINT64_MAX;
    uint64_t ms = 1000000;
    for (size_t i = 0; i < p->c.n; i++) {
        const s_cand_t *x = &p->c.v[i];
        if (x->act == S_REMOVE)
            continue;   /* removed by its batch (the plan missed none) */
        if (x->held == S_HELD_UPTO) {
            q->upto_wait = x->last_seq < q->upto_wait ? x->last_seq : q->upto_wait;
            continue;
        }
        if (x->held == S_HELD_BUSY) {
            if (q->nheld == S_QUIET_HELD) {
                free(q->held);
                free(q);
                return NULL;
            }
            if (!q->held)
                q->held = evr_calloc(S_QUIET_HELD, sizeof *q->held);
            memcpy(q->held[q->nheld++], x->id, EVR_ULID_LEN + 1);
            continue;
        }
        /* removed once finished < now - max_age: from finished + max_age + 1 ns on */
        if (p->max_age_ms) {
            uint64_t due = s_add_sat(s_add_sat(x->finished, p->max_age_ms * ms), 1);
            q->due_ns = due < q->due_ns ? due : q->due_ns;
        }
        if (p->output_max_age_ms && !x->output_dropped && x->act != S_DROP) {
            uint64_t due = s_add_sat(s_add_sat(x->finished, p->output_max_age_ms * ms), 1);
            q->due_ns = due < q->due_ns ? due : q->due_ns;
        }
    }
    return q;
}

/*  Whether the quiet watch says a pass of pol at now_ns has nothing to
    do: the same policy, no job finished since its walk (final_seq read
    again), no kept job's age reached, no held job let go. */
static bool
s_quiet(evr_store_t *self, const evr_prune_policy_t *pol, uint64_t now_ns)
{
    const struct evr_prune_quiet *q = self->prune_quiet;
    if (!q || q->max_age_ms != pol->max_age_ms || q->output_max_age_ms != pol->output_max_age_ms
        || q->keep_per_pipeline != pol->keep_per_pipeline || now_ns < q->now_ns
        || now_ns >= q->due_ns)
        return false;
    if (q->upto_wait != UINT64_MAX && (!pol->upto_seq || pol->upto_seq >= q->upto_wait))
        return false;
    for (size_t i = 0; i < q->nheld; i++)
        if (!pol->busy || !pol->busy(q->held[i], pol->busy_arg))
            return false;
    uint64_t seq;
    evr_err_t err;
    return s_final_seq(self, &seq, &err) == EVR_OK && seq == q->final_seq;
}

/*  Whether the candidate x, as the walk noted it, is still so in txn:
    its projection stored and finished, with the same last seq (no event
    of it since) and, for a drop, its output not dropped yet.  *mdbrc is
    LMDB's code of a failed read. */
static evr_rc_t
s_unchanged(evr_store_t *self, MDB_txn *txn, const s_cand_t *x, bool *same, evr_err_t *err,
            int *mdbrc)
{
    *same = false;
    MDB_val k = { EVR_ULID_LEN, (void *) x->id }, v;
    int rc = mdb_get(txn, self->jobs, &k, &v);
    if (rc == MDB_NOTFOUND)
        return EVR_OK;
    if (rc) {
        *mdbrc = rc;
        return evr_store_mdb_err(err, "prune: mdb_get jobs", rc);
    }
    evr_job_t job = { 0 };
    evr_rc_t erc = s_read(x->id, &v, &job, err);
    if (!erc)
        *same = evr_job_is_final(&job) && job.last_seq == x->last_seq
             && (x->act != S_DROP || !job.output_dropped);
    evr_rec_free(&evr_job_type, &job);
    return erc;
}

bool
evr_prune_enabled(const evr_prune_policy_t *pol)
{
    return pol->max_age_ms || pol->keep_per_pipeline || pol->output_max_age_ms;
}

/*  Decides what happens to each candidate (ids ascending: oldest first). */
static void
s_decide(s_cands_t *c, const evr_prune_policy_t *pol, uint64_t now_ns)
{
    uint64_t ms = 1000000;
    uint64_t age_cut = pol->max_age_ms && now_ns > pol->max_age_ms * ms
                     ? now_ns - pol->max_age_ms * ms : 0;
    uint64_t out_cut = pol->output_max_age_ms && now_ns > pol->output_max_age_ms * ms
                     ? now_ns - pol->output_max_age_ms * ms : 0;
    zhashx_t *seen = pol->keep_per_pipeline ? zhashx_new() : NULL;
    for (size_t i = c->n; i-- > 0;) {
        s_cand_t *x = &c->v[i];
        x->act = S_KEEP;
        x->held = S_HELD_UPTO;
        if (pol->upto_seq && x->last_seq > pol->upto_seq)
            continue;   /* not yet acknowledged by the broker: kept, not counted (as busy) */
        x->held = S_HELD_BUSY;
        if (pol->busy && pol->busy(x->id, pol->busy_arg))
            continue;
        x->held = 0;
        bool remove = pol->max_age_ms && x->finished < age_cut;
        if (seen) {
            uintptr_t n = (uintptr_t) zhashx_lookup(seen, x->pipeline) + 1;
            zhashx_update(seen, x->pipeline, (void *) n);
            remove = remove || n > pol->keep_per_pipeline;
        }
        if (remove)
            x->act = S_REMOVE;
        else if (pol->output_max_age_ms && !x->output_dropped && x->finished < out_cut)
            x->act = S_DROP;
    }
    zhashx_destroy(&seen);
}

/*  The batch to rewrite. */
typedef struct {
    const evr_prune_policy_t *pol;
    s_cand_t **v;
    size_t n;
    evr_prune_stats_t st;       /* of this batch (again from zero on a retry) */
    char upto[EVR_ULID_LEN + 1];
    bool counted;               /* a dry run's batch ran whole (s_batch_dry_txn) */
} s_batch_t;

/*  Deletes the kv keys PREFIX JOB and PREFIX JOB/… */
static int
s_del_kv(evr_store_t *self, MDB_txn *txn, const char *prefix, const char *job,
         evr_prune_stats_t *st)
{
    char key[256];
    int len = snprintf(key, sizeof key, "%s%s", prefix, job);
    if (len <= 0 || (size_t) len >= sizeof key)
        return 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, self->kv, &cur);
    if (rc)
        return rc;
    MDB_val k = { (size_t) len, key }, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= (size_t) len && memcmp(k.mv_data, key, (size_t) len) == 0
           && (k.mv_size == (size_t) len || ((const char *) k.mv_data)[len] == '/')) {
        st->records++;
        st->bytes += v.mv_size;
        rc = mdb_cursor_del(cur, 0);
        if (rc == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == EINVAL)
            rc = MDB_NOTFOUND;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/*  Removes one job's events, index entries, projection and kv records. */
static int
s_remove_job(evr_store_t *self, MDB_txn *txn, const s_batch_t *b, const char *id,
             evr_prune_stats_t *st)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, self->by_job, &cur);
    if (rc)
        return rc;
    uint8_t key[EVR_STORE_KEYLEN];
    evr_store_jobkey(key, id, 0);
    MDB_val k = { EVR_STORE_KEYLEN, key }, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && memcmp(k.mv_data, id, EVR_ULID_LEN) == 0) {
        MDB_val ek = { 8, v.mv_data }, ev;
        if (v.mv_size == 8 && mdb_get(txn, self->events, &ek, &ev) == 0) {
            st->events++;
            st->bytes += ev.mv_size;
            rc = mdb_del(txn, self->events, &ek, NULL);
        }
        st->records++;
        if (rc == 0)
            rc = mdb_cursor_del(cur, 0);
        if (rc == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == EINVAL)
            rc = MDB_NOTFOUND;
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    MDB_val jk = { EVR_ULID_LEN, (void *) id }, jv;
    if ((rc = mdb_get(txn, self->jobs, &jk, &jv)) == 0) {
        st->records++;
        st->bytes += jv.mv_size;
        rc = mdb_del(txn, self->jobs, &jk, NULL);
    }
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if ((rc = mdb_del(txn, self->open, &jk, NULL)) && rc != MDB_NOTFOUND)
        return rc;
    for (const char *const *p = b->pol->kv_prefixes; !self->no_kv && p && *p; p++)
        if ((rc = s_del_kv(self, txn, *p, id, st)))
            return rc;
    st->jobs++;
    return 0;
}

/*  Empties the bytes of one job's step.output events and marks its
    projection output_dropped. */
static evr_rc_t
s_drop_job(evr_store_t *self, MDB_txn *txn, const char *id, evr_prune_stats_t *st,
           evr_err_t *err, int *mdbrc)
{
    MDB_cursor *cur;
    if ((*mdbrc = mdb_cursor_open(txn, self->by_job, &cur)))
        return evr_store_mdb_err(err, "mdb_cursor_open", *mdbrc);
    uint8_t key[EVR_STORE_KEYLEN];
    evr_store_jobkey(key, id, 0);
    MDB_val k = { EVR_STORE_KEYLEN, key }, v;
    evr_rc_t erc = EVR_OK;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && !erc && memcmp(k.mv_data, id, EVR_ULID_LEN) == 0) {
        uint8_t seqkey[8];
        memcpy(seqkey, v.mv_data, 8);
        MDB_val ek = { 8, seqkey }, ev_val;
        if ((rc = mdb_get(txn, self->events, &ek, &ev_val)) == MDB_NOTFOUND)
            rc = 0;
        else if (rc == 0) {
            evr_event_t ev = { 0 };
            size_t old = ev_val.mv_size;
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
                st->bytes += old > len ? old - len : 0;
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
        return evr_store_mdb_err(err, "drop output", rc);
    }
    if (erc)
        return erc;
    evr_job_t job = { 0 };
    erc = evr_store_load_job(self, txn, id, &job, err);
    if (!erc) {
        job.output_dropped = true;
        erc = evr_store_put_job(self, txn, &job, err, mdbrc);
    }
    evr_rec_free(&evr_job_type, &job);
    if (!erc)
        st->outputs++;
    return erc;
}

/*  A decimal counter in `meta`, in txn (0 when missing or not a number). */
static uint64_t
s_meta_u64(evr_store_t *self, MDB_txn *txn, const char *key)
{
    MDB_val k = { strlen(key), (void *) key }, v;
    if (mdb_get(txn, self->meta, &k, &v) || v.mv_size == 0 || v.mv_size > 20)
        return 0;
    char buf[24];
    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = '\0';
    return strtoull(buf, NULL, 10);
}

static int
s_meta_put(evr_store_t *self, MDB_txn *txn, const char *key, const char *val)
{
    MDB_val k = { strlen(key), (void *) key }, v = { strlen(val), (void *) val };
    return mdb_put(txn, self->meta, &k, &v, 0);
}

/*  What the batch removed, added to the counters in `meta`. */
static int
s_count(evr_store_t *self, MDB_txn *txn, const s_batch_t *b)
{
    if (!b->st.jobs)
        return 0;
    char num[24];
    snprintf(num, sizeof num, "%llu",
             (unsigned long long) (s_meta_u64(self, txn, "pruned_jobs") + b->st.jobs));
    int rc = s_meta_put(self, txn, "pruned_jobs", num);
    snprintf(num, sizeof num, "%llu",
             (unsigned long long) (s_meta_u64(self, txn, "pruned_events") + b->st.events));
    if (!rc)
        rc = s_meta_put(self, txn, "pruned_events", num);
    MDB_val k = { 11, "pruned_upto" }, v;
    bool higher = mdb_get(txn, self->meta, &k, &v) != 0 || v.mv_size != EVR_ULID_LEN
               || memcmp(b->upto, v.mv_data, EVR_ULID_LEN) > 0;
    if (!rc && higher)
        rc = s_meta_put(self, txn, "pruned_upto", b->upto);
    return rc;
}

/*  The body of a batch's write transaction (an evr_store_txn_fn). */
static evr_rc_t
s_batch_txn(evr_store_t *self, MDB_txn *txn, void *arg, evr_err_t *err, int *mdbrc)
{
    s_batch_t *b = arg;
    memset(&b->st, 0, sizeof b->st);
    b->upto[0] = '\0';
    for (size_t i = 0; i < b->n; i++) {
        s_cand_t *x = b->v[i];
        bool same;
        evr_rc_t erc = s_unchanged(self, txn, x, &same, err, mdbrc);
        if (erc)
            return erc;
        x->done = same;
        if (!same)
            continue;   /* changed since the walk: the next walk decides */
        if (x->act == S_DROP) {
            if ((erc = s_drop_job(self, txn, x->id, &b->st, err, mdbrc)))
                return erc;
            continue;
        }
        if ((*mdbrc = s_remove_job(self, txn, b, x->id, &b->st)))
            return evr_store_mdb_err(err, "prune", *mdbrc);
        if (strcmp(x->id, b->upto) > 0)
            memcpy(b->upto, x->id, sizeof b->upto);
    }
    if ((*mdbrc = s_count(self, txn, b)))
        return evr_store_mdb_err(err, "prune: mdb_put meta", *mdbrc);
    return EVR_OK;
}

/*  The body of a dry run's transaction: the batch's, then an "error" that
    has evr_store_write abort it (b->counted says the batch ran whole).
    A full map is an error of the body's own, so the map grows and the
    batch runs again, as for the batch written. */
static evr_rc_t
s_batch_dry_txn(evr_store_t *self, MDB_txn *txn, void *arg, evr_err_t *err, int *mdbrc)
{
    s_batch_t *b = arg;
    b->counted = false;
    evr_rc_t erc = s_batch_txn(self, txn, b, err, mdbrc);
    if (erc)
        return erc;
    b->counted = true;
    *mdbrc = 0;
    return evr_err_set(err, EVR_ERR_STORE, "store: a dry run's transaction, aborted");
}

/*  A dry run of one batch: the same body in a transaction aborted; a
    store whose map the batch would fill grows it first, as the batch
    written would (else a dry run of a store near its map size failed
    with MDB_MAP_FULL where the prune itself succeeds). */
static evr_rc_t
s_batch_dry(evr_store_t *self, s_batch_t *b, evr_err_t *err)
{
    evr_rc_t erc = evr_store_write(self, "a dry run of a batch of pruned jobs",
                                   s_batch_dry_txn, b, err);
    return b->counted ? EVR_OK : erc;
}

static void
s_add(evr_prune_stats_t *to, const evr_prune_stats_t *from)
{
    to->jobs += from->jobs;
    to->outputs += from->outputs;
    to->events += from->events;
    to->records += from->records;
    to->bytes += from->bytes;
}

/*  Whether a candidate the walk picked may still go now: the caller's
    acknowledged seq and busy jobs are asked again (a plan outlives the
    call that walked). */
static bool
s_may_go(const evr_prune_policy_t *pol, const s_cand_t *x)
{
    if (x->act == S_KEEP || (pol->upto_seq && x->last_seq > pol->upto_seq))
        return false;
    return !pol->busy || !pol->busy(x->id, pol->busy_arg);
}

/*  The plan of this pass: the one under way when it was decided with the
    same policy, no later than now_ns and has candidates left; else NULL
    when the quiet watch says there is nothing to do (not for a dry run);
    else a new walk's (a dry run's is its own: the caller frees it). */
static evr_rc_t
s_plan(evr_store_t *self, const evr_prune_policy_t *pol, uint64_t now_ns, bool dry_run,
       struct evr_prune_plan **out, evr_err_t *err)
{
    struct evr_prune_plan *p = self->prune_plan;
    if (!dry_run && p && p->next < p->c.n && p->now_ns <= now_ns
        && p->max_age_ms == pol->max_age_ms && p->output_max_age_ms == pol->output_max_age_ms
        && p->keep_per_pipeline == pol->keep_per_pipeline) {
        *out = p;
        return EVR_OK;
    }
    if (!dry_run) {
        evr_prune_plan_free(self);
        if (s_quiet(self, pol, now_ns)) {
            *out = NULL;    /* nothing to do, as the last walk saw */
            return EVR_OK;
        }
        s_quiet_free(self);
    }
    p = evr_calloc(1, sizeof *p);
    p->max_age_ms = pol->max_age_ms;
    p->output_max_age_ms = pol->output_max_age_ms;
    p->keep_per_pipeline = pol->keep_per_pipeline;
    p->now_ns = now_ns;
    evr_err_t ferr;     /* unread: no quiet watch comes of this pass */
    p->final_known = s_final_seq(self, &p->final_seq, &ferr) == EVR_OK;
    evr_rc_t erc = evr_store_walk(self, self->jobs, "jobs", NULL, 0, s_note_raw, &p->c, err);
    if (erc) {
        s_cands_free(&p->c);
        free(p);
        return erc;
    }
    s_decide(&p->c, pol, now_ns);
    if (!dry_run)
        self->prune_plan = p;
    *out = p;
    return EVR_OK;
}

evr_rc_t
evr_store_prune(evr_store_t *self, const evr_prune_policy_t *pol, uint64_t now_ns,
                uint32_t max_jobs, bool dry_run, evr_prune_removed_fn *removed, void *arg,
                evr_prune_stats_t *st, bool *more, evr_err_t *err)
{
    *more = false;
    if (self->flags & EVR_STORE_RDONLY)
        return evr_err_set(err, EVR_ERR_STORE, "store: %s: opened read-only", self->dir);
    if (!evr_prune_enabled(pol))
        return EVR_OK;
    if (max_jobs == 0 || max_jobs > S_MAX_BATCH)
        max_jobs = S_MAX_BATCH;
    struct evr_prune_plan *p;
    evr_rc_t erc = s_plan(self, pol, now_ns, dry_run, &p, err);
    if (erc || !p)
        return erc;
    s_cands_t *c = &p->c;
    s_batch_t b = { .pol = pol, .v = evr_calloc(max_jobs, sizeof(s_cand_t *)) };
    size_t i = p->next;
    while (!erc && i < c->n) {
        b.n = 0;
        uint64_t events = 0;
        for (; i < c->n && b.n < max_jobs && (b.n == 0 || events < S_MAX_EVENTS); i++)
            if (s_may_go(pol, &c->v[i])) {
                b.v[b.n++] = &c->v[i];
                events += c->v[i].events;
            }
            else if (c->v[i].act != S_KEEP)
                p->missed = true;   /* held by now: the next pass walks again */
        if (!b.n)
            break;
        erc = dry_run ? s_batch_dry(self, &b, err)
                      : evr_store_write(self, "a batch of pruned jobs", s_batch_txn, &b, err);
        if (erc)
            break;
        s_add(st, &b.st);
        for (size_t j = 0; j < b.n && !dry_run; j++)
            if (!b.v[j]->done)
                p->missed = true;   /* changed since the walk */
            else if (b.v[j]->act == S_REMOVE && removed)
                removed(b.v[j]->id, arg);
        if (!dry_run) {
            while (i < c->n && c->v[i].act == S_KEEP)
                i++;
            *more = i < c->n;
            break;
        }
    }
    free(b.v);
    if (dry_run) {
        s_cands_free(c);
        free(p);
    }
    else if (erc || !*more) {
        /* done (or failed): the next pass walks again, unless this one
           left nothing undone and what could give it work is unmoved */
        if (!erc && !p->missed && p->final_known)
            self->prune_quiet = s_quiet_new(p);
        evr_prune_plan_free(self);
    }
    else
        p->next = i;
    return erc;
}

evr_rc_t
evr_store_pruned(evr_store_t *self, evr_prune_meta_t *out, evr_err_t *err)
{
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    int rc = evr_store_txn_begin(self, MDB_RDONLY, &txn);
    if (rc)
        return evr_store_mdb_err(err, "mdb_txn_begin", rc);
    out->jobs = s_meta_u64(self, txn, "pruned_jobs");
    out->events = s_meta_u64(self, txn, "pruned_events");
    MDB_val k = { 11, "pruned_upto" }, v;
    if (mdb_get(txn, self->meta, &k, &v) == 0 && v.mv_size == EVR_ULID_LEN)
        memcpy(out->upto, v.mv_data, EVR_ULID_LEN);
    mdb_txn_abort(txn);
    return EVR_OK;
}

evr_rc_t
evr_store_pages(evr_store_t *self, uint64_t *last_pgno, uint32_t *psize, evr_err_t *err)
{
    MDB_envinfo info;
    MDB_stat stat;
    int rc = mdb_env_info(self->env, &info);
    if (!rc)
        rc = mdb_env_stat(self->env, &stat);
    if (rc)
        return evr_store_mdb_err(err, "mdb_env_info", rc);
    *last_pgno = info.me_last_pgno;
    *psize = stat.ms_psize;
    return EVR_OK;
}

evr_rc_t
evr_store_compact_copy(evr_store_t *self, const char *out_dir, uint64_t *bytes, evr_err_t *err)
{
    *bytes = 0;
    /* the copy reads every page: a damaged one crashed it */
    evr_rc_t rc = evr_store_check_pages(self, NULL, "no copy made", err);
    if (rc)
        return rc;
    char *file = evr_asprintf("%s/data.mdb", out_dir);
    struct stat sb;
    if (mkdir(out_dir, 0700) != 0 && errno != EEXIST)
        rc = evr_err_set(err, EVR_ERR_STORE, "store: %s: %s", out_dir, strerror(errno));
    else if (stat(out_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        rc = evr_err_set(err, EVR_ERR_STORE, "store: %s: not a directory", out_dir);
    else if (lstat(file, &sb) == 0)
        rc = evr_err_set(err, EVR_ERR_STORE, "store: %s: already holds a data.mdb; a copy "
                         "goes to a directory without one", out_dir);
    if (rc) {
        free(file);
        return rc;
    }
    int mrc = mdb_env_copy2(self->env, out_dir, MDB_CP_COMPACT);
    if (mrc) {
        unlink(file);
        rc = evr_err_set(err, EVR_ERR_STORE, "store: copying %s to %s: %s", self->dir, out_dir,
                         mdb_strerror(mrc));
    }
    else if (stat(file, &sb) == 0)
        *bytes = (uint64_t) sb.st_size;
    free(file);
    return rc;
}
