/*  evr_artifact.c: tar -> directory with libarchive, path-checked. */
#include "evr_artifact.h"
#include "evr_spec.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static evr_rc_t
s_write_file(struct archive *a, const char *final, evr_err_t *err, uint64_t *total)
{
    char *tmp = evr_asprintf("%s.evrun-partial", final);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        evr_rc_t rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    evr_rc_t rc = EVR_OK;
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
        *total += (uint64_t) n;
        if (*total > EVR_ARTIFACT_MAX_BYTES) {
            rc = evr_err_set(err, EVR_ERR_LIMIT, "artifacts exceed %llu bytes",
                             (unsigned long long) EVR_ARTIFACT_MAX_BYTES);
            break;
        }
        for (la_ssize_t off = 0; !rc && off < n;) {
            ssize_t w = write(fd, buf + off, (size_t) (n - off));
            if (w <= 0)   /* a write of nothing: the disk is full */
                rc = evr_err_write(err, tmp, w < 0 ? errno : ENOSPC);
            off += w > 0 ? w : 0;
        }
        if (rc)
            break;
    }
    if (!rc && n < 0)
        rc = evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(a));
    if (!rc && fsync(fd) != 0)
        rc = evr_err_write(err, tmp, errno);
    close(fd);
    if (!rc && rename(tmp, final) != 0)
        rc = evr_err_set(err, EVR_ERR_IO, "rename %s: %s", final, strerror(errno));
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

evr_rc_t
evr_artifact_unpack(const char *tar_path, const char *dest, uint32_t *files, evr_err_t *err)
{
    *files = 0;
    evr_rc_t rc = evr_mkdirs(dest, err);
    if (rc)
        return rc;
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_filename(a, tar_path, 65536) != ARCHIVE_OK) {
        rc = evr_err_set(err, EVR_ERR_IO, "tar %s: %s", tar_path, archive_error_string(a));
        archive_read_free(a);
        return rc;
    }
    struct archive_entry *e;
    uint32_t entries = 0;
    uint64_t total = 0;
    int r;
    while (!rc && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if (++entries > EVR_ARTIFACT_MAX_ENTRIES) {
            rc = evr_err_set(err, EVR_ERR_LIMIT, "more than %d entries", EVR_ARTIFACT_MAX_ENTRIES);
            break;
        }
        const char *why = name ? evr_spec_path_problem(name) : "no name";
        if (why) {
            rc = evr_err_set(err, EVR_ERR_IO, "entry \"%s\": %s", name ? name : "", why);
            break;
        }
        if (archive_entry_hardlink(e) || archive_entry_symlink(e)) {
            rc = evr_err_set(err, EVR_ERR_IO, "entry \"%s\": links are not copied out", name);
            break;
        }
        char *path = evr_asprintf("%s/%s", dest, name);
        mode_t type = archive_entry_filetype(e);
        if (type == AE_IFDIR)
            rc = evr_mkdirs(path, err);
        else if (type == AE_IFREG) {
            char *slash = strrchr(path, '/');
            *slash = '\0';
            rc = evr_mkdirs(path, err);
            *slash = '/';
            if (!rc)
                rc = s_write_file(a, path, err, &total);
            if (!rc)
                (*files)++;
        }
        /* devices, fifos and sockets are left out */
        free(path);
    }
    if (!rc && r != ARCHIVE_EOF)
        rc = evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(a));
    archive_read_free(a);
    return rc;
}

/* ------------------------------------------------------------- resources */

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} s_membuf_t;

static la_ssize_t
s_mem_write(struct archive *a, void *arg, const void *p, size_t n)
{
    (void) a;
    s_membuf_t *m = arg;
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->buf = evr_realloc(m->buf, m->cap);
    }
    memcpy(m->buf + m->len, p, n);
    m->len += n;
    return (la_ssize_t) n;
}

static evr_rc_t
s_copy_data(struct archive *in, struct archive *out, evr_err_t *err, uint64_t *total)
{
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(in, buf, sizeof buf)) > 0) {
        *total += (uint64_t) n;
        if (*total > EVR_ARTIFACT_MAX_BYTES)
            return evr_err_set(err, EVR_ERR_LIMIT, "more than %llu bytes",
                               (unsigned long long) EVR_ARTIFACT_MAX_BYTES);
        if (archive_write_data(out, buf, (size_t) n) != n)
            return evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(out));
    }
    if (n < 0)
        return evr_err_set(err, EVR_ERR_IO, "%s", archive_error_string(in));
    return EVR_OK;
}

/*  Entries of the archive `in` re-rooted under dest into `out`. */
static evr_rc_t
s_reroot(struct archive *in, struct archive *out, const char *dest, evr_err_t *err)
{
    struct archive_entry *e;
    uint32_t entries = 0;
    uint64_t total = 0;
    int r;
    evr_rc_t rc = EVR_OK;
    while (!rc && (r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        while (name && name[0] == '.' && name[1] == '/')
            name += 2;   /* "./src/x" is "src/x" */
        if (++entries > EVR_ARTIFACT_MAX_ENTRIES)
            return evr_err_set(err, EVR_ERR_LIMIT, "more than %d entries",
                               EVR_ARTIFACT_MAX_ENTRIES);
        if (name && (!*name || strcmp(name, ".") == 0 || strcmp(name, "./") == 0))
            continue;
        const char *why = name ? evr_spec_path_problem(name) : "no name";
        if (why)
            return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": %s", name ? name : "", why);
        if (archive_entry_hardlink(e) || archive_entry_symlink(e))
            return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": links are not unpacked", name);
        mode_t type = archive_entry_filetype(e);
        if (type != AE_IFREG && type != AE_IFDIR)
            continue;
        struct archive_entry *o = archive_entry_clone(e);
        char *path = evr_asprintf("%s/%s", dest, name);
        archive_entry_set_pathname(o, path);
        archive_entry_set_uid(o, 0);
        archive_entry_set_gid(o, 0);
        /* archive_read_data gives a sparse file's holes as zeros: written
           whole, not as a sparse map with no data after it (a tar podman
           refuses with "unexpected EOF") */
        archive_entry_sparse_clear(o);
        free(path);
        if (archive_write_header(out, o) != ARCHIVE_OK)
            rc = evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(out));
        else if (type == AE_IFREG)
            rc = s_copy_data(in, out, err, &total);
        archive_entry_free(o);
    }
    if (!rc && r != ARCHIVE_EOF)
        rc = evr_err_set(err, EVR_ERR_IO, "%s", archive_error_string(in));
    return rc;
}

evr_rc_t
evr_resource_tar(const char *file, const char *dest, uint8_t **tar, size_t *len, evr_err_t *err)
{
    *tar = NULL;
    *len = 0;
    const char *why = evr_spec_path_problem(dest);
    if (why)
        return evr_err_set(err, EVR_ERR_IO, "path \"%s\": %s", dest, why);
    s_membuf_t mem = { 0 };
    struct archive *out = archive_write_new();
    archive_write_set_format_pax_restricted(out);
    archive_write_set_bytes_in_last_block(out, 1);
    archive_write_open(out, &mem, NULL, s_mem_write, NULL);
    evr_rc_t rc = EVR_OK;
    /* a tar archive, perhaps compressed? */
    struct archive *in = archive_read_new();
    archive_read_support_filter_all(in);
    archive_read_support_format_tar(in);
    archive_read_support_format_gnutar(in);
    bool is_tar = archive_read_open_filename(in, file, 65536) == ARCHIVE_OK;
    struct archive_entry *peek = NULL;
    if (is_tar)
        is_tar = archive_read_next_header(in, &peek) == ARCHIVE_OK;
    archive_read_free(in);
    if (is_tar) {
        in = archive_read_new();
        archive_read_support_filter_all(in);
        archive_read_support_format_tar(in);
        archive_read_support_format_gnutar(in);
        archive_read_open_filename(in, file, 65536);
        rc = s_reroot(in, out, dest, err);
        archive_read_free(in);
    }
    else {
        /* a plain file: dest is its name */
        struct archive_entry *e = archive_entry_new();
        FILE *fp = fopen(file, "rb");
        if (!fp)
            rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", file, strerror(errno));
        else {
            fseek(fp, 0, SEEK_END);
            long size = ftell(fp);
            fseek(fp, 0, SEEK_SET);
            archive_entry_set_pathname(e, dest);
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, size);
            if (archive_write_header(out, e) != ARCHIVE_OK)
                rc = evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(out));
            char buf[65536];
            size_t n;
            while (!rc && (n = fread(buf, 1, sizeof buf, fp)) > 0)
                if (archive_write_data(out, buf, n) != (la_ssize_t) n)
                    rc = evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(out));
            fclose(fp);
        }
        archive_entry_free(e);
    }
    archive_write_close(out);
    archive_write_free(out);
    if (rc) {
        free(mem.buf);
        return rc;
    }
    *tar = mem.buf;
    *len = mem.len;
    return EVR_OK;
}
