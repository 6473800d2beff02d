/*  evr_daemon.c: the runner's bus client; see evr_daemon.h. */
#include "evr_daemon.h"

#include <stdarg.h>
#include <string.h>

#include "evr_bus.h"
#include "evr_codec.h"
#include "evr_curve.h"
#include "evr_watch.h"
#include "evr_log.h"
#include "evr_ship.h"
#include "evr_trigger.h"

#define S_WINDOW 4096               /* events sent and not acknowledged, at most */
#define S_BATCH_BYTES (1u << 20)    /* an events message stops growing here */
/*  Largest event an events message holds alone: the body's map, its key
    and the array header take 13 bytes of EVR_MSG_MAX_BYTES (64 with room
    to spare). */
#define S_EVENT_MAX (EVR_MSG_MAX_BYTES - 64)
/*  The pipeline and step name of a refused job.accepted whose dispatch
    did not say one this runner could read (schema/PROTOCOL.md,
    job.accepted). */
#define S_UNREAD "unreadable"

/*  CONNECTING: a fresh socket, hello not sent yet (with ZMQ_IMMEDIATE a
    send fails until the connection is up: it is tried every turn);
    HELLO_SENT: waiting for welcome; READY; BACKOFF: the broker answered
    an error, a new connection follows after a pause; FATAL: the broker
    refused this runner for good (an id clash). */
typedef enum { S_CONNECTING, S_HELLO_SENT, S_READY, S_BACKOFF, S_FATAL } s_state_t;

struct evr_daemon {
    evr_daemon_opts_t opts;
    evr_store_t *store;
    evr_engine_t *eng;
    uint64_t cleanup_until; /* evr_daemon_cleanup_waited's deadline (mono ns; 0: none) */
    zsock_t *sock;
    s_state_t state;
    uint64_t sent, acked;       /* runner seqs */
    uint64_t last_rx, hello_at, next_beat;   /* mono ns */
    uint64_t connect_at, retry_at;          /* mono ns */
    bool warned;                /* "not reachable" said since the last welcome */
    char fatal[EVR_ERR_MAX];
    bool curve;             /* tcp://: keys on every socket */
    evr_curve_keys_t keys;
    evr_watch_t *watch;         /* on the socket: why a handshake fails */
    int fd, watch_fd;           /* their ZMQ_FDs on the engine's loop; -1: none */
    evr_watch_seen_t said;      /* the last handshake failure logged */
    int64_t credit_sent;        /* -1: not yet */
    bool draining, stopping;
    uint32_t ndropped;          /* dispatches ignored before welcome */
    char once_job[EVR_ULID_LEN + 1];   /* opts.once: the job taken; "": none yet */
    evr_ship_t *ship;           /* artifacts to the broker; NULL: none */
    uint64_t read_err_at;       /* mono ns of the last "cannot read the log" said; 0: none */
};

/*  The daemon's log lines ("evrun-runner ID: ..."), by level: formatted
    only when the level passes the threshold (evr_log.h). */
#define s_error(d, ...) s_log(d, EVR_LOG_ERROR, __VA_ARGS__)
#define s_warn(d, ...) s_log(d, EVR_LOG_WARN, __VA_ARGS__)
#define s_info(d, ...) s_log(d, EVR_LOG_INFO, __VA_ARGS__)
#define s_log(d, level, ...)                                                                     \
    do {                                                                                         \
        if (evr_log_enabled(level))                                                              \
            s_logf(d, level, __VA_ARGS__);                                                       \
    } while (0)

static void s_logf(const evr_daemon_t *d, evr_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
s_logf(const evr_daemon_t *d, evr_log_level_t level, const char *fmt, ...)
{
    char who[96];
    snprintf(who, sizeof who, "evrun-runner %s", d->opts.runner_id);
    va_list ap;
    va_start(ap, fmt);
    evr_log_vwrite(level, who, fmt, ap);
    va_end(ap);
}

static uint64_t
s_ms(uint32_t ms)
{
    return (uint64_t) ms * 1000000ull;
}

/*  A ZMQ_FD is readable: the loop's turn ends, and the daemon's turn
    serves the socket (reading ZMQ_EVENTS after every turn, as ZMQ_FD
    signals only changes). */
static void
s_wake(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) loop;
    (void) fd;
    (void) events;
    (void) arg;
}

/*  The sockets' fds leave the loop (before the sockets go). */
static void
s_unwatch(evr_daemon_t *d)
{
    evr_loop_t *loop = evr_engine_loop(d->eng);
    if (d->fd >= 0)
        evr_loop_fd_remove(loop, d->fd);
    if (d->watch_fd >= 0)
        evr_loop_fd_remove(loop, d->watch_fd);
    d->fd = d->watch_fd = -1;
}

/*  A fresh connection, dropping whatever the old one had queued. */
static void
s_connect(evr_daemon_t *d)
{
    s_unwatch(d);
    evr_watch_destroy(&d->watch, d->sock);
    zsock_destroy(&d->sock);
    d->sock = zsock_new(ZMQ_DEALER);
    evr_bus_setup(d->sock);
    if (d->curve)     /* the keys read at start: never a socket without them */
        evr_curve_apply(&d->keys, d->sock);
    d->watch = evr_watch_new(d->sock);
    zsock_set_immediate(d->sock, 1);    /* no queueing towards a broker not connected */
    zsock_set_linger(d->sock, 1000);    /* the last events of an exit still go out */
    zsock_connect(d->sock, "%s", d->opts.endpoint);
    evr_loop_t *loop = evr_engine_loop(d->eng);
    d->fd = zsock_fd(d->sock);
    evr_loop_fd_add(loop, d->fd, EVR_LOOP_READ, s_wake, d);
    if (d->watch) {
        d->watch_fd = zsock_fd(evr_watch_socket(d->watch));
        evr_loop_fd_add(loop, d->watch_fd, EVR_LOOP_READ, s_wake, d);
    }
    d->state = S_CONNECTING;
    d->connect_at = evr_mono_ns();
    d->credit_sent = -1;
}

/*  Sends hello once the connection is up. */
static void
s_try_hello(evr_daemon_t *d)
{
    uint64_t last = 0;
    evr_err_t err;
    if (evr_store_last_seq(d->store, &last, &err)) {
        s_error(d, "reading the log's last seq: %s (hello postponed)", err.msg);
        return;     /* a wrong seq would make the broker requeue jobs we hold */
    }
    evr_msg_t m = { .type = EVR_MSG_HELLO, .runner = (char *) d->opts.runner_id,
                    .capacity = d->opts.capacity, .version = EVR_VERSION, .seq = last,
                    .ephemeral = d->opts.once, .draining = d->draining };
    for (const char *const *l = d->opts.labels; l && *l; l++)
        evr_strlist_push(&m.labels, *l);
    if (evr_bus_send(d->sock, NULL, &m, NULL) == EVR_OK) {
        d->state = S_HELLO_SENT;
        d->hello_at = evr_mono_ns();
    }
    evr_strlist_free(&m.labels);
}

/*  --once on the state directory of a single-use runner that was
    stopped before its job ended: that job (the newest unfinished one the
    store holds, recovered by the engine) is the one this runner takes,
    so it asks for no other (credit 0) and exits with its status. */
static void
s_once_recovered(evr_daemon_t *d)
{
    char(*ids)[EVR_ULID_LEN + 1] = NULL;
    size_t n = 0;
    evr_err_t err;
    if (evr_store_open_ids(d->store, &ids, &n, &err) == EVR_OK && n) {
        snprintf(d->once_job, sizeof d->once_job, "%s", ids[n - 1]);
        s_info(d, "--once: job %s of an earlier run on this state directory is not finished: "
               "it is this runner's one job (no other is taken)", d->once_job);
    }
    free(ids);
}

evr_rc_t
evr_daemon_new(const evr_daemon_opts_t *opts, evr_store_t *store, evr_engine_t *engine,
               evr_daemon_t **out, evr_err_t *err)
{
    *out = NULL;
    evr_rc_t rc = evr_bus_check_endpoint(opts->endpoint, err);
    if (rc)
        return rc;
    evr_daemon_t *d = evr_calloc(1, sizeof *d);
    d->opts = *opts;
    if (!d->opts.heartbeat_ms)
        d->opts.heartbeat_ms = 1000;
    if (!d->opts.lease_ms)
        d->opts.lease_ms = 5000;
    d->store = store;
    d->eng = engine;
    d->fd = d->watch_fd = -1;
    evr_bus_init();   /* czmq set up, its signal handlers off (evr_bus.h) */
    if (evr_curve_needed(opts->endpoint)) {
        /* the keys are read (and this runner's pair made) once, here */
        bool made = false;
        rc = evr_curve_load(opts->curve_cert, opts->broker_key, &d->keys, &made, err);
        if (rc) {
            free(d);
            return rc;
        }
        d->curve = true;
        if (made)
            /* the broker's own state directory's pair is admitted as it is */
            s_info(d, "made the key pair %s: a broker with another state directory admits "
                   "this runner once %s is copied into its curve/runners/", opts->curve_cert,
                   opts->curve_cert);
    }
    if (opts->ship_dir)
        d->ship = evr_ship_new(opts->ship_dir, opts->artifacts_dir);
    if (opts->once)
        s_once_recovered(d);
    s_connect(d);
    char labels[2048] = "";   /* all of them, comma-separated as the setting and `runners` */
    size_t at = 0;
    for (size_t i = 0; opts->labels && opts->labels[i] && at < sizeof labels; i++)
        at += (size_t) snprintf(labels + at, sizeof labels - at, "%s%s", i ? "," : "",
                                opts->labels[i]);
    s_info(d, "connecting to the broker at %s (labels: %s, capacity %u)", opts->endpoint,
           labels[0] ? labels : "none", opts->capacity);
    *out = d;
    return EVR_OK;
}

void
evr_daemon_destroy(evr_daemon_t **self_p)
{
    evr_daemon_t *d = *self_p;
    if (!d)
        return;
    s_unwatch(d);
    evr_watch_destroy(&d->watch, d->sock);
    zsock_destroy(&d->sock);
    evr_ship_destroy(&d->ship);
    free(d);
    *self_p = NULL;
}

void
evr_daemon_stop_taking(evr_daemon_t *self)
{
    self->stopping = true;
}

/*  Why this runner leaves, for the broker's log (goodbye's reason). */
static const char *
s_bye_reason(const evr_daemon_t *d, bool signalled)
{
    const char *msg;
    if (signalled)
        return "stopped by a signal";
    if (evr_engine_failure(d->eng, &msg))
        return "its event store failed";
    if (d->draining)
        return "drained";
    if (d->opts.once)
        return d->once_job[0] ? "--once: its job ended" : "--once: no job came (--once-wait)";
    return "exiting";
}

void
evr_daemon_goodbye(evr_daemon_t *self, bool signalled)
{
    self->stopping = true;
    uint64_t last = 0;
    evr_err_t err;
    if (self->state != S_READY || !self->sock)
        return;     /* not welcomed: the broker shows it lost (lease) */
    if (evr_store_last_seq(self->store, &last, &err)) {
        s_warn(self, "no goodbye to the broker: reading the log's last seq: %s", err.msg);
        return;     /* a wrong seq could requeue a job this log accepted */
    }
    const char *reason = s_bye_reason(self, signalled);
    evr_msg_t m = { .type = EVR_MSG_GOODBYE, .seq = last, .reason = (char *) reason };
    if (evr_bus_send(self->sock, NULL, &m, &err))
        s_warn(self, "goodbye not sent to the broker (%s): it shows this runner lost after "
               "its lease", err.msg);
    else
        s_info(self, "said goodbye to the broker (%s; the log at seq %llu, the broker holds "
               "%llu)", reason, (unsigned long long) last, (unsigned long long) self->acked);
}

bool
evr_daemon_synced(evr_daemon_t *self)
{
    uint64_t last = 0;
    evr_err_t err;
    return self->state == S_READY && evr_store_last_seq(self->store, &last, &err) == EVR_OK
        && self->acked >= last;
}

uint32_t
evr_daemon_shipping(evr_daemon_t *self, bool look)
{
    return self->ship ? evr_ship_pending(self->ship, look) : 0;
}

const char *
evr_daemon_fatal(const evr_daemon_t *self)
{
    return self->state == S_FATAL ? self->fatal : NULL;
}

const char *
evr_daemon_once_job(const evr_daemon_t *self)
{
    return self->once_job[0] ? self->once_job : NULL;
}

bool
evr_daemon_drained(const evr_daemon_t *self)
{
    return self->draining && self->opts.exit_when_drained && evr_engine_active(self->eng) == 0;
}

bool
evr_daemon_cleanup_waited(evr_daemon_t *self, int stop_timeout)
{
    uint32_t n = evr_engine_ending(self->eng);
    if (n == 0)
        return true;
    uint64_t now = evr_mono_ns();
    if (!self->cleanup_until) {
        self->cleanup_until = now + (uint64_t) stop_timeout * 1000000000ull;
        s_info(self, "waiting up to %d s (--stop-timeout) for the cleanup of %u ended job%s",
               stop_timeout, n, n == 1 ? "" : "s");
    }
    if (now <= self->cleanup_until)
        return false;
    s_warn(self, "the cleanup of %u ended job%s is not over after %d s (--stop-timeout): "
           "exiting; the runner's next start removes what is left", n, n == 1 ? "" : "s",
           stop_timeout);
    return true;
}

/* ------------------------------------------------------------- inbound */

/*  Whether a dispatch of job is one to take: the broker welcomed this
    runner, the job is not held already (a repeated dispatch), the runner
    is not stopping, a --once runner has taken none yet (then this is its
    one). */
static bool
s_take(evr_daemon_t *d, const char *job)
{
    if (d->state != S_READY) {
        d->ndropped++;  /* sent before the broker saw our hello: it queues it again */
        return false;
    }
    evr_job_t known = { 0 };
    evr_err_t err;
    bool have = evr_store_get_job(d->store, job, &known, &err) == EVR_OK;
    evr_rec_free(&evr_job_type, &known);
    if (have)
        return false;   /* a repeated dispatch: the job is ours already */
    if (d->stopping) {
        /* sent before the broker saw credit 0: not in the log, so the
           broker queues it again at this runner's goodbye */
        s_info(d, "job %s not taken: this runner is stopping (the broker gets it back at its "
               "goodbye)", job);
        return false;
    }
    if (d->opts.once && d->once_job[0]) {
        /* the broker sent it before it saw credit 0: it comes back to the
           queue at this runner's goodbye */
        s_warn(d, "job %s not taken: this single-use runner took job %s already", job,
               d->once_job);
        return false;
    }
    if (d->opts.once)
        snprintf(d->once_job, sizeof d->once_job, "%s", job);
    return true;
}

/*  Records the job as refused here: job.accepted with spec (a stub, or
    the spec itself) and job.finished failed with why.  The broker takes
    the job off its queue when it stores the job.accepted. */
static void
s_refuse(evr_daemon_t *d, const char *job, const evr_spec_t *spec, const evr_strmap_t *args,
         const char *why)
{
    s_warn(d, "job %s cannot run here: %s", job, why);
    evr_err_t err;
    if (evr_engine_reject(d->eng, job, spec, args, why, &err))
        s_error(d, "job %s: recording the refusal failed: %s", job, err.msg);
}

static void
s_dispatch(evr_daemon_t *d, const evr_msg_t *m)
{
    /* the broker took a slot for it: the credit is told again whatever
       comes of it (a job refused here changes no count, and the broker's
       slot would stay taken) */
    d->credit_sent = -1;
    if (!s_take(d, m->job))
        return;
    evr_err_t err;
    if (evr_engine_active(d->eng) >= d->opts.capacity)
        s_warn(d, "job %s arrived with no free slot (capacity %u): taking it anyway", m->job,
               d->opts.capacity);
    if (evr_spec_check_size(m->spec, &err)) {
        /* Its job.accepted might not fit in an `events` message: the job
           fails here, recorded with the spec cut to a stub that does. */
        evr_spec_t *stub = evr_spec_stub(m->spec);
        s_refuse(d, m->job, stub, &m->args, err.msg);
        evr_spec_destroy(&stub);
        return;
    }
    s_info(d, "job %s (%s): accepted", m->job, m->spec->pipeline);
    const evr_bin_t *tars[2] = { &m->ci_source_tar, &m->source_tar };
    for (int i = 0; i < 2; i++)   /* the submitter's copy: directories, kept for preparation */
        if (tars[i]->len && evr_engine_copy_save(d->eng, m->job, i ? "source" : "ci_source",
                                                 tars[i]->data, tars[i]->len, &err))
            s_warn(d, "job %s: %s", m->job, err.msg);
    if (evr_engine_submit_child(d->eng, m->job, m->spec, &m->args, m->parent_job, m->parent_step,
                                &err))
        s_refuse(d, m->job, m->spec, &m->args, err.msg);
}

/*  A dispatch this runner cannot decode (why: the decoder's error), such
    as a spec an older broker queued that this version's checks refuse:
    without an answer the job would stay dispatched until this runner
    leaves.  When its job id reads, it is refused as an oversized spec is,
    job.accepted holding the spec's stub (evr_spec_stub) when the spec
    alone decodes, else a stub of its pipeline name (S_UNREAD when
    unreadable); one step S_UNREAD, run "", when it names none; no args. */
/*  Whether a stub of a spec the whole check refused still has names the
    check takes: a pipeline name, step names of the step form, none twice
    (each goes into the runner's log and the broker's store). */
static bool
s_stub_names_ok(const evr_spec_t *stub)
{
    if (!stub->pipeline || !evr_spec_name_ok(stub->pipeline))
        return false;
    for (uint32_t i = 0; i < stub->steps.n; i++) {
        const char *a = evr_spec_step(stub, i)->name;
        if (!a || !evr_spec_step_name_ok(a))
            return false;
        for (uint32_t k = 0; k < i; k++)
            if (!strcmp(a, evr_spec_step(stub, k)->name))
                return false;
    }
    return true;
}

static void
s_dispatch_unread(evr_daemon_t *d, const evr_msg_peek_t *pk, const char *why)
{
    d->credit_sent = -1;   /* as s_dispatch */
    if (!pk->job[0]) {
        s_warn(d, "a dispatch from the broker this runner cannot read, its job unknown: ignored: "
               "%s", why);
        return;
    }
    if (!s_take(d, pk->job))
        return;
    char reason[EVR_ERR_MAX + 128];     /* room for all of why */
    snprintf(reason, sizeof reason, "this runner (evrun %s) cannot read the job's dispatch: %s",
             EVR_VERSION, why);
    evr_utf8_clean(reason);     /* why may quote the broker's bytes, cut anywhere */
    evr_spec_t *stub = pk->spec ? evr_spec_stub(pk->spec) : NULL;
    if (stub && !s_stub_names_ok(stub))
        evr_spec_destroy(&stub);    /* names the whole check never passed: not recorded */
    if (!stub)
        stub = evr_spec_new();
    if (!stub->pipeline)
        stub->pipeline = evr_strdup(pk->pipeline[0] ? pk->pipeline : S_UNREAD);
    if (!stub->steps.n) {   /* a job holds one step at least (store/evr_job.c) */
        free(stub->steps.v);
        stub->steps.v = evr_calloc(1, sizeof(evr_step_t));
        stub->steps.n = 1;
        evr_spec_step(stub, 0)->name = evr_strdup(S_UNREAD);
        evr_spec_step(stub, 0)->run = evr_strdup("");
    }
    evr_strmap_t none = { 0 };
    s_refuse(d, pk->job, stub, &none, reason);
    evr_spec_destroy(&stub);
}

static void
s_control(evr_daemon_t *d, const evr_msg_t *m)
{
    evr_err_t err;
    evr_rc_t rc = EVR_OK;
    const char *c = m->command;
    if (!strcmp(c, "drain")) {
        d->draining = true;
        s_info(d, "draining: no new jobs; %u running", evr_engine_active(d->eng));
        return;
    }
    if (!m->job) {
        s_warn(d, "control %s without a job: ignored", c);
        return;
    }
    if (!strcmp(c, "cancel"))
        rc = evr_engine_cancel(d->eng, m->job, m->reason ? m->reason : "cancelled by a user",
                               m->force, &err);
    else if (!strcmp(c, "pause"))
        rc = evr_engine_pause(d->eng, m->job, &err);
    else if (!strcmp(c, "resume"))
        rc = evr_engine_resume(d->eng, m->job, &err);
    if (rc)
        s_warn(d, "%s %s: %s", c, m->job, err.msg);
    else
        s_info(d, "%s%s %s", c, m->force ? " (force)" : "", m->job);
}

/*  A welcome whose seq is past this log's last: the broker holds events
    of this runner id that this log never wrote (another log under the
    id, the case the broker itself refuses with conflict, see
    schema/PROTOCOL.md Decisions).  Taken, it would have the runner send
    nothing below that seq, and its retention free events never sent:
    the runner stops (FATAL), as on a conflict.  True when so. */
static bool
s_welcome_past_log(evr_daemon_t *d, uint64_t seq)
{
    uint64_t last = 0;
    evr_err_t err;
    if (evr_store_last_seq(d->store, &last, &err) || seq <= last)
        return false;
    snprintf(d->fatal, sizeof d->fatal, "the broker says it holds this runner's log up to "
             "seq %llu, but the log ends at seq %llu: another log under id %s? (a new state "
             "directory under an old id takes a new --id)", (unsigned long long) seq,
             (unsigned long long) last, d->opts.runner_id);
    d->state = S_FATAL;
    return true;
}

static void
s_inbound(evr_daemon_t *d)
{
    for (int i = 0; i < 256 && d->sock && evr_bus_readable(d->sock); i++) {
        evr_msg_t m = { 0 };
        evr_msg_peek_t pk = { 0 };
        const char *code;
        evr_err_t err;
        if (evr_bus_recv_peek(d->sock, &m, &pk, &code, &err)) {
            if (pk.type == EVR_MSG_DISPATCH)
                s_dispatch_unread(d, &pk, err.msg);
            else
                s_warn(d, "a malformed message from the broker: %s", err.msg);
            evr_msg_peek_clear(&pk);
            continue;
        }
        d->last_rx = evr_mono_ns();
        switch (m.type) {
        case EVR_MSG_WELCOME:
            if (s_welcome_past_log(d, m.seq))
                break;
            d->state = S_READY;
            d->warned = false;
            d->said = EVR_WATCH_NONE;
            d->sent = d->acked = m.seq;
            s_info(d, "welcomed by the broker: it holds this log up to seq %llu",
                   (unsigned long long) m.seq);
            if (d->ship)
                evr_ship_reset(d->ship);
            break;
        case EVR_MSG_ACK:
            if (m.seq > d->sent)    /* taken, it would stop the stream and free the log */
                s_warn(d, "the broker acknowledges seq %llu, past the last sent, %llu: "
                       "ignored", (unsigned long long) m.seq, (unsigned long long) d->sent);
            else if (m.seq > d->acked)
                d->acked = m.seq;
            break;
        case EVR_MSG_DISPATCH: s_dispatch(d, &m); break;
        case EVR_MSG_CONTROL: s_control(d, &m); break;
        case EVR_MSG_TRIGGERED:
            evr_engine_triggered(d->eng, m.job, m.existing, m.code, m.message);
            break;
        case EVR_MSG_QUERIED: evr_engine_queried(d->eng, &m); break;
        case EVR_MSG_HEARTBEAT: break;
        case EVR_MSG_ARTIFACT_ACK:
            if (d->ship)
                evr_ship_on_ack(d->ship, &m);
            if (m.offset && !m.done && !m.reason)   /* the broker holds part of a file */
                evr_engine_test_pause("ship");
            break;
        case EVR_MSG_ERROR:
            if (d->state == S_HELLO_SENT && !strcmp(m.code, EVR_CODE_BAD_REQUEST)
                && m.message && strstr(m.message, "is not a client request")) {
                /* the broker's client socket: hello again would be refused again */
                snprintf(d->fatal, sizeof d->fatal, "--broker is the broker's client socket, "
                         "not its runner socket: %s", m.message);
                d->state = S_FATAL;
                break;
            }
            if (d->state == S_HELLO_SENT && !strcmp(m.code, EVR_CODE_CONFLICT)) {
                snprintf(d->fatal, sizeof d->fatal, "the broker refuses this runner: %s",
                         m.message);
                d->state = S_FATAL;
                break;
            }
            s_warn(d, "the broker says %s: %s; saying hello again in a second", m.code,
                   m.message);
            d->state = S_BACKOFF;
            d->retry_at = evr_mono_ns() + 1000000000ull;
            break;
        default:
            s_warn(d, "unexpected %s from the broker: ignored", evr_msgtype_name(m.type));
            break;
        }
        evr_msg_clear(&m);
    }
}

/* ------------------------------------------------------------ outbound */

typedef struct {
    evr_daemon_t *d;
    evr_msg_t msg;
    size_t bytes;
    uint32_t cap;
    uint64_t last;
    evr_strlist_t cut;      /* jobs whose event went out as a stand-in */
    char why[EVR_ERR_MAX];  /* the last stand-in's reason */
} s_batch_t;

/*  An event too large for an `events` message even alone (a job.accepted
    written by a version that did not bound the spec) would stop the
    stream for good.  It goes out as a stand-in with the same envelope and
    its spec cut to a stub (evr_spec_stub), its args and output dropped
    if that is not enough; the log keeps the original.  Said loudly, and
    the job, if still running here, is cancelled (s_cancel_cut): what the
    broker holds of it is not its spec. */
static void
s_stand_in(s_batch_t *b, evr_event_t *dst, size_t len)
{
    evr_daemon_t *d = b->d;
    if (dst->data.spec) {
        evr_spec_t *stub = evr_spec_stub(dst->data.spec);
        evr_spec_destroy(&dst->data.spec);
        dst->data.spec = stub;
    }
    if (evr_codec_size(&evr_event_type, dst) > S_EVENT_MAX) {
        evr_strmap_free(&dst->data.args);
        free(dst->data.bytes.data);
        dst->data.bytes = (evr_bin_t) { 0 };
    }
    const char *kind = evr_evtype_name(evr_event_kind(dst));
    snprintf(b->why, sizeof b->why, "event %llu (%s) is %zu bytes, over the %u an events "
             "message holds: the broker gets it cut down", (unsigned long long) dst->seq,
             kind ? kind : "?", len, S_EVENT_MAX);
    s_warn(d, "job %s: %s", dst->job ? dst->job : "-", b->why);
    if (dst->job)
        evr_strlist_push(&b->cut, dst->job);
}

/*  Cancels the jobs s_stand_in cut (after the log's read transaction). */
static void
s_cancel_cut(evr_daemon_t *d, s_batch_t *b)
{
    for (uint32_t i = 0; i < b->cut.n; i++) {
        evr_err_t err;
        if (evr_engine_cancel(d->eng, b->cut.v[i], b->why, false, &err) == EVR_OK)
            s_warn(d, "job %s cancelled: %s", b->cut.v[i], b->why);
    }
    evr_strlist_free(&b->cut);
}

static int
s_collect(const evr_event_t *ev, void *arg)
{
    s_batch_t *b = arg;
    size_t len = evr_codec_size(&evr_event_type, ev);
    if (b->msg.events.n && b->bytes + len > S_BATCH_BYTES)
        return 1;
    evr_event_t *dst = (evr_event_t *) b->msg.events.v + b->msg.events.n++;
    evr_rec_copy(&evr_event_type, dst, ev);
    if (len > S_EVENT_MAX) {
        s_stand_in(b, dst, len);
        len = evr_codec_size(&evr_event_type, dst);
    }
    b->bytes += len + 16;
    b->last = ev->seq;
    return b->msg.events.n >= b->cap;
}

/*  Sends the log above `sent`, batch by batch, within the window. */
/*  The log cannot be read to send its events (a store error): said at
    most every S_READ_ERR_EVERY, as it is tried again every turn. */
#define S_READ_ERR_EVERY (10ull * 1000000000ull)
static void
s_read_error(evr_daemon_t *d, const char *msg)
{
    uint64_t now = evr_mono_ns();
    if (d->read_err_at && now - d->read_err_at < S_READ_ERR_EVERY)
        return;
    d->read_err_at = now;
    s_error(d, "cannot read the event log to send its events to the broker: %s (tried again "
            "every turn; the jobs' events wait in the log)", msg);
}

static void
s_send_events(evr_daemon_t *d)
{
    uint64_t last = 0;
    evr_err_t err;
    if (evr_store_last_seq(d->store, &last, &err)) {
        s_read_error(d, err.msg);
        return;
    }
    while (d->sent < last && d->sent - d->acked < S_WINDOW) {
        s_batch_t b = { .d = d, .msg = { .type = EVR_MSG_EVENTS }, .cap = EVR_MSG_MAX_EVENTS };
        uint64_t room = S_WINDOW - (d->sent - d->acked);
        if (room < b.cap)
            b.cap = (uint32_t) room;
        b.msg.events.v = evr_calloc(b.cap, sizeof(evr_event_t));
        if (evr_store_scan(d->store, d->sent + 1, last, s_collect, &b, &err))
            s_read_error(d, err.msg);
        s_cancel_cut(d, &b);
        evr_rc_t rc = b.msg.events.n ? evr_bus_send(d->sock, NULL, &b.msg, &err) : EVR_ERR_IO;
        bool ok = rc == EVR_OK;
        if (ok)
            d->sent = b.last;
        else if (rc == EVR_ERR_LIMIT)   /* a bug: the batch and stand-ins are bounded */
            s_error(d, "events %llu..%llu not sent: %s", (unsigned long long) d->sent + 1,
                    (unsigned long long) b.last, err.msg);
        evr_msg_clear(&b.msg);
        if (!ok)
            break;  /* the broker is not reachable now: after the next welcome */
    }
}

/*  Keeps the connection: hello until welcomed, a new connection when the
    broker stays silent past the lease.  True when READY. */
static bool
s_keep_connected(evr_daemon_t *d)
{
    uint64_t now = evr_mono_ns();
    uint64_t lease = s_ms(d->opts.lease_ms);
    switch (d->state) {
    case S_FATAL: return false;
    case S_BACKOFF:
        if (now >= d->retry_at)
            s_connect(d);
        return false;
    case S_CONNECTING:
        s_try_hello(d);
        if (d->state == S_CONNECTING && now - d->connect_at > lease) {
            if (!d->warned)
                s_warn(d, "cannot reach the broker at %s; retrying (jobs go on; their events "
                       "wait in the log)", d->opts.endpoint);
            d->warned = true;
            s_connect(d);
        }
        return false;
    case S_HELLO_SENT:
        if (now - d->hello_at > lease)
            s_connect(d);
        return false;
    case S_READY:
        if (now - d->last_rx > lease) {
            s_warn(d, "the broker has been silent for %u ms: reconnecting (jobs go on; their "
                   "events wait in the log)", d->opts.lease_ms);
            d->warned = true;
            s_connect(d);
            return false;
        }
        return true;
    }
    return false;
}

static void
s_outbound(evr_daemon_t *d)
{
    uint64_t now = evr_mono_ns();
    if (!s_keep_connected(d))
        return;
    s_send_events(d);
    evr_msg_t piece = { 0 };
    if (d->ship && evr_ship_next(d->ship, now, &piece)) {
        if (evr_bus_send(d->sock, NULL, &piece, NULL) != EVR_OK)
            evr_ship_reset(d->ship);   /* not sent: asked again next turn */
        evr_msg_clear(&piece);
    }
    uint32_t active = evr_engine_active(d->eng);
    int64_t credit = d->draining || d->stopping || d->once_job[0] || active >= d->opts.capacity
                         ? 0 : (int64_t) (d->opts.capacity - active);
    if (credit != d->credit_sent) {
        evr_msg_t m = { .type = EVR_MSG_CREDIT, .credit = (uint32_t) credit };
        if (evr_bus_send(d->sock, NULL, &m, NULL) == EVR_OK)
            d->credit_sent = credit;
    }
    if (now >= d->next_beat) {
        evr_msg_t m = { .type = EVR_MSG_HEARTBEAT, .running = active };
        evr_bus_send(d->sock, NULL, &m, NULL);
        d->next_beat = now + s_ms(d->opts.heartbeat_ms);
    }
}

/*  Why handshakes fail, said once per kind; read in every state, so the
    monitor's queue never fills.  Nothing listening is said by
    s_keep_connected, after a lease. */
static void
s_watch(evr_daemon_t *d)
{
    evr_watch_seen_t seen = evr_watch_read(d->watch);
    if (seen == EVR_WATCH_FAILED && !d->curve)
        seen = EVR_WATCH_DROPPED;   /* without CURVE: another kind of socket */
    if (seen < EVR_WATCH_DROPPED || seen == d->said)
        return;
    d->said = seen;
    d->warned = true;
    const char *ep = d->opts.endpoint;
    if (seen == EVR_WATCH_REFUSED)
        s_warn(d, "the broker at %s refuses this runner's key: admit it by copying %s into the "
               "broker's curve/runners/ (if it is there already, %s is not the broker's runner "
               "endpoint but its client one; retrying meanwhile)", ep, d->opts.curve_cert, ep);
    else if (seen == EVR_WATCH_MECHANISM && d->curve)
        s_warn(d, "the peer at %s speaks no CURVE, as every tcp:// endpoint of an evrun broker "
               "does: it is no broker's endpoint (a plain ZeroMQ socket, or a forward to a "
               "broker's ipc:// socket?): give --broker the broker's own tcp:// runner "
               "endpoint (retrying meanwhile)", ep);
    else if (seen == EVR_WATCH_MECHANISM)
        s_warn(d, "the peer at %s wants CURVE, which no ipc:// endpoint of an evrun broker "
               "carries: it is a tcp:// endpoint reached through a forward: give --broker the "
               "broker's tcp:// runner endpoint and --broker-key a copy of its "
               "curve/broker.cert (retrying meanwhile)", ep);
    else if (seen == EVR_WATCH_DROPPED)
        s_warn(d, "the socket at %s closed the connection during its handshake: it is not the "
               "broker's runner endpoint (its events one?); a local broker's is "
               "ipc://STATE_DIR/bus/runners (retrying meanwhile)", ep);
    else   /* a wrong server key and another socket type look alike here */
        s_warn(d, "the CURVE handshake with the broker at %s failed: is broker_key (%s) that "
               "broker's own curve/broker.cert, and %s its runner endpoint (not its events "
               "one)? (retrying meanwhile)", ep, d->opts.broker_key, ep);
}

void
evr_daemon_turn(evr_daemon_t *self, int timeout_ms)
{
    if (self->watch)
        s_watch(self);
    if (!self->last_rx)
        self->last_rx = evr_mono_ns();
    s_outbound(self);
    s_inbound(self);    /* ends with the socket's edge re-armed (ZMQ_EVENTS read) */
    int hb = (int) self->opts.heartbeat_ms;
    if (self->state == S_CONNECTING)
        hb = 10;    /* the connection's progress does not always wake the fd */
    evr_engine_turn(self->eng, timeout_ms < hb ? timeout_ms : hb);
    evr_engine_forget_finished(self->eng);
    s_inbound(self);
    s_outbound(self);
}

uint64_t
evr_daemon_acked(const evr_daemon_t *self)
{
    return self->acked;
}

/*  A step's trigger (evr_trigger.h) on the runner session; lost when the
    session is not up: the engine sends it again while it is unanswered. */
static void
s_send_trigger(void *arg, const char *job, const char *pipeline, const evr_strmap_t *args,
               const char *parent_job, const char *parent_step, const evr_trigger_file_t *file)
{
    evr_daemon_t *d = arg;
    evr_msg_t m = { .type = EVR_MSG_TRIGGER, .job = (char *) job, .pipeline = (char *) pipeline,
                    .args = *args, .parent_job = (char *) parent_job,
                    .parent_step = (char *) parent_step,
                    .spec = file ? (evr_spec_t *) file->spec : NULL,
                    .file = file ? (char *) file->path : NULL };
    evr_err_t err;
    if (d->state != S_READY || !d->sock)
        s_info(d, "trigger of job %s: the broker is not connected: sent again later", job);
    else if (evr_bus_send(d->sock, NULL, &m, &err))
        s_warn(d, "trigger of job %s not sent (%s): sent again later", job, err.msg);
}

/*  A step's query (evrun-job result, running); lost as a trigger is. */
static void
s_send_query(void *arg, uint64_t seq, const char *job, const char *pipeline)
{
    evr_daemon_t *d = arg;
    evr_msg_t m = { .type = EVR_MSG_QUERY, .seq = seq, .job = (char *) job,
                    .pipeline = (char *) pipeline };
    if (d->state == S_READY && d->sock)
        evr_bus_send(d->sock, NULL, &m, NULL);
}

void
evr_daemon_take_triggers(evr_daemon_t *self)
{
    evr_engine_set_trigger(self->eng, s_send_trigger, s_send_query, self);
}
