/*  evr_rebuild.c: fold the log into job states; verify the projections. */
#include "evr_rebuild.h"

#include <czmq.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_codec.h"
#include "evr_eventread.h"
#include "evr_json.h"
#include "evr_prune.h"
#include "evr_store_int.h"

/*  A job's events as the log holds them and as the by_job index points
    to them (evr_rebuild_verify): counts and a sum of a mix of each
    (jseq, seq), equal when the index is right. */
typedef struct {
    uint64_t n, mix;        /* from the log */
    uint64_t in, inmix;     /* from the index */
    bool compare;           /* its projection was compared: the index too */
    bool skip;              /* compacted: its entries are not checked */
} s_idx_t;

struct evr_rebuild {
    zhashx_t *jobs;         /* id -> evr_job_t* (owned) */
    zhashx_t *idx;          /* verify: id -> s_idx_t* (owned); NULL: none kept */
    s_idx_t *last_x;        /* the index record of `last` (verify) */
    evr_job_t **sorted;     /* built on first evr_rebuild_at */
    evr_job_t *last;        /* the job of the last event applied */
    size_t nsorted;
    uint64_t events, illegal, last_seq, gaps;
    evr_rebuild_report_fn *report;
    void *arg;
};

static void
s_report(evr_rebuild_report_fn *report, void *arg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
s_report(evr_rebuild_report_fn *report, void *arg, const char *fmt, ...)
{
    if (!report)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    report(line, arg);
}

static void
s_job_free(void **item)
{
    evr_job_destroy((evr_job_t **) item);
}

static uint64_t
s_mix(uint32_t jseq, uint64_t seq)
{
    uint64_t z = seq * 0x9e3779b97f4a7c15ull ^ ((uint64_t) jseq << 32 | jseq);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;    /* splitmix64's finalizer */
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/*  The index record of job id (made when make).  Each caller asks once a
    job (s_fold keeps the last job's as last_x; the projections and the
    index entries come a job at a time): nothing is cached here. */
static s_idx_t *
s_idx(evr_rebuild_t *self, const char *id, bool make)
{
    s_idx_t *x = zhashx_lookup(self->idx, id);
    if (!x && make) {
        x = evr_calloc(1, sizeof *x);
        zhashx_insert(self->idx, id, x);
    }
    return x;
}

static int
s_fold(const evr_event_t *ev, void *arg)
{
    evr_rebuild_t *self = arg;
    self->events++;
    if (self->last_seq && ev->seq != self->last_seq + 1)
        self->gaps++;
    self->last_seq = ev->seq;
    if (!ev->job)
        return 0;   /* runner events carry no job state */
    bool same = self->last && strcmp(self->last->id, ev->job) == 0;
    s_idx_t *x = NULL;
    if (self->idx) {   /* the last job's record is self->last_x: no other compare */
        x = same ? self->last_x : s_idx(self, ev->job, true);
        x->n++;
        x->mix += s_mix(ev->jseq, ev->seq);
    }
    evr_job_t *job = same ? self->last : zhashx_lookup(self->jobs, ev->job);
    bool fresh = !job;
    if (fresh)
        job = evr_job_new();
    evr_err_t err;
    if (evr_job_apply(job, ev, &err)) {
        self->illegal++;
        s_report(self->report, self->arg, "illegal event: %s", err.msg);
        if (fresh)
            evr_job_destroy(&job);
        return 0;
    }
    if (fresh)
        zhashx_insert(self->jobs, ev->job, job);
    self->last = job;
    self->last_x = x;
    return 0;
}

static void
s_free(void **item)
{
    free(*item);
    *item = NULL;
}

/*  verify: every event checked whole (EVR_EVENTREAD_CHECK), and the
    index records kept. */
static evr_rc_t
s_rebuild(evr_store_t *store, uint64_t upto, bool verify, evr_rebuild_report_fn *report,
          void *arg, evr_rebuild_t **out, evr_err_t *err)
{
    evr_rebuild_t *self = evr_calloc(1, sizeof *self);
    self->jobs = zhashx_new();
    zhashx_set_destructor(self->jobs, s_job_free);
    if (verify) {
        self->idx = zhashx_new();
        zhashx_set_destructor(self->idx, s_free);
    }
    self->report = report;
    self->arg = arg;
    evr_rc_t rc = evr_store_replay(store, 1, upto, verify ? EVR_EVENTREAD_CHECK : 0, s_fold,
                                   self, err);
    if (rc) {
        evr_rebuild_destroy(&self);
        *out = NULL;
        return rc;
    }
    *out = self;
    return EVR_OK;
}

evr_rc_t
evr_rebuild_new(evr_store_t *store, uint64_t upto, evr_rebuild_report_fn *report, void *arg,
                evr_rebuild_t **out, evr_err_t *err)
{
    return s_rebuild(store, upto, false, report, arg, out, err);
}

void
evr_rebuild_destroy(evr_rebuild_t **self_p)
{
    evr_rebuild_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->jobs);
    zhashx_destroy(&self->idx);
    free(self->sorted);
    free(self);
    *self_p = NULL;
}

uint64_t
evr_rebuild_events(const evr_rebuild_t *self)
{
    return self->events;
}

uint64_t
evr_rebuild_illegal(const evr_rebuild_t *self)
{
    return self->illegal;
}

size_t
evr_rebuild_count(const evr_rebuild_t *self)
{
    return zhashx_size(self->jobs);
}

static int
s_by_id(const void *a, const void *b)
{
    return strcmp((*(evr_job_t *const *) a)->id, (*(evr_job_t *const *) b)->id);
}

const evr_job_t *
evr_rebuild_at(const evr_rebuild_t *cself, size_t i)
{
    evr_rebuild_t *self = (evr_rebuild_t *) cself;   /* the sorted view is a cache */
    if (!self->sorted) {
        self->nsorted = zhashx_size(self->jobs);
        self->sorted = evr_calloc(self->nsorted, sizeof(evr_job_t *));
        size_t n = 0;
        for (evr_job_t *j = zhashx_first(self->jobs); j; j = zhashx_next(self->jobs))
            self->sorted[n++] = j;
        qsort(self->sorted, n, sizeof(evr_job_t *), s_by_id);
    }
    return i < self->nsorted ? self->sorted[i] : NULL;
}

const evr_job_t *
evr_rebuild_job(const evr_rebuild_t *self, const char *id)
{
    return zhashx_lookup(self->jobs, id);
}

/* ---------------------------------------------------------------- verify */

typedef struct {
    evr_rebuild_t *rb;
    uint64_t upto;      /* last seq when the check began */
    evr_rebuild_verify_t *out;
    evr_rebuild_report_fn *report;
    void *arg;
    zhashx_t *seen;     /* ids of stored projections */
    zhashx_t *open;     /* ids in the store's open-jobs index */
    uint64_t unfinished;
    uint64_t index_said;    /* by_job entries said to point nowhere */
    char index_id[EVR_ULID_LEN + 1];    /* the job of the last by_job entry ... */
    s_idx_t *index_x;       /* ... its record (index_dummy: none); NULL: not a job */
    bool index_none;        /* ... and no event of it is in the log */
    s_idx_t index_dummy;
} s_verify_t;

/*  Reports the fields of stored and rebuilt that differ, with both values. */
/*  Retention marks are facts about storage, not about the events. */
static bool
s_comparable(const evr_field_t *f)
{
    return strcmp(f->key, "compacted") != 0 && strcmp(f->key, "output_dropped") != 0;
}

static void
s_diff(s_verify_t *v, const evr_job_t *stored, const evr_job_t *rebuilt)
{
    if (stored == rebuilt)
        return;   /* s_verify_raw found the stored bytes to be the rebuild's */
    bool same = true;
    for (size_t i = 0; i < evr_job_type.nfields && same; i++) {
        const evr_field_t *f = &evr_job_type.fields[i];
        same = !s_comparable(f)
            || evr_field_equal(f, (const char *) stored + f->off, (const char *) rebuilt + f->off);
    }
    if (same)
        return;
    json_t *a = evr_json_from_rec(&evr_job_type, stored);
    json_t *b = evr_json_from_rec(&evr_job_type, rebuilt);
    for (size_t i = 0; i < evr_job_type.nfields; i++) {
        const evr_field_t *f = &evr_job_type.fields[i];
        if (!s_comparable(f) || evr_field_equal(f, (const char *) stored + f->off, (const char *) rebuilt + f->off))
            continue;
        char *sa = json_dumps(json_object_get(a, f->key), JSON_ENCODE_ANY | JSON_COMPACT);
        char *sb = json_dumps(json_object_get(b, f->key), JSON_ENCODE_ANY | JSON_COMPACT);
        s_report(v->report, v->arg, "job %s: %s differs: stored %.700s, rebuilt %.700s",
                 stored->id, f->key, sa ? sa : "(none)", sb ? sb : "(none)");
        free(sa);
        free(sb);
        v->out->differences++;
    }
    json_decref(a);
    json_decref(b);
}

static int
s_verify_job(const evr_job_t *stored, void *arg)
{
    s_verify_t *v = arg;
    zhashx_insert(v->seen, stored->id, (void *) 1);
    bool indexed = zhashx_lookup(v->open, stored->id) != NULL;
    if (!evr_job_is_final(stored))
        v->unfinished++;
    if (indexed == evr_job_is_final(stored) && stored->last_seq <= v->upto) {
        s_report(v->report, v->arg, "job %s: %s, but %s the open-jobs index", stored->id,
                 evr_job_status_name(stored->status), indexed ? "in" : "missing from");
        v->out->differences++;
    }
    if (stored->last_seq > v->upto) {
        v->out->changed++;
        return 0;
    }
    const evr_job_t *rebuilt = evr_rebuild_job(v->rb, stored->id);
    s_idx_t *x = s_idx(v->rb, stored->id, true);
    if (stored->compacted) {
        x->skip = true;
        v->out->compacted++;
        if (rebuilt) {
            s_report(v->report, v->arg, "job %s: compacted, but %u of its events remain",
                     stored->id, rebuilt->last_jseq);
            v->out->differences++;
        }
        return 0;
    }
    v->out->jobs++;
    x->compare = true;
    if (!rebuilt) {
        s_report(v->report, v->arg, "job %s: stored, but no event of it is in the log",
                 stored->id);
        v->out->differences++;
        return 0;
    }
    s_diff(v, stored, rebuilt);
    return 0;
}

/*  One stored projection (an evr_store_walk_fn): when its bytes are the
    encoding of its rebuild, the two are equal without a decode (the
    encoding is canonical); else it is decoded and compared field by
    field. */
static evr_rc_t
s_verify_raw(evr_store_t *store, MDB_txn *txn, const MDB_val *k, const MDB_val *v, void *arg,
             bool *stop, evr_err_t *err)
{
    (void) store;
    (void) txn;
    (void) stop;
    s_verify_t *vf = arg;
    if (k->mv_size == EVR_ULID_LEN) {
        char id[EVR_ULID_LEN + 1];
        memcpy(id, k->mv_data, EVR_ULID_LEN);
        id[EVR_ULID_LEN] = '\0';
        const evr_job_t *rebuilt = evr_rebuild_job(vf->rb, id);
        uint8_t *buf;
        size_t len;
        if (rebuilt) {
            evr_codec_encode(&evr_job_type, rebuilt, &buf, &len);
            bool same = len == v->mv_size && memcmp(buf, v->mv_data, len) == 0;
            free(buf);
            if (same) {
                s_verify_job(rebuilt, vf);
                return EVR_OK;
            }
        }
    }
    evr_job_t job = { 0 };
    if (evr_codec_decode(v->mv_data, v->mv_size, &evr_job_type, &job, "job", err))
        return evr_err_set(err, EVR_ERR_STORE, "store: projection of job %.26s: %s",
                           (const char *) k->mv_data, err ? err->msg : "");
    s_verify_job(&job, vf);
    evr_rec_free(&evr_job_type, &job);
    return EVR_OK;
}

/*  At most this many lines of by_job entries that point at no event of
    their job: a damaged page gives one per entry. */
#define S_INDEX_SAID 20

/*  One entry of the by_job index (an evr_store_walk_fn): job id and jseq
    as key, seq as value; counted into its job's index record. */
static evr_rc_t
s_verify_index(evr_store_t *store, MDB_txn *txn, const MDB_val *k, const MDB_val *v, void *arg,
               bool *stop, evr_err_t *err)
{
    (void) store;
    (void) txn;
    (void) stop;
    (void) err;
    s_verify_t *vf = arg;
    const uint8_t *kp = k->mv_data;
    bool same = vf->index_x && k->mv_size == EVR_STORE_KEYLEN && v->mv_size == 8
             && memcmp(kp, vf->index_id, EVR_ULID_LEN) == 0;
    if (!same) {    /* a job's entries come together: this once a job */
        char id[EVR_ULID_LEN + 1] = "";
        if (k->mv_size == EVR_STORE_KEYLEN && v->mv_size == 8)
            memcpy(id, kp, EVR_ULID_LEN);
        if (!id[0] || !evr_ulid_valid(id)) {
            if (vf->index_said++ < S_INDEX_SAID)
                s_report(vf->report, vf->arg, "by_job: an entry of a %zu-byte key and a "
                         "%zu-byte value, not a job's event", k->mv_size, v->mv_size);
            vf->out->differences++;
            vf->index_x = NULL;
            return EVR_OK;
        }
        memcpy(vf->index_id, id, sizeof vf->index_id);
        vf->index_x = s_idx(vf->rb, id, false);
        vf->index_none = !vf->index_x || !vf->index_x->n;
        if (!vf->index_x)
            vf->index_x = &vf->index_dummy;
    }
    uint64_t seq = evr_store_get64(v->mv_data);
    s_idx_t *x = vf->index_x;
    if (seq > vf->upto || x->skip)
        return EVR_OK;  /* appended while checking; a compacted job's */
    uint32_t jseq = (uint32_t) kp[26] << 24 | (uint32_t) kp[27] << 16
                  | (uint32_t) kp[28] << 8 | kp[29];
    if (vf->index_none) {
        if (vf->index_said++ < S_INDEX_SAID)
            s_report(vf->report, vf->arg, "by_job: job %s jseq %u points to seq %llu, but the "
                     "log holds no event of job %s", vf->index_id, jseq,
                     (unsigned long long) seq, vf->index_id);
        vf->out->differences++;
        return EVR_OK;
    }
    x->in++;
    x->inmix += s_mix(jseq, seq);
    return EVR_OK;
}

/*  Each compared job's by_job entries against its events in the log. */
static void
s_verify_index_jobs(s_verify_t *v)
{
    for (s_idx_t *x = zhashx_first(v->rb->idx); x; x = zhashx_next(v->rb->idx)) {
        if (!x->compare || (x->in == x->n && x->inmix == x->mix))
            continue;
        const char *id = zhashx_cursor(v->rb->idx);
        if (x->in != x->n)
            s_report(v->report, v->arg, "job %s: the by_job index has %llu entries of it, the "
                     "log %llu events", id, (unsigned long long) x->in,
                     (unsigned long long) x->n);
        else
            s_report(v->report, v->arg, "job %s: the by_job index points to other seqs than "
                     "those of its events in the log", id);
        v->out->differences++;
    }
}

static int
s_index_open(const evr_job_t *job, void *arg)
{
    zhashx_insert(arg, job->id, (void *) 1);
    return 0;
}

/*  The seq of the log's last event and meta's last_seq, read in one
    transaction: every append writes both in one, so the first is never
    above the second (retention may take the last events, never put one
    past last_seq).  *ahead is the last event's seq when it is above. */
static evr_rc_t
s_log_past_meta(evr_store_t *store, uint64_t *ahead, uint64_t *meta, evr_err_t *err)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    *ahead = *meta = 0;
    evr_rc_t erc = evr_store_read_begin(store, store->events, &txn, &cur, err);
    if (erc)
        return erc;
    MDB_val k, v, mk = { 8, "last_seq" }, mv;
    int rc = mdb_get(txn, store->meta, &mk, &mv);
    if (rc == 0 && mv.mv_size == 8)
        *meta = evr_store_get64(mv.mv_data);
    else if (rc != MDB_NOTFOUND)
        erc = rc ? evr_store_mdb_err(err, "mdb_get last_seq", rc)
                 : evr_err_set(err, EVR_ERR_STORE, "store: meta last_seq has %zu bytes",
                               mv.mv_size);
    rc = erc ? 0 : mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc && rc != MDB_NOTFOUND)
        erc = evr_store_mdb_err(err, "mdb_cursor_get events", rc);
    else if (!erc && !rc && k.mv_size == 8 && evr_store_get64(k.mv_data) > *meta)
        *ahead = evr_store_get64(k.mv_data);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return erc;
}

static int
s_found(const evr_event_t *ev, void *arg)
{
    (void) ev;
    *(bool *) arg = true;
    return 1;
}

/*  True when retention removed job while the check ran: the last event
    of it that the rebuild read is no longer in the log (a job that lost
    only its projection keeps its events). */
static bool
s_pruned_meanwhile(evr_store_t *store, const evr_job_t *job)
{
    bool found = false;
    evr_err_t ignored;
    if (!job->last_seq
        || evr_store_scan(store, job->last_seq, job->last_seq, s_found, &found, &ignored))
        return false;
    return !found;
}

evr_rc_t
evr_rebuild_verify(evr_store_t *store, evr_rebuild_report_fn *report, void *arg,
                   evr_rebuild_verify_t *out, evr_err_t *err)
{
    memset(out, 0, sizeof *out);
    /* a damaged page would crash the walks below: said, and none done */
    static const char *const dbs[] = { "events", "by_job", "jobs", "open", "meta", "kv" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(dbs); i++) {
        bool ok;
        char what[256];
        evr_rc_t crc = evr_store_check_db(store, dbs[i], &ok, what, sizeof what, err);
        if (crc)
            return crc;
        if (!ok) {
            s_report(report, arg, "%s: %s: the database is damaged (LMDB would read past "
                     "its pages); not read", dbs[i], what);
            out->differences++;
        }
    }
    bool ok;
    char what[256];
    evr_rc_t crc = evr_store_check_core(store, true, &ok, what, sizeof what, err);
    if (crc)
        return crc;
    if (!ok) {  /* the next write that reuses pages, or a compacting copy, would crash */
        s_report(report, arg, "%s: LMDB's own tree is damaged", what);
        out->differences++;
    }
    if (out->differences)
        return EVR_OK;
    s_verify_t v = { .out = out, .report = report, .arg = arg, .seen = zhashx_new(),
                     .open = zhashx_new() };
    evr_prune_meta_t pm, pm2;
    evr_rc_t rc = evr_store_pruned(store, &pm, err);
    if (rc == EVR_OK)
        rc = evr_store_last_seq(store, &v.upto, err);
    if (rc == EVR_OK)
        rc = evr_store_open_jobs(store, s_index_open, v.open, err);
    if (rc == EVR_OK && v.upto)
        rc = s_rebuild(store, v.upto, true, report, arg, &v.rb, err);
    if (rc == EVR_OK && v.rb) {
        out->events = v.rb->events;
        out->differences += v.rb->illegal;
        rc = evr_store_walk(store, store->jobs, "jobs", NULL, 0, s_verify_raw, &v, err);
    }
    if (rc == EVR_OK && v.rb)
        rc = evr_store_walk(store, store->by_job, "by_job", NULL, 0, s_verify_index, &v, err);
    if (rc == EVR_OK && v.rb) {
        /* a prune while checking changes the count: then the jobs it
           removed after the rebuild read their events are no difference,
           nor the log's count of events or its gaps */
        bool counted = evr_store_pruned(store, &pm2, err) == EVR_OK && pm2.events == pm.events;
        for (size_t i = 0; i < evr_rebuild_count(v.rb); i++) {
            const evr_job_t *j = evr_rebuild_at(v.rb, i);
            if (zhashx_lookup(v.seen, j->id))
                continue;
            if (!counted && s_pruned_meanwhile(store, j)) {   /* read in part, too */
                out->changed++;
                continue;
            }
            s_report(report, arg, "job %s: in the log, but no projection is stored", j->id);
            out->differences++;
        }
        out->pruned = pm.jobs;
        if (counted)    /* else a job removed while checking lacks its entries */
            s_verify_index_jobs(&v);
        if (out->compacted == 0 && pm.events && counted
            && v.rb->events + pm.events != v.upto) {
            s_report(report, arg, "seq: meta says the last seq is %llu; the log holds %llu "
                     "events and retention removed %llu", (unsigned long long) v.upto,
                     (unsigned long long) v.rb->events, (unsigned long long) pm.events);
            out->differences++;
        }
        if (out->compacted == 0 && !pm.events && counted) {
            if (v.rb->gaps) {
                s_report(report, arg, "seq: %llu gaps in the event sequence",
                         (unsigned long long) v.rb->gaps);
                out->differences++;
            }
            if (v.rb->last_seq != v.upto || v.rb->events != v.upto) {
                s_report(report, arg, "seq: meta says the last seq is %llu; the log holds %llu "
                         "events ending at %llu", (unsigned long long) v.upto,
                         (unsigned long long) v.rb->events,
                         (unsigned long long) v.rb->last_seq);
                out->differences++;
            }
        }
    }
    /* events past meta's last_seq: the walks above stop at it, so they
       are not seen there, and every append would fail (MDB_KEYEXIST) */
    uint64_t ahead = 0, meta = 0;
    if (rc == EVR_OK)
        rc = s_log_past_meta(store, &ahead, &meta, err);
    if (rc == EVR_OK && ahead) {
        s_report(report, arg, "seq: meta says the last seq is %llu, but the log holds events "
                 "up to seq %llu (the events after it were not checked; a writer would fail "
                 "to append at %llu): the store is damaged; restore it from a backup",
                 (unsigned long long) meta, (unsigned long long) ahead,
                 (unsigned long long) meta + 1);
        out->differences++;
    }
    evr_rebuild_destroy(&v.rb);
    zhashx_destroy(&v.seen);
    zhashx_destroy(&v.open);
    return rc;
}
