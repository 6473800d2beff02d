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
      .root = true },
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

/*  The length of the UTF-8 sequence at p (NUL-terminated), 0 when it is
    none (a stray or overlong byte, a surrogate, past U+10FFFF). */
static size_t
s_utf8_len(const unsigned char *p)
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

void
evr_gw_error(evr_gw_req_t *req, int status, const char *code, const char *fmt, ...)
{
    char msg[1024], safe[4 * sizeof msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* a message quoting bad input may hold bytes that are no UTF-8: each
       is written \xHH, so the message stays JSON and still says what came */
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *) msg; *p && n + 5 < sizeof safe;) {
        size_t l = s_utf8_len(p);
        if (l)
            memcpy(safe + n, p, l), n += l, p += l;
        else
            n += (size_t) snprintf(safe + n, sizeof safe - n, "\\x%02X", *p++);
    }
    safe[n] = '\0';
    json_t *m = json_string(safe);
    if (!m)
        m = json_string("(the message could not be made UTF-8)");
    evr_gw_json(req, status, json_pack("{s:{s:s,s:o}}", "error", "code", code, "message", m));
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
        if (!s)
            s = evr_strdup("{\"error\":{\"code\":\"internal\",\"message\":\"no answer\"}}");
        size_t n = strlen(s);
        s = evr_realloc(s, n + 2);
        s[n++] = '\n';
        resp = MHD_create_response_from_buffer(n, s, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", "application/json");
    }
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

/*  Fields that may come once at most (which one would count?).  Each is
    read as libmicrohttpd's first of its name, where a proxy in front
    could read the last, or join them with commas (RFC 9110 5.3):
    "Transfer-Encoding: chunked" and "Transfer-Encoding: gzip" are
    "chunked, gzip" to it, a body that ends at the connection's close,
    and two Idempotency-Key headers one job the first time and another
    when sent again with the second key alone. */
static const char *const s_once[] = { "Authorization", "X-Evrun-Token", "X-GitHub-Event",
                                      "X-GitHub-Delivery", "X-Hub-Signature-256",
                                      "Transfer-Encoding", "Content-Type", "Idempotency-Key",
                                      "Last-Event-ID" };
#define S_ONCE_N EVR_ARRAY_LEN(s_once)

typedef struct {
    const char *first;      /* the first Content-Length's value */
    bool differ;            /* another one says otherwise */
    const char *spaced;     /* a field name with whitespace ("Transfer-Encoding :") */
    const char *folded;     /* a field a line starting with SP or HT continued (obs-fold) */
    int hosts;              /* Host fields */
    int once[S_ONCE_N];     /* each of s_once's fields */
} s_lengths_t;

/*  Whether key and value are still where the request line "KEY: VALUE"
    put them: the name, its colon (now a NUL), spaces or tabs, the value.
    libmicrohttpd 0.9.75 joins a continuation line (obs-fold, "X: a\r\n
    b") to the field's name ("Xb", value "a") in a block of its own, so
    the field it made is no longer in place; nothing says so otherwise. */
static bool
s_in_place(const char *key, const char *value)
{
    const char *p = key + strlen(key) + 1;
    if ((uintptr_t) value < (uintptr_t) p || (uintptr_t) value - (uintptr_t) p > 65536)
        return false;
    while (p < value && (*p == ' ' || *p == '\t'))
        p++;
    return p == value;
}

static enum MHD_Result
s_length_item(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    s_lengths_t *l = cls;
    (void) kind;
    if (!l->spaced && strpbrk(key, " \t"))
        l->spaced = key;
    if (!l->folded && value && !s_in_place(key, value))
        l->folded = key;
    for (size_t i = 0; i < S_ONCE_N; i++)
        l->once[i] += !strcasecmp(key, s_once[i]);
    l->hosts += !strcasecmp(key, "Host");
    if (strcasecmp(key, "Content-Length"))
        return MHD_YES;
    if (!l->first)
        l->first = value ? value : "";
    else if (strcmp(l->first, value ? value : ""))
        l->differ = true;
    return MHD_YES;
}

/*  Whether req's body is framed one way only: a proxy in front that read
    another Content-Length, or Content-Length where we read
    Transfer-Encoding, or a header field libmicrohttpd takes under
    another name ("Transfer-Encoding :", which RFC 9112 5.1 has refused),
    or an HTTP/1.0 request's Transfer-Encoding as none, would take the
    body's end elsewhere (request smuggling, RFC 9112 6.1 and 6.3).  Also one of each of s_once at most (which one would
    count?), and one Host, none only in HTTP/1.0 (RFC 9112 3.2).  False with a 400
    (501 for a coding not read) set. */
static bool
s_framing_ok(evr_gw_req_t *req, const char *version)
{
    s_lengths_t l = { 0 };
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, s_length_item, &l);
    bool both = l.first && evr_gw_header(req, "Transfer-Encoding");
    /* HTTP/1.0 has no Transfer-Encoding: a proxy of it reads the body as
       none, where libmicrohttpd decodes it (RFC 9112 6.1: framing faulty) */
    bool te10 = evr_gw_header(req, "Transfer-Encoding") && version
             && !strcmp(version, "HTTP/1.0");
    if (l.spaced)
        evr_gw_error(req, 400, "bad_request", "header field \"%.64s\": no space or tab may "
                     "come in a field name or before its colon", l.spaced);
    else if (l.folded)
        evr_gw_error(req, 400, "bad_request", "header field \"%.64s\" (as libmicrohttpd "
                     "joined it): a line starting with a space or tab continues the one above "
                     "(obs-fold, RFC 9112 5.2), which is refused: send each field on one line",
                     l.folded);
    else if (l.differ)
        evr_gw_error(req, 400, "bad_request", "two Content-Length headers that differ: send "
                     "one");
    else if (both)
        evr_gw_error(req, 400, "bad_request", "both Content-Length and Transfer-Encoding: "
                     "send one");
    else if (te10)
        evr_gw_error(req, 400, "bad_request", "Transfer-Encoding in an HTTP/1.0 request, "
                     "which has none (RFC 9112 6.1): send Content-Length, or HTTP/1.1");
    if (l.spaced || l.folded || l.differ || both || te10)
        return false;
    for (size_t i = 0; i < S_ONCE_N; i++)
        if (l.once[i] > 1) {
            evr_gw_error(req, 400, "bad_request", "%d %s headers: send one", l.once[i],
                         s_once[i]);
            return false;
        }
    if (l.hosts > 1) {
        evr_gw_error(req, 400, "bad_request", "%d Host headers: send one", l.hosts);
        return false;
    }
    if (!l.hosts && version && !strcmp(version, "HTTP/1.1")) {
        evr_gw_error(req, 400, "bad_request", "an HTTP/1.1 request needs a Host header "
                     "(RFC 9112 3.2): send Host: HOST:PORT");
        return false;
    }
    /* a coding libmicrohttpd does not decode (identity, gzip, "gzip,
       chunked", even "chunked " with a space after it): it would read
       the body until the connection closes, and never answer (RFC 9112
       6.1: 501) */
    const char *te = evr_gw_header(req, "Transfer-Encoding");
    if (te && strcasecmp(te, "chunked")) {
        evr_gw_error(req, 501, "not_implemented", "Transfer-Encoding \"%.64s\" is not "
                     "supported: send \"chunked\" alone (nothing after it), or a "
                     "Content-Length", te);
        return false;
    }
    return true;
}

/*  The header fields the gateway reads whole (Authorization, X-Evrun-Token
    and Accept are trimmed as they are parsed; Content-Length and
    Transfer-Encoding are libmicrohttpd's).  libmicrohttpd reads none of
    these, so a value cut short in place is seen by the gateway alone. */
static const char *const s_trimmed[] = { "Idempotency-Key", "Last-Event-ID", "X-GitHub-Event",
                                         "X-GitHub-Delivery", "X-Hub-Signature-256",
                                         "If-None-Match" };

/*  Cuts the spaces and tabs after the value of each of s_trimmed's
    fields: RFC 9112 5 has them no part of it (OWS), but libmicrohttpd
    0.9.75 keeps them ("Last-Event-ID: 3 " was no integer, and a signed
    "X-GitHub-Event: push " an event not handled).  The values are in
    libmicrohttpd's read buffer, as the request target is (s_target). */
static enum MHD_Result
s_trim_item(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) cls, (void) kind;
    size_t n = value ? strlen(value) : 0;
    bool ours = false;
    for (size_t i = 0; i < EVR_ARRAY_LEN(s_trimmed) && !ours; i++)
        ours = !strcasecmp(key, s_trimmed[i]);
    while (ours && n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        ((char *) value)[--n] = '\0';
    return MHD_YES;
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

typedef struct {
    const char *known;      /* the route's query parameters, space-separated */
    char unknown[256];      /* the others, ", "-joined */
    char bad[160];          /* a known one with no value, or given twice */
    char seen[8][16];       /* the known ones given so far */
    int nseen;
} s_query_t;

/*  Whether a query parameter may come more than once (POST /jobs). */
static bool
s_query_repeats(const char *key)
{
    return !strcmp(key, "arg") || !strcmp(key, "label");
}

static bool
s_query_has(const char *known, const char *key)
{
    size_t n = strlen(key);
    if (strchr(key, ' '))   /* "arg label" (?arg+label=) is no name of the list */
        return false;
    for (const char *k = known; n && (k = strstr(k, key)); k += n)
        if ((k == known || k[-1] == ' ') && (k[n] == ' ' || !k[n]))
            return true;
    return false;
}

static enum MHD_Result
s_query_item(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    s_query_t *q = cls;
    (void) kind;
    if (!*key && !value)    /* "?&limit=1", "a=1&&b=2": no parameter, as a trailing "&" */
        return MHD_YES;
    size_t at = strlen(q->unknown);
    bool known = s_query_has(q->known, key);
    if (!known && at + 8 < sizeof q->unknown)
        snprintf(q->unknown + at, sizeof q->unknown - at, "%s%.64s", at ? ", " : "",
                 *key ? key : "(an empty name)");
    if (!known || q->bad[0])
        return MHD_YES;
    const unsigned char *u = (const unsigned char *) (value ? value : "");
    for (size_t l; *u && (l = s_utf8_len(u)); u += l)
        ;
    if (*u)         /* said with its bytes \xHH-quoted (evr_gw_error) */
        snprintf(q->bad, sizeof q->bad, "query parameter %.15s: \"%.64s\" is not UTF-8", key,
                 value);
    else if (!value)     /* ?limit, no '=': not the same as no ?limit at all */
        snprintf(q->bad, sizeof q->bad, "query parameter %.15s has no value (%.15s=...)", key,
                 key);
    for (int i = 0; i < q->nseen && !q->bad[0] && !s_query_repeats(key); i++)
        if (!strcmp(q->seen[i], key))
            snprintf(q->bad, sizeof q->bad, "query parameter %.15s is given twice: give it "
                     "once", key);
    if (q->nseen < (int) EVR_ARRAY_LEN(q->seen) && strlen(key) < sizeof q->seen[0])
        snprintf(q->seen[q->nseen++], sizeof q->seen[0], "%s", key);
    return MHD_YES;
}

/*  Whether every query parameter of req is one its route takes, with a
    value, once (arg and label may repeat); else req's answer is a 400
    naming them (and the known ones).  A misspelt or guessed parameter
    (?WHO=x for ?arg=WHO=x), a ?limit with no '=' or a second ?limit is
    not dropped quietly. */
static bool
s_query_ok(evr_gw_req_t *req, const evr_gw_route_t *route)
{
    if (!route->query)
        return true;
    s_query_t q = { .known = route->query };
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, s_query_item, &q);
    if (!q.unknown[0] && q.bad[0]) {
        evr_gw_error(req, 400, "bad_request", "%s (see schema/openapi.yaml)", q.bad);
        return false;
    }
    if (!q.unknown[0])
        return true;
    char known[128];
    size_t n = 0;
    for (const char *c = route->query; *c && n + 3 < sizeof known; c++) {
        if (*c == ' ')
            known[n++] = ',';
        known[n++] = *c;
    }
    known[n] = '\0';
    evr_gw_error(req, 400, "bad_request", "unknown query parameter %s: this route takes %s%s%s "
                 "(see schema/openapi.yaml)", q.unknown, *known ? "" : "none", known,
                 strcmp(route->query, "arg label") ? "" : " (an arg is ?arg=NAME=VALUE)");
    return false;
}

typedef struct {
    unsigned seen;          /* parameters with a NUL in name or value */
    char first[80];         /* the first one's name, as far as its NUL */
} s_nuls_t;

static enum MHD_Result
s_nul_item(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
           const char *value, size_t value_size)
{
    s_nuls_t *n = cls;
    (void) kind;
    bool in_key = strlen(key) != key_size, in_value = value && strlen(value) != value_size;
    if ((in_key || in_value) && !n->seen++)
        snprintf(n->first, sizeof n->first, "%s%.64s%s", in_key ? "the name of " : "",
                 *key ? key : "(an empty name)", in_key ? "...": "");
    return MHD_YES;
}

/*  Whether no query parameter's name or value, and no path, held a %00
    (decoded, a NUL would end the string there unseen: ?arg=A=x%00y read
    as x); false with a 400 naming where. */
static bool
s_nul_ok(evr_gw_req_t *req)
{
    unsigned all = evr_gw_conn_nuls_take(req->conn);
    s_nuls_t n = { 0 };
    if (!all)
        return true;
    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, s_nul_item, &n);
    if (n.seen)
        evr_gw_error(req, 400, "bad_request", "query parameter %s: it holds an escaped NUL "
                     "(%%00), which no name or value may", n.first);
    else
        evr_gw_error(req, 400, "bad_request", "the path holds an escaped NUL (%%00), which no "
                     "job id, step or path may");
    return false;
}

typedef struct {
    const char *key, *end;  /* the field before, and where its value ended (its NUL) */
    const char *first;      /* the first field whose value held a NUL byte */
    const char *cr;         /* the first field with a bare CR in its name or value */
} s_hnul_t;

/*  Whether a NUL byte the client sent ended a value (at end) before its
    line did (next: the next field's name, NULL after the last field).
    libmicrohttpd 0.9.75 writes a NUL over each line's CR and LF and
    reads a value as far as its first NUL, so between a value's end and
    the next field's name lie NULs only, and after the last one's first
    NUL another (its LF, or the empty line's): a byte that is no NUL
    there was sent after a NUL.  A NUL that is the value's last byte
    looks like its line's end, and reads as the value without it. */
static bool
s_cut_short(const char *end, const char *next)
{
    if (!next)      /* the last field: the byte after its line's first NUL */
        return end[1] != '\0';
    if ((uintptr_t) next <= (uintptr_t) end || (uintptr_t) next - (uintptr_t) end > 65536)
        return false;
    for (const char *p = end; p < next; p++)
        if (*p)
            return true;
    return false;
}

static enum MHD_Result
s_header_nul_item(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    s_hnul_t *h = cls;
    (void) kind;
    if (!h->first && h->end && s_cut_short(h->end, key))
        h->first = h->key;
    if (!h->cr && (strchr(key, '\r') || (value && strchr(value, '\r'))))
        h->cr = key;
    h->key = key;
    h->end = value ? value + strlen(value) : NULL;  /* "" too: where its line ended */
    return MHD_YES;
}

/*  Whether no header field's value holds a NUL byte, nor its name or
    value a bare CR.  libmicrohttpd keeps both: a value read as a string
    ends at a NUL unseen ("Idempotency-Key: k\0x" read as k,
    "Authorization: Bearer TOKEN\0..." as the token), where a proxy in
    front may read it whole (RFC 9110 5.5: a recipient rejects it or
    reads it as a space); and "X-A: a\rContent-Length: 10" is one field
    here, two to a proxy that ends a line at a bare CR (request
    smuggling; RFC 9112 2.2).  False with a 400. */
static bool
s_header_nul_ok(evr_gw_req_t *req)
{
    s_hnul_t h = { 0 };
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, s_header_nul_item, &h);
    if (!h.first && h.end && s_cut_short(h.end, NULL))
        h.first = h.key;
    if (h.first)
        evr_gw_error(req, 400, "bad_request", "header field \"%.64s\": its value holds a NUL "
                     "byte, which no field value may (RFC 9110 5.5)", h.first);
    else if (h.cr)
        evr_gw_error(req, 400, "bad_request", "header field \"%.64s\": a CR byte with no LF "
                     "after it (a bare CR), which a proxy may take for the line's end (RFC "
                     "9112 2.2): end each line with CRLF or LF, and send no CR within it",
                     h.cr);
    return !h.first && !h.cr;
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
    const char *path = evr_gw_origin_form(url);
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
    if (!s_framing_ok(&cc->req, version) || !s_header_nul_ok(&cc->req) || !s_nul_ok(&cc->req))
        return false;
    MHD_get_connection_values(cc->req.conn, MHD_HEADER_KIND, s_trim_item, NULL);
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
    if (!s_query_ok(&cc->req, cc->route))
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
    (evr_gw_conn_nul): s_nul_ok refuses the request, naming where. */
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

/*  "HOST:PORT" (an IPv4 address, or localhost) into sa. */
static evr_rc_t
s_listen_addr(const char *s, struct sockaddr_in *sa, evr_err_t *err)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    char host[64], *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    if (!colon || (size_t) (colon - s) >= sizeof host || port < 0 || port > 65535 || *end
        || colon[1] == '\0')
        return evr_err_set(err, EVR_ERR_CONFIG, "http_listen = \"%s\": expected HOST:PORT, "
                           "e.g. 127.0.0.1:7780", s ? s : "");
    snprintf(host, sizeof host, "%.*s", (int) (colon - s), s);
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return evr_err_set(err, EVR_ERR_CONFIG, "http_listen = \"%s\": %s is not an IPv4 "
                           "address", s, host);
    sa->sin_port = htons((uint16_t) port);
    return EVR_OK;
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
    evr_rc_t rc = s_listen_addr(evr_config_get(gw->cfg, "http_listen"), &sa, err);
    if (rc)
        return rc;
    if ((rc = s_bind_probe(&sa, err)))
        return rc;
    const char *certf = evr_config_get(gw->cfg, "tls_cert");
    const char *keyf = evr_config_get(gw->cfg, "tls_key");
    if ((certf != NULL) != (keyf != NULL))
        return evr_err_set(err, EVR_ERR_CONFIG, "set both tls_cert and tls_key (or neither)");
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
        s_access, gw, MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
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
