/*  evr_yaml_words.c: the words of the loader's unknown-key errors: the
    keys a record takes (on_error reads some of a step's keys only to
    refuse them: they are not offered), and what other CI systems call
    evrun's keys (GitLab's script, Buildkite's soft_fail...), answered
    with evrun's word, and their forms (a GitLab job at the top of the
    file, retry: 2, - wait, on: [push], an env written as a list),
    answered with evrun's. */
#include "evr_yaml_words.h"

#include <stdio.h>
#include <string.h>

/*  Whether type reads key only for validation to refuse it: on_error
    takes none of a step's keys that place it among the steps. */
static bool
s_refused(const evr_rectype_t *type, const char *key)
{
    static const char *const on_error[] = { "name", "needs", "matrix", "allow_failure", "when" };
    for (size_t i = 0; type == &evr_on_error_type && i < EVR_ARRAY_LEN(on_error); i++)
        if (!strcmp(key, on_error[i]))
            return true;
    return false;
}

void
evr_yaml_expected_keys(const evr_rectype_t *type, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < type->nfields; i++) {
        if (s_refused(type, type->fields[i].key))
            continue;
        int w = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", type->fields[i].key);
        if (w < 0 || (size_t) w >= size - used)
            break;
        used += (size_t) w;
    }
}

/*  What other CI systems call some of evrun's keys: a newcomer's first
    guess, answered with evrun's word. */
static const struct {
    const char *alias, *key;
} s_synonyms[] = {
    { "script", "run" },           { "command", "run" },       { "commands", "run" },
    { "cmd", "run" },              { "depends_on", "needs" },  { "dependencies", "needs" },
    { "depends", "needs" },        { "variables", "env" },     { "environment", "env" },
    { "vars", "env" },             { "jobs", "steps" },        { "tasks", "steps" },
    { "name", "pipeline" },        { "tags", "labels" },       { "agents", "labels" },
    { "artifact_paths", "artifacts" },
    { "retries", "retry" },        { "if", "when" },           { "parallelism", "parallel" },
    { "container", "image" },      { "continue-on-error", "allow_failure" },
    { "continue_on_error", "allow_failure" },
    { "runs-on", "labels" },       { "inputs", "args" },       { "parameters", "args" },
    { "params", "args" },
};

/*  Other CI systems' keys evrun has no key for: what to write instead
    (an exact match, before any near-miss is looked for: `stages` is not
    a misspelt `labels`). */
static const struct {
    const char *word, *instead;
} s_foreign[] = {
    { "stages", "evrun has no stages: steps run in the order written, or as a DAG with needs" },
    { "stage", "evrun has no stages: steps run in the order written, or as a DAG with needs" },
    { "before_script", "evrun has no before_script: put its commands at the start of run "
                       "(a YAML anchor shares them between steps)" },
    { "after_script", "evrun has no after_script: a step with when: always runs after the "
                      "others whatever happened" },
    { "services", "evrun has no services: start what a step needs in its run, or use an "
                  "image that has it" },
    { "only", "evrun has no only/except: a step's when, or the pipeline's on: {github: ...} "
              "for registered pipelines" },
    { "except", "evrun has no only/except: a step's when, or the pipeline's on: {github: ...} "
                "for registered pipelines" },
    { "label", "Buildkite's label is a step's name here (name: build)" },
    { "key", "Buildkite's key is a step's name here: needs lists the names of the steps a "
             "step waits for" },
    { "soft_fail", "Buildkite's soft_fail is allow_failure here (a step's allow_failure: true)" },
    { "agents", "which runners take a job is the pipeline's labels here (labels: [gpu], at the "
                "top of the file)" },
    { "tags", "which runners take a job is the pipeline's labels here (labels: [gpu], at the "
              "top of the file)" },
    { "parallel", "GitLab's parallel (copies of a step) is a step's matrix here (matrix: {K: "
                  "[a, b]}); evrun's parallel is a pipeline key: steps run at once" },
    { "rules", "GitLab's rules: a step's when here (on_success, on_failure, always), or the "
               "pipeline's on: {github: ...} for registered pipelines" },
    { "uses", "GitHub Actions' uses: evrun runs no actions: write the commands the action "
              "would run in run:, in an image that has the tools" },
    { "with", "GitHub Actions' with (an action's inputs): evrun runs no actions; a step's "
              "values go in its env" },
    { "working-directory", "evrun has no working-directory: begin run with cd DIR" },
    { "strategy", "GitHub's strategy: {matrix: ...} is a step's matrix here (matrix: {K: "
                  "[a, b]})" },
    { "expire_in", "GitLab's expire_in: artifacts are kept as long as their job, which the "
                   "broker's retention setting removes (evrun.yml: retention: {max_age: 30d})" },
    { "retention", "retention is the broker's and the runners' setting, for all pipelines "
                   "(evrun.yml: retention: {max_age: 30d, keep_per_pipeline: 100})" },
    { "default", "GitLab's default: write image, env, limits, cache at the top of the file, "
                 "where each is every step's unless the step sets its own, or share keys with "
                 "an anchor (.defaults: &d {...}, then <<: *d in a step)" },
    { "pipelines", "prunner's pipelines: NAME: tasks: layout: an evrun file holds one "
                   "pipeline, pipeline: NAME at the top and its tasks as steps: a list of "
                   "{name: N, run: ...}" },
};

/*  The same, in one record type only: GitLab's retry.when is evrun's
    retry.on, but a `when` at the top of a file is a step's key, not the
    pipeline's `on`. */
static const struct {
    const char *alias, *key;
    const evr_rectype_t *in;
} s_synonyms_in[] = {
    { "when", "on", &evr_retry_type },
};

#define S_NSYN (sizeof s_synonyms / sizeof s_synonyms[0])
#define S_NSYN_IN (sizeof s_synonyms_in / sizeof s_synonyms_in[0])

/*  Whether k is another system's word for a key of type (tags for the
    pipeline's labels): a step's tags is answered by s_foreign instead. */
static bool
s_synonym(const evr_rectype_t *type, const char *k)
{
    for (size_t i = 0; i < S_NSYN; i++)
        if (!strcmp(k, s_synonyms[i].alias) && evr_rec_field(type, s_synonyms[i].key))
            return true;
    return false;
}

/*  The key of type that the unknown key k probably means (a near-miss
    spelling of a key or of a synonym, whose target type has), or NULL. */
const char *
evr_yaml_suggest(const evr_rectype_t *type, const char *k)
{
    const char *cands[64 + S_NSYN + S_NSYN_IN];
    const char *target[64 + S_NSYN + S_NSYN_IN];
    size_t n = 0;
    for (size_t i = 0; i < type->nfields && i < 64; i++) {
        if (s_refused(type, type->fields[i].key))
            continue;
        cands[n] = type->fields[i].key;
        target[n++] = type->fields[i].key;
    }
    for (size_t i = 0; i < S_NSYN; i++)
        if (evr_rec_field(type, s_synonyms[i].key) && !s_refused(type, s_synonyms[i].key)) {
            cands[n] = s_synonyms[i].alias;
            target[n++] = s_synonyms[i].key;
        }
    for (size_t i = 0; i < S_NSYN_IN; i++)
        if (s_synonyms_in[i].in == type) {
            cands[n] = s_synonyms_in[i].alias;
            target[n++] = s_synonyms_in[i].key;
        }
    const char *near = evr_diag_near(k, cands, n);
    for (size_t i = 0; near && i < n; i++)
        if (cands[i] == near)
            return target[i];
    return NULL;
}

const char *
evr_yaml_foreign(const evr_rectype_t *type, const char *k)
{
    /* where the type has labels, label is its near miss (did you mean) */
    if (!strcmp(k, "label") && evr_rec_field(type, "labels"))
        return NULL;
    for (size_t i = 0; i < sizeof s_foreign / sizeof s_foreign[0]; i++)
        if (!strcmp(k, s_foreign[i].word) && !s_synonym(type, k))
            return s_foreign[i].instead;
    return NULL;
}

const char *
evr_yaml_enum_hint(const evr_field_t *f, const char *v)
{
    if (f != evr_rec_field(&evr_step_type, "when"))
        return NULL;
    if (!strcmp(v, "manual"))
        return " (GitLab's manual: evrun has no steps that wait for a person; put the step "
               "in a pipeline of its own, run when wanted: evrun-cli run, or start for a "
               "registered one)";
    if (!strcmp(v, "never"))
        return " (GitLab's never: remove the step, or comment it out)";
    if (!strcmp(v, "delayed"))
        return " (GitLab's delayed: a job waits before it starts with the pipeline's "
               "start_delay: 5m; a step has no delay)";
    if (!strcmp(v, "success()") || !strcmp(v, "failure()") || !strcmp(v, "always()"))
        return " (GitHub's if: success(), failure(), always() are when: on_success, "
               "on_failure, always here)";
    return NULL;
}

/*  Whether vn, the value of jobs: at the top of the file, is GitHub's
    jobs: a mapping of names to mappings with steps or runs-on. */
static bool
s_github_jobs(yaml_document_t *doc, const yaml_node_t *vn)
{
    if (vn->type != YAML_MAPPING_NODE
        || vn->data.mapping.pairs.start == vn->data.mapping.pairs.top)
        return false;
    yaml_node_t *job = yaml_document_get_node(doc, vn->data.mapping.pairs.start->value);
    if (!job || job->type != YAML_MAPPING_NODE)
        return false;
    for (yaml_node_pair_t *p = job->data.mapping.pairs.start; p < job->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE
            && (!strcmp((const char *) k->data.scalar.value, "steps")
                || !strcmp((const char *) k->data.scalar.value, "runs-on")))
            return true;
    }
    return false;
}

/*  Whether type is an arg's record: the loader reads an arg's keys with
    a copy of evr_arg_type without its name (the map key). */
static bool
s_arg(const evr_rectype_t *type)
{
    return !strcmp(type->name, evr_arg_type.name);
}

/*  Whether vn, the value of an unknown key at the top of the file, is a
    GitLab job: a mapping with script or stage. */
static bool
s_gitlab_job(yaml_document_t *doc, const yaml_node_t *vn)
{
    if (vn->type != YAML_MAPPING_NODE)
        return false;
    for (yaml_node_pair_t *p = vn->data.mapping.pairs.start; p < vn->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE
            && (!strcmp((const char *) k->data.scalar.value, "script")
                || !strcmp((const char *) k->data.scalar.value, "stage")))
            return true;
    }
    return false;
}

const char *
evr_yaml_unknown_key(yaml_document_t *doc, const yaml_node_t *vn, const evr_rectype_t *type,
                     const char *k, bool comma, char *buf, size_t size)
{
    char keys[512];
    evr_yaml_expected_keys(type, keys, sizeof keys);
    const char *instead = evr_yaml_foreign(type, k);
    const char *near = instead ? NULL : evr_yaml_suggest(type, k);
    /* GitHub's timeout-minutes, Buildkite's timeout_in_minutes: a number
       alone would be seconds here */
    bool minutes = evr_rec_field(type, "timeout")
        && (!strcmp(k, "timeout-minutes") || !strcmp(k, "timeout_in_minutes"));
    bool count = minutes && vn->type == YAML_SCALAR_NODE && vn->data.scalar.length
        && vn->data.scalar.length <= 6
        && strspn((const char *) vn->data.scalar.value, "0123456789") == vn->data.scalar.length;
    if (type == &evr_spec_type && !strcmp(k, "jobs") && s_github_jobs(doc, vn))
        snprintf(buf, size, "unknown key: GitHub's jobs: NAME: {runs-on, steps} layout: an "
                 "evrun file is one pipeline, its steps: at the top of the file, each {name: N, "
                 "run: ...} (several jobs: a file each, or steps with needs) (expected one of: "
                 "%s)", keys);
    else if (s_arg(type) && !strcmp(k, "required"))
        snprintf(buf, size, "unknown key: an arg without a default is required (-a NAME=VALUE "
                 "must give it); one with a default is not (expected one of: %s)", keys);
    else if (minutes) {
        near = "timeout";
        snprintf(buf, size, "unknown key; %s is timeout here, with its unit: timeout: %sm (a "
                 "number alone is seconds) (expected one of: %s)", k,
                 count ? (const char *) vn->data.scalar.value : "30", keys);
    }
    else if (instead)
        snprintf(buf, size, "unknown key: %s (expected one of: %s)", instead, keys);
    else if (near)
        snprintf(buf, size, "unknown key; did you mean %s? (expected one of: %s)", near, keys);
    else if (type == &evr_spec_type && evr_rec_field(&evr_step_type, k))
        snprintf(buf, size, "unknown key at the top of the file: %s is a key of a step; "
                 "indent it under its step (steps: - name: N, then %s: at the column of name:)",
                 k, k);
    else if (type == &evr_step_type && evr_rec_field(&evr_spec_type, k))
        snprintf(buf, size, "unknown key in a step: %s is a key of the pipeline, for all its "
                 "steps; write it at the top of the file, at the column of steps: (expected "
                 "one of: %s)", k, keys);
    else if (type == &evr_spec_type && s_gitlab_job(doc, vn))
        snprintf(buf, size, "unknown key: a GitLab job? evrun's jobs are steps, a list under "
                 "steps: (steps: - name: %s, then run: with its script) (expected one of: %s)",
                 k, keys);
    else if (comma)
        snprintf(buf, size, "unknown key, with no value: in {...} a \",\" ends a value, so is "
                 "this the rest of the value before it? quote a value that holds a \",\" "
                 "(run: 'echo \"a, b\"') (expected one of: %s)", keys);
    else
        snprintf(buf, size, "unknown key (expected one of: %s)", keys);
    return near;
}

void
evr_yaml_mapping_hint(const evr_rectype_t *type, const yaml_node_t *node, char *buf, size_t size)
{
    bool scalar = node->type == YAML_SCALAR_NODE;
    const char *v = scalar ? (const char *) node->data.scalar.value : "";
    size_t n = scalar ? node->data.scalar.length : 0;
    buf[0] = '\0';
    if (type == &evr_retry_type && scalar) {
        /* GitLab's, Buildkite's automatic retry count, given when it is one */
        bool count = n && n <= 3 && strspn(v, "0123456789") == n;
        snprintf(buf, size, " (retry: {max: %.*s, on: [failed]})", count ? (int) n : 1,
                 count ? v : "2");
    }
    else if (type == &evr_step_type && scalar && !strcmp(v, "wait"))
        snprintf(buf, size, " (Buildkite's wait: a step waits for others with needs here, "
                 "needs: [build])");
    else if (type == &evr_on_type)
        snprintf(buf, size, " (GitHub's on: [push] is on: {github: {events: [push]}} here, in "
                 "a registered pipeline)");
    else if (s_arg(type) && scalar && n <= 200)
        snprintf(buf, size, " (an arg's default is written {default: %s})", v);
    else if (type == &evr_on_error_type && scalar)
        snprintf(buf, size, " (on_error is a step without a name: on_error: {run: %s})",
                 n <= 200 ? v : "...");
    else if (type == &evr_on_error_type)
        snprintf(buf, size, " (on_error is one step without a name, on_error: {run: ...}; "
                 "several commands go in its run: |)");
    else if (type == &evr_git_type && scalar)
        snprintf(buf, size, " (git: {url: %s})", n <= 200 ? v : "URL");
}

/*  The name and value an item of an env written as a list stands for:
    "A=1" (Docker Compose's, GitHub services') or {name: A, value: "1"}
    (Kubernetes'); false for any other item. */
static bool
s_env_item(yaml_document_t *doc, const yaml_node_t *item, const char **name, size_t *nlen,
           const char **value, size_t *vlen)
{
    if (item->type == YAML_SCALAR_NODE) {
        const char *s = (const char *) item->data.scalar.value;
        const char *eq = memchr(s, '=', item->data.scalar.length);
        if (!eq || eq == s)
            return false;
        *name = s, *nlen = (size_t) (eq - s);
        *value = eq + 1, *vlen = item->data.scalar.length - *nlen - 1;
        return true;
    }
    if (item->type != YAML_MAPPING_NODE)
        return false;
    *name = *value = NULL;
    for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE)
            return false;
        if (!strcmp((const char *) k->data.scalar.value, "name"))
            *name = (const char *) v->data.scalar.value, *nlen = v->data.scalar.length;
        else if (!strcmp((const char *) k->data.scalar.value, "value"))
            *value = (const char *) v->data.scalar.value, *vlen = v->data.scalar.length;
        else
            return false;
    }
    return *name && *value;
}

void
evr_yaml_map_hint(yaml_document_t *doc, const evr_field_t *f, const yaml_node_t *node,
                     char *buf, size_t size)
{
    buf[0] = '\0';
    if (!strcmp(f->key, "args") && node->type == YAML_SEQUENCE_NODE) {
        snprintf(buf, size, " (args is a mapping of names to {default, description}: args: "
                 "{TARGET: {default: world}}, or TARGET: {} for one that -a must give)");
        return;
    }
    if (strcmp(f->key, "env") || node->type != YAML_SEQUENCE_NODE)
        return;
    char pairs[200] = "";
    size_t used = 0, n = 0, items = (size_t) (node->data.sequence.items.top
                                             - node->data.sequence.items.start);
    for (; n < items && n < 3; n++) {
        yaml_node_t *item = yaml_document_get_node(doc, node->data.sequence.items.start[n]);
        const char *name, *value;
        size_t nlen = 0, vlen = 0;
        if (!item || !s_env_item(doc, item, &name, &nlen, &value, &vlen) || nlen > 32
            || strcspn(name, "\"'\\\n") < nlen)
            break;
        /* the value in double quotes, cut: a hint, not the file's text */
        size_t vshow = strcspn(value, "\"\\\n");
        bool cut = vshow < vlen || vlen > 24;
        int w = snprintf(pairs + used, sizeof pairs - used, "%s%.*s: \"%.*s%s\"", n ? ", " : "",
                         (int) nlen, name, (int) (vshow < 24 ? vshow : 24), value,
                         cut ? "..." : "");
        if (w < 0 || (size_t) w >= sizeof pairs - used)
            break;
        used += (size_t) w;
    }
    if (n && n == (items < 3 ? items : 3))
        snprintf(buf, size, " (env is a mapping of names to values, not a list: env: {%s%s})",
                 pairs, items > n ? ", ..." : "");
    else
        snprintf(buf, size, " (env is a mapping of names to values, not a list: env: {NAME: "
                 "value}, or one NAME: value a line under env:)");
}
