/*  evr_source.h: a job's source (`source:`, `ci_source:`) made into a tar
    file for its workspace.

    git: a child process runs the `git` command against the runner's
    cache of bare repositories (one per URL under a cache directory,
    locked with flock(1) while in use), fetches the ref (only what the
    cache lacks), resolves it to a commit and writes the commit's tree as
    a tar (`git archive`).  The child is watched on the loop through its
    output pipe; nothing waits for it.  Submodules' trees come as tars of
    their own, merged into the commit's in a child process
    (evr_offload.h), never on the loop.  copy: a directory of the runner
    written into a tar with libarchive, its .evrunignore honoured.

    The tar's entries start with a prefix ("src/" for the workspace's
    /job/src, "" for the CI area); the executor's put unpacks it.
*/
#ifndef EVR_SOURCE_H_INCLUDED
#define EVR_SOURCE_H_INCLUDED

#include "evr_loop.h"
#include "evr_spec.h"

typedef struct evr_source_req evr_source_req_t;

/*  A git checkout. */
typedef struct {
    const char *cache_dir;      /* the cache of repositories (made when missing) */
    const evr_git_t *git;       /* url, ref (NULL: HEAD), depth, submodules */
    const char *auth;           /* USER:PASSWORD or a token for http(s); NULL: none */
    const char *prefix;         /* of every entry in the tar: "src/" or "" */
    const char *tar_out;        /* written; removed on failure */
    uint64_t max_bytes;         /* most bytes of the tar */
    uint64_t timeout_ms;        /* the whole checkout; 0: 10 minutes */
} evr_source_git_opts_t;

/*  The outcome: rc EVR_OK, or EVR_ERR_IO / EVR_ERR_LIMIT / EVR_ERR_TIMEOUT
    with msg saying why (git's own last words included).  commit: the full
    SHA checked out; objects: how many the cache fetched for it.  Pointers
    valid during the callback only. */
typedef struct {
    evr_rc_t rc;
    const char *msg;
    const char *commit;
    uint64_t objects;
    uint64_t tar_bytes;
} evr_source_result_t;

typedef void (evr_source_fn)(const evr_source_result_t *r, void *arg);

/*  Starts a checkout; fn is called once, from a later turn of loop.
    Never NULL: a child that cannot be started reports from a turn too. */
evr_source_req_t *evr_source_git_start(evr_loop_t *loop, const evr_source_git_opts_t *o,
                                       evr_source_fn *fn, void *arg);

/*  Stops a checkout under way (its child process group is killed, and
    the child reaped from later turns of the loop, never waited for: one
    in uninterruptible sleep does not hold the loop up; a merge of
    submodules' tars under way is killed, the tars and tar_out removed,
    its child reaped from later turns of the loop too); fn is not
    called.  NULL-safe; sets *req_p = NULL. */
void evr_source_cancel(evr_source_req_t **req_p);

/*  Keeps the cache of repositories at cache_dir under cap bytes: when
    its entries' sizes pass it, removes those used longest ago (their
    directory's mtime, touched at each checkout) whose lock no process
    holds, until they fit.  Call it when no checkout of this runner runs
    (a submodule's entry is used under its parent's lock only).  An entry
    is renamed aside (.rm-NAME-PID) under its lock, then removed: one
    whose removal was cut short (a killed process) is never used again,
    and the next trim removes it.  Slow on a large cache: the engine runs
    it in a child (evr_offload.h).  Returns the names removed (*n of
    them; caller frees each and the array). */
char **evr_source_cache_trim(const char *cache_dir, uint64_t cap, uint32_t *n);

/*  The cache directory's entry for url: DIR/<sha256 of url>.git.  Caller
    owns the result. */
char *evr_source_cache_path(const char *cache_dir, const char *url);

/*  evr_source_copy_tar's flags: the tar gzip-compressed; a symbolic link
    refused (EVR_ERR_IO naming it) rather than kept; at most
    EVR_ARTIFACT_MAX_ENTRIES entries, as a runner unpacks of a copy sent
    to it (EVR_ERR_LIMIT). */
#define EVR_SOURCE_GZIP 1u
#define EVR_SOURCE_NO_LINKS 2u
#define EVR_SOURCE_MAX_ENTRIES 4u

/*  Writes the directory dir (a runner's path) into the tar tar_out, each
    entry's name prefixed with prefix (flags: EVR_SOURCE_*).  Leaves out `.git` and what
    dir/.evrunignore lists (one pattern a line; blank lines and # comments
    skipped; a shell glob matched against the relative path and against
    the last component; a trailing '/' matches directories only; more
    than 256 patterns, or a line over 1023 bytes, is EVR_ERR_LIMIT).
    Regular files, directories and symbolic links; other kinds are
    skipped.  EVR_ERR_LIMIT when the contents pass max_bytes, EVR_ERR_IO
    for a directory that cannot be read (tar_out removed then).  *bytes:
    the tar's size. */
evr_rc_t evr_source_copy_tar(const char *dir, const char *prefix, uint64_t max_bytes,
                             unsigned flags, const char *tar_out, uint64_t *bytes,
                             evr_err_t *err);

/*  libarchive turns entry names to and from the tar's UTF-8 through the
    process's locale (LC_CTYPE): in the "C" locale a name with a
    character past ASCII (résumé.txt) can be neither written nor read.
    Sets LC_CTYPE to C.UTF-8 (names are UTF-8 on the host and in the
    tar), and when the C library has no such locale to the environment's
    if that one is UTF-8.  Once, at the start of a process that makes or
    reads tars (evrun-runner, evrun-cli), before any thread. */
void evr_source_locale(void);

#endif
