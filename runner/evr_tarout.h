/*  evr_tarout.h: a file or directory tree as a tar stream, piece by piece.

    What `get` of the process executor sends: the tree at a path, links
    not followed (a symbolic link is an entry of its own), sockets left
    out (no tar holds one; podman's archive leaves them out too), as a
    tar stream (pax) whose names start at the path's last component, as
    podman's archive API names them.  evr_tarout_step does a bounded amount of work
    each call, so an event loop copies a large tree a turn at a time.
*/
#ifndef EVR_TAROUT_H_INCLUDED
#define EVR_TAROUT_H_INCLUDED

#include "evr_common.h"

typedef struct evr_tarout evr_tarout_t;

/*  Receives a piece of the stream; false stops the copy (evr_tarout_step
    then fails with "the receiver stopped the copy"). */
typedef bool (evr_tarout_fn)(const uint8_t *data, size_t len, void *arg);

/*  A stream of path (which must exist; lstat is the caller's) to fn.
    NULL with err (EVR_ERR_IO naming path) when it cannot be read.
    Caller owns the result. */
evr_tarout_t *evr_tarout_new(const char *path, evr_tarout_fn *fn, void *arg, evr_err_t *err);
void evr_tarout_destroy(evr_tarout_t **self_p);

/*  Copies at most about budget bytes of file contents (and a bounded
    number of entries).  *done once the stream has ended (its end blocks
    written).  EVR_ERR_IO naming the entry when a read or write fails. */
evr_rc_t evr_tarout_step(evr_tarout_t *self, size_t budget, bool *done, evr_err_t *err);

#endif
