/*  evr_rebuild.h: job state rebuilt from the `events` database alone, and
    the check of the stored projections against it.

    evr_rebuild_new() folds every event (up to a seq, for "as of" views)
    through evr_job_apply(); an illegal event is reported and skipped,
    exactly as the live writer would have refused it.  evr_rebuild_verify()
    rebuilds everything and compares each stored projection in `jobs`
    with its rebuild, field by field: any difference is a bug; it also
    decodes every event whole and checks the by_job index against the
    events, after checking the pages of each database.
*/
#ifndef EVR_REBUILD_H_INCLUDED
#define EVR_REBUILD_H_INCLUDED

#include "evr_store.h"

typedef struct evr_rebuild evr_rebuild_t;

/*  Receives one line per problem found (illegal event, difference). */
typedef void (evr_rebuild_report_fn)(const char *line, void *arg);

/*  Rebuilds every job from the events with seq <= upto (0: all).  report
    may be NULL.  Caller owns *out. */
evr_rc_t evr_rebuild_new(evr_store_t *store, uint64_t upto, evr_rebuild_report_fn *report,
                         void *arg, evr_rebuild_t **out, evr_err_t *err);
void evr_rebuild_destroy(evr_rebuild_t **self_p);

/*  Events read, job events applied, and events refused as illegal. */
uint64_t evr_rebuild_events(const evr_rebuild_t *self);
uint64_t evr_rebuild_illegal(const evr_rebuild_t *self);

/*  Rebuilt jobs, in id (creation) order; and one by id (NULL if none). */
size_t evr_rebuild_count(const evr_rebuild_t *self);
const evr_job_t *evr_rebuild_at(const evr_rebuild_t *self, size_t i);
const evr_job_t *evr_rebuild_job(const evr_rebuild_t *self, const char *id);

typedef struct {
    uint64_t events;        /* events read */
    uint64_t jobs;          /* projections compared */
    uint64_t compacted;     /* projections kept as summaries (not comparable) */
    uint64_t pruned;        /* jobs retention removed, all their records (evr_prune.h) */
    uint64_t changed;       /* jobs a live writer advanced during the check, or
                               retention removed after their events were read:
                               skipped */
    uint64_t differences;   /* problems reported */
} evr_rebuild_verify_t;

/*  Rebuilds every job from the events up to the last seq at the start and
    compares with the stored projections; also checks that seqs are dense
    (unless retention compacted jobs), or when retention removed jobs that
    the events read and the events it removed add up to the last seq.  Reads run in short transactions, so
    a live writer may advance a job meanwhile: such jobs (stored last seq
    beyond the start) are counted as changed, not compared, and so are
    jobs retention removed while the check ran (then the log's count of
    events and its gaps are not checked either).  First the
    pages of each database are checked (evr_store_check_db): a damaged
    one is reported and nothing is read (LMDB would crash on it).  Every
    event is decoded whole (a spec's every value: EVR_EVENTREAD_CHECK), and
    each compared job's by_job entries must point to exactly its events.
    Each problem is reported; out counts them.  Errors: the store's (an
    event that does not decode: "store: event N does not decode: ..."). */
evr_rc_t evr_rebuild_verify(evr_store_t *store, evr_rebuild_report_fn *report, void *arg,
                            evr_rebuild_verify_t *out, evr_err_t *err);

#endif
