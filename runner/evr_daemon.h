/*  evr_daemon.h: a runner serving a broker (DESIGN §6, §7).

    Connects a DEALER to the broker's runner endpoint and speaks the
    runner side of schema/PROTOCOL.md "Dispatch": hello (id, labels,
    capacity, the highest seq of its log), welcome (where the broker's copy
    of the log ends: everything above is sent again), credit (free slots,
    whenever it changes), dispatch (the job goes to the engine, which
    commits job.accepted before anything else), control (cancel, pause,
    resume, drain), events (the log, streamed in batches from the store
    after each commit, at most a window ahead of the broker's acks) and
    heartbeats both ways.  A broker that falls silent past the lease is
    reconnected to; meanwhile the jobs go on and their events wait in the
    log.  One thread: the socket (and its CURVE monitor) are watched on
    the engine's event loop (evr_engine_loop).
*/
#ifndef EVR_DAEMON_H_INCLUDED
#define EVR_DAEMON_H_INCLUDED

#include "evr_engine.h"

typedef struct evr_daemon evr_daemon_t;

typedef struct {
    const char *endpoint;       /* the broker's runner endpoint */
    const char *runner_id;
    const char *const *labels;  /* NULL-terminated */
    uint32_t capacity;          /* jobs at once */
    uint32_t heartbeat_ms;      /* default 1000 */
    uint32_t lease_ms;          /* broker silent this long: reconnect (default 5000) */
    bool exit_when_drained;     /* a drain ends the daemon once its jobs are done */
    bool once;                  /* single use: hello says ephemeral, one job taken, then
                                   credit 0 for good (evr_daemon_once_job) */
    const char *curve_cert;     /* tcp://: this runner's key pair (made when missing) */
    const char *broker_key;     /* tcp://: the broker's public key (evr_curve.h) */
    const char *ship_dir;       /* artifacts queued for the broker (evr_ship.h); NULL: none */
    const char *artifacts_dir;  /* where the queued files are */
} evr_daemon_opts_t;

/*  The daemon drives engine (and reads store); the caller keeps both. */
evr_rc_t evr_daemon_new(const evr_daemon_opts_t *opts, evr_store_t *store, evr_engine_t *engine,
                        evr_daemon_t **out, evr_err_t *err);
void evr_daemon_destroy(evr_daemon_t **self_p);

/*  One turn: broker messages, the engine's turn (waiting at most
    timeout_ms for the executors, downloads or the broker), events and
    credit out. */
void evr_daemon_turn(evr_daemon_t *self, int timeout_ms);

/*  Stop taking work (SIGTERM, and at every exit before the log's
    flush): credit 0 from now on, and a dispatch that comes is not taken
    (the broker queues it again at the goodbye). */
void evr_daemon_stop_taking(evr_daemon_t *self);

/*  The runner leaves (the daemon's end, after evr_daemon_stop_taking and
    the log's flush): takes no more work and, when the broker welcomed it,
    sends `goodbye` with the highest seq of its log and why it leaves
    (signalled: a SIGTERM or SIGINT stopped it; else drained, --once's end,
    or the event store's failure).  The broker shows it stopped and, when
    it holds the log up to that seq, queues again the jobs it dispatched
    here that the log does not accept.  The socket's linger (1 s) lets the
    message go out as the daemon is destroyed; a send that fails (no
    connection) is logged, and the broker shows the runner lost. */
void evr_daemon_goodbye(evr_daemon_t *self, bool signalled);

/*  True when the broker has acknowledged the whole log. */
bool evr_daemon_synced(evr_daemon_t *self);

/*  Artifact files queued and not yet held by the broker (0: none), as
    evr_ship_pending: with look, the queue is read again and the count
    exact; without, one queued since the shipper's last read is not
    counted (the count is 0 only when there is none). */
uint32_t evr_daemon_shipping(evr_daemon_t *self, bool look);

/*  Why the broker refuses this runner for good (another log under the
    same id), or NULL. */
const char *evr_daemon_fatal(const evr_daemon_t *self);

/*  opts.once: the job dispatched and taken (its job.accepted committed,
    or its refusal recorded), or NULL while none was. */
const char *evr_daemon_once_job(const evr_daemon_t *self);

/*  True when drained with exit_when_drained and no job runs (ended ones
    may still be cleaning up: evr_engine_ending; the caller waits for
    them, bounded). */
bool evr_daemon_drained(const evr_daemon_t *self);

/*  No job left to run (--once's ended, or drained with
    exit_when_drained): true once the ended jobs' cleanup is over, or
    stop_timeout seconds after it was all that was left (said: the next
    start's sweep takes what is left). */
bool evr_daemon_cleanup_waited(evr_daemon_t *self, int stop_timeout);

/*  The seq up to which the broker holds this runner's log (0 before the
    first welcome): retention removes nothing above it (evr_keep.h). */
uint64_t evr_daemon_acked(const evr_daemon_t *self);

/*  The engine's triggers (evrun-job trigger) go to the broker on this
    daemon's session from now on (evr_trigger.h). */
void evr_daemon_take_triggers(evr_daemon_t *self);

#endif
