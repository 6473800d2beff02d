/*  test_gateway_text: what the gateway answers in text it makes itself:
    the plain-text log as UTF-8 under its cap (gateway/evr_gw_log.c), and
    the broker's error codes as HTTP statuses (README "HTTP gateway"). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "evr_gw.h"
#include "evr_test.h"

/*  The plain-text log made UTF-8 (gateway/evr_gw_log.c), as written in
    one piece and a byte at a time: each maximal subpart that is no
    character is one U+FFFD.  Before, each byte of a character cut short
    was one (two or three for one character), and a character split
    between two writes was too. */
static char *
s_text(const char *in, size_t n, size_t step, size_t max, size_t *len, bool *cut)
{
    evr_gw_text_t t = { .max = max };
    for (size_t i = 0; i < n; i += step)
        evr_gw_text_put(&t, in + i, n - i < step ? n - i : step);
    evr_gw_text_end(&t);
    *len = t.len;
    *cut = t.cut;
    CHECK(t.cap <= max + 1);
    return t.buf;
}

static void
test_utf8_repair(void)
{
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        { "a | ok\n", 7, "a | ok\n" },
        { "a | \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n", 14,
          "a | \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n" },     /* 2, 3 and 4 bytes: kept */
        { "a | \377x\n", 7, "a | \xef\xbf\xbdx\n" },
        { "\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd" },        /* overlong */
        { "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },  /* surrogate */
        { "x\xe2\x82", 3, "x\xef\xbf\xbd" },                    /* cut short at the end */
        { "\xe2\x82x", 3, "\xef\xbf\xbdx" },                    /* maximal subpart */
        { "\xf0\x9f\x98\n\xe2\x82\xac", 7, "\xef\xbf\xbd\n\xe2\x82\xac" },
        { "\xe2\x82\xe2\x82\xac", 5, "\xef\xbf\xbd\xe2\x82\xac" },
        { "\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(cases); i++)
        for (size_t step = 1; step <= cases[i].n; step += cases[i].n - 1) {
            size_t n;
            bool cut;
            char *b = s_text(cases[i].in, cases[i].n, step, 1000, &n, &cut);
            CHECK(n == strlen(cases[i].out) && !memcmp(b, cases[i].out, n) && !cut);
            free(b);
        }
}

/*  The text log's cap: on a character boundary, the buffer never past
    it.  Before, it cut inside a character (then repaired as U+FFFD), and
    the repair could triple the capped text. */
static void
test_utf8_cap(void)
{
    static const struct {
        const char *in;
        size_t max;
        const char *out;
        bool cut;
    } cases[] = {
        { "ab\xe2\x82\xac", 5, "ab\xe2\x82\xac", false },
        { "ab\xe2\x82\xac", 4, "ab", true },
        { "ab\xf0\x9f\x98\x80z", 5, "ab", true },
        { "\377\377\377", 7, "\xef\xbf\xbd\xef\xbf\xbd", true },   /* repaired, then capped */
        { "abc\xe2\x82", 5, "abc", true },                         /* its U+FFFD past it */
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(cases); i++)
        for (size_t step = 1; step <= 2; step++) {
            size_t n;
            bool cut;
            char *b = s_text(cases[i].in, strlen(cases[i].in), step, cases[i].max, &n, &cut);
            CHECK(n == strlen(cases[i].out) && !memcmp(b, cases[i].out, n));
            CHECK(cut == cases[i].cut);
            free(b);
        }
}

/*  The broker's error codes as HTTP answers (README "HTTP gateway"). */
static void
test_refused(void)
{
    static const struct {
        const char *code;
        int status;
        unsigned retry;
    } cases[] = {
        { "bad_request", 400, 0 }, { "not_found", 404, 0 }, { "conflict", 409, 0 },
        { "busy", 409, 0 }, { "too_large", 413, 0 }, { "queue_full", 429, EVR_GW_RETRY_QUEUE_S },
        { "internal", 500, 0 }, { "unknown_type", 501, 0 }, { "unavailable", 503, 1 },
        { "made_up", 502, 0 },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(cases); i++) {
        evr_gw_req_t req = { 0 };
        evr_msg_t e = { .type = EVR_MSG_ERROR, .code = (char *) cases[i].code,
                        .message = "why" };
        evr_gw_refused(&req, &e);
        const char *code = json_string_value(json_object_get(json_object_get(req.json,
                                                                             "error"), "code"));
        CHECK(req.status == cases[i].status);
        CHECK(req.retry_after == cases[i].retry);
        CHECK(code && !strcmp(code, cases[i].status == 502 ? "bad_gateway" : cases[i].code));
        json_decref(req.json);
    }
    evr_gw_req_t req = { 0 };
    evr_msg_t ok = { .type = EVR_MSG_OK };
    evr_gw_refused(&req, &ok);      /* no error at all where one was expected */
    CHECK(req.status == 502);
    json_decref(req.json);
}

int
main(void)
{
    EVR_TEST_RUN(test_refused);
    EVR_TEST_RUN(test_utf8_repair);
    EVR_TEST_RUN(test_utf8_cap);
    EVR_TEST_END();
}
