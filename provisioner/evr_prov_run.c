/*  evr_prov_run.c: starting, watching and stopping the runners of
    evrun-provisioner, and its matching passes (evr_prov_run.h).

    Each runner started is an instance: its runner id (PROVIDER-SUFFIX),
    its provider, the child to reap (the process runner, or the command
    provider's start or stop command) and, for a command provider, the
    handle its start printed.  An instance counts against its provider's
    max and max_runners from its start until its runner is gone (process:
    reaped; command: listed lost or stopped, or no longer listed, after
    its hello) or
    its start failed.  Children run in their own session with stdin from
    /dev/null and output in DIR/logs/ID.log.

    A command provider's runner has a record DIR/commands/ID, written
    before its start command runs and again when its handle is read and
    when its runner says hello: a provisioner killed and started again
    finds it there (evr_prov_adopt_command), as it finds a process
    runner by its lock and a podman one by its container.  The record
    goes with the instance (its runner gone, its start failed, or stopped
    at the provisioner's stop before its hello).
*/
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_log.h"
#include "evr_msg.h"
#include "evr_podman.h"
#include "evr_prov_podman.h"
#include "evr_prov_run.h"
#include "evr_ulid.h"
#include "evr_unit.h"

#define S_WHO "evrun-provisioner"
#define S_HANDLE_MAX 256
#define S_KILL_AFTER_NS 5000000000ull

typedef struct {
    char id[80];
    uint32_t provider;
    pid_t pid;              /* the child to reap; 0: none */
    int out;                /* command: the start command's stdout; -1: none */
    char handle[S_HANDLE_MAX + 1];
    size_t hlen;
    bool have_handle, registered, ended, stopping;
    bool took;              /* listed with credit or busy: the broker's list counts it now */
    bool parting;           /* told to stop at the provisioner's stop; not gone yet */
    bool adopted;           /* started by an earlier provisioner on DIR: pid no child */
    bool ctr;               /* podman: its container may still be there */
    uint64_t gone_at;       /* podman: when its container was first seen gone (0: not) */
    uint64_t started, kill_at;
} s_inst_t;

struct evr_prov {
    evr_prov_config_t cfg;
    char *dir, *runner, *endpoint;
    s_inst_t **inst;
    size_t n, cap;
    evr_prov_bucket_t bucket;
    uint32_t dry_starts;    /* --dry-run: the starts the pass would make */
    evr_prov_podman_t *podman;  /* the podman providers' service, made at their first start */
    bool unasked;           /* the broker did not answer the last tend: its runners unknown */
};

evr_prov_t *
evr_prov_new(evr_prov_config_t *cfg, const char *dir, const char *runner,
             const char *runner_endpoint)
{
    evr_prov_t *pv = evr_calloc(1, sizeof *pv);
    pv->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    pv->dir = evr_strdup(dir);
    pv->runner = evr_strdup(runner);
    pv->endpoint = evr_strdup(runner_endpoint);
    return pv;
}

static void s_stop(evr_prov_t *pv, s_inst_t *in, uint64_t now);
static void s_ctr_gone(evr_prov_t *pv, s_inst_t *in);
static void s_cmd_forget(const evr_prov_t *pv, const s_inst_t *in);

bool
evr_prov_has_podman(const evr_prov_t *self)
{
    for (uint32_t i = 0; i < self->cfg.nproviders; i++)
        if (self->cfg.providers[i].kind == EVR_PROV_PODMAN)
            return true;
    return false;
}

evr_prov_podman_t *
evr_prov_podman_client(evr_prov_t *self, evr_err_t *err)
{
    if (!self->podman) {
        char *url = self->cfg.podman_url ? evr_strdup(self->cfg.podman_url)
                                         : evr_podman_default_url();
        self->podman = evr_prov_podman_new(url, err);
        free(url);
    }
    return self->podman;
}

/*  A podman runner's container (static). */
static const char *
s_ctr_name(const s_inst_t *in)
{
    static char name[sizeof "evrun-runner-" + sizeof in->id];
    snprintf(name, sizeof name, "evrun-runner-%s", in->id);
    return name;
}

void
evr_prov_destroy(evr_prov_t **self_p)
{
    evr_prov_t *pv = *self_p;
    if (!pv)
        return;
    for (size_t i = 0; i < pv->n; i++) {
        s_inst_t *in = pv->inst[i];
        if (in->out >= 0)
            close(in->out);
        if (in->ended && in->pid <= 0)   /* gone for good: the next tend would have */
            s_cmd_forget(pv, in);
        free(in);
    }
    free(pv->inst);
    evr_prov_podman_destroy(&pv->podman);
    evr_prov_config_free(&pv->cfg);
    free(pv->dir);
    free(pv->runner);
    free(pv->endpoint);
    free(pv);
    *self_p = NULL;
}

uint32_t
evr_prov_running(const evr_prov_t *self)
{
    uint32_t n = 0;
    for (size_t i = 0; i < self->n; i++)
        n += !self->inst[i]->ended;
    return n;
}

/* -------------------------------------------------------------- children */

/*  Forks a child in its own session: stdin /dev/null, stderr (and stdout
    unless out_pipe) into log; argv run (execv).  out_pipe: the read end
    of its stdout (non-blocking).  Returns the pid, or -1 (why in err). */
static pid_t
s_spawn(char *const *argv, const char *log, int *out_pipe, evr_err_t *err)
{
    int p[2] = { -1, -1 };
    if (out_pipe && pipe(p)) {
        evr_err_set(err, EVR_ERR_IO, "pipe: %s", strerror(errno));
        return -1;
    }
    int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (lfd < 0) {
        evr_err_set(err, EVR_ERR_IO, "%s: %s", log, strerror(errno));
        if (out_pipe) {
            close(p[0]);
            close(p[1]);
        }
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        dup2(out_pipe ? p[1] : lfd, 1);
        dup2(lfd, 2);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execvp(argv[0], argv);
        dprintf(2, "evrun-provisioner: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int e = errno;
    close(lfd);
    if (out_pipe) {
        close(p[1]);
        if (pid < 0)
            close(p[0]);
        else {
            fcntl(p[0], F_SETFL, O_NONBLOCK);
            fcntl(p[0], F_SETFD, FD_CLOEXEC);
            *out_pipe = p[0];
        }
    }
    if (pid < 0)
        evr_err_set(err, EVR_ERR_IO, "fork: %s", strerror(e));
    return pid;
}

static char *
s_log_path(const evr_prov_t *pv, const char *id)
{
    return evr_asprintf("%s/logs/%s.log", pv->dir, id);
}

/* ------------------------------------------------ command runners' records */

static bool
s_is_command(const evr_prov_t *pv, const s_inst_t *in)
{
    return pv->cfg.providers[in->provider].kind == EVR_PROV_COMMAND;
}

/*  in's record (a command provider's runner; evr_prov_record_save). */
static evr_rc_t
s_cmd_save(const evr_prov_t *pv, const s_inst_t *in, evr_err_t *err)
{
    return evr_prov_record_save(pv->dir, in->id, in->have_handle ? in->handle : NULL,
                                in->registered, err);
}

/*  s_cmd_save for what changed of a started runner (a failure is said:
    a provisioner started again would know less of it). */
static void
s_cmd_update(const evr_prov_t *pv, const s_inst_t *in)
{
    evr_err_t err;
    if (s_is_command(pv, in) && s_cmd_save(pv, in, &err))
        evr_log_warn(S_WHO, "runner %s: its record: %s", in->id, err.msg);
}

/*  in is gone: its record too (a command provider's). */
static void
s_cmd_forget(const evr_prov_t *pv, const s_inst_t *in)
{
    if (s_is_command(pv, in))
        evr_prov_record_forget(pv->dir, in->id);
}

static char *
s_joined(const evr_strlist_t *l)
{
    char *s = evr_strdup("");
    size_t len = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        if (i)
            evr_prov_append(&s, &len, ",", 1);
        evr_prov_append(&s, &len, l->v[i], strlen(l->v[i]));
    }
    return s;
}

/*  evrun-runner --once --clean for in (a process provider). */
static pid_t
s_start_process(evr_prov_t *pv, const evr_prov_provider_t *p, s_inst_t *in, evr_err_t *err)
{
    char *labels = s_joined(&p->labels), *execs = s_joined(&p->executors);
    char *state = evr_asprintf("%s/runners/%s", pv->dir, in->id);
    char *log = s_log_path(pv, in->id);
    const char *fixed[] = { pv->runner, "--broker", pv->endpoint, "--once", "--clean", "--id",
                            in->id, "--labels", labels, "--executors", execs, "--state-dir",
                            state };
    size_t nf = EVR_ARRAY_LEN(fixed);
    char **argv = evr_calloc(nf + p->args.n + 1, sizeof *argv);
    for (size_t i = 0; i < nf; i++)
        argv[i] = (char *) fixed[i];
    for (uint32_t i = 0; i < p->args.n; i++)
        argv[nf + i] = p->args.v[i];
    pid_t pid = s_spawn(argv, log, NULL, err);
    free(argv);
    free(labels);
    free(execs);
    free(state);
    free(log);
    return pid;
}

/*  A runner in a container (a podman provider); the service's client is
    made at the first start.  EVR_OK, or why in err. */
static evr_rc_t
s_start_podman(evr_prov_t *pv, const evr_prov_provider_t *p, s_inst_t *in, evr_err_t *err)
{
    if (!evr_prov_podman_client(pv, err))
        return EVR_ERR_CONFIG;
    char abs[PATH_MAX];
    if (!realpath(pv->dir, abs))
        return evr_err_set(err, EVR_ERR_IO, "%s: %s", pv->dir, strerror(errno));
    char *labels = s_joined(&p->labels), *execs = s_joined(&p->executors);
    evr_rc_t rc = evr_prov_podman_start(pv->podman, p, in->id, abs, pv->endpoint, labels,
                                        execs, err);
    in->ctr = !rc;
    free(labels);
    free(execs);
    return rc;
}

/*  /bin/sh -c CMD, its stdout a pipe when out. */
static pid_t
s_start_shell(evr_prov_t *pv, const char *cmd, const char *id, int *out, evr_err_t *err)
{
    char *log = s_log_path(pv, id);
    char *argv[] = { "/bin/sh", "-c", (char *) cmd, NULL };
    pid_t pid = s_spawn(argv, log, out, err);
    free(log);
    return pid;
}

static void
s_counted(evr_prov_t *pv, s_inst_t *in, bool ok, const char *why)
{
    evr_prov_provider_t *p = &pv->cfg.providers[in->provider];
    if (!ok)
        evr_log_warn(S_WHO, "provider %s: runner %s: a failed start: %s", p->name, in->id, why);
    if (evr_prov_start_done(p, ok, why))
        evr_log_error(S_WHO, "provider %s paused: %s", p->name, p->paused);
}

/*  in ends: no longer counted (its child may still be reaped). */
static void
s_end(evr_prov_t *pv, s_inst_t *in)
{
    if (in->ended)
        return;
    in->ended = true;
    evr_prov_provider_t *p = &pv->cfg.providers[in->provider];
    if (p->running)
        p->running--;
}

/*  Stops a runner that has not said hello: SIGTERM (SIGKILL later) to a
    process runner, the stop template for a command provider's. */
static void
s_stop(evr_prov_t *pv, s_inst_t *in, uint64_t now)
{
    evr_prov_provider_t *p = &pv->cfg.providers[in->provider];
    in->stopping = true;
    if (p->kind == EVR_PROV_PODMAN) {
        evr_err_t err;
        if (in->ctr && pv->podman && evr_prov_podman_term(pv->podman, s_ctr_name(in), &err))
            evr_log_warn(S_WHO, "provider %s: runner %s: stop: %s", p->name, in->id, err.msg);
        in->kill_at = now + S_KILL_AFTER_NS;
        return;
    }
    if (p->kind == EVR_PROV_PROCESS) {
        if (in->pid > 0)
            kill(in->pid, SIGTERM);
        in->kill_at = now + S_KILL_AFTER_NS;
        return;
    }
    if (in->pid > 0) {   /* the start command still runs */
        kill(-in->pid, SIGTERM);
        in->kill_at = now + S_KILL_AFTER_NS;
    }
    if (!p->stop || !in->have_handle)
        return;
    evr_err_t err;
    char *cmd = evr_prov_expand(p->stop, "", "", in->id, pv->endpoint, in->handle, &err);
    pid_t pid = cmd ? s_start_shell(pv, cmd, in->id, NULL, &err) : -1;
    if (pid < 0)    /* else reaped by evr_prov_tend as any child */
        evr_log_warn(S_WHO, "provider %s: runner %s: stop: %s", p->name, in->id, err.msg);
    else
        evr_log_info(S_WHO, "provider %s: runner %s: stop started (pid %d)", p->name, in->id,
                     (int) pid);
    free(cmd);
}

/*  A new instance id of provider pi, counted from now (not listed yet). */
static s_inst_t *
s_inst_new(uint32_t pi, const char *id, uint64_t now)
{
    s_inst_t *in = evr_calloc(1, sizeof *in);
    snprintf(in->id, sizeof in->id, "%s", id);
    in->provider = pi;
    in->out = -1;
    in->started = now;
    return in;
}

/*  Lists in among pv's instances, running for its provider. */
static void
s_inst_add(evr_prov_t *pv, s_inst_t *in)
{
    if (pv->n == pv->cap) {
        pv->cap = pv->cap ? pv->cap * 2 : 16;
        pv->inst = evr_realloc(pv->inst, pv->cap * sizeof *pv->inst);
    }
    pv->inst[pv->n++] = in;
    pv->cfg.providers[in->provider].running++;
}

/*  Starts a runner of provider pi for job (its labels; "" for demand),
    what for the log; the instance is counted from now.  false when it
    could not start (a failed start). */
static bool
s_start(evr_prov_t *pv, uint32_t pi, const char *job, const char *what,
        const evr_strlist_t *jlabels, uint64_t now)
{
    evr_prov_provider_t *p = &pv->cfg.providers[pi];
    char ulid[EVR_ULID_LEN + 1], id[sizeof ((s_inst_t *) NULL)->id];
    evr_ulid_new(ulid);
    for (char *c = ulid; *c; c++)
        *c = (char) (*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    snprintf(id, sizeof id, "%s-%s", p->name, ulid + 16);
    s_inst_t *in = s_inst_new(pi, id, now);
    char *sub[] = { evr_asprintf("%s/logs", pv->dir), evr_asprintf("%s/runners", pv->dir) };
    for (int i = 0; i < 2; i++) {
        mkdir(sub[i], 0700);
        free(sub[i]);
    }
    evr_err_t err = { 0 };
    if (p->kind == EVR_PROV_PROCESS)
        in->pid = s_start_process(pv, p, in, &err);
    else if (p->kind == EVR_PROV_PODMAN) {
        in->pid = s_start_podman(pv, p, in, &err) ? -1 : 0;
        in->started = evr_mono_ns();   /* register_timeout from now: the calls took time */
    }
    else {
        /* its record first: a runner started is one a provisioner started
           again after a kill can find */
        char *labels = s_joined(jlabels);
        char *cmd = evr_prov_expand(p->start, job, labels, in->id, pv->endpoint, NULL, &err);
        in->pid = !cmd || s_cmd_save(pv, in, &err) ? -1
                : s_start_shell(pv, cmd, in->id, &in->out, &err);
        free(cmd);
        free(labels);
    }
    s_inst_add(pv, in);
    p->started++;
    if (in->pid < 0) {
        in->pid = 0;
        s_end(pv, in);
        s_counted(pv, in, false, err.msg);
        return false;
    }
    if (p->kind == EVR_PROV_PODMAN)
        evr_log_info(S_WHO, "provider %s: started runner %s for %s (container %s of %s, "
                     "log %s/logs/%s.log)", p->name, in->id, what, s_ctr_name(in), p->image,
                     pv->dir, in->id);
    else
        evr_log_info(S_WHO, "provider %s: started runner %s for %s (pid %d, log "
                     "%s/logs/%s.log)", p->name, in->id, what, (int) in->pid, pv->dir, in->id);
    return true;
}

/*  A command provider's start: its first output line is the handle. */
static void
s_read_handle(evr_prov_t *pv, s_inst_t *in)
{
    char buf[512];
    for (;;) {
        ssize_t n = read(in->out, buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            close(in->out);
            in->out = -1;
            if (!in->have_handle && in->hlen) {   /* a last line with no newline */
                in->have_handle = true;
                in->handle[in->hlen] = '\0';
                evr_log_info(S_WHO, "provider %s: runner %s: handle %s",
                             pv->cfg.providers[in->provider].name, in->id, in->handle);
                s_cmd_update(pv, in);
            }
            return;
        }
        bool had = in->have_handle;
        for (ssize_t i = 0; i < n && !in->have_handle; i++) {
            if (buf[i] == '\n' || buf[i] == '\r') {
                in->have_handle = in->hlen > 0;
                in->handle[in->hlen] = '\0';
            }
            else if (in->hlen < S_HANDLE_MAX)
                in->handle[in->hlen++] = buf[i];
        }
        if (!had && in->have_handle) {   /* the rest of the output is read and dropped */
            evr_log_info(S_WHO, "provider %s: runner %s: handle %s",
                         pv->cfg.providers[in->provider].name, in->id, in->handle);
            s_cmd_update(pv, in);
        }
    }
}

/*  A child of in ended with status st. */
static void
s_reaped(evr_prov_t *pv, s_inst_t *in, int st)
{
    evr_prov_provider_t *p = &pv->cfg.providers[in->provider];
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    in->pid = 0;
    if (in->ended)
        return;
    char why[256];
    if (p->kind == EVR_PROV_PROCESS) {
        /* 0, 1: it ran a job; 3: it waited for one: it said hello */
        bool ran = code == 0 || code == 1 || code == 3;
        if (!in->registered && !in->stopping) {
            snprintf(why, sizeof why, "the runner exited with status %d before saying hello "
                     "(see %s/logs/%s.log)", code, pv->dir, in->id);
            s_counted(pv, in, ran, why);
        }
        s_end(pv, in);
        return;
    }
    if (in->out >= 0)
        s_read_handle(pv, in);
    if (code && !in->registered && !in->stopping) {
        snprintf(why, sizeof why, "the start command exited with status %d (see %s/logs/%s.log)",
                 code, pv->dir, in->id);
        s_counted(pv, in, false, why);
        s_end(pv, in);
    }
    else if (!in->have_handle && !in->registered && !in->stopping) {
        snprintf(why, sizeof why, "the start command printed no handle (its first output "
                 "line; see %s/logs/%s.log)", pv->dir, in->id);
        s_counted(pv, in, false, why);
        s_end(pv, in);
    }
}

static const evr_prov_runner_t *
s_listed(const evr_prov_runner_t *runners, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(runners[i].id, id))
            return &runners[i];
    return NULL;
}

/*  Listed waiting for a job: idle, nothing dispatched to it, a free slot. */
static bool
s_waits(const evr_prov_runner_t *r)
{
    return !strcmp(r->state, "idle") && !r->running && r->credit;
}

/*  in's first listing (r): a good start when r has the provider's
    labels (and executor labels); else a failed start naming those it
    lacks, and the runner stopped when it waits for a job. */
static void
s_hello(evr_prov_t *pv, s_inst_t *in, const evr_prov_runner_t *r, uint64_t now)
{
    evr_prov_provider_t *p = &pv->cfg.providers[in->provider];
    if (evr_prov_subset(&p->match, r->labels)) {
        evr_log_info(S_WHO, "provider %s: runner %s said hello", p->name, in->id);
        s_counted(pv, in, true, NULL);
        return;
    }
    char why[1024];
    int at = snprintf(why, sizeof why, "runner %s said hello without the provider's labels: "
                      "it lacks", in->id);
    for (uint32_t i = 0; i < p->match.n && at > 0 && (size_t) at < sizeof why; i++) {
        evr_strlist_t one = { .v = &p->match.v[i], .n = 1 };
        if (!evr_prov_subset(&one, r->labels))
            at += snprintf(why + at, sizeof why - (size_t) at, " %s", p->match.v[i]);
    }
    bool waits = s_waits(r);
    evr_log_warn(S_WHO, "provider %s: %s%s", p->name, why,
                 waits ? ": stopping it" : " (it has a job: left to finish it)");
    if (waits) {
        s_stop(pv, in, now);
        s_end(pv, in);
    }
    s_counted(pv, in, false, why);
}

/*  in against the broker's list (NULL: not asked this time). */
static void
s_check_listed(evr_prov_t *pv, s_inst_t *in, const evr_prov_runner_t *runners, size_t n,
               uint64_t now)
{
    evr_prov_provider_t *p = &pv->cfg.providers[in->provider];
    const evr_prov_runner_t *r = runners ? s_listed(runners, n, in->id) : NULL;
    if (r && (r->credit || !strcmp(r->state, "busy")
              || (in->adopted && evr_msg_state_away(r->state))))
        in->took = true;   /* an adopted one first listed leaving: no slot either */
    if (!in->registered && r) {   /* listed, lost too: it said hello (and maybe left) */
        in->registered = true;
        s_cmd_update(pv, in);
        if (in->adopted)   /* not a start of this provisioner's: not counted */
            evr_log_info(S_WHO, "provider %s: adopted runner %s is listed (%s)", p->name,
                         in->id, r->state);
        else
            s_hello(pv, in, r, now);
    }
    else if (in->registered && runners && p->kind == EVR_PROV_COMMAND
             && (!r || evr_msg_state_away(r->state)))
        s_end(pv, in);    /* its job is done, it left (stopped), or it died (lost: the
                             broker's lease policy) */
    if (!in->registered && !in->stopping && runners
        && now - in->started > (uint64_t) pv->cfg.register_timeout_s * 1000000000ull) {
        char why[160];
        snprintf(why, sizeof why, "%srunner %s did not say hello within %u s (register_timeout)",
                 in->adopted ? "adopted " : "", in->id, pv->cfg.register_timeout_s);
        evr_log_warn(S_WHO, "provider %s: %s: stopping it", p->name, why);
        s_stop(pv, in, now);
        if (!in->adopted)
            s_counted(pv, in, false, why);
        s_end(pv, in);
    }
}

/*  A runner told to stop (SIGTERM) that is still there past its 5 s: a
    process or podman runner the broker listed (it said hello, maybe
    took a job) is not killed: it stops as its --stop-timeout says
    (said once, kill_at then cleared by the caller). */
static bool
s_spared(evr_prov_t *pv, s_inst_t *in)
{
    if (!in->registered || pv->cfg.providers[in->provider].kind == EVR_PROV_COMMAND)
        return false;
    evr_log_warn(S_WHO, "runner %s still runs 5 s after SIGTERM; it said hello (it may have "
                 "a job): not killed, it stops by itself", in->id);
    in->kill_at = 0;
    return true;
}

/*  The adopted process runners that are no more: ended (no child of
    this one's to reap; their --clean removed their directory). */
static void
s_adopted_gone(evr_prov_t *pv)
{
    for (size_t i = 0; i < pv->n; i++) {
        s_inst_t *in = pv->inst[i];
        if (in->adopted && in->pid > 0 && kill(in->pid, 0) && errno == ESRCH) {
            in->pid = 0;
            s_end(pv, in);
        }
    }
}

/*  A podman runner's container is gone: the runner too. */
static void
s_ctr_gone(evr_prov_t *pv, s_inst_t *in)
{
    in->ctr = false;
    s_end(pv, in);
    char *top = evr_asprintf("%s/runners/%s", pv->dir, in->id);
    evr_err_t err;
    /* a runner that said hello kept its state when not all was
       acknowledged (then top stays); one that never did holds nothing */
    if (in->registered)
        rmdir(top);
    else if (evr_unit_rmtree(top, &err))
        evr_log_warn(S_WHO, "runner %s: %s", in->id, err.msg);
    free(top);
}

/*  A podman runner's container, asked after the broker's list (listed:
    it was asked this time).  A container gone before its runner was
    listed is a failed start only at the next list (the runner may have
    said hello and left between the list and this question). */
static void
s_tend_ctr(evr_prov_t *pv, s_inst_t *in, bool listed, uint64_t now)
{
    evr_prov_provider_t *p = &pv->cfg.providers[in->provider];
    bool there, exited;
    evr_err_t err;
    if (evr_prov_podman_state(pv->podman, s_ctr_name(in), &there, &exited, &err)) {
        evr_log_warn(S_WHO, "provider %s: runner %s: %s (asked again in a moment)", p->name,
                     in->id, err.msg);
        return;
    }
    if (there && (exited || (in->stopping && in->kill_at && now > in->kill_at
                             && !s_spared(pv, in)))) {
        in->kill_at = 0;   /* podman removes an exited one itself: this makes sure */
        if (evr_prov_podman_remove(pv->podman, s_ctr_name(in), 0, &err))
            evr_log_warn(S_WHO, "provider %s: runner %s: %s", p->name, in->id, err.msg);
        return;
    }
    if (there)
        return;
    if (in->registered || in->stopping || in->ended) {
        s_ctr_gone(pv, in);
        return;
    }
    if (!in->gone_at || !listed) {
        if (!in->gone_at)
            in->gone_at = now;
        return;
    }
    char why[512];
    snprintf(why, sizeof why, "the runner's container %s ended before its runner said hello "
             "(see %s/logs/%s.log)", s_ctr_name(in), pv->dir, in->id);
    s_counted(pv, in, false, why);
    s_ctr_gone(pv, in);
}

void
evr_prov_tend(evr_prov_t *self, const evr_prov_runner_t *runners, size_t nrunners,
              uint64_t now)
{
    bool back = self->unasked && runners;
    self->unasked = !runners;
    for (size_t i = 0; i < self->n; i++) {   /* the list first: a runner gone since said hello */
        s_inst_t *in = self->inst[i];
        if (back && !in->registered)   /* no hello could reach the broker: a full wait again */
            in->started = now;
        if (in->out >= 0)
            s_read_handle(self, in);
        if (!in->ended)
            s_check_listed(self, in, runners, nrunners, now);
        else if (runners && !in->registered && s_listed(runners, nrunners, in->id))
            in->registered = true;   /* stopped, it said hello after all: s_spared */
        if (in->ctr && self->podman)
            s_tend_ctr(self, in, runners != NULL, now);
    }
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        for (size_t i = 0; i < self->n; i++)
            if (self->inst[i]->pid == pid)
                s_reaped(self, self->inst[i], st);
    s_adopted_gone(self);
    size_t keep = 0;
    for (size_t i = 0; i < self->n; i++) {
        s_inst_t *in = self->inst[i];
        if (in->stopping && in->pid > 0 && in->kill_at && now > in->kill_at) {
            if (!s_spared(self, in)) {
                kill(-in->pid, SIGKILL);
                kill(in->pid, SIGKILL);
            }
            in->kill_at = 0;
        }
        if (in->ended && in->pid <= 0 && in->out < 0 && !in->ctr) {
            s_cmd_forget(self, in);
            free(in);
        }
        else
            self->inst[keep++] = in;
    }
    self->n = keep;
}

/*  The provider of kind whose name and a 10-character suffix make id; -1
    when none. */
static int
s_provider_of(const evr_prov_t *pv, const char *id, evr_prov_kind_t kind)
{
    size_t len = strlen(id);
    for (uint32_t i = 0; i < pv->cfg.nproviders; i++) {
        const evr_prov_provider_t *p = &pv->cfg.providers[i];
        size_t nl = strlen(p->name);
        if (len == nl + 11 && !strncmp(id, p->name, nl) && id[nl] == '-' && len < 80
            && p->kind == kind)
            return (int) i;
    }
    return -1;
}

bool
evr_prov_adopt(evr_prov_t *self, const char *id, pid_t pid, bool ctr, uint64_t now)
{
    int pi = s_provider_of(self, id, ctr ? EVR_PROV_PODMAN : EVR_PROV_PROCESS);
    if (pi < 0)
        return false;
    /* register_timeout from now: a broker that lists it not, stops it */
    s_inst_t *in = s_inst_new((uint32_t) pi, id, now);
    in->pid = pid;
    in->ctr = ctr;
    in->adopted = true;
    s_inst_add(self, in);
    const char *name = self->cfg.providers[pi].name;
    if (ctr)
        evr_log_info(S_WHO, "provider %s: adopted runner %s of an earlier provisioner "
                     "(container %s)", name, id, s_ctr_name(in));
    else
        evr_log_info(S_WHO, "provider %s: adopted runner %s of an earlier provisioner "
                     "(pid %d)", name, id, (int) pid);
    return true;
}

bool
evr_prov_adopt_command(evr_prov_t *self, const char *id, const char *handle, bool hello,
                       uint64_t now)
{
    int pi = s_provider_of(self, id, EVR_PROV_COMMAND);
    if (pi < 0)
        return false;
    s_inst_t *in = s_inst_new((uint32_t) pi, id, now);
    in->adopted = true;
    in->registered = hello;
    if (handle && *handle) {
        snprintf(in->handle, sizeof in->handle, "%s", handle);
        in->hlen = strlen(in->handle);
        in->have_handle = true;
    }
    s_inst_add(self, in);
    const char *name = self->cfg.providers[pi].name;
    if (in->have_handle)
        evr_log_info(S_WHO, "provider %s: adopted runner %s of an earlier provisioner "
                     "(handle %s%s)", name, id, in->handle, hello ? "; it said hello" : "");
    else
        evr_log_warn(S_WHO, "provider %s: adopted runner %s of an earlier provisioner (its "
                     "start command's handle was never read: its stop cannot run%s)", name,
                     id, hello ? "; it said hello" : "");
    return true;
}

/* ----------------------------------------------------------------- pass */

typedef struct {
    const char *runner;         /* NULL: a runner started here, not registered yet */
    const evr_strlist_t *labels;
    uint32_t free;
} s_slot_t;

/*  The free slots: the runners' credit, and one per runner started here
    that the broker's list has not shown with credit or busy yet (before
    its hello, and between its hello and its first credit). */
static s_slot_t *
s_slots(const evr_prov_t *pv, const evr_prov_runner_t *runners, size_t nr, size_t *n)
{
    s_slot_t *v = evr_calloc(nr + pv->n + 1, sizeof *v);
    *n = 0;
    for (size_t i = 0; i < nr; i++)
        if (runners[i].credit && (!strcmp(runners[i].state, "idle")
                                  || !strcmp(runners[i].state, "busy")))
            v[(*n)++] = (s_slot_t) { runners[i].id, runners[i].labels, runners[i].credit };
    for (size_t i = 0; i < pv->n; i++) {
        const s_inst_t *in = pv->inst[i];
        if (!in->ended && !in->took)
            v[(*n)++] = (s_slot_t) { NULL, &pv->cfg.providers[in->provider].match, 1 };
    }
    return v;
}

static void
s_print_why(FILE *out, const char *why)
{
    for (const char *l = why; *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t) (nl - l) : strlen(l);
        fprintf(out, "  %s%.*s\n", strncmp(l, "max_runners ", 12) ? "not " : "", (int) len, l);
        l += len + (nl != NULL);
    }
}

/*  --dry-run: whether a podman provider's image is there, said when not. */
static void
s_dry_image(evr_prov_t *pv, const evr_prov_provider_t *p, FILE *out)
{
    evr_err_t err;
    bool there = false;
    if (!evr_prov_podman_client(pv, &err) || evr_prov_podman_image(pv->podman, p->image, &there,
                                                                  &err))
        fprintf(out, "  but podman cannot be asked: %s\n", err.msg);
    else if (!there)
        fprintf(out, "  but image %s is not in the store of podman at %s: build it with "
                "tools/build-runner-image (or podman pull or load it)\n", p->image,
                evr_prov_podman_url(pv->podman));
}

/*  One job of a pass (what: "job ID", or a demand's runner): a free
    slot, else a start (dry: said). */
static void
s_pass_job(evr_prov_t *pv, const char *what, const evr_prov_job_t *j, s_slot_t *slots,
           size_t ns, bool dry, FILE *out, uint64_t now)
{
    char *labels = s_joined(j->labels);
    for (size_t k = 0; k < ns; k++)
        if (slots[k].free && evr_prov_subset(j->labels, slots[k].labels)) {
            slots[k].free--;
            if (dry)
                fprintf(out, "%s (labels %s): %s%s\n", what, labels,
                        slots[k].runner ? "a free slot of runner " : "a runner started for "
                        "demand and not registered yet", slots[k].runner ? slots[k].runner : "");
            free(labels);
            return;
        }
    char why[4096];
    int pi = evr_prov_match(&pv->cfg, j->labels, evr_prov_running(pv) + pv->dry_starts, why,
                            sizeof why);
    if (pi < 0) {
        if (dry) {
            fprintf(out, "%s (labels %s): no provider can start a runner now\n", what, labels);
            s_print_why(out, why);
        }
        free(labels);
        return;
    }
    evr_prov_provider_t *p = &pv->cfg.providers[pi];
    if (dry) {
        bool pod = p->kind == EVR_PROV_PODMAN;
        fprintf(out, "%s (labels %s): provider %s would start a %s runner%s%s (%u/%u "
                "running)\n", what, labels, p->name, p->kind == EVR_PROV_PROCESS ? "process"
                : pod ? "podman" : "command", pod ? " of image " : "", pod ? p->image : "",
                p->running, p->max);
        s_print_why(out, why);
        if (pod)
            s_dry_image(pv, p, out);
        p->running++;   /* the next jobs of this pass see it (never used again: dry) */
        pv->dry_starts++;
    }
    else if (!evr_prov_bucket_take(&pv->bucket, &pv->cfg, now))
        evr_log_debug(S_WHO, "%s waits: start_rate reached", what);
    else
        s_start(pv, (uint32_t) pi, j->demand ? "" : j->id, what, j->labels, now);
    free(labels);
}

/*  A demand entry: each runner it wants as one job. */
static void
s_pass_demand(evr_prov_t *pv, const evr_prov_job_t *j, s_slot_t *slots, size_t ns, bool dry,
              FILE *out, uint64_t now)
{
    if (dry)
        fprintf(out, "demand %s: %u runner%s wanted, %u s left%s%s\n", j->id, j->demand,
                j->demand == 1 ? "" : "s", j->ttl, j->reason ? ": " : "",
                j->reason ? j->reason : "");
    for (uint32_t k = 0; k < j->demand; k++) {
        char what[160];
        snprintf(what, sizeof what, "demand %s runner %u of %u (%u s left)", j->id, k + 1,
                 j->demand, j->ttl);
        s_pass_job(pv, what, j, slots, ns, dry, out, now);
    }
}

void
evr_prov_pass(evr_prov_t *self, const evr_prov_job_t *jobs, size_t njobs,
              const evr_prov_runner_t *runners, size_t nrunners, bool dry, FILE *out,
              uint64_t now)
{
    size_t ns = 0;
    s_slot_t *slots = s_slots(self, runners, nrunners, &ns);
    for (size_t i = 0; i < njobs; i++) {
        char what[64];
        snprintf(what, sizeof what, "job %s", jobs[i].id);
        if (jobs[i].demand)
            s_pass_demand(self, &jobs[i], slots, ns, dry, out, now);
        else
            s_pass_job(self, what, &jobs[i], slots, ns, dry, out, now);
    }
    if (dry && !njobs)
        fprintf(out, "no job waits for a runner, no demand\n");
    free(slots);
}

void
evr_prov_print(const evr_prov_t *self, FILE *out)
{
    fprintf(out, "%-20s  %-10s  %-9s  %7s  %6s  %s\n", "PROVIDER", "STATE", "RUN/MAX",
            "STARTED", "FAILED", "LABELS");
    for (uint32_t i = 0; i < self->cfg.nproviders; i++) {
        const evr_prov_provider_t *p = &self->cfg.providers[i];
        char run[32], *labels = s_joined(&p->match);
        snprintf(run, sizeof run, "%u/%u", p->running, p->max);
        fprintf(out, "%-20s  %-10s  %-9s  %7u  %6u  %s%s%s\n", p->name,
                p->paused ? "paused" : "active", run, p->started, p->failed, labels,
                p->paused ? "\n    paused: " : "", p->paused ? p->paused : "");
        free(labels);
    }
}

uint32_t
evr_prov_count(const evr_prov_t *self)
{
    return self->cfg.nproviders;
}

void
evr_prov_describe(const evr_prov_t *self, uint32_t i, evr_msg_t *m)
{
    const evr_prov_provider_t *p = &self->cfg.providers[i];
    memset(m, 0, sizeof *m);
    m->type = EVR_MSG_PROVIDER;
    m->provider = p->name;
    m->labels = p->match;
    m->reason = p->paused;
    m->running = p->running;
    m->max = p->max;
    m->starts = p->started;
    m->failed_starts = p->failed;
}

/* ----------------------------------------------------------------- stop */

void
evr_prov_stop(evr_prov_t *self, const evr_prov_runner_t *runners, size_t n, uint64_t now)
{
    for (size_t i = 0; i < self->n; i++) {
        s_inst_t *in = self->inst[i];
        evr_prov_provider_t *p = &self->cfg.providers[in->provider];
        const evr_prov_runner_t *r = runners ? s_listed(runners, n, in->id) : NULL;
        if (in->ended) {   /* stopped already (register_timeout): its container may go yet */
            in->parting = in->ctr || (in->stopping && in->pid > 0);
            continue;
        }
        if (!in->registered && r) {
            in->registered = true;
            s_cmd_update(self, in);
        }
        if (!in->registered) {   /* no hello: no job (one it takes now it finishes) */
            evr_log_info(S_WHO, "runner %s has not said hello: stopping it", in->id);
            s_stop(self, in, now);
            in->parting = true;
        }
        else if (r && s_waits(r) && p->kind != EVR_PROV_COMMAND) {
            evr_err_t err;
            if (p->kind == EVR_PROV_PROCESS && in->pid > 0)
                kill(in->pid, SIGTERM);
            else if (p->kind == EVR_PROV_PODMAN && in->ctr && self->podman
                     && evr_prov_podman_term(self->podman, s_ctr_name(in), &err)) {
                evr_log_warn(S_WHO, "runner %s: %s", in->id, err.msg);
                continue;
            }
            evr_log_info(S_WHO, "runner %s waits for a job: stopping it", in->id);
            in->parting = true;
        }
        else if (!r || !evr_msg_state_away(r->state))
            evr_log_info(S_WHO, "runner %s left running: %s", in->id,
                         !runners ? "the broker did not answer (it may have a job)"
                         : !r ? "the broker does not list it"
                         : s_waits(r) ? "it waits for a job (its --once-wait ends it)"
                         : "it has a job, or its job is ending");
    }
}

/*  A stopped runner gone at the stop: its directory goes only when empty
    (the runner's --clean removed its state, or it made none): a runner
    that took a job after all keeps it. */
static void
s_parted(evr_prov_t *pv, s_inst_t *in)
{
    char *top = evr_asprintf("%s/runners/%s", pv->dir, in->id);
    in->parting = false;
    in->ctr = false;
    s_cmd_forget(pv, in);   /* a command's: its stop ran */
    rmdir(top);
    free(top);
}

size_t
evr_prov_stop_wait(evr_prov_t *self)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        for (size_t i = 0; i < self->n; i++)
            if (self->inst[i]->pid == pid)
                self->inst[i]->pid = 0;
    s_adopted_gone(self);
    size_t left = 0;
    for (size_t i = 0; i < self->n; i++) {
        s_inst_t *in = self->inst[i];
        bool there = false, exited = false;
        evr_err_t err;
        if (!in->parting)
            continue;
        if (in->ctr && self->podman
            && evr_prov_podman_state(self->podman, s_ctr_name(in), &there, &exited, &err))
            there = true;   /* not known: waited for */
        else if (there && exited)   /* podman removes it in a moment: this makes sure */
            there = evr_prov_podman_remove(self->podman, s_ctr_name(in), 0, &err) != EVR_OK;
        if (in->pid > 0 || there)
            left++;
        else
            s_parted(self, in);
    }
    return left;
}

void
evr_prov_stop_force(evr_prov_t *self, const evr_prov_runner_t *runners, size_t n)
{
    for (size_t i = 0; i < self->n; i++) {
        s_inst_t *in = self->inst[i];
        if (!in->parting)
            continue;
        evr_err_t err;
        if (in->registered || !runners || s_listed(runners, n, in->id)) {
            evr_log_warn(S_WHO, "runner %s did not exit within 5 s of SIGTERM: left running "
                         "(%s)", in->id, runners ? "it said hello: it may have taken a job"
                         : "the broker did not answer: it may have taken a job");
            continue;
        }
        evr_log_warn(S_WHO, "runner %s did not exit within 5 s of SIGTERM and never said "
                     "hello: killing it", in->id);
        if (in->pid > 0) {
            kill(-in->pid, SIGKILL);
            kill(in->pid, SIGKILL);
        }
        if (in->ctr && self->podman
            && evr_prov_podman_remove(self->podman, s_ctr_name(in), 0, &err))
            evr_log_warn(S_WHO, "runner %s: %s", in->id, err.msg);
        char *top = evr_asprintf("%s/runners/%s", self->dir, in->id);
        if (evr_unit_rmtree(top, &err))
            evr_log_warn(S_WHO, "runner %s: %s", in->id, err.msg);
        free(top);
    }
}
