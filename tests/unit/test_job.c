/*  test_job: the job state machine, legal paths and every kind of illegal
    transition (reported with job, event and state; state unchanged). */
#include "evr_job.h"
#include "evr_synth.h"
#include "evr_test.h"

#define JOB "01JQ7ZK3M8X2V9T4B6N0C5D7EF"

/*  Applies events[0..n) giving them jseq 1.. and seq 1..; returns the
    number applied before the first failure. */
static size_t
s_apply_all(evr_job_t *job, evr_event_t **evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        evs[i]->jseq = (uint32_t) i + 1;
        evs[i]->seq = i + 1;
        evs[i]->time = 1000 + i;
        evr_err_t err;
        if (evr_job_apply(job, evs[i], &err)) {
            fprintf(stderr, "  event %zu: %s\n", i, err.msg);
            return i;
        }
    }
    return n;
}

static void
test_lifecycle(void)
{
    size_t n;
    evr_event_t **evs = evr_synth_job(JOB, 3, 1000, 300, &n);
    evr_job_t job = { 0 };
    CHECK(s_apply_all(&job, evs, n) == n);
    CHECK(job.status == EVR_JOB_SUCCEEDED);
    CHECK(evr_job_is_final(&job));
    CHECK(job.steps.n == 3);
    CHECK(evr_job_steps_done(&job) == 3);
    CHECK(job.last_jseq == n);
    const evr_stepstate_t *st = evr_job_find_step(&job, "step-2");
    CHECK(st && st->status == EVR_STEP_SUCCEEDED);
    CHECK(st && st->out_stdout + st->out_stderr == 1000);
    CHECK(st && st->chunks == 4);
    CHECK(st && st->attempt == 1);
    CHECK_STR(st ? st->container : NULL, "evrun-" JOB "-step-2-1");
    CHECK(job.created == 1000 && job.finished == 1000 + n - 1);
    evr_rec_free(&evr_job_type, &job);
    evr_synth_free(evs, n);
}

/*  Applies ev (as the next event) to a copy of job and expects a refusal
    whose message contains want; checks job is unchanged. */
static void
s_expect_illegal(const evr_job_t *job, evr_event_t *ev, const char *want)
{
    evr_job_t copy = { 0 };
    evr_rec_copy(&evr_job_type, &copy, job);
    if (!ev->jseq)
        ev->jseq = job->last_jseq + 1;
    evr_err_t err = { "" };
    CHECK(evr_job_apply(&copy, ev, &err) == EVR_ERR_STATE);
    CHECK_CONTAINS(err.msg, want);
    CHECK_CONTAINS(err.msg, "job " JOB);
    CHECK(evr_rec_equal(&evr_job_type, &copy, job));
    evr_rec_free(&evr_job_type, &copy);
}

static evr_event_t *
s_ev(evr_evtype_t t, const char *step)
{
    evr_event_t *ev = evr_event_new(t);
    ev->job = evr_strdup(JOB);
    if (step)
        ev->data.step = evr_strdup(step);
    return ev;
}

static void
test_illegal(void)
{
    size_t n;
    evr_event_t **evs = evr_synth_job(JOB, 2, 100, 100, &n);
    /* run up to the first step's output: accepted, started, queued, starting, started */
    evr_job_t job = { 0 };
    CHECK(s_apply_all(&job, evs, 5) == 5);
    CHECK(job.status == EVR_JOB_RUNNING);

    evr_event_t *ev = s_ev(EVR_EV_STEP_OUTPUT, "step-1");
    ev->data.stream = evr_strdup("stdout");
    ev->data.offset = 7;   /* nothing stored yet */
    ev->data.raw = 3;
    s_expect_illegal(&job, ev, "stdout offset 7 but 0 bytes are stored");
    evr_event_destroy(&ev);

    ev = s_ev(EVR_EV_STEP_STARTED, "step-1");
    s_expect_illegal(&job, ev, "step step-1 is running (attempt 1): only a starting step is started");
    evr_event_destroy(&ev);

    ev = s_ev(EVR_EV_STEP_QUEUED, "nope");
    s_expect_illegal(&job, ev, "no such step in the pipeline");
    evr_event_destroy(&ev);

    ev = s_ev(EVR_EV_STEP_SKIPPED, "step-1");
    s_expect_illegal(&job, ev, "only a step that has not started is skipped");
    evr_event_destroy(&ev);

    ev = s_ev(EVR_EV_JOB_STARTED, NULL);
    s_expect_illegal(&job, ev, "job.started");
    evr_event_destroy(&ev);

    ev = s_ev(EVR_EV_JOB_RESUMED, NULL);
    s_expect_illegal(&job, ev, "illegal in state running: only a paused job resumes");
    evr_event_destroy(&ev);

    ev = s_ev(EVR_EV_JOB_ACCEPTED, NULL);
    s_expect_illegal(&job, ev, "the job was accepted before");
    evr_event_destroy(&ev);

    /* a gap in the per-job seq */
    ev = s_ev(EVR_EV_JOB_PAUSED, NULL);
    ev->jseq = job.last_jseq + 2;
    s_expect_illegal(&job, ev, "per-job seq 6 expected");
    evr_event_destroy(&ev);

    /* another job's event */
    ev = s_ev(EVR_EV_JOB_PAUSED, NULL);
    free(ev->job);
    ev->job = evr_strdup("01JQ7ZK3M8X2V9T4B6N0C5D7EG");
    evr_err_t err;
    CHECK(evr_job_apply(&job, ev, &err) == EVR_ERR_STATE);
    CHECK_CONTAINS(err.msg, "belongs to another job");
    evr_event_destroy(&ev);

    /* a step finishing twice */
    evr_rec_free(&evr_job_type, &job);
    memset(&job, 0, sizeof job);
    CHECK(s_apply_all(&job, evs, n - 1) == n - 1);   /* all but job.finished */
    ev = s_ev(EVR_EV_STEP_FINISHED, "step-2");
    s_expect_illegal(&job, ev, "step step-2 is succeeded (attempt 1): only a queued, starting or running step finishes");
    evr_event_destroy(&ev);

    /* an event after job.finished */
    evs[n - 1]->jseq = (uint32_t) n;
    CHECK(evr_job_apply(&job, evs[n - 1], &err) == EVR_OK);
    ev = s_ev(EVR_EV_JOB_CANCEL_REQUESTED, NULL);
    s_expect_illegal(&job, ev, "illegal in state succeeded: the job has finished");
    evr_event_destroy(&ev);

    /* runner events are not job events */
    ev = evr_event_new(EVR_EV_RUNNER_STARTED);
    CHECK(evr_job_apply(&job, ev, &err) == EVR_ERR_STATE);
    CHECK_CONTAINS(err.msg, "not a job event");
    evr_event_destroy(&ev);

    evr_rec_free(&evr_job_type, &job);
    evr_synth_free(evs, n);
}

static void
test_first_event_must_accept(void)
{
    evr_job_t job = { 0 };
    evr_event_t *ev = s_ev(EVR_EV_JOB_STARTED, NULL);
    ev->jseq = 1;
    evr_err_t err;
    CHECK(evr_job_apply(&job, ev, &err) == EVR_ERR_STATE);
    CHECK_CONTAINS(err.msg, "illegal in state none: only a queued job starts");
    CHECK(job.id == NULL && job.status == EVR_JOB_NONE && job.last_jseq == 0);
    evr_event_destroy(&ev);
}

static void
test_pause_cancel_retry(void)
{
    size_t n;
    evr_event_t **evs = evr_synth_job(JOB, 1, 0, 1, &n);
    evr_job_t job = { 0 };
    CHECK(s_apply_all(&job, evs, 5) == 5);   /* step-1 running */
    evr_err_t err;
    evr_event_t *ev = s_ev(EVR_EV_JOB_PAUSED, NULL);
    ev->jseq = 6;
    CHECK(evr_job_apply(&job, ev, &err) == EVR_OK && job.status == EVR_JOB_PAUSED);
    evr_event_destroy(&ev);
    ev = s_ev(EVR_EV_JOB_RESUMED, NULL);
    ev->jseq = 7;
    CHECK(evr_job_apply(&job, ev, &err) == EVR_OK && job.status == EVR_JOB_RUNNING);
    evr_event_destroy(&ev);
    /* the step is lost, then retried as attempt 2 */
    ev = s_ev(EVR_EV_STEP_FINISHED, "step-1");
    ev->jseq = 8;
    ev->data.status = evr_strdup("lost");
    ev->data.exit_code = -1;
    CHECK(evr_job_apply(&job, ev, &err) == EVR_OK);
    CHECK(evr_job_find_step(&job, "step-1")->status == EVR_STEP_LOST);
    evr_event_destroy(&ev);
    ev = s_ev(EVR_EV_STEP_QUEUED, "step-1");
    ev->jseq = 9;
    ev->data.attempt = 1;
    CHECK(evr_job_apply(&job, ev, &err) == EVR_ERR_STATE);
    CHECK_CONTAINS(err.msg, "a retry needs a higher attempt");
    ev->data.attempt = 2;
    CHECK(evr_job_apply(&job, ev, &err) == EVR_OK);
    CHECK(evr_job_find_step(&job, "step-1")->attempt == 2);
    CHECK(evr_job_find_step(&job, "step-1")->status == EVR_STEP_QUEUED);
    evr_event_destroy(&ev);
    ev = s_ev(EVR_EV_JOB_CANCEL_REQUESTED, NULL);
    ev->jseq = 10;
    ev->data.reason = evr_strdup("user asked");
    CHECK(evr_job_apply(&job, ev, &err) == EVR_OK && job.cancel_requested);
    evr_event_destroy(&ev);
    ev = s_ev(EVR_EV_STEP_SKIPPED, "step-1");
    ev->jseq = 11;
    ev->data.reason = evr_strdup("cancelled");
    CHECK(evr_job_apply(&job, ev, &err) == EVR_OK);
    evr_event_destroy(&ev);
    ev = s_ev(EVR_EV_JOB_FINISHED, NULL);
    ev->jseq = 12;
    ev->data.status = evr_strdup("cancelled");
    CHECK(evr_job_apply(&job, ev, &err) == EVR_OK && job.status == EVR_JOB_CANCELLED);
    CHECK(evr_job_steps_done(&job) == 1);
    evr_event_destroy(&ev);
    evr_rec_free(&evr_job_type, &job);
    evr_synth_free(evs, n);
}

/*  A job.finished{succeeded} at jseq (the job's next), from a runner
    (evr_job_apply_sent) on a copy of job: refused naming want, or (want
    NULL) taken; evr_job_apply (a runner's own log) takes it either way. */
static void
s_expect_sent(const evr_job_t *job, const char *want)
{
    evr_job_t a = { 0 }, b = { 0 };
    evr_rec_copy(&evr_job_type, &a, job);
    evr_rec_copy(&evr_job_type, &b, job);
    evr_event_t *ev = s_ev(EVR_EV_JOB_FINISHED, NULL);
    ev->jseq = job->last_jseq + 1;
    ev->data.status = evr_strdup("succeeded");
    evr_err_t err = { "" };
    if (want) {
        CHECK(evr_job_apply_sent(&a, ev, &err) == EVR_ERR_STATE);
        CHECK_CONTAINS(err.msg, want);
        CHECK(evr_rec_equal(&evr_job_type, &a, job));
    }
    else
        CHECK(evr_job_apply_sent(&a, ev, &err) == EVR_OK && a.status == EVR_JOB_SUCCEEDED);
    CHECK(evr_job_apply(&b, ev, &err) == EVR_OK && b.status == EVR_JOB_SUCCEEDED);
    evr_event_destroy(&ev);
    evr_rec_free(&evr_job_type, &a);
    evr_rec_free(&evr_job_type, &b);
}

/*  What the broker asks more of a runner's events (evr_job_apply_sent):
    a job succeeds once started with every step ended; job.accepted's
    pipeline is its spec's.  Other ends and a runner's refusal pass. */
static void
test_sent(void)
{
    size_t n;
    evr_event_t **evs = evr_synth_job(JOB, 2, 0, 1, &n);   /* 2 steps, no output */
    evr_job_t job = { 0 };
    evr_err_t err;
    CHECK(s_apply_all(&job, evs, 1) == 1);   /* accepted */
    s_expect_sent(&job, "illegal in state queued: a job succeeds only once started");
    evr_event_t *ev = s_ev(EVR_EV_JOB_FINISHED, NULL);   /* a runner's refusal */
    ev->jseq = 2;
    ev->data.status = evr_strdup("failed");
    evr_job_t copy = { 0 };
    evr_rec_copy(&evr_job_type, &copy, &job);
    CHECK(evr_job_apply_sent(&copy, ev, &err) == EVR_OK && copy.status == EVR_JOB_FAILED);
    evr_rec_free(&evr_job_type, &copy);
    evr_event_destroy(&ev);
    evr_rec_free(&evr_job_type, &job);
    memset(&job, 0, sizeof job);
    CHECK(s_apply_all(&job, evs, 2) == 2);   /* started: both steps pending */
    s_expect_sent(&job, "step step-1 is pending: a job succeeds only once every step has ended");
    evr_rec_free(&evr_job_type, &job);
    memset(&job, 0, sizeof job);
    CHECK(s_apply_all(&job, evs, 5) == 5);   /* step-1 running */
    s_expect_sent(&job, "illegal in state running: step step-1 is running");
    ev = s_ev(EVR_EV_JOB_PAUSED, NULL);
    ev->jseq = 6;
    CHECK(evr_job_apply_sent(&job, ev, &err) == EVR_OK);
    evr_event_destroy(&ev);
    s_expect_sent(&job, "illegal in state paused: step step-1 is running");
    ev = s_ev(EVR_EV_JOB_FINISHED, NULL);   /* cancelled with a step running: taken */
    ev->jseq = 7;
    ev->data.status = evr_strdup("cancelled");
    evr_rec_copy(&evr_job_type, &copy, &job);
    CHECK(evr_job_apply_sent(&copy, ev, &err) == EVR_OK && copy.status == EVR_JOB_CANCELLED);
    evr_rec_free(&evr_job_type, &copy);
    evr_event_destroy(&ev);
    evr_rec_free(&evr_job_type, &job);
    memset(&job, 0, sizeof job);
    CHECK(s_apply_all(&job, evs, n - 1) == n - 1);   /* every step ended */
    s_expect_sent(&job, NULL);
    /* job.accepted of another pipeline than its spec's */
    evr_rec_free(&evr_job_type, &job);
    memset(&job, 0, sizeof job);
    free(evs[0]->data.pipeline);
    evs[0]->data.pipeline = evr_strdup("other");
    evs[0]->jseq = 1;
    CHECK(evr_job_apply_sent(&job, evs[0], &err) == EVR_ERR_STATE);
    CHECK_CONTAINS(err.msg, "its pipeline \"other\" is not its spec's (\"synthetic\")");
    CHECK(job.status == EVR_JOB_NONE && job.last_jseq == 0);
    CHECK(evr_job_apply(&job, evs[0], &err) == EVR_OK);
    evr_rec_free(&evr_job_type, &job);
    evr_synth_free(evs, n);
}

int
main(void)
{
    EVR_TEST_RUN(test_lifecycle);
    EVR_TEST_RUN(test_illegal);
    EVR_TEST_RUN(test_first_event_must_accept);
    EVR_TEST_RUN(test_pause_cancel_retry);
    EVR_TEST_RUN(test_sent);
    EVR_TEST_END();
}
