/*  evr_exec.c: what all executors share (see evr_exec.h). */
#include <string.h>

#include "evr_exec.h"
#include "evr_spec.h"

const char *
evr_exec_state_name(evr_exec_state_t s)
{
    switch (s) {
    case EVR_EXEC_ABSENT: return "absent";
    case EVR_EXEC_CREATED: return "created";
    case EVR_EXEC_RUNNING: return "running";
    case EVR_EXEC_PAUSED: return "paused";
    case EVR_EXEC_EXITED: return "exited";
    }
    return "unknown";
}

void
evr_exec_destroy(evr_exec_t **ex_p)
{
    if (!ex_p || !*ex_p)
        return;
    evr_exec_t *ex = *ex_p;
    *ex_p = NULL;
    ex->ops->destroy(ex);
}

evr_exec_t *
evr_exec_find(evr_exec_t *const *list, const char *name)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(list[i]->ops->name, name) == 0)
            return list[i];
    return NULL;
}

bool
evr_exec_limits_ok(evr_exec_t *ex, const evr_spec_t *spec, evr_err_t *err)
{
    /* every step, then the on_error step (which has limits of its own) */
    for (uint32_t i = 0; ex && ex->ops->no_cgroup_limits && i <= spec->steps.n; i++) {
        const evr_step_t *st = i < spec->steps.n ? evr_spec_step(spec, i) : &spec->on_error;
        if (i == spec->steps.n && !spec->on_error.present)
            break;
        evr_limits_t l = { 0 };
        evr_spec_limits_merge(spec, st, &l);
        const char *key = l.memory ? "memory" : l.cpus ? "cpus" : l.pids ? "pids" : NULL;
        evr_rec_free(&evr_limits_type, &l);
        const char *why = key ? ex->ops->no_cgroup_limits(ex) : NULL;
        if (why) {
            evr_err_set(err, EVR_ERR_CONFIG, "step %s: limits: %s: this runner cannot apply "
                        "it: %s; remove the step's (or the pipeline's) cpus, memory and pids "
                        "limits, or send the job to a runner with root podman or cgroups v2",
                        st->name ? st->name : EVR_ON_ERROR_NAME, key, why);
            return false;
        }
        if (key)
            break;   /* the backend can: no step is refused */
    }
    return true;
}
