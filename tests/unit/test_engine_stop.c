/*  test_engine_stop.c: a cancel ends its job whatever the executor says.

    A stop that fails makes the engine remove the unit (which kills what
    runs); when that removal fails too, the engine gives the unit up and
    the step ends cancelled without it.  Either way the job ends, and the
    step's state machine takes no move its table does not know (a debug
    build asserts on one).
*/
#include <stdlib.h>

#include "evr_etest.h"
#include "evr_test.h"

#define S_MAX_MS 30000   /* a bound for a failing test only: ASan on a loaded machine is slow */

/*  Job n: one step that sleeps, cancelled once it runs, its stop failing
    and, with remove_fails, its removal too. */
static evr_etest_t *
s_cancel_refused(int n, bool remove_fails)
{
    evr_etest_t *t = evr_etest_new();
    if (!t)
        abort();
    evr_etest_fault(t, n, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_STOP,
                                                       .kind = EVR_FAKE_FAIL,
                                                       .msg = "stop refused" });
    if (remove_fails)
        evr_etest_fault(t, n, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_REMOVE,
                                                           .kind = EVR_FAKE_FAIL,
                                                           .msg = "remove refused" });
    CHECK(evr_etest_submit(t, evr_etest_job(n), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo up; sleep 10\n"
                           "  - name: b\n    run: echo never\n") == EVR_OK);
    char *ua = evr_etest_unit(evr_etest_job(n), "a", 1);
    CHECK(evr_etest_until(t, evr_etest_unit_running, ua, S_MAX_MS));
    free(ua);
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(n), "stop it", false, &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(n)) == EVR_JOB_CANCELLED);
    evr_stepstate_t st = { 0 };
    CHECK(evr_etest_step(t, evr_etest_job(n), "a", &st) == EVR_STEP_CANCELLED);
    evr_rec_free(&evr_stepstate_type, &st);
    CHECK(evr_etest_step(t, evr_etest_job(n), "b", &st) == EVR_STEP_SKIPPED);
    evr_rec_free(&evr_stepstate_type, &st);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_STOP, n, "a", 1) >= 1);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_REMOVE, n, "a", 1) >= 1);
    return t;
}

/*  The stop fails: the removal ends the unit, and nothing is left. */
static void
test_stop_fails_removed(void)
{
    evr_etest_t *t = s_cancel_refused(61, false);
    CHECK(evr_etest_clean(t, 61));
    evr_etest_destroy(&t);
}

/*  The removal fails too: the step ends without its unit. */
static void
test_stop_and_remove_fail(void)
{
    evr_etest_t *t = s_cancel_refused(62, true);
    evr_etest_destroy(&t);
}

int
main(void)
{
    EVR_TEST_RUN(test_stop_fails_removed);
    EVR_TEST_RUN(test_stop_and_remove_fail);
    EVR_TEST_END();
}
