/*  test_conmon_exit.c: evr_conmon_exit: the exit and OOM files learnt
    from conmon's command line (both argument forms; the bundle must be
    the one asked for; a missing, repeated or unsafe value, or a line not
    of /proc's form, gives none; the values of the exit command's
    arguments do not count), from a live process's /proc/PID/cmdline (this
    program run again as a fake conmon), and the exit read from the file:
    not there yet, conmon's decimal text, the OOM mark, and anything else
    refused. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_conmon_exit.h"
#include "evr_test.h"

#define S_ID "b494f2dd783264db4cbbc05c6b9fbeba118373ce8ac417e4457cfe60707a5840"
#define S_BUNDLE "/var/lib/containers/storage/overlay-containers/" S_ID "/userdata"

static char s_dir[64];

/*  The exit file learnt from the arguments in list (NULL-ended), as
    /proc/PID/cmdline holds them; NULL when none is. */
static char *
s_learn(const char *const *list, const char *bundle)
{
    char buf[4096];
    size_t len = 0;
    for (const char *const *a = list; *a; a++) {
        size_t n = strlen(*a) + 1;
        memcpy(buf + len, *a, n);
        len += n;
    }
    evr_conmon_exit_t *e = evr_conmon_exit_parse(buf, len, bundle);
    char *file = e ? strdup(evr_conmon_exit_file(e)) : NULL;
    evr_conmon_exit_destroy(&e);
    return file;
}

static void
test_parse(void)
{
    const char *podman[] = { "/usr/bin/conmon", "--api-version", "1", "-c", S_ID, "-u", S_ID,
                             "-r", "/usr/bin/runc", "-b", S_BUNDLE, "-n", "evrun-x",
                             "--exit-dir", "/run/libpod/exits", "--full-attach",
                             "--exit-command", "/usr/bin/podman", "--exit-command-arg", "-c",
                             "--exit-command-arg", "--exit-dir", "--exit-command-arg", "-b",
                             "--runtime-arg", "-c", "--exit-command-arg", S_ID, NULL };
    char *f = s_learn(podman, S_BUNDLE);
    CHECK_STR(f, "/run/libpod/exits/" S_ID);
    free(f);
    CHECK(s_learn(podman, S_BUNDLE "x") == NULL);   /* the conmon of another bundle */
    const char *eq[] = { "conmon", "--cid=abc", "--bundle=/b", "--exit-dir=/e/x", NULL };
    f = s_learn(eq, "/b");
    CHECK_STR(f, "/e/x/abc");
    free(f);
    const char *no_id[] = { "conmon", "-b", "/b", "--exit-dir", "/e", NULL };
    const char *no_dir[] = { "conmon", "-c", "a", "-b", "/b", NULL };
    const char *no_b[] = { "conmon", "-c", "a", "--exit-dir", "/e", NULL };
    const char *two_ids[] = { "conmon", "-c", "a", "--cid=b", "-b", "/b", "--exit-dir", "/e",
                              NULL };
    const char *two_dirs[] = { "conmon", "-c", "a", "-b", "/b", "--exit-dir", "/e",
                               "--exit-dir=/f", NULL };
    const char *last[] = { "conmon", "-b", "/b", "--exit-dir", "/e", "-c", NULL };
    const char *slash[] = { "conmon", "-c", "../a", "-b", "/b", "--exit-dir", "/e", NULL };
    const char *dots[] = { "conmon", "-c", "..", "-b", "/b", "--exit-dir", "/e", NULL };
    const char *empty[] = { "conmon", "--cid=", "-b", "/b", "--exit-dir", "/e", NULL };
    const char *rel[] = { "conmon", "-c", "a", "-b", "/b", "--exit-dir", "e", NULL };
    const char *const *bad[] = { no_id, no_dir, no_b, two_ids, two_dirs, last, slash, dots,
                                 empty, rel };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = s_learn(bad[i], "/b");
        if (f)
            fprintf(stderr, "case %zu: learnt %s\n", i, f);
        CHECK(f == NULL);
        free(f);
    }
    /* not /proc's form: no NUL at the end, nothing, too long */
    const char line[] = "conmon\0-c\0a\0-b\0/b\0--exit-dir\0/e";
    CHECK(evr_conmon_exit_parse(line, sizeof line - 1, "/b") == NULL);
    evr_conmon_exit_t *e = evr_conmon_exit_parse(line, sizeof line, "/b");
    CHECK(e != NULL);
    evr_conmon_exit_destroy(&e);
    CHECK(evr_conmon_exit_parse(line, 0, "/b") == NULL);
    CHECK(evr_conmon_exit_parse(NULL, 5, "/b") == NULL);
    char *big = calloc(1, EVR_CONMON_EXIT_ARGS_MAX + 1);
    memcpy(big, line, sizeof line);
    CHECK(evr_conmon_exit_parse(big, EVR_CONMON_EXIT_ARGS_MAX + 1, "/b") == NULL);
    e = evr_conmon_exit_parse(big, EVR_CONMON_EXIT_ARGS_MAX, "/b");   /* NULs after it */
    CHECK(e != NULL);
    evr_conmon_exit_destroy(&e);
    evr_conmon_exit_destroy(&e);   /* NULL is fine */
    free(big);
}

/*  Writes text (len bytes) to s_dir/name. */
static void
s_write(const char *name, const char *text, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, text, len) == (ssize_t) len);
    close(fd);
}

/*  The exit read from s_dir/exits/c with bundle s_dir/b. */
static int
s_read(int64_t *code, bool *oom)
{
    char b[128], line[512];
    snprintf(b, sizeof b, "%s/b", s_dir);
    int n = snprintf(line, sizeof line, "conmon%c-c%cc%c-b%c%s%c--exit-dir%c%s/exits", 0, 0, 0,
                     0, b, 0, 0, s_dir);
    evr_conmon_exit_t *e = evr_conmon_exit_parse(line, (size_t) n + 1, b);
    CHECK(e != NULL);
    if (!e)
        return -2;
    *code = -99;
    *oom = false;
    int r = evr_conmon_exit_read(e, code, oom);
    evr_conmon_exit_destroy(&e);
    return r;
}

static void
test_read(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/exits", s_dir);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof path, "%s/b", s_dir);
    CHECK(mkdir(path, 0700) == 0);
    int64_t code;
    bool oom;
    CHECK(s_read(&code, &oom) == 0);   /* not written yet */
    s_write("exits/c", "7", 1);
    CHECK(s_read(&code, &oom) == 1 && code == 7 && !oom);
    s_write("b/oom", "", 0);
    s_write("exits/c", "137", 3);
    CHECK(s_read(&code, &oom) == 1 && code == 137 && oom);
    snprintf(path, sizeof path, "%s/b/oom", s_dir);
    unlink(path);
    CHECK(s_read(&code, &oom) == 1 && code == 137 && !oom);
    /* podman after 4.3 has conmon write the mark in its --persist-dir */
    snprintf(path, sizeof path, "%s/p", s_dir);
    CHECK(mkdir(path, 0700) == 0);
    s_write("p/oom", "", 0);
    char b[128], line[512];
    snprintf(b, sizeof b, "%s/b", s_dir);
    int n = snprintf(line, sizeof line, "conmon%c-c%cc%c-b%c%s%c--exit-dir%c%s/exits%c"
                     "--persist-dir%c%s/p", 0, 0, 0, 0, b, 0, 0, s_dir, 0, 0, s_dir);
    evr_conmon_exit_t *e = evr_conmon_exit_parse(line, (size_t) n + 1, b);
    CHECK(e != NULL && evr_conmon_exit_read(e, &code, &oom) == 1 && code == 137 && oom);
    evr_conmon_exit_destroy(&e);
    snprintf(path, sizeof path, "%s/p/oom", s_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/p", s_dir);
    rmdir(path);
    s_write("b/oom", "", 0);
    s_write("exits/c", "-1", 2);
    CHECK(s_read(&code, &oom) == 1 && code == -1);
    s_write("exits/c", "2147483647", 10);
    CHECK(s_read(&code, &oom) == 1 && code == INT32_MAX);
    s_write("exits/c", "-2147483648", 11);
    CHECK(s_read(&code, &oom) == 1 && code == INT32_MIN);
    const char *bad[] = { "", "2147483648", "-2147483649", "12345678901", "7\n", " 7", "-",
                          "x", "0x1", "1234567890123456789012345678901234567890", "--1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_write("exits/c", bad[i], strlen(bad[i]));
        int r = s_read(&code, &oom);
        if (r != -1)
            fprintf(stderr, "\"%s\": %d\n", bad[i], r);
        CHECK(r == -1);
    }
    s_write("exits/c", "3\0", 2);   /* a NUL in it */
    CHECK(s_read(&code, &oom) == -1);
    char f[128], t[128];
    snprintf(f, sizeof f, "%s/exits/c", s_dir);
    snprintf(t, sizeof t, "%s/exits/t", s_dir);
    unlink(f);
    CHECK(mkfifo(f, 0600) == 0);   /* not a regular file: never blocks */
    CHECK(s_read(&code, &oom) == -1);
    unlink(f);
    s_write("exits/t", "0", 1);
    CHECK(symlink(t, f) == 0);     /* no link followed */
    CHECK(s_read(&code, &oom) == -1);
    unlink(f);
    unlink(t);
    CHECK(mkdir(f, 0700) == 0);
    CHECK(s_read(&code, &oom) == -1);
    rmdir(f);
    snprintf(f, sizeof f, "%s/b/oom", s_dir);
    unlink(f);
    snprintf(f, sizeof f, "%s/b", s_dir);
    rmdir(f);
    snprintf(f, sizeof f, "%s/exits", s_dir);
    rmdir(f);
}

/*  Whether PID's command line is already the fake conmon's. A CLOEXEC
    pipe closes inside exec before the new image's arguments are in
    place, so /proc/PID/cmdline can still read empty just after. */
static bool
s_execed(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int) pid);
    for (int i = 0; i < 1000; i++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (n > 0) {
                buf[n] = '\0';
                if (memmem(buf, (size_t) n, "--fake-conmon", 13))
                    return true;
            }
        }
        usleep(10000);
    }
    return false;
}

/*  A live process with conmon's arguments: this program again, run as a
    fake conmon (it waits to be killed). */
static void
test_from_proc(void)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0);
    if (n <= 0)
        return;
    self[n] = '\0';
    char exits[128], none[128], want[256];
    snprintf(exits, sizeof exits, "%s/exits", s_dir);
    snprintf(none, sizeof none, "%s/none", s_dir);
    snprintf(want, sizeof want, "%s/%s", exits, S_ID);
    CHECK(mkdir(exits, 0700) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "--fake-conmon", "-c", S_ID, "-b", S_BUNDLE, "--exit-dir", exits,
              (char *) NULL);
        _exit(127);
    }
    pid_t pid2 = fork();   /* its exit dir not there (not mounted where the runner is) */
    if (pid2 == 0) {
        execl(self, self, "--fake-conmon", "-c", S_ID, "-b", S_BUNDLE, "--exit-dir", none,
              (char *) NULL);
        _exit(127);
    }
    CHECK(s_execed(pid));
    CHECK(s_execed(pid2));
    evr_conmon_exit_t *e = evr_conmon_exit_new(pid, S_BUNDLE);
    CHECK(e != NULL);
    CHECK_STR(e ? evr_conmon_exit_file(e) : NULL, want);
    evr_conmon_exit_destroy(&e);
    CHECK(evr_conmon_exit_new(pid2, S_BUNDLE) == NULL);
    kill(pid2, SIGKILL);
    waitpid(pid2, NULL, 0);
    rmdir(exits);
    CHECK(evr_conmon_exit_new(pid, "/elsewhere") == NULL);
    CHECK(evr_conmon_exit_new(getpid(), S_BUNDLE) == NULL);   /* not a conmon */
    CHECK(evr_conmon_exit_new(0, S_BUNDLE) == NULL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK(evr_conmon_exit_new(pid, S_BUNDLE) == NULL);   /* gone */
}

int
main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--fake-conmon")) {
        for (;;)
            pause();
    }
    snprintf(s_dir, sizeof s_dir, "/tmp/evr-conmon-exit-XXXXXX");
    if (!mkdtemp(s_dir)) {
        perror("test_conmon_exit: mkdtemp");
        return 1;
    }
    EVR_TEST_RUN(test_parse);
    EVR_TEST_RUN(test_read);
    EVR_TEST_RUN(test_from_proc);
    rmdir(s_dir);
    EVR_TEST_END();
}
