/*  evr_shim.c: the supervisor of one host process step (see evr_shim.h).

    A small program, run as `evrun-runner --shim DIR` in a process of its
    own.  It takes the unit's lock (blocking: a second supervisor started
    for the same unit waits, then finds the unit started and refuses),
    reads what to run, forks the step into a new session, reports the
    start to the runner on fd 3, and waits.  Everything it opens is
    close-on-exec: the step inherits its three standard fds and nothing
    else (not the lock, which would outlive the supervisor in the step).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_shim.h"
#include "evr_unit.h"

#define S_STATUS_FD 3
#define S_CLOSE_MAX 65536   /* fds a spawn closes one by one at most */

/*  In the child between fork and exec (async-signal-safe): "error WHAT:
    errno N" on fd, then _exit, so that a supervisor that could not be
    set up says so (a pipe that ends without a word is one killed). */
static void
s_spawn_failed(int fd, const char *what, int e)
{
    char msg[96] = "error ", num[16];
    size_t at = strlen(msg);
    for (const char *w = what; *w && at < sizeof msg - 32; w++)
        msg[at++] = *w;
    memcpy(msg + at, ": errno ", 8);
    at += 8;
    int k = 0;
    do
        num[k++] = (char) ('0' + e % 10);
    while ((e /= 10) && k < 15);
    while (k && at < sizeof msg - 2)
        msg[at++] = num[--k];
    msg[at++] = '\n';
    ssize_t w = write(fd, msg, at);
    (void) w;
    _exit(127);
}

evr_rc_t
evr_shim_spawn(const char *dir, int *report_fd, evr_err_t *err)
{
    int p[2];
    *report_fd = -1;
    if (pipe2(p, O_CLOEXEC) != 0)
        return evr_err_set(err, EVR_ERR_IO, "pipe: %s", strerror(errno));
    char *log = evr_asprintf("%s/supervisor.log", dir);
    char *argv[] = { "evrun-runner", EVR_SHIM_FLAG, (char *) dir, NULL };
    sigset_t none;
    sigemptyset(&none);
    /* where close_range fails (a kernel before 5.9, a seccomp filter): a
       loop up to the soft limit, bounded (the runner's own fds are far
       fewer) */
    struct rlimit rl;
    int maxfd = S_CLOSE_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t) S_CLOSE_MAX)
        maxfd = (int) rl.rlim_cur;
    pid_t c = fork();
    if (c == 0) {
        if (setsid() < 0)
            s_spawn_failed(p[1], "setsid", errno);
        pid_t g = fork();
        if (g < 0)
            s_spawn_failed(p[1], "fork", errno);
        if (g != 0)
            _exit(0);
        if (p[1] == S_STATUS_FD ? fcntl(S_STATUS_FD, F_SETFD, 0) < 0
                                : dup2(p[1], S_STATUS_FD) < 0)
            s_spawn_failed(p[1], "dup2 of its report pipe", errno);
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0)
            s_spawn_failed(S_STATUS_FD, "opening /dev/null", errno);
        int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
        if (logfd < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
            s_spawn_failed(S_STATUS_FD, "opening its supervisor.log", errno);
        if (close_range(S_STATUS_FD + 1, ~0u, 0) != 0)
            for (int fd = S_STATUS_FD + 1; fd < maxfd; fd++)
                close(fd);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv("/proc/self/exe", argv);
        s_spawn_failed(S_STATUS_FD, "exec /proc/self/exe", errno);
    }
    int e = errno;
    free(log);
    close(p[1]);
    if (c < 0) {
        close(p[0]);
        return evr_err_set(err, EVR_ERR_IO, "fork: %s", strerror(e));
    }
    while (waitpid(c, NULL, 0) < 0 && errno == EINTR)
        ;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    *report_fd = p[0];
    return EVR_OK;
}

bool
evr_shim_wanted(int argc, char **argv)
{
    return argc == 3 && strcmp(argv[1], EVR_SHIM_FLAG) == 0;
}

/*  Tells the runner (fd 3) one line; it may be gone: then nobody hears. */
static void
s_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
s_report(const char *fmt, ...)
{
    char line[EVR_ERR_MAX + 32];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t) n > sizeof line - 2)
        n = (int) sizeof line - 2;
    line[n++] = '\n';
    ssize_t w;
    do
        w = write(S_STATUS_FD, line, (size_t) n);
    while (w < 0 && errno == EINTR);
    close(S_STATUS_FD);
}

/*  What the step is made of, read from the unit. */
typedef struct {
    char *script, *envbuf, *workdir;
    char **envp;
    evr_unit_limits_t limits;
} s_what_t;

static void
s_what_free(s_what_t *w)
{
    free(w->script);
    free(w->envbuf);
    free(w->workdir);
    free(w->envp);
}

static evr_rc_t
s_read_what(int dfd, const char *dir, s_what_t *w, evr_err_t *err)
{
    size_t len, elen;
    char *limits = NULL;
    evr_rc_t rc = evr_unit_read(dfd, dir, "script", EVR_UNIT_MAX_SCRIPT, &w->script, &len, err);
    if (!rc)
        rc = evr_unit_read(dfd, dir, "env", EVR_UNIT_MAX_ENV, &w->envbuf, &elen, err);
    if (!rc)
        rc = evr_unit_read(dfd, dir, "workdir", 4096, &w->workdir, &len, err);
    if (!rc) {
        rc = evr_unit_read(dfd, dir, "limits", 4096, &limits, &len, err);
        if (rc == EVR_ERR_NOTFOUND)
            rc = EVR_OK;
        else if (!rc && !evr_unit_limits_parse(limits, &w->limits))
            rc = evr_err_set(err, EVR_ERR_IO, "%s/limits: damaged", dir);
        free(limits);
    }
    if (rc == EVR_ERR_NOTFOUND)
        return evr_err_set(err, EVR_ERR_IO, "%s: a file of the unit is missing", dir);
    if (rc)
        return rc;
    /* entries counted as they are filled: the last one may lack its NUL
       (evr_unit_read ends the buffer with one) */
    size_t n = 0;
    for (size_t i = 0; i < elen; i += strlen(w->envbuf + i) + 1)
        n++;
    w->envp = evr_calloc(n + 1, sizeof(char *));
    n = 0;
    for (size_t i = 0; i < elen; i += strlen(w->envbuf + i) + 1)
        w->envp[n++] = w->envbuf + i;
    return EVR_OK;
}

/*  What the step's child reports through the exec pipe when it fails. */
typedef struct {
    int what;   /* S_FAIL_* */
    int err;    /* errno */
    int limit;  /* S_FAIL_LIMIT: which, an index of s_limits */
} s_fail_t;

enum { S_FAIL_SETSID = 1, S_FAIL_FDS, S_FAIL_CHDIR, S_FAIL_LIMIT, S_FAIL_EXEC };

/*  The limits a step may have, as the pipeline names them. */
static const struct {
    const char *key, *unit, *res_name;
    int res;
} s_limits[] = {
    { "nofile", "", "RLIMIT_NOFILE", RLIMIT_NOFILE },
    { "nproc", "", "RLIMIT_NPROC", RLIMIT_NPROC },
    { "cpu", " s", "RLIMIT_CPU", RLIMIT_CPU },
    { "memory", "", "RLIMIT_AS", RLIMIT_AS },
};

static uint64_t
s_limit_value(const evr_unit_limits_t *l, size_t k)
{
    const uint64_t v[] = { l->nofile, l->nproc, l->cpu_s, l->memory };
    return v[k];
}

static void
s_child_fail(int fd, int what, int limit)
{
    s_fail_t f = { what, errno, limit };
    ssize_t w = write(fd, &f, sizeof f);
    (void) w;
    _exit(127);
}

/*  In the forked child: becomes the step (never returns). */
static void
s_child(const s_what_t *w, int out, int errf, int null, int failfd)
{
    if (setsid() < 0)
        s_child_fail(failfd, S_FAIL_SETSID, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    if (dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(errf, 2) < 0)
        s_child_fail(failfd, S_FAIL_FDS, 0);
    if (chdir(w->workdir) != 0)
        s_child_fail(failfd, S_FAIL_CHDIR, 0);
    for (size_t k = 0; k < EVR_ARRAY_LEN(s_limits); k++) {
        uint64_t v = s_limit_value(&w->limits, k);
        struct rlimit rl = { (rlim_t) v, (rlim_t) v };
        if (v && setrlimit(s_limits[k].res, &rl) != 0)
            s_child_fail(failfd, S_FAIL_LIMIT, (int) k);
    }
    char *argv[] = { "sh", "-c", w->script, NULL };
    execve("/bin/sh", argv, w->envp);
    s_child_fail(failfd, S_FAIL_EXEC, 0);
}

/*  Why setrlimit of limit k to v was refused (EPERM), into why: over
    the host's fs.nr_open (nofile: no process may have more, root or
    not), or over this process's hard limit (which only a privileged
    process may raise); a guess when neither is known. */
static void
s_limit_why(size_t k, uint64_t v, char *why, size_t size)
{
    why[0] = '\0';
    if (s_limits[k].res == RLIMIT_NOFILE) {
        FILE *f = fopen("/proc/sys/fs/nr_open", "re");
        unsigned long long max = 0;
        bool got = f && fscanf(f, "%llu", &max) == 1;
        if (f)
            fclose(f);
        if (got && v > max) {
            snprintf(why, size, ": over this host's fs.nr_open (%llu), the most a process may "
                     "have: give %llu or less, or raise it (sysctl -w fs.nr_open=N)", max, max);
            return;
        }
    }
    struct rlimit rl;
    if (getrlimit(s_limits[k].res, &rl) == 0 && rl.rlim_max != RLIM_INFINITY
        && v > (uint64_t) rl.rlim_max)
        snprintf(why, size, ": over the runner's hard limit (%llu), which only a privileged "
                 "runner may raise: give %llu or less, or start the runner with a higher one "
                 "(ulimit -H, or its systemd unit's Limit...=)", (unsigned long long) rl.rlim_max,
                 (unsigned long long) rl.rlim_max);
    else
        snprintf(why, size, " (over the runner's hard limit?)");
}

/*  What the child's report f means, into err. */
static void
s_fail_say(const s_what_t *w, const s_fail_t *f, evr_err_t *err)
{
    const char *e = strerror(f->err);
    switch (f->what) {
    case S_FAIL_SETSID: evr_err_set(err, EVR_ERR_IO, "setsid: %s", e); return;
    case S_FAIL_FDS: evr_err_set(err, EVR_ERR_IO, "setting up its output: %s", e); return;
    case S_FAIL_CHDIR: evr_err_set(err, EVR_ERR_IO, "chdir %s: %s", w->workdir, e); return;
    case S_FAIL_EXEC: evr_err_set(err, EVR_ERR_IO, "exec /bin/sh: %s", e); return;
    case S_FAIL_LIMIT:
        if (f->limit >= 0 && (size_t) f->limit < EVR_ARRAY_LEN(s_limits)) {
            size_t k = (size_t) f->limit;
            char why[256] = "";
            if (f->err == EPERM)
                s_limit_why(k, s_limit_value(&w->limits, k), why, sizeof why);
            evr_err_set(err, EVR_ERR_IO, "limits.%s = %" PRIu64 "%s: setrlimit(%s): %s%s",
                        s_limits[k].key, s_limit_value(&w->limits, k), s_limits[k].unit,
                        s_limits[k].res_name, e, why);
            return;
        }
        break;
    }
    evr_err_set(err, EVR_ERR_IO, "setting up the step (%d): %s", f->what, e);
}

/*  Forks the step; its pid, or -1 with err. */
static pid_t
s_spawn(int dfd, const char *dir, const s_what_t *w, evr_err_t *err)
{
    int out = openat(dfd, "stdout", O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    int errf = openat(dfd, "stderr", O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int fp[2] = { -1, -1 };
    pid_t pid = -1;
    if (out < 0 || errf < 0 || null < 0) {
        evr_err_set(err, EVR_ERR_IO, "opening the output files of %s: %s", dir, strerror(errno));
        goto out;
    }
    if (pipe2(fp, O_CLOEXEC) != 0) {
        evr_err_set(err, EVR_ERR_IO, "pipe: %s", strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        evr_err_set(err, EVR_ERR_IO, "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        s_child(w, out, errf, null, fp[1]);
    close(fp[1]);
    fp[1] = -1;
    s_fail_t f;
    ssize_t r;
    do
        r = read(fp[0], &f, sizeof f);
    while (r < 0 && errno == EINTR);
    if (r == (ssize_t) sizeof f) {
        s_fail_say(w, &f, err);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        pid = -1;
    }
out:
    for (int i = 0; i < 2; i++)
        if (fp[i] >= 0)
            close(fp[i]);
    if (out >= 0)
        close(out);
    if (errf >= 0)
        close(errf);
    if (null >= 0)
        close(null);
    return pid;
}

/*  Waits for the step, ends the rest of its group, returns its status as
    a shell says it (128+N after signal N), *sig N (0: it exited). */
static int64_t
s_wait(int dfd, const char *dir, pid_t pid, int *sig)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    while (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT) != 0 && errno == EINTR)
        ;
    *sig = si.si_code == CLD_EXITED ? 0 : si.si_status;
    int64_t code = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
    evr_err_t err;
    evr_unit_write(dfd, dir, "ended", "", 0, &err);
    /* the step has exited, not yet reaped: its group id is still its own */
    kill(-pid, SIGKILL);
    /* every child of ours in the group, the step last or not; orphans of
       the group were reparented to us (subreaper) */
    for (;;) {
        pid_t r = waitpid(-pid, NULL, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
    }
    return code;
}

/*  `room`: EVR_UNIT_ROOM bytes kept on the unit's file system for the
    end, when the step's output may have filled it (written, not a hole:
    a hole keeps nothing).  Without it a full disk left no room for
    `exit`, and the step was taken for lost ("was it killed?"). */
static evr_rc_t
s_keep_room(int dfd, const char *dir, evr_err_t *err)
{
    static const char zeros[EVR_UNIT_ROOM];
    return evr_unit_write(dfd, dir, "room", zeros, sizeof zeros, err);
}

/*  Starts the step of the unit (dfd, dir) holding its lock; its pid, or
    -1 with err. */
static pid_t
s_begin(int dfd, const char *dir, s_what_t *w, evr_err_t *err)
{
    if (faccessat(dfd, "pid", F_OK, AT_SYMLINK_NOFOLLOW) == 0
        || faccessat(dfd, "exit", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        evr_err_set(err, EVR_ERR_IO, "%s: started already", dir);
        return -1;
    }
    if (s_read_what(dfd, dir, w, err))
        return -1;
    if (s_keep_room(dfd, dir, err))
        return -1;
    unlinkat(dfd, "env", 0);   /* read: its secrets stay in the step only */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t pid = s_spawn(dfd, dir, w, err);
    if (pid < 0)
        return -1;
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%ld %" PRIu64 "\n", (long) pid, evr_now_ns());
    if (evr_unit_write(dfd, dir, "pid", buf, (size_t) n, err)) {
        /* the runner could not find the step without it: end it */
        kill(-pid, SIGKILL);
        int sig;
        s_wait(dfd, dir, pid, &sig);
        unlinkat(dfd, "ended", 0);
        return -1;
    }
    return pid;
}

/*  The step has ended: its status, output sizes and the signal that
    ended it into `exit`. */
static int
s_end(int dfd, const char *dir, pid_t pid)
{
    int sig;
    int64_t code = s_wait(dfd, dir, pid, &sig);
    uint64_t at = evr_now_ns();
    struct stat so, se;
    if (fstatat(dfd, "stdout", &so, AT_SYMLINK_NOFOLLOW) != 0
        || fstatat(dfd, "stderr", &se, AT_SYMLINK_NOFOLLOW) != 0)
        return 1;   /* the unit is removed: nobody reads it */
    char buf[192];
    int n = snprintf(buf, sizeof buf, "exit %" PRId64 "\nstdout %llu\nstderr %llu\nat %" PRIu64
                     "\n", code, (unsigned long long) so.st_size, (unsigned long long) se.st_size,
                     at);
    if (sig)
        n += snprintf(buf + n, sizeof buf - (size_t) n, "signal %d\n", sig);
    evr_err_t err, again;
    if (evr_unit_write(dfd, dir, "exit", buf, (size_t) n, &err)) {
        /* the room kept at the start, given up for `exit`, which then
           says that it took it: the disk was full at the step's end */
        unlinkat(dfd, "room", 0);
        n += snprintf(buf + n, sizeof buf - (size_t) n, "full\n");
        if (evr_unit_write(dfd, dir, "exit", buf, (size_t) n, &again)) {
            fprintf(stderr, "evrun supervisor: %s\n", again.msg);   /* supervisor.log */
            return 1;
        }
        fprintf(stderr, "evrun supervisor: %s; written in the room kept for it\n", err.msg);
    }
    unlinkat(dfd, "paused", 0);
    return 0;
}

/*  The engine's test hook (evr_eng_test_pause) in the supervisor, which
    has the runner's environment: EVR_TEST_PAUSE_AT=supervisor stops it
    (SIGSTOP) holding the unit's lock, before it starts the step;
    supervisor_started once the step runs, before it reports the start.
    A test kills it there. */
static void
s_test_pause(const char *point)
{
    const char *want = getenv("EVR_TEST_PAUSE_AT");
    if (want && !strcmp(want, point)) {
        fprintf(stderr, "evrun supervisor: test pause at %s\n", point);   /* supervisor.log */
        raise(SIGSTOP);
    }
}

int
evr_shim_main(const char *dir)
{
    static const int ignored[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGTSTP,
                                   SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2 };
    for (size_t i = 0; i < EVR_ARRAY_LEN(ignored); i++)
        signal(ignored[i], SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    fcntl(S_STATUS_FD, F_SETFD, FD_CLOEXEC);
    if (chdir("/") != 0) {
        /* nothing keeps the runner's working directory busy; go on */
    }
    evr_err_t err;
    s_what_t w = { 0 };
    int status = 1;
    pid_t pid = -1;
    int lfd = -1, dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    bool held = false;
    if (dfd < 0)
        evr_err_set(&err, EVR_ERR_IO, "opening %s: %s", dir, strerror(errno));
    else if ((lfd = openat(dfd, "lock", O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0)
        evr_err_set(&err, EVR_ERR_IO, "opening %s/lock: %s", dir, strerror(errno));
    else if (fcntl(lfd, F_OFD_SETLK, &fl) != 0) {
        /* not waited for: the supervisor holding it (an earlier run's,
           spawned as that runner was killed, its start not in the log
           when recovery probed the unit) runs the step to its end */
        held = errno == EAGAIN || errno == EACCES;
        evr_err_set(&err, EVR_ERR_IO, "locking %s/lock: %s", dir, strerror(errno));
    }
    else {
        s_test_pause("supervisor");
        pid = s_begin(dfd, dir, &w, &err);
    }
    s_what_free(&w);
    if (held) {
        close(lfd);
        fprintf(stderr, "evrun supervisor: %s: another supervisor holds it and runs the step; "
                "leaving\n", dir);
        s_report("held");
        status = 0;
    }
    else if (pid < 0) {
        /* the lock goes first: once told, the runner finds the unit created */
        if (lfd >= 0)
            close(lfd);
        s_report("error %s", err.msg);
        fprintf(stderr, "evrun supervisor: %s\n", err.msg);
    }
    else {
        s_test_pause("supervisor_started");
        s_report("started %ld", (long) pid);
        status = s_end(dfd, dir, pid);
        close(lfd);
    }
    if (dfd >= 0)
        close(dfd);
    return status;
}
