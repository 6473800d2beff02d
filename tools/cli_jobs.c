/*  cli_jobs.c: the job commands of evrun-cli: run, submit, cancel, pause,
    resume, drain, logs (status, jobs and runners: cli_query.c).  Each
    parses its options, sends one request (or follows the event stream)
    and prints the answer, as text or JSON. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_bus.h"
#include "evr_follow.h"
#include "evr_job.h"
#include "evr_source.h"
#include "evr_yaml.h"

static volatile sig_atomic_t s_stop;

static void
s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

/* ----------------------------------------------------------- run, submit */

#define S_COUNT_MAX 100000   /* submit --count's bound */
#define S_COUNT_MAX_S "100000"

static void
s_run_help(FILE *out, const char *name)
{
    fprintf(out,
            "usage: evrun-cli %s FILE [-a NAME=VALUE]... [--label L]... %s[options]\n"
            "\n"
            "Validates the pipeline in FILE (errors as file:line:column: field: message),\n"
            "submits it to the broker as a new job and prints its id once the broker has\n"
            "it in its durable queue%s\n"
            "A submit that gets no answer is sent again with the same job id, so it is\n"
            "queued once.  A `copy: DIR` source (or ci_source) is sent along: DIR\n"
            "(relative to FILE's directory, .evrunignore honoured) as a gzip-compressed\n"
            "tar of at most 1 MiB.\n"
            "\n"
            "  -a, --arg NAME=VALUE an arg of the pipeline (repeatable, each NAME once: a\n"
            "                       NAME given twice is refused)\n"
            "  --label L            a label the runner must have, beyond the pipeline's\n"
            "%s"
            EVR_CLI_COMMON_HELP
            "\n"
            "%s"
            "exit status: 0 accepted%s;\n1 refused by the broker%s;\n2 bad file or usage, "
            "or the broker unreachable%s\n",
            name, strcmp(name, "run") ? "" : "[--follow | --wait] ",
            strcmp(name, "run") ? ": the id alone on stdout (one per\n"
                                  "line with --count), \"job ID accepted (pipeline P)\" on stderr."
                                : ", in a line\n\"job ID accepted (pipeline P)\".",
            strcmp(name, "run")
                ? "  --count N            submit N jobs of FILE (1.." S_COUNT_MAX_S "), each with its\n"
                  "                       own id, over one connection; stops at the first refusal\n"
                : "  -f, --follow         print the job's output live; exit with its status\n"
                  "                       (a broker that does not answer within --timeout-ms\n"
                  "                       is said once on stderr and asked again a second\n"
                  "                       after each wait, each wait doubled up to 8x); its\n"
                  "                       event stream is checked before the submit: with\n"
                  "                       none at --events-endpoint nothing is submitted\n"
                  "  -w, --wait           wait for the job to end; exit with its status\n"
                  "  --events             with --follow: lifecycle events too\n",
            strcmp(name, "run") ? "With --json, stdout has the accepted answer, {\"job\":ID}, "
                                  "one per job.\n\n"
                                : "With --json, stdout has JSON objects only, one per line "
                                  "(messages go to\nstderr): the accepted answer, "
                                  "{\"job\":ID}; with --follow the output (and\nevents) "
                                  "as event objects; with --follow or --wait at the end the\n"
                                  "job's status object, as `evrun-cli status --json` prints it\n"
                                  "({\"job\":ID,\"status\":\"failed\",\"reason\":...}).\n\n",
            strcmp(name, "run") ? "" : " (and, with --follow/--wait, the job succeeded)",
            strcmp(name, "run") ? "" : ", or the job failed, was cancelled or timed out",
            strcmp(name, "run") ? "" : " (with --follow, its event stream:\nnothing "
                                       "submitted);\n130 --follow/--wait interrupted (Ctrl-C, "
                                       "SIGTERM) before the job ended: it goes on\n(before "
                                       "the submit, while --follow checks the event stream: "
                                       "nothing submitted)");
}

static void
s_run_help_cb(FILE *out, const void *name)
{
    s_run_help(out, name);
}

/*  FILE into req->spec, its args bound (req->args), and the tars of its
    copy: sources into req: every error printed as FILE:LINE:COL: FIELD:
    MESSAGE (a copy:'s at its key), the copies read only when the file
    loaded. */
static bool
s_load(const char *prog, const char *file, evr_msg_t *req)
{
    evr_spec_t *s = req->spec;
    evr_diag_t *diag = evr_diag_new(file);
    evr_strmap_t bound = { 0 };
    evr_rc_t rc = evr_yaml_load_file(s, diag);
    if (rc == EVR_OK)
        rc = evr_spec_bind_args(s, &req->args, &bound, diag);
    if (rc == EVR_OK
        && ((s->source.copy
             && !evr_cli_copy_tar(prog, file, "source", s->source.copy, &req->source_tar, diag))
            | (s->ci_source.copy
               && !evr_cli_copy_tar(prog, file, "ci_source", s->ci_source.copy,
                                    &req->ci_source_tar, diag))))
        rc = EVR_ERR_SPEC;
    evr_diag_print(diag, stderr);
    if (rc == EVR_OK)
        evr_cli_warn_dag(file, s, diag);
    if (rc && !evr_diag_count(diag))
        fprintf(stderr, "%s: %s: cannot load\n", prog, file);
    evr_diag_destroy(&diag);
    evr_strmap_free(&bound);
    return rc == EVR_OK;
}

bool
evr_cli_copy_tar(const char *prog, const char *file, const char *key, const char *copy,
                 evr_bin_t *tar, evr_diag_t *diag)
{
    char at[32];
    snprintf(at, sizeof at, "%s.copy", key);
    const char *slash = strrchr(file, '/');
    char *dir = copy[0] == '/' || !slash ? evr_strdup(copy)
              : evr_asprintf("%.*s/%s", (int) (slash - file), file, copy);
    const char *tmpdir = getenv("TMPDIR");
    char *tmp = evr_asprintf("%s/evrun-copy-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(tmp);
    evr_err_t err;
    uint64_t bytes = 0;
    bool ok = fd >= 0;
    if (!ok)
        fprintf(stderr, "%s: %s: %s\n", prog, tmp, strerror(errno));
    else
        close(fd);
    if (ok && evr_source_copy_tar(dir, "", EVR_SPEC_MAX_COPY_BYTES,
                                  EVR_SOURCE_GZIP | EVR_SOURCE_NO_LINKS
                                      | EVR_SOURCE_MAX_ENTRIES, tmp, &bytes, &err)) {
        if (diag)
            evr_diag_add(diag, at, "%s", err.msg);
        else
            fprintf(stderr, "%s: %s: %s\n", prog, key, err.msg);
        ok = false;
    }
    else if (ok && bytes > EVR_MSG_MAX_COPY_BYTES) {
        char *msg = evr_asprintf("copy %s: the compressed tar is %llu bytes, over the limit of "
                                 "%u bytes a submit carries (leave files out with "
                                 ".evrunignore, or use git: or tarball:)", dir,
                                 (unsigned long long) bytes, EVR_MSG_MAX_COPY_BYTES);
        if (diag)
            evr_diag_add(diag, at, "%s", msg);
        else
            fprintf(stderr, "%s: %s: %s\n", prog, key, msg);
        free(msg);
        ok = false;
    }
    FILE *fp = ok && tar ? fopen(tmp, "rb") : NULL;
    if (fp) {
        tar->data = evr_malloc(bytes ? bytes : 1);
        tar->len = (uint32_t) fread(tar->data, 1, bytes, fp);
        ok = tar->len == bytes;
        fclose(fp);
    }
    if (fd >= 0)
        unlink(tmp);
    free(tmp);
    free(dir);
    return ok;
}

/*  After prints to stdout, errno set to 0 before them: a write that failed
    is kept in cli->out_err (its errno: a print that failed inside gave
    its buffer up, so only errno still says why), for the caller to say. */
static void
s_out_check(evr_cli_t *cli)
{
    int before = errno;
    errno = 0;
    if ((fflush(stdout) || ferror(stdout)) && !cli->out_err)
        cli->out_err = errno ? errno : before ? before : EIO;
}

/*  ... said: "PROG: writing to stdout: No space left on device", exit 2. */
static int
s_out_said(const evr_cli_t *cli)
{
    fprintf(stderr, "%s: writing to stdout: %s\n", cli->prog, strerror(cli->out_err));
    return 2;
}

/*  evr_cli_wait; `patient` (after a follow, which outlives a broker that
    does not answer): no answer is said once, and asked again a second
    after each wait, on a fresh connection, until it comes or *stop. */
static int
s_wait(evr_cli_t *cli, const char *job, volatile sig_atomic_t *stop, bool patient)
{
    bool said = false;
    for (;;) {
        evr_msg_t req = { .type = EVR_MSG_STATUS, .job = (char *) job }, rep = { 0 };
        evr_err_t err, e2;
        evr_rc_t rc = evr_client_call(cli->client, &req, &rep, &err);
        if (rc == EVR_ERR_IO && patient && !*stop) {
            if (!said)
                fprintf(stderr, "%s: status of %s: %s; asking again a second after each wait\n",
                        cli->prog, job, err.msg);
            said = true;
            evr_client_reconnect(cli->client, &e2);
            for (int i = 0; i < 20 && !*stop; i++)
                zclock_sleep(50);
            continue;
        }
        if (rc && *stop)    /* a signal also cuts short the wait for the answer */
            return EVR_CLI_INTERRUPTED;   /* the caller says it stopped */
        if (rc) {
            fprintf(stderr, "%s: %s\n", cli->prog, err.msg);
            return 2;
        }
        evr_job_status_t st = EVR_JOB_NONE;
        if (rep.type == EVR_MSG_JOB)
            evr_job_status_parse(rep.status, &st);
        int done = rep.type != EVR_MSG_JOB ? evr_cli_refused(cli, &rep) + 1
                 : st >= EVR_JOB_SUCCEEDED ? (st == EVR_JOB_SUCCEEDED ? 1 : 2) : 0;
        errno = 0;
        if (done && rep.type == EVR_MSG_JOB && cli->json)
            evr_cli_json(&rep);     /* the end as `status --json` prints it */
        else if (done && rep.type == EVR_MSG_JOB) {
            char allowed[48] = "";  /* as status says it, and the runner's last line */
            if (rep.allowed_failures)
                snprintf(allowed, sizeof allowed, " (%u step%s failed (allowed))",
                         rep.allowed_failures, rep.allowed_failures == 1 ? "" : "s");
            printf("job %s %s%s%s%s\n", job, rep.status, allowed, rep.reason ? ": " : "",
                   rep.reason ? rep.reason : "");
        }
        if (done && (s_out_check(cli), cli->out_err)) {   /* it ended: said so on stderr */
            s_out_said(cli);
            fprintf(stderr, "%s: job %s %s (not written to stdout: evrun-cli status %s)\n",
                    cli->prog, job, rep.type == EVR_MSG_JOB ? rep.status : "?", job);
            evr_msg_clear(&rep);
            return 2;
        }
        evr_msg_clear(&rep);
        if (done)
            return done - 1;
        if (*stop)
            return EVR_CLI_INTERRUPTED;
        zclock_sleep(300);
    }
}

int
evr_cli_wait(evr_cli_t *cli, const char *job, volatile sig_atomic_t *stop)
{
    return s_wait(cli, job, stop, false);
}

int
evr_cli_send_job(evr_cli_t *cli, evr_msg_t *req)
{
    evr_err_t err;
    for (int attempt = 1;; attempt++) {
        evr_msg_t rep = { 0 };
        evr_rc_t rc = evr_client_call(cli->client, req, &rep, &err);
        if (rc == EVR_ERR_IO && attempt < 3) {   /* not a message over a limit */
            fprintf(stderr, "%s: %s; sending job %s again\n", cli->prog, err.msg, req->job);
            evr_client_destroy(&cli->client);
            if (evr_client_new(cli->cfg, &cli->client, &err) == EVR_OK)
                continue;
        }
        if (rc) {
            fprintf(stderr, "%s: %s\n", cli->prog, err.msg);
            return 2;
        }
        int status = 0;
        errno = 0;
        if (rep.type != EVR_MSG_ACCEPTED)
            status = evr_cli_refused(cli, &rep);
        else if (cli->json)
            evr_cli_json(&rep);
        else {
            if (cli->id_only) {   /* J=$(evrun-cli submit F) takes the id alone */
                printf("%s\n", rep.job);
                fflush(stdout);
            }
            fprintf(cli->id_only ? stderr : stdout, "job %s accepted (pipeline %s)%s\n",
                    rep.job, req->spec ? req->spec->pipeline : req->pipeline,
                    rep.existing ? ", submitted before" : "");
        }
        if (rep.type == EVR_MSG_ACCEPTED && rep.message && !cli->json)
            fprintf(stderr, "%s: note: %s\n", cli->prog, rep.message);
        s_out_check(cli);
        evr_msg_clear(&rep);
        return status;
    }
}

static int
s_run_common(int argc, char **argv, const char *name)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "arg", required_argument, NULL, 'a' },
        { "label", required_argument, NULL, 'l' }, { "follow", no_argument, NULL, 'f' },
        { "wait", no_argument, NULL, 'w' }, { "events", no_argument, NULL, 'e' },
        { "count", required_argument, NULL, 'N' }, { NULL, 0, NULL, 0 },
    };
    bool run = !strcmp(name, "run");
    evr_cli_t cli = { .prog = run ? "evrun-cli run" : "evrun-cli submit", .id_only = !run };
    evr_msg_t req = { .type = EVR_MSG_SUBMIT };
    bool follow = false, wait = false, events = false;
    long count = 1;
    char *end;
    int c, status = 0;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, run ? "a:fwh" : "a:h", opts)) != -1
           && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        int taken = evr_cli_job_opt(cli.prog, c, optarg, &req);
        if (taken >= 0) {
            status = taken;
            continue;
        }
        switch (c) {
        case 'f': follow = true; break;
        case 'w': wait = true; break;
        case 'e': events = true; break;
        case 'N':
            errno = 0;
            count = strtol(optarg, &end, 10);
            if (run || errno || end == optarg || *end || count < 1 || count > S_COUNT_MAX) {
                fprintf(stderr, "%s: --count %s: %s\n", cli.prog, optarg,
                        run ? "submit only (run follows one job)"
                            : "expected a number of jobs, 1.." S_COUNT_MAX_S);
                status = 2;
            }
            break;
        case 'h': s_run_help(stdout, name); evr_msg_clear(&req); return 0;
        default: status = 2; break;
        }
    }
    if (!status && !run && (follow || wait || events)) {   /* run's, not taken in silence */
        fprintf(stderr, "%s: --%s: run only (submit returns once the job is queued: evrun-cli "
                "run FILE --%s)\n", cli.prog, follow ? "follow" : wait ? "wait" : "events",
                follow ? "follow" : wait ? "wait" : "follow --events");
        status = 2;
    }
    else if (!status && follow && wait) {
        fprintf(stderr, "%s: --follow or --wait, not both (--follow waits too, printing the "
                "output)\n", cli.prog);
        status = 2;
    }
    else if (!status && optind != argc - 1) {
        fprintf(stderr, "%s: expected one pipeline FILE\n", cli.prog);
        status = 2;
    }
    else if (!status && !*argv[optind]) {   /* else ": cannot open", naming nothing */
        fprintf(stderr, "%s: the pipeline file name is empty: give the path of a .yml file\n",
                cli.prog);
        status = 2;
    }
    if (status) {
        evr_cli_brief(cli.prog, s_run_help_cb, name);
        evr_msg_clear(&req);
        return status;
    }
    req.spec = evr_spec_new();
    char job[EVR_ULID_LEN + 1];
    evr_ulid_new(job);
    req.job = evr_strdup(job);
    if (!s_load(cli.prog, argv[optind], &req))
        status = 2;
    else if (req.spec->schedule || req.spec->on.present)   /* said, and submitted as any file */
        fprintf(stderr, "%s: note: %s used by registered pipelines only (a file in the "
                "broker's pipelines_dir%s); this job runs once, %s\n", cli.prog,
                !req.spec->on.present ? "schedule is" : req.spec->schedule
                ? "schedule and on: are" : "on: is",
                req.spec->on.present ? ", started by evrun-gateway's webhooks" : "",
                req.spec->start_delay ? "after its start_delay" : "now");
    if (!status && (follow || wait) && !(status = evr_cli_settings(&cli)))
        evr_cli_catch_stop();
    if (!status && !(status = evr_cli_connect(&cli))
        && !(status = follow ? evr_cli_follow_first(&cli, job) : 0)
        && !(status = evr_cli_send_job(&cli, &req))) {
        evr_cli_warn_no_runner(&cli, &req);
        for (long i = 1; i < count && !status; i++) {   /* --count: the same, new ids */
            evr_ulid_new(job);
            free(req.job);
            req.job = evr_strdup(job);
            status = evr_cli_send_job(&cli, &req);
        }
    }
    if (!status)
        status = evr_cli_after_submit(&cli, job, follow, wait, events);
    evr_msg_clear(&req);
    evr_cli_done(&cli);
    return status;
}

void
evr_cli_catch_stop(void)
{
    evr_cli_on_stop(s_on_signal);
}

int
evr_cli_follow_first(evr_cli_t *cli, const char *job)
{
    char prefix[64], from[600];
    evr_err_t err;
    snprintf(prefix, sizeof prefix, "ev.%s.", job);
    cli->sub = evr_client_subscribe(cli->cfg, prefix, &err);
    if (s_stop) {   /* Ctrl-C in the wait (which it cut short): before the submit */
        fprintf(stderr, "%s: stopped; nothing submitted\n", cli->prog);
        return EVR_CLI_INTERRUPTED;
    }
    if (cli->sub)
        return 0;
    const char *src = evr_config_source(cli->cfg, "events_endpoint");
    fprintf(stderr, "%s: %s\n%s: nothing submitted: --follow prints the job's output from the "
            "broker's event stream, and events_endpoint = \"%s\" (%s%s) gave none: give "
            "--events-endpoint (or events_endpoint in the settings file) the broker's events "
            "endpoint and run this again, or run it without --follow\n", cli->prog, err.msg,
            cli->prog, evr_config_get(cli->cfg, "events_endpoint"),
            strcmp(src, "derived") && strcmp(src, "default") ? "from " : "the default",
            strcmp(src, "derived") && strcmp(src, "default")
                ? evr_config_from(cli->cfg, "events_endpoint", from, sizeof from) : "");
    return 2;
}

int
evr_cli_after_submit(evr_cli_t *cli, const char *job, bool follow, bool wait, bool events)
{
    int status = 0, out_err = cli->out_err;
    evr_cli_catch_stop();
    evr_client_set_stop(cli->client, &s_stop);  /* a Ctrl-C ends a wait for an answer */
    if (cli->out_err)   /* its id or accepted line (with --follow, its end would be lost too) */
        status = s_out_said(cli);
    else if (follow) {
        evr_follow_opts_t fo = { .job = job, .events = events, .json = cli->json, .follow = true,
                                 .out = stdout };
        status = evr_follow_on(cli->prog, cli->cfg, cli->client, &fo, &cli->sub, &s_stop);
        if (status != 2 && !s_stop)
            status = s_wait(cli, job, &s_stop, true);   /* its end: a line, or JSON */
        if (s_stop)
            status = EVR_CLI_INTERRUPTED;
    }
    else if (wait)
        status = evr_cli_wait(cli, job, &s_stop);
    if (status == EVR_CLI_INTERRUPTED)
        fprintf(stderr, "%s: stopped %s; job %s goes on (evrun-cli cancel %s)\n", cli->prog,
                follow ? "following" : "waiting", job, job);
    else if (status == 2 && (follow || wait) && (!cli->out_err || out_err))
        /* submitted: not to be submitted again (unless its end was written) */
        fprintf(stderr, "%s: job %s was submitted and goes on (%s: evrun-cli %s %s; to stop "
                "it: evrun-cli cancel %s)\n", cli->prog, job, follow ? "to follow it" : "its status",
                follow ? "logs --follow" : "status", job, job);
    return status;
}

int
evr_cli_run(int argc, char **argv)
{
    return s_run_common(argc, argv, "run");
}

int
evr_cli_submit(int argc, char **argv)
{
    return s_run_common(argc, argv, "submit");
}

/* --------------------------------------------- cancel, pause, resume, drain */

static const struct {
    const char *name;
    evr_msgtype_t type;
    const char *what;
} s_simple[] = {
    { "cancel", EVR_MSG_CANCEL, "Cancels a job: a queued one leaves the queue; a running one has\n"
                                "its steps stopped (SIGTERM, then SIGKILL after the runner's\n"
                                "grace) and the rest skipped, but for its `when: always` steps,\n"
                                "which run then. Cancelled again while it is being cancelled,\n"
                                "those are stopped too, at once (SIGKILL), and it ends\n"
                                "cancelled." },
    { "pause", EVR_MSG_PAUSE, "Pauses a job: a queued one is held in the queue; a running one\n"
                              "has its containers paused and starts no new step." },
    { "resume", EVR_MSG_RESUME, "Resumes a paused job." },
    { "drain", EVR_MSG_DRAIN, "Drains a runner: it takes no new jobs and finishes its running\n"
                              "ones (and exits then, when started with --exit-when-drained).\n"
                              "A runner not connected gets the drain when it is back. The drain\n"
                              "lasts as long as the runner process: started again, it takes jobs." },
};

static int
s_simple_cmd(int argc, char **argv, size_t which)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "reason", required_argument, NULL, 'r' }, { NULL, 0, NULL, 0 },
    };
    char prog[64];
    snprintf(prog, sizeof prog, "evrun-cli %s", s_simple[which].name);
    evr_cli_t cli = { .prog = prog };
    const char *reason = NULL;
    bool drain = s_simple[which].type == EVR_MSG_DRAIN;
    int c, status = 0;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, "h", opts)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        if (c == 'r' && s_simple[which].type == EVR_MSG_CANCEL)
            reason = optarg;
        else if (c == 'r') {   /* the option table is shared: say why */
            fprintf(stderr, "%s: --reason goes with evrun-cli cancel only (see --help)\n", prog);
            status = 2;
        }
        else if (c == 'h') {
            printf("usage: evrun-cli %s %s [options]\n\n%s\n\n%s%s\nexit status: 0 done (for a "
                   "running job or a connected runner: sent to it; evrun-cli status\nand runners "
                   "show when it took effect); 1 "
                   "refused (no such %s, or not possible in its state); 2 usage, or the broker "
                   "unreachable\n", s_simple[which].name, drain ? "RUNNER" : "JOB_ID",
                   s_simple[which].what, s_simple[which].type == EVR_MSG_CANCEL
                   ? "  --reason TEXT        why (recorded in the job's history)\n" : "",
                   EVR_CLI_COMMON_HELP, drain ? "runner" : "job");
            return 0;
        }
        else
            status = 2;
    }
    if (!status && optind != argc - 1) {
        fprintf(stderr, "%s: expected one %s (see --help)\n", prog, drain ? "RUNNER" : "JOB_ID");
        status = 2;
    }
    if (status)
        return status;
    evr_msg_t req = { .type = s_simple[which].type, .reason = (char *) reason };
    if (drain && !evr_cli_name_arg(prog, "", "a runner id", argv[optind]))
        return 2;
    if (drain)
        req.runner = argv[optind];
    else if (!(req.job = evr_client_job_arg(prog, argv[optind])))
        return 2;
    evr_msg_t rep = { 0 };
    if (!(status = evr_cli_connect(&cli))
        && !(status = evr_cli_call(&cli, &req, EVR_MSG_OK, &rep))) {
        if (cli.json)
            evr_cli_json(&rep);
        else
            printf("%s\n", rep.message ? rep.message : "ok");
    }
    evr_msg_clear(&rep);
    if (!drain)
        free(req.job);
    evr_cli_done(&cli);
    return status;
}

int
evr_cli_cancel(int argc, char **argv)
{
    return s_simple_cmd(argc, argv, 0);
}

int
evr_cli_pause(int argc, char **argv)
{
    return s_simple_cmd(argc, argv, 1);
}

int
evr_cli_resume(int argc, char **argv)
{
    return s_simple_cmd(argc, argv, 2);
}

int
evr_cli_drain(int argc, char **argv)
{
    return s_simple_cmd(argc, argv, 3);
}

/* ------------------------------------------------------------------ logs */

int
evr_cli_logs(int argc, char **argv)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "follow", no_argument, NULL, 'f' },
        { "step", required_argument, NULL, 's' }, { "events", no_argument, NULL, 'e' },
        { NULL, 0, NULL, 0 },
    };
    evr_cli_t cli = { .prog = "evrun-cli logs" };
    evr_follow_opts_t fo = { .job_end = true, .queued_note = true, .out = stdout };
    int c, status = 0;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, "fh", opts)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        switch (c) {
        case 'f': fo.follow = true; break;
        case 's':
            fo.step = optarg;
            status = evr_cli_step_arg(cli.prog, optarg) ? 0 : 2;
            break;
        case 'e': fo.events = true; break;
        case 'h':
            printf("usage: evrun-cli logs JOB_ID [--follow] [--step S] [--events] [options]\n\n"
                   "Prints a job's output as `step | line`, from its first line; a step that\n"
                   "did not succeed gets a line (`step > failed (exit 1)`, `step > skipped: why`),\n"
                   "and so does the job's end when it did not (`job ID failed: why`).  A job\n"
                   "still in the queue has none yet: stderr says so (--follow waits).\n\n"
                   "  -f, --follow         go on printing live until the job ends; exit with "
                   "its status\n"
                   "                       (a broker that does not answer within --timeout-ms\n"
                   "                       is said once on stderr and asked again a second\n"
                   "                       after each wait, each wait doubled up to 8x)\n"
                   "  --step S             only step S (a matrix step's name: all its\n"
                   "                       combinations; a name the job has no step for:\n"
                   "                       exit 2, naming its steps)\n"
                   "  --events             lifecycle events too\n%s\nexit status: 0 ok (with "
                   "--follow: the job succeeded); 1 the job failed\n(--follow); 2 no such job, "
                   "usage, or the broker unreachable; 130 --follow\ninterrupted (Ctrl-C, "
                   "SIGTERM) before the job ended\n", EVR_CLI_COMMON_HELP);
            return 0;
        default: status = 2; break;
        }
    }
    char *job = status ? NULL : evr_cli_job_operand(&cli, argc, argv, optind);
    if (!status && !job)
        status = 2;
    /* from before the connect: a Ctrl-C then is not lost (or fatal) */
    if (!status && !(status = evr_cli_settings(&cli)))
        evr_cli_catch_stop();
    if (!status && !(status = evr_cli_connect(&cli))) {
        fo.job = job;
        fo.json = cli.json;
        status = evr_follow(cli.prog, cli.cfg, cli.client, &fo, &s_stop);
        if (!fo.follow && status == 1)
            status = 0;
        if (fo.follow && s_stop && status < 2)
            status = EVR_CLI_INTERRUPTED;   /* before the job ended */
    }
    free(job);
    evr_cli_done(&cli);
    return status;
}
