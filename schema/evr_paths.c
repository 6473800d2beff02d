/*  evr_paths.c: private state directories and files; see evr_paths.h.

    The checks use lstat/fstat on what is actually opened or used, never
    a name looked up twice where it matters: a pid or log file is opened
    with O_NOFOLLOW and then checked through its descriptor.
*/
#include "evr_paths.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*  The verdict on a directory's stat: EVR_OK, or EVR_ERR_CONFIG with the
    path, the problem and the fix in err.  for_socket: the directory of an
    ipc:// socket, where one of root's is trusted too (/run/evrun), and a
    sticky one (/tmp) as well: there no one removes or renames another's
    socket, and a socket someone else made is refused by its owner. */
static evr_rc_t
s_judge_dir(const char *path, const struct stat *st, bool for_socket, evr_err_t *err)
{
    uid_t me = geteuid();
    if (S_ISLNK(st->st_mode))
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: a symbolic link: evrun uses no state "
                           "directory through a link (someone else could point it anywhere); "
                           "remove it (rm %s) or give the real directory", path, path);
    if (!S_ISDIR(st->st_mode))
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: not a directory: remove it or give "
                           "another state directory", path);
    if (st->st_uid != me && !(for_socket && st->st_uid == 0))
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: owned by uid %u, not by you (uid %u): "
                           "evrun trusts no state directory another user owns; use one of "
                           "yours (--state-dir, EVRUN_STATE_DIR), or if it is yours: chown -R "
                           "%u %s", path, (unsigned) st->st_uid, (unsigned) me, (unsigned) me,
                           path);
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(for_socket && (st->st_mode & S_ISVTX)))
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: writable by %s (mode %04o): others could "
                           "plant links and sockets there; fix: chmod go-w %s", path,
                           (st->st_mode & S_IWOTH) ? "others" : "its group",
                           (unsigned) (st->st_mode & 07777), path);
    return EVR_OK;
}

/*  mkdir -p with mode 0700 for every directory it makes. */
static evr_rc_t
s_make(const char *path, evr_err_t *err)
{
    char *p = evr_strdup(path);
    evr_rc_t rc = EVR_OK;
    size_t n = strlen(p);
    for (size_t i = 1; i <= n && !rc; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            rc = evr_err_set(err, EVR_ERR_IO, "cannot make the state directory %s: mkdir %s: "
                             "%s", path, p, strerror(errno));
        p[i] = c;
    }
    free(p);
    return rc;
}

evr_rc_t
evr_paths_dir(const char *path, bool make, evr_err_t *err)
{
    if (!path || !*path)
        return evr_err_set(err, EVR_ERR_CONFIG, "no state directory given");
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return evr_err_set(err, EVR_ERR_IO, "%s: %s", path, strerror(errno));
        if (!make)
            return evr_err_set(err, EVR_ERR_NOTFOUND, "%s: no such directory", path);
        evr_rc_t rc = s_make(path, err);
        if (rc)
            return rc;
        if (lstat(path, &st) != 0)
            return evr_err_set(err, EVR_ERR_IO, "%s: %s", path, strerror(errno));
    }
    return s_judge_dir(path, &st, false, err);
}

int
evr_paths_open(const char *path, int flags, evr_err_t *err)
{
    int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            evr_err_set(err, EVR_ERR_CONFIG, "%s: a symbolic link where evrun keeps a file "
                        "of its own: evrun writes through no link; remove it (rm %s)", path,
                        path);
        else
            evr_err_set(err, EVR_ERR_IO, "%s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    struct stat st;
    const char *bad = NULL;
    if (fstat(fd, &st) != 0)
        bad = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        bad = "not a regular file";
    else if (st.st_uid != geteuid())
        bad = "owned by another user";
    else if (st.st_nlink != 1)
        bad = "a file with more than one hard link (it may be someone else's file)";
    if (bad) {
        evr_err_set(err, EVR_ERR_CONFIG, "%s: %s: evrun uses only its own files there; remove "
                    "it (rm %s)", path, bad, path);
        close(fd);
        errno = EPERM;
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

evr_rc_t
evr_paths_write_pid(const char *path, long pid, evr_err_t *err)
{
    char *tmp = evr_asprintf("%s.new", path);
    evr_rc_t rc = EVR_OK;
    unlink(tmp);    /* a leftover of a write that died, or a planted link: never followed */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", pid);
    if (fd < 0 || write(fd, buf, (size_t) n) != n || close(fd) != 0 || rename(tmp, path) != 0) {
        rc = evr_err_set(err, EVR_ERR_IO, "cannot write the pid file %s: %s", path,
                         strerror(errno));
        if (fd >= 0)
            unlink(tmp);
    }
    free(tmp);
    return rc;
}

evr_rc_t
evr_paths_socket(const char *path, evr_err_t *err)
{
    char *dir = evr_strdup(path);
    char *slash = strrchr(dir, '/');
    evr_rc_t rc = EVR_OK;
    struct stat st;
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        strcpy(dir, ".");
    if (lstat(dir, &st) == 0) {
        rc = s_judge_dir(dir, &st, true, err);
        /* whoever can write in its parent can rename the directory away */
        char *up = evr_strdup(dir);
        char *cut = strrchr(up, '/');
        if (cut)
            *(cut == up ? cut + 1 : cut) = '\0';
        if (!rc && cut && strcmp(up, dir) != 0 && stat(up, &st) == 0 && S_ISDIR(st.st_mode))
            rc = s_judge_dir(up, &st, true, err);
        free(up);
    }
    if (!rc && lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            rc = evr_err_set(err, EVR_ERR_CONFIG, "%s: %s, not a socket: remove it (rm %s)",
                             path, S_ISLNK(st.st_mode) ? "a symbolic link" : "a file", path);
        else if (st.st_uid != geteuid() && st.st_uid != 0)
            rc = evr_err_set(err, EVR_ERR_CONFIG, "%s: a socket of uid %u, not yours (uid "
                             "%u): evrun talks to no other user's socket there; remove it "
                             "(rm %s)", path, (unsigned) st.st_uid, (unsigned) geteuid(), path);
    }
    free(dir);
    return rc;
}
