/*  evr_qcommit.c: the commit of the staged submits (evr_queue.c stages
    them): their records appended to the submit journal in one write,
    flushed with one fdatasync, then answered; and the checkpoint that
    writes the journaled records into the store's queue table. */
#include <stdlib.h>
#include <string.h>

#include "evr_broker_int.h"

#define S_IDLE_CKPT_NS 100000000ull     /* submits paused this long: a checkpoint */
#define S_LINGER_NS 300000ull           /* after a commit: evr_queue_linger */
#define S_CKPT_BYTES (1u << 20)         /* a journal this full: a checkpoint (one commit of
                                           ~4000 small records: a few ms) */

/*  Answers the n submits of batch and empties it: `accepted` (each job
    joins the queue, its record now journaled), or when rc an error with
    code and err's message. */
static void
s_answer(evr_broker_t *b, evr_queue_staged_t *batch, size_t n, evr_rc_t rc, const char *code,
         const evr_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        evr_queue_staged_t *st = &batch[i];
        if (rc) {   /* no rid: a submit of the broker's own, logged */
            if (st->rid)
                evr_bus_send_error(b->clients, st->rid, code, "%s", err->msg);
            else
                evr_broker_error(b, "job %s not queued: %s", st->job->id, err->msg);
            evr_queue_free(st->job);
            free(st->rec);
        }
        else {
            evr_queue_add(b, st->job);
            evr_queue_pending_add(b, st->job->id, st->rec, st->len);
            evr_msg_t ok = { .type = EVR_MSG_ACCEPTED, .job = st->job->id,
                             .message = st->note };
            if (st->rid)
                evr_bus_send(b->clients, st->rid, &ok, NULL);
            evr_broker_info(b, "job %s (%s) queued", st->job->id, st->job->pipeline);
        }
        zframe_destroy(&st->rid);
        free(st->note);
        *st = (evr_queue_staged_t) { 0 };
    }
}

/*  Appends the staged submits to the journal (one write), flushes it (one
    fdatasync) and answers them. */
static void
s_commit(evr_broker_t *b)
{
    size_t n = b->nstaged;
    if (!n)
        return;
    evr_err_t err;
    evr_rc_t rc = EVR_OK;
    const char *code = EVR_CODE_INTERNAL;
    if (b->failure) {   /* failed since they were staged: they are not written */
        code = EVR_CODE_UNAVAILABLE;
        rc = evr_err_set(&err, EVR_ERR_STORE, "the broker's store failed: %s", b->failmsg);
    }
    else {
        for (size_t i = 0; i < n; i++) {
            uint64_t seq;
            uint8_t *p = evr_journal_add(b->journal, EVR_ULID_LEN + b->staged[i].len, &seq);
            memcpy(p, b->staged[i].job->id, EVR_ULID_LEN);
            memcpy(p + EVR_ULID_LEN, b->staged[i].rec, b->staged[i].len);
        }
        rc = evr_journal_write(b->journal, &err);
        if (!rc && b->test_delay_ms)   /* written, not flushed: the tests' kill lands here */
            zclock_sleep((int) b->test_delay_ms);
        if (!rc)
            rc = evr_journal_sync(b->journal, &err);
        if (rc)
            evr_broker_fail(b, &err);
    }
    evr_broker_debug(b, "%zu submit%s in one commit%s", n, n == 1 ? "" : "s",
                     rc ? ": failed" : "");
    b->nawaited = 0;
    for (size_t i = 0; i < n; i++)
        if (b->staged[i].rid)
            b->awaited[b->nawaited++] = b->staged[i].rid_hash;
    s_answer(b, b->staged, n, rc, code, &err);
    b->nstaged = 0;
    b->staged_bytes = 0;
    b->last_commit = evr_mono_ns();
}

void
evr_queue_flush(evr_broker_t *b)
{
    s_commit(b);
    evr_err_t err;      /* a lazy commit of the store's (a schedule's record, a trigger's) */
    if (evr_store_sync(b->store, &err))
        evr_broker_fail(b, &err);
}

void
evr_queue_turn_end(evr_broker_t *b)
{
    bool committing = b->nstaged > 0;
    evr_queue_flush(b);
    if (b->npending && !b->test_no_ckpt && (evr_journal_used(b->journal) >= S_CKPT_BYTES
                        || (!committing && evr_mono_ns() - b->last_commit >= S_IDLE_CKPT_NS)))
        evr_queue_checkpoint(b);
}

/*  A turn's submits wait for those of the clients the last commit
    answered, 0.3 ms after it at most: 32 closed-loop clients otherwise
    split into two cohorts, the one read while the other's flush runs, and
    the broker flushed twice as often (~17 submits a flush instead of
    ~28).  One client, or clients that come back within the first drain,
    are not waited for. */
uint64_t
evr_queue_linger(const evr_broker_t *b)
{
    if (!b->nstaged || !b->nawaited || b->nstaged == EVR_QUEUE_BATCH)
        return 0;
    return b->last_commit + S_LINGER_NS;
}
