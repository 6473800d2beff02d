/*  evr_podman_pull.c: an image pulled through libpod, then inspected.

    POST /images/pull answers 200 at once and then streams one JSON object
    per line: {"stream": "Copying blob sha256:...\n"} for each step of the
    pull, then {"id": ..., "images": [...]} or {"error": "..."}, the
    registry's own words ("manifest unknown", "unauthorized: authentication
    required").  A line is read whole into a bounded buffer (a longer one
    is skipped to its end); the progress lines go to the caller as they
    come.  Once the image is there, GET /images/{id}/json gives its
    manifest digest and size, but only after podman went to the registry:
    an image a `missing` policy found needs no second call (~1.5 ms on a
    job's critical path), as no event records it.  Credentials travel in one request header
    and are kept nowhere else.
*/
#include "evr_podman.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_http.h"

#define S_API "/v4.0.0/libpod"
#define S_LINE_MAX 4096
#define S_INSPECT_MS 30000L

typedef struct {
    evr_podman_t *pm;
    char *image;
    void (*line)(const char *text, void *arg);
    evr_podman_pull_fn *fn;
    void *arg;
    char buf[S_LINE_MAX];   /* the line under way */
    size_t len;
    bool skipping;          /* a line longer than buf: dropped up to its end */
    bool pulled;            /* "Trying to pull": podman went to the registry */
    char id[80];
    char err[EVR_ERR_MAX];
    evr_http_req_t *req;    /* the request under way: the pull, then the inspect */
} s_pull_t;

static void
s_free(s_pull_t *p)
{
    free(p->image);
    free(p);
}

static void
s_drop(void *arg)
{
    s_free(arg);
}

/*  A query value: letters, digits and -._~/:@ stay, the rest %XX. */
static char *
s_query(const char *s)
{
    return evr_http_escape(s, "-._~/:@");
}

/*  One whole line of the stream. */
static void
s_line(s_pull_t *p, const char *text, size_t n)
{
    json_t *j = json_loadb(text, n, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return;   /* not podman's: the end says what is missing */
    }
    const char *s = json_string_value(json_object_get(j, "stream"));
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *id = json_string_value(json_object_get(j, "id"));
    if (s) {
        size_t k = strlen(s);
        while (k && (s[k - 1] == '\n' || s[k - 1] == '\r'))
            k--;
        char *t = evr_strndup(s, k);
        if (!strncmp(t, "Trying to pull", 14))
            p->pulled = true;
        if (*t && p->line)
            p->line(t, p->arg);
        free(t);
    }
    if (e && !p->err[0])
        snprintf(p->err, sizeof p->err, "%s", *e ? e : "podman reported an empty error");
    if (id)
        snprintf(p->id, sizeof p->id, "%s", id);
    json_decref(j);
}

static bool
s_data(evr_http_req_t *req, const uint8_t *data, size_t len, void *arg)
{
    s_pull_t *p = arg;
    bool error_body = evr_http_status(req) >= 400;
    for (size_t i = 0; i < len; i++) {
        char c = (char) data[i];
        if (c == '\n' && !error_body) {
            if (!p->skipping && p->len)
                s_line(p, p->buf, p->len);
            p->len = 0;
            p->skipping = false;
        }
        else if (p->len < sizeof p->buf - 1)
            p->buf[p->len++] = c;
        else
            p->skipping = true;
    }
    return true;
}

static void
s_inspected(evr_http_req_t *req, void *arg)
{
    s_pull_t *p = arg;
    const char *terr;
    size_t len;
    const char *body = evr_http_body(req, &len);
    long status = evr_http_status(req);
    evr_podman_pull_result_t r = { .rc = EVR_OK, .msg = "", .id = p->id, .pulled = p->pulled };
    char msg[EVR_ERR_MAX];
    json_t *j = NULL;
    if (evr_http_error(req, &terr)) {
        snprintf(msg, sizeof msg, "%s: inspecting the image pulled: %s", p->image, terr);
        r.rc = EVR_ERR_PODMAN;
        r.msg = msg;
    }
    else if (status >= 400) {
        char why[EVR_ERR_MAX / 2];
        evr_podman_message(body, len, why, sizeof why);
        snprintf(msg, sizeof msg, "%s: inspecting the image pulled: %s", p->image, why);
        r.rc = EVR_ERR_PODMAN;
        r.msg = msg;
    }
    else if ((j = json_loadb(body, len, 0, NULL)) && json_is_object(j)) {
        r.digest = json_string_value(json_object_get(j, "Digest"));
        json_t *size = json_object_get(j, "Size");
        if (json_is_integer(size) && json_integer_value(size) > 0)
            r.size = (uint64_t) json_integer_value(size);
    }
    if (r.digest && strlen(r.digest) > 127)
        r.digest = NULL;   /* not a digest */
    p->fn(&r, p->arg);
    json_decref(j);
    s_free(p);
}

static void
s_pulled(evr_http_req_t *req, void *arg)
{
    s_pull_t *p = arg;
    const char *terr;
    long status = evr_http_status(req);
    char msg[EVR_ERR_MAX];
    if (!evr_http_error(req, &terr) && status < 400 && p->len && !p->skipping)
        s_line(p, p->buf, p->len);   /* the last line, without its newline */
    if (evr_http_error(req, &terr))
        snprintf(msg, sizeof msg, "%s: %s", p->image, terr);
    else if (status >= 400) {
        char why[EVR_ERR_MAX / 2];
        evr_podman_message(p->buf, p->len, why, sizeof why);
        snprintf(msg, sizeof msg, "%s: podman answered %ld: %s", p->image, status, why);
    }
    else if (p->err[0])
        snprintf(msg, sizeof msg, "%s", p->err);
    else if (!p->id[0])
        snprintf(msg, sizeof msg, "%s: podman's pull ended without an image id or an error",
                 p->image);
    else if (!p->pulled) {     /* found in the storage: no digest needed */
        evr_podman_pull_result_t r = { .rc = EVR_OK, .msg = "", .id = p->id };
        p->fn(&r, p->arg);
        s_free(p);
        return;
    }
    else {
        char *en = s_query(p->id);
        char *path = evr_asprintf(S_API "/images/%s/json", en);
        evr_http_opts_t o = { .method = "GET", .path = path, .timeout_ms = S_INSPECT_MS,
                              .on_done = s_inspected, .on_drop = s_drop, .arg = p };
        p->req = evr_http_start(evr_podman_http(p->pm), &o);
        free(path);
        free(en);
        return;
    }
    evr_podman_pull_result_t r = { .rc = EVR_ERR_PODMAN, .msg = msg, .pulled = p->pulled };
    p->fn(&r, p->arg);
    s_free(p);
}

void *
evr_podman_pull(evr_podman_t *self, const char *image, const char *policy,
                const char *header, long timeout_ms,
                void (*line)(const char *text, void *arg), evr_podman_pull_fn *fn, void *arg)
{
    s_pull_t *p = evr_calloc(1, sizeof *p);
    p->pm = self;
    p->image = evr_strdup(image);
    p->line = line;
    p->fn = fn;
    p->arg = arg;
    char *ei = s_query(image), *ep = s_query(policy);
    char *path = evr_asprintf(S_API "/images/pull?reference=%s&policy=%s", ei, ep);
    evr_http_opts_t o = { .method = "POST", .path = path, .timeout_ms = timeout_ms,
                          .header = header, .on_data = s_data, .on_done = s_pulled,
                          .on_drop = s_drop, .arg = p };
    p->req = evr_http_start(evr_podman_http(self), &o);
    free(path);
    free(ep);
    free(ei);
    return p;
}

void
evr_podman_pull_cancel(evr_podman_t *self, void *handle)
{
    s_pull_t *p = handle;
    evr_http_cancel(evr_podman_http(self), p->req);
}
