/*  evr_bus.c: frames in, frames out; see evr_bus.h. */
#include "evr_bus.h"

#include <errno.h>

#include "evr_codec.h"
#include "evr_flow.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "evr_paths.h"

void
evr_bus_init(void)
{
    zsys_handler_set(NULL);   /* first: no window with czmq's handlers */
    zsys_init();
}

void
evr_bus_setup(zsock_t *sock)
{
    zsock_set_maxmsgsize(sock, (int64_t) EVR_MSG_MAX_BYTES + 4096);
    zsock_set_linger(sock, 200);
    zsock_set_sndhwm(sock, EVR_BUS_HWM);
    zsock_set_rcvhwm(sock, EVR_BUS_HWM);
}

/*  What is wrong with the form of the non-empty endpoint ep (its
    scheme, an ipc:// path's length, a tcp:// port), as text without ep
    in what (size bytes); false when nothing is. */
static bool
s_form_bad(const char *ep, char *what, size_t size)
{
    if (strncmp(ep, "ipc://", 6) == 0) {
        size_t n = strlen(ep + 6);
        if (n == 0)
            snprintf(what, size, "no socket path");
        else if (n > 107)
            snprintf(what, size, "the socket path has %zu bytes, a unix socket path holds at "
                     "most 107 (choose a shorter state directory, e.g. --state-dir "
                     "/tmp/evrun)", n);
        return n == 0 || n > 107;
    }
    if (strncmp(ep, "tcp://", 6) == 0) {   /* tcp://127.0.0.1:99999 bound another port */
        const char *colon = strrchr(ep + 6, ':'), *port = colon ? colon + 1 : "";
        char *end = NULL;
        long n = strtol(port, &end, 10);
        bool ok = colon && colon > ep + 6
               && (!strcmp(port, "*") || (isdigit((unsigned char) *port) && !*end && n >= 1
                                          && n <= 65535));
        if (!ok)
            snprintf(what, size, "expected tcp://HOST:PORT, PORT from 1 to 65535");
        return !ok;
    }
    if (strncmp(ep, "inproc://", 9) == 0)
        return false;
    snprintf(what, size, "expected tcp://HOST:PORT or ipc://PATH");
    return true;
}

evr_rc_t
evr_bus_check_endpoint(const char *ep, evr_err_t *err)
{
    char what[300];
    if (!ep || !*ep)
        return evr_err_set(err, EVR_ERR_CONFIG, "empty endpoint: expected tcp://HOST:PORT or "
                           "ipc://PATH");
    if (s_form_bad(ep, what, sizeof what))
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: %s", ep, what);
    return strncmp(ep, "ipc://", 6) == 0 ? evr_paths_socket(ep + 6, err) : EVR_OK;
}

evr_rc_t
evr_bus_check_endpoints(const evr_config_t *cfg, const char *const *keys, size_t n,
                        evr_err_t *err)
{
    evr_rc_t rc = EVR_OK;
    char what[300];
    for (size_t i = 0; i < n; i++) {
        const char *v = evr_config_get(cfg, keys[i]);
        if (v && !*v)
            rc = evr_config_problem(cfg, keys[i], err, "expected an endpoint, tcp://HOST:PORT "
                                    "or ipc://PATH (empty: a variable left unset?)");
        else if (v && s_form_bad(v, what, sizeof what))
            rc = evr_config_problem(cfg, keys[i], err, "%s", what);
    }
    return rc;
}

/*  Sends [rid,] first, body; takes body (malloc'd).  A socket with a flow
    (evr_flow.h) counts the body against the peer's byte limit. */
static evr_rc_t
s_send_frames(zsock_t *sock, zframe_t *rid, const char *first, uint8_t *body, size_t len,
              evr_err_t *err)
{
    void *h = zsock_resolve(sock);
    evr_flow_t *flow = evr_flow_of(h);
    if (flow)
        return evr_flow_send(flow, h, rid ? zframe_data(rid) : NULL, rid ? zframe_size(rid) : 0,
                             first, body, len, err);
    evr_rc_t rc = EVR_OK;
    if ((rid && zmq_send(h, zframe_data(rid), zframe_size(rid), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        || zmq_send(h, first, strlen(first), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send(h, body, len, ZMQ_DONTWAIT) < 0)
        rc = evr_err_set(err, EVR_ERR_IO, "send: %s", zmq_strerror(zmq_errno()));
    free(body);   /* on a ROUTER, a routing id alone is dropped by libzmq */
    return rc;
}

static struct {
    void *h;
    uint8_t id[32];
    size_t len;
    evr_bus_loopback_fn *fn;
    void *arg;
} s_loop[4];

void
evr_bus_loopback(zsock_t *sock, const zframe_t *rid, evr_bus_loopback_fn *fn, void *arg)
{
    void *h = zsock_resolve(sock);
    for (size_t i = 0; i < sizeof s_loop / sizeof s_loop[0]; i++)
        if (s_loop[i].h == h)
            s_loop[i].h = NULL;
    size_t len = rid ? zframe_size((zframe_t *) rid) : 0;
    if (!fn || !len || len > sizeof s_loop[0].id)
        return;
    for (size_t i = 0; i < sizeof s_loop / sizeof s_loop[0]; i++)
        if (!s_loop[i].h) {
            s_loop[i].h = h;
            memcpy(s_loop[i].id, zframe_data((zframe_t *) rid), len);
            s_loop[i].len = len;
            s_loop[i].fn = fn;
            s_loop[i].arg = arg;
            return;
        }
    assert(!"evr_bus_loopback: more than 4 at once");
}

/*  The loopback of (sock, rid), or -1. */
static int
s_loopback_of(zsock_t *sock, zframe_t *rid)
{
    if (!rid)
        return -1;
    void *h = zsock_resolve(sock);
    for (size_t i = 0; i < sizeof s_loop / sizeof s_loop[0]; i++)
        if (s_loop[i].h && s_loop[i].h == h && s_loop[i].len == zframe_size(rid)
            && memcmp(s_loop[i].id, zframe_data(rid), s_loop[i].len) == 0)
            return (int) i;
    return -1;
}

evr_rc_t
evr_bus_send(zsock_t *sock, zframe_t *rid, const evr_msg_t *msg, evr_err_t *err)
{
    int lb = s_loopback_of(sock, rid);
    if (lb >= 0) {
        s_loop[lb].fn(s_loop[lb].arg, msg);
        return EVR_OK;
    }
    char hdr[EVR_MSG_HEADER_MAX];
    uint8_t *buf;
    size_t len;
    evr_msg_header(msg->type, hdr);
    evr_msg_encode(msg, &buf, &len);
    if (len > EVR_MSG_MAX_BYTES) {
        free(buf);
        return evr_err_set(err, EVR_ERR_LIMIT, "the %s message is %zu bytes, over the limit "
                           "of %u bytes", hdr + sizeof EVR_MSG_PROTO, len, EVR_MSG_MAX_BYTES);
    }
    return s_send_frames(sock, rid, hdr, buf, len, err);
}

evr_rc_t
evr_bus_vsend_text(zsock_t *sock, zframe_t *rid, evr_msg_t *m, const char *fmt, va_list ap)
{
    char text[EVR_MESSAGE_MAX + 1];
    int n = vsnprintf(text, sizeof text, fmt, ap);
    if (n > EVR_MESSAGE_MAX)
        evr_text_cut(text, EVR_MESSAGE_MAX);    /* on a character, "…" last */
    /* a str on the wire is UTF-8: a value quoted cut mid-character by a
       bounded %s somewhere would make the whole answer undecodable */
    evr_utf8_clean(text);
    m->message = text;
    evr_rc_t rc = evr_bus_send(sock, rid, m, NULL);
    m->message = NULL;
    return rc;
}

evr_rc_t
evr_bus_send_error(zsock_t *sock, zframe_t *rid, const char *code, const char *fmt, ...)
{
    evr_msg_t m = { .type = EVR_MSG_ERROR, .code = (char *) code };
    va_list ap;
    va_start(ap, fmt);
    evr_rc_t rc = evr_bus_vsend_text(sock, rid, &m, fmt, ap);
    va_end(ap);
    return rc;
}

bool
evr_bus_readable(zsock_t *sock)
{
    return (zsock_events(sock) & ZMQ_POLLIN) != 0;
}

evr_rc_t
evr_bus_recv(zsock_t *sock, zframe_t **rid, evr_msg_t *msg, const char **code, evr_err_t *err)
{
    return evr_bus_recv_from(sock, rid, NULL, msg, code, err);
}

evr_rc_t
evr_bus_recv_from(zsock_t *sock, zframe_t **rid, char user[41], evr_msg_t *msg,
                  const char **code, evr_err_t *err)
{
    return evr_bus_recv_wire(sock, rid, user, msg, NULL, code, err);
}

void
evr_bus_wire_close(evr_bus_wire_t *wire)
{
    if (wire->open)
        zmq_msg_close(&wire->frame);
    wire->open = false;
}

/*  Receives one message's frames with libzmq's own calls (no czmq message:
    its frames are each a malloc and a ZMQ_RCVMORE option read): part[0]
    the routing id when routed, part[1] the next frame (the header),
    part[2] the last one after it (the body); *got counts the frames
    received (each kept in part is open).  EVR_ERR_NOTFOUND when none
    waits. */
static evr_rc_t
s_recv_parts(void *h, bool routed, zmq_msg_t part[3], size_t *got, evr_err_t *err)
{
    size_t r = routed ? 1 : 0;
    bool more = true;
    for (*got = 0; more; (*got)++) {
        size_t at = routed && *got == 0 ? 0 : *got == r ? 1 : 2;
        if (*got > r + 1)
            zmq_msg_close(&part[2]);    /* a middle frame: only the last is the body */
        zmq_msg_init(&part[at]);
        if (zmq_msg_recv(&part[at], h, 0) < 0) {
            int e = zmq_errno();
            zmq_msg_close(&part[at]);
            if (*got > r + 1)   /* closed above: not counted as kept */
                (*got)--;
            if (*got == 0 && e == EAGAIN)   /* a socket with a receive timeout: none waits */
                return evr_err_set(err, EVR_ERR_NOTFOUND, "receive: no message waits");
            return evr_err_set(err, EVR_ERR_IO, "receive: %s", zmq_strerror(e));
        }
        more = zmq_msg_more(&part[at]);
    }
    return EVR_OK;
}

/*  evr_bus_recv_wire, and with peek (not NULL) evr_bus_recv_peek. */
static evr_rc_t
s_recv(zsock_t *sock, zframe_t **rid, char user[41], evr_msg_t *msg, evr_bus_wire_t *wire,
       evr_msg_peek_t *peek, const char **code, evr_err_t *err)
{
    *code = EVR_CODE_BAD_REQUEST;
    if (user)
        user[0] = '\0';
    if (rid)
        *rid = NULL;
    zmq_msg_t part[3];
    size_t got;
    bool routed = rid != NULL;
    evr_rc_t rc = s_recv_parts(zsock_resolve(sock), routed, part, &got, err);
    size_t r = routed ? 1 : 0;      /* frames before the header */
    if (routed && got >= 1)
        *rid = zframe_new(zmq_msg_data(&part[0]), zmq_msg_size(&part[0]));
    size_t n = got >= r ? got - r : 0;
    if (!rc && n < 2)
        rc = evr_err_set(err, EVR_ERR_PROTO, "a message needs a header frame and a body frame, "
                         "got %zu frame%s", n, n == 1 ? "" : "s");
    else if (!rc) {
        zmq_msg_t *hdr = &part[1], *body = &part[2];
        const char *u = user ? zmq_msg_gets(hdr, "User-Id") : NULL;
        if (u)
            snprintf(user, 41, "%s", u);
        rc = evr_msg_decode((const char *) zmq_msg_data(hdr), zmq_msg_size(hdr),
                            zmq_msg_data(body), zmq_msg_size(body), msg, code, err);
        if (!rc && wire && !evr_codec_skipped()) {   /* it decodes to msg, all of it */
            zmq_msg_init(&wire->frame);
            zmq_msg_move(&wire->frame, body);
            wire->open = true;
        }
        if (rc && peek)
            evr_msg_peek((const char *) zmq_msg_data(hdr), zmq_msg_size(hdr), zmq_msg_data(body),
                         zmq_msg_size(body), peek);
    }
    /* part[0] holds a frame when routed and one came; [1] after r + 1 frames; [2] after r + 2 */
    if (routed && got >= 1)
        zmq_msg_close(&part[0]);
    if (got >= r + 1)
        zmq_msg_close(&part[1]);
    if (got >= r + 2)
        zmq_msg_close(&part[2]);
    return rc;
}

evr_rc_t
evr_bus_recv_wire(zsock_t *sock, zframe_t **rid, char user[41], evr_msg_t *msg,
                  evr_bus_wire_t *wire, const char **code, evr_err_t *err)
{
    return s_recv(sock, rid, user, msg, wire, NULL, code, err);
}

evr_rc_t
evr_bus_recv_peek(zsock_t *sock, evr_msg_t *msg, evr_msg_peek_t *peek, const char **code,
                  evr_err_t *err)
{
    return s_recv(sock, NULL, NULL, msg, NULL, peek, code, err);
}

static evr_rc_t
s_publish(zsock_t *pub, const char *topic, const evr_msg_t *m, evr_err_t *err)
{
    uint8_t *buf;
    size_t len;
    evr_msg_encode(m, &buf, &len);
    if (len > EVR_PUB_MAX_BYTES) {   /* see evr_bus.h: no field table allows it */
        free(buf);
        return evr_err_set(err, EVR_ERR_LIMIT, "the publication %s is %zu bytes, over the "
                           "limit of %u bytes", topic, len, EVR_PUB_MAX_BYTES);
    }
    return s_send_frames(pub, NULL, topic, buf, len, err);
}

evr_rc_t
evr_bus_publish_event(zsock_t *pub, const evr_event_t *ev, evr_err_t *err)
{
    char topic[128];
    snprintf(topic, sizeof topic, "ev.%s.%s", ev->job ? ev->job : "-",
             evr_evtype_name(evr_event_kind(ev)));
    evr_event_t cut;
    evr_spec_t *stub = NULL;
    if (evr_event_kind(ev) == EVR_EV_JOB_ACCEPTED) {   /* the stub, without args */
        cut = *ev;
        stub = ev->data.spec ? evr_spec_stub(ev->data.spec) : NULL;
        cut.data.spec = stub;
        memset(&cut.data.args, 0, sizeof cut.data.args);
        ev = &cut;
    }
    evr_msg_t m = { .type = EVR_MSG_EVENT, .event = (evr_event_t *) ev };
    evr_rc_t rc = s_publish(pub, topic, &m, err);
    evr_spec_destroy(&stub);
    return rc;
}

evr_rc_t
evr_bus_publish_runner(zsock_t *pub, const evr_msg_t *runner, evr_err_t *err)
{
    char topic[128];
    snprintf(topic, sizeof topic, "rn.%s", runner->runner);
    return s_publish(pub, topic, runner, err);
}

evr_rc_t
evr_bus_recv_pub(zsock_t *sub, char **topic, evr_msg_t *msg, evr_err_t *err)
{
    *topic = NULL;
    zmsg_t *zm = zmsg_recv(sub);
    if (!zm)
        return evr_err_set(err, EVR_ERR_IO, "receive: %s", zmq_strerror(zmq_errno()));
    evr_rc_t rc;
    if (zmsg_size(zm) < 2)
        rc = evr_err_set(err, EVR_ERR_PROTO, "a publication needs a topic and a body");
    else {
        zframe_t *t = zmsg_first(zm), *body = zmsg_last(zm);
        *topic = evr_strndup((const char *) zframe_data(t), zframe_size(t));
        bool ev = strncmp(*topic, "ev.", 3) == 0;
        char hdr[EVR_MSG_HEADER_MAX];
        evr_msg_header(ev ? EVR_MSG_EVENT : EVR_MSG_RUNNER, hdr);
        const char *code;
        rc = evr_msg_decode(hdr, strlen(hdr), zframe_data(body), zframe_size(body), msg, &code,
                            err);
    }
    zmsg_destroy(&zm);
    if (rc) {
        free(*topic);
        *topic = NULL;
    }
    return rc;
}
