/*  evr_common.c: error strings, aborting allocators, clocks. */
#define _GNU_SOURCE
#include "evr_common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "evr_codec.h"

const char *
evr_strerror(evr_rc_t rc)
{
    switch (rc) {
    case EVR_OK: return "ok";
    case EVR_ERR_PROTO: return "protocol error";
    case EVR_ERR_SPEC: return "invalid pipeline";
    case EVR_ERR_STORE: return "event store error";
    case EVR_ERR_PODMAN: return "podman error";
    case EVR_ERR_CONFIG: return "configuration error";
    case EVR_ERR_IO: return "I/O error";
    case EVR_ERR_LIMIT: return "limit exceeded";
    case EVR_ERR_NOTFOUND: return "not found";
    case EVR_ERR_STATE: return "illegal state transition";
    }
    return "unknown error";
}

size_t
evr_text_cut(char *s, size_t max)
{
    size_t mark = sizeof EVR_CUT_MARK - 1, n = strlen(s);
    if (max < mark) {
        s[0] = '\0';
        return 0;
    }
    size_t at = n < max - mark ? n : max - mark;
    while (at > 0 && ((unsigned char) s[at] & 0xc0) == 0x80)   /* not inside a character */
        at--;
    memcpy(s + at, EVR_CUT_MARK, mark + 1);
    return at + mark;
}

/*  The escape of the control character at s (*n bytes of it) into esc,
    or 0 when s starts with none (then *n: the bytes of its character):
    C0, DEL, C1 (U+0080-U+009F, which a terminal may take as CSI), and a
    byte that does not start a whole UTF-8 character (a message must be
    UTF-8 to go on the wire). */
static size_t
s_ctl_escape(const unsigned char *s, char esc[9], size_t *n, bool bs)
{
    *n = 1;
    if (bs && *s == '\\')
        return (size_t) snprintf(esc, 9, "\\\\");
    if (*s == '\n' || *s == '\r' || *s == '\t')
        return (size_t) snprintf(esc, 9, "\\%c", *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't');
    if (*s < 0x20 || *s == 0x7f)
        return (size_t) snprintf(esc, 9, "\\x%02x", *s);
    if (*s == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) {
        *n = 2;
        return (size_t) snprintf(esc, 9, "\\u%04x", s[1]);
    }
    if (*s >= 0x80) {
        size_t k = *s >= 0xf0 ? 4 : *s >= 0xe0 ? 3 : 2;
        if (strnlen((const char *) s, k) < k || !evr_utf8_valid((const char *) s, k))
            return (size_t) snprintf(esc, 9, "\\x%02x", *s);
        *n = k;
    }
    return 0;
}

/*  evr_text_escape_ctl, and with bs each backslash as \\ too. */
static char *
s_escape(const char *s, char *out, size_t len, bool bs)
{
    static const char mark[] = EVR_CUT_MARK;
    size_t o = 0, room = len - 1;   /* bytes for text, the NUL after */
    const unsigned char *p = (const unsigned char *) s;
    size_t whole = 0;   /* the escaped length of all of s */
    for (const unsigned char *q = p; *q;) {
        char esc[9];
        size_t in, n = s_ctl_escape(q, esc, &in, bs);
        whole += n ? n : in;
        q += in;
    }
    bool cut = false;
    while (*p) {
        char esc[9];
        size_t in, n = s_ctl_escape(p, esc, &in, bs);
        const char *from = n ? esc : (const char *) p;
        if (!n)   /* one character, whole */
            n = in;
        /* when not all fits, the mark must fit after the last piece */
        size_t need = whole > room ? n + sizeof mark - 1 : n;
        if (o + need > room) {
            cut = true;
            break;
        }
        memcpy(out + o, from, n);
        o += n;
        p += in;
    }
    if (cut && o + sizeof mark - 1 <= room) {
        memcpy(out + o, mark, sizeof mark - 1);
        o += sizeof mark - 1;
    }
    out[o] = '\0';
    return out;
}

char *
evr_text_escape_ctl(const char *s, char *out, size_t len)
{
    return s_escape(s, out, len, false);
}

char *
evr_text_escape(const char *s, char *out, size_t len)
{
    return s_escape(s, out, len, true);
}

bool
evr_text_has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char) *s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

size_t
evr_text_fit(char *s, size_t max)
{
    size_t n = strlen(s);
    return n <= max ? n : evr_text_cut(s, max);
}

evr_rc_t
evr_err_set(evr_err_t *err, evr_rc_t rc, const char *fmt, ...)
{
    if (err) {
        /* Formatted aside first: callers wrap the message err already
           holds ("cannot send: %s", err->msg), and vsnprintf into the
           buffer it reads from is undefined (glibc repeats the prefix and
           loses the cause). */
        char text[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        if (n >= (int) sizeof text)
            evr_text_cut(text, sizeof text - 1);   /* a visible cut */
        memcpy(err->msg, text, strlen(text) + 1);
    }
    return rc;
}

evr_rc_t
evr_err_write(evr_err_t *err, const char *path, int errnum)
{
    if (errnum == ENOSPC)
        return evr_err_set(err, EVR_ERR_IO, "no space left on device writing %s", path);
    if (errnum == EDQUOT)
        return evr_err_set(err, EVR_ERR_IO, "disk quota exceeded writing %s", path);
    return evr_err_set(err, EVR_ERR_IO, "writing %s: %s", path, strerror(errnum));
}

static void
s_oom(size_t size)
{
    fprintf(stderr, "evrun: out of memory allocating %zu bytes\n", size);
    abort();
}

void *
evr_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        s_oom(size);
    return p;
}

void *
evr_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        s_oom(n * size);
    return p;
}

void *
evr_realloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        s_oom(size);
    return q;
}

char *
evr_strndup(const char *s, size_t n)
{
    char *d = evr_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *
evr_strdup(const char *s)
{
    return evr_strndup(s, strlen(s));
}

char *
evr_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *s = evr_malloc((size_t) n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t) n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static uint64_t
s_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

uint64_t
evr_now_ns(void)
{
    return s_clock(CLOCK_REALTIME);
}

uint64_t
evr_mono_ns(void)
{
    return s_clock(CLOCK_MONOTONIC);
}

void
evr_time_format(uint64_t ns, char *buf, size_t size)
{
    if (!ns) {
        snprintf(buf, size, "-");
        return;
    }
    time_t t = (time_t) (ns / 1000000000ull);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

evr_rc_t
evr_mkdirs(const char *path, evr_err_t *err)
{
    return evr_mkdirs_mode(path, 0755, err);
}

evr_rc_t
evr_mkdirs_mode(const char *path, mode_t mode, evr_err_t *err)
{
    char *p = evr_strdup(path);
    evr_rc_t rc = EVR_OK;
    size_t n = strlen(p);
    for (size_t i = 1; i <= n && !rc; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST)
            rc = evr_err_set(err, EVR_ERR_IO, "mkdir %s: %s", p, strerror(errno));
        p[i] = c;
    }
    free(p);
    return rc;
}

void
evr_heap_up(void **h, size_t i, evr_heap_before_fn *before)
{
    while (i && before(h[i], h[(i - 1) / 2])) {
        void *t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

void
evr_heap_down(void **h, size_t n, size_t i, evr_heap_before_fn *before)
{
    for (;;) {
        size_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < n && before(h[l], h[m]))
            m = l;
        if (r < n && before(h[r], h[m]))
            m = r;
        if (m == i)
            return;
        void *t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

const char *
evr_wait_text(int st, char *buf, size_t size)
{
    if (WIFSIGNALED(st) && sigabbrev_np(WTERMSIG(st)))
        snprintf(buf, size, "killed by SIG%s (signal %d)", sigabbrev_np(WTERMSIG(st)),
                 WTERMSIG(st));
    else if (WIFSIGNALED(st))   /* a real-time signal: no name */
        snprintf(buf, size, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, size, "exit %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return buf;
}
