/*  evr_gw_bus.c: the gateway's connection to the broker, kept by a
    thread of its own, the watch.

    The gateway may start before its broker (systemd, compose, or by hand
    in any order), and a broker may stop and come back, at the same
    endpoint or another: a local one under STATE/bus where the default
    tcp://127.0.0.1:7700 was chosen, or the reverse.  So the watch chooses
    the endpoint again at each attempt as evrun-cli chooses it
    (evr_client_endpoints: a local broker's ipc:// sockets when one runs
    under the state directory, else the tcp:// defaults; what the settings
    give stays), between two settings made at start (gw->bus_cfg).

    While no broker answers, the watch tries again after S_RETRY_MIN,
    doubling to S_RETRY_MAX, and requests get 503 at once, with
    Retry-After and the reason (which names what to start); HTTP serving
    never waits on it.  A request that comes while the watch's attempt
    runs with no failure known (the gateway's start, a call merely cut
    short) waits for that attempt.  Once a broker answers (a line in the
    log) its connection is gw->client, shared by every request under
    gw->mu, and the watch looks at it twice a second: a call that fails
    (evr_gw_bus_lost), or the connection down for a second (the broker
    stopped: requests then get 503 at once instead of each waiting
    timeout_ms), has it try again, choosing the endpoint again.  A
    request does not wait for the watch to see a dropped connection: it
    looks before sending (down for S_LINK_NS, or by its deadline: lost),
    and a call waiting for its answer ends once the connection drops
    (evr_client_call), so no request holds gw->mu for timeout_ms on a
    stopped broker.
    Event streams (live logs, the metrics thread) subscribe with
    evr_gw_bus_cfg and subscribe again when it changes.
*/
#include "evr_gw.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "evr_bus.h"
#include "evr_log.h"

#define S_RETRY_MIN 250000000ull    /* ns after a first failure */
#define S_RETRY_MAX 4000000000ull   /* ns between attempts at most */
#define S_ATTEMPT_NS 4000000000ull  /* an attempt takes at most min(timeout_ms, 3 s) */
#define S_SLICE_NS 100000000ull     /* a request waiting for the attempt looks at stopping */
#define S_CHECK_NS 500000000ull     /* the connection is looked at this often... */
#define S_DROPPED_NS 1000000000ull  /* ...and lost once down this long */
#define S_LINK_NS 500000000ull      /* a request finding it down waits this long at most */

typedef struct {
    uint64_t backoff;       /* ns: the pause after the next failure */
    bool found;             /* a broker answered once: "serving requests again" */
} s_tries_t;

void
evr_gw_bus_cfg_make(evr_gw_t *gw, const evr_config_t *cfg)
{
    for (int i = 0; i < 2; i++) {
        gw->bus_cfg[i] = evr_config_dup(cfg);
        evr_client_endpoints_as(gw->bus_cfg[i], i == 1);
    }
    const char *state = evr_config_get(cfg, "state_dir");
    gw->bus_local = state && evr_config_local_up(state);   /* as evr_client_endpoints */
}

static const evr_config_t *
s_cfg(const evr_gw_t *gw, int local)
{
    return gw->bus_cfg[local] ? gw->bus_cfg[local] : gw->cfg;
}

const evr_config_t *
evr_gw_bus_cfg(evr_gw_t *gw)
{
    return s_cfg(gw, __atomic_load_n(&gw->bus_local, __ATOMIC_ACQUIRE));
}

/*  Waits on gw->bus_cv (gw->mu held) until mono ns until at most. */
static void
s_wait_until(evr_gw_t *gw, uint64_t until)
{
    struct timespec ts = { .tv_sec = (time_t) (until / 1000000000u),
                           .tv_nsec = (long) (until % 1000000000u) };
    pthread_cond_timedwait(&gw->bus_cv, &gw->mu, &ts);
}

/*  One attempt (gw->mu held, let go meanwhile): the endpoint chosen now;
    the client and the state set after, the waiting requests woken. */
static void
s_attempt(evr_gw_t *gw, s_tries_t *t)
{
    int local = 0;
    if (gw->bus_cfg[1]) {
        const char *state = evr_config_get(gw->bus_cfg[1], "state_dir");
        local = state && evr_config_local_up(state);
    }
    const evr_config_t *cfg = s_cfg(gw, local);
    gw->bus_again = false;
    pthread_mutex_unlock(&gw->mu);
    evr_client_t *c = NULL;
    evr_err_t err;
    evr_rc_t rc = evr_client_new_within(cfg, 3000, &c, &err);
    pthread_mutex_lock(&gw->mu);
    if (!rc) {
        evr_client_destroy(&gw->client);    /* none: only the watch makes it */
        gw->client = c;
        __atomic_store_n(&gw->bus_local, local, __ATOMIC_RELEASE);
        if (!t->found || gw->bus_down)  /* not after a call merely cut short */
            evr_log_info("gateway", "the broker answers at %s%s", evr_client_endpoint(c),
                         t->found ? ": serving requests again" : "");
        t->found = true;
        gw->bus_down = false;
        t->backoff = S_RETRY_MIN;
    }
    else {
        if (!gw->bus_down)
            evr_log_warn("gateway", "no broker answers: %s (trying again every %llu s at "
                         "most; requests get 503 meanwhile)", err.msg,
                         (unsigned long long) (S_RETRY_MAX / 1000000000u));
        snprintf(gw->down_msg, sizeof gw->down_msg, "%s", err.msg);
        gw->bus_down = true;
        gw->bus_retry_at = evr_mono_ns() + t->backoff;
        t->backoff = t->backoff * 2 < S_RETRY_MAX ? t->backoff * 2 : S_RETRY_MAX;
    }
    pthread_cond_broadcast(&gw->bus_cv);
}

/*  With gw->client (gw->mu held, so no call runs): its connection
    dropped S_DROPPED_NS ago at least (*since: when it was first seen
    down, 0 while up) is lost, so that requests get 503 at once instead
    of each waiting timeout_ms, and the endpoint is chosen again. */
static void
s_check(evr_gw_t *gw, uint64_t *since)
{
    uint64_t now = evr_mono_ns();
    if (evr_client_connected(gw->client))
        *since = 0;
    else if (!*since)
        *since = now;
    else if (now - *since >= S_DROPPED_NS) {
        evr_err_t err;
        evr_err_set(&err, EVR_ERR_IO, "the connection to the broker at %s dropped: is "
                    "evrun-broker running? (try: evrun-cli up)", evr_client_endpoint(gw->client));
        evr_gw_bus_lost(gw, &err, true);
        *since = 0;
    }
}

static void *
s_watch(void *arg)
{
    evr_gw_t *gw = arg;
    s_tries_t t = { S_RETRY_MIN, false };
    uint64_t dropped = 0;
    pthread_mutex_lock(&gw->mu);
    while (!gw->stopping) {
        uint64_t now = evr_mono_ns();
        if (gw->client) {   /* evr_gw_bus_lost wakes it */
            s_wait_until(gw, now + S_CHECK_NS);
            if (gw->client && !gw->stopping)
                s_check(gw, &dropped);
        }
        else if (gw->bus_down && !gw->bus_again && now < gw->bus_retry_at)
            s_wait_until(gw, gw->bus_retry_at);
        else
            s_attempt(gw, &t);
    }
    pthread_cond_broadcast(&gw->bus_cv);
    pthread_mutex_unlock(&gw->mu);
    return NULL;
}

evr_rc_t
evr_gw_bus_start(evr_gw_t *gw, evr_err_t *err)
{
    /* czmq's globals, once, before any thread makes a socket: zsys_init
       from two threads at once (the watch's first client, the metrics
       thread's SUB) trips its assertions */
    evr_bus_init();   /* czmq set up, its signal handlers off (evr_bus.h) */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);    /* evr_mono_ns's */
    pthread_cond_init(&gw->bus_cv, &ca);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&gw->bus_thread, NULL, s_watch, gw);
    gw->bus_on = !e;
    if (e) {
        pthread_cond_destroy(&gw->bus_cv);
        return evr_err_set(err, EVR_ERR_IO, "cannot start the thread that connects to the "
                           "broker: %s", strerror(e));
    }
    return EVR_OK;
}

/*  Called once no request runs (after MHD_stop_daemon): the cv is
    no one's then. */
void
evr_gw_bus_stop(evr_gw_t *gw)
{
    pthread_mutex_lock(&gw->mu);
    gw->stopping = 1;
    pthread_cond_broadcast(&gw->bus_cv);
    pthread_mutex_unlock(&gw->mu);
    if (gw->bus_on)
        pthread_join(gw->bus_thread, NULL);
    gw->bus_on = false;
    pthread_cond_destroy(&gw->bus_cv);
}

/*  Whether gw->client's connection is up (gw->mu held), waiting
    S_LINK_NS at most (req's deadline first) for one coming back; lost
    when it does not, as the watch would lose it a little later: a
    request on a stopped broker gets 503 at once, not after timeout_ms
    (the send on a socket with no connection would wait that long). */
static bool
s_link(evr_gw_t *gw, evr_gw_req_t *req)
{
    uint64_t until = evr_mono_ns() + S_LINK_NS;
    if (req->until_ns && req->until_ns < until)
        until = req->until_ns;
    while (!evr_client_connected(gw->client)) {
        if (evr_mono_ns() >= until || gw->stopping) {
            evr_err_t err;
            evr_err_set(&err, EVR_ERR_IO, "the connection to the broker at %s dropped: is "
                        "evrun-broker running? (try: evrun-cli up)",
                        evr_client_endpoint(gw->client));
            evr_gw_bus_lost(gw, &err, true);
            return false;
        }
        struct timespec ts = { 0, 20000000 };
        nanosleep(&ts, NULL);
    }
    return true;
}

bool
evr_gw_bus_wait(evr_gw_t *gw, evr_gw_req_t *req)
{
    pthread_mutex_lock(&gw->mu);
    bool up = evr_gw_client(gw, req) != NULL;
    pthread_mutex_unlock(&gw->mu);
    return up;
}

evr_client_t *
evr_gw_client(evr_gw_t *gw, evr_gw_req_t *req)
{
    uint64_t until = req->until_ns ? req->until_ns : evr_mono_ns() + S_ATTEMPT_NS, now;
    /* in slices: a gateway that stops (evr_gw_stop) does not wait for it */
    while (gw->bus_on && !gw->client && !gw->bus_down && !gw->stopping && !req->bus_nowait
           && (now = evr_mono_ns()) < until)
        s_wait_until(gw, until - now < S_SLICE_NS ? until : now + S_SLICE_NS);
    if (gw->client && s_link(gw, req))
        return gw->client;
    now = evr_mono_ns();
    uint64_t secs = gw->bus_retry_at > now ? (gw->bus_retry_at - now + 999999999u) / 1000000000u
                                           : 1;
    req->retry_after = (unsigned) (secs ? secs : 1);
    if (gw->bus_down)
        evr_gw_error(req, 503, "unavailable", "%s (the gateway tries again by itself, next in "
                     "%u s, and serves once a broker answers)", gw->down_msg, req->retry_after);
    else
        evr_gw_error(req, 503, "unavailable", "the gateway is connecting to the broker: "
                     "try again");
    return NULL;
}

void
evr_gw_bus_lost(evr_gw_t *gw, const evr_err_t *err, bool down)
{
    evr_client_destroy(&gw->client);
    if (down && !gw->bus_down) {
        evr_log_warn("gateway", "the broker stopped answering: %s (connecting again)",
                     err->msg);
        snprintf(gw->down_msg, sizeof gw->down_msg, "%s", err->msg);
        gw->bus_down = true;
    }
    else if (!down)     /* made anew at once, unlike a stopped broker: said still */
        evr_log_info("gateway", "a call to the broker failed: %s (its connection is made "
                     "anew)", err->msg);
    gw->bus_again = true;
    gw->bus_retry_at = evr_mono_ns();
    if (gw->bus_on)
        pthread_cond_broadcast(&gw->bus_cv);
}
