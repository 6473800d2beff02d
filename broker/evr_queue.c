/*  evr_queue.c: the broker's durable queue (its dispatch: evr_qdispatch.c).

    A submitted job is a record "q/<job>" in the store's key-value table,
    written (and synced) before `accepted` is answered: state (queued,
    held, dispatched), creation time, the runner it is dispatched to, the
    runners it was sent to before (evr_queue_was_sent: a restarted broker
    takes a late job.accepted of one of them as the broker before it
    would have), a cancel asked while it is dispatched (answered `ok`
    once written, a queue.interrupt's before the interrupting submit is
    journaled: a restarted broker carries it out), and the submit
    message with its args bound.  Dispatch writes the assignment
    before it sends `dispatch`, so after a crash the broker knows which
    runner may hold a job and gives it to no other until that runner has
    resent its log (evr_queue_requeue).  The record is deleted once the
    broker holds the job's job.accepted (a pending cancel sent to the
    runner first); at start, a record whose job the archive already knows
    is such a leftover and is deleted then, its pending cancel held for
    the runner (evr_policy_hold: sent again when it is back).  The
    submit time outlives the record: deleting "q/<job>" writes
    "c/<job>" (decimal ns) in the same transaction, so a job's `created`
    is its submit time for good (evr_queue_created).

    Submits are group-committed through a journal: those of one turn are
    staged (checked, their records made), appended to the submit journal
    (store/evr_journal.h, STORE/submits.journal) in one write, flushed with
    one fdatasync, and answered then.  Their records reach the store's
    table later, without a flush of their own: in the synced commit of
    the next write of the queue table (a dispatch, a pause, a job leaving
    the queue), or of a checkpoint once the journal holds 1 MiB or the
    submits pause.  That commit also sets "journal/submits" to the
    journal's last seq, after which the journal is written from its start
    again.  At start, the journal's records newer than that seq are
    written into the table first (evr_queue_load).  So an acknowledged
    submit is on disk in the journal or in the store, and one flush
    answers a whole turn of submits (LMDB needs two: its pages, then its
    meta page).
*/
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "evr_broker_int.h"

#define S_REC_VERSION 2     /* 1: no history, no cancel pending (read, and written then) */
#define S_CKPT_KEY "journal/submits"    /* the journal's last seq the table holds */

void
evr_queue_init(evr_broker_t *b)
{
    evr_queue_index_init(b);
    const char *delay = getenv("EVR_TEST_SUBMIT_DELAY_MS");
    b->test_delay_ms = delay ? (uint32_t) strtoul(delay, NULL, 10) % 60000 : 0;
    delay = getenv("EVR_TEST_ACCEPT_DELAY_MS");
    b->test_accept_delay_ms = delay ? (uint32_t) strtoul(delay, NULL, 10) % 60000 : 0;
    const char *hold = getenv("EVR_TEST_NO_CHECKPOINT");
    b->test_no_ckpt = hold && *hold == '1';
}

void
evr_queue_fini(evr_broker_t *b)
{
    if (b->store && !b->failure)
        evr_queue_checkpoint(b);        /* a clean stop leaves the journal taken up */
    for (size_t i = 0; i < b->nstaged; i++) {
        evr_queue_free(b->staged[i].job);
        zframe_destroy(&b->staged[i].rid);
        free(b->staged[i].rec);
        free(b->staged[i].note);
    }
    b->nstaged = 0;
    for (size_t i = 0; i < b->npending; i++)
        free(b->pending[i].rec);
    free(b->pending);
    b->pending = NULL;
    b->npending = 0;
    evr_journal_destroy(&b->journal);
    evr_queue_index_fini(b);
}

void
evr_queue_free(evr_queue_job_t *j)
{
    if (!j)
        return;
    free(j->pipeline);
    free(j->runner);
    free(j->cancel_reason);
    free(j->partition);
    free(j->body);
    evr_strlist_free(&j->labels);
    for (size_t i = 0; i < EVR_QUEUE_SENT_MAX; i++)
        free(j->sent[i]);
    free(j);
}

void
evr_queue_note_sent(evr_queue_job_t *j, const char *runner)
{
    if (evr_queue_was_sent(j, runner))
        return;
    free(j->sent[EVR_QUEUE_SENT_MAX - 1]);
    memmove(j->sent + 1, j->sent, (EVR_QUEUE_SENT_MAX - 1) * sizeof *j->sent);
    j->sent[0] = evr_strdup(runner);
}

bool
evr_queue_was_sent(const evr_queue_job_t *j, const char *runner)
{
    for (size_t i = 0; i < EVR_QUEUE_SENT_MAX && j->sent[i]; i++)
        if (strcmp(j->sent[i], runner) == 0)
            return true;
    return false;
}

static bool
s_has_label(const evr_strlist_t *l, const char *s)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

/*  Copies the job id id (cut to a ULID's length) into to (snprintf's
    parsing of "%s" costs more than the rest of a submit's bookkeeping). */
static void
s_id_copy(char to[EVR_ULID_LEN + 1], const char *id)
{
    size_t n = strnlen(id, EVR_ULID_LEN);
    memcpy(to, id, n);
    to[n] = '\0';
}

/*  A job of submit (read, not kept), holding body (blen bytes: submit
    encoded; taken). */
static evr_queue_job_t *
s_job_new(const char *id, const evr_msg_t *submit, uint64_t created, uint8_t *body, size_t blen)
{
    evr_queue_job_t *j = evr_calloc(1, sizeof *j);
    s_id_copy(j->id, id);
    j->body = body;
    j->blen = blen;
    j->concurrency = submit->spec->concurrency;
    j->created = created;
    j->pipeline = evr_strdup(submit->spec->pipeline);
    /* the end of its start_delay follows from the record's submit time:
       a restarted broker honours it as it was */
    if (submit->spec->start_delay)
        j->not_before = evr_add_sat(created, evr_ms_to_ns(submit->spec->start_delay));
    const char *part = evr_spec_queue_partition(submit->spec, &submit->args);
    j->partition = part ? evr_strdup(part) : NULL;
    j->partition_read = true;
    const evr_strlist_t *ls[2] = { &submit->spec->labels, &submit->labels };
    for (int k = 0; k < 2; k++)
        for (uint32_t i = 0; i < ls[k]->n; i++)
            if (!s_has_label(&j->labels, ls[k]->v[i]))
                evr_strlist_push(&j->labels, ls[k]->v[i]);
    /* its executor's too (executor:podman, executor:process): a job only
       where its executor is offered, host commands only where the operator
       chose them */
    const char *implied = evr_spec_executor_label(submit->spec);
    if (implied)
        evr_strlist_push(&j->labels, implied);
    return j;
}

/* ------------------------------------------------------------ records */

/*  A record: version, state, creation time (u64 big-endian), the
    runner's length and bytes; version 2 then the count of runners it was
    sent to (newest first) and each one's length and bytes, and 1 when a
    cancel is pending, 2 when it was asked twice (a forced cancel) (then
    its reason's length, u16 big-endian, and bytes; 0: none), else 0;
    then the submit message.  Version 1 (no
    history, no cancel pending) is written while a job has neither, so a
    record stays readable by a broker before version 2 as long as it can. */
#define S_HEAD 11

/*  j's history as written in its record: the count of its runners and
    their bytes in all (each at most 255 bytes: a runner id is 64). */
static size_t
s_sent_count(const evr_queue_job_t *j, size_t *bytes)
{
    size_t n = 0;
    *bytes = 0;
    for (size_t i = 0; i < EVR_QUEUE_SENT_MAX && j->sent[i]; i++)
        if (strlen(j->sent[i]) <= 255) {
            *bytes += 1 + strlen(j->sent[i]);
            n++;
        }
    return n;
}

/*  j's record around body (blen bytes: its submit message encoded; borrowed). */
static void
s_record_of(const evr_queue_job_t *j, const uint8_t *body, size_t blen, uint8_t **out,
            size_t *len)
{
    size_t rl = j->runner ? strlen(j->runner) : 0, sl;
    size_t ns = s_sent_count(j, &sl);
    size_t cl = j->cancel_reason ? strnlen(j->cancel_reason, UINT16_MAX) : 0;
    bool v2 = ns || j->cancel_pending;
    size_t hl = S_HEAD + rl + (v2 ? 1 + sl + 1 + (j->cancel_pending ? 2 + cl : 0) : 0);
    *len = hl + blen;
    uint8_t *p = *out = evr_malloc(*len);
    p[0] = v2 ? S_REC_VERSION : 1;
    p[1] = (uint8_t) j->state;
    uint64_t c = j->created;
    for (int i = 9; i >= 2; i--, c >>= 8)
        p[i] = (uint8_t) c;
    p[10] = (uint8_t) rl;
    if (rl)
        memcpy(p + S_HEAD, j->runner, rl);
    if (v2) {
        uint8_t *q = p + S_HEAD + rl;
        *q++ = (uint8_t) ns;
        for (size_t i = 0; i < EVR_QUEUE_SENT_MAX && j->sent[i]; i++) {
            size_t l = strlen(j->sent[i]);
            if (l > 255)
                continue;
            *q++ = (uint8_t) l;
            memcpy(q, j->sent[i], l);
            q += l;
        }
        *q++ = j->cancel_pending ? 1 + j->cancel_force : 0;   /* 2: a second cancel too */
        if (j->cancel_pending) {
            *q++ = (uint8_t) (cl >> 8);
            *q++ = (uint8_t) cl;
            memcpy(q, j->cancel_reason, cl);
        }
    }
    memcpy(p + hl, body, blen);
}

static void
s_record(const evr_queue_job_t *j, uint8_t **out, size_t *len)
{
    s_record_of(j, j->body, j->blen, out, len);
}

#define S_SUBMIT_HDR "evrun1 submit"

evr_msg_t *
evr_queue_submit_of(const evr_broker_t *b, const evr_queue_job_t *j)
{
    if (!j->body)
        return NULL;
    evr_msg_t *m = evr_msg_new(EVR_MSG_SUBMIT);
    evr_err_t err;
    const char *code;
    if (evr_msg_decode(S_SUBMIT_HDR, sizeof S_SUBMIT_HDR - 1, j->body, j->blen, m, &code,
                       &err)) {
        evr_broker_warn(b, "job %s: its submit does not decode: %s", j->id, err.msg);
        evr_msg_destroy(&m);
    }
    return m;
}

/*  What a record of version 2 adds: the runners it was sent to (n,
    pointers into the record and their lengths, oldest last) and a
    pending cancel (its reason: cancel, clen bytes; cancel NULL: none). */
typedef struct {
    const uint8_t *sent[EVR_QUEUE_SENT_MAX];
    size_t sl[EVR_QUEUE_SENT_MAX], n;
    const uint8_t *cancel;
    size_t clen;
    bool force;     /* the cancel asked twice: it goes with force */
} s_extra_t;

/*  The length of the head of record p (len bytes) before its submit
    message, what version 2 adds in x; 0 when it does not fit in len. */
static size_t
s_head(const uint8_t *p, size_t len, s_extra_t *x)
{
    size_t at = S_HEAD + (size_t) p[10];
    memset(x, 0, sizeof *x);
    if (len < at)
        return 0;
    if (p[0] == 1)
        return at;
    if (len < at + 1 || p[at] > EVR_QUEUE_SENT_MAX)
        return 0;
    size_t count = p[at++];
    for (size_t i = 0; i < count; i++) {
        if (len < at + 1 || len < at + 1 + p[at] || !p[at])
            return 0;
        x->sent[i] = p + at + 1;
        x->sl[i] = p[at];
        at += 1 + x->sl[i];
    }
    x->n = count;
    if (len < at + 1 || p[at] > 2)
        return 0;
    x->force = p[at] == 2;
    if (!p[at++])
        return at;
    if (len < at + 2 || len < at + 2 + ((size_t) p[at] << 8 | p[at + 1]))
        return 0;
    x->clen = (size_t) p[at] << 8 | p[at + 1];
    x->cancel = p + at + 2;
    return at + 2 + x->clen;
}

/*  Decodes a record; NULL (with a logged reason) when it does not. */
static evr_queue_job_t *
s_unrecord(const evr_broker_t *b, const char *id, const uint8_t *p, size_t len)
{
    s_extra_t x;
    size_t at = 0;
    if (len >= S_HEAD && (p[0] == 1 || p[0] == S_REC_VERSION) && p[1] <= B_DISPATCHED)
        at = s_head(p, len, &x);
    if (!at) {
        evr_broker_warn(b, "queue record of %s unreadable: skipped", id);
        return NULL;
    }
    evr_msg_t tmp = { 0 };
    evr_err_t err;
    const char *code;
    size_t rl = p[10], blen = len - at;
    if (evr_msg_decode(S_SUBMIT_HDR, sizeof S_SUBMIT_HDR - 1, p + at, blen, &tmp, &code,
                       &err)) {
        evr_msg_clear(&tmp);
        evr_broker_warn(b, "queue record of %s: %s: skipped", id, err.msg);
        return NULL;
    }
    uint64_t created = 0;
    for (int i = 2; i <= 9; i++)
        created = (created << 8) | p[i];
    uint8_t *body = evr_malloc(blen ? blen : 1);
    memcpy(body, p + at, blen);
    evr_queue_job_t *j = s_job_new(id, &tmp, created, body, blen);
    evr_msg_clear(&tmp);
    j->state = (evr_queue_state_t) p[1];
    if (rl)
        j->runner = evr_strndup((const char *) p + S_HEAD, rl);
    for (size_t i = x.n; i-- > 0;) {   /* oldest first: note_sent puts each at the head */
        char *r = evr_strndup((const char *) x.sent[i], x.sl[i]);
        evr_queue_note_sent(j, r);
        free(r);
    }
    if (x.cancel) {
        j->cancel_pending = true;
        j->cancel_force = x.force;
        j->cancel_reason = x.clen ? evr_strndup((const char *) x.cancel, x.clen) : NULL;
    }
    if (j->state == B_DISPATCHED && !j->runner)
        j->state = B_QUEUED;
    else if (j->state == B_DISPATCHED)
        evr_queue_note_sent(j, j->runner);     /* it may have been sent before the stop */
    return j;
}

evr_queue_job_t *
evr_queue_new(evr_msg_t *submit, uint64_t created)
{
    uint8_t *body;
    size_t blen;
    evr_msg_encode(submit, &body, &blen);
    evr_queue_job_t *j = s_job_new(submit->job, submit, created, body, blen);
    evr_msg_destroy(&submit);
    return j;
}

void
evr_queue_add(evr_broker_t *b, evr_queue_job_t *j)
{
    evr_queue_append(b, j);
    if (!b->fresh)
        b->fresh = j;
}

void
evr_queue_record(const evr_queue_job_t *j, char key[EVR_ULID_LEN + 3], uint8_t **val, size_t *len)
{
    snprintf(key, EVR_ULID_LEN + 3, "q/%s", j->id);
    s_record(j, val, len);
}

/*  The submit time of a job that left the queue: key "c/<job>", value in
    decimal (keys and buffers sized by the caller). */
static void
s_created_op(const evr_queue_job_t *j, char key[EVR_ULID_LEN + 3], char val[24], evr_store_kv_t *op)
{
    snprintf(key, EVR_ULID_LEN + 3, "c/%s", j->id);
    snprintf(val, 24, "%llu", (unsigned long long) j->created);
    *op = (evr_store_kv_t) { key, val, strlen(val) };
}

/*  The journaled records the table lacks, then the checkpoint, as
    operations into ops and keys (room for npending + 1); their count. */
static size_t
s_pending_ops(const evr_broker_t *b, evr_store_kv_t *ops, char (*keys)[EVR_ULID_LEN + 3],
              char seq[24])
{
    if (!b->npending)
        return 0;
    size_t k = 0;
    for (; k < b->npending; k++) {
        memcpy(keys[k], "q/", 2);
        s_id_copy(keys[k] + 2, b->pending[k].id);
        ops[k] = (evr_store_kv_t) { keys[k], b->pending[k].rec, b->pending[k].len };
    }
    snprintf(seq, 24, "%llu", (unsigned long long) evr_journal_seq(b->journal));
    ops[k++] = (evr_store_kv_t) { S_CKPT_KEY, seq, strlen(seq) };
    return k;
}

/*  After a synced commit of s_pending_ops: the table holds every
    journaled record, the journal starts over. */
static void
s_pending_done(evr_broker_t *b)
{
    if (!b->npending)
        return;
    evr_broker_debug(b, "submit journal: %zu record%s written into the store (up to record "
                     "%llu); the journal starts over", b->npending, b->npending == 1 ? "" : "s",
                     (unsigned long long) evr_journal_seq(b->journal));
    for (size_t i = 0; i < b->npending; i++)
        free(b->pending[i].rec);
    b->npending = 0;
    evr_journal_rewind(b->journal);
}

/*  Takes rec (len bytes, owned now) of job id as journaled. */
void
evr_queue_pending_add(evr_broker_t *b, const char *id, uint8_t *rec, size_t len)
{
    if (b->npending == b->pending_cap) {
        b->pending_cap = b->pending_cap ? b->pending_cap * 2 : 256;
        b->pending = evr_realloc(b->pending, b->pending_cap * sizeof *b->pending);
    }
    evr_queue_pending_t *p = &b->pending[b->npending++];
    s_id_copy(p->id, id);
    p->rec = rec;
    p->len = len;
}

evr_rc_t
evr_queue_persist(evr_broker_t *b, evr_queue_job_t *const *jobs, size_t n, evr_err_t *err)
{
    /* the journaled records first (a later op of the same job overrides
       its); per job: its record (or its deletion), and "c/<job>" when it
       leaves */
    size_t max = b->npending + 1 + 3 * n + 1;
    evr_store_kv_t *ops = evr_calloc(max, sizeof *ops);
    char (*keys)[EVR_ULID_LEN + 3] = evr_calloc(max, sizeof *keys);
    char (*times)[24] = evr_calloc(n + 1, sizeof *times);
    uint8_t **bufs = evr_calloc(n + 1, sizeof *bufs);
    char seq[24];
    size_t k = s_pending_ops(b, ops, keys, seq);
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[k], sizeof keys[k], "q/%s", jobs[i]->id);
        ops[k].key = keys[k];
        if (jobs[i]->state != B_ACTIVE) {
            s_record(jobs[i], &bufs[i], &ops[k].len);
            ops[k].val = bufs[i];
        }
        else {
            if (jobs[i]->created) {
                k++;
                s_created_op(jobs[i], keys[k], times[i], &ops[k]);
            }
            if (jobs[i]->kept && jobs[i]->body) {
                k++;
                snprintf(keys[k], sizeof keys[k], EVR_QUEUE_KEPT "%s", jobs[i]->id);
                ops[k] = (evr_store_kv_t) { keys[k], jobs[i]->body, jobs[i]->blen };
            }
        }
        k++;
    }
    evr_rc_t rc = evr_store_kv_write(b->store, ops, k, err);
    if (rc == EVR_OK)
        s_pending_done(b);
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(times);
    free(keys);
    free(ops);
    return rc;
}

/*  Writes the journaled records into the table (one synced commit), the
    journal starts over; a failure stops the broker. */
void
evr_queue_checkpoint(evr_broker_t *b)
{
    if (!b->npending || b->failure)
        return;
    evr_err_t err;
    if (evr_queue_persist(b, NULL, 0, &err))
        evr_broker_fail(b, &err);
}

uint64_t
evr_queue_created(evr_broker_t *b, const char *id, uint64_t fallback)
{
    char key[EVR_ULID_LEN + 3], val[24];
    evr_err_t err;
    snprintf(key, sizeof key, "c/%s", id);
    if (evr_store_kv_get(b->store, key, val, sizeof val, &err))
        return fallback;
    char *end;
    unsigned long long ns = strtoull(val, &end, 10);
    return end != val && !*end ? (uint64_t) ns : fallback;
}

/* --------------------------------------------------------------- load */

typedef struct {
    evr_broker_t *b;
    evr_rc_t rc;
    evr_err_t *err;
} s_load_t;

static int
s_load_one(const char *key, const uint8_t *val, size_t len, void *arg)
{
    s_load_t *ld = arg;
    const char *id = key + 2;
    if (!evr_ulid_valid(id))
        return 0;
    evr_queue_job_t *j = s_unrecord(ld->b, id, val, len);
    if (j)
        evr_queue_append(ld->b, j);
    return 0;
}

static int
s_load_open(const evr_job_t *job, void *arg)
{
    s_load_t *ld = arg;
    if (evr_queue_find(ld->b, job->id))
        return 0;
    evr_queue_job_t *j = evr_calloc(1, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", job->id);
    j->pipeline = evr_strdup(job->pipeline ? job->pipeline : "");
    j->runner = job->runner ? evr_strdup(job->runner) : NULL;
    j->state = B_ACTIVE;
    j->created = job->created;
    evr_queue_append(ld->b, j);
    return 0;
}

/*  A journal record: the job's id, then its record "q/<job>". */
static int
s_replay_one(uint64_t seq, const uint8_t *data, size_t len, void *arg)
{
    evr_broker_t *b = arg;
    char id[EVR_ULID_LEN + 1] = "";
    if (len > EVR_ULID_LEN)
        memcpy(id, data, EVR_ULID_LEN);
    if (!evr_ulid_valid(id)) {  /* whole (its CRC matched), so written by a broker */
        evr_broker_warn(b, "submit journal: record %llu holds no job: skipped",
                        (unsigned long long) seq);
        return 0;
    }
    uint8_t *rec = evr_malloc(len - EVR_ULID_LEN);
    memcpy(rec, data + EVR_ULID_LEN, len - EVR_ULID_LEN);
    evr_queue_pending_add(b, id, rec, len - EVR_ULID_LEN);
    return 0;
}

/*  Damage inside the journal: the records after it were taken up, those
    in it are lost (acknowledged submits that will never run). */
static void
s_journal_gap(uint64_t off, uint64_t bytes, uint64_t first, uint64_t last, void *arg)
{
    evr_broker_t *b = arg;
    char seqs[48];
    if (first == last)
        snprintf(seqs, sizeof seqs, "record %llu", (unsigned long long) first);
    else
        snprintf(seqs, sizeof seqs, "records %llu..%llu", (unsigned long long) first,
                 (unsigned long long) last);
    evr_broker_error(b, "submit journal %s/submits.journal: %llu damaged bytes at offset %llu "
                     "(a disk or a copy damaged them, not a crash): the acknowledged "
                     "submits of %s are lost, their jobs not queued; the records after them "
                     "were taken up", b->opts.store_dir, (unsigned long long) bytes,
                     (unsigned long long) off, seqs);
}

/*  Opens the submit journal and writes its records newer than the
    table's checkpoint into the table (synced); the journal starts over. */
static evr_rc_t
s_journal_load(evr_broker_t *b, evr_err_t *err)
{
    char *path = evr_asprintf("%s/submits.journal", b->opts.store_dir);
    evr_rc_t rc = evr_journal_open(path, b->opts.nosync, &b->journal, err);
    free(path);
    if (rc)
        return rc;
    char val[24];
    evr_err_t e2;
    uint64_t after = 0, last;
    if (evr_store_kv_get(b->store, S_CKPT_KEY, val, sizeof val, &e2) == EVR_OK)
        after = strtoull(val, NULL, 10);
    if ((rc = evr_journal_replay(b->journal, after, s_replay_one, s_journal_gap, b, &last, err)))
        return rc;
    if (!b->npending)
        return EVR_OK;
    evr_broker_info(b, "submit journal: %zu acknowledged submit%s taken up (up to record %llu)",
                    b->npending, b->npending == 1 ? "" : "s", (unsigned long long) last);
    return evr_queue_persist(b, NULL, 0, err);
}

evr_rc_t
evr_queue_load(evr_broker_t *b, evr_err_t *err)
{
    s_load_t ld = { b, EVR_OK, err };
    evr_rc_t rc = s_journal_load(b, err);
    if (!rc)
        rc = evr_store_kv_scan(b->store, "q/", s_load_one, &ld, err);
    if (rc)
        return rc;
    /* Records of jobs the archive holds are leftovers of a crash between
       storing job.accepted and deleting the record: delete them now (the
       job is taken up from the archive's open index below). */
    for (evr_queue_job_t *j = b->jobs, *next; j; j = next) {
        next = j->next;
        evr_job_t pj = { 0 };
        evr_err_t e2;
        bool known = evr_store_get_job(b->store, j->id, &pj, &e2) == EVR_OK;
        evr_rec_free(&evr_job_type, &pj);
        if (!known)
            continue;
        /* a cancel asked while it was dispatched, maybe never sent: held
           for its runner (evr_policy_load takes it up; a second one sent
           the runner keeps the first) */
        if (j->cancel_pending && (rc = evr_policy_hold(b, j, err)))
            return rc;
        evr_queue_keep_if_retried(b, j);
        evr_queue_set_state(b, j, B_ACTIVE);    /* persisted as a deletion, keeping its
                                                   submit time */
        if ((rc = evr_queue_persist(b, &j, 1, err)))
            return rc;
        evr_queue_remove(b, j);
    }
    if ((rc = evr_store_open_jobs(b->store, s_load_open, &ld, err)))
        return rc;
    return evr_queue_load_kept(b, err);
}

/* ------------------------------------------------------------- submit */

/*  Whether two maps hold the same pairs in the same order. */
static bool
s_same_map(const evr_strmap_t *a, const evr_strmap_t *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (strcmp(a->k[i], b->k[i]) != 0 || strcmp(a->v[i], b->v[i]) != 0)
            return false;
    return true;
}

/*  Binds the submit's args to its spec (*same: they were already as
    bound); false with the reasons in why, each named after req (the
    request made: "submit", "start", "trigger", "schedule"). */
static bool
s_bind(evr_msg_t *msg, const char *req, bool *same, char *why, size_t len)
{
    if (!msg->spec->args.n && !msg->args.n) {   /* nothing to bind: no diag to make */
        *same = true;
        return true;
    }
    evr_diag_t *d = evr_diag_new(req);
    evr_strmap_t bound = { 0 };
    bool ok = evr_spec_bind_args(msg->spec, &msg->args, &bound, d) == EVR_OK;
    *same = ok && s_same_map(&msg->args, &bound);
    if (ok) {
        evr_strmap_free(&msg->args);
        msg->args = bound;
    }
    else {
        evr_strmap_free(&bound);
        /* whole reasons while they fit with room left for "; and N more" */
        char *all = evr_strdup("");
        size_t n = evr_diag_count(d), most = n < EVR_DIAG_MAX ? n : EVR_DIAG_MAX, kept = 0;
        size_t room = len - 1 > 64 ? len - 1 - 32 : len - 1;
        for (; kept < most; kept++) {
            const char *e = evr_diag_get(d, kept);
            if (kept && strlen(all) + 2 + strlen(e) > room)
                break;
            char *was = all;
            all = evr_asprintf("%s%s%s", was, kept ? "; " : "", e);
            free(was);
            if (!kept)
                evr_text_fit(all, room);
        }
        if (n > kept) {
            char *was = all;
            all = evr_asprintf("%s; and %zu more", was, n - kept);
            free(was);
        }
        evr_text_fit(all, len - 1);     /* on a character, "…" last */
        memcpy(why, all, strlen(all) + 1);
        free(all);
    }
    evr_diag_destroy(&d);
    return ok;
}

/*  The hashes of rid (0 when none) and job, compared first: a turn's
    staged submits are each asked about every one before them. */
static void
s_staged_hashes(zframe_t *rid, const char *job, uint64_t *rh, uint64_t *jh)
{
    *rh = rid ? evr_fnv1a(zframe_data(rid), zframe_size(rid)) | 1 : 0;
    *jh = evr_fnv1a(job, strlen(job));
}

/*  Whether a submit not answered yet came from rid or is of job: a submit
    after it waits for its commit, so that one connection's answers keep
    their order and a resent submit finds its job. */
static bool
s_staged_by(const evr_broker_t *b, zframe_t *rid, const char *job, uint64_t rh, uint64_t jh)
{
    for (size_t i = 0; i < b->nstaged; i++) {
        const evr_queue_staged_t *st = &b->staged[i];
        if ((rh && st->rid_hash == rh && zframe_eq(st->rid, rid))
            || (st->job_hash == jh && strcmp(st->job->id, job) == 0))
            return true;
    }
    return false;
}

bool
evr_queue_known(evr_broker_t *b, zframe_t *rid, const char *job)
{
    uint64_t rh, jh;
    s_staged_hashes(rid, job, &rh, &jh);
    if (s_staged_by(b, rid, job, rh, jh))
        evr_queue_flush(b);     /* its answers first, and a staged job of that id found */
    evr_err_t err;
    bool stored = false;    /* a store that fails to answer: not known */
    return evr_queue_find(b, job)
        || (evr_store_has_job(b->store, job, &stored, &err) == EVR_OK && stored);
}

/*  evr_queue_offer; wire (wlen bytes) the submit's body as received, or
    NULL; own, when not NULL, holds rid, taken (set NULL) when the submit
    is staged instead of copied; req names the request in refusals; note,
    when not NULL, is the `accepted` answer's message. */
static bool
s_offer(evr_broker_t *b, zframe_t *rid, zframe_t **own, evr_msg_t *msg, const char *req,
        const uint8_t *wire, size_t wlen, const char *note, bool *existing, const char **code,
        char *why, size_t len)
{
    *existing = false;
    uint64_t rh, jh;
    s_staged_hashes(rid, msg->job, &rh, &jh);
    if (s_staged_by(b, rid, msg->job, rh, jh))
        evr_queue_flush(b);
    /* its args bound first: a known id sent again with args that would
       not bind (a required one left out) is refused as a new one would be,
       not answered `existing` (PROTOCOL.md `submit`) */
    *code = EVR_CODE_BAD_REQUEST;
    bool same;
    if (!s_bind(msg, req, &same, why, len))
        return false;
    evr_err_t err;
    bool stored = false;    /* a store that fails to answer: as before, not known */
    *existing = evr_queue_find(b, msg->job)
             || (evr_store_has_job(b->store, msg->job, &stored, &err) == EVR_OK && stored);
    if (*existing)
        return true;
    *code = EVR_CODE_CONFLICT;  /* a retried submit of a job retention removed */
    if (evr_retention_refuses(b, req, msg->job, why, len))
        return false;
    *code = EVR_CODE_BAD_REQUEST;
    /* its record's body: the body as received when binding its args
       changed nothing (it decodes to msg, every key of it: see
       evr_bus_recv_wire), else msg encoded.  The spec is part of it, so a body
       within the spec's limit needs no look at the spec's own size; a
       received one within a quarter of it (an encoding of its own might
       be larger: a short form written out) neither. */
    uint8_t *body = NULL;
    size_t blen = wlen, fits = EVR_SPEC_MAX_BYTES / 4;
    if (!wire || !same) {
        evr_msg_encode(msg, &body, &blen);
        fits = EVR_SPEC_MAX_BYTES;
    }
    if (blen > fits && evr_spec_check_size(msg->spec, &err)) {
        *code = EVR_CODE_TOO_LARGE;     /* its job.accepted must fit in `events` */
        snprintf(why, len, "%s.spec: %s", req, err.msg);
        free(body);
        return false;
    }
    /* a copy: source is the submitter's directory: its tar comes along */
    const char *lacks = msg->spec->source.copy && !msg->source_tar.len ? "source"
                      : msg->spec->ci_source.copy && !msg->ci_source_tar.len ? "ci_source" : NULL;
    if (lacks) {
        snprintf(why, len, "%s.%s_tar: the spec's %s is copy: a directory, but the %s "
                 "carries no tar of it (evrun-cli sends it)", req, lacks, lacks, req);
        free(body);
        return false;
    }
    /* and only then: a tar nothing unpacks would be kept and sent on for
       nothing, up to 2 MiB a job */
    const char *extra = !msg->spec->source.copy && msg->source_tar.len ? "source"
                      : !msg->spec->ci_source.copy && msg->ci_source_tar.len ? "ci_source" : NULL;
    if (extra) {
        snprintf(why, len, "%s.%s_tar: the spec's %s is not copy: a directory, so nothing "
                 "would unpack this tar (leave %s_tar out)", req, extra, extra, extra);
        free(body);
        return false;
    }
    if (b->failure) {
        *code = EVR_CODE_UNAVAILABLE;
        snprintf(why, len, "the broker's store failed: %s", b->failmsg);
        free(body);
        return false;
    }
    if (!evr_policy_admit(b, msg, code, why, len)) {
        free(body);
        return false;
    }
    if (!body) {    /* the job keeps the body as received */
        body = evr_malloc(blen ? blen : 1);
        memcpy(body, wire, blen);
    }
    evr_queue_staged_t *st = &b->staged[b->nstaged++];
    st->job = s_job_new(msg->job, msg, evr_now_ns(), body, blen);
    evr_msg_clear(msg);     /* taken, as the job was made of it */
    msg->type = EVR_MSG_SUBMIT;
    st->rid = own && *own ? *own : rid ? zframe_dup(rid) : NULL;
    if (own)
        *own = NULL;
    for (size_t i = 0; rh && i < b->nawaited; i++)
        if (b->awaited[i] == rh) {
            b->awaited[i] = b->awaited[--b->nawaited];
            break;
        }
    st->rid_hash = rh;
    st->job_hash = jh;      /* msg->job is a ULID (s_check_ulid): the job's id, uncut */
    st->note = note ? evr_strdup(note) : NULL;
    s_record_of(st->job, body, blen, &st->rec, &st->len);
    b->staged_bytes += st->len;
    if (b->nstaged == EVR_QUEUE_BATCH || b->staged_bytes >= EVR_QUEUE_BATCH_BYTES)
        evr_queue_flush(b);
    return true;
}

bool
evr_queue_offer(evr_broker_t *b, zframe_t *rid, evr_msg_t *msg, const char *req,
                bool *existing, const char **code, char *why, size_t len)
{
    return s_offer(b, rid, NULL, msg, req, NULL, 0, NULL, existing, code, why, len);
}

/*  evr_queue_submit_wire; own, req and note as s_offer's. */
static void
s_submit(evr_broker_t *b, zframe_t *rid, zframe_t **own, evr_msg_t *msg, const char *req,
         const uint8_t *wire, size_t wlen, const char *note)
{
    const char *code;
    char why[EVR_MESSAGE_MAX + 1];
    bool existing;
    char job[EVR_ULID_LEN + 1];
    s_id_copy(job, msg->job);   /* msg is taken when staged */
    if (!s_offer(b, rid, own, msg, req, wire, wlen, note, &existing, &code, why, sizeof why))
        evr_bus_send_error(b->clients, rid, code, "%s", why);
    else if (existing) {
        evr_msg_t ok = { .type = EVR_MSG_ACCEPTED, .job = job, .existing = true };
        evr_bus_send(b->clients, rid, &ok, NULL);
    }
}

void
evr_queue_submit(evr_broker_t *b, zframe_t *rid, evr_msg_t *msg, const char *req,
                 const char *note)
{
    s_submit(b, rid, NULL, msg, req, NULL, 0, note);
}

void
evr_queue_submit_wire(evr_broker_t *b, zframe_t **rid, evr_msg_t *msg, const uint8_t *wire,
                      size_t wlen)
{
    s_submit(b, *rid, rid, msg, "submit", wire, wlen, NULL);
}

evr_rc_t
evr_queue_cancel_queued(evr_broker_t *b, evr_queue_job_t *j, const char *reason, evr_err_t *err)
{
    return evr_queue_end_unstarted(b, j, "cancelled", reason, err);
}

evr_rc_t
evr_queue_end_unstarted(evr_broker_t *b, evr_queue_job_t *j, const char *status,
                        const char *reason, evr_err_t *err)
{
    evr_event_t *ev[2] = { evr_event_new(EVR_EV_JOB_ACCEPTED),
                           evr_event_new(EVR_EV_JOB_FINISHED) };
    for (int i = 0; i < 2; i++)
        ev[i]->job = evr_strdup(j->id);
    ev[0]->data.pipeline = evr_strdup(j->pipeline);
    evr_msg_t *sub = evr_queue_submit_of(b, j);
    if (sub) {      /* its spec and args, taken */
        ev[0]->data.spec = sub->spec;
        sub->spec = NULL;
        ev[0]->data.args = sub->args;
        sub->args = (evr_strmap_t) { 0 };
        evr_msg_destroy(&sub);
    }
    else
        ev[0]->data.spec = evr_spec_new();
    ev[1]->data.status = evr_strdup(status);
    ev[1]->data.reason = evr_strdup(reason);
    evr_rc_t rc = evr_store_append(b->store, ev, 2, err);
    if (rc == EVR_OK) {
        for (int i = 0; i < 2; i++)
            evr_bus_publish_event(b->pub, ev[i], NULL);
        evr_queue_set_state(b, j, B_ACTIVE);    /* persisted as a deletion */
        evr_err_t e2;
        /* when this fails, the next start deletes it (the archive knows the job) */
        if (evr_queue_persist(b, &j, 1, &e2))
            evr_broker_warn(b, "job %s: queue record not deleted: %s", j->id, e2.msg);
        evr_broker_info(b, "job %s %s in the queue: %s", j->id, status, reason);
        evr_queue_remove(b, j);
    }
    else
        evr_broker_fail(b, err);
    for (int i = 0; i < 2; i++)
        evr_event_destroy(&ev[i]);
    return rc;
}
