/*  evr_msg.h: the bus messages of DESIGN §3.

    A bus message is a ZeroMQ multipart message whose first frame is the
    ASCII header "evrun1 <type>" and whose last frame is one msgpack map.
    All message fields live in one flat struct, evr_msg_t; each message
    type has a field table naming the fields it carries, required or not,
    with their limits.  The tables drive encoding, validated decoding and
    schema/PROTOCOL.md (a test checks the document against them).

    Streamed answers (jobs, runners, history) are a run of `job`, `runner`
    or `event` messages closed by `end`.
*/
#ifndef EVR_MSG_H_INCLUDED
#define EVR_MSG_H_INCLUDED

#include "evr_event.h"
#include "evr_field.h"
#include "evr_spec.h"

#define EVR_MSG_PROTO "evrun1"
/*  Largest message body accepted (ZMQ_MAXMSGSIZE is set to this). */
#define EVR_MSG_MAX_BYTES (4u << 20)
/*  Most events in one `events` batch. */
#define EVR_MSG_MAX_EVENTS 1024
/*  Longest header frame ("evrun1 " + type). */
#define EVR_MSG_HEADER_MAX 64

typedef enum {
    EVR_MSG_NONE = 0,
    /* client -> broker */
    EVR_MSG_SUBMIT, EVR_MSG_CANCEL, EVR_MSG_PAUSE, EVR_MSG_RESUME, EVR_MSG_STATUS,
    EVR_MSG_JOBS, EVR_MSG_HISTORY, EVR_MSG_RUNNERS, EVR_MSG_DRAIN,
    /* broker -> client */
    EVR_MSG_ACCEPTED, EVR_MSG_OK, EVR_MSG_ERROR, EVR_MSG_JOB, EVR_MSG_EVENT, EVR_MSG_RUNNER,
    EVR_MSG_END,
    /* runner -> broker */
    EVR_MSG_HELLO, EVR_MSG_CREDIT, EVR_MSG_EVENTS, EVR_MSG_HEARTBEAT,
    /* broker -> runner */
    EVR_MSG_WELCOME, EVR_MSG_DISPATCH, EVR_MSG_CONTROL, EVR_MSG_ACK,
    /* artifacts: runner -> broker, broker -> runner, client -> broker, broker -> client */
    EVR_MSG_ARTIFACT_CHUNK, EVR_MSG_ARTIFACT_ACK, EVR_MSG_FETCH, EVR_MSG_ARTIFACT_DATA,
    /* registered pipelines: client -> broker, client -> broker, broker -> client */
    EVR_MSG_PIPELINES, EVR_MSG_START, EVR_MSG_PIPELINE,
    /* retention: client -> broker, broker -> client */
    EVR_MSG_PRUNE, EVR_MSG_PRUNED,
    /* provisioners: provisioner -> broker and broker -> client, client -> broker */
    EVR_MSG_PROVIDER, EVR_MSG_PROVIDERS,
    /* runner -> broker, broker -> runner: a step starts a registered pipeline */
    EVR_MSG_TRIGGER, EVR_MSG_TRIGGERED,
    /* runner -> broker, broker -> runner: a step asks about a job or a pipeline */
    EVR_MSG_QUERY, EVR_MSG_QUERIED,
    /* demand for runners (a webhook's): client -> broker, both ways */
    EVR_MSG_DEMAND, EVR_MSG_DEMANDS,
    /* runner -> broker: it leaves (stopped cleanly) */
    EVR_MSG_GOODBYE,
    EVR_MSG_COUNT_
} evr_msgtype_t;

typedef struct {
    evr_msgtype_t type;     /* from the header frame, not the body */
    char *job;              /* ULID */
    char *runner;           /* runner id */
    char *pipeline;
    char *status;           /* job status, or a status filter in `jobs` */
    char *state;            /* runner state: idle busy draining lost stopped */
    char *reason;
    char *code;             /* `error`: machine-readable code */
    char *message;          /* `error`, `ok`: for people */
    char *command;          /* `control`: cancel pause resume drain */
    char *version;
    evr_spec_t *spec;
    evr_strmap_t args;
    evr_strlist_t labels;
    evr_bin_t source_tar;       /* `submit`, `dispatch`: the spec's copy: directories, */
    evr_bin_t ci_source_tar;    /* as gzip-compressed tars (EVR_MSG_MAX_COPY_BYTES) */
    evr_reclist_t events;   /* of evr_event_t */
    evr_event_t *event;
    uint64_t seq;
    uint64_t from;          /* `history`: first per-job seq wanted */
    uint64_t created, started, finished, heartbeat;   /* ns since the epoch */
    uint32_t limit;
    uint32_t capacity, credit, running;
    uint32_t steps_total, steps_done;
    uint32_t allowed_failures;  /* job: steps failed with allow_failure */
    uint32_t count;
    bool existing;          /* `accepted`: the job id was already known; `ok` answering
                               `demand`: a duplicate, nothing added */
    bool more;              /* `end` of `history`: the page was cut, ask on */
    bool ephemeral;         /* `hello`, `runner`: a single-use runner (evrun-runner --once) */
    bool draining;          /* `hello`: the runner process took a drain */
    bool force;             /* `control` cancel: stop the `when: always` steps too, at once */
    uint32_t queue_limit;   /* `end` of `jobs`: the broker's --queue-limit */
    char *step;             /* artifacts: the step */
    char *path;             /* artifacts: the file, relative to /workspace */
    char *sha256;           /* artifacts: of the whole file */
    uint64_t offset;        /* artifacts: bytes of the file before data */
    uint64_t size;          /* artifacts: bytes of the whole file */
    evr_bin_t data;         /* artifacts: a piece of the file */
    bool done;              /* `artifact_ack`: the broker holds the whole file */
    /* `pipeline`: a registered pipeline (its file in the broker's pipelines_dir) */
    char *file;
    char *schedule, *timezone;
    char *last_job, *last_status;   /* its newest job */
    char *fire_job, *fire_status;   /* its last schedule fire */
    char *load_error;       /* the file's last load failed: why (the last good version serves) */
    uint32_t concurrency, waiting;
    uint64_t next_run, last_fire;   /* ns since the epoch */
    evr_strmap_t outputs;   /* `job` answering `status`: STEP/KEY -> VALUE (step.outputs) */
    bool dry_run;           /* `prune`, `pruned`: count only, remove nothing */
    uint64_t pr_jobs, pr_outputs, pr_events, pr_records, pr_bytes;   /* `pruned` */
    /* `start`: the url and ref of the spec's git source and ci_source, replaced */
    char *source_url, *source_ref, *ci_source_url, *ci_source_ref;
    /* `pipeline`: its `on.github` (events: none when it has none) */
    evr_strlist_t github_events, github_branches;
    evr_reclist_t arg_specs;    /* `pipeline`: its spec's args (of evr_arg_t) */
    /* `provider`: an evrun-provisioner's provider */
    char *provider;
    uint32_t max, starts, failed_starts;
    /* `trigger`, `submit`, `dispatch`: the job and step that started this job */
    char *parent_job, *parent_step;
    evr_strlist_t children;     /* `job` answering `status`: the jobs its steps triggered */
    evr_strmap_t step_states;   /* `queried`, `job`: STEP -> "STATUS" or "STATUS EXIT_CODE" */
    uint32_t ttl;               /* `demand`: seconds the broker keeps it (listed: left) */
} evr_msg_t;

/*  `demand`: most runners one asks for, its longest and default ttl (s),
    the entries the broker keeps and their runners in all. */
#define EVR_MSG_DEMAND_MAX_COUNT 64
#define EVR_MSG_DEMAND_MAX_TTL 3600
#define EVR_MSG_DEMAND_TTL 300
#define EVR_MSG_DEMAND_MAX_ENTRIES 256
#define EVR_MSG_DEMAND_MAX_RUNNERS 1024
/*  `demand`: the ids of retired entries (met, or past their ttl) the
    broker remembers, so one sent again adds nothing: at most this many,
    each for this long (s) after it was retired. */
#define EVR_MSG_DEMAND_SEEN_MAX 4096
#define EVR_MSG_DEMAND_SEEN_S (24u * 3600u)

/*  Most children a `job` message lists. */
#define EVR_MSG_MAX_CHILDREN 64

/*  Most entries of a `job`'s outputs (each value at most 4096 bytes). */
#define EVR_MSG_MAX_OUTPUTS 256

/*  Most bytes of one `copy:` directory's compressed tar in a `submit` (and
    its `dispatch`): 1 MiB.  With the spec (1 MiB) and the args, two of
    them stay well under the message limit (EVR_MSG_MAX_BYTES, 4 MiB). */
#define EVR_MSG_MAX_COPY_BYTES (1u << 20)
/*  Largest piece of an artifact in one message. */
#define EVR_MSG_CHUNK_MAX (1u << 20)
/*  How the broker's `not_found` answer to a `fetch` naming a sha256 other
    than the held copy's begins, then "sha256 HEX, N bytes) of artifact
    ..." (schema/PROTOCOL.md, `fetch`): clients tell "another copy" from
    "none" by it (evr_msg_other_copy). */
#define EVR_MSG_OTHER_COPY "the broker holds another copy ("
/*  How the broker's `not_found` answer to a `fetch` naming a sha256
    begins while it reads its copy of a large file again to take its
    sha256, then "N bytes) of artifact ..."; or, when too many files wait
    to be read (the copy not read yet), EVR_MSG_BUSY_READING and "N
    bytes) of artifact ...": ask again later, the copy may well be the
    one asked for (schema/PROTOCOL.md, `fetch`; evr_msg_reading). */
#define EVR_MSG_READING "the broker is reading its copy ("
#define EVR_MSG_BUSY_READING "the broker is busy reading other copies: not yet its copy ("

/*  Error codes carried by `error` replies. */
/*  A chain of follow-up jobs (a job a step triggered, whose step triggers
    another...) is at most this deep: the broker refuses a trigger past
    it, as evrun-runner --exec --follow-triggers does. */
#define EVR_TRIGGER_DEPTH 8

#define EVR_CODE_BAD_REQUEST "bad_request"   /* malformed or invalid message */
#define EVR_CODE_UNKNOWN_TYPE "unknown_type" /* header names no message type */
#define EVR_CODE_NOT_FOUND "not_found"       /* no such job or runner */
#define EVR_CODE_QUEUE_FULL "queue_full"     /* the pipeline's queue limit is reached */
#define EVR_CODE_BUSY "busy"                 /* concurrency full and queue.limit 0 */
#define EVR_CODE_CONFLICT "conflict"         /* not possible in the job's state */
#define EVR_CODE_TOO_LARGE "too_large"       /* over a size limit */
#define EVR_CODE_UNAVAILABLE "unavailable"   /* the broker cannot serve now */
#define EVR_CODE_INTERNAL "internal"         /* a bug or a store failure */

/*  Whether msg is the broker's answer to a fetch of a copy other than
    the one it holds (an `error` whose message begins EVR_MSG_OTHER_COPY
    and names that copy): its sha256 into hex and its size into *size. */
bool evr_msg_other_copy(const evr_msg_t *msg, char hex[65], uint64_t *size);

/*  Whether msg is the broker's answer to a fetch while it reads (or is
    busy before reading) its copy's sha256: `not_found` beginning
    EVR_MSG_READING or EVR_MSG_BUSY_READING. */
bool evr_msg_reading(const evr_msg_t *msg);

/*  Every code above, NULL-terminated, with a sentence each (for docs). */
extern const char *const evr_msg_codes[][2];

/*  Whether a runner state (a `runner` message's) is one of a runner not
    connected: lost (silent past its lease, or gone) or stopped (it said
    goodbye).  NULL counts as not connected. */
bool evr_msg_state_away(const char *state);

/*  Name of a message type ("submit"), or NULL. */
const char *evr_msgtype_name(evr_msgtype_t t);
/*  Type of a name, EVR_MSG_NONE when unknown. */
evr_msgtype_t evr_msgtype_parse(const char *name);
/*  Field table of a message type, or NULL. */
const evr_rectype_t *evr_msgtype_fields(evr_msgtype_t t);
/*  One line saying who sends the type to whom ("client -> broker"). */
const char *evr_msgtype_direction(evr_msgtype_t t);

/*  Heap messages: new (zeroed, with type), destroy frees all. */
evr_msg_t *evr_msg_new(evr_msgtype_t type);
void evr_msg_destroy(evr_msg_t **self_p);

/*  Frees everything msg holds and zeroes it (for messages on the stack,
    e.g. filled by evr_msg_decode). */
void evr_msg_clear(evr_msg_t *msg);

/*  Writes the header frame text for msg->type into buf (NUL-terminated,
    at most EVR_MSG_HEADER_MAX bytes). */
void evr_msg_header(evr_msgtype_t type, char buf[EVR_MSG_HEADER_MAX]);

/*  Encodes the body of msg; caller owns *buf. */
void evr_msg_encode(const evr_msg_t *msg, uint8_t **buf, size_t *len);

/*  Decodes a message from its header frame (hdr, hlen bytes, not
    NUL-terminated) and body.  msg must be zeroed.  On error msg is left
    zeroed, err names the field or the reason, and *code (if not NULL) is
    set to the EVR_CODE_* to answer with. */
evr_rc_t evr_msg_decode(const char *hdr, size_t hlen, const uint8_t *body, size_t blen,
                        evr_msg_t *msg, const char **code, evr_err_t *err);

/*  What can still be read of a message evr_msg_decode refused, so that
    its receiver can answer for the job it concerns: a runner records a
    `dispatch` it cannot read (a spec queued by a broker of another
    version) as refused (runner/evr_daemon.c). */
typedef struct {
    evr_msgtype_t type;         /* the header's; EVR_MSG_NONE: it names no type */
    char job[EVR_ULID_LEN + 1]; /* the body's `job`; "": none, or not a valid ULID */
    /* a dispatch's `spec` decoded alone, by the spec's own field table but
       not the whole-spec validation; NULL when even that refuses it */
    evr_spec_t *spec;
    /* its `pipeline` when that is a name ([A-Za-z0-9][A-Za-z0-9_.-]*,
       at most 64 bytes), read even when spec is NULL; "": none */
    char pipeline[EVR_SPEC_MAX_NAME + 1];
} evr_msg_peek_t;

/*  Reads hdr and body as evr_msg_decode would, leniently: the header's
    type, then of the body's top-level map only `job` and (of a dispatch)
    `spec`, every other key skipped whatever it holds.  Never fails: what
    cannot be read stays empty.  Release with evr_msg_peek_clear. */
void evr_msg_peek(const char *hdr, size_t hlen, const uint8_t *body, size_t blen,
                  evr_msg_peek_t *peek);
/*  Frees peek->spec and zeroes peek (one never filled too, if zeroed). */
void evr_msg_peek_clear(evr_msg_peek_t *peek);

#endif
