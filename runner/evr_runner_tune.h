/*  evr_runner_tune.h: evrun-runner's process settings for output at
    podman's speed (malloc's thresholds, stdout's buffer). */
#ifndef EVR_RUNNER_TUNE_H_INCLUDED
#define EVR_RUNNER_TUNE_H_INCLUDED

/*  Sets them; once, at the start, before any output. */
void evr_runner_tune(void);

#endif
