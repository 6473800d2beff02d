/*  evr_hook_pg.h: the record of a running hook's process group, kept in
    the runner's state directory (README "Lifecycle hooks", "After a
    crash").

    A hook runs in a process group of its own (evr_hook_run.c).  The
    kernel's parent-death signal kills the hook's shell with a runner
    killed by SIGKILL, but not what the shell runs (it is not inherited
    by a fork): a foreground `sleep 3` would go on, orphaned, beside the
    hook's next run by the recovered runner.  So while a hook runs, a file
    DIR/PGID.pg says which group it is: its id, its leader's start time
    (/proc/PGID/stat field 22), its session and the boot it belongs to,
    which together tell it from a later group given the same id.  The
    file is written before the hook's command runs (it waits for it) and
    removed once the runner has killed and reaped the group; a runner
    starting on the state directory kills the groups the files name
    (evr_hook_pg_sweep) before any hook runs again.
*/
#ifndef EVR_HOOK_PG_H_INCLUDED
#define EVR_HOOK_PG_H_INCLUDED

#include <sys/types.h>

#include "evr_common.h"

#define EVR_HOOK_PG_WAIT_MS 5000   /* a swept group's processes gone after SIGKILL, at most */

/*  Writes DIR/PGID.pg (0600; dir made 0700 if missing) for the group
    pgid, whose leader (the process pgid) runs or is a zombie not reaped
    yet.  EVR_ERR_IO with the path and why (dir not writable, no
    /proc/PGID/stat). */
evr_rc_t evr_hook_pg_keep(const char *dir, pid_t pgid, evr_err_t *err);

/*  Removes DIR/PGID.pg (once the group is killed and its leader reaped). */
void evr_hook_pg_drop(const char *dir, pid_t pgid);

/*  For each DIR/PGID.pg a killed runner left: when its group still exists
    and is that group (same boot; its leader with the recorded start
    time, or, the leader gone, members of the recorded session started
    since), SIGKILL to the group, then waits up to EVR_HOOK_PG_WAIT_MS
    for its processes to end (zombies not counted); the file is then
    removed (also when the group was gone, or the file unreadable).
    *killed: the groups killed.  A missing dir is EVR_OK.  EVR_ERR_IO
    for the first group still running after the wait (its file kept, the
    next start tries again), or a file that cannot be removed; the rest
    are still swept. */
evr_rc_t evr_hook_pg_sweep(const char *dir, uint32_t *killed, evr_err_t *err);

/*  Whether group pgid is alive and the one that was made: its leader
    (still in the group or not; not a zombie) started between lo and hi
    (clock ticks since boot), or, the leader gone, processes of session sid started at
    or after lo are in it (while any process of a group lives, no new
    process gets its id).  The hook sweeper's test, and the process
    executor's for a lost step (evr_unit_kill_lost). */
bool evr_hook_pg_ours(long long pgid, unsigned long long lo, unsigned long long hi, long long sid);

#endif
