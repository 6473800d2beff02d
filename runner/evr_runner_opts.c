/*  evr_runner_opts.c: evrun-runner's settings and command line (see
    evr_runner_opts.h), apart from main.c's wiring: the settings' keys
    and defaults, the options and which mode each goes with, and the
    checks of the settings the engine and the daemon take. */
#include "evr_runner_opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_getopt.h"
#include "evr_runner_help.h"

/*  Long options without a short letter (1000-1099: retention and prune). */
#define S_OPT_HOST_NETWORK 1100
#define S_OPT_GIT_CACHE_MAX 1101
#define S_OPT_ONCE 1102
#define S_OPT_CLEAN 1103
#define S_OPT_ONCE_WAIT 1104
#define S_OPT_FOLLOW 1200
#define S_OPT_PIPELINES 1201

static const evr_config_key_t s_keys[] = {
    { "state_dir", NULL, "this runner's event store and artifacts" },
    { "runner_endpoint", NULL, "the broker's runner endpoint (--broker)" },
    { "runner_id", NULL, "this runner's id (default: made once, kept in the store)" },
    { "labels", "", "labels, comma-separated: jobs needing others go elsewhere" },
    { "capacity", "2", "jobs at once" },
    { "podman_url", NULL, "podman's REST socket" },
    { "registry_auth", NULL, "a containers-auth.json file of registry credentials for pulls (default: podman's own; a pipeline's registry_auth secret comes first)" },
    { "secrets_dir", NULL, "secrets as files DIR/NAME, any name (the environment is read first, for names secrets_allow allows)" },
    { "secrets_allow", EVR_SECRETS_ALLOW_DEFAULT, "secrets pipelines may read from the runner's environment: NAME or PREFIX*, comma-separated (files in secrets_dir are always allowed)" },
    { "artifact_max_bytes", EVR_MAX_BYTES_DEFAULT_STR, "largest artifact (its tar stream) copied out of a step" },
    { "artifact_job_max_bytes", EVR_ARTIFACT_JOB_MAX_DEFAULT_STR, "a job's artifact files at most, all its steps" },
    { "cache_max_bytes", EVR_CACHE_MAX_DEFAULT_STR, "the caches' sizes at most: the least recently used past it are removed" },
    { "git_cache_max_bytes", EVR_CACHE_MAX_DEFAULT_STR, "the cache of git repositories (STATE/git-cache) at most: the least recently used past it are removed after a checkout" },
    { "resource_max_bytes", EVR_MAX_BYTES_DEFAULT_STR, "largest resource download, and its unpacked contents" },
    { "resource_redirects", "same", "redirects of resource URLs followed: same (scheme, host and port), any, none" },
    { "resource_local", "allow", "resource addresses that are loopback, link-local or unspecified: allow or deny" },
    { "host_network", "allow", "steps with network: host (the host's network namespace, its 127.0.0.1 included): allow or deny" },
    { "triggers_any", "deny", "steps may trigger any registered pipeline (evrun-job trigger), not only those their pipeline's triggers: names: allow or deny" },
    { "grace", "10", "SIGTERM-to-SIGKILL grace when stopping a step, seconds" },
    { "executors", "podman", "what runs steps here, comma-separated: podman, process (host commands, as this runner's user: only when listed)" },
    { "heartbeat_ms", "1000", "heartbeat interval to the broker" },
    { "lease_ms", "5000", "a broker silent this long is reconnected to" },
    { "runner_cert", NULL, "this runner's CURVE key pair for tcp:// (default STATE_DIR/curve/runner.cert)" },
    { "broker_key", NULL, "the broker's public key for tcp://: its certificate file or 40-character key (default STATE_DIR/curve/broker.cert)" },
    { "log_level", "info", "log lines written on stderr: error, warn, info or debug" },
    { "retention_max_age", "7d", "finished jobs older than this are removed once the broker holds them (0: never)" },
    { "retention_keep_per_pipeline", "0", "finished jobs kept per pipeline, newest (0: all)" },
    { "retention_output_max_age", "0", "output of finished jobs older than this is dropped (0: never)" },
    { "retention_interval", "60s", "how often retention looks for jobs to remove (--broker)" },
};

evr_config_t *
evr_runner_opts_config(void)
{
    return evr_config_new(s_keys, EVR_ARRAY_LEN(s_keys));
}

/*  secrets_dir a directory, registry_auth a readable file, when set: a
    typo there was found only by the job that needed a secret or a
    private image (a secret "not found", a pull refused).  Both checked,
    each problem recorded. */
static bool
s_paths(const evr_config_t *cfg)
{
    struct stat st;
    evr_err_t err;
    bool ok = true;
    const char *dir = evr_config_get(cfg, "secrets_dir");
    const char *auth = evr_config_get(cfg, "registry_auth");
    if (dir && *dir && stat(dir, &st))
        ok = !evr_config_problem(cfg, "secrets_dir", &err, "%s", strerror(errno));
    else if (dir && *dir && !S_ISDIR(st.st_mode))
        ok = !evr_config_problem(cfg, "secrets_dir", &err, "not a directory (of files NAME)");
    if (auth && *auth && (stat(auth, &st) || access(auth, R_OK)))
        ok = !evr_config_problem(cfg, "registry_auth", &err, "%s", strerror(errno)) && ok;
    else if (auth && *auth && !S_ISREG(st.st_mode))
        ok = !evr_config_problem(cfg, "registry_auth", &err, "not a file (a "
                                 "containers-auth.json)") && ok;
    return ok;
}

/*  key's value one of the words a and b (c too when not NULL): else a
    problem recorded, "KEY = \"V\" (from SOURCE): expected a or b". */
static bool
s_word(const evr_config_t *cfg, const char *key, const char *a, const char *b, const char *c)
{
    const char *v = evr_config_get(cfg, key);
    evr_err_t err;
    if (v && (!strcmp(v, a) || !strcmp(v, b) || (c && !strcmp(v, c))))
        return true;
    if (c)
        (void) evr_config_problem(cfg, key, &err, "expected %s, %s or %s", a, b, c);
    else
        (void) evr_config_problem(cfg, key, &err, "expected %s or %s", a, b);
    return false;
}

bool
evr_runner_opts_limits(evr_config_t *cfg, evr_engine_opts_t *eo)
{
    evr_err_t err;
    uint64_t art = 0, res = 0, artjob = 0, cache = 0, gitcache = 0;
    const char *redir = evr_config_get(cfg, "resource_redirects");
    const char *local = evr_config_get(cfg, "resource_local");
    const char *hostnet = evr_config_get(cfg, "host_network");
    const char *tany = evr_config_get(cfg, "triggers_any");
    /* every one checked whatever the others are: the report says them all */
    bool ok = !evr_config_uint(cfg, "artifact_max_bytes", 1, 1ull << 40, &art, &err);
    ok = !evr_config_uint(cfg, "artifact_job_max_bytes", 1, 1ull << 50, &artjob, &err) && ok;
    ok = !evr_config_uint(cfg, "cache_max_bytes", 1, 1ull << 50, &cache, &err) && ok;
    ok = !evr_config_uint(cfg, "git_cache_max_bytes", 1, 1ull << 50, &gitcache, &err) && ok;
    ok = !evr_config_uint(cfg, "resource_max_bytes", 1, 1ull << 40, &res, &err) && ok;
    ok = s_word(cfg, "resource_redirects", "same", "any", "none") && ok;
    ok = s_word(cfg, "resource_local", "allow", "deny", NULL) && ok;
    ok = s_word(cfg, "host_network", "allow", "deny", NULL) && ok;
    ok = s_word(cfg, "triggers_any", "allow", "deny", NULL) && ok;
    ok = s_paths(cfg) && ok;
    if (!ok)
        return false;
    eo->artifact_max_bytes = art;
    eo->artifact_job_max_bytes = artjob;
    eo->cache_max_bytes = cache;
    eo->source_cache_max_bytes = gitcache;
    eo->resource_max_bytes = res;
    eo->resource_redirects = !strcmp(redir, "any")    ? EVR_FETCH_REDIRECT_ANY
                           : !strcmp(redir, "none") ? EVR_FETCH_REDIRECT_NONE
                                                    : EVR_FETCH_REDIRECT_SAME;
    eo->resource_deny_local = !strcmp(local, "deny");
    eo->host_network_deny = !strcmp(hostnet, "deny");
    eo->triggers_any = !strcmp(tany, "allow");
    eo->secrets_allow = evr_config_get(cfg, "secrets_allow");
    return true;
}

/*  A problem of key's value in err ("KEY: what"), recorded as the
    config's (with its value and source) for evr_config_report. */
static void
s_keyed(const evr_config_t *cfg, const char *key, const evr_err_t *err)
{
    size_t n = strlen(key);
    const char *what = !strncmp(err->msg, key, n) && !strncmp(err->msg + n, ": ", 2)
                       ? err->msg + n + 2 : err->msg;
    evr_err_t e;
    (void) evr_config_problem(cfg, key, &e, "%s", what);
}

bool
evr_runner_opts_offer(evr_config_t *cfg, evr_runner_opts_t *o, bool labels, const char **lv,
                      char **joined)
{
    evr_err_t err;
    /* an empty item was said by evr_config_layer: not twice */
    if (evr_config_list_empty(evr_config_get(cfg, "executors")))
        return false;
    if (evr_offer_parse(evr_config_get(cfg, "executors"), &o->offer, &err)) {
        s_keyed(cfg, "executors", &err);
        return false;
    }
    /* podman's socket, where podman is offered: said at the start as
       "podman URL foo: expected ...", naming neither the setting nor where
       it came from, and --print-config took it */
    const char *url = evr_config_get(cfg, "podman_url");
    if (!o->prune && evr_offer_has(&o->offer, EVR_EXECUTOR_PODMAN)
        && (!url || strncmp(url, "unix:///", 8) != 0)) {
        (void) evr_config_problem(cfg, "podman_url", &err, "expected unix:///path/to/podman.sock"
                                  "%s", url && *url ? "" : " (empty: a variable left unset?)");
        return false;
    }
    if (labels && evr_config_list_empty(evr_config_get(cfg, "labels")))
        return false;
    if (labels && evr_offer_labels(&o->offer, evr_config_get(cfg, "labels"), lv, joined, &err)) {
        s_keyed(cfg, "labels", &err);
        return false;
    }
    return true;
}

bool
evr_runner_opts_daemon_numbers(evr_config_t *cfg, uint64_t *cap, uint64_t *hb, uint64_t *lease)
{
    evr_err_t err;
    bool ok = !evr_config_uint(cfg, "capacity", 1, 1024, cap, &err);
    ok = !evr_config_uint(cfg, "heartbeat_ms", 10, 3600000, hb, &err) && ok;
    return !evr_config_uint(cfg, "lease_ms", 100, 86400000, lease, &err) && ok;
}

/*  A count of seconds 0..86400 into out; false when s is not one. */
static bool
s_seconds(const char *s, int *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 86400)
        return false;
    *out = (int) v;
    return true;
}

int
evr_runner_opts_parse(int argc, char **argv, evr_runner_opts_t *o, const char **flags,
                      size_t *nf, const char **file, bool *print_config)
{
    static const struct option opts[] = {
        { "exec", required_argument, NULL, 'x' }, { "arg", required_argument, NULL, 'a' },
        { "recover", no_argument, NULL, 'r' }, { "broker", required_argument, NULL, 'B' },
        { "labels", required_argument, NULL, 'l' },
        { "capacity", required_argument, NULL, 'c' }, { "id", required_argument, NULL, 'i' },
        { "exit-when-drained", no_argument, NULL, 'E' },
        { "once", no_argument, NULL, S_OPT_ONCE }, { "clean", no_argument, NULL, S_OPT_CLEAN },
        { "once-wait", required_argument, NULL, S_OPT_ONCE_WAIT },
        { "follow-triggers", no_argument, NULL, S_OPT_FOLLOW },
        { "pipelines", required_argument, NULL, S_OPT_PIPELINES },
        { "heartbeat-ms", required_argument, NULL, 'H' },
        { "lease-ms", required_argument, NULL, 'L' },
        { "curve-cert", required_argument, NULL, 'K' },
        { "broker-key", required_argument, NULL, 'b' },
        { "stop-timeout", required_argument, NULL, 'T' },
        { "log-level", required_argument, NULL, 'V' },
        { "state-dir", required_argument, NULL, 's' },
        { "podman-url", required_argument, NULL, 'p' },
        { "registry-auth", required_argument, NULL, 'Y' },
        { "secrets-dir", required_argument, NULL, 'S' },
        { "secrets-allow", required_argument, NULL, 'A' },
        { "artifact-max-bytes", required_argument, NULL, 'M' },
        { "artifact-job-max-bytes", required_argument, NULL, 'J' },
        { "cache-max-bytes", required_argument, NULL, 'Z' },
        { "resource-max-bytes", required_argument, NULL, 'R' },
        { "resource-redirects", required_argument, NULL, 'D' },
        { "resource-local", required_argument, NULL, 'O' },
        { "host-network", required_argument, NULL, S_OPT_HOST_NETWORK },
        { "git-cache-max-bytes", required_argument, NULL, S_OPT_GIT_CACHE_MAX },
        { "grace", required_argument, NULL, 'g' }, { "keep", no_argument, NULL, 'k' },
        { "executors", required_argument, NULL, 'X' },
        { "quiet", no_argument, NULL, 'q' }, { "config", required_argument, NULL, 'C' },
        { "print-config", no_argument, NULL, 'P' }, { "help", no_argument, NULL, 'h' },
        { "prune", no_argument, NULL, 1000 }, { "dry-run", no_argument, NULL, 1001 },
        { "retention-max-age", required_argument, NULL, 1002 },
        { "retention-keep-per-pipeline", required_argument, NULL, 1003 },
        { "retention-output-max-age", required_argument, NULL, 1004 },
        { "retention-interval", required_argument, NULL, 1005 },
        { NULL, 0, NULL, 0 },
    };
    int c;
    bool broker = false, args = false, once_wait = false, quiet = false;
    const char *broker_only = NULL;     /* the last such flag given */
    while ((c = evr_getopt("evrun-runner", argc, argv, "a:qh", opts)) != -1) {
        const char *key = NULL;
        switch (c) {
        case 'x':
            if (o->file) {   /* else the first ran nothing, in silence */
                fprintf(stderr, "evrun-runner: --exec given twice (\"%s\", then \"%s\"): one "
                        "pipeline file per run\n", o->file, optarg);
                return 2;
            }
            o->file = optarg;
            if (!*optarg) {   /* else ": cannot open", naming nothing */
                fprintf(stderr, "evrun-runner: --exec \"\": expected a pipeline file (the path "
                        "of a .yml file)\n");
                return 2;
            }
            break;
        case 'r': o->recover = true; break;
        case 'a': {
            args = true;
            int r = evr_spec_add_arg(optarg, &o->given);
            if (r < 0)
                fprintf(stderr, "evrun-runner: -a %s: expected NAME=VALUE\n", optarg);
            else if (r)     /* as evrun-cli's -a: else the last silently wins */
                fprintf(stderr, "evrun-runner: -a \"%.*s\": given twice (each arg once)\n",
                        (int) strcspn(optarg, "="), optarg);
            if (r)
                return 2;
            break;
        }
        case 'B': key = "runner_endpoint"; broker = true; break;
        case 'l': key = "labels"; broker_only = "--labels"; break;
        case 'c': key = "capacity"; broker_only = "--capacity"; break;
        case 'i': key = "runner_id"; broker_only = "--id"; break;
        case 'E': o->exit_drained = true; break;
        case S_OPT_ONCE: o->once = true; break;
        case S_OPT_CLEAN: o->clean = true; break;
        case S_OPT_FOLLOW: o->follow = true; break;
        case S_OPT_PIPELINES: o->pipelines = optarg; break;
        case S_OPT_ONCE_WAIT:
            once_wait = true;
            if (!s_seconds(optarg, &o->once_wait)) {
                fprintf(stderr, "evrun-runner: --once-wait %s: expected seconds, 0 to "
                        "86400\n", optarg);
                return 2;
            }
            break;
        case 'H': key = "heartbeat_ms"; broker_only = "--heartbeat-ms"; break;
        case 'L': key = "lease_ms"; broker_only = "--lease-ms"; break;
        case 'K': key = "runner_cert"; broker_only = "--curve-cert"; break;
        case 'b': key = "broker_key"; broker_only = "--broker-key"; break;
        case 'V': key = "log_level"; break;
        case 'T':
            broker_only = "--stop-timeout";
            if (!s_seconds(optarg, &o->stop_timeout)) {
                fprintf(stderr, "evrun-runner: --stop-timeout %s: expected seconds, 0 to "
                        "86400\n", optarg);
                return 2;
            }
            break;
        case 's': key = "state_dir"; break;
        case 'p': key = "podman_url"; break;
        case 'Y': key = "registry_auth"; break;
        case 'S': key = "secrets_dir"; break;
        case 'A': key = "secrets_allow"; break;
        case 'M': key = "artifact_max_bytes"; break;
        case 'J': key = "artifact_job_max_bytes"; break;
        case 'Z': key = "cache_max_bytes"; break;
        case 'R': key = "resource_max_bytes"; break;
        case 'D': key = "resource_redirects"; break;
        case 'O': key = "resource_local"; break;
        case S_OPT_HOST_NETWORK: key = "host_network"; break;
        case S_OPT_GIT_CACHE_MAX: key = "git_cache_max_bytes"; break;
        case 'g': key = "grace"; break;
        case 'X': key = "executors"; break;
        case 'k': o->keep = true; break;
        case 'q': o->print = false; quiet = true; break;
        case 'C': *file = optarg; break;
        case 'P': *print_config = true; break;
        case 1000: o->prune = true; break;
        case 1001: o->dry_run = true; break;
        case 1002: key = "retention_max_age"; break;
        case 1003: key = "retention_keep_per_pipeline"; break;
        case 1004: key = "retention_output_max_age"; break;
        case 1005: key = "retention_interval"; break;
        case 'h': evr_runner_help(stdout); return -1;
        default: evr_runner_usage(stderr); return 2;
        }
        if (key)
            *nf = evr_config_flag(flags, *nf, 40, key, optarg);
    }
    /* an option of another mode did nothing: say so, as for --once */
    if (args && !o->file) {
        fprintf(stderr, "evrun-runner: -a goes with --exec FILE only (a broker's job gets its "
                "args from its submit: evrun-cli run FILE -a NAME=VALUE)\n");
        return 2;
    }
    /* the settings file's (shared with the broker and evrun-cli) are
       taken as they are: only a flag says this run is meant to use it */
    if (broker_only && (o->file || o->recover || o->prune)) {
        fprintf(stderr, "evrun-runner: %s goes with --broker EP only (--exec, --recover and "
                "--prune take no job from a broker)\n", broker_only);
        return 2;
    }
    if (quiet && (broker || o->prune)) {   /* a daemon prints no job; --prune its counts */
        fprintf(stderr, "evrun-runner: -q goes with --exec FILE or --recover only\n");
        return 2;
    }
    if (o->keep && o->prune) {
        fprintf(stderr, "evrun-runner: --keep goes with --exec, --recover or --broker (--prune "
                "runs no step)\n");
        return 2;
    }
    if (o->exit_drained && !broker) {
        fprintf(stderr, "evrun-runner: --exit-when-drained goes with --broker EP only\n");
        return 2;
    }
    if (once_wait && !o->once) {
        fprintf(stderr, "evrun-runner: --once-wait goes with --once only\n");
        return 2;
    }
    if ((o->once || o->clean) && !broker) {
        fprintf(stderr, "evrun-runner: %s goes with --broker EP only\n",
                o->once ? "--once" : "--clean");
        return 2;
    }
    if ((o->follow || o->pipelines) && (broker || o->prune)) {
        fprintf(stderr, "evrun-runner: %s goes with --exec FILE or --recover only (through a "
                "broker, the broker starts what a step triggers)\n",
                o->follow ? "--follow-triggers" : "--pipelines");
        return 2;
    }
    if (o->pipelines && !*o->pipelines) {
        fprintf(stderr, "evrun-runner: --pipelines \"\": expected a directory (default: "
                "FILE's directory)\n");
        return 2;
    }
    if (o->pipelines && !o->follow) {
        fprintf(stderr, "evrun-runner: --pipelines goes with --follow-triggers\n");
        return 2;
    }
    if (o->clean && !o->once) {
        fprintf(stderr, "evrun-runner: --clean goes with --once only\n");
        return 2;
    }
    int modes = (o->file != NULL) + o->recover + broker + o->prune;
    if (optind != argc || (modes != 1 && !*print_config) || (o->dry_run && !o->prune)) {
        if (optind != argc)
            fprintf(stderr, "evrun-runner: unexpected argument \"%s\" (%s)\n", argv[optind],
                    o->file ? "--exec takes one FILE; args go as -a NAME=VALUE"
                            : "a pipeline file goes after --exec: evrun-runner --exec FILE");
        else
            fprintf(stderr, "evrun-runner: %s\n",
                    o->dry_run && !o->prune ? "--dry-run goes with --prune"
                    : modes ? "--exec, --recover, --broker and --prune do not go together"
                            : "one of --exec FILE, --recover, --broker EP or --prune is required");
        evr_runner_usage(stderr);
        return 2;
    }
    return 0;
}

bool
evr_runner_opts_hooks(evr_config_t *cfg, const char *file, evr_hooks_t **out)
{
    char *path = file ? evr_strdup(file) : evr_config_default_file();
    evr_err_t err;
    evr_rc_t rc = path ? evr_hooks_load(path, out, &err) : EVR_OK;
    if (rc)
        evr_config_note(cfg, err.msg);
    free(path);
    return !rc;
}
