/*  cli_down.c: `evrun-cli down`: stops what `evrun-cli up` (cli_up.c)
    started, found by its pid files under STATE/run: the gateway and the
    provisioner first, then the runners (SIGTERM: they finish their
    running jobs, up to their stop timeout), then the broker, then the
    podman service if up started it.  A pid file that is not a private
    regular file is refused (evr_paths_open), as up refuses it.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "cli_bus.h"
#include "evr_json.h"
#include "evr_paths.h"

/*  Sends SIGTERM to STATE/run/NAME.pid and waits up to wait_s, then
    SIGKILL.  1 when it had been running, 0 when not, -1 when its pid file
    is refused (said; the file is left). */
static int
s_stop(const char *state, const char *name, int wait_s, bool signalled, FILE *out)
{
    evr_err_t err;
    pid_t pid = evr_cli_up_pid(state, name, &err);
    if (pid < 0) {
        fprintf(stderr, "evrun-cli down: %s\n", err.msg);
        return -1;
    }
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
        fprintf(out, "%s stopped\n", name);
    }
    unlink(p);
    free(p);
    return pid != 0;
}

/*  Stops the podman service when up started it (STATE/run/podman.started).
    1 when it did, 0 when not, -1 when the mark is refused (said). */
static int
s_stop_podman(const char *state, FILE *out)
{
    char *mark = evr_asprintf("%s/run/podman.started", state);
    evr_err_t err;
    int fd = evr_paths_open(mark, O_RDONLY, &err), done = 0;
    if (fd < 0 && errno != ENOENT) {
        fprintf(stderr, "evrun-cli down: %s\n", err.msg);
        done = -1;
    }
    else if (fd >= 0) {
        close(fd);
        char *bindir = evr_cli_up_bindir();
        const char *helper = getenv("EVRUN_PODMAN_SERVICE");
        char *h = helper && *helper ? evr_strdup(helper)
                                    : evr_asprintf("%s/../../tools/podman-service", bindir);
        char *cmd = evr_asprintf("'%s' stop '%s/podman'%s", h, state,
                                 out == stdout ? "" : " 1>&2");
        if (system(cmd) == 0)
            fprintf(out, "podman service stopped\n");
        unlink(mark);
        free(cmd);
        free(h);
        free(bindir);
        done = 1;
    }
    free(mark);
    return done;
}

int
evr_cli_down(int argc, char **argv)
{
    static const struct option opts[] = { EVR_CLI_COMMON_OPTS, { NULL, 0, NULL, 0 } };
    evr_cli_t cli = { .prog = "evrun-cli down" };
    int c;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, "h", opts)) != -1) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        if (c == 'h') {
            printf("usage: evrun-cli down [options]\n\nStops what `evrun-cli up` started: the "
                   "gateway, the provisioner (its runners\nwaiting for a job too), the runners "
                   "(each finishes its running jobs, up to 30 s;\njobs still running then are "
                   "taken up at the next `up`), the broker, and the podman\nservice if up "
                   "started it.\nWith --json, stdout has one object at the end: state_dir, and stopped (the\n"
                   "names of what stopped); the rest is on stderr.\n\n%s\nexit status: 0 stopped (or nothing ran); 2 a state "
                   "directory or pid file\nrefused (a link, another user's, or writable by "
                   "group or others)\n", EVR_CLI_COMMON_HELP);
            return 0;
        }
        fprintf(stderr, "usage: evrun-cli down [options]\n");
        return 2;
    }
    if (optind != argc) {   /* down takes no operand: stop nothing on a typo */
        fprintf(stderr, "%s: unexpected argument \"%s\" (down stops all that up started; see "
                "--help)\n", cli.prog, argv[optind]);
        return 2;
    }
    int status = evr_cli_settings(&cli);
    if (status)
        return status;
    const char *state = evr_config_get(cli.cfg, "state_dir");
    evr_err_t err;
    if (evr_paths_state(state, EVR_PATHS_ALL, 0, false, &err)) {
        fprintf(stderr, "%s: %s\n", cli.prog, err.msg);
        evr_cli_done(&cli);
        return 2;
    }
    int stopped = 0, refused = 0, r;
    FILE *out = cli.json ? stderr : stdout;
    json_t *names = json_array();   /* --json: what stopped */
    static const char *const first[] = { "gateway", "provisioner" };
    for (int i = 0; i < 2; i++) {   /* the provisioner stops its runners waiting for a job */
        r = s_stop(state, first[i], 10, false, out);
        if (r > 0)
            json_array_append_new(names, json_string(first[i]));
        stopped += r > 0;
        refused += r < 0;
    }
    bool sent[65] = { false };
    for (unsigned i = 1; i <= 64; i++) {   /* every runner stops at once */
        char name[32];
        snprintf(name, sizeof name, "runner-%u", i);
        pid_t pid = evr_cli_up_pid(state, name, &err);
        if (pid > 0)
            sent[i - 1] = kill(pid, SIGTERM) == 0;
    }
    for (unsigned i = 1; i <= 65; i++) {
        char name[32] = "broker";
        if (i <= 64)
            snprintf(name, sizeof name, "runner-%u", i);
        r = s_stop(state, name, i <= 64 ? 40 : 10, i <= 64, out);
        if (r == 0 && sent[i - 1]) {   /* it had stopped already, at the SIGTERM */
            fprintf(out, "%s stopped\n", name);
            r = 1;
        }
        if (r > 0)
            json_array_append_new(names, json_string(name));
        stopped += r > 0;
        refused += r < 0;
    }
    r = s_stop_podman(state, out);
    if (r > 0)
        json_array_append_new(names, json_string("podman"));
    stopped += r > 0;
    refused += r < 0;
    if (!stopped && !refused)
        fprintf(out, "nothing was running under %s\n", state);
    if (!refused) {     /* the next up starts from the defaults */
        char *p = evr_asprintf("%s/run/up.settings", state);
        unlink(p);
        free(p);
    }
    if (cli.json) {
        json_t *js = json_pack("{s:s, s:o}", "state_dir", state, "stopped", names);
        char *line = json_dumps(js, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", line);
        free(line);
        json_decref(js);
    }
    else
        json_decref(names);
    evr_cli_done(&cli);
    return refused ? 2 : 0;
}
