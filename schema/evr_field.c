/*  evr_field.c: generic free, copy and compare of table-described records,
    and the small containers and durations they use. */
#include "evr_field.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT(rec, f) ((char *) (rec) + (f)->off)
#define CAT(rec, f) ((const char *) (rec) + (f)->off)

static const uint32_t s_default_limit[] = {
    [EVR_FT_STR] = EVR_STR_MAX,   [EVR_FT_BIN] = 1u << 20,
    [EVR_FT_STRLIST] = 256,       [EVR_FT_STRMAP] = 256,
    [EVR_FT_RECLIST] = 256,       [EVR_FT_RECMAP] = 256,
};

uint32_t
evr_field_limit(const evr_field_t *f)
{
    if (f->limit)
        return f->limit;
    if ((size_t) f->type < EVR_ARRAY_LEN(s_default_limit))
        return s_default_limit[f->type];
    return 0;
}

const char *
evr_ftype_name(evr_ftype_t t)
{
    switch (t) {
    case EVR_FT_STR: return "str";
    case EVR_FT_U64: return "uint";
    case EVR_FT_U32:
    case EVR_FT_U32_OPT: return "uint32";
    case EVR_FT_I64: return "int";
    case EVR_FT_BOOL: return "bool";
    case EVR_FT_BIN: return "bin";
    case EVR_FT_STRLIST: return "array of str";
    case EVR_FT_STRMAP: return "map of str to str";
    case EVR_FT_DURATION: return "uint (milliseconds)";
    case EVR_FT_BYTES: return "uint (bytes)";
    case EVR_FT_RECORD: return "map";
    case EVR_FT_RECLIST: return "array of map";
    case EVR_FT_RECMAP: return "map of str to map";
    case EVR_FT_RECPTR: return "map";
    case EVR_FT_VARIANT: return "map";
    case EVR_FT_ENUM: return "str (one of a fixed set)";
    }
    return "?";
}

void *
evr_reclist_at(const evr_rectype_t *sub, const evr_reclist_t *l, uint32_t i)
{
    return (char *) l->v + (size_t) i * sub->size;
}

const evr_field_t *
evr_rec_field(const evr_rectype_t *type, const char *key)
{
    for (size_t i = 0; i < type->nfields; i++)
        if (strcmp(type->fields[i].key, key) == 0)
            return &type->fields[i];
    return NULL;
}

void
evr_strlist_free(evr_strlist_t *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

void
evr_strmap_free(evr_strmap_t *m)
{
    for (uint32_t i = 0; i < m->n; i++) {
        free(m->k[i]);
        free(m->v[i]);
    }
    free(m->k);
    free(m->v);
    memset(m, 0, sizeof *m);
}

/*  Whether the n bytes at p are all zero. */
static bool
s_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, sizeof w);
        if (w)
            return false;
    }
    for (; i < n; i++)
        if (b[i])
            return false;
    return true;
}

void
evr_rec_free(const evr_rectype_t *type, void *rec)
{
    for (size_t i = 0; i < type->nfields; i++) {
        const evr_field_t *f = &type->fields[i];
        void *p = AT(rec, f);
        switch (f->type) {
        /* absent values (most of a record's) are passed over: a free of
           each, and a walk of each sub-record's table, was most of the
           cost of clearing a message */
        case EVR_FT_STR:
            if (*(char **) p) {
                free(*(char **) p);
                *(char **) p = NULL;
            }
            break;
        case EVR_FT_BIN:
            if (((evr_bin_t *) p)->data || ((evr_bin_t *) p)->len) {
                free(((evr_bin_t *) p)->data);
                memset(p, 0, sizeof(evr_bin_t));
            }
            break;
        case EVR_FT_STRLIST:
            if (((evr_strlist_t *) p)->v || ((evr_strlist_t *) p)->n)
                evr_strlist_free(p);
            break;
        case EVR_FT_STRMAP:
            if (((evr_strmap_t *) p)->k || ((evr_strmap_t *) p)->v || ((evr_strmap_t *) p)->n)
                evr_strmap_free(p);
            break;
        case EVR_FT_RECORD:
        case EVR_FT_VARIANT:
            if (!s_zero(p, f->sub->size))   /* all zero: nothing in it, not present */
                evr_rec_free(f->sub, p);
            break;
        case EVR_FT_RECLIST:
        case EVR_FT_RECMAP: {
            evr_reclist_t *l = p;
            for (uint32_t j = 0; j < l->n; j++)
                evr_rec_free(f->sub, evr_reclist_at(f->sub, l, j));
            free(l->v);
            memset(l, 0, sizeof *l);
            break;
        }
        case EVR_FT_RECPTR:
            if (*(void **) p) {
                evr_rec_free(f->sub, *(void **) p);
                free(*(void **) p);
                *(void **) p = NULL;
            }
            break;
        default: break;
        }
    }
    if (type->present_off != EVR_NO_PRESENT)
        *(bool *) ((char *) rec + type->present_off) = false;
}

void
evr_strlist_push(evr_strlist_t *l, const char *s)
{
    l->v = evr_realloc(l->v, sizeof(char *) * (l->n + 1));
    l->v[l->n++] = evr_strdup(s);
}

void
evr_strmap_set(evr_strmap_t *m, const char *k, const char *v)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (strcmp(m->k[i], k) == 0) {
            free(m->v[i]);
            m->v[i] = evr_strdup(v);
            return;
        }
    m->k = evr_realloc(m->k, sizeof(char *) * (m->n + 1));
    m->v = evr_realloc(m->v, sizeof(char *) * (m->n + 1));
    m->k[m->n] = evr_strdup(k);
    m->v[m->n] = evr_strdup(v);
    m->n++;
}

const char *
evr_strmap_get(const evr_strmap_t *m, const char *k)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (strcmp(m->k[i], k) == 0)
            return m->v[i];
    return NULL;
}

void
evr_reclist_copy(const evr_rectype_t *sub, evr_reclist_t *d, const evr_reclist_t *s)
{
    d->n = s->n;
    d->v = s->n ? evr_calloc(s->n, sub->size) : NULL;
    for (uint32_t j = 0; j < s->n; j++)
        evr_rec_copy(sub, evr_reclist_at(sub, d, j), evr_reclist_at(sub, s, j));
}

void
evr_rec_copy(const evr_rectype_t *type, void *dst, const void *src)
{
    memcpy(dst, src, type->size);   /* scalars; pointers are replaced below */
    for (size_t i = 0; i < type->nfields; i++) {
        const evr_field_t *f = &type->fields[i];
        void *d = AT(dst, f);
        const void *s = CAT(src, f);
        switch (f->type) {
        case EVR_FT_STR: {
            const char *str = *(char *const *) s;
            *(char **) d = str ? evr_strdup(str) : NULL;
            break;
        }
        case EVR_FT_BIN: {
            const evr_bin_t *sb = s;
            evr_bin_t *db = d;
            db->data = sb->data ? evr_malloc(sb->len) : NULL;
            if (sb->data)
                memcpy(db->data, sb->data, sb->len);
            break;
        }
        case EVR_FT_STRLIST: {
            const evr_strlist_t *sl = s;
            evr_strlist_t *dl = d;
            memset(dl, 0, sizeof *dl);
            for (uint32_t j = 0; j < sl->n; j++)
                evr_strlist_push(dl, sl->v[j]);
            break;
        }
        case EVR_FT_STRMAP: {
            const evr_strmap_t *sm = s;
            evr_strmap_t *dm = d;
            memset(dm, 0, sizeof *dm);
            for (uint32_t j = 0; j < sm->n; j++)
                evr_strmap_set(dm, sm->k[j], sm->v[j]);
            break;
        }
        case EVR_FT_RECORD:
        case EVR_FT_VARIANT: evr_rec_copy(f->sub, d, s); break;
        case EVR_FT_RECLIST:
        case EVR_FT_RECMAP: evr_reclist_copy(f->sub, d, s); break;
        case EVR_FT_RECPTR: {
            const void *sp = *(void *const *) s;
            void *dp = NULL;
            if (sp) {
                dp = evr_calloc(1, f->sub->size);
                evr_rec_copy(f->sub, dp, sp);
            }
            *(void **) d = dp;
            break;
        }
        default: break;
        }
    }
}

static bool
s_str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool
evr_field_equal(const evr_field_t *f, const void *a, const void *b)
{
    switch (f->type) {
    case EVR_FT_STR: return s_str_eq(*(char *const *) a, *(char *const *) b);
    case EVR_FT_U64:
    case EVR_FT_BYTES:
    case EVR_FT_DURATION: return *(const uint64_t *) a == *(const uint64_t *) b;
    case EVR_FT_U32:
    case EVR_FT_ENUM: return *(const uint32_t *) a == *(const uint32_t *) b;
    case EVR_FT_I64: return *(const int64_t *) a == *(const int64_t *) b;
    case EVR_FT_BOOL: return *(const bool *) a == *(const bool *) b;
    case EVR_FT_U32_OPT: {
        const evr_u32opt_t *x = a, *y = b;
        return x->set == y->set && (!x->set || x->v == y->v);
    }
    case EVR_FT_BIN: {
        const evr_bin_t *x = a, *y = b;
        return x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
    }
    case EVR_FT_STRLIST: {
        const evr_strlist_t *x = a, *y = b;
        if (x->n != y->n)
            return false;
        for (uint32_t i = 0; i < x->n; i++)
            if (!s_str_eq(x->v[i], y->v[i]))
                return false;
        return true;
    }
    case EVR_FT_STRMAP: {
        const evr_strmap_t *x = a, *y = b;
        if (x->n != y->n)
            return false;
        for (uint32_t i = 0; i < x->n; i++)
            if (!s_str_eq(x->v[i], evr_strmap_get(y, x->k[i])))
                return false;
        return true;
    }
    case EVR_FT_RECORD:
    case EVR_FT_VARIANT: return evr_rec_equal(f->sub, a, b);
    case EVR_FT_RECLIST:
    case EVR_FT_RECMAP: {
        const evr_reclist_t *x = a, *y = b;
        if (x->n != y->n)
            return false;
        for (uint32_t i = 0; i < x->n; i++)
            if (!evr_rec_equal(f->sub, evr_reclist_at(f->sub, x, i),
                               evr_reclist_at(f->sub, y, i)))
                return false;
        return true;
    }
    case EVR_FT_RECPTR: {
        const void *x = *(void *const *) a, *y = *(void *const *) b;
        if (!x || !y)
            return x == y;
        return evr_rec_equal(f->sub, x, y);
    }
    }
    return false;
}

bool
evr_rec_equal(const evr_rectype_t *type, const void *a, const void *b)
{
    if (type->present_off != EVR_NO_PRESENT
        && *(const bool *) ((const char *) a + type->present_off)
               != *(const bool *) ((const char *) b + type->present_off))
        return false;
    for (size_t i = 0; i < type->nfields; i++) {
        const evr_field_t *f = &type->fields[i];
        if (!evr_field_equal(f, CAT(a, f), CAT(b, f)))
            return false;
    }
    return true;
}

/*  evr_duration_parse, *overflow set (and false returned) when s has the
    form but its value is over UINT64_MAX ms. */
static bool
s_duration_parse(const char *s, uint64_t *ms, bool *overflow)
{
    static const struct { const char *unit; uint64_t ms; } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
    };
    *overflow = false;
    if (!s || !*s)
        return false;
    uint64_t total = 0;
    const char *p = s;
    bool bare = true;   /* "90" with no unit means seconds */
    size_t last = EVR_ARRAY_LEN(units);   /* the previous unit: each next one is smaller */
    while (*p) {
        if (*p < '0' || *p > '9')
            return false;
        uint64_t n = 0;
        bool big = false;
        while (*p >= '0' && *p <= '9') {
            if (n > (UINT64_MAX - 9) / 10)
                big = true;
            n = n * 10 + (uint64_t) (*p++ - '0');
        }
        uint64_t mul = 0;
        if (!*p && bare)
            mul = 1000;
        else {
            for (size_t i = 0; i < EVR_ARRAY_LEN(units); i++) {
                size_t ul = strlen(units[i].unit);
                if (strncmp(p, units[i].unit, ul) == 0
                    && !(ul == 1 && p[0] == 'm' && p[1] == 's')) {
                    if (i >= last)
                        return false;   /* 1m1h, 1h1h */
                    mul = units[i].ms;
                    last = i;
                    p += ul;
                    break;
                }
            }
            if (!mul)
                return false;
        }
        bare = false;
        if (big || n > UINT64_MAX / mul || total > UINT64_MAX - n * mul)
            *overflow = true;
        else
            total += n * mul;
    }
    *ms = total;
    return !*overflow;
}

bool
evr_duration_parse(const char *s, uint64_t *ms)
{
    bool overflow;
    uint64_t v;
    if (!s_duration_parse(s, &v, &overflow))
        return false;
    *ms = v;
    return true;
}

bool
evr_duration_overflows(const char *s)
{
    bool overflow;
    uint64_t v;
    return !s_duration_parse(s, &v, &overflow) && overflow;
}

/*  evr_bytes_parse, and whether a false is for a size of the right form
    that a uint64 does not hold (*overflow). */
static bool
s_bytes_parse(const char *s, uint64_t *bytes, bool *overflow)
{
    *overflow = false;
    if (!s || *s < '0' || *s > '9')
        return false;
    uint64_t n = 0;
    bool big = false;
    const char *p = s;
    while (*p >= '0' && *p <= '9') {
        big = big || n > (UINT64_MAX - (uint64_t) (*p - '0')) / 10;
        n = big ? n : n * 10 + (uint64_t) (*p - '0');
        p++;
    }
    unsigned shift = 0;
    switch (*p | 0x20) {   /* lower case */
    case 'k': shift = 10; break;
    case 'm': shift = 20; break;
    case 'g': shift = 30; break;
    case 't': shift = 40; break;
    default: break;
    }
    if (shift) {
        p++;
        if ((*p | 0x20) == 'i' && (p[1] | 0x20) == 'b')
            p += 2;
        else if ((*p | 0x20) == 'b')
            p++;
    }
    else if ((*p | 0x20) == 'b')
        p++;
    if (*p)
        return false;
    if (big || (shift && n > UINT64_MAX >> shift)) {
        *overflow = true;
        return false;
    }
    *bytes = n << shift;
    return true;
}

bool
evr_bytes_parse(const char *s, uint64_t *bytes)
{
    bool overflow;
    return s_bytes_parse(s, bytes, &overflow);
}

bool
evr_bytes_overflows(const char *s)
{
    bool overflow;
    uint64_t v;
    return !s_bytes_parse(s, &v, &overflow) && overflow;
}

void
evr_duration_format(uint64_t ms, char *buf, size_t size)
{
    if (ms == 0) {
        snprintf(buf, size, "0s");
        return;
    }
    static const struct { const char *unit; uint64_t ms; } units[] = {
        { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
    };
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < EVR_ARRAY_LEN(units) && ms; i++) {
        uint64_t n = ms / units[i].ms;
        if (!n)
            continue;
        ms -= n * units[i].ms;
        int w = snprintf(buf + used, used < size ? size - used : 0, "%llu%s",
                         (unsigned long long) n, units[i].unit);
        if (w > 0)
            used += (size_t) w;
    }
}

bool
evr_field_present(const evr_field_t *f, const void *p)
{
    switch (f->type) {
    case EVR_FT_STR: return *(char *const *) p != NULL;
    case EVR_FT_U64:
    case EVR_FT_BYTES:
    case EVR_FT_DURATION: return f->required || *(const uint64_t *) p;
    case EVR_FT_U32:
    case EVR_FT_ENUM: return f->required || *(const uint32_t *) p;
    case EVR_FT_I64: return f->required || *(const int64_t *) p;
    case EVR_FT_BOOL: return f->required || *(const bool *) p;
    case EVR_FT_U32_OPT: return f->required || ((const evr_u32opt_t *) p)->set;
    case EVR_FT_BIN: return f->required || ((const evr_bin_t *) p)->len;
    case EVR_FT_STRLIST: return f->required || ((const evr_strlist_t *) p)->n;
    case EVR_FT_STRMAP: return f->required || ((const evr_strmap_t *) p)->n;
    case EVR_FT_RECLIST:
    case EVR_FT_RECMAP: return f->required || ((const evr_reclist_t *) p)->n;
    case EVR_FT_RECPTR: return *(void *const *) p != NULL;
    case EVR_FT_RECORD:
        return f->sub->present_off == EVR_NO_PRESENT
            || *(const bool *) ((const char *) p + f->sub->present_off);
    case EVR_FT_VARIANT: return true;
    }
    return false;
}

const char *
evr_enum_name(const evr_field_t *f, uint32_t v)
{
    for (uint32_t i = 0; f->names[i]; i++)
        if (i == v)
            return f->names[i];
    return "?";
}

bool
evr_enum_parse(const evr_field_t *f, const char *s, size_t n, uint32_t *v)
{
    for (uint32_t i = 0; f->names[i]; i++)
        if (*f->names[i] && strlen(f->names[i]) == n && memcmp(f->names[i], s, n) == 0) {
            *v = i;
            return true;
        }
    return false;
}

void
evr_enum_expected(const evr_field_t *f, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; f->names[i]; i++) {
        if (!*f->names[i])
            continue;
        int w = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", f->names[i]);
        if (w < 0 || (size_t) w >= size - used)
            break;
        used += (size_t) w;
    }
}
