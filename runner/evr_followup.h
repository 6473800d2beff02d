/*  evr_followup.h: follow-up jobs without a broker (evrun-runner --exec
    --follow-triggers, and --recover --follow-triggers).

    A step's `evrun-job trigger PIPELINE` reaches the engine as on a
    runner with a broker (evr_trigger.h: the runner checks `triggers:`
    and derives the child's job id from the job, step, attempt, call and
    pipeline); here the engine's trigger function is evr_followup_send,
    which answers at once: it finds the pipeline in the pipelines
    directory (the same format as the broker's pipelines_dir: the first
    *.yml / *.yaml file, in name order, whose `pipeline:` is the name),
    loads it and binds the args (an error, with the file's line and
    column, goes back to the step), then records the follow-up in the
    store's kv table, key "follow/CHILD", value a JSON object (pipeline,
    parent_job, parent_step, depth, args, file, and the file's text as it
    was then), committed before the step hears "accepted".  The same
    child again (evrun-job retrying, after a runner restart too) finds
    its record: "existing", nothing new.

    After the runner's jobs have ended, evr_followup_start starts the
    oldest record whose job the store does not know yet (a job the store
    knows is one started already: recovery runs it if it is unfinished;
    a finished one's record is dropped), from the recorded text, with the
    parent recorded in its job.accepted.  So a runner killed at any point
    and run again with --recover --follow-triggers on the same state
    directory (or --exec --follow-triggers) runs every recorded follow-up
    exactly once.  Bounds: a chain of follow-ups at most
    EVR_FOLLOWUP_DEPTH deep, at most EVR_FOLLOWUP_MAX recorded and not yet
    started at once; more is refused to the step that asks. */
#ifndef EVR_FOLLOWUP_H_INCLUDED
#define EVR_FOLLOWUP_H_INCLUDED

#include "evr_engine.h"
#include "evr_msg.h"
#include "evr_ulid.h"

#define EVR_FOLLOWUP_DEPTH EVR_TRIGGER_DEPTH   /* evr_msg.h: the broker's too */
#define EVR_FOLLOWUP_MAX 64

typedef struct evr_followup evr_followup_t;

/*  Follow-ups of eng's jobs, recorded in store; pipelines are looked up
    in dir (NULL: none, a trigger is refused saying so).  execs describe
    the executor in each job's header.  Sets eng's trigger function. */
evr_followup_t *evr_followup_new(evr_engine_t *eng, evr_store_t *store, const char *dir,
                                 evr_exec_t *const *execs);
void evr_followup_destroy(evr_followup_t **self_p);

/*  Starts the next recorded follow-up (see above), printing its header
    when print: 1 started (its id in job), 0 none left.  *failed is set
    when a recorded follow-up cannot run (said on stderr; recorded as a
    failed job when it has a spec). */
int evr_followup_start(evr_followup_t *self, char job[EVR_ULID_LEN + 1], bool print,
                       bool *failed);

/*  The follow-up job has run: its record goes when the store has it
    final (so that retention removing the job later cannot make the record
    look unstarted). */
void evr_followup_ended(evr_followup_t *self, const char *job);

/*  Recorded follow-ups not started yet. */
uint32_t evr_followup_pending(evr_followup_t *self);

#endif
