/*  evr_regauth.h: registry credentials as podman's REST API takes them.

    A pull's credentials travel in one request header: X-Registry-Auth
    holding base64url(JSON {"username", "password"}) for a pipeline's
    `registry_auth` secret ("user:password"), or X-Registry-Config holding
    base64url(JSON {registry: {"username", "password"}}) made from a
    containers-auth.json file (the runner's `registry_auth` setting), in
    which podman finds the image's registry itself.  The header text is
    the only copy made: the caller frees it and logs it nowhere.
*/
#ifndef EVR_REGAUTH_H_INCLUDED
#define EVR_REGAUTH_H_INCLUDED

#include "evr_common.h"

/*  Largest auth file read. */
#define EVR_REGAUTH_FILE_MAX (1u << 20)

/*  "X-Registry-Auth: ..." for userpass ("user:password", split at the
    first colon).  NULL when userpass has no colon or an empty user.
    Caller frees. */
char *evr_regauth_header_user(const char *userpass);

/*  "X-Registry-Config: ..." from the containers-auth.json file at path
    ({"auths": {"REGISTRY": {"auth": base64("user:password")}}}); *header
    NULL when it holds no usable entry.  EVR_ERR_CONFIG (err names the
    file and what is wrong) for a file that cannot be read, is larger
    than EVR_REGAUTH_FILE_MAX, or is not of that shape.  Caller frees
    *header. */
evr_rc_t evr_regauth_header_file(const char *path, char **header, evr_err_t *err);

#endif
