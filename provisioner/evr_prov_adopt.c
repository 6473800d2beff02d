/*  evr_prov_adopt.c: at the start, the runners an earlier provisioner on
    the same directory left (evr_prov_run.h evr_prov_adopt_all): killed
    (SIGKILL, a crash, a reboot of the provisioner alone), it could not
    stop those waiting or starting, and a new one that did not know them
    would start more past max and never stop those that never said hello.

    A process runner is found by its state directory DIR/runners/ID: the
    runner holds its evrun.lock (evr_lock.h) while it runs and wrote its
    pid there; a podman runner by its container's label
    evrun.provisioner=DIR.  A command provider's runners leave no trace
    here (their handles were the killed provisioner's): they end by their
    own --once-wait.
*/
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_lock.h"
#include "evr_log.h"
#include "evr_prov_run.h"

#define S_WHO "evrun-provisioner"

/*  The pid a runner holding lock path wrote (0: none, or none holds it). */
static pid_t
s_holder(const char *path)
{
    long pid = 0;
    evr_err_t err;
    if (evr_lock_holder(path, &pid, &err) != 1)
        return 0;   /* none holds it: a stopped or killed runner's directory */
    return pid > 0 && pid <= INT_MAX ? (pid_t) pid : 0;
}

static void
s_processes(evr_prov_t *pv, const char *dir, uint64_t now)
{
    char *runners = evr_asprintf("%s/runners", dir);
    DIR *d = opendir(runners);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *lock = evr_asprintf("%s/%s/evrun.lock", runners, e->d_name);
        pid_t pid = access(lock, F_OK) ? 0 : s_holder(lock);
        if (pid > 0 && !evr_prov_adopt(pv, e->d_name, pid, false, now))
            evr_log_warn(S_WHO, "runner %s (pid %d) of an earlier provisioner is of no process "
                         "provider of the config: left alone", e->d_name, (int) pid);
        free(lock);
    }
    if (d)
        closedir(d);
    free(runners);
}

static void
s_containers(evr_prov_t *pv, const char *dir, uint64_t now)
{
    evr_err_t err;
    char abs[PATH_MAX], *names = NULL;
    evr_prov_podman_t *pm = evr_prov_podman_client(pv, &err);
    if (pm && !realpath(dir, abs))
        return;
    if (!pm || evr_prov_podman_list(pm, abs, &names, &err)) {
        evr_log_warn(S_WHO, "the runners' containers of an earlier provisioner: %s (not "
                     "adopted)", err.msg);
        return;
    }
    for (char *l = names, *nl; l && *l; l = nl + 1) {
        if (!(nl = strchr(l, '\n')))
            break;
        *nl = '\0';
        const char *id = l + strlen("evrun-runner-");
        if (!evr_prov_adopt(pv, id, 0, true, now))
            evr_log_warn(S_WHO, "container %s of an earlier provisioner is of no podman "
                         "provider of the config: left alone", l);
    }
    free(names);
}

void
evr_prov_adopt_all(evr_prov_t *self, const char *dir, uint64_t now)
{
    s_processes(self, dir, now);
    if (evr_prov_has_podman(self))
        s_containers(self, dir, now);
}
