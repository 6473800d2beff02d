/*  evr_spec_range.c: the range of a spec's numbers (part of
    evr_spec_validate).  The wire and the YAML loader take any uint64 for
    a duration or a limit; what the runner and the broker compute from
    them (ms * 10^6 added to a clock, RLIMIT_CPU in seconds, podman's
    int64 limits) holds only below the EVR_SPEC_MAX_* of evr_spec.h, so a
    larger value is refused here, in a submit of either form, naming the
    field, the value and the maximum. */
#include "evr_spec.h"

#include <stdio.h>

static void
s_duration(const char *path, const char *key, uint64_t ms, evr_diag_t *diag)
{
    if (ms <= EVR_SPEC_MAX_DURATION_MS)
        return;
    char p[160], text[64];
    snprintf(p, sizeof p, "%s%s", path, key);
    evr_duration_format(ms, text, sizeof text);
    evr_diag_add(diag, p, "%llu ms (%s) is over the longest duration, %llu ms (3650d: 10 years)",
                 (unsigned long long) ms, text, (unsigned long long) EVR_SPEC_MAX_DURATION_MS);
}

static void
s_limit(const char *path, const char *key, uint64_t v, uint64_t max, const char *unit,
        const char *what, evr_diag_t *diag)
{
    if (v <= max)
        return;
    char p[160];
    snprintf(p, sizeof p, "%s%s", path, key);
    evr_diag_add(diag, p, "%llu%s is over the maximum, %llu%s (%s)", (unsigned long long) v,
                 unit, (unsigned long long) max, unit, what);
}

/*  A step's (or the spec's, at "") limits record at path ("limits.",
    "steps[2].limits."). */
static void
s_limits(const evr_limits_t *l, const char *path, evr_diag_t *diag)
{
    if (!l->present)
        return;
    s_duration(path, "cpu", l->cpu, diag);
    s_limit(path, "memory", l->memory, EVR_SPEC_MAX_MEMORY, " bytes", "1 PiB: 1024T", diag);
    s_limit(path, "nofile", l->nofile, EVR_SPEC_MAX_NOFILE, "", "2^30, above the kernel's highest "
            "fs.nr_open", diag);
    s_limit(path, "nproc", l->nproc, EVR_SPEC_MAX_PROCS, "", "the kernel's PID_MAX_LIMIT", diag);
    s_limit(path, "pids", l->pids, EVR_SPEC_MAX_PROCS, "", "the kernel's PID_MAX_LIMIT", diag);
}

/*  Step i's (i < 0: on_error's) numbers; its path is made only for an
    error (a submit's checks run for every submit). */
static void
s_step(const evr_step_t *st, int64_t i, evr_diag_t *diag)
{
    if (st->timeout <= EVR_SPEC_MAX_DURATION_MS && !st->limits.present)
        return;
    char at[64], p[128];
    if (i < 0)
        snprintf(at, sizeof at, "on_error");
    else
        evr_spec_path_idx(at, sizeof at, "steps[", (uint32_t) i, "]");
    snprintf(p, sizeof p, "%s.", at);
    s_duration(p, "timeout", st->timeout, diag);
    snprintf(p, sizeof p, "%s.limits.", at);
    s_limits(&st->limits, p, diag);
}

void
evr_spec_validate_range(const evr_spec_t *spec, evr_diag_t *diag)
{
    s_duration("", "timeout", spec->timeout, diag);
    s_duration("", "start_delay", spec->start_delay, diag);
    s_limits(&spec->limits, "limits.", diag);
    for (uint32_t i = 0; i < spec->steps.n; i++)
        s_step(evr_spec_step(spec, i), i, diag);
    if (spec->on_error.present)
        s_step(&spec->on_error, -1, diag);
}
