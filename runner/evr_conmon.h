/*  evr_conmon.h: a container's output read straight from conmon's
    attach socket, without the podman service in between.

    conmon (podman's container monitor) listens on a SOCK_SEQPACKET unix
    socket named "attach" in the container's bundle directory (podman's
    StaticDir, conmon's --full-attach); `podman run` itself reads its
    container's output there.  Each packet is one read of the container's
    stdout or stderr, led by one byte: 2 stdout, 3 stderr.  conmon writes
    each piece to the container's log first and then to every reader
    connected, blocking until the reader takes it, so a reader misses
    nothing that comes after it connected, and what it got is a prefix,
    per stream, of the log.  conmon closes the socket once the container's
    output has ended (its pipes closed after its exit), which is the
    reader's end.  Only a process on the same host, allowed into the
    directory, can connect (the podman executor falls back on the REST
    attach otherwise). */
#ifndef EVR_CONMON_H_INCLUDED
#define EVR_CONMON_H_INCLUDED

#include <sys/types.h>

#include "evr_loop.h"

typedef struct evr_conmon evr_conmon_t;

/*  A piece of output: stream 1 stdout, 2 stderr, in arrival order. */
typedef void (evr_conmon_output_fn)(int stream, const uint8_t *data, size_t len, void *arg);
/*  The end: rc EVR_OK when conmon closed the socket (the output ended),
    else EVR_ERR_PODMAN and why (the connection failed, or a packet was
    not of conmon's form: what came after it is not passed on).  Called
    once; the reader stays valid (and reads no more) until destroyed,
    which the callback may do. */
typedef void (evr_conmon_end_fn)(evr_rc_t rc, const char *msg, void *arg);

/*  Connects to DIR/attach and reads it on loop (which outlives the
    result): out per packet, end once.  NULL (err set, EVR_ERR_IO) when the
    socket cannot be reached: DIR missing or not ours to enter, no socket
    (the container not initialized, or conmon gone), or conmon's queue of
    connections full.  Caller owns the result. */
evr_conmon_t *evr_conmon_attach(evr_loop_t *loop, const char *dir, evr_conmon_output_fn *out,
                                evr_conmon_end_fn *end, void *arg, evr_err_t *err);
/*  The process at the socket's other end, which listens on it: conmon
    (its credentials when the connection was made, SO_PEERCRED); 0 when
    not known (a process of another pid namespace).  evr_conmon_exit.h
    reads its command line. */
pid_t evr_conmon_pid(const evr_conmon_t *self);
/*  Closes the connection; neither callback is called after it.  May be
    called from either callback. */
void evr_conmon_destroy(evr_conmon_t **self_p);

#endif
