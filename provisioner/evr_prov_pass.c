/*  evr_prov_pass.c: evrun-provisioner's matching passes (evr_prov_run.h):
    the jobs and demand that no runner's free slot takes get a runner of
    the first provider that matches and has room (--dry-run: said, not
    started); and the providers' table of --status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "evr_log.h"
#include "evr_msg.h"
#include "evr_prov_run_int.h"

#define S_WHO "evrun-provisioner"

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
        const evr_prov_inst_t *in = pv->inst[i];
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

/*  evr_prov_subset, ignoring case. */
static bool
s_subset_nocase(const evr_strlist_t *need, const evr_strlist_t *have)
{
    for (uint32_t i = 0; i < need->n; i++) {
        bool found = false;
        for (uint32_t k = 0; k < have->n && !found; k++)
            found = !strcasecmp(need->v[i], have->v[k]);
        if (!found)
            return false;
    }
    return true;
}

/*  Whether j was said to have no provider with its labels. */
static bool
s_was_stranded(const evr_prov_t *pv, const char *id)
{
    for (size_t i = 0; i < pv->nstranded; i++)
        if (!strcmp(pv->stranded[i], id))
            return true;
    return false;
}

/*  A job (or demand) whose labels no provider has, and no runner the
    broker lists idle or busy: nothing will ever run it unless a runner
    with them connects.  Said once (a warning) while it waits, with the
    labels it asks for and those each provider offers. */
static void
s_stranded(evr_prov_t *pv, const evr_prov_job_t *j, const char *labels,
           const evr_prov_runner_t *runners, size_t nr)
{
    for (uint32_t i = 0; i < pv->cfg.nproviders; i++)
        if (evr_prov_subset(j->labels, &pv->cfg.providers[i].match))
            return;     /* full or paused: it may start one later (said as such) */
    for (size_t i = 0; i < nr; i++)
        if ((!strcmp(runners[i].state, "idle") || !strcmp(runners[i].state, "busy"))
            && evr_prov_subset(j->labels, runners[i].labels))
            return;     /* a runner with them takes it when it has a free slot */
    if (s_was_stranded(pv, j->id))
        return;
    char offered[1024] = "";   /* the log line holds 2048 bytes */
    size_t at = 0;
    for (uint32_t i = 0; i < pv->cfg.nproviders && at + 1 < sizeof offered; i++) {
        char *have = evr_prov_joined(&pv->cfg.providers[i].match);
        int w = snprintf(offered + at, sizeof offered - at, "%s%s offers %s", i ? "; " : "",
                         pv->cfg.providers[i].name, have);
        at = w < 0 ? at : at + (size_t) w;
        free(have);
    }
    if (at + 1 >= sizeof offered)
        memcpy(offered + sizeof offered - 4, "...", 4);
    const char *ci = NULL;      /* GitHub's runs-on labels are case-insensitive, these not */
    for (uint32_t i = 0; i < pv->cfg.nproviders && !ci; i++)
        if (s_subset_nocase(j->labels, &pv->cfg.providers[i].match))
            ci = pv->cfg.providers[i].name;
    evr_log_warn(S_WHO, "%s %s asks for labels %s that no provider has (%s): no runner will be "
                 "started for it; it waits for a runner with them to connect%s%s%s",
                 j->demand ? "demand" : "job", j->id, labels,
                 pv->cfg.nproviders ? offered : "none", ci ? " (provider " : "", ci ? ci : "",
                 ci ? " has them in another case: labels match case and all)" : "");
    pv->stranded = evr_realloc(pv->stranded, (pv->nstranded + 1) * sizeof *pv->stranded);
    pv->stranded[pv->nstranded++] = evr_strdup(j->id);
}

/*  The jobs said stranded that no longer wait (not in jobs) are
    forgotten: the memory holds the waiting ones only. */
static void
s_stranded_prune(evr_prov_t *pv, const evr_prov_job_t *jobs, size_t njobs)
{
    size_t k = 0;
    for (size_t i = 0; i < pv->nstranded; i++) {
        bool waits = false;
        for (size_t m = 0; m < njobs && !waits; m++)
            waits = !strcmp(jobs[m].id, pv->stranded[i]);
        if (waits)
            pv->stranded[k++] = pv->stranded[i];
        else
            free(pv->stranded[i]);
    }
    pv->nstranded = k;
}

/*  --dry-run: when the start the pass is at (pv->dry_starts before it)
    is past start_rate's burst, when it would go (a provisioner started
    now: its bucket full), said; the pass gives the job its provider, the
    start waits for its token. */
static void
s_dry_rate(const evr_prov_t *pv, FILE *out)
{
    double wait = ((double) pv->dry_starts + 1 - pv->cfg.burst) / pv->cfg.rate;
    if (wait <= 0)
        return;
    fprintf(out, "  not at once: start_rate allows %.0f start%s at once, then one each %.3g s: "
            "this one in about %u s\n", pv->cfg.burst, pv->cfg.burst == 1 ? "" : "s",
            1 / pv->cfg.rate, (unsigned) (wait + 0.999));
}

/*  One job of a pass (what: "job ID", or a demand's runner): a free
    slot, else a start (dry: said). */
static void
s_pass_job(evr_prov_t *pv, const char *what, const evr_prov_job_t *j, s_slot_t *slots,
           size_t ns, const evr_prov_runner_t *runners, size_t nr, bool dry, FILE *out,
           uint64_t now)
{
    char *labels = evr_prov_joined(j->labels);
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
            bool any = false;   /* a provider with the labels: full or paused, now */
            for (uint32_t i = 0; i < pv->cfg.nproviders && !any; i++)
                any = evr_prov_subset(j->labels, &pv->cfg.providers[i].match);
            fprintf(out, "%s (labels %s): %s\n", what, labels, any ? "no provider can start a "
                    "runner now" : "no provider has these labels: none will start a runner "
                    "for it");
            s_print_why(out, why);
        }
        else
            s_stranded(pv, j, labels, runners, nr);
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
        s_dry_rate(pv, out);
        if (pod)
            s_dry_image(pv, p, out);
        p->running++;   /* the next jobs of this pass see it (never used again: dry) */
        pv->dry_starts++;
    }
    else if (!evr_prov_bucket_take(&pv->bucket, &pv->cfg, now))
        evr_log_debug(S_WHO, "%s waits: start_rate reached", what);
    else
        evr_prov_start_one(pv, (uint32_t) pi, j->demand ? "" : j->id, what, j->labels, now);
    free(labels);
}

/*  A demand entry: each runner it wants as one job. */
static void
s_pass_demand(evr_prov_t *pv, const evr_prov_job_t *j, s_slot_t *slots, size_t ns,
              const evr_prov_runner_t *runners, size_t nr, bool dry, FILE *out, uint64_t now)
{
    if (dry)
        fprintf(out, "demand %s: %u runner%s wanted, %u s left%s%s\n", j->id, j->demand,
                j->demand == 1 ? "" : "s", j->ttl, j->reason ? ": " : "",
                j->reason ? j->reason : "");
    for (uint32_t k = 0; k < j->demand; k++) {
        char what[160];
        snprintf(what, sizeof what, "demand %s runner %u of %u (%u s left)", j->id, k + 1,
                 j->demand, j->ttl);
        s_pass_job(pv, what, j, slots, ns, runners, nr, dry, out, now);
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
            s_pass_demand(self, &jobs[i], slots, ns, runners, nrunners, dry, out, now);
        else
            s_pass_job(self, what, &jobs[i], slots, ns, runners, nrunners, dry, out, now);
    }
    if (!dry)
        s_stranded_prune(self, jobs, njobs);
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
        char run[32], *labels = evr_prov_joined(&p->match);
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

