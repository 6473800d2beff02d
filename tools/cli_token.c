/*  cli_token.c: evrun-cli token: a bearer token for evrun-gateway's HTTP
    API, signed with STATE/gateway/jwt.secret (evr_gw_auth.h); evrun-cli
    hook-token NAME: the token of a pipeline's POST /hooks/NAME. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_bus.h"
#include "evr_gw_auth.h"
#include "evr_json.h"

/*  --json: one object of one or two string members on stdout. */
static void
s_json_line(const char *k1, const char *v1, const char *k2, const char *v2)
{
    json_t *js = json_object();
    json_object_set_new(js, k1, json_string(v1));
    if (k2)
        json_object_set_new(js, k2, json_string(v2));
    char *line = json_dumps(js, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s\n", line);
    free(line);
    json_decref(js);
}

static void
s_token_help(FILE *out)
{
    fprintf(out,
            "usage: evrun-cli token [--read-only] [--ttl DURATION] [--sub NAME] [options]\n"
            "\n"
            "Prints a bearer token for evrun-gateway's HTTP API, alone on stdout:\n"
            "  curl -H \"Authorization: Bearer $(evrun-cli token)\" http://127.0.0.1:7780/api/v1/jobs\n"
            "It is a JWT (HS256) signed with STATE/gateway/jwt.secret (made when missing, 0600;\n"
            "the gateway must use the same state directory), with the claims sub, iat, exp and\n"
            "scope.  Delete the secret and restart the gateway to revoke every token.\n"
            "With --json: {\"token\":TOKEN}.\n"
            "\n"
            "  --read-only          scope read: GET routes only (else write: also submit,\n"
            "                       cancel, pause, resume)\n"
            "  --ttl DURATION       valid for DURATION: 90s, 2m, 1h, 7d (default 1h, at most\n"
            "                       366d)\n"
            "  --sub NAME           the sub claim (default $USER, else evrun)\n"
            EVR_CLI_COMMON_HELP
            "\n"
            "exit status: 0 printed; 2 usage, or the secret cannot be read or made\n");
}

static void
s_token_help_cb(FILE *out, const void *arg)
{
    (void) arg;
    s_token_help(out);
}

int
evr_cli_token(int argc, char **argv)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "read-only", no_argument, NULL, 'r' },
        { "ttl", required_argument, NULL, 't' }, { "sub", required_argument, NULL, 's' },
        { NULL, 0, NULL, 0 },
    };
    evr_cli_t cli = { .prog = "evrun-cli token" };
    bool ro = false;
    uint64_t ttl = 3600;
    const char *sub = getenv("USER");
    int c, status = 0;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, "h", opts)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        switch (c) {
        case 'r': ro = true; break;
        case 't':
            if (!evr_gw_ttl_parse(optarg, &ttl)) {
                fprintf(stderr, "%s: --ttl %s: expected a duration like 90s, 2m, 1h or 7d "
                        "(at most 366d)\n", cli.prog, optarg);
                status = 2;
            }
            break;
        case 's':
            sub = optarg;
            if (!*sub) {   /* was the default, in silence */
                fprintf(stderr, "%s: --sub \"\": expected a name (default $USER, else "
                        "evrun)\n", cli.prog);
                status = 2;
            }
            break;
        case 'h': s_token_help(stdout); return 0;
        default: status = 2; break;
        }
    }
    if (!status && optind != argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\"\n", cli.prog, argv[optind]);
        status = 2;
    }
    if (status) {
        evr_cli_brief(cli.prog, s_token_help_cb, NULL);
        return status;
    }
    if ((status = evr_cli_settings(&cli)))
        return status;
    evr_gw_secret_t secret;
    evr_err_t err;
    char *tok = NULL;
    if (evr_gw_secret_load(evr_config_get(cli.cfg, "state_dir"), true, &secret, &err)
        || !(tok = evr_gw_token_issue(&secret, sub && *sub ? sub : "evrun",
                                      ro ? EVR_GW_SCOPE_READ : EVR_GW_SCOPE_WRITE, ttl,
                                      evr_now_ns() / 1000000000ull, &err))) {
        fprintf(stderr, "%s: %s\n", cli.prog, err.msg);
        status = 2;
    }
    else if (cli.json)
        s_json_line("token", tok, NULL, NULL);
    else
        printf("%s\n", tok);
    free(tok);
    evr_cli_done(&cli);
    return status;
}

static void
s_hook_help(FILE *out)
{
    fprintf(out,
            "usage: evrun-cli hook-token NAME [--new] [options]\n"
            "\n"
            "Prints the hook token of pipeline NAME, alone on stdout: the token\n"
            "evrun-gateway's POST /hooks/NAME wants (Authorization: Bearer TOKEN, or\n"
            "X-Evrun-Token: TOKEN), kept in STATE/gateway/hooks/NAME.token (0600; made when\n"
            "missing).  Delete the file to revoke it; --new makes another in its place.\n"
            "The broker is not asked: NAME need not be registered yet (a hook set up\n"
            "first), and POST /hooks/NAME answers 404 until a pipeline NAME is registered;\n"
            "check the name against evrun-cli pipelines.  NAME github is refused:\n"
            "POST /hooks/github is GitHub's (a pipeline named github uses on: {github: ...}).\n"
            "With --json: {\"pipeline\":NAME,\"token\":TOKEN}.\n"
            "\n"
            "  --new                a new token (the old one stops working at once)\n"
            EVR_CLI_COMMON_HELP
            "\n"
            "exit status: 0 printed; 2 usage (NAME github too), or the token cannot be read\n"
            "or made\n");
}

static void
s_hook_help_cb(FILE *out, const void *arg)
{
    (void) arg;
    s_hook_help(out);
}

int
evr_cli_hook_token(int argc, char **argv)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "new", no_argument, NULL, 'n' }, { NULL, 0, NULL, 0 },
    };
    evr_cli_t cli = { .prog = "evrun-cli hook-token" };
    bool renew = false;
    int c, status = 0;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, "h", opts)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        if (c == 'n')
            renew = true;
        else if (c == 'h') {
            s_hook_help(stdout);
            return 0;
        }
        else
            status = 2;
    }
    if (!status && (optind != argc - 1 || !evr_spec_name_ok(argv[optind]))) {
        fprintf(stderr, "%s: expected one pipeline NAME (letters, digits, _ . -)\n", cli.prog);
        status = 2;
    }
    if (status) {
        evr_cli_brief(cli.prog, s_hook_help_cb, NULL);
        return status;
    }
    if (!strcmp(argv[optind], "github")) {
        /* the gateway's /hooks/github is GitHub's: a token for it could never be used */
        fprintf(stderr,
                "%s: a pipeline named github cannot have a hook of its own: POST /hooks/github "
                "takes GitHub's webhooks (signed with webhook_secret_file); give the pipeline "
                "on: {github: ...} to start it from GitHub, or another name for a hook of its "
                "own\n",
                cli.prog);
        return 2;
    }
    if ((status = evr_cli_settings(&cli)))
        return status;
    char *path = evr_asprintf("%s/gateway/hooks/%s.token", evr_config_get(cli.cfg, "state_dir"),
                              argv[optind]);
    evr_gw_secret_t tok;
    evr_err_t err;
    if (renew && unlink(path) && errno != ENOENT) {
        fprintf(stderr, "%s: %s: %s\n", cli.prog, path, strerror(errno));
        status = 2;
    }
    else if (evr_gw_secret_file(path, true, &tok, &err)) {
        fprintf(stderr, "%s: %s\n", cli.prog, err.msg);
        status = 2;
    }
    else if (cli.json)
        s_json_line("pipeline", argv[optind], "token", tok.key);
    else
        printf("%s\n", tok.key);
    free(path);
    evr_cli_done(&cli);
    return status;
}
