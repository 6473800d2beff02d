/*  evr_engine.h: the job engine of a runner.

    Runs jobs' steps through executors (evr_exec.h: podman containers,
    host processes), one thread, event-driven: every executor operation is
    asynchronous and reports from a turn of the event loop (evr_loop),
    which also carries resource downloads (evr_fetch) and whatever else
    the process waits for.  Every transition is an event appended to the
    store before its effect (DESIGN §5): the intent to create a step's
    unit (step.starting) is committed before the create, a step's result
    (step.finished) before its unit is removed.  Events that arise in one
    turn are committed together (group commit).

    Output is demultiplexed, masked (secrets become ***), cut into chunks
    of at most EVR_OUTPUT_CHUNK_MAX bytes or flushed after a short delay,
    stored as step.output events with raw offsets, and then printed.

    Control of one job (cancel, pause, resume) commits its event before it
    acts, and returns once the event is committed.  A job the engine
    holds is live until it finishes, then cleans up (units, workspace);
    a daemon forgets the jobs that are done with evr_engine_forget_finished.
*/
#ifndef EVR_ENGINE_H_INCLUDED
#define EVR_ENGINE_H_INCLUDED

#include <stdio.h>

#include "evr_exec.h"
#include "evr_hooks.h"
#include "evr_fetch.h"
#include "evr_store.h"

/*  The defaults of evr_engine_opts_t's secrets_allow and *_max_bytes
    (1 GiB), the latter also as a string for configuration and --help. */
#define EVR_SECRETS_ALLOW_DEFAULT "EVRUN_SECRET_*"
#define EVR_MAX_BYTES_DEFAULT 1073741824
#define EVR_MAX_BYTES_DEFAULT_STR EVR_STRINGIFY(EVR_MAX_BYTES_DEFAULT)
#define EVR_ARTIFACT_JOB_MAX_DEFAULT 4294967296ull
#define EVR_ARTIFACT_JOB_MAX_DEFAULT_STR "4294967296"
#define EVR_CACHE_MAX_DEFAULT 10737418240ull
#define EVR_CACHE_MAX_DEFAULT_STR "10737418240"
#define EVR_STRINGIFY(x) EVR_STRINGIFY_(x)
#define EVR_STRINGIFY_(x) #x

typedef struct evr_engine evr_engine_t;

typedef struct {
    const char *runner_id;      /* written into job.accepted */
    const char *secrets_dir;    /* files named after secrets; NULL: environment only */
    const char *artifacts_dir;  /* artifacts land in DIR/JOB/STEP/ */
    bool keep;                  /* keep units and workspaces (debugging) */
    bool print;                 /* print output and progress to stdout */
    int grace_s;                /* SIGTERM -> SIGKILL grace on stop (default 10) */
    uint32_t when_grace_ms;     /* most a `when: always` step or on_error runs after a
                                   cancel or timeout of its job (default
                                   EVR_WHEN_GRACE_MS; tests set less) */
    uint32_t parallel;          /* default steps at once per job (default 4) */
    uint32_t flush_ms;          /* longest wait before stored output (default 50) */
    /*  Names a pipeline may read from the runner's environment as secrets:
        comma-separated NAMEs and PREFIX*es; NULL: EVR_SECRETS_ALLOW_DEFAULT.
        Files under secrets_dir are allowed whatever their name. */
    const char *secrets_allow;
    /*  One artifact's tar stream; one resource's download, and its
        contents (0: EVR_MAX_BYTES_DEFAULT each). */
    uint64_t artifact_max_bytes;
    uint64_t resource_max_bytes;
    /*  A job's artifact files at most, all steps and attempts (0:
        EVR_ARTIFACT_JOB_MAX_DEFAULT). */
    uint64_t artifact_job_max_bytes;
    /*  Where each artifact file is queued for the broker (evr_ship.h);
        NULL: not shipped (--exec). */
    const char *ship_dir;
    /*  Caches: their LRU records (evr_cache.h); the sizes of all at most
        (0: EVR_CACHE_MAX_DEFAULT). */
    const char *caches_dir;
    uint64_t cache_max_bytes;
    evr_fetch_redirects_t resource_redirects;  /* default: same origin only */
    bool resource_deny_local;       /* refuse loopback and link-local resource addresses */
    bool host_network_deny;         /* refuse jobs with a step of network: host */
    /*  Sources: the cache of git repositories (NULL: no git sources);
        whether `copy:` names a directory of this host (--exec only). */
    const char *source_cache_dir;
    bool source_copy_local;
    /*  The cache of repositories' sizes at most: the least recently used
        past it are removed after a checkout (0: EVR_CACHE_MAX_DEFAULT). */
    uint64_t source_cache_max_bytes;
    /*  The runner's lifecycle hooks (NULL: none; evr_hooks.h), and where
        what they add to a job is kept till its end (NULL: not kept). */
    const evr_hooks_t *hooks;
    const char *hooks_dir;
    /*  The steps' control channels (evr_step_chan.c): a directory per unit
        under control_dir (NULL: no channel), holding its socket and a
        link to the runner's copy of job_bin (the static evrun-job; NULL
        or missing: none); the values steps register as secrets, a file
        per job under job_secrets_dir (NULL: registering is refused). */
    const char *control_dir;
    const char *job_bin;
    const char *job_secrets_dir;
    /*  A step may trigger any registered pipeline, not only those its
        spec's `triggers:` names (the runner setting triggers_any). */
    bool triggers_any;
} evr_engine_opts_t;

/*  The longest value a step may register as a secret (bytes). */
#define EVR_JOB_SECRET_MAX 32768

/*  The engine uses store, loop and the executors it offers (execs, a
    NULL-terminated list, at most EVR_ENGINE_MAX_EXECS: a job runs on the
    one its pipeline's `executor` names); the caller keeps ownership of
    each, and destroys the engine before them.  The engine makes its
    resource downloader on loop. */
#define EVR_ENGINE_MAX_EXECS 8
evr_engine_t *evr_engine_new(const evr_engine_opts_t *opts, evr_store_t *store,
                             evr_loop_t *loop, evr_exec_t *const *execs);
void evr_engine_destroy(evr_engine_t **self_p);

/*  The engine's own warnings (a step that could not be removed, a hook's
    leftovers): as `evrun-runner: ...` lines on stderr (--exec, --recover),
    or, once this is called, as the daemon's log lines (with the time and
    level, as evr_log_warn writes them). */
void evr_engine_log_warnings(void);

/*  The loop the engine turns (evr_engine_turn), for the caller's own
    watches (a daemon's sockets). */
evr_loop_t *evr_engine_loop(const evr_engine_t *self);

/*  Keeps the tar of a job's `copy:` source sent with its dispatch (which:
    "source" or "ci_source") for the job's preparation, in the job's
    directory under artifacts_dir (removed once the job is done).  Call
    before evr_engine_submit.  EVR_ERR_IO when it cannot be written (the
    job then fails, saying the tar is missing). */
evr_rc_t evr_engine_copy_save(evr_engine_t *self, const char *job_id, const char *which,
                              const uint8_t *data, size_t len, evr_err_t *err);

/*  Accepts a job: resolves its secrets and its executor (EVR_ERR_CONFIG
    naming a missing secret, or an executor this runner does not offer,
    with what it offers), appends job.accepted and schedules it (a job
    that needs no workspace starts at once: job.started and its first
    step's intent go in the same commit, and its first create is asked
    before this returns).  args are
    the resolved args (evr_spec_bind_args).  EVR_ERR_STATE when the engine
    holds the job or the store knows it already (a repeated dispatch);
    EVR_ERR_STORE when the commit fails (the engine has failed then:
    evr_engine_failure). */
evr_rc_t evr_engine_submit(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
                           const evr_strmap_t *args, evr_err_t *err);
/*  The same for a job a step of parent_job triggered (evrun-job trigger):
    parent_job and parent_step (NULL: none) go into its job.accepted. */
evr_rc_t evr_engine_submit_child(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
                                 const evr_strmap_t *args, const char *parent_job,
                                 const char *parent_step, evr_err_t *err);

/*  Records a job the runner was given but cannot run (evr_engine_submit
    failed, e.g. a missing secret): job.accepted and job.finished (status
    failed, reason) in one commit, so the job ends visibly failed.  The
    engine does not hold it afterwards.
    EVR_ERR_STATE when the engine holds the job or the store knows it;
    EVR_ERR_STORE when the commit fails (the engine has failed then). */
evr_rc_t evr_engine_reject(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
                           const evr_strmap_t *args, const char *reason, evr_err_t *err);

/*  Takes up every unfinished job of the store again (after a restart):
    see evr_recover.c.  *jobs counts them; appends runner.recovered when
    there are any.  A job recorded paused stays paused (its units paused,
    no step started) until evr_engine_resume.  Every executor is swept of
    the units and workspaces of finished jobs. */
evr_rc_t evr_engine_recover(evr_engine_t *self, uint32_t *jobs, evr_err_t *err);

/*  The engine's test seam for the daemon (EVR_TEST_PAUSE_AT=POINT in the
    environment stops the process at POINT, for a crash test to kill it
    there; nothing without the variable): "ship", an artifact file partly
    held by the broker. */
void evr_engine_test_pause(const char *point);

/*  True when every job the engine holds succeeded (vacuously true). */
bool evr_engine_all_succeeded(const evr_engine_t *self);

/*  One turn: one evr_loop_once (waiting at most timeout_ms, less when an
    engine timer falls due first), then the engine's timers, scheduling,
    commit and cleanup.  Returns the number of jobs not finished yet. */
int evr_engine_turn(evr_engine_t *self, int timeout_ms);

/*  Graceful cancel of one job: job.cancel_requested (with reason) is
    committed, then its running steps get SIGTERM and SIGKILL after the
    grace period (a paused unit is resumed first), a step whose start
    is under way (create, attach, start not answered yet) ends cancelled
    without waiting for the answer (a unit it made is removed when it
    comes), steps not started are skipped, and the job ends cancelled
    (its job.finished does not wait for those answers; its cleanup,
    and evr_engine_forget_finished, do).  The `when: always` steps and
    on_error still run (within their grace, when_grace_ms).  With force
    (a user's second cancel) they do not: every running step is killed at
    once (no grace), those `always` steps too, and what has not begun is
    skipped; it is recorded as job.cancel_requested with force: true (the
    reason that one's; the job keeps its first cancel's), once.
    Cancelling a job being cancelled without force, or again with force
    once forced, is EVR_OK and records nothing.  Errors: EVR_ERR_NOTFOUND
    when the engine does not hold the job; EVR_ERR_STATE when it has
    finished; EVR_ERR_STORE when the commit fails (the engine has failed
    then). */
evr_rc_t evr_engine_cancel(evr_engine_t *self, const char *job_id, const char *reason,
                           bool force, evr_err_t *err);

/*  evr_engine_cancel of every unfinished job, now as its force (a second
    Ctrl-C of --exec). */
void evr_engine_cancel_all(evr_engine_t *self, const char *reason, bool now);

/*  Pauses a running job: job.paused is committed, then every running step's
    unit is paused (frozen) and no step starts until it resumes
    (a step whose start was under way is held before its start, or paused
    once it runs).  Paused time does not count for the job's nor the steps'
    timeouts: their deadlines move by it on resume (also across a runner
    restart, from the recorded job.paused and job.resumed).  A step's
    duration is wall time, pauses included.  A pause that fails is a
    warning on stderr; the unit is inspected and the pause tried again
    (3 more times at most), then that unit keeps running.  Errors:
    EVR_ERR_NOTFOUND (not held); EVR_ERR_STATE when the job is not
    running: preparing its workspace, paused already, being cancelled or
    stopped, or finished; EVR_ERR_STORE when the commit fails. */
evr_rc_t evr_engine_pause(evr_engine_t *self, const char *job_id, evr_err_t *err);

/*  Resumes a paused job: job.resumed is committed, its paused units
    are resumed, held steps start and scheduling goes on.  A resume that
    fails is a warning on stderr; the unit is inspected and the resume
    tried again (3 more times at most), then the step is killed and
    fails, its reason saying so.  A job found
    paused by evr_engine_recover stays paused until this call.  Errors:
    EVR_ERR_NOTFOUND (not held); EVR_ERR_STATE when the job is not paused
    (or is being cancelled: the cancel ends it); EVR_ERR_STORE. */
evr_rc_t evr_engine_resume(evr_engine_t *self, const char *job_id, evr_err_t *err);

/*  Jobs held and not finished yet (preparing, running or paused): those
    that occupy a slot of the runner's capacity. */
uint32_t evr_engine_active(const evr_engine_t *self);
/*  Jobs that finished (job.finished) whose cleanup is not over yet: their
    units and workspace being removed.  A runner that stops waits for
    them too (within its stop timeout); its next start sweeps what is
    left. */
uint32_t evr_engine_ending(const evr_engine_t *self);

/*  Frees the jobs that are done: finished, cleaned up, and with no
    executor operation in flight.  Afterwards they are unknown to the engine
    (evr_engine_job_status EVR_JOB_NONE); the store
    still has them.  For long-running daemons; --exec never calls it. */
void evr_engine_forget_finished(evr_engine_t *self);

/*  A store failure stops the engine: then this returns it (and the loop
    ends its jobs without further events). */
evr_rc_t evr_engine_failure(const evr_engine_t *self, const char **msg);

/*  Final status of a finished job (EVR_JOB_NONE when unknown or not
    finished). */
evr_job_status_t evr_engine_job_status(const evr_engine_t *self, const char *job_id);

/*  Prints a summary table of a job's steps to out. */
void evr_engine_summary(const evr_engine_t *self, const char *job_id, FILE *out);

#endif
