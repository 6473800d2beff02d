/*  evr_image_memo.h: which images the runner's storage held a moment ago.

    A `missing` pull of an image the storage holds costs a call to podman
    (~3 ms) on each job's critical path; a runner that runs the same
    image job after job asks podman only once per fresh_ns.  An entry
    says only "it was there then": the executor that uses it must cope
    with an image removed since (evr_exec_podman.c: a create refused with
    "image not known" drops the entry, pulls and creates again).  Holds
    at most EVR_IMAGE_MEMO_MAX images; a full memo gives up the entry that
    went stale first.  Times are monotonic nanoseconds, passed in. */
#ifndef EVR_IMAGE_MEMO_H_INCLUDED
#define EVR_IMAGE_MEMO_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#define EVR_IMAGE_MEMO_MAX 16

typedef struct evr_image_memo evr_image_memo_t;

/*  An empty memo whose entries stay fresh for fresh_ns (0: never fresh). */
evr_image_memo_t *evr_image_memo_new(uint64_t fresh_ns);
void evr_image_memo_destroy(evr_image_memo_t **self_p);
/*  image was there at now: fresh until now + fresh_ns (renewed if held). */
void evr_image_memo_set(evr_image_memo_t *self, const char *image, uint64_t now);
/*  Renews image only when the memo holds it (fresh or not). */
void evr_image_memo_renew(evr_image_memo_t *self, const char *image, uint64_t now);
/*  Whether image was there less than fresh_ns before now. */
bool evr_image_memo_fresh(const evr_image_memo_t *self, const char *image, uint64_t now);
/*  Forgets image: true when the memo held it (fresh or not). */
bool evr_image_memo_drop(evr_image_memo_t *self, const char *image);

#endif
