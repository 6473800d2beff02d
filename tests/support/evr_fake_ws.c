/*  evr_fake_ws.c: a fake workspace (see evr_fake_ws.h): a list of files,
    packed and unpacked as tar with libarchive. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

#include "evr_fake_ws.h"

typedef struct s_file {
    char *path;
    uint8_t *data;
    size_t len;
    struct s_file *next;
} s_file_t;

struct evr_fake_ws {
    char *job_id;
    s_file_t *files;
};

evr_fake_ws_t *
evr_fake_ws_new(const char *job_id)
{
    evr_fake_ws_t *self = evr_calloc(1, sizeof *self);
    self->job_id = evr_strdup(job_id);
    return self;
}

void
evr_fake_ws_destroy(evr_fake_ws_t **self_p)
{
    evr_fake_ws_t *self = *self_p;
    if (!self)
        return;
    while (self->files) {
        s_file_t *x = self->files;
        self->files = x->next;
        free(x->path);
        free(x->data);
        free(x);
    }
    free(self->job_id);
    free(self);
    *self_p = NULL;
}

const char *
evr_fake_ws_job(const evr_fake_ws_t *self)
{
    return self->job_id;
}

const char *
evr_fake_ws_rel(const char *path)
{
    if (strncmp(path, "/workspace/", 11) == 0)
        path += 11;
    for (;;) {
        if (strncmp(path, "./", 2) == 0)
            path += 2;
        else if (*path == '/')
            path++;
        else
            return path;
    }
}

static s_file_t *
s_file(const evr_fake_ws_t *self, const char *path)
{
    for (s_file_t *x = self->files; x; x = x->next)
        if (strcmp(x->path, path) == 0)
            return x;
    return NULL;
}

void
evr_fake_ws_write(evr_fake_ws_t *self, const char *path, const void *data, size_t len,
                  bool append)
{
    path = evr_fake_ws_rel(path);
    s_file_t *x = s_file(self, path);
    if (!x) {
        x = evr_calloc(1, sizeof *x);
        x->path = evr_strdup(path);
        x->next = self->files;
        self->files = x;
    }
    if (!append)
        x->len = 0;
    x->data = evr_realloc(x->data, x->len + len + 1);
    if (len)
        memcpy(x->data + x->len, data, len);
    x->len += len;
}

const uint8_t *
evr_fake_ws_read(const evr_fake_ws_t *self, const char *path, size_t *len)
{
    const s_file_t *x = s_file(self, evr_fake_ws_rel(path));
    if (!x)
        return NULL;
    *len = x->len;
    return x->data;
}

evr_rc_t
evr_fake_ws_unpack(evr_fake_ws_t *self, const char *tar_file, evr_err_t *err)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    evr_rc_t rc = EVR_OK;
    if (archive_read_open_filename(a, tar_file, 10240) != ARCHIVE_OK) {
        rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tar_file, archive_error_string(a));
        goto out;
    }
    struct archive_entry *e;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if (archive_entry_filetype(e) != AE_IFREG)
            continue;
        char *path = evr_strdup(archive_entry_pathname(e));
        evr_fake_ws_write(self, path, "", 0, false);
        uint8_t buf[16384];
        la_ssize_t n;
        while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
            evr_fake_ws_write(self, path, buf, (size_t) n, true);
        free(path);
        if (n < 0) {
            rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tar_file, archive_error_string(a));
            goto out;
        }
    }
    if (r != ARCHIVE_EOF)
        rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tar_file, archive_error_string(a));
out:
    archive_read_free(a);
    return rc;
}

typedef struct {
    uint8_t *p;
    size_t len, cap;
} s_out_t;

static la_ssize_t
s_tar_write(struct archive *a, void *arg, const void *buf, size_t n)
{
    (void) a;
    s_out_t *o = arg;
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2;
        o->p = evr_realloc(o->p, o->cap);
    }
    memcpy(o->p + o->len, buf, n);
    o->len += n;
    return (la_ssize_t) n;
}

evr_rc_t
evr_fake_ws_pack(const evr_fake_ws_t *self, const char *path, uint8_t **tar, size_t *len,
                 evr_err_t *err)
{
    path = evr_fake_ws_rel(path);
    size_t plen = strlen(path);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    s_out_t o = { 0 };
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open(a, &o, NULL, s_tar_write, NULL);
    size_t files = 0;
    for (const s_file_t *x = self->files; x; x = x->next) {
        if (strncmp(x->path, path, plen) != 0 || (x->path[plen] && x->path[plen] != '/'))
            continue;
        char *name = evr_asprintf("%s%s", base, x->path + plen);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, name);
        archive_entry_set_size(e, (la_int64_t) x->len);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_write_header(a, e);
        archive_write_data(a, x->data, x->len);
        archive_entry_free(e);
        free(name);
        files++;
    }
    archive_write_close(a);
    archive_write_free(a);
    if (!files) {
        free(o.p);
        return evr_err_set(err, EVR_ERR_NOTFOUND, "%s: no such file or directory", path);
    }
    *tar = o.p;
    *len = o.len;
    return EVR_OK;
}
