/*  evr_gw_broker.c: the gateway's calls to the broker, and the helpers
    that turn their answers into HTTP ones.  See evr_gw.h. */
#include "evr_gw.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define S_DOWN_NS 1000000000ull  /* after a failure, requests get 503 at once this long */

/*  Requests queue on the mutex: while the broker has just failed, each
    gets its 503 at once instead of waiting its own timeout in turn. */
evr_client_t *
evr_gw_client(evr_gw_t *gw, evr_gw_req_t *req)
{
    evr_err_t err;
    if (!gw->client && evr_mono_ns() < gw->down_until)
        evr_gw_error(req, 503, "unavailable", "%s", gw->down_msg);
    else if (!gw->client && evr_client_new(gw->cfg, &gw->client, &err)) {
        evr_gw_error(req, 503, "unavailable", "%s", err.msg);
        snprintf(gw->down_msg, sizeof gw->down_msg, "%s", err.msg);
        gw->down_until = evr_mono_ns() + S_DOWN_NS;
    }
    return gw->client;
}

/*  After a failed call: the answer for rc, and a connection that may
    still get a late answer dropped. */
static evr_rc_t
s_failed(evr_gw_t *gw, evr_gw_req_t *req, evr_rc_t rc, const evr_err_t *err)
{
    if (rc == EVR_ERR_LIMIT)
        evr_gw_error(req, 413, "too_large", "%s", err->msg);
    else if (rc == EVR_ERR_STATE)   /* an `error` answer ending a stream */
        return rc;
    else {
        evr_gw_error(req, 503, "unavailable", "%s", err->msg);
        snprintf(gw->down_msg, sizeof gw->down_msg, "%s", err->msg);
        gw->down_until = evr_mono_ns() + S_DOWN_NS;
    }
    evr_client_destroy(&gw->client);
    return rc;
}

evr_rc_t
evr_gw_call(evr_gw_t *gw, evr_gw_req_t *req, const evr_msg_t *m, evr_msg_t *reply)
{
    evr_err_t err;
    evr_rc_t rc = EVR_ERR_IO;
    pthread_mutex_lock(&gw->mu);
    evr_client_t *c = evr_gw_client(gw, req);
    uint64_t t0 = evr_mono_ns();
    if (c && (rc = evr_client_call(c, m, reply, &err)))
        s_failed(gw, req, rc, &err);
    pthread_mutex_unlock(&gw->mu);
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
    pthread_mutex_lock(&gw->mu);
    evr_client_t *c = evr_gw_client(gw, req);
    if (c && (rc = evr_client_stream_end(c, m, fn, arg, end, &err)))
        s_failed(gw, req, rc, &err);
    pthread_mutex_unlock(&gw->mu);
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
    static const struct {
        const char *code;
        int status;
    } map[] = {
        { EVR_CODE_NOT_FOUND, 404 }, { EVR_CODE_CONFLICT, 409 },
        { EVR_CODE_BAD_REQUEST, 400 }, { EVR_CODE_TOO_LARGE, 413 },
        { EVR_CODE_QUEUE_FULL, 429 }, { EVR_CODE_UNAVAILABLE, 503 },
    };
    if (reply->type != EVR_MSG_ERROR || !reply->code) {
        evr_gw_error(req, 502, "bad_gateway", "unexpected answer from the broker: %s",
                     evr_msgtype_name(reply->type) ? evr_msgtype_name(reply->type) : "?");
        return;
    }
    int status = 502;
    for (size_t i = 0; i < EVR_ARRAY_LEN(map); i++)
        if (!strcmp(map[i].code, reply->code))
            status = map[i].status;
    evr_gw_error(req, status, reply->code, "%s", reply->message ? reply->message : "");
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
