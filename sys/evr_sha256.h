/*  evr_sha256.h: sha256 of artifact files, as 64 lower-case hex digits.

    The runner hashes each artifact file as it writes it, the broker each
    file it receives, the client each file it fetches: the same digest
    names a file's content in the step.artifact event and on the wire.
    libsodium's SHA-256 (a czmq dependency already) does the work.
*/
#ifndef EVR_SHA256_H_INCLUDED
#define EVR_SHA256_H_INCLUDED

#include "evr_common.h"

#define EVR_SHA256_HEX 65   /* 64 digits and a NUL */

typedef struct evr_sha256 evr_sha256_t;

/*  A hash being computed; update with bytes; finish writes the digest
    into hex and frees the state (*self_p NULL).  destroy frees without a
    digest (NULL-safe). */
evr_sha256_t *evr_sha256_new(void);
void evr_sha256_update(evr_sha256_t *self, const void *data, size_t len);
void evr_sha256_finish(evr_sha256_t **self_p, char hex[EVR_SHA256_HEX]);
void evr_sha256_destroy(evr_sha256_t **self_p);

/*  The digest and size of the file at path (read, links not followed).
    EVR_ERR_NOTFOUND when it does not exist; EVR_ERR_IO naming the path. */
evr_rc_t evr_sha256_file(const char *path, char hex[EVR_SHA256_HEX], uint64_t *size,
                         evr_err_t *err);

#endif
