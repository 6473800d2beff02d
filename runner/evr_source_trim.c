/*  evr_source_trim.c: the runner's cache of git repositories kept under
    its git_cache_max_bytes (see evr_source.h).

    Each entry is a bare repository DIR/NAME.git (a submodule's:
    DIR/sub-HASH.git); the checkout script touches an entry each time it
    uses it, so its directory's mtime is its last use.  When the entries'
    sizes pass the cap, the ones used longest ago go first, as many as it
    takes.  An entry whose lock (NAME.git.lock) another process holds is
    in use and kept; one removed is renamed aside (.rm-NAME-PID) under
    its lock first, so a removal cut short leaves no damaged entry, and
    the next trim removes what it left.  The engine trims only when no
    checkout of its own runs, in a child process (evr_offload.h), and
    holds new checkouts off until the trim is over, so a submodule's
    entry (used under its parent's lock) is never removed under a
    checkout.
*/
#define _GNU_SOURCE
#include "evr_source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_cache.h"
#include "evr_unit.h"

/*  Entries looked at in one trim, at most (the others stay). */
#define S_ENTRIES_MAX 4096

typedef struct {
    char *name;
    uint64_t size;
    struct timespec used;
} s_entry_t;

static int
s_older(const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    if (x->used.tv_sec != y->used.tv_sec)
        return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
    if (x->used.tv_nsec != y->used.tv_nsec)
        return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

/*  Whether name is a cache entry: NAME.git, a directory. */
static bool
s_is_entry(const char *dir, const struct dirent *de, struct stat *sb)
{
    size_t n = strlen(de->d_name);
    if (n < 5 || strcmp(de->d_name + n - 4, ".git") || de->d_name[0] == '.')
        return false;
    char *path = evr_asprintf("%s/%s", dir, de->d_name);
    bool ok = lstat(path, sb) == 0 && S_ISDIR(sb->st_mode);
    free(path);
    return ok;
}

/*  Removes the entry name of cache_dir unless its lock is held; true
    when gone.  It is renamed aside under the lock first: a removal cut
    short leaves no entry half there for a checkout to use. */
static bool
s_remove(const char *cache_dir, const char *name)
{
    char *path = evr_asprintf("%s/%s", cache_dir, name);
    char *lock = evr_asprintf("%s.lock", path);
    char *aside = evr_asprintf("%s/.rm-%s-%ld", cache_dir, name, (long) getpid());
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool gone = false;
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && rename(path, aside) == 0) {
        unlink(lock);
        evr_err_t err;
        evr_unit_rmtree(aside, &err);   /* what is left of it, the next trim's sweep */
        gone = true;    /* no checkout finds it any more: its room counts as freed */
    }
    if (fd >= 0)
        close(fd);
    free(aside);
    free(lock);
    free(path);
    return gone;
}

/*  What removals cut short left (.rm-*): removed. */
static void
s_sweep(const char *cache_dir)
{
    DIR *d = opendir(cache_dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (!strncmp(de->d_name, ".rm-", 4)) {
            char *path = evr_asprintf("%s/%s", cache_dir, de->d_name);
            evr_err_t err;
            evr_unit_rmtree(path, &err);
            free(path);
        }
    if (d)
        closedir(d);
}

char **
evr_source_cache_trim(const char *cache_dir, uint64_t cap, uint32_t *n)
{
    *n = 0;
    s_sweep(cache_dir);
    DIR *d = opendir(cache_dir);
    if (!d)
        return NULL;
    s_entry_t *es = NULL;
    size_t ne = 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) && ne < S_ENTRIES_MAX) {
        struct stat sb;
        if (!s_is_entry(cache_dir, de, &sb))
            continue;
        char *path = evr_asprintf("%s/%s", cache_dir, de->d_name);
        es = evr_realloc(es, (ne + 1) * sizeof *es);
        es[ne] = (s_entry_t) { .name = evr_strdup(de->d_name), .size = evr_cache_du(path),
                               .used = sb.st_mtim };
        total += es[ne++].size;
        free(path);
    }
    closedir(d);
    char **gone = NULL;
    if (total > cap) {
        qsort(es, ne, sizeof *es, s_older);
        for (size_t i = 0; i < ne && total > cap; i++)
            if (s_remove(cache_dir, es[i].name)) {
                total -= es[i].size;
                gone = evr_realloc(gone, (*n + 1) * sizeof *gone);
                gone[(*n)++] = evr_strdup(es[i].name);
            }
    }
    for (size_t i = 0; i < ne; i++)
        free(es[i].name);
    free(es);
    return gone;
}
