/*  evr_exec.c: what all executors share (see evr_exec.h). */
#include <string.h>

#include "evr_exec.h"

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
