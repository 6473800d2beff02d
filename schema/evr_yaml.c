/*  evr_yaml.c: libyaml document -> evr_spec_t through the field tables.

    libyaml builds the node graph (its loader is iterative, so deep input
    cannot overflow our stack); this file walks it with a depth limit, a
    node budget and a byte budget (EVR_SPEC_MAX_BYTES), checking each key
    and value against the table of the record it fills and recording every
    field's position in the source map.  The text's syntax errors and
    the precheck before the walk are in evr_yaml_syntax.c; the words of
    an unknown key's error and other CI systems' forms, in
    evr_yaml_words.c.
*/
#include "evr_yaml.h"
#include "evr_yaml_merge.h"
#include "evr_yaml_syntax.h"
#include "evr_yaml_words.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define AT(rec, f) ((char *) (rec) + (f)->off)

typedef struct {
    yaml_document_t *doc;
    evr_diag_t *diag;
    size_t budget;      /* nodes left to visit */
    size_t bytes;       /* scalar bytes loaded, aliases counted each time */
} s_ctx_t;

/*  Builds a field path for messages; a path too long for buf is cut,
    which only shortens a message. */
static void s_path(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
s_path(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static bool s_load_rec(s_ctx_t *ctx, yaml_node_t *node, const evr_rectype_t *type, void *rec,
                       const char *path, unsigned depth);

static void
s_err(s_ctx_t *ctx, const yaml_node_t *node, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
s_err(s_ctx_t *ctx, const yaml_node_t *node, const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    evr_diag_add_at(ctx->diag, (uint32_t) node->start_mark.line + 1,
                    (uint32_t) node->start_mark.column + 1, path, "%s", msg);
}

static bool
s_is_null(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *) node->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null")
        || !strcmp(v, "NULL");
}

static const char *
s_kind(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_SCALAR_NODE: return s_is_null(node) ? "nothing" : "a scalar";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

/*  Returns the node's scalar as a C string (owned by the document), or
    NULL after reporting why it is not an acceptable string. */
static const char *
s_scalar(s_ctx_t *ctx, yaml_node_t *node, uint32_t limit, const char *path)
{
    if (node->type != YAML_SCALAR_NODE) {
        const char *last = strrchr(path, '.');
        const char *key = last ? last + 1 : path;
        const char *hint = "";
        if (node->type == YAML_MAPPING_NODE && !strcmp(key, "image"))
            hint = " (GitLab's image: {name: NAME} is image: NAME here)";
        else if (node->type == YAML_SEQUENCE_NODE && !strcmp(key, "run"))
            hint = " (GitLab's script: list is one text here: run: |, then the commands "
                   "one a line, indented below it)";
        s_err(ctx, node, path, "expected a string, got %s%s", s_kind(node), hint);
        return NULL;
    }
    size_t n = node->data.scalar.length;
    const char *v = (const char *) node->data.scalar.value;
    if (n > limit) {
        s_err(ctx, node, path, "value of %zu bytes exceeds the limit of %u", n, limit);
        return NULL;
    }
    if (memchr(v, '\0', n)) {
        s_err(ctx, node, path, "value contains a NUL character");
        return NULL;
    }
    /* The spec's strings alone over its limit: stop before aliases make
       the copy huge (evr_spec_check_size would refuse it anyway). */
    ctx->bytes += n;
    if (ctx->bytes > EVR_SPEC_MAX_BYTES) {
        s_err(ctx, node, path, "the pipeline's strings add up to more than %u bytes, the "
              "limit of a pipeline spec (1 MiB; YAML aliases count once per use)",
              EVR_SPEC_MAX_BYTES);
        ctx->budget = 0;    /* ends the walk */
        return NULL;
    }
    return v;
}


/*  Returns the key kn of the mapping at path ("" at the top of the file)
    as a C string, or NULL after saying why it is not a key that mapping
    takes: keys says what its keys are, or (NULL) the key names of type. */
static const char *
s_key(s_ctx_t *ctx, yaml_node_t *kn, uint32_t limit, const char *path,
      const evr_rectype_t *type, const char *keys)
{
    bool scalar = kn->type == YAML_SCALAR_NODE;
    if (scalar && kn->data.scalar.length <= limit)
        return s_scalar(ctx, kn, limit, path);
    char names[512], size[64] = "";
    if (!keys) {
        evr_yaml_expected_keys(type, names, sizeof names);
        keys = names;
    }
    if (scalar)
        snprintf(size, sizeof size, " of %zu bytes", kn->data.scalar.length);
    char limit_s[48];
    snprintf(limit_s, sizeof limit_s, ", over the limit of %u", limit);
    s_err(ctx, kn, path, "a key%s %s%s%s: expected %s%s", size,
          *path ? "in this mapping" : "at the top of the file", scalar ? "" : " that is ",
          scalar ? limit_s : s_kind(kn), type ? "a key name, one of: " : "", keys);
    return NULL;
}

static bool
s_uint(s_ctx_t *ctx, yaml_node_t *node, uint64_t max, const char *path, uint64_t *out)
{
    const char *v = s_scalar(ctx, node, 32, path);
    if (!v)
        return false;
    uint64_t n = 0;
    const char *p = v;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (max - (uint64_t) (*p - '0')) / 10) {
            s_err(ctx, node, path, "number \"%s\" is too large (at most %llu)", v,
                  (unsigned long long) max);
            return false;
        }
        n = n * 10 + (uint64_t) (*p - '0');
    }
    if (p == v || *p) {
        s_err(ctx, node, path, "expected a non-negative integer, got \"%s\"", v);
        return false;
    }
    *out = n;
    return true;
}

static bool
s_budget(s_ctx_t *ctx, yaml_node_t *node, const char *path)
{
    if (ctx->budget == 0)
        return false;
    if (--ctx->budget == 0) {
        s_err(ctx, node, path, "document too large: more than %u nodes (aliases count each "
              "time they are used)", EVR_YAML_MAX_NODES);
        return false;
    }
    return true;
}

static bool
s_depth(s_ctx_t *ctx, yaml_node_t *node, const char *path, unsigned depth)
{
    if (depth <= EVR_YAML_MAX_DEPTH)
        return true;
    s_err(ctx, node, path, "nested deeper than %d levels", EVR_YAML_MAX_DEPTH);
    return false;
}

static bool
s_load_strlist(s_ctx_t *ctx, yaml_node_t *node, const evr_field_t *f, evr_strlist_t *l,
               const char *path)
{
    if (node->type == YAML_SCALAR_NODE && node->data.scalar.length <= 64) {
        s_err(ctx, node, path, "expected a list, got a scalar: write [%s]",
              (const char *) node->data.scalar.value);
        return false;
    }
    if (node->type != YAML_SEQUENCE_NODE) {
        s_err(ctx, node, path, "expected a list, got %s", s_kind(node));
        return false;
    }
    yaml_node_item_t *it = node->data.sequence.items.start;
    size_t n = (size_t) (node->data.sequence.items.top - it);
    if (n > evr_field_limit(f)) {
        s_err(ctx, node, path, "%zu items exceed the limit of %u", n, evr_field_limit(f));
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        char ipath[512];
        s_path(ipath, sizeof ipath, "%s[%zu]", path, i);
        yaml_node_t *item = yaml_document_get_node(ctx->doc, it[i]);
        if (!s_budget(ctx, item, ipath))
            return false;
        evr_diag_mark(ctx->diag, ipath, (uint32_t) item->start_mark.line + 1,
                      (uint32_t) item->start_mark.column + 1);
        if (s_is_null(item)) {   /* `- ` alone, or ~: taken as the text "~" or "" */
            s_err(ctx, item, ipath, "expected a string, got nothing (an empty item, or ~: "
                  "remove it, or quote it)");
            ok = false;
            continue;
        }
        if (item->type == YAML_MAPPING_NODE && !strcmp(f->key, "needs")) {
            /* GitLab's needs: [{job: build, artifacts: true}] */
            s_err(ctx, item, ipath, "expected a step's name, got a mapping (GitLab's needs: "
                  "[{job: build}] is needs: [build] here)");
            ok = false;
            continue;
        }
        const char *v = s_scalar(ctx, item, EVR_STR_MAX, ipath);
        if (v)
            evr_strlist_push(l, v);
        else
            ok = false;
    }
    return ok;
}

/*  Whether key kn was written with no ":" (its value vn the empty scalar
    libyaml makes for `{A: hello, world}`'s world, where it ends the key;
    after a ":" it starts past it).  A map of strings takes every key, so
    that is the only sign that a "," cut a value short. */
static bool
s_no_colon(const yaml_node_t *kn, const yaml_node_t *vn)
{
    return vn->type == YAML_SCALAR_NODE && !vn->data.scalar.length
        && vn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
        && vn->start_mark.index == kn->end_mark.index;
}

static bool
s_load_strmap(s_ctx_t *ctx, yaml_node_t *node, const evr_field_t *f, evr_strmap_t *m,
              const char *path)
{
    if (node->type != YAML_MAPPING_NODE) {
        char hint[320];
        evr_yaml_map_hint(ctx->doc, f, node, hint, sizeof hint);
        s_err(ctx, node, path, "expected a mapping, got %s%s", s_kind(node), hint);
        return false;
    }
    evr_ypair_t *pr;
    size_t n;
    bool ok = evr_yaml_pairs(ctx->doc, node, path, &ctx->budget, ctx->diag, &pr, &n);
    if (ctx->budget && n > evr_field_limit(f))
        s_err(ctx, node, path, "%zu entries exceed the limit of %u", n, evr_field_limit(f));
    if (!ctx->budget || n > evr_field_limit(f))
        n = 0, ok = false;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *kn = pr[i].key, *vn = pr[i].value;
        if (!s_budget(ctx, kn, path) || !s_budget(ctx, vn, path)) {
            ok = false;
            break;
        }
        const char *k = s_key(ctx, kn, 256, path, NULL, "a name");
        if (!k) {
            ok = false;
            continue;
        }
        char kpath[512];
        s_path(kpath, sizeof kpath, "%s.%s", path, k);
        evr_diag_mark(ctx->diag, kpath, (uint32_t) kn->start_mark.line + 1,
                      (uint32_t) kn->start_mark.column + 1);
        if (evr_strmap_get(m, k)) {
            size_t j = 0;
            while (j < i && !(pr[j].key->type == YAML_SCALAR_NODE
                              && !strcmp((const char *) pr[j].key->data.scalar.value, k)))
                j++;
            s_err(ctx, kn, kpath, "duplicate key (first at line %zu)",
                  (j < i ? pr[j].key : kn)->start_mark.line + 1);
            ok = false;
            continue;
        }
        if (s_no_colon(kn, vn)) {
            s_err(ctx, kn, kpath, "a key with no \":\" and no value: in {...} a \",\" ends a "
                  "value, so is this the rest of the value before it? quote a value that "
                  "holds a \",\" (A: \"hello, world\"); an empty value is %s: \"\"", k);
            ok = false;
            continue;
        }
        const char *v = s_is_null(vn) ? "" : s_scalar(ctx, vn, EVR_STR_MAX, kpath);
        if (v)
            evr_strmap_set(m, k, v);
        else
            ok = false;
    }
    free(pr);
    return ok;
}

static bool s_load_field(s_ctx_t *ctx, yaml_node_t *node, const evr_field_t *f, void *rec,
                         const char *path, unsigned depth);
static bool s_load_items(s_ctx_t *ctx, yaml_node_t *node, const evr_ypair_t *pairs, size_t n,
                         const evr_field_t *f, evr_reclist_t *l, const char *path,
                         unsigned depth);

/*  The first key of node (a mapping), when node is a mapping of names to
    records of type sub (its first key no key of sub, its value a
    mapping) with a name field: NULL otherwise. */
static const char *
s_named_items(s_ctx_t *ctx, const yaml_node_t *node, const evr_rectype_t *sub)
{
    yaml_node_pair_t *pr = node->data.mapping.pairs.start;
    if (pr == node->data.mapping.pairs.top || !evr_rec_field(sub, "name"))
        return NULL;
    yaml_node_t *kn = yaml_document_get_node(ctx->doc, pr->key);
    yaml_node_t *vn = yaml_document_get_node(ctx->doc, pr->value);
    if (!kn || !vn || kn->type != YAML_SCALAR_NODE || vn->type != YAML_MAPPING_NODE
        || kn->data.scalar.length > 64 || evr_rec_field(sub, (const char *) kn->data.scalar.value))
        return NULL;
    return (const char *) kn->data.scalar.value;
}

/*  A list of records, or (keyed) a mapping of name -> record whose first
    field is the name. */
static bool
s_load_reclist(s_ctx_t *ctx, yaml_node_t *node, const evr_field_t *f, evr_reclist_t *l,
               const char *path, unsigned depth)
{
    bool keyed = f->type == EVR_FT_RECMAP;
    yaml_node_type_t want = keyed ? YAML_MAPPING_NODE : YAML_SEQUENCE_NODE;
    if (node->type != want) {
        /* one item written without its list (GitLab's cache: {key, paths}) */
        bool one = !keyed && node->type == YAML_MAPPING_NODE;
        /* GitLab's and GitHub's jobs: a mapping of name -> job */
        const char *job = one ? s_named_items(ctx, node, f->sub) : NULL;
        if (job)
            s_err(ctx, node, path, "expected a list, got a mapping of names to %ss: %s is a "
                  "list, each %s with its name (%s: [{name: %s, run: ...}])", f->sub->name,
                  f->key, f->sub->name, f->key, job);
        else {
            char hint[320];
            evr_yaml_map_hint(ctx->doc, f, node, hint, sizeof hint);
            s_err(ctx, node, path, "expected %s, got %s%s%s", keyed ? "a mapping" : "a list",
                  s_kind(node), one ? ": a list of one is [{...}], or - before its first key "
                  "on a line of its own" : "", hint);
        }
        return false;
    }
    evr_ypair_t *pairs = NULL;
    size_t n = keyed ? 0
             : (size_t) (node->data.sequence.items.top - node->data.sequence.items.start);
    bool ok = true;
    if (keyed) {
        ok = evr_yaml_pairs(ctx->doc, node, path, &ctx->budget, ctx->diag, &pairs, &n);
        if (!ctx->budget) {
            free(pairs);
            return false;
        }
    }
    if (n > evr_field_limit(f)) {
        s_err(ctx, node, path, "%zu items exceed the limit of %u", n, evr_field_limit(f));
        free(pairs);
        return false;
    }
    const evr_rectype_t *sub = f->sub;
    l->v = evr_calloc(n ? n : 1, sub->size);
    ok = s_load_items(ctx, node, pairs, n, f, l, path, depth) && ok;
    free(pairs);
    return ok;
}

/*  The n items of s_load_reclist: node's (a list) or, keyed, pairs'. */
static bool
s_load_items(s_ctx_t *ctx, yaml_node_t *node, const evr_ypair_t *pairs, size_t n,
             const evr_field_t *f, evr_reclist_t *l, const char *path, unsigned depth)
{
    bool keyed = f->type == EVR_FT_RECMAP;
    const evr_rectype_t *sub = f->sub;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        void *item = evr_reclist_at(sub, l, (uint32_t) i);
        l->n++;
        char ipath[512];
        if (!keyed) {
            s_path(ipath, sizeof ipath, "%s[%zu]", path, i);
            yaml_node_t *in = yaml_document_get_node(ctx->doc, node->data.sequence.items.start[i]);
            if (!s_budget(ctx, in, ipath))
                return false;
            ok = s_load_rec(ctx, in, sub, item, ipath, depth + 1) && ok;
            continue;
        }
        yaml_node_t *kn = pairs[i].key, *vn = pairs[i].value;
        if (!s_budget(ctx, kn, path) || !s_budget(ctx, vn, path))
            return false;
        char what[128];
        snprintf(what, sizeof what, "a name of at most %u bytes", evr_field_limit(&sub->fields[0]));
        const char *k = s_key(ctx, kn, evr_field_limit(&sub->fields[0]), path, NULL, what);
        if (!k) {
            ok = false;
            continue;
        }
        s_path(ipath, sizeof ipath, "%s.%s", path, k);
        evr_diag_mark(ctx->diag, ipath, (uint32_t) kn->start_mark.line + 1,
                      (uint32_t) kn->start_mark.column + 1);
        size_t dup = i;
        for (size_t j = 0; j < i && dup == i; j++) {
            const char *o = *(char **) AT(evr_reclist_at(sub, l, (uint32_t) j), &sub->fields[0]);
            dup = o && strcmp(o, k) == 0 ? j : i;
        }
        if (dup < i) {
            s_err(ctx, kn, ipath, "duplicate key (first at line %zu)",
                  pairs[dup].key->start_mark.line + 1);
            ok = false;
            continue;
        }
        *(char **) AT(item, &sub->fields[0]) = evr_strdup(k);
        if (s_is_null(vn))
            continue;   /* "NAME:" alone: a record with only its name */
        if (f->short_key && vn->type != YAML_MAPPING_NODE) {
            /* `KEY: [a, b]` is `KEY: {values: [a, b]}` (a step's matrix) */
            const evr_field_t *sf = evr_rec_field(sub, f->short_key);
            char fpath[600];
            s_path(fpath, sizeof fpath, "%s.%s", ipath, sf->key);
            evr_diag_mark(ctx->diag, fpath, (uint32_t) vn->start_mark.line + 1,
                          (uint32_t) vn->start_mark.column + 1);
            if (vn->type != YAML_SEQUENCE_NODE) {
                s_err(ctx, vn, ipath, "expected a list of values, got %s", s_kind(vn));
                ok = false;
                continue;
            }
            ok = s_load_field(ctx, vn, sf, item, fpath, depth + 1) && ok;
            continue;
        }
        evr_rectype_t rest = *sub;
        rest.fields = sub->fields + 1;
        rest.nfields = sub->nfields - 1;
        ok = s_load_rec(ctx, vn, &rest, item, ipath, depth + 1) && ok;
    }
    return ok;
}


/*  A record field written in its short form (f->names[0]): the value of
    that one field, at the path it has in the map form. */
static bool
s_load_short(s_ctx_t *ctx, yaml_node_t *node, const evr_field_t *f, void *sub,
             const char *path, unsigned depth)
{
    const evr_field_t *sf = evr_rec_field(f->sub, f->short_key);
    char fpath[512];
    s_path(fpath, sizeof fpath, "%s.%s", path, sf->key);
    evr_diag_mark(ctx->diag, fpath, (uint32_t) node->start_mark.line + 1,
                  (uint32_t) node->start_mark.column + 1);
    if (node->type != YAML_SEQUENCE_NODE || sf->type != EVR_FT_STRLIST) {
        s_err(ctx, node, path, "expected a mapping (%s) or a list (its %s), got %s",
              f->sub->name, sf->key, s_kind(node));
        return false;
    }
    bool ok = s_load_field(ctx, node, sf, sub, fpath, depth);
    if (ok && f->sub->present_off != EVR_NO_PRESENT)   /* [] is no record */
        *(bool *) ((char *) sub + f->sub->present_off) = evr_field_present(sf, AT(sub, sf));
    return ok;
}

/*  What f's value is, in words for a message ("a list of strings"). */
static const char *
s_want(const evr_field_t *f, char *buf, size_t size)
{
    const char *sub = f->sub ? f->sub->name : "";
    switch (f->type) {
    case EVR_FT_STR: return "a string";
    case EVR_FT_U32:
    case EVR_FT_U32_OPT:
    case EVR_FT_U64: return "a non-negative whole number";
    case EVR_FT_BOOL: return "true or false";
    case EVR_FT_DURATION: return "a duration like 90s or 1h30m";
    case EVR_FT_BYTES: return "a size like 512M or 2G";
    case EVR_FT_STRLIST: return "a list of strings";
    case EVR_FT_STRMAP: return "a mapping of names to strings";
    case EVR_FT_ENUM: {
        char names[200];
        evr_enum_expected(f, names, sizeof names);
        snprintf(buf, size, "one of: %s", names);
        return buf;
    }
    case EVR_FT_RECLIST: snprintf(buf, size, "a list of %s mappings", sub); return buf;
    case EVR_FT_RECMAP: snprintf(buf, size, "a mapping of names to %s mappings", sub); return buf;
    case EVR_FT_RECORD: snprintf(buf, size, "a mapping (%s)", sub); return buf;
    default: return evr_ftype_name(f->type);
    }
}

static bool
s_load_field(s_ctx_t *ctx, yaml_node_t *node, const evr_field_t *f, void *rec,
             const char *path, unsigned depth)
{
    void *p = AT(rec, f);
    char want[256];
    if (s_is_null(node) && f->type != EVR_FT_STR) {
        if (f->required) {
            s_err(ctx, node, path, "expected %s, got nothing", s_want(f, want, sizeof want));
            return false;
        }
        return true;
    }
    bool scalar = f->type == EVR_FT_U32 || f->type == EVR_FT_U32_OPT || f->type == EVR_FT_U64
        || f->type == EVR_FT_ENUM || f->type == EVR_FT_BOOL || f->type == EVR_FT_DURATION
        || f->type == EVR_FT_BYTES;
    if (scalar && node->type != YAML_SCALAR_NODE) {
        s_err(ctx, node, path, "expected %s, got %s", s_want(f, want, sizeof want), s_kind(node));
        return false;
    }
    switch (f->type) {
    case EVR_FT_STR: {
        if (s_is_null(node) && !strcmp(f->key, "image"))
            return true;    /* as a list, a record or a number with no value: absent (a
                               step then takes the pipeline's, or has none: said then) */
        if (s_is_null(node)) {
            s_err(ctx, node, path, "expected a string, got nothing");
            return false;
        }
        const char *v = s_scalar(ctx, node, evr_field_limit(f), path);
        if (!v)
            return false;
        *(char **) p = evr_strdup(v);
        return true;
    }
    case EVR_FT_U32:
    case EVR_FT_U32_OPT:
    case EVR_FT_U64: {
        uint64_t v;
        if (!s_uint(ctx, node, f->type == EVR_FT_U64 ? UINT64_MAX : UINT32_MAX, path, &v))
            return false;
        if (f->type == EVR_FT_U32_OPT)
            *(evr_u32opt_t *) p = (evr_u32opt_t) { true, (uint32_t) v };
        else if (f->type == EVR_FT_U32)
            *(uint32_t *) p = (uint32_t) v;
        else
            *(uint64_t *) p = v;
        return true;
    }
    case EVR_FT_ENUM: {
        const char *v = s_scalar(ctx, node, 64, path);
        if (!v)
            return false;
        if (!evr_enum_parse(f, v, strlen(v), (uint32_t *) p)) {
            char names[256];
            evr_enum_expected(f, names, sizeof names);
            size_t n = 0;
            while (f->names[n])
                n++;
            const char *near = evr_diag_near(v, f->names, n);
            const char *hint = evr_yaml_enum_hint(f, v);
            s_err(ctx, node, path, "expected one of %s, got \"%s\"%s%s%s%s", names, v,
                  near && *near ? "; did you mean " : "", near && *near ? near : "",
                  near && *near ? "?" : "", hint ? hint : "");
            return false;
        }
        return true;
    }
    case EVR_FT_BOOL: {
        const char *v = s_scalar(ctx, node, 16, path);
        if (!v)
            return false;
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
            *(bool *) p = true;
        else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))
            *(bool *) p = false;
        else {
            s_err(ctx, node, path, "expected true or false (also yes, no, on, off; lower case "
                  "only), got \"%s\"", v);
            return false;
        }
        return true;
    }
    case EVR_FT_DURATION: {
        const char *v = s_scalar(ctx, node, 64, path);
        if (!v)
            return false;
        if (evr_duration_overflows(v)) {
            s_err(ctx, node, path, "%s is over the longest duration, %llu ms (3650d: 10 years)",
                  v, (unsigned long long) EVR_SPEC_MAX_DURATION_MS);
            return false;
        }
        if (!evr_duration_parse(v, (uint64_t *) p)) {
            s_err(ctx, node, path, "bad duration \"%s\" (expected e.g. 90s, 5m, 1h30m, 500ms: "
                  "units d h m s ms, largest first, each once)", v);
            return false;
        }
        return true;
    }
    case EVR_FT_BYTES: {
        const char *v = s_scalar(ctx, node, 64, path);
        if (!v)
            return false;
        if (evr_bytes_overflows(v)) {   /* said as a size past the maximum is */
            s_err(ctx, node, path, "%s is over the maximum, %llu bytes (1 PiB: 1024T)", v,
                  (unsigned long long) EVR_SPEC_MAX_MEMORY);
            return false;
        }
        if (!evr_bytes_parse(v, (uint64_t *) p)) {
            s_err(ctx, node, path, "bad size \"%s\" (expected bytes, or e.g. 512M, 2G, 64k: a "
                  "whole number and k, M, G or T, powers of 1024)", v);
            return false;
        }
        return true;
    }
    case EVR_FT_STRLIST: return s_load_strlist(ctx, node, f, p, path);
    case EVR_FT_STRMAP: return s_load_strmap(ctx, node, f, p, path);
    case EVR_FT_RECLIST:
    case EVR_FT_RECMAP: return s_load_reclist(ctx, node, f, p, path, depth);
    case EVR_FT_RECORD:
        /* a word that stands for absence (`source: none`) */
        if (f->names && node->type == YAML_SCALAR_NODE)
            for (size_t i = 0; f->names[i]; i++)
                if (node->data.scalar.length == strlen(f->names[i])
                    && !memcmp(node->data.scalar.value, f->names[i], strlen(f->names[i])))
                    return true;
        if (f->names && node->type == YAML_SCALAR_NODE && !f->short_key) {
            char keys[256];
            evr_yaml_expected_keys(f->sub, keys, sizeof keys);
            char *aside = strstr(keys, ", secret");   /* a tarball's, beside it: no form */
            if (aside)
                memmove(aside, aside + 8, strlen(aside + 8) + 1);
            s_err(ctx, node, path, "expected a mapping (one of: %s) or %s, got \"%.64s\"", keys,
                  f->names[0], (const char *) node->data.scalar.value);
            return false;
        }
        if (f->short_key && node->type != YAML_MAPPING_NODE)
            return s_load_short(ctx, node, f, p, path, depth);
        return s_load_rec(ctx, node, f->sub, p, path, depth + 1);
    default:
        s_err(ctx, node, path, "field type %s cannot be written in a pipeline file",
              evr_ftype_name(f->type));
        return false;
    }
}


/*  Reports the unknown key k of type at kn (its value vn); returns the index of the
    field suggested instead (its "missing" error is then left out), or -1.
    comma: k has no value and follows another key in a {...} mapping.
    The words are evr_yaml_words.c's. */
static int
s_unknown_key(s_ctx_t *ctx, yaml_node_t *kn, yaml_node_t *vn, const evr_rectype_t *type,
              const char *k, const char *fpath, bool comma)
{
    char msg[1024];
    if (!*k) {   /* said so, at the mapping's path ("steps[0]", not "steps[0].") */
        char at[512], keys[512];
        evr_yaml_expected_keys(type, keys, sizeof keys);
        snprintf(at, sizeof at, "%s", fpath);
        size_t n = strlen(at);
        if (n && at[n - 1] == '.')
            at[n - 1] = '\0';
        s_err(ctx, kn, at, "an empty key (\"\"): expected one of: %s", keys);
        return -1;
    }
    const char *near = evr_yaml_unknown_key(ctx->doc, vn, type, k, comma, msg, sizeof msg);
    s_err(ctx, kn, fpath, "%s", msg);
    return near ? (int) (evr_rec_field(type, near) - type->fields) : -1;
}

/*  The word for a record in messages: the root is "the pipeline". */
static const char *
s_type_name(const evr_rectype_t *type)
{
    return type == &evr_spec_type ? "pipeline" : type->name;
}

/*  A list field's check, item by item: each item that fails it alone is
    said at its own line and path (the list's check says what is wrong,
    at the list).  False when none does (the list as a whole is wrong). */
static bool
s_check_items(s_ctx_t *ctx, const evr_field_t *f, const evr_strlist_t *l, const char *path)
{
    bool said = false;
    for (uint32_t i = 0; i < l->n; i++) {
        evr_strlist_t one = { &l->v[i], 1 };
        const char *why = f->check(&one);
        if (!why)
            continue;
        char ipath[512];
        s_path(ipath, sizeof ipath, "%s%s%s[%u]", path, *path ? "." : "", f->key, i);
        evr_diag_add(ctx->diag, ipath, "%s", why);
        said = true;
    }
    return said;
}

static bool
s_load_rec(s_ctx_t *ctx, yaml_node_t *node, const evr_rectype_t *type, void *rec,
           const char *path, unsigned depth)
{
    if (!s_depth(ctx, node, path, depth))
        return false;
    if (node->type != YAML_MAPPING_NODE) {
        if (!*path)
            s_err(ctx, node, "", "expected a mapping of the pipeline's keys (pipeline: NAME, "
                  "image: IMAGE, steps: [...]), got %s", s_kind(node));
        else {
            char hint[320];
            evr_yaml_mapping_hint(type, node, hint, sizeof hint);
            s_err(ctx, node, path, "expected a mapping, got %s%s", s_kind(node), hint);
        }
        return false;
    }
    evr_diag_mark(ctx->diag, path, (uint32_t) node->start_mark.line + 1,
                  (uint32_t) node->start_mark.column + 1);
    uint64_t seen = 0, suggested = 0, bad = 0;
    const yaml_node_t *first[64];   /* the key of each field seen */
    evr_ypair_t *pairs;
    size_t n;
    bool ok = evr_yaml_pairs(ctx->doc, node, path, &ctx->budget, ctx->diag, &pairs, &n);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *kn = pairs[i].key, *vn = pairs[i].value;
        if (!s_budget(ctx, kn, path) || !s_budget(ctx, vn, path))
            break;
        const char *k = s_key(ctx, kn, 64, path, type, NULL);
        if (!k) {
            ok = false;
            continue;
        }
        if (type == &evr_spec_type && !*path && *k == '.')
            continue;   /* GitLab's hidden keys: holders of anchors for merge keys */
        char fpath[512];
        s_path(fpath, sizeof fpath, "%s%s%s", path, *path ? "." : "", k);
        const evr_field_t *f = evr_rec_field(type, k);
        if (!f) {
            bool comma = node->data.mapping.style == YAML_FLOW_MAPPING_STYLE && i > 0
                      && s_is_null(vn);
            int near = s_unknown_key(ctx, kn, vn, type, k, fpath, comma);
            if (near >= 0)
                suggested |= 1ull << near;
            ok = false;
            continue;
        }
        size_t idx = (size_t) (f - type->fields);
        if (seen & (1ull << idx)) {
            s_err(ctx, kn, fpath, "duplicate key (first at line %zu)",
                  first[idx]->start_mark.line + 1);
            ok = false;
            continue;
        }
        seen |= 1ull << idx;
        first[idx] = kn;
        /* Errors about a scalar are about its value; about a list or a
           mapping, about the key that introduces it. */
        yaml_node_t *at = vn->type == YAML_SCALAR_NODE && !s_is_null(vn) ? vn : kn;
        evr_diag_mark(ctx->diag, fpath, (uint32_t) at->start_mark.line + 1,
                      (uint32_t) at->start_mark.column + 1);
        if (!s_load_field(ctx, vn, f, rec, fpath, depth)) {
            bad |= 1ull << idx;
            ok = false;
        }
        if (ctx->budget == 0)
            break;
    }
    free(pairs);
    if (ctx->budget == 0)
        return false;
    for (size_t i = 0; i < type->nfields; i++)
        if (type->fields[i].required && !((seen | suggested) & (1ull << i))) {
            char fpath[512];
            s_path(fpath, sizeof fpath, "%s%s%s", path, *path ? "." : "", type->fields[i].key);
            const char *tn = s_type_name(type);
            bool plural = tn[strlen(tn) - 1] == 's';   /* artifacts, limits */
            /* GitLab's retry: {max: 2} retries on any failure, and its
               when: is optional: say what each key takes */
            if (type == &evr_retry_type && !strcmp(type->fields[i].key, "on"))
                s_err(ctx, node, fpath, "missing (a retry needs on:, the outcomes that retry "
                      "the step: failed, timed_out, lost; e.g. on: [failed])");
            else if (type == &evr_retry_type && !strcmp(type->fields[i].key, "max"))
                s_err(ctx, node, fpath, "missing (a retry needs max:, the further attempts "
                      "at most, 0 to 100; e.g. max: 2)");
            else
                s_err(ctx, node, fpath, "missing (%s%s need%s %s:)", plural ? "" : "a ", tn,
                      plural ? "" : "s", type->fields[i].key);
            ok = false;
        }
    /* each field read whole gets its own check, whatever is wrong with
       the others: every problem of the mapping is said at once */
    for (size_t i = 0; i < type->nfields; i++) {
        const evr_field_t *f = &type->fields[i];
        bool whole = (seen & (1ull << i)) && !(bad & (1ull << i));
        const char *why = whole && f->check ? f->check(AT(rec, f)) : NULL;
        if (why && f->type == EVR_FT_STRLIST
            && s_check_items(ctx, f, (const evr_strlist_t *) AT(rec, f), path))
            ok = false;   /* said at each wrong item (triggers[2], on.github.branches[0]) */
        else if (why) {
            char fpath[512];
            s_path(fpath, sizeof fpath, "%s%s%s", path, *path ? "." : "", f->key);
            evr_diag_add(ctx->diag, fpath, "%s", why);
            ok = false;
        }
    }
    if (type->present_off != EVR_NO_PRESENT)
        *(bool *) ((char *) rec + type->present_off) = true;
    return ok;
}

/*  A step's `needs: []` says the pipeline is a DAG (the step starts at
    once, as in GitLab), also when no step needs another: then only the
    spec's `dag` can say so. */
static void
s_needs_written(evr_spec_t *spec, const evr_diag_t *diag)
{
    bool written = false;
    for (uint32_t i = 0; i < spec->steps.n; i++) {
        if (evr_spec_step(spec, i)->needs.n)
            return;   /* a DAG already */
        char mark[40];
        snprintf(mark, sizeof mark, "steps[%u].needs", i);
        written |= evr_diag_marked(diag, mark);
    }
    if (written)
        spec->dag = true;
}

/*  Artifact paths as the runner records their files: `dist/` and
    `./dist` (as GitLab takes them) are `dist` (evr_spec_path_tidy); `.`
    stays, for the check to refuse. */
static void
s_tidy_artifacts(evr_step_t *st)
{
    for (uint32_t k = 0; k < st->artifacts.paths.n; k++) {
        char **path = &st->artifacts.paths.v[k];
        char *tidy = evr_spec_path_problem(*path) ? NULL : evr_spec_path_tidy(*path);
        if (tidy && *tidy) {
            free(*path);
            *path = tidy;
        }
        else
            free(tidy);
    }
}

evr_rc_t
evr_yaml_load(const char *buf, size_t len, evr_spec_t *spec, evr_diag_t *diag)
{
    if (len > EVR_YAML_MAX_BYTES) {
        evr_diag_add_at(diag, 0, 0, "", "file of %zu bytes exceeds the limit of %u bytes", len,
                        EVR_YAML_MAX_BYTES);
        return EVR_ERR_SPEC;
    }
    size_t before = evr_diag_count(diag);
    if (!evr_yaml_precheck(buf, len, diag))
        return EVR_ERR_SPEC;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        evr_diag_add_at(diag, 0, 0, "", "yaml_parser_initialize failed");
        return EVR_ERR_SPEC;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *) buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        evr_yaml_syntax_error(&parser, buf, len, diag);
        yaml_parser_delete(&parser);
        return EVR_ERR_SPEC;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    bool loaded = root && root->type == YAML_MAPPING_NODE;
    if (!root || s_is_null(root))   /* nothing, comments, or a lone "---" */
        evr_diag_add_at(diag, 1, 1, "", "empty file: expected a pipeline (pipeline:, steps:)");
    else {
        s_ctx_t ctx = { &doc, diag, EVR_YAML_MAX_NODES, 0 };
        s_load_rec(&ctx, root, &evr_spec_type, spec, "", 1);
        loaded = loaded && ctx.budget > 0;   /* a cut-off walk leaves a partial spec */
        /* Only one document per file. */
        yaml_document_t next;
        if (!yaml_parser_load(&parser, &next))
            evr_yaml_syntax_error(&parser, buf, len, diag);
        else {
            yaml_node_t *r2 = yaml_document_get_root_node(&next);
            if (r2)
                evr_diag_add_at(diag, (uint32_t) r2->start_mark.line + 1,
                                (uint32_t) r2->start_mark.column + 1, "",
                                "a second YAML document: a pipeline file holds exactly one "
                                "pipeline; put each in a file of its own (registered "
                                "pipelines: one file each in the broker's pipelines_dir)");
            yaml_document_delete(&next);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    /* Cross-field checks run even after field errors, so one pass shows
       everything; the diag keeps one error per field. */
    if (loaded) {
        s_needs_written(spec, diag);
        for (uint32_t i = 0; i < spec->steps.n; i++)
            s_tidy_artifacts(evr_spec_step(spec, i));
        s_tidy_artifacts(&spec->on_error);
    }
    if (loaded && evr_spec_expand(spec, diag) == EVR_OK) {
        evr_spec_validate(spec, diag);
        evr_spec_check_file(spec, diag);
        evr_err_t err;
        if (evr_spec_check_size(spec, &err))
            evr_diag_add_at(diag, 0, 0, "", "%s", err.msg);
    }
    else if (loaded)   /* the rest of the file's errors, all but the steps' names' */
        evr_spec_validate_unexpanded(spec, diag);
    evr_diag_sort(diag);
    return evr_diag_count(diag) > before ? EVR_ERR_SPEC : EVR_OK;
}

evr_rc_t
evr_yaml_load_file(evr_spec_t *spec, evr_diag_t *diag)
{
    const char *file = evr_diag_file(diag);
    if (!*file) {   /* the callers say so first, naming their option */
        evr_diag_add_at(diag, 0, 0, "", "the pipeline file name is empty: give the path of a "
                        ".yml file");
        return EVR_ERR_SPEC;
    }
    FILE *fp = fopen(file, "rb");
    if (!fp) {
        int e = errno;
        evr_diag_add_at(diag, 0, 0, "", "cannot open: %s%s", strerror(e),
                        e == ENOENT && !strcmp(file, "-")
                            ? " (\"-\" is a file name here: for standard input give /dev/stdin)"
                            : "");
        return EVR_ERR_SPEC;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        evr_diag_add_at(diag, 0, 0, "", "is a directory, not a pipeline file: give the "
                        "path of a .yml file");
        fclose(fp);
        return EVR_ERR_SPEC;
    }
    if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode)
        && (uint64_t) st.st_size > EVR_YAML_MAX_BYTES) {
        evr_diag_add_at(diag, 0, 0, "", "file of %llu bytes exceeds the limit of %u bytes "
                        "(1 MiB) for a pipeline file", (unsigned long long) st.st_size,
                        EVR_YAML_MAX_BYTES);
        fclose(fp);
        return EVR_ERR_SPEC;
    }
    char *buf = evr_malloc(EVR_YAML_MAX_BYTES + 1);
    size_t len = fread(buf, 1, EVR_YAML_MAX_BYTES + 1, fp);
    bool failed = ferror(fp);
    fclose(fp);
    evr_rc_t rc;
    if (failed) {
        evr_diag_add_at(diag, 0, 0, "", "cannot read: %s", strerror(errno));
        rc = EVR_ERR_SPEC;
    }
    else if (len > EVR_YAML_MAX_BYTES) {   /* not a regular file: no size known */
        evr_diag_add_at(diag, 0, 0, "", "more than %u bytes (1 MiB), the limit for a pipeline "
                        "file", EVR_YAML_MAX_BYTES);
        rc = EVR_ERR_SPEC;
    }
    else
        rc = evr_yaml_load(buf, len, spec, diag);
    free(buf);
    return rc;
}
