/*  evr_reap.c: killed children reaped from the loop (see evr_reap.h).

    One entry a child, on s_waiting from the call to the reap: each look
    that finds it still there (waitpid's WNOHANG says 0, or a signal cut
    it short) sets a timer for the next, twice as far off up to
    EVR_REAP_MAX_MS; the look that takes it calls the cleanup and frees
    the entry.  The evr_source.c checkout's script and evr_offload.c's
    works share it. */
#include "evr_reap.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>

typedef struct s_waiting {
    pid_t pid;
    uint64_t ms;            /* the wait before the next look */
    evr_reap_fn *cleanup;
    void *arg;
    struct s_waiting *next;
} s_waiting_t;

/*  The children not reaped yet: reachable while a loop destroyed first
    holds their timers no more. */
static s_waiting_t *s_waiting;

static void
s_look(evr_loop_t *loop, void *arg)
{
    s_waiting_t *w = arg;
    pid_t r = waitpid(w->pid, NULL, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) {
        w->ms = w->ms * 2 < EVR_REAP_MAX_MS ? w->ms * 2 : EVR_REAP_MAX_MS;
        evr_loop_timer_add(loop, w->ms, s_look, w);
        return;
    }
    for (s_waiting_t **p = &s_waiting; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    if (w->cleanup)
        w->cleanup(w->arg);
    free(w);
}

void
evr_reap_later(evr_loop_t *loop, pid_t pid, evr_reap_fn *cleanup, void *arg)
{
    s_waiting_t *w = evr_calloc(1, sizeof *w);
    w->pid = pid;
    w->ms = 1;
    w->cleanup = cleanup;
    w->arg = arg;
    w->next = s_waiting;
    s_waiting = w;
    evr_loop_timer_add(loop, w->ms, s_look, w);
}
