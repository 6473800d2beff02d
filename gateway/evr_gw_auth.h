/*  evr_gw_auth.h: the gateway's bearer tokens (JWT, HS256).

    Every /api/ request carries "Authorization: Bearer TOKEN".  A token is
    a JWT signed with HMAC-SHA256 under the secret in
    STATE/gateway/jwt.secret (64 hex digits, 0600, made when missing);
    `evrun-cli token` issues them (same code) with the claims sub, iat,
    exp and scope ("read" or "write").  A check accepts only alg HS256
    (never "none" or another algorithm), compares the signature in
    constant time, and refuses a token with a claim named twice, expired,
    issued in the future (beyond a minute of clock skew), without a valid
    scope, with an aud or an nbf to come; sub and iat may be left out
    (nothing is decided by them: a token made elsewhere with the secret
    needs only exp and scope).
*/
#ifndef EVR_GW_AUTH_H_INCLUDED
#define EVR_GW_AUTH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evr_common.h"

#define EVR_GW_SECRET_MAX 256       /* bytes of a secret file */
#define EVR_GW_TOKEN_MAX 4096       /* longest token accepted */
#define EVR_GW_TTL_MAX (366ull * 24 * 3600)

typedef enum { EVR_GW_SCOPE_NONE = 0, EVR_GW_SCOPE_READ, EVR_GW_SCOPE_WRITE } evr_gw_scope_t;

typedef struct {
    char key[EVR_GW_SECRET_MAX + 1];
    size_t len;
} evr_gw_secret_t;

/*  The secret of state_dir: STATE/gateway/jwt.secret, made (32 random
    bytes as hex, mode 0600, the directory 0700) when missing and make.
    A file readable by group or others, empty, or over
    EVR_GW_SECRET_MAX bytes is refused (EVR_ERR_CONFIG naming it). */
evr_rc_t evr_gw_secret_load(const char *state_dir, bool make, evr_gw_secret_t *out,
                            evr_err_t *err);

/*  The same for the secret file at path: made (its directory too, 0700)
    when missing and make; its directory must be private (evr_paths_dir). */
evr_rc_t evr_gw_secret_file(const char *path, bool make, evr_gw_secret_t *out, evr_err_t *err);

/*  A new token for sub with scope, valid ttl_s seconds from now_s (unix
    seconds); caller frees.  NULL with err set when libjwt fails. */
char *evr_gw_token_issue(const evr_gw_secret_t *s, const char *sub, evr_gw_scope_t scope,
                         uint64_t ttl_s, uint64_t now_s, evr_err_t *err);

/*  Checks token at now_s: EVR_OK with *scope set, or EVR_ERR_STATE with
    err saying why (for the 401's message; the message never echoes the
    token). */
evr_rc_t evr_gw_token_check(const evr_gw_secret_t *s, const char *token, uint64_t now_s,
                            evr_gw_scope_t *scope, evr_err_t *err);

/*  "90s", "2m", "1h", "7d" or plain seconds into *secs (1..EVR_GW_TTL_MAX);
    false otherwise. */
bool evr_gw_ttl_parse(const char *s, uint64_t *secs);

#endif
