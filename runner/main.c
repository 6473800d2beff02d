/*  evrun-runner: executes pipelines in podman containers.

    Today: `--exec FILE`, one pipeline run to its end with no broker.
    main() only wires things: options, store, podman, engine, the loop,
    signals that set a flag.
*/
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_engine.h"
#include "evr_yaml.h"

static volatile sig_atomic_t s_interrupts;

static void
s_on_signal(int sig)
{
    (void) sig;
    s_interrupts++;
}

static void
s_help(FILE *out)
{
    fprintf(out,
            "usage: evrun-runner --exec FILE [-a NAME=VALUE]... [options]\n"
            "       evrun-runner --recover [options]\n"
            "\n"
            "Runs the pipeline in FILE to its end in podman containers, with no broker:\n"
            "validates it, prints each step's output live (prefixed with the step name)\n"
            "and a summary.  Every event goes to the event store in the state directory\n"
            "first; `evrun-replay STATE_DIR` shows the history afterwards.  A runner\n"
            "killed at any moment loses nothing: the jobs it left unfinished in its\n"
            "state directory are taken up again (containers re-attached, output\n"
            "continued without loss or repetition) by --recover, and by --exec before\n"
            "it runs FILE.\n"
            "\n"
            "  --exec FILE          the pipeline file to run\n"
            "  --recover            finish the unfinished jobs of the state directory, exit\n"
            "  -a, --arg NAME=VALUE give an arg of the pipeline (repeatable)\n"
            "  --state-dir DIR      event store and artifacts (default $EVRUN_STATE_DIR,\n"
            "                       else $XDG_STATE_HOME/evrun, else ~/.local/state/evrun)\n"
            "  --podman-url URL     podman's REST socket (default $EVRUN_PODMAN_URL, else\n"
            "                       the rootless user socket, or /run/podman/podman.sock as root)\n"
            "  --secrets-dir DIR    secrets as files DIR/NAME (the environment is read first)\n"
            "  --grace SECONDS      SIGTERM-to-SIGKILL grace when stopping a step (default 10)\n"
            "  --keep               keep containers and the workspace volume (debugging)\n"
            "  -q, --quiet          print only the summary\n"
            "  -h, --help           this text\n"
            "\n"
            "SIGINT cancels the job gracefully; a second SIGINT kills its steps at once.\n"
            "exit status: 0 the job (and every recovered job) succeeded; 1 one failed,\n"
            "was cancelled or timed out;\n"
            "2 bad input, or podman or the state directory unusable\n");
}

static char *
s_default_state_dir(void)
{
    const char *v = getenv("EVRUN_STATE_DIR");
    if (v && *v)
        return evr_strdup(v);
    v = getenv("XDG_STATE_HOME");
    if (v && *v)
        return evr_asprintf("%s/evrun", v);
    v = getenv("HOME");
    return evr_asprintf("%s/.local/state/evrun", v ? v : "/tmp");
}

static char *
s_default_podman_url(void)
{
    const char *v = getenv("EVRUN_PODMAN_URL");
    if (v && *v)
        return evr_strdup(v);
    if (geteuid() == 0)
        return evr_strdup("unix:///run/podman/podman.sock");
    v = getenv("XDG_RUNTIME_DIR");
    if (v && *v)
        return evr_asprintf("unix://%s/podman/podman.sock", v);
    return evr_asprintf("unix:///run/user/%u/podman/podman.sock", (unsigned) geteuid());
}

/*  Loads and checks the pipeline; prints errors; false when unusable. */
static bool
s_load(const char *file, const evr_strmap_t *given, evr_spec_t *spec, evr_strmap_t *args)
{
    evr_diag_t *diag = evr_diag_new(file);
    evr_rc_t rc = evr_yaml_load_file(spec, diag);
    if (rc == EVR_OK)
        rc = evr_spec_bind_args(spec, given, args, diag);
    for (size_t i = 0; i < evr_diag_count(diag) && i < EVR_DIAG_MAX; i++)
        fprintf(stderr, "%s\n", evr_diag_get(diag, i));
    evr_diag_destroy(&diag);
    return rc == EVR_OK;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "exec", required_argument, NULL, 'x' }, { "arg", required_argument, NULL, 'a' },
        { "recover", no_argument, NULL, 'r' },
        { "state-dir", required_argument, NULL, 's' },
        { "podman-url", required_argument, NULL, 'p' },
        { "secrets-dir", required_argument, NULL, 'S' },
        { "grace", required_argument, NULL, 'g' }, { "keep", no_argument, NULL, 'k' },
        { "quiet", no_argument, NULL, 'q' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *file = NULL, *secrets_dir = NULL;
    bool recover = false;
    char *state_dir = NULL, *url = NULL;
    evr_strmap_t given = { 0 };
    evr_engine_opts_t eo = { .print = true };
    int c, status = 0;
    while ((c = getopt_long(argc, argv, "a:qh", opts, NULL)) != -1 && status == 0) {
        switch (c) {
        case 'x': file = optarg; break;
        case 'r': recover = true; break;
        case 'a':
            if (!evr_spec_parse_arg(optarg, &given)) {
                fprintf(stderr, "evrun-runner: -a %s: expected NAME=VALUE\n", optarg);
                status = 2;
            }
            break;
        case 's': free(state_dir); state_dir = evr_strdup(optarg); break;
        case 'p': free(url); url = evr_strdup(optarg); break;
        case 'S': secrets_dir = optarg; break;
        case 'g': eo.grace_s = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
        case 'k': eo.keep = true; break;
        case 'q': eo.print = false; break;
        case 'h': s_help(stdout); return 0;
        default: status = 2; break;
        }
    }
    if (status == 0 && ((!file && !recover) || (file && recover) || optind != argc)) {
        fprintf(stderr, "evrun-runner: %s\n",
                optind != argc ? "unexpected arguments"
                : file ? "--exec and --recover do not go together"
                       : "--exec FILE or --recover is required (the broker mode arrives with "
                         "evrun-broker)");
        status = 2;
    }
    if (status) {
        s_help(stderr);
        evr_strmap_free(&given);
        free(state_dir);
        free(url);
        return status;
    }
    if (!state_dir)
        state_dir = s_default_state_dir();
    if (!url)
        url = s_default_podman_url();

    evr_spec_t spec = { 0 };
    evr_strmap_t args = { 0 };
    evr_store_t *store = NULL;
    evr_podman_t *pm = NULL;
    evr_engine_t *eng = NULL;
    char *artifacts = evr_asprintf("%s/artifacts", state_dir);
    evr_err_t err;
    char job[EVR_ULID_LEN + 1] = "";
    if (file && !s_load(file, &given, &spec, &args)) {
        status = 2;
        goto out;
    }
    if (!(pm = evr_podman_new(url, &err)) || evr_podman_ping(pm, &err)) {
        fprintf(stderr, "evrun-runner: %s\n(start a service with `tools/podman-service start DIR`"
                        " and set EVRUN_PODMAN_URL, or pass --podman-url)\n", err.msg);
        status = 2;
        goto out;
    }
    if (evr_store_open(state_dir, EVR_STORE_SYNC, &store, &err)) {
        fprintf(stderr, "evrun-runner: %s\n", err.msg);
        status = 2;
        goto out;
    }
    eo.secrets_dir = secrets_dir;
    eo.artifacts_dir = artifacts;
    eo.runner_id = "exec";
    eng = evr_engine_new(&eo, store, pm);
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    uint32_t recovered = 0;
    if (evr_engine_recover(eng, &recovered, &err)) {
        fprintf(stderr, "evrun-runner: recovery: %s\n", err.msg);
        status = 2;
        goto out;
    }
    if (recover && !recovered && eo.print)
        printf("evrun-runner: no unfinished jobs in %s\n", state_dir);
    if (file) {
        evr_ulid_new(job);
        if (eo.print)
            printf("evrun-runner: job %s, pipeline %s, %u step%s, podman %s\n", job,
                   spec.pipeline, spec.steps.n, spec.steps.n == 1 ? "" : "s", url);
        if (evr_engine_submit(eng, job, &spec, &args, &err)) {
            fprintf(stderr, "evrun-runner: %s\n", err.msg);
            status = 2;
            goto out;
        }
    }
    int seen = 0;
    while (evr_engine_turn(eng, 100) > 0) {
        if (s_interrupts != seen) {
            seen = s_interrupts;
            evr_engine_cancel_all(eng, seen == 1 ? "interrupted (SIGINT)" : "interrupted twice",
                                  seen > 1);
        }
    }
    const char *msg;
    if (evr_engine_failure(eng, &msg)) {
        fprintf(stderr, "evrun-runner: the event store failed: %s\n", msg);
        status = 2;
        goto out;
    }
    if (file) {
        evr_engine_summary(eng, job, stdout);
        printf("history: evrun-replay %s --job %s\n", state_dir, job);
    }
    status = evr_engine_all_succeeded(eng) ? 0 : 1;
out:
    evr_engine_destroy(&eng);
    evr_store_destroy(&store);
    evr_podman_destroy(&pm);
    evr_rec_free(&evr_spec_type, &spec);
    evr_strmap_free(&args);
    evr_strmap_free(&given);
    free(artifacts);
    free(state_dir);
    free(url);
    return status;
}
