/*  evr_http.h: asynchronous HTTP over libcurl's multi interface.

    The transport of the podman driver (a unix socket: base URL
    "unix:///run/podman/podman.sock") and of resource downloads (plain
    http:// and https:// URLs, evr_fetch).  Many requests run at once in
    one thread, on the process's event loop (evr_loop): libcurl's sockets
    and its timeout are registered there (CURLMOPT_SOCKETFUNCTION,
    CURLMOPT_TIMERFUNCTION), and a request's callbacks run from the loop's
    turns, a finished request's on_done in the same turn as the event
    that finished it.  Every request has a timeout (0 only for streams,
    which end when the server closes them or when cancelled); response
    bodies that are kept in memory are bounded.
*/
#ifndef EVR_HTTP_H_INCLUDED
#define EVR_HTTP_H_INCLUDED

#include "evr_common.h"
#include "evr_fetch.h"
#include "evr_loop.h"

typedef struct evr_http evr_http_t;
typedef struct evr_http_req evr_http_req_t;

/*  Called once the response headers are in (status known). */
typedef void (evr_http_head_fn)(evr_http_req_t *req, long status, void *arg);
/*  Called with each piece of the body as it arrives (streams); returns
    false to abort the transfer. */
typedef bool (evr_http_data_fn)(evr_http_req_t *req, const uint8_t *data, size_t len, void *arg);
/*  Called once when the request ends, in success or failure.  The request
    is freed after it returns. */
typedef void (evr_http_done_fn)(evr_http_req_t *req, void *arg);

typedef struct {
    const char *method;         /* "GET", "POST", "PUT", "DELETE" */
    const char *path;           /* appended to the base URL; an absolute http:// or
                                   https:// URL is used as it is, not over the socket */
    const void *body;           /* request body, copied; NULL for none */
    size_t body_len;
    const char *body_file;      /* instead of body: the body is read from this file as
                                   it is sent (opened at the start, never held in
                                   memory); a file that does not open fails the request */
    const char *content_type;   /* default application/json when body is set */
    const char *header;         /* one more request header, "Name: value"; NULL for
                                   none (it may carry credentials: it is logged
                                   nowhere) */
    long timeout_ms;            /* whole transfer; 0: none (streams only) */
    size_t max_body;            /* kept response bytes when on_data is NULL (default 1 MiB) */
    evr_http_head_fn *on_head;
    evr_http_data_fn *on_data;  /* when set, the body is not kept */
    evr_http_done_fn *on_done;
    /*  Called instead of on_done for a request still running when the
        evr_http_t is destroyed: release arg, start nothing. */
    void (*on_drop)(void *arg);
    void *arg;
    /*  Absolute URLs only: which redirects are followed (at most 5), and
        whether loopback, link-local and unspecified addresses are refused
        (checked on each address about to be connected, every hop).  A
        refused hop or address ends the request with EVR_ERR_IO and a
        message saying which rule refused what. */
    evr_fetch_redirects_t redirects;
    bool deny_local;
    /*  Absolute URLs only: credentials, "USER:PASSWORD" (HTTP basic
        authentication) or a token without ':' (Authorization: Bearer);
        NULL for none.  Given to curl's own options, never a hand-made
        header, so that a redirect to another scheme, host or port is
        followed without them; logged nowhere. */
    const char *auth;
} evr_http_opts_t;

/*  base: "unix:///path/to.sock" (requests go to http://d/<path> over that
    socket) or "" (paths are full URLs).  The requests run on loop, which
    must outlive the result.  Caller owns the result.  EVR_ERR_CONFIG
    for a socket path too long. */
evr_http_t *evr_http_new(const char *base, evr_loop_t *loop, evr_err_t *err);
/*  Aborts every request still running: their on_drop is called, not
    their on_done; its sockets and timer leave the loop. */
void evr_http_destroy(evr_http_t **self_p);

/*  Starts a request; returns it (valid until on_done returns). */
evr_http_req_t *evr_http_start(evr_http_t *self, const evr_http_opts_t *opts);

/*  Aborts a request: its on_done is called with an EVR_ERR_IO error
    "cancelled", from inside this call (or, when called from inside
    another request's on_head or on_data, as soon as libcurl has returned,
    in the same turn of the loop). */
void evr_http_cancel(evr_http_t *self, evr_http_req_t *req);

/*  In on_head/on_done: the HTTP status (0 when no response came), the kept
    body (NUL-terminated), and the transport error (EVR_OK, or EVR_ERR_IO
    with a message naming the URL and curl's reason). */
long evr_http_status(const evr_http_req_t *req);
const char *evr_http_body(const evr_http_req_t *req, size_t *len);
evr_rc_t evr_http_error(const evr_http_req_t *req, const char **msg);
/*  True when the kept body was cut at max_body. */
bool evr_http_truncated(const evr_http_req_t *req);
/*  In on_done: the URL that answered when a redirect led to another
    scheme, host or port than the request's (an origin opts.auth did not
    go to), written in buf (size bytes, cut); NULL when the answer came
    from the request's own origin or no answer came. */
const char *evr_http_answered_elsewhere(const evr_http_req_t *req, char *buf, size_t size);

/*  Runs one request to its end, turning the loop (evr_loop_once) until
    it ends: every other watch and timer of the loop runs meanwhile.  Not
    from inside a callback of the loop.  *status and *body (caller frees;
    may be NULL) receive the answer. */
evr_rc_t evr_http_call(evr_http_t *self, const evr_http_opts_t *opts, long *status, char **body,
                       size_t *len, evr_err_t *err);

/*  The base given to evr_http_new, for messages. */
const char *evr_http_base(const evr_http_t *self);

/*  s percent-encoded for a request's path: ASCII letters and digits and
    the bytes in keep stay as they are, every other byte becomes %XX
    (upper-case hex).  keep is the caller's: "-._~/" for a name in a path,
    "-._" for a query value that leaves nothing to chance.  Caller frees
    the result. */
char *evr_http_escape(const char *s, const char *keep);

#endif
