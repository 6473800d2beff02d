/*  evr_lock.c: the state directory's lock file; see evr_lock.h. */
#include "evr_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct evr_lock {
    int fd;
};

/*  The pid written in the file (0 when none is yet). */
static long
s_pid(int fd)
{
    char raw[32];
    ssize_t n = pread(fd, raw, sizeof raw - 1, 0);
    long pid = 0;
    if (n > 0) {
        raw[n] = '\0';
        char *end;
        pid = strtol(raw, &end, 10);
        if (end == raw || (*end && *end != '\n'))
            pid = 0;
    }
    return pid;
}

/*  The pid written in the file, as text ("unknown" when none is yet). */
static void
s_holder(int fd, char *buf, size_t size)
{
    long pid = s_pid(fd);
    if (pid > 0)
        snprintf(buf, size, "%ld", pid);
    else
        snprintf(buf, size, "unknown");
}

evr_rc_t
evr_lock_take(const char *path, const char *who, evr_lock_t **out, evr_err_t *err)
{
    *out = NULL;
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return evr_err_set(err, EVR_ERR_IO, "%s: cannot open the lock file: %s", path,
                           strerror(errno));
    int e = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
    /* its holder is gone (killed): what holds it is a child it forked that
       has not exec'd yet (the lock's fd is close-on-exec), for a moment */
    for (int i = 0; i < 200 && e == EWOULDBLOCK; i++) {
        long pid = s_pid(fd);
        if (pid <= 0 || pid > INT32_MAX || kill((pid_t) pid, 0) == 0 || errno != ESRCH)
            break;
        usleep(10000);
        e = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
    }
    if (e) {
        char pid[32];
        s_holder(fd, pid, sizeof pid);
        close(fd);
        if (e == EWOULDBLOCK)
            return evr_err_set(err, EVR_ERR_STATE, "%s: the state directory is in use by %s "
                               "pid %s: stop that one first, or give this one another "
                               "--state-dir", path, who, pid);
        return evr_err_set(err, EVR_ERR_IO, "%s: flock: %s", path, strerror(e));
    }
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%ld\n", (long) getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t) len, 0) != len) {
        e = errno;
        close(fd);
        return evr_err_set(err, EVR_ERR_IO, "%s: writing the pid: %s", path, strerror(e));
    }
    evr_lock_t *self = evr_calloc(1, sizeof *self);
    self->fd = fd;
    *out = self;
    return EVR_OK;
}

int
evr_lock_holder(const char *path, long *pid, evr_err_t *err)
{
    *pid = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) {
        evr_err_set(err, EVR_ERR_IO, "%s: cannot open the lock file: %s", path,
                    strerror(errno));
        return -1;
    }
    int held = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0)
        flock(fd, LOCK_UN);
    else if (errno == EWOULDBLOCK) {
        held = 1;
        *pid = s_pid(fd);
    }
    else {
        evr_err_set(err, EVR_ERR_IO, "%s: flock: %s", path, strerror(errno));
        held = -1;
    }
    close(fd);
    return held;
}

void
evr_lock_destroy(evr_lock_t **self_p)
{
    evr_lock_t *self = *self_p;
    if (!self)
        return;
    close(self->fd);   /* drops the flock */
    free(self);
    *self_p = NULL;
}
