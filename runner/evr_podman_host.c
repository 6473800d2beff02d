/*  evr_podman_host.c: the podman service's host, learnt locally (see
    evr_podman_host.h). */
#include "evr_podman_host.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "evr_common.h"

#define S_CGROUP2_MAGIC 0x63677270

char *
evr_podman_host_no_limits(const char *url)
{
    struct stat st;
    struct statfs fs;
    if (strncmp(url, "unix://", 7) || stat(url + 7, &st) != 0 || st.st_uid == 0)
        return NULL;
    if (statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == S_CGROUP2_MAGIC)
        return NULL;
    return evr_asprintf("its podman is rootless (the socket %s is owned by uid %u) on cgroups "
                        "v1, where podman cannot set cgroup limits (it would run the step "
                        "without them)", url + 7, (unsigned) st.st_uid);
}
