/*  evr_prepare.c: a job made from its spec (its executor and secrets
    resolved, steps set up) and freed; then, before the first step: the
    job's workspace (made by its executor), and the resources downloaded
    (evr_fetch) and put into it (the executor's put). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_engine_int.h"
#include "evr_artifact.h"
#include "evr_codec.h"

/* ------------------------------------------------------------------- jobs */

void
evr_eng_job_free(evr_eng_job_t *job)
{
    for (uint32_t i = 0; i < job->n; i++) {
        evr_eng_step_t *st = &job->steps[i];
        evr_loop_timer_cancel(job->eng->loop, st->retake_timer);
        evr_eng_step_freeze_reset(st);
        while (st->toks) {
            evr_eng_tok_t *t = st->toks;
            st->toks = t->next;
            free(t);
        }
        free(st->unit);
        free(st->unit_id);
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
    free(job->unit_prefix);
    if (job->res_file)
        unlink(job->res_file);
    free(job->res_file);
    if (job->res_tar)
        unlink(job->res_tar);
    free(job->res_tar);
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

/*  The executor of this runner that spec asks for; NULL (EVR_ERR_CONFIG
    in err, saying what the runner offers and how to get it) when the
    runner does not offer it. */
static evr_exec_t *
s_executor(const evr_engine_t *e, const evr_spec_t *spec, evr_err_t *err)
{
    size_t known = 0;
    while (evr_executor_names[known])
        known++;
    const char *want = spec->executor < known ? evr_executor_names[spec->executor] : NULL;
    evr_exec_t *ex = want ? evr_exec_find(e->execs, want) : NULL;
    if (ex)
        return ex;
    char offers[256] = "";
    size_t n = 0;
    for (size_t i = 0; e->execs[i]; i++)
        n += (size_t) snprintf(offers + n, n < sizeof offers ? sizeof offers - n : 0, "%s%s",
                               i ? ", " : "", e->execs[i]->ops->name);
    char with[300] = "";
    for (size_t i = 0, m = 0; e->execs[i]; i++)
        m += (size_t) snprintf(with + m, m < sizeof with ? sizeof with - m : 0, "%s,",
                               e->execs[i]->ops->name);
    if (!want) {
        evr_err_set(err, EVR_ERR_CONFIG, "executor number %u is unknown to this runner (it "
                    "offers: %s)", spec->executor, offers[0] ? offers : "none");
        return NULL;
    }
    evr_err_set(err, EVR_ERR_CONFIG, "this runner does not offer executor %s (it offers: %s); "
                "start it with --executors %s%s or send the job to one that does", want,
                offers[0] ? offers : "none", with, want);
    return NULL;
}

evr_eng_job_t *
evr_eng_job_new(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
                const evr_strmap_t *args, evr_err_t *err)
{
    evr_exec_t *ex = s_executor(self, spec, err);
    if (!ex)
        return NULL;
    evr_eng_job_t *job = evr_calloc(1, sizeof *job);
    job->eng = self;
    job->ex = ex;
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
    job->steps = evr_calloc(job->n, sizeof(evr_eng_step_t));
    for (uint32_t i = 0; i < job->n; i++) {
        evr_eng_step_t *st = &job->steps[i];
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
    /* nothing shared between units: the one unit's own workspace does */
    const evr_step_t *one = job->n == 1 ? evr_spec_step(job->spec, 0) : NULL;
    job->no_ws = ex->ops->own_workspace && one && !spec->resources.n && !one->artifacts.n
                 && !(one->retry.present && one->retry.max);
    job->doubt = spec->resources.n > 0;   /* the put's helper unit carries the job's prefix */
    job->parallel = spec->parallel ? spec->parallel : self->opts.parallel;
    if (!job->dag)
        job->parallel = 1;
    job->unit_prefix = evr_asprintf("evrun-%s-", job_id);
    for (char *c = job->unit_prefix; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char) (*c - 'A' + 'a');
    job->phase = EVR_ENG_JOB_PREPARING;
    job->next = self->jobs;
    self->jobs = job;
    return job;
}

/* ------------------------------------------------------------- resources */

static void s_res_next(evr_eng_job_t *job);

/*  Ends the resource phase: the steps run (or, with reason, nothing
    runs). */
static void
s_res_end(evr_eng_job_t *job, const char *reason)
{
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
    if (reason)
        evr_eng_prep_failed(job, reason);
    else
        evr_eng_job_go(job);
}

static void
s_res_put(const evr_exec_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    unlink(job->res_tar);
    free(job->res_tar);
    job->res_tar = NULL;
    if (r->rc) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "resource %s: copying into %s: %s", res->name,
                 job->ex->ops->workspace_word, r->msg);
        s_res_end(job, reason);
        return;
    }
    if (job->eng->opts.print)
        printf("evrun-runner: resource %s: %llu bytes from %s into %s in %s\n", res->name,
               (unsigned long long) job->res_bytes, res->url, res->path,
               job->ex->ops->workspace_word);
    job->res_index++;
    s_res_next(job);
}

/*  The setting behind a download that failed, for the reason's end. */
static const char *
s_res_setting(const evr_fetch_result_t *r)
{
    if (r->rc == EVR_ERR_LIMIT)
        return " (the runner's resource_max_bytes setting)";
    if (r->rule == EVR_FETCH_RULE_REDIRECTS)
        return " (the runner's resource_redirects setting)";
    if (r->rule == EVR_FETCH_RULE_LOCAL)
        return " (the runner's resource_local setting)";
    return "";
}

static void
s_res_fetched(const evr_fetch_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    char reason[2 * EVR_ERR_MAX] = "";
    job->res_req = NULL;
    job->res_bytes = r->bytes;
    if (job->cancelling)
        snprintf(reason, sizeof reason, "the job was cancelled while resource %s was fetched",
                 res->name);
    else if (r->rc)
        snprintf(reason, sizeof reason, "resource %s: %s%s", res->name, r->msg,
                 s_res_setting(r));
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
    /* a podman executor reaches the workspace through a container of the
       job's first image */
    const evr_step_t *first = evr_spec_step(job->spec, 0);
    job->ex->ops->put(job->ex, job->id, job->spec->image ? job->spec->image : first->image,
                      job->res_tar, s_res_put, job);
}

static void
s_res_next(evr_eng_job_t *job)
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
    if (fd < 0) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "resource %s: temporary file in %s: %s", res->name,
                 job->res_file, strerror(errno));
        free(job->res_file);
        job->res_file = NULL;
        s_res_end(job, reason);
        return;
    }
    close(fd);   /* evr_fetch writes it */
    job->res_bytes = 0;
    evr_fetch_opts_t o = { .url = res->url, .file = job->res_file, .timeout_ms = 300000,
                           .max_bytes = job->eng->opts.resource_max_bytes,
                           .redirects = job->eng->opts.resource_redirects,
                           .deny_local = job->eng->opts.resource_deny_local };
    job->res_req = evr_fetch_start(job->eng->fetch, &o, s_res_fetched, job);
}

void
evr_eng_job_prepare(evr_eng_job_t *job)
{
    if (job->no_ws)
        evr_eng_on_workspace(&(evr_exec_result_t) { .rc = EVR_OK }, job);
    else
        job->ex->ops->workspace_create(job->ex, job->id, evr_eng_on_workspace, job);
}

void
evr_eng_on_workspace(const evr_exec_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    /* a recovered job's workspace may exist from before the crash */
    if (r->rc && !r->exists) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "workspace: %s", r->msg);
        evr_eng_prep_failed(job, reason);
        return;
    }
    if (job->spec->resources.n == 0) {
        evr_eng_job_go(job);
        return;
    }
    s_res_next(job);
}
