/*  test_ulid: ULID generation, ordering and parsing. */
#include "evr_test.h"
#include "evr_ulid.h"

static void
test_known_value(void)
{
    /* Spec example: time 1469918176385 ms encodes to 01ARYZ6S41 */
    uint8_t rnd[10] = { 0 };
    char id[EVR_ULID_LEN + 1];
    evr_ulid_make(1469918176385ull, rnd, id);
    CHECK(strncmp(id, "01ARYZ6S41", 10) == 0);
    CHECK_STR(id + 10, "0000000000000000");
    uint8_t ones[10];
    memset(ones, 0xff, sizeof ones);
    evr_ulid_make(0xffffffffffffull, ones, id);
    CHECK_STR(id, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    uint64_t ms = 0;
    CHECK(evr_ulid_parse(id, &ms, NULL) == EVR_OK);
    CHECK(ms == 0xffffffffffffull);
    /* mixed bits in every group (Crockford base32 of ms << 80 | rnd) */
    const uint8_t mixed[10] = { 0x9c, 0x01, 0xff, 0x42, 0x80, 0x7e, 0x33, 0xa5, 0x10, 0xc9 };
    evr_ulid_make(1469918176385ull, mixed, id);
    CHECK_STR(id, "01ARYZ6S41KG0ZYGM0FRSTA469");
}

static void
test_parse(void)
{
    uint64_t ms = 0;
    evr_err_t err;
    CHECK(evr_ulid_parse("01ARYZ6S41TSV4RRFFQ69G5FAV", &ms, &err) == EVR_OK);
    CHECK(ms == 1469918176385ull);
    CHECK(evr_ulid_parse("01aryz6s41tsv4rrffq69g5fav", &ms, &err) == EVR_OK);   /* any case */
    CHECK(evr_ulid_parse("01ARYZ6S41TSV4RRFFQ69G5FA", &ms, &err) == EVR_ERR_PROTO);
    CHECK_CONTAINS(err.msg, "26 characters");
    CHECK(evr_ulid_parse("01ARYZ6S41TSV4RRFFQ69G5FAVX", &ms, &err) == EVR_ERR_PROTO);
    CHECK(evr_ulid_parse("01ARYZ6S41TSV4RRFFQ69G5FAU", &ms, &err) == EVR_ERR_PROTO);
    CHECK_CONTAINS(err.msg, "position 26");
    CHECK(evr_ulid_parse("81ARYZ6S41TSV4RRFFQ69G5FAV", &ms, &err) == EVR_ERR_PROTO);
    CHECK_CONTAINS(err.msg, "48 bits");
    CHECK(!evr_ulid_valid(""));
    CHECK(!evr_ulid_valid(NULL));
}

/*  The field check's reason says what is wrong, not only "a ULID". */
static void
test_problem(void)
{
    CHECK(evr_ulid_problem("01ARYZ6S41TSV4RRFFQ69G5FAV") == NULL);
    static const struct { const char *id, *why; } cases[] = {
        { "01ARYZ6S41TSV4RRFFQ69G5FAI", "'I' at position 26 is not Crockford base32 (0-9 and "
                                        "A-Z without I, L, O, U)" },
        { "01ARYZ6S41TSL4RRFFQ69G5FAV", "'L' at position 13 is not Crockford base32" },
        { "0OARYZ6S41TSV4RRFFQ69G5FAV", "'O' at position 2 is not Crockford base32" },
        { "01ARYZ6S41TSV4RRFFQ69G5FAU", "'U' at position 26" },
        { "01ARYZ6S41-SV4RRFFQ69G5FAV", "'-' at position 11" },
        { "01ARYZ6S41 SV4RRFFQ69G5FAV", "0x20 at position 11" },
        { "81ARYZ6S41TSV4RRFFQ69G5FAV", "the first character is '8', above 7" },
        { "01ARYZ6S41TSV4RRFFQ69G5FA", "expected a ULID: 26 characters, got 25" },
        { "01ARYZ6S41TSV4RRFFQ69G5Fav", "expected a ULID in upper case ('a' at position 25)" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(cases); i++) {
        const char *why = evr_ulid_problem(cases[i].id);
        CHECK(why != NULL);
        if (why)
            CHECK_CONTAINS(why, cases[i].why);
    }
}

static void
test_new_monotonic(void)
{
    char prev[EVR_ULID_LEN + 1], id[EVR_ULID_LEN + 1];
    evr_ulid_new(prev);
    CHECK(evr_ulid_valid(prev));
    int ordered = 1;
    for (int i = 0; i < 10000; i++) {
        evr_ulid_new(id);
        if (strcmp(prev, id) >= 0)
            ordered = 0;
        memcpy(prev, id, sizeof id);
    }
    CHECK(ordered);
    uint64_t ms = 0;
    CHECK(evr_ulid_parse(id, &ms, NULL) == EVR_OK);
    uint64_t now = evr_now_ns() / 1000000u;
    CHECK(ms <= now && now - ms < 60000);
}

int
main(void)
{
    EVR_TEST_RUN(test_known_value);
    EVR_TEST_RUN(test_parse);
    EVR_TEST_RUN(test_problem);
    EVR_TEST_RUN(test_new_monotonic);
    EVR_TEST_END();
}
