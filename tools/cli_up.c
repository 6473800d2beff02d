/*  cli_up.c: `evrun-cli up` and `evrun-cli down`: a local evrun.

    up starts, in the background and detached from the terminal, a broker
    in local mode (ipc:// sockets under STATE/bus) and N runners
    (STATE/runners/I), with their logs under STATE/logs and their pids
    under STATE/run, plus a podman service (tools/podman-service) when none
    answers at the configured URL.  What already runs is left as it is, so
    up is idempotent.  down stops what up started: the runners first
    (SIGTERM: they finish their running jobs, up to their stop timeout),
    then the broker, then the podman service if up started it.
*/
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "cli_bus.h"
#include "evr_podman.h"

typedef struct {
    const char *state;
    char *bindir;           /* where evrun-cli is: the other binaries are there */
} s_up_t;

static char *
s_bindir(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return evr_strdup(".");
    buf[n] = '\0';
    return evr_strdup(dirname(buf));
}

static pid_t
s_read_pid(const char *state, const char *name)
{
    char *p = evr_asprintf("%s/run/%s.pid", state, name);
    FILE *fp = fopen(p, "r");
    free(p);
    long pid = 0;
    if (fp) {
        if (fscanf(fp, "%ld", &pid) != 1)
            pid = 0;
        fclose(fp);
    }
    if (pid <= 0 || kill((pid_t) pid, 0) != 0)
        return 0;
    /* a pid file from before a reboot may name someone else's process */
    char *cl = evr_asprintf("/proc/%ld/cmdline", pid), buf[256] = "";
    fp = fopen(cl, "r");
    free(cl);
    size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    if (fp)
        fclose(fp);
    buf[n] = '\0';
    return strstr(buf, "evrun-") ? (pid_t) pid : 0;
}

/*  Starts argv in the background (own session, stdin from /dev/null,
    output to log), records its pid as STATE/run/NAME.pid. */
static pid_t
s_spawn(const s_up_t *u, const char *name, char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0) {
        setsid();
        /* up's processes use the sockets and ids up gives them */
        const char *const vars[] = { "EVRUN_RUNNER_ID", "EVRUN_CLIENT_ENDPOINT",
                                     "EVRUN_RUNNER_ENDPOINT", "EVRUN_EVENTS_ENDPOINT",
                                     "EVRUN_LOCAL", "EVRUN_LABELS", "EVRUN_CAPACITY" };
        for (size_t i = 0; i < EVR_ARRAY_LEN(vars); i++)
            unsetenv(vars[i]);
        int in = open("/dev/null", O_RDONLY);
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (in >= 0)
            dup2(in, 0);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    char *p = evr_asprintf("%s/run/%s.pid", u->state, name);
    FILE *fp = fopen(p, "w");
    if (fp) {
        fprintf(fp, "%ld\n", (long) pid);
        fclose(fp);
    }
    free(p);
    return pid;
}

static bool
s_podman_answers(const char *url)
{
    evr_err_t err;
    evr_podman_t *pm = evr_podman_new(url, &err);
    bool ok = pm && evr_podman_ping(pm, &err) == EVR_OK;
    evr_podman_destroy(&pm);
    return ok;
}

/*  The podman URL runners use: the configured one when it answers, else a
    service started under STATE/podman.  NULL (message printed) when none. */
static char *
s_podman(const s_up_t *u, const char *prog)
{
    const char *v = getenv("EVRUN_PODMAN_URL");
    char *url = v && *v ? evr_strdup(v)
              : geteuid() == 0 ? evr_strdup("unix:///run/podman/podman.sock")
                               : evr_asprintf("unix:///run/user/%u/podman/podman.sock",
                                              (unsigned) geteuid());
    if (s_podman_answers(url))
        return url;
    free(url);
    url = evr_asprintf("unix://%s/podman/podman.sock", u->state);
    if (s_podman_answers(url))
        return url;
    const char *helper = getenv("EVRUN_PODMAN_SERVICE");
    char *h = helper && *helper ? evr_strdup(helper)
                                : evr_asprintf("%s/../../tools/podman-service", u->bindir);
    char *cmd = evr_asprintf("'%s' start '%s/podman'", h, u->state);
    printf("starting a podman service under %s/podman\n", u->state);
    fflush(stdout);
    int rc = access(h, X_OK) == 0 ? system(cmd) : -1;
    if (rc == 0) {
        char *mark = evr_asprintf("%s/run/podman.started", u->state);
        FILE *fp = fopen(mark, "w");
        if (fp)
            fclose(fp);
        free(mark);
    }
    else {
        fprintf(stderr, "%s: no podman service answers and %s could not start one (set "
                "EVRUN_PODMAN_URL, or EVRUN_PODMAN_SERVICE to tools/podman-service)\n", prog,
                h);
        free(url);
        url = NULL;
    }
    free(cmd);
    free(h);
    return url;
}

static int
s_count_live(const evr_msg_t *m, void *arg)
{
    if (m->type == EVR_MSG_RUNNER && m->state && strcmp(m->state, "lost") != 0)
        (*(uint32_t *) arg)++;
    return 0;
}

/*  Waits (up to 10 s) until the broker answers and lists n runners that
    are not lost. */
static bool
s_wait_runners(evr_cli_t *cli, uint32_t n)
{
    for (int i = 0; i < 100; i++) {
        evr_err_t err;
        uint32_t live = 0;
        evr_client_destroy(&cli->client);
        if (evr_client_new(cli->cfg, &cli->client, &err) == EVR_OK) {
            evr_msg_t req = { .type = EVR_MSG_RUNNERS };
            if (evr_client_stream(cli->client, &req, s_count_live, &live, &err) == EVR_OK
                && live >= n)
                return true;
        }
        zclock_sleep(100);
    }
    return false;
}

static void
s_up_help(FILE *out)
{
    fprintf(out,
            "usage: evrun-cli up [--runners N] [--capacity N] [--labels a,b] [options]\n"
            "\n"
            "Starts a local evrun in the background: a broker on ipc:// sockets under\n"
            "STATE/bus, N runners (STATE/runners/1..N), and a podman service (under\n"
            "STATE/podman) when none answers at $EVRUN_PODMAN_URL or the default socket.\n"
            "Logs go to STATE/logs.  What already runs is kept: up is idempotent.  Stop\n"
            "it all with `evrun-cli down`.\n"
            "\n"
            "  --runners N          runners to start (default 1)\n"
            "  --capacity N         jobs at once per runner (default 2)\n"
            "  --labels a,b         the runners' labels\n"
            EVR_CLI_COMMON_HELP
            "\n"
            "exit status: 0 up; 2 something could not be started (its log says why)\n");
}

static int
s_start_broker(const s_up_t *u, const char *prog)
{
    if (s_read_pid(u->state, "broker"))
        return 0;
    char *bin = evr_asprintf("%s/evrun-broker", u->bindir);
    char *log = evr_asprintf("%s/logs/broker.log", u->state);
    char *c = evr_asprintf("ipc://%s/bus/clients", u->state);
    char *r = evr_asprintf("ipc://%s/bus/runners", u->state);
    char *e = evr_asprintf("ipc://%s/bus/events", u->state);
    char *argv[] = { bin, "--local", "--state-dir", (char *) u->state, "--client-endpoint", c,
                     "--runner-endpoint", r, "--events-endpoint", e, NULL };
    pid_t pid = s_spawn(u, "broker", argv, log);
    printf("broker started (pid %ld), log %s\n", (long) pid, log);
    free(c);
    free(r);
    free(e);
    free(bin);
    free(log);
    if (!pid) {
        fprintf(stderr, "%s: cannot start evrun-broker: %s\n", prog, strerror(errno));
        return 2;
    }
    return 0;
}

static int
s_start_runners(const s_up_t *u, uint32_t n, const char *cap, const char *labels,
                const char *url)
{
    int started = 0;
    for (uint32_t i = 1; i <= n; i++) {
        char name[32];
        snprintf(name, sizeof name, "runner-%u", i);
        if (s_read_pid(u->state, name))
            continue;
        char *bin = evr_asprintf("%s/evrun-runner", u->bindir);
        char *log = evr_asprintf("%s/logs/%s.log", u->state, name);
        char *dir = evr_asprintf("%s/runners/%u", u->state, i);
        char *ep = evr_asprintf("ipc://%s/bus/runners", u->state);
        char *argv[] = { bin, "--broker", ep, "--state-dir", dir, "--capacity", (char *) cap,
                         "--labels", (char *) labels, "--podman-url", (char *) url, NULL };
        pid_t pid = s_spawn(u, name, argv, log);
        printf("%s started (pid %ld), log %s\n", name, (long) pid, log);
        started += pid > 0;
        free(bin);
        free(log);
        free(dir);
        free(ep);
    }
    return started;
}

int
evr_cli_up(int argc, char **argv)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "runners", required_argument, NULL, 'n' },
        { "capacity", required_argument, NULL, 'c' }, { "labels", required_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    evr_cli_t cli = { .prog = "evrun-cli up" };
    unsigned long n = 1;
    const char *cap = "2", *labels = "";
    int c, status = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        switch (c) {
        case 'n': n = strtoul(optarg, NULL, 10); break;
        case 'c': cap = optarg; break;
        case 'l': labels = optarg; break;
        case 'h': s_up_help(stdout); return 0;
        default: status = 2; break;
        }
    }
    if (!status && (optind != argc || n < 1 || n > 64)) {
        fprintf(stderr, "%s: %s\n", cli.prog, optind != argc ? "unexpected arguments"
                                                             : "--runners: 1 to 64");
        status = 2;
    }
    if (status) {
        s_up_help(stderr);
        return status;
    }
    if ((status = evr_cli_settings(&cli)))
        return status;
    char *state = evr_strdup(evr_config_get(cli.cfg, "state_dir"));
    s_up_t u = { state, s_bindir() };
    const char *subs[] = { "", "/run", "/logs", "/bus", "/runners" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(subs); i++) {
        char *d = evr_asprintf("%s%s", u.state, subs[i]);
        mkdir(d, 0700);
        free(d);
    }
    char *url = s_podman(&u, cli.prog);
    /* the endpoints are the local broker's from now on */
    evr_config_destroy(&cli.cfg);
    cli.cfg = evr_config_new(evr_client_keys, evr_client_nkeys);
    evr_config_set(cli.cfg, "state_dir", u.state, "flag");
    evr_config_endpoints(cli.cfg, true);
    if (!url || (status = s_start_broker(&u, cli.prog)))
        status = 2;
    else {
        s_start_runners(&u, (uint32_t) n, cap, labels, url);
        if (!s_wait_runners(&cli, (uint32_t) n)) {
            fprintf(stderr, "%s: the broker does not list %lu runners after 10 s; see the logs "
                    "under %s/logs\n", cli.prog, n, u.state);
            status = 2;
        }
        else
            printf("evrun is up: broker %s, %lu runner%s, podman %s\n"
                   "try: evrun-cli run examples/hello.yml --follow; stop: evrun-cli down\n",
                   evr_config_get(cli.cfg, "client_endpoint"), n, n == 1 ? "" : "s", url);
    }
    free(url);
    free(u.bindir);
    free(state);
    evr_cli_done(&cli);
    return status;
}

/*  Sends SIGTERM to STATE/run/NAME.pid and waits up to wait_s, then
    SIGKILL.  True when it had been running. */
static bool
s_stop(const char *state, const char *name, int wait_s, bool signalled)
{
    pid_t pid = s_read_pid(state, name);
    char *p = evr_asprintf("%s/run/%s.pid", state, name);
    if (pid) {
        if (!signalled)     /* a second SIGTERM would make a runner quit at once */
            kill(pid, SIGTERM);
        for (int i = 0; i < wait_s * 10 && kill(pid, 0) == 0; i++) {
            waitpid(pid, NULL, WNOHANG);
            usleep(100000);
        }
        if (kill(pid, 0) == 0) {
            fprintf(stderr, "evrun-cli down: %s (pid %ld) still running after %d s: killed\n",
                    name, (long) pid, wait_s);
            kill(pid, SIGKILL);
        }
        printf("%s stopped\n", name);
    }
    unlink(p);
    free(p);
    return pid != 0;
}

int
evr_cli_down(int argc, char **argv)
{
    static const struct option opts[] = { EVR_CLI_COMMON_OPTS, { NULL, 0, NULL, 0 } };
    evr_cli_t cli = { .prog = "evrun-cli down" };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        if (c == 'h') {
            printf("usage: evrun-cli down [options]\n\nStops what `evrun-cli up` started: the "
                   "runners (each finishes its running jobs,\nup to 30 s; jobs still running "
                   "then are taken up at the next `up`), the\nbroker, and the podman service "
                   "if up started it.\n\n%s", EVR_CLI_COMMON_HELP);
            return 0;
        }
        fprintf(stderr, "usage: evrun-cli down [options]\n");
        return 2;
    }
    int status = evr_cli_settings(&cli);
    if (status)
        return status;
    const char *state = evr_config_get(cli.cfg, "state_dir");
    int stopped = 0;
    for (unsigned i = 1; i <= 64; i++) {   /* every runner stops at once */
        char name[32];
        snprintf(name, sizeof name, "runner-%u", i);
        pid_t pid = s_read_pid(state, name);
        if (pid)
            kill(pid, SIGTERM);
    }
    for (unsigned i = 1; i <= 64; i++) {
        char name[32];
        snprintf(name, sizeof name, "runner-%u", i);
        stopped += s_stop(state, name, 40, true);
    }
    stopped += s_stop(state, "broker", 10, false);
    char *mark = evr_asprintf("%s/run/podman.started", state);
    if (access(mark, F_OK) == 0) {
        char *bindir = s_bindir();
        const char *helper = getenv("EVRUN_PODMAN_SERVICE");
        char *h = helper && *helper ? evr_strdup(helper)
                                    : evr_asprintf("%s/../../tools/podman-service", bindir);
        char *cmd = evr_asprintf("'%s' stop '%s/podman'", h, state);
        if (system(cmd) == 0)
            printf("podman service stopped\n");
        unlink(mark);
        free(cmd);
        free(h);
        free(bindir);
        stopped++;
    }
    free(mark);
    if (!stopped)
        printf("nothing was running under %s\n", state);
    evr_cli_done(&cli);
    return 0;
}
