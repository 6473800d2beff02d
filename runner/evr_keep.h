/*  evr_keep.h: retention of a runner's own store (README "Retention").

    A timer on the engine's loop: a second after the start (once the
    broker has welcomed the runner), then every interval, one batch (at most 200
    finished jobs, one write transaction) of what the policy lets go, the
    next batch a moment later while jobs are left, so a backlog never
    holds the loop.  Only jobs whose events the broker has acknowledged
    are removed (the daemon's acknowledged seq; it is also kept in the
    store's meta as broker_acked for `evrun-runner --prune`), so the log
    the runner still has to send never has a hole.  Artifact directories
    (STATE/artifacts/JOB) of removed jobs go once nothing waits in the
    ship queue: which ones is decided on the loop, by a scan that looks
    at 200 directories a turn (a store lookup each), then they are
    removed in a child process (evr_offload.h), not on the loop.
*/
#ifndef EVR_KEEP_H_INCLUDED
#define EVR_KEEP_H_INCLUDED

#include "evr_config.h"
#include "evr_loop.h"
#include "evr_prune.h"

/*  The settings retention_max_age, retention_keep_per_pipeline,
    retention_output_max_age and retention_interval of cfg into pol and
    *interval_ms.  EVR_ERR_CONFIG naming the key, its value and source. */
evr_rc_t evr_keep_settings(const evr_config_t *cfg, evr_prune_policy_t *pol,
                           uint32_t *interval_ms, evr_err_t *err);

typedef struct evr_keep evr_keep_t;

/*  The seq up to which the broker holds the log (0: nothing yet). */
typedef uint64_t (evr_keep_acked_fn)(void *arg);

/*  Starts the timer on loop (nothing is done when the policy is off).
    state_dir: the runner's (artifacts/ and ship/ under it).  Caller owns
    the result. */
evr_keep_t *evr_keep_new(evr_loop_t *loop, evr_store_t *store, const evr_prune_policy_t *pol,
                         uint32_t interval_ms, const char *state_dir, evr_keep_acked_fn *acked,
                         void *arg);
void evr_keep_destroy(evr_keep_t **self_p);

/*  One pass to the end (offline: `evrun-runner --prune`), guarded by the
    store's broker_acked when it has one.  Adds to *st.  Errors: the
    store's. */
evr_rc_t evr_keep_run(evr_store_t *store, const evr_prune_policy_t *pol, const char *state_dir,
                      bool dry_run, evr_prune_stats_t *st, evr_err_t *err);

#endif
