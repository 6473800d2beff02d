/*  evr_runners.c: runner sessions and event ingestion.

    A runner says hello (id, labels, capacity, the highest seq of its log);
    the broker answers welcome with the highest seq of that runner it
    holds, and the runner resends the rest.  Until the broker holds the
    runner's log up to the seq its hello announced, it sends the runner no
    work; then jobs dispatched to it that its log does not accept are
    queued again (it never committed them).  Events are stored with
    evr_store_ingest (a resend is stored once), acknowledged, then
    published.  A runner silent past its lease is shown lost; evr_lease.c
    takes its jobs when it stays away.  A runner that stops cleanly says
    goodbye (s_goodbye): it is shown stopped, away as a lost one is (its
    accepted jobs wait for its return or reclaim_ms), and the jobs
    dispatched to it that it never accepted are queued again at once when
    the broker holds its whole log.  A runner lost for forget_ms that
    holds no job is forgotten (s_forget): it no longer counts against
    EVR_BROKER_MAX_RUNNERS, and when new ids would pass that limit the
    longest-silent runner that is neither connected nor holding a job is
    forgotten to make room.  A forgotten runner that comes back is taken
    as at a broker restart: its hello is checked against the archive.

    At start the broker knows, shown lost until their hello, the runners
    its queue holds jobs of and those it holds a drain for
    (evr_runners_restore); one that said goodbye (kv "stopped/<runner>",
    written then, deleted at its next hello or when it is forgotten) is
    shown stopped instead.  A drain goes to a connected runner at once;
    one asked of a runner away is held (kv "drain/<runner>") and sent
    after its welcome.  A runner process that took a drain says
    `draining` in its later hellos; a hello without it is a runner
    started again, no longer drained.  A hello whose labels name an
    executor evrun does not have is refused.
*/
#include <string.h>

#include "evr_broker_int.h"

evr_runners_session_t *
evr_runners_find(const evr_broker_t *b, const char *id)
{
    for (evr_runners_session_t *r = b->rlist; r; r = r->next)
        if (strcmp(r->id, id) == 0)
            return r;
    return NULL;
}

static evr_runners_session_t *
s_by_rid(const evr_broker_t *b, zframe_t *rid)
{
    for (evr_runners_session_t *r = b->rlist; r; r = r->next)
        if (r->rid && zframe_eq(r->rid, rid))
            return r;
    return NULL;
}

void
evr_runners_describe(const evr_broker_t *b, const evr_runners_session_t *r, evr_msg_t *m)
{
    memset(m, 0, sizeof *m);
    m->type = EVR_MSG_RUNNER;
    m->runner = r->id;
    m->labels = r->labels;
    m->capacity = r->capacity;
    m->ephemeral = r->ephemeral;
    m->credit = r->credit;
    m->running = evr_queue_assigned(b, r->id);
    m->heartbeat = r->heartbeat;
    m->state = r->stopped ? "stopped" : r->lost || !r->rid ? "lost"
             : r->draining ? "draining" : m->running ? "busy" : "idle";
}

static void
s_publish(evr_broker_t *b, const evr_runners_session_t *r)
{
    evr_msg_t m;
    evr_runners_describe(b, r, &m);
    evr_bus_publish_runner(b->pub, &m, NULL);
}

static void
s_resynced(evr_broker_t *b, evr_runners_session_t *r)
{
    r->resynced = true;
    evr_queue_requeue(b, r->id);
    evr_lease_resynced(b, r);
    evr_lease_back(b, r);
    evr_policy_resend(b, r->id);
    b->changed = true;
}

/*  The highest seq held of runner id, refusing (with the answer sent) a
    log shorter than that: another log under a known id, whose events up to
    it would be taken for resends and lost.  False when refused. */
static bool
s_hello_seq(evr_broker_t *b, zframe_t *rid, const evr_msg_t *msg, uint64_t *high)
{
    evr_err_t err;
    if (evr_store_source_seq(b->store, msg->runner, high, &err)) {
        evr_broker_fail(b, &err);
        evr_bus_send_error(b->runners, rid, EVR_CODE_INTERNAL, "%s", err.msg);
        return false;
    }
    if (msg->seq >= *high)
        return true;
    evr_broker_warn(b, "runner %s refused: its log ends at seq %llu, the broker holds %llu of a "
                    "runner with this id", msg->runner, (unsigned long long) msg->seq,
                    (unsigned long long) *high);
    evr_bus_send_error(b->runners, rid, EVR_CODE_CONFLICT, "runner id %s: its log ends at seq "
                       "%llu but the broker holds %llu events of a runner with this id: a new "
                       "runner needs an --id of its own (and its own state directory); an "
                       "older copy of this runner's state directory cannot go on (the broker "
                       "holds its later events): start it on its newest one", msg->runner,
                       (unsigned long long) msg->seq, (unsigned long long) *high);
    return false;
}

/*  Over CURVE a runner id belongs to the key that first said hello with
    it (kv "key/<runner>") for as long as that key stays admitted; then
    the next admitted key takes it over.  False (answered) when another
    admitted key holds the id. */
static bool
s_hello_key(evr_broker_t *b, zframe_t *rid, const evr_msg_t *msg, const char *key)
{
    if (!key || !*key || !b->zap)
        return true;
    char *k = evr_asprintf("key/%s", msg->runner), held[41];
    evr_err_t err;
    evr_rc_t rc = evr_store_kv_get(b->store, k, held, sizeof held, &err);
    bool ok = true, found = rc == EVR_OK;
    if (rc && rc != EVR_ERR_NOTFOUND) {
        evr_broker_fail(b, &err);
        evr_bus_send_error(b->runners, rid, EVR_CODE_INTERNAL, "%s", err.msg);
        ok = false;
    }
    else if (found && strcmp(held, key) != 0 && evr_zap_admitted(b->zap, "runners", held)) {
        evr_broker_warn(b, "runner %s refused: the id belongs to key %s, this hello came with "
                        "key %s", msg->runner, held, key);
        evr_bus_send_error(b->runners, rid, EVR_CODE_CONFLICT, "runner id %s belongs to another "
                           "admitted key: give this runner another --id, or remove that key's "
                           "certificate from the broker's curve/runners/ to hand the id over",
                           msg->runner);
        ok = false;
    }
    else if (!found || strcmp(held, key) != 0) {
        evr_store_kv_t op = { k, key, strlen(key) };
        if (evr_store_kv_write(b->store, &op, 1, &err)) {
            evr_broker_fail(b, &err);
            evr_bus_send_error(b->runners, rid, EVR_CODE_INTERNAL, "%s", err.msg);
            ok = false;
        }
    }
    free(k);
    return ok;
}

/*  Keeps r's stopped mark across a restart (kv "stopped/<runner>"), or
    drops it: one synced write, and only when it changes; a failure stops
    the broker. */
static void
s_keep_stopped(evr_broker_t *b, evr_runners_session_t *r, bool keep)
{
    if (r->stopped_kept == keep || b->failure)
        return;
    char *k = evr_asprintf("stopped/%s", r->id);
    evr_store_kv_t op = { k, keep ? "1" : NULL, keep ? 1 : 0 };
    evr_err_t err;
    if (evr_store_kv_write(b->store, &op, 1, &err))
        evr_broker_fail(b, &err);
    else
        r->stopped_kept = keep;
    free(k);
}

static bool
s_connected(const evr_runners_session_t *r)
{
    return r->rid && !r->lost;
}

/*  Drops r (holding no job) from the broker's memory.  timed: lost past
    forget_ms, when its id is also freed from the CURVE key that held it
    (kv "key/<runner>"); forgotten for room, the id stays with its key.
    Jobs taken from it keep their records (evr_lease.c): when it comes
    back it is still told to cancel its copies. */
static void
s_forget(evr_broker_t *b, evr_runners_session_t *r, bool timed)
{
    for (evr_runners_session_t **pp = &b->rlist; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    uint64_t away = r->lost_at ? (evr_mono_ns() - r->lost_at) / 1000000000ull : 0;
    evr_broker_info(b, "runner %s forgotten: %s (lost for %llu s)", r->id,
                    timed ? "lost past forget_ms" : "room for a new runner id",
                    (unsigned long long) away);
    s_keep_stopped(b, r, false);
    if (timed || r->drain_unsent) {   /* a held drain goes with it */
        char *k = evr_asprintf("key/%s", r->id), *d = evr_asprintf("drain/%s", r->id);
        evr_store_kv_t ops[2] = { { d, NULL, 0 }, { k, NULL, 0 } };
        evr_err_t err;
        if (evr_store_kv_write(b->store, r->drain_unsent ? ops : ops + 1,
                               (r->drain_unsent ? 1 : 0) + (timed ? 1 : 0), &err))
            evr_broker_fail(b, &err);
        free(k);
        free(d);
    }
    free(r->id);
    zframe_destroy(&r->rid);
    evr_strlist_free(&r->labels);
    free(r);
}

/*  Whether a runner with a new id fits: past EVR_BROKER_MAX_RUNNERS the
    longest-silent runner that is neither connected nor holding a job is
    forgotten; false (with *matter set) when every one is. */
static bool
s_room(evr_broker_t *b, size_t *matter)
{
    size_t n = 0;
    evr_runners_session_t *idle = NULL;
    *matter = 0;
    for (evr_runners_session_t *x = b->rlist; x; x = x->next) {
        n++;
        if (s_connected(x) || evr_queue_assigned(b, x->id))    /* it holds a job */
            (*matter)++;
        else if (!idle || x->seen < idle->seen)
            idle = x;
    }
    if (n < EVR_BROKER_MAX_RUNNERS)
        return true;
    if (!idle)
        return false;
    s_forget(b, idle, false);
    return true;
}

void
evr_runners_forget(evr_broker_t *b)
{
    if (!b->opts.forget_ms)
        return;
    uint64_t now = evr_mono_ns(), limit = (uint64_t) b->opts.forget_ms * 1000000ull;
    for (evr_runners_session_t *r = b->rlist, *next; r && !b->failure; r = next) {
        next = r->next;
        if (r->lost && r->lost_at && now - r->lost_at >= limit && !evr_queue_assigned(b, r->id))
            s_forget(b, r, true);
    }
}

/*  A new session for runner id, not connected (rid NULL), at the head of
    the list. */
static evr_runners_session_t *
s_session(evr_broker_t *b, const char *id)
{
    evr_runners_session_t *r = evr_calloc(1, sizeof *r);
    r->id = evr_strdup(id);
    r->next = b->rlist;
    b->rlist = r;
    return r;
}

/*  Sends r (connected) its held drain and drops the record of it. */
static void
s_send_drain(evr_broker_t *b, evr_runners_session_t *r)
{
    evr_msg_t m = { .type = EVR_MSG_CONTROL, .command = "drain" };
    evr_err_t err;
    if (evr_bus_send(b->runners, r->rid, &m, &err)) {
        if (!r->drain_warned)
            evr_broker_warn(b, "runner %s: its drain was not sent: %s (held: sent again at its "
                            "next heartbeat or hello)", r->id, err.msg);
        r->drain_warned = true;
        return;
    }
    r->drain_warned = false;
    char *k = evr_asprintf("drain/%s", r->id);
    evr_store_kv_t op = { k, NULL, 0 };
    if (evr_store_kv_write(b->store, &op, 1, &err))
        evr_broker_fail(b, &err);
    free(k);
    r->drain_unsent = false;
    evr_broker_info(b, "runner %s: the drain asked while it was away is sent", r->id);
}

static bool
s_executor_known(const char *name)
{
    for (const char *const *e = evr_executor_names; *e; e++)
        if (strcmp(*e, name) == 0)
            return true;
    return false;
}

/*  A hello whose labels name an executor the broker does not know is
    refused (answered): its jobs would never come, as no spec names it. */
static bool
s_hello_executors(evr_broker_t *b, zframe_t *rid, const evr_msg_t *msg)
{
    for (uint32_t i = 0; i < msg->labels.n; i++) {
        const char *l = msg->labels.v[i];
        size_t pre = strlen(EVR_EXECUTOR_LABEL_PREFIX);
        if (strncmp(l, EVR_EXECUTOR_LABEL_PREFIX, pre) != 0 || s_executor_known(l + pre))
            continue;
        evr_broker_warn(b, "runner %s refused: label %s names no executor", msg->runner, l);
        evr_bus_send_error(b->runners, rid, EVR_CODE_CONFLICT, "hello: runner %s: label %s "
                           "names no executor evrun has (executor:podman, executor:process); "
                           "no other label may start with executor:", msg->runner, l);
        return false;
    }
    return true;
}

static void
s_hello(evr_broker_t *b, zframe_t *rid, const char *key, evr_msg_t *msg)
{
    uint64_t high = 0;
    if (!s_hello_executors(b, rid, msg) || !s_hello_key(b, rid, msg, key)
        || !s_hello_seq(b, rid, msg, &high))
        return;     /* the runner known under that id keeps its session */
    evr_runners_session_t *r = evr_runners_find(b, msg->runner);
    evr_runners_session_t *other = s_by_rid(b, rid);
    if (other && other != r)
        zframe_destroy(&other->rid);   /* that connection now speaks for msg->runner */
    size_t matter;
    if (!r && !s_room(b, &matter)) {
        evr_bus_send_error(b->runners, rid, EVR_CODE_UNAVAILABLE, "the broker has %zu runners "
                           "connected or holding jobs, its limit; runner %s is refused",
                           matter, msg->runner);
        return;
    }
    if (!r)
        r = s_session(b, msg->runner);
    if (!r->hello_seen)
        r->demand_met = evr_demand_hello(b, r->id, &msg->labels, msg->capacity);
    r->hello_seen = true;
    zframe_destroy(&r->rid);
    r->rid = zframe_dup(rid);
    evr_strlist_free(&r->labels);
    r->labels = msg->labels;
    memset(&msg->labels, 0, sizeof msg->labels);
    r->capacity = msg->capacity;
    r->ephemeral = msg->ephemeral;
    r->credit = 0;
    r->lost = r->stopped = false;
    s_keep_stopped(b, r, false);
    /* a drain ends with the runner process it reached: one that says hello
       without draining is another (restarted) */
    r->draining = msg->draining || r->drain_unsent;
    r->lost_at = 0;
    r->seen = evr_mono_ns();
    r->heartbeat = evr_now_ns();
    evr_msg_t w = { .type = EVR_MSG_WELCOME, .runner = r->id, .seq = high };
    evr_bus_send(b->runners, rid, &w, NULL);
    r->resync_to = msg->seq;
    r->resynced = false;
    if (r->drain_unsent)
        s_send_drain(b, r);
    evr_broker_info(b, "runner %s connected: capacity %u, its log at seq %llu, the broker "
                    "holds %llu", r->id, r->capacity, (unsigned long long) msg->seq,
                    (unsigned long long) high);
    if (high >= msg->seq)
        s_resynced(b, r);
    s_publish(b, r);
}

static void
s_apply(evr_broker_t *b, evr_runners_session_t *r, const evr_event_t *ev)
{
    evr_evtype_t t = evr_event_kind(ev);
    if (!ev->job)
        return;
    if (t == EVR_EV_JOB_PAUSED || t == EVR_EV_JOB_RESUMED) {
        evr_queue_job_t *p = evr_queue_find(b, ev->job);
        if (p)
            evr_control_confirmed(p, t);
        return;
    }
    if (t != EVR_EV_JOB_ACCEPTED && t != EVR_EV_JOB_FINISHED)
        return;
    evr_queue_job_t *j = evr_queue_find(b, ev->job);
    if (t == EVR_EV_JOB_ACCEPTED) {
        if (!j) {   /* a job the queue does not know (a restart lost track) */
            j = evr_calloc(1, sizeof *j);
            snprintf(j->id, sizeof j->id, "%s", ev->job);
            j->pipeline = evr_strdup(ev->data.pipeline ? ev->data.pipeline : "");
            j->state = B_ACTIVE;
            j->runner = evr_strdup(r->id);
            j->created = ev->time;
            evr_queue_push_front(b, j);
        }
        j->asked = EVR_CONTROL_NONE;    /* a pause sent to an earlier runner of it */
        evr_queue_accepted(b, j, r->id);
        evr_broker_info(b, "job %s accepted by %s", ev->job, r->id);
        s_publish(b, r);
    }
    else if (j) {
        evr_broker_info(b, "job %s finished: %s", ev->job, ev->data.status);
        evr_queue_forget_kept(b, j);
        evr_queue_remove(b, j);
        b->changed = true;
        s_publish(b, r);
    }
}

static void
s_events(evr_broker_t *b, zframe_t *rid, evr_runners_session_t *r, evr_msg_t *msg)
{
    uint32_t n = msg->events.n;
    evr_event_t **evs = evr_malloc((n ? n : 1) * sizeof *evs);
    for (uint32_t i = 0; i < n; i++)
        evs[i] = evr_reclist_at(&evr_event_type, &msg->events, i);
    /* a runner's seq counts from 1, and a batch is in seq order */
    for (uint32_t i = 0; i < n; i++)
        if (evs[i]->seq == 0 || (i && evs[i]->seq <= evs[i - 1]->seq)) {
            char why[160];
            if (evs[i]->seq == 0)
                snprintf(why, sizeof why, "events.events[%u].seq: expected 1 or more (a runner's "
                         "log counts from 1), got 0", i);
            else
                snprintf(why, sizeof why, "events.events[%u].seq: %llu after %llu: a batch is in "
                         "seq order", i, (unsigned long long) evs[i]->seq,
                         (unsigned long long) evs[i - 1]->seq);
            evr_broker_error(b, "events of %s refused: %s", r->id, why);
            evr_bus_send_error(b->runners, rid, EVR_CODE_BAD_REQUEST, "%s", why);
            free(evs);
            return;
        }
    /* events of jobs taken from this runner: counted, not stored */
    bool *drop = evr_lease_drops(b, r, evs, n);
    evr_err_t err;
    evr_rc_t rc = evr_lease_ingest(b, r, evs, &drop, n, &err);   /* refused events out */
    if (rc) {
        evr_broker_error(b, "events of %s refused: %s", r->id, err.msg);
        if (rc == EVR_ERR_STORE)
            evr_broker_fail(b, &err);
        evr_bus_send_error(b->runners, rid, rc == EVR_ERR_STORE ? EVR_CODE_INTERNAL
                                                                : EVR_CODE_BAD_REQUEST,
                           "%s", err.msg);
        free(drop);
        free(evs);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (evs[i]->seq == 0)
            continue;   /* a resend (stored before), or dropped */
        s_apply(b, r, evs[i]);
        evr_bus_publish_event(b->pub, evs[i], NULL);
    }
    if (drop)
        evr_lease_dropped(b, r, evs, drop, n);
    free(drop);
    free(evs);
    uint64_t high = 0;
    if (evr_store_source_seq(b->store, r->id, &high, &err) == EVR_OK) {
        evr_msg_t ack = { .type = EVR_MSG_ACK, .seq = high };
        evr_bus_send(b->runners, rid, &ack, NULL);
    }
    if (!r->resynced && high >= r->resync_to)
        s_resynced(b, r);
}

/*  Runner r leaves (schema/PROTOCOL.md, goodbye): its connection is
    forgotten and it is shown stopped, away from now (lost_at) as a lost
    runner is, so its accepted jobs stay with it until it says hello
    again or reclaim_ms passes.  When the broker holds its log up to the
    goodbye's seq, the jobs dispatched to it that log does not accept were
    never taken (a stopping runner takes none) and are queued again now,
    as after a resync (evr_queue_requeue); otherwise they wait as the
    accepted ones do. */
static void
s_goodbye(evr_broker_t *b, evr_runners_session_t *r, const evr_msg_t *msg)
{
    uint64_t high = 0;
    evr_err_t err;
    bool held = evr_store_source_seq(b->store, r->id, &high, &err) == EVR_OK && high >= msg->seq;
    char why[1100] = "";    /* the reason (1024 bytes at most), on one log line */
    if (msg->reason)
        snprintf(why, sizeof why, " (%s)", msg->reason);
    for (char *c = why; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            *c = '?';
    if (held)
        evr_queue_requeue(b, r->id);
    else
        evr_broker_warn(b, "runner %s: its goodbye names seq %llu of its log, the broker holds "
                        "%llu: the jobs dispatched to it wait for its return or reclaim_ms",
                        r->id, (unsigned long long) msg->seq, (unsigned long long) high);
    zframe_destroy(&r->rid);
    r->stopped = r->lost = true;
    r->lost_at = evr_mono_ns();
    r->credit = 0;
    s_keep_stopped(b, r, true);
    uint32_t kept = evr_queue_assigned(b, r->id);
    evr_broker_info(b, "runner %s stopped: it said goodbye%s; %u job%s left with it", r->id, why,
                    kept, kept == 1 ? "" : "s");
    s_publish(b, r);
    b->changed = true;
}

void
evr_runners_on_message(evr_broker_t *b, zframe_t *rid, const char *key, evr_msg_t *msg)
{
    if (msg->type == EVR_MSG_HELLO) {
        s_hello(b, rid, key, msg);
        return;
    }
    if (msg->type != EVR_MSG_CREDIT && msg->type != EVR_MSG_EVENTS
        && msg->type != EVR_MSG_HEARTBEAT && msg->type != EVR_MSG_ARTIFACT_CHUNK
        && msg->type != EVR_MSG_TRIGGER && msg->type != EVR_MSG_QUERY
        && msg->type != EVR_MSG_GOODBYE) {
        evr_bus_send_error(b->runners, rid, EVR_CODE_BAD_REQUEST, "%s is not a message a "
                           "runner sends: this is the broker's runner socket; a client "
                           "(evrun-cli) connects to its client socket, %s",
                           evr_msgtype_name(msg->type),
                           b->opts.client_ep ? b->opts.client_ep : "client_endpoint");
        return;
    }
    evr_runners_session_t *r = s_by_rid(b, rid);
    if (!r) {
        evr_bus_send_error(b->runners, rid, EVR_CODE_UNAVAILABLE, "this connection has not "
                           "said hello (the broker restarted?), or another connection has "
                           "said hello since with its runner id (two runners with one id?): "
                           "send hello first");
        return;
    }
    r->seen = evr_mono_ns();
    r->heartbeat = evr_now_ns();
    if (msg->type == EVR_MSG_GOODBYE) {     /* not "back": leaving */
        s_goodbye(b, r, msg);
        return;
    }
    if (r->lost) {
        r->lost = false;
        r->lost_at = 0;
        evr_broker_info(b, "runner %s is back", r->id);
        evr_lease_back(b, r);
        if (r->resynced)
            evr_policy_resend(b, r->id);
        s_publish(b, r);
        b->changed = true;
    }
    switch (msg->type) {
    case EVR_MSG_CREDIT:
        if (r->credit != msg->credit) {
            r->credit = msg->credit;
            b->changed = true;
            s_publish(b, r);
        }
        break;
    case EVR_MSG_EVENTS: s_events(b, rid, r, msg); break;
    case EVR_MSG_HEARTBEAT:
        if (r->drain_unsent && s_connected(r))
            s_send_drain(b, r);     /* its send at hello failed: again, at each heartbeat */
        break;
    case EVR_MSG_ARTIFACT_CHUNK: evr_artstore_chunk(b, rid, r->id, msg); break;
    case EVR_MSG_TRIGGER: evr_trigger_on_message(b, rid, r->id, msg); break;
    case EVR_MSG_QUERY: evr_trigger_query(b, rid, msg); break;
    default: break;   /* refused above */
    }
}

void
evr_runners_beat(evr_broker_t *b)
{
    uint64_t now = evr_mono_ns();
    if (now < b->next_beat)
        return;
    b->next_beat = now + (uint64_t) b->opts.heartbeat_ms * 1000000ull;
    evr_msg_t hb = { .type = EVR_MSG_HEARTBEAT };
    for (evr_runners_session_t *r = b->rlist; r; r = r->next) {
        if (!r->lost && (!r->rid || now - r->seen > (uint64_t) b->opts.lease_ms * 1000000ull)) {
            r->lost = true;
            r->lost_at = now;
            evr_broker_warn(b, "runner %s lost: %s", r->id, r->rid ? "silent past its lease"
                                                                    : "its connection is gone");
            s_publish(b, r);
        }
        if (!r->lost)
            evr_bus_send(b->runners, r->rid, &hb, NULL);
    }
    evr_lease_check(b);
    evr_runners_forget(b);
}

bool
evr_runners_control(evr_broker_t *b, const char *runner, const char *command, const char *job,
                    const char *reason, bool force, char *why, size_t whylen)
{
    evr_runners_session_t *r = runner ? evr_runners_find(b, runner) : NULL;
    if (!r || !r->rid || r->lost) {
        snprintf(why, whylen, "runner %s is not connected; try again when it is back",
                 runner ? runner : "(none)");
        return false;
    }
    evr_msg_t m = { .type = EVR_MSG_CONTROL, .command = (char *) command, .job = (char *) job,
                    .reason = (char *) reason, .force = force };
    evr_err_t err;
    if (evr_bus_send(b->runners, r->rid, &m, &err)) {
        /* its connection is gone (a runner killed: not shown lost until its
           lease passes): nothing was sent, as for one known away */
        snprintf(why, whylen, "runner %s is not connected (%s): nothing was sent; try again "
                 "when it is back", r->id, err.msg);
        return false;
    }
    return true;
}

bool
evr_runners_drain(evr_broker_t *b, evr_runners_session_t *r, char *why, size_t whylen)
{
    if (r->draining && (r->drain_unsent || s_connected(r)))
        return true;    /* sent, or held for its hello, already */
    if (!s_connected(r)
        || !evr_runners_control(b, r->id, "drain", NULL, NULL, false, why, whylen)) {
        /* away, or its connection did not take the message: held for it */
        char *k = evr_asprintf("drain/%s", r->id);
        evr_store_kv_t op = { k, "1", 1 };
        evr_err_t err;
        evr_rc_t rc = evr_store_kv_write(b->store, &op, 1, &err);
        free(k);
        if (rc) {
            evr_broker_fail(b, &err);
            snprintf(why, whylen, "%s", err.msg);
            return false;
        }
        r->drain_unsent = true;
    }
    r->draining = true;
    s_publish(b, r);
    return true;
}

/*  A runner's mark kept across a restart: a drain held for it
    ("drain/<runner>") or its goodbye ("stopped/<runner>"). */
static int
s_restore_mark(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void) val;
    (void) len;
    evr_broker_t *b = arg;
    bool drain = strncmp(key, "drain/", 6) == 0;
    const char *id = strchr(key, '/') + 1;
    evr_runners_session_t *r = evr_runners_find(b, id);
    if (!r)
        r = s_session(b, id);
    if (drain)
        r->draining = r->drain_unsent = true;
    else
        r->stopped = r->stopped_kept = true;
    return 0;
}

evr_rc_t
evr_runners_restore(evr_broker_t *b, evr_err_t *err)
{
    for (evr_queue_job_t *j = zhashx_first(b->by_runner); j; j = zhashx_next(b->by_runner)) {
        const char *id = zhashx_cursor(b->by_runner);
        if (!evr_runners_find(b, id))
            s_session(b, id);
    }
    evr_rc_t rc = evr_store_kv_scan(b->store, "drain/", s_restore_mark, b, err);
    if (!rc)
        rc = evr_store_kv_scan(b->store, "stopped/", s_restore_mark, b, err);
    for (evr_runners_session_t *r = b->rlist; r; r = r->next) {
        r->lost = true;
        r->lost_at = b->started;    /* the lease counts from the broker's start */
    }
    return rc;
}

void
evr_runners_free_all(evr_broker_t *b)
{
    while (b->rlist) {
        evr_runners_session_t *r = b->rlist;
        b->rlist = r->next;
        free(r->id);
        zframe_destroy(&r->rid);
        evr_strlist_free(&r->labels);
        free(r);
    }
}
