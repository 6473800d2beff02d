/*  evr_gw_demand.c: demand for runners through the gateway (README
    "Ephemeral runners and the provisioner", PROTOCOL.md "message
    demand").

    POST /api/v1/demand (a write token) with {"labels": [...], "count": N,
    "ttl": S, "reason": "..."} sends the broker a `demand`; an
    Idempotency-Key header names the same demand however often it is
    sent (while the broker keeps it, or for 24 hours after it was met or
    ended: answered 200 with "duplicate": true).  A GitHub `workflow_job`
    `queued` event that starts no pipeline sends one too (evr_gw_hooks.c):
    one runner with the job's labels (workflow_job.labels), its id from
    the workflow job's id (else the delivery's).  evrun-provisioner
    counts what the broker keeps as waiting jobs.  See evr_gw.h. */
#include "evr_gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Whether s is a label a demand may name: a name, or executor:NAME. */
static bool
s_label_ok(const char *s)
{
    return evr_spec_name_ok(s) || (!strncmp(s, "executor:", 9) && evr_spec_name_ok(s + 9));
}

int
evr_gw_parse_demand(const char *body, size_t len, evr_msg_t *m, char *why, size_t size)
{
    json_error_t je;
    json_t *js = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : json_object();
    int r = -1;
    const char *key;
    json_t *v;
    if (!json_is_object(js)) {
        char bad[384];
        snprintf(why, size, "%s%sa JSON object {\"labels\": [...], \"count\": N, \"ttl\": "
                 "SECONDS, \"reason\": \"...\"}%s", js ? "body: expected " :
                 evr_gw_json_why(&je, bad, sizeof bad), js ? "" : " (send ", js ? "" : ")");
        goto out;
    }
    json_object_foreach(js, key, v) {
        if (!strcmp(key, "labels")) {
            size_t i;
            json_t *l;
            if (!json_is_array(v) || json_array_size(v) > 32) {
                snprintf(why, size, "body.labels: expected an array of at most 32 labels");
                goto out;
            }
            json_array_foreach(v, i, l) {
                if (!json_is_string(l) || !s_label_ok(json_string_value(l))) {
                    snprintf(why, size, "body.labels[%zu]: expected a label: a letter or "
                             "digit, then letters, digits, _ . - (at most %d bytes; or "
                             "executor:NAME)", i, EVR_SPEC_MAX_NAME);
                    goto out;
                }
                for (uint32_t j = 0; j < m->labels.n; j++)
                    if (!strcmp(m->labels.v[j], json_string_value(l))) {
                        snprintf(why, size, "body.labels[%zu]: \"%s\" repeats body.labels[%u]",
                                 i, json_string_value(l), j);
                        goto out;
                    }
                evr_strlist_push(&m->labels, json_string_value(l));
            }
        }
        else if (!strcmp(key, "count") || !strcmp(key, "ttl")) {
            bool count = key[0] == 'c';
            json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
            json_int_t max = count ? EVR_MSG_DEMAND_MAX_COUNT : EVR_MSG_DEMAND_MAX_TTL;
            if (n < 1 || n > max) {
                snprintf(why, size, "body.%s: expected a whole number from 1 to %lld%s", key,
                         (long long) max, count ? " (runners wanted)" : " (seconds)");
                goto out;
            }
            *(count ? &m->count : &m->ttl) = (uint32_t) n;
        }
        else if (!strcmp(key, "reason")) {
            if (!json_is_string(v) || json_string_length(v) > 1024) {
                snprintf(why, size, "body.reason: expected a string of at most 1024 bytes");
                goto out;
            }
            m->reason = evr_strdup(json_string_value(v));
        }
        else {
            snprintf(why, size, "body: unknown key \"%.64s\" (expected labels, count, ttl, "
                     "reason)", key);
            goto out;
        }
    }
    r = 0;
out:
    json_decref(js);
    return r;
}

/*  The answer to a duplicate demand id: the demand the broker keeps
    (its `demands` list), not the request's, which added nothing. */
static json_t *
s_duplicate(evr_gw_t *gw, evr_gw_req_t *req, const char *id, const char *message)
{
    evr_gw_req_t sub = { .conn = req->conn };
    evr_msg_t q = { .type = EVR_MSG_DEMANDS }, end = { 0 };
    json_t *all = json_array(), *v, *kept = NULL;
    size_t i;
    if (!evr_gw_stream(gw, &sub, &q, evr_gw_demand_item, all, &end))
        json_array_foreach(all, i, v)
            if (!strcmp(json_string_value(json_object_get(v, "id")), id))
                kept = v;
    json_t *labels = json_object_get(kept, "labels"), *count = json_object_get(kept, "count");
    json_t *ttl = json_object_get(kept, "ttl");
    json_t *js = json_pack("{s:s,s:o,s:o,s:o,s:s,s:b}", "id", id, "labels",
                           labels ? json_incref(labels) : json_array(), "count",
                           count ? json_incref(count) : json_integer(0), "ttl",
                           ttl ? json_incref(ttl) : json_integer(0), "message",
                           message ? message : "", "duplicate", true);
    json_decref(sub.json);
    json_decref(all);
    evr_msg_clear(&end);
    return js;
}

json_t *
evr_gw_demand_send(evr_gw_t *gw, evr_gw_req_t *req, evr_msg_t *m, const char *key)
{
    char id[EVR_ULID_LEN + 1];
    if (key && !evr_gw_idem_job(gw, req, key, id))
        return NULL;
    if (!key)
        evr_ulid_new(id);
    free(m->job);
    m->job = evr_strdup(id);
    m->type = EVR_MSG_DEMAND;
    evr_msg_t rep = { 0 };
    json_t *js = NULL;
    if (evr_gw_call(gw, req, m, &rep))
        return NULL;
    if (rep.type != EVR_MSG_OK)
        evr_gw_refused(req, &rep);
    else if (rep.existing)
        js = s_duplicate(gw, req, id, rep.message);
    else {
        json_t *labels = json_array();
        for (uint32_t i = 0; i < m->labels.n; i++)
            json_array_append_new(labels, json_string(m->labels.v[i]));
        js = json_pack("{s:s,s:o,s:i,s:i,s:s,s:b}", "id", id, "labels", labels, "count",
                       (int) (m->count ? m->count : 1), "ttl",
                       (int) (m->ttl ? m->ttl : EVR_MSG_DEMAND_TTL), "message",
                       rep.message ? rep.message : "", "duplicate", rep.existing);
    }
    evr_msg_clear(&rep);
    return js;
}

void
evr_gw_h_demand(evr_gw_t *gw, evr_gw_req_t *req)
{
    evr_msg_t m = { 0 };
    char why[512];
    if (!evr_gw_json_type_ok(req, "{\"labels\": [...], \"count\": N}"))
        goto out;
    if (evr_gw_parse_demand(req->body ? req->body : "", req->len, &m, why, sizeof why)) {
        evr_gw_error(req, 400, "bad_request", "%s", why);
        goto out;
    }
    const char *key = evr_gw_header(req, "Idempotency-Key");
    if (key && !evr_gw_idem_key_ok(req, key, 200))     /* openapi: maxLength 200 */
        goto out;
    char *k = key ? evr_asprintf(EVR_GW_KEY_DEMAND "%s", key) : NULL;
    if (!m.reason)      /* where it comes from, for `evrun-cli runners` */
        m.reason = evr_strdup("POST /api/v1/demand");
    json_t *js = evr_gw_demand_send(gw, req, &m, k);
    free(k);
    if (js)     /* a duplicate: nothing added, 200 */
        evr_gw_json(req, json_is_true(json_object_get(js, "duplicate")) ? 200 : 202, js);
out:
    evr_msg_clear(&m);
}
