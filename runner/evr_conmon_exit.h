/*  evr_conmon_exit.h: how a container ended, read from the files its
    conmon writes, without asking the podman service.

    When the container has exited and its output has been drained,
    conmon closes its attach sockets and then writes the exit code, as
    decimal text, to a file named after the container's id in the exit
    directory podman gives it (`--exit-dir`, /run/libpod/exits for root);
    podman's inspect reads that same file to tell "exited" and the exit
    code, and counts the container OOM-killed when a file `oom` is in
    its bundle directory (conmon's `-b`; podman 4.3) or in conmon's
    `--persist-dir` (later podman).  The podman executor learns
    both paths from conmon's command line: the process at the other end
    of the attach socket it connected (SO_PEERCRED, evr_conmon_pid),
    which must be conmon of the bundle directory the socket was found in.
    A path not learned, or a file not of conmon's form, leaves the exit
    to podman (inspect, then wait) as before. */
#ifndef EVR_CONMON_EXIT_H_INCLUDED
#define EVR_CONMON_EXIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct evr_conmon_exit evr_conmon_exit_t;

/*  The command line of a conmon takes at most this (podman 4.3's: ~2.5
    KB); a longer one is not read. */
#define EVR_CONMON_EXIT_ARGS_MAX (64u * 1024)

/*  The exit and OOM files of the container whose conmon is process pid
    (its /proc/PID/cmdline read), or NULL: no such process or not ours
    to read, a command line longer than EVR_CONMON_EXIT_ARGS_MAX, not
    one evr_conmon_exit_parse takes, or an exit dir that is not a
    directory here (the file would never come).  Caller owns the result. */
evr_conmon_exit_t *evr_conmon_exit_new(pid_t pid, const char *bundle);

/*  The same from a command line: args[0, len), arguments each ended by
    a NUL, as /proc/PID/cmdline holds them.  It must give `-c ID` (or
    --cid; ID letters, digits, '_', '-' or '.', 1-128 of them, neither
    "." nor ".."), `-b BUNDLE` (or --bundle) equal to bundle, and
    `--exit-dir DIR` (an absolute path), and may give `--persist-dir
    DIR` (an absolute path); each once at most, as separate
    arguments or `--name=value`.  NULL otherwise.  Caller owns the
    result. */
evr_conmon_exit_t *evr_conmon_exit_parse(const char *args, size_t len, const char *bundle);

/*  Reads the exit: 1 with *code (conmon's text: an optional '-' and 1-10
    digits, an int32) and *oom (BUNDLE/oom or PERSIST/oom exists); 0 when the exit file
    is not there yet; -1 when it is not of conmon's form (not a regular
    file, longer than 31 bytes, empty, or other text), or cannot be read. */
int evr_conmon_exit_read(const evr_conmon_exit_t *self, int64_t *code, bool *oom);

/*  The exit file's path (for messages and tests). */
const char *evr_conmon_exit_file(const evr_conmon_exit_t *self);

void evr_conmon_exit_destroy(evr_conmon_exit_t **self_p);

#endif
