/*  evr_codec.c: msgpack <-> records, driven by field tables (the
    pre-check of untrusted bytes before msgpack-c reads them:
    evr_codec_check.c).
*/
#include "evr_codec.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT(rec, f) ((char *) (rec) + (f)->off)
#define CAT(rec, f) ((const char *) (rec) + (f)->off)

/* ---------------------------------------------------------------- encode */

static void
s_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void s_pack_field(msgpack_packer *pk, const evr_field_t *f, const void *rec,
                         const void *p);

void
evr_codec_pack(msgpack_packer *pk, const evr_rectype_t *type, const void *rec)
{
    size_t n = 0;
    for (size_t i = 0; i < type->nfields; i++)
        if (evr_field_present(&type->fields[i], CAT(rec, &type->fields[i])))
            n++;
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < type->nfields; i++) {
        const evr_field_t *f = &type->fields[i];
        if (!evr_field_present(f, CAT(rec, f)))
            continue;
        s_pack_str(pk, f->key);
        s_pack_field(pk, f, rec, CAT(rec, f));
    }
}

/*  A RECMAP record is keyed by its first field; the rest go in the value. */
static void
s_pack_keyed(msgpack_packer *pk, const evr_rectype_t *sub, const void *rec)
{
    evr_rectype_t rest = *sub;
    rest.fields = sub->fields + 1;
    rest.nfields = sub->nfields - 1;
    const char *key = *(char *const *) CAT(rec, &sub->fields[0]);
    s_pack_str(pk, key ? key : "");
    evr_codec_pack(pk, &rest, rec);
}

static void
s_pack_field(msgpack_packer *pk, const evr_field_t *f, const void *rec, const void *p)
{
    switch (f->type) {
    case EVR_FT_STR: s_pack_str(pk, *(char *const *) p); break;
    case EVR_FT_U64:
    case EVR_FT_BYTES:
    case EVR_FT_DURATION: msgpack_pack_uint64(pk, *(const uint64_t *) p); break;
    case EVR_FT_U32: msgpack_pack_uint32(pk, *(const uint32_t *) p); break;
    case EVR_FT_U32_OPT: msgpack_pack_uint32(pk, ((const evr_u32opt_t *) p)->v); break;
    case EVR_FT_ENUM: s_pack_str(pk, evr_enum_name(f, *(const uint32_t *) p)); break;
    case EVR_FT_I64: msgpack_pack_int64(pk, *(const int64_t *) p); break;
    case EVR_FT_BOOL:
        if (*(const bool *) p)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case EVR_FT_BIN: {
        const evr_bin_t *b = p;
        msgpack_pack_bin(pk, b->len);
        msgpack_pack_bin_body(pk, b->data, b->len);
        break;
    }
    case EVR_FT_STRLIST: {
        const evr_strlist_t *l = p;
        msgpack_pack_array(pk, l->n);
        for (uint32_t i = 0; i < l->n; i++)
            s_pack_str(pk, l->v[i]);
        break;
    }
    case EVR_FT_STRMAP: {
        const evr_strmap_t *m = p;
        msgpack_pack_map(pk, m->n);
        for (uint32_t i = 0; i < m->n; i++) {
            s_pack_str(pk, m->k[i]);
            s_pack_str(pk, m->v[i]);
        }
        break;
    }
    case EVR_FT_RECORD: {
        /* a record whose only value is its short form's field is written
           so, as peers and logs from before the map form read it */
        const evr_field_t *sf = f->short_key ? evr_rec_field(f->sub, f->short_key) : NULL;
        bool alone = sf != NULL;
        for (size_t i = 0; alone && i < f->sub->nfields; i++)
            alone = &f->sub->fields[i] == sf
                 || !evr_field_present(&f->sub->fields[i], (const char *) p + f->sub->fields[i].off);
        if (alone)
            s_pack_field(pk, sf, p, (const char *) p + sf->off);
        else
            evr_codec_pack(pk, f->sub, p);
        break;
    }
    case EVR_FT_RECPTR: evr_codec_pack(pk, f->sub, *(void *const *) p); break;
    case EVR_FT_VARIANT: {
        const evr_rectype_t *vt = f->select(rec);
        if (vt)
            evr_codec_pack(pk, vt, p);
        else
            msgpack_pack_map(pk, 0);
        break;
    }
    case EVR_FT_RECLIST: {
        const evr_reclist_t *l = p;
        msgpack_pack_array(pk, l->n);
        for (uint32_t i = 0; i < l->n; i++)
            evr_codec_pack(pk, f->sub, evr_reclist_at(f->sub, l, i));
        break;
    }
    case EVR_FT_RECMAP: {
        const evr_reclist_t *l = p;
        msgpack_pack_map(pk, l->n);
        for (uint32_t i = 0; i < l->n; i++)
            s_pack_keyed(pk, f->sub, evr_reclist_at(f->sub, l, i));
        break;
    }
    }
}

/*  Where evr_codec_encode writes: a buffer on the stack first, the heap
    once that is full (msgpack-c's sbuffer takes 8 KiB at the first byte: a
    malloc of a size that sends glibc through its slow path, for answers
    of a few dozen bytes). */
#define S_GROW_STACK 512
#define S_GROW_HEAP 8192

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    uint8_t stack[S_GROW_STACK];
} s_grow_t;

static int
s_grow_write(void *data, const char *buf, size_t len)
{
    s_grow_t *g = data;
    if (!len)
        return 0;   /* an empty string's body: buf may be NULL */
    if (len > g->cap - g->len) {
        size_t cap = g->cap < S_GROW_HEAP ? S_GROW_HEAP : g->cap * 2;
        while (cap - g->len < len)
            cap *= 2;
        if (g->buf == g->stack) {
            g->buf = evr_malloc(cap);
            memcpy(g->buf, g->stack, g->len);
        }
        else
            g->buf = evr_realloc(g->buf, cap);
        g->cap = cap;
    }
    memcpy(g->buf + g->len, buf, len);
    g->len += len;
    return 0;
}

void
evr_codec_encode(const evr_rectype_t *type, const void *rec, uint8_t **buf, size_t *len)
{
    s_grow_t g;
    g.buf = g.stack;
    g.len = 0;
    g.cap = sizeof g.stack;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &g, s_grow_write);
    evr_codec_pack(&pk, type, rec);
    *len = g.len;
    if (g.buf == g.stack) {
        *buf = evr_malloc(g.len ? g.len : 1);
        memcpy(*buf, g.stack, g.len);
    }
    else
        *buf = g.buf;
}

static int
s_count_write(void *data, const char *buf, size_t len)
{
    (void) buf;
    *(size_t *) data += len;
    return 0;
}

size_t
evr_codec_size(const evr_rectype_t *type, const void *rec)
{
    size_t n = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &n, s_count_write);
    evr_codec_pack(&pk, type, rec);
    return n;
}

/*  Where evr_codec_encode_to writes: the next byte and the room left. */
typedef struct {
    uint8_t *at;
    size_t left;
    bool over;      /* a write did not fit */
} s_fixed_t;

static int
s_fixed_write(void *data, const char *buf, size_t len)
{
    s_fixed_t *f = data;
    if (len > f->left) {
        f->over = true;
        return -1;
    }
    memcpy(f->at, buf, len);
    f->at += len;
    f->left -= len;
    return 0;
}

void
evr_codec_encode_to(const evr_rectype_t *type, const void *rec, uint8_t *dst, size_t size)
{
    s_fixed_t f = { dst, size, false };
    msgpack_packer pk;
    msgpack_packer_init(&pk, &f, s_fixed_write);
    evr_codec_pack(&pk, type, rec);
    if (f.left || f.over) {   /* the size was not evr_codec_size's: a bug, never data */
        fprintf(stderr, "evrun: msgpack encode_to: %zu of %zu bytes written\n", size - f.left,
                size);
        abort();
    }
}

/* ------------------------------------------------------------ unpack */

void
evr_utf8_clean(char *s)
{
    unsigned char *p = (unsigned char *) s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (k && i + k <= n && evr_utf8_valid(s + i, k))
            i += k;
        else
            p[i++] = '?';
    }
}

size_t
evr_utf8_cut(const char *s, size_t len, size_t n, bool up)
{
    if (n >= len)
        return len;
    while (n > 0 && n < len && ((unsigned char) s[n] & 0xc0) == 0x80)
        n = up ? n + 1 : n - 1;
    return n;
}

bool
evr_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *) s, *end = p + n;
    while (p < end) {
        /* ASCII fast path: eight bytes at a time */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (w & 0x8080808080808080ull)
                break;
            p += 8;
        }
        if (p == end)
            break;
        unsigned c = *p;
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            p++;
            continue;
        }
        else if (c >= 0xc2 && c <= 0xdf) { k = 1; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { k = 2; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { k = 3; cp = c & 0x07; }
        else
            return false;
        if ((size_t) (end - p) <= k)
            return false;
        for (size_t i = 1; i <= k; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff))
            || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += k + 1;
    }
    return true;
}

static const char *
s_objtype(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "float";
    case MSGPACK_OBJECT_STR: return "str";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_BIN: return "bin";
    case MSGPACK_OBJECT_EXT: return "ext";
    }
    return "?";
}

/*  The field path of error messages ("submit.spec.steps[1].run"), built in
    one buffer as the decoder descends and cut back as it returns: no
    formatting on the good path. */
typedef struct {
    char buf[EVR_ERR_MAX];
    size_t len;
} s_path_t;

static size_t
s_path_key(s_path_t *p, const char *key, size_t klen)
{
    size_t old = p->len;
    if (p->len && p->len + 1 < sizeof p->buf)
        p->buf[p->len++] = '.';
    if (klen > sizeof p->buf - 1 - p->len)
        klen = sizeof p->buf - 1 - p->len;
    memcpy(p->buf + p->len, key, klen);
    p->len += klen;
    p->buf[p->len] = '\0';
    return old;
}

static size_t
s_path_index(s_path_t *p, uint32_t i)
{
    size_t old = p->len;
    char tmp[16], *at = tmp + sizeof tmp;   /* "[%u]", built backwards: no printf per item */
    *--at = '\0';
    *--at = ']';
    do
        *--at = (char) ('0' + i % 10);
    while (i /= 10);
    *--at = '[';
    size_t n = (size_t) (tmp + sizeof tmp - 1 - at);
    if (n < sizeof p->buf - p->len) {
        memcpy(p->buf + p->len, at, n + 1);
        p->len += n;
    }
    return old;
}

static void
s_path_pop(s_path_t *p, size_t old)
{
    p->len = old;
    p->buf[old] = '\0';
}

static evr_rc_t
s_type_err(evr_err_t *err, const s_path_t *path, const char *want, const msgpack_object *o)
{
    return evr_err_set(err, EVR_ERR_PROTO, "%s: expected %s, got %s", path->buf, want,
                       s_objtype(o));
}

/*  Copies a msgpack string into a new C string, checking length, NULs and
    UTF-8. */
static evr_rc_t
s_get_str(const msgpack_object *o, uint32_t limit, const s_path_t *path, char **out,
          evr_err_t *err)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return s_type_err(err, path, "str", o);
    uint32_t n = o->via.str.size;
    if (n > limit)
        return evr_err_set(err, EVR_ERR_LIMIT, "%s: string of %u bytes exceeds the limit of %u",
                           path->buf, n, limit);
    if (memchr(o->via.str.ptr, '\0', n))
        return evr_err_set(err, EVR_ERR_PROTO, "%s: string contains a NUL byte", path->buf);
    if (!evr_utf8_valid(o->via.str.ptr, n))
        return evr_err_set(err, EVR_ERR_PROTO, "%s: string is not valid UTF-8", path->buf);
    *out = evr_strndup(o->via.str.ptr, n);
    return EVR_OK;
}

/*  The key at entry i of a map whose keys are values (map str->str, map
    str->map), refused as "PATH: key of entry [i]: ...": named apart
    from the map, whose own "PATH: expected str" would read as the map
    having to be a str.  Formatted only when refused. */
static evr_rc_t
s_get_key(const msgpack_object *o, uint32_t limit, uint32_t i, s_path_t *path, char **out,
          evr_err_t *err)
{
    if (s_get_str(o, limit, path, out, NULL) == EVR_OK)
        return EVR_OK;
    size_t old = path->len;
    int n = snprintf(path->buf + old, sizeof path->buf - old, ": key of entry [%u]", i);
    if (n < 0 || (size_t) n >= sizeof path->buf - old)
        path->buf[old] = '\0';   /* no room: the map's path alone */
    evr_rc_t rc = s_get_str(o, limit, path, out, err);
    path->buf[old] = '\0';
    return rc;
}

static evr_rc_t s_unpack_rec(const msgpack_object *obj, const evr_rectype_t *type, void *rec,
                             s_path_t *path, evr_err_t *err);

static evr_rc_t
s_count(const evr_field_t *f, uint32_t n, const s_path_t *path, evr_err_t *err)
{
    uint32_t limit = evr_field_limit(f);
    if (n > limit)
        return evr_err_set(err, EVR_ERR_LIMIT, "%s: %u items exceed the limit of %u",
                           path->buf, n, limit);
    return EVR_OK;
}

/*  Unpacks a keyed record of a RECMAP from its key and value. */
static evr_rc_t
s_unpack_keyed(const msgpack_object_kv *kv, uint32_t i, const evr_rectype_t *sub, void *rec,
               s_path_t *path, evr_err_t *err)
{
    char **key = (char **) AT(rec, &sub->fields[0]);
    evr_rc_t rc = s_get_key(&kv->key, evr_field_limit(&sub->fields[0]), i, path, key, err);
    if (rc)
        return rc;
    size_t old = s_path_key(path, *key, strlen(*key));
    evr_rectype_t rest = *sub;
    rest.fields = sub->fields + 1;
    rest.nfields = sub->nfields - 1;
    rest.post = NULL;   /* run once below, with the key filled in */
    rc = s_unpack_rec(&kv->val, &rest, rec, path, err);
    if (!rc && sub->post) {
        const char *why = sub->post(rec);
        if (why)
            rc = evr_err_set(err, EVR_ERR_PROTO, "%s: %s", path->buf, why);
    }
    s_path_pop(path, old);
    return rc;
}

static evr_rc_t
s_unpack_strlist(const msgpack_object *o, const evr_field_t *f, evr_strlist_t *l,
                 s_path_t *path, evr_err_t *err)
{
    evr_rc_t rc;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return s_type_err(err, path, "array", o);
    if ((rc = s_count(f, o->via.array.size, path, err)))
        return rc;
    l->v = evr_calloc(o->via.array.size, sizeof(char *));
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        size_t old = s_path_index(path, i);
        rc = s_get_str(&o->via.array.ptr[i], EVR_STR_MAX, path, &l->v[i], err);
        s_path_pop(path, old);
        if (rc)
            return rc;
        l->n++;
    }
    return EVR_OK;
}

static evr_rc_t
s_unpack_strmap(const msgpack_object *o, const evr_field_t *f, evr_strmap_t *m,
                s_path_t *path, evr_err_t *err)
{
    evr_rc_t rc;
    if (o->type != MSGPACK_OBJECT_MAP)
        return s_type_err(err, path, "map", o);
    if ((rc = s_count(f, o->via.map.size, path, err)))
        return rc;
    m->k = evr_calloc(o->via.map.size, sizeof(char *));
    m->v = evr_calloc(o->via.map.size, sizeof(char *));
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        char *k = NULL;
        if ((rc = s_get_key(&kv->key, EVR_STR_MAX, i, path, &k, err)))
            return rc;
        size_t old = s_path_key(path, k, strlen(k));
        if (evr_strmap_get(m, k)) {
            free(k);
            rc = evr_err_set(err, EVR_ERR_PROTO, "%s: duplicate key", path->buf);
        }
        else {
            m->k[m->n] = k;
            rc = s_get_str(&kv->val, EVR_STR_MAX, path, &m->v[m->n], err);
            m->n++;   /* on error the key is freed with the map */
        }
        s_path_pop(path, old);
        if (rc)
            return rc;
    }
    return EVR_OK;
}

/*  RECLIST (an array of records) and RECMAP (a map of keyed records). */
static evr_rc_t
s_unpack_reclist(const msgpack_object *o, const evr_field_t *f, evr_reclist_t *l,
                 s_path_t *path, evr_err_t *err)
{
    evr_rc_t rc;
    bool keyed = f->type == EVR_FT_RECMAP;
    if (o->type != (keyed ? MSGPACK_OBJECT_MAP : MSGPACK_OBJECT_ARRAY))
        return s_type_err(err, path, keyed ? "map" : "array", o);
    uint32_t n = keyed ? o->via.map.size : o->via.array.size;
    if ((rc = s_count(f, n, path, err)))
        return rc;
    l->v = evr_calloc(n, f->sub->size);
    for (uint32_t i = 0; i < n; i++) {
        void *item = evr_reclist_at(f->sub, l, i);
        l->n++;
        if (keyed) {
            rc = s_unpack_keyed(&o->via.map.ptr[i], i, f->sub, item, path, err);
            for (uint32_t j = 0; !rc && j < i; j++) {
                const char *a = *(char **) AT(evr_reclist_at(f->sub, l, j), &f->sub->fields[0]);
                const char *b = *(char **) AT(item, &f->sub->fields[0]);
                if (strcmp(a, b) == 0)
                    rc = evr_err_set(err, EVR_ERR_PROTO, "%s.%s: duplicate key", path->buf, b);
            }
        }
        else {
            size_t old = s_path_index(path, i);
            rc = s_unpack_rec(&o->via.array.ptr[i], f->sub, item, path, err);
            s_path_pop(path, old);
        }
        if (rc)
            return rc;
    }
    return EVR_OK;
}

static evr_rc_t
s_unpack_field(const msgpack_object *o, const evr_field_t *f, void *rec, s_path_t *path,
               evr_err_t *err)
{
    void *p = AT(rec, f);
    switch (f->type) {
    case EVR_FT_STR: return s_get_str(o, evr_field_limit(f), path, (char **) p, err);
    case EVR_FT_U64:
    case EVR_FT_BYTES:
    case EVR_FT_DURATION:
    case EVR_FT_U32:
    case EVR_FT_U32_OPT:
        if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)   /* a wrong type, not a size */
            return evr_err_set(err, EVR_ERR_PROTO, "%s: expected non-negative int, got %lld",
                               path->buf, (long long) o->via.i64);
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return s_type_err(err, path, "non-negative int", o);
        if (f->type == EVR_FT_U32 || f->type == EVR_FT_U32_OPT) {
            if (o->via.u64 > UINT32_MAX)
                return evr_err_set(err, EVR_ERR_LIMIT, "%s: %llu exceeds the 32-bit range",
                                   path->buf, (unsigned long long) o->via.u64);
            if (f->type == EVR_FT_U32_OPT)
                *(evr_u32opt_t *) p = (evr_u32opt_t) { true, (uint32_t) o->via.u64 };
            else
                *(uint32_t *) p = (uint32_t) o->via.u64;
        }
        else
            *(uint64_t *) p = o->via.u64;
        return EVR_OK;
    case EVR_FT_I64:
        if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            *(int64_t *) p = o->via.i64;
        else if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return s_type_err(err, path, "int", o);
        else if (o->via.u64 > INT64_MAX)   /* above the range: a size, like a u32's */
            return evr_err_set(err, EVR_ERR_LIMIT, "%s: %llu exceeds the signed 64-bit range",
                               path->buf, (unsigned long long) o->via.u64);
        else
            *(int64_t *) p = (int64_t) o->via.u64;
        return EVR_OK;
    case EVR_FT_ENUM: {
        if (o->type != MSGPACK_OBJECT_STR)
            return s_type_err(err, path, "str", o);
        if (!evr_enum_parse(f, o->via.str.ptr, o->via.str.size, (uint32_t *) p)) {
            char names[384];
            evr_enum_expected(f, names, sizeof names);
            uint32_t n = o->via.str.size > 32 ? 32 : o->via.str.size;
            bool printable = evr_utf8_valid(o->via.str.ptr, n) && !memchr(o->via.str.ptr, 0, n);
            return evr_err_set(err, EVR_ERR_PROTO, "%s: unknown value \"%.*s\" (expected one of %s)",
                               path->buf, printable ? (int) n : 0, o->via.str.ptr, names);
        }
        return EVR_OK;
    }
    case EVR_FT_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return s_type_err(err, path, "bool", o);
        *(bool *) p = o->via.boolean;
        return EVR_OK;
    case EVR_FT_BIN: {
        if (o->type != MSGPACK_OBJECT_BIN)
            return s_type_err(err, path, "bin", o);
        if (o->via.bin.size > evr_field_limit(f))
            return evr_err_set(err, EVR_ERR_LIMIT, "%s: %u bytes exceed the limit of %u",
                               path->buf, o->via.bin.size, evr_field_limit(f));
        evr_bin_t *b = p;
        b->data = evr_malloc(o->via.bin.size);
        memcpy(b->data, o->via.bin.ptr, o->via.bin.size);
        b->len = o->via.bin.size;
        return EVR_OK;
    }
    case EVR_FT_STRLIST: return s_unpack_strlist(o, f, p, path, err);
    case EVR_FT_STRMAP: return s_unpack_strmap(o, f, p, path, err);
    case EVR_FT_RECLIST:
    case EVR_FT_RECMAP: return s_unpack_reclist(o, f, p, path, err);
    case EVR_FT_RECORD:
        if (f->short_key && o->type == MSGPACK_OBJECT_ARRAY) {
            /* the short form (older logs wrote a step's artifacts so) */
            const evr_field_t *sf = evr_rec_field(f->sub, f->short_key);
            size_t old = s_path_key(path, sf->key, strlen(sf->key));
            evr_rc_t rc = s_unpack_field(o, sf, p, path, err);
            s_path_pop(path, old);
            if (!rc && f->sub->present_off != EVR_NO_PRESENT)
                *(bool *) ((char *) p + f->sub->present_off) = evr_field_present(sf, AT(p, sf));
            return rc;
        }
        if (f->short_key && o->type != MSGPACK_OBJECT_MAP)   /* both forms named */
            return s_type_err(err, path, "map or array", o);
        return s_unpack_rec(o, f->sub, p, path, err);
    case EVR_FT_RECPTR:
        *(void **) p = evr_calloc(1, f->sub->size);
        return s_unpack_rec(o, f->sub, *(void **) p, path, err);
    case EVR_FT_VARIANT: {
        const evr_rectype_t *vt = f->select(rec);
        /* No layout means the selecting field is missing: the required
           check reports that one, which is the real problem. */
        return vt ? s_unpack_rec(o, vt, p, path, err) : EVR_OK;
    }
    }
    return evr_err_set(err, EVR_ERR_PROTO, "%s: unsupported field type", path->buf);
}

static __thread unsigned s_skipped;     /* evr_codec_skipped */

unsigned
evr_codec_skipped(void)
{
    return s_skipped;
}

/*  Finds the table entry for a msgpack key; unknown keys give NULL.  The
    search starts at *index (encoders write the keys in table order: the
    entry after the last one found is the likely one) and wraps; *index
    is set to the entry found. */
static const evr_field_t *
s_lookup(const evr_rectype_t *type, const msgpack_object *key, size_t *index)
{
    if (key->type != MSGPACK_OBJECT_STR || key->via.str.size == 0)
        return NULL;
    const char *kp = key->via.str.ptr;
    size_t kn = key->via.str.size, n = type->nfields, at = *index < n ? *index : 0;
    for (size_t i = 0; i < n; i++, at = at + 1 < n ? at + 1 : 0) {
        const char *k = type->fields[at].key;
        if (k[0] == kp[0] && strlen(k) == kn && memcmp(k, kp, kn) == 0) {
            *index = at;
            return &type->fields[at];
        }
    }
    return NULL;
}

/*  The prefix of a message about the record itself: "path: " or "". */
#define S_AT(path) (path)->buf, (path)->len ? ": " : ""

/*  The bits (by field index) of type's required fields: made once per
    thread and table slot, so that a record's check of them is one AND
    (a decode runs it for every record of every message and event). */
static uint64_t
s_required(const evr_rectype_t *type)
{
    static __thread struct {
        const evr_rectype_t *type;
        uint64_t mask;
    } cache[32];
    size_t h = ((uintptr_t) type >> 4) & 31;
    if (cache[h].type == type)
        return cache[h].mask;
    uint64_t mask = 0;
    for (size_t i = 0; i < type->nfields && i < 64; i++)
        if (type->fields[i].required)
            mask |= 1ull << i;
    cache[h].type = type;
    cache[h].mask = mask;
    return mask;
}

static evr_rc_t
s_unpack_rec(const msgpack_object *obj, const evr_rectype_t *type, void *rec, s_path_t *path,
             evr_err_t *err)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return s_type_err(err, path, "map", obj);
    uint64_t seen = 0;   /* tables have at most 64 fields */
    evr_rc_t rc = EVR_OK;
    /* Two passes: variant fields depend on the others (an event's data on
       its type), wherever they stand in the map; the second only when the
       first met one. */
    bool variants = false;
    for (int pass = 0; pass < 1 + variants && !rc; pass++) {
        size_t hint = 0;   /* where the next key is looked for first */
        for (uint32_t i = 0; i < obj->via.map.size && !rc; i++) {
            const msgpack_object_kv *kv = &obj->via.map.ptr[i];
            size_t idx = hint;
            const evr_field_t *f = s_lookup(type, &kv->key, &idx);
            if (!f) {
                s_skipped += pass == 0;     /* unknown keys: forward compatible */
                continue;
            }
            hint = idx + 1;
            variants |= f->type == EVR_FT_VARIANT;
            if ((f->type == EVR_FT_VARIANT) != (pass == 1))
                continue;
            size_t old = s_path_key(path, f->key, kv->key.via.str.size);
            if (seen & (1ull << idx))
                rc = evr_err_set(err, EVR_ERR_PROTO, "%s: duplicate key", path->buf);
            else {
                seen |= 1ull << idx;
                rc = s_unpack_field(&kv->val, f, rec, path, err);
            }
            if (!rc && f->check) {
                const char *why = f->check(AT(rec, f));
                if (why)
                    rc = evr_err_set(err, EVR_ERR_PROTO, "%s: %s", path->buf, why);
            }
            s_path_pop(path, old);
        }
    }
    bool missing = !rc && (s_required(type) & ~seen);
    for (size_t i = 0; missing && !rc && i < type->nfields; i++)
        if (type->fields[i].required && !(seen & (1ull << i)))
            rc = evr_err_set(err, EVR_ERR_PROTO, "%s%smissing required field \"%s\"",
                             S_AT(path), type->fields[i].key);
    if (!rc && type->post) {
        const char *why = type->post(rec);
        if (why)
            rc = evr_err_set(err, EVR_ERR_PROTO, "%s%s%s", S_AT(path), why);
    }
    if (!rc && type->present_off != EVR_NO_PRESENT)
        *(bool *) ((char *) rec + type->present_off) = true;
    return rc;
}

evr_rc_t
evr_codec_unpack(const msgpack_object *obj, const evr_rectype_t *type, void *rec,
                 const char *path, evr_err_t *err)
{
    s_path_t p = { .len = 0 };
    p.buf[0] = '\0';
    s_path_key(&p, path, strlen(path));
    return s_unpack_rec(obj, type, rec, &p, err);
}

/*  The zone a decode's objects live in: one per thread, kept (its first
    chunk) from one decode to the next, so that a message of a few KiB
    costs no malloc for its objects (msgpack_unpack_next makes a zone of 8
    KiB each time); a decode within a decode takes a zone of its own.  A
    thread's zone is freed when the thread ends. */
static pthread_key_t s_zone_key;
static pthread_once_t s_zone_once = PTHREAD_ONCE_INIT;
static __thread msgpack_zone *s_zone;
static __thread bool s_zone_busy;

static void
s_zone_free(void *zone)
{
    msgpack_zone_free(zone);
}

static void
s_zone_key_make(void)
{
    if (pthread_key_create(&s_zone_key, s_zone_free) != 0) {
        fprintf(stderr, "evrun: pthread_key_create failed\n");
        abort();
    }
}

static msgpack_zone *
s_zone_new(void)
{
    msgpack_zone *z = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    if (!z) {
        fprintf(stderr, "evrun: out of memory (msgpack_zone_new)\n");
        abort();
    }
    return z;
}

static msgpack_zone *
s_zone_take(bool *own)
{
    *own = s_zone_busy;
    if (*own)
        return s_zone_new();
    if (!s_zone) {
        pthread_once(&s_zone_once, s_zone_key_make);
        s_zone = s_zone_new();
        pthread_setspecific(s_zone_key, s_zone);
    }
    s_zone_busy = true;
    return s_zone;
}

static void
s_zone_give(msgpack_zone *zone, bool own)
{
    if (own)
        msgpack_zone_free(zone);
    else {
        msgpack_zone_clear(zone);   /* frees the chunks but the first */
        s_zone_busy = false;
    }
}

evr_rc_t
evr_codec_decode(const uint8_t *buf, size_t len, const evr_rectype_t *type, void *rec,
                 const char *path, evr_err_t *err)
{
    memset(rec, 0, type->size);   /* a reused record must not keep old scalars */
    s_skipped = 0;
    evr_rc_t rc = evr_codec_check(buf, len, EVR_CODEC_MAX_DEPTH, err);
    if (rc)
        return rc;
    bool own;
    msgpack_zone *zone = s_zone_take(&own);
    msgpack_object obj;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack((const char *) buf, len, &off, zone, &obj);
    if (ur != MSGPACK_UNPACK_SUCCESS)
        rc = evr_err_set(err, EVR_ERR_PROTO, "msgpack_unpack: error %d", (int) ur);
    else
        rc = evr_codec_unpack(&obj, type, rec, path, err);
    s_zone_give(zone, own);
    if (rc) {
        evr_rec_free(type, rec);
        memset(rec, 0, type->size);   /* scalars too: the record is left as it came */
    }
    return rc;
}
