/*  evr_synth.h: synthetic but valid job lifecycles, for tests and benches.

    evr_synth_job() builds the events a runner would append for one job
    that runs `steps` steps in order, each writing `output_bytes` of
    output in chunks of at most `chunk` bytes (stdout and stderr
    alternating), and succeeds: job.accepted (with its spec), job.started,
    per step queued/starting/started/output.../finished, job.finished.
    seq, jseq and time are left for the store to assign.
*/
#ifndef EVR_SYNTH_H_INCLUDED
#define EVR_SYNTH_H_INCLUDED

#include "evr_event.h"

/*  Returns a new array of *n new events; free with evr_synth_free(). */
evr_event_t **evr_synth_job(const char *job_id, uint32_t steps, uint32_t output_bytes,
                            uint32_t chunk, size_t *n);
void evr_synth_free(evr_event_t **events, size_t n);

#endif
