/*  evrun-provisioner: starts single-use runners (evrun-runner --once) for
    the jobs that wait for a runner no idle one can serve, from the
    providers of its config file (evr_prov.h, evr_prov_run.h).

    A client of the broker like evrun-cli (the same settings: ipc:// to a
    local broker, tcp:// with CURVE): every --poll-ms it asks the queued
    jobs (`jobs --status queued`, each with its labels) and the runners
    (`runners`, each with its credit), tends its runners and makes a
    matching pass.  Its providers' table is written to
    STATE/provisioner/providers at each pass (--status prints it).
    main() only wires things; signals set a flag.
*/
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_bus.h"
#include "evr_getopt.h"
#include "evr_lock.h"
#include "evr_log.h"
#include "evr_prov_run.h"

#define S_MAX_ITEMS 1000     /* jobs asked per pass (the newest queued), runners kept */

static volatile sig_atomic_t s_stop, s_hup;

static void
s_on_signal(int sig)
{
    if (sig == SIGHUP)
        s_hup = 1;
    else
        s_stop++;
}

static void
s_help(FILE *out)
{
    fprintf(out,
            "usage: evrun-provisioner --config FILE [--dry-run] [options]\n"
            "       evrun-provisioner --status [options]\n"
            "\n"
            "Starts single-use runners (evrun-runner --once) for jobs that wait in the\n"
            "broker's queue with labels no runner with a free slot has: a job goes to the\n"
            "first provider of FILE whose labels (and executors) include all of the job's\n"
            "and that has room (max), within max_runners and start_rate.  Demand the\n"
            "broker keeps (evrun-gateway's GitHub workflow_job events, POST\n"
            "/api/v1/demand) counts as that many more waiting jobs.  A runner that\n"
            "does not say hello within register_timeout, or says it without the\n"
            "provider's labels, is stopped and counts as a failed start; 3 failed starts\n"
            "in a row pause a provider until the provisioner restarts.  Its providers\n"
            "(state, running/max, starts, failed starts) are reported to the broker at\n"
            "each pass: `evrun-cli runners` lists them.\n"
            "Provider kinds: process (evrun-runner on this host), podman (the runner in a\n"
            "container of podman_url's service, image localhost/evrun-runner:latest by\n"
            "default, built by tools/build-runner-image; the podman socket, the broker's\n"
            "ipc directory and DIR/runners/ID bound at their host paths; removed when it\n"
            "exits) and command (a start/stop template for any scheduler).\n"
            "See README \"Ephemeral runners and the provisioner\".\n"
            "\n"
            "  --config FILE        the providers (YAML; see README)\n"
            "  --dry-run            one matching pass: print, for each waiting job and\n"
            "                       each runner demand wants, which provider would start\n"
            "                       a runner and why the others did not match; start\n"
            "                       nothing, exit 0\n"
            "  --status             print the providers' table the running provisioner\n"
            "                       wrote (STATE/provisioner/providers), exit; exit 1\n"
            "                       saying so when none runs with the directory\n"
            "  --poll-ms N          how often the broker is asked (default 1000)\n"
            "  --dir DIR            the runners' state directories and logs (default\n"
            "                       STATE/provisioner; podman runners: DIR/runners/ID/state\n"
            "                       at most 73 bytes, for their control sockets)\n"
            "  --log-level LEVEL    error, warn, info (default) or debug\n"
            "  --id ID              this provisioner's name in its reports to the broker\n"
            "                       (default provisioner; give each provisioner its own)\n"
            "  --settings FILE      evrun settings file (default $EVRUN_CONFIG, else\n"
            "                       $XDG_CONFIG_HOME/evrun/evrun.yml, XDG_CONFIG_HOME\n"
            "                       unset: ~/.config/evrun/evrun.yml, when it exists)\n"
            "  --state-dir DIR      state directory (default $EVRUN_STATE_DIR, else\n"
            "                       $XDG_STATE_HOME/evrun, else ~/.local/state/evrun)\n"
            "  --broker EP          the broker's client endpoint (default: the local broker\n"
            "                       of `evrun-cli up` when it runs, else tcp://127.0.0.1:7700);\n"
            "                       the runners get its runner endpoint (ipc: .../runners,\n"
            "                       tcp: port+1) unless the config sets runner_endpoint\n"
            "  --timeout-ms N       longest wait for an answer (default 10000)\n"
            "  --curve-cert FILE    CURVE key pair for a tcp:// broker (as evrun-cli)\n"
            "  --broker-key KEY     the broker's public key (as evrun-cli)\n"
            "  -h, --help           this text\n"
            "  --version            print the version, exit (given alone)\n"
            "\n"
            "SIGTERM or SIGINT: the broker is asked for the runners afresh; those not\n"
            "registered yet, and process and podman runners waiting for a job, get\n"
            "SIGTERM and 5 s to exit (then one the broker never listed is killed); the\n"
            "others finish their job (a second signal ends the wait).  A provisioner\n"
            "holds DIR/lock while it runs (a second one on DIR is refused) and removes\n"
            "its table at its stop; started where one was killed, it adopts the process,\n"
            "podman and command runners that one left.  SIGHUP is ignored (said in the\n"
            "log): the config is read at the start only.  exit status: 0 stopped, or\n"
            "--dry-run/--status done; 1 --status: no provisioner runs with DIR; 2 bad\n"
            "config or usage, DIR in use by another provisioner, or the broker\n"
            "unreachable (--dry-run)\n");
}

static void
s_help_cb(FILE *out, const void *arg)
{
    (void) arg;
    s_help(out);
}

typedef struct {
    const char *config, *dir, *level, *id;
    bool dry, status;
    int poll_ms;
} s_opts_t;

static int
s_parse(int argc, char **argv, s_opts_t *o, evr_cli_t *cli)
{
    static const struct option opts[] = {
        { "state-dir", required_argument, NULL, 1000 }, { "broker", required_argument, NULL, 1001 },
        { "settings", required_argument, NULL, 1003 },
        { "timeout-ms", required_argument, NULL, 1004 },
        { "curve-cert", required_argument, NULL, 1007 },
        { "broker-key", required_argument, NULL, 1008 },
        { "config", required_argument, NULL, 'c' }, { "dry-run", no_argument, NULL, 'n' },
        { "status", no_argument, NULL, 's' }, { "poll-ms", required_argument, NULL, 'p' },
        { "dir", required_argument, NULL, 'd' }, { "log-level", required_argument, NULL, 'l' },
        { "id", required_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = evr_getopt("evrun-provisioner", argc, argv, "h", opts)) != -1) {
        if (c == 1003 && !*optarg) {   /* its settings are --settings, not --config */
            fprintf(stderr, "evrun-provisioner: --settings \"\": expected a settings file "
                    "(leave --settings out for the default)\n");
            return 2;
        }
        if (evr_cli_common(cli, c, optarg))
            continue;
        switch (c) {
        case 'c': o->config = optarg; break;
        case 'n': o->dry = true; break;
        case 's': o->status = true; break;
        case 'd': o->dir = optarg; break;
        case 'l': o->level = optarg; break;
        case 'i': o->id = optarg; break;
        case 'p': {
            char *end = NULL;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || errno || v < 50 || v > 600000) {
                fprintf(stderr, "evrun-provisioner: --poll-ms %s: expected a whole number of "
                        "milliseconds, 50 to 600000\n", optarg);
                return 2;
            }
            o->poll_ms = (int) v;
            break;
        }
        case 'h': s_help(stdout); return -1;
        default: evr_usage_brief("evrun-provisioner", s_help_cb, NULL); return 2;
        }
    }
    if (o->status && o->dry) {   /* two actions: which one was meant? */
        fprintf(stderr, "evrun-provisioner: --status or --dry-run, not both (--status prints "
                "the running provisioner's table, --dry-run one pass of --config's; see "
                "--help)\n");
        return 2;
    }
    if (o->dir && !*o->dir) {   /* "$DIR" unset: DIR/lock, DIR/runners/ would be at / */
        fprintf(stderr, "evrun-provisioner: --dir \"\": expected a directory (default "
                "STATE/provisioner; see --help)\n");
        return 2;
    }
    size_t idlen = strlen(o->id);
    if (!idlen || idlen > 64 || strspn(o->id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789_.-") != idlen || !isalnum((unsigned char) o->id[0])) {
        fprintf(stderr, "evrun-provisioner: --id %s: expected 1-64 bytes of "
                "[A-Za-z0-9][A-Za-z0-9_.-]*\n", o->id);
        return 2;
    }
    if (o->config && !*o->config) {   /* else ": cannot read", naming nothing */
        fprintf(stderr, "evrun-provisioner: --config \"\": expected the providers' file (see "
                "--help)\n");
        return 2;
    }
    if (optind != argc)   /* named, as every binary names it */
        fprintf(stderr, "evrun-provisioner: unexpected argument \"%s\" (the providers' file "
                "goes after --config: evrun-provisioner --config FILE)\n", argv[optind]);
    else if (!o->config && !o->status)
        fprintf(stderr, "evrun-provisioner: --config FILE is required\n");
    if (optind != argc || (!o->config && !o->status)) {
        evr_usage_brief("evrun-provisioner", s_help_cb, NULL);
        return 2;
    }
    return 0;
}

/*  The broker's runner endpoint beside its client endpoint; NULL when it
    cannot be told (runner_endpoint in the config then). */
static char *
s_runner_endpoint(const char *client)
{
    size_t len = strlen(client);
    if (!strncmp(client, "ipc://", 6) && len > 8 && !strcmp(client + len - 8, "/clients"))
        return evr_asprintf("%.*s/runners", (int) (len - 8), client);
    const char *colon = strrchr(client, ':');
    if (!strncmp(client, "tcp://", 6) && colon && colon > client + 5) {
        char *end = NULL;
        long port = strtol(colon + 1, &end, 10);
        if (end && !*end && port > 0 && port < 65535)
            return evr_asprintf("%.*s:%ld", (int) (colon - client), client, port + 1);
    }
    return NULL;
}

/*  evrun-runner beside this executable, else from PATH. */
static char *
s_runner_path(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            char *p = evr_asprintf("%.*s/evrun-runner", (int) (slash - self), self);
            if (access(p, X_OK) == 0)
                return p;
            free(p);
        }
    }
    return evr_strdup("evrun-runner");
}

/*  Whether path names an executable file; a name without a slash is
    looked for in PATH as execvp would. */
static bool
s_executable(const char *path)
{
    struct stat st;
    if (strchr(path, '/'))
        return !stat(path, &st) && S_ISREG(st.st_mode) && !access(path, X_OK);
    const char *dirs = getenv("PATH");
    for (const char *d = dirs ? dirs : "/usr/bin:/bin"; d;) {
        const char *colon = strchr(d, ':');
        int dlen = colon ? (int) (colon - d) : (int) strlen(d);
        char *full = evr_asprintf("%.*s/%s", dlen, dlen ? d : ".", path);
        bool ok = !stat(full, &st) && S_ISREG(st.st_mode) && !access(full, X_OK);
        free(full);
        if (ok)
            return true;
        d = colon ? colon + 1 : NULL;
    }
    return false;
}

/*  The process providers start runner: one that is no executable file
    would fail each start (exit 127 before its hello) until three paused
    the provider.  0, or 2 (said). */
static int
s_runner_check(const char *file, const evr_prov_config_t *cfg, const char *runner)
{
    for (uint32_t i = 0; i < cfg->nproviders; i++)
        if (cfg->providers[i].kind == EVR_PROV_PROCESS && !s_executable(runner)) {
            fprintf(stderr, "evrun-provisioner: %s: providers[%u] (%s, kind process) starts "
                    "%s, which is no executable file%s: set runner: in the config to "
                    "evrun-runner's path\n", file, i, cfg->providers[i].name, runner,
                    strchr(runner, '/') ? "" : " in PATH, nor beside evrun-provisioner");
            return 2;
        }
    return 0;
}

/*  What one pass asked the broker: the messages kept, and their views. */
typedef struct {
    evr_msg_t *msgs;
    size_t n, cap;
    evr_msgtype_t type;     /* the items kept: job, runner or demand */
} s_list_t;

static int
s_keep(const evr_msg_t *m, void *arg)
{
    s_list_t *l = arg;
    if (l->n >= S_MAX_ITEMS || m->type != l->type)
        return 0;   /* not an item of this stream (nor a late answer to another request) */
    if (!(m->type == EVR_MSG_RUNNER ? m->runner : m->job))
        return 0;
    /* a job waits for a runner: queued, no runner, no start_delay */
    if (m->type == EVR_MSG_JOB && (m->runner || m->reason || strcmp(m->status, "queued")))
        return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 32;
        l->msgs = evr_realloc(l->msgs, l->cap * sizeof *l->msgs);
    }
    evr_msg_t *d = &l->msgs[l->n++];
    *d = *m;    /* the strings are the stream's: copied below */
    d->job = m->job ? evr_strdup(m->job) : NULL;
    d->runner = m->runner ? evr_strdup(m->runner) : NULL;
    d->state = m->state ? evr_strdup(m->state) : NULL;
    d->pipeline = d->status = NULL;
    d->reason = m->type == EVR_MSG_DEMAND && m->reason ? evr_strdup(m->reason) : NULL;
    memset(&d->labels, 0, sizeof d->labels);
    for (uint32_t i = 0; i < m->labels.n; i++)
        evr_strlist_push(&d->labels, m->labels.v[i]);
    return 0;
}

static void
s_list_free(s_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->msgs[i].job);
        free(l->msgs[i].runner);
        free(l->msgs[i].state);
        free(l->msgs[i].reason);
        evr_strlist_free(&l->msgs[i].labels);
    }
    free(l->msgs);
    memset(l, 0, sizeof *l);
}

/*  The runners of l as the provisioner's views (size l->n, borrowed). */
static void
s_runner_views(const s_list_t *l, evr_prov_runner_t *v)
{
    for (size_t i = 0; i < l->n; i++)
        v[i] = (evr_prov_runner_t) { l->msgs[i].runner, &l->msgs[i].labels, l->msgs[i].state,
                                     l->msgs[i].credit, l->msgs[i].running };
}

/*  Asks the broker; false (said) when it did not answer.  The demand is
    asked last: a runner that met some since the runners were asked is
    one of this provisioner's, counted as a slot not registered yet, or
    one it does not know (then nothing is started for that demand). */
static bool
s_ask(evr_client_t *client, s_list_t *jobs, s_list_t *runners, s_list_t *demand)
{
    evr_msg_t jreq = { .type = EVR_MSG_JOBS, .status = "queued", .limit = S_MAX_ITEMS };
    evr_msg_t rreq = { .type = EVR_MSG_RUNNERS };
    evr_err_t err;
    /* the runners first: a job dispatched in between is no longer waiting
       (the other way round, it would look waiting, its runner busy) */
    if (evr_client_stream(client, &rreq, s_keep, runners, &err)
        || evr_client_stream(client, &jreq, s_keep, jobs, &err)) {
        evr_log_warn("evrun-provisioner", "asking the broker: %s (again in a moment)", err.msg);
        return false;
    }
    evr_msg_t dreq = { .type = EVR_MSG_DEMANDS };
    evr_rc_t rc = evr_client_stream(client, &dreq, s_keep, demand, &err);
    if (rc == EVR_ERR_STATE)    /* refused (a broker that knows no demand): jobs only */
        evr_log_debug("evrun-provisioner", "asking the broker for demand: %s", err.msg);
    else if (rc) {
        evr_log_warn("evrun-provisioner", "asking the broker for demand: %s (again in a "
                     "moment)", err.msg);
        return false;
    }
    return true;
}

/*  Each provider to the broker (`provider`), for `evrun-cli runners`.  No
    answer: the rest wait for the next round, the connection is made
    afresh (its late `ok` would pass for the next request's answer). */
static void
s_report(evr_prov_t *pv, evr_client_t *client, const char *id)
{
    for (uint32_t i = 0; i < evr_prov_count(pv); i++) {
        evr_msg_t m, rep = { 0 };
        evr_err_t err;
        evr_prov_describe(pv, i, &m);
        m.runner = (char *) id;
        evr_rc_t rc = evr_client_call(client, &m, &rep, &err);
        if (rc)
            evr_log_warn("evrun-provisioner", "reporting provider %s: %s", m.provider, err.msg);
        else if (rep.type == EVR_MSG_ERROR)
            evr_log_warn("evrun-provisioner", "reporting provider %s: %s: %s", m.provider,
                         rep.code, rep.message);
        evr_msg_clear(&rep);
        if (rc == EVR_ERR_IO) {
            if (evr_client_reconnect(client, &err))
                evr_log_warn("evrun-provisioner", "%s (again in a moment)", err.msg);
            break;
        }
    }
}

/*  One round: ask, tend, pass (dry: print only); the providers' table
    written to status (unless dry). */
static bool
s_round(evr_prov_t *pv, evr_client_t *client, bool dry, const char *status, const char *id)
{
    s_list_t jl = { .type = EVR_MSG_JOB }, rl = { .type = EVR_MSG_RUNNER },
             dl = { .type = EVR_MSG_DEMAND };
    bool ok = s_ask(client, &jl, &rl, &dl);
    evr_prov_job_t *jobs = evr_calloc(jl.n + dl.n + 1, sizeof *jobs);
    evr_prov_runner_t *runners = evr_calloc(rl.n + 1, sizeof *runners);
    for (size_t i = 0; i < jl.n; i++)   /* oldest first: the list is newest first */
        jobs[i] = (evr_prov_job_t) { .id = jl.msgs[jl.n - 1 - i].job,
                                     .labels = &jl.msgs[jl.n - 1 - i].labels };
    for (size_t i = 0; i < dl.n; i++)   /* then the demand, oldest first as listed */
        jobs[jl.n + i] = (evr_prov_job_t) {
            .id = dl.msgs[i].job, .labels = &dl.msgs[i].labels, .ttl = dl.msgs[i].ttl,
            .reason = dl.msgs[i].reason,
            .demand = dl.msgs[i].count > EVR_MSG_DEMAND_MAX_COUNT ? EVR_MSG_DEMAND_MAX_COUNT
                    : dl.msgs[i].count ? dl.msgs[i].count : 1 };
    s_runner_views(&rl, runners);
    uint64_t now = evr_mono_ns();
    if (!dry)
        evr_prov_tend(pv, ok ? runners : NULL, rl.n, now);
    if (ok)
        evr_prov_pass(pv, jobs, jl.n + dl.n, runners, rl.n, dry, stdout, now);
    if (!dry && ok)
        s_report(pv, client, id);
    if (!dry) {
        char *tmp = evr_asprintf("%s.new", status);
        FILE *f = fopen(tmp, "w");
        if (f) {
            evr_prov_print(pv, f);
            if (fclose(f) == 0)
                rename(tmp, status);
        }
        free(tmp);
    }
    free(jobs);
    free(runners);
    s_list_free(&jl);
    s_list_free(&rl);
    s_list_free(&dl);
    return ok;
}

/*  The runners asked afresh, for the stop (their views in *v, NULL when
    the broker did not answer: said); caller frees *v and l. */
static evr_prov_runner_t *
s_fresh_runners(evr_cli_t *cli, s_list_t *l)
{
    evr_msg_t req = { .type = EVR_MSG_RUNNERS };
    evr_err_t err;
    if (!cli->client && evr_client_new(cli->cfg, &cli->client, &err)) {
        evr_log_warn("evrun-provisioner", "stopping: %s", err.msg);
        return NULL;
    }
    if (evr_client_stream(cli->client, &req, s_keep, l, &err)) {
        evr_log_warn("evrun-provisioner", "stopping: asking the broker for its runners: %s",
                     err.msg);
        evr_client_destroy(&cli->client);
        return NULL;
    }
    evr_prov_runner_t *v = evr_calloc(l->n + 1, sizeof *v);
    s_runner_views(l, v);
    return v;
}

/*  The stop (evr_prov_stop): with the broker's runners asked afresh, the
    runners without a job get SIGTERM and 5 s to go (a second signal
    ends the wait); those still there that the broker (asked again)
    still does not list are killed. */
static void
s_stop_runners(evr_prov_t *pv, evr_cli_t *cli)
{
    s_list_t rl = { .type = EVR_MSG_RUNNER };
    evr_prov_runner_t *v = s_fresh_runners(cli, &rl);
    uint64_t until = evr_mono_ns() + 5000000000ull;
    bool answered = v != NULL;
    evr_prov_stop(pv, v, rl.n, evr_mono_ns());
    free(v);
    s_list_free(&rl);
    rl.type = EVR_MSG_RUNNER;
    while (evr_prov_stop_wait(pv) && evr_mono_ns() < until && s_stop < 2)
        usleep(100000);
    if (!evr_prov_stop_wait(pv))
        return;
    v = answered ? s_fresh_runners(cli, &rl) : NULL;   /* NULL: none killed */
    evr_prov_stop_force(pv, v, rl.n);
    free(v);
    s_list_free(&rl);
}

/*  Whether a provisioner holds dir's lock (*running); false when that
    cannot be told (said). */
static bool
s_running(const char *dir, bool *running)
{
    char *path = evr_asprintf("%s/lock", dir);
    long pid;
    evr_err_t err;
    int held = evr_lock_holder(path, &pid, &err);  /* taking it would write this pid in it */
    free(path);
    *running = held == 1;
    if (held < 0)
        fprintf(stderr, "evrun-provisioner: cannot tell whether a provisioner runs: %s\n",
                err.msg);
    return held >= 0;
}

/*  --dry-run beside a provisioner running on dir: said first, since the
    pass counts none of its runners (its starts not registered yet would
    serve jobs this pass gives a provider) and a provisioner started on
    dir now would not run. */
static void
s_dry_lock(const char *dir)
{
    char *path = evr_asprintf("%s/lock", dir);
    long pid = 0;
    evr_err_t err;
    if (evr_lock_holder(path, &pid, &err) == 1)
        printf("note: a provisioner (pid %ld) runs on %s: this pass counts none of the runners "
               "it started (--status shows its table), and a provisioner started on %s now "
               "would exit 2\n", pid, dir, dir);
    free(path);
}

/*  --status: 0 the table of the running provisioner printed; 1 none runs
    (the table a killed one left, printed so). */
static int
s_status(const char *dir, const char *path)
{
    bool running = true;
    s_running(dir, &running);
    FILE *f = fopen(path, "r");
    if (!f && !running) {
        fprintf(stderr, "evrun-provisioner: no provisioner runs with %s (none holds %s/lock; "
                "no providers' table)\n", dir, dir);
        return 1;
    }
    if (!f) {
        fprintf(stderr, "evrun-provisioner: %s: no providers' table yet (the provisioner "
                "writes it at its first pass)\n", path);
        return 2;
    }
    struct stat st;
    long long age = fstat(fileno(f), &st) ? -1 : (long long) (time(NULL) - st.st_mtime);
    if (running)
        printf("written %lld s ago by the running provisioner\n", age);
    else
        printf("no provisioner runs with %s: this table is the last one's, written %lld s "
               "ago (it did not stop cleanly: killed?)\n", dir, age);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stdout);
    fclose(f);
    return running ? 0 : 1;
}

/*  Loads the config; 0 or 2 (the errors printed). */
static int
s_config(const char *file, evr_prov_config_t *cfg)
{
    evr_diag_t *diag = evr_diag_new(file);
    evr_rc_t rc = evr_prov_config_load(file, cfg, diag);
    evr_diag_print(diag, stderr);
    evr_diag_destroy(&diag);
    return rc ? 2 : 0;
}

int
main(int argc, char **argv)
{
    s_opts_t o = { .poll_ms = 1000, .level = "info", .id = "provisioner" };
    evr_cli_t cli = { .prog = "evrun-provisioner" };
    evr_prov_config_t cfg = { 0 };
    evr_prov_t *pv = NULL;
    evr_lock_t *lock = NULL;
    char *dir = NULL, *status_file = NULL, *runner = NULL, *rep = NULL;
    size_t level;
    int status = s_parse(argc, argv, &o, &cli);
    if (status)
        return status < 0 ? 0 : status;
    evr_err_t err;
    if ((status = evr_cli_settings(&cli)))
        goto out;
    for (level = 0; level < EVR_LOG_NLEVELS && strcmp(o.level, evr_log_level_names[level]);)
        level++;
    if (level == EVR_LOG_NLEVELS) {
        fprintf(stderr, "evrun-provisioner: --log-level %s: expected error, warn, info or "
                "debug\n", o.level);
        status = 2;
        goto out;
    }
    evr_log_set_level((evr_log_level_t) level);
    const char *state = evr_config_get(cli.cfg, "state_dir");
    dir = o.dir ? evr_strdup(o.dir) : evr_asprintf("%s/provisioner", state ? state : ".");
    status_file = evr_asprintf("%s/providers", dir);
    if (o.status) {
        status = s_status(dir, status_file);
        goto out;
    }
    if ((status = s_config(o.config, &cfg)))
        goto out;
    if (evr_client_new(cli.cfg, &cli.client, &err)) {
        fprintf(stderr, "evrun-provisioner: %s\n", err.msg);
        status = 2;
        goto out;
    }
    runner = cfg.runner ? evr_strdup(cfg.runner) : s_runner_path();
    if ((status = s_runner_check(o.config, &cfg, runner)))
        goto out;
    rep = cfg.runner_endpoint ? evr_strdup(cfg.runner_endpoint)
                              : s_runner_endpoint(evr_client_endpoint(cli.client));
    if (!rep) {
        fprintf(stderr, "evrun-provisioner: %s: cannot tell the broker's runner endpoint from "
                "%s: set runner_endpoint in the config\n", o.config,
                evr_client_endpoint(cli.client));
        status = 2;
        goto out;
    }
    if (!o.dry && mkdir(dir, 0700) && errno != EEXIST) {
        fprintf(stderr, "evrun-provisioner: %s: %s\n", dir, strerror(errno));
        status = 2;
        goto out;
    }
    char *lock_path = evr_asprintf("%s/lock", dir);
    if (!o.dry && evr_lock_take(lock_path, "evrun-provisioner", &lock, &err)) {
        fprintf(stderr, "evrun-provisioner: %s\n", err.msg);
        free(lock_path);
        status = 2;
        goto out;
    }
    free(lock_path);
    pv = evr_prov_new(&cfg, dir, runner, rep);
    if (o.dry) {
        s_dry_lock(dir);
        status = s_round(pv, cli.client, true, status_file, o.id) ? 0 : 2;
        goto out;
    }
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    signal(SIGHUP, s_on_signal);
    signal(SIGPIPE, SIG_IGN);
    evr_log_info("evrun-provisioner", "watching the broker at %s; runners connect to %s",
                 evr_client_endpoint(cli.client), rep);
    evr_prov_adopt_all(pv, dir, evr_mono_ns());   /* what a killed provisioner left */
    while (!s_stop) {
        /* a broker that did not answer: a new connection (a late answer
           on the old one would pass for the next one's) */
        if (!cli.client && evr_client_new(cli.cfg, &cli.client, &err))
            evr_log_warn("evrun-provisioner", "%s (again in a moment)", err.msg);
        if (cli.client && !s_round(pv, cli.client, false, status_file, o.id))
            evr_client_destroy(&cli.client);
        else if (!cli.client)   /* the runners tended, the broker unasked */
            evr_prov_tend(pv, NULL, 0, evr_mono_ns());
        for (int t = 0; t < o.poll_ms && !s_stop; t += 50)
            usleep(50000);
        if (s_hup) {
            s_hup = 0;
            evr_log_warn("evrun-provisioner", "SIGHUP ignored: the config is read at the start "
                         "only (restart the provisioner to change it)");
        }
    }
    evr_log_info("evrun-provisioner", "stopping: %u runners still running (those with a job "
                 "finish it)", evr_prov_running(pv));
    s_stop_runners(pv, &cli);
    unlink(status_file);   /* --status: no provisioner runs */
out:
    evr_lock_destroy(&lock);
    evr_prov_destroy(&pv);
    evr_prov_config_free(&cfg);
    evr_cli_done(&cli);
    free(dir);
    free(status_file);
    free(runner);
    free(rep);
    return status;
}
