/*  test_loop.c: the reactor (sys/evr_loop): fds, timers in due order,
    cancel, a watch removed by an earlier callback of the same turn, and a
    signal delivered through the loop. */
#include <signal.h>
#include <unistd.h>

#include "evr_loop.h"
#include "evr_test.h"

static char s_order[16];
static size_t s_n;

static void
s_mark(evr_loop_t *loop, void *arg)
{
    (void) loop;
    if (s_n < sizeof s_order - 1)
        s_order[s_n++] = *(const char *) arg;
}

static void
test_timers_in_due_order(void)
{
    evr_loop_t *loop = evr_loop_new();
    s_n = 0;
    memset(s_order, 0, sizeof s_order);
    evr_loop_timer_add(loop, 30, s_mark, "c");
    evr_loop_timer_add(loop, 0, s_mark, "a");
    uint64_t gone = evr_loop_timer_add(loop, 10, s_mark, "x");
    evr_loop_timer_add(loop, 20, s_mark, "b");
    evr_loop_timer_cancel(loop, gone);
    evr_loop_timer_cancel(loop, 0);
    CHECK(evr_loop_next_timer_ms(loop) == 0);
    for (int i = 0; i < 50 && s_n < 3; i++)
        evr_loop_once(loop, 100);
    CHECK_STR(s_order, "abc");
    CHECK(evr_loop_next_timer_ms(loop) == -1);
    /* nothing to wait for: the turn returns after its timeout */
    CHECK(evr_loop_once(loop, 1) == 0);
    evr_loop_destroy(&loop);
    CHECK(loop == NULL);
    evr_loop_destroy(NULL);
}

typedef struct {
    int calls;
    int other;      /* the fd this callback stops watching */
    int events;
} s_fdrec_t;

static void
s_on_fd(evr_loop_t *loop, int fd, int events, void *arg)
{
    s_fdrec_t *r = arg;
    r->calls++;
    r->events = events;
    char buf[16];
    if (events & EVR_LOOP_READ)
        (void) !read(fd, buf, sizeof buf);
    if (r->other >= 0)
        evr_loop_fd_remove(loop, r->other);
}

static void
test_fds(void)
{
    evr_loop_t *loop = evr_loop_new();
    int a[2], b[2];
    CHECK(pipe(a) == 0 && pipe(b) == 0);
    s_fdrec_t ra = { .other = b[0] }, rb = { .other = a[0] };
    CHECK(evr_loop_fd_add(loop, a[0], EVR_LOOP_READ, s_on_fd, &ra) == EVR_OK);
    CHECK(evr_loop_fd_add(loop, b[0], EVR_LOOP_READ, s_on_fd, &rb) == EVR_OK);
    /* nothing readable yet */
    CHECK(evr_loop_once(loop, 5) == 0);
    /* both readable: whichever runs first removes the other, which is
       then not called in that turn */
    CHECK(write(a[1], "x", 1) == 1 && write(b[1], "y", 1) == 1);
    CHECK(evr_loop_once(loop, 100) == 1);
    CHECK(ra.calls + rb.calls == 1);
    CHECK((ra.calls ? ra.events : rb.events) == EVR_LOOP_READ);
    /* a replaced watch: the new callback and events count */
    s_fdrec_t rw = { .other = -1 };
    CHECK(evr_loop_fd_add(loop, a[1], EVR_LOOP_WRITE, s_on_fd, &rw) == EVR_OK);
    evr_loop_fd_remove(loop, a[0]);
    evr_loop_fd_remove(loop, b[0]);
    CHECK(evr_loop_once(loop, 100) == 1);
    CHECK(rw.calls == 1 && (rw.events & EVR_LOOP_WRITE));
    /* a hung-up pipe is reported as an error */
    evr_loop_fd_remove(loop, a[1]);
    s_fdrec_t rh = { .other = -1 };
    close(b[1]);
    CHECK(evr_loop_fd_add(loop, b[0], EVR_LOOP_READ, s_on_fd, &rh) == EVR_OK);
    CHECK(evr_loop_once(loop, 100) == 1);
    CHECK(rh.events & EVR_LOOP_ERROR);
    evr_loop_fd_remove(loop, b[0]);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    evr_loop_destroy(&loop);
}

static int s_signo;

static void
s_on_signal(evr_loop_t *loop, int signo, void *arg)
{
    (void) arg;
    s_signo = signo;
    evr_loop_stop(loop);
}

static void
s_raise(evr_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    kill(getpid(), SIGUSR1);
}

static void
test_signal(void)
{
    evr_loop_t *loop = evr_loop_new();
    evr_err_t err;
    CHECK(evr_loop_signal_add(loop, SIGUSR1, s_on_signal, NULL, &err) == EVR_OK);
    CHECK(evr_loop_signal_add(loop, 0, s_on_signal, NULL, &err) == EVR_ERR_CONFIG);
    evr_loop_timer_add(loop, 1, s_raise, NULL);
    evr_loop_run(loop);   /* ends in s_on_signal */
    CHECK(s_signo == SIGUSR1);
    evr_loop_destroy(&loop);
    /* unblocked again: the default action would end the test, so only
       check the mask */
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    CHECK(!sigismember(&now, SIGUSR1));
}

int
main(void)
{
    EVR_TEST_RUN(test_timers_in_due_order);
    EVR_TEST_RUN(test_fds);
    EVR_TEST_RUN(test_signal);
    EVR_TEST_END();
}
