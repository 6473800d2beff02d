/*  evr_cron.h: cron expressions of a pipeline's `schedule:` and the times
    they fire.

    Five fields, minute hour day-of-month month day-of-week, each `*`, a
    number, a range `A-B`, a step (star-slash-S, `A-B/S`, `A/S`: A to the end),
    or a comma list of these; months and days of the week also by their
    English three-letter names (jan, mon; any case), Sunday 0 or 7 (a
    range of week days that ends on Sunday takes it as 7: sat-sun).  When
    both day fields are restricted (neither starts with `*`), a day
    matches when either does (the usual cron rule); otherwise both must.

    Fire times are wall-clock times of a time zone: UTC, or an IANA zone
    of /usr/share/zoneinfo (`timezone: Europe/Paris`).  Across a change of
    offset (summer time) each wall-clock time fires once: a time the
    change skips fires at the instant of the change (once for all of the
    skipped times), a time that happens twice fires at its first instant.
    Local times are computed by the C library (setenv TZ, tzset, mktime):
    not thread-safe, the single-threaded broker and the tools only.
*/
#ifndef EVR_CRON_H_INCLUDED
#define EVR_CRON_H_INCLUDED

#include "evr_common.h"

#define EVR_CRON_MAX_EXPR 256   /* bytes of an expression */
#define EVR_CRON_MAX_TZ 64      /* bytes of a time zone name */

typedef struct {
    uint64_t minutes;       /* bit m: minute m (0-59) */
    uint32_t hours;         /* bit h (0-23) */
    uint32_t mdays;         /* bit d (1-31) */
    uint32_t months;        /* bit m (1-12) */
    uint32_t wdays;         /* bit w (0-6, Sunday 0) */
    bool mday_star, wday_star;  /* the field starts with `*` */
} evr_cron_t;

/*  Parses expr into *cron.  EVR_ERR_SPEC with err naming the field, the
    value and what was expected (e.g. `field 2 (hour): 24 is out of range
    0-23`); an expression that can never fire (day 31 of February only)
    is refused too. */
evr_rc_t evr_cron_parse(const char *expr, evr_cron_t *cron, evr_err_t *err);

/*  NULL when zone names an IANA time zone installed under
    /usr/share/zoneinfo (a regular file of zone data, "TZif"; a relative
    name of letters, digits, `_ + - /`, no `..`), else why not (static,
    good until the next call; a name installed in another case is given:
    "did you mean UTC?"; thread-local). */
const char *evr_cron_zone_problem(const char *zone);

/*  The first fire time (seconds since the epoch) strictly after `after`,
    in zone (NULL or "" or "UTC": UTC); EVR_ERR_NOTFOUND when none comes
    in the next 30 years. */
evr_rc_t evr_cron_next(const evr_cron_t *cron, const char *zone, int64_t after, int64_t *next);

#endif
