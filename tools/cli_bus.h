/*  cli_bus.h: what the bus commands of evrun-cli share: the common
    options (--state-dir, --broker, --events-endpoint, --config, --timeout-ms,
    --curve-cert, --broker-key, --json, --help), the layered settings, the
    connection. */
#ifndef EVR_CLI_BUS_H_INCLUDED
#define EVR_CLI_BUS_H_INCLUDED

#include <getopt.h>
#include <signal.h>

#include "evr_client.h"
#include "evr_getopt.h"

/*  The common long options, to put first in each command's table; their
    codes are 1000 and up. */
#define EVR_CLI_COMMON_OPTS                                                                      \
    { "state-dir", required_argument, NULL, 1000 }, { "broker", required_argument, NULL, 1001 }, \
    { "events-endpoint", required_argument, NULL, 1002 }, { "config", required_argument, NULL, 1003 },   \
    { "timeout-ms", required_argument, NULL, 1004 }, { "json", no_argument, NULL, 1005 },        \
    { "print-config", no_argument, NULL, 1006 }, { "curve-cert", required_argument, NULL, 1007 }, \
    { "broker-key", required_argument, NULL, 1008 }, { "help", no_argument, NULL, 'h' }

#define EVR_CLI_COMMON_HELP                                                                      \
    "  --json               print JSON (one object per line)\n"                                  \
    "  --state-dir DIR      state directory (default $EVRUN_STATE_DIR, else\n"                   \
    "                       $XDG_STATE_HOME/evrun, else ~/.local/state/evrun)\n"                 \
    "  --broker EP          the broker's client endpoint (default: the local broker of\n"        \
    "                       `evrun-cli up` when it runs, else tcp://127.0.0.1:7700)\n"           \
    "  --events-endpoint EP the broker's event stream (default: beside --broker, port+2\n"      \
    "                       for tcp, .../events for ipc)\n"                                       \
    "  --config FILE        settings file (default $EVRUN_CONFIG, else\n"                        \
    "                       $XDG_CONFIG_HOME/evrun/evrun.yml, XDG_CONFIG_HOME\n"                 \
    "                       unset: ~/.config/evrun/evrun.yml, when it exists)\n"                 \
    "  --timeout-ms N       longest wait for an answer (default 10000; 1 to 3600000)\n"          \
    "  --curve-cert FILE    CURVE key pair for a tcp:// broker (default\n"                       \
    "                       STATE/curve/client.cert, made when missing; the broker admits\n"    \
    "                       it once FILE is copied into its curve/clients/)\n"                 \
    "  --broker-key KEY     the broker's public key: its curve/broker.cert, or the key's\n"    \
    "                       40 characters (default STATE/curve/broker.cert)\n"                  \
    "  --print-config       print the effective settings and their sources, exit\n"             \
    "  -h, --help           this text\n"

typedef struct {
    const char *prog;       /* "evrun-cli run" */
    const char *flags[16];
    size_t nf;
    const char *file;
    bool json;
    bool print_config;      /* print the settings and exit */
    bool id_only;           /* submit: stdout carries each accepted job's id alone */
    evr_config_t *cfg;
    evr_client_t *client;
    zsock_t *sub;           /* run, start --follow: the job's event stream, subscribed
                               before the submit (evr_cli_follow_first) */
    int out_err;            /* run, start: errno of a write to stdout that failed (the
                               accepted line, the last line of --wait) */
} evr_cli_t;

/*  evr_usage_brief and evr_getopt (evr_getopt.h) for an evrun-cli
    command, prog its name ("evrun-cli artifacts"). */
typedef evr_help_fn evr_cli_help_fn;
void evr_cli_brief(const char *prog, evr_cli_help_fn *help, const void *arg);
int evr_cli_getopt(const char *prog, int argc, char **argv, const char *shortopts,
                   const struct option *opts);

/*  Takes a common option (c >= 1000); false when c is not one. */
bool evr_cli_common(evr_cli_t *cli, int c, const char *arg);

/*  Layers the settings (unless evr_cli_settings did) and connects;
    prints the error and returns 2 on failure, else 0. */
int evr_cli_connect(evr_cli_t *cli);

/*  The one JOB_ID operand left at argv[optind_], checked as a job id
    (evr_client_job_arg): the caller frees it.  NULL (the reason printed)
    when there is not exactly one, or it is no job id. */
char *evr_cli_job_operand(const evr_cli_t *cli, int argc, char **argv, int optind_);

/*  An option's whole number from min to max into *out: false (said,
    naming the option, the value and the range) when it is not one. */
bool evr_cli_uint_arg(const char *prog, const char *opt, const char *arg, unsigned long min,
                      unsigned long max, unsigned long *out);

/*  An option's pipeline name (evr_spec_name_ok): false (said, naming the
    option and the value) when it is none: a filter by "" (a variable
    left unset) would match no job, and go on for ever in evrun-tail. */
bool evr_cli_pipeline_arg(const char *prog, const char *opt, const char *arg);

/*  As evr_cli_pipeline_arg, for a name of another kind (what: "a
    label", "a runner id"): the broker refuses any other (exit 1, as a
    refusal, where a usage error is 2). */
bool evr_cli_name_arg(const char *prog, const char *opt, const char *what, const char *arg);

/*  --step S (evrun-tail, logs, artifacts): false (said) when S is no
    step name (evr_spec_step_name_ok: a name, or one matrix combination
    NAME[K=v,...]): no step has it, so it matched nothing, and evrun-tail
    --all or --pipeline waited for ever printing nothing. */
bool evr_cli_step_arg(const char *prog, const char *arg);

/*  The options a job's request takes in run, submit and start: 'a'
    (-a/--arg NAME=VALUE, into req->args: each NAME once, a repeat would
    replace the value before it) and 'l' (--label L, into req->labels: a
    name, each once, as the broker takes them).  0 when c is one and
    taken; 2 (said, naming the option and the value or name) when its
    value is refused; -1 when c is neither. */
int evr_cli_job_opt(const char *prog, int c, const char *arg, evr_msg_t *req);

/*  Loads the settings only (no connection), timeout_ms checked: 0 or 2
    (the errors said, and cli->cfg freed and NULL).
    A command that catches SIGINT and SIGTERM (evr_cli_catch_stop) calls
    it before: a read of the settings file that blocks (a FIFO, a hung
    mount) would go on after a counted signal, so Ctrl-C did nothing. */
int evr_cli_settings(evr_cli_t *cli);

void evr_cli_done(evr_cli_t *cli);

/*  SIGINT and SIGTERM call fn, and interrupt the system call they come
    in (no SA_RESTART): a write to a stdout nobody reads (`| less` left
    at its prompt, a full pipe, a terminal stopped with Ctrl-S) ends with
    EINTR, where signal()'s restarted it, so a follower blocked there
    never saw its Ctrl-C. */
void evr_cli_on_stop(void (*fn)(int));

/*  Prints an `error` answer ("PROG: code: message") and returns 1. */
int evr_cli_refused(const evr_cli_t *cli, const evr_msg_t *reply);

/*  Sends req over cli's connection and waits for the answer, into *rep
    (the caller clears it, whatever the return): 0 when it is of type
    want; 2 when the broker could not be asked or did not answer ("PROG:
    why" said); 1 when it refused or answered otherwise (said as
    evr_cli_refused). */
int evr_cli_call(const evr_cli_t *cli, const evr_msg_t *req, evr_msgtype_t want,
                 evr_msg_t *rep);

/*  Prints a message as one JSON line (a connected runner with its credit, 0 too). */
void evr_cli_json(const evr_msg_t *m);

/*  The exit status of a --follow or --wait that SIGINT or SIGTERM
    stopped before the job ended (the job goes on): 128 + SIGINT, as a
    shell's. */
#define EVR_CLI_INTERRUPTED 130

/*  Polls job until it ends, then prints its end (a line "job ID STATUS:
    REASON", or with cli->json the `job` answer as one JSON object, as
    `status --json` prints it): 0 succeeded, 1 it did not (or a refusal),
    EVR_CLI_INTERRUPTED when *stop was set, 2 the broker unreachable
    (cli_jobs.c). */
int evr_cli_wait(evr_cli_t *cli, const char *job, volatile sig_atomic_t *stop);

/*  Sends req (a `submit`, or a `start`) until answered, the same job id
    each time (a lost answer is asked again: still one job): 0 accepted
    (printed: "job ID accepted (pipeline P)" on stdout, or with id_only
    the id on stdout and that line on stderr), 1 refused (printed), 2 the
    broker unreachable (cli_jobs.c). */
int evr_cli_send_job(evr_cli_t *cli, evr_msg_t *req);

/*  Before job (an id not yet submitted) is submitted with --follow:
    subscribes to its events (cli->sub), the handshake with the event
    stream waited for, so that an events endpoint that is wrong or
    unreachable refuses the command before there is a job nobody
    follows (and running it again would submit another).  0, or 2 with
    the reason said (the endpoint, what its handshake came to) and that
    nothing was submitted, naming --events-endpoint and events_endpoint
    (cli_jobs.c). */
int evr_cli_follow_first(evr_cli_t *cli, const char *job);

/*  After job was accepted: with follow, prints its output live (events
    too with events) and waits for its end; with wait, waits; SIGINT and
    SIGTERM stop following or waiting (said; EVR_CLI_INTERRUPTED), the job
    goes on; so does it when following or waiting fails after all (exit
    2: said with the job's id and how to follow it).  Follows on cli->sub
    when evr_cli_follow_first made it.  Its exit status as `run`'s
    (cli_jobs.c). */
int evr_cli_after_submit(evr_cli_t *cli, const char *job, bool follow, bool wait, bool events);
/*  SIGINT and SIGTERM counted for evr_cli_after_submit's follow or wait,
    from before the submit (a Ctrl-C while it is sent is the follow's:
    exit 130, "job X goes on"; a background command of a script starts
    with SIGINT ignored, and it would be lost). */
void evr_cli_catch_stop(void);

/*  After req (a `submit`) was accepted: when no connected runner taking
    work has its labels (the spec's, the submit's, its executor's), says
    so on stderr, or which provider starts one (cli_labels.c). */
void evr_cli_warn_no_runner(evr_cli_t *cli, const evr_msg_t *req);

/*  For `status` of a queued job (its `job` answer): when no connected
    runner taking work has all its labels, prints a line "waiting   no
    connected runner has the labels L (see evrun-cli runners)", or which
    provider starts one; nothing when one has them or the broker does not
    answer (cli_labels.c). */
void evr_cli_status_waiting(evr_cli_t *cli, const evr_msg_t *job);

#endif
