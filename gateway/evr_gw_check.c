/*  evr_gw_check.c: the checks of a request's head before it is routed
    (evr_gw_http.c's s_begin calls them): its framing (Content-Length,
    Transfer-Encoding, Host, fields sent twice), the fields the gateway
    reads whole trimmed, its query parameters against its route's, and
    NUL and bare CR bytes where libmicrohttpd 0.9.75 would cut a value
    short or join two silently.  Each that refuses sets the request's
    answer (400, 501) and returns false.  See evr_gw.h. */
#include "evr_gw.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
bool
evr_gw_framing_ok(evr_gw_req_t *req, const char *version)
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

void
evr_gw_trim_fields(evr_gw_req_t *req)
{
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, s_trim_item, NULL);
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
    for (size_t l; *u && (l = evr_gw_utf8_len(u)); u += l)
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
bool
evr_gw_query_ok(evr_gw_req_t *req, const evr_gw_route_t *route)
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
bool
evr_gw_nul_ok(evr_gw_req_t *req)
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
bool
evr_gw_header_nul_ok(evr_gw_req_t *req)
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
