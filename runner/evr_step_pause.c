/*  evr_step_pause.c: pausing and resuming a step's unit, as its job wants.

    The job says what it wants (evr_eng_step_freeze: want_frozen); the
    step makes one call at a time (freeze_op) until its unit is as wanted
    (frozen).  A call that fails is not taken to have done nothing, nor
    to have done its work: the unit is inspected, and what the executor
    says it is (paused, running, exited, gone) becomes frozen.  When it
    is still not as wanted, the call is tried again after S_RETRY_MS, up
    to S_RETRIES times.  Then a pause is given up (the unit runs on while
    its job is paused: a warning says so); a resume is given up too, but
    a job cannot go on with a frozen unit, so the step is stopped (killed:
    a frozen unit does not see SIGTERM) and fails with a reason saying
    why.  A stop of a unit that is frozen, or may be, waits for its
    resume (stop_after), as SIGTERM would reach it only once thawed.
*/
#include <stdlib.h>

#include "evr_engine_int.h"

/*  Tries after the first failed call, and the wait before each. */
#define S_RETRIES 3
#define S_RETRY_MS 100

static void s_sync(evr_eng_step_t *st);

/*  The unit is as far as the engine can bring it now: the next wish, or
    the stop that waited for its resume. */
static void
s_settled(evr_eng_step_t *st)
{
    s_sync(st);
    if (!st->frozen && st->freeze_op == EVR_ENG_FREEZE_IDLE && st->stop_after) {
        bool now = st->stop_after == 2;
        st->stop_after = 0;
        evr_eng_stop_step(st, now);
    }
}

static void
s_retry_due(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_eng_step_t *st = arg;
    st->freeze_timer = 0;
    st->freeze_op = EVR_ENG_FREEZE_IDLE;
    s_settled(st);
}

/*  The calls failed S_RETRIES + 1 times and the unit is still not as
    wanted.  A pause: the unit runs on.  A resume: the step is stopped. */
static void
s_give_up(evr_eng_step_t *st)
{
    evr_eng_job_t *job = st->job;
    const char *unit = job->ex->ops->unit_word;
    unsigned tries = st->freeze_fails;
    st->freeze_fails = 0;
    if (st->want_frozen) {
        evr_eng_warn("job %s: step %s (%s %s): pausing failed %u times (%s); it runs on "
                     "while the job is paused", job->id, st->spec->name, unit, st->unit, tries,
                     st->freeze_err);
        st->want_frozen = false;
        st->freeze_op = EVR_ENG_FREEZE_IDLE;
        s_settled(st);
        return;
    }
    evr_eng_warn("job %s: step %s (%s %s): resuming failed %u times (%s); stopping it",
                 job->id, st->spec->name, unit, st->unit, tries, st->freeze_err);
    evr_eng_set_reason(st, "resuming its %s failed %u times (%s): the step was stopped, as "
                       "it could not go on", unit, tries, st->freeze_err);
    st->freeze_op = EVR_ENG_FREEZE_STUCK;
    st->stop_after = 0;
    evr_eng_stop_step(st, true);
}

/*  What the unit is after a failed call. */
static void
s_on_checked(const evr_exec_result_t *r, void *arg)
{
    evr_eng_step_t *st = evr_eng_live_end(arg);
    if (!st)
        return;   /* about an earlier attempt */
    if (r->rc && !r->not_found)   /* not known: as it was, and the call is tried again */
        evr_eng_warn("job %s: step %s (%s %s): inspecting it: %s", st->job->id, st->spec->name,
                     st->job->ex->ops->unit_word, st->unit, r->msg);
    else if (!r->rc && r->state == EVR_EXEC_PAUSED)
        st->frozen = true;
    else if (!r->rc && r->state == EVR_EXEC_RUNNING)
        st->frozen = false;
    else   /* exited, or gone: not paused any more, and its wait says how it ended */
        st->frozen = st->want_frozen = false;
    st->freeze_op = EVR_ENG_FREEZE_IDLE;
    if (st->frozen == st->want_frozen || !evr_eng_step_runs(st) || st->exit_known) {
        st->freeze_fails = 0;
        s_settled(st);
    }
    else if (st->freeze_fails > S_RETRIES)
        s_give_up(st);
    else {
        st->freeze_op = EVR_ENG_FREEZE_BACKOFF;
        st->freeze_timer = evr_loop_timer_add(st->job->eng->loop, S_RETRY_MS, s_retry_due, st);
    }
}

/*  The answer to a pause or resume: on success the call flipped frozen;
    on failure the unit is inspected. */
static void
s_on_frozen(const evr_exec_result_t *r, void *arg)
{
    evr_eng_step_t *st = evr_eng_live_end(arg);
    if (!st)
        return;   /* about an earlier attempt */
    if (!r->rc) {
        st->frozen = !st->frozen;
        st->freeze_fails = 0;
        st->freeze_op = EVR_ENG_FREEZE_IDLE;
        s_settled(st);
        return;
    }
    evr_exec_t *ex = st->job->ex;
    evr_eng_warn("job %s: %s step %s (%s %s): %s", st->job->id,
                 st->frozen ? "unpausing" : "pausing", st->spec->name, ex->ops->unit_word,
                 st->unit, r->msg);
    free(st->freeze_err);
    st->freeze_err = evr_strdup(r->msg ? r->msg : "");
    st->freeze_fails++;
    st->freeze_op = EVR_ENG_FREEZE_CHECKING;
    ex->ops->inspect(ex, st->unit, s_on_checked, evr_eng_tok(st));
}

/*  Makes one call when the unit is not as wanted and none is under way.
    A unit that exited is not paused any more. */
static void
s_sync(evr_eng_step_t *st)
{
    if (st->freeze_op != EVR_ENG_FREEZE_IDLE)
        return;
    if (!evr_eng_step_runs(st) || st->exit_known) {
        st->frozen = st->want_frozen = false;
        st->freeze_fails = 0;
        return;
    }
    if (st->want_frozen == st->frozen)
        return;
    st->freeze_op = EVR_ENG_FREEZE_CALLING;
    evr_exec_t *ex = st->job->ex;
    if (st->want_frozen)
        ex->ops->pause(ex, st->unit, s_on_frozen, evr_eng_tok(st));
    else
        ex->ops->resume(ex, st->unit, s_on_frozen, evr_eng_tok(st));
}

void
evr_eng_step_freeze(evr_eng_step_t *st, bool frozen)
{
    if (st->freeze_op == EVR_ENG_FREEZE_STUCK)
        return;
    if (frozen && (!evr_eng_step_runs(st) || st->exit_known || st->stop_sent || st->kill_sent
                   || st->stop_after))
        return;
    if (st->want_frozen != frozen)
        st->freeze_fails = 0;   /* a new wish: its own tries */
    st->want_frozen = frozen;
    s_sync(st);
}

bool
evr_eng_step_thaw_first(const evr_eng_step_t *st)
{
    if (st->freeze_op == EVR_ENG_FREEZE_STUCK)
        return false;
    return st->frozen || st->freeze_op != EVR_ENG_FREEZE_IDLE;
}

void
evr_eng_step_freeze_reset(evr_eng_step_t *st)
{
    evr_loop_timer_cancel(st->job->eng->loop, st->freeze_timer);
    st->freeze_timer = 0;
    st->frozen = st->want_frozen = false;
    st->freeze_op = EVR_ENG_FREEZE_IDLE;
    st->freeze_fails = 0;
    st->stop_after = 0;
    free(st->freeze_err);
    st->freeze_err = NULL;
}
