/*  evr_watch.h: what became of a connecting socket's connections.

    ZeroMQ reconnects in silence: a peer that refuses the handshake, speaks
    another security mechanism (CURVE against plain), is another kind of
    socket, or is not there at all leaves a connecting socket waiting with
    no error.  A watch is a ZeroMQ socket monitor (zmq_socket_monitor, its
    handshake events of libzmq 4.3) on such a socket, read without blocking,
    so that a client can say which of these it is and how to fix it.
    Runners, evrun-cli, evrun-tail and the followers use it (evr_client.c,
    evr_daemon.c).
*/
#ifndef EVR_WATCH_H_INCLUDED
#define EVR_WATCH_H_INCLUDED

#include <czmq.h>

typedef struct evr_watch evr_watch_t;

/*  What the events read showed, the least telling first: a later value
    wins over an earlier one in one read. */
typedef enum {
    EVR_WATCH_NONE = 0,     /* nothing yet */
    EVR_WATCH_UP,           /* a handshake succeeded: the peer speaks our protocol */
    EVR_WATCH_NO_PEER,      /* a connection attempt failed: nothing listens there
                               (ZeroMQ goes on trying) */
    EVR_WATCH_DROPPED,      /* the peer closed a connection before its handshake
                               ended (without CURVE: another kind of socket) */
    EVR_WATCH_FAILED,       /* a CURVE handshake failed: the server key is not the
                               peer's, or the peer is another kind of socket */
    EVR_WATCH_MECHANISM,    /* the peer speaks another mechanism: CURVE against a
                               plain socket, or plain against a CURVE one */
    EVR_WATCH_REFUSED,      /* the peer refused our CURVE key (ZAP) */
} evr_watch_seen_t;

/*  Starts watching sock; call it before sock connects.  NULL when ZeroMQ
    cannot monitor it (the caller goes on without). */
evr_watch_t *evr_watch_new(zsock_t *sock);

/*  The monitor's socket, to poll for input. */
zsock_t *evr_watch_socket(evr_watch_t *self);

/*  Reads the events waiting (at most 64, without blocking) and returns
    the most telling one (see evr_watch_seen_t); EVR_WATCH_NONE when none
    waited. */
evr_watch_seen_t evr_watch_read(evr_watch_t *self);

/*  Stops watching sock (call it before sock is destroyed); accepts NULL. */
void evr_watch_destroy(evr_watch_t **self_p, zsock_t *sock);

/*  Why nothing answers at an ipc:// endpoint, from its path, into buf
    ("PATH: No such file or directory", "PATH is not a socket", "nothing
    listens on the socket PATH"); empty for another endpoint.  For
    messages. */
void evr_watch_ipc_why(const char *endpoint, char *buf, size_t size);

#endif
