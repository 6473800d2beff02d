/*  evr_exec_process.h: the process executor, steps as host process groups.

    `executor: process` pipelines run here: each step is `/bin/sh -c RUN`
    on the runner's host, as the runner's user, in a session and process
    group of its own, its working directory the job's workspace
    STATE/work/JOB (0700).  Its environment is exactly the step's (the
    spec's env, args and secrets, as the engine gives them) over a small
    base, PATH=EVR_EXEC_PROCESS_PATH and HOME=the workspace; nothing of
    the runner's own environment reaches it.  Its stdin is /dev/null.

    A step outlives the runner: a supervisor (evr_shim.h) starts it and
    writes its output to files and its exit status to its unit directory
    STATE/units/NAME (evr_unit.h), so a restarted runner finds it, reads
    its output by offset and waits for its end.  Output is followed
    through inotify (a slow timer backs it up, and stands in when inotify
    is not available), in reads of at most 64 KiB per stream per turn of
    the loop.  What this backend does not do as podman does: no network
    isolation (the spec's network flag is ignored), no OOM-killed flag,
    and the output of a process that leaves the step's process group
    (setsid, setpgid) is the step's only up to the step's end; such a
    process is not ended with it either.
*/
#ifndef EVR_EXEC_PROCESS_H_INCLUDED
#define EVR_EXEC_PROCESS_H_INCLUDED

#include "evr_exec.h"

/*  The PATH of every step unless its own env sets one. */
#define EVR_EXEC_PROCESS_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/*  A process executor keeping its units in state_dir/units and the jobs'
    workspaces in state_dir/work (made 0700 when missing).  Each step's
    supervisor is this process's own binary (/proc/self/exe) run as
    `BINARY --shim DIR`: the binary's main() must start with
    evr_shim_wanted / evr_shim_main (evr_shim.h).  Leftovers of a runner
    killed while it made or removed a unit are renamed aside here and
    removed in a child process, off the loop (the executor serves
    meanwhile; destroyed first, it leaves them to the next).  loop must
    outlive the executor.  NULL with err (EVR_ERR_IO naming the path) when
    a directory cannot be made.  Caller owns the result
    (evr_exec_destroy); destroying it leaves the steps running. */
evr_exec_t *evr_exec_process_new(const char *state_dir, evr_loop_t *loop, evr_err_t *err);

#endif
