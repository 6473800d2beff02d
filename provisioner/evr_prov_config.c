/*  evr_prov_config.c: evrun-provisioner's config file (evr_prov.h).

    libyaml loads the file as a document (bounded: size, nesting and
    events checked first by evr_yaml_precheck as for pipeline files, nodes
    through aliases, the providers' count); each key is checked against
    the keys this file knows (once each), each value against its type and
    range, and every problem is a `FILE:LINE:COL: FIELD: message` line
    that says what was expected, a list's item at the item.  A provider
    gets its match labels here: its labels and executor:NAME for each
    executor it offers (as evrun-runner adds them).
*/
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "evr_bus.h"
#include "evr_offer.h"
#include "evr_prov.h"
#include "evr_prov_run.h"
#include "evr_yaml.h"

typedef struct {
    yaml_document_t *doc;
    evr_diag_t *diag;
} s_ctx_t;

/*  A merge key (`<<: *a`): pipeline files resolve them, a providers file
    does not (it said `unknown key "<<"`, as if a typo). */
#define S_NO_MERGE "a merge key (<<: *anchor) is not read in a providers file: write the " \
    "keys out (an alias of a whole provider, or of a list such as labels, is read)"

static void __attribute__((format(printf, 4, 5)))
s_err(s_ctx_t *c, const yaml_node_t *n, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    evr_diag_add_at(c->diag, n ? (uint32_t) n->start_mark.line + 1 : 0,
                    n ? (uint32_t) n->start_mark.column + 1 : 0, field, "%s", msg);
}

/*  The scalar's text, or NULL (an error said) when n is not a scalar. */
static const char *
s_scalar(s_ctx_t *c, const yaml_node_t *n, const char *field)
{
    if (n->type != YAML_SCALAR_NODE) {
        s_err(c, n, field, "expected a single value");
        return NULL;
    }
    return (const char *) n->data.scalar.value;
}

static bool
s_uint(s_ctx_t *c, const yaml_node_t *n, const char *field, uint32_t lo, uint32_t hi,
       uint32_t *out)
{
    const char *v = s_scalar(c, n, field);
    if (!v)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (!*v || *end || errno || *v == '-' || x < lo || x > hi) {
        s_err(c, n, field, "expected a whole number from %u to %u, got \"%s\"", lo, hi, v);
        return false;
    }
    *out = (uint32_t) x;
    return true;
}

/*  "N/s", "N/min", or "N" (per second), N > 0 and at most 1000. */
static void
s_rate(s_ctx_t *c, const yaml_node_t *n, evr_prov_config_t *cfg)
{
    const char *v = s_scalar(c, n, "start_rate");
    if (!v)
        return;
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    double per = 1;
    if (end && (!strcmp(end, "/min") || !strcmp(end, "/m")))
        per = 60;
    else if (end && *end && strcmp(end, "/s"))
        x = -1;
    if (end == v || errno || !isfinite(x) || x <= 0 || x > 1000) {
        s_err(c, n, "start_rate", "expected starts per second or per minute: N/s or N/min "
              "(N above 0, at most 1000), got \"%s\"", v);
        return;
    }
    cfg->rate = x / per;
    cfg->burst = x < 1 ? 1 : floor(x);
}

/*  Seconds: "N", "Ns" or "Nm", 1 to 86400. */
static void
s_duration(s_ctx_t *c, const yaml_node_t *n, uint32_t *out)
{
    const char *v = s_scalar(c, n, "register_timeout");
    if (!v)
        return;
    char *end = NULL;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    unsigned long mul = !strcmp(end, "m") ? 60 : (!*end || !strcmp(end, "s")) ? 1 : 0;
    /* x checked before it is multiplied: a product past ULONG_MAX wraps */
    if (end == v || *v == '-' || errno || !mul || x > 86400 || x * mul < 1 || x * mul > 86400) {
        s_err(c, n, "register_timeout", "expected seconds (N, Ns or Nm), from 1 s to 24 h, "
              "got \"%s\"", v);
        return;
    }
    *out = (uint32_t) (x * mul);
}

/*  A name as runner ids and labels take: [A-Za-z0-9][A-Za-z0-9_.:-]*, 1-64. */
static bool
s_name_ok(const char *s, bool colon)
{
    size_t len = strlen(s);
    if (!len || len > 64 || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
                              || (*s >= '0' && *s <= '9')))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '_' || *s == '.' || *s == '-' || (colon && *s == ':')))
            return false;
    return true;
}

/*  The index of the first item of sequence n before item that is the
    scalar v, or -1. */
static int
s_seen(const s_ctx_t *c, const yaml_node_t *n, const yaml_node_item_t *item, const char *v)
{
    for (const yaml_node_item_t *i = n->data.sequence.items.start; i < item; i++) {
        yaml_node_t *e = yaml_document_get_node(c->doc, *i);
        if (e && e->type == YAML_SCALAR_NODE && !strcmp((const char *) e->data.scalar.value, v))
            return (int) (i - n->data.sequence.items.start);
    }
    return -1;
}

/*  A list of names into out; at most 32, each problem said at its item
    (FIELD[I]).  A name is a label as a job's are (an executor:NAME one
    comes from executors).  One name alone is refused as a pipeline's
    `labels: linux` is, with the list to write. */
static void
s_names(s_ctx_t *c, const yaml_node_t *n, const char *field, evr_strlist_t *out)
{
    char at[96];
    int first;
    if (n->type == YAML_SCALAR_NODE) {
        s_err(c, n, field, "expected a list, got a scalar: write [%.64s]",
              (const char *) n->data.scalar.value);
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        s_err(c, n, field, "expected a list of names");
        return;
    }
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
         i++) {
        yaml_node_t *e = yaml_document_get_node(c->doc, *i);
        snprintf(at, sizeof at, "%s[%u]", field, (unsigned) (i - n->data.sequence.items.start));
        const char *v = e ? s_scalar(c, e, at) : NULL;
        if (!v)
            continue;
        if (out->n >= 32) {
            s_err(c, e, field, "at most 32 items");
            return;
        }
        if (!strncmp(v, "executor:", 9))
            s_err(c, e, at, "label \"%s\": executor labels come from executors", v);
        else if (!s_name_ok(v, false))
            s_err(c, e, at, "expected a name of [A-Za-z0-9_.-] (1-64 bytes, as a job's labels), "
                  "got \"%s\"", v);
        else if ((first = s_seen(c, n, i, v)) >= 0)   /* a set: the broker refuses a repeat */
            s_err(c, e, at, "\"%s\" repeats %s[%d]", v, field, first);
        else
            evr_strlist_push(out, v);
    }
}

/*  A list of strings as they are (process args), at most 64; check (NULL:
    none) says what is wrong with one (NULL: nothing), said at its item
    (FIELD[I]). */
static void
s_strings(s_ctx_t *c, const yaml_node_t *n, const char *field, evr_strlist_t *out,
          const char *(*check)(const char *v, char *why, size_t size))
{
    char at[96], why[512];
    if (n->type != YAML_SEQUENCE_NODE) {
        s_err(c, n, field, "expected a list of strings");
        return;
    }
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
         i++) {
        yaml_node_t *e = yaml_document_get_node(c->doc, *i);
        snprintf(at, sizeof at, "%s[%u]", field, (unsigned) (i - n->data.sequence.items.start));
        const char *v = e ? s_scalar(c, e, at) : NULL, *bad = v && check ? check(v, why,
                                                                                  sizeof why)
                                                                         : NULL;
        if (v && out->n >= 64) {
            s_err(c, e, field, "at most 64 items");
            return;
        }
        if (bad)
            s_err(c, e, at, "%s", bad);
        else if (v)
            evr_strlist_push(out, v);
    }
}

/*  A podman provider's volumes item: SOURCE:DEST[:ro]. */
static const char *
s_volume_bad(const char *e, char *why, size_t size)
{
    const char *d = strchr(e, ':'), *o = d ? strchr(d + 1, ':') : NULL;
    if (d && d != e && d[1] == '/' && (!o || !strcmp(o, ":ro") || !strcmp(o, ":rw"))
        && strlen(e) <= 4096)
        return NULL;
    snprintf(why, size, "\"%.200s\": expected SOURCE:DEST[:ro] (SOURCE a host path or a "
             "podman volume's name, DEST an absolute path in the container)", e);
    return why;
}

static char *
s_template(s_ctx_t *c, const yaml_node_t *n, const char *field)
{
    const char *v = s_scalar(c, n, field);
    if (!v)
        return NULL;
    if (!*v || strlen(v) > EVR_PROV_MAX_TEMPLATE) {
        s_err(c, n, field, "expected a command of 1 to 4096 bytes");
        return NULL;
    }
    return evr_strdup(v);
}

static void s_provider(s_ctx_t *c, const yaml_node_t *n, uint32_t idx, evr_prov_config_t *cfg);

/*  Whether key k (its text key) of a map is one of keys (n of them, at
    most 32) seen before in it (*seen: their bits): a duplicate, said.
    Another key is not counted (unknown: said as such). */
static bool
s_twice(s_ctx_t *c, const yaml_node_t *k, const char *key, const char *field,
        const char *const *keys, size_t n, uint32_t *seen)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(key, keys[i])) {
            if (*seen & (1u << i)) {
                s_err(c, k, field, "duplicate key");
                return true;
            }
            *seen |= 1u << i;
        }
    return false;
}

/*  Whether ep cannot be the runners' endpoint (why in why): the broker's
    runner socket as evrun-runner --broker takes it, ipc:// or tcp:// (an
    inproc:// one is inside a process, which no runner is). */
static bool
s_endpoint_bad(const char *ep, char *why, size_t size)
{
    evr_err_t err;
    if (!strncmp(ep, "inproc://", 9))
        snprintf(why, size, "%.200s: expected tcp://HOST:PORT or ipc://PATH (the broker's "
                 "runner endpoint; an inproc:// one no runner can reach)", ep);
    else if (evr_bus_check_endpoint(ep, &err))
        snprintf(why, size, "%.400s (the broker's runner endpoint, as evrun-runner --broker takes "
                 "it)", err.msg);
    else
        return false;
    return true;
}

static const char *const s_top_keys[] = { "max_runners", "start_rate", "register_timeout",
                                          "runner", "runner_endpoint", "podman_url",
                                          "providers" };

static void
s_top(s_ctx_t *c, const yaml_node_t *root, evr_prov_config_t *cfg)
{
    const char *scalar = root && root->type == YAML_SCALAR_NODE
                             ? (const char *) root->data.scalar.value : NULL;
    bool empty = !root || (scalar && (!*scalar || !strcmp(scalar, "~")
                                      || !strcmp(scalar, "null")));
    if (empty || root->type != YAML_MAPPING_NODE) {
        evr_diag_add_at(c->diag, root ? (uint32_t) root->start_mark.line + 1 : 1,
                        root ? (uint32_t) root->start_mark.column + 1 : 1, "",
                        "%sexpected a map of settings (max_runners, start_rate, "
                        "register_timeout, providers)", empty ? "empty file: " : "");
        return;
    }
    const yaml_node_t *prov = NULL;
    uint32_t seen = 0;
    char why[512];
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        const char *key = k ? s_scalar(c, k, "") : NULL;
        if (!key || !v
            || s_twice(c, k, key, key, s_top_keys, EVR_ARRAY_LEN(s_top_keys), &seen))
            continue;
        if (!strcmp(key, "max_runners"))
            s_uint(c, v, key, 1, EVR_PROV_MAX_RUNNERS, &cfg->max_runners);
        else if (!strcmp(key, "start_rate"))
            s_rate(c, v, cfg);
        else if (!strcmp(key, "register_timeout"))
            s_duration(c, v, &cfg->register_timeout_s);
        else if (!strcmp(key, "runner") || !strcmp(key, "runner_endpoint")
                 || !strcmp(key, "podman_url")) {
            char **dst = !strcmp(key, "runner") ? &cfg->runner : !strcmp(key, "podman_url")
                         ? &cfg->podman_url : &cfg->runner_endpoint;
            const char *s = s_scalar(c, v, key);
            if (s && (!*s || strlen(s) > 1024))
                s_err(c, v, key, "expected 1 to 1024 bytes");
            else if (s && dst == &cfg->podman_url && strncmp(s, "unix:///", 8))
                s_err(c, v, key, "expected unix:///PATH, the podman service's socket on this "
                      "host (the runners' containers get it bound), got \"%s\"", s);
            else if (s && dst == &cfg->runner_endpoint && s_endpoint_bad(s, why, sizeof why))
                s_err(c, v, key, "%s", why);
            else if (s) {
                free(*dst);
                *dst = evr_strdup(s);
            }
        }
        else if (!strcmp(key, "providers"))
            prov = v;
        else if (!strcmp(key, "<<"))
            s_err(c, k, key, "%s", S_NO_MERGE);
        else {
            const char *near = evr_diag_near(key, s_top_keys, EVR_ARRAY_LEN(s_top_keys));
            s_err(c, k, key, "unknown setting \"%s\"%s%s%s: expected max_runners, start_rate, "
                  "register_timeout, runner, runner_endpoint, podman_url or providers", key,
                  near ? "; did you mean " : "", near ? near : "", near ? "?" : "");
        }
    }
    if (!prov) {
        s_err(c, root, "providers", "missing: the list of providers");
        return;
    }
    if (prov->type != YAML_SEQUENCE_NODE) {
        s_err(c, prov, "providers", "expected a list of providers (maps)");
        return;
    }
    size_t count = (size_t) (prov->data.sequence.items.top - prov->data.sequence.items.start);
    if (!count || count > EVR_PROV_MAX_PROVIDERS) {
        s_err(c, prov, "providers", "expected 1 to 64 providers");
        return;
    }
    cfg->providers = evr_calloc(count, sizeof *cfg->providers);
    for (uint32_t i = 0; i < count; i++) {
        yaml_node_t *e = yaml_document_get_node(c->doc, prov->data.sequence.items.start[i]);
        if (e)
            s_provider(c, e, i, cfg);
    }
}

/*  A podman provider's key (image, network, volumes, env); false for
    another key. */
static bool
s_podman_key(s_ctx_t *c, const char *key, const yaml_node_t *v, const char *field,
             evr_prov_provider_t *p)
{
    const char *s;
    if (!strcmp(key, "image")) {
        if (!(s = s_scalar(c, v, field)))
            return true;
        const char *why = strlen(s) > 512 ? "over 512 bytes" : evr_spec_image_problem(s);
        if (why)    /* the grammar a pipeline's image is checked against */
            s_err(c, v, field, "expected an image name ([HOST[:PORT]/]NAME[:TAG][@DIGEST], "
                  "e.g. localhost/evrun-runner:latest), got \"%.128s\": %s", s, why);
        else {
            free(p->image);
            p->image = evr_strdup(s);
        }
    }
    else if (!strcmp(key, "network")) {
        if (!(s = s_scalar(c, v, field)))
            return true;
        if (strcmp(s, "host") && strcmp(s, "bridge") && strcmp(s, "none"))
            s_err(c, v, field, "expected host (the default), bridge or none, got \"%s\"", s);
        else {
            free(p->network);
            p->network = evr_strdup(s);
        }
    }
    else if (!strcmp(key, "volumes"))
        s_strings(c, v, field, &p->volumes, s_volume_bad);
    else if (!strcmp(key, "env")) {
        if (v->type != YAML_MAPPING_NODE) {
            s_err(c, v, field, "expected a map of NAME: value");
            return true;
        }
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top;
             q++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, q->key);
            yaml_node_t *x = yaml_document_get_node(c->doc, q->value);
            const char *name = k ? s_scalar(c, k, field) : NULL, *val = x ? s_scalar(c, x, field)
                                                                      : NULL;
            if (!name || !val)
                continue;
            size_t nl = strlen(name);
            char at[160];
            snprintf(at, sizeof at, "%s.%.64s", field, name);
            bool twice = false;
            for (uint32_t i = 0; i < p->env.n && !twice; i++)
                twice = !strncmp(p->env.v[i], name, nl) && p->env.v[i][nl] == '=';
            if (twice)
                s_err(c, k, at, "duplicate key");
            else if (!nl || nl > 128 || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
                                                     "OPQRSTUVWXYZ0123456789_") != nl
                || (name[0] >= '0' && name[0] <= '9') || strlen(val) > 4096 || p->env.n >= 64)
                s_err(c, k, at, "\"%s\": expected at most 64 NAME: value ([A-Za-z_]"
                      "[A-Za-z0-9_]*, a value of at most 4096 bytes)", name);
            else {
                char *kv = evr_asprintf("%s=%s", name, val);
                evr_strlist_push(&p->env, kv);
                free(kv);
            }
        }
    }
    else
        return false;
    return true;
}

static const char *const s_provider_keys[] = { "name", "labels", "kind", "executors", "args",
                                               "start", "stop", "max", "image", "network",
                                               "volumes", "env" };

/*  One key of provider p (field names it: "providers[I].KEY"). */
static void
s_provider_key(s_ctx_t *c, const char *key, const yaml_node_t *k, const yaml_node_t *v,
               const char *field, evr_prov_provider_t *p)
{
    if (!strcmp(key, "name")) {
        const char *s = s_scalar(c, v, field);
        if (s && !s_name_ok(s, false))
            s_err(c, v, field, "expected a name of [A-Za-z0-9_.-] (1-40 bytes), got \"%s\"", s);
        else if (s && strlen(s) > 40)
            s_err(c, v, field, "at most 40 bytes (runner ids are NAME-SUFFIX), got \"%s\"", s);
        else if (s) {
            free(p->name);
            p->name = evr_strdup(s);
        }
    }
    else if (!strcmp(key, "labels"))
        s_names(c, v, field, &p->labels);
    else if (!strcmp(key, "executors")) {
        s_names(c, v, field, &p->executors);
        if (v->type == YAML_SEQUENCE_NODE && v->data.sequence.items.top
                                             == v->data.sequence.items.start)
            s_err(c, v, field, "expected podman, process or both (an empty list; leave the key "
                  "out for the default, [podman])");
    }
    else if (!strcmp(key, "args"))
        s_strings(c, v, field, &p->args, NULL);
    else if (!strcmp(key, "kind")) {
        const char *s = s_scalar(c, v, field);
        if (s && !strcmp(s, "process"))
            p->kind = EVR_PROV_PROCESS;
        else if (s && !strcmp(s, "command"))
            p->kind = EVR_PROV_COMMAND;
        else if (s && !strcmp(s, "podman"))
            p->kind = EVR_PROV_PODMAN;
        else if (s) {
            static const char *const kinds[] = { "process", "podman", "command" };
            const char *near = evr_diag_near(s, kinds, 3);
            s_err(c, v, field, "expected process, podman or command, got \"%s\"%s%s%s", s,
                  near ? "; did you mean " : "", near ? near : "", near ? "?" : "");
        }
    }
    else if (!strcmp(key, "start") || !strcmp(key, "stop")) {
        bool stop = !strcmp(key, "stop");
        char **dst = stop ? &p->stop : &p->start;
        free(*dst);
        *dst = s_template(c, v, field);
        evr_err_t err;
        char *try = *dst ? evr_prov_expand(*dst, stop ? NULL : "J", stop ? NULL : "L", "R", "B",
                                              stop ? "H" : NULL, &err)
                         : evr_strdup("");
        if (!try)
            s_err(c, v, field, "%s", err.msg);
        free(try);
    }
    else if (!strcmp(key, "max"))
        s_uint(c, v, field, 1, EVR_PROV_MAX_RUNNERS, &p->max);
    else if (!strcmp(key, "<<"))   /* pipeline files take merge keys; this one not */
        s_err(c, k, field, "%s", S_NO_MERGE);
    else if (!s_podman_key(c, key, v, field, p)) {
        const char *near = evr_diag_near(key, s_provider_keys, EVR_ARRAY_LEN(s_provider_keys));
        s_err(c, k, field, "unknown key \"%s\"%s%s%s: expected name, labels, kind, executors, "
              "args, start, stop, max, or for kind podman image, network, volumes, env", key,
              near ? "; did you mean " : "", near ? near : "", near ? "?" : "");
    }
}

/*  Where a check of mapping n's fields points: the first of keys (NULL
    ended) that n has, its key node (its value's for value), else n. */
static const yaml_node_t *
s_at(s_ctx_t *c, const yaml_node_t *n, bool value, const char *const *keys)
{
    if (n->type != YAML_MAPPING_NODE)
        return n;
    for (const char *const *want = keys; *want; want++)
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top;
             q++) {
            const yaml_node_t *k = yaml_document_get_node(c->doc, q->key);
            if (k && k->type == YAML_SCALAR_NODE && !strcmp((const char *) k->data.scalar.value,
                                                            *want))
                return value ? yaml_document_get_node(c->doc, q->value) : k;
        }
    return n;
}

#define S_AT(c, n, value, ...) s_at(c, n, value, (const char *const[]) { __VA_ARGS__, NULL })

/*  The evrun-runner option an args item sets that the provisioner sets
    itself ("--id", "--state=x" as getopt takes a prefix), or NULL. */
static const char *
s_args_conflict(const char *arg, bool podman)
{
    static const char *const set[] = { "broker", "id", "labels", "executors", "state-dir",
                                       "podman-url" };
    if (strncmp(arg, "--", 2) || !arg[2])
        return NULL;
    size_t len = strcspn(arg + 2, "=");
    for (size_t i = 0; len && i < EVR_ARRAY_LEN(set) - !podman; i++)
        if (len <= strlen(set[i]) && !strncmp(arg + 2, set[i], len))
            return set[i];
    return NULL;
}

/*  p's args against what the provisioner gives each runner itself. */
static void
s_args_check(s_ctx_t *c, const yaml_node_t *n, const char *at, const evr_prov_provider_t *p)
{
    const yaml_node_t *l = S_AT(c, n, true, "args");
    for (uint32_t i = 0; i < p->args.n; i++) {
        const char *opt = s_args_conflict(p->args.v[i], p->kind == EVR_PROV_PODMAN);
        if (!opt)
            continue;
        char field[96];
        snprintf(field, sizeof field, "%s.args[%u]", at, i);
        const yaml_node_t *item = NULL;
        if (l->type == YAML_SEQUENCE_NODE
            && l->data.sequence.items.start + i < l->data.sequence.items.top)
            item = yaml_document_get_node(c->doc, l->data.sequence.items.start[i]);
        s_err(c, item ? item : l, field, "\"%s\": the provisioner sets --%s itself (with --id, "
              "--broker, --labels, --executors, --state-dir%s): give labels and executors as "
              "the provider's keys, runner_endpoint at the top", p->args.v[i], opt,
              p->kind == EVR_PROV_PODMAN ? ", --podman-url" : "");
    }
}

/*  Whether p is whole, and its match labels: each problem shown at the
    field it is about (the provider when that field is missing). */
static void
s_provider_check(s_ctx_t *c, const yaml_node_t *n, const char *at, evr_prov_config_t *cfg,
                 uint32_t idx)
{
    evr_prov_provider_t *p = &cfg->providers[idx];
    char field[64];
    snprintf(field, sizeof field, "%s.name", at);
    if (!p->name)
        s_err(c, n, field, "missing: each provider has a name");
    for (uint32_t i = 0; p->name && i < idx; i++)
        if (cfg->providers[i].name && !strcmp(cfg->providers[i].name, p->name))
            s_err(c, S_AT(c, n, true, "name"), field, "provider \"%s\" named twice (as "
                  "providers[%u])", p->name, i);
    snprintf(field, sizeof field, "%s.start", at);
    if (p->kind == EVR_PROV_COMMAND && !p->start)
        s_err(c, n, field, "missing: a command provider needs a start template (its first "
              "output line is the handle)");
    if (p->kind != EVR_PROV_COMMAND && (p->start || p->stop))
        s_err(c, S_AT(c, n, false, "start", "stop"), field,
              "start and stop go with kind: command only");
    if (p->kind == EVR_PROV_COMMAND && p->args.n) {
        snprintf(field, sizeof field, "%s.args", at);
        s_err(c, S_AT(c, n, false, "args"), field, "args go with kind: process or podman only");
    }
    else
        s_args_check(c, n, at, p);
    snprintf(field, sizeof field, "%s.image", at);
    if (p->kind != EVR_PROV_PODMAN && (p->image || p->network || p->volumes.n || p->env.n))
        s_err(c, S_AT(c, n, false, "image", "network", "volumes", "env"), field,
              "image, network, volumes and env go with kind: podman only");
    if (p->kind == EVR_PROV_PODMAN && !p->image)
        p->image = evr_strdup(EVR_PROV_PODMAN_IMAGE);
    if (p->kind == EVR_PROV_PODMAN && !p->network)
        p->network = evr_strdup("host");
    if (!p->max)
        p->max = 4;
    if (!p->executors.n)
        evr_strlist_push(&p->executors, "podman");
    if (p->labels.n + p->executors.n > EVR_OFFER_LABELS_MAX) {   /* the runner refuses them */
        snprintf(field, sizeof field, "%s.labels", at);
        s_err(c, S_AT(c, n, true, "labels"), field, "%u labels, and %u executor label%s (one "
              "per executor), come to %u: a runner has at most %d; drop %u", p->labels.n,
              p->executors.n, p->executors.n == 1 ? "" : "s", p->labels.n + p->executors.n,
              EVR_OFFER_LABELS_MAX, p->labels.n + p->executors.n - EVR_OFFER_LABELS_MAX);
    }
    for (uint32_t i = 0; i < p->labels.n; i++)
        evr_strlist_push(&p->match, p->labels.v[i]);
    for (uint32_t i = 0; i < p->executors.n; i++) {
        const char *e = p->executors.v[i];
        if (strcmp(e, "podman") && strcmp(e, "process")) {
            snprintf(field, sizeof field, "%s.executors", at);
            s_err(c, S_AT(c, n, true, "executors"), field, "expected podman or process, got \"%s\"",
                  e);
        }
        char lab[80];
        snprintf(lab, sizeof lab, "executor:%s", e);
        evr_strlist_push(&p->match, lab);
    }
}

static void
s_provider(s_ctx_t *c, const yaml_node_t *n, uint32_t idx, evr_prov_config_t *cfg)
{
    char at[32], field[64];
    snprintf(at, sizeof at, "providers[%u]", idx);
    cfg->nproviders = idx + 1;
    evr_prov_provider_t *p = &cfg->providers[idx];
    if (n->type != YAML_MAPPING_NODE) {
        s_err(c, n, at, "expected a map (name, labels, kind, max...)");
        return;
    }
    uint32_t seen = 0;
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top;
         q++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, q->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, q->value);
        const char *key = k ? s_scalar(c, k, at) : NULL;
        if (!key || !v)
            continue;
        snprintf(field, sizeof field, "%s.%.24s", at, key);
        if (!s_twice(c, k, key, field, s_provider_keys, EVR_ARRAY_LEN(s_provider_keys), &seen))
            s_provider_key(c, key, k, v, field, p);
    }
    s_provider_check(c, n, at, cfg, idx);
}

evr_rc_t
evr_prov_config_parse(const char *text, size_t len, const char *file, evr_prov_config_t *cfg,
                      evr_diag_t *diag)
{
    (void) file;
    memset(cfg, 0, sizeof *cfg);
    cfg->max_runners = 10;
    cfg->rate = cfg->burst = 1;
    cfg->register_timeout_s = 60;
    if (!evr_yaml_precheck(text, len, diag))   /* syntax, depth, size: at once */
        return EVR_ERR_CONFIG;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        evr_diag_add_at(diag, (uint32_t) parser.problem_mark.line + 1,
                        (uint32_t) parser.problem_mark.column + 1, "", "YAML: %s%s%s",
                        parser.problem ? parser.problem : "malformed",
                        parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return EVR_ERR_CONFIG;
    }
    s_ctx_t c = { &doc, diag };
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if ((size_t) (doc.nodes.top - doc.nodes.start) > 100000)
        evr_diag_add_at(diag, 0, 0, "", "too many YAML nodes (at most 100000)");
    else
        s_top(&c, root, cfg);
    yaml_document_delete(&doc);
    /* one document: the providers after a "---" were dropped in silence */
    yaml_document_t next;
    if (!yaml_parser_load(&parser, &next))
        evr_diag_add_at(diag, (uint32_t) parser.problem_mark.line + 1,
                        (uint32_t) parser.problem_mark.column + 1, "", "YAML: %s%s%s",
                        parser.problem ? parser.problem : "malformed",
                        parser.context ? " " : "", parser.context ? parser.context : "");
    else {
        const yaml_node_t *r2 = yaml_document_get_root_node(&next);
        if (r2)
            evr_diag_add_at(diag, (uint32_t) r2->start_mark.line + 1,
                            (uint32_t) r2->start_mark.column + 1, "", "a second YAML document: a "
                            "providers file holds one mapping (max_runners:, providers: ...); "
                            "put it all in it, with no \"---\" between its parts");
        yaml_document_delete(&next);
    }
    yaml_parser_delete(&parser);
    if (evr_diag_count(diag)) {
        evr_prov_config_free(cfg);
        return EVR_ERR_CONFIG;
    }
    return EVR_OK;
}

evr_rc_t
evr_prov_config_load(const char *file, evr_prov_config_t *cfg, evr_diag_t *diag)
{
    memset(cfg, 0, sizeof *cfg);
    FILE *f = fopen(file, "rb");
    if (!f) {
        evr_diag_add_at(diag, 0, 0, "", "cannot read: %s", strerror(errno));
        return EVR_ERR_CONFIG;
    }
    char *buf = evr_malloc(EVR_PROV_MAX_CONFIG_BYTES + 1);
    size_t len = fread(buf, 1, EVR_PROV_MAX_CONFIG_BYTES + 1, f);
    bool bad = ferror(f);
    fclose(f);
    evr_rc_t rc = EVR_ERR_CONFIG;
    if (bad)
        evr_diag_add_at(diag, 0, 0, "", "cannot read: %s", strerror(errno));
    else if (len > EVR_PROV_MAX_CONFIG_BYTES)
        evr_diag_add_at(diag, 0, 0, "", "larger than %u bytes", EVR_PROV_MAX_CONFIG_BYTES);
    else
        rc = evr_prov_config_parse(buf, len, file, cfg, diag);
    free(buf);
    return rc;
}

void
evr_prov_config_free(evr_prov_config_t *cfg)
{
    for (uint32_t i = 0; i < cfg->nproviders; i++) {
        evr_prov_provider_t *p = &cfg->providers[i];
        free(p->name);
        evr_strlist_free(&p->labels);
        evr_strlist_free(&p->executors);
        evr_strlist_free(&p->match);
        evr_strlist_free(&p->args);
        free(p->start);
        free(p->stop);
        free(p->image);
        free(p->network);
        evr_strlist_free(&p->volumes);
        evr_strlist_free(&p->env);
        free(p->paused);
    }
    free(cfg->providers);
    free(cfg->runner);
    free(cfg->runner_endpoint);
    free(cfg->podman_url);
    memset(cfg, 0, sizeof *cfg);
}
