/*  evr_artifact.h: tar streams in and out of containers, safely.

    Artifacts arrive as tar streams from podman's archive API; they are
    unpacked with libarchive into a destination directory with path
    checks: no absolute names, no "..", no links (symbolic or hard) that
    could point outside, at most EVR_ARTIFACT_MAX_ENTRIES entries and
    EVR_ARTIFACT_MAX_BYTES bytes.  Each file is written under a temporary
    name and renamed into place when complete, so the directory never holds
    a partial file under its final name.
*/
#ifndef EVR_ARTIFACT_H_INCLUDED
#define EVR_ARTIFACT_H_INCLUDED

#include "evr_common.h"

#define EVR_ARTIFACT_MAX_ENTRIES 10000
#define EVR_ARTIFACT_MAX_BYTES (1ull << 30)

/*  Unpacks the tar file at tar_path into dest (created with parents).
    *files receives the number of regular files written.  Errors name the
    entry and the reason. */
evr_rc_t evr_artifact_unpack(const char *tar_path, const char *dest, uint32_t *files,
                             evr_err_t *err);

/*  Resources: makes the tar to upload into /workspace from a downloaded
    file.  A tar archive (optionally gzip, bzip2 or xz compressed) is
    unpacked under dest (a safe relative path) with the same checks as
    artifacts, links refused; any other file becomes the single file
    dest.  *tar is the caller's to free. */
evr_rc_t evr_resource_tar(const char *file, const char *dest, uint8_t **tar, size_t *len,
                          evr_err_t *err);

#endif
