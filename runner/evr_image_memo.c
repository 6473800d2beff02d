/*  evr_image_memo.c: a small table of image names and the time until
    which each counts as present (see evr_image_memo.h). */
#include "evr_image_memo.h"

#include <stdlib.h>
#include <string.h>

#include "evr_common.h"

struct evr_image_memo {
    uint64_t fresh_ns;
    struct {
        char *image;        /* NULL: a free slot */
        uint64_t until;
    } e[EVR_IMAGE_MEMO_MAX];
};

evr_image_memo_t *
evr_image_memo_new(uint64_t fresh_ns)
{
    evr_image_memo_t *self = evr_calloc(1, sizeof *self);
    self->fresh_ns = fresh_ns;
    return self;
}

void
evr_image_memo_destroy(evr_image_memo_t **self_p)
{
    evr_image_memo_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < EVR_IMAGE_MEMO_MAX; i++)
        free(self->e[i].image);
    free(self);
    *self_p = NULL;
}

static int
s_find(const evr_image_memo_t *self, const char *image)
{
    for (int i = 0; i < EVR_IMAGE_MEMO_MAX; i++)
        if (self->e[i].image && !strcmp(self->e[i].image, image))
            return i;
    return -1;
}

void
evr_image_memo_set(evr_image_memo_t *self, const char *image, uint64_t now)
{
    int k = s_find(self, image);
    if (k < 0) {
        k = 0;      /* a free slot, else the one stale first */
        for (int i = 0; i < EVR_IMAGE_MEMO_MAX && self->e[k].image; i++)
            if (!self->e[i].image || self->e[i].until < self->e[k].until)
                k = i;
        free(self->e[k].image);
        self->e[k].image = evr_strdup(image);
    }
    self->e[k].until = now + self->fresh_ns;
}

void
evr_image_memo_renew(evr_image_memo_t *self, const char *image, uint64_t now)
{
    if (s_find(self, image) >= 0)
        evr_image_memo_set(self, image, now);
}

bool
evr_image_memo_fresh(const evr_image_memo_t *self, const char *image, uint64_t now)
{
    int k = s_find(self, image);
    return k >= 0 && now < self->e[k].until;
}

bool
evr_image_memo_drop(evr_image_memo_t *self, const char *image)
{
    int k = s_find(self, image);
    if (k < 0)
        return false;
    free(self->e[k].image);
    self->e[k].image = NULL;
    return true;
}
