/*  evrun-gateway: the HTTP gateway (issue 16).  main() only reads the
    settings, loads the token secret, starts serving and waits for
    SIGINT or SIGTERM; evr_gw_*.c do the work. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "evr_bus.h"
#include "evr_gw.h"
#include "evr_getopt.h"
#include "evr_log.h"

static const evr_config_key_t s_gw_keys[] = {
    { "http_listen", "127.0.0.1:7780", "the gateway's HTTP address (HOST:PORT; port 0: any)" },
    { "tls_cert", NULL, "PEM certificate: serve HTTPS (with tls_key)" },
    { "tls_key", NULL, "PEM private key of tls_cert" },
    { "log_level", "info", "error, warn, info or debug" },
    { "metrics_token", "none", "none: GET /metrics is open; required: it needs a token too" },
    { "webhook_secret_file", NULL, "the secret GitHub signs webhooks with (default "
      "STATE/gateway/webhook.secret, made 0600 when missing)" },
    { "ui_dir", NULL, "the web UI's files (default BIN/../share/evrun/ui: where they are "
      "installed; in a build tree a link to gateway/ui)" },
    { "http_allowed_hosts", NULL, "the Host names answered besides localhost and IP "
      "addresses (comma-separated; .NAME: NAME and names under it; *: any); unset: those "
      "alone when listening on a loopback address (DNS rebinding), any otherwise" },
    { "http_max_connections", "512", "HTTP connections at once (a thread each)" },
    { "http_max_per_ip", "256", "HTTP connections at once from one address" },
    { "http_idle_timeout", "30s", "close a connection with nothing sent or received this "
      "long (a client that stops reading a live log)" },
    { "http_request_timeout", "30s", "a request's headers and body must all come within "
      "this (slowloris)" },
};

static void
s_help(FILE *out)
{
    fprintf(out,
            "usage: evrun-gateway [options]\n"
            "\n"
            "Serves evrun's HTTP API (JSON under /api/v1, described in schema/openapi.yaml)\n"
            "as one more client of the broker.  Every request needs a bearer token made by\n"
            "`evrun-cli token` (signed with STATE/gateway/jwt.secret, made when missing).\n"
            "GET /metrics (Prometheus text) needs none unless the setting metrics_token is\n"
            "\"required\".  POST /hooks/github checks GitHub's signature with the secret in\n"
            "webhook_secret_file (default STATE/gateway/webhook.secret, made when missing);\n"
            "POST /hooks/NAME the pipeline's own token (evrun-cli hook-token NAME).\n"
            "The web UI is at / (its files, from ui_dir, need no token; it asks for one).\n"
            "\n"
            "The broker may start before or after the gateway, and stop and come back:\n"
            "while none answers, requests get 503 with Retry-After and what to start\n"
            "(evrun-cli up, or evrun-broker), and the gateway tries again by itself (after\n"
            "0.25 s, doubling to 4 s), choosing the endpoint again each time as --broker\n"
            "says; it logs \"the broker answers at EP\" once one does.  A live log\n"
            "the broker left ends with `event: error` saying so (resume it with\n"
            "Last-Event-ID).\n"
            "\n"
            "Limits (settings, in evrun.yml or EVRUN_<KEY>; --print-config shows them):\n"
            "  http_max_connections (512) connections at once, a thread each;\n"
            "  http_max_per_ip (256) of them from one address; http_idle_timeout (30s):\n"
            "  a connection with nothing sent or received this long is closed (a client\n"
            "  that stops reading a live log; it resumes with Last-Event-ID);\n"
            "  http_request_timeout (30s): a request's headers and body must all come\n"
            "  within this.  A body is at most 4 MiB (413 past it), a request at most\n"
            "  100 header fields (431), 200 query parameters (400) and about 32 KiB of\n"
            "  request line and headers.\n"
            "Each answer is a log line (info): METHOD PATH -> STATUS, with why for a\n"
            "request refused before routing, cut by http_request_timeout (408) or a\n"
            "connection past http_max_per_ip (503, closed without an answer).\n"
            "\n"
            "  --listen HOST:PORT   HTTP address (setting http_listen, default\n"
            "                       127.0.0.1:7780; port 0 picks a free one)\n"
            "  --tls-cert FILE      serve HTTPS with this PEM certificate (tls_cert)...\n"
            "  --tls-key FILE       ...and this PEM key (tls_key)\n"
            "  --ui-dir DIR         the web UI's files (ui_dir, default: share/evrun/ui\n"
            "                       beside the binary's directory)\n"
            "  --allowed-hosts LIST Host names answered besides localhost and IP addresses\n"
            "                       (http_allowed_hosts: comma-separated, .NAME for NAME and\n"
            "                       names under it, * any; unset: none more on a loopback\n"
            "                       address, against DNS rebinding; any on another)\n"
            "  --state-dir DIR      state directory (default $EVRUN_STATE_DIR, else\n"
            "                       $XDG_STATE_HOME/evrun, else ~/.local/state/evrun)\n"
            "  --broker EP          the broker's client endpoint (default: the local broker of\n"
            "                       `evrun-cli up` when it runs, else tcp://127.0.0.1:7700;\n"
            "                       chosen at each attempt to connect)\n"
            "  --events-endpoint EP the broker's event stream (default: beside --broker)\n"
            "  --config FILE        settings file (default $EVRUN_CONFIG, else\n"
            "                       $XDG_CONFIG_HOME/evrun/evrun.yml, XDG_CONFIG_HOME\n"
            "                       unset: ~/.config/evrun/evrun.yml, when it exists)\n"
            "  --timeout-ms N       longest wait for the broker's answer (default 10000);\n"
            "                       past it a request is answered 503\n"
            "  --curve-cert FILE    CURVE key pair for a tcp:// broker (client_cert)\n"
            "  --broker-key KEY     the broker's public key (broker_key)\n"
            "  --print-config       print the effective settings and their sources, exit\n"
            "  -h, --help           this text\n"
            "  --version            print the version, exit\n"
            "\n"
            "It prints \"evrun-gateway: listening on URL\" once serving, then \"web UI at\n"
            "URL\" (or a warning when ui_dir is no directory); stops on SIGINT or SIGTERM.\n"
            "exit status: 0 stopped by a signal; 2 bad settings, or it cannot listen or\n"
            "read its secret\n");
}

static void
s_help_cb(FILE *out, const void *arg)
{
    (void) arg;
    s_help(out);
}

/*  The settings table: the client's keys and the gateway's own. */
static evr_config_key_t *
s_keys(size_t *n)
{
    *n = evr_client_nkeys + EVR_ARRAY_LEN(s_gw_keys);
    evr_config_key_t *k = evr_calloc(*n, sizeof *k);
    memcpy(k, evr_client_keys, evr_client_nkeys * sizeof *k);
    memcpy(k + evr_client_nkeys, s_gw_keys, sizeof s_gw_keys);
    return k;
}

/*  The command line and the settings' layers into gw->cfg: 0 to go on;
    -1 after --help; 2 on bad usage (said); 3 when the settings have
    errors (recorded in gw->cfg, for main to say with the others:
    evr_config_report).  *print: --print-config, for main to print once
    it has checked the rest too (a bad limit was printed as good). */
static int
s_settings(int argc, char **argv, evr_gw_t *gw, bool *print_out)
{
    evr_config_t *cfg = gw->cfg;
    static const struct option opts[] = {
        { "state-dir", required_argument, NULL, 1000 }, { "broker", required_argument, NULL, 1001 },
        { "events-endpoint", required_argument, NULL, 1002 },
        { "config", required_argument, NULL, 1003 }, { "timeout-ms", required_argument, NULL, 1004 },
        { "curve-cert", required_argument, NULL, 1007 },
        { "broker-key", required_argument, NULL, 1008 }, { "listen", required_argument, NULL, 1010 },
        { "tls-cert", required_argument, NULL, 1011 }, { "tls-key", required_argument, NULL, 1012 },
        { "ui-dir", required_argument, NULL, 1013 },
        { "allowed-hosts", required_argument, NULL, 1014 },
        { "print-config", no_argument, NULL, 1006 }, { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 },
    };
    static const char *const keys[] = {
        [0] = "state_dir", [1] = "client_endpoint", [2] = "events_endpoint",
        [4] = "timeout_ms", [7] = "client_cert", [8] = "broker_key", [10] = "http_listen",
        [11] = "tls_cert", [12] = "tls_key", [13] = "ui_dir",
        [14] = "http_allowed_hosts",
    };
    const char *flags[32], *file = NULL;
    size_t nf = 0;
    bool print = false;
    int c;
    while ((c = evr_getopt("evrun-gateway", argc, argv, "h", opts)) != -1) {
        if (c == 'h') {
            s_help(stdout);
            exit(0);
        }
        if (c == 'V') {
            printf("evrun-gateway %s\n", EVR_VERSION);
            exit(0);
        }
        if (c == 1003)
            file = optarg;
        else if (c == 1006)
            print = true;
        else if (c >= 1000 && c <= 1014 && keys[c - 1000])
            nf = evr_config_flag(flags, nf, 16, keys[c - 1000], optarg);
        else {
            evr_usage_brief("evrun-gateway", s_help_cb, NULL);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "evrun-gateway: unexpected argument \"%s\"\n", argv[optind]);
        evr_usage_brief("evrun-gateway", s_help_cb, NULL);
        return 2;
    }
    evr_err_t err;
    uint64_t t;
    /* every error of the settings at once: the file's, then each value's
       (the rest of them checked by main) */
    bool bad = evr_config_layer(cfg, file, flags, nf, &err) != EVR_OK;
    bad = evr_client_config_timeout(cfg, &t, &err) != EVR_OK || bad;
    static const char *const eps[] = { "client_endpoint", "events_endpoint" };
    bad = evr_bus_check_endpoints(cfg, eps, 2, &err) != EVR_OK || bad;
    if (bad)
        return 3;
    evr_gw_bus_cfg_make(gw, cfg);  /* the endpoints chosen again at each attempt */
    evr_client_endpoints(cfg);      /* the choice now, for --print-config */
    char *hook = evr_asprintf("%s/gateway/webhook.secret", evr_config_get(cfg, "state_dir"));
    evr_config_default(cfg, "webhook_secret_file", hook);
    free(hook);
    char *ui = evr_gw_ui_default_dir();
    evr_config_default(cfg, "ui_dir", ui);
    free(ui);
    *print_out = print;
    return 0;
}

int
main(int argc, char **argv)
{
    size_t nkeys;
    evr_config_key_t *keys = s_keys(&nkeys);
    evr_gw_t gw = { .cfg = evr_config_new(keys, nkeys), .body_max = EVR_MSG_MAX_BYTES };
    evr_err_t err;
    bool print = false;
    int status = s_settings(argc, argv, &gw, &print);
    static const char *const levels[] = { "error", "warn", "info", "debug" };
    size_t level = 2;
    static const char *const mt[] = { "none", "required" };
    size_t mtok = 0;
    if (status == 0 || status == 3) {   /* 3: the settings' first errors, said below */
        bool bad = status == 3;
        bad = evr_config_choice(gw.cfg, "log_level", levels, 4, &level, &err) != EVR_OK || bad;
        bad = evr_config_choice(gw.cfg, "metrics_token", mt, 2, &mtok, &err) != EVR_OK || bad;
        bad = evr_gw_limits_load(&gw, &err) != EVR_OK || bad;
        bad = evr_gw_listen_check(gw.cfg, &err) != EVR_OK || bad;
        bad = evr_gw_hosts_check(gw.cfg, &err) != EVR_OK || bad;
        status = 0;
        if (bad) {
            if (!evr_config_report(gw.cfg, "evrun-gateway", stderr))
                fprintf(stderr, "evrun-gateway: %s\n", err.msg);
            status = 2;
        }
    }
    if (!status && print) {
        evr_config_print(gw.cfg, stdout);
        status = -1;
    }
    gw.metrics_auth = mtok == 1;
    evr_log_set_level((evr_log_level_t) level);
    if (!status && evr_gw_secret_load(evr_config_get(gw.cfg, "state_dir"), true, &gw.secret,
                                      &err)) {
        fprintf(stderr, "evrun-gateway: %s\n", err.msg);
        status = 2;
    }
    if (!status && evr_gw_secret_file(evr_config_get(gw.cfg, "webhook_secret_file"), true,
                                      &gw.hook_secret, &err)) {
        fprintf(stderr, "evrun-gateway: webhook_secret_file: %s\n", err.msg);
        status = 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);     /* threads inherit: one waits for them */
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&gw.mu, NULL);
    if (!status && evr_gw_start(&gw, &err)) {
        fprintf(stderr, "evrun-gateway: %s\n", err.msg);
        status = 2;
    }
    if (!status) {
        const char *l = evr_config_get(gw.cfg, "http_listen");
        fprintf(stderr, "evrun-gateway: listening on %s://%.*s:%u" EVR_GW_PREFIX
                " (broker %s)\n", gw.tls_cert ? "https" : "http",
                (int) (strrchr(l, ':') - l), l, gw.port,
                evr_config_get(gw.cfg, "client_endpoint"));
        const char *ui = evr_config_get(gw.cfg, "ui_dir");
        struct stat st;
        if (!stat(ui, &st) && S_ISDIR(st.st_mode))
            fprintf(stderr, "evrun-gateway: web UI at %s://%.*s:%u/ (files from %s)\n",
                    gw.tls_cert ? "https" : "http", (int) (strrchr(l, ':') - l), l, gw.port, ui);
        else
            fprintf(stderr, "evrun-gateway: warning: no web UI: ui_dir = %s is no directory "
                    "(set ui_dir or --ui-dir to gateway/ui of the source tree)\n", ui);
        int sig = 0;
        sigwait(&set, &sig);
        evr_log_info("gateway", "signal %d: stopping", sig);
        evr_gw_stop(&gw);
    }
    evr_client_destroy(&gw.client);
    pthread_mutex_destroy(&gw.mu);
    evr_config_destroy(&gw.bus_cfg[0]);
    evr_config_destroy(&gw.bus_cfg[1]);
    evr_config_destroy(&gw.cfg);
    free(keys);
    return status < 0 ? 0 : status;
}
