/*  evr_cache.h: caches, named volumes kept across jobs on one runner.

    A `cache: [{key, path}]` entry (of the pipeline, or of a step: a step's
    entry replaces the pipeline's of the same path) names a volume per
    pipeline and key: evrun-cache-<24 hex digits of sha256(pipeline, NUL,
    resolved key)>, mounted at path (read-only in an untrusted step, so
    that the source's code never writes what a trusted step reads) (relative paths under /workspace, or
    /job/src in the /job layout).  `{{ sha256 FILE }}` in a key is the
    sha256 of the file FILE of the job's workspace (of its src/ in the
    /job layout), read once the workspace is prepared (resources and
    sources in), before the first step, from the executor's host
    directory of it, beneath it only (no link followed).

    Least recently used: STATE/caches holds a record per volume, its mtime
    the last use (a job's start and end), its content the size measured
    at the end of the last job that used it.  When the recorded sizes pass
    the runner's cache_max_bytes, the volumes used longest ago that no
    job of the runner holds are removed, at a job's start and at its end.
*/
#ifndef EVR_CACHE_H_INCLUDED
#define EVR_CACHE_H_INCLUDED

#include "evr_exec.h"

typedef struct evr_cache_job evr_cache_job_t;

/*  Whether any cache key of spec reads a file of the workspace. */
bool evr_cache_reads_files(const evr_spec_t *spec);

/*  The caches of spec resolved (ws_dir: the workspace's host directory;
    NULL when no key reads a file).  *out NULL when the spec has none.
    EVR_ERR_CONFIG naming the entry and the file that cannot be read. */
evr_rc_t evr_cache_resolve(const evr_spec_t *spec, const char *ws_dir, evr_cache_job_t **out,
                           evr_err_t *err);
void evr_cache_job_destroy(evr_cache_job_t **self_p);

/*  The mounts of step i (n of them; NULL when none). */
const evr_exec_mount_t *evr_cache_mounts(const evr_cache_job_t *self, uint32_t step,
                                         uint32_t *n);
/*  The distinct volumes of the job: n, names[i]. */
uint32_t evr_cache_volumes(const evr_cache_job_t *self, const char *const **names);
/*  Whether the job uses volume. */
bool evr_cache_uses(const evr_cache_job_t *self, const char *volume);

/*  A job's resolved caches kept in the file path (one line per mount:
    step, volume, dest), so that a runner restarted mid-job mounts the
    same volumes in the steps still to come; load gives NULL when the file
    is missing or unusable (the caller goes on without caches). */
evr_rc_t evr_cache_job_save(const evr_cache_job_t *self, const char *path, evr_err_t *err);
evr_cache_job_t *evr_cache_job_load(const char *path, uint32_t nsteps);

/*  LRU records in dir (made when missing): volume used now (its size kept,
    or 0 when new); its size as measured. */
evr_rc_t evr_cache_touch(const char *dir, const char *volume, evr_err_t *err);
void evr_cache_set_size(const char *dir, const char *volume, uint64_t size);
/*  Bytes of the regular files under path (links not followed). */
uint64_t evr_cache_du(const char *path);

/*  The volumes to remove so that the recorded sizes fit cap, used longest
    ago first, none for which in_use says true; their records are removed.
    Caller frees each name and the array; *n of them. */
char **evr_cache_evict(const char *dir, uint64_t cap, bool (*in_use)(const char *, void *),
                       void *arg, uint32_t *n);

#endif
