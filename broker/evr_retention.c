/*  evr_retention.c: the broker's retention (README "Retention").

    A timer of the broker's loop: every retention_interval it removes one
    batch (at most S_BATCH jobs, one write transaction) of the finished
    jobs the policy lets go, with their queue and lease records and their
    artifacts; while jobs are left it takes the next batch on the next
    turn, so a long backlog goes in small steps between the messages the
    loop serves.  A client's `prune` runs the same batches at once (at
    most S_REQUEST_BATCHES, answered with `more` when jobs are left) or,
    with dry_run, counts them.  Jobs the broker still holds (queued,
    dispatched, running) are never touched.  What was removed leaves one
    trace, the highest id removed (pruned_upto): a request about an
    unknown id at or below it is answered that retention may have removed
    it, and a submit of such an id is refused, not run a second time.
*/
#define _XOPEN_SOURCE 700   /* nftw */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_broker_int.h"

#define S_BATCH 200             /* jobs a batch removes at most */
#define S_REQUEST_BATCHES 50    /* batches a `prune` request runs at most */
#define S_AGAIN_MS 20           /* the next batch of a backlog, after a turn */

/*  The kv records of a job (evr_queue.c, evr_lease.c, evr_policy.c): PREFIX JOB[/…]. */
static const char *const s_kv_prefixes[] = { "q/", "c/", EVR_QUEUE_KEPT, "lost/", "retry/", "requeued/",
                                             EVR_KV_KIDS, EVR_KV_DEPTH, "interrupt/", NULL };

/*  Jobs the broker still holds: in its queue (queued, dispatched,
    running), or taken from a lost runner that may still send events of
    it (evr_lease.c drops those while the record lasts). */
static bool
s_busy(const char *job, void *arg)
{
    return evr_queue_find(arg, job) != NULL || evr_lease_holds(arg, job);
}

static int
s_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/*  A removed job's artifacts (STATE/broker/artifacts/JOB). */
static void
s_removed(const char *job, void *arg)
{
    evr_broker_t *b = arg;
    char *dir = evr_asprintf("%s/%s", b->artifacts_dir, job);
    if (access(dir, F_OK) == 0 && nftw(dir, s_rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        evr_broker_warn(b, "retention: removing %s failed", dir);
    free(dir);
}

/*  One batch; false on error.  A failed write is a store failure (the
    broker stops serving writes); a dry run wrote nothing, so its failure
    is only answered. */
static bool
s_batch(evr_broker_t *b, bool dry_run, evr_prune_stats_t *st, bool *more, evr_err_t *err)
{
    evr_prune_policy_t pol = b->opts.retention;
    pol.kv_prefixes = s_kv_prefixes;
    pol.busy = s_busy;
    pol.busy_arg = b;
    evr_rc_t rc = evr_store_prune(b->store, &pol, evr_now_ns(), S_BATCH, dry_run, s_removed, b,
                                  st, more, err);
    if (!dry_run)
        b->pruned_read = false;     /* its counts and pruned_upto may have moved */
    if (rc && !dry_run)
        evr_broker_fail(b, err);
    return rc == EVR_OK;
}

void
evr_retention_tick(evr_broker_t *b)
{
    if (!evr_prune_enabled(&b->opts.retention) || b->failure)
        return;
    uint64_t now = evr_mono_ns();
    if (!b->next_prune)
        b->next_prune = now + (uint64_t) S_AGAIN_MS * 1000000;   /* soon after the start */
    if (now < b->next_prune)
        return;
    evr_prune_stats_t st = { 0 };
    bool more = false;
    evr_err_t err;
    if (!s_batch(b, false, &st, &more, &err))
        return;
    if (st.jobs || st.outputs)
        evr_broker_info(b, "retention: removed %llu finished jobs (%llu events, %llu bytes), "
                        "dropped the output of %llu%s", (unsigned long long) st.jobs,
                        (unsigned long long) st.events, (unsigned long long) st.bytes,
                        (unsigned long long) st.outputs, more ? "; more to go" : "");
    uint64_t wait_ms = more ? S_AGAIN_MS : b->opts.retention_interval_ms;
    b->next_prune = now + wait_ms * 1000000;
}

void
evr_retention_request(evr_broker_t *b, zframe_t *rid, const evr_msg_t *req)
{
    evr_msg_t m = { .type = EVR_MSG_PRUNED, .dry_run = req->dry_run };
    evr_prune_stats_t st = { 0 };
    evr_err_t err;
    if (!evr_prune_enabled(&b->opts.retention)) {
        evr_bus_send_error(b->clients, rid, EVR_CODE_CONFLICT, "retention is off: set "
                           "retention.max_age, retention.keep_per_pipeline or "
                           "retention.output_max_age in the broker's settings");
        return;
    }
    bool more = true;
    for (int i = 0; more && i < (req->dry_run ? 1 : S_REQUEST_BATCHES); i++)
        if (!s_batch(b, req->dry_run, &st, &more, &err)) {
            evr_bus_send_error(b->clients, rid, EVR_CODE_INTERNAL, "%s", err.msg);
            return;
        }
    m.pr_jobs = st.jobs;
    m.pr_outputs = st.outputs;
    m.pr_events = st.events;
    m.pr_records = st.records;
    m.pr_bytes = st.bytes;
    m.more = more;
    evr_broker_info(b, "prune%s asked: %llu jobs, %llu outputs, %llu events, %llu bytes",
                    req->dry_run ? " --dry-run" : "", (unsigned long long) st.jobs,
                    (unsigned long long) st.outputs, (unsigned long long) st.events,
                    (unsigned long long) st.bytes);
    evr_bus_send(b->clients, rid, &m, NULL);
}

/*  What the store says retention removed, read once after each batch;
    NULL when it did not answer (nothing removed, as far as is known). */
static const evr_prune_meta_t *
s_pruned(evr_broker_t *b)
{
    evr_err_t err;
    if (!b->pruned_read) {
        if (evr_store_pruned(b->store, &b->pruned, &err) != EVR_OK)
            return NULL;
        b->pruned_read = true;
    }
    return &b->pruned;
}

/*  Whether retention may have removed job: at or below pruned_upto. */
static const evr_prune_meta_t *
s_maybe_removed(evr_broker_t *b, const char *job)
{
    const evr_prune_meta_t *pm = s_pruned(b);
    return pm && pm->upto[0] && strcmp(job, pm->upto) <= 0 ? pm : NULL;
}

void
evr_retention_no_job(evr_broker_t *b, zframe_t *rid, const char *job)
{
    const evr_prune_meta_t *pm = s_maybe_removed(b, job);
    if (pm)
        evr_bus_send_error(b->clients, rid, EVR_CODE_NOT_FOUND, "no job %s: removed by "
                           "retention, or never known (the broker has removed %llu finished "
                           "jobs, up to %s; see its retention settings)", job,
                           (unsigned long long) pm->jobs, pm->upto);
    else
        evr_bus_send_error(b->clients, rid, EVR_CODE_NOT_FOUND, "no job %s", job);
}

bool
evr_retention_refuses(evr_broker_t *b, const char *req, const char *job, char *why, size_t len)
{
    const evr_prune_meta_t *pm = s_maybe_removed(b, job);
    if (pm)
        snprintf(why, len, "%s.job: job %s may have run already and been removed by retention "
                 "(the broker has removed %llu finished jobs, up to %s): not queued again, "
                 "so that it does not run twice; a new job needs a new id", req, job,
                 (unsigned long long) pm->jobs, pm->upto);
    return pm != NULL;
}
