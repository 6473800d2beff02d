/*  evr_etest.h: a harness for the engine's unit tests.

    One test world: a real evr_loop, the fake executor on it (named
    "podman"; a second one named "process" on request), a real LMDB store
    in a temporary directory, and the engine over the three.  The engine
    can be destroyed and made again over the same store and fake (a
    runner killed and restarted: the fake's units live on).  What the
    engine did is read back from the store (one line per event, the
    stored output of a step) and from the fake's call record.  Nothing
    here measures time: waits are bounded only so that a hang fails.
*/
#ifndef EVR_ETEST_H_INCLUDED
#define EVR_ETEST_H_INCLUDED

#include "evr_engine.h"
#include "evr_exec_fake.h"
#include "evr_store.h"

typedef struct {
    char dir[256];              /* the temporary directory */
    evr_loop_t *loop;
    evr_exec_fake_t *fake;      /* "podman" */
    evr_exec_fake_t *proc;      /* "process", after evr_etest_with_process */
    evr_exec_t *execs[3];
    evr_store_t *store;
    evr_engine_t *eng;
    evr_engine_opts_t opts;     /* what evr_etest_engine gives the engine */
} evr_etest_t;

/*  A world with its engine (opts: flush_ms 5, grace_s 1 that the fake
    makes 20 ms, runner_id "test", artifacts under dir).  NULL and a
    message on stderr when the store cannot be opened. */
evr_etest_t *evr_etest_new(void);
/*  Destroys the engine, the fake, the store, the loop, and removes the
    directory. */
void evr_etest_destroy(evr_etest_t **self_p);
/*  Adds the "process" fake to the executors (before evr_etest_engine). */
void evr_etest_with_process(evr_etest_t *self);
/*  Makes the engine (again) over the world, from self->opts: the one
    before must have been destroyed (evr_etest_kill). */
void evr_etest_engine(evr_etest_t *self);
/*  The runner dies: the engine is destroyed mid-run, and the fake drops
    what it was waiting for (carry_out: see evr_exec_fake_crash). */
void evr_etest_kill(evr_etest_t *self, bool carry_out);

/*  The n-th job id of the tests (a valid ULID), in a static buffer per n
    (n < 100). */
const char *evr_etest_job(int n);
/*  A unit's name as the engine gives it: evrun-<job lower>-<step>-<attempt>.
    Caller frees. */
char *evr_etest_unit(const char *job, const char *step, uint32_t attempt);
/*  A pattern (fnmatch) for every attempt's unit of step of job, and for
    attempt (0: any).  Caller frees. */
char *evr_etest_units(const char *job, const char *step, uint32_t attempt);

/*  Loads yaml as a pipeline and submits it as job.  Errors as
    evr_engine_submit's, EVR_ERR_SPEC for bad YAML (printed). */
evr_rc_t evr_etest_submit(evr_etest_t *self, const char *job, const char *yaml);

/*  Turns the engine until it holds no unfinished job (cleanup included);
    false when that took more than max_ms (a hang). */
bool evr_etest_run(evr_etest_t *self, int max_ms);
/*  Turns the engine until cond(self, arg); false after max_ms. */
typedef bool (evr_etest_cond_fn)(evr_etest_t *self, const void *arg);
bool evr_etest_until(evr_etest_t *self, evr_etest_cond_fn *cond, const void *arg, int max_ms);
/*  Turns the engine for about ms. */
void evr_etest_turns(evr_etest_t *self, int ms);

/*  Conditions: the unit arg (a name) is running; the fake saw a call
    (evr_etest_call_t); a stored event line contains the text
    (evr_etest_event_t). */
bool evr_etest_unit_running(evr_etest_t *self, const void *name);
typedef struct {
    evr_fake_op_t op;
    const char *pattern;
    size_t n;                   /* at least n such calls (0: 1) */
} evr_etest_call_t;
bool evr_etest_called(evr_etest_t *self, const void *call);
typedef struct {
    const char *job;
    const char *text;
} evr_etest_event_t;
bool evr_etest_has_event(evr_etest_t *self, const void *ev);

/*  The job's events, one line each: the type, then per type the step and
    attempt, and the fields that matter ("step.finished a 1 failed
    exit=-1 reason=..."; "step.output a 1 stdout @0+3").  Caller frees. */
char *evr_etest_events(evr_etest_t *self, const char *job);
/*  The stored output of a step's attempt on stream ("stdout", "stderr"),
    NUL-terminated (*len bytes); *exact false when the chunks' offsets do
    not follow each other from 0.  Caller frees. */
char *evr_etest_output(evr_etest_t *self, const char *job, const char *step, uint32_t attempt,
                       const char *stream, size_t *len, bool *exact);
/*  The job's projected status, and one step's (its record into out,
    zeroed by the caller and freed with evr_rec_free(&evr_stepstate_type)
    when not NULL). */
evr_job_status_t evr_etest_job_status(evr_etest_t *self, const char *job);
evr_step_status_t evr_etest_step(evr_etest_t *self, const char *job, const char *step,
                                 evr_stepstate_t *out);

/* ------------------------------------------------- shorthands per job n */

/*  A world whose engine was given job n: "pipeline: t\nimage: img\n"
    and then steps (the rest of the YAML).  Aborts when it cannot be made. */
#define EVR_ETEST_HEAD "pipeline: t\nimage: img\n"
evr_etest_t *evr_etest_start(int n, const char *steps);
/*  The stored output of step's attempt of job n on stream is exactly want,
    in chunks whose offsets follow each other (else prints both). */
bool evr_etest_output_is(evr_etest_t *self, int n, const char *step, uint32_t attempt,
                         const char *stream, const char *want);
/*  After job n: no unit of it left in the fake, no workspace, and no
    breach of the executor's contract seen (else prints what is wrong). */
bool evr_etest_clean(evr_etest_t *self, int n);
/*  Calls of op on the unit of step's attempt (0: any) of job n: the index
    of the first (-1: none), and how many. */
long evr_etest_call_at(evr_etest_t *self, evr_fake_op_t op, int n, const char *step,
                       uint32_t attempt);
size_t evr_etest_ncalls(evr_etest_t *self, evr_fake_op_t op, int n, const char *step,
                        uint32_t attempt);
/*  Turns until an event line of job n contains text. */
bool evr_etest_until_event(evr_etest_t *self, int n, const char *text);
/*  Turns until the fake saw a call of op on step's attempt of job n. */
bool evr_etest_until_call(evr_etest_t *self, evr_fake_op_t op, int n, const char *step,
                          uint32_t attempt);
/*  A behaviour, a fault for the units of step's attempt (0: any) of job n
    (fault->pattern is set here). */
void evr_etest_behave(evr_etest_t *self, int n, const char *step, uint32_t attempt,
                      const evr_fake_behave_t *b);
void evr_etest_fault(evr_etest_t *self, int n, const char *step, uint32_t attempt,
                     evr_fake_fault_t fault);
/*  job n's events (evr_etest_events). */
char *evr_etest_events_of(evr_etest_t *self, int n);

/*  True when each of the NULL-terminated texts occurs in text after the
    end of the one before it (prints the first missing one). */
bool evr_etest_in_order(const char *text, ...);
/*  Occurrences of needle in text. */
size_t evr_etest_count(const char *text, const char *needle);

#endif
