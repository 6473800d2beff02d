/*  test_engine_flow.c: control flow per step against the fake executor.

    allow_failure (the job does not fail, dependents run, step.finished
    says allowed), `when: on_success | on_failure | always` (after a
    failure, a cancel, a job timeout; the grace of an `always` step after
    a cancel), the pipeline's on_error (runs once the job failed, with
    EVRUN_FAILED_STEPS and a reason per failed step; not after a success
    nor a cancel), and a runner killed while an `always` step or on_error
    runs.  Nothing is timed: the bounds on waits only turn a hang into a
    failure.
*/
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_etest.h"
#include "evr_test.h"

#define S_MAX_MS 30000   /* a bound for a failing test only: ASan on a loaded machine is slow */
#define S_HEAD EVR_ETEST_HEAD

/* -------------------------------------------------------- allow_failure */

/*  A failure allowed: the next step runs, the job succeeds, the event and
    the job's state say allowed. */
static void
test_allow_failure_sequence(void)
{
    evr_etest_t *t = evr_etest_start(1, "steps:\n"
                                     "  - name: lint\n    run: echo l; exit 3\n"
                                     "    allow_failure: true\n"
                                     "  - name: test\n    run: echo t\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(1)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_engine_job_status(t->eng, evr_etest_job(1)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 1);
    CHECK(evr_etest_in_order(ev, "step.finished lint 1 failed exit=3 allowed\n",
                             "step.finished test 1 succeeded exit=0\n",
                             "job.finished succeeded\n", NULL));
    free(ev);
    evr_stepstate_t st = { 0 };
    CHECK(evr_etest_step(t, evr_etest_job(1), "lint", &st) == EVR_STEP_FAILED);
    CHECK(st.allowed);
    evr_rec_free(&evr_stepstate_type, &st);
    CHECK(evr_etest_clean(t, 1));
    evr_etest_destroy(&t);
}

/*  In a DAG: a step that needs an allowed failure runs; a timeout is
    allowed too; a failure without allow_failure still fails the job. */
static void
test_allow_failure_dag(void)
{
    evr_etest_t *t = evr_etest_start(2, "steps:\n"
                                     "  - name: a\n    run: sleep 5\n    timeout: 30ms\n"
                                     "    allow_failure: true\n"
                                     "  - name: b\n    run: echo b\n    needs: [a]\n"
                                     "  - name: c\n    run: exit 1\n    needs: [b]\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 2);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 timed_out", "allowed",
                             "step.finished b 1 succeeded exit=0\n",
                             "step.finished c 1 failed exit=1\n",
                             "job.finished failed reason=step c failed (exit 1)\n", NULL));
    free(ev);
    CHECK(evr_etest_job_status(t, evr_etest_job(2)) == EVR_JOB_FAILED);
    CHECK(evr_etest_clean(t, 2));
    evr_etest_destroy(&t);
}

/*  needs: [] on every step, none needing another: a DAG all the same
    (the file's loader sets the spec's dag), so both start at once, as in
    GitLab: b fails while a still sleeps, and a is stopped.  In file order
    a would sleep its 600 s first. */
static void
test_needs_empty_dag(void)
{
    evr_etest_t *t = evr_etest_start(3, "steps:\n"
                                     "  - name: a\n    run: sleep 600\n    needs: []\n"
                                     "  - name: b\n    run: exit 4\n    needs: []\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 3);
    CHECK(strstr(ev, "step.started a") != NULL);
    CHECK(evr_etest_in_order(ev, "step.finished b 1 failed exit=4\n", "step.finished a 1 ",
                             "job.finished failed", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 3));
    evr_etest_destroy(&t);
}

/*  A failed job's reason names its first failed step (file order), how
    it ended and why, and how many more failed: what `status` shows. */
static void
test_failed_reason(void)
{
    evr_etest_t *t = evr_etest_start(4, "on_failure: finish\nsteps:\n"
                                     "  - name: a\n    run: sleep 5\n    timeout: 30ms\n"
                                     "  - name: b\n    run: exit 4\n    needs: []\n"
                                     "  - name: c\n    run: exit 5\n    needs: [b]\n"
                                     "    allow_failure: true\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 4);
    CHECK_CONTAINS(ev, "job.finished failed reason=step a timed_out (exit ");
    CHECK_CONTAINS(ev, ") (and 1 more step): timed out after 30 ms\n");
    free(ev);
    CHECK(evr_etest_clean(t, 4));
    evr_etest_destroy(&t);
}

/*  A command the image lacks (the shell's 127) fails its step with a
    reason that says where to look; the job's reason carries it. */
static void
test_command_not_found(void)
{
    evr_etest_t *t = evr_etest_start(5, "steps:\n  - name: a\n    run: make all\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 5);
    CHECK_CONTAINS(ev, "step.finished a 1 failed exit=127 reason=a command was not found: is "
                       "it installed in the image ");
    CHECK_CONTAINS(ev, "? (the step's output names it)\n");
    CHECK_CONTAINS(ev, "job.finished failed reason=step a failed (exit 127): a command was "
                       "not found");
    free(ev);
    CHECK(evr_etest_output_is(t, 5, "a", 1, "stderr", "sh: make: not found\n"));
    CHECK(evr_etest_clean(t, 5));
    evr_etest_destroy(&t);
}

/* ----------------------------------------------------------------- when */

/*  After a failure: on_success steps are skipped, on_failure and always
    steps run (knowing what failed); the job fails. */
static void
test_when_after_failure(void)
{
    evr_etest_t *t = evr_etest_start(3, "steps:\n"
                                     "  - name: build\n    run: exit 2\n"
                                     "  - name: test\n    run: echo never\n"
                                     "  - name: report\n    when: on_failure\n"
                                     "    run: echo \"$EVRUN_FAILED_STEPS:$EVRUN_FAILED_REASON_BUILD\"\n"
                                     "  - name: clean\n    when: always\n    run: echo clean\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(3)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 3);
    CHECK(evr_etest_in_order(ev, "step.finished build 1 failed exit=2\n",
                             "step.skipped test 0 reason=step build before it did not succeed\n",
                             "step.finished report 1 succeeded", "step.finished clean 1 succeeded",
                             "job.finished failed reason=step build failed (exit 2)\n", NULL));
    free(ev);
    CHECK(evr_etest_output_is(t, 3, "report", 1, "stdout", "build:failed (exit 2)\n"));
    CHECK(evr_etest_output_is(t, 3, "clean", 1, "stdout", "clean\n"));
    CHECK(evr_etest_clean(t, 3));
    evr_etest_destroy(&t);
}

/*  Nothing failed: an on_failure step is skipped saying why, always and
    on_success steps after it run. */
static void
test_when_after_success(void)
{
    evr_etest_t *t = evr_etest_start(4, "steps:\n"
                                     "  - name: a\n    run: echo a\n"
                                     "  - name: report\n    when: on_failure\n    run: echo r\n"
                                     "  - name: b\n    run: echo b\n"
                                     "  - name: clean\n    when: always\n    run: echo c\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(4)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 4);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 succeeded",
                             "step.skipped report 0 reason=when: on_failure, and no step failed",
                             "step.finished b 1 succeeded", "step.finished clean 1 succeeded",
                             "job.finished succeeded", NULL));
    free(ev);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 4, "report", 0) == 0);
    CHECK(evr_etest_clean(t, 4));
    evr_etest_destroy(&t);
}

/*  A cancel: the running step stops, the on_success and on_failure
    steps are skipped, the always step runs; the job is cancelled. */
static void
test_when_always_after_cancel(void)
{
    evr_etest_t *t = evr_etest_start(5, "steps:\n"
                                     "  - name: a\n    run: echo a; sleep 10\n"
                                     "  - name: b\n    run: echo never\n"
                                     "  - name: report\n    when: on_failure\n    run: echo r\n"
                                     "  - name: clean\n    when: always\n    run: echo clean\n");
    CHECK(evr_etest_until_event(t, 5, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(5), "stop", false, &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(5)) == EVR_JOB_CANCELLED);
    char *ev = evr_etest_events_of(t, 5);
    CHECK(evr_etest_in_order(ev, "job.cancel_requested", "step.finished a 1 cancelled",
                             "step.finished clean 1 succeeded", "job.finished cancelled", NULL));
    CHECK_CONTAINS(ev, "step.skipped b 0 reason=the job was cancelled");
    CHECK_CONTAINS(ev, "step.skipped report 0 reason=the job was cancelled");
    free(ev);
    CHECK(evr_etest_output_is(t, 5, "clean", 1, "stdout", "clean\n"));
    CHECK(evr_etest_clean(t, 5));
    evr_etest_destroy(&t);
}

/*  An always step that runs on after a cancel is stopped once its grace
    is over (here 100 ms, in place of 60 s), timed out, saying why. */
static void
test_when_always_grace(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_kill(t, false);
    t->opts.when_grace_ms = 100;
    evr_etest_engine(t);
    CHECK(evr_etest_submit(t, evr_etest_job(6), S_HEAD "steps:\n"
                           "  - name: a\n    run: echo a; sleep 10\n"
                           "  - name: clean\n    when: always\n    run: echo c; sleep 10\n")
          == EVR_OK);
    CHECK(evr_etest_until_event(t, 6, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(6), "stop", false, &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 6);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 cancelled", "step.started clean 1",
                             "step.finished clean 1 timed_out",
                             "reason=stopped 100 ms after the job was cancelled",
                             "job.finished cancelled", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 6));
    evr_etest_destroy(&t);
}

/*  A second cancel (force) of a job being cancelled: its always step
    that runs is killed at once (not after its grace), the always step
    after it is skipped, both cancels are recorded (the second with
    force), the job ends cancelled with the first one's reason.  A third
    cancel records nothing. */
static void
test_when_always_second_cancel(void)
{
    evr_etest_t *t = evr_etest_start(15, "steps:\n"
                                     "  - name: a\n    run: echo a; sleep 10\n"
                                     "  - name: clean\n    when: always\n"
                                     "    run: echo c; sleep 10\n"
                                     "  - name: last\n    when: always\n    run: echo never\n");
    CHECK(evr_etest_until_event(t, 15, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(15), "stop", false, &err) == EVR_OK);
    CHECK(evr_etest_until_event(t, 15, "step.output clean 1 stdout"));
    /* a first cancel again changes nothing: clean goes on */
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(15), "stop again", false, &err) == EVR_OK);
    uint64_t t0 = evr_mono_ns();
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(15), "now", true, &err) == EVR_OK);
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(15), "and now", true, &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_mono_ns() - t0 < 5000000000ull);   /* not its 10 s, nor the 60 s grace */
    CHECK(evr_etest_job_status(t, evr_etest_job(15)) == EVR_JOB_CANCELLED);
    char *ev = evr_etest_events_of(t, 15);
    CHECK(evr_etest_in_order(ev, "job.cancel_requested reason=stop\n",
                             "step.finished a 1 cancelled", "step.started clean 1",
                             "job.cancel_requested force reason=now\n",
                             "step.finished clean 1 cancelled exit=137 "
                             "reason=stopped: the job was cancelled again",
                             "job.finished cancelled reason=stop\n", NULL));
    CHECK_CONTAINS(ev, "step.skipped last 0 reason=the job was cancelled");
    CHECK(evr_etest_count(ev, "job.cancel_requested") == 2);
    free(ev);
    CHECK(evr_etest_clean(t, 15));
    evr_etest_destroy(&t);
}

/*  The job times out: always steps run (and on_error: the job's timeout
    is an error); on_success steps are skipped. */
static void
test_when_after_job_timeout(void)
{
    evr_etest_t *t = evr_etest_start(7, "timeout: 50ms\n"
                                     "on_error:\n    run: echo \"oe $EVRUN_FAILED_STEPS\"\n"
                                     "steps:\n"
                                     "  - name: a\n    run: sleep 10\n"
                                     "  - name: b\n    run: echo never\n"
                                     "  - name: clean\n    when: always\n    run: echo c\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(7)) == EVR_JOB_TIMED_OUT);
    char *ev = evr_etest_events_of(t, 7);
    CHECK_CONTAINS(ev, "step.skipped b 0 reason=the job timed out");
    CHECK(evr_etest_in_order(ev, "step.finished a 1 timed_out", "step.finished clean 1 succeeded",
                             "step.finished on_error 1 succeeded", "job.finished timed_out",
                             NULL));
    free(ev);
    CHECK(evr_etest_output_is(t, 7, "on_error", 1, "stdout", "oe a\n"));
    CHECK(evr_etest_clean(t, 7));
    evr_etest_destroy(&t);
}

/*  A DAG: an always step with needs runs after they failed or were
    skipped; one without needs waits for every step before it. */
static void
test_when_always_dag(void)
{
    evr_etest_t *t = evr_etest_start(8, "steps:\n"
                                     "  - name: a\n    run: exit 1\n"
                                     "  - name: b\n    run: echo never\n    needs: [a]\n"
                                     "  - name: c\n    run: echo c; sleep 0.05\n"
                                     "  - name: d\n    when: always\n    needs: [b]\n"
                                     "    run: echo d\n"
                                     "  - name: e\n    when: always\n    run: echo e\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(8)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 8);
    CHECK(evr_etest_in_order(ev, "step.skipped b 0 reason=needs a, which did not succeed",
                             "step.finished d 1 succeeded", NULL));
    /* e came after a, b, c, d in the file: it began once they were over */
    CHECK(evr_etest_in_order(ev, "step.finished c 1", "step.started e 1", NULL));
    CHECK(evr_etest_in_order(ev, "step.finished d 1", "step.started e 1", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 8));
    evr_etest_destroy(&t);
}

/* ------------------------------------------------------------- on_error */

/*  The job failed: on_error runs last with the failed steps and their
    reasons (not an allowed failure); its own failure keeps the job
    failed. */
static void
test_on_error_runs(void)
{
    evr_etest_t *t = evr_etest_start(9, "on_failure: finish\n"
                                     "on_error:\n"
                                     "  run: echo \"$EVRUN_STEP $EVRUN_FAILED_STEPS|"
                                     "$EVRUN_FAILED_REASON_A_B|$EVRUN_FAILED_REASON_C\"; exit 4\n"
                                     "steps:\n"
                                     "  - name: a.b\n    run: exit 5\n"
                                     "  - name: c\n    run: sleep 5\n    timeout: 30ms\n"
                                     "    needs: []\n"
                                     "  - name: lint\n    run: exit 1\n    allow_failure: true\n"
                                     "  - name: d\n    needs: [a.b]\n    run: echo never\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(9)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 9);
    CHECK(evr_etest_in_order(ev, "step.finished a.b 1 failed exit=5",
                             "step.started on_error 1", "step.finished on_error 1 failed exit=4",
                             "job.finished failed", NULL));
    CHECK(evr_etest_in_order(ev, "step.finished c 1 timed_out", "step.started on_error 1",
                             NULL));
    CHECK(evr_etest_in_order(ev, "step.skipped d", "step.started on_error 1", NULL));
    free(ev);
    CHECK(evr_etest_output_is(t, 9, "on_error", 1, "stdout",
                              "on_error a.b,c|failed (exit 5)|timed out after 30 ms\n"));
    evr_stepstate_t st = { 0 };
    CHECK(evr_etest_step(t, evr_etest_job(9), "on_error", &st) == EVR_STEP_FAILED);
    CHECK(!st.allowed);
    evr_rec_free(&evr_stepstate_type, &st);
    CHECK(evr_etest_clean(t, 9));
    evr_etest_destroy(&t);
}

/*  A matrix step's reason is named as its outputs are: build[OS=linux]
    -> EVRUN_FAILED_REASON_BUILD_OS_LINUX (no '_' for the final ']'). */
static void
test_on_error_matrix(void)
{
    evr_etest_t *t = evr_etest_start(14, "on_error:\n"
                                     "  run: echo \"$EVRUN_FAILED_STEPS|"
                                     "$EVRUN_FAILED_REASON_BUILD_OS_LINUX\"\n"
                                     "steps:\n"
                                     "  - name: build\n    matrix: {OS: [linux]}\n"
                                     "    run: exit 3\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(14)) == EVR_JOB_FAILED);
    CHECK(evr_etest_output_is(t, 14, "on_error", 1, "stdout",
                              "build[OS=linux]|failed (exit 3)\n"));
    CHECK(evr_etest_clean(t, 14));
    evr_etest_destroy(&t);
}

/*  The job succeeded (with an allowed failure), or was cancelled:
    on_error is skipped, saying why. */
static void
test_on_error_skipped(void)
{
    evr_etest_t *t = evr_etest_start(10, "on_error:\n  run: echo never\n"
                                     "steps:\n"
                                     "  - name: a\n    run: exit 1\n    allow_failure: true\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(10)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 10);
    CHECK_CONTAINS(ev, "step.skipped on_error 0 reason=on_error runs when the job fails: no "
                       "step failed");
    free(ev);
    CHECK(evr_etest_submit(t, evr_etest_job(11), S_HEAD "on_error:\n  run: echo never\n"
                           "steps:\n  - name: a\n    run: echo a; sleep 10\n") == EVR_OK);
    CHECK(evr_etest_until_event(t, 11, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(11), "stop", false, &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(11)) == EVR_JOB_CANCELLED);
    ev = evr_etest_events_of(t, 11);
    CHECK_CONTAINS(ev, "step.skipped on_error 0 reason=on_error runs when the job fails: the "
                       "job was cancelled");
    free(ev);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 11, "on_error", 0) == 0);
    evr_etest_destroy(&t);
}

/* ------------------------------------------------------------- recovery */

static void
s_recover(evr_etest_t *t, uint32_t want_jobs)
{
    evr_etest_engine(t);
    uint32_t jobs = 0;
    evr_err_t err;
    CHECK(evr_engine_recover(t->eng, &jobs, &err) == EVR_OK);
    CHECK(jobs == want_jobs);
}

/*  Killed while on_error runs after a failure (and before, while an
    always step runs after a cancel): taken up again, it finishes, and
    the job ends as it would have. */
static void
test_recover_flow(void)
{
    evr_etest_t *t = evr_etest_new();
    CHECK(evr_etest_submit(t, evr_etest_job(12), S_HEAD "on_error:\n"
                           "  run: echo \"oe $EVRUN_FAILED_STEPS\"; sleep 0.1; echo done\n"
                           "steps:\n  - name: a\n    run: exit 1\n"
                           "  - name: b\n    run: echo never\n") == EVR_OK);
    CHECK(evr_etest_until_event(t, 12, "step.output on_error 1 stdout"));
    evr_etest_kill(t, false);
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(12)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 12);
    CHECK(evr_etest_in_order(ev, "step.recovered on_error 1 reattached",
                             "step.finished on_error 1 succeeded", "job.finished failed", NULL));
    free(ev);
    CHECK(evr_etest_output_is(t, 12, "on_error", 1, "stdout", "oe a\ndone\n"));
    CHECK(evr_etest_clean(t, 12));

    CHECK(evr_etest_submit(t, evr_etest_job(13), S_HEAD "steps:\n"
                           "  - name: a\n    run: echo a; sleep 10\n"
                           "  - name: clean\n    when: always\n"
                           "    run: echo c1; sleep 0.1; echo c2\n") == EVR_OK);
    CHECK(evr_etest_until_event(t, 13, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(13), "stop", false, &err) == EVR_OK);
    CHECK(evr_etest_until_event(t, 13, "step.output clean 1 stdout"));
    evr_etest_kill(t, false);
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(13)) == EVR_JOB_CANCELLED);
    ev = evr_etest_events_of(t, 13);
    CHECK(evr_etest_in_order(ev, "step.recovered clean 1 reattached",
                             "step.finished clean 1 succeeded", "job.finished cancelled", NULL));
    free(ev);
    CHECK(evr_etest_output_is(t, 13, "clean", 1, "stdout", "c1\nc2\n"));
    CHECK(evr_etest_clean(t, 13));
    evr_etest_destroy(&t);
}

/*  Killed right after a second cancel was recorded (its kill of the
    always step that runs not carried out): taken up again, the runner
    stops that step at once and skips the always step after it, as it
    would have. */
static void
test_recover_second_cancel(void)
{
    evr_etest_t *t = evr_etest_start(16, "steps:\n"
                                     "  - name: a\n    run: echo a; sleep 10\n"
                                     "  - name: clean\n    when: always\n"
                                     "    run: echo c; sleep 10\n"
                                     "  - name: last\n    when: always\n    run: echo never\n");
    CHECK(evr_etest_until_event(t, 16, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(16), "stop", false, &err) == EVR_OK);
    CHECK(evr_etest_until_event(t, 16, "step.output clean 1 stdout"));
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(16), "now", true, &err) == EVR_OK);
    evr_etest_kill(t, false);
    uint64_t t0 = evr_mono_ns();
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_mono_ns() - t0 < 5000000000ull);   /* not its 10 s, nor the 60 s grace */
    CHECK(evr_etest_job_status(t, evr_etest_job(16)) == EVR_JOB_CANCELLED);
    char *ev = evr_etest_events_of(t, 16);
    CHECK(evr_etest_in_order(ev, "job.cancel_requested force reason=now\n",
                             "step.recovered clean 1 reattached", "step.finished clean 1 cancelled",
                             "job.finished cancelled reason=stop\n", NULL));
    CHECK_CONTAINS(ev, "step.skipped last 0 reason=the job was cancelled");
    CHECK(evr_etest_count(ev, "step.started last") == 0);
    free(ev);
    CHECK(evr_etest_clean(t, 16));
    evr_etest_destroy(&t);
}

/* --------------------------------------------------- before the steps */

/*  A preparation that fails once the workspace is made (a resource that
    cannot be downloaded): the steps that run after a failure run
    (on_failure, always, on_error; told why in EVRUN_PREPARE_FAILED), the
    others are skipped with the reason; job.started carries it (for a
    restart), and job.finished says it, not the steps that ran after. */
static void
test_prep_failed_runs_after_failure(void)
{
    evr_etest_t *t = evr_etest_start(40, "resources:\n"
                                     "  - {name: conf, url: \"http://127.0.0.1:1/conf\", "
                                     "path: conf}\n"
                                     "on_error:\n  run: 'echo \"why: $EVRUN_PREPARE_FAILED\"'\n"
                                     "steps:\n"
                                     "  - name: build\n    run: echo never\n"
                                     "  - name: report\n    when: on_failure\n"
                                     "    run: echo \"[$EVRUN_FAILED_STEPS]\"; exit 3\n"
                                     "  - name: clean\n    when: always\n    run: echo clean\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(40)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 40);
    CHECK(evr_etest_in_order(ev, "job.started reason=resource conf: ",
                             "step.skipped build 0 reason=resource conf: ",
                             "step.finished report 1 failed exit=3",
                             "step.finished clean 1 succeeded",
                             "step.finished on_error 1 succeeded",
                             "job.finished failed reason=resource conf: ", NULL));
    free(ev);
    CHECK(evr_etest_output_is(t, 40, "report", 1, "stdout", "[]\n"));
    CHECK(evr_etest_output_is(t, 40, "clean", 1, "stdout", "clean\n"));
    size_t len = 0;
    bool exact = false;
    char *out = evr_etest_output(t, evr_etest_job(40), "on_error", 1, "stdout", &len, &exact);
    CHECK(out && !strncmp(out, "why: resource conf: ", 20));
    free(out);
    CHECK(evr_etest_clean(t, 40));
    evr_etest_destroy(&t);
}

/*  The pipeline's timeout counts from job.accepted: it passes while the
    workspace is made (its making answers late); the reason says so, the
    always step runs (the workspace is there), the others are skipped. */
static void
test_prep_timeout(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_exec_fake_fault(t->fake, &(evr_fake_fault_t) { .op = EVR_FAKE_WS_CREATE,
                                                       .kind = EVR_FAKE_DELAY, .ms = 400 });
    CHECK(evr_etest_submit(t, evr_etest_job(41), S_HEAD "timeout: 40ms\nsteps:\n"
                           "  - name: a\n    run: echo never\n"
                           "  - name: clean\n    when: always\n    run: echo clean\n")
          == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(41)) == EVR_JOB_TIMED_OUT);
    char *ev = evr_etest_events_of(t, 41);
    CHECK(evr_etest_in_order(ev, "job.started reason=the job timed out while its workspace "
                             "was made",
                             "step.skipped a 0 reason=the job timed out while its workspace",
                             "step.finished clean 1 succeeded",
                             "job.finished timed_out reason=the pipeline's timeout (40 ms) "
                             "passed while making the job's workspace\n", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 41));
    evr_etest_destroy(&t);
}

/*  A cancel while the workspace is made: once it is there, the always
    step runs (not on_error: a cancel is no error), the other is skipped
    saying why; the job is cancelled. */
static void
test_prep_cancelled(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_exec_fake_fault(t->fake, &(evr_fake_fault_t) { .op = EVR_FAKE_WS_CREATE,
                                                       .kind = EVR_FAKE_DELAY, .ms = 100 });
    CHECK(evr_etest_submit(t, evr_etest_job(44), S_HEAD "on_error:\n  run: echo never\n"
                           "steps:\n  - name: a\n    run: echo never\n"
                           "  - name: clean\n    when: always\n    run: echo clean\n")
          == EVR_OK);
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(44), "stop", false, &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(44)) == EVR_JOB_CANCELLED);
    char *ev = evr_etest_events_of(t, 44);
    CHECK(evr_etest_in_order(ev, "job.cancel_requested",
                             "step.skipped a 0 reason=the job was cancelled while its workspace",
                             "step.finished clean 1 succeeded", "job.finished cancelled", NULL));
    CHECK_CONTAINS(ev, "step.skipped on_error 0 reason=on_error runs when the job fails: the "
                       "job was cancelled");
    free(ev);
    CHECK(evr_etest_clean(t, 44));
    evr_etest_destroy(&t);
}

/*  A runner killed while the job is prepared: the restarted one counts
    the timeout from the recorded job.accepted, not from its own start,
    and ends the job timed out though its steps would pass. */
static void
test_prep_timeout_recovered(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_exec_fake_fault(t->fake, &(evr_fake_fault_t) { .op = EVR_FAKE_WS_CREATE,
                                                       .kind = EVR_FAKE_HOLD });
    CHECK(evr_etest_submit(t, evr_etest_job(42), S_HEAD "timeout: 300ms\nsteps:\n"
                           "  - name: a\n    run: echo a\n") == EVR_OK);
    CHECK(evr_etest_until_call(t, EVR_FAKE_WS_CREATE, 42, NULL, 0)
          || evr_exec_fake_held(t->fake) > 0);
    evr_etest_kill(t, false);
    evr_exec_fake_clear_faults(t->fake);
    usleep(400 * 1000);   /* its deadline passes while no runner runs */
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(42)) == EVR_JOB_TIMED_OUT);
    char *ev = evr_etest_events_of(t, 42);
    CHECK(evr_etest_in_order(ev, "step.skipped a 0 reason=the job timed out",
                             "job.finished timed_out reason=the pipeline's timeout (300 ms) "
                             "passed while ", NULL));
    free(ev);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 42, "a", 0) == 0);
    CHECK(evr_etest_clean(t, 42));
    evr_etest_destroy(&t);
}

/*  A runner killed while an always step runs after a failed preparation:
    the restarted one reads the failure from job.started: the job still
    fails, with that reason. */
static void
test_prep_failed_recovered(void)
{
    evr_etest_t *t = evr_etest_start(43, "resources:\n"
                                     "  - {name: conf, url: \"http://127.0.0.1:1/conf\", "
                                     "path: conf}\n"
                                     "steps:\n"
                                     "  - name: build\n    run: echo never\n"
                                     "  - name: clean\n    when: always\n"
                                     "    run: echo c1; sleep 0.1; echo c2\n");
    CHECK(evr_etest_until_event(t, 43, "step.output clean 1 stdout"));
    evr_etest_kill(t, false);
    s_recover(t, 1);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(43)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 43);
    CHECK(evr_etest_in_order(ev, "step.recovered clean 1 reattached",
                             "step.finished clean 1 succeeded",
                             "job.finished failed reason=resource conf: ", NULL));
    free(ev);
    CHECK(evr_etest_output_is(t, 43, "clean", 1, "stdout", "c1\nc2\n"));
    CHECK(evr_etest_clean(t, 43));
    evr_etest_destroy(&t);
}

int
main(void)
{
    EVR_TEST_RUN(test_allow_failure_sequence);
    EVR_TEST_RUN(test_allow_failure_dag);
    EVR_TEST_RUN(test_needs_empty_dag);
    EVR_TEST_RUN(test_failed_reason);
    EVR_TEST_RUN(test_command_not_found);
    EVR_TEST_RUN(test_when_after_failure);
    EVR_TEST_RUN(test_when_after_success);
    EVR_TEST_RUN(test_when_always_after_cancel);
    EVR_TEST_RUN(test_when_always_grace);
    EVR_TEST_RUN(test_when_always_second_cancel);
    EVR_TEST_RUN(test_when_after_job_timeout);
    EVR_TEST_RUN(test_when_always_dag);
    EVR_TEST_RUN(test_on_error_runs);
    EVR_TEST_RUN(test_on_error_skipped);
    EVR_TEST_RUN(test_on_error_matrix);
    EVR_TEST_RUN(test_recover_flow);
    EVR_TEST_RUN(test_recover_second_cancel);
    EVR_TEST_RUN(test_prep_failed_runs_after_failure);
    EVR_TEST_RUN(test_prep_timeout);
    EVR_TEST_RUN(test_prep_cancelled);
    EVR_TEST_RUN(test_prep_timeout_recovered);
    EVR_TEST_RUN(test_prep_failed_recovered);
    EVR_TEST_END();
}
