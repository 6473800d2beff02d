/*  evr_demand.c: demand for runners (PROTOCOL.md "message demand"): a
    client (evrun-gateway for a GitHub `workflow_job` `queued` event or a
    POST /api/v1/demand) says that jobs needing some labels are coming;
    evrun-provisioner lists the demand (`demands`) at each pass and counts
    each runner wanted as one waiting job with those labels.

    Kept in the broker's memory only (a restart forgets it), bounded: at
    most EVR_MSG_DEMAND_MAX_ENTRIES entries and EVR_MSG_DEMAND_MAX_RUNNERS
    runners wanted in all, each entry for its ttl at most.  A runner that
    says hello for the first time (new to the broker) meets the oldest
    entries whose labels it has, one runner wanted per slot of its
    capacity; an entry met in full, or past its ttl, is dropped.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_broker_int.h"

typedef struct evr_demand {
    evr_msg_t *v;       /* oldest first; strings owned; count: runners still wanted */
    uint64_t *until;    /* mono ns when each expires */
    size_t n;
} s_table_t;

static void
s_drop(s_table_t *t, uint64_t now)
{
    size_t keep = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (now >= t->until[i] || !t->v[i].count) {
            evr_msg_clear(&t->v[i]);
            continue;
        }
        t->v[keep] = t->v[i];
        t->until[keep++] = t->until[i];
    }
    t->n = keep;
}

static s_table_t *
s_table(evr_broker_t *b)
{
    if (!b->demand) {
        b->demand = evr_calloc(1, sizeof *b->demand);
        b->demand->v = evr_calloc(EVR_MSG_DEMAND_MAX_ENTRIES, sizeof *b->demand->v);
        b->demand->until = evr_calloc(EVR_MSG_DEMAND_MAX_ENTRIES, sizeof *b->demand->until);
    }
    return b->demand;
}

static void __attribute__((format(printf, 4, 5)))
s_ok(evr_broker_t *b, zframe_t *rid, const char *id, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    evr_msg_t m = { .type = EVR_MSG_OK, .job = (char *) id, .message = text };
    evr_bus_send(b->clients, rid, &m, NULL);
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
    if (count > EVR_MSG_DEMAND_MAX_COUNT || ttl > EVR_MSG_DEMAND_MAX_TTL) {
        evr_bus_send_error(b->clients, rid, EVR_CODE_BAD_REQUEST, "demand %s: %s %u: expected "
                           "1 to %u", msg->job, count > EVR_MSG_DEMAND_MAX_COUNT ? "count"
                           : "ttl", count > EVR_MSG_DEMAND_MAX_COUNT ? count : ttl,
                           count > EVR_MSG_DEMAND_MAX_COUNT ? EVR_MSG_DEMAND_MAX_COUNT
                                                            : EVR_MSG_DEMAND_MAX_TTL);
        return;
    }
    s_table_t *t = s_table(b);
    uint64_t now = evr_mono_ns();
    s_drop(t, now);
    uint32_t wanted = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (!strcmp(t->v[i].job, msg->job)) {
            s_ok(b, rid, msg->job, "demand %s is kept already (%u runners still wanted): "
                 "nothing added", msg->job, t->v[i].count);
            return;
        }
        wanted += t->v[i].count;
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
    s_ok(b, rid, d->job, "demand %s kept: %u runner%s with labels [%s] for %u s", d->job, count,
         count == 1 ? "" : "s", labels, ttl);
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

void
evr_demand_hello(evr_broker_t *b, const char *runner, const evr_strlist_t *labels,
                 uint32_t capacity)
{
    s_table_t *t = b->demand;
    if (!t)
        return;
    s_drop(t, evr_mono_ns());
    for (size_t i = 0; i < t->n && capacity; i++) {
        if (!s_has(&t->v[i].labels, labels))
            continue;
        uint32_t met = t->v[i].count < capacity ? t->v[i].count : capacity;
        t->v[i].count -= met;
        capacity -= met;
        evr_broker_info(b, "demand %s: runner %s meets %u (%u still wanted)", t->v[i].job,
                        runner, met, t->v[i].count);
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
    free(t);
    b->demand = NULL;
}
