/*  test_flow: evr_flow's byte bound on a ROUTER (inproc sockets): a peer
    gets messages up to its limit, small ones up to the reserve on top,
    the rest is refused and counted; what it reads or leaves behind when
    it disconnects is given back.  And the largest publications (a
    job.accepted, published with its spec cut to the stub, a step.output,
    a runner) stay under EVR_PUB_MAX_BYTES. */
#include <string.h>

#include "evr_bus.h"
#include "evr_codec.h"
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

/*  A string of n copies of c (caller frees). */
static char *
s_str(size_t n, char c)
{
    char *v = evr_malloc(n + 1);
    memset(v, c, n);
    v[n] = '\0';
    return v;
}

/*  The next publication on sub: its body's size, the event decoded into
    *m (zeroed by the caller). */
static size_t
s_recv_pub(zsock_t *sub, evr_msg_t *m)
{
    zmsg_t *zm = zmsg_recv(sub);
    CHECK(zm && zmsg_size(zm) == 2);
    zframe_t *body = zmsg_last(zm);
    size_t n = zframe_size(body);
    char hdr[EVR_MSG_HEADER_MAX];
    evr_msg_header(EVR_MSG_EVENT, hdr);
    const char *code;
    evr_err_t err;
    if (m)
        CHECK(evr_msg_decode(hdr, strlen(hdr), zframe_data(body), n, m, &code, &err) == EVR_OK);
    zmsg_destroy(&zm);
    return n;
}

/*  A job.accepted whose spec and args are at the codec's limits. */
static evr_event_t *
s_worst_accepted(void)
{
    evr_event_t *ev = evr_event_new(EVR_EV_JOB_ACCEPTED);
    ev->job = evr_strdup("01J00000000000000000000000");
    ev->jseq = ev->seq = 1;
    ev->data.pipeline = s_str(EVR_SPEC_MAX_NAME, 'p');
    ev->data.runner = s_str(EVR_SPEC_MAX_NAME, 'r');
    evr_spec_t *sp = ev->data.spec = evr_spec_new();
    sp->pipeline = s_str(EVR_SPEC_MAX_NAME, 'p');
    sp->image = s_str(512, 'i');
    for (int i = 0; i < 32; i++) {
        char *l = s_str(EVR_STR_MAX, 'l');
        evr_strlist_push(&sp->labels, l);
        free(l);
    }
    sp->steps.n = EVR_SPEC_MAX_STEPS;
    sp->steps.v = evr_calloc(sp->steps.n, sizeof(evr_step_t));
    for (uint32_t i = 0; i < sp->steps.n; i++) {
        evr_step_t *st = evr_spec_step(sp, i);
        st->name = s_str(EVR_SPEC_MAX_NAME, 's');
        st->image = s_str(512, 'i');
        st->run = s_str(4096, '#');
    }
    for (int i = 0; i < 64; i++) {
        char *k = evr_asprintf("%063d", i), *v = s_str(EVR_STR_MAX, 'v');
        evr_strmap_set(&ev->data.args, k, v);
        free(k);
        free(v);
    }
    return ev;
}

static void
test_publication_bound(void)
{
    zsock_t *pub = zsock_new(ZMQ_XPUB), *sub = zsock_new(ZMQ_SUB);
    CHECK(zsock_bind(pub, "inproc://pub") == 0);
    zsock_set_subscribe(sub, "");
    CHECK(zsock_connect(sub, "inproc://pub") == 0);
    zframe_t *s = zframe_recv(pub);   /* the subscription */
    zframe_destroy(&s);
    /* job.accepted: the stub, no args; the store's event is untouched */
    evr_event_t *ev = s_worst_accepted();
    size_t whole = evr_codec_size(&evr_event_type, ev);
    evr_err_t err;
    CHECK(evr_bus_publish_event(pub, ev, &err) == EVR_OK);
    evr_msg_t m = { 0 };
    size_t n = s_recv_pub(sub, &m);
    printf("job.accepted: %zu bytes stored, %zu published\n", whole, n);
    CHECK(n <= EVR_PUB_MAX_BYTES);
    CHECK_STR(m.event->data.pipeline, ev->data.pipeline);
    CHECK(m.event->data.args.n == 0);
    CHECK(m.event->data.spec->labels.n == 32);
    CHECK(m.event->data.spec->steps.n == EVR_SPEC_MAX_STEPS);
    CHECK_STR(evr_spec_step(m.event->data.spec, 255)->name, evr_spec_step(ev->data.spec, 255)->name);
    CHECK_STR(evr_spec_step(m.event->data.spec, 255)->run, "");
    CHECK(ev->data.args.n == 64 && strlen(evr_spec_step(ev->data.spec, 0)->run) == 4096);
    evr_msg_clear(&m);
    evr_event_destroy(&ev);
    /* the largest step.output */
    ev = evr_event_new(EVR_EV_STEP_OUTPUT);
    ev->job = evr_strdup("01J00000000000000000000000");
    ev->jseq = ev->seq = UINT32_MAX;
    ev->time = UINT64_MAX;
    ev->data.step = s_str(EVR_SPEC_MAX_NAME, 's');
    ev->data.stream = evr_strdup("stdout");
    ev->data.attempt = ev->data.raw = UINT32_MAX;
    ev->data.offset = UINT64_MAX;
    ev->data.bytes.len = 2 * EVR_OUTPUT_CHUNK_MAX;
    ev->data.bytes.data = (uint8_t *) s_str(ev->data.bytes.len, 'o');
    CHECK(evr_bus_publish_event(pub, ev, NULL) == EVR_OK);
    n = s_recv_pub(sub, NULL);
    printf("step.output: %zu bytes published\n", n);
    CHECK(n <= EVR_PUB_MAX_BYTES);
    evr_event_destroy(&ev);
    /* the largest runner; one with 80 labels (the codec takes 32) is refused */
    evr_msg_t r = { .type = EVR_MSG_RUNNER, .runner = s_str(EVR_SPEC_MAX_NAME, 'r'),
                    .capacity = UINT32_MAX, .running = UINT32_MAX, .heartbeat = UINT64_MAX,
                    .state = "draining" };
    for (int i = 0; i < 80; i++) {
        if (i == 32) {
            CHECK(evr_bus_publish_runner(pub, &r, NULL) == EVR_OK);
            n = s_recv_pub(sub, NULL);
            printf("runner: %zu bytes published\n", n);
            CHECK(n <= EVR_PUB_MAX_BYTES);
        }
        char *l = s_str(EVR_STR_MAX, 'l');
        evr_strlist_push(&r.labels, l);
        free(l);
    }
    CHECK(evr_bus_publish_runner(pub, &r, &err) == EVR_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "over the limit");
    free(r.runner);
    evr_strlist_free(&r.labels);
    zsock_destroy(&sub);
    zsock_destroy(&pub);
}

/*  Sends frames (n of them, strings) from dealer. */
static void
s_frames(zsock_t *dealer, const char *const *f, int n)
{
    for (int i = 0; i < n; i++)
        CHECK(zmq_send(zsock_resolve(dealer), f[i], strlen(f[i]),
                       i + 1 < n ? ZMQ_SNDMORE : 0) == (int) strlen(f[i]));
}

static void
test_recv_frames(void)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    zsock_set_rcvtimeo(router, 0);
    CHECK(zsock_bind(router, "inproc://recv") == 0);
    zsock_t *d = zsock_new(ZMQ_DEALER);
    zsock_set_identity(d, "D");
    zsock_set_linger(d, 0);
    CHECK(zsock_connect(d, "inproc://recv") == 0);
    evr_msg_t m = { .type = EVR_MSG_OK, .message = "hello" };
    char hdr[EVR_MSG_HEADER_MAX];
    uint8_t *body;
    size_t blen;
    evr_msg_header(m.type, hdr);
    evr_msg_encode(&m, &body, &blen);
    char *b = evr_strndup((const char *) body, blen);   /* no NUL inside an `ok` */
    const char *two[] = { hdr, b }, *four[] = { hdr, "x", "yy", b }, *one[] = { hdr };
    zframe_t *rid;
    evr_msg_t got = { 0 };
    const char *code;
    evr_err_t err;
    evr_bus_wire_t wire = { .open = false };
    char user[41];
    zclock_sleep(20);   /* connected */
    s_frames(d, two, 2);
    zsock_events(router);
    CHECK(evr_bus_recv_wire(router, &rid, user, &got, &wire, &code, &err) == EVR_OK);
    CHECK(rid && zframe_size(rid) == 1 && memcmp(zframe_data(rid), "D", 1) == 0);
    CHECK(got.type == EVR_MSG_OK && got.message && strcmp(got.message, "hello") == 0);
    CHECK(strcmp(user, "") == 0);
    CHECK(wire.open && zmq_msg_size(&wire.frame) == blen
          && memcmp(zmq_msg_data(&wire.frame), body, blen) == 0);
    evr_bus_wire_close(&wire);
    CHECK(!wire.open);
    evr_msg_clear(&got);
    zframe_destroy(&rid);
    s_frames(d, four, 4);   /* the first after the id is the header, the last the body */
    zclock_sleep(20);
    CHECK(evr_bus_recv_wire(router, &rid, NULL, &got, &wire, &code, &err) == EVR_OK);
    CHECK(rid && got.type == EVR_MSG_OK && strcmp(got.message, "hello") == 0 && wire.open);
    evr_bus_wire_close(&wire);
    evr_msg_clear(&got);
    zframe_destroy(&rid);
    /* a key this version does not know: decoded, the body not handed over
       (it would not decode to msg alone) */
    const char *unknown[] = { hdr, "\x82\xa7message\xa5hello\xa2zz\x01" };
    s_frames(d, unknown, 2);
    zclock_sleep(20);
    CHECK(evr_bus_recv_wire(router, &rid, NULL, &got, &wire, &code, &err) == EVR_OK);
    CHECK(strcmp(got.message, "hello") == 0 && !wire.open);
    evr_msg_clear(&got);
    zframe_destroy(&rid);
    s_frames(d, one, 1);
    zclock_sleep(20);
    CHECK(evr_bus_recv_wire(router, &rid, NULL, &got, &wire, &code, &err) == EVR_ERR_PROTO);
    CHECK_CONTAINS(err.msg, "got 1 frame");
    CHECK(rid && !wire.open);   /* the sender can be answered */
    evr_msg_clear(&got);
    zframe_destroy(&rid);
    CHECK(evr_bus_recv_wire(router, &rid, NULL, &got, &wire, &code, &err) == EVR_ERR_NOTFOUND);
    CHECK(!rid && !wire.open);
    /* on the dealer, no routing id: the router's answer */
    zframe_t *to = zframe_new("D", 1);
    CHECK(evr_bus_send(router, to, &m, &err) == EVR_OK);
    zframe_destroy(&to);
    zsock_set_rcvtimeo(d, 2000);
    CHECK(evr_bus_recv(d, NULL, &got, &code, &err) == EVR_OK);
    CHECK(got.type == EVR_MSG_OK && strcmp(got.message, "hello") == 0);
    evr_msg_clear(&got);
    free(b);
    free(body);
    zsock_destroy(&d);
    zsock_destroy(&router);
}

int
main(void)
{
    zsys_init();
    zsys_handler_set(NULL);
    EVR_TEST_RUN(test_limit_reserve_release);
    EVR_TEST_RUN(test_publication_bound);
    EVR_TEST_RUN(test_recv_frames);
    EVR_TEST_END();
}
