/*  evr_sha256.c: SHA-256 through libsodium; see evr_sha256.h. */
#include "evr_sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct evr_sha256 {
    crypto_hash_sha256_state st;
};

evr_sha256_t *
evr_sha256_new(void)
{
    evr_sha256_t *self = evr_calloc(1, sizeof *self);
    crypto_hash_sha256_init(&self->st);
    return self;
}

void
evr_sha256_update(evr_sha256_t *self, const void *data, size_t len)
{
    crypto_hash_sha256_update(&self->st, data, len);
}

void
evr_sha256_finish(evr_sha256_t **self_p, char hex[EVR_SHA256_HEX])
{
    unsigned char out[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&(*self_p)->st, out);
    for (size_t i = 0; i < sizeof out; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    evr_sha256_destroy(self_p);
}

void
evr_sha256_destroy(evr_sha256_t **self_p)
{
    free(*self_p);
    *self_p = NULL;
}

evr_rc_t
evr_sha256_file(const char *path, char hex[EVR_SHA256_HEX], uint64_t *size, evr_err_t *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return evr_err_set(err, errno == ENOENT ? EVR_ERR_NOTFOUND : EVR_ERR_IO, "%s: %s", path,
                           strerror(errno));
    evr_sha256_t *h = evr_sha256_new();
    char buf[65536];
    ssize_t n;
    uint64_t total = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        evr_sha256_update(h, buf, (size_t) n);
        total += (uint64_t) n;
    }
    evr_rc_t rc = EVR_OK;
    if (n < 0) {
        rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", path, strerror(errno));
        evr_sha256_destroy(&h);
    }
    else {
        evr_sha256_finish(&h, hex);
        *size = total;
    }
    close(fd);
    return rc;
}
