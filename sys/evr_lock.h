/*  evr_lock.h: one process per state directory.

    The broker and each runner hold an exclusive flock(2) on a lock file
    in their state directory for as long as they run (the descriptor is
    close-on-exec, so no step or child keeps it after the process ends,
    and the kernel drops it when the process dies however it dies).  The
    holder writes its pid into the file once it has the lock, so a second
    process can name it: "STATE is in use by evrun-runner pid 4711".
*/
#ifndef EVR_LOCK_H_INCLUDED
#define EVR_LOCK_H_INCLUDED

#include "evr_common.h"

typedef struct evr_lock evr_lock_t;

/*  Takes the lock file path (made 0600 when missing, opened without
    following links) for this process, who being the program named in the
    refusal ("evrun-runner").  Errors: EVR_ERR_STATE when another process
    holds it ("PATH: the state directory is in use by WHO pid N"; N read
    from the file, "unknown" while the holder has not written it yet);
    when the pid written is no process any more, it waits up to 2 s first:
    a killed holder's forked child keeps the lock until it execs;
    EVR_ERR_IO when the file cannot be opened, locked or written.  Caller
    owns the result. */
evr_rc_t evr_lock_take(const char *path, const char *who, evr_lock_t **out, evr_err_t *err);

/*  Whether another process holds the lock file path, found without taking
    it or writing to it (a shared flock(2) tried and dropped): 1 held,
    *pid the pid written in the file (0 while the holder has not written
    it yet); 0 not held, or no such file; -1 the file cannot be opened or
    tested (err says why). */
int evr_lock_holder(const char *path, long *pid, evr_err_t *err);

/*  Releases the lock (the file stays); accepts NULL. */
void evr_lock_destroy(evr_lock_t **self_p);

#endif
