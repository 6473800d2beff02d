/*  evr_podman_host.c: the podman service's host, asked of the service
    (GET /libpod/info), else guessed from its socket (see
    evr_podman_host.h). */
#include "evr_podman_host.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "evr_common.h"
#include "evr_log.h"

#define S_CGROUP2_MAGIC 0x63677270
#define S_WHO "evrun-runner"
#define S_REASK_NS 60000000000ull   /* a failed call's guess asked again after */

struct evr_podman_host {
    evr_podman_t *pm;
    char *url;
    void *call;      /* the call on pm under way, or NULL */
    bool dropping;   /* that call being cancelled: its answer is no verdict */
    bool known;      /* the verdict is in no_limits */
    char *no_limits; /* why no limits, or NULL */
    uint64_t guessed_ns; /* mono ns the call failed (the verdict a guess), or 0 */
};

/*  The guess of a service that did not say (evr_podman_host.h). */
static char *
s_guess(const char *url)
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

/*  The service's answer (or its failure) as the verdict. */
static void
s_answer(const evr_podman_result_t *r, void *arg)
{
    evr_podman_host_t *self = arg;
    self->call = NULL;
    if (self->dropping || (self->known && !self->guessed_ns))
        return;
    self->known = true;
    free(self->no_limits);   /* a guess asked again */
    self->no_limits = NULL;
    self->guessed_ns = 0;
    if (r->rc) {
        self->no_limits = s_guess(self->url);
        self->guessed_ns = evr_mono_ns();
        evr_log_warn(S_WHO, "podman at %s: GET /libpod/info failed (%s): whether it is "
                     "rootless is guessed from its socket's owner instead: %s", self->url, r->msg,
                     self->no_limits ? self->no_limits : "cgroup limits can be set");
        return;
    }
    if (r->rootless && strcmp(r->cgroup_version, "v2") != 0)
        self->no_limits = evr_asprintf("its podman is rootless (the service says so: "
                                       "host.security.rootless, host.cgroupVersion %s) on "
                                       "cgroups v1, where podman cannot set cgroup limits (it "
                                       "would run the step without them)", r->cgroup_version);
    evr_log_at(self->no_limits ? EVR_LOG_INFO : EVR_LOG_DEBUG, S_WHO,
               "podman at %s: %s, cgroups %s (%s)%s", self->url,
               r->rootless ? "rootless" : "root", r->cgroup_version,
               r->cgroup_manager[0] ? r->cgroup_manager : "manager not said",
               self->no_limits ? ": steps with cpus, memory or pids limits are refused" : "");
}

evr_podman_host_t *
evr_podman_host_new(evr_podman_t *pm, const char *url)
{
    evr_podman_host_t *self = evr_calloc(1, sizeof *self);
    self->pm = pm;
    self->url = evr_strdup(url);
    return self;
}

void
evr_podman_host_ask(evr_podman_host_t *self)
{
    if (!self->known && !self->call)
        self->call = evr_podman_info(self->pm, s_answer, self);
}

void
evr_podman_host_destroy(evr_podman_host_t **self_p)
{
    evr_podman_host_t *self = *self_p;
    if (!self)
        return;
    free(self->no_limits);
    free(self->url);
    free(self);
    *self_p = NULL;
}

const char *
evr_podman_host_no_limits(evr_podman_host_t *self)
{
    if (self->known) {   /* a guess is asked again, in the background, a minute on */
        if (self->guessed_ns && !self->call
            && evr_mono_ns() - self->guessed_ns > S_REASK_NS)
            self->call = evr_podman_info(self->pm, s_answer, self);
        return self->no_limits;
    }
    if (self->call) {   /* asked at the start: the caller's loop has hardly turned since */
        self->dropping = true;
        evr_podman_detach(self->pm, self->call);
        self->dropping = false;
    }
    evr_loop_t *loop = evr_loop_new();
    evr_err_t err;
    evr_podman_t *pm = evr_podman_new(self->url, loop, &err);
    if (pm) {
        evr_podman_info(pm, s_answer, self);
        for (int i = 0; i < 1200 && !self->known; i++)   /* the call's 10 s timeout ends it */
            evr_loop_once(loop, 50);
    }
    if (!self->known) {
        evr_podman_result_t r = { .rc = EVR_ERR_PODMAN, .msg = pm ? "no answer" : err.msg };
        s_answer(&r, self);
    }
    evr_podman_destroy(&pm);
    evr_loop_destroy(&loop);
    return self->no_limits;
}
