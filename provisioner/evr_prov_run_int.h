/*  evr_prov_run_int.h: what evr_prov_run.c, evr_prov_child.c and
    evr_prov_pass.c share: a runner started (an instance), the
    provisioner's state, and the children's side (evr_prov_child.c). */
#ifndef EVR_PROV_RUN_INT_H
#define EVR_PROV_RUN_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "evr_prov_run.h"

#define EVR_PROV_HANDLE_MAX 256

/*  What is kept of a command's stderr: its last bytes. */
#define EVR_PROV_ERR_KEEP 4096

/*  A command provider's start command's stderr, or its stop command's
    output (stdout and stderr), read from a pipe
    at each pass: its last EVR_PROV_ERR_KEEP bytes are kept and written
    to the runner's log once it ends (how many were left out before
    them said first), so a command that writes without end fills
    neither the memory nor the disk. */
typedef struct {
    int fd;                 /* the pipe's read end; -1: none, or ended and written */
    size_t len;             /* bytes in buf; the last EVR_PROV_ERR_KEEP are kept */
    uint64_t total;         /* bytes read in all */
    char buf[2 * EVR_PROV_ERR_KEEP];
} evr_prov_errtail_t;

/*  A runner started (evr_prov_run.c says when it counts). */
typedef struct {
    char id[80];
    uint32_t provider;
    pid_t pid;              /* the child to reap; 0: none */
    int out;                /* command: the start command's stdout; -1: none */
    evr_prov_errtail_t start_err;   /* command: the start command's stderr */
    evr_prov_errtail_t stop_err;    /* command: the stop command's stdout and stderr */
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
    char **stranded;        /* the jobs and demand said to have no provider with their
                               labels (once each, while they wait; evr_prov_pass.c) */
    size_t nstranded;
};

/*  Starts a runner of provider pi for job (its labels; "" for demand),
    what for the log; the instance is counted from now.  false when it
    could not start (a failed start). */
bool evr_prov_start_one(evr_prov_t *pv, uint32_t pi, const char *job, const char *what,
                        const evr_strlist_t *jlabels, uint64_t now);

/*  The items of l joined by commas; caller frees. */
char *evr_prov_joined(const evr_strlist_t *l);

/* ------------------------------------------ the children (evr_prov_child.c) */

/*  evrun-runner --once --clean for in (a process provider), output in
    its log.  Returns the pid, or -1 (why in err). */
pid_t evr_prov_child_process(evr_prov_t *pv, const evr_prov_provider_t *p, evr_prov_inst_t *in,
                             evr_err_t *err);
/*  A runner in a container (a podman provider), in->ctr set; the
    service's client is made at the first start.  EVR_OK, or why in err. */
evr_rc_t evr_prov_child_podman(evr_prov_t *pv, const evr_prov_provider_t *p,
                               evr_prov_inst_t *in, evr_err_t *err);
/*  /bin/sh -c CMD for runner id: its stdout a pipe into *out when out
    (else with its stderr), its stderr a pipe into *err_fd (an
    evr_prov_errtail_t's).  Returns the pid, or -1 (why in err). */
pid_t evr_prov_child_shell(evr_prov_t *pv, const char *cmd, const char *id, int *out,
                           int *err_fd, evr_err_t *err);
/*  Reads what t's command wrote on its stderr since the last call,
    keeping its last EVR_PROV_ERR_KEEP bytes; at its end, written to in's
    log (evr_prov_child_err_write).  what: "start command's stderr",
    "stop command's output". */
void evr_prov_child_err_read(const evr_prov_t *pv, const evr_prov_inst_t *in,
                             evr_prov_errtail_t *t, const char *what);
/*  t's kept bytes into in's log, after a line saying how many came
    before them when some did; t's pipe closed. */
void evr_prov_child_err_write(const evr_prov_t *pv, const evr_prov_inst_t *in,
                              evr_prov_errtail_t *t, const char *what);
/*  in's record DIR/commands/ID (a command provider's runner;
    evr_prov_record_save).  EVR_OK, or why in err. */
evr_rc_t evr_prov_child_record_save(const evr_prov_t *pv, const evr_prov_inst_t *in,
                                    evr_err_t *err);
/*  evr_prov_child_record_save for what changed of a started command
    runner (a failure is logged); nothing for other kinds. */
void evr_prov_child_record_update(const evr_prov_t *pv, const evr_prov_inst_t *in);
/*  in is gone: its record too (a command provider's). */
void evr_prov_child_record_forget(const evr_prov_t *pv, const evr_prov_inst_t *in);

#endif
