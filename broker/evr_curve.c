/*  evr_curve.c: CURVE keys and the broker's ZAP handler; see evr_curve.h.

    czmq does the key files (zcert) and the directories of admitted keys
    (zcertstore, which rereads a directory that changed); the handler here
    only tells the two roles apart, which czmq's zauth cannot (one key set
    for every socket).  The ZAP exchange is RFC 27.
*/
#include <string.h>
#include <sys/stat.h>

#include "evr_curve.h"

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_ROLES 2

static const char *const s_roles[S_ROLES] = { "runners", "clients" };
static const char *const s_own[S_ROLES] = { "runner.cert", "client.cert" };

struct evr_zap {
    zsock_t *sock;
    zcert_t *cert;
    char *dir, *cert_path;
    zcertstore_t *stores[S_ROLES];
};

bool
evr_curve_needed(const char *endpoint)
{
    return endpoint && strncmp(endpoint, "tcp://", 6) == 0;
}

/*  The pair at path; made (0600, its directory 0700) when missing. */
static zcert_t *
s_pair(const char *path, bool *made, evr_err_t *err)
{
    char *secret = evr_asprintf("%s_secret", path);
    struct stat sb;
    zcert_t *cert = NULL;
    *made = false;
    if (stat(secret, &sb) == 0) {
        cert = zcert_load(path);
        if (!cert)
            evr_err_set(err, EVR_ERR_CONFIG, "key pair %s: not a czmq certificate", secret);
        free(secret);
        return cert;
    }
    char *dir = evr_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (evr_mkdirs(dir, err)) {
            free(dir);
            free(secret);
            return NULL;
        }
        chmod(dir, 0700);
    }
    free(dir);
    cert = zcert_new();
    zcert_set_meta(cert, "created-by", "evrun");
    if (zcert_save(cert, path) != 0) {
        evr_err_set(err, EVR_ERR_IO, "key pair %s: cannot write it", path);
        zcert_destroy(&cert);
    }
    else
        *made = true;
    free(secret);
    return cert;
}

/*  The broker's public key from a Z85 text or a certificate file. */
static evr_rc_t
s_server_key(const char *spec, char out[41], evr_err_t *err)
{
    uint8_t bin[32];
    if (!spec || !*spec)
        return evr_err_set(err, EVR_ERR_CONFIG, "a tcp:// endpoint needs the broker's public "
                           "key: broker_key (--broker-key FILE|KEY), its certificate being the "
                           "broker's STATE/curve/broker.cert");
    struct stat sb;
    bool file = stat(spec, &sb) == 0;
    /* Z85 has '/' and '.' too: a key is what is not a file */
    if (!file && strlen(spec) == 40 && zmq_z85_decode(bin, spec)) {
        memcpy(out, spec, 41);
        return EVR_OK;
    }
    if (!file)
        return evr_err_set(err, EVR_ERR_CONFIG, "the broker's public key (broker_key, "
                           "--broker-key) %s: no such file; a tcp:// endpoint needs it: copy the "
                           "broker's STATE/curve/broker.cert there, or give its 40-character key",
                           spec);
    zcert_t *cert = zcert_load(spec);
    if (!cert)
        return evr_err_set(err, EVR_ERR_CONFIG, "the broker's public key (broker_key) %s: not "
                           "a czmq certificate", spec);
    snprintf(out, 41, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
    return EVR_OK;
}

evr_rc_t
evr_curve_client(zsock_t *sock, const char *cert_path, const char *server_key, bool *made,
                 evr_err_t *err)
{
    char key[41];
    evr_rc_t rc = s_server_key(server_key, key, err);
    if (rc)
        return rc;
    zcert_t *cert = s_pair(cert_path, made, err);
    if (!cert)
        return EVR_ERR_CONFIG;
    zcert_apply(cert, sock);
    zsock_set_curve_serverkey(sock, key);
    zcert_destroy(&cert);
    return EVR_OK;
}

/* ------------------------------------------------------------ the broker */

evr_rc_t
evr_zap_new(const char *curve_dir, bool *made, evr_zap_t **out, evr_err_t *err)
{
    *out = NULL;
    evr_zap_t *z = evr_calloc(1, sizeof *z);
    z->dir = evr_strdup(curve_dir);
    z->cert_path = evr_asprintf("%s/broker.cert", curve_dir);
    z->cert = s_pair(z->cert_path, made, err);
    if (!z->cert) {
        evr_zap_destroy(&z);
        return EVR_ERR_CONFIG;
    }
    for (int i = 0; i < S_ROLES; i++) {
        char *d = evr_asprintf("%s/%s", curve_dir, s_roles[i]);
        mkdir(d, 0700);
        z->stores[i] = zcertstore_new(d);
        free(d);
    }
    z->sock = zsock_new(ZMQ_REP);
    /* a handler closed just before (in this process) leaves the endpoint
       bound until ZeroMQ's reaper has run */
    int bound = -1;
    for (int i = 0; z->sock && i < 100 && (bound = zsock_bind(z->sock, S_ZAP_ENDPOINT)) < 0; i++)
        zclock_sleep(10);
    if (!z->sock || bound < 0) {
        evr_zap_destroy(&z);
        return evr_err_set(err, EVR_ERR_IO, "the ZAP handler cannot bind %s", S_ZAP_ENDPOINT);
    }
    *out = z;
    return EVR_OK;
}

void
evr_zap_destroy(evr_zap_t **self_p)
{
    evr_zap_t *z = *self_p;
    if (!z)
        return;
    zsock_destroy(&z->sock);
    zcert_destroy(&z->cert);
    for (int i = 0; i < S_ROLES; i++)
        zcertstore_destroy(&z->stores[i]);
    free(z->dir);
    free(z->cert_path);
    free(z);
    *self_p = NULL;
}

void
evr_zap_serve(evr_zap_t *self, zsock_t *sock, const char *role)
{
    zsock_set_zap_domain(sock, role);
    zcert_apply(self->cert, sock);
    zsock_set_curve_server(sock, 1);
}

zsock_t *
evr_zap_socket(evr_zap_t *self)
{
    return self->sock;
}

const char *
evr_zap_public(const evr_zap_t *self)
{
    return zcert_public_txt(self->cert);
}

const char *
evr_zap_cert_path(const evr_zap_t *self)
{
    return self->cert_path;
}

/*  Whether key (Z85) is admitted in role i. */
static bool
s_admitted(evr_zap_t *z, int i, const char *key)
{
    if (zcertstore_lookup(z->stores[i], key))
        return true;
    char *own = evr_asprintf("%s/%s", z->dir, s_own[i]);
    struct stat sb;
    bool ok = false;
    if (stat(own, &sb) == 0) {
        zcert_t *c = zcert_load(own);
        ok = c && strcmp(zcert_public_txt(c), key) == 0;
        zcert_destroy(&c);
    }
    free(own);
    return ok;
}

/*  One request: [version, request id, domain, address, identity,
    mechanism, credentials...]; the answer: [version, request id, status
    code, status text, user id, metadata]. */
static void
s_answer(evr_zap_t *z, zmsg_t *req, void (*log)(void *, const char *), void *arg)
{
    char *version = zmsg_popstr(req), *id = zmsg_popstr(req), *domain = zmsg_popstr(req);
    char *address = zmsg_popstr(req), *identity = zmsg_popstr(req), *mech = zmsg_popstr(req);
    zframe_t *cred = zmsg_pop(req);
    char key[41] = "";
    int role = -1;
    for (int i = 0; i < S_ROLES && domain; i++)
        if (strcmp(domain, s_roles[i]) == 0)
            role = i;
    bool curve = mech && strcmp(mech, "CURVE") == 0 && cred && zframe_size(cred) == 32;
    if (curve)
        zmq_z85_encode(key, zframe_data(cred), 32);
    bool ok = curve && role >= 0 && s_admitted(z, role, key);
    if (!ok && log) {
        char line[512];
        snprintf(line, sizeof line, "refused a peer at %s on the %s endpoint: key %s is not in "
                 "%s/%s/ (copy the peer's public certificate there to admit it)",
                 address ? address : "?", role == 0 ? "runner" : "client/events",
                 *key ? key : "(none)", z->dir, role >= 0 ? s_roles[role] : "?");
        log(arg, line);
    }
    zmsg_t *ans = zmsg_new();
    zmsg_addstr(ans, "1.0");
    zmsg_addstr(ans, id ? id : "");
    zmsg_addstr(ans, ok ? "200" : "400");
    zmsg_addstr(ans, ok ? "OK" : "key not admitted");
    zmsg_addstr(ans, ok ? key : "");
    zmsg_addstr(ans, "");
    zmsg_send(&ans, z->sock);
    zframe_destroy(&cred);
    free(version);
    free(id);
    free(domain);
    free(address);
    free(identity);
    free(mech);
}

void
evr_zap_handle(evr_zap_t *self, void (*log)(void *arg, const char *line), void *arg)
{
    for (int n = 0; n < 64 && (zsock_events(self->sock) & ZMQ_POLLIN); n++) {
        zmsg_t *req = zmsg_recv(self->sock);
        if (!req)
            break;
        s_answer(self, req, log, arg);
        zmsg_destroy(&req);
    }
}
