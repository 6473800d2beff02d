/*  evr_artifact.h: tar streams in and out of containers, safely.

    Artifacts arrive as tar streams from podman's archive API; they are
    unpacked with libarchive into a destination directory with path
    checks: no absolute names, no "..", no links (symbolic or hard) that
    could point outside (an artifact's symbolic links are left out, its
    hard links copied from the file they name; elsewhere a symbolic link
    is refused, and a hard link is made only to a file the same tar
    unpacked before it), at most EVR_ARTIFACT_MAX_ENTRIES entries and
    the caller's limit of bytes (no default here: the runner's
    artifact_max_bytes and resource_max_bytes settings).  The
    whole tar is checked before anything is written; each file is written
    under a temporary name and renamed into place when complete, and an
    unpack that fails removes what it wrote and puts back the older files
    it wrote over: the directory never holds a partial file, nor part of a
    failed artifact.
*/
#ifndef EVR_ARTIFACT_H_INCLUDED
#define EVR_ARTIFACT_H_INCLUDED

#include "evr_common.h"

#define EVR_ARTIFACT_MAX_ENTRIES 10000

/*  The regular files one unpack wrote, in the tar's order. */
typedef struct {
    char *path;         /* relative to dest */
    uint64_t size;
    char sha256[65];    /* 64 lower-case hex digits */
} evr_artifact_file_t;

typedef struct {
    evr_artifact_file_t *v;
    uint32_t n, cap;
    char **links;       /* the links left out (relative to dest), in the tar's order */
    uint32_t nlinks;
    char **specials;    /* the FIFOs and devices left out, alike */
    uint32_t nspecials;
} evr_artifact_list_t;

void evr_artifact_list_free(evr_artifact_list_t *list);

/*  An artifact's tar: as evr_artifact_unpack, except for links, and also:
    the files' total (declared sizes) must fit in job_room bytes
    (EVR_ERR_LIMIT "N bytes of files, over the room of R bytes": nothing
    written), and list (zeroed by the caller, freed with
    evr_artifact_list_free) receives each regular file written with its
    size and sha256 (taken as it is written).  Symbolic links inside are
    left out, never followed nor made, each named in list->links; FIFOs
    and devices are left out, each named in list->specials; a hard
    link is written as a copy of the file it names when this unpack wrote
    that file (counted against max_bytes and job_room: EVR_ERR_LIMIT as
    above, all taken back), else left out and named alike.  top (NULL: not checked): the name the tar's entries
    start with (the artifact path's last component); the path itself a
    link is EVR_ERR_IO "a symbolic link (to ...): links are not followed;
    ...", nothing written: a link entry named top, or an entry named
    otherwise (podman copies a path that is a link as what it points to,
    named so). */
evr_rc_t evr_artifact_unpack_list(const char *tar_path, const char *dest, uint64_t max_bytes,
                                  uint64_t job_room, const char *top,
                                  evr_artifact_list_t *list, evr_err_t *err);

/*  Unpacks the tar file at tar_path into dest (created with parents): at
    most max_bytes of file contents, each file and directory with the
    permission bits of its entry less setuid and setgid (a file's sticky
    bit too; a directory's once everything is written, so a read-only
    one is filled first).  *files receives the number of regular
    files written.  Errors name the entry and the reason: EVR_ERR_LIMIT
    ("more than N entries", or "the contents are over the limit of N
    bytes": nothing written then),
    EVR_ERR_IO (a bad name, a symbolic link, a hard link to anything but
    a file this unpack wrote before it, a damaged tar, a write that
    failed: whatever was written is removed again).  A hard link is made
    as one (link(2)): a second name of that file. */
evr_rc_t evr_artifact_unpack(const char *tar_path, const char *dest, uint64_t max_bytes,
                             uint32_t *files, evr_err_t *err);

/*  Resources: writes into the file tar_out the tar to upload into
    /workspace from a downloaded file.  A tar archive (optionally gzip,
    bzip2 or xz compressed) is unpacked under dest (a safe relative path)
    with the same checks as artifacts, symbolic links refused (not left
    out); a hard link kept as one, re-rooted, when it names a file an
    earlier entry unpacked (EVR_ERR_IO naming the entry for a link to a
    later entry, a directory, itself or a name that is not a safe relative
    path), its file's size counted again against max_bytes; any other file
    becomes the single file dest (EVR_ERR_IO when dest is the workspace
    itself, "." or "./": it names no file).  A tar whose first header is
    damaged is a damaged tar (EVR_ERR_IO "a damaged tar archive: ..."),
    not a file.  The contents are at most max_bytes:
    each entry's declared size is checked before its data is inflated
    (EVR_ERR_LIMIT), so memory and disk stay bounded whatever the ratio.
    On error tar_out is removed. */
evr_rc_t evr_resource_tar(const char *file, const char *dest, uint64_t max_bytes,
                          const char *tar_out, evr_err_t *err);
/*  A source tarball's: as evr_resource_tar, but a file that is no tar
    archive is EVR_ERR_IO "not a tar archive ..." (a source is a tree). */
evr_rc_t evr_resource_tar_dir(const char *file, const char *dest, uint64_t max_bytes,
                              const char *tar_out, evr_err_t *err);

/*  The one regular file a tar stream in memory holds (tar[0..len), as an
    executor's get sends a file): its bytes into *out (NUL-terminated,
    caller frees), *n their count.  EVR_ERR_LIMIT when the file is over
    max bytes, EVR_ERR_IO when the stream is no tar or its first entry no
    regular file (each with err saying so). */
evr_rc_t evr_artifact_read_one(const uint8_t *tar, size_t len, size_t max, char **out,
                               size_t *n, evr_err_t *err);

#endif
