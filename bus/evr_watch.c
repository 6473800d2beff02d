/*  evr_watch.c: see evr_watch.h.  Each monitor event is two frames: the
    event number (2 bytes) and its value (4 bytes), then the address.
    Observed on libzmq 4.3.4: a CURVE server key that is not the peer's
    and a CURVE peer of another socket type give HANDSHAKE_FAILED_NO_DETAIL
    (and ZeroMQ tries again); plain against CURVE, either way, gives
    HANDSHAKE_FAILED_PROTOCOL with ZMTP_MECHANISM_MISMATCH (and it does
    not); a plain peer of another socket type closes the connection with no
    handshake event (DISCONNECTED); nothing listening gives CONNECT_RETRIED.
*/
#include "evr_watch.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_common.h"

struct evr_watch {
    zsock_t *mon;
    bool shook;     /* the current connection's handshake ended (either way) */
};

evr_watch_t *
evr_watch_new(zsock_t *sock)
{
    static unsigned s_count;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://evr-watch-%ld-%u", (long) getpid(), s_count++);
    if (zmq_socket_monitor(zsock_resolve(sock), ep,
                           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED
                               | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
                               | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                               | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                               | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
        return NULL;
    evr_watch_t *w = evr_calloc(1, sizeof *w);
    w->mon = zsock_new(ZMQ_PAIR);
    if (!w->mon || zsock_connect(w->mon, "%s", ep) < 0) {
        zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
        zsock_destroy(&w->mon);
        free(w);
        return NULL;
    }
    return w;
}

zsock_t *
evr_watch_socket(evr_watch_t *self)
{
    return self->mon;
}

/*  What one event says; NONE for one that says nothing by itself. */
static evr_watch_seen_t
s_seen(evr_watch_t *w, uint16_t event, uint32_t value)
{
    switch (event) {
    case ZMQ_EVENT_CONNECTED:
        w->shook = false;
        return EVR_WATCH_NONE;
    case ZMQ_EVENT_CONNECT_RETRIED:
        return EVR_WATCH_NO_PEER;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        w->shook = true;
        return EVR_WATCH_UP;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        w->shook = true;
        return EVR_WATCH_REFUSED;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        w->shook = true;
        return value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH ? EVR_WATCH_MECHANISM
                                                                   : EVR_WATCH_FAILED;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        w->shook = true;
        return EVR_WATCH_FAILED;
    case ZMQ_EVENT_DISCONNECTED:   /* after a handshake's end: said by that event */
        return w->shook ? EVR_WATCH_NONE : EVR_WATCH_DROPPED;
    default:
        return EVR_WATCH_NONE;
    }
}

evr_watch_seen_t
evr_watch_read(evr_watch_t *self)
{
    evr_watch_seen_t seen = EVR_WATCH_NONE;
    for (int n = 0; n < 64 && (zsock_events(self->mon) & ZMQ_POLLIN); n++) {
        zframe_t *f = zframe_recv(self->mon);
        uint16_t event = 0;
        uint32_t value = 0;
        if (f && zframe_size(f) >= 6) {
            memcpy(&event, zframe_data(f), 2);
            memcpy(&value, zframe_data(f) + 2, 4);
        }
        bool more = f && zframe_more(f);
        zframe_destroy(&f);
        if (more) {     /* the address */
            f = zframe_recv(self->mon);
            zframe_destroy(&f);
        }
        evr_watch_seen_t s = s_seen(self, event, value);
        if (s > seen || s == EVR_WATCH_UP)
            seen = s;   /* a handshake that succeeded after a failure: up */
    }
    return seen;
}

void
evr_watch_destroy(evr_watch_t **self_p, zsock_t *sock)
{
    evr_watch_t *w = *self_p;
    if (!w)
        return;
    if (sock)
        zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
    zsock_destroy(&w->mon);
    free(w);
    *self_p = NULL;
}

void
evr_watch_ipc_why(const char *endpoint, char *buf, size_t size)
{
    struct stat sb;
    const char *path = endpoint && !strncmp(endpoint, "ipc://", 6) ? endpoint + 6 : NULL;
    if (!size)
        return;
    *buf = '\0';
    if (!path)
        return;
    if (stat(path, &sb) != 0)
        snprintf(buf, size, "%s: %s", path, strerror(errno));
    else if (!S_ISSOCK(sb.st_mode))
        snprintf(buf, size, "%s is not a socket", path);
    else
        snprintf(buf, size, "nothing listens on the socket %s", path);
}
