/*  evr_exec.h: the executor interface, the one way the engine runs steps.

    An executor runs a step's script as a "unit" (a podman container, a
    host process group) named by the engine (evrun-<job>-<step>-<attempt>,
    deterministic, so that recovery finds it again), in a per-job
    workspace (a podman volume mounted at /workspace, a host directory that
    is the working directory).  The engine (evr_engine.c, evr_step.c),
    recovery (evr_recover.c) and preparation (evr_prepare.c) use this
    header and nothing of a backend: podman's strings, URLs and commands
    stay in evr_exec_podman.c, the host's pids and files in
    evr_exec_process.c.

    Every operation is asynchronous: it starts, and reports its outcome
    once to its callback from a turn of the loop (evr_loop), never from
    inside the call itself.  A backend keeps the promises below for each
    operation; the engine's unit tests hold a fake executor to them.

    Backends: evr_exec_podman_new (evr_exec_podman.h) and
    evr_exec_process_new (evr_exec_process.h).
*/
#ifndef EVR_EXEC_H_INCLUDED
#define EVR_EXEC_H_INCLUDED

#include "evr_loop.h"
#include "evr_spec.h"

typedef struct evr_exec evr_exec_t;

/*  What became of a unit, in the backend's neutral words. */
typedef enum {
    EVR_EXEC_ABSENT = 0,    /* no such unit */
    EVR_EXEC_CREATED,       /* created, never started */
    EVR_EXEC_RUNNING,       /* started and not exited (stopping included) */
    EVR_EXEC_PAUSED,        /* frozen by pause */
    EVR_EXEC_EXITED,        /* exited: exit_code holds how */
} evr_exec_state_t;

const char *evr_exec_state_name(evr_exec_state_t s);

/*  The outcome of an operation.  rc EVR_OK, or EVR_ERR_PODMAN (a podman
    backend) / EVR_ERR_IO (a host backend) with msg saying why in the
    backend's words (valid during the callback only).  The other fields
    are per operation; pointers are valid during the callback only. */
typedef struct {
    evr_rc_t rc;
    const char *msg;
    bool not_found;         /* the unit or workspace does not exist */
    bool exists;            /* create: the name is taken already */
    bool transport;         /* the backend could not be reached or the
                               stream broke (not an answer about the unit) */
    const char *id;         /* create, inspect: the unit's id (podman's
                               container id, the process's pid) */
    const char *names;      /* list, workspace_list: names, one per line */
    evr_exec_state_t state; /* inspect */
    int64_t exit_code;      /* wait; inspect when EXITED.  128+N for a
                               unit ended by signal N, as a shell says */
    int signal;             /* wait, inspect when EXITED: N when signal N ended
                               the unit, 0 when it exited or that is not known
                               (podman: its 128+N is also what a program that
                               exits with that status gives) */
    bool oom_killed;        /* wait, inspect: the kernel's OOM killer ended it (podman:
                               or SIGKILL under a memory limit: podman 4.3 on
                               cgroup v1 does not tell an OOM kill) */
    uint64_t started_at;    /* inspect: wall ns of its start (0: not started) */
    uint64_t finished_at;   /* inspect, EXITED: wall ns of its end (0: not known);
                               wait: of an end seen, when it still failed */
    bool lost;              /* inspect, EXITED: without an exit status (a host unit
                               whose supervisor was killed): what ran is ended,
                               how is not known; wait, logs: failed so */
    const char *digest;     /* pull: the image's manifest digest (may be NULL) */
    uint64_t size;          /* pull: bytes of the image (0: unknown) */
    bool pulled;            /* pull: the registry was asked (not only found present) */
} evr_exec_result_t;

/*  A line of a pull's progress (pull). */
typedef void (evr_exec_line_fn)(const char *text, void *arg);

typedef void (evr_exec_fn)(const evr_exec_result_t *r, void *arg);
/*  Output of a unit: stream 1 stdout, 2 stderr, each stream in order. */
typedef void (evr_exec_output_fn)(int stream, const uint8_t *data, size_t len, void *arg);
/*  A piece of a tar stream (get); false aborts the copy (its callback
    then reports an error). */
typedef bool (evr_exec_data_fn)(const uint8_t *data, size_t len, void *arg);

/*  Where a unit finds the job's workspace.  WORKSPACE: at /workspace, its
    working directory (a host backend: the workspace directory).  JOB
    (a pipeline with a source; podman only): the workspace at /job, the
    working directory /job/src, and the job's CI area (put with
    EVR_EXEC_AREA_CI) read-only at /job/ci. */
typedef enum {
    EVR_EXEC_LAYOUT_WORKSPACE = 0,
    EVR_EXEC_LAYOUT_JOB,
} evr_exec_layout_t;

/*  What a put fills: the job's workspace, or its CI area (the JOB
    layout's /job/ci; removed with the workspace). */
typedef enum {
    EVR_EXEC_AREA_WORKSPACE = 0,
    EVR_EXEC_AREA_CI,
} evr_exec_area_t;
/*  A cache mounted into a unit: the backend's named volume at dest. */
typedef struct {
    const char *volume;         /* evrun-cache-...: evr_cache.h names them */
    const char *dest;           /* absolute path in the unit */
} evr_exec_mount_t;

/*  What a step's unit is made of. */
typedef struct {
    const char *name;           /* evrun-<job>-<step>-<attempt> */
    const char *job_id;         /* its workspace's (workspace_create) */
    const char *image;          /* podman: the image; ignored by a host backend */
    const char *script;         /* run with /bin/sh -c */
    const evr_strmap_t *env;    /* may be NULL */
    uint32_t network;           /* podman: EVR_NETWORK_NONE, _BRIDGE or _HOST
                                   (evr_spec_step_network); ignored by a host
                                   backend */
    const evr_limits_t *limits; /* the step's (evr_spec_limits_merge); NULL or not
                                   present: none.  podman: cpus, memory, pids
                                   of the container; process: setrlimit of
                                   the step's processes (nofile, nproc, cpu,
                                   memory) */
    evr_exec_layout_t layout;   /* a backend without it fails the create */
    const evr_exec_mount_t *mounts;   /* podman: caches; a host backend has none
                                         (the spec refuses caches there) */
    uint32_t nmounts;
    bool mounts_readonly;       /* the caches mounted read-only (an untrusted step) */
    const char *output;         /* NULL, or a file name relative to the workspace root
                                   (as get takes it): the unit gets EVRUN_OUTPUT, that
                                   file's path as the unit sees it (podman /workspace/F
                                   or /job/F, process WORKSPACE_DIR/F) */
    /*  The step's control channel: a host directory holding control.sock
        and bin/evrun-job, or NULL.  podman: mounted read-only at
        /run/evrun, EVRUN_CONTROL=/run/evrun/control.sock, the script run
        with /run/evrun/bin first in PATH; a host backend:
        EVRUN_CONTROL=DIR/control.sock, DIR/bin first in PATH. */
    const char *control_dir;
} evr_exec_spec_t;

typedef struct {
    const char *name;           /* "podman", "process": the pipeline's `executor` */

    /*  Frees the backend.  Operations still in flight are dropped: their
        callbacks are not called. */
    void (*destroy)(evr_exec_t *ex);

    /*  Creates the unit, not started.  r->exists when the name is taken
        (by a unit a killed runner made: the engine inspects it). */
    void (*create)(evr_exec_t *ex, const evr_exec_spec_t *spec, evr_exec_fn *fn, void *arg);
    /*  Starts a created unit.  Output before attach's head is not lost
        only if attach came first: the engine attaches, then starts. */
    void (*start)(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg);
    /*  Follows the output of a created or running unit from its first
        byte: head once the stream is set up (start only then), out per
        piece, done once when the output has ended (the unit exited and
        every byte was passed on) or the stream failed (r->rc).  Returns a
        handle for detach, valid until done is called. */
    void *(*attach)(evr_exec_t *ex, const char *name, evr_exec_output_fn *out,
                    evr_exec_fn *head, evr_exec_fn *done, void *arg);
    /*  Stops an attach or logs; its done is called (with an error),
        possibly from inside this call. */
    void (*detach)(evr_exec_t *ex, void *handle);
    /*  Recovery: the output from[0] bytes into stdout and from[1] into
        stderr on, not followed.  Once the unit has exited the read is
        whole (done: the output has ended).  so_far (it may still run):
        what is passed on is a prefix, per stream, of its final output (a
        record that may be half-written is held back for a later read). */
    void *(*logs)(evr_exec_t *ex, const char *name, const uint64_t from[2], bool so_far,
                  evr_exec_output_fn *out, evr_exec_fn *done, void *arg);
    /*  Once the unit has exited: r->exit_code, r->signal, r->oom_killed.
        r->not_found when it is gone. */
    void (*wait)(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg);
    /*  What the unit is: r->state (ABSENT with r->not_found), r->id,
        r->exit_code, r->signal, r->oom_killed, r->started_at. */
    void (*inspect)(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg);
    /*  Freezes / thaws a running unit. */
    void (*pause)(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg);
    void (*resume)(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg);
    /*  SIGTERM to the whole unit, SIGKILL after grace_s seconds; with
        grace_s < 0, SIGKILL now.  fn may be NULL. */
    void (*stop)(evr_exec_t *ex, const char *name, int grace_s, evr_exec_fn *fn, void *arg);
    /*  Removes the unit (killing what still runs) and what the backend
        kept of it (its log).  fn may be NULL. */
    void (*remove)(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg);
    /*  Names of the units whose name starts with prefix (r->names). */
    void (*list)(evr_exec_t *ex, const char *prefix, evr_exec_fn *fn, void *arg);

    /*  The job's workspace: made empty (r->exists when it is there
        already: a recovered job's), removed with what is in it (and its
        CI area), listed
        (r->names: the job ids of the workspaces this backend holds, as
        the backend spells them: compare them without case). */
    void (*workspace_create)(evr_exec_t *ex, const char *job_id, evr_exec_fn *fn, void *arg);
    void (*workspace_remove)(evr_exec_t *ex, const char *job_id, evr_exec_fn *fn, void *arg);
    void (*workspace_list)(evr_exec_t *ex, evr_exec_fn *fn, void *arg);
    /*  Unpacks the tar archive tar_file (which stays until fn is called)
        at the root of the job's workspace, or of its CI area (a backend
        without one answers an error).  image: what a podman backend may
        use to reach the volume (the first step's image). */
    void (*put)(evr_exec_t *ex, const char *job_id, evr_exec_area_t area, const char *image,
                const char *tar_file, evr_exec_fn *fn, void *arg);
    /*  Copies path (relative to the workspace root: /workspace, or /job
        in the JOB layout the unit was created with) out, as it is after
        the unit name ran (the unit is not removed yet), as a tar stream
        holding path's last component, to data. */
    void (*get)(evr_exec_t *ex, const char *name, const char *job_id, evr_exec_layout_t layout,
                const char *path, evr_exec_data_fn *data, evr_exec_fn *fn, void *arg);

    /*  Makes image present as policy says (EVR_PULL_MISSING: pull it if
        the backend's storage lacks it; _ALWAYS: pull it; _NEVER: only
        check that it is there), before a unit of it is created.  auth:
        "user:password" for the image's registry, or NULL (the backend's
        own credentials).  line (may be NULL) gets each line of progress;
        fn: r->id (the image's), r->digest, r->size, r->pulled; an error's
        r->msg names the image and says the registry's words.  Returns a
        handle for pull_cancel, valid until fn is called.  NULL (both) in
        a backend without images (the process executor). */
    void *(*pull)(evr_exec_t *ex, const char *image, uint32_t policy, const char *auth,
                  evr_exec_line_fn *line, evr_exec_fn *fn, void *arg);
    /*  Stops a pull under way: its fn is called with an error, possibly
        from inside this call. */
    void (*pull_cancel)(evr_exec_t *ex, void *handle);

    /*  Caches (NULL in a backend without them): the host directory that
        holds the job's workspace (job_id) or the cache volume (volume;
        the other NULL) in r->names, r->not_found when there is none; and
        a cache's removal (with what it holds). */
    void (*dir)(evr_exec_t *ex, const char *job_id, const char *volume, evr_exec_fn *fn,
                void *arg);
    void (*cache_remove)(evr_exec_t *ex, const char *volume, evr_exec_fn *fn, void *arg);
    /*  Whether a unit created without a job id (spec job_id NULL) runs
        all the same, in an empty workspace of its own that goes with it
        (podman: the container's own /workspace, no volume).  The engine
        then makes no workspace for a job that shares nothing between
        units: one step, no resources, no retry, no artifacts. */
    bool own_workspace;

    /*  Wording for messages: what a unit is called ("container",
        "process"), what the job's workspace is called ("/workspace", "the
        workspace directory": "copying into WORD", "into PATH in WORD"),
        and how an operator removes a unit by hand (into buf, e.g.
        "podman rm -f NAME"). */
    const char *unit_word;
    const char *workspace_word;
    void (*remove_hint)(const evr_exec_t *ex, const char *name, char *buf, size_t size);
    /*  One line for the start banner ("podman unix:///run/podman.sock"). */
    const char *(*describe)(const evr_exec_t *ex);
    /*  Why this backend cannot apply the cgroup limits (cpus, memory,
        pids) of a step, or NULL when it can (podman: rootless on cgroups
        v1, where podman ignores them with a warning; evr_podman_host.h:
        may wait for the service's answer, once).  NULL: it can. */
    const char *(*no_cgroup_limits)(evr_exec_t *ex);
} evr_exec_ops_t;

/*  Every backend's object starts with this. */
struct evr_exec {
    const evr_exec_ops_t *ops;
    evr_loop_t *loop;
};

/*  Whether every step of spec can have its limits on ex: false
    (EVR_ERR_CONFIG in err, naming the step, the key and why) when a step
    asks for one that ex->ops->no_cgroup_limits keeps it from; true for a
    NULL ex.  Asks the backend only for a spec with limits. */
bool evr_exec_limits_ok(evr_exec_t *ex, const evr_spec_t *spec, evr_err_t *err);

/*  Frees ex through its backend; NULL-safe, sets *ex_p = NULL. */
void evr_exec_destroy(evr_exec_t **ex_p);

/*  The executor of a NULL-terminated list with that name, or NULL. */
evr_exec_t *evr_exec_find(evr_exec_t *const *list, const char *name);

#endif
