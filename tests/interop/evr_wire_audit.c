/*  evr_wire_audit.c: an independent peer of evrun's bus, written from
    schema/PROTOCOL.md alone (libzmq and msgpack-c; none of evrun's code),
    that checks what a real evrun-broker answers to valid and bad messages.

        evr-wire-audit CLIENT_EP RUNNER_EP [EVENTS_EP]

    A "good" runner (its own DEALER) says hello, takes a job and keeps its
    heartbeats going throughout.  For every client request of the spec the
    audit sends one valid message and checks the answer against the
    document's tables (every required field, no undocumented one, types,
    limits, no optional field sent with its zero value); then bad variants
    generated from the same tables (a required field missing, each field of
    a wrong type, nil, past its limit, a bad ULID or name, negative or
    float numbers, duplicate keys, bad UTF-8, a NUL), and bad envelopes
    (headers, frame counts, truncated and garbage msgpack, wrong sockets).
    Each must get the documented `error`, with the documented code and a
    message naming the field.  A rogue runner then sends bad runner
    messages; at the end the good runner's job must still end as it says
    and the broker must still answer.  With EVENTS_EP it subscribes to
    everything and checks each publication: two frames, the topic
    `ev.<job>.<type>` or `rn.<runner>` matching the body, the body an
    `event` or `runner` message (a job.accepted's spec cut to the stub,
    without args).  Prints "FAIL - ..." per failed check
    and a summary; exits 0 when all passed, 1 otherwise.

        evr-wire-audit --odd-submit|--odd-check CLIENT_EP FILE

    submit odd but valid bodies, and check them after the broker was
    killed and started again (evr_wire_journal.c). */
#define _GNU_SOURCE
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "evr_wire_msgpack.h"
#include "evr_wire_tables.h"
#include "evr_wire_audit.h"

int evr_wa_fails, evr_wa_passes;
void *evr_wa_client, *evr_wa_rogue;
char evr_wa_control[2048];
static void *s_ctx, *s_good, *s_sub;
static int s_pubs;
static const char *s_client_ep, *s_runner_ep;
static long long s_last_beat;

/* what the good runner got */
static char s_dispatched[27];
static uint64_t s_acked;
static int s_welcomed;
static char s_good_id[] = "audit-good-1";
static int s_art_acks, s_art_done;
static uint64_t s_art_offset;
static char s_art_reason[1100];
#define S_HELLO_SHA "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

static long long
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void
evr_wa_check(int ok, const char *fmt, ...)
{
    if (ok) {
        evr_wa_passes++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL - ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    evr_wa_fails++;
}

void
evr_wa_ulid(char out[27])
{
    static unsigned char rnd[10];
    static uint64_t last;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (ms > last) {
        last = ms;
        for (int i = 0; i < 10; i++)
            rnd[i] = (unsigned char) (rand() & 0x7f);   /* room to count up */
    } else {
        for (int i = 9; i >= 0 && ++rnd[i] == 0; i--)
            ;
    }
    unsigned char b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char) (last >> (40 - 8 * i));
    memcpy(b + 6, rnd, 10);
    const char *abc = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    for (int i = 0; i < 26; i++) {
        int v = 0;
        for (int j = 0; j < 5; j++) {
            int bit = 129 - 5 * i - j;   /* of a 130-bit number, top 2 bits 0 */
            int set = bit <= 127 && (b[(127 - bit) / 8] >> (bit % 8) & 1);
            v = v << 1 | set;
        }
        out[i] = abc[v];
    }
    out[26] = '\0';
}

void *
evr_wa_dealer(int runner_side)
{
    void *s = zmq_socket(s_ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(s, runner_side ? s_runner_ep : s_client_ep))
        abort();
    return s;
}

void
evr_wa_send_frames(void *s, int n, const void **frames, const size_t *lens)
{
    for (int i = 0; i < n; i++)
        zmq_send(s, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0);
}

void
evr_wa_send(void *s, const char *type, const uint8_t *body, size_t len)
{
    char hdr[128];
    snprintf(hdr, sizeof hdr, "evrun1 %s", type);
    const void *f[2] = { hdr, body };
    size_t l[2] = { strlen(hdr), len };
    evr_wa_send_frames(s, 2, f, l);
}

void
evr_wa_answer_clear(evr_wa_answer_t *a)
{
    if (a->unpacked)
        msgpack_unpacked_destroy(&a->up);
    free(a->body);
    memset(a, 0, sizeof *a);
}

/*  Reads one message from s into a, whole; 0 when one came. */
static int
s_read(void *s, evr_wa_answer_t *a)
{
    memset(a, 0, sizeof *a);
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0) {
            zmq_msg_close(&m);
            return -1;
        }
        if (a->frames == 0)
            snprintf(a->header, sizeof a->header, "%.*s", (int) zmq_msg_size(&m),
                     (char *) zmq_msg_data(&m));
        free(a->body);
        a->len = zmq_msg_size(&m);
        a->body = malloc(a->len + 1);
        memcpy(a->body, zmq_msg_data(&m), a->len);
        a->frames++;
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    if (!strncmp(a->header, "evrun1 ", 7))
        snprintf(a->type, sizeof a->type, "%s", a->header + 7);
    msgpack_unpacked_init(&a->up);
    a->unpacked = 1;
    size_t off = 0;
    if (msgpack_unpack_next(&a->up, (const char *) a->body, a->len, &off) == MSGPACK_UNPACK_SUCCESS
        && off == a->len)
        a->obj = &a->up.data;
    return 0;
}

static void s_good_handle(evr_wa_answer_t *a);

/*  NULL when the data of a published job.accepted has no args and its
    spec is the stub: pipeline, executor, image, labels, each step's name
    and image, every run "". */
static const char *
s_stub_check(const msgpack_object *d)
{
    static const evr_wfield_t spec[] = {
        { "pipeline", WT_STR, 1, 64 }, { "executor", WT_STR, 0, 0 }, { "image", WT_STR, 0, 512 },
        { "labels", WT_ASTR, 0, 32 }, { "steps", WT_AMAP, 1, 256 }, { 0 },
    };
    static const evr_wfield_t step[] = {
        { "name", WT_STR, 1, 64 }, { "image", WT_STR, 0, 512 }, { "run", WT_STR, 1, 0 }, { 0 },
    };
    msgpack_object *sp = evr_wmp_get(d, "spec");
    if (evr_wmp_get(d, "args") || !sp)
        return "job.accepted published with args, or without its spec";
    if (evr_wmp_conform(sp, spec))
        return "job.accepted published with more than the spec's stub";
    msgpack_object *st = evr_wmp_get(sp, "steps");
    for (uint32_t i = 0; i < st->via.array.size; i++) {
        msgpack_object *run = evr_wmp_get(&st->via.array.ptr[i], "run");
        if (evr_wmp_conform(&st->via.array.ptr[i], step) || run->via.str.size)
            return "job.accepted published with a step beyond the stub (or a run)";
    }
    return NULL;
}

/*  Checks one publication (PROTOCOL.md, "Topics on the XPUB socket"). */
static void
s_pub_check(evr_wa_answer_t *a)
{
    const char *bad = NULL;
    char want[200] = "";
    s_pubs++;
    if (a->frames != 2)
        bad = "not two frames";
    else if (!a->obj)
        bad = "body not one msgpack object";
    else if (!strncmp(a->header, "rn.", 3)) {
        bad = evr_wmp_conform(a->obj, evr_w_answers[5].f);   /* runner */
        snprintf(want, sizeof want, "rn.%s", evr_wa_str(a, "runner"));
    } else if (!strncmp(a->header, "ev.", 3)) {
        msgpack_object *ev = evr_wmp_get(a->obj, "event");
        bad = evr_wmp_conform(a->obj, evr_w_answers[4].f);   /* event */
        if (!bad)
            bad = evr_wmp_conform(ev, evr_w_event);
        if (!bad) {
            msgpack_object *j = evr_wmp_get(ev, "job"), *t = evr_wmp_get(ev, "type");
            snprintf(want, sizeof want, "ev.%.*s.%.*s", j ? (int) j->via.str.size : 0,
                     j ? j->via.str.ptr : "", (int) t->via.str.size, t->via.str.ptr);
            msgpack_object *d = evr_wmp_get(ev, "data");
            if (!strcmp(a->header + strlen(a->header) - 13, ".job.accepted"))
                bad = s_stub_check(d);
        }
    } else
        bad = "topic neither ev. nor rn.";
    if (!bad && strcmp(want, a->header))
        bad = "topic does not match the body";
    evr_wa_check(!bad, "publication %s: %s (want topic %s)", a->header, bad ? bad : "", want);
}

/*  The good runner: heartbeats every 300 ms, and whatever came. */
void
evr_wa_pump(void)
{
    if (!s_good)
        return;
    if (s_now_ms() - s_last_beat >= 300) {
        size_t l;
        uint8_t *b = evr_wmp_body(&l, "{}");
        evr_wa_send(s_good, "heartbeat", b, l);
        free(b);
        s_last_beat = s_now_ms();
    }
    zmq_pollitem_t ps = { s_sub, 0, ZMQ_POLLIN, 0 };
    while (s_sub && zmq_poll(&ps, 1, 0) > 0) {
        evr_wa_answer_t a;
        if (s_read(s_sub, &a))
            break;
        s_pub_check(&a);
        evr_wa_answer_clear(&a);
    }
    zmq_pollitem_t it = { s_good, 0, ZMQ_POLLIN, 0 };
    while (zmq_poll(&it, 1, 0) > 0) {
        evr_wa_answer_t a;
        if (s_read(s_good, &a))
            break;
        s_good_handle(&a);
        evr_wa_answer_clear(&a);
    }
}

int
evr_wa_recv(void *s, evr_wa_answer_t *a, int timeout_ms)
{
    long long end = s_now_ms() + timeout_ms;
    zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
    while (s_now_ms() < end) {
        evr_wa_pump();
        if (zmq_poll(&it, 1, 50) <= 0)
            continue;
        if (s_read(s, a))
            return -1;
        /* a runner's socket also gets the broker's heartbeats and
           controls: not answers (a control is kept for the checks) */
        if (!strcmp(a->type, "heartbeat") || !strcmp(a->type, "control")) {
            const char *bad = evr_wa_conform(a);
            evr_wa_check(!bad, "%s to a runner: %s", a->type, bad);
            if (!strcmp(a->type, "control"))
                snprintf(evr_wa_control, sizeof evr_wa_control, "%s %s: %s",
                         evr_wa_str(a, "command"), evr_wa_str(a, "job"), evr_wa_str(a, "reason"));
            evr_wa_answer_clear(a);
            continue;
        }
        return 0;
    }
    memset(a, 0, sizeof *a);
    static int silent;
    if (++silent == 5) {   /* a hung broker: stop here, not after every check's wait */
        printf("FAIL - no answer to 5 requests: the broker stopped answering\n");
        fflush(stdout);
        exit(1);
    }
    return -1;
}

const char *
evr_wa_conform(const evr_wa_answer_t *a)
{
    static char why[600];
    if (a->frames != 2) {
        snprintf(why, sizeof why, "%d frames, not 2", a->frames);
        return why;
    }
    if (!a->obj)
        return "body is not one msgpack object";
    for (const evr_wanswer_t *t = evr_w_answers; t->type; t++)
        if (!strcmp(t->type, a->type)) {
            const char *bad = evr_wmp_conform(a->obj, t->f);
            if (!bad && !strcmp(a->type, "event"))
                bad = evr_wmp_conform(evr_wmp_get(a->obj, "event"), evr_w_event);
            if (!bad)
                return NULL;
            snprintf(why, sizeof why, "%s: %s", a->type, bad);
            return why;
        }
    snprintf(why, sizeof why, "header \"%s\" names no broker message", a->header);
    return why;
}

/*  The str field key of a's body, in buf ("" when absent). */
const char *
evr_wa_str(const evr_wa_answer_t *a, const char *key)
{
    static char buf[4][4200];
    static int k;
    char *out = buf[k++ % 4];
    msgpack_object *v = a->obj ? evr_wmp_get(a->obj, key) : NULL;
    out[0] = '\0';
    if (v && v->type == MSGPACK_OBJECT_STR)
        snprintf(out, 4200, "%.*s", (int) v->via.str.size, v->via.str.ptr);
    return out;
}

uint64_t
evr_wa_uint(const evr_wa_answer_t *a, const char *key)
{
    msgpack_object *v = a->obj ? evr_wmp_get(a->obj, key) : NULL;
    return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
}

/*  Whether type is that of a stream's items. */
int
evr_wa_stream_item(const char *type)
{
    return !strcmp(type, "job") || !strcmp(type, "runner") || !strcmp(type, "event")
           || !strcmp(type, "pipeline") || !strcmp(type, "provider") || !strcmp(type, "demand");
}

int
evr_wa_expect(void *s, const char *what, const char *type, const uint8_t *body, size_t len,
              const char *code, const char *needle)
{
    evr_wa_answer_t a;
    evr_wa_send(s, type, body, len);
    if (evr_wa_recv(s, &a, 8000)) {
        evr_wa_check(0, "%s: no answer (expected error %s)", what, code);
        return 0;
    }
    const char *bad = evr_wa_conform(&a);
    const char *msg = evr_wa_str(&a, "message");
    evr_wa_answer_t rest;
    if (evr_wa_stream_item(a.type))   /* an answer, not an error: read the rest */
        while (!evr_wa_recv(s, &rest, 8000)) {
            int last = !evr_wa_stream_item(rest.type);
            evr_wa_answer_clear(&rest);
            if (last)
                break;
        }
    int ok = !bad && !strcmp(a.type, "error") && !strcmp(evr_wa_str(&a, "code"), code)
             && strlen(msg) > 0 && (!needle || strstr(msg, needle));
    evr_wa_check(ok, "%s: expected error %s%s%s, got %s %s: %s%s%s", what, code,
                 needle ? " naming " : "", needle ? needle : "", a.type,
                 evr_wa_str(&a, "code"), msg, bad ? " -- " : "", bad ? bad : "");
    evr_wa_answer_clear(&a);
    return ok;
}

/*  Sends one request and reads its answer(s): a stream up to its end or
    error; every answer checked against its table; the last in *last.
    Returns the number of items before the end. */
int
evr_wa_request(void *s, const char *what, const char *type, const uint8_t *body, size_t len,
               evr_wa_answer_t *last)
{
    int items = 0;
    evr_wa_send(s, type, body, len);
    for (;;) {
        if (evr_wa_recv(s, last, 8000)) {
            evr_wa_check(0, "%s: no answer", what);
            return -1;
        }
        const char *bad = evr_wa_conform(last);
        evr_wa_check(!bad, "%s: answer does not match PROTOCOL.md: %s", what, bad);

        if (!evr_wa_stream_item(last->type))
            break;
        /* stream items of the types that have a message of their own */
        if ((!strcmp(type, "status") && !strcmp(last->type, "job")))
            break;
        items++;
        evr_wa_answer_clear(last);
    }
    if (!strcmp(last->type, "end"))
        evr_wa_check(evr_wa_uint(last, "count") == (uint64_t) items,
                     "%s: end.count %llu for %d items", what,
                     (unsigned long long) evr_wa_uint(last, "count"), items);
    return items;
}

/*  The good runner's messages. */
static void
s_good_handle(evr_wa_answer_t *a)
{
    const char *bad = evr_wa_conform(a);
    evr_wa_check(!bad, "good runner: %s does not match PROTOCOL.md: %s", a->type, bad);
    if (!strcmp(a->type, "welcome")) {
        s_welcomed = 1;
        evr_wa_check(!strcmp(evr_wa_str(a, "runner"), s_good_id) && evr_wa_uint(a, "seq") == 0,
                     "good runner: welcome{runner %s, seq 0}", s_good_id);
    } else if (!strcmp(a->type, "dispatch")) {
        snprintf(s_dispatched, sizeof s_dispatched, "%s", evr_wa_str(a, "job"));
        /* job.accepted with the dispatched spec, as a runner commits it */
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, "events", 6);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 6);
        msgpack_pack_str_with_body(&pk, "seq", 3);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_str_with_body(&pk, "job", 3);
        msgpack_pack_str_with_body(&pk, s_dispatched, 26);
        msgpack_pack_str_with_body(&pk, "jseq", 4);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_str_with_body(&pk, "type", 4);
        msgpack_pack_str_with_body(&pk, "job.accepted", 12);
        msgpack_pack_str_with_body(&pk, "time", 4);
        msgpack_pack_uint64(&pk, (uint64_t) time(NULL) * 1000000000ULL);
        msgpack_pack_str_with_body(&pk, "data", 4);
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str_with_body(&pk, "pipeline", 8);
        msgpack_pack_object(&pk, *evr_wmp_get(evr_wmp_get(a->obj, "spec"), "pipeline"));
        msgpack_pack_str_with_body(&pk, "spec", 4);
        msgpack_pack_object(&pk, *evr_wmp_get(a->obj, "spec"));
        msgpack_pack_str_with_body(&pk, "runner", 6);
        msgpack_pack_str_with_body(&pk, s_good_id, strlen(s_good_id));
        evr_wa_send(s_good, "events", (uint8_t *) sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
    } else if (!strcmp(a->type, "artifact_ack")) {
        s_art_acks++;
        s_art_offset = evr_wa_uint(a, "offset");
        s_art_done = evr_wmp_get(a->obj, "done") != NULL;
        snprintf(s_art_reason, sizeof s_art_reason, "%s", evr_wa_str(a, "reason"));
    } else if (!strcmp(a->type, "ack")) {
        s_acked = evr_wa_uint(a, "seq");
    } else if (!strcmp(a->type, "error")) {
        evr_wa_check(0, "good runner got error %s: %s", evr_wa_str(a, "code"),
                     evr_wa_str(a, "message"));
    }
}

/*  Waits up to ms for cond to hold, pumping the good runner. */
static int
s_wait(int (*cond)(void), int ms)
{
    long long end = s_now_ms() + ms;
    while (!cond() && s_now_ms() < end) {
        evr_wa_pump();
        usleep(20000);
    }
    return cond();
}

static int s_is_welcomed(void) { return s_welcomed; }
static int s_is_dispatched(void) { return s_dispatched[0] != '\0'; }
static int s_acked_1(void) { return s_acked >= 1; }
static int s_acked_2(void) { return s_acked >= 2; }
static int s_art_1(void) { return s_art_acks >= 1; }
static int s_art_2(void) { return s_art_acks >= 2; }

/*  The good runner ships one artifact file ("hello\n") of its job: asks
    what the broker holds, then sends it; a client fetches it back. */
static void
s_good_artifact(const char *job)
{
    size_t l;
    uint8_t *b = evr_wmp_body(&l, "{job:\"%s\",step:\"s\",path:\"out/a.txt\",sha256:\""
                                  S_HELLO_SHA "\",size:6,offset:0}", job);
    evr_wa_send(s_good, "artifact_chunk", b, l);
    free(b);
    evr_wa_check(s_wait(s_art_1, 8000) && s_art_offset == 0 && !s_art_done && !s_art_reason[0],
                 "artifact_chunk without data: artifact_ack{offset 0} (reason \"%s\")",
                 s_art_reason);
    /* data past size: PROTOCOL.md says offset + len(data) <= size */
    b = evr_wmp_body(&l, "{job:\"%s\",step:\"s\",path:\"out/a.txt\",sha256:\"" S_HELLO_SHA
                         "\",size:6,offset:0,data:R(c40768656c6c6f0a0a)}", job);
    s_art_acks = 0;
    evr_wa_send(s_good, "artifact_chunk", b, l);
    free(b);
    evr_wa_check(s_wait(s_art_1, 8000) && s_art_offset == 0 && !s_art_done
                 && strstr(s_art_reason, "passes the size 6"),
                 "artifact_chunk past its size: artifact_ack with a reason (got \"%s\")",
                 s_art_reason);
    s_art_acks = 0;
    s_art_reason[0] = '\0';
    b = evr_wmp_body(&l, "{job:\"%s\",step:\"s\",path:\"out/a.txt\",sha256:\"" S_HELLO_SHA
                         "\",size:6,offset:0}", job);
    evr_wa_send(s_good, "artifact_chunk", b, l);
    free(b);
    s_wait(s_art_1, 3000);
    s_art_acks = 1;
    b = evr_wmp_body(&l, "{job:\"%s\",step:\"s\",path:\"out/a.txt\",sha256:\"" S_HELLO_SHA
                         "\",size:6,offset:0,data:R(c40668656c6c6f0a)}",   /* bin 8 of 6 */
                     job);
    evr_wa_send(s_good, "artifact_chunk", b, l);
    free(b);
    evr_wa_check(s_wait(s_art_2, 8000) && s_art_offset == 6 && s_art_done,
                 "artifact_chunk with the whole file: artifact_ack{offset 6, done} (reason \"%s\")",
                 s_art_reason);
    evr_wa_answer_t a;
    b = evr_wmp_body(&l, "{job:\"%s\",step:\"s\",path:\"out/a.txt\"}", job);
    evr_wa_request(evr_wa_client, "fetch", "fetch", b, l, &a);
    free(b);
    msgpack_object *d = a.obj ? evr_wmp_get(a.obj, "data") : NULL;
    evr_wa_check(!strcmp(a.type, "artifact_data") && evr_wa_uint(&a, "size") == 6
                 && d && d->type == MSGPACK_OBJECT_BIN && d->via.bin.size == 6
                 && !memcmp(d->via.bin.ptr, "hello\n", 6)
                 && !strcmp(evr_wa_str(&a, "path"), "out/a.txt"),
                 "fetch: artifact_data{step, path, size 6, data} (got %s %s)", a.type,
                 evr_wa_str(&a, "message"));
    evr_wa_answer_clear(&a);
    /* with sha256, only the copy of that sha256 (PROTOCOL.md, fetch) */
    b = evr_wmp_body(&l, "{job:\"%s\",step:\"s\",path:\"out/a.txt\",sha256:\"" S_HELLO_SHA
                         "\"}", job);
    evr_wa_request(evr_wa_client, "fetch of its sha256", "fetch", b, l, &a);
    free(b);
    evr_wa_check(!strcmp(a.type, "artifact_data") && evr_wa_uint(&a, "size") == 6,
                 "fetch of its sha256: artifact_data{size 6} (got %s %s)", a.type,
                 evr_wa_str(&a, "message"));
    evr_wa_answer_clear(&a);
    b = evr_wmp_body(&l, "{job:\"%s\",step:\"s\",path:\"out/a.txt\",sha256:\"%064d\"}",
                     job, 0);
    evr_wa_expect(evr_wa_client, "fetch of another sha256", "fetch", b, l, "not_found",
                  "the broker holds another copy (sha256 " S_HELLO_SHA ", 6 bytes) of "
                  "artifact out/a.txt of step s of job ");
    free(b);
    b = evr_wmp_body(&l, "{job:\"%s\",step:\"s\",path:\"out/a.txt\",offset:6}", job);
    evr_wa_request(evr_wa_client, "fetch at the end", "fetch", b, l, &a);
    free(b);
    evr_wa_check(!strcmp(a.type, "artifact_data") && evr_wa_uint(&a, "offset") == 6
                 && !evr_wmp_get(a.obj, "data"), "fetch at the end: artifact_data without data");
    evr_wa_answer_clear(&a);
    b = evr_wmp_body(&l, "{job:\"%s\",step:\"s\",path:\"out/a.txt\",offset:7}", job);
    evr_wa_expect(evr_wa_client, "fetch past the end", "fetch", b, l, "bad_request",
                  "fetch.offset: 7 is past the end of artifact out/a.txt (6 bytes)");
    free(b);
}

static void
s_good_start(char *job)
{
    size_t l;
    s_good = evr_wa_dealer(1);
    uint8_t *b = evr_wmp_body(&l, "{runner:\"%s\",labels:[\"audit-good\",\"executor:podman\"],"
                                  "capacity:1,version:\"audit\"}", s_good_id);
    evr_wa_send(s_good, "hello", b, l);
    free(b);
    evr_wa_check(s_wait(s_is_welcomed, 8000), "good runner: hello answered welcome");
    if (!s_welcomed) {
        printf("FAILED: no broker answers on %s\n", s_runner_ep);
        exit(1);
    }
    b = evr_wmp_body(&l, "{credit:1}");
    evr_wa_send(s_good, "credit", b, l);
    free(b);
    evr_wa_ulid(job);
    evr_wa_answer_t a;
    b = evr_wmp_body(&l, "{job:\"%s\",spec:{pipeline:\"audit-good\",image:\"img:1\","
                         "labels:[\"audit-good\"],steps:[{name:\"s\",run:\"true\"}]}}", job);
    evr_wa_request(evr_wa_client, "submit for the good runner", "submit", b, l, &a);
    free(b);
    evr_wa_check(!strcmp(a.type, "accepted") && !strcmp(evr_wa_str(&a, "job"), job),
                 "submit: accepted{job}");
    evr_wa_answer_clear(&a);
    evr_wa_check(s_wait(s_is_dispatched, 8000) && !strcmp(s_dispatched, job),
                 "good runner: dispatch of its job (got \"%s\")", s_dispatched);
    evr_wa_check(s_wait(s_acked_1, 8000), "good runner: its job.accepted acknowledged");
    s_good_artifact(job);
}

/*  The good runner ends its job failed with a reason; its status says so. */
static void
s_good_finish(const char *job)
{
    size_t l;
    uint8_t *b = evr_wmp_body(&l, "{events:[{seq:2,job:\"%s\",jseq:2,type:\"job.finished\","
                                  "time:%llu,data:{status:\"failed\",reason:\"audit end\"}}]}",
                              job, (unsigned long long) time(NULL) * 1000000000ULL);
    evr_wa_send(s_good, "events", b, l);
    free(b);
    evr_wa_check(s_wait(s_acked_2, 8000), "good runner: its job.finished acknowledged");
    evr_wa_answer_t a;
    for (int i = 0; i < 50; i++) {
        b = evr_wmp_body(&l, "{job:\"%s\"}", job);
        evr_wa_request(evr_wa_client, "status of the good runner's job", "status", b, l, &a);
        free(b);
        if (!strcmp(evr_wa_str(&a, "status"), "failed") || i == 49)
            break;
        evr_wa_answer_clear(&a);
        usleep(100000);
    }
    evr_wa_check(!strcmp(evr_wa_str(&a, "status"), "failed")
                 && !strcmp(evr_wa_str(&a, "reason"), "audit end")
                 && !strcmp(evr_wa_str(&a, "runner"), s_good_id),
                 "the good runner's job ended as it said despite the rogue (status %s reason "
                 "\"%s\" runner %s)", evr_wa_str(&a, "status"), evr_wa_str(&a, "reason"),
                 evr_wa_str(&a, "runner"));
    evr_wa_answer_clear(&a);
}

int
main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: evr-wire-audit CLIENT_EP RUNNER_EP [EVENTS_EP]\n"
                        "       evr-wire-audit --odd-submit|--odd-check CLIENT_EP FILE\n");
        return 2;
    }
    srand((unsigned) time(NULL) ^ (unsigned) getpid());
    if (argc == 4 && (!strcmp(argv[1], "--odd-submit") || !strcmp(argv[1], "--odd-check"))) {
        s_client_ep = argv[2];
        s_ctx = zmq_ctx_new();
        evr_wa_client = evr_wa_dealer(0);
        int rc = argv[1][6] == 's' ? evr_wa_odd_submit(argv[3]) : evr_wa_odd_check(argv[3]);
        zmq_close(evr_wa_client);
        zmq_ctx_term(s_ctx);
        printf("%s: %d checks, %d failed\n", rc ? "FAILED" : "OK", evr_wa_passes + evr_wa_fails,
               evr_wa_fails);
        return rc;
    }
    s_client_ep = argv[1];
    s_runner_ep = argv[2];
    s_ctx = zmq_ctx_new();
    if (argc == 4) {
        s_sub = zmq_socket(s_ctx, ZMQ_SUB);
        int zero = 0;
        zmq_setsockopt(s_sub, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(s_sub, ZMQ_SUBSCRIBE, "", 0);
        if (zmq_connect(s_sub, argv[3]))
            abort();
        usleep(200000);   /* the subscription reaches the broker */
    }
    evr_wa_client = evr_wa_dealer(0);
    evr_wa_rogue = evr_wa_dealer(1);
    char job[27];
    s_good_start(job);
    evr_wa_valid_requests(job);
    evr_wa_one_turn();
    printf("valid requests: %d checks, %d failed\n", evr_wa_passes + evr_wa_fails, evr_wa_fails);
    evr_wa_bad_fields();
    printf("bad fields: %d checks, %d failed\n", evr_wa_passes + evr_wa_fails, evr_wa_fails);
    evr_wa_bad_envelopes();
    printf("bad envelopes: %d checks, %d failed\n", evr_wa_passes + evr_wa_fails, evr_wa_fails);
    evr_wa_submit_specs();
    printf("submit specs: %d checks, %d failed\n", evr_wa_passes + evr_wa_fails, evr_wa_fails);
    evr_wa_rogue_runner(job);
    evr_wa_bad_events();
    printf("rogue runner: %d checks, %d failed\n", evr_wa_passes + evr_wa_fails, evr_wa_fails);
    s_good_finish(job);
    evr_wa_paging(job);
    evr_wa_still_serving();
    for (int i = 0; i < 10; i++) {   /* the last publications */
        evr_wa_pump();
        usleep(50000);
    }
    if (s_sub) {
        /* an XSUB peer on the event socket sends what a SUB never does:
           a message that is no subscription, several frames, a
           subscription of 64 KiB (not longer: libzmq's XSUB keeps its
           subscriptions in a trie it walks recursively, and a 1 MiB one
           overflows this process's stack; the broker's XPUB takes it) */
        void *x = zmq_socket(s_ctx, ZMQ_XSUB);
        int zero = 0;
        zmq_setsockopt(x, ZMQ_LINGER, &zero, sizeof zero);
        zmq_connect(x, argv[3]);
        usleep(100000);
        zmq_send(x, "\x02junk", 5, 0);
        zmq_send(x, "\x01ev.", 4, ZMQ_SNDMORE);
        zmq_send(x, "more", 4, 0);
        char *big = calloc(1, 1 << 16);
        memset(big, 'e', 1 << 16);
        big[0] = 1;
        zmq_send(x, big, 1 << 16, 0);
        free(big);
        zmq_send(x, "", 0, 0);
        usleep(100000);
        zmq_close(x);
        int before = s_pubs;
        size_t l;
        uint8_t *b = evr_wmp_body(&l, "{runner:\"%s\"}", s_good_id);
        evr_wa_answer_t a;
        evr_wa_request(evr_wa_client, "drain", "drain", b, l, &a);   /* publishes rn.<id> */
        free(b);
        evr_wa_answer_clear(&a);
        for (int i = 0; i < 20 && s_pubs == before; i++) {
            evr_wa_pump();
            usleep(50000);
        }
        evr_wa_check(s_pubs > before, "after an XSUB's odd messages: publications go on");
        evr_wa_check(s_pubs >= 5, "publications seen: %d", s_pubs);
        printf("publications: %d\n", s_pubs);
        zmq_close(s_sub);
    }
    zmq_close(s_good);
    zmq_close(evr_wa_client);
    zmq_close(evr_wa_rogue);
    zmq_ctx_term(s_ctx);
    printf("%s: %d checks, %d failed\n", evr_wa_fails ? "FAILED" : "OK",
           evr_wa_passes + evr_wa_fails, evr_wa_fails);
    return evr_wa_fails ? 1 : 0;
}
