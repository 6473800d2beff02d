/*  test_lock: the state directory's lock (sys/evr_lock.c): taken once,
    a second taker (here another open of the file in the same process,
    as flock locks belong to the open file) refused naming the pid
    written in the file, free again once released; a child process sees
    the same; a path that cannot be opened is an I/O error; a dead
    holder's child that still holds it is waited for. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_lock.h"
#include "evr_test.h"

static void
test_lock(void)
{
    char dir[] = "/tmp/evr-test-lock-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = evr_asprintf("%s/evrun.lock", dir);
    evr_lock_t *a = NULL, *b = NULL;
    evr_err_t err;
    CHECK(evr_lock_take(path, "evrun-runner", &a, &err) == EVR_OK && a);
    CHECK(evr_lock_take(path, "evrun-runner", &b, &err) == EVR_ERR_STATE && !b);
    char want[64];
    snprintf(want, sizeof want, "in use by evrun-runner pid %ld", (long) getpid());
    CHECK_CONTAINS(err.msg, want);
    CHECK_CONTAINS(err.msg, path);
    pid_t pid = fork();
    if (pid == 0) {   /* another process: refused too */
        evr_lock_t *c = NULL;
        evr_err_t e;
        _exit(evr_lock_take(path, "evrun-runner", &c, &e) == EVR_ERR_STATE ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    evr_lock_destroy(&a);
    CHECK(a == NULL);
    evr_lock_destroy(&a);   /* NULL is fine */
    CHECK(evr_lock_take(path, "evrun-runner", &b, &err) == EVR_OK && b);
    evr_lock_destroy(&b);
    char *bad = evr_asprintf("%s/missing/evrun.lock", dir);
    CHECK(evr_lock_take(bad, "evrun-broker", &b, &err) == EVR_ERR_IO && !b);
    CHECK_CONTAINS(err.msg, "cannot open the lock file");
    unlink(path);
    rmdir(dir);
    free(bad);
    free(path);
}

/*  A holder killed while a child it forked (before that child's exec)
    still holds the file: the next taker waits for the child, not refused
    (test_recover's random kill once landed between a fork and an exec). */
static void
test_dead_holder(void)
{
    char dir[] = "/tmp/evr-test-lock-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = evr_asprintf("%s/evrun.lock", dir);
    pid_t a = fork();
    if (a == 0) {
        evr_lock_t *l = NULL;
        evr_err_t e;
        if (evr_lock_take(path, "evrun-runner", &l, &e) != EVR_OK)
            _exit(1);
        if (fork() == 0) {   /* the child: holds the open file a while */
            usleep(300000);
            _exit(0);
        }
        _exit(0);   /* the holder dies, its pid in the file */
    }
    int status = -1;
    waitpid(a, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    evr_lock_t *b = NULL;
    evr_err_t err;
    evr_rc_t rc = evr_lock_take(path, "evrun-runner", &b, &err);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK(rc == EVR_OK && b);
    evr_lock_destroy(&b);
    unlink(path);
    rmdir(dir);
    free(path);
}

/*  evr_lock_holder: tells held from free without taking the lock or
    writing the file (a checker that took a free lock wrote its own pid
    over a dead holder's, and refused a starting process meanwhile). */
static void
test_holder(void)
{
    char dir[] = "/tmp/evr-test-lock-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = evr_asprintf("%s/evrun.lock", dir);
    long pid = -1;
    evr_err_t err;
    CHECK(evr_lock_holder(path, &pid, &err) == 0 && pid == 0);    /* no file */
    CHECK(access(path, F_OK) != 0);                                /* none made */
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("4242\n", f);    /* a dead holder's pid, the lock free */
    fclose(f);
    CHECK(evr_lock_holder(path, &pid, &err) == 0);
    char buf[16] = "";
    f = fopen(path, "r");
    CHECK(f && fgets(buf, sizeof buf, f));
    if (f)
        fclose(f);
    CHECK(strcmp(buf, "4242\n") == 0);     /* not overwritten */
    evr_lock_t *a = NULL;
    CHECK(evr_lock_take(path, "evrun-runner", &a, &err) == EVR_OK && a);
    pid_t child = fork();
    if (child == 0) {   /* another process sees it held, with the pid */
        long p = 0;
        evr_err_t e;
        _exit(evr_lock_holder(path, &p, &e) == 1 && p == (long) getppid() ? 0 : 1);
    }
    int status = -1;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    evr_lock_destroy(&a);
    CHECK(evr_lock_holder(path, &pid, &err) == 0);  /* free again */
    char *inner = evr_asprintf("%s/evrun.lock", path);  /* under a file: ENOTDIR */
    CHECK(evr_lock_holder(inner, &pid, &err) == -1);
    CHECK_CONTAINS(err.msg, "cannot open the lock file");
    unlink(path);
    rmdir(dir);
    free(inner);
    free(path);
}

int
main(void)
{
    EVR_TEST_RUN(test_holder);
    EVR_TEST_RUN(test_lock);
    EVR_TEST_RUN(test_dead_holder);
    EVR_TEST_END();
}
