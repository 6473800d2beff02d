/*  evr_diag.c: error list and source map of one pipeline file. */
#include "evr_diag.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_codec.h"
#include "evr_field.h"

typedef struct {
    char *path;
    size_t len;   /* of path: s_find compares it first (a file has many marks) */
    uint32_t line, col;
} s_mark_t;

/*  One error: about path (as written in the file), msg; of a matrix
    step's combinations (combos of them, 0: not a matrix step's), the
    ones it arose for (in); text the line shown. */
typedef struct {
    char *path, *msg, *text;
    uint32_t line, col, combos;
    evr_strlist_t in;
} s_error_t;

struct evr_diag {
    char *file;
    s_mark_t *marks;
    size_t nmarks, capmarks;
    /* the errors (one per field, or per field and combination),
       EVR_DIAG_MAX at most: made at the first error, so that a diag that
       finds none (a message's checks, most of the time) is one small
       allocation */
    s_error_t *errors;
    size_t nerrors;
    /* a list expanded (evr_diag_expand_list): item k of it is item
       written[k] of the file, combination name[k] (NULL: no matrix) of
       combos[k] */
    char *xlist;
    uint32_t xn, *written, *combos;
    char **name;
};

evr_diag_t *
evr_diag_new(const char *file)
{
    evr_diag_t *self = evr_calloc(1, sizeof *self);
    self->file = evr_strdup(file);
    return self;
}

void
evr_diag_destroy(evr_diag_t **self_p)
{
    evr_diag_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nmarks; i++)
        free(self->marks[i].path);
    free(self->marks);
    for (size_t i = 0; i < self->nerrors && i < EVR_DIAG_MAX; i++) {
        s_error_t *e = &self->errors[i];
        free(e->path);
        free(e->msg);
        free(e->text);
        evr_strlist_free(&e->in);
    }
    free(self->errors);
    for (uint32_t k = 0; k < self->xn; k++)
        free(self->name[k]);
    free(self->name);
    free(self->written);
    free(self->combos);
    free(self->xlist);
    free(self->file);
    free(self);
    *self_p = NULL;
}

static const s_mark_t *
s_find(const evr_diag_t *self, const char *path, size_t len)
{
    for (size_t i = 0; i < self->nmarks; i++)
        if (self->marks[i].len == len && memcmp(self->marks[i].path, path, len) == 0)
            return &self->marks[i];
    return NULL;
}

void
evr_diag_mark(evr_diag_t *self, const char *path, uint32_t line, uint32_t col)
{
    if (self->nmarks == self->capmarks) {
        self->capmarks = self->capmarks ? self->capmarks * 2 : 64;
        self->marks = evr_realloc(self->marks, self->capmarks * sizeof *self->marks);
    }
    self->marks[self->nmarks++] = (s_mark_t) { evr_strdup(path), strlen(path), line, col };
}

/*  The index i of path "LIST[i]..." (rest at *rest), or -1. */
static long
s_item_of(const char *path, const char *list, size_t llen, const char **rest)
{
    if (strncmp(path, list, llen) || path[llen] != '[')
        return -1;
    char *end;
    long i = strtol(path + llen + 1, &end, 10);
    if (end == path + llen + 1 || *end != ']' || i < 0)
        return -1;
    *rest = end + 1;
    return i;
}

void
evr_diag_remap_list(evr_diag_t *self, const char *list, const uint32_t *first,
                    const uint32_t *count, uint32_t n)
{
    size_t llen = strlen(list), nold = self->nmarks;
    s_mark_t *old = self->marks;
    self->marks = NULL;
    self->nmarks = self->capmarks = 0;
    for (size_t m = 0; m < nold; m++) {
        const char *rest;
        long i = s_item_of(old[m].path, list, llen, &rest);
        if (i < 0 || (uint64_t) i >= n) {
            evr_diag_mark(self, old[m].path, old[m].line, old[m].col);
            free(old[m].path);
            continue;
        }
        for (uint32_t k = 0; k < count[i]; k++) {
            char *p = evr_asprintf("%s[%u]%s", list, first[i] + k, rest);
            evr_diag_mark(self, p, old[m].line, old[m].col);
            free(p);
        }
        free(old[m].path);
    }
    free(old);
}

void
evr_diag_expand_list(evr_diag_t *self, const char *list, const uint32_t *first,
                     const uint32_t *count, uint32_t n, char *const *names)
{
    evr_diag_remap_list(self, list, first, count, n);
    for (uint32_t k = 0; k < self->xn; k++)
        free(self->name[k]);
    uint32_t total = n ? first[n - 1] + count[n - 1] : 0;
    free(self->xlist);
    self->xlist = evr_strdup(list);
    self->xn = total;
    self->written = evr_realloc(self->written, (total ? total : 1) * sizeof *self->written);
    self->combos = evr_realloc(self->combos, (total ? total : 1) * sizeof *self->combos);
    self->name = evr_realloc(self->name, (total ? total : 1) * sizeof *self->name);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t c = 0; c < count[i]; c++) {
            uint32_t k = first[i] + c;
            self->written[k] = i;
            self->name[k] = names && names[k] ? evr_strdup(names[k]) : NULL;
            self->combos[k] = self->name[k] ? count[i] : 0;
        }
}

uint32_t
evr_diag_written_index(const evr_diag_t *self, const char *list, uint32_t i)
{
    return self->xlist && !strcmp(list, self->xlist) && i < self->xn ? self->written[i] : i;
}

/*  Path as written in the file (caller frees): LIST[k]... of an expanded
    list is LIST[i]... of the item it came from; *item its index in the
    expanded list (-1: none). */
static char *
s_written(const evr_diag_t *self, const char *path, long *item)
{
    const char *rest;
    long k = self->xlist ? s_item_of(path, self->xlist, strlen(self->xlist), &rest) : -1;
    *item = k >= 0 && (uint64_t) k < self->xn ? k : -1;
    if (*item < 0)
        return evr_strdup(path);
    return evr_asprintf("%s[%u]%s", self->xlist, self->written[k], rest);
}

bool
evr_diag_pos(const evr_diag_t *self, const char *path, uint32_t *line, uint32_t *col)
{
    size_t len = strlen(path);
    while (true) {
        const s_mark_t *m = s_find(self, path, len);
        if (m) {
            *line = m->line;
            *col = m->col;
            return true;
        }
        /* strip the last component: ".name" or "[i]" */
        while (len > 0 && path[len - 1] != '.' && path[len - 1] != '[')
            len--;
        if (len == 0)
            return false;
        len--;
    }
}

bool
evr_diag_marked(const evr_diag_t *self, const char *path)
{
    return s_find(self, path, strlen(path)) != NULL;
}

bool
evr_diag_reported(const evr_diag_t *self, const char *path)
{
    long item;
    char *w = s_written(self, path, &item);
    size_t len = strlen(w);
    bool found = false;
    for (size_t i = 0; i < self->nerrors && i < EVR_DIAG_MAX && !found; i++) {
        const char *p = self->errors[i].path;
        found = strncmp(p, w, len) == 0 && (!p[len] || p[len] == '.' || p[len] == '[');
    }
    free(w);
    return found;
}

/*  e's line: the combinations it arose for named when not all of them,
    unless its message names the one. */
static void
s_format(const evr_diag_t *self, s_error_t *e)
{
    char in[512] = "";
    if (e->combos && e->in.n < e->combos && !(e->in.n == 1 && strstr(e->msg, e->in.v[0]))) {
        size_t used = (size_t) snprintf(in, sizeof in, " (combination%s ", e->in.n > 1 ? "s" : "");
        for (uint32_t k = 0; k < e->in.n && used < sizeof in; k++)
            used += (size_t) snprintf(in + used, sizeof in - used, "%s%s", k ? ", " : "",
                                      e->in.v[k]);
        if (used < sizeof in)
            snprintf(in + used, sizeof in - used, " only)");
    }
    const char *sep = *e->path ? ": " : "";
    free(e->text);
    if (e->line)
        e->text = evr_asprintf("%s:%u:%u: %s%s%s%s", self->file, e->line, e->col, e->path, sep,
                               e->msg, in);
    else
        e->text = evr_asprintf("%s: %s%s%s%s", self->file, e->path, sep, e->msg, in);
}

/*  Whether e already holds the error msg about its path, of combination
    name: said once, the combination added.  True too when e stands for
    the first error about the path (of that combination): the rest are
    its consequences. */
static bool
s_merge(const evr_diag_t *self, s_error_t *e, const char *name, const char *msg)
{
    if (!name || !e->combos)
        return true;    /* not a matrix step's: one error per field */
    for (uint32_t k = 0; k < e->in.n; k++)
        if (!strcmp(e->in.v[k], name))
            return true;
    if (strcmp(e->msg, msg))
        return false;   /* another message: another combination's own */
    evr_strlist_push(&e->in, name);
    s_format(self, e);
    return true;
}

/*  Where an error is in the file, as evr_diag_sort orders errors: one
    with no line (about the whole file) after all that have one. */
static uint64_t
s_key(uint32_t line, uint32_t col)
{
    return line ? (uint64_t) line << 32 | col : UINT64_MAX;
}

/*  The kept error that sorts last (the later-added of equals). */
static s_error_t *
s_last(evr_diag_t *self)
{
    s_error_t *last = NULL;
    for (size_t i = 0; i < EVR_DIAG_MAX; i++)
        if (!last || s_key(self->errors[i].line, self->errors[i].col)
                         >= s_key(last->line, last->col))
            last = &self->errors[i];
    return last;
}

static void
s_vadd(evr_diag_t *self, uint32_t line, uint32_t col, const char *path, const char *fmt,
       va_list ap) __attribute__((format(printf, 5, 0)));

/*  Adds an error about path (after a list's expansion: about the item as
    written), unless one about it was added.  A second error about a field
    already reported is a consequence of the first (a missing "steps" is
    also "no steps"): the first is kept.  A matrix step's combinations are
    one field each: the same message of another combination is merged
    into the first. */
static void
s_vadd(evr_diag_t *self, uint32_t line, uint32_t col, const char *path, const char *fmt,
       va_list ap)
{
    char raw[1024], msg[1024];
    if (vsnprintf(raw, sizeof raw, fmt, ap) >= (int) sizeof raw)
        evr_text_cut(raw, sizeof raw - 1);  /* on a character, marked: it goes out as UTF-8 */
    /* a value quoted from the file (a newline, an escape) stays on this
       error's line: it cannot make a line of its own, in a terminal or a
       log */
    evr_text_escape_ctl(raw, msg, sizeof msg);
    long item;
    char *w = s_written(self, path, &item);
    for (char *c = w; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            *c = '?';   /* a key of the file in the path */
    evr_utf8_clean(w);   /* a key cut by the caller's bounded path, mid-character */
    const char *name = item >= 0 ? self->name[item] : NULL;
    for (size_t i = 0; *w && i < self->nerrors && i < EVR_DIAG_MAX; i++)
        if (strcmp(self->errors[i].path, w) == 0 && s_merge(self, &self->errors[i], name, msg)) {
            free(w);
            return;
        }
    s_error_t *e = NULL;
    if (self->nerrors < EVR_DIAG_MAX) {
        if (!self->errors)
            self->errors = evr_calloc(EVR_DIAG_MAX, sizeof *self->errors);
        e = &self->errors[self->nerrors];
    }
    else if ((e = s_last(self)) && s_key(line, col) < s_key(e->line, e->col)) {
        /* full: the errors kept are the first in the file, not the first
           found (a step's name is checked after every step was read) */
        free(e->path);
        free(e->msg);
        free(e->text);
        evr_strlist_free(&e->in);
    }
    else
        e = NULL;
    if (e) {
        *e = (s_error_t) { .path = w, .msg = evr_strdup(msg), .line = line, .col = col,
                           .combos = name ? self->combos[item] : 0 };
        w = NULL;
        if (name)
            evr_strlist_push(&e->in, name);
        s_format(self, e);
    }
    free(w);
    self->nerrors++;
}

void
evr_diag_add(evr_diag_t *self, const char *path, const char *fmt, ...)
{
    uint32_t line = 0, col = 0;
    evr_diag_pos(self, path, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    s_vadd(self, line, col, path, fmt, ap);
    va_end(ap);
}

void
evr_diag_add_at(evr_diag_t *self, uint32_t line, uint32_t col, const char *path,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vadd(self, line, col, path, fmt, ap);
    va_end(ap);
}

bool
evr_diag_mapped(const evr_diag_t *self)
{
    return self->nmarks > 0;
}

void
evr_diag_sort(evr_diag_t *self)
{
    size_t n = self->nerrors < EVR_DIAG_MAX ? self->nerrors : EVR_DIAG_MAX;
    /* insertion sort: stable, and n is at most EVR_DIAG_MAX */
    for (size_t i = 1; i < n; i++) {
        s_error_t e = self->errors[i];
        size_t k = i;
        while (k > 0) {
            const s_error_t *p = &self->errors[k - 1];
            if (s_key(p->line, p->col) <= s_key(e.line, e.col))
                break;
            self->errors[k] = self->errors[k - 1];
            k--;
        }
        self->errors[k] = e;
    }
}

size_t
evr_diag_count(const evr_diag_t *self)
{
    return self->nerrors;
}

const char *
evr_diag_get(const evr_diag_t *self, size_t i)
{
    return i < self->nerrors && i < EVR_DIAG_MAX ? self->errors[i].text : NULL;
}

void
evr_diag_print(const evr_diag_t *self, FILE *out)
{
    for (size_t i = 0; i < self->nerrors && i < EVR_DIAG_MAX; i++)
        fprintf(out, "%s\n", self->errors[i].text);
    if (self->nerrors > EVR_DIAG_MAX)
        fprintf(out, "%s: %zu more errors not shown\n", self->file,
                self->nerrors - EVR_DIAG_MAX);
}

/*  Optimal string alignment distance of a and b (case ignored), or
    EVR_NEAR_FAR when either is longer than EVR_NEAR_LEN. */
#define EVR_NEAR_LEN 64
#define EVR_NEAR_FAR 1000u

static unsigned
s_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > EVR_NEAR_LEN || lb > EVR_NEAR_LEN)
        return EVR_NEAR_FAR;
    unsigned d[EVR_NEAR_LEN + 1][EVR_NEAR_LEN + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned) i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned) j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char) a[i - 1]), cb = tolower((unsigned char) b[j - 1]);
            unsigned best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char) b[j - 2])
                && tolower((unsigned char) a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

const char *
evr_diag_near(const char *word, const char *const *candidates, size_t n)
{
    size_t len = strlen(word);
    unsigned limit = len < 3 ? 0 : len <= 4 ? 1 : 2;   /* "b" is no near-miss of "a" */
    const char *best = NULL;
    unsigned best_d = limit + 1;
    for (size_t i = 0; i < n; i++) {
        unsigned dist = s_distance(word, candidates[i]);
        if (dist < best_d) {
            best_d = dist;
            best = candidates[i];
        }
    }
    return best;
}

const char *
evr_diag_one_of(const char *v, const char *const *names)
{
    static __thread char why[512];
    size_t n = 0;
    while (names[n])
        n++;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v, names[i]))
            return NULL;
    size_t at = (size_t) snprintf(why, sizeof why, "expected one of ");
    for (size_t i = 0; i < n && at < sizeof why; i++)
        at += (size_t) snprintf(why + at, sizeof why - at, "%s, ", names[i]);
    const char *near = evr_diag_near(v, names, n);
    char q[68];   /* the value quoted: UTF-8 and on one line, cut with "…" */
    if (at < sizeof why)
        snprintf(why + at, sizeof why - at, "got \"%s\"%s%s%s", evr_text_escape_ctl(v, q, sizeof q),
                 near ? "; did you mean " : "", near ? near : "", near ? "?" : "");
    return why;
}

const char *
evr_diag_file(const evr_diag_t *self)
{
    return self->file;
}
