/*  evr_bundles.h: where conmon listens for the containers the podman
    executor made: each one's bundle directory (podman's StaticDir, which
    holds conmon's attach socket, evr_conmon.h) from its create until its
    attach or removal, and the layout of those directories.

    The layout (STORAGE/overlay-containers/ID/userdata under podman's
    defaults) is learned from the first inspect of a container whose id
    names a directory of its StaticDir, so that later creates need no
    inspect: the directory of container ID is then the layout with ID in
    it.  A wrong guess costs nothing but speed: no socket is there, and
    the executor attaches through podman (and forgets the layout). */
#ifndef EVR_BUNDLES_H_INCLUDED
#define EVR_BUNDLES_H_INCLUDED

#include <stdbool.h>

/*  Entries held at most: a full list gives up its oldest. */
#define EVR_BUNDLES_MAX 64

typedef struct evr_bundles evr_bundles_t;

/*  An empty list, no layout known.  Caller owns the result. */
evr_bundles_t *evr_bundles_new(void);
void evr_bundles_destroy(evr_bundles_t **self_p);

/*  Learns the layout from container id's StaticDir dir, unless one is
    known, or dir does not hold id (at least 32 characters) as the name of
    one of its directories.  Returns whether it learned. */
bool evr_bundles_learn(evr_bundles_t *self, const char *id, const char *dir);
/*  The layout's directory of container id (caller owns it), or NULL: no
    layout known, or an id that is not 64 lowercase hex digits. */
char *evr_bundles_guess(const evr_bundles_t *self, const char *id);
/*  Forgets the layout (the next inspect teaches it again). */
void evr_bundles_forget(evr_bundles_t *self);

/*  Holds *dir (taken: *dir is NULL after) as the directory of the
    container named name, in place of one it had. */
void evr_bundles_put(evr_bundles_t *self, const char *name, char **dir);
/*  The directory of name, out of the list (caller owns it), or NULL. */
char *evr_bundles_take(evr_bundles_t *self, const char *name);

#endif
