/*  evr_artifact.c: tar -> directory with libarchive, path-checked. */
#include "evr_artifact.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

evr_rc_t
evr_mkdirs(const char *path, evr_err_t *err)
{
    char *p = evr_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            evr_rc_t rc = evr_err_set(err, EVR_ERR_IO, "mkdir %s: %s", p, strerror(errno));
            free(p);
            return rc;
        }
        *s = '/';
    }
    evr_rc_t rc = EVR_OK;
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        rc = evr_err_set(err, EVR_ERR_IO, "mkdir %s: %s", p, strerror(errno));
    free(p);
    return rc;
}

/*  NULL when name is a safe relative path, else why not. */
static const char *
s_unsafe(const char *name)
{
    if (!*name)
        return "empty name";
    if (*name == '/')
        return "absolute path";
    for (const char *c = name; *c;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t) (e - c) : strlen(c);
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return "path contains \"..\"";
        c += n;
        while (*c == '/')
            c++;
    }
    return NULL;
}

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
        if (write(fd, buf, (size_t) n) != n) {
            rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tmp, strerror(errno));
            break;
        }
    }
    if (!rc && n < 0)
        rc = evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(a));
    if (!rc && fsync(fd) != 0)
        rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tmp, strerror(errno));
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
        const char *why = name ? s_unsafe(name) : "no name";
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
