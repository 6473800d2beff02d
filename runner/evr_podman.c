/*  evr_podman.c: libpod calls over evr_http, JSON with jansson.  What
    podman answers is read in evr_podman_reply.c. */
#include "evr_podman.h"

#include "evr_log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "evr_http.h"
#include "evr_output.h"
#include "evr_podman_reply.h"

#define S_API "/v4.0.0/libpod"
#define S_TIMEOUT_MS 30000L        /* one call; stop adds its grace */

struct evr_podman {
    evr_http_t *http;
};

typedef enum { S_PLAIN, S_CREATE, S_WAIT, S_INSPECT, S_LIST, S_VOLUME, S_INFO, S_START,
               S_REMOVE } s_kind_t;

/*  One call in flight. */
typedef struct {
    evr_podman_t *pm;
    s_kind_t kind;
    evr_podman_fn *fn;
    evr_podman_fn *head;
    evr_podman_output_fn *out;
    bool (*data)(const uint8_t *p, size_t n, void *arg);
    void *arg;
    evr_demux_t demux;
    bool raw_stream;    /* logs/attach: the body is multiplexed frames */
    bool so_far;        /* logs of a running container: the last frame is held back */
    uint8_t *held;      /* so_far: the payload of the frame under way */
    size_t hlen, hcap;
    int hstream;
    uint64_t fleft;     /* so_far: its bytes not yet come */
    char *prefix;       /* S_LIST: names kept */
    char errbody[512];  /* the start of an error body, when on_data streams */
    size_t errlen;
    evr_http_req_t *req;
} s_call_t;

char *
evr_podman_default_url(void)
{
    const char *v = getenv("EVRUN_PODMAN_URL");
    if (v && *v)
        return evr_strdup(v);
    if (geteuid() == 0)
        return evr_strdup("unix:///run/podman/podman.sock");
    if ((v = getenv("XDG_RUNTIME_DIR")) && *v)
        return evr_asprintf("unix://%s/podman/podman.sock", v);
    return evr_asprintf("unix:///run/user/%u/podman/podman.sock", (unsigned) geteuid());
}

evr_podman_t *
evr_podman_new(const char *url, evr_loop_t *loop, evr_err_t *err)
{
    if (strncmp(url, "unix://", 7) != 0) {
        evr_err_set(err, EVR_ERR_CONFIG, "podman URL %s: expected unix:///path/to/podman.sock",
                    url);
        return NULL;
    }
    evr_http_t *http = evr_http_new(url, loop, err);
    if (!http)
        return NULL;
    evr_podman_t *self = evr_calloc(1, sizeof *self);
    self->http = http;
    return self;
}

void
evr_podman_destroy(evr_podman_t **self_p)
{
    evr_podman_t *self = *self_p;
    if (!self)
        return;
    evr_http_destroy(&self->http);
    free(self);
    *self_p = NULL;
}

struct evr_http *
evr_podman_http(evr_podman_t *self)
{
    return self->http;
}

const char *
evr_podman_url(const evr_podman_t *self)
{
    return evr_http_base(self->http);
}

/*  Why nothing answers at the socket of url ("unix:///path"), in words:
    it does not exist, is a file or a directory, refuses connections (no
    service listens), or may not be opened; NULL when connecting works (curl's message says the
    rest). */
static const char *
s_socket_problem(const char *url)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *path = url + 7;
    if (strlen(path) >= sizeof sa.sun_path)
        return NULL;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    /* non-blocking: a service whose backlog is full (EAGAIN) is there */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return NULL;
    int rc = connect(fd, (struct sockaddr *) &sa, sizeof sa), e = errno;
    close(fd);
    if (rc == 0)
        return NULL;
    /* Linux refuses a connect to a path that is no socket as it does one
       to a socket nobody listens on */
    struct stat st;
    if ((e == ECONNREFUSED || e == ENOTSOCK) && stat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
        return S_ISDIR(st.st_mode) ? "the path is a directory, not a socket: give the socket's "
                                     "path (podman system service unix://PATH)"
                                   : "the path is a file, not a socket: give the socket's path "
                                     "(podman system service unix://PATH)";
    return e == ENOENT         ? "the socket does not exist: no podman service runs there"
         : e == ECONNREFUSED   ? "the socket refuses connections: no podman service listens "
                                 "there (one that stopped left it)"
         : e == EACCES         ? "permission denied on the socket (another user's service?)"
                               : NULL;
}

const char *
evr_podman_unreachable(const evr_podman_t *self)
{
    const char *url = evr_http_base(self->http);
    return strncmp(url, "unix://", 7) ? NULL : s_socket_problem(url);
}

evr_rc_t
evr_podman_ping(evr_podman_t *self, evr_err_t *err)
{
    evr_http_opts_t o = { .method = "GET", .path = S_API "/_ping", .timeout_ms = 5000 };
    long status = 0;
    evr_err_t e;
    if (evr_http_call(self->http, &o, &status, NULL, NULL, &e)) {
        const char *why = s_socket_problem(evr_http_base(self->http));
        return evr_err_set(err, EVR_ERR_PODMAN, "cannot reach podman at %s: %s",
                           evr_http_base(self->http), why ? why : e.msg);
    }
    if (status != 200)
        return evr_err_set(err, EVR_ERR_PODMAN, "podman at %s answered %ld to _ping",
                           evr_http_base(self->http), status);
    return EVR_OK;
}

/*  The whole of a message that was cut goes to the log (up to its 2 KB
    line: its head and its cause). */
static void
s_log_whole(const char *body, size_t len)
{
    char whole[2048];
    evr_podman_reply_message(body, len, whole, sizeof whole);
    evr_log("evrun-runner", "podman, in full: %s", whole);
}

bool
evr_podman_message(const char *body, size_t len, char *buf, size_t size)
{
    bool cut = evr_podman_reply_message(body, len, buf, size);
    if (cut)
        s_log_whole(body, len);
    return cut;
}

/*  The answer to c read by the parser of its kind (evr_podman_reply.h). */
static void
s_parse(const s_call_t *c, long status, const char *body, size_t len, evr_podman_reply_t *rep)
{
    switch (c->kind) {
    case S_CREATE:
        evr_podman_reply_create(status, body, len, rep);
        break;
    case S_WAIT:
        evr_podman_reply_wait(status, body, len, rep);
        break;
    case S_INSPECT:
        evr_podman_reply_inspect(status, body, len, rep);
        break;
    case S_LIST:
        evr_podman_reply_list(status, body, len, c->prefix, rep);
        break;
    case S_VOLUME:
        evr_podman_reply_volume(status, body, len, rep);
        break;
    case S_INFO:
        evr_podman_reply_info(status, body, len, rep);
        break;
    case S_START:
        evr_podman_reply_start(status, body, len, rep);
        break;
    case S_REMOVE:
        evr_podman_reply_remove(status, body, len, rep);
        break;
    default:
        evr_podman_reply_plain(status, body, len, rep);
        break;
    }
}

static void
s_done(evr_http_req_t *req, void *arg)
{
    s_call_t *c = arg;
    evr_podman_reply_t rep;
    long status = evr_http_status(req);
    const char *terr;
    size_t len;
    const char *body = evr_http_body(req, &len);
    if (evr_http_error(req, &terr)) {
        evr_podman_reply_plain(0, NULL, 0, &rep);
        rep.rc = EVR_ERR_PODMAN;
        /* a service gone (stopped, restarting): why, in words, not curl's
           "Failed to connect to d port 80" */
        const char *why = strstr(terr, "onnect") ? s_socket_problem(evr_http_base(c->pm->http))
                                                 : NULL;
        const char *url = evr_http_base(c->pm->http);
        if (why && !strncmp(why, "the socket ", 11))   /* gone: what to do */
            snprintf(rep.msg, sizeof rep.msg, "cannot reach podman at %s: %s; start one "
                     "there (podman system service --time=0 %s) (%s)", url, why, url, terr);
        else if (why)
            snprintf(rep.msg, sizeof rep.msg, "cannot reach podman at %s: %s (%s)", url, why,
                     terr);
        else
            snprintf(rep.msg, sizeof rep.msg, "%s", terr);
    }
    else {
        if (status >= 400 && c->errlen) {   /* on_data kept the error body's start */
            body = c->errbody;
            len = c->errlen;
        }
        s_parse(c, status, body, len, &rep);
        if (rep.cut)
            s_log_whole(body, len);
    }
    if (c->raw_stream && !rep.rc && c->demux.bad) {
        rep.rc = EVR_ERR_PODMAN;
        snprintf(rep.msg, sizeof rep.msg, "the output stream is not in podman's frame format");
    }
    evr_podman_result_t r = { .rc = rep.rc, .msg = rep.msg, .status = status,
                              .id = rep.names ? rep.names : rep.id, .exit_code = rep.exit_code,
                              .state = rep.state, .not_found = rep.not_found,
                              .exists = rep.exists, .oom_killed = rep.oom_killed,
                              .started_at = rep.started_at,
                              .finished_at = rep.finished_at, .dir = rep.dir,
                              .rootless = rep.rootless, .cgroup_version = rep.cgroup_version,
                              .cgroup_manager = rep.cgroup_manager };
    if (c->fn)
        c->fn(&r, c->arg);
    evr_podman_reply_clear(&rep);
    free(c->held);
    free(c->prefix);
    free(c);
}

/*  The transport is going away with the call in flight. */
static void
s_drop(void *arg)
{
    s_call_t *c = arg;
    free(c->held);
    free(c->prefix);
    free(c);
}

static void
s_head(evr_http_req_t *req, long status, void *arg)
{
    (void) req;
    s_call_t *c = arg;
    if (!c->head)
        return;
    evr_podman_result_t r = { .rc = status < 400 ? EVR_OK : EVR_ERR_PODMAN,
                              .msg = status < 400 ? "" : "attach refused", .status = status,
                              .not_found = status == 404 };
    c->head(&r, c->arg);
}

/*  A frame longer than this ends a so_far read (conmon writes the log in
    records of at most 8 KiB, and podman sends one frame per record). */
#define S_HELD_MAX (1u << 20)

/*  A so_far read passes each frame on once the next one begins: the last
    one may be a record conmon was still writing when podman read it, cut
    short (and then not a prefix of the record in the final log). */
static void
s_demuxed(int stream, const uint8_t *data, size_t len, void *arg)
{
    s_call_t *c = arg;
    if (!c->so_far) {
        c->out(stream, data, len, c->arg);
        return;
    }
    if (!c->fleft) {   /* a new frame: demux.left counts it from this run on */
        if (c->hlen)
            c->out(c->hstream, c->held, c->hlen, c->arg);
        c->hlen = 0;
        c->hstream = stream;
        c->fleft = c->demux.left;
        if (c->fleft <= S_HELD_MAX && c->fleft > c->hcap) {
            c->hcap = (size_t) c->fleft;
            c->held = evr_realloc(c->held, c->hcap);
        }
    }
    if (c->fleft > S_HELD_MAX)
        return;   /* s_data ends the read */
    memcpy(c->held + c->hlen, data, len);
    c->hlen += len;
    c->fleft -= len;
}

static bool
s_data(evr_http_req_t *req, const uint8_t *data, size_t len, void *arg)
{
    s_call_t *c = arg;
    if (evr_http_status(req) >= 400) {   /* an error body: keep its start for the message */
        size_t take = sizeof c->errbody - 1 - c->errlen;
        take = len < take ? len : take;
        memcpy(c->errbody + c->errlen, data, take);
        c->errlen += take;
        c->errbody[c->errlen] = '\0';
        return true;
    }
    if (c->raw_stream)
        return evr_demux_feed(&c->demux, data, len, s_demuxed, c) && c->fleft <= S_HELD_MAX;
    return c->data(data, len, c->arg);
}

/*  A new call record for fn(arg). */
static s_call_t *
s_new_call(evr_podman_t *self, s_kind_t kind, evr_podman_fn *fn, void *arg)
{
    s_call_t *c = evr_calloc(1, sizeof *c);
    c->pm = self;
    c->kind = kind;
    c->fn = fn;
    c->arg = arg;
    return c;
}

/*  Starts the request o for the call c: its outcome goes through s_done
    (and, when c takes a body stream, s_data). */
static s_call_t *
s_start(s_call_t *c, evr_http_opts_t *o)
{
    o->on_done = s_done;
    o->on_drop = s_drop;
    if (c->raw_stream || c->data)
        o->on_data = s_data;
    o->arg = c;
    c->req = evr_http_start(c->pm->http, o);
    return c;
}

static s_call_t *
s_call(evr_podman_t *self, s_kind_t kind, const char *method, const char *path, json_t *body,
       long timeout_ms, evr_podman_fn *fn, void *arg)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    evr_http_opts_t o = { .method = method, .path = path, .body = text,
                          .body_len = text ? strlen(text) : 0, .timeout_ms = timeout_ms };
    s_call_t *c = s_start(s_new_call(self, kind, fn, arg), &o);
    free(text);
    json_decref(body);
    return c;
}

/*  Paths carry names evrun made (letters, digits, - _ .) and paths inside
    /workspace; anything else is percent-encoded. */
static char *
s_escape(const char *s)
{
    return evr_http_escape(s, "-._/~");
}

/*  A call on S_API + before + name + after (after may hold a query). */
static void
s_simple(evr_podman_t *self, s_kind_t kind, const char *method, const char *before,
         const char *name, const char *after, long timeout_ms, evr_podman_fn *fn, void *arg)
{
    char *en = s_escape(name);
    char *full = evr_asprintf(S_API "%s%s%s", before, en, after);
    s_call(self, kind, method, full, NULL, timeout_ms, fn, arg);
    free(full);
    free(en);
}

char *
evr_podman_create_body(const evr_podman_spec_t *spec)
{
    json_t *env = json_object();
    for (uint32_t i = 0; spec->env && i < spec->env->n; i++)
        json_object_set_new(env, spec->env->k[i], json_string(spec->env->v[i]));
    /* Limits at or below the hard limits this process has: podman as root
       would otherwise ask for more and fail without CAP_SYS_RESOURCE. */
    struct rlimit nofile, nproc;
    getrlimit(RLIMIT_NOFILE, &nofile);
    getrlimit(RLIMIT_NPROC, &nproc);
    json_int_t nf = nofile.rlim_max < 1024 ? (json_int_t) nofile.rlim_max : 1024;
    json_int_t np = nproc.rlim_max < 1024 ? (json_int_t) nproc.rlim_max : 1024;
    json_t *cmd = json_pack("[s,s,s]", "/bin/sh", "-c", spec->script);
    if (spec->control_dir) {   /* the image's PATH is known inside only */
        json_decref(cmd);
        cmd = json_pack("[s,s,s,s,s]", "/bin/sh", "-c",
                        "PATH=/run/evrun/bin${PATH:+:$PATH}; export PATH; exec /bin/sh -c \"$1\"",
                        "/bin/sh", spec->script);
        json_object_set_new(env, "EVRUN_CONTROL", json_string("/run/evrun/control.sock"));
    }
    json_t *body = json_pack("{s:s, s:s, s:o, s:o, s:s, s:b}", "name", spec->name,
                             "image", spec->image, "command", cmd,
                             "env", env, "work_dir",
                             spec->job_layout ? "/job/src" : "/workspace", "init", 1);
    /* the working directory made if the image has none: a job of one step
       has no volume at /workspace, and most images (alpine, debian) have
       no /workspace, which podman's init refused ("workdir does not
       exist") */
    json_object_set_new(body, "create_working_dir", json_true());
    if (spec->control_dir)
        json_object_set_new(body, "mounts",
                            json_pack("[{s:s, s:s, s:s, s:[s,s]}]", "destination", "/run/evrun",
                                      "type", "bind", "source", spec->control_dir, "options",
                                      "rbind", "ro"));
    /* the container's log holds its output as written, secrets unmasked:
       podman's k8s-file keeps it in the container's directory, removed
       with it, where a journald default would keep it in the journal */
    json_object_set_new(body, "log_configuration", json_pack("{s:s}", "driver", "k8s-file"));
    json_object_set_new(body, "r_limits",
                        json_pack("[{s:s, s:I, s:I}, {s:s, s:I, s:I}]", "type", "nofile",
                                  "soft", nf, "hard", nf, "type", "nproc", "soft", np, "hard",
                                  np));
    json_t *vols = json_array();
    if (spec->volume && !spec->job_layout)
        json_array_append_new(vols, json_pack("{s:s, s:s}", "Name", spec->volume, "Dest",
                                              "/workspace"));
    else if (spec->volume) {   /* /job; the CI area read-only inside it */
        json_array_append_new(vols, json_pack("{s:s, s:s}", "Name", spec->volume, "Dest", "/job"));
        if (spec->ci_volume)
            json_array_append_new(vols, json_pack("{s:s, s:s, s:[s]}", "Name", spec->ci_volume,
                                                  "Dest", "/job/ci", "Options", "ro"));
    }
    for (uint32_t i = 0; i < spec->nmounts; i++)
        json_array_append_new(vols, spec->mounts_readonly
                                        ? json_pack("{s:s, s:s, s:[s]}", "Name",
                                                    spec->mount_names[i], "Dest",
                                                    spec->mount_dests[i], "Options", "ro")
                                        : json_pack("{s:s, s:s}", "Name", spec->mount_names[i],
                                                    "Dest", spec->mount_dests[i]));
    if (json_array_size(vols))
        json_object_set_new(body, "volumes", vols);
    else
        json_decref(vols);
    json_object_set_new(body, "netns",
                        json_pack("{s:s}", "nsmode", spec->netns ? spec->netns : "none"));
    json_t *res = json_object();
    if (spec->cpus_milli)   /* CFS: quota per 100 ms period */
        json_object_set_new(res, "cpu", json_pack("{s:I, s:I}", "quota",
                                                  (json_int_t) spec->cpus_milli * 100,
                                                  "period", (json_int_t) 100000));
    /* podman reads int64s: a larger value (a spec refuses it) is no limit */
    if (spec->memory && spec->memory <= INT64_MAX)
        json_object_set_new(res, "memory", json_pack("{s:I}", "limit", (json_int_t) spec->memory));
    if (spec->pids && spec->pids <= INT64_MAX)
        json_object_set_new(res, "pids", json_pack("{s:I}", "limit", (json_int_t) spec->pids));
    if (json_object_size(res))
        json_object_set(body, "resource_limits", res);
    json_decref(res);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

void
evr_podman_create_send(evr_podman_t *self, const char *body, evr_podman_fn *fn, void *arg)
{
    evr_http_opts_t o = { .method = "POST", .path = S_API "/containers/create", .body = body,
                          .body_len = strlen(body), .timeout_ms = S_TIMEOUT_MS };
    s_start(s_new_call(self, S_CREATE, fn, arg), &o);
}

void
evr_podman_create(evr_podman_t *self, const evr_podman_spec_t *spec, evr_podman_fn *fn,
                  void *arg)
{
    char *body = evr_podman_create_body(spec);
    evr_podman_create_send(self, body, fn, arg);
    free(body);
}

void
evr_podman_start(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg)
{
    s_simple(self, S_START, "POST", "/containers/", name, "/start", S_TIMEOUT_MS, fn, arg);
}

void
evr_podman_init(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg)
{
    s_simple(self, S_PLAIN, "POST", "/containers/", name, "/init", S_TIMEOUT_MS, fn, arg);
}

static void *
s_stream(evr_podman_t *self, const char *path, bool so_far, evr_podman_output_fn *out,
         evr_podman_fn *head, evr_podman_fn *done, void *arg)
{
    s_call_t *c = s_new_call(self, S_PLAIN, done, arg);
    c->so_far = so_far;
    c->head = head;
    c->out = out;
    c->raw_stream = true;
    evr_http_opts_t o = { .method = strstr(path, "/logs?") ? "GET" : "POST", .path = path,
                          .timeout_ms = 0, .on_head = s_head };
    return s_start(c, &o);
}

void *
evr_podman_attach(evr_podman_t *self, const char *name, evr_podman_output_fn *out,
                  evr_podman_fn *head, evr_podman_fn *done, void *arg)
{
    char *en = s_escape(name);
    char *path = evr_asprintf(S_API "/containers/%s/attach?stream=true&stdout=true&stderr=true"
                                    "&logs=false", en);
    void *h = s_stream(self, path, false, out, head, done, arg);
    free(path);
    free(en);
    return h;
}

void
evr_podman_detach(evr_podman_t *self, void *handle)
{
    s_call_t *c = handle;
    evr_http_cancel(self->http, c->req);
}

void *
evr_podman_logs(evr_podman_t *self, const char *name, bool so_far, evr_podman_output_fn *out,
                evr_podman_fn *done, void *arg)
{
    char *en = s_escape(name);
    char *path = evr_asprintf(S_API "/containers/%s/logs?stdout=true&stderr=true&follow=false",
                              en);
    void *h = s_stream(self, path, so_far, out, NULL, done, arg);
    free(path);
    free(en);
    return h;
}

void
evr_podman_wait(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg)
{
    /* A short interval: podman polls every 250 ms otherwise. No timeout:
       the step's own timeout stops the container, which ends the wait. */
    s_simple(self, S_WAIT, "POST", "/containers/", name, "/wait?condition=exited&interval=1ms", 0, fn, arg);
}

void
evr_podman_inspect(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg)
{
    s_simple(self, S_INSPECT, "GET", "/containers/", name, "/json", S_TIMEOUT_MS, fn, arg);
}

void
evr_podman_pause(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg)
{
    s_simple(self, S_PLAIN, "POST", "/containers/", name, "/pause", S_TIMEOUT_MS, fn, arg);
}

void
evr_podman_unpause(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg)
{
    s_simple(self, S_PLAIN, "POST", "/containers/", name, "/unpause", S_TIMEOUT_MS, fn, arg);
}

void
evr_podman_stop(evr_podman_t *self, const char *name, int grace_s, evr_podman_fn *fn, void *arg)
{
    char q[32];
    snprintf(q, sizeof q, "/stop?timeout=%d", grace_s);
    s_simple(self, S_PLAIN, "POST", "/containers/", name, q,
             S_TIMEOUT_MS + grace_s * 1000L, fn, arg);
}

void
evr_podman_kill(evr_podman_t *self, const char *name, const char *signal, evr_podman_fn *fn,
                void *arg)
{
    char q[48];
    snprintf(q, sizeof q, "/kill?signal=%s", signal);
    s_simple(self, S_PLAIN, "POST", "/containers/", name, q, S_TIMEOUT_MS, fn, arg);
}

void
evr_podman_remove(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg)
{
    s_simple(self, S_REMOVE, "DELETE", "/containers/", name, "?force=true&v=false",
             S_TIMEOUT_MS, fn, arg);
}

void
evr_podman_volume_create(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg)
{
    s_call(self, S_PLAIN, "POST", S_API "/volumes/create", json_pack("{s:s}", "Name", name),
           S_TIMEOUT_MS, fn, arg);
}

void *
evr_podman_info(evr_podman_t *self, evr_podman_fn *fn, void *arg)
{
    return s_call(self, S_INFO, "GET", S_API "/info", NULL, 10000, fn, arg);
}

void
evr_podman_volume_path(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg)
{
    s_simple(self, S_VOLUME, "GET", "/volumes/", name, "/json", S_TIMEOUT_MS, fn, arg);
}

void
evr_podman_volume_remove(evr_podman_t *self, const char *name, evr_podman_fn *fn, void *arg)
{
    s_simple(self, S_PLAIN, "DELETE", "/volumes/", name, "?force=true", S_TIMEOUT_MS, fn, arg);
}

void
evr_podman_archive_put(evr_podman_t *self, const char *name, const char *path,
                       const char *tar_file, evr_podman_fn *fn, void *arg)
{
    char *en = s_escape(name), *ep = s_escape(path);
    char *full = evr_asprintf(S_API "/containers/%s/archive?path=%s", en, ep);
    evr_http_opts_t o = { .method = "PUT", .path = full, .body_file = tar_file,
                          .content_type = "application/x-tar", .timeout_ms = 120000 };
    s_start(s_new_call(self, S_PLAIN, fn, arg), &o);
    free(full);
    free(ep);
    free(en);
}

void
evr_podman_archive_get(evr_podman_t *self, const char *name, const char *path,
                       bool (*data)(const uint8_t *p, size_t n, void *arg), evr_podman_fn *fn,
                       void *arg)
{
    char *en = s_escape(name), *ep = s_escape(path);
    char *full = evr_asprintf(S_API "/containers/%s/archive?path=%s", en, ep);
    s_call_t *c = s_new_call(self, S_PLAIN, fn, arg);
    c->data = data;
    evr_http_opts_t o = { .method = "GET", .path = full, .timeout_ms = 120000 };
    s_start(c, &o);
    free(full);
    free(ep);
    free(en);
}

void
evr_podman_image_exists(evr_podman_t *self, const char *image, evr_podman_fn *fn, void *arg)
{
    s_simple(self, S_PLAIN, "GET", "/images/", image, "/exists", S_TIMEOUT_MS, fn, arg);
}

static void
s_list(evr_podman_t *self, const char *what, const char *prefix, evr_podman_fn *fn, void *arg)
{
    /* the name filter is a pattern match; the prefix is checked again on
       the answer */
    char *filters = evr_asprintf("{\"name\":[\"%s\"]}", prefix);
    char *ef = s_escape(filters);
    char *path = evr_asprintf(S_API "/%s/json?all=true&filters=%s", what, ef);
    s_call_t *c = s_call(self, S_LIST, "GET", path, NULL, S_TIMEOUT_MS, fn, arg);
    c->prefix = evr_strdup(prefix);
    free(path);
    free(ef);
    free(filters);
}

void
evr_podman_list(evr_podman_t *self, const char *prefix, evr_podman_fn *fn, void *arg)
{
    s_list(self, "containers", prefix, fn, arg);
}

void
evr_podman_list_volumes(evr_podman_t *self, const char *prefix, evr_podman_fn *fn, void *arg)
{
    s_list(self, "volumes", prefix, fn, arg);
}

void
evr_podman_each_name(const char *list, void (*fn)(const char *name, void *arg), void *arg)
{
    for (const char *p = list; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t) (nl - p) : strlen(p);
        char *name = evr_strndup(p, n);
        fn(name, arg);
        free(name);
        p += n + (nl ? 1 : 0);
    }
}
