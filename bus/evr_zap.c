/*  evr_zap.c: the broker's ZAP handler; see evr_zap.h.

    The handler tells the two roles apart, which czmq's zauth cannot (one
    key set for every socket), and reads the admitted certificates again
    whenever their directory changed and at most a second after it last
    did (czmq's zcertstore misses a file replaced by one of the same size
    and an older time, and takes files of any name).  The ZAP
    exchange is RFC 27.
*/
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "evr_paths.h"
#include "evr_zap.h"

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_ROLES 2

static const char *const s_roles[S_ROLES] = { "runners", "clients" };
static const char *const s_own[S_ROLES] = { "runner.cert", "client.cert" };

/*  Refusals logged once per key in this many ns, and at most S_LOG_MAX
    of them in that time for all keys (the others counted, the count
    logged with the next one logged): a stranger minting keys fills no
    disk. */
#define S_LOG_EVERY (60ull * 1000000000ull)
#define S_LOGGED 32
#define S_LOG_MAX 20

/*  A role directory's keys, read again when the directory changed (a
    file added, removed or renamed) or S_CACHE_NS after they were read
    (a file rewritten in place): strangers' handshakes, however many,
    read the files at most once in that time. */
#define S_CACHE_NS 1000000000ull
#define S_RECENT_NS 100000000
typedef struct {
    bool valid;
    uint64_t at;
    dev_t dev;
    ino_t ino;
    struct timespec mtim, ctim;
    char (*keys)[41];
    size_t n, cap;
} s_keys_t;

struct evr_zap {
    zsock_t *sock;
    zcert_t *cert;
    char *dir, *cert_path;
    s_keys_t cache[S_ROLES];
    struct {
        char key[41];
        uint64_t at;
    } logged[S_LOGGED];
    unsigned next_log;
    uint64_t window;       /* when the S_LOG_MAX count began */
    unsigned in_window;    /* refusals logged since */
    uint64_t unlogged;     /* refusals not logged since the last logged */
};

evr_rc_t
evr_zap_new(const char *curve_dir, bool *made, evr_zap_t **out, evr_err_t *err)
{
    *out = NULL;
    evr_zap_t *z = evr_calloc(1, sizeof *z);
    z->dir = evr_strdup(curve_dir);
    z->cert_path = evr_asprintf("%s/broker.cert", curve_dir);
    /* whoever can write in these directories admits keys (or replaces
       the broker's): private ones only, as the state directory */
    evr_rc_t rc = evr_paths_dir(curve_dir, true, err);
    for (int i = 0; !rc && i < S_ROLES; i++) {
        char *d = evr_asprintf("%s/%s", curve_dir, s_roles[i]);
        rc = evr_paths_dir(d, true, err);
        free(d);
    }
    if (rc) {
        evr_zap_destroy(&z);
        return rc;
    }
    z->cert = evr_curve_pair(z->cert_path, made, err);
    if (!z->cert) {
        evr_zap_destroy(&z);
        return EVR_ERR_CONFIG;
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
        free(z->cache[i].keys);
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

/*  The key (Z85) of the certificate at path into key; false when it is
    none.  A file over EVR_CURVE_CERT_MAX is none (czmq reads a file
    whole), nor is a damaged one (czmq loads it as 32 zero bytes). */
static bool
s_key_of(const char *path, char key[41])
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > EVR_CURVE_CERT_MAX)
        return false;
    zcert_t *c = zcert_load(path);
    bool ok = c && strcmp(zcert_public_txt(c), "0000000000000000000000000000000000000000") != 0;
    if (ok)
        snprintf(key, 41, "%s", zcert_public_txt(c));
    zcert_destroy(&c);
    return ok;
}

/*  Whether the certificate at path holds key (Z85). */
static bool
s_holds(const char *path, const char *key)
{
    char k[41];
    return s_key_of(path, k) && strcmp(k, key) == 0;
}

static bool
s_same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/*  Reads the keys of the files NAME.cert directly in d (at most S_SCAN
    files) into k, unless k holds them already (see s_keys_t). */
#define S_SCAN 10000
static void
s_keys_read(s_keys_t *k, const char *d)
{
    struct stat sb;
    uint64_t now = evr_mono_ns();
    if (stat(d, &sb) != 0) {
        k->valid = false;
        k->n = 0;
        return;
    }
    if (k->valid && now - k->at < S_CACHE_NS && k->dev == sb.st_dev && k->ino == sb.st_ino
        && s_same_time(&k->mtim, &sb.st_mtim) && s_same_time(&k->ctim, &sb.st_ctim))
        return;
    /* a directory changed in the last S_RECENT_NS may change again within
       the file system's clock tick, its times staying: not kept then */
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t age = ((int64_t) wall.tv_sec - (int64_t) sb.st_ctim.tv_sec) * 1000000000
                  + (wall.tv_nsec - sb.st_ctim.tv_nsec);
    k->valid = age >= S_RECENT_NS;
    k->at = now;
    k->dev = sb.st_dev;
    k->ino = sb.st_ino;
    k->mtim = sb.st_mtim;
    k->ctim = sb.st_ctim;
    k->n = 0;
    DIR *dir = opendir(d);
    struct dirent *e;
    for (int n = 0; dir && n < S_SCAN && (e = readdir(dir)); n++) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".cert") != 0)
            continue;
        if (k->n == k->cap) {
            k->cap = k->cap ? 2 * k->cap : 16;
            k->keys = evr_realloc(k->keys, k->cap * sizeof *k->keys);
        }
        char *path = evr_asprintf("%s/%s", d, e->d_name);
        if (s_key_of(path, k->keys[k->n]))
            k->n++;
        free(path);
    }
    if (dir)
        closedir(dir);
}

/*  Whether key (Z85) is admitted in role i: a file NAME.cert directly in
    the role's directory holds it, or the broker's own pair of that role
    (read at each handshake; the directory as s_keys_read says). */
static bool
s_admitted(evr_zap_t *z, int i, const char *key)
{
    char *own = evr_asprintf("%s/%s", z->dir, s_own[i]);
    bool ok = s_holds(own, key);
    free(own);
    if (ok)
        return true;
    char *d = evr_asprintf("%s/%s", z->dir, s_roles[i]);
    s_keys_read(&z->cache[i], d);
    free(d);
    for (size_t n = 0; !ok && n < z->cache[i].n; n++)
        ok = strcmp(z->cache[i].keys[n], key) == 0;
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

/*  Whether a refusal of key is to be logged (once a minute per key, at
    most S_LOG_MAX a minute); one that is not is counted in unlogged. */
static bool
s_log_due(evr_zap_t *z, const char *key)
{
    uint64_t now = evr_mono_ns();
    if (!z->window || now - z->window >= S_LOG_EVERY) {
        z->window = now;
        z->in_window = 0;
    }
    if (z->in_window >= S_LOG_MAX) {
        z->unlogged++;
        return false;
    }
    for (unsigned i = 0; i < S_LOGGED; i++)
        if (strcmp(z->logged[i].key, key) == 0) {
            if (now - z->logged[i].at < S_LOG_EVERY)
                return false;   /* said already: not counted */
            z->logged[i].at = now;
            z->in_window++;
            return true;
        }
    z->in_window++;
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
        char line[640], more[96] = "";
        if (z->unlogged)
            snprintf(more, sizeof more, " (and %llu refusals before it not logged: at most %d "
                     "a minute are)", (unsigned long long) z->unlogged, S_LOG_MAX);
        z->unlogged = 0;
        snprintf(line, sizeof line, "refused a peer at %s on the %s endpoint: key %s is not in "
                 "%s/%s/ (copy the peer's public certificate there, as NAME.cert, to admit it)%s",
                 address ? address : "?", role == 0 ? "runner" : "client/events",
                 *key ? key : "(none)", z->dir, role >= 0 ? s_roles[role] : "?", more);
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
