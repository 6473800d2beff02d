/*  evr_fake_ws.h: a job's workspace of the fake executor, in memory.

    A set of files (path relative to the workspace root -> bytes), what a
    unit's `echo x > FILE` writes and `cat FILE` reads, and what put and
    get move in and out as tar streams (libarchive).  Private to
    tests/support (evr_exec_fake.c).
*/
#ifndef EVR_FAKE_WS_H_INCLUDED
#define EVR_FAKE_WS_H_INCLUDED

#include "evr_common.h"

typedef struct evr_fake_ws evr_fake_ws_t;

evr_fake_ws_t *evr_fake_ws_new(const char *job_id);
void evr_fake_ws_destroy(evr_fake_ws_t **self_p);
const char *evr_fake_ws_job(const evr_fake_ws_t *self);

/*  path as the workspace keys it: "/workspace/a/b", "./a/b" and "a/b"
    are one file. */
const char *evr_fake_ws_rel(const char *path);
void evr_fake_ws_write(evr_fake_ws_t *self, const char *path, const void *data, size_t len,
                       bool append);
/*  The file's bytes (valid until it changes), or NULL when there is none. */
const uint8_t *evr_fake_ws_read(const evr_fake_ws_t *self, const char *path, size_t *len);

/*  The regular files of the tar archive tar_file, at the workspace root.
    EVR_ERR_IO when it cannot be read (err says why). */
evr_rc_t evr_fake_ws_unpack(evr_fake_ws_t *self, const char *tar_file, evr_err_t *err);
/*  path (a file, or a directory: the files under it) as a tar archive
    holding path's last component; caller frees *tar.  EVR_ERR_NOTFOUND
    when no file is there. */
evr_rc_t evr_fake_ws_pack(const evr_fake_ws_t *self, const char *path, uint8_t **tar,
                          size_t *len, evr_err_t *err);

#endif
