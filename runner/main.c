/*  evrun-runner: executes pipelines in podman containers, or as host
    processes where the operator offers that (--executors).

    Three modes: `--exec FILE` runs one pipeline to its end with no broker;
    `--recover` finishes what a previous run left; `--broker EP` serves a
    broker (evr_daemon).  main() only wires things: settings and the
    command line (evr_runner_opts.c), the event loop, the executors
    (s_executors), store, engine, signals that set a flag.  Started as
    `evrun-runner --shim DIR` it is the supervisor of a process step
    instead (evr_shim.h).

    Signals: the handler counts SIGTERM and SIGINT for the loops, with
    two exceptions.  The same signal again from the same process within
    S_SIG_SAME_MS is the same request (timeout(1) sends its SIGTERM to
    the runner and again to its process group): counted twice, it made a
    daemon skip its wait for the broker and exit at once, while timeout
    was still sending its SIGCONTs, and one of those that lands in
    LeakSanitizer's check at exit (an ASan build) leaves that check
    waiting for ever.  And once main has left its loops and waits (s_leave:
    after the daemon's flush and goodbye, after --exec's last turn), a
    second signal ends the process there and then (_exit), whatever the
    teardown or an exit handler waits for.
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evr_bus.h"
#include "evr_config.h"
#include "evr_curve.h"
#include "evr_daemon.h"
#include "evr_log.h"
#include "evr_exec_podman.h"
#include "evr_podman.h"
#include "evr_exec_process.h"
#include "evr_followup.h"
#include "evr_keep.h"
#include "evr_lock.h"
#include "evr_offer.h"
#include "evr_offload.h"
#include "evr_paths.h"
#include "evr_runner_id.h"
#include "evr_runner_opts.h"
#include "evr_runner_tune.h"
#include "evr_sha256.h"
#include "evr_source.h"
#include "evr_shim.h"
#include "evr_unit.h"
#include "evr_yaml.h"

/*  --once: how long the broker has to acknowledge the whole log and the
    artifacts after the job's end. */
#define S_ONCE_SYNC_S 60
/*  --exec, --recover: how long the offloaded children still working at
    the end (a sweep, a removal put off) get to finish, and the jobs to
    end after a second signal (s_turns). */
#define S_OFFLOAD_WAIT_S 5

/*  The same signal from the same process within this long is one
    request (see the top of the file). */
#define S_SIG_SAME_MS 1000

static volatile sig_atomic_t s_interrupts, s_terms;
static volatile sig_atomic_t s_leaving = -1;    /* >= 0: leaving, the exit status */
static volatile sig_atomic_t s_last_sig, s_last_from;
static volatile long long s_last_ms;

static void
s_on_signal(int sig, siginfo_t *si, void *ctx)
{
    (void) ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long ms = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int from = si && si->si_code == SI_USER ? (int) si->si_pid : 0;
    if (from > 0 && sig == s_last_sig && from == s_last_from && ms - s_last_ms < S_SIG_SAME_MS)
        return;   /* the same request, sent to the pid and to its group */
    s_last_sig = sig;
    s_last_from = from;
    s_last_ms = ms;
    if (s_leaving >= 0 && s_interrupts + s_terms > 0) {
        static const char msg[] = "evrun-runner: a second signal while exiting: exiting now\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void) w;
        _exit(s_leaving);
    }
    if (sig == SIGTERM)
        s_terms++;
    else
        s_interrupts++;
}

/*  From here on main tears down (status: what it will return): a second
    signal ends the process at once with it. */
static void
s_leave(int status)
{
    s_leaving = status;
}

/*  A `copy:` source of a pipeline run with --exec names a directory of
    this host, relative to the pipeline file's: made absolute, so that
    job.accepted (and recovery) has the directory the run used. */
static void
s_copy_paths(evr_spec_t *spec, const char *file)
{
    evr_source_t *srcs[2] = { &spec->source, &spec->ci_source };
    const char *slash = strrchr(file, '/');
    char *dir = slash ? evr_strndup(file, (size_t) (slash - file + 1)) : evr_strdup("./");
    for (int i = 0; i < 2; i++) {
        if (!srcs[i]->copy || srcs[i]->copy[0] == '/')
            continue;
        char *rel = evr_asprintf("%s%s", dir, srcs[i]->copy);
        char *abs = realpath(rel, NULL);
        free(srcs[i]->copy);
        srcs[i]->copy = abs ? evr_strdup(abs) : rel;   /* the error comes with the job */
        if (abs)
            free(rel);
        free(abs);
    }
    free(dir);
}

/*  Loads and checks the pipeline, and that this runner offers its
    executor (before any executor is opened: the refusal is what the
    operator sees, not a podman that does not answer); prints errors;
    false when unusable. */
static bool
s_load(const evr_runner_opts_t *o, evr_spec_t *spec, evr_strmap_t *args)
{
    evr_diag_t *diag = evr_diag_new(o->file);
    evr_rc_t rc = evr_yaml_load_file(spec, diag);
    if (rc == EVR_OK)
        rc = evr_spec_bind_args(spec, &o->given, args, diag);
    if (rc == EVR_OK)
        s_copy_paths(spec, o->file);
    evr_diag_print(diag, stderr);
    evr_diag_destroy(&diag);
    evr_err_t err;
    if (rc == EVR_OK && (rc = evr_offer_check(&o->offer, spec->executor, &err)))
        fprintf(stderr, "evrun-runner: %s: %s\n", o->file, err.msg);
    return rc == EVR_OK;
}

/*  The executors this runner offers (the setting executors, o->offer),
    into execs (NULL-terminated, at most EVR_ENGINE_MAX_EXECS); each checks
    it can work (podman answers; the process executor's directories).
    Prints the error and returns false when one fails (the caller
    destroys those made). */
static bool
s_executors(evr_config_t *cfg, evr_loop_t *loop, const evr_runner_opts_t *o, evr_exec_t **execs)
{
    evr_err_t err;
    size_t n = 0;
    const char *url = evr_config_get(cfg, "podman_url");
    if (evr_offer_has(&o->offer, EVR_EXECUTOR_PODMAN)
        && !(execs[n++] = evr_exec_podman_new(url, loop, &err))) {
        fprintf(stderr, "evrun-runner: %s\n", err.msg);
        return false;
    }
    if (evr_offer_has(&o->offer, EVR_EXECUTOR_PODMAN)) {
        evr_exec_podman_set_registry_auth(execs[n - 1], evr_config_get(cfg, "registry_auth"));
        if (!o->file && !o->recover && !o->once)   /* long-running: ask now, not at a job */
            evr_exec_podman_ask_host(execs[n - 1]);
    }
    const char *state = evr_config_get(cfg, "state_dir");
    if (evr_offer_has(&o->offer, EVR_EXECUTOR_PROCESS)
        && !(execs[n++] = evr_exec_process_new(state, loop, &err))) {
        fprintf(stderr, "evrun-runner: %s\n", err.msg);
        return false;
    }
    execs[n] = NULL;
    return true;
}

/*  One runner (daemon, --exec or --recover) per state directory: the lock
    file STATE/evrun.lock, held until the process ends (evr_lock.h). */
static evr_rc_t
s_lock(const char *state_dir, evr_lock_t **lock, evr_err_t *err)
{
    char *path = evr_asprintf("%s/evrun.lock", state_dir);
    evr_rc_t rc = evr_lock_take(path, "evrun-runner", lock, err);
    free(path);
    return rc;
}

/*  --prune finds a store in state_dir (data.mdb), else says so: opening
    one for writing would make a new store there (a dry run too), and a
    broker's state directory (its store in broker/) would get a runner's
    store beside it. */
static evr_rc_t
s_prune_store(const char *state_dir, evr_err_t *err)
{
    char *path = evr_asprintf("%s/data.mdb", state_dir);
    char *broker = evr_asprintf("%s/broker/data.mdb", state_dir);
    struct stat st;
    evr_rc_t rc = EVR_OK;
    if (stat(path, &st) != 0 && errno == ENOENT)
        rc = evr_err_set(err, EVR_ERR_NOTFOUND, "--prune: %s: no runner's event store here "
                         "(no data.mdb), nothing to prune; left as it is%s", state_dir,
                         stat(broker, &st) == 0 ? " (a broker's state directory: the "
                         "broker's retention runs in evrun-broker, or at once with "
                         "evrun-cli prune)" : "");
    free(path);
    free(broker);
    return rc;
}

/*  --prune: retention on the state directory's store, offline: refused
    (exit 2, naming the pid) while a runner holds the directory, or when
    it holds no store (exit 2, nothing made). */
static int
s_prune(const char *state_dir, const evr_runner_opts_t *o)
{
    evr_err_t err;
    evr_lock_t *lock = NULL;
    evr_store_t *store = NULL;
    evr_prune_stats_t st = { 0 };
    int status = 0;
    if (!evr_prune_enabled(&o->retention))
        fprintf(stderr, "evrun-runner: retention is off (retention_max_age, "
                "retention_keep_per_pipeline and retention_output_max_age are 0): nothing to "
                "do\n");
    else if (evr_paths_dir(state_dir, false, &err) || s_prune_store(state_dir, &err)
             || s_lock(state_dir, &lock, &err)
             || evr_store_open(state_dir, EVR_STORE_SYNC | EVR_STORE_RUNNER
                               | (o->dry_run ? EVR_STORE_NOMARK : 0), &store, &err)
             || evr_keep_run(store, &o->retention, state_dir, o->dry_run, &st, &err)) {
        fprintf(stderr, "evrun-runner: %s\n", err.msg);
        status = 2;
    }
    else
        printf("evrun-runner: %s %llu finished jobs (%llu events, %llu other records) and %s "
               "the output of %llu: %llu bytes\n", o->dry_run ? "would remove" : "removed",
               (unsigned long long) st.jobs, (unsigned long long) st.events,
               (unsigned long long) st.records, o->dry_run ? "drop" : "dropped",
               (unsigned long long) st.outputs, (unsigned long long) st.bytes);
    evr_store_destroy(&store);
    evr_lock_destroy(&lock);
    return status;
}


/*  The steps' control channels (evr_step_chan.c): STATE/ctl, or, when a
    socket's path there would not fit a socket address (108 bytes),
    /tmp/evrun-ctl-UID-HASH of the state directory (private, checked
    when a step makes its directory there); the static evrun-job next to
    this binary; the registered secrets in STATE/job-secrets. */
typedef struct {
    char *dir, *bin, *secrets;
} s_chan_t;

static void
s_chan_dirs(const char *state_dir, s_chan_t *c, evr_engine_opts_t *eo)
{
    c->dir = evr_asprintf("%s/ctl", state_dir);
    if (strlen(c->dir) + sizeof "/0123456789abcdef/control.sock" > 108) {
        char hex[EVR_SHA256_HEX];
        evr_sha256_t *h = evr_sha256_new();
        evr_sha256_update(h, state_dir, strlen(state_dir));
        evr_sha256_finish(&h, hex);
        free(c->dir);
        c->dir = evr_asprintf("/tmp/evrun-ctl-%u-%.12s", (unsigned) geteuid(), hex);
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = n > 0 ? (exe[n] = '\0', strrchr(exe, '/')) : NULL;
    if (slash) {
        *slash = '\0';
        c->bin = evr_asprintf("%s/evrun-job", exe);
    }
    c->secrets = evr_asprintf("%s/job-secrets", state_dir);
    eo->control_dir = c->dir;
    eo->job_bin = c->bin;
    eo->job_secrets_dir = c->secrets;
}

/*  The state directory checked (made 0700 when missing), locked, the store
    opened, its unfinished jobs checked against the executors offered
    (evr_offer_check_store: a job left running with an executor not
    offered any more refuses the start), then the executors made; prints
    the error and returns false when one fails (the caller destroys what
    was made). */
static bool
s_open(const char *state_dir, evr_config_t *cfg, evr_loop_t *loop, const evr_runner_opts_t *o,
       evr_exec_t **execs, evr_store_t **store, evr_lock_t **lock)
{
    evr_err_t err;
    if (evr_paths_state(state_dir, EVR_PATHS_CURVE, 0, true, &err)
        || s_lock(state_dir, lock, &err)
        || evr_store_open(state_dir, EVR_STORE_SYNC | EVR_STORE_RUNNER, store, &err)
        || evr_offer_check_store(&o->offer, *store, "evrun-runner", stderr, &err)) {
        fprintf(stderr, "evrun-runner: %s\n", err.msg);
        return false;
    }
    return s_executors(cfg, loop, o, execs);
}

/*  The engine's loop until every job is done; a signal cancels them all
    (the first gracefully, a second at once).  After a second one the
    loop gives the jobs S_OFFLOAD_WAIT_S more to end and be cleaned up (a
    child removing a workspace that never ends would hold it for the
    removal's time limit), then stops, saying so: what is left is
    recovered, or swept, at the next start. */
static void
s_turns(evr_engine_t *eng, const char *state_dir)
{
    static int seen;
    static uint64_t until;
    while (evr_engine_turn(eng, 100) > 0) {
        int sig = s_interrupts + s_terms;
        if (sig != seen) {
            seen = sig;
            evr_engine_cancel_all(eng, seen > 1 ? "interrupted twice"
                                       : s_terms ? "interrupted (SIGTERM)"
                                                 : "interrupted (SIGINT)",
                                  seen > 1);
            if (seen > 1 && !until)
                until = evr_mono_ns() + S_OFFLOAD_WAIT_S * 1000000000ull;
        }
        if (until && evr_mono_ns() > until) {
            fprintf(stderr, "evrun-runner: interrupted twice: gave up waiting %d s for %u "
                    "running and %u ending jobs (their cleanup); evrun-runner --recover "
                    "--state-dir %s takes them up\n", S_OFFLOAD_WAIT_S,
                    evr_engine_active(eng), evr_engine_ending(eng), state_dir);
            break;
        }
    }
}

/*  --follow-triggers: the follow-ups recorded, one after the other, each
    run to its end (evr_followup.h); false when one could not start. */
static bool
s_follow(const evr_runner_opts_t *o, evr_engine_t *eng, evr_followup_t *f, const char *state_dir)
{
    char job[EVR_ULID_LEN + 1];
    bool failed = false;
    const char *msg;
    while (!(s_interrupts + s_terms) && !evr_engine_failure(eng, &msg)
           && evr_followup_start(f, job, o->print, &failed) > 0) {
        s_turns(eng, state_dir);
        evr_followup_ended(f, job);
        evr_engine_summary(eng, job, stdout);   /* as the first job's, also with --quiet */
        printf("history: evrun-replay %s --job %s\n", state_dir, job);
    }
    uint32_t left = evr_followup_pending(f);
    if (left)
        printf("evrun-runner: %u follow-up job%s not started: evrun-runner --recover "
               "--follow-triggers --state-dir %s starts %s\n", left, left == 1 ? "" : "s",
               state_dir, left == 1 ? "it" : "them");
    return !failed;
}

/*  --exec and --recover: the engine's loop until every job is done, then
    with f (--follow-triggers) the follow-ups; the exit status is the
    worst of all. */
static int
s_run_exec(const evr_runner_opts_t *o, evr_engine_t *eng, const evr_spec_t *spec,
           const evr_strmap_t *args, const char *state_dir, evr_exec_t *const *execs,
           evr_followup_t *f)
{
    char job[EVR_ULID_LEN + 1] = "";
    evr_err_t err;
    if (o->file) {
        evr_ulid_new(job);
        evr_exec_t *ex = evr_exec_find(execs, evr_executor_names[spec->executor]);
        if (o->print)
            printf("evrun-runner: job %s, pipeline %s, %u step%s, %s\n", job,
                   spec->pipeline, spec->steps.n, spec->steps.n == 1 ? "" : "s",
                   ex ? ex->ops->describe(ex) : evr_executor_names[spec->executor]);
        if (evr_engine_submit(eng, job, spec, args, &err)) {
            fprintf(stderr, "evrun-runner: %s\n", err.msg);
            return 2;
        }
    }
    s_turns(eng, state_dir);
    const char *msg;
    if (evr_engine_failure(eng, &msg)) {
        fprintf(stderr, "evrun-runner: the event store failed: %s\n", msg);
        return 2;
    }
    if (o->file) {
        evr_engine_summary(eng, job, stdout);
        printf("history: evrun-replay %s --job %s\n", state_dir, job);
    }
    bool ok = !f || s_follow(o, eng, f, state_dir);
    if (evr_engine_failure(eng, &msg)) {
        fprintf(stderr, "evrun-runner: the event store failed: %s\n", msg);
        return 2;
    }
    return evr_engine_all_succeeded(eng) && ok ? 0 : 1;
}

/*  --exec, --recover, at the end: the offloaded children still working
    get up to S_OFFLOAD_WAIT_S (none after a second signal; one that
    comes meanwhile ends the wait); those left are killed and named
    (evr_offload_abandon). */
static void
s_offload_wait(evr_loop_t *loop)
{
    uint64_t until = evr_mono_ns() + S_OFFLOAD_WAIT_S * 1000000000ull;
    int seen = s_interrupts + s_terms;
    while (seen < 2 && evr_offload_running() && evr_mono_ns() < until
           && s_interrupts + s_terms == seen)
        evr_loop_once(loop, 50);
    evr_offload_abandon("evrun-runner");
}

static uint64_t
s_acked(void *arg)
{
    return evr_daemon_acked(arg);
}

/*  --once: the exit status of the job taken (0 succeeded, 1 any other
    end; 2 when it has not ended or the store cannot say). */
static int
s_once_status(evr_store_t *store, const char *job, const char *who)
{
    evr_job_t pj = { 0 };
    evr_err_t err;
    int status = 2;
    if (evr_store_get_job(store, job, &pj, &err))
        evr_log_error(who, "job %s: reading its end: %s", job, err.msg);
    else if (pj.status == EVR_JOB_SUCCEEDED)
        status = 0;
    else if (pj.status != EVR_JOB_QUEUED && pj.status != EVR_JOB_RUNNING
             && pj.status != EVR_JOB_PAUSED)
        status = 1;
    if (status < 2)
        evr_log_info(who, "job %s %s", job, evr_job_status_name(pj.status));
    evr_rec_free(&evr_job_type, &pj);
    return status;
}

/*  After the loop: the broker gets the rest of the log and the artifacts
    queued before the exit, and the offloaded children (evr_offload.h)
    their time to finish (5 s at most; --once: S_ONCE_SYNC_S; a second
    signal ends the wait).  True when the broker holds everything; *idle:
    no job runs nor an ended one's cleanup (else --clean keeps the
    directory for the next start). */
static bool
s_daemon_flush(const evr_runner_opts_t *o, evr_daemon_t *d, evr_engine_t *eng, const char *who,
               bool *idle)
{
    const char *kept = o->clean ? " (--clean: the state directory is kept)" : "";
    uint64_t until = evr_mono_ns() + (o->once ? S_ONCE_SYNC_S : 5) * 1000000000ull;
    while ((!evr_daemon_synced(d) || evr_daemon_shipping(d, false) || evr_offload_running())
           && evr_mono_ns() < until && s_interrupts + s_terms < 2)
        evr_daemon_turn(d, 50);
    uint32_t unshipped = evr_daemon_shipping(d, true);    /* the queue read again: exact */
    bool synced = evr_daemon_synced(d), all = synced && !unshipped;
    if (!synced)
        evr_log_warn(who, "the broker has not acknowledged the whole log; the rest is sent at "
                     "the next start");
    if (unshipped)
        evr_log_warn(who, "%u artifact files not shipped to the broker yet; they are at the "
                     "next start", unshipped);
    *idle = !evr_engine_active(eng) && !evr_engine_ending(eng);
    if (evr_engine_active(eng))
        evr_log_warn(who, "exiting with %u job%s running; they are taken up at the next "
                     "start%s", evr_engine_active(eng), evr_engine_active(eng) == 1 ? "" : "s",
                     kept);
    else if (evr_engine_ending(eng))
        evr_log_warn(who, "exiting before the cleanup of %u ended jobs was over (their "
                     "containers, workspace volume); it is done at the next start%s",
                     evr_engine_ending(eng), kept);
    else
        evr_log_info(who, "stopped");
    return all;
}

/*  One turn's verdict of the daemon loop: -1 go on, else the exit status. */
static int
s_daemon_check(const evr_runner_opts_t *o, evr_daemon_t *d, evr_engine_t *eng, const char *who,
               uint64_t started, uint64_t *deadline)
{
    const char *msg;
    if (evr_engine_failure(eng, &msg)) {
        evr_log_error(who, "the event store failed: %s", msg);
        return 2;
    }
    if (evr_daemon_drained(d) && o->once && !evr_daemon_once_job(d)) {
        evr_log_info(who, "--once: drained before a job came; exiting");
        return 3;
    }
    if (evr_daemon_drained(d) && evr_daemon_cleanup_waited(d, o->stop_timeout))
        return 0;
    if (evr_daemon_fatal(d)) {
        evr_log_error(who, "%s", evr_daemon_fatal(d));
        return 2;
    }
    const char *once = o->once ? evr_daemon_once_job(d) : NULL;
    if (once && evr_engine_active(eng) == 0 && evr_daemon_cleanup_waited(d, o->stop_timeout))
        return 0;
    if (o->once && !once && o->once_wait
        && evr_mono_ns() - started > (uint64_t) o->once_wait * 1000000000ull) {
        evr_log_error(who, "--once: no job came within %d s (--once-wait); exiting",
                      o->once_wait);
        return 3;
    }
    int sig = s_interrupts + s_terms;
    if (sig && !*deadline) {
        evr_daemon_stop_taking(d);
        *deadline = evr_mono_ns() + (uint64_t) o->stop_timeout * 1000000000ull;
        evr_log_info(who, "stopping: no new jobs; waiting up to %d s for %u running and %u "
                     "ending (their cleanup)", o->stop_timeout, evr_engine_active(eng),
                     evr_engine_ending(eng));
    }
    if (*deadline && ((evr_engine_active(eng) == 0 && evr_engine_ending(eng) == 0)
                      || evr_mono_ns() > *deadline || sig > 1))
        return o->once ? 2 : 0;
    return -1;
}

/*  --broker: serve until drained or stopped (--once: until the job's
    end).  *all: the broker holds the whole log and every artifact, and no
    job runs or is being cleaned up (--clean may remove the directory). */
static int
s_run_daemon(const evr_runner_opts_t *o, evr_config_t *cfg, evr_store_t *store, evr_engine_t *eng,
             const char *id, const char *const *lv, bool *all)
{
    bool idle = true;
    evr_err_t err;
    uint64_t cap = 0, hb = 0, lease = 0;
    *all = false;
    evr_engine_log_warnings();  /* the engine's warnings as the daemon's log lines */
    if (!evr_runner_opts_daemon_numbers(cfg, &cap, &hb, &lease)) {
        evr_config_report(cfg, "evrun-runner", stderr);
        return 2;
    }
    evr_daemon_opts_t dopts = {
        .endpoint = evr_config_get(cfg, "runner_endpoint"), .runner_id = id, .labels = lv,
        .capacity = o->once ? 1 : (uint32_t) cap, .heartbeat_ms = (uint32_t) hb,
        .lease_ms = (uint32_t) lease, .exit_when_drained = o->exit_drained || o->once,
        .once = o->once, .curve_cert = evr_config_get(cfg, "runner_cert"),
        .broker_key = evr_config_get(cfg, "broker_key"),
    };
    char *ship_dir = evr_asprintf("%s/ship", evr_config_get(cfg, "state_dir"));
    char *art_dir = evr_asprintf("%s/artifacts", evr_config_get(cfg, "state_dir"));
    dopts.ship_dir = ship_dir;
    dopts.artifacts_dir = art_dir;
    char who[96];
    snprintf(who, sizeof who, "evrun-runner %s", id);
    evr_daemon_t *d = NULL;
    if (evr_daemon_new(&dopts, store, eng, &d, &err)) {
        fprintf(stderr, "evrun-runner: %s\n", err.msg);
        free(ship_dir);
        free(art_dir);
        return 2;
    }
    evr_daemon_take_triggers(d);
    evr_keep_t *keep = evr_keep_new(evr_engine_loop(eng), store, &o->retention,
                                    o->retention_ms, evr_config_get(cfg, "state_dir"),
                                    s_acked, d);
    uint64_t deadline = 0, started = evr_mono_ns();
    int status;
    do
        evr_daemon_turn(d, 200);
    while ((status = s_daemon_check(o, d, eng, who, started, &deadline)) < 0);
    const char *job = o->once ? evr_daemon_once_job(d) : NULL;
    uint64_t last = 1;
    evr_daemon_stop_taking(d);  /* credit 0: a dispatch while flushing is not taken */
    if (status != 2 || job)
        *all = s_daemon_flush(o, d, eng, who, &idle);
    else if (o->once)   /* no job taken: nothing to wait for when the log is empty */
        *all = evr_store_last_seq(store, &last, &err) == EVR_OK && last == 0;
    evr_daemon_goodbye(d, s_interrupts + s_terms > 0);
    if (job && status == 0)
        status = s_once_status(store, job, who);
    if (o->once && status < 2 && !*all) {
        evr_log_error(who, "--once: exit 2: the broker does not hold all of job %s's log "
                      "and artifacts; the state directory keeps them", job);
        status = 2;
    }
    s_leave(status);
    evr_offload_abandon(who);   /* the flush was their time */
    *all = *all && idle;
    evr_keep_destroy(&keep);
    evr_daemon_destroy(&d);
    free(ship_dir);
    free(art_dir);
    return status;
}

/*  --once --clean: the state directory goes, everything in it acked. */
static void
s_clean(const char *state_dir)
{
    evr_err_t err;
    if (evr_unit_rmtree(state_dir, &err))
        evr_log_warn("evrun-runner", "--clean: removing %s: %s", state_dir, err.msg);
    else
        evr_log_info("evrun-runner", "--clean: removed %s", state_dir);
}

int
main(int argc, char **argv)
{
    if (evr_shim_wanted(argc, argv))   /* a process step's supervisor (evr_shim.h) */
        return evr_shim_main(argv[2]);
    evr_runner_tune();
    evr_source_locale();
    evr_runner_opts_t o = { .print = true, .stop_timeout = 30 };
    const char *flags[80], *file = NULL;
    size_t nf = 0;
    bool print_config = false, all = false;
    int status = evr_runner_opts_parse(argc, argv, &o, flags, &nf, &file, &print_config);
    if (status) {
        evr_strmap_free(&o.given);
        return status < 0 ? 0 : status;
    }
    evr_config_t *cfg = evr_runner_opts_config();
    evr_spec_t spec = { 0 };
    evr_strmap_t args = { 0 };
    evr_store_t *store = NULL;
    evr_lock_t *lock = NULL;
    evr_loop_t *loop = evr_loop_new();
    evr_exec_t *execs[EVR_ENGINE_MAX_EXECS + 1] = { NULL };
    evr_engine_t *eng = NULL;
    char *artifacts = NULL, *cache = NULL, *ship = NULL, *caches = NULL, *id = NULL, *labels = NULL;
    s_chan_t chan = { 0 };
    char *url = evr_podman_default_url();
    evr_hooks_t *hooks = NULL;
    char *hooks_dir = NULL;
    evr_followup_t *follow = NULL;
    char *pdir = NULL;
    const char *lv[EVR_OFFER_LABELS_MAX + 1] = { NULL };
    bool daemon = !o.file && !o.recover;
    evr_err_t err;
    uint64_t grace = 0;
    size_t level = EVR_LOG_INFO;
    evr_config_default(cfg, "podman_url", url);
    evr_config_default(cfg, "runner_endpoint", "tcp://127.0.0.1:7701");
    /* every error of the settings at once: the file's, then each value's */
    uint64_t cap, hb, lease;
    (void) evr_config_layer(cfg, file, flags, nf, &err);
    (void) evr_config_uint(cfg, "grace", 1, 3600, &grace, &err);
    (void) evr_config_choice(cfg, "log_level", evr_log_level_names, EVR_LOG_NLEVELS, &level,
                             &err);
    if (daemon && (print_config || !o.prune)) {
        (void) evr_runner_opts_daemon_numbers(cfg, &cap, &hb, &lease);
        (void) evr_runner_id_check(cfg, &err);
        static const char *const eps[] = { "runner_endpoint" };
        (void) evr_bus_check_endpoints(cfg, eps, 1, &err);
    }
    (void) evr_keep_settings(cfg, &o.retention, &o.retention_ms, &err);
    (void) evr_runner_opts_hooks(cfg, file, &hooks);
    evr_engine_opts_t lim = { 0 };
    (void) evr_runner_opts_limits(cfg, &lim);
    (void) evr_runner_opts_offer(cfg, &o, daemon && (print_config || !o.prune), lv, &labels);
    if (evr_config_report(cfg, "evrun-runner", stderr)) {
        status = 2;
        goto out;
    }
    const char *state_dir = evr_config_get(cfg, "state_dir");
    evr_curve_defaults(cfg, "runner_cert", "runner.cert");
    if (print_config) {   /* the settings checked as at start, in this mode */
        evr_config_print(cfg, stdout);
        evr_hooks_print(hooks, stdout);
        goto out;
    }
    if (o.prune) {
        status = s_prune(state_dir, &o);
        goto out;
    }
    evr_log_set_level((evr_log_level_t) level);
    evr_engine_opts_t eo = { .print = o.print, .keep = o.keep, .grace_s = (int) grace,
                             .secrets_dir = evr_config_get(cfg, "secrets_dir") };
    if (!evr_runner_opts_limits(cfg, &eo)) {   /* checked above: a file gone since */
        (void) evr_config_report(cfg, "evrun-runner", stderr);
        status = 2;
        goto out;
    }
    /* the file read before the handlers: a read that blocks (a FIFO no
       one writes) restarted after a counted signal, so Ctrl-C and SIGTERM
       did nothing; this way they end it, nothing recorded */
    if (o.file && !s_load(&o, &spec, &args)) {
        status = 2;
        goto out;
    }
    /* from here on a signal is counted, not fatal: one during the start
       (store, podman, recovery) stops the runner at its first turn, the
       way one in the loop does, so --clean still removes an untouched
       state directory (a provisioner's runner stopped as it starts) */
    struct sigaction sa = { .sa_sigaction = s_on_signal, .sa_flags = SA_SIGINFO | SA_RESTART };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    artifacts = evr_asprintf("%s/artifacts", state_dir);
    cache = evr_asprintf("%s/git-cache", state_dir);
    if (o.file && o.follow && !o.pipelines) {
        const char *slash = strrchr(o.file, '/');
        pdir = slash ? evr_strndup(o.file, (size_t) (slash - o.file + (slash == o.file)))
                     : evr_strdup(".");
    }
    if (!s_open(state_dir, cfg, loop, &o, execs, &store, &lock)) {
        status = 2;
        goto out;
    }
    if (daemon && evr_offer_check_exec_jobs(store, state_dir, "evrun-runner", stderr, &err)) {
        fprintf(stderr, "evrun-runner: %s\n", err.msg);
        status = 2;
        goto out;
    }
    if (!(id = daemon ? evr_runner_id(cfg, store, state_dir) : evr_strdup("exec"))) {
        status = 2;
        goto out;
    }
    eo.print = o.print && !daemon;
    eo.artifacts_dir = artifacts;
    if (daemon)   /* artifacts go to the broker too (evr_ship.h) */
        eo.ship_dir = ship = evr_asprintf("%s/ship", state_dir);
    eo.caches_dir = caches = evr_asprintf("%s/caches", state_dir);
    eo.runner_id = id;
    eo.flush_ms = daemon ? 10 : 0;   /* subscribers see output live: store it within 10 ms */
    eo.source_cache_dir = cache;
    eo.source_copy_local = !daemon;   /* --exec (or its --recover): this host's directories */
    eo.hooks = hooks;
    eo.hooks_dir = hooks_dir = evr_asprintf("%s/hooks", state_dir);
    s_chan_dirs(state_dir, &chan, &eo);
    eng = evr_engine_new(&eo, store, loop, execs);
    if (o.follow)   /* the directory of FILE unless --pipelines names one */
        follow = evr_followup_new(eng, store, o.pipelines ? o.pipelines : pdir, execs);
    uint32_t recovered = 0;
    if (!daemon && s_interrupts + s_terms) {   /* a signal as it started: nothing begun */
        fprintf(stderr, "evrun-runner: interrupted (%s) before any job was taken up: nothing "
                "recorded\n", s_terms ? "SIGTERM" : "SIGINT");
        status = s_terms ? 143 : 130;
        goto out;
    }
    if (evr_engine_recover(eng, &recovered, &err)) {
        fprintf(stderr, "evrun-runner: recovery: %s\n", err.msg);
        status = 2;
        goto out;
    }
    if (o.recover && !recovered && o.print)
        printf("evrun-runner: no unfinished jobs in %s\n", state_dir);
    status = daemon ? s_run_daemon(&o, cfg, store, eng, id, lv, &all)
                    : s_run_exec(&o, eng, &spec, &args, state_dir, execs, follow);
    if (!daemon)
        s_offload_wait(loop);
out:
    s_leave(status);
    evr_followup_destroy(&follow);
    evr_engine_destroy(&eng);
    evr_store_destroy(&store);
    for (size_t i = 0; execs[i]; i++)
        evr_exec_destroy(&execs[i]);
    evr_loop_destroy(&loop);
    if (o.clean && all)   /* everything acked (or nothing logged), no job left */
        s_clean(evr_config_get(cfg, "state_dir"));
    evr_lock_destroy(&lock);
    evr_rec_free(&evr_spec_type, &spec);
    evr_strmap_free(&args);
    evr_strmap_free(&o.given);
    evr_config_destroy(&cfg);
    evr_hooks_destroy(&hooks);
    free(hooks_dir);
    free(pdir);
    free(artifacts);
    free(cache);
    free(ship);
    free(caches);
    free(chan.dir);
    free(chan.bin);
    free(chan.secrets);
    free(id);
    free(labels);
    free(url);
    return status;
}
