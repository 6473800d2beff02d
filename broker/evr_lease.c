/*  evr_lease.c: what becomes of the jobs of a runner that does not come
    back (DESIGN §7).

    A runner silent past its lease is shown lost and keeps its jobs: it may
    come back and finish them; so does one that said goodbye (shown
    stopped) with jobs it had accepted.  Once it has been away for
    reclaim_ms (from the moment it was shown lost or stopped, or from the
    broker's start for a runner that has not said hello since), its jobs
    are taken from it:
      - a job dispatched to it whose job.accepted the broker does not hold
        is queued again (it goes to another runner);
      - a running one ends `lost` in the broker's archive: its unfinished
        steps `lost`, its pending ones skipped, then job.finished{lost},
        with a reason naming the runner and how long it was away; if a
        step it loses retries on `lost`, a new job is queued from its
        submit as sent, kept as "s/<job>" while it ran (its source, labels
        and parent with it: s_requeue).
    Each (job, runner) taken is a record "lost/<job>/<runner>" in the kv
    table, written before anything else; its value says whether the runner
    may hold a copy of the job ('a': it had accepted it) or not ('d': the
    job was dispatched to it, no job.accepted seen).  Events of that runner
    for that job are counted in its seq but not stored (evr_store_ingest's
    drop), a runner that holds a copy is told to cancel it when it is back,
    and the job is not dispatched to that runner again.  The record goes
    when the runner's own job.finished for the job arrives, or, for 'd',
    when the runner's resent log shows it never accepted the job.  A
    job.accepted that comes back while its job still waits in the queue is
    taken as usual: the job stays with that runner.

    An event a runner sends that the archive refuses for what it says (an
    illegal transition, a job event without a job: not a gap, not a store
    failure) would stall that runner's whole stream if the batch were
    refused: it would be resent and refused for ever.  evr_lease_ingest
    takes such an event out instead, and refuses itself a job.accepted of
    a job the queue holds dispatched to another runner (s_refuse_elsewhere:
    the archive cannot know it).  Of a job the archive holds running on
    that runner, or dispatched to it with no event in the archive yet (its
    job.accepted refused: it will not come again), the job is taken from
    the runner as above with a record of kind 'r' (its value: 'r' and the
    reason), the event and the later ones of the job in the batch are
    dropped, and once the batch is stored the broker ends the job `failed`
    (s_end; one with no event yet with its own job.accepted, as a job
    cancelled in the queue) with a reason naming the event, tells the
    runner to cancel its copy, and the record becomes 'a' (its value: 'a'
    and the reason).  A refused job.accepted of a job the queue holds
    otherwise gets a record 'a' with the reason at once: the runner may
    hold a copy.  Any other refused event (no job, or a job that is not
    the runner's) is dropped with the job's later events in the batch,
    and the runner is told to cancel that job.  Every refusal is logged;
    the rest of the batch is stored and acknowledged.  A dropped event is
    never refused, so each refusal drops at least one more event: a batch
    of n events is written in at most 2n + 1 tries.
*/
#include <stdlib.h>
#include <string.h>

#include "evr_broker_int.h"

#define S_PREFIX "lost/"
/*  Jobs taken per heartbeat: a broker with many lost jobs stays responsive. */
#define S_PER_BEAT 64

struct evr_lease_job {
    char job[EVR_ULID_LEN + 1];
    char kind;          /* 'a': the runner may hold a copy; 'd': dispatched only;
                           'r': to be ended (a refused event) */
    bool told;          /* cancel sent since the runner came back */
    char *runner;
    char *reason;       /* kind 'r': to end the job failed with; 'a': the cancel's
                           (NULL: taken while the runner was lost) */
    struct evr_lease_job *next;
};

static void s_end_refused(evr_broker_t *b, evr_lease_job_t *t);

static void
s_key(char *buf, size_t len, const char *job, const char *runner)
{
    snprintf(buf, len, S_PREFIX "%s/%s", job, runner);
}

static evr_lease_job_t *
s_find(const evr_broker_t *b, const char *job, const char *runner)
{
    for (evr_lease_job_t *t = b->taken; t; t = t->next)
        if (strcmp(t->job, job) == 0 && strcmp(t->runner, runner) == 0)
            return t;
    return NULL;
}

/*  Writes the record of (job, runner) with kind (and, for 'r' and 'a',
    reason after it when given), and holds it in memory. */
static evr_rc_t
s_put(evr_broker_t *b, const char *job, const char *runner, char kind, const char *reason)
{
    char key[EVR_ULID_LEN + 300];
    s_key(key, sizeof key, job, runner);
    char *val = evr_asprintf("%c%s", kind, kind != 'd' && reason ? reason : "");
    evr_store_kv_t op = { key, val, strlen(val) };
    evr_err_t err;
    evr_rc_t rc = evr_store_kv_write(b->store, &op, 1, &err);
    free(val);
    if (rc) {
        evr_broker_fail(b, &err);
        return EVR_ERR_STORE;
    }
    evr_lease_job_t *t = s_find(b, job, runner);
    if (!t) {
        t = evr_calloc(1, sizeof *t);
        snprintf(t->job, sizeof t->job, "%s", job);
        t->runner = evr_strdup(runner);
        t->next = b->taken;
        b->taken = t;
    }
    t->kind = kind;
    char *was = t->reason;   /* reason may be it */
    t->reason = kind == 'r' ? evr_strdup(reason ? reason : "")
              : kind == 'a' && reason ? evr_strdup(reason) : NULL;
    free(was);
    return EVR_OK;
}

bool
evr_lease_taken(const evr_broker_t *b, const char *job, const char *runner)
{
    return s_find(b, job, runner) != NULL;
}

bool
evr_lease_holds(const evr_broker_t *b, const char *job)
{
    for (const evr_lease_job_t *t = b->taken; t; t = t->next)
        if (strcmp(t->job, job) == 0)
            return true;
    return false;
}

/*  Whether any job was taken from runner. */
static bool
s_any(const evr_broker_t *b, const char *runner)
{
    for (const evr_lease_job_t *t = b->taken; t; t = t->next)
        if (strcmp(t->runner, runner) == 0)
            return true;
    return false;
}

static int
s_load_one(const char *key, const uint8_t *val, size_t len, void *arg)
{
    evr_broker_t *b = arg;
    const char *job = key + strlen(S_PREFIX), *slash = strchr(job, '/');
    char id[EVR_ULID_LEN + 1];
    if (!slash || slash - job != EVR_ULID_LEN || !slash[1])
        return 0;
    memcpy(id, job, EVR_ULID_LEN);
    id[EVR_ULID_LEN] = '\0';
    if (!evr_ulid_valid(id))
        return 0;
    evr_lease_job_t *t = evr_calloc(1, sizeof *t);
    memcpy(t->job, id, sizeof t->job);
    t->kind = len == 1 && val[0] == 'd' ? 'd' : len >= 1 && val[0] == 'r' ? 'r' : 'a';
    if (t->kind == 'r' || (t->kind == 'a' && len > 1 && val[0] == 'a'))
        t->reason = evr_strndup((const char *) val + 1, len - 1);
    t->runner = evr_strdup(slash + 1);
    t->next = b->taken;
    b->taken = t;
    return 0;
}

evr_rc_t
evr_lease_load(evr_broker_t *b, evr_err_t *err)
{
    b->started = evr_mono_ns();
    return evr_store_kv_scan(b->store, S_PREFIX, s_load_one, b, err);
}

void
evr_lease_free(evr_broker_t *b)
{
    while (b->taken) {
        evr_lease_job_t *t = b->taken;
        b->taken = t->next;
        free(t->runner);
        free(t->reason);
        free(t);
    }
}

/*  Forgets (job, runner): its runner has finished the job on its side. */
static void
s_forget(evr_broker_t *b, const char *job, const char *runner)
{
    for (evr_lease_job_t **pp = &b->taken; *pp; pp = &(*pp)->next) {
        evr_lease_job_t *t = *pp;
        if (strcmp(t->job, job) != 0 || strcmp(t->runner, runner) != 0)
            continue;
        char key[EVR_ULID_LEN + 300];
        s_key(key, sizeof key, job, runner);
        evr_store_kv_t op = { key, NULL, 0 };
        evr_err_t err;
        if (evr_store_kv_write(b->store, &op, 1, &err)) {
            evr_broker_fail(b, &err);
            return;
        }
        *pp = t->next;
        free(t->runner);
        free(t->reason);
        free(t);
        b->changed = true;  /* the job may go to that runner now */
        return;
    }
}

/*  Tells r to cancel its copy of t's job, once per return of r. */
static void
s_tell_cancel(evr_broker_t *b, evr_runners_session_t *r, evr_lease_job_t *t)
{
    char why[256];
    if (t->told)
        return;
    const char *reason = t->reason ? t->reason
                                   : "the broker took this job from the runner while it was lost";
    if (evr_runners_control(b, r->id, "cancel", t->job, reason, false, why, sizeof why)) {
        t->told = true;
        evr_broker_info(b, "job %s: told %s to cancel its copy", t->job, r->id);
    }
}

void
evr_lease_back(evr_broker_t *b, evr_runners_session_t *r)
{
    for (evr_lease_job_t *t = b->taken; t; t = t->next)
        if (strcmp(t->runner, r->id) == 0) {
            t->told = false;
            if (t->kind == 'a')
                s_tell_cancel(b, r, t);
        }
}

void
evr_lease_resynced(evr_broker_t *b, evr_runners_session_t *r)
{
    for (evr_lease_job_t *t = b->taken, *next; t; t = next) {
        next = t->next;
        if (t->kind == 'd' && strcmp(t->runner, r->id) == 0) {
            evr_broker_info(b, "job %s: %s never accepted it", t->job, r->id);
            s_forget(b, t->job, r->id);
        }
    }
}

/*  Whether r's job.accepted of a job taken from it while only dispatched
    is taken as usual: the job still waits unpaused, or is (after a crash
    in the middle of the take) still dispatched to r itself. */
static bool
s_accept_after_all(const evr_broker_t *b, const evr_lease_job_t *t, const evr_runners_session_t *r)
{
    const evr_queue_job_t *j = evr_queue_find(b, t->job);
    return j && (j->state == B_QUEUED
                 || (j->state == B_DISPATCHED && j->runner && !strcmp(j->runner, r->id)));
}

/*  Nothing is written here: the records change in evr_lease_dropped, once
    the batch is stored (a refused batch is resent and judged again). */
bool *
evr_lease_drops(evr_broker_t *b, evr_runners_session_t *r, evr_event_t *const *evs, size_t n)
{
    if (!s_any(b, r->id))
        return NULL;
    bool *drop = evr_calloc(n ? n : 1, sizeof *drop);
    const char *released = NULL;   /* a job accepted after all, earlier in this batch */
    for (size_t i = 0; i < n; i++) {
        const evr_lease_job_t *t = evs[i]->job ? s_find(b, evs[i]->job, r->id) : NULL;
        if (!t || (released && !strcmp(released, t->job)))
            continue;
        if (t->kind == 'd' && evr_event_kind(evs[i]) == EVR_EV_JOB_ACCEPTED
            && s_accept_after_all(b, t, r)) {
            released = t->job;
            continue;
        }
        drop[i] = true;
    }
    return drop;
}

void
evr_lease_dropped(evr_broker_t *b, evr_runners_session_t *r, evr_event_t *const *evs,
                  const bool *drop, size_t n)
{
    for (evr_lease_job_t *t = b->taken; t && !b->failure; t = t->next)
        if (t->kind == 'r' && strcmp(t->runner, r->id) == 0)
            s_end_refused(b, t);
    for (size_t i = 0; i < n && !b->failure; i++) {
        evr_lease_job_t *t = evs[i]->job ? s_find(b, evs[i]->job, r->id) : NULL;
        if (!t)
            continue;
        bool accepted = evr_event_kind(evs[i]) == EVR_EV_JOB_ACCEPTED;
        if (!drop[i]) {   /* its job.accepted was taken as usual (or came before a refusal) */
            if (accepted && t->kind == 'd') {
                evr_broker_info(b, "job %s: %s accepted it after all", t->job, r->id);
                s_forget(b, t->job, r->id);
            }
            continue;
        }
        if (evr_event_kind(evs[i]) == EVR_EV_JOB_FINISHED) {
            evr_broker_info(b, "job %s: %s finished its copy (%s); not stored", t->job, r->id,
                            evs[i]->data.status ? evs[i]->data.status : "?");
            s_forget(b, evs[i]->job, r->id);
            continue;
        }
        if (accepted && t->kind == 'd' && s_put(b, t->job, r->id, 'a', NULL))   /* r holds a copy */
            return;
        s_tell_cancel(b, r, t);
    }
}

/* ------------------------------------------------------------- taking */

/*  The events that end a job with status (lost, failed), from its
    projection: its steps only when it had started (steps move only while
    a job runs). */
static size_t
s_end_events(const evr_job_t *pj, const char *status, const char *reason, evr_event_t ***out)
{
    bool lost = strcmp(status, "lost") == 0;
    size_t n = 0;
    evr_event_t **evs = evr_calloc(pj->steps.n + 1, sizeof *evs);
    bool started = pj->status == EVR_JOB_RUNNING || pj->status == EVR_JOB_PAUSED;
    for (uint32_t i = 0; started && i < pj->steps.n; i++) {
        const evr_stepstate_t *st = evr_job_step(pj, i);
        evr_event_t *ev;
        /* a name given twice (a runner's job.accepted is not validated as
           a whole spec): its events go to its first step, as the
           projection takes them, so that one is judged alone */
        if (evr_job_find_step(pj, st->name) != st)
            continue;
        if (st->status == EVR_STEP_QUEUED || st->status == EVR_STEP_STARTING
            || st->status == EVR_STEP_RUNNING) {
            ev = evr_event_new(EVR_EV_STEP_FINISHED);
            ev->data.status = evr_strdup(status);
            ev->data.exit_code = -1;
            ev->data.reason = evr_strdup(reason);
            uint64_t now = evr_now_ns();   /* it ran (as far as known) until now: not 0s */
            if (st->started && now > st->started)
                ev->data.duration = (now - st->started) / 1000000u;
        }
        else if (st->status == EVR_STEP_PENDING) {
            ev = evr_event_new(EVR_EV_STEP_SKIPPED);
            ev->data.reason = evr_strdup(lost ? "the job was lost with its runner"
                                              : "the broker ended the job");
        }
        else
            continue;
        ev->data.step = evr_strdup(st->name);
        ev->data.attempt = st->attempt;
        evs[n++] = ev;
    }
    evr_event_t *fin = evr_event_new(EVR_EV_JOB_FINISHED);
    fin->data.status = evr_strdup(status);
    fin->data.reason = evr_strdup(reason);
    evs[n++] = fin;
    for (size_t i = 0; i < n; i++)
        evs[i]->job = evr_strdup(pj->id);
    *out = evs;
    return n;
}

/*  The value under key into val[64] (*found false when there is none);
    a store error fails the broker. */
static evr_rc_t
s_kv_get(evr_broker_t *b, const char *key, char val[64], bool *found)
{
    evr_err_t err;
    evr_rc_t rc = evr_store_kv_get(b->store, key, val, 64, &err);
    *found = rc == EVR_OK;
    if (rc == EVR_ERR_NOTFOUND)
        return EVR_OK;
    if (rc)
        evr_broker_fail(b, &err);
    return rc;
}

/*  How many more times a job lost with a runner may be queued again: the
    most `retry.max` among its unfinished steps whose retry.on has lost,
    those that never started too (a runner lost while it fetched the
    job's image or resources lost them as well). */
static uint32_t
s_retries_allowed(const evr_job_t *pj, const evr_spec_t *spec)
{
    uint32_t allowed = 0;
    for (uint32_t i = 0; i < pj->steps.n && i < evr_spec_job_steps(spec); i++) {
        const evr_stepstate_t *st = evr_job_step(pj, i);
        const evr_retry_t *r = i < spec->steps.n ? &evr_spec_step(spec, i)->retry
                                                 : &spec->on_error.retry;   /* on_error */
        if (st->status != EVR_STEP_PENDING && st->status != EVR_STEP_QUEUED
            && st->status != EVR_STEP_STARTING && st->status != EVR_STEP_RUNNING)
            continue;
        for (uint32_t k = 0; r->present && k < r->on.n; k++)
            if (strcmp(r->on.v[k], "lost") == 0 && r->max > allowed)
                allowed = r->max;
    }
    return allowed;
}

/*  A job lost with its runner whose lost steps retry on `lost` is queued
    again as a new job (same spec and args), while its line has retries
    left: "retry/<job>" counts the times its line was queued again.  The
    new job's queue record, that count and "requeued/<job>" (the new id)
    are one kv write, so taking the job again after a crash finds the
    retry made.  Appends what was done to reason. */
static void
s_requeue(evr_broker_t *b, const evr_job_t *pj, char *reason, size_t rlen)
{
    char key[EVR_ULID_LEN + 16];
    size_t at = strlen(reason);
    snprintf(key, sizeof key, "requeued/%s", pj->id);
    char done[64], line[64];
    bool found;
    if (s_kv_get(b, key, done, &found))
        return;
    if (found) {
        snprintf(reason + at, rlen - at, "; queued again as %s", done);
        return;
    }
    struct {
        evr_spec_t *spec;
        evr_strmap_t args;
    } acc = { 0 };
    evr_err_t err;
    evr_store_job_spec(b->store, pj->id, &acc.spec, &acc.args, &err);
    uint32_t allowed = acc.spec ? s_retries_allowed(pj, acc.spec) : 0;
    snprintf(key, sizeof key, "retry/%s", pj->id);
    if (s_kv_get(b, key, line, &found)) {
        evr_spec_destroy(&acc.spec);
        evr_strmap_free(&acc.args);
        return;
    }
    uint32_t used = found ? (uint32_t) strtoul(line, NULL, 10) : 0;
    if (!allowed || used >= allowed) {
        if (allowed)
            snprintf(reason + at, rlen - at, "; not queued again: %u retr%s used", used,
                     used == 1 ? "y" : "ies");
        evr_spec_destroy(&acc.spec);
        evr_strmap_free(&acc.args);
        return;
    }
    char id[EVR_ULID_LEN + 1];
    evr_ulid_new(id);
    /* the submit as sent (its source, labels and parent too), when kept;
       else one of its spec and args */
    evr_msg_t *m = evr_queue_kept_submit(b, pj->id);
    if (m) {
        evr_spec_destroy(&acc.spec);
        evr_strmap_free(&acc.args);
    }
    else {
        evr_broker_warn(b, "job %s: no submit kept; queued again from its spec and args "
                        "alone (without its source, labels or parent)", pj->id);
        m = evr_msg_new(EVR_MSG_SUBMIT);
        m->spec = acc.spec;
        m->args = acc.args;
    }
    free(m->job);
    m->job = evr_strdup(id);
    char parent[EVR_ULID_LEN + 1] = "";
    if (m->parent_job)
        snprintf(parent, sizeof parent, "%s", m->parent_job);
    evr_queue_job_t *j = evr_queue_new(m, evr_now_ns());
    char qkey[EVR_ULID_LEN + 3], rkey[EVR_ULID_LEN + 16], count[16];
    uint8_t *qval;
    size_t qlen;
    evr_queue_record(j, qkey, &qval, &qlen);
    snprintf(rkey, sizeof rkey, "retry/%s", id);
    snprintf(count, sizeof count, "%u", used + 1);
    char dkey[EVR_ULID_LEN + 16], dval[64];
    snprintf(dkey, sizeof dkey, "requeued/%s", pj->id);
    snprintf(dval, sizeof dval, "%s (retry %u of %u)", id, used + 1, allowed);
    char skey[EVR_ULID_LEN + 3];
    snprintf(skey, sizeof skey, EVR_QUEUE_KEPT "%s", pj->id);
    evr_store_kv_t ops[6] = { { qkey, qval, qlen }, { rkey, count, strlen(count) },
                              { dkey, dval, strlen(dval) }, { skey, NULL, 0 } };
    size_t nops = 4;
    /* a follow-up's retry is one too: in its parent's children, at the
       lost job's depth in the chain (evr_trigger.c) */
    char kkey[2 * EVR_ULID_LEN + 8], hkey[EVR_ULID_LEN + 8], hval[64];
    if (*parent) {
        snprintf(kkey, sizeof kkey, EVR_KV_KIDS "%s/%s", parent, id);
        ops[nops++] = (evr_store_kv_t) { kkey, "", 0 };
        snprintf(hkey, sizeof hkey, EVR_KV_DEPTH "%s", pj->id);
        bool deep;
        if (s_kv_get(b, hkey, hval, &deep)) {
            free(qval);
            evr_queue_free(j);
            return;
        }
        snprintf(hkey, sizeof hkey, EVR_KV_DEPTH "%s", id);
        if (deep)
            ops[nops++] = (evr_store_kv_t) { hkey, hval, strlen(hval) };
    }
    evr_rc_t rc = evr_store_kv_write(b->store, ops, nops, &err);
    free(qval);
    if (rc) {
        evr_broker_fail(b, &err);
        evr_queue_free(j);
        return;
    }
    evr_queue_add(b, j);
    snprintf(reason + at, rlen - at, "; queued again as %s", dval);
    evr_broker_info(b, "job %s (%s) queued: a retry of %s, lost with its runner", id,
                    j->pipeline, pj->id);
}

/*  Ends the job id with status ("lost": a lost job whose steps retry on
    lost is queued again, s_requeue) in the archive, and drops it from the
    queue when it is there; one the archive holds no event of that waits
    or is dispatched in the queue (its job.accepted refused) gets the
    broker's own job.accepted first (evr_queue_end_unstarted). */
static void
s_end(evr_broker_t *b, const char *id, const char *status, char *reason, size_t rlen)
{
    evr_job_t pj = { 0 };
    evr_err_t err;
    evr_rc_t rc = evr_store_get_job(b->store, id, &pj, &err);
    bool final = rc == EVR_OK && evr_job_is_final(&pj);
    if (rc == EVR_OK && !final && strcmp(status, "lost") == 0)
        s_requeue(b, &pj, reason, rlen);
    if (rc == EVR_OK && !final && !b->failure) {
        evr_event_t **evs;
        size_t n = s_end_events(&pj, status, reason, &evs);
        rc = evr_store_append(b->store, evs, n, &err);
        if (rc == EVR_OK)
            for (size_t i = 0; i < n; i++)
                evr_bus_publish_event(b->pub, evs[i], NULL);
        for (size_t i = 0; i < n; i++)
            evr_event_destroy(&evs[i]);
        free(evs);
    }
    evr_rec_free(&evr_job_type, &pj);
    if (rc == EVR_ERR_STORE) {
        evr_broker_fail(b, &err);
        return;
    }
    evr_queue_job_t *j = evr_queue_find(b, id);
    if (rc == EVR_ERR_NOTFOUND && j && j->state != B_ACTIVE && j->body) {
        /* never accepted: ended with the broker's own job.accepted */
        if (evr_queue_end_unstarted(b, j, status, reason, &err) == EVR_OK)
            b->changed = true;
        return;
    }
    if (rc == EVR_ERR_NOTFOUND)
        evr_broker_warn(b, "job %s: the archive holds none of its events; dropped", id);
    else if (rc)
        evr_broker_error(b, "job %s: could not be ended %s: %s", id, status, err.msg);
    else if (final)
        evr_broker_info(b, "job %s: finished before the broker could end it %s", id, status);
    else
        evr_broker_warn(b, "job %s %s: %s", id, status, reason);
    if (j) {
        evr_queue_forget_kept(b, j);
        evr_queue_remove(b, j);
        b->changed = true;
    }
}

/*  Takes j from its runner, away since `since` (mono ns); stopped: it
    said goodbye then (evr_runners.c), else it was lost. */
static void
s_take(evr_broker_t *b, evr_queue_job_t *j, uint64_t since, bool stopped, uint64_t now)
{
    if (s_put(b, j->id, j->runner, j->state == B_ACTIVE ? 'a' : 'd', NULL))
        return;
    evr_err_t err;
    char reason[512];
    snprintf(reason, sizeof reason, "runner %s %s for %llu s%s (the broker's reclaim_ms "
             "is %u)", j->runner, stopped ? "was stopped (it said goodbye)" : "was lost",
             (unsigned long long) ((now - since) / 1000000000ull),
             since == b->started ? " since the broker started" : "", b->opts.reclaim_ms);
    b->changed = true;
    if (j->state == B_ACTIVE) {
        s_end(b, j->id, "lost", reason, sizeof reason);
        return;
    }
    /* dispatched, never known accepted: it waits again (a cancel asked
       meanwhile is carried out now) */
    evr_broker_info(b, "job %s: %s; queued again", j->id, reason);
    evr_queue_set_runner(b, j, NULL);
    if (j->cancel_pending) {
        evr_queue_cancel_queued(b, j, j->cancel_reason ? j->cancel_reason : "cancelled", &err);
        return;
    }
    evr_queue_set_state(b, j, B_QUEUED);
    if (evr_queue_persist(b, &j, 1, &err))
        evr_broker_fail(b, &err);
}

static bool
s_held(const evr_queue_job_t *j)
{
    return (j->state == B_DISPATCHED || j->state == B_ACTIVE) && j->runner;
}

/*  Adds j to v (n of them) unless it is there; the new n. */
static size_t
s_add(evr_queue_job_t **v, size_t n, evr_queue_job_t *j)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == j)
            return n;
    v[n] = j;
    return n + 1;
}

/*  The work is proportional to the records and to the jobs of runners
    away, not to the queue: each runner's jobs are found through the
    queue's index by runner (evr_queue_of_runner). */
void
evr_lease_check(evr_broker_t *b)
{
    for (evr_lease_job_t *t = b->taken; t && !b->failure; t = t->next)
        if (t->kind == 'r')   /* a refusal the broker was killed in the middle of */
            s_end_refused(b, t);
    if (!b->opts.reclaim_ms || b->failure)
        return;
    uint64_t now = evr_mono_ns(), limit = (uint64_t) b->opts.reclaim_ms * 1000000ull;
    evr_queue_job_t *v[S_PER_BEAT];
    size_t n = 0;
    /* a record for a job and its own runner: a take the broker was killed
       in the middle of; it is finished now */
    for (evr_lease_job_t *t = b->taken; t && n < S_PER_BEAT; t = t->next) {
        evr_queue_job_t *j = evr_queue_find(b, t->job);
        if (j && s_held(j) && strcmp(j->runner, t->runner) == 0)
            n = s_add(v, n, j);
    }
    /* the jobs of a runner away for reclaim_ms */
    for (evr_queue_job_t *first = zhashx_first(b->by_runner); first && n < S_PER_BEAT;
         first = zhashx_next(b->by_runner)) {
        const evr_runners_session_t *r = evr_runners_find(b, zhashx_cursor(b->by_runner));
        uint64_t since = r && r->lost_at ? r->lost_at : b->started;
        if ((r && r->rid && !r->lost) || now - since < limit)
            continue;
        for (evr_queue_job_t *j = first; j && n < S_PER_BEAT; j = j->rnext)
            if (s_held(j))
                n = s_add(v, n, j);
    }
    for (size_t i = 0; i < n && !b->failure; i++) {
        const evr_runners_session_t *r = evr_runners_find(b, v[i]->runner);
        s_take(b, v[i], r && r->lost_at ? r->lost_at : b->started, r && r->stopped, now);
    }
}

/* ----------------------------------------------------------- refusing */

/*  Ends t's job (kind 'r') failed with its reason, tells its runner to
    cancel its copy, and keeps the record as 'a' (the runner may hold a
    copy: its later events of the job are dropped until its job.finished). */
static void
s_end_refused(evr_broker_t *b, evr_lease_job_t *t)
{
    evr_runners_session_t *r = evr_runners_find(b, t->runner);
    if (r)
        s_tell_cancel(b, r, t);
    size_t rlen = strlen(t->reason) + 1;
    char *reason = evr_strdup(t->reason);
    s_end(b, t->job, "failed", reason, rlen);
    if (!b->failure)
        s_put(b, t->job, t->runner, 'a', reason);
    free(reason);
}

/*  Takes evs[bad], refused by the archive for why, out of r's batch: it
    and the later events of its job in the batch are dropped.  A job the
    archive holds running on r gets a record 'r' (the job is ended once
    the batch is stored); any other job is cancelled on r now.  Fails only
    on a store failure (the broker's failure is set). */
static evr_rc_t
s_refuse(evr_broker_t *b, evr_runners_session_t *r, evr_event_t *const *evs, bool *drop, size_t n,
         size_t bad, const char *why)
{
    const evr_event_t *ev = evs[bad];
    const char *type = evr_evtype_name(evr_event_kind(ev)) ? evr_evtype_name(evr_event_kind(ev))
                                                           : "untyped";
    unsigned long long seq = (unsigned long long) ev->seq;
    drop[bad] = true;
    if (!ev->job) {
        evr_broker_error(b, "REFUSED: event seq %llu (%s) of runner %s: %s; dropped, the runner's "
                         "other events are stored", seq, type, r->id, why);
        return EVR_OK;
    }
    size_t later = 0;
    for (size_t i = bad + 1; i < n; i++)
        if (!drop[i] && evs[i]->job && strcmp(evs[i]->job, ev->job) == 0) {
            drop[i] = true;
            later++;
        }
    evr_job_t pj = { 0 };
    evr_err_t err;
    evr_rc_t rc = evr_store_get_job(b->store, ev->job, &pj, &err);
    const evr_queue_job_t *j = evr_queue_find(b, ev->job);
    /* dispatched to r, never accepted: r will not send it again, and the
       job would hold r's slot for good */
    bool handed = rc == EVR_ERR_NOTFOUND && j && j->state == B_DISPATCHED && j->body
               && j->runner && strcmp(j->runner, r->id) == 0;
    bool ours = handed || (rc == EVR_OK && !evr_job_is_final(&pj)
                           && (!pj.runner || strcmp(pj.runner, r->id) == 0));
    /* a refused job.accepted of a job the queue holds for another runner
       (or waiting): r may hold a copy; its later events of the job are
       dropped, and the job is not dispatched to it */
    bool copy = !ours && j && evr_event_kind(ev) == EVR_EV_JOB_ACCEPTED;
    evr_rec_free(&evr_job_type, &pj);
    if (rc && rc != EVR_ERR_NOTFOUND) {
        evr_broker_fail(b, &err);
        return rc;
    }
    char *reason = evr_asprintf("the broker refused event seq %llu (%s) of runner %s: %s; %s",
                                seq, type, r->id, why, ours ? "the job is ended here"
                                : "the runner is told to cancel the job");
    evr_broker_error(b, "REFUSED: job %s: %s (it and %zu later event%s of the job dropped, the "
                     "runner's other events are stored)", ev->job, reason, later,
                     later == 1 ? "" : "s");
    rc = EVR_OK;
    char w[256];
    if (ours)
        rc = s_put(b, ev->job, r->id, 'r', reason);
    else if (copy && (rc = s_put(b, ev->job, r->id, 'a', reason)) == EVR_OK)
        s_tell_cancel(b, r, s_find(b, ev->job, r->id));
    else if (!copy && evr_runners_control(b, r->id, "cancel", ev->job, reason, false, w, sizeof w))
        evr_broker_info(b, "job %s: told %s to cancel its copy", ev->job, r->id);
    free(reason);
    return rc;
}

/*  Refuses r's new job.accepted events (not resends) of jobs the queue
    holds and r may not take, before the archive sees them: one dispatched
    to another runner is that runner's (r was never sent it, or it was
    taken from r while r was lost and given to the other); one paused in
    the queue stays there; one waiting in the queue is r's to take only if
    it was sent to r (r's hello came while the dispatch was on its way:
    evr_queue_requeue) or taken from r while only dispatched
    (evr_lease_drops judges that one). */
static evr_rc_t
s_refuse_elsewhere(evr_broker_t *b, evr_runners_session_t *r, evr_event_t *const *evs,
                   bool **drop, size_t n, evr_err_t *err)
{
    uint64_t high = 0;
    bool read = false;
    for (size_t i = 0; i < n; i++) {
        const evr_event_t *ev = evs[i];
        if ((*drop && (*drop)[i]) || !ev->job || evr_event_kind(ev) != EVR_EV_JOB_ACCEPTED)
            continue;
        const evr_queue_job_t *j = evr_queue_find(b, ev->job);
        if (!j || j->state == B_ACTIVE)
            continue;   /* the archive judges it (it holds the job's job.accepted) */
        if (j->state == B_DISPATCHED && j->runner && strcmp(j->runner, r->id) == 0)
            continue;   /* its own */
        if (j->state == B_QUEUED
            && (evr_queue_was_sent(j, r->id) || evr_lease_taken(b, ev->job, r->id)))
            continue;
        evr_rc_t rc = read ? EVR_OK : evr_store_source_seq(b->store, r->id, &high, err);
        if (rc) {
            evr_broker_fail(b, err);
            return rc;
        }
        read = true;
        if (ev->seq <= high)
            continue;   /* a resend: judged when it came */
        if (!*drop)
            *drop = evr_calloc(n, sizeof **drop);
        char why[EVR_ERR_MAX];
        if (j->state == B_DISPATCHED && j->runner)
            snprintf(why, sizeof why, "job %s: job.accepted (jseq %u, seq %llu) comes from runner "
                     "%s, but the job is dispatched to runner %s", ev->job, ev->jseq,
                     (unsigned long long) ev->seq, r->id, j->runner);
        else if (evr_queue_was_sent(j, r->id) || evr_lease_taken(b, ev->job, r->id))
            snprintf(why, sizeof why, "job %s: job.accepted (jseq %u, seq %llu) comes from runner "
                     "%s, but the job was put back in the queue and paused there: no runner "
                     "takes it until it is resumed", ev->job, ev->jseq,
                     (unsigned long long) ev->seq, r->id);
        else
            snprintf(why, sizeof why, "job %s: job.accepted (jseq %u, seq %llu) comes from runner "
                     "%s, but the job was not dispatched to it: it waits in the queue%s",
                     ev->job, ev->jseq, (unsigned long long) ev->seq, r->id,
                     j->state == B_HELD ? ", paused" : "");
        if ((rc = s_refuse(b, r, evs, *drop, n, i, why)))
            return evr_err_set(err, rc, "%s", b->failmsg);
    }
    return EVR_OK;
}

evr_rc_t
evr_lease_ingest(evr_broker_t *b, evr_runners_session_t *r, evr_event_t *const *evs, bool **drop,
                 size_t n, evr_err_t *err)
{
    size_t from = 0, bad;
    evr_rc_t rc = s_refuse_elsewhere(b, r, evs, drop, n, err);
    if (rc)
        return rc;
    for (;;) {
        bool *d = *drop ? *drop + from : NULL;
        rc = evr_store_ingest(b->store, r->id, evs + from, d, n - from, &bad, err);
        if (rc != EVR_ERR_STATE || bad >= n - from)
            break;
        if (bad > 0 && (rc = evr_store_ingest(b->store, r->id, evs + from, d, bad, NULL, err)))
            break;   /* the events before the refused one first */
        bad += from;
        if (!*drop)
            *drop = evr_calloc(n, sizeof **drop);
        char why[EVR_ERR_MAX];
        snprintf(why, sizeof why, "%s", err->msg);
        if ((rc = s_refuse(b, r, evs, *drop, n, bad, why))) {
            evr_err_set(err, rc, "%s", b->failmsg);
            break;
        }
        from = bad;   /* refused events only ever grow: this ends */
    }
    return rc;
}
