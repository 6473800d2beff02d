/*  evr_unit.h: a host process unit on disk, what the process executor
    (evr_exec_process.c, in the runner) and the supervisor of each step
    (evr_shim.c, a process of its own that outlives the runner) share.

    A unit is the directory STATE/units/NAME (0700), made whole at once
    (written under a temporary name, then renamed), holding:
      script          the step's script, run with /bin/sh -c
      env             its environment: "K=V" entries, each ended by a NUL;
                      the supervisor deletes it once read (secrets do not
                      stay on disk while the step runs)
      workdir         the step's working directory (the job's workspace)
      limits          the step's resource limits (evr_unit_limits_t),
                      one "KEY VALUE" a line; absent: none
      stdout, stderr  the step's output, written by the step itself
                      (O_APPEND), read by the runner by offset
      lock            write-locked (an OFD lock) by the supervisor while it
                      lives: the liveness test, free of pid reuse
      pid             "PID STARTED_NS": the step's pid, which is also its
                      process group and session; written (temporary file,
                      then rename) once the step runs
      paused          present while the unit is paused
      ended           made by the supervisor once the step (the group's
                      leader) has exited, before it reaps it: from then on
                      the group is the supervisor's to end, and nobody
                      signals its id again (it may be reused once reaped)
      exit            "exit CODE\nstdout N\nstderr N\nat NS\n", written (temporary
                      file, then rename) by the supervisor once every
                      process of the step's group has ended: CODE is the
                      exit status, or 128+N after signal N; the N are the
                      final sizes of the output files (the output is their
                      first N bytes, whatever a process that left the group
                      writes later); NS the wall-clock time (ns) the group
                      was found ended (a supervisor of an earlier version
                      does not write it: the file's mtime stands for it,
                      the kernel's coarse clock, a tick early); then
                      "signal N\n" when signal N
                      ended the step (128+N alone cannot tell it from an
                      exit with that status; a supervisor of an earlier
                      version does not write it); then "full\n" when the
                      disk was full at the step's end (its output may be
                      cut short), written in `room`'s place
      room            EVR_UNIT_ROOM bytes the supervisor writes before it
                      starts the step, and deletes when `exit` finds no
                      room (the step's output filled the disk)
    The supervisor writes `exit` before it ends and its lock goes, so a
    reader that sees the lock free and then no `exit` knows the
    supervisor died without one (killed): the unit is "lost".
*/
#ifndef EVR_UNIT_H_INCLUDED
#define EVR_UNIT_H_INCLUDED

#include <sys/types.h>

#include "evr_exec.h"

/*  Bytes the supervisor keeps on the unit's file system for `exit` and
    its last words in supervisor.log (a few pages). */
#define EVR_UNIT_ROOM (16u << 10)

/*  Largest script and environment file the supervisor reads. */
#define EVR_UNIT_MAX_SCRIPT (1u << 20)
#define EVR_UNIT_MAX_ENV (8u << 20)

/*  Resource limits of a step (setrlimit), 0 meaning none. */
typedef struct {
    uint64_t nofile;    /* RLIMIT_NOFILE: open files */
    uint64_t nproc;     /* RLIMIT_NPROC: processes of the user */
    uint64_t cpu_s;     /* RLIMIT_CPU: CPU seconds (then SIGKILL: soft = hard) */
    uint64_t memory;    /* RLIMIT_AS: bytes of address space */
} evr_unit_limits_t;

/*  What a unit is, from its directory. */
typedef struct {
    evr_exec_state_t state;
    bool lost;              /* started, its supervisor gone without `exit`
                               (state EXITED, exit_code -1) */
    pid_t pid;              /* the step's pid and group (0: not known: not
                               started, or `pid` damaged) */
    bool ended;             /* RUNNING, PAUSED: the step has exited, the
                               supervisor is ending its group */
    uint64_t started_at;    /* wall ns (0: not started) */
    int64_t exit_code;      /* EXITED */
    int signal;             /* EXITED: the signal that ended the step (0: it
                               exited, or `exit` does not say) */
    uint64_t size[2];       /* EXITED: final bytes of stdout, stderr */
    uint64_t finished_at;   /* EXITED (not lost): wall ns of the end `exit` says (else
                               its mtime) */
    bool full;              /* EXITED: the disk was full at the step's end
                               (`exit` says "full") */
} evr_unit_info_t;

/*  A lost unit's step (its supervisor killed) may still run, and nobody
    would end it: what is left of its group is killed (SIGKILL), when the
    group still is the step's (its leader alive with the step's start
    time, or, the leader gone, processes of the step's session started
    since; the boot's time from /proc/stat).  info: the unit's, as its
    caller has just probed it.  *killed when a signal went.  A unit that
    is not lost: nothing.  EVR_ERR_IO: kill's. */
evr_rc_t evr_unit_kill_lost(const char *dir, const evr_unit_info_t *info, bool *killed,
                            evr_err_t *err);

/*  True when name can be a unit or workspace name: 1-200 bytes, no '/',
    not starting with '.'. */
bool evr_unit_name_ok(const char *name);

/*  Makes the unit NAME under units (which must exist): its files, the
    output files empty, env (n entries "K=V") and limits (may be NULL).
    *exists (EVR_OK) when the name is taken.  EVR_ERR_IO naming the path. */
evr_rc_t evr_unit_make(const char *units, const char *name, const char *script,
                       const char *const *env, size_t n, const char *workdir,
                       const evr_unit_limits_t *limits, bool *exists, evr_err_t *err);

/*  What the unit in dir is.  ABSENT when dir does not exist; EVR_ERR_IO
    when it cannot be read (its lock, or `exit` damaged, naming which).  A
    damaged `pid` is no error: the unit is what its lock and `exit` say,
    its pid 0. */
evr_rc_t evr_unit_probe(const char *dir, evr_unit_info_t *info, evr_err_t *err);

/*  Sends sig to the step's whole process group when the unit runs (its
    supervisor alive, no `exit`); *sent says whether it did.  EVR_ERR_IO
    when kill(2) fails for another reason than the group being gone. */
evr_rc_t evr_unit_signal(const char *dir, int sig, bool *sent, evr_err_t *err);

/*  How an operator removes the unit in dir by hand, into buf: "rm -rf
    DIR", and for a unit that runs or is lost (its step may still run)
    first how to check that its process group is still the step's and
    kill it. */
void evr_unit_remove_hint(const char *dir, char *buf, size_t size);

/*  Writes data into dir/name through dir/name.tmp and a rename (0600). */
evr_rc_t evr_unit_write(int dirfd, const char *dir, const char *name, const char *data,
                        size_t len, evr_err_t *err);

/*  Reads all of dir/name (at most max bytes) into a new NUL-terminated
    buffer (*out, *len).  EVR_ERR_NOTFOUND when it does not exist,
    EVR_ERR_LIMIT when it is larger, EVR_ERR_IO. */
evr_rc_t evr_unit_read(int dirfd, const char *dir, const char *name, size_t max, char **out,
                       size_t *len, evr_err_t *err);

/*  Parses limits text ("KEY VALUE" lines) into l; false on a bad line. */
bool evr_unit_limits_parse(const char *text, evr_unit_limits_t *l);

/*  Removes path and everything under it, read-only directories made
    writable first.  It works through directory fds (openat with
    O_NOFOLLOW, unlinkat), so a link is removed as a link and never
    followed, even one swapped in for a directory while it runs; a tree
    deeper than PATH_MAX goes too (up to 4096 levels).  A missing path is
    no error; EVR_ERR_IO naming the entry that could not be removed. */
evr_rc_t evr_unit_rmtree(const char *path, evr_err_t *err);

/*  The leftovers in dir (units or workspaces) of a runner killed while
    it made or removed one: .new-* and .rm-* entries, unless a supervisor
    still runs in one (its removal is under way).  Each is renamed aside
    first, to a name made for it (.rm-sweep-XXXXXX, mkdtemp), so that the
    name it had is free at once and none this runner makes meanwhile is
    the one being removed (its name kept where it is not a directory);
    the paths to remove (with evr_unit_rmtree) appended to *paths, *n of
    them (*paths grown with realloc; caller frees each and it). */
void evr_unit_sweep_aside(const char *dir, char ***paths, size_t *n);

#endif
