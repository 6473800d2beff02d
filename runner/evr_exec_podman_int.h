/*  evr_exec_podman_int.h: the podman executor's parts, shared by its
    files: evr_exec_podman.c (the call records and their answers, create,
    start, logs, inspect, pause, resume, stop, remove, list, workspaces,
    put, get, pulls) and evr_exec_podman_attach.c (attach, detach, and the
    exit of an attached unit read from conmon's exit file or by inspect,
    which answers its wait).
    Not for other modules: evr_exec_podman.h is the interface. */
#ifndef EVR_EXEC_PODMAN_INT_H_INCLUDED
#define EVR_EXEC_PODMAN_INT_H_INCLUDED

#include "evr_bundles.h"
#include "evr_conmon.h"
#include "evr_conmon_exit.h"
#include "evr_exec.h"
#include "evr_podman.h"
#include "evr_podman_host.h"
#include "evr_pulls.h"

typedef struct evr_pe_op evr_pe_op_t;
typedef struct evr_pe_unit evr_pe_unit_t;

typedef struct {
    evr_exec_t base; /* first: the evr_exec_t the engine holds */
    evr_podman_t *pm;
    char *describe;
    evr_podman_host_t *host; /* rootless? (ops.no_cgroup_limits) */
    evr_pe_op_t *ops;       /* records in flight */
    evr_pe_unit_t *units;   /* attached units whose exit is read before podman's wait */
    evr_pulls_t *pulls;     /* pulls, and the images they found a moment ago */
    evr_bundles_t *bundles; /* containers made, not attached yet: where conmon listens */
    bool rest_attach;       /* test hook EVR_TEST_REST_ATTACH=1: never conmon's socket */
    bool no_exit_files;     /* an exit file never came: exits by inspect from then on */
} evr_pe_t;

typedef enum {
    EVR_PE_PLAIN,
    EVR_PE_INSPECT,
    EVR_PE_WS_CREATE,
    EVR_PE_WS_LIST,
    EVR_PE_PUT,
    EVR_PE_WAIT
} evr_pe_kind_t;

/*  An attached unit: its exit, read from conmon's exit file (else by
    inspect) once its output ended, answers its wait before podman does.
    Goes once it has answered the wait, once it gave up (podman's wait
    answers then), or when the unit is removed. */
struct evr_pe_unit {
    evr_pe_t *pe;
    char *name;
    evr_pe_op_t *wait;   /* the wait not answered yet, or NULL */
    evr_pe_op_t *attach; /* the attach until its done, or NULL */
    evr_pe_op_t *probe;  /* the inspect under way, or NULL */
    evr_conmon_exit_t *exit; /* conmon's exit file, while it is read, or NULL */
    bool known;          /* its exit is known: exit_code, oom (or gone) */
    bool checking;       /* its exit read from the file, the service's socket looked at */
    int svc_tries;       /* looks at the service's socket that found it gone */
    char *gone;          /* the service went away for good: why, as the wait's answer */
    uint64_t read_ns;    /* mono ns the exit file was read */
    int file_tries;      /* reads of the exit file that found none */
    int tries;           /* inspects that showed it running */
    int64_t exit_code;
    bool oom_killed;
    uint64_t timer; /* the retry's or the early answer's, or 0 */
    evr_pe_unit_t *prev, *next;
};

struct evr_pe_op {
    evr_pe_t *pe;
    evr_pe_kind_t kind;
    evr_exec_fn *fn;
    evr_exec_fn *head;
    evr_exec_output_fn *out;
    evr_exec_data_fn *data;
    void *arg;
    void *call;           /* podman's handle of a stream (attach, logs) */
    evr_conmon_t *conmon; /* attach: conmon's socket, read directly (else call) */
    uint64_t timer;       /* attach: the turn of the head of conmon's socket, or 0 */
    int pending;          /* create: its init and inspect not answered yet */
    char *dir;            /* create: the container's bundle directory, or NULL */
    uint64_t from[2];     /* logs: bytes per stream the caller has; attach: passed on */
    uint64_t read[2];     /* logs: bytes per stream this read delivered */
    bool detached;        /* attach: the caller detached it */
    evr_pe_unit_t *unit;  /* attach, EVR_PE_WAIT: the unit whose exit it reads */
    bool sent;            /* EVR_PE_WAIT: asked of podman (else its unit answers it) */
    char *name;           /* EVR_PE_WS_*: the volume; EVR_PE_PUT: the helper container */
    char *tar_file;       /* EVR_PE_PUT */
    evr_rc_t put_rc;      /* EVR_PE_PUT: the outcome, reported once the helper is gone; */
    char *put_msg;        /* create: its init's failure */
    char *id;             /* create: the container's id, until the init's answer */
    char *body;           /* create: its JSON, sent again after a pull */
    char *image;          /* create: its image */
    evr_podman_fn *then;  /* create: the handler of its answer */
    evr_pe_op_t *prev, *next;
};

/*  The executor behind the engine's evr_exec_t. */
static inline evr_pe_t *
evr_pe(evr_exec_t *ex)
{
    return (evr_pe_t *) ex;
}

/*  A call record of kind, listed in pe's records in flight; fn (may be
    NULL) hears its outcome with arg.  Freed by evr_pe_op_free. */
evr_pe_op_t *evr_pe_op_new(evr_pe_t *pe, evr_pe_kind_t kind, evr_exec_fn *fn, void *arg);

/*  Unlists op and frees it, its timer and conmon stream with it. */
void evr_pe_op_free(evr_pe_op_t *op);

/*  The one callback of a call (arg: its record): its outcome to the
    record's fn, then the record goes. */
void evr_pe_done(const evr_podman_result_t *pr, void *arg);

/*  podman's answer in neutral words (valid while pr is). */
evr_exec_result_t evr_pe_result(const evr_podman_result_t *pr);

/*  Podman's state word s (NULL: none) as evr_exec_state_t. */
evr_exec_state_t evr_pe_state(const char *s);

/*  The attached unit of name, or NULL (evr_exec_podman_attach.c). */
evr_pe_unit_t *evr_pe_unit_find(evr_pe_t *pe, const char *name);

/*  Frees u; a wait it holds and has not answered is sent to podman now. */
void evr_pe_unit_free(evr_pe_unit_t *u);

/*  evr_exec.h's attach, detach and wait of the podman executor. */
void *evr_pe_attach(evr_exec_t *ex, const char *name, evr_exec_output_fn *out, evr_exec_fn *head,
                    evr_exec_fn *done, void *arg);
void evr_pe_detach(evr_exec_t *ex, void *handle);
void evr_pe_wait(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg);

/*  A log read from the start (op->out given): per stream, the bytes
    before op->from[] are skipped, the rest passed on. */
void evr_pe_log_out(int stream, const uint8_t *data, size_t len, void *arg);

#endif
