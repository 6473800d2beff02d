/*  evr_podman_reply.c: podman's answers read with jansson, every field
    checked before it is used.

    The shape of each answer is the one podman 4.3.1 sends (the seeds in
    tests/fuzz/corpus_podman/ are real ones).  A field that is missing or
    of another type is an error naming the answer and the field, rather
    than a zero: a zero exit code or an empty state made up from a broken
    answer would be taken for a fact by the engine and by recovery.
*/
#include "evr_podman_reply.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_codec.h"

static evr_rc_t
s_fail(evr_podman_reply_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static evr_rc_t
s_fail(evr_podman_reply_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    evr_utf8_clean(r->msg);
    return r->rc = EVR_ERR_PODMAN;
}

static void
s_reset(evr_podman_reply_t *r)
{
    memset(r, 0, sizeof *r);
    r->rc = EVR_OK;
}

/*  s[0, n) quoted for a message: at most 40 bytes of it, a byte outside
    printable ASCII as \xNN, "..." when there was more. */
static const char *
s_quote(const char *s, size_t n, char *buf, size_t size)
{
    size_t o = 0, i = 0;
    buf[o++] = '"';
    for (; i < n && i < 40 && o + 6 < size; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            buf[o++] = (char) c;
        else
            o += (size_t) snprintf(buf + o, size - o, "\\x%02x", c);
    }
    buf[o++] = '"';
    buf[o] = '\0';
    if (i < n && o + 4 < size)
        memcpy(buf + o, "...", 4);
    return buf;
}

/* --------------------------------------------------------- error bodies */

bool
evr_podman_reply_message(const char *body, size_t len, char *buf, size_t size)
{
    json_t *j = len && len <= EVR_PODMAN_REPLY_MAX ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *jm = json_object_get(j, "message");
    const char *m = json_string_value(jm);
    size_t n = m ? json_string_length(jm) : len;
    if (!m)
        m = body ? body : "";
    while (n > 0 && (m[n - 1] == ' ' || m[n - 1] == '\t' || m[n - 1] == '\r' || m[n - 1] == '\n'))
        n--;   /* "Not Found\n" */
    bool cut = n >= size;
    size_t out;
    if (!cut) {
        memcpy(buf, m, n);
        out = n;
    }
    else {
        /* cut between characters: reasons go into events, which must
           hold valid UTF-8 */
        size_t head = evr_utf8_cut(m, n, size / 4, false), tail = size - head - 8;
        size_t from = evr_utf8_cut(m, n, n - tail, true);
        memcpy(buf, m, head);
        memcpy(buf + head, " [...] ", 7);
        memcpy(buf + head + 7, m + from, n - from);
        out = head + 7 + (n - from);
    }
    buf[out] = '\0';
    for (size_t i = 0; i < out; i++)   /* a NUL of a body that is no JSON */
        if (!buf[i])
            buf[i] = '?';
    evr_utf8_clean(buf);
    json_decref(j);
    return cut;
}

/*  Podman's error: r->msg, r->not_found, r->exists. */
static evr_rc_t
s_error(long status, const char *body, size_t len, evr_podman_reply_t *r)
{
    r->rc = EVR_ERR_PODMAN;
    r->not_found = status == 404;
    r->cut = evr_podman_reply_message(body, len, r->msg, EVR_PODMAN_MSG_MAX);
    if (!r->msg[0])
        snprintf(r->msg, sizeof r->msg, "podman answered HTTP %ld with no message", status);
    /* a taken name has no status of its own: podman answers 500 with
       "... is already in use" (containers), "... already exists"
       (volumes) */
    r->exists = status == 409 || strstr(r->msg, "already in use")
                || strstr(r->msg, "already exists");
    return r->rc;
}

evr_rc_t
evr_podman_reply_plain(long status, const char *body, size_t len, evr_podman_reply_t *r)
{
    s_reset(r);
    return status >= 400 ? s_error(status, body, len, r) : EVR_OK;
}

evr_rc_t
evr_podman_reply_start(long status, const char *body, size_t len, evr_podman_reply_t *r)
{
    s_reset(r);
    if (status >= 400)
        return s_error(status, body, len, r);
    if (status != 204 && status != 304) {
        char head[128];
        evr_podman_reply_message(body, len, head, sizeof head);
        s_fail(r, "the start was answered HTTP %ld (\"%s\"), where podman answers 204 "
               "(started) or 304 (running): the container may not have started; is podman's "
               "service what answers at the socket (not a proxy)?", status, head);
    }
    return r->rc;
}

/* ------------------------------------------------------------ JSON bodies */

/*  What j is, for "expected X, got Y". */
static const char *
s_what(const json_t *j)
{
    switch (j ? json_typeof(j) : JSON_NULL) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return j ? "null" : "nothing";
    }
}

/*  The body as JSON of the type want (JSON_OBJECT or JSON_ARRAY), or NULL
    with r failed. */
static json_t *
s_load(const char *what, const char *body, size_t len, json_type want, evr_podman_reply_t *r)
{
    if (len > EVR_PODMAN_REPLY_MAX) {
        s_fail(r, "podman's answer to %s is %zu bytes, over the limit of %u", what, len,
               EVR_PODMAN_REPLY_MAX);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(body ? body : "", len, 0, &je);
    if (!j) {
        s_fail(r, "podman answered with a body that is not JSON (%s: line %d, column %d: %s)",
               what, je.line, je.column, je.text);
        return NULL;
    }
    if (json_typeof(j) != want) {
        s_fail(r, "podman's answer to %s: expected %s, got %s", what,
               want == JSON_OBJECT ? "an object" : "an array", s_what(j));
        json_decref(j);
        return NULL;
    }
    return j;
}

/*  The start of reading a JSON answer: r reset, then podman's error for a
    status of 400 or more, else the body as JSON of the type want
    (s_load).  NULL when r failed. */
static json_t *
s_json_answer(const char *what, long status, const char *body, size_t len, json_type want,
              evr_podman_reply_t *r)
{
    s_reset(r);
    if (status >= 400) {
        s_error(status, body, len, r);
        return NULL;
    }
    return s_load(what, body, len, want, r);
}

/*  A string of 1 to size-1 bytes, each one of the class (alnum: letters
    and digits; lower: lowercase letters), into buf. */
static bool
s_word(const json_t *j, bool lower_only, char *buf, size_t size)
{
    const char *s = json_string_value(j);
    size_t n = s ? json_string_length(j) : 0;
    if (!n || n >= size)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z')
                  || (!lower_only && ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')));
        if (!ok)
            return false;
    }
    memcpy(buf, s, n + 1);
    return true;
}

/*  A word field (s_word) of obj, or r failed naming field. */
static evr_rc_t
s_get_word(const char *what, const json_t *obj, const char *field, const char *key,
           bool lower_only, char *buf, size_t size, evr_podman_reply_t *r)
{
    json_t *j = json_object_get(obj, key);
    if (!json_is_string(j))
        return s_fail(r, "podman's answer to %s: %s: expected a string, got %s", what, field,
                      s_what(j));
    if (!s_word(j, lower_only, buf, size)) {
        char q[200];
        return s_fail(r, "podman's answer to %s: %s: %s is not %s", what, field,
                      s_quote(json_string_value(j), json_string_length(j), q, sizeof q),
                      lower_only ? "a state (one lowercase word)"
                      : strcmp(what, "info") ? "an id (letters and digits)"
                                             : "a word of letters and digits");
    }
    return EVR_OK;
}

/* ------------------------------------------------------------- per call */

evr_rc_t
evr_podman_reply_create(long status, const char *body, size_t len, evr_podman_reply_t *r)
{
    json_t *j = s_json_answer("create", status, body, len, JSON_OBJECT, r);
    if (j)
        s_get_word("create", j, "Id", "Id", false, r->id, sizeof r->id, r);
    json_decref(j);
    return r->rc;
}

evr_rc_t
evr_podman_reply_wait(long status, const char *body, size_t len, evr_podman_reply_t *r)
{
    s_reset(r);
    if (status >= 400)
        return s_error(status, body, len, r);
    const char *s = body ? body : "", *end = s + len;
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    bool neg = s < end && *s == '-';
    const char *d = s + neg;
    int64_t v = 0;
    bool ok = d < end && end - d <= 10;   /* an int32 has at most 10 digits */
    for (const char *p = d; ok && p < end; p++) {
        ok = *p >= '0' && *p <= '9';
        v = v * 10 + (*p - '0');
    }
    v = neg ? -v : v;
    if (!ok || v < INT32_MIN || v > INT32_MAX) {
        char q[200];
        return s_fail(r, "wait: podman answered %s, not an exit code",
                      s_quote(body ? body : "", len, q, sizeof q));
    }
    r->exit_code = v;
    return EVR_OK;
}

/*  State of an inspect answer: Status, ExitCode, OOMKilled, StartedAt,
    FinishedAt. */
static evr_rc_t
s_state(const json_t *st, evr_podman_reply_t *r)
{
    if (!json_is_object(st))
        return s_fail(r, "podman's answer to inspect: State: expected an object, got %s",
                      s_what(st));
    if (s_get_word("inspect", st, "State.Status", "Status", true, r->state, sizeof r->state, r))
        return r->rc;
    json_t *j = json_object_get(st, "ExitCode");
    if (!json_is_integer(j))
        return s_fail(r, "podman's answer to inspect: State.ExitCode: expected an integer, "
                      "got %s", s_what(j));
    json_int_t code = json_integer_value(j);
    if (code < INT32_MIN || code > INT32_MAX)
        return s_fail(r, "podman's answer to inspect: State.ExitCode: %lld is not an exit "
                      "code (an int32)", (long long) code);
    r->exit_code = code;
    j = json_object_get(st, "OOMKilled");
    if (j && !json_is_boolean(j))
        return s_fail(r, "podman's answer to inspect: State.OOMKilled: expected true or false, "
                      "got %s", s_what(j));
    r->oom_killed = json_is_true(j);
    j = json_object_get(st, "StartedAt");
    if (j && !json_is_string(j))
        return s_fail(r, "podman's answer to inspect: State.StartedAt: expected a string, got "
                      "%s", s_what(j));
    if (j && !evr_podman_reply_time(json_string_value(j), json_string_length(j),
                                     &r->started_at)) {
        char q[200];
        return s_fail(r, "podman's answer to inspect: State.StartedAt: %s is not an RFC 3339 "
                      "time", s_quote(json_string_value(j), json_string_length(j), q, sizeof q));
    }
    j = json_object_get(st, "FinishedAt");
    if (j && !json_is_string(j))
        return s_fail(r, "podman's answer to inspect: State.FinishedAt: expected a string, got "
                      "%s", s_what(j));
    if (j && !evr_podman_reply_time(json_string_value(j), json_string_length(j),
                                     &r->finished_at)) {
        char q[200];
        return s_fail(r, "podman's answer to inspect: State.FinishedAt: %s is not an RFC 3339 "
                      "time", s_quote(json_string_value(j), json_string_length(j), q, sizeof q));
    }
    return EVR_OK;
}

/*  v[0, n) an absolute path of printable characters (no NUL), of at most
    4096 bytes, and more than "/". */
static bool
s_abs_path(const char *v, size_t n)
{
    bool ok = v && n > 1 && n <= 4096 && v[0] == '/';
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char) v[i] >= 0x20 && v[i] != 0x7f;
    return ok;
}

evr_rc_t
evr_podman_reply_inspect(long status, const char *body, size_t len, evr_podman_reply_t *r)
{
    json_t *j = s_json_answer("inspect", status, body, len, JSON_OBJECT, r);
    if (j && !s_get_word("inspect", j, "Id", "Id", false, r->id, sizeof r->id, r))
        s_state(json_object_get(j, "State"), r);
    /* podman 4.3 with runc on cgroup v1 shows OOMKilled false after an OOM
       kill: a SIGKILL (exit 137) under a memory limit counts as one */
    json_t *mem = json_object_get(json_object_get(j, "HostConfig"), "Memory");
    if (!r->rc && r->exit_code == 137 && json_is_integer(mem) && json_integer_value(mem) > 0)
        r->oom_killed = true;
    const char *dir = json_string_value(json_object_get(j, "StaticDir"));
    if (!r->rc && s_abs_path(dir, json_string_length(json_object_get(j, "StaticDir"))))
        r->dir = evr_strdup(dir);
    json_decref(j);
    if (r->rc) {   /* nothing half-read stays */
        r->id[0] = r->state[0] = '\0';
        r->exit_code = 0;
        r->oom_killed = false;
        r->started_at = r->finished_at = 0;
    }
    return r->rc;
}

evr_rc_t
evr_podman_reply_volume(long status, const char *body, size_t len, evr_podman_reply_t *r)
{
    json_t *j = s_json_answer("volume inspect", status, body, len, JSON_OBJECT, r);
    json_t *mp = j ? json_object_get(j, "Mountpoint") : NULL;
    const char *v = json_string_value(mp);
    size_t n = json_string_length(mp);
    if (j && s_abs_path(v, n))
        r->names = evr_strndup(v, n);
    else if (j)
        s_fail(r, "podman's answer to volume inspect: Mountpoint: expected an absolute path, "
                  "got %s", s_what(mp));
    json_decref(j);
    return r->rc;
}

evr_rc_t
evr_podman_reply_info(long status, const char *body, size_t len, evr_podman_reply_t *r)
{
    json_t *j = s_json_answer("info", status, body, len, JSON_OBJECT, r);
    json_t *host = json_object_get(j, "host");
    json_t *rl = json_object_get(json_object_get(host, "security"), "rootless");
    if (j && !json_is_object(host))
        s_fail(r, "podman's answer to info: host: expected an object, got %s", s_what(host));
    else if (j && !json_is_boolean(rl))
        s_fail(r, "podman's answer to info: host.security.rootless: expected true or false, "
                  "got %s", s_what(rl));
    else if (j && !s_get_word("info", host, "host.cgroupVersion", "cgroupVersion", false,
                              r->cgroup_version, sizeof r->cgroup_version, r)
             && json_object_get(host, "cgroupManager"))
        s_get_word("info", host, "host.cgroupManager", "cgroupManager", false,
                   r->cgroup_manager, sizeof r->cgroup_manager, r);
    r->rootless = !r->rc && json_is_true(rl);
    json_decref(j);
    if (r->rc)
        r->cgroup_version[0] = r->cgroup_manager[0] = '\0';
    return r->rc;
}

/*  A podman name: [A-Za-z0-9][A-Za-z0-9_.-]*, at most EVR_PODMAN_NAME_MAX. */
static bool
s_podman_name(const char *s, size_t n)
{
    if (!n || n > EVR_PODMAN_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || (i > 0 && (c == '_' || c == '.' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

/*  The name of list entry i (a container's first of Names, a volume's
    Name) into *name, or r failed. */
static evr_rc_t
s_entry_name(const json_t *e, size_t i, const json_t **name, evr_podman_reply_t *r)
{
    if (!json_is_object(e))
        return s_fail(r, "podman's answer to list: [%zu]: expected an object, got %s", i,
                      s_what(e));
    const json_t *names = json_object_get(e, "Names");
    if (names) {
        if (!json_is_array(names) || !json_is_string(json_array_get(names, 0)))
            return s_fail(r, "podman's answer to list: [%zu].Names: expected an array of "
                          "strings, got %s%s", i, s_what(names),
                          json_is_array(names) ? " without one" : "");
        *name = json_array_get(names, 0);
        return EVR_OK;
    }
    *name = json_object_get(e, "Name");   /* volumes */
    if (!json_is_string(*name))
        return s_fail(r, "podman's answer to list: [%zu].Name: expected a string, got %s", i,
                      s_what(*name));
    return EVR_OK;
}

evr_rc_t
evr_podman_reply_list(long status, const char *body, size_t len, const char *prefix,
                      evr_podman_reply_t *r)
{
    json_t *j = s_json_answer("list", status, body, len, JSON_ARRAY, r);
    if (!j)
        return r->rc;
    size_t plen = strlen(prefix), n = 0, cap = 64, i;
    char *names = evr_malloc(cap);
    json_t *e;
    json_array_foreach(j, i, e) {
        const json_t *name = NULL;
        if (s_entry_name(e, i, &name, r))
            break;
        const char *s = json_string_value(name);
        size_t k = json_string_length(name);
        if (k < plen || memcmp(s, prefix, plen) != 0)
            continue;   /* not ours: whatever it is */
        if (!s_podman_name(s, k)) {
            char q[200];
            s_fail(r, "podman's answer to list: [%zu]: %s is not a container or volume name",
                   i, s_quote(s, k, q, sizeof q));
            break;
        }
        if (n + k + 2 > cap) {
            cap = 2 * (n + k + 2);
            names = evr_realloc(names, cap);
        }
        memcpy(names + n, s, k);
        names[n + k] = '\n';
        n += k + 1;
    }
    json_decref(j);
    names[n] = '\0';
    if (r->rc)
        free(names);
    else
        r->names = names;
    return r->rc;
}

void
evr_podman_reply_clear(evr_podman_reply_t *r)
{
    free(r->names);
    r->names = NULL;
    free(r->dir);
    r->dir = NULL;
}

/* ------------------------------------------------------------------ time */

/*  n decimal digits at *p into *v, *p moved past them. */
static bool
s_digits(const char **p, const char *end, int n, int *v)
{
    if (end - *p < n)
        return false;
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return false;
        *v = *v * 10 + (**p - '0');
    }
    return true;
}

/*  One byte at *p that is one of set, *p moved past it. */
static bool
s_char(const char **p, const char *end, const char *set)
{
    if (*p == end || !**p || !strchr(set, **p))
        return false;
    (*p)++;
    return true;
}

/*  Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's
    days_from_civil). */
static int64_t
s_days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool
evr_podman_reply_time(const char *s, size_t len, uint64_t *ns)
{
    const char *p = s, *end = s + len;
    int y, mo, d, h, mi, sec, oh = 0, om = 0;
    *ns = 0;
    if (!s_digits(&p, end, 4, &y) || !s_char(&p, end, "-") || !s_digits(&p, end, 2, &mo)
        || !s_char(&p, end, "-") || !s_digits(&p, end, 2, &d) || !s_char(&p, end, "Tt")
        || !s_digits(&p, end, 2, &h) || !s_char(&p, end, ":") || !s_digits(&p, end, 2, &mi)
        || !s_char(&p, end, ":") || !s_digits(&p, end, 2, &sec))
        return false;
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) || h > 23
        || mi > 59 || sec > 60)
        return false;
    uint64_t frac = 0;
    int fd = 0;
    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++, fd++)
            if (fd < 9)
                frac = frac * 10 + (uint64_t) (*p - '0');
        if (fd == 0 || fd > 9)
            return false;
        for (int k = fd; k < 9; k++)
            frac *= 10;
    }
    int sign = 0;
    if (p < end && (*p == 'Z' || *p == 'z'))
        p++;
    else if (p < end && (*p == '+' || *p == '-')) {
        sign = *p++ == '+' ? 1 : -1;
        if (!s_digits(&p, end, 2, &oh) || !s_char(&p, end, ":") || !s_digits(&p, end, 2, &om)
            || oh > 23 || om > 59)
            return false;
    }
    else
        return false;
    if (p != end)
        return false;
    int64_t t = ((s_days(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec
                - sign * (oh * 3600 + om * 60);
    if (t < 0)
        return true;   /* before 1970: podman's zero time, "never" */
    if ((uint64_t) t > (UINT64_MAX - frac) / 1000000000u)
        return false;
    *ns = (uint64_t) t * 1000000000u + frac;
    return true;
}

evr_rc_t
evr_podman_reply_remove(long status, const char *body, size_t len, evr_podman_reply_t *r)
{
    s_reset(r);
    if (status >= 400)
        return s_error(status, body, len, r);
    if (status == 204 || len == 0)
        return EVR_OK;
    json_t *j = s_load("remove", body, len, JSON_ARRAY, r);
    if (!j)
        return r->rc;
    size_t i;
    json_t *rep;
    json_array_foreach (j, i, rep) {
        const char *err = json_string_value(json_object_get(rep, "Err"));
        if (!json_is_object(rep))
            s_fail(r, "podman's answer to remove: [%zu]: expected an object, got %s", i,
                   s_what(rep));
        else if (err && err[0])
            s_fail(r, "podman did not remove it: %.900s", err);
        if (r->rc)
            break;
    }
    json_decref(j);
    return r->rc;
}
