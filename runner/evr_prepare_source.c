/*  evr_prepare_source.c: a job's sources, after its resources (see
    evr_prepare.c): ci_source into the CI area, source under src/
    (evr_source makes the tar: a git checkout, a directory's copy; a
    tarball is downloaded), each recorded as job.source before it is put
    in.  A tar made from a download or a copy, and a tar read for the
    pipeline files a step may trigger, are made and read in a child
    process (evr_offload.h), never on the runner's loop. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_engine_int.h"
#include "evr_artifact.h"
#include "evr_log.h"

#define S_TRIM_MAX_MS 600000    /* a trim of the git cache at most (as a checkout, evr_source.c) */

static void s_src_sweep(evr_eng_job_t *job);
static void s_src_make(evr_eng_job_t *job);
static void s_src_git(evr_eng_job_t *job, const evr_source_t *src);

/* --------------------------------------------------------------- sources */

static const char *const s_src_key[2] = { "ci_source", "source" };

/*  The i-th source of the order they are put in: ci_source, source. */
static const evr_source_t *
s_src(const evr_eng_job_t *job, uint32_t i)
{
    return i == 0 ? &job->spec->ci_source : &job->spec->source;
}

static void
s_unlink_act(void *arg, void *data, size_t len)
{
    (void) arg;
    (void) len;
    unlink(data);
}

/*  Ends the source phase: the steps run (or, with reason, nothing runs).
    The tars of sent copies go once that is committed (a runner killed
    before then prepares the job again, from them). */
static void
s_src_end(evr_eng_job_t *job, const char *reason)
{
    for (int i = 0; i < 2 && !job->eng->opts.source_copy_local; i++) {
        char *copy = evr_eng_copy_file(job->eng, job->id, i);
        evr_eng_after(job->eng, s_unlink_act, NULL, copy, strlen(copy) + 1);
        free(copy);
    }
    evr_source_cancel(&job->src_req);
    evr_offload_cancel(&job->src_work);
    if (job->src_tar) {
        unlink(job->src_tar);
        free(job->src_tar);
        job->src_tar = NULL;
    }
    if (job->src_file) {
        unlink(job->src_file);
        free(job->src_file);
        job->src_file = NULL;
    }
    if (evr_spec_has_source(job->spec))
        s_src_sweep(job);
    if (reason)
        evr_eng_prep_failed(job, reason);
    else
        evr_eng_cache_prepare(job);
}

static void
s_src_fail(evr_eng_job_t *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
s_src_fail(evr_eng_job_t *job, const char *fmt, ...)
{
    char msg[2 * EVR_ERR_MAX];
    int n = snprintf(msg, sizeof msg, "%s: ", s_src_key[job->src_index]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t) n, fmt, ap);
    va_end(ap);
    s_src_end(job, msg);
}

static void
s_src_put(const evr_exec_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    unlink(job->src_tar);
    free(job->src_tar);
    job->src_tar = NULL;
    if (r->rc) {
        s_src_fail(job, "copying into %s: %s", job->src_index ? "/job/src" : "/job/ci", r->msg);
        return;
    }
    job->src_index++;
    evr_eng_source_next(job);
}

/*  The source's tar is made: into its area.  A podman executor reaches
    it through a container of the first step's image, pulled first as the
    first step's policy says (as a resource's tar). */
static void
s_src_put_go(void *arg)
{
    evr_eng_job_t *job = arg;
    uint32_t policy;
    const char *image = evr_eng_first_image(job, &policy);
    const char *why;
    int ready = evr_eng_image_need(job, image, policy, s_src_put_go, job, &why);
    if (ready == 0) {
        evr_eng_prep_doing(job, "pulling image %s (to copy %s in)", image,
                           s_src_key[job->src_index]);
        return;
    }
    if (ready < 0 || evr_eng_halted(job)) {
        s_src_fail(job, "%s", evr_eng_halted(job) || !why
                                  ? (job->timed_out ? "the job timed out while its image was pulled"
                                     : "the job was cancelled while its image was pulled")
                                  : why);
        return;
    }
    evr_eng_prep_doing(job, "copying %s into %s", s_src_key[job->src_index],
                       job->src_index ? "/job/src" : "/job/ci");
    job->ex->ops->put(job->ex, job->id, job->src_index ? EVR_EXEC_AREA_WORKSPACE
                                                       : EVR_EXEC_AREA_CI,
                      image, job->src_tar, s_src_put, job);
}

/*  The tar is made (and read): recorded as job.source, then put in. */
static void
s_src_ready(evr_eng_job_t *job, uint64_t bytes)
{
    const char *commit = job->src_commit[job->src_index];
    uint64_t objects = job->src_objects;
    const evr_source_t *src = s_src(job, job->src_index);
    evr_event_t *ev = evr_eng_emit(job, EVR_EV_JOB_SOURCE, NULL);
    ev->data.source = evr_strdup(s_src_key[job->src_index]);
    ev->data.kind = evr_strdup(evr_source_kind(src));
    ev->data.url = evr_strdup(evr_source_url(src));
    if (src->git.present) {
        ev->data.ref = evr_strdup(src->git.ref ? src->git.ref : "HEAD");
        ev->data.commit = evr_strdup(commit);
        ev->data.objects = objects;
    }
    ev->data.tar_bytes = bytes;
    evr_event_fit(ev);
    if (src->git.present)
        evr_eng_print(job->eng, "evrun-runner: %s: %s %s is commit %s (%llu objects fetched)",
                      s_src_key[job->src_index], src->git.url, ev->data.ref, commit,
                      (unsigned long long) objects);
    else
        evr_eng_print(job->eng, "evrun-runner: %s: %s (%llu bytes)", s_src_key[job->src_index],
                      ev->data.url, (unsigned long long) bytes);
    s_src_put_go(job);
}

/*  What the child making a source's tar reports (evr_offload.h). */
typedef struct {
    int32_t rc;                 /* of making the tar */
    uint64_t bytes;             /* the tar's */
    char msg[EVR_ERR_MAX];
    evr_eng_trigger_capture_t cap;
} s_made_t;
EVR_OFFLOAD_FITS(s_made_t);

/*  In the child: the source's tar made from what came (a tarball's
    download or a sent copy: unpacked with a resource's checks, no links,
    no "..", resource_max_bytes; a runner's directory with --exec), and
    its pipeline files kept (evr_trigger_file.c).  job is the child's
    snapshot: read, never changed. */
static void
s_make_work(void *arg, void *out, size_t size)
{
    (void) size;
    const evr_eng_job_t *job = arg;
    s_made_t *m = out;
    const evr_source_t *src = s_src(job, job->src_index);
    uint64_t max = job->eng->opts.resource_max_bytes;
    evr_err_t err = { 0 };
    char *sent = src->copy && !job->eng->opts.source_copy_local
                 ? evr_eng_copy_file(job->eng, job->id, (int) job->src_index) : NULL;
    if (src->copy && !sent)
        m->rc = evr_source_copy_tar(src->copy, job->src_index ? "src/" : "", max, 0,
                                    job->src_tar, &m->bytes, &err);
    else if (src->copy || src->tarball)
        m->rc = evr_resource_tar_dir(sent ? sent : job->src_file, job->src_index ? "src" : ".",
                                     max, job->src_tar, &err);
    free(sent);
    struct stat sb;
    if (!m->rc && !m->bytes && stat(job->src_tar, &sb) == 0)
        m->bytes = (uint64_t) sb.st_size;
    if (m->rc)
        snprintf(m->msg, sizeof m->msg, "%s", err.msg);
    else
        evr_eng_trigger_files_capture(job, job->src_index, job->src_tar, &m->cap);
}

/*  Back on the loop: the tar is made (or not: why). */
static void
s_src_made(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    evr_eng_job_t *job = arg;
    const s_made_t *m = out;
    const evr_source_t *src = s_src(job, job->src_index);
    job->src_work = NULL;
    if (job->src_file)
        unlink(job->src_file);   /* the download, unpacked */
    if (rc || m->rc) {
        const char *why = rc ? msg : m->msg;
        const char *hint = strstr(why, "over the limit")
                           ? " (the runner's resource_max_bytes setting)" : "";
        if (rc)
            s_src_fail(job, "making its tar: %s", why);
        else if (src->copy && !job->eng->opts.source_copy_local)
            s_src_fail(job, "copy %s: %s%s", src->copy, why, hint);
        else
            s_src_fail(job, "%s%s", why, src->copy ? hint : "");
        return;
    }
    evr_eng_trigger_files_said(job, &m->cap);
    s_src_ready(job, m->bytes);
}

/*  Makes the source's tar (and reads its pipeline files) in a child:
    a large tar stalls no other job's output, heartbeat or request.  A
    runner killed meanwhile prepares the job again (it has no job.source
    yet); the child dies with it. */
static void
s_src_make(evr_eng_job_t *job)
{
    evr_eng_prep_doing(job, "making the tar of %s", s_src_key[job->src_index]);
    job->src_work = evr_offload_start(job->eng->loop, s_make_work, sizeof(s_made_t), s_src_made,
                                      job);
    evr_offload_what(job->src_work, "job %s: making the tar of %s", job->id,
                     s_src_key[job->src_index]);
    evr_offload_temp(job->src_work, job->src_tar);   /* gone with a cancel */
    if (evr_eng_trigger_files_wanted(job, job->src_index)) {   /* the same */
        char *dir = evr_eng_trigger_files_dir(job);
        evr_offload_temp_dir(job->src_work, dir);
        free(dir);
    }
}

/*  What the trim's child reports: how many entries it removed, and the
    names of the first (each NUL-terminated, as many as fit). */
typedef struct {
    uint32_t n, shown;
    char names[EVR_OFFLOAD_MAX - 8];
} s_trimmed_t;
EVR_OFFLOAD_FITS(s_trimmed_t);

/*  In the child: the cache trimmed (e is its snapshot, read only). */
static void
s_trim_work(void *arg, void *out, size_t size)
{
    (void) size;
    const evr_engine_t *e = arg;
    s_trimmed_t *t = out;
    uint64_t cap = e->opts.source_cache_max_bytes ? e->opts.source_cache_max_bytes
                                                  : EVR_CACHE_MAX_DEFAULT;
    char **gone = evr_source_cache_trim(e->opts.source_cache_dir, cap, &t->n);
    size_t at = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        size_t len = strlen(gone[i]) + 1;
        if (t->shown == i && at + len <= sizeof t->names) {
            memcpy(t->names + at, gone[i], len);
            at += len;
            t->shown++;
        }
        free(gone[i]);
    }
    free(gone);
}

static void
s_trim_said(evr_engine_t *e, const char *what)
{
    evr_eng_print(e, "evrun-runner: git cache %s removed (least recently used; the runner's "
                  "git_cache_max_bytes setting)", what);
    if (!e->opts.print)
        evr_log_info("evrun-runner", "git cache %s removed (least recently used; the "
                     "runner's git_cache_max_bytes setting)", what);
}

/*  The checkouts held while the trim ran started (or failed, those of a
    job cancelled meanwhile). */
static void
s_release_held(evr_engine_t *e)
{
    for (evr_eng_job_t *j = e->jobs; j; j = j->next) {
        if (!j->src_held)
            continue;
        if (evr_eng_halted(j)) {
            evr_eng_source_abort(j);
            continue;
        }
        j->src_held = false;
        s_src_git(j, s_src(j, j->src_index));
    }
}

/*  The trim over: what it removed said, the checkouts held meanwhile
    started. */
static void
s_trimmed(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    evr_engine_t *e = arg;
    const s_trimmed_t *t = out;
    e->src_trim = NULL;
    evr_loop_timer_cancel(e->loop, e->src_trim_timer);
    e->src_trim_timer = 0;
    if (rc) {
        evr_eng_print(e, "evrun-runner: git cache %s: trimming it: %s", e->opts.source_cache_dir,
                      msg);
        if (!e->opts.print)
            evr_log_info("evrun-runner", "git cache %s: trimming it: %s",
                         e->opts.source_cache_dir, msg);
    }
    size_t at = 0;
    for (uint32_t i = 0; !rc && i < t->shown && at < sizeof t->names; i++) {
        s_trim_said(e, t->names + at);
        at += strnlen(t->names + at, sizeof t->names - at) + 1;
    }
    if (!rc && t->n > t->shown) {
        char more[64];
        snprintf(more, sizeof more, "entries: %u more", t->n - t->shown);
        s_trim_said(e, more);
    }
    s_release_held(e);
}

/*  A trim past S_TRIM_MAX_MS (a cache on a mount that hangs): stopped,
    said, and the checkouts held meanwhile started. */
static void
s_trim_late(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_engine_t *e = arg;
    e->src_trim_timer = 0;
    evr_offload_cancel(&e->src_trim);
    evr_eng_print(e, "evrun-runner: git cache %s: its trim took longer than %d s: stopped "
                  "(the checkouts it held go on)", e->opts.source_cache_dir,
                  S_TRIM_MAX_MS / 1000);
    if (!e->opts.print)
        evr_log_warn("evrun-runner", "git cache %s: its trim took longer than %d s: stopped "
                     "(the checkouts it held go on)", e->opts.source_cache_dir,
                     S_TRIM_MAX_MS / 1000);
    s_release_held(e);
}

/*  The cache of repositories kept under its cap, once no checkout of
    this runner runs (evr_source_cache_trim), in a child process: the
    sizes of every entry and the removal of the oldest take seconds on a
    large cache.  Checkouts wait meanwhile (s_src_git): none reads an
    entry being removed. */
static void
s_src_trim(evr_engine_t *e)
{
    if (e->src_trim)
        return;
    for (const evr_eng_job_t *j = e->jobs; j; j = j->next)
        if (j->src_req)
            return;
    e->src_trim = evr_offload_start(e->loop, s_trim_work, sizeof(s_trimmed_t), s_trimmed, e);
    evr_offload_what(e->src_trim, "trimming the git cache %s", e->opts.source_cache_dir);
    e->src_trim_timer = evr_loop_timer_add(e->loop, S_TRIM_MAX_MS, s_trim_late, e);
}

void
evr_eng_source_trim_stop(evr_engine_t *e)
{
    evr_offload_cancel(&e->src_trim);
    evr_loop_timer_cancel(e->loop, e->src_trim_timer);
    e->src_trim_timer = 0;
}

static void
s_src_checked_out(const evr_source_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    job->src_req = NULL;
    s_src_trim(job->eng);
    if (r->rc) {
        s_src_fail(job, "%s", r->msg);
        return;
    }
    free(job->src_commit[job->src_index]);
    job->src_commit[job->src_index] = evr_strdup(r->commit);
    job->src_objects = r->objects;
    if (evr_eng_trigger_files_wanted(job, job->src_index))
        s_src_make(job);   /* its pipeline files are read from the tar */
    else
        s_src_ready(job, r->tar_bytes);
}

static void
s_src_fetched(const evr_fetch_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    job->res_req = NULL;
    if (evr_eng_halted(job)) {
        s_src_fail(job, "the job %s while its tarball was downloaded",
                   job->timed_out ? "timed out" : "was cancelled");
        return;
    }
    if (r->rc) {
        const evr_source_t *src = job->src_index ? &job->spec->source : &job->spec->ci_source;
        char hint[EVR_SPEC_MAX_NAME + 640];   /* a redirect's URL too */
        s_src_fail(job, "%s%s%s", r->msg, evr_eng_fetch_setting(r),
                   evr_eng_fetch_auth_hint(r, src->secret, hint, sizeof hint));
        return;
    }
    s_src_make(job);
}

/*  A temporary file in the job's artifacts directory; NULL (the phase
    failed) when it cannot be made. */
static char *
s_src_tmp(evr_eng_job_t *job, const char *what)
{
    char *dir = evr_asprintf("%s/%s", job->eng->opts.artifacts_dir, job->id);
    evr_err_t err;
    evr_mkdirs(dir, &err);
    char *path = evr_asprintf("%s/.%s-XXXXXX", dir, what);
    free(dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        s_src_fail(job, "temporary file %s: %s", path, strerror(errno));
        free(path);
        return NULL;
    }
    close(fd);
    return path;
}

static void
s_src_git(evr_eng_job_t *job, const evr_source_t *src)
{
    const evr_engine_opts_t *o = &job->eng->opts;
    if (job->eng->src_trim) {
        job->src_held = true;   /* started once the trim is over (s_trimmed) */
        evr_eng_prep_doing(job, "waiting for the git cache's trim to check out %s",
                           s_src_key[job->src_index]);
        return;
    }
    if (!o->source_cache_dir) {
        s_src_fail(job, "this runner has no cache of repositories (no state directory)");
        return;
    }
    if (o->resource_deny_local && !strncmp(src->git.url, "file://", 7)) {
        s_src_fail(job, "%s: a file:// URL reads the runner's own disk, which its "
                   "resource_local setting (deny) refuses", src->git.url);
        return;
    }
    evr_source_git_opts_t g = { .cache_dir = o->source_cache_dir, .git = &src->git,
                                .auth = job->src_auth[job->src_index],
                                .prefix = job->src_index ? "src/" : "",
                                .tar_out = job->src_tar,
                                .max_bytes = o->resource_max_bytes };
    evr_eng_prep_doing(job, "checking out %s (%s)", s_src_key[job->src_index], src->git.url);
    job->src_req = evr_source_git_start(job->eng->loop, &g, s_src_checked_out, job);
    evr_eng_test_pause("checkout", NULL);   /* a crash test kills the runner here */
}

/*  A copy: source that came with the dispatch (evr_engine_copy_save):
    unpacked with a resource's checks (no links, no "..", the runner's
    resource_max_bytes) under src/ (or at the root of the CI area). */
static void
s_src_sent(evr_eng_job_t *job, const evr_source_t *src)
{
    char *file = evr_eng_copy_file(job->eng, job->id, (int) job->src_index);
    struct stat sb;
    if (stat(file, &sb) != 0)
        s_src_fail(job, "copy %s: the job came without the directory's tar (a runner reads "
                   "its own directories only with --exec; through a broker, evrun-cli submit "
                   "or run sends it)", src->copy);
    else
        s_src_make(job);
    free(file);
}

/*  What a killed runner left of the job's sources (temporary files): a
    checkout it started may still run, holding its repository's lock, so
    this runs at the end of the phase, when a checkout of ours has had
    the lock after it. */
static void
s_src_sweep(evr_eng_job_t *job)
{
    char *dir = evr_asprintf("%s/%s", job->eng->opts.artifacts_dir, job->id);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, ".source-", 8) || !strncmp(e->d_name, ".tarball-", 9)) {
            char *p = evr_asprintf("%s/%s", dir, e->d_name);
            unlink(p);
            free(p);
        }
    if (d)
        closedir(d);
    free(dir);
}

void
evr_eng_source_next(evr_eng_job_t *job)
{
    while (job->src_index < 2 && !s_src(job, job->src_index)->present)
        job->src_index++;
    if (evr_eng_halted(job)) {
        s_src_end(job, job->timed_out ? "the job timed out while its sources were put in"
                                      : "the job was cancelled while its sources were put in");
        return;
    }
    if (job->src_index >= 2) {
        s_src_end(job, NULL);
        return;
    }
    const evr_source_t *src = s_src(job, job->src_index);
    if (!(job->src_tar = s_src_tmp(job, "source")))
        return;
    if (src->git.present) {
        s_src_git(job, src);
        return;
    }
    if (src->copy && !job->eng->opts.source_copy_local) {
        s_src_sent(job, src);
        return;
    }
    if (src->copy) {
        s_src_make(job);
        return;
    }
    if (!(job->src_file = s_src_tmp(job, "tarball")))
        return;
    evr_eng_prep_doing(job, "downloading %s (%s)", s_src_key[job->src_index], src->tarball);
    evr_fetch_opts_t fo = { .url = src->tarball, .file = job->src_file,
                            .timeout_ms = EVR_ENG_DOWNLOAD_MS,
                            .max_bytes = job->eng->opts.resource_max_bytes,
                            .redirects = job->eng->opts.resource_redirects,
                            .deny_local = job->eng->opts.resource_deny_local,
                            .auth = job->src_auth[job->src_index] };
    job->res_req = evr_fetch_start(job->eng->fetch, &fo, s_src_fetched, job);
}

void
evr_eng_source_abort(evr_eng_job_t *job)
{
    if (job->src_held) {
        job->src_held = false;
        s_src_fail(job, "the job was %s while it was checked out",
                   job->timed_out ? "timed out" : "cancelled");
        return;
    }
    if (job->src_work) {
        evr_offload_cancel(&job->src_work);   /* its child killed, its tar removed */
        s_src_fail(job, "the job was %s while its tar was made",
                   job->timed_out ? "timed out" : "cancelled");
        return;
    }
    if (!job->src_req)
        return;
    evr_source_cancel(&job->src_req);
    s_src_fail(job, "the job was %s while it was checked out",
               job->timed_out ? "timed out" : "cancelled");
}

static int
s_src_event(const evr_event_t *ev, void *arg)
{
    evr_eng_job_t *job = arg;
    if (evr_event_kind(ev) != EVR_EV_JOB_SOURCE || !ev->data.commit || !ev->data.source)
        return 0;
    int i = !strcmp(ev->data.source, "source");
    free(job->src_commit[i]);
    job->src_commit[i] = evr_strdup(ev->data.commit);
    return 0;
}

void
evr_eng_source_restore(evr_eng_job_t *job)
{
    if (!evr_spec_has_source(job->spec))
        return;
    evr_err_t err;
    if (evr_store_job_events(job->eng->store, job->id, 1, s_src_event, job, &err) == EVR_ERR_STORE)
        evr_eng_warn("job %s: reading its job.source events: %s", job->id, err.msg);
}

void
evr_eng_source_env(const evr_eng_job_t *job, evr_strmap_t *env)
{
    static const char *const pre[2] = { "EVRUN_CI_SOURCE_", "EVRUN_SOURCE_" };
    for (int i = 0; i < 2; i++) {
        const evr_source_t *src = s_src(job, (uint32_t) i);
        if (!src->present)
            continue;
        char k[64];
        snprintf(k, sizeof k, "%sURL", pre[i]);
        evr_strmap_set(env, k, evr_source_url(src));
        snprintf(k, sizeof k, "%sREF", pre[i]);
        if (src->git.present)
            evr_strmap_set(env, k, src->git.ref ? src->git.ref : "HEAD");
        snprintf(k, sizeof k, "%sSHA", pre[i]);
        if (job->src_commit[i])
            evr_strmap_set(env, k, job->src_commit[i]);
    }
}
