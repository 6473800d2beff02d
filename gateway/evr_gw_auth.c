/*  evr_gw_auth.c: see evr_gw_auth.h.

    The check does not trust the library with the algorithm: it reads the
    header itself (alg must be exactly "HS256") and verifies the HMAC with
    libsodium, comparing in constant time (sodium_memcmp); only then does
    libjwt decode the claims (verifying again with the same key).
*/
#include "evr_gw_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_paths.h"

#define S_SKEW_S 60     /* iat may be this far in the future (clocks differ) */

/* -------------------------------------------------------------- secret */

static evr_rc_t
s_secret_make(const char *path, evr_err_t *err)
{
    uint8_t raw[32];
    char hex[65];
    if (sodium_init() < 0)
        return evr_err_set(err, EVR_ERR_IO, "libsodium cannot start");
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    int fd = evr_paths_open(path, O_WRONLY | O_CREAT | O_EXCL, err);
    if (fd < 0)
        return errno == EEXIST ? EVR_OK : EVR_ERR_IO;     /* made meanwhile: read it */
    ssize_t n = write(fd, hex, 64);
    n = n == 64 && write(fd, "\n", 1) == 1 ? n : -1;
    close(fd);
    if (n != 64) {
        unlink(path);
        return evr_err_write(err, path, errno);
    }
    return EVR_OK;
}

evr_rc_t
evr_gw_secret_load(const char *state_dir, bool make, evr_gw_secret_t *out, evr_err_t *err)
{
    char *path = evr_asprintf("%s/gateway/jwt.secret", state_dir);
    evr_rc_t rc = evr_gw_secret_file(path, make, out, err);
    free(path);
    return rc;
}

evr_rc_t
evr_gw_secret_file(const char *path, bool make, evr_gw_secret_t *out, evr_err_t *err)
{
    memset(out, 0, sizeof *out);
    char *dir = evr_strdup(path);
    *(strrchr(dir, '/') ? strrchr(dir, '/') : dir) = '\0';
    evr_rc_t rc = evr_paths_dir(dir, make, err);
    if (rc == EVR_ERR_NOTFOUND)
        rc = evr_err_set(err, EVR_ERR_NOTFOUND, "%s does not exist: start evrun-gateway (or "
                         "evrun-cli up) once with this state directory", path);
    if (!rc && make && access(path, F_OK) != 0)
        rc = s_secret_make(path, err);
    int fd = rc ? -1 : evr_paths_open(path, O_RDONLY, err);
    struct stat st;
    if (!rc && fd < 0)
        rc = errno == ENOENT ? evr_err_set(err, EVR_ERR_NOTFOUND, "%s does not exist: start "
                                           "evrun-gateway once with this state directory", path)
                             : EVR_ERR_IO;
    else if (!rc && (fstat(fd, &st) || (st.st_mode & 077)))
        rc = evr_err_set(err, EVR_ERR_CONFIG, "%s can be read by others (mode %o): make it "
                         "0600 (chmod 600 %s) and issue new tokens", path,
                         (unsigned) (st.st_mode & 0777), path);
    if (!rc) {
        ssize_t n = read(fd, out->key, EVR_GW_SECRET_MAX + 1);
        while (n > 0 && (out->key[n - 1] == '\n' || out->key[n - 1] == '\r'))
            n--;
        if (n <= 0 || n > EVR_GW_SECRET_MAX)
            rc = evr_err_set(err, EVR_ERR_CONFIG, "%s: expected 1 to %d bytes of secret (delete "
                             "it to have a new one made)", path, EVR_GW_SECRET_MAX);
        else {
            out->key[n] = '\0';
            out->len = (size_t) n;
        }
    }
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/* --------------------------------------------------------------- issue */

char *
evr_gw_token_issue(const evr_gw_secret_t *s, const char *sub, evr_gw_scope_t scope,
                   uint64_t ttl_s, uint64_t now_s, evr_err_t *err)
{
    jwt_t *jwt = NULL;
    char *tok = NULL;
    if (jwt_new(&jwt) || jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *) s->key,
                                     (int) s->len)
        || jwt_add_grant(jwt, "sub", sub)
        || jwt_add_grant_int(jwt, "iat", (long) now_s)
        || jwt_add_grant_int(jwt, "exp", (long) (now_s + ttl_s))
        || jwt_add_grant(jwt, "scope", scope == EVR_GW_SCOPE_WRITE ? "write" : "read")
        || !(tok = jwt_encode_str(jwt)))
        evr_err_set(err, EVR_ERR_IO, "cannot make a token (libjwt failed)");
    jwt_free(jwt);
    return tok;
}

/* --------------------------------------------------------------- check */

/*  The JSON of one base64url segment (len bytes at seg), or NULL with
    why in *jerr (when given): not base64url, or jansson's reason. */
static json_t *
s_segment_json(const char *seg, size_t len, json_error_t *jerr)
{
    size_t cap = len, n = 0;
    uint8_t *bin = evr_malloc(cap + 1);
    json_t *js = NULL;
    json_error_t e;
    snprintf(e.text, sizeof e.text, "not base64url");
    if (!sodium_base642bin(bin, cap, seg, len, NULL, &n, NULL,
                           sodium_base64_VARIANT_URLSAFE_NO_PADDING))
        js = json_loadb((const char *) bin, n, JSON_REJECT_DUPLICATES, &e);
    free(bin);
    if (jerr)
        *jerr = e;
    return js;
}

/*  Whether sig (len bytes of base64url) is the HMAC-SHA256 of signed
    (slen bytes) under s: compared in constant time. */
static bool
s_sig_ok(const evr_gw_secret_t *s, const char *signed_, size_t slen, const char *sig, size_t len)
{
    crypto_auth_hmacsha256_state st;
    uint8_t mac[crypto_auth_hmacsha256_BYTES], got[crypto_auth_hmacsha256_BYTES + 1];
    size_t n = 0;
    if (sodium_base642bin(got, sizeof got, sig, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING)
        || n != sizeof mac)
        return false;
    crypto_auth_hmacsha256_init(&st, (const uint8_t *) s->key, s->len);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *) signed_, slen);
    crypto_auth_hmacsha256_final(&st, mac);
    return sodium_memcmp(mac, got, sizeof mac) == 0;
}

/*  The NumericDate claim name of claims into *v (*has: it is there);
    EVR_ERR_STATE when it is there but no integer (RFC 7519 2: seconds
    since the epoch; a fraction is refused too). */
static evr_rc_t
s_time_claim(const json_t *claims, const char *name, long *v, bool *has, evr_err_t *err)
{
    json_t *c = json_object_get(claims, name);
    *has = c != NULL;
    if (c && !json_is_integer(c))
        return evr_err_set(err, EVR_ERR_STATE, "the token's %s: expected an integer (seconds "
                           "since the epoch; make one with evrun-cli token)", name);
    *v = c ? (long) json_integer_value(c) : 0;
    return EVR_OK;
}

/*  The claims of a verified token: exp, iat, nbf, scope; one with an
    aud claim is refused (RFC 7519: the gateway names no audience). */
static evr_rc_t
s_claims(const evr_gw_secret_t *s, const char *token, uint64_t now_s, evr_gw_scope_t *scope,
         evr_err_t *err)
{
    jwt_t *jwt = NULL;
    evr_rc_t rc = EVR_OK;
    if (jwt_decode(&jwt, token, (const unsigned char *) s->key, (int) s->len)
        || jwt_get_alg(jwt) != JWT_ALG_HS256) {
        jwt_free(jwt);
        return evr_err_set(err, EVR_ERR_STATE, "the token cannot be decoded");
    }
    long exp = 0, iat = 0, nbf = 0;
    bool has_exp, has_iat, has_nbf;
    char *all = jwt_get_grants_json(jwt, NULL);
    json_t *claims = all ? json_loads(all, 0, NULL) : NULL;
    free(all);
    char *aud = jwt_get_grants_json(jwt, "aud");
    const char *sc = jwt_get_grant(jwt, "scope");
    if (aud)    /* RFC 7519 4.1.3: the gateway is no audience a token can name */
        rc = evr_err_set(err, EVR_ERR_STATE, "the token names an audience (aud %.64s): it was "
                         "made for another service (make one for evrun with evrun-cli token)",
                         aud);
    else if ((rc = s_time_claim(claims, "exp", &exp, &has_exp, err))
             || (rc = s_time_claim(claims, "iat", &iat, &has_iat, err))
             || (rc = s_time_claim(claims, "nbf", &nbf, &has_nbf, err)))
        ;
    else if (!has_exp)
        rc = evr_err_set(err, EVR_ERR_STATE, "the token has no exp claim (make one with "
                         "evrun-cli token)");
    else if (exp <= 0)
        rc = evr_err_set(err, EVR_ERR_STATE, "the token expired: its exp (%ld) is not after "
                         "the epoch (make a new one with evrun-cli token)", exp);
    else if ((uint64_t) exp <= now_s)
        rc = evr_err_set(err, EVR_ERR_STATE, "the token expired %llu s ago (make a new one "
                         "with evrun-cli token)", (unsigned long long) (now_s - (uint64_t) exp));
    else if (has_iat && iat > 0 && (uint64_t) iat > now_s + S_SKEW_S)
        rc = evr_err_set(err, EVR_ERR_STATE, "the token is issued in the future (iat)");
    else if (has_nbf && nbf > 0 && (uint64_t) nbf > now_s + S_SKEW_S)
        rc = evr_err_set(err, EVR_ERR_STATE, "the token is not valid before %ld (nbf), %llu s "
                         "from now", nbf, (unsigned long long) ((uint64_t) nbf - now_s));
    else if (!sc || (strcmp(sc, "read") && strcmp(sc, "write")))
        rc = evr_err_set(err, EVR_ERR_STATE, "the token's scope claim must be \"read\" or "
                         "\"write\"");
    else
        *scope = strcmp(sc, "write") ? EVR_GW_SCOPE_READ : EVR_GW_SCOPE_WRITE;
    free(aud);
    json_decref(claims);
    jwt_free(jwt);
    return rc;
}

evr_rc_t
evr_gw_token_check(const evr_gw_secret_t *s, const char *token, uint64_t now_s,
                   evr_gw_scope_t *scope, evr_err_t *err)
{
    *scope = EVR_GW_SCOPE_NONE;
    size_t len = token ? strlen(token) : 0;
    if (!len)
        return evr_err_set(err, EVR_ERR_STATE, "no bearer token: send the header "
                           "\"Authorization: Bearer TOKEN\" (make one with evrun-cli token)");
    if (len > EVR_GW_TOKEN_MAX)
        return evr_err_set(err, EVR_ERR_STATE, "the token is over %d bytes", EVR_GW_TOKEN_MAX);
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    /* 64 hex digits: a hook token, or a secret file pasted for a token */
    bool hex64 = len == 64 && strspn(token, "0123456789abcdefABCDEF") == 64;
    if (!d1 || !d2 || strchr(d2 + 1, '.') || d1 == token || d2 == d1 + 1)
        return evr_err_set(err, EVR_ERR_STATE, "malformed token: expected three base64url "
                           "parts separated by dots%s (make one with evrun-cli token)",
                           hex64 ? "; 64 hex digits are a hook token (evrun-cli hook-token, "
                                   "for POST /hooks/NAME alone) or a secret file's content, "
                                   "not a token" : "");
    json_t *hdr = s_segment_json(token, (size_t) (d1 - token), NULL);
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    bool hs256 = alg && !strcmp(alg, "HS256"), crit = json_object_get(hdr, "crit") != NULL;
    /* libjwt refuses a typ other than JWT (in any case) as "cannot be
       decoded": said here, with what to send (RFC 7519 5.1) */
    const char *typ = json_string_value(json_object_get(hdr, "typ"));
    bool typ_other = typ && strcasecmp(typ, "JWT");
    char typ_bad[40] = "";
    if (typ_other)
        snprintf(typ_bad, sizeof typ_bad, "%s", typ);
    json_decref(hdr);
    if (!hs256)
        return evr_err_set(err, EVR_ERR_STATE, "the token's header must be JSON with alg "
                           "HS256 (alg none and other algorithms are refused)");
    if (typ_other)
        return evr_err_set(err, EVR_ERR_STATE, "the token's header has typ \"%s\": expected "
                           "JWT, or no typ (make a token with evrun-cli token)", typ_bad);
    if (crit)   /* RFC 7515 4.1.11: extensions the gateway must understand; it knows none */
        return evr_err_set(err, EVR_ERR_STATE, "the token's header has crit: it names "
                           "extensions this gateway does not understand (RFC 7515 4.1.11; "
                           "make a token with evrun-cli token)");
    if (!s_sig_ok(s, token, (size_t) (d2 - token), d2 + 1, len - (size_t) (d2 + 1 - token)))
        return evr_err_set(err, EVR_ERR_STATE, "the token's signature does not match this "
                           "gateway's secret (STATE/gateway/jwt.secret)");
    /* libjwt keeps one of two claims of a name: which one, a verifier
       behind us may read otherwise (two scope keys) */
    json_error_t jerr;
    json_t *payload = s_segment_json(d1 + 1, (size_t) (d2 - d1 - 1), &jerr);
    bool parsed = payload != NULL, one = json_is_object(payload);
    json_decref(payload);
    if (!one)   /* jansson's reason: e.g. "too big integer", "duplicate object key" */
        return evr_err_set(err, EVR_ERR_STATE, "the token's payload must be one JSON object "
                           "naming each claim once, its numbers within 64 bits (%s)",
                           parsed ? "not an object" : jerr.text);
    return s_claims(s, token, now_s, scope, err);
}

bool
evr_gw_ttl_parse(const char *s, uint64_t *secs)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = !*end ? 1 : !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60
                 : !strcmp(end, "h") ? 3600 : !strcmp(end, "d") ? 86400 : 0;
    if (errno || !mul || !v || v > EVR_GW_TTL_MAX / mul)
        return false;
    *secs = v * mul;
    return true;
}
