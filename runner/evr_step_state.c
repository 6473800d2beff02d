/*  evr_step_state.c: a step's states (evr_eng_state_t) and the one way
    to move between them.

    The table below is the whole lifecycle of a step: a step moves only
    along it (evr_eng_step_to), so that a reader can see every path, and
    a path the code takes that the table does not know shows up at once
    (an error line, an assert in debug builds).  At log level debug
    (--log-level debug, EVRUN_LOG_LEVEL=debug) every move is logged.
*/
#include <assert.h>

#include "evr_engine_int.h"
#include "evr_log.h"

#define S_TO(s) (1u << (s))

/*  The moves allowed from each state. */
static const uint32_t s_moves[EVR_ENG_STEP_NSTATES] = {
    /* its turn (begin), ahead of it (prepare, or recovered queued), or
       recovery's verdict from the log (recorded starting, running,
       finished, skipped); skipped when what it needs failed */
    [EVR_ENG_STEP_PENDING] = S_TO(EVR_ENG_STEP_CREATING) | S_TO(EVR_ENG_STEP_EARLY_CREATING)
                           | S_TO(EVR_ENG_STEP_SKIPPED) | S_TO(EVR_ENG_STEP_INSPECTING)
                           | S_TO(EVR_ENG_STEP_INSPECTING_RUN) | S_TO(EVR_ENG_STEP_FINISHED),
    /* the create answers; or its turn comes first (launch); or the job
       stops (skip: the create's answer removes what it made) */
    [EVR_ENG_STEP_EARLY_CREATING] = S_TO(EVR_ENG_STEP_EARLY_CREATED)
                                  | S_TO(EVR_ENG_STEP_EARLY_FAILED)
                                  | S_TO(EVR_ENG_STEP_CREATING) | S_TO(EVR_ENG_STEP_SKIPPED),
    [EVR_ENG_STEP_EARLY_CREATED] = S_TO(EVR_ENG_STEP_ATTACHING) | S_TO(EVR_ENG_STEP_SKIPPED),
    /* at its turn it ends failed, without running */
    [EVR_ENG_STEP_EARLY_FAILED] = S_TO(EVR_ENG_STEP_ENDING) | S_TO(EVR_ENG_STEP_SKIPPED),
    /* created: attach.  From here to RUNNING, ENDING is a call that
       failed, or a job that stops and does not wait for the answer
       (evr_eng_step_abandon) */
    [EVR_ENG_STEP_CREATING] = S_TO(EVR_ENG_STEP_ATTACHING) | S_TO(EVR_ENG_STEP_ENDING),
    /* the stream's head: start, or hold the start while the job is paused */
    [EVR_ENG_STEP_ATTACHING] = S_TO(EVR_ENG_STEP_STARTING) | S_TO(EVR_ENG_STEP_HELD)
                             | S_TO(EVR_ENG_STEP_ENDING),
    [EVR_ENG_STEP_HELD] = S_TO(EVR_ENG_STEP_STARTING) | S_TO(EVR_ENG_STEP_SKIPPED),
    /* the start's answer or the first output */
    [EVR_ENG_STEP_STARTING] = S_TO(EVR_ENG_STEP_RUNNING) | S_TO(EVR_ENG_STEP_ENDING),
    [EVR_ENG_STEP_RUNNING] = S_TO(EVR_ENG_STEP_ENDING),
    /* absent: create it (ahead of its turn); created: wait for the turn;
       it ran: as it is now (exited, running, or gone) */
    [EVR_ENG_STEP_INSPECTING] = S_TO(EVR_ENG_STEP_EARLY_CREATING)
                              | S_TO(EVR_ENG_STEP_EARLY_CREATED)
                              | S_TO(EVR_ENG_STEP_RUNNING) | S_TO(EVR_ENG_STEP_REATTACHED),
    [EVR_ENG_STEP_INSPECTING_RUN] = S_TO(EVR_ENG_STEP_RUNNING)
                                  | S_TO(EVR_ENG_STEP_REATTACHED) | S_TO(EVR_ENG_STEP_ENDING),
    /* a read of the log so far; or the exit: the log read whole; or
       given up (a stop and the removal after it failed) */
    [EVR_ENG_STEP_REATTACHED] = S_TO(EVR_ENG_STEP_PEEKING) | S_TO(EVR_ENG_STEP_RUNNING)
                              | S_TO(EVR_ENG_STEP_ENDING),
    [EVR_ENG_STEP_PEEKING] = S_TO(EVR_ENG_STEP_REATTACHED) | S_TO(EVR_ENG_STEP_RUNNING)
                           | S_TO(EVR_ENG_STEP_ENDING),
    [EVR_ENG_STEP_ENDING] = S_TO(EVR_ENG_STEP_FINISHED),
    /* a retry: the next attempt */
    [EVR_ENG_STEP_FINISHED] = S_TO(EVR_ENG_STEP_PENDING),
    [EVR_ENG_STEP_SKIPPED] = 0,
};

static const char *const s_names[EVR_ENG_STEP_NSTATES] = {
    [EVR_ENG_STEP_PENDING] = "pending",
    [EVR_ENG_STEP_EARLY_CREATING] = "early_creating",
    [EVR_ENG_STEP_EARLY_CREATED] = "early_created",
    [EVR_ENG_STEP_EARLY_FAILED] = "early_failed",
    [EVR_ENG_STEP_CREATING] = "creating",
    [EVR_ENG_STEP_ATTACHING] = "attaching",
    [EVR_ENG_STEP_HELD] = "held",
    [EVR_ENG_STEP_STARTING] = "starting",
    [EVR_ENG_STEP_RUNNING] = "running",
    [EVR_ENG_STEP_INSPECTING] = "inspecting",
    [EVR_ENG_STEP_INSPECTING_RUN] = "inspecting_run",
    [EVR_ENG_STEP_REATTACHED] = "reattached",
    [EVR_ENG_STEP_PEEKING] = "peeking",
    [EVR_ENG_STEP_ENDING] = "ending",
    [EVR_ENG_STEP_FINISHED] = "finished",
    [EVR_ENG_STEP_SKIPPED] = "skipped",
};

const char *
evr_eng_state_name(evr_eng_state_t s)
{
    return (unsigned) s < EVR_ENG_STEP_NSTATES ? s_names[s] : "?";
}

void
evr_eng_step_to(evr_eng_step_t *st, evr_eng_state_t to)
{
    evr_eng_state_t from = st->state;
    bool ok = (unsigned) to < EVR_ENG_STEP_NSTATES && (s_moves[from] & S_TO(to));
    if (!ok) {
        evr_log_error("evrun-runner", "job %s step %s attempt %u: no move from %s to %s (a bug "
                      "of the engine)", st->job->id, st->spec->name, st->attempt,
                      evr_eng_state_name(from), evr_eng_state_name(to));
        assert(!"a step's state moved along no edge of the table");
    }
    else
        evr_log_debug("evrun-runner", "job %s step %s attempt %u: %s -> %s", st->job->id,
                      st->spec->name, st->attempt, evr_eng_state_name(from),
                      evr_eng_state_name(to));
    st->state = to;
}

bool
evr_eng_step_runs(const evr_eng_step_t *st)
{
    return st->state == EVR_ENG_STEP_RUNNING || st->state == EVR_ENG_STEP_REATTACHED
        || st->state == EVR_ENG_STEP_PEEKING;
}

bool
evr_eng_step_has_started(const evr_eng_step_t *st)
{
    return evr_eng_step_runs(st) || st->state == EVR_ENG_STEP_INSPECTING_RUN;
}

bool
evr_eng_step_begun(const evr_eng_step_t *st)
{
    switch (st->state) {
    case EVR_ENG_STEP_CREATING:
    case EVR_ENG_STEP_ATTACHING:
    case EVR_ENG_STEP_STARTING:
        return true;
    default:
        return evr_eng_step_has_started(st);
    }
}

bool
evr_eng_step_early(const evr_eng_step_t *st)
{
    return st->state == EVR_ENG_STEP_EARLY_CREATING || st->state == EVR_ENG_STEP_EARLY_CREATED
        || st->state == EVR_ENG_STEP_EARLY_FAILED;
}

bool
evr_eng_step_waiting(const evr_eng_step_t *st)
{
    return st->state == EVR_ENG_STEP_PENDING || evr_eng_step_early(st);
}

bool
evr_eng_step_done(const evr_eng_step_t *st)
{
    return st->state == EVR_ENG_STEP_FINISHED || st->state == EVR_ENG_STEP_SKIPPED;
}
