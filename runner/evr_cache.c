/*  evr_cache.c: cache names, keys and LRU records; see evr_cache.h. */
#define _GNU_SOURCE
#include "evr_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "evr_sha256.h"

#define S_PREFIX "evrun-cache-"
#define S_HASH_MAX (16u << 20)     /* bytes of a FILE of {{ sha256 FILE }} */

struct evr_cache_job {
    uint32_t nsteps;
    evr_exec_mount_t **mounts;  /* per step */
    uint32_t *n;
    char **volumes;             /* distinct, owned */
    uint32_t nvol;
    char **dests;               /* owned strings the mounts point to */
    uint32_t ndest;
};

static bool s_reads;
static void
s_piece_reads(bool file, const char *s, size_t n, void *arg)
{
    (void) s, (void) n, (void) arg;
    s_reads |= file;
}

static bool
s_list_reads(const evr_reclist_t *l)
{
    for (uint32_t i = 0; i < l->n; i++) {
        s_reads = false;
        evr_spec_cache_key_walk(evr_spec_cache(l, i)->key, s_piece_reads, NULL);
        if (s_reads)
            return true;
    }
    return false;
}

bool
evr_cache_reads_files(const evr_spec_t *spec)
{
    if (s_list_reads(&spec->cache))
        return true;
    for (uint32_t i = 0; i < spec->steps.n; i++)
        if (s_list_reads(&evr_spec_step(spec, i)->cache))
            return true;
    return false;
}

/*  The sha256 of FILE beneath dir (in its subdirectory src in the /job
    layout, job_layout), no link followed (openat2). */
static evr_rc_t
s_hash_file(const char *dir, bool job_layout, const char *file, char hex[EVR_SHA256_HEX],
            evr_err_t *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return evr_err_set(err, EVR_ERR_CONFIG, "the workspace (%s): %s", dir, strerror(errno));
    struct open_how how = { .flags = O_RDONLY | O_CLOEXEC,
                            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
                                     | RESOLVE_NO_MAGICLINKS };
    char *rel = evr_asprintf("%s%s", job_layout ? "src/" : "", file);
    int fd = (int) syscall(SYS_openat2, dfd, rel, &how, sizeof how);
    int en = errno;
    free(rel);
    close(dfd);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0)
            close(fd);
        return evr_err_set(err, EVR_ERR_CONFIG, "{{ sha256 %s }}: %s in %s (read once it is "
                           "prepared, before the first step; links are not followed)", file,
                           fd < 0 ? (en == ENOENT ? "no such file"
                           : en == ELOOP ? "a link" : strerror(en)) : "not a regular file",
                           job_layout ? "/job/src, the source's directory" : "the workspace");
    }
    /* hashed on the runner's loop: a file the job's source chose is
       bounded (a lock file is far smaller) */
    uint64_t size = (uint64_t) sb.st_size, seen = 0;
    evr_sha256_t *h = size <= S_HASH_MAX ? evr_sha256_new() : NULL;
    char buf[65536];
    ssize_t n = 0;
    while (h && seen <= S_HASH_MAX && (n = read(fd, buf, sizeof buf)) > 0) {
        evr_sha256_update(h, buf, (size_t) n);
        seen += (uint64_t) n;
    }
    en = errno;
    close(fd);
    if (!h || seen > S_HASH_MAX) {     /* over it, or grown past it since the fstat */
        evr_sha256_destroy(&h);
        return evr_err_set(err, EVR_ERR_CONFIG, "{{ sha256 %s }}: over %u MiB (%llu bytes), "
                           "more than a cache key hashes: hash a smaller file, such as a lock "
                           "file", file, S_HASH_MAX >> 20,
                           (unsigned long long) (seen > size ? seen : size));
    }
    if (n < 0) {
        evr_sha256_destroy(&h);
        return evr_err_set(err, EVR_ERR_CONFIG, "{{ sha256 %s }}: %s", file, strerror(en));
    }
    evr_sha256_finish(&h, hex);
    return EVR_OK;
}

/*  A key being resolved: the text so far, the first error. */
typedef struct {
    const char *ws;
    bool job_layout;
    char *text;
    evr_rc_t rc;
    evr_err_t *err;
} s_key_t;

static void
s_piece(bool file, const char *s, size_t n, void *arg)
{
    s_key_t *k = arg;
    char *piece = evr_strndup(s, n);
    char hex[EVR_SHA256_HEX] = "";
    if (file && !k->rc)
        k->rc = k->ws ? s_hash_file(k->ws, k->job_layout, piece, hex, k->err)
                      : evr_err_set(k->err, EVR_ERR_CONFIG, "no workspace to read %s in", piece);
    char *t = evr_asprintf("%s%s", k->text, file ? hex : piece);
    free(k->text);
    k->text = t;
    free(piece);
}

/*  The volume of spec's cache c into *vol (caller frees). */
static evr_rc_t
s_volume(const evr_spec_t *spec, const evr_cache_t *c, const char *ws, char **vol,
         evr_err_t *err)
{
    const char *pipeline = spec->pipeline;
    s_key_t k = { .ws = ws, .job_layout = evr_spec_has_source(spec), .text = evr_strdup(""),
                  .err = err };
    evr_spec_cache_key_walk(c->key, s_piece, &k);
    if (!k.rc) {
        evr_sha256_t *h = evr_sha256_new();
        evr_sha256_update(h, pipeline, strlen(pipeline) + 1);
        evr_sha256_update(h, k.text, strlen(k.text));
        char hex[EVR_SHA256_HEX];
        evr_sha256_finish(&h, hex);
        *vol = evr_asprintf(S_PREFIX "%.24s", hex);
    }
    free(k.text);
    return k.rc;
}

/*  A cache's path in the unit: absolute, or relative to the working
    directory wd (/workspace; /job/src in the /job layout); its empty and
    "." components left out, so that "./nm" and "nm" are one mount (a
    step's replaces the pipeline's; podman refuses two at one place). */
static char *
s_dest(const char *wd, const char *path)
{
    char *t = evr_spec_path_tidy(path);
    char *dest = *path == '/' ? evr_asprintf("/%s", t) : evr_asprintf("%s/%s", wd, t);
    free(t);
    return dest;
}

/*  Adds (or replaces, same dest) a mount of step i. */
static void
s_mount(evr_cache_job_t *cj, uint32_t i, const char *vol, const char *wd, const char *path)
{
    char *dest = s_dest(wd, path);
    const char *v = NULL, *d = NULL;
    for (uint32_t k = 0; k < cj->nvol && !v; k++)
        if (!strcmp(cj->volumes[k], vol))
            v = cj->volumes[k];
    if (!v) {
        cj->volumes = evr_realloc(cj->volumes, (cj->nvol + 1) * sizeof *cj->volumes);
        v = cj->volumes[cj->nvol++] = evr_strdup(vol);
    }
    for (uint32_t k = 0; k < cj->ndest && !d; k++)
        if (!strcmp(cj->dests[k], dest))
            d = cj->dests[k];
    if (!d) {
        cj->dests = evr_realloc(cj->dests, (cj->ndest + 1) * sizeof *cj->dests);
        d = cj->dests[cj->ndest++] = evr_strdup(dest);
    }
    free(dest);
    for (uint32_t k = 0; k < cj->n[i]; k++)
        if (!strcmp(cj->mounts[i][k].dest, d)) {
            cj->mounts[i][k].volume = v;   /* the step's replaces the pipeline's */
            return;
        }
    cj->mounts[i] = evr_realloc(cj->mounts[i], (cj->n[i] + 1) * sizeof **cj->mounts);
    cj->mounts[i][cj->n[i]++] = (evr_exec_mount_t) { .volume = v, .dest = d };
}

/*  The entries of list l into the mounts of step i (every step: i ==
    UINT32_MAX); where names it in errors. */
static evr_rc_t
s_add_list(evr_cache_job_t *cj, const evr_spec_t *spec, const evr_reclist_t *l, uint32_t i,
           const char *ws, const char *where, evr_err_t *err)
{
    for (uint32_t k = 0; k < l->n; k++) {
        const evr_cache_t *c = evr_spec_cache(l, k);
        char *vol = NULL;
        evr_err_t e2;
        if (s_volume(spec, c, ws, &vol, &e2)) {
            /* the key (and its file) quoted escaped: a line break or a
               terminal's escape in it stays out of the reason */
            char key[EVR_ERR_MAX / 2], why[EVR_ERR_MAX];
            evr_text_escape_ctl(c->key, key, sizeof key);
            evr_text_escape_ctl(e2.msg, why, sizeof why);
            return evr_err_set(err, EVR_ERR_CONFIG, "%s[%u] (key \"%s\"): %s", where, k, key,
                               why);
        }
        for (uint32_t s = 0; s < cj->nsteps; s++)
            if (i == UINT32_MAX || s == i)
                s_mount(cj, s, vol, evr_spec_has_source(spec) ? "/job/src" : "/workspace",
                        c->path);
        free(vol);
    }
    return EVR_OK;
}

evr_rc_t
evr_cache_resolve(const evr_spec_t *spec, const char *ws_dir, evr_cache_job_t **out,
                  evr_err_t *err)
{
    *out = NULL;
    bool any = spec->cache.n > 0;
    for (uint32_t i = 0; i < spec->steps.n; i++)
        any |= evr_spec_step(spec, i)->cache.n > 0;
    if (!any)
        return EVR_OK;
    evr_cache_job_t *cj = evr_calloc(1, sizeof *cj);
    cj->nsteps = spec->steps.n;
    cj->mounts = evr_calloc(cj->nsteps, sizeof *cj->mounts);
    cj->n = evr_calloc(cj->nsteps, sizeof *cj->n);
    /* a key's files are read where the steps start: the workspace, or
       the source's directory src/ in the /job layout (s_hash_file) */
    evr_rc_t rc = s_add_list(cj, spec, &spec->cache, UINT32_MAX, ws_dir, "cache", err);
    for (uint32_t i = 0; i < spec->steps.n && !rc; i++) {
        char where[96];
        snprintf(where, sizeof where, "steps[%u].cache", i);
        rc = s_add_list(cj, spec, &evr_spec_step(spec, i)->cache, i, ws_dir, where, err);
    }
    if (rc)
        evr_cache_job_destroy(&cj);
    *out = cj;
    return rc;
}

void
evr_cache_job_destroy(evr_cache_job_t **self_p)
{
    evr_cache_job_t *cj = *self_p;
    if (!cj)
        return;
    for (uint32_t i = 0; i < cj->nsteps; i++)
        free(cj->mounts[i]);
    for (uint32_t i = 0; i < cj->nvol; i++)
        free(cj->volumes[i]);
    for (uint32_t i = 0; i < cj->ndest; i++)
        free(cj->dests[i]);
    free(cj->mounts);
    free(cj->n);
    free(cj->volumes);
    free(cj->dests);
    free(cj);
    *self_p = NULL;
}

const evr_exec_mount_t *
evr_cache_mounts(const evr_cache_job_t *self, uint32_t step, uint32_t *n)
{
    *n = self && step < self->nsteps ? self->n[step] : 0;
    return *n ? self->mounts[step] : NULL;
}

uint32_t
evr_cache_volumes(const evr_cache_job_t *self, const char *const **names)
{
    *names = self ? (const char *const *) self->volumes : NULL;
    return self ? self->nvol : 0;
}

bool
evr_cache_uses(const evr_cache_job_t *self, const char *volume)
{
    for (uint32_t i = 0; self && i < self->nvol; i++)
        if (!strcmp(self->volumes[i], volume))
            return true;
    return false;
}

evr_rc_t
evr_cache_job_save(const evr_cache_job_t *self, const char *path, evr_err_t *err)
{
    char *tmp = evr_asprintf("%s.tmp", path);
    FILE *fp = fopen(tmp, "we");
    evr_rc_t rc = EVR_OK;
    if (!fp)
        rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tmp, strerror(errno));
    for (uint32_t i = 0; fp && i < self->nsteps; i++)
        for (uint32_t k = 0; k < self->n[i]; k++)
            fprintf(fp, "%u\t%s\t%s\n", i, self->mounts[i][k].volume, self->mounts[i][k].dest);
    if (fp && (fflush(fp) != 0 || fsync(fileno(fp)) != 0))
        rc = evr_err_write(err, tmp, errno);
    if (fp && fclose(fp) != 0 && !rc)
        rc = evr_err_write(err, tmp, errno);
    if (!rc && rename(tmp, path) != 0)
        rc = evr_err_set(err, EVR_ERR_IO, "rename %s: %s", tmp, strerror(errno));
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

evr_cache_job_t *
evr_cache_job_load(const char *path, uint32_t nsteps)
{
    FILE *fp = fopen(path, "re");
    if (!fp)
        return NULL;
    evr_cache_job_t *cj = evr_calloc(1, sizeof *cj);
    cj->nsteps = nsteps;
    cj->mounts = evr_calloc(nsteps ? nsteps : 1, sizeof *cj->mounts);
    cj->n = evr_calloc(nsteps ? nsteps : 1, sizeof *cj->n);
    char line[EVR_SPEC_MAX_PATH + 128];
    bool ok = true;
    while (ok && fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = '\0';
        char *vol = strchr(line, '\t'), *dest = vol ? strchr(vol + 1, '\t') : NULL;
        char *end;
        unsigned long i = strtoul(line, &end, 10);
        ok = vol && dest && end == vol && i < nsteps && dest[1] == '/'
          && !strncmp(vol + 1, S_PREFIX, strlen(S_PREFIX));
        if (ok) {
            *dest = '\0';
            s_mount(cj, (uint32_t) i, vol + 1, "/", dest + 1);   /* dest is absolute */
        }
    }
    fclose(fp);
    if (!ok)
        evr_cache_job_destroy(&cj);
    return cj;
}

/* ------------------------------------------------------------ LRU records */

static uint64_t
s_read_size(const char *path)
{
    FILE *fp = fopen(path, "re");
    unsigned long long v = 0;
    if (fp) {
        if (fscanf(fp, "%llu", &v) != 1)
            v = 0;
        fclose(fp);
    }
    return v;
}

static void
s_write_size(const char *path, uint64_t size)
{
    char *tmp = evr_asprintf("%s.tmp", path);
    FILE *fp = fopen(tmp, "we");
    if (fp) {
        fprintf(fp, "%llu\n", (unsigned long long) size);
        if (fclose(fp) == 0)
            rename(tmp, path);
    }
    unlink(tmp);
    free(tmp);
}

evr_rc_t
evr_cache_touch(const char *dir, const char *volume, evr_err_t *err)
{
    evr_rc_t rc = evr_mkdirs(dir, err);
    if (rc)
        return rc;
    char *path = evr_asprintf("%s/%s", dir, volume);
    struct stat sb;
    if (stat(path, &sb) != 0)
        s_write_size(path, 0);
    else
        utimensat(AT_FDCWD, path, NULL, 0);   /* now */
    free(path);
    return EVR_OK;
}

void
evr_cache_set_size(const char *dir, const char *volume, uint64_t size)
{
    char *path = evr_asprintf("%s/%s", dir, volume);
    s_write_size(path, size);   /* its mtime: now, the end of a use */
    free(path);
}

static uint64_t s_du_total;

static int
s_du_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void) path, (void) ftw;
    if (type == FTW_F && S_ISREG(sb->st_mode))
        s_du_total += (uint64_t) sb->st_size;
    return 0;
}

uint64_t
evr_cache_du(const char *path)
{
    s_du_total = 0;
    nftw(path, s_du_one, 32, FTW_PHYS);
    return s_du_total;
}

typedef struct {
    char *name;
    uint64_t size;
    struct timespec used;
} s_rec_t;

static int
s_older(const void *a, const void *b)
{
    const s_rec_t *x = a, *y = b;
    if (x->used.tv_sec != y->used.tv_sec)
        return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
    if (x->used.tv_nsec != y->used.tv_nsec)
        return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

char **
evr_cache_evict(const char *dir, uint64_t cap, bool (*in_use)(const char *, void *), void *arg,
                uint32_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    s_rec_t *recs = NULL;
    size_t nrec = 0, cap_recs = 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, S_PREFIX, strlen(S_PREFIX)) || strchr(e->d_name, '.'))
            continue;
        char *path = evr_asprintf("%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) == 0) {
            if (nrec == cap_recs) {
                cap_recs = cap_recs ? 2 * cap_recs : 16;
                recs = evr_realloc(recs, cap_recs * sizeof *recs);
            }
            recs[nrec] = (s_rec_t) { evr_strdup(e->d_name), s_read_size(path), sb.st_mtim };
            total += recs[nrec++].size;
        }
        free(path);
    }
    closedir(d);
    qsort(recs, nrec, sizeof *recs, s_older);
    char **out = evr_calloc(nrec + 1, sizeof *out);
    for (size_t i = 0; i < nrec; i++) {
        if (total > cap && !in_use(recs[i].name, arg)) {
            char *path = evr_asprintf("%s/%s", dir, recs[i].name);
            unlink(path);
            free(path);
            total -= recs[i].size;
            out[(*n)++] = recs[i].name;
        }
        else
            free(recs[i].name);
    }
    free(recs);
    return out;
}
