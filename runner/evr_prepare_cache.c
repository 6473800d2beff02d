/*  evr_prepare_cache.c: a job's caches in the engine (evr_cache.h).

    Once a job's workspace is prepared (resources in), its caches are
    resolved (a key's {{ sha256 FILE }} read from the workspace's host
    directory, which the executor names), each marked used, and the
    least recently used ones past cache_max_bytes removed; then the steps
    run, each created with its caches mounted.  When the job ends (its
    units gone), the size of each of its caches is measured into its
    record, its host directory walked in a child process (evr_offload.h;
    at most EVR_ENG_WALKS_MAX walks under way for the engine, the others
    queued in the order asked; one past EVR_ENG_WALK_LIMIT_MS stopped,
    its recorded size kept), and the LRU pass runs again.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_cache.h"
#include "evr_engine_int.h"
#include "evr_log.h"

typedef struct {
    evr_engine_t *e;
    const evr_eng_job_t *except;    /* the job that ends: its caches may go */
} s_use_t;

/*  Whether a job the engine holds (but the one ending) uses volume. */
static bool
s_in_use(const char *volume, void *arg)
{
    const s_use_t *u = arg;
    for (const evr_eng_job_t *j = u->e->jobs; j; j = j->next)
        if (j != u->except && j->phase != EVR_ENG_JOB_DONE && evr_cache_uses(j->caches, volume))
            return true;
    return false;
}

static void
s_evict(evr_eng_job_t *job, const evr_eng_job_t *except)
{
    evr_engine_t *e = job->eng;
    s_use_t u = { e, except };
    uint32_t n = 0;
    char **gone = evr_cache_evict(e->opts.caches_dir, e->opts.cache_max_bytes, s_in_use, &u, &n);
    for (uint32_t i = 0; i < n; i++) {
        evr_eng_print(e, "evrun-runner: cache %s removed (least recently used; the runner's "
                      "cache_max_bytes setting)", gone[i]);
        job->ex->ops->cache_remove(job->ex, gone[i], NULL, NULL);
        free(gone[i]);
    }
    free(gone);
}

/*  STATE/caches/JOB.mounts: the job's resolved caches (caller frees). */
static char *
s_job_file(const evr_eng_job_t *job)
{
    return evr_asprintf("%s/%s.mounts", job->eng->opts.caches_dir, job->id);
}

static void
s_resolve(evr_eng_job_t *job, const char *ws)
{
    evr_err_t err;
    if (evr_cache_resolve(job->spec, ws, &job->caches, &err)) {
        char reason[2 * EVR_ERR_MAX];
        snprintf(reason, sizeof reason, "%s", err.msg);
        evr_eng_prep_failed(job, reason);
        return;
    }
    const char *const *vols;
    uint32_t n = evr_cache_volumes(job->caches, &vols);
    for (uint32_t i = 0; i < n; i++)
        if (evr_cache_touch(job->eng->opts.caches_dir, vols[i], &err))
            evr_eng_print(job->eng, "evrun-runner: cache %s: %s", vols[i], err.msg);
    /* kept for a restart: the steps to come mount the same volumes */
    char *path = s_job_file(job);
    if (job->caches && evr_cache_job_save(job->caches, path, &err))
        evr_eng_print(job->eng, "evrun-runner: job %s: %s (a restart would lose its caches)",
                      job->id, err.msg);
    free(path);
    s_evict(job, NULL);
    evr_eng_job_go(job);
}

void
evr_eng_cache_recover(evr_eng_job_t *job)
{
    char *path = s_job_file(job);
    job->caches = evr_cache_job_load(path, job->n);
    free(path);
}

static void
s_ws_dir(const evr_exec_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    char reason[2 * EVR_ERR_MAX];
    if (evr_eng_halted(job))
        evr_eng_prep_failed(job, job->timed_out ? "the job timed out while its caches were resolved"
                                                : "the job was cancelled while its caches were "
                                                  "resolved");
    else if (r->rc) {
        snprintf(reason, sizeof reason, "cache: the %s's host directory: %s",
                 job->ex->ops->workspace_word, r->msg);
        evr_eng_prep_failed(job, reason);
    }
    else
        s_resolve(job, r->names);
}

void
evr_eng_cache_prepare(evr_eng_job_t *job)
{
    const evr_spec_t *spec = job->spec;
    bool any = spec->cache.n > 0;
    for (uint32_t i = 0; i < spec->steps.n; i++)
        any |= evr_spec_step(spec, i)->cache.n > 0;
    if (!any) {
        evr_eng_job_go(job);
        return;
    }
    if (!job->ex->ops->dir || !job->ex->ops->cache_remove) {
        char reason[256];
        snprintf(reason, sizeof reason, "cache: the %s executor keeps no caches",
                 job->ex->ops->name);
        evr_eng_prep_failed(job, reason);
        return;
    }
    evr_eng_prep_doing(job, "resolving the caches");
    if (evr_cache_reads_files(spec))
        job->ex->ops->dir(job->ex, job->id, NULL, s_ws_dir, job);
    else
        s_resolve(job, NULL);
}

/*  One volume's size measure: its host directory asked of the executor,
    then walked in a child (on the job's measures list meanwhile; on the
    engine's walks queue until its turn). */
typedef struct evr_eng_measure {
    struct evr_eng_measure *next;
    struct evr_eng_measure *qnext;  /* on the engine's walks queue */
    evr_eng_job_t *job;
    char *volume;
    char *path;             /* the host directory */
    bool queued;            /* waits for its turn (EVR_ENG_WALKS_MAX) */
    evr_offload_t *work;
    uint64_t timer;         /* the walk's time limit (EVR_ENG_WALK_LIMIT_MS) */
} s_measure_t;

static void s_walks_next(evr_engine_t *e);

/*  m leaves the engine's queue, or its walk ends (its child killed
    when under way): one more may start. */
static void
s_measure_free(s_measure_t *m)
{
    evr_engine_t *e = m->job->eng;
    if (m->queued)
        for (s_measure_t **p = &e->walks; *p; p = &(*p)->qnext)
            if (*p == m) {
                *p = m->qnext;
                break;
            }
    if (m->work) {
        evr_offload_cancel(&m->work);
        e->walking--;
    }
    evr_loop_timer_cancel(e->loop, m->timer);
    free(m->volume);
    free(m->path);
    free(m);
}

/*  One measure over: its record's size set (unless it failed), then,
    the last of the job's, the LRU pass. */
static void
s_measure_end(s_measure_t *m, bool ok, uint64_t size)
{
    evr_eng_job_t *job = m->job;
    if (ok)
        evr_cache_set_size(job->eng->opts.caches_dir, m->volume, size);
    for (s_measure_t **p = &job->measures; *p; p = &(*p)->next)
        if (*p == m) {
            *p = m->next;
            break;
        }
    s_measure_free(m);
    job->calls--;
    if (--job->cache_calls == 0)
        s_evict(job, job);
}

/*  In the child: the bytes of the regular files under the host
    directory (m is its snapshot, read only). */
static void
s_du_work(void *arg, void *out, size_t size)
{
    (void) size;
    const s_measure_t *m = arg;
    uint64_t n = evr_cache_du(m->path);
    memcpy(out, &n, sizeof n);
}

static void
s_du_done(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    s_measure_t *m = arg;
    evr_engine_t *e = m->job->eng;
    m->work = NULL;
    e->walking--;
    evr_loop_timer_cancel(e->loop, m->timer);
    m->timer = 0;
    uint64_t n;
    memcpy(&n, out, sizeof n);
    if (rc)
        evr_eng_print(e, "evrun-runner: cache %s: measuring its size in %s: %s (its "
                      "recorded size kept)", m->volume, m->path, msg);
    s_measure_end(m, !rc, n);
    s_walks_next(e);
}

/*  A walk's time limit: EVR_ENG_WALK_LIMIT_MS, or the test hook's
    EVR_TEST_WALK_LIMIT_MS. */
static uint64_t
s_walk_limit_ms(void)
{
    const char *t = getenv("EVR_TEST_WALK_LIMIT_MS");
    long long ms = t ? atoll(t) : 0;
    return ms > 0 ? (uint64_t) ms : EVR_ENG_WALK_LIMIT_MS;
}

/*  A walk past its time limit (a cache on a mount that hangs, or too
    large to measure): its child killed, nothing recorded (the size
    recorded before is kept), said; its slot goes to the next. */
static void
s_walk_late(evr_loop_t *loop, void *arg)
{
    (void) loop;
    s_measure_t *m = arg;
    evr_engine_t *e = m->job->eng;
    m->timer = 0;
    evr_offload_cancel(&m->work);
    e->walking--;
    uint64_t ms = s_walk_limit_ms();
    char took[64];
    snprintf(took, sizeof took, "%llu %s", (unsigned long long) (ms % 1000 ? ms : ms / 1000),
             ms % 1000 ? "ms" : "s");
    evr_eng_print(e, "evrun-runner: cache %s: measuring its size in %s took longer than %s: "
                  "stopped (its recorded size kept)", m->volume, m->path, took);
    if (!e->opts.print)
        evr_log_warn("evrun-runner", "cache %s: measuring its size in %s took longer than %s: "
                     "stopped (its recorded size kept)", m->volume, m->path, took);
    s_measure_end(m, false, 0);
    s_walks_next(e);
}

/*  The walks waiting started, oldest first, while fewer than
    EVR_ENG_WALKS_MAX are under way: jobs times caches never make as
    many children at once, and a job's walks wait for those asked before
    them only.  Each has EVR_ENG_WALK_LIMIT_MS: a stalled one does not
    hold its slot for ever. */
static void
s_walks_next(evr_engine_t *e)
{
    while (!e->closing && e->walks && e->walking < EVR_ENG_WALKS_MAX) {
        s_measure_t *m = e->walks;
        e->walks = m->qnext;
        m->queued = false;
        e->walking++;
        m->work = evr_offload_start(e->loop, s_du_work, sizeof(uint64_t), s_du_done, m);
        evr_offload_what(m->work, "measuring cache %s in %s", m->volume, m->path);
        m->timer = evr_loop_timer_add(e->loop, s_walk_limit_ms(), s_walk_late, m);
    }
}

/*  The volume's host directory known: walked in a child process, not on
    the loop (a cache of many files takes seconds to walk, and every job's
    output and the heartbeat wait for the loop), once its turn comes.  The
    volume is not removed meanwhile: the job, not done, still uses it
    (s_in_use). */
static void
s_measured(const evr_exec_result_t *r, void *arg)
{
    s_measure_t *m = arg;
    evr_eng_job_t *job = m->job;
    evr_engine_t *e = job->eng;
    if (r->rc) {
        s_measure_end(m, false, 0);
        return;
    }
    m->path = evr_strdup(r->names);
    m->next = job->measures;
    job->measures = m;
    m->queued = true;
    s_measure_t **p = &e->walks;
    while (*p)
        p = &(*p)->qnext;
    *p = m;
    s_walks_next(e);
}

void
evr_eng_cache_drop(evr_eng_job_t *job)
{
    while (job->measures) {
        s_measure_t *m = job->measures;
        job->measures = m->next;
        s_measure_free(m);   /* its child killed, or off the queue */
    }
    s_walks_next(job->eng);   /* another job's, if one waits */
}

bool
evr_eng_cache_measure(evr_eng_job_t *job)
{
    if (!job->caches || job->caches_measured)
        return false;
    job->caches_measured = true;
    char *path = s_job_file(job);
    unlink(path);
    free(path);
    const char *const *vols;
    uint32_t n = evr_cache_volumes(job->caches, &vols);
    for (uint32_t i = 0; i < n; i++) {
        s_measure_t *m = evr_calloc(1, sizeof *m);
        m->job = job;
        m->volume = evr_strdup(vols[i]);
        job->calls++;
        job->cache_calls++;
        job->ex->ops->dir(job->ex, NULL, vols[i], s_measured, m);
    }
    return n > 0;
}
