/*  evr_pipelines.c: the directory of registered pipelines (see
    evr_pipelines.h).

    A scan lists the *.yml and *.yaml files of the directory in name order
    (at most EVR_PIPES_MAX_FILES), loads those whose mtime, size or inode
    changed, and registers each name once.  inotify events and SIGHUP only
    ask for a scan, done 100 ms later, so an editor's several writes make
    one reload.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_codec.h"
#include "evr_paths.h"
#include "evr_pipelines.h"
#include "evr_yaml.h"

#define S_DEBOUNCE_NS (100 * 1000000ull)

static bool
s_is_pipeline_file(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.' || n > 255)
        return false;
    return (n > 4 && !strcmp(name + n - 4, ".yml")) || (n > 5 && !strcmp(name + n - 5, ".yaml"));
}

/*  Whether a pipeline file's name can be listed: UTF-8 without control
    characters. */
static bool
s_name_ok(const char *name)
{
    for (const char *c = name; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            return false;
    return evr_utf8_valid(name, strlen(name));
}

static void
s_pipe_free(evr_pipe_t *p)
{
    free(p->file);
    evr_spec_destroy(&p->spec);
    free(p->error);
    free(p->fire_status);
    free(p->sched_expr);
    free(p->sched_tz);
    free(p->sched_name);
    free(p->dup);
    free(p->named);
    free(p);
}

evr_rc_t
evr_pipelines_init(evr_broker_t *b, evr_err_t *err)
{
    evr_pipelines_t *ps = evr_calloc(1, sizeof *ps);
    b->pipes = ps;
    ps->ifd = -1;
    const char *off = getenv("EVRUN_TEST_CLOCK_OFFSET");
    if (off && *off) {
        char *end;
        errno = 0;
        long long v = strtoll(off, &end, 10);
        if (errno || *end || v < -(1ll << 40) || v > (1ll << 40))
            evr_broker_warn(b, "EVRUN_TEST_CLOCK_OFFSET=%s: expected whole seconds; ignored", off);
        else {
            ps->clock_offset = v;
            evr_broker_warn(b, "EVRUN_TEST_CLOCK_OFFSET: schedules run %lld s off the wall "
                            "clock (tests only)", v);
        }
    }
    ps->started = evr_sched_now(b);
    char self[EVR_ULID_LEN + 2] = "";
    evr_ulid_new(self + 1);     /* a leading NUL: no id libzmq makes; random: unguessable */
    ps->loop_rid = zframe_new(self, sizeof self - 1);
    evr_bus_loopback(b->clients, ps->loop_rid, evr_sched_answer, b);
    if (!b->opts.pipelines_dir)
        return EVR_OK;
    evr_rc_t rc = evr_paths_dir(b->opts.pipelines_dir, true, err);
    if (rc)     /* its files start jobs: only its owner may write there */
        return evr_err_set(err, rc, "pipelines_dir: %s", err->msg);
    ps->dir = evr_strdup(b->opts.pipelines_dir);
    ps->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ps->ifd >= 0 && inotify_add_watch(ps->ifd, ps->dir, IN_CLOSE_WRITE | IN_MOVED_TO
                                          | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_ATTRIB
                                          | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
        evr_broker_warn(b, "pipelines_dir %s: no inotify watch (%s): changes are read on "
                        "SIGHUP only", ps->dir, strerror(errno));
        close(ps->ifd);
        ps->ifd = -1;
    }
    ps->reload_at = evr_mono_ns();
    evr_pipelines_turn(b);
    ps->loaded = true;
    return EVR_OK;
}

void
evr_pipelines_fini(evr_broker_t *b)
{
    evr_pipelines_t *ps = b->pipes;
    if (!ps)
        return;
    if (b->clients)
        evr_bus_loopback(b->clients, NULL, NULL, NULL);
    while (ps->list) {
        evr_pipe_t *p = ps->list;
        ps->list = p->next;
        s_pipe_free(p);
    }
    if (ps->ifd >= 0)
        close(ps->ifd);
    zframe_destroy(&ps->loop_rid);
    free(ps->dir);
    free(ps);
    b->pipes = NULL;
}

int
evr_pipelines_fd(const evr_broker_t *b)
{
    return b->pipes ? b->pipes->ifd : -1;
}

void
evr_pipelines_reload(evr_broker_t *b)
{
    if (b->pipes && b->pipes->dir && !b->pipes->reload_at)
        b->pipes->reload_at = evr_mono_ns() + S_DEBOUNCE_NS;
}

long
evr_pipelines_wait_ms(const evr_broker_t *b, long cap)
{
    const evr_pipelines_t *ps = b->pipes;
    if (!ps)
        return cap;
    long wait = cap;
    if (ps->reload_at) {
        uint64_t now = evr_mono_ns();
        long ms = ps->reload_at > now ? (long) ((ps->reload_at - now) / 1000000) + 1 : 0;
        wait = ms < wait ? ms : wait;
    }
    int64_t now_ms = (int64_t) (evr_now_ns() / 1000000) + ps->clock_offset * 1000;
    for (const evr_pipe_t *p = ps->list; p; p = p->next)
        if (p->scheduled && p->next_fire) {
            int64_t d = p->next_fire * 1000 - now_ms;
            long ms = d <= 0 ? 0 : d > 86400000 ? 86400000 : (long) d + 1;
            wait = ms < wait ? ms : wait;
        }
    return wait;
}

/* --------------------------------------------------------------- loading */

/*  The diag's lines, joined (at most EVR_PIPES_MAX_ERROR bytes). */
static char *
s_diag_text(const evr_diag_t *diag)
{
    char *out = evr_calloc(1, EVR_PIPES_MAX_ERROR + 1);
    size_t at = 0;
    for (size_t i = 0; i < evr_diag_count(diag) && i < EVR_DIAG_MAX; i++) {
        int n = snprintf(out + at, EVR_PIPES_MAX_ERROR + 1 - at, "%s%s", i ? "\n" : "",
                         evr_diag_get(diag, i));
        if (n < 0 || at + (size_t) n >= EVR_PIPES_MAX_ERROR)
            break;
        at += (size_t) n;
    }
    return out;
}

/*  What a registered pipeline needs beyond `evrun-cli validate`. */
static void
s_check_registered(const evr_spec_t *spec, evr_diag_t *diag)
{
    if (spec->source.copy)
        evr_diag_add(diag, "source.copy", "a registered pipeline has no submitter's directory "
                     "to copy: use a git or tarball source");
    if (spec->ci_source.copy)
        evr_diag_add(diag, "ci_source.copy", "a registered pipeline has no submitter's "
                     "directory to copy: use a git or tarball source");
    for (uint32_t i = 0; spec->schedule && i < spec->args.n; i++) {
        const evr_arg_t *a = evr_spec_arg(spec, i);
        if (a->name && !a->def) {
            char path[128];
            snprintf(path, sizeof path, "args.%s", a->name);
            evr_diag_add(diag, path, "a scheduled pipeline starts without -a: give this arg "
                         "a default");
        }
    }
    evr_err_t err;
    if (evr_spec_check_size(spec, &err))
        evr_diag_add(diag, "pipeline", "%s", err.msg);
}

/*  Reads p's file (opened without blocking: a FIFO put there cannot hang
    the broker) into *buf when it changed since the last look: 1 read, 0
    unchanged, -1 refused with *error set. */
static int
s_read(const char *path, evr_pipe_t *p, char **buf, size_t *len, char **error)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *error = evr_asprintf("%s: %s", path, fd < 0 ? strerror(errno) : "not a regular file");
        memset(&p->mtime, 0, sizeof p->mtime);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (st.st_mtim.tv_sec == p->mtime.tv_sec && st.st_mtim.tv_nsec == p->mtime.tv_nsec
        && st.st_size == p->size && st.st_ino == p->ino) {
        close(fd);
        return 0;
    }
    p->mtime = st.st_mtim;
    p->size = st.st_size;
    p->ino = st.st_ino;
    *buf = evr_malloc(EVR_YAML_MAX_BYTES + 2);
    *len = 0;
    ssize_t n = 0;
    while (*len <= EVR_YAML_MAX_BYTES
           && (n = read(fd, *buf + *len, EVR_YAML_MAX_BYTES + 1 - *len)) > 0)
        *len += (size_t) n;
    close(fd);
    if (n < 0)
        *error = evr_asprintf("%s: cannot read: %s", path, strerror(errno));
    else if (*len > EVR_YAML_MAX_BYTES)
        *error = evr_asprintf("%s: over the limit of %u bytes (1 MiB)", path, EVR_YAML_MAX_BYTES);
    if (!*error)
        return 1;
    free(*buf);
    *buf = NULL;
    return -1;
}

/*  Loads p's file when it changed since the last look. */
static void
s_load(evr_broker_t *b, evr_pipe_t *p)
{
    char *path = evr_asprintf("%s/%s", b->pipes->dir, p->file);
    char *error = NULL, *buf = NULL;
    size_t len = 0;
    int got = s_read(path, p, &buf, &len, &error);
    if (got == 0) {
        free(path);
        return;     /* unchanged: the last outcome stands */
    }
    evr_spec_t *spec = NULL;
    if (got > 0) {
        spec = evr_spec_new();
        evr_diag_t *diag = evr_diag_new(path);
        evr_rc_t rc = evr_yaml_load(buf, len, spec, diag);
        if (!rc)
            s_check_registered(spec, diag);
        if (evr_diag_count(diag))
            error = s_diag_text(diag);
        else if (rc)
            error = evr_asprintf("%s: cannot load", path);
        evr_diag_destroy(&diag);
        free(buf);
    }
    if (error && p->spec) {
        char *more = evr_asprintf("%s\n(the file's last good version, pipeline %s, serves)",
                                  error, p->spec->pipeline);
        free(error);
        error = more;
    }
    free(p->error);
    p->error = error;
    free(p->named);
    p->named = error && spec && spec->pipeline && spec->pipeline[0]
                       && (!p->spec || strcmp(p->spec->pipeline, spec->pipeline))
                   ? evr_strdup(spec->pipeline) : NULL;
    if (error) {
        evr_spec_destroy(&spec);
        evr_broker_error(b, "pipeline file %s refused:\n%s", p->file, error);
    }
    else {
        evr_spec_destroy(&p->spec);
        p->spec = spec;
        p->loaded = true;   /* said by s_register: loaded, or refused as a second name */
    }
    free(path);
}

static int
s_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/*  The pipeline files of the directory, sorted; NULL when it cannot be
    read (said).  *n of them; *more: files left out over the limit. */
static char **
s_list_dir(evr_broker_t *b, size_t *n, size_t *more)
{
    DIR *d = opendir(b->pipes->dir);
    *n = *more = 0;
    if (!d) {
        evr_broker_error(b, "pipelines_dir %s: cannot read it: %s (the pipelines loaded "
                         "before stay)", b->pipes->dir, strerror(errno));
        return NULL;
    }
    char **names = evr_calloc(EVR_PIPES_MAX_FILES + 1, sizeof *names);
    struct dirent *e;
    while ((e = readdir(d)))
        if (s_is_pipeline_file(e->d_name) && !s_name_ok(e->d_name)) {
            /* the file name goes into every `pipeline` answer (file), a
               msgpack str: bytes that are no UTF-8 would make the whole
               listing malformed for each client (GET /api/v1/pipelines,
               /hooks/github, the metrics), a control character forge a
               line of the log: skipped, said with its bytes quoted */
            char q[4 * 256 + 1];
            size_t k = 0;
            for (const unsigned char *c = (const unsigned char *) e->d_name; *c; c++)
                if (*c < 0x20 || *c >= 0x7f || *c == '\\')
                    k += (size_t) snprintf(q + k, sizeof q - k, "\\x%02X", *c);
                else
                    q[k++] = (char) *c;
            q[k] = '\0';
            evr_broker_error(b, "pipelines_dir %s: file \"%s\" skipped: its name is no UTF-8 or "
                             "holds a control character (rename it)", b->pipes->dir, q);
        }
        else if (s_is_pipeline_file(e->d_name)) {
            if (*n < EVR_PIPES_MAX_FILES)
                names[(*n)++] = evr_strdup(e->d_name);
            else
                (*more)++;
        }
    closedir(d);
    qsort(names, *n, sizeof *names, s_cmp_names);
    return names;
}

/*  Marks which entries register their name: the first file that has it;
    the others get p->dup saying so. */
static void
s_register(evr_broker_t *b)
{
    for (evr_pipe_t *p = b->pipes->list; p; p = p->next) {
        p->registered = false;
        if (!p->spec) {
            free(p->dup);
            p->dup = NULL;
            continue;
        }
        const evr_pipe_t *first = NULL;
        for (const evr_pipe_t *q = b->pipes->list; q != p && !first; q = q->next)
            if (q->registered && !strcmp(q->spec->pipeline, p->spec->pipeline))
                first = q;
        bool loaded = p->loaded;
        p->loaded = false;
        if (!first) {
            p->registered = true;
            free(p->dup);
            p->dup = NULL;
            if (loaded)
                evr_broker_info(b, "pipeline file %s loaded: pipeline %s", p->file,
                                p->spec->pipeline);
            continue;
        }
        /* the paths as a load error's (file:line:col: ...) */
        char *why = evr_asprintf("%s/%s: pipeline \"%s\" is registered by %s/%s already: a "
                                 "name is registered once (rename the pipeline in one of the "
                                 "files)", b->pipes->dir, p->file, p->spec->pipeline,
                                 b->pipes->dir, first->file);
        if (loaded || !p->dup || strcmp(p->dup, why))
            evr_broker_error(b, "pipeline file %s refused:\n%s", p->file, why);
        free(p->dup);
        p->dup = why;
    }
}

/*  Reads the directory: new and changed files loaded, gone ones dropped. */
static void
s_scan(evr_broker_t *b)
{
    evr_pipelines_t *ps = b->pipes;
    size_t n, more;
    char **names = s_list_dir(b, &n, &more);
    if (!names)
        return;
    if (more)
        evr_broker_error(b, "pipelines_dir %s: %zu more pipeline files than the %d read (in "
                         "name order, up to %s)", ps->dir, more, EVR_PIPES_MAX_FILES,
                         names[n - 1]);
    evr_pipe_t *list = NULL, **tail = &list;
    for (size_t i = 0; i < n; i++) {
        evr_pipe_t **pp = &ps->list;
        while (*pp && strcmp((*pp)->file, names[i]))
            pp = &(*pp)->next;
        evr_pipe_t *p = *pp;
        if (p)
            *pp = p->next;
        else {
            p = evr_calloc(1, sizeof *p);
            p->file = evr_strdup(names[i]);
        }
        p->next = NULL;
        *tail = p;
        tail = &p->next;
        s_load(b, p);
        free(names[i]);
    }
    free(names);
    while (ps->list) {     /* files gone */
        evr_pipe_t *p = ps->list;
        ps->list = p->next;
        evr_broker_info(b, "pipeline file %s removed%s%s", p->file, p->spec ? ": pipeline " : "",
                        p->spec ? p->spec->pipeline : "");
        s_pipe_free(p);
    }
    ps->list = list;
    s_register(b);
    for (evr_pipe_t *p = ps->list; p; p = p->next)
        evr_sched_update(b, p);
}

/*  Reads what inotify has; any event asks for a scan. */
static void
s_inotify(evr_broker_t *b)
{
    evr_pipelines_t *ps = b->pipes;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (int i = 0; i < 64; i++) {
        ssize_t n = read(ps->ifd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *) p;
            if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
                evr_broker_warn(b, "pipelines_dir %s was removed or moved: no more changes "
                                "are seen until the broker restarts", ps->dir);
            else if (!(ev->len && ev->name[0] == '.'))
                evr_pipelines_reload(b);
            p += sizeof *ev + ev->len;
        }
    }
}

void
evr_pipelines_turn(evr_broker_t *b)
{
    evr_pipelines_t *ps = b->pipes;
    if (!ps)
        return;
    if (ps->ifd >= 0)
        s_inotify(b);
    if (ps->reload_at && evr_mono_ns() >= ps->reload_at) {
        ps->reload_at = 0;
        s_scan(b);
    }
    if (!b->failure)
        evr_sched_fire_due(b);
}

/* --------------------------------------------------------------- requests */

evr_pipe_t *
evr_pipelines_find(const evr_broker_t *b, const char *name)
{
    for (evr_pipe_t *p = b->pipes ? b->pipes->list : NULL; p; p = p->next)
        if (p->registered && !strcmp(p->spec->pipeline, name))
            return p;
    return NULL;
}

void
evr_pipelines_submit_msg(const evr_pipe_t *p, const char *job, const evr_strmap_t *args,
                         const evr_strlist_t *labels, evr_msg_t *m)
{
    *m = (evr_msg_t) { .type = EVR_MSG_SUBMIT, .job = evr_strdup(job), .spec = evr_spec_new() };
    evr_rec_copy(&evr_spec_type, m->spec, p->spec);
    for (uint32_t i = 0; args && i < args->n; i++)
        evr_strmap_set(&m->args, args->k[i], args->v[i]);
    for (uint32_t i = 0; labels && i < labels->n; i++)
        evr_strlist_push(&m->labels, labels->v[i]);
}

void
evr_pipelines_submit(evr_broker_t *b, zframe_t *rid, const evr_pipe_t *p, const char *job,
                     const evr_strmap_t *args, const evr_strlist_t *labels)
{
    evr_msg_t m;
    evr_pipelines_submit_msg(p, job, args, labels, &m);
    evr_queue_submit(b, rid, &m, "schedule", NULL);
    evr_msg_clear(&m);
}

/*  Replaces *slot with v (when given). */
static void
s_set(char **slot, const char *v)
{
    if (!v)
        return;
    free(*slot);
    *slot = evr_strdup(v);
}

/*  A start's source overrides (PROTOCOL.md "Source overrides") onto
    spec where it takes a git source, checked again: false with why. */
static bool
s_override(evr_spec_t *spec, const evr_msg_t *req, char *why, size_t size)
{
    if (spec->source.git.present) {
        s_set(&spec->source.git.url, req->source_url);
        s_set(&spec->source.git.ref, req->source_ref);
    }
    if (spec->ci_source.git.present) {
        s_set(&spec->ci_source.git.url, req->ci_source_url);
        s_set(&spec->ci_source.git.ref, req->ci_source_ref);
    }
    evr_diag_t *diag = evr_diag_new("start");
    bool ok = evr_spec_validate(spec, diag) == EVR_OK;
    if (!ok) {
        /* the spec loaded before: what fails is an override, named by
           the request's field the client sent, then where it went
           ("start.source_url: source.git.url: ...") */
        const struct {
            const char *spec, *field, *given;
        } names[] = {
            { "source.git.url: ", "start.source_url: ", req->source_url },
            { "source.git.ref: ", "start.source_ref: ", req->source_ref },
            { "ci_source.git.url: ", "start.ci_source_url: ", req->ci_source_url },
            { "ci_source.git.ref: ", "start.ci_source_ref: ", req->ci_source_ref },
        };
        const char *line = evr_diag_count(diag) ? evr_diag_get(diag, 0) : "the spec is refused";
        const char *field = "";
        if (!strncmp(line, "start: ", 7))
            for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                if (names[i].given && !strncmp(line + 7, names[i].spec, strlen(names[i].spec))) {
                    field = names[i].field;
                    line += 7;
                    break;
                }
        snprintf(why, size, "%s%s", field, line);
    }
    evr_diag_destroy(&diag);
    return ok;
}

void
evr_pipelines_unknown(const evr_broker_t *b, const char *name, bool job, char *why, size_t len)
{
    const evr_pipe_t *p = b->pipes ? b->pipes->list : NULL;
    while (p && !(p->named && p->error && !strcmp(p->named, name)))
        p = p->next;
    if (!p && job)
        snprintf(why, len, "no registered pipeline \"%s\" (evrun-cli pipelines lists them)",
                 name);
    else if (!p)
        snprintf(why, len, "no registered pipeline \"%s\" (evrun-cli pipelines lists them; "
                 "a pipeline file in %s registers its pipeline name)", name,
                 b->pipes && b->pipes->dir ? b->pipes->dir : "the pipelines_dir");
    if (!p)
        return;
    /* its first error (the rest are a `pipelines` away), which starts
       with the file's path: a job gets it from the file's name on */
    const char *e = p->error;
    size_t dl = strlen(b->pipes->dir);
    if (job && !strncmp(e, b->pipes->dir, dl) && e[dl] == '/')
        e += dl + 1;
    size_t first = strcspn(e, "\n");
    const char *rest = e + first;   /* more errors, or only s_load's line on the last good version */
    static const char last_good[] = "\n(the file's last good version";
    bool more = *rest && !(!strncmp(rest, last_good, sizeof last_good - 1)
                           && !strchr(rest + 1, '\n'));
    snprintf(why, len, "no registered pipeline \"%s\": its file %s names it but has errors: "
             "%.*s%s; fix the file: the broker reads it again when it changes", name,
             p->file, (int) (first < 2048 ? first : 2048), e,
             more ? " (and more: evrun-cli pipelines shows them)" : "");
}

void
evr_pipelines_start(evr_broker_t *b, zframe_t *rid, const evr_msg_t *req)
{
    const evr_pipe_t *p = evr_pipelines_find(b, req->pipeline);
    if (!p && evr_queue_known(b, rid, req->job)) {
        /* a start sent again names the job it started, also once its
           pipeline is gone: not a check of the request's own */
        evr_msg_t ok = { .type = EVR_MSG_ACCEPTED, .job = req->job, .existing = true };
        evr_bus_send(b->clients, rid, &ok, NULL);
        return;
    }
    if (!p) {
        char why[3072];
        evr_pipelines_unknown(b, req->pipeline, false, why, sizeof why);
        evr_queue_flush(b);     /* after the answers of the submits read before it */
        evr_bus_send_error(b->clients, rid, EVR_CODE_NOT_FOUND, "%s", why);
        return;
    }
    evr_msg_t m;
    /* why: a line of the diag (its words cut visibly within 1 KiB) after
       the field sent, whole: the error's 4096 bytes, not 1024, which cut it
       again with no mark */
    char why[EVR_MESSAGE_MAX + 1], note[512] = "";
    if (p->error)   /* the client says it: no one takes the job for the file's text */
        snprintf(note, sizeof note, "pipeline %s's file %s has errors (evrun-cli pipelines "
                 "shows them): this job runs the last version of it that loaded",
                 req->pipeline, p->file);
    evr_pipelines_submit_msg(p, req->job, &req->args, &req->labels, &m);
    if (!req->source_url && !req->source_ref && !req->ci_source_url && !req->ci_source_ref)
        evr_queue_submit(b, rid, &m, "start", note[0] ? note : NULL);
    else if (!s_override(m.spec, req, why, sizeof why)) {
        evr_queue_flush(b);
        evr_bus_send_error(b->clients, rid, EVR_CODE_BAD_REQUEST, "%s", why);
    }
    else
        evr_queue_submit(b, rid, &m, "start", note[0] ? note : NULL);
    evr_msg_clear(&m);
}

static int
s_first_id(const char *id, evr_job_status_t status, void *arg)
{
    (void) status;
    snprintf(arg, EVR_ULID_LEN + 1, "%s", id);
    return 1;
}

void
evr_pipelines_jobs_of(evr_broker_t *b, const char *name, evr_msg_t *m)
{
    const evr_queue_job_t *newest = NULL;
    const evr_queue_pipe_t *pl = evr_queue_pipe(b, name);
    for (const evr_queue_job_t *j = pl ? pl->head : NULL; j; j = j->pnext) {
        if (j->state == B_QUEUED || j->state == B_HELD)
            m->waiting++;
        else
            m->running++;
        if (!newest || strcmp(j->id, newest->id) > 0)
            newest = j;
    }
    char last[EVR_ULID_LEN + 1] = "";
    evr_err_t err;
    evr_store_list(b->store, EVR_JOB_NONE, name, NULL, 1, s_first_id, last, &err);
    if (newest && strcmp(newest->id, last) > 0 && newest->state != B_ACTIVE) {
        m->last_job = evr_strdup(newest->id);
        m->last_status = evr_strdup(newest->state == B_HELD ? "paused" : "queued");
        return;
    }
    if (newest && strcmp(newest->id, last) > 0)
        snprintf(last, sizeof last, "%s", newest->id);
    evr_job_t pj = { 0 };
    if (last[0] && evr_store_get_job(b->store, last, &pj, &err) == EVR_OK) {
        m->last_job = evr_strdup(last);
        m->last_status = evr_strdup(evr_job_status_name(pj.status));
    }
    evr_rec_free(&evr_job_type, &pj);
}

void
evr_pipelines_list(evr_broker_t *b, zframe_t *rid)
{
    uint32_t n = 0;
    for (const evr_pipe_t *p = b->pipes ? b->pipes->list : NULL; p; p = p->next, n++) {
        evr_msg_t m = { .type = EVR_MSG_PIPELINE };
        m.pipeline = evr_strdup(p->spec ? p->spec->pipeline : "");
        m.file = evr_strdup(p->file);
        if (p->registered) {
            m.concurrency = p->spec->concurrency;
            evr_pipelines_jobs_of(b, p->spec->pipeline, &m);
            const evr_on_github_t *gh = &p->spec->on.github;
            for (uint32_t i = 0; gh->present && i < gh->events.n; i++)
                evr_strlist_push(&m.github_events, gh->events.v[i]);
            if (gh->present && !gh->events.n)
                evr_strlist_push(&m.github_events, "push");
            for (uint32_t i = 0; gh->present && i < gh->branches.n; i++)
                evr_strlist_push(&m.github_branches, gh->branches.v[i]);
            evr_reclist_copy(&evr_arg_type, &m.arg_specs, &p->spec->args);
        }
        if (p->scheduled) {
            m.schedule = evr_strdup(p->sched_expr);
            m.timezone = p->sched_tz ? evr_strdup(p->sched_tz) : NULL;
            m.next_run = p->next_fire > 0 ? (uint64_t) p->next_fire * 1000000000ull : 0;
            m.last_fire = p->last_fire > 0 ? (uint64_t) p->last_fire * 1000000000ull : 0;
            m.fire_job = p->fire_job[0] ? evr_strdup(p->fire_job) : NULL;
            m.fire_status = p->fire_status ? evr_strdup(p->fire_status) : NULL;
        }
        if (p->error || p->dup)
            m.load_error = evr_asprintf("%s%s%s", p->error ? p->error : "",
                                        p->error && p->dup ? "\n" : "", p->dup ? p->dup : "");
        evr_rc_t rc = evr_bus_send(b->clients, rid, &m, NULL);
        evr_msg_clear(&m);
        if (rc) {
            evr_bus_send_error(b->clients, rid, EVR_CODE_UNAVAILABLE, "pipelines cut after %u "
                               "item%s: the answer could not be queued; ask again", n,
                               n == 1 ? "" : "s");
            return;
        }
    }
    evr_msg_t end = { .type = EVR_MSG_END, .count = n };
    evr_bus_send(b->clients, rid, &end, NULL);
}
