/*  evr_spec_flow.c: the checks of a pipeline's control flow (part of
    evr_spec_validate): on_error takes no key that orders it among the
    steps or changes how its failure counts, nor a name, and its name is
    its own (no step takes it, on_error or not); a
    `when: on_failure | always` step of a DAG without needs waits for
    every step above it in the file, so none of those may need it. */
#include "evr_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_check_on_error(const evr_spec_t *spec, evr_diag_t *diag)
{
    char p[64];
    /* the name is taken whether or not the spec has an on_error: events
       and status would not tell the two apart; nor by a matrix step's
       combinations, which --step on_error (logs, evrun-tail) would take */
    for (uint32_t i = 0; i < spec->steps.n; i++) {
        const char *name = evr_spec_step(spec, i)->name;
        if (!evr_spec_step_matches(EVR_ON_ERROR_NAME, name))
            continue;
        snprintf(p, sizeof p, "steps[%u].name", i);
        evr_diag_add(diag, p, "\"%s\" is the name of the pipeline's on_error step (in events "
                     "and status), which no step may take: rename this step",
                     EVR_ON_ERROR_NAME);
    }
    const evr_step_t *st = &spec->on_error;
    if (!st->present)
        return;
    if (st->name)
        evr_diag_add(diag, "on_error.name", "on_error takes no name: it is always named \"%s\" "
                     "(in events and status); remove name", EVR_ON_ERROR_NAME);
    /* a key written in a file is refused with its default value too
       (needs: [], when: on_success, allow_failure: false, matrix: {}): it
       means nothing there, and says its writer expects it to */
#define S_WRITTEN(key) (evr_diag_marked(diag, "on_error." key) \
                        && !evr_diag_reported(diag, "on_error." key))
    if (st->needs.n || S_WRITTEN("needs"))
        evr_diag_add(diag, "on_error.needs", "on_error runs after every step once the job "
                     "has failed: it takes no needs (remove needs)");
    if (st->when != EVR_WHEN_ON_SUCCESS)
        evr_diag_add(diag, "on_error.when", "on_error runs once the job has failed or timed "
                     "out: it takes no when (remove when, or make it a step with when: %s)",
                     evr_when_names[st->when < EVR_WHEN_ALWAYS ? st->when : EVR_WHEN_ALWAYS]);
    else if (S_WRITTEN("when"))
        evr_diag_add(diag, "on_error.when", "on_error runs once the job has failed or timed "
                     "out: it takes no when (remove when)");
    if (st->allow_failure || S_WRITTEN("allow_failure"))
        evr_diag_add(diag, "on_error.allow_failure", "the job has failed when on_error runs: "
                     "its own failure never changes that (remove allow_failure)");
    if (st->matrix.n || S_WRITTEN("matrix"))
        evr_diag_add(diag, "on_error.matrix", "on_error runs once, after the job failed: it "
                     "takes no matrix (remove matrix)");
#undef S_WRITTEN
}

/*  Whether step k needs step target, directly or through other steps
    (seen: the steps walked already). */
static bool
s_depends(const evr_spec_t *spec, uint32_t k, uint32_t target, bool *seen)
{
    if (seen[k])
        return false;
    seen[k] = true;
    const evr_step_t *st = evr_spec_step(spec, k);
    for (uint32_t m = 0; m < st->needs.n; m++) {
        int j = evr_spec_step_index(spec, st->needs.v[m]);
        if (j >= 0 && ((uint32_t) j == target || s_depends(spec, (uint32_t) j, target, seen)))
            return true;
    }
    return false;
}

void
evr_spec_validate_flow(const evr_spec_t *spec, bool names, evr_diag_t *diag)
{
    s_check_on_error(spec, diag);
    if (!names)
        return;   /* needs name steps a matrix not expanded would make */
    uint32_t n = spec->steps.n;
    bool dag = spec->dag;
    for (uint32_t i = 0; i < n && !dag; i++)
        dag = evr_spec_step(spec, i)->needs.n > 0;
    if (!dag)
        return;   /* steps in order: each waits for the one before it */
    bool *seen = evr_calloc(n ? n : 1, sizeof(bool));
    for (uint32_t i = 0; i < n; i++) {
        const evr_step_t *st = evr_spec_step(spec, i);
        if (st->when == EVR_WHEN_ON_SUCCESS || st->needs.n)
            continue;
        for (uint32_t k = 0; k < i; k++) {
            memset(seen, 0, n * sizeof(bool));
            if (!s_depends(spec, k, i, seen))
                continue;
            char p[64];
            uint32_t kw = evr_diag_written_index(diag, "steps", k);   /* as in the file */
            snprintf(p, sizeof p, "steps[%u].when", i);
            evr_diag_add(diag, p, "a when: %s step without needs waits for every step above "
                         "it, but steps[%u] (%s) needs it: give it needs, or move it above "
                         "steps[%u]", evr_when_names[st->when], kw,
                         evr_spec_step(spec, k)->name, kw);
            break;
        }
    }
    free(seen);
}
