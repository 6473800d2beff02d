/*  evr_config.c: layered configuration; see evr_config.h. */
#include "evr_config.h"

#include "evr_diag.h"
#include "evr_field.h"
#include "evr_yaml.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

typedef struct {
    char *value;
    const char *source;     /* "default", "file", "env", "flag", "derived" */
    size_t line, col;       /* of the value in the file (source "file") */
} s_val_t;

/*  The errors found so far, each once: the file's and the typed getters'
    (which take a const config, hence a list apart). */
typedef struct {
    char **v;
    size_t n;
} s_problems_t;

struct evr_config {
    const evr_config_key_t *keys;
    size_t n;
    s_val_t *vals;
    char *file;
    s_problems_t *problems;
};

static void
s_record(const evr_config_t *self, const char *msg)
{
    s_problems_t *p = self->problems;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->v[i], msg))
            return;
    p->v = evr_realloc(p->v, (p->n + 1) * sizeof *p->v);
    p->v[p->n++] = evr_strdup(msg);
}

/*  EVRUN_ and key upper-cased, into buf. */
static const char *
s_env_name(const char *key, char *buf, size_t size)
{
    size_t k = (size_t) snprintf(buf, size, "EVRUN_");
    for (const char *p = key; *p && k < size - 1; p++)
        buf[k++] = (char) toupper((unsigned char) *p);
    buf[k] = '\0';
    return buf;
}

evr_config_t *
evr_config_new(const evr_config_key_t *keys, size_t n)
{
    evr_config_t *self = evr_calloc(1, sizeof *self);
    self->keys = keys;
    self->n = n;
    self->vals = evr_calloc(n, sizeof *self->vals);
    self->problems = evr_calloc(1, sizeof *self->problems);
    for (size_t i = 0; i < n; i++)
        if (keys[i].def) {
            self->vals[i].value = evr_strdup(keys[i].def);
            self->vals[i].source = "default";
        }
    return self;
}

void
evr_config_destroy(evr_config_t **self_p)
{
    evr_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++)
        free(self->vals[i].value);
    for (size_t i = 0; i < self->problems->n; i++)
        free(self->problems->v[i]);
    free(self->problems->v);
    free(self->problems);
    free(self->vals);
    free(self->file);
    free(self);
    *self_p = NULL;
}

evr_config_t *
evr_config_dup(const evr_config_t *self)
{
    evr_config_t *c = evr_calloc(1, sizeof *c);
    c->keys = self->keys;
    c->n = self->n;
    c->vals = evr_calloc(self->n, sizeof *c->vals);
    c->problems = evr_calloc(1, sizeof *c->problems);
    for (size_t i = 0; i < self->n; i++) {
        c->vals[i].value = self->vals[i].value ? evr_strdup(self->vals[i].value) : NULL;
        c->vals[i].source = self->vals[i].source;
        c->vals[i].line = self->vals[i].line;
        c->vals[i].col = self->vals[i].col;
    }
    c->file = self->file ? evr_strdup(self->file) : NULL;
    return c;
}

static long
s_index(const evr_config_t *self, const char *key)
{
    for (size_t i = 0; i < self->n; i++)
        if (strcmp(self->keys[i].key, key) == 0)
            return (long) i;
    return -1;
}

static void
s_put(evr_config_t *self, size_t i, const char *value, const char *source)
{
    free(self->vals[i].value);
    self->vals[i].value = evr_strdup(value);
    self->vals[i].source = source;
    self->vals[i].line = self->vals[i].col = 0;
}

void
evr_config_set(evr_config_t *self, const char *key, const char *value, const char *source)
{
    long i = s_index(self, key);
    if (i >= 0)
        s_put(self, (size_t) i, value, source);
}

void
evr_config_default(evr_config_t *self, const char *key, const char *value)
{
    long i = s_index(self, key);
    if (i >= 0 && !self->vals[i].value)
        s_put(self, (size_t) i, value, "derived");
}

const char *
evr_config_get(const evr_config_t *self, const char *key)
{
    long i = s_index(self, key);
    return i >= 0 ? self->vals[i].value : NULL;
}

static const char *
s_source(const evr_config_t *self, const char *key)
{
    long i = s_index(self, key);
    return i >= 0 && self->vals[i].source ? self->vals[i].source : "unset";
}

/*  Where key's value came from, for a message: the source, for the
    environment the variable ("env EVRUN_LEASE_MS"), for a file its place
    ("file evrun.yml:3:11"). */
static const char *
s_from(const evr_config_t *self, const char *key, char *buf, size_t size)
{
    const char *src = s_source(self, key);
    long i = s_index(self, key);
    if (!strcmp(src, "file") && self->file && self->vals[i].line) {
        snprintf(buf, size, "file %s:%zu:%zu", self->file, self->vals[i].line,
                 self->vals[i].col);
        return buf;
    }
    if (strcmp(src, "env"))
        return src;
    char name[96];
    snprintf(buf, size, "env %s", s_env_name(key, name, sizeof name));
    return buf;
}

/*  err, recorded among the problems: EVR_ERR_CONFIG. */
static evr_rc_t
s_fail(const evr_config_t *self, evr_err_t *err)
{
    s_record(self, err->msg);
    return EVR_ERR_CONFIG;
}

evr_rc_t
evr_config_problem(const evr_config_t *self, const char *key, evr_err_t *err, const char *fmt,
                   ...)
{
    char msg[EVR_ERR_MAX], from[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *v = evr_config_get(self, key);
    evr_err_set(err, EVR_ERR_CONFIG, "%s = \"%s\" (from %s): %s", key, v ? v : "",
                s_from(self, key, from, sizeof from), msg);
    return s_fail(self, err);
}

const char *
evr_config_source(const evr_config_t *self, const char *key)
{
    return s_source(self, key);
}

const char *
evr_config_from(const evr_config_t *self, const char *key, char *buf, size_t size)
{
    return s_from(self, key, buf, size);
}

evr_rc_t
evr_config_uint(const evr_config_t *self, const char *key, uint64_t min, uint64_t max,
                uint64_t *out, evr_err_t *err)
{
    char from[600];
    const char *v = evr_config_get(self, key);
    char *end;
    errno = 0;
    unsigned long long x = v ? strtoull(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < min || x > max || !isdigit((unsigned char) *v)) {
        evr_err_set(err, EVR_ERR_CONFIG, "%s = \"%s\" (from %s): expected a whole number from "
                    "%llu to %llu", key, v ? v : "", s_from(self, key, from, sizeof from),
                    (unsigned long long) min, (unsigned long long) max);
        return s_fail(self, err);
    }
    *out = x;
    return EVR_OK;
}

evr_rc_t
evr_config_duration(const evr_config_t *self, const char *key, uint64_t min_ms,
                    uint64_t max_ms, uint64_t *out, evr_err_t *err)
{
    char from[600];
    const char *v = evr_config_get(self, key);
    uint64_t ms;
    char max[32], min[32];   /* for a message only */
    bool bad = !v || !evr_duration_parse(v, &ms) || ms > max_ms;
    if (bad || ms < min_ms) {
        evr_duration_format(max_ms, max, sizeof max);
        evr_duration_format(min_ms, min, sizeof min);
    }
    if (bad) {
        if (min_ms)
            evr_err_set(err, EVR_ERR_CONFIG, "%s = \"%s\" (from %s): expected a duration such "
                        "as 12h, 90s or 500ms, from %s to %s", key, v ? v : "",
                        s_from(self, key, from, sizeof from), min, max);
        else
            evr_err_set(err, EVR_ERR_CONFIG, "%s = \"%s\" (from %s): expected a duration such "
                        "as 30d, 12h, 90s or 0 (off), at most %s", key, v ? v : "",
                        s_from(self, key, from, sizeof from), max);
        return s_fail(self, err);
    }
    if (ms < min_ms) {
        evr_err_set(err, EVR_ERR_CONFIG, "%s = \"%s\" (from %s): expected at least %s", key, v,
                    s_from(self, key, from, sizeof from), min);
        return s_fail(self, err);
    }
    *out = ms;
    return EVR_OK;
}

evr_rc_t
evr_config_bool(const evr_config_t *self, const char *key, bool *out, evr_err_t *err)
{
    char from[600];
    const char *v = evr_config_get(self, key);
    *out = false;
    if (!v || !*v || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
        return EVR_OK;
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1")) {
        *out = true;
        return EVR_OK;
    }
    evr_err_set(err, EVR_ERR_CONFIG, "%s = \"%s\" (from %s): expected true or false", key, v,
                s_from(self, key, from, sizeof from));
    return s_fail(self, err);
}

evr_rc_t
evr_config_choice(const evr_config_t *self, const char *key, const char *const *choices,
                  size_t n, size_t *out, evr_err_t *err)
{
    char from[600];
    const char *v = evr_config_get(self, key);
    for (size_t i = 0; v && i < n; i++)
        if (strcmp(v, choices[i]) == 0) {
            *out = i;
            return EVR_OK;
        }
    char list[256] = "";
    for (size_t i = 0, len = 0; i < n && len < sizeof list; i++)
        len += (size_t) snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                                 choices[i]);
    evr_err_set(err, EVR_ERR_CONFIG, "%s = \"%s\" (from %s): expected one of %s", key,
                v ? v : "", s_from(self, key, from, sizeof from), list);
    return s_fail(self, err);
}

void
evr_config_load_env(evr_config_t *self)
{
    for (size_t i = 0; i < self->n; i++) {
        char name[96];
        const char *v = getenv(s_env_name(self->keys[i].key, name, sizeof name));
        if (v)
            s_put(self, i, v, "env");
    }
}

static bool
s_listed(const char *const *also, const char *key)
{
    for (; also && *also; also++)
        if (strcmp(*also, key) == 0)
            return true;
    return false;
}

/*  ": did you mean KEY?" for a near-miss of a setting (into buf), or "". */
static const char *
s_near(const evr_config_t *self, const char *key, const char *const *also, char *buf,
       size_t size)
{
    const char *cands[256];
    size_t n = 0;
    for (size_t i = 0; i < self->n && n < 256; i++)
        cands[n++] = self->keys[i].key;
    for (; also && *also && n < 256; also++)
        cands[n++] = *also;
    const char *near = evr_diag_near(key, cands, n);
    if (!near)
        return "";
    snprintf(buf, size, "; did you mean %s?", near);
    return buf;
}

/*  A problem of the file: recorded, and added to *err, one a line (a
    binary that prints only err says them all too). */
static void s_file_error(const evr_config_t *self, evr_rc_t *rc, evr_err_t *err,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
s_file_error(const evr_config_t *self, evr_rc_t *rc, evr_err_t *err, const char *fmt, ...)
{
    evr_err_t e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    s_record(self, e.msg);
    size_t used = *rc ? strlen(err->msg) : 0;
    if (!*rc)
        evr_err_set(err, EVR_ERR_CONFIG, "%s", e.msg);
    else if (used + 1 + strlen(e.msg) < sizeof err->msg) {   /* whole lines only */
        err->msg[used] = '\n';
        memcpy(err->msg + used + 1, e.msg, strlen(e.msg) + 1);
    }
    *rc = EVR_ERR_CONFIG;
}

/*  One setting key: value from the file (group: the mapping it is in,
    "retention", or NULL). */
static void
s_load_one(evr_config_t *self, const char *path, const yaml_node_t *k, const char *key,
           const char *group, const yaml_node_t *v, const char *const *also, evr_rc_t *rc,
           evr_err_t *err)
{
    long i = s_index(self, key);
    char near[128];
    if (i < 0 && !s_listed(also, key)) {
        const char *n = s_near(self, key, also, near, sizeof near);
        size_t g = group ? strlen(group) + 1 : 0;   /* "max_age", not "retention_max_age" */
        bool in_group = g && !strncmp(n, "; did you mean ", 15) && !strncmp(n + 15, key, g);
        s_file_error(self, rc, err, "%s:%zu:%zu: %s%s%s: unknown setting%s%s", path,
                     k->start_mark.line + 1, k->start_mark.column + 1, group ? group : "",
                     group ? "." : "", key + g, in_group ? "; did you mean " : g ? "" : n,
                     in_group ? n + 15 + g : "");
        return;
    }
    static const char *const lists[] = { "labels", "executors", "secrets_allow",
                                         "http_allowed_hosts", NULL };
    if (v->type != YAML_SCALAR_NODE && !s_listed(evr_config_own, key)) {
        bool list = v->type == YAML_SEQUENCE_NODE && s_listed(lists, key);
        s_file_error(self, rc, err, "%s:%zu:%zu: %s: expected a single value%s%s%s", path,
                     v->start_mark.line + 1, v->start_mark.column + 1, key,
                     list ? ", the items comma-separated (" : "", list ? key : "",
                     list ? ": a,b)" : "");
        return;
    }
    if (i >= 0 && v->type == YAML_SCALAR_NODE) {
        s_put(self, (size_t) i, (const char *) v->data.scalar.value, "file");
        self->vals[i].line = v->start_mark.line + 1;
        self->vals[i].col = v->start_mark.column + 1;
    }
}

/*  Settings that may be written as a mapping: `retention: {max_age: 30d}`
    is the setting retention_max_age (as EVRUN_RETENTION_MAX_AGE and
    --retention-max-age). */
static bool
s_is_group(const char *key)
{
    return strcmp(key, "retention") == 0;
}

static const char *
s_key_name(const yaml_node_t *k)
{
    return k->type == YAML_SCALAR_NODE ? (const char *) k->data.scalar.value : "";
}

/*  The line of the file's first setting `key` (flat: retention_max_age
    for `retention: {max_age: ...}` too) when it comes before the key
    node k; 0 when k is the first.  Whichever value won, a setting
    written twice (an edit appended below the old line, two files
    pasted together) is a mistake to point at, not to guess. */
static size_t
s_earlier(yaml_document_t *doc, const yaml_node_t *root, const char *key, const yaml_node_t *k)
{
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *pk = yaml_document_get_node(doc, p->key);
        yaml_node_t *pv = yaml_document_get_node(doc, p->value);
        const char *name = s_key_name(pk);
        if (pv->type != YAML_MAPPING_NODE || !s_is_group(name)) {
            if (pk == k)
                return 0;
            if (!strcmp(name, key))
                return pk->start_mark.line + 1;
            continue;
        }
        size_t g = strlen(name);
        for (yaml_node_pair_t *q = pv->data.mapping.pairs.start;
             q < pv->data.mapping.pairs.top; q++) {
            yaml_node_t *qk = yaml_document_get_node(doc, q->key);
            if (qk == k)
                return 0;
            if (!strncmp(key, name, g) && key[g] == '_' && !strcmp(key + g + 1, s_key_name(qk)))
                return qk->start_mark.line + 1;
        }
    }
    return 0;
}

/*  False (said) when the setting key at k was written before. */
static bool
s_once(evr_config_t *self, const char *path, yaml_document_t *doc, const yaml_node_t *root,
       const char *key, const char *group, const yaml_node_t *k, evr_rc_t *rc, evr_err_t *err)
{
    size_t first = s_earlier(doc, root, key, k);
    if (!first)
        return true;
    size_t g = group ? strlen(group) + 1 : 0;
    s_file_error(self, rc, err, "%s:%zu:%zu: %s%s%s: duplicate key (first at line %zu)", path,
                 k->start_mark.line + 1, k->start_mark.column + 1, group ? group : "",
                 group ? "." : "", key + g, first);
    return false;
}

/*  False (said) when the group at pair p (`retention:`) was written
    before: two mappings of one key. */
static bool
s_group_once(evr_config_t *self, const char *path, yaml_document_t *doc,
             const yaml_node_t *root, const yaml_node_pair_t *p, evr_rc_t *rc, evr_err_t *err)
{
    const yaml_node_t *k = yaml_document_get_node(doc, p->key);
    for (const yaml_node_pair_t *q = root->data.mapping.pairs.start; q < p; q++) {
        const yaml_node_t *qk = yaml_document_get_node(doc, q->key);
        if (!strcmp(s_key_name(qk), s_key_name(k))) {
            s_file_error(self, rc, err, "%s:%zu:%zu: %s: duplicate key (first at line %zu)",
                         path, k->start_mark.line + 1, k->start_mark.column + 1,
                         s_key_name(k), qk->start_mark.line + 1);
            return false;
        }
    }
    return true;
}

static void
s_load_group(evr_config_t *self, const char *path, yaml_document_t *doc,
             const yaml_node_t *root, const char *group, const yaml_node_t *map,
             const char *const *also, evr_rc_t *rc, evr_err_t *err)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        char key[128];
        snprintf(key, sizeof key, "%s_%s", group, s_key_name(k));
        if (s_once(self, path, doc, root, key, group, k, rc, err))
            s_load_one(self, path, k, key, group, v, also, rc, err);
    }
}

/*  Every setting of the file; each problem is recorded (all are said at
    once), the first also in *err. */
static evr_rc_t
s_load_doc(evr_config_t *self, const char *path, yaml_document_t *doc, const char *const *also,
           evr_err_t *err)
{
    evr_rc_t rc = EVR_OK;
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (!root)
        return EVR_OK;   /* an empty file */
    if (root->type != YAML_MAPPING_NODE) {
        s_file_error(self, &rc, err, "%s:%zu:%zu: expected a mapping of settings (key: value)",
                     path, root->start_mark.line + 1, root->start_mark.column + 1);
        return rc;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        const char *key = s_key_name(k);
        if (v->type == YAML_MAPPING_NODE && s_is_group(key)) {
            if (s_group_once(self, path, doc, root, p, &rc, err))
                s_load_group(self, path, doc, root, key, v, also, &rc, err);
        }
        else if (s_once(self, path, doc, root, key, NULL, k, &rc, err))
            s_load_one(self, path, k, key, NULL, v, also, &rc, err);
    }
    return rc;
}

evr_rc_t
evr_config_load_file(evr_config_t *self, const char *path, const char *const *also,
                     evr_err_t *err)
{
    evr_rc_t rc = EVR_OK;
    if (!*path) {   /* --config "" (a variable left unset): else ": No such file" */
        s_file_error(self, &rc, err, "--config \"\": expected a settings file (leave --config "
                     "out for the default)");
        return rc;
    }
    FILE *fp = fopen(path, "rb");
    struct stat st;
    if (!fp) {
        s_file_error(self, &rc, err, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {   /* fopen takes one */
        s_file_error(self, &rc, err, "%s: is a directory, not a settings file", path);
        fclose(fp);
        return rc;
    }
    free(self->file);
    self->file = evr_strdup(path);
    /* the whole file, for evr_yaml_precheck as a pipeline file has it
       (syntax, tags, nesting and size at once), then for libyaml */
    size_t n = 0, got;
    char *text = evr_malloc(EVR_CONFIG_FILE_MAX + 1);
    while (n <= EVR_CONFIG_FILE_MAX && (got = fread(text + n, 1, EVR_CONFIG_FILE_MAX + 1 - n, fp)) > 0)
        n += got;
    evr_diag_t *diag = evr_diag_new(path);
    if (ferror(fp))
        s_file_error(self, &rc, err, "%s: %s", path, strerror(errno));
    else if (n > EVR_CONFIG_FILE_MAX)
        s_file_error(self, &rc, err, "%s: larger than %u bytes (1 MiB), the limit for a "
                     "settings file", path, EVR_CONFIG_FILE_MAX);
    else if (!evr_yaml_precheck(text, n, diag)) {
        for (size_t i = 0; evr_diag_get(diag, i); i++)
            s_file_error(self, &rc, err, "%s", evr_diag_get(diag, i));
    }
    else {
        yaml_parser_t parser;
        yaml_document_t doc;
        yaml_parser_initialize(&parser);
        yaml_parser_set_input_string(&parser, (const unsigned char *) text, n);
        if (!yaml_parser_load(&parser, &doc)) {
            char msg[1024];
            evr_yaml_syntax_text(&parser, text, n, msg, sizeof msg);
            s_file_error(self, &rc, err, "%s:%s", path, msg);
        }
        else {
            rc = s_load_doc(self, path, &doc, also, err);
            yaml_document_delete(&doc);
            /* one document: the settings after a "---" (hooks too) were
               dropped in silence */
            yaml_document_t next;
            if (!yaml_parser_load(&parser, &next)) {
                char msg[1024];
                evr_yaml_syntax_text(&parser, text, n, msg, sizeof msg);
                s_file_error(self, &rc, err, "%s:%s", path, msg);
            }
            else {
                const yaml_node_t *r2 = yaml_document_get_root_node(&next);
                if (r2)
                    s_file_error(self, &rc, err, "%s:%zu:%zu: a second YAML document: a settings "
                                 "file holds one mapping of settings (key: value); put them all "
                                 "in it, with no \"---\" between them", path,
                                 r2->start_mark.line + 1, r2->start_mark.column + 1);
                yaml_document_delete(&next);
            }
        }
        yaml_parser_delete(&parser);
    }
    evr_diag_destroy(&diag);
    free(text);
    fclose(fp);
    return rc;
}

void
evr_config_note(const evr_config_t *self, const char *msg)
{
    for (const char *p = msg; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t) (nl - p) : strlen(p);
        char *line = evr_strndup(p, n);
        if (*line)
            s_record(self, line);
        free(line);
        p += n + (nl ? 1 : 0);
    }
}

evr_rc_t
evr_config_retention(const evr_config_t *self, evr_config_retention_t *out, evr_err_t *err)
{
    uint64_t year = 3650ull * 86400000ull, keep = 0, every = 0;
    memset(out, 0, sizeof *out);
    bool bad = evr_config_duration(self, "retention_max_age", 0, year, &out->max_age_ms, err)
            != EVR_OK;
    bad = evr_config_uint(self, "retention_keep_per_pipeline", 0, 10000000, &keep, err)
       != EVR_OK || bad;
    bad = evr_config_duration(self, "retention_output_max_age", 0, year,
                              &out->output_max_age_ms, err) != EVR_OK || bad;
    bad = evr_config_duration(self, "retention_interval", 100, 86400000, &every, err) != EVR_OK
       || bad;
    out->keep_per_pipeline = (uint32_t) keep;
    out->interval_ms = (uint32_t) every;
    return bad ? EVR_ERR_CONFIG : EVR_OK;
}

bool
evr_config_report(const evr_config_t *self, const char *prog, FILE *out)
{
    for (size_t i = 0; i < self->problems->n; i++)
        fprintf(out, "%s: %s\n", prog, self->problems->v[i]);
    return self->problems->n > 0;
}

void
evr_config_print(const evr_config_t *self, FILE *out)
{
    for (size_t i = 0; i < self->n; i++) {
        const char *v = self->vals[i].value ? self->vals[i].value : "";
        int pad = 44 - (int) (strlen(self->keys[i].key) + strlen(v));
        fprintf(out, "%s: %s%*s# %s (%s)\n", self->keys[i].key, v, pad > 1 ? pad : 1, "",
                self->keys[i].help, self->vals[i].source ? self->vals[i].source : "unset");
    }
}

const char *const evr_config_known[] = {
    "state_dir",
    "local",
    "client_endpoint",
    "runner_endpoint",
    "events_endpoint",
    "heartbeat_ms",
    "lease_ms",
    "queue_limit",
    "reclaim_ms",
    "forget_ms",
    "curve_dir",
    "runner_cert",
    "client_cert",
    "broker_key",
    "sync",
    "runner_id",
    "labels",
    "capacity",
    "podman_url",
    "secrets_dir",
    "secrets_allow",
    "artifact_max_bytes",
    "resource_max_bytes",
    "artifact_job_max_bytes",
    "cache_max_bytes",
    "git_cache_max_bytes",
    "resource_redirects",
    "resource_local",
    "host_network",
    "triggers_any",
    "grace",
    "executors",
    "parallel",
    "timeout_ms",
    "log_level",
    "http_listen",
    "tls_cert",
    "tls_key",
    "metrics_token",
    "webhook_secret_file",
    "hooks",
    "ui_dir",
    "retention_max_age",
    "retention_keep_per_pipeline",
    "retention_output_max_age",
    "retention_interval",
    "http_allowed_hosts",
    "http_max_connections",
    "http_max_per_ip",
    "http_idle_timeout",
    "http_request_timeout",
    NULL,
};

const char *const evr_config_own[] = { "hooks", NULL };

void
evr_config_endpoints(evr_config_t *self, bool local)
{
    static const char *const keys[3] = { "client_endpoint", "runner_endpoint",
                                         "events_endpoint" };
    static const char *const files[3] = { "clients", "runners", "events" };
    const char *state = evr_config_get(self, "state_dir");
    for (int i = 0; i < 3; i++) {
        char *v = local ? evr_asprintf("ipc://%s/bus/%s", state ? state : ".", files[i])
                        : evr_asprintf("tcp://127.0.0.1:%d", 7700 + i);
        evr_config_default(self, keys[i], v);
        free(v);
    }
}

size_t
evr_config_flag(const char **flags, size_t nflags, size_t max, const char *key,
                const char *val)
{
    for (size_t i = 0; i < nflags; i++)
        if (!strcmp(flags[2 * i], key)) {
            flags[2 * i + 1] = val;
            return nflags;
        }
    (void) max;   /* with NDEBUG */
    assert(nflags < max);
    flags[2 * nflags] = key;
    flags[2 * nflags + 1] = val;
    return nflags + 1;
}

size_t
evr_config_list_empty(const char *list)
{
    if (!list || !list[strspn(list, " ")])
        return 0;
    size_t item = 1;
    for (const char *p = list;; item++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t) (comma - p) : strlen(p);
        size_t blank = strspn(p, " ");
        if (blank >= len)
            return item;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/*  The comma-separated settings (labels, executors, secrets_allow,
    http_allowed_hosts): an item left empty ("a,,b", a variable unset in
    "a,$X") is refused, not dropped, so that no label or executor is lost
    in silence. */
static evr_rc_t
s_check_lists(const evr_config_t *self, evr_err_t *err)
{
    static const char *const lists[] = { "labels", "executors", "secrets_allow",
                                         "http_allowed_hosts" };
    evr_rc_t rc = EVR_OK;
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        const char *v = evr_config_get(self, lists[l]);
        size_t at = evr_config_list_empty(v);
        evr_err_t e;
        if (at && evr_config_problem(self, lists[l], &e, "item %zu of the comma-separated list "
                                     "is empty (a comma too many?): give each item, as in "
                                     "a,b", at) && !rc) {
            *err = e;
            rc = EVR_ERR_CONFIG;
        }
    }
    return rc;
}

evr_rc_t
evr_config_layer(evr_config_t *self, const char *file, const char *const *flags, size_t nflags,
                 evr_err_t *err)
{
    char *path = file ? evr_strdup(file) : evr_config_default_file();
    evr_rc_t rc = path ? evr_config_load_file(self, path, evr_config_known, err) : EVR_OK;
    free(path);
    const char *envfile = getenv("EVRUN_CONFIG");
    if (!file && envfile && !*envfile)   /* EVRUN_CONFIG=$F with F unset: not the default */
        s_file_error(self, &rc, err, "EVRUN_CONFIG is set but empty: expected a settings file "
                     "(unset it for the default)");
    /* on with the other layers after a bad file: the values' checks that
       follow can then say their errors with the file's (evr_config_report) */
    evr_config_load_env(self);
    for (size_t i = 0; i < nflags; i++)
        evr_config_set(self, flags[2 * i], flags[2 * i + 1], "flag");
    char *state = evr_config_state_dir();
    evr_config_default(self, "state_dir", state);
    free(state);
    /* a relative state_dir is taken from the directory the process started
       in, once: every path made from it (units, sockets) stays right after
       a chdir and in the children it is handed to */
    /* a directory given empty (--state-dir "$DIR" with DIR unset): every
       path made from it would start at / (STATE/gateway/jwt.secret was
       /gateway/jwt.secret, curve_dir's broker.cert /broker.cert) */
    static const char *const dirs[] = { "state_dir", "curve_dir", "pipelines_dir",
                                        "secrets_dir" };
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        const char *dv = evr_config_get(self, dirs[d]);
        evr_err_t e;
        if (dv && !*dv && evr_config_problem(self, dirs[d], &e, "expected a directory (empty, "
                                             "every path made from it would start at /)")
            && !rc) {
            *err = e;
            rc = EVR_ERR_CONFIG;
        }
    }
    /* a file or the UI's directory given empty: said as such, not as
       "tls_cert = : No such file" or a UI served from nowhere */
    static const char *const files[] = { "tls_cert", "tls_key", "client_cert", "runner_cert",
                                         "registry_auth", "ui_dir" };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        const char *fv = evr_config_get(self, files[f]);
        evr_err_t e;
        if (fv && !*fv && evr_config_problem(self, files[f], &e, "expected a %s (empty: give "
                                             "its path, or leave it out)", strcmp(files[f],
                                             "ui_dir") ? "file" : "directory")
            && !rc) {
            *err = e;
            rc = EVR_ERR_CONFIG;
        }
    }
    evr_err_t e;
    if (s_check_lists(self, &e) && !rc) {
        *err = e;
        rc = EVR_ERR_CONFIG;
    }
    long i = s_index(self, "state_dir");
    const char *v = i >= 0 ? self->vals[i].value : NULL;
    char cwd[4096];
    if (v && *v && *v != '/' && getcwd(cwd, sizeof cwd)) {
        char *abs = evr_asprintf("%s/%s", cwd, v);
        s_put(self, (size_t) i, abs, self->vals[i].source);
        free(abs);
    }
    return rc;
}

/*  Whether the pid in the broker's lock file of state_dir is a live
    evrun-broker (read only: the lock itself is never touched here). */
static bool
s_broker_alive(const char *state_dir)
{
    char *p = evr_asprintf("%s/broker/evrun.lock", state_dir);
    FILE *f = fopen(p, "re");
    free(p);
    long pid = 0;
    if (!f)
        return false;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    if (pid <= 0)
        return false;
    char comm[64] = "", path[64];
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    f = fopen(path, "re");
    if (!f)
        return false;
    if (!fgets(comm, sizeof comm, f))
        comm[0] = '\0';
    fclose(f);
    if (strcmp(comm, "evrun-broker\n") != 0)
        return false;
    /* killed and not reaped yet (a zombie, state Z): gone all the same */
    char stat[512] = "";
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "re");
    size_t n = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
    if (f)
        fclose(f);
    stat[n] = '\0';
    const char *paren = strrchr(stat, ')');
    return !paren || (paren[1] != ' ' || (paren[2] != 'Z' && paren[2] != 'X'));
}

/*  Whether the unix socket path takes a connection: false when nothing
    listens there (ECONNREFUSED: the socket of a broker that exited, or
    was killed, and left it); true too when it cannot be asked. */
static bool
s_socket_listens(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path)
        return true;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true;
    bool up = connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0
           || (errno != ECONNREFUSED && errno != ENOENT);
    close(fd);
    return up;
}

bool
evr_config_local_up(const char *state_dir)
{
    char *p = evr_asprintf("%s/bus/clients", state_dir);
    char *bus = evr_asprintf("%s/bus", state_dir);
    /* a local broker that runs (its socket bound or not yet: a restart
       replaces the socket a killed one left), or a socket someone listens
       on; a socket left behind by a broker that is gone is none */
    bool up = (access(bus, F_OK) == 0 && s_broker_alive(state_dir))
           || (access(p, F_OK) == 0 && s_socket_listens(p));
    free(bus);
    free(p);
    return up;
}

char *
evr_config_default_file(void)
{
    const char *v = getenv("EVRUN_CONFIG");
    if (v && *v)
        return evr_strdup(v);
    if (v)   /* set but empty: no file (evr_config_layer says so) */
        return NULL;
    const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char *p = x && *x ? evr_asprintf("%s/evrun/evrun.yml", x)
                      : evr_asprintf("%s/.config/evrun/evrun.yml", home ? home : "/");
    if (access(p, F_OK) == 0)
        return p;
    free(p);
    return NULL;
}

char *
evr_config_state_dir(void)
{
    const char *v = getenv("EVRUN_STATE_DIR");
    if (v && *v)
        return evr_strdup(v);
    v = getenv("XDG_STATE_HOME");
    if (v && *v)
        return evr_asprintf("%s/evrun", v);
    v = getenv("HOME");
    return evr_asprintf("%s/.local/state/evrun", v ? v : "/tmp");
}
