/*  evr_fetch.c: downloads to files over evr_http (see evr_fetch.h).

    The body goes to the file piece by piece; an answer other than 2xx
    ends the transfer at its first byte (its status says what went
    wrong, a long error body is not waited for), and so does a body that
    passes the limit.
*/
#include "evr_fetch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_http.h"

struct evr_fetch {
    evr_loop_t *loop;
    evr_http_t *http;
    evr_fetch_req_t *reqs;      /* those that failed before their transfer began */
};

struct evr_fetch_req {
    evr_fetch_t *f;
    evr_fetch_opts_t opts;
    char *url, *file;
    evr_fetch_fn *fn;
    void *arg;
    FILE *fp;
    evr_http_req_t *http;       /* the transfer; NULL: failed before it (timer) */
    uint64_t timer;
    int werr;                   /* errno of a failed write */
    uint64_t bytes;
    bool over;                  /* passed max_bytes */
    long status;                /* the answer's */
    bool by_status;             /* an answer >= 300 ended the transfer at its body */
    evr_fetch_req_t *next;
};

evr_fetch_t *
evr_fetch_new(evr_loop_t *loop)
{
    evr_fetch_t *self = evr_calloc(1, sizeof *self);
    self->loop = loop;
    self->http = evr_http_new("", loop, NULL);   /* "" cannot fail */
    return self;
}

static void
s_free(evr_fetch_req_t *r)
{
    if (r->fp)
        fclose(r->fp);
    free(r->url);
    free(r->file);
    free(r);
}

static void
s_unlist(evr_fetch_req_t *r)
{
    for (evr_fetch_req_t **pp = &r->f->reqs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            return;
        }
}

void
evr_fetch_destroy(evr_fetch_t **self_p)
{
    evr_fetch_t *self = *self_p;
    if (!self)
        return;
    evr_http_destroy(&self->http);   /* their on_drop frees the transfers' records */
    while (self->reqs) {
        evr_fetch_req_t *r = self->reqs;
        self->reqs = r->next;
        evr_loop_timer_cancel(self->loop, r->timer);
        s_free(r);
    }
    free(self);
    *self_p = NULL;
}

/*  Reports the end of r and frees it. */
static void
s_end(evr_fetch_req_t *r, evr_rc_t rc, const char *msg, evr_fetch_rule_t rule,
      const char *elsewhere)
{
    evr_fetch_result_t res = { .rc = rc, .msg = msg ? msg : "", .status = r->status,
                               .bytes = r->bytes, .rule = rule, .elsewhere = elsewhere };
    r->fn(&res, r->arg);
    s_free(r);
}

static bool
s_data(evr_http_req_t *req, const uint8_t *data, size_t len, void *arg)
{
    evr_fetch_req_t *r = arg;
    if (evr_http_status(req) >= 300) {   /* no content: the status says what went wrong */
        r->status = evr_http_status(req);
        r->by_status = true;
        return false;
    }
    if (len > r->opts.max_bytes - r->bytes) {
        r->over = true;   /* nothing more is written */
        return false;
    }
    r->bytes += len;
    if (fwrite(data, 1, len, r->fp) != len) {
        r->werr = errno ? errno : EIO;
        return false;
    }
    return true;
}

static void
s_done(evr_http_req_t *req, void *arg)
{
    evr_fetch_req_t *r = arg;
    char msg[EVR_ERR_MAX + 64];
    const char *terr = NULL;
    bool transport = evr_http_error(req, &terr) != EVR_OK;
    if (!r->status)
        r->status = evr_http_status(req);
    errno = 0;
    if (fclose(r->fp) != 0 && !r->werr)
        r->werr = errno ? errno : EIO;
    r->fp = NULL;
    evr_rc_t rc = EVR_ERR_IO;
    evr_fetch_rule_t rule = EVR_FETCH_RULE_NONE;
    if (r->werr)
        snprintf(msg, sizeof msg, "writing %s: %s", r->file, strerror(r->werr));
    else if (r->over) {
        rc = EVR_ERR_LIMIT;
        snprintf(msg, sizeof msg, "%s is larger than the limit of %llu bytes", r->url,
                 (unsigned long long) r->opts.max_bytes);
    }
    /* an answer >= 300 ended by s_data: its status says what went wrong */
    else if (transport && !r->by_status) {
        snprintf(msg, sizeof msg, "%s", terr);
        if (strstr(terr, ": redirect to "))
            rule = EVR_FETCH_RULE_REDIRECTS;
        else if (strstr(terr, "local addresses are denied"))
            rule = EVR_FETCH_RULE_LOCAL;
    }
    else if (r->status != 200)
        snprintf(msg, sizeof msg, "%s answered HTTP %ld", r->url, r->status);
    else
        rc = EVR_OK;
    char moved[512];   /* for a message: cut there */
    s_end(r, rc, rc ? msg : "", rule, evr_http_answered_elsewhere(req, moved, sizeof moved));
}

/*  The http layer is going away with the transfer under way. */
static void
s_drop(void *arg)
{
    s_free(arg);
}

/*  A download that failed before its transfer: reported from a turn. */
static void
s_failed_early(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_fetch_req_t *r = arg;
    r->timer = 0;
    s_unlist(r);
    char msg[EVR_ERR_MAX];
    snprintf(msg, sizeof msg, "writing %s: %s", r->file, strerror(r->werr));
    s_end(r, EVR_ERR_IO, msg, EVR_FETCH_RULE_NONE, NULL);
}

evr_fetch_req_t *
evr_fetch_start(evr_fetch_t *self, const evr_fetch_opts_t *opts, evr_fetch_fn *fn, void *arg)
{
    evr_fetch_req_t *r = evr_calloc(1, sizeof *r);
    r->f = self;
    r->opts = *opts;
    r->url = evr_strdup(opts->url);
    r->file = evr_strdup(opts->file);
    r->opts.url = r->url;
    r->opts.file = r->file;
    r->opts.auth = NULL;   /* the caller's: used by evr_http_start below, not kept */
    r->fn = fn;
    r->arg = arg;
    r->fp = fopen(r->file, "wbe");
    if (!r->fp) {
        r->werr = errno ? errno : EIO;
        r->next = self->reqs;
        self->reqs = r;
        r->timer = evr_loop_timer_add(self->loop, 0, s_failed_early, r);
        return r;
    }
    evr_http_opts_t o = { .method = "GET", .path = r->url, .timeout_ms = opts->timeout_ms,
                          .on_data = s_data, .on_done = s_done, .on_drop = s_drop, .arg = r,
                          .redirects = opts->redirects, .deny_local = opts->deny_local,
                          .auth = opts->auth };   /* curl keeps its own copy */
    r->http = evr_http_start(self->http, &o);
    return r;
}

void
evr_fetch_cancel(evr_fetch_t *self, evr_fetch_req_t *req)
{
    if (req->http) {
        evr_http_cancel(self->http, req->http);   /* s_done reports it */
        return;
    }
    evr_loop_timer_cancel(self->loop, req->timer);
    s_unlist(req);
    s_end(req, EVR_ERR_IO, "cancelled", EVR_FETCH_RULE_NONE, NULL);
}
