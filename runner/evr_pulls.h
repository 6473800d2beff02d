/*  evr_pulls.h: the podman executor's image pulls (evr_exec.h's pull and
    pull_cancel), with the image memo and the runner's registry
    credentials.

    A `missing` pull without a pipeline's credentials that found (or
    fetched) its image is remembered (evr_image_memo.h) for the memo's
    time; the same pull within that time is answered from a turn of the
    loop, without podman.  The podman executor (evr_exec_podman.c) owns
    one; it drops an image from the memo when a create finds it gone, and
    renews it when a create of it succeeds. */
#ifndef EVR_PULLS_H_INCLUDED
#define EVR_PULLS_H_INCLUDED

#include "evr_exec.h"
#include "evr_podman.h"

/*  A pull is allowed this long (a big image on a slow registry). */
#define EVR_PULLS_TIMEOUT_MS (30L * 60 * 1000)

typedef struct evr_pulls evr_pulls_t;

/*  Pulls through pm on loop (both outlive the result), with a memo whose
    entries stay fresh memo_ms.  Caller owns the result. */
evr_pulls_t *evr_pulls_new(evr_podman_t *pm, evr_loop_t *loop, uint64_t memo_ms);
/*  Frees the pulls in flight without calling back: destroy pm first
    (which drops its calls). */
void evr_pulls_destroy(evr_pulls_t **self_p);
/*  A containers-auth.json file for pulls without a pipeline's
    credentials (NULL or "": podman's own). */
void evr_pulls_set_registry_auth(evr_pulls_t *self, const char *path);
/*  evr_exec.h's pull: r->id, r->digest, r->size, r->pulled; a handle
    for evr_pulls_cancel, valid until fn is called. */
void *evr_pulls_start(evr_pulls_t *self, const char *image, uint32_t policy, const char *auth,
                      evr_exec_line_fn *line, evr_exec_fn *fn, void *arg);
void evr_pulls_cancel(evr_pulls_t *self, void *handle);
/*  The Authorization header's value of auth ("user:password"), else of
    the registry_auth file, else NULL (podman's own); caller owns and
    wipes it.  False (err set) when the credentials are unusable. */
bool evr_pulls_auth(const evr_pulls_t *self, const char *auth, char **header, evr_err_t *err);
/*  The memo: forget image (true when it held it), or renew it. */
bool evr_pulls_memo_drop(evr_pulls_t *self, const char *image);
void evr_pulls_memo_renew(evr_pulls_t *self, const char *image);

#endif
