/*  evr_broker.c: the broker's sockets, its loop and the client requests.

    Requests are answered in the order they come; streams (jobs, runners,
    history) are a run of messages closed by `end`.  Queue work lives in
    evr_queue.c, runner sessions and event ingestion in evr_runners.c, the
    jobs of lost runners in evr_lease.c, cancel, pause, resume and drain
    in evr_control.c.
*/
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "evr_broker_int.h"
#include "evr_codec.h"
#include "evr_flow.h"
#include "evr_log.h"
#include "evr_paths.h"
#include "evr_pipelines.h"

#define S_TURN_MAX 256          /* messages per socket per turn */
#define S_JOBS_DEFAULT 100
#define S_JOBS_MAX 10000
/*  What the broker holds queued for one client connection, and for its
    event stream (all subscribers together); schema/PROTOCOL.md "Flow
    control". */
#define S_CLIENT_BYTES (16u << 20)
#define S_CLIENT_RESERVE (64u << 10)
#define S_CLIENT_RCVHWM 16
#define S_CLIENT_SNDHWM (2 * S_JOBS_MAX + 2)
#define S_PUB_BYTES (64u << 20)
#define S_PUB_SNDHWM 200
/*  One subscriber that never reads holds at most S_PUB_SNDHWM publications
    (and the one libzmq is writing): 200 x (288 KiB + 256) = 56.3 MiB, so
    it cannot take the whole shared budget from the others. */
_Static_assert((uint64_t) S_PUB_SNDHWM * (EVR_PUB_MAX_BYTES + EVR_FLOW_OVERHEAD)
               + 2 * (EVR_PUB_MAX_BYTES + EVR_FLOW_OVERHEAD) <= S_PUB_BYTES,
               "a subscriber's queue of the largest publications must fit the shared budget");
/*  A subscriber sends only subscriptions (a byte, then the prefix); no
    topic is longer than `rn.` and a 64-byte runner id, so a longer prefix
    matches nothing.  libzmq keeps each in a trie of some 30 bytes a byte
    of prefix while its subscriber stays, so the event socket takes frames
    of at most this many bytes (ZMQ_MAXMSGSIZE: a larger one closes that
    subscriber's connection), not the 4 MiB of the others: one
    subscription of 4 MiB cost the broker some 150 MB. */
#define S_PUB_SUB_MAX 4096

void
evr_broker_fail(evr_broker_t *b, const evr_err_t *err)
{
    if (b->failure)
        return;
    b->failure = EVR_ERR_STORE;
    snprintf(b->failmsg, sizeof b->failmsg, "%s", err->msg);
    evr_broker_error(b, "store failure: %s", err->msg);
}

evr_rc_t
evr_broker_failure(const evr_broker_t *self, const char **msg)
{
    if (msg)
        *msg = self->failmsg;
    return self->failure;
}

/* ---------------------------------------------------------- lifecycle */

/*  Binds a socket of type on ep; on tcp:// a CURVE server whose peers
    need a key of role. */
static evr_rc_t
s_bind(evr_broker_t *b, zsock_t **sock, int type, const char *ep, const char *what,
       const char *role, evr_err_t *err)
{
    evr_rc_t rc = evr_bus_check_endpoint(ep, err);
    if (rc)
        return evr_err_set(err, rc, "%s endpoint: %s", what, err->msg);
    *sock = zsock_new(type);
    if (!*sock)
        return evr_err_set(err, EVR_ERR_IO, "zsock_new: %s", zmq_strerror(zmq_errno()));
    evr_bus_setup(*sock);
    if (strcmp(what, "client") == 0) {
        zsock_set_rcvhwm(*sock, S_CLIENT_RCVHWM);   /* requests waiting per connection */
        zsock_set_rcvtimeo(*sock, 0);   /* s_drain_socket: a receive says when none is left */
        zsock_set_sndhwm(*sock, S_CLIENT_SNDHWM);   /* a whole stream; bytes bound it */
    }
    if (type == ZMQ_XPUB) {
        zsock_set_sndhwm(*sock, S_PUB_SNDHWM);  /* publications waiting per subscriber */
        zsock_set_maxmsgsize(*sock, S_PUB_SUB_MAX);
    }
    if (type == ZMQ_ROUTER)
        zsock_set_router_mandatory(*sock, 1);   /* a gone peer is an error, not a silent drop */
    if (evr_curve_needed(ep))
        evr_zap_serve(b->zap, *sock, role);
    if (zsock_bind(*sock, "%s", ep) < 0)
        return evr_err_set(err, EVR_ERR_IO, "cannot bind the %s endpoint %s: %s (another "
                           "broker running?)", what, ep, zmq_strerror(zmq_errno()));
    return EVR_OK;
}

evr_rc_t
evr_broker_new(const evr_broker_opts_t *opts, evr_broker_t **out, evr_err_t *err)
{
    *out = NULL;
    evr_broker_t *b = evr_calloc(1, sizeof *b);
    b->opts = *opts;
    if (!b->opts.heartbeat_ms)
        b->opts.heartbeat_ms = 1000;
    if (!b->opts.lease_ms)
        b->opts.lease_ms = 5000;
    if (!b->opts.queue_limit)
        b->opts.queue_limit = 1000;
    if (!b->opts.retention_interval_ms)
        b->opts.retention_interval_ms = 60000;
    if (!b->opts.artifact_job_max_bytes)
        b->opts.artifact_job_max_bytes = EVR_BROKER_ARTIFACT_JOB_MAX_DEFAULT;
    b->artifacts_dir = opts->artifacts_dir ? evr_strdup(opts->artifacts_dir)
                                           : evr_asprintf("%s/artifacts", opts->store_dir);
    b->opts.artifacts_dir = b->artifacts_dir;
    evr_bus_init();   /* czmq set up, its signal handlers off (evr_bus.h) */
    /* after: its worker's czmq setup must not install czmq's handlers,
       and it starts with every signal blocked (evr_artsum_new) */
    b->artstore = evr_artstore_new();
    evr_queue_init(b);
    int sflags = EVR_STORE_BROKER | (opts->nosync ? EVR_STORE_NOSYNC : 0);
    evr_rc_t rc = evr_store_open(opts->store_dir, sflags, &b->store, err);
    if (!rc)   /* the artifacts received: the broker's alone */
        rc = evr_paths_dir(b->artifacts_dir, true, err);
    if (!rc)
        rc = evr_queue_load(b, err);
    if (!rc)
        rc = evr_policy_load(b, err);
    if (!rc)
        rc = evr_lease_load(b, err);
    if (!rc)
        rc = evr_runners_restore(b, err);
    bool made = false;
    if (!rc && (evr_curve_needed(opts->client_ep) || evr_curve_needed(opts->runner_ep)
                || evr_curve_needed(opts->pub_ep))) {
        if (!opts->curve_dir)
            rc = evr_err_set(err, EVR_ERR_CONFIG, "tcp:// endpoints need a curve directory");
        else if ((rc = evr_zap_new(opts->curve_dir, &made, &b->zap, err)))
            /* "/etc/passwd: not a directory" named no setting */
            evr_err_set(err, rc, "curve_dir (--curve-dir, the CURVE keys of the tcp:// "
                        "endpoints): %s", err->msg);
    }
    if (!rc)
        rc = s_bind(b, &b->clients, ZMQ_ROUTER, opts->client_ep, "client", "clients", err);
    if (!rc)
        rc = s_bind(b, &b->runners, ZMQ_ROUTER, opts->runner_ep, "runner", "runners", err);
    if (!rc)
        rc = s_bind(b, &b->pub, ZMQ_XPUB, opts->pub_ep, "events", "clients", err);
    if (!rc) {
        evr_flow_attach(b->clients, true, S_CLIENT_BYTES, S_CLIENT_RESERVE);
        evr_flow_attach(b->pub, false, S_PUB_BYTES, 0);
    }
    if (!rc)
        rc = evr_pipelines_init(b, err);
    if (!rc && b->zap)
        evr_broker_info(b, "CURVE on tcp:// endpoints: the broker's public key %s is in %s%s; "
                        "admit a runner's or client's key by copying its public certificate "
                        "into %s/runners/ or %s/clients/", evr_zap_public(b->zap),
                        evr_zap_cert_path(b->zap), made ? " (made now)" : "", opts->curve_dir,
                        opts->curve_dir);
    if (rc) {
        evr_broker_destroy(&b);
        return rc;
    }
    b->changed = true;
    *out = b;
    return EVR_OK;
}

void
evr_broker_destroy(evr_broker_t **self_p)
{
    evr_broker_t *b = *self_p;
    if (!b)
        return;
    if (b->clients && b->store)
        evr_queue_flush(b);     /* the last submits answered */
    evr_pipelines_fini(b);
    evr_providers_free(b);
    evr_demand_free(b);
    evr_flow_detach(b->clients);
    evr_flow_detach(b->pub);
    zsock_destroy(&b->clients);
    zsock_destroy(&b->runners);
    zsock_destroy(&b->pub);
    evr_zap_destroy(&b->zap);
    evr_queue_fini(b);
    evr_runners_free_all(b);
    evr_lease_free(b);
    evr_store_destroy(&b->store);
    free(b->artifacts_dir);
    evr_artstore_destroy(&b->artstore);
    free(b);
    *self_p = NULL;
}

/* --------------------------------------------------------- job views */

/*  The steps' outputs of pj into m (`status`): STEP/KEY, at most
    EVR_MSG_MAX_OUTPUTS. */
static void
s_outputs_view(const evr_job_t *pj, evr_msg_t *m)
{
    for (uint32_t i = 0; i < pj->steps.n; i++) {
        const evr_stepstate_t *st = evr_job_step(pj, i);
        for (uint32_t k = 0; k < st->outputs.n && m->outputs.n < EVR_MSG_MAX_OUTPUTS; k++) {
            char *key = evr_asprintf("%s/%s", st->name, st->outputs.k[k]);
            evr_strmap_set(&m->outputs, key, st->outputs.v[k]);
            free(key);
        }
    }
}

/*  Each step of pj into m (`status`, `queried`): STEP to "STATUS", and
    "STATUS EXIT_CODE" once it ended. */
static void
s_steps_view(const evr_job_t *pj, evr_msg_t *m)
{
    for (uint32_t i = 0; i < pj->steps.n; i++) {
        const evr_stepstate_t *st = evr_job_step(pj, i);
        const char *name = evr_step_status_name(st->status);
        char v[64];
        if (st->status == EVR_STEP_SUCCEEDED || st->status == EVR_STEP_FAILED)
            snprintf(v, sizeof v, "%s %lld", name, (long long) st->exit_code);
        else
            snprintf(v, sizeof v, "%s", name);
        evr_strmap_set(&m->step_states, st->name, v);
    }
}

/*  The parent of a job a step triggered, from its job.accepted (jseq 1). */
static int
s_parent_of(const evr_event_t *ev, void *arg)
{
    evr_msg_t *m = arg;
    if (evr_event_kind(ev) == EVR_EV_JOB_ACCEPTED && ev->data.parent_job && ev->data.parent_step) {
        m->parent_job = evr_strdup(ev->data.parent_job);
        m->parent_step = evr_strdup(ev->data.parent_step);
    }
    return 1;   /* the first event only */
}

/*  A child of the job (kids/PARENT/CHILD) into the `job` message arg. */
static int
s_child_of(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void) val;
    (void) len;
    evr_msg_t *m = arg;
    const char *child = strrchr(key, '/');
    if (child && evr_ulid_valid(child + 1))
        evr_strlist_push(&m->children, child + 1);
    return m->children.n >= EVR_MSG_MAX_CHILDREN;
}

/*  Fills m (a `job` message, strings owned: evr_msg_clear) for id, with
    its steps and their outputs when outputs (a queued job's steps, from
    the spec it holds, all "pending").  EVR_ERR_NOTFOUND when the broker
    knows no such job; another code (err says it) when its store cannot
    be read: never to be answered as not_found. */
evr_rc_t
evr_broker_job_view(evr_broker_t *b, const char *id, bool outputs, evr_msg_t *m, evr_err_t *err)
{
    memset(m, 0, sizeof *m);
    m->type = EVR_MSG_JOB;
    evr_queue_job_t *j = evr_queue_find(b, id);
    if (j && j->state != B_ACTIVE) {
        m->job = evr_strdup(j->id);
        m->pipeline = evr_strdup(j->pipeline);
        m->status = evr_strdup(j->state == B_HELD ? "paused" : "queued");
        m->runner = j->runner ? evr_strdup(j->runner) : NULL;
        m->created = j->created;
        evr_msg_t *sub = evr_queue_submit_of(b, j);
        if (sub) {
            m->steps_total = evr_spec_job_steps(sub->spec);
            for (uint32_t i = 0; outputs && i < m->steps_total; i++)   /* logs --step checks */
                evr_strmap_set(&m->step_states, evr_spec_job_step_name(sub->spec, i), "pending");
            m->parent_job = sub->parent_job;    /* taken */
            m->parent_step = sub->parent_step;
            sub->parent_job = sub->parent_step = NULL;
            evr_msg_destroy(&sub);
        }
        for (uint32_t i = 0; i < j->labels.n && i < 32; i++)   /* evrun-provisioner's demand */
            evr_strlist_push(&m->labels, j->labels.v[i]);
        if (j->not_before > evr_now_ns()) {
            char t[32];
            evr_time_format(j->not_before, t, sizeof t);
            m->reason = evr_asprintf("start_delay: not dispatched before %s", t);
        }
        else if (j->state == B_QUEUED && j->concurrency && j->pipe
                 && j->pipe->nbusy >= j->concurrency)
            m->reason = evr_asprintf("concurrency: %zu of pipeline %s's jobs running, its "
                                     "limit: it starts when one ends", j->pipe->nbusy,
                                     j->pipeline);
        return EVR_OK;
    }
    evr_job_t pj = { 0 };
    evr_rc_t rc = evr_store_get_job(b->store, id, &pj, err);
    if (rc) {
        evr_rec_free(&evr_job_type, &pj);
        return rc;
    }
    evr_err_t ign;      /* parents and children: a view without them */
    m->job = evr_strdup(pj.id);
    m->pipeline = evr_strdup(pj.pipeline ? pj.pipeline : "");
    m->status = evr_strdup(evr_job_status_name(pj.status));
    m->runner = pj.runner ? evr_strdup(pj.runner) : NULL;
    m->reason = pj.reason ? evr_strdup(pj.reason) : NULL;
    m->steps_total = pj.steps.n;
    m->steps_done = evr_job_steps_done(&pj);
    for (uint32_t i = 0; i < pj.steps.n; i++)
        m->allowed_failures += evr_job_step(&pj, i)->allowed;
    m->created = evr_queue_created(b, pj.id, pj.created);   /* the submit time */
    m->started = pj.started;
    m->finished = pj.finished;
    if (outputs) {
        s_steps_view(&pj, m);
        s_outputs_view(&pj, m);
        evr_store_job_events(b->store, pj.id, 1, s_parent_of, m, &ign);
    }
    char prefix[EVR_ULID_LEN + 8];   /* `status` and `jobs` (evrun-cli jobs --tree) */
    snprintf(prefix, sizeof prefix, EVR_KV_KIDS "%s/", pj.id);
    evr_store_kv_scan(b->store, prefix, s_child_of, m, &ign);
    evr_rec_free(&evr_job_type, &pj);
    return EVR_OK;
}

static void
s_status(evr_broker_t *b, zframe_t *rid, const evr_msg_t *req)
{
    evr_msg_t m;
    evr_err_t err;
    evr_rc_t rc = evr_broker_job_view(b, req->job, true, &m, &err);
    if (rc == EVR_OK)
        evr_bus_send(b->clients, rid, &m, NULL);
    else if (rc == EVR_ERR_NOTFOUND)
        evr_retention_no_job(b, rid, req->job);
    else
        evr_bus_send_error(b->clients, rid, EVR_CODE_INTERNAL, "%s", err.msg);
    evr_msg_clear(&m);
}

typedef struct {
    char (*ids)[EVR_ULID_LEN + 1];
    size_t n, cap;
    const evr_msg_t *req;
} s_list_t;

static void
s_list_add(s_list_t *l, const char *id)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->ids = evr_realloc(l->ids, l->cap * sizeof *l->ids);
    }
    snprintf(l->ids[l->n++], EVR_ULID_LEN + 1, "%s", id);
}

static int
s_list_job(const char *id, evr_job_status_t status, void *arg)
{
    (void) status;
    s_list_add(arg, id);
    return 0;
}

static int
s_cmp_desc(const void *a, const void *b)
{
    return -strcmp(a, b);
}

/*  Offers id to the newest k ids (a min-heap of l's ids, at most k). */
static void
s_list_top(s_list_t *l, size_t k, const char *id)
{
    size_t i;
    if (l->n < k) {
        s_list_add(l, id);
        for (i = l->n - 1; i && strcmp(l->ids[(i - 1) / 2], id) > 0; i = (i - 1) / 2)
            memcpy(l->ids[i], l->ids[(i - 1) / 2], sizeof l->ids[i]);
    }
    else if (k && strcmp(id, l->ids[0]) > 0) {
        for (i = 0;;) {
            size_t c = 2 * i + 1;
            if (c + 1 < l->n && strcmp(l->ids[c + 1], l->ids[c]) < 0)
                c++;
            if (c >= l->n || strcmp(l->ids[c], id) >= 0)
                break;
            memcpy(l->ids[i], l->ids[c], sizeof l->ids[i]);
            i = c;
        }
    }
    else
        return;
    snprintf(l->ids[i], sizeof l->ids[i], "%s", id);
}

/*  A stream that could not be queued whole (the client does not read, or
    its connection is gone): it ends with an error instead of `end`. */
static void
s_cut(evr_broker_t *b, zframe_t *rid, const char *what, uint32_t sent)
{
    evr_bus_send_error(b->clients, rid, EVR_CODE_UNAVAILABLE, "%s cut after %u item%s: the "
                       "answer could not be queued (this connection does not read); ask again",
                       what, sent, sent == 1 ? "" : "s");
}

static void
s_jobs(evr_broker_t *b, zframe_t *rid, const evr_msg_t *req)
{
    s_list_t l = { .req = req };
    evr_job_status_t st = EVR_JOB_NONE;
    if (req->status)
        evr_job_status_parse(req->status, &st);
    uint32_t limit = req->limit ? req->limit : S_JOBS_DEFAULT;
    if (limit > S_JOBS_MAX)
        limit = S_JOBS_MAX;
    /* the newest `limit` + 1 of the store below the cursor (`before`, kept
       in req->job), read without decoding the rest: with the queued ones,
       the newest `limit` of all are among them, and one more says `more` */
    evr_err_t err;
    if (evr_store_list(b->store, st, req->pipeline, req->job, limit + 1, s_list_job, &l, &err)) {
        evr_bus_send_error(b->clients, rid, EVR_CODE_INTERNAL, "%s", err.msg);
        free(l.ids);
        return;
    }
    /* the newest limit + 1 of the queue below the cursor, too: at most
       `limit` of them are sent, each with a view (the store's may have
       none), and one more says `more`; walked from the newest, that most
       ids come in the order of time, so that most are older than these */
    s_list_t q = { .req = req };
    const evr_queue_pipe_t *pl = req->pipeline ? evr_queue_pipe(b, req->pipeline) : NULL;
    evr_queue_job_t *j = req->pipeline ? (pl ? pl->tail : NULL) : b->last;
    for (; j; j = req->pipeline ? j->pprev : j->prev) {
        if (j->state == B_ACTIVE || (req->job && strcmp(j->id, req->job) >= 0))
            continue;
        const char *s = j->state == B_HELD ? "paused" : "queued";
        if (!req->status || !strcmp(req->status, s))
            s_list_top(&q, (size_t) limit + 1, j->id);
    }
    for (size_t k = 0; k < q.n; k++)
        s_list_add(&l, q.ids[k]);
    free(q.ids);
    if (l.n)
        qsort(l.ids, l.n, sizeof *l.ids, s_cmp_desc);   /* newest first */
    uint32_t sent = 0;
    bool cut = false;
    size_t i = 0;
    for (; i < l.n && sent < limit && !cut; i++) {
        evr_msg_t m;
        evr_rc_t rc = evr_broker_job_view(b, l.ids[i], false, &m, &err);
        if (rc == EVR_OK) {
            cut = evr_bus_send(b->clients, rid, &m, NULL) != EVR_OK;
            sent += !cut;
        }
        evr_msg_clear(&m);
        if (rc && rc != EVR_ERR_NOTFOUND) {   /* a store error: not a shorter list */
            free(l.ids);
            evr_bus_send_error(b->clients, rid, EVR_CODE_INTERNAL, "%s", err.msg);
            return;
        }
    }
    free(l.ids);
    if (cut) {
        s_cut(b, rid, "jobs", sent);
        return;
    }
    evr_msg_t end = { .type = EVR_MSG_END, .count = sent, .more = i < l.n,
                      .queue_limit = b->opts.queue_limit };
    evr_bus_send(b->clients, rid, &end, NULL);
}

/*  One `history` answer holds at most this many events or bytes (each
    event's, encoded: the last one may pass the bound): its
    `end` says `more` when events were left, and the client asks again
    from the next jseq (schema/PROTOCOL.md "History"), so a long job
    never floods a slow client's queue. */
#define S_HISTORY_PAGE 1000
#define S_HISTORY_BYTES (8u << 20)

typedef struct {
    evr_broker_t *b;
    zframe_t *rid;
    uint32_t count, page;   /* events sent, most in the page */
    size_t bytes;
    bool failed;
    bool more;      /* the page is full and the store holds a next event */
} s_hist_t;

static int
s_hist_one(const evr_event_t *ev, void *arg)
{
    s_hist_t *h = arg;
    if (h->count >= h->page || h->bytes >= S_HISTORY_BYTES) {
        h->more = true;     /* called for the event after a full page: it exists */
        return 1;
    }
    evr_msg_t m = { .type = EVR_MSG_EVENT, .event = (evr_event_t *) ev };
    if (evr_bus_send(h->b->clients, h->rid, &m, NULL)) {
        h->failed = true;   /* the client is gone or too slow: it will ask again */
        return 1;
    }
    h->count++;
    /* the event's bytes, not its output's alone: a step.outputs (64
       values of 4 KiB) is some 266 KB, and 1000 of them would not queue */
    h->bytes += evr_codec_size(&evr_event_type, ev) + 256;
    return 0;
}

static void
s_history(evr_broker_t *b, zframe_t *rid, const evr_msg_t *req)
{
    s_hist_t h = { .b = b, .rid = rid, .page = S_HISTORY_PAGE };
    if (req->limit && req->limit < S_HISTORY_PAGE)
        h.page = req->limit;    /* a client that wants smaller pages (evrun-gateway's live logs) */
    evr_err_t err;
    uint64_t from = req->from ? req->from : 1;
    if (from > UINT32_MAX)
        from = UINT32_MAX;
    evr_rc_t rc = evr_store_job_events(b->store, req->job, (uint32_t) from, s_hist_one, &h,
                                       &err);
    if (rc == EVR_ERR_NOTFOUND && !evr_queue_find(b, req->job)) {
        evr_retention_no_job(b, rid, req->job);
        return;
    }
    if (rc && rc != EVR_ERR_NOTFOUND) {
        evr_bus_send_error(b->clients, rid, EVR_CODE_INTERNAL, "%s", err.msg);
        return;
    }
    if (h.failed) {
        evr_bus_send_error(b->clients, rid, EVR_CODE_UNAVAILABLE, "history of %s cut at "
                           "jseq %llu: the answer could not be queued; ask again from there",
                           req->job, (unsigned long long) (from + h.count));
        return;
    }
    evr_msg_t end = { .type = EVR_MSG_END, .count = h.count, .more = h.more };
    evr_bus_send(b->clients, rid, &end, NULL);
}

static void
s_runners(evr_broker_t *b, zframe_t *rid)
{
    uint32_t n = 0;
    for (evr_runners_session_t *r = b->rlist; r; r = r->next, n++) {
        evr_msg_t m;
        evr_runners_describe(b, r, &m);
        if (evr_bus_send(b->clients, rid, &m, NULL) != EVR_OK) {
            s_cut(b, rid, "runners", n);
            return;
        }
    }
    evr_msg_t end = { .type = EVR_MSG_END, .count = n };
    evr_bus_send(b->clients, rid, &end, NULL);
}

/* --------------------------------------------------------------- loop */

/*  A client's request from *rid (taken, set NULL, by a staged submit). */
static void
s_client(evr_broker_t *b, zframe_t **rid_p, evr_msg_t *msg, evr_bus_wire_t *wire)
{
    zframe_t *rid = *rid_p;
    evr_broker_debug(b, "request %s", evr_msgtype_name(msg->type));
    if (msg->type != EVR_MSG_SUBMIT && msg->type != EVR_MSG_START)
        evr_queue_flush(b);     /* it sees the submits before it */
    if (msg->reason) {
        /* a client's reason (cancel, demand, provider) is shown to others
           in terminals (evrun-cli status, runners): on one line, no
           terminal escape, as a hook's message (README); its backslashes
           escaped too, so that an escape shown is one the broker wrote */
        char r[EVR_REASON_MAX + 1];
        if (strcmp(evr_text_escape(msg->reason, r, sizeof r), msg->reason)) {
            free(msg->reason);
            msg->reason = evr_strdup(r);
        }
    }
    switch (msg->type) {
    case EVR_MSG_SUBMIT:
        /* a parent is the broker's to record (a runner's trigger), not a
           client's: a body that names one is not the record */
        if (msg->parent_job || msg->parent_step)
            evr_bus_wire_close(wire);
        free(msg->parent_job);
        free(msg->parent_step);
        msg->parent_job = msg->parent_step = NULL;
        if (wire->open)
            evr_queue_submit_wire(b, rid_p, msg, zmq_msg_data(&wire->frame),
                                  zmq_msg_size(&wire->frame));
        else
            evr_queue_submit(b, rid, msg, "submit", NULL);
        break;
    case EVR_MSG_START: evr_pipelines_start(b, rid, msg); break;
    case EVR_MSG_PIPELINES: evr_pipelines_list(b, rid); break;
    case EVR_MSG_PROVIDER: evr_providers_report(b, rid, msg); break;
    case EVR_MSG_PROVIDERS: evr_providers_list(b, rid); break;
    case EVR_MSG_DEMAND: evr_demand_add(b, rid, msg); break;
    case EVR_MSG_DEMANDS: evr_demand_list(b, rid); break;
    case EVR_MSG_CANCEL:
    case EVR_MSG_PAUSE:
    case EVR_MSG_RESUME: evr_control_job(b, rid, msg); break;
    case EVR_MSG_STATUS: s_status(b, rid, msg); break;
    case EVR_MSG_JOBS: s_jobs(b, rid, msg); break;
    case EVR_MSG_HISTORY: s_history(b, rid, msg); break;
    case EVR_MSG_RUNNERS: s_runners(b, rid); break;
    case EVR_MSG_DRAIN: evr_control_drain(b, rid, msg); break;
    case EVR_MSG_PRUNE: evr_retention_request(b, rid, msg); break;
    case EVR_MSG_FETCH: evr_artstore_fetch(b, rid, msg); break;
    default:
        evr_bus_send_error(b->clients, rid, EVR_CODE_BAD_REQUEST, "%s is not a client "
                           "request: this is the broker's client socket; a runner "
                           "(evrun-runner --broker) connects to its runner socket, %s",
                           evr_msgtype_name(msg->type),
                           b->opts.runner_ep ? b->opts.runner_ep : "runner_endpoint");
        break;
    }
}

/*  Handles one message waiting on sock: false when none waits. */
static bool
s_take(evr_broker_t *b, zsock_t *sock, bool runners)
{
    zframe_t *rid = NULL;
    evr_msg_t msg = { 0 };
    const char *code;
    evr_err_t err;
    char user[41];
    evr_bus_wire_t wire = { .open = false };
    evr_rc_t rc = evr_bus_recv_wire(sock, &rid, user, &msg, runners ? NULL : &wire, &code,
                                    &err);
    if (rc == EVR_ERR_NOTFOUND && !rid) {
        evr_msg_clear(&msg);
        return false;
    }
    if (rc) {
        if (!runners)
            evr_queue_flush(b);     /* answers in the order asked */
        if (rid)
            evr_bus_send_error(sock, rid, code, "%s", err.msg);
    }
    else if (runners)
        evr_runners_on_message(b, rid, user, &msg);
    else
        s_client(b, &rid, &msg, &wire);
    evr_bus_wire_close(&wire);
    evr_msg_clear(&msg);
    zframe_destroy(&rid);
    return true;
}

/*  Waits until sock may hold a message or the mono ns until: false at
    until.  Called after a receive found none (libzmq took the commands
    waiting then, so its ZMQ_FD signals the next: no ZMQ_EVENTS look, a
    poll(2) and a getpid(2) less a wait). */
static bool
s_wait(zsock_t *sock, uint64_t until)
{
    uint64_t now = evr_mono_ns();
    if (now >= until)
        return false;
    struct pollfd p = { .fd = zsock_fd(sock), .events = POLLIN };
    struct timespec ts = { 0, (long) (until - now) };
    ppoll(&p, 1, &ts, NULL);
    return true;    /* a signal of the socket's, or the time: the next receive says */
}

/*  Handles up to S_TURN_MAX messages waiting on sock.  The client socket
    is read until its receive finds none (it has a receive timeout of 0),
    without a readable check a message: each costs libzmq a poll(2) and a
    getpid(2); then, while evr_queue_linger says so, waited on for the
    submits still to come. */
static void
s_drain_socket(evr_broker_t *b, zsock_t *sock, bool runners)
{
    int i = 0;
    while (i < S_TURN_MAX && (!runners || evr_bus_readable(sock)) && s_take(b, sock, runners))
        i++;
    if (runners)
        return;
    uint64_t until;
    while (i < S_TURN_MAX && (until = evr_queue_linger(b)) && s_wait(sock, until))
        while (i < S_TURN_MAX && s_take(b, sock, false))
            i++;
    evr_queue_turn_end(b);  /* one commit for the turn's submits, then their answers */
}

static void
s_zap_log(void *arg, const char *line)
{
    evr_broker_warn(arg, "%s", line);
}

/*  Once a second: forgets the client connections with nothing queued and
    says how many answers and publications were dropped over the limits. */
static void
s_sweep(evr_broker_t *b)
{
    uint64_t now = evr_mono_ns();
    if (now < b->next_sweep)
        return;
    b->next_sweep = now + 1000000000ull;
    size_t peers, subs;
    uint64_t answers = evr_flow_sweep(b->clients, &peers);
    uint64_t pubs = evr_flow_sweep(b->pub, &subs);
    if (answers)
        evr_broker_warn(b, "%llu answer%s dropped: client connections that do not read past "
                        "%u MiB queued (%zu connection%s holding %zu bytes)",
                        (unsigned long long) answers, answers == 1 ? "" : "s",
                        S_CLIENT_BYTES >> 20, peers, peers == 1 ? "" : "s",
                        evr_flow_queued(b->clients));
    if (pubs)
        evr_broker_warn(b, "%llu publication%s dropped: subscribers that do not read hold "
                        "%zu bytes (limit %u MiB)", (unsigned long long) pubs,
                        pubs == 1 ? "" : "s", evr_flow_queued(b->pub), S_PUB_BYTES >> 20);
}

void
evr_broker_reload(evr_broker_t *b)
{
    evr_broker_info(b, "reload asked (SIGHUP): reading the pipelines directory again");
    evr_pipelines_reload(b);
}

void
evr_broker_turn(evr_broker_t *b, int timeout_ms)
{
    zmq_pollitem_t items[6] = {
        { zsock_resolve(b->runners), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve(b->clients), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve(b->pub), 0, ZMQ_POLLIN, 0 },
        { evr_artstore_sock(b), 0, ZMQ_POLLIN, 0 },   /* sha256 sums read */
    };
    int n = 4;
    if (b->zap)
        items[n++] = (zmq_pollitem_t) { zsock_resolve(evr_zap_socket(b->zap)), 0, ZMQ_POLLIN, 0 };
    if (evr_pipelines_fd(b) >= 0)   /* the pipelines directory changed */
        items[n++] = (zmq_pollitem_t) { NULL, evr_pipelines_fd(b), ZMQ_POLLIN, 0 };
    uint64_t now = evr_mono_ns();
    long beat = b->next_beat > now ? (long) ((b->next_beat - now) / 1000000) : 0;
    int wait = evr_policy_due(b, beat < timeout_ms ? (int) beat : timeout_ms);
    zmq_poll(items, n, (int) evr_pipelines_wait_ms(b, wait));
    if (b->zap)
        evr_zap_handle(b->zap, s_zap_log, b);
    evr_artstore_turn(b);
    evr_pipelines_turn(b);      /* before the client requests: a fire is in this turn's commit */
    s_drain_socket(b, b->runners, true);
    s_drain_socket(b, b->clients, false);
    for (int i = 0; i < S_TURN_MAX && evr_bus_readable(b->pub); i++) {
        zframe_t *f = zframe_recv(b->pub);   /* subscriptions: nothing to do */
        zframe_destroy(&f);
    }
    evr_policy_due(b, 0);       /* a start_delay ended while polling */
    evr_queue_dispatch(b);
    evr_runners_beat(b);
    s_sweep(b);
    evr_retention_tick(b);
}
