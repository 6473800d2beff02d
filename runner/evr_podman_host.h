/*  evr_podman_host.h: what the podman executor learns of its service's
    host without asking the service (the service is on this host: its
    socket is a unix socket here). */
#ifndef EVR_PODMAN_HOST_H
#define EVR_PODMAN_HOST_H

/*  Why a container of the service at url ("unix:///path/podman.sock")
    cannot have cgroup limits (cpus, memory, pids), or NULL when it can
    (caller frees): a service whose socket is owned by another user than
    root is a rootless podman, and rootless podman on cgroups v1 (or
    "hybrid": /sys/fs/cgroup is not a cgroup2 file system) ignores
    limits, only warning on its command line. */
char *evr_podman_host_no_limits(const char *url);

#endif
