/*  evr_yaml_merge.c: YAML 1.1 merge keys (`<<: *defaults`), resolved as
    the pipeline loader walks a mapping.

    libyaml's loader turns an alias into a reference to the anchored node,
    so a merge is a walk of other mappings of the same document.  Keys
    already taken are kept in a small open-addressing set (a mapping may
    have thousands of keys, and merges could otherwise cost their square);
    the walk is bounded by the loader's node budget, which each merged pair
    and each item of a list of merges visited costs, and by its nesting depth (an anchored mapping can merge
    itself: libyaml registers an anchor before the node's children).
*/
#include "evr_yaml_merge.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_yaml.h"

typedef struct {
    yaml_document_t *doc;
    const char *path;
    size_t *budget;
    evr_diag_t *diag;
    evr_ypair_t *v;
    size_t n, cap;
    yaml_node_t **set;      /* key nodes taken, by their value's hash */
    size_t set_cap;         /* a power of two, at least twice the keys */
    bool ok;
} s_merge_t;

/*  Whether node is a plain `<<` scalar, the merge key. */
static bool
s_is_merge(const yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
        && node->data.scalar.length == 2 && !memcmp(node->data.scalar.value, "<<", 2);
}

static uint64_t
s_hash(const yaml_node_t *k)
{
    uint64_t h = 14695981039346656037ull;   /* FNV-1a */
    for (size_t i = 0; i < k->data.scalar.length; i++)
        h = (h ^ k->data.scalar.value[i]) * 1099511628211ull;
    return h;
}

static bool
s_same(const yaml_node_t *a, const yaml_node_t *b)
{
    return a->data.scalar.length == b->data.scalar.length
        && !memcmp(a->data.scalar.value, b->data.scalar.value, a->data.scalar.length);
}

/*  Looks key k up in the set; adds it when add.  Returns whether it was
    there.  Keys that are not scalars are never equal to anything (the
    loader reports them). */
static bool
s_taken(s_merge_t *m, yaml_node_t *k, bool add)
{
    if (k->type != YAML_SCALAR_NODE)
        return false;
    if (add && (m->n + 1) * 2 > m->set_cap) {
        size_t cap = m->set_cap ? m->set_cap * 2 : 32;
        while (cap < (m->n + 1) * 2)
            cap *= 2;
        yaml_node_t **set = evr_calloc(cap, sizeof *set);
        for (size_t i = 0; i < m->set_cap; i++)
            if (m->set[i]) {
                size_t j = (size_t) s_hash(m->set[i]) & (cap - 1);
                while (set[j])
                    j = (j + 1) & (cap - 1);
                set[j] = m->set[i];
            }
        free(m->set);
        m->set = set;
        m->set_cap = cap;
    }
    if (!m->set_cap)
        return false;
    size_t j = (size_t) s_hash(k) & (m->set_cap - 1);
    for (; m->set[j]; j = (j + 1) & (m->set_cap - 1))
        if (s_same(m->set[j], k))
            return true;
    if (add)
        m->set[j] = k;
    return false;
}

static void
s_push(s_merge_t *m, yaml_node_t *k, yaml_node_t *v)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->v = evr_realloc(m->v, m->cap * sizeof *m->v);
    }
    m->v[m->n++] = (evr_ypair_t) { k, v };
}

static void
s_err(s_merge_t *m, const yaml_node_t *at, const char *msg, const char *kind)
{
    char p[600];
    snprintf(p, sizeof p, "%s%s<<", m->path, *m->path ? "." : "");
    evr_diag_add_at(m->diag, (uint32_t) at->start_mark.line + 1,
                    (uint32_t) at->start_mark.column + 1, p, "%s%s%s", msg, kind ? ", got " : "",
                    kind ? kind : "");
    m->ok = false;
}

/*  What node is, for "got ...": nothing (no value, ~, null), a list, or
    a scalar; a plain word (`<<: defaults`) is said with the alias it
    may mean (buf holds it). */
static const char *
s_kind(const yaml_node_t *node, char *buf, size_t size)
{
    if (node->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (node->type != YAML_SCALAR_NODE)
        return "nothing";
    const char *v = (const char *) node->data.scalar.value;
    size_t n = node->data.scalar.length;
    bool plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (plain && (!n || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null")
                  || !strcmp(v, "NULL")))
        return "nothing";
    if (plain && n <= 64 && strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", *v)
        && strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n) {
        snprintf(buf, size, "the scalar \"%s\" (an alias starts with *: <<: *%s)", v, v);
        return buf;
    }
    return "a scalar";
}

static void s_merge_value(s_merge_t *m, yaml_node_t *v, unsigned depth);

/*  Takes one node of the budget for at; false (said) when none is left. */
static bool
s_spend(s_merge_t *m, const yaml_node_t *at)
{
    if (--*m->budget > 0)
        return true;
    evr_diag_add_at(m->diag, (uint32_t) at->start_mark.line + 1,
                    (uint32_t) at->start_mark.column + 1, m->path,
                    "document too large: more than %u nodes (aliases count each time they are "
                    "used)", EVR_YAML_MAX_NODES);
    m->ok = false;
    return false;
}

/*  Adds the pairs of merged mapping src whose keys are not taken, then
    those of src's own merges. */
static void
s_merge_map(s_merge_t *m, yaml_node_t *src, unsigned depth)
{
    if (depth > EVR_YAML_MAX_DEPTH) {
        s_err(m, src, "merges nested deeper than 16 levels (does a mapping merge itself?)",
              NULL);
        return;
    }
    yaml_node_pair_t *pr = src->data.mapping.pairs.start;
    size_t np = (size_t) (src->data.mapping.pairs.top - pr);
    evr_yaml_work_add(1);
    for (size_t pass = 0; pass < 2; pass++)   /* its own keys first, then its merges */
        for (size_t i = 0; i < np && *m->budget; i++) {
            evr_yaml_work_add(1);
            yaml_node_t *k = yaml_document_get_node(m->doc, pr[i].key);
            yaml_node_t *v = yaml_document_get_node(m->doc, pr[i].value);
            if (!k || !v || s_is_merge(k) != (pass == 1))
                continue;
            if (!s_spend(m, k))
                return;
            if (pass == 1)
                s_merge_value(m, v, depth + 1);
            else if (!s_taken(m, k, true))
                s_push(m, k, v);
        }
}

/*  The value of a `<<`: a mapping (an alias of one), or a list of them. */
static void
s_merge_value(s_merge_t *m, yaml_node_t *v, unsigned depth)
{
    if (v->type == YAML_MAPPING_NODE) {
        s_merge_map(m, v, depth);
        return;
    }
    if (v->type != YAML_SEQUENCE_NODE) {
        char kind[160];
        s_err(m, v, "expected a mapping to merge (e.g. <<: *defaults, the alias of an "
              "anchored mapping) or a list of them", s_kind(v, kind, sizeof kind));
        return;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start;
         it < v->data.sequence.items.top && *m->budget; it++) {
        evr_yaml_work_add(1);
        yaml_node_t *item = yaml_document_get_node(m->doc, *it);
        /* each item a node of the budget: an item that is no mapping is
           an error, and aliases of such lists would say it millions of
           times */
        if (item && !s_spend(m, item))
            return;
        if (item && item->type == YAML_MAPPING_NODE)
            s_merge_map(m, item, depth);
        else if (item) {
            char kind[160];
            s_err(m, item, "expected a list of mappings to merge (e.g. <<: [*a, *b], aliases "
                  "of anchored mappings)", s_kind(item, kind, sizeof kind));
        }
    }
}

bool
evr_yaml_pairs(yaml_document_t *doc, yaml_node_t *map, const char *path, size_t *budget,
               evr_diag_t *diag, evr_ypair_t **pairs, size_t *n)
{
    s_merge_t m = { .doc = doc, .path = path, .budget = budget, .diag = diag, .ok = true };
    yaml_node_pair_t *pr = map->data.mapping.pairs.start;
    size_t np = (size_t) (map->data.mapping.pairs.top - pr);
    bool merges = false;
    for (size_t i = 0; i < np; i++) {
        yaml_node_t *k = yaml_document_get_node(doc, pr[i].key);
        yaml_node_t *v = yaml_document_get_node(doc, pr[i].value);
        if (s_is_merge(k))
            merges = true;
        else
            s_push(&m, k, v);
    }
    if (merges) {
        size_t written = m.n;
        for (size_t i = 0; i < m.n; i++)
            (void) s_taken(&m, m.v[i].key, true);
        /* each merge's pairs go where its << is written: in a matrix the
           order of the keys names the combinations (README "Matrix
           steps"); which value wins does not depend on it */
        size_t *at = evr_calloc(np + 1, sizeof *at);     /* written pairs before merge i */
        size_t *end = evr_calloc(np + 1, sizeof *end);   /* m.n after merge i */
        size_t before = 0;
        for (size_t i = 0; i < np && *budget; i++) {
            yaml_node_t *k = yaml_document_get_node(doc, pr[i].key);
            at[i] = before;
            if (s_is_merge(k))
                s_merge_value(&m, yaml_document_get_node(doc, pr[i].value), 1);
            else
                before++;
            end[i] = m.n;
        }
        evr_ypair_t *v = evr_calloc(m.n + 1, sizeof *v);
        size_t out = 0, w = 0, from = written;
        for (size_t i = 0; i < np; i++) {
            yaml_node_t *k = yaml_document_get_node(doc, pr[i].key);
            if (!s_is_merge(k))
                continue;
            for (; w < at[i] && w < written; w++)
                v[out++] = m.v[w];
            for (; from < end[i] && from < m.n; from++)
                v[out++] = m.v[from];
        }
        for (; w < written; w++)
            v[out++] = m.v[w];
        for (; from < m.n; from++)
            v[out++] = m.v[from];
        free(m.v);
        m.v = v;
        free(at);
        free(end);
    }
    free(m.set);
    *pairs = m.v;
    *n = m.n;
    return m.ok;
}
