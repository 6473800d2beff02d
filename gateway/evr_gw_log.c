/*  evr_gw_log.c: a job's log over HTTP.

    As text: what `evrun-cli logs` prints ("step | line"), made by
    evr_follow (tools/evr_follow.c) into a buffer of at most
    EVR_GW_LOG_MAX bytes (cut between characters), made UTF-8 as it is
    written: each maximal subpart that is no character (Unicode's
    recommended practice: a stray byte, or a character's first bytes that
    no more of it follows) becomes one U+FFFD.  The output's bytes as they
    came are in the live log's events (bytes: {"base64": ...}) and in
    evrun-cli logs: this answer says it is UTF-8.

    Live, as Server-Sent Events: every event of the job in jseq order, one
    SSE message each ("id: JSEQ", "data: EVENT-AS-JSON"), ending after
    job.finished.  The Clone pattern of schema/PROTOCOL.md "History": the
    stream subscribes to the job's events first, then reads its history
    from the jseq after Last-Event-ID, then takes live events while they
    follow on (a gap, or a quiet while, asks history again), so a client
    that reconnects with Last-Event-ID gets every event once.

    Memory stays bounded for a client that stops reading: events are made
    into text only when libmicrohttpd asks for more (the socket can take
    it), at most S_BUF_MAX bytes at a time; meanwhile the SUB socket holds
    at most S_HWM publications and drops the rest, which history gives
    back once the client reads again.  A history page is asked with a
    `limit` of events sized to what fitted in S_BUF_MAX last time: the
    events of a page past it are dropped and asked again, and a page of
    1000 large output events would be some 8 MiB read to keep 256 KiB.

    Never idle past http_idle_timeout (libmicrohttpd would close the
    connection without the last `event: error`): a quiet stream sends a
    comment every min(15 s, idle/4); a broker call goes out at most idle/4
    after the last text (a comment first otherwise) and gives up 3/4 of
    the idle timeout after it (evr_gw_req_t's until_ns).
*/
#define _GNU_SOURCE     /* fopencookie */
#include "evr_gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "evr_bus.h"
#include "evr_codec.h"
#include "evr_follow.h"
#include "evr_job.h"
#include "evr_json.h"

#define S_BUF_MAX (256u * 1024u)     /* text made ahead of the client */
#define S_HWM 16                     /* publications the SUB socket holds (a client that
                                        stops reading a job printing 64 KiB events costs
                                        some 2 MiB; 64 held cost 4) */
#define S_PAGE_MAX 1000              /* events of a history page (the broker's most) */
#define S_QUIET_NS 2000000000ull     /* ask history again after this quiet */
#define S_KEEPALIVE_NS 15000000000ull  /* unless http_idle_timeout asks for less */

/* ----------------------------------------------------------------- text */

enum { S_CHAR, S_BAD, S_SHORT };

/*  What p[0..n) starts with: a character of *k bytes (S_CHAR); a maximal
    subpart of *k bytes that is none (S_BAD: the longest start of a valid
    sequence, or else one byte: a stray or overlong byte, a surrogate's,
    past U+10FFFF, a character's first bytes followed by no more of it);
    or the first *k = n bytes of a character that may go on (S_SHORT). */
static int
s_utf8_next(const unsigned char *p, size_t n, size_t *k)
{
    unsigned c = p[0];
    size_t need = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2
                : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!need) {
        *k = 1;
        return S_BAD;
    }
    for (size_t i = 1; i < need; i++) {
        if (i == n) {
            *k = n;
            return S_SHORT;
        }
        unsigned lo = 0x80, hi = 0xbf;
        if (i == 1 && c == 0xe0)
            lo = 0xa0;      /* else overlong */
        if (i == 1 && c == 0xed)
            hi = 0x9f;      /* else a surrogate */
        if (i == 1 && c == 0xf0)
            lo = 0x90;      /* else overlong */
        if (i == 1 && c == 0xf4)
            hi = 0x8f;      /* else past U+10FFFF */
        if (p[i] < lo || p[i] > hi) {
            *k = i;
            return S_BAD;
        }
    }
    *k = need;
    return S_CHAR;
}

/*  Valid UTF-8 p[0..n) to t, as much of it as fits in t->max, cut
    between characters. */
static void
s_text_add(evr_gw_text_t *t, const char *p, size_t n)
{
    if (t->cut || !n)
        return;
    if (n > t->max - t->len) {
        n = evr_utf8_cut(p, n, t->max - t->len, false);
        t->cut = true;
    }
    if (t->len + n + 1 > t->cap) {
        size_t most = t->max < SIZE_MAX / 4 ? t->max + 1 : SIZE_MAX / 4;   /* no wrap */
        size_t cap = (t->len + n + 1) * 2;
        t->cap = cap > most || cap < t->len + n + 1 ? most : cap;
        t->buf = evr_realloc(t->buf, t->cap);
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

#define S_FFFD "\xef\xbf\xbd"

void
evr_gw_text_put(evr_gw_text_t *t, const char *data, size_t n)
{
    const unsigned char *p = (const unsigned char *) data;
    size_t i = 0, k;
    if (t->cut)
        return;
    if (t->npart && n) {    /* the carried start of a character, and what follows */
        unsigned char tmp[8];
        size_t m = t->npart, add = n < 4 ? n : 4;
        memcpy(tmp, t->part, m);
        memcpy(tmp + m, p, add);
        int r = s_utf8_next(tmp, m + add, &k);
        if (r == S_SHORT) {     /* took all n: still short */
            memcpy(t->part, tmp, m + add);
            t->npart = m + add;
            return;
        }
        s_text_add(t, r == S_CHAR ? (const char *) tmp : S_FFFD, r == S_CHAR ? k : 3);
        i = k - m;      /* k >= m: part was a valid start */
        t->npart = 0;
    }
    size_t run = i;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        int r = s_utf8_next(p + i, n - i, &k);
        if (r == S_CHAR) {
            i += k;
            continue;
        }
        s_text_add(t, data + run, i - run);
        if (r == S_SHORT) {
            memcpy(t->part, p + i, k);
            t->npart = k;
            return;
        }
        s_text_add(t, S_FFFD, 3);
        i += k;
        run = i;
    }
    s_text_add(t, data + run, i - run);
}

void
evr_gw_text_end(evr_gw_text_t *t)
{
    if (t->npart)
        s_text_add(t, S_FFFD, 3);
    t->npart = 0;
}

static ssize_t
s_text_write(void *cookie, const char *data, size_t n)
{
    evr_gw_text_put(cookie, data, n);
    return (ssize_t) n;     /* past the cap dropped, not an error */
}

static void
s_log_text(evr_gw_t *gw, evr_gw_req_t *req, const char *job)
{
    static const char note[] = "[evrun-gateway: the log is cut here, at 64 MiB: ask with "
                               "?step= or follow it live with Accept: text/event-stream]\n";
    evr_gw_text_t c = { .buf = evr_malloc(4096), .cap = 4096,
                        .max = EVR_GW_LOG_MAX - (sizeof note - 1) };
    cookie_io_functions_t io = { NULL, s_text_write, NULL, NULL };
    FILE *out = fopencookie(&c, "w", io);
    evr_follow_opts_t fo = { .job = job, .step = evr_gw_query(req, "step"), .out = out,
                             .job_end = true,       /* as evrun-cli logs prints it */
                             .any_step = true };    /* ?step= checked by evr_gw_h_log */
    int status = 2;
    pthread_mutex_lock(&gw->mu);
    evr_client_t *client = evr_gw_client(gw, req);
    if (client)
        status = evr_follow("evrun-gateway", evr_gw_bus_cfg(gw), client, &fo, NULL);
    if (client && status == 2) {    /* its reason is in the gateway's log */
        evr_err_t err;
        evr_err_set(&err, EVR_ERR_IO, "the broker did not give the job's history");
        evr_gw_error(req, 503, "unavailable", "%s", err.msg);
        req->retry_after = 1;
        evr_gw_bus_lost(gw, &err, false);
    }
    pthread_mutex_unlock(&gw->mu);
    fclose(out);
    if (status == 2) {
        free(c.buf);
        return;
    }
    evr_gw_text_end(&c);
    if (c.cut) {    /* the whole answer at most EVR_GW_LOG_MAX */
        c.buf = evr_realloc(c.buf, c.len + sizeof note);
        memcpy(c.buf + c.len, note, sizeof note - 1);
        c.len += sizeof note - 1;
    }
    req->resp = MHD_create_response_from_buffer(c.len, c.buf, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(req->resp, "Content-Type", "text/plain; charset=utf-8");
    req->status = 200;
}

/* ------------------------------------------------------------------ SSE */

typedef struct {
    evr_gw_t *gw;
    char job[EVR_ULID_LEN + 1];
    char *step;             /* only this step's events (and job.finished): a matrix
                               step's written name takes its combinations */
    uint32_t last;          /* highest jseq taken */
    zsock_t *sub;
    char *buf;
    size_t len, off;
    bool ended;             /* nothing follows what is in buf */
    bool need_history;
    bool final_seen;        /* the job's status was final once */
    uint64_t quiet_since, keepalive_at;
    uint64_t sent_at;       /* mono ns: text last given to libmicrohttpd */
    uint32_t page;          /* events of the history page taken */
    uint32_t limit;         /* events asked per history page */
    const evr_config_t *sub_cfg;    /* the endpoints sub was made with */
} s_sse_t;

/*  A SUB socket on job's events at cfg's event stream; NULL with err. */
static zsock_t *
s_subscribe(const evr_config_t *cfg, const char *job, evr_err_t *err)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "ev.%s.", job);
    return evr_client_subscribe_hwm(cfg, prefix, S_HWM, err);
}

/*  The broker answers at another endpoint now (evr_gw_bus.c): a SUB
    socket on its event stream, and history for what came meanwhile. */
static void
s_resubscribe(s_sse_t *s)
{
    const evr_config_t *cfg = evr_gw_bus_cfg(s->gw);
    evr_err_t err;
    zsock_t *sub = cfg != s->sub_cfg ? s_subscribe(cfg, s->job, &err) : NULL;
    if (!sub)
        return;
    zsock_destroy(&s->sub);
    s->sub = sub;
    s->sub_cfg = cfg;
    s->need_history = true;
}

/*  How often a quiet stream sends a comment: within the idle timeout. */
static uint64_t
s_keepalive(const evr_gw_t *gw)
{
    return gw->keepalive_ns && gw->keepalive_ns < S_KEEPALIVE_NS ? gw->keepalive_ns
                                                                  : S_KEEPALIVE_NS;
}

static void
s_append(s_sse_t *s, const char *text, size_t n)
{
    s->buf = evr_realloc(s->buf, s->len + n + 1);
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    s->keepalive_at = evr_mono_ns() + s_keepalive(s->gw);
}

/*  Takes ev when it is the next one: made into one SSE message. */
static void
s_take(s_sse_t *s, const evr_event_t *ev)
{
    if (ev->jseq != s->last + 1)
        return;
    s->last = ev->jseq;
    evr_evtype_t t = evr_event_kind(ev);
    if (t == EVR_EV_JOB_FINISHED)
        s->ended = true;
    else if (s->step && (!ev->data.step || !evr_spec_step_matches(s->step, ev->data.step)))
        return;
    json_t *js = evr_json_from_rec(&evr_event_type, ev);
    char *data = json_dumps(js, JSON_COMPACT);
    char head[48];
    int n = snprintf(head, sizeof head, "id: %u\ndata: ", ev->jseq);
    s_append(s, head, (size_t) n);
    if (data)
        s_append(s, data, strlen(data));
    s_append(s, "\n\n", 2);
    free(data);
    json_decref(js);
}

static int
s_hist_item(const evr_msg_t *m, void *arg)
{
    s_sse_t *s = arg;
    if (m->type == EVR_MSG_EVENT && m->event && m->event->job) {
        s->page++;
        s_take(s, m->event);
    }
    return s->len >= S_BUF_MAX || s->ended;     /* enough made: ask on later */
}

/*  A last message naming why the stream ends early. */
static void
s_fail(s_sse_t *s, const evr_gw_req_t *r)
{
    json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
    char *data = e ? json_dumps(e, JSON_COMPACT) : NULL;
    char *msg = evr_asprintf("event: error\ndata: %s\n\n",
                             data ? data : "{\"code\":\"unavailable\",\"message\":\"the broker "
                                           "does not answer\"}");
    s_append(s, msg, strlen(msg));
    free(msg);
    free(data);
    s->ended = true;
}

/*  One page of history from last+1; when it brings nothing and the job
    has ended (cancelled in the queue: no events at all), the stream
    ends. */
static void
s_history(s_sse_t *s)
{
    evr_gw_req_t r = { 0 };
    uint64_t idle = (uint64_t) s->gw->idle_s * 1000000000u;
    if (idle)   /* its calls end before the idle timeout (a comment went just before) */
        r.until_ns = s->sent_at + idle / 4 * 3;
    evr_msg_t h = { .type = EVR_MSG_HISTORY, .job = s->job, .from = s->last + 1,
                    .limit = s->limit },
              end = { 0 };
    uint32_t before = s->last;
    s->page = 0;
    s->need_history = false;
    bool failed = evr_gw_stream(s->gw, &r, &h, s_hist_item, s, &end) != EVR_OK;
    if (r.no_turn) {    /* the connection was busy: a comment, then again */
        s->need_history = true;
        json_decref(r.json);
        return;
    }
    __atomic_fetch_add(&s->gw->history_events, end.count, __ATOMIC_RELAXED);
    /* the events of a page past S_BUF_MAX are dropped and asked again:
       ask for as many as fitted next time, for twice as many after a
       page that fitted whole (0: the broker's most, S_PAGE_MAX) */
    if (!failed && end.count > s->page)
        s->limit = s->page ? s->page : 1;
    else if (!failed && end.more && s->limit)
        s->limit = s->limit < S_PAGE_MAX / 2 ? s->limit * 2 : 0;
    if (failed)
        s_fail(s, &r);
    else if (end.more || s->len >= S_BUF_MAX)
        s->need_history = !s->ended;
    else if (s->last == before && !s->ended) {
        if (s->final_seen)
            s->ended = true;    /* final before this page, which held nothing new */
        else {
            evr_msg_t st = { .type = EVR_MSG_STATUS, .job = s->job }, rep = { 0 };
            evr_job_status_t js = EVR_JOB_NONE;
            if (!evr_gw_call(s->gw, &r, &st, &rep) && rep.type == EVR_MSG_JOB)
                evr_job_status_parse(rep.status, &js);
            s->final_seen = js >= EVR_JOB_SUCCEEDED;
            s->need_history = s->final_seen;   /* once more: job.finished may be in */
            evr_msg_clear(&rep);
        }
    }
    evr_msg_clear(&end);
    json_decref(r.json);
    s->quiet_since = evr_mono_ns();
}

/*  Waits up to a second for live events and takes them. */
static void
s_live(s_sse_t *s)
{
    s_resubscribe(s);
    if (s->need_history)
        return;
    zmq_pollitem_t it = { zsock_resolve(s->sub), 0, ZMQ_POLLIN, 0 };
    uint64_t wait_ms = s_keepalive(s->gw) / 2000000u;
    zmq_poll(&it, 1, wait_ms && wait_ms < 1000 ? (long) wait_ms : 1000);
    for (int i = 0; i < 256 && s->len < S_BUF_MAX && !s->ended && evr_bus_readable(s->sub);
         i++) {
        char *topic = NULL;
        evr_msg_t m = { 0 };
        evr_err_t err;
        if (evr_bus_recv_pub(s->sub, &topic, &m, &err) == EVR_OK && m.event && m.event->job
            && !strcmp(m.event->job, s->job)) {
            if (m.event->jseq > s->last + 1)
                s->need_history = true;     /* a gap: history has what is missing */
            s_take(s, m.event);
            s->quiet_since = evr_mono_ns();
        }
        evr_msg_clear(&m);
        free(topic);
    }
    uint64_t now = evr_mono_ns();
    if (now - s->quiet_since > S_QUIET_NS)
        s->need_history = true;     /* a lost publication, the last one too */
    if (!s->len && now > s->keepalive_at)
        s_append(s, ": keepalive\n\n", 13);
}

static ssize_t
s_sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    s_sse_t *s = cls;
    (void) pos;
    for (;;) {
        if (s->off < s->len) {
            size_t n = s->len - s->off < max ? s->len - s->off : max;
            memcpy(out, s->buf + s->off, n);
            s->off += n;
            if (s->off == s->len)
                s->off = s->len = 0;
            s->sent_at = evr_mono_ns();
            return (ssize_t) n;
        }
        if (s->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (s->gw->stopping)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        /* a broker call may wait up to 3/4 of the idle timeout after the
           last text: a comment first when that is over a quarter ago */
        if (s->need_history && s->gw->idle_s
            && evr_mono_ns() - s->sent_at > (uint64_t) s->gw->idle_s * 250000000u)
            s_append(s, ": keepalive\n\n", 13);
        else if (s->need_history)
            s_history(s);
        else
            s_live(s);
    }
}

static void
s_sse_free(void *cls)
{
    s_sse_t *s = cls;
    zsock_destroy(&s->sub);
    free(s->step);
    free(s->buf);
    free(s);
}

bool
evr_gw_last_event_id(const char *v, uint32_t *seq)
{
    char *end;
    if (!v || *v < '0' || *v > '9')
        return false;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || n > UINT32_MAX)
        return false;
    *seq = (uint32_t) n;
    return true;
}

/*  A live log's body for HEAD: none (never read: libmicrohttpd sends a
    HEAD's headers only). */
static ssize_t
s_no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) cls, (void) pos, (void) buf, (void) max;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static void
s_log_sse(evr_gw_t *gw, evr_gw_req_t *req, const char *job)
{
    const char *lei = evr_gw_header(req, "Last-Event-ID");
    uint32_t last = 0;
    evr_err_t err;
    if (lei && !evr_gw_last_event_id(lei, &last)) {
        evr_gw_error(req, 400, "bad_request", "Last-Event-ID \"%.32s\": expected the id of an "
                     "event received (an integer from 0 to %u, an id: line of this stream; "
                     "send none for the whole stream)", lei, UINT32_MAX);
        return;
    }
    if (!strcmp(req->method, "HEAD")) {
        /* the headers alone, as GET's but for Transfer-Encoding: a
           chunked answer to HEAD gets its last chunk (0\r\n\r\n) after the
           head from libmicrohttpd 0.9.75; one of no length and not
           chunked ends with the connection, and nothing follows the head */
        req->resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, s_no_body, NULL,
                                                      NULL);
        MHD_set_response_options(req->resp, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END);
        MHD_add_response_header(req->resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(req->resp, "Cache-Control", "no-cache");
        req->status = 200;
        return;
    }
    const evr_config_t *cfg = evr_gw_bus_cfg(gw);
    zsock_t *sub = s_subscribe(cfg, job, &err);
    if (!sub) {
        evr_gw_error(req, 503, "unavailable", "%s", err.msg);
        req->retry_after = 1;
        return;
    }
    s_sse_t *s = evr_calloc(1, sizeof *s);
    s->gw = gw;
    snprintf(s->job, sizeof s->job, "%s", job);
    const char *step = evr_gw_query(req, "step");
    s->step = step ? evr_strdup(step) : NULL;
    s->last = last;
    s->sub = sub;
    s->sub_cfg = cfg;
    s->need_history = true;
    s->quiet_since = evr_mono_ns();
    s->keepalive_at = evr_mono_ns() + s_keepalive(gw);
    s->sent_at = evr_mono_ns();
    req->resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, s_sse_read, s,
                                                  s_sse_free);
    MHD_add_response_header(req->resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(req->resp, "Cache-Control", "no-cache");
    req->status = 200;
}

/*  Whether an Accept header's value names text/event-stream: its media
    ranges compared case-insensitively (RFC 9110 12.5.1), one with q=0
    ("not acceptable") not counted.  NULL: false. */
static bool
s_accepts_sse(const char *accept)
{
    static const char want[] = "text/event-stream";
    const char *p = accept;
    while (p && *p) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ";,");
        size_t t = n;
        while (t && (p[t - 1] == ' ' || p[t - 1] == '\t'))
            t--;
        bool named = t == sizeof want - 1 && !strncasecmp(p, want, t);
        p += n;
        bool q0 = false;
        while (*p == ';') {                     /* its parameters, q among them */
            p++;
            p += strspn(p, " \t");
            size_t m = strcspn(p, ";,");
            if (m >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                const char *v = p + 2;          /* 0, 0., 0.0, 0.00, 0.000 */
                size_t len = strcspn(v, " \t;,");
                q0 = v[0] == '0' && (len == 1 || (v[1] == '.' && strspn(v + 2, "0") == len - 2));
            }
            p += m;
        }
        if (named && !q0)
            return true;
    }
    return false;
}

void
evr_gw_h_log(evr_gw_t *gw, evr_gw_req_t *req)
{
    char id[EVR_ULID_LEN + 1];
    const char *step = evr_gw_query(req, "step");
    if (!evr_gw_job_param(req, id))
        return;
    if (step && !evr_spec_step_name_ok(step)) {
        evr_gw_error(req, 400, "bad_request", "step \"%.64s\": expected a step name: letters, "
                     "digits, _ . - (a matrix step's NAME[K=v,...]; at most %d bytes)", step,
                     EVR_SPEC_MAX_NAME);
        return;
    }
    evr_msg_t m = { .type = EVR_MSG_STATUS, .job = id }, rep = { 0 };
    if (!evr_gw_call(gw, req, &m, &rep)) {
        const char *accept = evr_gw_header(req, "Accept");
        evr_strlist_t steps = { .n = rep.step_states.n, .v = rep.step_states.k };
        char names[512];
        if (rep.type != EVR_MSG_JOB)
            evr_gw_refused(req, &rep);
        else if (step && steps.n && !evr_follow_step_named(step, &steps, names, sizeof names))
            evr_gw_error(req, 404, "not_found", "job %s has no step \"%s\" (names are "
                         "case-sensitive); its steps: %s", id, step, names);
        else if (s_accepts_sse(accept))
            s_log_sse(gw, req, id);
        else
            s_log_text(gw, req, id);
    }
    evr_msg_clear(&rep);
}
