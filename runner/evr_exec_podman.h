/*  evr_exec_podman.h: the podman executor (evr_exec.h over evr_podman).

    A step's unit is a container of the step's image (pulled first as
    its policy says, evr_podman_pull.c), created with its script as
    `/bin/sh -c` under catatonit, the step's network namespace (none,
    bridge, host) and limits (cpus, memory, pids), the job's workspace
    mounted at /workspace.  The workspace is the volume
    evrun-<job id in lower case>; files are put into it through a short-
    lived helper container that mounts it and never runs (named
    evrun-<job>-resources-<pid>, so that one a killed runner left is swept
    with the job's containers), and got out of a step's container by
    podman's archive API.  Podman's state strings become
    evr_exec_state_t here, and nowhere else.
*/
#ifndef EVR_EXEC_PODMAN_H_INCLUDED
#define EVR_EXEC_PODMAN_H_INCLUDED

#include "evr_exec.h"

/*  The podman executor on the service at url ("unix:///path/podman.sock"),
    its calls on loop (which must outlive it).  Checks that the service
    answers (a ping, turning the loop until it does: not from inside a
    callback of the loop).  NULL with err: EVR_ERR_CONFIG for a URL of
    another form, EVR_ERR_PODMAN when podman does not answer, each saying
    how to start a service.  Caller owns the result (evr_exec_destroy). */
evr_exec_t *evr_exec_podman_new(const char *url, evr_loop_t *loop, evr_err_t *err);

/*  The runner's registry_auth setting: a containers-auth.json file whose
    credentials go with every pull that has none of its pipeline's (read
    at each pull, so that a changed file counts).  NULL or "": podman's
    own auth file. */
void evr_exec_podman_set_registry_auth(evr_exec_t *ex, const char *path);

/*  A long-running runner: asks the service what it is (rootless,
    cgroups version: evr_podman_host.h) now, without waiting, so that the
    first job with limits finds the answer in. */
void evr_exec_podman_ask_host(evr_exec_t *ex);

#endif
