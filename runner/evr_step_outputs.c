/*  evr_step_outputs.c: a step's outputs, after its exit.

    Every step is given EVRUN_OUTPUT, the path of a file in the job's
    workspace root (.evrun-output-STEP-ATTEMPT-KEY, STEP in its container
    form: /workspace/... for podman, /job/... with a source, the workspace
    directory for the process executor), where it may write KEY=VALUE
    lines.  KEY (16 hex digits) hashes the unit's name with the runner's
    output key (32 random hex digits kept in its store's meta, so that a
    restarted runner names the same file): no other step of the job can
    guess the name and write a later step's outputs before it runs.  After its exit (succeeded or failed, timed out included; not
    when it was cancelled or lost) the engine reads that file: from the
    host directory of the workspace when the executor tells it (`dir`:
    podman's volume, asked once per job; openat2 beneath it, no link
    followed, a regular file only), else through the executor's get, as
    artifacts are (a tar stream, held in memory: at most
    EVR_OUTPUTS_MAX_BYTES of file; a podman archive of an exited container
    costs it a mount, some 30-90 ms), parses it
    (evr_outputs_parse: bad lines become a warning on the step's stderr,
    never an error of the step), masks the values as output is masked, and
    records them (step.outputs) before anything uses them; a file read
    from the host directory is then removed (its secrets are masked in
    step.outputs, not in the file, which a later `untrusted` step could
    read).  The steps that
    `need` it (directly) then get EVRUN_OUT_<STEP>_<KEY>.  Only a step some
    other step needs has its file read: no other step could use it.  The
    file of another step (or of one cancelled) is removed unread, when the
    host directory is known, lest a later untrusted step read it.  A
    restarted runner takes the outputs from its log (the job projection)
    and never reads a file again once step.outputs is recorded.
*/
#define _GNU_SOURCE   /* openat2's flags */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sys/random.h>

#include "evr_artifact.h"
#include "evr_engine_int.h"
#include "evr_sha256.h"

/*  Most bytes of EVRUN_OUT_* variables one step is given. */
#define S_ENV_MAX (1024u * 1024u)
/*  The tar stream of one file: the file, its header and padding. */
#define S_TAR_MAX (EVR_OUTPUTS_MAX_BYTES + 16u * 1024u)

typedef struct {
    evr_eng_step_t *st;
    uint8_t *buf;
    size_t len;
    bool over;
} s_read_t;

void
evr_eng_outputs_key(evr_engine_t *e)
{
    char *kept = NULL;
    evr_err_t err;
    if (e->store && evr_store_meta_get(e->store, "output_key", &kept, &err) == EVR_OK
        && strlen(kept) == sizeof e->output_key - 1) {
        memcpy(e->output_key, kept, sizeof e->output_key);
        free(kept);
        return;
    }
    free(kept);
    uint8_t rnd[(sizeof e->output_key - 1) / 2];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd) {
        fprintf(stderr, "evrun: getrandom failed\n");
        abort();
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(e->output_key + 2 * i, 3, "%02x", rnd[i]);
    if (e->store && evr_store_meta_set(e->store, "output_key", e->output_key, &err))
        evr_eng_warn("%s (a restarted runner cannot read the outputs of a step that "
                     "ended before it)", err.msg);
}

char *
evr_eng_output_file(const evr_eng_step_t *st)
{
    char *form = evr_spec_step_unit_form(st->spec->name);
    uint32_t attempt = st->attempt ? st->attempt : 1;
    char *what = evr_asprintf("%s\n%s\n%s\n%u", st->job->eng->output_key, st->job->id, form,
                              attempt);
    char hex[EVR_SHA256_HEX];
    evr_sha256_t *h = evr_sha256_new();
    evr_sha256_update(h, what, strlen(what));
    evr_sha256_finish(&h, hex);
    char *f = evr_asprintf(".evrun-output-%s-%u-%.16s", form, attempt, hex);
    free(what);
    free(form);
    return f;
}

/*  Whether another step of the job names st in its needs. */
static bool
s_needed(const evr_eng_step_t *st)
{
    const evr_eng_job_t *job = st->job;
    for (uint32_t i = 0; i < job->n; i++) {
        const evr_strlist_t *needs = &job->steps[i].spec->needs;
        for (uint32_t k = 0; k < needs->n; k++)
            if (strcmp(needs->v[k], st->spec->name) == 0)
                return true;
    }
    return false;
}

static bool
s_wants(const evr_eng_step_t *st)
{
    return !st->outputs_read && st->unit_id && !st->cancelled && !st->lost && s_needed(st);
}

/*  Whether st's file is to be removed unread: no step needs it (or it
    was cancelled), and the runner reaches the workspace's directory.
    Left there, it would hold the values unmasked for a later `untrusted`
    step to read: the next one in the file, a `when: always` one. */
static bool
s_drops(const evr_eng_step_t *st)
{
    const evr_eng_job_t *job = st->job;
    return !st->outputs_read && st->unit_id && !st->lost && !s_wants(st) && job->ex->ops->dir
           && !job->no_ws;
}

/*  st's file removed, unread, from the workspace's host directory (a link
    or anything else there by that name too, not followed). */
static void
s_drop(evr_eng_step_t *st)
{
    st->outputs_read = true;
    int dfd = st->job->out_dir ? open(st->job->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd < 0)
        return;
    char *file = evr_eng_output_file(st);   /* one component: no '/' */
    unlinkat(dfd, file, 0);
    free(file);
    close(dfd);
}

/*  After the outputs: the artifacts, or the step's end. */
static void
s_next(evr_eng_step_t *st)
{
    if (evr_eng_step_wants_artifacts(st))
        evr_eng_step_artifacts(st);
    else
        evr_eng_step_finish(st);
}

/*  text (lines) on the step's stderr, each line as "evrun: $EVRUN_OUTPUT:
    LINE", stored as its output is (masked). */
static void
s_warn(evr_eng_step_t *st, const char *text)
{
    evr_eng_step_note(st, "$EVRUN_OUTPUT", text);
}

/*  v masked with the job's secrets; caller frees. */
static char *
s_masked(const evr_eng_job_t *job, const char *v)
{
    return evr_mask_text((const char *const *) job->secrets, job->nsecrets, v);
}

/*  step.outputs is committed (test hook: a crash test kills here). */
static void
s_recorded(void *arg, void *data, size_t len)
{
    (void) data;
    (void) len;
    evr_eng_test_pause("outputs", arg);
}

/*  The file's bytes: parsed, masked, recorded. */
static void
s_take(evr_eng_step_t *st, const char *text, size_t n)
{
    evr_strmap_t raw = { 0 };
    char *warn = NULL;
    evr_outputs_parse(text, n, &raw, &warn);
    if (warn)
        s_warn(st, warn);
    free(warn);
    evr_strmap_free(&st->outputs);
    for (uint32_t i = 0; i < raw.n; i++) {
        char *k = s_masked(st->job, raw.k[i]);
        if (strcmp(k, raw.k[i])) {   /* "K_***" is no variable name: never stored */
            char *why = evr_asprintf("%s: its name holds a secret: left out", k);
            s_warn(st, why);
            free(why);
            free(k);
            continue;
        }
        free(k);
        char *v = s_masked(st->job, raw.v[i]);
        if (strlen(v) <= EVR_OUTPUTS_MAX_VALUE)
            evr_strmap_set(&st->outputs, raw.k[i], v);
        else {
            char why[128];
            snprintf(why, sizeof why, "%s: over 4096 bytes once masked: left out", raw.k[i]);
            s_warn(st, why);
        }
        free(v);
    }
    evr_strmap_free(&raw);
    if (!st->outputs.n)
        return;
    evr_event_t *ev = evr_eng_emit(st->job, EVR_EV_STEP_OUTPUTS, st);
    for (uint32_t i = 0; i < st->outputs.n; i++)
        evr_strmap_set(&ev->data.outputs, st->outputs.k[i], st->outputs.v[i]);
    evr_eng_step_log(st, "outputs: %u key%s", st->outputs.n, st->outputs.n == 1 ? "" : "s");
    evr_eng_after(st->job->eng, s_recorded, st, NULL, 0);
}

static bool
s_data(const uint8_t *p, size_t n, void *arg)
{
    s_read_t *rd = arg;
    if (n > S_TAR_MAX - rd->len) {
        rd->over = true;
        return false;
    }
    rd->buf = evr_realloc(rd->buf, rd->len + n);
    memcpy(rd->buf + rd->len, p, n);
    rd->len += n;
    return true;
}

static void
s_done(const evr_exec_result_t *r, void *arg)
{
    s_read_t *rd = arg;
    evr_eng_step_t *st = rd->st;
    char why[EVR_ERR_MAX + 64];
    st->outputs_read = true;
    if (rd->over || (!r->rc && rd->len > S_TAR_MAX)) {
        snprintf(why, sizeof why, "larger than %u bytes: not read", EVR_OUTPUTS_MAX_BYTES);
        s_warn(st, why);
    }
    else if (r->rc && !r->not_found) {
        snprintf(why, sizeof why, "not read: %s", r->msg);
        s_warn(st, why);
    }
    else if (!r->rc) {
        char *text = NULL;
        size_t n = 0;
        evr_err_t err;
        evr_rc_t rc = evr_artifact_read_one(rd->buf, rd->len, EVR_OUTPUTS_MAX_BYTES, &text, &n,
                                            &err);
        if (rc == EVR_ERR_LIMIT)
            snprintf(why, sizeof why, "larger than %u bytes: not read", EVR_OUTPUTS_MAX_BYTES);
        else if (rc)
            snprintf(why, sizeof why, "not read: %s", err.msg);
        if (rc)
            s_warn(st, why);
        else
            s_take(st, text, n);
        free(text);
    }
    free(rd->buf);
    free(rd);
    s_next(st);
}

/*  The outputs file of st through the executor's get. */
static void
s_get(evr_eng_step_t *st)
{
    evr_eng_job_t *job = st->job;
    s_read_t *rd = evr_calloc(1, sizeof *rd);
    rd->st = st;
    char *file = evr_eng_output_file(st);
    job->ex->ops->get(job->ex, st->unit, job->id,
                      evr_spec_has_source(job->spec) ? EVR_EXEC_LAYOUT_JOB
                                                     : EVR_EXEC_LAYOUT_WORKSPACE,
                      file, s_data, s_done, rd);
    free(file);
}

/*  The outputs file of st read from the workspace's host directory: true
    when that settled it (read, absent, or too large: said), false when
    the get should be asked instead (it cannot be opened from here). */
static bool
s_read_direct(evr_eng_step_t *st)
{
    int dfd = open(st->job->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return false;
    /* O_PATH first: a device node or FIFO the step put there is looked
       at, never opened; a regular file is then opened through its fd */
    struct open_how how = { .flags = O_PATH | O_CLOEXEC,
                            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
                                     | RESOLVE_NO_MAGICLINKS };
    char *file = evr_eng_output_file(st);
    int pfd = (int) syscall(SYS_openat2, dfd, file, &how, sizeof how);
    int en = errno;
    /* gone once looked at, whatever it is: its secrets are masked in what
       is recorded, never in the file, which a later untrusted step could
       read (a link is removed, not followed) */
    if (pfd >= 0 || en == ELOOP)
        unlinkat(dfd, file, 0);
    free(file);
    close(dfd);
    if (pfd < 0 && en == ELOOP)
        s_warn(st, "a symbolic link: not read (write a file)");
    if (pfd < 0)
        return en == ENOENT || en == ELOOP;   /* else (no openat2...): the get says */
    struct stat sb;
    int fd = -1;
    bool other = fstat(pfd, &sb) == 0 && !S_ISREG(sb.st_mode);
    if (other)
        s_warn(st, "not read: not a regular file");
    else {
        char self[64];
        snprintf(self, sizeof self, "/proc/self/fd/%d", pfd);
        fd = open(self, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    }
    close(pfd);
    if (fd < 0)
        return other;
    char *buf = NULL;
    ssize_t n = -1;
    bool settled = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    if (settled && (uint64_t) sb.st_size > EVR_OUTPUTS_MAX_BYTES) {
        char why[96];
        snprintf(why, sizeof why, "larger than %u bytes: not read", EVR_OUTPUTS_MAX_BYTES);
        s_warn(st, why);
    }
    else if (settled) {
        buf = evr_malloc(EVR_OUTPUTS_MAX_BYTES + 1);
        n = read(fd, buf, EVR_OUTPUTS_MAX_BYTES + 1);   /* a regular file: whole */
        settled = n >= 0 && (size_t) n <= EVR_OUTPUTS_MAX_BYTES;
        if (settled)
            s_take(st, buf, (size_t) n);
    }
    close(fd);
    free(buf);
    return settled;
}

/*  The executor's answer about the workspace's host directory. */
static void
s_dir_known(const evr_exec_result_t *r, void *arg)
{
    evr_eng_step_t *st = arg;
    evr_eng_job_t *job = st->job;
    job->calls--;
    if (!r->rc && r->names && *r->names) {
        free(job->out_dir);   /* a step that asked while another's answer was pending */
        job->out_dir = evr_strdup(r->names);
        job->out_dir_state = 2;
    }
    else
        job->out_dir_state = 3;
    if (!s_wants(st)) {   /* asked to remove its file only */
        if (job->out_dir_state == 2)
            s_drop(st);
        s_next(st);
    }
    else if (job->out_dir_state == 2 && s_read_direct(st)) {
        st->outputs_read = true;
        s_next(st);
    }
    else
        s_get(st);
}

void
evr_eng_step_collect(evr_eng_step_t *st)
{
    evr_eng_job_t *job = st->job;
    bool drop = s_drops(st);
    if (drop && job->out_dir_state == 2)
        s_drop(st);
    if (!s_wants(st) && (!drop || job->out_dir_state >= 2)) {
        s_next(st);
        return;
    }
    bool dir = job->ex->ops->dir && !job->no_ws;
    /* asked once a job; a step that ends while the answer is pending asks
       too (it must not take the archive path, which reads a link) */
    if (dir && job->out_dir_state <= 1) {
        job->out_dir_state = 1;
        job->calls++;
        job->ex->ops->dir(job->ex, job->id, NULL, s_dir_known, st);
        return;
    }
    if (dir && job->out_dir_state == 2 && s_read_direct(st)) {
        st->outputs_read = true;
        s_next(st);
        return;
    }
    s_get(st);
}

void
evr_eng_outputs_env(const evr_eng_step_t *st, evr_strmap_t *env)
{
    const evr_eng_job_t *job = st->job;
    size_t total = 0, left_out = 0;
    for (uint32_t k = 0; k < st->spec->needs.n; k++) {
        int j = evr_spec_step_index(job->spec, st->spec->needs.v[k]);
        if (j < 0 || (uint32_t) j >= job->n)
            continue;
        const evr_eng_step_t *dep = &job->steps[j];
        for (uint32_t i = 0; i < dep->outputs.n; i++) {
            char *name = evr_outputs_env_name(dep->spec->name, dep->outputs.k[i]);
            size_t n = strlen(name) + strlen(dep->outputs.v[i]) + 2;
            if (n > S_ENV_MAX - total)
                left_out++;   /* a process's environment holds a few MiB at most */
            else {
                total += n;
                evr_strmap_set(env, name, dep->outputs.v[i]);
            }
            free(name);
        }
    }
    if (left_out)
        evr_eng_step_log(st, "%zu outputs of the steps it needs left out of its environment "
                         "(over %u bytes in all)", left_out, S_ENV_MAX);
}
