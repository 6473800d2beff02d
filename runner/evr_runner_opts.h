/*  evr_runner_opts.h: evrun-runner's settings and command line: the
    settings' keys, the options parsed into evr_runner_opts_t and the
    flag settings, and the checks of the settings that main.c wires into
    the engine (evr_engine_opts_t) and the daemon. */
#ifndef EVR_RUNNER_OPTS_H_INCLUDED
#define EVR_RUNNER_OPTS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "evr_config.h"
#include "evr_engine.h"
#include "evr_hooks.h"
#include "evr_keep.h"
#include "evr_offer.h"

/*  What the command line says besides the settings. */
typedef struct {
    const char *file;
    bool recover, keep, print, exit_drained;
    bool prune, dry_run;    /* --prune [--dry-run] */
    evr_prune_policy_t retention;
    uint32_t retention_ms;
    bool once, clean;       /* --once, --clean */
    bool follow;            /* --follow-triggers */
    const char *pipelines;  /* --pipelines DIR */
    int once_wait;          /* --once-wait, seconds; 0: for ever */
    evr_offer_t offer;      /* the executors offered (setting executors) */
    int stop_timeout;
    evr_strmap_t given;
} evr_runner_opts_t;

/*  A config of evrun-runner's keys and their defaults; caller owns the
    result (evr_config_destroy). */
evr_config_t *evr_runner_opts_config(void);

/*  The resource and artifact settings into eo, every one checked: the
    problems are the config's to report (evr_config_report); false when
    there was one. */
bool evr_runner_opts_limits(evr_config_t *cfg, evr_engine_opts_t *eo);

/*  The executors setting into o->offer (podman_url's form checked when
    podman is offered, but for --prune), and with labels (a --broker
    runner's) the labels setting with the executor labels into lv and
    *joined (evr_offer_labels); a problem is the config's to report,
    naming the key, its value and its source. */
bool evr_runner_opts_offer(evr_config_t *cfg, evr_runner_opts_t *o, bool labels, const char **lv,
                           char **joined);

/*  The daemon's numbers (capacity, heartbeat_ms, lease_ms), checked as
    when it starts, all three; the errors are the config's to report. */
bool evr_runner_opts_daemon_numbers(evr_config_t *cfg, uint64_t *cap, uint64_t *hb,
                                    uint64_t *lease);

/*  Parses the command line into o and the flag settings (flags holds 80
    entries, *nf of them used: evr_config_flag's pairs); 0 to go on, else
    the exit status (-1: help printed, exit 0). */
int evr_runner_opts_parse(int argc, char **argv, evr_runner_opts_t *o, const char **flags,
                          size_t *nf, const char **file, bool *print_config);

/*  The settings file's `hooks:` (file, else the default one) into *out:
    its problems recorded in cfg (said with the others by
    evr_config_report). */
bool evr_runner_opts_hooks(evr_config_t *cfg, const char *file, evr_hooks_t **out);

#endif
