/*  evr_flow.c: see evr_flow.h.

    Each peer with bytes queued has an account; every message in flight
    holds a reference to its account, and the flow's list one more, so an
    account outlives both the flow and the socket until libzmq has freed
    the last message that counts against it.
*/
#include "evr_flow.h"

#include <malloc.h>
#include <stdatomic.h>
#include <string.h>

#define S_FLOWS_MAX 8               /* sockets with a flow, per process */
#define S_ID_MAX 256                /* a ZeroMQ routing id is at most 255 bytes */

typedef struct s_account {
    atomic_size_t bytes;            /* queued now */
    atomic_int refs;                /* messages in flight, +1 while listed */
    size_t peak;                    /* most bytes seen queued (loop thread) */
    uint64_t hash;                  /* of id: compared first */
    size_t idlen;
    uint8_t id[S_ID_MAX];
    struct s_account *next;
} s_account_t;

struct evr_flow {
    void *h;                        /* the libzmq socket */
    bool per_peer;
    size_t limit, reserve;
    uint64_t dropped;               /* since the last sweep */
    size_t released;                /* peak bytes of accounts forgotten since the last sweep */
    s_account_t *accounts;
};

typedef struct {
    s_account_t *acc;
    size_t cost;
} s_hint_t;

static evr_flow_t *s_flows[S_FLOWS_MAX];

static void
s_unref(s_account_t *acc)
{
    if (atomic_fetch_sub(&acc->refs, 1) == 1)
        free(acc);
}

/*  libzmq's free callback (any thread): the body is done with. */
static void
s_release(void *data, void *hint)
{
    s_hint_t *hi = hint;
    free(data);
    atomic_fetch_sub(&hi->acc->bytes, hi->cost);
    s_unref(hi->acc);
    free(hi);
}

void
evr_flow_attach(zsock_t *sock, bool per_peer, size_t limit, size_t reserve)
{
    evr_flow_t *f = evr_calloc(1, sizeof *f);
    f->h = zsock_resolve(sock);
    f->per_peer = per_peer;
    f->limit = limit;
    f->reserve = reserve;
    for (size_t i = 0; i < S_FLOWS_MAX; i++)
        if (!s_flows[i]) {
            s_flows[i] = f;
            return;
        }
    assert(!"evr_flow_attach: too many flows");
    free(f);
}

void
evr_flow_detach(zsock_t *sock)
{
    if (!sock)
        return;
    void *h = zsock_resolve(sock);
    for (size_t i = 0; i < S_FLOWS_MAX; i++) {
        evr_flow_t *f = s_flows[i];
        if (!f || f->h != h)
            continue;
        while (f->accounts) {
            s_account_t *a = f->accounts;
            f->accounts = a->next;
            s_unref(a);
        }
        free(f);
        s_flows[i] = NULL;
    }
}

evr_flow_t *
evr_flow_of(void *h)
{
    for (size_t i = 0; i < S_FLOWS_MAX; i++)
        if (s_flows[i] && s_flows[i]->h == h)
            return s_flows[i];
    return NULL;
}

static s_account_t *
s_account(evr_flow_t *f, const void *id, size_t idlen)
{
    if (!f->per_peer || idlen > S_ID_MAX)
        idlen = 0;
    uint64_t h = evr_fnv1a(id, idlen);
    for (s_account_t *a = f->accounts; a; a = a->next)
        if (a->hash == h && a->idlen == idlen && (!idlen || memcmp(a->id, id, idlen) == 0))
            return a;
    s_account_t *a = evr_calloc(1, sizeof *a);
    atomic_init(&a->bytes, 0);
    atomic_init(&a->refs, 1);
    a->idlen = idlen;
    a->hash = h;
    if (idlen)
        memcpy(a->id, id, idlen);
    a->next = f->accounts;
    f->accounts = a;
    return a;
}

evr_rc_t
evr_flow_send(evr_flow_t *f, void *h, const void *rid, size_t ridlen, const char *first,
              uint8_t *body, size_t len, evr_err_t *err)
{
    s_account_t *acc = s_account(f, rid, ridlen);
    size_t cost = len + EVR_FLOW_OVERHEAD, queued = atomic_load(&acc->bytes);
    size_t cap = len <= EVR_FLOW_SMALL ? f->limit + f->reserve : f->limit;
    if (queued + cost > cap) {
        free(body);
        f->dropped++;
        return evr_err_set(err, EVR_ERR_LIMIT, "send: the peer has %zu bytes queued, a "
                           "message of %zu would pass its limit of %zu: dropped", queued, len,
                           cap);
    }
    s_hint_t *hi = evr_malloc(sizeof *hi);
    hi->acc = acc;
    hi->cost = cost;
    atomic_fetch_add(&acc->refs, 1);
    atomic_fetch_add(&acc->bytes, cost);
    if (queued + cost > acc->peak)
        acc->peak = queued + cost;
    zmq_msg_t m;
    zmq_msg_init_data(&m, body, len, s_release, hi);
    if ((rid && zmq_send(h, rid, ridlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        || zmq_send(h, first, strlen(first), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_msg_send(&m, h, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&m);   /* runs s_release */
        return evr_err_set(err, EVR_ERR_IO, "send: %s", zmq_strerror(e));
    }
    return EVR_OK;
}

size_t
evr_flow_queued(zsock_t *sock)
{
    evr_flow_t *f = evr_flow_of(zsock_resolve(sock));
    size_t n = 0;
    for (s_account_t *a = f ? f->accounts : NULL; a; a = a->next)
        n += atomic_load(&a->bytes);
    return n;
}

uint64_t
evr_flow_sweep(zsock_t *sock, size_t *peers)
{
    evr_flow_t *f = evr_flow_of(zsock_resolve(sock));
    *peers = 0;
    if (!f)
        return 0;
    for (s_account_t **pp = &f->accounts; *pp;) {
        s_account_t *a = *pp;
        if (atomic_load(&a->bytes)) {
            (*peers)++;
            pp = &a->next;
            continue;
        }
        f->released += a->peak;
        *pp = a->next;
        s_unref(a);
    }
    if (f->released || f->dropped) {
        /* glibc keeps freed heap in the process otherwise: RSS would stay
           at its peak after a slow client has gone */
        malloc_trim(0);
        f->released = 0;
    }
    uint64_t dropped = f->dropped;
    f->dropped = 0;
    return dropped;
}
