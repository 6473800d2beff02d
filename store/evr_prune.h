/*  evr_prune.h: retention of a store: finished jobs removed by age and by
    count per pipeline, output of older ones dropped (README "Retention").

    A prune removes all of a job's records in one write transaction with
    the others of its batch: its events, its by_job index, its projection
    and the key-value records named by the caller's prefixes (the
    broker's "q/JOB", "lost/JOB/RUNNER"...).  Running, queued and paused
    jobs are never touched.  What was removed is counted in `meta`
    (pruned_jobs, pruned_events, pruned_upto: the highest job id removed),
    so that `evrun-replay --verify` knows the log's gaps are retention's
    (events + pruned_events = last seq) and a status asked of a removed
    job can say so.  Dropping output empties the bytes of a job's
    step.output events (offsets and counts stay, so a rebuild matches) and
    marks its projection output_dropped.
*/
#ifndef EVR_PRUNE_H_INCLUDED
#define EVR_PRUNE_H_INCLUDED

#include "evr_store.h"

typedef struct {
    uint64_t max_age_ms;            /* finished longer ago: removed (0: off) */
    uint32_t keep_per_pipeline;     /* finished jobs kept per pipeline, newest (0: off) */
    uint64_t output_max_age_ms;     /* finished longer ago: output dropped (0: off) */
    uint64_t upto_seq;              /* only jobs whose last event is at or below (0: any) */
    const char *const *kv_prefixes; /* NULL-terminated; kv keys PREFIX JOB and PREFIX JOB/… */
    bool (*busy)(const char *job, void *arg);   /* NULL, or true: the caller still holds
                                                   the job (kept, not counted) */
    void *busy_arg;
} evr_prune_policy_t;

typedef struct {
    uint64_t jobs;      /* jobs removed */
    uint64_t outputs;   /* jobs whose output was dropped */
    uint64_t events;    /* events removed */
    uint64_t records;   /* other records removed: projections, index and kv entries */
    uint64_t bytes;     /* bytes of values removed or emptied */
} evr_prune_stats_t;

/*  True when the policy removes or drops anything at all. */
bool evr_prune_enabled(const evr_prune_policy_t *pol);

/*  Called after the commit with the id of each job removed (not for a
    dry run), so the caller removes its files (artifacts). */
typedef void (evr_prune_removed_fn)(const char *job, void *arg);

/*  One batch of a pass: picks the finished jobs the policy removes
    (oldest first) and those whose output it drops, at most max_jobs of
    them (1..10000) and, past the first, at most 50,000 of their events,
    and removes them in one write transaction.  The first call of a pass
    walks every projection and keeps what it decided in self; while *more
    says jobs are left, the next call with the same max_age_ms,
    keep_per_pipeline and output_max_age_ms (and a now_ns not earlier)
    takes its next batch from there, each job checked again in the batch's
    transaction (its projection still stored, final, with the last seq
    the walk saw; upto_seq and busy asked again): one that changed, and
    one that finished after the walk, wait for the next pass, which
    begins when a call finds none left (or another policy, or an error).
    A pass that left nothing undone is followed by passes that read no
    projection and do nothing while nothing could give them work (no
    append stored a finished job, no kept job's age reached, no job kept
    for busy or upto_seq let go: evr_prune.c's quiet watch).
    With dry_run nothing is
    written (each batch's transaction is aborted) and every job the policy
    would touch is counted, not only max_jobs.  now_ns is the time the ages
    count from.  Adds to *st; *more says jobs are left for another batch.
    Errors: EVR_ERR_STORE (LMDB's, a read-only store, a projection that does
    not decode), nothing written then. */
evr_rc_t evr_store_prune(evr_store_t *self, const evr_prune_policy_t *pol, uint64_t now_ns,
                         uint32_t max_jobs, bool dry_run, evr_prune_removed_fn *removed,
                         void *arg, evr_prune_stats_t *st, bool *more, evr_err_t *err);

/*  What `meta` says of earlier prunes (zeros when none). */
typedef struct {
    uint64_t jobs, events;
    char upto[EVR_ULID_LEN + 1];    /* highest job id removed; "" when none */
} evr_prune_meta_t;
evr_rc_t evr_store_pruned(evr_store_t *self, evr_prune_meta_t *out, evr_err_t *err);

/*  The highest page in use in the store's file (mdb_env_info's
    me_last_pgno) and the page size: LMDB reuses freed pages, so under a
    steady load with retention this stays bounded. */
evr_rc_t evr_store_pages(evr_store_t *self, uint64_t *last_pgno, uint32_t *psize,
                         evr_err_t *err);

/*  A compacted copy of the store into out_dir (made 0700 when missing; it
    must hold no data.mdb): LMDB's mdb_env_copy2 with MDB_CP_COMPACT, one
    read transaction's snapshot (a live writer goes on; what it commits
    later is not in the copy), the free pages left out and the pages
    renumbered, so the copy's file is as large as the pages in use.
    Retention frees pages but never shrinks the file: this is how the
    space comes back (the copy put in place of DIR/data.mdb while no
    process uses the store).  *bytes gets the copy's size.  Errors:
    EVR_ERR_STORE naming out_dir (it cannot be made, already holds a
    data.mdb), a damaged page of the store (evr_store_check_pages: no
    copy made, out_dir not made) or LMDB's text (a full disk); a partial
    copy is removed. */
evr_rc_t evr_store_compact_copy(evr_store_t *self, const char *out_dir, uint64_t *bytes,
                                evr_err_t *err);

#endif
