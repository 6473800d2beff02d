/*  test_engine.c: the engine against the fake executor (no podman).

    A real loop, a real LMDB store in a temporary directory, the fake
    executor (tests/support/evr_exec_fake.h) and the engine.  Each case
    submits a pipeline whose steps are tiny fake scripts, turns the engine
    until the job is done, and asserts on the events in the store and on
    the calls the fake recorded: ordering and exact output, the DAG and
    its parallel limit, step and job timeouts, retry, cancel, pause and
    resume, the early create.  Faults and recovery are in
    test_engine_faults.c.  Nothing is timed: the bounds on waits only turn
    a hang into a failure.
*/
#include <stdlib.h>
#include <unistd.h>

#include "evr_etest.h"
#include "evr_test.h"

#define S_MAX_MS 3000
#define S_HEAD EVR_ETEST_HEAD

/* ------------------------------------------------------------- ordering */

static void
test_sequential(void)
{
    evr_etest_t *t = evr_etest_start(1, "steps:\n"
                                "  - name: a\n    run: echo a1; sleep 0.01; echo a2; echo ae >&2\n"
                                "  - name: b\n    run: printf 'b-no-newline'\n"
                                "  - name: c\n    run: echo c\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_engine_job_status(t->eng, evr_etest_job(1)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_job_status(t, evr_etest_job(1)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 1);
    CHECK(evr_etest_in_order(ev, "job.accepted\n", "job.started\n", "step.started a 1\n",
                             "step.output a 1 stdout @0", "step.finished a 1 succeeded exit=0\n",
                             "step.started b 1\n", "step.finished b 1 succeeded exit=0\n",
                             "step.started c 1\n", "step.finished c 1 succeeded exit=0\n",
                             "job.finished succeeded\n", NULL));
    CHECK(evr_etest_count(ev, "step.started") == 3);
    free(ev);
    CHECK(evr_etest_output_is(t, 1, "a", 1, "stdout", "a1\na2\n"));
    CHECK(evr_etest_output_is(t, 1, "a", 1, "stderr", "ae\n"));
    CHECK(evr_etest_output_is(t, 1, "b", 1, "stdout", "b-no-newline"));
    CHECK(evr_etest_output_is(t, 1, "c", 1, "stdout", "c\n"));
    /* each unit: created, attached, then started (output from its first byte) */
    const char *steps[] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++) {
        long c = evr_etest_call_at(t, EVR_FAKE_CREATE, 1, steps[i], 1);
        long a = evr_etest_call_at(t, EVR_FAKE_ATTACH, 1, steps[i], 1);
        long s = evr_etest_call_at(t, EVR_FAKE_START, 1, steps[i], 1);
        CHECK(c >= 0 && c < a && a < s);
        CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 1, steps[i], 1) == 1);
    }
    CHECK(evr_exec_fake_find(t->fake, 0, EVR_FAKE_WS_CREATE, evr_etest_job(1))
          < evr_etest_call_at(t, EVR_FAKE_CREATE, 1, "a", 1));
    CHECK(evr_etest_call_at(t, EVR_FAKE_START, 1, "a", 1) < evr_etest_call_at(t, EVR_FAKE_START, 1, "b", 1));
    CHECK(evr_etest_call_at(t, EVR_FAKE_START, 1, "b", 1) < evr_etest_call_at(t, EVR_FAKE_START, 1, "c", 1));
    CHECK(evr_etest_clean(t, 1));
    evr_etest_destroy(&t);
}

/*  Much output in pieces: chunks of at most EVR_OUTPUT_CHUNK_MAX, exact. */
static void
test_large_output(void)
{
    evr_etest_t *t = evr_etest_new();
    size_t n = 150000;
    char *big = evr_malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char) ('a' + i % 26);
    big[n] = '\0';
    char *pat = evr_etest_units(evr_etest_job(2), "big", 1);
    evr_exec_fake_behave(t->fake, pat, &(evr_fake_behave_t) { .out = big, .err = "E", .piece = 7000 });
    free(pat);
    CHECK(evr_etest_submit(t, evr_etest_job(2), S_HEAD "steps:\n  - name: big\n    run: x\n")
          == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_output_is(t, 2, "big", 1, "stdout", big));
    CHECK(evr_etest_output_is(t, 2, "big", 1, "stderr", "E"));
    char *ev = evr_etest_events_of(t, 2);
    CHECK(evr_etest_count(ev, "step.output big 1 stdout") >= 3);
    /* no chunk over the limit */
    for (const char *p = ev; (p = strstr(p, "step.output big 1 stdout @")); p++) {
        const char *plus = strchr(p, '+');
        CHECK(plus && strtoull(plus + 1, NULL, 10) <= EVR_OUTPUT_CHUNK_MAX);
    }
    free(ev);
    free(big);
    CHECK(evr_etest_clean(t, 2));
    evr_etest_destroy(&t);
}

/*  A secret reaches the unit's environment and is masked in the store. */
static void
test_secret_masked(void)
{
    setenv("EVRUN_SECRET_TOK", "hunter2", 1);
    evr_etest_t *t = evr_etest_start(3, "secrets: [EVRUN_SECRET_TOK]\nsteps:\n"
                                "  - name: a\n    run: echo \"token=$EVRUN_SECRET_TOK.\"\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_output_is(t, 3, "a", 1, "stdout", "token=***.\n"));
    evr_etest_destroy(&t);
    unsetenv("EVRUN_SECRET_TOK");
}

/*  `executor: process` goes to the executor of that name only. */
static void
test_executor_choice(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_with_process(t);
    evr_etest_engine(t);
    CHECK(evr_etest_submit(t, evr_etest_job(4), "pipeline: p\nexecutor: process\nsteps:\n"
                                                "  - name: a\n    run: echo host\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(4)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_output_is(t, 4, "a", 1, "stdout", "host\n"));
    CHECK(evr_exec_fake_ncalls(t->fake) == 0);
    CHECK(evr_exec_fake_count(t->proc, EVR_FAKE_START, NULL) == 1);
    evr_etest_destroy(&t);
}

/* ------------------------------------------------------------------ DAG */

/*  The most steps running at once, from the job's events. */
static int
s_max_running(const char *ev)
{
    int running = 0, most = 0;
    for (const char *line = ev; *line;) {
        if (strncmp(line, "step.started ", 13) == 0 && ++running > most)
            most = running;
        if (strncmp(line, "step.finished ", 14) == 0)
            running--;
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : line + strlen(line);
    }
    return most;
}

static void
test_dag(void)
{
    evr_etest_t *t = evr_etest_start(5, "parallel: 2\nsteps:\n"
                                "  - name: prep\n    run: echo p\n"
                                "  - name: x\n    needs: [prep]\n    run: sleep 0.02\n"
                                "  - name: y\n    needs: [prep]\n    run: sleep 0.02\n"
                                "  - name: z\n    needs: [prep]\n    run: sleep 0.02\n"
                                "  - name: fin\n    needs: [x, y, z]\n    run: echo done\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(5)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 5);
    CHECK(s_max_running(ev) == 2);
    const char *mid[] = { "x", "y", "z" };
    for (int i = 0; i < 3; i++) {
        char started[64], finished[64];
        snprintf(started, sizeof started, "step.started %s 1\n", mid[i]);
        snprintf(finished, sizeof finished, "step.finished %s 1 succeeded", mid[i]);
        CHECK(evr_etest_in_order(ev, "step.finished prep 1 succeeded", started, NULL));
        CHECK(evr_etest_in_order(ev, finished, "step.started fin 1\n", NULL));
    }
    CHECK(evr_etest_output_is(t, 5, "fin", 1, "stdout", "done\n"));
    free(ev);
    CHECK(evr_etest_clean(t, 5));
    evr_etest_destroy(&t);
}

/*  A failed need: what needs it is skipped, saying why. */
static void
test_dag_failure(void)
{
    evr_etest_t *t = evr_etest_start(6, "steps:\n"
                                "  - name: x\n    run: exit 2\n"
                                "  - name: y\n    needs: [x]\n    run: echo never\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(6)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 6);
    CHECK(evr_etest_in_order(ev, "step.finished x 1 failed exit=2", "step.skipped y 0", NULL)
          || evr_etest_in_order(ev, "step.finished x 1 failed exit=2", "step.skipped y 1", NULL));
    CHECK_CONTAINS(ev, "reason=needs x, which did not succeed");
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 6, "y", 0) == 0);
    free(ev);
    CHECK(evr_etest_clean(t, 6));
    evr_etest_destroy(&t);
}

/* ------------------------------------------------------------- timeouts */

static void
test_step_timeout(void)
{
    evr_etest_t *t = evr_etest_start(7, "steps:\n"
                                "  - name: slow\n    timeout: 30ms\n    run: echo up; sleep 10\n"
                                "  - name: after\n    run: echo never\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(7)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 7);
    CHECK(evr_etest_in_order(ev, "step.finished slow 1 timed_out exit=143", NULL));
    CHECK_CONTAINS(ev, "reason=timed out after 30 ms");
    CHECK_CONTAINS(ev, "step.skipped after");
    free(ev);
    CHECK(evr_etest_output_is(t, 7, "slow", 1, "stdout", "up\n"));
    CHECK(evr_etest_ncalls(t, EVR_FAKE_STOP, 7, "slow", 1) >= 1);
    CHECK(evr_etest_clean(t, 7));
    evr_etest_destroy(&t);
}

/*  A unit that ignores SIGTERM is killed after the grace. */
static void
test_step_timeout_kill(void)
{
    evr_etest_t *t = evr_etest_start(8, "steps:\n  - name: stubborn\n    timeout: 20ms\n"
                                "    run: trap '' TERM; sleep 10\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 8);
    CHECK_CONTAINS(ev, "step.finished stubborn 1 timed_out exit=137");
    free(ev);
    CHECK(evr_etest_clean(t, 8));
    evr_etest_destroy(&t);
}

static void
test_job_timeout(void)
{
    evr_etest_t *t = evr_etest_start(9, "timeout: 40ms\nsteps:\n"
                                "  - name: a\n    run: sleep 10\n"
                                "  - name: b\n    run: echo never\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(9)) == EVR_JOB_TIMED_OUT);
    char *ev = evr_etest_events_of(t, 9);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 timed_out exit=143",
                             "job.finished timed_out", NULL));
    CHECK_CONTAINS(ev, "step.skipped b");
    CHECK_CONTAINS(ev, "reason=the job timed out");
    free(ev);
    CHECK(evr_etest_clean(t, 9));
    evr_etest_destroy(&t);
}

/* ---------------------------------------------------------------- retry */

static void
test_retry(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_behave(t, 10, "flaky", 0, &(evr_fake_behave_t) { .out = "no\n", .exit_code = 1 });
    evr_etest_behave(t, 10, "flaky", 3, &(evr_fake_behave_t) { .out = "ok\n" });
    CHECK(evr_etest_submit(t, evr_etest_job(10), S_HEAD "steps:\n  - name: flaky\n"
                           "    retry: {on: [failed], max: 2}\n    run: x\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(10)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 10);
    char *u2 = evr_etest_unit(evr_etest_job(10), "flaky", 2);
    char *starting2 = evr_asprintf("step.starting flaky 2 %s\n", u2);
    CHECK(evr_etest_in_order(ev, "step.finished flaky 1 failed exit=1", "step.queued flaky 2",
                             starting2, "step.finished flaky 2 failed exit=1",
                             "step.finished flaky 3 succeeded exit=0", "job.finished succeeded",
                             NULL));
    free(starting2);
    free(u2);
    free(ev);
    /* a new unit per attempt, each created once; output per attempt */
    for (uint32_t a = 1; a <= 3; a++)
        CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 10, "flaky", a) == 1);
    CHECK(evr_etest_output_is(t, 10, "flaky", 1, "stdout", "no\n"));
    CHECK(evr_etest_output_is(t, 10, "flaky", 3, "stdout", "ok\n"));
    evr_stepstate_t st = { 0 };
    CHECK(evr_etest_step(t, evr_etest_job(10), "flaky", &st) == EVR_STEP_SUCCEEDED);
    CHECK(st.attempt == 3);
    evr_rec_free(&evr_stepstate_type, &st);
    CHECK(evr_etest_clean(t, 10));
    evr_etest_destroy(&t);
}

/*  Attempts run out: the last failure is the step's. */
static void
test_retry_exhausted(void)
{
    evr_etest_t *t = evr_etest_start(11, "steps:\n  - name: bad\n    retry: {on: [failed], max: 1}\n"
                                 "    run: exit 5\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(11)) == EVR_JOB_FAILED);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 11, "bad", 0) == 2);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 11, "bad", 3) == 0);
    CHECK(evr_etest_clean(t, 11));
    evr_etest_destroy(&t);
}

/*  A unit that vanishes is lost; retry on lost runs it again. */
static void
test_retry_lost(void)
{
    evr_etest_t *t = evr_etest_new();
    char *p = evr_etest_units(evr_etest_job(12), "l", 1);
    evr_exec_fake_fault(t->fake, &(evr_fake_fault_t) { .op = EVR_FAKE_WAIT, .pattern = p,
                                                       .kind = EVR_FAKE_NOT_FOUND });
    free(p);
    CHECK(evr_etest_submit(t, evr_etest_job(12), S_HEAD "steps:\n  - name: l\n"
                           "    retry: {on: [lost], max: 1}\n    run: echo hi\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(12)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 12);
    CHECK(evr_etest_in_order(ev, "step.finished l 1 lost", "step.finished l 2 succeeded", NULL));
    free(ev);
    CHECK(evr_etest_output_is(t, 12, "l", 2, "stdout", "hi\n"));
    CHECK(evr_etest_clean(t, 12));
    evr_etest_destroy(&t);
}

/* --------------------------------------------------------------- cancel */

static void
test_cancel(void)
{
    evr_etest_t *t = evr_etest_start(13, "steps:\n  - name: a\n    run: echo a; sleep 10\n"
                                 "  - name: b\n    run: echo never\n");
    CHECK(evr_etest_until_event(t, 13, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(13), "test says stop", &err) == EVR_OK);
    /* committed before it acts */
    CHECK(evr_etest_has_event(t, &(evr_etest_event_t) { evr_etest_job(13),
                                                         "job.cancel_requested" }));
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(13), "again", &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(13)) == EVR_JOB_CANCELLED);
    char *ev = evr_etest_events_of(t, 13);
    CHECK(evr_etest_in_order(ev, "job.cancel_requested reason=test says stop",
                             "step.finished a 1 cancelled exit=143", "job.finished cancelled",
                             NULL));
    CHECK(evr_etest_count(ev, "job.cancel_requested") == 1);
    CHECK_CONTAINS(ev, "step.skipped b");
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 13, "b", 0) <= 1);   /* early create, then removed */
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 13, "b", 0) == 0);
    free(ev);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_STOP, 13, "a", 1) >= 1);
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(13), "late", &err) == EVR_ERR_STATE);
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(99), "who", &err) == EVR_ERR_NOTFOUND);
    CHECK(evr_etest_clean(t, 13));
    evr_etest_destroy(&t);
}

/* --------------------------------------------------------- pause, resume */

static void
test_pause_resume(void)
{
    evr_etest_t *t = evr_etest_start(14, "steps:\n  - name: a\n    run: echo a1; sleep 0.04; echo a2\n"
                                 "  - name: b\n    run: echo b\n");
    CHECK(evr_etest_until_event(t, 14, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_resume(t->eng, evr_etest_job(14), &err) == EVR_ERR_STATE);
    CHECK(evr_engine_pause(t->eng, evr_etest_job(14), &err) == EVR_OK);
    CHECK(evr_engine_pause(t->eng, evr_etest_job(14), &err) == EVR_ERR_STATE);
    char *ua = evr_etest_unit(evr_etest_job(14), "a", 1);
    CHECK(evr_etest_until(t, evr_etest_called,
                          &(evr_etest_call_t) { EVR_FAKE_PAUSE, ua, 1 }, S_MAX_MS));
    evr_etest_turns(t, 80);
    /* frozen: its sleep did not end, nothing else began */
    CHECK(evr_exec_fake_state(t->fake, ua, NULL) == EVR_EXEC_PAUSED);
    CHECK(evr_etest_step(t, evr_etest_job(14), "a", NULL) == EVR_STEP_RUNNING);
    CHECK(evr_etest_job_status(t, evr_etest_job(14)) == EVR_JOB_PAUSED);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 14, "b", 0) == 0);
    CHECK(evr_engine_resume(t->eng, evr_etest_job(14), &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_RESUME, ua) == 1);
    CHECK(evr_etest_job_status(t, evr_etest_job(14)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 14);
    CHECK(evr_etest_in_order(ev, "job.paused", "job.resumed", "step.finished a 1 succeeded",
                             "step.started b 1", NULL));
    free(ev);
    CHECK(evr_etest_output_is(t, 14, "a", 1, "stdout", "a1\na2\n"));
    free(ua);
    CHECK(evr_etest_clean(t, 14));
    evr_etest_destroy(&t);
}

/*  A pause while a step's start is under way holds the start. */
static void
test_pause_holds_start(void)
{
    evr_etest_t *t = evr_etest_new();
    char *pa = evr_etest_units(evr_etest_job(15), "a", 1);
    evr_exec_fake_fault(t->fake, &(evr_fake_fault_t) { .op = EVR_FAKE_ATTACH, .pattern = pa,
                                                       .kind = EVR_FAKE_HOLD, .times = 1 });
    CHECK(evr_etest_submit(t, evr_etest_job(15), S_HEAD "steps:\n  - name: a\n    run: echo a\n")
          == EVR_OK);
    CHECK(evr_etest_until(t, evr_etest_called,
                          &(evr_etest_call_t) { EVR_FAKE_ATTACH, pa, 1 }, S_MAX_MS));
    evr_err_t err;
    CHECK(evr_engine_pause(t->eng, evr_etest_job(15), &err) == EVR_OK);
    CHECK(evr_exec_fake_release(t->fake, EVR_FAKE_ATTACH, pa) == 1);
    evr_etest_turns(t, 40);
    CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_START, pa) == 0);
    CHECK(evr_engine_resume(t->eng, evr_etest_job(15), &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_START, pa) == 1);
    CHECK(evr_etest_job_status(t, evr_etest_job(15)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_output_is(t, 15, "a", 1, "stdout", "a\n"));
    free(pa);
    CHECK(evr_etest_clean(t, 15));
    evr_etest_destroy(&t);
}

/* ---------------------------------------------------------- early create */

static void
test_early_create(void)
{
    evr_etest_t *t = evr_etest_start(16, "steps:\n  - name: a\n    run: sleep 0.03\n"
                                 "  - name: b\n    run: echo b\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 16);
    /* b's intent and unit came while a ran; its start after a ended */
    CHECK(evr_etest_in_order(ev, "step.started a 1", "step.starting b 1",
                             "step.finished a 1 succeeded", "step.started b 1", NULL));
    free(ev);
    CHECK(evr_etest_call_at(t, EVR_FAKE_CREATE, 16, "b", 1) < evr_etest_call_at(t, EVR_FAKE_REMOVE, 16, "a", 1));
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 16, "b", 1) == 1);
    CHECK(evr_etest_output_is(t, 16, "b", 1, "stdout", "b\n"));
    CHECK(evr_etest_clean(t, 16));
    evr_etest_destroy(&t);
}

int
main(void)
{
    EVR_TEST_RUN(test_sequential);
    EVR_TEST_RUN(test_large_output);
    EVR_TEST_RUN(test_secret_masked);
    EVR_TEST_RUN(test_executor_choice);
    EVR_TEST_RUN(test_dag);
    EVR_TEST_RUN(test_dag_failure);
    EVR_TEST_RUN(test_step_timeout);
    EVR_TEST_RUN(test_step_timeout_kill);
    EVR_TEST_RUN(test_job_timeout);
    EVR_TEST_RUN(test_retry);
    EVR_TEST_RUN(test_retry_exhausted);
    EVR_TEST_RUN(test_retry_lost);
    EVR_TEST_RUN(test_cancel);
    EVR_TEST_RUN(test_pause_resume);
    EVR_TEST_RUN(test_pause_holds_start);
    EVR_TEST_RUN(test_early_create);
    EVR_TEST_END();
}
