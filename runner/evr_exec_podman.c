/*  evr_exec_podman.c: the podman executor, evr_exec.h's operations as
    libpod calls (evr_podman.c).

    Each operation is one call record (evr_pe_op_t) that turns podman's answer
    into an evr_exec_result_t: podman's state strings into the neutral
    enum, "no HTTP answer at all" into r->transport.  A log read skips the
    bytes per stream the engine already has (from[]), so the engine sees
    only what is new.  Records in flight are listed, so that destroying
    the executor (which drops podman's calls unanswered) frees them.

    Attach, and the exit of an attached unit read from conmon's exit file
    (else by inspect) before podman's wait answers, are in
    evr_exec_podman_attach.c; the parts both
    files share in evr_exec_podman_int.h.

    Image memo (evr_pulls.h): a `missing` pull without a pipeline's
    credentials that found (or fetched) its image is remembered for
    S_MEMO_MS; the same pull within that time is answered from a turn of
    the loop, without podman (~3 ms on each job's critical path); each
    create of the image that succeeds renews it.  The memo never makes a
    step fail: a create refused with "image not known" for an image it
    holds (removed meanwhile) drops the image from it, pulls it
    (`missing`, with the runner's registry_auth file, as the memo's pull
    was) and sends the same create again; only that second outcome
    counts.  Such a pull records no image.* event (it goes to a registry
    only when the image was removed within those seconds).
*/
#include "evr_exec_podman.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_exec_podman_int.h"

#define S_MEMO_MS 2000

evr_pe_op_t *
evr_pe_op_new(evr_pe_t *pe, evr_pe_kind_t kind, evr_exec_fn *fn, void *arg)
{
    evr_pe_op_t *op = evr_calloc(1, sizeof *op);
    op->pe = pe;
    op->kind = kind;
    op->fn = fn;
    op->arg = arg;
    op->next = pe->ops;
    if (pe->ops)
        pe->ops->prev = op;
    pe->ops = op;
    return op;
}

void
evr_pe_op_free(evr_pe_op_t *op)
{
    evr_pe_t *pe = op->pe;
    if (op->prev)
        op->prev->next = op->next;
    else
        pe->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    if (op->timer)
        evr_loop_timer_cancel(pe->base.loop, op->timer);
    evr_conmon_destroy(&op->conmon);
    free(op->dir);
    free(op->name);
    free(op->tar_file);
    free(op->put_msg);
    free(op->id);
    free(op->body);
    free(op->image);
    free(op);
}

/*  evrun-<job id in lower case>: the job's volume, and the start of the
    names of its containers. */
static char *
s_volume(const char *job_id)
{
    char *v = evr_asprintf("evrun-%s", job_id);
    for (char *c = v; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char) (*c - 'A' + 'a');
    return v;
}

/*  evrun-<job id in lower case>-ci: the job's CI area (the /job layout's
    /job/ci), removed with its workspace.  Not a workspace to
    workspace_list: a job id holds no '-'. */
static char *
s_ci_volume(const char *job_id)
{
    char *v = s_volume(job_id);
    char *ci = evr_asprintf("%s-ci", v);
    free(v);
    return ci;
}

/*  Podman's state words: "created", "configured" and "initialized" (made,
    never started); "running", "stopping"; "paused"; "exited", "stopped".
    Any other ("removing", "unknown") is not a state evrun leaves a
    container in: ABSENT. */
evr_exec_state_t
evr_pe_state(const char *s)
{
    if (!s)
        return EVR_EXEC_ABSENT;
    if (!strcmp(s, "created") || !strcmp(s, "configured") || !strcmp(s, "initialized"))
        return EVR_EXEC_CREATED;
    if (!strcmp(s, "running") || !strcmp(s, "stopping"))
        return EVR_EXEC_RUNNING;
    if (!strcmp(s, "paused"))
        return EVR_EXEC_PAUSED;
    if (!strcmp(s, "exited") || !strcmp(s, "stopped"))
        return EVR_EXEC_EXITED;
    return EVR_EXEC_ABSENT;
}

/*  podman's answer in neutral words. */
evr_exec_result_t
evr_pe_result(const evr_podman_result_t *pr)
{
    evr_exec_result_t r = {
        .rc = pr->rc, .msg = pr->msg ? pr->msg : "", .not_found = pr->not_found,
        .exists = pr->exists, .transport = pr->rc && pr->status == 0, .id = pr->id,
        .names = pr->id, .exit_code = pr->exit_code, .oom_killed = pr->oom_killed,
        .started_at = pr->started_at, .finished_at = pr->finished_at,
    };
    return r;
}

/*  The one callback of a call: its outcome, then the record goes. */
void
evr_pe_done(const evr_podman_result_t *pr, void *arg)
{
    evr_pe_op_t *op = arg;
    evr_exec_result_t r = evr_pe_result(pr);
    char msg[EVR_ERR_MAX];
    char *names = NULL;
    if (op->kind == EVR_PE_INSPECT)
        r.state = pr->rc ? EVR_EXEC_ABSENT : evr_pe_state(pr->state);
    else if (op->kind == EVR_PE_WS_CREATE && pr->rc) {
        snprintf(msg, sizeof msg, "volume %s: %s", op->name, pr->msg);
        r.msg = msg;
    }
    else if (op->kind == EVR_PE_WS_LIST && !pr->rc) {
        /* evrun-<job>, one per line -> <job>, one per line */
        names = evr_strdup(pr->id ? pr->id : "");
        char *w = names;
        for (const char *p = pr->id; p && *p;) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t) (nl - p) : strlen(p);
            if (n > 6 && !strncmp(p, "evrun-", 6) && !memchr(p + 6, '-', n - 6)) {
                memcpy(w, p + 6, n - 6);
                w += n - 6;
                *w++ = '\n';
            }
            p += n + (nl ? 1 : 0);
        }
        *w = '\0';
        r.names = names;
    }
    else if (op->kind == EVR_PE_WAIT && op->unit)
        evr_pe_unit_free(op->unit);      /* podman answered first */
    if (op->kind == EVR_PE_WAIT && pr->rc && pr->not_found) {
        /* podman's "no container with name or ID ... found" says neither
           who removed it nor what to do */
        snprintf(msg, sizeof msg, "it was removed before its end was seen, by something "
                 "other than this runner (podman rm, podman container prune or system "
                 "prune/reset): how it ended is not known; keep other tools off evrun-* "
                 "containers (podman: %.400s)", pr->msg ? pr->msg : "");
        r.msg = msg;
    }
    if (op->fn)
        op->fn(&r, op->arg);
    free(names);
    evr_pe_op_free(op);
}

/* ------------------------------------------------------------- operations */

static void
s_destroy(evr_exec_t *ex)
{
    evr_pe_t *pe = evr_pe(ex);
    evr_podman_destroy(&pe->pm);   /* drops the calls: no callback runs */
    while (pe->units)
        evr_pe_unit_free(pe->units);
    while (pe->ops)
        evr_pe_op_free(pe->ops);
    evr_bundles_destroy(&pe->bundles);
    free(pe->describe);
    evr_podman_host_destroy(&pe->host);   /* after pm: its call is dropped */
    evr_pulls_destroy(&pe->pulls);
    free(pe);
}

/*  create, last, once its init and its inspect have answered: the
    inspect's outcome does not matter (a container without a bundle
    directory is attached through podman); an init's failure is the
    create's (podman's attach would only refuse the container with a 409
    that hides why: rootless networking that cannot be set up, say). */
static void
s_create_end(evr_pe_op_t *op)
{
    if (--op->pending > 0)
        return;
    if (op->dir)
        evr_bundles_put(op->pe->bundles, op->name, &op->dir);
    char msg[EVR_ERR_MAX];
    evr_exec_result_t r = { .rc = op->put_rc, .msg = "", .id = op->id };
    if (op->put_rc) {
        bool net = strstr(op->put_msg, "rootless netns") || strstr(op->put_msg, "slirp4netns");
        snprintf(msg, sizeof msg, "preparing the container (podman's init): %s%s", op->put_msg,
                 net ? " (a rootless podman could not set up the step's bridge network on this "
                       "host: give the step network: none or host)" : "");
        r.msg = msg;
    }
    if (op->fn)
        op->fn(&r, op->arg);
    evr_pe_op_free(op);
}

static void
s_inited(const evr_podman_result_t *pr, void *arg)
{
    evr_pe_op_t *op = arg;
    if (pr->rc && pr->status != 304) {
        op->put_rc = pr->rc;
        op->put_msg = evr_strdup(pr->msg ? pr->msg : "");
    }
    s_create_end(op);
}

/*  The bundle directory of the container made, for its attach; the
    first one that holds its id as a directory's name teaches the layout
    (podman's: STORAGE/overlay-containers/ID/userdata), so that the next
    creates need no inspect. */
static void
s_create_inspected(const evr_podman_result_t *pr, void *arg)
{
    evr_pe_op_t *op = arg;
    if (!pr->rc && pr->dir) {
        op->dir = evr_strdup(pr->dir);
        evr_bundles_learn(op->pe->bundles, op->id, pr->dir);
    }
    s_create_end(op);
}

static void s_create_answer(const evr_podman_result_t *pr, void *arg);

/*  The create of op (op->body, op->image) sent; its answer goes to
    op->then. */
static void
s_create_send(evr_pe_op_t *op)
{
    evr_podman_create_send(op->pe->pm, op->body, s_create_answer, op);
}

/*  The pull after a create found the memo's image gone: the create again,
    or the pull's failure as the create's. */
static void
s_create_pulled(const evr_podman_pull_result_t *r, void *arg)
{
    evr_pe_op_t *op = arg;
    op->call = NULL;
    if (!r->rc) {
        s_create_send(op);
        return;
    }
    char msg[EVR_ERR_MAX];
    snprintf(msg, sizeof msg, "image %s was removed from the runner's storage, and pulling it "
             "again failed: %s", op->image, r->msg);
    evr_podman_result_t pr = { .rc = r->rc, .msg = msg, .status = 500 };
    op->then(&pr, op);
}

/*  A create's answer: an image the memo held that is gone is pulled, and
    the create sent again (once: the image has left the memo); a create
    made renews the image's memo. */
static void
s_create_answer(const evr_podman_result_t *pr, void *arg)
{
    evr_pe_op_t *op = arg;
    evr_pe_t *pe = op->pe;
    if (pr->rc && pr->msg && strstr(pr->msg, "image not known")
        && evr_pulls_memo_drop(pe->pulls, op->image)) {
        char *header = NULL;
        evr_err_t err;
        if (evr_pulls_auth(pe->pulls, NULL, &header, &err)) {
            op->call = evr_podman_pull(pe->pm, op->image, "missing", header,
                                       EVR_PULLS_TIMEOUT_MS, NULL, s_create_pulled, op);
            if (header) {
                memset(header, 0, strlen(header));
                free(header);
            }
            return;
        }
    }
    if (!pr->rc)
        evr_pulls_memo_renew(pe->pulls, op->image);
    op->then(pr, op);
}

/*  Creates the container of ps for op, whose answer goes to then. */
static void
s_create_call(evr_pe_op_t *op, const evr_podman_spec_t *ps, evr_podman_fn *then)
{
    op->body = evr_podman_create_body(ps);
    op->image = evr_strdup(ps->image ? ps->image : "");
    op->then = then;
    s_create_send(op);
}

/*  A container made is prepared to start at once (init: conmon and the
    runtime's create, ~55 ms), so that its start, on the step's critical
    path, is quick (~9 ms); it is "initialized", CREATED to recovery.  Its
    bundle directory, where conmon's attach socket will be, comes from the
    layout an earlier inspect showed, else from an inspect sent meanwhile. */
static void
s_created(const evr_podman_result_t *pr, void *arg)
{
    evr_pe_op_t *op = arg;
    if (pr->rc) {
        evr_pe_done(pr, op);
        return;
    }
    op->id = pr->id ? evr_strdup(pr->id) : NULL;
    op->dir = op->pe->rest_attach ? NULL : evr_bundles_guess(op->pe->bundles, op->id);
    bool inspect = !op->pe->rest_attach && !op->dir;
    op->pending = inspect ? 2 : 1;
    if (inspect)   /* first: it takes the container's lock before the init holds it */
        evr_podman_inspect(op->pe->pm, op->name, s_create_inspected, op);
    evr_podman_init(op->pe->pm, op->name, s_inited, op);
}

static void
s_create(evr_exec_t *ex, const evr_exec_spec_t *spec, evr_exec_fn *fn, void *arg)
{
    char *volume = spec->job_id ? s_volume(spec->job_id) : NULL;
    const char **names = evr_calloc(spec->nmounts + 1, sizeof *names);
    const char **dests = evr_calloc(spec->nmounts + 1, sizeof *dests);
    for (uint32_t i = 0; i < spec->nmounts; i++) {
        names[i] = spec->mounts[i].volume;
        dests[i] = spec->mounts[i].dest;
    }
    bool job = spec->layout == EVR_EXEC_LAYOUT_JOB;
    char *ci = job && spec->job_id ? s_ci_volume(spec->job_id) : NULL;
    static const char *const netns[] = { [EVR_NETWORK_NONE] = "none",
                                         [EVR_NETWORK_BRIDGE] = "bridge",
                                         [EVR_NETWORK_HOST] = "host" };
    const evr_limits_t *l = spec->limits && spec->limits->present ? spec->limits : NULL;
    uint32_t cpus = 0;
    if (l && l->cpus && !evr_spec_cpus_milli(l->cpus, &cpus))
        cpus = 0;   /* the spec was validated */
    evr_strmap_t env = { 0 };   /* with EVRUN_OUTPUT (evr_exec_spec_t.output) */
    for (uint32_t i = 0; spec->env && i < spec->env->n; i++)
        evr_strmap_set(&env, spec->env->k[i], spec->env->v[i]);
    if (spec->output) {
        char *f = evr_asprintf("%s/%s", job ? "/job" : "/workspace", spec->output);
        evr_strmap_set(&env, "EVRUN_OUTPUT", f);
        free(f);
    }
    evr_podman_spec_t ps = { .name = spec->name, .image = spec->image, .script = spec->script,
                             .env = &env, .volume = volume,
                             .ci_volume = ci, .job_layout = job,
                             .netns = spec->network < EVR_ARRAY_LEN(netns) ? netns[spec->network]
                                                                           : NULL,
                             .mount_names = names, .mount_dests = dests,
                             .nmounts = spec->nmounts,
                             .mounts_readonly = spec->mounts_readonly, .cpus_milli = cpus, .memory = l ? l->memory : 0,
                             .pids = l ? l->pids : 0, .control_dir = spec->control_dir };
    evr_pe_op_t *op = evr_pe_op_new(evr_pe(ex), EVR_PE_PLAIN, fn, arg);
    op->name = evr_strdup(spec->name);
    s_create_call(op, &ps, s_created);   /* the body made at once: env may go */
    evr_strmap_free(&env);
    free(names);
    free(dests);
    free(volume);
    free(ci);
}

static void
s_start(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_podman_start(evr_pe(ex)->pm, name, evr_pe_done,
                     evr_pe_op_new(evr_pe(ex), EVR_PE_PLAIN, fn, arg));
}

void
evr_pe_log_out(int stream, const uint8_t *data, size_t len, void *arg)
{
    evr_pe_op_t *op = arg;
    int si = stream == 1 ? 0 : 1;
    uint64_t at = op->read[si];
    op->read[si] += len;
    if (op->read[si] <= op->from[si])
        return;
    size_t skip = at < op->from[si] ? (size_t) (op->from[si] - at) : 0;
    op->out(stream, data + skip, len - skip, op->arg);
}

static void *
s_logs(evr_exec_t *ex, const char *name, const uint64_t from[2], bool so_far,
       evr_exec_output_fn *out, evr_exec_fn *done, void *arg)
{
    evr_pe_op_t *op = evr_pe_op_new(evr_pe(ex), EVR_PE_PLAIN, done, arg);
    op->out = out;
    op->from[0] = from[0];
    op->from[1] = from[1];
    op->call = evr_podman_logs(evr_pe(ex)->pm, name, so_far, evr_pe_log_out, evr_pe_done, op);
    return op;
}

static void
s_inspect(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_podman_inspect(evr_pe(ex)->pm, name, evr_pe_done,
                       evr_pe_op_new(evr_pe(ex), EVR_PE_INSPECT, fn, arg));
}

static void
s_pause(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_podman_pause(evr_pe(ex)->pm, name, evr_pe_done,
                     evr_pe_op_new(evr_pe(ex), EVR_PE_PLAIN, fn, arg));
}

static void
s_resume(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_podman_unpause(evr_pe(ex)->pm, name, evr_pe_done,
                       evr_pe_op_new(evr_pe(ex), EVR_PE_PLAIN, fn, arg));
}

static void
s_stop(evr_exec_t *ex, const char *name, int grace_s, evr_exec_fn *fn, void *arg)
{
    evr_pe_op_t *op = fn ? evr_pe_op_new(evr_pe(ex), EVR_PE_PLAIN, fn, arg) : NULL;
    if (grace_s < 0)
        evr_podman_kill(evr_pe(ex)->pm, name, "SIGKILL", op ? evr_pe_done : NULL, op);
    else
        evr_podman_stop(evr_pe(ex)->pm, name, grace_s, op ? evr_pe_done : NULL, op);
}

static void
s_remove(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_pe_unit_t *u = evr_pe_unit_find(evr_pe(ex), name);
    if (u)
        evr_pe_unit_free(u);     /* a wait it holds is podman's again */
    free(evr_bundles_take(evr_pe(ex)->bundles, name));
    evr_pe_op_t *op = fn ? evr_pe_op_new(evr_pe(ex), EVR_PE_PLAIN, fn, arg) : NULL;
    evr_podman_remove(evr_pe(ex)->pm, name, op ? evr_pe_done : NULL, op);
}

static void
s_list(evr_exec_t *ex, const char *prefix, evr_exec_fn *fn, void *arg)
{
    evr_podman_list(evr_pe(ex)->pm, prefix, evr_pe_done,
                    evr_pe_op_new(evr_pe(ex), EVR_PE_PLAIN, fn, arg));
}

/* -------------------------------------------------------------- workspace */

static void
s_ws_create(evr_exec_t *ex, const char *job_id, evr_exec_fn *fn, void *arg)
{
    evr_pe_op_t *op = evr_pe_op_new(evr_pe(ex), EVR_PE_WS_CREATE, fn, arg);
    op->name = s_volume(job_id);
    evr_podman_volume_create(evr_pe(ex)->pm, op->name, evr_pe_done, op);
}

static void
s_ws_remove(evr_exec_t *ex, const char *job_id, evr_exec_fn *fn, void *arg)
{
    char *v = s_volume(job_id);
    char *ci = s_ci_volume(job_id);
    evr_pe_op_t *op = fn ? evr_pe_op_new(evr_pe(ex), EVR_PE_PLAIN, fn, arg) : NULL;
    evr_podman_volume_remove(evr_pe(ex)->pm, ci, NULL, NULL);   /* most jobs have none */
    evr_podman_volume_remove(evr_pe(ex)->pm, v, op ? evr_pe_done : NULL, op);
    free(v);
    free(ci);
}

/*  A volume's host directory: the workspace's, or a cache's. */
static void
s_dir(evr_exec_t *ex, const char *job_id, const char *volume, evr_exec_fn *fn, void *arg)
{
    char *v = job_id ? s_volume(job_id) : evr_strdup(volume);
    evr_podman_volume_path(evr_pe(ex)->pm, v, evr_pe_done,
                           evr_pe_op_new(evr_pe(ex), EVR_PE_PLAIN, fn, arg));
    free(v);
}

static void
s_cache_remove(evr_exec_t *ex, const char *volume, evr_exec_fn *fn, void *arg)
{
    evr_pe_op_t *op = fn ? evr_pe_op_new(evr_pe(ex), EVR_PE_PLAIN, fn, arg) : NULL;
    evr_podman_volume_remove(evr_pe(ex)->pm, volume, op ? evr_pe_done : NULL, op);
}

static void
s_ws_list(evr_exec_t *ex, evr_exec_fn *fn, void *arg)
{
    evr_podman_list_volumes(evr_pe(ex)->pm, "evrun-", evr_pe_done,
                            evr_pe_op_new(evr_pe(ex), EVR_PE_WS_LIST, fn, arg));
}

/*  put, last: the helper is gone (or its removal failed: the job's
    cleanup sweeps it); the upload's outcome goes out. */
static void
s_put_end(const evr_podman_result_t *pr, void *arg)
{
    (void) pr;
    evr_pe_op_t *op = arg;
    evr_exec_result_t r = { .rc = op->put_rc, .msg = op->put_msg ? op->put_msg : "" };
    op->fn(&r, op->arg);
    evr_pe_op_free(op);
}

static void
s_put_done(const evr_podman_result_t *pr, void *arg)
{
    evr_pe_op_t *op = arg;
    op->put_rc = pr->rc;
    op->put_msg = evr_strdup(pr->msg ? pr->msg : "");
    evr_podman_remove(op->pe->pm, op->name, s_put_end, op);
}

static void
s_put_helper(const evr_podman_result_t *pr, void *arg)
{
    evr_pe_op_t *op = arg;
    if (pr->rc && !pr->exists) {   /* one this process left mounts the same volume */
        evr_exec_result_t r = evr_pe_result(pr);
        char msg[EVR_ERR_MAX];
        snprintf(msg, sizeof msg, "a container to copy it in (%s): %s", op->name, pr->msg);
        r.msg = msg;
        op->fn(&r, op->arg);
        evr_pe_op_free(op);
        return;
    }
    evr_podman_archive_put(op->pe->pm, op->name, "/workspace", op->tar_file, s_put_done, op);
}

/*  The volume is reached through a container that mounts it and never
    runs, named after this process: one a killed runner left is swept
    with the job's containers. */
static void
s_put(evr_exec_t *ex, const char *job_id, evr_exec_area_t area, const char *image,
      const char *tar_file, evr_exec_fn *fn, void *arg)
{
    evr_pe_op_t *op = evr_pe_op_new(evr_pe(ex), EVR_PE_PUT, fn, arg);
    bool ci = area == EVR_EXEC_AREA_CI;
    char *volume = ci ? s_ci_volume(job_id) : s_volume(job_id);
    op->name = evr_asprintf("%s-resources-%ld", volume, (long) getpid());
    op->tar_file = evr_strdup(tar_file);
    evr_podman_spec_t ps = { .name = op->name, .image = image, .script = "true",
                             .volume = volume };
    s_create_call(op, &ps, s_put_helper);
    free(volume);
}

static bool
s_get_data(const uint8_t *p, size_t n, void *arg)
{
    evr_pe_op_t *op = arg;
    return op->data(p, n, op->arg);
}

static void
s_get(evr_exec_t *ex, const char *name, const char *job_id, evr_exec_layout_t layout,
      const char *path, evr_exec_data_fn *data, evr_exec_fn *fn, void *arg)
{
    (void) job_id;   /* the step's container mounts the workspace */
    evr_pe_op_t *op = evr_pe_op_new(evr_pe(ex), EVR_PE_PLAIN, fn, arg);
    op->data = data;
    char *full = evr_asprintf("%s/%s", layout == EVR_EXEC_LAYOUT_JOB ? "/job" : "/workspace",
                              path);
    evr_podman_archive_get(evr_pe(ex)->pm, name, full, s_get_data, evr_pe_done, op);
    free(full);
}

/* ---------------------------------------------------------------- wording */

static void
s_remove_hint(const evr_exec_t *ex, const char *name, char *buf, size_t size)
{
    (void) ex;
    snprintf(buf, size, "podman rm -f %s", name);
}

static const char *
s_describe(const evr_exec_t *ex)
{
    return ((const evr_pe_t *) ex)->describe;
}

static const char *
s_no_cgroup_limits(evr_exec_t *ex)
{
    return evr_podman_host_no_limits(evr_pe(ex)->host);
}

static void *s_pull(evr_exec_t *ex, const char *image, uint32_t policy, const char *auth,
                    evr_exec_line_fn *line, evr_exec_fn *fn, void *arg);
static void s_pull_cancel(evr_exec_t *ex, void *handle);

static const evr_exec_ops_t s_ops = {
    .name = "podman",
    .destroy = s_destroy,
    .create = s_create,
    .start = s_start,
    .attach = evr_pe_attach,
    .detach = evr_pe_detach,
    .logs = s_logs,
    .wait = evr_pe_wait,
    .inspect = s_inspect,
    .pause = s_pause,
    .resume = s_resume,
    .stop = s_stop,
    .remove = s_remove,
    .list = s_list,
    .workspace_create = s_ws_create,
    .workspace_remove = s_ws_remove,
    .workspace_list = s_ws_list,
    .dir = s_dir,
    .cache_remove = s_cache_remove,
    .put = s_put,
    .get = s_get,
    .pull = s_pull,
    .pull_cancel = s_pull_cancel,
    .unit_word = "container",
    .workspace_word = "/workspace",
    .own_workspace = true,
    .remove_hint = s_remove_hint,
    .describe = s_describe,
    .no_cgroup_limits = s_no_cgroup_limits,
};

/* ------------------------------------------------------------------ pulls */

static void *
s_pull(evr_exec_t *ex, const char *image, uint32_t policy, const char *auth,
       evr_exec_line_fn *line, evr_exec_fn *fn, void *arg)
{
    return evr_pulls_start(evr_pe(ex)->pulls, image, policy, auth, line, fn, arg);
}

static void
s_pull_cancel(evr_exec_t *ex, void *handle)
{
    evr_pulls_cancel(evr_pe(ex)->pulls, handle);
}

void
evr_exec_podman_set_registry_auth(evr_exec_t *ex, const char *path)
{
    evr_pulls_set_registry_auth(evr_pe(ex)->pulls, path);
}

#define S_HINT "(start a service with `tools/podman-service start DIR` and set " \
               "EVRUN_PODMAN_URL, or pass --podman-url)"

evr_exec_t *
evr_exec_podman_new(const char *url, evr_loop_t *loop, evr_err_t *err)
{
    evr_err_t e;
    evr_podman_t *pm = evr_podman_new(url, loop, &e);
    evr_rc_t rc = pm ? evr_podman_ping(pm, &e) : EVR_ERR_CONFIG;
    if (rc) {
        evr_podman_destroy(&pm);
        evr_err_set(err, rc, "%.*s\n" S_HINT, (int) (EVR_ERR_MAX - sizeof S_HINT - 2), e.msg);
        return NULL;
    }
    evr_pe_t *pe = evr_calloc(1, sizeof *pe);
    pe->base.ops = &s_ops;
    pe->base.loop = loop;
    pe->pm = pm;
    pe->describe = evr_asprintf("podman %s", url);
    pe->host = evr_podman_host_new(pm, url);
    pe->bundles = evr_bundles_new();
    const char *ra = getenv("EVR_TEST_REST_ATTACH");   /* tests: podman's attach only */
    pe->rest_attach = ra && !strcmp(ra, "1");
    const char *t = getenv("EVR_TEST_IMAGE_MEMO_MS");   /* tests: a memo that stays */
    pe->pulls = evr_pulls_new(pm, loop, t && *t ? strtoull(t, NULL, 10) : S_MEMO_MS);
    return &pe->base;
}

void
evr_exec_podman_ask_host(evr_exec_t *ex)
{
    evr_podman_host_ask(evr_pe(ex)->host);
}
