/*  evr_wire_journal.c: cases of evr-wire-audit about what a submit
    becomes (schema/PROTOCOL.md, "Submit", "Requests and answers",
    "Encoding"): requests read together keep the order of their answers,
    and a submit whose body is odd but valid (keys in another order,
    integers and strings in longer encodings than needed, optional fields
    sent with their zero values, args given or left to their defaults, an
    unknown key, a body over 256 KiB) is the same job after the broker was
    killed (SIGKILL) and started again: `accepted` says it is durable.

        evr-wire-audit --odd-submit CLIENT_EP FILE
            submits each odd body, checks `accepted` and the job's
            `status`; writes the job ids and those status bodies to FILE.
        evr-wire-audit --odd-check CLIENT_EP FILE
            (the broker killed and started again) each job's `status` is the
            same as before, a submit again is `accepted{existing}`, and once
            cancelled in the queue its `job.accepted` in `history` holds the
            spec that was sent and the args resolved (given, or the
            declared default), no parent.
*/
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "evr_wire_audit.h"
#include "evr_wire_msgpack.h"

/*  An odd body: "JOB" stands for its job id, "PARENT" for another id;
    args, the resolved args its job.accepted must hold. */
typedef struct {
    const char *what;
    const char *body;
    const char *args;
} s_odd_t;

#define S_LABELS "labels:[\"audit-none\"]"
#define S_STEP "{name:\"s\",run:\"true\"}"
#define S_ARGS "args:{A:{default:\"x\"},B:{description:\"b\"},C:{default:\"\"}}"

static const s_odd_t s_odd[] = {
    { "keys in another order at every level",
      "{spec:{steps:[{run:\"true\",name:\"s\"}]," S_LABELS ",image:\"img:1\","
      "pipeline:\"odd-order\"},labels:[\"odd-x\"],job:\"JOB\"}", "{}" },
    /* "odd-ints" as str 8; 600000, 3, 2, 7 and 1000 as uint 64, int 64,
       int 8, uint 32 and uint 16 */
    { "integers and a name in longer encodings",
      "{job:\"JOB\",spec:{pipeline:R(d9086f6464"
      "2d696e7473),image:\"img:1\"," S_LABELS ",timeout:R(cf00000000000927c0),"
      "concurrency:R(d30000000000000003),parallel:R(d002),queue:{limit:R(ce00000007)},"
      "steps:[{name:\"s\",run:\"true\",timeout:R(cd03e8)}]}}", "{}" },
    /* "img:1" as str 16, "true" as str 32, "audit-none" as str 8 */
    { "strings in str 8, 16 and 32",
      "{job:\"JOB\",spec:{pipeline:\"odd-strs\",image:R(da0005696d673a31),"
      "labels:[R(d90a61756469742d6e6f6e65)],steps:[{name:\"s\",run:R(db0000000474727565)}]}}",
      "{}" },
    { "optional fields sent with their zero values",
      "{job:\"JOB\",labels:[],args:{},source_tar:B(0),spec:{pipeline:\"odd-zeros\","
      "image:\"img:1\"," S_LABELS ",parallel:0,concurrency:0,env:{},secrets:[],"
      "steps:[{name:\"s\",run:\"true\",needs:[],env:{},untrusted:false,"
      "allow_failure:false,timeout:0}]}}", "{}" },
    { "args given, each, in the order declared",
      "{job:\"JOB\",args:{A:\"1\",B:\"\",C:\"3\"},spec:{pipeline:\"odd-args\","
      "image:\"img:1\"," S_LABELS "," S_ARGS ",steps:[" S_STEP "]}}",
      "{A:\"1\",B:\"\",C:\"3\"}" },
    { "args given in another order, one left to its default",
      "{job:\"JOB\",args:{B:\"2\",A:\"1\"},spec:{pipeline:\"odd-args\","
      "image:\"img:1\"," S_LABELS "," S_ARGS ",steps:[" S_STEP "]}}",
      "{A:\"1\",B:\"2\",C:\"\"}" },
    /* body, spec, steps, a step, x_future and 11 arrays: 16 deep, the most */
    { "an unknown key deep in the spec, nested 16 deep",
      "{job:\"JOB\",spec:{pipeline:\"odd-unknown\",image:\"img:1\"," S_LABELS ","
      "steps:[{name:\"s\",run:\"true\",x_future:{a:[[[[[[[[[[[1,nil,1.5]]]]]]]]]]]}}]}}",
      "{}" },
    { "an unknown key of another type than str",
      "{job:\"JOB\",7:\"seven\",spec:{pipeline:\"odd-intkey\",image:\"img:1\"," S_LABELS ","
      "steps:[" S_STEP "]}}", "{}" },
    { "a parent named by the client (the broker's to set)",
      "{job:\"JOB\",parent_job:\"PARENT\",parent_step:\"s\",spec:{pipeline:\"odd-parent\","
      "image:\"img:1\"," S_LABELS ",steps:[" S_STEP "]}}", "{}" },
    { "UTF-8 of 2, 3 and 4 bytes",
      "{job:\"JOB\",spec:{pipeline:\"odd-utf8\",image:\"img:1\"," S_LABELS ","
      "env:{E:\"\\xc3\\xa9\\xe2\\x82\\xac\\xf0\\x9f\\x98\\x80\"},"
      "steps:[{name:\"s\",run:\"echo \\xc3\\xa9 \\xe2\\x82\\xac \\xf0\\x9f\\x98\\x80\"}]}}",
      "{}" },
    { "the short form of a step's artifacts",
      "{job:\"JOB\",spec:{pipeline:\"odd-short\",image:\"img:1\"," S_LABELS ","
      "steps:[{name:\"s\",run:\"true\",artifacts:[\"out/a\",\"out/b\"]}]}}", "{}" },
    { "a body over 256 KiB",
      "{job:\"JOB\",spec:{pipeline:\"odd-big\",image:\"img:1\"," S_LABELS ","
      "steps:[{name:\"a\",run:S(60000)},{name:\"b\",run:S(60000)},{name:\"c\",run:S(60000)},"
      "{name:\"d\",run:S(60000)},{name:\"e\",run:S(60000)}]}}", "{}" },
};
#define S_NODD (sizeof s_odd / sizeof s_odd[0])

/*  The text t with "JOB" replaced by job and "PARENT" by parent; caller
    frees. */
static char *
s_subst(const char *t, const char *job, const char *parent)
{
    char *out = strdup(t);
    const char *names[2] = { "JOB", "PARENT" }, *ids[2] = { job, parent };
    for (int k = 0; k < 2; k++)
        for (char *p; (p = strstr(out, names[k]));) {
            char *n;
            *p = '\0';
            if (asprintf(&n, "%s%s%s", out, ids[k], p + strlen(names[k])) < 0)
                abort();
            free(out);
            out = n;
        }
    return out;
}

/*  NULL when got holds what want says, as PROTOCOL.md's "Encoding" reads
    a value: integers by value whatever their encoding, an absent optional
    field as its zero value (0, false, an empty list or map), map entries
    in any order, the unknown keys sent (not a str, or "x_...") ignored;
    else what differs (a static buffer). */
static const char *
s_differs(const msgpack_object *want, const msgpack_object *got, const char *path)
{
    static char why[600];
    static const msgpack_object none = { .type = MSGPACK_OBJECT_NIL };
    int wz = want->type == MSGPACK_OBJECT_NIL
             || (want->type == MSGPACK_OBJECT_POSITIVE_INTEGER && !want->via.u64)
             || (want->type == MSGPACK_OBJECT_BOOLEAN && !want->via.boolean)
             || (want->type == MSGPACK_OBJECT_ARRAY && !want->via.array.size)
             || (want->type == MSGPACK_OBJECT_MAP && !want->via.map.size);
    int gz = got->type == MSGPACK_OBJECT_NIL
             || (got->type == MSGPACK_OBJECT_POSITIVE_INTEGER && !got->via.u64)
             || (got->type == MSGPACK_OBJECT_BOOLEAN && !got->via.boolean)
             || (got->type == MSGPACK_OBJECT_ARRAY && !got->via.array.size)
             || (got->type == MSGPACK_OBJECT_MAP && !got->via.map.size);
    if (wz && gz)
        return NULL;
    if (want->type != got->type) {
        snprintf(why, sizeof why, "%s: type %d sent, %d stored", path, want->type, got->type);
        return why;
    }
    char sub[400];
    switch (want->type) {
    case MSGPACK_OBJECT_MAP:
        for (int side = 0; side < 2; side++) {
            const msgpack_object *a = side ? got : want, *b = side ? want : got;
            for (uint32_t i = 0; i < a->via.map.size; i++) {
                const msgpack_object *k = &a->via.map.ptr[i].key;
                if (k->type != MSGPACK_OBJECT_STR   /* unknown keys: ignored */
                    || (!side && k->via.str.size > 2 && !memcmp(k->via.str.ptr, "x_", 2)))
                    continue;
                char key[80];
                snprintf(key, sizeof key, "%.*s", (int) k->via.str.size, k->via.str.ptr);
                const msgpack_object *other = evr_wmp_get(b, key);
                snprintf(sub, sizeof sub, "%s.%s", path, key);
                const char *d = side ? s_differs(other ? other : &none, &a->via.map.ptr[i].val,
                                                 sub)
                                     : s_differs(&a->via.map.ptr[i].val, other ? other : &none,
                                                 sub);
                if (d)
                    return d;
            }
        }
        return NULL;
    case MSGPACK_OBJECT_ARRAY:
        if (want->via.array.size != got->via.array.size) {
            snprintf(why, sizeof why, "%s: %u items sent, %u stored", path,
                     want->via.array.size, got->via.array.size);
            return why;
        }
        for (uint32_t i = 0; i < want->via.array.size; i++) {
            snprintf(sub, sizeof sub, "%s[%u]", path, i);
            const char *d = s_differs(&want->via.array.ptr[i], &got->via.array.ptr[i], sub);
            if (d)
                return d;
        }
        return NULL;
    case MSGPACK_OBJECT_STR:
        if (want->via.str.size == got->via.str.size
            && !memcmp(want->via.str.ptr, got->via.str.ptr, want->via.str.size))
            return NULL;
        snprintf(why, sizeof why, "%s: \"%.*s\" sent, \"%.*s\" stored", path,
                 want->via.str.size > 60 ? 60 : (int) want->via.str.size, want->via.str.ptr,
                 got->via.str.size > 60 ? 60 : (int) got->via.str.size, got->via.str.ptr);
        return why;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_BOOLEAN:
        if (want->via.u64 == got->via.u64)
            return NULL;
        snprintf(why, sizeof why, "%s: %llu sent, %llu stored", path,
                 (unsigned long long) want->via.u64, (unsigned long long) got->via.u64);
        return why;
    default:
        snprintf(why, sizeof why, "%s: a value of type %d (not in a spec)", path, want->type);
        return why;
    }
}

/*  The "spec" of an odd body, unpacked into *up (pointing into body). */
static const msgpack_object *
s_sent_spec(const uint8_t *body, size_t len, msgpack_unpacked *up)
{
    size_t off = 0;
    msgpack_unpacked_init(up);
    if (msgpack_unpack_next(up, (const char *) body, len, &off) != MSGPACK_UNPACK_SUCCESS)
        abort();
    return evr_wmp_get(&up->data, "spec");
}

/*  The bytes of o's body for job (a fresh parent id), their length in
    *len; caller frees. */
static uint8_t *
s_body(const s_odd_t *o, const char *job, size_t *len)
{
    char parent[27];
    evr_wa_ulid(parent);
    char *text = s_subst(o->body, job, parent);
    uint8_t *b = evr_wmp_body(len, "%s", text);
    free(text);
    return b;
}

/*  --odd-submit: see the top of this file; 0 when every check passed. */
int
evr_wa_odd_submit(const char *file)
{
    FILE *f = fopen(file, "w");
    if (!f) {
        perror(file);
        return 1;
    }
    void *c = evr_wa_client;
    for (size_t i = 0; i < S_NODD; i++) {
        char job[27], label[200];
        evr_wa_ulid(job);
        size_t l;
        uint8_t *b = s_body(&s_odd[i], job, &l);
        evr_wa_answer_t a;
        snprintf(label, sizeof label, "submit with %s", s_odd[i].what);
        evr_wa_request(c, label, "submit", b, l, &a);
        free(b);
        evr_wa_check(!strcmp(a.type, "accepted") && a.obj && !evr_wmp_get(a.obj, "existing")
                     && !strcmp(evr_wa_str(&a, "job"), job),
                     "%s: accepted{job} (got %s %s: %s)", label, a.type,
                     evr_wa_str(&a, "code"), evr_wa_str(&a, "message"));
        evr_wa_answer_clear(&a);
        b = evr_wmp_body(&l, "{job:\"%s\"}", job);
        evr_wa_request(c, "status", "status", b, l, &a);
        free(b);
        evr_wa_check(!strcmp(a.type, "job") && !strcmp(evr_wa_str(&a, "status"), "queued"),
                     "%s: status queued (got %s %s)", label, a.type, evr_wa_str(&a, "status"));
        fprintf(f, "%zu %s ", i, job);
        for (size_t k = 0; k < a.len; k++)
            fprintf(f, "%02x", a.body[k]);
        fprintf(f, "\n");
        evr_wa_answer_clear(&a);
    }
    fclose(f);
    return evr_wa_fails ? 1 : 0;
}

/*  The object the hex text holds, unpacked into *up; *buf holds its
    bytes (the objects point into them: free both after). */
static const msgpack_object *
s_unhex(const char *hex, uint8_t **buf, msgpack_unpacked *up)
{
    size_t n = strlen(hex) / 2, off = 0;
    *buf = malloc(n + 1);
    for (size_t k = 0; k < n; k++)
        sscanf(hex + 2 * k, "%2hhx", &(*buf)[k]);
    msgpack_unpacked_init(up);
    if (msgpack_unpack_next(up, (const char *) *buf, n, &off) != MSGPACK_UNPACK_SUCCESS)
        up->data.type = MSGPACK_OBJECT_NIL;
    return &up->data;
}

/*  The first event of a history page, ev: the job.accepted of o, with
    the spec sent, the args resolved and no parent. */
static void
s_accepted_check(const s_odd_t *o, const msgpack_object *ev, const msgpack_object *spec)
{
    static const msgpack_object none = { .type = MSGPACK_OBJECT_NIL };
    msgpack_object *type = evr_wmp_get(ev, "type"), *data = evr_wmp_get(ev, "data");
    int acc = type && type->type == MSGPACK_OBJECT_STR && type->via.str.size == 12
              && !memcmp(type->via.str.ptr, "job.accepted", 12) && data;
    evr_wa_check(acc, "%s: the first event of its history is job.accepted", o->what);
    if (!acc)
        return;
    msgpack_object *got = evr_wmp_get(data, "spec"), *args = evr_wmp_get(data, "args");
    const char *d = got ? s_differs(spec, got, "spec") : "no spec";
    evr_wa_check(!d, "%s: job.accepted holds the spec sent (%s)", o->what, d ? d : "");
    size_t al, off = 0;
    uint8_t *ab = evr_wmp_body(&al, "%s", o->args);
    msgpack_unpacked aup;
    msgpack_unpacked_init(&aup);
    msgpack_unpack_next(&aup, (const char *) ab, al, &off);
    d = s_differs(&aup.data, args ? args : &none, "args");
    evr_wa_check(!d, "%s: job.accepted holds the args resolved (%s)", o->what, d ? d : "");
    evr_wa_check(!evr_wmp_get(data, "parent_job") && !evr_wmp_get(data, "parent_step"),
                 "%s: job.accepted names no parent", o->what);
    msgpack_unpacked_destroy(&aup);
    free(ab);
}

/*  The checks of one odd job after the restart; status, the hex of its
    status body before. */
static void
s_odd_check(const s_odd_t *o, const char *job, const char *status)
{
    void *c = evr_wa_client;
    evr_wa_answer_t a;
    size_t l;
    uint8_t *before;
    msgpack_unpacked bup;
    const msgpack_object *was = s_unhex(status, &before, &bup);
    uint8_t *b = evr_wmp_body(&l, "{job:\"%s\"}", job);
    evr_wa_request(c, "status", "status", b, l, &a);
    free(b);
    const char *d = a.obj ? s_differs(was, a.obj, "status") : "no status";
    evr_wa_check(!strcmp(a.type, "job") && !d, "%s: after a restart, status as before (%s)",
                 o->what, d ? d : "");
    evr_wa_answer_clear(&a);
    msgpack_unpacked_destroy(&bup);
    free(before);

    uint8_t *sent = s_body(o, job, &l);
    evr_wa_request(c, "submit again", "submit", sent, l, &a);
    evr_wa_check(!strcmp(a.type, "accepted") && a.obj && evr_wmp_get(a.obj, "existing"),
                 "%s: after a restart, a submit again is accepted{existing} (got %s %s)",
                 o->what, a.type, evr_wa_str(&a, "message"));
    evr_wa_answer_clear(&a);
    msgpack_unpacked sup;
    const msgpack_object *spec = s_sent_spec(sent, l, &sup);   /* pointing into sent */

    b = evr_wmp_body(&l, "{job:\"%s\",reason:\"audit\"}", job);
    evr_wa_request(c, "cancel", "cancel", b, l, &a);
    free(b);
    evr_wa_check(!strcmp(a.type, "ok"), "%s: cancel in the queue: ok (got %s %s)", o->what,
                 a.type, evr_wa_str(&a, "message"));
    evr_wa_answer_clear(&a);

    b = evr_wmp_body(&l, "{job:\"%s\",limit:1}", job);     /* jseq 1, the job.accepted */
    evr_wa_send(c, "history", b, l);
    free(b);
    int seen = 0;
    while (!evr_wa_recv(c, &a, 8000)) {
        int end = !evr_wa_stream_item(a.type);
        msgpack_object *ev = end || !a.obj ? NULL : evr_wmp_get(a.obj, "event");
        if (ev && !seen++)
            s_accepted_check(o, ev, spec);
        evr_wa_answer_clear(&a);
        if (end)
            break;
    }
    evr_wa_check(seen == 1, "%s: history{limit: 1}: one event (%d)", o->what, seen);
    msgpack_unpacked_destroy(&sup);
    free(sent);
}

/*  --odd-check: see the top of this file; 0 when every check passed. */
int
evr_wa_odd_check(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        perror(file);
        return 1;
    }
    size_t i, n = 0;
    char job[27], *status = malloc(1 << 20);
    while (fscanf(f, "%zu %26s %1048575s", &i, job, status) == 3 && i < S_NODD) {
        s_odd_check(&s_odd[i], job, status);
        n++;
    }
    fclose(f);
    free(status);
    evr_wa_check(n == S_NODD, "odd submits: %zu of %zu jobs to check in %s", n, S_NODD, file);
    return evr_wa_fails ? 1 : 0;
}

/*  Two requests sent at once, the first on s1, the second on s2 (the
    same socket or not); their answers in a and b. */
static void
s_two(void *s1, void *s2, const char *t1, const char *b1, const char *t2, const char *b2,
      evr_wa_answer_t *a, evr_wa_answer_t *b)
{
    size_t l1, l2;
    uint8_t *m1 = evr_wmp_body(&l1, "%s", b1), *m2 = evr_wmp_body(&l2, "%s", b2);
    evr_wa_send(s1, t1, m1, l1);
    evr_wa_send(s2, t2, m2, l2);
    free(m1);
    free(m2);
    if (evr_wa_recv(s1, a, 8000))
        memset(a, 0, sizeof *a);
    if (evr_wa_recv(s2, b, 8000))
        memset(b, 0, sizeof *b);
}

/*  Requests the broker reads together (one turn of its loop, most
    often): the answers of one connection come in the order asked, a job
    id submitted twice is one job. */
void
evr_wa_one_turn(void)
{
    void *c = evr_wa_client, *d = evr_wa_dealer(0);
    evr_wa_answer_t a, b;
    char j[27], body[400], body2[200];
    const char *spec = "{pipeline:\"turn\",image:\"img:1\",labels:[\"audit-none\"],"
                       "steps:[{name:\"s\",run:\"true\"}]}";
    evr_wa_ulid(j);
    snprintf(body, sizeof body, "{job:\"%s\",spec:%s}", j, spec);
    char j2[27];
    evr_wa_ulid(j2);
    snprintf(body2, sizeof body2, "{job:\"%s\",pipeline:\"not-registered\"}", j2);
    s_two(c, c, "submit", body, "start", body2, &a, &b);
    evr_wa_check(!strcmp(a.type, "accepted") && !strcmp(evr_wa_str(&a, "job"), j)
                 && !strcmp(b.type, "error") && !strcmp(evr_wa_str(&b, "code"), "not_found"),
                 "submit, then start of a pipeline not registered, on one connection: "
                 "accepted, then error not_found, in that order (got %s %s, then %s %s)",
                 a.type, evr_wa_str(&a, "code"), b.type, evr_wa_str(&b, "code"));
    evr_wa_answer_clear(&a);
    evr_wa_answer_clear(&b);

    evr_wa_ulid(j);
    snprintf(body, sizeof body, "{job:\"%s\",spec:%s}", j, spec);
    snprintf(body2, sizeof body2, "{job:\"%s\",pipeline:\"audit-git\",source_url:\"ftp://h/r\"}",
             j2);
    s_two(c, c, "submit", body, "start", body2, &a, &b);
    evr_wa_check(!strcmp(a.type, "accepted") && !strcmp(b.type, "error")
                 && !strcmp(evr_wa_str(&b, "code"), "bad_request"),
                 "submit, then start with a bad source_url, on one connection: accepted, then "
                 "error bad_request (got %s, then %s %s)", a.type, b.type,
                 evr_wa_str(&b, "code"));
    evr_wa_answer_clear(&a);
    evr_wa_answer_clear(&b);

    evr_wa_ulid(j);
    snprintf(body, sizeof body, "{job:\"%s\",spec:%s}", j, spec);
    snprintf(body2, sizeof body2, "{job:\"%s\"}", j);
    s_two(c, c, "submit", body, "cancel", body2, &a, &b);
    evr_wa_check(!strcmp(a.type, "accepted") && !strcmp(b.type, "ok"),
                 "submit, then cancel of that job, on one connection: accepted, then ok "
                 "(got %s, then %s %s)", a.type, b.type, evr_wa_str(&b, "message"));
    evr_wa_answer_clear(&a);
    evr_wa_answer_clear(&b);

    for (int same = 1; same >= 0; same--) {
        evr_wa_ulid(j);
        snprintf(body, sizeof body, "{job:\"%s\",spec:%s}", j, spec);
        s_two(c, same ? c : d, "submit", body, "submit", body, &a, &b);
        int ea = a.obj && evr_wmp_get(a.obj, "existing");
        int eb = b.obj && evr_wmp_get(b.obj, "existing");
        evr_wa_check(!strcmp(a.type, "accepted") && !strcmp(b.type, "accepted") && ea + eb == 1
                     && (!same || eb),
                     "one job id submitted twice at once on %s: accepted, and once "
                     "accepted{existing} (got %s%s, %s%s)",
                     same ? "one connection" : "two connections", a.type,
                     ea ? "{existing}" : "", b.type, eb ? "{existing}" : "");
        evr_wa_answer_clear(&a);
        evr_wa_answer_clear(&b);
    }
    zmq_close(d);
}
