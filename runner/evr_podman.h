/*  evr_podman.h: the libpod REST calls evrun makes, asynchronous.

    Each call starts an HTTP request on the podman socket and reports its
    outcome to a callback from a turn of the event loop (evr_loop) the
    driver was made on.  The engine does not use it directly: the podman
    executor (evr_exec_podman.c) does.  A failing call reports
    podman's own error `message` ("no such container", "image not known")
    or the transport's reason (socket missing, timeout) together with the
    URL it tried.  Every call but the output stream has a timeout.
*/
#ifndef EVR_PODMAN_H_INCLUDED
#define EVR_PODMAN_H_INCLUDED

#include "evr_field.h"
#include "evr_loop.h"

typedef struct evr_podman evr_podman_t;

/*  Outcome of a call: rc EVR_OK or EVR_ERR_PODMAN (msg says why), the HTTP
    status, and per call: the container id (create), the exit code (wait),
    the state string "created", "running", "paused", "exited", the id, the
    exit code, OOMKilled and StartedAt (inspect).  An answer not of the
    shape podman sends is an error (evr_podman_reply.h). */
typedef struct {
    evr_rc_t rc;
    const char *msg;
    long status;
    const char *id;
    int64_t exit_code;
    const char *state;
    bool not_found;     /* the container, volume or image does not exist */
    bool exists;        /* create: the name is taken already */
    bool oom_killed;    /* inspect: State.OOMKilled */
    uint64_t started_at;    /* inspect: State.StartedAt, wall ns (0: never started) */
    uint64_t finished_at;   /* inspect: State.FinishedAt, wall ns (0: not finished) */
    const char *dir;        /* inspect: StaticDir, the bundle directory holding conmon's
                               attach socket, or NULL */
    bool rootless;              /* info: host.security.rootless */
    const char *cgroup_version; /* info: host.cgroupVersion ("v1", "v2") */
    const char *cgroup_manager; /* info: host.cgroupManager ("" when absent) */
} evr_podman_result_t;

typedef void (evr_podman_fn)(const evr_podman_result_t *r, void *arg);
/*  Output of a container: stream 1 stdout, 2 stderr, in arrival order. */
typedef void (evr_podman_output_fn)(int stream, const uint8_t *data, size_t len, void *arg);

/*  What a step's container is made of. */
typedef struct {
    const char *name;           /* evrun-<job>-<step>-<attempt> */
    const char *image;
    const char *script;         /* run with /bin/sh -c */
    const evr_strmap_t *env;    /* may be NULL */
    const char *volume;         /* mounted at /workspace (job_layout: /job); may be NULL */
    const char *ci_volume;      /* job_layout: mounted read-only at /job/ci */
    bool job_layout;            /* the /job layout: working directory /job/src */
    const char *netns;          /* "none", "bridge", "host"; NULL: "none" */
    uint32_t cpus_milli;        /* CPU quota in thousandths of a CPU; 0: none */
    uint64_t memory;            /* bytes of memory (cgroup); 0: none */
    uint64_t pids;              /* processes and threads; 0: none */
    /*  More named volumes (caches): mount_names[i] at mount_dests[i]
        (absolute), created by podman when missing. */
    const char *const *mount_names;
    const char *const *mount_dests;
    uint32_t nmounts;
    bool mounts_readonly;       /* those volumes read-only (option "ro") */
    /*  A host directory bound read-only at /run/evrun (the step's control
        channel), or NULL; with it, EVRUN_CONTROL names its socket and the
        script runs with /run/evrun/bin first in the image's PATH. */
    const char *control_dir;
} evr_podman_spec_t;

/*  The podman service's URL when none is set: EVRUN_PODMAN_URL, else
    root's system socket, else the user's ($XDG_RUNTIME_DIR/podman, or
    /run/user/UID/podman).  Caller frees. */
char *evr_podman_default_url(void);

/*  url: "unix:///path/podman.sock"; the calls run on loop, which must
    outlive the result.  Caller owns the result.  EVR_ERR_CONFIG for a URL
    of another form. */
evr_podman_t *evr_podman_new(const char *url, evr_loop_t *loop, evr_err_t *err);
/*  Calls still in flight are dropped: their callbacks are not called. */
void evr_podman_destroy(evr_podman_t **self_p);
const char *evr_podman_url(const evr_podman_t *self);
/*  Why nothing takes a connection at the service's socket, in words (as
    evr_podman_ping says: it does not exist, refuses connections, ...),
    or NULL when one is taken (a connect, no call: a few microseconds). */
const char *evr_podman_unreachable(const evr_podman_t *self);

/*  Synchronous check that the service answers (GET /_ping, 5 s): turns
    the loop until the answer (not from inside a callback of the loop). */
evr_rc_t evr_podman_ping(evr_podman_t *self, evr_err_t *err);

/*  GET /info (10 s): whether the service is rootless, and its cgroups
    (rootless, cgroup_version, cgroup_manager).  Returns a handle that
    evr_podman_detach cancels (fn hears "cancelled"), valid until fn. */
void *evr_podman_info(evr_podman_t *self, evr_podman_fn *fn, void *arg);

void evr_podman_create(evr_podman_t *self, const evr_podman_spec_t *spec, evr_podman_fn *fn,
                       void *arg);
/*  The same in two parts, so that a create can be sent again as it was:
    the JSON body of spec's create (caller owns the result), and its
    POST (body copied). */
char *evr_podman_create_body(const evr_podman_spec_t *spec);
void evr_podman_create_send(evr_podman_t *self, const char *body, evr_podman_fn *fn, void *arg);
/*  Prepares a created container to start (conmon and the runtime's
    create: state "initialized"), so that start is quick. */
void evr_podman_init(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg);
void evr_podman_start(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg);
/*  Attaches to the output of a created or running container.  head is
    called once the stream is established (start the container only then,
    or early output is lost); done when the output ends.  Returns a handle
    for evr_podman_detach (valid until done is called). */
void *evr_podman_attach(evr_podman_t *self, const char *name, evr_podman_output_fn *out,
                        evr_podman_fn *head, evr_podman_fn *done, void *arg);
/*  Stops following an attach (done is called with an error). */
void evr_podman_detach(evr_podman_t *self, void *handle);
/*  The whole log so far, not followed: podman 4.3's followed log ends when
    the container exits, before the end of the log, and drops lines in its
    middle when output comes fast.  Whole once the container has exited.
    so_far (the container may still run): the last frame is not passed on,
    as podman may have read its record half-written; what is passed on is
    a prefix, per stream, of the final log. */
void *evr_podman_logs(evr_podman_t *self, const char *name, bool so_far,
                      evr_podman_output_fn *out, evr_podman_fn *done, void *arg);
/*  Waits until the container has exited; r->exit_code. */
void evr_podman_wait(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg);
void evr_podman_inspect(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg);
void evr_podman_pause(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg);
void evr_podman_unpause(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg);
/*  SIGTERM, then SIGKILL after grace_s seconds. */
void evr_podman_stop(evr_podman_t *self, const char *name, int grace_s, evr_podman_fn *fn,
                     void *arg);
void evr_podman_kill(evr_podman_t *self, const char *name, const char *signal, evr_podman_fn *fn,
                     void *arg);
/*  Removes the container (forcefully: running ones are killed). */
void evr_podman_remove(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg);
void evr_podman_volume_create(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg);
void evr_podman_volume_remove(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg);
/*  The host directory of a volume (its Mountpoint) in r->id; not_found
    when there is no such volume. */
void evr_podman_volume_path(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg);
/*  Uploads the tar archive in tar_file (streamed from the file, which
    must stay until fn is called) and unpacks it at path in the container. */
void evr_podman_archive_put(evr_podman_t *self, const char *name, const char *path,
                            const char *tar_file, evr_podman_fn *fn, void *arg);
/*  Downloads path from the container as a tar stream, passed to data. */
void evr_podman_archive_get(evr_podman_t *self, const char *name, const char *path,
                            bool (*data)(const uint8_t *p, size_t n, void *arg), evr_podman_fn *fn,
                            void *arg);
/*  Names of the containers (all states) whose name starts with prefix;
    r->id holds them separated by newlines. */
void evr_podman_list(evr_podman_t *self, const char *prefix, evr_podman_fn *fn, void *arg);
/*  Calls fn for each name of such a list. */
void evr_podman_each_name(const char *list, void (*fn)(const char *name, void *arg), void *arg);
/*  The same for volumes. */
void evr_podman_list_volumes(evr_podman_t *self, const char *prefix, evr_podman_fn *fn,
                             void *arg);
void evr_podman_image_exists(evr_podman_t *self, const char *image, evr_podman_fn *fn, void *arg);

/*  The outcome of a pull (evr_podman_pull.c): rc EVR_OK or EVR_ERR_PODMAN
    (msg: podman's or the registry's words, or the transport's); the
    image's id, manifest digest and size (digest NULL and size 0 unless
    pulled); pulled: podman went to the registry (a `missing` policy that
    found the image did not). */
typedef struct {
    evr_rc_t rc;
    const char *msg;
    const char *id;
    const char *digest;
    uint64_t size;
    bool pulled;
} evr_podman_pull_result_t;
typedef void (evr_podman_pull_fn)(const evr_podman_pull_result_t *r, void *arg);

/*  POST /images/pull?reference=image&policy=policy ("missing", "always",
    "never"), then, when podman went to the registry, the image's inspect
    for its digest and size.  header:
    one request header with credentials ("X-Registry-Auth: ...") or NULL.
    line (may be NULL) gets each line of podman's progress ("Copying blob
    sha256:..."), fn the outcome once.  timeout_ms bounds the whole pull.
    Returns a handle for evr_podman_pull_cancel, valid until fn is called. */
void *evr_podman_pull(evr_podman_t *self, const char *image, const char *policy,
                      const char *header, long timeout_ms,
                      void (*line)(const char *text, void *arg), evr_podman_pull_fn *fn,
                      void *arg);
/*  Stops a pull under way: its fn is called with an error ("cancelled"),
    from inside this call. */
void evr_podman_pull_cancel(evr_podman_t *self, void *handle);
/*  The transport, for evr_podman_pull.c. */
struct evr_http *evr_podman_http(evr_podman_t *self);

/*  The text of podman's error body ({"cause", "message", "response"}: its
    message; any other body as it is) in buf, NUL-terminated.  A text
    longer than buf keeps its head and its tail joined by " [...] ", cut
    between UTF-8 characters: Go wraps errors as "context: ...: cause", so
    the cause is at the end (e.g. after a 2 KB dump of the copier's
    request); the whole text then goes to the log (stderr, evr_log, up to
    its 2 KB line).  size at least 64.  True when the text was cut. */
bool evr_podman_message(const char *body, size_t len, char *buf, size_t size);

#endif
