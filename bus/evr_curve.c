/*  evr_curve.c: CURVE keys, the client side; see evr_curve.h.  czmq reads
    and writes the key files (zcert).  The broker's side, the ZAP handler,
    is in evr_zap.c; what a handshake came to, in evr_watch.c.
*/
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_curve.h"

/*  32 zero bytes in Z85: what czmq makes of a key that is no Z85. */
#define S_ZERO_KEY "0000000000000000000000000000000000000000"

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
    return sec && strlen(sec) == 40 && strcmp(sec, S_ZERO_KEY)
           && zmq_curve_public(derived, sec) == 0 && strcmp(derived, zcert_public_txt(cert)) == 0;
}

/*  Waits up to 10 s while path (a pair's public file) does not exist: a
    process making the pair links its secret into place before it renames
    the public file there, so one that finds the secret a moment before
    would read no public file (2 s was once too short: six first starts
    at once on a loaded 2-core machine, test_curve test_pair_race). */
static void
s_wait_public(const char *path)
{
    struct stat sb;
    for (int i = 0; i < 1000 && stat(path, &sb) != 0 && errno == ENOENT; i++)
        usleep(10000);
}

/*  0 when path opens for reading, else the errno; a text for it in why.
    Opened without blocking: a FIFO there would wait for a writer. */
static int
s_unreadable(const char *path, char *why, size_t size)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
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

/*  0 when the secret at path is a regular file of the effective uid that
    neither group nor others may read or write (links followed: what
    counts is the file read), else -1 and the fix in why.  Root reads any
    file, so the mode is what keeps a secret from others. */
static int
s_private(const char *path, char *why, size_t size)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        snprintf(why, size, "cannot read %s: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        snprintf(why, size, "its secret %s is not a regular file: remove it and its public "
                 "certificate to have a new pair made", path);
    else if (sb.st_uid != geteuid())
        snprintf(why, size, "its secret %s is owned by uid %u, not by you (uid %u): a secret "
                 "key is its owner's alone; if it is yours: chown %u %s", path,
                 (unsigned) sb.st_uid, (unsigned) geteuid(), (unsigned) geteuid(), path);
    else if (sb.st_mode & 077)
        snprintf(why, size, "its secret %s can be read or written by others (mode %04o): "
                 "chmod 600 %s (others may have read it: better make a new pair, removing "
                 "both files, and admit its certificate again)", path,
                 (unsigned) (sb.st_mode & 07777), path);
    else
        return 0;
    return -1;
}

/*  0 when the secret at path is there as a file (or a link to one) or
    missing with its directory there (made then), else -1 and why with the
    fix: a directory as the secret, a link to nothing, a file where its
    directory should be.  Said at once, where the wait for a pair another
    process makes (s_wait_public) took 10 s and then named another cause. */
static int
s_secret_place(const char *path, char *why, size_t size)
{
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        if (S_ISLNK(sb.st_mode) && stat(path, &sb) != 0) {
            char to[512];
            ssize_t n = readlink(path, to, sizeof to - 1);
            to[n > 0 ? n : 0] = '\0';
            snprintf(why, size, "its secret %s is a symbolic link to %.256s, which cannot be "
                     "read (%s): point it at the pair's secret, or remove the link (and the "
                     "public certificate) to have a new pair made", path, to, strerror(errno));
            return -1;
        }
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            snprintf(why, size, "its secret %s is a directory: remove it (and the public "
                     "certificate, if any) to have a new pair made, or give the path of a "
                     "pair", path);
            return -1;
        }
        return 0;
    }
    if (errno != ENOTDIR)
        return 0;
    char *dir = evr_strdup(path);
    for (char *slash; (slash = strrchr(dir, '/')) && slash != dir;) {
        *slash = '\0';
        if (stat(dir, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
            snprintf(why, size, "%s, on the way to its secret %s, is not a directory: give "
                     "the path of a pair in a directory (or move %s away to have one made "
                     "there)", dir, path, dir);
            break;
        }
    }
    if (!*why)
        snprintf(why, size, "cannot reach its secret %s: %s", path, strerror(ENOTDIR));
    free(dir);
    return -1;
}

zcert_t *
evr_curve_pair(const char *path, bool *made, evr_err_t *err)
{
    char *secret = evr_asprintf("%s_secret", path);
    struct stat sb;
    zcert_t *cert = NULL;
    *made = false;
    char why[EVR_ERR_MAX / 2];
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        evr_err_set(err, EVR_ERR_CONFIG, "key pair %s: a directory: give the path of a key "
                    "pair's file in it (as %s/NAME.cert: made with its NAME.cert_secret when "
                    "missing)", path, path);
        free(secret);
        return NULL;
    }
    why[0] = '\0';
    if (s_secret_place(secret, why, sizeof why)) {
        evr_err_set(err, EVR_ERR_CONFIG, "key pair %s: %s", path, why);
        free(secret);
        return NULL;
    }
    if (stat(secret, &sb) == 0 || errno != ENOENT) {
        s_wait_public(path);
        if (stat(path, &sb) != 0 && errno == ENOENT && stat(secret, &sb) == 0) {
            evr_err_set(err, EVR_ERR_CONFIG, "key pair %s: its secret %s is there but not its "
                        "public certificate %s: put that back (the certificate the broker "
                        "admits), or remove %s to have a new pair made (and admit the new "
                        "certificate)", path, secret, path, secret);
            free(secret);
            return NULL;
        }
        if (s_unreadable(secret, why, sizeof why) || s_private(secret, why, sizeof why)
            || s_unreadable(path, why, sizeof why)) {
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
        evr_rc_t rc = evr_mkdirs_mode(dir, 0700, err);
        if (rc) {
            evr_err_set(err, rc, "key pair %s: cannot make it: %s", path, err->msg);
            free(dir);
            free(secret);
            return NULL;
        }
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
        s_wait_public(path);
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
    /* Z85 has '/' and '.' too: a key is what is not a file; Z85 has no
       white space: around a key (a pasted line, CRLF) it is dropped */
    size_t from = 0, len = strlen(spec);
    while (!file && from < len && strchr(" \t\r\n", spec[from]))
        from++;
    while (!file && len > from && strchr(" \t\r\n", spec[len - 1]))
        len--;
    char key[41] = "";
    if (!file && len - from == 40) {
        memcpy(key, spec + from, 40);
        if (zmq_z85_decode(bin, key) && strcmp(key, S_ZERO_KEY)) {
            memcpy(out, key, 41);
            return EVR_OK;
        }
    }
    if (!file && serr == ENOENT)
        return evr_err_set(err, EVR_ERR_CONFIG, "the broker's public key (broker_key, "
                           "--broker-key) %s: no such file%s; a tcp:// endpoint needs it: copy "
                           "the broker's STATE/curve/broker.cert there, or give its "
                           "40-character key", spec,
                           *key ? ", nor a key (40 characters, but not of Z85 or all zero)"
                                : "");
    char why[EVR_ERR_MAX / 2];
    if (s_unreadable(spec, why, sizeof why))   /* a directory on the way or the file itself */
        return evr_err_set(err, EVR_ERR_CONFIG, "the broker's public key (broker_key, "
                           "--broker-key): %s", why);
    if (file && S_ISDIR(sb.st_mode))
        return evr_err_set(err, EVR_ERR_CONFIG, "the broker's public key (broker_key, "
                           "--broker-key) %s: a directory: give the broker's certificate file "
                           "(a copy of its STATE/curve/broker.cert)", spec);
    if (file && !S_ISREG(sb.st_mode))   /* a FIFO would hold zcert_load for ever */
        return evr_err_set(err, EVR_ERR_CONFIG, "the broker's public key (broker_key, "
                           "--broker-key) %s: not a regular file: give the broker's "
                           "certificate file (a copy of its STATE/curve/broker.cert)", spec);
    if (file && sb.st_size > EVR_CURVE_CERT_MAX)
        return evr_err_set(err, EVR_ERR_CONFIG, "the broker's public key (broker_key) %s: not "
                           "a czmq certificate (%lld bytes, over %d): copy the broker's "
                           "STATE/curve/broker.cert again", spec, (long long) sb.st_size,
                           EVR_CURVE_CERT_MAX);
    zcert_t *cert = zcert_load(spec);
    /* czmq takes a public-key that is no Z85 for 32 zero bytes */
    bool ok = cert && strcmp(zcert_public_txt(cert), S_ZERO_KEY) != 0;
    if (ok)
        snprintf(out, 41, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
    if (!ok)
        return evr_err_set(err, EVR_ERR_CONFIG, "the broker's public key (broker_key) %s: not "
                           "a czmq certificate (a line public-key = \"...\" of 40 characters "
                           "of Z85): copy the broker's STATE/curve/broker.cert again", spec);
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
    zcert_t *cert = evr_curve_pair(cert_path, made, err);
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
