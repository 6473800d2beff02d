/*  evr_spec.h: the pipeline specification.

    The spec is what a pipeline file says once loaded (evr_yaml.h) and what
    a `submit` carries on the wire: the same structs and the same field
    tables (evr_spec_type and its sub-tables) serve the YAML loader, the
    msgpack codec and JSON output.  evr_spec_validate() does the checks a
    table cannot express (unique step names, known `needs`, no cycles, safe
    paths) and evr_spec_bind_args() resolves `args` against `-a K=V`.
*/
#ifndef EVR_SPEC_H_INCLUDED
#define EVR_SPEC_H_INCLUDED

#include "evr_diag.h"
#include "evr_field.h"

/*  Fixed limits of a pipeline (also enforced on the wire). */
#define EVR_SPEC_MAX_STEPS 256
#define EVR_SPEC_MAX_NAME 64        /* pipeline, step, arg, resource names */
#define EVR_SPEC_MAX_RUN 65536      /* bytes of one step's script */
#define EVR_SPEC_MAX_PATH 1024
#define EVR_SPEC_MAX_URL 2048
/*  Largest spec as msgpack (evr_codec_size of evr_spec_type): 1 MiB.  A
    job's job.accepted carries its spec and args (at most 64 entries of
    4096-byte strings), so under this bound it always fits in one `events`
    message (EVR_MSG_MAX_BYTES, 4 MiB), even alone in a batch.  The one
    check is evr_spec_check_size(): the YAML loader (validate, submit,
    run), the broker at submit (too_large) and the runner at dispatch (the
    job fails) call it. */
#define EVR_SPEC_MAX_BYTES (1u << 20)

typedef struct {
    char *name;         /* key of the args map */
    char *def;          /* "default"; NULL when the arg must be given */
    char *description;
} evr_arg_t;

typedef struct {
    char *name;
    char *url;          /* http:// or https:// */
    char *path;         /* relative to /workspace */
    char *secret;       /* a secret holding USER:PASSWORD (basic) or a token (bearer) */
} evr_resource_t;

typedef struct {
    bool present;
    evr_u32opt_t limit; /* waiting jobs of this pipeline; unset: the broker's limit */
    char *strategy;     /* "append" (default), "replace" or "partitioned_replace" */
    char *partition_by; /* partitioned_replace: the name of an arg */
    bool interrupt;     /* replace*: a submit cancels the running jobs too */
} evr_queue_t;

typedef struct {
    bool present;
    evr_strlist_t on;   /* lost, failed, timed_out */
    uint32_t max;       /* further attempts */
} evr_retry_t;

/*  Resource limits of a pipeline's steps (`limits:` of the pipeline,
    and of a step, which overrides it key by key: evr_spec_limits_merge);
    0 or NULL = no limit.  Which executor takes which key
    (evr_spec_validate refuses the others):
      cpus    podman: CPU time of the container, in CPUs ("1.5")
      memory  podman: the container's memory (cgroup);
              process: address space per process (RLIMIT_AS)
      pids    podman: processes and threads of the container (cgroup)
      nofile, nproc, cpu   process: setrlimit of each process */
typedef struct {
    bool present;
    uint64_t nofile;    /* RLIMIT_NOFILE: open files per process */
    uint64_t nproc;     /* RLIMIT_NPROC: processes of the runner's user */
    uint64_t cpu;       /* ms; RLIMIT_CPU (whole seconds, rounded up) per process */
    uint64_t memory;    /* bytes */
    char *cpus;         /* a decimal number of CPUs, at most 3 decimals: "0.5", "2" */
    uint64_t pids;
} evr_limits_t;

/*  A git source: the commit a ref names, checked out on the runner
    through its cache of repositories. */
typedef struct {
    bool present;
    char *url;          /* https, http, git, ssh or file URL; no password in it */
    char *ref;          /* branch, tag or full SHA; NULL: the remote's HEAD */
    uint32_t depth;     /* commits fetched; 0 = the whole history */
    bool submodules;    /* the submodules of the commit too (one level) */
    char *secret;       /* a secret holding USER:PASSWORD (or a token) for http(s) */
} evr_git_t;

/*  `on: {github: {events, branches}}` (evr_spec_on.c): the GitHub webhooks
    that start a registered pipeline through evrun-gateway. */
typedef struct {
    bool present;
    evr_strlist_t events;       /* push, pull_request, workflow_job; none: push */
    evr_strlist_t branches;     /* shell patterns; none: every branch */
} evr_on_github_t;

typedef struct {
    bool present;
    evr_on_github_t github;
} evr_on_t;

/*  The GitHub events `on.github.events` may name, NULL-terminated. */
extern const char *const evr_github_events[];

/*  A list key's check (retry.on, on.github.events): NULL when every item
    of list is one of names (NULL-terminated), else the first other one
    said as the enum errors say it, `expected a list of: lost, failed,
    timed_out, got "wifi"` (with "; did you mean X?" for a near miss), in
    a buffer of this thread's that the next call overwrites. */
const char *evr_spec_list_problem(const evr_strlist_t *list, const char *const *names);
/*  Whether item i of list is written before it too: each list where a
    repeat means nothing (labels, secrets, needs, artifact paths, matrix
    values, triggers, retry.on, on.github's lists) says so at the item.
    The whole spec's check (evr_spec_validate: a spec loaded or
    received), not a field's, which decoding runs too: a log of an older
    version, which took repeats, still reads. */
bool evr_spec_item_repeats(const evr_strlist_t *list, uint32_t i);

/*  Where a job's source comes from (`source:`, `ci_source:`): one of git,
    copy (a directory: the submitter's, sent as a tar, or the runner's with
    --exec) or tarball (an http(s) URL, with the secret its server asks
    for beside it, as git's is beside its url); not present = none. */
typedef struct {
    bool present;
    evr_git_t git;
    char *copy;
    char *tarball;
    char *secret;       /* tarball only: USER:PASSWORD (basic) or a token (bearer) */
} evr_source_t;

/*  Most bytes of a `copy:` source: the tar a client sends in its submit,
    and the unpacked contents of any source. */
#define EVR_SPEC_MAX_COPY_BYTES (64u << 20)
#define EVR_SPEC_MAX_REF 256
/*  Image pull policy (`pull:`) and network (`network:`) of a pipeline and
    of a step.  0 is "not set": a step takes the pipeline's, a pipeline
    the default (missing; bridge).  Podman only. */
enum {
    EVR_PULL_UNSET = 0,
    EVR_PULL_MISSING = 1,   /* pull when the runner's storage lacks the image */
    EVR_PULL_ALWAYS = 2,    /* pull once per job, before the first step that uses it */
    EVR_PULL_NEVER = 3,     /* never: a missing image fails the step */
};
extern const char *const evr_pull_names[];
enum {
    EVR_NETWORK_UNSET = 0,
    EVR_NETWORK_NONE = 1,   /* a loopback interface only */
    EVR_NETWORK_BRIDGE = 2, /* podman's default bridge: outbound through NAT */
    EVR_NETWORK_HOST = 3,   /* the runner host's network namespace */
};
extern const char *const evr_network_names[];
/*  When a step's artifacts are copied out: after it succeeded (default),
    after it failed (timed out included; a cancelled step keeps none), or
    either way. */
enum {
    EVR_ARTIFACTS_ON_SUCCESS = 0,
    EVR_ARTIFACTS_ON_FAILURE = 1,
    EVR_ARTIFACTS_ALWAYS = 2,
};

/*  A step's `artifacts`: the map form, or a list of paths standing for
    {paths: LIST} (when on_success). */
typedef struct {
    bool present;
    evr_strlist_t paths;    /* relative to /workspace */
    uint32_t when;          /* EVR_ARTIFACTS_* */
} evr_artifacts_t;

/*  One entry of `cache`: a named volume per pipeline and key (the key's
    `{{ sha256 FILE }}` resolved at the step's start), mounted at path. */
typedef struct {
    char *key;
    char *path;         /* absolute, or relative to /workspace */
} evr_cache_t;

/*  Most `cache` entries of a pipeline or a step; the longest key. */
#define EVR_SPEC_MAX_CACHES 16
#define EVR_SPEC_MAX_CACHE_KEY 512
/*  Pipelines one spec's `triggers:` names at most. */
#define EVR_SPEC_MAX_TRIGGERS 64

/*  One key of a step's `matrix`: an environment variable name and its
    values.  The loader (evr_spec_expand) turns a step with a matrix into
    one step per combination; a spec on the wire never holds one. */
typedef struct {
    char *name;             /* the map key: an environment variable name */
    evr_strlist_t values;   /* each letters, digits, _ . - */
} evr_matrix_t;

/*  Bounds of a matrix: keys per step, values per key, combinations per
    step (the pipeline's EVR_SPEC_MAX_STEPS holds after expansion too). */
#define EVR_SPEC_MAX_MATRIX_KEYS 8
#define EVR_SPEC_MAX_MATRIX_VALUES 64
#define EVR_SPEC_MAX_MATRIX_COMBOS 64
/*  Most further attempts of a step (retry.max): each is a container. */
#define EVR_SPEC_MAX_RETRY 100

typedef struct {
    char *name;
    char *run;          /* shell script, run with /bin/sh -c */
    char *image;        /* defaults to the pipeline's image */
    evr_strlist_t needs;
    evr_reclist_t matrix;   /* of evr_matrix_t; empty once expanded */
    uint64_t timeout;   /* ms; 0 = none */
    evr_artifacts_t artifacts;
    evr_strmap_t env;
    evr_retry_t retry;
    evr_limits_t limits;
    bool untrusted;     /* runs untrusted code (the source's): never given secrets */
    uint32_t pull;      /* EVR_PULL_*; UNSET: the pipeline's */
    uint32_t network;   /* EVR_NETWORK_*; UNSET: the pipeline's */
    evr_reclist_t cache;    /* of evr_cache_t, over the pipeline's (same path: the step's) */
    bool allow_failure;     /* its failure (failed, timed out, lost) does not fail the job */
    uint32_t when;          /* EVR_WHEN_*: after what it runs */
    bool present;           /* the pipeline's on_error only (evr_on_error_type): it is set */
} evr_step_t;

/*  When a step runs (`when:`), once the steps before it (a sequence), or
    its needs (a DAG; with no needs, every step before it in the file)
    are over: when no step has failed (default); only when one has (the
    job is failing, not cancelled nor timed out); or in every case, after
    a cancel and a timeout of the job too (within EVR_WHEN_GRACE_MS). */
enum {
    EVR_WHEN_ON_SUCCESS = 0,
    EVR_WHEN_ON_FAILURE = 1,
    EVR_WHEN_ALWAYS = 2,
};
extern const char *const evr_when_names[];
/*  What a `when: always` step (or on_error) that runs after a cancel or
    a timeout of its job may take: its own timeout, at most this. */
#define EVR_WHEN_GRACE_MS 60000u
/*  The name of the pipeline's on_error step in events and status: no
    step of the pipeline may take it. */
#define EVR_ON_ERROR_NAME "on_error"

enum {
    EVR_ON_FAILURE_STOP = 0,    /* stop the steps still running (default) */
    EVR_ON_FAILURE_FINISH = 1,  /* let them finish; nothing new starts */
};

/*  What runs the steps: a podman container each (default), or a host
    process group (a runner must offer it: the label executor:process). */
enum {
    EVR_EXECUTOR_PODMAN = 0,
    EVR_EXECUTOR_PROCESS = 1,
};
extern const char *const evr_executor_names[];
/*  A runner has the label executor:NAME for each executor it offers
    (executor:podman, executor:process); the broker sends a job only to a
    runner that offers its pipeline's executor (evr_spec_runner_has_label).
    A pipeline cannot name such a label: it is no name. */
#define EVR_EXECUTOR_LABEL_PREFIX "executor:"
#define EVR_EXECUTOR_PODMAN_LABEL "executor:podman"
#define EVR_EXECUTOR_PROCESS_LABEL "executor:process"

typedef struct {
    char *pipeline;     /* the pipeline's name */
    uint32_t executor;  /* EVR_EXECUTOR_* */
    char *image;
    evr_strlist_t labels;
    uint32_t concurrency;   /* running jobs of this pipeline; 0 = unlimited */
    uint32_t parallel;      /* steps of one job at once; 0 = runner default */
    bool dag;               /* the steps form a DAG though none has needs (a file's needs: []) */
    uint32_t on_failure;    /* EVR_ON_FAILURE_*: what running steps do when one fails */
    evr_step_t on_error;    /* run once the job has failed (present); name unused */
    evr_queue_t queue;
    uint64_t start_delay;   /* ms a job waits after its submit before dispatch; 0 = none */
    uint64_t timeout;       /* ms for the whole job; 0 = none */
    evr_strmap_t env;
    evr_reclist_t args;     /* of evr_arg_t */
    evr_strlist_t secrets;
    evr_reclist_t resources;   /* of evr_resource_t */
    evr_reclist_t steps;       /* of evr_step_t */
    evr_source_t source;       /* untrusted code, at /job/src */
    evr_source_t ci_source;    /* trusted CI code, at /job/ci, read-only */
    uint32_t pull;          /* EVR_PULL_*; UNSET: missing */
    uint32_t network;       /* EVR_NETWORK_*; UNSET: bridge */
    char *registry_auth;    /* a secret holding user:password for the registries */
    evr_limits_t limits;    /* of every step; a step's own override key by key */
    evr_reclist_t cache;       /* of evr_cache_t: every step's */
    char *schedule;         /* cron expression (evr_cron.h): a registered pipeline's fires */
    char *tz;               /* `timezone`: IANA zone of schedule; NULL: UTC */
    uint32_t catchup;       /* EVR_CATCHUP_*: fires missed while the broker was down */
    evr_on_t on;            /* outside events that start a registered pipeline */
    evr_strlist_t triggers; /* registered pipelines a step may start (evrun-job trigger) */
} evr_spec_t;

/*  `catchup:` of a scheduled pipeline: after the broker was down over
    fire times, one job for them all (default), or none. */
enum { EVR_CATCHUP_ONE = 0, EVR_CATCHUP_NONE = 1 };
extern const char *const evr_catchup_names[];

extern const evr_rectype_t evr_spec_type;
extern const evr_rectype_t evr_step_type;
/*  The pipeline's `on_error`: a step's keys but `name` (its name is
    EVR_ON_ERROR_NAME), with a presence flag. */
extern const evr_rectype_t evr_on_error_type;
extern const evr_rectype_t evr_arg_type;
extern const evr_rectype_t evr_resource_type;
extern const evr_rectype_t evr_queue_type;
extern const evr_rectype_t evr_retry_type;
extern const evr_rectype_t evr_limits_type;
extern const evr_rectype_t evr_git_type;
extern const evr_rectype_t evr_source_type;
extern const evr_rectype_t evr_on_type;
extern const evr_rectype_t evr_on_github_type;

/*  Whether the job has the /job layout (a source or a CI source). */
bool evr_spec_has_source(const evr_spec_t *spec);
/*  The kind of a present source: "git", "copy" or "tarball" (NULL: none). */
const char *evr_source_kind(const evr_source_t *src);
/*  Where a present source comes from, by its kind: git's url, copy's
    directory or the tarball's URL (NULL: none). */
const char *evr_source_url(const evr_source_t *src);
extern const evr_rectype_t evr_artifacts_type;
extern const evr_rectype_t evr_cache_type;
extern const evr_rectype_t evr_matrix_type;

/*  Accessors for the i-th step, arg and resource. */
evr_step_t *evr_spec_step(const evr_spec_t *spec, uint32_t i);
evr_arg_t *evr_spec_arg(const evr_spec_t *spec, uint32_t i);
evr_resource_t *evr_spec_resource(const evr_spec_t *spec, uint32_t i);
/*  The i-th entry of a `cache` list (a spec's or a step's). */
evr_cache_t *evr_spec_cache(const evr_reclist_t *cache, uint32_t i);

/*  The label of a runner offering executor (EVR_EXECUTOR_*):
    EVR_EXECUTOR_PODMAN_LABEL or EVR_EXECUTOR_PROCESS_LABEL; NULL for a
    number this build does not know. */
const char *evr_executor_label(uint32_t executor);

/*  The label a runner needs, besides the spec's labels, to run spec: its
    executor's (evr_executor_label). */
const char *evr_spec_executor_label(const evr_spec_t *spec);

/*  Whether a runner with labels has label, as the broker matches a job's
    labels: it carries it, or label is EVR_EXECUTOR_PODMAN_LABEL and the
    runner carries no label starting with EVR_EXECUTOR_LABEL_PREFIX (a
    runner that names no executor offers podman only, as every runner did
    before runners named their executors). */
bool evr_spec_runner_has_label(const evr_strlist_t *labels, const char *label);

/*  What applies to step st of spec: its pull policy (EVR_PULL_MISSING,
    _ALWAYS or _NEVER) and network (EVR_NETWORK_NONE, _BRIDGE or _HOST),
    its own or else the pipeline's or else the default; its limits, the
    pipeline's with the step's keys over them, into *out (caller frees
    with evr_rec_free(&evr_limits_type, out)). */
uint32_t evr_spec_step_pull(const evr_spec_t *spec, const evr_step_t *st);
uint32_t evr_spec_step_network(const evr_spec_t *spec, const evr_step_t *st);
void evr_spec_limits_merge(const evr_spec_t *spec, const evr_step_t *st, evr_limits_t *out);

/*  `cpus` as thousandths of a CPU ("1.5" -> 1500); false when s is not a
    number above 0 and at most EVR_SPEC_MAX_CPUS with at most 3 decimals. */
#define EVR_SPEC_MAX_CPUS 1024
bool evr_spec_cpus_milli(const char *s, uint32_t *milli);
/*  The smallest memory limit podman accepts (6 MiB). */
#define EVR_SPEC_MIN_MEMORY (6u << 20)

/*  The largest numbers a spec may give, so that what the runner and the
    broker compute from them stays in range (evr_spec_range.c): a duration
    (timeout, start_delay, a step's timeout, limits.cpu) is at most 10
    years in ms, so ms * 10^6 added to any clock in ns is far below 2^63;
    limits.memory at most 1 PiB (podman takes an int64, RLIMIT_AS a
    rlim_t); nofile at most 2^30 (above the kernel's highest fs.nr_open);
    nproc and pids at most 4194304 (the kernel's PID_MAX_LIMIT: no more
    processes can exist). */
#define EVR_SPEC_MAX_DURATION_MS 315360000000ull
#define EVR_SPEC_MAX_MEMORY (1ull << 50)
#define EVR_SPEC_MAX_NOFILE (1ull << 30)
#define EVR_SPEC_MAX_PROCS 4194304ull

/*  Index of the step called name, or -1.  A walk over the steps: each
    step looked at counts in evr_spec_lookup_work. */
int evr_spec_step_index(const evr_spec_t *spec, const char *name);

/*  The steps evr_spec_step_index has looked at in this thread so far: the
    cost of the checks that look names up (256 steps each needing every
    step above it are 32640 needs; a check that looked a name up for each
    pair of a step's needs made that a billion).  A test bounds the
    difference across a call, where a time would measure the machine. */
uint64_t evr_spec_lookup_work(void);

/*  The steps a job of spec has: its steps, then on_error when present
    (named EVR_ON_ERROR_NAME); and the name of the i-th of them. */
uint32_t evr_spec_job_steps(const evr_spec_t *spec);
const char *evr_spec_job_step_name(const evr_spec_t *spec, uint32_t i);

/*  Heap spec: new (zeroed), destroy (frees fields and struct). */
evr_spec_t *evr_spec_new(void);
void evr_spec_destroy(evr_spec_t **self_p);

/*  Checks what the field tables cannot: names, uniqueness, `needs`
    references and cycles, images (every step of a podman pipeline has
    one; a process pipeline has none), paths and URLs.  Adds one error per
    problem to diag (positions come from its source map when the spec was
    loaded from YAML).  Returns EVR_OK or EVR_ERR_SPEC. */
evr_rc_t evr_spec_validate(const evr_spec_t *spec, evr_diag_t *diag);
/*  What only a pipeline file is told, not a spec on the wire (a stub in
    job.accepted carries no commands): a step's run that is empty or
    blank. */
void evr_spec_check_file(const evr_spec_t *spec, evr_diag_t *diag);
/*  The same for a spec whose matrices could not be expanded (an empty or
    bad matrix, reported by evr_spec_expand): every check but those that
    need every step's name (needs, duplicate names, cycles, a `when`
    step needed from above it). */
evr_rc_t evr_spec_validate_unexpanded(const evr_spec_t *spec, evr_diag_t *diag);

/*  Writes the path pre + i in decimal + post into buf (len bytes; cut as
    snprintf cuts), e.g. "steps[" 2 "].limits": the checks above name a
    step's path for each step, and snprintf's format parsing cost more
    than the rest of a submit's check of a small spec. */
void evr_spec_path_idx(char *buf, size_t len, const char *pre, uint32_t i, const char *post);

/*  The part of evr_spec_validate() about pull, network, registry_auth and
    limits (evr_spec_run.c): which executor takes which key. */
void evr_spec_validate_run(const evr_spec_t *spec, evr_diag_t *diag);

/*  The part of evr_spec_validate() about control flow (evr_spec_flow.c):
    on_error's keys and name, and a DAG whose `when: on_failure | always`
    step without needs (which waits for every step above it) is needed,
    directly or not, by a step above it (the latter only when names: the
    steps' names are all known, the matrices expanded). */
void evr_spec_validate_flow(const evr_spec_t *spec, bool names, evr_diag_t *diag);
/*  The part of evr_spec_validate() about `source` and `ci_source`
    (evr_spec_source.c). */
void evr_spec_validate_source(const evr_spec_t *spec, evr_diag_t *diag);
/*  Adds an error about path to diag unless url is an http:// or https://
    URL the runner may fetch and the job may keep: a host, no spaces or
    control characters, no credentials (they would be stored with the job
    and printed in its log; the error does not repeat them). */
void evr_spec_check_http_url(const char *url, const char *path, evr_diag_t *diag);
/*  Adds an error about path to diag when name (NULL: none) is not a valid
    secret name (an environment variable name, as under `secrets`): the
    rule of every key that names a secret the runner reads for a fetch
    (git.secret, a tarball's and a resource's secret). */
void evr_spec_check_secret_name(const char *name, const char *path, evr_diag_t *diag);
/*  The queue policy of a pipeline (evr_spec_queue.c), as the broker
    applies it. */
typedef enum {
    EVR_QUEUE_APPEND,
    EVR_QUEUE_REPLACE,
    EVR_QUEUE_PARTITIONED,  /* partitioned_replace */
} evr_queue_strategy_t;
evr_queue_strategy_t evr_spec_queue_strategy(const evr_spec_t *spec);
/*  The part of evr_spec_validate() about `queue` and `start_delay`:
    partition_by names one of the spec's args, is given exactly with
    partitioned_replace; interrupt only with a replace strategy. */
void evr_spec_validate_queue(const evr_spec_t *spec, evr_diag_t *diag);
/*  The part of evr_spec_validate() about the range of numbers
    (evr_spec_range.c): every duration and resource limit at most its
    EVR_SPEC_MAX_* above. */
void evr_spec_validate_range(const evr_spec_t *spec, evr_diag_t *diag);
/*  The partition of a job of spec with bound args (its value of
    partition_by); NULL when the strategy is not partitioned_replace. */
const char *evr_spec_queue_partition(const evr_spec_t *spec, const evr_strmap_t *args);

/*  The spec's size as msgpack against EVR_SPEC_MAX_BYTES: EVR_OK, or
    EVR_ERR_LIMIT with a message naming both sizes. */
evr_rc_t evr_spec_check_size(const evr_spec_t *spec, evr_err_t *err);

/*  A copy of spec that keeps what a job's record needs (the pipeline's
    name, executor, image and labels; each step's name and image, its
    script empty) and nothing else: what job.accepted carries in place of
    a spec over EVR_SPEC_MAX_BYTES.  The executor is kept so that the stub
    of a process pipeline (no image) still validates.  At most 256 steps
    of 64 + 512 bytes, so well under the limit.  Caller owns the result
    (evr_spec_destroy). */
evr_spec_t *evr_spec_stub(const evr_spec_t *spec);

/*  Checks given (from `-a K=V`) against the spec's args: every given name
    must be declared, every arg without default must be given.  Fills
    resolved (zeroed by the caller; caller frees its contents) with the
    value of every arg.  Returns EVR_OK or EVR_ERR_SPEC with errors in
    diag. */
evr_rc_t evr_spec_bind_args(const evr_spec_t *spec, const evr_strmap_t *given,
                            evr_strmap_t *resolved, evr_diag_t *diag);

/*  Parses "K=V" into a map entry; false when there is no '=' or K is not
    a valid name. */
bool evr_spec_parse_arg(const char *kv, evr_strmap_t *map);
/*  Adds "K=V" to map, each K once (a command line's -a, a ?arg=): 0
    added, -1 not K=V with K a valid name, 1 map holds K already (nothing
    changed: a second value would silently replace the first).  K is the
    first strcspn(kv, "=") bytes of kv. */
int evr_spec_add_arg(const char *kv, evr_strmap_t *map);

/*  Step order: fills order[] (spec->steps.n entries) with step indexes so
    that every step comes after the steps it needs.  Returns false when the
    graph has a cycle or an unknown need (validate reports which). */
bool evr_spec_topo_order(const evr_spec_t *spec, uint32_t *order);

/*  Expands every step with a `matrix` into one step per combination of
    its values (evr_spec_matrix.c): the first key varies slowest, keys in
    the order written; each step is named `NAME[K1=v1,K2=v2]`, has
    K1=v1... in its env, and takes the place of the written step (in
    order); a `needs` naming the written step names all of them.  Checks
    the matrix (keys are environment names not set in the step's env,
    values non-empty names, at most EVR_SPEC_MAX_MATRIX_* of each) and
    the pipeline's EVR_SPEC_MAX_STEPS after expansion, and refuses a '['
    in a written step name.  Moves diag's source map along (an expanded
    step's fields point at the written step) so that evr_spec_validate()
    run after it reports at the right lines.  Returns EVR_OK (spec
    expanded, no step has a matrix) or EVR_ERR_SPEC (spec unchanged,
    errors in diag). */
evr_rc_t evr_spec_expand(evr_spec_t *spec, evr_diag_t *diag);

/*  Whether the step named step is the one a user named want (`--step`):
    the same name, or want is a written matrix step's name (no '[') and
    step one of its combinations ("build" matches "build[OS=linux]"). */
bool evr_spec_step_matches(const char *want, const char *step);

/*  True when s is a step name: a name (evr_spec_name_ok) or an expanded
    matrix step's, NAME[K=v,...] (K an environment name, v a name), at
    most EVR_SPEC_MAX_NAME bytes in all. */
bool evr_spec_step_name_ok(const char *s);
/*  The form of step name s used in container and process unit names:
    '[' and ',' become '.', '=' becomes '-', a final ']' is dropped
    (`build[OS=linux,V=2]` -> `build.OS-linux.V-2`); a plain name is
    itself.  evr_spec_validate() refuses two steps of one form.  Caller
    frees. */
char *evr_spec_step_unit_form(const char *s);

/*  True when s is usable as a name (pipeline, step, resource):
    [A-Za-z0-9][A-Za-z0-9_.-]*, at most EVR_SPEC_MAX_NAME bytes. */
bool evr_spec_name_ok(const char *s);
/*  True when s is an environment variable name: [A-Za-z_][A-Za-z0-9_]*. */
bool evr_spec_env_name_ok(const char *s);
/*  What the runner gives a step under name, when it is one of the
    variables the runner sets over a step's env, args and secrets
    (README "What a job gets": EVRUN_OUTPUT, EVRUN_CONTROL,
    EVRUN_SOURCE_*, EVRUN_CI_SOURCE_*, EVRUN_FAILED_*,
    EVRUN_PREPARE_FAILED, EVRUN_OUT_*), what it is: a pipeline that
    names one is refused, rather than its value dropped.  NULL for any
    other name (EVRUN_JOB_ID and the others env may set are not). */
const char *evr_spec_env_runners(const char *name);
/*  NULL when p is a safe relative path inside the workspace, else why. */
const char *evr_spec_path_problem(const char *p);
/*  p (a relative path) without its empty and "." components: "./out/"
    and "out//." are "out"; "" for "." (the workspace itself).  An
    artifact path is copied and recorded as named, each file's recorded
    path in this form: the loader writes a file's paths so, and the whole
    spec's validation refuses another form.  Caller frees. */
char *evr_spec_path_tidy(const char *p);
/*  NULL when ref is a container image reference,
    [HOST[:PORT]/]NAME[/NAME]...[:TAG][@ALGORITHM:HEX] as podman parses
    it (NAME lower case, see evr_spec_image.c), else why, in words that
    may name a part of ref, in a buffer of this thread's that the next
    call overwrites. */
const char *evr_spec_image_problem(const char *ref);
/*  A `triggers:` item: a pipeline name, or `file:PATH`, PATH a file of
    the job's source (its ci_source when it has one) or a glob of them
    (fnmatch with FNM_PATHNAME: * ? [...] within a path component): NULL
    when item is one, else why (evr_spec_on.c). */
#define EVR_SPEC_TRIGGER_FILE "file:"
#define EVR_SPEC_MAX_TRIGGER_PATH 256
const char *evr_spec_trigger_problem(const char *item);
/*  NULL when path (given to `evrun-job trigger --file`) is a file a
    trigger may name: relative, 1-EVR_SPEC_MAX_TRIGGER_PATH bytes, no
    empty, "." or ".." component, no control or glob character, else why. */
const char *evr_spec_trigger_path_problem(const char *path);
/*  A cache key's pieces in order, to fn (may be NULL): literal text
    (file false) or the FILE of a `{{ sha256 FILE }}` (file true), s
    pointing into key, n bytes.  NULL when the key is well formed (at most
    four files, each a safe relative path, no other `{{`), else why. */
typedef void(evr_cache_piece_fn)(bool file, const char *s, size_t n, void *arg);
const char *evr_spec_cache_key_walk(const char *key, evr_cache_piece_fn *fn, void *arg);

#endif
