/*  test_reap.c: killed children reaped from the loop (runner/evr_reap.h):
    the call returns without waiting for the child, and the loop goes on
    turning while it lives; once it has exited it is reaped and the
    cleanup runs once, with its arg; a NULL cleanup only reaps; a child
    waited for elsewhere first still gets its cleanup. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_reap.h"
#include "evr_test.h"

/*  Whether this process has no child, reaped or not (it reaps none). */
static bool
s_no_child(void)
{
    siginfo_t si;
    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

/*  A child that lives until the pipe's write end (*wfd) is closed. */
static pid_t
s_child_until_closed(int *wfd)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[1]);
        char c;
        while (read(p[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(p[0]);
    *wfd = p[1];
    return pid;
}

static void
s_cleanup(void *arg)
{
    (*(int *) arg)++;
}

/*  A child killed (SIGKILL) as the callers kill theirs before they hand
    it over; not reaped. */
static pid_t
s_killed_child(void)
{
    pid_t pid = fork();
    if (pid == 0)
        for (;;)
            pause();
    if (pid > 0)
        kill(pid, SIGKILL);
    return pid;
}

/*  Turns loop until *calls is set (at most about 10 s). */
static void
s_turn_until(evr_loop_t *loop, const int *calls)
{
    for (int i = 0; i < 1000 && !*calls; i++)
        evr_loop_once(loop, 10);
}

static void
test_not_waited_for(void)
{
    evr_loop_t *loop = evr_loop_new();
    int wfd = -1, calls = 0;
    pid_t pid = s_child_until_closed(&wfd);
    CHECK(pid > 0);
    evr_reap_later(loop, pid, s_cleanup, &calls);
    /* looked for several times (the wait doubles up to its cap) while
       it lives: the loop turns, no cleanup */
    for (int i = 0; i < 20; i++)
        evr_loop_once(loop, 10);
    CHECK(calls == 0);
    siginfo_t si = { 0 };
    CHECK(waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0);
    close(wfd);   /* the child exits */
    s_turn_until(loop, &calls);
    CHECK(calls == 1);
    CHECK(s_no_child());   /* reaped */
    for (int i = 0; i < 10; i++)   /* once only */
        evr_loop_once(loop, 2 * EVR_REAP_MAX_MS);
    CHECK(calls == 1);
    evr_loop_destroy(&loop);
}

/*  The way callers use it: kill, then reap later; a NULL cleanup only
    reaps. */
static void
test_killed(void)
{
    evr_loop_t *loop = evr_loop_new();
    int calls = 0;
    pid_t pid = s_killed_child();
    CHECK(pid > 0);
    evr_reap_later(loop, pid, s_cleanup, &calls);
    s_turn_until(loop, &calls);
    CHECK(calls == 1);
    CHECK(s_no_child());
    pid = s_killed_child();
    CHECK(pid > 0);
    evr_reap_later(loop, pid, NULL, NULL);
    for (int i = 0; i < 1000 && !s_no_child(); i++)
        evr_loop_once(loop, 10);
    CHECK(s_no_child());
    evr_loop_destroy(&loop);
}

/*  A child someone else waited for first: waitpid says ECHILD, and the
    cleanup runs (the caller's state is not left for ever). */
static void
test_waited_elsewhere(void)
{
    evr_loop_t *loop = evr_loop_new();
    int calls = 0;
    pid_t pid = s_killed_child();
    CHECK(pid > 0 && waitpid(pid, NULL, 0) == pid);
    evr_reap_later(loop, pid, s_cleanup, &calls);
    s_turn_until(loop, &calls);
    CHECK(calls == 1);
    evr_loop_destroy(&loop);
}

int
main(void)
{
    EVR_TEST_RUN(test_not_waited_for);
    EVR_TEST_RUN(test_killed);
    EVR_TEST_RUN(test_waited_elsewhere);
    EVR_TEST_END();
}
