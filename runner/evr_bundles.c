/*  evr_bundles.c: the podman executor's bundle directories (a short list
    by container name, newest first) and their layout. */
#include "evr_bundles.h"

#include <stdlib.h>
#include <string.h>

#include "evr_common.h"

typedef struct s_entry {
    char *name, *dir;
    struct s_entry *next;
} s_entry_t;

struct evr_bundles {
    s_entry_t *list;
    unsigned n;
    char *layout[2];    /* a directory is layout[0] ID layout[1]; NULL: not known */
};

evr_bundles_t *
evr_bundles_new(void)
{
    return evr_calloc(1, sizeof(evr_bundles_t));
}

void
evr_bundles_destroy(evr_bundles_t **self_p)
{
    evr_bundles_t *self = *self_p;
    if (!self)
        return;
    while (self->list)
        free(evr_bundles_take(self, self->list->name));
    evr_bundles_forget(self);
    free(self);
    *self_p = NULL;
}

bool
evr_bundles_learn(evr_bundles_t *self, const char *id, const char *dir)
{
    size_t n = id ? strlen(id) : 0;
    const char *at = n >= 32 && dir && !self->layout[0] ? strstr(dir, id) : NULL;
    if (!at || at == dir || at[-1] != '/' || at[n] != '/')
        return false;
    self->layout[0] = evr_strndup(dir, (size_t) (at - dir));
    self->layout[1] = evr_strdup(at + n);
    return true;
}

char *
evr_bundles_guess(const evr_bundles_t *self, const char *id)
{
    size_t n = id ? strlen(id) : 0;
    bool ok = self->layout[0] && n == 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');
    return ok ? evr_asprintf("%s%s%s", self->layout[0], id, self->layout[1]) : NULL;
}

void
evr_bundles_forget(evr_bundles_t *self)
{
    free(self->layout[0]);
    free(self->layout[1]);
    self->layout[0] = self->layout[1] = NULL;
}

char *
evr_bundles_take(evr_bundles_t *self, const char *name)
{
    for (s_entry_t **pp = &self->list; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->name, name)) {
            s_entry_t *e = *pp;
            char *dir = e->dir;
            *pp = e->next;
            self->n--;
            free(e->name);
            free(e);
            return dir;
        }
    return NULL;
}

void
evr_bundles_put(evr_bundles_t *self, const char *name, char **dir)
{
    free(evr_bundles_take(self, name));
    if (self->n >= EVR_BUNDLES_MAX) {
        s_entry_t **pp = &self->list;
        while ((*pp)->next)
            pp = &(*pp)->next;
        free(evr_bundles_take(self, (*pp)->name));
    }
    s_entry_t *e = evr_calloc(1, sizeof *e);
    e->name = evr_strdup(name);
    e->dir = *dir;
    *dir = NULL;
    e->next = self->list;
    self->list = e;
    self->n++;
}
