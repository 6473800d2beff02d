/*  test_exec_fake.c: the fake executor keeps the promises of evr_exec.h
    (answers from a later turn, attach from the first byte then done once,
    detach, wait, inspect, stop with SIGTERM and SIGKILL after the grace,
    pause freezing a unit, logs from offsets, workspaces and put/get as
    tar), reads its small shell, and injects its faults: an error, a held
    answer released late, a delay, a taken name, a broken stream, a wait
    that finds no unit; a crash drops callbacks and keeps units. */
#include <unistd.h>

#include "evr_exec_fake.h"
#include "evr_test.h"

typedef struct {
    int calls;
    evr_rc_t rc;
    bool not_found, exists, transport, oom;
    evr_exec_state_t state;
    int64_t exit_code;
    char msg[512], id[64], names[1024];
} s_ans_t;

static void
s_on(const evr_exec_result_t *r, void *arg)
{
    s_ans_t *a = arg;
    a->calls++;
    a->rc = r->rc;
    a->not_found = r->not_found;
    a->exists = r->exists;
    a->transport = r->transport;
    a->oom = r->oom_killed;
    a->state = r->state;
    a->exit_code = r->exit_code;
    snprintf(a->msg, sizeof a->msg, "%s", r->msg ? r->msg : "");
    snprintf(a->id, sizeof a->id, "%s", r->id ? r->id : "");
    snprintf(a->names, sizeof a->names, "%s", r->names ? r->names : "");
}

/*  A stream's record: what came, in order ("H" head, "1"/"2" output, "D"
    done), and the bytes per stream. */
typedef struct {
    char order[256];
    size_t n;
    char out[2][4096];
    size_t len[2];
    int heads, dones;
    evr_rc_t head_rc, done_rc;
    bool done_transport, done_not_found;
} s_st_t;

static void
s_mark(s_st_t *s, char c)
{
    if (s->n < sizeof s->order - 1 && (s->n == 0 || s->order[s->n - 1] != c || c == 'D'
                                       || c == 'H'))
        s->order[s->n++] = c;
}

static void
s_out(int stream, const uint8_t *data, size_t len, void *arg)
{
    s_st_t *s = arg;
    int i = stream == 1 ? 0 : 1;
    s_mark(s, stream == 1 ? '1' : '2');
    if (s->len[i] + len < sizeof s->out[i]) {
        memcpy(s->out[i] + s->len[i], data, len);
        s->len[i] += len;
    }
}

static void
s_head(const evr_exec_result_t *r, void *arg)
{
    s_st_t *s = arg;
    s->heads++;
    s->head_rc = r->rc;
    s_mark(s, 'H');
}

static void
s_done(const evr_exec_result_t *r, void *arg)
{
    s_st_t *s = arg;
    s->dones++;
    s->done_rc = r->rc;
    s->done_transport = r->transport;
    s->done_not_found = r->not_found;
    s_mark(s, 'D');
}

/*  Turns the loop until *flag is non-zero (at most 3 s: a hang fails). */
static bool
s_until(evr_loop_t *loop, const int *flag)
{
    uint64_t t0 = evr_mono_ns();
    while (!*flag && evr_mono_ns() - t0 < 30000000000ull)   /* a failing test's bound */
        evr_loop_once(loop, 5);
    return *flag != 0;
}

/*  Turns the loop for about ms. */
static void
s_turns(evr_loop_t *loop, int ms)
{
    uint64_t t0 = evr_mono_ns();
    while (evr_mono_ns() - t0 < (uint64_t) ms * 1000000ull)
        evr_loop_once(loop, 2);
}

/*  get's data: into the FILE arg; its end into s_got (arg is the FILE). */
static s_ans_t s_got;
static int s_got_calls;

static bool
s_to_file(const uint8_t *data, size_t len, void *arg)
{
    return fwrite(data, 1, len, arg) == len;
}

static void
s_got_done(const evr_exec_result_t *r, void *arg)
{
    (void) arg;
    s_got_calls++;
    s_got.rc = r->rc;
}

static const char *JOB = "01JQ7ZK3M8X2V9T4B6N0000001";

static evr_exec_t *
s_setup(evr_loop_t **loop, evr_exec_fake_t **f)
{
    *loop = evr_loop_new();
    *f = evr_exec_fake_new(*loop, "process");
    evr_exec_t *ex = evr_exec_fake_exec(*f);
    s_ans_t a = { 0 };
    ex->ops->workspace_create(ex, JOB, s_on, &a);
    s_until(*loop, &a.calls);
    CHECK(a.rc == EVR_OK);
    return ex;
}

static void
s_create(evr_exec_t *ex, evr_loop_t *loop, const char *name, const char *script,
         const evr_strmap_t *env)
{
    evr_exec_spec_t spec = { .name = name, .job_id = JOB, .script = script, .env = env };
    s_ans_t a = { 0 };
    ex->ops->create(ex, &spec, s_on, &a);
    CHECK(a.calls == 0);   /* never from inside the call */
    CHECK(s_until(loop, &a.calls));
    CHECK(a.rc == EVR_OK && *a.id);
}

static void
test_lifecycle(void)
{
    evr_loop_t *loop;
    evr_exec_fake_t *f;
    evr_exec_t *ex = s_setup(&loop, &f);
    CHECK_STR(ex->ops->name, "process");
    s_create(ex, loop, "u1", "echo hi; echo oops >&2; exit 3", NULL);
    CHECK(evr_exec_fake_state(f, "u1", NULL) == EVR_EXEC_CREATED);
    s_st_t st = { 0 };
    void *h = ex->ops->attach(ex, "u1", s_out, s_head, s_done, &st);
    CHECK(h != NULL && st.heads == 0);
    CHECK(s_until(loop, &st.heads));
    CHECK(st.head_rc == EVR_OK);
    s_ans_t started = { 0 }, waited = { 0 };
    ex->ops->start(ex, "u1", s_on, &started);
    ex->ops->wait(ex, "u1", s_on, &waited);
    CHECK(started.calls == 0 && waited.calls == 0);
    CHECK(s_until(loop, &waited.calls));
    CHECK(s_until(loop, &st.dones));
    CHECK(started.calls == 1 && started.rc == EVR_OK);
    CHECK(waited.rc == EVR_OK && waited.exit_code == 3);
    CHECK_STR(st.order, "H12D");
    CHECK(st.len[0] == 3 && memcmp(st.out[0], "hi\n", 3) == 0);
    CHECK(st.len[1] == 5 && memcmp(st.out[1], "oops\n", 5) == 0);
    CHECK(st.done_rc == EVR_OK && st.dones == 1);
    s_ans_t in = { 0 };
    ex->ops->inspect(ex, "u1", s_on, &in);
    CHECK(s_until(loop, &in.calls));
    CHECK(in.rc == EVR_OK && in.state == EVR_EXEC_EXITED && in.exit_code == 3 && *in.id);
    /* a second attach after the exit: the whole output, then done */
    s_st_t again = { 0 };
    ex->ops->attach(ex, "u1", s_out, s_head, s_done, &again);
    CHECK(s_until(loop, &again.dones));
    CHECK_STR(again.order, "H12D");
    s_ans_t rm = { 0 }, gone = { 0 };
    ex->ops->remove(ex, "u1", s_on, &rm);
    CHECK(s_until(loop, &rm.calls) && rm.rc == EVR_OK);
    ex->ops->inspect(ex, "u1", s_on, &gone);
    CHECK(s_until(loop, &gone.calls));
    CHECK(gone.not_found && gone.state == EVR_EXEC_ABSENT && gone.rc == EVR_ERR_IO);
    char *trace = evr_exec_fake_trace(f);
    CHECK_STR(trace, "workspace_create 01JQ7ZK3M8X2V9T4B6N0000001\ncreate u1\nattach u1\n"
                     "start u1\nwait u1\ninspect u1\nattach u1\nremove u1\ninspect u1\n");
    free(trace);
    CHECK(evr_exec_fake_find(f, 0, EVR_FAKE_ATTACH, "u*") == 2);
    CHECK(evr_exec_fake_find(f, 3, EVR_FAKE_ATTACH, NULL) == 6);
    CHECK(evr_exec_fake_count(f, EVR_FAKE_INSPECT, "u1") == 2);
    CHECK(evr_exec_fake_violations(f, NULL) == 0);
    CHECK(evr_exec_fake_pending(f) == 0);
    evr_exec_t *gone_ex = ex;
    evr_exec_destroy(&gone_ex);
    evr_loop_destroy(&loop);
}

/*  Starts name (created from script) and collects its output to its end. */
static void
s_run(evr_exec_t *ex, evr_loop_t *loop, const char *name, const char *script,
      const evr_strmap_t *env, s_st_t *st, s_ans_t *waited)
{
    s_create(ex, loop, name, script, env);
    ex->ops->attach(ex, name, s_out, s_head, s_done, st);
    CHECK(s_until(loop, &st->heads));
    ex->ops->start(ex, name, NULL, NULL);
    ex->ops->wait(ex, name, s_on, waited);
    CHECK(s_until(loop, &waited->calls));
    CHECK(s_until(loop, &st->dones));
}

static void
test_shell(void)
{
    evr_loop_t *loop;
    evr_exec_fake_t *f;
    evr_exec_t *ex = s_setup(&loop, &f);
    evr_strmap_t env = { 0 };
    evr_strmap_set(&env, "WHO", "you");
    s_st_t st = { 0 };
    s_ans_t w = { 0 };
    s_run(ex, loop, "sh1",
          "# a comment\necho \"hello, $WHO\" 'and $WHO'\nprintf 'a\\tb%s\\n' X && echo -n no-nl\n"
          "seq 3; echo saved > /workspace/out/f.txt\necho more >> out/f.txt; cat out/f.txt\n"
          "nosuch arg 2>/dev/null\n",
          &env, &st, &w);
    const char *want = "hello, you and $WHO\na\tbX\nno-nl1\n2\n3\nsaved\nmore\n";
    CHECK(st.len[0] == strlen(want) && memcmp(st.out[0], want, st.len[0]) == 0);
    CHECK(st.len[1] == strlen("sh: nosuch: not found\n"));
    CHECK(w.exit_code == 127);
    const uint8_t *data;
    size_t len;
    CHECK(evr_exec_fake_ws_file(f, JOB, "out/f.txt", &data, &len) == EVR_OK);
    CHECK(len == 11 && memcmp(data, "saved\nmore\n", 11) == 0);
    CHECK(evr_exec_fake_printed(f, "sh1", 1) == strlen(want));
    /* exit with the last status; `false` */
    s_st_t st2 = { 0 };
    s_ans_t w2 = { 0 };
    s_run(ex, loop, "sh2", "sleep 0.01; false", NULL, &st2, &w2);
    CHECK(w2.exit_code == 1 && st2.len[0] == 0);
    /* a behaviour registered for a name pattern wins over the script */
    evr_fake_behave_t b = { .out = "abcdef", .err = "E", .piece = 2, .piece_ms = 1,
                            .exit_code = 7 };
    evr_exec_fake_behave(f, "beh-*", &b);
    s_st_t st3 = { 0 };
    s_ans_t w3 = { 0 };
    s_run(ex, loop, "beh-1", "echo ignored", NULL, &st3, &w3);
    CHECK(w3.exit_code == 7);
    CHECK(st3.len[0] == 6 && memcmp(st3.out[0], "abcdef", 6) == 0);
    CHECK(st3.len[1] == 1 && st3.out[1][0] == 'E');
    CHECK(strncmp(st3.order, "H121", 4) == 0);   /* in pieces, streams alternating */
    evr_strmap_free(&env);
    evr_exec_fake_destroy(&f);
    evr_loop_destroy(&loop);
}

static void
test_stop_and_pause(void)
{
    evr_loop_t *loop;
    evr_exec_fake_t *f;
    evr_exec_t *ex = s_setup(&loop, &f);
    evr_exec_fake_set_grace_scale(f, 20);
    /* SIGTERM ends it: 143, and the stop answers once it has exited */
    s_create(ex, loop, "t1", "echo up; sleep 100", NULL);
    s_ans_t w = { 0 }, stop = { 0 };
    ex->ops->start(ex, "t1", NULL, NULL);
    ex->ops->wait(ex, "t1", s_on, &w);
    s_turns(loop, 10);
    CHECK(evr_exec_fake_state(f, "t1", NULL) == EVR_EXEC_RUNNING);
    ex->ops->stop(ex, "t1", 1, s_on, &stop);
    CHECK(s_until(loop, &stop.calls) && s_until(loop, &w.calls));
    CHECK(stop.rc == EVR_OK && w.exit_code == 143);
    /* a unit that ignores SIGTERM dies of SIGKILL after the grace */
    s_create(ex, loop, "t2", "trap '' TERM; sleep 100", NULL);
    s_ans_t w2 = { 0 };
    ex->ops->start(ex, "t2", NULL, NULL);
    ex->ops->wait(ex, "t2", s_on, &w2);
    s_turns(loop, 5);
    ex->ops->stop(ex, "t2", 10, NULL, NULL);   /* 0.5 s scaled: 50 ms ran out at load 20 */
    s_turns(loop, 5);
    CHECK(w2.calls == 0 && evr_exec_fake_state(f, "t2", NULL) == EVR_EXEC_RUNNING);
    CHECK(s_until(loop, &w2.calls) && w2.exit_code == 137);
    /* grace < 0: SIGKILL at once */
    s_create(ex, loop, "t3", "trap '' TERM; sleep 100", NULL);
    s_ans_t w3 = { 0 };
    ex->ops->start(ex, "t3", NULL, NULL);
    ex->ops->wait(ex, "t3", s_on, &w3);
    ex->ops->stop(ex, "t3", -1, NULL, NULL);
    CHECK(s_until(loop, &w3.calls) && w3.exit_code == 137);
    /* pause freezes it: its sleep does not end while paused */
    s_create(ex, loop, "p1", "sleep 0.03; echo woke", NULL);
    s_ans_t w4 = { 0 }, pa = { 0 }, re = { 0 }, bad = { 0 };
    ex->ops->start(ex, "p1", NULL, NULL);
    ex->ops->wait(ex, "p1", s_on, &w4);
    ex->ops->pause(ex, "p1", s_on, &pa);
    CHECK(s_until(loop, &pa.calls) && pa.rc == EVR_OK);
    CHECK(evr_exec_fake_state(f, "p1", NULL) == EVR_EXEC_PAUSED);
    s_turns(loop, 60);
    CHECK(w4.calls == 0 && evr_exec_fake_printed(f, "p1", 1) == 0);
    ex->ops->pause(ex, "p1", s_on, &bad);   /* paused already */
    CHECK(s_until(loop, &bad.calls) && bad.rc == EVR_ERR_IO);
    CHECK_CONTAINS(bad.msg, "is paused, not running");
    ex->ops->resume(ex, "p1", s_on, &re);
    CHECK(s_until(loop, &w4.calls) && w4.exit_code == 0 && re.rc == EVR_OK);
    CHECK(evr_exec_fake_printed(f, "p1", 1) == 5);
    /* a stop of a paused unit: SIGTERM waits for the thaw, SIGKILL does not */
    s_create(ex, loop, "p2", "sleep 100", NULL);
    s_ans_t w5 = { 0 }, pa2 = { 0 };
    ex->ops->start(ex, "p2", NULL, NULL);
    ex->ops->wait(ex, "p2", s_on, &w5);
    ex->ops->pause(ex, "p2", s_on, &pa2);
    CHECK(s_until(loop, &pa2.calls));
    ex->ops->stop(ex, "p2", 1, NULL, NULL);
    CHECK(s_until(loop, &w5.calls) && w5.exit_code == 137);
    /* remove kills a running unit */
    s_create(ex, loop, "r1", "sleep 100", NULL);
    s_ans_t w6 = { 0 }, rm = { 0 };
    ex->ops->start(ex, "r1", NULL, NULL);
    ex->ops->wait(ex, "r1", s_on, &w6);
    ex->ops->remove(ex, "r1", s_on, &rm);
    CHECK(s_until(loop, &rm.calls) && s_until(loop, &w6.calls));
    CHECK(w6.exit_code == 137 && evr_exec_fake_units(f, "r1") == 0);
    CHECK(evr_exec_fake_violations(f, NULL) == 0);
    evr_exec_fake_destroy(&f);
    evr_loop_destroy(&loop);
}

static void
test_faults(void)
{
    evr_loop_t *loop;
    evr_exec_fake_t *f;
    evr_exec_t *ex = s_setup(&loop, &f);
    evr_exec_spec_t spec = { .name = "f1", .job_id = JOB, .script = "echo 123456789" };
    /* an error, once */
    evr_exec_fake_fault(f, &(evr_fake_fault_t) { .op = EVR_FAKE_CREATE, .pattern = "f*",
                                                 .kind = EVR_FAKE_FAIL, .msg = "no image",
                                                 .times = 1 });
    s_ans_t a = { 0 }, b = { 0 };
    ex->ops->create(ex, &spec, s_on, &a);
    CHECK(s_until(loop, &a.calls) && a.rc == EVR_ERR_IO);
    CHECK_STR(a.msg, "no image");
    CHECK(evr_exec_fake_units(f, NULL) == 0);
    /* the name taken by a create nobody sees, once */
    evr_exec_fake_fault(f, &(evr_fake_fault_t) { .op = EVR_FAKE_CREATE, .kind = EVR_FAKE_EXISTS,
                                                 .times = 1 });
    ex->ops->create(ex, &spec, s_on, &b);
    CHECK(s_until(loop, &b.calls) && b.rc && b.exists);
    CHECK(evr_exec_fake_units(f, NULL) == 0);
    s_create(ex, loop, "f1", spec.script, NULL);
    /* taken for real: exists */
    s_ans_t c = { 0 };
    ex->ops->create(ex, &spec, s_on, &c);
    CHECK(s_until(loop, &c.calls) && c.exists);
    /* a held answer: none until released */
    evr_exec_fake_fault(f, &(evr_fake_fault_t) { .op = EVR_FAKE_START, .kind = EVR_FAKE_HOLD });
    s_ans_t st = { 0 };
    s_st_t s = { 0 };
    ex->ops->attach(ex, "f1", s_out, s_head, s_done, &s);
    ex->ops->start(ex, "f1", s_on, &st);
    s_turns(loop, 20);
    CHECK(st.calls == 0 && evr_exec_fake_held(f) == 1);
    CHECK(evr_exec_fake_state(f, "f1", NULL) == EVR_EXEC_CREATED);
    CHECK(evr_exec_fake_release(f, EVR_FAKE_START, "f1") == 1);
    CHECK(st.calls == 0);
    CHECK(s_until(loop, &st.calls) && st.rc == EVR_OK);
    CHECK(s_until(loop, &s.dones));
    evr_exec_fake_clear_faults(f);
    /* an attach that breaks after 4 bytes */
    evr_exec_fake_fault(f, &(evr_fake_fault_t) { .op = EVR_FAKE_ATTACH, .kind = EVR_FAKE_DROP,
                                                 .after_bytes = 4 });
    s_st_t d = { 0 };
    ex->ops->attach(ex, "f1", s_out, s_head, s_done, &d);
    CHECK(s_until(loop, &d.dones));
    CHECK(d.len[0] == 4 && d.done_rc == EVR_ERR_IO && d.done_transport);
    CHECK_STR(d.order, "H1D");
    evr_exec_fake_clear_faults(f);
    /* a delayed answer comes later, not at once */
    evr_exec_fake_fault(f, &(evr_fake_fault_t) { .op = EVR_FAKE_INSPECT, .kind = EVR_FAKE_DELAY,
                                                 .ms = 30 });
    s_ans_t in = { 0 };
    ex->ops->inspect(ex, "f1", s_on, &in);
    evr_loop_once(loop, 0);
    evr_loop_once(loop, 0);
    CHECK(in.calls == 0);
    CHECK(s_until(loop, &in.calls) && in.state == EVR_EXEC_EXITED);
    /* a wait that finds no unit / cannot say how it ended, at its exit */
    evr_exec_fake_fault(f, &(evr_fake_fault_t) { .op = EVR_FAKE_WAIT, .pattern = "w1",
                                                 .kind = EVR_FAKE_NOT_FOUND });
    evr_exec_fake_fault(f, &(evr_fake_fault_t) { .op = EVR_FAKE_WAIT, .pattern = "w2",
                                                 .kind = EVR_FAKE_FAIL, .msg = "conn reset" });
    s_create(ex, loop, "w1", "sleep 0.01", NULL);
    s_create(ex, loop, "w2", "sleep 0.01", NULL);
    s_ans_t w1 = { 0 }, w2 = { 0 };
    ex->ops->start(ex, "w1", NULL, NULL);
    ex->ops->start(ex, "w2", NULL, NULL);
    ex->ops->wait(ex, "w1", s_on, &w1);
    ex->ops->wait(ex, "w2", s_on, &w2);
    CHECK(s_until(loop, &w1.calls) && s_until(loop, &w2.calls));
    CHECK(w1.rc && w1.not_found);
    CHECK(w2.rc && !w2.not_found);
    CHECK_STR(w2.msg, "conn reset");
    CHECK(evr_exec_fake_state(f, "w1", NULL) == EVR_EXEC_EXITED);
    /* a remove that fails leaves the unit */
    evr_exec_fake_fault(f, &(evr_fake_fault_t) { .op = EVR_FAKE_REMOVE, .kind = EVR_FAKE_FAIL });
    s_ans_t rm = { 0 };
    ex->ops->remove(ex, "w1", s_on, &rm);
    CHECK(s_until(loop, &rm.calls) && rm.rc);
    CHECK(evr_exec_fake_units(f, "w1") == 1);
    CHECK(evr_exec_fake_violations(f, NULL) == 0);
    evr_exec_fake_destroy(&f);
    evr_loop_destroy(&loop);
}

static void
test_detach_logs(void)
{
    evr_loop_t *loop;
    evr_exec_fake_t *f;
    evr_exec_t *ex = s_setup(&loop, &f);
    s_create(ex, loop, "l1", "echo abc; echo E >&2; echo def; sleep 100", NULL);
    s_st_t a = { 0 };
    void *h = ex->ops->attach(ex, "l1", s_out, s_head, s_done, &a);
    CHECK(s_until(loop, &a.heads));
    ex->ops->start(ex, "l1", NULL, NULL);
    s_turns(loop, 10);
    CHECK(a.len[0] == 8 && a.len[1] == 2);
    ex->ops->detach(ex, h);
    CHECK(s_until(loop, &a.dones));
    CHECK(a.dones == 1 && a.done_rc == EVR_ERR_IO);
    /* a detach after done is a breach, caught */
    ex->ops->detach(ex, h);
    const char *why;
    CHECK(evr_exec_fake_violations(f, &why) == 1);
    CHECK_CONTAINS(why, "after its done was called");
    /* the log from offsets: 2 bytes into stdout, 1 into stderr */
    s_st_t l = { 0 };
    uint64_t from[2] = { 2, 1 };
    ex->ops->logs(ex, "l1", from, true, s_out, s_done, &l);
    CHECK(s_until(loop, &l.dones));
    CHECK(l.done_rc == EVR_OK && l.heads == 0);
    CHECK(l.len[0] == 6 && memcmp(l.out[0], "c\ndef\n", 6) == 0);
    CHECK(l.len[1] == 1 && l.out[1][0] == '\n');
    /* a detach before the answer: done once, with an error, nothing else */
    s_st_t e = { 0 };
    void *h2 = ex->ops->logs(ex, "l1", NULL, true, s_out, s_done, &e);
    ex->ops->detach(ex, h2);
    CHECK(s_until(loop, &e.dones));
    s_turns(loop, 5);
    CHECK(e.dones == 1 && e.done_rc && e.len[0] == 0);
    evr_exec_fake_destroy(&f);
    evr_loop_destroy(&loop);
}

static void
test_workspaces(void)
{
    evr_loop_t *loop;
    evr_exec_fake_t *f;
    evr_exec_t *ex = s_setup(&loop, &f);
    const char *other = "01JQ7ZK3M8X2V9T4B6N0000002";
    s_ans_t again = { 0 }, ls = { 0 };
    ex->ops->workspace_create(ex, JOB, s_on, &again);
    CHECK(s_until(loop, &again.calls) && again.exists);
    evr_exec_fake_ws_write(f, other, "out/a.txt", "A", 1);
    evr_exec_fake_ws_write(f, other, "out/sub/b.txt", "BB", 2);
    evr_exec_fake_ws_write(f, other, "outside.txt", "X", 1);
    ex->ops->workspace_list(ex, s_on, &ls);
    CHECK(s_until(loop, &ls.calls));
    CHECK_STR(ls.names, "01jq7zk3m8x2v9t4b6n0000001\n01jq7zk3m8x2v9t4b6n0000002\n");
    /* get: out as a tar stream, written to a file, put into JOB */
    evr_exec_fake_add_unit(f, "g1", other, "true", EVR_EXEC_EXITED, 0);
    char path[] = "/tmp/evr-fake-tar-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *fp = fdopen(fd, "wb");
    s_ans_t got = { 0 }, put = { 0 }, miss = { 0 }, nounit = { 0 };
    ex->ops->get(ex, "g1", other, EVR_EXEC_LAYOUT_WORKSPACE, "/workspace/out", s_to_file,
                 s_got_done, fp);
    CHECK(s_until(loop, &s_got_calls));
    fclose(fp);
    CHECK(s_got.rc == EVR_OK);
    ex->ops->put(ex, JOB, EVR_EXEC_AREA_WORKSPACE, NULL, path, s_on, &put);
    CHECK(s_until(loop, &put.calls) && put.rc == EVR_OK);
    unlink(path);
    const uint8_t *data;
    size_t len;
    CHECK(evr_exec_fake_ws_file(f, JOB, "out/a.txt", &data, &len) == EVR_OK && len == 1);
    CHECK(evr_exec_fake_ws_file(f, JOB, "out/sub/b.txt", &data, &len) == EVR_OK && len == 2);
    CHECK(evr_exec_fake_ws_file(f, JOB, "outside.txt", &data, &len) == EVR_ERR_NOTFOUND);
    ex->ops->get(ex, "g1", other, EVR_EXEC_LAYOUT_WORKSPACE, "nothing/here", s_to_file, s_on,
                 &miss);
    ex->ops->get(ex, "nounit", other, EVR_EXEC_LAYOUT_WORKSPACE, "out", s_to_file, s_on,
                 &nounit);
    CHECK(s_until(loop, &miss.calls) && s_until(loop, &nounit.calls));
    CHECK(miss.rc && miss.not_found && nounit.rc && nounit.not_found);
    (void) got;
    /* a workspace in use is not removed; list finds units by prefix */
    s_ans_t busy = { 0 }, units = { 0 }, rm = { 0 }, done = { 0 };
    ex->ops->workspace_remove(ex, other, s_on, &busy);
    ex->ops->list(ex, "g", s_on, &units);
    CHECK(s_until(loop, &busy.calls) && s_until(loop, &units.calls));
    CHECK(busy.rc != EVR_OK);
    CHECK_CONTAINS(busy.msg, "in use by unit g1");
    CHECK_STR(units.names, "g1\n");
    ex->ops->remove(ex, "g1", s_on, &rm);
    ex->ops->workspace_remove(ex, other, s_on, &done);
    CHECK(s_until(loop, &done.calls) && done.rc == EVR_OK);
    CHECK(!evr_exec_fake_ws_exists(f, other) && evr_exec_fake_ws_exists(f, JOB));
    CHECK(evr_exec_fake_violations(f, NULL) == 0);
    evr_exec_fake_destroy(&f);
    evr_loop_destroy(&loop);
}

static void
test_crash(void)
{
    evr_loop_t *loop;
    evr_exec_fake_t *f;
    evr_exec_t *ex = s_setup(&loop, &f);
    s_create(ex, loop, "c1", "echo x; sleep 0.02; exit 4", NULL);
    s_st_t a = { 0 };
    s_ans_t w = { 0 }, made = { 0 };
    ex->ops->attach(ex, "c1", s_out, s_head, s_done, &a);
    CHECK(s_until(loop, &a.heads));
    ex->ops->start(ex, "c1", NULL, NULL);
    ex->ops->wait(ex, "c1", s_on, &w);
    evr_exec_spec_t spec = { .name = "c2", .job_id = JOB, .script = "true" };
    ex->ops->create(ex, &spec, s_on, &made);
    evr_exec_fake_crash(f, true);
    s_turns(loop, 60);
    /* nothing was called back; the unit ran to its end; the create was
       carried out */
    CHECK(w.calls == 0 && made.calls == 0 && a.dones == 0 && a.len[0] == 0);
    int64_t code;
    CHECK(evr_exec_fake_state(f, "c1", &code) == EVR_EXEC_EXITED && code == 4);
    CHECK(evr_exec_fake_state(f, "c2", NULL) == EVR_EXEC_CREATED);
    CHECK(evr_exec_fake_pending(f) == 0);
    evr_exec_fake_destroy(&f);
    evr_loop_destroy(&loop);
}

/*  LATE / HOLD_ANSWER: the effect in turn, the answer later; a wait
    ahead of output in flight. */
static s_st_t *s_seen;
static size_t s_seen_len;

static void
s_on_seen(const evr_exec_result_t *r, void *arg)
{
    s_seen_len = s_seen->len[0];
    s_on(r, arg);
}

static void
test_late_answers(void)
{
    evr_loop_t *loop;
    evr_exec_fake_t *f;
    evr_exec_t *ex = s_setup(&loop, &f);
    s_create(ex, loop, "la", "echo early", NULL);
    evr_exec_fake_fault(f, &(evr_fake_fault_t) { .op = EVR_FAKE_START, .kind = EVR_FAKE_LATE,
                                                 .ms = 40 });
    s_st_t st = { 0 };
    s_ans_t started = { 0 };
    ex->ops->attach(ex, "la", s_out, s_head, s_done, &st);
    CHECK(s_until(loop, &st.heads));
    ex->ops->start(ex, "la", s_on, &started);
    /* the output (and the end) come before the start's answer */
    CHECK(s_until(loop, &st.dones));
    CHECK(started.calls == 0 && st.len[0] == 6);
    CHECK(s_until(loop, &started.calls) && started.rc == EVR_OK);
    evr_exec_fake_clear_faults(f);
    /* a create that took effect, its answer held until released */
    evr_exec_fake_fault(f, &(evr_fake_fault_t) { .op = EVR_FAKE_CREATE,
                                                 .kind = EVR_FAKE_HOLD_ANSWER });
    evr_exec_spec_t spec = { .name = "lb", .job_id = JOB, .script = "true" };
    s_ans_t made = { 0 };
    ex->ops->create(ex, &spec, s_on, &made);
    s_turns(loop, 10);
    CHECK(made.calls == 0 && evr_exec_fake_state(f, "lb", NULL) == EVR_EXEC_CREATED);
    CHECK(evr_exec_fake_held(f) == 1 && evr_exec_fake_pending(f) == 1);
    CHECK(evr_exec_fake_release(f, EVR_FAKE_CREATE, "lb") == 1);
    CHECK(s_until(loop, &made.calls) && made.rc == EVR_OK && *made.id);
    evr_exec_fake_clear_faults(f);
    /* wait early: answered before the output still queued */
    evr_exec_fake_set_wait_early(f, true);
    s_create(ex, loop, "lc", "echo abc", NULL);
    s_st_t st2 = { 0 };
    s_ans_t w = { 0 };
    s_seen = &st2;
    s_seen_len = 99;
    ex->ops->attach(ex, "lc", s_out, s_head, s_done, &st2);
    CHECK(s_until(loop, &st2.heads));
    ex->ops->start(ex, "lc", NULL, NULL);
    ex->ops->wait(ex, "lc", s_on_seen, &w);
    CHECK(s_until(loop, &w.calls) && s_until(loop, &st2.dones));
    CHECK(s_seen_len == 0 && st2.len[0] == 4);
    CHECK(evr_exec_fake_violations(f, NULL) == 0);
    evr_exec_fake_destroy(&f);
    evr_loop_destroy(&loop);
}

int
main(void)
{
    EVR_TEST_RUN(test_lifecycle);
    EVR_TEST_RUN(test_shell);
    EVR_TEST_RUN(test_stop_and_pause);
    EVR_TEST_RUN(test_faults);
    EVR_TEST_RUN(test_detach_logs);
    EVR_TEST_RUN(test_workspaces);
    EVR_TEST_RUN(test_crash);
    EVR_TEST_RUN(test_late_answers);
    EVR_TEST_END();
}
