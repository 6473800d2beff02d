/*  evr_diag.c: error list and source map of one pipeline file. */
#include "evr_diag.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *path;
    uint32_t line, col;
} s_mark_t;

struct evr_diag {
    char *file;
    s_mark_t *marks;
    size_t nmarks, capmarks;
    /* each error and its field (one error per field), EVR_DIAG_MAX at
       most: made at the first error, so that a diag that finds none (a
       message's checks, most of the time) is one small allocation */
    char **errors;
    char **paths;
    size_t nerrors;
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
        free(self->errors[i]);
        free(self->paths[i]);
    }
    free(self->errors);
    free(self->paths);
    free(self->file);
    free(self);
    *self_p = NULL;
}

static const s_mark_t *
s_find(const evr_diag_t *self, const char *path, size_t len)
{
    for (size_t i = 0; i < self->nmarks; i++)
        if (strlen(self->marks[i].path) == len && memcmp(self->marks[i].path, path, len) == 0)
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
    self->marks[self->nmarks++] = (s_mark_t) { evr_strdup(path), line, col };
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
    size_t len = strlen(path);
    for (size_t i = 0; i < self->nerrors && i < EVR_DIAG_MAX; i++) {
        const char *p = self->paths[i];
        if (strncmp(p, path, len) == 0 && (!p[len] || p[len] == '.' || p[len] == '['))
            return true;
    }
    return false;
}

static void
s_vadd(evr_diag_t *self, uint32_t line, uint32_t col, const char *path, const char *fmt,
       va_list ap) __attribute__((format(printf, 5, 0)));

static void
s_vadd(evr_diag_t *self, uint32_t line, uint32_t col, const char *path, const char *fmt,
       va_list ap)
{
    /* A second error about a field already reported is a consequence of
       the first (a missing "steps" is also "no steps"): keep the first. */
    for (size_t i = 0; *path && i < self->nerrors && i < EVR_DIAG_MAX; i++)
        if (strcmp(self->paths[i], path) == 0)
            return;
    if (self->nerrors < EVR_DIAG_MAX) {
        if (!self->errors) {
            self->errors = evr_calloc(EVR_DIAG_MAX, sizeof *self->errors);
            self->paths = evr_calloc(EVR_DIAG_MAX, sizeof *self->paths);
        }
        self->paths[self->nerrors] = evr_strdup(path);
        char msg[1024];
        vsnprintf(msg, sizeof msg, fmt, ap);
        const char *sep = *path ? ": " : "";
        if (line)
            self->errors[self->nerrors] = evr_asprintf("%s:%u:%u: %s%s%s", self->file, line,
                                                       col, path, sep, msg);
        else
            self->errors[self->nerrors] = evr_asprintf("%s: %s%s%s", self->file, path, sep, msg);
    }
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

size_t
evr_diag_count(const evr_diag_t *self)
{
    return self->nerrors;
}

const char *
evr_diag_get(const evr_diag_t *self, size_t i)
{
    return i < self->nerrors && i < EVR_DIAG_MAX ? self->errors[i] : NULL;
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
evr_diag_file(const evr_diag_t *self)
{
    return self->file;
}
