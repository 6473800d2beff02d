/*  evr_recover.c: taking jobs up again after the runner was killed.

    The store says how far each unfinished job got; the job's executor
    says what became of its units meanwhile (they are found by their
    deterministic names).  Per step:
      - recorded as queued, or starting with no unit: create it now;
      - a unit created but never started: start it;
      - running or paused: read its log so far now and then, and once
        it has exited whole, each time past exactly the bytes per stream
        already stored; its unit is paused or resumed meanwhile to match
        the job's recorded state (a crash may have come between
        job.paused and the executor's pause);
      - exited while the runner was down: collect the rest of its log and
        its exit code;
      - gone: the step is lost (and the job fails).
    Each such decision is a step.recovered event; runner.recovered counts
    the jobs.  Timeouts keep counting from the recorded times (the job's
    from its job.accepted, a step's from its start), less the time the
    job was paused (from its job.paused and job.resumed); a job that
    started after its preparation failed still fails (job.started's
    reason); a cancel requested before the crash is carried out; a paused
    job stays paused, its steps not started, until evr_engine_resume.

    Before a job is taken up, the temporary files the killed runner left
    in its artifacts directory are removed (s_tmp_sweep).
*/
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_engine_int.h"
#include "evr_log.h"

/*  A wall-clock time of the log as a point on the monotonic clock. */
static uint64_t
s_to_mono(uint64_t wall_ns)
{
    uint64_t now_wall = evr_now_ns(), now_mono = evr_mono_ns();
    if (!wall_ns || wall_ns >= now_wall)
        return now_mono;
    uint64_t ago = now_wall - wall_ns;
    return ago < now_mono ? now_mono - ago : 1;
}

static void
s_recovered(evr_eng_step_t *st, const char *how)
{
    evr_event_t *ev = evr_eng_emit(st->job, EVR_EV_STEP_RECOVERED, st);
    ev->data.how = evr_strdup(how);
    evr_eng_step_log(st, "recovered: %s", how);
}

/*  A replayed log: the executor passes on only the bytes past those
    already taken (skip), which go the way live output goes. */
static void
s_replayed(int stream, const uint8_t *data, size_t len, void *arg)
{
    evr_eng_step_t *st = evr_eng_live(arg);
    if (!st)
        return;
    st->skip[stream == 1 ? 0 : 1] += len;
    evr_eng_on_output(stream, data, len, arg);
}

/*  The end of the read of the log: the step's output is complete.  A read
    that failed may have missed some: the step fails, saying why. */
static void
s_replay_end(const evr_exec_result_t *r, void *arg)
{
    evr_eng_step_t *st = evr_eng_live(arg);
    if (st && r->rc && !st->attach_done)
        evr_eng_set_reason(st, "reading the log of %s: %s", st->unit, r->msg);
    evr_eng_on_attach_end(r, arg);
}

/*  A read of the log not followed, whole and in order once the unit has
    exited (podman 4.3 ends a followed read when the container exits,
    long before the end of the log of a fast printer, and drops lines in
    its middle, so a followed read can neither be stored nor be counted
    in the offsets).  While the unit runs, its log is read so far
    (evr_eng_peek): a prefix per stream of the final log. */
void
evr_eng_replay(evr_eng_step_t *st)
{
    if (st->state == EVR_ENG_STEP_PEEKING)
        return;   /* its end (s_peeked) comes back here */
    evr_exec_t *ex = st->job->ex;
    st->attach = ex->ops->logs(ex, st->unit, st->skip, false, s_replayed, s_replay_end,
                               evr_eng_tok(st));
}

/* the least time between two reads of a running container's log */
#define S_PEEK_NS (300 * 1000000ull)

/*  The end of a read of the log so far.  The next one comes after at
    least ten times as long as this one took, so a long log costs little;
    a failed one stored less, which the next read takes.  The unit may
    have exited meanwhile: then the whole log is read now. */
static void
s_peeked(const evr_exec_result_t *r, void *arg)
{
    (void) r;
    evr_eng_step_t *st = evr_eng_live_end(arg);
    if (!st || st->state != EVR_ENG_STEP_PEEKING)
        return;   /* about an earlier attempt, or given up meanwhile */
    st->attach = NULL;
    uint64_t now = evr_mono_ns(), took = now - st->peek_t0;
    st->peek_at = now + (took * 10 > S_PEEK_NS ? took * 10 : S_PEEK_NS);
    if (!st->exit_known) {
        evr_eng_step_to(st, EVR_ENG_STEP_REATTACHED);
        return;
    }
    evr_eng_step_to(st, EVR_ENG_STEP_RUNNING);   /* it exited meanwhile */
    if (!st->attach_done)
        evr_eng_replay(st);
}

void
evr_eng_peek(evr_eng_step_t *st, uint64_t now, uint64_t *next)
{
    if (st->state != EVR_ENG_STEP_REATTACHED)
        return;
    if (now < st->peek_at) {
        if (st->peek_at < *next)
            *next = st->peek_at;
        return;
    }
    evr_eng_step_to(st, EVR_ENG_STEP_PEEKING);
    st->peek_t0 = now;
    evr_exec_t *ex = st->job->ex;
    st->attach = ex->ops->logs(ex, st->unit, st->skip, true, s_replayed, s_peeked,
                               evr_eng_tok(st));
}

/*  What recovery learnt of a step's unit.  Recorded starting
    (INSPECTING): absent, it is created now; created and never started,
    it waits for its turn (both as a step created ahead of its turn);
    anything else means it ran.  Then, whether recorded starting or
    running: still running, it is REATTACHED; exited, its log is read
    whole (RUNNING); gone, the step is lost. */
static void
s_inspected(const evr_exec_result_t *r, void *arg)
{
    evr_eng_step_t *st = evr_eng_live_end(arg);
    if (!st)
        return;
    evr_exec_t *ex = st->job->ex;
    bool starting = st->state == EVR_ENG_STEP_INSPECTING;
    bool running = !r->rc && (r->state == EVR_EXEC_RUNNING || r->state == EVR_EXEC_PAUSED);
    bool exited = !r->rc && r->state == EVR_EXEC_EXITED && !r->lost;   /* lost: below */
    bool created = !r->rc && r->state == EVR_EXEC_CREATED;
    if (r->rc && !r->not_found) {
        /* the executor answered badly: the step cannot be judged; call it lost */
        evr_eng_set_reason(st, "recovery: inspecting %s: %s", st->unit, r->msg);
    }
    if (!st->unit_id && r->id && *r->id)
        st->unit_id = evr_strdup(r->id);
    if (running || (starting && created))   /* it looks for its channel where it was */
        evr_eng_chan_open(st);
    if (starting && r->not_found) {
        evr_eng_test_pause("recover_absent", st);
        s_recovered(st, "created");
        evr_eng_step_to(st, EVR_ENG_STEP_EARLY_CREATING);
        evr_eng_after(st->job->eng, evr_eng_do_create, st, NULL, 0);
        return;
    }
    if (starting && created) {
        s_recovered(st, "restarted");
        evr_eng_step_to(st, EVR_ENG_STEP_EARLY_CREATED);
        return;   /* the scheduler starts it in its turn */
    }
    if (starting)   /* it ran: its turn had come */
        st->job->running++;
    if (running || exited) {
        s_recovered(st, running ? "reattached" : "collected");
        /* as the executor has it; then as the job wants it (a stopping
           job resumes it to stop it) */
        st->frozen = r->state == EVR_EXEC_PAUSED;
        /* a running unit's log is read so far now and then
           (evr_eng_peek), and whole once it has exited (evr_eng_on_exit) */
        evr_eng_state_t to = running ? EVR_ENG_STEP_REATTACHED : EVR_ENG_STEP_RUNNING;
        if (!running && r->finished_at)
            st->exited_at = s_to_mono(r->finished_at);
        if (starting)
            evr_eng_record_start(st, to, r->started_at);   /* step.started, and the wait */
        else {
            evr_eng_step_to(st, to);
            ex->ops->wait(ex, st->unit, evr_eng_on_exit, evr_eng_tok(st));
        }
        if (!running)
            evr_eng_replay(st);
        if (running && !evr_eng_stopping(st->job))
            evr_eng_step_freeze(st, st->job->paused);
        return;
    }
    /* gone, ended with no exit status (or in a state evrun never leaves a
       unit in) */
    s_recovered(st, "lost");
    if (starting)
        evr_eng_record_start(st, EVR_ENG_STEP_RUNNING, r->started_at);
    if (!r->rc && r->lost)
        evr_eng_set_reason(st, "%s %s: %s; what was left of it was killed",
                           ex->ops->unit_word, st->unit, r->msg ? r->msg : "no exit status");
    else
        evr_eng_set_reason(st, "%s %s is gone", ex->ops->unit_word, st->unit);
    st->lost = true;
    st->exit_code = -1;
    st->exit_known = true;
    st->attach_done = true;
    evr_eng_maybe_end(st);
}

/*  Sets one step up from its recorded state. */
static void
s_adopt_step(evr_eng_step_t *st, const evr_stepstate_t *rec)
{
    evr_eng_job_t *job = st->job;
    st->attempt = rec->attempt ? rec->attempt : 1;
    /* outputs come from the log: a step.outputs recorded is never read again */
    for (uint32_t i = 0; i < rec->outputs.n; i++)
        evr_strmap_set(&st->outputs, rec->outputs.k[i], rec->outputs.v[i]);
    st->outputs_read = rec->outputs.n > 0;
    switch ((evr_step_status_t) rec->status) {
    case EVR_STEP_PENDING: return;
    case EVR_STEP_QUEUED:
        /* queued, its intent not yet recorded: record it, then create;
           the scheduler starts it in its turn */
        evr_eng_step_to(st, EVR_ENG_STEP_EARLY_CREATING);
        st->unit = evr_eng_unit_name(job, st);
        evr_eng_emit(job, EVR_EV_STEP_STARTING, st)->data.container = evr_strdup(st->unit);
        evr_eng_after(job->eng, evr_eng_do_create, st, NULL, 0);
        return;
    case EVR_STEP_STARTING:
    case EVR_STEP_RUNNING:
        /* a starting step may have been created ahead of its turn: it counts
           as running only once the executor shows it ran */
        if (rec->status == EVR_STEP_RUNNING) {
            evr_eng_step_to(st, EVR_ENG_STEP_INSPECTING_RUN);
            job->running++;
        }
        else
            evr_eng_step_to(st, EVR_ENG_STEP_INSPECTING);
        st->unit = rec->container ? evr_strdup(rec->container) : evr_eng_unit_name(job, st);
        if (rec->container_id)
            st->unit_id = evr_strdup(rec->container_id);
        st->t_start = s_to_mono(rec->started);
        st->out[0].raw_off = st->skip[0] = rec->out_stdout;
        st->out[1].raw_off = st->skip[1] = rec->out_stderr;
        job->ex->ops->inspect(job->ex, st->unit, s_inspected, evr_eng_tok(st));
        return;
    default:
        evr_eng_step_to(st, rec->status == EVR_STEP_SKIPPED ? EVR_ENG_STEP_SKIPPED
                                                             : EVR_ENG_STEP_FINISHED);
        st->status = (evr_step_status_t) rec->status;
        st->exit_code = rec->exit_code;
        st->exit_known = true;
        if (rec->reason)
            st->reason = evr_strdup(rec->reason);
        st->allowed = rec->allowed;
        if (rec->started && rec->status != EVR_STEP_SKIPPED) {
            /* its recorded duration, for the summary of --exec (a step
               that never started has none) */
            st->t_start = s_to_mono(rec->started);
            st->t_end = st->t_start + rec->duration * 1000000ull;
        }
        if (st->status != EVR_STEP_SUCCEEDED && st->status != EVR_STEP_SKIPPED
            && st->status != EVR_STEP_CANCELLED && !st->allowed)
            job->failed = true;
        return;
    }
}

/*  Whether every step of the job was recorded over (finished or
    skipped), the last of them before its deadline: the steps ended in
    time, and the job's timeout, which counts to the end of its steps,
    is over with them.  A runner killed after that (in a hook after the
    steps, POST_EXECUTION to CLEANUP, or before job.finished) did not
    time the job out, and its restart, after the deadline, must not
    either.  A job timed out before the crash recorded its steps'
    ends (timed_out, skipped) at or after its deadline: its timeout is
    found so again. */
static bool
s_steps_in_time(const evr_eng_job_t *job, const evr_job_t *rec)
{
    uint64_t last = 0;
    if (!job->deadline || !rec->steps.n)
        return false;
    for (uint32_t i = 0; i < rec->steps.n; i++) {
        const evr_stepstate_t *st = evr_job_step(rec, i);
        if (!evr_job_step_is_final(st) || !st->finished)
            return false;
        if (st->finished > last)
            last = st->finished;
    }
    return s_to_mono(last) < job->deadline;
}

/* ----------------------------------------------------------------- pauses */

/*  The job's pauses from its log: [from, to) wall ns, to 0 while open. */
typedef struct {
    uint64_t (*iv)[2];
    size_t n, cap;
} s_pauses_t;

static int
s_pause_event(const evr_event_t *ev, void *arg)
{
    s_pauses_t *p = arg;
    evr_evtype_t t = evr_event_kind(ev);
    if (t == EVR_EV_JOB_PAUSED) {
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 8;
            p->iv = evr_realloc(p->iv, p->cap * sizeof *p->iv);
        }
        p->iv[p->n][0] = ev->time;
        p->iv[p->n++][1] = 0;
    }
    else if (t == EVR_EV_JOB_RESUMED && p->n)
        p->iv[p->n - 1][1] = ev->time;
    return 0;
}

static bool
s_has_timeouts(const evr_spec_t *spec)
{
    if (spec->timeout)
        return true;
    for (uint32_t i = 0; i < spec->steps.n; i++)
        if (evr_spec_step(spec, i)->timeout)
            return true;
    return false;
}

/*  Time paused before the restart counts for no timeout, as in a live
    runner: the job's deadline and its running steps' move by the closed
    pauses of the log (a step's by those since it started); an open pause
    goes on from its recorded start.  Only for jobs with timeouts (it reads
    the job's whole log). */
static void
s_credit_pauses(evr_eng_job_t *job, const evr_job_t *rec)
{
    if (!s_has_timeouts(job->spec))
        return;
    s_pauses_t p = { 0 };
    evr_err_t err;
    if (evr_store_job_events(job->eng->store, job->id, 1, s_pause_event, &p, &err))
        evr_eng_warn("job %s: reading its pauses: %s (timeouts count them)", job->id, err.msg);
    for (size_t k = 0; k < p.n; k++) {
        uint64_t from = p.iv[k][0], to = p.iv[k][1];
        if (!to) {
            job->paused_at = s_to_mono(from);
            continue;
        }
        if (to <= from)
            continue;
        if (job->deadline)
            job->deadline = evr_add_sat(job->deadline, to - from);
        for (uint32_t i = 0; i < job->n; i++) {
            const evr_stepstate_t *sr = evr_job_step(rec, i);
            uint64_t a = sr->started > from ? sr->started : from;
            if (evr_eng_step_has_started(&job->steps[i]) && sr->started && to > a)
                job->steps[i].paused_ns += to - a;
        }
    }
    free(p.iv);
}

static int
s_started_event(const evr_event_t *ev, void *arg)
{
    evr_eng_job_t *job = arg;
    if (evr_event_kind(ev) != EVR_EV_JOB_STARTED)
        return 0;
    if (ev->data.reason) {
        job->failed = job->prep_failed = true;
        free(job->reason);
        job->reason = evr_strdup(ev->data.reason);
    }
    return 1;   /* one job.started, near the log's start: nothing more is read */
}

/*  A job that started after its preparation failed (job.started with a
    reason): it fails, its reason that one (the steps that run after a
    failure run, or ran; the others were skipped with it). */
static void
s_prep_restore(evr_eng_job_t *job)
{
    evr_err_t err;
    if (evr_store_job_events(job->eng->store, job->id, 1, s_started_event, job, &err)
        == EVR_ERR_STORE)
        evr_eng_warn("job %s: reading its job.started: %s", job->id, err.msg);
}

static evr_rc_t
s_adopt(evr_engine_t *e, const char *id, evr_err_t *err)
{
    evr_job_t rec = { 0 };
    struct {
        evr_spec_t *spec;
        evr_strmap_t args;
    } acc = { 0 };
    evr_rc_t rc = evr_store_get_job(e->store, id, &rec, err);
    if (!rc) {
        rc = evr_store_job_spec(e->store, id, &acc.spec, &acc.args, err);
        if (rc == EVR_ERR_NOTFOUND || (!rc && evr_spec_job_steps(acc.spec) != rec.steps.n))
            rc = evr_err_set(err, EVR_ERR_STORE, "job %s: its job.accepted event is missing "
                             "or does not match its state", id);
    }
    evr_eng_job_t *job = NULL;
    if (!rc && !(job = evr_eng_job_new(e, id, acc.spec, &acc.args, false, err))) {
        /* it cannot run again (a secret is gone): it ends failed, saying
           why, and the other jobs go on */
        evr_event_t *ev = evr_event_new(EVR_EV_JOB_FINISHED);
        ev->job = evr_strdup(id);
        ev->data.status = evr_strdup("failed");
        ev->data.reason = evr_asprintf("not recovered: %s", err ? err->msg : "");
        if (e->opts.print)
            printf("evrun-runner: job %s %s\n", id, ev->data.reason);
        rc = evr_store_append(e->store, &ev, 1, err);
        evr_event_destroy(&ev);
        e->unrecoverable++;
    }
    if (!rc && job) {
        job->cancelling = rec.cancel_requested;
        job->killing = rec.cancel_forced;   /* a second cancel: the `always` steps stop too */
        if (job->cancelling)
            evr_eng_job_ends(job);   /* `always` steps' grace counts from now */
        if (job->cancelling && rec.reason)   /* job.cancel_requested's, for job.finished */
            job->cancel_reason = evr_strdup(rec.reason);
        job->recovered = true;
        job->doubt = true;   /* what the runner before made is not all known */
        /* its timeout counts from job.accepted, as when it was taken:
           a restart during its preparation ends it at the same time */
        job->t_accept = s_to_mono(rec.created);
        if (job->spec->timeout)
            job->deadline = evr_add_sat(job->t_accept, evr_ms_to_ns(job->spec->timeout));
        if (rec.status == EVR_JOB_QUEUED)
            /* accepted, never started: prepare as a new job would (its
               hooks not finished first) */
            evr_eng_hooks_recover(job, true);
        else {
            evr_eng_source_restore(job);
            job->phase = EVR_ENG_JOB_RUNNING;
            job->ws_ready = true;   /* it started: its preparation made it */
            s_prep_restore(job);
            evr_eng_cache_recover(job);
            job->t_start = s_to_mono(rec.started);
            /* paused: it stays so, and starts nothing, until resumed */
            job->paused = rec.status == EVR_JOB_PAUSED;
            job->paused_at = evr_mono_ns();
            for (uint32_t i = 0; i < job->n; i++)
                s_adopt_step(&job->steps[i], evr_job_step(&rec, i));
            s_credit_pauses(job, &rec);
            if (s_steps_in_time(job, &rec))
                job->deadline = 0;   /* over: the hooks after the steps have no timeout */
            evr_eng_hooks_recover(job, false);
        }
        if (e->opts.print)
            printf("evrun-runner: recovering job %s (%s, %u/%u steps done)\n", id,
                   evr_job_status_name(rec.status), evr_job_steps_done(&rec), rec.steps.n);
        else    /* a daemon's log line */
            evr_log_info("evrun-runner", "recovering job %s (%s, %u/%u steps done)", id,
                         evr_job_status_name(rec.status), evr_job_steps_done(&rec),
                         rec.steps.n);
    }
    evr_rec_free(&evr_job_type, &rec);
    evr_spec_destroy(&acc.spec);
    evr_strmap_free(&acc.args);
    return rc;
}

/* --------------------------------------------------------------- sweeping */

/*  The job id (upper case) of text, a job id in any case: false when it
    is not one. */
static bool
s_job_id(const char *text, size_t len, char id[EVR_ULID_LEN + 1])
{
    if (len < EVR_ULID_LEN)
        return false;
    for (int i = 0; i < EVR_ULID_LEN; i++) {
        char c = text[i];
        id[i] = c >= 'a' && c <= 'z' ? (char) (c - 'a' + 'A') : c;
    }
    id[EVR_ULID_LEN] = '\0';
    return evr_ulid_valid(id);
}

/*  Whether the job id (any case) is one of this store that has finished:
    only their units and workspaces are removed (an executor may serve
    other runners too). */
static bool
s_finished_here(evr_engine_t *e, const char *id_text, size_t len)
{
    char id[EVR_ULID_LEN + 1];
    if (!s_job_id(id_text, len, id))
        return false;
    evr_job_t job = { 0 };
    bool done = evr_store_get_job(e->store, id, &job, NULL) == EVR_OK && evr_job_is_final(&job);
    evr_rec_free(&evr_job_type, &job);
    return done;
}

/*  A unit's name evrun gave: "evrun-<job lower case>...". */
static bool
s_unit_finished_here(evr_engine_t *e, const char *name)
{
    return strncmp(name, "evrun-", 6) == 0 && s_finished_here(e, name + 6, strlen(name + 6));
}

/*  A workspace, as workspace_list names it: its job id. */
static bool
s_ws_finished_here(evr_engine_t *e, const char *name)
{
    return strlen(name) == EVR_ULID_LEN && s_finished_here(e, name, EVR_ULID_LEN);
}

static void
s_sw_inc(evr_eng_sweep_t *sw)
{
    sw->calls++;
    sw->e->sweeping++;
}

static void
s_sw_dec(evr_eng_sweep_t *sw)
{
    sw->calls--;
    sw->e->sweeping--;
}

static void
s_ws_swept(const evr_exec_result_t *r, void *arg)
{
    (void) r;
    s_sw_dec(arg);
}

static void
s_remove_ws(const char *name, void *arg)
{
    evr_eng_sweep_t *sw = arg;
    if (s_ws_finished_here(sw->e, name)) {
        s_sw_inc(sw);
        sw->ex->ops->workspace_remove(sw->ex, name, s_ws_swept, sw);
    }
}

static void
s_ws_listed(const evr_exec_result_t *r, void *arg)
{
    evr_eng_sweep_t *sw = arg;
    s_sw_dec(sw);
    if (!r->rc)
        evr_eng_each_name(r->names, s_remove_ws, sw);
}

/*  Once the units are gone, the workspaces. */
static void
s_unit_swept(const evr_exec_result_t *r, void *arg)
{
    (void) r;
    evr_eng_sweep_t *sw = arg;
    s_sw_dec(sw);
    if (sw->calls == 1)   /* only the count of the workspace pass is left */
        sw->ex->ops->workspace_list(sw->ex, s_ws_listed, sw);
}

static void
s_remove_unit(const char *name, void *arg)
{
    evr_eng_sweep_t *sw = arg;
    if (s_unit_finished_here(sw->e, name)) {
        s_sw_inc(sw);
        sw->ex->ops->remove(sw->ex, name, s_unit_swept, sw);
    }
}

static void
s_units_listed(const evr_exec_result_t *r, void *arg)
{
    evr_eng_sweep_t *sw = arg;
    /* one count stays for the workspace pass, taken when the last removal ends */
    if (!r->rc)
        evr_eng_each_name(r->names, s_remove_unit, sw);
    if (sw->calls == 1)   /* nothing to remove: straight to the workspaces */
        sw->ex->ops->workspace_list(sw->ex, s_ws_listed, sw);
}

/*  Units and workspaces of finished jobs that a runner killed during its
    cleanup left behind, in every executor.  Per executor, sw->calls
    counts the calls in flight, plus one for the workspace pass, which
    starts when the unit removals are done and whose listing drops that
    one; e->sweeping sums them. */
static void
s_sweep(evr_engine_t *e)
{
    for (size_t i = 0; e->execs[i]; i++) {
        evr_eng_sweep_t *sw = &e->sweeps[i];
        *sw = (evr_eng_sweep_t) { .e = e, .ex = e->execs[i] };
        s_sw_inc(sw);
        sw->ex->ops->list(sw->ex, "evrun-", s_units_listed, sw);
    }
}

/*  Whether name is one of the temporary files of a job's preparation or
    steps, made by mkstemp (six letters or digits for XXXXXX) in
    ARTIFACTS/JOB: .resource-XXXXXX and .resource-XXXXXX.tar (a
    resource's download and its tar, evr_prepare.c), .tarball-XXXXXX (a
    source tarball's download, evr_prepare_source.c), .download-XXXXXX
    (an artifact's, and the list of files its unpack wrote,
    evr_step_artifact.c). */
static bool
s_tmp_name(const char *name)
{
    static const char *const prefixes[] = { ".resource-", ".tarball-", ".download-" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(name, prefixes[i], n) != 0)
            continue;
        const char *x = name + n;
        for (int k = 0; k < 6; k++, x++)
            if (!((*x >= 'a' && *x <= 'z') || (*x >= 'A' && *x <= 'Z') || (*x >= '0' && *x <= '9')))
                return false;
        return !*x || (i == 0 && !strcmp(x, ".tar"));
    }
    return false;
}

/*  The temporary files of the unfinished job id that the killed runner
    left (s_tmp_name), removed: regular files only, in ARTIFACTS/JOB only.
    None is in use: the runner and its offload children (which die with
    it, PR_SET_PDEATHSIG) write them, and this runner holds the state
    directory's lock, so no other runner does (the artifacts directory is
    the state directory's; a job of another store, were it shared, is
    never looked at).  A checkout's .source-XXXXXX is not one of them: the
    killed runner's git may still write it; its job's source phase
    removes it (evr_prepare_source.c). */
static void
s_tmp_sweep(evr_engine_t *e, const char *id)
{
    if (!e->opts.artifacts_dir)
        return;
    char *path = evr_asprintf("%s/%s", e->opts.artifacts_dir, id);
    DIR *d = opendir(path);
    struct dirent *ent;
    unsigned removed = 0;
    struct stat st;
    while (d && (ent = readdir(d)))
        if (s_tmp_name(ent->d_name)
            && fstatat(dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0
            && S_ISREG(st.st_mode) && unlinkat(dirfd(d), ent->d_name, 0) == 0)
            removed++;
    if (d)
        closedir(d);
    if (removed)
        evr_log_info("evrun-runner", "job %s: removed %u temporary files a killed runner "
                     "left in %s", id, removed, path);
    free(path);
}

evr_rc_t
evr_engine_recover(evr_engine_t *self, uint32_t *jobs, evr_err_t *err)
{
    uint64_t t0 = evr_mono_ns();
    char (*ids)[EVR_ULID_LEN + 1];
    size_t n;
    *jobs = 0;
    evr_eng_hooks_sweep(self);   /* before any hook runs again */
    evr_rc_t rc = evr_store_open_ids(self->store, &ids, &n, err);
    for (size_t i = 0; i < n && !rc; i++) {
        s_tmp_sweep(self, ids[i]);
        rc = s_adopt(self, ids[i], err);
        if (!rc)
            (*jobs)++;
    }
    free(ids);
    if (rc)
        return rc;
    s_sweep(self);
    if (*jobs) {
        evr_event_t *ev = evr_event_new(EVR_EV_RUNNER_RECOVERED);
        ev->data.jobs = *jobs;
        rc = evr_store_append(self->store, &ev, 1, err);
        evr_event_destroy(&ev);
        if (rc)
            return rc;
    }
    evr_eng_flush(self);
    if (self->failure)
        return evr_err_set(err, self->failure, "%s", self->failmsg);
    if (self->opts.print && *jobs)
        printf("evrun-runner: recovered %u job%s in %llu ms\n", *jobs, *jobs == 1 ? "" : "s",
               (unsigned long long) ((evr_mono_ns() - t0) / 1000000u));
    else if (*jobs)
        evr_log_info("evrun-runner", "recovered %u job%s in %llu ms", *jobs,
                     *jobs == 1 ? "" : "s",
                     (unsigned long long) ((evr_mono_ns() - t0) / 1000000u));
    return EVR_OK;
}
