/*  evr_podman_host.h: what the podman executor learns of its service's
    host: whether a container of it can have cgroup limits (cpus, memory,
    pids).

    Rootless podman on cgroups v1 ignores them, only warning on its
    command line (the REST create succeeds and the container runs
    unlimited), so the runner refuses such a job before it runs.  The
    service says what it is: GET /libpod/info (host.security.rootless,
    host.cgroupVersion), asked once: a long-running runner asks as it
    starts, without waiting for the answer (evr_podman_host_ask); a
    one-shot one (--exec, --once, --recover) only when a job with limits
    comes, since the call costs the service ~55 ms of CPU that a job
    without limits should not pay.  Only when that call fails is the old guess
    made, and logged as one: a socket owned by another user than root is
    a rootless podman's, and /sys/fs/cgroup not a cgroup2 file system is
    cgroups v1 (a guess that errs both ways: a root service's socket
    chowned to a user, a rootless service's socket chowned to root). */
#ifndef EVR_PODMAN_HOST_H
#define EVR_PODMAN_HOST_H

#include "evr_podman.h"

typedef struct evr_podman_host evr_podman_host_t;

/*  What pm's service (at url, "unix:///path/podman.sock") is, not asked
    yet.  Caller owns the result; destroy it after pm (destroying pm drops
    a call under way unanswered). */
evr_podman_host_t *evr_podman_host_new(evr_podman_t *pm, const char *url);

/*  Starts asking the service GET /libpod/info on pm's loop, unless asked
    or known already. */
void evr_podman_host_ask(evr_podman_host_t *self);
void evr_podman_host_destroy(evr_podman_host_t **self_p);

/*  Why a container of the service cannot have cgroup limits, or NULL
    when it can (valid until pm's loop turns: a later answer replaces it).
    A verdict guessed because the call failed is asked again, in the
    background, when wanted a minute or more later.  When the service has not answered
    yet, the call under way is cancelled and the question asked again on
    a loop of its own, waiting for the answer (at most 10 s: the caller's
    loop does not turn meanwhile), so that a job with limits that comes
    right after the start is judged like any other. */
const char *evr_podman_host_no_limits(evr_podman_host_t *self);

#endif
