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
#include "evr_yaml.h"

#define S_MAX_MS 30000   /* a bound for a failing test only: ASan on a loaded machine is slow */
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
    /* built by hand: whether a process pipeline may name an image is the
       validation's business, not the engine's */
    evr_spec_t *spec = evr_spec_new();
    spec->pipeline = evr_strdup("p");
    spec->executor = EVR_EXECUTOR_PROCESS;
    spec->steps.v = evr_calloc(1, sizeof(evr_step_t));
    spec->steps.n = 1;
    evr_step_t *st = evr_spec_step(spec, 0);
    st->name = evr_strdup("a");
    st->run = evr_strdup("echo host");
    CHECK(evr_etest_submit_spec(t, evr_etest_job(4), spec) == EVR_OK);
    evr_spec_destroy(&spec);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(4)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_output_is(t, 4, "a", 1, "stdout", "host\n"));
    CHECK(evr_exec_fake_ncalls(t->fake) == 0);
    CHECK(evr_exec_fake_count(t->proc, EVR_FAKE_START, NULL) == 1);
    evr_etest_destroy(&t);
}

/*  A host step ended by a signal the engine did not send, under a limit
    of its own that ends a process so (limits.cpu: SIGKILL or SIGXCPU;
    limits.memory: SIGSEGV, SIGABRT, SIGBUS): its reason names the limit,
    which the exit code alone does not.  Without such a limit, the signal
    (its exit code 128+N alone could be a program's exit: it was "exit
    137" and nothing more).  A step that exits 137 itself is no SIGKILL,
    under limits.cpu too.  A 127 under limits.nofile of 32 or less names
    that limit. */
static void
test_limit_reason(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_with_process(t);
    evr_etest_engine(t);
    CHECK(evr_etest_submit(t, evr_etest_job(13), "pipeline: t\nexecutor: process\n"
                           "on_failure: finish\nsteps:\n"
                           "  - {name: c, needs: [], limits: {cpu: 1500ms}, run: kill -9}\n"
                           "  - {name: x, needs: [], limits: {cpu: 2s}, run: kill -24}\n"
                           "  - {name: m, needs: [], limits: {memory: 64M}, run: kill -11}\n"
                           "  - {name: n, needs: [], run: exit 137}\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(13)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 13);
    CHECK(evr_etest_count(ev, "step.finished c 1 failed exit=137 reason=killed by SIGKILL, "
                          "which evrun did not send: limits.cpu is 2 s of CPU time per "
                          "process") == 1);
    CHECK(evr_etest_count(ev, "step.finished x 1 failed exit=152 reason=killed by SIGXCPU") == 1);
    CHECK(evr_etest_count(ev, "step.finished m 1 failed exit=139 reason=killed by SIGSEGV: "
                          "limits.memory is 64 MiB of address space per process") == 1);
    CHECK(evr_etest_count(ev, "step.finished n 1 failed exit=137\n") == 1);
    free(ev);
    CHECK(evr_etest_submit(t, evr_etest_job(15), "pipeline: t\nexecutor: process\n"
                           "on_failure: finish\nsteps:\n"
                           "  - {name: e, needs: [], limits: {cpu: 1s}, run: exit 137}\n"
                           "  - {name: k, needs: [], run: kill -9}\n"
                           "  - {name: t, needs: [], limits: {memory: 64M}, run: kill -15}\n")
          == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    ev = evr_etest_events_of(t, 15);
    CHECK(evr_etest_count(ev, "step.finished e 1 failed exit=137\n") == 1);
    CHECK(evr_etest_count(ev, "step.finished k 1 failed exit=137 reason=killed by SIGKILL "
                          "(signal 9), which evrun did not send (another process, or the "
                          "kernel's OOM killer: the host's kernel log says which)\n") == 1);
    CHECK(evr_etest_count(ev, "step.finished t 1 failed exit=143 reason=killed by SIGTERM "
                          "(signal 15)\n") == 1);
    free(ev);
    /* a 127 under few open files names that limit, not the PATH (the
       shell could not open its libraries: "Error 24") */
    CHECK(evr_etest_submit(t, evr_etest_job(14), "pipeline: t\nexecutor: process\n"
                           "on_failure: finish\nsteps:\n"
                           "  - {name: f, needs: [], limits: {nofile: 3}, run: exit 127}\n"
                           "  - {name: g, needs: [], limits: {nofile: 256}, run: exit 127}\n")
          == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    ev = evr_etest_events_of(t, 14);
    CHECK(evr_etest_count(ev, "step.finished f 1 failed exit=127 reason=a command could not be "
                          "started: limits.nofile is 3 open files, which may be too few") == 1);
    CHECK(evr_etest_count(ev, "step.finished g 1 failed exit=127 reason=a command was not "
                          "found: is it on the runner host's PATH?") == 1);
    free(ev);
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
    CHECK_CONTAINS(ev, "step.skipped y 0 reason=needs x, which did not succeed");
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
    CHECK(evr_etest_in_order(ev, "step.finished a 1 timed_out exit=143 "
                             "reason=the pipeline's timeout (40 ms) passed",
                             "job.finished timed_out reason=the pipeline's timeout (40 ms) passed",
                             NULL));
    CHECK_CONTAINS(ev, "step.skipped b");
    CHECK_CONTAINS(ev, "reason=the job timed out");
    free(ev);
    CHECK(evr_etest_clean(t, 9));
    evr_etest_destroy(&t);
}

/*  A job whose preparation fails (a resource that cannot be fetched; a
    cache its executor cannot keep): every step is skipped, and
    job.finished's reason is the preparation's error, not nothing. */
static void
test_prep_failed_reason(void)
{
    evr_etest_t *t = evr_etest_start(34, "resources:\n"
                                     "  - {name: src, url: \"http://127.0.0.1:1/src.tar.gz\", "
                                     "path: src}\n"
                                     "steps:\n  - name: a\n    run: echo never\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(34)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 34);
    CHECK(evr_etest_in_order(ev, "step.skipped a 0 reason=resource src: ",
                             "job.finished failed reason=resource src: ", NULL));
    CHECK_CONTAINS(ev, "127.0.0.1:1");
    free(ev);
    CHECK(evr_etest_clean(t, 34));
    evr_etest_destroy(&t);

    t = evr_etest_start(35, "cache:\n  - {key: \"deps-{{ sha256 lock.txt }}\", path: deps}\n"
                            "steps:\n  - name: a\n    run: echo never\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(35)) == EVR_JOB_FAILED);
    ev = evr_etest_events_of(t, 35);
    CHECK(evr_etest_in_order(ev, "step.skipped a 0 reason=cache: ",
                             "job.finished failed reason=cache: ", NULL));
    if (ev && !strstr(ev, "job.finished failed reason="))
        fprintf(stderr, "  job 35's events:\n%s", ev);
    free(ev);
    CHECK(evr_etest_clean(t, 35));
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

/*  The steps that run after a failure (when: always | on_failure, and
    on_error, which runs only then) take their retries in the failing job
    too: the failure does not stop them (README "Control flow"), and
    on_error's retry was never taken.  A step of the job's own course
    started before the failure is not retried once it stops the job. */
static void
test_retry_after_failure(void)
{
    evr_etest_t *t = evr_etest_start(12, "on_error: {retry: {on: [failed], max: 1}, run: exit 6}\n"
                                     "steps:\n  - name: a\n    run: exit 5\n"
                                     "  - name: w\n    when: always\n"
                                     "    retry: {on: [failed], max: 1}\n    run: exit 7\n"
                                     "  - name: f\n    when: on_failure\n"
                                     "    retry: {on: [failed], max: 2}\n    run: exit 8\n");
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(12)) == EVR_JOB_FAILED);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 12, "a", 0) == 1);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 12, "w", 0) == 2);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 12, "f", 0) == 3);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 12, "on_error", 0) == 2);
    char *ev = evr_etest_events_of(t, 12);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 failed exit=5", "step.finished w 2 failed exit=7",
                             "step.finished f 3 failed exit=8",
                             "step.finished on_error 2 failed exit=6", "job.finished failed",
                             NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 12));
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
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(13), "test says stop", false, &err) == EVR_OK);
    /* committed before it acts */
    CHECK(evr_etest_has_event(t, &(evr_etest_event_t) { evr_etest_job(13),
                                                         "job.cancel_requested" }));
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(13), "again", false, &err) == EVR_OK);
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
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(13), "late", false, &err) == EVR_ERR_STATE);
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(99), "who", false, &err) == EVR_ERR_NOTFOUND);
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
    /* b's intent and unit came as soon as a began (before a's start);
       its start after a ended */
    CHECK(evr_etest_in_order(ev, "step.starting a 1", "step.starting b 1",
                             "step.finished a 1 succeeded", "step.started b 1", NULL));
    free(ev);
    CHECK(evr_etest_call_at(t, EVR_FAKE_CREATE, 16, "b", 1) < evr_etest_call_at(t, EVR_FAKE_START, 16, "a", 1));
    /* and its stream set up ahead too, while a runs: once */
    CHECK(evr_etest_call_at(t, EVR_FAKE_ATTACH, 16, "b", 1) < evr_etest_call_at(t, EVR_FAKE_WAIT, 16, "a", 1));
    CHECK(evr_etest_ncalls(t, EVR_FAKE_ATTACH, 16, "b", 1) == 1);
    CHECK(evr_etest_call_at(t, EVR_FAKE_CREATE, 16, "b", 1) < evr_etest_call_at(t, EVR_FAKE_REMOVE, 16, "a", 1));
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 16, "b", 1) == 1);
    CHECK(evr_etest_output_is(t, 16, "b", 1, "stdout", "b\n"));
    CHECK(evr_etest_clean(t, 16));
    evr_etest_destroy(&t);
}

/*  Paused time does not count for a step's timeout. */
static void
test_pause_stops_timeout(void)
{
    evr_etest_t *t = evr_etest_start(17, "steps:\n  - name: a\n    timeout: 150ms\n"
                                         "    run: echo a; sleep 0.05; echo done\n");
    CHECK(evr_etest_until_event(t, 17, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_pause(t->eng, evr_etest_job(17), &err) == EVR_OK);
    CHECK(evr_etest_until_call(t, EVR_FAKE_PAUSE, 17, "a", 1));
    evr_etest_turns(t, 250);
    CHECK(evr_engine_resume(t->eng, evr_etest_job(17), &err) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 17);
    CHECK_CONTAINS(ev, "step.finished a 1 succeeded exit=0");
    free(ev);
    CHECK(evr_etest_clean(t, 17));
    evr_etest_destroy(&t);
}

/*  A cancel of a paused job: its units are resumed, then stopped. */
static void
test_cancel_paused(void)
{
    evr_etest_t *t = evr_etest_start(18, "steps:\n  - name: a\n    run: echo a; sleep 10\n"
                                         "  - name: b\n    run: echo b\n");
    CHECK(evr_etest_until_event(t, 18, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_pause(t->eng, evr_etest_job(18), &err) == EVR_OK);
    CHECK(evr_etest_until_call(t, EVR_FAKE_PAUSE, 18, "a", 1));
    evr_etest_turns(t, 10);
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(18), "paused and cancelled", false, &err)
          == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(18)) == EVR_JOB_CANCELLED);
    char *ev = evr_etest_events_of(t, 18);
    CHECK(evr_etest_in_order(ev, "job.paused", "job.cancel_requested",
                             "step.finished a 1 cancelled exit=143", "job.finished cancelled",
                             NULL));
    free(ev);
    CHECK(evr_etest_call_at(t, EVR_FAKE_RESUME, 18, "a", 1)
          < evr_etest_call_at(t, EVR_FAKE_STOP, 18, "a", 1));
    CHECK(evr_etest_clean(t, 18));
    evr_etest_destroy(&t);
}

/*  on_failure: finish lets a running step finish; stop (default) stops it,
    its reason naming the step that failed; a step that waits on z alone
    is skipped, its reason naming that step too (not "an earlier step"). */
static void
s_on_failure(int n, const char *how, const char *z_ends, const char *after_z)
{
    char *steps = evr_asprintf("on_failure: %s\nsteps:\n"
                               "  - name: x\n    run: exit 1\n"
                               "  - name: z\n    run: sleep 0.04; echo z\n"
                               "  - name: last\n    needs: [x, z]\n    run: echo never\n"
                               "  - name: after-z\n    needs: [z]\n    run: echo never\n",
                               how);
    evr_etest_t *t = evr_etest_start(n, steps);
    free(steps);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(n)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, n);
    CHECK_CONTAINS(ev, z_ends);
    CHECK_CONTAINS(ev, "step.skipped last");
    CHECK_CONTAINS(ev, after_z);
    free(ev);
    CHECK(evr_etest_clean(t, n));
    evr_etest_destroy(&t);
}

static void
test_on_failure(void)
{
    s_on_failure(19, "finish", "step.finished z 1 succeeded exit=0",
                 "step.skipped after-z 0 reason=step x failed\n");
    s_on_failure(20, "stop",
                 "step.finished z 1 cancelled exit=143 reason=stopped: step x failed "
                 "(on_failure: stop)\n",
                 "step.skipped after-z 0 reason=step x failed\n");
}

/*  A step stopped for another's failure that ignores SIGTERM and whose
    own timeout falls in the grace stays cancelled: the job's reason names
    the step that failed, not it as timed out.  x fails once z runs (its
    mark), z's timeout (400 ms) comes in a grace of a second: a loaded
    machine has 400 ms for x to fail before z's timeout would come first. */
static void
test_stopped_not_timed_out(void)
{
    evr_etest_t *t = evr_etest_new();
    if (!t)
        abort();
    evr_exec_fake_set_grace_scale(t->fake, 1000);
    char *yaml = evr_asprintf("%ssteps:\n"
                              "  - name: x\n    needs: []\n"
                              "    run: while [ ! -e %s/z-runs ]; do sleep 0.005; done; exit 1\n"
                              "  - name: z\n    needs: []\n    timeout: 400ms\n"
                              "    run: trap '' TERM; touch %s/z-runs; echo z; sleep 10\n",
                              EVR_ETEST_HEAD, t->dir, t->dir);
    CHECK(evr_etest_submit(t, evr_etest_job(24), yaml) == EVR_OK);
    free(yaml);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(24)) == EVR_JOB_FAILED);
    char *ev = evr_etest_events_of(t, 24);
    CHECK_CONTAINS(ev, "step.finished z 1 cancelled exit=137 reason=stopped: step x failed");
    CHECK_CONTAINS(ev, "job.finished failed reason=step x failed (exit 1)\n");
    free(ev);
    CHECK(evr_etest_clean(t, 24));
    evr_etest_destroy(&t);
}

/*  cancel_all with now: units are killed at once, the cancel recorded
    with force. */
static void
test_cancel_all_now(void)
{
    evr_etest_t *t = evr_etest_start(21, "steps:\n  - name: a\n"
                                         "    run: trap '' TERM; echo a; sleep 10\n");
    CHECK(evr_etest_until_event(t, 21, "step.output a 1 stdout"));
    evr_engine_cancel_all(t->eng, "shutting down", true);
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 21);
    CHECK(evr_etest_in_order(ev, "job.cancel_requested force reason=shutting down",
                             "step.finished a 1 cancelled exit=137", NULL));
    free(ev);
    CHECK(evr_etest_clean(t, 21));
    evr_etest_destroy(&t);
}

/*  A job the runner cannot run is recorded failed; nothing is called. */
static void
test_reject(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_spec_t spec = { 0 };
    evr_diag_t *diag = evr_diag_new("r.yml");
    const char *yaml = EVR_ETEST_HEAD "steps:\n  - name: a\n    run: echo a\n";
    CHECK(evr_yaml_load(yaml, strlen(yaml), &spec, diag) == EVR_OK);
    evr_diag_destroy(&diag);
    evr_err_t err;
    CHECK(evr_engine_reject(t->eng, evr_etest_job(22), &spec, NULL, "no secret", &err) == EVR_OK);
    CHECK(evr_engine_reject(t->eng, evr_etest_job(22), &spec, NULL, "again", &err)
          == EVR_ERR_STATE);
    CHECK(evr_engine_submit(t->eng, evr_etest_job(22), &spec, NULL, &err) == EVR_ERR_STATE);
    evr_rec_free(&evr_spec_type, &spec);
    char *ev = evr_etest_events_of(t, 22);
    CHECK_STR(ev, "job.accepted\njob.finished failed reason=no secret\n");
    free(ev);
    CHECK(evr_exec_fake_ncalls(t->fake) == 0);
    CHECK(evr_etest_run(t, S_MAX_MS));
    evr_etest_destroy(&t);
}

/*  The wait answers before the output still on its way (podman's race):
    the output is whole all the same. */
static void
test_wait_before_output(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_exec_fake_set_wait_early(t->fake, true);
    size_t n = 100000;
    char *big = evr_malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char) ('0' + i % 10);
    big[n] = '\0';
    evr_etest_behave(t, 23, "a", 1, &(evr_fake_behave_t) { .out = big, .piece = 4096,
                                                           .exit_code = 4 });
    CHECK(evr_etest_submit(t, evr_etest_job(23), EVR_ETEST_HEAD "steps:\n  - name: a\n"
                           "    run: x\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 23);
    CHECK_CONTAINS(ev, "step.finished a 1 failed exit=4");
    free(ev);
    CHECK(evr_etest_output_is(t, 23, "a", 1, "stdout", big));
    free(big);
    CHECK(evr_etest_clean(t, 23));
    evr_etest_destroy(&t);
}

/*  A secret split across output pieces, and across the chunk limit, is
    still masked: it never reaches the store. */
static void
test_secret_split(void)
{
    setenv("EVRUN_SECRET_TOK", "hunter2", 1);
    evr_etest_t *t = evr_etest_new();
    size_t pad = EVR_OUTPUT_CHUNK_MAX - 3;
    char *out = evr_malloc(pad + 64);
    memset(out, 'a', pad);
    strcpy(out + pad, "hunter2|hun");
    strcat(out, "ter2.");
    evr_etest_behave(t, 24, "a", 1, &(evr_fake_behave_t) { .out = out, .piece = 5 });
    CHECK(evr_etest_submit(t, evr_etest_job(24), EVR_ETEST_HEAD "secrets: [EVRUN_SECRET_TOK]\n"
                           "steps:\n  - name: a\n    run: x\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    size_t len;
    bool exact;
    char *got = evr_etest_output(t, evr_etest_job(24), "a", 1, "stdout", &len, &exact);
    CHECK(exact && strstr(got, "hunter") == NULL && strstr(got, "ter2") == NULL);
    CHECK(len == pad + strlen("***|***."));
    CHECK(strcmp(got + pad, "***|***.") == 0);
    free(got);
    free(out);
    evr_etest_destroy(&t);
    unsetenv("EVRUN_SECRET_TOK");
}

/*  Two jobs at once: each runs, one is cancelled, the other's units are
    not touched; forget_finished lets both go. */
static void
test_two_jobs(void)
{
    evr_etest_t *t = evr_etest_start(25, "steps:\n  - name: a\n    run: echo one; sleep 10\n");
    CHECK(evr_etest_submit(t, evr_etest_job(26), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo two; sleep 0.05\n"
                           "  - name: b\n    run: echo b\n") == EVR_OK);
    CHECK(evr_etest_until_event(t, 25, "step.output a 1 stdout"));
    CHECK(evr_etest_until_event(t, 26, "step.output a 1 stdout"));
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(25), "only this one", false, &err) == EVR_OK);
    CHECK(evr_etest_until_event(t, 25, "job.finished cancelled"));
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(26)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_output_is(t, 26, "a", 1, "stdout", "two\n"));
    CHECK(evr_etest_ncalls(t, EVR_FAKE_STOP, 26, "*", 0) == 0);
    CHECK(evr_etest_clean(t, 25) && evr_etest_clean(t, 26));
    CHECK(evr_engine_active(t->eng) == 0);
    evr_engine_forget_finished(t->eng);
    CHECK(evr_engine_job_status(t->eng, evr_etest_job(26)) == EVR_JOB_NONE);
    evr_etest_destroy(&t);
}

/*  A retry while the next step was created early: that one is kept and
    started once, after the retry succeeded. */
static void
test_retry_with_early_next(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_behave(t, 27, "a", 1, &(evr_fake_behave_t) { .run_ms = 20, .exit_code = 1 });
    evr_etest_behave(t, 27, "a", 2, &(evr_fake_behave_t) { .out = "ok\n", .run_ms = 20 });
    CHECK(evr_etest_submit(t, evr_etest_job(27), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    retry: {on: [failed], max: 1}\n    run: x\n"
                           "  - name: b\n    run: echo b\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(27)) == EVR_JOB_SUCCEEDED);
    char *ev = evr_etest_events_of(t, 27);
    CHECK(evr_etest_in_order(ev, "step.finished a 2 succeeded", "step.started b 1", NULL));
    free(ev);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 27, "b", 0) == 1);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_START, 27, "b", 0) == 1);
    CHECK(evr_etest_output_is(t, 27, "b", 1, "stdout", "b\n"));
    CHECK(evr_etest_clean(t, 27));
    evr_etest_destroy(&t);
}

/*  Output that has waited its flush delay is stored in the turn that
    flushes it, not after a further group-commit wait: the one turn that
    ends at the flush deadline leaves it in the store (issue 13). */
static void
test_output_due_stored_at_once(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_engine_destroy(&t->eng);
    t->opts.flush_ms = 60;   /* past the turns that pass the bytes on, within one turn (100 ms) */
    evr_etest_engine(t);
    CHECK(evr_etest_submit(t, evr_etest_job(28), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a; sleep 10\n") == EVR_OK);
    char *unit = evr_etest_unit(evr_etest_job(28), "a", 1);
    for (int i = 0; i < 600 && evr_exec_fake_printed(t->fake, unit, 1) < 2; i++)
        evr_engine_turn(t->eng, 5);
    CHECK(evr_exec_fake_printed(t->fake, unit, 1) == 2);
    evr_etest_turns(t, 20);   /* the bytes reach the engine, which holds them */
    evr_etest_event_t out = { evr_etest_job(28), "step.output a 1 stdout" };
    bool early = evr_etest_has_event(t, &out);
    if (!early) {
        /* nothing else is due: this turn ends at the flush deadline */
        evr_engine_turn(t->eng, 2000);
        CHECK(evr_etest_has_event(t, &out));
    }
    evr_engine_cancel_all(t->eng, "test over", true);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_output_is(t, 28, "a", 1, "stdout", "a\n"));
    free(unit);
    evr_etest_destroy(&t);
}

/*  A job whose one unit shares nothing (one step, no resources, retry or
    artifacts) gets no workspace from an executor whose units have their
    own, and starts in its submit's commit; two steps, or a retry, still
    get one (issue 13). */
static void
test_one_step_no_workspace(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_exec_fake_set_own_workspace(t->fake, true);
    CHECK(evr_etest_submit(t, evr_etest_job(29), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a\n") == EVR_OK);
    /* nothing to prepare: started by the submit itself, in its commit */
    char *ev = evr_etest_events_of(t, 29);
    CHECK(evr_etest_in_order(ev, "job.accepted", "job.started", "step.starting a 1", NULL));
    free(ev);
    CHECK(evr_etest_ncalls(t, EVR_FAKE_CREATE, 29, "a", 1) == 1);
    CHECK(evr_etest_submit(t, evr_etest_job(30), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a\n  - name: b\n    run: echo b\n")
          == EVR_OK);
    CHECK(evr_etest_submit(t, evr_etest_job(31), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    retry: {on: [failed], max: 1}\n    run: echo a\n")
          == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    for (int n = 29; n <= 31; n++) {
        CHECK(evr_etest_job_status(t, evr_etest_job(n)) == EVR_JOB_SUCCEEDED);
        CHECK(evr_etest_output_is(t, n, "a", 1, "stdout", "a\n"));
        size_t want = n == 29 ? 0 : 1;
        CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_WS_CREATE, evr_etest_job(n)) == want);
        CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_WS_REMOVE, evr_etest_job(n)) == want);
        CHECK(evr_etest_clean(t, n));
    }
    evr_etest_destroy(&t);
}

/*  A job whose creates and removals all succeeded leaves nothing behind:
    its cleanup does not list its units; one whose create failed does
    (what the create made is found and removed). */
static void
test_sweep_only_in_doubt(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_fault(t, 33, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_CREATE,
                                                        .kind = EVR_FAKE_FAIL });
    CHECK(evr_etest_submit(t, evr_etest_job(32), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a\n  - name: b\n    run: echo b\n")
          == EVR_OK);
    CHECK(evr_etest_submit(t, evr_etest_job(33), EVR_ETEST_HEAD "steps:\n"
                           "  - name: a\n    run: echo a\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(32)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_job_status(t, evr_etest_job(33)) == EVR_JOB_FAILED);
    /* the list asks for the units' prefix, evrun-<job>- */
    char *p32 = evr_etest_unit(evr_etest_job(32), "x", 1);
    char *p33 = evr_etest_unit(evr_etest_job(33), "x", 1);
    p32[strlen(p32) - strlen("x-1")] = '\0';
    p33[strlen(p33) - strlen("x-1")] = '\0';
    CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_LIST, p32) == 0);
    CHECK(evr_exec_fake_count(t->fake, EVR_FAKE_LIST, p33) == 1);
    free(p32);
    free(p33);
    CHECK(evr_etest_clean(t, 32) && evr_etest_clean(t, 33));
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
    EVR_TEST_RUN(test_prep_failed_reason);
    EVR_TEST_RUN(test_retry);
    EVR_TEST_RUN(test_retry_exhausted);
    EVR_TEST_RUN(test_retry_after_failure);
    EVR_TEST_RUN(test_limit_reason);
    EVR_TEST_RUN(test_retry_lost);
    EVR_TEST_RUN(test_cancel);
    EVR_TEST_RUN(test_pause_resume);
    EVR_TEST_RUN(test_pause_holds_start);
    EVR_TEST_RUN(test_early_create);
    EVR_TEST_RUN(test_pause_stops_timeout);
    EVR_TEST_RUN(test_cancel_paused);
    EVR_TEST_RUN(test_on_failure);
    EVR_TEST_RUN(test_stopped_not_timed_out);
    EVR_TEST_RUN(test_cancel_all_now);
    EVR_TEST_RUN(test_reject);
    EVR_TEST_RUN(test_wait_before_output);
    EVR_TEST_RUN(test_secret_split);
    EVR_TEST_RUN(test_two_jobs);
    EVR_TEST_RUN(test_retry_with_early_next);
    EVR_TEST_RUN(test_output_due_stored_at_once);
    EVR_TEST_RUN(test_one_step_no_workspace);
    EVR_TEST_RUN(test_sweep_only_in_doubt);
    EVR_TEST_END();
}
