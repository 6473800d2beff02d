/*  evr_cron.c: cron expressions (see evr_cron.h).

    A field becomes a bit set; the next fire time walks the days from the
    wall-clock date of `after` on, and in a matching day the hours and
    minutes of the sets.  A wall-clock time becomes an instant through the
    zone's offsets just before and after it (localtime_r under TZ), so
    summer time changes need no special case in the walk.
*/
#include "evr_cron.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define S_ZONEINFO "/usr/share/zoneinfo/"
#define S_SEARCH_DAYS (30 * 366)

typedef struct {
    const char *name;
    int lo, hi;
    const char *const *names;   /* names for lo.., NULL: numbers only */
} s_field_t;

static const char *const s_months[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
                                        "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const s_wdays[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

static const s_field_t s_fields[5] = {
    { "minute", 0, 59, NULL },
    { "hour", 0, 23, NULL },
    { "day of month", 1, 31, NULL },
    { "month", 1, 12, s_months },
    { "day of week", 0, 7, s_wdays },
};

/*  One value of field f at *p (a number or a name), moved past it. */
static evr_rc_t
s_value(const s_field_t *f, int idx, const char **p, int *out, evr_err_t *err)
{
    const char *s = *p;
    if (isdigit((unsigned char) *s)) {
        long v = 0;
        int digits = (int) strspn(s, "0123456789");
        while (isdigit((unsigned char) *s) && v < 1000)
            v = v * 10 + (*s++ - '0');
        if (v < f->lo || v > f->hi)   /* the number as written, not the part read */
            return evr_err_set(err, EVR_ERR_SPEC, "field %d (%s): %.*s%s is out of range %d-%d",
                               idx + 1, f->name, digits > 16 ? 16 : digits, *p,
                               digits > 16 ? "..." : "", f->lo, f->hi);
        *p = s;
        *out = (int) v;
        return EVR_OK;
    }
    for (int i = 0; f->names && f->names[i]; i++)
        if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char) s[3])) {
            *p = s + 3;
            *out = f->lo + i;
            return EVR_OK;
        }
    int n = (int) strcspn(s, " \t,-/");
    return evr_err_set(err, EVR_ERR_SPEC, "field %d (%s): unexpected \"%.*s\": expected a "
                       "number %d-%d%s, `*`, a range A-B or a step /N", idx + 1, f->name,
                       n ? (n > 16 ? 16 : n) : 1, s,
                       f->lo, f->hi, f->names ? " or a three-letter English name" : "");
}

/*  One comma-separated item (s..end) of field idx into *bits. */
static evr_rc_t
s_item(int idx, const char *s, const char *end, uint64_t *bits, evr_err_t *err)
{
    const s_field_t *f = &s_fields[idx];
    int lo = f->lo, hi = f->hi, step = 1;
    const char *p = s;
    evr_rc_t rc = EVR_OK;
    if (*p == '*')
        p++;
    else {
        if ((rc = s_value(f, idx, &p, &lo, err)))
            return rc;
        hi = lo;
        if (*p == '-') {
            p++;
            if ((rc = s_value(f, idx, &p, &hi, err)))
                return rc;
            if (idx == 4 && hi == 0 && lo > 0)
                hi = 7;     /* sat-sun, 5-0: Sunday as 7, the end of the week */
            if (hi < lo)
                return evr_err_set(err, EVR_ERR_SPEC, "field %d (%s): range %.*s goes "
                                   "backwards: write the smaller value first", idx + 1,
                                   f->name, (int) (end - s), s);
        }
    }
    if (*p == '/') {
        p++;
        long v = 0;
        const char *d = p;
        while (isdigit((unsigned char) *p) && v < 1000)
            v = v * 10 + (*p++ - '0');
        if (p == d || v < 1 || v > f->hi)
            return evr_err_set(err, EVR_ERR_SPEC, "field %d (%s): step /%.*s: expected a "
                               "number 1-%d", idx + 1, f->name, (int) (end - d), d, f->hi);
        step = (int) v;
        if (hi == lo && *s != '*')
            hi = f->hi;     /* A/S: from A to the end */
    }
    if (p != end)
        return evr_err_set(err, EVR_ERR_SPEC, "field %d (%s): unexpected \"%.*s\" in \"%.*s\"",
                           idx + 1, f->name, (int) (end - p), p, (int) (end - s), s);
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ull << (idx == 4 && v == 7 ? 0 : v);   /* Sunday is 0 and 7 */
    return EVR_OK;
}

/*  Field idx (s, n bytes) into *bits. */
static evr_rc_t
s_field(int idx, const char *s, size_t n, uint64_t *bits, evr_err_t *err)
{
    const char *end = s + n;
    *bits = 0;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t) (end - s));
        const char *stop = comma ? comma : end;
        if (stop == s)
            return evr_err_set(err, EVR_ERR_SPEC, "field %d (%s): an empty item in the list",
                               idx + 1, s_fields[idx].name);
        evr_rc_t rc = s_item(idx, s, stop, bits, err);
        if (rc)
            return rc;
        s = comma ? comma + 1 : end;
        if (comma && s == end)
            return evr_err_set(err, EVR_ERR_SPEC, "field %d (%s): the list ends with a comma",
                               idx + 1, s_fields[idx].name);
    }
    return EVR_OK;
}

/*  Whether some chosen month has some chosen day (the day fields alone). */
static bool
s_can_fire(const evr_cron_t *c)
{
    static const int mdays[13] = { 0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (!c->wday_star && !c->mday_star)
        return true;    /* either day field: any week day comes in any month */
    if (c->mday_star)
        return true;
    for (int m = 1; m <= 12; m++)
        if (c->months & (1u << m))
            for (int d = 1; d <= mdays[m]; d++)
                if (c->mdays & (1u << d))
                    return true;
    return false;
}

evr_rc_t
evr_cron_parse(const char *expr, evr_cron_t *cron, evr_err_t *err)
{
    memset(cron, 0, sizeof *cron);
    if (strlen(expr) > EVR_CRON_MAX_EXPR)
        return evr_err_set(err, EVR_ERR_SPEC, "%zu bytes, at most %d", strlen(expr),
                           EVR_CRON_MAX_EXPR);
    const char *p = expr, *start[6];
    size_t len[6];
    int n = 0;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *s = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (n < 6) {
            start[n] = s;
            len[n] = (size_t) (p - s);
        }
        n++;
    }
    /* cron's @ words (Vixie cron, GitHub's docs): what they stand for */
    static const char *const words[][2] = {
        { "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
        { "@weekly", "0 0 * * 0" }, { "@daily", "0 0 * * *" }, { "@midnight", "0 0 * * *" },
        { "@hourly", "0 * * * *" },
    };
    for (size_t i = 0; n == 1 && i < sizeof words / sizeof words[0]; i++)
        if (len[0] == strlen(words[i][0]) && !strncmp(start[0], words[i][0], len[0]))
            return evr_err_set(err, EVR_ERR_SPEC, "\"%s\": 1 field, expected five: write %s "
                               "as \"%s\" (minute hour day-of-month month day-of-week)", expr,
                               words[i][0], words[i][1]);
    if (n != 5)
        return evr_err_set(err, EVR_ERR_SPEC, "\"%s\": %d field%s, expected five: minute hour "
                           "day-of-month month day-of-week (e.g. \"*/15 * * * *\", "
                           "\"0 3 * * mon-fri\")", expr, n, n == 1 ? "" : "s");
    uint64_t bits[5];
    for (int i = 0; i < 5; i++) {
        evr_rc_t rc = s_field(i, start[i], len[i], &bits[i], err);
        if (rc)
            return rc;
    }
    cron->minutes = bits[0];
    cron->hours = (uint32_t) bits[1];
    cron->mdays = (uint32_t) bits[2];
    cron->months = (uint32_t) bits[3];
    cron->wdays = (uint32_t) bits[4];
    cron->mday_star = start[2][0] == '*';
    cron->wday_star = start[4][0] == '*';
    if (!s_can_fire(cron))
        return evr_err_set(err, EVR_ERR_SPEC, "\"%s\" never fires: no chosen month has the "
                           "chosen day of month", expr);
    return EVR_OK;
}

/*  The zone's name as installed when it differs from zone in case only
    (utc: UTC, europe/paris: Europe/Paris), into out; false when there is
    none.  Each component is looked up in its directory. */
static bool
s_zone_case(const char *zone, char *out, size_t size)
{
    const size_t base = sizeof S_ZONEINFO - 1;
    char dir[sizeof S_ZONEINFO + EVR_CRON_MAX_TZ + 1] = S_ZONEINFO;
    size_t at = 0;      /* bytes of out: the zone's bytes, in the installed case */
    for (const char *p = zone; *p;) {
        size_t n = strcspn(p, "/");
        if (at + 1 + n >= size || base + at + 1 + n >= sizeof dir)
            return false;
        DIR *d = opendir(dir);
        struct dirent *e = NULL;
        while (d && (e = readdir(d)))
            if (strlen(e->d_name) == n && !strncasecmp(e->d_name, p, n))
                break;
        bool found = e != NULL;
        if (found) {
            if (at)
                out[at++] = '/';
            memcpy(out + at, e->d_name, n);
            at += n;
            memcpy(dir + base, out, at);
            dir[base + at] = '/';
            dir[base + at + 1] = '\0';
        }
        if (d)
            closedir(d);
        if (!found)
            return false;
        p += n + (p[n] == '/');
    }
    out[at] = '\0';
    dir[base + at] = '\0';
    struct stat st;
    return at && strcmp(out, zone) && stat(dir, &st) == 0 && S_ISREG(st.st_mode);
}

const char *
evr_cron_zone_problem(const char *zone)
{
    /* the answer with a suggestion (a spec's decode checks it, in any thread) */
    static _Thread_local char why[EVR_CRON_MAX_TZ + 160];
    if (!zone || !*zone)
        return "empty time zone name";
    if (strlen(zone) > EVR_CRON_MAX_TZ)
        return "a time zone name has at most 64 bytes";
    if (zone[0] == '/' || strstr(zone, ".."))
        return "expected an IANA zone name such as Europe/Paris (relative, no ..)";
    for (const char *p = zone; *p; p++)
        if (!isalnum((unsigned char) *p) && !strchr("_+-/", *p))
            return "expected an IANA zone name such as Europe/Paris (letters, digits, _ + - /)";
    char path[sizeof S_ZONEINFO + EVR_CRON_MAX_TZ];
    snprintf(path, sizeof path, "%s%s", S_ZONEINFO, zone);
    struct stat st;
    char near[EVR_CRON_MAX_TZ + 1];
    if ((stat(path, &st) != 0 || !S_ISREG(st.st_mode)) && s_zone_case(zone, near, sizeof near)) {
        snprintf(why, sizeof why, "unknown time zone: no such file under /usr/share/zoneinfo; "
                 "did you mean %s? (names are case-sensitive)", near);
        return why;
    }
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return "unknown time zone: no such file under /usr/share/zoneinfo (names as "
               "Area/City, e.g. Europe/Paris, America/New_York, UTC)";
    char magic[4] = "";
    FILE *fp = fopen(path, "rb");
    size_t n = fp ? fread(magic, 1, sizeof magic, fp) : 0;
    if (fp)
        fclose(fp);
    if (n != sizeof magic || memcmp(magic, "TZif", 4) != 0)
        return "not a time zone: that file under /usr/share/zoneinfo holds no zone data (names "
               "as Area/City, e.g. Europe/Paris)";
    return NULL;
}

/* ------------------------------------------------------------ fire times */

/*  The wall-clock time of instant t, as seconds of a UTC calendar. */
static int64_t
s_wall(int64_t t, bool utc)
{
    if (utc)
        return t;
    time_t tt = (time_t) t;
    struct tm tm;
    localtime_r(&tt, &tm);
    return (int64_t) timegm(&tm);
}

/*  The first instant whose wall-clock time is w, or the second when the
    first is not after `after`; in a gap, the instant of the change. */
static int64_t
s_instant(int64_t w, int64_t after, bool utc)
{
    if (utc)
        return w;
    const int64_t span = 26 * 3600;    /* offsets are within -12..+14 hours */
    int64_t o1 = s_wall(w - span, false) - (w - span);
    int64_t o2 = s_wall(w + span, false) - (w + span);
    int64_t a = w - (o1 > o2 ? o1 : o2), b = w - (o1 > o2 ? o2 : o1);   /* a <= b */
    bool va = s_wall(a, false) == w, vb = s_wall(b, false) == w;
    if (va && (a > after || !vb))
        return a;
    if (vb)
        return b;
    if (va)
        return a;
    /* a gap: the first instant whose wall-clock time passes w */
    int64_t lo = a, hi = b;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s_wall(mid, false) > w)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static bool
s_day_matches(const evr_cron_t *c, const struct tm *d)
{
    if (!(c->months & (1u << (d->tm_mon + 1))))
        return false;
    bool md = (c->mdays >> d->tm_mday) & 1, wd = (c->wdays >> d->tm_wday) & 1;
    if (!c->mday_star && !c->wday_star)
        return md || wd;
    return md && wd;
}

/*  The walk under TZ already set (utc: no zone). */
static evr_rc_t
s_next(const evr_cron_t *c, bool utc, int64_t after, int64_t *next)
{
    int64_t w0 = s_wall(after, utc);
    int64_t day0 = w0 - ((w0 % 86400) + 86400) % 86400;
    for (int k = 0; k < S_SEARCH_DAYS; k++) {
        int64_t day = day0 + (int64_t) k * 86400;
        time_t dt = (time_t) day;
        struct tm d;
        gmtime_r(&dt, &d);
        if (!s_day_matches(c, &d))
            continue;
        for (int h = 0; h < 24; h++) {
            if (!((c->hours >> h) & 1))
                continue;
            for (int m = 0; m < 60; m++) {
                int64_t w = day + h * 3600 + m * 60;
                if (!((c->minutes >> m) & 1) || w <= w0 - (w0 % 60 + 60) % 60)
                    continue;
                int64_t t = s_instant(w, after, utc);
                if (t > after) {
                    *next = t;
                    return EVR_OK;
                }
            }
        }
    }
    return EVR_ERR_NOTFOUND;
}

evr_rc_t
evr_cron_next(const evr_cron_t *cron, const char *zone, int64_t after, int64_t *next)
{
    bool utc = !zone || !*zone || !strcmp(zone, "UTC");
    if (utc)
        return s_next(cron, true, after, next);
    const char *old = getenv("TZ");
    char *saved = old ? evr_strdup(old) : NULL;
    setenv("TZ", zone, 1);
    tzset();
    evr_rc_t rc = s_next(cron, false, after, next);
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
    return rc;
}
