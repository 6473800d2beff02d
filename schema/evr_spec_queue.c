/*  evr_spec_queue.c: a pipeline's queue policy (`queue:` and
    `start_delay`), as the broker applies it: the strategy, the partition
    a job belongs to, and the checks the field tables cannot make (which
    keys go together, that partition_by names an arg).  The checks are
    part of evr_spec_validate(). */
#include "evr_spec.h"

#include <stdio.h>
#include <string.h>

evr_queue_strategy_t
evr_spec_queue_strategy(const evr_spec_t *spec)
{
    const char *s = spec->queue.strategy;
    if (s && strcmp(s, "replace") == 0)
        return EVR_QUEUE_REPLACE;
    if (s && strcmp(s, "partitioned_replace") == 0)
        return EVR_QUEUE_PARTITIONED;
    return EVR_QUEUE_APPEND; /* absent, or refused by the field check */
}

static bool
s_has_arg(const evr_spec_t *spec, const char *name)
{
    for (uint32_t i = 0; i < spec->args.n; i++) {
        const evr_arg_t *a = evr_spec_arg(spec, i);
        if (a->name && strcmp(a->name, name) == 0)
            return true;
    }
    return false;
}

void
evr_spec_validate_queue(const evr_spec_t *spec, evr_diag_t *diag)
{
    const evr_queue_t *q = &spec->queue;
    evr_queue_strategy_t st = evr_spec_queue_strategy(spec);
    /* a key that failed to load has its own error: no follow-on about it */
    bool failed = evr_diag_reported(diag, "queue.strategy")
               || evr_diag_reported(diag, "queue.partition_by");
    if (!failed && st == EVR_QUEUE_PARTITIONED && !q->partition_by)
        evr_diag_add(diag, "queue.strategy",
                     "partitioned_replace needs queue.partition_by: "
                     "the name of an arg whose value names the partition");
    else if (!failed && q->partition_by && st != EVR_QUEUE_PARTITIONED)
        evr_diag_add(diag, "queue.partition_by",
                     "only with strategy: partitioned_replace; "
                     "remove it or set that strategy");
    else if (!failed && q->partition_by && !s_has_arg(spec, q->partition_by))
        evr_diag_add(diag, "queue.partition_by",
                     "\"%s\" is not one of the pipeline's args "
                     "(declare it under args:)",
                     q->partition_by);
    if (q->interrupt && st == EVR_QUEUE_APPEND && !evr_diag_reported(diag, "queue.strategy"))
        evr_diag_add(diag, "queue.interrupt",
                     "only with strategy: replace or "
                     "partitioned_replace (append never cancels a running job)");
}

const char *
evr_spec_queue_partition(const evr_spec_t *spec, const evr_strmap_t *args)
{
    if (evr_spec_queue_strategy(spec) != EVR_QUEUE_PARTITIONED || !spec->queue.partition_by)
        return NULL;
    const char *v = evr_strmap_get(args, spec->queue.partition_by);
    return v ? v : "";
}
