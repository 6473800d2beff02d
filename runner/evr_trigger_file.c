/*  evr_trigger_file.c: pipeline files of a job's source that its steps
    may trigger (`triggers: [file:GLOB]`, `evrun-job trigger --file PATH`).

    The files are taken from the trusted side of the source, once, before
    any step runs: while the job is prepared, the tar of its ci_source
    (else of its source: a job without ci_source trusts its source) is
    read once more, and each regular file (no link, no device) of at most
    EVR_YAML_MAX_BYTES whose path matches a `file:` entry is kept under
    ARTIFACTS/JOB/.trigger-files/ (named by a hash of its path; at most
    EVR_TRIGGER_FILES_MAX files).  A step, whatever it did to the
    workspace, triggers what the source held: a trigger reads the kept
    copy.  Paths are matched as the tar names them, under the source's
    root ("./" and the workspace's "src/" taken off); a path with an
    empty, "." or ".." component never matches.  The tar is read in the
    child process that makes it, off the runner's loop
    (evr_prepare_source.c, evr_offload.h): nothing prints there;
    evr_eng_trigger_files_said does, back on the loop.  The directory
    is that child's temporary one (evr_offload_temp_dir) until it is
    reaped: a cancel removes it at once and again then, and the child
    makes only it, never the job's directory, so a child killed late
    writes nothing into a job whose end has removed its directory. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "evr_diag.h"
#include "evr_engine_int.h"
#include "evr_sha256.h"
#include "evr_trigger.h"
#include "evr_unit.h"
#include "evr_yaml.h"

#define S_DIR ".trigger-files"

/*  True when the job's spec has a `file:` entry matching path. */
static bool
s_listed(const evr_spec_t *spec, const char *path)
{
    const size_t pl = sizeof EVR_SPEC_TRIGGER_FILE - 1;
    for (uint32_t i = 0; i < spec->triggers.n; i++)
        if (!strncmp(spec->triggers.v[i], EVR_SPEC_TRIGGER_FILE, pl)
            && fnmatch(spec->triggers.v[i] + pl, path, FNM_PATHNAME) == 0)
            return true;
    return false;
}

static bool
s_has_files(const evr_spec_t *spec)
{
    for (uint32_t i = 0; i < spec->triggers.n; i++)
        if (!strncmp(spec->triggers.v[i], EVR_SPEC_TRIGGER_FILE,
                     sizeof EVR_SPEC_TRIGGER_FILE - 1))
            return true;
    return false;
}

/*  Where the kept copy of path is (for the job). */
static char *
s_kept(const evr_engine_t *e, const char *job, const char *path)
{
    evr_sha256_t *h = evr_sha256_new();
    evr_sha256_update(h, path, strlen(path));
    char hex[EVR_SHA256_HEX];
    evr_sha256_finish(&h, hex);
    return evr_asprintf("%s/%s/" S_DIR "/%.32s.yml", e->opts.artifacts_dir, job, hex);
}

/*  The source trusted with the pipeline files: ci_source, else source. */
static uint32_t
s_trusted(const evr_spec_t *spec)
{
    return evr_source_kind(&spec->ci_source) ? 0 : 1;
}

const char *
evr_eng_trigger_source(const evr_spec_t *spec)
{
    return s_trusted(spec) == 0 ? "ci_source" : "source";
}

/*  Writes the entry's data (len bytes) to the kept copy of path. */
static bool
s_keep(const evr_eng_job_t *job, struct archive *a, const char *path, size_t len)
{
    char *buf = evr_malloc(len + 1);
    la_ssize_t got = len ? archive_read_data(a, buf, len) : 0;
    char *file = s_kept(job->eng, job->id, path);
    char *tmp = evr_asprintf("%s.tmp", file);
    bool ok = got == (la_ssize_t) len;
    int fd = ok ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
    ok = fd >= 0 && write(fd, buf, len) == (ssize_t) len;
    if (fd >= 0 && (close(fd) != 0 || !ok || rename(tmp, file) != 0)) {
        ok = false;
        unlink(tmp);
    }
    free(buf);
    free(tmp);
    free(file);
    return ok;
}

bool
evr_eng_trigger_files_wanted(const evr_eng_job_t *job, uint32_t src_index)
{
    return src_index == s_trusted(job->spec) && s_has_files(job->spec);
}

char *
evr_eng_trigger_files_dir(const evr_eng_job_t *job)
{
    return evr_asprintf("%s/%s/" S_DIR, job->eng->opts.artifacts_dir, job->id);
}

void
evr_eng_trigger_files_capture(const evr_eng_job_t *job, uint32_t src_index, const char *tar,
                              evr_eng_trigger_capture_t *out)
{
    const evr_spec_t *spec = job->spec;
    memset(out, 0, sizeof *out);
    if (!evr_eng_trigger_files_wanted(job, src_index))
        return;
    char *dir = evr_eng_trigger_files_dir(job);
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    /* only the last component: the job's directory (which holds the tar)
       is never made again, once its end has removed it */
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {   /* as evr_mkdirs made it */
        snprintf(out->problem, sizeof out->problem, "%s: %s", dir, strerror(errno));
        goto out;
    }
    if (archive_read_open_filename(a, tar, 65536) != ARCHIVE_OK) {
        snprintf(out->problem, sizeof out->problem, "the tar");
        goto out;
    }
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *p = archive_entry_pathname(e);
        while (p && p[0] == '.' && p[1] == '/')
            p += 2;
        if (p && src_index == 1 && strncmp(p, "src/", 4) == 0)
            p += 4;
        else if (src_index == 1)
            continue;
        if (!p || archive_entry_filetype(e) != AE_IFREG || evr_spec_trigger_path_problem(p)
            || !s_listed(spec, p))
            continue;
        la_int64_t size = archive_entry_size(e);
        if (size < 0 || size > EVR_YAML_MAX_BYTES || out->kept >= EVR_TRIGGER_FILES_MAX) {
            out->over++;
            continue;
        }
        out->kept += s_keep(job, a, p, (size_t) size);
    }
out:
    archive_read_free(a);
    free(dir);
}

void
evr_eng_trigger_files_said(evr_eng_job_t *job, const evr_eng_trigger_capture_t *c)
{
    if (c->problem[0])
        evr_eng_print(job->eng, "evrun-runner: the pipeline files of %s are not kept: %s",
                      evr_eng_trigger_source(job->spec), c->problem);
    if (c->over)
        evr_eng_print(job->eng, "evrun-runner: %u pipeline file%s of %s not kept (over %u "
                      "bytes, or over %d files)", c->over, c->over == 1 ? "" : "s",
                      evr_eng_trigger_source(job->spec), EVR_YAML_MAX_BYTES,
                      EVR_TRIGGER_FILES_MAX);
}

evr_rc_t
evr_eng_trigger_file_load(const evr_eng_step_t *st, const char *path, const evr_strmap_t *given,
                          char **text, size_t *len, evr_spec_t **spec, evr_err_t *err)
{
    const evr_spec_t *js = st->job->spec;
    const char *why = evr_spec_trigger_path_problem(path);
    *text = NULL;
    *spec = NULL;
    if (why)
        return evr_err_set(err, EVR_ERR_PROTO, "\"file\": \"%.64s\": %s", path, why);
    if (!s_listed(js, path))
        return evr_err_set(err, EVR_ERR_STATE, "file %s is not in the triggers: of pipeline %s: "
                           "add file:%s (or a glob matching it) there to let its steps start "
                           "it", path, js->pipeline ? js->pipeline : "?", path);
    char *kept = s_kept(st->job->eng, st->job->id, path);
    int fd = open(kept, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    free(kept);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > EVR_YAML_MAX_BYTES) {
        if (fd >= 0)
            close(fd);
        return evr_err_set(err, EVR_ERR_NOTFOUND, "file %s: not in the job's %s (a regular "
                           "file of at most %u bytes, as it was before the steps ran)", path,
                           evr_eng_trigger_source(js), EVR_YAML_MAX_BYTES);
    }
    *len = (size_t) sb.st_size;
    *text = evr_malloc(*len + 1);
    bool ok = read(fd, *text, *len) == (ssize_t) *len;
    close(fd);
    (*text)[*len] = '\0';
    evr_rc_t rc = ok ? EVR_OK : evr_err_set(err, EVR_ERR_IO, "file %s: cannot read its copy",
                                            path);
    evr_diag_t *diag = evr_diag_new(path);
    evr_strmap_t args = { 0 };
    *spec = rc ? NULL : evr_spec_new();
    if (!rc && (evr_yaml_load(*text, *len, *spec, diag)
                || evr_spec_bind_args(*spec, given, &args, diag))) {
        char msg[EVR_ERR_MAX] = "";
        size_t at = 0;
        for (size_t i = 0; i < evr_diag_count(diag) && i < 4 && at < sizeof msg - 1; i++)
            at += (size_t) snprintf(msg + at, sizeof msg - at, "%s%s", i ? "; " : "",
                                    evr_diag_get(diag, i));
        rc = evr_err_set(err, EVR_ERR_SPEC, "%s", msg[0] ? msg : "cannot load it");
    }
    else if (!rc && ((*spec)->source.copy || (*spec)->ci_source.copy))
        rc = evr_err_set(err, EVR_ERR_SPEC, "file %s: a triggered pipeline file has no "
                         "directory to copy: use a git or tarball source", path);
    else if (!rc && evr_spec_check_size(*spec, err))
        rc = EVR_ERR_LIMIT;
    evr_diag_destroy(&diag);
    evr_strmap_free(&args);
    if (rc) {
        evr_spec_destroy(spec);
        free(*text);
        *text = NULL;
    }
    return rc;
}

void
evr_eng_trigger_files_remove(const evr_eng_job_t *job)
{
    if (!s_has_files(job->spec))
        return;
    char *dir = evr_eng_trigger_files_dir(job);
    evr_err_t err;
    struct stat sb;
    if (lstat(dir, &sb) == 0 && evr_unit_rmtree(dir, &err))
        evr_eng_print(job->eng, "evrun-runner: %s: %s", dir, err.msg);
    free(dir);
    char *jd = evr_asprintf("%s/%s", job->eng->opts.artifacts_dir, job->id);
    rmdir(jd);   /* when nothing else is there */
    free(jd);
}
