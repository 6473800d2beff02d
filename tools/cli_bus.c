/*  cli_bus.c: the common part of the bus commands; see cli_bus.h. */
#include "cli_bus.h"

#include "evr_getopt.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_bus.h"
#include "evr_json.h"
#include "evr_spec.h"

void
evr_cli_brief(const char *prog, evr_cli_help_fn *help, const void *arg)
{
    evr_usage_brief(prog, help, arg);
}

int
evr_cli_getopt(const char *prog, int argc, char **argv, const char *shortopts,
               const struct option *opts)
{
    return evr_getopt(prog, argc, argv, shortopts, opts);
}

bool
evr_cli_common(evr_cli_t *cli, int c, const char *arg)
{
    const char *key = NULL;
    switch (c) {
    case 1000: key = "state_dir"; break;
    case 1001: key = "client_endpoint"; break;
    case 1002: key = "events_endpoint"; break;
    case 1003: cli->file = arg; return true;
    case 1004: key = "timeout_ms"; break;
    case 1005: cli->json = true; return true;
    case 1006: cli->print_config = true; return true;
    case 1007: key = "client_cert"; break;
    case 1008: key = "broker_key"; break;
    default: return false;
    }
    cli->nf = evr_config_flag(cli->flags, cli->nf, 8, key, arg);
    return true;
}

bool
evr_cli_uint_arg(const char *prog, const char *opt, const char *arg, unsigned long min,
                 unsigned long max, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] < '0' || arg[0] > '9' || v < min || v > max) {
        fprintf(stderr, "%s: %s \"%s\": expected a whole number from %lu to %lu\n", prog, opt,
                arg, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool
evr_cli_name_arg(const char *prog, const char *opt, const char *what, const char *arg)
{
    if (evr_spec_name_ok(arg))
        return true;
    fprintf(stderr, "%s: %s%s\"%s\": expected %s: letters, digits, _ . - (at most %d bytes)\n",
            prog, opt, *opt ? " " : "", arg, what, EVR_SPEC_MAX_NAME);
    return false;
}

bool
evr_cli_pipeline_arg(const char *prog, const char *opt, const char *arg)
{
    return evr_cli_name_arg(prog, opt, "a pipeline name", arg);
}

bool
evr_cli_step_arg(const char *prog, const char *arg)
{
    if (evr_spec_step_name_ok(arg))
        return true;
    fprintf(stderr, "%s: --step \"%s\": expected a step name: letters, digits, _ . - (at "
            "most %d bytes), or one combination of a matrix step, NAME[K=v,...]\n", prog, arg,
            EVR_SPEC_MAX_NAME);
    return false;
}

int
evr_cli_job_opt(const char *prog, int c, const char *arg, evr_msg_t *req)
{
    if (c == 'a') {
        int r = evr_spec_add_arg(arg, &req->args);
        if (r < 0)
            fprintf(stderr, "%s: -a %s: expected NAME=VALUE\n", prog, arg);
        else if (r)     /* else the second would silently replace the first */
            fprintf(stderr, "%s: -a \"%.*s\": given twice (each arg once)\n", prog,
                    (int) strcspn(arg, "="), arg);
        if (r)
            return 2;
    }
    if (c == 'l') {
        if (!evr_cli_name_arg(prog, "--label", "a label", arg))
            return 2;
        for (uint32_t i = 0; i < req->labels.n; i++)
            if (!strcmp(req->labels.v[i], arg)) {
                fprintf(stderr, "%s: --label \"%s\": given twice (each label once)\n", prog,
                        arg);
                return 2;
            }
        evr_strlist_push(&req->labels, arg);
    }
    return c == 'a' || c == 'l' ? 0 : -1;
}

int
evr_cli_settings(evr_cli_t *cli)
{
    evr_err_t err;
    uint64_t t;
    cli->cfg = evr_config_new(evr_client_keys, evr_client_nkeys);
    /* every error of the settings at once: the file's, then the timeout's */
    bool bad = evr_config_layer(cli->cfg, cli->file, cli->flags, cli->nf, &err) != EVR_OK;
    bad = evr_client_config_timeout(cli->cfg, &t, &err) != EVR_OK || bad;
    static const char *const eps[] = { "client_endpoint", "events_endpoint" };
    bad = evr_bus_check_endpoints(cli->cfg, eps, 2, &err) != EVR_OK || bad;
    if (bad) {
        if (!evr_config_report(cli->cfg, cli->prog, stderr))
            fprintf(stderr, "%s: %s\n", cli->prog, err.msg);
        evr_config_destroy(&cli->cfg);   /* token, down, up returned with it taken */
        return 2;
    }
    evr_client_endpoints(cli->cfg);
    if (cli->print_config) {
        evr_config_print(cli->cfg, stdout);
        evr_cli_done(cli);
        exit(0);
    }
    return 0;
}

int
evr_cli_connect(evr_cli_t *cli)
{
    evr_err_t err;
    int rc = cli->cfg ? 0 : evr_cli_settings(cli);
    if (rc)
        return rc;
    if (evr_client_new(cli->cfg, &cli->client, &err)) {
        fprintf(stderr, "%s: %s\n", cli->prog, err.msg);
        return 2;
    }
    return 0;
}

char *
evr_cli_job_operand(const evr_cli_t *cli, int argc, char **argv, int optind_)
{
    if (optind_ != argc - 1) {
        fprintf(stderr, "%s: expected one JOB_ID (see --help)\n", cli->prog);
        return NULL;
    }
    return evr_client_job_arg(cli->prog, argv[optind_]);
}

void
evr_cli_on_stop(void (*fn)(int))
{
    struct sigaction sa = { .sa_handler = fn };     /* sa_flags 0: no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void
evr_cli_done(evr_cli_t *cli)
{
    zsock_destroy(&cli->sub);
    evr_client_destroy(&cli->client);
    evr_config_destroy(&cli->cfg);
}

int
evr_cli_refused(const evr_cli_t *cli, const evr_msg_t *reply)
{
    if (reply->type == EVR_MSG_ERROR)
        fprintf(stderr, "%s: %s: %s\n", cli->prog, reply->code, reply->message);
    else
        fprintf(stderr, "%s: unexpected answer %s\n", cli->prog, evr_msgtype_name(reply->type));
    return 1;
}

int
evr_cli_call(const evr_cli_t *cli, const evr_msg_t *req, evr_msgtype_t want, evr_msg_t *rep)
{
    evr_err_t err;
    if (evr_client_call(cli->client, req, rep, &err)) {
        fprintf(stderr, "%s: %s\n", cli->prog, err.msg);
        return 2;
    }
    return rep->type == want ? 0 : evr_cli_refused(cli, rep);
}

void
evr_cli_json(const evr_msg_t *m)
{
    json_t *js = evr_json_from_rec(evr_msgtype_fields(m->type), m);
    /* credit 0 is absent on the wire; a connected runner always shows its
       credit (README), a lost or stopped one's is no count of free slots */
    if (m->type == EVR_MSG_RUNNER && !evr_msg_state_away(m->state)
        && !json_object_get(js, "credit"))
        json_object_set_new(js, "credit", json_integer(0));
    char *s = json_dumps(js, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(js);
}
