/*  evr_paths.h: the state directory, trusted only when it is private.

    Every evrun binary keeps its sockets, pid files, logs and stores under
    a state directory (STATE/bus, run, logs, broker, runners/N, podman,
    curve).  Whoever can write there can plant a symbolic link where a pid
    or log file goes, or a socket of its own where a client connects, so a
    directory is used only when it is a real directory (no link), owned by
    the effective user and writable by no one else.  Whoever can write in
    a directory above it can rename it away and put another in its place,
    so every directory above (up to "/", following links as the kernel
    does) must be the user's or root's and writable by no one else unless
    sticky (like /tmp).  Missing directories are made 0700, their parents
    too.  Files are opened without following links, and only when they
    are regular files of the user's with one link.  Every refusal names
    the path, what is wrong and the fix.
*/
#ifndef EVR_PATHS_H_INCLUDED
#define EVR_PATHS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "evr_common.h"

/*  Checks that path (trailing slashes aside) is a private directory: not
    a symbolic link, a directory, owned by the effective uid, not writable
    by group or others; and that every directory above it is the effective
    uid's or root's and, unless sticky, not writable by group or others.
    With make, a missing path is made (mode 0700, like mkdir -p: the
    missing parents too, also 0700), only after the directories above it
    that exist passed.  EVR_ERR_NOTFOUND when path is missing and !make;
    EVR_ERR_CONFIG when it or one above is refused; EVR_ERR_IO when it
    cannot be made or read.  err names the path and the fix. */
evr_rc_t evr_paths_dir(const char *path, bool make, evr_err_t *err);

/*  The subdirectories of a state directory, for evr_paths_state. */
enum {
    EVR_PATHS_BROKER = 1u << 0,   /* broker: the broker's store */
    EVR_PATHS_BUS = 1u << 1,      /* bus: a local broker's ipc:// sockets */
    EVR_PATHS_RUN = 1u << 2,      /* run: pid files (evrun-cli up) */
    EVR_PATHS_LOGS = 1u << 3,     /* logs: the logs of what up started */
    EVR_PATHS_RUNNERS = 1u << 4,  /* runners, and runners/1..nrunners */
    EVR_PATHS_PODMAN = 1u << 5,   /* podman: a podman service up started */
    EVR_PATHS_CURVE = 1u << 6,    /* curve: CURVE keys; checked only when it exists */
    EVR_PATHS_ALL = (1u << 7) - 1,   /* all of them: evrun-cli up and down */
};

/*  evr_paths_dir of state and of each subdirectory in subs (EVR_PATHS_*
    bits), with make (but curve, never made here: evr_curve makes it);
    without make, missing ones are skipped (EVR_OK when state is missing).
    The first refusal or failure is returned, as evr_paths_dir's. */
evr_rc_t evr_paths_state(const char *state, unsigned subs, uint32_t nrunners, bool make,
                         evr_err_t *err);

/*  open(2) of a file in a private directory, never through a symbolic link
    (O_NOFOLLOW and O_CLOEXEC are added to flags; a new file is 0600).
    What is opened must be a regular file owned by the effective uid with a
    single hard link (a second link could name a file of someone else's).
    Returns the descriptor (caller closes it), or -1 with err set; errno is
    ENOENT when the file does not exist (and flags has no O_CREAT). */
int evr_paths_open(const char *path, int flags, evr_err_t *err);

/*  Writes "PID\n" to path as a new file (written aside to path.new, then
    renamed over path, so a link planted at path is replaced, never
    followed). */
evr_rc_t evr_paths_write_pid(const char *path, long pid, evr_err_t *err);

/*  Checks a unix socket path (an ipc:// endpoint) before binding or
    connecting: its directory, when it exists, is owned by the effective
    uid or root and writable by no one else, sticky or not (in /tmp anyone
    could take the name while no socket holds it, and libzmq reconnects
    to whatever socket is there); every directory above it passes
    evr_paths_dir's rule for those above a state directory; the socket,
    when it exists, is a socket (no link) owned by the effective uid or
    root, so no other user can have put it there.  A missing directory or
    socket is not an error here (the bind or connect says so).
    EVR_ERR_CONFIG with err naming the path and the fix when refused. */
evr_rc_t evr_paths_socket(const char *path, evr_err_t *err);

#endif
