/*  evr_zap.h: the broker's side of CURVE (DESIGN §10): its key pair and
    a ZAP handler that admits a peer only when the peer's public key is in
    a certificate in the directory of the socket's role (see evr_curve.h
    for the directories and the files).
*/
#ifndef EVR_ZAP_H_INCLUDED
#define EVR_ZAP_H_INCLUDED

#include "evr_curve.h"

typedef struct evr_zap evr_zap_t;

/*  Makes curve_dir and its runners/ and clients/ (0700) and the pair
    broker.cert when missing and binds the ZAP handler; *made says whether
    the pair is new.  EVR_ERR_CONFIG when one of those directories is not
    private (evr_paths_dir) or the pair is refused (evr_curve_pair). */
evr_rc_t evr_zap_new(const char *curve_dir, bool *made, evr_zap_t **out, evr_err_t *err);
void evr_zap_destroy(evr_zap_t **self_p);

/*  Makes sock a CURVE server whose peers need a key of role ("runners" or
    "clients"); before it binds. */
void evr_zap_serve(evr_zap_t *self, zsock_t *sock, const char *role);

/*  The handler's socket, to poll. */
zsock_t *evr_zap_socket(evr_zap_t *self);

/*  Answers the ZAP requests waiting; each refusal is passed to log. */
void evr_zap_handle(evr_zap_t *self, void (*log)(void *arg, const char *line), void *arg);

/*  Whether key (Z85) is admitted in role ("runners" or "clients") now. */
bool evr_zap_admitted(evr_zap_t *self, const char *role, const char *key);

/*  The broker's public key (Z85) and the path of its certificate. */
const char *evr_zap_public(const evr_zap_t *self);
const char *evr_zap_cert_path(const evr_zap_t *self);

#endif
