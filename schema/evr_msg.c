/*  evr_msg.c: message field tables, header frames and the message codec. */
#include "evr_msg.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_codec.h"
#include "evr_codec_read.h"

static const char *
s_check_ulid(const void *v)
{
    return evr_ulid_problem(*(char *const *) v);
}

static const char *
s_check_tpath(const void *v)
{
    return evr_spec_trigger_path_problem(*(char *const *) v);
}

static const char *
s_check_id(const void *v)
{
    const char *s = *(char *const *) v;
    return evr_spec_name_ok(s) ? NULL : "expected letters, digits, _ . - (at most 64)";
}

static const char *
s_check_step(const void *v)
{
    return evr_spec_step_name_ok(*(char *const *) v)
               ? NULL
               : "expected a step name: letters, digits, _ . - (or NAME[K=v,...]; at most 64)";
}

static const char *
s_check_status(const void *v)
{
    const char *s = *(char *const *) v;
    static const char *const names[] = { "queued", "running", "paused", "succeeded", "failed",
                                         "cancelled", "timed_out", "lost", NULL };
    return evr_event_status_ok(s) ? NULL : evr_diag_one_of(s, names);
}

/*  Whether an item of l repeats one before it: said in why (l's own
    item quoted, "\"gpu\" at [2] repeats [0]").  A list of labels is a
    set: a repeat means nothing, and is refused as a pipeline's is. */
static bool
s_repeat(const evr_strlist_t *l, char *why, size_t size)
{
    for (uint32_t i = 1; i < l->n; i++)
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(l->v[i], l->v[j])) {
                char q[68];   /* as s_check_names */
                snprintf(why, size, "\"%s\" at [%u] repeats [%u]",
                         evr_text_escape_ctl(l->v[i], q, sizeof q), i, j);
                return true;
            }
    return false;
}

/*  A runner's or provider's labels (hello, runner, provider): each once;
    their names are the sender's (an executor:NAME one checked by the
    broker). */
static const char *
s_check_once(const void *v)
{
    static __thread char why[120];
    return s_repeat(v, why, sizeof why) ? why : NULL;
}

static const char *
s_check_names(const void *v)
{
    static __thread char why[200];
    const evr_strlist_t *l = v;
    for (uint32_t i = 0; i < l->n; i++)
        if (!evr_spec_name_ok(l->v[i])) {
            char q[68];   /* the value quoted: UTF-8 and on one line, cut with "…" */
            snprintf(why, sizeof why, "expected names: letters, digits, _ . - (at most 64 "
                     "bytes each), got \"%s\" at [%u]",
                     evr_text_escape_ctl(l->v[i], q, sizeof q), i);
            return why;
        }
    return s_repeat(l, why, sizeof why) ? why : NULL;
}

static const char *
s_check_state(const void *v)
{
    static const char *const names[] = { "idle", "busy", "draining", "lost", "stopped", NULL };
    return evr_diag_one_of(*(char *const *) v, names);
}

static const char *
s_check_command(const void *v)
{
    static const char *const names[] = { "cancel", "pause", "resume", "drain", NULL };
    return evr_diag_one_of(*(char *const *) v, names);
}

static const char *
s_check_code(const void *v)
{
    const char *s = *(char *const *) v;
    for (size_t i = 0; evr_msg_codes[i][0]; i++)
        if (strcmp(s, evr_msg_codes[i][0]) == 0)
            return NULL;
    return "unknown error code";
}

/*  The diag of a spec check that found nothing, kept for the thread's
    next (a broker checks every submit's spec): one per thread, freed when
    the thread ends. */
static pthread_key_t s_diag_key;
static pthread_once_t s_diag_once = PTHREAD_ONCE_INIT;
static __thread evr_diag_t *s_diag;

static void
s_diag_free(void *diag)
{
    evr_diag_t *d = diag;
    evr_diag_destroy(&d);
}

static void
s_diag_key_make(void)
{
    if (pthread_key_create(&s_diag_key, s_diag_free) != 0) {
        fprintf(stderr, "evrun: pthread_key_create failed\n");
        abort();
    }
}

static const char *
s_check_spec(const void *v)
{
    /* The table checked types and limits; names, needs and cycles too.
       The reason names the first problem; the buffer is per thread. */
    static __thread char why[EVR_ERR_MAX];
    const evr_spec_t *spec = *(evr_spec_t *const *) v;
    pthread_once(&s_diag_once, s_diag_key_make);
    evr_diag_t *diag = s_diag ? s_diag : evr_diag_new("spec");
    s_diag = NULL;
    pthread_setspecific(s_diag_key, NULL);
    evr_rc_t rc = evr_spec_validate(spec, diag);
    if (rc) {
        const char *first = evr_diag_get(diag, 0) + strlen("spec: ");
        snprintf(why, sizeof why, "invalid pipeline: %s", first);
        evr_diag_destroy(&diag);
        return why;
    }
    s_diag = diag;      /* it holds nothing: no error, no mark */
    pthread_setspecific(s_diag_key, diag);
    return NULL;
}

#define M(key, type, R, limit, member, sub, check, doc)                                          \
    { key, type, R, limit, offsetof(evr_msg_t, member), sub, check, NULL, doc, NULL, NULL }
#define JOB(R) M("job", EVR_FT_STR, R, EVR_ULID_LEN, job, NULL, s_check_ulid, "job id (ULID)")
#define RUNNER(R) M("runner", EVR_FT_STR, R, EVR_SPEC_MAX_NAME, runner, NULL, s_check_id, "runner id")
#define PIPELINE(R) M("pipeline", EVR_FT_STR, R, EVR_SPEC_MAX_NAME, pipeline, NULL, NULL, "pipeline name")
#define STATUS(R) M("status", EVR_FT_STR, R, 16, status, NULL, s_check_status, "job status")
#define STATE(R) M("state", EVR_FT_STR, R, 16, state, NULL, s_check_state, "runner state")
#define REASON(R) M("reason", EVR_FT_STR, R, 1024, reason, NULL, NULL, "why, for people")
#define CODE(R) M("code", EVR_FT_STR, R, 32, code, NULL, s_check_code, "error code")
#define MESSAGE(R) M("message", EVR_FT_STR, R, 4096, message, NULL, NULL, "for people")
#define COMMAND(R) M("command", EVR_FT_STR, R, 16, command, NULL, s_check_command, "cancel, pause, resume or drain")
#define VERSION(R) M("version", EVR_FT_STR, R, 64, version, NULL, NULL, "evrun version")
#define SPEC(R) M("spec", EVR_FT_RECPTR, R, 0, spec, &evr_spec_type, s_check_spec, "pipeline spec (see Pipeline spec)")
#define ARGS(R) M("args", EVR_FT_STRMAP, R, 64, args, NULL, NULL, "args given with -a NAME=VALUE")
#define LABELS(R) M("labels", EVR_FT_STRLIST, R, 32, labels, NULL, s_check_once, "labels")
#define EVENTS(R) M("events", EVR_FT_RECLIST, R, EVR_MSG_MAX_EVENTS, events, &evr_event_type, NULL, "events (see Events)")
#define EVENT(R) M("event", EVR_FT_RECPTR, R, 0, event, &evr_event_type, NULL, "one event (see Events)")
#define SEQ(R, doc) M("seq", EVR_FT_U64, R, 0, seq, NULL, NULL, doc)
#define FROM(R) M("from", EVR_FT_U64, R, 0, from, NULL, NULL, "first per-job seq wanted (default 1)")
#define TIME(key, member) M(key, EVR_FT_U64, false, 0, member, NULL, NULL, "ns since the Unix epoch; 0 = not yet")
#define U32(key, member, R, doc) M(key, EVR_FT_U32, R, 0, member, NULL, NULL, doc)
#define COPIES                                                                                   \
    M("source_tar", EVR_FT_BIN, false, EVR_MSG_MAX_COPY_BYTES, source_tar, NULL, NULL,          \
      "the spec's source copy: directory as a gzip-compressed tar"),                              \
    M("ci_source_tar", EVR_FT_BIN, false, EVR_MSG_MAX_COPY_BYTES, ci_source_tar, NULL, NULL,    \
      "the spec's ci_source copy: directory as a gzip-compressed tar")

static const char *
s_check_sha256(const void *v)
{
    return evr_event_sha256_problem(*(char *const *) v);
}

static const char *
s_check_apath(const void *v)
{
    return evr_event_artifact_path_problem(*(char *const *) v);
}

#define STEP(R) M("step", EVR_FT_STR, R, EVR_SPEC_MAX_NAME, step, NULL, s_check_step, "step name")
#define APATH(R) M("path", EVR_FT_STR, R, EVR_SPEC_MAX_PATH, path, NULL, s_check_apath, "the artifact file, relative to /workspace")
#define SHA256(R) M("sha256", EVR_FT_STR, R, 64, sha256, NULL, s_check_sha256, "sha256 of the whole file (64 lower-case hex digits)")
#define OFFSET(R, doc) M("offset", EVR_FT_U64, R, 0, offset, NULL, NULL, doc)
#define SIZE(R) M("size", EVR_FT_U64, R, 0, size, NULL, NULL, "bytes of the whole file")
#define DATA(R) M("data", EVR_FT_BIN, R, EVR_MSG_CHUNK_MAX, data, NULL, NULL, "bytes of the file from offset (at most 1 MiB)")

#define MSG(var, ...)                                                                            \
    static const evr_field_t s_f_##var[] = { __VA_ARGS__ };                                      \
    static const evr_rectype_t s_m_##var = { #var, sizeof(evr_msg_t), s_f_##var,                 \
                                             EVR_ARRAY_LEN(s_f_##var), EVR_NO_PRESENT, NULL }
/* A type with no fields. */
static const evr_rectype_t s_empty = { "empty", sizeof(evr_msg_t), NULL, 0, EVR_NO_PRESENT, NULL };

#define PARENT_JOB M("parent_job", EVR_FT_STR, false, EVR_ULID_LEN, parent_job, NULL, s_check_ulid, \
                     "the job whose step triggered this one (a runner's trigger)")
#define PARENT_STEP M("parent_step", EVR_FT_STR, false, EVR_SPEC_MAX_NAME, parent_step, NULL, \
                      s_check_step, "the step of parent_job that triggered it")
MSG(submit, JOB(true), SPEC(true), ARGS(false),
    M("labels", EVR_FT_STRLIST, false, 32, labels, NULL, s_check_names,
      "labels a runner must have, besides the spec's"), COPIES, PARENT_JOB, PARENT_STEP);
MSG(cancel, JOB(true), REASON(false));
MSG(pause, JOB(true));
MSG(resume, JOB(true));
MSG(status, JOB(true));
/* `before` is kept in msg->job: the cursor of the next page */
MSG(jobs, PIPELINE(false), STATUS(false), U32("limit", limit, false, "most jobs to list (default 100)"),
    M("before", EVR_FT_STR, false, EVR_ULID_LEN, job, NULL, s_check_ulid,
      "only jobs older than this one (the last job of the page before): the next page"));
MSG(history, JOB(true), FROM(false),
    U32("limit", limit, false, "most events in the page (default and at most 1000)"));
MSG(drain, RUNNER(true));
MSG(accepted, JOB(true), M("existing", EVR_FT_BOOL, false, 0, existing, NULL, NULL,
                           "true when this job id was submitted before (idempotent submit)"),
    MESSAGE(false));
MSG(ok, JOB(false), MESSAGE(false),
    M("existing", EVR_FT_BOOL, false, 0, existing, NULL, NULL,
      "answering `demand`: true when nothing was added, the broker keeping or having "
      "retired a demand with this id (a duplicate)"));
MSG(error, CODE(true), MESSAGE(true));
MSG(job, JOB(true), PIPELINE(true), STATUS(true), RUNNER(false),
    U32("steps_total", steps_total, false, "steps in the pipeline"),
    U32("steps_done", steps_done, false, "steps finished or skipped"),
    M("created", EVR_FT_U64, false, 0, created, NULL, NULL,
      "ns since the Unix epoch: when the broker took the submit into its queue"),
    TIME("started", started), TIME("finished", finished),
    REASON(false), U32("allowed_failures", allowed_failures, false,
                       "steps that failed with allow_failure (the job did not fail for them)"),
    M("outputs", EVR_FT_STRMAP, false, EVR_MSG_MAX_OUTPUTS, outputs, NULL, NULL,
      "answering `status`: the steps' outputs (their step.outputs, masked) as STEP/KEY to "
      "VALUE, in step order; at most 256, the rest left out"),
    M("steps", EVR_FT_STRMAP, false, EVR_SPEC_MAX_STEPS + 1, step_states, NULL, NULL,
      "answering `status`: each step (on_error last) to its status, and its exit code once "
      "it ended: \"STATUS\" or \"STATUS EXIT_CODE\" (-1: it has none, it never started); a "
      "job still queued or paused in the "
      "queue: its spec's steps, each \"pending\""),
    M("labels", EVR_FT_STRLIST, false, 32, labels, NULL, NULL,
      "queued or paused: the labels a runner must have (the spec's, the submit's, "
      "executor:NAME)"),
    M("parent_job", EVR_FT_STR, false, EVR_ULID_LEN, parent_job, NULL, s_check_ulid,
      "answering `status`: the job whose step triggered this one"),
    M("parent_step", EVR_FT_STR, false, EVR_SPEC_MAX_NAME, parent_step, NULL, s_check_step,
      "answering `status`: that step"),
    M("children", EVR_FT_STRLIST, false, EVR_MSG_MAX_CHILDREN, children, NULL, NULL,
      "answering `status` and `jobs`: the jobs its steps triggered, oldest first; at most 64"));
MSG(event, EVENT(true));
#define EPHEMERAL M("ephemeral", EVR_FT_BOOL, false, 0, ephemeral, NULL, NULL, \
                    "true: a single-use runner (evrun-runner --once): it takes one job, then exits")
MSG(runner, RUNNER(true), LABELS(false), U32("capacity", capacity, true, "jobs it runs at once"),
    U32("running", running, false, "jobs the broker holds for it: dispatched to it (not "
        "taken yet) or taken and not finished"), TIME("heartbeat", heartbeat),
    STATE(true), EPHEMERAL,
    U32("credit", credit, false, "free slots: the runner's last credit less the jobs "
        "dispatched to it since"));
MSG(end, U32("count", count, false, "items sent before this end"),
    M("more", EVR_FT_BOOL, false, 0, more, NULL, NULL,
      "true when the page stopped at its limit with items left: `history` asks again "
      "from the next jseq, `jobs` with `before` the last job received"),
    M("queue_limit", EVR_FT_U32, false, 0, queue_limit, NULL, NULL,
      "`jobs`: the broker's --queue-limit, the wait list of a pipeline whose queue sets no "
      "limit"));
MSG(hello, RUNNER(true), LABELS(false), U32("capacity", capacity, true, "jobs it runs at once"),
    VERSION(true), SEQ(false, "highest seq in the runner's log"), EPHEMERAL,
    M("draining", EVR_FT_BOOL, false, 0, draining, NULL, NULL,
      "true: this runner process took a drain (evrun-cli drain) and takes no new jobs"));
MSG(credit, U32("credit", credit, true, "free slots: jobs the runner can take now"));
MSG(goodbye, SEQ(true, "highest seq in the runner's log: it commits nothing after this"),
    M("reason", EVR_FT_STR, false, 1024, reason, NULL, NULL, "why it leaves, for people"));
MSG(events, EVENTS(true));
MSG(heartbeat, U32("running", running, false, "jobs running now (runner -> broker; "
                   "the broker does not read it: its `runner` counts the jobs it holds)"));
MSG(welcome, RUNNER(true), SEQ(true, "highest seq of this runner the broker holds: resend above it"));
MSG(dispatch, JOB(true), SPEC(true), ARGS(false), COPIES, PARENT_JOB, PARENT_STEP);
MSG(control, COMMAND(true), JOB(false), REASON(false),
    M("force", EVR_FT_BOOL, false, 0, force, NULL, NULL,
      "cancel: a user's cancel of a job being cancelled (or one asked twice while the job "
      "was dispatched): the job's `when: always` steps and on_error are stopped too, at once"));
MSG(ack, SEQ(true, "the broker holds every event of this runner up to seq"));
MSG(artifact_chunk, JOB(true), STEP(true), APATH(true), SHA256(true), SIZE(true),
    OFFSET(true, "bytes of the file before data"), DATA(false));
MSG(artifact_ack, JOB(true), STEP(true), APATH(true), SHA256(true),
    OFFSET(true, "bytes of this file the broker holds: send on from there"),
    M("done", EVR_FT_BOOL, false, 0, done, NULL, NULL,
      "the broker holds the whole file, its sha256 checked"),
    M("reason", EVR_FT_STR, false, 1024, reason, NULL, NULL,
      "set: the broker refuses the file for good (the runner drops it)"));
MSG(fetch, JOB(true), STEP(true), APATH(true),
    OFFSET(false, "bytes of the file to skip (default 0)"),
    M("sha256", EVR_FT_STR, false, 64, sha256, NULL, s_check_sha256,
      "the file's sha256 (its step.artifact event's): only the copy of that sha256 is "
      "served, and a refusal the broker noted of another copy of the path is not its "
      "answer"));
MSG(artifact_data, STEP(true), APATH(true), SIZE(true),
    OFFSET(true, "bytes of the file before data"), DATA(false));
#define U64(key, member, doc) M(key, EVR_FT_U64, false, 0, member, NULL, NULL, doc)
MSG(prune, M("dry_run", EVR_FT_BOOL, false, 0, dry_run, NULL, NULL,
             "true: count what retention would remove, remove nothing"));
MSG(pruned, U64("jobs", pr_jobs, "finished jobs removed (all their records)"),
    U64("outputs", pr_outputs, "finished jobs whose output was dropped"),
    U64("events", pr_events, "events removed"),
    U64("records", pr_records, "other records removed: projections, index and queue entries"),
    U64("bytes", pr_bytes, "bytes of stored values removed or emptied"),
    M("dry_run", EVR_FT_BOOL, false, 0, dry_run, NULL, NULL, "true: nothing was removed"),
    M("more", EVR_FT_BOOL, false, 0, more, NULL, NULL,
      "true: this request stopped at its bound with jobs left: ask again"));

#define OPTSTR(key, member, limit, check, doc) M(key, EVR_FT_STR, false, limit, member, NULL, check, doc)
MSG(start, JOB(true), M("pipeline", EVR_FT_STR, true, EVR_SPEC_MAX_NAME, pipeline, NULL, s_check_id,
                        "the registered pipeline's name (evrun-cli pipelines)"),
    ARGS(false), M("labels", EVR_FT_STRLIST, false, 32, labels, NULL, s_check_names,
                   "labels a runner must have, besides the spec's"),
    OPTSTR("source_url", source_url, EVR_SPEC_MAX_URL, NULL,
           "replaces the url of the pipeline's `source: git` (a webhook's repository)"),
    OPTSTR("source_ref", source_ref, EVR_SPEC_MAX_REF, NULL,
           "replaces the ref of the pipeline's `source: git` (a webhook's commit)"),
    OPTSTR("ci_source_url", ci_source_url, EVR_SPEC_MAX_URL, NULL,
           "replaces the url of the pipeline's `ci_source: git`"),
    OPTSTR("ci_source_ref", ci_source_ref, EVR_SPEC_MAX_REF, NULL,
           "replaces the ref of the pipeline's `ci_source: git`"));
MSG(pipeline, PIPELINE(true),
    OPTSTR("file", file, 255, NULL, "its file in the broker's pipelines directory"),
    U32("concurrency", concurrency, false, "the spec's concurrency (0: no limit)"),
    U32("waiting", waiting, false, "its jobs waiting in the queue (queued or paused)"),
    U32("running", running, false, "its jobs handed to a runner and not finished"),
    OPTSTR("last_job", last_job, EVR_ULID_LEN, s_check_ulid, "its newest job"),
    OPTSTR("last_status", last_status, 16, s_check_status, "that job's status"),
    OPTSTR("schedule", schedule, 256, NULL, "its cron schedule"),
    OPTSTR("timezone", timezone, 64, NULL, "the schedule's time zone (absent: UTC)"),
    TIME("next_run", next_run), TIME("last_fire", last_fire),
    OPTSTR("fire_job", fire_job, EVR_ULID_LEN, s_check_ulid, "the job of the last fire"),
    OPTSTR("fire_status", fire_status, 1024, NULL,
           "the last fire: accepted, refused: REASON, skipped (catchup: none) or firing"),
    OPTSTR("load_error", load_error, 4096, NULL,
           "the file's last load failed (file:line:column errors): the last good version "
           "serves, if any"),
    M("github_events", EVR_FT_STRLIST, false, 3, github_events, NULL, NULL,
      "its on.github.events (push when on.github gives none); absent: no on.github"),
    M("github_branches", EVR_FT_STRLIST, false, 32, github_branches, NULL, NULL,
      "its on.github.branches (absent: every branch)"),
    M("args", EVR_FT_RECMAP, false, 64, arg_specs, &evr_arg_type, NULL,
      "its spec's args, as the spec's `args` map (record `arg`): a start fills them"));

MSG(provider, M("provider", EVR_FT_STR, true, EVR_SPEC_MAX_NAME, provider, NULL, s_check_id,
                "the provider's name (evrun-provisioner's config)"),
    OPTSTR("runner", runner, EVR_SPEC_MAX_NAME, s_check_id,
           "the provisioner that reports it: an id it chose (evrun-provisioner --id)"),
    LABELS(false),
    OPTSTR("reason", reason, 1024, NULL, "set: the provider is paused, and why"),
    U32("running", running, false, "runners it started that are not gone"),
    U32("max", max, false, "most runners at once"),
    U32("starts", starts, false, "runners started since the provisioner started"),
    U32("failed_starts", failed_starts, false, "of them, the starts that failed"),
    TIME("heartbeat", heartbeat));
MSG(trigger, JOB(true), M("pipeline", EVR_FT_STR, true, EVR_SPEC_MAX_NAME, pipeline, NULL,
                          s_check_id, "the registered pipeline to start (with spec: its name)"),
    M("spec", EVR_FT_RECPTR, false, 0, spec, &evr_spec_type, s_check_spec,
      "a pipeline file of the job's source (evrun-job trigger --file), read and checked by "
      "the runner: started instead of a registered pipeline"),
    M("file", EVR_FT_STR, false, EVR_SPEC_MAX_TRIGGER_PATH, file, NULL, s_check_tpath,
      "with spec: the file's path in the parent job's source"),
    ARGS(false),
    M("parent_job", EVR_FT_STR, true, EVR_ULID_LEN, parent_job, NULL, s_check_ulid,
      "the job whose step triggers"),
    M("parent_step", EVR_FT_STR, true, EVR_SPEC_MAX_NAME, parent_step, NULL, s_check_step,
      "that step"));
MSG(triggered, JOB(true), M("existing", EVR_FT_BOOL, false, 0, existing, NULL, NULL,
                            "true when this job id was submitted before (a trigger sent again)"),
    CODE(false), MESSAGE(false));
MSG(query, SEQ(true, "the runner's number of this query, echoed in its answer"),
    M("job", EVR_FT_STR, false, EVR_ULID_LEN, job, NULL, s_check_ulid,
      "the job asked about (or pipeline)"),
    M("pipeline", EVR_FT_STR, false, EVR_SPEC_MAX_NAME, pipeline, NULL, s_check_id,
      "the pipeline asked about: its jobs waiting and running, its newest job"));
MSG(queried, SEQ(true, "the query's seq"), JOB(false), PIPELINE(false), STATUS(false),
    M("reason", EVR_FT_STR, false, 1024, reason, NULL, NULL,
      "why, for people: why the job failed, was cancelled or timed out"),
    U32("steps_total", steps_total, false, "steps in the pipeline"),
    U32("steps_done", steps_done, false, "steps finished or skipped"),
    M("outputs", EVR_FT_STRMAP, false, EVR_MSG_MAX_OUTPUTS, outputs, NULL, NULL,
      "the steps' outputs as STEP/KEY to VALUE (as `job` answering `status`)"),
    M("steps", EVR_FT_STRMAP, false, EVR_SPEC_MAX_STEPS + 1, step_states, NULL, NULL,
      "each step's status, and its exit code once it ended: STEP to \"STATUS\" or \"STATUS "
      "EXIT_CODE\" (-1: it has none, it never started)"),
    U32("waiting", waiting, false, "asked by pipeline: its jobs waiting in the queue"),
    U32("running", running, false, "asked by pipeline: its jobs handed to a runner and not "
        "finished"),
    PARENT_JOB, CODE(false), MESSAGE(false));

static const char *
s_check_labels(const void *v)
{
    static __thread char why[200];
    const evr_strlist_t *l = v;
    for (uint32_t i = 0; i < l->n; i++)
        if (!evr_spec_name_ok(l->v[i])
            && (strncmp(l->v[i], "executor:", 9) || !evr_spec_name_ok(l->v[i] + 9))) {
            char q[68];   /* as s_check_names */
            snprintf(why, sizeof why, "expected labels: letters, digits, _ . - (at most 64 "
                     "bytes each), or executor:NAME, got \"%s\" at [%u]",
                     evr_text_escape_ctl(l->v[i], q, sizeof q), i);
            return why;
        }
    return s_repeat(l, why, sizeof why) ? why : NULL;
}

MSG(demand, M("job", EVR_FT_STR, true, EVR_ULID_LEN, job, NULL, s_check_ulid,
              "the demand's id (a ULID its sender makes): a demand sent again with the id "
              "of one the broker keeps, or retired in the last 24 hours, adds nothing"),
    M("labels", EVR_FT_STRLIST, false, 32, labels, NULL, s_check_labels,
      "the labels a runner must have (as a job's)"),
    U32("count", count, false, "runners wanted, 1 to 64 (default 1); listed: still wanted"),
    U32("ttl", ttl, false, "seconds the broker keeps it, 1 to 3600 (default 300); listed: "
        "seconds left"),
    OPTSTR("reason", reason, 1024, NULL, "where it comes from, for people"),
    M("created", EVR_FT_U64, false, 0, created, NULL, NULL,
      "listed: ns since the Unix epoch when the broker took it"));

static const struct {
    const char *name;
    const evr_rectype_t *fields;
    const char *direction;
} s_types[EVR_MSG_COUNT_] = {
    [EVR_MSG_SUBMIT] = { "submit", &s_m_submit, "client -> broker" },
    [EVR_MSG_CANCEL] = { "cancel", &s_m_cancel, "client -> broker" },
    [EVR_MSG_PAUSE] = { "pause", &s_m_pause, "client -> broker" },
    [EVR_MSG_RESUME] = { "resume", &s_m_resume, "client -> broker" },
    [EVR_MSG_STATUS] = { "status", &s_m_status, "client -> broker" },
    [EVR_MSG_JOBS] = { "jobs", &s_m_jobs, "client -> broker" },
    [EVR_MSG_HISTORY] = { "history", &s_m_history, "client -> broker" },
    [EVR_MSG_RUNNERS] = { "runners", &s_empty, "client -> broker" },
    [EVR_MSG_DRAIN] = { "drain", &s_m_drain, "client -> broker" },
    [EVR_MSG_ACCEPTED] = { "accepted", &s_m_accepted, "broker -> client" },
    [EVR_MSG_OK] = { "ok", &s_m_ok, "broker -> client" },
    [EVR_MSG_ERROR] = { "error", &s_m_error, "broker -> client" },
    [EVR_MSG_JOB] = { "job", &s_m_job, "broker -> client" },
    [EVR_MSG_EVENT] = { "event", &s_m_event, "broker -> client" },
    [EVR_MSG_RUNNER] = { "runner", &s_m_runner, "broker -> client" },
    [EVR_MSG_END] = { "end", &s_m_end, "broker -> client" },
    [EVR_MSG_HELLO] = { "hello", &s_m_hello, "runner -> broker" },
    [EVR_MSG_CREDIT] = { "credit", &s_m_credit, "runner -> broker" },
    [EVR_MSG_EVENTS] = { "events", &s_m_events, "runner -> broker" },
    [EVR_MSG_HEARTBEAT] = { "heartbeat", &s_m_heartbeat, "runner <-> broker" },
    [EVR_MSG_WELCOME] = { "welcome", &s_m_welcome, "broker -> runner" },
    [EVR_MSG_DISPATCH] = { "dispatch", &s_m_dispatch, "broker -> runner" },
    [EVR_MSG_CONTROL] = { "control", &s_m_control, "broker -> runner" },
    [EVR_MSG_ACK] = { "ack", &s_m_ack, "broker -> runner" },
    [EVR_MSG_ARTIFACT_CHUNK] = { "artifact_chunk", &s_m_artifact_chunk, "runner -> broker" },
    [EVR_MSG_ARTIFACT_ACK] = { "artifact_ack", &s_m_artifact_ack, "broker -> runner" },
    [EVR_MSG_FETCH] = { "fetch", &s_m_fetch, "client -> broker" },
    [EVR_MSG_ARTIFACT_DATA] = { "artifact_data", &s_m_artifact_data, "broker -> client" },
    [EVR_MSG_PIPELINES] = { "pipelines", &s_empty, "client -> broker" },
    [EVR_MSG_START] = { "start", &s_m_start, "client -> broker" },
    [EVR_MSG_PIPELINE] = { "pipeline", &s_m_pipeline, "broker -> client" },
    [EVR_MSG_PRUNE] = { "prune", &s_m_prune, "client -> broker" },
    [EVR_MSG_PRUNED] = { "pruned", &s_m_pruned, "broker -> client" },
    [EVR_MSG_PROVIDER] = { "provider", &s_m_provider, "provisioner -> broker, broker -> client" },
    [EVR_MSG_PROVIDERS] = { "providers", &s_empty, "client -> broker" },
    [EVR_MSG_TRIGGER] = { "trigger", &s_m_trigger, "runner -> broker" },
    [EVR_MSG_TRIGGERED] = { "triggered", &s_m_triggered, "broker -> runner" },
    [EVR_MSG_QUERY] = { "query", &s_m_query, "runner -> broker" },
    [EVR_MSG_QUERIED] = { "queried", &s_m_queried, "broker -> runner" },
    [EVR_MSG_DEMAND] = { "demand", &s_m_demand, "client -> broker, broker -> client" },
    [EVR_MSG_DEMANDS] = { "demands", &s_empty, "client -> broker" },
    [EVR_MSG_GOODBYE] = { "goodbye", &s_m_goodbye, "runner -> broker" },
};

const char *const evr_msg_codes[][2] = {
    { EVR_CODE_BAD_REQUEST, "the message is malformed or a field is invalid; message names it" },
    { EVR_CODE_UNKNOWN_TYPE, "the header names no known message type" },
    { EVR_CODE_NOT_FOUND, "no such job, runner or registered pipeline" },
    { EVR_CODE_QUEUE_FULL, "the pipeline's wait list is full (queue.limit; strategy append, or "
                           "partitioned_replace with other partitions), or the broker's" },
    { EVR_CODE_BUSY, "the pipeline's concurrency is full and its queue.limit is 0: no wait "
                     "list" },
    { EVR_CODE_CONFLICT, "the command is not possible in the job's current state" },
    { EVR_CODE_TOO_LARGE, "the message exceeds a size limit" },
    { EVR_CODE_UNAVAILABLE, "the broker cannot serve the request now (store full, draining)" },
    { EVR_CODE_INTERNAL, "a failure inside the broker; the message says what" },
    { NULL, NULL },
};

bool
evr_msg_state_away(const char *state)
{
    return !state || !strcmp(state, "lost") || !strcmp(state, "stopped");
}

const char *
evr_msgtype_name(evr_msgtype_t t)
{
    return t > EVR_MSG_NONE && t < EVR_MSG_COUNT_ ? s_types[t].name : NULL;
}

evr_msgtype_t
evr_msgtype_parse(const char *name)
{
    for (int t = EVR_MSG_NONE + 1; t < EVR_MSG_COUNT_; t++)
        if (strcmp(s_types[t].name, name) == 0)
            return (evr_msgtype_t) t;
    return EVR_MSG_NONE;
}

const evr_rectype_t *
evr_msgtype_fields(evr_msgtype_t t)
{
    return t > EVR_MSG_NONE && t < EVR_MSG_COUNT_ ? s_types[t].fields : NULL;
}

const char *
evr_msgtype_direction(evr_msgtype_t t)
{
    return t > EVR_MSG_NONE && t < EVR_MSG_COUNT_ ? s_types[t].direction : NULL;
}

evr_msg_t *
evr_msg_new(evr_msgtype_t type)
{
    evr_msg_t *msg = evr_calloc(1, sizeof *msg);
    msg->type = type;
    return msg;
}

/*  The fields of every message type that own memory, each (offset, type,
    sub-record) once: what evr_msg_clear frees, in one pass instead of one
    per type (most fields are shared by several types). */
#define S_CLEAR_MAX 512
static evr_field_t s_clear_fields[S_CLEAR_MAX];
static evr_rectype_t s_clear_type = { "message", sizeof(evr_msg_t), s_clear_fields, 0,
                                      EVR_NO_PRESENT, NULL };
static pthread_once_t s_clear_once = PTHREAD_ONCE_INIT;

static void
s_clear_init(void)
{
    size_t n = 0;
    for (int t = EVR_MSG_NONE + 1; t < EVR_MSG_COUNT_; t++)
        for (size_t i = 0; i < s_types[t].fields->nfields; i++) {
            const evr_field_t *f = &s_types[t].fields->fields[i];
            bool owns = f->type == EVR_FT_STR || f->type == EVR_FT_BIN
                     || f->type == EVR_FT_STRLIST || f->type == EVR_FT_STRMAP
                     || f->type == EVR_FT_RECORD || f->type == EVR_FT_VARIANT
                     || f->type == EVR_FT_RECLIST || f->type == EVR_FT_RECMAP
                     || f->type == EVR_FT_RECPTR;
            size_t k = 0;
            while (owns && k < n && !(s_clear_fields[k].off == f->off
                                      && s_clear_fields[k].type == f->type
                                      && s_clear_fields[k].sub == f->sub
                                      && s_clear_fields[k].select == f->select))
                k++;
            if (!owns || k < n)
                continue;
            if (n == S_CLEAR_MAX) {   /* a programmer's error: raise S_CLEAR_MAX */
                fprintf(stderr, "evr_msg: more than %d message fields own memory\n",
                        S_CLEAR_MAX);
                abort();
            }
            s_clear_fields[n++] = *f;
        }
    s_clear_type.nfields = n;
}

void
evr_msg_clear(evr_msg_t *msg)
{
    /* a message whose contents were taken (zeroed but for its type: a
       submit the broker staged) holds nothing to free: no walk of the
       table of every message's fields */
    static const evr_msg_t zero;
    evr_msgtype_t type = msg->type;
    msg->type = zero.type;
    bool empty = memcmp(msg, &zero, sizeof *msg) == 0;
    msg->type = type;
    if (empty) {
        msg->type = zero.type;
        return;
    }
    pthread_once(&s_clear_once, s_clear_init);
    evr_rec_free(&s_clear_type, msg);
    memset(msg, 0, sizeof *msg);
}

void
evr_msg_destroy(evr_msg_t **self_p)
{
    if (!*self_p)
        return;
    evr_msg_clear(*self_p);
    free(*self_p);
    *self_p = NULL;
}

void
evr_msg_header(evr_msgtype_t type, char buf[EVR_MSG_HEADER_MAX])
{
    const char *name = evr_msgtype_name(type);
    if (!name)
        name = "?";
    size_t pl = sizeof EVR_MSG_PROTO - 1, nl = strlen(name);   /* no snprintf: every message */
    if (pl + 1 + nl >= EVR_MSG_HEADER_MAX)
        nl = EVR_MSG_HEADER_MAX - pl - 2;
    memcpy(buf, EVR_MSG_PROTO, pl);
    buf[pl] = ' ';
    memcpy(buf + pl + 1, name, nl);
    buf[pl + 1 + nl] = '\0';
}

void
evr_msg_encode(const evr_msg_t *msg, uint8_t **buf, size_t *len)
{
    const evr_rectype_t *fields = evr_msgtype_fields(msg->type);
    evr_codec_encode(fields ? fields : &s_empty, msg, buf, len);
}

/*  The type the header frame names: EVR_MSG_NONE with err and *code set
    when it names none. */
static evr_msgtype_t
s_header_type(const char *hdr, size_t hlen, const char **code, evr_err_t *err)
{
    size_t plen = strlen(EVR_MSG_PROTO);
    if (hlen >= EVR_MSG_HEADER_MAX) {   /* bad_request whatever it says (PROTOCOL.md) */
        evr_err_set(err, EVR_ERR_PROTO, "header: %zu bytes, at most %d", hlen,
                    EVR_MSG_HEADER_MAX - 1);
        return EVR_MSG_NONE;
    }
    if (hlen < plen + 2 || memcmp(hdr, EVR_MSG_PROTO, plen) != 0 || hdr[plen] != ' ') {
        evr_err_set(err, EVR_ERR_PROTO, "header: expected \"%s <type>\"", EVR_MSG_PROTO);
        return EVR_MSG_NONE;
    }
    size_t nlen = hlen - plen - 1;
    char name[EVR_MSG_HEADER_MAX];
    memcpy(name, hdr + plen + 1, nlen);
    name[nlen] = '\0';
    /* a NUL inside the header would make "ack\0xyz" read as "ack" */
    evr_msgtype_t type = memchr(name, '\0', nlen) ? EVR_MSG_NONE : evr_msgtype_parse(name);
    if (type == EVR_MSG_NONE) {
        *code = EVR_CODE_UNKNOWN_TYPE;
        for (size_t i = 0; i < nlen; i++)   /* the whole echo printable, NULs too */
            if (name[i] < 0x20 || name[i] > 0x7e)
                name[i] = '?';
        evr_err_set(err, EVR_ERR_PROTO, "header: unknown message type \"%s\"", name);
    }
    return type;
}

evr_rc_t
evr_msg_decode(const char *hdr, size_t hlen, const uint8_t *body, size_t blen, evr_msg_t *msg,
               const char **code, evr_err_t *err)
{
    const char *dummy;
    if (!code)
        code = &dummy;
    *code = EVR_CODE_BAD_REQUEST;
    evr_msgtype_t type = s_header_type(hdr, hlen, code, err);
    if (type == EVR_MSG_NONE)
        return EVR_ERR_PROTO;
    const char *name = s_types[type].name;
    if (blen > EVR_MSG_MAX_BYTES) {
        *code = EVR_CODE_TOO_LARGE;
        return evr_err_set(err, EVR_ERR_LIMIT, "%s: body of %zu bytes exceeds the limit of %u",
                           name, blen, EVR_MSG_MAX_BYTES);
    }
    evr_rc_t rc = evr_codec_decode(body, blen, s_types[type].fields, msg, name, err);
    if (rc) {
        evr_msg_clear(msg);
        if (rc == EVR_ERR_LIMIT)
            *code = EVR_CODE_TOO_LARGE;
        return rc;
    }
    msg->type = type;
    return EVR_OK;
}

/*  Skips the object at r, nested at most depth deep; one that is broken
    or deeper ends the walk (r at its end): a walk never looks at the
    same bytes twice, so its work is linear in the body. */
static void
s_peek_skip(evr_codec_rd_t *r, unsigned depth)
{
    size_t k = evr_codec_skip(r->p, (size_t) (r->end - r->p), depth);
    r->p = k ? r->p + k : r->end;
}

/*  A str of at most max bytes at r into buf (max + 1 bytes); false, r
    past the object, when it is anything else. */
static bool
s_peek_str(evr_codec_rd_t *r, char *buf, size_t max, unsigned depth)
{
    const uint8_t *s;
    uint32_t n;
    if (!evr_codec_rd_raw(r, false, &s, &n)) {
        s_peek_skip(r, depth);
        return false;
    }
    if (n > max || memchr(s, '\0', n))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return true;
}

/*  The spec map at r (skipped past): decoded alone into peek->spec when
    its own table takes it, and its `pipeline` when that is a name. */
static void
s_peek_spec(evr_codec_rd_t *r, evr_msg_peek_t *peek)
{
    size_t len = evr_codec_skip(r->p, (size_t) (r->end - r->p), EVR_CODEC_MAX_DEPTH - 1);
    evr_codec_rd_t in = { r->p, r->p + len };
    r->p = len ? r->p + len : r->end;
    evr_spec_t *spec = evr_spec_new();
    evr_err_t err;
    if (len && evr_codec_decode(in.p, len, &evr_spec_type, spec, "spec", &err) == EVR_OK)
        peek->spec = spec;
    else
        evr_spec_destroy(&spec);
    uint32_t n;
    if (!evr_codec_rd_map(&in, &n))
        return;
    for (uint32_t i = 0; i < n && in.p < in.end; i++) {
        char key[16];
        bool named = s_peek_str(&in, key, sizeof key - 1, EVR_CODEC_MAX_DEPTH - 2)
                     && !strcmp(key, "pipeline");
        char name[EVR_SPEC_MAX_NAME + 1];
        if (!named)
            s_peek_skip(&in, EVR_CODEC_MAX_DEPTH - 2);
        else if (s_peek_str(&in, name, EVR_SPEC_MAX_NAME, EVR_CODEC_MAX_DEPTH - 2)
                 && evr_spec_name_ok(name))
            snprintf(peek->pipeline, sizeof peek->pipeline, "%s", name);
    }
}

void
evr_msg_peek(const char *hdr, size_t hlen, const uint8_t *body, size_t blen, evr_msg_peek_t *peek)
{
    const char *code;
    evr_err_t err;
    memset(peek, 0, sizeof *peek);
    peek->type = s_header_type(hdr, hlen, &code, &err);
    if (peek->type == EVR_MSG_NONE)
        return;
    if (blen > EVR_MSG_MAX_BYTES)
        return;     /* what no decode reads: nothing to tell either */
    evr_codec_rd_t r = { body, body + blen };
    uint32_t n;
    if (!evr_codec_rd_map(&r, &n))
        return;
    for (uint32_t i = 0; i < n && r.p < r.end; i++) {
        char key[16], job[EVR_ULID_LEN + 1];
        bool got = s_peek_str(&r, key, sizeof key - 1, EVR_CODEC_MAX_DEPTH - 1);
        if (got && !strcmp(key, "job")) {
            if (s_peek_str(&r, job, EVR_ULID_LEN, EVR_CODEC_MAX_DEPTH - 1) && !evr_ulid_problem(job))
                memcpy(peek->job, job, sizeof job);
        }
        else if (got && !strcmp(key, "spec") && peek->type == EVR_MSG_DISPATCH && !peek->spec
                 && !peek->pipeline[0])
            s_peek_spec(&r, peek);
        else
            s_peek_skip(&r, EVR_CODEC_MAX_DEPTH - 1);
    }
}

void
evr_msg_peek_clear(evr_msg_peek_t *peek)
{
    evr_spec_destroy(&peek->spec);
    memset(peek, 0, sizeof *peek);
}

bool
evr_msg_reading(const evr_msg_t *msg)
{
    return msg->type == EVR_MSG_ERROR && msg->code && !strcmp(msg->code, EVR_CODE_NOT_FOUND)
        && msg->message
        && (!strncmp(msg->message, EVR_MSG_READING, strlen(EVR_MSG_READING))
            || !strncmp(msg->message, EVR_MSG_BUSY_READING, strlen(EVR_MSG_BUSY_READING)));
}

bool
evr_msg_other_copy(const evr_msg_t *msg, char hex[65], uint64_t *size)
{
    size_t k = strlen(EVR_MSG_OTHER_COPY);
    if (msg->type != EVR_MSG_ERROR || !msg->code || strcmp(msg->code, EVR_CODE_NOT_FOUND)
        || !msg->message || strncmp(msg->message, EVR_MSG_OTHER_COPY, k))
        return false;
    unsigned long long n;
    int used = 0;
    char got[65];   /* the caller's only when all of it reads */
    if (sscanf(msg->message + k, "sha256 %64[0-9a-f], %llu bytes)%n", got, &n, &used) != 2
        || !used || strlen(got) != 64)
        return false;
    memcpy(hex, got, sizeof got);
    *size = n;
    return true;
}
