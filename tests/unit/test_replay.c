/*  test_replay: the fast paths of replay and listing against the full ones.

    evr_eventread (the replay decoder) against evr_event_decode on every
    event type with every field set, on valid encodings that are not the
    canonical ones, and on every truncation and many single-byte changes
    of each event (same error message, or the same event); replay with
    apply (evr_store_replay) against scan + evr_job_apply over a real
    store; and evr_store_list (newest first, filters, the `before` cursor,
    across read transactions) against evr_store_jobs.
*/
#include <lmdb.h>
#include <msgpack.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_codec.h"
#include "evr_eventread.h"
#include "evr_rebuild.h"
#include "evr_stest.h"
#include "evr_store.h"
#include "evr_synth.h"
#include "evr_test.h"


/*  A value for each string field that passes its check. */
static const char *
s_str_for(const char *key)
{
    if (!strcmp(key, "status"))
        return "failed";
    if (!strcmp(key, "stream"))
        return "stderr";
    if (!strcmp(key, "how"))
        return "collected";
    if (!strcmp(key, "runner"))
        return "runner-1.a";
    if (!strcmp(key, "step") || !strcmp(key, "pipeline") || !strcmp(key, "parent_step"))
        return "build_2";
    if (!strcmp(key, "parent_job"))
        return "01HZ0000000000000000000000";
    if (!strcmp(key, "source"))
        return "ci_source";
    if (!strcmp(key, "phase"))
        return "ON_ERROR";
    if (!strcmp(key, "kind"))
        return "tarball";
    if (!strcmp(key, "path"))
        return "out/r\xc3\xa9port.xml";
    if (!strcmp(key, "sha256"))
        return "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    return "r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 out";
}

/*  An event of type t with every field of its table set. */
static evr_event_t *
s_full_event(evr_evtype_t t)
{
    evr_event_t *ev = evr_event_new(t);
    ev->seq = 1234567890123ull;
    ev->time = 1761000000123456789ull;
    if (t != EVR_EV_RUNNER_STARTED && t != EVR_EV_RUNNER_RECOVERED) {
        ev->job = evr_strdup("01JQ7ZK3M8X2V9T4B6N0000042");
        ev->jseq = 70000;
    }
    const evr_rectype_t *dt = evr_evtype_data(t);
    for (size_t i = 0; i < dt->nfields; i++) {
        const evr_field_t *f = &dt->fields[i];
        void *p = (char *) &ev->data + f->off;
        switch (f->type) {
        case EVR_FT_STR: *(char **) p = evr_strdup(s_str_for(f->key)); break;
        case EVR_FT_U32: *(uint32_t *) p = 4000000000u; break;
        case EVR_FT_U32_OPT: *(evr_u32opt_t *) p = (evr_u32opt_t) { true, 0 }; break;
        case EVR_FT_U64:
        case EVR_FT_DURATION: *(uint64_t *) p = 1ull << 40; break;
        case EVR_FT_I64: *(int64_t *) p = -137; break;
        case EVR_FT_BIN: {
            evr_bin_t *b = p;
            b->len = 300;
            b->data = evr_malloc(b->len);
            for (uint32_t k = 0; k < b->len; k++)
                b->data[k] = (uint8_t) (k * 7);
            break;
        }
        case EVR_FT_STRMAP:
            evr_strmap_set(p, "A", "1");
            evr_strmap_set(p, "B_2", "two \xc3\xa9");
            break;
        case EVR_FT_RECPTR: {
            evr_spec_t *spec = evr_spec_new();
            spec->pipeline = evr_strdup("build_2");
            spec->image = evr_strdup("localhost/x:1");
            evr_strlist_push(&spec->labels, "linux");
            spec->steps.n = 3;
            spec->steps.v = evr_calloc(3, sizeof(evr_step_t));
            for (uint32_t k = 0; k < 3; k++) {
                evr_step_t *st = evr_spec_step(spec, k);
                st->name = evr_asprintf("step-%u", k + 1);
                st->run = evr_strdup("echo hi");
                if (k)
                    evr_strlist_push(&st->needs, "step-1");
            }
            spec->on_error.present = true;   /* a fourth step of the job */
            spec->on_error.run = evr_strdup("echo $EVRUN_FAILED_STEPS");
            *(evr_spec_t **) p = spec;
            break;
        }
        default: break;
        }
    }
    return ev;
}

/*  What the fast decoder gives equals the full decode: the header, every
    data field but the spec (its step names only), args (left out) and
    bytes (compared when it was asked for). */
static bool
s_same(const evr_event_t *full, const evr_event_t *fast, bool bytes)
{
    for (size_t i = 0; i < evr_event_type.nfields; i++) {
        const evr_field_t *f = &evr_event_type.fields[i];
        if (f->type != EVR_FT_VARIANT
            && !evr_field_equal(f, (const char *) full + f->off, (const char *) fast + f->off))
            return false;
    }
    const evr_rectype_t *dt = evr_evtype_data(evr_event_kind(full));
    for (size_t i = 0; dt && i < dt->nfields; i++) {
        const evr_field_t *f = &dt->fields[i];
        const char *a = (const char *) &full->data + f->off, *b = (const char *) &fast->data + f->off;
        if (f->type == EVR_FT_STRMAP && !f->check)   /* args: left out; outputs: kept */
            continue;
        if (f->type == EVR_FT_BIN && !bytes) {
            if (fast->data.bytes.len || fast->data.bytes.data)
                return false;
            continue;
        }
        if (f->type == EVR_FT_RECPTR) {
            const evr_spec_t *x = full->data.spec, *y = fast->data.spec;
            if (!x != !y || (x && x->steps.n != y->steps.n)
                || (x && x->on_error.present != y->on_error.present))
                return false;
            for (uint32_t k = 0; x && k < x->steps.n; k++)
                if (strcmp(evr_spec_step(x, k)->name, evr_spec_step(y, k)->name))
                    return false;
            continue;
        }
        if (!evr_field_equal(f, a, b))
            return false;
    }
    return true;
}

/*  Decodes buf both ways and compares.  *accepted_only_fast is set when
    only the fast decoder accepted it (allowed for a job.accepted: it does
    not check the spec's other fields).  Returns false on a mismatch. */
static bool
s_both(evr_eventread_t *rd, const uint8_t *buf, size_t len, bool bytes, bool *fast_only)
{
    evr_event_t full = { 0 };
    evr_err_t e1 = { "" }, e2 = { "" };
    evr_rc_t r1 = evr_event_decode(buf, len, &full, &e1);
    const evr_event_t *fast = NULL;
    evr_rc_t r2 = evr_eventread_decode(rd, buf, len, &fast, &e2);
    bool ok;
    *fast_only = r1 && !r2;
    if (r1 && r2)
        ok = r1 == r2 && strcmp(e1.msg, e2.msg) == 0 && fast == NULL;
    else if (r1)
        ok = evr_event_kind(fast) == EVR_EV_JOB_ACCEPTED;
    else
        ok = !r2 && s_same(&full, fast, bytes);
    if (!ok)
        fprintf(stderr, "  mismatch (len %zu): full %d \"%s\", fast %d \"%s\"\n", len, r1, e1.msg,
                r2, e2.msg);
    evr_rec_free(&evr_event_type, &full);
    return ok;
}

static void
test_every_type(void)
{
    for (int bytes = 0; bytes < 2; bytes++) {
        evr_eventread_t *rd = evr_eventread_new(bytes ? EVR_EVENTREAD_BYTES : 0);
        for (int t = EVR_EV_NONE + 1; t < EVR_EV_COUNT_; t++) {
            evr_event_t *ev = s_full_event((evr_evtype_t) t);
            uint8_t *buf;
            size_t len;
            evr_event_encode(ev, &buf, &len);
            bool fast_only;
            CHECK(s_both(rd, buf, len, bytes, &fast_only) && !fast_only);
            free(buf);
            evr_event_destroy(&ev);
        }
        /* the canonical encoding of every type is read by hand */
        CHECK(evr_eventread_fallbacks(rd) == 0);
        evr_eventread_destroy(&rd);
    }
}

/*  Every prefix of each event, and each byte changed to a few values: the
    fast decoder gives the full decoder's answer (error and message, or
    the same event), never a crash (run under ASan in CI). */
static void
test_truncated_and_changed(void)
{
    static const uint8_t subst[] = { 0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0xa0, 0xc0,
                                     0xc1, 0xc4, 0xcc, 0xd3, 0xd9, 0xdc, 0xdf, 0xff };
    evr_eventread_t *rd = evr_eventread_new(EVR_EVENTREAD_BYTES);
    int bad = 0, fast_only_other = 0, cases = 0;
    for (int t = EVR_EV_NONE + 1; t < EVR_EV_COUNT_; t++) {
        evr_event_t *ev = s_full_event((evr_evtype_t) t);
        uint8_t *buf;
        size_t len;
        evr_event_encode(ev, &buf, &len);
        for (size_t n = 0; n < len; n++) {
            uint8_t *cut = evr_malloc(n ? n : 1);   /* exact size: an over-read shows */
            memcpy(cut, buf, n);
            bool fast_only;
            bad += !s_both(rd, cut, n, true, &fast_only);
            free(cut);
            cases++;
        }
        for (size_t at = 0; at < len; at++)
            for (size_t k = 0; k < sizeof subst; k++) {
                uint8_t *m = evr_malloc(len);
                memcpy(m, buf, len);
                m[at] = subst[k];
                bool fast_only;
                bad += !s_both(rd, m, len, true, &fast_only);
                fast_only_other += fast_only && t != EVR_EV_JOB_ACCEPTED;
                free(m);
                cases++;
            }
        free(buf);
        evr_event_destroy(&ev);
    }
    CHECK(bad == 0);
    CHECK(fast_only_other == 0);
    CHECK(cases > 10000);
    evr_eventread_destroy(&rd);
}

/*  A job id the checks refuse, read by a fresh reader (none checked
    before) and after a good one: refused with the decoder's message. */
static void
test_bad_job_id(void)
{
    const char *bad[] = { "", "01jq7zk3m8x2v9t4b6n0000042", "01JQ7ZK3M8X2V9T4B6N000004!" };
    for (size_t b = 0; b < EVR_ARRAY_LEN(bad); b++)
        for (int warm = 0; warm < 2; warm++) {
            evr_eventread_t *rd = evr_eventread_new(0);
            const evr_event_t *ev;
            evr_err_t err;
            evr_event_t *good = s_full_event(EVR_EV_STEP_QUEUED);
            uint8_t *buf;
            size_t len;
            if (warm) {
                evr_event_encode(good, &buf, &len);
                CHECK(evr_eventread_decode(rd, buf, len, &ev, &err) == EVR_OK);
                free(buf);
            }
            free(good->job);
            good->job = evr_strdup(bad[b]);
            evr_event_encode(good, &buf, &len);
            bool fast_only;
            CHECK(s_both(rd, buf, len, false, &fast_only) && !fast_only);
            CHECK(evr_eventread_decode(rd, buf, len, &ev, &err) == EVR_ERR_PROTO);
            CHECK_CONTAINS(err.msg, "event.job: expected a ULID");
            free(buf);
            evr_event_destroy(&good);
            evr_eventread_destroy(&rd);
        }
}

/*  Valid encodings the encoder does not write: the same event either way. */
static void
test_other_encodings(void)
{
    evr_eventread_t *rd = evr_eventread_new(0);
    for (int variant = 0; variant < 5; variant++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, variant == 2 ? 7 : 6);
        if (variant == 1) {   /* data before type */
            msgpack_pack_str_with_body(&pk, "data", 4);
            msgpack_pack_map(&pk, 2);
            msgpack_pack_str_with_body(&pk, "step", 4);
            msgpack_pack_str_with_body(&pk, "s1", 2);
            msgpack_pack_str_with_body(&pk, "attempt", 7);
            msgpack_pack_uint64(&pk, 2);
        }
        msgpack_pack_str_with_body(&pk, "seq", 3);
        if (variant == 3)
            msgpack_pack_uint64(&pk, 5);   /* fixint written as uint64: 0xcf */
        else
            msgpack_pack_uint8(&pk, 5);
        msgpack_pack_str_with_body(&pk, "job", 3);
        if (variant == 4) {   /* a str8 header for a short string */
            const char hdr[2] = { (char) 0xd9, 26 };
            msgpack_sbuffer_write(&sb, hdr, 2);
            msgpack_sbuffer_write(&sb, "01JQ7ZK3M8X2V9T4B6N0000042", 26);
        }
        else
            msgpack_pack_str_with_body(&pk, "01JQ7ZK3M8X2V9T4B6N0000042", 26);
        msgpack_pack_str_with_body(&pk, "jseq", 4);
        msgpack_pack_int32(&pk, 3);
        msgpack_pack_str_with_body(&pk, "type", 4);
        msgpack_pack_str_with_body(&pk, "step.queued", 11);
        msgpack_pack_str_with_body(&pk, "time", 4);
        msgpack_pack_int64(&pk, 99);
        if (variant == 2) {   /* a key this build does not know */
            msgpack_pack_str_with_body(&pk, "future", 6);
            msgpack_pack_array(&pk, 2);
            msgpack_pack_map(&pk, 0);
            msgpack_pack_double(&pk, 1.5);
        }
        if (variant != 1) {
            msgpack_pack_str_with_body(&pk, "data", 4);
            msgpack_pack_map(&pk, 2);
            msgpack_pack_str_with_body(&pk, "step", 4);
            msgpack_pack_str_with_body(&pk, "s1", 2);
            msgpack_pack_str_with_body(&pk, "attempt", 7);
            msgpack_pack_uint64(&pk, 2);
        }
        bool fast_only;
        CHECK(s_both(rd, (const uint8_t *) sb.data, sb.size, false, &fast_only) && !fast_only);
        const evr_event_t *ev;
        evr_err_t err;
        CHECK(evr_eventread_decode(rd, (const uint8_t *) sb.data, sb.size, &ev, &err) == EVR_OK
              && ev->seq == 5 && ev->jseq == 3 && ev->data.attempt == 2);
        msgpack_sbuffer_destroy(&sb);
    }
    evr_eventread_destroy(&rd);
}

/*  The key lookup compares a key's length and first 8 bytes at once:
    keys sharing those with a known key ("container_ix", "containe",
    "container_idx"), the data's keys in reverse order, and a last key with
    fewer than 8 bytes of input after it (the word is then not loaded
    whole; exact-size buffers, so an over-read shows under ASan).  Also
    the job id met again (the reader's checked copy) and another job's. */
static void
test_key_lookalikes(void)
{
    evr_eventread_t *rd = evr_eventread_new(0);
    static const char *const jobs[] = { "01JQ7ZK3M8X2V9T4B6N0000042", "01JQ7ZK3M8X2V9T4B6N0000042",
                                        "01JQ7ZK3M8X2V9T4B6N0000043" };
    for (int variant = 0; variant < 6; variant++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 6);
        msgpack_pack_str_with_body(&pk, "seq", 3);
        msgpack_pack_uint8(&pk, 7);
        msgpack_pack_str_with_body(&pk, "job", 3);
        msgpack_pack_str_with_body(&pk, jobs[variant % 3], 26);
        msgpack_pack_str_with_body(&pk, "jseq", 4);
        msgpack_pack_uint8(&pk, 4);
        msgpack_pack_str_with_body(&pk, "type", 4);
        msgpack_pack_str_with_body(&pk, "step.started", 12);
        msgpack_pack_str_with_body(&pk, "time", 4);
        msgpack_pack_uint8(&pk, 9);
        msgpack_pack_str_with_body(&pk, "data", 4);
        msgpack_pack_map(&pk, 6);
        msgpack_pack_str_with_body(&pk, "container_ix", 12);   /* unknown: skipped */
        msgpack_pack_str_with_body(&pk, "wrong", 5);
        msgpack_pack_str_with_body(&pk, "containe", 8);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_str_with_body(&pk, "container_idx", 13);
        msgpack_pack_uint8(&pk, 2);
        msgpack_pack_str_with_body(&pk, "container_id", 12);
        msgpack_pack_str_with_body(&pk, "c0ffee", 6);
        if (variant < 3) {   /* ... "step": "s1" last: 7 bytes from its key on */
            msgpack_pack_str_with_body(&pk, "attempt", 7);
            msgpack_pack_uint8(&pk, 2);
            msgpack_pack_str_with_body(&pk, "step", 4);
            msgpack_pack_str_with_body(&pk, "s1", 2);
        }
        else {
            msgpack_pack_str_with_body(&pk, "step", 4);
            msgpack_pack_str_with_body(&pk, "s1", 2);
            msgpack_pack_str_with_body(&pk, "attempt", 7);
            msgpack_pack_uint8(&pk, 2);
        }
        uint8_t *buf = evr_malloc(sb.size);   /* exact size */
        memcpy(buf, sb.data, sb.size);
        bool fast_only;
        CHECK(s_both(rd, buf, sb.size, false, &fast_only) && !fast_only);
        const evr_event_t *ev;
        evr_err_t err;
        CHECK(evr_eventread_decode(rd, buf, sb.size, &ev, &err) == EVR_OK);
        CHECK(ev && strcmp(ev->job, jobs[variant % 3]) == 0 && ev->data.attempt == 2
              && strcmp(ev->data.container_id, "c0ffee") == 0 && strcmp(ev->data.step, "s1") == 0);
        free(buf);
        msgpack_sbuffer_destroy(&sb);
    }
    CHECK(evr_eventread_fallbacks(rd) == 0);   /* all read by hand */
    evr_eventread_destroy(&rd);
}

/* ------------------------------------------------------------- store */

static void
s_append(evr_store_t *st, evr_event_t **evs, size_t n)
{
    evr_err_t err;
    for (size_t i = 0; i < n; i += EVR_STORE_MAX_BATCH) {
        size_t m = n - i < EVR_STORE_MAX_BATCH ? n - i : EVR_STORE_MAX_BATCH;
        evr_rc_t rc = evr_store_append(st, evs + i, m, &err);
        if (rc)
            fprintf(stderr, "  append: %s\n", err.msg);
        CHECK(rc == EVR_OK);
    }
}

typedef struct {
    evr_job_t jobs[64];   /* 41 */
    size_t n;
} s_fold_t;

/*  The reference: every event fully decoded, applied. */
static int
s_fold_full(const evr_event_t *ev, void *arg)
{
    s_fold_t *f = arg;
    if (!ev->job)
        return 0;
    size_t i = 0;
    while (i < f->n && strcmp(f->jobs[i].id, ev->job))
        i++;
    evr_err_t err;
    if (evr_job_apply(&f->jobs[i], ev, &err) == EVR_OK && i == f->n)
        f->n++;
    return 0;
}

/*  An event of job id; step NULL for a job event. */
static evr_event_t *
s_ev(evr_evtype_t t, const char *id, const char *step, uint32_t attempt)
{
    evr_event_t *ev = evr_event_new(t);
    ev->job = evr_strdup(id);
    if (step)
        ev->data.step = evr_strdup(step);
    ev->data.attempt = attempt;
    return ev;
}

/*  A job of two steps through a failure and a retry, a recovery, output
    on both streams, a pause, a skip; its events into evs, their count. */
static size_t
s_winding_job(const char *id, evr_event_t **evs)
{
    size_t k = 0;
    evr_event_t *acc = s_full_event(EVR_EV_JOB_ACCEPTED);   /* spec: step-1..3 */
    free(acc->job);
    acc->job = evr_strdup(id);
    acc->seq = acc->jseq = 0;
    acc->time = 0;
    evs[k++] = acc;
    evs[k++] = s_ev(EVR_EV_JOB_STARTED, id, NULL, 0);
    evs[k - 1]->data.runner = evr_strdup("r1");
    evs[k++] = s_ev(EVR_EV_STEP_QUEUED, id, "step-1", 1);
    evs[k++] = s_ev(EVR_EV_STEP_STARTING, id, "step-1", 1);
    evs[k - 1]->data.container = evr_strdup("evrun-x-step-1-1");
    evs[k++] = s_ev(EVR_EV_STEP_STARTED, id, "step-1", 1);
    evs[k - 1]->data.container_id = evr_strdup("c0ffee");
    evs[k++] = s_ev(EVR_EV_STEP_OUTPUT, id, "step-1", 1);
    evs[k - 1]->data.stream = evr_strdup("stdout");
    evs[k - 1]->data.raw = 5;
    evs[k - 1]->data.bytes.data = (uint8_t *) evr_strdup("hello");
    evs[k - 1]->data.bytes.len = 5;
    evs[k++] = s_ev(EVR_EV_STEP_FINISHED, id, "step-1", 1);
    evs[k - 1]->data.exit_code = 1;
    evs[k - 1]->data.status = evr_strdup("failed");
    evs[k - 1]->data.reason = evr_strdup("boom");
    evs[k++] = s_ev(EVR_EV_STEP_QUEUED, id, "step-1", 2);
    evs[k++] = s_ev(EVR_EV_STEP_STARTING, id, "step-1", 2);
    evs[k - 1]->data.container = evr_strdup("evrun-x-step-1-2");
    evs[k++] = s_ev(EVR_EV_STEP_RECOVERED, id, "step-1", 2);
    evs[k - 1]->data.how = evr_strdup("reattached");
    evs[k++] = s_ev(EVR_EV_STEP_STARTED, id, "step-1", 2);
    evs[k - 1]->data.container_id = evr_strdup("beef");
    evs[k++] = s_ev(EVR_EV_STEP_OUTPUT, id, "step-1", 2);
    evs[k - 1]->data.stream = evr_strdup("stderr");
    evs[k - 1]->data.raw = 3;
    evs[k - 1]->data.bytes.data = (uint8_t *) evr_strdup("***");
    evs[k - 1]->data.bytes.len = 3;
    evs[k++] = s_ev(EVR_EV_JOB_PAUSED, id, NULL, 0);
    evs[k++] = s_ev(EVR_EV_STEP_FINISHED, id, "step-1", 2);
    evs[k - 1]->data.duration = 10;
    evs[k++] = s_ev(EVR_EV_JOB_RESUMED, id, NULL, 0);
    evs[k++] = s_ev(EVR_EV_STEP_SKIPPED, id, "step-2", 0);
    evs[k - 1]->data.reason = evr_strdup("not needed");
    evs[k++] = s_ev(EVR_EV_STEP_SKIPPED, id, "step-3", 0);
    evs[k - 1]->data.reason = evr_strdup("not needed");
    evs[k++] = s_ev(EVR_EV_JOB_FINISHED, id, NULL, 0);
    evs[k - 1]->data.status = evr_strdup("succeeded");
    return k;
}

/*  Replay with apply over a store of varied jobs (failures, retries, a
    recovery, skips, cancels, a pause, runner events, output on both
    streams) equals the full decode and apply, job by job. */
static void
test_replay_equals_full(void)
{
    char *dir = evr_stest_dir("replay");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    evr_event_t *r = evr_event_new(EVR_EV_RUNNER_STARTED);
    r->data.runner = evr_strdup("r1");
    r->data.version = evr_strdup("1");
    s_append(st, &r, 1);
    evr_event_destroy(&r);
    for (int j = 0; j < 40; j++) {
        char id[32];
        snprintf(id, sizeof id, "01JQ7ZK3M8X2V9T4B6N%07d", j + 1);
        size_t n;
        evr_event_t **evs = evr_synth_job(id, 1 + (uint32_t) j % 5, (uint32_t) (j * 997) % 20000,
                                          1 + (uint32_t) j * 131 % 5000, &n);
        if (j % 3 == 1) {   /* the last step fails, with a reason, exit code below 0 */
            evr_event_t *fin = evs[n - 2];
            free(fin->data.status);
            fin->data.status = evr_strdup("failed");
            fin->data.exit_code = -9;
            fin->data.reason = evr_strdup("killed \xe2\x80\x94 out of memory");
            free(evs[n - 1]->data.status);
            evs[n - 1]->data.status = evr_strdup("failed");
        }
        if (j % 7 == 3) {   /* cancelled before its end: the rest stays unfinished */
            evr_event_t *c = evr_event_new(EVR_EV_JOB_CANCEL_REQUESTED);
            c->job = evr_strdup(id);
            c->data.reason = evr_strdup("by user");
            evr_event_destroy(&evs[n - 1]);
            evs[n - 1] = c;
        }
        s_append(st, evs, n);
        evr_synth_free(evs, n);
    }
    evr_event_t *w[32];
    size_t nw = s_winding_job("01JQ7ZK3M8X2V9T4B6P0000001", w);
    s_append(st, w, nw);
    for (size_t i = 0; i < nw; i++)
        evr_event_destroy(&w[i]);
    r = evr_event_new(EVR_EV_RUNNER_RECOVERED);
    r->data.jobs = 3;
    s_append(st, &r, 1);
    evr_event_destroy(&r);
    s_fold_t *full = evr_calloc(1, sizeof *full);
    CHECK(evr_store_scan(st, 1, 0, s_fold_full, full, &err) == EVR_OK);
    evr_rebuild_t *rb;
    CHECK(evr_rebuild_new(st, 0, NULL, NULL, &rb, &err) == EVR_OK);
    CHECK(full->n == 41 && evr_rebuild_count(rb) == 41 && evr_rebuild_illegal(rb) == 0);
    /* the winding job went where its events say */
    const evr_job_t *wj = evr_rebuild_job(rb, "01JQ7ZK3M8X2V9T4B6P0000001");
    const evr_stepstate_t *s1 = wj ? evr_job_find_step(wj, "step-1") : NULL;
    CHECK(wj && wj->status == EVR_JOB_SUCCEEDED && wj->last_jseq == nw && s1
          && s1->status == EVR_STEP_SUCCEEDED && s1->attempt == 2 && s1->recoveries == 1
          && s1->out_stderr == 3 && s1->out_stdout == 0 && !strcmp(s1->container_id, "beef")
          && evr_job_steps_done(wj) == 3);
    for (size_t i = 0; i < full->n; i++) {
        const evr_job_t *j = evr_rebuild_job(rb, full->jobs[i].id);
        CHECK(j && evr_rec_equal(&evr_job_type, j, &full->jobs[i]));
        evr_rec_free(&evr_job_type, &full->jobs[i]);
    }
    evr_rebuild_destroy(&rb);
    free(full);
    evr_rebuild_verify_t v;
    CHECK(evr_rebuild_verify(st, NULL, NULL, &v, &err) == EVR_OK && v.differences == 0
          && v.jobs == 41);
    evr_store_destroy(&st);
    free(dir);
}

/*  A stored event that does not decode stops replay with the full
    decoder's message, naming its seq. */
static void
test_replay_bad_event(void)
{
    char *dir = evr_stest_dir("bad");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    size_t n;
    evr_event_t **evs = evr_synth_job("01JQ7ZK3M8X2V9T4B6N0000001", 1, 0, 1, &n);
    s_append(st, evs, n);
    evr_synth_free(evs, n);
    evr_store_destroy(&st);
    /* cut event 2 short behind the store's back */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    CHECK(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 8);
    CHECK(mdb_env_open(env, dir, 0, 0600) == 0);
    CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    CHECK(mdb_dbi_open(txn, "events", 0, &dbi) == 0);
    uint8_t key[8] = { 0, 0, 0, 0, 0, 0, 0, 2 };
    MDB_val k = { 8, key }, v;
    CHECK(mdb_get(txn, dbi, &k, &v) == 0);
    MDB_val cut = { v.mv_size - 3, evr_malloc(v.mv_size) };
    memcpy(cut.mv_data, v.mv_data, cut.mv_size);
    CHECK(mdb_put(txn, dbi, &k, &cut, 0) == 0);
    free(cut.mv_data);
    CHECK(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
    evr_rebuild_t *rb = NULL;
    CHECK(evr_rebuild_new(st, 0, NULL, NULL, &rb, &err) == EVR_ERR_STORE && !rb);
    CHECK_CONTAINS(err.msg, "store: event 2 does not decode: truncated message");
    evr_store_destroy(&st);
    free(dir);
}

typedef struct {
    char (*ids)[EVR_ULID_LEN + 1];
    evr_job_status_t *st;
    size_t n, cap;
} s_ids_t;

static int
s_take(const char *id, evr_job_status_t status, void *arg)
{
    s_ids_t *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->ids = evr_realloc(l->ids, l->cap * sizeof *l->ids);
        l->st = evr_realloc(l->st, l->cap * sizeof *l->st);
    }
    snprintf(l->ids[l->n], sizeof l->ids[l->n], "%s", id);
    l->st[l->n++] = status;
    return 0;
}

static int
s_take_job(const evr_job_t *job, void *arg)
{
    return s_take(job->id, job->status, arg);
}

/*  evr_store_list over more jobs than one read transaction takes: newest
    first, the same jobs evr_store_jobs has (status read without a
    decode), filters, limit, the `before` cursor paging through all. */
static void
test_list(void)
{
    char *dir = evr_stest_dir("list");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    enum { N = 4096 + 905 };   /* EVR_STORE_CHUNK (evr_store_int.h) and more */
    evr_event_t **all = evr_calloc(7 * N, sizeof *all);   /* 7 events a job at most */
    size_t total = 0;
    for (int j = 0; j < N; j++) {
        char id[32];
        snprintf(id, sizeof id, "01JQ7ZK3M8X2V9T4B6N%07d", j + 1);
        size_t n;
        evr_event_t **evs = evr_synth_job(id, 1, 0, 1, &n);
        if (j % 4 == 1)
            evr_event_destroy(&evs[--n]);   /* still running */
        if (j % 5 == 2) {
            free(evs[0]->data.pipeline);
            evs[0]->data.pipeline = evr_strdup("other");
        }
        memcpy(all + total, evs, n * sizeof *evs);
        total += n;
        free(evs);
    }
    s_append(st, all, total);
    evr_synth_free(all, total);

    s_ids_t ref = { 0 }, got = { 0 };
    CHECK(evr_store_jobs(st, EVR_JOB_NONE, s_take_job, &ref, &err) == EVR_OK && ref.n == N);
    CHECK(evr_store_list(st, EVR_JOB_NONE, NULL, NULL, 100000, s_take, &got, &err) == EVR_OK);
    int wrong = 0;
    for (size_t i = 0; i < got.n && got.n == ref.n; i++)
        wrong += strcmp(got.ids[i], ref.ids[ref.n - 1 - i]) != 0
              || got.st[i] != ref.st[ref.n - 1 - i];
    CHECK(got.n == N && wrong == 0);

    /* a page: the newest 100 */
    got.n = 0;
    CHECK(evr_store_list(st, EVR_JOB_NONE, NULL, NULL, 100, s_take, &got, &err) == EVR_OK);
    CHECK(got.n == 100 && !strcmp(got.ids[0], ref.ids[N - 1])
          && !strcmp(got.ids[99], ref.ids[N - 100]));

    /* filters: running jobs of pipeline "other", paged 7 at a time */
    size_t want = 0;
    for (int j = 0; j < N; j++)
        want += j % 4 == 1 && j % 5 == 2;
    size_t seen = 0, pages = 0;
    char before[EVR_ULID_LEN + 1] = "";
    wrong = 0;
    for (;;) {
        got.n = 0;
        CHECK(evr_store_list(st, EVR_JOB_RUNNING, "other", before[0] ? before : NULL, 7, s_take,
                             &got, &err) == EVR_OK);
        for (size_t i = 0; i < got.n; i++) {
            int j = atoi(got.ids[i] + 19) - 1;
            wrong += got.st[i] != EVR_JOB_RUNNING || !(j % 4 == 1 && j % 5 == 2)
                  || (before[0] && strcmp(got.ids[i], before) >= 0);
            if (i)
                wrong += strcmp(got.ids[i], got.ids[i - 1]) >= 0;
        }
        seen += got.n;
        pages++;
        if (got.n < 7)
            break;
        memcpy(before, got.ids[got.n - 1], sizeof before);
    }
    CHECK(wrong == 0 && seen == want && pages == want / 7 + 1);

    /* limit 0, a bad cursor */
    got.n = 0;
    CHECK(evr_store_list(st, EVR_JOB_NONE, NULL, NULL, 0, s_take, &got, &err) == EVR_OK
          && got.n == 0);
    CHECK(evr_store_list(st, EVR_JOB_NONE, NULL, "nope", 10, s_take, &got, &err)
          == EVR_ERR_PROTO);
    CHECK_CONTAINS(err.msg, "not a job id");
    /* a cursor past the newest, and below the oldest */
    got.n = 0;
    CHECK(evr_store_list(st, EVR_JOB_NONE, NULL, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ", 3, s_take, &got,
                         &err) == EVR_OK && got.n == 3 && !strcmp(got.ids[0], ref.ids[N - 1]));
    got.n = 0;
    CHECK(evr_store_list(st, EVR_JOB_NONE, NULL, ref.ids[0], 3, s_take, &got, &err) == EVR_OK
          && got.n == 0);
    free(ref.ids);
    free(ref.st);
    free(got.ids);
    free(got.st);
    evr_store_destroy(&st);
    free(dir);
}

/*  A projection that does not decode stops the listing with the
    decoder's message, naming the job; one the listing passes over before
    it stops (the page is full) is not read. */
static void
test_list_bad_projection(void)
{
    char *dir = evr_stest_dir("listbad");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    for (int j = 0; j < 3; j++) {
        char id[32];
        snprintf(id, sizeof id, "01JQ7ZK3M8X2V9T4B6N%07d", j + 1);
        size_t n;
        evr_event_t **evs = evr_synth_job(id, 1, 0, 1, &n);
        s_append(st, evs, n);
        evr_synth_free(evs, n);
    }
    evr_store_destroy(&st);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    CHECK(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 8);
    CHECK(mdb_env_open(env, dir, 0, 0600) == 0);
    CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    CHECK(mdb_dbi_open(txn, "jobs", 0, &dbi) == 0);
    MDB_val k = { 26, "01JQ7ZK3M8X2V9T4B6N0000002" }, v = { 3, "\x81\xa2id" };
    CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);   /* a map whose one value is missing */
    CHECK(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
    s_ids_t got = { 0 };
    CHECK(evr_store_list(st, EVR_JOB_NONE, NULL, NULL, 1, s_take, &got, &err) == EVR_OK
          && got.n == 1);
    CHECK(evr_store_list(st, EVR_JOB_NONE, NULL, NULL, 10, s_take, &got, &err)
          == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "store: projection of job 01JQ7ZK3M8X2V9T4B6N0000002: "
                            "truncated message");
    free(got.ids);
    free(got.st);
    evr_store_destroy(&st);
    free(dir);
}

int
main(void)
{
    if (!evr_stest_begin("replay"))
        return 1;
    EVR_TEST_RUN(test_every_type);
    EVR_TEST_RUN(test_truncated_and_changed);
    EVR_TEST_RUN(test_bad_job_id);
    EVR_TEST_RUN(test_other_encodings);
    EVR_TEST_RUN(test_key_lookalikes);
    EVR_TEST_RUN(test_replay_equals_full);
    EVR_TEST_RUN(test_replay_bad_event);
    EVR_TEST_RUN(test_list);
    EVR_TEST_RUN(test_list_bad_projection);
    evr_stest_rm_rf(evr_stest_root);
    EVR_TEST_END();
}
