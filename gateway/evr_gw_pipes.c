/*  evr_gw_pipes.c: the registered pipelines over HTTP: GET /pipelines
    is the broker's `pipelines` stream (schema/PROTOCOL.md), one JSON
    object per `pipeline` message.  Starting one by name is a submit
    body (evr_gw_parse_start, evr_gw_api.c).  See evr_gw.h. */
#include "evr_gw.h"

static int
s_pipeline_item(const evr_msg_t *m, void *arg)
{
    if (m->type != EVR_MSG_PIPELINE)
        return 0;
    json_t *js = json_pack("{s:s,s:s?,s:i,s:i,s:i}", "name", m->pipeline ? m->pipeline : "",
                           "file", m->file, "concurrency", (json_int_t) m->concurrency,
                           "waiting", (json_int_t) m->waiting, "running",
                           (json_int_t) m->running);
    if (!js)        /* a file name that is no UTF-8 */
        return 0;
    if (m->last_job)
        json_object_set_new(js, "last_job", json_pack("{s:s,s:s?}", "id", m->last_job,
                                                      "status", m->last_status));
    if (m->schedule) {
        json_t *sc = json_pack("{s:s,s:s}", "cron", m->schedule, "timezone",
                               m->timezone ? m->timezone : "UTC");
        evr_gw_time_set(sc, "next_run", m->next_run);
        evr_gw_time_set(sc, "last_fire", m->last_fire);
        if (m->fire_job)
            json_object_set_new(sc, "fire_job", json_string(m->fire_job));
        if (m->fire_status)
            json_object_set_new(sc, "fire_status", json_string(m->fire_status));
        json_object_set_new(js, "schedule", sc);
    }
    if (m->arg_specs.n) {
        json_t *args = json_array();
        for (uint32_t i = 0; i < m->arg_specs.n; i++) {
            const evr_arg_t *a = evr_reclist_at(&evr_arg_type, &m->arg_specs, i);
            json_t *o = json_pack("{s:s,s:b,s:s*,s:s*}", "name", a->name, "required", !a->def,
                                  "default", a->def, "description", a->description);
            if (o)      /* NULL: not UTF-8, which the broker's spec check refuses */
                json_array_append_new(args, o);
        }
        json_object_set_new(js, "args", args);
    }
    if (m->load_error) {
        json_t *e = json_string(m->load_error);
        json_object_set_new(js, "load_error", e ? e : json_string("(not UTF-8)"));
    }
    json_array_append_new(arg, js);
    return 0;
}

void
evr_gw_h_pipelines(evr_gw_t *gw, evr_gw_req_t *req)
{
    evr_msg_t m = { .type = EVR_MSG_PIPELINES }, end = { 0 };
    json_t *list = json_array();
    if (!evr_gw_stream(gw, req, &m, s_pipeline_item, list, &end))
        evr_gw_json(req, 200, json_pack("{s:O}", "pipelines", list));
    json_decref(list);
    evr_msg_clear(&end);
}
