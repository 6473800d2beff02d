/*  evr_engine_int.h: the engine's private parts.

    Shared by evr_engine.c (events, jobs, control, the loop),
    evr_engine_sched.c (a running job's steps begun or skipped, its end),
    evr_step.c (a step's unit, output, artifacts and result; its states
    in evr_step_state.c, its unit's pause in evr_step_pause.c, its end in
    evr_step_end.c),
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
#include "evr_offload.h"
#include "evr_output.h"
#include "evr_source.h"

/*  A step's state.  The engine moves a step only with evr_eng_step_to,
    which checks each move against the table in evr_step_state.c.  The usual
    path: PENDING, CREATING, ATTACHING, STARTING, RUNNING, ENDING,
    FINISHED; a step created ahead of its turn (the next one of a
    sequence, while the one before runs) goes through EARLY_*; recovery
    through INSPECTING* and, for a unit that still runs, REATTACHED /
    PEEKING. */
typedef enum {
    EVR_ENG_STEP_PENDING,       /* waits for its turn (a retry's next attempt too) */
    EVR_ENG_STEP_EARLY_CREATING, /* before its turn: step.starting recorded, create under way */
    EVR_ENG_STEP_EARLY_CREATED, /* before its turn: its unit exists (its stream attached
                                   ahead), the turn is awaited */
    EVR_ENG_STEP_EARLY_FAILED,  /* before its turn: the create failed (reason), said at the turn */
    EVR_ENG_STEP_CREATING,      /* its turn: the create is under way */
    EVR_ENG_STEP_ATTACHING,     /* created: its output stream is being set up */
    EVR_ENG_STEP_HELD,          /* attached; the start waits for the job's resume */
    EVR_ENG_STEP_STARTING,      /* the start is asked */
    EVR_ENG_STEP_RUNNING,       /* it runs (step.started recorded): output and exit awaited */
    EVR_ENG_STEP_INSPECTING,    /* recovery, recorded starting: the executor is asked */
    EVR_ENG_STEP_INSPECTING_RUN, /* recovery, recorded running: the executor is asked */
    EVR_ENG_STEP_REATTACHED,    /* recovery: it runs; its log is read so far now and then */
    EVR_ENG_STEP_PEEKING,       /* REATTACHED, a read of its log so far under way */
    EVR_ENG_STEP_ENDING,        /* output ended, exit known: artifacts are copied out */
    EVR_ENG_STEP_FINISHED,      /* step.finished recorded */
    EVR_ENG_STEP_SKIPPED,       /* step.skipped recorded */
} evr_eng_state_t;
#define EVR_ENG_STEP_NSTATES (EVR_ENG_STEP_SKIPPED + 1)

/*  What a step's pause or resume is doing (evr_step_pause.c). */
typedef enum {
    EVR_ENG_FREEZE_IDLE,        /* no call under way */
    EVR_ENG_FREEZE_CALLING,     /* a pause or a resume is asked */
    EVR_ENG_FREEZE_CHECKING,    /* it failed: the unit is inspected */
    EVR_ENG_FREEZE_BACKOFF,     /* the next try waits for freeze_timer */
    EVR_ENG_FREEZE_STUCK,       /* resuming failed for good: the unit is killed */
} evr_eng_freeze_t;

typedef enum {
    EVR_ENG_JOB_PREPARING,
    EVR_ENG_JOB_RUNNING,
    EVR_ENG_JOB_CLEANUP,
    EVR_ENG_JOB_DONE,
} evr_eng_jphase_t;

typedef struct evr_eng_job evr_eng_job_t;
typedef struct evr_eng_image evr_eng_image_t;   /* evr_image.c */

typedef struct {
    uint64_t raw_off;       /* raw bytes of this stream already stored */
    uint8_t *buf;           /* masked bytes not yet stored */
    size_t len, cap;
    uint64_t raw_in_buf;    /* raw bytes buf stands for */
    uint64_t since;         /* mono ns of the oldest byte in buf */
    evr_mask_t *mask;
    bool line_start;        /* printing: next byte starts a line */
    uint8_t *text;          /* printing: laid out; from tdone on, waiting for commits */
    size_t tdone, tlen, tcap;
} evr_eng_stream_t;

typedef struct evr_eng_tok evr_eng_tok_t;

#define EVR_ENG_ERR_HEAD 128

typedef struct {
    evr_eng_job_t *job;
    uint32_t index;
    evr_eng_tok_t *toks;          /* one per attempt, freed with the job */
    const evr_step_t *spec;
    evr_eng_state_t state;  /* moved by evr_eng_step_to only */
    evr_step_status_t status;
    uint32_t attempt;
    char *unit;             /* its name: evrun-<job>-<step>-<attempt> */
    char *unit_id;          /* the executor's id of it (create, inspect) */
    void *attach;
    bool early_head;        /* EARLY_CREATED: its stream, attached ahead, is set up */
    bool attach_done, exit_known, stop_sent, kill_sent, timed_out, cancelled, lost;
    int64_t exit_code;
    uint64_t t_start, t_end;
    uint64_t exited_at;     /* mono ns its unit ended, as the executor said
                               at a recovery (0: not known): its timeout and
                               duration end there, not when it was found */
    evr_eng_stream_t out[2];
    char *reason;
    uint32_t artifacts_left;
    /* while its artifacts are copied: per path, why it failed (NULL: it
       did not, or not yet) */
    char **artifact_why;
    uint64_t skip[2];       /* recovery: bytes of the log taken (stored, or passed on) */
    /* taking a name a create found taken (evr_step.c, s_take_*): the
       inspections so far, and the loop timer of the next create */
    uint32_t retakes;
    uint64_t retake_timer;
    /* a create under way was given up (the step skipped or ended): its
       answer removes what it made; counted in job->calls till then */
    bool create_dropped;
    bool artifact_paused;   /* test hook fired */
    /* pause (evr_step_pause.c): the unit is paused (frozen) or should be
       (want_frozen); one call at a time (freeze_op).  A failed call is
       followed by an inspect and tried again (freeze_fails so far; the
       last one's message freeze_err; the next try's loop timer
       freeze_timer).  A stop of a frozen unit waits for its resume
       (stop_after: 1 stop, 2 kill). */
    bool frozen, want_frozen;
    evr_eng_freeze_t freeze_op;
    uint8_t freeze_fails, stop_after;
    uint64_t freeze_timer;
    char *freeze_err;
    /* REATTACHED: the next read of the log so far is due at peek_at; the
       one under way (PEEKING) began at peek_t0 (mono ns) */
    uint64_t peek_at, peek_t0;
    uint64_t paused_ns;     /* the job was paused this long since the step started */
    uint64_t memory_limit;  /* bytes, of its limits (0: none): an OOM kill's reason */
    bool oom_killed;        /* its exit says the OOM killer ended it */
    /* the first line of its stderr (up to EVR_ENG_ERR_HEAD bytes), kept
       as it comes, whatever the pieces: a container's init that could
       not start the step's /bin/sh says so there (evr_step_end.c) */
    char err_head[EVR_ENG_ERR_HEAD];
    uint8_t err_head_len;
    bool err_head_done;     /* its newline came, or the room ran out */
    int signal;             /* the signal that ended it, when its executor
                               knows (a host step's; 0: none, or not known) */
    bool pulling;           /* CREATING: its create waits for its image's pull */
    bool allowed;           /* it failed with allow_failure: the job does not fail */
    bool on_error;          /* the pipeline's on_error (the job's last step) */
    /* outputs (evr_step_outputs.c): of this attempt, masked, as step.outputs
       recorded them; outputs_read once its file was read (or, after a
       restart, its step.outputs found in the log) */
    evr_strmap_t outputs;
    bool outputs_read;
    struct evr_chan *chan;  /* its unit's control channel (evr_step_chan.c), or NULL */
    char *chan_dir;         /* the channel's directory, while open */
} evr_eng_step_t;

struct evr_eng_job {
    evr_engine_t *eng;
    char *id;
    evr_spec_t *spec;
    evr_exec_t *ex;         /* what runs its steps (spec->executor) */
    evr_strmap_t env;
    char *unit_prefix;      /* evrun-<job id in lower case>-: its units' names */
    char **secrets;         /* values masked: declared ones, then registered ones */
    size_t nsecrets;
    evr_strmap_t dyn_secrets;   /* registered by its steps (evr_step_chan.c): NAME, value */
    uint32_t dyn_count;     /* registrations so far (each value stays masked) */
    size_t mask_dropped;    /* lines of secrets past EVR_MASK_PIECES_MAX, said */
    evr_eng_step_t *steps;
    uint32_t n;
    bool dag;
    evr_eng_jphase_t phase;
    evr_job_status_t final;
    bool failed, cancelling, killing, timed_out;
    char *reason;           /* why it failed or timed out when no step says it (its
                               preparation failed, the pipeline's timeout passed);
                               once it finished, job.finished's reason */
    char *cancel_reason;    /* its job.cancel_requested's: a cancelled job.finished's */
    uint64_t end_at;        /* mono ns of its cancel or timeout: `always` steps' grace */
    evr_step_t on_error;    /* spec->on_error (its values shared, its name its own) */
    bool paused;            /* job.paused committed, no job.resumed since */
    uint64_t t_accept;      /* mono ns of job.accepted (a restart: as recorded) */
    uint64_t t_start;       /* mono ns of job.started */
    uint64_t deadline;      /* mono ns its timeout passes: from job.accepted (0: none) */
    char *doing;            /* what its preparation does now ("downloading resource x"):
                               a timeout's reason says it */
    bool ws_ready;          /* its workspace is made: a failed preparation still runs
                               the steps that run after a failure */
    bool prep_failed;       /* its preparation failed (or stopped): job.started says why */
    uint64_t paused_at;     /* mono ns the current pause began */
    int inflight;           /* executor calls whose callbacks hold a step's token */
    uint32_t running, parallel;
    int calls;              /* cleanup calls in flight */
    uint32_t res_index;     /* resource being fetched */
    char *res_file;         /* the download */
    char *res_tar;          /* the tar made of it, put into the workspace from this file */
    evr_fetch_req_t *res_req;   /* the download in flight; a cancel aborts it */
    evr_offload_t *res_work;    /* its tar made, in a child (evr_offload.h) */
    uint64_t res_bytes;
    /* sources (evr_prepare.c): ci_source (0), then source (1) */
    uint32_t src_index;
    char *src_tar;              /* the tar put into the workspace from this file */
    char *src_file;             /* a tarball's download */
    evr_source_req_t *src_req;  /* a git checkout under way */
    bool src_held;              /* its checkout waits for the git cache's trim */
    evr_offload_t *src_work;    /* its tar made and read, in a child (evr_offload.h) */
    uint64_t src_objects;       /* the checkout's, until the job.source event */
    char *src_auth[2];          /* git.secret's or the tarball's secret's value, per source */
    char **res_auth;            /* per resource: its secret's value (NULL: none); NULL:
                                   no resource has one */
    char *src_commit[2];        /* the commit checked out (git), per source */
    evr_eng_image_t **images;   /* pulls asked (evr_image.c) */
    uint32_t nimages;
    const char *registry_auth;  /* user:password of spec->registry_auth (in secrets[]) */
    bool swept;             /* leftover units of the job removed */
    bool doubt;             /* a unit of it may be left that the engine does not know
                               of (a create or removal failed, recovery, resources'
                               helper): its cleanup lists its units, else not */
    bool ws_removed;        /* its workspace's removal asked */
    struct evr_cache_job *caches;   /* resolved at preparation (evr_cache.h); NULL: none */
    bool caches_measured;   /* the end's size measure asked */
    uint32_t cache_calls;   /* size measures in flight */
    struct evr_eng_measure *measures;   /* those walking their volume, in a child */
    bool no_ws;             /* it has none: its one unit has its own (evr_eng_job_new) */
    /* outputs (evr_step_outputs.c): the host directory of its workspace,
       where outputs files are read without a copy through the executor
       (out_dir_state: 0 not asked, 1 asked, 2 out_dir known, 3 none) */
    char *out_dir;
    uint8_t out_dir_state;
    bool recovered;         /* taken up by recovery (made by an older runner, it may
                               have a workspace all the same: removed at its end) */
    bool unchecked;         /* evr_eng_job_check is still to come (evr_eng_job_new) */
    size_t early_at, early_n;   /* secrets[early_at..+early_n): read before the check
                                   (evr_eng_job_secrets_early), which reads them again */
    struct evr_eng_hk *hk;  /* its lifecycle hooks (evr_eng_hooks.c); NULL: none */
    evr_eng_job_t *next;
};

typedef struct evr_eng_action {
    void (*fn)(void *arg, void *data, size_t len);
    void *arg;
    void *data;
    size_t len;
} evr_eng_action_t;

/*  Recovery's sweep of one executor: its units, then its workspaces. */
typedef struct {
    evr_engine_t *e;
    evr_exec_t *ex;
    int calls;              /* in flight, plus one for the workspace pass */
} evr_eng_sweep_t;

struct evr_engine {
    int sweeping;           /* recovery's removal calls still in flight */
    uint32_t unrecoverable; /* jobs recovery had to end failed */
    bool urgent;            /* a queued event or action must be committed this turn */
    bool in_flush;          /* evr_eng_flush runs actions (that may point into jobs) */
    evr_eng_stream_t *print_mid;   /* printing: the stream whose last line laid out has no
                                      newline yet (what is printed next from elsewhere,
                                      another stream or a status line, ends it first) */
    uint64_t pending_since; /* mono ns of the oldest event not committed */
    evr_engine_opts_t opts;
    evr_store_t *store;
    evr_loop_t *loop;
    uint64_t tick;          /* the loop timer of the engine's next deadline */
    evr_exec_t *execs[EVR_ENGINE_MAX_EXECS + 1];   /* NULL-terminated */
    evr_eng_sweep_t sweeps[EVR_ENGINE_MAX_EXECS];
    evr_fetch_t *fetch;     /* resource downloads */
    evr_eng_job_t *jobs;
    evr_event_t **pending;
    size_t npending, cap;
    evr_eng_action_t *actions;
    size_t nactions, acap;
    evr_rc_t failure;
    char failmsg[EVR_ERR_MAX];
    char output_key[33];    /* names steps' output files (evr_step_outputs.c) */
    int chan_bin;           /* the copy of evrun-job for control channels: 0 not tried,
                               1 made, -1 failed (evr_step_chan.c) */
    struct evr_eng_trigs *trigs;    /* follow-up jobs (evr_step_trigger.c); NULL: none yet */
    struct evr_eng_artifact *unpacks;   /* artifact tars to unpack, in order; the first of
                                           each job's under way (evr_step_artifact.c) */
    bool closing;           /* in evr_engine_destroy: no unpack starts */
    evr_offload_t *src_trim;    /* the git cache's trim, in a child: checkouts wait
                                   (evr_prepare_source.c) */
    uint64_t src_trim_timer;    /* ... its time limit */
    struct evr_eng_measure *walks;  /* caches' size walks waiting for their turn, in the
                                       order asked (evr_prepare_cache.c) */
    uint32_t walking;           /* ... and those under way, at most EVR_ENG_WALKS_MAX */
};

/*  Each download of a job's preparation (a resource, a source's tarball)
    at most: past it, it fails (README "Running a pipeline without a
    broker"); the job's own timeout, when shorter, stops it sooner. */
#define EVR_ENG_DOWNLOAD_MS 300000

/*  The most cache size walks (each a child process) under way at once for
    an engine, whatever its jobs and their caches: more wait their turn. */
#define EVR_ENG_WALKS_MAX 2
/*  A walk under way longer (a cache on a mount that hangs, or too large
    to measure) is stopped, its recorded size kept: its job's cleanup, and
    those of the jobs whose walks wait their turn, go on.  A healthy
    cache is walked in seconds (a million files: about a minute); 5
    minutes, half a git cache trim's limit, bounds how long two stalled
    walks hold every other job's cleanup (its workspace kept, its caches
    in use).  Test hook (tests only): EVR_TEST_WALK_LIMIT_MS=N in the
    environment makes it N ms. */
#define EVR_ENG_WALK_LIMIT_MS 300000

extern const char *const evr_eng_stream_names[2];

/*  What an executor callback of a step gets: the step and the attempt the call
    was made for, so that a late answer about an earlier attempt (after a
    retry) is ignored.  Owned by the step, freed with its job: each call
    made with one counts in its job's inflight until its last callback
    (which takes the step with evr_eng_live_end), so that a job is freed
    only when no answer can still come for it. */
struct evr_eng_tok {
    evr_eng_step_t *st;
    uint32_t attempt;
    evr_eng_tok_t *next;
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
void evr_eng_test_pause(const char *point, const evr_eng_step_t *st);
evr_event_t *evr_eng_emit(evr_eng_job_t *job, evr_evtype_t t, const evr_eng_step_t *st);
void evr_eng_after(evr_engine_t *e, void (*fn)(void *, void *, size_t), void *arg,
                   const void *data, size_t len);
/*  The same for an action that may wait for the next timed commit
    (printing stored output): it does not make the turn commit. */
void evr_eng_after_soon(evr_engine_t *e, void (*fn)(void *, void *, size_t), void *arg,
                        const void *data, size_t len);
void evr_eng_fail_all(evr_engine_t *e);
/*  SIGTERM (now: SIGKILL) to a running step; a paused unit is resumed
    first.  A stop that fails removes the unit (a warning says why); a
    removal that fails too ends the step without it.  Nothing for a step recovery has not judged yet (the
    scheduler stops it in a later turn). */
void evr_eng_stop_step(evr_eng_step_t *st, bool now);
/*  Whether the job starts no new step (cancelled, timed out or failed),
    and whether it also stops the running ones (all but a failure with
    on_failure: finish). */
bool evr_eng_ending(const evr_eng_job_t *job);
bool evr_eng_stopping(const evr_eng_job_t *job);
/*  Whether it is cancelled or timed out: its preparation stops. */
bool evr_eng_halted(const evr_eng_job_t *job);
/*  A warning on stderr: "evrun-runner: ...", printed in every mode. */
void evr_eng_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*  Calls fn for each line of names (an executor's list). */
void evr_eng_each_name(const char *names, void (*fn)(const char *name, void *arg), void *arg);

/* evr_engine_sched.c */
/*  Why a job that ends skips (or gives up) a step, into why. */
void evr_eng_end_reason(const evr_eng_job_t *job, char *why, size_t size);
/*  Stops what runs (cancelled, or timed out), ends what is starting
    without waiting for the executor's answers; the scheduler skips what
    has not begun. */
void evr_eng_wind_down(evr_eng_job_t *job, bool now);
/*  Whether a step is spared by the job's end (its stop and its skip):
    a `when: always` step and on_error, after a failure, a cancel and a
    timeout; a `when: on_failure` step after a failure.  Not when the job
    is killed (a cancel `now`). */
bool evr_eng_spared(const evr_eng_step_t *st);
/*  Whether a step runs after a failure (on_error, `when: always |
    on_failure`): one that a failed preparation does not skip. */
bool evr_eng_after_failure(const evr_eng_step_t *st);
/*  The job is cancelled or times out now: end_at set (once). */
void evr_eng_job_ends(evr_eng_job_t *job);
/*  For on_error and the `when: on_failure | always` steps: the steps that
    failed (not allowed) as EVRUN_FAILED_STEPS (comma-separated) and
    each one's reason as EVRUN_FAILED_REASON_<NAME> (NAME as
    evr_step_env_name makes it: a matrix step's as its outputs'), into env. */
void evr_eng_failed_env(const evr_eng_step_t *st, evr_strmap_t *env);
/*  One turn of a running job: steps begun, launched, created ahead or
    skipped; the job wound down when it stops, finished when all its
    steps are over.  Nothing for a job in another phase. */
void evr_eng_schedule(evr_eng_job_t *job);
/*  A finished job, once its events are committed and no call is under
    way: its leftover units, caches and workspace, one call at a time;
    then EVR_ENG_JOB_DONE. */
void evr_eng_cleanup(evr_eng_job_t *job);

/* evr_step_outputs.c */
/*  e->output_key: the one kept in the store's meta (output_key), else a
    new random one, kept there (a warning when it cannot be). */
void evr_eng_outputs_key(evr_engine_t *e);
/*  The file of st's outputs (EVRUN_OUTPUT), relative to the workspace
    root: .evrun-output-STEP-ATTEMPT-HASH, STEP in its container form,
    HASH 16 hex digits of sha256 over the engine's output key, the job id,
    STEP and ATTEMPT (unguessable by the job's steps, the same after a
    restart).  Caller frees. */
char *evr_eng_output_file(const evr_eng_step_t *st);
/*  After st's exit: its outputs read and recorded (when another step needs
    it), then its artifacts copied out (when it wants them), then its end
    (evr_eng_step_finish). */
void evr_eng_step_collect(evr_eng_step_t *st);
/*  EVRUN_OUT_<STEP>_<KEY> of each step st needs, into env. */
void evr_eng_outputs_env(const evr_eng_step_t *st, evr_strmap_t *env);
/* evr_step_state.c */
/*  Moves st to state `to`.  A move the table does not allow is a bug:
    logged as an error (and an assert in debug builds); the step moves
    all the same.  Every move is logged at log level debug (evr_log). */
void evr_eng_step_to(evr_eng_step_t *st, evr_eng_state_t to);
const char *evr_eng_state_name(evr_eng_state_t s);
/*  Whether the step's unit runs as far as the engine knows (RUNNING,
    REATTACHED, PEEKING): timers, stops and pauses act on it. */
bool evr_eng_step_runs(const evr_eng_step_t *st);
/*  The same, or recorded running and being inspected by recovery: the
    step has started (its pauses count, a cancel marks it). */
bool evr_eng_step_has_started(const evr_eng_step_t *st);
/*  Its turn has come (its create asked at least) and it has not ended:
    CREATING, ATTACHING, STARTING, or it has started.  The step after it
    in a sequence is then created ahead. */
bool evr_eng_step_begun(const evr_eng_step_t *st);
/*  Created (or being created) ahead of its turn: EARLY_*. */
bool evr_eng_step_early(const evr_eng_step_t *st);
/*  Whether it waits for its turn (PENDING or EARLY_*), and whether it is
    over (FINISHED, SKIPPED). */
bool evr_eng_step_waiting(const evr_eng_step_t *st);
bool evr_eng_step_done(const evr_eng_step_t *st);

/* evr_step.c */
/*  The token for one executor call of the step (counted in job->inflight). */
evr_eng_tok_t *evr_eng_tok(evr_eng_step_t *st);
/*  The step of tok, or NULL when tok belongs to an earlier attempt. */
evr_eng_step_t *evr_eng_live(void *tok);
/*  The same in the last callback of a call: the call is over. */
evr_eng_step_t *evr_eng_live_end(void *tok);
void evr_eng_attach(evr_eng_step_t *st);
void evr_eng_step_log(const evr_eng_step_t *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*  The step's reason, when it has none yet (the first is the cause): the
    job's secrets masked in it (it may quote what the step made: a link's
    target), then cut to EVR_REASON_MAX. */
void evr_eng_set_reason(evr_eng_step_t *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*  A note of the runner's in the step's stderr, after its output: each
    line of text as "evrun: ABOUT: LINE", stored as its output is
    (masked). */
void evr_eng_step_note(evr_eng_step_t *st, const char *about, const char *text);
void evr_eng_emit_output(evr_eng_step_t *st, int si, bool final);
void evr_eng_on_output(int stream, const uint8_t *data, size_t len, void *arg);
/*  A STARTING step runs (its start answered, or its first output came):
    RUNNING, via evr_eng_record_start. */
void evr_eng_mark_started(evr_eng_step_t *st);
/*  The unit runs: st moves to `to` (RUNNING, or REATTACHED for recovery),
    step.started is recorded and the wait for its exit begins; a job
    that stops meanwhile stops it, a paused one pauses it.  started: the
    wall ns the executor says it started at (a recovery that finds it
    running with no step.started: its timeout counts from then, as for a
    step that started before the kill), or 0: now. */
void evr_eng_record_start(evr_eng_step_t *st, evr_eng_state_t to, uint64_t started);
void evr_eng_on_exit(const evr_exec_result_t *r, void *arg);
void evr_eng_on_attached(const evr_exec_result_t *r, void *arg);
void evr_eng_on_attach_end(const evr_exec_result_t *r, void *arg);
/* evr_step_end.c */
void evr_eng_maybe_end(evr_eng_step_t *st);
void evr_eng_step_finish(evr_eng_step_t *st);
/*  evr_step_artifact.c: whether the step's artifacts are copied out (its
    `artifacts.when` against how it ended); copies them out, records a
    step.artifact per file (queued for the broker first, when the engine
    ships), then evr_eng_step_finish.  A path that failed is noted in the
    step's stderr (each, "evrun: artifact PATH: WHY") and, when nothing
    else failed the step, gives its reason (a few named, "and N more"). */
bool evr_eng_step_wants_artifacts(const evr_eng_step_t *st);
/*  The job's artifact tars waiting to be unpacked dropped, the unpack
    under way killed (its job is freed). */
void evr_eng_artifacts_drop(evr_eng_job_t *job);
/*  st->artifact_why freed (the step is freed mid-copy). */
void evr_eng_artifact_why_free(evr_eng_step_t *st);
/*  evr_prepare_cache.c: the job's caches resolved, marked used and the
    least recently used past the cap removed, then evr_eng_job_go (or
    evr_eng_prep_failed); at the end, their sizes measured (true while
    that is under way: cleanup waits, counted in job->calls). */
void evr_eng_cache_prepare(evr_eng_job_t *job);
bool evr_eng_cache_measure(evr_eng_job_t *job);
/*  The size measures under way killed (its job is freed). */
void evr_eng_cache_drop(evr_eng_job_t *job);
/*  A job taken up after a restart: the caches resolved at its start. */
void evr_eng_cache_recover(evr_eng_job_t *job);
void evr_eng_step_artifacts(evr_eng_step_t *st);
void evr_eng_step_begin(evr_eng_step_t *st);
void evr_eng_step_prepare(evr_eng_step_t *st);
void evr_eng_step_launch(evr_eng_step_t *st);
void evr_eng_step_skip_early(evr_eng_step_t *st, const char *reason);
void evr_eng_step_skip(evr_eng_step_t *st, const char *reason);
/*  A step whose start is under way (CREATING, ATTACHING, STARTING), in
    a job that stops: it ends now, cancelled or timed out, its reason
    saying why (what the job's end is) and which call had not answered;
    what a create still under way makes is removed when it answers.
    Nothing for a step in another state. */
void evr_eng_step_abandon(evr_eng_step_t *st, const char *why);
/*  The step's output stream is of no interest any more: detached. */
void evr_eng_step_drop_stream(evr_eng_step_t *st);
/*  The step ends without its unit's exit (exit code -1), its stream
    dropped: the reason is set before. */
void evr_eng_step_end_now(evr_eng_step_t *st);
/*  A step whose start a pause held, in a job that stops: skipped. */
void evr_eng_step_skip_held(evr_eng_step_t *st, const char *reason);
/*  Starts a step whose start a pause held. */
void evr_eng_step_release(evr_eng_step_t *st);
void evr_eng_do_create(void *arg, void *data, size_t len);
char *evr_eng_unit_name(const evr_eng_job_t *job, const evr_eng_step_t *st);

/* evr_step_pause.c */
/*  Pauses (frozen) or resumes the step's unit, one call at a time; a
    pause only of a running unit not being stopped.  A failing call is a
    warning; the unit is then inspected, and the call tried again while
    it is not as wanted, 3 times at most.  Then a pause is given up (the
    unit runs on); a resume too, and the step is stopped (killed) and
    fails, with a reason saying why. */
void evr_eng_step_freeze(evr_eng_step_t *st, bool frozen);
/*  Whether a stop must wait for a resume: the unit is frozen, or may be
    (a call under way).  False once resuming it was given up. */
bool evr_eng_step_thaw_first(const evr_eng_step_t *st);
/*  A new attempt, or the job freed: nothing wanted, nothing under way. */
void evr_eng_step_freeze_reset(evr_eng_step_t *st);

/* evr_step_chan.c */
/*  The step's unit's control channel listening (nothing when it is
    already); returns its directory (for evr_exec_spec_t's control_dir),
    or NULL without one (no control directory, or it failed: a warning
    says why, and the step runs without). */
const char *evr_eng_chan_open(evr_eng_step_t *st);
/*  Closes the channel and removes its directory (also one a killed
    runner left for the step's unit). */
void evr_eng_chan_close(evr_eng_step_t *st);
/*  A job taken up again: the secrets its steps registered before, read
    back from its file (masked, and given to later steps). */
void evr_eng_secrets_load(evr_eng_job_t *job);
/*  The job is cleaned up: its file of registered secrets removed. */
void evr_eng_secrets_remove(const evr_eng_job_t *job);
/*  The registered secrets as variables, into env (none for an untrusted
    step). */
void evr_eng_secrets_env(const evr_eng_step_t *st, evr_strmap_t *env);
/*  The control channel's `trigger` command (evr_step_trigger.c; arg: the
    step), and the engine's trigger table freed. */
struct json_t;
evr_rc_t evr_eng_cmd_trigger(const struct json_t *req, struct json_t *ans, evr_err_t *err,
                             void *arg);
evr_rc_t evr_eng_cmd_result(const struct json_t *req, struct json_t *ans, evr_err_t *err,
                            void *arg);
evr_rc_t evr_eng_cmd_running(const struct json_t *req, struct json_t *ans, evr_err_t *err,
                             void *arg);
void evr_eng_trigs_free(evr_engine_t *e);
/*  Pipeline files of the source a step may trigger (evr_trigger_file.c):
    the matching files of the source tar of src_index (0 ci_source, 1
    source) kept when it is the trusted one; a kept file loaded for a
    trigger (*text and *spec the caller's; EVR_ERR_PROTO a bad path,
    EVR_ERR_STATE not in triggers:, EVR_ERR_NOTFOUND not kept,
    EVR_ERR_SPEC its errors with line and column, or args that do not
    bind); which source is trusted ("ci_source" or "source"). */
typedef struct {
    uint32_t kept, over;        /* files kept; files left out (too large, too many) */
    char problem[EVR_ERR_MAX];  /* set: none could be kept, why */
} evr_eng_trigger_capture_t;
bool evr_eng_trigger_files_wanted(const evr_eng_job_t *job, uint32_t src_index);
/*  Runs in a child process (no printing, no loop): what it did into *out,
    which evr_eng_trigger_files_said prints from the loop. */
void evr_eng_trigger_files_capture(const evr_eng_job_t *job, uint32_t src_index, const char *tar,
                                   evr_eng_trigger_capture_t *out);
void evr_eng_trigger_files_said(evr_eng_job_t *job, const evr_eng_trigger_capture_t *c);
/*  ARTIFACTS/JOB/.trigger-files, where they are kept (caller frees). */
char *evr_eng_trigger_files_dir(const evr_eng_job_t *job);
evr_rc_t evr_eng_trigger_file_load(const evr_eng_step_t *st, const char *path,
                                   const evr_strmap_t *given, char **text, size_t *len,
                                   evr_spec_t **spec, evr_err_t *err);
const char *evr_eng_trigger_source(const evr_spec_t *spec);
/*  The kept files go (the job's end: no step triggers any more). */
void evr_eng_trigger_files_remove(const evr_eng_job_t *job);

/* evr_recover.c */
/*  Reads the log of the step's unit, which has exited, past the bytes
    per stream already stored; its end ends the step's output (as the end
    of the attach does). */
void evr_eng_replay(evr_eng_step_t *st);
/*  While the unit of a recovered step runs (replay_wait): reads its
    log so far when due, storing what is new (the timers call it; next is
    lowered to the time of the next read). */
void evr_eng_peek(evr_eng_step_t *st, uint64_t now, uint64_t *next);

/* evr_image.c */
/*  Whether image, pulled with policy (EVR_PULL_*), is ready in the job's
    executor: 1 yes (or the executor has no images); 0 not yet: fn(arg)
    runs once the pull has ended (the first ask starts it); -1 the pull
    failed: *why is the reason (the image and the registry's words), owned
    by the job. */
int evr_eng_image_need(evr_eng_job_t *job, const char *image, uint32_t policy,
                       void (*fn)(void *arg), void *arg, const char **why);
void evr_eng_images_free(evr_eng_job_t *job);
/*  A job that stops: its pulls under way are cancelled (their waiters
    go on, failing or dropped, possibly from inside this call). */
void evr_eng_images_stop(evr_eng_job_t *job);

/* evr_eng_hooks.c */
/*  The runner's lifecycle hooks for a job (README "Lifecycle hooks").
    evr_eng_hooks_accepted: a new job's job.accepted is committed: its
    PRE_VALIDATION hooks, the deferred checks, POST_VALIDATION,
    PRE_SOURCE_PREP, then evr_eng_job_prepare (directly when there are no
    hooks).  evr_eng_hooks_go: preparation is over: POST_SOURCE_PREP,
    job.started, PRE_EXECUTION; the steps wait (evr_eng_hooks_busy).
    evr_eng_hooks_end: the steps are over: POST_EXECUTION, ON_ERROR (the
    job failed), CLEANUP; true while they run (job.finished waits). */
void evr_eng_hooks_accepted(evr_eng_job_t *job);
void evr_eng_hooks_go(evr_eng_job_t *job);
bool evr_eng_hooks_end(evr_eng_job_t *job);
bool evr_eng_hooks_busy(const evr_eng_job_t *job);
/*  A hook of a phase before the steps runs (or is about to): "running
    hook NAME (PHASE)" into buf, true; else false. */
bool evr_eng_hooks_doing(const evr_eng_job_t *job, char *buf, size_t size);
/*  What a failing hook says for the job's job.finished, "hook NAME
    (PHASE): ..." (NULL: none); *after_steps (may be NULL): it ran after
    the steps (POST_EXECUTION, ON_ERROR, CLEANUP), when the job's own failure (or
    its cancel), if any, comes first. */
const char *evr_eng_hooks_reason(const evr_eng_job_t *job, bool *after_steps);
/*  Whether name is a secret a hook handed out (an untrusted step gets
    none of them, as none of the pipeline's). */
bool evr_eng_hooks_secret(const evr_eng_job_t *job, const char *name);
/*  Recovery: the hooks recorded finished (not run again) and what they
    added (the job's hooks file), taken up; then, for a job recorded
    queued, evr_eng_hooks_accepted; for one that runs with no step begun,
    its PRE_EXECUTION hooks not finished yet. */
void evr_eng_hooks_recover(evr_eng_job_t *job, bool queued);
/*  Recovery, before any job is taken up: the process groups of hooks a
    killed runner left running (evr_hook_pg.h) killed, each said on
    stderr, as is a group that would not end. */
void evr_eng_hooks_sweep(evr_engine_t *e);
/*  The job is cancelled or timed out: a hook of a phase before the steps
    that runs is stopped (SIGTERM to its group, SIGKILL after the grace,
    at once when the job is killed); the phases after the steps run. */
void evr_eng_hooks_stop(evr_eng_job_t *job);
/*  The job is done: its hooks file removed.  evr_eng_hooks_free: a run
    under way killed, all freed (evr_eng_job_free). */
void evr_eng_hooks_done(evr_eng_job_t *job);
void evr_eng_hooks_free(evr_eng_job_t *job);

/* evr_prepare.c */
/*  A new job in e's list (EVR_ENG_JOB_PREPARING), or NULL (EVR_ERR_CONFIG in err
    naming a secret that is not set, or an executor the runner does not
    offer).  With defer (the runner has hooks: PRE_VALIDATION's run first), those checks
    wait for evr_eng_job_check: the job is made all the same (unchecked). */
evr_eng_job_t *evr_eng_job_new(evr_engine_t *e, const char *job_id, const evr_spec_t *spec,
                         const evr_strmap_t *args, bool defer, evr_err_t *err);
/*  The checks evr_eng_job_new deferred (executor, network, secrets):
    false with err saying what is wrong. */
bool evr_eng_job_check(evr_eng_job_t *job, evr_err_t *err);
/*  The values of the secrets job's spec declares (its secrets, its
    sources' (git's, a tarball's), its resources' and registry_auth, a
    credential's password too) that can be
    read, into job->secrets before evr_eng_job_check (which reads them
    again and says what is wrong): a PRE_VALIDATION hook's message is
    masked with them. */
void evr_eng_job_secrets_early(evr_eng_job_t *job);
/*  The steps' output masks made again from job->secrets (before any
    output: a hook added secrets). */
void evr_eng_job_masks(evr_eng_job_t *job);
/*  Says in the runner's log when more lines of the job's secrets than
    before are not masked on their own (m, one of its masks, is past
    EVR_MASK_PIECES_MAX). */
void evr_eng_job_masks_dropped(evr_eng_job_t *job, const evr_mask_t *m);
/*  Frees a job that is out of e's list. */
void evr_eng_job_free(evr_eng_job_t *job);
/*  Preparation failed (reason): job.started records it, every step is
    skipped but, once the workspace is made (ws_ready), those that run
    after a failure; the job fails (or ends cancelled, timed out). */
void evr_eng_prep_failed(evr_eng_job_t *job, const char *reason);
/*  The same, every step skipped: a hook or the runner's checks refused
    the job. */
void evr_eng_job_refused(evr_eng_job_t *job, const char *reason);
/*  What the preparation does now, for a timeout's reason (job->doing). */
void evr_eng_prep_doing(evr_eng_job_t *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*  Preparation is over: evr_eng_hooks_go, which calls
    evr_eng_job_started (job.started, the job runs). */
void evr_eng_job_go(evr_eng_job_t *job);
void evr_eng_job_started(evr_eng_job_t *job);
void evr_eng_on_workspace(const evr_exec_result_t *r, void *arg);
/*  Shared by evr_prepare.c and evr_prepare_source.c: where a job's sent
    copy: source i (0 ci_source, 1 source) is kept (caller frees); the
    image a tar is put into the workspace through (the first step's, and
    its pull policy); the runner setting behind a failed download (for a
    reason's end, "" when none); the sources' phase, after the resources. */
char *evr_eng_copy_file(const evr_engine_t *e, const char *job_id, int i);
const char *evr_eng_first_image(const evr_eng_job_t *job, uint32_t *policy);
const char *evr_eng_fetch_setting(const evr_fetch_result_t *r);
/*  What to do about a download refused for its credentials (HTTP 401 or
    403), secret the name of the one sent (NULL: none), written in buf
    (an answer from another origin a redirect led to says that one got
    none): "" for any other end. */
const char *evr_eng_fetch_auth_hint(const evr_fetch_result_t *r, const char *secret, char *buf,
                                    size_t size);
void evr_eng_source_next(evr_eng_job_t *job);
/*  A job that ends while its source is checked out (or waits to be,
    while the git cache is trimmed), or its tar made: the
    checkout (or the child making it) stops and preparation fails
    (reason: the job's end).  Nothing otherwise. */
void evr_eng_source_abort(evr_eng_job_t *job);
/*  The git cache's trim under way killed (the engine is destroyed). */
void evr_eng_source_trim_stop(evr_engine_t *e);
/*  The same for a resource's tar being made from its download. */
void evr_eng_resource_abort(evr_eng_job_t *job);
/*  Recovery of a job that has started: the commits of its sources, from
    its job.source events (for EVRUN_SOURCE_SHA). */
void evr_eng_source_restore(evr_eng_job_t *job);
/*  The step's environment additions of the job's sources:
    EVRUN_SOURCE_URL, _REF, _SHA (and EVRUN_CI_SOURCE_*), into env. */
void evr_eng_source_env(const evr_eng_job_t *job, evr_strmap_t *env);
/*  A new job's preparation: its workspace made (none for a job with
    no_ws), then its resources; then it runs. */
void evr_eng_job_prepare(evr_eng_job_t *job);

#endif
