/*  evr_bus.h: evrun messages over ZeroMQ sockets (czmq's zsock).

    The one place that turns an evr_msg_t into frames and back (DESIGN §3,
    schema/PROTOCOL.md "Transport"): a header frame "evrun1 <type>" and a
    msgpack body, preceded on a ROUTER socket by the peer's routing id.
    Sends never block: a peer that cannot take a message now (no
    connection, full queue) is an EVR_ERR_IO the caller decides about.
    Shared by the broker, the runner's bus client and the tools.
*/
#ifndef EVR_BUS_H_INCLUDED
#define EVR_BUS_H_INCLUDED

#include <stdarg.h>

#include <czmq.h>

#include "evr_config.h"
#include "evr_msg.h"

/*  Messages a socket queues per peer and direction (ZMQ_SNDHWM and
    ZMQ_RCVHWM) unless its owner sets less; the broker bounds what it
    queues for clients in bytes as well (evr_flow.h). */
#define EVR_BUS_HWM 1000

/*  czmq's globals, made once before any socket (idempotent; call it from
    one thread, before the process's other threads make sockets), with
    czmq's own SIGINT and SIGTERM handlers never installed: the process's
    are main's.  The order matters: zsys_init installs czmq's handlers,
    whose flag evrun never reads, unless they were turned off first, so
    a signal between zsys_init and a later zsys_handler_set(NULL) would
    be lost (a runner stopped as it starts ran on). */
void evr_bus_init(void);

/*  Sets the options every evrun socket has: ZMQ_MAXMSGSIZE (a larger
    message is dropped by libzmq), linger, and high-water marks. */
void evr_bus_setup(zsock_t *sock);

/*  Checks an endpoint before bind/connect: tcp://, ipc:// (the path must
    fit a unix socket: at most 107 bytes, and pass evr_paths_socket: no
    other user's socket or directory, no directory others can write in,
    sticky or not) or inproc://.  EVR_ERR_CONFIG saying what is wrong. */
evr_rc_t evr_bus_check_endpoint(const char *ep, evr_err_t *err);

/*  Each of keys (n of them) of cfg that is set but empty (--broker "$EP"
    with EP unset), or whose form is wrong (not tcp://HOST:PORT with a
    port from 1 to 65535, nor ipc://PATH of 1 to 107 bytes), as a problem
    of that setting, naming its value and source (evr_config_problem:
    recorded for evr_config_report, so said with the settings' other
    errors and by --print-config): such a value was said "empty
    endpoint", or "foo: expected ...", naming neither the option nor
    where it came from.  An ipc:// path's directories are checked where
    it is bound or connected to (evr_bus_check_endpoint).  EVR_ERR_CONFIG
    when any is wrong. */
evr_rc_t evr_bus_check_endpoints(const evr_config_t *cfg, const char *const *keys, size_t n,
                                 evr_err_t *err);

/*  Sends msg, on a ROUTER to the peer rid (borrowed), else rid NULL.
    Non-blocking: EVR_ERR_IO when the message cannot be queued now. */
evr_rc_t evr_bus_send(zsock_t *sock, zframe_t *rid, const evr_msg_t *msg, evr_err_t *err);

/*  Loopback: a routing id on a ROUTER socket that names the process
    itself.  While set, evr_bus_send to rid (its bytes, copied: at most 32)
    on sock calls fn(arg, msg) instead of sending, so a request the
    process makes of itself (the broker's schedule fires) goes through the
    same code as a client's and gets the client's answer.  Make rid
    unguessable (random bytes): a peer with the same routing id would lose
    its answers.  At most 4 at once; fn NULL removes the one of sock.
    Single-threaded use only. */
typedef void (evr_bus_loopback_fn)(void *arg, const evr_msg_t *msg);
void evr_bus_loopback(zsock_t *sock, const zframe_t *rid, evr_bus_loopback_fn *fn, void *arg);

/*  Sends m (an `error`, an `ok`) with its message formatted from fmt: over
    the protocol's 4096 bytes cut on a character, "…" last (PROTOCOL.md:
    a text within its limit is never cut), and UTF-8 (a byte of a
    character cut by a bounded %s made '?').  m->message is left NULL. */
evr_rc_t evr_bus_vsend_text(zsock_t *sock, zframe_t *rid, evr_msg_t *m, const char *fmt,
                            va_list ap) __attribute__((format(printf, 4, 0)));
/*  Sends an `error` with code and message (as evr_bus_vsend_text). */
evr_rc_t evr_bus_send_error(zsock_t *sock, zframe_t *rid, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*  True when sock has a message waiting (ZMQ_EVENTS; also re-arms the
    socket's ZMQ_FD edge). */
bool evr_bus_readable(zsock_t *sock);

/*  Receives one message (call when evr_bus_readable) and decodes it into
    msg (zeroed by the caller).  On a ROUTER *rid receives the sender's id
    (caller destroys it; set also when decoding fails, so the sender can
    be answered).  A malformed message returns EVR_ERR_PROTO (or
    EVR_ERR_LIMIT) with *code the EVR_CODE_* to answer with.  On a socket
    with a receive timeout (ZMQ_RCVTIMEO 0: call it without asking
    evr_bus_readable, which costs libzmq two system calls), EVR_ERR_NOTFOUND
    when no message came. */
evr_rc_t evr_bus_recv(zsock_t *sock, zframe_t **rid, evr_msg_t *msg, const char **code,
                      evr_err_t *err);
/*  The same, with the sender's CURVE public key (Z85; "" when the
    connection has none: ipc://) in user. */
evr_rc_t evr_bus_recv_from(zsock_t *sock, zframe_t **rid, char user[41], evr_msg_t *msg,
                           const char **code, evr_err_t *err);

/*  A received body frame, kept for its bytes: the broker journals a
    submit as it came instead of encoding it again.  Zero it before use;
    evr_bus_wire_close releases it (and may be called on one never
    filled). */
typedef struct {
    zmq_msg_t frame;
    bool open;
} evr_bus_wire_t;
/*  evr_bus_recv_from that also hands the body frame over in *wire (when
    the message decoded with no key skipped, so that the body decodes to
    msg; wire closed by the caller). */
evr_rc_t evr_bus_recv_wire(zsock_t *sock, zframe_t **rid, char user[41], evr_msg_t *msg,
                           evr_bus_wire_t *wire, const char **code, evr_err_t *err);
void evr_bus_wire_close(evr_bus_wire_t *wire);

/*  evr_bus_recv on a socket without routing ids (a runner's to the
    broker) that, when the message's frames came but it fails to decode,
    also fills *peek (zeroed by the caller) with what can still be read of
    it (evr_msg_peek: its type, its job, a dispatch's spec); the caller
    releases it with evr_msg_peek_clear.  Untouched otherwise. */
evr_rc_t evr_bus_recv_peek(zsock_t *sock, evr_msg_t *msg, evr_msg_peek_t *peek, const char **code,
                           evr_err_t *err);

/*  Largest body published on the XPUB socket.  A `job.accepted` is
    published with its spec cut to evr_spec_stub and without args (the
    whole event stays in the store, for `history`), so the largest
    publications are a job.accepted stub with 256 steps and every label,
    name and image at its codec limit (about 279 KiB), a step.output
    (128 KiB of bytes) and a runner with 32 labels at the string limit
    (about 129 KiB): all under this bound (tests/unit/test_flow.c builds
    each).  A subscriber's queue of them fits the broker's shared budget
    of publications (evr_broker.c), so one subscriber that never reads
    cannot fill it. */
#define EVR_PUB_MAX_BYTES (288u << 10)

/*  Publishes an event on an XPUB socket under "ev.<job>.<type>" (two
    frames: topic, the body of an `event` message); a job.accepted with
    its spec cut to the stub and no args (above).  EVR_ERR_LIMIT past
    EVR_PUB_MAX_BYTES (nothing sent). */
evr_rc_t evr_bus_publish_event(zsock_t *pub, const evr_event_t *ev, evr_err_t *err);

/*  Publishes a runner's state under "rn.<runner>" (a `runner` body). */
evr_rc_t evr_bus_publish_runner(zsock_t *pub, const evr_msg_t *runner, evr_err_t *err);

/*  Receives one publication on a SUB socket: *topic (caller frees) and
    the decoded `event` or `runner` message. */
evr_rc_t evr_bus_recv_pub(zsock_t *sub, char **topic, evr_msg_t *msg, evr_err_t *err);

#endif
