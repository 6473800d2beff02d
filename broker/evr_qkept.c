/*  evr_qkept.c: the submits the broker keeps while their jobs run
    ("s/<job>", the body as recorded), for the jobs whose steps retry on
    lost: a job lost with its runner is queued again from its submit as
    sent, its source, labels and parent with it (evr_lease.c s_requeue).
    evr_queue_persist writes the record in the commit that takes the job
    out of the queue; it goes when the job ends, lazily, and a start
    deletes those of jobs no longer running. */
#include <stdlib.h>
#include <string.h>

#include "evr_broker_int.h"

typedef struct {
    const evr_broker_t *b;
    const char *id;
    evr_msg_t *m;
} s_kept_t;

static int
s_kept_one(const char *key, const uint8_t *val, size_t len, void *arg)
{
    s_kept_t *k = arg;
    if (strcmp(key + sizeof EVR_QUEUE_KEPT - 1, k->id) != 0)
        return 0;
    evr_queue_job_t tmp = { .body = (uint8_t *) val, .blen = len };
    snprintf(tmp.id, sizeof tmp.id, "%s", k->id);
    k->m = evr_queue_submit_of(k->b, &tmp);
    return 1;
}

evr_msg_t *
evr_queue_kept_submit(evr_broker_t *b, const char *id)
{
    char key[EVR_ULID_LEN + 3];
    snprintf(key, sizeof key, EVR_QUEUE_KEPT "%s", id);
    s_kept_t k = { b, id, NULL };
    evr_err_t err;
    if (evr_store_kv_scan(b->store, key, s_kept_one, &k, &err))
        evr_broker_warn(b, "job %s: its kept submit cannot be read: %s", id, err.msg);
    return k.m;
}

void
evr_queue_forget_kept(evr_broker_t *b, evr_queue_job_t *j)
{
    if (!j->kept)
        return;
    j->kept = false;
    char key[EVR_ULID_LEN + 3];
    snprintf(key, sizeof key, EVR_QUEUE_KEPT "%s", j->id);
    evr_store_kv_t op = { key, NULL, 0 };
    evr_err_t err;
    if (evr_store_kv_write_lazy(b->store, &op, 1, &err))
        evr_broker_warn(b, "job %s: its kept submit not deleted (%s); it is at the next "
                        "start", j->id, err.msg);
}

/*  Whether a step of spec (or its on_error) retries on lost. */
static bool
s_retries_lost(const evr_spec_t *spec)
{
    for (uint32_t i = 0; spec && i <= spec->steps.n; i++) {
        const evr_retry_t *r = i < spec->steps.n ? &evr_spec_step(spec, i)->retry
                                                 : &spec->on_error.retry;
        for (uint32_t k = 0; r->present && k < r->on.n; k++)
            if (strcmp(r->on.v[k], "lost") == 0 && r->max)
                return true;
    }
    return false;
}

void
evr_queue_keep_if_retried(const evr_broker_t *b, evr_queue_job_t *j)
{
    evr_msg_t *sub = j->body ? evr_queue_submit_of(b, j) : NULL;
    j->kept = sub && s_retries_lost(sub->spec);
    evr_msg_destroy(&sub);
}

/*  Kept submits ("s/<job>") at start: a running job's is its again, the
    others (their jobs ended while a lazy commit of their deletion was
    not on disk yet) are deleted. */
typedef struct {
    evr_broker_t *b;
    evr_strlist_t stale;
} s_kept_load_t;

static int
s_kept_load_one(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void) val;
    (void) len;
    s_kept_load_t *kl = arg;
    evr_queue_job_t *j = evr_queue_find(kl->b, key + sizeof EVR_QUEUE_KEPT - 1);
    if (j && j->state == B_ACTIVE)
        j->kept = true;
    else
        evr_strlist_push(&kl->stale, key);
    return 0;
}

evr_rc_t
evr_queue_load_kept(evr_broker_t *b, evr_err_t *err)
{
    s_kept_load_t kl = { b, { 0 } };
    evr_rc_t rc = evr_store_kv_scan(b->store, EVR_QUEUE_KEPT, s_kept_load_one, &kl, err);
    if (!rc && kl.stale.n) {
        evr_store_kv_t *ops = evr_calloc(kl.stale.n, sizeof *ops);
        for (uint32_t i = 0; i < kl.stale.n; i++)
            ops[i] = (evr_store_kv_t) { kl.stale.v[i], NULL, 0 };
        rc = evr_store_kv_write_lazy(b->store, ops, kl.stale.n, err);
        free(ops);
    }
    evr_strlist_free(&kl.stale);
    return rc;
}
