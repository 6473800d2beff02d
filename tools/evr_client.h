/*  evr_client.h: a client of the broker (evrun-cli, evrun-tail,
    evrun-gateway, evrun-provisioner).

    Finds the broker (settings, or the local broker `evrun-cli up` started
    under the state directory), sends one request at a time on a DEALER
    socket and reads its answer or its stream; subscribes to the event
    stream.  Every failure to reach the broker names the endpoint and says
    what to do.
*/
#ifndef EVR_CLIENT_H_INCLUDED
#define EVR_CLIENT_H_INCLUDED

#include <czmq.h>
#include <signal.h>

#include "evr_config.h"
#include "evr_msg.h"

typedef struct evr_client evr_client_t;

/*  The settings a client reads (table for evr_config_new). */
extern const evr_config_key_t evr_client_keys[];
extern const size_t evr_client_nkeys;

/*  Resolves the endpoints in cfg (already layered): unset ones point at the
    local broker when its socket exists under state_dir/bus, else at the
    loopback TCP defaults. */
void evr_client_endpoints(evr_config_t *cfg);

/*  The same with the choice made by the caller: local, the local broker's
    ipc:// sockets; else the loopback TCP defaults.  evrun-gateway makes
    both at start and chooses again at each attempt to connect. */
void evr_client_endpoints_as(evr_config_t *cfg, bool local);

/*  timeout_ms of cfg (1..3600000) into *ms; EVR_ERR_CONFIG naming the key,
    the value, where it came from (flag --timeout-ms, env EVRUN_TIMEOUT_MS,
    file) and the range when it is not one. */
evr_rc_t evr_client_config_timeout(const evr_config_t *cfg, uint64_t *ms, evr_err_t *err);

/*  Connects to cfg's client endpoint, waiting at most the configured
    connect time for the connection.  EVR_ERR_IO: "cannot reach the broker
    at EP: ..." (an ipc:// path missing or no socket said), or "no broker
    runs at the state directory S ..." (nothing chosen by the user,
    nothing listening at the default: s_nothing_chosen in evr_client.c), a
    handshake that failed (said at once: a refused key, a wrong broker
    key, CURVE against a plain socket or the reverse, another kind of
    socket; s_unreached), or a CURVE key that cannot be loaded;
    EVR_ERR_CONFIG: timeout_ms is no number in its range, or the
    endpoint is bad. */
evr_rc_t evr_client_new(const evr_config_t *cfg, evr_client_t **out, evr_err_t *err);
/*  The same, waiting at most wait_ms for the connection (at most
    min(timeout_ms, 3 s) either way). */
evr_rc_t evr_client_new_within(const evr_config_t *cfg, int wait_ms, evr_client_t **out,
                               evr_err_t *err);
void evr_client_destroy(evr_client_t **self_p);

/*  When an answer is still owed (a request sent and not answered in
    full: a call or stream with no answer in time, a stream cut short by
    a malformed item), drops the connection with whatever
    is still on its way to it and connects a fresh one to the same
    endpoint with the same keys, without waiting for it: the next call
    waits for it up to timeout_ms, then fails with EVR_ERR_IO ("no
    connection to it").  Else (the last
    request answered in full, or never sent) keeps the connection: a
    no-op.  Answers carry no request id, so a client that goes on asking
    after an EVR_ERR_IO calls this first, lest a late answer be read as the
    next request's.  EVR_ERR_IO when the endpoint cannot be connected to
    (every call then fails until a later reconnect, which tries again,
    succeeds). */
evr_rc_t evr_client_reconnect(evr_client_t *self, evr_err_t *err);

/*  A flag a signal handler sets (SIGINT, SIGTERM; NULL: none, the
    default): a wait for a connection or an answer (evr_client_call,
    evr_client_stream) ends within 100 ms of it set, as when the signal
    interrupts it (EVR_ERR_IO, "a signal interrupted the wait"), also when
    the signal came between two of the wait's polls, where no EINTR tells
    (else the wait went on to timeout_ms).  Returns the one it replaces. */
volatile sig_atomic_t *evr_client_set_stop(evr_client_t *self, volatile sig_atomic_t *stop);

/*  Sets the longest wait for each answer (timeout_ms at first) to ms (at
    least 1); returns the one it replaces. */
int evr_client_set_timeout(evr_client_t *self, int ms);
/*  The longest wait for each answer now. */
int evr_client_timeout(const evr_client_t *self);

const char *evr_client_endpoint(const evr_client_t *self);

/*  Whether the last evr_client_call's or evr_client_stream's request went
    out: when it failed after that, the broker may have done what it asked
    (its answer was lost or late); false when it could not be sent. */
bool evr_client_sent(const evr_client_t *self);

/*  Whether the connection to the broker is up now (a request would go
    out at once).  false while ZeroMQ connects again after the broker went
    away, at the same endpoint; not meant while a call runs. */
bool evr_client_connected(const evr_client_t *self);

/*  Sends req and receives one answer into reply (zeroed by the caller; an
    `error` answer is returned as a message, not as a failure).  EVR_ERR_IO
    when it cannot be sent (no connection within timeout_ms), the broker
    does not answer in time, or the connection drops while the answer is
    waited for (down half a second: its answer went with it) (worth
    retrying), or a signal caught by a handler (EINTR) cuts the wait
    short (said so: a caller that stops on it knows from its own flag); EVR_ERR_LIMIT when req encodes over EVR_MSG_MAX_BYTES (no
    use retrying); EVR_ERR_PROTO for a malformed answer. */
evr_rc_t evr_client_call(evr_client_t *self, const evr_msg_t *req, evr_msg_t *reply,
                         evr_err_t *err);

/*  Sends req and calls fn for each message of the stream until `end`
    (not passed to fn).  An `error` answer ends the stream: EVR_ERR_STATE
    with "code: message".  fn returns non-zero to stop reading (the rest of
    the stream is then drained). */
typedef int (evr_client_item_fn)(const evr_msg_t *item, void *arg);
evr_rc_t evr_client_stream(evr_client_t *self, const evr_msg_t *req, evr_client_item_fn *fn,
                           void *arg, evr_err_t *err);
/*  The same, and the closing `end` into *end (zeroed by the caller; the
    caller clears it with evr_msg_clear): its `more` pages a `history`. */
evr_rc_t evr_client_stream_end(evr_client_t *self, const evr_msg_t *req,
                               evr_client_item_fn *fn, void *arg, evr_msg_t *end,
                               evr_err_t *err);

/*  A SUB socket on cfg's events endpoint subscribed to prefix (caller
    destroys), once its handshake with the event stream succeeded, waited
    for up to min(timeout_ms, 3 s).  NULL with err: EVR_ERR_CONFIG, a bad
    endpoint or timeout_ms, or a CURVE key that cannot be loaded;
    EVR_ERR_IO naming the endpoint, what became of the handshake (nothing
    listens, or the path is no socket; a refused key; a failed CURVE
    handshake; another mechanism; another kind of socket) and the fix. */
zsock_t *evr_client_subscribe(const evr_config_t *cfg, const char *prefix, evr_err_t *err);
/*  The same, not waiting for the handshake (ZeroMQ goes on trying to
    connect: a caller that keeps running, the gateway), with a receive
    high-water mark of hwm messages (0: the bus's): a reader that falls
    behind loses publications past it, and takes them from history (a gap
    in jseq), so its memory stays bounded.  NULL with err when the endpoint
    is bad or a key cannot be loaded. */
zsock_t *evr_client_subscribe_hwm(const evr_config_t *cfg, const char *prefix, int hwm,
                                  evr_err_t *err);

/*  A job id from the command line: upper-cased and checked; NULL with a
    message printed on stderr when it is not a ULID. */
char *evr_client_job_arg(const char *prog, const char *arg);

#endif
