/*  test_engine_faults.c: the engine when its executor misbehaves.

    The fake executor (tests/support/evr_exec_fake.h) injects a fault at
    each operation the engine uses: a create that fails or finds its name
    taken, a start or attach that fails, an output stream that breaks
    mid-way, a wait that cannot say how the unit ended or finds it gone, a
    remove, stop, pause, list or workspace call that fails.  Every job
    must still end, in the state the fault calls for, with its reason
    stored, and leave no unit behind.  Answers that come late or never
    are in test_engine_late.c; recovery, when the runner dies, is in
    test_engine_recover.c.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_codec.h"
#include "evr_etest.h"
#include "evr_loopfifo.h"
#include "evr_test.h"

#define S_MAX_MS 30000   /* a bound for a failing test only: ASan on a loaded machine is slow */

/*  Two steps a, b as a job n that is run to its end; a's unit gets the
    fault. */
static evr_etest_t *
s_faulted(int n, evr_fake_fault_t fault, const char *a_run)
{
    evr_etest_t *t = evr_etest_new();
    if (!t)
        abort();
    evr_etest_fault(t, n, "a", 1, fault);
    char *yaml = evr_asprintf("%ssteps:\n  - name: a\n    run: %s\n  - name: b\n    run: echo b\n",
                              EVR_ETEST_HEAD, a_run);
    CHECK(evr_etest_submit(t, evr_etest_job(n), yaml) == EVR_OK);
    free(yaml);
    CHECK(evr_etest_run(t, S_MAX_MS));
    return t;
}

/* --------------------------------------------------------------- create */

static void
test_create_fails(void)
{
    evr_etest_t *t = s_faulted(30, (evr_fake_fault_t) { .op = EVR_FAKE_CREATE,
                                                        .kind = EVR_FAKE_FAIL,
                                                        .msg = "image not known" },
                               "echo a");
    CHECK(evr_etest_job_status(t, evr_etest_job(30)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 30);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 failed exit=-1", "image not known",
                             "step.skipped b", "job.finished failed", NULL));
    /* no exit code for people: the step never ran */
    CHECK(evr_etest_in_order(ev, "job.finished failed reason=step a failed: ", "image not known",
                             NULL));
    free(ev);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 30, "a", 0) == 0);
    CHECK(evr_etest_clean(t, 30));
    evr_etest_destroy(&t);
}

/*  A start answered lost (a host step's supervisor killed before it
    answered): the step is lost, not failed, and never started: no
    step.started, and the summary of --exec shows no duration for it. */
static void
test_start_lost(void)
{
    evr_etest_t *t = s_faulted(81, (evr_fake_fault_t) { .op = EVR_FAKE_START,
                                                        .kind = EVR_FAKE_LOST,
                                                        .msg = "its supervisor was killed" },
                               "echo a");
    CHECK(evr_etest_job_status(t, evr_etest_job(81)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 81);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 lost exit=-1 reason=start: ",
                             "its supervisor was killed", "step.skipped b",
                             "job.finished failed reason=step a lost", NULL));
    CHECK(evr_etest_count(ev, "step.started a") == 0);
    free(ev);
    char *sum = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&sum, &len);
    CHECK(fp != NULL);
    if (fp) {
        evr_engine_summary(t->eng, evr_etest_job(81), fp);
        fclose(fp);
        CHECK(sum && strstr(sum, "\na                         lost"
                                 "                     -           -\n"));
        if (sum && !strstr(sum, "lost                     -           -"))
            fprintf(stderr, "%s", sum);
    }
    free(sum);
    CHECK(evr_etest_clean(t, 81));
    evr_etest_destroy(&t);
}

/*  The summary of --exec shows each step's whole name, however long (the
    combinations of a matrix step differ at the end of theirs: cut at 24
    bytes, they read the same), and "timed_out (allowed)" within STATUS. */
static void
test_summary_names(void)
{
    evr_etest_t *t = evr_etest_new();
    CHECK(evr_etest_submit(t, evr_etest_job(82), EVR_ETEST_HEAD "steps:\n"
                           "  - name: test\n    run: echo a\n"
                           "    matrix: {OS: [linux], CC: [gcc], V: [10, 11]}\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *sum = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&sum, &len);
    CHECK(fp != NULL);
    if (fp) {
        evr_engine_summary(t->eng, evr_etest_job(82), fp);
        fclose(fp);
        CHECK(sum && strstr(sum, "\nSTEP                        STATUS   "));
        CHECK(sum && strstr(sum, "\ntest[OS=linux,CC=gcc,V=10]  succeeded     "));
        CHECK(sum && strstr(sum, "\ntest[OS=linux,CC=gcc,V=11]  succeeded     "));
        if (sum && !strstr(sum, "V=11]  succeeded"))
            fprintf(stderr, "%s", sum);
    }
    free(sum);
    CHECK(evr_etest_clean(t, 82));
    evr_etest_destroy(&t);
}

/*  The create of the step after (made early) fails: reported in its turn. */
static void
test_create_fails_early(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, 31, "b", 1, (evr_fake_fault_t) { .op = EVR_FAKE_CREATE,
                                                        .kind = EVR_FAKE_FAIL,
                                                        .msg = "no space" });
    CHECK(evr_etest_submit(t, evr_etest_job(31), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: sleep 0.02\n"
                           "  - name: b\n    run: echo b\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 31);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 succeeded", "step.finished b 1 failed exit=-1",
                             "no space", "job.finished failed", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 31));
    evr_etest_destroy(&t);
}

/*  The name is taken by a unit created and never started (a killed
    runner's create, carried out late): the engine takes it. */
static void
test_name_taken_created(void)
{
    evr_etest_t *t = evr_etest_new();
    char *ua = evr_etest_unit(evr_etest_job(32), "a", 1);
    evr_exec_fake_add_unit(t->fake, ua, evr_etest_job(32), "echo taken", EVR_EXEC_CREATED, 0);
    CHECK(evr_etest_submit(t, evr_etest_job(32), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(32)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_INSPECT, ua) >= 1);
    CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_START, ua) == 1);
    CHECK(evr_etest_output_is(t, 32, "a", 1, "stdout", "taken\n"));
    free(ua);
    evr_etest_destroy(&t);
}

/*  ... by a unit that runs: not the step's to take; the step fails. */
static void
test_name_taken_running(void)
{
    evr_etest_t *t = evr_etest_new();
    char *ua = evr_etest_unit(evr_etest_job(33), "a", 1);
    evr_exec_fake_add_unit(t->fake, ua, evr_etest_job(33), "sleep 0.05", EVR_EXEC_RUNNING, 0);
    CHECK(evr_etest_submit(t, evr_etest_job(33), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(33)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 33);
    CHECK_CONTAINS(ev, "step.finished a 1 failed exit=-1");
    CHECK_CONTAINS(ev, "exists already");
    free(ev);
    CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_START, ua) == 0);
    free(ua);
    evr_etest_destroy(&t);
}

/*  ... by a create under way that nobody sees yet: created again later. */
static void
test_name_taken_invisible(void)
{
    evr_etest_t *t = s_faulted(34, (evr_fake_fault_t) { .op = EVR_FAKE_CREATE,
                                                        .kind = EVR_FAKE_EXISTS, .times = 1 },
                               "echo a");
    CHECK(evr_etest_job_status(t, evr_etest_job(34)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 34, "a", 1) == 2);
    CHECK(evr_etest_call_at(t, EVR_FAKE_INSPECT, 34, "a", 1) > 0);
    CHECK(evr_etest_output_is(t, 34, "a", 1, "stdout", "a\n"));
    CHECK(evr_etest_clean(t, 34));
    evr_etest_destroy(&t);
}

/* ------------------------------------------------------ start and attach */

static void
test_start_fails(void)
{
    evr_etest_t *t = s_faulted(35, (evr_fake_fault_t) { .op = EVR_FAKE_START,
                                                        .kind = EVR_FAKE_FAIL,
                                                        .msg = "OCI runtime error" },
                               "echo a");
    char *ev = evr_etest_events_of(t, 35);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 failed exit=-1", "OCI runtime error",
                             "step.skipped b", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 35));
    evr_etest_destroy(&t);
}

static void
test_attach_fails(void)
{
    evr_etest_t *t = s_faulted(36, (evr_fake_fault_t) { .op = EVR_FAKE_ATTACH,
                                                        .kind = EVR_FAKE_FAIL,
                                                        .msg = "attach refused" },
                               "echo a");
    char *ev = evr_etest_events_of(t, 36);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 failed", "attach refused", NULL));
    free(ev);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 36, "a", 0) == 0);
    CHECK(evr_etest_clean(t, 36));
    evr_etest_destroy(&t);
}

/*  A step's reason from an error of 1,500 bytes, and the job's built on
    it, stay within the protocol's 1024 bytes of a reason: cut on a
    character, "…" last, not at 511 bytes mid-word nor mid-character. */
static void
test_long_reason(void)
{
    char msg[1501];
    for (size_t i = 0; i + 2 <= 1500; i += 2)
        memcpy(msg + i, "\xc3\xa9", 2);                /* é, 750 of them */
    msg[1500] = '\0';
    evr_etest_t *t = s_faulted(80, (evr_fake_fault_t) { .op = EVR_FAKE_ATTACH,
                                                        .kind = EVR_FAKE_FAIL, .msg = msg },
                               "echo a");
    evr_stepstate_t st = { 0 };
    CHECK(evr_etest_step(t, evr_etest_job(80), "a", &st) == EVR_STEP_FAILED);
    size_t n = st.reason ? strlen(st.reason) : 0;
    if (n)
        fprintf(stderr, "  (step reason: %zu bytes)\n", n);
    CHECK(n > 900 && n <= EVR_REASON_MAX);
    CHECK(n >= 3 && !strcmp(st.reason + n - 3, EVR_CUT_MARK));
    CHECK(n && evr_utf8_valid(st.reason, n));
    evr_rec_free(&evr_stepstate_type, &st);
    char *ev = evr_etest_events_of(t, 80);
    const char *fin = strstr(ev, "job.finished");
    const char *r = fin ? strstr(fin, " reason=") : NULL;
    size_t rn = r ? strcspn(r + 8, "\n") : 0;
    CHECK(rn > 900 && rn <= EVR_REASON_MAX);
    CHECK(r && rn >= 3 && !memcmp(r + 8 + rn - 3, EVR_CUT_MARK, 3));
    CHECK(r && evr_utf8_valid(r + 8, rn));
    free(ev);
    CHECK(evr_etest_clean(t, 80));
    evr_etest_destroy(&t);
}

/*  The stream of the step after a running one, set up ahead, fails
    (or its head is slow): at its turn the step attaches again (or its
    head, once it comes, starts it); it runs once, its output whole. */
static void
s_early_attach(int n, evr_fake_kind_t kind)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, n, "b", 1, (evr_fake_fault_t) { .op = EVR_FAKE_ATTACH, .kind = kind,
                                                       .ms = 80, .times = 1 });
    CHECK(evr_etest_submit(t, evr_etest_job(n), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: sleep 0.03\n"
                           "  - name: b\n    run: echo b\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(n)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_output_is(t, n, "b", 1, "stdout", "b\n"));
    CHECK(evr_etest_ncalls(t, EVR_FAKE_ATTACH, n, "b", 1) == (kind == EVR_FAKE_FAIL ? 2 : 1));
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, n, "b", 1) == 1);
    CHECK(evr_etest_clean(t, n));
    evr_etest_destroy(&t);
}

static void
test_early_attach_fails(void)
{
    s_early_attach(78, EVR_FAKE_FAIL);
}

static void
test_early_attach_slow(void)
{
    s_early_attach(79, EVR_FAKE_DELAY);
}

/*  The output stream breaks mid-way: the stored output is a prefix of
    what the unit printed, and either it is all of it, or the step does
    not pass for succeeded and says the stream broke. */
static void
test_attach_drops(void)
{
    evr_etest_t *t = evr_etest_new();
    const char *all = "0123456789abcdefghij0123456789";
    evr_etest_behave(t, 37, "a", 1, &(evr_fake_behave_t) { .out = all, .piece = 10,
                                                           .piece_ms = 10 });
    evr_etest_fault(t, 37, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_ATTACH,
                                                        .kind = EVR_FAKE_DROP,
                                                        .after_bytes = 15 });
    CHECK(evr_etest_submit(t, evr_etest_job(37), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: x\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    size_t len;
    bool exact;
    char *got = evr_etest_output(t, evr_etest_job(37), "a", 1, "stdout", &len, &exact);
    CHECK(exact && len <= strlen(all) && memcmp(got, all, len) == 0);
    evr_stepstate_t st = { 0 };
    evr_step_status_t s = evr_etest_step(t, evr_etest_job(37), "a", &st);
    if (len == strlen(all))
        fprintf(stderr, "  (the engine took up the broken stream: all %zu bytes, %s)\n", len,
                evr_step_status_name(s));
    else {
        CHECK(s != EVR_STEP_SUCCEEDED);
        CHECK(st.reason && strstr(st.reason, "broke"));
        fprintf(stderr, "  (the engine stored %zu of %zu bytes, step %s: %s)\n", len, strlen(all),
                evr_step_status_name(s), st.reason ? st.reason : "-");
    }
    evr_rec_free(&evr_stepstate_type, &st);
    free(got);
    CHECK(evr_etest_clean(t, 37));
    evr_etest_destroy(&t);
}

/* ----------------------------------------------------------------- wait */

/*  The backend cannot say how the unit ended: failed, exit -1, why. */
static void
test_exit_unknown(void)
{
    evr_etest_t *t = s_faulted(38, (evr_fake_fault_t) { .op = EVR_FAKE_WAIT,
                                                        .kind = EVR_FAKE_FAIL,
                                                        .msg = "connection reset" },
                               "echo a");
    char *ev = evr_etest_events_of(t, 38);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 failed exit=-1", "connection reset", NULL));
    free(ev);
    CHECK(evr_etest_output_is(t, 38, "a", 1, "stdout", "a\n"));
    CHECK(evr_etest_clean(t, 38));
    evr_etest_destroy(&t);
}

/*  The unit is gone when waited for: the step is lost. */
static void
test_wait_not_found(void)
{
    evr_etest_t *t = s_faulted(39, (evr_fake_fault_t) { .op = EVR_FAKE_WAIT,
                                                        .kind = EVR_FAKE_NOT_FOUND },
                               "echo a");
    CHECK(evr_etest_job_status(t, evr_etest_job(39)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 39);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 lost", "step.skipped b", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 39));
    evr_etest_destroy(&t);
}

/*  The wait answers that the unit's supervisor was killed (a host step's
    exit status never written): the step is lost, as after a recovery,
    so retry: {on: [lost]} takes it again. */
static void
test_wait_lost(void)
{
    evr_etest_t *t = s_faulted(95, (evr_fake_fault_t) { .op = EVR_FAKE_WAIT, .times = 1,
                                                        .kind = EVR_FAKE_LOST },
                               "echo a\n    retry: {on: [lost], max: 1}");
    CHECK(evr_etest_job_status(t, evr_etest_job(95)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 95);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 lost", "supervisor was killed",
                             "step.finished a 2 succeeded", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 95));
    evr_etest_destroy(&t);
}

/* ------------------------------------------------------- removal, stop */

/*  A remove that fails once: the job's result stands, the sweep at its
    end removes the unit. */
static void
test_remove_fails_once(void)
{
    evr_etest_t *t = s_faulted(40, (evr_fake_fault_t) { .op = EVR_FAKE_REMOVE,
                                                        .kind = EVR_FAKE_FAIL, .times = 1 },
                               "echo a");
    CHECK(evr_etest_job_status(t, evr_etest_job(40)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_REMOVE, 40, "a", 1) == 2);
    CHECK(evr_etest_clean(t, 40));
    evr_etest_destroy(&t);
}

/*  A remove that always fails: the job still ends, and its cleanup. */
static void
test_remove_fails(void)
{
    evr_etest_t *t = s_faulted(41, (evr_fake_fault_t) { .op = EVR_FAKE_REMOVE,
                                                        .kind = EVR_FAKE_FAIL },
                               "echo a");
    CHECK(evr_etest_job_status(t, evr_etest_job(41)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_engine_job_status(t->eng, evr_etest_job(41)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_REMOVE, 41, "a", 1) >= 1);
    evr_etest_destroy(&t);
}

/*  A cancel whose stop fails (once): the job must end all the same. */
static void
test_stop_fails(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, 42, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_STOP,
                                                        .kind = EVR_FAKE_FAIL, .times = 1,
                                                        .msg = "stop refused" });
    CHECK(evr_etest_submit(t, evr_etest_job(42), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: sleep 10\n") == EVR_OK);
    char *ua = evr_etest_unit(evr_etest_job(42), "a", 1);
    CHECK(evr_etest_until(t, evr_etest_unit_running, ua, S_MAX_MS));
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(42), "stop it", false, &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(42)) == EVR_JOB_CANCELLED);
    CHECK(evr_etest_clean(t, 42));
    free(ua);
    evr_etest_destroy(&t);
}

/* ---------------------------------------------------------- pause fails */

/*  A pause that fails: a warning; the unit runs on; the job resumes. */
static void
test_pause_fails(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, 43, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_PAUSE,
                                                        .kind = EVR_FAKE_FAIL,
                                                        .msg = "cgroup frozen? no" });
    CHECK(evr_etest_submit(t, evr_etest_job(43), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a; sleep 0.03\n"
                           "  - name: b\n    run: echo b\n") == EVR_OK);
    CHECK(evr_etest_until_event(t, 43, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_pause(t->eng, evr_etest_job(43), &err) == EVR_OK);
    /* a runs to its end while the job is paused; b waits for the resume */
    CHECK(evr_etest_until_event(t, 43, "step.finished a 1 succeeded"));
    evr_etest_turns(t, 30);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 43, "b", 0) == 0);
    CHECK(evr_engine_resume(t->eng, evr_etest_job(43), &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(43)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_RESUME, 43, "a", 0) == 0);
    CHECK(evr_etest_clean(t, 43));
    evr_etest_destroy(&t);
}

/*  A pause that keeps failing on a unit that runs on: tried again a
    bounded number of times (each after an inspect that finds it
    running), then given up: the unit runs on, and the resume that
    follows needs no call. */
static void
test_pause_fails_always(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, 74, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_PAUSE,
                                                        .kind = EVR_FAKE_FAIL,
                                                        .msg = "cgroup frozen? no" });
    CHECK(evr_etest_submit(t, evr_etest_job(74), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a; sleep 10; echo done\n") == EVR_OK);
    CHECK(evr_etest_until_event(t, 74, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_pause(t->eng, evr_etest_job(74), &err) == EVR_OK);
    for (int i = 0; i < 100 && evr_etest_ncalls(t, EVR_FAKE_INSPECT, 74, "a", 1) < 4; i++)
        evr_etest_turns(t, 10);
    evr_etest_turns(t, 150);   /* no fifth try */
    CHECK(evr_etest_ncalls(t, EVR_FAKE_PAUSE, 74, "a", 1) == 4);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_INSPECT, 74, "a", 1) == 4);
    char *ua = evr_etest_unit(evr_etest_job(74), "a", 1);
    CHECK(evr_exec_fake_state(t->fake, ua, NULL) == EVR_EXEC_RUNNING);
    free(ua);
    CHECK(evr_engine_resume(t->eng, evr_etest_job(74), &err) == EVR_OK);
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(74), "enough", false, &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(74)) == EVR_JOB_CANCELLED);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_RESUME, 74, "a", 1) == 0);
    CHECK(evr_etest_clean(t, 74));
    evr_etest_destroy(&t);
}

/*  A resume that fails once: the job must not stay frozen for ever.
    (The step sleeps 0.5 s: with 30 ms it had ended before the pause
    reached it under ASan on a loaded machine.) */
static void
test_resume_fails_once(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, 53, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_RESUME,
                                                        .kind = EVR_FAKE_FAIL, .times = 1,
                                                        .msg = "thaw failed" });
    CHECK(evr_etest_submit(t, evr_etest_job(53), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a; sleep 0.5; echo done\n") == EVR_OK);
    CHECK(evr_etest_until_event(t, 53, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_pause(t->eng, evr_etest_job(53), &err) == EVR_OK);
    CHECK(evr_etest_until_call(t, EVR_FAKE_PAUSE, 53, "a", 1));
    evr_etest_turns(t, 10);
    CHECK(evr_engine_resume(t->eng, evr_etest_job(53), &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(53)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_output_is(t, 53, "a", 1, "stdout", "a\ndone\n"));
    CHECK(evr_etest_clean(t, 53));
    evr_etest_destroy(&t);
}

/*  A resume that keeps failing: the unit stays frozen, so the step
    cannot go on: after a bounded number of tries (each after an inspect
    that finds it paused) it is killed and fails saying why; the job
    fails and nothing of it stays. */
static void
test_resume_fails(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, 73, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_RESUME,
                                                        .kind = EVR_FAKE_FAIL,
                                                        .msg = "thaw failed" });
    CHECK(evr_etest_submit(t, evr_etest_job(73), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a; sleep 0.5; echo done\n"
                           "  - name: b\n    run: echo b\n") == EVR_OK);
    CHECK(evr_etest_until_event(t, 73, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_pause(t->eng, evr_etest_job(73), &err) == EVR_OK);
    CHECK(evr_etest_until_call(t, EVR_FAKE_PAUSE, 73, "a", 1));
    evr_etest_turns(t, 10);
    CHECK(evr_engine_resume(t->eng, evr_etest_job(73), &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(73)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 73);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 failed exit=137",
                             "resuming its unit failed 4 times (thaw failed)", "step.skipped b",
                             "job.finished failed", NULL));
    free(ev);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_RESUME, 73, "a", 1) == 4);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_INSPECT, 73, "a", 1) == 4);
    CHECK(evr_etest_output_is(t, 73, "a", 1, "stdout", "a\n"));
    CHECK(evr_etest_clean(t, 73));
    evr_etest_destroy(&t);
}

/* ---------------------------------------------------- workspace, others */

static void
test_workspace_fails(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_exec_fake_fault(t->fake, &(evr_fake_fault_t) { .op = EVR_FAKE_WS_CREATE,
                                                       .kind = EVR_FAKE_FAIL,
                                                       .msg = "volume plugin down" });
    CHECK(evr_etest_submit(t, evr_etest_job(49), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(49)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 49);
    CHECK(evr_etest_in_order(ev, "step.skipped a", "volume plugin down", "job.finished failed",
                             NULL));
    free(ev);
    CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_CREATE, NULL) == 0);
    evr_etest_destroy(&t);
}

/*  The cleanup's calls fail (listing leftovers, removing the workspace):
    the job's result stands and the engine lets it go. */
static void
test_cleanup_fails(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_exec_fake_fault(t->fake, &(evr_fake_fault_t) { .op = EVR_FAKE_LIST,
                                                       .kind = EVR_FAKE_FAIL });
    evr_exec_fake_fault(t->fake, &(evr_fake_fault_t) { .op = EVR_FAKE_WS_REMOVE,
                                                       .kind = EVR_FAKE_TRANSPORT });
    CHECK(evr_etest_submit(t, evr_etest_job(50), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(50)) == EVR_JOB_SUCCEEDED);
    evr_etest_destroy(&t);
}

/*  Artifacts come out through get; a get that fails fails the step. */
static void
test_artifacts(void)
{
    evr_etest_t *t = evr_etest_start(51, "steps:\n  - name: a\n"
                                         "    run: echo r > out/r.txt\n"
                                         "    artifacts: [out/r.txt]\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(51)) == EVR_JOB_SUCCEEDED);
    char *path = evr_asprintf("%s/%s/a/out/r.txt", t->opts.artifacts_dir, evr_etest_job(51));
    FILE *fp = fopen(path, "rb");
    char buf[16] = "";
    CHECK(fp && fread(buf, 1, sizeof buf - 1, fp) == 2 && strcmp(buf, "r\n") == 0);
    if (fp)
        fclose(fp);
    free(path);
    CHECK(evr_etest_call_at(t, EVR_FAKE_GET, 51, "a", 1) < evr_etest_call_at(t, EVR_FAKE_REMOVE,
                                                                               51, "a", 1));
    CHECK(evr_etest_clean(t, 51));
    evr_etest_destroy(&t);

    t = evr_etest_new();
    evr_etest_fault(t, 52, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_GET, .kind = EVR_FAKE_FAIL,
                                                        .msg = "copy failed" });
    CHECK(evr_etest_submit(t, evr_etest_job(52), EVR_ETEST_HEAD "steps:\n  - name: a\n"
                           "    run: echo r > out/r.txt\n    artifacts: [out/r.txt]\n")
          == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 52);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 failed", "artifact out/r.txt", "copy failed",
                             NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 52));
    evr_etest_destroy(&t);
}

/*  test_artifacts_off_loop's FIFO: where the unpack writes r.txt first. */
typedef struct {
    char dir[512];      /* ARTIFACTS/JOB */
    char fifo[700];
    evr_loopfifo_t r;
} s_fifo_t;

/*  Whether an unpack of the job whose artifacts directory is arg is under
    way: its downloaded tar and its child's list file (two .download-)
    are there. */
static bool
s_unpacking(evr_etest_t *t, const void *arg)
{
    (void) t;
    DIR *d = opendir(arg);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strncmp(e->d_name, ".download-", 10) == 0;
    if (d)
        closedir(d);
    return n >= 2;
}

/*  From the loop: once the unpack is under way (its child's list file, a
    second .download-, is there), the FIFO opened for reading. */
static void
s_fifo_poll(evr_loop_t *loop, void *arg)
{
    s_fifo_t *f = arg;
    if (!s_unpacking(NULL, f->dir)) {
        evr_loop_timer_add(loop, 2, s_fifo_poll, f);
        return;
    }
    evr_loopfifo_open(loop, f->fifo, &f->r);
}

/*  An artifact's tar is unpacked in a child process, never on the loop:
    the temporary name its file is written under is a FIFO that only the
    loop opens for reading, once the unpack is under way.  Unpacked on
    the loop, the unpack's open would wait for the loop for ever (the
    alarm then fails the test).  What goes through a FIFO cannot be
    fsync'ed: the step then fails, saying so. */
static void
test_artifacts_off_loop(void)
{
    evr_etest_t *t = evr_etest_new();
    s_fifo_t f = { .r.fd = -1 };
    snprintf(f.dir, sizeof f.dir, "%s/%s", t->opts.artifacts_dir, evr_etest_job(53));
    snprintf(f.fifo, sizeof f.fifo, "%s/a/out/r.txt.evrun-partial", f.dir);
    char *cmd = evr_asprintf("mkdir -p %s/a/out", f.dir);
    CHECK(system(cmd) == 0);
    free(cmd);
    CHECK(mkfifo(f.fifo, 0600) == 0);
    evr_loopfifo_guard("test_engine_faults: the loop stopped turning while an artifact's tar "
                       "was unpacked (the unpack ran on the loop)");
    evr_loop_timer_add(t->loop, 2, s_fifo_poll, &f);
    CHECK(evr_etest_submit(t, evr_etest_job(53), EVR_ETEST_HEAD "steps:\n  - name: a\n"
                           "    run: echo r > out/r.txt\n    artifacts: [out/r.txt]\n")
          == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    evr_loopfifo_guard(NULL);
    CHECK(f.r.fd >= 0 && strcmp(f.r.got, "r\n") == 0);   /* written by the unpack's child */
    char *ev = evr_etest_events_of(t, 53);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 failed", "artifact out/r.txt",
                             "r.txt.evrun-partial", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 53));
    if (f.r.fd >= 0)
        close(f.r.fd);
    evr_etest_destroy(&t);
}

/*  Two jobs' artifacts are unpacked side by side: job 55's unpack waits
    (its file is a FIFO no one reads yet) while job 56's is unpacked and
    its step ends; one job's unpacks go one at a time (the room left of
    its limit is what those before left).  Then 55's is let through (its
    FIFO read from the loop) and fails, as what goes through a FIFO
    cannot be fsync'ed. */
static void
test_artifacts_side_by_side(void)
{
    evr_etest_t *t = evr_etest_new();
    char *dir = evr_asprintf("%s/%s/a/out", t->opts.artifacts_dir, evr_etest_job(55));
    char *fifo = evr_asprintf("%s/r.txt.evrun-partial", dir);
    char *cmd = evr_asprintf("mkdir -p %s", dir);
    CHECK(system(cmd) == 0);
    CHECK(mkfifo(fifo, 0600) == 0);
    const char *yaml = EVR_ETEST_HEAD "steps:\n  - name: a\n    run: echo r > out/r.txt\n"
                       "    artifacts: [out/r.txt]\n";
    CHECK(evr_etest_submit(t, evr_etest_job(55), yaml) == EVR_OK);
    char *jobdir = evr_asprintf("%s/%s", t->opts.artifacts_dir, evr_etest_job(55));
    CHECK(evr_etest_until(t, s_unpacking, jobdir, S_MAX_MS));   /* 55's unpack waits */
    free(jobdir);
    CHECK(evr_etest_submit(t, evr_etest_job(56), yaml) == EVR_OK);
    CHECK(evr_etest_until_event(t, 56, "step.finished a 1 succeeded"));
    char *ev = evr_etest_events_of(t, 55);
    CHECK(strstr(ev, "step.finished") == NULL);
    free(ev);
    evr_loopfifo_t r = { .fd = -1 };
    CHECK(evr_loopfifo_open(t->loop, fifo, &r));
    CHECK(evr_etest_run(t, S_MAX_MS));
    ev = evr_etest_events_of(t, 55);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 failed", "r.txt.evrun-partial", NULL));
    free(ev);
    CHECK(strcmp(r.got, "r\n") == 0);
    CHECK(evr_etest_clean(t, 55) && evr_etest_clean(t, 56));
    if (r.fd >= 0) {
        if (!r.eof)
            evr_loop_fd_remove(t->loop, r.fd);
        close(r.fd);
    }
    free(cmd);
    free(fifo);
    free(dir);
    evr_etest_destroy(&t);
}

int
main(void)
{
    EVR_TEST_RUN(test_create_fails);
    EVR_TEST_RUN(test_start_lost);
    EVR_TEST_RUN(test_summary_names);
    EVR_TEST_RUN(test_create_fails_early);
    EVR_TEST_RUN(test_name_taken_created);
    EVR_TEST_RUN(test_name_taken_running);
    EVR_TEST_RUN(test_name_taken_invisible);
    EVR_TEST_RUN(test_start_fails);
    EVR_TEST_RUN(test_attach_fails);
    EVR_TEST_RUN(test_long_reason);
    EVR_TEST_RUN(test_early_attach_fails);
    EVR_TEST_RUN(test_early_attach_slow);
    EVR_TEST_RUN(test_attach_drops);
    EVR_TEST_RUN(test_exit_unknown);
    EVR_TEST_RUN(test_wait_not_found);
    EVR_TEST_RUN(test_wait_lost);
    EVR_TEST_RUN(test_remove_fails_once);
    EVR_TEST_RUN(test_remove_fails);
    EVR_TEST_RUN(test_stop_fails);
    EVR_TEST_RUN(test_pause_fails);
    EVR_TEST_RUN(test_pause_fails_always);
    EVR_TEST_RUN(test_resume_fails_once);
    EVR_TEST_RUN(test_resume_fails);
    EVR_TEST_RUN(test_workspace_fails);
    EVR_TEST_RUN(test_cleanup_fails);
    EVR_TEST_RUN(test_artifacts);
    EVR_TEST_RUN(test_artifacts_off_loop);
    EVR_TEST_RUN(test_artifacts_side_by_side);
    EVR_TEST_END();
}
