/*  evr_synth.c: synthetic job lifecycles. */
#include "evr_synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static evr_event_t *
s_event(evr_evtype_t t, const char *job, const char *step)
{
    evr_event_t *ev = evr_event_new(t);
    ev->job = evr_strdup(job);
    if (step) {
        ev->data.step = evr_strdup(step);
        ev->data.attempt = 1;
    }
    return ev;
}

evr_event_t **
evr_synth_job(const char *job_id, uint32_t steps, uint32_t output_bytes, uint32_t chunk,
              size_t *n)
{
    if (chunk == 0)
        chunk = 1;
    uint32_t chunks = (output_bytes + chunk - 1) / chunk;
    size_t cap = 3 + (size_t) steps * (4 + chunks);
    evr_event_t **evs = evr_calloc(cap, sizeof *evs);
    size_t k = 0;

    evr_spec_t *spec = evr_spec_new();
    spec->pipeline = evr_strdup("synthetic");
    spec->image = evr_strdup("localhost/evrun-busybox:latest");
    spec->steps.n = steps;
    spec->steps.v = evr_calloc(steps, sizeof(evr_step_t));
    for (uint32_t i = 0; i < steps; i++) {
        evr_step_t *st = evr_spec_step(spec, i);
        st->name = evr_asprintf("step-%u", i + 1);
        st->run = evr_asprintf("echo step %u", i + 1);
    }
    evr_event_t *acc = s_event(EVR_EV_JOB_ACCEPTED, job_id, NULL);
    acc->data.pipeline = evr_strdup("synthetic");
    acc->data.spec = spec;
    evs[k++] = acc;
    evs[k++] = s_event(EVR_EV_JOB_STARTED, job_id, NULL);

    char *buf = evr_malloc(chunk);
    for (uint32_t i = 0; i < steps; i++) {
        const char *name = evr_spec_step(spec, i)->name;
        evs[k++] = s_event(EVR_EV_STEP_QUEUED, job_id, name);
        evr_event_t *starting = s_event(EVR_EV_STEP_STARTING, job_id, name);
        starting->data.container = evr_asprintf("evrun-%s-step-%u-1", job_id, i + 1);
        evs[k++] = starting;
        evr_event_t *started = s_event(EVR_EV_STEP_STARTED, job_id, name);
        started->data.container_id = evr_asprintf("%064x", i + 1);
        evs[k++] = started;
        uint64_t off[2] = { 0, 0 };
        for (uint32_t c = 0, left = output_bytes; c < chunks; c++) {
            uint32_t len = left < chunk ? left : chunk;
            left -= len;
            for (uint32_t b = 0; b < len; b++)   /* printable, newline-terminated lines */
                buf[b] = (b % 64 == 63 || b == len - 1) ? '\n' : (char) ('a' + (c + b) % 26);
            int s = c % 2;
            evr_event_t *out = s_event(EVR_EV_STEP_OUTPUT, job_id, name);
            out->data.stream = evr_strdup(s ? "stderr" : "stdout");
            out->data.offset = off[s];
            out->data.raw = len;
            out->data.bytes.data = evr_malloc(len);
            memcpy(out->data.bytes.data, buf, len);
            out->data.bytes.len = len;
            off[s] += len;
            evs[k++] = out;
        }
        evr_event_t *fin = s_event(EVR_EV_STEP_FINISHED, job_id, name);
        fin->data.exit_code = 0;
        fin->data.duration = 1234;
        fin->data.status = evr_strdup("succeeded");
        evs[k++] = fin;
    }
    free(buf);
    evr_event_t *done = s_event(EVR_EV_JOB_FINISHED, job_id, NULL);
    done->data.status = evr_strdup("succeeded");
    evs[k++] = done;
    *n = k;
    return evs;
}

void
evr_synth_free(evr_event_t **events, size_t n)
{
    for (size_t i = 0; i < n; i++)
        evr_event_destroy(&events[i]);
    free(events);
}
