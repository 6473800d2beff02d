/*  evr_engine.h: the job engine of a runner.

    Runs jobs' steps as podman containers, one thread, event-driven: every
    podman call is asynchronous (evr_podman), and the engine's loop waits
    for whichever finishes first.  Every transition is an event appended to
    the store before its effect (DESIGN §5): the intent to create a
    container (step.starting) is committed before the create call, a step's
    result (step.finished) before its container is removed.  Events that
    arise in one loop turn are committed together (group commit).

    Output is demultiplexed, masked (secrets become ***), cut into chunks
    of at most EVR_OUTPUT_CHUNK_MAX bytes or flushed after a short delay,
    stored as step.output events with raw offsets, and then printed.
*/
#ifndef EVR_ENGINE_H_INCLUDED
#define EVR_ENGINE_H_INCLUDED

#include <stdio.h>

#include "evr_podman.h"
#include "evr_store.h"

typedef struct evr_engine evr_engine_t;

typedef struct {
    const char *runner_id;      /* written into job.accepted */
    const char *secrets_dir;    /* files named after secrets; NULL: environment only */
    const char *artifacts_dir;  /* artifacts land in DIR/JOB/STEP/ */
    bool keep;                  /* keep containers and volumes (debugging) */
    bool print;                 /* print output and progress to stdout */
    int grace_s;                /* SIGTERM -> SIGKILL grace on stop (default 10) */
    uint32_t parallel;          /* default steps at once per job (default 4) */
    uint32_t flush_ms;          /* longest wait before stored output (default 50) */
} evr_engine_opts_t;

/*  The engine uses store and podman; the caller keeps ownership. */
evr_engine_t *evr_engine_new(const evr_engine_opts_t *opts, evr_store_t *store,
                             evr_podman_t *podman);
void evr_engine_destroy(evr_engine_t **self_p);

/*  Accepts a job: resolves its secrets (EVR_ERR_CONFIG naming a missing
    one), appends job.accepted and schedules it.  args are the resolved
    args (evr_spec_bind_args). */
evr_rc_t evr_engine_submit(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
                           const evr_strmap_t *args, evr_err_t *err);

/*  Takes up every unfinished job of the store again (after a restart):
    see evr_recover.c.  *jobs counts them; appends runner.recovered when
    there are any. */
evr_rc_t evr_engine_recover(evr_engine_t *self, uint32_t *jobs, evr_err_t *err);

/*  True when every job the engine holds succeeded (vacuously true). */
bool evr_engine_all_succeeded(const evr_engine_t *self);

/*  Runs one turn of the loop, waiting at most timeout_ms.  Returns the
    number of jobs not finished yet. */
int evr_engine_turn(evr_engine_t *self, int timeout_ms);

/*  Graceful cancel of every job (SIGTERM to running steps, then SIGKILL
    after the grace period; steps not started are skipped); with now, the
    running steps are killed at once. */
void evr_engine_cancel_all(evr_engine_t *self, const char *reason, bool now);

/*  A store failure stops the engine: then this returns it (and the loop
    ends its jobs without further events). */
evr_rc_t evr_engine_failure(const evr_engine_t *self, const char **msg);

/*  Final status of a finished job (EVR_JOB_NONE when unknown). */
evr_job_status_t evr_engine_job_status(const evr_engine_t *self, const char *job_id);

/*  Prints a summary table of a job's steps to out. */
void evr_engine_summary(const evr_engine_t *self, const char *job_id, FILE *out);

#endif
