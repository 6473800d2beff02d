/*  evr_step_trigger.c: follow-up jobs, the control channel's `trigger`
    command (evr_trigger.h).

    The engine keeps a small table of the triggers it sent: the child's
    job id, its state (pending until the broker answers, then accepted or
    refused with the broker's words) and when it was last sent.  evrun-job
    asks `trigger` again with the same call until the state is not
    pending: the same child id finds the same entry, so a poll sends
    nothing new, and one left unanswered for EVR_TRIGGER_RESEND_MS (a
    broker away, a message lost with a connection) is sent again, which
    the broker takes as a duplicate when it had it.  The table is memory
    only: after a runner restart evrun-job's next poll sends the trigger
    again, with the same id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "evr_engine_int.h"
#include "evr_sha256.h"
#include "evr_trigger.h"

#define S_ARG_VALUE_MAX 4096

typedef enum { S_FREE, S_PENDING, S_ACCEPTED, S_REFUSED } s_state_t;

typedef struct {
    char job[EVR_ULID_LEN + 1];
    s_state_t state;
    bool existing;
    char *why;          /* S_REFUSED: the broker's words */
    uint64_t sent;      /* mono ns of the last send */
    uint64_t used;      /* mono ns of the last request about it (eviction) */
} s_trig_t;

typedef struct {
    char key[EVR_SPEC_MAX_NAME + 4];   /* "j:JOB" or "p:PIPELINE"; "" free */
    uint64_t seq;
    json_t *ans;        /* NULL: pending */
    uint64_t sent, used;
} s_query_t;

struct evr_eng_trigs {
    evr_trigger_send_fn *fn;
    evr_query_send_fn *qfn;
    void *arg;
    const char *who;    /* who refuses a trigger (NULL: the broker) */
    s_trig_t t[EVR_TRIGGER_TABLE];
    s_query_t q[EVR_QUERY_TABLE];
    uint64_t next_seq;
};

static struct evr_eng_trigs *
s_trigs(evr_engine_t *e)
{
    if (!e->trigs)
        e->trigs = evr_calloc(1, sizeof *e->trigs);
    return e->trigs;
}

void
evr_eng_trigs_free(evr_engine_t *e)
{
    if (!e->trigs)
        return;
    for (int i = 0; i < EVR_TRIGGER_TABLE; i++)
        free(e->trigs->t[i].why);
    for (int i = 0; i < EVR_QUERY_TABLE; i++)
        json_decref(e->trigs->q[i].ans);
    free(e->trigs);
    e->trigs = NULL;
}

void
evr_engine_set_trigger(evr_engine_t *self, evr_trigger_send_fn *fn, evr_query_send_fn *qfn,
                       void *arg)
{
    struct evr_eng_trigs *ts = s_trigs(self);
    ts->fn = fn;
    ts->qfn = qfn;
    ts->arg = arg;
}

void
evr_engine_set_trigger_who(evr_engine_t *self, const char *who)
{
    s_trigs(self)->who = who;
}

evr_rc_t
evr_trigger_child_id(const char *parent_job, const char *step, uint32_t attempt,
                     const char *call, const char *pipeline, char out[EVR_ULID_LEN + 1],
                     evr_err_t *err)
{
    uint64_t ms;
    if (evr_ulid_parse(call, &ms, err))
        return evr_err_set(err, EVR_ERR_PROTO, "\"call\": %s", err->msg);
    char a[16];
    snprintf(a, sizeof a, "%u", attempt);
    const char *parts[] = { parent_job, step, a, call, pipeline };
    evr_sha256_t *h = evr_sha256_new();
    for (size_t i = 0; i < EVR_ARRAY_LEN(parts); i++)
        evr_sha256_update(h, parts[i], strlen(parts[i]) + 1);   /* the NUL separates */
    char hex[EVR_SHA256_HEX];
    evr_sha256_finish(&h, hex);
    uint8_t rnd[10];
    for (int i = 0; i < 10; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        rnd[i] = (uint8_t) v;
    }
    evr_ulid_make(ms, rnd, out);
    return EVR_OK;
}

static s_trig_t *
s_find(struct evr_eng_trigs *ts, const char *job)
{
    for (int i = 0; i < EVR_TRIGGER_TABLE; i++)
        if (ts->t[i].state != S_FREE && !strcmp(ts->t[i].job, job))
            return &ts->t[i];
    return NULL;
}

/*  A free entry, else the least recently asked about that is answered;
    NULL when all are pending. */
static s_trig_t *
s_slot(struct evr_eng_trigs *ts)
{
    s_trig_t *best = NULL;
    for (int i = 0; i < EVR_TRIGGER_TABLE; i++) {
        s_trig_t *t = &ts->t[i];
        if (t->state == S_FREE)
            return t;
        if (t->state != S_PENDING && (!best || t->used < best->used))
            best = t;
    }
    if (best) {
        free(best->why);
        *best = (s_trig_t) { 0 };
    }
    return best;
}

void
evr_engine_triggered(evr_engine_t *self, const char *job, bool existing, const char *code,
                     const char *message)
{
    s_trig_t *t = self->trigs && job ? s_find(self->trigs, job) : NULL;
    if (!t || t->state != S_PENDING)
        return;     /* an answer to a resend, or after a restart: the first one counted */
    evr_eng_test_pause("triggered", NULL);  /* crash tests: accepted, the step not told */
    t->state = code ? S_REFUSED : S_ACCEPTED;
    t->existing = existing;
    if (code)
        t->why = evr_asprintf("%s (%s)", message ? message : "refused", code);
}

/*  True when pipeline may be triggered by the job, else err says why. */
static bool
s_allowed(const evr_eng_step_t *st, const char *pipeline, evr_err_t *err)
{
    const evr_spec_t *spec = st->job->spec;
    if (st->job->eng->opts.triggers_any)
        return true;
    for (uint32_t i = 0; i < spec->triggers.n; i++)
        if (!strcmp(spec->triggers.v[i], pipeline))
            return true;
    char list[512] = "";
    size_t o = 0;
    for (uint32_t i = 0; i < spec->triggers.n && o < sizeof list - 1; i++)
        o += (size_t) snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "",
                               spec->triggers.v[i]);
    evr_err_set(err, EVR_ERR_STATE, "pipeline %s is not in the triggers: of pipeline %s (%s): "
                "add it there to let its steps start it", pipeline,
                spec->pipeline ? spec->pipeline : "?", spec->triggers.n ? list : "none");
    return false;
}

/*  args of the request (an object of strings, or absent) into out. */
static evr_rc_t
s_args(const json_t *ja, evr_strmap_t *out, evr_err_t *err)
{
    if (!ja)
        return EVR_OK;
    if (!json_is_object(ja) || json_object_size(ja) > 64)
        return evr_err_set(err, EVR_ERR_PROTO, "\"args\": expected an object of at most 64 "
                           "NAME: VALUE strings");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *) ja, k, v) {
        if (!evr_spec_env_name_ok(k))
            return evr_err_set(err, EVR_ERR_PROTO, "\"args\": \"%.64s\" is not an arg's name "
                               "(letters, digits and _, not starting with a digit)", k);
        if (!json_is_string(v))
            return evr_err_set(err, EVR_ERR_PROTO, "\"args\": %s: expected a string value", k);
        if (json_string_length(v) > S_ARG_VALUE_MAX)
            return evr_err_set(err, EVR_ERR_PROTO, "\"args\": %s: %zu bytes, more than %d",
                               k, json_string_length(v), S_ARG_VALUE_MAX);
        if (strlen(json_string_value(v)) != json_string_length(v))
            return evr_err_set(err, EVR_ERR_PROTO, "\"args\": %s: holds a NUL byte", k);
        evr_strmap_set(out, k, json_string_value(v));
    }
    return EVR_OK;
}

/*  Whether s holds a secret value of job (declared, or registered by a
    step), or what output masks of one (a line of a secret of several). */
static bool
s_holds_secret(const evr_eng_job_t *job, const char *s)
{
    char *m = evr_mask_text((const char *const *) job->secrets, job->nsecrets, s);
    bool hit = strcmp(m, s) != 0;
    free(m);
    return hit;
}

/*  Whether a trigger carries a secret of job: in an arg's value, the job
    it starts would hold it unmasked (its dispatch, its logs, the broker's
    archive); in a name (an arg's, the pipeline's, the file's path), which
    cannot be masked, the runner's own lines would print it too (`next
    job: ...`, `trigger PIPELINE: job J`).  False with why, naming no name
    that holds one. */
static bool
s_args_unsecret(const evr_eng_job_t *job, const char *pipeline, const char *file,
                const evr_strmap_t *args, evr_err_t *err)
{
    const char *what = pipeline && s_holds_secret(job, pipeline) ? "the pipeline's name"
                     : file && s_holds_secret(job, file)         ? "the file's path"
                                                                  : NULL;
    for (uint32_t i = 0; i < args->n && !what; i++) {
        if (s_holds_secret(job, args->k[i]))
            what = "an arg's name";
        else if (s_holds_secret(job, args->v[i])) {
            evr_err_set(err, EVR_ERR_STATE, "args.%s holds the value of a secret of job "
                        "%s: the job it starts would keep it unmasked (its logs, the "
                        "broker's archive); give that pipeline the secret in its own "
                        "secrets: instead", args->k[i], job->id);
            return false;
        }
    }
    if (what)
        evr_err_set(err, EVR_ERR_STATE, "%s holds the value of a secret of job %s: a name "
                    "cannot be masked (the runner's log, the job it starts would show it)",
                    what, job->id);
    return !what;
}

/*  --exec: the job that would run next and the command that runs it, in
    the step's log and the answer. */
static evr_rc_t
s_local(const evr_eng_step_t *st, const char *pipeline, const char *file,
        const evr_strmap_t *args, json_t *ans)
{
    size_t cap = 64 + strlen(pipeline) + (file ? strlen(file) : 0), o;
    for (uint32_t i = 0; i < args->n; i++)
        cap += strlen(args->k[i]) + 4 * strlen(args->v[i]) + 12;
    char *cmd = evr_malloc(cap);
    o = (size_t) snprintf(cmd, cap, file ? "evrun-runner --exec %s" : "evrun-cli start %s",
                          file ? file : pipeline);
    for (uint32_t i = 0; i < args->n; i++) {
        o += (size_t) snprintf(cmd + o, cap - o, " -a '%s=", args->k[i]);
        for (const char *c = args->v[i]; *c; c++)   /* shell quoting: ' as '\'' */
            o += (size_t) snprintf(cmd + o, cap - o, *c == '\'' ? "'\\''" : "%c", *c);
        o += (size_t) snprintf(cmd + o, cap - o, "'");
    }
    evr_eng_step_log(st, "next job: %s (no broker here: run it with: %s)", file ? file : pipeline,
                     cmd);
    json_object_set_new(ans, "local", json_true());
    json_object_set_new(ans, "command", json_string(cmd));
    free(cmd);
    return EVR_OK;
}

/*  The file of the request (`file` given): loaded into tf, its text and
    spec the caller's to free. */
static evr_rc_t
s_file(const evr_eng_step_t *st, const char *path, const evr_strmap_t *args,
       evr_trigger_file_t *tf, char **text, evr_spec_t **spec, evr_err_t *err)
{
    size_t len = 0;
    evr_rc_t rc = evr_eng_trigger_file_load(st, path, args, text, &len, spec, err);
    if (rc == EVR_ERR_NOTFOUND || rc == EVR_ERR_SPEC || rc == EVR_ERR_LIMIT || rc == EVR_ERR_IO)
        rc = EVR_ERR_STATE;   /* said to the step as a refusal */
    if (!rc)
        *tf = (evr_trigger_file_t) { .path = path, .text = *text, .len = len, .spec = *spec };
    return rc;
}

/*  A trigger through the broker whose child the step would wait for
    (`"wait": true`, evrun-job trigger --wait) but that cannot start
    while the job runs: a job of the job's own pipeline with concurrency
    1, the one slot the job itself holds (a file's spec of that name
    with its own concurrency 1 too).  EVR_ERR_STATE, said, else EVR_OK. */
static evr_rc_t
s_wait_refused(const evr_eng_job_t *job, const char *pipeline, const evr_spec_t *fspec,
               evr_err_t *err)
{
    uint32_t c = fspec ? fspec->concurrency : job->spec->concurrency;
    if (strcmp(pipeline, job->spec->pipeline) || c != 1)
        return EVR_OK;
    return evr_err_set(err, EVR_ERR_STATE, "--wait: pipeline %s has concurrency: 1, which "
                       "this job holds: the job it would start cannot run before this one "
                       "ends, so the wait would never end (trigger without --wait, or raise "
                       "the pipeline's concurrency)", pipeline);
}

evr_rc_t
evr_eng_cmd_trigger(const json_t *req, json_t *ans, evr_err_t *err, void *arg)
{
    evr_eng_step_t *st = arg;
    evr_eng_job_t *job = st->job;
    const json_t *jp = json_object_get(req, "pipeline"), *jc = json_object_get(req, "call");
    const json_t *jf = json_object_get(req, "file");
    if ((jp && jf) || !(json_is_string(jp) ^ json_is_string(jf)) || !json_is_string(jc))
        return evr_err_set(err, EVR_ERR_PROTO, "expected {\"cmd\": \"trigger\", \"pipeline\": "
                           "NAME (or \"file\": PATH), \"call\": ULID, \"args\": {NAME: VALUE}} "
                           "(args optional)");
    const char *pipeline = jp ? json_string_value(jp) : NULL;
    const char *file = jf ? json_string_value(jf) : NULL;
    if (pipeline && !evr_spec_name_ok(pipeline))
        return evr_err_set(err, EVR_ERR_PROTO, "\"pipeline\": \"%.64s\" is no pipeline name: "
                           "expected 1-64 bytes of [A-Za-z0-9][A-Za-z0-9_.-]*", pipeline);
    if (st->spec->untrusted)
        return evr_err_set(err, EVR_ERR_STATE, "step %s runs untrusted code: it cannot trigger "
                           "%s %.256s", st->spec->name, file ? "file" : "pipeline",
                           file ? file : pipeline);
    if (pipeline && !s_allowed(st, pipeline, err))
        return EVR_ERR_STATE;
    evr_strmap_t args = { 0 };
    char child[EVR_ULID_LEN + 1];
    char *text = NULL, *idname = NULL;
    evr_spec_t *fspec = NULL;
    evr_trigger_file_t tf = { 0 };
    evr_rc_t rc = s_args(json_object_get(req, "args"), &args, err);
    if (!rc && !s_args_unsecret(job, pipeline, file, &args, err))
        rc = EVR_ERR_STATE;
    if (!rc && file && !(rc = s_file(st, file, &args, &tf, &text, &fspec, err)))
        pipeline = fspec->pipeline;
    if (!rc) {   /* a file's id differs from its pipeline's */
        idname = file ? evr_asprintf(EVR_SPEC_TRIGGER_FILE "%s", file) : evr_strdup(pipeline);
        rc = evr_trigger_child_id(job->id, st->spec->name, st->attempt, json_string_value(jc),
                                  idname, child, err);
    }
    struct evr_eng_trigs *ts = s_trigs(job->eng);
    if (!rc && !ts->fn) {
        rc = s_local(st, pipeline, file, &args, ans);
        goto out;
    }
    s_trig_t *t = rc ? NULL : s_find(ts, child);
    if (!rc && !t && !ts->who && json_is_true(json_object_get(req, "wait")))
        rc = s_wait_refused(job, pipeline, fspec, err);
    bool fresh = !rc && !t;
    if (fresh && (t = s_slot(ts)) != NULL) {
        snprintf(t->job, sizeof t->job, "%s", child);
        t->state = S_PENDING;
        if (file)
            evr_eng_step_log(st, "trigger %s (pipeline %s): job %s", file, pipeline, child);
        else
            evr_eng_step_log(st, "trigger %s: job %s", pipeline, child);
    }
    if (!rc && !t)
        rc = evr_err_set(err, EVR_ERR_LIMIT, "%d triggers of this runner wait for the broker's "
                         "answer: try again later", EVR_TRIGGER_TABLE);
    uint64_t now = evr_mono_ns();
    if (!rc && t->state == S_PENDING
        && (fresh || now - t->sent >= EVR_TRIGGER_RESEND_MS * 1000000ull)) {
        t->sent = now;
        ts->fn(ts->arg, child, pipeline, &args, job->id, st->spec->name, file ? &tf : NULL);
    }
    if (!rc) {
        t->used = now;
        json_object_set_new(ans, "job", json_string(child));
        if (t->state == S_REFUSED)
            rc = evr_err_set(err, EVR_ERR_STATE, "%s refused to start pipeline %s: %s",
                             ts->who ? ts->who : "the broker", pipeline, t->why);
        else
            json_object_set_new(ans, "state", json_string(t->state == S_PENDING ? "pending"
                                                          : t->existing ? "existing"
                                                                        : "accepted"));
    }
out:
    evr_strmap_free(&args);
    evr_spec_destroy(&fspec);
    free(text);
    free(idname);
    return rc;
}

/* ---------------------------------------------------------------- queries */

void
evr_engine_queried(evr_engine_t *self, const evr_msg_t *m)
{
    s_query_t *q = NULL;
    for (int i = 0; self->trigs && i < EVR_QUERY_TABLE && !q; i++)
        if (self->trigs->q[i].key[0] && self->trigs->q[i].seq == m->seq && !self->trigs->q[i].ans)
            q = &self->trigs->q[i];
    if (!q)
        return;     /* an answer to a resend, or after a restart */
    json_t *a = json_object();
    if (m->code) {
        json_object_set_new(a, "code", json_string(m->code));
        json_object_set_new(a, "message", json_string(m->message ? m->message : ""));
    }
    if (m->job) {
        json_object_set_new(a, "job", json_string(m->job));
        json_object_set_new(a, "status", json_string(m->status ? m->status : ""));
        if (m->reason)
            json_object_set_new(a, "reason", json_string(m->reason));
        json_object_set_new(a, "steps_total", json_integer(m->steps_total));
        json_object_set_new(a, "steps_done", json_integer(m->steps_done));
        json_t *o = json_object();
        for (uint32_t i = 0; i < m->outputs.n; i++)
            json_object_set_new(o, m->outputs.k[i], json_string(m->outputs.v[i]));
        json_object_set_new(a, "outputs", o);
        json_t *steps = json_array();
        for (uint32_t i = 0; i < m->step_states.n; i++) {
            const char *v = m->step_states.v[i], *sp = strchr(v, ' ');
            json_t *one = json_object();
            json_object_set_new(one, "name", json_string(m->step_states.k[i]));
            json_object_set_new(one, "status", sp ? json_stringn(v, (size_t) (sp - v))
                                                  : json_string(v));
            long long code = sp ? strtoll(sp + 1, NULL, 10) : EVR_STEP_NO_EXIT;
            if (code != EVR_STEP_NO_EXIT)   /* none for a step that never started */
                json_object_set_new(one, "exit_code", json_integer(code));
            json_array_append_new(steps, one);
        }
        json_object_set_new(a, "steps", steps);
    }
    if (m->pipeline)
        json_object_set_new(a, "pipeline", json_string(m->pipeline));
    if (m->job && m->parent_job)
        json_object_set_new(a, "parent_job", json_string(m->parent_job));
    if (q->key[0] == 'p') {
        json_object_set_new(a, "waiting", json_integer(m->waiting));
        json_object_set_new(a, "running", json_integer(m->running));
    }
    q->ans = a;
}

/*  True when the job may ask about pipeline: its own, one of its
    triggers:, or any with triggers_any. */
static bool
s_may_see(const evr_eng_step_t *st, const char *pipeline)
{
    const evr_spec_t *spec = st->job->spec;
    if (st->job->eng->opts.triggers_any || (spec->pipeline && !strcmp(spec->pipeline, pipeline)))
        return true;
    for (uint32_t i = 0; i < spec->triggers.n; i++)
        if (!strcmp(spec->triggers.v[i], pipeline))
            return true;
    return false;
}

static bool
s_same(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/*  The query of key (job or pipeline): pending (sent, or sent again
    after EVR_TRIGGER_RESEND_MS), or its answer, taken (the next request
    asks anew). */
static evr_rc_t
s_query(evr_eng_step_t *st, const char *cmd, const char *job, const char *pipeline, json_t *ans,
        evr_err_t *err)
{
    struct evr_eng_trigs *ts = s_trigs(st->job->eng);
    if (!ts->qfn)
        return evr_err_set(err, EVR_ERR_STATE, "no broker here (evrun-runner --exec): no other "
                           "job to ask about");
    char key[sizeof ts->q[0].key];
    snprintf(key, sizeof key, "%c:%s", job ? 'j' : 'p', job ? job : pipeline);
    s_query_t *q = NULL, *old = NULL;
    for (int i = 0; i < EVR_QUERY_TABLE && !q; i++) {
        s_query_t *c = &ts->q[i];
        if (!strcmp(c->key, key))
            q = c;
        else if (!old || !c->key[0] || (old->key[0] && c->used < old->used))
            old = c;
    }
    uint64_t now = evr_mono_ns();
    if (!q) {
        q = old;
        json_decref(q->ans);
        *q = (s_query_t) { .seq = ++ts->next_seq };
        snprintf(q->key, sizeof q->key, "%s", key);
    }
    q->used = now;
    if (!q->ans) {
        if (!q->sent || now - q->sent >= EVR_TRIGGER_RESEND_MS * 1000000ull) {
            q->sent = now;
            ts->qfn(ts->arg, q->seq, job, job ? NULL : pipeline);
        }
        json_object_set_new(ans, "state", json_string("pending"));
        return EVR_OK;
    }
    json_t *a = q->ans;
    q->ans = NULL;
    q->key[0] = '\0';
    const char *code = json_string_value(json_object_get(a, "code"));
    const char *pl = json_string_value(json_object_get(a, "pipeline"));
    evr_rc_t rc = EVR_OK;
    if (code && !strcmp(code, EVR_CODE_NOT_FOUND))
        rc = evr_err_set(err, EVR_ERR_NOTFOUND, "%s", json_string_value(json_object_get(a,
                                                                                    "message")));
    else if (code)
        rc = evr_err_set(err, EVR_ERR_STATE, "the broker refused: %s (%s)",
                         json_string_value(json_object_get(a, "message")), code);
    else if (!job && !strcmp(cmd, "result") && !json_object_get(a, "job"))
        rc = evr_err_set(err, EVR_ERR_NOTFOUND, "no job of pipeline %s yet", pipeline);
    else if (job && (!pl || !s_may_see(st, pl))
             && !s_same(json_string_value(json_object_get(a, "parent_job")), st->job->id))
        rc = evr_err_set(err, EVR_ERR_STATE, "job %s is of pipeline %s, which the triggers: of "
                         "pipeline %s does not name (nor did this job trigger it)", job,
                         pl ? pl : "?",
                         st->job->spec->pipeline ? st->job->spec->pipeline : "?");
    if (!rc) {
        json_object_update(ans, a);
        json_object_set_new(ans, "state", json_string("done"));
    }
    json_decref(a);
    return rc;
}

evr_rc_t
evr_eng_cmd_result(const json_t *req, json_t *ans, evr_err_t *err, void *arg)
{
    evr_eng_step_t *st = arg;
    const json_t *jj = json_object_get(req, "job"), *jp = json_object_get(req, "pipeline");
    if ((jj && jp) || !(json_is_string(jj) ^ json_is_string(jp)))
        return evr_err_set(err, EVR_ERR_PROTO, "expected {\"cmd\": \"result\", \"job\": ID} or "
                           "{\"cmd\": \"result\", \"pipeline\": NAME}");
    if (jj && !evr_ulid_valid(json_string_value(jj)))
        return evr_err_set(err, EVR_ERR_PROTO, "\"job\": \"%.32s\" is no job id (a ULID)",
                           json_string_value(jj));
    if (jp && !evr_spec_name_ok(json_string_value(jp)))
        return evr_err_set(err, EVR_ERR_PROTO, "\"pipeline\": \"%.64s\" is no pipeline name",
                           json_string_value(jp));
    if (jp && !s_may_see(st, json_string_value(jp)))
        return evr_err_set(err, EVR_ERR_STATE, "pipeline %s is neither this job's nor in its "
                           "triggers:", json_string_value(jp));
    return s_query(st, "result", jj ? json_string_value(jj) : NULL,
                   jp ? json_string_value(jp) : NULL, ans, err);
}

evr_rc_t
evr_eng_cmd_running(const json_t *req, json_t *ans, evr_err_t *err, void *arg)
{
    evr_eng_step_t *st = arg;
    const json_t *jp = json_object_get(req, "pipeline");
    if (!json_is_string(jp) || !evr_spec_name_ok(json_string_value(jp)))
        return evr_err_set(err, EVR_ERR_PROTO, "expected {\"cmd\": \"running\", \"pipeline\": "
                           "NAME} with a pipeline name");
    if (!s_may_see(st, json_string_value(jp)))
        return evr_err_set(err, EVR_ERR_STATE, "pipeline %s is neither this job's nor in its "
                           "triggers:", json_string_value(jp));
    evr_rc_t rc = s_query(st, "running", NULL, json_string_value(jp), ans, err);
    if (!rc && json_object_get(ans, "steps_total")) {   /* its newest job: not asked for here */
        json_object_del(ans, "outputs");
        json_object_del(ans, "steps");
    }
    return rc;
}
