/*  evr_gw_limits.c: what bounds evrun-gateway's connections.

    The settings (read once, by evr_gw_limits_load):
      http_max_connections  connections at once (libmicrohttpd's
                            MHD_OPTION_CONNECTION_LIMIT; one thread each)
      http_max_per_ip       of them from one address (counted by this file's
                            accept policy, evr_gw_conn_accept)
      http_idle_timeout     a connection with nothing sent or received this
                            long is closed (MHD_OPTION_CONNECTION_TIMEOUT):
                            a client that stops reading a live log is
                            dropped after it, and resumes with Last-Event-ID
      http_request_timeout  a request's headers and body must all have come
                            this long after the connection opened (or after
                            the answer to its previous request): libmicro-
                            httpd's idle timeout restarts at every byte, so
                            a client sending a header byte every few seconds
                            (slowloris) would hold a connection for ever
    The request deadline is this file's own: every connection is listed
    (MHD_OPTION_NOTIFY_CONNECTION) with when its current request began; a
    watchdog thread looks at the list every S_TICK_NS and shuts down the
    socket of a request past its deadline (libmicrohttpd then sees the
    connection end and closes it in its own thread).  The list is guarded
    by a mutex that the close notification takes too, so the watchdog never
    touches a socket libmicrohttpd has closed.  So is the per-address
    limit: the list holds each connection's address, and the accept
    policy callback counts them (libmicrohttpd's own limit would refuse
    with no word to the log).  Both refusals are access-log lines, as a
    request's answer is (evr_gw_log_answer): "- - -> 503 (...)" for a
    connection refused, "METHOD URL -> 408 (...)" for a request cut (its
    method and URL when its head had come, "-" otherwise).

    The process's open-file limit is raised to its hard limit; when even
    that cannot hold S_FDS_PER_CONN descriptors per connection (the socket,
    a live log's SUB socket and its pipes), http_max_connections is lowered
    to fit, with a warning.  See evr_gw.h.
*/
#include "evr_gw.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "evr_log.h"

#define S_TICK_NS 250000000ull /* the watchdog looks this often */
#define S_FDS_PER_CONN 4
#define S_FDS_SPARE 128 /* the broker connections, files, logs */
#define S_CONNS_MAX 4096

struct evr_gw_conn {
    struct evr_gw_conn *prev, *next;
    int fd;
    uint64_t began; /* mono ns: the current request's deadline counts from here */
    bool busy;      /* the request is all in: answered (or being answered) */
    bool cut;       /* shut down by the watchdog */
    bool served;    /* has answered a request: idle now is keep-alive */
    struct in_addr addr;  /* the client's (IPv4: the gateway listens on IPv4 only) */
    char *method, *url;   /* the current request's, once its head is in, or NULL */
    unsigned nuls;  /* strings of the current request decoded with a NUL (%00) in them */
};

void
evr_gw_limits_default(evr_gw_t *gw)
{
    gw->max_conns = 512;
    gw->max_per_ip = 256;
    gw->idle_s = 30;
    gw->request_ns = 30000000000ull;
    gw->keepalive_ns = 15000000000ull;
}

evr_rc_t
evr_gw_limits_load(evr_gw_t *gw, evr_err_t *err)
{
    uint64_t conns, per_ip, idle_ms, req_ms;
    /* each checked whatever the others are: their errors said at once */
    bool bad = evr_config_uint(gw->cfg, "http_max_connections", 1, S_CONNS_MAX, &conns, err)
            != EVR_OK;
    bad = evr_config_uint(gw->cfg, "http_max_per_ip", 1, S_CONNS_MAX, &per_ip, err) != EVR_OK
       || bad;
    const char *const timeouts[] = { "http_idle_timeout", "http_request_timeout" };
    uint64_t *ms[] = { &idle_ms, &req_ms };
    for (size_t i = 0; i < 2; i++) {
        if (evr_config_duration(gw->cfg, timeouts[i], 1000, 86400000, ms[i], err))
            bad = true;
    }
    if (bad)
        return EVR_ERR_CONFIG;
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        if (want > rl.rlim_cur) {
            rl.rlim_cur = want;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    if (rl.rlim_cur != RLIM_INFINITY
        && conns * S_FDS_PER_CONN + S_FDS_SPARE > (uint64_t) rl.rlim_cur) {
        uint64_t fit = rl.rlim_cur > S_FDS_SPARE + S_FDS_PER_CONN
                         ? (rl.rlim_cur - S_FDS_SPARE) / S_FDS_PER_CONN
                         : 1;
        evr_log_warn("gateway",
                     "http_max_connections %llu lowered to %llu: the process may "
                     "open %llu files (ulimit -n) and a connection takes up to %d",
                     (unsigned long long) conns, (unsigned long long) fit,
                     (unsigned long long) rl.rlim_cur, S_FDS_PER_CONN);
        conns = fit;
    }
    gw->max_conns = (unsigned) conns;
    gw->max_per_ip = (unsigned) (per_ip < conns ? per_ip : conns);
    gw->idle_s = (unsigned) ((idle_ms + 999) / 1000);
    gw->request_ns = req_ms * 1000000ull;
    /* a live log that is quiet sends a comment well within the idle timeout
       (its broker calls may then wait up to 3/4 of it: evr_gw_log.c) */
    gw->keepalive_ns =
        idle_ms * 1000000ull / 4 < 15000000000ull ? idle_ms * 1000000ull / 4 : 15000000000ull;
    return EVR_OK;
}

/* ------------------------------------------------------------ registry */

void
evr_gw_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                   enum MHD_ConnectionNotificationCode code)
{
    evr_gw_t *gw = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        evr_gw_conn_t *c = evr_calloc(1, sizeof *c);
        c->fd = ci ? ci->connect_fd : -1;
        c->began = evr_mono_ns();
        if (ai && ai->client_addr && ai->client_addr->sa_family == AF_INET)
            c->addr = ((const struct sockaddr_in *) ai->client_addr)->sin_addr;
        pthread_mutex_lock(&gw->conns_mu);
        c->next = gw->conns;
        if (gw->conns)
            gw->conns->prev = c;
        gw->conns = c;
        gw->nconns++;
        pthread_mutex_unlock(&gw->conns_mu);
        *socket_context = c;
        return;
    }
    evr_gw_conn_t *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&gw->conns_mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        gw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    gw->nconns--;
    pthread_mutex_unlock(&gw->conns_mu);
    free(c->method);
    free(c->url);
    free(c);
    *socket_context = NULL;
}

enum MHD_Result
evr_gw_conn_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    evr_gw_t *gw = cls;
    if (addr->sa_family != AF_INET || addrlen < sizeof(struct sockaddr_in))
        return MHD_YES;
    struct in_addr a = ((const struct sockaddr_in *) addr)->sin_addr;
    unsigned n = 0;
    pthread_mutex_lock(&gw->conns_mu);
    for (evr_gw_conn_t *c = gw->conns; c; c = c->next)
        n += c->addr.s_addr == a.s_addr;
    pthread_mutex_unlock(&gw->conns_mu);
    if (n < gw->max_per_ip)
        return MHD_YES;
    /* one line a second at most (this runs on the listening thread only):
       a client hammering connections must not flood the log */
    static uint64_t s_logged_ns;
    static unsigned s_quiet;
    uint64_t now = evr_mono_ns();
    if (s_logged_ns && now - s_logged_ns < 1000000000ull) {
        s_quiet++;
        return MHD_NO;
    }
    char ip[INET_ADDRSTRLEN] = "?", reason[200], more[64] = "";
    inet_ntop(AF_INET, &a, ip, sizeof ip);
    if (s_quiet)
        snprintf(more, sizeof more, "; %u more refused since the last such line", s_quiet);
    snprintf(reason, sizeof reason, "connection refused: %s has %u open, the limit of "
             "http_max_per_ip; closed without an answer%s", ip, n, more);
    evr_gw_log_answer(NULL, NULL, 503, reason);
    s_logged_ns = now;
    s_quiet = 0;
    return MHD_NO;
}

/*  The registry entry of conn, or NULL. */
static evr_gw_conn_t *
s_entry(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void
evr_gw_conn_busy(evr_gw_t *gw, struct MHD_Connection *conn, bool busy)
{
    evr_gw_conn_t *c = s_entry(conn);
    if (!c)
        return;
    pthread_mutex_lock(&gw->conns_mu);
    c->busy = busy;
    c->began = evr_mono_ns();
    if (!busy) {
        c->served = true;
        c->nuls = 0;
        free(c->method);
        free(c->url);
        c->method = c->url = NULL;
    }
    pthread_mutex_unlock(&gw->conns_mu);
}

bool
evr_gw_conn_nul(struct MHD_Connection *conn)
{
    evr_gw_conn_t *c = s_entry(conn);
    if (c)
        c->nuls++;  /* the connection's own thread only */
    return c != NULL;
}

unsigned
evr_gw_conn_nuls_take(struct MHD_Connection *conn)
{
    evr_gw_conn_t *c = s_entry(conn);
    unsigned n = c ? c->nuls : 0;
    if (c)
        c->nuls = 0;
    return n;
}

void
evr_gw_conn_request(evr_gw_t *gw, struct MHD_Connection *conn, const char *method,
                    const char *url)
{
    evr_gw_conn_t *c = s_entry(conn);
    if (!c)
        return;
    char *m = evr_strdup(method), *u = evr_strdup(url);
    pthread_mutex_lock(&gw->conns_mu);
    free(c->method);
    free(c->url);
    c->method = m;
    c->url = u;
    pthread_mutex_unlock(&gw->conns_mu);
}

/* ------------------------------------------------------------ watchdog */

static void *
s_watchdog(void *arg)
{
    evr_gw_t *gw = arg;
    while (!gw->stopping) {
        struct timespec ts = { 0, (long) S_TICK_NS };
        nanosleep(&ts, NULL);
        uint64_t now = evr_mono_ns();
        pthread_mutex_lock(&gw->conns_mu);
        for (evr_gw_conn_t *c = gw->conns; c; c = c->next)
            if (!c->busy && !c->cut && c->fd >= 0 && now - c->began > gw->request_ns) {
                shutdown(c->fd, SHUT_RDWR);
                c->cut = true;
                __atomic_fetch_add(&gw->requests_cut, 1, __ATOMIC_RELAXED);
                if (!c->method && c->served) {   /* kept alive, no new request: no 408 */
                    evr_log_debug("gateway", "a kept-alive connection idle past "
                                  "http_request_timeout closed");
                    continue;
                }
                char reason[160];
                snprintf(reason, sizeof reason, "request timeout: %s within "
                         "http_request_timeout (%llu ms); closed without an answer",
                         c->method ? "its body was not all in" : "no whole request head came",
                         (unsigned long long) (gw->request_ns / 1000000u));
                evr_gw_log_answer(c->method, c->url, 408, reason);
            }
        pthread_mutex_unlock(&gw->conns_mu);
    }
    return NULL;
}

void
evr_gw_watchdog_start(evr_gw_t *gw)
{
    gw->watchdog_on = !pthread_create(&gw->watchdog, NULL, s_watchdog, gw);
    if (!gw->watchdog_on)
        evr_log_warn("gateway", "cannot start the request watchdog: http_request_timeout "
                                "is not enforced");
}

void
evr_gw_watchdog_stop(evr_gw_t *gw)
{
    gw->stopping = 1;
    if (gw->watchdog_on)
        pthread_join(gw->watchdog, NULL);
    gw->watchdog_on = false;
}
