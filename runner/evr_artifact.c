/*  evr_artifact.c: tar -> directory with libarchive, path-checked.

    Artifacts: the tar copied out of a container is read twice.  The first
    pass checks every header (names, links, the entry count, the declared
    sizes against the limit) and writes nothing; the second writes each file
    under a temporary name and renames it into place, and on any error
    removes what it wrote.  Resources: the download becomes a tar in a file
    (never in memory), the declared size of each entry checked against the
    limit before its bytes are copied, so a compression bomb stops at its
    header. */
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
s_limit(evr_err_t *err, uint64_t max_bytes)
{
    return evr_err_set(err, EVR_ERR_LIMIT, "the contents are over the limit of %llu bytes",
                       (unsigned long long) max_bytes);
}

/*  Adds an entry's declared size to *total; EVR_ERR_LIMIT past max. */
static evr_rc_t
s_count(struct archive_entry *e, uint64_t max_bytes, uint64_t *total, evr_err_t *err)
{
    la_int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    if (size < 0 || (uint64_t) size > max_bytes - *total)
        return s_limit(err, max_bytes);
    *total += (uint64_t) size;
    return EVR_OK;
}

static struct archive *
s_open_tar(const char *path, bool filters, evr_err_t *err)
{
    struct archive *a = archive_read_new();
    if (filters)
        archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
        evr_err_set(err, EVR_ERR_IO, "tar %s: %s", path, archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    return a;
}

/*  The checks every entry of an artifact passes; rc, or EVR_OK. */
static evr_rc_t
s_check_entry(struct archive_entry *e, uint32_t *entries, evr_err_t *err)
{
    const char *name = archive_entry_pathname(e);
    if (++*entries > EVR_ARTIFACT_MAX_ENTRIES)
        return evr_err_set(err, EVR_ERR_LIMIT, "more than %d entries (a fixed limit)",
                           EVR_ARTIFACT_MAX_ENTRIES);
    const char *why = name ? evr_spec_path_problem(name) : "no name";
    if (why)
        return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": %s", name ? name : "", why);
    if (archive_entry_hardlink(e) || archive_entry_symlink(e))
        return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": links are not copied out", name);
    return EVR_OK;
}

/*  First pass: every header checked, no data read, nothing written. */
static evr_rc_t
s_scan(const char *tar_path, uint64_t max_bytes, evr_err_t *err)
{
    struct archive *a = s_open_tar(tar_path, false, err);
    if (!a)
        return EVR_ERR_IO;
    struct archive_entry *e;
    uint32_t entries = 0;
    uint64_t total = 0;
    evr_rc_t rc = EVR_OK;
    int r;
    while (!rc && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        rc = s_check_entry(e, &entries, err);
        if (!rc && archive_entry_filetype(e) == AE_IFREG)
            rc = s_count(e, max_bytes, &total, err);
        if (!rc && archive_read_data_skip(a) != ARCHIVE_OK)
            r = ARCHIVE_FATAL;
        if (r != ARCHIVE_OK)
            break;
    }
    if (!rc && r != ARCHIVE_EOF)
        rc = evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(a));
    archive_read_free(a);
    return rc;
}

static evr_rc_t
s_write_file(struct archive *a, const char *final, uint64_t max_bytes, uint64_t *total,
             evr_err_t *err)
{
    char *tmp = evr_asprintf("%s.evrun-partial", final);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        evr_rc_t rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    evr_rc_t rc = EVR_OK;
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
        if ((uint64_t) n > max_bytes - *total) {
            rc = s_limit(err, max_bytes);   /* the scan saw the sizes: only a changed file */
            break;
        }
        *total += (uint64_t) n;
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

/*  What one unpack wrote, to take back on failure. */
typedef struct {
    char **paths;
    bool *dir;
    size_t n, cap;
} s_written_t;

static void
s_written_add(s_written_t *w, const char *path, bool dir)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->paths = evr_realloc(w->paths, w->cap * sizeof *w->paths);
        w->dir = evr_realloc(w->dir, w->cap * sizeof *w->dir);
    }
    w->paths[w->n] = evr_strdup(path);
    w->dir[w->n++] = dir;
}

/*  Frees w; with undo, first removes what it lists, newest first (a
    directory only when empty). */
static void
s_written_free(s_written_t *w, bool undo)
{
    for (size_t i = w->n; i-- > 0;) {
        if (undo && w->dir[i])
            rmdir(w->paths[i]);
        else if (undo)
            unlink(w->paths[i]);
        free(w->paths[i]);
    }
    free(w->paths);
    free(w->dir);
}

/*  Second pass: the entries written under dest. */
static evr_rc_t
s_extract(struct archive *a, const char *dest, uint64_t max_bytes, uint32_t *files,
          s_written_t *w, evr_err_t *err)
{
    struct archive_entry *e;
    uint32_t entries = 0;
    uint64_t total = 0;
    evr_rc_t rc = EVR_OK;
    int r;
    while (!rc && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if ((rc = s_check_entry(e, &entries, err)))
            break;
        char *path = evr_asprintf("%s/%s", dest, archive_entry_pathname(e));
        mode_t type = archive_entry_filetype(e);
        struct stat sb;
        if (type == AE_IFDIR) {
            bool had = stat(path, &sb) == 0;
            rc = evr_mkdirs(path, err);
            if (!rc && !had)
                s_written_add(w, path, true);
        }
        else if (type == AE_IFREG) {
            char *slash = strrchr(path, '/');
            *slash = '\0';
            bool had = stat(path, &sb) == 0;
            rc = evr_mkdirs(path, err);
            if (!rc && !had)
                s_written_add(w, path, true);
            *slash = '/';
            if (!rc)
                rc = s_write_file(a, path, max_bytes, &total, err);
            if (!rc) {
                s_written_add(w, path, false);
                (*files)++;
            }
        }
        /* devices, fifos and sockets are left out */
        free(path);
    }
    if (!rc && r != ARCHIVE_EOF)
        rc = evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(a));
    return rc;
}

evr_rc_t
evr_artifact_unpack(const char *tar_path, const char *dest, uint64_t max_bytes, uint32_t *files,
                    evr_err_t *err)
{
    *files = 0;
    evr_rc_t rc = s_scan(tar_path, max_bytes, err);
    if (rc)
        return rc;
    rc = evr_mkdirs(dest, err);
    if (rc)
        return rc;
    struct archive *a = s_open_tar(tar_path, false, err);
    if (!a)
        return EVR_ERR_IO;
    s_written_t w = { 0 };
    rc = s_extract(a, dest, max_bytes, files, &w, err);
    archive_read_free(a);
    s_written_free(&w, rc != EVR_OK);
    if (rc)
        *files = 0;
    return rc;
}

/* ------------------------------------------------------------- resources */

static evr_rc_t
s_copy_data(struct archive *in, struct archive *out, uint64_t max_bytes, uint64_t *total,
            evr_err_t *err)
{
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(in, buf, sizeof buf)) > 0) {
        if ((uint64_t) n > max_bytes - *total)
            return s_limit(err, max_bytes);
        *total += (uint64_t) n;
        if (archive_write_data(out, buf, (size_t) n) != n)
            return evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(out));
    }
    if (n < 0)
        return evr_err_set(err, EVR_ERR_IO, "%s", archive_error_string(in));
    return EVR_OK;
}

/*  One entry of `in` re-rooted under dest into `out` (".", devices,
    fifos and sockets are left out); *total counts the declared sizes. */
static evr_rc_t
s_reroot_entry(struct archive *in, struct archive *out, struct archive_entry *e,
               const char *dest, uint64_t max_bytes, uint64_t *total, evr_err_t *err)
{
    const char *name = archive_entry_pathname(e);
    while (name && name[0] == '.' && name[1] == '/')
        name += 2;   /* "./src/x" is "src/x" */
    if (name && (!*name || strcmp(name, ".") == 0 || strcmp(name, "./") == 0))
        return EVR_OK;
    const char *why = name ? evr_spec_path_problem(name) : "no name";
    if (why)
        return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": %s", name ? name : "", why);
    if (archive_entry_hardlink(e) || archive_entry_symlink(e))
        return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": links are not unpacked", name);
    mode_t type = archive_entry_filetype(e);
    if (type != AE_IFREG && type != AE_IFDIR)
        return EVR_OK;
    /* the declared size first: a bomb is refused before it is inflated */
    evr_rc_t rc = type == AE_IFREG ? s_count(e, max_bytes, total, err) : EVR_OK;
    if (rc)
        return rc;
    uint64_t copied = 0;
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
    else if (type == AE_IFREG)   /* the declared size bounds what is copied */
        rc = s_copy_data(in, out, (uint64_t) archive_entry_size(e), &copied, err);
    archive_entry_free(o);
    return rc;
}

/*  Entries of the archive `in` re-rooted under dest into `out`. */
static evr_rc_t
s_reroot(struct archive *in, struct archive *out, const char *dest, uint64_t max_bytes,
         evr_err_t *err)
{
    struct archive_entry *e;
    uint32_t entries = 0;
    uint64_t total = 0;
    int r;
    evr_rc_t rc = EVR_OK;
    while (!rc && (r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
        if (++entries > EVR_ARTIFACT_MAX_ENTRIES)
            return evr_err_set(err, EVR_ERR_LIMIT, "more than %d entries (a fixed limit)",
                               EVR_ARTIFACT_MAX_ENTRIES);
        rc = s_reroot_entry(in, out, e, dest, max_bytes, &total, err);
    }
    if (!rc && r != ARCHIVE_EOF)
        rc = evr_err_set(err, EVR_ERR_IO, "%s", archive_error_string(in));
    return rc;
}

/*  A file that is no tar: the single entry dest. */
static evr_rc_t
s_plain(const char *file, const char *dest, uint64_t max_bytes, struct archive *out,
        evr_err_t *err)
{
    FILE *fp = fopen(file, "rbe");
    struct stat sb;
    if (!fp || fstat(fileno(fp), &sb) != 0) {
        evr_rc_t rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", file, strerror(errno));
        if (fp)
            fclose(fp);
        return rc;
    }
    if ((uint64_t) sb.st_size > max_bytes) {
        fclose(fp);
        return s_limit(err, max_bytes);
    }
    evr_rc_t rc = EVR_OK;
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, dest);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, sb.st_size);
    if (archive_write_header(out, e) != ARCHIVE_OK)
        rc = evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(out));
    char buf[65536];
    size_t n;
    while (!rc && (n = fread(buf, 1, sizeof buf, fp)) > 0)
        if (archive_write_data(out, buf, n) != (la_ssize_t) n)
            rc = evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(out));
    fclose(fp);
    archive_entry_free(e);
    return rc;
}

evr_rc_t
evr_resource_tar(const char *file, const char *dest, uint64_t max_bytes, const char *tar_out,
                 evr_err_t *err)
{
    const char *why = evr_spec_path_problem(dest);
    if (why)
        return evr_err_set(err, EVR_ERR_IO, "path \"%s\": %s", dest, why);
    struct archive *out = archive_write_new();
    archive_write_set_format_pax_restricted(out);
    archive_write_set_bytes_in_last_block(out, 1);
    if (archive_write_open_filename(out, tar_out) != ARCHIVE_OK) {
        evr_rc_t rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tar_out, archive_error_string(out));
        archive_write_free(out);
        unlink(tar_out);
        return rc;
    }
    evr_rc_t rc = EVR_OK;
    /* a tar archive, perhaps compressed? */
    evr_err_t ignored;
    struct archive *in = s_open_tar(file, true, &ignored);
    struct archive_entry *peek = NULL;
    bool is_tar = in && archive_read_next_header(in, &peek) == ARCHIVE_OK;
    if (in)
        archive_read_free(in);
    if (is_tar && (in = s_open_tar(file, true, err))) {
        rc = s_reroot(in, out, dest, max_bytes, err);
        archive_read_free(in);
    }
    else if (is_tar)
        rc = EVR_ERR_IO;
    else
        rc = s_plain(file, dest, max_bytes, out, err);
    if (archive_write_close(out) != ARCHIVE_OK && !rc)
        rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tar_out, archive_error_string(out));
    archive_write_free(out);
    if (rc)
        unlink(tar_out);
    return rc;
}
