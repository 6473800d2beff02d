/*  test_flow: evr_flow's byte bound on a ROUTER (inproc sockets): a peer
    gets messages up to its limit, small ones up to the reserve on top,
    the rest is refused and counted; what it reads or leaves behind when
    it disconnects is given back. */
#include <string.h>

#include "evr_bus.h"
#include "evr_flow.h"
#include "evr_test.h"

#define LIMIT 10000
#define RESERVE 2000

/*  An `ok` whose message has n bytes, to peer. */
static evr_rc_t
s_send(zsock_t *router, zframe_t *peer, size_t n)
{
    char *text = evr_malloc(n + 1);
    memset(text, 'x', n);
    text[n] = '\0';
    evr_msg_t m = { .type = EVR_MSG_OK, .message = text };
    evr_err_t err;
    evr_rc_t rc = evr_bus_send(router, peer, &m, &err);
    free(text);
    return rc;
}

/*  Reads everything waiting on dealer; the count. */
static int
s_drain(zsock_t *dealer)
{
    int n = 0;
    while (zsock_events(dealer) & ZMQ_POLLIN) {
        zmsg_t *m = zmsg_recv(dealer);
        zmsg_destroy(&m);
        n++;
    }
    return n;
}

/*  Lets the router take in what libzmq has for it (peer gone). */
static void
s_settle(zsock_t *router)
{
    for (int i = 0; i < 100 && evr_flow_queued(router); i++) {
        zsock_events(router);
        zclock_sleep(10);
    }
}

static zsock_t *
s_dealer(const char *id)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    zsock_set_identity(d, id);
    zsock_set_linger(d, 0);
    CHECK(zsock_connect(d, "inproc://flow") == 0);
    return d;
}

static void
test_limit_reserve_release(void)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    zsock_set_router_mandatory(router, 1);
    CHECK(zsock_bind(router, "inproc://flow") == 0);
    evr_flow_attach(router, true, LIMIT, RESERVE);
    zsock_t *a = s_dealer("A"), *b = s_dealer("B");
    zframe_t *fa = zframe_new("A", 1), *fb = zframe_new("B", 1);
    /* messages of about 3000 bytes: three fit in 10000, not four */
    CHECK(s_send(router, fa, 3000) == EVR_OK);
    CHECK(s_send(router, fa, 3000) == EVR_OK);
    CHECK(s_send(router, fa, 3000) == EVR_OK);
    CHECK(s_send(router, fa, 3000) == EVR_ERR_LIMIT);
    size_t q = evr_flow_queued(router);
    CHECK(q > 9000 && q <= LIMIT);
    /* a small one still goes, from the reserve */
    CHECK(s_send(router, fa, 100) == EVR_OK);
    /* the other peer has a budget of its own */
    CHECK(s_send(router, fb, 3000) == EVR_OK);
    size_t peers;
    CHECK(evr_flow_sweep(router, &peers) == 1);
    CHECK(peers == 2);
    /* A reads: its bytes come back, and it gets messages again */
    CHECK(s_drain(a) == 4);
    CHECK(s_send(router, fa, 3000) == EVR_OK);
    CHECK(s_drain(a) == 1);
    CHECK(s_drain(b) == 1);
    CHECK(evr_flow_queued(router) == 0);
    CHECK(evr_flow_sweep(router, &peers) == 0);
    CHECK(peers == 0);
    /* B fills up and goes away without reading: released */
    while (s_send(router, fb, 3000) == EVR_OK)
        ;
    CHECK(evr_flow_queued(router) > 9000);
    zsock_destroy(&b);
    s_settle(router);
    CHECK(evr_flow_queued(router) == 0);
    /* a peer that is not connected: an error, nothing counted */
    zframe_t *fc = zframe_new("C", 1);
    CHECK(s_send(router, fc, 100) == EVR_ERR_IO);
    CHECK(evr_flow_queued(router) == 0);
    zframe_destroy(&fa);
    zframe_destroy(&fb);
    zframe_destroy(&fc);
    zsock_destroy(&a);
    evr_flow_detach(router);
    zsock_destroy(&router);
}

int
main(void)
{
    zsys_init();
    zsys_handler_set(NULL);
    EVR_TEST_RUN(test_limit_reserve_release);
    EVR_TEST_END();
}
