/*  evr_unit.c: a host process unit's directory (see evr_unit.h).

    Every file that a reader may see half-made is written under a
    temporary name and renamed; the unit itself is made in a directory
    .new-NAME-PID-N and renamed to NAME, so the name is taken (or not)
    atomically and a runner killed while making it leaves no partial unit
    (the executor sweeps the .new-* and .rm-* leftovers at its start).
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evr_unit.h"

#include "evr_hook_pg.h"

bool
evr_unit_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= 200 && name[0] != '.' && !strchr(name, '/');
}

evr_rc_t
evr_unit_write(int dirfd, const char *dir, const char *name, const char *data, size_t len,
               evr_err_t *err)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return evr_err_set(err, EVR_ERR_IO, "creating %s/%s: %s", dir, tmp, strerror(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlinkat(dirfd, tmp, 0);
            char *path = evr_asprintf("%s/%s", dir, tmp);
            evr_rc_t rc = evr_err_write(err, path, e);
            free(path);
            return rc;
        }
        done += (size_t) w;
    }
    close(fd);
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        int e = errno;
        unlinkat(dirfd, tmp, 0);
        return evr_err_set(err, EVR_ERR_IO, "renaming %s/%s to %s: %s", dir, tmp, name,
                           strerror(e));
    }
    return EVR_OK;
}

evr_rc_t
evr_unit_read(int dirfd, const char *dir, const char *name, size_t max, char **out, size_t *len,
              evr_err_t *err)
{
    *out = NULL;
    *len = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT
                   ? EVR_ERR_NOTFOUND
                   : evr_err_set(err, EVR_ERR_IO, "opening %s/%s: %s", dir, name, strerror(errno));
    size_t cap = 256, n = 0;
    char *buf = evr_malloc(cap + 1);
    evr_rc_t rc = EVR_OK;
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                rc = evr_err_set(err, EVR_ERR_LIMIT, "%s/%s: larger than %zu bytes", dir, name,
                                 max);
                break;
            }
            cap *= 2;
            buf = evr_realloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = evr_err_set(err, EVR_ERR_IO, "reading %s/%s: %s", dir, name, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        n += (size_t) r;
    }
    close(fd);
    if (!rc && n > max)
        rc = evr_err_set(err, EVR_ERR_LIMIT, "%s/%s: larger than %zu bytes", dir, name, max);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return EVR_OK;
}

/*  Writes a file of the unit being made (no rename needed: nobody sees
    the directory before it is renamed). */
static evr_rc_t
s_put(int dfd, const char *dir, const char *name, const char *data, size_t len, evr_err_t *err)
{
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return evr_err_set(err, EVR_ERR_IO, "creating %s/%s: %s", dir, name, strerror(errno));
    size_t done = 0;
    int e = 0;
    while (done < len && !e) {
        ssize_t w = write(fd, data + done, len - done);
        if (w > 0)
            done += (size_t) w;
        else if (w < 0 && errno != EINTR)
            e = errno;
        else if (w == 0)
            e = EIO;
    }
    close(fd);
    if (!e)
        return EVR_OK;
    char *path = evr_asprintf("%s/%s", dir, name);
    evr_rc_t rc = evr_err_write(err, path, e);
    free(path);
    return rc;
}

static evr_rc_t
s_fill(int dfd, const char *tmp, const char *script, const char *const *env, size_t n,
       const char *workdir, const evr_unit_limits_t *limits, evr_err_t *err)
{
    size_t elen = 0;
    for (size_t i = 0; i < n; i++)
        elen += strlen(env[i]) + 1;
    char *eb = evr_malloc(elen + 1), *p = eb;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(env[i]) + 1;
        memcpy(p, env[i], l);
        p += l;
    }
    evr_rc_t rc = s_put(dfd, tmp, "script", script, strlen(script), err);
    if (!rc)
        rc = s_put(dfd, tmp, "env", eb, elen, err);
    free(eb);
    if (!rc)
        rc = s_put(dfd, tmp, "workdir", workdir, strlen(workdir), err);
    if (!rc && limits && (limits->nofile || limits->nproc || limits->cpu_s || limits->memory)) {
        char lb[256];
        int ll = snprintf(lb, sizeof lb, "nofile %" PRIu64 "\nnproc %" PRIu64 "\ncpu_s %" PRIu64
                          "\nmemory %" PRIu64 "\n", limits->nofile, limits->nproc,
                          limits->cpu_s, limits->memory);
        rc = s_put(dfd, tmp, "limits", lb, (size_t) ll, err);
    }
    static const char *const empty[] = { "stdout", "stderr", "lock" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(empty) && !rc; i++)
        rc = s_put(dfd, tmp, empty[i], "", 0, err);
    return rc;
}

evr_rc_t
evr_unit_make(const char *units, const char *name, const char *script, const char *const *env,
              size_t n, const char *workdir, const evr_unit_limits_t *limits, bool *exists,
              evr_err_t *err)
{
    static unsigned s_seq;
    *exists = false;
    char *final = evr_asprintf("%s/%s", units, name);
    char *tmp = evr_asprintf("%s/.new-%s-%ld-%u", units, name, (long) getpid(), ++s_seq);
    evr_rc_t rc = EVR_OK;
    int dfd = -1;
    if (access(final, F_OK) == 0) {
        *exists = true;
        goto out;
    }
    if (mkdir(tmp, 0700) != 0) {
        rc = evr_err_set(err, EVR_ERR_IO, "creating %s: %s", tmp, strerror(errno));
        goto out;
    }
    dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = evr_err_set(err, EVR_ERR_IO, "opening %s: %s", tmp, strerror(errno));
        goto out;
    }
    rc = s_fill(dfd, tmp, script, env, n, workdir, limits, err);
    if (!rc && rename(tmp, final) != 0) {
        if (errno == EEXIST || errno == ENOTEMPTY)
            *exists = true;
        else
            rc = evr_err_set(err, EVR_ERR_IO, "renaming %s to %s: %s", tmp, final,
                             strerror(errno));
    }
    if (rc || *exists) {
        evr_err_t ignored;
        evr_unit_rmtree(tmp, &ignored);
    }
out:
    if (dfd >= 0)
        close(dfd);
    free(final);
    free(tmp);
    return rc;
}

/*  Whether someone holds the write lock on dir's lock file (the
    supervisor); -1 with err when it cannot be told.  Read-only: testing a
    lock needs no write access, and closing a file opened for writing
    would be an IN_CLOSE_WRITE in the directory the executor watches,
    waking every operation on the unit to probe it again, and again.  (The
    supervisor's own close of its lock, read-write, when it ends still
    wakes them.) */
static int
s_locked(int dfd, const char *dir, evr_err_t *err)
{
    int fd = openat(dfd, "lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        evr_err_set(err, EVR_ERR_IO, "opening %s/lock: %s", dir, strerror(errno));
        return -1;
    }
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    int r = fcntl(fd, F_OFD_GETLK, &fl);
    int e = errno;
    close(fd);
    if (r != 0) {
        evr_err_set(err, EVR_ERR_IO, "testing the lock of %s/lock: %s", dir, strerror(e));
        return -1;
    }
    return fl.l_type != F_UNLCK;
}

static evr_rc_t
s_read_exit(int dfd, const char *dir, evr_unit_info_t *info, bool *found, evr_err_t *err)
{
    char *text;
    size_t len;
    evr_rc_t rc = evr_unit_read(dfd, dir, "exit", 4096, &text, &len, err);
    *found = rc != EVR_ERR_NOTFOUND;
    if (rc == EVR_ERR_NOTFOUND)
        return EVR_OK;
    if (rc)
        return rc;
    long long code;
    unsigned long long out, errb;
    if (sscanf(text, "exit %lld\nstdout %llu\nstderr %llu\n", &code, &out, &errb) != 3)
        rc = evr_err_set(err, EVR_ERR_IO, "%s/exit: damaged (expected \"exit CODE\\nstdout N"
                         "\\nstderr N\")", dir);
    else {
        info->exit_code = code;
        info->size[0] = out;
        info->size[1] = errb;
        info->full = strstr(text, "\nfull\n") != NULL;
        const char *sig = strstr(text, "\nsignal ");
        int n;
        if (sig && sscanf(sig, "\nsignal %d\n", &n) == 1 && n > 0 && n < 128)
            info->signal = n;
        /* the end's time as the supervisor read its clock; the file's
           mtime (a supervisor of an earlier version) is the kernel's
           coarse clock, up to a tick before it */
        const char *at = strstr(text, "\nat ");
        unsigned long long ns;
        struct stat sb;
        if (at && sscanf(at, "\nat %llu\n", &ns) == 1 && ns)
            info->finished_at = ns;
        else if (fstatat(dfd, "exit", &sb, AT_SYMLINK_NOFOLLOW) == 0)
            info->finished_at = (uint64_t) sb.st_mtim.tv_sec * 1000000000ull
                                + (uint64_t) sb.st_mtim.tv_nsec;
    }
    free(text);
    return rc;
}

/*  The step's pid and start from `pid`; *seen when the file is there.  A
    file that cannot be read or parsed leaves them 0 (not known) and is no
    error: the lock and `exit` still say what the unit is, and a unit
    found running must not be taken for an error (its workspace removed
    under it). */
static void
s_read_pid(int dfd, const char *dir, evr_unit_info_t *info, bool *seen)
{
    char *text;
    size_t len;
    evr_err_t err;
    evr_rc_t rc = evr_unit_read(dfd, dir, "pid", 256, &text, &len, &err);
    *seen = rc != EVR_ERR_NOTFOUND;
    if (rc)
        return;
    long pid;
    unsigned long long at;
    if (sscanf(text, "%ld %llu", &pid, &at) == 2 && pid > 1) {
        info->pid = (pid_t) pid;
        info->started_at = at;
    }
    free(text);
}

evr_rc_t
evr_unit_probe(const char *dir, evr_unit_info_t *info, evr_err_t *err)
{
    memset(info, 0, sizeof *info);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT)
            return EVR_OK;   /* ABSENT */
        return evr_err_set(err, EVR_ERR_IO, "opening %s: %s", dir, strerror(errno));
    }
    /* In the order the supervisor makes them, backwards: `pid`, then the
       lock, then `exit`.  A supervisor writes `pid` holding the lock and
       `exit` before the lock goes, so a `pid` seen, then the lock free,
       then no `exit` is a supervisor that died; any other order takes a
       supervisor passing through its start or end for lost. */
    bool found = false, seen = false;
    int alive = 0;
    evr_rc_t rc = EVR_OK;
    s_read_pid(dfd, dir, info, &seen);
    if ((alive = s_locked(dfd, dir, err)) < 0)
        rc = EVR_ERR_IO;
    if (!rc)
        rc = s_read_exit(dfd, dir, info, &found, err);
    if (rc)
        goto out;
    info->ended = faccessat(dfd, "ended", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
    if (found)
        info->state = EVR_EXEC_EXITED;
    else if (alive)
        info->state = faccessat(dfd, "paused", F_OK, AT_SYMLINK_NOFOLLOW) == 0
                          ? EVR_EXEC_PAUSED
                          : EVR_EXEC_RUNNING;
    else if (seen) {
        info->state = EVR_EXEC_EXITED;
        info->lost = true;
        info->exit_code = -1;
    }
    else
        info->state = EVR_EXEC_CREATED;
out:
    close(dfd);
    return rc;
}

evr_rc_t
evr_unit_signal(const char *dir, int sig, bool *sent, evr_err_t *err)
{
    *sent = false;
    evr_unit_info_t info;
    evr_rc_t rc = evr_unit_probe(dir, &info, err);
    if (rc || !info.pid || info.ended
        || (info.state != EVR_EXEC_RUNNING && info.state != EVR_EXEC_PAUSED))
        return rc;
    /* the supervisor is alive and has not reaped the step (it makes
       `ended` first): the group id is the step's, not a reused one */
    if (kill(-info.pid, sig) == 0) {
        *sent = true;
        return EVR_OK;
    }
    if (errno == ESRCH)
        return EVR_OK;
    return evr_err_set(err, EVR_ERR_IO, "kill(-%ld, %s) for %s: %s", (long) info.pid,
                       strsignal(sig), dir, strerror(errno));
}

/*  The wall time of the boot (/proc/stat's btime, s); 0: not known. */
static unsigned long long
s_btime(void)
{
    FILE *fp = fopen("/proc/stat", "re");
    unsigned long long bt = 0;
    char line[256];
    while (fp && fgets(line, sizeof line, fp))
        if (sscanf(line, "btime %llu", &bt) == 1)
            break;
    if (fp)
        fclose(fp);
    return bt;
}

evr_rc_t
evr_unit_kill_lost(const char *dir, const evr_unit_info_t *info, bool *killed, evr_err_t *err)
{
    *killed = false;
    if (!info->lost || info->pid <= 1)
        return EVR_OK;
    /* its group is the step's when its leader lives with the step's start
       time (2 s either way: the wall clock's start against the ticks'),
       or, the leader gone, when processes of the step's session (the step
       leads its own) started since are in it (evr_hook_pg_ours) */
    long long pid = info->pid;
    unsigned long long bt = s_btime(), started = info->started_at / 1000000000u;
    long hz = sysconf(_SC_CLK_TCK);
    if (!bt || hz <= 0 || !started || started < bt)
        return EVR_OK;  /* nothing to tell the step's group from another by */
    unsigned long long since = started - bt, tick = (unsigned long long) hz;
    if (!evr_hook_pg_ours(pid, since > 2 ? (since - 2) * tick : 0, (since + 3) * tick - 1, pid))
        return EVR_OK;
    if (kill((pid_t) -pid, SIGKILL) == 0)
        *killed = true;
    else if (errno != ESRCH)
        return evr_err_set(err, EVR_ERR_IO, "kill(-%lld, SIGKILL) for %s: %s", pid, dir,
                           strerror(errno));
    return EVR_OK;
}

/*  A running or lost unit's step may still run: its group is named, to be
    checked first (by the time an operator reads this, or once the
    supervisor is gone, the id may have been reused), with when it
    started, as ps's lstart shows it. */
void
evr_unit_remove_hint(const char *dir, char *buf, size_t size)
{
    evr_unit_info_t info;
    evr_err_t err;
    if (evr_unit_probe(dir, &info, &err) == EVR_OK && info.pid
        && (info.state == EVR_EXEC_RUNNING || info.state == EVR_EXEC_PAUSED || info.lost)) {
        char when[64] = "";
        time_t t = (time_t) (info.started_at / 1000000000u);
        struct tm tm;
        if (info.started_at && localtime_r(&t, &tm))
            strftime(when, sizeof when, " (started %a %b %e %H:%M:%S %Y)", &tm);
        long pid = (long) info.pid;
        snprintf(buf, size, "check ps -o pid,pgid,lstart,args -g %ld: if still the step's "
                 "group%s, kill -KILL -- -%ld; then rm -rf %s", pid, when, pid, dir);
    }
    else
        snprintf(buf, size, "rm -rf %s", dir);
}

bool
evr_unit_limits_parse(const char *text, evr_unit_limits_t *l)
{
    memset(l, 0, sizeof *l);
    const char *p = text;
    while (*p) {
        char key[16];
        unsigned long long v;
        int used = 0;
        if (sscanf(p, "%15s %llu%n", key, &v, &used) != 2)
            return false;
        if (!strcmp(key, "nofile"))
            l->nofile = v;
        else if (!strcmp(key, "nproc"))
            l->nproc = v;
        else if (!strcmp(key, "cpu_s"))
            l->cpu_s = v;
        else if (!strcmp(key, "memory"))
            l->memory = v;
        else
            return false;
        p += used;
        while (*p == '\n' || *p == ' ')
            p++;
    }
    return true;
}

/*  Depth of directories rmtree goes into: deeper is refused. */
#define S_RM_DEPTH 4096
/*  Levels that keep their directory open while a subdirectory is
    removed; deeper ones let go of it and open it again through the
    subdirectory's "..", checked to be the same directory. */
#define S_RM_HELD 32
/*  Longest path a message names (a deep one is cut, its end kept). */
#define S_RM_SHOWN 400

static evr_rc_t
s_rm_err(evr_err_t *err, const char *path, int e)
{
    size_t n = strlen(path);
    return evr_err_set(err, EVR_ERR_IO, "removing %s%s: %s", n > S_RM_SHOWN ? "..." : "",
                       n > S_RM_SHOWN ? path + n - S_RM_SHOWN : path, strerror(e));
}

/*  Opens the directory name in pfd for listing and removing its entries:
    never through a link (O_NOFOLLOW), made 0700 first when it is not
    (a step's read-only directory) through an O_PATH handle, which
    names the directory itself and no link.  -1 with errno. */
static int
s_rm_open(int pfd, const char *name)
{
    int fl = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(pfd, name, fl);
    if (fd < 0 && errno == EACCES) {
        int p = openat(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (p < 0)
            return -1;
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", p);
        int r = chmod(proc, 0700);
        close(p);
        if (r != 0) {
            errno = EACCES;
            return -1;
        }
        fd = openat(pfd, name, fl);
    }
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700)
        fchmod(fd, 0700);   /* failing is told by the unlinks in it */
    return fd;
}

/*  The names in the directory fd (".", ".." left out), a new array of
    *n new strings; NULL with errno when it cannot be read. */
static char **
s_rm_names(int fd, size_t *n)
{
    *n = 0;
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        int e = errno;
        if (dup_fd >= 0)
            close(dup_fd);
        errno = e;
        return NULL;
    }
    char **names = evr_malloc(sizeof *names);
    size_t cap = 1;
    struct dirent *en;
    while ((en = readdir(d))) {
        if (!strcmp(en->d_name, ".") || !strcmp(en->d_name, ".."))
            continue;
        if (*n == cap)
            names = evr_realloc(names, (cap *= 2) * sizeof *names);
        names[(*n)++] = evr_strdup(en->d_name);
    }
    closedir(d);
    return names;
}

static evr_rc_t s_rm_at(int *pfd, const struct stat *pst, const char *name, const char *path,
                        int depth, evr_err_t *err);

/*  Removes what the directory fd (path, itself st) holds.  Deep (depth
    past S_RM_HELD) the parent *pfd is closed meanwhile and opened again
    through fd's "..": the same directory (device, inode) as pst, or an
    error (it was moved: nothing is removed outside). */
static evr_rc_t
s_rm_contents(int *pfd, const struct stat *pst, int fd, const struct stat *st, const char *path,
              int depth, evr_err_t *err)
{
    size_t n;
    char **names = s_rm_names(fd, &n);
    evr_rc_t rc = names ? EVR_OK : s_rm_err(err, path, errno);
    if (depth >= S_RM_HELD && *pfd >= 0) {
        close(*pfd);
        *pfd = -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!rc) {
            char *sub = evr_asprintf("%s/%s", path, names[i]);
            rc = s_rm_at(&fd, st, names[i], sub, depth + 1, err);
            free(sub);
        }
        free(names[i]);
    }
    free(names);
    if (*pfd < 0 && fd >= 0) {
        struct stat up;
        *pfd = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (*pfd < 0 || fstat(*pfd, &up) != 0 || up.st_dev != pst->st_dev
            || up.st_ino != pst->st_ino) {
            if (*pfd >= 0)
                close(*pfd);
            *pfd = -1;
            if (!rc)
                rc = evr_err_set(err, EVR_ERR_IO, "removing %.*s: it was moved while its "
                                 "contents were removed", S_RM_SHOWN, path);
        }
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/*  Removes the entry name of the directory *pfd (itself pst; path names
    it in messages): a directory with what it holds, anything else (a
    link too) unlinked.  *pfd may be closed and opened again (deep), or
    left -1 with an error. */
static evr_rc_t
s_rm_at(int *pfd, const struct stat *pst, const char *name, const char *path, int depth,
        evr_err_t *err)
{
    struct stat st;
    if (fstatat(*pfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? EVR_OK : s_rm_err(err, path, errno);
    int fd = -1;
    if (S_ISDIR(st.st_mode)) {
        if (depth > S_RM_DEPTH)
            return evr_err_set(err, EVR_ERR_IO, "removing %.*s: more than %d directories deep",
                               S_RM_SHOWN, path, S_RM_DEPTH);
        fd = s_rm_open(*pfd, name);
        if (fd < 0 && errno != ENOTDIR && errno != ELOOP)
            return errno == ENOENT ? EVR_OK : s_rm_err(err, path, errno);
        /* ENOTDIR, ELOOP: no longer a directory (a link swapped in): unlinked below */
    }
    if (fd < 0) {
        if (unlinkat(*pfd, name, 0) != 0 && errno != ENOENT)
            return s_rm_err(err, path, errno);
        return EVR_OK;
    }
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return s_rm_err(err, path, e);
    }
    evr_rc_t rc = s_rm_contents(pfd, pst, fd, &st, path, depth, err);
    if (!rc && unlinkat(*pfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        rc = s_rm_err(err, path, errno);
    return rc;
}

evr_rc_t
evr_unit_rmtree(const char *path, evr_err_t *err)
{
    char *parent = evr_strdup(path);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    const char *name = slash ? slash + 1 : parent;
    const char *pdir = slash == parent ? "/" : slash ? parent : ".";
    if (slash)
        *slash = '\0';
    evr_rc_t rc = EVR_OK;
    struct stat pst;
    int pfd = -1;
    if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
        rc = evr_err_set(err, EVR_ERR_IO, "removing %s: not a name to remove", path);
    else if ((pfd = open(pdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fstat(pfd, &pst) != 0)
        rc = errno == ENOENT ? EVR_OK : s_rm_err(err, path, errno);
    else
        rc = s_rm_at(&pfd, &pst, name, path, 0, err);
    if (pfd >= 0)
        close(pfd);
    free(parent);
    return rc;
}

/*  Leftovers of a runner killed while it made or removed a unit or a
    workspace (.new-*, .rm-*): moved aside unless a supervisor still runs
    in one (a removal under way: the next start sweeps it). */
void
evr_unit_sweep_aside(const char *dir, char ***paths, size_t *n)
{
    /* the names first, then the renames: a name renamed into dir while
       readdir walks it may be listed again */
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t nnames = 0, ncap = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, ".new-", 5) && strncmp(e->d_name, ".rm-", 4))
            continue;
        if (nnames == ncap)
            names = evr_realloc(names, (ncap = ncap ? 2 * ncap : 8) * sizeof *names);
        names[nnames++] = evr_strdup(e->d_name);
    }
    if (d)
        closedir(d);
    size_t cap = *n;
    for (size_t k = 0; k < nnames; k++) {
        const char *name = names[k];
        char *p = evr_asprintf("%s/%s", dir, name);
        evr_unit_info_t info;
        evr_err_t err;
        /* a workspace has no lock: it probes as absent or damaged, never running */
        if (evr_unit_probe(p, &info, &err) == EVR_OK
            && (info.state == EVR_EXEC_RUNNING || info.state == EVR_EXEC_PAUSED)) {
            free(p);
            continue;
        }
        /* a name of its own, which no name this runner makes can take:
           an empty directory made for it, then replaced by it */
        if (strncmp(name, ".rm-sweep-", 10) != 0) {
            char *aside = evr_asprintf("%s/.rm-sweep-XXXXXX", dir);
            bool made = mkdtemp(aside) != NULL;
            if (made && rename(p, aside) == 0) {
                free(p);
                p = aside;
            }
            else {   /* removed under its name (not a directory, or no room) */
                if (made)
                    rmdir(aside);
                free(aside);
            }
        }
        if (*n == cap)
            *paths = evr_realloc(*paths, (cap = cap ? 2 * cap : 8) * sizeof **paths);
        (*paths)[(*n)++] = p;
    }
    for (size_t k = 0; k < nnames; k++)
        free(names[k]);
    free(names);
}
