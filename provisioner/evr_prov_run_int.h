/*  evr_prov_run_int.h: what evr_prov_run.c and evr_prov_pass.c share: a
    runner started (an instance) and the provisioner's state. */
#ifndef EVR_PROV_RUN_INT_H
#define EVR_PROV_RUN_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "evr_prov_run.h"

#define EVR_PROV_HANDLE_MAX 256

/*  A runner started (evr_prov_run.c says when it counts). */
typedef struct {
    char id[80];
    uint32_t provider;
    pid_t pid;              /* the child to reap; 0: none */
    int out;                /* command: the start command's stdout; -1: none */
    char handle[EVR_PROV_HANDLE_MAX + 1];
    size_t hlen;
    bool have_handle, registered, ended, stopping;
    bool long_handle;       /* command: its first output line is over EVR_PROV_HANDLE_MAX */
    bool took;              /* listed with credit or busy: the broker's list counts it now */
    bool parting;           /* told to stop at the provisioner's stop; not gone yet */
    bool adopted;           /* started by an earlier provisioner on DIR: pid no child */
    bool ctr;               /* podman: its container may still be there */
    bool left_start;        /* command: its runner said goodbye, its start command ran on
                               and was told to stop (s_term_start) */
    bool unjudged;          /* listed only as a restarted broker knows it (lost, no
                               labels): its hello's labels not seen yet */
    uint64_t gone_at;       /* podman: when its container was first seen gone (0: not) */
    uint64_t away_at;       /* command: since when it is listed lost or not at all (0: not) */
    uint64_t term_at;       /* command: when its start command, still running after its
                               runner's goodbye, gets SIGTERM (0: not) */
    pid_t stop_pid;         /* command: its stop command while it runs; 0: none */
    uint64_t stop_at;       /* when that stop command is told to end: SIGTERM, then SIGKILL */
    bool stop_termed;       /* it got SIGTERM (SIGKILL at stop_at) */
    uint64_t started, kill_at;
} evr_prov_inst_t;

/*  The provisioner: its config, its runners, its start-rate bucket. */
struct evr_prov {
    evr_prov_config_t cfg;
    char *dir, *runner, *endpoint;
    evr_prov_inst_t **inst;
    size_t n, cap;
    evr_prov_bucket_t bucket;
    uint32_t dry_starts;    /* --dry-run: the starts the pass would make */
    evr_prov_podman_t *podman;  /* the podman providers' service, made at their first start */
    bool unasked;           /* the broker did not answer the last tend: its runners unknown */
};

/*  Starts a runner of provider pi for job (its labels; "" for demand),
    what for the log; the instance is counted from now.  false when it
    could not start (a failed start). */
bool evr_prov_start_one(evr_prov_t *pv, uint32_t pi, const char *job, const char *what,
                        const evr_strlist_t *jlabels, uint64_t now);

/*  The items of l joined by commas; caller frees. */
char *evr_prov_joined(const evr_strlist_t *l);

#endif
