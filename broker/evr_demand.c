/*  evr_demand.c: demand for runners (PROTOCOL.md "message demand"): a
    client (evrun-gateway for a GitHub `workflow_job` `queued` event or a
    POST /api/v1/demand) says that jobs needing some labels are coming;
    evrun-provisioner lists the demand (`demands`) at each pass and counts
    each runner wanted as one waiting job with those labels; `evrun-cli
    runners` and the gateway's GET /api/v1/runners list it too.

    Kept in the broker's memory only (a restart forgets it), bounded: at
    most EVR_MSG_DEMAND_MAX_ENTRIES entries and EVR_MSG_DEMAND_MAX_RUNNERS
    runners wanted in all, each entry for its ttl at most.  Demand is met
    two ways, one runner wanted at a time, oldest entry first:
      - a runner that says hello for the first time (new to the broker)
        meets the entries whose labels it has, one per slot of its
        capacity; those slots are its "promised" ones;
      - a job dispatched to a runner (its first dispatch only: a retry
        after a lost runner meets none) meets the oldest entry taken no
        later than the job was queued whose labels are all among the
        job's, unless the runner still has a promised slot: then that
        slot is used up instead (its demand went at the hello already).
    An entry met in full, or past its ttl, is retired: its id is
    remembered (EVR_MSG_DEMAND_SEEN_MAX ids, each EVR_MSG_DEMAND_SEEN_S
    seconds) so that the same demand sent again, a webhook redelivered
    say, adds nothing and is answered `ok` with `existing`.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_broker_int.h"

/*  A retired entry: its id, when (mono ns), whether it was met in full. */
typedef struct {
    char id[EVR_ULID_LEN + 1];
    bool met;
    uint64_t at;
} s_seen_t;

typedef struct evr_demand {
    evr_msg_t *v;       /* oldest first; strings owned; count: runners still wanted */
    uint64_t *until;    /* mono ns when each expires */
    size_t n;
    s_seen_t *seen;     /* a ring of EVR_MSG_DEMAND_SEEN_MAX retired ids */
    size_t seen_next;   /* the slot the next retired id takes (the oldest when full) */
} s_table_t;

/*  Retires the entries met in full or past their ttl: their ids go to the
    ring, overwriting the oldest. */
static void
s_drop(s_table_t *t, uint64_t now)
{
    size_t keep = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (now >= t->until[i] || !t->v[i].count) {
            s_seen_t *s = &t->seen[t->seen_next];
            t->seen_next = (t->seen_next + 1) % EVR_MSG_DEMAND_SEEN_MAX;
            snprintf(s->id, sizeof s->id, "%s", t->v[i].job);
            s->met = !t->v[i].count;
            s->at = s->met || now < t->until[i] ? now : t->until[i];
            evr_msg_clear(&t->v[i]);
            continue;
        }
        t->v[keep] = t->v[i];
        t->until[keep++] = t->until[i];
    }
    t->n = keep;
}

/*  The retired entry of that id within EVR_MSG_DEMAND_SEEN_S; NULL: none. */
static const s_seen_t *
s_seen(const s_table_t *t, const char *id, uint64_t now)
{
    for (size_t i = 0; i < EVR_MSG_DEMAND_SEEN_MAX; i++) {
        const s_seen_t *s = &t->seen[i];
        if (s->id[0] && !strcmp(s->id, id)
            && now - s->at < (uint64_t) EVR_MSG_DEMAND_SEEN_S * 1000000000ull)
            return s;
    }
    return NULL;
}

static s_table_t *
s_table(evr_broker_t *b)
{
    if (!b->demand) {
        b->demand = evr_calloc(1, sizeof *b->demand);
        b->demand->v = evr_calloc(EVR_MSG_DEMAND_MAX_ENTRIES, sizeof *b->demand->v);
        b->demand->until = evr_calloc(EVR_MSG_DEMAND_MAX_ENTRIES, sizeof *b->demand->until);
        b->demand->seen = evr_calloc(EVR_MSG_DEMAND_SEEN_MAX, sizeof *b->demand->seen);
    }
    return b->demand;
}

/*  Answers ok; existing: a duplicate, nothing added. */
static void __attribute__((format(printf, 5, 6)))
s_ok(evr_broker_t *b, zframe_t *rid, const char *id, bool existing, const char *fmt, ...)
{
    evr_msg_t m = { .type = EVR_MSG_OK, .job = (char *) id, .existing = existing };
    va_list ap;
    va_start(ap, fmt);
    evr_bus_vsend_text(b->clients, rid, &m, fmt, ap);   /* 32 labels listed: whole */
    va_end(ap);
}

static char *
s_joined(const evr_strlist_t *l)
{
    size_t len = 1;
    for (uint32_t i = 0; i < l->n; i++)
        len += strlen(l->v[i]) + 1;
    char *s = evr_calloc(1, len);
    for (uint32_t i = 0; i < l->n; i++) {
        if (i)
            strcat(s, ",");
        strcat(s, l->v[i]);
    }
    return s;
}

void
evr_demand_add(evr_broker_t *b, zframe_t *rid, evr_msg_t *msg)
{
    uint32_t count = msg->count ? msg->count : 1;
    uint32_t ttl = msg->ttl ? msg->ttl : EVR_MSG_DEMAND_TTL;
    /* named as the decoder names a field it refuses (PATH: expected ..., got ...) */
    if (count > EVR_MSG_DEMAND_MAX_COUNT) {
        evr_bus_send_error(b->clients, rid, EVR_CODE_BAD_REQUEST, "demand.count: expected 1 to "
                           "%u (runners wanted), got %u", EVR_MSG_DEMAND_MAX_COUNT, count);
        return;
    }
    if (ttl > EVR_MSG_DEMAND_MAX_TTL) {
        evr_bus_send_error(b->clients, rid, EVR_CODE_BAD_REQUEST, "demand.ttl: expected 1 to "
                           "%u (seconds), got %u", EVR_MSG_DEMAND_MAX_TTL, ttl);
        return;
    }
    s_table_t *t = s_table(b);
    uint64_t now = evr_mono_ns();
    s_drop(t, now);
    uint32_t wanted = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (!strcmp(t->v[i].job, msg->job)) {
            s_ok(b, rid, msg->job, true, "demand %s is kept already (%u runner%s still "
                 "wanted): nothing added", msg->job, t->v[i].count,
                 t->v[i].count == 1 ? "" : "s");
            return;
        }
        wanted += t->v[i].count;
    }
    const s_seen_t *seen = s_seen(t, msg->job, now);
    if (seen) {
        s_ok(b, rid, msg->job, true, "demand %s was %s %llu s ago: nothing added (a "
             "duplicate)", msg->job, seen->met ? "met" : "retired at its ttl",
             (unsigned long long) ((now - seen->at) / 1000000000ull));
        return;
    }
    if (t->n == EVR_MSG_DEMAND_MAX_ENTRIES || wanted + count > EVR_MSG_DEMAND_MAX_RUNNERS) {
        evr_bus_send_error(b->clients, rid, EVR_CODE_UNAVAILABLE, "the broker keeps %d demand "
                           "entries and %d runners wanted at most (now %zu entries, %u "
                           "runners): demand %s is not kept; send it again when some are met "
                           "or expired", EVR_MSG_DEMAND_MAX_ENTRIES,
                           EVR_MSG_DEMAND_MAX_RUNNERS, t->n, wanted, msg->job);
        return;
    }
    evr_msg_t *d = &t->v[t->n];
    *d = *msg;      /* taken: the caller's message is zeroed */
    memset(msg, 0, sizeof *msg);
    msg->type = EVR_MSG_DEMAND;
    d->count = count;
    d->ttl = ttl;
    d->created = evr_now_ns();
    t->until[t->n++] = now + (uint64_t) ttl * 1000000000ull;
    char *labels = s_joined(&d->labels);
    evr_broker_info(b, "demand %s: %u runner%s with labels [%s] for %u s%s%s", d->job, count,
                    count == 1 ? "" : "s", labels, ttl, d->reason ? ": " : "",
                    d->reason ? d->reason : "");
    s_ok(b, rid, d->job, false, "demand %s kept: %u runner%s with labels [%s] for %u s",
         d->job, count, count == 1 ? "" : "s", labels, ttl);
    free(labels);
}

void
evr_demand_list(evr_broker_t *b, zframe_t *rid)
{
    s_table_t *t = b->demand;
    uint32_t n = 0;
    uint64_t now = evr_mono_ns();
    if (t)
        s_drop(t, now);
    for (size_t i = 0; t && i < t->n; i++, n++) {
        evr_msg_t m = t->v[i];
        m.ttl = (uint32_t) ((t->until[i] - now + 999999999ull) / 1000000000ull);
        if (evr_bus_send(b->clients, rid, &m, NULL) != EVR_OK) {
            evr_bus_send_error(b->clients, rid, EVR_CODE_UNAVAILABLE, "demands cut after "
                               "%u: the answer could not be queued; ask again", n);
            return;
        }
    }
    evr_msg_t end = { .type = EVR_MSG_END, .count = n };
    evr_bus_send(b->clients, rid, &end, NULL);
}

/*  Whether every label of need is in have. */
static bool
s_has(const evr_strlist_t *need, const evr_strlist_t *have)
{
    for (uint32_t i = 0; i < need->n; i++) {
        bool found = false;
        for (uint32_t j = 0; j < have->n && !found; j++)
            found = !strcmp(need->v[i], have->v[j]);
        if (!found)
            return false;
    }
    return true;
}

uint32_t
evr_demand_hello(evr_broker_t *b, const char *runner, const evr_strlist_t *labels,
                 uint32_t capacity)
{
    s_table_t *t = b->demand;
    uint32_t all = 0;
    if (!t)
        return 0;
    s_drop(t, evr_mono_ns());
    for (size_t i = 0; i < t->n && capacity; i++) {
        if (!s_has(&t->v[i].labels, labels))
            continue;
        uint32_t met = t->v[i].count < capacity ? t->v[i].count : capacity;
        t->v[i].count -= met;
        capacity -= met;
        all += met;
        evr_broker_info(b, "demand %s: runner %s meets %u (%u still wanted)", t->v[i].job,
                        runner, met, t->v[i].count);
    }
    s_drop(t, evr_mono_ns());
    return all;
}

void
evr_demand_dispatched(evr_broker_t *b, evr_runners_session_t *r, evr_queue_job_t *j)
{
    s_table_t *t = b->demand;
    if (j->demand_done)     /* a retry: it counted at its first dispatch */
        return;
    j->demand_done = true;
    if (r->demand_met) {    /* its hello met demand for this slot already */
        r->demand_met--;
        evr_broker_debug(b, "demand: job %s takes a slot runner %s promised at its hello "
                         "(%u left)", j->id, r->id, r->demand_met);
        return;
    }
    if (!t || !t->n)
        return;
    s_drop(t, evr_mono_ns());
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i].created > j->created || !s_has(&t->v[i].labels, &j->labels))
            continue;
        t->v[i].count--;
        evr_broker_info(b, "demand %s: job %s dispatched to %s meets 1 (%u still wanted)",
                        t->v[i].job, j->id, r->id, t->v[i].count);
        break;
    }
    s_drop(t, evr_mono_ns());
}

void
evr_demand_free(evr_broker_t *b)
{
    s_table_t *t = b->demand;
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        evr_msg_clear(&t->v[i]);
    free(t->v);
    free(t->until);
    free(t->seen);
    free(t);
    b->demand = NULL;
}
