/*  evr_curve.c: CURVE keys and the broker's ZAP handler; see evr_curve.h.

    czmq reads and writes the key files (zcert); the handler here tells the
    two roles apart, which czmq's zauth cannot (one key set for every
    socket), and reads the admitted certificates at each handshake (czmq's
    zcertstore misses a file replaced by one of the same size and an older
    time, and takes files of any name).  The ZAP exchange is RFC 27.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_curve.h"

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_ROLES 2

static const char *const s_roles[S_ROLES] = { "runners", "clients" };
static const char *const s_own[S_ROLES] = { "runner.cert", "client.cert" };

/*  Refusals logged once per key in this many ns: a stranger minting keys
    fills no disk. */
#define S_LOG_EVERY (60ull * 1000000000ull)
#define S_LOGGED 32

struct evr_zap {
    zsock_t *sock;
    zcert_t *cert;
    char *dir, *cert_path;
    struct {
        char key[41];
        uint64_t at;
    } logged[S_LOGGED];
    unsigned next_log;
};

bool
evr_curve_needed(const char *endpoint)
{
    return endpoint && strncmp(endpoint, "tcp://", 6) == 0;
}

/*  A loaded pair whose secret is whole and belongs to its public key. */
static bool
s_pair_ok(zcert_t *cert)
{
    char derived[41];
    const char *sec = zcert_secret_txt(cert);
    return sec && strlen(sec) == 40 && strcmp(sec, "0000000000000000000000000000000000000000")
           && zmq_curve_public(derived, sec) == 0 && strcmp(derived, zcert_public_txt(cert)) == 0;
}

/*  0 when path opens for reading, else the errno; a text for it in why. */
static int
s_unreadable(const char *path, char *why, size_t size)
{
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    int e = errno;
    if (e == EACCES)
        snprintf(why, size, "permission denied reading %s", path);
    else
        snprintf(why, size, "cannot read %s: %s", path, strerror(e));
    return e;
}

/*  The pair at path; made (0600, in a directory made 0700) when missing. */
static zcert_t *
s_pair(const char *path, bool *made, evr_err_t *err)
{
    char *secret = evr_asprintf("%s_secret", path);
    struct stat sb;
    zcert_t *cert = NULL;
    *made = false;
    char why[EVR_ERR_MAX / 2];
    if (stat(secret, &sb) == 0 || errno != ENOENT) {
        if (s_unreadable(secret, why, sizeof why) || s_unreadable(path, why, sizeof why)) {
            evr_err_set(err, EVR_ERR_CONFIG, "key pair %s: %s", path, why);
            free(secret);
            return NULL;
        }
        cert = zcert_load(path);
        if (!cert || !s_pair_ok(cert)) {
            evr_err_set(err, EVR_ERR_CONFIG, "key pair %s: not a whole czmq key pair (its "
                        "secret must give its public key)", secret);
            zcert_destroy(&cert);
        }
        free(secret);
        return cert;
    }
    if (stat(path, &sb) == 0) {
        evr_err_set(err, EVR_ERR_CONFIG, "key pair %s: a public certificate without its secret "
                    "(%s): give the path of a pair, or remove %s to make a new one", path,
                    secret, path);
        free(secret);
        return NULL;
    }
    char *dir = evr_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        bool existed = stat(dir, &sb) == 0;
        if (evr_mkdirs(dir, err)) {
            free(dir);
            free(secret);
            return NULL;
        }
        if (!existed)
            chmod(dir, 0700);
    }
    free(dir);
    /* Written aside, then the secret linked into place (link fails when
       another process made the pair first: that pair is taken), then the
       public file renamed: two first starts at once share one pair. */
    cert = zcert_new();
    zcert_set_meta(cert, "created-by", "evrun");
    char *tmp = evr_asprintf("%s.new-%ld", path, (long) getpid());
    char *tmp_secret = evr_asprintf("%s_secret", tmp);
    if (zcert_save(cert, tmp) != 0) {
        evr_err_set(err, EVR_ERR_IO, "key pair %s: cannot write %s: %s", path, tmp,
                    strerror(errno));
        zcert_destroy(&cert);
    }
    else if (link(tmp_secret, secret) == 0) {
        if (rename(tmp, path) != 0) {
            evr_err_set(err, EVR_ERR_IO, "key pair %s: %s", path, strerror(errno));
            zcert_destroy(&cert);
        }
        else
            *made = true;
    }
    else if (errno == EEXIST) {   /* another process was first */
        zcert_destroy(&cert);
        cert = zcert_load(path);
        if (!cert || !s_pair_ok(cert)) {
            evr_err_set(err, EVR_ERR_CONFIG, "key pair %s: made by another process meanwhile, "
                        "but not readable as a whole pair", secret);
            zcert_destroy(&cert);
        }
    }
    else {
        evr_err_set(err, EVR_ERR_IO, "key pair %s: %s", secret, strerror(errno));
        zcert_destroy(&cert);
    }
    unlink(tmp_secret);
    unlink(tmp);
    free(tmp_secret);
    free(tmp);
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
    int serr = file ? 0 : errno;
    /* Z85 has '/' and '.' too: a key is what is not a file */
    if (!file && strlen(spec) == 40 && zmq_z85_decode(bin, spec)) {
        memcpy(out, spec, 41);
        return EVR_OK;
    }
    if (!file && serr == ENOENT)
        return evr_err_set(err, EVR_ERR_CONFIG, "the broker's public key (broker_key, "
                           "--broker-key) %s: no such file; a tcp:// endpoint needs it: copy the "
                           "broker's STATE/curve/broker.cert there, or give its 40-character key",
                           spec);
    char why[EVR_ERR_MAX / 2];
    if (s_unreadable(spec, why, sizeof why))   /* a directory on the way or the file itself */
        return evr_err_set(err, EVR_ERR_CONFIG, "the broker's public key (broker_key, "
                           "--broker-key): %s", why);
    zcert_t *cert = zcert_load(spec);
    if (!cert)
        return evr_err_set(err, EVR_ERR_CONFIG, "the broker's public key (broker_key) %s: not "
                           "a czmq certificate", spec);
    snprintf(out, 41, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
    return EVR_OK;
}

void
evr_curve_defaults(evr_config_t *cfg, const char *cert_key, const char *cert_name)
{
    const char *state = evr_config_get(cfg, "state_dir");
    if (!state)
        return;
    char *v = evr_asprintf("%s/curve/%s", state, cert_name);
    evr_config_default(cfg, cert_key, v);
    free(v);
    v = evr_asprintf("%s/curve/broker.cert", state);
    evr_config_default(cfg, "broker_key", v);
    free(v);
}

evr_rc_t
evr_curve_load(const char *cert_path, const char *server_key, evr_curve_keys_t *keys,
               bool *made, evr_err_t *err)
{
    memset(keys, 0, sizeof *keys);
    *made = false;
    evr_rc_t rc = s_server_key(server_key, keys->server, err);
    if (rc)
        return rc;
    zcert_t *cert = s_pair(cert_path, made, err);
    if (!cert)
        return EVR_ERR_CONFIG;
    snprintf(keys->pub, sizeof keys->pub, "%s", zcert_public_txt(cert));
    snprintf(keys->sec, sizeof keys->sec, "%s", zcert_secret_txt(cert));
    zcert_destroy(&cert);
    return EVR_OK;
}

void
evr_curve_apply(const evr_curve_keys_t *keys, zsock_t *sock)
{
    zsock_set_curve_publickey(sock, keys->pub);
    zsock_set_curve_secretkey(sock, keys->sec);
    zsock_set_curve_serverkey(sock, keys->server);
}

/* -------------------------------------------------------------- watching */

struct evr_curve_watch {
    zsock_t *mon;
};

evr_curve_watch_t *
evr_curve_watch_new(zsock_t *sock)
{
    static unsigned s_count;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://evr-curve-watch-%ld-%u", (long) getpid(), s_count++);
    if (zmq_socket_monitor(zsock_resolve(sock), ep,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                               | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
        return NULL;
    evr_curve_watch_t *w = evr_calloc(1, sizeof *w);
    w->mon = zsock_new(ZMQ_PAIR);
    if (!w->mon || zsock_connect(w->mon, "%s", ep) < 0) {
        zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
        zsock_destroy(&w->mon);
        free(w);
        return NULL;
    }
    return w;
}

zsock_t *
evr_curve_watch_socket(evr_curve_watch_t *self)
{
    return self->mon;
}

evr_curve_seen_t
evr_curve_watch_read(evr_curve_watch_t *self)
{
    evr_curve_seen_t seen = EVR_CURVE_OK;
    for (int n = 0; n < 64 && (zsock_events(self->mon) & ZMQ_POLLIN); n++) {
        /* two frames: the event (2 bytes) and its value (4), the address */
        zframe_t *f = zframe_recv(self->mon);
        uint16_t event = 0;
        if (f && zframe_size(f) >= 2)
            memcpy(&event, zframe_data(f), 2);
        zframe_destroy(&f);
        f = zframe_recv(self->mon);
        zframe_destroy(&f);
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            seen = EVR_CURVE_REFUSED;
        else if (event && seen == EVR_CURVE_OK)
            seen = EVR_CURVE_FAILED;
    }
    return seen;
}

void
evr_curve_watch_destroy(evr_curve_watch_t **self_p, zsock_t *sock)
{
    evr_curve_watch_t *w = *self_p;
    if (!w)
        return;
    if (sock)
        zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
    zsock_destroy(&w->mon);
    free(w);
    *self_p = NULL;
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

/*  Whether the certificate at path holds key (Z85). */
static bool
s_holds(const char *path, const char *key)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return false;
    zcert_t *c = zcert_load(path);
    bool ok = c && strcmp(zcert_public_txt(c), key) == 0;
    zcert_destroy(&c);
    return ok;
}

/*  Whether key (Z85) is admitted in role i: a file NAME.cert directly in
    the role's directory holds it, or the broker's own pair of that role.
    Read at each handshake (at most S_SCAN files). */
#define S_SCAN 10000
static bool
s_admitted(evr_zap_t *z, int i, const char *key)
{
    char *own = evr_asprintf("%s/%s", z->dir, s_own[i]);
    bool ok = s_holds(own, key);
    free(own);
    char *d = evr_asprintf("%s/%s", z->dir, s_roles[i]);
    DIR *dir = ok ? NULL : opendir(d);
    struct dirent *e;
    for (int n = 0; dir && !ok && n < S_SCAN && (e = readdir(dir)); n++) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".cert") != 0)
            continue;
        char *path = evr_asprintf("%s/%s", d, e->d_name);
        ok = s_holds(path, key);
        free(path);
    }
    if (dir)
        closedir(dir);
    free(d);
    return ok;
}

bool
evr_zap_admitted(evr_zap_t *self, const char *role, const char *key)
{
    for (int i = 0; i < S_ROLES; i++)
        if (strcmp(role, s_roles[i]) == 0)
            return s_admitted(self, i, key);
    return false;
}

/*  Whether a refusal of key is to be logged (once a minute per key). */
static bool
s_log_due(evr_zap_t *z, const char *key)
{
    uint64_t now = evr_mono_ns();
    for (unsigned i = 0; i < S_LOGGED; i++)
        if (strcmp(z->logged[i].key, key) == 0) {
            if (now - z->logged[i].at < S_LOG_EVERY)
                return false;
            z->logged[i].at = now;
            return true;
        }
    unsigned i = z->next_log++ % S_LOGGED;
    snprintf(z->logged[i].key, sizeof z->logged[i].key, "%s", key);
    z->logged[i].at = now;
    return true;
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
    if (!ok && log && s_log_due(z, key)) {
        char line[512];
        snprintf(line, sizeof line, "refused a peer at %s on the %s endpoint: key %s is not in "
                 "%s/%s/ (copy the peer's public certificate there, as NAME.cert, to admit it)",
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
