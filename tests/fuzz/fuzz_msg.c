/*  fuzz_msg: libFuzzer target for the bus message and event decoders.

    The input is split into a header frame and a body: the first byte
    gives the header length (modulo EVR_MSG_HEADER_MAX + 16, so lengths
    just over the limit are tried too), the next that many bytes are the
    header, the rest is the msgpack body.  Each part is copied into its
    own exact-size allocation so an over-read of either is caught.

    Checked beyond "no crash, no leak":
    - a failed decode leaves the message zeroed, says why and gives a code;
      evr_msg_peek then reads of it only a valid job id, a name as pipeline,
      a dispatch's spec whose stub is small;
    - an accepted header is exactly "evrun1 <type>" (PROTOCOL.md);
    - an accepted message re-encodes to bytes that decode again to an equal
      message, whose encoding is the same bytes (the encoding is canonical);
    - the same for the body decoded as a bare event;
    - the replay decoder (evr_eventread) gives the full decoder's answer:
      the same error message, or the same event (all but what it leaves
      out: the spec beyond its step names, args); it may accept only a
      job.accepted the full decoder refuses (for its spec or args).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_codec.h"
#include "evr_event.h"
#include "evr_eventread.h"
#include "evr_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_CHECK(cond, ...)                                                                       \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_msg: check failed: %s: ", #cond);                              \
            fprintf(stderr, __VA_ARGS__);                                                        \
            fprintf(stderr, "\n");                                                               \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static bool
s_all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/*  What a refused message still says (evr_msg_peek, what a runner reads
    of a dispatch it cannot decode): a job only when it is a ULID as the
    wire wants it, a pipeline only when it is a name, a spec only of a
    dispatch, and its stub (what the runner records) small. */
static void
s_check_peek(const char *hdr, size_t hlen, const uint8_t *body, size_t blen)
{
    evr_msg_peek_t pk;
    evr_msg_peek(hdr, hlen, body, blen, &pk);
    S_CHECK(!pk.job[0] || !evr_ulid_problem(pk.job), "peek: job \"%s\"", pk.job);
    S_CHECK(!pk.pipeline[0] || evr_spec_name_ok(pk.pipeline), "peek: pipeline \"%s\"",
            pk.pipeline);
    S_CHECK(!pk.spec || pk.type == EVR_MSG_DISPATCH, "peek: a spec of type %d", (int) pk.type);
    if (pk.spec) {
        evr_spec_t *stub = evr_spec_stub(pk.spec);
        S_CHECK(evr_codec_size(&evr_spec_type, stub) <= EVR_SPEC_MAX_BYTES,
                "peek: a stub of %zu bytes", evr_codec_size(&evr_spec_type, stub));
        evr_spec_destroy(&stub);
    }
    evr_msg_peek_clear(&pk);
}

static void
s_check_msg(const char *hdr, size_t hlen, const uint8_t *body, size_t blen)
{
    evr_msg_t msg = { 0 };
    const char *code = NULL;
    evr_err_t err = { "" };
    evr_rc_t rc = evr_msg_decode(hdr, hlen, body, blen, &msg, &code, &err);
    if (rc) {
        S_CHECK(err.msg[0] != '\0', "decode failed (%s) without a message", evr_strerror(rc));
        S_CHECK(code != NULL, "decode failed without a code: %s", err.msg);
        S_CHECK(s_all_zero(&msg, sizeof msg), "msg not left zeroed after: %s", err.msg);
        s_check_peek(hdr, hlen, body, blen);
        return;
    }
    const evr_rectype_t *fields = evr_msgtype_fields(msg.type);
    S_CHECK(fields != NULL, "decoded type %d has no table", (int) msg.type);
    /* PROTOCOL.md: the header is exactly "evrun1 <type>" */
    char hdr2[EVR_MSG_HEADER_MAX];
    evr_msg_header(msg.type, hdr2);
    S_CHECK(hlen == strlen(hdr2) && memcmp(hdr, hdr2, hlen) == 0,
            "header of %zu bytes accepted as \"%s\"", hlen, hdr2);

    uint8_t *buf = NULL;
    size_t len = 0;
    evr_msg_encode(&msg, &buf, &len);
    evr_msg_t back = { 0 };
    err.msg[0] = '\0';
    rc = evr_msg_decode(hdr2, strlen(hdr2), buf, len, &back, &code, &err);
    S_CHECK(rc == EVR_OK, "%s: re-encoded message rejected: %s", hdr2, err.msg);
    S_CHECK(back.type == msg.type, "%s: type changed to %d", hdr2, (int) back.type);
    S_CHECK(evr_rec_equal(fields, &msg, &back), "%s: round trip changed the message", hdr2);

    uint8_t *buf2 = NULL;
    size_t len2 = 0;
    evr_msg_encode(&back, &buf2, &len2);
    S_CHECK(len2 == len && memcmp(buf, buf2, len) == 0, "%s: encoding not canonical", hdr2);

    free(buf2);
    free(buf);
    evr_msg_clear(&back);
    evr_msg_clear(&msg);
}

/*  The replay decoder rd against the full decode of the same body (rc,
    err, ev: the full decoder's answer). */
static void
s_check_eventread(evr_eventread_t *rd, const uint8_t *body, size_t blen, evr_rc_t rc,
                  const evr_err_t *err, const evr_event_t *ev)
{
    const evr_event_t *fast = NULL;
    evr_err_t ferr = { "" };
    evr_rc_t frc = evr_eventread_decode(rd, body, blen, &fast, &ferr);
    if (rc && frc) {
        S_CHECK(frc == rc && strcmp(ferr.msg, err->msg) == 0 && !fast,
                "eventread error \"%s\" where the decoder says \"%s\"", ferr.msg, err->msg);
        return;
    }
    S_CHECK(!frc, "eventread refused what the decoder took: %s", ferr.msg);
    if (rc) {
        S_CHECK(evr_event_kind(fast) == EVR_EV_JOB_ACCEPTED,
                "eventread took a %s the decoder refuses: %s",
                evr_evtype_name(evr_event_kind(fast)), err->msg);
        return;
    }
    for (size_t i = 0; i < evr_event_type.nfields; i++) {
        const evr_field_t *f = &evr_event_type.fields[i];
        S_CHECK(f->type == EVR_FT_VARIANT
                    || evr_field_equal(f, (const char *) ev + f->off, (const char *) fast + f->off),
                "eventread: %s differs", f->key);
    }
    const evr_rectype_t *dt = evr_evtype_data(evr_event_kind(ev));
    for (size_t i = 0; dt && i < dt->nfields; i++) {
        const evr_field_t *f = &dt->fields[i];
        if (f->type == EVR_FT_STRMAP)
            continue;
        if (f->type == EVR_FT_RECPTR) {
            const evr_spec_t *a = ev->data.spec, *b = fast->data.spec;
            S_CHECK(a && b && a->steps.n == b->steps.n, "eventread: steps differ");
            for (uint32_t k = 0; k < a->steps.n; k++)
                S_CHECK(!strcmp(evr_spec_step(a, k)->name, evr_spec_step(b, k)->name),
                        "eventread: step %u's name differs", k);
            continue;
        }
        S_CHECK(evr_field_equal(f, (const char *) &ev->data + f->off,
                                (const char *) &fast->data + f->off),
                "eventread: data.%s differs", f->key);
    }
}

static void
s_check_event(const uint8_t *body, size_t blen)
{
    evr_event_t ev = { 0 };
    evr_err_t err = { "" };
    evr_rc_t rc = evr_event_decode(body, blen, &ev, &err);
    /* a reader that read the inputs before (as replay reuses one), and a
       fresh one (nothing remembered from an event before) */
    static evr_eventread_t *warm;
    if (!warm)
        warm = evr_eventread_new(EVR_EVENTREAD_BYTES);
    evr_eventread_t *fresh = evr_eventread_new(EVR_EVENTREAD_BYTES);
    s_check_eventread(warm, body, blen, rc, &err, &ev);
    s_check_eventread(fresh, body, blen, rc, &err, &ev);
    evr_eventread_destroy(&fresh);
    if (rc) {
        S_CHECK(err.msg[0] != '\0', "event decode failed (%s) without a message",
                evr_strerror(rc));
        S_CHECK(s_all_zero(&ev, sizeof ev), "event not left zeroed after: %s", err.msg);
        return;
    }
    S_CHECK(evr_event_kind(&ev) != EVR_EV_NONE, "accepted an event of no type");
    uint8_t *buf = NULL;
    size_t len = 0;
    evr_event_encode(&ev, &buf, &len);
    evr_event_t back = { 0 };
    err.msg[0] = '\0';
    rc = evr_event_decode(buf, len, &back, &err);
    S_CHECK(rc == EVR_OK, "re-encoded event rejected: %s", err.msg);
    S_CHECK(evr_rec_equal(&evr_event_type, &ev, &back), "event round trip changed it");
    free(buf);
    evr_rec_free(&evr_event_type, &back);
    evr_rec_free(&evr_event_type, &ev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t hlen = data[0] % (EVR_MSG_HEADER_MAX + 16);
    if (hlen > size - 1)
        hlen = size - 1;
    size_t blen = size - 1 - hlen;

    char *hdr = malloc(hlen ? hlen : 1);
    uint8_t *body = malloc(blen ? blen : 1);
    if (!hdr || !body)
        abort();
    memcpy(hdr, data + 1, hlen);
    memcpy(body, data + 1 + hlen, blen);

    s_check_msg(hdr, hlen, body, blen);
    s_check_event(body, blen);

    free(body);
    free(hdr);
    return 0;
}
