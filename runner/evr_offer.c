/*  evr_offer.c: the executors a runner offers (see evr_offer.h).

    The store check reads the index of unfinished jobs first, then each
    one's spec from its job.accepted (two passes: one read transaction at
    a time), and names every job it refuses, so the operator can tell
    which executor to add, or which jobs to look at.
*/
#include "evr_offer.h"

#include "evr_config.h"

#include <stdlib.h>
#include <string.h>

/*  Executors this build knows: the names of evr_executor_names. */
static uint32_t
s_known(void)
{
    uint32_t n = 0;
    while (n < EVR_OFFER_EXECUTORS_MAX && evr_executor_names[n])
        n++;
    return n;
}

evr_rc_t
evr_offer_parse(const char *list, evr_offer_t *out, evr_err_t *err)
{
    char *copy = evr_strdup(list ? list : "");
    evr_rc_t rc = EVR_OK;
    uint32_t known = s_known(), n = 0;
    memset(out, 0, sizeof *out);
    size_t empty = evr_config_list_empty(list);
    if (empty) {   /* "podman,,process": refused, not read as podman,process */
        free(copy);
        return evr_err_set(err, EVR_ERR_CONFIG, "executors: item %zu of \"%s\" is empty (a "
                           "comma too many?): give each item, as in podman,process", empty,
                           list);
    }
    for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t && !rc;
         t = strtok_r(NULL, ", ", &save), n++) {
        uint32_t i = 0;
        while (i < known && strcmp(t, evr_executor_names[i]))
            i++;
        if (i < known)
            out->on[i] = true;
        else
            rc = evr_err_set(err, EVR_ERR_CONFIG, "executors: unknown executor \"%s\" "
                             "(expected podman, process, comma-separated)", t);
    }
    if (!rc && !n)
        rc = evr_err_set(err, EVR_ERR_CONFIG, "executors: empty (expected podman, process, "
                         "comma-separated)");
    free(copy);
    return rc;
}

bool
evr_offer_has(const evr_offer_t *self, uint32_t executor)
{
    return executor < s_known() && self->on[executor];
}

/*  The names of the executors offered, joined by sep, into buf; with
    also (an EVR_EXECUTOR_*, or UINT32_MAX for none) counted as offered:
    the --executors list that would offer it too. */
static void
s_names(const evr_offer_t *self, uint32_t also, const char *sep, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (uint32_t i = 0, known = s_known(); i < known; i++)
        if ((self->on[i] || i == also) && at < size)
            at += (size_t) snprintf(buf + at, size - at, "%s%s", at ? sep : "",
                                    evr_executor_names[i]);
}

evr_rc_t
evr_offer_check(const evr_offer_t *self, uint32_t executor, evr_err_t *err)
{
    if (evr_offer_has(self, executor))
        return EVR_OK;
    char offers[128], with[128];
    s_names(self, UINT32_MAX, ", ", offers, sizeof offers);
    if (executor >= s_known())
        return evr_err_set(err, EVR_ERR_CONFIG, "executor number %u is unknown to this runner "
                           "(it offers: %s)", executor, offers[0] ? offers : "none");
    s_names(self, executor, ",", with, sizeof with);
    return evr_err_set(err, EVR_ERR_CONFIG, "this runner does not offer executor %s (it "
                       "offers: %s); start it with --executors %s", evr_executor_names[executor],
                       offers[0] ? offers : "none", with);
}

evr_rc_t
evr_offer_check_store(const evr_offer_t *self, evr_store_t *store, const char *prog,
                      FILE *out, evr_err_t *err)
{
    char (*ids)[EVR_ULID_LEN + 1];
    size_t n;
    evr_rc_t rc = evr_store_open_ids(store, &ids, &n, err);
    size_t refused = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        evr_spec_t *spec = NULL;
        evr_strmap_t args = { 0 };
        evr_err_t e2;
        evr_rc_t r = evr_store_job_spec(store, ids[i], &spec, &args, &e2);
        if (r == EVR_ERR_STORE)
            rc = evr_err_set(err, r, "%s", e2.msg);
        else if (!r && !evr_offer_has(self, spec->executor) && spec->executor < s_known()
                 && refused++ < EVR_OFFER_JOBS_SHOWN) {
            char with[128];
            s_names(self, spec->executor, ",", with, sizeof with);
            fprintf(out, "%s: job %s (pipeline %s) is unfinished and runs with executor %s, "
                    "which this runner does not offer: start it with --executors %s\n", prog,
                    ids[i], spec->pipeline ? spec->pipeline : "?",
                    evr_executor_names[spec->executor], with);
        }
        evr_spec_destroy(&spec);
        evr_strmap_free(&args);
    }
    free(ids);
    if (rc)
        return rc;
    if (refused > EVR_OFFER_JOBS_SHOWN)
        fprintf(out, "%s: ... and %zu more unfinished jobs like these\n", prog,
                refused - EVR_OFFER_JOBS_SHOWN);
    if (refused)
        return evr_err_set(err, EVR_ERR_CONFIG, "%zu unfinished job%s need%s an executor this "
                           "runner does not offer: none is taken up", refused,
                           refused == 1 ? "" : "s", refused == 1 ? "s" : "");
    return EVR_OK;
}

typedef struct {
    const char *prog;
    FILE *out;
    size_t n;
} s_exec_jobs_t;

static int
s_exec_job(const evr_job_t *job, void *arg)
{
    s_exec_jobs_t *x = arg;
    if (!job->runner || strcmp(job->runner, "exec") != 0 || evr_job_is_final(job))
        return 0;
    if (x->n++ < EVR_OFFER_JOBS_SHOWN)
        fprintf(x->out, "%s: job %s (pipeline %s) was started here by evrun-runner --exec "
                "and is unfinished: no broker dispatched it, and one would refuse its "
                "events\n", x->prog, job->id, job->pipeline ? job->pipeline : "?");
    return 0;
}

evr_rc_t
evr_offer_check_exec_jobs(evr_store_t *store, const char *state_dir, const char *prog,
                          FILE *out, evr_err_t *err)
{
    s_exec_jobs_t x = { prog, out, 0 };
    evr_rc_t rc = evr_store_open_jobs(store, s_exec_job, &x, err);
    if (rc || !x.n)
        return rc;
    if (x.n > EVR_OFFER_JOBS_SHOWN)
        fprintf(out, "%s: ... and %zu more such jobs\n", prog, x.n - EVR_OFFER_JOBS_SHOWN);
    return evr_err_set(err, EVR_ERR_CONFIG, "not started with --broker: finish %s first "
                       "with evrun-runner --recover --state-dir %s (or give --broker another "
                       "state directory)", x.n == 1 ? "that job" : "those jobs", state_dir);
}

evr_rc_t
evr_offer_labels(const evr_offer_t *self, const char *labels, const char **lv, char **buf,
                 evr_err_t *err)
{
    uint32_t known = s_known();
    size_t nl = 0, nx = 0;
    for (uint32_t i = 0; i < known; i++)
        nx += self->on[i];
    *buf = evr_strdup(labels ? labels : "");
    evr_rc_t rc = EVR_OK;
    size_t plen = strlen(EVR_EXECUTOR_LABEL_PREFIX);
    for (char *save = NULL, *t = strtok_r(*buf, ", ", &save); t && !rc;
         t = strtok_r(NULL, ", ", &save), nl++) {
        if (!strncmp(t, EVR_EXECUTOR_LABEL_PREFIX, plen))
            rc = evr_err_set(err, EVR_ERR_CONFIG, "labels: \"%s\": executor labels come from "
                             "the executors setting (--executors), not from labels", t);
        for (size_t k = 0; !rc && k < nl && k + nx < EVR_OFFER_LABELS_MAX; k++)
            if (!strcmp(lv[k], t))   /* the broker refuses a hello that repeats one */
                rc = evr_err_set(err, EVR_ERR_CONFIG, "labels: \"%s\" given twice (each label "
                                 "once)", t);
        if (!rc && nl + nx < EVR_OFFER_LABELS_MAX)
            lv[nl] = t;
    }
    if (!rc && nl + nx > EVR_OFFER_LABELS_MAX)
        rc = evr_err_set(err, EVR_ERR_CONFIG, "labels: %zu labels, and %zu executor label%s "
                         "(one per executor offered), come to %zu: a runner has at most %d; "
                         "drop %zu", nl, nx, nx == 1 ? "" : "s", nl + nx, EVR_OFFER_LABELS_MAX,
                         nl + nx - EVR_OFFER_LABELS_MAX);
    if (rc) {
        free(*buf);
        *buf = NULL;
        return rc;
    }
    for (uint32_t i = 0; i < known; i++)
        if (self->on[i] && evr_executor_label(i))
            lv[nl++] = evr_executor_label(i);
    lv[nl] = NULL;
    return EVR_OK;
}
