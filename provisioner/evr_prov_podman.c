/*  evr_prov_podman.c: the podman kind's containers (evr_prov_podman.h).

    The libpod REST calls (API prefix /v4.0.0/libpod, as the runner's
    podman driver): POST /containers/create, POST .../start, GET
    .../json, POST .../kill, DELETE ...?force=true, GET
    /images/NAME/exists.  Answers are read by the runner's parsers
    (evr_podman_reply.h), so podman's error message reaches the log as
    the runner's does.
*/
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_http.h"
#include "evr_loop.h"
#include "evr_podman_reply.h"
#include "evr_prov_podman.h"

#define S_API "/v4.0.0/libpod"
#define S_TIMEOUT_MS 30000

struct evr_prov_podman {
    evr_loop_t *loop;
    evr_http_t *http;
    char *url;
};

evr_prov_podman_t *
evr_prov_podman_new(const char *url, evr_err_t *err)
{
    if (strncmp(url, "unix:///", 8)) {
        evr_err_set(err, EVR_ERR_CONFIG, "podman_url %s: expected unix:///PATH (the podman "
                    "service's socket on this host: the runner's container gets it bound)",
                    url);
        return NULL;
    }
    evr_prov_podman_t *pm = evr_calloc(1, sizeof *pm);
    pm->loop = evr_loop_new();
    pm->url = evr_strdup(url);
    if (!(pm->http = evr_http_new(url, pm->loop, err)))
        evr_prov_podman_destroy(&pm);
    return pm;
}

void
evr_prov_podman_destroy(evr_prov_podman_t **self_p)
{
    evr_prov_podman_t *pm = *self_p;
    if (!pm)
        return;
    evr_http_destroy(&pm->http);
    evr_loop_destroy(&pm->loop);
    free(pm->url);
    free(pm);
    *self_p = NULL;
}

const char *
evr_prov_podman_url(const evr_prov_podman_t *self)
{
    return self->url;
}

const char *
evr_prov_podman_socket(const evr_prov_podman_t *self)
{
    return self->url + 7;
}

/*  One call: its reply parsed by parse (NULL: plain) into *r, which the
    caller zeroed before its first call (what an earlier reply held is
    freed here; an inspect's is the caller's to clear).  The message
    names what was asked. */
static evr_rc_t
s_call(evr_prov_podman_t *pm, const char *method, const char *path, const char *body,
       evr_rc_t (*parse)(long, const char *, size_t, evr_podman_reply_t *),
       evr_podman_reply_t *r, long *statusp, evr_err_t *err)
{
    evr_http_opts_t o = { .method = method, .path = path, .body = body,
                          .body_len = body ? strlen(body) : 0, .timeout_ms = S_TIMEOUT_MS };
    long status = 0;
    char *resp = NULL;
    size_t len = 0;
    evr_podman_reply_clear(r);   /* what an earlier call's reply held */
    memset(r, 0, sizeof *r);
    evr_rc_t rc = evr_http_call(pm->http, &o, &status, &resp, &len, err);
    if (rc) {   /* curl's own text names the URL's placeholder host: the socket is what counts */
        free(resp);
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return evr_err_set(err, rc, "podman at %s: %s", pm->url, msg);
    }
    if (statusp)
        *statusp = status;
    rc = (parse ? parse : evr_podman_reply_plain)(status, resp, len, r);
    free(resp);
    if (rc)
        return evr_err_set(err, rc, "podman at %s: %s", pm->url, r->msg);
    return EVR_OK;
}

/*  SRC:DEST[:ro] into mounts (SRC absolute) or volumes (a name). */
static void
s_volume(json_t *mounts, json_t *volumes, const char *v)
{
    char *copy = evr_strdup(v);
    char *dest = strchr(copy, ':');
    char *opt = dest ? strchr(dest + 1, ':') : NULL;
    if (dest)
        *dest++ = '\0';
    if (opt)
        *opt++ = '\0';
    json_t *opts = json_array();
    if (opt && !strcmp(opt, "ro"))
        json_array_append_new(opts, json_string("ro"));
    if (copy[0] == '/') {
        json_array_append_new(opts, json_string("rbind"));
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:o}", "type", "bind",
                                                "source", copy, "destination",
                                                dest ? dest : copy, "options", opts));
    }
    else
        json_array_append_new(volumes, json_pack("{s:s, s:s, s:o}", "Name", copy, "Dest",
                                                 dest ? dest : "/", "Options", opts));
    free(copy);
}

char *
evr_prov_podman_body(const evr_prov_podman_spec_t *spec)
{
    json_t *args = json_array(), *env = json_object(), *mounts = json_array();
    json_t *volumes = json_array();
    for (uint32_t i = 0; i < spec->args->n; i++)
        json_array_append_new(args, json_string(spec->args->v[i]));
    for (uint32_t i = 0; spec->env && i < spec->env->n; i++) {
        const char *eq = strchr(spec->env->v[i], '=');
        if (!eq)
            continue;
        char *name = evr_strndup(spec->env->v[i], (size_t) (eq - spec->env->v[i]));
        json_object_set_new(env, name, json_string(eq + 1));
        free(name);
    }
    for (uint32_t i = 0; i < spec->binds->n; i++)
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:[s]}", "type", "bind",
                                                "source", spec->binds->v[i], "destination",
                                                spec->binds->v[i], "options", "rbind"));
    for (uint32_t i = 0; spec->volumes && i < spec->volumes->n; i++)
        s_volume(mounts, volumes, spec->volumes->v[i]);
    json_t *root = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:b, s:{s:s}, s:{s:s, s:s},"
                             " s:{s:s, s:s}}", "name", spec->name, "image", spec->image,
                             "command", args, "env", env, "mounts", mounts, "volumes", volumes,
                             "remove", 1, "init", 1, "netns", "nsmode", spec->network,
                             "log_configuration", "driver", "k8s-file", "path", spec->log,
                             "labels", "evrun.provisioner", spec->provisioner, "evrun.runner",
                             spec->runner);
    char *body = root ? json_dumps(root, JSON_COMPACT) : NULL;   /* NULL: a string not UTF-8 */
    json_decref(root);
    return body;
}

evr_rc_t
evr_prov_podman_run(evr_prov_podman_t *self, const evr_prov_podman_spec_t *spec,
                    evr_err_t *err)
{
    evr_podman_reply_t r = { 0 };
    char *body = evr_prov_podman_body(spec);
    if (!body)
        return evr_err_set(err, EVR_ERR_CONFIG, "container %s: its settings (image, args, env, "
                           "volumes, paths) must be UTF-8", spec->name);
    evr_rc_t rc = s_call(self, "POST", S_API "/containers/create", body,
                         evr_podman_reply_create, &r, NULL, err);
    free(body);
    if (rc) {
        evr_err_t e2 = *err;
        return evr_err_set(err, rc, "creating container %s of image %s: %s", spec->name,
                           spec->image, e2.msg);
    }
    char *path = evr_asprintf(S_API "/containers/%s/start", spec->name);
    rc = s_call(self, "POST", path, NULL, NULL, &r, NULL, err);
    free(path);
    if (rc) {
        evr_err_t e2 = *err, e3;
        evr_prov_podman_remove(self, spec->name, 0, &e3);
        return evr_err_set(err, rc, "starting container %s: %s", spec->name, e2.msg);
    }
    return EVR_OK;
}

evr_rc_t
evr_prov_podman_state(evr_prov_podman_t *self, const char *name, bool *there, bool *exited,
                      evr_err_t *err)
{
    evr_podman_reply_t r = { 0 };
    char *path = evr_asprintf(S_API "/containers/%s/json", name);
    evr_rc_t rc = s_call(self, "GET", path, NULL, evr_podman_reply_inspect, &r, NULL, err);
    free(path);
    evr_podman_reply_clear(&r);   /* its StaticDir: not wanted here */
    *there = !r.not_found;
    *exited = false;
    if (rc && r.not_found)
        return EVR_OK;
    if (rc)
        return rc;
    *exited = !strcmp(r.state, "exited") || !strcmp(r.state, "stopped")
              || !strcmp(r.state, "removing");
    return EVR_OK;
}

evr_rc_t
evr_prov_podman_term(evr_prov_podman_t *self, const char *name, evr_err_t *err)
{
    evr_podman_reply_t r = { 0 };
    char *path = evr_asprintf(S_API "/containers/%s/kill?signal=TERM", name);
    long status = 0;
    evr_rc_t rc = s_call(self, "POST", path, NULL, NULL, &r, &status, err);
    free(path);
    return rc && (r.not_found || status == 409) ? EVR_OK : rc;   /* 409: it is not running */
}

evr_rc_t
evr_prov_podman_remove(evr_prov_podman_t *self, const char *name, int grace_s, evr_err_t *err)
{
    evr_podman_reply_t r = { 0 };
    char *path = evr_asprintf(S_API "/containers/%s?force=true&timeout=%d", name, grace_s);
    evr_rc_t rc = s_call(self, "DELETE", path, NULL, NULL, &r, NULL, err);
    free(path);
    return rc && r.not_found ? EVR_OK : rc;
}

evr_rc_t
evr_prov_podman_image(evr_prov_podman_t *self, const char *image, bool *there, evr_err_t *err)
{
    evr_podman_reply_t r = { 0 };
    char *path = evr_asprintf(S_API "/images/%s/exists", image);
    evr_rc_t rc = s_call(self, "GET", path, NULL, NULL, &r, NULL, err);
    free(path);
    *there = !rc;
    return rc && r.not_found ? EVR_OK : rc;
}

/*  The answer to the runners' list: the names of the runners' containers. */
static evr_rc_t
s_reply_runners(long status, const char *body, size_t len, evr_podman_reply_t *r)
{
    return evr_podman_reply_list(status, body, len, "evrun-runner-", r);
}

evr_rc_t
evr_prov_podman_list(evr_prov_podman_t *self, const char *dir, char **names, evr_err_t *err)
{
    char *label = evr_asprintf("evrun.provisioner=%s", dir);
    json_t *f = json_pack("{s:[s]}", "label", label);
    char *filters = json_dumps(f, JSON_COMPACT);
    json_decref(f);
    free(label);
    char *ef = evr_http_escape(filters, "-._");
    free(filters);
    char *path = evr_asprintf(S_API "/containers/json?all=true&filters=%s", ef);
    free(ef);
    evr_podman_reply_t r = { 0 };
    evr_rc_t rc = s_call(self, "GET", path, NULL, s_reply_runners, &r, NULL, err);
    free(path);
    *names = rc ? NULL : r.names;
    r.names = rc ? r.names : NULL;
    evr_podman_reply_clear(&r);
    return rc;
}

/*  The longest state directory whose control sockets fit: the runner
    puts them at STATE/ctl/HEX16/control.sock (108 bytes at most), else
    under /tmp, which is the container's own and not the host's. */
#define S_STATE_MAX (107 - sizeof "/ctl/0123456789abcdef/control.sock" + 1)

evr_rc_t
evr_prov_podman_start(evr_prov_podman_t *self, const evr_prov_provider_t *p, const char *id,
                      const char *dir, const char *endpoint, const char *labels,
                      const char *executors, evr_err_t *err)
{
    evr_strlist_t args = { 0 }, binds = { 0 };
    char *top = evr_asprintf("%s/runners/%s", dir, id);
    char *state = evr_asprintf("%s/state", top);
    char *name = evr_asprintf("evrun-runner-%s", id);
    char *log = evr_asprintf("%s/logs/%s.log", dir, id);
    char *ipc = NULL;
    evr_rc_t rc = EVR_OK;
    if (strlen(state) > S_STATE_MAX) {
        rc = evr_err_set(err, EVR_ERR_CONFIG, "%s: %zu bytes, too long for the runner's "
                         "control sockets under it (at most %zu): give evrun-provisioner a "
                         "shorter --dir", state, strlen(state), (size_t) S_STATE_MAX);
        goto out;
    }
    if (!strncmp(endpoint, "ipc://", 6)) {
        const char *slash = strrchr(endpoint + 6, '/');
        if (endpoint[6] != '/' || !slash || slash == endpoint + 6) {
            rc = evr_err_set(err, EVR_ERR_CONFIG, "runner endpoint %s: a podman runner needs "
                             "an absolute ipc:// path (its directory is bound into the "
                             "container)", endpoint);
            goto out;
        }
        ipc = evr_strndup(endpoint + 6, (size_t) (slash - endpoint - 6));
        evr_strlist_push(&binds, ipc);
    }
    if (mkdir(top, 0700) && errno != EEXIST) {
        rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", top, strerror(errno));
        goto out;
    }
    evr_strlist_push(&binds, evr_prov_podman_socket(self));
    evr_strlist_push(&binds, top);
    const char *fixed[] = { "--broker", endpoint, "--once", "--clean", "--id", id, "--labels",
                            labels, "--executors", executors, "--state-dir", state,
                            "--podman-url", self->url };
    for (size_t i = 0; i < EVR_ARRAY_LEN(fixed); i++)
        evr_strlist_push(&args, fixed[i]);
    for (uint32_t i = 0; i < p->args.n; i++)
        evr_strlist_push(&args, p->args.v[i]);
    evr_prov_podman_spec_t spec = { .name = name, .image = p->image, .args = &args,
                                    .env = &p->env, .binds = &binds, .volumes = &p->volumes,
                                    .network = p->network, .log = log, .provisioner = dir,
                                    .runner = id };
    rc = evr_prov_podman_run(self, &spec, err);
    if (rc && strstr(err->msg, "image not known"))
        evr_err_set(err, rc, "%s (build it with tools/build-runner-image, or podman pull or "
                    "load it)", err->msg);
    if (rc)
        rmdir(top);
out:
    evr_strlist_free(&args);
    evr_strlist_free(&binds);
    free(top);
    free(state);
    free(name);
    free(log);
    free(ipc);
    return rc;
}
