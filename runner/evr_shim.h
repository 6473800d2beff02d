/*  evr_shim.h: the supervisor of one host process step.

    The process executor (evr_exec_process.c) starts a step by starting
    its supervisor: the runner's own binary again, as `BINARY --shim DIR`
    (DIR the unit's directory, evr_unit.h), double-forked so that it is
    not the runner's child and outlives it.  The supervisor ignores
    SIGTERM, SIGINT and SIGHUP, holds the unit's lock while it lives,
    starts `/bin/sh -c SCRIPT` in a session and process group of its own
    (the step's: stop and pause signal that group, never the supervisor)
    with exactly the unit's environment, its output going to the unit's
    files, and waits for it.  When the step has exited it kills what is
    left of the step's process group (as podman ends a container's
    processes with its first one), waits for them (it is their subreaper),
    and writes the exit status and the final output sizes to `exit`.

    Its first report goes to fd 3, a pipe the runner reads: one line,
    "started PID" once the step runs (its `pid` file written),
    "held" when another supervisor holds the unit's lock (one an earlier
    run of the runner spawned just before it was killed: that one runs
    the step, and this one leaves), or "error MESSAGE" when it could not
    start it (the unit stays created).  A binary that makes process executors calls evr_shim_main
    first thing in main() when evr_shim_wanted() says so.
*/
#ifndef EVR_SHIM_H_INCLUDED
#define EVR_SHIM_H_INCLUDED

#include "evr_common.h"

#define EVR_SHIM_FLAG "--shim"

/*  Starts the supervisor of the unit in dir: /proc/self/exe --shim DIR,
    double-forked (not the caller's child; a session of its own), its
    stdin /dev/null, its stdout and stderr DIR/supervisor.log, no other fd
    of the caller, no signal blocked.  Its report comes through the pipe
    *report_fd (the caller's to read and close; non-blocking, close-on-
    exec): the line, then the end.  Only async-signal-safe calls between
    fork and exec (the runner has threads: ZeroMQ's).  EVR_ERR_IO when
    pipe or fork fail. */
evr_rc_t evr_shim_spawn(const char *dir, int *report_fd, evr_err_t *err);

/*  True when the command line is a supervisor's: argv[1] EVR_SHIM_FLAG
    and argv[2] the unit's directory. */
bool evr_shim_wanted(int argc, char **argv);

/*  Supervises the unit in dir to its end; returns the supervisor's exit
    status (0 once `exit` is written, 1 when the step could not start or
    `exit` could not be written). */
int evr_shim_main(const char *dir);

#endif
