/*  test_codec: every message and event type round-trips through msgpack;
    golden frames in tests/data/golden/ pin the wire format; texts are
    fitted to their limits on a character; encode and decode across the
    sizes where their buffers change.  What the codec refuses is in
    test_codec_malformed.c.

    `test_codec --write-golden` rewrites the golden files (only when the
    wire format is meant to change).
*/
#include <msgpack.h>
#include <pthread.h>

#include "evr_codec.h"
#include "evr_msg.h"
#include "evr_test.h"
#include "evr_yaml.h"

#define JOB_ID "01JQ7ZK3M8X2V9T4B6N0C5D7EF"

/* ------------------------------------------------------------ filling */

/*  Candidate string values: the first that passes a field's check is
    used, so enum-like fields get a valid member. */
static const char *const s_candidates[] = {
    JOB_ID, "succeeded", "stdout", "cancel", "idle", "reattached", "append",
    EVR_CODE_NOT_FOUND, "step.output", "runner-1", "CLEANUP",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", NULL,
};

static evr_spec_t *s_example_spec(void);

static void s_fill(const evr_rectype_t *type, void *rec, int salt);

static void
s_fill_event(evr_event_t *ev, evr_evtype_t t, uint64_t seq)
{
    ev->type = t;
    ev->seq = seq;
    ev->time = 1700000000123456789ull + seq;
    if (t != EVR_EV_RUNNER_STARTED && t != EVR_EV_RUNNER_RECOVERED) {
        ev->job = evr_strdup(JOB_ID);
        ev->jseq = (uint32_t) seq;
    }
    s_fill(evr_evtype_data(t), &ev->data, (int) seq);
}

static void
s_fill(const evr_rectype_t *type, void *rec, int salt)
{
    for (size_t i = 0; i < type->nfields; i++) {
        const evr_field_t *f = &type->fields[i];
        void *p = (char *) rec + f->off;
        switch (f->type) {
        case EVR_FT_STR:
            for (const char *const *c = s_candidates; *c; c++) {
                char *v = evr_strdup(*c);
                if ((!f->check || !f->check(&v)) && strlen(v) <= evr_field_limit(f)) {
                    *(char **) p = v;
                    break;
                }
                free(v);
            }
            break;
        case EVR_FT_U64:
        case EVR_FT_BYTES:
        case EVR_FT_DURATION: *(uint64_t *) p = 1234567890123ull + (uint64_t) salt; break;
        case EVR_FT_U32: *(uint32_t *) p = 42u + (uint32_t) salt; break;
        case EVR_FT_U32_OPT: *(evr_u32opt_t *) p = (evr_u32opt_t) { true, (uint32_t) salt }; break;
        case EVR_FT_I64: *(int64_t *) p = -7 - salt; break;
        case EVR_FT_BOOL: *(bool *) p = true; break;
        case EVR_FT_BIN: {
            evr_bin_t *b = p;
            b->len = 5;
            b->data = evr_malloc(5);
            memcpy(b->data, "a\0\xff\n", 5);
            break;
        }
        case EVR_FT_STRLIST:
            evr_strlist_push(p, "linux");
            evr_strlist_push(p, "x86_64");
            break;
        case EVR_FT_STRMAP:
            evr_strmap_set(p, "GREETING", "hello");
            evr_strmap_set(p, "TARGET", "wörld");
            break;
        case EVR_FT_RECPTR:
            if (f->sub == &evr_spec_type)
                *(evr_spec_t **) p = s_example_spec();
            else {
                evr_event_t *ev = evr_calloc(1, sizeof *ev);
                s_fill_event(ev, EVR_EV_STEP_OUTPUT, 7);
                *(evr_event_t **) p = ev;
            }
            break;
        case EVR_FT_RECMAP: {
            /* `pipeline`'s args: two records, keyed by their first field */
            evr_reclist_t *l = p;
            l->n = 2;
            l->v = evr_calloc(l->n, f->sub->size);
            for (uint32_t k = 0; k < l->n; k++) {
                void *r = evr_reclist_at(f->sub, l, k);
                s_fill(f->sub, r, salt);
                free(*(char **) r);
                *(char **) r = evr_strdup(k ? "MODE" : "TARGET");
            }
            break;
        }
        case EVR_FT_RECLIST: {
            /* only `events` has a list of records in messages */
            evr_reclist_t *l = p;
            l->n = EVR_EV_COUNT_ - 1;
            l->v = evr_calloc(l->n, sizeof(evr_event_t));
            for (uint32_t k = 0; k < l->n; k++)
                s_fill_event(evr_reclist_at(f->sub, l, k), (evr_evtype_t) (k + 1), k + 1);
            break;
        }
        default: break;
        }
    }
}

static evr_spec_t *
s_example_spec(void)
{
    static const char yml[] =
        "pipeline: full\n"
        "image: localhost/evrun-busybox:latest\n"
        "labels: [linux]\n"
        "concurrency: 2\n"
        "parallel: 3\n"
        "queue: { limit: 10, strategy: replace }\n"
        "timeout: 1h30m\n"
        "env: { GREETING: hello }\n"
        "args: { TARGET: { default: world, description: whom }, MODE: }\n"
        "secrets: [DEPLOY_TOKEN]\n"
        "resources:\n"
        "  - { name: src, url: \"http://127.0.0.1:1/src.tar.gz\", path: src }\n"
        "steps:\n"
        "  - name: greet\n"
        "    run: echo \"$GREETING $TARGET\"\n"
        "    timeout: 90s\n"
        "    env: { A: b }\n"
        "    retry: { on: [lost], max: 2 }\n"
        "  - name: test\n"
        "    image: localhost/other:latest\n"
        "    needs: [greet]\n"
        "    run: ./run-tests.sh\n"
        "    artifacts: [out/report.xml]\n";
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *diag = evr_diag_new("full.yml");
    evr_rc_t rc = evr_yaml_load(yml, sizeof yml - 1, spec, diag);
    if (rc)
        fprintf(stderr, "example spec: %s\n", evr_diag_get(diag, 0));
    CHECK(rc == EVR_OK);
    evr_diag_destroy(&diag);
    return spec;
}

/* ---------------------------------------------------------- round trip */

static void
test_roundtrip_messages(void)
{
    for (int t = EVR_MSG_NONE + 1; t < EVR_MSG_COUNT_; t++) {
        evr_msg_t *msg = evr_msg_new((evr_msgtype_t) t);
        s_fill(evr_msgtype_fields((evr_msgtype_t) t), msg, t);
        uint8_t *buf;
        size_t len;
        evr_msg_encode(msg, &buf, &len);
        char hdr[EVR_MSG_HEADER_MAX];
        evr_msg_header(msg->type, hdr);
        evr_msg_t back = { 0 };
        evr_err_t err = { "" };
        evr_rc_t rc = evr_msg_decode(hdr, strlen(hdr), buf, len, &back, NULL, &err);
        if (rc)
            fprintf(stderr, "  %s: %s\n", evr_msgtype_name((evr_msgtype_t) t), err.msg);
        CHECK(rc == EVR_OK);
        CHECK(back.type == msg->type);
        bool eq = evr_rec_equal(evr_msgtype_fields((evr_msgtype_t) t), msg, &back);
        if (!eq)
            fprintf(stderr, "  %s: decoded message differs\n", hdr);
        CHECK(eq);
        /* every field of the type was filled, so every key is on the wire */
        const evr_rectype_t *ft = evr_msgtype_fields((evr_msgtype_t) t);
        for (size_t i = 0; i < ft->nfields; i++)
            CHECK(evr_field_present(&ft->fields[i], (char *) &back + ft->fields[i].off));
        evr_msg_clear(&back);
        free(buf);
        evr_msg_destroy(&msg);
    }
}

static void
test_roundtrip_events(void)
{
    for (int t = EVR_EV_NONE + 1; t < EVR_EV_COUNT_; t++) {
        evr_event_t ev = { 0 };
        s_fill_event(&ev, (evr_evtype_t) t, (uint64_t) t);
        uint8_t *buf;
        size_t len;
        evr_event_encode(&ev, &buf, &len);
        evr_event_t back = { 0 };
        evr_err_t err = { "" };
        evr_rc_t rc = evr_event_decode(buf, len, &back, &err);
        if (rc)
            fprintf(stderr, "  %s: %s\n", evr_evtype_name(ev.type), err.msg);
        CHECK(rc == EVR_OK);
        CHECK(evr_event_kind(&back) == (evr_evtype_t) t);
        CHECK(evr_rec_equal(&evr_event_type, &ev, &back));
        /* encoded in place (the store's LMDB value): the same bytes */
        CHECK(evr_codec_size(&evr_event_type, &ev) == len);
        uint8_t *to = malloc(len);
        evr_codec_encode_to(&evr_event_type, &ev, to, len);
        CHECK(memcmp(to, buf, len) == 0);
        free(to);
        evr_rec_free(&evr_event_type, &back);
        evr_rec_free(&evr_event_type, &ev);
        free(buf);
    }
}

static void
test_copy_equal(void)
{
    evr_spec_t *a = s_example_spec();
    evr_spec_t b = { 0 };
    evr_rec_copy(&evr_spec_type, &b, a);
    CHECK(evr_rec_equal(&evr_spec_type, a, &b));
    free(evr_spec_step(&b, 1)->run);
    evr_spec_step(&b, 1)->run = evr_strdup("changed");
    CHECK(!evr_rec_equal(&evr_spec_type, a, &b));
    evr_rec_free(&evr_spec_type, &b);
    evr_spec_destroy(&a);
    CHECK(a == NULL);
}

/* ------------------------------------------------------------- golden */

typedef struct {
    const char *file;
    evr_msgtype_t type;
} s_golden_t;

static const s_golden_t s_golden[] = {
    { "submit.msgpack", EVR_MSG_SUBMIT },
    { "error.msgpack", EVR_MSG_ERROR },
    { "events.msgpack", EVR_MSG_EVENTS },
    { "welcome.msgpack", EVR_MSG_WELCOME },
};

static bool s_write_golden;

static void
test_golden(void)
{
    for (size_t i = 0; i < EVR_ARRAY_LEN(s_golden); i++) {
        evr_msg_t *msg = evr_msg_new(s_golden[i].type);
        s_fill(evr_msgtype_fields(msg->type), msg, 1);
        uint8_t *buf;
        size_t len;
        evr_msg_encode(msg, &buf, &len);
        char path[1024];
        snprintf(path, sizeof path, "%s/golden/%s", EVR_DATA_DIR, s_golden[i].file);
        if (s_write_golden) {
            FILE *fp = fopen(path, "wb");
            CHECK(fp && fwrite(buf, 1, len, fp) == len);
            if (fp)
                fclose(fp);
        }
        FILE *fp = fopen(path, "rb");
        CHECK(fp != NULL);
        uint8_t gold[1 << 16];
        size_t glen = fp ? fread(gold, 1, sizeof gold, fp) : 0;
        if (fp)
            fclose(fp);
        bool same = glen == len && memcmp(gold, buf, len) == 0;
        if (!same)
            fprintf(stderr, "  %s: encoding differs from the golden frame (%zu vs %zu bytes)\n",
                    path, len, glen);
        CHECK(same);
        evr_msg_t back = { 0 };
        char hdr[EVR_MSG_HEADER_MAX];
        evr_msg_header(msg->type, hdr);
        CHECK(evr_msg_decode(hdr, strlen(hdr), gold, glen, &back, NULL, NULL) == EVR_OK);
        CHECK(evr_rec_equal(evr_msgtype_fields(msg->type), msg, &back));
        evr_msg_clear(&back);
        free(buf);
        evr_msg_destroy(&msg);
    }
}

/*  evr_err_set wrapping the message err already holds (overlapping
    vsnprintf once: glibc repeated the prefix and lost the cause). */
static void
test_err_wraps_itself(void)
{
    evr_err_t err;
    evr_err_set(&err, EVR_ERR_LIMIT, "the submit message is 4200000 bytes");
    CHECK(evr_err_set(&err, EVR_ERR_IO, "cannot send to the broker at %s: %s (%s)", "ipc://x",
                      err.msg, "is evrun-broker running?") == EVR_ERR_IO);
    CHECK_STR(err.msg, "cannot send to the broker at ipc://x: the submit message is 4200000 "
                       "bytes (is evrun-broker running?)");
    /* a wrap past the buffer is cut, still NUL-terminated */
    memset(err.msg, 'a', sizeof err.msg - 1);
    err.msg[sizeof err.msg - 1] = '\0';
    evr_err_set(&err, EVR_ERR_IO, "x: %s", err.msg);
    CHECK(strlen(err.msg) == sizeof err.msg - 1);
    CHECK(strncmp(err.msg, "x: aaa", 6) == 0);
}

/*  A text over its limit is cut on a character and says so ("…" last);
    one within it is left alone; an evr_err_t message too long for it is
    cut the same way, not mid-character and silently. */
static void
test_text_fit(void)
{
    char s[64];
    snprintf(s, sizeof s, "abc");
    CHECK(evr_text_fit(s, 3) == 3);
    CHECK_STR(s, "abc");
    snprintf(s, sizeof s, "abcdefgh");
    CHECK(evr_text_fit(s, 6) == 6);
    CHECK_STR(s, "abc" EVR_CUT_MARK);
    snprintf(s, sizeof s, "ab\xc3\xa9\xc3\xa9xyz");   /* ab é é xyz */
    CHECK(evr_text_fit(s, 7) == 7);
    CHECK_STR(s, "ab\xc3\xa9" EVR_CUT_MARK);
    snprintf(s, sizeof s, "ab\xc3\xa9\xc3\xa9xyz");
    CHECK(evr_text_fit(s, 6) == 5);                     /* not half an é */
    CHECK_STR(s, "ab" EVR_CUT_MARK);
    evr_err_t err;
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[1500] = ' ';
    evr_err_set(&err, EVR_ERR_IO, "cause: %s", big);
    size_t n = strlen(err.msg);
    CHECK(n <= EVR_ERR_MAX - 1 && n >= EVR_ERR_MAX - 4);
    CHECK(!strcmp(err.msg + n - 3, EVR_CUT_MARK));
    CHECK(evr_utf8_valid(err.msg, n));
    CHECK(EVR_ERR_MAX >= EVR_REASON_MAX);   /* an error fits in a reason whole */
}

/*  An event's string over its field's limit (a reason composed of a
    long error) is fitted before it is stored: valid UTF-8 (a stray byte
    becomes '?'), cut on a character and ending with "…"; one within its
    limit is left as it is. */
static void
test_event_fit(void)
{
    evr_event_t *ev = evr_event_new(EVR_EV_STEP_FINISHED);
    char big[1500];
    memset(big, 'r', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big + 1017, "\xe2\x82\xac\xe2\x82\xac", 6);   /* two euros across 1021 */
    big[5] = '\xff';
    ev->data.reason = evr_strdup(big);
    ev->data.step = evr_strdup("build");
    evr_event_fit(ev);
    size_t n = strlen(ev->data.reason);
    CHECK(n <= EVR_REASON_MAX && n >= EVR_REASON_MAX - 3);
    CHECK(!strcmp(ev->data.reason + n - 3, EVR_CUT_MARK));
    CHECK(evr_utf8_valid(ev->data.reason, n));
    CHECK(ev->data.reason[5] == '?');
    CHECK_STR(ev->data.step, "build");
    evr_event_destroy(&ev);
}

static void
test_utf8_clean(void)
{
    /* a character cut at its end ("%.64s"), a stray byte, a byte that
       starts nothing: '?' each; whole characters and ASCII kept */
    char a[] = "ab\xc3";
    evr_utf8_clean(a);
    CHECK_STR(a, "ab?");
    char b[] = "\xe2\x82x\xc3\xa9\x80\xff";
    evr_utf8_clean(b);
    CHECK_STR(b, "??x\xc3\xa9??");
    char c[] = "plain \xe2\x80\xa6 line\nkept";
    evr_utf8_clean(c);
    CHECK_STR(c, "plain \xe2\x80\xa6 line\nkept");
    char d[] = "\xed\xa0\x80";   /* a surrogate is no UTF-8 */
    evr_utf8_clean(d);
    CHECK_STR(d, "???");
}

static void
test_utf8_cut(void)
{
    const char *s = "a\xc3\xa9\xe2\x82\xac" "b";   /* a, e acute (2 bytes), euro (3), b */
    size_t n = strlen(s);   /* 7 */
    CHECK(evr_utf8_cut(s, n, 2, false) == 1);   /* inside the e acute: back to it */
    CHECK(evr_utf8_cut(s, n, 2, true) == 3);    /* or on past it */
    CHECK(evr_utf8_cut(s, n, 5, false) == 3);
    CHECK(evr_utf8_cut(s, n, 5, true) == 6);
    CHECK(evr_utf8_cut(s, n, 3, false) == 3);   /* a boundary stays */
    CHECK(evr_utf8_cut(s, n, 3, true) == 3);
    CHECK(evr_utf8_cut(s, n, 0, false) == 0);
    CHECK(evr_utf8_cut(s, n, 9, false) == n);   /* past the end: all of it */
    CHECK(evr_utf8_cut("\x80\x80", 2, 1, false) == 0);   /* no start: nothing kept */
    CHECK(evr_utf8_cut("\x80\x80", 2, 1, true) == 2);
}

/*  A step's artifacts: the short form on the wire while `when` is
    on_success (as earlier peers read it), the map otherwise; both decode. */
static void
test_artifacts_forms(void)
{
    static const char *yml[] = {
        "pipeline: p\nimage: i\nsteps:\n  - {name: a, run: x, artifacts: [out, b/c]}\n",
        "pipeline: p\nimage: i\nsteps:\n  - name: a\n    run: x\n"
        "    artifacts: {paths: [out, b/c], when: always}\n",
    };
    for (int k = 0; k < 2; k++) {
        evr_spec_t spec = { 0 }, back = { 0 };
        evr_diag_t *diag = evr_diag_new("t.yml");
        CHECK(evr_yaml_load(yml[k], strlen(yml[k]), &spec, diag) == EVR_OK);
        evr_step_t *st = evr_spec_step(&spec, 0);
        CHECK(st->artifacts.present && st->artifacts.paths.n == 2);
        CHECK(st->artifacts.when == (k ? EVR_ARTIFACTS_ALWAYS : EVR_ARTIFACTS_ON_SUCCESS));
        uint8_t *buf;
        size_t len;
        evr_codec_encode(&evr_spec_type, &spec, &buf, &len);
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        CHECK(msgpack_unpack_next(&u, (const char *) buf, len, NULL) == MSGPACK_UNPACK_SUCCESS);
        const msgpack_object *steps = NULL;
        for (uint32_t i = 0; i < u.data.via.map.size; i++)
            if (u.data.via.map.ptr[i].key.via.str.size == 5
                && !memcmp(u.data.via.map.ptr[i].key.via.str.ptr, "steps", 5))
                steps = &u.data.via.map.ptr[i].val;
        CHECK(steps && steps->type == MSGPACK_OBJECT_ARRAY);
        const msgpack_object *s0 = &steps->via.array.ptr[0], *art = NULL;
        for (uint32_t i = 0; i < s0->via.map.size; i++)
            if (s0->via.map.ptr[i].key.via.str.size == 9
                && !memcmp(s0->via.map.ptr[i].key.via.str.ptr, "artifacts", 9))
                art = &s0->via.map.ptr[i].val;
        CHECK(art && art->type == (k ? MSGPACK_OBJECT_MAP : MSGPACK_OBJECT_ARRAY));
        msgpack_unpacked_destroy(&u);
        evr_err_t err;
        CHECK(evr_codec_decode(buf, len, &evr_spec_type, &back, "spec", &err) == EVR_OK);
        CHECK(evr_rec_equal(&evr_spec_type, &spec, &back));
        free(buf);
        evr_rec_free(&evr_spec_type, &spec);
        evr_rec_free(&evr_spec_type, &back);
        evr_diag_destroy(&diag);
    }
}

/*  Encode and decode across the sizes where their buffers change: the
    encoder's stack buffer (512 bytes) and its heap growth past 8 KiB, the
    decoder's kept zone (8 KiB) grown by a large message and used again
    by small ones; a decode on a thread of its own (its zone is freed with
    the thread: the sanitizer build would report a leak). */
static void
s_roundtrip_sizes(void)
{
    evr_msg_t m = { .type = EVR_MSG_ERROR, .code = (char *) EVR_CODE_NOT_FOUND };
    char *text = evr_malloc(EVR_STR_MAX + 1);
    for (size_t n = 0; n <= 4096; n += n < 600 ? 1 : 97) {
        memset(text, 'a' + (int) (n % 26), n);
        text[n] = '\0';
        m.message = text;
        uint8_t *buf;
        size_t len;
        evr_msg_encode(&m, &buf, &len);
        char hdr[EVR_MSG_HEADER_MAX];
        evr_msg_header(m.type, hdr);
        evr_msg_t back = { 0 };
        const char *code;
        evr_err_t err;
        CHECK(evr_msg_decode(hdr, strlen(hdr), buf, len, &back, &code, &err) == EVR_OK);
        CHECK(back.message && strlen(back.message) == n && strcmp(back.message, text) == 0);
        evr_msg_clear(&back);
        free(buf);
    }
    free(text);
    /* a submit of 64 args of 4000 bytes each: ~256 KiB encoded */
    evr_msg_t big = { .type = EVR_MSG_SUBMIT, .job = (char *) JOB_ID, .spec = s_example_spec() };
    char val[4001];
    memset(val, 'v', 4000);
    val[4000] = '\0';
    for (int i = 0; i < 64; i++) {
        char key[16];
        snprintf(key, sizeof key, "K%02d", i);
        evr_strmap_set(&big.args, key, val);
    }
    for (int k = 0; k < 3; k++) {   /* large, then small messages, then large again */
        uint8_t *buf;
        size_t len;
        evr_msg_encode(&big, &buf, &len);
        CHECK(len > 64 * 4000);
        char hdr[EVR_MSG_HEADER_MAX];
        evr_msg_header(big.type, hdr);
        evr_msg_t back = { 0 };
        const char *code;
        evr_err_t err;
        CHECK(evr_msg_decode(hdr, strlen(hdr), buf, len, &back, &code, &err) == EVR_OK);
        CHECK(evr_rec_equal(evr_msgtype_fields(EVR_MSG_SUBMIT), &big, &back));
        evr_msg_clear(&back);
        free(buf);
        if (k == 1)
            continue;
        evr_msg_t small = { .type = EVR_MSG_STATUS, .job = (char *) JOB_ID }, sback = { 0 };
        evr_msg_encode(&small, &buf, &len);
        evr_msg_header(small.type, hdr);
        CHECK(evr_msg_decode(hdr, strlen(hdr), buf, len, &sback, &code, &err) == EVR_OK);
        CHECK_STR(sback.job, JOB_ID);
        evr_msg_clear(&sback);
        free(buf);
    }
    evr_strmap_free(&big.args);
    evr_spec_destroy(&big.spec);
}

static void *
s_roundtrip_thread(void *arg)
{
    (void) arg;
    s_roundtrip_sizes();
    return NULL;
}

static void
test_roundtrip_sizes(void)
{
    s_roundtrip_sizes();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, s_roundtrip_thread, NULL) == 0);
    pthread_join(t, NULL);
}

int
main(int argc, char **argv)
{
    s_write_golden = argc > 1 && strcmp(argv[1], "--write-golden") == 0;
    EVR_TEST_RUN(test_roundtrip_messages);
    EVR_TEST_RUN(test_roundtrip_events);
    EVR_TEST_RUN(test_copy_equal);
    EVR_TEST_RUN(test_golden);
    EVR_TEST_RUN(test_err_wraps_itself);
    EVR_TEST_RUN(test_utf8_cut);
    EVR_TEST_RUN(test_utf8_clean);
    EVR_TEST_RUN(test_text_fit);
    EVR_TEST_RUN(test_event_fit);
    EVR_TEST_RUN(test_artifacts_forms);
    EVR_TEST_RUN(test_roundtrip_sizes);
    EVR_TEST_END();
}
