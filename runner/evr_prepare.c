/*  evr_prepare.c: a job made from its spec (its executor and secrets
    resolved, steps set up) and freed; then, before the first step: the
    job's workspace (made by its executor), the resources downloaded
    (evr_fetch) and put into it (the executor's put), then its sources
    (evr_prepare_source.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_engine_int.h"
#include "evr_chan.h"
#include "evr_artifact.h"
#include "evr_cache.h"
#include "evr_codec.h"
#include "evr_log.h"

/* ------------------------------------------------------------------- jobs */

/*  Where a job's sent copy: source i (0 ci_source, 1 source) is kept. */
char *
evr_eng_copy_file(const evr_engine_t *e, const char *job_id, int i)
{
    return evr_asprintf("%s/%s/.copy-%s.tar.gz", e->opts.artifacts_dir, job_id,
                        i ? "source" : "ci_source");
}


void
evr_eng_job_free(evr_eng_job_t *job)
{
    evr_eng_artifacts_drop(job);
    for (uint32_t i = 0; i < job->n; i++) {
        evr_eng_step_t *st = &job->steps[i];
        evr_loop_timer_cancel(job->eng->loop, st->retake_timer);
        evr_eng_step_freeze_reset(st);
        while (st->toks) {
            evr_eng_tok_t *t = st->toks;
            st->toks = t->next;
            free(t);
        }
        if (evr_eng_step_done(st) || job->phase == EVR_ENG_JOB_DONE)
            evr_eng_chan_close(st);
        else {   /* its unit may still run, for a later runner to serve */
            evr_chan_destroy(&st->chan);
            free(st->chan_dir);
        }
        free(st->unit);
        free(st->unit_id);
        free(st->reason);
        evr_eng_artifact_why_free(st);
        evr_strmap_free(&st->outputs);
        for (int si = 0; si < 2; si++) {
            if (job->eng->print_mid == &st->out[si])
                job->eng->print_mid = NULL;
            free(st->out[si].buf);
            free(st->out[si].text);
            evr_mask_destroy(&st->out[si].mask);
        }
    }
    evr_eng_images_free(job);
    evr_eng_hooks_free(job);
    for (size_t i = 0; i < job->nsecrets; i++)
        free(job->secrets[i]);
    free(job->secrets);
    evr_strmap_free(&job->dyn_secrets);
    free(job->steps);
    free(job->on_error.name);
    for (uint32_t i = 0; job->res_auth && i < job->spec->resources.n; i++)
        free(job->res_auth[i]);
    free(job->res_auth);
    evr_spec_destroy(&job->spec);
    evr_strmap_free(&job->env);
    free(job->unit_prefix);
    free(job->out_dir);
    evr_offload_cancel(&job->res_work);
    if (job->res_file)
        unlink(job->res_file);
    free(job->res_file);
    if (job->res_tar)
        unlink(job->res_tar);
    free(job->res_tar);
    evr_source_cancel(&job->src_req);
    evr_offload_cancel(&job->src_work);
    if (job->src_tar)
        unlink(job->src_tar);
    free(job->src_tar);
    if (job->src_file)
        unlink(job->src_file);
    free(job->src_file);
    for (int i = 0; i < 2; i++) {
        free(job->src_auth[i]);
        free(job->src_commit[i]);
        char *copy = job->phase == EVR_ENG_JOB_DONE ? evr_eng_copy_file(job->eng, job->id, i)
                                                    : NULL;
        if (copy)   /* a sent copy: source is of no use once the job is done */
            unlink(copy);
        free(copy);
    }
    evr_eng_cache_drop(job);
    evr_cache_job_destroy(&job->caches);
    free(job->reason);
    free(job->doing);
    free(job->cancel_reason);
    free(job->id);
    free(job);
}

#define S_SECRET_MAX 65536

evr_rc_t
evr_engine_copy_save(evr_engine_t *self, const char *job_id, const char *which,
                     const uint8_t *data, size_t len, evr_err_t *err)
{
    char *dir = evr_asprintf("%s/%s", self->opts.artifacts_dir, job_id);
    char *path = evr_eng_copy_file(self, job_id, !strcmp(which, "source"));
    char *tmp = evr_asprintf("%s.tmp", path);
    evr_rc_t rc = evr_mkdirs(dir, err);
    FILE *fp = rc ? NULL : fopen(tmp, "wbe");
    bool ok = fp && fwrite(data, 1, len, fp) == len;
    ok = fp && fflush(fp) == 0 && fsync(fileno(fp)) == 0 && ok;
    if (fp)
        ok = fclose(fp) == 0 && ok;
    if (!rc && !(ok && rename(tmp, path) == 0)) {
        rc = evr_err_set(err, EVR_ERR_IO, "keeping the %s's tar in %s: %s", which, path,
                         strerror(errno ? errno : EIO));
        unlink(tmp);
    }
    free(tmp);
    free(path);
    free(dir);
    return rc;
}

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

/*  The pipeline's registry_auth: a secret read as the others are, given
    to no step (it goes with pulls only) and masked in output like them. */
static bool
s_registry_auth(const evr_engine_t *e, evr_eng_job_t *job, evr_err_t *err)
{
    const char *name = job->spec->registry_auth;
    char *v = NULL;
    evr_rc_t rc = s_secret(e, name, &v, err);
    if (!rc && !v)
        rc = s_secret_missing(e, name, err);
    if (!rc && (!strchr(v, ':') || *v == ':')) {
        rc = evr_err_set(err, EVR_ERR_CONFIG, "secret %s (the pipeline's registry_auth): "
                         "expected user:password", name);
        free(v);
    }
    if (rc)
        return false;
    job->secrets[job->nsecrets++] = v;
    job->registry_auth = v;
    return true;
}

/*  Whether the runner's host_network setting lets spec run: false
    (EVR_ERR_CONFIG in err, naming the step and what to do) when it denies
    a step with network: host; and whether its podman can apply the
    steps' limits (evr_exec_limits_ok). */
static bool
s_network_allowed(const evr_engine_t *e, const evr_spec_t *spec, evr_err_t *err)
{
    if (spec->executor != EVR_EXECUTOR_PROCESS
        && !evr_exec_limits_ok(evr_exec_find(e->execs, "podman"), spec, err))
        return false;
    if (!e->opts.host_network_deny || spec->executor == EVR_EXECUTOR_PROCESS)
        return true;
    for (uint32_t i = 0; i < spec->steps.n; i++) {
        const evr_step_t *st = evr_spec_step(spec, i);
        if (evr_spec_step_network(spec, st) == EVR_NETWORK_HOST) {
            evr_err_set(err, EVR_ERR_CONFIG, "step %s: network: host is refused by this "
                        "runner (its host_network setting is deny): use bridge or none, or "
                        "send the job to a runner started with --host-network allow", st->name);
            return false;
        }
    }
    return true;
}

/*  A source's secret (git's, or the tarball's beside it), NULL: none. */
static const char *
s_source_secret(const evr_source_t *src)
{
    if (!src->present)
        return NULL;
    return src->git.present ? src->git.secret : src->tarball ? src->secret : NULL;
}

/*  The credentials of a fetch (git.secret, a tarball's or a resource's
    secret) in *value, read as secrets are, given to the fetch alone and
    masked: whole, and the password of USER:PASSWORD (a step never gets
    them, but one could print a token it found, a credential helper's,
    or the same token in another form).  false (EVR_ERR_CONFIG in err)
    when it is not set. */
static bool
s_fetch_secret(evr_eng_job_t *job, const char *name, char **value, evr_err_t *err)
{
    evr_rc_t rc = s_secret(job->eng, name, value, err);
    if (rc || !*value) {
        if (!rc)
            s_secret_missing(job->eng, name, err);
        return false;
    }
    const char *pw = strchr(*value, ':');
    job->secrets[job->nsecrets++] = evr_strdup(*value);
    if (pw && strlen(pw + 1) >= 4)
        job->secrets[job->nsecrets++] = evr_strdup(pw + 1);
    return true;
}

/*  The secrets the job's spec names (its env and job->secrets), its
    sources' and resources' credentials and its registry_auth, read;
    false (EVR_ERR_CONFIG in err) when one is not set. */
static bool
s_job_secrets(evr_eng_job_t *job, evr_err_t *err)
{
    evr_engine_t *self = job->eng;
    const evr_spec_t *spec = job->spec;
    /* room for the fetches' credentials (each whole and its password) and registry_auth */
    job->secrets = evr_realloc(job->secrets, (job->nsecrets + spec->secrets.n + 6
                                              + 2 * (size_t) spec->resources.n)
                                                 * sizeof(char *));
    for (uint32_t i = 0; i < spec->secrets.n; i++) {
        char *v = NULL;
        evr_rc_t rc = s_secret(self, spec->secrets.v[i], &v, err);
        if (rc || !v) {
            if (!rc)
                s_secret_missing(self, spec->secrets.v[i], err);
            return false;
        }
        evr_strmap_set(&job->env, spec->secrets.v[i], v);
        job->secrets[job->nsecrets++] = v;
    }
    /* the fetches' credentials: read as secrets are, given to git or curl only */
    for (int i = 0; i < 2; i++) {
        const char *name = s_source_secret(i ? &spec->source : &spec->ci_source);
        if (name && !s_fetch_secret(job, name, &job->src_auth[i], err))
            return false;
    }
    for (uint32_t i = 0; i < spec->resources.n; i++) {
        const char *name = evr_spec_resource(spec, i)->secret;
        if (!name)
            continue;
        if (!job->res_auth)
            job->res_auth = evr_calloc(spec->resources.n, sizeof(char *));
        if (!s_fetch_secret(job, name, &job->res_auth[i], err))
            return false;
    }
    return !spec->registry_auth || s_registry_auth(self, job, err);
}

void
evr_eng_job_secrets_early(evr_eng_job_t *job)
{
    const evr_spec_t *spec = job->spec;
    const char **names = evr_calloc(spec->secrets.n + spec->resources.n + 3, sizeof(char *));
    uint32_t n = 0;
    for (uint32_t i = 0; i < spec->secrets.n; i++)
        names[n++] = spec->secrets.v[i];
    for (int i = 0; i < 2; i++) {
        const char *name = s_source_secret(i ? &spec->source : &spec->ci_source);
        if (name)
            names[n++] = name;
    }
    for (uint32_t i = 0; i < spec->resources.n; i++)
        if (evr_spec_resource(spec, i)->secret)
            names[n++] = evr_spec_resource(spec, i)->secret;
    if (spec->registry_auth)
        names[n++] = spec->registry_auth;
    job->secrets = evr_realloc(job->secrets, (job->nsecrets + 2 * n + 1) * sizeof(char *));
    job->early_at = job->nsecrets;
    for (uint32_t i = 0; i < n; i++) {
        char *v = NULL;
        evr_err_t err;
        if (s_secret(job->eng, names[i], &v, &err) || !v)
            continue;   /* evr_eng_job_check says it */
        const char *pw = strchr(v, ':');   /* a credential's password, as s_job_secrets */
        if (pw && strlen(pw + 1) >= 4 && i >= spec->secrets.n)
            job->secrets[job->nsecrets++] = evr_strdup(pw + 1);
        job->secrets[job->nsecrets++] = v;
    }
    job->early_n = job->nsecrets - job->early_at;
    free(names);
}

/*  The secrets evr_eng_job_secrets_early read, dropped once the check has
    read them all again (each then counted once in the masks' lines). */
static void
s_early_drop(evr_eng_job_t *job)
{
    for (size_t i = 0; i < job->early_n; i++)
        free(job->secrets[job->early_at + i]);
    memmove(job->secrets + job->early_at, job->secrets + job->early_at + job->early_n,
            (job->nsecrets - job->early_at - job->early_n) * sizeof(char *));
    job->nsecrets -= job->early_n;
    job->early_n = 0;
}

void
evr_eng_job_masks(evr_eng_job_t *job)
{
    for (uint32_t i = 0; i < job->n; i++)
        for (int si = 0; si < 2; si++) {
            evr_eng_stream_t *s = &job->steps[i].out[si];
            evr_mask_destroy(&s->mask);
            s->mask = evr_mask_new((const char *const *) job->secrets, job->nsecrets);
            /* a chunk's bytes stay within the schema's bound, masks included */
            evr_mask_limit(s->mask, 2 * EVR_OUTPUT_CHUNK_MAX);
        }
    if (job->n)
        evr_eng_job_masks_dropped(job, job->steps[0].out[0].mask);
}

void
evr_eng_job_masks_dropped(evr_eng_job_t *job, const evr_mask_t *m)
{
    size_t d = evr_mask_dropped(m);
    if (d > job->mask_dropped)
        evr_eng_warn("job %s: %zu lines of its secrets are not masked on their own (a job's "
                     "masks hold %d lines at most; each secret is still masked whole)",
                     job->id, d, EVR_MASK_PIECES_MAX);
    if (d > job->mask_dropped)
        job->mask_dropped = d;
}

bool
evr_eng_job_check(evr_eng_job_t *job, evr_err_t *err)
{
    evr_exec_t *ex = s_executor(job->eng, job->spec, err);
    if (!ex || !s_network_allowed(job->eng, job->spec, err) || !s_job_secrets(job, err))
        return false;   /* the early ones kept: the later hooks' messages are masked */
    s_early_drop(job);
    job->unchecked = false;
    evr_eng_job_masks(job);
    return true;
}

evr_eng_job_t *
evr_eng_job_new(evr_engine_t *self, const char *job_id, const evr_spec_t *spec,
                const evr_strmap_t *args, bool defer, evr_err_t *err)
{
    evr_exec_t *ex = s_executor(self, spec, err);
    if (!ex && defer)
        ex = self->execs[0];   /* said by evr_eng_job_check; the job runs nothing */
    if (!ex || (!defer && !s_network_allowed(self, spec, err)))
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
    job->unchecked = defer;
    if (!defer && !s_job_secrets(job, err)) {
        evr_eng_job_free(job);
        return NULL;
    }
    /* on_error, when there is one, is the last step: the same machine,
       its name its own */
    job->n = evr_spec_job_steps(job->spec);
    job->on_error = job->spec->on_error;
    job->on_error.name = evr_strdup(EVR_ON_ERROR_NAME);
    job->steps = evr_calloc(job->n, sizeof(evr_eng_step_t));
    for (uint32_t i = 0; i < job->n; i++) {
        evr_eng_step_t *st = &job->steps[i];
        st->job = job;
        st->index = i;
        st->on_error = i == job->spec->steps.n;
        st->spec = st->on_error ? &job->on_error : evr_spec_step(job->spec, i);
        if (st->spec->needs.n || job->spec->dag)
            job->dag = true;
        for (int si = 0; si < 2; si++)
            st->out[si].line_start = true;
    }
    evr_eng_job_masks(job);
    evr_eng_secrets_load(job);   /* a recovered job's, registered before */
    /* nothing shared between units, nothing put in or read from the
       workspace (a source, a cache key's file, artifacts): the one
       unit's own workspace does */
    const evr_step_t *one = job->n == 1 ? evr_spec_step(job->spec, 0) : NULL;
    job->no_ws = ex->ops->own_workspace && one && !spec->resources.n && !one->artifacts.paths.n
                 && !(one->retry.present && one->retry.max) && !evr_spec_has_source(spec)
                 && !spec->cache.n && !one->cache.n;
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

void
evr_eng_prep_doing(evr_eng_job_t *job, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char buf[300];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(job->doing);
    job->doing = evr_strdup(buf);
}

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
        evr_eng_source_next(job);
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
const char *
evr_eng_fetch_setting(const evr_fetch_result_t *r)
{
    if (r->rc == EVR_ERR_LIMIT)
        return " (the runner's resource_max_bytes setting)";
    if (r->rule == EVR_FETCH_RULE_REDIRECTS)
        return " (the runner's resource_redirects setting)";
    if (r->rule == EVR_FETCH_RULE_LOCAL)
        return " (the runner's resource_local setting)";
    return "";
}

const char *
evr_eng_fetch_auth_hint(const evr_fetch_result_t *r, const char *secret, char *buf, size_t size)
{
    if (r->status != 401 && r->status != 403)
        return "";
    if (secret && r->elsewhere)   /* curl sends them to the URL's origin only */
        snprintf(buf, size, " (from %s, a redirect to another scheme, host or port: the "
                 "credentials of secret %s were not sent there)", r->elsewhere, secret);
    else if (secret)
        snprintf(buf, size, " (the credentials of secret %s were sent)", secret);
    else
        snprintf(buf, size, "%s", r->status == 401 ? " (a private server: name a secret "
                 "holding USER:PASSWORD or a token in its secret)" : "");
    return buf;
}

static void s_res_put_go(void *arg);

/*  The image a podman executor puts a tar into the workspace through: the
    first step's (its own, else the pipeline's), pulled as that step's
    policy says, so that no image is pulled that the step would not. */
const char *
evr_eng_first_image(const evr_eng_job_t *job, uint32_t *policy)
{
    const evr_step_t *first = evr_spec_step(job->spec, 0);
    *policy = evr_spec_step_pull(job->spec, first);
    return first->image ? first->image : job->spec->image;
}

/*  The tar of the resource is made: into the workspace.  A podman
    executor reaches it through a container of the first step's image,
    pulled first as the first step's policy says. */
static void
s_res_put_go(void *arg)
{
    evr_eng_job_t *job = arg;
    uint32_t policy;
    const char *image = evr_eng_first_image(job, &policy);
    const char *why;
    int ready = evr_eng_image_need(job, image, policy, s_res_put_go, job, &why);
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    if (ready == 0) {
        evr_eng_prep_doing(job, "pulling image %s (to copy resource %s in)", image, res->name);
        return;
    }
    if (ready < 0 || evr_eng_halted(job)) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "resource %s: %s", res->name,
                 evr_eng_halted(job) || !why
                 ? (job->timed_out ? "the job timed out while its image was pulled"
                                   : "the job was cancelled while its image was pulled")
                 : why);
        s_res_end(job, reason);
        return;
    }
    evr_eng_prep_doing(job, "copying resource %s into %s", res->name,
                       job->ex->ops->workspace_word);
    job->ex->ops->put(job->ex, job->id, EVR_EXEC_AREA_WORKSPACE, image, job->res_tar, s_res_put,
                      job);
}

/*  What the child making a resource's tar reports (evr_offload.h). */
typedef struct {
    int32_t rc;
    char msg[EVR_ERR_MAX];
} s_res_made_t;
EVR_OFFLOAD_FITS(s_res_made_t);

/*  In the child: the tar put into the workspace, made from the download
    (evr_resource_tar: unpacked under the resource's path, or the one
    file), off the runner's loop.  job is the child's snapshot. */
static void
s_res_work(void *arg, void *out, size_t size)
{
    (void) size;
    const evr_eng_job_t *job = arg;
    s_res_made_t *m = out;
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    evr_err_t err = { 0 };
    m->rc = evr_resource_tar(job->res_file, res->path, job->eng->opts.resource_max_bytes,
                             job->res_tar, &err);
    if (m->rc)
        snprintf(m->msg, sizeof m->msg, "%s", err.msg);
}

/*  Back on the loop: the resource's tar is made (or not: why). */
static void
s_res_made(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    evr_eng_job_t *job = arg;
    const s_res_made_t *m = out;
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    job->res_work = NULL;
    unlink(job->res_file);
    if (rc || m->rc) {
        char reason[2 * EVR_ERR_MAX];
        bool bytes = m->rc == EVR_ERR_LIMIT && strstr(m->msg, "over the limit of");
        snprintf(reason, sizeof reason, "resource %s: %s%s%s", res->name, rc ? "making its tar: "
                 : "", rc ? msg : m->msg, bytes ? " (the runner's resource_max_bytes setting)"
                 : "");
        s_res_end(job, reason);
        return;
    }
    s_res_put_go(job);
}

static void
s_res_fetched(const evr_fetch_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    char reason[2 * EVR_ERR_MAX] = "";
    job->res_req = NULL;
    job->res_bytes = r->bytes;
    if (evr_eng_halted(job))
        snprintf(reason, sizeof reason, "the job %s while resource %s was downloaded",
                 job->timed_out ? "timed out" : "was cancelled", res->name);
    else if (r->rc) {
        char hint[EVR_SPEC_MAX_NAME + 640];   /* a redirect's URL too */
        snprintf(reason, sizeof reason, "resource %s: %s%s%s", res->name, r->msg,
                 evr_eng_fetch_setting(r),
                 evr_eng_fetch_auth_hint(r, res->secret, hint, sizeof hint));
    }
    if (*reason) {
        s_res_end(job, reason);
        return;
    }
    job->res_tar = evr_asprintf("%s.tar", job->res_file);
    evr_eng_prep_doing(job, "unpacking resource %s", res->name);
    job->res_work = evr_offload_start(job->eng->loop, s_res_work, sizeof(s_res_made_t),
                                      s_res_made, job);
    evr_offload_what(job->res_work, "job %s: unpacking resource %s", job->id, res->name);
    evr_offload_temp(job->res_work, job->res_tar);   /* gone with a cancel */
}

void
evr_eng_resource_abort(evr_eng_job_t *job)
{
    if (!job->res_work)
        return;
    evr_offload_cancel(&job->res_work);   /* its child killed, its tar removed */
    const evr_resource_t *res = evr_spec_resource(job->spec, job->res_index);
    char reason[2 * EVR_ERR_MAX];
    snprintf(reason, sizeof reason, "the job %s while resource %s was unpacked",
             job->timed_out ? "timed out" : "was cancelled", res->name);
    s_res_end(job, reason);
}

static void
s_res_next(evr_eng_job_t *job)
{
    if (evr_eng_halted(job)) {
        s_res_end(job, job->timed_out ? "the job timed out while its resources were downloaded"
                                      : "the job was cancelled while its resources were "
                                        "downloaded");
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
    evr_eng_prep_doing(job, "downloading resource %s", res->name);
    evr_fetch_opts_t o = { .url = res->url, .file = job->res_file,
                           .timeout_ms = EVR_ENG_DOWNLOAD_MS,
                           .max_bytes = job->eng->opts.resource_max_bytes,
                           .redirects = job->eng->opts.resource_redirects,
                           .deny_local = job->eng->opts.resource_deny_local,
                           .auth = job->res_auth ? job->res_auth[job->res_index] : NULL };
    job->res_req = evr_fetch_start(job->eng->fetch, &o, s_res_fetched, job);
}

void
evr_eng_job_prepare(evr_eng_job_t *job)
{
    evr_eng_prep_doing(job, "making the job's workspace");
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
    job->ws_ready = true;
    if (evr_eng_halted(job)) {
        evr_eng_prep_failed(job, job->timed_out ? "the job timed out while its workspace was made"
                                                : "the job was cancelled while its workspace was "
                                                  "made");
        return;
    }
    if (job->spec->resources.n == 0) {
        evr_eng_source_next(job);
        return;
    }
    s_res_next(job);
}
