/*  cli_up.c: `evrun-cli up`: a local evrun (cli_down.c stops it).

    up starts, in the background and detached from the terminal, a broker
    in local mode (ipc:// sockets under STATE/bus) and N runners
    (STATE/runners/I), or with --provisioner an evrun-provisioner that
    starts single-use runners per job (N may be 0 then), with their logs
    under STATE/logs and their pids under STATE/run, plus a podman service (tools/podman-service) when none
    answers at the configured URL and the runners need podman (--executors
    does not leave it out).  What already runs is left as it is, so
    up is idempotent.

    The state tree is made 0700 and refused unless private
    (evr_paths_state, with the directories above it):
    pid and log files are opened without following links, and a pid file
    is written aside and renamed.  up waits S_UP_WAIT_S for the broker to
    list the runners, and stops waiting as soon as a process it started
    exits, showing the end of its log.
*/
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "cli_bus.h"
#include "evr_json.h"
#include "evr_offer.h"
#include "evr_paths.h"

#define S_UP_WAIT_S 10      /* how long up waits for the broker to list the runners */
#define S_UP_KIDS 67        /* the broker, up to 64 runners, the gateway, the provisioner */
#define S_PING_MS 5000      /* how long a podman service has to answer _ping */
#define S_PODMAN_API "/v4.0.0/libpod"
#define S_GW_API "/api/v1"   /* the gateway's API under its URL; the web UI is at / */

typedef struct {
    const char *state;
    char *bindir;           /* where evrun-cli is: the other binaries are there */
    int nkids;              /* the processes this up started, to see them exit */
    pid_t kids[S_UP_KIDS];
    char kid_names[S_UP_KIDS][32];
    FILE *out;              /* what up says as it goes: stdout, stderr with --json */
} s_up_t;

char *
evr_cli_up_bindir(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return evr_strdup(".");
    buf[n] = '\0';
    return evr_strdup(dirname(buf));
}

/*  Whether process pid is the one up started as NAME for state: an evrun
    binary whose --state-dir is state itself (a runner's: state/runners/I,
    I NAME's number), the same directory however it is spelled (up
    --state-dir s, down --state-dir ./s).  A pid file from before a reboot,
    or one copied with its state directory, may name another evrun's
    process: another state directory's broker was stopped by down. */
static bool
s_ours(long pid, const char *state, const char *name)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    FILE *fp = fopen(path, "re");
    size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    if (fp)
        fclose(fp);
    buf[n] = '\0';
    const char *arg0 = strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf, *dir = NULL;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)   /* NUL-separated arguments */
        if (!strcmp(buf + i, "--state-dir") && i + 12 < n)
            dir = buf + i + 12;
    if (strncmp(arg0, "evrun-", 6) || !dir || !*dir)
        return false;
    char *d = evr_strdup(dir);
    if (!strncmp(name, "runner-", 7)) {   /* state/runners/I */
        char *slash = strrchr(d, '/');
        bool ok = slash && !strcmp(slash + 1, name + 7);
        if (ok)
            *slash = '\0';
        ok = ok && (slash = strrchr(d, '/')) && !strcmp(slash + 1, "runners");
        if (ok)
            *slash = '\0';
        if (!ok)
            d[0] = '\0';
    }
    struct stat a, b;
    bool same = *d && stat(d, &a) == 0 && stat(state, &b) == 0 && a.st_dev == b.st_dev
                && a.st_ino == b.st_ino;
    free(d);
    return same;
}

pid_t
evr_cli_up_pid(const char *state, const char *name, evr_err_t *err)
{
    char *p = evr_asprintf("%s/run/%s.pid", state, name);
    int fd = evr_paths_open(p, O_RDONLY, err);
    int e = errno;
    free(p);
    if (fd < 0)
        return e == ENOENT ? 0 : -1;
    char num[32];
    ssize_t got = read(fd, num, sizeof num - 1);
    close(fd);
    num[got > 0 ? got : 0] = '\0';
    long pid = strtol(num, NULL, 10);
    if (pid <= 0 || kill((pid_t) pid, 0) != 0)
        return 0;
    return s_ours(pid, state, name) ? (pid_t) pid : 0;
}

/*  Starts argv in the background (own session, stdin from /dev/null,
    output appended to log), records its pid as STATE/run/NAME.pid.  The
    pid, or 0 with the reason printed. */
static pid_t
s_spawn(s_up_t *u, const char *name, char *const argv[], const char *log)
{
    evr_err_t err;
    int out = evr_paths_open(log, O_WRONLY | O_CREAT | O_APPEND, &err);
    if (out < 0) {
        fprintf(stderr, "evrun-cli up: cannot start %s: %s\n", name, err.msg);
        return 0;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "evrun-cli up: cannot start %s: fork: %s\n", name, strerror(errno));
        close(out);
        return 0;
    }
    if (pid == 0) {
        setsid();
        /* up's processes use the sockets and ids up gives them */
        const char *const vars[] = { "EVRUN_RUNNER_ID", "EVRUN_CLIENT_ENDPOINT",
                                     "EVRUN_RUNNER_ENDPOINT", "EVRUN_EVENTS_ENDPOINT",
                                     "EVRUN_LOCAL", "EVRUN_LABELS", "EVRUN_CAPACITY" };
        for (size_t i = 0; i < EVR_ARRAY_LEN(vars); i++)
            unsetenv(vars[i]);
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0)
            dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out);
    if (u->nkids < S_UP_KIDS) {
        u->kids[u->nkids] = pid;
        snprintf(u->kid_names[u->nkids++], sizeof u->kid_names[0], "%s", name);
    }
    char *p = evr_asprintf("%s/run/%s.pid", u->state, name);
    if (evr_paths_write_pid(p, (long) pid, &err))
        fprintf(stderr, "evrun-cli up: %s (`evrun-cli down` will not find %s)\n", err.msg,
                name);
    free(p);
    return pid;
}

/*  Milliseconds left until deadline (CLOCK_MONOTONIC, ms), at least 0. */
static int
s_left_ms(int64_t deadline)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return now >= deadline ? 0 : (int) (deadline - now);
}

/*  Whether a podman service answers at url ("unix:///path/podman.sock"):
    GET /_ping gets a 200 status line within S_PING_MS.  The runner's
    evr_podman_ping asks the same; this is the CLI's own call, over a plain
    socket: linking libcurl (and its TLS, LDAP and Kerberos libraries) cost
    every evrun-cli command ~4 ms of loading for this one question. */
static bool
s_podman_answers(const char *url)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strncmp(url, "unix://", 7) != 0 || strlen(url + 7) >= sizeof sa.sun_path)
        return false;
    memcpy(sa.sun_path, url + 7, strlen(url + 7) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t deadline = (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + S_PING_MS;
    bool ok = false;
    char buf[64];
    size_t got = 0;
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa) != 0 && errno != EINPROGRESS
        && errno != EAGAIN)
        goto out;
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    if (poll(&p, 1, s_left_ms(deadline)) != 1 || (p.revents & (POLLERR | POLLHUP)))
        goto out;
    static const char req[] = "GET " S_PODMAN_API "/_ping HTTP/1.0\r\nHost: d\r\n\r\n";
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t) sizeof req - 1)
        goto out;
    while (got < sizeof buf - 1 && !memchr(buf, '\n', got)) {   /* the status line */
        p.events = POLLIN;
        if (poll(&p, 1, s_left_ms(deadline)) != 1)
            goto out;
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    buf[got] = '\0';
    ok = (strncmp(buf, "HTTP/1.0 200 ", 13) == 0 || strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
out:
    close(fd);
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
    char *cmd = evr_asprintf("'%s' start '%s/podman'%s", h, u->state,
                             u->out == stdout ? "" : " 1>&2");
    fprintf(u->out, "starting a podman service under %s/podman\n", u->state);
    fflush(u->out);
    int rc = access(h, X_OK) == 0 ? system(cmd) : -1;
    if (rc == 0) {
        char *mark = evr_asprintf("%s/run/podman.started", u->state);
        evr_err_t err;
        int fd = evr_paths_open(mark, O_WRONLY | O_CREAT, &err);
        if (fd >= 0)
            close(fd);
        else
            fprintf(stderr, "%s: %s (`evrun-cli down` will leave the podman service)\n", prog,
                    err.msg);
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
    if (m->type == EVR_MSG_RUNNER && !evr_msg_state_away(m->state))
        (*(uint32_t *) arg)++;
    return 0;
}

/*  Prints the last lines (at most 2 KiB) of log to stderr, indented. */
static void
s_log_tail(const char *log)
{
    evr_err_t err;
    int fd = evr_paths_open(log, O_RDONLY, &err);
    if (fd < 0) {
        fprintf(stderr, "  (%s)\n", err.msg);
        return;
    }
    char buf[2049];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > 2048 ? size - 2048 : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, from);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    char *line = buf;
    if (from > 0 && (line = strchr(buf, '\n')))    /* from the first whole line */
        line++;
    for (char *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        fprintf(stderr, "  %.*s\n", nl ? (int) (nl - line) : (int) strlen(line), line);
    }
}

/*  True (and says so, with the end of its log) when a process this up
    started has exited. */
static bool
s_kid_exited(const s_up_t *u, const char *prog)
{
    for (int i = 0; i < u->nkids; i++) {
        int st;
        if (waitpid(u->kids[i], &st, WNOHANG) != u->kids[i])
            continue;
        char *log = evr_asprintf("%s/logs/%s.log", u->state, u->kid_names[i]);
        fflush(stdout);
        if (WIFSIGNALED(st))
            fprintf(stderr, "%s: %s (pid %ld) was killed by signal %d; the end of %s:\n",
                    prog, u->kid_names[i], (long) u->kids[i], WTERMSIG(st), log);
        else
            fprintf(stderr, "%s: %s (pid %ld) exited with status %d; the end of %s:\n", prog,
                    u->kid_names[i], (long) u->kids[i], WEXITSTATUS(st), log);
        s_log_tail(log);
        free(log);
        return true;
    }
    return false;
}

/*  Waits (up to S_UP_WAIT_S in all: each attempt is bounded by what is
    left) until the broker answers and lists n runners that are not lost.
    Stops at once when a process this up started exits. */
static bool
s_wait_runners(evr_cli_t *cli, const s_up_t *u, uint32_t n)
{
    uint64_t until = evr_mono_ns() + S_UP_WAIT_S * 1000000000ull;
    for (uint64_t now; (now = evr_mono_ns()) < until;) {
        if (s_kid_exited(u, cli->prog))
            return false;
        uint64_t left_ms = (until - now) / 1000000 + 1;
        char t[32];
        snprintf(t, sizeof t, "%llu", (unsigned long long) (left_ms < 1000 ? left_ms : 1000));
        evr_config_set(cli->cfg, "timeout_ms", t, "flag");
        evr_err_t err;
        uint32_t live = 0;
        evr_client_destroy(&cli->client);
        if (evr_client_new(cli->cfg, &cli->client, &err) == EVR_OK) {
            evr_msg_t req = { .type = EVR_MSG_RUNNERS };
            if (evr_client_stream(cli->client, &req, s_count_live, &live, &err) == EVR_OK
                && live >= n)
                return true;
        }
        zclock_sleep(left_ms < 100 ? (int) left_ms : 100);
    }
    fflush(stdout);
    fprintf(stderr, "%s: the broker does not list %lu runner%s after %d s; see the logs "
            "under %s/logs\n", cli->prog, (unsigned long) n, n == 1 ? "" : "s", S_UP_WAIT_S,
            u->state);
    return false;
}

static void
s_up_help(FILE *out)
{
    fprintf(out,
            "usage: evrun-cli up [--runners N] [--capacity N] [--labels a,b]\n"
            "                    [--executors LIST] [--provisioner FILE] [--no-gateway]\n"
            "                    [options]\n"
            "\n"
            "Starts a local evrun in the background: a broker on ipc:// sockets under\n"
            "STATE/bus, N runners (STATE/runners/1..N), and a podman service (under\n"
            "STATE/podman) when none answers at $EVRUN_PODMAN_URL or the default socket\n"
            "(none is needed when --executors leaves podman out), and evrun-gateway, the\n"
            "HTTP API and web UI (their URLs are printed; it listens on its http_listen\n"
            "setting, default 127.0.0.1:7780; tokens: evrun-cli token).  Logs go to\n"
            "STATE/logs.  What already runs is kept: up is idempotent.  Stop it all with\n"
            "`evrun-cli down`.  The state directory and its subdirectories are\n"
            "made 0700 when missing (parents too), and refused when one is a link, another\n"
            "user's, or writable by group or others, or when a directory above the state\n"
            "directory is neither yours nor root's, or writable by group or others and not\n"
            "sticky.  up waits up to 10 s for the broker to list the runners, and stops at\n"
            "once, showing the end of its log, when a process it started exits (the\n"
            "gateway too: one whose address is taken; what did start keeps running).\n"
            "\n"
            "The runners' settings (--runners, --capacity, --labels, --executors) are\n"
            "kept in STATE/run/up.settings until down: an up again that does not give\n"
            "one takes the last up's (and says so), so a runner it starts again (one\n"
            "that was killed) is started as before.\n"
            "\n"
            "  --runners N          runners to start (default 1; 0 with --provisioner)\n"
            "  --capacity N         jobs at once per runner (default 2)\n"
            "  --labels a,b         the runners' labels\n"
            "  --executors LIST     what runs steps in the runners: podman, process (host\n"
            "                       commands, as your user: only when listed), comma-\n"
            "                       separated (default: the runners' setting, podman);\n"
            "                       without podman, up neither needs nor starts podman\n"
            "  --provisioner FILE   also start evrun-provisioner --config FILE: single-use\n"
            "                       runners per waiting job (README \"Ephemeral runners\n"
            "                       and the provisioner\"); they get the podman URL up\n"
            "                       found; log STATE/logs/provisioner.log\n"
            "  --no-gateway         do not start evrun-gateway\n"
            EVR_CLI_COMMON_HELP
            "\n"
            "With --json, stdout has one object once all runs: state_dir, broker, runners,\n"
            "capacity, labels, executors, podman_url, provisioner, gateway (null when\n"
            "none); what up says as it goes is on stderr.\n"
            "\n"
            "exit status: 0 up; 2 a state directory refused, or something could not be\n"
            "started (its log says why; for the gateway, most often its address taken:\n"
            "EVRUN_HTTP_LISTEN=127.0.0.1:PORT, or --no-gateway)\n");
}

static void
s_up_help_cb(FILE *out, const void *arg)
{
    (void) arg;
    s_up_help(out);
}

static int
s_start_broker(s_up_t *u, const char *prog)
{
    evr_err_t err;
    pid_t running = evr_cli_up_pid(u->state, "broker", &err);
    if (running < 0)
        fprintf(stderr, "%s: %s\n", prog, err.msg);
    if (running)
        return running < 0 ? 2 : 0;
    char *bin = evr_asprintf("%s/evrun-broker", u->bindir);
    char *log = evr_asprintf("%s/logs/broker.log", u->state);
    char *c = evr_asprintf("ipc://%s/bus/clients", u->state);
    char *r = evr_asprintf("ipc://%s/bus/runners", u->state);
    char *e = evr_asprintf("ipc://%s/bus/events", u->state);
    char *argv[] = { bin, "--local", "--state-dir", (char *) u->state, "--client-endpoint", c,
                     "--runner-endpoint", r, "--events-endpoint", e, NULL };
    pid_t pid = s_spawn(u, "broker", argv, log);
    if (pid)
        fprintf(u->out, "broker started (pid %ld), log %s\n", (long) pid, log);
    free(c);
    free(r);
    free(e);
    free(bin);
    free(log);
    return pid ? 0 : 2;
}

/*  The first 64 KiB of log, NUL-terminated; NULL when it cannot be
    opened.  Caller frees.  up empties a log when it starts its process,
    whose start lines are then at its head, however long it grows (its
    last 64 KiB lost them after a few hundred requests). */
static char *
s_log_head(const char *log)
{
    evr_err_t err;
    int fd = evr_paths_open(log, O_RDONLY, &err);
    if (fd < 0)
        return NULL;
    char *buf = evr_malloc(64 * 1024 + 1);
    ssize_t n = pread(fd, buf, 64 * 1024, 0);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/*  The URL in the last "evrun-gateway: listening on URL" line of log
    (its first 64 KiB); NULL when none.  Caller frees. */
static char *
s_gateway_url(const char *log)
{
    static const char mark[] = "evrun-gateway: listening on ";
    char *buf = s_log_head(log);
    if (!buf)
        return NULL;
    char *url = NULL;
    for (char *at = strstr(buf, mark); at; at = strstr(at + 1, mark)) {
        free(url);
        url = evr_strndup(at + sizeof mark - 1, strcspn(at + sizeof mark - 1, " \n"));
    }
    free(buf);
    return url;
}

/*  Starts evrun-gateway (unless it runs) on the local broker and waits
    up to S_UP_WAIT_S for it to listen; its URL (caller frees), or NULL
    with the reason printed (the end of its log when it exited, e.g.
    because its port is taken). */
static char *
s_start_gateway(s_up_t *u, const char *prog)
{
    evr_err_t err;
    char *log = evr_asprintf("%s/logs/gateway.log", u->state);
    pid_t running = evr_cli_up_pid(u->state, "gateway", &err);
    if (running < 0)
        fprintf(stderr, "%s: %s\n", prog, err.msg);
    char *url = running > 0 ? s_gateway_url(log) : NULL;
    if (running) {
        free(log);
        return url;
    }
    char *bin = evr_asprintf("%s/evrun-gateway", u->bindir);
    char *c = evr_asprintf("ipc://%s/bus/clients", u->state);
    char *e = evr_asprintf("ipc://%s/bus/events", u->state);
    char *argv[] = { bin, "--state-dir", (char *) u->state, "--broker", c,
                     "--events-endpoint", e, NULL };
    int fd = evr_paths_open(log, O_WRONLY | O_CREAT | O_TRUNC, &err);
    if (fd >= 0)    /* a fresh log: the URL read is this start's */
        close(fd);
    pid_t pid = s_spawn(u, "gateway", argv, log);
    for (int i = 0; pid && i < S_UP_WAIT_S * 10 && !url && !s_kid_exited(u, prog); i++) {
        usleep(100000);
        url = s_gateway_url(log);
    }
    if (pid && url)
        fprintf(u->out, "gateway started (pid %ld), log %s\n", (long) pid, log);
    else if (pid && kill(pid, 0) == 0)
        fprintf(stderr, "%s: the gateway does not say it listens after %d s; see %s\n", prog,
                S_UP_WAIT_S, log);
    else if (pid) {     /* it exited (said): no pid file of it left */
        char *p = evr_asprintf("%s/run/gateway.pid", u->state);
        unlink(p);
        free(p);
    }
    free(c);
    free(e);
    free(bin);
    free(log);
    return url;
}

/*  Whether the runners up starts need podman: unless --executors (list,
    NULL when not given: the runners' own setting, podman by default)
    leaves it out. */
static bool
s_needs_podman(const char *list)
{
    if (!list)
        return true;
    char *copy = evr_strdup(list);
    bool podman = false;
    for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t && !podman;
         t = strtok_r(NULL, ", ", &save))
        podman = !strcmp(t, "podman");
    free(copy);
    return podman;
}

/*  Starts the runners 1..n that do not run, with the podman URL url (NULL:
    they need none); 2 when one cannot be started (said), else 0. */
static int
s_start_runners(s_up_t *u, uint32_t n, const char *cap, const char *labels, const char *url,
                const char *executors)
{
    int status = 0;
    for (uint32_t i = 1; i <= n && !status; i++) {
        char name[32];
        snprintf(name, sizeof name, "runner-%u", i);
        evr_err_t err;
        pid_t running = evr_cli_up_pid(u->state, name, &err);
        if (running < 0) {
            fprintf(stderr, "evrun-cli up: %s\n", err.msg);
            status = 2;
        }
        if (running)
            continue;
        char *bin = evr_asprintf("%s/evrun-runner", u->bindir);
        char *log = evr_asprintf("%s/logs/%s.log", u->state, name);
        char *dir = evr_asprintf("%s/runners/%u", u->state, i);
        char *ep = evr_asprintf("ipc://%s/bus/runners", u->state);
        char *argv[16] = { bin, "--broker", ep, "--state-dir", dir, "--capacity", (char *) cap,
                           "--labels", (char *) labels };
        int k = 9;
        if (url) {
            argv[k++] = "--podman-url";
            argv[k++] = (char *) url;
        }
        if (executors) {
            argv[k++] = "--executors";
            argv[k++] = (char *) executors;
        }
        argv[k] = NULL;
        pid_t pid = s_spawn(u, name, argv, log);
        if (pid)
            fprintf(u->out, "%s started (pid %ld), log %s\n", name, (long) pid, log);
        else
            status = 2;
        free(bin);
        free(log);
        free(dir);
        free(ep);
    }
    return status;
}

/*  Whether the first 64 KiB of log hold mark. */
static bool
s_log_has(const char *log, const char *mark)
{
    char *buf = s_log_head(log);
    if (!buf)
        return false;
    bool has = strstr(buf, mark) != NULL;
    free(buf);
    return has;
}

/*  Starts evrun-provisioner --config file (unless it runs) on the local
    broker, the podman URL url (NULL: none) in its runners' environment,
    and waits up to S_UP_WAIT_S for it to watch the broker; 0, or 2 with
    the reason printed (the end of its log when it exited: a bad config). */
static int
s_start_provisioner(s_up_t *u, const char *prog, const char *file, const char *url)
{
    evr_err_t err;
    pid_t running = evr_cli_up_pid(u->state, "provisioner", &err);
    if (running < 0)
        fprintf(stderr, "%s: %s\n", prog, err.msg);
    if (running)
        return running < 0 ? 2 : 0;
    char *abs = realpath(file, NULL);
    if (!abs) {
        fprintf(stderr, "%s: --provisioner %s: %s\n", prog, file, strerror(errno));
        return 2;
    }
    if (url)
        setenv("EVRUN_PODMAN_URL", url, 1);     /* its process runners' */
    char *bin = evr_asprintf("%s/evrun-provisioner", u->bindir);
    char *log = evr_asprintf("%s/logs/provisioner.log", u->state);
    char *c = evr_asprintf("ipc://%s/bus/clients", u->state);
    char *argv[] = { bin, "--config", abs, "--state-dir", (char *) u->state, "--broker", c, NULL };
    int fd = evr_paths_open(log, O_WRONLY | O_CREAT | O_TRUNC, &err);
    if (fd >= 0)    /* a fresh log: the line waited for is this start's */
        close(fd);
    pid_t pid = s_spawn(u, "provisioner", argv, log);
    bool watching = false;
    for (int i = 0; pid && i < S_UP_WAIT_S * 10 && !watching && !s_kid_exited(u, prog); i++) {
        usleep(100000);
        watching = s_log_has(log, "evrun-provisioner: watching the broker");
    }
    if (watching)
        fprintf(u->out, "provisioner started (pid %ld, config %s), log %s\n", (long) pid, abs,
                log);
    else if (pid && kill(pid, 0) == 0)
        fprintf(stderr, "%s: the provisioner does not say it watches the broker after %d s; "
                "see %s\n", prog, S_UP_WAIT_S, log);
    else if (pid) {     /* it exited (said): no pid file of it left */
        char *p = evr_asprintf("%s/run/provisioner.pid", u->state);
        unlink(p);
        free(p);
    }
    free(c);
    free(bin);
    free(log);
    free(abs);
    return watching ? 0 : 2;
}

/*  A setting of the runners up starts (--runners, --capacity, --labels,
    --executors): given, or else the last up's, or else the default. */
typedef struct {
    const char *key;    /* its line in STATE/run/up.settings: "key=value" */
    const char *value;
    bool given;
} s_upset_t;

enum { S_SET_RUNNERS, S_SET_CAPACITY, S_SET_LABELS, S_SET_EXECUTORS, S_SETS };

/*  The last up's settings are kept in STATE/run/up.settings until down:
    each one not given now is taken from there (said on u->out), so a
    runner started again (one that was killed) is started as the first
    up started it; then the settings in force are written there.  Returns
    the file's text the values point into (caller frees), or NULL. */
static char *
s_upset_merge(const s_up_t *u, const char *prog, s_upset_t *set)
{
    char *path = evr_asprintf("%s/run/up.settings", u->state), *text = NULL;
    evr_err_t err;
    int fd = evr_paths_open(path, O_RDONLY, &err);
    if (fd >= 0) {
        text = evr_calloc(1, 4097);
        ssize_t got = read(fd, text, 4096);
        close(fd);
        text[got > 0 ? got : 0] = '\0';
    }
    char said[512] = "";
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        if ((nl = strchr(line, '\n')))
            *nl = '\0';
        char *eq = strchr(line, '=');
        for (int i = 0; eq && i < S_SETS; i++)
            if (!set[i].given && (size_t) (eq - line) == strlen(set[i].key)
                && !strncmp(line, set[i].key, (size_t) (eq - line)) && eq[1]) {
                set[i].value = eq + 1;
                set[i].given = true;    /* given to an earlier up: kept */
                snprintf(said + strlen(said), sizeof said - strlen(said), " --%s %s",
                         set[i].key, eq + 1);
            }
    }
    if (said[0])
        fprintf(u->out, "as the last up (%s):%s\n", path, said);
    fd = evr_paths_open(path, O_WRONLY | O_CREAT | O_TRUNC, &err);
    for (int i = 0; fd >= 0 && i < S_SETS; i++)
        if (set[i].given && set[i].value[0] && !strchr(set[i].value, '\n'))
            dprintf(fd, "%s=%s\n", set[i].key, set[i].value);
    if (fd >= 0)
        close(fd);
    else
        fprintf(stderr, "%s: %s (a later up will not know these settings)\n", prog, err.msg);
    free(path);
    return text;
}

/*  up's end with --json: one object on stdout. */
static void
s_up_json(const evr_cli_t *cli, const s_upset_t *set, const char *podman, const char *prov,
          const char *http)
{
    json_t *js = json_pack("{s:s, s:s, s:i, s:i, s:s}", "state_dir",
                           evr_config_get(cli->cfg, "state_dir"), "broker",
                           evr_config_get(cli->cfg, "client_endpoint"), "runners",
                           atoi(set[S_SET_RUNNERS].value), "capacity",
                           atoi(set[S_SET_CAPACITY].value), "labels", set[S_SET_LABELS].value);
    json_object_set_new(js, "executors", set[S_SET_EXECUTORS].value
                        ? json_string(set[S_SET_EXECUTORS].value) : json_string("podman"));
    json_object_set_new(js, "podman_url", podman ? json_string(podman) : json_null());
    json_object_set_new(js, "provisioner", prov ? json_string(prov) : json_null());
    json_object_set_new(js, "gateway", http ? json_string(http) : json_null());
    char *s = json_dumps(js, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s\n", s);
    free(s);
    json_decref(js);
}

int
evr_cli_up(int argc, char **argv)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "runners", required_argument, NULL, 'n' },
        { "capacity", required_argument, NULL, 'c' }, { "labels", required_argument, NULL, 'l' },
        { "executors", required_argument, NULL, 'x' }, { "no-gateway", no_argument, NULL, 'G' },
        { "provisioner", required_argument, NULL, 'P' }, { NULL, 0, NULL, 0 },
    };
    evr_cli_t cli = { .prog = "evrun-cli up" };
    bool gateway = true;
    unsigned long n = 1;
    const char *prov = NULL;
    s_upset_t set[S_SETS] = { { "runners", "1", false }, { "capacity", "2", false },
                              { "labels", "", false }, { "executors", NULL, false } };
    int c, status = 0;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, "h", opts)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        switch (c) {
        case 'n':
            if (!evr_cli_uint_arg(cli.prog, "--runners", optarg, 0, 64, &n))
                status = 2;
            set[S_SET_RUNNERS] = (s_upset_t) { "runners", optarg, true };
            break;
        case 'c': {   /* checked here: not a broker started for a runner that cannot */
            unsigned long v;
            set[S_SET_CAPACITY] = (s_upset_t) { "capacity", optarg, true };
            if (!evr_cli_uint_arg(cli.prog, "--capacity", optarg, 1, 1024, &v))
                status = 2;
            break;
        }
        case 'l': {
            size_t empty = evr_config_list_empty(optarg);
            set[S_SET_LABELS] = (s_upset_t) { "labels", optarg, true };
            if (empty) {   /* "a,,b": refused here, as the runners would */
                fprintf(stderr, "%s: --labels \"%s\": item %zu is empty (a comma too many?): "
                        "give each item, as in a,b\n", cli.prog, optarg, empty);
                status = 2;
            }
            break;
        }
        case 'x': {
            evr_offer_t offer;
            evr_err_t xerr;
            set[S_SET_EXECUTORS] = (s_upset_t) { "executors", optarg, true };
            if (evr_offer_parse(optarg, &offer, &xerr)) {
                fprintf(stderr, "%s: --%s\n", cli.prog, xerr.msg);
                status = 2;
            }
            break;
        }
        case 'G': gateway = false; break;
        case 'P': prov = optarg; break;
        case 'h': s_up_help(stdout); return 0;
        default: status = 2; break;
        }
    }
    if (!status && (optind != argc || n < (prov ? 0 : 1) || n > 64)) {
        fprintf(stderr, "%s: %s\n", cli.prog, optind != argc ? "unexpected arguments"
                : "--runners: 1 to 64 (0 only with --provisioner: else nothing runs jobs)");
        status = 2;
    }
    if (status) {
        evr_cli_brief(cli.prog, s_up_help_cb, NULL);
        return status;
    }
    const char *why = NULL;   /* before anything starts (podman, the broker, the runners) */
    struct stat pst;
    if (prov && stat(prov, &pst))
        why = strerror(errno);
    else if (prov && S_ISDIR(pst.st_mode))
        why = "is a directory, not a providers file (YAML)";
    else if (prov && !S_ISREG(pst.st_mode))
        why = "not a regular file";
    else if (prov && access(prov, R_OK))
        why = strerror(errno);
    if (why) {
        fprintf(stderr, "%s: --provisioner %s: %s\n", cli.prog, prov, why);
        return 2;
    }
    if ((status = evr_cli_settings(&cli)))
        return status;
    char *state = evr_strdup(evr_config_get(cli.cfg, "state_dir"));
    s_up_t u = { .state = state, .bindir = evr_cli_up_bindir(), .out = cli.json ? stderr : stdout };
    evr_err_t err;
    char *url = NULL, *http = NULL, *kept = NULL;
    if (evr_paths_state(state, EVR_PATHS_ALL, (uint32_t) n, true, &err)) {
        fprintf(stderr, "%s: %s\n", cli.prog, err.msg);
        status = 2;
        goto out;
    }
    kept = s_upset_merge(&u, cli.prog, set);
    n = strtoul(set[S_SET_RUNNERS].value, NULL, 10);
    if ((!n && !prov) || n > 64) {   /* the last up's --runners 0 was a provisioner's */
        n = 1;
        set[S_SET_RUNNERS].value = "1";
    }
    if (evr_paths_state(state, EVR_PATHS_ALL, (uint32_t) n, true, &err)) {
        fprintf(stderr, "%s: %s\n", cli.prog, err.msg);
        status = 2;
        goto out;
    }
    const char *executors = set[S_SET_EXECUTORS].value;
    bool podman = s_needs_podman(executors);
    if (podman)
        url = s_podman(&u, cli.prog);
    /* the endpoints are the local broker's from now on */
    evr_config_destroy(&cli.cfg);
    cli.cfg = evr_config_new(evr_client_keys, evr_client_nkeys);
    evr_config_set(cli.cfg, "state_dir", u.state, "flag");
    evr_config_endpoints(cli.cfg, true);
    if ((podman && !url) || (status = s_start_broker(&u, cli.prog))
        || (status = s_start_runners(&u, (uint32_t) n, set[S_SET_CAPACITY].value,
                                     set[S_SET_LABELS].value, url, executors))
        || (prov && (status = s_start_provisioner(&u, cli.prog, prov, url))))
        status = 2;
    else {
        if (!s_wait_runners(&cli, &u, (uint32_t) n)) {
            fprintf(stderr, "%s: what did start keeps running: `evrun-cli down` stops it\n",
                    cli.prog);
            status = 2;
        }
        else if (gateway && !(http = s_start_gateway(&u, cli.prog))) {
            /* its port taken, most often: said as any start that failed */
            fprintf(stderr, "%s: the HTTP gateway could not start (see above): give it another "
                    "address with EVRUN_HTTP_LISTEN=127.0.0.1:PORT (or http_listen in the "
                    "config file), or run `evrun-cli up --no-gateway`; what did start keeps "
                    "running: `evrun-cli down` stops it\n", cli.prog);
            status = 2;
        }
        else {
            if (cli.json)
                s_up_json(&cli, set, podman ? url : NULL, prov, http);
            fprintf(u.out, "evrun is up: broker %s, %lu runner%s%s, %s%s\n"
                    "try: evrun-cli run examples/%s.yml --follow; stop: evrun-cli down\n",
                    evr_config_get(cli.cfg, "client_endpoint"), n, n == 1 ? "" : "s",
                    prov ? " and a provisioner (single-use runners per job)" : "",
                    podman ? "podman " : "executors ", podman ? url : executors,
                    podman ? "hello" : "process");
            if (http) {
                fprintf(u.out, "HTTP API: %s (token: evrun-cli token; try: curl -H "
                        "\"Authorization: Bearer $(evrun-cli token)\" %s/jobs)\n", http, http);
                char *api = strstr(http, S_GW_API);
                fprintf(u.out, "web UI: %.*s/ (paste a token from evrun-cli token)\n",
                        (int) (api ? (size_t) (api - http) : strlen(http)), http);
            }
        }
    }
out:
    free(kept);
    free(http);
    free(url);
    free(u.bindir);
    free(state);
    evr_cli_done(&cli);
    return status;
}
