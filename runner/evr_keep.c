/*  evr_keep.c: a runner's retention; see evr_keep.h. */
#include "evr_keep.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_log.h"
#include "evr_offload.h"
#include "evr_unit.h"

#define S_BATCH 200
#define S_SCAN_BATCH 200    /* artifact directories looked at per turn */
#define S_AGAIN_MS 20
#define S_FIRST_MS 1000     /* the first pass, this long after the start */

struct evr_keep {
    evr_loop_t *loop;
    evr_store_t *store;
    evr_prune_policy_t pol;
    uint32_t interval_ms;
    char *state_dir;
    evr_keep_acked_fn *acked;
    void *arg;
    uint64_t timer;
    uint64_t noted;             /* broker_acked last written to meta */
    evr_offload_t *work;        /* the artifact directories' removal, in a child */
    char **doomed;              /* those it removes (or will: the scan under way) */
    size_t ndoomed, cap;
    DIR *scan;                  /* STATE/artifacts, looked at S_SCAN_BATCH entries a turn */
    char upto[EVR_ULID_LEN + 1];    /* the store's removed jobs: ids up to this */
};

/*  True when the ship queue (STATE/ship) holds no entry. */
static bool
s_ship_empty(const char *state_dir)
{
    char *dir = evr_asprintf("%s/ship", state_dir);
    DIR *d = opendir(dir);
    free(dir);
    if (!d)
        return true;
    bool empty = true;  /* an entry is NAME.ship (as the shipper's); NAME.ship.tmp is one
                           never finished, which the shipper's start removes */
    for (struct dirent *e; empty && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        empty = e->d_name[0] == '.' || n < 5 || strcmp(e->d_name + n - 5, ".ship") != 0;
    }
    closedir(d);
    return empty;
}

/*  Whether a sweep may start, and from where: the store removed jobs up
    to *upto (filled) and nothing waits to ship. */
static bool
s_sweep_due(evr_store_t *store, const char *state_dir, char upto[EVR_ULID_LEN + 1])
{
    evr_prune_meta_t pm;
    evr_err_t err;
    if (evr_store_pruned(store, &pm, &err) || !pm.upto[0] || !s_ship_empty(state_dir))
        return false;
    snprintf(upto, EVR_ULID_LEN + 1, "%s", pm.upto);
    return true;
}

/*  Up to max entries more of the directory d (STATE/artifacts, named dir):
    those of the jobs retention removed (ids at or below upto the store no
    longer knows) appended to *paths (*n of them, room for *cap).  False
    once d has no more. */
static bool
s_doomed_more(evr_store_t *store, DIR *d, const char *dir, const char *upto, size_t max,
              char ***paths, size_t *n, size_t *cap)
{
    for (size_t i = 0; i < max; i++) {
        struct dirent *e = readdir(d);
        if (!e)
            return false;
        if (!evr_ulid_valid(e->d_name) || strcmp(e->d_name, upto) > 0)
            continue;
        evr_job_t job = { 0 };
        evr_err_t err;
        evr_rc_t rc = evr_store_get_job(store, e->d_name, &job, &err);
        evr_rec_free(&evr_job_type, &job);
        if (rc != EVR_ERR_NOTFOUND)
            continue;
        if (*n == *cap)
            *paths = evr_realloc(*paths, (*cap = *cap ? 2 * *cap : 16) * sizeof **paths);
        (*paths)[(*n)++] = evr_asprintf("%s/%s", dir, e->d_name);
    }
    return true;
}

/*  The directories STATE/artifacts/JOB of the jobs retention removed, once
    nothing waits to ship, all at once (the offline pass): *n paths
    (caller frees each and the array; NULL: none). */
static char **
s_doomed(evr_store_t *store, const char *state_dir, size_t *n)
{
    *n = 0;
    char upto[EVR_ULID_LEN + 1];
    if (!s_sweep_due(store, state_dir, upto))
        return NULL;
    char *dir = evr_asprintf("%s/artifacts", state_dir);
    DIR *d = opendir(dir);
    char **paths = NULL;
    size_t cap = 0;
    while (d && s_doomed_more(store, d, dir, upto, SIZE_MAX, &paths, n, &cap))
        ;
    if (d)
        closedir(d);
    free(dir);
    return paths;
}

static void
s_free_paths(char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

/*  Removes the artifact directories of the jobs retention removed, at
    once (the offline pass). */
static void
s_sweep_artifacts(evr_store_t *store, const char *state_dir)
{
    size_t n;
    char **paths = s_doomed(store, state_dir, &n);
    for (size_t i = 0; i < n; i++) {
        evr_err_t err;
        if (evr_unit_rmtree(paths[i], &err))
            evr_log_warn("evrun-runner", "retention: %s", err.msg);
    }
    s_free_paths(paths, n);
}

/*  What the sweep's child reports: how many directories it could not
    remove, and the first reasons (each NUL-terminated, as many as fit). */
typedef struct {
    uint32_t nfail, shown;
    char msgs[EVR_OFFLOAD_MAX - 8];
} s_swept_t;
EVR_OFFLOAD_FITS(s_swept_t);

/*  In the child: k->doomed removed (k is its snapshot, read only). */
static void
s_sweep_work(void *arg, void *out, size_t size)
{
    (void) size;
    const evr_keep_t *k = arg;
    s_swept_t *sw = out;
    size_t at = 0;
    for (size_t i = 0; i < k->ndoomed; i++) {
        evr_err_t err;
        if (!evr_unit_rmtree(k->doomed[i], &err))
            continue;
        size_t len = strlen(err.msg) + 1;
        if (sw->shown == sw->nfail && at + len <= sizeof sw->msgs) {
            memcpy(sw->msgs + at, err.msg, len);
            at += len;
            sw->shown++;
        }
        sw->nfail++;
    }
}

static void
s_swept(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    evr_keep_t *k = arg;
    const s_swept_t *sw = out;
    k->work = NULL;
    if (rc)
        evr_log_warn("evrun-runner", "retention: removing the artifact directories of %zu "
                     "removed jobs (%s, ...): %s", k->ndoomed, k->doomed[0], msg);
    size_t at = 0;
    for (uint32_t i = 0; !rc && i < sw->shown && at < sizeof sw->msgs; i++) {
        evr_log_warn("evrun-runner", "retention: %s", sw->msgs + at);
        at += strnlen(sw->msgs + at, sizeof sw->msgs - at) + 1;
    }
    if (!rc && sw->nfail > sw->shown)
        evr_log_warn("evrun-runner", "retention: %u more artifact directories could not be "
                     "removed", sw->nfail - sw->shown);
    s_free_paths(k->doomed, k->ndoomed);
    k->doomed = NULL;
    k->ndoomed = k->cap = 0;
}

/*  The artifact directories of the jobs retention removed, removed in a
    child process (evr_offload.h): a large tree takes seconds, and every
    job's output and the heartbeat wait for the loop.  Which ones is
    decided on the loop (the store is read by this process only), by a
    scan of STATE/artifacts that looks at S_SCAN_BATCH entries a turn (a
    store lookup each: a runner keeps any number of jobs), then the
    removal starts; one sweep at a time.  A sweep cut short (the runner
    stopped or killed) leaves what it had not removed to the next, as the
    store no longer knows them.  s_sweep_start begins a scan (false:
    none is due); s_sweep_scan takes its next turn's share. */
static bool
s_sweep_start(evr_keep_t *k)
{
    if (k->work || k->scan || !s_sweep_due(k->store, k->state_dir, k->upto))
        return false;
    char *dir = evr_asprintf("%s/artifacts", k->state_dir);
    k->scan = opendir(dir);
    free(dir);
    return k->scan != NULL;
}

static void
s_sweep_scan(evr_keep_t *k)
{
    char *dir = evr_asprintf("%s/artifacts", k->state_dir);
    bool more = s_doomed_more(k->store, k->scan, dir, k->upto, S_SCAN_BATCH, &k->doomed,
                              &k->ndoomed, &k->cap);
    free(dir);
    if (more)
        return;
    closedir(k->scan);
    k->scan = NULL;
    if (k->ndoomed) {
        k->work = evr_offload_start(k->loop, s_sweep_work, sizeof(s_swept_t), s_swept, k);
        evr_offload_what(k->work, "retention: removing %zu artifact directories (%s first)",
                         k->ndoomed, k->doomed[0]);
    }
}

/*  The seq the broker acknowledged, kept in meta when it moved on. */
static void
s_note_acked(evr_keep_t *k, uint64_t acked)
{
    if (acked <= k->noted)
        return;
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long) acked);
    evr_err_t err;
    if (evr_store_meta_set(k->store, "broker_acked", num, &err) == EVR_OK)
        k->noted = acked;
}

static void
s_tick(evr_loop_t *loop, void *arg)
{
    evr_keep_t *k = arg;
    (void) loop;
    k->timer = 0;
    if (k->scan) {   /* a sweep's scan: its next share, then the next turn's */
        s_sweep_scan(k);
        k->timer = evr_loop_timer_add(k->loop, k->scan ? S_AGAIN_MS : k->interval_ms, s_tick, k);
        return;
    }
    uint64_t acked = k->acked ? k->acked(k->arg) : 0;
    /* not welcomed yet: look again soon, as after the start */
    uint32_t wait = acked ? k->interval_ms : S_FIRST_MS < k->interval_ms ? S_FIRST_MS
                                                                          : k->interval_ms;
    if (acked) {
        s_note_acked(k, acked);
        evr_prune_policy_t pol = k->pol;
        pol.upto_seq = acked;
        evr_prune_stats_t st = { 0 };
        bool more = false;
        evr_err_t err;
        if (evr_store_prune(k->store, &pol, evr_now_ns(), S_BATCH, false, NULL, NULL, &st,
                            &more, &err))
            evr_log_warn("evrun-runner", "retention: %s", err.msg);
        else if (st.jobs || st.outputs)
            evr_log_info("evrun-runner", "retention: removed %llu finished jobs (%llu events, "
                         "%llu bytes), dropped the output of %llu", (unsigned long long) st.jobs,
                         (unsigned long long) st.events, (unsigned long long) st.bytes,
                         (unsigned long long) st.outputs);
        if (more)
            wait = S_AGAIN_MS;
        else if (s_sweep_start(k))   /* also those left while files waited to ship */
            wait = 0;   /* its scan, from the next turn */
    }
    k->timer = evr_loop_timer_add(k->loop, wait, s_tick, k);
}

evr_keep_t *
evr_keep_new(evr_loop_t *loop, evr_store_t *store, const evr_prune_policy_t *pol,
             uint32_t interval_ms, const char *state_dir, evr_keep_acked_fn *acked, void *arg)
{
    evr_keep_t *k = evr_calloc(1, sizeof *k);
    k->loop = loop;
    k->store = store;
    k->pol = *pol;
    k->interval_ms = interval_ms ? interval_ms : 60000;
    k->state_dir = evr_strdup(state_dir);
    k->acked = acked;
    k->arg = arg;
    char *v = NULL;
    evr_err_t err;
    /* a store that serves a broker says so at once: an offline --prune
       then never removes what the broker may not hold yet */
    if (acked && evr_store_meta_get(store, "broker_acked", &v, &err) == EVR_ERR_NOTFOUND)
        evr_store_meta_set(store, "broker_acked", "0", &err);
    free(v);
    if (evr_prune_enabled(pol))
        k->timer = evr_loop_timer_add(loop, S_FIRST_MS < k->interval_ms ? S_FIRST_MS
                                                                        : k->interval_ms,
                                      s_tick, k);
    return k;
}

void
evr_keep_destroy(evr_keep_t **self_p)
{
    evr_keep_t *k = *self_p;
    if (!k)
        return;
    if (k->acked)
        s_note_acked(k, k->acked(k->arg));
    evr_loop_timer_cancel(k->loop, k->timer);
    evr_offload_cancel(&k->work);   /* its child killed: the next start's sweep goes on */
    if (k->scan)
        closedir(k->scan);
    s_free_paths(k->doomed, k->ndoomed);
    free(k->state_dir);
    free(k);
    *self_p = NULL;
}

evr_rc_t
evr_keep_run(evr_store_t *store, const evr_prune_policy_t *pol, const char *state_dir,
             bool dry_run, evr_prune_stats_t *st, evr_err_t *err)
{
    evr_prune_policy_t p = *pol;
    char *acked = NULL;
    evr_err_t ignored;
    if (evr_store_meta_get(store, "broker_acked", &acked, &ignored) == EVR_OK) {
        p.upto_seq = strtoull(acked, NULL, 10);
        free(acked);
        if (!p.upto_seq)
            return EVR_OK;   /* the broker holds nothing yet: nothing may go */
    }
    bool more = true;
    evr_rc_t rc = EVR_OK;
    for (int i = 0; more && !rc && i < 100000; i++)
        rc = evr_store_prune(store, &p, evr_now_ns(), S_BATCH, dry_run, NULL, NULL, st, &more,
                             err);
    if (!rc && !dry_run)
        s_sweep_artifacts(store, state_dir);
    return rc;
}

evr_rc_t
evr_keep_settings(const evr_config_t *cfg, evr_prune_policy_t *pol, uint32_t *interval_ms,
                  evr_err_t *err)
{
    evr_config_retention_t r;
    evr_rc_t rc = evr_config_retention(cfg, &r, err);
    memset(pol, 0, sizeof *pol);
    pol->max_age_ms = r.max_age_ms;
    pol->keep_per_pipeline = r.keep_per_pipeline;
    pol->output_max_age_ms = r.output_max_age_ms;
    *interval_ms = r.interval_ms;
    return rc;
}
