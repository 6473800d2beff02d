/*  evr_trigger.c: a step starts a registered pipeline (`trigger`, on the
    runner session).

    `evrun-job trigger PIPELINE` in a step goes to its runner over the
    job's control channel; the runner checks the job's `triggers:` and
    sends `trigger` here on its session: the child's job id (derived by
    the runner from the parent job, step and call, so that a trigger sent
    again after a crash names the same job), the pipeline, its args and
    the parent job and step, or (evrun-job trigger --file) the spec of a
    pipeline file of the parent's source, read and checked by the runner.
    The broker submits the pipeline's last good version as a `start` does
    (or that spec as a client's submit), with the parent recorded in the submit (and
    so in the dispatch and the child's job.accepted), commits it before it
    answers, and answers `triggered` on the session: the job, `existing`
    when that id was known already, or an error code and message (an id
    retention may have removed is refused, as a submit of it is: that
    child may have run already).  A child's place in its chain of
    follow-ups is kept (depth/CHILD: 1 for a child of a job no trigger
    started): a trigger past EVR_TRIGGER_DEPTH is refused, so a pipeline
    that triggers itself comes to an end. */
#include <fnmatch.h>

#include "evr_broker_int.h"
#include "evr_log.h"
#include "evr_pipelines.h"

/*  A spec is the runner's word: taken only when the parent's triggers:
    has a file:GLOB entry matching the file's path (as the runner
    checked), so a runner can start no more than the pipelines of its own
    jobs let it (s_parent_ours has checked that the parent is the
    runner's).  The parent's spec is the one the queue dispatched while
    its job.accepted is on its way (the queue still holds the submit),
    else the one its job.accepted stored.  Else false with why. */
static bool
s_file_allowed(evr_broker_t *b, const evr_msg_t *msg, char *why, size_t len)
{
    const evr_queue_job_t *j = evr_queue_find(b, msg->parent_job);
    evr_spec_t *ps = NULL;
    evr_strmap_t pa = { 0 };
    evr_err_t err;
    evr_msg_t *sub = j ? evr_queue_submit_of(b, j) : NULL;
    const evr_spec_t *spec = sub ? sub->spec : NULL;
    if (!spec && evr_store_job_spec(b->store, msg->parent_job, &ps, &pa, &err) == EVR_OK)
        spec = ps;
    bool ok = false;
    const size_t pl = sizeof EVR_SPEC_TRIGGER_FILE - 1;
    for (uint32_t i = 0; spec && i < spec->triggers.n && !ok; i++)
        ok = !strncmp(spec->triggers.v[i], EVR_SPEC_TRIGGER_FILE, pl)
             && fnmatch(spec->triggers.v[i] + pl, msg->file, FNM_PATHNAME) == 0;
    if (!ok)
        snprintf(why, len, "file %s is not in the triggers: of job %s", msg->file,
                 msg->parent_job);
    evr_spec_destroy(&ps);
    evr_strmap_free(&pa);
    evr_msg_destroy(&sub);
    return ok;
}

/*  Whether runner may name job as a trigger's parent: a runner triggers
    for its own jobs only, those the archive holds as run by it, or (its
    job.accepted still on its way) that the queue holds as dispatched to
    it.  Else the code of the refusal, with why: `conflict` for a job of
    another runner or one that never ran, `not_found` for one the broker
    does not know (a made-up parent would let a runner start any
    registered pipeline in a job's name). */
static const char *
s_parent_ours(evr_broker_t *b, const char *runner, const char *job, char *why, size_t len)
{
    evr_job_t pj = { 0 };
    evr_err_t err;
    const evr_queue_job_t *q = evr_queue_find(b, job);
    const char *on = q && q->runner ? q->runner : NULL;
    bool stored = !on && evr_store_get_job(b->store, job, &pj, &err) == EVR_OK;
    if (stored)
        on = pj.runner;
    bool ours = on && strcmp(on, runner) == 0;
    if (!ours && on)
        snprintf(why, len, "job %s does not run on runner %s: it triggers nothing there (it "
                 "runs on %s)", job, runner, on);
    else if (!ours)
        snprintf(why, len, "job %s is not known to the broker as a job of runner %s (%s): a "
                 "runner triggers for the jobs it was sent only", job, runner,
                 stored ? "it never ran" : q ? "it waits in the queue" : "no such job");
    evr_rec_free(&evr_job_type, &pj);
    return ours ? NULL : stored || q ? EVR_CODE_CONFLICT : EVR_CODE_NOT_FOUND;
}

/*  Why a trigger is refused before its submit: the code of the refusal
    and why, or NULL.  A malformed one (a spec without its file, or of
    another pipeline) is `bad_request`; then the parent is checked. */
static const char *
s_refusal(evr_broker_t *b, const char *runner, const evr_msg_t *msg, char *why, size_t len)
{
    if (msg->spec && strcmp(msg->spec->pipeline, msg->pipeline)) {
        snprintf(why, len, "trigger.pipeline: %s is not the spec's pipeline (%s)",
                 msg->pipeline, msg->spec->pipeline);
        return EVR_CODE_BAD_REQUEST;
    }
    if (msg->spec && !msg->file) {
        snprintf(why, len, "trigger.file: required with trigger.spec");
        return EVR_CODE_BAD_REQUEST;
    }
    if (msg->file && !msg->spec) {   /* else the registered pipeline would start */
        snprintf(why, len, "trigger.file: only with trigger.spec (the file's pipeline)");
        return EVR_CODE_BAD_REQUEST;
    }
    const char *code = s_parent_ours(b, runner, msg->parent_job, why, len);
    if (!code && msg->spec && !s_file_allowed(b, msg, why, len))
        code = EVR_CODE_CONFLICT;
    return code;
}

/*  The place in its chain of a child of parent: 1 + the parent's (0 for
    a job no trigger started, or one triggered before depths were kept). */
static unsigned
s_depth(evr_broker_t *b, const char *parent)
{
    char key[EVR_ULID_LEN + 8], val[16];
    snprintf(key, sizeof key, EVR_KV_DEPTH "%s", parent);
    evr_err_t err;
    unsigned d = 0;
    if (evr_store_kv_get(b->store, key, val, sizeof val, &err) == EVR_OK)
        d = (unsigned) strtoul(val, NULL, 10);
    return d + 1;
}

/*  Answers the runner at rid about job. */
static void
s_answer(evr_broker_t *b, zframe_t *rid, const char *job, bool existing, const char *code,
         const char *message)
{
    evr_msg_t m = { .type = EVR_MSG_TRIGGERED, .job = (char *) job, .existing = existing,
                    .code = (char *) code, .message = (char *) message };
    evr_err_t err;
    if (evr_bus_send(b->runners, rid, &m, &err))
        evr_broker_warn(b, "the answer to a trigger of job %s was not sent: %s", job, err.msg);
}

void
evr_trigger_on_message(evr_broker_t *b, zframe_t *rid, const char *runner, evr_msg_t *msg)
{
    const evr_pipe_t *p = msg->spec ? NULL : evr_pipelines_find(b, msg->pipeline);
    char why[1024];
    const char *code = s_refusal(b, runner, msg, why, sizeof why);
    if (code) {
        s_answer(b, rid, msg->job, false, code, why);
        return;
    }
    if (!p && !msg->spec && evr_queue_known(b, NULL, msg->job)) {
        /* sent again: the job it started, also once its pipeline is gone */
        s_answer(b, rid, msg->job, true, NULL, NULL);
        return;
    }
    if (!p && !msg->spec) {
        evr_pipelines_unknown(b, msg->pipeline, true, why, sizeof why);
        s_answer(b, rid, msg->job, false, EVR_CODE_NOT_FOUND, why);
        return;
    }
    unsigned depth = s_depth(b, msg->parent_job);
    if (depth > EVR_TRIGGER_DEPTH) {
        snprintf(why, sizeof why, "job %s is follow-up %u of a chain: at most %d deep",
                 msg->parent_job, depth - 1, EVR_TRIGGER_DEPTH);
        s_answer(b, rid, msg->job, false, EVR_CODE_TOO_LARGE, why);
        return;
    }
    evr_msg_t m;
    if (p)
        evr_pipelines_submit_msg(p, msg->job, &msg->args, NULL, &m);
    else {   /* a pipeline file of the parent's source: submitted as a client's spec */
        m = (evr_msg_t) { .type = EVR_MSG_SUBMIT, .job = evr_strdup(msg->job),
                          .spec = msg->spec };
        msg->spec = NULL;
        for (uint32_t i = 0; i < msg->args.n; i++)
            evr_strmap_set(&m.args, msg->args.k[i], msg->args.v[i]);
    }
    m.parent_job = evr_strdup(msg->parent_job);
    m.parent_step = evr_strdup(msg->parent_step);
    bool existing = false;
    char job[EVR_ULID_LEN + 1];
    snprintf(job, sizeof job, "%s", msg->job);
    evr_queue_flush(b);     /* the submits before it are committed and answered first */
    if (!evr_queue_offer(b, NULL, &m, "trigger", &existing, &code, why, sizeof why)) {
        s_answer(b, rid, job, false, code, why);
        evr_msg_clear(&m);
        return;
    }
    if (!existing) {   /* the parent's list of children (evrun-cli status) */
        char key[EVR_ULID_LEN * 2 + 8], dkey[EVR_ULID_LEN + 8], dval[16];
        snprintf(key, sizeof key, EVR_KV_KIDS "%s/%s", msg->parent_job, job);
        snprintf(dkey, sizeof dkey, EVR_KV_DEPTH "%s", job);
        snprintf(dval, sizeof dval, "%u", depth);
        evr_store_kv_t ops[2] = { { key, "", 0 }, { dkey, dval, strlen(dval) } };
        evr_err_t err;
        if (evr_store_kv_write_lazy(b->store, ops, 2, &err))
            evr_broker_warn(b, "job %s: its parent's list of children not written: %s", job,
                            err.msg);
    }
    evr_queue_flush(b);     /* committed before the runner hears of it */
    evr_broker_info(b, "job %s of %s%s triggered by job %s step %s (runner %s)%s", job,
                    msg->pipeline, p ? "" : " (a file of its source)", msg->parent_job, msg->parent_step, runner,
                    existing ? ": known already" : "");
    if (b->failure)
        s_answer(b, rid, job, false, EVR_CODE_INTERNAL, "the broker cannot write its store");
    else
        s_answer(b, rid, job, existing, NULL, NULL);
    evr_msg_clear(&m);
}

void
evr_trigger_query(evr_broker_t *b, zframe_t *rid, const evr_msg_t *msg)
{
    evr_queue_flush(b);     /* it sees the submits before it */
    evr_msg_t pm = { 0 }, m = { 0 };
    if (msg->job && msg->pipeline) {   /* exactly one of the two */
        evr_msg_t no = { .type = EVR_MSG_QUERIED, .seq = msg->seq,
                         .code = (char *) EVR_CODE_BAD_REQUEST,
                         .message = (char *) "query: give job or pipeline, not both" };
        evr_bus_send(b->runners, rid, &no, NULL);
        return;
    }
    const char *job = msg->job;
    if (!job && msg->pipeline) {
        evr_pipelines_jobs_of(b, msg->pipeline, &pm);
        job = pm.last_job;
    }
    evr_err_t err;
    evr_rc_t rc = job ? evr_broker_job_view(b, job, true, &m, &err) : EVR_ERR_NOTFOUND;
    bool found = rc == EVR_OK;
    m.type = EVR_MSG_QUERIED;
    m.seq = msg->seq;
    m.waiting = pm.waiting;
    m.running = pm.running;
    if (!m.pipeline && msg->pipeline)
        m.pipeline = evr_strdup(msg->pipeline);
    if (rc && rc != EVR_ERR_NOTFOUND) {   /* the store failed: not a job that is not there */
        m.code = evr_strdup(EVR_CODE_INTERNAL);
        m.message = evr_strdup(err.msg);
    }
    else if (!found && msg->job) {
        m.code = evr_strdup(EVR_CODE_NOT_FOUND);
        m.message = evr_asprintf("no job %s (unknown, or removed by retention)", msg->job);
    }
    else if (!msg->job && !msg->pipeline) {
        m.code = evr_strdup(EVR_CODE_BAD_REQUEST);
        m.message = evr_strdup("query: give job or pipeline");
    }
    if (evr_bus_send(b->runners, rid, &m, &err))
        evr_broker_warn(b, "the answer to a runner's query was not sent: %s", err.msg);
    evr_msg_clear(&m);
    evr_msg_clear(&pm);
}
