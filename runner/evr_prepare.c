/*  evr_prepare.c: a job made from its spec (secrets resolved, steps set
    up) and freed; then, before the first step: the workspace volume, and
    the resources fetched over HTTP into it through a container that mounts
    the volume and never runs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_engine_int.h"
#include "evr_artifact.h"
#include "evr_codec.h"
#include "evr_http.h"

/* ------------------------------------------------------------------- jobs */

void
evr_eng_job_free(s_job_t *job)
{
    for (uint32_t i = 0; i < job->n; i++) {
        s_step_t *st = &job->steps[i];
        while (st->toks) {
            s_tok_t *t = st->toks;
            st->toks = t->next;
            free(t);
        }
        free(st->container);
        free(st->container_id);
        free(st->reason);
        for (int si = 0; si < 2; si++) {
            free(st->out[si].buf);
            evr_mask_destroy(&st->out[si].mask);
        }
    }
    for (size_t i = 0; i < job->nsecrets; i++)
        free(job->secrets[i]);
    free(job->secrets);
    free(job->steps);
    evr_spec_destroy(&job->spec);
    evr_strmap_free(&job->env);
    free(job->volume);
    free(job->res_helper);
    free(job->res_file);
    if (job->res_tar)
        unlink(job->res_tar);
    free(job->res_tar);
    if (job->res_fp)
        fclose(job->res_fp);
    free(job->id);
    free(job);
}

#define S_SECRET_MAX 65536

/*  Whether name is in the allow-list: comma-separated NAMEs and PREFIX*es. */
static bool
s_secret_allowed(const char *allow, const char *name)
{
    for (const char *p = allow; *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t n = strcspn(p, ", ");
        if (n && p[n - 1] == '*' && strncmp(p, name, n - 1) == 0)
            return true;
        if (n && strlen(name) == n && strncmp(p, name, n) == 0)
            return true;
        p += n;
    }
    return false;
}

/*  A secret's value: the runner's environment when the name is allowed
    there, else secrets_dir/NAME (one trailing newline dropped).  *value NULL
    and EVR_OK when it is in neither; EVR_ERR_CONFIG for a value that
    cannot be given (not UTF-8, a NUL byte, over 64 KiB) or a file that
    cannot be read (anything but its absence). */
static evr_rc_t
s_secret(const evr_engine_t *e, const char *name, char **value, evr_err_t *err)
{
    *value = NULL;
    const char *v = s_secret_allowed(e->opts.secrets_allow, name) ? getenv(name) : NULL;
    char *path = !v && e->opts.secrets_dir ? evr_asprintf("%s/%s", e->opts.secrets_dir, name)
                                           : NULL;
    FILE *fp = path ? fopen(path, "rbe") : NULL;
    int unread = path && !fp && errno != ENOENT ? errno : 0;   /* errno of a failed read */
    const char *where = fp ? path : "the runner's environment";
    size_t n = 0;
    char *buf = NULL;
    if (fp) {
        /* two bytes over: a value of the limit and its newline is read
           whole, and one byte more is seen */
        buf = evr_malloc(S_SECRET_MAX + 3);
        n = fread(buf, 1, S_SECRET_MAX + 2, fp);
        unread = ferror(fp) ? (errno ? errno : EIO) : 0;
        fclose(fp);
        if (n && n <= S_SECRET_MAX + 1 && buf[n - 1] == '\n')   /* the end of the file */
            n--;
        buf[n] = '\0';
    }
    else if (v) {
        n = strlen(v);
        buf = evr_strndup(v, n > S_SECRET_MAX ? S_SECRET_MAX + 1 : n);
    }
    evr_rc_t rc = EVR_OK;
    if (unread)
        rc = evr_err_set(err, EVR_ERR_CONFIG, "secret %s: reading %s: %s", name, path,
                         strerror(unread));
    else if (buf && n > S_SECRET_MAX)
        rc = evr_err_set(err, EVR_ERR_CONFIG, "secret %s (from %s): longer than %d bytes",
                         name, where, S_SECRET_MAX);
    else if (buf && strlen(buf) != n)
        rc = evr_err_set(err, EVR_ERR_CONFIG, "secret %s (from %s): holds a NUL byte, which an "
                         "environment variable cannot carry", name, where);
    /* podman takes a container's environment as JSON strings */
    else if (buf && !evr_utf8_valid(buf, n))
        rc = evr_err_set(err, EVR_ERR_CONFIG, "secret %s (from %s): not valid UTF-8, which a "
                         "step's environment cannot carry (encode it, e.g. base64)", name, where);
    if (rc)
        free(buf);
    else
        *value = buf;
    free(path);
    return rc;
}

/*  The error for a secret found nowhere it may be read from. */
static evr_rc_t
s_secret_missing(const evr_engine_t *e, const char *name, evr_err_t *err)
{
    const char *allow = e->opts.secrets_allow;
    const char *dir = e->opts.secrets_dir;
    if (!s_secret_allowed(allow, name))
        return evr_err_set(err, EVR_ERR_CONFIG, "secret %s: not allowed: the runner's "
                           "secrets_allow setting (\"%s\") does not name it%s%s%s (add it with "
                           "--secrets-allow or EVRUN_SECRETS_ALLOW, or put it in a file under "
                           "--secrets-dir)", name, allow, dir ? ", and " : "", dir ? dir : "",
                           dir ? " has no file of that name" : "");
    return evr_err_set(err, EVR_ERR_CONFIG, "secret %s: not set in the runner's environment%s%s",
                       name, dir ? " nor in " : "", dir ? dir : "");
}

s_job_t *
evr_eng_job_new(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
                const evr_strmap_t *args, evr_err_t *err)
{
    s_job_t *job = evr_calloc(1, sizeof *job);
    job->eng = self;
    job->id = evr_strdup(job_id);
    job->spec = evr_spec_new();
    evr_rec_copy(&evr_spec_type, job->spec, spec);
    for (uint32_t i = 0; i < spec->env.n; i++)
        evr_strmap_set(&job->env, spec->env.k[i], spec->env.v[i]);
    for (uint32_t i = 0; args && i < args->n; i++)
        evr_strmap_set(&job->env, args->k[i], args->v[i]);
    job->secrets = evr_calloc(spec->secrets.n + 1, sizeof(char *));
    for (uint32_t i = 0; i < spec->secrets.n; i++) {
        char *v = NULL;
        evr_rc_t rc = s_secret(self, spec->secrets.v[i], &v, err);
        if (rc || !v) {
            if (!rc)
                s_secret_missing(self, spec->secrets.v[i], err);
            evr_eng_job_free(job);
            return NULL;
        }
        evr_strmap_set(&job->env, spec->secrets.v[i], v);
        job->secrets[job->nsecrets++] = v;
    }
    job->n = spec->steps.n;
    job->steps = evr_calloc(job->n, sizeof(s_step_t));
    for (uint32_t i = 0; i < job->n; i++) {
        s_step_t *st = &job->steps[i];
        st->job = job;
        st->index = i;
        st->spec = evr_spec_step(job->spec, i);
        if (st->spec->needs.n)
            job->dag = true;
        for (int si = 0; si < 2; si++) {
            st->out[si].mask = evr_mask_new((const char *const *) job->secrets, job->nsecrets);
            st->out[si].line_start = true;
        }
    }
    job->parallel = spec->parallel ? spec->parallel : self->opts.parallel;
    if (!job->dag)
        job->parallel = 1;
    job->volume = evr_asprintf("evrun-%s", job_id);
    for (char *c = job->volume; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char) (*c - 'A' + 'a');
    job->phase = J_PREPARING;
    job->next = self->jobs;
    self->jobs = job;
    return job;
}

/* ------------------------------------------------------------- resources */

static void s_res_next(s_job_t *job);

static void
s_res_helper_gone(const evr_podman_result_t *r, void *arg)
{
    (void) r;
    s_job_t *job = arg;
    job->calls--;
}

/*  Ends the resource phase: the helper container goes, then the steps run
    (or, with reason, nothing runs). */
static void
s_res_end(s_job_t *job, const char *reason)
{
    if (job->res_fp) {
        fclose(job->res_fp);
        job->res_fp = NULL;
    }
    if (job->res_file) {
        unlink(job->res_file);
        free(job->res_file);
        job->res_file = NULL;
    }
    if (job->res_tar) {
        unlink(job->res_tar);
        free(job->res_tar);
        job->res_tar = NULL;
    }
    if (job->res_helper) {
        job->calls++;
        evr_podman_remove(job->eng->pm, job->res_helper, s_res_helper_gone, job);
        free(job->res_helper);
        job->res_helper = NULL;
    }
    if (reason)
        evr_eng_prep_failed(job, reason);
    else
        evr_eng_job_go(job);
}

static void
s_res_uploaded(const evr_podman_result_t *r, void *arg)
{
    s_job_t *job = arg;
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    unlink(job->res_tar);
    free(job->res_tar);
    job->res_tar = NULL;
    if (r->rc) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "resource %s: copying into /workspace: %s", res->name,
                 r->msg);
        s_res_end(job, reason);
        return;
    }
    if (job->eng->opts.print)
        printf("evrun-runner: resource %s: %llu bytes from %s into /workspace/%s\n", res->name,
               (unsigned long long) job->res_bytes, res->url, res->path);
    job->res_index++;
    s_res_next(job);
}

static bool
s_res_data(evr_http_req_t *req, const uint8_t *data, size_t len, void *arg)
{
    s_job_t *job = arg;
    if (evr_http_status(req) >= 300) {   /* no content: the status says what went wrong */
        job->res_status = evr_http_status(req);
        return false;   /* a long error body is not waited for */
    }
    uint64_t max = job->eng->opts.resource_max_bytes;
    if (len > max - job->res_bytes) {
        job->res_bytes = max + 1;   /* over: nothing more is written */
        return false;
    }
    job->res_bytes += len;
    return fwrite(data, 1, len, job->res_fp) == len;
}

/*  The setting behind a transfer refused by a rule of evr_http, for the
    reason's end. */
static const char *
s_res_rule(const char *msg)
{
    if (strstr(msg, ": redirect to "))
        return " (the runner's resource_redirects setting)";
    if (strstr(msg, "local addresses are denied"))
        return " (the runner's resource_local setting)";
    return "";
}

static void
s_res_fetched(evr_http_req_t *req, void *arg)
{
    s_job_t *job = arg;
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    char reason[2 * EVR_ERR_MAX] = "";
    const char *msg;
    long status = job->res_status ? job->res_status : evr_http_status(req);
    bool written = fclose(job->res_fp) == 0;
    job->res_fp = NULL;
    job->res_req = NULL;
    if (job->cancelling)
        snprintf(reason, sizeof reason, "the job was cancelled while resource %s was fetched",
                 res->name);
    else if (!written)
        snprintf(reason, sizeof reason, "resource %s: writing %s: %s", res->name, job->res_file,
                 strerror(errno));
    if (*reason)
        ;
    else if (job->res_bytes > job->eng->opts.resource_max_bytes)
        snprintf(reason, sizeof reason, "resource %s: %s is larger than the limit of %llu bytes "
                 "(the runner's resource_max_bytes setting)", res->name, res->url,
                 (unsigned long long) job->eng->opts.resource_max_bytes);
    /* an error body ended by s_res_data: the status says what went wrong */
    else if (!job->res_status && evr_http_error(req, &msg))
        snprintf(reason, sizeof reason, "resource %s: %s%s", res->name, msg, s_res_rule(msg));
    else if (status != 200)
        snprintf(reason, sizeof reason, "resource %s: %s answered HTTP %ld", res->name, res->url,
                 status);
    if (*reason) {
        s_res_end(job, reason);
        return;
    }
    evr_err_t err;
    job->res_tar = evr_asprintf("%s.tar", job->res_file);
    evr_rc_t rc = evr_resource_tar(job->res_file, res->path, job->eng->opts.resource_max_bytes,
                                   job->res_tar, &err);
    unlink(job->res_file);
    if (rc) {
        bool bytes = rc == EVR_ERR_LIMIT && strstr(err.msg, "over the limit of");
        snprintf(reason, sizeof reason, "resource %s: %s%s", res->name, err.msg,
                 bytes ? " (the runner's resource_max_bytes setting)" : "");
        s_res_end(job, reason);
        return;
    }
    evr_podman_archive_put(job->eng->pm, job->res_helper, "/workspace", job->res_tar,
                           s_res_uploaded, job);
}

static void
s_res_next(s_job_t *job)
{
    if (job->cancelling) {
        s_res_end(job, "the job was cancelled while its resources were fetched");
        return;
    }
    if (job->res_index >= job->spec->resources.n) {
        s_res_end(job, NULL);
        return;
    }
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    char *dir = evr_asprintf("%s/%s", job->eng->opts.artifacts_dir, job->id);
    evr_err_t err;
    evr_mkdirs(dir, &err);
    free(job->res_file);
    job->res_file = evr_asprintf("%s/.resource-XXXXXX", dir);
    free(dir);
    int fd = mkstemp(job->res_file);
    job->res_fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!job->res_fp) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "resource %s: temporary file in %s: %s", res->name,
                 job->res_file, strerror(errno));
        free(job->res_file);
        job->res_file = NULL;
        s_res_end(job, reason);
        return;
    }
    job->res_bytes = 0;
    job->res_status = 0;
    evr_http_opts_t o = { .method = "GET", .path = res->url, .timeout_ms = 300000,
                          .on_data = s_res_data, .on_done = s_res_fetched, .arg = job,
                          .redirects = job->eng->opts.resource_redirects,
                          .deny_local = job->eng->opts.resource_deny_local };
    job->res_req = evr_http_start(evr_podman_http(job->eng->pm), &o);
}

static void
s_res_helper_made(const evr_podman_result_t *r, void *arg)
{
    s_job_t *job = arg;
    if (r->rc) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "resources: a container to copy them in: %s", r->msg);
        free(job->res_helper);
        job->res_helper = NULL;
        s_res_end(job, reason);
        return;
    }
    s_res_next(job);
}

void
evr_eng_on_volume(const evr_podman_result_t *r, void *arg)
{
    s_job_t *job = arg;
    /* a recovered job's volume may exist from before the crash */
    if (r->rc && !r->exists) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "workspace volume %s: %s", job->volume, r->msg);
        evr_eng_prep_failed(job, reason);
        return;
    }
    if (job->spec->resources.n == 0) {
        evr_eng_job_go(job);
        return;
    }
    /* Resources go into the volume through a container that mounts it and
       never runs. */
    /* named after this process: one left by a killed runner is swept at the end */
    job->res_helper = evr_asprintf("%s-resources-%ld", job->volume, (long) getpid());
    const evr_step_t *first = evr_spec_step(job->spec, 0);
    evr_podman_spec_t spec = { .name = job->res_helper,
                               .image = job->spec->image ? job->spec->image : first->image,
                               .script = "true", .volume = job->volume };
    evr_podman_create(job->eng->pm, &spec, s_res_helper_made, job);
}

