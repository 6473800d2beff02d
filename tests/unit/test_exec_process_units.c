/*  test_exec_process_units: the process executor's units beyond running
    them (test_exec_process.c): an environment that keeps the runner's own
    out, limits (one that cannot be set), damaged unit files (env without
    its last NUL, pid), a lost step, the supervisor's start where
    close_range fails (seccomp), and recovery: a second executor on the
    same state directory (a restarted runner) finds a step the first left
    running, reads its output from offsets and waits for its end; a wait
    that sleeps with the loop (its CPU time and loop turns bounded).

    The supervisor of each step is this binary itself (--shim), as it is
    evrun-runner in production: main() hands over to evr_shim_main.
*/
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_ptest.h"
#include "evr_shim.h"

/*  Exactly the step's env over PATH and HOME: a variable of the runner
    (a secret of its own) does not reach the step. */
static void
test_env_isolated(void)
{
    s_env_t e;
    s_setup(&e);
    setenv("EVR_TEST_RUNNER_SECRET", "leaked", 1);
    evr_strmap_t env = { 0 };
    evr_strmap_set(&env, "GREETING", "hello world");
    evr_strmap_set(&env, "EMPTY", "");
    s_tail_t t = { 0 };
    s_run(&e, "evrun-JOB1-env-1", "env | sort; pwd; grep -E '^Sig(Ign|Blk)' /proc/self/status",
          &env, &t);
    const char *out = (const char *) t.out[0].p;
    CHECK(!strstr(out, "EVR_TEST_RUNNER_SECRET") && !strstr(out, "leaked"));
    CHECK_CONTAINS(out, "GREETING=hello world\n");
    CHECK_CONTAINS(out, "EMPTY=\n");
    CHECK_CONTAINS(out, "PATH=" EVR_EXEC_PROCESS_PATH "\n");
    char want[256];
    snprintf(want, sizeof want, "HOME=%s/work/JOB1\n", e.dir);
    CHECK_CONTAINS(out, want);
    snprintf(want, sizeof want, "\n%s/work/JOB1\n", e.dir);
    CHECK_CONTAINS(out, want);   /* pwd */
    /* no signal blocked or ignored (the runner ignores SIGPIPE, its loop
       blocks what it takes through a signalfd) */
    CHECK_CONTAINS(out, "SigBlk:\t0000000000000000\n");
    CHECK_CONTAINS(out, "SigIgn:\t0000000000000000\n");
    /* the environment file is gone once the step runs */
    char envf[160];
    snprintf(envf, sizeof envf, "%s/units/evrun-JOB1-env-1/env", e.dir);
    CHECK(access(envf, F_OK) != 0);
    /* the step's own PATH wins */
    evr_strmap_set(&env, "PATH", "/bin");
    s_tail_t t2 = { 0 };
    s_run(&e, "evrun-JOB1-env-2", "echo $PATH", &env, &t2);
    CHECK_STR((char *) t2.out[0].p, "/bin\n");
    unsetenv("EVR_TEST_RUNNER_SECRET");
    evr_strmap_free(&env);
    s_tail_free(&t);
    s_tail_free(&t2);
    s_teardown(&e);
}

/*  EVRUN_OUTPUT is the runner's, whatever the step's env says (README
    "Step outputs": env cannot change it), and the step has it once: a
    step's own EVRUN_OUTPUT went after it, and the shell takes the later
    one, so the step wrote its outputs where the runner never reads. */
static void
test_env_output(void)
{
    s_env_t e;
    s_setup(&e);
    evr_strmap_t env = { 0 };
    evr_strmap_set(&env, "EVRUN_OUTPUT", "mine");
    evr_exec_spec_t spec = { .name = "evrun-JOB1-out-1", .job_id = "JOB1",
                             .script = "echo \"$EVRUN_OUTPUT\"; env | grep -c '^EVRUN_OUTPUT='",
                             .env = &env, .output = ".evrun-output-out-1-0123456789abcdef" };
    s_res_t r;
    CALL(&e, r, create, &spec);
    CHECK(r.r.rc == EVR_OK);
    s_tail_t t = { .ex = e.ex, .start = spec.name };
    void *h = e.ex->ops->attach(e.ex, spec.name, s_on_out, s_on_head, s_on_done, &t);
    CHECK(h != NULL);
    s_until(e.loop, &t.done.called);
    s_until(e.loop, &t.started.called);
    char want[256];
    snprintf(want, sizeof want, "%s/work/JOB1/.evrun-output-out-1-0123456789abcdef\n1\n",
             e.dir);
    CHECK_STR(t.out[0].p ? (char *) t.out[0].p : "", want);
    evr_strmap_free(&env);
    s_tail_free(&t);
    s_teardown(&e);
}

/*  An environment file whose last entry has no NUL after it (made by
    hand: the runner always ends each): the supervisor passes every entry,
    the last one too, in a NULL-terminated list. */
static void
test_env_file_unterminated(void)
{
    s_env_t e;
    s_setup(&e);
    s_create(&e, "evrun-JOB1-envf-1", "env", NULL);
    char path[160];
    snprintf(path, sizeof path, "%s/units/evrun-JOB1-envf-1/env", e.dir);
    int fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK(write(fd, "A=1\0B=2\0C=3", 11) == 11);
    close(fd);
    s_tail_t t = { .ex = e.ex, .start = "evrun-JOB1-envf-1" };
    e.ex->ops->attach(e.ex, "evrun-JOB1-envf-1", s_on_out, s_on_head, s_on_done, &t);
    s_until(e.loop, &t.done.called);
    CHECK(t.started.r.rc == EVR_OK);
    if (t.started.r.rc)
        fprintf(stderr, "  start: %s\n", t.started.msg);
    const char *out = t.out[0].p ? (const char *) t.out[0].p : "";
    CHECK_CONTAINS(out, "A=1\n");
    CHECK_CONTAINS(out, "B=2\n");
    CHECK_CONTAINS(out, "C=3\n");
    CHECK(s_wait(&e, "evrun-JOB1-envf-1") == 0);
    s_tail_free(&t);
    s_teardown(&e);
}

/*  A step's resource limits: set, soft and hard, in its processes. */
static void
test_limits(void)
{
    s_env_t e;
    s_setup(&e);
    evr_limits_t lim = { .present = true, .nofile = 64, .nproc = 500, .cpu = 1500,
                         .memory = 512u << 20 };
    evr_exec_spec_t spec = { .name = "evrun-JOB1-lim-1", .job_id = "JOB1",
                             .script = "cat /proc/self/limits", .limits = &lim };
    s_res_t r;
    CALL(&e, r, create, &spec);
    CHECK(r.r.rc == EVR_OK);
    s_tail_t t = { .ex = e.ex, .start = "evrun-JOB1-lim-1" };
    e.ex->ops->attach(e.ex, "evrun-JOB1-lim-1", s_on_out, s_on_head, s_on_done, &t);
    s_until(e.loop, &t.done.called);
    const char *out = t.out[0].p ? (const char *) t.out[0].p : "";
    static const char *const want[][2] = {
        { "Max open files", "64                   64" },
        { "Max processes", "500                  500" },
        { "Max cpu time", "2                    2" },   /* 1.5 s: whole seconds, up */
        { "Max address space", "536870912            536870912" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(want); i++) {
        const char *line = strstr(out, want[i][0]);
        CHECK(line && !strncmp(line + 26, want[i][1], strlen(want[i][1])));
        if (!line || strncmp(line + 26, want[i][1], strlen(want[i][1])))
            fprintf(stderr, "  %s: want %s in\n%s", want[i][0], want[i][1], out);
    }
    /* a limit that cannot be set: the start fails, naming it and its value */
    evr_limits_t big = { .present = true, .nofile = 99999999999ull };
    evr_exec_spec_t spec3 = { .name = "evrun-JOB1-lim-3", .job_id = "JOB1", .script = "true",
                              .limits = &big };
    CALL(&e, r, create, &spec3);
    CHECK(r.r.rc == EVR_OK);
    CALL(&e, r, start, "evrun-JOB1-lim-3");
    CHECK(r.r.rc != EVR_OK);
    /* ... and what to do: over the host's fs.nr_open, its figure named */
    unsigned long long nr_open = 0;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    CHECK(f && fscanf(f, "%llu", &nr_open) == 1);
    if (f)
        fclose(f);
    char want3[512];
    snprintf(want3, sizeof want3, "starting evrun-JOB1-lim-3: limits.nofile = 99999999999: "
             "setrlimit(RLIMIT_NOFILE): Operation not permitted: over this host's fs.nr_open "
             "(%llu), the most a process may have: give %llu or less, or raise it (sysctl -w "
             "fs.nr_open=N)", nr_open, nr_open);
    CHECK_STR(r.msg, want3);
    CALL(&e, r, inspect, "evrun-JOB1-lim-3");
    CHECK(r.r.state == EVR_EXEC_CREATED);
    /* none asked: the supervisor's own limits */
    s_tail_t t2 = { 0 };
    s_run(&e, "evrun-JOB1-lim-2", "cat /proc/self/limits", NULL, &t2);
    CHECK(!strstr((char *) t2.out[0].p, "Max open files            64 "));
    s_tail_free(&t);
    s_tail_free(&t2);
    s_teardown(&e);
}

/*  The CPU seconds (user + system) this process has used. */
static double
s_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
           + (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*  A wait on a step that runs a second sleeps with the loop: its own look
    at the unit (the lock tested) wakes nothing, so the loop turns a few
    times (the watch's events, the backstop), not thousands, and the
    runner's CPU time stays far below the step's run time. */
static void
test_wait_idles(void)
{
    s_env_t e;
    s_setup(&e);
    s_tail_t t = { 0 };
    s_start_ready(&e, "evrun-JOB1-idle-1", "echo ready; sleep 1", &t);
    s_res_t w = { 0 };
    e.ex->ops->wait(e.ex, "evrun-JOB1-idle-1", s_on, &w);
    double cpu0 = s_cpu_s();
    long turns = 0;
    uint64_t end = evr_mono_ns() + 5000000000ull;
    while (!w.called && evr_mono_ns() < end) {
        int n = evr_loop_once(e.loop, 1000);
        turns += n > 0 ? n : 0;
    }
    double cpu = s_cpu_s() - cpu0;
    CHECK(w.called && w.r.rc == EVR_OK && w.r.exit_code == 0);
    CHECK(turns < 100);
    CHECK(cpu < 0.3);
    if (getenv("EVR_TEST_SHOW") || turns >= 100 || cpu >= 0.3)
        fprintf(stderr, "  %ld callbacks, %.3f s of CPU during a 1 s wait\n", turns, cpu);
    s_until(e.loop, &t.done.called);
    s_tail_free(&t);
    s_teardown(&e);
}

/*  The pid of the supervisor of the unit dir (its command line is
    "BINARY --shim DIR"), or 0. */
static long
s_shim_pid(const char *dir)
{
    DIR *d = opendir("/proc");
    long found = 0;
    struct dirent *e;
    while (d && !found && (e = readdir(d))) {
        long pid = atol(e->d_name);
        char path[64], cmd[512];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        FILE *f = pid > 0 ? fopen(path, "r") : NULL;
        if (!f)
            continue;
        size_t n = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        cmd[n] = '\0';
        size_t a = strlen(cmd) + 1;
        if (a < n && !strcmp(cmd + a, "--shim") && a + 7 < n && !strcmp(cmd + a + 7, dir))
            found = pid;
    }
    if (d)
        closedir(d);
    return found;
}

/*  Processes of group pgid alive (zombies not counted). */
static int
s_group_alive(long pgid)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long pid = atol(e->d_name);
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = pid > 0 ? fopen(path, "r") : NULL;
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *p = strrchr(buf, ')');
        char state;
        long ppid, pgrp;
        if (p && sscanf(p + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3 && pgrp == pgid
            && state != 'Z' && state != 'X')
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/*  A supervisor killed (SIGKILL, by hand): the unit is lost, and said so
    with what its log said (the unit goes with the step: no path to it);
    what is left of the step's group is killed (nothing else would end
    it: it ran on after its job had ended). */
static void
test_lost(void)
{
    s_env_t e;
    s_setup(&e);
    s_tail_t t = { 0 };
    s_start_ready(&e, "evrun-JOB1-lost-1", "echo ready; sleep 30", &t);
    char dir[160];
    snprintf(dir, sizeof dir, "%s/units/evrun-JOB1-lost-1", e.dir);
    long shim = s_shim_pid(dir), step = atol(t.started.id);
    CHECK(shim > 1 && step > 1);
    s_res_t w = { 0 };
    e.ex->ops->wait(e.ex, "evrun-JOB1-lost-1", s_on, &w);
    CHECK(kill((pid_t) shim, SIGKILL) == 0);
    s_until(e.loop, &w.called);
    CHECK(w.r.rc != EVR_OK);
    CHECK(w.r.lost);   /* the step is lost, not failed */
    CHECK_CONTAINS(w.msg, "ended without writing its exit status");
    CHECK_CONTAINS(w.msg, "what was left of the step's processes was killed");
    CHECK(!strstr(w.msg, "see ") && !strstr(w.msg, "supervisor.log:"));
    for (int i = 0; i < 100 && s_group_alive(step); i++)
        usleep(20000);
    CHECK(s_group_alive(step) == 0);
    s_until(e.loop, &t.done.called);
    CHECK(t.done.r.rc != EVR_OK);
    s_res_t r;
    CALL(&e, r, inspect, "evrun-JOB1-lost-1");
    CHECK(r.r.state == EVR_EXEC_EXITED && r.r.exit_code == -1);
    CHECK(r.r.lost);   /* a recovery calls the step lost, not collected */
    /* the hint names the group, to be checked first (its id may have been
       reused since), and the unit's directory */
    char hint[256], want[256];
    e.ex->ops->remove_hint(e.ex, "evrun-JOB1-lost-1", hint, sizeof hint);
    snprintf(want, sizeof want,
             "check ps -o pid,pgid,lstart,args -g %ld: if still the step's group (started ", step);
    CHECK_CONTAINS(hint, want);
    snprintf(want, sizeof want, "), kill -KILL -- -%ld; then rm -rf %s", step, dir);
    CHECK_CONTAINS(hint, want);
    CALL(&e, r, remove, "evrun-JOB1-lost-1");
    CHECK(r.r.rc == EVR_OK);
    s_tail_free(&t);
    s_teardown(&e);
}

/*  A damaged pid file while the supervisor lives (its lock held): the
    unit runs (its pid not known), it is neither an error nor lost, and
    its end is found as ever. */
static void
test_pid_damaged(void)
{
    s_env_t e;
    s_setup(&e);
    const char *name = "evrun-JOB1-pidd-1";
    s_tail_t t = { 0 };
    s_start_ready(&e, name, "echo ready; while [ ! -f go ]; do sleep 0.01; done", &t);
    char path[160];
    snprintf(path, sizeof path, "%s/units/%s/pid", e.dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("garbage\n", f);
        fclose(f);
    }
    s_res_t r;
    CALL(&e, r, inspect, name);
    CHECK(r.r.rc == EVR_OK && r.r.state == EVR_EXEC_RUNNING);
    if (r.r.rc)
        fprintf(stderr, "  inspect: %s\n", r.msg);
    char go[128];
    snprintf(go, sizeof go, "%s/work/JOB1/go", e.dir);
    close(open(go, O_CREAT | O_WRONLY, 0600));
    CHECK(s_wait(&e, name) == 0);
    CALL(&e, r, inspect, name);
    CHECK(r.r.rc == EVR_OK && r.r.state == EVR_EXEC_EXITED && r.r.exit_code == 0);
    s_until(e.loop, &t.done.called);
    CHECK(t.done.r.rc == EVR_OK);
    s_tail_free(&t);
    s_teardown(&e);
}

/*  Makes close_range(2) fail with ENOSYS in this process and what it
    starts (as on a kernel older than 5.9); false when seccomp is not to
    be had. */
static bool
s_no_close_range(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_close_range, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = EVR_ARRAY_LEN(f), .filter = f };
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
           && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

/*  Where close_range fails, the supervisor is still started with no fd of
    the runner's but its report pipe: an fd left open without close-on-
    exec (50 here) does not reach it.  The step lists its parent's (the
    supervisor's) fds. */
static void
test_spawn_without_close_range(void)
{
#if defined(__x86_64__) && defined(__NR_close_range)
    s_env_t e;
    s_setup(&e);
    const char *name = "evrun-JOB1-fds-1";
    s_create(&e, name, "ls /proc/$PPID/fd | sort -n", NULL);
    char dir[160];
    snprintf(dir, sizeof dir, "%s/units/%s", e.dir, name);
    pid_t c = fork();
    if (c == 0) {
        if (dup2(open("/dev/null", O_RDONLY), 50) != 50 || !s_no_close_range())
            _exit(2);
        int rfd = -1;
        evr_err_t err;
        if (evr_shim_spawn(dir, &rfd, &err))
            _exit(3);
        char line[128] = "";
        size_t n = 0;
        struct pollfd pfd = { .fd = rfd, .events = POLLIN };
        while (n < sizeof line - 1 && poll(&pfd, 1, 5000) > 0) {
            ssize_t r = read(rfd, line + n, sizeof line - 1 - n);
            if (r <= 0)
                break;
            n += (size_t) r;
        }
        _exit(strncmp(line, "started ", 8) ? 4 : 0);
    }
    int status = -1;
    CHECK(c > 0 && waitpid(c, &status, 0) == c);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
        fprintf(stderr, "  (skipped: no seccomp here)\n");
    else {
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(s_wait(&e, name) == 0);
        char path[200], out[1024] = "";
        snprintf(path, sizeof path, "%s/stdout", dir);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
        out[n] = '\0';
        if (f)
            fclose(f);
        CHECK_CONTAINS(out, "0\n1\n2\n");
        CHECK(!strstr(out, "\n50\n"));
        if (strstr(out, "\n50\n"))
            fprintf(stderr, "  the supervisor's fds:\n%s", out);
    }
    s_teardown(&e);
#endif
}

/*  Logs from offsets, collected into t. */
static void
s_logs(s_env_t *e, evr_exec_t *ex, const char *name, uint64_t o, uint64_t er, bool so_far,
       s_tail_t *t)
{
    memset(t, 0, sizeof *t);
    uint64_t from[2] = { o, er };
    ex->ops->logs(ex, name, from, so_far, s_on_out, s_on_done, t);
    CHECK(!t->done.called);
    s_until(e->loop, &t->done.called);
    CHECK(t->done.r.rc == EVR_OK);
}

/*  The runner dies (its executor destroyed) while the step runs; a new
    one on the same state directory finds it running, reads its output
    from offsets, and waits for its end. */
static void
test_recovery(void)
{
    s_env_t e;
    s_setup(&e);
    const char *name = "evrun-JOB1-rec-1";
    s_tail_t t = { 0 };
    s_start_ready(&e, name, "echo ready; echo err1 >&2; while [ ! -f go ]; do sleep 0.01; done; "
                            "echo second; echo err2 >&2; exit 7", &t);
    while (t.out[1].n < 5 && !t.done.called)
        evr_loop_once(e.loop, 20);
    evr_exec_destroy(&e.ex);   /* the runner is gone; its attach with it */
    CHECK(!t.done.called);
    evr_err_t err;
    e.ex = evr_exec_process_new(e.dir, e.loop, &err);
    CHECK(e.ex != NULL);
    s_res_t r;
    CALL(&e, r, inspect, name);
    CHECK(r.r.state == EVR_EXEC_RUNNING);
    CHECK_STR(r.id, t.started.id);
    s_tail_t l = { 0 };
    s_logs(&e, e.ex, name, 0, 0, true, &l);
    CHECK_STR((char *) l.out[0].p, "ready\n");
    CHECK_STR((char *) l.out[1].p, "err1\n");
    s_tail_free(&l);
    s_logs(&e, e.ex, name, 2, 1, true, &l);
    CHECK_STR((char *) l.out[0].p, "ady\n");
    CHECK_STR((char *) l.out[1].p, "rr1\n");
    s_tail_free(&l);
    s_logs(&e, e.ex, name, 6, 5, true, &l);
    CHECK(l.out[0].n == 0 && l.out[1].n == 0);
    s_tail_free(&l);
    char go[128];
    snprintf(go, sizeof go, "%s/work/JOB1/go", e.dir);
    uint64_t before = evr_now_ns();
    close(open(go, O_CREAT | O_WRONLY, 0600));
    CHECK(s_wait(&e, name) == 7);
    /* its end's time as the supervisor read it (`exit` says "at NS"), not
       the file's mtime, the kernel's coarse clock a tick early: a
       recovery compares it with the step's timeout */
    CALL(&e, r, inspect, name);
    CHECK(r.r.state == EVR_EXEC_EXITED);
    CHECK(r.r.finished_at >= before && r.r.finished_at <= evr_now_ns());
    char exitf[256], text[256];
    snprintf(exitf, sizeof exitf, "%s/units/%s/exit", e.dir, name);
    FILE *f = fopen(exitf, "r");
    size_t tn = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[tn] = '\0';
    if (f)
        fclose(f);
    CHECK_CONTAINS(text, "\nat ");
    s_logs(&e, e.ex, name, 6, 5, false, &l);
    CHECK_STR((char *) l.out[0].p, "second\n");
    CHECK_STR((char *) l.out[1].p, "err2\n");
    s_tail_free(&l);
    s_logs(&e, e.ex, name, 0, 0, false, &l);
    CHECK_STR((char *) l.out[0].p, "ready\nsecond\n");
    CHECK_STR((char *) l.out[1].p, "err1\nerr2\n");
    s_tail_free(&l);
    /* a created unit is found created, and starts */
    s_create(&e, "evrun-JOB1-rec-2", "echo late", NULL);
    evr_exec_destroy(&e.ex);
    e.ex = evr_exec_process_new(e.dir, e.loop, &err);
    CALL(&e, r, inspect, "evrun-JOB1-rec-2");
    CHECK(r.r.state == EVR_EXEC_CREATED);
    s_tail_t t2 = { 0 };
    t2.ex = e.ex;
    t2.start = "evrun-JOB1-rec-2";
    e.ex->ops->attach(e.ex, "evrun-JOB1-rec-2", s_on_out, s_on_head, s_on_done, &t2);
    s_until(e.loop, &t2.done.called);
    CHECK_STR((char *) t2.out[0].p, "late\n");
    s_tail_free(&t);
    s_tail_free(&t2);
    s_teardown(&e);
}

/*  Detach ends an attach with an error, once; destroy drops what is in
    flight without calling back. */
static void
test_detach_and_destroy(void)
{
    s_env_t e;
    s_setup(&e);
    s_tail_t t = { 0 };
    s_start_ready(&e, "evrun-JOB1-d-1", "echo ready; sleep 30", &t);
    s_tail_t t2 = { 0 };
    void *h2 = e.ex->ops->logs(e.ex, "evrun-JOB1-d-1", (uint64_t[2]) { 0, 0 }, true, s_on_out,
                               s_on_done, &t2);
    e.ex->ops->detach(e.ex, h2);
    s_until(e.loop, &t2.done.called);
    CHECK(t2.done.r.rc != EVR_OK && t2.done.calls == 1);
    CHECK(t2.out[0].n == 0);
    s_res_t w = { 0 };
    e.ex->ops->wait(e.ex, "evrun-JOB1-d-1", s_on, &w);
    s_res_t k;
    CALL(&e, k, stop, "evrun-JOB1-d-1", -1);
    CHECK(k.r.rc == EVR_OK);
    s_until(e.loop, &w.called);
    CHECK(w.r.exit_code == 128 + SIGKILL);
    s_res_t late = { 0 };
    e.ex->ops->inspect(e.ex, "evrun-JOB1-d-1", s_on, &late);
    evr_exec_destroy(&e.ex);
    evr_loop_once(e.loop, 10);
    CHECK(!late.called);
    s_tail_free(&t);
    s_tail_free(&t2);
    s_teardown(&e);
}

/*  Many leftovers swept aside at once: each listed once, though their
    new names (.rm-sweep-XXXXXX) land in the directory being read (ext4's
    hash order listed some again past a few hundred). */
static void
test_sweep_aside_once(void)
{
    char dir[] = "/tmp/evr-sweep-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    enum { N = 3000 };
    for (int i = 0; i < N; i++) {
        char p[96];
        snprintf(p, sizeof p, "%s/.rm-JOB%d-1-%d", dir, i, i);
        CHECK(mkdir(p, 0700) == 0);
    }
    char **paths = NULL;
    size_t n = 0;
    evr_unit_sweep_aside(dir, &paths, &n);
    CHECK(n == N);
    size_t swept = 0;
    for (size_t i = 0; i < n; i++) {
        swept += strstr(paths[i], "/.rm-sweep-") != NULL;
        CHECK(rmdir(paths[i]) == 0);    /* each exists, and once */
        free(paths[i]);
    }
    free(paths);
    CHECK(swept == N);
    CHECK(rmdir(dir) == 0);
}

int
main(int argc, char **argv)
{
    if (evr_shim_wanted(argc, argv))
        return evr_shim_main(argv[2]);
    signal(SIGPIPE, SIG_IGN);   /* as the runner: the steps get it back */
    EVR_TEST_RUN(test_env_isolated);
    EVR_TEST_RUN(test_env_output);
    EVR_TEST_RUN(test_env_file_unterminated);
    EVR_TEST_RUN(test_limits);
    EVR_TEST_RUN(test_lost);
    EVR_TEST_RUN(test_pid_damaged);
    EVR_TEST_RUN(test_spawn_without_close_range);
    EVR_TEST_RUN(test_recovery);
    EVR_TEST_RUN(test_sweep_aside_once);
    EVR_TEST_RUN(test_detach_and_destroy);
    EVR_TEST_RUN(test_wait_idles);
    EVR_TEST_END();
}
