/*  evr_trigger.h: follow-up jobs, the runner's side (evr_step_trigger.c).

    A step runs `evrun-job trigger PIPELINE`: its control channel's
    `trigger` command checks the job's `triggers:` (or the runner's
    triggers_any), derives the child's job id and, on a runner with a
    broker, hands the trigger to the daemon (evr_engine_set_trigger),
    which sends it on the runner session; the broker's answer comes back
    through evr_engine_triggered.  The child's id is a function of the
    parent job, the step, its attempt, the call (an id evrun-job makes
    once per invocation and keeps across its retries) and the pipeline,
    so that a trigger sent again (evrun-job retrying after a runner
    crash, the runner resending an unanswered one) names the same job,
    which the broker takes as a duplicate.  Without a broker (--exec), the
    command says which job runs next and the command that runs it, or,
    with --follow-triggers, the trigger function is evr_followup.h's.  A
    step may also trigger a pipeline file of the job's source (`file`:
    evr_trigger_file.c); its id is derived with "file:PATH" in place of
    the pipeline. */
#ifndef EVR_TRIGGER_H_INCLUDED
#define EVR_TRIGGER_H_INCLUDED

#include "evr_engine.h"
#include "evr_msg.h"
#include "evr_ulid.h"

/*  Triggers the engine remembers (their state, for evrun-job's polls);
    more at once pending are refused. */
#define EVR_TRIGGER_TABLE 64
/*  An unanswered trigger is sent again after this long. */
#define EVR_TRIGGER_RESEND_MS 3000

/*  Pipeline files of the source kept for triggers, at most. */
#define EVR_TRIGGER_FILES_MAX 64

/*  A pipeline file of the job's source a step triggers (evrun-job trigger
    --file; evr_trigger_file.c): its path in the source, its text and its
    spec, loaded and checked. */
typedef struct {
    const char *path;
    const char *text;
    size_t len;
    const evr_spec_t *spec;
} evr_trigger_file_t;

/*  Sends a trigger on the runner session (the daemon's): a registered
    pipeline, or with file that file's spec (pipeline its name). */
typedef void (evr_trigger_send_fn)(void *arg, const char *job, const char *pipeline,
                                   const evr_strmap_t *args, const char *parent_job,
                                   const char *parent_step, const evr_trigger_file_t *file);

/*  Sends a query (about job, or else pipeline) on the runner session. */
typedef void (evr_query_send_fn)(void *arg, uint64_t seq, const char *job, const char *pipeline);
/*  Queries the engine remembers at once (evrun-job result, running). */
#define EVR_QUERY_TABLE 32

/*  The child's job id of a trigger (see above): the call's time with
    bytes of a hash of the rest.  EVR_ERR_PROTO when call is no ULID. */
evr_rc_t evr_trigger_child_id(const char *parent_job, const char *step, uint32_t attempt,
                              const char *call, const char *pipeline,
                              char out[EVR_ULID_LEN + 1], evr_err_t *err);

/*  Where the engine's triggers and queries go (NULL: nowhere, the --exec
    mode). */
void evr_engine_set_trigger(evr_engine_t *self, evr_trigger_send_fn *fn, evr_query_send_fn *qfn,
                            void *arg);
/*  Who refuses a trigger in its messages (a static string; default "the
    broker"). */
void evr_engine_set_trigger_who(evr_engine_t *self, const char *who);
/*  The broker's answer to a query (a `queried` message). */
void evr_engine_queried(evr_engine_t *self, const evr_msg_t *m);
/*  The broker's answer about the trigger of job: accepted (existing: it
    knew the job) when code is NULL, else refused with message. */
void evr_engine_triggered(evr_engine_t *self, const char *job, bool existing, const char *code,
                          const char *message);

#endif
