/*  test_engine_late.c: the engine when its executor's answers come late
    or never: an answer held while the job is cancelled and then let come,
    the answer to a start or create that comes after the cancel, output
    before the answer to its start, and calls that never answer while the
    job times out or is cancelled.  Every job must still end, in the state
    that calls for, with its reason stored, and leave no unit behind.  The
    other faults of the executor are in test_engine_faults.c.
*/
#include <stdlib.h>

#include "evr_etest.h"
#include "evr_test.h"

#define S_MAX_MS 30000   /* a bound for a failing test only: ASan on a loaded machine is slow */

/* --------------------------------------------------- late after a cancel */

/*  An answer held while the job is cancelled, then let come (late): the
    job ends cancelled, and what the late answer made is removed. */
static void
s_late_kind(int n, evr_fake_op_t op, const char *step, evr_fake_kind_t kind, const char *a_run)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, n, step, 1, (evr_fake_fault_t) { .op = op, .kind = kind });
    char *yaml = evr_asprintf("%ssteps:\n  - name: a\n    run: %s\n  - name: b\n    run: echo b\n",
                              EVR_ETEST_HEAD, a_run);
    CHECK(evr_etest_submit(t, evr_etest_job(n), yaml) == EVR_OK);
    free(yaml);
    CHECK(evr_etest_until_call(t, op, n, step, 1));
    evr_etest_turns(t, 10);
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(n), "late", false, &err) == EVR_OK);
    evr_etest_turns(t, 20);
    char *p = evr_etest_units(evr_etest_job(n), step, 1);
    CHECK(evr_exec_fake_release(t->fake, op, p) >= 1);
    free(p);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(n)) == EVR_JOB_CANCELLED);
    char *ev = evr_etest_events_of(t, n);
    CHECK_CONTAINS(ev, "job.finished cancelled");
    CHECK(evr_etest_count(ev, "step.finished b 1 succeeded") == 0);
    free(ev);
    CHECK(evr_etest_clean(t, n));
    evr_etest_destroy(&t);
}

static void
s_late(int n, evr_fake_op_t op, const char *step)
{
    s_late_kind(n, op, step, EVR_FAKE_HOLD, "echo a; sleep 0.05");
}

static void
test_late_create(void)
{
    s_late(44, EVR_FAKE_CREATE, "a");
}

static void
test_late_start(void)
{
    s_late(45, EVR_FAKE_START, "a");
}

static void
test_late_attach(void)
{
    s_late(46, EVR_FAKE_ATTACH, "a");
}

static void
test_late_early_create(void)
{
    s_late(47, EVR_FAKE_CREATE, "b");
}

/*  The unit was started (it runs, silent) but the answer to its start
    comes after the cancel: the engine learns then that it runs, and stops
    it. */
static void
test_late_start_answer(void)
{
    s_late_kind(54, EVR_FAKE_START, "a", EVR_FAKE_HOLD_ANSWER, "sleep 10");
}

/*  The create took effect but its answer comes after the cancel. */
static void
test_late_create_answer(void)
{
    s_late_kind(55, EVR_FAKE_CREATE, "a", EVR_FAKE_HOLD_ANSWER, "sleep 10");
}

/*  Output comes before the answer to the start: step.started first, once. */
static void
test_output_before_start_answer(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, 56, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_START,
                                                        .kind = EVR_FAKE_LATE, .ms = 40 });
    CHECK(evr_etest_submit(t, evr_etest_job(56), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo first\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(56)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 56);
    CHECK(evr_etest_in_order(ev, "step.started a 1", "step.output a 1 stdout @0+6",
                             "step.finished a 1 succeeded", NULL));
    CHECK(evr_etest_count(ev, "step.started") == 1);
    free(ev);
    CHECK(evr_etest_output_is(t, 56, "a", 1, "stdout", "first\n"));
    CHECK(evr_etest_clean(t, 56));
    evr_etest_destroy(&t);
}

/*  The workspace's create answers after the cancel. */
static void
test_late_workspace(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_exec_fake_fault(t->fake, &(evr_fake_fault_t) { .op = EVR_FAKE_WS_CREATE,
                                                       .kind = EVR_FAKE_HOLD });
    CHECK(evr_etest_submit(t, evr_etest_job(48), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a\n") == EVR_OK);
    evr_etest_turns(t, 10);
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(48), "before it began", false, &err) == EVR_OK);
    CHECK(evr_exec_fake_release(t->fake, EVR_FAKE_WS_CREATE, NULL) == 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(48)) == EVR_JOB_CANCELLED);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 48, "a", 0) == 0);
    CHECK(evr_etest_clean(t, 48));
    evr_etest_destroy(&t);
}

/*  A cancel while a create waits to retake a name: the job ends
    cancelled, and nothing of it stays. */
static void
test_cancel_during_retake(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, 57, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_CREATE,
                                                        .kind = EVR_FAKE_EXISTS, .times = 1 });
    CHECK(evr_etest_submit(t, evr_etest_job(57), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a; sleep 10\n") == EVR_OK);
    CHECK(evr_etest_until_call(t, EVR_FAKE_INSPECT, 57, "a", 1));
    evr_etest_turns(t, 5);
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(57), "while retaking", false, &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(57)) == EVR_JOB_CANCELLED);
    CHECK(evr_etest_clean(t, 57));
    evr_etest_destroy(&t);
}

/*  A create that never answers: the job's timeout, or a cancel, still
    ends the job (recorded), whatever becomes of the call. */
static void
s_create_never_answers(int n, const char *head, bool cancel, const char *want)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, n, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_CREATE,
                                                       .kind = EVR_FAKE_HOLD });
    char *yaml = evr_asprintf("%s%ssteps:\n  - name: a\n    run: echo a\n", EVR_ETEST_HEAD, head);
    CHECK(evr_etest_submit(t, evr_etest_job(n), yaml) == EVR_OK);
    free(yaml);
    CHECK(evr_etest_until_call(t, EVR_FAKE_CREATE, n, "a", 1));
    evr_err_t err;
    if (cancel)
        CHECK(evr_engine_cancel(t->eng, evr_etest_job(n), "no answer", false, &err) == EVR_OK);
    CHECK(evr_etest_until_event(t, n, want));
    CHECK(evr_engine_active(t->eng) == 0);
    evr_etest_destroy(&t);
}

static void
test_timeout_create_never_answers(void)
{
    s_create_never_answers(58, "timeout: 40ms\n", false, "job.finished timed_out");
}

static void
test_cancel_create_never_answers(void)
{
    s_create_never_answers(59, "", true, "job.finished cancelled");
}

/*  A call of a's start (op) that does not answer while the job times out
    (head: "timeout: 40ms\n") or is cancelled: the job ends at once (a
    ends as want says, naming the call), then the answer comes, and
    nothing of the job stays. */
static void
s_start_call_held(int n, evr_fake_op_t op, const char *head, bool cancel, const char *want,
                  const char *call)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, n, "a", 1, (evr_fake_fault_t) { .op = op, .kind = EVR_FAKE_HOLD });
    char *yaml = evr_asprintf("%s%ssteps:\n  - name: a\n    run: echo a\n  - name: b\n"
                              "    run: echo b\n", EVR_ETEST_HEAD, head);
    CHECK(evr_etest_submit(t, evr_etest_job(n), yaml) == EVR_OK);
    free(yaml);
    CHECK(evr_etest_until_call(t, op, n, "a", 1));
    evr_err_t err;
    if (cancel)
        CHECK(evr_engine_cancel(t->eng, evr_etest_job(n), "no answer", false, &err) == EVR_OK);
    CHECK(evr_etest_until_event(t, n, "job.finished"));
    CHECK(evr_engine_active(t->eng) == 0);
    char *ev = evr_etest_events_of(t, n);
    CHECK(evr_etest_in_order(ev, want, call, "step.skipped b", "job.finished", NULL));
    CHECK(evr_etest_count(ev, "step.started") == 0);
    free(ev);
    /* the job's cleanup waits for the answer: its workspace is still there */
    if (op == EVR_FAKE_CREATE)
        CHECK(evr_exec_fake_ws_exists(t->fake, evr_etest_job(n)));
    char *ua = evr_etest_unit(evr_etest_job(n), "a", 1);
    CHECK(evr_exec_fake_release(t->fake, op, ua) == 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_START, ua) == (op == EVR_FAKE_START));
    free(ua);
    CHECK(evr_etest_clean(t, n));
    evr_etest_destroy(&t);
}

static void
test_timeout_create_answers_late(void)
{
    s_start_call_held(75, EVR_FAKE_CREATE, "timeout: 40ms\n", false,
                      "step.finished a 1 timed_out exit=-1", "the create had not answered");
}

static void
test_timeout_attach_never_answers(void)
{
    s_start_call_held(76, EVR_FAKE_ATTACH, "timeout: 40ms\n", false,
                      "step.finished a 1 timed_out exit=-1", "the attach had not answered");
}

static void
test_cancel_start_never_answers(void)
{
    s_start_call_held(77, EVR_FAKE_START, "", true, "step.finished a 1 cancelled exit=-1",
                      "the start had not answered");
}

int
main(void)
{
    EVR_TEST_RUN(test_late_create);
    EVR_TEST_RUN(test_late_start);
    EVR_TEST_RUN(test_late_attach);
    EVR_TEST_RUN(test_late_early_create);
    EVR_TEST_RUN(test_late_start_answer);
    EVR_TEST_RUN(test_late_create_answer);
    EVR_TEST_RUN(test_output_before_start_answer);
    EVR_TEST_RUN(test_late_workspace);
    EVR_TEST_RUN(test_cancel_during_retake);
    EVR_TEST_RUN(test_timeout_create_never_answers);
    EVR_TEST_RUN(test_cancel_create_never_answers);
    EVR_TEST_RUN(test_timeout_create_answers_late);
    EVR_TEST_RUN(test_timeout_attach_never_answers);
    EVR_TEST_RUN(test_cancel_start_never_answers);
    EVR_TEST_END();
}
