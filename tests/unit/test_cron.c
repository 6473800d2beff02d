/*  test_cron: cron expressions of `schedule:` and their fire times, in
    UTC and across summer time changes of a zone. */
#include <time.h>
#include <unistd.h>

#include "evr_cron.h"
#include "evr_test.h"
#include "evr_yaml.h"

/*  Seconds since the epoch of a UTC calendar time. */
static int64_t
s_utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                     .tm_min = mi };
    return (int64_t) timegm(&tm);
}

static int64_t
s_next(const char *expr, const char *zone, int64_t after)
{
    evr_cron_t c;
    evr_err_t err;
    if (evr_cron_parse(expr, &c, &err)) {
        fprintf(stderr, "parse %s: %s\n", expr, err.msg);
        return -1;
    }
    int64_t next = -1;
    if (evr_cron_next(&c, zone, after, &next))
        return -2;
    return next;
}

static void
s_bad(const char *expr, const char *expect)
{
    evr_cron_t c;
    evr_err_t err;
    CHECK(evr_cron_parse(expr, &c, &err) == EVR_ERR_SPEC);
    CHECK_CONTAINS(err.msg, expect);
}

static void
test_parse_good(void)
{
    evr_cron_t c;
    evr_err_t err;
    CHECK(evr_cron_parse("* * * * *", &c, &err) == EVR_OK);
    CHECK(c.minutes == (1ull << 60) - 1 && c.hours == (1u << 24) - 1);
    CHECK(c.mday_star && c.wday_star);
    /* a range of week days that ends on Sunday takes it as 7 (README) */
    CHECK(evr_cron_parse("0 0 * * sat-sun", &c, &err) == EVR_OK);
    CHECK(c.wdays == (1u | 1u << 6));
    CHECK(evr_cron_parse("0 0 * * 5-0", &c, &err) == EVR_OK);
    CHECK(c.wdays == (1u | 1u << 5 | 1u << 6));
    CHECK(evr_cron_parse("0 0 * * mon-sun/2", &c, &err) == EVR_OK);
    CHECK(c.wdays == (1u << 1 | 1u << 3 | 1u << 5 | 1u));   /* 1, 3, 5, 7 */
    CHECK(evr_cron_parse("0 0 * * sun-sun", &c, &err) == EVR_OK);
    CHECK(c.wdays == 1u);
    CHECK(evr_cron_parse("*/15 0,12 1-5 JAN-mar sun,7", &c, &err) == EVR_OK);
    CHECK(c.minutes == (1ull | 1ull << 15 | 1ull << 30 | 1ull << 45));
    CHECK(c.hours == (1u | 1u << 12));
    CHECK(c.mdays == 0x3e);
    CHECK(c.months == 0xe);
    CHECK(c.wdays == 1u);
    CHECK(!c.mday_star && !c.wday_star);
    CHECK(evr_cron_parse("  5/20  1-10/3 * * mon-fri ", &c, &err) == EVR_OK);
    CHECK(c.minutes == (1ull << 5 | 1ull << 25 | 1ull << 45));
    CHECK(c.hours == (1u << 1 | 1u << 4 | 1u << 7 | 1u << 10));
    CHECK(c.wdays == 0x3e);
    CHECK(evr_cron_parse("0 0 29 2 *", &c, &err) == EVR_OK);
}

static void
test_parse_bad(void)
{
    s_bad("", "0 fields, expected five");
    s_bad("* * * *", "4 fields, expected five");
    s_bad("* * * * * *", "6 fields");
    s_bad("60 * * * *", "field 1 (minute): 60 is out of range 0-59");
    s_bad("* 24 * * *", "field 2 (hour): 24 is out of range 0-23");
    s_bad("* * 0 * *", "field 3 (day of month): 0 is out of range 1-31");
    s_bad("* * * 13 *", "field 4 (month): 13 is out of range 1-12");
    s_bad("* * * * 8", "field 5 (day of week): 8 is out of range 0-7");
    /* the number as written (it said 9999, the part it had read) */
    s_bad("99999 * * * *", "field 1 (minute): 99999 is out of range 0-59");
    s_bad("* 1-123456789012345678901 * * *",
          "field 2 (hour): 1234567890123456... is out of range 0-23");
    s_bad("* * * foo *", "field 4 (month): unexpected \"foo\"");
    s_bad("5-1 * * * *", "range 5-1 goes backwards");
    s_bad("* * * * 7-1", "range 7-1 goes backwards");
    s_bad("* * * * sun-sun,7-sat", "range 7-sat goes backwards");
    s_bad("*/0 * * * *", "step /0: expected a number 1-59");
    s_bad("*/ * * * *", "step /: expected");
    s_bad("1,,2 * * * *", "an empty item");
    s_bad("1, * * * *", "ends with a comma");
    s_bad("1x * * * *", "unexpected \"x\"");
    s_bad("@daily", "1 field, expected five: write @daily as \"0 0 * * *\" (minute hour");
    s_bad(" @weekly ", "write @weekly as \"0 0 * * 0\"");
    s_bad("@reboot", "1 field, expected five: minute hour");
    s_bad("0 0 31 2,4 *", "never fires");
    s_bad("0 0 30 feb *", "never fires");
}

static void
test_zone(void)
{
    CHECK(evr_cron_zone_problem("Europe/Paris") == NULL);
    CHECK(evr_cron_zone_problem("UTC") == NULL);
    CHECK_CONTAINS(evr_cron_zone_problem("Mars/Olympus"), "unknown time zone");
    CHECK(!strstr(evr_cron_zone_problem("Mars/Olympus"), "did you mean"));
    /* a name installed in another case is given (component by component) */
    CHECK_CONTAINS(evr_cron_zone_problem("utc"), "unknown time zone: no such file under "
                   "/usr/share/zoneinfo; did you mean UTC? (names are case-sensitive)");
    CHECK_CONTAINS(evr_cron_zone_problem("europe/paris"), "did you mean Europe/Paris?");
    CHECK_CONTAINS(evr_cron_zone_problem("AMERICA/NEW_YORK"), "did you mean America/New_York?");
    CHECK(!strstr(evr_cron_zone_problem("europe"), "did you mean"));   /* a directory */
    CHECK_CONTAINS(evr_cron_zone_problem("../etc/passwd"), "no ..");
    CHECK_CONTAINS(evr_cron_zone_problem("/etc/localtime"), "relative");
    CHECK_CONTAINS(evr_cron_zone_problem("Europe"), "unknown time zone");   /* a directory */
    CHECK_CONTAINS(evr_cron_zone_problem("a b"), "letters, digits");
    CHECK(evr_cron_zone_problem("") != NULL);
    if (access("/usr/share/zoneinfo/leapseconds", R_OK) == 0)   /* a text file there */
        CHECK_CONTAINS(evr_cron_zone_problem("leapseconds"), "holds no zone data");
}

static void
test_next_utc(void)
{
    int64_t t = s_utc(2026, 11, 30, 1, 10);
    CHECK(s_next("* * * * *", NULL, t) == s_utc(2026, 11, 30, 1, 11));
    CHECK(s_next("* * * * *", NULL, t + 59) == s_utc(2026, 11, 30, 1, 11));
    CHECK(s_next("*/15 * * * *", "UTC", t) == s_utc(2026, 11, 30, 1, 15));
    CHECK(s_next("0 3 * * *", NULL, t) == s_utc(2026, 11, 30, 3, 0));
    CHECK(s_next("0 0 1 * *", NULL, t) == s_utc(2026, 12, 1, 0, 0));
    /* end of month: the 31st skips the months without one */
    CHECK(s_next("0 12 31 * *", NULL, s_utc(2026, 12, 31, 12, 0)) == s_utc(2027, 1, 31, 12, 0));
    CHECK(s_next("0 12 31 * *", NULL, s_utc(2027, 1, 31, 12, 0)) == s_utc(2027, 3, 31, 12, 0));
    /* leap years: 29 February */
    CHECK(s_next("0 0 29 2 *", NULL, t) == s_utc(2028, 2, 29, 0, 0));
    CHECK(s_next("0 0 29 2 *", NULL, s_utc(2028, 2, 29, 0, 0)) == s_utc(2032, 2, 29, 0, 0));
    CHECK(s_next("0 0 29 2 *", NULL, s_utc(2096, 3, 1, 0, 0)) == s_utc(2104, 2, 29, 0, 0));
    /* day of month OR day of week when both are restricted: the 1st or a Friday
       (2026-12-01 is a Tuesday; 2026-12-04 a Friday) */
    CHECK(s_next("0 0 1 * fri", NULL, t) == s_utc(2026, 12, 1, 0, 0));
    CHECK(s_next("0 0 1 * fri", NULL, s_utc(2026, 12, 1, 0, 0)) == s_utc(2026, 12, 4, 0, 0));
    /* AND when one is *: Fridays only; a * with a step counts as * */
    CHECK(s_next("0 0 * * fri", NULL, t) == s_utc(2026, 12, 4, 0, 0));
    CHECK(s_next("0 0 */1 * fri", NULL, t) == s_utc(2026, 12, 4, 0, 0));
    CHECK(s_next("0 0 13 * 5", NULL, s_utc(2026, 12, 1, 0, 0)) == s_utc(2026, 12, 4, 0, 0));
    /* Sunday as 7 */
    CHECK(s_next("0 0 * * 7", NULL, t) == s_utc(2026, 12, 6, 0, 0));
}

static void
test_next_dst(void)
{
    /* Europe/Paris: 2027-03-28 02:00 CET becomes 03:00 CEST (01:00 UTC);
       2027-10-31 03:00 CEST becomes 02:00 CET (01:00 UTC). */
    const char *z = "Europe/Paris";
    /* a daily 09:00 is 08:00 UTC in winter, 07:00 UTC in summer */
    CHECK(s_next("0 9 * * *", z, s_utc(2027, 3, 27, 12, 0)) == s_utc(2027, 3, 28, 7, 0));
    CHECK(s_next("0 9 * * *", z, s_utc(2027, 3, 26, 12, 0)) == s_utc(2027, 3, 27, 8, 0));
    /* 02:30 does not exist on the 28th: it fires at the change, 03:00 CEST */
    CHECK(s_next("30 2 * * *", z, s_utc(2027, 3, 27, 12, 0)) == s_utc(2027, 3, 28, 1, 0));
    CHECK(s_next("30 2 * * *", z, s_utc(2027, 3, 28, 1, 0)) == s_utc(2027, 3, 29, 0, 30));
    /* every 15 minutes across the gap: 01:45 CET, then 03:00 CEST */
    CHECK(s_next("*/15 * * * *", z, s_utc(2027, 3, 28, 0, 45)) == s_utc(2027, 3, 28, 1, 0));
    CHECK(s_next("*/15 * * * *", z, s_utc(2027, 3, 28, 1, 0)) == s_utc(2027, 3, 28, 1, 15));
    /* 02:30 happens twice on 31 October: it fires once, at the first (00:30 UTC) */
    CHECK(s_next("30 2 * * *", z, s_utc(2027, 10, 30, 12, 0)) == s_utc(2027, 10, 31, 0, 30));
    CHECK(s_next("30 2 * * *", z, s_utc(2027, 10, 31, 0, 30)) == s_utc(2027, 11, 1, 1, 30));
    /* every 15 minutes across the repeated hour: 02:45 CEST (00:45 UTC), then
       03:00 CET (02:00 UTC): the wall-clock times 02:00-02:45 do not fire twice */
    CHECK(s_next("*/15 * * * *", z, s_utc(2027, 10, 31, 0, 45)) == s_utc(2027, 10, 31, 2, 0));
    /* started inside the repeated hour (02:10 CET), it goes on from there */
    CHECK(s_next("*/15 * * * *", z, s_utc(2027, 10, 31, 1, 10)) == s_utc(2027, 10, 31, 1, 15));
    /* the TZ of the process is left as it was */
    CHECK(getenv("TZ") == NULL);
    /* America/New_York, 2027-03-14: 02:00 EST becomes 03:00 EDT (07:00 UTC) */
    CHECK(s_next("0 12 * * *", "America/New_York", s_utc(2027, 3, 14, 0, 0))
          == s_utc(2027, 3, 14, 16, 0));
}

/*  The spec keys: errors at file:line:column, the values kept. */
static void
s_yaml(const char *text, const char *expect)
{
    evr_spec_t spec = { 0 };
    evr_diag_t *diag = evr_diag_new("p.yml");
    evr_rc_t rc = evr_yaml_load(text, strlen(text), &spec, diag);
    if (expect) {
        CHECK(rc == EVR_ERR_SPEC);
        CHECK_CONTAINS(evr_diag_get(diag, 0), expect);
    }
    else {
        CHECK(rc == EVR_OK);
        CHECK_STR(spec.schedule, "*/5 * * * *");
        CHECK_STR(spec.tz, "Europe/Paris");
        CHECK(spec.catchup == EVR_CATCHUP_NONE);
    }
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
}

static void
test_spec_keys(void)
{
    const char *head = "pipeline: p\nimage: i\nsteps: [{name: a, run: x}]\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%sschedule: \"*/5 * * * *\"\ntimezone: Europe/Paris\n"
             "catchup: none\n", head);
    s_yaml(buf, NULL);
    snprintf(buf, sizeof buf, "%sschedule: \"* 25 * * *\"\n", head);
    s_yaml(buf, "p.yml:4:11: schedule: field 2 (hour): 25 is out of range 0-23");
    snprintf(buf, sizeof buf, "%sschedule: \"* * * * *\"\ntimezone: Europe/Nowhere\n", head);
    s_yaml(buf, "p.yml:5:11: timezone: unknown time zone");
    snprintf(buf, sizeof buf, "%stimezone: UTC\n", head);
    s_yaml(buf, "timezone: timezone is the zone of schedule");
    snprintf(buf, sizeof buf, "%sschedule: \"* * * * *\"\ncatchup: all\n", head);
    s_yaml(buf, "p.yml:5:10: catchup:");
}

int
main(void)
{
    EVR_TEST_RUN(test_parse_good);
    EVR_TEST_RUN(test_parse_bad);
    EVR_TEST_RUN(test_zone);
    EVR_TEST_RUN(test_next_utc);
    EVR_TEST_RUN(test_next_dst);
    EVR_TEST_RUN(test_spec_keys);
    EVR_TEST_END();
}
