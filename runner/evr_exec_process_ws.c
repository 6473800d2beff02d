/*  evr_exec_process_ws.c: the process executor's workspaces (see
    evr_exec_process_ws.h).

    A workspace is removed by renaming it aside and removing the renamed
    tree through directory fds (evr_unit_rmtree), so nothing a step left
    in it (a link out) is followed.  get checks that the path stays in the
    workspace: its parent, with every link resolved, must be inside the
    workspace's own real path; its last component is not followed (a
    link is copied as a link).
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_artifact.h"
#include "evr_exec_process_ws.h"
#include "evr_spec.h"
#include "evr_unit.h"

static evr_rc_t
s_no_workspace(const char *dir, bool *not_found, evr_err_t *err)
{
    *not_found = true;
    return evr_err_set(err, EVR_ERR_IO, "no such workspace %s", dir);
}

evr_rc_t
evr_exec_process_ws_create(const char *work, const char *job_id, bool *exists, evr_err_t *err)
{
    *exists = false;
    char *dir = evr_asprintf("%s/%s", work, job_id);
    evr_rc_t rc = EVR_OK;
    if (mkdir(dir, 0700) != 0) {
        *exists = errno == EEXIST;
        rc = *exists ? evr_err_set(err, EVR_ERR_IO, "workspace %s exists already", dir)
                     : evr_err_set(err, EVR_ERR_IO, "creating the workspace %s: %s", dir,
                                   strerror(errno));
    }
    free(dir);
    return rc;
}

evr_rc_t
evr_exec_process_ws_aside(const char *work, const char *job_id, uint64_t *seq, char **trash,
                          bool *not_found, evr_err_t *err)
{
    *not_found = false;
    *trash = NULL;
    char *dir = evr_asprintf("%s/%s", work, job_id);
    char *t = evr_asprintf("%s/.rm-%s-%ld-%" PRIu64, work, job_id, (long) getpid(), ++*seq);
    evr_rc_t rc = EVR_OK;
    if (rename(dir, t) != 0)
        rc = errno == ENOENT ? s_no_workspace(dir, not_found, err)
                             : evr_err_set(err, EVR_ERR_IO, "removing the workspace %s: %s", dir,
                                           strerror(errno));
    else {
        *trash = t;
        t = NULL;
    }
    free(t);
    free(dir);
    return rc;
}

evr_rc_t
evr_exec_process_ws_purge(const char *work, const char *job_id, const char *trash,
                          evr_err_t *err)
{
    evr_err_t e2;
    if (!evr_unit_rmtree(trash, &e2))
        return EVR_OK;
    char *dir = evr_asprintf("%s/%s", work, job_id);
    evr_rc_t rc = evr_err_set(err, EVR_ERR_IO, "removing the workspace %s: %s", dir, e2.msg);
    free(dir);
    return rc;
}

char *
evr_exec_process_ws_names(const char *dir, const char *prefix, evr_err_t *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        evr_err_set(err, EVR_ERR_IO, "listing %s: %s", dir, strerror(errno));
        return NULL;
    }
    size_t plen = prefix ? strlen(prefix) : 0, len = 0, cap = 256;
    char *names = evr_malloc(cap);
    names[0] = '\0';
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || (plen && strncmp(e->d_name, prefix, plen)))
            continue;
        size_t n = strlen(e->d_name);
        while (len + n + 2 > cap)
            names = evr_realloc(names, cap *= 2);
        memcpy(names + len, e->d_name, n);
        len += n;
        names[len++] = '\n';
        names[len] = '\0';
    }
    closedir(d);
    return names;
}

evr_rc_t
evr_exec_process_ws_put(const char *work, const char *job_id, const char *tar_file, bool *not_found,
                        evr_err_t *err)
{
    *not_found = false;
    char *dir = evr_asprintf("%s/%s", work, job_id);
    struct stat st;
    uint32_t files = 0;
    evr_err_t e2;
    evr_rc_t rc = EVR_OK;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        rc = s_no_workspace(dir, not_found, err);
    else if (evr_artifact_unpack(tar_file, dir, UINT64_MAX, &files, &e2))
        rc = evr_err_set(err, EVR_ERR_IO, "unpacking %s into %s: %s", tar_file, dir, e2.msg);
    free(dir);
    return rc;
}

/*  path (as the pipeline wrote it) could not be reached for errno e. */
static evr_rc_t
s_path_err(const char *path, int e, bool *not_found, evr_err_t *err)
{
    *not_found = e == ENOENT;
    if (e == ENOENT)
        return evr_err_set(err, EVR_ERR_IO, "no such file or directory: %s (in %s)", path,
                           "the job's workspace");
    return evr_err_set(err, EVR_ERR_IO, "%s (in the job's workspace): %s", path, strerror(e));
}

/*  Whether path (relative to the workspace dir) stays inside it, its last
    component not followed. */
static evr_rc_t
s_inside(const char *dir, const char *path, bool *not_found, evr_err_t *err)
{
    char *parent = evr_asprintf("%s/%s", dir, path), *slash = strrchr(parent, '/');
    *slash = '\0';
    char *rp = realpath(parent, NULL);
    int e = errno; /* before the next call changes it */
    char *rws = rp ? realpath(dir, NULL) : NULL;
    int ews = errno;
    size_t n = rws ? strlen(rws) : 0;
    evr_rc_t rc = EVR_OK;
    if (!rp)
        rc = s_path_err(path, e, not_found, err);
    else if (!rws)
        rc = evr_err_set(err, EVR_ERR_IO, "the job's workspace %s: %s", dir, strerror(ews));
    else if (strncmp(rp, rws, n) || (rp[n] != '\0' && rp[n] != '/'))
        rc = evr_err_set(err, EVR_ERR_IO, "%s: leaves the workspace %s through a link", path, dir);
    free(rp);
    free(rws);
    free(parent);
    return rc;
}

evr_tarout_t *
evr_exec_process_ws_get(const char *work, const char *job_id, const char *path, evr_tarout_fn *fn,
                        void *arg, bool *not_found, evr_err_t *err)
{
    *not_found = false;
    char *dir = evr_asprintf("%s/%s", work, job_id);
    const char *why = path ? evr_spec_path_problem(path) : "no path";
    char *full = path ? evr_asprintf("%s/%s", dir, path) : NULL;
    struct stat st;
    evr_tarout_t *tar = NULL;
    if (why)
        evr_err_set(err, EVR_ERR_IO, "copying \"%s\" out of %s: %s", path ? path : "", dir, why);
    else if (s_inside(dir, path, not_found, err))
        ;
    else if (lstat(full, &st) != 0)
        s_path_err(path, errno, not_found, err);
    else
        tar = evr_tarout_new(full, fn, arg, err);
    free(full);
    free(dir);
    return tar;
}
