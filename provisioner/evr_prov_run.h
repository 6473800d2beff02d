/*  evr_prov_run.h: the runners evrun-provisioner starts, and its passes.

    A pass takes the broker's waiting jobs and runners (as `jobs` and
    `runners` list them) and, oldest job first, gives each a free slot of
    a runner that has the job's labels (a runner's credit, or a runner
    started for demand that has not said hello yet), else starts a runner
    at the first provider with the labels and room (evr_prov_match),
    within max_runners and the start rate.  Kinds: process (evrun-runner
    --once --clean on this host, a fresh state directory each) and command
    (the start template run by /bin/sh; its first output line is the
    handle that {handle} names in the stop template; DIR/commands/ID
    records it).  A runner that has
    not said hello within register_timeout is stopped and counted as a
    failed start; so is a process runner or start command that ends before
    its runner said hello, and a runner whose hello lacks the provider's
    labels (stopped unless it has a job).
*/
#ifndef EVR_PROV_RUN_H_INCLUDED
#define EVR_PROV_RUN_H_INCLUDED

#include <stdio.h>

#include "evr_msg.h"
#include "evr_prov.h"
#include "evr_prov_podman.h"

typedef struct evr_prov evr_prov_t;

/*  A waiting job and a runner, as the broker lists them.  A demand entry
    (`demands`) is a job with demand set: the runners it still wants,
    each counted as one waiting job with its labels. */
typedef struct {
    const char *id;
    const evr_strlist_t *labels;
    uint32_t demand;            /* 0: a queued job */
    uint32_t ttl;               /* demand: seconds left */
    const char *reason;         /* demand: where it came from (NULL: unsaid) */
} evr_prov_job_t;

typedef struct {
    const char *id;
    const evr_strlist_t *labels;
    const char *state;          /* idle busy draining lost stopped */
    uint32_t credit;
    uint32_t running;           /* jobs dispatched to it and not ended */
} evr_prov_runner_t;

/*  cfg is taken (freed by destroy); dir holds the process runners' state
    directories (DIR/runners/ID) and logs (DIR/logs/ID.log);
    runner_endpoint is the broker's runner endpoint ({broker}). */
evr_prov_t *evr_prov_new(evr_prov_config_t *cfg, const char *dir, const char *runner,
                         const char *runner_endpoint);
/*  Frees self; the runners are left as they are (evr_prov_stop first). */
void evr_prov_destroy(evr_prov_t **self_p);

/*  The provisioner's stop, with the broker's runners asked afresh
    (runners NULL: it did not answer).  SIGTERM goes to the runners that
    have not said hello (a command provider's: its stop template) and
    to the process and podman runners listed idle with nothing
    dispatched to them; each runner has its own stop: one that took a
    job meanwhile waits its --stop-timeout for it.  The others are left
    running (their job, or its end), each said in the log. */
void evr_prov_stop(evr_prov_t *self, const evr_prov_runner_t *runners, size_t n,
                   uint64_t now);
/*  The runners told to stop not gone yet (reaped, their container
    removed), and the stop commands still running (their output read);
    the directories of those gone are removed when empty.  Call until 0
    or 5 s passed. */
size_t evr_prov_stop_wait(evr_prov_t *self);
/*  Those still there: killed (SIGKILL, the container removed, the
    directory too) when the broker's fresh list (runners; NULL: it did
    not answer, nothing killed) still does not show them; the others
    are left running, said in the log.  A stop command still running is
    killed (its process group), the runner's record kept for the next
    provisioner on the directory. */
void evr_prov_stop_force(evr_prov_t *self, const evr_prov_runner_t *runners, size_t n);

/*  Takes up runner id that an earlier provisioner on the same DIR
    started (evr_prov_adopt_all): pid its process (a process provider's;
    no child of this one: watched by kill 0), or its container (ctr, a
    podman provider's).  It counts against its provider (the one of its
    kind whose name and a 10-character suffix make id) from now, not as a
    start; one the broker does not list within register_timeout (it never
    said hello) is stopped, any other ends as a runner started here.
    false when no provider of the config fits id. */
bool evr_prov_adopt(evr_prov_t *self, const char *id, pid_t pid, bool ctr, uint64_t now);
/*  The same for a command provider's runner id, found by its record
    DIR/commands/ID: handle what its start printed (NULL or "": not read;
    then its stop cannot run), hello whether its runner said hello (listed
    by the broker).  One that said hello ends when the broker lists it
    lost or stopped, or no longer lists it; one that did not, as any
    adopted runner (stopped past register_timeout: its stop template). */
bool evr_prov_adopt_command(evr_prov_t *self, const char *id, const char *handle, bool hello,
                            uint64_t now);

/*  At the start (DIR/lock held): the runners an earlier provisioner on
    DIR left, adopted (evr_prov_adopt): process runners by the lock their
    state directory DIR/runners/ID holds (evrun.lock, its pid), podman
    runners by their containers' label evrun.provisioner, command
    runners by their records DIR/commands/ID (evr_prov_adopt_command).
    Said in the log, each; a state directory no runner holds stays (it
    holds a killed runner's log). */
void evr_prov_adopt_all(evr_prov_t *self, const char *dir, uint64_t now);

/*  A command provider's runner id's record DIR/commands/ID (dir: DIR):
    handle (NULL: not read yet) on its first line, then "hello" when its
    runner said it; whole or not at all (written aside, then renamed).
    EVR_OK, or EVR_ERR_IO (why in err). */
evr_rc_t evr_prov_record_save(const char *dir, const char *id, const char *handle, bool hello,
                              evr_err_t *err);
/*  Removes the record of runner id (none: nothing done). */
void evr_prov_record_forget(const char *dir, const char *id);

/*  Whether a provider of the config is of kind podman. */
bool evr_prov_has_podman(const evr_prov_t *self);

/*  The podman providers' service client, made at its first use; NULL
    (why in err) when the URL is not one. */
evr_prov_podman_t *evr_prov_podman_client(evr_prov_t *self, evr_err_t *err);

/*  One pass at now (mono ns): the jobs as given (the queued jobs oldest
    first, then the demand).  dry: nothing is started, the verdict on
    each job (and each runner a demand wants) is printed on out.  Log
    lines say what was started, failed, paused, and, once while it
    waits, each job or demand whose labels no provider has and no runner
    listed idle or busy has (the labels asked, those each provider
    offers). */
void evr_prov_pass(evr_prov_t *self, const evr_prov_job_t *jobs, size_t njobs,
                   const evr_prov_runner_t *runners, size_t nrunners, bool dry, FILE *out,
                   uint64_t now);

/*  Reaps children, reads start commands' handles, stops runners past
    register_timeout (call often).  runners NULL: the broker did not
    answer; no runner is stopped for its silence meanwhile, and those not
    registered get a whole register_timeout from the next list.  A
    command runner counts until listed stopped, or lost or unlisted for
    register_timeout; its start command still running 5 s after its
    goodbye, and a stop still running after register_timeout, get
    SIGTERM (their process group) and SIGKILL 5 s later. */
void evr_prov_tend(evr_prov_t *self, const evr_prov_runner_t *runners, size_t nrunners,
                   uint64_t now);

/*  The providers' table: NAME STATE RUNNING/MAX STARTED FAILED LABELS. */
void evr_prov_print(const evr_prov_t *self, FILE *out);

/*  Providers in the config. */
uint32_t evr_prov_count(const evr_prov_t *self);

/*  Provider i as a `provider` message (its strings borrowed from self:
    do not clear it). */
void evr_prov_describe(const evr_prov_t *self, uint32_t i, evr_msg_t *m);

/*  Runners started and not gone, all providers. */
uint32_t evr_prov_running(const evr_prov_t *self);

/*  A template with {job}, {labels}, {runner_id}, {broker}, {handle} put
    in, each value single-quoted for /bin/sh; NULL (why in err) when it
    names another {word} of [a-z_] (a typo), one whose value is NULL
    (a stop has no {job} nor {labels}, a start no {handle}), or grows
    past 16 KiB.  Other
    braces are the shell's and stay: ${VAR}, {a,b}, { cmd; }. */
char *evr_prov_expand(const char *tpl, const char *job, const char *labels,
                      const char *runner_id, const char *broker, const char *handle,
                      evr_err_t *err);
/*  Appends n bytes of s to *buf, a string of *len bytes (or NULL with
    *len 0): *buf grows, stays NUL-terminated, and *len counts the n. */
void evr_prov_append(char **buf, size_t *len, const char *s, size_t n);

#endif
