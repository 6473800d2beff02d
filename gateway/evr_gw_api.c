/*  evr_gw_api.c: the job and runner routes of evrun-gateway: submit (with
    Idempotency-Key), list, one job with its steps, cancel, pause, resume,
    runners.  Each maps onto one bus message (schema/PROTOCOL.md) or, for
    a job's steps, onto its history (evr_gw_view.c).  See evr_gw.h. */
#include "evr_gw.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_paths.h"
#include "evr_sha256.h"
#include "evr_yaml.h"

#define S_LIST_DEFAULT 50
#define S_LIST_MAX 1000
#define S_IDEM_KEY_MAX 255

/* -------------------------------------------------------------- parsing */

/*  The media type of a Content-Type value, parameters cut, into buf:
    up to a ';' or the space or tab before one or after the value (RFC
    9110 5.6.6: OWS ";"), "application/json\t;charset=utf-8" too. */
static void
s_media_type(const char *ctype, char *buf, size_t size)
{
    size_t n = 0;
    while (ctype && ctype[n] && !strchr("; \t", ctype[n]) && n + 1 < size) {
        buf[n] = ctype[n];
        n++;
    }
    buf[n] = '\0';
}

bool
evr_gw_json_type_ok(evr_gw_req_t *req, const char *eg)
{
    const char *ctype = evr_gw_header(req, "Content-Type");
    char mt[64];
    s_media_type(ctype, mt, sizeof mt);
    if (!req->len || !ctype || !strcasecmp(mt, "application/json"))
        return true;
    evr_gw_error(req, 415, "unsupported_media_type", "Content-Type %.64s: send the body as "
                 "application/json (%s), or none", *mt ? mt : "(empty)", eg);
    return false;
}

/*  The 400 of a pipeline that does not load: every diagnostic as
    "file:line:col: field: message", the first as the message. */
static json_t *
s_diag_error(evr_diag_t *diag)
{
    json_t *all = json_array();
    for (size_t i = 0; i < evr_diag_count(diag) && i < EVR_DIAG_MAX; i++) {
        json_t *s = json_string(evr_diag_get(diag, i));
        json_array_append_new(all, s ? s : json_string("(not UTF-8)"));
    }
    const char *first = json_string_value(json_array_get(all, 0));
    return json_pack("{s:{s:s,s:s,s:o}}", "error", "code", "bad_pipeline", "message",
                     first ? first : "the pipeline cannot be loaded", "details", all);
}

static json_t *
s_err(const char *code, const char *msg)
{
    json_t *m = json_string(msg);
    return json_pack("{s:{s:s,s:o}}", "error", "code", code, "message",
                     m ? m : json_string("(not UTF-8)"));
}

bool
evr_gw_parse_submit(const char *ctype, const char *body, size_t len, evr_spec_t *spec,
                    int *status, json_t **error)
{
    char mt[64], msg[512];
    s_media_type(ctype, mt, sizeof mt);
    bool yaml = !strcasecmp(mt, "application/yaml") || !strcasecmp(mt, "application/x-yaml")
             || !strcasecmp(mt, "text/yaml") || !strcasecmp(mt, "text/x-yaml");
    *status = 400;
    if (!yaml && strcasecmp(mt, "application/json")) {
        *status = 415;
        *error = s_err("unsupported_media_type", "send the pipeline as Content-Type: "
                       "application/yaml (the file as it is) or application/json");
        return false;
    }
    if (!len) {
        *error = s_err("bad_request", "the body is empty: send a pipeline");
        return false;
    }
    if (len > EVR_YAML_MAX_BYTES) {     /* the bus would carry it; no pipeline is that long */
        snprintf(msg, sizeof msg, "the body is %zu bytes, over the limit of %u bytes (1 MiB) "
                 "for a pipeline, YAML or JSON", len, EVR_YAML_MAX_BYTES);
        *status = 413;
        *error = s_err("too_large", msg);
        return false;
    }
    if (!yaml) {
        json_error_t je;
        json_t *js = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        bool steps = js && json_object_get(js, "steps");
        if (!js)
            evr_gw_json_why(&je, msg, sizeof msg);
        else if (!steps)
            snprintf(msg, sizeof msg, "body: expected a pipeline (a JSON object with steps) "
                     "or {\"pipeline\": NAME, \"args\": {...}} to start a registered one");
        json_decref(js);
        if (!steps) {
            *error = s_err("bad_request", msg);
            return false;
        }
        /* JSON is YAML's flow style: the loader gives the same
           line:column diagnostics for it */
    }
    evr_diag_t *diag = evr_diag_new("body");
    bool ok = evr_yaml_load(body, len, spec, diag) == EVR_OK;
    if (ok && (spec->source.copy || spec->ci_source.copy)) {
        evr_diag_add(diag, spec->source.copy ? "source.copy" : "ci_source.copy",
                     "a copy: source sends the submitter's files, which an HTTP submit "
                     "cannot: use git: or tarball: (or evrun-cli run)");
        ok = false;
    }
    if (!ok)
        *error = s_diag_error(diag);
    evr_diag_destroy(&diag);
    return ok;
}

const char *
evr_gw_json_why(const json_error_t *je, char *buf, size_t size)
{
    const char *text = strstr(je->text, "JSON_ALLOW_NUL") ? "a NUL character (\\u0000) is not "
                       "allowed" : je->text;
    const char *utf8 = strstr(je->text, "decode byte") ? " (JSON must be UTF-8)" : "";
    if (je->line > 0)
        snprintf(buf, size, "body:%d:%d: bad JSON: %s%s", je->line, je->column, text, utf8);
    else
        snprintf(buf, size, "body: bad JSON: %s%s", text, utf8);
    return buf;
}

/*  evr_spec_name_ok of a JSON value that may be no string (NULL). */
static bool
s_name_ok(const char *s)
{
    return s && evr_spec_name_ok(s);
}

int
evr_gw_parse_start(const char *ctype, const char *body, size_t len, evr_msg_t *m,
                   json_t **error)
{
    char mt[64], msg[512] = "";
    s_media_type(ctype, mt, sizeof mt);
    json_t *js = strcasecmp(mt, "application/json") ? NULL : json_loadb(body, len,
                                                                         JSON_REJECT_DUPLICATES,
                                                                         NULL);
    json_t *name = json_object_get(js, "pipeline"), *args = json_object_get(js, "args");
    json_t *labels = json_object_get(js, "labels");
    if (!json_is_object(js) || !name || json_object_get(js, "steps")) {
        json_decref(js);
        return 0;
    }
    const char *key;
    json_t *v;
    json_object_foreach(js, key, v)
        if (strcmp(key, "pipeline") && strcmp(key, "args") && strcmp(key, "labels") && !msg[0])
            snprintf(msg, sizeof msg, "body.%.64s: unknown field (a start takes pipeline, args "
                     "and labels; a pipeline to run takes steps)", key);
    if (!msg[0] && !s_name_ok(json_string_value(name)))
        snprintf(msg, sizeof msg, "body.pipeline: expected the name of a registered pipeline "
                 "(GET /pipelines lists them): a letter or digit, then letters, digits, "
                 "_ . - (at most %d bytes)",
                 EVR_SPEC_MAX_NAME);
    if (!msg[0] && args && (!json_is_object(args) || json_object_size(args) > 64))
        snprintf(msg, sizeof msg, "body.args: expected an object of at most 64 NAME: "
                 "\"VALUE\" pairs");
    json_object_foreach(args, key, v)
        if (!msg[0] && !json_is_string(v))
            snprintf(msg, sizeof msg, "body.args.%.64s: expected a string value", key);
        else if (!msg[0] && (!*key || strchr(key, '=')))
            snprintf(msg, sizeof msg, "body.args: \"%.64s\" is no arg name", key);
    if (!msg[0] && labels && (!json_is_array(labels) || json_array_size(labels) > 32))
        snprintf(msg, sizeof msg, "body.labels: expected an array of at most 32 labels");
    size_t i;
    json_array_foreach(labels, i, v) {
        if (!msg[0] && !s_name_ok(json_string_value(v)))
            snprintf(msg, sizeof msg, "body.labels[%zu]: expected a label: letters, digits, "
                     "_ . - (at most %d bytes)", i, EVR_SPEC_MAX_NAME);
        for (size_t j = 0; j < i && !msg[0]; j++)
            if (!strcmp(json_string_value(json_array_get(labels, j)), json_string_value(v)))
                snprintf(msg, sizeof msg, "body.labels[%zu]: \"%s\" repeats body.labels[%zu]",
                         i, json_string_value(v), j);
    }
    if (msg[0]) {
        *error = s_err("bad_request", msg);
        json_decref(js);
        return -1;
    }
    free(m->pipeline);
    m->pipeline = evr_strdup(json_string_value(name));
    json_object_foreach(args, key, v)
        evr_strmap_set(&m->args, key, json_string_value(v));
    json_array_foreach(labels, i, v)
        evr_strlist_push(&m->labels, json_string_value(v));
    json_decref(js);
    return 1;
}

/* ---------------------------------------------------------- idempotency */

/*  STATE/gateway/idempotency/SHA256(key) holds the job id, made
    (atomically: written aside, then linked) with a new id the first
    time. */
bool
evr_gw_idem_key_ok(evr_gw_req_t *req, const char *key, size_t max)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) key[i] < 0x21 || (unsigned char) key[i] > 0x7e)
            n = 0;
    if (!n || n > max) {
        evr_gw_error(req, 400, "bad_request", "Idempotency-Key: expected 1 to %zu printable "
                     "ASCII characters (no space)", max);
        return false;
    }
    return true;
}

bool
evr_gw_idem_job(evr_gw_t *gw, evr_gw_req_t *req, const char *key, char job[EVR_ULID_LEN + 1])
{
    if (!evr_gw_idem_key_ok(req, key, S_IDEM_KEY_MAX))
        return false;
    size_t n = strlen(key);
    char hex[EVR_SHA256_HEX], id[EVR_ULID_LEN + 1];
    evr_sha256_t *h = evr_sha256_new();
    evr_sha256_update(h, key, n);
    evr_sha256_finish(&h, hex);
    evr_err_t err = { 0 };
    const char *why = NULL;
    char *dir = evr_asprintf("%s/gateway/idempotency", evr_config_get(gw->cfg, "state_dir"));
    char *path = evr_asprintf("%s/%s", dir, hex);
    evr_ulid_new(id);
    char *tmp = evr_asprintf("%s.%s", path, id);
    if (evr_paths_dir(dir, true, &err))
        why = err.msg;
    else {      /* a new record, written aside then linked: the first one stays */
        int fd = evr_paths_open(tmp, O_WRONLY | O_CREAT | O_EXCL, &err);
        bool written = fd >= 0 && write(fd, id, EVR_ULID_LEN) == EVR_ULID_LEN;
        if (fd < 0)
            why = err.msg;
        else if (!written)
            why = "cannot be written (is the disk full?)";
        else if (link(tmp, path) && errno != EEXIST)
            why = strerror(errno);
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
    }
    int fd = why ? -1 : evr_paths_open(path, O_RDONLY, &err);
    if (!why && fd < 0)
        why = err.msg;
    else if (!why && read(fd, job, EVR_ULID_LEN) != EVR_ULID_LEN)
        why = "truncated";
    if (fd >= 0)
        close(fd);
    job[EVR_ULID_LEN] = '\0';
    if (!why && !evr_ulid_valid(job))
        why = "it holds no job id";
    if (why)
        evr_gw_error(req, 500, "internal", "the Idempotency-Key record %s: %s", path, why);
    free(tmp);
    free(path);
    free(dir);
    return !why;
}

size_t
evr_gw_idem_prune(const char *state_dir, uint64_t max_age_s, uint64_t now_s)
{
    char *dir = evr_asprintf("%s/gateway/idempotency", state_dir);
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d)) {
        struct stat st;
        if (e->d_name[0] == '.' || strlen(e->d_name) < EVR_SHA256_HEX - 1
            || strspn(e->d_name, "0123456789abcdef") != EVR_SHA256_HEX - 1
            || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode)
            || (uint64_t) st.st_mtime + max_age_s > now_s)
            continue;
        n += unlinkat(dirfd(d), e->d_name, 0) == 0;
    }
    if (d)
        closedir(d);
    free(dir);
    return n;
}

/* --------------------------------------------------------------- submit */

#define S_LABELS_MAX 32     /* runner labels of a submit or start, body and query */

typedef struct {
    evr_msg_t *m;
    const char *bad;    /* what is wrong with the query */
    evr_strmap_t query; /* the names of the query's args */
    char said[256];     /* a bad of its own text */
} s_args_t;

/*  One refusal text: an unknown arg's "[WHERE: ]args.NAME: the pipeline
    declares no arg" (evr_spec_bind_args) named as this request gave it,
    "?arg=NAME" or "body.args.NAME", and a missing arg's "(use -a
    NAME=VALUE)" given in the HTTP form (query NULL: a hook's, whose
    args are its body's); each "; "-joined part (the
    broker's way) on its own.  Other texts stay as they are. */
static json_t *
s_arg_named(const char *text, const evr_strmap_t *query)
{
    static const char *const what = ": the pipeline declares no arg \"";
    static const char *const use = "(use -a ";   /* a missing arg: the CLI's hint */
    if (!text || (!strstr(text, what) && !strstr(text, use)))
        return NULL;
    char *out = evr_strdup("");
    for (const char *part = text; part;) {
        const char *next = strstr(part, "; ");
        size_t n = next ? (size_t) (next - part) : strlen(part);
        char *one = evr_strndup(part, n), *a = strstr(one, "args."), *end = a ? a + 5 : NULL;
        while (end && (isalnum((unsigned char) *end) || *end == '_'))
            end++;
        const char *colon = a ? strchr(one, ':') : NULL;
        bool lead = a == one    /* args.NAME first, or after one word and ": " */
                 || (colon && colon + 2 == a && !memchr(one, ' ', (size_t) (colon - one)));
        char *was = out;
        if (a && end > a + 5 && !strncmp(end, what, strlen(what)) && lead) {
            char *name = evr_strndup(a + 5, (size_t) (end - a - 5));
            bool q = query && evr_strmap_get(query, name);
            out = evr_asprintf("%s%s%s%s%s", was, *was ? "; " : "", q ? "?arg=" : "body.args.",
                               name, end);
            free(name);
        }
        else if ((a = strstr(one, use)) && (end = strstr(a, "=VALUE)"))) {
            int n0 = (int) (a - one), nn = (int) (end - a - strlen(use));
            const char *nm = a + strlen(use);
            out = query ? evr_asprintf("%s%s%.*s(add ?arg=%.*s=VALUE to the URL)%s", was,
                                       *was ? "; " : "", n0, one, nn, nm, end + 7)
                        : evr_asprintf("%s%s%.*s(give it in the body: {\"args\": {\"%.*s\": "
                                       "VALUE}})%s", was, *was ? "; " : "", n0, one, nn, nm,
                                       end + 7);
        }
        else
            out = evr_asprintf("%s%s%s", was, *was ? "; " : "", one);
        free(was);
        free(one);
        part = next ? next + 2 : NULL;
    }
    json_t *js = json_string(out);
    free(out);
    return js;
}

void
evr_gw_args_named(evr_gw_req_t *req, const evr_strmap_t *query)
{
    json_t *e = json_object_get(req->json, "error"), *d = json_object_get(e, "details"), *v;
    json_t *m = s_arg_named(json_string_value(json_object_get(e, "message")), query);
    if (m)
        json_object_set_new(e, "message", m);
    size_t i;
    json_array_foreach(d, i, v)
        if ((m = s_arg_named(json_string_value(v), query)))
            json_array_set_new(d, i, m);
}

static enum MHD_Result
s_arg_item(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    s_args_t *a = cls;
    (void) kind;
    if (a->bad)
        return MHD_YES;
    int r = !strcmp(key, "arg") ? value ? evr_spec_add_arg(value, &a->query) : -1 : 0;
    if (r < 0) {
        /* which one, and what NAME may be, as evrun-cli validate -a says */
        snprintf(a->said, sizeof a->said, "arg \"%.64s\": expected arg=NAME=VALUE with NAME "
                 "an environment variable name (a letter or _, then letters, digits, _; at "
                 "most 64 bytes)",
                 value ? value : "");
        a->bad = a->said;
    }
    else if (r) {
        /* else the second would silently replace the first (the body's
           args of the same name are replaced: the query's win) */
        snprintf(a->said, sizeof a->said, "arg: \"%.*s\" given twice (each arg once)",
                 (int) strcspn(value, "="), value);
        a->bad = a->said;
    }
    else if (!strcmp(key, "arg"))
        evr_spec_parse_arg(value, &a->m->args);     /* taken in a->query above */
    else if (!strcmp(key, "label") && a->m->labels.n >= S_LABELS_MAX)
        a->bad = "label: at most 32 runner labels (the body's and the query's together)";
    else if (!strcmp(key, "label")) {
        value = value ? value : "";
        for (uint32_t i = 0; i < a->m->labels.n && !a->bad; i++)
            if (!strcmp(a->m->labels.v[i], value)) {
                char q[68];   /* quoted on one line: the value is the URL's */
                snprintf(a->said, sizeof a->said, "label: \"%s\" given twice (each label "
                         "once, the body's and the query's together)",
                         evr_text_escape_ctl(value, q, sizeof q));
                a->bad = a->said;
            }
        if (!a->bad)
            evr_strlist_push(&a->m->labels, value);
    }
    return MHD_YES;
}

/*  Loads the body and the query's arg=NAME=VALUE and label=L into m;
    false with req's answer set. */
static bool
s_submit_msg(evr_gw_req_t *req, evr_msg_t *m)
{
    int status;
    json_t *error = NULL;
    m->spec = evr_spec_new();
    if (!evr_gw_parse_submit(evr_gw_header(req, "Content-Type"), req->body, req->len, m->spec,
                             &status, &error)) {
        evr_gw_json(req, status, error);
        return false;
    }
    s_args_t a = { m, NULL, { 0 }, "" };
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, s_arg_item, &a);
    if (a.bad) {
        evr_gw_error(req, 400, "bad_request", "%s", a.bad);
        evr_strmap_free(&a.query);
        return false;
    }
    evr_diag_t *diag = evr_diag_new("body");
    evr_strmap_t bound = { 0 };
    bool ok = evr_spec_bind_args(m->spec, &m->args, &bound, diag) == EVR_OK;
    if (!ok) {
        evr_gw_json(req, 400, s_diag_error(diag));
        evr_gw_args_named(req, &a.query);
    }
    evr_strmap_free(&a.query);
    evr_strmap_free(&bound);
    evr_diag_destroy(&diag);
    return ok;
}

/*  The 201 (200 existing) of an accepted submit or start: a job submitted before
    (existing, by its Idempotency-Key) with its own pipeline and status,
    asked of the broker (this request's, queued, if it does not say). */
static void
s_accepted(evr_gw_t *gw, evr_gw_req_t *req, const char *job, const char *pipeline,
           const evr_msg_t *rep)
{
    evr_msg_t q = { .type = EVR_MSG_STATUS, .job = (char *) job }, was = { 0 };
    /* a lookup only: it waits 1 s at most and, failing, marks no broker down */
    evr_gw_req_t quiet = { .until_ns = evr_mono_ns() + 1000000000ull };
    const char *status = "queued";
    if (rep->type != EVR_MSG_ACCEPTED) {
        evr_gw_refused(req, rep);
        return;
    }
    if (rep->existing && !evr_gw_call(gw, &quiet, &q, &was) && was.type == EVR_MSG_JOB
        && was.pipeline && was.status) {
        pipeline = was.pipeline;
        status = was.status;
    }
    /* 201 a new job; 200 one this Idempotency-Key made before (nothing new) */
    json_t *body = json_pack("{s:s,s:s,s:s,s:b}", "id", job, "pipeline", pipeline, "status",
                             status, "existing", rep->existing);
    if (body && rep->message)   /* a start of a pipeline whose file last failed to load */
        json_object_set_new(body, "note", json_string(rep->message));
    evr_gw_json(req, rep->existing ? 200 : 201, body);
    json_decref(quiet.json);
    evr_msg_clear(&was);
}

/*  A submit sent whose answer did not come (503): the broker may have
    queued the job all the same.  The message says so and what to do:
    with an Idempotency-Key, send it again; without one, look at the job
    first (sent again it would be a second job). */
static void
s_outcome_unknown(evr_gw_req_t *req, const char *job, const char *key)
{
    json_t *e = json_object_get(req->json, "error");
    char *was = evr_strdup(json_string_value(json_object_get(e, "message")) ?
                           json_string_value(json_object_get(e, "message")) : "");
    if (key)
        evr_gw_error(req, 503, "unavailable", "outcome unknown: the broker did not answer in "
                     "time, and may have queued the job all the same (as %s): retry with the "
                     "same Idempotency-Key, which submits one job however often it is sent "
                     "(or see GET " EVR_GW_PREFIX "/jobs/%s) (%s)", job, job, was);
    else
        evr_gw_error(req, 503, "unavailable", "outcome unknown: the broker did not answer in "
                     "time, and may have queued the job all the same (as %s): see GET "
                     EVR_GW_PREFIX "/jobs/%s before submitting it again, and send an "
                     "Idempotency-Key next time, so that a retry submits one job however "
                     "often it is sent (%s)", job, job, was);
    free(was);
}

/*  Whether key (POST /jobs's, whose records are named by the key alone)
    begins as none of the records the other routes make (EVR_GW_KEY_*,
    evr_gw.h); else a 400 set.  A submit with "hook:NAME:K" would get the
    job that hook started (existing), one with "demand:K" the id of a
    demand. */
static bool
s_submit_key_ok(evr_gw_req_t *req, const char *key)
{
    static const char *const taken[] = { EVR_GW_KEY_HOOK, EVR_GW_KEY_DEMAND,
                                          EVR_GW_KEY_GITHUB, EVR_GW_KEY_GH_DEMAND };
    for (size_t i = 0; i < EVR_ARRAY_LEN(taken); i++)
        if (!strncmp(key, taken[i], strlen(taken[i]))) {
            evr_gw_error(req, 400, "bad_request", "Idempotency-Key: a key of POST "
                         EVR_GW_PREFIX "/jobs may not begin with %s (the gateway keeps the "
                         "keys of its webhooks and demands under " EVR_GW_KEY_HOOK ", "
                         EVR_GW_KEY_DEMAND ", " EVR_GW_KEY_GITHUB " and " EVR_GW_KEY_GH_DEMAND
                         "): use another key", taken[i]);
            return false;
        }
    return true;
}

void
evr_gw_h_submit(evr_gw_t *gw, evr_gw_req_t *req)
{
    evr_msg_t m = { .type = EVR_MSG_SUBMIT }, rep = { 0 };
    char job[EVR_ULID_LEN + 1];
    json_t *error = NULL;
    s_args_t a = { &m, NULL, { 0 }, "" };
    const char *key = evr_gw_header(req, "Idempotency-Key");
    int start = evr_gw_parse_start(evr_gw_header(req, "Content-Type"), req->body, req->len, &m,
                                   &error);
    if (start < 0)
        evr_gw_json(req, 400, error);
    if (start < 0 || (!start && !s_submit_msg(req, &m))
        || (key && (!s_submit_key_ok(req, key) || !evr_gw_idem_job(gw, req, key, job))))
        goto out;
    if (start) {        /* a registered pipeline by name: the broker's `start` */
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, s_arg_item, &a);
        if (a.bad) {
            evr_gw_error(req, 400, "bad_request", "%s", a.bad);
            goto out;
        }
        m.type = EVR_MSG_START;
    }
    if (!key)
        evr_ulid_new(job);
    m.job = evr_strdup(job);
    if (!evr_gw_call(gw, req, &m, &rep))
        s_accepted(gw, req, job, start ? m.pipeline : m.spec->pipeline, &rep);
    else if (req->unanswered)
        s_outcome_unknown(req, job, key);
    if (req->status == 400)     /* the broker's refusal of an arg: as given here */
        evr_gw_args_named(req, &a.query);
out:
    evr_strmap_free(&a.query);
    evr_msg_clear(&m);
    evr_msg_clear(&rep);
}

/* ----------------------------------------------------------------- jobs */

static json_t *
s_job_json(const evr_msg_t *m)
{
    json_t *js = json_pack("{s:s,s:s,s:s}", "id", m->job, "pipeline", m->pipeline, "status",
                           m->status);
    if (m->runner)
        json_object_set_new(js, "runner", json_string(m->runner));
    json_object_set_new(js, "steps_total", json_integer(m->steps_total));
    json_object_set_new(js, "steps_done", json_integer(m->steps_done));
    evr_gw_time_set(js, "created", m->created);
    evr_gw_time_set(js, "started", m->started);
    evr_gw_time_set(js, "finished", m->finished);
    if (m->reason)
        json_object_set_new(js, "reason", json_string(m->reason));
    return js;
}

typedef struct {
    json_t *jobs;
    char last[EVR_ULID_LEN + 1];
} s_list_t;

static int
s_list_item(const evr_msg_t *m, void *arg)
{
    s_list_t *l = arg;
    if (m->type == EVR_MSG_JOB && m->job) {
        json_array_append_new(l->jobs, s_job_json(m));
        snprintf(l->last, sizeof l->last, "%s", m->job);
    }
    return 0;
}

void
evr_gw_h_jobs(evr_gw_t *gw, evr_gw_req_t *req)
{
    const char *lim = evr_gw_query(req, "limit"), *cursor = evr_gw_query(req, "cursor");
    char *end = NULL;
    unsigned long limit = lim ? strtoul(lim, &end, 10) : S_LIST_DEFAULT;
    if (lim && (strspn(lim, "0123456789") != strlen(lim) || !*lim || *end || !limit
                || limit > S_LIST_MAX)) {
        evr_gw_error(req, 400, "bad_request", "limit: expected 1 to %d, got \"%.32s\"%s",
                     S_LIST_MAX, lim, strlen(lim) > 32 ? "..." : "");
        return;
    }
    char before[EVR_ULID_LEN + 1] = "";
    for (size_t i = 0; cursor && cursor[i] && i < EVR_ULID_LEN; i++)  /* as /jobs/{id} */
        before[i] = (char) toupper((unsigned char) cursor[i]);
    if (cursor && (strlen(cursor) != EVR_ULID_LEN || !evr_ulid_valid(before))) {
        evr_gw_error(req, 400, "bad_request", "cursor: expected the next_cursor of a page");
        return;
    }
    const char *pipeline = evr_gw_query(req, "pipeline");
    if (pipeline && !*pipeline) {   /* ?pipeline=$P with P unset: every job, or none? */
        evr_gw_error(req, 400, "bad_request", "pipeline: empty: give a pipeline's name, or "
                     "leave ?pipeline= out for the jobs of every pipeline");
        return;
    }
    if (pipeline && strlen(pipeline) > EVR_SPEC_MAX_NAME) {
        evr_gw_error(req, 400, "bad_request", "pipeline: at most %d bytes (a pipeline's name)",
                     EVR_SPEC_MAX_NAME);
        return;
    }
    evr_msg_t m = { .type = EVR_MSG_JOBS, .limit = (uint32_t) limit,
                    .pipeline = (char *) pipeline,
                    .status = (char *) evr_gw_query(req, "status"),
                    .job = cursor ? before : NULL /* `before` */ },
              endm = { 0 };
    s_list_t l = { json_array(), "" };
    if (!evr_gw_stream(gw, req, &m, s_list_item, &l, &endm)) {
        json_t *js = json_pack("{s:O}", "jobs", l.jobs);
        if (endm.more && l.last[0])
            json_object_set_new(js, "next_cursor", json_string(l.last));
        evr_gw_json(req, 200, js);
    }
    json_decref(l.jobs);
    evr_msg_clear(&endm);
}

/* ------------------------------------------------------------- one job */

void
evr_gw_h_job(evr_gw_t *gw, evr_gw_req_t *req)
{
    char id[EVR_ULID_LEN + 1];
    if (!evr_gw_job_param(req, id))
        return;
    evr_msg_t m = { .type = EVR_MSG_STATUS, .job = id }, rep = { 0 };
    evr_gw_view_t v = { 0 };
    if (evr_gw_call(gw, req, &m, &rep))
        goto out;
    if (rep.type != EVR_MSG_JOB) {
        evr_gw_refused(req, &rep);
        goto out;
    }
    if (!evr_gw_view_get(gw, req, id, &v))  /* steps from the history (evr_gw_view.c) */
        goto out;
    json_t *js = s_job_json(&rep);
    json_object_set(js, "steps", v.steps);
    if (v.source)
        json_object_set(js, "source", v.source);
    if (v.ci_source)
        json_object_set(js, "ci_source", v.ci_source);
    json_object_set_new(js, "events", json_integer(v.events));
    evr_gw_json(req, 200, js);
out:
    evr_gw_view_clear(&v);
    evr_msg_clear(&rep);
}

/* ------------------------------------------------ cancel, pause, resume */

static void
s_command(evr_gw_t *gw, evr_gw_req_t *req, evr_msgtype_t type)
{
    char id[EVR_ULID_LEN + 1];
    if (!evr_gw_job_param(req, id))
        return;
    json_error_t je;
    char why[512];
    json_t *body = req->len ? json_loadb(req->body, req->len, JSON_REJECT_DUPLICATES, &je)
                            : NULL;
    const char *reason = json_string_value(json_object_get(body, "reason")), *key;
    json_t *v;
    const char *unknown = NULL, *what = type == EVR_MSG_PAUSE ? "a pause" : "a resume";
    const char *eg = type == EVR_MSG_CANCEL ? "{\"reason\": \"...\"}" : "{}";
    json_object_foreach(body, key, v)
        if ((strcmp(key, "reason") || type != EVR_MSG_CANCEL) && !unknown)
            unknown = key;
    if (!evr_gw_json_type_ok(req, eg))
        ;
    else if (req->len && !body)
        evr_gw_error(req, 400, "bad_request", "%s (send a JSON object, %s, or no body)",
                     evr_gw_json_why(&je, why, sizeof why), eg);
    else if (req->len && !json_is_object(body))
        evr_gw_error(req, 400, "bad_request", "body: expected a JSON object (%s), not %s", eg,
                     json_is_array(body) ? "an array" : "a scalar");
    else if (type != EVR_MSG_CANCEL && unknown)    /* nothing would keep it */
        evr_gw_error(req, 400, "bad_request", "body: unknown key \"%.64s\" (%s takes none%s: "
                     "send no body, or {})", unknown, what,
                     strcmp(unknown, "reason") ? "" : "; only a cancel records a reason");
    else if (json_object_get(body, "reason") && !reason)
        evr_gw_error(req, 400, "bad_request", "body.reason: expected a string (why, for "
                     "people: {\"reason\": \"...\"})");
    else if (reason && strlen(reason) > 1024)
        evr_gw_error(req, 400, "bad_request", "reason: at most 1024 bytes");
    else if (unknown)
        evr_gw_error(req, 400, "bad_request", "body: unknown key \"%.64s\" (expected reason)",
                     unknown);
    else {
        evr_msg_t m = { .type = type, .job = id, .reason = (char *) reason },
                  rep = { 0 };
        if (!evr_gw_call(gw, req, &m, &rep)) {
            if (rep.type != EVR_MSG_OK)
                evr_gw_refused(req, &rep);
            else
                evr_gw_json(req, 200, json_pack("{s:s,s:s}", "id", id, "message",
                                                rep.message ? rep.message : "taken"));
        }
        evr_msg_clear(&rep);
    }
    json_decref(body);
}

void
evr_gw_h_cancel(evr_gw_t *gw, evr_gw_req_t *req)
{
    s_command(gw, req, EVR_MSG_CANCEL);
}

void
evr_gw_h_pause(evr_gw_t *gw, evr_gw_req_t *req)
{
    s_command(gw, req, EVR_MSG_PAUSE);
}

void
evr_gw_h_resume(evr_gw_t *gw, evr_gw_req_t *req)
{
    s_command(gw, req, EVR_MSG_RESUME);
}

/* -------------------------------------------------------------- runners */

static int
s_runner_item(const evr_msg_t *m, void *arg)
{
    if (m->type != EVR_MSG_RUNNER || !m->runner)
        return 0;
    /* credit always, 0 too (absent on the wire: PROTOCOL.md, Encoding) */
    json_t *js = json_pack("{s:s,s:s,s:I,s:I,s:I}", "id", m->runner, "state", m->state,
                           "capacity", (json_int_t) m->capacity, "running",
                           (json_int_t) m->running, "credit", (json_int_t) m->credit);
    json_t *labels = json_array();
    for (uint32_t i = 0; i < m->labels.n; i++)
        json_array_append_new(labels, json_string(m->labels.v[i]));
    json_object_set_new(js, "labels", labels);
    if (m->ephemeral)   /* a single-use runner (evrun-runner --once) */
        json_object_set_new(js, "ephemeral", json_true());
    evr_gw_time_set(js, "heartbeat", m->heartbeat);
    json_array_append_new(arg, js);
    return 0;
}

int
evr_gw_demand_item(const evr_msg_t *m, void *arg)
{
    if (m->type != EVR_MSG_DEMAND || !m->job)
        return 0;
    json_t *labels = json_array();
    for (uint32_t i = 0; i < m->labels.n; i++)
        json_array_append_new(labels, json_string(m->labels.v[i]));
    json_t *js = json_pack("{s:s,s:o,s:I,s:I}", "id", m->job, "labels", labels, "count",
                           (json_int_t) m->count, "ttl", (json_int_t) m->ttl);
    if (m->reason)
        json_object_set_new(js, "reason", json_string(m->reason));
    evr_gw_time_set(js, "created", m->created);
    json_array_append_new(arg, js);
    return 0;
}

void
evr_gw_h_runners(evr_gw_t *gw, evr_gw_req_t *req)
{
    evr_msg_t m = { .type = EVR_MSG_RUNNERS }, end = { 0 };
    json_t *list = json_array(), *demand = json_array();
    if (!evr_gw_stream(gw, req, &m, s_runner_item, list, &end)) {
        /* the demand after the runners; a broker that cannot say leaves it out */
        evr_gw_req_t sub = { .conn = req->conn };
        evr_msg_t dq = { .type = EVR_MSG_DEMANDS }, dend = { 0 };
        bool listed = !evr_gw_stream(gw, &sub, &dq, evr_gw_demand_item, demand, &dend);
        json_decref(sub.json);
        evr_msg_clear(&dend);
        json_t *js = json_pack("{s:O}", "runners", list);
        if (listed)
            json_object_set(js, "demand", demand);
        evr_gw_json(req, 200, js);
    }
    json_decref(demand);
    json_decref(list);
    evr_msg_clear(&end);
}
