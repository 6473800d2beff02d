/*  evr_etest.c: the engine's test world (see evr_etest.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_etest.h"
#include "evr_yaml.h"

evr_etest_t *
evr_etest_new(void)
{
    evr_etest_t *t = evr_calloc(1, sizeof *t);
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/evr-etest-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(t->dir)) {
        perror("mkdtemp");
        free(t);
        return NULL;
    }
    t->loop = evr_loop_new();
    t->fake = evr_exec_fake_new(t->loop, "podman");
    evr_exec_fake_set_grace_scale(t->fake, 20);
    t->execs[0] = evr_exec_fake_exec(t->fake);
    char *store = evr_asprintf("%s/store", t->dir);
    evr_err_t err;
    if (evr_store_open(store, EVR_STORE_NOSYNC, &t->store, &err)) {
        fprintf(stderr, "evr_etest: %s\n", err.msg);
        free(store);
        evr_etest_destroy(&t);
        return NULL;
    }
    free(store);
    t->opts.runner_id = "test";
    t->opts.flush_ms = 5;
    t->opts.grace_s = 1;
    static char artifacts[300];
    snprintf(artifacts, sizeof artifacts, "%s/artifacts", t->dir);
    t->opts.artifacts_dir = artifacts;
    evr_etest_engine(t);
    return t;
}

void
evr_etest_with_process(evr_etest_t *self)
{
    self->proc = evr_exec_fake_new(self->loop, "process");
    evr_exec_fake_set_grace_scale(self->proc, 20);
    self->execs[1] = evr_exec_fake_exec(self->proc);
}

void
evr_etest_engine(evr_etest_t *self)
{
    evr_engine_destroy(&self->eng);
    self->eng = evr_engine_new(&self->opts, self->store, self->loop, self->execs);
}

void
evr_etest_kill(evr_etest_t *self, bool carry_out)
{
    evr_engine_destroy(&self->eng);
    evr_exec_fake_crash(self->fake, carry_out);
    if (self->proc)
        evr_exec_fake_crash(self->proc, carry_out);
}

void
evr_etest_destroy(evr_etest_t **self_p)
{
    evr_etest_t *t = *self_p;
    if (!t)
        return;
    evr_engine_destroy(&t->eng);
    evr_exec_fake_destroy(&t->fake);
    evr_exec_fake_destroy(&t->proc);
    evr_store_destroy(&t->store);
    evr_loop_destroy(&t->loop);
    char *cmd = evr_asprintf("rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "evr_etest: cleanup failed: %s\n", cmd);
    free(cmd);
    free(t);
    *self_p = NULL;
}

const char *
evr_etest_job(int n)
{
    static char ids[100][EVR_ULID_LEN + 1];
    if (n < 0 || n >= 100)
        n = 99;
    snprintf(ids[n], sizeof ids[n], "01JQ7ZK3M8X2V9T4B6N00000%02d", n);
    return ids[n];
}

static char *
s_lower(char *s)
{
    for (char *c = s; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char) (*c - 'A' + 'a');
    return s;
}

char *
evr_etest_unit(const char *job, const char *step, uint32_t attempt)
{
    char *id = s_lower(evr_strdup(job));
    char *name = evr_asprintf("evrun-%s-%s-%u", id, step, attempt);
    free(id);
    return name;
}

char *
evr_etest_units(const char *job, const char *step, uint32_t attempt)
{
    char *id = s_lower(evr_strdup(job));
    char *p = attempt ? evr_asprintf("evrun-%s-%s-%u", id, step, attempt)
                      : evr_asprintf("evrun-%s-%s-[0-9]*", id, step);
    free(id);
    return p;
}

evr_rc_t
evr_etest_submit(evr_etest_t *self, const char *job, const char *yaml)
{
    evr_spec_t spec = { 0 };
    evr_diag_t *diag = evr_diag_new("test.yml");
    evr_rc_t rc = evr_yaml_load(yaml, strlen(yaml), &spec, diag);
    for (size_t i = 0; rc && i < evr_diag_count(diag) && i < EVR_DIAG_MAX; i++)
        fprintf(stderr, "evr_etest: %s\n", evr_diag_get(diag, i));
    evr_diag_destroy(&diag);
    if (!rc) {
        evr_err_t err;
        rc = evr_engine_submit(self->eng, job, &spec, NULL, &err);
        if (rc)
            fprintf(stderr, "evr_etest: submit %s: %s\n", job, err.msg);
    }
    evr_rec_free(&evr_spec_type, &spec);
    return rc;
}

evr_rc_t
evr_etest_submit_spec(evr_etest_t *self, const char *job, const evr_spec_t *spec)
{
    evr_err_t err;
    evr_rc_t rc = evr_engine_submit(self->eng, job, spec, NULL, &err);
    if (rc)
        fprintf(stderr, "evr_etest: submit %s: %s\n", job, err.msg);
    return rc;
}

static bool
s_idle(evr_etest_t *self, const void *arg)
{
    (void) self;
    return *(const int *) arg == 0;
}

bool
evr_etest_until(evr_etest_t *self, evr_etest_cond_fn *cond, const void *arg, int max_ms)
{
    uint64_t t0 = evr_mono_ns();
    for (;;) {
        if (cond(self, arg))
            return true;
        if (evr_mono_ns() - t0 > (uint64_t) max_ms * 1000000ull)
            return false;
        evr_engine_turn(self->eng, 5);
    }
}

bool
evr_etest_run(evr_etest_t *self, int max_ms)
{
    uint64_t t0 = evr_mono_ns();
    int open = 1;
    while (open) {
        if (evr_mono_ns() - t0 > (uint64_t) max_ms * 1000000ull) {
            fprintf(stderr, "evr_etest: %d job(s) still open after %d ms\n", open, max_ms);
            return false;
        }
        open = evr_engine_turn(self->eng, 5);
    }
    return s_idle(self, &open);
}

void
evr_etest_turns(evr_etest_t *self, int ms)
{
    uint64_t t0 = evr_mono_ns();
    while (evr_mono_ns() - t0 < (uint64_t) ms * 1000000ull)
        evr_engine_turn(self->eng, 2);
}

bool
evr_etest_unit_running(evr_etest_t *self, const void *name)
{
    return evr_exec_fake_state(self->fake, name, NULL) == EVR_EXEC_RUNNING;
}

bool
evr_etest_called(evr_etest_t *self, const void *call)
{
    const evr_etest_call_t *c = call;
    evr_exec_fake_t *f = self->fake;
    return evr_exec_fake_count(f, c->op, c->pattern) >= (c->n ? c->n : 1);
}

bool
evr_etest_has_event(evr_etest_t *self, const void *ev)
{
    const evr_etest_event_t *e = ev;
    char *text = evr_etest_events(self, e->job);
    bool has = strstr(text, e->text) != NULL;
    free(text);
    return has;
}

/* ---------------------------------------------------------------- reading */

typedef struct {
    char *s;
    size_t len, cap;
} s_text_t;

static void
s_add(s_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
s_add(s_text_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->len + (size_t) n + 1 > t->cap) {
        t->cap = (t->len + (size_t) n + 1) * 2;
        t->s = evr_realloc(t->s, t->cap);
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t) n;
}

static int
s_event_line(const evr_event_t *ev, void *arg)
{
    s_text_t *t = arg;
    const evr_evdata_t *d = &ev->data;
    s_add(t, "%s", evr_evtype_name(evr_event_kind(ev)));
    if (d->step)
        s_add(t, " %s %u", d->step, d->attempt);
    switch (evr_event_kind(ev)) {
    case EVR_EV_STEP_STARTING:
        s_add(t, " %s", d->container ? d->container : "-");
        break;
    case EVR_EV_STEP_OUTPUT:
        s_add(t, " %s @%llu+%u", d->stream, (unsigned long long) d->offset, d->raw);
        break;
    case EVR_EV_STEP_FINISHED:
        s_add(t, " %s exit=%lld%s", d->status, (long long) d->exit_code,
              d->allowed ? " allowed" : "");
        break;
    case EVR_EV_JOB_FINISHED:
        s_add(t, " %s", d->status);
        break;
    case EVR_EV_STEP_RECOVERED:
        s_add(t, " %s", d->how);
        break;
    case EVR_EV_JOB_CANCEL_REQUESTED:
        if (d->force)
            s_add(t, " force");
        break;
    case EVR_EV_STEP_OUTPUTS:
        for (uint32_t i = 0; i < d->outputs.n; i++)
            s_add(t, " %s=%s", d->outputs.k[i], d->outputs.v[i]);
        break;
    default:
        break;
    }
    if (d->reason)
        s_add(t, " reason=%s", d->reason);
    s_add(t, "\n");
    return 0;
}

char *
evr_etest_events(evr_etest_t *self, const char *job)
{
    s_text_t t = { 0 };
    s_add(&t, "%s", "");
    evr_err_t err;
    if (evr_store_job_events(self->store, job, 1, s_event_line, &t, &err) == EVR_ERR_STORE)
        fprintf(stderr, "evr_etest: %s\n", err.msg);
    return t.s;
}

typedef struct {
    const char *step, *stream;
    uint32_t attempt;
    s_text_t out;
    uint64_t next;
    bool exact;
} s_outctx_t;

static int
s_output_event(const evr_event_t *ev, void *arg)
{
    s_outctx_t *c = arg;
    const evr_evdata_t *d = &ev->data;
    if (evr_event_kind(ev) != EVR_EV_STEP_OUTPUT || strcmp(d->step, c->step) != 0
        || d->attempt != c->attempt || strcmp(d->stream, c->stream) != 0)
        return 0;
    if (d->offset != c->next)
        c->exact = false;
    c->next = d->offset + d->raw;
    if (c->out.len + d->bytes.len + 1 > c->out.cap) {
        c->out.cap = (c->out.len + d->bytes.len + 1) * 2;
        c->out.s = evr_realloc(c->out.s, c->out.cap);
    }
    if (d->bytes.len)
        memcpy(c->out.s + c->out.len, d->bytes.data, d->bytes.len);
    c->out.len += d->bytes.len;
    c->out.s[c->out.len] = '\0';
    return 0;
}

char *
evr_etest_output(evr_etest_t *self, const char *job, const char *step, uint32_t attempt,
                 const char *stream, size_t *len, bool *exact)
{
    s_outctx_t c = { .step = step, .stream = stream, .attempt = attempt, .exact = true };
    c.out.s = evr_calloc(1, 1);
    c.out.cap = 1;
    evr_store_job_events(self->store, job, 1, s_output_event, &c, NULL);
    if (len)
        *len = c.out.len;
    if (exact)
        *exact = c.exact;
    return c.out.s;
}

evr_job_status_t
evr_etest_job_status(evr_etest_t *self, const char *job)
{
    evr_job_t rec = { 0 };
    evr_job_status_t s = EVR_JOB_NONE;
    if (evr_store_get_job(self->store, job, &rec, NULL) == EVR_OK)
        s = (evr_job_status_t) rec.status;
    evr_rec_free(&evr_job_type, &rec);
    return s;
}

evr_step_status_t
evr_etest_step(evr_etest_t *self, const char *job, const char *step, evr_stepstate_t *out)
{
    evr_job_t rec = { 0 };
    evr_step_status_t s = EVR_STEP_PENDING;
    if (evr_store_get_job(self->store, job, &rec, NULL) == EVR_OK) {
        const evr_stepstate_t *st = evr_job_find_step(&rec, step);
        if (st) {
            s = (evr_step_status_t) st->status;
            if (out)
                evr_rec_copy(&evr_stepstate_type, out, st);
        }
    }
    evr_rec_free(&evr_job_type, &rec);
    return s;
}

bool
evr_etest_in_order(const char *text, ...)
{
    va_list ap;
    va_start(ap, text);
    const char *at = text ? text : "";
    bool ok = true;
    for (const char *want; (want = va_arg(ap, const char *));) {
        const char *hit = strstr(at, want);
        if (!hit) {
            fprintf(stderr, "evr_etest: \"%s\" not found %s in:\n%s", want,
                    strstr(text, want) ? "after the texts before it" : "at all", text);
            ok = false;
            break;
        }
        at = hit + strlen(want);
    }
    va_end(ap);
    return ok;
}

size_t
evr_etest_count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* -------------------------------------------------------------- per job */

evr_etest_t *
evr_etest_start(int n, const char *steps)
{
    evr_etest_t *t = evr_etest_new();
    if (!t)
        abort();
    char *yaml = evr_asprintf("%s%s", EVR_ETEST_HEAD, steps);
    if (evr_etest_submit(t, evr_etest_job(n), yaml))
        abort();
    free(yaml);
    return t;
}

bool
evr_etest_output_is(evr_etest_t *self, int n, const char *step, uint32_t attempt,
                    const char *stream, const char *want)
{
    size_t len;
    bool exact;
    char *got = evr_etest_output(self, evr_etest_job(n), step, attempt, stream, &len, &exact);
    bool ok = exact && len == strlen(want) && memcmp(got, want, len) == 0;
    if (!ok)
        fprintf(stderr, "  output of %s/%u %s: got \"%.200s\" (%zu bytes, offsets %s), "
                "want \"%.200s\" (%zu bytes)\n", step, attempt, stream, got, len,
                exact ? "contiguous" : "NOT contiguous", want, strlen(want));
    free(got);
    return ok;
}

bool
evr_etest_clean(evr_etest_t *self, int n)
{
    char *units = evr_etest_units(evr_etest_job(n), "*", 0);
    size_t left = evr_exec_fake_units(self->fake, units);
    free(units);
    const char *why = NULL;
    size_t breaches = evr_exec_fake_violations(self->fake, &why);
    bool ws = evr_exec_fake_ws_exists(self->fake, evr_etest_job(n));
    if (left)
        fprintf(stderr, "  %zu unit(s) of job %d left\n", left, n);
    if (ws)
        fprintf(stderr, "  the workspace of job %d is left\n", n);
    if (breaches)
        fprintf(stderr, "  %zu breach(es) of the executor contract, first: %s\n", breaches, why);
    return !left && !ws && !breaches;
}

long
evr_etest_call_at(evr_etest_t *self, evr_fake_op_t op, int n, const char *step,
                  uint32_t attempt)
{
    char *p = evr_etest_units(evr_etest_job(n), step, attempt);
    long i = evr_exec_fake_find(self->fake, 0, op, p);
    free(p);
    return i;
}

size_t
evr_etest_ncalls(evr_etest_t *self, evr_fake_op_t op, int n, const char *step,
                 uint32_t attempt)
{
    char *p = evr_etest_units(evr_etest_job(n), step, attempt);
    size_t c = evr_exec_fake_count(self->fake, op, p);
    free(p);
    return c;
}

bool
evr_etest_until_event(evr_etest_t *self, int n, const char *text)
{
    evr_etest_event_t ev = { evr_etest_job(n), text };
    return evr_etest_until(self, evr_etest_has_event, &ev, 3000);
}

bool
evr_etest_until_call(evr_etest_t *self, evr_fake_op_t op, int n, const char *step,
                     uint32_t attempt)
{
    char *p = evr_etest_units(evr_etest_job(n), step, attempt);
    evr_etest_call_t c = { op, p, 1 };
    bool ok = evr_etest_until(self, evr_etest_called, &c, 3000);
    free(p);
    return ok;
}

void
evr_etest_behave(evr_etest_t *self, int n, const char *step, uint32_t attempt,
                 const evr_fake_behave_t *b)
{
    char *p = evr_etest_units(evr_etest_job(n), step, attempt);
    evr_exec_fake_behave(self->fake, p, b);
    free(p);
}

void
evr_etest_fault(evr_etest_t *self, int n, const char *step, uint32_t attempt,
                evr_fake_fault_t fault)
{
    char *p = evr_etest_units(evr_etest_job(n), step, attempt);
    fault.pattern = p;
    evr_exec_fake_fault(self->fake, &fault);
    free(p);
}

char *
evr_etest_events_of(evr_etest_t *self, int n)
{
    return evr_etest_events(self, evr_etest_job(n));
}
