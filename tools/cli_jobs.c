/*  cli_jobs.c: the job commands of evrun-cli: run, submit, cancel, pause,
    resume, status, jobs, logs.  Each parses its options, sends one request
    (or follows the event stream) and prints the answer, as text or JSON. */
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
#include "evr_json.h"
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
    else if (req.spec->schedule)   /* said, and submitted as any file */
        fprintf(stderr, "%s: note: schedule is used by registered pipelines only (a file in the "
                "broker's pipelines_dir); this job runs once, %s\n", cli.prog,
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
    evr_err_t err;
    if (!(status = evr_cli_connect(&cli))) {
        if (evr_client_call(cli.client, &req, &rep, &err)) {
            fprintf(stderr, "%s: %s\n", prog, err.msg);
            status = 2;
        }
        else if (rep.type != EVR_MSG_OK)
            status = evr_cli_refused(&cli, &rep);
        else if (cli.json)
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

/* ------------------------------------------------------ status, jobs, runners */

static void
s_print_job(const evr_msg_t *m)
{
    char c[32], s[32], f[32];
    evr_time_format(m->created, c, sizeof c);
    evr_time_format(m->started, s, sizeof s);
    evr_time_format(m->finished, f, sizeof f);
    printf("job       %s\npipeline  %s\nstatus    %s", m->job, m->pipeline, m->status);
    if (m->allowed_failures)
        printf(" (%u step%s failed (allowed))", m->allowed_failures,
               m->allowed_failures == 1 ? "" : "s");
    printf("\n");
    if (m->reason)
        printf("reason    %s\n", m->reason);
    if (m->parent_job)
        printf("parent    %s (step %s)\n", m->parent_job, m->parent_step ? m->parent_step : "?");
    printf("runner    %s\nsteps     %u/%u done\ncreated   %s\nstarted   %s\nfinished  %s\n",
           m->runner ? m->runner : "-", m->steps_done, m->steps_total, c, s, f);
    if (m->started && m->finished)
        printf("duration  %.3f s\n", (double) (m->finished - m->started) / 1e9);
    for (uint32_t i = 0; i < m->children.n; i++)   /* jobs its steps triggered */
        printf("%-10s%s\n", i ? "" : "children", m->children.v[i]);
    for (uint32_t i = 0; i < m->outputs.n; i++)   /* STEP/KEY: the step's outputs */
        printf("%-10s%s=%s\n", i ? "" : "outputs", m->outputs.k[i], m->outputs.v[i]);
}

/*  A job of a `jobs --tree` listing: its line, its children. */
typedef struct {
    char id[EVR_ULID_LEN + 1];
    char *line;
    evr_strlist_t children;
    bool child;     /* a child of a job of the listing: printed under it */
} s_node_t;

/*  A `jobs` listing: the last job printed, the cursor of the next page;
    with --tree the jobs held until the end. */
typedef struct {
    evr_cli_t *cli;
    char last[EVR_ULID_LEN + 1];
    bool tree;
    s_node_t *nodes;
    size_t n;
    evr_msgtype_t type;     /* EVR_MSG_JOBS or EVR_MSG_RUNNERS */
    bool headed;            /* the table's header printed */
    bool waiting;           /* a job listed is queued or paused */
} s_listing_t;

/*  The table's header, once, before its first row (or at the end of an
    empty listing): never before an error. */
static void
s_header(s_listing_t *ls)
{
    bool jobs = ls->type == EVR_MSG_JOBS;
    if (ls->headed || ls->cli->json)
        return;
    ls->headed = true;
    printf(jobs ? "%-26s  %-20s  %-10s  %-7s  %-20s  %s\n" : "%-24s  %-8s  %-9s  %-20s  %s\n",
           jobs ? "JOB" : "RUNNER", jobs ? "PIPELINE" : "STATE", jobs ? "STATUS" : "RUN/CAP",
           jobs ? "STEPS" : "LABELS", jobs ? "RUNNER" : "LAST HEARTBEAT", jobs ? "CREATED" : "");
}

static int
s_list_job(const evr_msg_t *m, void *arg)
{
    s_listing_t *ls = arg;
    evr_cli_t *cli = ls->cli;
    snprintf(ls->last, sizeof ls->last, "%s", m->job);
    ls->waiting |= m->status && (!strcmp(m->status, "queued") || !strcmp(m->status, "paused"));
    s_header(ls);
    if (cli->json) {
        evr_cli_json(m);
        return 0;
    }
    char c[32], fail[48] = "";
    evr_time_format(m->created, c, sizeof c);
    if (m->allowed_failures)   /* after the columns: a script's fields stay where they were */
        snprintf(fail, sizeof fail, "  %u failed (allowed)", m->allowed_failures);
    char *line = evr_asprintf("%-20s  %-10s  %3u/%-3u  %-20s  %s%s", m->pipeline, m->status,
                              m->steps_done, m->steps_total, m->runner ? m->runner : "-", c,
                              fail);
    if (!ls->tree) {
        printf("%-26s  %s\n", m->job, line);
        free(line);
        return 0;
    }
    ls->nodes = evr_realloc(ls->nodes, (ls->n + 1) * sizeof *ls->nodes);
    s_node_t *nd = &ls->nodes[ls->n++];
    *nd = (s_node_t) { .line = line };
    snprintf(nd->id, sizeof nd->id, "%s", m->job);
    for (uint32_t i = 0; i < m->children.n; i++)
        evr_strlist_push(&nd->children, m->children.v[i]);
    return 0;
}

/*  Prints node i and, indented under it, its children in the listing. */
static void
s_tree_print(s_listing_t *ls, size_t i, int depth)
{
    s_node_t *nd = &ls->nodes[i];
    printf("%*s%-*s  %s\n", 2 * depth, "", 26 - (depth < 13 ? 2 * depth : 0), nd->id, nd->line);
    for (uint32_t k = 0; k < nd->children.n && depth < 16; k++)
        for (size_t j = 0; j < ls->n; j++)
            if (j != i && !strcmp(ls->nodes[j].id, nd->children.v[k]))
                s_tree_print(ls, j, depth + 1);
}

/*  --tree: the jobs that are no listed job's child, each with its
    children under it; frees the nodes. */
static void
s_tree_end(s_listing_t *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        for (uint32_t k = 0; k < ls->nodes[i].children.n; k++)
            for (size_t j = 0; j < ls->n; j++)
                if (j != i && !strcmp(ls->nodes[j].id, ls->nodes[i].children.v[k]))
                    ls->nodes[j].child = true;
    for (size_t i = 0; i < ls->n; i++)
        if (!ls->nodes[i].child)
            s_tree_print(ls, i, 0);
    for (size_t i = 0; i < ls->n; i++) {
        free(ls->nodes[i].line);
        evr_strlist_free(&ls->nodes[i].children);
    }
    free(ls->nodes);
    ls->nodes = NULL;
    ls->n = 0;
}

static int
s_list_runner(const evr_msg_t *m, void *arg)
{
    s_listing_t *ls = arg;
    evr_cli_t *cli = ls->cli;
    s_header(ls);
    if (cli->json) {
        evr_cli_json(m);
        return 0;
    }
    char hb[32], labels[256] = "";
    evr_time_format(m->heartbeat, hb, sizeof hb);
    for (uint32_t i = 0, at = 0; i < m->labels.n && at < sizeof labels; i++)
        at += (uint32_t) snprintf(labels + at, sizeof labels - at, "%s%s", i ? "," : "",
                                  m->labels.v[i]);
    printf("%-24s  %-8s  %4u/%-4u  %-20s  %s%s\n", m->runner, m->state, m->running,
           m->capacity, labels[0] ? labels : "-", hb,
           m->ephemeral ? "  ephemeral" : "");   /* after the columns: scripts' fields stay */
    return 0;
}

/*  The providers the provisioners report, after the runners: a second
    table (a header first), or JSON lines. */
typedef struct {
    evr_cli_t *cli;
    uint32_t n;
} s_providers_t;

static int
s_list_provider(const evr_msg_t *m, void *arg)
{
    s_providers_t *ps = arg;
    if (ps->cli->json) {
        evr_cli_json(m);
        return 0;
    }
    if (!ps->n++)
        printf("\n%-20s  %-16s  %-9s  %6s  %6s  %s\n", "PROVIDER", "PROVISIONER", "RUN/MAX",
               "STARTS", "FAILED", "STATE");
    char run[32];
    snprintf(run, sizeof run, "%u/%u", m->running, m->max);
    printf("%-20s  %-16s  %-9s  %6u  %6u  %s%s\n", m->provider, m->runner ? m->runner : "-",
           run, m->starts, m->failed_starts, m->reason ? "paused: " : "active",
           m->reason ? m->reason : "");
    return 0;
}

/*  `providers` after `runners`; a broker that does not know it (or any
    refusal) lists none. */
static void
s_list_providers(evr_cli_t *cli)
{
    evr_msg_t req = { .type = EVR_MSG_PROVIDERS };
    s_providers_t ps = { cli, 0 };
    evr_err_t err;
    if (evr_client_stream(cli->client, &req, s_list_provider, &ps, &err) == EVR_ERR_IO)
        fprintf(stderr, "%s: providers: %s\n", cli->prog, err.msg);
}

/*  The demand the broker keeps, after the providers: a third table (a
    header first), or JSON lines with a "demand" key (its id). */
static int
s_list_demand(const evr_msg_t *m, void *arg)
{
    s_providers_t *ds = arg;
    if (ds->cli->json) {
        json_t *js = evr_json_from_rec(evr_msgtype_fields(m->type), m);
        json_object_set_new(js, "demand", json_string(m->job));
        json_object_del(js, "job");
        char *s = json_dumps(js, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(js);
        return 0;
    }
    if (!ds->n++)
        printf("\n%-26s  %6s  %-20s  %7s  %7s  %s\n", "DEMAND", "WANTED", "LABELS", "AGE",
               "LEFT", "SOURCE");
    char labels[256] = "", age[32] = "-", left[32];
    for (uint32_t i = 0, at = 0; i < m->labels.n && at < sizeof labels; i++)
        at += (uint32_t) snprintf(labels + at, sizeof labels - at, "%s%s", i ? "," : "",
                                  m->labels.v[i]);
    uint64_t now = evr_now_ns();
    if (m->created)     /* the broker's clock and ours: never below 0 */
        snprintf(age, sizeof age, "%llus",
                 (unsigned long long) (now > m->created ? (now - m->created) / 1000000000ull : 0));
    snprintf(left, sizeof left, "%us", m->ttl);
    printf("%-26s  %6u  %-20s  %7s  %7s  %s\n", m->job, m->count, labels[0] ? labels : "-",
           age, left, m->reason ? m->reason : "-");
    return 0;
}

/*  `demands` after `providers`; a broker that does not know it (or any
    refusal) lists none. */
static void
s_list_demands(evr_cli_t *cli)
{
    evr_msg_t req = { .type = EVR_MSG_DEMANDS };
    s_providers_t ds = { cli, 0 };
    evr_err_t err;
    if (evr_client_stream(cli->client, &req, s_list_demand, &ds, &err) == EVR_ERR_IO)
        fprintf(stderr, "%s: demands: %s\n", cli->prog, err.msg);
}

/*  status, jobs and runners: one request, a table or JSON lines. */
static int
s_query(int argc, char **argv, evr_msgtype_t type)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "pipeline", required_argument, NULL, 'p' },
        { "status", required_argument, NULL, 's' }, { "limit", required_argument, NULL, 'n' },
        { "before", required_argument, NULL, 'b' }, { "tree", no_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    bool tree = false;
    const char *name = type == EVR_MSG_STATUS ? "status" : type == EVR_MSG_JOBS ? "jobs"
                                                                                 : "runners";
    char prog[64];
    snprintf(prog, sizeof prog, "evrun-cli %s", name);
    evr_cli_t cli = { .prog = prog };
    evr_msg_t req = { .type = type };
    int c, status = 0;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, "h", opts)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        if (type == EVR_MSG_JOBS && c == 'p') {
            req.pipeline = optarg;
            if (!evr_cli_pipeline_arg(prog, "--pipeline", optarg))
                status = 2;
        }
        else if (type == EVR_MSG_JOBS && c == 's')
            req.status = optarg;
        else if (type == EVR_MSG_JOBS && c == 't')
            tree = true;
        else if (type == EVR_MSG_JOBS && c == 'n') {
            unsigned long n;
            if (evr_cli_uint_arg(prog, "--limit", optarg, 1, 10000, &n))
                req.limit = (uint32_t) n;
            else
                status = 2;
        }
        else if (type == EVR_MSG_JOBS && c == 'b') {
            free(req.job);
            char *opt = evr_asprintf("%s: --before", prog);   /* which JOB_ID was wrong */
            if (!(req.job = evr_client_job_arg(opt, optarg)))
                status = 2;
            free(opt);
        }
        else if (c == 'h') {
            printf("usage: evrun-cli %s%s [options]\n\n%s\n\n%s%s\nexit status: 0 ok; 1 refused "
                   "%s; 2 usage, or the broker unreachable\n", name,
                   type == EVR_MSG_STATUS ? " JOB_ID" : "",
                   type == EVR_MSG_STATUS ? "Prints one job's state: status, runner, steps "
                                            "done, times, why it failed, and\nits steps' "
                                            "outputs (STEP/KEY=VALUE, masked)."
                   : type == EVR_MSG_JOBS ? "Lists jobs, newest first: queued, running and "
                                            "finished.  When jobs are\nleft past the "
                                            "limit, says so on stderr with the command for "
                                            "the next page;\nwithout --json, stderr also "
                                            "says the broker's queue limit (a pipeline\n"
                                            "whose queue sets no limit waits at most that many "
                                            "jobs)."
                                          : "Lists the runners the broker knows: state (idle, "
                                            "busy, draining,\nlost, or stopped: it said goodbye), "
                                            "running/capacity, labels,\nlast heartbeat; "
                                            "`ephemeral` after it for a single-use "
                                            "runner\n(evrun-runner --once).  Then the providers "
                                            "evrun-provisioners report:\nrunning/max, starts, "
                                            "failed starts, state (active, or paused: why);\nin "
                                            "--json, objects with a \"provider\" key.  Then the "
                                            "demand the\nbroker keeps (POST /api/v1/demand, GitHub "
                                            "workflow_job events):\nrunners still wanted, labels, "
                                            "age, seconds left, source; in --json,\nobjects with a "
                                            "\"demand\" key (its id).",
                   type == EVR_MSG_JOBS ? "  --pipeline NAME      only this pipeline's jobs\n"
                                          "  --status S           only jobs in state S (queued "
                                          "running paused succeeded\n                       "
                                          "failed cancelled timed_out lost)\n"
                                          "  --limit N            at most N jobs (default 100, "
                                          "at most 10000)\n"
                                          "  --before JOB_ID      only jobs older than JOB_ID: "
                                          "the next page\n"
                                          "  --tree               a job a listed job's step "
                                          "triggered under it, indented\n"
                                        : "", EVR_CLI_COMMON_HELP,
                   type == EVR_MSG_STATUS ? "(no such job)" : "(by the broker)");
            return 0;
        }
        else
            status = 2;
    }
    int want = type == EVR_MSG_STATUS ? 1 : 0;
    if (!status && argc - optind != want) {
        fprintf(stderr, "%s: %s (see --help)\n", prog, want ? "expected one JOB_ID"
                                                            : "unexpected arguments");
        status = 2;
    }
    if (!status && want && !(req.job = evr_client_job_arg(prog, argv[optind])))
        status = 2;
    evr_job_status_t st;
    if (!status && req.status && !evr_job_status_parse(req.status, &st)) {
        fprintf(stderr, "%s: --status %s: expected queued, running, paused, succeeded, failed, "
                "cancelled, timed_out or lost\n", prog, req.status);
        status = 2;
    }
    if (status || (status = evr_cli_connect(&cli))) {
        free(req.job);
        evr_cli_done(&cli);
        return status;
    }
    evr_err_t err;
    if (type == EVR_MSG_STATUS) {
        evr_msg_t rep = { 0 };
        if (evr_client_call(cli.client, &req, &rep, &err)) {
            fprintf(stderr, "%s: %s\n", prog, err.msg);
            status = 2;
        }
        else if (rep.type != EVR_MSG_JOB)
            status = evr_cli_refused(&cli, &rep);
        else if (cli.json)
            evr_cli_json(&rep);
        else {
            s_print_job(&rep);
            if (rep.status && !strcmp(rep.status, "queued"))
                evr_cli_status_waiting(&cli, &rep);
        }
        evr_msg_clear(&rep);
    }
    else {
        s_listing_t ls = { &cli, "", tree, NULL, 0, type, false, false };
        evr_msg_t end = { 0 };
        evr_rc_t rc = type == EVR_MSG_JOBS
                    ? evr_client_stream_end(cli.client, &req, s_list_job, &ls, &end, &err)
                    : evr_client_stream(cli.client, &req, s_list_runner, &ls, &err);
        if (!rc)
            s_header(&ls);      /* an empty listing: the header alone */
        if (ls.tree)
            s_tree_end(&ls);
        if (rc) {
            fprintf(stderr, "%s: %s\n", prog, err.msg);
            status = rc == EVR_ERR_STATE ? 1 : 2;
        }
        else if (end.more && ls.last[0]) {
            char lim[32] = "";
            if (req.limit)
                snprintf(lim, sizeof lim, " --limit %u", req.limit);
            /* the page as this one is printed: --tree and --json kept (the
               next page was a table, a flat one) */
            fprintf(stderr, "%s: more jobs past this page; the next: evrun-cli jobs --before %s%s"
                    "%s%s%s%s%s%s\n", prog, ls.last, lim, req.pipeline ? " --pipeline " : "",
                    req.pipeline ? req.pipeline : "", req.status ? " --status " : "",
                    req.status ? req.status : "", tree ? " --tree" : "",
                    cli.json ? " --json" : "");
        }
        if (!rc && type == EVR_MSG_RUNNERS) {
            s_list_providers(&cli);
            s_list_demands(&cli);
        }
        /* on stderr: the listing stays the jobs alone; only when some wait (it bounds them) */
        if (!rc && end.queue_limit && !cli.json && ls.waiting)
            fprintf(stderr, "%s: queue limit %u: the most jobs waiting per pipeline whose "
                    "queue sets no limit (evrun-broker --queue-limit)\n", prog,
                    end.queue_limit);
        evr_msg_clear(&end);
    }
    free(req.job);
    evr_cli_done(&cli);
    return status;
}

int
evr_cli_status(int argc, char **argv)
{
    return s_query(argc, argv, EVR_MSG_STATUS);
}

int
evr_cli_jobs(int argc, char **argv)
{
    return s_query(argc, argv, EVR_MSG_JOBS);
}

int
evr_cli_runners(int argc, char **argv)
{
    return s_query(argc, argv, EVR_MSG_RUNNERS);
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
