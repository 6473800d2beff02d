/*  evr_curve.h: ZeroMQ CURVE on tcp:// endpoints (DESIGN §10).

    Keys are czmq certificates: a file PATH holds the public key, PATH_secret
    the pair (mode 0600).  The broker keeps its pair in CURVE_DIR/broker.cert
    and admits a peer only when the peer's public key is in a certificate in
    the directory of the socket's role: CURVE_DIR/runners/ on the runner
    endpoint, CURVE_DIR/clients/ on the client and event endpoints.  The
    pairs runner.cert and client.cert in the broker's own CURVE_DIR (a runner
    or client on the same host with the same state directory) are admitted
    in their role too.  Only files ending .cert directly in those
    directories count; they are read again at a handshake when their
    directory changed (so adding or removing one counts from the next
    connection on) or a second after they were last read (a file
    rewritten in place).  ipc:// endpoints use
    no CURVE.
*/
#ifndef EVR_CURVE_H_INCLUDED
#define EVR_CURVE_H_INCLUDED

#include <czmq.h>

#include "evr_common.h"
#include "evr_config.h"

/*  Whether an endpoint needs CURVE (tcp://). */
bool evr_curve_needed(const char *endpoint);

/*  The defaults of a runner's or client's settings: cert_key (e.g.
    "runner_cert") STATE_DIR/curve/cert_name, broker_key
    STATE_DIR/curve/broker.cert (the broker's own, on its host). */
void evr_curve_defaults(evr_config_t *cfg, const char *cert_key, const char *cert_name);

/*  The largest key file read, in bytes (czmq writes under 1 KiB): a
    larger one is no certificate (its whole is read at each handshake). */
#define EVR_CURVE_CERT_MAX 65536

/*  A client's keys, Z85. */
typedef struct {
    char pub[41], sec[41], server[41];
} evr_curve_keys_t;

/*  Client side (runners, evrun-cli, evrun-tail): the key pair at
    cert_path (made, with its directory, when missing: *made says so; a
    public certificate without its _secret, or a secret that does not
    match its public key, is an error naming the file) and the broker's
    public key (server_key: a file holding its certificate, else its 40
    characters of Z85). */
evr_rc_t evr_curve_load(const char *cert_path, const char *server_key, evr_curve_keys_t *keys,
                        bool *made, evr_err_t *err);
/*  Sets keys on sock, before it connects. */
void evr_curve_apply(const evr_curve_keys_t *keys, zsock_t *sock);

/*  The key pair at path, loaded; made (0600, in a directory made 0700)
    when missing (*made says so; two processes making it at once share
    one).  NULL with err (EVR_ERR_CONFIG, EVR_ERR_IO) naming the file when
    it is unreadable, half a pair or cannot be written, or when its secret
    is not a regular file of the effective uid's with no group or other
    permission (links followed).  Caller owns the
    result (zcert_destroy). */
zcert_t *evr_curve_pair(const char *path, bool *made, evr_err_t *err);

#endif
