/*  evr_store.h: the LMDB event log of one process (DESIGN §5).

    One environment per state directory, six databases:
      events   u64 big-endian seq -> msgpack event
      by_job   job id (26 bytes) + u32 big-endian per-job seq -> u64 seq
      jobs     job id -> msgpack projection (evr_job_t)
      meta     "format" -> format string, "last_seq" -> u64, other ids
      open     job id -> nothing, for every job not finished (recovery's index)
      kv       key -> bytes, for a process's other durable state (the
               broker's queue); see evr_archive.c
    An append of a batch is one write transaction (group commit): the
    store gives each event the next runner seq and the next per-job seq,
    applies it to the job's projection with evr_job_apply(), and writes
    event, index and projection together.  Either the whole batch is in the
    log or none of it is.  A full map is grown and the batch retried; any
    other failure (disk full, I/O error) returns an error and leaves the log
    as it was.

    Readers (evrun-replay on a live runner's directory) open with
    EVR_STORE_RDONLY; every read runs in short read transactions and
    answers MDB_MAP_RESIZED by adopting the new size.
*/
#ifndef EVR_STORE_H_INCLUDED
#define EVR_STORE_H_INCLUDED

#include "evr_event.h"
#include "evr_job.h"

#define EVR_STORE_FORMAT "evrun-store 1"

typedef struct evr_store evr_store_t;

typedef enum {
    EVR_STORE_SYNC = 0,         /* fsync per commit (default) */
    EVR_STORE_NOSYNC = 1 << 0,  /* no fsync: benchmarks and tests only */
    EVR_STORE_RDONLY = 1 << 1,  /* read-only, alongside a live writer */
    EVR_STORE_BROKER = 1 << 2,  /* a writer: the store is a broker's ... */
    EVR_STORE_RUNNER = 1 << 3,  /* ... or a runner's (meta "kind") */
    EVR_STORE_NOMARK = 1 << 4,  /* a writer whose open writes nothing (a dry run) */
} evr_store_flags_t;

/*  Opens the store in dir.  A writer creates dir (mode 0700) and the
    databases when missing; a reader requires them.  A writer that says
    its kind (EVR_STORE_BROKER, EVR_STORE_RUNNER) records it in meta
    "kind" when the store has none (a new store, or one written before
    the kind was kept, unless it bears the other kind's mark: a broker's
    kv "journal/submits", a runner's meta "runner_id"), and refuses a
    store of the other kind.  With EVR_STORE_NOMARK the open writes
    nothing: no kind recorded, no database made, and a directory without
    a store (or with nothing committed) refused as a reader refuses it.
    Errors: EVR_ERR_STORE for a missing
    directory, a directory that is not an evrun store (foreign LMDB or
    other files: an environment with databases but no format record is
    never written to), a store of the other kind, a format version this
    build does not read, or an LMDB failure (the message keeps LMDB's
    text; one opening the environment names the directory). */
evr_rc_t evr_store_open(const char *dir, int flags, evr_store_t **out, evr_err_t *err);
void evr_store_destroy(evr_store_t **self_p);

/*  Checks the pages of the databases dbs (NULL-terminated names of
    `events`, `by_job`, `jobs`, `open`, `meta`, `kv`; NULL: all six) as
    evrun-replay --verify does, and LMDB's own trees (the main one; the
    free pages too for a writer's store or dbs NULL), so that the reads that follow never
    crash on a damaged page (LMDB trusts its pages: one of random bytes
    is a SIGSEGV inside it).  Errors: EVR_ERR_STORE, for a damaged page
    "store: DIR: DB: page N: WHAT: the database is damaged (LMDB would
    read past its pages); DOING (evrun-replay DIR --verify checks every
    database; restore the store from a backup, or move the directory
    aside to start anew)", doing saying what is not done ("not read"). */
evr_rc_t evr_store_check_pages(evr_store_t *self, const char *const *dbs, const char *doing,
                               evr_err_t *err);

/*  The directory given to evr_store_open. */
const char *evr_store_dir(const evr_store_t *self);

/*  Appends events[0..n) in one transaction.  For each event the store sets
    seq (next runner seq), jseq (next per-job seq; 0 for runner events) and
    time (now, when 0), fits its strings (evr_event_fit: valid UTF-8 within
    their limits, so the log always reads back), and applies it to its job.  An illegal transition
    refuses the whole batch with EVR_ERR_STATE (err names job, event and
    state); nothing is written then.  n may be at most EVR_STORE_MAX_BATCH. */
#define EVR_STORE_MAX_BATCH 4096
evr_rc_t evr_store_append(evr_store_t *self, evr_event_t *const *events, size_t n,
                          evr_err_t *err);

/*  Archive mode (the broker): stores events that another log (source, a
    runner id) already numbered.  Events whose seq is at or below the
    highest seq stored from source are resends: skipped, their seq set to
    0.  The others must continue that seq densely (else EVR_ERR_STATE) and
    keep their per-job seq, which evr_job_apply_sent checks; each gets the
    next seq of this log in place of the source's, and a job.accepted
    naming no runner gets source as its runner.  The source's highest seq is
    committed in the same transaction, so a resend after a crash on either
    side is stored once.  drop (NULL: none) marks events that are counted
    in the source's seq but not stored (the broker's events of a job it
    took from a lost runner); they too come back with seq 0.  Nothing is
    written on error.  refused (NULL: not wanted) is set to the index of
    the event refused for what it says, with EVR_ERR_STATE:
    evr_job_apply_sent refuses it, its job runs on another runner than source (the runner its
    job.accepted or job.started named) or it names another runner, or a
    runner event (no job) is not runner.* or carries a per-job seq; else (a gap, a store failure, the batch limit, success)
    to n.  A dropped event is never refused (only a gap is checked). */
evr_rc_t evr_store_ingest(evr_store_t *self, const char *source, evr_event_t *const *events,
                          const bool *drop, size_t n, size_t *refused, evr_err_t *err);

/*  Highest seq stored from source by evr_store_ingest (0: none). */
evr_rc_t evr_store_source_seq(evr_store_t *self, const char *source, uint64_t *seq,
                              evr_err_t *err);

/*  The key-value table `kv` (the broker's durable queue): writes of a
    batch are one transaction (val NULL deletes the key; deleting a
    missing key is not an error).  Keys are 1..255 bytes. */
typedef struct {
    const char *key;
    const void *val;
    size_t len;
} evr_store_kv_t;
evr_rc_t evr_store_kv_write(evr_store_t *self, const evr_store_kv_t *ops, size_t n,
                            evr_err_t *err);
/*  The same, but the commit does not flush LMDB's meta page (MDB_NOMETASYNC,
    which keeps the database consistent): the batch is visible at once and
    survives a crash of the process, and it is on disk (survives a crash of
    the machine) once a later commit of any write has flushed (its data
    flush takes the meta page along) or evr_store_sync has run.  So a group
    commit takes one flush a batch instead of two. */
evr_rc_t evr_store_kv_write_lazy(evr_store_t *self, const evr_store_kv_t *ops, size_t n,
                                 evr_err_t *err);
/*  Flushes every commit to disk (fdatasync); nothing to do when no lazy
    commit waits for its flush, or on a store opened with
    EVR_STORE_NOSYNC. */
evr_rc_t evr_store_sync(evr_store_t *self, evr_err_t *err);
/*  The value under exactly key into buf (at most size - 1 bytes, then a
    NUL): EVR_OK, or EVR_ERR_NOTFOUND when there is none. */
evr_rc_t evr_store_kv_get(evr_store_t *self, const char *key, char *buf, size_t size,
                          evr_err_t *err);
/*  Every entry whose key starts with prefix, in key order; fn returns
    non-zero to stop. */
typedef int (evr_store_kv_fn)(const char *key, const uint8_t *val, size_t len, void *arg);
evr_rc_t evr_store_kv_scan(evr_store_t *self, const char *prefix, evr_store_kv_fn *fn,
                           void *arg, evr_err_t *err);

/*  Highest seq ever assigned (0 for an empty log). */
evr_rc_t evr_store_last_seq(evr_store_t *self, uint64_t *seq, evr_err_t *err);

/*  Callbacks of the readers return 0 to go on, non-zero to stop early. */
typedef int (evr_store_event_fn)(const evr_event_t *ev, void *arg);
typedef int (evr_store_job_fn)(const evr_job_t *job, void *arg);
typedef int (evr_store_output_fn)(const char *step, uint32_t attempt, const char *stream,
                                  const uint8_t *bytes, size_t len, void *arg);

/*  Events with from <= seq <= to (to 0: to the end), in seq order. */
evr_rc_t evr_store_scan(evr_store_t *self, uint64_t from, uint64_t to, evr_store_event_fn *fn,
                        void *arg, evr_err_t *err);

/*  As evr_store_scan, for replay: each event decoded by an
    evr_eventread_t (what: EVR_EVENTREAD_* flags) into one reused event
    that holds what evr_job_apply() reads, without copying: its output
    bytes only with EVR_EVENTREAD_BYTES, of a job.accepted's spec only the
    step names (evr_eventread.h).  Valid during the call only.  The same
    errors as evr_store_scan. */
evr_rc_t evr_store_replay(evr_store_t *self, uint64_t from, uint64_t to, unsigned what,
                          evr_store_event_fn *fn, void *arg, evr_err_t *err);

/*  Events of one job with jseq >= from_jseq, in order.  EVR_ERR_NOTFOUND
    when the log knows no such job. */
evr_rc_t evr_store_job_events(evr_store_t *self, const char *job, uint32_t from_jseq,
                              evr_store_event_fn *fn, void *arg, evr_err_t *err);

/*  The spec and bound args of a job, from its job.accepted (the caller
    frees *spec with evr_spec_destroy and args with evr_strmap_free; args
    zeroed by the caller).  EVR_ERR_NOTFOUND when the log knows no such job
    or its first event carries no spec. */
evr_rc_t evr_store_job_spec(evr_store_t *self, const char *job, evr_spec_t **spec,
                            evr_strmap_t *args, evr_err_t *err);

/*  The projected state of one job into out (zeroed by the caller; free
    with evr_rec_free(&evr_job_type, out)).  EVR_ERR_NOTFOUND if unknown. */
evr_rc_t evr_store_get_job(evr_store_t *self, const char *job, evr_job_t *out, evr_err_t *err);

/*  Whether the store has a projection of job (a key lookup, nothing
    decoded: the broker's check of a submit's job id).  EVR_OK with *has,
    or the LMDB error. */
evr_rc_t evr_store_has_job(evr_store_t *self, const char *job, bool *has, evr_err_t *err);

/*  All projected jobs in id order (which is creation order), optionally
    only those with the given status (EVR_JOB_NONE: all). */
evr_rc_t evr_store_jobs(evr_store_t *self, evr_job_status_t status, evr_store_job_fn *fn,
                        void *arg, evr_err_t *err);

/*  A page of jobs, newest first (id descending: ids sort by creation):
    those with an id below before (NULL: from the newest), the given
    status (EVR_JOB_NONE: any) and pipeline (NULL: any), at most limit of
    them (0: none).  fn gets each id and status; non-zero stops.  Reads of
    each projection it passes over only its status and pipeline, so a page
    costs the jobs it passes over, not the whole history.  Errors:
    EVR_ERR_PROTO for a before that is not a job id; EVR_ERR_STORE for
    LMDB's, or a projection that does not decode (naming the job). */
typedef int (evr_store_list_fn)(const char *id, evr_job_status_t status, void *arg);
evr_rc_t evr_store_list(evr_store_t *self, evr_job_status_t status, const char *pipeline,
                        const char *before, uint32_t limit, evr_store_list_fn *fn, void *arg,
                        evr_err_t *err);

/*  The jobs not finished (queued, running, paused), from an index kept in
    the same transactions as the projections: reads only those, however
    long the history. */
evr_rc_t evr_store_open_jobs(evr_store_t *self, evr_store_job_fn *fn, void *arg, evr_err_t *err);

/*  The ids of those jobs, in id order: *ids a new array of *n (caller
    frees; NULL when none). */
evr_rc_t evr_store_open_ids(evr_store_t *self, char (**ids)[EVR_ULID_LEN + 1], size_t *n,
                            evr_err_t *err);

/*  A job's stored (masked) output in order, one call per chunk; step NULL
    for every step. */
evr_rc_t evr_store_output(evr_store_t *self, const char *job, const char *step,
                          evr_store_output_fn *fn, void *arg, evr_err_t *err);

/*  Retention is evr_store_prune (evr_prune.h): jobs removed whole, by
    age and by count per pipeline, and output bytes dropped, in bounded
    batches. */

/*  Small named values in `meta` (runner id, acknowledged seq...).  get
    returns EVR_ERR_NOTFOUND when absent; *val is the caller's to free. */
evr_rc_t evr_store_meta_get(evr_store_t *self, const char *key, char **val, evr_err_t *err);
evr_rc_t evr_store_meta_set(evr_store_t *self, const char *key, const char *val, evr_err_t *err);

/*  Current size of the memory map in bytes (it grows on demand). */
size_t evr_store_mapsize(const evr_store_t *self);

#endif
