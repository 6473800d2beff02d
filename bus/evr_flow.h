/*  evr_flow.h: a byte bound on what a socket holds queued for a peer.

    ZeroMQ bounds a peer's send queue in messages (ZMQ_SNDHWM), not in
    bytes, and evrun messages run from a few bytes to 4 MiB.  A flow
    counts, per peer of a ROUTER (by routing id) or for all the peers of
    an XPUB together, the bytes of the messages sent and not yet released
    by libzmq (written to the kernel, or dropped with their connection):
    each body goes out as a zero-copy message whose free callback, run by
    libzmq's I/O thread, gives its bytes back.  A message that would take
    a peer past its limit is not sent (EVR_ERR_LIMIT) and counted; a small
    one (at most EVR_FLOW_SMALL bytes: `end`, `error`, `ok`) may use a
    reserve on top, so the stream a client is reading ends properly.

    A flow is set on a socket with evr_flow_attach; evr_bus's sends look
    it up, so every sender on that socket is bounded.  Attach, send,
    sweep and detach run in one thread (the broker's loop); only the byte
    counts are shared with libzmq's threads, as atomics.
*/
#ifndef EVR_FLOW_H_INCLUDED
#define EVR_FLOW_H_INCLUDED

#include <czmq.h>

#include "evr_common.h"

/*  A message body up to this size may use the reserve. */
#define EVR_FLOW_SMALL 1024
/*  Bytes counted for each message on top of its body: the routing-id and
    header frames, libzmq's and evrun's bookkeeping. */
#define EVR_FLOW_OVERHEAD 256

typedef struct evr_flow evr_flow_t;

/*  Bounds what sock queues to each peer (ROUTER) or to all of its peers
    (XPUB, per_peer false) at limit bytes, plus reserve for small
    messages.  The flow lives until evr_flow_detach. */
void evr_flow_attach(zsock_t *sock, bool per_peer, size_t limit, size_t reserve);

/*  Removes sock's flow (call before zsock_destroy; messages still queued
    release their counts whenever libzmq frees them). */
void evr_flow_detach(zsock_t *sock);

/*  The flow of the libzmq socket handle h, NULL when it has none. */
evr_flow_t *evr_flow_of(void *h);

/*  Sends frames [rid,] first, body on flow's socket h, taking body (a
    malloc'd buffer of len bytes) in all cases.  EVR_ERR_LIMIT when the
    peer's bytes would pass the limit (nothing sent), EVR_ERR_IO when
    libzmq refuses (full queue, gone peer). */
evr_rc_t evr_flow_send(evr_flow_t *flow, void *h, const void *rid, size_t ridlen,
                       const char *first, uint8_t *body, size_t len, evr_err_t *err);

/*  Bytes sock holds queued for all its peers now (0 without a flow). */
size_t evr_flow_queued(zsock_t *sock);

/*  Forgets the peers that hold nothing queued any more and, when one was
    forgotten or a message dropped since the last call, gives freed heap
    back to the system (malloc_trim; the broker calls this once a second).
    Returns the messages dropped since the last call (over a limit) and
    sets *peers to the peers with bytes queued. */
uint64_t evr_flow_sweep(zsock_t *sock, size_t *peers);

#endif
