/*  evr_broker_int.h: the broker's private parts, shared by evr_broker.c
    (sockets, loop, client requests), evr_queue.c (the durable queue:
    evr_queue_*; its dispatch in evr_qdispatch.c), evr_qindex.c (the queue's lists and counts in
    memory), evr_policy.c (a pipeline's queue policy at
    submit: evr_policy_*), evr_runners.c (runner sessions and event
    ingestion: evr_runners_*) and evr_lease.c (the jobs of runners that do
    not come back: evr_lease_*).
*/
#ifndef EVR_BROKER_INT_H_INCLUDED
#define EVR_BROKER_INT_H_INCLUDED

#include "evr_broker.h"
#include "evr_bus.h"
#include "evr_journal.h"
#include "evr_log.h"
#include "evr_store.h"
#include "evr_zap.h"

/*  Runner ids the broker keeps at most: past it a hello with a new id
    makes the broker forget a runner that is neither connected nor holding
    a job, and is refused when there is none. */
#define EVR_BROKER_MAX_RUNNERS 1024
/*  Jobs not yet running (all pipelines) the queue holds at most. */
#define EVR_BROKER_MAX_QUEUED 100000

/*  The runners a waiting job's dispatches are remembered for (older ones
    are forgotten: their job.accepted is refused, which is safe). */
#define EVR_QUEUE_SENT_MAX 4

typedef enum {
    B_QUEUED,       /* waiting for a runner */
    B_HELD,         /* paused while waiting */
    B_DISPATCHED,   /* sent to a runner, job.accepted not stored yet */
    B_ACTIVE,       /* accepted by its runner, not finished */
} evr_queue_state_t;

/*  A pause or resume the broker sent to a running job's runner whose
    job.paused or job.resumed has not come yet (evr_control.c). */
typedef enum {
    EVR_CONTROL_NONE = 0,
    EVR_CONTROL_PAUSE,
    EVR_CONTROL_RESUME,
} evr_control_asked_t;

typedef struct evr_queue_job {
    /* first, together: what a dispatch pass reads of each job it passes over */
    struct evr_queue_job *next, *prev;     /* the queue (b->jobs), in order (evr_qindex.c) */
    struct evr_queue_pipe *pipe;    /* its pipeline's jobs; NULL: not in the queue */
    uint64_t not_before;    /* ns since the epoch: created + start_delay; 0: none */
    evr_queue_state_t state;
    bool common;            /* its labels are its pipeline's common ones (pipe->labels) */
    char id[EVR_ULID_LEN + 1];
    char *pipeline;
    char *runner;           /* dispatched to / running on */
    uint64_t created;       /* ns since the epoch */
    char *partition;        /* partitioned_replace: its partition_by value; else NULL */
    bool partition_read;    /* partition known (from its submit, or its job.accepted) */
    bool interrupted;       /* cancelled by a newer submit (queue.interrupt) */
    bool demand_done;       /* dispatched once already: it met demand then, or none
                               (evr_demand.c); a retry meets none */
    /* its submit message's body as recorded (msgpack: spec, bound args,
       labels, sources; decoded again by evr_queue_submit_of when needed, so
       a queued job holds its ~300 bytes, not the decoded spec's ~1.6 KB);
       NULL once active */
    uint8_t *body;
    size_t blen;
    uint32_t concurrency;   /* its spec's (0: none), read by every dispatch pass */
    bool kept;              /* active, its submit kept as "s/<job>" (a step retries on
                               lost: evr_queue_kept_submit) until it ends */
    evr_strlist_t labels;   /* the spec's, the submit's, its executor's */
    bool cancel_pending;    /* cancel asked while dispatched (or, interrupted, while
                               its runner was away: sent when it is back) */
    char *cancel_reason;
    bool cancel_force;      /* a second cancel asked while dispatched: sent with force */
    bool cancel_sent;       /* a cancel went to its runner (its job.cancel_requested may
                               not be in the archive yet): the next one is a second */
    /* its other places in the queue's lists (evr_qindex.c), while it is in the queue */
    struct evr_queue_job *pnext, *pprev;   /* its pipeline's jobs (pipe) */
    struct evr_queue_job *tnext, *tprev;   /* its partition's jobs (part) */
    struct evr_queue_job *rnext, *rprev;   /* its runner's jobs (evr_queue_of_runner) */
    struct evr_queue_part *part;    /* its partition's, when it came with one; else NULL */
    uint64_t order;         /* its place in the queue: smaller is nearer the head */
    bool rlinked;           /* in its runner's list: in jobs, runner set */
    bool planned;           /* in the plan evr_policy_admit is making */
    evr_control_asked_t asked;  /* active: a pause or resume sent, not confirmed yet */
    uint64_t asked_at;      /* mono ns it was sent */
    /* the runners it was sent to while waiting (newest first; NULL: none),
       whose job.accepted may come after it waits again (evr_queue_was_sent) */
    char *sent[EVR_QUEUE_SENT_MAX];
} evr_queue_job_t;

/*  The jobs of one partition (partition_by value) of a pipeline that came
    with it (their submit said it), in queue order. */
typedef struct evr_queue_part {
    evr_queue_job_t *head, *tail;   /* tnext */
} evr_queue_part_t;

/*  A pipeline's jobs in the queue, in queue order, and their counts by
    state: kept by evr_qindex.c as jobs join and leave the queue and change
    state (evr_queue_set_state) or are interrupted (evr_queue_set_interrupted),
    so that a submit, a cancel or a dispatch pass need not walk the whole
    queue. */
typedef struct evr_queue_pipe {
    evr_queue_job_t *head, *tail;   /* pnext */
    size_t njobs;           /* in any state */
    size_t nwaiting;        /* queued or held */
    size_t nbusy;           /* dispatched or active */
    size_t ndelayed;        /* waiting ones with a start_delay (not_before set) */
    size_t ninterrupted;    /* interrupted ones */
    zhashx_t *parts;        /* partition -> evr_queue_part_t; NULL: none yet */
    evr_strlist_t labels;   /* those of the first job with a submit that joined: most
                               of its jobs have them (their `common`) */
    bool labelled;          /* labels set */
    uint64_t dead;          /* the dispatch pass in which a job with those labels found
                               no runner with a free slot and them all (evr_qdispatch.c) */
    size_t nuncommon;       /* waiting ones whose labels are not those (not `common`) */
} evr_queue_pipe_t;

/*  A dispatch pass's walk over the waiting jobs in queue order
    (evr_qindex.c): the pipelines' lists merged by order, so that a
    pipeline whose jobs can find no runner this pass is left out as a
    whole instead of each of its jobs passed over; or the queue's own
    list from one job on. */
typedef struct {
    evr_queue_job_t **heap;     /* the next job of each pipeline still walked, by order */
    size_t n;
    evr_queue_job_t *last;      /* returned last (merged): its pipeline's next is due */
    evr_queue_job_t *at;        /* not merged: the next in the queue's list */
    bool merged;
    uint64_t pass;              /* a pipeline with dead == pass is left out (merged) */
} evr_queue_walk_t;

typedef struct evr_runners_session {
    char *id;
    zframe_t *rid;          /* routing id of its connection; NULL: gone */
    evr_strlist_t labels;
    uint32_t capacity, credit;
    uint64_t seen;          /* mono ns of its last message */
    uint64_t heartbeat;     /* wall ns of its last message */
    uint64_t resync_to;     /* the seq its hello announced */
    bool resynced;          /* the broker holds its log up to resync_to */
    uint64_t lost_at;       /* mono ns it was shown lost (or stopped); 0 while it is not */
    bool draining, lost;    /* lost: away (silent past its lease, gone, or stopped) */
    bool stopped;           /* away because it said goodbye: shown stopped, not lost */
    bool stopped_kept;      /* ... and kv "stopped/<runner>" says so across a restart */
    bool drain_warned;      /* a held drain's send failed, said once (evr_runners.c) */
    bool drain_unsent;      /* a drain asked while it was not connected: sent at its
                               hello (kv "drain/<runner>" holds it over a restart) */
    bool hello_seen;        /* false: known from the queue or a held drain at the
                               broker's start, no hello since (evr_runners_restore) */
    bool ephemeral;         /* its hello said so (evrun-runner --once) */
    uint32_t demand_met;    /* slots whose demand its first hello met, not used by a
                               dispatch yet (evr_demand.c) */
    struct evr_runners_session *next;
} evr_runners_session_t;

/*  Submits taken in one turn share one commit (group commit,
    evr_queue.c): at most this many, or until their records pass the
    bytes; each is answered only after that commit. */
#define EVR_QUEUE_BATCH 256
#define EVR_QUEUE_BATCH_BYTES (8u << 20)

typedef struct {
    evr_queue_job_t *job;   /* not in the queue yet */
    zframe_t *rid;          /* who asked */
    uint8_t *rec;           /* its record "q/<job>" */
    size_t len;
    uint64_t rid_hash, job_hash;    /* of rid's bytes and the job id (s_staged_by) */
    char *note;             /* the `accepted` answer's message, or NULL (evr_queue_note) */
} evr_queue_staged_t;

/*  A submit in the journal whose record the store does not hold yet
    (evr_queue.c: written with the next write of the queue table). */
typedef struct {
    char id[EVR_ULID_LEN + 1];
    uint8_t *rec;           /* its record "q/<job>" */
    size_t len;
} evr_queue_pending_t;

/*  A job taken from a lost runner (evr_lease.c). */
typedef struct evr_lease_job evr_lease_job_t;

struct evr_broker {
    evr_broker_opts_t opts;
    evr_store_t *store;
    zsock_t *clients, *runners, *pub;
    evr_zap_t *zap;         /* CURVE on tcp:// endpoints; NULL: none */
    evr_queue_job_t *jobs;  /* not finished, in submission order (next, prev) */
    evr_queue_job_t *last;  /* of jobs */
    size_t njobs;           /* in jobs */
    size_t nunstarted;      /* of them not running yet: queued, held or dispatched */
    uint64_t order_front, order_back;   /* the orders of jobs pushed at the front, at the back */
    uint64_t passes;        /* dispatch passes made */
    zhashx_t *index;        /* job id -> its entry in jobs */
    zhashx_t *qpipes;       /* pipeline -> its jobs (evr_queue_pipe_t) while it has any */
    zhashx_t *by_runner;    /* runner id -> the first of jobs with that runner (rnext) */
    evr_queue_job_t *fresh; /* the first of jobs added at the end since the last dispatch
                               pass: the next looks at it and those after only, unless
                               changed; NULL: none */
    evr_queue_staged_t staged[EVR_QUEUE_BATCH];   /* submits awaiting their commit */
    size_t nstaged, staged_bytes;
    evr_journal_t *journal; /* the submits acknowledged (evr_queue.c) */
    evr_queue_pending_t *pending;   /* journaled, not in the store yet */
    size_t npending, pending_cap;
    uint64_t last_commit;   /* mono ns of the last journal commit */
    uint64_t awaited[EVR_QUEUE_BATCH];  /* rid hashes the last commit answered that have
                                           not submitted again since (evr_queue_linger) */
    size_t nawaited;
    uint32_t test_delay_ms; /* EVR_TEST_SUBMIT_DELAY_MS: a wait between the journal's write
                               and its flush */
    uint32_t test_accept_delay_ms;  /* EVR_TEST_ACCEPT_DELAY_MS: a wait between a taken
                                       job.accepted's pending cancel sent and its queue
                                       record's deletion */
    bool test_no_ckpt;      /* EVR_TEST_NO_CHECKPOINT=1: no checkpoint of the journal's own
                               (idle or full; one that comes with a queue change still
                               runs), so a crash test's kill finds acknowledged submits in
                               the journal alone */
    evr_runners_session_t *rlist;
    evr_lease_job_t *taken; /* (job, runner) pairs taken from lost runners */
    uint64_t started;       /* mono ns */
    uint64_t next_beat;     /* mono ns */
    uint64_t next_sweep;    /* mono ns: the next look at the client flows */
    bool changed;           /* try to dispatch: a pass over the whole queue */
    uint64_t next_due;      /* wall ns: the earliest start_delay end of a queued job; 0: none */
    evr_rc_t failure;
    char failmsg[EVR_ERR_MAX];
    char *artifacts_dir;    /* owns opts.artifacts_dir (evr_artstore.c) */
    struct evr_artstore *artstore;
    struct evr_pipelines *pipes;    /* registered pipelines (evr_pipelines.h) */
    uint64_t next_prune;    /* mono ns: the next retention batch (evr_retention.c) */
    evr_prune_meta_t pruned;    /* the store's counts of what retention removed */
    bool pruned_read;           /* pruned holds them (read again after a batch) */
    struct evr_providers *providers;   /* provisioners' reports (evr_providers.c); NULL: none */
    struct evr_demand *demand;  /* demand for runners (evr_demand.c); NULL: none yet */
};

/*  The broker's log lines (evr_log.h), by level; formatted only when the
    level passes the threshold. */
#define evr_broker_error(b, ...) evr_broker_log_at(b, EVR_LOG_ERROR, __VA_ARGS__)
#define evr_broker_warn(b, ...) evr_broker_log_at(b, EVR_LOG_WARN, __VA_ARGS__)
#define evr_broker_info(b, ...) evr_broker_log_at(b, EVR_LOG_INFO, __VA_ARGS__)
#define evr_broker_debug(b, ...) evr_broker_log_at(b, EVR_LOG_DEBUG, __VA_ARGS__)
#define evr_broker_log_at(b, level, ...)                                                         \
    do {                                                                                         \
        (void) (b);                                                                              \
        evr_log_at(level, "evrun-broker", __VA_ARGS__);                                          \
    } while (0)
/*  Records a store failure (the broker stops serving writes). */
void evr_broker_fail(evr_broker_t *b, const evr_err_t *err);

/* evr_providers.c */
/*  `provider` (msg taken): kept, answered ok; `providers`: the stream. */
void evr_providers_report(evr_broker_t *b, zframe_t *rid, evr_msg_t *msg);
void evr_providers_list(evr_broker_t *b, zframe_t *rid);
void evr_providers_free(evr_broker_t *b);

/* evr_demand.c */
/*  `demand` (msg taken when kept): answered ok or error; `demands`: the
    stream; a runner new to the broker said hello: it meets demand, one
    runner wanted per slot of capacity, and says how many it met (its
    promised slots); job j was dispatched to runner r (its first dispatch:
    a retry after a lost runner counts no more): it uses one of r's
    promised slots, or else meets one runner wanted of the oldest entry
    taken no later than j was queued whose labels are all j's. */
void evr_demand_add(evr_broker_t *b, zframe_t *rid, evr_msg_t *msg);
void evr_demand_list(evr_broker_t *b, zframe_t *rid);
uint32_t evr_demand_hello(evr_broker_t *b, const char *runner, const evr_strlist_t *labels,
                          uint32_t capacity);
void evr_demand_dispatched(evr_broker_t *b, evr_runners_session_t *r, evr_queue_job_t *j);
void evr_demand_free(evr_broker_t *b);

/* evr_qindex.c: the queue's lists and counts */
/*  Sets up the queue's indexes (evr_queue_init); frees every job in the
    queue and the indexes (evr_queue_fini). */
void evr_queue_index_init(evr_broker_t *b);
void evr_queue_index_fini(evr_broker_t *b);
evr_queue_job_t *evr_queue_find(const evr_broker_t *b, const char *id);
/*  The jobs whose runner is runner: the first, then each one's rnext
    (NULL: none).  A job's runner is changed with evr_queue_set_runner
    only (runner NULL: none), so that this index follows. */
evr_queue_job_t *evr_queue_of_runner(const evr_broker_t *b, const char *runner);
void evr_queue_set_runner(evr_broker_t *b, evr_queue_job_t *j, const char *runner);
/*  A job's state, once it is in the queue, is changed with this only, and
    its interrupted flag set with evr_queue_set_interrupted, so that the
    counts (evr_queue_pipe_t, b->nunstarted) follow. */
void evr_queue_set_state(evr_broker_t *b, evr_queue_job_t *j, evr_queue_state_t state);
void evr_queue_set_interrupted(evr_broker_t *b, evr_queue_job_t *j);
/*  The jobs of pipeline p in the queue; NULL when it has none. */
evr_queue_pipe_t *evr_queue_pipe(const evr_broker_t *b, const char *p);
/*  The jobs of pipeline p that came with partition part; NULL: none. */
evr_queue_part_t *evr_queue_part(const evr_broker_t *b, const char *p, const char *part);
/*  Puts j at the head of the queue (a job met first in a runner's log). */
void evr_queue_push_front(evr_broker_t *b, evr_queue_job_t *j);
/*  Puts j at the end of the queue (evr_queue_add: and the next dispatch
    pass looks at it). */
void evr_queue_append(evr_broker_t *b, evr_queue_job_t *j);
/*  Unlinks (when in the queue) and frees j. */
void evr_queue_remove(evr_broker_t *b, evr_queue_job_t *j);
/*  Jobs of pipeline p the queue holds (in any state; staged ones not). */
size_t evr_queue_count(const evr_broker_t *b, const char *p);
/*  Whether j waits in the queue (queued or held) and is of pipeline p,
    and of partition part when part is not NULL. */
bool evr_queue_waits(const evr_queue_job_t *j, const char *p, const char *part);
/*  A walk over every pipeline that has waiting jobs, in queue order
    (evr_queue_walk_next), for dispatch pass pass: once a pipeline's dead
    is pass, its jobs that follow are not returned when none of its
    waiting jobs is delayed or has labels other than its common ones
    (those could still find a runner, or give the pass a due time).
    evr_queue_walk_from walks the queue's list from at instead, every job.
    Nothing may join or leave the queue during a walk; evr_queue_walk_fini
    frees it. */
void evr_queue_walk_pipes(evr_broker_t *b, evr_queue_walk_t *w, uint64_t pass);
void evr_queue_walk_from(evr_queue_walk_t *w, evr_queue_job_t *at);
evr_queue_job_t *evr_queue_walk_next(evr_queue_walk_t *w);
/*  Whether the walk returned every job it would (none is left). */
bool evr_queue_walk_done(evr_queue_walk_t *w);
void evr_queue_walk_fini(evr_queue_walk_t *w);
/*  Jobs assigned to runner r (dispatched or active). */
uint32_t evr_queue_assigned(const evr_broker_t *b, const char *runner);
/*  The jobs of runner whose state is state, in queue order: *out (caller
    frees), their count. */
size_t evr_queue_runner_jobs(const evr_broker_t *b, const char *runner, evr_queue_state_t state,
                             evr_queue_job_t ***out);

/* evr_queue.c */
/*  Sets up the queue's indexes (before evr_queue_load); evr_queue_fini
    frees every job, staged ones too (unanswered), and the indexes. */
void evr_queue_init(evr_broker_t *b);
void evr_queue_fini(evr_broker_t *b);
void evr_queue_free(evr_queue_job_t *j);
/*  Until when (mono ns) the turn waits for more submits before its
    commit: while clients the last commit answered have not submitted
    again, 0.3 ms after that commit at most; 0: no wait (no submit staged,
    or every answered client back). */
uint64_t evr_queue_linger(const evr_broker_t *b);
/*  Takes up the queue and the running jobs from the store at start,
    after the submit journal's records newer than the store's checkpoint
    (written into the store first, synced, and the journal started over). */
evr_rc_t evr_queue_load(evr_broker_t *b, evr_err_t *err);
/*  submit: answers the client itself, a refusal at once, an accepted
    submit once it is committed: it is staged (rid copied, msg taken) and
    committed with the others of the turn by evr_queue_flush, or at once
    when the batch is full.  req names the request the client made
    ("submit", "start") in a refusal: "start: args.WHO: ...".  note, when
    not NULL, is copied into the `accepted` answer's message (a start of a
    pipeline whose file last failed to load). */
void evr_queue_submit(evr_broker_t *b, zframe_t *rid, evr_msg_t *msg, const char *req,
                      const char *note);
/*  The same for a client's submit whose body frame came as wire (wlen
    bytes, borrowed): its record is those bytes when binding its args
    changes nothing, instead of msg encoded again; *rid is taken (set
    NULL) when the submit is staged, not copied. */
void evr_queue_submit_wire(evr_broker_t *b, zframe_t **rid, evr_msg_t *msg, const uint8_t *wire,
                           size_t wlen);
/*  `trigger` from runner (its session at rid): submits the registered
    pipeline with the parent recorded, commits, answers `triggered`
    (evr_trigger.c). */
void evr_trigger_on_message(evr_broker_t *b, zframe_t *rid, const char *runner, evr_msg_t *msg);
/*  `query` from a runner: answers `queried` about a job or a pipeline. */
void evr_trigger_query(evr_broker_t *b, zframe_t *rid, const evr_msg_t *msg);
/*  Fills m (a `job` message, strings owned: evr_msg_clear) for id, with
    the steps' outputs (and the parent) when outputs; EVR_ERR_NOTFOUND
    when the broker knows no such job, another code (err says it) when
    its store cannot be read (evr_broker.c). */
evr_rc_t evr_broker_job_view(evr_broker_t *b, const char *id, bool outputs, evr_msg_t *m,
                             evr_err_t *err);
/*  The submit path itself, for a client (rid) or the broker's own submits
    (rid NULL: a schedule's): checks msg (a submit; its args bound here),
    applies the queue policy and stages the job, taking msg's contents.
    true: accepted — *existing when the job id was known already (nothing
    staged), else staged: it joins the queue at the turn's commit
    (evr_queue_flush; rid, if any, is answered then); false: refused,
    *code (EVR_CODE_*) and why say why (why: at least 1024 bytes for the
    whole text), naming the request req ("trigger"). */
bool evr_queue_offer(evr_broker_t *b, zframe_t *rid, evr_msg_t *msg, const char *req,
                     bool *existing, const char **code, char *why, size_t len);
/*  Whether job is known: queued, staged (committed first, as a submit
    from rid after a staged one of its own is) or stored.  A `start` or
    `trigger` of a known id naming a pipeline no longer registered is
    answered `existing`: sent again after the pipeline's file was removed,
    it still names the job it started (schema/PROTOCOL.md `start`). */
bool evr_queue_known(evr_broker_t *b, zframe_t *rid, const char *job);
/*  Commits the staged submits: their records appended to the submit
    journal in one write and flushed (one fdatasync), then answers each:
    `accepted`, or when the write or flush failed an `internal` error to
    every one of them (the broker stops serving writes).  A lazy commit of
    the store (evr_store_kv_write_lazy) is flushed too.  Called before any
    other request, so that every answer sees the submits before it. */
void evr_queue_flush(evr_broker_t *b);
/*  The same at the end of a turn's client requests; also writes the
    journaled records into the store (a checkpoint: one synced commit,
    then the journal starts over) once the journal holds 1 MiB, or when a
    turn without submits comes 100 ms after the last. */
void evr_queue_turn_end(evr_broker_t *b);
/*  For evr_qcommit.c (evr_queue.c): notes a journaled record the store
    does not hold yet (rec taken); the checkpoint: those records written
    into the store (one synced commit), the journal starts over. */
void evr_queue_pending_add(evr_broker_t *b, const char *id, uint8_t *rec, size_t len);
void evr_queue_checkpoint(evr_broker_t *b);
/*  A queued job of a submit message (taken, its args bound); evr_queue_add
    puts it at the end of the queue (its record written by the caller:
    evr_queue_record gives key and value, caller frees the value). */
evr_queue_job_t *evr_queue_new(evr_msg_t *submit, uint64_t created);
/*  The submit message of j (waiting: body not NULL), decoded from its
    body; caller destroys.  NULL, logged, when it does not decode (it
    did when recorded: memory, or a codec changed under a record). */
evr_msg_t *evr_queue_submit_of(const evr_broker_t *b, const evr_queue_job_t *j);
void evr_queue_add(evr_broker_t *b, evr_queue_job_t *j);
/*  The key prefix of the kept submits (evr_qkept.c). */
#define EVR_QUEUE_KEPT "s/"
/*  A triggered job's keys (evr_trigger.c writes them, a lost one's retry
    too, evr_lease.c): "kids/<parent>/<child>" (empty) lists a parent's
    children, "depth/<job>" (decimal) is its place in its chain. */
#define EVR_KV_KIDS "kids/"
#define EVR_KV_DEPTH "depth/"
/*  The submit a job left the queue with, kept as "s/<job>" while it runs
    because a step of its retries on lost (evr_lease.c queues it again
    from it: its source, labels and parent as sent); caller destroys.
    NULL: none kept (or it does not decode, logged). */
evr_msg_t *evr_queue_kept_submit(evr_broker_t *b, const char *id);
/*  Sets j->kept (j leaving the queue, its body still there): whether a
    step of its spec (or its on_error) retries on lost, so that
    evr_queue_persist keeps its submit. */
void evr_queue_keep_if_retried(const evr_broker_t *b, evr_queue_job_t *j);
/*  Its kept submit deleted (a lazy commit: one left by a crash of the
    machine is deleted at the next start), j->kept cleared. */
void evr_queue_forget_kept(evr_broker_t *b, evr_queue_job_t *j);
/*  At start, after the running jobs are taken up: each running job's
    kept submit is its again (j->kept), the others are deleted.
    EVR_ERR_STORE. */
evr_rc_t evr_queue_load_kept(evr_broker_t *b, evr_err_t *err);
void evr_queue_record(const evr_queue_job_t *j, char key[EVR_ULID_LEN + 3], uint8_t **val,
                      size_t *len);
/*  Persists j (state, runner) in the queue table, in one synced commit
    with the journaled records not in the store yet (a checkpoint); a job in state
    B_ACTIVE has left the queue: its record is deleted and its submit time
    kept (evr_queue_created), and its submit as "s/<job>" when j->kept. */
evr_rc_t evr_queue_persist(evr_broker_t *b, evr_queue_job_t *const *jobs, size_t n, evr_err_t *err);
/*  The submit time of job id kept when it left the queue, or fallback
    when the store has none (a job older than that record). */
uint64_t evr_queue_created(evr_broker_t *b, const char *id, uint64_t fallback);
/*  Ends a job that never reached a runner: stores job.accepted and
    job.finished{cancelled, reason}, publishes them, drops it. */
evr_rc_t evr_queue_cancel_queued(evr_broker_t *b, evr_queue_job_t *j, const char *reason,
                                 evr_err_t *err);
/*  The same with another final status (failed: a dispatched job whose
    runner's job.accepted the broker refused, evr_lease.c). */
evr_rc_t evr_queue_end_unstarted(evr_broker_t *b, evr_queue_job_t *j, const char *status,
                                 const char *reason, evr_err_t *err);
/*  Sends every queued job it can to a runner with credit and labels:
    when b->changed, looking at the whole queue; else at the jobs added
    since the last pass (b->fresh) only, the others having found no runner
    then, and nothing having changed for them since (every change that
    could give one a runner sets b->changed). */
void evr_queue_dispatch(evr_broker_t *b);
/*  The job has left the queue (its job.accepted is stored). */
void evr_queue_accepted(evr_broker_t *b, evr_queue_job_t *j, const char *runner);
/*  The runner did not take its dispatched jobs (resync found no
    job.accepted): they wait again. */
void evr_queue_requeue(evr_broker_t *b, const char *runner);
/*  Notes that j's dispatch was sent to runner. */
void evr_queue_note_sent(evr_queue_job_t *j, const char *runner);
/*  Whether j's dispatch was sent to runner (of the last EVR_QUEUE_SENT_MAX
    runners; kept in j's queue record, so across a restart too). */
bool evr_queue_was_sent(const evr_queue_job_t *j, const char *runner);

/* evr_policy.c */
/*  Applies the queue policy of submit msg (its args bound) before it is
    staged: replaces waiting jobs and interrupts running ones as its
    strategy says, or refuses it.  true: it may be queued; false: *code (an
    EVR_CODE_*) and why say the refusal (nothing was changed then, except
    that staged submits were committed).  Callers: evr_queue_submit. */
bool evr_policy_admit(evr_broker_t *b, const evr_msg_t *msg, const char **code, char *why,
                      size_t len);
/*  The poll timeout (ms, at most max_ms) until the next start_delay ends;
    marks the queue changed once one has. */
int evr_policy_due(evr_broker_t *b, int max_ms);
/*  Runner r is back with its log resent: the cancels of its interrupted
    jobs that could not reach it go now. */
void evr_policy_resend(evr_broker_t *b, const char *runner);
/*  At start, after evr_queue_load: the cancels of interrupted running
    jobs held for their runner ("interrupt/<job>") are pending again; those
    of jobs no longer running are deleted.  EVR_ERR_STORE. */
evr_rc_t evr_policy_load(evr_broker_t *b, evr_err_t *err);
/*  Holds the pending cancel of running job j for its runner as an
    interrupt's is ("interrupt/<job>": its reason; one synced commit):
    sent by evr_policy_resend, also after a restart.  EVR_ERR_STORE. */
evr_rc_t evr_policy_hold(evr_broker_t *b, evr_queue_job_t *j, evr_err_t *err);

/* evr_runners.c */
evr_runners_session_t *evr_runners_find(const evr_broker_t *b, const char *id);
/*  A runner's message; key: its CURVE key ("" on ipc://). */
void evr_runners_on_message(evr_broker_t *b, zframe_t *rid, const char *key, evr_msg_t *msg);
void evr_runners_beat(evr_broker_t *b);
/*  Forgets the runners lost for forget_ms that hold no job (each beat). */
void evr_runners_forget(evr_broker_t *b);
/*  Fills a `runner` message for r (strings borrowed). */
void evr_runners_describe(const evr_broker_t *b, const evr_runners_session_t *r, evr_msg_t *m);
/*  Sends control to the runner of a job (force: a cancel that stops its
    `when: always` steps too); false (with a reason for the client) when
    it is not connected. */
bool evr_runners_control(evr_broker_t *b, const char *runner, const char *command, const char *job,
                         const char *reason, bool force, char *why, size_t whylen);
void evr_runners_free_all(evr_broker_t *b);
/*  At start, after evr_queue_load and evr_lease_load: a session, shown
    lost until its hello, for each runner the queue holds jobs of
    (dispatched or accepted) and each runner with a drain held
    (kv "drain/<runner>"). */
evr_rc_t evr_runners_restore(evr_broker_t *b, evr_err_t *err);
/*  A client's drain of runner r: sent now when it is connected, else held
    (in the store too) and sent at its hello; either way it is shown
    draining and gets no job.  false (why set) when the send or the
    store write failed. */
bool evr_runners_drain(evr_broker_t *b, evr_runners_session_t *r, char *why, size_t whylen);

/* evr_control.c: a client's cancel, pause, resume and drain */
void evr_control_job(evr_broker_t *b, zframe_t *rid, const evr_msg_t *req);
void evr_control_drain(evr_broker_t *b, zframe_t *rid, const evr_msg_t *req);
/*  A job.paused or job.resumed of active job j came: the pause or resume
    it confirms is no longer pending. */
void evr_control_confirmed(evr_queue_job_t *j, evr_evtype_t t);

/* evr_lease.c */
/*  Loads the jobs taken from lost runners (and notes the start time). */
evr_rc_t evr_lease_load(evr_broker_t *b, evr_err_t *err);
void evr_lease_free(evr_broker_t *b);
/*  Takes the jobs of runners away for reclaim_ms (each heartbeat). */
void evr_lease_check(evr_broker_t *b);
/*  Whether job was taken from runner. */
bool evr_lease_taken(const evr_broker_t *b, const char *job, const char *runner);
/*  Whether job was taken from any runner (its record is kept until that
    runner's job.finished for it: retention keeps the job as long). */
bool evr_lease_holds(const evr_broker_t *b, const char *job);
/*  Runner r is back: it is told to cancel each job taken from it that it
    may hold. */
void evr_lease_back(evr_broker_t *b, evr_runners_session_t *r);
/*  The broker holds r's log up to its hello: jobs taken from r that it
    never accepted are no longer kept from it. */
void evr_lease_resynced(evr_broker_t *b, evr_runners_session_t *r);
/*  Which of r's events are of jobs taken from it (NULL: none); caller
    frees.  A job.accepted of a job still waiting in the queue is not. */
bool *evr_lease_drops(evr_broker_t *b, evr_runners_session_t *r, evr_event_t *const *evs, size_t n);
/*  Stores r's events (evr_store_ingest) with *drop; an event the archive
    refuses for what it says is taken out (evr_lease.c), *drop allocated
    when needed (caller frees), and the rest stored.  Errors as
    evr_store_ingest's: a gap or a store failure refuses what is left. */
evr_rc_t evr_lease_ingest(evr_broker_t *b, evr_runners_session_t *r, evr_event_t *const *evs,
                          bool **drop, size_t n, evr_err_t *err);
/*  After an ingest with drop: jobs whose events were refused are ended
    failed, the runner is told to cancel those jobs; a dropped job.finished
    ends the record. */
void evr_lease_dropped(evr_broker_t *b, evr_runners_session_t *r, evr_event_t *const *evs,
                       const bool *drop, size_t n);

/* evr_retention.c */
/*  A batch of retention when it is due (each turn). */
void evr_retention_tick(evr_broker_t *b);
/*  A client's `prune`: answered `pruned`, or `error`. */
void evr_retention_request(evr_broker_t *b, zframe_t *rid, const evr_msg_t *req);
/*  Answers a request about a job the broker does not know: `not_found`,
    saying when retention may have removed it. */
void evr_retention_no_job(evr_broker_t *b, zframe_t *rid, const char *job);
/*  Whether a submit (a start, a trigger, a schedule's fire: req names
    it) of job, an id the broker does not hold, is refused because
    retention may have removed that job: its id is at or below the
    highest id retention removed (the store's pruned_upto), so it may have
    run already, and queueing it again would run it twice.  true: why
    says so (code `conflict`). */
bool evr_retention_refuses(evr_broker_t *b, const char *req, const char *job, char *why,
                           size_t len);

/* evr_artstore.c */
typedef struct evr_artstore evr_artstore_t;
evr_artstore_t *evr_artstore_new(void);
void evr_artstore_destroy(evr_artstore_t **self_p);
/*  An artifact_chunk from runner (its id): stored, answered artifact_ack. */
void evr_artstore_chunk(evr_broker_t *b, zframe_t *rid, const char *runner, const evr_msg_t *m);
/*  A client's fetch: answered artifact_data or error. */
void evr_artstore_fetch(evr_broker_t *b, zframe_t *rid, const evr_msg_t *m);
/*  Takes in the sha256 sums the artifact worker read (evr_artsum). */
void evr_artstore_turn(evr_broker_t *b);
void *evr_artstore_sock(evr_broker_t *b);

#endif
