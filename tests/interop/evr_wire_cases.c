/*  evr_wire_cases.c: the cases of evr-wire-audit (see evr_wire_audit.c):
    valid requests, bad fields generated from the tables, bad envelopes,
    a rogue runner, and a last look that the broker still serves. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "evr_wire_audit.h"
#include "evr_wire_tables.h"

/*  text with every "%s" replaced by a fresh ULID; caller frees. */
static char *
s_fill(const char *text)
{
    size_t n = strlen(text) + 1;
    char *out = malloc(n * 14 + 1), *o = out;
    for (const char *p = text; *p; p++) {
        if (p[0] == '%' && p[1] == 's') {
            evr_wa_ulid(o);
            o += 26;
            p++;
        } else
            *o++ = *p;
    }
    *o = '\0';
    return out;
}

/*  Sends the request whose body is text (a format) on s; expects that error. */
static void
s_bad(void *s, const char *what, const char *type, const char *code, const char *needle,
      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void
s_bad(void *s, const char *what, const char *type, const char *code, const char *needle,
      const char *fmt, ...)
{
    va_list ap;
    char *text;
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *filled = s_fill(text);
    free(text);
    text = filled;
    size_t l;
    uint8_t *b = evr_wmp_body(&l, "%s", text);
    char label[300];
    snprintf(label, sizeof label, "%s %s", type, what);
    evr_wa_expect(s, label, type, b, l, code, needle);
    free(b);
    free(text);
}

/*  Sends a valid request (body text, "%s" a fresh ULID each); its answer
    in *a (a stream: its end).  Returns the stream's item count. */
static int
s_ok(void *s, const char *type, evr_wa_answer_t *a, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int
s_ok(void *s, const char *type, evr_wa_answer_t *a, const char *fmt, ...)
{
    va_list ap;
    char *text;
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *filled = s_fill(text);
    free(text);
    text = filled;
    size_t l;
    uint8_t *b = evr_wmp_body(&l, "%s", text);
    char label[300];
    snprintf(label, sizeof label, "%s %.200s", type, text);
    int n = evr_wa_request(s, label, type, b, l, a);
    free(b);
    free(text);
    return n;
}

#define S_IS(a, t) (!strcmp((a)->type, (t)))

static void
s_answer_is(evr_wa_answer_t *a, const char *what, const char *type, const char *code)
{
    evr_wa_check(S_IS(a, type) && (!code || !strcmp(evr_wa_str(a, "code"), code)),
                 "%s: expected %s%s%s, got %s %s: %s", what, type, code ? " " : "",
                 code ? code : "", a->type, evr_wa_str(a, "code"), evr_wa_str(a, "message"));
    evr_wa_answer_clear(a);
}

/*  The bounds PROTOCOL.md gives the broker's tables and pages, with one
    demand of count 1 and one provider kept already. */
static void
s_bounds(void *c)
{
    evr_wa_answer_t a;
    int n, ok = 0;
    for (int i = 0; i < 16; i++) {
        s_ok(c, "demand", &a, "{job:\"%%s\",labels:[\"audit-none\"],count:64}");
        if (S_IS(&a, "ok"))
            ok++;
        else
            evr_wa_check(i == 15 && !strcmp(evr_wa_str(&a, "code"), "unavailable")
                         && strstr(evr_wa_str(&a, "message"), "1024"),
                         "demand past 1024 runners wanted: unavailable (%d kept; got %s %s)", ok,
                         evr_wa_str(&a, "code"), evr_wa_str(&a, "message"));
        evr_wa_answer_clear(&a);
    }
    evr_wa_check(ok == 15, "demands of 64 runners: 15 kept with the 1 wanted already (%d)", ok);
    s_ok(c, "demand", &a, "{job:\"%%s\",labels:[\"audit-none\"],count:63}");
    s_answer_is(&a, "demand up to 1024 runners wanted", "ok", NULL);
    s_ok(c, "demand", &a, "{job:\"%%s\",count:0,ttl:0}");
    s_answer_is(&a, "demand (count 0 = 1) past 1024 runners wanted", "error", "unavailable");
    for (ok = 0, n = 0; n < 256; n++) {
        s_ok(c, "provider", &a, "{provider:\"p%d\",runner:\"audit-prov\"}", n);
        if (S_IS(&a, "ok"))
            ok++;
        else
            evr_wa_check(n == 255 && !strcmp(evr_wa_str(&a, "code"), "unavailable"),
                         "provider past 256 kept: unavailable (%d kept; got %s %s)", ok,
                         evr_wa_str(&a, "code"), evr_wa_str(&a, "message"));
        evr_wa_answer_clear(&a);
    }
    evr_wa_check(ok == 255, "providers: 255 more kept with the one kept already (%d)", ok);
    s_ok(c, "provider", &a, "{provider:\"p3\",runner:\"audit-prov\",max:1}");
    s_answer_is(&a, "a provider kept reported again", "ok", NULL);
    n = s_ok(c, "providers", &a, "{}");
    evr_wa_check(n == 256 && S_IS(&a, "end"), "providers: 256 listed (%d)", n);
    evr_wa_answer_clear(&a);
    n = s_ok(c, "jobs", &a, "{limit:4294967295}");
    evr_wa_check(S_IS(&a, "end") && n >= 3 && !evr_wmp_get(a.obj, "more"),
                 "jobs{limit: 2^32-1}: every job, as with the largest limit (%d)", n);
    evr_wa_answer_clear(&a);
}

static void s_valid_others(void *c, const char *good_job);

/*  The first answer item of a request whose stream has limit 1: its body's
    field key, in out. */
static void
s_first(void *c, const char *type, const char *body, const char *key, char *out, size_t len,
        const char **more)
{
    size_t l;
    uint8_t *b = evr_wmp_body(&l, "%s", body);
    evr_wa_answer_t a;
    evr_wa_send(c, type, b, l);
    free(b);
    out[0] = '\0';
    *more = "";
    while (!evr_wa_recv(c, &a, 8000)) {
        const char *bad = evr_wa_conform(&a);
        evr_wa_check(!bad, "%s page: %s", type, bad);
        int end = !evr_wa_stream_item(a.type);
        if (!end && !out[0]) {
            msgpack_object *v = evr_wmp_get(a.obj, key);
            if (v && v->type == MSGPACK_OBJECT_MAP)   /* an event: its jseq */
                v = evr_wmp_get(v, "jseq");
            if (v && v->type == MSGPACK_OBJECT_STR)
                snprintf(out, len, "%.*s", (int) v->via.str.size, v->via.str.ptr);
            else if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                snprintf(out, len, "%llu", (unsigned long long) v->via.u64);
        }
        if (end)
            *more = evr_wmp_get(a.obj, "more") ? "more" : "";
        evr_wa_answer_clear(&a);
        if (end)
            break;
    }
}

/*  jobs' before and history's from: the next pages (the good runner's
    job has ended: two events). */
void
evr_wa_paging(const char *good_job)
{
    void *c = evr_wa_client;
    char j1[64], j2[64], body[200], e1[32], e2[32];
    const char *more;
    s_first(c, "jobs", "{limit:1}", "job", j1, sizeof j1, &more);
    snprintf(body, sizeof body, "{limit:1,before:\"%s\"}", j1);
    s_first(c, "jobs", body, "job", j2, sizeof j2, &more);
    evr_wa_check(j1[0] && j2[0] && strcmp(j2, j1) < 0 && *more,
                 "jobs{before: the newest}: the next older job (%s after %s), more", j2, j1);
    snprintf(body, sizeof body, "{job:\"%s\",limit:1}", good_job);
    s_first(c, "history", body, "event", e1, sizeof e1, &more);
    evr_wa_check(!strcmp(e1, "1") && *more, "history{limit: 1}: jseq 1, end{more} (%s)", e1);
    snprintf(body, sizeof body, "{job:\"%s\",from:2,limit:1}", good_job);
    s_first(c, "history", body, "event", e2, sizeof e2, &more);
    evr_wa_check(!strcmp(e2, "2"), "history{from: 2}: jseq 2 first (%s)", e2);
}

/*  One valid request of each client type, and its answer as the
    document says; submit, status, jobs, history, runners, pause, resume,
    cancel, drain here. */
void
evr_wa_valid_requests(const char *good_job)
{
    void *c = evr_wa_client;
    evr_wa_answer_t a;
    char q[27], q2[27];
    evr_wa_ulid(q);
    evr_wa_ulid(q2);
    s_ok(c, "submit", &a, "{job:\"%s\",spec:" W_SPEC ",args:{},labels:[\"extra\"]}", q);
    evr_wa_check(S_IS(&a, "accepted") && !strcmp(evr_wa_str(&a, "job"), q)
                 && !evr_wmp_get(a.obj, "existing"), "submit: accepted{job} without existing");
    evr_wa_answer_clear(&a);
    s_ok(c, "submit", &a, "{job:\"%s\",spec:" W_SPEC ",x_future:{a:[nil,1.5,-3]}}", q);
    evr_wa_check(S_IS(&a, "accepted") && evr_wmp_get(a.obj, "existing"),
                 "submit again: accepted{existing: true} (unknown key ignored)");
    evr_wa_answer_clear(&a);
    s_ok(c, "submit", &a, "{job:\"%s\",spec:" W_SPEC "}", q2);
    s_answer_is(&a, "submit of a second job", "accepted", NULL);

    s_ok(c, "status", &a, "{job:\"%s\"}", q);
    evr_wa_check(S_IS(&a, "job") && !strcmp(evr_wa_str(&a, "status"), "queued")
                 && !strcmp(evr_wa_str(&a, "pipeline"), "audit") && evr_wa_uint(&a, "created") > 0
                 && evr_wmp_get(a.obj, "labels"),
                 "status of a queued job: job{status queued, pipeline, created, labels}");
    evr_wa_answer_clear(&a);
    s_ok(c, "status", &a, "{job:\"%s\"}", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    s_answer_is(&a, "status of an unknown job", "error", "not_found");

    int n = s_ok(c, "jobs", &a, "{limit:1}");
    evr_wa_check(n == 1 && S_IS(&a, "end") && evr_wmp_get(a.obj, "more"),
                 "jobs{limit: 1}: one job, end{more: true}");
    evr_wa_answer_clear(&a);
    n = s_ok(c, "jobs", &a, "{status:\"queued\",pipeline:\"audit\"}");
    evr_wa_check(n == 2 && S_IS(&a, "end"), "jobs{status, pipeline}: both queued jobs (%d)", n);
    evr_wa_answer_clear(&a);

    n = s_ok(c, "history", &a, "{job:\"%s\"}", good_job);
    evr_wa_check(n >= 1 && S_IS(&a, "end"), "history of the good runner's job: its events");
    evr_wa_answer_clear(&a);
    n = s_ok(c, "history", &a, "{job:\"%s\",limit:4294967295}", good_job);
    evr_wa_check(n >= 1 && S_IS(&a, "end") && !evr_wmp_get(a.obj, "more"),
                 "history{limit: 2^32-1}: a page, as with the largest limit");
    evr_wa_answer_clear(&a);
    n = s_ok(c, "history", &a, "{job:\"%s\",from:1,limit:5}", q);
    evr_wa_check(n == 0 && S_IS(&a, "end"), "history of a queued job: an empty page");
    evr_wa_answer_clear(&a);

    n = s_ok(c, "runners", &a, "{}");
    evr_wa_check(n >= 1 && S_IS(&a, "end"), "runners: the good runner listed");
    evr_wa_answer_clear(&a);

    s_ok(c, "pause", &a, "{job:\"%s\"}", q);
    s_answer_is(&a, "pause of a queued job", "ok", NULL);
    s_ok(c, "status", &a, "{job:\"%s\"}", q);
    evr_wa_check(!strcmp(evr_wa_str(&a, "status"), "paused"), "paused job: status paused");
    evr_wa_answer_clear(&a);
    s_ok(c, "pause", &a, "{job:\"%s\"}", q);
    s_answer_is(&a, "pause of a paused job", "error", "conflict");
    s_ok(c, "resume", &a, "{job:\"%s\"}", q);
    s_answer_is(&a, "resume of a paused job", "ok", NULL);
    s_ok(c, "resume", &a, "{job:\"%s\"}", q);
    s_answer_is(&a, "resume of a queued job", "error", "conflict");
    s_ok(c, "history", &a, "{job:\"%s\"}", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    s_answer_is(&a, "history of an unknown job", "error", "not_found");
    s_ok(c, "cancel", &a, "{job:\"%s\"}", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    s_answer_is(&a, "cancel of an unknown job", "error", "not_found");
    s_ok(c, "cancel", &a, "{job:\"%s\",reason:\"audit\"}", q2);
    s_answer_is(&a, "cancel of a queued job", "ok", NULL);
    s_ok(c, "cancel", &a, "{job:\"%s\"}", q2);
    s_answer_is(&a, "cancel of a cancelled job", "error", "conflict");
    s_ok(c, "pause", &a, "{job:\"%s\"}", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    s_answer_is(&a, "pause of an unknown job", "error", "not_found");
    s_ok(c, "drain", &a, "{runner:\"nobody-here\"}");
    s_answer_is(&a, "drain of an unknown runner", "error", "not_found");
    s_valid_others(c, good_job);
}

/*  fetch, pipelines, start, prune, provider(s), demand(s). */
static void
s_valid_others(void *c, const char *good_job)
{
    evr_wa_answer_t a;
    int n;
    s_ok(c, "fetch", &a, "{job:\"%s\",step:\"s\",path:\"a/b\"}", good_job);
    s_answer_is(&a, "fetch of a file never shipped", "error", "not_found");

    n = s_ok(c, "pipelines", &a, "{}");
    evr_wa_check(n == 2 && S_IS(&a, "end"), "pipelines: the registered two (%d)", n);
    evr_wa_answer_clear(&a);
    char st[27];
    evr_wa_ulid(st);
    s_ok(c, "start", &a, "{job:\"%s\",pipeline:\"audit-reg\",args:{},labels:[]}", st);
    evr_wa_check(S_IS(&a, "accepted") && !strcmp(evr_wa_str(&a, "job"), st),
                 "start of a registered pipeline: accepted{job} (got %s %s)", a.type,
                 evr_wa_str(&a, "message"));
    evr_wa_answer_clear(&a);
    s_ok(c, "start", &a, "{job:\"%%s\",pipeline:\"audit-git\",source_url:"
                         "\"https://u:secret@example.invalid/r.git\"}");
    s_answer_is(&a, "start with a source_url holding a password", "error", "bad_request");
    s_ok(c, "start", &a, "{job:\"%%s\",pipeline:\"audit-git\",source_url:\"ftp://h/r\"}");
    evr_wa_check(S_IS(&a, "error")
                     && !strncmp(evr_wa_str(&a, "message"), "start.source_url: source.git.url: "
                                 "expected an https://", 54),
                 "start with a source_url of scheme ftp: bad_request naming start.source_url "
                 "(got %s %s)", a.type, evr_wa_str(&a, "message"));
    s_answer_is(&a, "start with a source_url of scheme ftp", "error", "bad_request");
    s_ok(c, "start", &a, "{job:\"%%s\",pipeline:\"audit-git\",source_ref:\"-x\"}");
    evr_wa_check(S_IS(&a, "error")
                     && !strncmp(evr_wa_str(&a, "message"), "start.source_ref: source.git.ref: ",
                                 34),
                 "start with a source_ref -x: bad_request naming start.source_ref (got %s %s)",
                 a.type, evr_wa_str(&a, "message"));
    s_answer_is(&a, "start with a source_ref -x", "error", "bad_request");
    /* a URL of 2000 bytes: the check's words cut visibly, "…" last (the
       broker's 1024 bytes for them cut them again, the mark lost) */
    char url[2001];
    memset(url, 'r', 2000);
    memcpy(url, "ftp://h/", 8);
    url[2000] = '\0';
    s_ok(c, "start", &a, "{job:\"%%s\",pipeline:\"audit-git\",source_url:\"%s\"}", url);
    const char *said = evr_wa_str(&a, "message");
    size_t saidn = strlen(said);
    evr_wa_check(S_IS(&a, "error") && saidn > 1000 && !strcmp(said + saidn - 3, "\xe2\x80\xa6"),
                 "start with a source_url of 2000 bytes, scheme ftp: the words cut visibly, "
                 "\"\xe2\x80\xa6\" last (got %s, %zu bytes, ...%s)", a.type, saidn,
                 saidn > 24 ? said + saidn - 24 : said);
    s_answer_is(&a, "start with a source_url of 2000 bytes, scheme ftp", "error", "bad_request");
    s_ok(c, "start", &a, "{job:\"%%s\",pipeline:\"audit-reg\",source_url:\"ftp://h/r\"}");
    s_answer_is(&a, "start with a source_url for a pipeline without git source (ignored)",
                "accepted", NULL);
    s_ok(c, "submit", &a, "{job:\"%%s\",spec:" W_SPEC ",labels:[\"executor:process\"]}");
    s_answer_is(&a, "submit with a label executor:process", "error", "bad_request");
    s_ok(c, "start", &a, "{job:\"%%s\",pipeline:\"not-registered\"}");
    s_answer_is(&a, "start of a pipeline not registered", "error", "not_found");
    s_ok(c, "prune", &a, "{dry_run:true}");   /* retention.max_age is on by default */
    evr_wa_check(S_IS(&a, "pruned") && evr_wmp_get(a.obj, "dry_run"),
                 "prune{dry_run}: pruned{dry_run: true}");
    evr_wa_answer_clear(&a);

    s_ok(c, "provider", &a, "{provider:\"audit-p\",runner:\"audit-prov\",labels:[\"x\"],max:2}");
    s_answer_is(&a, "provider report", "ok", NULL);
    n = s_ok(c, "providers", &a, "{}");
    evr_wa_check(n == 1 && S_IS(&a, "end"), "providers: the one reported (%d)", n);
    evr_wa_answer_clear(&a);
    char d[27];
    evr_wa_ulid(d);
    s_ok(c, "demand", &a, "{job:\"%s\",labels:[\"audit-none\",\"executor:process\"],count:1,"
                          "ttl:60}", d);
    evr_wa_check(S_IS(&a, "ok") && !strcmp(evr_wa_str(&a, "job"), d)
                 && evr_wa_str(&a, "message")[0],
                 "demand (a label executor:process among them): ok{job, message}");
    evr_wa_answer_clear(&a);
    n = s_ok(c, "demands", &a, "{}");
    evr_wa_check(n == 1 && S_IS(&a, "end"), "demands: the one kept (%d)", n);
    evr_wa_answer_clear(&a);
    s_bounds(c);
    n = s_ok(c, "demands", &a, "{x:S(70000),y:A(300),z:B(5000),w:nil,v:1.5,7:\"int key\"}");
    evr_wa_check(n == 17 && S_IS(&a, "end"),
                 "demands with unknown keys of any value: answered, 17 kept (%d)", n);
    evr_wa_answer_clear(&a);
}

/*  Text of a body of r: its required fields' good values, but skip, then
    extra (a "name:value" text, or ""); caller frees. */
static char *
s_body_of(const evr_wrequest_t *r, const char *skip, const char *extra)
{
    size_t cap = 256 + strlen(extra);
    for (const evr_wreq_field_t *f = r->f; f->name; f++)
        cap += strlen(f->name) + strlen(f->good) + 40;
    char *t = malloc(cap), *o = t;
    o += sprintf(o, "{");
    for (const evr_wreq_field_t *f = r->f; f->name; f++)
        if (f->required && (!skip || strcmp(skip, f->name))) {
            char *g = s_fill(f->good);
            o += sprintf(o, "%s%s:%s", o[-1] == '{' ? "" : ",", f->name, g);
            free(g);
        }
    if (*extra)
        o += sprintf(o, "%s%s", o[-1] == '{' ? "" : ",", extra);
    sprintf(o, "}");
    return t;
}

/*  One bad value v for field f of r: the answer code, naming r.f. */
static void
s_bad_value(const evr_wrequest_t *r, const evr_wreq_field_t *f, const char *what,
            const char *value, const char *code)
{
    void *s = r->runner_side ? evr_wa_rogue : evr_wa_client;
    char extra[200], needle[100];
    snprintf(extra, sizeof extra, "%s:%s", f->name, value);
    /* the required field replaced by the bad value: skip its good one */
    char *t = s_body_of(r, f->name, extra);
    snprintf(needle, sizeof needle, "%s.%s", r->type, f->name);
    char label[300];
    snprintf(label, sizeof label, "%s %s", f->name, what);
    s_bad(s, label, r->type, code, needle, "%s", t);
    free(t);
}

static void
s_bad_field(const evr_wrequest_t *r, const evr_wreq_field_t *f)
{
    char v[64];
    size_t lim = f->limit;
    s_bad_value(r, f, "nil", "nil", "bad_request");
    switch (f->type) {
    case WT_STR: case WT_ULID: case WT_NAME: case WT_ENUM: case WT_PATH:
        s_bad_value(r, f, "an int", "7", "bad_request");
        s_bad_value(r, f, "a bin", "B(3)", "bad_request");
        snprintf(v, sizeof v, "S(%zu)", (lim ? lim : 4096) + 1);
        s_bad_value(r, f, "past its limit", v, "too_large");
        s_bad_value(r, f, "not UTF-8", "\"a\\xffb\"", "bad_request");
        s_bad_value(r, f, "with a NUL", "\"a\\0b\"", "bad_request");
        s_bad_value(r, f, "a surrogate", "\"a\\xed\\xa0\\x80b\"", "bad_request");
        break;
    case WT_UINT: case WT_U32:
        s_bad_value(r, f, "a str", "\"7\"", "bad_request");
        s_bad_value(r, f, "-1", "-1", "bad_request");
        s_bad_value(r, f, "a float", "1.5", "bad_request");
        s_bad_value(r, f, "a bool", "true", "bad_request");
        if (f->type == WT_U32)
            s_bad_value(r, f, "2^32", "4294967296", "too_large");
        break;
    case WT_BOOL:
        s_bad_value(r, f, "an int", "1", "bad_request");
        s_bad_value(r, f, "a str", "\"true\"", "bad_request");
        break;
    case WT_BIN:
        s_bad_value(r, f, "a str", "\"x\"", "bad_request");
        snprintf(v, sizeof v, "B(%zu)", (lim ? lim : 1048576) + 1);
        s_bad_value(r, f, "past its limit", v, "too_large");
        break;
    case WT_ASTR:
        s_bad_value(r, f, "a str", "\"x\"", "bad_request");
        s_bad_value(r, f, "an int item", "[7]", "bad_request");
        s_bad_value(r, f, "an item of 4097 bytes", "[S(4097)]", "too_large");
        snprintf(v, sizeof v, "L(%zu)", (lim ? lim : 256) + 1);
        s_bad_value(r, f, "past its limit", v, "too_large");
        break;
    case WT_MSS:
        s_bad_value(r, f, "an array", "[\"x\"]", "bad_request");
        s_bad_value(r, f, "an int value", "{A:7}", "bad_request");
        s_bad_value(r, f, "a key twice", "{A:\"1\",A:\"2\"}", "bad_request");
        snprintf(v, sizeof v, "M(%zu)", (lim ? lim : 256) + 1);
        s_bad_value(r, f, "past its limit", v, "too_large");
        break;
    case WT_MAP:
        s_bad_value(r, f, "a str", "\"x\"", "bad_request");
        s_bad_value(r, f, "an array", "[1]", "bad_request");
        break;
    case WT_AMAP:
        s_bad_value(r, f, "a str", "\"x\"", "bad_request");
        s_bad_value(r, f, "an int item", "[1]", "bad_request");
        snprintf(v, sizeof v, "A(%zu)", (lim ? lim : 256) + 1);
        s_bad_value(r, f, "past its limit", v, "too_large");
        break;
    }
    if (f->type == WT_ULID) {
        s_bad_value(r, f, "in lower case", "\"01arz3ndektsv4rrffq69g5fav\"", "bad_request");
        s_bad_value(r, f, "first char 8", "\"8ZZZZZZZZZZZZZZZZZZZZZZZZZ\"", "bad_request");
        s_bad_value(r, f, "with an I", "\"01ARZ3NDEKTSV4RRFFQ69G5FAI\"", "bad_request");
        s_bad_value(r, f, "of 25 chars", "\"01ARZ3NDEKTSV4RRFFQ69G5FA\"", "bad_request");
        s_bad_value(r, f, "empty", "\"\"", "bad_request");
    } else if (f->type == WT_NAME) {
        s_bad_value(r, f, "empty", "\"\"", "bad_request");
        s_bad_value(r, f, "with a space", "\"a b\"", "bad_request");
        s_bad_value(r, f, "starting with -", "\"-a\"", "bad_request");
    } else if (f->type == WT_ENUM) {
        s_bad_value(r, f, "not one of the set", "\"nope\"", "bad_request");
        s_bad_value(r, f, "empty", "\"\"", "bad_request");
    } else if (f->type == WT_PATH) {
        s_bad_value(r, f, "absolute", "\"/etc/passwd\"", "bad_request");
        s_bad_value(r, f, "with ..", "\"a/../../b\"", "bad_request");
        s_bad_value(r, f, "empty", "\"\"", "bad_request");
    }
}

void
evr_wa_bad_fields(void)
{
    for (const evr_wrequest_t *r = evr_w_requests; r->type; r++) {
        void *s = r->runner_side ? evr_wa_rogue : evr_wa_client;
        for (const evr_wreq_field_t *f = r->f; f->name; f++) {
            if (f->required) {
                char *t = s_body_of(r, f->name, "");
                char label[200];
                snprintf(label, sizeof label, "without required %s", f->name);
                s_bad(s, label, r->type, "bad_request", f->name, "%s", t);
                free(t);
            }
            s_bad_field(r, f);
        }
        if (r->f[0].name) {   /* a key twice */
            char *g = s_fill(r->f[0].good), extra[200];
            snprintf(extra, sizeof extra, "%s:%s,%s:%s", r->f[0].name, g, r->f[0].name, g);
            char *t = s_body_of(r, r->f[0].name, extra);
            s_bad(s, "a key twice", r->type, "bad_request", r->f[0].name, "%s", t);
            free(t);
            free(g);
        }
        s_bad(s, "body an array", r->type, "bad_request", NULL, "[1]");
        s_bad(s, "body a str", r->type, "bad_request", NULL, "\"x\"");
        s_bad(s, "body empty", r->type, "bad_request", NULL, "%s", "");
        s_bad(s, "body 0xc1", r->type, "bad_request", NULL, "R(c1)");
        s_bad(s, "body truncated", r->type, "bad_request", NULL, "R(82a3)");
        s_bad(s, "trailing byte", r->type, "bad_request", NULL, "{} R(c0)");
        s_bad(s, "declared length past the end", r->type, "bad_request", NULL,
              "R(81a178dbffffffff)");
        s_bad(s, "nesting 17", r->type, "too_large", NULL,
              "R(81a178" "91919191919191919191919191919191" "01)");
    }
}

/*  Sends frames on s and expects the error code (needle in its message). */
static void
s_frames(void *s, const char *what, int n, const void **f, const size_t *l, const char *code,
         const char *needle)
{
    evr_wa_answer_t a;
    evr_wa_send_frames(s, n, f, l);
    if (evr_wa_recv(s, &a, 8000)) {
        evr_wa_check(0, "%s: no answer", what);
        return;
    }
    const char *bad = evr_wa_conform(&a);
    while (!bad && evr_wa_stream_item(a.type)) {
        evr_wa_answer_clear(&a);
        if (evr_wa_recv(s, &a, 8000)) {
            evr_wa_check(0, "%s: stream not ended", what);
            return;
        }
        bad = evr_wa_conform(&a);
    }
    int ok = !bad && (code ? S_IS(&a, "error") && !strcmp(evr_wa_str(&a, "code"), code)
                           && (!needle || strstr(evr_wa_str(&a, "message"), needle))
                           : S_IS(&a, "end"));
    evr_wa_check(ok, "%s: expected %s%s%s, got %s %s: %s%s%s", what, code ? "error " : "end",
                 code ? code : "", needle ? needle : "", a.type, evr_wa_str(&a, "code"),
                 evr_wa_str(&a, "message"), bad ? " -- " : "", bad ? bad : "");
    evr_wa_answer_clear(&a);
}

static void
s_header(void *s, const char *hdr, size_t hlen, const char *code, const char *needle)
{
    const void *f[2] = { hdr, "\x80" };
    size_t l[2] = { hlen, 1 };
    char what[200];
    snprintf(what, sizeof what, "header \"%.*s\"", (int) hlen, hdr);
    s_frames(s, what, 2, f, l, code, needle);
}

void
evr_wa_bad_envelopes(void)
{
    void *socks[2] = { evr_wa_client, evr_wa_rogue };
    for (int i = 0; i < 2; i++) {
        void *s = socks[i];
        const void *f1[1] = { "evrun1 runners" };
        size_t l1[1] = { 14 };
        s_frames(s, "one frame", 1, f1, l1, "bad_request", NULL);
        s_header(s, "", 0, "bad_request", NULL);
        s_header(s, "evrun1", 6, "bad_request", NULL);
        s_header(s, "evrun1 ", 7, "bad_request", NULL);
        s_header(s, "evrun2 runners", 14, "bad_request", NULL);
        s_header(s, "EVRUN1 runners", 14, "bad_request", NULL);
        s_header(s, "evrun1  runners", 15, "unknown_type", NULL);
        s_header(s, "evrun1 runners ", 15, "unknown_type", NULL);
        s_header(s, "evrun1 Runners", 14, "unknown_type", "Runners");
        s_header(s, "evrun1 no\xffsuch", 14, "unknown_type", "no?such");
        s_header(s, "evrun1 runners\0x", 16, "unknown_type", "runners?x");
        char h64[65];
        memset(h64, 'a', 64);
        memcpy(h64, "evrun1 ", 7);
        s_header(s, h64, 64, "bad_request", NULL);
        s_header(s, h64, 63, "unknown_type", NULL);
    }
    /* reserved frames between header and body are ignored, however many */
    const void *f3[3] = { "evrun1 runners", "junk", "\x80" };
    size_t l3[3] = { 14, 4, 1 };
    s_frames(evr_wa_client, "three frames", 3, f3, l3, NULL, NULL);
    enum { many = 20000 };
    const void **fm = calloc(many, sizeof *fm);
    size_t *lm = calloc(many, sizeof *lm);
    fm[0] = "evrun1 runners";
    lm[0] = 14;
    for (int i = 1; i < many - 1; i++)
        fm[i] = "";
    fm[many - 1] = "\x80";
    lm[many - 1] = 1;
    s_frames(evr_wa_client, "20000 frames", many, fm, lm, NULL, NULL);
    fm[many - 1] = "\xc1";
    s_frames(evr_wa_client, "20000 frames, a bad body", many, fm, lm, "bad_request", NULL);
    free(fm);
    free(lm);
    /* which failure names the code (PROTOCOL.md, "Error codes"): the
       bytes' pre-check first, then the fields in the order they come,
       then the required fields missing */
    s_bad(evr_wa_client, "a wrong type, then a string past its limit", "cancel", "bad_request",
          "cancel.job", "{job:7,reason:S(1025)}");
    s_bad(evr_wa_client, "a string past its limit, then a wrong type", "cancel", "too_large",
          "cancel.reason", "{reason:S(1025),job:7}");
    s_bad(evr_wa_client, "a bad ULID, then a string past its limit", "cancel", "bad_request",
          "cancel.job", "{job:\"x\",reason:S(1025)}");
    s_bad(evr_wa_client, "a string past its limit, no job", "cancel", "too_large",
          "cancel.reason", "{reason:S(1025)}");
    s_bad(evr_wa_client, "a wrong type, then nesting 17", "cancel", "too_large", NULL,
          "{job:7,x:[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}");
    s_bad(evr_wa_client, "a spec with a cycle, no job", "submit", "bad_request",
          "submit.spec: invalid pipeline: steps[1].needs: dependency cycle",
          "{spec:{pipeline:\"p\",image:\"i\",steps:[{name:\"a\",run:\"x\",needs:[\"b\"]},"
          "{name:\"b\",run:\"x\",needs:[\"a\"]}]}}");
    s_bad(evr_wa_client, "a string past its limit, then a trailing byte", "cancel",
          "bad_request", "trailing", "{reason:S(1025)} R(c0)");
    /* a body just past 4 MiB: too_large, and the connection stays */
    s_bad(evr_wa_client, "body of 4 MiB + 1", "runners", "too_large", NULL, "{x:B(4194297)}");
    s_bad(evr_wa_rogue, "body of 4 MiB + 1", "heartbeat", "too_large", NULL, "{x:B(4194297)}");
    /* any msgpack integer encoding of a value in range */
    static const char *const ints[] = { "d005", "d10005", "d200000005", "d30000000000000005",
                                        "cc05", "cd0005", "ce00000005", "cf0000000000000005" };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        char text[80];
        evr_wa_answer_t e;
        snprintf(text, sizeof text, "R(81a56c696d6974%s)", ints[i]);   /* {limit: 5} */
        int n = s_ok(evr_wa_client, "jobs", &e, "%s", text);
        evr_wa_check(S_IS(&e, "end") && n == 5, "jobs{limit: 5 as %s}: five jobs (%d)", ints[i], n);
        evr_wa_answer_clear(&e);
    }
    s_bad(evr_wa_client, "limit -1 as int64", "jobs", "bad_request", "jobs.limit",
          "R(81a56c696d6974d3ffffffffffffffff)");
    /* 16 deep is allowed; only non-empty containers count */
    evr_wa_answer_t a;
    s_ok(evr_wa_client, "runners", &a, "{x:" "[[[[[[[[[[[[[[[" "1" "]]]]]]]]]]]]]]]" "}");
    s_answer_is(&a, "nesting 16", "end", NULL);
    s_ok(evr_wa_client, "runners", &a, "{x:" "[[[[[[[[[[[[[[[[" "]]]]]]]]]]]]]]]]" "}");
    s_answer_is(&a, "nesting of empty containers", "end", NULL);
    /* on the wrong socket */
    s_bad(evr_wa_client, "on the client socket", "hello", "bad_request", "not a client request",
          "{runner:\"x\",capacity:1,version:\"v\"}");
    s_bad(evr_wa_client, "on the client socket", "ack", "bad_request", "not a client request",
          "{seq:1}");
    s_bad(evr_wa_client, "on the client socket", "error", "bad_request", "not a client request",
          "{code:\"internal\",message:\"m\"}");
    s_bad(evr_wa_rogue, "on the runner socket", "runners", "bad_request",
          "not a message a runner sends", "{}");
    s_bad(evr_wa_rogue, "on the runner socket", "welcome", "bad_request",
          "not a message a runner sends", "{runner:\"x\",seq:1}");
}

static void s_rogue_asks(void *r, const char *good_job);

void
evr_wa_rogue_runner(const char *good_job)
{
    void *r = evr_wa_rogue;
    evr_wa_answer_t a;
    s_ok(r, "events", &a, "{events:[{seq:1,job:\"%s\",jseq:3,type:\"job.finished\",time:1,"
                          "data:{status:\"succeeded\"}}]}", good_job);
    evr_wa_check(S_IS(&a, "error") && strstr(evr_wa_str(&a, "message"), "hello"),
                 "events before hello: error saying to send hello (got %s %s)", a.type,
                 evr_wa_str(&a, "message"));
    evr_wa_answer_clear(&a);
    s_ok(r, "hello", &a, "{runner:\"audit-good-1\",capacity:1,version:\"rogue\",seq:0}");
    s_answer_is(&a, "hello with another runner's id and a shorter log", "error", "conflict");
    s_ok(r, "hello", &a, "{runner:\"audit-rogue\",labels:[\"audit-rogue\"],capacity:1,"
                         "version:\"rogue\"}");
    s_answer_is(&a, "rogue hello", "welcome", NULL);
    s_ok(r, "events", &a, "{events:[{seq:5,job:\"%%s\",jseq:1,type:\"job.started\",time:1,"
                          "data:{}}]}");
    s_answer_is(&a, "events with a gap in seq", "error", NULL);
    /* another runner's job: refused, acked, and the job is not touched */
    s_ok(r, "events", &a, "{events:[{seq:1,job:\"%s\",jseq:2,type:\"job.finished\",time:1,"
                          "data:{status:\"succeeded\"}},"
                          "{seq:2,job:\"%s\",jseq:1,type:\"job.accepted\",time:1,"
                          "data:{pipeline:\"audit\",spec:" W_SPEC "}}]}", good_job, good_job);
    evr_wa_check(S_IS(&a, "ack") && evr_wa_uint(&a, "seq") == 2,
                 "rogue events of another runner's job: acked (refused), got %s %s", a.type,
                 evr_wa_str(&a, "message"));
    evr_wa_check(strstr(evr_wa_control, "cancel") && strstr(evr_wa_control, "runs on runner "
                                                                             "audit-good-1"),
                 "the rogue is told to cancel it, saying whose it is (got control %s)",
                 evr_wa_control);
    evr_wa_answer_clear(&a);
    /* a job.accepted naming another runner than the one that sends it */
    s_ok(r, "events", &a, "{events:[{seq:3,job:\"%%s\",jseq:1,type:\"job.accepted\",time:1,"
                          "data:{pipeline:\"audit\",runner:\"audit-good-1\",spec:" W_SPEC "}}]}");
    evr_wa_check(S_IS(&a, "ack") && evr_wa_uint(&a, "seq") == 3
                 && strstr(evr_wa_control, "names runner audit-good-1, but comes from runner "
                                           "audit-rogue"),
                 "rogue job.accepted naming another runner: refused (control %s)", evr_wa_control);
    evr_wa_answer_clear(&a);
    s_rogue_asks(r, good_job);
}

/*  The rogue's trigger, query and artifact_chunk about another runner's
    job. */
static void
s_rogue_asks(void *r, const char *good_job)
{
    evr_wa_answer_t a;
    s_ok(r, "trigger", &a, "{job:\"%%s\",pipeline:\"audit\",spec:" W_SPEC ",file:\"a.yml\","
                           "parent_job:\"%s\",parent_step:\"s\"}", good_job);
    evr_wa_check(S_IS(&a, "triggered") && !strcmp(evr_wa_str(&a, "code"), "conflict"),
                 "rogue trigger --file for another runner's job: triggered{code conflict} "
                 "(got %s %s: %s)", a.type, evr_wa_str(&a, "code"), evr_wa_str(&a, "message"));
    evr_wa_answer_clear(&a);
    s_ok(r, "trigger", &a, "{job:\"%%s\",pipeline:\"audit-reg\",parent_job:\"%s\","
                           "parent_step:\"s\"}", good_job);
    evr_wa_check(S_IS(&a, "triggered") && !strcmp(evr_wa_str(&a, "code"), "conflict")
                 && strstr(evr_wa_str(&a, "message"), "audit-rogue"),
                 "rogue trigger of a registered pipeline for another runner's job: "
                 "triggered{code conflict} (got %s %s: %s)", a.type, evr_wa_str(&a, "code"),
                 evr_wa_str(&a, "message"));
    evr_wa_answer_clear(&a);
    s_ok(evr_wa_client, "status", &a, "{job:\"%s\"}", good_job);
    evr_wa_check(S_IS(&a, "job") && !evr_wmp_get(a.obj, "children"),
                 "the good runner's job has no child the rogue made");
    evr_wa_answer_clear(&a);
    s_ok(r, "query", &a, "{seq:7,job:\"%s\"}", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    evr_wa_check(S_IS(&a, "queried") && evr_wa_uint(&a, "seq") == 7
                 && !strcmp(evr_wa_str(&a, "code"), "not_found"),
                 "query of an unknown job: queried{seq, code not_found}");
    evr_wa_answer_clear(&a);
    s_ok(r, "query", &a, "{seq:8,job:\"%s\",pipeline:\"audit\"}", good_job);
    evr_wa_check((S_IS(&a, "queried") && !strcmp(evr_wa_str(&a, "code"), "bad_request"))
                 || (S_IS(&a, "error") && !strcmp(evr_wa_str(&a, "code"), "bad_request")),
                 "query with both job and pipeline: refused bad_request (got %s %s %s)", a.type,
                 evr_wa_str(&a, "code"), evr_wa_str(&a, "message"));
    evr_wa_answer_clear(&a);
    s_ok(r, "query", &a, "{seq:9}");
    evr_wa_check((S_IS(&a, "queried") && !strcmp(evr_wa_str(&a, "code"), "bad_request"))
                 || (S_IS(&a, "error") && !strcmp(evr_wa_str(&a, "code"), "bad_request")),
                 "query with neither job nor pipeline: refused bad_request (got %s %s %s)",
                 a.type, evr_wa_str(&a, "code"), evr_wa_str(&a, "message"));
    evr_wa_answer_clear(&a);
    s_ok(r, "artifact_chunk", &a, "{job:\"%s\",step:\"s\",path:\"a/b\",sha256:\"%s\",size:1,"
                                  "offset:0}", good_job,
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    evr_wa_check(S_IS(&a, "artifact_ack") && evr_wa_str(&a, "reason")[0],
                 "artifact_chunk for another runner's job: artifact_ack with a reason (got %s)",
                 a.type);
    evr_wa_answer_clear(&a);
}

void
evr_wa_still_serving(void)
{
    /* clients gone before their answers: 50 connections that ask for a
       stream, a submit or a history and close at once */
    for (int i = 0; i < 50; i++) {
        void *g = evr_wa_dealer(i % 2);
        size_t l;
        uint8_t *b = evr_wmp_body(&l, "{limit:10000}");
        evr_wa_send(g, i % 2 ? "credit" : "jobs", b, l);
        free(b);
        b = evr_wmp_body(&l, "{job:\"7ZZZZZZZZZZZZZZZZZZZZZZZZZ\",spec:" W_SPEC "}");
        evr_wa_send(g, "submit", b, l);
        free(b);
        zmq_close(g);
    }
    void *c = evr_wa_dealer(0);
    evr_wa_answer_t a;
    int n = s_ok(c, "runners", &a, "{}");
    evr_wa_check(n >= 2 && S_IS(&a, "end"), "a new client: runners answered (%d)", n);
    evr_wa_answer_clear(&a);
    n = s_ok(evr_wa_client, "jobs", &a, "{limit:10000}");
    evr_wa_check(S_IS(&a, "end"), "the first client: jobs answered (%d)", n);
    evr_wa_answer_clear(&a);
    zmq_close(c);
}
