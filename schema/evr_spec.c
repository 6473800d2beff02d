/*  evr_spec.c: field tables of the pipeline spec, their accessors, and the
    helpers of args, cache keys and step order (the semantic checks are in
    evr_spec_check.c). */
#include "evr_spec.h"
#include "evr_cron.h"

#include "evr_codec.h"
#include "evr_diag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- tables */

static const char *
s_check_strategy(const void *v)
{
    static const char *const names[] = { "append", "replace", "partitioned_replace", NULL };
    return evr_diag_one_of(*(char *const *) v, names);
}

static const char *const s_on_failure_names[] = { "stop", "finish", NULL };
const char *const evr_when_names[] = { "on_success", "on_failure", "always", NULL };
const char *const evr_executor_names[] = { "podman", "process", NULL };
/* index 0 ("") is "not set": no name to write, never encoded */
const char *const evr_pull_names[] = { "", "missing", "always", "never", NULL };
const char *const evr_network_names[] = { "", "none", "bridge", "host", NULL };
const char *const evr_catchup_names[] = { "one", "none", NULL };

static const char *
s_check_schedule(const void *v)
{
    static __thread char why[EVR_ERR_MAX];
    evr_cron_t cron;
    evr_err_t err;
    if (!evr_cron_parse(*(char *const *) v, &cron, &err))
        return NULL;
    snprintf(why, sizeof why, "%s", err.msg);
    return why;
}

static const char *
s_check_zone(const void *v)
{
    return evr_cron_zone_problem(*(char *const *) v);
}

static const char *
s_check_triggers(const void *v)
{
    static __thread char why[EVR_ERR_MAX];
    const evr_strlist_t *l = v;
    for (uint32_t i = 0; i < l->n; i++) {
        const char *p = evr_spec_trigger_problem(l->v[i]);
        if (p) {
            /* the value quoted: UTF-8 and on one line, cut with "…"; its
               place when the list has others (a file's is said at the
               item, checked alone: triggers[2]) */
            char q[68], at[24] = "";
            if (l->n > 1)
                snprintf(at, sizeof at, "item %u: ", i + 1);
            snprintf(why, sizeof why, "%s\"%s\": %s", at,
                     evr_text_escape_ctl(l->v[i], q, sizeof q), p);
            return why;
        }
    }
    return NULL;   /* a repeat: the whole spec's check (evr_spec_check.c) */
}

static const char *
s_check_cpus(const void *v)
{
    uint32_t milli;
    return evr_spec_cpus_milli(*(char *const *) v, &milli)
               ? NULL
               : "expected a number of CPUs above 0, at most 1024, with at most 3 decimals "
                 "(e.g. 0.5, 2)";
}

const char *
evr_spec_list_problem(const evr_strlist_t *list, const char *const *names)
{
    static __thread char why[EVR_ERR_MAX];
    size_t n = 0, at = 0;
    while (names[n])
        n++;
    for (uint32_t i = 0; i < list->n; i++) {
        size_t k = 0;
        while (k < n && strcmp(list->v[i], names[k]))
            k++;
        if (k < n)
            continue;
        at = (size_t) snprintf(why, sizeof why, "expected a list of: ");
        for (k = 0; k < n && at < sizeof why; k++)
            at += (size_t) snprintf(why + at, sizeof why - at, "%s, ", names[k]);
        const char *near = evr_diag_near(list->v[i], names, n);
        char q[68];   /* as s_check_triggers */
        if (at < sizeof why)
            snprintf(why + at, sizeof why - at, "got \"%s\"%s%s%s",
                     evr_text_escape_ctl(list->v[i], q, sizeof q),
                     near ? "; did you mean " : "", near ? near : "", near ? "?" : "");
        return why;
    }
    return NULL;
}

bool
evr_spec_item_repeats(const evr_strlist_t *list, uint32_t i)
{
    for (uint32_t j = 0; j < i && i < list->n; j++)
        if (!strcmp(list->v[j], list->v[i]))
            return true;
    return false;
}

/*  GitLab's retry:when words, and evrun's outcome for each. */
static const struct {
    const char *gitlab, *evrun;
} s_gitlab_retry[] = {
    { "always", "on: [failed, timed_out, lost]" },
    { "script_failure", "failed" },
    { "unknown_failure", "failed" },
    { "runner_system_failure", "lost" },
    { "runner_unsupported", "lost" },
    { "stuck_or_timeout_failure", "timed_out" },
    { "job_execution_timeout", "timed_out" },
};

static const char *
s_check_retry_on(const void *v)
{
    static const char *const names[] = { "lost", "failed", "timed_out", NULL };
    static __thread char why[EVR_ERR_MAX];
    const char *said = evr_spec_list_problem(v, names);   /* empty, repeats: evr_spec_check.c */
    const evr_strlist_t *l = v;
    for (uint32_t i = 0; said && i < l->n; i++)
        for (size_t k = 0; k < EVR_ARRAY_LEN(s_gitlab_retry); k++)
            if (!strcmp(l->v[i], s_gitlab_retry[k].gitlab)) {
                snprintf(why, sizeof why, "%s (GitLab's retry when: %s is %s here)", said,
                         s_gitlab_retry[k].gitlab, s_gitlab_retry[k].evrun);
                return why;
            }
    return said;
}

#define F(T, key, type, req, limit, member, sub, check, doc)                                     \
    { key, type, req, limit, offsetof(T, member), sub, check, NULL, doc, NULL, NULL }

static const evr_field_t s_arg_fields[] = {
    F(evr_arg_t, "name", EVR_FT_STR, true, EVR_SPEC_MAX_NAME, name, NULL, NULL,
      "the arg's name (the map key)"),
    F(evr_arg_t, "default", EVR_FT_STR, false, EVR_STR_MAX, def, NULL, NULL,
      "value when the command line gives none; without it the arg is required"),
    F(evr_arg_t, "description", EVR_FT_STR, false, EVR_STR_MAX, description, NULL, NULL,
      "what the arg is for"),
};
const evr_rectype_t evr_arg_type = { "arg", sizeof(evr_arg_t), s_arg_fields,
                                     EVR_ARRAY_LEN(s_arg_fields), EVR_NO_PRESENT, NULL };

static const evr_field_t s_resource_fields[] = {
    F(evr_resource_t, "name", EVR_FT_STR, true, EVR_SPEC_MAX_NAME, name, NULL, NULL,
      "resource name"),
    F(evr_resource_t, "url", EVR_FT_STR, true, EVR_SPEC_MAX_URL, url, NULL, NULL,
      "http:// or https:// URL fetched by the runner"),
    F(evr_resource_t, "path", EVR_FT_STR, true, EVR_SPEC_MAX_PATH, path, NULL, NULL,
      "destination relative to /workspace; tar archives are unpacked there"),
    F(evr_resource_t, "secret", EVR_FT_STR, false, EVR_SPEC_MAX_NAME, secret, NULL, NULL,
      "secret holding USER:PASSWORD (basic auth) or a token (bearer) for the URL's server"),
};
const evr_rectype_t evr_resource_type = { "resource", sizeof(evr_resource_t),
                                          s_resource_fields, EVR_ARRAY_LEN(s_resource_fields),
                                          EVR_NO_PRESENT, NULL };

static const evr_field_t s_queue_fields[] = {
    F(evr_queue_t, "limit", EVR_FT_U32_OPT, false, 0, limit, NULL, NULL,
      "most jobs of this pipeline waiting (accepted, not yet dispatched); 0: no wait list "
      "(a submit that would wait for concurrency is refused); absent: the broker's "
      "--queue-limit"),
    F(evr_queue_t, "strategy", EVR_FT_STR, false, 32, strategy, NULL, s_check_strategy,
      "append (a full wait list refuses), replace (the newest replaces waiting jobs) or "
      "partitioned_replace (the same, per value of partition_by)"),
    F(evr_queue_t, "partition_by", EVR_FT_STR, false, EVR_SPEC_MAX_NAME, partition_by, NULL,
      NULL, "partitioned_replace: the arg whose value (after defaults) names the partition"),
    F(evr_queue_t, "interrupt", EVR_FT_BOOL, false, 0, interrupt, NULL, NULL,
      "replace, partitioned_replace: a submit also cancels the running jobs of the pipeline "
      "(of its partition)"),
};
const evr_rectype_t evr_queue_type = { "queue", sizeof(evr_queue_t), s_queue_fields,
                                       EVR_ARRAY_LEN(s_queue_fields),
                                       offsetof(evr_queue_t, present), NULL };

static const evr_field_t s_retry_fields[] = {
    F(evr_retry_t, "on", EVR_FT_STRLIST, true, 3, on, NULL, s_check_retry_on,
      "outcomes that retry the step: lost, failed, timed_out"),
    F(evr_retry_t, "max", EVR_FT_U32, true, 0, max, NULL, NULL, "further attempts at most, 0 to 100"),
};
const evr_rectype_t evr_retry_type = { "retry", sizeof(evr_retry_t), s_retry_fields,
                                       EVR_ARRAY_LEN(s_retry_fields),
                                       offsetof(evr_retry_t, present), NULL };

static const evr_field_t s_limits_fields[] = {
    F(evr_limits_t, "nofile", EVR_FT_U64, false, 0, nofile, NULL, NULL,
      "open files per process (RLIMIT_NOFILE)"),
    F(evr_limits_t, "nproc", EVR_FT_U64, false, 0, nproc, NULL, NULL,
      "processes of the runner's user, all of them counted (RLIMIT_NPROC)"),
    F(evr_limits_t, "cpu", EVR_FT_DURATION, false, 0, cpu, NULL, NULL,
      "CPU time per process, whole seconds rounded up (RLIMIT_CPU: killed once used up)"),
    F(evr_limits_t, "memory", EVR_FT_BYTES, false, 0, memory, NULL, NULL,
      "bytes (YAML: 512M, 2G): podman: the container's memory (cgroup), at least 6M; "
      "process: address space per process (RLIMIT_AS)"),
    F(evr_limits_t, "cpus", EVR_FT_STR, false, 16, cpus, NULL, s_check_cpus,
      "podman: CPU time of the container, in CPUs (0.5, 2)"),
    F(evr_limits_t, "pids", EVR_FT_U64, false, 0, pids, NULL, NULL,
      "podman: processes and threads in the container at once"),
};
const evr_rectype_t evr_limits_type = { "limits", sizeof(evr_limits_t), s_limits_fields,
                                        EVR_ARRAY_LEN(s_limits_fields),
                                        offsetof(evr_limits_t, present), NULL };

static const evr_field_t s_git_fields[] = {
    F(evr_git_t, "url", EVR_FT_STR, true, EVR_SPEC_MAX_URL, url, NULL, NULL,
      "https://, http://, git://, ssh:// or file:// URL of the repository (no password: "
      "name a secret)"),
    F(evr_git_t, "ref", EVR_FT_STR, false, EVR_SPEC_MAX_REF, ref, NULL, NULL,
      "branch, tag or full commit SHA; default: the remote's HEAD"),
    F(evr_git_t, "depth", EVR_FT_U32, false, 0, depth, NULL, NULL,
      "commits of history fetched (a shallow clone); 0 or absent: all"),
    F(evr_git_t, "submodules", EVR_FT_BOOL, false, 0, submodules, NULL, NULL,
      "check out the commit's submodules too (one level)"),
    F(evr_git_t, "secret", EVR_FT_STR, false, EVR_SPEC_MAX_NAME, secret, NULL, NULL,
      "secret holding USER:PASSWORD or a token for an http(s) repository"),
};
const evr_rectype_t evr_git_type = { "git", sizeof(evr_git_t), s_git_fields,
                                     EVR_ARRAY_LEN(s_git_fields),
                                     offsetof(evr_git_t, present), NULL };

static const evr_field_t s_source_fields[] = {
    F(evr_source_t, "git", EVR_FT_RECORD, false, 0, git, &evr_git_type, NULL,
      "a commit of a git repository, checked out on the runner"),
    F(evr_source_t, "copy", EVR_FT_STR, false, EVR_SPEC_MAX_PATH, copy, NULL, NULL,
      "a directory: the submitter's (sent as a tar) or, with --exec, the runner's"),
    F(evr_source_t, "tarball", EVR_FT_STR, false, EVR_SPEC_MAX_URL, tarball, NULL, NULL,
      "an http(s) URL of a tar archive (plain, gzip, bzip2 or xz; a download that is none "
      "fails the job: `not a tar archive`), fetched by the runner"),
    F(evr_source_t, "secret", EVR_FT_STR, false, EVR_SPEC_MAX_NAME, secret, NULL, NULL,
      "with tarball: a secret holding USER:PASSWORD (basic auth) or a token (bearer) for "
      "its server"),
};
const evr_rectype_t evr_source_type = { "source", sizeof(evr_source_t), s_source_fields,
                                        EVR_ARRAY_LEN(s_source_fields),
                                        offsetof(evr_source_t, present), NULL };
/*  `source: none` in a pipeline file: the same as no source. */
static const char *const s_none_words[] = { "none", NULL };
static const char *const s_artifacts_when_names[] = { "on_success", "on_failure", "always",
                                                      NULL };

static const evr_field_t s_artifacts_fields[] = {
    F(evr_artifacts_t, "paths", EVR_FT_STRLIST, true, 64, paths, NULL, NULL,
      "paths relative to /workspace copied out after the step, each as named (a file, or a "
      "directory whole): no glob character (* ?; a [ is taken as named)"),
    { "when", EVR_FT_ENUM, false, 0, offsetof(evr_artifacts_t, when), NULL, NULL, NULL,
      "after which outcome: on_success, on_failure (timed out included) or always; a "
      "cancelled step keeps none", s_artifacts_when_names, NULL },
};
const evr_rectype_t evr_artifacts_type = { "artifacts", sizeof(evr_artifacts_t),
                                           s_artifacts_fields, EVR_ARRAY_LEN(s_artifacts_fields),
                                           offsetof(evr_artifacts_t, present), NULL };

static const evr_field_t s_cache_fields[] = {
    F(evr_cache_t, "key", EVR_FT_STR, true, EVR_SPEC_MAX_CACHE_KEY, key, NULL, NULL,
      "names the cache with the pipeline; may hold {{ sha256 FILE }} of a workspace file"),
    F(evr_cache_t, "path", EVR_FT_STR, true, EVR_SPEC_MAX_PATH, path, NULL, NULL,
      "where it is mounted: absolute, or relative to /workspace; one directory, no glob "
      "character (* ?; a [ is taken as named)"),
};
const evr_rectype_t evr_cache_type = { "cache", sizeof(evr_cache_t), s_cache_fields,
                                       EVR_ARRAY_LEN(s_cache_fields), EVR_NO_PRESENT, NULL };

static const evr_field_t s_matrix_fields[] = {
    F(evr_matrix_t, "name", EVR_FT_STR, true, EVR_SPEC_MAX_NAME, name, NULL, NULL,
      "an environment variable name (the map key)"),
    F(evr_matrix_t, "values", EVR_FT_STRLIST, true, EVR_SPEC_MAX_MATRIX_VALUES, values, NULL,
      NULL, "its values (letters, digits, _ . -), a step each"),
};
const evr_rectype_t evr_matrix_type = { "matrix", sizeof(evr_matrix_t), s_matrix_fields,
                                        EVR_ARRAY_LEN(s_matrix_fields), EVR_NO_PRESENT, NULL };

/* a step's keys after name: a step's and on_error's */
#define S_STEP_KEYS                                                                                            \
    F(evr_step_t, "run", EVR_FT_STR, true, EVR_SPEC_MAX_RUN, run, NULL, NULL,                                  \
      "shell script run with /bin/sh -c in /workspace"),                                                       \
    F(evr_step_t, "image", EVR_FT_STR, false, 512, image, NULL, NULL,                                          \
      "container image; default: the pipeline's image"),                                                       \
    F(evr_step_t, "needs", EVR_FT_STRLIST, false, EVR_SPEC_MAX_STEPS, needs, NULL, NULL,                       \
      "steps that must succeed before this one (makes the pipeline a DAG)"),                                   \
    { "matrix", EVR_FT_RECMAP, false, EVR_SPEC_MAX_MATRIX_KEYS, offsetof(evr_step_t, matrix),                  \
      &evr_matrix_type, NULL, NULL,                                                                            \
      "pipeline file only: {KEY: [v1, v2]}, one step per combination, NAME[KEY=v1,...], "                      \
      "KEY=v1 in its env; a spec on the wire holds the expanded steps", NULL, "values" },                      \
    F(evr_step_t, "timeout", EVR_FT_DURATION, false, 0, timeout, NULL, NULL,                                   \
      "step time limit (90s, 5m, 1h30m), counted from step.started: the wait for its needs, its "              \
      "image's pull (limited on its own, 30 minutes) and its container's creation are not in it; "           \
      "the pipeline's timeout covers them all, pulls included; 0 or absent: none"),                          \
    { "artifacts", EVR_FT_RECORD, false, 0, offsetof(evr_step_t, artifacts),                                   \
      &evr_artifacts_type, NULL, NULL,                                                                         \
      "files copied out after the step: {paths, when}, or a list of paths (when on_success)",                  \
      NULL, "paths" },                                                                                         \
    F(evr_step_t, "env", EVR_FT_STRMAP, false, 256, env, NULL, NULL,                                           \
      "environment of this step, over the pipeline's"),                                                        \
    F(evr_step_t, "retry", EVR_FT_RECORD, false, 0, retry, &evr_retry_type, NULL,                              \
      "retry policy"),                                                                                         \
    F(evr_step_t, "limits", EVR_FT_RECORD, false, 0, limits, &evr_limits_type, NULL,                           \
      "resource limits of this step, over the pipeline's key by key; a key 0 or absent: "                      \
      "the pipeline's (none when it has none)"),                                                               \
    F(evr_step_t, "untrusted", EVR_FT_BOOL, false, 0, untrusted, NULL, NULL,                                   \
      "the step runs untrusted code (the source's): it is given no secrets and mounts its caches read-only; "  \
      "podman only (refused in a process pipeline, whose steps can read the runner's secrets)"),                \
    { "pull", EVR_FT_ENUM, false, 0, offsetof(evr_step_t, pull), NULL, NULL, NULL,                             \
      "when its image is pulled: missing, always or never; default: the pipeline's",                           \
      evr_pull_names, NULL },                                                                                  \
    { "network", EVR_FT_ENUM, false, 0, offsetof(evr_step_t, network), NULL, NULL, NULL,                       \
      "its network: none, bridge or host; default: the pipeline's", evr_network_names, NULL },                 \
    F(evr_step_t, "cache", EVR_FT_RECLIST, false, EVR_SPEC_MAX_CACHES, cache, &evr_cache_type,                 \
      NULL, "caches of this step, over the pipeline's (the same path: this step's)"),                          \
    F(evr_step_t, "allow_failure", EVR_FT_BOOL, false, 0, allow_failure, NULL, NULL,                           \
      "its failure (failed, timed out) does not fail the job: shown as failed (allowed)"),                     \
    { "when", EVR_FT_ENUM, false, 0, offsetof(evr_step_t, when), NULL, NULL, NULL,                             \
      "when it runs: on_success (no step failed; default), on_failure (one failed) or "                        \
      "always (after a cancel or a timeout too, for 60s at most)", evr_when_names, NULL },

static const evr_field_t s_step_fields[] = {
    F(evr_step_t, "name", EVR_FT_STR, true, EVR_SPEC_MAX_NAME, name, NULL, NULL,
      "step name, unique in the pipeline"),
    S_STEP_KEYS
};
const evr_rectype_t evr_step_type = { "step", sizeof(evr_step_t), s_step_fields,
                                      EVR_ARRAY_LEN(s_step_fields), EVR_NO_PRESENT, NULL };
/* the same keys, name optional: it is read so that validation refuses it
   (evr_spec_flow.c) in a submit too, where an unknown key is ignored */
static const evr_field_t s_on_error_fields[] = {
    F(evr_step_t, "name", EVR_FT_STR, false, EVR_SPEC_MAX_NAME, name, NULL, NULL,
      "refused: on_error's name is always on_error"),
    S_STEP_KEYS
};
const evr_rectype_t evr_on_error_type = { "step", sizeof(evr_step_t), s_on_error_fields,
                                          EVR_ARRAY_LEN(s_on_error_fields),
                                          offsetof(evr_step_t, present), NULL };

static const evr_field_t s_spec_fields[] = {
    F(evr_spec_t, "pipeline", EVR_FT_STR, true, EVR_SPEC_MAX_NAME, pipeline, NULL, NULL,
      "the pipeline's name"),
    { "executor", EVR_FT_ENUM, false, 0, offsetof(evr_spec_t, executor), NULL, NULL, NULL,
      "what runs the steps: podman (a container each) or process (a host process group, "
      "on a runner that offers it)", evr_executor_names, NULL },
    F(evr_spec_t, "image", EVR_FT_STR, false, 512, image, NULL, NULL,
      "default image of the steps"),
    F(evr_spec_t, "labels", EVR_FT_STRLIST, false, 32, labels, NULL, NULL,
      "a runner must have all of these labels"),
    F(evr_spec_t, "concurrency", EVR_FT_U32, false, 0, concurrency, NULL, NULL,
      "running jobs of this pipeline at once; 0 = no limit"),
    F(evr_spec_t, "parallel", EVR_FT_U32, false, 0, parallel, NULL, NULL,
      "steps of one job running at once; 0 = the runner's default"),
    F(evr_spec_t, "dag", EVR_FT_BOOL, false, 0, dag, NULL, NULL,
      "the steps run as a DAG though no step needs another (one without needs starts at "
      "once; one with when: on_failure or always after every step above it); a pipeline "
      "file may say dag: true, or a step needs: [] (or needs: with no value)"),
    { "on_failure", EVR_FT_ENUM, false, 0, offsetof(evr_spec_t, on_failure), NULL, NULL, NULL,
      "when a step fails: stop (the steps still running are stopped) or finish (they "
      "finish); steps not started are skipped either way", s_on_failure_names, NULL },
    F(evr_spec_t, "on_error", EVR_FT_RECORD, false, 0, on_error, &evr_on_error_type, NULL,
      "a step (a step's keys but name, needs, when, allow_failure) run once the job has "
      "failed or timed out, after every step; named on_error"),
    F(evr_spec_t, "queue", EVR_FT_RECORD, false, 0, queue, &evr_queue_type, NULL,
      "queue policy"),
    F(evr_spec_t, "start_delay", EVR_FT_DURATION, false, 0, start_delay, NULL, NULL,
      "a job waits this long after its submit before it may be dispatched (with replace: a "
      "debounce)"),
    F(evr_spec_t, "timeout", EVR_FT_DURATION, false, 0, timeout, NULL, NULL,
      "time limit of the whole job; 0 or absent: none"),
    F(evr_spec_t, "env", EVR_FT_STRMAP, false, 256, env, NULL, NULL,
      "environment of every step"),
    F(evr_spec_t, "args", EVR_FT_RECMAP, false, 64, args, &evr_arg_type, NULL,
      "arguments, set with -a NAME=VALUE, given to every step as environment"),
    F(evr_spec_t, "secrets", EVR_FT_STRLIST, false, 64, secrets, NULL, NULL,
      "names of secrets read on the runner host, given as environment, masked in output"),
    F(evr_spec_t, "resources", EVR_FT_RECLIST, false, 64, resources, &evr_resource_type, NULL,
      "files fetched over HTTP into /workspace before the first step"),
    F(evr_spec_t, "steps", EVR_FT_RECLIST, true, EVR_SPEC_MAX_STEPS, steps, &evr_step_type,
      NULL, "the steps, run in order or as a DAG when any step has needs"),
    { "source", EVR_FT_RECORD, false, 0, offsetof(evr_spec_t, source), &evr_source_type, NULL,
      NULL, "the code under test, at /job/src: git, copy or tarball (or none)", s_none_words, NULL },
    { "ci_source", EVR_FT_RECORD, false, 0, offsetof(evr_spec_t, ci_source), &evr_source_type,
      NULL, NULL, "trusted CI code, at /job/ci, read-only in every step: git, copy or tarball",
      s_none_words, NULL },
    { "pull", EVR_FT_ENUM, false, 0, offsetof(evr_spec_t, pull), NULL, NULL, NULL,
      "when the runner pulls a step's image: missing (not in its storage), always (once "
      "per job) or never; default missing", evr_pull_names, NULL },
    { "network", EVR_FT_ENUM, false, 0, offsetof(evr_spec_t, network), NULL, NULL, NULL,
      "the steps' network: none (loopback only), bridge (podman's NAT bridge) or host; "
      "default bridge", evr_network_names, NULL },
    F(evr_spec_t, "registry_auth", EVR_FT_STR, false, EVR_SPEC_MAX_NAME, registry_auth, NULL,
      NULL, "a secret (read as secrets are) holding user:password for pulling the images"),
    F(evr_spec_t, "limits", EVR_FT_RECORD, false, 0, limits, &evr_limits_type, NULL,
      "resource limits of every step (cpus, memory, pids; process: nofile, nproc, cpu)"),
    F(evr_spec_t, "cache", EVR_FT_RECLIST, false, EVR_SPEC_MAX_CACHES, cache, &evr_cache_type,
      NULL, "caches of every step: a volume per pipeline and key, kept on the runner"),
    F(evr_spec_t, "schedule", EVR_FT_STR, false, EVR_CRON_MAX_EXPR, schedule, NULL,
      s_check_schedule, "cron expression (minute hour day-of-month month day-of-week): the "
      "broker starts a registered pipeline at those times; ignored in a submitted file"),
    F(evr_spec_t, "timezone", EVR_FT_STR, false, EVR_CRON_MAX_TZ, tz, NULL, s_check_zone,
      "IANA time zone of schedule (Area/City, from /usr/share/zoneinfo); default UTC"),
    { "catchup", EVR_FT_ENUM, false, 0, offsetof(evr_spec_t, catchup), NULL, NULL, NULL,
      "fire times missed while the broker was down: one (one job for them all, default) "
      "or none (skipped, logged)", evr_catchup_names, NULL },
    F(evr_spec_t, "on", EVR_FT_RECORD, false, 0, on, &evr_on_type, NULL,
      "outside events that start a registered pipeline (evrun-gateway): github"),
    F(evr_spec_t, "triggers", EVR_FT_STRLIST, false, EVR_SPEC_MAX_TRIGGERS, triggers, NULL,
      s_check_triggers, "registered pipelines a step of the job may start (evrun-job "
      "trigger), parent job and step recorded in the new job; file:PATH: a pipeline file "
      "of the job's source (its ci_source when it has one), PATH a glob (evrun-job trigger "
      "--file)"),
};
const evr_rectype_t evr_spec_type = { "spec", sizeof(evr_spec_t), s_spec_fields,
                                      EVR_ARRAY_LEN(s_spec_fields), EVR_NO_PRESENT, NULL };

/* ------------------------------------------------------------- accessors */

evr_step_t *
evr_spec_step(const evr_spec_t *spec, uint32_t i)
{
    return evr_reclist_at(&evr_step_type, &spec->steps, i);
}

evr_arg_t *
evr_spec_arg(const evr_spec_t *spec, uint32_t i)
{
    return evr_reclist_at(&evr_arg_type, &spec->args, i);
}

evr_resource_t *
evr_spec_resource(const evr_spec_t *spec, uint32_t i)
{
    return evr_reclist_at(&evr_resource_type, &spec->resources, i);
}

evr_cache_t *
evr_spec_cache(const evr_reclist_t *cache, uint32_t i)
{
    return evr_reclist_at(&evr_cache_type, cache, i);
}

const char *
evr_executor_label(uint32_t executor)
{
    switch (executor) {
    case EVR_EXECUTOR_PODMAN: return EVR_EXECUTOR_PODMAN_LABEL;
    case EVR_EXECUTOR_PROCESS: return EVR_EXECUTOR_PROCESS_LABEL;
    default: return NULL;
    }
}

const char *
evr_spec_executor_label(const evr_spec_t *spec)
{
    return evr_executor_label(spec->executor);
}

bool
evr_spec_runner_has_label(const evr_strlist_t *labels, const char *label)
{
    bool names_executor = false;
    size_t plen = strlen(EVR_EXECUTOR_LABEL_PREFIX);
    for (uint32_t i = 0; i < labels->n; i++) {
        if (!strcmp(labels->v[i], label))
            return true;
        names_executor |= !strncmp(labels->v[i], EVR_EXECUTOR_LABEL_PREFIX, plen);
    }
    return !names_executor && !strcmp(label, EVR_EXECUTOR_PODMAN_LABEL);
}

bool
evr_spec_has_source(const evr_spec_t *spec)
{
    return spec->source.present || spec->ci_source.present;
}

const char *
evr_source_kind(const evr_source_t *src)
{
    if (!src->present)
        return NULL;
    return src->git.present ? "git" : src->copy ? "copy" : src->tarball ? "tarball" : NULL;
}

const char *
evr_source_url(const evr_source_t *src)
{
    if (!src->present)
        return NULL;
    return src->git.present ? src->git.url : src->copy ? src->copy : src->tarball;
}

static __thread uint64_t s_lookup_work;   /* evr_spec_lookup_work */

uint64_t
evr_spec_lookup_work(void)
{
    return s_lookup_work;
}

int
evr_spec_step_index(const evr_spec_t *spec, const char *name)
{
    for (uint32_t i = 0; i < spec->steps.n; i++) {
        s_lookup_work++;
        const char *n = evr_spec_step(spec, i)->name;
        if (n && strcmp(n, name) == 0)
            return (int) i;
    }
    return -1;
}

uint32_t
evr_spec_job_steps(const evr_spec_t *spec)
{
    return spec->steps.n + (spec->on_error.present ? 1 : 0);
}

const char *
evr_spec_job_step_name(const evr_spec_t *spec, uint32_t i)
{
    return i < spec->steps.n ? evr_spec_step(spec, i)->name : EVR_ON_ERROR_NAME;
}

evr_spec_t *
evr_spec_new(void)
{
    return evr_calloc(1, sizeof(evr_spec_t));
}

void
evr_spec_destroy(evr_spec_t **self_p)
{
    if (!*self_p)
        return;
    evr_rec_free(&evr_spec_type, *self_p);
    free(*self_p);
    *self_p = NULL;
}

evr_spec_t *
evr_spec_stub(const evr_spec_t *spec)
{
    evr_spec_t *s = evr_spec_new();
    s->pipeline = spec->pipeline ? evr_strdup(spec->pipeline) : NULL;
    s->executor = spec->executor;
    s->image = spec->image ? evr_strdup(spec->image) : NULL;
    for (uint32_t i = 0; i < spec->labels.n; i++)
        evr_strlist_push(&s->labels, spec->labels.v[i]);
    s->steps.n = spec->steps.n;
    s->steps.v = evr_calloc(spec->steps.n ? spec->steps.n : 1, sizeof(evr_step_t));
    for (uint32_t i = 0; i < spec->steps.n; i++) {
        const evr_step_t *from = evr_spec_step(spec, i);
        evr_step_t *to = evr_spec_step(s, i);
        to->name = evr_strdup(from->name ? from->name : "");
        to->run = evr_strdup("");
        to->image = from->image ? evr_strdup(from->image) : NULL;
    }
    return s;
}

/*  Skips blanks at *p. */
static void
s_blanks(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

const char *
evr_spec_cache_key_walk(const char *key, evr_cache_piece_fn *fn, void *arg)
{
    static __thread char why[EVR_SPEC_MAX_PATH + 128];
    int files = 0;
    const char *p = key;
    while (*p) {
        const char *open = strstr(p, "{{");
        if (!open) {
            if (fn)
                fn(false, p, strlen(p), arg);
            break;
        }
        if (open > p && fn)
            fn(false, p, (size_t) (open - p), arg);
        const char *q = open + 2;
        s_blanks(&q);
        if (strncmp(q, "sha256", 6) != 0 || (q[6] != ' ' && q[6] != '\t'))
            return "expected {{ sha256 FILE }} (the only template of a cache key)";
        q += 6;
        s_blanks(&q);
        const char *file = q;
        while (*q && *q != ' ' && *q != '\t' && *q != '}')
            q++;
        size_t n = (size_t) (q - file);
        s_blanks(&q);
        if (strncmp(q, "}}", 2) != 0 || n == 0)
            return "expected {{ sha256 FILE }}: a file name, then }}";
        if (++files > 4)
            return "at most 4 {{ sha256 FILE }} in one key";
        char *f = evr_strndup(file, n);
        const char *bad = evr_spec_path_problem(f);
        if (bad)
            snprintf(why, sizeof why, "{{ sha256 %s }}: %s", f, bad);
        free(f);
        if (bad)
            return why;
        if (fn)
            fn(true, file, n, arg);
        p = q + 2;
    }
    return NULL;
}

bool
evr_spec_parse_arg(const char *kv, evr_strmap_t *map)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv || (size_t) (eq - kv) > EVR_SPEC_MAX_NAME)
        return false;
    char *k = evr_strndup(kv, (size_t) (eq - kv));
    bool ok = evr_spec_env_name_ok(k);
    if (ok)
        evr_strmap_set(map, k, eq + 1);
    free(k);
    return ok;
}

int
evr_spec_add_arg(const char *kv, evr_strmap_t *map)
{
    evr_strmap_t one = { 0 };
    int r = !evr_spec_parse_arg(kv, &one) ? -1 : evr_strmap_get(map, one.k[0]) ? 1 : 0;
    if (!r)
        evr_strmap_set(map, one.k[0], one.v[0]);
    evr_strmap_free(&one);
    return r;
}

evr_rc_t
evr_spec_bind_args(const evr_spec_t *spec, const evr_strmap_t *given, evr_strmap_t *resolved,
                   evr_diag_t *diag)
{
    size_t before = evr_diag_count(diag);
    for (uint32_t i = 0; i < given->n; i++) {
        bool known = false;
        for (uint32_t j = 0; j < spec->args.n && !known; j++)
            known = evr_spec_arg(spec, j)->name
                 && strcmp(evr_spec_arg(spec, j)->name, given->k[i]) == 0;
        if (!known) {   /* args.NAME, however the client gave it (evrun-cli -a, the
                           gateway's body.args or ?arg=) */
            char p[128];
            if (snprintf(p, sizeof p, "args.%s", given->k[i]) >= (int) sizeof p)
                evr_text_cut(p, sizeof p - 1);  /* on a character */
            const char *names[64];     /* the args: limit (64) */
            uint32_t n = 0;
            for (uint32_t j = 0; j < spec->args.n && n < 64; j++)
                if (evr_spec_arg(spec, j)->name)
                    names[n++] = evr_spec_arg(spec, j)->name;
            const char *near = evr_diag_near(given->k[i], names, n);
            if (near)
                evr_diag_add_at(diag, 0, 0, p, "the pipeline declares no arg \"%s\"; did you "
                                "mean %s?", given->k[i], near);
            else
                evr_diag_add_at(diag, 0, 0, p, "the pipeline declares no arg \"%s\" (declare "
                                "it under args:, or leave it out)", given->k[i]);
        }
    }
    for (uint32_t j = 0; j < spec->args.n; j++) {
        const evr_arg_t *a = evr_spec_arg(spec, j);
        if (!a->name)
            continue;
        const char *v = evr_strmap_get(given, a->name);
        if (!v)
            v = a->def;
        if (v)
            evr_strmap_set(resolved, a->name, v);
        else {
            char p[128];
            snprintf(p, sizeof p, "args.%s", a->name);
            evr_diag_add(diag, p, "no default and not given (use -a %s=VALUE)", a->name);
        }
    }
    return evr_diag_count(diag) > before ? EVR_ERR_SPEC : EVR_OK;
}

bool
evr_spec_topo_order(const evr_spec_t *spec, uint32_t *order)
{
    /* Kahn's algorithm, stable: among ready steps the earliest in the file
       goes first, so a pipeline without needs keeps its written order. */
    uint32_t n = spec->steps.n, done = 0;
    bool *placed = evr_calloc(n, sizeof(bool));
    while (done < n) {
        bool progress = false;
        for (uint32_t i = 0; i < n; i++) {
            if (placed[i])
                continue;
            const evr_step_t *st = evr_spec_step(spec, i);
            bool ready = true;
            for (uint32_t k = 0; k < st->needs.n && ready; k++) {
                int j = evr_spec_step_index(spec, st->needs.v[k]);
                ready = j >= 0 && placed[j] && (uint32_t) j != i;
            }
            if (ready) {
                placed[i] = true;
                order[done++] = i;
                progress = true;
                break;
            }
        }
        if (!progress)
            break;
    }
    free(placed);
    return done == n;
}
