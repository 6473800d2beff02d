/*  evr_loop.h: the reactor every evrun daemon turns on.

    One thread, one poll(2): file descriptors (readable, writable),
    one-shot timers on the monotonic clock, and signals (through a
    signalfd, so a handler never runs inside a signal).  Whatever waits
    registers here: libcurl's sockets and its timeout (evr_http), the
    ZeroMQ socket of a runner's daemon and its CURVE monitor, the engine's
    timers, an executor's fds (inotify).  In the spirit of redis's
    ae.c: small, no threads, callbacks run from evr_loop_once() only.

    A callback may add or remove any watch or timer, its own included; a
    watch removed during a turn is not called later in that turn.
*/
#ifndef EVR_LOOP_H_INCLUDED
#define EVR_LOOP_H_INCLUDED

#include "evr_common.h"

typedef struct evr_loop evr_loop_t;

/* events of a watched fd */
#define EVR_LOOP_READ 1
#define EVR_LOOP_WRITE 2
/* reported only: the fd hung up or failed (poll's POLLHUP / POLLERR) */
#define EVR_LOOP_ERROR 4

typedef void (evr_loop_fd_fn)(evr_loop_t *loop, int fd, int events, void *arg);
typedef void (evr_loop_timer_fn)(evr_loop_t *loop, void *arg);
typedef void (evr_loop_signal_fn)(evr_loop_t *loop, int signo, void *arg);

/*  A loop with nothing to watch.  Caller owns the result. */
evr_loop_t *evr_loop_new(void);
/*  Frees the loop; fds are not closed (their owners close them), signals
    registered are unblocked again. */
void evr_loop_destroy(evr_loop_t **self_p);

/*  Watches fd for events (EVR_LOOP_READ | EVR_LOOP_WRITE); fn gets the
    events that are ready (ERROR included when poll says so).  A second
    call for the same fd replaces the first (events and callback).  At most
    EVR_LOOP_MAX_FDS fds at once: past that the call fails with
    EVR_ERR_LIMIT (a programming error in practice). */
#define EVR_LOOP_MAX_FDS 4096
evr_rc_t evr_loop_fd_add(evr_loop_t *self, int fd, int events, evr_loop_fd_fn *fn, void *arg);
/*  Stops watching fd (nothing when it is not watched). */
void evr_loop_fd_remove(evr_loop_t *self, int fd);

/*  Calls fn once, from a turn at least ms milliseconds from now (0: the
    next turn, which then does not wait).  Returns the timer's id (never
    0) for evr_loop_timer_cancel. */
uint64_t evr_loop_timer_add(evr_loop_t *self, uint64_t ms, evr_loop_timer_fn *fn, void *arg);
/*  Cancels a timer that has not fired (nothing for an unknown id or 0). */
void evr_loop_timer_cancel(evr_loop_t *self, uint64_t id);

/*  Delivers signo through the loop: it is blocked for the calling thread
    (call before threads start, so they inherit the mask) and read from a
    signalfd; fn runs from a turn.  EVR_ERR_IO when signalfd fails. */
evr_rc_t evr_loop_signal_add(evr_loop_t *self, int signo, evr_loop_signal_fn *fn, void *arg,
                             evr_err_t *err);

/*  One turn: waits at most timeout_ms (-1: until something happens) for
    a watched fd, a due timer or a signal, then runs their callbacks (due
    timers first, in the order they fall due).  Returns the number of
    callbacks run; -1 when poll failed for a reason other than EINTR. */
int evr_loop_once(evr_loop_t *self, int timeout_ms);

/*  Runs turns until evr_loop_stop is called (from a callback). */
void evr_loop_run(evr_loop_t *self);
void evr_loop_stop(evr_loop_t *self);

/*  Milliseconds until the next timer falls due (0 when one is due, -1
    when there is none). */
int evr_loop_next_timer_ms(const evr_loop_t *self);

#endif
