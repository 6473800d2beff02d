/*  test_engine_recover.c: the engine when its runner dies.

    A first engine is destroyed mid-run (its calls in flight are lost),
    and a second one over the same store and the same fake units
    (tests/support/evr_exec_fake.h) takes the job up again and finishes it
    with every output byte stored once: a unit that runs, has exited, was
    only created, whose create was lost or carried out, that is gone,
    paused or cancelled; recovered twice; an inspect or a log read that
    fails or drops.
*/
#include <stdlib.h>
#include <unistd.h>

#include "evr_etest.h"
#include "evr_test.h"

#define S_MAX_MS 30000   /* a bound for a failing test only: ASan on a loaded machine is slow */

#define S_TWO_STEPS EVR_ETEST_HEAD "steps:\n"                                                   \
    "  - name: a\n    run: echo one; sleep 0.06; echo two\n"                                   \
    "  - name: b\n    run: echo b\n"

/*  A second engine takes up what the first left: recover, run to the end. */
static void
s_recover(evr_etest_t *t, uint32_t want_jobs)
{
    evr_etest_engine(t);
    uint32_t jobs = 0;
    evr_err_t err;
    CHECK(evr_engine_recover(t->eng, &jobs, &err) == EVR_OK);
    CHECK(jobs == want_jobs);
}

/*  Killed while a runs (some of its output stored): reattached, its
    output whole and each byte once. */
static void
test_recover_running(void)
{
    evr_etest_t *t = evr_etest_new();
    CHECK(evr_etest_submit(t, evr_etest_job(60), S_TWO_STEPS) == EVR_OK);
    CHECK(evr_etest_until_event(t, 60, "step.output a 1 stdout"));
    evr_etest_kill(t, false);
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(60)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 60);
    CHECK_CONTAINS(ev, "step.recovered a 1 reattached");
    free(ev);
    CHECK(evr_etest_output_is(t, 60, "a", 1, "stdout", "one\ntwo\n"));
    CHECK(evr_etest_output_is(t, 60, "b", 1, "stdout", "b\n"));
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 60, "a", 1) == 1);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 60, "b", 1) == 1);
    CHECK(evr_etest_clean(t, 60));
    evr_etest_destroy(&t);
}

/*  Killed when a had exited but its end was not known (its wait held):
    collected, exit code and output exact. */
static void
test_recover_exited(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, 61, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_WAIT,
                                                        .kind = EVR_FAKE_HOLD });
    CHECK(evr_etest_submit(t, evr_etest_job(61), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo one; echo two; exit 3\n") == EVR_OK);
    char *ua = evr_etest_unit(evr_etest_job(61), "a", 1);
    CHECK(evr_etest_until_event(t, 61, "step.started a 1"));
    evr_etest_turns(t, 20);
    CHECK(evr_exec_fake_state(t->fake, ua, NULL) == EVR_EXEC_EXITED);
    evr_etest_kill(t, false);
    evr_exec_fake_clear_faults(t->fake);
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 61);
    CHECK_CONTAINS(ev, "step.recovered a 1 collected");
    CHECK_CONTAINS(ev, "step.finished a 1 failed exit=3");
    free(ev);
    CHECK(evr_etest_output_is(t, 61, "a", 1, "stdout", "one\ntwo\n"));
    CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_START, ua) == 1);
    free(ua);
    CHECK(evr_etest_clean(t, 61));
    evr_etest_destroy(&t);
}

/*  Killed with a's unit created, its start not sent: started now. */
static void
test_recover_created(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, 62, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_START,
                                                        .kind = EVR_FAKE_HOLD });
    CHECK(evr_etest_submit(t, evr_etest_job(62), S_TWO_STEPS) == EVR_OK);
    CHECK(evr_etest_until_call(t, EVR_FAKE_START, 62, "a", 1));
    evr_etest_kill(t, false);
    evr_exec_fake_clear_faults(t->fake);
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(62)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 62);
    CHECK_CONTAINS(ev, "step.recovered a 1 restarted");
    free(ev);
    CHECK(evr_etest_output_is(t, 62, "a", 1, "stdout", "one\ntwo\n"));
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 62, "a", 1) == 1);
    CHECK(evr_etest_clean(t, 62));
    evr_etest_destroy(&t);
}

/*  Killed with a's create in flight: lost (created anew), or carried out
    by the backend after the runner died (taken as it is). */
static void
s_recover_create(int n, bool carried_out)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, n, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_CREATE,
                                                       .kind = EVR_FAKE_HOLD });
    CHECK(evr_etest_submit(t, evr_etest_job(n), S_TWO_STEPS) == EVR_OK);
    CHECK(evr_etest_until_call(t, EVR_FAKE_CREATE, n, "a", 1));
    evr_exec_fake_clear_faults(t->fake);
    evr_etest_kill(t, carried_out);
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(n)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, n);
    CHECK_CONTAINS(ev, carried_out ? "step.recovered a 1 restarted" : "step.recovered a 1 created");
    free(ev);
    CHECK(evr_etest_output_is(t, n, "a", 1, "stdout", "one\ntwo\n"));
    CHECK(evr_etest_clean(t, n));
    evr_etest_destroy(&t);
}

static void
test_recover_create_lost(void)
{
    s_recover_create(63, false);
}

static void
test_recover_create_carried_out(void)
{
    s_recover_create(64, true);
}

/*  Killed while a ran, and a's unit removed meanwhile: lost. */
static void
test_recover_gone(void)
{
    evr_etest_t *t = evr_etest_new();
    CHECK(evr_etest_submit(t, evr_etest_job(65), S_TWO_STEPS) == EVR_OK);
    CHECK(evr_etest_until_event(t, 65, "step.output a 1 stdout"));
    evr_etest_kill(t, false);
    char *ua = evr_etest_unit(evr_etest_job(65), "a", 1);
    t->execs[0]->ops->remove(t->execs[0], ua, NULL, NULL);
    evr_loop_once(t->loop, 10);
    CHECK(evr_exec_fake_state(t->fake, ua, NULL) == EVR_EXEC_ABSENT);
    free(ua);
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(65)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 65);
    CHECK(evr_etest_in_order(ev, "step.recovered a 1 lost", "step.finished a 1 lost",
                             "step.skipped b", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 65));
    evr_etest_destroy(&t);
}

/*  A job without a workspace (its one unit has its own), killed while
    its step runs: reattached and finished, still without one. */
static void
test_recover_no_workspace(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_exec_fake_set_own_workspace(t->fake, true);
    CHECK(evr_etest_submit(t, evr_etest_job(75), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo one; sleep 0.05; echo two\n") == EVR_OK);
    CHECK(evr_etest_until_event(t, 75, "step.output a 1 stdout"));
    evr_etest_kill(t, false);
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(75)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 75);
    CHECK_CONTAINS(ev, "step.recovered a 1 reattached");
    free(ev);
    CHECK(evr_etest_output_is(t, 75, "a", 1, "stdout", "one\ntwo\n"));
    CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_WS_CREATE, evr_etest_job(75)) == 0);
    CHECK(evr_etest_clean(t, 75));
    evr_etest_destroy(&t);
}

/*  Killed while paused: it stays paused (no step starts) until resumed. */
static void
test_recover_paused(void)
{
    evr_etest_t *t = evr_etest_new();
    CHECK(evr_etest_submit(t, evr_etest_job(66), S_TWO_STEPS) == EVR_OK);
    CHECK(evr_etest_until_event(t, 66, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_pause(t->eng, evr_etest_job(66), &err) == EVR_OK);
    CHECK(evr_etest_until_call(t, EVR_FAKE_PAUSE, 66, "a", 1));
    evr_etest_turns(t, 10);
    evr_etest_kill(t, false);
    s_recover(t, 1);
    evr_etest_turns(t, 100);
    char *ua = evr_etest_unit(evr_etest_job(66), "a", 1);
    CHECK(evr_exec_fake_state(t->fake, ua, NULL) == EVR_EXEC_PAUSED);
    CHECK(evr_etest_job_status(t, evr_etest_job(66)) == EVR_JOB_PAUSED);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 66, "b", 0) == 0);
    CHECK(evr_engine_resume(t->eng, evr_etest_job(66), &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(66)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_output_is(t, 66, "a", 1, "stdout", "one\ntwo\n"));
    free(ua);
    CHECK(evr_etest_clean(t, 66));
    evr_etest_destroy(&t);
}

/*  Killed right after a cancel was committed (its stop lost): the second
    engine carries the cancel out. */
static void
test_recover_cancelled(void)
{
    evr_etest_t *t = evr_etest_new();
    CHECK(evr_etest_submit(t, evr_etest_job(67), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo one; sleep 10\n"
                           "  - name: b\n    run: echo b\n") == EVR_OK);
    CHECK(evr_etest_until_event(t, 67, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(67), "going down", false, &err) == EVR_OK);
    evr_etest_kill(t, false);
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(67)) == EVR_JOB_CANCELLED);
    char *ev = evr_etest_events_of(t, 67);
    CHECK(evr_etest_in_order(ev, "job.cancel_requested", "step.recovered a 1 reattached",
                             "step.finished a 1 cancelled", "job.finished cancelled", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 67));
    evr_etest_destroy(&t);
}

/*  Two engines over one store, the first killed twice in a row. */
static void
test_recover_twice(void)
{
    evr_etest_t *t = evr_etest_new();
    CHECK(evr_etest_submit(t, evr_etest_job(68), S_TWO_STEPS) == EVR_OK);
    CHECK(evr_etest_until_event(t, 68, "step.output a 1 stdout"));
    evr_etest_kill(t, false);
    s_recover(t, 1);
    evr_etest_turns(t, 10);
    evr_etest_kill(t, false);
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(68)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_output_is(t, 68, "a", 1, "stdout", "one\ntwo\n"));
    CHECK(evr_etest_output_is(t, 68, "b", 1, "stdout", "b\n"));
    CHECK(evr_etest_clean(t, 68));
    evr_etest_destroy(&t);
}

/*  Recovery cannot inspect a unit: the step is lost, the job ends, and
    the unit does not stay. */
static void
test_recover_inspect_fails(void)
{
    evr_etest_t *t = evr_etest_new();
    CHECK(evr_etest_submit(t, evr_etest_job(69), S_TWO_STEPS) == EVR_OK);
    CHECK(evr_etest_until_event(t, 69, "step.output a 1 stdout"));
    evr_etest_kill(t, false);
    evr_etest_fault(t, 69, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_INSPECT,
                                                        .kind = EVR_FAKE_FAIL,
                                                        .msg = "service busy" });
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(69)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 69);
    CHECK(evr_etest_in_order(ev, "step.recovered a 1 lost", "step.finished a 1 lost",
                             "service busy", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 69));
    evr_etest_destroy(&t);
}

/*  Recovery's reads of a running unit's log fail now and then, or break
    mid-way: what is stored stays exact, each byte once. */
static void
s_recover_logs(int n, evr_fake_fault_t fault)
{
    evr_etest_t *t = evr_etest_new();
    CHECK(evr_etest_submit(t, evr_etest_job(n), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo one; sleep 0.02; echo two; sleep 0.4;"
                           " echo three\n") == EVR_OK);
    CHECK(evr_etest_until_event(t, n, "step.output a 1 stdout"));
    evr_etest_kill(t, false);
    evr_etest_fault(t, n, "a", 1, fault);
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    size_t len;
    bool exact;
    const char *all = "one\ntwo\nthree\n";
    char *got = evr_etest_output(t, evr_etest_job(n), "a", 1, "stdout", &len, &exact);
    CHECK(exact && len <= strlen(all) && memcmp(got, all, len) == 0);
    evr_stepstate_t st = { 0 };
    evr_step_status_t s = evr_etest_step(t, evr_etest_job(n), "a", &st);
    if (len < strlen(all)) {
        fprintf(stderr, "  (stored %zu of %zu bytes, step %s: %s)\n", len, strlen(all),
                evr_step_status_name(s), st.reason ? st.reason : "-");
        CHECK(s != EVR_STEP_SUCCEEDED && st.reason);
    }
    evr_rec_free(&evr_stepstate_type, &st);
    free(got);
    CHECK(evr_etest_clean(t, n));
    evr_etest_destroy(&t);
}

static void
test_recover_logs_fail(void)
{
    s_recover_logs(70, (evr_fake_fault_t) { .op = EVR_FAKE_LOGS, .kind = EVR_FAKE_FAIL,
                                            .times = 1 });
}

static void
test_recover_logs_drop(void)
{
    s_recover_logs(71, (evr_fake_fault_t) { .op = EVR_FAKE_LOGS, .kind = EVR_FAKE_DROP,
                                            .after_bytes = 2 });
}

/*  Units and workspaces a dead runner left of finished jobs are swept by
    the next one's recovery; a sweep whose calls fail does no harm. */
static void
test_recover_sweep(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_exec_fake_fault(t->fake, &(evr_fake_fault_t) { .op = EVR_FAKE_REMOVE,
                                                       .kind = EVR_FAKE_FAIL });
    CHECK(evr_etest_submit(t, evr_etest_job(72), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(!evr_etest_clean(t, 72));   /* the unit and the workspace stayed */
    evr_etest_kill(t, false);
    evr_exec_fake_clear_faults(t->fake);
    evr_exec_fake_fault(t->fake, &(evr_fake_fault_t) { .op = EVR_FAKE_WS_LIST,
                                                       .kind = EVR_FAKE_FAIL, .times = 1 });
    s_recover(t, 0);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_exec_fake_units(t->fake, NULL) == 0);
    evr_etest_kill(t, false);   /* the third runner: the workspace list answers */
    s_recover(t, 0);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_clean(t, 72));
    evr_etest_destroy(&t);
}

int
main(void)
{
    EVR_TEST_RUN(test_recover_running);
    EVR_TEST_RUN(test_recover_exited);
    EVR_TEST_RUN(test_recover_created);
    EVR_TEST_RUN(test_recover_create_lost);
    EVR_TEST_RUN(test_recover_create_carried_out);
    EVR_TEST_RUN(test_recover_gone);
    EVR_TEST_RUN(test_recover_no_workspace);
    EVR_TEST_RUN(test_recover_paused);
    EVR_TEST_RUN(test_recover_cancelled);
    EVR_TEST_RUN(test_recover_twice);
    EVR_TEST_RUN(test_recover_inspect_fails);
    EVR_TEST_RUN(test_recover_logs_fail);
    EVR_TEST_RUN(test_recover_logs_drop);
    EVR_TEST_RUN(test_recover_sweep);
    EVR_TEST_END();
}
