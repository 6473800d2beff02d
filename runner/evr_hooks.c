/*  evr_hooks.c: the `hooks:` list of the runner's settings file, checked
    and sorted; a hook's answer read.

    The settings file is a YAML mapping; sys/evr_config.c takes its flat
    keys and lets `hooks` through (its value is a list).  This reads the
    same file again with libyaml and takes that list alone, so neither
    parser knows the other's keys.  Running a hook: evr_hook_run.c.
*/
#include "evr_hooks.h"

#include "evr_config.h"
#include "evr_diag.h"
#include "evr_spec.h"
#include "evr_yaml.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static const char *const s_phases[EVR_HOOK_NPHASES] = {
    "PRE_VALIDATION", "POST_VALIDATION", "PRE_SOURCE_PREP", "POST_SOURCE_PREP",
    "PRE_EXECUTION", "POST_EXECUTION", "ON_ERROR", "CLEANUP",
};

const char *
evr_hook_phase_name(evr_hook_phase_t p)
{
    return (unsigned) p < EVR_HOOK_NPHASES ? s_phases[p] : "?";
}

bool
evr_hook_phase_parse(const char *s, evr_hook_phase_t *out)
{
    for (int i = 0; i < EVR_HOOK_NPHASES; i++)
        if (!strcmp(s, s_phases[i])) {
            *out = (evr_hook_phase_t) i;
            return true;
        }
    return false;
}

bool
evr_hook_phase_pre(evr_hook_phase_t p)
{
    return p == EVR_HOOK_PRE_VALIDATION || p == EVR_HOOK_PRE_SOURCE_PREP
           || p == EVR_HOOK_PRE_EXECUTION;
}

void
evr_hooks_destroy(evr_hooks_t **self_p)
{
    evr_hooks_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++) {
        free(self->v[i].name);
        free(self->v[i].run);
    }
    free(self->v);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- reading */

typedef struct {
    const char *file;
    yaml_document_t *doc;
    evr_err_t *err;     /* every problem, one a line (s_bad) */
    size_t nbad;        /* problems found */
    bool full;          /* err->msg holds no more: the rest counted */
} s_rd_t;

#define S_MORE_ROOM 96  /* bytes of err->msg kept for "FILE: hooks: and N more problems" */

/*  Adds "FILE:LINE:COL: hooks[I].FIELD: what" to the problems: each on a
    line of rd->err, as many as fit (the rest counted at the end,
    s_problems).  Returns EVR_ERR_CONFIG. */
static evr_rc_t
s_bad(s_rd_t *rd, const yaml_node_t *at, size_t i, const char *field, const char *what)
{
    char line[EVR_ERR_MAX];
    snprintf(line, sizeof line, "%s:%zu:%zu: hooks[%zu]%s%s: %s", rd->file,
             at->start_mark.line + 1, at->start_mark.column + 1, i, *field ? "." : "", field,
             what);
    size_t have = rd->nbad ? strlen(rd->err->msg) : 0, add = strlen(line);
    if (!rd->nbad)
        snprintf(rd->err->msg, sizeof rd->err->msg, "%s", line);
    else if (!rd->full && have + 1 + add < sizeof rd->err->msg - S_MORE_ROOM) {
        rd->err->msg[have] = '\n';
        memcpy(rd->err->msg + have + 1, line, add + 1);   /* fits: checked above */
    }
    else
        rd->full = true;    /* this one and those after: counted */
    rd->nbad++;
    return EVR_ERR_CONFIG;
}

/*  Ends the problems' text: "... and N more" when some did not fit. */
static void
s_problems(s_rd_t *rd)
{
    size_t lines = 1;
    for (const char *c = rd->err->msg; *c; c++)
        lines += *c == '\n';
    if (rd->nbad > lines) {
        size_t have = strlen(rd->err->msg);
        char more[S_MORE_ROOM];     /* a long file name cut: the count stays said */
        int w = snprintf(more, sizeof more, "\n%s: hooks: and %zu more problems", rd->file,
                         rd->nbad - lines);
        if (w < 0 || (size_t) w >= sizeof more)
            snprintf(more, sizeof more, "\nhooks: and %zu more problems", rd->nbad - lines);
        size_t m = strlen(more);
        if (have + m < sizeof rd->err->msg)
            memcpy(rd->err->msg + have, more, m + 1);
    }
}

static const char *
s_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *) n->data.scalar.value : NULL;
}

/*  An integer in [min, max] of text, into *out. */
static bool
s_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
    if (!text || !*text)
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/*  A name: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64 bytes (as pipelines'). */
static bool
s_name_ok(const char *s)
{
    return evr_spec_name_ok(s);
}

/*  One field of hook i (node at, key k, value v) into h. */
static evr_rc_t
s_field(s_rd_t *rd, size_t i, const yaml_node_t *k, const yaml_node_t *v, evr_hook_t *h,
        unsigned *seen)
{
    const char *key = s_scalar(k) ? s_scalar(k) : "";
    const char *val = s_scalar(v);
    /* a field given, right or wrong, is not also said to be missing */
    *seen |= !strcmp(key, "phase") ? 1u : !strcmp(key, "run") ? 2u : 0u;
    if (!val)
        return s_bad(rd, v, i, key, "expected a single value");
    int64_t n;
    if (!strcmp(key, "phase")) {
        if (!evr_hook_phase_parse(val, &h->phase)) {
            const char *near = evr_diag_near(val, s_phases, EVR_HOOK_NPHASES);
            char what[400];
            snprintf(what, sizeof what, "unknown phase: expected one of PRE_VALIDATION, "
                     "POST_VALIDATION, PRE_SOURCE_PREP, POST_SOURCE_PREP, PRE_EXECUTION, "
                     "POST_EXECUTION, ON_ERROR, CLEANUP (upper case), got \"%.64s\"%s%s%s", val,
                     near ? "; did you mean " : "", near ? near : "", near ? "?" : "");
            return s_bad(rd, v, i, key, what);
        }
    }
    else if (!strcmp(key, "run")) {
        if (!*val || strlen(val) > EVR_HOOK_RUN_MAX || memchr(val, '\0', v->data.scalar.length)
            != NULL)
            return s_bad(rd, v, i, key, "expected a command for /bin/sh -c (1 to 4096 bytes)");
        free(h->run);
        h->run = evr_strdup(val);
    }
    else if (!strcmp(key, "name")) {
        if (!s_name_ok(val))
            return s_bad(rd, v, i, key, "expected letters, digits, _ . - (at most 64, "
                         "starting with a letter or digit)");
        free(h->name);
        h->name = evr_strdup(val);
        h->name_line = (uint32_t) v->start_mark.line + 1;
        h->name_col = (uint32_t) v->start_mark.column + 1;
    }
    else if (!strcmp(key, "priority")) {
        if (!s_int(val, -1000000, 1000000, &n))
            return s_bad(rd, v, i, key, "expected an integer from -1000000 to 1000000 "
                         "(lower runs first)");
        h->priority = n;
    }
    else if (!strcmp(key, "timeout")) {
        if (!s_int(val, 1, EVR_HOOK_TIMEOUT_MAX, &n))
            return s_bad(rd, v, i, key, "expected whole seconds from 1 to 3600");
        h->timeout = (uint32_t) n;
    }
    else if (!strcmp(key, "optional")) {
        if (!strcmp(val, "true") || !strcmp(val, "yes"))
            h->optional = true;
        else if (!strcmp(val, "false") || !strcmp(val, "no"))
            h->optional = false;
        else
            return s_bad(rd, v, i, key, "expected true or false");
    }
    else {
        /* the fields, then other systems' words for run */
        static const char *const fields[] = { "phase", "run", "name", "priority", "timeout",
                                              "optional", "command", "script" };
        const char *near = evr_diag_near(key, fields, EVR_ARRAY_LEN(fields));
        for (size_t f = 0; !near && strlen(key) >= 3 && f < 6; f++)
            if (!strncmp(fields[f], key, strlen(key)))
                near = fields[f];   /* a field cut short: prio */
        if (near && (near == fields[6] || near == fields[7]))
            near = "run";
        char what[160];
        if (near)
            snprintf(what, sizeof what, "unknown field; did you mean %s? (expected phase, run, "
                     "name, priority, timeout or optional)", near);
        else
            snprintf(what, sizeof what, "unknown field: expected phase, run, name, priority, "
                     "timeout or optional");
        return s_bad(rd, k, i, key, what);
    }
    return EVR_OK;
}

/*  The line of the key of an earlier pair of map than p with k's name;
    0 when none. */
static size_t
s_earlier(const s_rd_t *rd, const yaml_node_t *map, const yaml_node_pair_t *p,
          const yaml_node_t *k)
{
    if (k->type != YAML_SCALAR_NODE)
        return 0;
    for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
        const yaml_node_t *qk = yaml_document_get_node(rd->doc, q->key);
        if (qk->type == YAML_SCALAR_NODE
            && !strcmp((const char *) qk->data.scalar.value, (const char *) k->data.scalar.value))
            return qk->start_mark.line + 1;
    }
    return 0;
}

/*  Hook i into h: every field checked, each problem said (s_bad). */
static evr_rc_t
s_hook(s_rd_t *rd, size_t i, const yaml_node_t *node, evr_hook_t *h)
{
    h->timeout = EVR_HOOK_TIMEOUT_DEFAULT;
    h->line = (uint32_t) node->start_mark.line + 1;
    if (node->type != YAML_MAPPING_NODE)
        return s_bad(rd, node, i, "", "expected a mapping {phase, run, priority, timeout, "
                     "optional, name}");
    unsigned seen = 0;
    evr_rc_t rc = EVR_OK;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(rd->doc, p->key);
        size_t first = s_earlier(rd, node, p, k);
        if (first) {   /* which one was meant? (a second name also leaked the first) */
            char what[64];
            snprintf(what, sizeof what, "duplicate key (first at line %zu)", first);
            rc = s_bad(rd, k, i, k->type == YAML_SCALAR_NODE
                                 ? (const char *) k->data.scalar.value : "", what);
        }
        else if (s_field(rd, i, k, yaml_document_get_node(rd->doc, p->value), h, &seen))
            rc = EVR_ERR_CONFIG;
    }
    if (!(seen & 1u))
        rc = s_bad(rd, node, i, "phase", "missing: every hook needs a phase");
    if (!(seen & 2u))
        rc = s_bad(rd, node, i, "run", "missing: every hook needs a command to run");
    if (!h->name)
        h->name = evr_asprintf("%s-%zu", s_phases[h->phase], i + 1);
    return rc;
}

static int
s_cmp(const void *a, const void *b)
{
    const evr_hook_t *x = a, *y = b;
    if (x->phase != y->phase)
        return x->phase < y->phase ? -1 : 1;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;   /* file order */
}

static evr_rc_t
s_list(s_rd_t *rd, const yaml_node_t *list, evr_hooks_t **out)
{
    if (list->type != YAML_SEQUENCE_NODE)
        return evr_err_set(rd->err, EVR_ERR_CONFIG, "%s:%zu:%zu: hooks: expected a list of "
                           "{phase, run, priority, timeout, optional, name}", rd->file,
                           list->start_mark.line + 1, list->start_mark.column + 1);
    size_t n = (size_t) (list->data.sequence.items.top - list->data.sequence.items.start);
    if (n > EVR_HOOKS_MAX)
        return evr_err_set(rd->err, EVR_ERR_CONFIG, "%s:%zu:%zu: hooks: %zu hooks, at most %d",
                           rd->file, list->start_mark.line + 1, list->start_mark.column + 1, n,
                           EVR_HOOKS_MAX);
    evr_hooks_t *hs = evr_calloc(1, sizeof *hs);
    hs->v = evr_calloc(n ? n : 1, sizeof *hs->v);
    for (size_t i = 0; i < n; i++) {    /* every hook checked: each problem said */
        const yaml_node_t *node = yaml_document_get_node(rd->doc,
                                                         list->data.sequence.items.start[i]);
        hs->n = i + 1;
        (void) s_hook(rd, i, node, &hs->v[i]);
        /* a duplicate is shown where its name is given (a default name:
           where its hook is) */
        const evr_hook_t *h = &hs->v[i];
        for (size_t k = 0; h->name && k < i; k++)   /* no name: a hook that is no mapping */
            if (hs->v[k].name && !strcmp(hs->v[k].name, h->name)) {
                char what[200];
                snprintf(what, sizeof what, "\"%s\" is the name of hooks[%zu] (line %u) too: "
                         "names must be unique", h->name, k,
                         hs->v[k].name_line ? hs->v[k].name_line : hs->v[k].line);
                yaml_mark_t at = node->start_mark;
                if (h->name_line) {
                    at.line = h->name_line - 1;
                    at.column = h->name_col - 1;
                }
                yaml_node_t where = { .start_mark = at };
                s_bad(rd, &where, i, "name", what);
                break;
            }
    }
    if (rd->nbad) {
        s_problems(rd);
        evr_hooks_destroy(&hs);
        return EVR_ERR_CONFIG;
    }
    qsort(hs->v, hs->n, sizeof *hs->v, s_cmp);
    *out = hs;
    return EVR_OK;
}

static evr_rc_t
s_doc(s_rd_t *rd, evr_hooks_t **out)
{
    yaml_node_t *root = yaml_document_get_root_node(rd->doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        return EVR_OK;   /* evr_config says what is wrong with such a file */
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        const char *key = s_scalar(yaml_document_get_node(rd->doc, p->key));
        if (key && !strcmp(key, "hooks"))
            return s_list(rd, yaml_document_get_node(rd->doc, p->value), out);
    }
    return EVR_OK;
}

evr_rc_t
evr_hooks_load_buf(const char *name, const char *buf, size_t len, evr_hooks_t **out,
                   evr_err_t *err)
{
    *out = NULL;
    /* checked as evr_config_load_file checks the same file (syntax,
       tags, nesting and size), its messages word for word */
    evr_diag_t *diag = evr_diag_new(name);
    bool ok = evr_yaml_precheck(buf, len, diag);
    if (!ok) {
        size_t used = 0;
        err->msg[0] = '\0';
        for (size_t i = 0; evr_diag_get(diag, i); i++) {
            const char *line = evr_diag_get(diag, i);
            if (used + 1 + strlen(line) >= sizeof err->msg)    /* whole lines only */
                break;
            used += (size_t) snprintf(err->msg + used, sizeof err->msg - used, "%s%s",
                                      used ? "\n" : "", line);
        }
    }
    evr_diag_destroy(&diag);
    if (!ok)
        return EVR_ERR_CONFIG;
    yaml_parser_t parser;
    yaml_document_t doc;
    evr_rc_t rc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *) buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        /* word for word evr_config_load_file's, which reads the same
           file: the runner's report then says it once */
        char text[1024];
        evr_yaml_syntax_text(&parser, buf, len, text, sizeof text);
        rc = evr_err_set(err, EVR_ERR_CONFIG, "%s:%s", name, text);
    }
    else {
        s_rd_t rd = { name, &doc, err, 0, false };
        rc = s_doc(&rd, out);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    return rc;
}

evr_rc_t
evr_hooks_load(const char *path, evr_hooks_t **out, evr_err_t *err)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: %s", path, strerror(errno));
    size_t cap = EVR_CONFIG_FILE_MAX + 1, len = 0;
    char *buf = evr_malloc(cap);
    size_t got;
    while (len < cap && (got = fread(buf + len, 1, cap - len, fp)) > 0)
        len += got;
    bool big = len > EVR_CONFIG_FILE_MAX, bad = ferror(fp);
    int e = errno;
    fclose(fp);
    /* a directory: said as evr_config_load_file says it (the runner
       reports the two once) */
    evr_rc_t rc = big ? evr_err_set(err, EVR_ERR_CONFIG, "%s: larger than %u bytes (1 MiB), the "
                                    "limit for a settings file", path, EVR_CONFIG_FILE_MAX)
                : bad && e == EISDIR
                    ? evr_err_set(err, EVR_ERR_CONFIG, "%s: is a directory, not a settings file",
                                  path)
                : bad ? evr_err_set(err, EVR_ERR_CONFIG, "%s: reading failed: %s", path,
                                    strerror(e))
                      : evr_hooks_load_buf(path, buf, len, out, err);
    free(buf);
    return rc;
}

void
evr_hooks_print(const evr_hooks_t *self, FILE *out)
{
    if (!self || !self->n) {
        fprintf(out, "# hooks: none\n");
        return;
    }
    fprintf(out, "hooks:   # %zu, in the order they run (by phase, then priority)\n", self->n);
    for (size_t i = 0; i < self->n; i++) {
        const evr_hook_t *h = &self->v[i];
        json_t *run = json_string(h->run);   /* quoted as JSON: valid YAML too */
        char *q = run ? json_dumps(run, JSON_ENCODE_ANY) : NULL;
        fprintf(out, "  - { phase: %s, name: %s, priority: %lld, timeout: %u, optional: %s, "
                "run: %s }   # line %u\n", s_phases[h->phase], h->name, (long long) h->priority,
                h->timeout, h->optional ? "true" : "false", q ? q : "?", h->line);
        free(q);
        json_decref(run);
    }
}

/* ----------------------------------------------------------------- answers */

static bool
s_env_name_ok(const char *k)
{
    if (!*k || strlen(k) > 128 || !((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z')
                                    || *k == '_'))
        return false;
    for (const char *c = k; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
              || *c == '_'))
            return false;
    return true;
}

static evr_rc_t
s_answer_map(json_t *o, const char *which, evr_strmap_t *into, size_t *count, evr_err_t *err)
{
    if (!o)
        return EVR_OK;
    if (!json_is_object(o))
        return evr_err_set(err, EVR_ERR_PROTO, "answer: \"%s\": expected an object of "
                           "names to strings", which);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (!s_env_name_ok(k))
            return evr_err_set(err, EVR_ERR_PROTO, "answer: %s: \"%.64s\": expected an "
                               "environment variable name ([A-Za-z_][A-Za-z0-9_]*)", which, k);
        if (!strncmp(k, "EVRUN_", 6))   /* the runner's own: never overridden in silence */
            return evr_err_set(err, EVR_ERR_PROTO, "answer: %s.%.64s: EVRUN_* names are the "
                               "runner's own (EVRUN_OUTPUT, EVRUN_CONTROL, EVRUN_JOB_ID...): "
                               "a hook may not set one; give it another name", which, k);
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return evr_err_set(err, EVR_ERR_PROTO, "answer: %s.%s: expected a string "
                               "(without NUL)", which, k);
        if (++*count > EVR_HOOK_ANSWER_MAX)
            return evr_err_set(err, EVR_ERR_PROTO, "answer: more than %d env and secrets",
                               EVR_HOOK_ANSWER_MAX);
        evr_strmap_set(into, k, json_string_value(v));
    }
    return EVR_OK;
}

evr_rc_t
evr_hook_answer(const char *out, size_t len, evr_strmap_t *env, evr_strmap_t *secrets,
                evr_err_t *err)
{
    size_t i = 0;
    while (i < len && (out[i] == ' ' || out[i] == '\n' || out[i] == '\t' || out[i] == '\r'))
        i++;
    if (i == len)
        return EVR_OK;
    json_error_t je;
    /* a key twice would keep one of the two unsaid ({"env": {"A": ..},
       "env": {"B": ..}} dropped A) */
    json_t *js = json_loadb(out, len, JSON_REJECT_DUPLICATES, &je);
    if (!js && strstr(je.text, "duplicate object key"))
        return evr_err_set(err, EVR_ERR_PROTO, "answer: a key written twice (line %d, column "
                           "%d): give env and secrets once each, each name once in them",
                           je.line, je.column);
    if (!js) {
        /* jansson's text quotes the token it stopped at ("near '\"s3cr..."):
           a secret's value, cut or unterminated; the column says where */
        char *near = strstr(je.text, " near '");
        if (near)
            *near = '\0';
        /* jansson's words for a NUL ("without JSON_ALLOW_NUL", its flag)
           and for bytes that are not UTF-8, said as a hook's author reads them */
        const char *why = strstr(je.text, "JSON_ALLOW_NUL")
                          ? "a NUL character (\\u0000): a value may hold none"
                          : strstr(je.text, "decode byte") ? "a byte that is not UTF-8: JSON is "
                                                              "UTF-8 text"
                                                            : je.text;
        return evr_err_set(err, EVR_ERR_PROTO, "answer: not JSON (line %d, column %d: %s): "
                           "a hook prints nothing or {\"env\": {...}, \"secrets\": {...}}",
                           je.line, je.column, why);
    }
    evr_rc_t rc = EVR_OK;
    size_t count = 0;
    if (!json_is_object(js))
        rc = evr_err_set(err, EVR_ERR_PROTO, "answer: expected a JSON object "
                         "{\"env\": {...}, \"secrets\": {...}}");
    else {
        const char *k;
        json_t *v;
        json_object_foreach(js, k, v)
            if (strcmp(k, "env") && strcmp(k, "secrets")) {
                rc = evr_err_set(err, EVR_ERR_PROTO, "answer: unknown key \"%.64s\": "
                                 "expected env or secrets", k);
                break;
            }
        if (!rc)
            rc = s_answer_map(json_object_get(js, "env"), "env", env, &count, err);
        if (!rc)
            rc = s_answer_map(json_object_get(js, "secrets"), "secrets", secrets, &count, err);
    }
    json_decref(js);
    return rc;
}
