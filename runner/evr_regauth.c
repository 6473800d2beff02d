/*  evr_regauth.c: base64 both ways and the two credential headers. */
#include "evr_regauth.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  base64url with padding, as podman's decoder (Go's URLEncoding) wants. */
static char *
s_b64url(const char *in, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = evr_malloc(n / 3 * 4 + 5), *o = out;
    const unsigned char *p = (const unsigned char *) in;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = tab[v >> 6 & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < n ? (uint32_t) p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/*  Standard base64 (padding optional) into a NUL-terminated string; NULL
    for anything else or a NUL byte inside. */
static char *
s_unb64(const char *in)
{
    size_t n = strlen(in);
    char *out = evr_malloc(n / 4 * 3 + 4);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    /* both alphabets: + and - are 62, / and _ are 63 */
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i++) {
        char c = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
        const char *at = c ? strchr(std, c) : NULL;
        if (c == '=' && i + 2 >= n)
            break;   /* padding */
        if (!at) {
            free(out);
            return NULL;
        }
        int v = (int) (at - std);
        acc = acc << 6 | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char) (acc >> bits & 0xff);
        }
    }
    out[o] = '\0';
    if (strlen(out) != o) {
        free(out);
        return NULL;
    }
    return out;
}

/*  {"username": u, "password": p} of "u:p"; NULL without a colon or user. */
static json_t *
s_creds(const char *userpass)
{
    const char *colon = strchr(userpass, ':');
    if (!colon || colon == userpass)
        return NULL;
    return json_pack("{s:s%, s:s}", "username", userpass, (size_t) (colon - userpass),
                     "password", colon + 1);
}

static char *
s_header(const char *name, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return NULL;
    char *b = s_b64url(text, strlen(text));
    memset(text, 0, strlen(text));
    free(text);
    char *h = evr_asprintf("%s: %s", name, b);
    free(b);
    return h;
}

char *
evr_regauth_header_user(const char *userpass)
{
    json_t *c = s_creds(userpass);
    return c ? s_header("X-Registry-Auth", c) : NULL;
}

evr_rc_t
evr_regauth_header_file(const char *path, char **header, evr_err_t *err)
{
    *header = NULL;
    FILE *fp = fopen(path, "rbe");
    if (!fp)
        return evr_err_set(err, EVR_ERR_CONFIG, "registry_auth %s: %s (the runner's "
                           "registry_auth setting names a containers-auth.json file)", path,
                           strerror(errno));
    char *buf = evr_malloc(EVR_REGAUTH_FILE_MAX + 1);
    size_t n = fread(buf, 1, EVR_REGAUTH_FILE_MAX + 1, fp);
    bool failed = ferror(fp) != 0;
    fclose(fp);
    evr_rc_t rc = EVR_OK;
    json_t *map = NULL, *doc = NULL;
    json_error_t je;
    if (failed)
        rc = evr_err_set(err, EVR_ERR_CONFIG, "registry_auth %s: read error", path);
    else if (n > EVR_REGAUTH_FILE_MAX)
        rc = evr_err_set(err, EVR_ERR_CONFIG, "registry_auth %s: larger than %u bytes", path,
                         EVR_REGAUTH_FILE_MAX);
    else if (!(doc = json_loadb(buf, n, 0, &je)) || !json_is_object(doc))
        rc = evr_err_set(err, EVR_ERR_CONFIG, "registry_auth %s: line %d: %s", path,
                         doc ? 1 : je.line, doc ? "expected a JSON object" : je.text);
    json_t *auths = doc ? json_object_get(doc, "auths") : NULL;
    if (!rc && auths && !json_is_object(auths))
        rc = evr_err_set(err, EVR_ERR_CONFIG, "registry_auth %s: \"auths\": expected an "
                         "object of registries", path);
    const char *reg;
    json_t *entry;
    if (!rc && auths) {
        map = json_object();
        json_object_foreach(auths, reg, entry) {
            const char *a = json_string_value(json_object_get(entry, "auth"));
            char *up = a ? s_unb64(a) : NULL;
            json_t *c = up ? s_creds(up) : NULL;
            if (up)
                memset(up, 0, strlen(up));
            free(up);
            if (!c) {
                rc = evr_err_set(err, EVR_ERR_CONFIG, "registry_auth %s: \"%s\": expected "
                                 "{\"auth\": base64 of user:password}", path, reg);
                break;
            }
            json_object_set_new(map, reg, c);
        }
    }
    if (!rc && map && json_object_size(map)) {
        *header = s_header("X-Registry-Config", map);
        map = NULL;
    }
    json_decref(map);
    json_decref(doc);
    memset(buf, 0, n < EVR_REGAUTH_FILE_MAX ? n : EVR_REGAUTH_FILE_MAX);
    free(buf);
    return rc;
}
