/*  test_engine_outputs.c: step outputs through the engine and the fake
    executor (no podman): a step's KEY=VALUE lines to $EVRUN_OUTPUT are
    recorded (step.outputs, masked) before the steps that need it start,
    and given to them as EVRUN_OUT_<STEP>_<KEY>; a step no step needs is
    not read; bad lines are a warning on stderr; a retry's outputs are its
    own; a matrix step's name is sanitized; a key holding a secret is
    left out; the key naming the file is kept across a restart.  test_output.c holds the
    parser's cases, test_exec_flow.sh and test_recover.sh the real executors. */
#include <stdlib.h>

#include "evr_etest.h"
#include "evr_test.h"

#define S_MAX_MS 30000   /* a bound for a failing test only: ASan on a loaded machine is slow */

static void
test_passed_on(void)
{
    setenv("EVRUN_SECRET_OUT", "hunter2", 1);
    evr_etest_t *t = evr_etest_start(1, "secrets: [EVRUN_SECRET_OUT]\nsteps:\n"
                                "  - name: make-it\n"
                                "    run: echo V=1.2 >> \"$EVRUN_OUTPUT\"; "
                                "echo \"T=a-$EVRUN_SECRET_OUT\" >> \"$EVRUN_OUTPUT\"; "
                                "echo oops >> \"$EVRUN_OUTPUT\"; "
                                "echo \"K_$EVRUN_SECRET_OUT=1\" >> \"$EVRUN_OUTPUT\"\n"
                                "  - name: use\n    needs: [make-it]\n"
                                "    run: echo \"$EVRUN_OUT_MAKE_IT_V $EVRUN_OUT_MAKE_IT_T\"; "
                                "echo W=2 >> \"$EVRUN_OUTPUT\"\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(1)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_output_is(t, 1, "use", 1, "stdout", "1.2 a-***\n"));
    CHECK(evr_etest_output_is(t, 1, "make-it", 1, "stderr",
                              "evrun: $EVRUN_OUTPUT: line 3: expected KEY=VALUE\n"
                              "evrun: $EVRUN_OUTPUT: K_***: its name holds a secret: left out\n"));
    char *ev = evr_etest_events_of(t, 1);
    CHECK(evr_etest_in_order(ev, "step.outputs make-it 1 V=1.2 T=a-***\n",
                             "step.finished make-it 1 succeeded", "step.started use 1", NULL));
    CHECK(evr_etest_count(ev, "step.outputs") == 1);   /* use: no step needs it */
    free(ev);
    evr_stepstate_t st = { 0 };
    evr_etest_step(t, evr_etest_job(1), "make-it", &st);
    CHECK(st.outputs.n == 2 && !strcmp(evr_strmap_get(&st.outputs, "T"), "a-***"));
    evr_rec_free(&evr_stepstate_type, &st);
    CHECK(evr_etest_clean(t, 1));
    evr_etest_destroy(&t);
    unsetenv("EVRUN_SECRET_OUT");
}

/*  A failed step's outputs are read too; a retried step's are its last
    attempt's; a matrix step's variable names are sanitized. */
static void
test_retry_and_matrix(void)
{
    evr_etest_t *t = evr_etest_start(2, "steps:\n"
                                "  - name: flaky\n    retry: {on: [failed], max: 1}\n"
                                "    run: echo \"A=$EVRUN_ATTEMPT\" >> \"$EVRUN_OUTPUT\"; "
                                "echo x > seen2; cat \"seen$EVRUN_ATTEMPT\"\n"
                                "  - name: m\n    matrix: {OS: [x]}\n"
                                "    run: echo B=b >> \"$EVRUN_OUTPUT\"\n"
                                "  - name: use\n    needs: [flaky, m]\n"
                                "    run: echo \"$EVRUN_OUT_FLAKY_A $EVRUN_OUT_M_OS_X_B\"\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 2);
    CHECK(evr_etest_in_order(ev, "step.outputs flaky 1 A=1\n", "step.finished flaky 1 failed",
                             "step.outputs flaky 2 A=2\n", "step.finished flaky 2 succeeded",
                             NULL));
    free(ev);
    CHECK(evr_etest_output_is(t, 2, "use", 1, "stdout", "2 b\n"));
    evr_etest_destroy(&t);
}

/*  Two names that map to one variable (a-b and a_b; a with key B_K):
    the step named later in needs wins, whatever the file's order, as
    README "Step outputs" says. */
static void
test_same_variable(void)
{
    evr_etest_t *t = evr_etest_start(3, "steps:\n"
                                "  - name: a_b\n    run: echo K=under >> \"$EVRUN_OUTPUT\"\n"
                                "  - name: a-b\n    run: echo K=dash >> \"$EVRUN_OUTPUT\"\n"
                                "  - name: a\n    run: echo B_K=plain >> \"$EVRUN_OUTPUT\"\n"
                                "  - name: one\n    needs: [a-b, a_b]\n"
                                "    run: echo \"$EVRUN_OUT_A_B_K\"\n"
                                "  - name: two\n    needs: [a_b, a]\n"
                                "    run: echo \"$EVRUN_OUT_A_B_K\"\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_output_is(t, 3, "one", 1, "stdout", "under\n"));
    CHECK(evr_etest_output_is(t, 3, "two", 1, "stdout", "plain\n"));
    evr_etest_destroy(&t);
}

/*  The output file's name is made with a key kept in the store: the same
    after a restart (recovery reads the file a step left), 32 hex digits. */
static void
test_output_key_kept(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_err_t err;
    char *k1 = NULL, *k2 = NULL;
    CHECK(evr_store_meta_get(t->store, "output_key", &k1, &err) == EVR_OK);
    CHECK(k1 && strlen(k1) == 32 && strspn(k1, "0123456789abcdef") == 32);
    evr_etest_kill(t, false);
    evr_etest_engine(t);
    CHECK(evr_store_meta_get(t->store, "output_key", &k2, &err) == EVR_OK);
    CHECK(k1 && k2 && !strcmp(k1, k2));
    free(k1);
    free(k2);
    evr_etest_destroy(&t);
}

int
main(void)
{
    EVR_TEST_RUN(test_passed_on);
    EVR_TEST_RUN(test_retry_and_matrix);
    EVR_TEST_RUN(test_same_variable);
    EVR_TEST_RUN(test_output_key_kept);
    EVR_TEST_END();
}
