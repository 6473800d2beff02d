/*  evr_prov_adopt.c: at the start, the runners an earlier provisioner on
    the same directory left (evr_prov_run.h evr_prov_adopt_all): killed
    (SIGKILL, a crash, a reboot of the provisioner alone), it could not
    stop those waiting or starting, and a new one that did not know them
    would start more past max and never stop those that never said hello.

    A process runner is found by its state directory DIR/runners/ID: the
    runner holds its evrun.lock (evr_lock.h) while it runs and wrote its
    pid there; a podman runner by its container's label
    evrun.provisioner=DIR; a command provider's runner by the record the
    killed one wrote of it, DIR/commands/ID (its handle, whether it said
    hello), before its start command ran.  A record half written
    (DIR/commands/ID.tmp) is of a record that is whole beside it, or of a
    start that never ran: removed.  The records are written and removed
    by evr_prov_run.c (evr_prov_record_save, evr_prov_record_forget).
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

evr_rc_t
evr_prov_record_save(const char *dir, const char *id, const char *handle, bool hello,
                     evr_err_t *err)
{
    char *top = evr_asprintf("%s/commands", dir);
    char *path = evr_asprintf("%s/%s", top, id), *tmp = evr_asprintf("%s.tmp", path);
    evr_rc_t rc = EVR_OK;
    FILE *f = NULL;
    if (mkdir(top, 0700) && errno != EEXIST)
        rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", top, strerror(errno));
    else if (!(f = fopen(tmp, "w")))
        rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tmp, strerror(errno));
    else {
        fprintf(f, "%s\n%s", handle ? handle : "", hello ? "hello\n" : "");
        bool ok = fflush(f) == 0 && fdatasync(fileno(f)) == 0;
        if (fclose(f) || !ok || rename(tmp, path))
            rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (rc)
        unlink(tmp);
    free(top);
    free(path);
    free(tmp);
    return rc;
}

void
evr_prov_record_forget(const char *dir, const char *id)
{
    char *path = evr_asprintf("%s/commands/%s", dir, id);
    unlink(path);
    free(path);
}

/*  The record at path read: its handle (first line) and whether "hello"
    follows; false when it cannot be read. */
static bool
s_record(const char *path, char *handle, size_t n, bool *hello)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[512];
    *handle = '\0';
    *hello = false;
    if (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        snprintf(handle, n, "%s", line);
        *hello = fgets(line, sizeof line, f) && !strcmp(line, "hello\n");
    }
    fclose(f);
    return true;
}

static void
s_commands(evr_prov_t *pv, const char *dir, uint64_t now)
{
    char *top = evr_asprintf("%s/commands", dir);
    DIR *d = opendir(top);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *path = evr_asprintf("%s/%s", top, e->d_name), handle[512];
        size_t len = strlen(e->d_name);
        bool hello;
        if (len > 4 && !strcmp(e->d_name + len - 4, ".tmp"))
            unlink(path);
        else if (!s_record(path, handle, sizeof handle, &hello))
            evr_log_warn(S_WHO, "%s: %s: left alone", path, strerror(errno));
        else if (!evr_prov_adopt_command(pv, e->d_name, handle, hello, now))
            evr_log_warn(S_WHO, "runner %s (%s) of an earlier provisioner is of no command "
                         "provider of the config: left alone", e->d_name, path);
        free(path);
    }
    if (d)
        closedir(d);
    free(top);
}

void
evr_prov_adopt_all(evr_prov_t *self, const char *dir, uint64_t now)
{
    s_processes(self, dir, now);
    s_commands(self, dir, now);
    if (evr_prov_has_podman(self))
        s_containers(self, dir, now);
}
