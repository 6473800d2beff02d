/*  evr_paths.c: private state directories and files; see evr_paths.h.

    The checks use lstat/fstat on what is actually opened or used, never
    a name looked up twice where it matters: a pid or log file is opened
    with O_NOFOLLOW and then checked through its descriptor.  Above a
    state directory or a socket, every directory a name is looked up in
    (following symbolic links as the kernel would) must be the user's or
    root's and, unless sticky, writable by no one else: otherwise its
    owner or writers could rename what evrun checked away and put their
    own in its place.
*/
#include "evr_paths.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_LINKS 40      /* symbolic links followed above a path, as Linux's ELOOP */

/*  The verdict on a state directory's stat: EVR_OK, or EVR_ERR_CONFIG
    with the path, the problem and the fix in err. */
static evr_rc_t
s_judge_dir(const char *path, const struct stat *st, evr_err_t *err)
{
    uid_t me = geteuid();
    if (S_ISLNK(st->st_mode))
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: a symbolic link: evrun uses no state "
                           "directory through a link (someone else could point it anywhere); "
                           "remove it (rm %s) or give the real directory", path, path);
    if (!S_ISDIR(st->st_mode))
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: not a directory: remove it or give "
                           "another directory", path);
    if (st->st_uid != me)
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: owned by uid %u, not by you (uid %u): "
                           "evrun trusts no state directory another user owns; use one of "
                           "yours (--state-dir, EVRUN_STATE_DIR), or if it is yours: chown -R "
                           "%u %s", path, (unsigned) st->st_uid, (unsigned) me, (unsigned) me,
                           path);
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: writable by %s (mode %04o): others could "
                           "plant links and sockets there; fix: chmod go-w %s, then inspect "
                           "what is in it (links or sockets planted while it was open stay "
                           "after the chmod: remove what you did not put there, or all of "
                           "it: rm -r %s)", path, (st->st_mode & S_IWOTH) ? "others" : "its group",
                           (unsigned) (st->st_mode & 07777), path, path);
    return EVR_OK;
}

/*  The verdict on a directory above what evrun checks (what): the user's
    or root's, and writable by no one else unless sticky (there only an
    entry's owner renames it). */
static evr_rc_t
s_judge_up(const char *dir, const struct stat *st, const char *what, evr_err_t *err)
{
    uid_t me = geteuid();
    if (st->st_uid != me && st->st_uid != 0)
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: owned by uid %u, neither you (uid %u) "
                           "nor root: its owner could rename %s (which is under it) away and "
                           "put another in its place; evrun keeps its state and sockets only "
                           "under directories of yours or root's: use another path", dir,
                           (unsigned) st->st_uid, (unsigned) me, what);
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX))
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: writable by %s (mode %04o) and not "
                           "sticky: anyone who can write there could rename %s (which is under "
                           "it) away and put another in its place; fix: chmod go-w %s (or "
                           "chmod +t %s), or use another path", dir,
                           (st->st_mode & S_IWOTH) ? "others" : "its group",
                           (unsigned) (st->st_mode & 07777), what, dir, dir);
    return EVR_OK;
}

/*  The verdict on an ipc:// socket's own directory: the user's or root's,
    writable by no one else, sticky or not: libzmq reconnects to whatever
    socket has the name later, and in a shared directory anyone can take
    the name while no socket holds it. */
static evr_rc_t
s_judge_sock_dir(const char *dir, const struct stat *st, const char *sock, evr_err_t *err)
{
    uid_t me = geteuid();
    if (st->st_uid != me && st->st_uid != 0)
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: the directory of the socket %s is owned "
                           "by uid %u, neither you (uid %u) nor root: a socket's directory must "
                           "be yours or root's and writable by no one else; put the socket in "
                           "such a directory (as STATE/bus)", dir, sock, (unsigned) st->st_uid,
                           (unsigned) me);
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return evr_err_set(err, EVR_ERR_CONFIG, "%s: writable by %s (mode %04o): the directory "
                           "of the socket %s must be yours or root's and writable by no one "
                           "else (even sticky: anyone could take the socket's name while it is "
                           "free, and evrun would reconnect to theirs); fix: chmod go-w %s, or "
                           "put the socket in a private directory (as STATE/bus)", dir,
                           (st->st_mode & S_IWOTH) ? "others" : "its group",
                           (unsigned) (st->st_mode & 07777), sock, dir);
    return EVR_OK;
}

/*  s_judge_up on dir as it is now. */
static evr_rc_t
s_judge_up_path(const char *dir, const char *what, evr_err_t *err)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return evr_err_set(err, EVR_ERR_IO, "%s: %s", dir, strerror(errno));
    return s_judge_up(dir, &st, what, err);
}

/*  Looks path up as the kernel would, from "/" (a relative path from the
    working directory), following symbolic links, and judges each
    directory a name is looked up in (s_judge_up), but the one the last
    name is in when !judge_last.  The last name is not looked up (the
    caller judges it).  Stops early, with EVR_OK, at a missing component
    or one that is not a directory (the caller's mkdir, lstat or bind says
    so).  *last (caller frees): the directory the last name is in when
    the walk got there, else NULL. */
static evr_rc_t
s_walk(const char *path, bool judge_last, char **last, evr_err_t *err)
{
    *last = NULL;
    char *rest, *res = evr_strdup("/");
    if (path[0] == '/')
        rest = evr_strdup(path);
    else {
        char *cwd = getcwd(NULL, 0);
        if (!cwd) {
            free(res);
            return evr_err_set(err, EVR_ERR_IO, "%s: getcwd: %s", path, strerror(errno));
        }
        rest = evr_asprintf("%s/%s", cwd, path);
        free(cwd);
    }
    evr_rc_t rc = EVR_OK;
    char *p = rest;
    int links = 0;
    bool judged = false;   /* res passed s_judge_up */
    while (!rc) {
        p += strspn(p, "/");
        size_t len = strcspn(p, "/");
        bool final = p[len + strspn(p + len, "/")] == '\0';
        if (len == 1 && p[0] == '.') {
            p += len;
            continue;
        }
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            char *cut = strrchr(res, '/');   /* res is physical: .. is its dirname */
            *(cut == res ? cut + 1 : cut) = '\0';
            judged = false;
            p += len;
            continue;
        }
        if (!len || final) {
            if (len && judge_last && !judged)
                rc = s_judge_up_path(res, path, err);
            *last = evr_strdup(res);
            break;
        }
        if (!judged && (rc = s_judge_up_path(res, path, err)) != EVR_OK)
            break;
        judged = true;
        char *next = evr_asprintf("%s%s%.*s", res, strcmp(res, "/") ? "/" : "", (int) len, p);
        struct stat st;
        if (lstat(next, &st) != 0 || !(S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode))) {
            free(next);
            break;
        }
        if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n = readlink(next, target, sizeof target - 1);
            if (n <= 0 || ++links > S_MAX_LINKS)
                rc = evr_err_set(err, EVR_ERR_CONFIG, "%s: cannot follow the link %s: %s", path,
                                 next, n <= 0 ? strerror(errno) : "too many links");
            else {
                target[n] = '\0';
                char *more = evr_asprintf("%s/%s", target, p + len);
                free(rest);
                p = rest = more;
                if (target[0] == '/') {
                    strcpy(res, "/");
                    judged = false;
                }
            }
            free(next);
            continue;
        }
        free(res);
        res = next;
        judged = false;
        p += len;
    }
    free(rest);
    free(res);
    if (rc) {
        free(*last);
        *last = NULL;
    }
    return rc;
}

/*  mkdir -p with mode 0700 for every directory it makes; called after
    s_walk has judged every directory above path that exists. */
static evr_rc_t
s_make(const char *path, evr_err_t *err)
{
    evr_rc_t rc = evr_mkdirs_mode(path, 0700, err);
    if (rc)
        evr_err_set(err, rc, "cannot make the state directory %s: %s", path, err->msg);
    return rc;
}

evr_rc_t
evr_paths_dir(const char *path, bool make, evr_err_t *err)
{
    if (!path || !*path)
        return evr_err_set(err, EVR_ERR_CONFIG, "no state directory given");
    char *p = evr_strdup(path), *last = NULL;
    for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--)
        p[n - 1] = '\0';   /* "link/" would be the directory the link points to */
    struct stat st;
    evr_rc_t rc = s_walk(p, true, &last, err);
    if (rc)
        goto out;
    if (lstat(p, &st) != 0) {
        if (errno != ENOENT)
            rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", p, strerror(errno));
        else if (!make)
            rc = evr_err_set(err, EVR_ERR_NOTFOUND, "%s: no such directory", p);
        else if (!(rc = s_make(p, err)) && lstat(p, &st) != 0)
            rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", p, strerror(errno));
        if (rc)
            goto out;
    }
    rc = s_judge_dir(p, &st, err);
out:
    free(last);
    free(p);
    return rc;
}

/*  The subdirectories evr_paths_state knows, by bit. */
static const struct {
    unsigned bit;
    const char *name;
} s_subs[] = {
    { EVR_PATHS_BROKER, "broker" }, { EVR_PATHS_BUS, "bus" },   { EVR_PATHS_RUN, "run" },
    { EVR_PATHS_LOGS, "logs" },     { EVR_PATHS_RUNNERS, "runners" },
    { EVR_PATHS_PODMAN, "podman" }, { EVR_PATHS_CURVE, "curve" },
};

evr_rc_t
evr_paths_state(const char *state, unsigned subs, uint32_t nrunners, bool make, evr_err_t *err)
{
    evr_rc_t rc = evr_paths_dir(state, make, err);
    size_t nsubs = EVR_ARRAY_LEN(s_subs);
    if (!(subs & EVR_PATHS_RUNNERS))
        nrunners = 0;
    for (size_t i = 0; i < nsubs + nrunners && (!rc || rc == EVR_ERR_NOTFOUND); i++) {
        if (i < nsubs && !(subs & s_subs[i].bit))
            continue;
        bool curve = i < nsubs && s_subs[i].bit == EVR_PATHS_CURVE;
        char *d = i < nsubs ? evr_asprintf("%s/%s", state, s_subs[i].name)
                            : evr_asprintf("%s/runners/%zu", state, i - nsubs + 1);
        rc = evr_paths_dir(d, make && !curve, err);
        free(d);
    }
    return rc == EVR_ERR_NOTFOUND ? EVR_OK : rc;
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
    unlink(tmp);    /* a leftover of a write that died, or a planted link: never followed */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int e = errno;
    if (fd >= 0) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%ld\n", pid);
        ssize_t put = write(fd, buf, (size_t) n);
        e = put < 0 ? errno : put != n ? ENOSPC : 0;   /* short: the disk is full */
        if (close(fd) != 0 && !e)
            e = errno;
        if (!e && rename(tmp, path) != 0)
            e = errno;
        if (e)
            unlink(tmp);
    }
    free(tmp);
    if (e)
        return evr_err_set(err, EVR_ERR_IO, "cannot write the pid file %s: %s", path,
                           strerror(e));
    return EVR_OK;
}

evr_rc_t
evr_paths_socket(const char *path, evr_err_t *err)
{
    char *dir = NULL;
    struct stat st;
    evr_rc_t rc = s_walk(path, false, &dir, err);
    if (!rc && dir && lstat(dir, &st) == 0)
        rc = s_judge_sock_dir(dir, &st, path, err);
    if (!rc && lstat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))    /* rm would not remove it, nor should it */
            rc = evr_err_set(err, EVR_ERR_CONFIG, "%s: a directory, not a socket: an ipc:// "
                             "endpoint names the socket itself (a broker's are "
                             "ipc://STATE/bus/clients, .../runners and .../events)", path);
        else if (!S_ISSOCK(st.st_mode))
            rc = evr_err_set(err, EVR_ERR_CONFIG, "%s: %s, not a socket: remove it (rm %s)",
                             path, S_ISLNK(st.st_mode)    ? "a symbolic link"
                                   : S_ISFIFO(st.st_mode) ? "a FIFO"
                                   : S_ISREG(st.st_mode)  ? "a file"
                                                          : "a device", path);
        else if (st.st_uid != geteuid() && st.st_uid != 0)
            rc = evr_err_set(err, EVR_ERR_CONFIG, "%s: a socket of uid %u, not yours (uid "
                             "%u): evrun talks to no other user's socket there; remove it "
                             "(rm %s)", path, (unsigned) st.st_uid, (unsigned) geteuid(), path);
    }
    free(dir);
    return rc;
}
