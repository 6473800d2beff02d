/*  evr_eng_hooks.c: when the runner's lifecycle hooks fire for a job, and
    what their results do to it (README "Lifecycle hooks").

    The job's flow with hooks: job.accepted committed; PRE_VALIDATION;
    the runner's checks (executor, network, secrets: evr_eng_job_check);
    POST_VALIDATION; PRE_SOURCE_PREP; preparation (workspace, resources,
    sources, caches); POST_SOURCE_PREP; job.started; PRE_EXECUTION; the
    steps; POST_EXECUTION; ON_ERROR when the job failed or timed out;
    CLEANUP; job.finished.  One hook at a time: hook.started is queued,
    the hook runs (evr_hook_run.c), hook.finished is queued with how it
    ended.  A hook that fails (not optional) ends its phase (CLEANUP's
    hooks all run whatever happens) and fails the job: before the steps
    every step is skipped with its message, after them the job's status
    becomes failed; its message is the job's reason.

    What hooks add (env, secrets) goes into the job's environment, the
    secrets into its output masks; it is kept in HOOKS_DIR/JOB.json
    (0600, never in the log) until the job is done, so a recovered runner
    gives the steps the same.  Recovery first kills the process groups
    of hooks the killed runner left running (evr_hook_pg.h), then runs
    again each hook that has no hook.finished in the log, and no other.
*/
#include "evr_codec.h"
#include "evr_engine_int.h"
#include "evr_hook_pg.h"
#include "evr_hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (s_cont_fn)(evr_eng_job_t *job, bool failed);

struct evr_eng_hk {
    evr_hook_phase_t phase;     /* the phase running (busy) */
    size_t next;                /* the hook of it to run next (in opts.hooks->v) */
    evr_hook_run_t *run;        /* under way */
    s_cont_fn *cont;            /* what comes after the phase */
    bool busy, phase_failed;
    bool starting;              /* hook.started queued: the run waits for its commit */
    bool finished[EVR_HOOKS_MAX];   /* recorded finished (here or before a restart) */
    uint64_t started[EVR_HOOKS_MAX];    /* recovery: its hook.started's time (wall ns) */
    char *fail;                 /* the first failing hook's message: the job's reason */
    bool fail_after;            /* ... of a hook after the steps (POST_EXECUTION, ON_ERROR,
                                   CLEANUP) */
    evr_strmap_t env, secrets;  /* what hooks added (the hooks file) */
    bool end_begun, end_done;
    char *ws;                   /* the workspace's host path, once asked */
    bool ws_asked;
};

static const evr_hooks_t *
s_hooks(const evr_eng_job_t *job)
{
    const evr_hooks_t *hs = job->eng->opts.hooks;
    return hs && hs->n ? hs : NULL;
}

static struct evr_eng_hk *
s_hk(evr_eng_job_t *job)
{
    if (!job->hk)
        job->hk = evr_calloc(1, sizeof *job->hk);
    return job->hk;
}

bool
evr_eng_hooks_busy(const evr_eng_job_t *job)
{
    return job->hk && job->hk->busy;
}

bool
evr_eng_hooks_doing(const evr_eng_job_t *job, char *buf, size_t size)
{
    const struct evr_eng_hk *hk = job->hk;
    const evr_hooks_t *hs = job->eng->opts.hooks;
    if (!hk || !hs || !hk->busy || hk->phase >= EVR_HOOK_POST_EXECUTION || hk->next >= hs->n
        || (!hk->run && !hk->starting))
        return false;
    const evr_hook_t *h = &hs->v[hk->next];
    snprintf(buf, size, "running hook %s (%s)", h->name, evr_hook_phase_name(h->phase));
    return true;
}

bool
evr_eng_hooks_secret(const evr_eng_job_t *job, const char *name)
{
    return job->hk && evr_strmap_get(&job->hk->secrets, name) != NULL;
}

const char *
evr_eng_hooks_reason(const evr_eng_job_t *job, bool *after_steps)
{
    if (after_steps)
        *after_steps = job->hk && job->hk->fail_after;
    return job->hk ? job->hk->fail : NULL;
}

/* ------------------------------------------------------- the hooks file */

static char *
s_file(const evr_eng_job_t *job)
{
    const char *dir = job->eng->opts.hooks_dir;
    return dir ? evr_asprintf("%s/%s.json", dir, job->id) : NULL;
}

/*  m over what the hooks added before (base), as a JSON object. */
static json_t *
s_map_json(const evr_strmap_t *base, const evr_strmap_t *m)
{
    json_t *o = json_object();
    for (uint32_t i = 0; i < base->n; i++)
        json_object_set_new(o, base->k[i], json_string(base->v[i]));
    for (uint32_t i = 0; i < m->n; i++)
        json_object_set_new(o, m->k[i], json_string(m->v[i]));
    return o;
}

/*  Writes what hooks added so far, env and secrets (a hook's answer)
    with it, owner-only, replaced whole; false with why when it could not
    be written (the answer is then not taken: a restart, which does not
    run the hook again, would not have it). */
static bool
s_save(evr_eng_job_t *job, const evr_strmap_t *env, const evr_strmap_t *secrets, char *why,
       size_t size)
{
    char *path = s_file(job);
    if (!path)
        return true;
    char *tmp = evr_asprintf("%s.tmp", path);
    json_t *js = json_pack("{s:o,s:o}", "env", s_map_json(&job->hk->env, env), "secrets",
                           s_map_json(&job->hk->secrets, secrets));
    char *text = js ? json_dumps(js, JSON_COMPACT) : NULL;
    const char *what = "encoding it as JSON";
    int e = EINVAL;
    mkdir(job->eng->opts.hooks_dir, 0700);
    int fd = -1;
    if (text) {
        what = "open";
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        e = errno;
    }
    size_t len = text ? strlen(text) : 0;
    bool ok = false;
    if (fd >= 0) {
        ssize_t w = write(fd, text, len);
        e = w < 0 ? errno : ENOSPC;   /* a short write: the disk is full */
        what = "write";
        if (w == (ssize_t) len) {
            what = "fsync";
            ok = fsync(fd) == 0;
            e = errno;
        }
        close(fd);
    }
    if (ok) {
        what = "rename";
        ok = rename(tmp, path) == 0;
        e = errno;
    }
    if (!ok) {
        snprintf(why, size, "its answer is not taken: it could not be kept for a restart in "
                 "%s: %s %s: %s", path, what, tmp, strerror(e));
        unlink(tmp);
    }
    free(text);
    json_decref(js);
    free(tmp);
    free(path);
    return ok;
}

/*  env and secrets into the job: its steps' environment, the secrets
    into its masks too. */
static void
s_apply(evr_eng_job_t *job, const evr_strmap_t *env, const evr_strmap_t *secrets)
{
    struct evr_eng_hk *hk = s_hk(job);
    for (uint32_t i = 0; i < env->n; i++) {
        evr_strmap_set(&job->env, env->k[i], env->v[i]);
        evr_strmap_set(&hk->env, env->k[i], env->v[i]);
    }
    if (!secrets->n)
        return;
    job->secrets = evr_realloc(job->secrets, (job->nsecrets + secrets->n + 2) * sizeof(char *));
    for (uint32_t i = 0; i < secrets->n; i++) {
        evr_strmap_set(&job->env, secrets->k[i], secrets->v[i]);
        evr_strmap_set(&hk->secrets, secrets->k[i], secrets->v[i]);
        job->secrets[job->nsecrets++] = evr_strdup(secrets->v[i]);
    }
    evr_eng_job_masks(job);
}

static void
s_load(evr_eng_job_t *job)
{
    char *path = s_file(job);
    json_error_t je;
    json_t *js = path ? json_load_file(path, 0, &je) : NULL;
    evr_strmap_t env = { 0 }, secrets = { 0 };
    evr_err_t err;
    if (js) {
        char *text = json_dumps(js, JSON_COMPACT);
        if (text && evr_hook_answer(text, strlen(text), &env, &secrets, &err))
            evr_eng_warn("job %s: %s: %s", job->id, path, err.msg);
        else
            s_apply(job, &env, &secrets);
        free(text);
    }
    json_decref(js);
    evr_strmap_free(&env);
    evr_strmap_free(&secrets);
    free(path);
}

void
evr_eng_hooks_done(evr_eng_job_t *job)
{
    char *path = s_file(job);
    if (path)
        unlink(path);
    free(path);
}

void
evr_eng_hooks_free(evr_eng_job_t *job)
{
    struct evr_eng_hk *hk = job->hk;
    if (!hk)
        return;
    evr_hook_run_abort(hk->run);
    free(hk->fail);
    free(hk->ws);
    evr_strmap_free(&hk->env);
    evr_strmap_free(&hk->secrets);
    free(hk);
    job->hk = NULL;
}

/* -------------------------------------------------------------- running */

static const char *
s_status_now(const evr_eng_job_t *job)
{
    if (job->timed_out)
        return "timed_out";
    if (job->cancelling)
        return "cancelled";
    if (job->failed)
        return "failed";
    if (job->hk && job->hk->end_begun)
        return "succeeded";
    return job->phase == EVR_ENG_JOB_PREPARING ? "queued" : "running";
}

static json_t *
s_source(const evr_eng_job_t *job)
{
    if (!job->spec->source.present)
        return json_string("none");
    const evr_source_t *s = &job->spec->source;
    const char *url = evr_source_url(s);
    json_t *o = json_object();
    json_object_set_new(o, "url", url ? json_string(url) : json_null());
    json_object_set_new(o, "ref", s->git.present && s->git.ref ? json_string(s->git.ref)
                                                                : json_null());
    json_object_set_new(o, "sha", job->src_commit[1] ? json_string(job->src_commit[1])
                                                     : json_null());
    return o;
}

/*  The job's context on a hook's stdin (README "Lifecycle hooks"): one
    line of JSON, ending in a newline (a shell's `read` takes it); `steps`
    from POST_EXECUTION on, each step's `exit_code` once it ran,
    `reason` when it has one and `allowed` when it failed with
    allow_failure. */
static char *
s_context(evr_eng_job_t *job, const evr_hook_t *h)
{
    json_t *o = json_object();
    json_object_set_new(o, "phase", json_string(evr_hook_phase_name(h->phase)));
    json_object_set_new(o, "hook", json_string(h->name));
    json_object_set_new(o, "job", json_string(job->id));
    json_object_set_new(o, "pipeline", json_string(job->spec->pipeline));
    json_object_set_new(o, "runner", job->eng->opts.runner_id
                                         ? json_string(job->eng->opts.runner_id) : json_null());
    json_object_set_new(o, "executor", json_string(job->ex->ops->name));
    json_object_set_new(o, "status", json_string(s_status_now(job)));
    json_object_set_new(o, "reason", job->hk->fail ? json_string(job->hk->fail) : json_null());
    json_object_set_new(o, "workspace", job->hk->ws ? json_string(job->hk->ws) : json_null());
    json_object_set_new(o, "source", s_source(job));
    json_t *steps = h->phase >= EVR_HOOK_POST_EXECUTION ? json_array() : NULL;
    for (uint32_t i = 0; steps && i < job->n; i++) {
        const evr_eng_step_t *st = &job->steps[i];
        json_t *s = json_pack("{s:s,s:s}", "name", st->spec->name, "status",
                              evr_step_status_name(st->status));
        if (st->state == EVR_ENG_STEP_FINISHED && st->exit_code != EVR_STEP_NO_EXIT)
            json_object_set_new(s, "exit_code", json_integer(st->exit_code));
        if (st->reason)
            json_object_set_new(s, "reason", json_string(st->reason));
        if (st->allowed)    /* failed, with allow_failure: the job did not fail of it */
            json_object_set_new(s, "allowed", json_true());
        json_array_append_new(steps, s);
    }
    if (steps)
        json_object_set_new(o, "steps", steps);
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *text = evr_asprintf("%s\n", line);
    free(line);
    return text;
}

static void s_next(evr_eng_job_t *job);

/*  Whether the job was cancelled or timed out: the hooks of the phases
    before the steps (PRE_VALIDATION .. PRE_EXECUTION) stop, and the
    phases after them still run. */
static bool
s_halted(const evr_eng_job_t *job)
{
    return job->cancelling || job->timed_out;
}

static void
s_finished(evr_eng_job_t *job, const evr_hook_t *h, const char *status, const char *why,
           uint64_t ms)
{
    evr_event_t *ev = evr_eng_emit(job, EVR_EV_HOOK_FINISHED, NULL);
    ev->data.phase = evr_strdup(evr_hook_phase_name(h->phase));
    ev->data.name = evr_strdup(h->name);
    ev->data.status = evr_strdup(status);
    ev->data.duration_ms = ms;
    if (why) {
        ev->data.reason = evr_strdup(why);
        evr_text_fit(ev->data.reason, EVR_REASON_MAX);   /* on a character, "…" last */
    }
    evr_eng_print(job->eng, "evrun-runner: hook %s (%s) %s%s%s (%llu ms)%s", h->name,
                  evr_hook_phase_name(h->phase), status, why ? ": " : "", why ? why : "",
                  (unsigned long long) ms, strcmp(status, "succeeded") && h->optional
                  ? " (optional)" : "");
}

/*  The secrets of a failed hook's answer (not taken: it failed) masked in
    its message, why, as the job's are (s_mask): it printed them as
    secrets, and may name them in its stderr ("token T could not be
    renewed").  cut: why ends where the hook's stderr was cut. */
static void
s_mask_answer(const evr_hook_result_t *r, char *why, size_t size, bool cut)
{
    evr_strmap_t env = { 0 }, secrets = { 0 };
    evr_err_t err;
    if (!r->out_cut && !evr_hook_answer(r->out, r->out_len, &env, &secrets, &err)
        && secrets.n) {
        const char *const *v = (const char *const *) secrets.v;
        char *m = cut ? evr_mask_text_cut(v, secrets.n, why) : evr_mask_text(v, secrets.n, why);
        snprintf(why, size, "%s", m);
        free(m);
    }
    evr_strmap_free(&env);
    evr_strmap_free(&secrets);
}

/*  How the run ended: its status, and why (NULL: it succeeded).  Up to
    PRE_EXECUTION the hook's stdout is its answer (env and secrets taken
    here); after it, its stdout is no answer and is not read as one. */
static const char *
s_judge(evr_eng_job_t *job, const evr_hook_t *h, const evr_hook_result_t *r, char *why,
        size_t size, bool *cut)
{
    why[0] = '\0';
    *cut = false;
    if (r->end == EVR_HOOK_NOT_RUN) {
        snprintf(why, size, "could not be started: %s", r->msg);
        return "failed";
    }
    if (r->end == EVR_HOOK_STOPPED) {
        snprintf(why, size, "%s", job->timed_out ? "the job timed out" : "the job was cancelled");
        return "stopped";
    }
    if (r->end == EVR_HOOK_TIMED_OUT && r->held) {
        /* it ended, but its output did not: a process it moved out of its
           group (setsid CMD &) kept a pipe, and what it wrote is no answer */
        char how[64];
        bool sig = WIFSIGNALED(r->wait_status);
        snprintf(why, size, "timed out after %u s (its timeout): it had %s%s%s, but a "
                 "process it left running outside its process group kept its %s open; give "
                 "that process other output (CMD >/dev/null 2>&1 </dev/null)", h->timeout,
                 sig ? "been " : "exited (", evr_wait_text(r->wait_status, how, sizeof how),
                 sig ? "" : ")", r->held == 1 ? "stdout" : r->held == 2 ? "stderr"
                                                                   : "stdout and stderr");
        return "timed_out";
    }
    if (r->end == EVR_HOOK_TIMED_OUT) {
        snprintf(why, size, "timed out after %u s (its timeout)", h->timeout);
        return "timed_out";
    }
    if (r->exit_code) {
        bool pre = evr_hook_phase_pre(h->phase);
        char how[64];
        evr_wait_text(r->wait_status, how, sizeof how);
        if (r->err_text[strspn(r->err_text, " \t\r\n")]) {   /* it said something */
            /* a signal that ended it first: its stderr may be cut at the end */
            snprintf(why, size, "%s%s%s", WIFSIGNALED(r->wait_status) ? how : "",
                     WIFSIGNALED(r->wait_status) ? ": " : "", r->err_text);
            *cut = r->err_cut;   /* why ends where its stderr was cut */
            if (h->phase <= EVR_HOOK_PRE_EXECUTION)
                s_mask_answer(r, why, size, *cut);
        }
        else
            snprintf(why, size, WIFSIGNALED(r->wait_status) ? "%s: %s" : "%s (%s)",
                     pre ? "refused the job" : "failed", how);
        return pre ? "refused" : "failed";
    }
    if (h->phase > EVR_HOOK_PRE_EXECUTION)
        return "succeeded";   /* after the steps its stdout is not an answer: never read as one */
    evr_strmap_t env = { 0 }, secrets = { 0 };
    evr_err_t err;
    const char *status = "succeeded";
    if (r->out_cut) {
        snprintf(why, size, "its answer is longer than %u bytes", EVR_HOOK_OUT_MAX);
        status = "failed";
    }
    else if (evr_hook_answer(r->out, r->out_len, &env, &secrets, &err)) {
        size_t i = strspn(r->out, " \t\r\n");
        if (r->out[i] != '{' && r->out[i] != '[')   /* text, not a JSON answer gone wrong */
            snprintf(why, size, "printed text on stdout, not JSON: up to PRE_EXECUTION "
                     "a hook's stdout is its answer, nothing or {\"env\": {...}, \"secrets\": "
                     "{...}}; print other text to stderr (>&2)");
        else
            snprintf(why, size, "%s", err.msg);
        status = "failed";
    }
    else if ((env.n || secrets.n) && !s_save(job, &env, &secrets, why, size))
        status = "failed";
    else if (env.n || secrets.n)
        s_apply(job, &env, &secrets);
    evr_strmap_free(&env);
    evr_strmap_free(&secrets);
    return status;
}

/*  The job's secrets (declared, and hooks') in text replaced by *** as
    output masks them (lines of a secret too): a hook's message goes to
    the log and the job's reason.  cut: text ends where the hook's stderr
    was cut, so a tail that could begin a secret is dropped ("..." for
    it).  Masked first, then its control characters escaped (\x1b: no
    terminal escape reaches a log or the reason) and its backslashes
    (\\: the four characters \x1b a hook wrote are not read as ESC), then
    cut to size, between characters.  text is a hook's stderr as written:
    it is masked before its end is trimmed and its newlines, CRs and tabs
    made spaces, so a secret that holds them (or ends in one) is still
    found whole. */
static void
s_mask(const evr_eng_job_t *job, char *text, size_t size, bool cut)
{
    const char *const *secrets = (const char *const *) job->secrets;
    char *out = cut ? evr_mask_text_cut(secrets, job->nsecrets, text)
                    : evr_mask_text(secrets, job->nsecrets, text);
    size_t n = strlen(out);
    while (n && strchr(" \t\r\n", out[n - 1]))
        n--;
    out[n] = '\0';
    for (char *c = out; *c; c++)   /* one line for reasons and logs */
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    if (cut) {
        char *more = evr_asprintf("%s...", out);
        free(out);
        out = more;
    }
    evr_text_escape(out, text, size);   /* cut with EVR_CUT_MARK when it does not fit */
    free(out);
}

/*  The first failing hook's message, the job's reason: "hook NAME
    (PHASE): why" (why as hook.finished records it, masked). */
static void
s_fail(evr_eng_job_t *job, const char *name, evr_hook_phase_t phase, const char *why)
{
    struct evr_eng_hk *hk = job->hk;
    if (hk->fail)
        return;
    hk->fail = evr_asprintf("hook %s (%s): %s", name, evr_hook_phase_name(phase), why);
    hk->fail_after = phase >= EVR_HOOK_POST_EXECUTION;   /* POST_EXECUTION, ON_ERROR, CLEANUP */
}

static void
s_done(const evr_hook_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    struct evr_eng_hk *hk = job->hk;
    const evr_hooks_t *hs = s_hooks(job);
    const evr_hook_t *h = &hs->v[hk->next];
    hk->run = NULL;
    char why[EVR_HOOK_ERR_MAX + 256];
    bool cut;
    const char *status = s_judge(job, h, r, why, sizeof why, &cut);
    s_mask(job, why, sizeof why, cut);
    bool ok = !strcmp(status, "succeeded");
    s_finished(job, h, status, ok ? NULL : why, r->duration_ms);
    hk->finished[hk->next++] = true;
    if (r->end == EVR_HOOK_STOPPED)   /* not the hook's failure: the job's reason stays */
        hk->phase_failed = true;
    else if (!ok && !h->optional) {
        s_fail(job, h->name, h->phase, why);
        hk->phase_failed = true;
        if (hk->phase != EVR_HOOK_CLEANUP)   /* the phase's other hooks are not run */
            while (hk->next < hs->n && hs->v[hk->next].phase == hk->phase)
                hk->next++;
    }
    s_next(job);
}

static void
s_ws(const evr_exec_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    job->calls--;
    if (!r->rc && r->names && job->hk) {
        free(job->hk->ws);
        job->hk->ws = evr_strdup(r->names);
        char *nl = strchr(job->hk->ws, '\n');
        if (nl)
            *nl = '\0';
    }
    if (job->hk && job->hk->busy && !job->hk->run && !job->hk->starting)
        s_next(job);
}

/*  hook.started is committed: the hook runs. */
static void
s_start_act(void *arg, void *data, size_t len)
{
    (void) data, (void) len;
    evr_eng_job_t *job = arg;
    struct evr_eng_hk *hk = job->hk;
    const evr_hook_t *h = &s_hooks(job)->v[hk->next];
    hk->starting = false;
    if (s_halted(job) && hk->phase < EVR_HOOK_POST_EXECUTION) {
        /* cancelled while hook.started was committed: not run */
        evr_hook_result_t r = { .end = EVR_HOOK_STOPPED, .out = "", .err_text = "", .msg = "" };
        s_done(&r, job);
        return;
    }
    char *ctx = s_context(job, h);
    hk->run = evr_hook_run(job->eng->loop, h, job->eng->opts.hooks_dir, ctx, strlen(ctx),
                           s_done, job);
    free(ctx);
}

static void
s_next(evr_eng_job_t *job)
{
    struct evr_eng_hk *hk = job->hk;
    const evr_hooks_t *hs = s_hooks(job);
    while (hk->next < hs->n && hs->v[hk->next].phase == hk->phase && hk->finished[hk->next])
        hk->next++;
    if (s_halted(job) && hk->phase < EVR_HOOK_POST_EXECUTION) {
        hk->phase_failed = true;   /* a cancel: the phase's other hooks are not run */
        while (hk->next < hs->n && hs->v[hk->next].phase == hk->phase)
            hk->next++;
    }
    if (hk->next >= hs->n || hs->v[hk->next].phase != hk->phase) {
        hk->busy = false;
        hk->cont(job, hk->phase_failed || hk->fail);
        return;
    }
    /* the workspace's host path, once it is made (asked once; not when
       a cancel or a timeout came before it was: a path that was never
       made) */
    if (!hk->ws_asked && hk->phase >= EVR_HOOK_POST_SOURCE_PREP && !job->no_ws && !job->unchecked
        && job->ws_ready && job->ex->ops->dir) {
        hk->ws_asked = true;
        job->calls++;
        job->ex->ops->dir(job->ex, job->id, NULL, s_ws, job);
        return;
    }
    const evr_hook_t *h = &hs->v[hk->next];
    evr_event_t *ev = evr_eng_emit(job, EVR_EV_HOOK_STARTED, NULL);
    ev->data.phase = evr_strdup(evr_hook_phase_name(h->phase));
    ev->data.name = evr_strdup(h->name);
    hk->starting = true;
    evr_eng_after(job->eng, s_start_act, job, NULL, 0);
}

/*  Runs phase p's hooks not finished yet, then cont. */
static void
s_phase(evr_eng_job_t *job, evr_hook_phase_t p, s_cont_fn *cont)
{
    struct evr_eng_hk *hk = s_hk(job);
    const evr_hooks_t *hs = s_hooks(job);
    hk->phase = p;
    hk->cont = cont;
    hk->busy = true;
    hk->phase_failed = false;
    hk->next = 0;
    while (hk->next < hs->n && hs->v[hk->next].phase < p)
        hk->next++;
    s_next(job);
}

void
evr_eng_hooks_stop(evr_eng_job_t *job)
{
    struct evr_eng_hk *hk = job->hk;
    if (hk && hk->run && hk->phase < EVR_HOOK_POST_EXECUTION)
        evr_hook_run_stop(hk->run, job->killing || job->eng->opts.grace_s <= 0
                                       ? 0 : (uint32_t) job->eng->opts.grace_s * 1000u);
}

/* ------------------------------------------------------------ the flow */

/*  Before the steps: the job fails.  A hook's failure (reason) skips
    every step; a cancel or a timeout that stopped a hook (no reason)
    skips them too before the workspace is made (PRE_VALIDATION to
    PRE_SOURCE_PREP), and after it (PRE_EXECUTION) leaves those that run
    after a failure to the scheduler, as a failed preparation does. */
static void
s_fail_before(evr_eng_job_t *job, const char *reason)
{
    char why[128];
    bool halt = !reason;
    if (halt) {   /* a hook stopped by a cancel */
        evr_eng_end_reason(job, why, sizeof why);
        reason = why;
    }
    if (job->phase == EVR_ENG_JOB_PREPARING) {
        if (halt)
            evr_eng_prep_failed(job, reason);
        else
            evr_eng_job_refused(job, reason);
        return;
    }
    evr_eng_print(job->eng, "evrun-runner: %s", reason);
    job->failed = true;
    for (uint32_t i = 0; i < job->n; i++)
        if (evr_eng_step_waiting(&job->steps[i])
            && !(halt && evr_eng_after_failure(&job->steps[i])))
            evr_eng_step_skip(&job->steps[i], reason);
}

static void
s_after_pre_source(evr_eng_job_t *job, bool failed)
{
    if (failed)
        s_fail_before(job, job->hk->fail);
    else
        evr_eng_job_prepare(job);
}

static void
s_after_post_validation(evr_eng_job_t *job, bool failed)
{
    if (failed)
        s_fail_before(job, job->hk->fail);
    else
        s_phase(job, EVR_HOOK_PRE_SOURCE_PREP, s_after_pre_source);
}

static void
s_after_pre_validation(evr_eng_job_t *job, bool failed)
{
    evr_err_t err;
    if (failed)
        s_fail_before(job, job->hk->fail);
    else if (job->unchecked && !evr_eng_job_check(job, &err)) {
        job->hk->fail = evr_strdup(err.msg);
        s_fail_before(job, err.msg);
    }
    else
        s_phase(job, EVR_HOOK_POST_VALIDATION, s_after_post_validation);
}

void
evr_eng_hooks_accepted(evr_eng_job_t *job)
{
    if (!s_hooks(job)) {
        evr_eng_job_prepare(job);
        return;
    }
    if (job->unchecked)
        evr_eng_job_secrets_early(job);   /* masked in the hooks' messages */
    s_phase(job, EVR_HOOK_PRE_VALIDATION, s_after_pre_validation);
}

static void
s_after_pre_exec(evr_eng_job_t *job, bool failed)
{
    if (failed)
        s_fail_before(job, job->hk->fail);
}

static void
s_after_post_source(evr_eng_job_t *job, bool failed)
{
    evr_eng_job_started(job);
    if (failed)
        s_fail_before(job, job->hk->fail);
    else
        s_phase(job, EVR_HOOK_PRE_EXECUTION, s_after_pre_exec);
}

void
evr_eng_hooks_go(evr_eng_job_t *job)
{
    if (!s_hooks(job)) {
        evr_eng_job_started(job);
        return;
    }
    s_phase(job, EVR_HOOK_POST_SOURCE_PREP, s_after_post_source);
}

static void
s_after_cleanup(evr_eng_job_t *job, bool failed)
{
    if (failed && !job->cancelling && !job->timed_out)
        job->failed = true;
    job->hk->end_done = true;
}

static void
s_after_on_error(evr_eng_job_t *job, bool failed)
{
    (void) failed;
    s_phase(job, EVR_HOOK_CLEANUP, s_after_cleanup);
}

static void
s_after_post_exec(evr_eng_job_t *job, bool failed)
{
    if (failed && !job->cancelling && !job->timed_out)
        job->failed = true;
    if ((job->failed || job->timed_out) && !job->cancelling)
        s_phase(job, EVR_HOOK_ON_ERROR, s_after_on_error);
    else
        s_phase(job, EVR_HOOK_CLEANUP, s_after_cleanup);
}

bool
evr_eng_hooks_end(evr_eng_job_t *job)
{
    if (!s_hooks(job))
        return false;
    struct evr_eng_hk *hk = s_hk(job);
    if (hk->end_done)
        return false;
    if (!hk->end_begun) {
        hk->end_begun = true;
        job->deadline = 0;   /* the job's timeout is its steps': over */
        s_phase(job, EVR_HOOK_POST_EXECUTION, s_after_post_exec);
    }
    return !hk->end_done;
}

/* ------------------------------------------------------------- recovery */

void
evr_eng_hooks_sweep(evr_engine_t *e)
{
    if (!e->opts.hooks_dir)
        return;
    uint32_t killed = 0;
    evr_err_t err;
    if (evr_hook_pg_sweep(e->opts.hooks_dir, &killed, &err))
        evr_eng_warn("hooks: %s", err.msg);
    if (killed)
        evr_eng_warn("killed the process group%s of %u hook%s a killed runner left running",
                     killed == 1 ? "" : "s", killed, killed == 1 ? "" : "s");
}

static int
s_finished_event(const evr_event_t *ev, void *arg)
{
    evr_eng_job_t *job = arg;
    const evr_hooks_t *hs = s_hooks(job);
    evr_evtype_t kind = evr_event_kind(ev);
    if ((kind != EVR_EV_HOOK_FINISHED && kind != EVR_EV_HOOK_STARTED) || !ev->data.phase
        || !ev->data.name)
        return 0;
    for (size_t i = 0; i < hs->n; i++)
        if (!strcmp(evr_hook_phase_name(hs->v[i].phase), ev->data.phase)
            && !strcmp(hs->v[i].name, ev->data.name)) {
            if (kind == EVR_EV_HOOK_STARTED) {
                job->hk->started[i] = ev->time ? ev->time : 1;
                continue;
            }
            job->hk->finished[i] = true;
            if (strcmp(ev->data.status, "succeeded") && strcmp(ev->data.status, "stopped")
                && !hs->v[i].optional)   /* stopped: not its failure */
                s_fail(job, hs->v[i].name, hs->v[i].phase,
                       ev->data.reason ? ev->data.reason : ev->data.status);
        }
    return 0;
}

/*  A cancelled job's hooks of the phases before the steps that the
    killed runner was running (hook.started, no hook.finished): not run
    again (a cancel stops them), and recorded stopped, so that the log
    says how each run ended. */
static void
s_stopped_before(evr_eng_job_t *job)
{
    const evr_hooks_t *hs = s_hooks(job);
    struct evr_eng_hk *hk = job->hk;
    if (!job->cancelling)
        return;
    for (size_t i = 0; i < hs->n; i++) {
        const evr_hook_t *h = &hs->v[i];
        if (!hk->started[i] || hk->finished[i] || h->phase >= EVR_HOOK_POST_EXECUTION)
            continue;
        uint64_t now = evr_now_ns();
        s_finished(job, h, "stopped", "the job was cancelled (the runner that ran it was "
                   "killed; not run again)",
                   now > hk->started[i] ? (now - hk->started[i]) / 1000000u : 0);
        hk->finished[i] = true;
    }
}

void
evr_eng_hooks_recover(evr_eng_job_t *job, bool queued)
{
    if (!s_hooks(job)) {
        /* hooks gone from the settings: what they added still holds */
        if (job->eng->opts.hooks_dir)
            s_load(job);
        if (queued)
            evr_eng_job_prepare(job);
        return;
    }
    s_hk(job);
    evr_err_t err;
    if (evr_store_job_events(job->eng->store, job->id, 1, s_finished_event, job, &err)
        == EVR_ERR_STORE)
        evr_eng_warn("job %s: reading its hook.finished events: %s", job->id, err.msg);
    s_load(job);
    s_stopped_before(job);
    if (queued) {
        evr_eng_hooks_accepted(job);
        return;
    }
    for (uint32_t i = 0; i < job->n; i++)
        if (job->steps[i].state != EVR_ENG_STEP_PENDING)
            return;   /* its steps have begun: PRE_EXECUTION was over */
    s_phase(job, EVR_HOOK_PRE_EXECUTION, s_after_pre_exec);
}
