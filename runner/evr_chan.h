/*  evr_chan.h: a step's control channel, the runner's end.

    The code running inside a step talks back to its runner over a Unix
    stream socket: newline-delimited JSON, one request per line, one
    answer line per request, in order (schema/PROTOCOL.md, "Job control
    channel").  One channel serves one step's unit (its socket in a
    directory of that unit's only), so the channel knows whom it serves
    without the client saying so: a step cannot act as another.

    The channel turns on the runner's loop (evr_loop) and never blocks:
    sockets are non-blocking, a line is at most EVR_CHAN_LINE_MAX bytes, a
    channel holds at most EVR_CHAN_MAX_CONNS connections, and a client
    that does not read its answers is not read from until it does (one
    answer waits at most), so a slow or silent client costs its own
    connection only.  What a request does is the caller's: a table of
    commands (evr_chan_cmd_t), so that new ones are one entry.
*/
#ifndef EVR_CHAN_H_INCLUDED
#define EVR_CHAN_H_INCLUDED

#include <jansson.h>

#include "evr_loop.h"

/*  A request line at most (its newline, and a \r before it, not
    counted); a longer one is answered with an error and its connection
    closed. */
#define EVR_CHAN_LINE_MAX 262144
/*  Connections open at once per channel; one more is answered with an
    error and closed. */
#define EVR_CHAN_MAX_CONNS 8
/*  The socket's name in the channel's directory. */
#define EVR_CHAN_SOCKET "control.sock"

typedef struct evr_chan evr_chan_t;

/*  A command: req is the request (an object; "cmd" is name); fills ans
    (an object: "ok": true is added on EVR_OK) or returns an error with
    err->msg, sent as {"ok": false, "error": msg}. */
typedef evr_rc_t (evr_chan_cmd_fn)(const json_t *req, json_t *ans, evr_err_t *err, void *arg);
typedef struct {
    const char *name;
    evr_chan_cmd_fn *fn;
} evr_chan_cmd_t;

/*  Listens at dir/control.sock (mode 0600; a socket left there by an
    earlier runner is replaced) on loop; cmds: a table ended by an entry
    with a NULL name, which must outlive the channel; arg goes to each
    command.  dir must exist (the caller makes it private).  Returns the
    channel (caller owns it) or NULL with err: EVR_ERR_CONFIG when the
    socket's path is longer than a socket address holds (say which),
    EVR_ERR_IO when the socket cannot be made. */
evr_chan_t *evr_chan_new(evr_loop_t *loop, const char *dir, const evr_chan_cmd_t *cmds,
                         void *arg, evr_err_t *err);
/*  Closes the connections and the socket and removes the socket file;
    NULL-safe, sets *self_p = NULL. */
void evr_chan_destroy(evr_chan_t **self_p);

/*  The answer to one request line (len bytes, no newline) by the
    commands of cmds: a JSON object on one line (no newline), caller owns
    it.  A request that is not a JSON object, has no string "cmd", or
    names a command the table lacks is answered {"ok": false, "error":
    ...} saying what was expected; a request's "id" (string or integer)
    is echoed in its answer. */
char *evr_chan_answer(const evr_chan_cmd_t *cmds, void *arg, const char *line, size_t len);

#endif
