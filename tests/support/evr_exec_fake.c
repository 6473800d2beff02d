/*  evr_exec_fake.c: the fake executor's calls (the ops table of
    evr_exec.h: each records itself, finds its fault and queues an item
    for evr_fake_core.c) and the test's API (see evr_exec_fake.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_fake_int.h"

static const char *const s_op_names[EVR_FAKE_OPS_] = {
    "create", "start", "attach", "detach", "logs", "wait", "inspect", "pause", "resume",
    "stop", "remove", "list", "workspace_create", "workspace_remove", "workspace_list",
    "put", "get",
};

const char *
evr_fake_op_name(evr_fake_op_t op)
{
    return op < EVR_FAKE_OPS_ ? s_op_names[op] : "?";
}

/* ------------------------------------------------------------ the calls */

static void
s_record(evr_exec_fake_t *f, evr_fake_op_t op, const char *name)
{
    if (f->ncalls == f->ccap) {
        f->ccap = f->ccap ? f->ccap * 2 : 64;
        f->calls = evr_realloc(f->calls, f->ccap * sizeof *f->calls);
    }
    f->calls[f->ncalls++] = (evr_fake_call_t) { op, evr_strdup(name ? name : "") };
}

/*  A call of op about name: recorded, its fault found.  The caller fills
    in the rest and queues it (evr_fake_enqueue). */
static evr_fake_item_t *
s_call(evr_exec_fake_t *f, evr_fake_op_t op, const char *name, evr_exec_fn *fn, void *arg)
{
    if (!name && op != EVR_FAKE_WS_LIST) {
        evr_fake_violation(f, "%s: no name", evr_fake_op_name(op));
        name = "";
    }
    s_record(f, op, name);
    evr_fake_item_t *it = evr_calloc(1, sizeof *it);
    it->kind = EVR_FAKE_I_OP;
    it->op = op;
    it->name = evr_strdup(name ? name : "");
    it->fn = fn;
    it->arg = arg;
    for (evr_fake_faultrec_t **pp = &f->faults; *pp; pp = &(*pp)->next) {
        evr_fake_faultrec_t *x = *pp;
        if (x->f.op != op || !evr_fake_match(x->f.pattern, it->name))
            continue;
        it->fault = x->f.kind;
        it->fault_msg = x->f.msg ? evr_strdup(x->f.msg) : NULL;
        if (x->f.kind == EVR_FAKE_HOLD)
            it->held = true;
        else if (x->f.kind == EVR_FAKE_DELAY)
            it->due = evr_mono_ns() + x->f.ms * 1000000ull;
        it->after_bytes = x->f.after_bytes;
        it->late_ms = x->f.ms;
        if (x->left && --x->left == 0) {
            *pp = x->next;
            free((char *) x->f.pattern);
            free((char *) x->f.msg);
            free(x);
        }
        break;
    }
    return it;
}

static void
s_create(evr_exec_t *ex, const evr_exec_spec_t *spec, evr_exec_fn *fn, void *arg)
{
    evr_exec_fake_t *f = (evr_exec_fake_t *) ex;
    evr_fake_item_t *it = s_call(f, EVR_FAKE_CREATE, spec->name, fn, arg);
    it->job_id = spec->job_id ? evr_strdup(spec->job_id) : NULL;
    it->script = spec->script ? evr_strdup(spec->script) : NULL;
    for (uint32_t i = 0; spec->env && i < spec->env->n; i++)
        evr_strmap_set(&it->env, spec->env->k[i], spec->env->v[i]);
    if (spec->output)   /* the fake's files are named from the workspace root */
        evr_strmap_set(&it->env, "EVRUN_OUTPUT", spec->output);
    evr_fake_enqueue(f, it);
}

static void
s_unit_call(evr_exec_t *ex, evr_fake_op_t op, const char *name, int grace_s, evr_exec_fn *fn,
            void *arg)
{
    evr_exec_fake_t *f = (evr_exec_fake_t *) ex;
    evr_fake_item_t *it = s_call(f, op, name, fn, arg);
    it->grace_s = grace_s;
    evr_fake_enqueue(f, it);
}

static void
s_start(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg)
{
    s_unit_call(ex, EVR_FAKE_START, name, 0, fn, arg);
}

static void
s_wait(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg)
{
    s_unit_call(ex, EVR_FAKE_WAIT, name, 0, fn, arg);
}

static void
s_inspect(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg)
{
    s_unit_call(ex, EVR_FAKE_INSPECT, name, 0, fn, arg);
}

static void
s_pause(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg)
{
    s_unit_call(ex, EVR_FAKE_PAUSE, name, 0, fn, arg);
}

static void
s_resume(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg)
{
    s_unit_call(ex, EVR_FAKE_RESUME, name, 0, fn, arg);
}

static void
s_stop(evr_exec_t *ex, const char *name, int grace_s, evr_exec_fn *fn, void *arg)
{
    s_unit_call(ex, EVR_FAKE_STOP, name, grace_s, fn, arg);
}

static void
s_remove(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg)
{
    s_unit_call(ex, EVR_FAKE_REMOVE, name, 0, fn, arg);
}

static void
s_list(evr_exec_t *ex, const char *prefix, evr_exec_fn *fn, void *arg)
{
    s_unit_call(ex, EVR_FAKE_LIST, prefix ? prefix : "", 0, fn, arg);
}

static void
s_ws_create(evr_exec_t *ex, const char *job_id, evr_exec_fn *fn, void *arg)
{
    s_unit_call(ex, EVR_FAKE_WS_CREATE, job_id, 0, fn, arg);
}

static void
s_ws_remove(evr_exec_t *ex, const char *job_id, evr_exec_fn *fn, void *arg)
{
    s_unit_call(ex, EVR_FAKE_WS_REMOVE, job_id, 0, fn, arg);
}

static void
s_ws_list(evr_exec_t *ex, evr_exec_fn *fn, void *arg)
{
    s_unit_call(ex, EVR_FAKE_WS_LIST, "", 0, fn, arg);
}

static void
s_put(evr_exec_t *ex, const char *job_id, evr_exec_area_t area, const char *image,
      const char *tar_file, evr_exec_fn *fn, void *arg)
{
    (void) image;
    (void) area;   /* one area: the fake's workspace */
    evr_exec_fake_t *f = (evr_exec_fake_t *) ex;
    evr_fake_item_t *it = s_call(f, EVR_FAKE_PUT, job_id, fn, arg);
    it->path = evr_strdup(tar_file ? tar_file : "");
    evr_fake_enqueue(f, it);
}

static void
s_get(evr_exec_t *ex, const char *name, const char *job_id, evr_exec_layout_t layout,
      const char *path, evr_exec_data_fn *data, evr_exec_fn *fn, void *arg)
{
    (void) layout;
    evr_exec_fake_t *f = (evr_exec_fake_t *) ex;
    evr_fake_item_t *it = s_call(f, EVR_FAKE_GET, name, fn, arg);
    it->job_id = evr_strdup(job_id ? job_id : "");
    it->path = evr_strdup(path ? path : "");
    it->data_fn = data;
    evr_fake_enqueue(f, it);
}

static evr_fake_stream_t *
s_stream_new(evr_exec_fake_t *f, evr_fake_item_t *it, bool logs, evr_exec_output_fn *out,
             evr_exec_fn *head, evr_exec_fn *done, void *arg)
{
    evr_fake_stream_t *s = evr_calloc(1, sizeof *s);
    s->logs = logs;
    s->name = evr_strdup(it->name);
    s->out = out;
    s->head = head;
    s->done = done;
    s->arg = arg;
    s->drop_after = it->fault == EVR_FAKE_DROP ? it->after_bytes : UINT64_MAX;
    s->next = f->streams;
    f->streams = s;
    it->s = s;
    return s;
}

static void *
s_attach(evr_exec_t *ex, const char *name, evr_exec_output_fn *out, evr_exec_fn *head,
         evr_exec_fn *done, void *arg)
{
    evr_exec_fake_t *f = (evr_exec_fake_t *) ex;
    evr_fake_item_t *it = s_call(f, EVR_FAKE_ATTACH, name, NULL, NULL);
    evr_fake_stream_t *s = s_stream_new(f, it, false, out, head, done, arg);
    evr_fake_enqueue(f, it);
    return s;
}

static void *
s_logs(evr_exec_t *ex, const char *name, const uint64_t from[2], bool so_far,
       evr_exec_output_fn *out, evr_exec_fn *done, void *arg)
{
    (void) so_far;
    evr_exec_fake_t *f = (evr_exec_fake_t *) ex;
    evr_fake_item_t *it = s_call(f, EVR_FAKE_LOGS, name, NULL, NULL);
    evr_fake_stream_t *s = s_stream_new(f, it, true, out, NULL, done, arg);
    it->from[0] = from ? from[0] : 0;
    it->from[1] = from ? from[1] : 0;
    evr_fake_enqueue(f, it);
    return s;
}

static void
s_detach(evr_exec_t *ex, void *handle)
{
    evr_exec_fake_t *f = (evr_exec_fake_t *) ex;
    evr_fake_stream_t *s = f->streams;
    while (s && s != handle)
        s = s->next;
    if (!s) {
        s_record(f, EVR_FAKE_DETACH, "?");
        evr_fake_violation(f, "detach of a handle the fake never gave (%p)", handle);
        return;
    }
    s_record(f, EVR_FAKE_DETACH, s->name);
    if (s->done_called && !s->dead) {
        evr_fake_violation(f, "detach of the %s stream of %s after its done was called",
                    s->logs ? "logs" : "attach", s->name);
        return;
    }
    if (s->dead || s->detached)
        return;
    s->detached = true;
    s->live = false;
    evr_fake_end(f, s, false, false, false, "the stream was detached");
}

static void
s_remove_hint(const evr_exec_t *ex, const char *name, char *buf, size_t size)
{
    (void) ex;
    snprintf(buf, size, "fake-rm %s", name);
}

static const char *
s_describe(const evr_exec_t *ex)
{
    return ((const evr_exec_fake_t *) ex)->describe;
}

static void s_destroy(evr_exec_t *ex);

/* ------------------------------------------------------------------- API */

void
evr_exec_fake_set_own_workspace(evr_exec_fake_t *self, bool own)
{
    self->ops.own_workspace = own;
}

evr_exec_fake_t *
evr_exec_fake_new(evr_loop_t *loop, const char *name)
{
    evr_exec_fake_t *f = evr_calloc(1, sizeof *f);
    f->name = evr_strdup(name);
    f->ops = (evr_exec_ops_t) {
        .name = f->name, .destroy = s_destroy, .create = s_create, .start = s_start,
        .attach = s_attach, .detach = s_detach, .logs = s_logs, .wait = s_wait,
        .inspect = s_inspect, .pause = s_pause, .resume = s_resume, .stop = s_stop,
        .remove = s_remove, .list = s_list, .workspace_create = s_ws_create,
        .workspace_remove = s_ws_remove, .workspace_list = s_ws_list, .put = s_put,
        .get = s_get, .unit_word = "unit",
        .workspace_word = "the fake workspace", .remove_hint = s_remove_hint,
        .describe = s_describe,
    };
    f->base.ops = &f->ops;
    f->base.loop = loop;
    f->err_rc = strcmp(name, "podman") == 0 ? EVR_ERR_PODMAN : EVR_ERR_IO;
    f->grace_ms_per_s = 1000;
    f->qtail = &f->queue;
    snprintf(f->describe, sizeof f->describe, "fake %s (in memory)", name);
    return f;
}

static void
s_drop_items(evr_fake_item_t **list)
{
    while (*list) {
        evr_fake_item_t *it = *list;
        *list = it->next;
        evr_fake_item_free(it);
    }
}

static void
s_destroy(evr_exec_t *ex)
{
    evr_exec_fake_t *f = (evr_exec_fake_t *) ex;
    evr_loop_timer_cancel(f->base.loop, f->pump_timer);
    s_drop_items(&f->queue);
    s_drop_items(&f->parked);
    while (f->units)
        evr_fake_unit_free(f, f->units);
    while (f->streams) {
        evr_fake_stream_t *s = f->streams;
        f->streams = s->next;
        free(s->name);
        free(s);
    }
    for (size_t i = 0; i < f->nws; i++)
        evr_fake_ws_destroy(&f->ws[i]);
    free(f->ws);
    evr_exec_fake_clear_faults(f);
    while (f->behaves) {
        evr_fake_behaverec_t *b = f->behaves;
        f->behaves = b->next;
        free(b->pattern);
        free((char *) b->b.out);
        free((char *) b->b.err);
        free(b);
    }
    for (size_t i = 0; i < f->ncalls; i++)
        free(f->calls[i].name);
    free(f->calls);
    for (size_t i = 0; i < f->nviol; i++)
        free(f->viol[i]);
    free(f->viol);
    free(f->name);
    free(f);
}

void
evr_exec_fake_destroy(evr_exec_fake_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_destroy(&(*self_p)->base);
    *self_p = NULL;
}

evr_exec_t *
evr_exec_fake_exec(evr_exec_fake_t *self)
{
    return &self->base;
}

void
evr_exec_fake_set_wait_early(evr_exec_fake_t *self, bool early)
{
    self->wait_early = early;
}

void
evr_exec_fake_set_grace_scale(evr_exec_fake_t *self, uint64_t ms_per_s)
{
    self->grace_ms_per_s = ms_per_s;
}

static char *
s_memdup(const char *p, size_t *len)
{
    if (!p)
        return NULL;
    if (!*len)
        *len = strlen(p);
    char *c = evr_malloc(*len + 1);
    memcpy(c, p, *len);
    c[*len] = '\0';
    return c;
}

void
evr_exec_fake_behave(evr_exec_fake_t *self, const char *pattern, const evr_fake_behave_t *b)
{
    evr_fake_behaverec_t *x = evr_calloc(1, sizeof *x);
    x->pattern = evr_strdup(pattern);
    x->b = *b;
    x->b.out = s_memdup(b->out, &x->b.out_len);
    x->b.err = s_memdup(b->err, &x->b.err_len);
    x->next = self->behaves;
    self->behaves = x;
}

void
evr_exec_fake_fault(evr_exec_fake_t *self, const evr_fake_fault_t *fault)
{
    evr_fake_faultrec_t *x = evr_calloc(1, sizeof *x);
    x->f = *fault;
    x->f.pattern = fault->pattern ? evr_strdup(fault->pattern) : NULL;
    x->f.msg = fault->msg ? evr_strdup(fault->msg) : NULL;
    x->left = fault->times;
    evr_fake_faultrec_t **pp = &self->faults;
    while (*pp)
        pp = &(*pp)->next;
    *pp = x;
}

void
evr_exec_fake_clear_faults(evr_exec_fake_t *self)
{
    while (self->faults) {
        evr_fake_faultrec_t *x = self->faults;
        self->faults = x->next;
        free((char *) x->f.pattern);
        free((char *) x->f.msg);
        free(x);
    }
}

size_t
evr_exec_fake_release(evr_exec_fake_t *self, evr_fake_op_t op, const char *pattern)
{
    size_t n = 0;
    for (evr_fake_item_t *it = self->queue; it; it = it->next)
        if (it->held && it->op == op && evr_fake_match(pattern, it->name)
            && (it->kind == EVR_FAKE_I_OP || it->kind == EVR_FAKE_I_ANSWER)) {
            it->held = false;
            it->due = evr_mono_ns();
            n++;
        }
    evr_fake_arm(self);
    return n;
}

size_t
evr_exec_fake_held(const evr_exec_fake_t *self)
{
    size_t n = 0;
    for (const evr_fake_item_t *it = self->queue; it; it = it->next)
        n += it->held;
    return n;
}

size_t
evr_exec_fake_ncalls(const evr_exec_fake_t *self)
{
    return self->ncalls;
}

evr_fake_op_t
evr_exec_fake_call(const evr_exec_fake_t *self, size_t i, const char **name)
{
    if (i >= self->ncalls) {
        if (name)
            *name = NULL;
        return EVR_FAKE_OPS_;
    }
    if (name)
        *name = self->calls[i].name;
    return self->calls[i].op;
}

long
evr_exec_fake_find(const evr_exec_fake_t *self, size_t from, evr_fake_op_t op,
                   const char *pattern)
{
    for (size_t i = from; i < self->ncalls; i++)
        if (self->calls[i].op == op && evr_fake_match(pattern, self->calls[i].name))
            return (long) i;
    return -1;
}

size_t
evr_exec_fake_count(const evr_exec_fake_t *self, evr_fake_op_t op, const char *pattern)
{
    size_t n = 0;
    for (size_t i = 0; i < self->ncalls; i++)
        n += self->calls[i].op == op && evr_fake_match(pattern, self->calls[i].name);
    return n;
}

char *
evr_exec_fake_trace(const evr_exec_fake_t *self)
{
    size_t len = 0, cap = 1;
    char *out = evr_malloc(cap);
    out[0] = '\0';
    for (size_t i = 0; i < self->ncalls; i++) {
        char *line = evr_asprintf("%s %s\n", evr_fake_op_name(self->calls[i].op),
                                  self->calls[i].name);
        size_t k = strlen(line);
        out = evr_realloc(out, cap += k);
        memcpy(out + len, line, k + 1);
        len += k;
        free(line);
    }
    return out;
}

size_t
evr_exec_fake_violations(const evr_exec_fake_t *self, const char **first)
{
    if (first)
        *first = self->nviol ? self->viol[0] : NULL;
    return self->nviol;
}

evr_exec_state_t
evr_exec_fake_state(const evr_exec_fake_t *self, const char *name, int64_t *exit_code)
{
    const evr_fake_unit_t *u = evr_fake_unit(self, name);
    if (exit_code)
        *exit_code = u ? u->exit_code : 0;
    return u ? u->state : EVR_EXEC_ABSENT;
}

size_t
evr_exec_fake_units(const evr_exec_fake_t *self, const char *pattern)
{
    size_t n = 0;
    for (const evr_fake_unit_t *u = self->units; u; u = u->next)
        n += evr_fake_match(pattern, u->name);
    return n;
}

void
evr_exec_fake_add_unit(evr_exec_fake_t *self, const char *name, const char *job_id,
                       const char *script, evr_exec_state_t state, int64_t exit_code)
{
    evr_fake_unit_t *u = evr_fake_unit_new(self, name, job_id, script, NULL);
    if (state == EVR_EXEC_RUNNING || state == EVR_EXEC_PAUSED)
        evr_fake_unit_start(u);
    if (state == EVR_EXEC_PAUSED)
        evr_fake_unit_freeze(u, true);
    if (state == EVR_EXEC_EXITED) {
        u->started_at = evr_now_ns();
        u->state = EVR_EXEC_EXITED;
        u->exit_code = exit_code;
    }
}

uint64_t
evr_exec_fake_printed(const evr_exec_fake_t *self, const char *name, int stream)
{
    const evr_fake_unit_t *u = evr_fake_unit(self, name);
    return u && (stream == 1 || stream == 2) ? u->printed[stream - 1] : 0;
}

bool
evr_exec_fake_ws_exists(const evr_exec_fake_t *self, const char *job_id)
{
    return evr_fake_ws_of(self, job_id) != NULL;
}

evr_rc_t
evr_exec_fake_ws_file(const evr_exec_fake_t *self, const char *job_id, const char *path,
                      const uint8_t **data, size_t *len)
{
    const evr_fake_ws_t *w = evr_fake_ws_of(self, job_id);
    const uint8_t *p = w ? evr_fake_ws_read(w, path, len) : NULL;
    if (!p)
        return EVR_ERR_NOTFOUND;
    *data = p;
    return EVR_OK;
}

void
evr_exec_fake_ws_write(evr_exec_fake_t *self, const char *job_id, const char *path,
                       const void *data, size_t len)
{
    evr_fake_ws_t *w = evr_fake_ws_of(self, job_id);
    if (!w) {
        self->ws = evr_realloc(self->ws, (self->nws + 1) * sizeof *self->ws);
        w = self->ws[self->nws++] = evr_fake_ws_new(job_id);
    }
    evr_fake_ws_write(w, path, data, len, false);
}

size_t
evr_exec_fake_pending(const evr_exec_fake_t *self)
{
    size_t n = 0;
    for (const evr_fake_item_t *it = self->queue; it; it = it->next)
        n += it->kind == EVR_FAKE_I_OP || it->kind == EVR_FAKE_I_ANSWER;
    for (const evr_fake_item_t *it = self->parked; it; it = it->next)
        n++;
    for (const evr_fake_stream_t *s = self->streams; s; s = s->next)
        n += !s->done_called && !s->dead;
    return n;
}

void
evr_exec_fake_crash(evr_exec_fake_t *self, bool carry_out)
{
    evr_fake_item_t *q = self->queue;
    self->queue = NULL;
    self->qtail = &self->queue;
    self->mute = true;
    self->in_pump = true;   /* no timer while it runs */
    while (q) {
        evr_fake_item_t *it = q;
        q = it->next;
        it->next = NULL;
        if (carry_out && it->kind == EVR_FAKE_I_OP)
            evr_fake_run(self, it);
        else
            evr_fake_item_free(it);
    }
    self->mute = false;
    self->in_pump = false;
    for (evr_fake_stream_t *s = self->streams; s; s = s->next) {
        s->dead = s->ended = true;
        s->live = false;
    }
    s_drop_items(&self->queue);
    self->qtail = &self->queue;
    s_drop_items(&self->parked);
    evr_fake_arm(self);
}
