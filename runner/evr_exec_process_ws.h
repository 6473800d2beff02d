/*  evr_exec_process_ws.h: the process executor's workspaces, private to
    evr_exec_process.c.

    A job's workspace is the directory WORK/JOB (0700), WORK the
    executor's STATE/work.  These calls do the work on disk, at once:
    make one, remove one (in two parts), list a directory's names, unpack a tar into a
    workspace (put), and open a path of it as a tar stream (get).  The
    executor makes each an operation whose outcome it reports from a turn
    of the loop.  Each returns EVR_ERR_IO with err saying what failed,
    and *not_found (where it has one) when the workspace, or a get's path,
    does not exist.  job_id is a name evr_unit_name_ok accepts (the
    caller checks it).
*/
#ifndef EVR_EXEC_PROCESS_WS_H_INCLUDED
#define EVR_EXEC_PROCESS_WS_H_INCLUDED

#include "evr_common.h"
#include "evr_tarout.h"

/*  Makes WORK/JOB empty; *exists (an error) when it is there already. */
evr_rc_t evr_exec_process_ws_create(const char *work, const char *job_id, bool *exists,
                                    evr_err_t *err);

/*  Removing WORK/JOB with what is in it, in two parts: aside renames it
    to WORK/.rm-JOB-PID-N (N from ++*seq; *trash, caller frees), at once,
    so the id is free and a runner killed meanwhile leaves a leftover its
    next start sweeps; purge removes that tree (the long part: the
    executor runs it in a child, evr_offload.h), errors naming WORK/JOB. */
evr_rc_t evr_exec_process_ws_aside(const char *work, const char *job_id, uint64_t *seq,
                                   char **trash, bool *not_found, evr_err_t *err);
evr_rc_t evr_exec_process_ws_purge(const char *work, const char *job_id, const char *trash,
                                   evr_err_t *err);

/*  The names in dir not starting with '.', starting with prefix (NULL:
    any), one a line: a new string, caller frees.  NULL with err when dir
    cannot be read. */
char *evr_exec_process_ws_names(const char *dir, const char *prefix, evr_err_t *err);

/*  Unpacks the tar file tar_file at the root of WORK/JOB (the entry
    checks of evr_artifact_unpack, no limit of bytes: the runner made the
    tar itself). */
evr_rc_t evr_exec_process_ws_put(const char *work, const char *job_id, const char *tar_file,
                                 bool *not_found, evr_err_t *err);

/*  A tar stream of path (relative to WORK/JOB, as the pipeline wrote it:
    no "..", not absolute, not leaving the workspace through a link; its
    last component not followed) to fn, to be run with evr_tarout_step.
    NULL with err (and *not_found) when it cannot be.  Caller owns the
    result. */
evr_tarout_t *evr_exec_process_ws_get(const char *work, const char *job_id, const char *path,
                                      evr_tarout_fn *fn, void *arg, bool *not_found,
                                      evr_err_t *err);

#endif
