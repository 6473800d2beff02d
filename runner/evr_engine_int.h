/*  evr_engine_int.h: the engine's private parts.

    Shared by evr_engine.c (events, jobs, control, scheduling, the loop),
    evr_step.c (a step's unit, output, artifacts, result and pause),
    evr_prepare.c (making a job, its workspace and resources) and
    evr_recover.c (taking jobs up again after a restart).  They reach
    what runs steps only through evr_exec.h (the job's executor, job->ex)
    and the network only through evr_fetch.h.  Not for use outside
    runner/.
*/
#ifndef EVR_ENGINE_INT_H_INCLUDED
#define EVR_ENGINE_INT_H_INCLUDED

#include "evr_engine.h"
#include "evr_exec.h"
#include "evr_fetch.h"
#include "evr_output.h"

typedef enum { P_PENDING, P_STARTING, P_RUNNING, P_ENDING, P_DONE } s_phase_t;
typedef enum { J_PREPARING, J_RUNNING, J_CLEANUP, J_DONE } s_jphase_t;

typedef struct s_job s_job_t;

typedef struct {
    uint64_t raw_off;       /* raw bytes of this stream already stored */
    uint8_t *buf;           /* masked bytes not yet stored */
    size_t len, cap;
    uint64_t raw_in_buf;    /* raw bytes buf stands for */
    uint64_t since;         /* mono ns of the oldest byte in buf */
    evr_mask_t *mask;
    bool line_start;        /* printing: next byte starts a line */
} s_stream_t;

typedef struct s_tok s_tok_t;

typedef struct {
    s_job_t *job;
    uint32_t index;
    s_tok_t *toks;          /* one per attempt, freed with the job */
    const evr_step_t *spec;
    s_phase_t phase;
    evr_step_status_t status;
    uint32_t attempt;
    char *unit;             /* its name: evrun-<job>-<step>-<attempt> */
    char *unit_id;          /* the executor's id of it (create, inspect) */
    void *attach;
    bool attach_done, exit_known, stop_sent, kill_sent, timed_out, cancelled, lost;
    int64_t exit_code;
    uint64_t t_start, t_end;
    s_stream_t out[2];
    char *reason;
    uint32_t artifacts_left;
    uint64_t skip[2];       /* recovery: bytes of the log taken (stored, or passed on) */
    bool early;             /* created ahead of its turn; the scheduler launches it */
    bool created;           /* early: its unit exists */
    bool launched;          /* early: its turn came */
    bool drop;              /* early: skipped while its create was in flight */
    bool inspecting;        /* recovery: the executor not yet asked about its unit */
    uint64_t retake_at;     /* mono ns: create again (its name was taken by a
                               create still under way); 0: none */
    uint32_t retakes;
    bool artifact_paused;   /* test hook fired */
    /* pause: the unit is paused (frozen) or should be (want_frozen);
       one pause or resume call at a time (ex_busy).  A stop of a frozen
       unit waits for its resume (stop_after: 1 stop, 2 kill). */
    bool frozen, want_frozen, ex_busy;
    uint8_t stop_after;
    bool held;              /* attached, its start held while the job is paused */
    /* recovery, the unit running: its log is read so far now and
       then (a read in flight: peeking; the next at peek_at), and whole
       once it has exited */
    bool replay_wait, peeking;
    uint64_t peek_at, peek_t0;   /* mono ns */
    uint64_t paused_ns;     /* the job was paused this long since the step started */
} s_step_t;

struct s_job {
    evr_engine_t *eng;
    char *id;
    evr_spec_t *spec;
    evr_exec_t *ex;         /* what runs its steps (spec->executor) */
    evr_strmap_t env;
    char *unit_prefix;      /* evrun-<job id in lower case>-: its units' names */
    char **secrets;
    size_t nsecrets;
    s_step_t *steps;
    uint32_t n;
    bool dag;
    s_jphase_t phase;
    evr_job_status_t final;
    bool failed, cancelling, killing, timed_out;
    bool paused;            /* job.paused committed, no job.resumed since */
    uint64_t t_start, deadline;
    uint64_t paused_at;     /* mono ns the current pause began */
    int inflight;           /* executor calls whose callbacks hold a step's token */
    uint32_t running, parallel;
    int calls;              /* cleanup calls in flight */
    uint32_t res_index;     /* resource being fetched */
    char *res_file;         /* the download */
    char *res_tar;          /* the tar made of it, put into the workspace from this file */
    evr_fetch_req_t *res_req;   /* the download in flight; a cancel aborts it */
    uint64_t res_bytes;
    bool swept;             /* leftover units of the job removed */
    bool ws_removed;        /* its workspace's removal asked */
    s_job_t *next;
};

typedef struct s_action {
    void (*fn)(void *arg, void *data, size_t len);
    void *arg;
    void *data;
    size_t len;
} s_action_t;

/*  Recovery's sweep of one executor: its units, then its workspaces. */
typedef struct {
    evr_engine_t *e;
    evr_exec_t *ex;
    int calls;              /* in flight, plus one for the workspace pass */
} s_sweep_t;

struct evr_engine {
    int sweeping;           /* recovery's removal calls still in flight */
    uint32_t unrecoverable; /* jobs recovery had to end failed */
    bool urgent;            /* a queued event or action must be committed this turn */
    bool in_flush;          /* evr_eng_flush runs actions (that may point into jobs) */
    uint64_t pending_since; /* mono ns of the oldest event not committed */
    evr_engine_opts_t opts;
    evr_store_t *store;
    evr_loop_t *loop;
    evr_exec_t *execs[EVR_ENGINE_MAX_EXECS + 1];   /* NULL-terminated */
    s_sweep_t sweeps[EVR_ENGINE_MAX_EXECS];
    evr_fetch_t *fetch;     /* resource downloads */
    s_job_t *jobs;
    evr_event_t **pending;
    size_t npending, cap;
    s_action_t *actions;
    size_t nactions, acap;
    evr_rc_t failure;
    char failmsg[EVR_ERR_MAX];
};

extern const char *const evr_eng_stream_names[2];

/*  What an executor callback of a step gets: the step and the attempt the call
    was made for, so that a late answer about an earlier attempt (after a
    retry) is ignored.  Owned by the step, freed with its job: each call
    made with one counts in its job's inflight until its last callback
    (which takes the step with evr_eng_live_end), so that a job is freed
    only when no answer can still come for it. */
struct s_tok {
    s_step_t *st;
    uint32_t attempt;
    s_tok_t *next;
};

/* evr_engine.c */
void evr_eng_flush(evr_engine_t *e);
/*  Prints a line (with opts.print) once what is queued before it is
    committed: the lines about a step and its output come in log order. */
void evr_eng_print(evr_engine_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*  Test hook: with EVR_TEST_PAUSE_AT=POINT or POINT:STEP in the environment,
    the runner says so on stderr and stops itself (SIGSTOP) at that point,
    to be killed by a crash test, or continued (SIGCONT) once the test has
    changed the world under it. */
void evr_eng_test_pause(const char *point, const s_step_t *st);
evr_event_t *evr_eng_emit(s_job_t *job, evr_evtype_t t, const s_step_t *st);
void evr_eng_after(evr_engine_t *e, void (*fn)(void *, void *, size_t), void *arg,
                   const void *data, size_t len);
/*  The same for an action that may wait for the next timed commit
    (printing stored output): it does not make the turn commit. */
void evr_eng_after_soon(evr_engine_t *e, void (*fn)(void *, void *, size_t), void *arg,
                        const void *data, size_t len);
void evr_eng_fail_all(evr_engine_t *e);
/*  SIGTERM (now: SIGKILL) to a running step; a paused unit is resumed
    first.  Nothing for a step recovery has not judged yet (the
    scheduler stops it in a later turn). */
void evr_eng_stop_step(s_step_t *st, bool now);
/*  Whether the job starts no new step (cancelled, timed out or failed),
    and whether it also stops the running ones (all but a failure with
    on_failure: finish). */
bool evr_eng_ending(const s_job_t *job);
bool evr_eng_stopping(const s_job_t *job);
/*  A warning on stderr: "evrun-runner: ...", printed in every mode. */
void evr_eng_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*  Calls fn for each line of names (an executor's list). */
void evr_eng_each_name(const char *names, void (*fn)(const char *name, void *arg), void *arg);

/* evr_step.c */
/*  The token for one executor call of the step (counted in job->inflight). */
s_tok_t *evr_eng_tok(s_step_t *st);
/*  The step of tok, or NULL when tok belongs to an earlier attempt. */
s_step_t *evr_eng_live(void *tok);
/*  The same in the last callback of a call: the call is over. */
s_step_t *evr_eng_live_end(void *tok);
void evr_eng_attach(s_step_t *st);
void evr_eng_step_log(const s_step_t *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void evr_eng_set_reason(s_step_t *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void evr_eng_emit_output(s_step_t *st, int si, bool final);
void evr_eng_on_output(int stream, const uint8_t *data, size_t len, void *arg);
void evr_eng_mark_started(s_step_t *st);
void evr_eng_on_exit(const evr_exec_result_t *r, void *arg);
void evr_eng_on_attached(const evr_exec_result_t *r, void *arg);
void evr_eng_on_attach_end(const evr_exec_result_t *r, void *arg);
void evr_eng_maybe_end(s_step_t *st);
void evr_eng_step_finish(s_step_t *st);
void evr_eng_step_begin(s_step_t *st);
void evr_eng_step_prepare(s_step_t *st);
void evr_eng_step_launch(s_step_t *st);
void evr_eng_step_skip_early(s_step_t *st, const char *reason);
void evr_eng_step_skip(s_step_t *st, const char *reason);
/*  A step whose start a pause held, in a job that stops: skipped. */
void evr_eng_step_skip_held(s_step_t *st, const char *reason);
/*  Pauses (frozen) or resumes the step's unit, one call at a time; a
    pause only of a running unit not being stopped.  A failing call is a
    warning; the unit is then taken as not paused. */
void evr_eng_step_freeze(s_step_t *st, bool frozen);
/*  Starts a step whose start a pause held. */
void evr_eng_step_release(s_step_t *st);
void evr_eng_do_create(void *arg, void *data, size_t len);
char *evr_eng_unit_name(const s_job_t *job, const s_step_t *st);

/* evr_recover.c */
/*  Reads the log of the step's unit, which has exited, past the bytes
    per stream already stored; its end ends the step's output (as the end
    of the attach does). */
void evr_eng_replay(s_step_t *st);
/*  While the unit of a recovered step runs (replay_wait): reads its
    log so far when due, storing what is new (the timers call it; next is
    lowered to the time of the next read). */
void evr_eng_peek(s_step_t *st, uint64_t now, uint64_t *next);

/* evr_prepare.c */
/*  A new job in e's list (J_PREPARING), or NULL (EVR_ERR_CONFIG in err
    naming a secret that is not set, or an executor the runner does not
    offer). */
s_job_t *evr_eng_job_new(evr_engine_t *e, const char *job_id, const evr_spec_t *spec,
                         const evr_strmap_t *args, evr_err_t *err);
/*  Frees a job that is out of e's list. */
void evr_eng_job_free(s_job_t *job);
void evr_eng_prep_failed(s_job_t *job, const char *reason);
void evr_eng_job_go(s_job_t *job);
void evr_eng_on_workspace(const evr_exec_result_t *r, void *arg);

#endif
