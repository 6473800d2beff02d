/*  evr_client.c: see evr_client.h. */
#include "evr_client.h"

#include <ctype.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "evr_bus.h"
#include "evr_curve.h"
#include "evr_watch.h"

const evr_config_key_t evr_client_keys[] = {
    { "state_dir", NULL, "where a local broker's sockets are (bus/)" },
    { "client_endpoint", NULL, "the broker's client endpoint" },
    { "events_endpoint", NULL, "the broker's event stream" },
    { "timeout_ms", "10000", "longest wait for the broker's answer" },
    { "client_cert", NULL, "this client's CURVE key pair for tcp:// (default STATE_DIR/curve/client.cert)" },
    { "broker_key", NULL, "the broker's public key for tcp://: its certificate file or 40-character key (default STATE_DIR/curve/broker.cert)" },
};
const size_t evr_client_nkeys = EVR_ARRAY_LEN(evr_client_keys);

struct evr_client {
    zsock_t *sock;
    char *ep;
    int timeout_ms;
    bool owed;              /* a request sent is not answered in full yet */
    bool sent;              /* the last call's or stream's request went out */
    bool curve;             /* keys apply (a tcp:// endpoint) */
    evr_curve_keys_t keys;  /* kept for evr_client_reconnect */
    volatile sig_atomic_t *stop;    /* set by a signal handler: a wait ends (set_stop) */
};

/*  The event stream next to a given client endpoint: ipc://D/clients ->
    ipc://D/events, tcp://HOST:PORT -> tcp://HOST:PORT+2 (the defaults'
    layout; PORT 65534 or 65535, which have no PORT+2: tcp://HOST:7702,
    the broker's default, on that host still); NULL when it cannot be
    told. */
static char *
s_events_beside(const char *ep)
{
    size_t n = strlen(ep);
    if (!strncmp(ep, "ipc://", 6) && n > 8 && !strcmp(ep + n - 8, "/clients"))
        return evr_asprintf("%.*s/events", (int) (n - 8), ep);
    const char *colon = strrchr(ep, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!strncmp(ep, "tcp://", 6) && colon > ep + 6 && port > 0 && port <= 65535 && !*end)
        return evr_asprintf("%.*s:%ld", (int) (colon - ep), ep, port < 65534 ? port + 2 : 7702);
    return NULL;
}

void
evr_client_endpoints(evr_config_t *cfg)
{
    const char *state = evr_config_get(cfg, "state_dir");
    evr_client_endpoints_as(cfg, state && evr_config_local_up(state));
}

void
evr_client_endpoints_as(evr_config_t *cfg, bool local)
{
    const char *client = evr_config_get(cfg, "client_endpoint");
    char *events = client ? s_events_beside(client) : NULL;
    if (events)
        evr_config_default(cfg, "events_endpoint", events);
    free(events);
    evr_config_endpoints(cfg, local);
    evr_curve_defaults(cfg, "client_cert", "client.cert");
}

/*  Whether tcp://HOST:PORT (a numeric IPv4 host, as the default
    127.0.0.1) takes a plain TCP connection now: a broker listens there. */
static bool
s_listens(const char *ep)
{
    unsigned a, b, c, d, port;
    char tail;
    if (sscanf(ep, "tcp://%u.%u.%u.%u:%u%c", &a, &b, &c, &d, &port, &tail) != 5 || a > 255
        || b > 255 || c > 255 || d > 255 || !port || port > 65535)
        return false;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                              .sin_addr.s_addr = htonl(a << 24 | b << 16 | c << 8 | d) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool up = fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return up;
}

/*  Whether no endpoint was chosen (none given, no local broker found: the
    default tcp:// one) and no broker key either, the default one missing,
    and nothing listens at that default endpoint: then no broker runs here
    and none elsewhere was asked for (one that listens there, another
    user's or a service's, needs its key: the key's message says so). */
static bool
s_nothing_chosen(const evr_config_t *cfg)
{
    const char *key = evr_config_get(cfg, "broker_key");
    struct stat sb;
    return !strcmp(evr_config_source(cfg, "client_endpoint"), "derived") &&
           !strcmp(evr_config_source(cfg, "broker_key"), "derived") && key &&
           stat(key, &sb) != 0 && errno == ENOENT &&
           !s_listens(evr_config_get(cfg, "client_endpoint"));
}

/*  CURVE on a tcp:// endpoint: this client's pair (made when missing,
    saying so) and the broker's key on sock; into *kept too when given. */
static evr_rc_t
s_curve(const evr_config_t *cfg, zsock_t *sock, const char *ep, evr_curve_keys_t *kept,
        evr_err_t *err)
{
    if (!evr_curve_needed(ep))
        return EVR_OK;
    if (s_nothing_chosen(cfg)) {
        const char *state = evr_config_get(cfg, "state_dir");
        return evr_err_set(err, EVR_ERR_IO, "no broker runs at the state directory %s (nothing "
                           "listens at ipc://%s/bus/clients): start one with `evrun-cli up`, or reach a "
                           "remote one with --broker tcp://HOST:PORT and --broker-key its "
                           "curve/broker.cert", state, state);
    }
    bool made = false;
    const char *cert = evr_config_get(cfg, "client_cert");
    evr_curve_keys_t keys;
    evr_rc_t rc = evr_curve_load(cert, evr_config_get(cfg, "broker_key"), &keys, &made, err);
    if (!rc) {
        evr_curve_apply(&keys, sock);
        if (kept)
            *kept = keys;
    }
    if (made)
        fprintf(stderr, "made the key pair %s: a broker with another state directory admits "
                "this client once %s is copied into its curve/clients/\n", cert, cert);
    return rc;
}

evr_rc_t
evr_client_config_timeout(const evr_config_t *cfg, uint64_t *ms, evr_err_t *err)
{
    evr_rc_t rc = evr_config_uint(cfg, "timeout_ms", 1, 3600000, ms, err);
    if (rc)
        return evr_err_set(err, rc, "%s (--timeout-ms, EVRUN_TIMEOUT_MS)", err->msg);
    return EVR_OK;
}

static const char *
s_hint(const char *ep)
{
    return strncmp(ep, "ipc://", 6) == 0 ? "is evrun-broker running? (try: evrun-cli up)"
                                         : "is evrun-broker running there, does it admit "
                                           "this client's key (client_cert, copied into the "
                                           "broker's curve/clients/; its log names the keys it "
                                           "refuses), and is broker_key the broker's own "
                                           "curve/broker.cert? For a local broker: evrun-cli up";
}

/*  An ipc:// endpoint ep to connect to (what: "client", "events") whose
    path is there but is no socket (a file, a FIFO, a link): EVR_ERR_CONFIG
    naming it and the endpoint wanted, before evr_bus_check_endpoint would
    advise removing it, as it does to a broker binding there (a file a
    user named by mistake is not in a client's way). */
static evr_rc_t
s_not_socket(const char *ep, const char *what, evr_err_t *err)
{
    struct stat sb;
    if (strncmp(ep, "ipc://", 6) != 0 || lstat(ep + 6, &sb) != 0 || S_ISSOCK(sb.st_mode)
        || S_ISDIR(sb.st_mode))
        return EVR_OK;
    return evr_err_set(err, EVR_ERR_CONFIG, "%s: %s is %s, not a socket: no broker listens "
                       "there: give the broker's %s endpoint (a local broker's is "
                       "ipc://STATE_DIR/bus/%s)", ep, ep + 6,
                       S_ISLNK(sb.st_mode) ? "a symbolic link" : S_ISFIFO(sb.st_mode) ? "a FIFO"
                       : S_ISREG(sb.st_mode) ? "a file" : "a device",
                       what, strcmp(what, "events") ? "clients" : "events");
}

/*  A DEALER as the client's: writable only once connected, dropping
    what it holds when closed. */
static zsock_t *
s_dealer(void)
{
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    evr_bus_setup(sock);
    zsock_set_immediate(sock, 1);
    zsock_set_linger(sock, 0);
    return sock;
}

#define S_SETTLE_NS 1000000000ull   /* a failed handshake waits this long for a clearer one */

/*  What a handshake came to on endpoint ep: without CURVE, a failure
    with no detail is another kind of socket closing the connection. */
static evr_watch_seen_t
s_seen_on(const char *ep, evr_watch_seen_t seen)
{
    return seen == EVR_WATCH_FAILED && !evr_curve_needed(ep) ? EVR_WATCH_DROPPED : seen;
}

/*  Waits up to wait_ms until sock (a DEALER with ZMQ_IMMEDIATE: writable
    only once connected; NULL: a SUB, up at its first handshake) is
    connected, or watch saw a handshake fail in a way ZeroMQ's retries
    will not mend (a refused key, a wrong broker key, another mechanism or
    socket); *seen gets the most telling thing the watch saw.  A failure
    with no detail or a dropped connection waits up to S_SETTLE_NS more
    for ZeroMQ's next try: the first of a plain socket against a CURVE one
    often fails with no detail, the next says "mechanism mismatch". */
static bool
s_wait_up(zsock_t *sock, evr_watch_t *watch, int wait_ms, evr_watch_seen_t *seen)
{
    zmq_pollitem_t it[2] = { { sock ? zsock_resolve(sock) : NULL, 0, ZMQ_POLLOUT, 0 },
                             { watch ? zsock_resolve(evr_watch_socket(watch)) : NULL, 0,
                               ZMQ_POLLIN, 0 } };
    zmq_pollitem_t *items = sock ? it : it + 1;
    int n = (sock ? 1 : 0) + (watch ? 1 : 0);
    uint64_t until = evr_mono_ns() + (uint64_t) wait_ms * 1000000ull;
    *seen = EVR_WATCH_NONE;
    for (;;) {
        uint64_t now = evr_mono_ns();
        if (now >= until || zmq_poll(items, n, (long) ((until - now) / 1000000)) < 0)
            return false;
        if (sock && (it[0].revents & ZMQ_POLLOUT))
            return true;
        if (!watch || !(it[1].revents & ZMQ_POLLIN))
            continue;
        evr_watch_seen_t s = evr_watch_read(watch);
        if (s == EVR_WATCH_UP && !sock)
            return true;
        if (s > *seen && s != EVR_WATCH_UP) {
            if (*seen < EVR_WATCH_DROPPED && s >= EVR_WATCH_DROPPED
                && until > evr_mono_ns() + S_SETTLE_NS)
                until = evr_mono_ns() + S_SETTLE_NS;
            *seen = s;
        }
        if (*seen >= EVR_WATCH_MECHANISM)
            return false;
    }
}

/*  The error of a client endpoint ep not connected to: what the watch saw
    (seen), said with its fix. */
static evr_rc_t
s_unreached(const evr_config_t *cfg, const char *ep, evr_watch_seen_t seen, evr_err_t *err)
{
    bool curve = evr_curve_needed(ep);
    char why[600];
    switch (seen) {
    case EVR_WATCH_REFUSED:   /* the runner endpoint refuses client keys too (its ZAP domain) */
        return evr_err_set(err, EVR_ERR_IO, "the broker at %s refuses this client's key: admit "
                           "it by copying %s into the broker's curve/clients/ (if it is there "
                           "already, %s is not the broker's client endpoint but its runner one)",
                           ep, evr_config_get(cfg, "client_cert"), ep);
    case EVR_WATCH_MECHANISM:
        if (curve)
            return evr_err_set(err, EVR_ERR_IO, "the peer at %s speaks no CURVE, as every "
                               "tcp:// endpoint of an evrun broker does: it is no broker's "
                               "endpoint (a plain ZeroMQ socket, or a forward to a broker's "
                               "ipc:// socket?): give the broker's own tcp:// client endpoint "
                               "(--broker), or on its host its ipc:// one", ep);
        return evr_err_set(err, EVR_ERR_IO, "the peer at %s wants CURVE, which no ipc:// "
                           "endpoint of an evrun broker carries: it is a tcp:// endpoint "
                           "reached through a forward, not the broker's ipc:// socket: give the "
                           "broker's tcp:// client endpoint (--broker tcp://HOST:PORT) and its "
                           "key (--broker-key, a copy of its curve/broker.cert)", ep);
    case EVR_WATCH_FAILED:   /* a wrong server key and another socket type look alike here */
        return evr_err_set(err, EVR_ERR_IO, "the CURVE handshake with the broker at %s failed: "
                           "is broker_key (%s) that broker's own curve/broker.cert, and %s its "
                           "client endpoint (not its events one)?", ep,
                           evr_config_get(cfg, "broker_key"), ep);
    case EVR_WATCH_DROPPED:
        return evr_err_set(err, EVR_ERR_IO, "the socket at %s closed the connection during "
                           "its handshake: it is not the broker's client endpoint (its events "
                           "one?): give the client endpoint (--broker; a local broker's is "
                           "ipc://STATE_DIR/bus/clients)", ep);
    default:
        evr_watch_ipc_why(ep, why, sizeof why);
        return evr_err_set(err, EVR_ERR_IO, "cannot reach the broker at %s%s%s%s: %s", ep,
                           *why ? " (" : "", why, *why ? ")" : "", s_hint(ep));
    }
}

evr_rc_t
evr_client_new(const evr_config_t *cfg, evr_client_t **out, evr_err_t *err)
{
    return evr_client_new_within(cfg, 3000, out, err);
}

evr_rc_t
evr_client_new_within(const evr_config_t *cfg, int wait_ms, evr_client_t **out, evr_err_t *err)
{
    *out = NULL;
    const char *ep = evr_config_get(cfg, "client_endpoint");
    evr_rc_t rc = ep && *ep ? s_not_socket(ep, "client", err) : EVR_OK;
    if (rc || (rc = evr_bus_check_endpoint(ep, err)))
        return rc;
    evr_bus_init();   /* czmq set up, its signal handlers off (evr_bus.h) */
    uint64_t t;
    if ((rc = evr_client_config_timeout(cfg, &t, err)))
        return rc;
    evr_client_t *c = evr_calloc(1, sizeof *c);
    c->ep = evr_strdup(ep);
    c->timeout_ms = (int) t;
    c->sock = s_dealer();
    if ((rc = s_curve(cfg, c->sock, ep, &c->keys, err))) {
        evr_client_destroy(&c);
        return rc;
    }
    c->curve = evr_curve_needed(ep);
    /* a watch tells a refused key, a wrong broker key, another mechanism
       or socket from nothing listening (ZeroMQ itself only waits) */
    evr_watch_t *watch = evr_watch_new(c->sock);
    zsock_connect(c->sock, "%s", ep);
    int wait = c->timeout_ms < 3000 ? c->timeout_ms : 3000;
    if (wait > wait_ms)
        wait = wait_ms > 0 ? wait_ms : 1;
    evr_watch_seen_t seen;
    bool up = s_wait_up(c->sock, watch, wait, &seen);
    evr_watch_destroy(&watch, c->sock);
    if (up) {
        *out = c;
        return EVR_OK;
    }
    rc = s_unreached(cfg, ep, s_seen_on(ep, seen), err);
    evr_client_destroy(&c);
    return rc;
}

void
evr_client_destroy(evr_client_t **self_p)
{
    evr_client_t *c = *self_p;
    if (!c)
        return;
    zsock_destroy(&c->sock);
    free(c->ep);
    free(c);
    *self_p = NULL;
}

evr_rc_t
evr_client_reconnect(evr_client_t *self, evr_err_t *err)
{
    if (!self->owed)
        return EVR_OK;      /* nothing on its way: the connection is kept */
    self->owed = false;
    zsock_destroy(&self->sock);
    self->sock = s_dealer();
    if (self->curve)
        evr_curve_apply(&self->keys, self->sock);
    if (zsock_connect(self->sock, "%s", self->ep) < 0) {
        self->owed = true;  /* the next reconnect tries again */
        return evr_err_set(err, EVR_ERR_IO, "cannot connect to the broker at %s: %s", self->ep,
                           zmq_strerror(zmq_errno()));
    }
    return EVR_OK;
}

int
evr_client_timeout(const evr_client_t *self)
{
    return self->timeout_ms;
}

volatile sig_atomic_t *
evr_client_set_stop(evr_client_t *self, volatile sig_atomic_t *stop)
{
    volatile sig_atomic_t *was = self->stop;
    self->stop = stop;
    return was;
}

int
evr_client_set_timeout(evr_client_t *self, int ms)
{
    int was = self->timeout_ms;
    self->timeout_ms = ms > 0 ? ms : 1;
    return was;
}

const char *
evr_client_endpoint(const evr_client_t *self)
{
    return self->ep;
}

bool
evr_client_sent(const evr_client_t *self)
{
    return self->sent;
}

bool
evr_client_connected(const evr_client_t *self)
{
    /* ZMQ_IMMEDIATE: writable only while a connection is up */
    zmq_pollitem_t it = { zsock_resolve(self->sock), 0, ZMQ_POLLOUT, 0 };
    return zmq_poll(&it, 1, 0) == 1 && (it.revents & ZMQ_POLLOUT);
}

#define S_SLICE_MS 100         /* an answer waited for looks at the connection this often */
#define S_DROPPED_NS 500000000ull   /* ...and gives up once it was down this long */

/*  Whether the caller's stop flag is set: a signal its handler caught.
    It interrupts the slice of the wait it came in (EINTR); one that came
    between two slices (the process runnable, not waiting, as it is often
    on a loaded machine) is seen here, else the wait went on to its end. */
static bool
s_stopped(const evr_client_t *c)
{
    return c->stop && *c->stop;
}

/*  zmq_poll of it for up to ms, in slices of S_SLICE_MS, until an event,
    an error (EINTR) or s_stopped: its result (-1 with EINTR when
    stopped). */
static int
s_poll(const evr_client_t *c, zmq_pollitem_t *it, int ms)
{
    uint64_t until = evr_mono_ns() + (uint64_t) ms * 1000000ull, now;
    int n = 0;
    while (n == 0 && (now = evr_mono_ns()) < until) {
        if (s_stopped(c)) {
            errno = EINTR;  /* zmq_errno's */
            return -1;
        }
        uint64_t left = (until - now + 999999u) / 1000000u;
        n = zmq_poll(it, 1, left < S_SLICE_MS ? (long) left : S_SLICE_MS);
    }
    return n;
}

/*  Waits up to timeout_ms for an answer; not once the connection dropped
    (down S_DROPPED_NS: the broker stopped, or went away and came back),
    as its answer, if any, went with it. */
static evr_rc_t
s_recv(evr_client_t *c, evr_msg_t *reply, evr_err_t *err)
{
    zmq_pollitem_t it = { zsock_resolve(c->sock), 0, ZMQ_POLLIN, 0 };
    uint64_t until = evr_mono_ns() + (uint64_t) c->timeout_ms * 1000000ull, down = 0, now;
    int n = 0;
    while (n == 0 && (now = evr_mono_ns()) < until) {
        uint64_t left = (until - now + 999999u) / 1000000u;
        if ((n = s_poll(c, &it, left < S_SLICE_MS ? (int) left : S_SLICE_MS)) != 0)
            break;
        if (evr_client_connected(c))
            down = 0;
        else if (!down)
            down = evr_mono_ns();
        else if (evr_mono_ns() - down >= S_DROPPED_NS)
            return evr_err_set(err, EVR_ERR_IO, "no answer from the broker at %s: the "
                               "connection to it dropped while waiting: %s", c->ep,
                               s_hint(c->ep));
    }
    if (n < 0 && zmq_errno() == EINTR)   /* a signal a handler caught (Ctrl-C) */
        return evr_err_set(err, EVR_ERR_IO, "no answer from the broker at %s: a signal "
                           "interrupted the wait for it", c->ep);
    if (n <= 0)
        return evr_err_set(err, EVR_ERR_IO, "no answer from the broker at %s within %d ms: %s",
                           c->ep, c->timeout_ms, s_hint(c->ep));
    const char *code;
    evr_rc_t rc = evr_bus_recv(c->sock, NULL, reply, &code, err);
    if (rc)
        return evr_err_set(err, EVR_ERR_PROTO, "a malformed answer from the broker: %s",
                           err->msg);
    return EVR_OK;
}

/*  Sends req once connected: a fresh connection (evr_client_reconnect) is
    waited for, up to timeout_ms; none by then (the broker is not running,
    or restarting): EVR_ERR_IO, said as no answer. */
static evr_rc_t
s_send(evr_client_t *c, const evr_msg_t *req, evr_err_t *err)
{
    zmq_pollitem_t it = { zsock_resolve(c->sock), 0, ZMQ_POLLOUT, 0 };
    int n = s_poll(c, &it, c->timeout_ms);
    if (n < 0 && zmq_errno() == EINTR)
        return evr_err_set(err, EVR_ERR_IO, "cannot send to the broker at %s: a signal "
                           "interrupted the wait for the connection", c->ep);
    if (n <= 0)
        return evr_err_set(err, EVR_ERR_IO, "no answer from the broker at %s within %d ms: no "
                           "connection to it, cannot send: %s", c->ep, c->timeout_ms,
                           s_hint(c->ep));
    evr_rc_t rc = evr_bus_send(c->sock, NULL, req, err);
    if (rc == EVR_ERR_LIMIT)    /* no broker would take it: nothing to hint at */
        return evr_err_set(err, rc, "cannot send to the broker at %s: %s", c->ep, err->msg);
    if (rc)
        return evr_err_set(err, EVR_ERR_IO, "no answer from the broker at %s: cannot send (%s): "
                           "%s", c->ep, err->msg, s_hint(c->ep));
    return EVR_OK;
}

evr_rc_t
evr_client_call(evr_client_t *self, const evr_msg_t *req, evr_msg_t *reply, evr_err_t *err)
{
    evr_rc_t rc = s_send(self, req, err);
    if ((self->sent = !rc) == false)
        return rc;
    self->owed = true;
    if ((rc = s_recv(self, reply, err)) != EVR_ERR_IO)
        self->owed = false;     /* answered, if malformed */
    return rc;
}

evr_rc_t
evr_client_stream(evr_client_t *self, const evr_msg_t *req, evr_client_item_fn *fn, void *arg,
                  evr_err_t *err)
{
    evr_msg_t end = { 0 };
    evr_rc_t rc = evr_client_stream_end(self, req, fn, arg, &end, err);
    evr_msg_clear(&end);
    return rc;
}

evr_rc_t
evr_client_stream_end(evr_client_t *self, const evr_msg_t *req, evr_client_item_fn *fn,
                      void *arg, evr_msg_t *end, evr_err_t *err)
{
    evr_rc_t rc = s_send(self, req, err);
    if ((self->sent = !rc) == false)
        return rc;
    self->owed = true;      /* until its `end` or `error` */
    bool stopped = false;
    for (;;) {
        evr_msg_t m = { 0 };
        if ((rc = s_recv(self, &m, err)))
            return rc;
        if (m.type == EVR_MSG_END) {
            *end = m;   /* its strings, if any, are the caller's now */
            self->owed = false;
            return EVR_OK;
        }
        if (m.type == EVR_MSG_ERROR) {
            self->owed = false;
            rc = evr_err_set(err, EVR_ERR_STATE, "%s: %s", m.code, m.message);
            evr_msg_clear(&m);
            return rc;
        }
        if (!stopped && fn(&m, arg))
            stopped = true;
        evr_msg_clear(&m);
    }
}

/*  The error of an event stream ep whose handshake did not succeed
    within wait_ms: what the watch saw (seen), said with its fix. */
static evr_rc_t
s_no_stream(const evr_config_t *cfg, const char *ep, evr_watch_seen_t seen, int wait_ms,
            evr_err_t *err)
{
    const char *fix = "give --events-endpoint the broker's events endpoint (by default its "
                      "client endpoint's port + 2, tcp://HOST:7702; a local broker's is "
                      "ipc://STATE_DIR/bus/events)";
    char why[600];
    switch (seen) {
    case EVR_WATCH_REFUSED:
        return evr_err_set(err, EVR_ERR_IO, "the broker at %s refuses this client's key on "
                           "its event stream: admit it by copying %s into the broker's "
                           "curve/clients/ (if it is there already, %s is not the broker's "
                           "events endpoint but its runner one: %s)", ep,
                           evr_config_get(cfg, "client_cert"), ep, fix);
    case EVR_WATCH_MECHANISM:
        return evr_err_set(err, EVR_ERR_IO, "the peer at %s %s: it is not the broker's events "
                           "endpoint: %s", ep, evr_curve_needed(ep)
                           ? "speaks no CURVE, as every tcp:// endpoint of an evrun broker does"
                           : "wants CURVE, which no ipc:// endpoint of an evrun broker carries",
                           fix);
    case EVR_WATCH_FAILED:
        return evr_err_set(err, EVR_ERR_IO, "the CURVE handshake with the event stream at %s "
                           "failed: is broker_key (%s) that broker's own curve/broker.cert, "
                           "and %s its events endpoint (not its client or runner one)? %s", ep,
                           evr_config_get(cfg, "broker_key"), ep, fix);
    case EVR_WATCH_DROPPED:
        return evr_err_set(err, EVR_ERR_IO, "the socket at %s closed the connection during "
                           "its handshake: it is not the broker's events endpoint (its client "
                           "or runner one?): %s", ep, fix);
    default:
        evr_watch_ipc_why(ep, why, sizeof why);
        return evr_err_set(err, EVR_ERR_IO, "no event stream at %s%s%s%s: no handshake within "
                           "%d ms (the broker answers at %s): %s", ep, *why ? " (" : "", why,
                           *why ? ")" : "", wait_ms, evr_config_get(cfg, "client_endpoint"),
                           fix);
    }
}

/*  A SUB on cfg's events endpoint; with check, its first handshake
    waited for (s_wait_up). */
static zsock_t *
s_subscribe(const evr_config_t *cfg, const char *prefix, int hwm, bool check, evr_err_t *err)
{
    const char *ep = evr_config_get(cfg, "events_endpoint");
    uint64_t t = 0;
    if ((ep && *ep && s_not_socket(ep, "events", err)) || evr_bus_check_endpoint(ep, err)
        || (check && evr_client_config_timeout(cfg, &t, err)))
        return NULL;
    zsock_t *sub = zsock_new(ZMQ_SUB);
    evr_bus_setup(sub);
    if (s_curve(cfg, sub, ep, NULL, err)) {
        zsock_destroy(&sub);
        return NULL;
    }
    zsock_set_linger(sub, 0);
    if (hwm > 0)
        zsock_set_rcvhwm(sub, hwm);
    zsock_set_subscribe(sub, prefix);
    evr_watch_t *watch = check ? evr_watch_new(sub) : NULL;
    if (zsock_connect(sub, "%s", ep) < 0) {
        evr_err_set(err, EVR_ERR_IO, "cannot connect to the event stream at %s: %s", ep,
                    zmq_strerror(zmq_errno()));
        evr_watch_destroy(&watch, sub);
        zsock_destroy(&sub);
        return NULL;
    }
    if (watch) {
        int wait = t < 3000 ? (int) t : 3000;
        evr_watch_seen_t seen;
        bool up = s_wait_up(NULL, watch, wait, &seen);
        evr_watch_destroy(&watch, sub);
        if (!up) {
            s_no_stream(cfg, ep, s_seen_on(ep, seen), wait, err);
            zsock_destroy(&sub);
        }
    }
    return sub;
}

zsock_t *
evr_client_subscribe(const evr_config_t *cfg, const char *prefix, evr_err_t *err)
{
    return s_subscribe(cfg, prefix, 0, true, err);
}

zsock_t *
evr_client_subscribe_hwm(const evr_config_t *cfg, const char *prefix, int hwm, evr_err_t *err)
{
    return s_subscribe(cfg, prefix, hwm, false, err);
}

char *
evr_client_job_arg(const char *prog, const char *arg)
{
    char *id = evr_strdup(arg);
    for (char *p = id; *p; p++)
        *p = (char) toupper((unsigned char) *p);
    const char *why = evr_ulid_problem(id);
    if (why && !*arg)   /* else "PROG: : not a job id" */
        fprintf(stderr, "%s: \"\": not a job id (empty: a variable left unset?)\n", prog);
    else if (why)
        fprintf(stderr, "%s: %s: not a job id (%s)\n", prog, arg, why);
    if (why) {
        free(id);
        return NULL;
    }
    return id;
}
