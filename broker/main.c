/*  evrun-broker: the command bus.  main() only wires things: the
    configuration, the broker, the loop, signals that set a flag. */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_broker.h"
#include "evr_bus.h"
#include "evr_config.h"
#include "evr_getopt.h"
#include "evr_lock.h"
#include "evr_log.h"
#include "evr_paths.h"

static volatile sig_atomic_t s_stop, s_reload;

static void
s_on_signal(int sig)
{
    if (sig == SIGHUP)
        s_reload = 1;
    else
        s_stop = 1;
}

static const evr_config_key_t s_keys[] = {
    { "state_dir", NULL, "the broker's store is STATE_DIR/broker" },
    { "local", "false", "ipc:// endpoints under STATE_DIR/bus instead of loopback TCP" },
    { "client_endpoint", NULL, "ROUTER for evrun-cli and evrun-tail requests" },
    { "runner_endpoint", NULL, "ROUTER for runners" },
    { "events_endpoint", NULL, "XPUB for subscribers (evrun-tail)" },
    { "heartbeat_ms", "1000", "heartbeat interval to runners" },
    { "lease_ms", "5000", "a runner silent this long is shown lost" },
    { "queue_limit", "1000", "waiting jobs per pipeline whose queue sets no limit (a cap)" },
    { "reclaim_ms", "600000", "a runner lost this long loses its jobs (0: never)" },
    { "forget_ms", "86400000", "a runner lost this long, holding no job, is forgotten (0: never)" },
    { "curve_dir", NULL, "CURVE keys for tcp:// endpoints (default STATE_DIR/curve)" },
    { "artifact_job_max_bytes", "4294967296", "a job's artifacts the broker holds at most (bytes)" },
    { "pipelines_dir", NULL, "registered pipelines: *.yml files (default STATE_DIR/pipelines)" },
    { "sync", "true", "fsync every commit (false: tests and benchmarks only)" },
    { "log_level", "info", "log lines written on stderr: error, warn, info or debug" },
    { "retention_max_age", "30d", "finished jobs older than this are removed (0: never)" },
    { "retention_keep_per_pipeline", "0", "finished jobs kept per pipeline, newest (0: all)" },
    { "retention_output_max_age", "0", "output of finished jobs older than this is dropped (0: never)" },
    { "retention_interval", "60s", "how often retention looks for jobs to remove" },
};

static void
s_help(FILE *out)
{
    fprintf(out,
            "usage: evrun-broker [options]\n"
            "\n"
            "The command bus of evrun: accepts jobs from evrun-cli into a durable queue,\n"
            "dispatches them to runners by labels (a runner's executor:NAME labels say\n"
            "which pipelines' executors it offers) and free capacity, stores every runner\n"
            "event once and publishes it to subscribers (evrun-tail); starts registered\n"
            "pipelines by name and by schedule.  Runs until SIGINT or SIGTERM; SIGHUP\n"
            "reads the pipelines directory again.\n"
            "\n"
            "  --state-dir DIR          state directory (store in DIR/broker); made 0700\n"
            "                           when missing; refused when DIR or DIR/broker (with\n"
            "                           --local DIR/bus too; DIR/curve when it exists and\n"
            "                           is the curve directory) is a link, another user's,\n"
            "                           or writable by group or others, or when a\n"
            "                           directory above DIR is neither yours nor root's, or\n"
            "                           writable by group or others and not sticky\n"
            "  --local                  ipc:// sockets under DIR/bus (what `evrun-cli up` uses)\n"
            "  --client-endpoint EP     default tcp://127.0.0.1:7700 (local: ipc://DIR/bus/clients)\n"
            "  --runner-endpoint EP     default tcp://127.0.0.1:7701 (local: ipc://DIR/bus/runners)\n"
            "  --events-endpoint EP     default tcp://127.0.0.1:7702 (local: ipc://DIR/bus/events)\n"
            "                           (all three: an ipc:// socket's directory must be\n"
            "                           yours or root's and writable by no one else, not\n"
            "                           /tmp itself; the directories above it as for DIR)\n"
            "  --heartbeat-ms N         heartbeat interval (default 1000)\n"
            "  --lease-ms N             a runner silent this long is lost (default 5000)\n"
            "  --queue-limit N          most waiting jobs of a pipeline whose queue sets no\n"
            "                           limit (default 1000; evrun-cli jobs shows it)\n"
            "  --reclaim-ms N           a runner lost this long loses its jobs: running ones\n"
            "                           end lost, dispatched ones go to another runner\n"
            "                           (default 600000; 0 never)\n"
            "  --forget-ms N            a runner lost this long that holds no job is\n"
            "                           forgotten: no longer listed, its id free again\n"
            "                           (default 86400000, a day; 0 never).  Beyond 1024\n"
            "                           runner ids the longest-gone such runner is\n"
            "                           forgotten at once to admit a new one\n"
            "  --curve-dir DIR          CURVE keys for tcp:// endpoints (default\n"
            "                           STATE_DIR/curve):\n"
            "                           broker.cert (made at the first start; runners and\n"
            "                           clients need its public key), runners/ and clients/\n"
            "                           (the public certificates admitted in each role)\n"
            "  --artifact-job-max-bytes N  a job's artifact files the broker takes from its\n"
            "                           runner at most (default 4294967296, 4 GiB); they are\n"
            "                           kept in STATE_DIR/broker/artifacts/JOB\n"
            "  --pipelines-dir DIR      registered pipelines (default STATE_DIR/pipelines,\n"
            "                           made 0700 when missing; refused as DIR is): each\n"
            "                           *.yml / *.yaml file (at most 256, of 1 MiB each)\n"
            "                           registers its `pipeline` name for `evrun-cli start`\n"
            "                           and its `schedule`; read again on SIGHUP and when a\n"
            "                           file changes; a file that fails to load keeps its\n"
            "                           last good version (evrun-cli pipelines shows why)\n"
            "  --retention-max-age D    finished jobs that ended longer ago than D (30d,\n"
            "                           12h, 90s) are removed with all their records and\n"
            "                           artifacts (default 30d; 0 never)\n"
            "  --retention-keep-per-pipeline N  at most N finished jobs per pipeline are\n"
            "                           kept, the newest (default 0: no count limit)\n"
            "  --retention-output-max-age D  the output of finished jobs that ended longer\n"
            "                           ago than D is dropped, their other events kept\n"
            "                           (default 0: never)\n"
            "  --retention-interval D   how often retention runs (default 60s); each pass\n"
            "                           removes batches of at most 200 jobs between the\n"
            "                           messages the broker serves.  In evrun.yml:\n"
            "                           retention: {max_age: 30d, keep_per_pipeline: 100}\n"
            "  --no-sync                no fsync (tests and benchmarks only)\n"
            "  --config FILE            settings file (default $EVRUN_CONFIG, else\n"
            "                           $XDG_CONFIG_HOME/evrun/evrun.yml, XDG_CONFIG_HOME\n"
            "                           unset: ~/.config/evrun/evrun.yml, when it exists)\n"
            "  --print-config           print the effective settings and their sources, exit\n"
            "  --log-level LEVEL        the log lines (timestamped, on stderr) written: error,\n"
            "                           warn, info (default) or debug (also every request)\n"
            "  -v, --verbose            --log-level debug\n"
            "  -h, --help               this text\n"
            "  --version                print the version, exit (given alone)\n"
            "\n"
            "Settings: defaults < config file < EVRUN_<KEY> environment < flags.\n"
            "Ranges (a value outside is refused, exit 2): --heartbeat-ms 10 to 3600000;\n"
            "--lease-ms 100 to 86400000; --queue-limit 1 to 1000000;\n"
            "--reclaim-ms and --forget-ms 0 to 2592000000 (30 days);\n"
            "--artifact-job-max-bytes 1 to 2^50; --retention-keep-per-pipeline 0 to\n"
            "10000000; the retention ages 0 or up to 3650d, --retention-interval 100ms\n"
            "to 1d.\n"
            "EVRUN_TEST_CLOCK_OFFSET=SECONDS (tests only) moves the clock of schedules.\n"
            "exit status: 0 stopped by a signal; 2 bad settings, a state directory refused\n"
            "or in use by another broker (STATE/broker/evrun.lock: the message names its\n"
            "pid), or a socket or the store unusable; 3 the store failed while running\n");
}

static void
s_help_cb(FILE *out, const void *arg)
{
    (void) arg;
    s_help(out);
}

/*  The command line into flags (key, value pairs for evr_config_layer),
    file and the switches.  0 to go on; -1 after --help; 2 on bad usage
    (said). */
static int
s_parse(int argc, char **argv, const char **flags, size_t *nf, const char **file, bool *print)
{
    static const struct option opts[] = {
        { "state-dir", required_argument, NULL, 's' }, { "local", no_argument, NULL, 'L' },
        { "client-endpoint", required_argument, NULL, 'c' },
        { "runner-endpoint", required_argument, NULL, 'r' },
        { "events-endpoint", required_argument, NULL, 'e' },
        { "heartbeat-ms", required_argument, NULL, 'H' },
        { "lease-ms", required_argument, NULL, 'l' },
        { "queue-limit", required_argument, NULL, 'q' },
        { "reclaim-ms", required_argument, NULL, 'R' },
        { "forget-ms", required_argument, NULL, 'F' },
        { "curve-dir", required_argument, NULL, 'K' },
        { "artifact-job-max-bytes", required_argument, NULL, 'A' },
        { "pipelines-dir", required_argument, NULL, 'D' },
        { "no-sync", no_argument, NULL, 'n' }, { "config", required_argument, NULL, 'C' },
        { "print-config", no_argument, NULL, 'P' }, { "verbose", no_argument, NULL, 'v' },
        { "log-level", required_argument, NULL, 'V' },
        { "retention-max-age", required_argument, NULL, 1001 },
        { "retention-keep-per-pipeline", required_argument, NULL, 1002 },
        { "retention-output-max-age", required_argument, NULL, 1003 },
        { "retention-interval", required_argument, NULL, 1004 },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = evr_getopt("evrun-broker", argc, argv, "vh", opts)) != -1) {
        const char *key = NULL, *val = optarg;
        switch (c) {
        case 's': key = "state_dir"; break;
        case 'L': key = "local"; val = "true"; break;
        case 'c': key = "client_endpoint"; break;
        case 'r': key = "runner_endpoint"; break;
        case 'e': key = "events_endpoint"; break;
        case 'H': key = "heartbeat_ms"; break;
        case 'l': key = "lease_ms"; break;
        case 'q': key = "queue_limit"; break;
        case 'R': key = "reclaim_ms"; break;
        case 'F': key = "forget_ms"; break;
        case 'K': key = "curve_dir"; break;
        case 'A': key = "artifact_job_max_bytes"; break;
        case 'D': key = "pipelines_dir"; break;
        case 'n': key = "sync"; val = "false"; break;
        case 'C': *file = optarg; break;
        case 'P': *print = true; break;
        case 'v': key = "log_level"; val = "debug"; break;
        case 'V': key = "log_level"; break;
        case 1001: key = "retention_max_age"; break;
        case 1002: key = "retention_keep_per_pipeline"; break;
        case 1003: key = "retention_output_max_age"; break;
        case 1004: key = "retention_interval"; break;
        case 'h': s_help(stdout); return -1;
        default: evr_usage_brief("evrun-broker", s_help_cb, NULL); return 2;
        }
        if (key)
            *nf = evr_config_flag(flags, *nf, 24, key, val);
    }
    if (optind != argc) {
        fprintf(stderr, "evrun-broker: unexpected argument %s\n", argv[optind]);
        evr_usage_brief("evrun-broker", s_help_cb, NULL);
        return 2;
    }
    return 0;
}

/*  The retention settings into bo. */
static evr_rc_t
s_retention(evr_config_t *cfg, evr_broker_opts_t *bo, evr_err_t *err)
{
    evr_config_retention_t r;
    evr_rc_t rc = evr_config_retention(cfg, &r, err);
    bo->retention.max_age_ms = r.max_age_ms;
    bo->retention.keep_per_pipeline = r.keep_per_pipeline;
    bo->retention.output_max_age_ms = r.output_max_age_ms;
    bo->retention_interval_ms = r.interval_ms;
    return rc;
}

/*  The port of a tcp:// endpoint into *host (its length in *hlen), or
    0 when ep is none. */
static unsigned long
s_tcp_port(const char *ep, const char **host, size_t *hlen)
{
    if (strncmp(ep, "tcp://", 6))
        return 0;
    const char *colon = strrchr(ep + 6, ':');
    char *end;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    *host = ep + 6;
    *hlen = colon ? (size_t) (colon - *host) : 0;
    return colon && *end == '\0' ? port : 0;
}

/*  Whether host (len bytes) of a tcp:// endpoint is every address: *,
    0.0.0.0, or IPv6's [::] (dual-stack: the IPv4 ones too). */
static bool
s_any_address(const char *host, size_t len)
{
    return (len == 1 && *host == '*') || (len == 7 && !strncmp(host, "0.0.0.0", 7))
        || (len == 4 && !strncmp(host, "[::]", 4));
}

/*  Whether endpoints a and b would take one socket: one ipc:// path, or
    one tcp:// port on one address (or on every address: s_any_address). */
static bool
s_same_socket(const char *a, const char *b, bool *tcp)
{
    const char *ha, *hb;
    size_t la, lb;
    for (int i = 0; i < 2; i++) {   /* a port the system picks (*): never the same */
        const char *ep = i ? b : a, *colon = strrchr(ep, ':');
        if (!strncmp(ep, "tcp://", 6) && colon && !strcmp(colon, ":*"))
            return *tcp = false;
    }
    unsigned long pa = s_tcp_port(a, &ha, &la), pb = s_tcp_port(b, &hb, &lb);
    *tcp = pa && pb;
    if (!*tcp)
        return strcmp(a, b) == 0;
    return pa == pb && (s_any_address(ha, la) || s_any_address(hb, lb)
                        || (la == lb && !strncmp(ha, hb, la)));
}

/*  The broker's three endpoints on three sockets: two on one port was
    said as the second's bind failing, "another broker running?", when
    the broker's own first socket held it. */
static evr_rc_t
s_endpoints_differ(const evr_config_t *cfg, evr_err_t *err)
{
    static const char *const keys[3] = { "client_endpoint", "runner_endpoint",
                                         "events_endpoint" };
    static const char *const opts[3] = { "--client-endpoint", "--runner-endpoint",
                                         "--events-endpoint" };
    evr_rc_t rc = EVR_OK;
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++) {
            const char *a = evr_config_get(cfg, keys[i]), *b = evr_config_get(cfg, keys[j]);
            bool tcp;
            if (!a || !b || !s_same_socket(a, b, &tcp))
                continue;
            char from[600];
            rc = evr_config_problem(cfg, keys[j], err, "the %s as %s = \"%s\" (from %s): the "
                                    "two %s must differ (set by %s and %s, or %s and %s in the "
                                    "settings file)", tcp ? "same port" : "same endpoint",
                                    keys[i], a, evr_config_from(cfg, keys[i], from, sizeof from),
                                    tcp ? "ports" : "endpoints", opts[i], opts[j], keys[i],
                                    keys[j]);
        }
    return rc;
}

/*  The numbers and switches of cfg into bo (endpoints and directories
    are set later); local: ipc:// under STATE/bus.  The endpoints' and
    curve directory's defaults follow local and state_dir. */
static evr_rc_t
s_settings(evr_config_t *cfg, evr_broker_opts_t *bo, bool *local, evr_err_t *err)
{
    uint64_t hb = 0, lease = 0, qlimit = 0, reclaim = 0, forget = 0, artjob = 0;
    bool sync = true;
    /* each checked whatever the others are: their errors said at once */
    bool bad = evr_config_bool(cfg, "local", local, err) != EVR_OK;
    bad = evr_config_bool(cfg, "sync", &sync, err) != EVR_OK || bad;
    bad = evr_config_uint(cfg, "heartbeat_ms", 10, 3600000, &hb, err) != EVR_OK || bad;
    bad = evr_config_uint(cfg, "lease_ms", 100, 86400000, &lease, err) != EVR_OK || bad;
    bad = evr_config_uint(cfg, "queue_limit", 1, 1000000, &qlimit, err) != EVR_OK || bad;
    bad = evr_config_uint(cfg, "reclaim_ms", 0, 30u * 86400000u, &reclaim, err) != EVR_OK || bad;
    bad = evr_config_uint(cfg, "forget_ms", 0, 30u * 86400000u, &forget, err) != EVR_OK || bad;
    bad = evr_config_uint(cfg, "artifact_job_max_bytes", 1, 1ull << 50, &artjob, err) != EVR_OK
       || bad;
    bad = s_retention(cfg, bo, err) != EVR_OK || bad;
    static const char *const eps[] = { "client_endpoint", "runner_endpoint", "events_endpoint" };
    bad = evr_bus_check_endpoints(cfg, eps, 3, err) != EVR_OK || bad;
    if (bad)
        return EVR_ERR_CONFIG;
    bo->artifact_job_max_bytes = artjob;
    bo->heartbeat_ms = (uint32_t) hb;
    bo->lease_ms = (uint32_t) lease;
    bo->queue_limit = (uint32_t) qlimit;
    bo->reclaim_ms = (uint32_t) reclaim;
    bo->forget_ms = (uint32_t) forget;
    bo->nosync = !sync;
    evr_config_endpoints(cfg, *local);
    if (s_endpoints_differ(cfg, err))
        return EVR_ERR_CONFIG;
    const char *state = evr_config_get(cfg, "state_dir");
    if (state) {
        char *curve_dir = evr_asprintf("%s/curve", state);
        evr_config_default(cfg, "curve_dir", curve_dir);
        free(curve_dir);
        char *pipelines_dir = evr_asprintf("%s/pipelines", state);
        evr_config_default(cfg, "pipelines_dir", pipelines_dir);
        free(pipelines_dir);
    }
    return EVR_OK;
}

/*  The state directory and the store's, made 0700 when missing and
    refused unless private (evr_paths_state); with local, STATE/bus too;
    STATE/curve when it is the curve directory and exists. */
static evr_rc_t
s_private_dirs(evr_config_t *cfg, bool local, evr_err_t *err)
{
    const char *state = evr_config_get(cfg, "state_dir");
    const char *curve_dir = evr_config_get(cfg, "curve_dir");
    char *def = evr_asprintf("%s/curve", state);
    unsigned subs = EVR_PATHS_BROKER | (local ? EVR_PATHS_BUS : 0)
                  | (curve_dir && strcmp(curve_dir, def) == 0 ? EVR_PATHS_CURVE : 0);
    free(def);
    return evr_paths_state(state, subs, 0, true, err);
}

/*  One broker per state directory: the lock file STATE/broker/evrun.lock,
    held until the process ends (evr_lock.h). */
static evr_rc_t
s_lock(const char *store_dir, evr_lock_t **lock, evr_err_t *err)
{
    char *path = evr_asprintf("%s/evrun.lock", store_dir);
    evr_rc_t rc = evr_lock_take(path, "evrun-broker", lock, err);
    free(path);
    return rc;
}

/*  Serves until a signal or a failed store: 0, or 3 when the store failed. */
static int
s_serve(evr_broker_t *b, const evr_broker_opts_t *bo)
{
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    signal(SIGHUP, s_on_signal);
    signal(SIGPIPE, SIG_IGN);
    evr_log_info("evrun-broker", "serving clients on %s, runners on %s, events on %s; store %s",
                 bo->client_ep, bo->runner_ep, bo->pub_ep, bo->store_dir);
    const char *msg;
    while (!s_stop && !evr_broker_failure(b, &msg)) {
        if (s_reload) {
            s_reload = 0;
            evr_broker_reload(b);
        }
        evr_broker_turn(b, 200);
    }
    if (evr_broker_failure(b, &msg)) {
        evr_log_error("evrun-broker", "stopping: the store failed: %s", msg);
        return 3;
    }
    evr_log_info("evrun-broker", "stopped");
    return 0;
}

int
main(int argc, char **argv)
{
    const char *flags[48], *file = NULL;
    size_t nf = 0;
    bool print = false, local = false;
    evr_broker_opts_t bo = { 0 };
    int status = s_parse(argc, argv, flags, &nf, &file, &print);
    if (status)
        return status < 0 ? 0 : status;
    evr_config_t *cfg = evr_config_new(s_keys, EVR_ARRAY_LEN(s_keys));
    evr_err_t err;
    evr_broker_t *b = NULL;
    evr_lock_t *lock = NULL;
    char *store_dir = NULL;
    size_t level = EVR_LOG_INFO;
    /* every error of the settings at once: the file's, then each value's */
    bool bad = evr_config_layer(cfg, file, flags, nf, &err) != EVR_OK;
    bad = s_settings(cfg, &bo, &local, &err) != EVR_OK || bad;
    bad = evr_config_choice(cfg, "log_level", evr_log_level_names, EVR_LOG_NLEVELS, &level,
                            &err) != EVR_OK || bad;
    if (bad) {
        if (!evr_config_report(cfg, "evrun-broker", stderr))
            fprintf(stderr, "evrun-broker: %s\n", err.msg);
        status = 2;
        goto out;
    }
    if (print) {
        evr_config_print(cfg, stdout);
        goto out;
    }
    evr_log_set_level((evr_log_level_t) level);
    store_dir = evr_asprintf("%s/broker", evr_config_get(cfg, "state_dir"));
    bo.store_dir = store_dir;
    bo.client_ep = evr_config_get(cfg, "client_endpoint");
    bo.runner_ep = evr_config_get(cfg, "runner_endpoint");
    bo.pub_ep = evr_config_get(cfg, "events_endpoint");
    bo.curve_dir = evr_config_get(cfg, "curve_dir");
    bo.pipelines_dir = evr_config_get(cfg, "pipelines_dir");
    /* buffers of 256 KiB and more (messages up to 4 MiB) come from mmap and go
       back on free: glibc's sliding threshold would keep them in the heap */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    /* and the heap's free top is kept up to 8 MiB (the fixed threshold above
       leaves glibc's trim at 128 KiB): a turn's submits otherwise grew the
       heap and gave it back every turn, a page fault for each page again */
    mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
    if (s_private_dirs(cfg, local, &err) || s_lock(store_dir, &lock, &err)
        || evr_broker_new(&bo, &b, &err)) {
        fprintf(stderr, "evrun-broker: %s\n", err.msg);
        status = 2;
        goto out;
    }
    status = s_serve(b, &bo);
out:
    evr_broker_destroy(&b);
    evr_lock_destroy(&lock);
    evr_config_destroy(&cfg);
    free(store_dir);
    return status;
}
