/*  evr_jobspec.c: a job's spec and bound args, read from its first event
    (job.accepted): what a recovery runs again and a broker queues again. */
#include "evr_store.h"

typedef struct {
    evr_spec_t *spec;
    evr_strmap_t *args;
} s_accepted_t;

static int
s_first_event(const evr_event_t *ev, void *arg)
{
    s_accepted_t *a = arg;
    if (evr_event_kind(ev) == EVR_EV_JOB_ACCEPTED && ev->data.spec) {
        a->spec = evr_spec_new();
        evr_rec_copy(&evr_spec_type, a->spec, ev->data.spec);
        for (uint32_t i = 0; i < ev->data.args.n; i++)
            evr_strmap_set(a->args, ev->data.args.k[i], ev->data.args.v[i]);
    }
    return 1;   /* the first only */
}

evr_rc_t
evr_store_job_spec(evr_store_t *self, const char *job, evr_spec_t **spec, evr_strmap_t *args,
                   evr_err_t *err)
{
    s_accepted_t a = { NULL, args };
    *spec = NULL;
    evr_rc_t rc = evr_store_job_events(self, job, 1, s_first_event, &a, err);
    if (rc)
        return rc;
    if (!a.spec)
        return evr_err_set(err, EVR_ERR_NOTFOUND, "store: job %s: its first event is not a "
                           "job.accepted with a spec", job);
    *spec = a.spec;
    return EVR_OK;
}
