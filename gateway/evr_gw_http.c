/*  evr_gw_http.c: the HTTP side of evrun-gateway: the route table,
    libmicrohttpd's callbacks (routing, authentication, body limits) and
    the JSON answers.  See evr_gw.h. */
#include "evr_gw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evr_log.h"

#define S_DROP_MAX (64u << 20)     /* bytes of an oversized body read to answer 413 */
#define S_HEADERS_MAX 100          /* header fields of one request (431 past it) */
#define S_QUERY_MAX 200            /* query parameters of one request (400 past it) */

const evr_gw_route_t evr_gw_routes[] = {
    { .method = "POST", .path = "/jobs", .fn = evr_gw_h_submit, .write = true,
      .query = "arg label" },
    { .method = "GET", .path = "/jobs", .fn = evr_gw_h_jobs,
      .query = "pipeline status limit cursor" },
    { .method = "GET", .path = "/jobs/{id}", .fn = evr_gw_h_job, .query = "" },
    { .method = "POST", .path = "/jobs/{id}/cancel", .fn = evr_gw_h_cancel, .write = true,
      .query = "" },
    { .method = "POST", .path = "/jobs/{id}/pause", .fn = evr_gw_h_pause, .write = true,
      .query = "" },
    { .method = "POST", .path = "/jobs/{id}/resume", .fn = evr_gw_h_resume, .write = true,
      .query = "" },
    { .method = "GET", .path = "/jobs/{id}/log", .fn = evr_gw_h_log, .query = "step" },
    { .method = "GET", .path = "/runners", .fn = evr_gw_h_runners, .query = "" },
    { .method = "GET", .path = "/pipelines", .fn = evr_gw_h_pipelines, .query = "" },
    { .method = "GET", .path = "/jobs/{id}/artifacts", .fn = evr_gw_h_artifacts, .query = "" },
    { .method = "GET", .path = "/jobs/{id}/artifacts/{step}/{path}", .fn = evr_gw_h_artifact,
      .tail = true, .query = "" },
    { .method = "POST", .path = "/demand", .fn = evr_gw_h_demand, .write = true, .query = "" },
    { .method = "GET", .path = "/metrics", .fn = evr_gw_h_metrics, .open = true, .root = true },
    { .method = "POST", .path = "/hooks/github", .fn = evr_gw_h_github, .open = true,
      .root = true },
    { .method = "POST", .path = "/hooks/{pipeline}", .fn = evr_gw_h_hook, .open = true,
      .root = true, .head = evr_gw_hook_head },
    { .method = "GET", .path = "/", .fn = evr_gw_h_ui_index, .open = true, .root = true },
    { .method = "GET", .path = "/ui/{path}", .fn = evr_gw_h_ui_file, .open = true, .root = true,
      .tail = true },
};
const size_t evr_gw_nroutes = EVR_ARRAY_LEN(evr_gw_routes);

/* ------------------------------------------------------------- routing */

/*  Whether path matches pattern segment by segment; {x} takes one
    non-empty segment (at most 127 bytes) into params; with tail, a {x}
    that ends pattern takes the rest of path, and each {x} takes its
    segment empty or longer too (their first 127 bytes into params: the
    handler reads the whole from the url, and answers 400 or 404 for a
    bad one by name, not "no such route"). */
static bool
s_match(const char *pattern, const char *path, char params[EVR_GW_PARAMS][128], bool tail)
{
    int np = 0;
    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/')
            return false;
        pattern++, path++;
        const char *pe = strchr(pattern, '/'), *se = strchr(path, '/');
        size_t pl = pe ? (size_t) (pe - pattern) : strlen(pattern);
        size_t sl = se ? (size_t) (se - path) : strlen(path);
        if (pattern[0] == '{' && tail && !pe) {
            snprintf(params[np < EVR_GW_PARAMS ? np : 0], 128, "%s", path);
            return true;
        }
        if (pattern[0] == '{') {
            if ((!tail && (!sl || sl > 127)) || np >= EVR_GW_PARAMS)
                return false;
            size_t n = sl > 127 ? 127 : sl;
            memcpy(params[np], path, n);
            params[np++][n] = '\0';
        }
        else if (pl != sl || memcmp(pattern, path, sl))
            return false;
        pattern += pl, path += sl;
    }
    return !*pattern && !*path;
}

const evr_gw_route_t *
evr_gw_route_match(const char *method, const char *url, char params[EVR_GW_PARAMS][128],
                   int *status)
{
    size_t pl = strlen(EVR_GW_PREFIX);
    bool api = !strncmp(url, EVR_GW_PREFIX, pl) && url[pl] == '/';
    if (!strcmp(method, "HEAD"))    /* a GET whose body libmicrohttpd leaves out */
        method = "GET";
    *status = 404;
    for (size_t i = 0; i < evr_gw_nroutes; i++) {
        const evr_gw_route_t *r = &evr_gw_routes[i];
        if ((!r->root && !api) || !s_match(r->path, r->root ? url : url + pl, params, r->tail))
            continue;
        if (!strcmp(evr_gw_routes[i].method, method))
            return &evr_gw_routes[i];
        *status = 405;
    }
    return NULL;
}

/*  The methods served on url's path, as an Allow header's value ("POST,
    GET, HEAD": HEAD wherever GET), into buf; empty when none. */
static void
s_allow(const char *url, char *buf, size_t size)
{
    size_t pl = strlen(EVR_GW_PREFIX), n = 0;
    bool api = !strncmp(url, EVR_GW_PREFIX, pl) && url[pl] == '/';
    char params[EVR_GW_PARAMS][128];
    buf[0] = '\0';
    for (size_t i = 0; i < evr_gw_nroutes; i++) {
        const evr_gw_route_t *r = &evr_gw_routes[i];
        if ((!r->root && !api) || !s_match(r->path, r->root ? url : url + pl, params, r->tail)
            || strstr(buf, r->method))
            continue;
        n += (size_t) snprintf(buf + n, n < size ? size - n : 0, "%s%s%s", n ? ", " : "",
                               r->method, strcmp(r->method, "GET") ? "" : ", HEAD");
    }
}

/* ------------------------------------------------------------- answers */

void
evr_gw_json(evr_gw_req_t *req, int status, json_t *js)
{
    json_decref(req->json);
    req->status = status;
    req->json = js;
}

size_t
evr_gw_utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (p[0] >= 0xe0 && p[0] <= 0xef) {
        if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[0] == 0xe0 && p[1] < 0xa0)
            || (p[0] == 0xed && p[1] >= 0xa0))
            return 0;
        return 3;
    }
    if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80
            || (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

json_t *
evr_gw_text(const char *s)
{
    size_t n = 0, size = 4 * strlen(s) + 1;
    char *safe = evr_calloc(1, size);
    for (const unsigned char *p = (const unsigned char *) s; *p;) {
        size_t l = evr_gw_utf8_len(p);
        if (l)
            memcpy(safe + n, p, l), n += l, p += l;
        else
            n += (size_t) snprintf(safe + n, size - n, "\\x%02X", *p++);
    }
    safe[n] = '\0';
    json_t *m = json_string(safe);
    free(safe);
    return m ? m : json_string("(the text could not be made UTF-8)");
}

void
evr_gw_error(evr_gw_req_t *req, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* a message quoting bad input may hold bytes that are no UTF-8: each
       is written \xHH, so the message stays JSON and still says what came */
    evr_gw_json(req, status, json_pack("{s:{s:s,s:o}}", "error", "code", code, "message",
                                       evr_gw_text(msg)));
}

const char *
evr_gw_query(const evr_gw_req_t *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *
evr_gw_header(const evr_gw_req_t *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, key);
}

const char *
evr_gw_token_trim(const char *v, char *buf, size_t size)
{
    size_t n = v ? strlen(v) : 0;
    while (v && (*v == ' ' || *v == '\t'))
        v++, n--;
    size_t k = n;
    while (k && (v[k - 1] == ' ' || v[k - 1] == '\t'))
        k--;
    if (!v || k == n || k >= size)
        return v;
    memcpy(buf, v, k);
    buf[k] = '\0';
    return buf;
}

/*  Queues req's answer on its connection. */
static enum MHD_Result
s_queue(evr_gw_req_t *req, const char *allow)
{
    struct MHD_Response *resp = req->resp;
    if (!resp) {
        char *s = req->json ? json_dumps(req->json, JSON_COMPACT) : NULL;
        if (!s) {   /* no JSON could be made of it: the gateway's fault, never a 2xx */
            s = evr_strdup("{\"error\":{\"code\":\"internal\",\"message\":\"no answer\"}}");
            req->status = 500;
        }
        size_t n = strlen(s);
        s = evr_realloc(s, n + 2);
        s[n++] = '\n';
        resp = MHD_create_response_from_buffer(n, s, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", "application/json");
    }
    /* every answer shares the web UI's origin, whose session storage
       holds the token: none is ever sniffed as markup (an error quoting
       the URL, a text log of a step's output), run, or framed; the UI's
       own files set their own policy (evr_gw_ui.c) */
    if (!MHD_get_response_header(resp, "X-Content-Type-Options"))
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (!MHD_get_response_header(resp, "Content-Security-Policy"))
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; frame-ancestors 'none'");
    if (req->status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"evrun\"");
    if (req->status == 405 && allow && *allow)
        MHD_add_response_header(resp, "Allow", allow);
    if (req->retry_after) {
        char secs[16];
        snprintf(secs, sizeof secs, "%u", req->retry_after);
        MHD_add_response_header(resp, "Retry-After", secs);
    }
    enum MHD_Result r = MHD_queue_response(req->conn, (unsigned) req->status, resp);
    MHD_destroy_response(resp);
    req->resp = NULL;
    json_decref(req->json);
    req->json = NULL;
    return r;
}

/* ---------------------------------------------------------- connection */

typedef struct {
    evr_gw_req_t req;
    const evr_gw_route_t *route;
    size_t cap;
    size_t over;        /* bytes of a body over the limit, read and dropped */
    bool answered;      /* an early answer (401, 413...) is queued */
    bool begun;         /* s_access has seen the request */
    char allow[48];     /* a 405's Allow */
    const char *target; /* the request target as sent (s_target), up to a NUL in it */
    size_t target_len;
    char target_bad[192]; /* what s_target refuses in it, "" when nothing */
} s_conn_t;

bool
evr_gw_auth(evr_gw_t *gw, evr_gw_req_t *req, bool write)
{
    const char *h = evr_gw_header(req, "Authorization");
    char buf[EVR_GW_TOKEN_MAX + 1];
    const char *tok = h && !strncasecmp(h, "Bearer ", 7) ? h + 7 : NULL;
    evr_err_t err;
    if (h && !tok) {
        evr_gw_error(req, 401, "unauthorized", "the Authorization header must be "
                     "\"Bearer TOKEN\" (make a token with evrun-cli token)");
        return false;
    }
    tok = evr_gw_token_trim(tok, buf, sizeof buf);
    if (evr_gw_token_check(&gw->secret, tok, evr_now_ns() / 1000000000ull, &req->scope, &err)) {
        evr_gw_error(req, 401, "unauthorized", "%s", err.msg);
        return false;
    }
    if (write && req->scope != EVR_GW_SCOPE_WRITE) {
        evr_gw_error(req, 403, "forbidden", "%s %s needs a write token; this one is "
                     "read-only (make one with evrun-cli token, without --read-only)",
                     req->method, req->url);
        return false;
    }
    return true;
}

const char *
evr_gw_origin_form(const char *url)
{
    size_t skip = !strncasecmp(url, "http://", 7) ? 7 : !strncasecmp(url, "https://", 8) ? 8 : 0;
    if (!skip)
        return url;
    const char *path = url + skip + strcspn(url + skip, "/?#");
    if (path == url + skip || *path == '#')
        return NULL;    /* no host (RFC 3986 3.2.2: reject), or a fragment */
    return *path == '/' ? path : "/";
}

/*  Whether a 1.x request line's target ended where its version began:
    libmicrohttpd takes the target up to the space before the version, and
    a NUL byte sent in it cuts it short (/api/v1/runners\0/zz served as
    /api/v1/runners); false with a 400 set. */
static bool
s_target_whole(s_conn_t *cc, const char *version)
{
    if (cc->target_bad[0]) {
        evr_gw_error(&cc->req, 400, "bad_request", "%s", cc->target_bad);
        return false;
    }
    if (!cc->target || !version || !*version || cc->target + cc->target_len + 1 == version)
        return true;
    evr_gw_error(&cc->req, 400, "bad_request", "the request target holds a NUL byte after "
                 "\"%.64s\": send a target of URL characters (%%-escape others)", cc->target);
    return false;
}

/*  The first call for a request: route, authenticate, check the declared
    length.  False when an early answer is set. */
static bool
s_begin(evr_gw_t *gw, s_conn_t *cc, const char *url, const char *method, const char *version)
{
    int status;
    if (!s_target_whole(cc, version))
        return false;
    const char *target = url, *path = evr_gw_origin_form(url);
    if (!path) {
        evr_gw_error(&cc->req, 400, "bad_request", "request target \"%.64s\": an absolute URL "
                     "needs a host and no fragment (or send the path alone: /api/v1/...)", url);
        return false;
    }
    url = cc->req.url = path;
    int nh = MHD_get_connection_values(cc->req.conn, MHD_HEADER_KIND, NULL, NULL);
    if (nh > S_HEADERS_MAX) {
        evr_gw_error(&cc->req, 431, "too_many_headers", "the request has %d header fields, "
                     "over the limit of %d", nh, S_HEADERS_MAX);
        return false;
    }
    if (!evr_gw_framing_ok(&cc->req, version) || !evr_gw_header_nul_ok(&cc->req)
        || !evr_gw_nul_ok(&cc->req) || !evr_gw_host_ok(gw, &cc->req, target))
        return false;
    evr_gw_trim_fields(&cc->req);
    cc->route = evr_gw_route_match(method, url, cc->req.params, &status);
    if (!cc->route) {
        s_allow(url, cc->allow, sizeof cc->allow);
        if (status == 405)
            evr_gw_error(&cc->req, 405, "method_not_allowed", "%.64s is not served on %s: "
                         "it takes %s (see schema/openapi.yaml)", method, url, cc->allow);
        else
            evr_gw_error(&cc->req, 404, "not_found", "no such route: %s (the API is under "
                         EVR_GW_PREFIX ", see schema/openapi.yaml)", url);
        return false;
    }
    if (!cc->route->open && !evr_gw_auth(gw, &cc->req, cc->route->write))
        return false;
    if (cc->route->head && !cc->route->head(gw, &cc->req))
        return false;
    if (!evr_gw_query_ok(&cc->req, cc->route))
        return false;
    const char *cl = evr_gw_header(&cc->req, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > gw->body_max) {
        evr_gw_error(&cc->req, 413, "too_large", "the body is %s bytes, over the limit of %zu "
                     "bytes (the bus's message limit)", cl, gw->body_max);
        return false;
    }
    return true;
}

/*  s (a request's method or URL, as the client sent it) for one line of
    the log, into buf: a control character, a byte past ASCII (C1 controls
    such as NEL, bytes that are no UTF-8) and the backslash itself as
    \xHH (a %0A in a URL would start a line of its own: a forged entry;
    a literal "\x0A" must not read as an escaped one), cut with "..."
    past size. */
static const char *
s_log_safe(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    for (; *s && n + 8 < size; s++) {
        unsigned char c = (unsigned char) *s;
        if (c < 0x20 || c >= 0x7f || c == '\\')
            n += (size_t) snprintf(buf + n, size - n, "\\x%02X", c);
        else
            buf[n++] = (char) c;
    }
    snprintf(buf + n, size - n, "%s", *s ? "..." : "");
    return buf;
}

void
evr_gw_log_answer(const char *method, const char *url, int status, const char *reason)
{
    char lm[64], lu[1024], lr[1024];
    evr_log_info("gateway", "%s %s -> %d%s%s%s", method ? s_log_safe(method, lm, sizeof lm) : "-",
                 url ? s_log_safe(url, lu, sizeof lu) : "-", status, reason ? " (" : "",
                 reason ? s_log_safe(reason, lr, sizeof lr) : "", reason ? ")" : "");
}

/*  libmicrohttpd's own messages (MHD_OPTION_EXTERNAL_LOGGER): an answer
    it gives itself (its 400, 414, 431, 500 with an HTML body), a pool it
    ran out of, TLS set-up errors.  They went to stderr as they were, with
    no time or component and with whatever of the request they quote;
    each is now one warn line of the log, "libmicrohttpd: MESSAGE", its
    trailing newline dropped and the rest made safe as the access lines
    are. */
static void __attribute__((format(printf, 2, 0)))
s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void) cls;
    if (!evr_log_enabled(EVR_LOG_WARN))
        return;
    char msg[1024], safe[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    evr_log_warn("gateway", "libmicrohttpd: %s", s_log_safe(msg, safe, sizeof safe));
}

/*  A request refused before it reached its route (req's error answer is
    set): logged as a routed one is, with the error's code and message. */
static void
s_log_refused(const evr_gw_req_t *req, const char *method, const char *url)
{
    if (!evr_log_enabled(EVR_LOG_INFO))
        return;
    json_t *e = json_object_get(req->json, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    char *reason = evr_asprintf("refused before routing: %s: %s", code ? code : "?",
                                msg ? msg : "");
    evr_gw_log_answer(method, url, req->status, reason);
    free(reason);
}

static enum MHD_Result
s_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
         const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    evr_gw_t *gw = cls;
    s_conn_t *cc = *con_cls;
    if (!cc || !cc->begun) {
        if (!cc)        /* s_target made none (it makes one per request) */
            cc = evr_calloc(1, sizeof *cc);
        *con_cls = cc;
        cc->begun = true;
        cc->req.conn = conn;
        cc->req.method = method;
        cc->req.url = url;
        if (!s_begin(gw, cc, url, method, version)) {
            cc->answered = true;
            evr_gw_conn_busy(gw, conn, true);
            s_log_refused(&cc->req, method, url);
            return s_queue(&cc->req, cc->allow);
        }
        evr_gw_conn_request(gw, conn, method, url);   /* for the watchdog's log */
        return MHD_YES;
    }
    if (cc->answered) {     /* the body of a refused request: dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size && cc->over) {
        /* libmicrohttpd answers only once the body is read: the rest is
           read and dropped, up to a bound past which the connection is
           closed without an answer */
        cc->over += *upload_size;
        *upload_size = 0;
        return cc->over > S_DROP_MAX ? MHD_NO : MHD_YES;
    }
    if (*upload_size) {
        if (cc->req.len + *upload_size > gw->body_max) {
            cc->over = cc->req.len + *upload_size;
            *upload_size = 0;
            free(cc->req.body);
            cc->req.body = NULL;
            cc->req.len = cc->cap = 0;
            return MHD_YES;
        }
        if (cc->req.len + *upload_size + 1 > cc->cap) {
            cc->cap = (cc->req.len + *upload_size + 1) * 2;
            cc->cap = cc->cap > gw->body_max + 1 ? gw->body_max + 1 : cc->cap;
            cc->req.body = evr_realloc(cc->req.body, cc->cap);
        }
        memcpy(cc->req.body + cc->req.len, upload, *upload_size);
        cc->req.len += *upload_size;
        cc->req.body[cc->req.len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    cc->answered = true;
    evr_gw_conn_busy(gw, conn, true);   /* all in: no deadline while answering */
    if (cc->over) {
        evr_gw_error(&cc->req, 413, "too_large", "the body is over the limit of %zu bytes "
                     "(the bus's message limit)", gw->body_max);
        s_log_refused(&cc->req, method, url);
        return s_queue(&cc->req, NULL);
    }
    cc->route->fn(gw, &cc->req);
    if (!cc->req.status && !cc->req.resp)
        evr_gw_error(&cc->req, 500, "internal", "the handler set no answer");
    evr_gw_log_answer(method, url, cc->req.status, NULL);
    return s_queue(&cc->req, NULL);
}

static void
s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
            enum MHD_RequestTerminationCode toe)
{
    (void) toe;
    /* the next request on this connection has its own deadline */
    evr_gw_conn_busy(cls, conn, false);
    s_conn_t *cc = *con_cls;
    if (!cc)
        return;
    json_decref(cc->req.json);
    if (cc->req.resp)
        MHD_destroy_response(cc->req.resp);
    free(cc->req.body);
    free(cc);
    *con_cls = NULL;
}

/* --------------------------------------------------------------- start */

static int
s_hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*  libmicrohttpd's unescaping of the path and query values (%XX); a %00
    becomes a NUL inside the length returned, counted on the connection
    (evr_gw_conn_nul): evr_gw_nul_ok refuses the request, naming where. */
static size_t
s_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void) cls;
    char *w = s;
    bool nul = false;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (r[0] == '%' && (hi = s_hex(r[1])) >= 0 && (lo = s_hex(r[2])) >= 0) {
            *w++ = (char) (hi * 16 + lo);
            nul |= hi * 16 + lo == 0;
            r += 2;
        }
        else
            *w++ = *r;
    }
    *w = '\0';
    if (nul && !evr_gw_conn_nul(conn))    /* not counted (no registry entry): refused */
        for (char *p = s; p < w; p++)     /* as a control character by every check */
            *p = *p ? *p : 0x7f;
    return (size_t) (w - s);
}

/*  libmicrohttpd's URI log callback: the request target as sent, before
    libmicrohttpd splits off its query (a header record per parameter, from
    the connection's 32 KiB: past about 600 it runs out and closes the
    connection without an answer) and unescapes its path (%2F would read
    as /).  A bare CR, a space, a #fragment, an escaped / in the path or
    more than S_QUERY_MAX parameters is noted for s_begin's 400 (past the
    limit, the query is cut here so that libmicrohttpd reads none of it).
    Returns the request's context (s_access's *con_cls). */
static void *
s_target(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void) cls;
    s_conn_t *cc = evr_calloc(1, sizeof *cc);
    cc->req.conn = conn;
    cc->target = uri;
    cc->target_len = strlen(uri);
    const char *q = strchr(uri, '?');
    size_t path_len = q ? (size_t) (q - uri) : cc->target_len, n = 0;
    bool slash = false;
    for (size_t i = 0; i + 2 < path_len && !slash; i++)
        slash = uri[i] == '%' && uri[i + 1] == '2' && (uri[i + 2] == 'F' || uri[i + 2] == 'f');
    for (const char *p = q; p && *p; p++)
        n += p == q || *p == '&';      /* as libmicrohttpd splits it */
    if (strchr(uri, '\r'))     /* a proxy may end the request line there (RFC 9112 2.2) */
        snprintf(cc->target_bad, sizeof cc->target_bad, "the request target holds a CR byte "
                 "(a bare CR, which a proxy may take for the line's end): send a target of URL "
                 "characters (%%-escape others)");
    else if (strpbrk(uri, " \t"))  /* libmicrohttpd ends it at the last space, a proxy
                                      may at the first (RFC 9112 3: none in a target) */
        snprintf(cc->target_bad, sizeof cc->target_bad, "request target \"%.64s\": it holds a "
                 "space or tab, which a target may not (RFC 9112 3): send %%20 for a space",
                 uri);
    else if (strchr(uri, '#'))
        snprintf(cc->target_bad, sizeof cc->target_bad, "request target \"%.64s\": a "
                 "#fragment is never sent to a server (RFC 9112 3.2): leave it out", uri);
    else if (slash)
        snprintf(cc->target_bad, sizeof cc->target_bad, "the path holds an escaped / (%%2F), "
                 "which would read as a separator: send / as it is");
    else if (n > S_QUERY_MAX) {
        snprintf(cc->target_bad, sizeof cc->target_bad, "the query has %zu parameters, over "
                 "the limit of %d", n, S_QUERY_MAX);
        ((char *) q)[1] = '\0';    /* the read buffer's: libmicrohttpd's next step reads it */
    }
    return cc;
}

/*  "HOST:PORT" (an IPv4 address, or localhost; PORT 0 to 65535 in
    digits alone) into sa; else EVR_ERR_CONFIG and why in err, naming the setting's
    source as the other settings' errors do. */
static evr_rc_t
s_listen_addr(const evr_config_t *cfg, struct sockaddr_in *sa, evr_err_t *err)
{
    const char *s = evr_config_get(cfg, "http_listen");
    const char *colon = s ? strrchr(s, ':') : NULL, *p = colon ? colon + 1 : "";
    char host[64];
    long port = 0;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    for (; *p >= '0' && *p <= '9' && port <= 65535; p++)   /* no sign, space or 0x */
        port = port * 10 + (*p - '0');
    if (!colon || colon == s || (size_t) (colon - s) >= sizeof host || *p || !colon[1]
        || port > 65535)
        return evr_config_problem(cfg, "http_listen", err, "expected HOST:PORT (an IPv4 "
                                  "address or localhost, PORT 0 to 65535; 0: any free one), "
                                  "e.g. 127.0.0.1:7780");
    snprintf(host, sizeof host, "%.*s", (int) (colon - s), s);
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return evr_config_problem(cfg, "http_listen", err, "%s is not an IPv4 address (nor "
                                  "localhost; e.g. 127.0.0.1:7780, or 0.0.0.0:7780 for every "
                                  "address)", host);
    sa->sin_port = htons((uint16_t) port);
    return EVR_OK;
}

evr_rc_t
evr_gw_listen_check(const evr_config_t *cfg, evr_err_t *err)
{
    struct sockaddr_in sa;
    evr_rc_t rc = s_listen_addr(cfg, &sa, err);
    if ((evr_config_get(cfg, "tls_cert") != NULL) != (evr_config_get(cfg, "tls_key") != NULL))
        rc = evr_config_problem(cfg, evr_config_get(cfg, "tls_cert") ? "tls_cert" : "tls_key",
                                err, "set both tls_cert and tls_key (--tls-cert and "
                                "--tls-key), or neither");
    return rc;
}

/*  The whole of a PEM file (at most 1 MiB); caller frees. */
static char *
s_read_pem(const char *key, const char *path, evr_err_t *err)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    if (!fp) {
        evr_err_set(err, EVR_ERR_CONFIG, "%s = %s: %s", key, path, strerror(errno));
        return NULL;
    }
    buf = evr_malloc(1u << 20);
    size_t n = fread(buf, 1, (1u << 20) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    if (!n || n == (1u << 20) - 1) {
        evr_err_set(err, EVR_ERR_CONFIG, "%s = %s: expected a PEM file under 1 MiB", key, path);
        free(buf);
        return NULL;
    }
    return buf;
}

/*  Whether sa can be bound (as libmicrohttpd binds it: SO_REUSEADDR);
    else err names the address, port and errno's words.  libmicrohttpd's
    own message would say "port 0" and hide the address. */
static evr_rc_t
s_bind_probe(const struct sockaddr_in *sa, evr_err_t *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0)
        return evr_err_set(err, EVR_ERR_IO, "socket: %s", strerror(errno));
    (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    evr_rc_t rc = EVR_OK;
    if (bind(fd, (const struct sockaddr *) sa, sizeof *sa) != 0) {
        int e = errno;
        char ip[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
        rc = evr_err_set(err, EVR_ERR_IO, "cannot listen on %s:%u: %s%s", ip,
                         ntohs(sa->sin_port), strerror(e),
                         e == EADDRINUSE ? " (another evrun-gateway, or another server, "
                                               "has it: stop it, or set another --listen)" : "");
    }
    close(fd);
    return rc;
}

evr_rc_t
evr_gw_start(evr_gw_t *gw, evr_err_t *err)
{
    struct sockaddr_in sa;
    evr_rc_t rc = evr_gw_listen_check(gw->cfg, err);
    if (!rc)
        rc = s_listen_addr(gw->cfg, &sa, err);
    if (rc)
        return rc;
    if ((rc = s_bind_probe(&sa, err)) || (rc = evr_gw_hosts_check(gw->cfg, err)))
        return rc;
    evr_gw_hosts_load(gw, &sa);
    const char *certf = evr_config_get(gw->cfg, "tls_cert");
    const char *keyf = evr_config_get(gw->cfg, "tls_key");
    char *cert = certf ? s_read_pem("tls_cert", certf, err) : NULL;
    char *key = cert ? s_read_pem("tls_key", keyf, err) : NULL;
    if (certf && !key) {
        free(cert);
        return EVR_ERR_CONFIG;
    }
    if (!gw->max_conns)
        evr_gw_limits_default(gw);
    pthread_mutex_init(&gw->conns_mu, NULL);
    evr_gw_views_new(gw);
    if (evr_gw_bus_start(gw, err)) {    /* before the first request, which may wait for it */
        pthread_mutex_destroy(&gw->conns_mu);
        evr_gw_views_destroy(gw);
        free(cert);
        free(key);
        return EVR_ERR_IO;
    }
    /* a thread per connection, each polling its socket with poll(2): no
       FD_SETSIZE bound on descriptor numbers (a live log takes several) */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
                   | MHD_USE_POLL | MHD_USE_ERROR_LOG | (cert ? MHD_USE_TLS : 0);
    gw->daemon = MHD_start_daemon(
        flags, 0, evr_gw_conn_accept, gw,   /* http_max_per_ip, logged */
        s_access, gw, MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,   /* first, or some go to stderr */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, gw,
        MHD_OPTION_NOTIFY_CONNECTION, evr_gw_conn_notify, gw,
        MHD_OPTION_CONNECTION_LIMIT, gw->max_conns,
        MHD_OPTION_CONNECTION_TIMEOUT, gw->idle_s,
        MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, s_target, NULL,
        cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
        MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
    gw->tls_cert = cert;
    gw->tls_key = key;
    if (!gw->daemon) {
        pthread_mutex_destroy(&gw->conns_mu);
        evr_gw_views_destroy(gw);
        evr_gw_bus_stop(gw);
    }
    if (!gw->daemon && certf)
        return evr_err_set(err, EVR_ERR_IO, "cannot listen on %s with TLS: are tls_cert and "
                           "tls_key a certificate and its key (libmicrohttpd's message above)?",
                           evr_config_get(gw->cfg, "http_listen"));
    if (!gw->daemon)
        return evr_err_set(err, EVR_ERR_IO, "cannot listen on %s: libmicrohttpd could not start "
                           "(its message above; the port may have been taken meanwhile)",
                           evr_config_get(gw->cfg, "http_listen"));
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(gw->daemon, MHD_DAEMON_INFO_BIND_PORT);
    gw->port = di ? di->port : ntohs(sa.sin_port);
    evr_gw_watchdog_start(gw);
    evr_gw_metrics_start(gw);
    return EVR_OK;
}

void
evr_gw_stop(evr_gw_t *gw)
{
    gw->stopping = 1;
    evr_gw_watchdog_stop(gw);
    if (gw->daemon) {
        MHD_stop_daemon(gw->daemon);
        pthread_mutex_destroy(&gw->conns_mu);
    }
    evr_gw_bus_stop(gw);    /* no request left to wait for it */
    evr_gw_views_destroy(gw);
    gw->daemon = NULL;
    evr_gw_metrics_stop(gw);
    free(gw->tls_cert);
    free(gw->tls_key);
    gw->tls_cert = gw->tls_key = NULL;
}
