/*  test_codec_malformed: what the codec refuses, and what is read of it
    anyway: a table of malformed inputs must each be rejected with the
    expected code and reason; the size limits, unknown keys (skipped and
    counted), the nesting depth, a spec's checks where a message is
    decoded, error messages that stay UTF-8, and the peek at a message
    that cannot be decoded.  The round trips and golden frames are in
    test_codec.c.
*/
#include <jansson.h>
#include <msgpack.h>

#include "evr_codec.h"
#include "evr_msg.h"
#include "evr_test.h"
#include "evr_yaml.h"

#define JOB_ID "01JQ7ZK3M8X2V9T4B6N0C5D7EF"

/* ---------------------------------------------------------- malformed */

/*  JSON (as written in the table) -> msgpack, so cases stay readable.
    Strings starting with "bin:" become bin values. */
static void
s_pack_json(msgpack_packer *pk, json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            msgpack_pack_str(pk, strlen(k));
            msgpack_pack_str_body(pk, k, strlen(k));
            s_pack_json(pk, v);
        }
        break;
    }
    case JSON_ARRAY: {
        msgpack_pack_array(pk, json_array_size(j));
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) s_pack_json(pk, v);
        break;
    }
    case JSON_STRING: {
        const char *s = json_string_value(j);
        size_t n = json_string_length(j);
        if (strncmp(s, "bin:", 4) == 0) {
            msgpack_pack_bin(pk, n - 4);
            msgpack_pack_bin_body(pk, s + 4, n - 4);
        }
        else {
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, s, n);
        }
        break;
    }
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(j)); break;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(j)); break;
    case JSON_TRUE: msgpack_pack_true(pk); break;
    case JSON_FALSE: msgpack_pack_false(pk); break;
    case JSON_NULL: msgpack_pack_nil(pk); break;
    }
}

typedef struct {
    const char *header;
    const char *json;       /* body as JSON; NULL when raw is used */
    const char *raw;        /* body as hex */
    const char *code;       /* expected error code */
    const char *reason;     /* expected substring of the error message */
} s_bad_t;

#define J JOB_ID
static const s_bad_t s_bad[] = {
    { "evrun1 cancel", "{\"job\": 17}", NULL, "bad_request", "cancel.job: expected str, got int" },
    { "evrun1 cancel", "{}", NULL, "bad_request", "cancel: missing required field \"job\"" },
    { "evrun1 cancel", "{\"job\": \"01JQ7ZK3M8X2V9T4B6N0C5D7EFX\"}", NULL, "too_large", "cancel.job: string of 27 bytes exceeds the limit of 26" },
    { "evrun1 cancel", "{\"job\": \"01JQ7ZK3M8X2V9T4B6N0C5D7EU\"}", NULL, "bad_request", "cancel.job: expected a ULID: 'U' at position 26 is not Crockford base32" },
    { "evrun1 cancel", "{\"job\": \"01jq7zk3m8x2v9t4b6n0c5d7ef\"}", NULL, "bad_request", "cancel.job: expected a ULID in upper case" },
    { "evrun1 events", "{\"events\": [{\"seq\": 1, \"jseq\": 4, \"type\": \"runner.started\", \"time\": 1, \"data\": {\"runner\": \"r\", \"version\": \"1\"}}]}", NULL, "bad_request", "events.events[0]: jseq: runner events carry no per-job seq" },
    { "evrun1 events", "{\"events\": [{\"seq\": 1, \"type\": \"runner.started\", \"time\": 1, \"data\": {\"runner\": \"r 1\", \"version\": \"1\"}}]}", NULL, "bad_request", "data.runner: expected letters" },
    { "evrun1 frobnicate", "{}", NULL, "unknown_type", "unknown message type \"frobnicate\"" },
    { "evrun2 submit", "{}", NULL, "bad_request", "header: expected \"evrun1 <type>\"" },
    { "evrun1", "{}", NULL, "bad_request", "header" },
    { "evrun1 ack", "[1]", NULL, "bad_request", "ack: expected map, got array" },
    { "evrun1 submit", "{\"job\": \"01JQ7ZK3M8X2V9T4B6N0C5D7EF\", \"spec\": {\"pipeline\": \"p\", \"image\": \"i\", \"steps\": [{\"name\": \"a\", \"run\": \"x\", \"artifacts\": 5}]}}", NULL, "bad_request", "submit.spec.steps[0].artifacts: expected map or array, got int" },
    { "evrun1 ack", "{\"seq\": -1}", NULL, "bad_request", "ack.seq: expected non-negative int" },
    { "evrun1 credit", "{\"credit\": 8589934592}", NULL, "too_large", "credit.credit: 8589934592 exceeds the 32-bit range" },
    { "evrun1 goodbye", "{\"reason\": \"drained\"}", NULL, "bad_request", "goodbye: missing required field \"seq\"" },
    { "evrun1 goodbye", "{\"seq\": 3, \"reason\": 7}", NULL, "bad_request", "goodbye.reason: expected str, got int" },
    { "evrun1 runner", "{\"runner\": \"r\", \"capacity\": 1, \"state\": \"gone\"}", NULL, "bad_request", "runner.state: expected one of idle, busy, draining, lost, stopped" },
    { "evrun1 control", "{\"command\": \"explode\"}", NULL, "bad_request", "control.command: expected one of cancel" },
    { "evrun1 error", "{\"code\": \"nope\", \"message\": \"x\"}", NULL, "bad_request", "error.code: unknown error code" },
    { "evrun1 jobs", "{\"status\": \"weird\"}", NULL, "bad_request", "jobs.status: expected one of" },
    { "evrun1 drain", "{\"runner\": \"bad runner\"}", NULL, "bad_request", "drain.runner: expected letters" },
    { "evrun1 submit", "{\"job\": \"" J "\", \"spec\": {\"pipeline\": \"p\"}}", NULL, "bad_request", "submit.spec: missing required field \"steps\"" },
    { "evrun1 submit", "{\"job\": \"" J "\", \"spec\": {\"pipeline\": \"p\", \"steps\": [{\"name\": \"a\", \"run\": 5}]}}", NULL, "bad_request", "submit.spec.steps[0].run: expected str, got int" },
    { "evrun1 submit", "{\"job\": \"" J "\", \"spec\": {\"pipeline\": \"p\", \"image\": \"i\", \"steps\": [{\"name\": \"a\", \"run\": \"x\", \"needs\": [\"b\"]}]}}", NULL, "bad_request", "submit.spec: invalid pipeline: steps[0].needs[0]: unknown step \"b\"" },
    { "evrun1 submit", "{\"job\": \"" J "\", \"args\": {\"A\": 1}}", NULL, "bad_request", "submit.args.A: expected str, got int" },
    { "evrun1 submit", "{\"job\": \"" J "\", \"labels\": [\"x\", \"\"]}", NULL, "bad_request", "submit.labels: expected names: letters, digits, _ . - (at most 64 bytes each), got \"\" at [1]" },
    /* a demand's labels name the item refused, as a submit's */
    { "evrun1 demand", "{\"job\": \"" J "\", \"labels\": [\"a\", \"executor:\"]}", NULL, "bad_request", "demand.labels: expected labels: letters, digits, _ . - (at most 64 bytes each), or executor:NAME, got \"executor:\" at [1]" },
    /* a list of labels is a set: a repeat is refused, naming it and its first */
    { "evrun1 submit", "{\"job\": \"" J "\", \"labels\": [\"gpu\", \"x\", \"gpu\"]}", NULL, "bad_request", "submit.labels: \"gpu\" at [2] repeats [0]" },
    { "evrun1 start", "{\"job\": \"" J "\", \"pipeline\": \"p\", \"labels\": [\"a\", \"a\"]}", NULL, "bad_request", "start.labels: \"a\" at [1] repeats [0]" },
    { "evrun1 demand", "{\"job\": \"" J "\", \"labels\": [\"executor:podman\", \"b\", \"executor:podman\"]}", NULL, "bad_request", "demand.labels: \"executor:podman\" at [2] repeats [0]" },
    { "evrun1 hello", "{\"runner\": \"r\", \"capacity\": 1, \"version\": \"v\", \"labels\": [\"a\", \"b\", \"b\"]}", NULL, "bad_request", "hello.labels: \"b\" at [2] repeats [1]" },
    { "evrun1 provider", "{\"provider\": \"p\", \"labels\": [\"a\", \"a\"]}", NULL, "bad_request", "provider.labels: \"a\" at [1] repeats [0]" },
    /* a value quoted in a message is cut between characters, and kept on its line */
    { "evrun1 submit", "{\"job\": \"" J "\", \"labels\": [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u00e4\u00e4\u00e4\"]}", NULL, "bad_request", "got \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xe2\x80\xa6\" at [0]" },
    { "evrun1 submit", "{\"job\": \"" J "\", \"labels\": [\"a\\nb\"]}", NULL, "bad_request", "got \"a\\nb\" at [0]" },
    { "evrun1 submit", "{\"job\": \"" J "\", \"spec\": {\"pipeline\": \"p\", \"image\": \"i\", \"triggers\": [\"file:/a\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\"], \"steps\": [{\"name\": \"a\", \"run\": \"x\"}]}}", NULL, "bad_request", "submit.spec.triggers: \"file:/a\u00e9" },
    /* on_error's name is its own, with or without an on_error; it takes none */
    { "evrun1 submit", "{\"job\": \"" J "\", \"spec\": {\"pipeline\": \"p\", \"image\": \"i\", \"steps\": [{\"name\": \"on_error\", \"run\": \"x\"}]}}", NULL, "bad_request", "submit.spec: invalid pipeline: steps[0].name: \"on_error\" is the name of the pipeline's on_error step (in events and status), which no step may take" },
    { "evrun1 submit", "{\"job\": \"" J "\", \"spec\": {\"pipeline\": \"p\", \"image\": \"i\", \"on_error\": {\"name\": \"zz\", \"run\": \"x\"}, \"steps\": [{\"name\": \"a\", \"run\": \"x\"}]}}", NULL, "bad_request", "submit.spec: invalid pipeline: on_error.name: on_error takes no name: it is always named \"on_error\"" },
    /* durations and limits over their maximum (ms * 10^6 would wrap) */
    { "evrun1 submit", "{\"job\": \"" J "\", \"spec\": {\"pipeline\": \"p\", \"image\": \"i\", \"timeout\": 18446744073710, \"steps\": [{\"name\": \"a\", \"run\": \"x\"}]}}", NULL, "bad_request", "submit.spec: invalid pipeline: timeout: 18446744073710 ms (213503d23h34m33s710ms) is over the longest duration, 315360000000 ms (3650d: 10 years)" },
    { "evrun1 submit", "{\"job\": \"" J "\", \"spec\": {\"pipeline\": \"p\", \"image\": \"i\", \"start_delay\": 9223372036854775807, \"steps\": [{\"name\": \"a\", \"run\": \"x\"}]}}", NULL, "bad_request", "submit.spec: invalid pipeline: start_delay: 9223372036854775807 ms" },
    { "evrun1 submit", "{\"job\": \"" J "\", \"spec\": {\"pipeline\": \"p\", \"image\": \"i\", \"steps\": [{\"name\": \"a\", \"run\": \"x\", \"timeout\": 315360000001}]}}", NULL, "bad_request", "submit.spec: invalid pipeline: steps[0].timeout: 315360000001 ms (3650d1ms) is over" },
    { "evrun1 submit", "{\"job\": \"" J "\", \"spec\": {\"pipeline\": \"p\", \"executor\": \"process\", \"steps\": [{\"name\": \"a\", \"run\": \"x\", \"limits\": {\"cpu\": 9223372036854775807}}]}}", NULL, "bad_request", "submit.spec: invalid pipeline: steps[0].limits.cpu: 9223372036854775807 ms" },
    { "evrun1 submit", "{\"job\": \"" J "\", \"spec\": {\"pipeline\": \"p\", \"image\": \"i\", \"limits\": {\"memory\": 9223372036854775807}, \"steps\": [{\"name\": \"a\", \"run\": \"x\"}]}}", NULL, "bad_request", "submit.spec: invalid pipeline: limits.memory: 9223372036854775807 bytes is over the maximum, 1125899906842624 bytes" },
    { "evrun1 events", "{\"events\": [{\"seq\": 1, \"type\": \"job.exploded\", \"time\": 1, \"data\": {}}]}", NULL, "bad_request", "events.events[0].type: unknown value \"job.exploded\" (expected one of job.accepted, job.started" },
    { "evrun1 events", "{\"events\": [{\"seq\": 1, \"job\": \"" J "\", \"jseq\": 1, \"type\": \"step.output\", \"time\": 1, \"data\": {\"step\": \"a\"}}]}", NULL, "bad_request", "events.events[0].data: missing required field \"stream\"" },
    { "evrun1 events", "{\"events\": [{\"seq\": 1, \"job\": \"" J "\", \"jseq\": 1, \"type\": \"step.output\", \"time\": 1, \"data\": {\"step\": \"a\", \"stream\": \"stdin\", \"offset\": 0, \"raw\": 1, \"bytes\": \"bin:x\"}}]}", NULL, "bad_request", "data.stream: expected one of stdout, stderr, got \"stdin\"" },
    { "evrun1 events", "{\"events\": [{\"seq\": 1, \"job\": \"" J "\", \"jseq\": 1, \"type\": \"step.output\", \"time\": 1, \"data\": {\"step\": \"a\", \"stream\": \"stdout\", \"offset\": 0, \"raw\": 1, \"bytes\": \"x\"}}]}", NULL, "bad_request", "data.bytes: expected bin, got str" },
    { "evrun1 events", "{\"events\": [{\"seq\": 1, \"job\": \"" J "\", \"type\": \"runner.started\", \"time\": 1, \"data\": {\"runner\": \"r\", \"version\": \"1\"}}]}", NULL, "bad_request", "events.events[0]: job: runner events carry no job" },
    { "evrun1 events", "{\"events\": [{\"seq\": 1, \"job\": \"" J "\", \"jseq\": 1, \"type\": \"job.finished\", \"time\": 1, \"data\": {\"status\": \"meh\"}}]}", NULL, "bad_request", "data.status: expected one of succeeded" },
    { "evrun1 events", "{\"events\": [{\"seq\": 1, \"job\": \"" J "\", \"jseq\": 1, \"type\": \"job.started\", \"time\": 1}]}", NULL, "bad_request", "missing required field \"data\"" },
    { "evrun1 ok", "{\"x\": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}", NULL, "too_large", "nested deeper than 16" },
    /* raw: ack {seq: 1} then a trailing 0x00 */
    { "evrun1 ack", NULL, "81a3736571" "01" "00", "bad_request", "1 byte of trailing garbage after the message" },
    { "evrun1 ack", NULL, "81a3736571" "01" "0000", "bad_request", "2 bytes of trailing garbage after the message" },
    /* a body sent as JSON, {"seq":1}: '{' is the int 123, the rest trails */
    { "evrun1 ack", NULL, "7b2273657122" "3a317d", "bad_request", "8 bytes of trailing garbage after the message (it starts with '{' or '[': JSON? a body is msgpack)" },
    /* truncated: map of 1 whose value is missing */
    { "evrun1 ack", NULL, "81a3736571", "bad_request", "truncated message" },
    /* an array header claiming 2^32-1 elements in 5 bytes */
    { "evrun1 ok", NULL, "81a1" "78" "ddffffffff", "bad_request", "truncated message" },
    /* str32 header claiming 4 GiB */
    { "evrun1 ok", NULL, "81a7" "6d657373616765" "dbffffffff", "bad_request", "truncated message" },
    /* 0xc1 is never used */
    { "evrun1 ok", NULL, "81a1" "78" "c1", "bad_request", "invalid msgpack byte 0xc1" },
    /* duplicate key "seq" */
    { "evrun1 ack", NULL, "82a3736571" "01" "a3736571" "02", "bad_request", "ack.seq: duplicate key" },
    /* invalid UTF-8 in message */
    { "evrun1 ok", NULL, "81a7" "6d657373616765" "a2c328", "bad_request", "ok.message: string is not valid UTF-8" },
    /* NUL inside a string */
    { "evrun1 ok", NULL, "81a7" "6d657373616765" "a26100", "bad_request", "ok.message: string contains a NUL byte" },
    /* empty body */
    { "evrun1 ok", NULL, "", "bad_request", "empty message" },
    /* a header of 64 bytes is bad_request whatever it says; 63 is read */
    { "evrun1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, "80", "bad_request",
      "header: 64 bytes, at most 63" },
    { "evrun1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, "80", "unknown_type",
      "unknown message type" },
    /* in a map whose keys are values, a key refused is named as the key,
       not as the map: {args: {1: "x"}}, {args: {"A": "x", [] : "y"}} */
    { "evrun1 submit", NULL, "81a4" "61726773" "81" "01" "a178", "bad_request", "submit.args: key of entry [0]: expected str, got int" },
    { "evrun1 submit", NULL, "81a4" "61726773" "82" "a141" "a178" "90" "a179", "bad_request", "submit.args: key of entry [1]: expected str, got array" },
    /* {spec: {env: {1: "x"}}}, {spec: {args: {1: {}}}} */
    { "evrun1 submit", NULL, "81a4" "73706563" "81" "a3656e76" "81" "01" "a178", "bad_request", "submit.spec.env: key of entry [0]: expected str, got int" },
    { "evrun1 submit", NULL, "81a4" "73706563" "81" "a461726773" "81" "01" "80", "bad_request", "submit.spec.args: key of entry [0]: expected str, got int" },
    /* key that is not a string is ignored, like an unknown key */
    { "evrun1 ack", NULL, "8101" "01", "bad_request", "ack: missing required field \"seq\"" },
};

static size_t
s_unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (; hex[0] && hex[1]; hex += 2) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (uint8_t) v;
    }
    return n;
}

static void
test_malformed(void)
{
    for (size_t i = 0; i < EVR_ARRAY_LEN(s_bad); i++) {
        const s_bad_t *c = &s_bad[i];
        uint8_t raw[4096];
        uint8_t *body = raw;
        size_t len = 0;
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (c->json) {
            json_error_t jerr;
            json_t *j = json_loads(c->json, 0, &jerr);
            if (!j)
                fprintf(stderr, "  case %zu: bad JSON in the table: %s\n", i, jerr.text);
            CHECK(j != NULL);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            s_pack_json(&pk, j);
            json_decref(j);
            body = (uint8_t *) sb.data;
            len = sb.size;
        }
        else
            len = s_unhex(c->raw, raw);
        evr_msg_t msg = { 0 };
        evr_err_t err = { "" };
        const char *code = NULL;
        evr_rc_t rc = evr_msg_decode(c->header, strlen(c->header), body, len, &msg, &code, &err);
        if (rc == EVR_OK)
            fprintf(stderr, "  case %zu (%s) was accepted\n", i, c->reason);
        CHECK(rc != EVR_OK);
        CHECK_CONTAINS(err.msg, c->reason);
        CHECK_STR(code, c->code);
        CHECK(evr_utf8_valid(err.msg, strlen(err.msg)));   /* it goes on the wire as a str */
        /* a rejected message leaves nothing behind */
        CHECK(msg.job == NULL && msg.spec == NULL && msg.events.n == 0 && msg.type == 0);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void
test_size_limits(void)
{
    /* a string one byte over its limit, and exactly at it */
    char reason[1026];
    memset(reason, 'r', sizeof reason);
    reason[1025] = '\0';
    evr_msg_t *msg = evr_msg_new(EVR_MSG_CANCEL);
    msg->job = evr_strdup(JOB_ID);
    msg->reason = evr_strdup(reason);   /* 1025 bytes, limit 1024 */
    uint8_t *buf;
    size_t len;
    evr_msg_encode(msg, &buf, &len);
    evr_msg_t back = { 0 };
    evr_err_t err;
    const char *code;
    CHECK(evr_msg_decode("evrun1 cancel", 13, buf, len, &back, &code, &err) == EVR_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "cancel.reason: string of 1025 bytes exceeds the limit of 1024");
    CHECK_STR(code, EVR_CODE_TOO_LARGE);
    free(buf);
    msg->reason[1024] = '\0';
    evr_msg_encode(msg, &buf, &len);
    CHECK(evr_msg_decode("evrun1 cancel", 13, buf, len, &back, &code, &err) == EVR_OK);
    CHECK(back.reason && strlen(back.reason) == 1024);
    evr_msg_clear(&back);
    free(buf);
    evr_msg_destroy(&msg);

    /* an events batch over EVR_MSG_MAX_EVENTS */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 6);
    msgpack_pack_str_body(&pk, "events", 6);
    msgpack_pack_array(&pk, EVR_MSG_MAX_EVENTS + 1);
    for (int i = 0; i < EVR_MSG_MAX_EVENTS + 1; i++)
        msgpack_pack_map(&pk, 0);
    evr_msg_t ev = { 0 };
    CHECK(evr_msg_decode("evrun1 events", 13, (uint8_t *) sb.data, sb.size, &ev, &code, &err)
          == EVR_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "events.events: 1025 items exceed the limit of 1024");
    msgpack_sbuffer_destroy(&sb);

    /* a body over the message limit is refused before parsing */
    size_t big = EVR_MSG_MAX_BYTES + 1;
    uint8_t *huge = evr_calloc(big, 1);
    CHECK(evr_msg_decode("evrun1 ok", 9, huge, big, &ev, &code, &err) == EVR_ERR_LIMIT);
    CHECK_STR(code, EVR_CODE_TOO_LARGE);
    free(huge);
}

static void
test_unknown_keys_ignored(void)
{
    /* {"seq": 5, "future_field": {"a": [1, 2]}} */
    uint8_t raw[64];
    size_t n = s_unhex("82a3736571" "05" "ac6675747572655f6669656c64" "81a161" "920102", raw);
    evr_msg_t msg = { 0 };
    evr_err_t err = { "" };
    CHECK(evr_msg_decode("evrun1 ack", 10, raw, n, &msg, NULL, &err) == EVR_OK);
    CHECK(msg.seq == 5);
    CHECK(msg.type == EVR_MSG_ACK);
    CHECK(evr_codec_skipped() == 1);    /* counted once, whatever the passes */
    n = s_unhex("81a3736571" "05", raw);     /* {"seq": 5}: none skipped */
    CHECK(evr_msg_decode("evrun1 ack", 10, raw, n, &msg, NULL, &err) == EVR_OK);
    CHECK(evr_codec_skipped() == 0);
    /* one inside a record inside a record: a submit whose step has "zz" */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const char *kv[][2] = { { "pipeline", "p" }, { "image", "i" } };
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "job", 3);
    msgpack_pack_str_with_body(&pk, "01ARZ3NDEKTSV4RRFFQ69G5FAV", 26);
    msgpack_pack_str_with_body(&pk, "spec", 4);
    msgpack_pack_map(&pk, 3);
    for (int i = 0; i < 2; i++) {
        msgpack_pack_str_with_body(&pk, kv[i][0], strlen(kv[i][0]));
        msgpack_pack_str_with_body(&pk, kv[i][1], strlen(kv[i][1]));
    }
    msgpack_pack_str_with_body(&pk, "steps", 5);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "name", 4);
    msgpack_pack_str_with_body(&pk, "s", 1);
    msgpack_pack_str_with_body(&pk, "run", 3);
    msgpack_pack_str_with_body(&pk, ":", 1);
    msgpack_pack_str_with_body(&pk, "zz", 2);
    msgpack_pack_int(&pk, 1);
    evr_msg_t sub = { 0 };
    CHECK(evr_msg_decode("evrun1 submit", 13, (const uint8_t *) sb.data, sb.size, &sub, NULL,
                         &err) == EVR_OK);
    CHECK(evr_codec_skipped() == 1);
    evr_msg_clear(&sub);
    msgpack_sbuffer_destroy(&sb);
}

static void
test_check_depth(void)
{
    /* 16 nested arrays inside the top-level map are fine at depth 17? no:
       the map is level 1, so 15 arrays + map = 16 levels */
    uint8_t buf[64];
    size_t n = 0;
    buf[n++] = 0x81;
    buf[n++] = 0xa1;
    buf[n++] = 'x';
    for (int i = 0; i < 15; i++)
        buf[n++] = 0x91;
    buf[n++] = 0x01;
    evr_err_t err;
    CHECK(evr_codec_check(buf, n, EVR_CODEC_MAX_DEPTH, &err) == EVR_OK);
    /* one more level is refused */
    memmove(buf + 4, buf + 3, n - 3);
    buf[3] = 0x91;
    n++;
    CHECK(evr_codec_check(buf, n, EVR_CODEC_MAX_DEPTH, &err) == EVR_ERR_LIMIT);
}

/*  A spec's checks run where a message is decoded (the broker's submit,
    the runner's dispatch), not only in the loader: a submit whose step
    names an artifact glob (a client that does not load YAML) is refused
    with the field and what to do. */
static void
test_submit_refuses_globs(void)
{
    static const char yml[] = "pipeline: g\nimage: i\nsteps:\n"
                              "  - {name: a, run: x, artifacts: [out/a.xml]}\n";
    evr_diag_t *diag = evr_diag_new("g.yml");
    evr_msg_t m = { .type = EVR_MSG_SUBMIT, .job = (char *) JOB_ID, .spec = evr_spec_new() };
    CHECK(evr_yaml_load(yml, strlen(yml), m.spec, diag) == EVR_OK);
    evr_step_t *st = evr_spec_step(m.spec, 0);
    free(st->artifacts.paths.v[0]);
    st->artifacts.paths.v[0] = evr_strdup("out/*.xml");
    uint8_t *buf;
    size_t len;
    evr_msg_encode(&m, &buf, &len);
    char hdr[EVR_MSG_HEADER_MAX];
    evr_msg_header(m.type, hdr);
    evr_msg_t back = { 0 };
    const char *code = NULL;
    evr_err_t err;
    CHECK(evr_msg_decode(hdr, strlen(hdr), buf, len, &back, &code, &err) != EVR_OK);
    CHECK_CONTAINS(err.msg, "steps[0].artifacts.paths[0]: \"out/*.xml\" holds a glob character");
    CHECK_CONTAINS(err.msg, "name the directory (\"out\", copied whole) or each file");
    evr_msg_clear(&back);
    free(buf);
    evr_spec_destroy(&m.spec);
    evr_diag_destroy(&diag);
}

/*  Peeks hdr and the body json packs to (hex when json is NULL). */
static void
s_peek(const char *hdr, const char *json, const char *hex, evr_msg_peek_t *pk)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    uint8_t raw[256];
    const uint8_t *body = raw;
    size_t len;
    if (json) {
        json_t *j = json_loads(json, 0, NULL);
        CHECK(j != NULL);
        msgpack_packer p;
        msgpack_packer_init(&p, &sb, msgpack_sbuffer_write);
        s_pack_json(&p, j);
        json_decref(j);
        body = (const uint8_t *) sb.data;
        len = sb.size;
    }
    else
        len = s_unhex(hex, raw);
    evr_msg_t m = { 0 };
    evr_err_t err;
    CHECK(evr_msg_decode(hdr, strlen(hdr), body, len, &m, NULL, &err) != EVR_OK);
    evr_msg_peek(hdr, strlen(hdr), body, len, pk);
    msgpack_sbuffer_destroy(&sb);
}

/*  A body that claims many map entries and breaks inside its first big
    value: the peek stops there.  It walked the broken value again for
    each entry claimed (a body of 40 KB took 34 s, this one would take
    days: the test's time limit fails it). */
static void
test_peek_broken_linear(void)
{
    enum { N = 300000 };
    size_t cap = 64 + (size_t) N;
    uint8_t *b = evr_malloc(cap), *p = b;
    *p++ = 0xdf;                            /* map32, N entries */
    for (int k = 24; k >= 0; k -= 8)
        *p++ = (uint8_t) (N >> k);
    *p++ = 0xa3;                            /* "job": JOB_ID */
    memcpy(p, "job", 3);
    p += 3;
    *p++ = 0xd9;
    *p++ = EVR_ULID_LEN;
    memcpy(p, JOB_ID, EVR_ULID_LEN);
    p += EVR_ULID_LEN;
    *p++ = 0xa1;                            /* "x": an array32 of N, N - 1 nils and a cut str8 */
    *p++ = 'x';
    *p++ = 0xdd;
    for (int k = 24; k >= 0; k -= 8)
        *p++ = (uint8_t) (N >> k);
    memset(p, 0xc0, N - 1);
    p += N - 1;
    *p++ = 0xd9;
    size_t len = (size_t) (p - b);
    CHECK(len < cap);
    evr_msg_peek_t pk;
    evr_msg_peek("evrun1 dispatch", strlen("evrun1 dispatch"), b, len, &pk);
    CHECK(pk.type == EVR_MSG_DISPATCH);
    CHECK_STR(pk.job, JOB_ID);
    CHECK(pk.spec == NULL && pk.pipeline[0] == '\0');
    evr_msg_peek_clear(&pk);
    free(b);
}

/*  What a runner reads of a dispatch it cannot decode (version skew):
    the type, the job when a ULID, the spec when its own table takes it
    (only the whole-spec check refused it), else its pipeline name. */
static void
test_peek_refused(void)
{
    evr_msg_peek_t pk;
    /* a glob an older broker took: the spec decodes alone, its stub follows */
    s_peek("evrun1 dispatch", "{\"x\": [[[{\"job\": 1}]]], \"job\": \"" JOB_ID "\", \"spec\": "
           "{\"pipeline\": \"g\", \"image\": \"i\", \"steps\": [{\"name\": \"a\", \"run\": \"x\", "
           "\"artifacts\": [\"out/*.xml\"]}]}}", NULL, &pk);
    CHECK(pk.type == EVR_MSG_DISPATCH);
    CHECK_STR(pk.job, JOB_ID);
    CHECK(pk.spec && pk.spec->steps.n == 1);
    CHECK_STR(pk.spec->pipeline, "g");
    CHECK_STR(pk.pipeline, "g");
    evr_msg_peek_clear(&pk);
    CHECK(pk.spec == NULL && pk.job[0] == '\0');
    /* a step the table refuses (run not a string): the name only */
    s_peek("evrun1 dispatch", "{\"spec\": {\"steps\": [{\"name\": \"a\", \"run\": 5}], "
           "\"pipeline\": \"g-2.x\"}, \"job\": \"" JOB_ID "\"}", NULL, &pk);
    CHECK_STR(pk.job, JOB_ID);
    CHECK(pk.spec == NULL);
    CHECK_STR(pk.pipeline, "g-2.x");
    evr_msg_peek_clear(&pk);
    /* no name that is a name; a job that is no ULID */
    const char *nameless[] = { "{\"pipeline\": 7, \"steps\": []}", "{\"pipeline\": \"a b\"}",
                               "{\"pipeline\": \"" JOB_ID JOB_ID JOB_ID "\"}", "[]", "3" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(nameless); i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"job\": \"%s\", \"spec\": %s}",
                 i ? JOB_ID : "01jq7zk3m8x2v9t4b6n0c5d7ef", nameless[i]);
        s_peek("evrun1 dispatch", json, NULL, &pk);
        CHECK_STR(pk.job, i ? JOB_ID : "");
        CHECK(pk.spec == NULL && pk.pipeline[0] == '\0');
        evr_msg_peek_clear(&pk);
    }
    /* not a map, a map cut short, a header naming no type */
    s_peek("evrun1 dispatch", NULL, "c3", &pk);
    CHECK(pk.type == EVR_MSG_DISPATCH && !pk.job[0] && !pk.spec);
    s_peek("evrun1 dispatch", NULL, "82a36a6f62a3" "303132", &pk);
    CHECK(pk.type == EVR_MSG_DISPATCH && !pk.job[0] && !pk.spec);
    s_peek("evrun1 dispatchx", "{\"job\": \"" JOB_ID "\"}", NULL, &pk);
    CHECK(pk.type == EVR_MSG_NONE && !pk.job[0]);
    /* another type: its job, never a spec */
    s_peek("evrun1 control", "{\"command\": \"halt\", \"job\": \"" JOB_ID "\", \"spec\": {}}", NULL,
           &pk);
    CHECK(pk.type == EVR_MSG_CONTROL && !strcmp(pk.job, JOB_ID) && !pk.spec);
    evr_msg_peek_clear(&pk);
}

/*  A key of the spec cut in the path of its error (env.KEY, in a bounded
    buffer) mid-character: the message is still UTF-8, as the broker's
    error must be on the wire. */
static void
test_error_utf8(void)
{
    char key[2 * 200 + 1] = "";
    for (int i = 0; i < 200; i++)
        strcat(key, "\xc3\xa9");
    json_t *j = json_pack("{s:s, s:{s:s, s:s, s:{s:s}, s:[{s:s, s:s}]}}", "job", JOB_ID, "spec",
                          "pipeline", "p", "image", "i", "env", key, "x", "steps", "name", "a",
                          "run", "x");
    CHECK(j != NULL);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    s_pack_json(&pk, j);
    json_decref(j);
    evr_msg_t msg = { 0 };
    evr_err_t err = { "" };
    const char *code = NULL;
    CHECK(evr_msg_decode("evrun1 submit", 13, (uint8_t *) sb.data, sb.size, &msg, &code, &err)
          != EVR_OK);
    CHECK_CONTAINS(err.msg, "submit.spec: invalid pipeline: env.\xc3\xa9\xc3\xa9");
    CHECK_CONTAINS(err.msg, "not a valid environment variable name");
    CHECK(evr_utf8_valid(err.msg, strlen(err.msg)));
    msgpack_sbuffer_destroy(&sb);
}

/*  A key over its limit in a map of str to str is named as a key; a long
    key in the path of a later error leaves the message UTF-8. */
static void
test_map_key_errors(void)
{
    static char big[EVR_STR_MAX + 2], wide[2 * 2000 + 1];
    memset(big, 'K', EVR_STR_MAX + 1);
    for (int i = 0; i < 2000; i++)
        memcpy(wide + 2 * i, "\xc3\xa9", 2);
    struct {
        json_t *body;
        const char *code, *reason;
    } cases[] = {
        { json_pack("{s:{s:s}}", "args", big, "x"), "too_large",
          "submit.args: key of entry [0]: string of 4097 bytes exceeds the limit of 4096" },
        { json_pack("{s:{s:i}}", "args", wide, 1), "bad_request", "submit.args.\xc3\xa9" },
    };
    for (size_t c = 0; c < EVR_ARRAY_LEN(cases); c++) {
        CHECK(cases[c].body != NULL);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        s_pack_json(&pk, cases[c].body);
        json_decref(cases[c].body);
        evr_msg_t msg = { 0 };
        evr_err_t err = { "" };
        const char *code = NULL;
        evr_rc_t rc = evr_msg_decode("evrun1 submit", 13, (uint8_t *) sb.data, sb.size, &msg,
                                     &code, &err);
        CHECK(rc != EVR_OK);
        CHECK_STR(code, cases[c].code);
        CHECK_CONTAINS(err.msg, cases[c].reason);
        CHECK(evr_utf8_valid(err.msg, strlen(err.msg)));
        evr_msg_clear(&msg);
        msgpack_sbuffer_destroy(&sb);
    }
}

int
main(void)
{
    EVR_TEST_RUN(test_malformed);
    EVR_TEST_RUN(test_error_utf8);
    EVR_TEST_RUN(test_map_key_errors);
    EVR_TEST_RUN(test_size_limits);
    EVR_TEST_RUN(test_unknown_keys_ignored);
    EVR_TEST_RUN(test_check_depth);
    EVR_TEST_RUN(test_submit_refuses_globs);
    EVR_TEST_RUN(test_peek_refused);
    EVR_TEST_RUN(test_peek_broken_linear);
    EVR_TEST_END();
}
