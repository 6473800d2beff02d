/*  evr_spec_run.c: what a pipeline asks of the place its steps run: the
    image pull policy, the network and the resource limits, at pipeline
    and step level.  The step's value wins over the pipeline's, the
    pipeline's over the default; limits merge key by key.  The checks here
    are part of evr_spec_validate(): which executor takes which key. */
#include "evr_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t
evr_spec_step_pull(const evr_spec_t *spec, const evr_step_t *st)
{
    if (st && st->pull != EVR_PULL_UNSET)
        return st->pull;
    return spec->pull != EVR_PULL_UNSET ? spec->pull : EVR_PULL_MISSING;
}

uint32_t
evr_spec_step_network(const evr_spec_t *spec, const evr_step_t *st)
{
    if (st && st->network != EVR_NETWORK_UNSET)
        return st->network;
    return spec->network != EVR_NETWORK_UNSET ? spec->network : EVR_NETWORK_BRIDGE;
}

void
evr_spec_limits_merge(const evr_spec_t *spec, const evr_step_t *st, evr_limits_t *out)
{
    const evr_limits_t *p = &spec->limits, *s = st ? &st->limits : NULL;
    memset(out, 0, sizeof *out);
    out->present = p->present || (s && s->present);
#define S_PICK(k) out->k = s && s->k ? s->k : p->k
    S_PICK(nofile);
    S_PICK(nproc);
    S_PICK(cpu);
    S_PICK(memory);
    S_PICK(pids);
#undef S_PICK
    const char *cpus = s && s->cpus ? s->cpus : p->cpus;
    out->cpus = cpus ? evr_strdup(cpus) : NULL;
}

bool
evr_spec_cpus_milli(const char *s, uint32_t *milli)
{
    uint64_t whole = 0, frac = 0;
    unsigned decimals = 0;
    const char *p = s;
    if (!p || *p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9') {
        whole = whole * 10 + (uint64_t) (*p++ - '0');
        if (whole > EVR_SPEC_MAX_CPUS)
            return false;
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9') {
            if (++decimals > 3)
                return false;
            frac = frac * 10 + (uint64_t) (*p++ - '0');
        }
    }
    while (decimals++ < 3)
        frac *= 10;
    uint64_t m = whole * 1000 + frac;
    if (*p || m == 0 || m > EVR_SPEC_MAX_CPUS * 1000u)
        return false;
    *milli = (uint32_t) m;
    return true;
}

/*  The keys of a limits record (at path) the executor does not take. */
static void
s_check_limits(const evr_limits_t *l, uint32_t executor, const char *path, evr_diag_t *diag)
{
    char p[160];
    if (!l->present)
        return;
    bool process = executor == EVR_EXECUTOR_PROCESS;
    static const char *const host_only = "applies to process steps only (setrlimit of each "
                                         "process); a podman step takes cpus, memory and pids";
    static const char *const podman_only = "applies to podman steps only (a container's "
                                           "cgroup); a process step takes nofile, nproc, cpu "
                                           "and memory";
    struct { const char *key; bool set; bool ok; } keys[] = {
        { "nofile", l->nofile != 0, process },
        { "nproc", l->nproc != 0, process },
        { "cpu", l->cpu != 0, process },
        { "cpus", l->cpus != NULL, !process },
        { "pids", l->pids != 0, !process },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(keys); i++)
        if (keys[i].set && !keys[i].ok) {
            snprintf(p, sizeof p, "%s.%s", path, keys[i].key);
            evr_diag_add(diag, p, "%s: remove it", process ? podman_only : host_only);
        }
    uint32_t milli = 0;
    if (!process && l->cpus && evr_spec_cpus_milli(l->cpus, &milli) && milli < 10) {
        /* a CFS quota of milli * 100 us a 100 ms period: the kernel's least is 1 ms */
        snprintf(p, sizeof p, "%s.cpus", path);
        evr_diag_add(diag, p, "%s is below podman's smallest CPU limit, 0.01 (1 ms of CPU "
                     "time per 100 ms)", l->cpus);
    }
    if (!process && l->memory && l->memory < EVR_SPEC_MIN_MEMORY) {
        snprintf(p, sizeof p, "%s.memory", path);
        evr_diag_add(diag, p, "%llu bytes is below podman's smallest memory limit, 6M",
                     (unsigned long long) l->memory);
    }
}

/*  pull / network set where the executor has no such thing. */
static void
s_check_podman_only(uint32_t executor, uint32_t pull, uint32_t network, const char *prefix,
                    evr_diag_t *diag)
{
    char p[160];
    if (executor != EVR_EXECUTOR_PROCESS)
        return;
    if (pull != EVR_PULL_UNSET) {
        snprintf(p, sizeof p, "%spull", prefix);
        evr_diag_add(diag, p, "a process pipeline runs on the host and pulls no image: "
                              "remove pull");
    }
    if (network != EVR_NETWORK_UNSET) {
        snprintf(p, sizeof p, "%snetwork", prefix);
        evr_diag_add(diag, p, "a process pipeline runs in the host's network; network "
                              "applies to podman steps only: remove it");
    }
}

/*  untrusted in a process pipeline: its step would run as the runner's
    user, who reads what the runner reads (the runner's environment and
    --secrets-dir, the hooks' STATE/hooks/JOB.json, STATE/job-secrets): it
    would be given no secret and could take them all. */
static void
s_check_untrusted(uint32_t executor, bool untrusted, const char *prefix, evr_diag_t *diag)
{
    char p[96];
    if (!untrusted || executor != EVR_EXECUTOR_PROCESS)
        return;
    snprintf(p, sizeof p, "%suntrusted", prefix);
    evr_diag_add(diag, p, "a process pipeline's steps run as the runner's user, who can read "
                          "the job's secrets (the runner's environment and secrets directory, "
                          "the hooks' and registered ones in its state directory): untrusted "
                          "code needs executor podman");
}

void
evr_spec_validate_run(const evr_spec_t *spec, evr_diag_t *diag)
{
    char p[64];
    s_check_podman_only(spec->executor, spec->pull, spec->network, "", diag);
    s_check_limits(&spec->limits, spec->executor, "limits", diag);
    if (spec->registry_auth && spec->executor == EVR_EXECUTOR_PROCESS)
        evr_diag_add(diag, "registry_auth", "a process pipeline pulls no image: remove "
                                            "registry_auth");
    else if (spec->registry_auth && !evr_spec_env_name_ok(spec->registry_auth))
        evr_diag_add(diag, "registry_auth", "invalid secret name \"%s\" (an environment "
                     "variable name, as under secrets)", spec->registry_auth);
    for (uint32_t i = 0; i < spec->steps.n; i++) {
        const evr_step_t *st = evr_spec_step(spec, i);
        evr_spec_path_idx(p, sizeof p, "steps[", i, "].");
        s_check_podman_only(spec->executor, st->pull, st->network, p, diag);
        s_check_untrusted(spec->executor, st->untrusted, p, diag);
        evr_spec_path_idx(p, sizeof p, "steps[", i, "].limits");
        s_check_limits(&st->limits, spec->executor, p, diag);
    }
    if (spec->on_error.present) {
        s_check_podman_only(spec->executor, spec->on_error.pull, spec->on_error.network,
                            "on_error.", diag);
        s_check_untrusted(spec->executor, spec->on_error.untrusted, "on_error.", diag);
        s_check_limits(&spec->on_error.limits, spec->executor, "on_error.limits", diag);
    }
}
