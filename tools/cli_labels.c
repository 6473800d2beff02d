/*  cli_labels.c: whether a job's labels meet a runner, as the broker
    matches them: after `run`/`submit` (a job no connected runner can take
    would wait: said on stderr) and in `status` of a queued job (a line
    `waiting` saying which labels no runner has, or that every runner
    with them is busy).  The runners and the
    providers are asked with `runners` and `providers`; a runner takes work
    when it is connected (evr_msg_state_away: not lost or stopped) and not
    draining. */
#include <stdio.h>
#include <string.h>

#include "cli_bus.h"
#include "evr_spec.h"

typedef struct {
    const evr_strlist_t *need[2]; /* every label of these, a runner must have */
    const char *implied;          /* and this one (a spec's executor:NAME), or NULL */
    bool match;                   /* a runner taking work has them all */
    uint32_t fitting, free;       /* such runners, and their free slots (credit) */
    bool unoffered;               /* a runner taking work does not offer implied */
    char provider[160];           /* an active provider with the labels: "NAME (of PROVISIONER)" */
} s_fit_t;

static bool
s_has_all(const s_fit_t *t, const evr_strlist_t *labels)
{
    for (int k = 0; k < 2; k++)
        for (uint32_t i = 0; t->need[k] && i < t->need[k]->n; i++)
            if (!evr_spec_runner_has_label(labels, t->need[k]->v[i]))
                return false;
    return true;
}

/*  An active provider a provisioner reported, with every label the job
    needs: it starts a runner for the job. */
static int
s_provider_fits(const evr_msg_t *m, void *arg)
{
    s_fit_t *t = arg;
    if (m->type != EVR_MSG_PROVIDER || m->reason || t->provider[0] || !m->provider)
        return 0;
    if (s_has_all(t, &m->labels)
        && (!t->implied || evr_spec_runner_has_label(&m->labels, t->implied)))
        snprintf(t->provider, sizeof t->provider, "%s (of %s)", m->provider,
                 m->runner ? m->runner : "a provisioner");
    return 0;
}

static int
s_runner_fits(const evr_msg_t *m, void *arg)
{
    s_fit_t *t = arg;
    if (evr_msg_state_away(m->state) || !strcmp(m->state, "draining"))
        return 0;
    bool fits = s_has_all(t, &m->labels);
    if (t->implied && !evr_spec_runner_has_label(&m->labels, t->implied)) {
        fits = false;
        t->unoffered = true;
    }
    t->match |= fits;
    t->fitting += fits;
    t->free += fits ? m->credit : 0;
    return 0;
}

/*  Asks the broker: 1 a runner taking work fits, 0 none (a provider that
    fits in t->provider), -1 the broker did not answer.  A stream not
    answered in full (no answer in time, or a Ctrl-C during `run --wait`'s
    ask) leaves the connection afresh: its late answer is not read as the
    caller's next request's (the `status` of the wait). */
static int
s_ask(evr_cli_t *cli, s_fit_t *t)
{
    evr_msg_t q = { .type = EVR_MSG_RUNNERS }, pq = { .type = EVR_MSG_PROVIDERS };
    evr_err_t err;
    if (evr_client_stream(cli->client, &q, s_runner_fits, t, &err)) {
        evr_client_reconnect(cli->client, &err);
        return -1;
    }
    if (t->match)
        return 1;
    if (evr_client_stream(cli->client, &pq, s_provider_fits, t, &err)) {
        evr_client_reconnect(cli->client, &err);
        t->provider[0] = '\0';
    }
    return 0;
}

/*  The labels of t, ", "-joined into buf. */
static int
s_join(const s_fit_t *t, char *buf, size_t size)
{
    int at = 0;
    buf[0] = '\0';
    for (int k = 0; k < 2; k++)
        for (uint32_t i = 0; t->need[k] && i < t->need[k]->n && at < (int) size; i++)
            at += snprintf(buf + at, size - (size_t) at, "%s%s", at ? ", " : "", t->need[k]->v[i]);
    return at < (int) size ? at : (int) size - 1;
}

void
evr_cli_warn_no_runner(evr_cli_t *cli, const evr_msg_t *req)
{
    s_fit_t t = {
        { &req->spec->labels, &req->labels }, evr_spec_executor_label(req->spec), false, 0, 0,
        false, ""
    };
    if (s_ask(cli, &t))
        return;
    if (t.provider[0]) {
        fprintf(stderr,
                "%s: no connected runner can take the job yet: provider %s starts "
                "one for it\n",
                cli->prog, t.provider);
        return;
    }
    char labels[512];
    int at = s_join(&t, labels, sizeof labels);
    const char *name = t.implied ? evr_executor_names[req->spec->executor] : "";
    if (t.implied && (t.unoffered || req->spec->executor != EVR_EXECUTOR_PODMAN)
        && at < (int) sizeof labels)
        snprintf(labels + at, sizeof labels - (size_t) at,
                 "%s%s (the %s executor: "
                 "evrun-runner --executors %s)",
                 at ? ", " : "", t.implied, name, name);
    fprintf(stderr,
            "%s: no connected runner %s%s: the job waits in the queue until one "
            "connects (see evrun-cli runners)\n",
            cli->prog, labels[0] ? "has the labels " : "is taking work", labels);
}

void
evr_cli_status_waiting(evr_cli_t *cli, const evr_msg_t *job)
{
    s_fit_t t = { { &job->labels, NULL }, NULL, false, 0, 0, false, "" };
    int fits = s_ask(cli, &t);
    if (fits < 0 || (fits && job->reason))  /* the broker said why (a delay, the concurrency) */
        return;
    if (fits) {
        if (!t.free && t.fitting == 1)
            printf("waiting   for a free slot: the runner with its labels is busy (see "
                   "evrun-cli runners)\n");
        else if (!t.free)
            printf("waiting   for a free slot: all %u runners with its labels are busy (see "
                   "evrun-cli runners)\n", t.fitting);
        return;
    }
    char labels[512];
    s_join(&t, labels, sizeof labels);
    if (t.provider[0])
        printf("waiting   for a runner provider %s starts\n", t.provider);
    else
        printf("waiting   no connected runner %s%s (see evrun-cli runners)\n",
               labels[0] ? "has the labels " : "is taking work", labels);
}
