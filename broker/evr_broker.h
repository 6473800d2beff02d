/*  evr_broker.h: the command bus (DESIGN §7).

    Three sockets: a ROUTER for clients (submit, cancel, pause, resume,
    status, jobs, history, runners, drain), a ROUTER for runners (hello,
    credit, events, heartbeat) and an XPUB that publishes every stored
    event under "ev.<job>.<type>" and runner states under "rn.<runner>".

    The broker's store (store/ library, its own directory) holds the
    durable queue (key-value table: a submitted job is committed before
    `accepted` is answered, and its assignment to a runner before the
    `dispatch` is sent) and the archive of every runner's events, keyed by
    (runner, seq) so a resend is stored once.  A job leaves the queue only
    when the broker holds its job.accepted.  One thread, one loop.
*/
#ifndef EVR_BROKER_H_INCLUDED
#define EVR_BROKER_H_INCLUDED

#include "evr_common.h"
#include "evr_prune.h"

typedef struct evr_broker evr_broker_t;

typedef struct {
    const char *store_dir;      /* the broker's LMDB directory */
    const char *client_ep;      /* ROUTER for clients */
    const char *runner_ep;      /* ROUTER for runners */
    const char *pub_ep;         /* XPUB for subscribers */
    uint32_t heartbeat_ms;      /* heartbeat interval (default 1000) */
    uint32_t lease_ms;          /* a runner silent this long is lost (default 5000) */
    uint32_t queue_limit;       /* waiting jobs per pipeline when the spec sets none
                                   (default 1000) */
    uint32_t reclaim_ms;        /* a runner lost this long loses its jobs: running
                                   ones end lost, dispatched ones wait again
                                   (0: never) */
    uint32_t forget_ms;         /* a runner lost this long, holding no job, is
                                   forgotten (0: only when room is needed) */
    const char *curve_dir;      /* keys for tcp:// endpoints (evr_zap.h) */
    bool nosync;                /* no fsync (tests and benchmarks only) */
    const char *artifacts_dir;  /* artifacts received (default STORE_DIR/artifacts) */
    uint64_t artifact_job_max_bytes;   /* a job's artifacts at most (default 4 GiB) */
    const char *pipelines_dir;  /* registered pipelines (made 0700 when missing); NULL: none */
    evr_prune_policy_t retention;      /* ages and count (kv_prefixes, busy: the broker's) */
    uint32_t retention_interval_ms;    /* between retention passes (default 60000) */
} evr_broker_opts_t;

#define EVR_BROKER_ARTIFACT_JOB_MAX_DEFAULT 4294967296ull

/*  Opens the store, takes up the queue it holds and binds the sockets.
    EVR_ERR_STORE, or EVR_ERR_CONFIG / EVR_ERR_IO naming the endpoint that
    cannot be bound. */
evr_rc_t evr_broker_new(const evr_broker_opts_t *opts, evr_broker_t **out, evr_err_t *err);
void evr_broker_destroy(evr_broker_t **self_p);

/*  Waits at most timeout_ms for messages, handles every message waiting,
    dispatches what it can and keeps the heartbeats. */
void evr_broker_turn(evr_broker_t *self, int timeout_ms);

/*  Reads the pipelines directory again (SIGHUP), in the next turns. */
void evr_broker_reload(evr_broker_t *self);

/*  A store failure stops the broker: then this returns it. */
evr_rc_t evr_broker_failure(const evr_broker_t *self, const char **msg);

#endif
