/*  evr_offer.h: the executors a runner offers, and what follows from them
    before it takes any job.

    The `executors` setting (podman, process) says what may run steps on
    this host: host commands only when the operator lists process.  From
    it come the labels the runner says hello with (executor:NAME for each
    executor offered, after the operator's labels), the refusal of a
    pipeline given to --exec whose executor is not offered, and the
    refusal to start on a state directory holding an unfinished job whose
    executor is not offered (taking it up would end it failed while its
    steps, host processes that outlive the runner, went on unwatched),
    and of a --broker start where an --exec job is unfinished.
    These checks come before any executor is opened, so the refusal is
    what the operator sees, not an executor's own failure (podman down).
*/
#ifndef EVR_OFFER_H_INCLUDED
#define EVR_OFFER_H_INCLUDED

#include <stdio.h>

#include "evr_spec.h"
#include "evr_store.h"

/*  Labels in a runner's hello, the executor labels included
    (schema/PROTOCOL.md, message hello). */
#define EVR_OFFER_LABELS_MAX 32
/*  Unfinished jobs named one by one in evr_offer_check_store's refusal;
    the others are counted. */
#define EVR_OFFER_JOBS_SHOWN 10
/*  Executors this build may know (evr_executor_names). */
#define EVR_OFFER_EXECUTORS_MAX 8

typedef struct {
    bool on[EVR_OFFER_EXECUTORS_MAX];   /* indexed by EVR_EXECUTOR_* */
} evr_offer_t;

/*  Parses the setting list ("podman,process", comma- or space-separated)
    into out.  EVR_ERR_CONFIG when it names an unknown executor or none. */
evr_rc_t evr_offer_parse(const char *list, evr_offer_t *out, evr_err_t *err);

/*  Whether self offers executor (EVR_EXECUTOR_*; false for an unknown
    number). */
bool evr_offer_has(const evr_offer_t *self, uint32_t executor);

/*  EVR_OK when self offers executor; else EVR_ERR_CONFIG, err saying what
    it offers and how to start it so that it does: "this runner does not
    offer executor process (it offers: podman); start it with --executors
    podman,process". */
evr_rc_t evr_offer_check(const evr_offer_t *self, uint32_t executor, evr_err_t *err);

/*  Refuses a store with an unfinished job whose executor self does not
    offer: prints to out, prefixed with prog and ": ", one line per such
    job ("job JOB (pipeline P) is unfinished and runs with executor
    process, which this runner does not offer: start it with --executors
    podman,process"), at most EVR_OFFER_JOBS_SHOWN, then how many more,
    and returns EVR_ERR_CONFIG (err counting them).  The jobs are left as
    they are.  A job whose spec cannot be read is left to the recovery,
    which reports it.  EVR_ERR_STORE when the store cannot be read. */
evr_rc_t evr_offer_check_store(const evr_offer_t *self, evr_store_t *store, const char *prog,
                               FILE *out, evr_err_t *err);

/*  Refuses a --broker start on a store with an unfinished job that
    evrun-runner --exec started there (its runner "exec"): no broker
    dispatched it, so a broker would refuse its events and the runner
    cancel it.  Prints to out one line per such job (at most
    EVR_OFFER_JOBS_SHOWN, then how many more) and returns EVR_ERR_CONFIG,
    err naming --recover --state-dir STATE_DIR, which finishes them.
    EVR_ERR_STORE when the store cannot be read. */
evr_rc_t evr_offer_check_exec_jobs(evr_store_t *store, const char *state_dir, const char *prog,
                                   FILE *out, evr_err_t *err);

/*  The labels of a runner's hello into lv (EVR_OFFER_LABELS_MAX + 1
    entries, NULL-terminated): those of labels (the setting, comma- or
    space-separated), then executor:NAME for each executor self offers.
    *buf is the copy of labels lv points into (the caller frees it; NULL
    on error).  EVR_ERR_CONFIG when a label starts with executor: (those
    come from the executors setting), is given twice, or when they come
    to more than EVR_OFFER_LABELS_MAX. */
evr_rc_t evr_offer_labels(const evr_offer_t *self, const char *labels, const char **lv,
                          char **buf, evr_err_t *err);

#endif
