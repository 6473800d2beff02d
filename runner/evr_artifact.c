/*  evr_artifact.c: tar -> directory with libarchive, path-checked.

    Artifacts: the tar copied out of a container is read twice.  The first
    pass checks every header (names, links, the entry count, the declared
    sizes against the limit) and writes nothing; the second writes each file
    under a temporary name and renames it into place (an older file there
    kept aside until the end), and on any error removes what it wrote and
    puts the older files back.  Resources: the download becomes a tar in a file
    (never in memory), the declared size of each entry checked against the
    limit before its bytes are copied, so a compression bomb stops at its
    header. */
#include "evr_artifact.h"
#include "evr_codec.h"
#include "evr_sha256.h"
#include "evr_spec.h"

#include <archive.h>
#include <archive_entry.h>
#include <czmq.h>
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

static bool
s_is_link(struct archive_entry *e)
{
    return archive_entry_hardlink(e) || archive_entry_symlink(e)
        || archive_entry_filetype(e) == AE_IFLNK;
}

/*  A name or a link's target in a message: escaped (evr_text_escape_ctl:
    a step's link may point at a terminal's escape or a line break), at
    most this many bytes with the cut mark. */
#define S_SHOWN 256

/*  The checks every entry passes, artifact or resource (name is the
    entry's name as it will be used); rc, or EVR_OK.  links: how a
    symbolic link is refused ("entry ...: symbolic links are not LINKS");
    NULL: it passes (the caller leaves it out).  A hard link passes: the
    caller checks what it names. */
static evr_rc_t
s_check_entry(struct archive_entry *e, const char *name, uint32_t *entries, const char *links,
              evr_err_t *err)
{
    if (++*entries > EVR_ARTIFACT_MAX_ENTRIES)
        return evr_err_set(err, EVR_ERR_LIMIT, "more than %d entries (a fixed limit)",
                           EVR_ARTIFACT_MAX_ENTRIES);
    const char *why = name ? evr_spec_path_problem(name) : "no name";
    bool refused = links && s_is_link(e) && !archive_entry_hardlink(e);
    char shown[S_SHOWN];
    if (why || refused)
        evr_text_escape_ctl(name ? name : "", shown, sizeof shown);
    if (why)
        return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": %s", shown, why);
    if (refused)
        return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": symbolic links are not %s", shown,
                           links);
    return EVR_OK;
}

/*  An artifact's entry (top: the name its entries start with, NULL: any)
    checked where it is a link: the artifact's own path a link (a link
    entry at the top, or, as podman copies a path that is a link, an
    entry named otherwise: what the link points to) is refused, naming
    what it points to as far as the tar says. */
static evr_rc_t
s_check_top(struct archive_entry *e, const char *name, const char *top, evr_err_t *err)
{
    if (!top)
        return EVR_OK;
    size_t n = strlen(top);
    bool at_top = strcmp(name, top) == 0;
    char shown[S_SHOWN];
    if (at_top && s_is_link(e)) {
        const char *to = archive_entry_symlink(e) ? archive_entry_symlink(e)
                                                  : archive_entry_hardlink(e);
        evr_text_escape_ctl(to ? to : "", shown, sizeof shown);
        return evr_err_set(err, EVR_ERR_IO, "a symbolic link (to \"%s\"): links are not "
                           "followed; name the file or directory it points to", shown);
    }
    if (!at_top && !(strncmp(name, top, n) == 0 && name[n] == '/')) {
        char *first = evr_strndup(name, strcspn(name, "/"));
        evr_text_escape_ctl(first, shown, sizeof shown);
        free(first);
        return evr_err_set(err, EVR_ERR_IO, "a symbolic link (to a path named \"%s\"): "
                           "links are not followed; name the file or directory it points to",
                           shown);
    }
    return EVR_OK;
}

/*  Where the bytes read from a tar entry go: a file (fd) or a tar being
    written (out); path names it in errors. */
typedef struct {
    int fd;
    struct archive *out;
    const char *path;
    evr_sha256_t *hash;     /* fed what is written to fd; NULL: none */
} s_sink_t;

/*  The error of a failed write to sink->out: a full disk said as such. */
static evr_rc_t
s_tar_write_err(const s_sink_t *sink, evr_err_t *err)
{
    int en = archive_errno(sink->out);
    /* libarchive's own errors (format, misuse) carry no errno of a write */
    if (en > 0 && en != EILSEQ && en != EINVAL)
        return evr_err_write(err, sink->path, en);
    return evr_err_set(err, EVR_ERR_IO, "tar %s: %s", sink->path,
                       archive_error_string(sink->out));
}

/*  Writes buf[0..n) to sink. */
static evr_rc_t
s_sink_write(const s_sink_t *sink, const char *buf, size_t n, evr_err_t *err)
{
    if (sink->out)
        return archive_write_data(sink->out, buf, n) == (la_ssize_t) n
               ? EVR_OK : s_tar_write_err(sink, err);
    if (sink->hash)
        evr_sha256_update(sink->hash, buf, n);
    for (size_t off = 0; off < n;) {
        ssize_t w = write(sink->fd, buf + off, n - off);
        if (w <= 0)   /* a write of nothing: the disk is full */
            return evr_err_write(err, sink->path, w < 0 ? errno : ENOSPC);
        off += (size_t) w;
    }
    return EVR_OK;
}

/*  The current entry's data from `in` (NULL: the file open at in_fd) to
    sink, *total counting it against max_bytes. */
static evr_rc_t
s_pump(struct archive *in, int in_fd, const s_sink_t *sink, uint64_t max_bytes,
       uint64_t *total, evr_err_t *err)
{
    char buf[65536];
    la_ssize_t n;
    while ((n = in ? archive_read_data(in, buf, sizeof buf)
                   : (la_ssize_t) read(in_fd, buf, sizeof buf)) > 0) {
        if ((uint64_t) n > max_bytes - *total)
            return s_limit(err, max_bytes);   /* the sizes were checked: a changed file */
        *total += (uint64_t) n;
        evr_rc_t rc = s_sink_write(sink, buf, (size_t) n, err);
        if (rc)
            return rc;
    }
    if (n < 0 && !in)
        return evr_err_set(err, EVR_ERR_IO, "reading a file of this artifact: %s",
                           strerror(errno));
    if (n < 0)
        return evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(in));
    return EVR_OK;
}

/*  First pass: every header checked, no data read, nothing written (list:
    an artifact's, its links to be left out, its entries under top). */
static evr_rc_t
s_scan(const char *tar_path, uint64_t max_bytes, const evr_artifact_list_t *list,
       const char *top, uint64_t *files_total, evr_err_t *err)
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
        const char *name = archive_entry_pathname(e);
        rc = s_check_entry(e, name, &entries, list ? NULL : "copied out", err);
        if (!rc && list)
            rc = s_check_top(e, name, top, err);
        if (!rc && archive_entry_filetype(e) == AE_IFREG && !s_is_link(e))
            rc = s_count(e, max_bytes, &total, err);
        if (!rc && archive_read_data_skip(a) != ARCHIVE_OK)
            r = ARCHIVE_FATAL;
        if (r != ARCHIVE_OK)
            break;
    }
    if (!rc && r != ARCHIVE_EOF)
        rc = evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(a));
    archive_read_free(a);
    *files_total = total;
    return rc;
}

/*  What one unpack wrote, to take back on failure: per path, 'd' a
    directory it made, 'f' a file it wrote, 'b' a file it wrote over an
    older one, kept meanwhile as PATH.evrun-old; and 'p' a directory
    entry of the tar whose permission bits (perm) it takes at the end. */
typedef struct {
    char **paths;
    char *kind;
    mode_t *perm;
    size_t n, cap;
} s_written_t;

static void
s_written_add_perm(s_written_t *w, const char *path, char kind, mode_t perm)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->paths = evr_realloc(w->paths, w->cap * sizeof *w->paths);
        w->kind = evr_realloc(w->kind, w->cap * sizeof *w->kind);
        w->perm = evr_realloc(w->perm, w->cap * sizeof *w->perm);
    }
    w->paths[w->n] = evr_strdup(path);
    w->perm[w->n] = perm;
    w->kind[w->n++] = kind;
}

static void
s_written_add(s_written_t *w, const char *path, char kind)
{
    s_written_add_perm(w, path, kind, 0);
}

static bool
s_written_has(const s_written_t *w, const char *path)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->kind[i] != 'd' && w->kind[i] != 'p' && strcmp(w->paths[i], path) == 0)
            return true;
    return false;
}

/*  Frees w.  With undo it first takes back what it lists, newest first:
    files removed (an older file put back), directories removed when
    empty; without, the older files kept aside are removed and the
    directories take their modes, newest first (a read-only directory
    after what it holds). */
static void
s_written_free(s_written_t *w, bool undo)
{
    for (size_t i = w->n; i-- > 0;) {
        char *old = w->kind[i] == 'b' ? evr_asprintf("%s.evrun-old", w->paths[i]) : NULL;
        if (w->kind[i] == 'p') {
            struct stat sb;
            if (!undo && lstat(w->paths[i], &sb) == 0 && S_ISDIR(sb.st_mode))
                chmod(w->paths[i], w->perm[i]);
        }
        else if (undo && w->kind[i] == 'd')
            rmdir(w->paths[i]);
        else if (undo && old)
            rename(old, w->paths[i]);
        else if (undo)
            unlink(w->paths[i]);
        else if (old)
            unlink(old);
        free(old);
        free(w->paths[i]);
    }
    free(w->paths);
    free(w->kind);
    free(w->perm);
}

/*  The current entry's data (a NULL: the file open at src_fd) written to
    final: under a temporary name, then renamed into place, an older file
    at final kept aside (as final.evrun-old) until the unpack succeeds or
    fails; recorded in w.  perm: the file's permission bits, exactly
    (S_PERM_UMASK: 0644 less the umask, an artifact's). */
#define S_PERM_UMASK ((mode_t) -1)
static evr_rc_t
s_write_file(struct archive *a, int src_fd, const char *final, mode_t perm, uint64_t max_bytes,
             uint64_t *total, s_written_t *w, evr_artifact_file_t *f, evr_err_t *err)
{
    char *tmp = evr_asprintf("%s.evrun-partial", final);
    char *old = evr_asprintf("%s.evrun-old", final);
    s_sink_t sink = { .fd = -1, .path = tmp, .hash = f ? evr_sha256_new() : NULL };
    uint64_t before = *total;
    evr_rc_t rc = EVR_OK;
    struct stat sb;
    /* a file of this artifact by either name would be lost */
    const char *clash = lstat(tmp, &sb) == 0 && s_written_has(w, tmp)   ? tmp
                      : lstat(old, &sb) == 0 && s_written_has(w, old) ? old : NULL;
    if (clash)
        rc = evr_err_set(err, EVR_ERR_IO, "%s: a file of this artifact, in the way of %s",
                         clash, final);
    else if ((sink.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                             0644)) < 0)
        rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (!rc && perm != S_PERM_UMASK && fchmod(sink.fd, perm) != 0)
        rc = evr_err_set(err, EVR_ERR_IO, "chmod %s: %s", tmp, strerror(errno));
    if (!rc)
        rc = s_pump(a, src_fd, &sink, max_bytes, total, err);
    if (!rc && fsync(sink.fd) != 0)
        rc = evr_err_write(err, tmp, errno);
    if (sink.fd >= 0)
        close(sink.fd);
    /* an older file at final (an earlier attempt's, say) is set aside,
       unless this unpack wrote it (then its own is kept aside already) */
    char kind = 'f';
    if (!rc && lstat(final, &sb) == 0 && !S_ISDIR(sb.st_mode) && !s_written_has(w, final)) {
        if (rename(final, old) != 0)
            rc = evr_err_set(err, EVR_ERR_IO, "rename %s: %s", final, strerror(errno));
        kind = 'b';
    }
    if (!rc && rename(tmp, final) != 0) {
        rc = evr_err_set(err, EVR_ERR_IO, "rename %s: %s", final, strerror(errno));
        if (kind == 'b')
            rename(old, final);
    }
    if (rc)
        unlink(tmp);
    else
        s_written_add(w, final, kind);
    if (f && !rc) {
        evr_sha256_finish(&sink.hash, f->sha256);
        f->size = *total - before;
    }
    evr_sha256_destroy(&sink.hash);
    free(old);
    free(tmp);
    return rc;
}

void
evr_artifact_list_free(evr_artifact_list_t *list)
{
    for (uint32_t i = 0; i < list->n; i++)
        free(list->v[i].path);
    free(list->v);
    for (uint32_t i = 0; i < list->nlinks; i++)
        free(list->links[i]);
    free(list->links);
    for (uint32_t i = 0; i < list->nspecials; i++)
        free(list->specials[i]);
    free(list->specials);
    memset(list, 0, sizeof *list);
}

/*  name added at the end of the names *v (*n of them). */
static void
s_name_add(char ***v, uint32_t *n, const char *name)
{
    if ((*n & (*n - 1)) == 0)   /* 0, 1, 2, 4, ...: full */
        *v = evr_realloc(*v, (*n ? 2 * *n : 1) * sizeof **v);
    (*v)[(*n)++] = evr_strdup(name);
}

/*  A link entry left out, named at the end of list->links. */
static void
s_link_add(evr_artifact_list_t *list, const char *name)
{
    s_name_add(&list->links, &list->nlinks, name);
}

/*  A new entry at the end of list (path a copy). */
static evr_artifact_file_t *
s_list_add(evr_artifact_list_t *list, const char *path)
{
    if (list->n == list->cap) {
        list->cap = list->cap ? 2 * list->cap : 16;
        list->v = evr_realloc(list->v, list->cap * sizeof *list->v);
    }
    evr_artifact_file_t *f = &list->v[list->n++];
    memset(f, 0, sizeof *f);
    f->path = evr_strdup(path);
    return f;
}

/*  The directory path's file is in made (with parents; recorded in w). */
static evr_rc_t
s_parent(char *path, s_written_t *w, evr_err_t *err)
{
    char *slash = strrchr(path, '/');
    *slash = '\0';
    struct stat sb;
    bool had = stat(path, &sb) == 0;
    evr_rc_t rc = evr_mkdirs(path, err);
    if (!rc && !had)
        s_written_add(w, path, 'd');
    *slash = '/';
    return rc;
}

/*  An artifact's hard link entry (its name checked) at path: a copy of
    the file it names, when this unpack wrote that file (a tar names a
    file once, its other names as links to it); else left out as a link.
    *total counts the copy against max_bytes and job_room. */
static evr_rc_t
s_hardlink(struct archive_entry *e, const char *dest, char *path, uint64_t max_bytes,
           uint64_t job_room, uint64_t *total, uint32_t *files, s_written_t *w,
           evr_artifact_list_t *list, evr_err_t *err)
{
    const char *name = archive_entry_pathname(e), *to = archive_entry_hardlink(e);
    char *from = to && !evr_spec_path_problem(to) ? evr_asprintf("%s/%s", dest, to) : NULL;
    int fd = from && s_written_has(w, from) ? open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                                            : -1;
    free(from);
    if (fd < 0) {
        s_link_add(list, name);
        return EVR_OK;
    }
    evr_rc_t rc = s_parent(path, w, err);
    if (!rc)
        rc = s_write_file(NULL, fd, path, S_PERM_UMASK, max_bytes, total, w, s_list_add(list, name),
                          err);
    close(fd);
    if (!rc && *total > job_room)
        rc = evr_err_set(err, EVR_ERR_LIMIT, "%llu bytes of files, over the room of %llu "
                         "bytes", (unsigned long long) *total, (unsigned long long) job_room);
    if (!rc)
        (*files)++;
    return rc;
}

/*  A workspace's hard link entry (its name checked) at path: a second
    name of the file it names, which this unpack wrote before it (a
    resource's tar holds no other: evr_resource_tar); an older file at
    path set aside as s_write_file does.  Anything else is refused, the
    entry named. */
static evr_rc_t
s_link_ws(struct archive_entry *e, const char *dest, const char *path, s_written_t *w,
          evr_err_t *err)
{
    const char *to = archive_entry_hardlink(e);
    char *from = evr_spec_path_problem(to) ? NULL : evr_asprintf("%s/%s", dest, to);
    char *old = evr_asprintf("%s.evrun-old", path);
    struct stat sb;
    evr_rc_t rc = EVR_OK;
    char kind = 'f';
    if (!from || !s_written_has(w, from) || lstat(from, &sb) != 0 || !S_ISREG(sb.st_mode)
        || strcmp(from, path) == 0) {
        char shown[S_SHOWN], shown_to[S_SHOWN];
        evr_text_escape_ctl(archive_entry_pathname(e), shown, sizeof shown);
        evr_text_escape_ctl(to, shown_to, sizeof shown_to);
        rc = evr_err_set(err, EVR_ERR_IO, "entry \"%s\": a hard link to \"%s\", which is no "
                         "file this archive unpacked before it", shown, shown_to);
    }
    if (!rc)
        rc = s_parent((char *) path, w, err);
    if (!rc && lstat(path, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        if (s_written_has(w, path))   /* a name of this unpack's: its own undo stands */
            unlink(path);
        else if (rename(path, old) != 0)
            rc = evr_err_set(err, EVR_ERR_IO, "rename %s: %s", path, strerror(errno));
        else
            kind = 'b';
    }
    if (!rc && link(from, path) != 0) {
        rc = evr_err_set(err, EVR_ERR_IO, "link %s: %s", path, strerror(errno));
        if (kind == 'b')
            rename(old, path);
    }
    if (!rc)
        s_written_add(w, path, kind);
    free(old);
    free(from);
    return rc;
}

/*  Second pass: the entries written under dest (list: an artifact's,
    links left out, a hard link's file copied). */
static evr_rc_t
s_extract(struct archive *a, const char *dest, uint64_t max_bytes, uint64_t job_room,
          uint32_t *files, s_written_t *w, evr_artifact_list_t *list, evr_err_t *err)
{
    struct archive_entry *e;
    uint32_t entries = 0;
    uint64_t total = 0;
    evr_rc_t rc = EVR_OK;
    int r;
    while (!rc && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if ((rc = s_check_entry(e, archive_entry_pathname(e), &entries,
                                list ? NULL : "copied out", err)))
            break;
        char *path = evr_asprintf("%s/%s", dest, archive_entry_pathname(e));
        mode_t type = archive_entry_filetype(e);
        struct stat sb;
        if (archive_entry_hardlink(e) && list)   /* an artifact's (checked): copied, or left out */
            rc = s_hardlink(e, dest, path, max_bytes, job_room, &total, files, w, list, err);
        else if (archive_entry_hardlink(e))   /* a workspace's: a second name */
            rc = s_link_ws(e, dest, path, w, err);
        else if (s_is_link(e))   /* never followed, never made */
            s_link_add(list, archive_entry_pathname(e));
        else if (type == AE_IFDIR) {
            bool had = stat(path, &sb) == 0;
            rc = evr_mkdirs(path, err);
            if (!rc && !had)
                s_written_add(w, path, 'd');
            if (!rc && !list)   /* a workspace's: its mode, at the end */
                s_written_add_perm(w, path, 'p', archive_entry_perm(e) & 01777);
        }
        else if (type == AE_IFREG) {
            rc = s_parent(path, w, err);
            evr_artifact_file_t *f = !rc && list ? s_list_add(list, archive_entry_pathname(e))
                                                 : NULL;
            /* a workspace's file keeps its mode (an executable stays one),
               less setuid, setgid and sticky; an artifact's is 0644 */
            mode_t perm = list ? S_PERM_UMASK : archive_entry_perm(e) & 0777;
            if (!rc)
                rc = s_write_file(a, -1, path, perm, max_bytes, &total, w, f, err);
            if (!rc)
                (*files)++;
        }
        else if (list)   /* a FIFO or a device (no tar holds a socket): left out, named */
            s_name_add(&list->specials, &list->nspecials, archive_entry_pathname(e));
        /* a workspace's: resources refuse them before (evr_resource_tar) */
        free(path);
    }
    if (!rc && r != ARCHIVE_EOF)
        rc = evr_err_set(err, EVR_ERR_IO, "tar: %s", archive_error_string(a));
    return rc;
}

/*  Both passes; list (may be NULL) gets the files written. */
static evr_rc_t
s_unpack(const char *tar_path, const char *dest, uint64_t max_bytes, uint64_t job_room,
         const char *top, uint32_t *files, evr_artifact_list_t *list, evr_err_t *err)
{
    *files = 0;
    uint64_t total = 0;
    evr_rc_t rc = s_scan(tar_path, max_bytes, list, top, &total, err);
    if (rc)
        return rc;
    if (total > job_room)
        return evr_err_set(err, EVR_ERR_LIMIT, "%llu bytes of files, over the room of %llu "
                           "bytes", (unsigned long long) total, (unsigned long long) job_room);
    rc = evr_mkdirs(dest, err);
    if (rc)
        return rc;
    struct archive *a = s_open_tar(tar_path, false, err);
    if (!a)
        return EVR_ERR_IO;
    s_written_t w = { 0 };
    rc = s_extract(a, dest, max_bytes, job_room, files, &w, list, err);
    archive_read_free(a);
    s_written_free(&w, rc != EVR_OK);
    if (rc) {
        *files = 0;
        if (list)
            evr_artifact_list_free(list);
    }
    return rc;
}

evr_rc_t
evr_artifact_unpack(const char *tar_path, const char *dest, uint64_t max_bytes, uint32_t *files,
                    evr_err_t *err)
{
    return s_unpack(tar_path, dest, max_bytes, UINT64_MAX, NULL, files, NULL, err);
}

evr_rc_t
evr_artifact_unpack_list(const char *tar_path, const char *dest, uint64_t max_bytes,
                         uint64_t job_room, const char *top, evr_artifact_list_t *list,
                         evr_err_t *err)
{
    uint32_t files;
    return s_unpack(tar_path, dest, max_bytes, job_room, top, &files, list, err);
}

/* ------------------------------------------------------------- resources */

/*  What a hard link later in a resource's tar may name: an entry written
    before it, by its tidy name (evr_spec_path_tidy): a file (its size, its
    name as written) or a directory (refused). */
typedef struct {
    bool dir;
    uint64_t size;
    char name[];
} s_seen_t;

static void
s_seen_free(void **item)
{
    free(*item);
    *item = NULL;
}

static void
s_seen_put(zhashx_t *seen, const char *name, bool dir, uint64_t size)
{
    size_t n = strlen(name);
    s_seen_t *x = evr_malloc(sizeof *x + n + 1);
    x->dir = dir;
    x->size = size;
    memcpy(x->name, name, n + 1);
    char *key = evr_spec_path_tidy(name);
    zhashx_update(seen, key, x);
    free(key);
}

/*  An entry name in a message: escaped (evr_text_escape_ctl), at most
    this many bytes with the cut mark. */
#define S_NAME_SHOWN 128

/*  A hard link entry name -> to re-rooted under dest: to must name a
    file an earlier entry of this tar unpacked (so it is inside dest,
    passed every check, and is no directory nor symbolic link: those are
    refused), not the entry itself.  The file's size counts against
    max_bytes again (the process executor makes a link, but the limit
    is said of what the tar unpacks). */
static evr_rc_t
s_reroot_link(const s_sink_t *sink, struct archive_entry *e, const char *name, const char *to,
              const char *dest, uint64_t max_bytes, uint64_t *total, zhashx_t *seen,
              evr_err_t *err)
{
    char shown[S_NAME_SHOWN], shown_to[S_NAME_SHOWN];
    evr_text_escape_ctl(name, shown, sizeof shown);
    evr_text_escape_ctl(to, shown_to, sizeof shown_to);
    while (to[0] == '.' && to[1] == '/')
        to += 2;
    const char *why = evr_spec_path_problem(to);
    if (why)
        return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": a hard link to \"%s\": %s", shown,
                           shown_to, why);
    char *key = evr_spec_path_tidy(to), *own = evr_spec_path_tidy(name);
    const s_seen_t *t = zhashx_lookup(seen, key);
    evr_rc_t rc = EVR_OK;
    if (strcmp(key, own) == 0)
        rc = evr_err_set(err, EVR_ERR_IO, "entry \"%s\": a hard link to itself", shown);
    else if (!t)
        rc = evr_err_set(err, EVR_ERR_IO, "entry \"%s\": a hard link to \"%s\", which no "
                         "earlier entry of the archive unpacked (a hard link names a file "
                         "before it)", shown, shown_to);
    else if (t->dir)
        rc = evr_err_set(err, EVR_ERR_IO, "entry \"%s\": a hard link to \"%s\", a directory",
                         shown, shown_to);
    else if (t->size > max_bytes - *total)
        rc = s_limit(err, max_bytes);
    free(key);
    free(own);
    if (rc)
        return rc;
    uint64_t size = t->size;
    *total += size;
    struct archive_entry *o = archive_entry_new();
    char *path = evr_asprintf("%s/%s", dest, name), *target = evr_asprintf("%s/%s", dest, t->name);
    archive_entry_set_pathname(o, path);
    archive_entry_set_hardlink(o, target);
    archive_entry_set_filetype(o, AE_IFREG);
    archive_entry_set_perm(o, archive_entry_perm(e) & 0777);
    archive_entry_set_size(o, 0);
    if (archive_write_header(sink->out, o) != ARCHIVE_OK)
        rc = s_tar_write_err(sink, err);
    else
        s_seen_put(seen, name, false, size);
    archive_entry_free(o);
    free(path);
    free(target);
    return rc;
}

/*  One entry of `in` re-rooted under dest into the tar of sink (devices,
    fifos and sockets are refused, a hard link checked: s_reroot_link);
    *total counts the declared sizes, seen the entries written. */
static evr_rc_t
s_reroot_entry(struct archive *in, const s_sink_t *sink, struct archive_entry *e,
               const char *name, const char *dest, uint64_t max_bytes, uint64_t *total,
               zhashx_t *seen, evr_err_t *err)
{
    if (archive_entry_hardlink(e))
        return s_reroot_link(sink, e, name, archive_entry_hardlink(e), dest, max_bytes, total,
                             seen, err);
    mode_t type = archive_entry_filetype(e);
    if (type != AE_IFREG && type != AE_IFDIR)   /* never dropped unsaid */
        return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": %s: only files and directories "
                           "are unpacked", name, type == AE_IFCHR ? "a character device"
                           : type == AE_IFBLK ? "a block device" : type == AE_IFIFO ? "a FIFO"
                           : type == AE_IFSOCK ? "a socket" : "of an unknown type");
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
    /* no setuid or setgid file or directory in the workspace (the sticky
       bit, a shared directory's, is harmless) */
    archive_entry_set_perm(o, archive_entry_perm(e) & 01777);
    /* archive_read_data gives a sparse file's holes as zeros: written
       whole, not as a sparse map with no data after it (a tar podman
       refuses with "unexpected EOF") */
    archive_entry_sparse_clear(o);
    free(path);
    if (archive_write_header(sink->out, o) != ARCHIVE_OK)
        rc = s_tar_write_err(sink, err);
    else if (type == AE_IFREG)   /* the declared size bounds what is copied */
        rc = s_pump(in, -1, sink, (uint64_t) archive_entry_size(e), &copied, err);
    archive_entry_free(o);
    if (!rc)
        s_seen_put(seen, name, type == AE_IFDIR, type == AE_IFREG ? copied : 0);
    return rc;
}

/*  At most this many bytes a path in the workspace (dest/name): the
    system's PATH_MAX (4096, its NUL included) less room for where the
    workspace is (podman's volume directory, the process executor's
    STATE/work/JOB). */
#define S_PATH_MAX 3072

/*  What unpacking cannot take in a tarball's entry name (before the
    other checks, which quote it raw): a byte that is not UTF-8, a control
    character, a component longer than a file system's name (255 bytes),
    a path under dest longer than S_PATH_MAX (the copy into the workspace
    would fail with pages of error, the entry's name cut off).  The name
    shown escaped. */
static evr_rc_t
s_check_name(const char *name, const char *dest, evr_err_t *err)
{
    if (!name)
        return EVR_OK;   /* s_check_entry says it */
    char shown[S_NAME_SHOWN];
    evr_text_escape_ctl(name, shown, sizeof shown);
    if (!evr_utf8_valid(name, strlen(name)))
        return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": its name is not UTF-8", shown);
    if (evr_text_has_ctl(name))
        return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": its name holds a control "
                           "character", shown);
    for (const char *c = name; *c;) {
        size_t n = strcspn(c, "/");
        if (n > 255)
            return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": a name of %zu bytes in it: at "
                               "most 255 bytes a component", shown, n);
        c += n + (c[n] == '/');
    }
    size_t len = strlen(dest) + 1 + strlen(name);
    if (len > S_PATH_MAX)
        return evr_err_set(err, EVR_ERR_IO, "entry \"%s\": a path of %zu bytes in the "
                           "workspace (%s/...): at most %d bytes", shown, len, dest,
                           S_PATH_MAX);
    return EVR_OK;
}

/*  Entries of the archive `in` re-rooted under dest into the tar of sink
    ("." left out, "./x" taken as "x"). */
static evr_rc_t
s_reroot(struct archive *in, const s_sink_t *sink, const char *dest, uint64_t max_bytes,
         evr_err_t *err)
{
    struct archive_entry *e;
    uint32_t entries = 0;
    uint64_t total = 0;
    int r;
    evr_rc_t rc = EVR_OK;
    zhashx_t *seen = zhashx_new();
    zhashx_set_destructor(seen, s_seen_free);
    while (!rc && (r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        while (name && name[0] == '.' && name[1] == '/')
            name += 2;   /* "./src/x" is "src/x" */
        if (name && (!*name || strcmp(name, ".") == 0))
            continue;
        rc = s_check_name(name, dest, err);
        if (!rc)
            rc = s_check_entry(e, name, &entries, "unpacked", err);
        if (!rc)
            rc = s_reroot_entry(in, sink, e, name, dest, max_bytes, &total, seen, err);
    }
    zhashx_destroy(&seen);
    if (!rc && r != ARCHIVE_EOF)
        rc = evr_err_set(err, EVR_ERR_IO, "a damaged tar archive: %s", archive_error_string(in));
    return rc;
}

/*  A file that is no tar: the single entry dest. */
static evr_rc_t
s_plain(const char *file, const char *dest, uint64_t max_bytes, const s_sink_t *sink,
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
    if (archive_write_header(sink->out, e) != ARCHIVE_OK)
        rc = s_tar_write_err(sink, err);
    char buf[65536];
    size_t n;
    uint64_t got = 0;
    while (!rc && (n = fread(buf, 1, sizeof buf, fp)) > 0) {
        got += n;
        rc = s_sink_write(sink, buf, n, err);
    }
    /* a read error, or a file changed under us, is never made up with zeros */
    if (!rc && ferror(fp))
        rc = evr_err_set(err, EVR_ERR_IO, "reading %s: %s", file, strerror(errno ? errno : EIO));
    else if (!rc && got != (uint64_t) sb.st_size)
        rc = evr_err_set(err, EVR_ERR_IO, "reading %s: %llu bytes where %llu were expected "
                         "(the file changed while read)", file, (unsigned long long) got,
                         (unsigned long long) sb.st_size);
    fclose(fp);
    archive_entry_free(e);
    return rc;
}

/*  evr_resource_tar and evr_resource_tar_dir: need_tar refuses a file
    that is no tar archive. */
static evr_rc_t
s_resource_tar(const char *file, const char *dest, uint64_t max_bytes, const char *tar_out,
               bool need_tar, evr_err_t *err)
{
    const char *why = evr_spec_path_problem(dest);
    if (why)
        return evr_err_set(err, EVR_ERR_IO, "path \"%s\": %s", dest, why);
    /* a tar archive, perhaps compressed?  One whose first header is
       damaged (its format known) is a damaged tar, not a file; one that
       ends at once is a file (zeros at its start, as an ISO image's),
       unless a tar is needed (an empty tree's) */
    evr_err_t ignored;
    struct archive *in = s_open_tar(file, true, &ignored);
    struct archive_entry *peek = NULL;
    int r = in ? archive_read_next_header(in, &peek) : ARCHIVE_FATAL;
    bool is_tar = r == ARCHIVE_OK
               || ((r != ARCHIVE_EOF || need_tar) && in && archive_format(in) != 0);
    if (in)
        archive_read_free(in);
    char *tidy = evr_spec_path_tidy(dest);
    bool top = !*tidy;   /* the workspace itself (".", "./") */
    free(tidy);
    if (!is_tar && (need_tar || top)) {
        unlink(tar_out);
        if (need_tar)
            return evr_err_set(err, EVR_ERR_IO, "not a tar archive (plain, or compressed with "
                               "gzip, bzip2 or xz)");
        return evr_err_set(err, EVR_ERR_IO, "path \"%s\" is the workspace itself, and the "
                           "download is no tar archive to unpack there: name the file it is to "
                           "be (path: NAME)", dest);
    }
    s_sink_t sink = { .fd = -1, .out = archive_write_new(), .path = tar_out };
    archive_write_set_format_pax_restricted(sink.out);
    archive_write_set_bytes_in_last_block(sink.out, 1);
    if (archive_write_open_filename(sink.out, tar_out) != ARCHIVE_OK) {
        evr_rc_t rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tar_out,
                                  archive_error_string(sink.out));
        archive_write_free(sink.out);
        unlink(tar_out);
        return rc;
    }
    evr_rc_t rc = EVR_OK;
    if (is_tar && (in = s_open_tar(file, true, err))) {
        rc = s_reroot(in, &sink, dest, max_bytes, err);
        archive_read_free(in);
    }
    else if (is_tar)
        rc = EVR_ERR_IO;
    else
        rc = s_plain(file, dest, max_bytes, &sink, err);
    if (archive_write_close(sink.out) != ARCHIVE_OK && !rc)
        rc = s_tar_write_err(&sink, err);
    archive_write_free(sink.out);
    if (rc)
        unlink(tar_out);
    return rc;
}

evr_rc_t
evr_resource_tar(const char *file, const char *dest, uint64_t max_bytes, const char *tar_out,
                 evr_err_t *err)
{
    return s_resource_tar(file, dest, max_bytes, tar_out, false, err);
}

evr_rc_t
evr_resource_tar_dir(const char *file, const char *dest, uint64_t max_bytes,
                     const char *tar_out, evr_err_t *err)
{
    return s_resource_tar(file, dest, max_bytes, tar_out, true, err);
}

evr_rc_t
evr_artifact_read_one(const uint8_t *tar, size_t len, size_t max, char **out, size_t *n,
                      evr_err_t *err)
{
    *out = NULL;
    *n = 0;
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    struct archive_entry *e;
    evr_rc_t rc = EVR_OK;
    if (archive_read_open_memory(a, tar, len) != ARCHIVE_OK
        || archive_read_next_header(a, &e) != ARCHIVE_OK) {
        rc = evr_err_set(err, EVR_ERR_IO, "not a tar stream: %s", archive_error_string(a));
        goto out;
    }
    if (archive_entry_filetype(e) != AE_IFREG) {
        rc = evr_err_set(err, EVR_ERR_IO, "not a regular file");
        goto out;
    }
    if (archive_entry_size(e) < 0 || (uint64_t) archive_entry_size(e) > max) {
        rc = evr_err_set(err, EVR_ERR_LIMIT, "%lld bytes, over the limit of %zu",
                         (long long) archive_entry_size(e), max);
        goto out;
    }
    size_t size = (size_t) archive_entry_size(e);
    *out = evr_malloc(size + 1);
    la_ssize_t got = size ? archive_read_data(a, *out, size) : 0;
    if (got < 0 || (size_t) got != size) {
        rc = evr_err_set(err, EVR_ERR_IO, "reading the file: %s",
                         got < 0 ? archive_error_string(a) : "short");
        free(*out);
        *out = NULL;
        goto out;
    }
    (*out)[size] = '\0';
    *n = size;
out:
    archive_read_free(a);
    return rc;
}
