/*  evr_event.h: the events of the job lifecycle (DESIGN §4).

    An event is what a runner appends to its log before it acts: a header
    (runner seq, job id, per-job seq, type, wall-clock time) and a data map
    whose fields depend on the type.  All payload fields live in one flat
    struct, evr_evdata_t; each event type has its own field table saying
    which of them it carries and which are required, and that table drives
    the codec, JSON output and PROTOCOL.md.
*/
#ifndef EVR_EVENT_H_INCLUDED
#define EVR_EVENT_H_INCLUDED

#include "evr_field.h"
#include "evr_spec.h"
#include "evr_ulid.h"

typedef enum {
    EVR_EV_NONE = 0,
    EVR_EV_JOB_ACCEPTED,
    EVR_EV_JOB_STARTED,
    EVR_EV_JOB_PAUSED,
    EVR_EV_JOB_RESUMED,
    EVR_EV_JOB_CANCEL_REQUESTED,
    EVR_EV_JOB_FINISHED,
    EVR_EV_STEP_QUEUED,
    EVR_EV_STEP_STARTING,
    EVR_EV_STEP_STARTED,
    EVR_EV_STEP_OUTPUT,
    EVR_EV_STEP_FINISHED,
    EVR_EV_STEP_SKIPPED,
    EVR_EV_STEP_RECOVERED,
    EVR_EV_RUNNER_STARTED,
    EVR_EV_RUNNER_RECOVERED,
    EVR_EV_JOB_SOURCE,
    EVR_EV_IMAGE_PULLING,       /* a pull of a job's image went to a registry */
    EVR_EV_IMAGE_PROGRESS,      /* a line of its progress (one per layer) */
    EVR_EV_IMAGE_PULLED,
    EVR_EV_IMAGE_PULL_FAILED,
    EVR_EV_STEP_ARTIFACT,
    EVR_EV_STEP_OUTPUTS,        /* what a step wrote to $EVRUN_OUTPUT, masked */
    EVR_EV_HOOK_STARTED,        /* a lifecycle hook of the runner's settings runs */
    EVR_EV_HOOK_FINISHED,       /* ... and has ended (runner/evr_hooks.h) */
    EVR_EV_SECRET_REGISTERED,   /* a step registered a secret (its name only) */
    EVR_EV_COUNT_
} evr_evtype_t;

/*  Largest raw output chunk one step.output event stands for.  Masking can
    lengthen it (a 1-byte secret becomes "***"), so `bytes` may hold up to
    twice this. */
#define EVR_OUTPUT_CHUNK_MAX (64u * 1024u)

typedef struct {
    char *pipeline;
    evr_spec_t *spec;
    evr_strmap_t args;
    char *runner;
    char *status;       /* job.finished: succeeded failed cancelled timed_out lost;
                           step.finished: succeeded failed cancelled timed_out lost */
    char *reason;
    bool allowed;       /* step.finished: a failure of a step with allow_failure */
    bool force;         /* job.cancel_requested: a second cancel, its `always` steps stopped too */
    char *step;
    uint32_t attempt;
    char *container;    /* step.starting: the deterministic container name */
    char *container_id; /* step.started */
    char *stream;       /* stdout, stderr */
    uint64_t offset;    /* raw bytes of this stream before this chunk */
    uint32_t raw;       /* raw bytes of this chunk before masking */
    evr_bin_t bytes;    /* masked output */
    int64_t exit_code;
    uint64_t duration;  /* ms */
    char *version;
    char *how;          /* step.recovered: reattached, collected, restarted, created, lost */
    uint32_t jobs;      /* runner.recovered */
    /* job.source: a source put into the job's workspace */
    char *source;       /* "source" or "ci_source" */
    char *kind;         /* git, copy, tarball */
    char *url;          /* git: the repository; tarball: the URL; copy: the path */
    char *ref;          /* git: the ref asked for */
    char *commit;       /* git: the commit it resolved to (full SHA) */
    uint64_t objects;   /* git: objects the runner's cache fetched (0: all were there) */
    uint64_t tar_bytes; /* bytes of the tar put into the workspace */
    char *image;        /* image.*: the image as the pipeline names it */
    char *digest;       /* image.pulled: its manifest digest */
    uint64_t size;      /* image.pulled: bytes */
    /* hook.started, hook.finished */
    char *phase;        /* PRE_VALIDATION ... CLEANUP */
    char *name;         /* the hook's name (settings) */
    uint64_t duration_ms;   /* hook.finished */
    char *text;         /* image.progress: a line of the registry's progress */
    char *path;         /* step.artifact: the file, relative to /workspace */
    char *sha256;       /* step.artifact: 64 lower-case hex digits */
    evr_strmap_t outputs;   /* step.outputs: KEY -> VALUE (secrets masked) */
    char *parent_job;   /* job.accepted: the job whose step triggered this one */
    char *parent_step;  /* job.accepted: that step */
} evr_evdata_t;

/*  Bounds of a step's outputs (step.outputs, $EVRUN_OUTPUT): the file's
    bytes, the keys, a value's bytes (one line). */
#define EVR_OUTPUTS_MAX_BYTES (64u * 1024u)
#define EVR_OUTPUTS_MAX_KEYS 64
#define EVR_OUTPUTS_MAX_VALUE 4096

/*  NULL when s is 64 lower-case hex digits (a sha256), else why. */
const char *evr_event_sha256_problem(const char *s);
/*  NULL when p names an artifact file safely: relative, its components
    neither empty nor "." nor "..", no control character, UTF-8, at most
    EVR_SPEC_MAX_PATH bytes; else why. */
const char *evr_event_artifact_path_problem(const char *p);

typedef struct {
    uint64_t seq;       /* log seq, dense per log, from 1 (the archive renumbers) */
    char *job;          /* ULID; NULL for runner.* events */
    uint32_t jseq;      /* per-job seq, dense, from 1; 0 for runner.* events */
    uint32_t type;      /* evr_evtype_t; a string ("job.accepted") on the wire */
    uint64_t time;      /* wall clock, ns since the epoch */
    evr_evdata_t data;
} evr_event_t;

extern const evr_rectype_t evr_event_type;     /* the whole event */
extern const evr_rectype_t evr_evdata_all;     /* superset of data fields */

/*  Name of an event type ("step.output"), or NULL for an invalid value. */
const char *evr_evtype_name(evr_evtype_t t);
/*  Event type of a name, EVR_EV_NONE when unknown. */
evr_evtype_t evr_evtype_parse(const char *name);
/*  Field table of the data of type t, or NULL. */
const evr_rectype_t *evr_evtype_data(evr_evtype_t t);

/*  The type of ev. */
evr_evtype_t evr_event_kind(const evr_event_t *ev);

/*  Heap events: new (zeroed) with type set; destroy frees all. */
evr_event_t *evr_event_new(evr_evtype_t type);
void evr_event_destroy(evr_event_t **self_p);

/*  Makes every string of ev's data decodable: valid UTF-8 (a byte that
    starts no valid character becomes '?') within its field's limit (cut
    between characters).  Reasons are often cut by a fixed buffer or carry
    a peer's text: one such event in a log would stop it from being read
    or sent. */
void evr_event_fit(evr_event_t *ev);

/*  Encodes ev as one msgpack map; caller owns *buf. */
void evr_event_encode(const evr_event_t *ev, uint8_t **buf, size_t *len);
/*  Decodes untrusted bytes into ev (zeroed by the caller); on error ev is
    left zeroed and err says which field and why. */
evr_rc_t evr_event_decode(const uint8_t *buf, size_t len, evr_event_t *ev, evr_err_t *err);

/*  True when s is one of the job statuses of job.finished. */
bool evr_event_status_ok(const char *s);

#endif
