/*  evr_tarout.c: libarchive's disk reader walks the tree (physical: links
    are stored, never followed), its writer makes the tar, and the writer's
    output goes straight to the caller's function.  The entries' names
    are cut to start at the path's last component. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "evr_tarout.h"

/* entries per step at most (their headers cost little each) */
#define S_ENTRIES 64
#define S_BUF 65536

struct evr_tarout {
    struct archive *disk, *tar;
    struct archive_entry *entry;
    evr_tarout_fn *fn;
    void *arg;
    char *path;
    size_t strip;       /* bytes of path before its last component */
    bool in_data;       /* the current entry's contents are being copied */
    bool stopped;       /* fn said stop */
    uint8_t buf[S_BUF];
};

static la_ssize_t
s_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
    evr_tarout_t *t = ctx;
    if (!t->fn(buf, len, t->arg)) {
        t->stopped = true;
        archive_set_error(a, ECANCELED, "the receiver stopped the copy");
        return -1;
    }
    return (la_ssize_t) len;
}

evr_tarout_t *
evr_tarout_new(const char *path, evr_tarout_fn *fn, void *arg, evr_err_t *err)
{
    evr_tarout_t *t = evr_calloc(1, sizeof *t);
    t->fn = fn;
    t->arg = arg;
    t->path = evr_strdup(path);
    size_t n = strlen(t->path);
    while (n > 1 && t->path[n - 1] == '/')
        t->path[--n] = '\0';
    const char *slash = strrchr(t->path, '/');
    t->strip = slash ? (size_t) (slash - t->path) + 1 : 0;
    t->entry = archive_entry_new();
    t->disk = archive_read_disk_new();
    archive_read_disk_set_symlink_physical(t->disk);
    archive_read_disk_set_behavior(t->disk, ARCHIVE_READDISK_NO_XATTR
                                                | ARCHIVE_READDISK_NO_ACL
                                                | ARCHIVE_READDISK_NO_FFLAGS);
    t->tar = archive_write_new();
    archive_write_set_format_pax_restricted(t->tar);
    if (archive_read_disk_open(t->disk, t->path) != ARCHIVE_OK) {
        evr_err_set(err, EVR_ERR_IO, "reading %s: %s", t->path, archive_error_string(t->disk));
        evr_tarout_destroy(&t);
        return NULL;
    }
    if (archive_write_open(t->tar, t, NULL, s_write, NULL) != ARCHIVE_OK) {
        evr_err_set(err, EVR_ERR_IO, "tar of %s: %s", t->path, archive_error_string(t->tar));
        evr_tarout_destroy(&t);
        return NULL;
    }
    return t;
}

void
evr_tarout_destroy(evr_tarout_t **self_p)
{
    evr_tarout_t *t = *self_p;
    if (!t)
        return;
    *self_p = NULL;
    archive_read_free(t->disk);
    archive_write_free(t->tar);   /* closes it if open: a stopped stream ends short */
    archive_entry_free(t->entry);
    free(t->path);
    free(t);
}

static evr_rc_t
s_tar_err(evr_tarout_t *t, const char *what, evr_err_t *err)
{
    return evr_err_set(err, EVR_ERR_IO, "tar of %s: %s: %s", t->path, what,
                       t->stopped ? "the receiver stopped the copy"
                                  : archive_error_string(t->tar));
}

/*  The next entry: its header written, its contents to come. */
static evr_rc_t
s_next(evr_tarout_t *t, bool *done, evr_err_t *err)
{
    archive_entry_clear(t->entry);
    int r = archive_read_next_header2(t->disk, t->entry);
    if (r == ARCHIVE_EOF) {
        if (archive_write_close(t->tar) != ARCHIVE_OK)
            return s_tar_err(t, "its end", err);
        *done = true;
        return EVR_OK;
    }
    if (r < ARCHIVE_WARN)
        return evr_err_set(err, EVR_ERR_IO, "reading %s: %s", t->path,
                           archive_error_string(t->disk));
    const char *name = archive_entry_pathname(t->entry);
    if (!name || strncmp(name, t->path, t->strip) != 0)
        return evr_err_set(err, EVR_ERR_IO, "reading %s: an entry outside it (%s)", t->path,
                           name ? name : "no name");
    if (archive_entry_filetype(t->entry) == AE_IFSOCK)
        return EVR_OK;   /* no tar holds one (podman's leaves it out too) */
    char *cut = evr_strdup(name + t->strip);
    archive_entry_set_pathname(t->entry, cut);
    free(cut);
    if (archive_entry_filetype(t->entry) == AE_IFDIR)
        archive_read_disk_descend(t->disk);
    if (archive_write_header(t->tar, t->entry) < ARCHIVE_WARN)
        return s_tar_err(t, archive_entry_pathname(t->entry), err);
    t->in_data = archive_entry_filetype(t->entry) == AE_IFREG && archive_entry_size(t->entry) > 0;
    return EVR_OK;
}

evr_rc_t
evr_tarout_step(evr_tarout_t *self, size_t budget, bool *done, evr_err_t *err)
{
    *done = false;
    size_t moved = 0;
    for (int entries = 0; entries < S_ENTRIES && moved < budget && !*done;) {
        if (!self->in_data) {
            evr_rc_t rc = s_next(self, done, err);
            if (rc)
                return rc;
            entries++;
            continue;
        }
        la_ssize_t n = archive_read_data(self->disk, self->buf, sizeof self->buf);
        if (n < 0)
            return evr_err_set(err, EVR_ERR_IO, "reading %s%s: %s", self->path,
                               archive_entry_pathname(self->entry) + strcspn(
                                   archive_entry_pathname(self->entry), "/"),
                               archive_error_string(self->disk));
        if (n == 0) {
            self->in_data = false;
            continue;
        }
        if (archive_write_data(self->tar, self->buf, (size_t) n) < 0)
            return s_tar_err(self, archive_entry_pathname(self->entry), err);
        moved += (size_t) n;
    }
    return EVR_OK;
}
