/*  evr_followup.c: follow-up jobs without a broker (evr_followup.h).

    The record of a follow-up holds the pipeline file's text as it was
    when the step triggered it, so that what runs is what was checked
    then, whatever the directory holds later. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "evr_diag.h"
#include "evr_followup.h"
#include "evr_job.h"
#include "evr_msg.h"
#include "evr_spec.h"
#include "evr_trigger.h"
#include "evr_yaml.h"

#define S_PREFIX "follow/"
#define S_MAX_FILES 256         /* pipeline files looked at in the directory */
#define S_WHY_MAX 4000          /* bytes of a load error sent back */
/*  A record at most: the file's text JSON-escaped (\u00XX: 6 bytes a
    byte at worst) and the rest. */
#define S_RECORD_MAX (6u * EVR_YAML_MAX_BYTES + 65536u)

static evr_trigger_send_fn s_send;

struct evr_followup {
    evr_engine_t *eng;
    evr_store_t *store;
    char *dir;
    evr_exec_t *const *execs;
};

evr_followup_t *
evr_followup_new(evr_engine_t *eng, evr_store_t *store, const char *dir,
                 evr_exec_t *const *execs)
{
    evr_followup_t *self = evr_calloc(1, sizeof *self);
    self->eng = eng;
    self->store = store;
    self->dir = dir ? evr_strdup(dir) : NULL;
    self->execs = execs;
    evr_engine_set_trigger(eng, s_send, NULL, self);
    evr_engine_set_trigger_who(eng, "this runner (--follow-triggers)");
    return self;
}

void
evr_followup_destroy(evr_followup_t **self_p)
{
    evr_followup_t *self = *self_p;
    if (!self)
        return;
    free(self->dir);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------- the files */

/*  The file at path (a regular file, opened without blocking, at most
    EVR_YAML_MAX_BYTES) into *buf (NUL-terminated); else NULL with why. */
static char *
s_read(const char *path, size_t *len, char *why, size_t wsize)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, wsize, "%s: %s", path, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char *buf = evr_malloc(EVR_YAML_MAX_BYTES + 2);
    ssize_t n = 0;
    *len = 0;
    while (*len <= EVR_YAML_MAX_BYTES
           && (n = read(fd, buf + *len, EVR_YAML_MAX_BYTES + 1 - *len)) > 0)
        *len += (size_t) n;
    close(fd);
    if (n < 0 || *len > EVR_YAML_MAX_BYTES) {
        snprintf(why, wsize, n < 0 ? "%s: cannot read it" : "%s: over the limit of %u bytes",
                 path, EVR_YAML_MAX_BYTES);
        free(buf);
        return NULL;
    }
    buf[*len] = '\0';
    return buf;
}

/*  The diag's lines, joined, into why. */
static void
s_diag_text(const evr_diag_t *diag, char *why, size_t wsize)
{
    size_t at = 0;
    why[0] = '\0';
    for (size_t i = 0; i < evr_diag_count(diag) && i < EVR_DIAG_MAX && at < wsize - 1; i++) {
        int n = snprintf(why + at, wsize - at, "%s%s", i ? "\n" : "", evr_diag_get(diag, i));
        if (n < 0)
            break;
        at += (size_t) n;
    }
}

/*  The spec of text (file names it in errors), its args bound from given
    into args; NULL with why when it does not load, or is not pipeline. */
static evr_spec_t *
s_spec(const char *file, const char *text, size_t len, const char *pipeline,
       const evr_strmap_t *given, evr_strmap_t *args, char *why, size_t wsize)
{
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *diag = evr_diag_new(file);
    evr_rc_t rc = evr_yaml_load(text, len, spec, diag);
    if (!rc)
        rc = evr_spec_bind_args(spec, given, args, diag);
    if (rc)
        s_diag_text(diag, why, wsize);
    if (rc && !why[0])
        snprintf(why, wsize, "%s: cannot load it", file);
    if (!rc && strcmp(spec->pipeline, pipeline)) {
        snprintf(why, wsize, "%s: its pipeline is %s now, not %s", file, spec->pipeline,
                 pipeline);
        rc = EVR_ERR_SPEC;
    }
    evr_diag_destroy(&diag);
    if (rc)
        evr_spec_destroy(&spec);
    return spec;
}

/*  A `copy:` source names a directory relative to the pipeline file's (as
    --exec's): made absolute. */
static void
s_copy_paths(evr_spec_t *spec, const char *file)
{
    evr_source_t *srcs[2] = { &spec->source, &spec->ci_source };
    const char *slash = strrchr(file, '/');
    for (int i = 0; i < 2; i++) {
        if (!srcs[i]->copy || srcs[i]->copy[0] == '/')
            continue;
        char *rel = evr_asprintf("%.*s%s", slash ? (int) (slash - file + 1) : 2,
                                 slash ? file : "./", srcs[i]->copy);
        char *abs = realpath(rel, NULL);
        free(srcs[i]->copy);
        srcs[i]->copy = abs ? evr_strdup(abs) : evr_strdup(rel);   /* its error comes later */
        free(rel);
        free(abs);
    }
}

static int
s_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool
s_is_pipeline_file(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && ((n > 4 && !strcmp(name + n - 4, ".yml"))
                              || (n > 5 && !strcmp(name + n - 5, ".yaml")));
}

/*  The first file of dir (in name order) whose pipeline is name: its path
    and text; NULL with why when there is none. */
static char *
s_find(const char *dir, const char *name, char **path, size_t *len, char *why, size_t wsize)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(why, wsize, "the pipelines directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    char **names = evr_calloc(S_MAX_FILES, sizeof *names);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < S_MAX_FILES)
        if (s_is_pipeline_file(e->d_name))
            names[n++] = evr_strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, s_cmp_names);
    char *text = NULL;
    char ignored[256];
    for (size_t i = 0; i < n && !text; i++) {
        char *p = evr_asprintf("%s/%s", dir, names[i]);
        text = s_read(p, len, ignored, sizeof ignored);
        evr_spec_t *spec = text ? evr_spec_new() : NULL;
        evr_diag_t *diag = evr_diag_new(p);
        if (text && (evr_yaml_load(text, *len, spec, diag) || strcmp(spec->pipeline, name))) {
            free(text);
            text = NULL;
        }
        evr_diag_destroy(&diag);
        evr_spec_destroy(&spec);
        if (text)
            *path = p;
        else
            free(p);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (!text)
        snprintf(why, wsize, "no pipeline \"%s\" in %s (the first *.yml or *.yaml file there "
                 "whose pipeline: is the name, loading without errors)", name, dir);
    return text;
}

/* ----------------------------------------------------------- the records */

/*  The record of child, or NULL. */
static json_t *
s_record(evr_followup_t *self, const char *child)
{
    char key[sizeof S_PREFIX + EVR_ULID_LEN];
    snprintf(key, sizeof key, S_PREFIX "%s", child);
    json_t *rec = NULL;
    char *buf = evr_malloc(S_RECORD_MAX + 1);
    evr_err_t err;
    if (!evr_store_kv_get(self->store, key, buf, S_RECORD_MAX + 1, &err))
        rec = json_loads(buf, 0, NULL);
    free(buf);
    return rec;
}

static bool
s_known(evr_followup_t *self, const char *job, bool *final)
{
    evr_job_t j = { 0 };
    evr_err_t err;
    bool known = evr_store_get_job(self->store, job, &j, &err) == EVR_OK;
    if (final)
        *final = known && evr_job_is_final(&j);
    evr_rec_free(&evr_job_type, &j);
    return known;
}

typedef struct {
    char (*ids)[EVR_ULID_LEN + 1];
    uint32_t n, cap;
} s_ids_t;

static int
s_collect(const char *key, const uint8_t *val, size_t len, void *arg)
{
    s_ids_t *ids = arg;
    (void) val;
    (void) len;
    if (strlen(key) != sizeof S_PREFIX - 1 + EVR_ULID_LEN || ids->n >= ids->cap)
        return ids->n >= ids->cap;
    snprintf(ids->ids[ids->n++], EVR_ULID_LEN + 1, "%s", key + sizeof S_PREFIX - 1);
    return 0;
}

/*  The children of the records (at most 4 * EVR_FOLLOWUP_MAX, oldest first). */
static s_ids_t
s_children(evr_followup_t *self)
{
    s_ids_t ids = { .cap = 4 * EVR_FOLLOWUP_MAX };
    ids.ids = evr_calloc(ids.cap, sizeof *ids.ids);
    evr_err_t err;
    if (evr_store_kv_scan(self->store, S_PREFIX, s_collect, &ids, &err))
        fprintf(stderr, "evrun-runner: the follow-ups: %s\n", err.msg);
    return ids;
}

uint32_t
evr_followup_pending(evr_followup_t *self)
{
    s_ids_t ids = s_children(self);
    uint32_t n = 0;
    for (uint32_t i = 0; i < ids.n; i++)
        n += !s_known(self, ids.ids[i], NULL);
    free(ids.ids);
    return n;
}

static void
s_drop(evr_followup_t *self, const char *child)
{
    char key[sizeof S_PREFIX + EVR_ULID_LEN];
    snprintf(key, sizeof key, S_PREFIX "%s", child);
    evr_store_kv_t op = { key, NULL, 0 };
    evr_err_t err;
    if (evr_store_kv_write(self->store, &op, 1, &err))
        fprintf(stderr, "evrun-runner: follow-up %s: its record stays: %s\n", child, err.msg);
}

/* --------------------------------------------------------- the trigger */

/*  Records the follow-up, or why not (*code set). */
static void
s_trigger(evr_followup_t *self, const char *job, const char *pipeline, const evr_strmap_t *given,
          const char *parent_job, const char *parent_step, const evr_trigger_file_t *file,
          const char **code, char *why, size_t wsize)
{
    json_t *prec = s_record(self, parent_job);
    json_int_t depth = 1 + (prec ? json_integer_value(json_object_get(prec, "depth")) : 0);
    json_decref(prec);
    char *path = NULL, *text = NULL;
    size_t len = 0;
    evr_strmap_t args = { 0 };
    evr_spec_t *spec = NULL;
    if (depth > EVR_FOLLOWUP_DEPTH) {
        *code = EVR_CODE_TOO_LARGE;
        snprintf(why, wsize, "job %s is follow-up %lld of a chain: at most %d deep", parent_job,
                 (long long) depth - 1, EVR_FOLLOWUP_DEPTH);
        goto out;
    }
    if (evr_followup_pending(self) >= EVR_FOLLOWUP_MAX) {
        *code = EVR_CODE_QUEUE_FULL;
        snprintf(why, wsize, "%d follow-ups wait to run already", EVR_FOLLOWUP_MAX);
        goto out;
    }
    if (file) {   /* a file of the parent's source, loaded and checked */
        path = evr_strdup(file->path);
        text = evr_strndup(file->text, file->len);
        len = file->len;
    }
    else if (!self->dir) {
        *code = EVR_CODE_NOT_FOUND;
        snprintf(why, wsize, "no pipelines directory (evrun-runner --pipelines DIR)");
        goto out;
    }
    if (!text && !(text = s_find(self->dir, pipeline, &path, &len, why, wsize))) {
        *code = EVR_CODE_NOT_FOUND;
        goto out;
    }
    if (!(spec = s_spec(path, text, len, pipeline, given, &args, why, wsize))) {
        *code = EVR_CODE_BAD_REQUEST;
        goto out;
    }
    json_t *ja = json_object();
    for (uint32_t i = 0; i < given->n; i++)
        json_object_set_new(ja, given->k[i], json_string(given->v[i]));
    json_t *rec = json_pack("{s:s, s:s, s:s, s:I, s:o, s:s, s:s%}", "pipeline", pipeline,
                            "parent_job", parent_job, "parent_step", parent_step, "depth",
                            depth, "args", ja, "file", path, "text", text, len);
    char *val = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    char key[sizeof S_PREFIX + EVR_ULID_LEN];
    snprintf(key, sizeof key, S_PREFIX "%s", job);
    evr_store_kv_t op = { key, val, val ? strlen(val) : 0 };
    evr_err_t err;
    if (val && op.len > S_RECORD_MAX) {
        *code = EVR_CODE_TOO_LARGE;
        snprintf(why, wsize, "%s: its record would be over %u bytes", path, S_RECORD_MAX);
    }
    else if (!val || evr_store_kv_write(self->store, &op, 1, &err)) {
        *code = EVR_CODE_INTERNAL;
        snprintf(why, wsize, "the follow-up was not recorded: %s", val ? err.msg : "no memory");
    }
    free(val);
out:
    evr_spec_destroy(&spec);
    evr_strmap_free(&args);
    free(text);
    free(path);
}

/*  The engine's trigger function (evr_trigger_send_fn): answers at once. */
static void
s_send(void *arg, const char *job, const char *pipeline, const evr_strmap_t *args,
       const char *parent_job, const char *parent_step, const evr_trigger_file_t *file)
{
    evr_followup_t *self = arg;
    json_t *rec = s_record(self, job);
    bool existing = rec || s_known(self, job, NULL);
    json_decref(rec);
    const char *code = NULL;
    char *why = evr_calloc(1, S_WHY_MAX);
    if (!existing)
        s_trigger(self, job, pipeline, args, parent_job, parent_step, file, &code, why,
                  S_WHY_MAX);
    evr_engine_triggered(self->eng, job, existing, code, why);
    free(why);
}

/* ------------------------------------------------------------ starting */

/*  Starts the follow-up of rec as job; false (said) when it cannot. */
static bool
s_start(evr_followup_t *self, const char *job, const json_t *rec, bool print)
{
    const char *pipeline = json_string_value(json_object_get(rec, "pipeline"));
    const char *pj = json_string_value(json_object_get(rec, "parent_job"));
    const char *ps = json_string_value(json_object_get(rec, "parent_step"));
    const char *file = json_string_value(json_object_get(rec, "file"));
    const json_t *jt = json_object_get(rec, "text"), *ja = json_object_get(rec, "args");
    if (!pipeline || !pj || !ps || !file || !json_is_string(jt) || !json_is_object(ja)) {
        fprintf(stderr, "evrun-runner: follow-up %s: its record is damaged: dropped\n", job);
        return false;
    }
    evr_strmap_t given = { 0 }, args = { 0 };
    const char *k;
    json_t *v;
    json_object_foreach((json_t *) ja, k, v)
        if (json_is_string(v))
            evr_strmap_set(&given, k, json_string_value(v));
    char *why = evr_calloc(1, S_WHY_MAX);
    evr_spec_t *spec = s_spec(file, json_string_value(jt), json_string_length(jt), pipeline,
                              &given, &args, why, S_WHY_MAX);
    evr_err_t err, e2;
    bool ok = spec != NULL;
    if (!ok)
        fprintf(stderr, "evrun-runner: follow-up %s of job %s: %s\n", job, pj, why);
    if (ok)
        s_copy_paths(spec, file);
    if (ok && print) {
        evr_exec_t *ex = evr_exec_find(self->execs, evr_executor_names[spec->executor]);
        printf("evrun-runner: job %s, pipeline %s, %u step%s, %s, triggered by job %s step %s\n",
               job, spec->pipeline, spec->steps.n, spec->steps.n == 1 ? "" : "s",
               ex ? ex->ops->describe(ex) : evr_executor_names[spec->executor], pj, ps);
        fflush(stdout);
    }
    if (ok && evr_engine_submit_child(self->eng, job, spec, &args, pj, ps, &err)) {
        fprintf(stderr, "evrun-runner: follow-up %s: %s\n", job, err.msg);
        if (evr_engine_reject(self->eng, job, spec, &args, err.msg, &e2))
            fprintf(stderr, "evrun-runner: follow-up %s: recording the refusal: %s\n", job,
                    e2.msg);
        ok = false;
    }
    evr_spec_destroy(&spec);
    evr_strmap_free(&given);
    evr_strmap_free(&args);
    free(why);
    return ok;
}

void
evr_followup_ended(evr_followup_t *self, const char *job)
{
    bool final;
    if (s_known(self, job, &final) && final)
        s_drop(self, job);
}

int
evr_followup_start(evr_followup_t *self, char job[EVR_ULID_LEN + 1], bool print, bool *failed)
{
    s_ids_t ids = s_children(self);
    int started = 0;
    for (uint32_t i = 0; i < ids.n && !started; i++) {
        bool final;
        if (s_known(self, ids.ids[i], &final)) {
            if (final)   /* started and ended: its record has served */
                s_drop(self, ids.ids[i]);
            continue;
        }
        json_t *rec = s_record(self, ids.ids[i]);
        if (rec && s_start(self, ids.ids[i], rec, print)) {
            snprintf(job, EVR_ULID_LEN + 1, "%s", ids.ids[i]);
            started = 1;
        }
        else {
            *failed = true;
            if (!s_known(self, ids.ids[i], NULL))
                s_drop(self, ids.ids[i]);
        }
        json_decref(rec);
    }
    free(ids.ids);
    return started;
}
