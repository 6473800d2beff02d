/*  test_offload.c: work in a forked child, reported through the loop
    (runner/evr_offload.h): the result comes back whole while the loop
    goes on turning; a child that dies reports EVR_ERR_IO; a cancel kills
    the child and returns without waiting for it (it is reaped from later
    turns, its temporary files removed), and done is not called; a fork
    that fails is reported as such (EVR_ERR_LIMIT, with the fork's errno,
    not that of a close after it); a temporary directory goes whole; the
    children working are counted, and at the exit killed and named
    (evr_offload_abandon), a hung one (the test hook) too; a SIGTERM, which
    the parent's handler only counts, ends a child. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_offload.h"
#include "evr_test.h"

typedef struct {
    char text[3000];
    pid_t pid;
} s_out_t;

typedef struct {
    int calls;
    evr_rc_t rc;
    char msg[256];
    s_out_t out;
} s_seen_t;

static void
s_work(void *arg, void *out, size_t size)
{
    (void) arg;
    s_out_t *o = out;
    if (size != sizeof *o)
        _exit(9);
    usleep(200000);   /* a slow job: the loop turns meanwhile */
    memset(o->text, 'x', sizeof o->text - 1);
    memcpy(o->text, "hello", 5);
    o->pid = getpid();
}

static void
s_dies(void *arg, void *out, size_t size)
{
    (void) arg;
    (void) out;
    (void) size;
    _exit(7);
}

static void
s_sleeps(void *arg, void *out, size_t size)
{
    (void) arg;
    (void) out;
    (void) size;
    sleep(60);
}

/*  Whether this process has no child, reaped or not (it reaps none). */
static bool
s_no_child(void)
{
    siginfo_t si;
    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

static void
s_done(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    s_seen_t *s = arg;
    s->calls++;
    s->rc = rc;
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    memcpy(&s->out, out, sizeof s->out);
}

static void
s_tick(evr_loop_t *loop, void *arg)
{
    int *ticks = arg;
    (*ticks)++;
    evr_loop_timer_add(loop, 10, s_tick, ticks);
}

static void
test_result(void)
{
    evr_loop_t *loop = evr_loop_new();
    s_seen_t seen = { 0 };
    int ticks = 0;
    evr_loop_timer_add(loop, 10, s_tick, &ticks);
    CHECK(evr_offload_start(loop, s_work, sizeof(s_out_t), s_done, &seen) != NULL);
    for (int i = 0; i < 1000 && !seen.calls; i++)
        evr_loop_once(loop, 100);
    CHECK(seen.calls == 1 && seen.rc == EVR_OK && seen.msg[0] == '\0');
    CHECK(!strncmp(seen.out.text, "hello", 5) && strlen(seen.out.text) == sizeof seen.out.text - 1);
    CHECK(seen.out.pid != getpid() && seen.out.pid > 0);
    CHECK(ticks >= 5);   /* the loop turned while the child worked */
    CHECK(waitpid(seen.out.pid, NULL, WNOHANG) < 0);   /* reaped */
    evr_loop_destroy(&loop);
}

static void
test_dies(void)
{
    evr_loop_t *loop = evr_loop_new();
    s_seen_t seen = { 0 };
    evr_offload_start(loop, s_dies, sizeof(s_out_t), s_done, &seen);
    for (int i = 0; i < 1000 && !seen.calls; i++)
        evr_loop_once(loop, 100);
    CHECK(seen.calls == 1 && seen.rc == EVR_ERR_IO);
    CHECK(strstr(seen.msg, "the child process exited with 7") != NULL);   /* how, not only that */
    CHECK(seen.out.text[0] == '\0');
    evr_loop_destroy(&loop);
}

static void
s_killed(void *arg, void *out, size_t size)
{
    (void) arg;
    (void) out;
    (void) size;
    raise(SIGKILL);     /* as the OOM killer would */
}

static void
test_killed(void)
{
    evr_loop_t *loop = evr_loop_new();
    s_seen_t seen = { 0 };
    evr_offload_start(loop, s_killed, sizeof(s_out_t), s_done, &seen);
    for (int i = 0; i < 1000 && !seen.calls; i++)
        evr_loop_once(loop, 100);
    CHECK(seen.calls == 1 && seen.rc == EVR_ERR_IO);
    CHECK(strstr(seen.msg, "was killed by signal 9") != NULL);
    evr_loop_destroy(&loop);
}

static void
test_cancel(void)
{
    evr_loop_t *loop = evr_loop_new();
    s_seen_t seen = { 0 };
    evr_offload_t *w = evr_offload_start(loop, s_sleeps, sizeof(s_out_t), s_done, &seen);
    evr_loop_once(loop, 50);
    evr_offload_cancel(&w);
    CHECK(w == NULL);
    evr_offload_cancel(&w);   /* NULL-safe */
    for (int i = 0; i < 200 && !s_no_child(); i++)
        evr_loop_once(loop, 10);
    CHECK(seen.calls == 0);   /* done is not called */
    CHECK(s_no_child());      /* reaped by the loop, none left */
    evr_loop_destroy(&loop);
}

typedef struct {
    s_seen_t seen;      /* first: s_done's */
    char path[300];
} s_file_t;

static void
s_never(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) loop;
    (void) fd;
    (void) events;
    (void) arg;
}

/*  Makes the file path (its pid in it), then takes its time. */
static void
s_writes(void *arg, void *out, size_t size)
{
    (void) out;
    (void) size;
    const char *path = ((s_file_t *) arg)->path;
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        _exit(4);
    fprintf(fp, "%d\n", (int) getpid());
    fclose(fp);
    rename(tmp, path);
    sleep(60);
}

/*  A cancel does not wait for the killed child: it returns with the
    child not reaped yet (the loop reaps it later) and its temporary file
    removed. */
static void
test_cancel_no_wait(void)
{
    char dir[] = "/tmp/evr-test-offload-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    s_file_t f = { 0 };
    const char *path = f.path;
    snprintf(f.path, sizeof f.path, "%s/out", dir);
    evr_loop_t *loop = evr_loop_new();
    evr_offload_t *w = evr_offload_start(loop, s_writes, sizeof(s_out_t), s_done, &f);
    evr_offload_temp(w, path);
    int pid = 0;
    for (int i = 0; i < 500 && !pid; i++) {
        evr_loop_once(loop, 10);
        FILE *fp = fopen(path, "r");
        if (fp && fscanf(fp, "%d", &pid) != 1)
            pid = 0;
        if (fp)
            fclose(fp);
    }
    CHECK(pid > 0);
    evr_offload_cancel(&w);
    siginfo_t si = { 0 };
    CHECK(waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0);   /* not reaped */
    CHECK(access(path, F_OK) != 0);   /* its temporary file removed at once */
    for (int i = 0; i < 200 && !s_no_child(); i++)
        evr_loop_once(loop, 10);
    CHECK(s_no_child());   /* reaped by the loop */
    CHECK(f.seen.calls == 0);
    CHECK(access(path, F_OK) != 0);
    evr_loop_destroy(&loop);
    rmdir(dir);
}

/*  A work whose pipe the loop cannot watch (it watches EVR_LOOP_MAX_FDS
    files already) fails, saying why, and its child is killed at once:
    the file it makes is removed (at once and once it is reaped), none
    is left to the caller of a failed work. */
static void
test_unwatched(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < EVR_LOOP_MAX_FDS + 64) {
        printf("  (skipped: the hard limit of open files, %llu, is below %d)\n",
               (unsigned long long) rl.rlim_max, EVR_LOOP_MAX_FDS + 64);
        return;
    }
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = EVR_LOOP_MAX_FDS + 64;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    char dir[] = "/tmp/evr-test-offload-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    s_file_t f = { 0 };
    snprintf(f.path, sizeof f.path, "%s/out", dir);
    evr_loop_t *loop = evr_loop_new();
    static int fds[EVR_LOOP_MAX_FDS];
    for (int i = 0; i < EVR_LOOP_MAX_FDS; i++) {   /* never readable */
        fds[i] = eventfd(0, EFD_CLOEXEC);
        CHECK(fds[i] >= 0 && evr_loop_fd_add(loop, fds[i], EVR_LOOP_READ, s_never, NULL) == EVR_OK);
    }
    evr_offload_t *w = evr_offload_start(loop, s_writes, sizeof(s_out_t), s_done, &f);
    evr_offload_temp(w, f.path);
    for (int i = 0; i < 200 && access(f.path, F_OK) != 0; i++)   /* a child let work makes it */
        usleep(10000);
    for (int i = 0; i < 500 && (!f.seen.calls || !s_no_child()); i++)
        evr_loop_once(loop, 10);
    CHECK(f.seen.calls == 1 && f.seen.rc == EVR_ERR_LIMIT);   /* not started: try again later */
    CHECK(strstr(f.seen.msg, "the loop watches too many files") != NULL);
    CHECK(s_no_child());
    CHECK(access(f.path, F_OK) != 0);   /* the failed work's file removed */
    for (int i = 0; i < EVR_LOOP_MAX_FDS; i++) {
        evr_loop_fd_remove(loop, fds[i]);
        close(fds[i]);
    }
    evr_loop_destroy(&loop);
    char tmp[330];
    snprintf(tmp, sizeof tmp, "%s.tmp", f.path);
    unlink(tmp);
    rmdir(dir);
    rl.rlim_cur = was;
    setrlimit(RLIMIT_NOFILE, &rl);
}

/*  A fork that fails (the test hook EVR_TEST_OFFLOAD_FORK_FAIL: as past
    RLIMIT_NPROC, which root does not meet) is reported from a later turn
    as EVR_ERR_LIMIT, "fork: ...", no child made; once the hook's file is
    gone, works start again. */
/*  close, as libc's, but while s_close_clobbers it sets errno even when
    it succeeds (as any libc call may): evr_offload's closes come here
    (this binary defines the symbol). */
static bool s_close_clobbers;

int
close(int fd)
{
    int r = (int) syscall(SYS_close, fd);
    if (s_close_clobbers && r == 0)
        errno = EBADF;
    return r;
}

static void
test_fork_fails(void)
{
    char dir[] = "/tmp/evr-test-offload-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char flag[300];
    snprintf(flag, sizeof flag, "%s/nofork", dir);
    close(open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    setenv("EVR_TEST_OFFLOAD_FORK_FAIL", flag, 1);
    evr_loop_t *loop = evr_loop_new();
    s_seen_t seen = { 0 };
    s_close_clobbers = true;   /* the fork's errno is said, not the closes' after it */
    evr_offload_start(loop, s_work, sizeof(s_out_t), s_done, &seen);
    s_close_clobbers = false;
    CHECK(seen.calls == 0);   /* never from inside the call */
    for (int i = 0; i < 100 && !seen.calls; i++)
        evr_loop_once(loop, 10);
    CHECK(seen.calls == 1 && seen.rc == EVR_ERR_LIMIT);
    CHECK(strstr(seen.msg, "fork: Resource temporarily unavailable") != NULL);
    if (!strstr(seen.msg, "fork: Resource temporarily unavailable"))
        fprintf(stderr, "  said: %s\n", seen.msg);
    CHECK(s_no_child());
    unlink(flag);
    memset(&seen, 0, sizeof seen);
    evr_offload_start(loop, s_work, sizeof(s_out_t), s_done, &seen);
    for (int i = 0; i < 1000 && !seen.calls; i++)
        evr_loop_once(loop, 100);
    CHECK(seen.calls == 1 && seen.rc == EVR_OK);
    unsetenv("EVR_TEST_OFFLOAD_FORK_FAIL");
    evr_loop_destroy(&loop);
    rmdir(dir);
}

/*  Makes the directory path with a file in it, then takes its time. */
static void
s_makes_dir(void *arg, void *out, size_t size)
{
    (void) out;
    (void) size;
    const char *path = ((s_file_t *) arg)->path;
    char file[320];
    snprintf(file, sizeof file, "%s/kept.yml", path);
    if (mkdir(path, 0700) != 0)
        _exit(4);
    FILE *fp = fopen(file, "w");
    if (!fp)
        _exit(4);
    fprintf(fp, "%d\n", (int) getpid());
    fclose(fp);
    sleep(60);
}

/*  A directory named with evr_offload_temp_dir goes whole with a cancel,
    at once; one the killed child makes again before it is reaped (as a
    write under way when the signal came would) goes once it is reaped. */
static void
test_cancel_dir(void)
{
    char dir[] = "/tmp/evr-test-offload-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    s_file_t f = { 0 };
    snprintf(f.path, sizeof f.path, "%s/files", dir);
    char file[320];
    snprintf(file, sizeof file, "%s/kept.yml", f.path);
    evr_loop_t *loop = evr_loop_new();
    evr_offload_t *w = evr_offload_start(loop, s_makes_dir, sizeof(s_out_t), s_done, &f);
    evr_offload_temp_dir(w, f.path);
    for (int i = 0; i < 500 && access(file, F_OK) != 0; i++)
        evr_loop_once(loop, 10);
    CHECK(access(file, F_OK) == 0);
    evr_offload_cancel(&w);
    CHECK(access(f.path, F_OK) != 0 && errno == ENOENT);   /* at once */
    CHECK(mkdir(f.path, 0700) == 0);   /* the late write of a dying child */
    close(open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    for (int i = 0; i < 200 && !s_no_child(); i++)
        evr_loop_once(loop, 10);
    CHECK(s_no_child());
    CHECK(access(f.path, F_OK) != 0 && errno == ENOENT);   /* again once it is reaped */
    CHECK(f.seen.calls == 0);
    evr_loop_destroy(&loop);
    CHECK(rmdir(dir) == 0);
}

/*  A child that never ends (EVR_TEST_OFFLOAD_HANG: as one stuck at a
    lock taken by another thread as it forked) is counted as working; at
    the exit it is killed by its pid and named, and its cancel after that
    reaps it; one whose result is read is no longer counted. */
static void
test_abandon(void)
{
    char dir[] = "/tmp/evr-test-offload-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char flag[300];
    snprintf(flag, sizeof flag, "%s/hang", dir);
    close(open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    setenv("EVR_TEST_OFFLOAD_HANG", flag, 1);
    evr_loop_t *loop = evr_loop_new();
    s_seen_t seen = { 0 }, quick = { 0 };
    CHECK(evr_offload_running() == 0);
    evr_offload_t *w = evr_offload_start(loop, s_work, sizeof(s_out_t), s_done, &seen);
    evr_offload_what(w, "making %s", "a tar");
    unsetenv("EVR_TEST_OFFLOAD_HANG");
    evr_offload_start(loop, s_work, sizeof(s_out_t), s_done, &quick);
    CHECK(evr_offload_running() == 2);
    for (int i = 0; i < 1000 && !quick.calls; i++)
        evr_loop_once(loop, 10);
    CHECK(quick.calls == 1 && quick.rc == EVR_OK);
    CHECK(seen.calls == 0);   /* the hung one: its work never ran */
    CHECK(evr_offload_running() == 1);
    /* its log line: stderr into a file for the call */
    char log[300];
    snprintf(log, sizeof log, "%s/log", dir);
    int fd = open(log, O_CREAT | O_RDWR | O_CLOEXEC, 0600), saved = dup(2);
    fflush(stderr);
    dup2(fd, 2);
    CHECK(evr_offload_abandon("test") == 1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char text[1024] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    CHECK(strstr(text, "test: warn: exiting: gave up waiting for the child process ") != NULL);
    CHECK(strstr(text, " (making a tar, running for ") != NULL);
    CHECK(strstr(text, "ms): killed; what it did not finish is done again at the next start")
          != NULL);
    if (!strstr(text, "(making a tar, running for "))
        fprintf(stderr, "  said: %s\n", text);
    evr_offload_cancel(&w);
    CHECK(evr_offload_running() == 0);
    for (int i = 0; i < 200 && !s_no_child(); i++)
        evr_loop_once(loop, 10);
    CHECK(s_no_child());   /* killed at the abandon: reaped at once */
    CHECK(seen.calls == 0);
    unlink(flag);
    unlink(log);
    evr_loop_destroy(&loop);
    rmdir(dir);
}

static volatile sig_atomic_t s_terms;

static void
s_count(int sig)
{
    (void) sig;
    s_terms++;
}

/*  The pid of this process's one child (/proc/self/task/TID/children),
    or 0. */
static pid_t
s_child_pid(void)
{
    char path[64], buf[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long) getpid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return (pid_t) atol(buf);
}

/*  The parent's SIGTERM handler only counts; the child's SIGTERM is the
    default one: the signal sent to the runner's process group (timeout(1)
    does) ends the child too. */
static void
test_child_sigterm(void)
{
    struct sigaction sa = { .sa_handler = s_count }, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old);
    evr_loop_t *loop = evr_loop_new();
    s_seen_t seen = { 0 };
    evr_offload_start(loop, s_sleeps, sizeof(s_out_t), s_done, &seen);
    pid_t kid = 0;
    for (int i = 0; i < 100 && !(kid = s_child_pid()); i++)
        evr_loop_once(loop, 10);
    CHECK(kid > 0);
    usleep(200000);   /* past its set-up */
    if (kid > 0)
        kill(kid, SIGTERM);
    for (int i = 0; i < 300 && !seen.calls; i++)
        evr_loop_once(loop, 10);
    CHECK(s_terms == 0);
    CHECK(seen.calls == 1 && seen.rc == EVR_ERR_IO);
    CHECK(strstr(seen.msg, "killed by signal 15") != NULL);
    if (!strstr(seen.msg, "killed by signal 15"))
        fprintf(stderr, "  said: %s\n", seen.msg);
    evr_loop_destroy(&loop);   /* (a child left, on a failure: it dies with this process) */
    sigaction(SIGTERM, &old, NULL);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    EVR_TEST_RUN(test_result);
    EVR_TEST_RUN(test_dies);
    EVR_TEST_RUN(test_killed);
    EVR_TEST_RUN(test_cancel);
    EVR_TEST_RUN(test_cancel_no_wait);
    EVR_TEST_RUN(test_unwatched);
    EVR_TEST_RUN(test_fork_fails);
    EVR_TEST_RUN(test_cancel_dir);
    EVR_TEST_RUN(test_abandon);
    EVR_TEST_RUN(test_child_sigterm);
    EVR_TEST_END();
}
