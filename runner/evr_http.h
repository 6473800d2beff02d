/*  evr_http.h: asynchronous HTTP over libcurl's multi interface.

    The transport of the podman driver (a unix socket: base URL
    "unix:///run/podman/podman.sock") and of resource downloads (plain
    http:// and https:// URLs).  Many requests run at once in one thread:
    evr_http_run() waits for any of them to make progress and calls their
    callbacks.  Every request has a timeout (0 only for streams, which end
    when the server closes them or when cancelled); response bodies that
    are kept in memory are bounded.
*/
#ifndef EVR_HTTP_H_INCLUDED
#define EVR_HTTP_H_INCLUDED

#include "evr_common.h"

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

/*  Redirects of an absolute URL. */
typedef enum {
    EVR_HTTP_REDIRECT_SAME = 0, /* only to the same scheme, host and port (the default) */
    EVR_HTTP_REDIRECT_ANY,      /* anywhere over http or https */
    EVR_HTTP_REDIRECT_NONE,     /* none: a 3xx answer is the answer */
} evr_http_redirects_t;

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
    evr_http_redirects_t redirects;
    bool deny_local;
} evr_http_opts_t;

/*  base: "unix:///path/to.sock" (requests go to http://d/<path> over that
    socket) or "" (paths are full URLs).  Caller owns the result. */
evr_http_t *evr_http_new(const char *base, evr_err_t *err);
/*  Aborts every request still running: their on_drop is called, not
    their on_done. */
void evr_http_destroy(evr_http_t **self_p);

/*  Starts a request; returns it (valid until on_done returns). */
evr_http_req_t *evr_http_start(evr_http_t *self, const evr_http_opts_t *opts);

/*  Aborts a request: its on_done is called from inside this call with an
    EVR_ERR_IO error "cancelled". */
void evr_http_cancel(evr_http_t *self, evr_http_req_t *req);

/*  Waits at most timeout_ms for progress, then runs callbacks.  Returns
    the number of requests still running.  The wait ends early when the
    wake fd (evr_http_set_wake_fd) becomes readable. */
int evr_http_run(evr_http_t *self, int timeout_ms);

/*  Another fd to wait on in evr_http_run (a ZeroMQ socket's ZMQ_FD in the
    runner's daemon): when it is readable, evr_http_run returns without
    waiting out its timeout, so the caller serves it.  Nothing is read from
    it.  fd < 0: none (the default).  The caller keeps the fd open while it
    is set.  evr_http_call ignores it (it waits only for its request). */
void evr_http_set_wake_fd(evr_http_t *self, int fd);

/*  In on_head/on_done: the HTTP status (0 when no response came), the kept
    body (NUL-terminated), and the transport error (EVR_OK, or EVR_ERR_IO
    with a message naming the URL and curl's reason). */
long evr_http_status(const evr_http_req_t *req);
const char *evr_http_body(const evr_http_req_t *req, size_t *len);
evr_rc_t evr_http_error(const evr_http_req_t *req, const char **msg);
/*  True when the kept body was cut at max_body. */
bool evr_http_truncated(const evr_http_req_t *req);

/*  Runs one request to its end (driving every other request meanwhile).
    *status and *body (caller frees; may be NULL) receive the answer. */
evr_rc_t evr_http_call(evr_http_t *self, const evr_http_opts_t *opts, long *status, char **body,
                       size_t *len, evr_err_t *err);

/*  The base given to evr_http_new, for messages. */
const char *evr_http_base(const evr_http_t *self);

#endif
