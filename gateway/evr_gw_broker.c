/*  evr_gw_broker.c: the gateway's calls to the broker, and the helpers
    that turn their answers into HTTP ones.  See evr_gw.h. */
#include "evr_gw.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/*  After a failed call: the answer for rc, and a connection that may
    still get a late answer dropped. */
static evr_rc_t
s_failed(evr_gw_t *gw, evr_gw_req_t *req, evr_rc_t rc, const evr_err_t *err, bool sent)
{
    if (rc == EVR_ERR_LIMIT) {  /* refused before sending: the connection is fine */
        evr_gw_error(req, 413, "too_large", "%s", err->msg);
        return rc;
    }
    else if (rc == EVR_ERR_STATE)   /* an `error` answer ending a stream */
        return rc;
    else {
        evr_gw_error(req, 503, "unavailable", "%s (the gateway tries again by itself and "
                     "serves once a broker answers)", err->msg);
        req->retry_after = 1;
        req->unanswered = sent;     /* the broker may have done it: not when unsent */
    }
    /* a slow broker is no stopped one: not down after a wait cut short by
       req->until_ns, unless its connection is down too.  The reason kept
       for the requests answered 503 at once meanwhile says it is of an
       earlier one (they waited for nothing); the log has it as it came */
    bool down = !req->until_ns || !evr_client_connected(gw->client), was_down = gw->bus_down;
    evr_gw_bus_lost(gw, err, down);
    if (down && !was_down)
        snprintf(gw->down_msg, sizeof gw->down_msg, "an earlier request to the broker failed "
                 "(%.900s); the broker is taken as down until it answers", err->msg);
    return rc;
}

/*  Takes gw->mu, by req->until_ns when set: false (req->no_turn, a 503
    set) when the turn did not come by then. */
static bool
s_lock(evr_gw_t *gw, evr_gw_req_t *req)
{
    if (!req->until_ns) {
        pthread_mutex_lock(&gw->mu);
        return true;
    }
    uint64_t now = evr_mono_ns(), left = req->until_ns > now ? req->until_ns - now : 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t) ts.tv_nsec + left;
    ts.tv_sec += (time_t) (ns / 1000000000u);
    ts.tv_nsec = (long) (ns % 1000000000u);
    if (pthread_mutex_timedlock(&gw->mu, &ts) == 0)
        return true;
    req->no_turn = true;
    evr_gw_error(req, 503, "unavailable", "the broker's connection stayed busy with other "
                 "requests for %llu ms: try again", (unsigned long long) (left / 1000000u));
    req->retry_after = 1;
    return false;
}

/*  The shared client for one call by req->until_ns: its answer wait cut
    to what is left (*was: the one to put back), NULL as evr_gw_client. */
static evr_client_t *
s_client_within(evr_gw_t *gw, evr_gw_req_t *req, int *was)
{
    evr_client_t *c = evr_gw_client(gw, req);
    *was = 0;
    if (c && req->until_ns) {
        uint64_t now = evr_mono_ns();
        int left = req->until_ns > now ? (int) ((req->until_ns - now) / 1000000u) : 1;
        *was = evr_client_set_timeout(c, left);
        if (left >= *was) {     /* timeout_ms comes first */
            evr_client_set_timeout(c, *was);
            *was = 0;
        }
    }
    return c;
}

static void
s_unlock(evr_gw_t *gw, int was)
{
    if (gw->client && was)
        evr_client_set_timeout(gw->client, was);
    pthread_mutex_unlock(&gw->mu);
}

evr_rc_t
evr_gw_call(evr_gw_t *gw, evr_gw_req_t *req, const evr_msg_t *m, evr_msg_t *reply)
{
    evr_err_t err;
    evr_rc_t rc = EVR_ERR_IO;
    int was;
    if (!s_lock(gw, req))
        return rc;
    evr_client_t *c = s_client_within(gw, req, &was);
    uint64_t t0 = evr_mono_ns();
    if (c && (rc = evr_client_call(c, m, reply, &err)))
        s_failed(gw, req, rc, &err, evr_client_sent(c));
    s_unlock(gw, was);
    if (c && !rc)
        evr_gw_metrics_rtt(gw, evr_mono_ns() - t0);
    return rc;
}

evr_rc_t
evr_gw_stream(evr_gw_t *gw, evr_gw_req_t *req, const evr_msg_t *m, evr_client_item_fn *fn,
              void *arg, evr_msg_t *end)
{
    evr_err_t err;
    evr_rc_t rc = EVR_ERR_IO;
    int was;
    if (!s_lock(gw, req))
        return rc;
    evr_client_t *c = s_client_within(gw, req, &was);
    if (c && (rc = evr_client_stream_end(c, m, fn, arg, end, &err)))
        s_failed(gw, req, rc, &err, evr_client_sent(c));
    s_unlock(gw, was);
    if (rc == EVR_ERR_STATE) {     /* "code: message" of the broker's error */
        evr_msg_t e = { .type = EVR_MSG_ERROR, .code = err.msg, .message = "" };
        char *colon = strstr(err.msg, ": ");
        if (colon) {
            *colon = '\0';
            e.message = colon + 2;
        }
        evr_gw_refused(req, &e);
    }
    return rc;
}

void
evr_gw_refused(evr_gw_req_t *req, const evr_msg_t *reply)
{
    /* README "HTTP gateway" lists this table */
    static const struct {
        const char *code;
        int status;
    } map[] = {
        { EVR_CODE_BAD_REQUEST, 400 }, { EVR_CODE_NOT_FOUND, 404 },
        { EVR_CODE_CONFLICT, 409 }, { EVR_CODE_BUSY, 409 },   /* the pipeline's state */
        { EVR_CODE_TOO_LARGE, 413 }, { EVR_CODE_QUEUE_FULL, 429 },
        { EVR_CODE_INTERNAL, 500 }, { EVR_CODE_UNKNOWN_TYPE, 501 },  /* an older broker */
        { EVR_CODE_UNAVAILABLE, 503 },
    };
    if (reply->type != EVR_MSG_ERROR || !reply->code) {
        evr_gw_error(req, 502, "bad_gateway", "unexpected answer from the broker: %s",
                     evr_msgtype_name(reply->type) ? evr_msgtype_name(reply->type) : "?");
        return;
    }
    int status = 0;
    for (size_t i = 0; i < EVR_ARRAY_LEN(map); i++)
        if (!strcmp(map[i].code, reply->code))
            status = map[i].status;
    if (!status) {      /* a code this gateway does not know: no answer it understands */
        evr_gw_error(req, 502, "bad_gateway", "the broker refused with a code unknown to the "
                     "gateway: %.64s: %s", reply->code, reply->message ? reply->message : "");
        return;
    }
    evr_gw_error(req, status, reply->code, "%s", reply->message ? reply->message : "");
    if (status == 429 || status == 503)
        req->retry_after = status == 429 ? EVR_GW_RETRY_QUEUE_S : 1;
}

bool
evr_gw_job_param(evr_gw_req_t *req, char id[EVR_ULID_LEN + 1])
{
    const char *p = req->params[0];
    size_t n = strlen(p);
    for (size_t i = 0; i < n && i < EVR_ULID_LEN; i++)
        id[i] = (char) toupper((unsigned char) p[i]);
    id[n < EVR_ULID_LEN ? n : EVR_ULID_LEN] = '\0';
    if (n != EVR_ULID_LEN || evr_ulid_problem(id)) {
        evr_gw_error(req, 404, "not_found", "no such job: the id is no job id (%s)",
                     n != EVR_ULID_LEN ? "expected 26 characters" : evr_ulid_problem(id));
        return false;
    }
    return true;
}

void
evr_gw_time_set(json_t *js, const char *key, uint64_t ns)
{
    if (!ns)
        return;
    time_t t = (time_t) (ns / 1000000000ull);
    struct tm tm;
    char buf[64];
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03uZ", (unsigned) (ns / 1000000u % 1000u));
    json_object_set_new(js, key, json_string(buf));
}
