/*  evr_fetch.h: downloads of absolute http:// and https:// URLs into files.

    What a job's resources need from the network, and nothing of HTTP
    beyond it: a download runs on the event loop (over evr_http), goes to
    a file as it arrives, stops at a size limit, follows redirects only as
    the runner's policy allows and may refuse local addresses.  Its end is
    reported once, with what went wrong in words a user can act on.
*/
#ifndef EVR_FETCH_H_INCLUDED
#define EVR_FETCH_H_INCLUDED

#include "evr_common.h"
#include "evr_loop.h"

/*  Redirects of an absolute URL (also the type of evr_http_opts_t's). */
typedef enum {
    EVR_FETCH_REDIRECT_SAME = 0, /* only to the same scheme, host and port (the default) */
    EVR_FETCH_REDIRECT_ANY,      /* anywhere over http or https */
    EVR_FETCH_REDIRECT_NONE,     /* none: a 3xx answer is the answer */
} evr_fetch_redirects_t;

/*  Which of the runner's rules refused a download (EVR_FETCH_RULE_NONE:
    none did). */
typedef enum {
    EVR_FETCH_RULE_NONE = 0,
    EVR_FETCH_RULE_REDIRECTS,   /* a redirect evr_fetch_redirects_t forbids */
    EVR_FETCH_RULE_LOCAL,       /* a local address, with deny_local */
} evr_fetch_rule_t;

typedef struct evr_fetch evr_fetch_t;
typedef struct evr_fetch_req evr_fetch_req_t;

typedef struct {
    const char *url;            /* http:// or https:// */
    const char *file;           /* written from its start (created or truncated) */
    uint64_t max_bytes;         /* more than this fails the download, unwritten */
    long timeout_ms;            /* the whole download */
    evr_fetch_redirects_t redirects;
    bool deny_local;            /* refuse loopback, link-local, unspecified addresses */
    const char *auth;           /* NULL, or evr_http_opts_t's: USER:PASSWORD (basic) or a
                                   token (bearer), sent to the URL's origin only */
} evr_fetch_opts_t;

/*  How a download ended.  rc EVR_OK (status 200; bytes written), or:
    EVR_ERR_LIMIT  the body is larger than max_bytes (msg "URL is larger
                   than the limit of N bytes");
    EVR_ERR_IO     anything else, msg saying what: the file could not be
                   written, the transfer failed (a refused redirect or
                   address: rule says which), any status but 200 ("URL
                   answered HTTP 404"), or it was cancelled.
    msg and elsewhere are valid during the callback only. */
typedef struct {
    evr_rc_t rc;
    const char *msg;
    long status;            /* the HTTP status (0: no answer) */
    const char *elsewhere;  /* the URL that answered when a redirect led to another
                               scheme, host or port (which got no credentials: auth
                               goes to the URL's origin only); NULL: the URL's own */
    uint64_t bytes;
    evr_fetch_rule_t rule;
} evr_fetch_result_t;

typedef void (evr_fetch_fn)(const evr_fetch_result_t *r, void *arg);

/*  A downloader on loop (which must outlive it).  Caller owns the result. */
evr_fetch_t *evr_fetch_new(evr_loop_t *loop);
/*  Aborts the downloads under way: their callbacks are not called. */
void evr_fetch_destroy(evr_fetch_t **self_p);

/*  Starts a download; fn is called once, from a turn of the loop (a file
    that cannot be opened too).  Returns a handle for evr_fetch_cancel,
    valid until fn is called. */
evr_fetch_req_t *evr_fetch_start(evr_fetch_t *self, const evr_fetch_opts_t *opts,
                                 evr_fetch_fn *fn, void *arg);

/*  Aborts a download: fn is called (EVR_ERR_IO, msg ending in
    "cancelled"), from inside this call. */
void evr_fetch_cancel(evr_fetch_t *self, evr_fetch_req_t *req);

#endif
