/*  test_regauth: the registry credential headers (evr_regauth.h): the
    base64url JSON podman decodes, and the containers-auth.json file of
    the runner's registry_auth setting, with its errors. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_regauth.h"
#include "evr_test.h"

/*  The JSON inside a header "Name: base64url"; NULL when it does not
    decode.  Caller frees (json_decref). */
static json_t *
s_decode(const char *header, const char *name)
{
    size_t nl = strlen(name);
    if (strncmp(header, name, nl) || strncmp(header + nl, ": ", 2))
        return NULL;
    const char *b = header + nl + 2;
    /* base64url -> base64 for the shell-free decode below */
    size_t n = strlen(b);
    if (n % 4)
        return NULL;   /* podman's decoder wants the padding */
    char *out = evr_malloc(n);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && b[i] != '='; i++) {
        const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *p = strchr(tab, b[i]);
        if (!p) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t) (p - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char) (acc >> bits & 0xff);
        }
    }
    json_t *j = json_loadb(out, o, 0, NULL);
    free(out);
    return j;
}

static void
test_user(void)
{
    /* lengths 1, 2, 0 mod 3: every padding */
    const char *cases[][3] = {
        { "u:p", "u", "p" },
        { "alice:s3cret", "alice", "s3cret" },
        { "bot:pa:ss:with:colons", "bot", "pa:ss:with:colons" },
        { "x:", "x", "" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(cases); i++) {
        char *h = evr_regauth_header_user(cases[i][0]);
        CHECK(h != NULL);
        json_t *j = h ? s_decode(h, "X-Registry-Auth") : NULL;
        CHECK(j != NULL);
        CHECK_STR(json_string_value(json_object_get(j, "username")), cases[i][1]);
        CHECK_STR(json_string_value(json_object_get(j, "password")), cases[i][2]);
        json_decref(j);
        free(h);
    }
    CHECK(evr_regauth_header_user("no-colon") == NULL);
    CHECK(evr_regauth_header_user(":nouser") == NULL);
}

static char *
s_file(const char *text)
{
    char *path = evr_strdup("/tmp/evr-regauth-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
        close(fd);
    }
    return path;
}

static void
test_file(void)
{
    /* "YWxpY2U6czNjcmV0" is base64("alice:s3cret"), "Ym90OnA6cQ==" of "bot:p:q" */
    char *path = s_file("{\"auths\": {\"127.0.0.1:5000\": {\"auth\": \"YWxpY2U6czNjcmV0\"},"
                        " \"quay.example\": {\"auth\": \"Ym90OnA6cQ==\"}}}");
    char *h = NULL;
    evr_err_t err;
    CHECK(evr_regauth_header_file(path, &h, &err) == EVR_OK);
    json_t *j = h ? s_decode(h, "X-Registry-Config") : NULL;
    CHECK(j != NULL);
    json_t *a = json_object_get(j, "127.0.0.1:5000"), *b = json_object_get(j, "quay.example");
    CHECK_STR(json_string_value(json_object_get(a, "username")), "alice");
    CHECK_STR(json_string_value(json_object_get(a, "password")), "s3cret");
    CHECK_STR(json_string_value(json_object_get(b, "username")), "bot");
    CHECK_STR(json_string_value(json_object_get(b, "password")), "p:q");
    json_decref(j);
    free(h);
    unlink(path);
    free(path);

    /* no auths: no header, no error */
    path = s_file("{\"credHelpers\": {}}");
    h = (char *) 1;
    CHECK(evr_regauth_header_file(path, &h, &err) == EVR_OK && h == NULL);
    unlink(path);
    free(path);

    struct { const char *text, *want; } bad[] = {
        { "{\"auths\": ", "line 1" },
        { "[1]", "expected a JSON object" },
        { "{\"auths\": []}", "\"auths\": expected an object of registries" },
        { "{\"auths\": {\"r.example\": {\"auth\": \"!!\"}}}",
          "\"r.example\": expected {\"auth\": base64 of user:password}" },
        { "{\"auths\": {\"r.example\": {\"auth\": \"bm9jb2xvbg==\"}}}",   /* "nocolon" */
          "\"r.example\": expected" },
        { "{\"auths\": {\"r.example\": {}}}", "\"r.example\": expected" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        path = s_file(bad[i].text);
        h = NULL;
        CHECK(evr_regauth_header_file(path, &h, &err) == EVR_ERR_CONFIG);
        CHECK(h == NULL);
        CHECK_CONTAINS(err.msg, path);
        CHECK_CONTAINS(err.msg, bad[i].want);
        unlink(path);
        free(path);
    }
    CHECK(evr_regauth_header_file("/nonexistent/auth.json", &h, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "registry_auth /nonexistent/auth.json: No such file or directory");
}

int
main(void)
{
    EVR_TEST_RUN(test_user);
    EVR_TEST_RUN(test_file);
    EVR_TEST_END();
}
