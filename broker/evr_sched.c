/*  evr_sched.c: the schedules of registered pipelines (see
    evr_pipelines.h).

    Each scheduled pipeline has a record in the store's kv table,
    "sched/<name>" = "<last> <state> <job> [<reason>]": <last> the time (s)
    of its last fire, or of the registration of its schedule; <state> one
    of registered, firing, accepted, refused, skipped.  A fire writes
    `firing` with a new job id and flushes it to disk before it submits
    that job; the next fire time is always computed from <last>.  So after
    a crash a fire is never repeated (its time is recorded), and one whose
    submit was not committed is submitted again at start under the same
    job id (a submit of a known id is one job).  A fire time that passed
    while the broker was down is caught up at start: one job for all of
    them (catchup: one) or none, logged (catchup: none).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evr_pipelines.h"

#define S_KEY_MAX (EVR_SPEC_MAX_NAME + 8)
#define S_REC_MAX 1400
#define S_MAX_DUE 1000          /* fire times counted at once */

int64_t
evr_sched_now(const evr_broker_t *b)
{
    return (int64_t) (evr_now_ns() / 1000000000ull) + (b->pipes ? b->pipes->clock_offset : 0);
}

/*  t (s) as an ISO 8601 UTC time, for the log. */
static const char *
s_iso(int64_t t, char buf[32])
{
    time_t tt = (time_t) t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static void
s_set_status(evr_pipe_t *p, const char *status)
{
    free(p->fire_status);
    p->fire_status = status ? evr_strdup(status) : NULL;
    if (p->fire_status)     /* a refusal's message may be longer than the field takes */
        evr_text_fit(p->fire_status, EVR_REASON_MAX);
}

/*  Writes p's record (synced unless lazy); a failure stops the broker. */
static bool
s_record(evr_broker_t *b, const evr_pipe_t *p, const char *state, const char *reason, bool lazy)
{
    char key[S_KEY_MAX], val[S_REC_MAX];
    snprintf(key, sizeof key, "sched/%s", p->spec->pipeline);
    int n = snprintf(val, sizeof val, "%lld %s %s%s%s", (long long) p->last_fire, state,
                     p->fire_job[0] ? p->fire_job : "-", reason ? " " : "", reason ? reason : "");
    size_t len = n < (int) sizeof val ? (size_t) n : evr_text_cut(val, sizeof val - 1);
    evr_store_kv_t op = { key, val, len };
    evr_err_t err;
    evr_rc_t rc = lazy ? evr_store_kv_write_lazy(b->store, &op, 1, &err)
                       : evr_store_kv_write(b->store, &op, 1, &err);
    if (rc)
        evr_broker_fail(b, &err);
    return rc == EVR_OK;
}

/*  Takes up p's record; false when it has none (or an unreadable one). */
static bool
s_take_record(evr_broker_t *b, evr_pipe_t *p, char state[16])
{
    char key[S_KEY_MAX], val[S_REC_MAX], job[EVR_ULID_LEN + 2];
    snprintf(key, sizeof key, "sched/%s", p->spec->pipeline);
    evr_err_t err;
    long long last;
    int used = 0;
    if (evr_store_kv_get(b->store, key, val, sizeof val, &err)
        || sscanf(val, "%lld %15s %26s%n", &last, state, job, &used) != 3 || last <= 0)
        return false;
    p->last_fire = last;
    p->fire_job[0] = '\0';
    if (evr_ulid_valid(job))
        memcpy(p->fire_job, job, EVR_ULID_LEN + 1);
    const char *reason = val + used + (val[used] == ' ');
    char *status = evr_asprintf("%s%s%s", state, *reason ? ": " : "", reason);
    s_set_status(p, status);
    free(status);
    return true;
}

/*  The next fire of p after its last. */
static void
s_plan(evr_broker_t *b, evr_pipe_t *p)
{
    int64_t next = 0;
    if (evr_cron_next(&p->cron, p->sched_tz, p->last_fire, &next)) {
        evr_broker_warn(b, "schedule of %s (%s): no fire time in the next 30 years",
                        p->spec->pipeline, p->sched_expr);
        next = 0;
    }
    p->next_fire = next;
}

/*  A fire recorded but maybe not submitted (the broker stopped in
    between): submitted again under its job id. */
static void
s_resume_fire(evr_broker_t *b, evr_pipe_t *p)
{
    evr_job_t pj = { 0 };
    evr_err_t err;
    bool known = evr_queue_find(b, p->fire_job)
              || evr_store_get_job(b->store, p->fire_job, &pj, &err) == EVR_OK;
    evr_rec_free(&evr_job_type, &pj);
    if (known) {
        s_set_status(p, "accepted");
        return;
    }
    char when[32];
    evr_broker_warn(b, "schedule of %s: the fire at %s was recorded but its job %s not "
                    "queued (the broker stopped in between): submitting it now",
                    p->spec->pipeline, s_iso(p->last_fire, when), p->fire_job);
    b->pipes->firing = p;
    evr_pipelines_submit(b, b->pipes->loop_rid, p, p->fire_job, NULL, NULL);
    b->pipes->firing = NULL;
}

static bool
s_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

void
evr_sched_update(evr_broker_t *b, evr_pipe_t *p)
{
    const char *expr = p->registered ? p->spec->schedule : NULL;
    const char *tz = p->registered ? p->spec->tz : NULL;
    const char *name = expr ? p->spec->pipeline : NULL;
    if (s_same(expr, p->sched_expr) && s_same(tz, p->sched_tz) && s_same(name, p->sched_name))
        return;
    free(p->sched_expr);
    free(p->sched_tz);
    free(p->sched_name);
    p->sched_expr = expr ? evr_strdup(expr) : NULL;
    p->sched_tz = tz ? evr_strdup(tz) : NULL;
    p->sched_name = name ? evr_strdup(name) : NULL;
    p->scheduled = false;
    p->next_fire = 0;
    p->fire_job[0] = '\0';
    s_set_status(p, NULL);
    evr_err_t err;
    if (!expr || evr_cron_parse(expr, &p->cron, &err))
        return;     /* the loader checked it */
    p->scheduled = true;
    char state[16];
    if (!b->pipes->loaded && s_take_record(b, p, state)) {
        if (!strcmp(state, "firing") && p->fire_job[0])
            s_resume_fire(b, p);
    }
    else {
        p->last_fire = evr_sched_now(b);
        s_record(b, p, "registered", NULL, false);
    }
    s_plan(b, p);
    char when[32];
    evr_broker_info(b, "schedule of %s: \"%s\" %s, next fire at %s", p->spec->pipeline, expr,
                    tz ? tz : "UTC", s_iso(p->next_fire, when));
}

/*  Fires p, due at p->next_fire (and maybe more times up to now). */
static void
s_fire(evr_broker_t *b, evr_pipe_t *p, int64_t now)
{
    int64_t last = p->next_fire, t;
    int due = 1;
    while (due < S_MAX_DUE && !evr_cron_next(&p->cron, p->sched_tz, last, &t) && t <= now) {
        last = t;
        due++;
    }
    if (due == S_MAX_DUE)
        last = now;
    bool missed = p->next_fire < b->pipes->started;
    char first[32];
    s_iso(p->next_fire, first);
    p->last_fire = last;
    if (missed && p->spec->catchup == EVR_CATCHUP_NONE) {
        char why[160];
        snprintf(why, sizeof why, "%d%s fire time%s from %s missed while the broker was down "
                 "(catchup: none)", due, due == S_MAX_DUE ? "+" : "", due == 1 ? "" : "s", first);
        p->fire_job[0] = '\0';
        if (!s_record(b, p, "skipped", why, false))
            return;
        evr_broker_warn(b, "schedule of %s: skipped: %s", p->spec->pipeline, why);
        char *status = evr_asprintf("skipped: %s", why);
        s_set_status(p, status);
        free(status);
        s_plan(b, p);
        return;
    }
    evr_ulid_new(p->fire_job);
    if (!s_record(b, p, "firing", NULL, false))   /* on disk before the submit */
        return;
    s_set_status(p, "firing");
    if (missed)
        evr_broker_warn(b, "schedule of %s: %d fire time%s from %s missed while the broker "
                        "was down: one job (catchup: one), %s", p->spec->pipeline, due,
                        due == 1 ? "" : "s", first, p->fire_job);
    else
        evr_broker_info(b, "schedule of %s fires (%s): job %s", p->spec->pipeline,
                        s_iso(last, first), p->fire_job);
    b->pipes->firing = p;
    evr_pipelines_submit(b, b->pipes->loop_rid, p, p->fire_job, NULL, NULL);
    b->pipes->firing = NULL;
    s_plan(b, p);
}

void
evr_sched_fire_due(evr_broker_t *b)
{
    int64_t now = evr_sched_now(b);
    for (evr_pipe_t *p = b->pipes->list; p && !b->failure; p = p->next)
        if (p->scheduled && p->next_fire && p->next_fire <= now)
            s_fire(b, p, now);
}

void
evr_sched_answer(void *arg, const evr_msg_t *msg)
{
    evr_broker_t *b = arg;
    evr_pipe_t *p = b->pipes->firing;
    if (msg->type == EVR_MSG_ACCEPTED)
        for (p = b->pipes->list; p && strcmp(p->fire_job, msg->job ? msg->job : ""); p = p->next)
            ;
    if (!p || !p->spec) {
        if (msg->type == EVR_MSG_ERROR)
            evr_broker_warn(b, "a schedule fire's submit failed: %s: %s", msg->code,
                            msg->message);
        return;
    }
    if (msg->type == EVR_MSG_ACCEPTED) {
        s_set_status(p, msg->existing ? "accepted (submitted before)" : "accepted");
        s_record(b, p, "accepted", NULL, true);
        return;
    }
    char *why = evr_asprintf("%s: %s", msg->code ? msg->code : "error",
                             msg->message ? msg->message : "");
    evr_broker_warn(b, "schedule of %s: fire refused, job %s not queued: %s", p->spec->pipeline,
                    p->fire_job, why);
    char *status = evr_asprintf("refused: %s", why);
    s_set_status(p, status);
    s_record(b, p, "refused", why, false);
    free(status);
    free(why);
}
