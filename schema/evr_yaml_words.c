/*  evr_yaml_words.c: the words of the loader's unknown-key errors: the
    keys a record takes (on_error reads some of a step's keys only to
    refuse them: they are not offered), and what other CI systems call
    evrun's keys (GitLab's script, Buildkite's soft_fail...), answered
    with evrun's word. */
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
    { "timeout_in_minutes", "timeout" }, { "artifact_paths", "artifacts" },
    { "retries", "retry" },        { "if", "when" },           { "parallelism", "parallel" },
    { "container", "image" },      { "continue-on-error", "allow_failure" },
    { "continue_on_error", "allow_failure" }, { "timeout-minutes", "timeout" },
    { "runs-on", "labels" },
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
