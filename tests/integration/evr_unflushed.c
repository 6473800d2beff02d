/*  libevr_unflushed.so: an LD_PRELOAD library for the crash tests (test
    only).  Writes to a file whose name ends in EVR_UNFLUSHED_SUFFIX (the
    environment's; default "submits.journal") are held in the process's
    memory until an fdatasync or fsync of that file applies them, so a
    SIGKILL loses what was written but not flushed, as a power loss
    would.  A process that answers before its flush then loses answered
    data and a test sees it.  Only pwrite (the journal's one way of
    writing) is held; reads see the file as flushed.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define S_FDS 1024

typedef struct s_held {
    off_t off;
    size_t len;
    struct s_held *next;
    unsigned char data[];
} s_held_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_held_t *s_fd_held[S_FDS];     /* oldest first */
static char s_fd_watched[S_FDS];

static bool
s_watched_path(const char *path)
{
    const char *suffix = getenv("EVR_UNFLUSHED_SUFFIX");
    if (!suffix || !*suffix)
        suffix = "submits.journal";
    size_t pl = strlen(path), sl = strlen(suffix);
    return pl >= sl && strcmp(path + pl - sl, suffix) == 0;
}

static void
s_note(int fd, const char *path)
{
    if (fd < 0 || fd >= S_FDS)
        return;
    pthread_mutex_lock(&s_lock);
    s_fd_watched[fd] = s_watched_path(path);
    pthread_mutex_unlock(&s_lock);
}

static int
s_open_real(const char *name, int dirfd, const char *path, int flags, mode_t mode)
{
    if (dirfd == -1) {
        int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...)) dlsym(RTLD_NEXT,
                                                                                    name);
        return real(path, flags, mode);
    }
    int (*real)(int, const char *, int, ...) = (int (*)(int, const char *, int, ...))
        dlsym(RTLD_NEXT, name);
    return real(dirfd, path, flags, mode);
}

#define S_MODE(flags, mode)                                                                       \
    do {                                                                                          \
        if ((flags) & (O_CREAT | O_TMPFILE)) {                                                    \
            va_list ap;                                                                           \
            va_start(ap, flags);                                                                  \
            mode = (mode_t) va_arg(ap, int);                                                      \
            va_end(ap);                                                                           \
        }                                                                                         \
    } while (0)

int
open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    S_MODE(flags, mode);
    int fd = s_open_real("open", -1, path, flags, mode);
    s_note(fd, path);
    return fd;
}

int
open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    S_MODE(flags, mode);
    int fd = s_open_real("open64", -1, path, flags, mode);
    s_note(fd, path);
    return fd;
}

int
openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    S_MODE(flags, mode);
    int fd = s_open_real("openat", dirfd, path, flags, mode);
    s_note(fd, path);
    return fd;
}

static ssize_t
s_pwrite_real(int fd, const void *buf, size_t n, off_t off)
{
    ssize_t (*real)(int, const void *, size_t, off_t) =
        (ssize_t (*)(int, const void *, size_t, off_t)) dlsym(RTLD_NEXT, "pwrite64");
    return real(fd, buf, n, off);
}

static ssize_t
s_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (fd < 0 || fd >= S_FDS || !s_fd_watched[fd])
        return s_pwrite_real(fd, buf, n, off);
    s_held_t *h = malloc(sizeof *h + n);
    if (!h)
        return s_pwrite_real(fd, buf, n, off);
    h->off = off;
    h->len = n;
    h->next = NULL;
    memcpy(h->data, buf, n);
    pthread_mutex_lock(&s_lock);
    s_held_t **pp = &s_fd_held[fd];
    while (*pp)
        pp = &(*pp)->next;
    *pp = h;
    pthread_mutex_unlock(&s_lock);
    return (ssize_t) n;
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return s_pwrite(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return s_pwrite(fd, buf, n, off);
}

/*  Applies fd's held writes; -1 when one failed (its error in errno). */
static int
s_apply(int fd)
{
    if (fd < 0 || fd >= S_FDS)
        return 0;
    pthread_mutex_lock(&s_lock);
    s_held_t *h = s_fd_held[fd];
    s_fd_held[fd] = NULL;
    pthread_mutex_unlock(&s_lock);
    int rc = 0;
    while (h) {
        s_held_t *next = h->next;
        for (size_t done = 0; rc == 0 && done < h->len;) {
            ssize_t w = s_pwrite_real(fd, h->data + done, h->len - done,
                                      h->off + (off_t) done);
            if (w <= 0)
                rc = -1;
            else
                done += (size_t) w;
        }
        free(h);
        h = next;
    }
    return rc;
}

int
fdatasync(int fd)
{
    int (*real)(int) = (int (*)(int)) dlsym(RTLD_NEXT, "fdatasync");
    return s_apply(fd) ? -1 : real(fd);
}

int
fsync(int fd)
{
    int (*real)(int) = (int (*)(int)) dlsym(RTLD_NEXT, "fsync");
    return s_apply(fd) ? -1 : real(fd);
}

int
close(int fd)
{
    int (*real)(int) = (int (*)(int)) dlsym(RTLD_NEXT, "close");
    if (fd >= 0 && fd < S_FDS) {
        pthread_mutex_lock(&s_lock);
        s_held_t *h = s_fd_held[fd];
        s_fd_held[fd] = NULL;   /* closed unflushed: lost, as in a crash before the flush */
        s_fd_watched[fd] = 0;
        pthread_mutex_unlock(&s_lock);
        while (h) {
            s_held_t *next = h->next;
            free(h);
            h = next;
        }
    }
    return real(fd);
}
