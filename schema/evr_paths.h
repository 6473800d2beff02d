/*  evr_paths.h: the state directory, trusted only when it is private.

    Every evrun binary keeps its sockets, pid files, logs and stores under
    a state directory (STATE/bus, run, logs, broker, runners/N, podman,
    curve).  Whoever can write there can plant a symbolic link where a pid
    or log file goes, or a socket of its own where a client connects, so a
    directory is used only when it is a real directory (no link), owned by
    the effective user and writable by no one else.  Missing directories
    are made 0700, their parents too.  Files are opened without following
    links, and only when they are regular files of the user's with one
    link.  Every refusal names the path, what is wrong and the fix.
*/
#ifndef EVR_PATHS_H_INCLUDED
#define EVR_PATHS_H_INCLUDED

#include <stdbool.h>

#include "evr_common.h"

/*  Checks that path is a private directory: not a symbolic link, a
    directory, owned by the effective uid, not writable by group or others.
    With make, a missing path is made first (mode 0700, like mkdir -p: the
    missing parents too, also 0700).  EVR_ERR_NOTFOUND when path is missing
    and !make; EVR_ERR_CONFIG when it is refused; EVR_ERR_IO when it cannot
    be made or read.  err names the path and the fix. */
evr_rc_t evr_paths_dir(const char *path, bool make, evr_err_t *err);

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
    connecting: its directory, when it exists, is a directory (no link)
    owned by the effective uid or root and writable by no one else (or,
    like /tmp, sticky, where no one replaces another's socket), and so
    is the directory above it (where it could be renamed away); the
    socket, when it exists, is a socket (no link) owned by the effective
    uid or root, so no other user can have put it there.  A missing
    directory or socket is not an error here (the bind or connect says so).
    EVR_ERR_CONFIG with err naming the path and the fix when refused. */
evr_rc_t evr_paths_socket(const char *path, evr_err_t *err);

#endif
