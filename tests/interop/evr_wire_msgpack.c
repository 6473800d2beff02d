/*  evr_wire_msgpack.c: the body texts and answer checks of evr-wire-audit
    (see evr_wire_msgpack.h).  A text is read in one pass, a container's
    item count found first by a scan to its closing bracket, since msgpack
    writes the count before the items. */
#define _GNU_SOURCE
#include "evr_wire_msgpack.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;
    msgpack_sbuffer *sb;
    msgpack_packer *pk;
} s_rd_t;

static void s_value(s_rd_t *r);

static void
s_die(const s_rd_t *r, const char *what)
{
    fprintf(stderr, "evr_wmp_body: %s at \"%.40s\"\n", what, r->p);
    abort();
}

static void
s_space(s_rd_t *r)
{
    while (*r->p == ' ' || *r->p == '\n')
        r->p++;
}

/*  Items of the container whose opening bracket r->p is just after. */
static uint32_t
s_count(const char *p, char close)
{
    int depth = 0, instr = 0, any = 0;
    uint32_t n = 0;
    for (; *p; p++) {
        if (instr) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                instr = 0;
            continue;
        }
        if (*p == '"')
            instr = 1;
        if (*p == '{' || *p == '[' || *p == '(')
            depth++;
        else if (*p == '}' || *p == ']' || *p == ')') {
            if (depth == 0 && *p == close)
                return any ? n + 1 : 0;
            depth--;
        } else if (*p == ',' && depth == 0)
            n++;
        if (*p != ' ')
            any = 1;
    }
    return 0;
}

static void
s_string(s_rd_t *r)
{
    char buf[8192];
    size_t n = 0;
    r->p++;
    while (*r->p && *r->p != '"') {
        if (n >= sizeof buf - 1)
            s_die(r, "string too long for a literal (use S(N))");
        if (*r->p != '\\') {
            buf[n++] = *r->p++;
            continue;
        }
        r->p++;
        if (*r->p == 'x') {
            unsigned v;
            if (sscanf(r->p + 1, "%2x", &v) != 1)
                s_die(r, "bad \\x");
            buf[n++] = (char) v;
            r->p += 3;
        } else {
            buf[n++] = *r->p == '0' ? '\0' : *r->p == 'n' ? '\n' : *r->p;
            r->p++;
        }
    }
    if (*r->p != '"')
        s_die(r, "unterminated string");
    r->p++;
    msgpack_pack_str(r->pk, n);
    msgpack_pack_str_body(r->pk, buf, n);
}

static void
s_number(s_rd_t *r)
{
    char *end;
    size_t span = strspn(r->p, "-0123456789.");
    if (memchr(r->p, '.', span)) {
        msgpack_pack_double(r->pk, strtod(r->p, &end));
    } else if (*r->p == '-') {
        msgpack_pack_int64(r->pk, strtoll(r->p, &end, 10));
    } else
        msgpack_pack_uint64(r->pk, strtoull(r->p, &end, 10));
    r->p = end;
}

/*  F(N): one of the generators. */
static void
s_gen(s_rd_t *r)
{
    char f = *r->p;
    char *end;
    unsigned long n = strtoul(r->p + 2, &end, 10);
    if (f == 'R') {
        r->p += 2;
        while (isxdigit((unsigned char) r->p[0]) && isxdigit((unsigned char) r->p[1])) {
            unsigned v;
            sscanf(r->p, "%2x", &v);
            char c = (char) v;
            msgpack_sbuffer_write(r->sb, &c, 1);
            r->p += 2;
        }
        end = (char *) r->p;
    } else if (f == 'S' || f == 'B') {
        char *b = calloc(1, n + 1);
        if (f == 'S') {
            memset(b, 'x', n);
            msgpack_pack_str(r->pk, n);
            msgpack_pack_str_body(r->pk, b, n);
        } else {
            msgpack_pack_bin(r->pk, n);
            msgpack_pack_bin_body(r->pk, b, n);
        }
        free(b);
    } else if (f == 'A' || f == 'L') {
        msgpack_pack_array(r->pk, n);
        for (unsigned long i = 0; i < n; i++) {
            if (f == 'A')
                msgpack_pack_uint8(r->pk, 1);
            else {
                char s[32];
                int len = snprintf(s, sizeof s, "l%lu", i);
                msgpack_pack_str(r->pk, len);
                msgpack_pack_str_body(r->pk, s, len);
            }
        }
    } else if (f == 'M') {
        msgpack_pack_map(r->pk, n);
        for (unsigned long i = 0; i < n; i++) {
            char s[32];
            int len = snprintf(s, sizeof s, "K%lu", i);
            msgpack_pack_str(r->pk, len);
            msgpack_pack_str_body(r->pk, s, len);
            msgpack_pack_str(r->pk, 1);
            msgpack_pack_str_body(r->pk, "v", 1);
        }
    } else
        s_die(r, "unknown generator");
    if (*end != ')')
        s_die(r, "generator without )");
    r->p = end + 1;
}

static void
s_container(s_rd_t *r, char close)
{
    uint32_t n = s_count(r->p + 1, close);
    if (close == '}')
        msgpack_pack_map(r->pk, n);
    else
        msgpack_pack_array(r->pk, n);
    r->p++;
    for (uint32_t i = 0; i < n; i++) {
        s_space(r);
        if (close == '}') {
            if (isalpha((unsigned char) *r->p) || *r->p == '_') {
                size_t len = strspn(r->p, "abcdefghijklmnopqrstuvwxyz"
                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
                msgpack_pack_str(r->pk, len);
                msgpack_pack_str_body(r->pk, r->p, len);
                r->p += len;
            } else
                s_value(r);
            s_space(r);
            if (*r->p++ != ':')
                s_die(r, "expected :");
        }
        s_value(r);
        s_space(r);
        if (i + 1 < n && *r->p++ != ',')
            s_die(r, "expected ,");
    }
    s_space(r);
    if (*r->p++ != close)
        s_die(r, "expected closing bracket");
}

static void
s_value(s_rd_t *r)
{
    s_space(r);
    const char *p = r->p;
    if (*p == '{' || *p == '[')
        s_container(r, *p == '{' ? '}' : ']');
    else if (*p == '"')
        s_string(r);
    else if (*p == '-' || isdigit((unsigned char) *p))
        s_number(r);
    else if (!strncmp(p, "true", 4) && (r->p += 4))
        msgpack_pack_true(r->pk);
    else if (!strncmp(p, "false", 5) && (r->p += 5))
        msgpack_pack_false(r->pk);
    else if (!strncmp(p, "nil", 3) && (r->p += 3))
        msgpack_pack_nil(r->pk);
    else if (strchr("SBALMR", *p) && p[1] == '(')
        s_gen(r);
    else
        s_die(r, "unknown value");
}

uint8_t *
evr_wmp_body(size_t *len, const char *fmt, ...)
{
    va_list ap;
    char *text;
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        abort();
    va_end(ap);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    s_rd_t r = { text, &sb, &pk };
    while (*r.p) {   /* one value, or more (trailing bytes on purpose) */
        s_value(&r);
        s_space(&r);
    }
    free(text);
    *len = sb.size;
    if (!sb.data)
        return calloc(1, 1);
    return (uint8_t *) sb.data;
}

msgpack_object *
evr_wmp_get(const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen
            && !memcmp(k->via.str.ptr, key, klen))
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

/*  Whether v is the zero value of an optional field (0, false, empty). */
static int
s_zero(const msgpack_object *v)
{
    switch (v->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return v->via.u64 == 0;
    case MSGPACK_OBJECT_BOOLEAN: return !v->via.boolean;
    case MSGPACK_OBJECT_ARRAY: return v->via.array.size == 0;
    case MSGPACK_OBJECT_MAP: return v->via.map.size == 0;
    default: return 0;
    }
}

static int
s_is_ulid(const msgpack_object *v)
{
    if (v->via.str.size != 26 || v->via.str.ptr[0] > '7')
        return 0;
    for (int i = 0; i < 26; i++)
        if (!strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", v->via.str.ptr[i]) || !v->via.str.ptr[i])
            return 0;
    return 1;
}

/*  Whether the n bytes at p are UTF-8 (no overlong form, no surrogate). */
static int
s_utf8(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!k || i + k > n || (k == 2 && c < 0xc2))
            return 0;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
        unsigned d = k > 1 ? p[i + 1] : 0;
        if ((k == 3 && c == 0xe0 && d < 0xa0) || (k == 3 && c == 0xed && d >= 0xa0)
            || (k == 4 && c == 0xf0 && d < 0x90)
            || (k == 4 && (c > 0xf4 || (c == 0xf4 && d >= 0x90))))
            return 0;
        i += k;
    }
    return 1;
}

/*  NULL when v has type t within limit. */
static const char *
s_typed(const msgpack_object *v, int t, size_t limit)
{
    size_t lim = limit;
    switch (t) {
    case WT_STR: case WT_ULID: case WT_NAME: case WT_ENUM: case WT_PATH:
        if (v->type != MSGPACK_OBJECT_STR)
            return "not a str";
        if (v->via.str.size > (lim ? lim : 4096))
            return "str over its limit";
        if (memchr(v->via.str.ptr, 0, v->via.str.size))
            return "str with a NUL";
        if (!s_utf8((const unsigned char *) v->via.str.ptr, v->via.str.size))
            return "str not UTF-8";
        if (t == WT_ULID && !s_is_ulid(v))
            return "not an upper-case ULID";
        return NULL;
    case WT_UINT: case WT_U32:
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return "not a non-negative int";
        if (t == WT_U32 && v->via.u64 > UINT32_MAX)
            return "above uint32";
        return NULL;
    case WT_INT:
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER
            && v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
            return "not an int";
        return NULL;
    case WT_BOOL:
        return v->type == MSGPACK_OBJECT_BOOLEAN ? NULL : "not a bool";
    case WT_BIN:
        if (v->type != MSGPACK_OBJECT_BIN)
            return "not a bin";
        return v->via.bin.size > (lim ? lim : 1048576) ? "bin over its limit" : NULL;
    case WT_ASTR: case WT_AMAP:
        if (v->type != MSGPACK_OBJECT_ARRAY)
            return "not an array";
        if (v->via.array.size > (lim ? lim : 256))
            return "array over its limit";
        for (uint32_t i = 0; i < v->via.array.size; i++)
            if (s_typed(&v->via.array.ptr[i], t == WT_ASTR ? WT_STR : WT_MAP, 0))
                return "array item of the wrong type";
        return NULL;
    case WT_MSS: case WT_MAP:
        if (v->type != MSGPACK_OBJECT_MAP)
            return "not a map";
        if (t == WT_MAP)
            return NULL;
        if (v->via.map.size > (lim ? lim : 256))
            return "map over its limit";
        for (uint32_t i = 0; i < v->via.map.size; i++)
            if (s_typed(&v->via.map.ptr[i].key, WT_STR, 0)
                || s_typed(&v->via.map.ptr[i].val, WT_STR, 0))
                return "map entry not str to str";
        return NULL;
    }
    return "unknown table type";
}

const char *
evr_wmp_conform(const msgpack_object *map, const evr_wfield_t *table)
{
    static char why[512];
    if (map->type != MSGPACK_OBJECT_MAP)
        return "body is not a map";
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            return "a key that is not a str";
        const evr_wfield_t *f = table;
        while (f->name && (strlen(f->name) != k->via.str.size
                           || memcmp(f->name, k->via.str.ptr, k->via.str.size)))
            f++;
        if (!f->name) {
            snprintf(why, sizeof why, "undocumented field \"%.*s\"", (int) k->via.str.size,
                     k->via.str.ptr);
            return why;
        }
        for (uint32_t j = 0; j < i; j++)
            if (map->via.map.ptr[j].key.type == MSGPACK_OBJECT_STR
                && map->via.map.ptr[j].key.via.str.size == k->via.str.size
                && !memcmp(map->via.map.ptr[j].key.via.str.ptr, k->via.str.ptr, k->via.str.size)) {
                snprintf(why, sizeof why, "field %s twice", f->name);
                return why;
            }
        const char *bad = s_typed(v, f->type, f->limit);
        if (!bad && f->values) {   /* a str, by s_typed */
            char word[80];
            int n = v->via.str.size < 70 ? (int) v->via.str.size : 70;
            snprintf(word, sizeof word, " %.*s ", n, v->via.str.ptr);
            if (!strstr(f->values, word))
                bad = "not one of its values";
        }
        if (!bad && !f->required && s_zero(v))
            bad = "optional field sent with its zero value (should be omitted)";
        if (bad) {
            snprintf(why, sizeof why, "field %s: %s", f->name, bad);
            return why;
        }
    }
    for (const evr_wfield_t *f = table; f->name; f++)
        if (f->required && !evr_wmp_get(map, f->name)) {
            snprintf(why, sizeof why, "required field %s missing", f->name);
            return why;
        }
    return NULL;
}
