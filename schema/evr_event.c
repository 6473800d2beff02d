/*  evr_event.c: event field tables and codec. */
#include "evr_event.h"

#include <stdlib.h>
#include <string.h>

#include "evr_codec.h"

static const char *const s_job_statuses[] = { "succeeded", "failed", "cancelled", "timed_out",
                                              "lost" };

bool
evr_event_status_ok(const char *s)
{
    for (size_t i = 0; i < EVR_ARRAY_LEN(s_job_statuses); i++)
        if (strcmp(s, s_job_statuses[i]) == 0)
            return true;
    return false;
}

/*  The end statuses of a job and of a step. */
static const char *const s_end_names[] = { "succeeded", "failed", "cancelled", "timed_out",
                                           "lost", NULL };

static const char *
s_check_job_status(const void *v)
{
    return evr_diag_one_of(*(char *const *) v, s_end_names);
}

static const char *
s_check_step_status(const void *v)
{
    return evr_diag_one_of(*(char *const *) v, s_end_names);
}

static const char *
s_check_stream(const void *v)
{
    static const char *const names[] = { "stdout", "stderr", NULL };
    return evr_diag_one_of(*(char *const *) v, names);
}

static const char *
s_check_how(const void *v)
{
    static const char *const names[] = { "reattached", "collected", "restarted", "created",
                                         "lost", NULL };
    return evr_diag_one_of(*(char *const *) v, names);
}

static const char *
s_check_hook_status(const void *v)
{
    static const char *const names[] = { "succeeded", "failed", "refused", "timed_out",
                                         "stopped", NULL };
    return evr_diag_one_of(*(char *const *) v, names);
}

static const char *
s_check_phase(const void *v)
{
    static const char *const phases[] = { "PRE_VALIDATION", "POST_VALIDATION",
        "PRE_SOURCE_PREP", "POST_SOURCE_PREP", "PRE_EXECUTION", "POST_EXECUTION", "ON_ERROR",
        "CLEANUP", NULL };
    return evr_diag_one_of(*(char *const *) v, phases);
}

static const char *
s_check_runner(const void *v)
{
    return evr_spec_name_ok(*(char *const *) v) ? NULL
                                                : "expected letters, digits, _ . - (at most 64)";
}

static const char *
s_check_ulid(const void *v)
{
    return evr_ulid_problem(*(char *const *) v);
}

const char *
evr_event_sha256_problem(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return "expected 64 lower-case hex digits";
    return n == 64 ? NULL : "expected 64 lower-case hex digits";
}

const char *
evr_event_artifact_path_problem(const char *p)
{
    if (!*p || *p == '/')
        return "expected a relative path";
    if (strlen(p) > EVR_SPEC_MAX_PATH)
        return "path too long";
    for (const char *c = p; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            return "path holds a control character";
    if (!evr_utf8_valid(p, strlen(p)))
        return "path is not UTF-8";
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return "path components must not be empty, \".\" or \"..\"";
        c += n;
        if (*c == '/' && !*++c)
            return "path must not end with /";
    }
    return NULL;
}

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

static const char *
s_check_outputs(const void *v)
{
    const evr_strmap_t *m = v;
    for (uint32_t i = 0; i < m->n; i++)
        if (!evr_spec_env_name_ok(m->k[i]) || strlen(m->k[i]) > EVR_SPEC_MAX_NAME)
            return "expected keys that are environment variable names (at most 64 bytes)";
        else if (strchr(m->v[i], '\n'))
            return "expected values of one line";
    return NULL;
}

/*  One line per data field; R says whether the type at hand requires it. */
#define D(key, type, limit, member, sub, check, doc, R)                                          \
    { key, type, R, limit, offsetof(evr_evdata_t, member), sub, check, NULL, doc, NULL, NULL }
#define PIPELINE(R) D("pipeline", EVR_FT_STR, EVR_SPEC_MAX_NAME, pipeline, NULL, NULL, "pipeline name", R)
#define SPEC(R) D("spec", EVR_FT_RECPTR, 0, spec, &evr_spec_type, NULL, "the pipeline spec", R)
#define ARGS(R) D("args", EVR_FT_STRMAP, 64, args, NULL, NULL, "resolved args", R)
#define RUNNER(R) D("runner", EVR_FT_STR, EVR_SPEC_MAX_NAME, runner, NULL, s_check_runner, "runner id", R)
#define JSTATUS(R) D("status", EVR_FT_STR, 16, status, NULL, s_check_job_status, "final job status", R)
#define SSTATUS(R) D("status", EVR_FT_STR, 16, status, NULL, s_check_step_status, "step status", R)
#define REASON(R) D("reason", EVR_FT_STR, 1024, reason, NULL, NULL, "why, for people", R)
#define STEP(R) D("step", EVR_FT_STR, EVR_SPEC_MAX_NAME, step, NULL, NULL, "step name", R)
#define ATTEMPT(R) D("attempt", EVR_FT_U32, 0, attempt, NULL, NULL, "attempt number, from 1", R)
#define CONTAINER(R) D("container", EVR_FT_STR, 256, container, NULL, NULL,                    \
                        "container name evrun-<job>-<step>-<attempt> (the job id in lower "   \
                        "case, the step as written; a matrix step's in its container form)", R)
#define CONTAINER_ID(R) D("container_id", EVR_FT_STR, 128, container_id, NULL, NULL, "podman container id", R)
#define STREAM(R) D("stream", EVR_FT_STR, 8, stream, NULL, s_check_stream, "stdout or stderr", R)
#define OFFSET(R) D("offset", EVR_FT_U64, 0, offset, NULL, NULL, "raw bytes of this stream before the chunk", R)
#define RAW(R) D("raw", EVR_FT_U32, 0, raw, NULL, NULL, "raw bytes of the chunk before masking", R)
#define BYTES(R) D("bytes", EVR_FT_BIN, 2 * EVR_OUTPUT_CHUNK_MAX, bytes, NULL, NULL, "output, secrets masked as ***", R)
#define EXIT_CODE(R) D("exit_code", EVR_FT_I64, 0, exit_code, NULL, NULL,                      \
                        "exit code of the step's process, 128+N when signal N ended it (as "   \
                        "a shell says; a host step's reason names the signal); -1 when it "   \
                        "has none (it never started, or it was lost)", R)
#define ALLOWED(R) D("allowed", EVR_FT_BOOL, 0, allowed, NULL, NULL,                           \
                     "the step failed with allow_failure: its failure does not fail the job", R)
#define DURATION(R) D("duration", EVR_FT_DURATION, 0, duration, NULL, NULL, "milliseconds", R)
#define VERSION(R) D("version", EVR_FT_STR, 64, version, NULL, NULL, "evrun version", R)
#define HOW(R) D("how", EVR_FT_STR, 16, how, NULL, s_check_how, "reattached, collected, restarted, created or lost", R)
#define SOURCE(R) D("source", EVR_FT_STR, 16, source, NULL, NULL, "source or ci_source", R)
#define KIND(R) D("kind", EVR_FT_STR, 16, kind, NULL, NULL, "git, copy or tarball", R)
#define URL(R) D("url", EVR_FT_STR, EVR_SPEC_MAX_URL, url, NULL, NULL,                         \
                 "git: the repository; tarball: its URL; copy: the directory", R)
#define REF(R) D("ref", EVR_FT_STR, EVR_SPEC_MAX_REF, ref, NULL, NULL, "git: the ref asked for", R)
#define COMMIT(R) D("commit", EVR_FT_STR, 64, commit, NULL, NULL,                                \
                    "git: the commit checked out (full SHA)", R)
#define OBJECTS(R) D("objects", EVR_FT_U64, 0, objects, NULL, NULL,                              \
                     "git: objects the runner's cache fetched (0: it had them all)", R)
#define TAR_BYTES(R) D("tar_bytes", EVR_FT_U64, 0, tar_bytes, NULL, NULL,                        \
                       "bytes of the tar put into the workspace", R)
#define APATH(R) D("path", EVR_FT_STR, EVR_SPEC_MAX_PATH, path, NULL, s_check_apath, "the file, relative to /workspace", R)
#define SHA256(R) D("sha256", EVR_FT_STR, 64, sha256, NULL, s_check_sha256, "sha256 of the bytes, 64 lower-case hex digits", R)
#define JOBS(R) D("jobs", EVR_FT_U32, 0, jobs, NULL, NULL, "unfinished jobs taken up again", R)
#define IMAGE(R) D("image", EVR_FT_STR, 512, image, NULL, NULL, "the image, as the pipeline names it", R)
#define DIGEST(R) D("digest", EVR_FT_STR, 128, digest, NULL, NULL, "the image's manifest digest (sha256:...)", R)
#define SIZE(R) D("size", EVR_FT_U64, 0, size, NULL, NULL, "bytes of the image", R)
#define OUTPUTS(R) D("outputs", EVR_FT_STRMAP, EVR_OUTPUTS_MAX_KEYS, outputs, NULL, s_check_outputs, \
                     "KEY=VALUE lines the step wrote to $EVRUN_OUTPUT, secrets masked as ***", R)
#define PHASE(R) D("phase", EVR_FT_STR, 16, phase, NULL, s_check_phase, "the hook's phase (PRE_VALIDATION ... CLEANUP)", R)
#define HNAME(R) D("name", EVR_FT_STR, EVR_SPEC_MAX_NAME, name, NULL, NULL, "the hook's name", R)
#define HSTATUS(R) D("status", EVR_FT_STR, 16, status, NULL, s_check_hook_status, "succeeded, failed, refused, timed_out or stopped", R)
#define DURATION_MS(R) D("duration_ms", EVR_FT_DURATION, 0, duration_ms, NULL, NULL, "milliseconds", R)
#define TEXT(R) D("text", EVR_FT_STR, 1024, text, NULL, NULL, "a line of the pull's progress, as podman says it", R)

#define EVDATA(var, name, ...)                                                                   \
    static const evr_field_t var##_fields[] = { __VA_ARGS__ };                                   \
    static const evr_rectype_t var = { name, sizeof(evr_evdata_t), var##_fields,                  \
                                       EVR_ARRAY_LEN(var##_fields), EVR_NO_PRESENT, NULL }

#define PARENT_JOB(R) D("parent_job", EVR_FT_STR, EVR_ULID_LEN, parent_job, NULL, s_check_ulid, \
                        "the job whose step triggered this one (evrun-job trigger)", R)
#define PARENT_STEP(R) D("parent_step", EVR_FT_STR, EVR_SPEC_MAX_NAME, parent_step, NULL, NULL, \
                         "the step of parent_job that triggered it", R)
EVDATA(s_job_accepted, "job.accepted", PIPELINE(true), SPEC(true), ARGS(false), RUNNER(false),
       PARENT_JOB(false), PARENT_STEP(false));
#define PREP_REASON(R) D("reason", EVR_FT_STR, 1024, reason, NULL, NULL, \
                          "its preparation failed (or stopped), why: only the steps that run " \
                          "after a failure run", R)
EVDATA(s_job_started, "job.started", RUNNER(false), PREP_REASON(false));
EVDATA(s_job_paused, "job.paused", REASON(false));
EVDATA(s_job_resumed, "job.resumed", REASON(false));
#define FORCE(R) D("force", EVR_FT_BOOL, 0, force, NULL, NULL,                               \
                   "a cancel of a job being cancelled: its `when: always` steps and on_error " \
                   "are stopped too, at once, and the steps left skipped", R)
EVDATA(s_job_cancel, "job.cancel_requested", REASON(false), FORCE(false));
EVDATA(s_job_finished, "job.finished", JSTATUS(true), REASON(false));
EVDATA(s_step_queued, "step.queued", STEP(true), ATTEMPT(false));
EVDATA(s_step_starting, "step.starting", STEP(true), ATTEMPT(true), CONTAINER(true));
EVDATA(s_step_started, "step.started", STEP(true), ATTEMPT(true), CONTAINER_ID(true));
EVDATA(s_step_output, "step.output", STEP(true), ATTEMPT(false), STREAM(true), OFFSET(true),
       RAW(true), BYTES(true));
EVDATA(s_step_finished, "step.finished", STEP(true), ATTEMPT(false), EXIT_CODE(true),
       DURATION(true), SSTATUS(false), REASON(false), ALLOWED(false));
EVDATA(s_step_skipped, "step.skipped", STEP(true), REASON(true));
EVDATA(s_step_recovered, "step.recovered", STEP(true), ATTEMPT(false), HOW(true));
EVDATA(s_runner_started, "runner.started", RUNNER(true), VERSION(true));
EVDATA(s_runner_recovered, "runner.recovered", JOBS(true));
EVDATA(s_job_source, "job.source", SOURCE(true), KIND(true), URL(false), REF(false),
       COMMIT(false), OBJECTS(false), TAR_BYTES(false));
EVDATA(s_image_pulling, "image.pulling", IMAGE(true));
EVDATA(s_image_progress, "image.progress", IMAGE(true), TEXT(true));
EVDATA(s_image_pulled, "image.pulled", IMAGE(true), DIGEST(false), SIZE(false), DURATION(true));
EVDATA(s_image_pull_failed, "image.pull_failed", IMAGE(true), REASON(true), DURATION(true));
EVDATA(s_step_artifact, "step.artifact", STEP(true), ATTEMPT(true), APATH(true), SIZE(true),
       SHA256(true));
EVDATA(s_step_outputs, "step.outputs", STEP(true), ATTEMPT(true), OUTPUTS(true));
EVDATA(s_hook_started, "hook.started", PHASE(true), HNAME(true));
EVDATA(s_hook_finished, "hook.finished", PHASE(true), HNAME(true), HSTATUS(true),
       DURATION_MS(true), REASON(false));
#define SNAME(R) D("name", EVR_FT_STR, EVR_SPEC_MAX_NAME, name, NULL, NULL, \
                   "the secret's name (its value is never in the log)", R)
EVDATA(s_secret_registered, "secret.registered", STEP(true), ATTEMPT(true), SNAME(true));

/*  The superset, used to free, copy and compare any event's data. */
static const evr_field_t s_all_fields[] = { PIPELINE(false), SPEC(false), ARGS(false), RUNNER(false),
       REASON(false), JSTATUS(false), STEP(false), ATTEMPT(false), CONTAINER(false),
       CONTAINER_ID(false), STREAM(false), OFFSET(false), RAW(false), BYTES(false),
       EXIT_CODE(false), DURATION(false), VERSION(false), HOW(false), JOBS(false),
       SOURCE(false), KIND(false), URL(false), REF(false), COMMIT(false), OBJECTS(false),
       TAR_BYTES(false),
       IMAGE(false), DIGEST(false), SIZE(false), TEXT(false),
       APATH(false), SHA256(false), ALLOWED(false), OUTPUTS(false), PHASE(false), HNAME(false),
       DURATION_MS(false), PARENT_JOB(false), PARENT_STEP(false) };
const evr_rectype_t evr_evdata_all = { "data", sizeof(evr_evdata_t), s_all_fields,
                                       EVR_ARRAY_LEN(s_all_fields), EVR_NO_PRESENT, NULL };

static const evr_rectype_t *const s_data[EVR_EV_COUNT_] = {
    [EVR_EV_JOB_ACCEPTED] = &s_job_accepted,
    [EVR_EV_JOB_STARTED] = &s_job_started,
    [EVR_EV_JOB_PAUSED] = &s_job_paused,
    [EVR_EV_JOB_RESUMED] = &s_job_resumed,
    [EVR_EV_JOB_CANCEL_REQUESTED] = &s_job_cancel,
    [EVR_EV_JOB_FINISHED] = &s_job_finished,
    [EVR_EV_STEP_QUEUED] = &s_step_queued,
    [EVR_EV_STEP_STARTING] = &s_step_starting,
    [EVR_EV_STEP_STARTED] = &s_step_started,
    [EVR_EV_STEP_OUTPUT] = &s_step_output,
    [EVR_EV_STEP_FINISHED] = &s_step_finished,
    [EVR_EV_STEP_SKIPPED] = &s_step_skipped,
    [EVR_EV_STEP_RECOVERED] = &s_step_recovered,
    [EVR_EV_RUNNER_STARTED] = &s_runner_started,
    [EVR_EV_RUNNER_RECOVERED] = &s_runner_recovered,
    [EVR_EV_JOB_SOURCE] = &s_job_source,
    [EVR_EV_IMAGE_PULLING] = &s_image_pulling,
    [EVR_EV_IMAGE_PROGRESS] = &s_image_progress,
    [EVR_EV_IMAGE_PULLED] = &s_image_pulled,
    [EVR_EV_IMAGE_PULL_FAILED] = &s_image_pull_failed,
    [EVR_EV_STEP_ARTIFACT] = &s_step_artifact,
    [EVR_EV_STEP_OUTPUTS] = &s_step_outputs,
    [EVR_EV_HOOK_STARTED] = &s_hook_started,
    [EVR_EV_HOOK_FINISHED] = &s_hook_finished,
    [EVR_EV_SECRET_REGISTERED] = &s_secret_registered,
};

const char *
evr_evtype_name(evr_evtype_t t)
{
    return t > EVR_EV_NONE && t < EVR_EV_COUNT_ ? s_data[t]->name : NULL;
}

evr_evtype_t
evr_evtype_parse(const char *name)
{
    for (int t = EVR_EV_NONE + 1; t < EVR_EV_COUNT_; t++)
        if (strcmp(s_data[t]->name, name) == 0)
            return (evr_evtype_t) t;
    return EVR_EV_NONE;
}

const evr_rectype_t *
evr_evtype_data(evr_evtype_t t)
{
    return t > EVR_EV_NONE && t < EVR_EV_COUNT_ ? s_data[t] : NULL;
}

evr_evtype_t
evr_event_kind(const evr_event_t *ev)
{
    return ev->type < EVR_EV_COUNT_ ? (evr_evtype_t) ev->type : EVR_EV_NONE;
}

static const evr_rectype_t *
s_select_data(const void *parent)
{
    return evr_evtype_data(evr_event_kind(parent));
}

/*  The wire names of the types, by evr_evtype_t; "" marks the zero value
    as not a type. */
static const char *const s_type_names[EVR_EV_COUNT_ + 1] = {
    "", "job.accepted", "job.started", "job.paused", "job.resumed", "job.cancel_requested",
    "job.finished", "step.queued", "step.starting", "step.started", "step.output",
    "step.finished", "step.skipped", "step.recovered", "runner.started", "runner.recovered",
    "job.source",
    "image.pulling", "image.progress", "image.pulled", "image.pull_failed",
    "step.artifact", "step.outputs", "hook.started", "hook.finished",
    "secret.registered", NULL,
};

/*  Job events carry a job id and a per-job seq; runner events neither. */
static const char *
s_event_post(const void *rec)
{
    const evr_event_t *ev = rec;
    bool runner_ev = ev->type == EVR_EV_RUNNER_STARTED || ev->type == EVR_EV_RUNNER_RECOVERED;
    if (runner_ev)
        return ev->job ? "job: runner events carry no job"
             : ev->jseq ? "jseq: runner events carry no per-job seq" : NULL;
    if (!ev->job)
        return "missing required field \"job\"";
    if (ev->jseq == 0)
        return "jseq: per-job seq starts at 1";
    return NULL;
}

static const evr_field_t s_event_fields[] = {
    { "seq", EVR_FT_U64, true, 0, offsetof(evr_event_t, seq), NULL, NULL, NULL,
      "log seq: dense in the log that holds the event, from 1 (a runner's, as the runner "
      "sends it; the broker's archive, as history and publications give it)", NULL, NULL },
    { "job", EVR_FT_STR, false, EVR_ULID_LEN, offsetof(evr_event_t, job), NULL, s_check_ulid,
      NULL, "job id (ULID); required for job.* and step.* events", NULL, NULL },
    { "jseq", EVR_FT_U32, false, 0, offsetof(evr_event_t, jseq), NULL, NULL, NULL,
      "per-job seq: dense, from 1; required for job.* and step.* events", NULL, NULL },
    { "type", EVR_FT_ENUM, true, 0, offsetof(evr_event_t, type), NULL, NULL, NULL,
      "event type", s_type_names, NULL },
    { "time", EVR_FT_U64, true, 0, offsetof(evr_event_t, time), NULL, NULL, NULL,
      "wall clock, ns since the Unix epoch", NULL, NULL },
    { "data", EVR_FT_VARIANT, true, 0, offsetof(evr_event_t, data), &evr_evdata_all, NULL,
      s_select_data, "the payload, fields per type", NULL, NULL },
};

const evr_rectype_t evr_event_type = { "event", sizeof(evr_event_t), s_event_fields,
                                       EVR_ARRAY_LEN(s_event_fields), EVR_NO_PRESENT,
                                       s_event_post };

evr_event_t *
evr_event_new(evr_evtype_t type)
{
    evr_event_t *ev = evr_calloc(1, sizeof *ev);
    ev->type = type;
    return ev;
}

void
evr_event_destroy(evr_event_t **self_p)
{
    if (!*self_p)
        return;
    evr_rec_free(&evr_event_type, *self_p);
    free(*self_p);
    *self_p = NULL;
}

/*  Makes *s valid UTF-8 (a byte that starts no valid character becomes
    '?') of at most limit bytes: a longer text is cut between characters
    and ends with EVR_CUT_MARK (a reason composed of a long error, e.g.
    runner recovery's "not recovered: ..."). */
static void
s_fit_str(char *s, uint32_t limit)
{
    evr_utf8_clean(s);
    evr_text_fit(s, limit);
}

void
evr_event_fit(evr_event_t *ev)
{
    const evr_rectype_t *t = evr_evtype_data(evr_event_kind(ev));
    for (size_t i = 0; t && i < t->nfields; i++) {
        const evr_field_t *f = &t->fields[i];
        char *v = f->type == EVR_FT_STR ? *(char **) ((char *) &ev->data + f->off) : NULL;
        if (v)
            s_fit_str(v, evr_field_limit(f));
    }
}

void
evr_event_encode(const evr_event_t *ev, uint8_t **buf, size_t *len)
{
    evr_codec_encode(&evr_event_type, ev, buf, len);
}

evr_rc_t
evr_event_decode(const uint8_t *buf, size_t len, evr_event_t *ev, evr_err_t *err)
{
    return evr_codec_decode(buf, len, &evr_event_type, ev, "event", err);
}
