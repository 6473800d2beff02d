/*  evr_offload.h: heavy work (a large tar read or written) kept off the
    event loop, in a child process.

    The child is forked from the loop's thread: it sees a snapshot of the
    parent's memory (what work reads needs no copy), runs work, writes
    the fixed-size result it filled through a pipe and exits.  The loop
    watches the pipe; once it ends, the child is reaped and done is
    called from that turn.  Whatever files work writes are the child's
    until then: the caller touches them again only from done.  A cancel
    kills the child and returns at once, without waiting for it: the
    child is reaped later, from the loop, and the files named with
    evr_offload_temp (the directories with evr_offload_temp_dir) are
    removed then too (a file the child was making as it was killed is
    not left behind).  The child dies with the runner
    (PR_SET_PDEATHSIG): a runner killed during the work leaves no writer
    behind for the runner that recovers.

    In the child, work must not touch the loop, sockets or locks of other
    threads (stdio included): plain files, libarchive and malloc only.
    The child of a process with threads (ZeroMQ's, a conmon reader) may
    still find a lock taken for good: malloc's, where the allocator does
    not take its locks across fork (glibc's does; the AddressSanitizer of
    GCC 12 does not).  Such a child never ends: a work with a time limit
    is cancelled by its caller then, and the runner's exit kills and names
    every child still working (evr_offload_abandon).  Its SIGTERM and
    SIGINT are the default ones (the runner's handlers only count): a
    signal to the runner's process group ends it.
    Called from the loop's thread only.

    Test hooks (tests only): EVR_TEST_OFFLOAD_FORK_FAIL=FILE in the
    environment makes every work started while FILE exists fail as a
    fork that failed with EAGAIN would (done gets EVR_ERR_LIMIT, "fork:
    ..."), as a runner past its process limit sees.
    EVR_TEST_OFFLOAD_HANG=FILE makes the child of every work started
    while FILE exists wait for ever instead of working, as a child stuck
    at a lock would.
*/
#ifndef EVR_OFFLOAD_H_INCLUDED
#define EVR_OFFLOAD_H_INCLUDED

#include "evr_loop.h"

typedef struct evr_offload evr_offload_t;

/*  Runs in the child: fills out (size bytes, zeroed before). */
typedef void (evr_offload_work_fn)(void *arg, void *out, size_t size);
/*  Runs in the parent, from a turn: rc EVR_OK and out the child's result,
    or out zeroed and msg saying why: EVR_ERR_LIMIT when the child could
    not start or be watched (pipe, fork: a process, memory or file
    limit; the loop watching too many files): the work did not run, or
    was killed at once, and starting it again later may succeed;
    EVR_ERR_IO when the child died or ended without its result.
    Pointers valid during the call only. */
typedef void (evr_offload_done_fn)(evr_rc_t rc, const char *msg, const void *out, void *arg);

/*  The most bytes of a result (read back whole, however the pipe splits
    it).  Each result type is checked against it where it is defined
    (EVR_OFFLOAD_FITS): a build without assertions would cut it. */
#define EVR_OFFLOAD_MAX 8192
#define EVR_OFFLOAD_FITS(type) \
    _Static_assert(sizeof(type) <= EVR_OFFLOAD_MAX, #type " is larger than EVR_OFFLOAD_MAX")

/*  Starts work(arg) in a child; done(…, arg) is called once, from a later
    turn of loop.  size at most EVR_OFFLOAD_MAX.  Never NULL. */
evr_offload_t *evr_offload_start(evr_loop_t *loop, evr_offload_work_fn *work, size_t size,
                                 evr_offload_done_fn *done, void *arg);

/*  What the work does, in words, for the runner's log (its exit names a
    child it killed: evr_offload_abandon); printf-style.  Default
    "offloaded work". */
void evr_offload_what(evr_offload_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*  How many works have a child working (started, its result not read
    yet, not cancelled). */
uint32_t evr_offload_running(void);

/*  At the runner's exit, once it has waited what it waits: every child
    still working is killed (SIGKILL, by its pid) and named in a warning
    of who's log ("exiting: gave up waiting for the child process PID
    (WHAT, running for N ms): killed; ..."); their works stay the
    callers', whose cancel or destroy follows (done is not called).
    Returns how many. */
uint32_t evr_offload_abandon(const char *who);

/*  The most files named with evr_offload_temp. */
#define EVR_OFFLOAD_TEMPS 4

/*  Names a file work writes (path copied): should the work be cancelled,
    the file is removed at once and again once the killed child is gone.
    A finished work's files are left to done's caller; those of a work
    whose child could not be watched (done says so, and the child is
    killed) are removed as a cancelled work's are.  At most
    EVR_OFFLOAD_TEMPS per work. */
void evr_offload_temp(evr_offload_t *self, const char *path);

/*  The same for a directory work makes (path copied): removed whole,
    with what is in it, at once and again once the killed child is gone.
    It is removed on the loop: for a directory of a few small files only
    (the trigger files a source's tar holds). */
void evr_offload_temp_dir(evr_offload_t *self, const char *path);

/*  Stops work under way: the child is killed (SIGKILL) and its temporary
    files (evr_offload_temp) removed; it is reaped from later turns of
    the loop, which this call does not wait for.  done is not called.
    NULL-safe; sets *self_p = NULL. */
void evr_offload_cancel(evr_offload_t **self_p);

#endif
