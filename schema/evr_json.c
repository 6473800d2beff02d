/*  evr_json.c: table-driven record -> JSON. */
#include "evr_json.h"

#include <stdlib.h>
#include <string.h>

#include "evr_codec.h"

#define CAT(rec, f) ((const char *) (rec) + (f)->off)

static json_t *
s_base64(const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = evr_malloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t) p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t) p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    json_t *j = json_pack("{s:s}", "base64", out);
    free(out);
    return j;
}

json_t *
evr_json_bin(const uint8_t *p, size_t n)
{
    if (evr_utf8_valid((const char *) p, n) && !memchr(p, 0, n))
        return json_stringn((const char *) p, n);
    return s_base64(p, n);
}

static json_t *
s_str(const char *s)
{
    /* Decoded strings are checked UTF-8; YAML input may not be. */
    json_t *j = json_string(s);
    return j ? j : json_string("<invalid UTF-8>");
}

json_t *
evr_json_u64(uint64_t v)
{
    /* jansson's integers are int64: a larger value as a (positive) real */
    return v <= INT64_MAX ? json_integer((json_int_t) v) : json_real((double) v);
}

static json_t *
s_value(const evr_field_t *f, const void *rec, const void *p)
{
    switch (f->type) {
    case EVR_FT_STR: return s_str(*(char *const *) p);
    case EVR_FT_U64:
    case EVR_FT_BYTES: return evr_json_u64(*(const uint64_t *) p);
    case EVR_FT_U32: return json_integer((json_int_t) *(const uint32_t *) p);
    case EVR_FT_U32_OPT: return json_integer((json_int_t) ((const evr_u32opt_t *) p)->v);
    case EVR_FT_ENUM: return json_string(evr_enum_name(f, *(const uint32_t *) p));
    case EVR_FT_I64: return json_integer((json_int_t) *(const int64_t *) p);
    case EVR_FT_BOOL: return json_boolean(*(const bool *) p);
    case EVR_FT_DURATION: {
        char buf[64];
        evr_duration_format(*(const uint64_t *) p, buf, sizeof buf);
        return json_string(buf);
    }
    case EVR_FT_BIN: {
        const evr_bin_t *b = p;
        return evr_json_bin(b->data, b->len);
    }
    case EVR_FT_STRLIST: {
        const evr_strlist_t *l = p;
        json_t *a = json_array();
        for (uint32_t i = 0; i < l->n; i++)
            json_array_append_new(a, s_str(l->v[i]));
        return a;
    }
    case EVR_FT_STRMAP: {
        const evr_strmap_t *m = p;
        json_t *o = json_object();
        for (uint32_t i = 0; i < m->n; i++)
            json_object_set_new(o, m->k[i], s_str(m->v[i]));
        return o;
    }
    case EVR_FT_RECORD: return evr_json_from_rec(f->sub, p);
    case EVR_FT_RECPTR: return evr_json_from_rec(f->sub, *(void *const *) p);
    case EVR_FT_VARIANT: {
        const evr_rectype_t *vt = f->select(rec);
        return vt ? evr_json_from_rec(vt, p) : json_object();
    }
    case EVR_FT_RECLIST: {
        const evr_reclist_t *l = p;
        json_t *a = json_array();
        for (uint32_t i = 0; i < l->n; i++)
            json_array_append_new(a, evr_json_from_rec(f->sub, evr_reclist_at(f->sub, l, i)));
        return a;
    }
    case EVR_FT_RECMAP: {
        const evr_reclist_t *l = p;
        json_t *o = json_object();
        evr_rectype_t rest = *f->sub;
        rest.fields = f->sub->fields + 1;
        rest.nfields = f->sub->nfields - 1;
        for (uint32_t i = 0; i < l->n; i++) {
            const void *item = evr_reclist_at(f->sub, l, i);
            const char *key = *(char *const *) CAT(item, &f->sub->fields[0]);
            json_object_set_new(o, key ? key : "", evr_json_from_rec(&rest, item));
        }
        return o;
    }
    }
    return json_null();
}

json_t *
evr_json_from_rec(const evr_rectype_t *type, const void *rec)
{
    json_t *o = json_object();
    for (size_t i = 0; i < type->nfields; i++) {
        const evr_field_t *f = &type->fields[i];
        if (evr_field_present(f, CAT(rec, f)))
            json_object_set_new(o, f->key, s_value(f, rec, CAT(rec, f)));
    }
    return o;
}
