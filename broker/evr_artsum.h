/*  evr_artsum.h: the sha256 of the whole artifact files the broker holds,
    kept in memory and read off the broker's loop (evr_artstore.c).

    A fetch naming a sha256 must know the held file's; reading a file of
    up to 4 GiB again on the broker's one thread would stall it past
    runners' leases.  So each digest known is kept (at most `max`, the
    least recently used dropped), keyed by "JOB/STEP/PATH" and valid only
    for the inode, size and mtime it was taken of; a file of at most
    `inline_max` bytes is read at once, a larger one by a worker thread (a
    czmq actor: the loop is never blocked), its digest taken in with
    evr_artsum_collect once read.  A digest is never made up: each is of
    the bytes of that inode, size and mtime, checked again after reading.
*/
#ifndef EVR_ARTSUM_H_INCLUDED
#define EVR_ARTSUM_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "evr_common.h"
#include "evr_sha256.h"

typedef struct evr_artsum evr_artsum_t;

typedef enum {
    EVR_ARTSUM_KNOWN,   /* the digest, in hex */
    EVR_ARTSUM_READING, /* a worker reads the file: ask again later */
    EVR_ARTSUM_FAILED,  /* the file cannot be read (said in err) */
    EVR_ARTSUM_BUSY,    /* the worker has 64 files waiting: not asked; ask again later */
} evr_artsum_rc_t;

/*  A store of at most max digests (> 0), files of at most inline_max
    bytes read at once; starts its worker (with every signal blocked: the
    caller's signals stay its own). */
evr_artsum_t *evr_artsum_new(size_t max, uint64_t inline_max);
/*  Stops the worker at its next 1 MiB read: the files still waiting are
    dropped unread, so this does not wait for them. */
void evr_artsum_destroy(evr_artsum_t **self_p);
/*  Stops the worker so (destroy does it first); later files are not
    asked (BUSY). */
void evr_artsum_stop(evr_artsum_t *self);

/*  The digest kept for key, into hex, when it was taken of the file sb
    describes (inode, size, mtime); false: none (or another file's). */
bool evr_artsum_lookup(evr_artsum_t *self, const char *key, const struct stat *sb,
                       char hex[EVR_SHA256_HEX]);

/*  Keeps hex as the digest of key's file sb (read elsewhere, or checked
    as it was received); the worker's digest of another copy of key, if
    it reads one, is then not kept. */
void evr_artsum_put(evr_artsum_t *self, const char *key, const struct stat *sb, const char *hex);

/*  The digest of key's file at path (sb its stat): kept, or read now
    (inline_max bytes at most: KNOWN, hex filled and kept), or handed to
    the worker (READING; a file already being read is not asked twice).
    BUSY: 64 files wait for the worker already (or it could not be
    asked): nothing is asked, ask again later.  FAILED: cannot be read,
    or it changed while read (err says which); a large file the worker
    could not read is kept as such for its inode, size and mtime, and
    answered FAILED without reading it again. */
evr_artsum_rc_t evr_artsum_get(evr_artsum_t *self, const char *key, const char *path,
                               const struct stat *sb, char hex[EVR_SHA256_HEX], evr_err_t *err);

/*  Takes in the digests the worker read, without waiting: each kept and
    passed to done (key, the stat it is of, hex) when it is of the stat
    asked for last of key, or nothing is kept for key (an older copy's
    digest never replaces the current copy's); a file that could not be
    read (or changed) kept as failed for that stat, done not called.
    Returns how many digests were taken in. */
typedef void(evr_artsum_done_fn)(void *arg, const char *key, const struct stat *sb,
                                 const char *hex);
int evr_artsum_collect(evr_artsum_t *self, evr_artsum_done_fn *done, void *arg);

/*  The worker's pipe: readable when a digest waits for collect. */
void *evr_artsum_sock(evr_artsum_t *self);

/*  Whole files read so far (inline and by the worker), and digests kept. */
uint64_t evr_artsum_reads(const evr_artsum_t *self);
/*  Bytes the worker read so far (for tests: how soon it stopped). */
uint64_t evr_artsum_worker_bytes(const evr_artsum_t *self);
size_t evr_artsum_size(const evr_artsum_t *self);

#endif
