/*  evr_reap.h: a killed child reaped from the loop, never waited for.

    A child its parent has killed (a cancelled checkout's script, a
    cancelled offloaded work) may take its time to die: one in
    uninterruptible sleep (a write to a slow disk, a hung NFS server)
    dies only once that ends, and the loop (other jobs' output, the
    heartbeat) must not wait in waitpid for it.  evr_reap_later looks for
    its exit from the loop's timers (1 ms, then doubling up to
    EVR_REAP_MAX_MS) and, once the child is reaped, calls the caller's
    cleanup: the files the child was writing as the signal came removed
    again (one may have appeared since the caller removed them), the
    caller's state freed.  The children waiting are on a list of this
    module's, so that a loop destroyed first (the runner shutting down;
    the child then dies on its own) leaves each and its arg reachable,
    not lost; their cleanup is not called then.
    Called from the loop's thread only.
*/
#ifndef EVR_REAP_H_INCLUDED
#define EVR_REAP_H_INCLUDED

#include <sys/types.h>

#include "evr_loop.h"

/*  The longest wait between two looks for a child's exit. */
#define EVR_REAP_MAX_MS 64

/*  Runs from a turn of the loop once the child is reaped. */
typedef void (evr_reap_fn)(void *arg);

/*  Reaps pid (a child of this process, signalled to end by the caller
    first: this call sends no signal) from later turns of loop, never
    waiting for it; its exit status is dropped.  Once waitpid has taken
    it, or says it is no child of this process (waited for elsewhere),
    cleanup(arg) is called from that turn, once.  From this call on arg
    is cleanup's: the caller keeps no pointer into it, and cleanup frees
    what it must.  cleanup may be NULL (nothing to do but reap). */
void evr_reap_later(evr_loop_t *loop, pid_t pid, evr_reap_fn *cleanup, void *arg);

#endif
