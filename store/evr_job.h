/*  evr_job.h: the job state machine and the projected state of a job.

    A job's state is a fold of its events: evr_job_apply(state, event)
    is the one function the runner's live state, its recovery, the
    broker's status answers and evrun-replay all use (the broker takes a
    runner's events with evr_job_apply_sent: the same, and a few checks
    more).  It checks every
    transition first and changes nothing when the event is illegal (a step
    finishing twice, an event after job.finished, a gap in the per-job
    seq, output at the wrong offset), reporting the job, the event and the
    state instead.

    The projection is stored in the `jobs` database as msgpack through the
    field table evr_job_type, so its JSON form comes for free.
*/
#ifndef EVR_JOB_H_INCLUDED
#define EVR_JOB_H_INCLUDED

#include "evr_event.h"
#include "evr_field.h"

typedef enum {
    EVR_JOB_NONE = 0,   /* no job.accepted yet */
    EVR_JOB_QUEUED,
    EVR_JOB_RUNNING,
    EVR_JOB_PAUSED,
    EVR_JOB_SUCCEEDED,
    EVR_JOB_FAILED,
    EVR_JOB_CANCELLED,
    EVR_JOB_TIMED_OUT,
    EVR_JOB_LOST,
} evr_job_status_t;

typedef enum {
    EVR_STEP_PENDING = 0,
    EVR_STEP_QUEUED,
    EVR_STEP_STARTING,
    EVR_STEP_RUNNING,
    EVR_STEP_SUCCEEDED,
    EVR_STEP_FAILED,
    EVR_STEP_CANCELLED,
    EVR_STEP_TIMED_OUT,
    EVR_STEP_LOST,
    EVR_STEP_SKIPPED,
} evr_step_status_t;

typedef struct {
    char *name;
    uint32_t status;        /* evr_step_status_t */
    uint32_t attempt;       /* from 1 once queued */
    char *container;        /* deterministic name, from step.starting */
    char *container_id;
    int64_t exit_code;
    uint64_t started;       /* ns, step.started */
    uint64_t finished;      /* ns, step.finished / step.skipped */
    uint64_t duration;      /* ms, as step.finished reported it */
    uint64_t out_stdout;    /* raw bytes stored, this attempt */
    uint64_t out_stderr;
    uint32_t chunks;        /* step.output events, this attempt */
    uint32_t recoveries;    /* step.recovered events */
    char *reason;
    bool allowed;       /* failed with allow_failure: the job does not fail */
    evr_strmap_t outputs;   /* step.outputs of this attempt (masked) */
} evr_stepstate_t;

typedef struct {
    char *id;               /* ULID */
    char *pipeline;
    uint32_t status;        /* evr_job_status_t */
    char *runner;
    char *reason;           /* of job.finished or job.cancel_requested */
    uint64_t created;       /* ns: job.accepted */
    uint64_t started;       /* ns: job.started */
    uint64_t finished;      /* ns: job.finished */
    uint32_t last_jseq;     /* per-job seq of the last event applied */
    uint64_t last_seq;      /* runner seq of the last event applied */
    bool cancel_requested;
    bool cancel_forced;     /* a job.cancel_requested with force: a second cancel */
    bool compacted;         /* events removed, projection kept: set only by the
                               former evr_store_compact, which no binary called;
                               read so that a log carrying it still verifies */
    bool output_dropped;    /* retention removed its output bytes */
    evr_reclist_t steps;    /* of evr_stepstate_t, in the pipeline's order */
} evr_job_t;

extern const evr_rectype_t evr_job_type;
extern const evr_rectype_t evr_stepstate_type;

const char *evr_job_status_name(evr_job_status_t s);
const char *evr_step_status_name(evr_step_status_t s);

/*  A step.finished's exit_code when the step has none: its process never
    started (an image not there, a create that failed) or was lost, how
    it ended unknown. */
#define EVR_STEP_NO_EXIT (-1)
/*  Whether a finished step's exit code belongs beside its status in a
    text for people ("failed (exit 3)"): not when it has none
    (EVR_STEP_NO_EXIT), nor the 0 of a step that did not succeed (its
    reason says why: "its command exited 0, but artifact ..."). */
bool evr_step_exit_told(int64_t exit_code, bool succeeded);
/*  Parses a job status name ("running"); false when unknown. */
bool evr_job_status_parse(const char *s, evr_job_status_t *out);

/*  True for succeeded, failed, cancelled, timed_out, lost. */
bool evr_job_is_final(const evr_job_t *job);
bool evr_job_step_is_final(const evr_stepstate_t *st);

/*  The i-th step, and the step called name (NULL when none). */
evr_stepstate_t *evr_job_step(const evr_job_t *job, uint32_t i);
evr_stepstate_t *evr_job_find_step(const evr_job_t *job, const char *name);

/*  Steps in a final state (finished or skipped). */
uint32_t evr_job_steps_done(const evr_job_t *job);

/*  Applies ev to job.  job starts zeroed for a new job (the first event
    must be job.accepted).  Returns EVR_OK, or EVR_ERR_STATE with err
    naming the job, the event (type and per-job seq) and the state, in
    which case job is unchanged.  Runner events (runner.*) are not job
    events and are refused with EVR_ERR_STATE. */
evr_rc_t evr_job_apply(evr_job_t *job, const evr_event_t *ev, evr_err_t *err);
/*  evr_job_apply for an event a runner sends to the broker (ingest),
    which also refuses, with EVR_ERR_STATE: a job.accepted whose pipeline
    is not its spec's; a job.finished{status: succeeded} of a job that
    has not started (no job.started) or with a step not ended (pending,
    queued, starting or running).  The runner's own log, rebuilds and
    replays fold with evr_job_apply. */
evr_rc_t evr_job_apply_sent(evr_job_t *job, const evr_event_t *ev, evr_err_t *err);

/*  Heap jobs: new (zeroed), destroy frees all. */
evr_job_t *evr_job_new(void);
void evr_job_destroy(evr_job_t **self_p);

#endif
