/*  evr_ptest.h: the harness of the process executor's tests
    (test_exec_process.c, test_exec_process_units.c): a state directory, a
    loop and an executor per case (s_setup, s_teardown), calls whose
    outcome comes through s_on (CALL), and attach/logs collectors that
    keep both streams (s_tail_t).  Static, as evr_test.h's counters are:
    each test program has its own copy.
*/
#ifndef EVR_PTEST_H_INCLUDED
#define EVR_PTEST_H_INCLUDED

#include <stdlib.h>
#include <unistd.h>

#include "evr_exec_process.h"
#include "evr_test.h"
#include "evr_unit.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
typedef struct {
    bool called;
    int calls;
    evr_exec_result_t r;
    char msg[EVR_ERR_MAX], id[64], names[4096];
} s_res_t;

static void
s_on(const evr_exec_result_t *r, void *arg)
{
    s_res_t *res = arg;
    res->called = true;
    res->calls++;
    res->r = *r;
    snprintf(res->msg, sizeof res->msg, "%s", r->msg ? r->msg : "");
    snprintf(res->id, sizeof res->id, "%s", r->id ? r->id : "");
    snprintf(res->names, sizeof res->names, "%s", r->names ? r->names : "");
    res->r.msg = res->msg;
    res->r.id = res->id;
    res->r.names = res->names;
}

typedef struct {
    uint8_t *p;
    size_t n, cap;
} s_buf_t;

static void
s_buf_add(s_buf_t *b, const uint8_t *d, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = evr_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/*  What an attach or logs collected. */
typedef struct {
    s_buf_t out[2];
    s_res_t head, done;
    evr_exec_t *ex;       /* attach: started when head comes */
    const char *start;    /* that unit's name */
    s_res_t started;
    size_t pieces;
} s_tail_t;

static void
s_tail_free(s_tail_t *t)
{
    free(t->out[0].p);
    free(t->out[1].p);
    memset(t, 0, sizeof *t);
}

static void
s_on_out(int stream, const uint8_t *data, size_t len, void *arg)
{
    s_tail_t *t = arg;
    CHECK(stream == 1 || stream == 2);
    CHECK(len > 0 && len <= 65536);
    t->pieces++;
    s_buf_add(&t->out[stream == 1 ? 0 : 1], data, len);
}

static void
s_on_head(const evr_exec_result_t *r, void *arg)
{
    s_tail_t *t = arg;
    s_on(r, &t->head);
    if (t->start)
        t->ex->ops->start(t->ex, t->start, s_on, &t->started);
}

static void
s_on_done(const evr_exec_result_t *r, void *arg)
{
    s_on(r, &((s_tail_t *) arg)->done);
}

/*  Turns the loop until *flag (5 s at most: a hung case fails, the
    suite goes on). */
static void
s_until(evr_loop_t *loop, const bool *flag)
{
    uint64_t end = evr_mono_ns() + 5000000000ull;
    while (!*flag && evr_mono_ns() < end)
        evr_loop_once(loop, 50);
    if (!*flag)
        fprintf(stderr, "  (timed out waiting)\n");
}

typedef struct {
    char dir[64];
    evr_loop_t *loop;
    evr_exec_t *ex;
} s_env_t;

static void
s_setup(s_env_t *e)
{
    snprintf(e->dir, sizeof e->dir, "/tmp/evr-proc-XXXXXX");
    CHECK(mkdtemp(e->dir) != NULL);
    e->loop = evr_loop_new();
    evr_err_t err;
    e->ex = evr_exec_process_new(e->dir, e->loop, &err);
    CHECK(e->ex != NULL);
    s_res_t r = { 0 };
    e->ex->ops->workspace_create(e->ex, "JOB1", s_on, &r);
    CHECK(!r.called);   /* never from inside the call */
    s_until(e->loop, &r.called);
    CHECK(r.r.rc == EVR_OK);
}

static void
s_teardown(s_env_t *e)
{
    evr_exec_destroy(&e->ex);
    CHECK(e->ex == NULL);
    evr_loop_destroy(&e->loop);
    evr_err_t err;
    if (!getenv("EVR_TEST_KEEP"))
        CHECK(evr_unit_rmtree(e->dir, &err) == EVR_OK);
}

/*  A call whose outcome comes through s_on: its result. */
#define CALL(e, res, op, ...)                                                                    \
    do {                                                                                         \
        memset(&(res), 0, sizeof(res));                                                          \
        (e)->ex->ops->op((e)->ex, __VA_ARGS__, s_on, &(res));                                    \
        CHECK(!(res).called);                                                                    \
        s_until((e)->loop, &(res).called);                                                       \
    } while (0)

static void
s_create(s_env_t *e, const char *name, const char *script, const evr_strmap_t *env)
{
    evr_exec_spec_t spec = { .name = name, .job_id = "JOB1", .script = script, .env = env };
    s_res_t r;
    CALL(e, r, create, &spec);
    CHECK(r.r.rc == EVR_OK);
    if (r.r.rc)
        fprintf(stderr, "  create: %s\n", r.msg);
}

/*  Creates, attaches, starts (from head) and follows name to its end. */
static void
s_run(s_env_t *e, const char *name, const char *script, const evr_strmap_t *env, s_tail_t *t)
{
    s_create(e, name, script, env);
    t->ex = e->ex;
    t->start = name;
    void *h = e->ex->ops->attach(e->ex, name, s_on_out, s_on_head, s_on_done, t);
    CHECK(h != NULL);
    CHECK(!t->head.called);
    s_until(e->loop, &t->done.called);
    s_until(e->loop, &t->started.called);   /* its report may come later */
    CHECK(t->head.called && t->head.r.rc == EVR_OK);
    CHECK(t->started.called && t->started.r.rc == EVR_OK);
    if (t->started.r.rc)
        fprintf(stderr, "  start: %s\n", t->started.msg);
    CHECK(t->done.r.rc == EVR_OK);
    if (t->done.r.rc)
        fprintf(stderr, "  attach: %s\n", t->done.msg);
}

/*  name's exit code, *sig the signal that ended it (0: it exited). */
static int64_t
s_wait_sig(s_env_t *e, const char *name, int *sig)
{
    s_res_t r;
    CALL(e, r, wait, name);
    CHECK(r.r.rc == EVR_OK);
    *sig = r.r.signal;
    return r.r.exit_code;
}

static int64_t
s_wait(s_env_t *e, const char *name)
{
    int sig;
    return s_wait_sig(e, name, &sig);
}

/*  Starts name and waits until the step made the file ready. */
static void
s_start_ready(s_env_t *e, const char *name, const char *script, s_tail_t *t)
{
    s_create(e, name, script, NULL);
    t->ex = e->ex;
    t->start = name;
    e->ex->ops->attach(e->ex, name, s_on_out, s_on_head, s_on_done, t);
    uint64_t end = evr_mono_ns() + 5000000000ull;
    while ((!t->started.called || !strstr(t->out[0].p ? (char *) t->out[0].p : "", "ready"))
           && evr_mono_ns() < end)
        evr_loop_once(e->loop, 20);
    CHECK(t->started.r.rc == EVR_OK);
    CHECK(t->out[0].p && strstr((char *) t->out[0].p, "ready"));
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#endif
