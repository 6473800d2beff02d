/*  evr_providers.c: the providers evrun-provisioners report (PROTOCOL.md
    "message provider"), kept in the broker's memory only, so that
    `evrun-cli runners` lists them with their state and counts.

    A provisioner sends one `provider` per provider at each of its passes;
    the broker answers `ok` and keeps the last report per (provisioner,
    provider) name, at most S_MAX of them.  A report older than S_STALE_NS
    is dropped at the next report or listing (its provisioner is gone).
    `providers` lists what is kept, as `provider` messages with the time
    of their report in `heartbeat`, then `end`.
*/
#include <stdlib.h>
#include <string.h>

#include "evr_broker_int.h"

#define S_MAX 256
#define S_STALE_NS 30000000000ull     /* 30 s */

typedef struct evr_providers {
    evr_msg_t *v;       /* the reports, strings owned */
    uint64_t *seen;     /* mono ns of each */
    size_t n;
} s_table_t;

static void
s_drop_stale(s_table_t *t, uint64_t now)
{
    size_t keep = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (now - t->seen[i] > S_STALE_NS) {
            evr_msg_clear(&t->v[i]);
            continue;
        }
        t->v[keep] = t->v[i];
        t->seen[keep++] = t->seen[i];
    }
    t->n = keep;
}

static bool
s_same(const evr_msg_t *a, const evr_msg_t *b)
{
    return !strcmp(a->provider, b->provider)
        && !strcmp(a->runner ? a->runner : "", b->runner ? b->runner : "");
}

void
evr_providers_report(evr_broker_t *b, zframe_t *rid, evr_msg_t *msg)
{
    if (!b->providers) {
        b->providers = evr_calloc(1, sizeof *b->providers);
        b->providers->v = evr_calloc(S_MAX, sizeof *b->providers->v);
        b->providers->seen = evr_calloc(S_MAX, sizeof *b->providers->seen);
    }
    s_table_t *t = b->providers;
    uint64_t now = evr_mono_ns();
    s_drop_stale(t, now);
    size_t i = 0;
    while (i < t->n && !s_same(&t->v[i], msg))
        i++;
    if (i == t->n && t->n == S_MAX) {
        evr_bus_send_error(b->clients, rid, EVR_CODE_UNAVAILABLE, "the broker keeps %d "
                           "providers at most; provider %s is not kept", S_MAX, msg->provider);
        return;
    }
    if (i == t->n)
        t->n++;
    else
        evr_msg_clear(&t->v[i]);
    t->v[i] = *msg;     /* taken: the caller's message is zeroed */
    t->v[i].heartbeat = evr_now_ns();
    t->seen[i] = now;
    memset(msg, 0, sizeof *msg);
    msg->type = EVR_MSG_PROVIDER;
    evr_msg_t ok = { .type = EVR_MSG_OK };
    evr_bus_send(b->clients, rid, &ok, NULL);
}

void
evr_providers_list(evr_broker_t *b, zframe_t *rid)
{
    s_table_t *t = b->providers;
    uint32_t n = 0;
    if (t)
        s_drop_stale(t, evr_mono_ns());
    for (size_t i = 0; t && i < t->n; i++, n++)
        if (evr_bus_send(b->clients, rid, &t->v[i], NULL) != EVR_OK) {
            evr_bus_send_error(b->clients, rid, EVR_CODE_UNAVAILABLE, "providers cut after "
                               "%u: the answer could not be queued; ask again", n);
            return;
        }
    evr_msg_t end = { .type = EVR_MSG_END, .count = n };
    evr_bus_send(b->clients, rid, &end, NULL);
}

void
evr_providers_free(evr_broker_t *b)
{
    s_table_t *t = b->providers;
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        evr_msg_clear(&t->v[i]);
    free(t->v);
    free(t->seen);
    free(t);
    b->providers = NULL;
}
