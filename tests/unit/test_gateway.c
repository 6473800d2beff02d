/*  test_gateway: evrun-gateway without a broker: its tokens (good,
    expired, wrongly signed, alg none, malformed, read scope), its secret
    file, its routes against schema/openapi.yaml, the parsing of submit
    bodies (YAML, JSON, bad JSON, bad UTF-8), and a real server on a
    loopback port for what it answers before asking the broker (401,
    403, 404, 405, 413) and when the broker does not answer (503). */
#define _GNU_SOURCE     /* vasprintf */
#include <arpa/inet.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "evr_gw.h"
#include "evr_yaml.h"
#include "evr_test.h"

static evr_gw_secret_t s_secret = { "0123456789abcdef0123456789abcdef", 32 };
static const uint64_t s_now = 1800000000;

/* ---------------------------------------------------------------- tokens */

/*  A token of header and payload (JSON texts) signed with key (NULL: no
    signature, as alg none has). */
static char *
s_forge(const char *header, const char *payload, const char *key)
{
    char h[512], p[512], sig[128] = "";
    sodium_bin2base64(h, sizeof h, (const uint8_t *) header, strlen(header),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_bin2base64(p, sizeof p, (const uint8_t *) payload, strlen(payload),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *signed_ = evr_asprintf("%s.%s", h, p);
    if (key) {
        uint8_t mac[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, (const uint8_t *) key, strlen(key));
        crypto_auth_hmacsha256_update(&st, (const uint8_t *) signed_, strlen(signed_));
        crypto_auth_hmacsha256_final(&st, mac);
        sodium_bin2base64(sig, sizeof sig, mac, sizeof mac,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    }
    char *tok = evr_asprintf("%s.%s", signed_, sig);
    free(signed_);
    return tok;
}

static evr_rc_t
s_check(const char *tok, evr_gw_scope_t *scope, evr_err_t *err)
{
    return evr_gw_token_check(&s_secret, tok, s_now, scope, err);
}

static void
test_tokens(void)
{
    evr_err_t err;
    evr_gw_scope_t scope;
    char *w = evr_gw_token_issue(&s_secret, "me", EVR_GW_SCOPE_WRITE, 60, s_now, &err);
    char *r = evr_gw_token_issue(&s_secret, "me", EVR_GW_SCOPE_READ, 60, s_now, &err);
    CHECK(w && r);
    CHECK(s_check(w, &scope, &err) == EVR_OK && scope == EVR_GW_SCOPE_WRITE);
    CHECK(s_check(r, &scope, &err) == EVR_OK && scope == EVR_GW_SCOPE_READ);
    /* expired: 60 s later */
    CHECK(evr_gw_token_check(&s_secret, w, s_now + 60, &scope, &err) == EVR_ERR_STATE);
    CHECK(strstr(err.msg, "expired") != NULL);
    CHECK(scope == EVR_GW_SCOPE_NONE);
    /* another secret */
    evr_gw_secret_t other = { "another secret", 14 };
    CHECK(evr_gw_token_check(&other, w, s_now, &scope, &err) == EVR_ERR_STATE);
    CHECK(strstr(err.msg, "signature") != NULL);
    /* a payload changed under the same signature */
    char *dot = strchr(w, '.');
    char *tampered = evr_strdup(w);
    tampered[dot - w + 3] = tampered[dot - w + 3] == 'A' ? 'B' : 'A';
    CHECK(s_check(tampered, &scope, &err) == EVR_ERR_STATE);
    free(tampered);
    free(w);
    free(r);
    const char *claims = "{\"sub\":\"x\",\"iat\":1800000000,\"exp\":1800000600,\"scope\":\"write\"}";
    /* alg none, with and without a signature */
    char *t = s_forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, NULL);
    CHECK(s_check(t, &scope, &err) == EVR_ERR_STATE && strstr(err.msg, "alg") != NULL);
    free(t);
    t = s_forge("{\"alg\":\"none\"}", claims, s_secret.key);
    CHECK(s_check(t, &scope, &err) == EVR_ERR_STATE);
    free(t);
    t = s_forge("{\"alg\":\"HS512\"}", claims, s_secret.key);
    CHECK(s_check(t, &scope, &err) == EVR_ERR_STATE);
    free(t);
    /* forged right: accepted (the forge is right) */
    t = s_forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims, s_secret.key);
    CHECK(s_check(t, &scope, &err) == EVR_OK && scope == EVR_GW_SCOPE_WRITE);
    free(t);
    /* claims: no exp, no scope, a scope of another kind, iat in the future */
    t = s_forge("{\"alg\":\"HS256\"}", "{\"sub\":\"x\",\"scope\":\"write\"}", s_secret.key);
    CHECK(s_check(t, &scope, &err) == EVR_ERR_STATE && strstr(err.msg, "exp") != NULL);
    free(t);
    t = s_forge("{\"alg\":\"HS256\"}", "{\"exp\":1800000600}", s_secret.key);
    CHECK(s_check(t, &scope, &err) == EVR_ERR_STATE && strstr(err.msg, "scope") != NULL);
    free(t);
    t = s_forge("{\"alg\":\"HS256\"}", "{\"exp\":1800000600,\"scope\":\"admin\"}", s_secret.key);
    CHECK(s_check(t, &scope, &err) == EVR_ERR_STATE);
    free(t);
    t = s_forge("{\"alg\":\"HS256\"}", "{\"exp\":1900000000,\"iat\":1890000000,"
                "\"scope\":\"read\"}", s_secret.key);
    CHECK(s_check(t, &scope, &err) == EVR_ERR_STATE && strstr(err.msg, "future") != NULL);
    free(t);
    /* iat and nbf up to 60 s ahead are taken (clocks differ), not 61;
       exp has no leeway: now is expired (README, openapi Unauthorized) */
    static const struct { const char *claims; bool ok; } skew[] = {
        { "{\"exp\":1800000600,\"iat\":1800000060,\"scope\":\"read\"}", true },
        { "{\"exp\":1800000600,\"iat\":1800000061,\"scope\":\"read\"}", false },
        { "{\"exp\":1800000600,\"nbf\":1800000060,\"scope\":\"read\"}", true },
        { "{\"exp\":1800000600,\"nbf\":1800000061,\"scope\":\"read\"}", false },
        { "{\"exp\":1800000001,\"scope\":\"read\"}", true },
        { "{\"exp\":1800000000,\"scope\":\"read\"}", false },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(skew); i++) {
        t = s_forge("{\"alg\":\"HS256\"}", skew[i].claims, s_secret.key);
        CHECK((s_check(t, &scope, &err) == EVR_OK) == skew[i].ok);
        free(t);
    }
    /* two scope claims (libjwt keeps one of them): refused; sub and iat may be left out */
    t = s_forge("{\"alg\":\"HS256\"}", "{\"exp\":1900000000,\"scope\":\"read\","
                "\"scope\":\"write\"}", s_secret.key);
    CHECK(s_check(t, &scope, &err) == EVR_ERR_STATE && strstr(err.msg, "each claim once")
          && strstr(err.msg, "duplicate object key"));
    free(t);
    /* a number past 64 bits: said so, not that a claim is named twice */
    t = s_forge("{\"alg\":\"HS256\"}", "{\"exp\":1000000000000000000000000000000,"
                "\"scope\":\"read\"}", s_secret.key);
    CHECK(s_check(t, &scope, &err) == EVR_ERR_STATE && strstr(err.msg, "within 64 bits")
          && strstr(err.msg, "too big integer"));
    free(t);
    t = s_forge("{\"alg\":\"HS256\"}", "{\"exp\":1900000000,\"scope\":\"read\"}",
                s_secret.key);
    CHECK(s_check(t, &scope, &err) == EVR_OK && scope == EVR_GW_SCOPE_READ);
    free(t);
    /* a time claim of another type: named, not "no exp" */
    static const char *const typed[][2] = {
        { "{\"exp\":\"1900000000\",\"scope\":\"read\"}", "exp: expected an integer" },
        { "{\"exp\":1900000000.5,\"scope\":\"read\"}", "exp: expected an integer" },
        { "{\"exp\":1900000000,\"iat\":true,\"scope\":\"read\"}", "iat: expected an integer" },
        { "{\"exp\":1900000000,\"nbf\":[1],\"scope\":\"read\"}", "nbf: expected an integer" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(typed); i++) {
        t = s_forge("{\"alg\":\"HS256\"}", typed[i][0], s_secret.key);
        CHECK(s_check(t, &scope, &err) == EVR_ERR_STATE && strstr(err.msg, typed[i][1]));
        free(t);
    }
    /* malformed */
    static const char *const bad[] = { "", "abc", "a.b", "a.b.c.d", "..", "!!.??.**",
                                       "eyJhbGciOiJIUzI1NiJ9..", "e30.e30.e30" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++)
        CHECK(s_check(bad[i], &scope, &err) == EVR_ERR_STATE);
    CHECK(s_check(NULL, &scope, &err) == EVR_ERR_STATE && strstr(err.msg, "Bearer") != NULL);
    char *huge = evr_malloc(EVR_GW_TOKEN_MAX + 10);
    memset(huge, 'a', EVR_GW_TOKEN_MAX + 9);
    huge[EVR_GW_TOKEN_MAX + 9] = '\0';
    huge[10] = huge[20] = '.';
    CHECK(s_check(huge, &scope, &err) == EVR_ERR_STATE);
    free(huge);
}

static void
test_origin_form(void)
{
    CHECK(!strcmp(evr_gw_origin_form("/api/v1/jobs"), "/api/v1/jobs"));
    CHECK(!strcmp(evr_gw_origin_form("http://127.0.0.1:7780/api/v1/jobs"), "/api/v1/jobs"));
    CHECK(!strcmp(evr_gw_origin_form("HTTPS://h.example/ui/"), "/ui/"));
    CHECK(!strcmp(evr_gw_origin_form("http://h"), "/"));
    CHECK(!strcmp(evr_gw_origin_form("http://h?x"), "/"));
    CHECK(evr_gw_origin_form("http:///api/v1/jobs") == NULL);  /* no host */
    CHECK(evr_gw_origin_form("http://h#f") == NULL);
    CHECK(!strcmp(evr_gw_origin_form("ftp://h/x"), "ftp://h/x"));     /* 404 as before */
    CHECK(!strcmp(evr_gw_origin_form("*"), "*"));
}

static void
test_ttl(void)
{
    uint64_t s = 0;
    CHECK(evr_gw_ttl_parse("90s", &s) && s == 90);
    CHECK(evr_gw_ttl_parse("2m", &s) && s == 120);
    CHECK(evr_gw_ttl_parse("1h", &s) && s == 3600);
    CHECK(evr_gw_ttl_parse("7d", &s) && s == 7 * 86400);
    CHECK(evr_gw_ttl_parse("45", &s) && s == 45);
    CHECK(!evr_gw_ttl_parse("0s", &s) && !evr_gw_ttl_parse("1w", &s)
          && !evr_gw_ttl_parse("-1h", &s) && !evr_gw_ttl_parse("h", &s)
          && !evr_gw_ttl_parse("367d", &s) && !evr_gw_ttl_parse("99999999999999999999", &s));
}

static void
test_secret(void)
{
    char dir[] = "/tmp/evr-gwt-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    evr_gw_secret_t a, b;
    evr_err_t err;
    CHECK(evr_gw_secret_load(dir, false, &a, &err) == EVR_ERR_NOTFOUND);
    CHECK(evr_gw_secret_load(dir, true, &a, &err) == EVR_OK && a.len == 64);
    CHECK(evr_gw_secret_load(dir, false, &b, &err) == EVR_OK && !strcmp(a.key, b.key));
    char *p = evr_asprintf("%s/gateway/jwt.secret", dir);
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
    chmod(p, 0644);
    CHECK(evr_gw_secret_load(dir, true, &b, &err) == EVR_ERR_CONFIG);
    CHECK(strstr(err.msg, "chmod 600") != NULL);
    unlink(p);
    free(p);
    p = evr_asprintf("%s/gateway", dir);
    rmdir(p);
    free(p);
    rmdir(dir);
}

/* ---------------------------------------------------------------- routes */

/*  The (method, path) pairs under `paths:` of schema/openapi.yaml as
    "METHOD /path" strings into out; their count. */
static size_t
s_openapi_routes(char out[][160], size_t max)
{
    FILE *fp = fopen(EVR_SOURCE_DIR "/schema/openapi.yaml", "rb");
    CHECK(fp != NULL);
    if (!fp)
        return 0;
    yaml_parser_t p;
    yaml_document_t doc;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, fp);
    size_t n = 0;
    CHECK(yaml_parser_load(&p, &doc));
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    for (yaml_node_pair_t *pr = root && root->type == YAML_MAPPING_NODE
                                    ? root->data.mapping.pairs.start : NULL;
         pr && pr < root->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
        if (strcmp((char *) k->data.scalar.value, "paths") || v->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *pp = v->data.mapping.pairs.start; pp < v->data.mapping.pairs.top;
             pp++) {
            yaml_node_t *path = yaml_document_get_node(&doc, pp->key);
            yaml_node_t *ops = yaml_document_get_node(&doc, pp->value);
            for (yaml_node_pair_t *op = ops->data.mapping.pairs.start;
                 op < ops->data.mapping.pairs.top && n < max; op++) {
                const char *m = (char *) yaml_document_get_node(&doc, op->key)->data.scalar.value;
                static const char *const methods[] = { "get", "post", "put", "delete", "patch" };
                for (size_t i = 0; i < EVR_ARRAY_LEN(methods); i++)
                    if (!strcmp(m, methods[i])) {
                        snprintf(out[n], 160, "%s %s", m, (char *) path->data.scalar.value);
                        for (char *c = out[n]; *c != ' '; c++)
                            *c = (char) (*c - 'a' + 'A');
                        n++;
                    }
            }
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    fclose(fp);
    return n;
}

static void
test_routes_openapi(void)
{
    char doc[64][160];
    size_t n = s_openapi_routes(doc, 64);
    CHECK(n == evr_gw_nroutes);
    for (size_t i = 0; i < evr_gw_nroutes; i++) {
        char want[160];
        snprintf(want, sizeof want, "%s %s", evr_gw_routes[i].method, evr_gw_routes[i].path);
        bool found = false;
        for (size_t j = 0; j < n; j++)
            found |= !strcmp(doc[j], want);
        if (!found)
            fprintf(stderr, "route %s is served but not in schema/openapi.yaml\n", want);
        CHECK(found);
    }
    for (size_t j = 0; j < n; j++) {
        bool found = false;
        for (size_t i = 0; i < evr_gw_nroutes; i++) {
            char have[160];
            snprintf(have, sizeof have, "%s %s", evr_gw_routes[i].method, evr_gw_routes[i].path);
            found |= !strcmp(doc[j], have);
        }
        if (!found)
            fprintf(stderr, "%s is in schema/openapi.yaml but not served\n", doc[j]);
        CHECK(found);
    }
}

static void
test_route_match(void)
{
    char params[EVR_GW_PARAMS][128];
    int st;
    const evr_gw_route_t *r = evr_gw_route_match("GET", "/api/v1/jobs/ABC/log", params, &st);
    CHECK(r && r->fn == evr_gw_h_log);
    CHECK_STR(params[0], "ABC");
    CHECK(!evr_gw_route_match("DELETE", "/api/v1/jobs/ABC", params, &st) && st == 405);
    CHECK(evr_gw_route_match("HEAD", "/api/v1/jobs/ABC", params, &st) != NULL);
    CHECK(!evr_gw_route_match("HEAD", "/api/v1/demand", params, &st) && st == 405);
    CHECK(!evr_gw_route_match("GET", "/api/v1/jobs/ABC/nope", params, &st) && st == 404);
    CHECK(!evr_gw_route_match("GET", "/api/v1/jobs//log", params, &st) && st == 404);
    CHECK(!evr_gw_route_match("GET", "/api/v1/jobs/", params, &st) && st == 404);
    CHECK(!evr_gw_route_match("GET", "/api/v2/jobs", params, &st) && st == 404);
    CHECK(!evr_gw_route_match("GET", "/api/v1", params, &st) && st == 404);
    CHECK(!evr_gw_route_match("GET", "/api/v1jobs", params, &st) && st == 404);
    CHECK(evr_gw_route_match("POST", "/api/v1/jobs", params, &st)->write);
    CHECK(!evr_gw_route_match("GET", "/api/v1/runners", params, &st)->write);
    uint32_t seq = 0;
    CHECK(evr_gw_last_event_id("17", &seq) && seq == 17);
    CHECK(!evr_gw_last_event_id("", &seq) && !evr_gw_last_event_id("-1", &seq)
          && !evr_gw_last_event_id("1x", &seq) && !evr_gw_last_event_id("99999999999", &seq));
}

/* ---------------------------------------------------------------- bodies */

static int
s_parse(const char *ctype, const char *body, size_t len, char *msg, size_t size)
{
    evr_spec_t *spec = evr_spec_new();
    json_t *e = NULL;
    int st = 0;
    if (evr_gw_parse_submit(ctype, body, len, spec, &st, &e))
        st = 200;
    snprintf(msg, size, "%s", e ? json_string_value(json_object_get(
                                      json_object_get(e, "error"), "message")) : "");
    json_decref(e);
    evr_spec_destroy(&spec);
    return st;
}

static void
test_parse_submit(void)
{
    char m[1024];
    const char *yml = "pipeline: p\nimage: localhost/x:1\nsteps:\n  - name: a\n    run: echo\n";
    CHECK(s_parse("application/yaml", yml, strlen(yml), m, sizeof m) == 200);
    CHECK(s_parse("application/x-yaml; charset=utf-8", yml, strlen(yml), m, sizeof m) == 200);
    const char *bad = "pipeline: p\nimage: localhost/x:1\nsteps:\n  - name: a\n    runn: echo\n";
    CHECK(s_parse("application/yaml", bad, strlen(bad), m, sizeof m) == 400);
    CHECK(strncmp(m, "body:5:", 7) == 0);
    const char *js = "{\"pipeline\":\"p\",\"image\":\"localhost/x:1\",\"steps\":[{\"name\":\"a\","
                     "\"run\":\"echo\"}]}";
    CHECK(s_parse("application/json", js, strlen(js), m, sizeof m) == 200);
    CHECK(s_parse("application/json", "{\"steps\": [", 11, m, sizeof m) == 400);
    CHECK(strstr(m, "bad JSON") != NULL && strncmp(m, "body:1:", 7) == 0);
    CHECK(s_parse("application/json", "{\"pipeline\":\"\xff\"}", 17, m, sizeof m) == 400);
    CHECK(strstr(m, "bad JSON") != NULL);
    /* a pipeline over 1 MiB (a file's limit): 413, not the loader's 400 */
    char *big = evr_malloc(EVR_YAML_MAX_BYTES + 2);
    memset(big, '#', EVR_YAML_MAX_BYTES + 1);
    big[EVR_YAML_MAX_BYTES + 1] = '\0';
    CHECK(s_parse("application/yaml", big, EVR_YAML_MAX_BYTES + 1, m, sizeof m) == 413);
    CHECK(strstr(m, "1 MiB") != NULL);
    free(big);
    CHECK(s_parse("application/json", "[1,2]", 5, m, sizeof m) == 400);
    CHECK(s_parse("application/json", "{\"a\":1,\"a\":2}", 13, m, sizeof m) == 400);
    CHECK(s_parse("application/json", "{\"pipeline\":\"x\",\"args\":{}}", 26, m, sizeof m) == 400);
    CHECK(strstr(m, "registered") != NULL);
    CHECK(s_parse("text/plain", yml, strlen(yml), m, sizeof m) == 415);
    CHECK(s_parse("application/json", "{\"pipeline\":\"x\",\"args\":{\"a\":1}}", 32, m,
                  sizeof m) == 400);
    CHECK(s_parse(NULL, yml, strlen(yml), m, sizeof m) == 415);
    CHECK(s_parse("application/yaml", "", 0, m, sizeof m) == 400);
    CHECK(s_parse("application/yaml", "\xff\xfe: [", 5, m, sizeof m) == 400);
    const char *copy = "pipeline: p\nimage: localhost/x:1\nsource: {copy: .}\nsteps:\n"
                       "  - name: a\n    run: echo\n";
    CHECK(s_parse("application/yaml", copy, strlen(copy), m, sizeof m) == 400);
    CHECK(strstr(m, "copy") != NULL);
}

/*  evr_gw_parse_start's result for a JSON body; the message of an error
    into msg. */
static int
s_start(const char *body, evr_msg_t *m, char *msg, size_t size)
{
    json_t *e = NULL;
    int r = evr_gw_parse_start("application/json", body, strlen(body), m, &e);
    snprintf(msg, size, "%s", e ? json_string_value(json_object_get(
                                      json_object_get(e, "error"), "message")) : "");
    json_decref(e);
    return r;
}

static void
test_parse_start(void)
{
    char msg[1024];
    evr_msg_t m = { 0 };
    CHECK(s_start("{\"pipeline\":\"nightly\",\"args\":{\"WHO\":\"x\"},\"labels\":[\"gpu\"]}", &m,
                  msg, sizeof msg) == 1);
    CHECK_STR(m.pipeline, "nightly");
    CHECK_STR(evr_strmap_get(&m.args, "WHO"), "x");
    CHECK(m.labels.n == 1 && !strcmp(m.labels.v[0], "gpu"));
    evr_msg_clear(&m);
    memset(&m, 0, sizeof m);
    CHECK(s_start("{\"pipeline\":\"p\",\"steps\":[]}", &m, msg, sizeof msg) == 0);
    CHECK(s_start("[1]", &m, msg, sizeof msg) == 0);
    CHECK(s_start("{\"pipeline\":\"../x\"}", &m, msg, sizeof msg) == -1);
    CHECK(strstr(msg, "body.pipeline") != NULL);
    CHECK(s_start("{\"pipeline\":\"p\",\"args\":{\"A\":1}}", &m, msg, sizeof msg) == -1);
    CHECK(strstr(msg, "body.args.A: expected a string") != NULL);
    CHECK(s_start("{\"pipeline\":\"p\",\"args\":[]}", &m, msg, sizeof msg) == -1);
    CHECK(s_start("{\"pipeline\":\"p\",\"labels\":[\"a b\"]}", &m, msg, sizeof msg) == -1);
    CHECK(strstr(msg, "body.labels[0]") != NULL);
    CHECK(s_start("{\"pipeline\":5}", &m, msg, sizeof msg) == -1);
    CHECK(strstr(msg, "body.pipeline") != NULL);
    CHECK(s_start("{\"pipeline\":\"p\",\"labels\":[7]}", &m, msg, sizeof msg) == -1);
    CHECK(strstr(msg, "body.labels[0]") != NULL);
    /* labels are a set: a repeat is refused, naming both (as the broker's submit) */
    CHECK(s_start("{\"pipeline\":\"p\",\"labels\":[\"gpu\",\"x\",\"gpu\"]}", &m, msg,
                  sizeof msg) == -1);
    CHECK_STR(msg, "body.labels[2]: \"gpu\" repeats body.labels[0]");
    CHECK(s_start("{\"pipeline\":\"p\",\"image\":\"x\"}", &m, msg, sizeof msg) == -1);
    CHECK(strstr(msg, "body.image: unknown field") != NULL);
    CHECK(!m.pipeline && !m.args.n);
    json_t *e = NULL;
    CHECK(evr_gw_parse_start("application/yaml", "{\"pipeline\":\"p\"}", 16, &m, &e) == 0);
    evr_msg_clear(&m);
}

static void
test_art_path(void)
{
    CHECK(evr_gw_art_path_problem("out/report.txt") == NULL);
    CHECK(evr_gw_art_path_problem("a.b/..c/d..") == NULL);
    CHECK(strstr(evr_gw_art_path_problem("../etc/passwd"), ".."));
    CHECK(strstr(evr_gw_art_path_problem("a/../../b"), ".."));
    CHECK(strstr(evr_gw_art_path_problem("a/./b"), ".."));
    CHECK(strstr(evr_gw_art_path_problem("/etc/passwd"), "absolute"));
    CHECK(strstr(evr_gw_art_path_problem("a//b"), "empty"));
    CHECK(strstr(evr_gw_art_path_problem("a/"), "empty"));
    CHECK(strstr(evr_gw_art_path_problem(""), "empty"));
    CHECK(strstr(evr_gw_art_path_problem("a\x7f"), "control"));
    CHECK(strstr(evr_gw_art_path_problem("a\nb"), "control"));
    CHECK(strstr(evr_gw_art_path_problem("\xff\xfe"), "UTF-8"));
    char big[1100];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(strstr(evr_gw_art_path_problem(big), "1024"));
    char params[EVR_GW_PARAMS][128];
    int st;
    const evr_gw_route_t *r = evr_gw_route_match(
        "GET", "/api/v1/jobs/ABC/artifacts/build/out/a/b.txt", params, &st);
    CHECK(r && r->fn == evr_gw_h_artifact);
    CHECK_STR(params[1], "build");
    CHECK_STR(params[2], "out/a/b.txt");
    r = evr_gw_route_match("GET", "/api/v1/jobs/ABC/artifacts", params, &st);
    CHECK(r && r->fn == evr_gw_h_artifacts);
    CHECK(!evr_gw_route_match("GET", "/api/v1/jobs/ABC/artifacts/build", params, &st));
    /* an empty path or step, a step over 127 bytes: the artifact route,
       whose handler answers 400 naming what is wrong (not "no such route") */
    r = evr_gw_route_match("GET", "/api/v1/jobs/ABC/artifacts/build/", params, &st);
    CHECK(r && r->fn == evr_gw_h_artifact);
    CHECK_STR(params[2], "");
    r = evr_gw_route_match("GET", "/api/v1/jobs/ABC/artifacts//f.txt", params, &st);
    CHECK(r && r->fn == evr_gw_h_artifact);
    char url[400];
    snprintf(url, sizeof url, "/api/v1/jobs/ABC/artifacts/%0200d/f.txt", 0);
    r = evr_gw_route_match("GET", url, params, &st);
    CHECK(r && r->fn == evr_gw_h_artifact && strlen(params[1]) == 127);
    /* other routes still take a non-empty segment of at most 127 bytes */
    CHECK(!evr_gw_route_match("GET", "/api/v1/jobs//log", params, &st) && st == 404);
}

static void
test_prom_label(void)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&buf, &n);
    evr_gw_prom_label(out, "a\\b\"c\nd{e}=,");
    fclose(out);
    CHECK_STR(buf, "a\\\\b\\\"c\\nd{e}=,");
    free(buf);
    char params[EVR_GW_PARAMS][128];
    int st;
    const evr_gw_route_t *r = evr_gw_route_match("GET", "/metrics", params, &st);
    CHECK(r && r->fn == evr_gw_h_metrics && r->open);
    CHECK(!evr_gw_route_match("GET", "/api/v1/metrics", params, &st) && st == 404);
    CHECK(!evr_gw_route_match("POST", "/metrics", params, &st) && st == 405);
    r = evr_gw_route_match("POST", "/hooks/github", params, &st);
    CHECK(r && r->fn == evr_gw_h_github && r->open);
    r = evr_gw_route_match("POST", "/hooks/nightly", params, &st);
    CHECK(r && r->fn == evr_gw_h_hook && r->open && !strcmp(params[0], "nightly"));
    CHECK(!evr_gw_route_match("GET", "/hooks/github", params, &st) && st == 405);
    CHECK(!evr_gw_route_match("POST", "/api/v1/hooks/github", params, &st) && st == 404);
    CHECK(!evr_gw_route_match("POST", "/hooks/a/b", params, &st) && st == 404);
}

static void
test_hooks(void)
{
    /* GitHub's own example: secret "It's a Secret to Everybody", body "Hello, World!" */
    evr_gw_secret_t sec = { .key = "It's a Secret to Everybody", .len = 26 };
    const char *good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    CHECK(evr_gw_hook_signed(&sec, good, "Hello, World!", 13));
    CHECK(!evr_gw_hook_signed(&sec, good, "Hello, World?", 13));
    CHECK(!evr_gw_hook_signed(&sec, good + 7, "Hello, World!", 13));
    CHECK(!evr_gw_hook_signed(&sec, "sha256=zz", "Hello, World!", 13));
    CHECK(!evr_gw_hook_signed(&sec, NULL, "Hello, World!", 13));
    evr_gw_secret_t none = { .len = 0 };
    CHECK(!evr_gw_hook_signed(&none, good, "Hello, World!", 13));
    char sha[41], why[512], buf[2048];
    memset(sha, 'a', 40);
    sha[40] = '\0';
    evr_gw_github_t gh;
    snprintf(buf, sizeof buf, "{\"ref\":\"refs/heads/main\",\"after\":\"%s\",\"repository\":"
             "{\"clone_url\":\"https://h/r.git\",\"default_branch\":\"main\"}}", sha);
    CHECK(evr_gw_github_parse("push", buf, strlen(buf), &gh, why, sizeof why) == 0);
    CHECK_STR(gh.branch, "main");
    CHECK_STR(gh.sha, sha);
    CHECK_STR(gh.url, "https://h/r.git");
    CHECK_STR(gh.ci_ref, "main");
    evr_strlist_t ev = { 0 }, br = { 0 };
    evr_strlist_push(&ev, "push");
    CHECK(evr_gw_github_match(&ev, &br, &gh));
    evr_strlist_push(&br, "release/*");
    CHECK(!evr_gw_github_match(&ev, &br, &gh));
    evr_strlist_push(&br, "ma*");
    CHECK(evr_gw_github_match(&ev, &br, &gh));
    /* README "Webhooks": * never crosses /, ** is no different; a deeper
       branch is matched by a pattern of its depth */
    snprintf(gh.branch, sizeof gh.branch, "feature/a/b");
    evr_strlist_t deep = { 0 };
    evr_strlist_push(&deep, "feature/*");
    evr_strlist_push(&deep, "feature/**");
    evr_strlist_push(&deep, "*");
    CHECK(!evr_gw_github_match(&ev, &deep, &gh));
    evr_strlist_push(&deep, "feature/*/*");
    CHECK(evr_gw_github_match(&ev, &deep, &gh));
    evr_strlist_free(&deep);
    evr_gw_github_clear(&gh);
    snprintf(buf, sizeof buf, "{\"ref\":\"refs/tags/v1\",\"after\":\"%s\",\"repository\":"
             "{\"clone_url\":\"https://h/r.git\"}}", sha);
    CHECK(evr_gw_github_parse("push", buf, strlen(buf), &gh, why, sizeof why) == 1);
    CHECK(strstr(why, "not a branch") != NULL);
    snprintf(buf, sizeof buf, "{\"ref\":\"refs/heads/x\",\"after\":\"XYZ\",\"repository\":"
             "{\"clone_url\":\"https://h/r.git\"}}");
    CHECK(evr_gw_github_parse("push", buf, strlen(buf), &gh, why, sizeof why) == -1);
    CHECK(strstr(why, "after: expected a commit SHA") != NULL);
    CHECK(evr_gw_github_parse("push", "{", 1, &gh, why, sizeof why) == -1);
    CHECK(strstr(why, "bad JSON") != NULL && !strncmp(why, "body:1:", 7));
    /* an array: valid JSON, no position (not body:-1:-1) */
    CHECK(evr_gw_github_parse("push", "[1]", 3, &gh, why, sizeof why) == -1);
    CHECK_STR(why, "body: expected a JSON object (GitHub's event), not an array");
    /* GitHub's default content type: a form; say which to choose */
    CHECK(evr_gw_github_parse("push", "payload=%7B%7D", 14, &gh, why, sizeof why) == -1);
    CHECK_STR(why, "body: a form (application/x-www-form-urlencoded, payload=...), not JSON: "
                   "set the webhook's content type to application/json");
    /* a pull request from a fork: the fork's commit, the base's default branch */
    snprintf(buf, sizeof buf, "{\"action\":\"opened\",\"pull_request\":{\"base\":{\"ref\":"
             "\"main\"},\"head\":{\"sha\":\"%s\",\"repo\":{\"clone_url\":\"https://h/fork.git\","
             "\"full_name\":\"x/fork\"}}},\"repository\":{\"clone_url\":\"https://h/r.git\","
             "\"full_name\":\"o/r\",\"default_branch\":\"trunk\"}}", sha);
    CHECK(evr_gw_github_parse("pull_request", buf, strlen(buf), &gh, why, sizeof why) == 0);
    CHECK(gh.fork);
    CHECK_STR(gh.url, "https://h/fork.git");
    CHECK_STR(gh.ci_url, "https://h/r.git");
    CHECK_STR(gh.ci_ref, "trunk");
    CHECK(!evr_gw_github_match(&ev, &br, &gh));    /* events: push only */
    evr_gw_github_clear(&gh);
    char *closed = strstr(buf, "opened");
    memcpy(closed, "closed", 6);
    CHECK(evr_gw_github_parse("pull_request", buf, strlen(buf), &gh, why, sizeof why) == 1);
    CHECK(strstr(why, "\"closed\" starts nothing") != NULL);
    /* a workflow job: queued starts, completed does not */
    snprintf(buf, sizeof buf, "{\"action\":\"queued\",\"workflow_job\":{\"head_branch\":"
             "\"main\",\"head_sha\":\"%s\"},\"repository\":{\"clone_url\":\"https://h/r.git\"}}",
             sha);
    CHECK(evr_gw_github_parse("workflow_job", buf, strlen(buf), &gh, why, sizeof why) == 0);
    CHECK_STR(gh.branch, "main");
    CHECK(!gh.ci_ref);
    CHECK(gh.job_id == 0);      /* no workflow_job.id: its demand is named by the delivery */
    char jname[128];
    evr_gw_github_job_name(&gh, "d-77", jname, sizeof jname);
    CHECK_STR(jname, "d-77");   /* not "0" */
    evr_gw_github_job_name(&gh, NULL, jname, sizeof jname);
    CHECK_STR(jname, "-");
    evr_strlist_push(&ev, "workflow_job");
    CHECK(evr_gw_github_match(&ev, &br, &gh));
    CHECK(gh.demand_why != NULL && strstr(gh.demand_why, "workflow_job.labels"));
    evr_gw_github_clear(&gh);
    /* its labels, for its demand: as given, or why not */
    snprintf(buf, sizeof buf, "{\"action\":\"queued\",\"workflow_job\":{\"id\":42,"
             "\"labels\":[\"self-hosted\",\"linux\"],\"head_branch\":\"main\",\"head_sha\":"
             "\"%s\"},\"repository\":{\"clone_url\":\"https://h/r.git\",\"full_name\":\"o/r\"}}",
             sha);
    CHECK(evr_gw_github_parse("workflow_job", buf, strlen(buf), &gh, why, sizeof why) == 0);
    CHECK(gh.labels.n == 2 && !strcmp(gh.labels.v[0], "self-hosted")
          && !strcmp(gh.labels.v[1], "linux") && !gh.demand_why);
    CHECK_STR(gh.repo, "o/r");
    CHECK(gh.job_id == 42);     /* its demand's name: one per workflow job */
    evr_gw_github_job_name(&gh, "d-42", jname, sizeof jname);
    CHECK_STR(jname, "42");
    evr_gw_github_clear(&gh);
    memcpy(strstr(buf, "\"id\":42"), "\"id\":-1", 7);    /* no id of GitHub's */
    CHECK(evr_gw_github_parse("workflow_job", buf, strlen(buf), &gh, why, sizeof why) == 0);
    CHECK(gh.job_id == 0);
    evr_gw_github_job_name(&gh, "d-43", jname, sizeof jname);
    CHECK_STR(jname, "d-43");
    evr_gw_github_clear(&gh);
    /* a label repeated (runs-on is GitHub's): its demand names it once, as
       the broker takes a demand's labels */
    char twice[512];
    snprintf(twice, sizeof twice, "{\"action\":\"queued\",\"workflow_job\":{\"id\":42,"
             "\"labels\":[\"linux\",\"self-hosted\",\"linux\"],\"head_branch\":\"main\","
             "\"head_sha\":\"%s\"},\"repository\":{\"clone_url\":\"https://h/r.git\","
             "\"full_name\":\"o/r\"}}", sha);
    CHECK(evr_gw_github_parse("workflow_job", twice, strlen(twice), &gh, why, sizeof why) == 0);
    CHECK(gh.labels.n == 2 && !strcmp(gh.labels.v[0], "linux")
          && !strcmp(gh.labels.v[1], "self-hosted") && !gh.demand_why);
    evr_gw_github_clear(&gh);
    memcpy(strstr(buf, "\"id\":-1"), "\"id\":42", 7);
    memcpy(strstr(buf, "\"linux\""), "\"li ux\"", 7);
    CHECK(evr_gw_github_parse("workflow_job", buf, strlen(buf), &gh, why, sizeof why) == 0);
    CHECK(gh.labels.n == 0 && gh.demand_why && strstr(gh.demand_why, "workflow_job.labels[1]"));
    evr_gw_github_clear(&gh);
    memcpy(strstr(buf, "queued"), "action", 6);
    CHECK(evr_gw_github_parse("workflow_job", buf, strlen(buf), &gh, why, sizeof why) == 1);
    evr_strlist_free(&ev);
    evr_strlist_free(&br);
    /* the spec key on.github: checked at file:line:col */
    const char *yml = "pipeline: p\nimage: i\nsteps: [{name: a, run: x}]\non:\n  github:\n"
                      "    events: [push, fork]\n";
    evr_spec_t spec = { 0 };
    evr_diag_t *diag = evr_diag_new("p.yml");
    CHECK(evr_yaml_load(yml, strlen(yml), &spec, diag) == EVR_ERR_SPEC);
    CHECK(evr_diag_count(diag) && strstr(evr_diag_get(diag, 0), "p.yml:6:") == evr_diag_get(diag, 0)
          && strstr(evr_diag_get(diag, 0), "push, pull_request, workflow_job"));
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
    yml = "pipeline: p\nimage: i\nsteps: [{name: a, run: x}]\non: {github: {branches: [main]}}\n";
    diag = evr_diag_new("p.yml");
    memset(&spec, 0, sizeof spec);
    CHECK(evr_yaml_load(yml, strlen(yml), &spec, diag) == EVR_OK);
    CHECK(spec.on.github.present && spec.on.github.branches.n == 1);
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
}

/*  Makes dir/name with mtime at t. */
static void
s_touch(const char *dir, const char *name, time_t t)
{
    char *p = evr_asprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    struct timespec ts[2] = { { t, 0 }, { t, 0 } };
    CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0);
    free(p);
}

static void
test_idem_prune(void)
{
    char dir[] = "/tmp/evr-gwi-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *gw = evr_asprintf("%s/gateway", dir), *id = evr_asprintf("%s/idempotency", gw);
    CHECK(mkdir(gw, 0700) == 0 && mkdir(id, 0700) == 0);
    time_t now = 2000000000;
    char old[80], fresh[80], half[120];
    memset(old, 'a', 64), old[64] = '\0';
    memset(fresh, 'b', 64), fresh[64] = '\0';
    snprintf(half, sizeof half, "%s.01ARYZ6S41TSV4RRFFQ69G5FAV", old);
    s_touch(id, old, now - 90000);
    s_touch(id, fresh, now - 3600);
    s_touch(id, half, now - 90000);
    s_touch(id, "README", now - 90000);
    CHECK(evr_gw_idem_prune(dir, 86400, (uint64_t) now) == 2);
    char *p = evr_asprintf("%s/%s", id, fresh);
    CHECK(access(p, F_OK) == 0);
    free(p);
    p = evr_asprintf("%s/%s", id, old);
    CHECK(access(p, F_OK) != 0);
    free(p);
    CHECK(evr_gw_idem_prune(dir, 86400, (uint64_t) now) == 0);
    CHECK(evr_gw_idem_prune("/nonexistent-evr", 86400, (uint64_t) now) == 0);
    char *cmd = evr_asprintf("rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    free(cmd);
    free(id);
    free(gw);
}

/* ------------------------------------------------------- a real server */

/*  Sends req (len bytes) to 127.0.0.1:port; the status of the answer,
    its text into out. */
static int
s_http(uint16_t port, const char *req, size_t len, char *out, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;      /* the server answered early and closed */
        off += (size_t) n;
    }
    size_t got = 0;
    ssize_t n;
    while (got + 1 < size && (n = recv(fd, out + got, size - 1 - got, 0)) > 0)
        got += (size_t) n;
    out[got] = '\0';
    close(fd);
    int status = 0;
    sscanf(out, "HTTP/1.%*d %d", &status);
    return status;
}

/*  s_http of the request fmt makes. */
static int
s_send(uint16_t port, char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    char *req = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&req, fmt, ap);
    va_end(ap);
    int st = n < 0 ? -1 : s_http(port, req, (size_t) n, out, size);
    free(req);
    return st;
}

/*  The limit settings: defaults, values, and what is refused (naming the key). */
static void
test_limits(void)
{
    static const evr_config_key_t keys[] = {
        { "http_max_connections", "512", "" }, { "http_max_per_ip", "256", "" },
        { "http_idle_timeout", "30s", "" }, { "http_request_timeout", "30s", "" },
    };
    evr_gw_t gw = { .cfg = evr_config_new(keys, EVR_ARRAY_LEN(keys)) };
    evr_err_t err;
    CHECK(evr_gw_limits_load(&gw, &err) == EVR_OK);
    CHECK(gw.max_conns >= 1 && gw.max_conns <= 512 && gw.max_per_ip <= gw.max_conns);
    CHECK(gw.idle_s == 30 && gw.request_ns == 30000000000ull);
    CHECK(gw.keepalive_ns == 7500000000ull);    /* a quarter of it, at most 15 s */
    evr_config_set(gw.cfg, "http_idle_timeout", "4", "test");
    evr_config_set(gw.cfg, "http_max_per_ip", "1000", "test");
    CHECK(evr_gw_limits_load(&gw, &err) == EVR_OK);
    CHECK(gw.idle_s == 4 && gw.keepalive_ns == 1000000000ull);  /* a quarter of it */
    CHECK(gw.max_per_ip == gw.max_conns);                        /* never above the total */
    static const char *const bad[][2] = {
        { "http_idle_timeout", "soon" }, { "http_idle_timeout", "500ms" },
        { "http_request_timeout", "0" }, { "http_max_connections", "0" },
        { "http_max_connections", "100000" }, { "http_max_per_ip", "-1" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        evr_config_t *c = evr_config_new(keys, EVR_ARRAY_LEN(keys));
        evr_gw_t g = { .cfg = c };
        evr_config_set(c, bad[i][0], bad[i][1], "test");
        CHECK(evr_gw_limits_load(&g, &err) == EVR_ERR_CONFIG);
        CHECK(strstr(err.msg, bad[i][0]) != NULL);
        evr_config_destroy(&c);
    }
    evr_config_destroy(&gw.cfg);
}

static void
test_server(void)
{
    static const evr_config_key_t keys[] = {
        { "http_listen", "127.0.0.1:0", "" }, { "tls_cert", NULL, "" }, { "tls_key", NULL, "" },
        { "state_dir", "/tmp", "" }, { "client_endpoint", "ipc:///tmp/evr-gwt-none/clients", "" },
        { "events_endpoint", "ipc:///tmp/evr-gwt-none/events", "" },
        { "timeout_ms", "300", "" }, { "client_cert", NULL, "" }, { "broker_key", NULL, "" },
    };
    evr_gw_t gw = { .cfg = evr_config_new(keys, EVR_ARRAY_LEN(keys)), .secret = s_secret,
                    .body_max = EVR_MSG_MAX_BYTES };
    evr_err_t err;
    pthread_mutex_init(&gw.mu, NULL);
    CHECK(evr_gw_start(&gw, &err) == EVR_OK);
    CHECK(gw.port != 0);
    char *w = evr_gw_token_issue(&s_secret, "t", EVR_GW_SCOPE_WRITE, 600,
                                 evr_now_ns() / 1000000000ull, &err);
    char *r = evr_gw_token_issue(&s_secret, "t", EVR_GW_SCOPE_READ, 600,
                                 evr_now_ns() / 1000000000ull, &err);
    char out[8192];
    CHECK(s_send(gw.port, out, sizeof out, "GET /api/v1/runners HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n") == 401);
    CHECK(strstr(out, "\"unauthorized\"") && strstr(out, "WWW-Authenticate"));
    CHECK(s_send(gw.port, out, sizeof out, "GET /api/v1/runners HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                              "Authorization: Bearer %s\r\n\r\n", "x.y.z") == 401);
    CHECK(s_send(gw.port, out, sizeof out, "POST /api/v1/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                              "Authorization: Bearer %s\r\nContent-Length: 0\r\n\r\n", r) == 403);
    CHECK(s_send(gw.port, out, sizeof out, "GET /api/v1/nothing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                              "Authorization: Bearer %s\r\n\r\n", r) == 404);
    CHECK(s_send(gw.port, out, sizeof out, "DELETE /api/v1/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                              "Authorization: Bearer %s\r\n\r\n", r) == 405);
    CHECK(strstr(out, "\r\nAllow: POST, GET, HEAD\r\n") != NULL);
    /* too many header fields: 431 as JSON; a message with bytes that are no UTF-8 stays JSON */
    char *many = evr_strdup("");
    for (int i = 0; i < 101; i++) {
        char *m2 = evr_asprintf("%sX-Pad-%d: v\r\n", many, i);
        free(many);
        many = m2;
    }
    CHECK(s_send(gw.port, out, sizeof out, "GET /api/v1/runners HTTP/1.1\r\nHost: localhost\r\n"
                 "Connection: close\r\n%s\r\n", many) == 431);
    CHECK(strstr(out, "\"too_many_headers\"") != NULL);
    free(many);
    CHECK(s_send(gw.port, out, sizeof out, "GET /api/v1/nope%%FF HTTP/1.1\r\nHost: localhost\r\n"
                 "Connection: close\r\nAuthorization: Bearer %s\r\n\r\n", r) == 404);
    CHECK(strstr(out, "/api/v1/nope\\\\xFF (the API") != NULL);
    /* over the limit, said up front, then sent in chunks without a length */
    CHECK(s_send(gw.port, out, sizeof out, "POST /api/v1/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                              "Authorization: Bearer %s\r\nContent-Type: application/yaml\r\n"
                              "Content-Length: %u\r\n\r\n", w, EVR_MSG_MAX_BYTES + 1) == 413);
    CHECK(strstr(out, "\"too_large\"") != NULL);
    size_t chunk = 64 * 1024, nchunks = EVR_MSG_MAX_BYTES / chunk + 2;
    char *head = evr_asprintf("POST /api/v1/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     "Authorization: Bearer %s\r\nContent-Type: application/yaml\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n", w);
    size_t hl = strlen(head), total = hl + nchunks * (chunk + 16) + 8, at = hl;
    char *big = evr_malloc(total);
    memcpy(big, head, hl);
    for (size_t i = 0; i < nchunks; i++) {
        at += (size_t) sprintf(big + at, "%zx\r\n", chunk);
        memset(big + at, '#', chunk);
        at += chunk;
        at += (size_t) sprintf(big + at, "\r\n");
    }
    at += (size_t) sprintf(big + at, "0\r\n\r\n");
    CHECK(s_http(gw.port, big, at, out, sizeof out) == 413);
    free(big);
    free(head);
    /* the broker does not answer: 503, bounded by timeout_ms, with when
       the gateway tries again (evr_gw_bus.c) */
    CHECK(s_send(gw.port, out, sizeof out, "GET /api/v1/runners HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                              "Authorization: Bearer %s\r\n\r\n", r) == 503);
    CHECK(strstr(out, "\"unavailable\"") != NULL);
    CHECK(strstr(out, "\r\nRetry-After: ") != NULL);
    CHECK(strstr(out, "is evrun-broker running? (try: evrun-cli up) (the gateway tries again "
                      "by itself, next in ") != NULL);
    /* metrics without a token, the broker down: served, evrun_broker_up 0 */
    CHECK(s_send(gw.port, out, sizeof out, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n"
                 "Connection: close\r\n\r\n") == 200);
    CHECK(strstr(out, "\nevrun_broker_up 0\n") != NULL);
    CHECK(strstr(out, "# TYPE evrun_step_duration_seconds histogram\n") != NULL);
    /* every event type by its name; none without one (was type="(null)") */
    CHECK(strstr(out, "\nevrun_events_total{type=\"job.accepted\"} 0\n") != NULL);
    CHECK(!strstr(out, "(null)") && !strstr(out, "type=\"\""));
    /* a webhook without a signature, or a wrong one: 403 with no challenge
       (a 401 must name an HTTP scheme, and a webhook's signature is none:
       it said WWW-Authenticate: Bearer); no hook token: 401, Bearer */
    CHECK(s_send(gw.port, out, sizeof out, "POST /hooks/github HTTP/1.1\r\nHost: localhost\r\n"
                 "Connection: close\r\nX-GitHub-Event: push\r\nContent-Length: 2\r\n\r\n{}")
          == 403);
    CHECK(strstr(out, "X-Hub-Signature-256: missing") != NULL);
    CHECK(strstr(out, "\"forbidden\"") != NULL);
    CHECK(!strcasestr(out, "WWW-Authenticate"));
    CHECK(s_send(gw.port, out, sizeof out, "POST /hooks/github HTTP/1.1\r\nHost: localhost\r\n"
                 "Connection: close\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: "
                 "sha256=00\r\nContent-Length: 2\r\n\r\n{}") == 403);
    CHECK(strstr(out, "\"sha256=00\\\" is not sha256= and 64 hex digits") != NULL);
    CHECK(!strcasestr(out, "WWW-Authenticate"));
    CHECK(s_send(gw.port, out, sizeof out, "POST /hooks/nightly HTTP/1.1\r\nHost: localhost\r\n"
                 "Connection: close\r\nContent-Length: 0\r\n\r\n") == 401);
    CHECK(strstr(out, "\r\nWWW-Authenticate: Bearer") != NULL);
    /* path tricks in an artifact url: 400 before the broker is asked */
    static const char *const tricks[] = {
        "a/..%2f..%2fetc%2fpasswd", "a/%2e%2e/x", "a/x%00.txt", "a/%2fetc%2fpasswd", "a/b//c",
        "..%2fx/y",
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(tricks); i++) {
        CHECK(s_send(gw.port, out, sizeof out, "GET /api/v1/jobs/01ARYZ6S41TSV4RRFFQ69G5FAV/"
                     "artifacts/%s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     "Authorization: Bearer %s\r\n\r\n", tricks[i], r) == 400);
        CHECK(strstr(out, "\"bad_request\"") != NULL);
    }
    /* an escaped NUL in a query value, a name or the path: 400 naming where, before
       the broker is asked (it was read as DEL, and ?pipeline=a%00b listed nothing) */
    static const struct {
        const char *target, *says;
    } nuls[] = {
        { "/api/v1/jobs?pipeline=art%00zzz", "query parameter pipeline: it holds an escaped NUL" },
        { "/api/v1/jobs?limit=1&cursor=%00", "query parameter cursor:" },
        /* not a NUL: a bad limit says the value given */
        { "/api/v1/jobs?limit=abc", "limit: expected 1 to 1000, got \\\"abc\\\"" },
        { "/api/v1/jobs?st%00atus=x", "query parameter the name of st...:" },
        { "/api/v1/jobs/01ARYZ6S41TSV4RRFFQ69G5FAV/log?step=a%00zz", "parameter step:" },
        { "/api/v1/jobs/01ARYZ6S41TSV4RRFFQ69G5FAV%00/cancel", "the path holds an escaped NUL" },
        { "/api/v1/jobs/01ARYZ6S41TSV4RRFFQ69G5FAV/artifacts/a/x%00.txt", "the path holds" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(nuls); i++) {
        CHECK(s_send(gw.port, out, sizeof out, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     "Content-Length: 0\r\nAuthorization: Bearer %s\r\n\r\n",
                     strstr(nuls[i].target, "cancel") ? "POST" : "GET", nuls[i].target, w) == 400);
        CHECK(strstr(out, nuls[i].says) != NULL);
    }
    /* a bad job id: 404 before the broker is asked */
    CHECK(s_send(gw.port, out, sizeof out, "GET /api/v1/jobs/nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                              "Authorization: Bearer %s\r\n\r\n", r) == 404);
    evr_gw_stop(&gw);
    evr_client_destroy(&gw.client);
    pthread_mutex_destroy(&gw.mu);
    evr_config_destroy(&gw.cfg);
    free(w);
    free(r);
}

/*  POST /demand bodies: each key checked, where and what said. */
static void
test_demand_parse(void)
{
    static const struct {
        const char *body, *why;     /* why: NULL when good */
    } cases[] = {
        { "", NULL },
        { "{\"labels\":[\"linux\",\"executor:process\"],\"count\":3,\"ttl\":60,"
          "\"reason\":\"ci\"}", NULL },
        { "[1]", "body: expected a JSON object" },
        { "{\"labels\":", "body:1:10: bad JSON: " },
        { "{\"reason\":\"a\\u0000b\"}", "body:1:20: bad JSON: a NUL character (\\u0000) is "
          "not allowed (send a JSON object" },
        { "{\"reason\":\"\xff\"}", "body:1:11: bad JSON: unable to decode byte 0xff" },
        { "{\"labels\":\"linux\"}", "body.labels: expected an array" },
        { "{\"labels\":[\"a b\"]}", "body.labels[0]: expected a label" },
        { "{\"labels\":[\"executor:\"]}", "body.labels[0]: expected a label" },
        { "{\"labels\":[\"a\",\"executor:podman\",\"executor:podman\"]}",
          "body.labels[2]: \"executor:podman\" repeats body.labels[1]" },
        { "{\"count\":0}", "body.count: expected a whole number from 1 to 64" },
        { "{\"count\":65}", "body.count: expected a whole number from 1 to 64" },
        { "{\"count\":\"2\"}", "body.count: expected a whole number" },
        { "{\"ttl\":3601}", "body.ttl: expected a whole number from 1 to 3600 (seconds)" },
        { "{\"colour\":1}", "body: unknown key \"colour\"" },
        { "{\"count\":1,\"count\":2}", "body:1:" },
        { "{\"reason\":7}", "body.reason: expected a string" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(cases); i++) {
        evr_msg_t m = { 0 };
        char why[512] = "";
        int r = evr_gw_parse_demand(cases[i].body, strlen(cases[i].body), &m, why, sizeof why);
        if (!cases[i].why)
            CHECK(r == 0);
        else {
            CHECK(r == -1);
            CHECK_CONTAINS(why, cases[i].why);
        }
        evr_msg_clear(&m);
    }
    evr_msg_t m = { 0 };
    char why[512];
    const char *b = "{\"labels\":[\"x\"],\"count\":3,\"ttl\":60,\"reason\":\"ci\"}";
    CHECK(evr_gw_parse_demand(b, strlen(b), &m, why, sizeof why) == 0);
    CHECK(m.labels.n == 1 && m.count == 3 && m.ttl == 60 && m.reason && !strcmp(m.reason, "ci"));
    evr_msg_clear(&m);
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    EVR_TEST_RUN(test_tokens);
    EVR_TEST_RUN(test_ttl);
    EVR_TEST_RUN(test_origin_form);
    EVR_TEST_RUN(test_secret);
    EVR_TEST_RUN(test_routes_openapi);
    EVR_TEST_RUN(test_route_match);
    EVR_TEST_RUN(test_parse_submit);
    EVR_TEST_RUN(test_parse_start);
    EVR_TEST_RUN(test_art_path);
    EVR_TEST_RUN(test_prom_label);
    EVR_TEST_RUN(test_hooks);
    EVR_TEST_RUN(test_demand_parse);
    EVR_TEST_RUN(test_idem_prune);
    EVR_TEST_RUN(test_limits);
    EVR_TEST_RUN(test_server);
    EVR_TEST_END();
}
