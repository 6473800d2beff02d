/*  evr_prov_run.c: starting, watching and stopping the runners of
    evrun-provisioner (evr_prov_run.h; its matching passes:
    evr_prov_pass.c; the children themselves, their output and records:
    evr_prov_child.c).

    Each runner started is an instance: its runner id (PROVIDER-SUFFIX),
    its provider, the child to reap (the process runner, or the command
    provider's start or stop command) and, for a command provider, the
    handle its start printed.  An instance counts against its provider's
    max and max_runners from its start until its runner is gone (process:
    reaped; command: listed lost or stopped, or no longer listed, after
    its hello) or
    its start failed.  Children run in their own session with stdin from
    /dev/null and output in DIR/logs/ID.log (evr_prov_child.c).

    A command provider's runner has a record DIR/commands/ID, written
    before its start command runs and again when its handle is read and
    when its runner says hello: a provisioner killed and started again
    finds it there (evr_prov_adopt_command), as it finds a process
    runner by its lock and a podman one by its container.  The record
    goes with the instance (its runner gone, its start failed, or stopped
    at the provisioner's stop before its hello).
*/
#include <errno.h>
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
#include "evr_prov_run_int.h"
#include "evr_ulid.h"
#include "evr_unit.h"

#define S_WHO "evrun-provisioner"
#define S_KILL_AFTER_NS 5000000000ull


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

static void s_stop(evr_prov_t *pv, evr_prov_inst_t *in, uint64_t now);
static void s_ctr_gone(evr_prov_t *pv, evr_prov_inst_t *in);

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
s_ctr_name(const evr_prov_inst_t *in)
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
        evr_prov_inst_t *in = pv->inst[i];
        if (in->out >= 0)
            close(in->out);
        if (in->start_err.fd >= 0)   /* what is kept of a command still running */
            evr_prov_child_err_write(pv, in, &in->start_err, "start command's stderr");
        if (in->stop_err.fd >= 0)
            evr_prov_child_err_write(pv, in, &in->stop_err, "stop command's output");
        if (in->ended && in->pid <= 0 && in->stop_pid <= 0)   /* gone for good, stopped */
            evr_prov_child_record_forget(pv, in);
        free(in);
    }
    free(pv->inst);
    for (size_t i = 0; i < pv->nstranded; i++)
        free(pv->stranded[i]);
    free(pv->stranded);
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

static void
s_counted(evr_prov_t *pv, evr_prov_inst_t *in, bool ok, const char *why)
{
    evr_prov_provider_t *p = &pv->cfg.providers[in->provider];
    if (!ok)
        evr_log_warn(S_WHO, "provider %s: runner %s: a failed start: %s", p->name, in->id, why);
    if (evr_prov_start_done(p, ok, why))
        evr_log_error(S_WHO, "provider %s paused: %s", p->name, p->paused);
}

/*  in ends: no longer counted (its child may still be reaped). */
static void
s_end(evr_prov_t *pv, evr_prov_inst_t *in)
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
s_stop(evr_prov_t *pv, evr_prov_inst_t *in, uint64_t now)
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
    else if (!p->stop)   /* the log line before said "stopping it": nothing can */
        evr_log_warn(S_WHO, "provider %s: runner %s: left running: the provider has no stop "
                     "command (what its start command left running, if anything, runs on; "
                     "give the provider a stop with {handle})", p->name, in->id);
    if (!p->stop || !in->have_handle)
        return;
    evr_err_t err;
    char *cmd = evr_prov_expand(p->stop, NULL, NULL, in->id, pv->endpoint, in->handle, &err);
    if (in->stop_err.fd >= 0)   /* a stop before: what it kept goes first */
        evr_prov_child_err_write(pv, in, &in->stop_err, "stop command's output");
    pid_t pid = cmd ? evr_prov_child_shell(pv, cmd, in->id, NULL, &in->stop_err.fd, &err) : -1;
    if (pid < 0)
        evr_log_warn(S_WHO, "provider %s: runner %s: stop: %s", p->name, in->id, err.msg);
    else {   /* reaped by evr_prov_tend (s_stop_reaped), ended past register_timeout */
        in->stop_pid = pid;
        in->stop_at = now + (uint64_t) pv->cfg.register_timeout_s * 1000000000ull;
        evr_log_info(S_WHO, "provider %s: runner %s: stop started (pid %d)", p->name, in->id,
                     (int) pid);
    }
    free(cmd);
}

/*  A new instance id of provider pi, counted from now (not listed yet). */
static evr_prov_inst_t *
s_inst_new(uint32_t pi, const char *id, uint64_t now)
{
    evr_prov_inst_t *in = evr_calloc(1, sizeof *in);
    snprintf(in->id, sizeof in->id, "%s", id);
    in->provider = pi;
    in->out = -1;
    in->start_err.fd = in->stop_err.fd = -1;
    in->started = now;
    return in;
}

/*  Lists in among pv's instances, running for its provider. */
static void
s_inst_add(evr_prov_t *pv, evr_prov_inst_t *in)
{
    if (pv->n == pv->cap) {
        pv->cap = pv->cap ? pv->cap * 2 : 16;
        pv->inst = evr_realloc(pv->inst, pv->cap * sizeof *pv->inst);
    }
    pv->inst[pv->n++] = in;
    pv->cfg.providers[in->provider].running++;
}

bool
evr_prov_start_one(evr_prov_t *pv, uint32_t pi, const char *job, const char *what,
        const evr_strlist_t *jlabels, uint64_t now)
{
    evr_prov_provider_t *p = &pv->cfg.providers[pi];
    char ulid[EVR_ULID_LEN + 1], id[sizeof ((evr_prov_inst_t *) NULL)->id];
    evr_ulid_new(ulid);
    for (char *c = ulid; *c; c++)
        *c = (char) (*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    snprintf(id, sizeof id, "%s-%s", p->name, ulid + 16);
    evr_prov_inst_t *in = s_inst_new(pi, id, now);
    char *sub[] = { evr_asprintf("%s/logs", pv->dir), evr_asprintf("%s/runners", pv->dir) };
    for (int i = 0; i < 2; i++) {
        mkdir(sub[i], 0700);
        free(sub[i]);
    }
    evr_err_t err = { 0 };
    if (p->kind == EVR_PROV_PROCESS)
        in->pid = evr_prov_child_process(pv, p, in, &err);
    else if (p->kind == EVR_PROV_PODMAN) {
        in->pid = evr_prov_child_podman(pv, p, in, &err) ? -1 : 0;
        in->started = evr_mono_ns();   /* register_timeout from now: the calls took time */
    }
    else {
        /* its record first: a runner started is one a provisioner started
           again after a kill can find */
        char *labels = evr_prov_joined(jlabels);
        char *cmd = evr_prov_expand(p->start, job, labels, in->id, pv->endpoint, NULL, &err);
        in->pid = !cmd || evr_prov_child_record_save(pv, in, &err) ? -1
                : evr_prov_child_shell(pv, cmd, in->id, &in->out, &in->start_err.fd, &err);
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

/*  in's handle (its first output line) is read: kept, said (its control
    characters escaped) and recorded. */
static void
s_handle_read(evr_prov_t *pv, evr_prov_inst_t *in)
{
    char shown[4 * EVR_PROV_HANDLE_MAX + 8];
    in->handle[in->hlen] = '\0';
    in->have_handle = true;
    evr_log_info(S_WHO, "provider %s: runner %s: handle %s", pv->cfg.providers[in->provider].name,
                 in->id, evr_text_escape_ctl(in->handle, shown, sizeof shown));
    evr_prov_child_record_update(pv, in);
}

/*  in's first output line is longer than a handle is kept: none is (a
    cut one would name something else to its stop), a failed start. */
static void
s_handle_long(evr_prov_t *pv, evr_prov_inst_t *in)
{
    char why[256];
    if (in->ended || in->registered || in->stopping)
        return;
    snprintf(why, sizeof why, "the start command's first output line (the handle) is over %d "
             "bytes: none kept, its stop cannot run; the start command is stopped (see "
             "%s/logs/%s.log)", EVR_PROV_HANDLE_MAX, pv->dir, in->id);
    s_counted(pv, in, false, why);
    s_stop(pv, in, evr_mono_ns());   /* SIGTERM to a start command that runs on */
    s_end(pv, in);
}

/*  A command provider's start: its first output line is the handle. */
static void
s_read_handle(evr_prov_t *pv, evr_prov_inst_t *in)
{
    char buf[512];
    for (;;) {
        ssize_t n = read(in->out, buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            close(in->out);
            in->out = -1;
            if (!in->have_handle && !in->long_handle && in->hlen)   /* a last line, no newline */
                s_handle_read(pv, in);
            return;
        }
        bool done = in->have_handle || in->long_handle;
        for (ssize_t i = 0; i < n && !done; i++) {
            if ((buf[i] == '\n' || buf[i] == '\r') && in->hlen)
                done = true;
            else if (buf[i] == '\n' || buf[i] == '\r')
                continue;
            else if (in->hlen < EVR_PROV_HANDLE_MAX)
                in->handle[in->hlen++] = buf[i];
            else {
                done = in->long_handle = true;
                s_handle_long(pv, in);
            }
        }
        if (done && !in->have_handle && !in->long_handle)   /* the rest is read and dropped */
            s_handle_read(pv, in);
    }
}

/*  How a child that wait status st describes ended, for the log: "exited
    with status N", or "was killed by SIGKILL (signal 9)" (not 137, which
    an exit could be too); into buf, returned. */
static const char *
s_ended(int st, char *buf, size_t size)
{
    char how[64];
    if (WIFSIGNALED(st))
        snprintf(buf, size, "was %s", evr_wait_text(st, how, sizeof how));
    else
        snprintf(buf, size, "exited with status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return buf;
}

/*  A child of in ended with status st. */
static void
s_reaped(evr_prov_t *pv, evr_prov_inst_t *in, int st)
{
    evr_prov_provider_t *p = &pv->cfg.providers[in->provider];
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    char ended[96];
    s_ended(st, ended, sizeof ended);
    in->pid = 0;
    if (in->ended)
        return;
    char why[256];
    if (p->kind == EVR_PROV_PROCESS) {
        /* 0, 1: it ran a job; 3: it waited for one: it said hello */
        bool ran = code == 0 || code == 1 || code == 3;
        if (!in->registered && !in->stopping) {
            snprintf(why, sizeof why, "the runner %s before saying hello (see %s/logs/%s.log)",
                     ended, pv->dir, in->id);
            s_counted(pv, in, ran, why);
        }
        s_end(pv, in);
        return;
    }
    if (in->out >= 0)
        s_read_handle(pv, in);
    if (code && !in->registered && !in->stopping) {
        snprintf(why, sizeof why, "the start command %s (see %s/logs/%s.log)%s",
                 ended, pv->dir, in->id, in->have_handle && p->stop ? "; its stop runs with the "
                 "handle it printed" : "");
        s_counted(pv, in, false, why);
        if (in->have_handle)   /* it may have started a runner: not left uncounted */
            s_stop(pv, in, evr_mono_ns());
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
s_hello(evr_prov_t *pv, evr_prov_inst_t *in, const evr_prov_runner_t *r, uint64_t now)
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

/*  A command runner that said hello, against its listing r (NULL: not
    listed): gone once listed stopped (it said goodbye), or listed lost
    or not at all for register_timeout (it died: the broker's lease
    policy).  Not at once: a restarted broker lists it lost, or not at
    all, until its next hello, and a runner still running counts against
    max. */
static void
s_command_away(evr_prov_t *pv, evr_prov_inst_t *in, const evr_prov_runner_t *r, uint64_t now)
{
    if (r && !strcmp(r->state, "stopped")) {
        s_end(pv, in);
        if (in->pid > 0)   /* its start command runs on: 5 s more, then stopped */
            in->term_at = now + S_KILL_AFTER_NS;
    }
    else if (r && !evr_msg_state_away(r->state))
        in->away_at = 0;
    else if (!in->away_at)
        in->away_at = now;
    else if (now - in->away_at > (uint64_t) pv->cfg.register_timeout_s * 1000000000ull) {
        evr_log_info(S_WHO, "provider %s: runner %s listed %s for %u s (register_timeout): "
                     "counted gone", pv->cfg.providers[in->provider].name, in->id,
                     r ? r->state : "not at all", pv->cfg.register_timeout_s);
        s_end(pv, in);
    }
}

/*  in against the broker's list (NULL: not asked this time). */
static void
s_check_listed(evr_prov_t *pv, evr_prov_inst_t *in, const evr_prov_runner_t *runners, size_t n,
               uint64_t now)
{
    evr_prov_provider_t *p = &pv->cfg.providers[in->provider];
    const evr_prov_runner_t *r = runners ? s_listed(runners, n, in->id) : NULL;
    if (r && (r->credit || !strcmp(r->state, "busy")
              || (in->adopted && evr_msg_state_away(r->state))))
        in->took = true;   /* an adopted one first listed leaving: no slot either */
    /* a restarted broker lists a runner of a job it recovered lost, with
       no labels, until the runner's next hello: no labels to judge yet */
    bool unknown = r && evr_msg_state_away(r->state) && (!r->labels || !r->labels->n);
    if (!in->registered && r) {   /* listed, lost too: it said hello (and maybe left) */
        in->registered = true;
        evr_prov_child_record_update(pv, in);
        if (in->adopted)   /* not a start of this provisioner's: not counted */
            evr_log_info(S_WHO, "provider %s: adopted runner %s is listed (%s)", p->name,
                         in->id, r->state);
        else if (unknown)
            in->unjudged = true;
        else
            s_hello(pv, in, r, now);
    }
    else if (in->unjudged && r && !unknown) {
        in->unjudged = false;
        s_hello(pv, in, r, now);
    }
    if (in->registered && !in->ended && runners && p->kind == EVR_PROV_COMMAND)
        s_command_away(pv, in, r, now);
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
s_spared(evr_prov_t *pv, evr_prov_inst_t *in)
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
        evr_prov_inst_t *in = pv->inst[i];
        if (in->adopted && in->pid > 0 && kill(in->pid, 0) && errno == ESRCH) {
            in->pid = 0;
            s_end(pv, in);
        }
    }
}

/*  A podman runner's container is gone: the runner too. */
static void
s_ctr_gone(evr_prov_t *pv, evr_prov_inst_t *in)
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
s_tend_ctr(evr_prov_t *pv, evr_prov_inst_t *in, bool listed, uint64_t now)
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

/*  in's stop command ended with status st: said when it failed. */
static void
s_stop_reaped(evr_prov_t *pv, evr_prov_inst_t *in, int st)
{
    char ended[96];
    in->stop_pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        evr_log_warn(S_WHO, "provider %s: runner %s: its stop %s (see %s/logs/%s.log)",
                     pv->cfg.providers[in->provider].name, in->id,
                     s_ended(st, ended, sizeof ended), pv->dir, in->id);
}

/*  in's stop command still runs register_timeout after it started: SIGTERM
    to its process group, SIGKILL 5 s later (a hung stop is not left
    running, one per stopped runner). */
static void
s_stop_overdue(evr_prov_t *pv, evr_prov_inst_t *in, uint64_t now)
{
    if (in->stop_termed) {
        kill(-in->stop_pid, SIGKILL);
        in->stop_at = UINT64_MAX;   /* reaped soon */
        return;
    }
    evr_log_warn(S_WHO, "provider %s: runner %s: its stop (pid %d) still runs after %u s "
                 "(register_timeout): stopping it", pv->cfg.providers[in->provider].name, in->id,
                 (int) in->stop_pid, pv->cfg.register_timeout_s);
    kill(-in->stop_pid, SIGTERM);
    in->stop_termed = true;
    in->stop_at = now + S_KILL_AFTER_NS;
}

/*  A command runner said goodbye 5 s ago and its start command still
    runs (it printed the handle and waits on): SIGTERM to its process
    group, SIGKILL 5 s later, so that no start command of a runner gone
    is left running, nor its pipe open. */
static void
s_term_start(evr_prov_t *pv, evr_prov_inst_t *in, uint64_t now)
{
    evr_log_warn(S_WHO, "provider %s: runner %s said goodbye 5 s ago; its start command (pid "
                 "%d) still runs: stopping it", pv->cfg.providers[in->provider].name, in->id,
                 (int) in->pid);
    kill(-in->pid, SIGTERM);
    in->term_at = 0;
    in->left_start = in->stopping = true;
    in->kill_at = now + S_KILL_AFTER_NS;
}

void
evr_prov_tend(evr_prov_t *self, const evr_prov_runner_t *runners, size_t nrunners,
              uint64_t now)
{
    bool back = self->unasked && runners;
    self->unasked = !runners;
    for (size_t i = 0; i < self->n; i++) {   /* the list first: a runner gone since said hello */
        evr_prov_inst_t *in = self->inst[i];
        if (back && !in->registered)   /* no hello could reach the broker: a full wait again */
            in->started = now;
        if (in->out >= 0)
            s_read_handle(self, in);
        evr_prov_child_err_read(self, in, &in->start_err, "start command's stderr");
        evr_prov_child_err_read(self, in, &in->stop_err, "stop command's output");
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
            else if (self->inst[i]->stop_pid == pid)
                s_stop_reaped(self, self->inst[i], st);
    s_adopted_gone(self);
    size_t keep = 0;
    for (size_t i = 0; i < self->n; i++) {
        evr_prov_inst_t *in = self->inst[i];
        if (in->term_at && in->pid > 0 && now > in->term_at)
            s_term_start(self, in, now);
        if (in->stop_pid > 0 && now > in->stop_at)
            s_stop_overdue(self, in, now);
        if (in->stopping && in->pid > 0 && in->kill_at && now > in->kill_at) {
            if (!s_spared(self, in)) {
                kill(-in->pid, SIGKILL);
                kill(in->pid, SIGKILL);
            }
            in->kill_at = 0;
        }
        if (in->ended && in->pid <= 0 && in->out < 0 && !in->ctr && in->stop_pid <= 0
            && in->start_err.fd < 0 && in->stop_err.fd < 0) {
            evr_prov_child_record_forget(self, in);
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
    evr_prov_inst_t *in = s_inst_new((uint32_t) pi, id, now);
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
    evr_prov_inst_t *in = s_inst_new((uint32_t) pi, id, now);
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

/* ----------------------------------------------------------------- stop */

void
evr_prov_stop(evr_prov_t *self, const evr_prov_runner_t *runners, size_t n, uint64_t now)
{
    for (size_t i = 0; i < self->n; i++) {
        evr_prov_inst_t *in = self->inst[i];
        evr_prov_provider_t *p = &self->cfg.providers[in->provider];
        const evr_prov_runner_t *r = runners ? s_listed(runners, n, in->id) : NULL;
        if (in->ended && in->term_at && in->pid > 0)   /* its runner said goodbye */
            s_term_start(self, in, now);
        if (in->ended) {   /* stopped already (register_timeout): its container may go yet */
            in->parting = in->ctr || (in->stopping && in->pid > 0);
            continue;
        }
        if (!in->registered && r) {
            in->registered = true;
            evr_prov_child_record_update(self, in);
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
s_parted(evr_prov_t *pv, evr_prov_inst_t *in)
{
    char *top = evr_asprintf("%s/runners/%s", pv->dir, in->id);
    in->parting = false;
    in->ctr = false;
    evr_prov_child_record_forget(pv, in);   /* a command's: its stop ran */
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
            else if (self->inst[i]->stop_pid == pid)
                s_stop_reaped(self, self->inst[i], st);
    s_adopted_gone(self);
    size_t left = 0;
    for (size_t i = 0; i < self->n; i++) {
        evr_prov_inst_t *in = self->inst[i];
        bool there = false, exited = false;
        evr_err_t err;
        evr_prov_child_err_read(self, in, &in->start_err, "start command's stderr");
        evr_prov_child_err_read(self, in, &in->stop_err, "stop command's output");
        if (in->stop_pid > 0) {   /* a stop runs (this one's, or register_timeout's): waited */
            left++;
            continue;
        }
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
        evr_prov_inst_t *in = self->inst[i];
        if (in->stop_pid > 0) {   /* the record stays: the next provisioner stops it again */
            evr_log_warn(S_WHO, "runner %s: its stop (pid %d) did not end within 5 s of the "
                         "provisioner's stop: killing it; its record stays in %s/commands for "
                         "the next provisioner on it, which runs the stop again", in->id,
                         (int) in->stop_pid, self->dir);
            kill(-in->stop_pid, SIGKILL);
            if (in->pid <= 0)
                continue;
        }
        if (!in->parting)
            continue;
        evr_err_t err;
        if (!in->left_start && (in->registered || !runners || s_listed(runners, n, in->id))) {
            evr_log_warn(S_WHO, "runner %s did not exit within 5 s of SIGTERM: left running "
                         "(%s)", in->id, runners ? "it said hello: it may have taken a job"
                         : "the broker did not answer: it may have taken a job");
            continue;
        }
        if (in->left_start) {   /* the runner is gone: only its start command is left */
            evr_log_warn(S_WHO, "runner %s: its start command did not exit within 5 s of "
                         "SIGTERM (its runner said goodbye): killing it", in->id);
            if (in->pid > 0)
                kill(-in->pid, SIGKILL);
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
