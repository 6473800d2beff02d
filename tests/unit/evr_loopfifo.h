/*  evr_loopfifo.h: for the unit tests that prove work runs off the loop.

    Such a test makes the file the work writes a FIFO whose reading end
    only the loop opens and empties: work run on the loop itself would
    wait for the loop for ever.  evr_loopfifo_guard arms an alarm that
    ends the process (exit 3, saying why) after 60 s, so that a hang
    fails the test; evr_loopfifo_open opens a FIFO's reading end and
    watches it on the loop, keeping the first bytes written;
    evr_loopfifo_say writes into one from the work's side;
    evr_loopfifo_children counts the process's children.
*/
#ifndef EVR_LOOPFIFO_H_INCLUDED
#define EVR_LOOPFIFO_H_INCLUDED

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "evr_loop.h"

typedef struct {
    int fd;             /* -1 until opened */
    char got[16];       /* the first bytes written, NUL-terminated */
    size_t n;
    bool eof;           /* the writer closed it (or a read failed) */
} evr_loopfifo_t;

static const char *evr_loopfifo_why;

static inline void
evr_loopfifo_alarm(int sig)
{
    (void) sig;
    const char *w = evr_loopfifo_why ? evr_loopfifo_why : "the loop stopped turning";
    if (write(2, w, strlen(w)) < 0 || write(2, "\n", 1) < 0)
        _exit(3);
    _exit(3);
}

/*  Ends the process with why on stderr (exit 3) if it still runs in 60 s;
    evr_loopfifo_guard(NULL) disarms it. */
static inline void
evr_loopfifo_guard(const char *why)
{
    evr_loopfifo_why = why;
    signal(SIGALRM, evr_loopfifo_alarm);
    alarm(why ? 60 : 0);
}

static inline void
evr_loopfifo_read(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) events;
    evr_loopfifo_t *f = arg;
    ssize_t n = read(fd, f->got + f->n, sizeof f->got - 1 - f->n);
    if (n > 0)
        f->n += (size_t) n;
    else if (n == 0 || errno != EAGAIN) {
        f->eof = true;
        evr_loop_fd_remove(loop, fd);
    }
}

/*  Opens the FIFO at path for reading (not blocking) into f and watches
    it on loop: false when it cannot be opened. */
static inline bool
evr_loopfifo_open(evr_loop_t *loop, const char *path, evr_loopfifo_t *f)
{
    f->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    return f->fd >= 0 && evr_loop_fd_add(loop, f->fd, EVR_LOOP_READ, evr_loopfifo_read, f) == EVR_OK;
}

/*  Writes text into the FIFO at path: for a stand-in of a libc call that
    the work makes, whose open waits for the loop to open the reading end
    (a short write, when the reader is gone, is not retried). */
static inline void
evr_loopfifo_say(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = write(fd, text, strlen(text));
        (void) n;
        close(fd);
    }
}

/*  How many children this process has alive (zombies, which earlier
    tests may leave unreaped, not counted): for the tests that bound how
    many works run at once. */
static inline int
evr_loopfifo_children(void)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[300], line[512];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        FILE *fp = de->d_name[0] >= '1' && de->d_name[0] <= '9' ? fopen(path, "r") : NULL;
        if (!fp)
            continue;
        const char *rp = fgets(line, sizeof line, fp) ? strrchr(line, ')') : NULL;
        int ppid = 0;
        char st;
        if (rp && sscanf(rp + 1, " %c %d", &st, &ppid) == 2 && ppid == (int) getpid() && st != 'Z')
            n++;
        fclose(fp);
    }
    if (d)
        closedir(d);
    return n;
}

#endif
