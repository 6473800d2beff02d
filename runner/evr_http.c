/*  evr_http.c: libcurl's multi interface on the event loop, one thread,
    many transfers.

    libcurl says which sockets to watch for what (s_on_socket) and when
    to call it back regardless (s_on_timer); the loop's callbacks hand
    each event to curl_multi_socket_action, and every action ends by
    draining the transfers it finished (s_drain), so a request's on_done
    runs in the turn its last byte came, never a wait later.

    A stream that comes in bulk (a step printing megabytes) is read in
    large pieces: once a read hands on S_REST_MIN bytes or more, its
    socket rests S_REST_MS before it is watched again, so that what the
    server sends meanwhile is taken in one read, not in one turn of the
    loop per frame podman writes (8 KiB: 12,000 turns, each a poll and a
    read, for 100 MB).  A read of less is a trickle (a line now and then):
    its socket is watched again at once, and the next line is read the
    moment it comes; so is a read of S_REST_MAX or more (a sender faster
    than rests would let it be).
*/
#include "evr_http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define S_DEFAULT_MAX_BODY (1u << 20)
/*  A stream's receive buffer (libcurl's default is 16 KiB): what has
    piled up on the socket is taken in one read, and handed on in one
    on_data call, not in many that each cost a turn of the loop. */
#define S_STREAM_BUFFER (256L * 1024)
/*  A read handing on this much (podman's frames hold up to 8 KiB), but
    less than S_REST_MAX, lets its socket rest S_REST_MS.  A read of more
    found the socket (some 200 KiB on podman's side) nearly full: the
    sender is faster than a rest lets through (an artifact's tar stream),
    and the socket is read on at once. */
#define S_REST_MIN (8u * 1024)
#define S_REST_MAX (128u * 1024)
#define S_REST_MS 1

struct evr_http_req {
    evr_http_t *http;
    CURL *easy;
    struct curl_slist *headers;
    evr_http_opts_t opts;
    void *body_copy;
    FILE *body_fp;      /* opts.body_file, read as it is sent */
    char *url;
    char *resp;
    size_t resp_len, resp_cap;
    bool truncated, head_done, aborted;
    bool added;         /* handed to the multi handle */
    bool cancelled;     /* cancel asked from inside curl: done after it returns */
    long status;
    evr_rc_t rc;
    char errbuf[CURL_ERROR_SIZE];
    char msg[EVR_ERR_MAX];
    char refused[400];  /* a policy's or the body file's reason to end it */
    evr_http_req_t *next, *prev;
};

/*  A socket libcurl asked to watch (curl_multi_assign ties it to fd). */
typedef struct s_sock {
    evr_http_t *http;
    curl_socket_t fd;
    int events;         /* what libcurl waits for (EVR_LOOP_*) */
    uint64_t rest;      /* the timer ending its rest; 0: watched */
    struct s_sock *next;
} s_sock_t;

struct evr_http {
    CURLM *multi;
    char *base;         /* as given */
    char *socket;       /* unix socket path, or NULL */
    char *prefix;       /* URL prefix for paths */
    evr_http_req_t *reqs;
    evr_loop_t *loop;
    uint64_t timer;     /* the loop timer libcurl asked for; 0: none */
    bool in_curl;       /* inside curl_multi_socket_action: callbacks may run */
    s_sock_t *socks;
    size_t handed;      /* stream bytes handed on in the current action */
};

/*  curl refuses curl_multi_add_handle and _remove_handle from inside its
    callbacks, where on_head and on_data run: requests started or cancelled
    there are handled once curl_multi_socket_action has returned. */
static void
s_settle(evr_http_t *self)
{
    for (evr_http_req_t *r = self->reqs; r; r = r->next)
        if (!r->added && !r->cancelled) {
            curl_multi_add_handle(self->multi, r->easy);
            r->added = true;
        }
}

static void s_cancel_now(evr_http_req_t *req);

static void
s_reap_cancelled(evr_http_t *self)
{
    bool again = true;
    while (again) {
        again = false;
        for (evr_http_req_t *r = self->reqs; r; r = r->next)
            if (r->cancelled) {
                s_cancel_now(r);   /* frees r: the list changed */
                again = true;
                break;
            }
    }
}

static void s_finish(evr_http_req_t *req, CURLcode code);

/*  After each action: the transfers it finished end now (on_done), then
    what their callbacks cancelled or started is settled. */
static void
s_drain(evr_http_t *self)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(self->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        evr_http_req_t *req = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &req);
        if (req->cancelled)
            continue;   /* reaped below */
        /* on_done may start or cancel requests (removing a handle drops its
           pending message, so the queue stays true) */
        s_finish(req, m->data.result);
    }
    s_reap_cancelled(self);
    s_settle(self);
}

/*  One event for libcurl: a socket's readiness, or its timer
    (CURL_SOCKET_TIMEOUT). */
static void
s_action(evr_http_t *self, curl_socket_t fd, int mask)
{
    int running = 0;
    self->in_curl = true;
    curl_multi_socket_action(self->multi, fd, mask, &running);
    self->in_curl = false;
    s_drain(self);
}

static void s_on_fd(evr_loop_t *loop, int fd, int events, void *arg);

/*  The end of a rest: fd is watched again, and read at once. */
static void
s_on_rested(evr_loop_t *loop, void *arg)
{
    s_sock_t *sk = arg;
    sk->rest = 0;
    if (evr_loop_fd_add(loop, sk->fd, sk->events, s_on_fd, sk) != EVR_OK)
        fprintf(stderr, "evr_http: socket %d: the event loop watches too many fds\n", (int) sk->fd);
    if (sk->events & EVR_LOOP_READ)
        s_on_fd(loop, sk->fd, EVR_LOOP_READ, sk);
}

static void
s_on_fd(evr_loop_t *loop, int fd, int events, void *arg)
{
    s_sock_t *sk = arg;
    evr_http_t *self = sk->http;
    int mask = ((events & EVR_LOOP_READ) ? CURL_CSELECT_IN : 0)
             | ((events & EVR_LOOP_WRITE) ? CURL_CSELECT_OUT : 0)
             | ((events & EVR_LOOP_ERROR) ? CURL_CSELECT_ERR : 0);
    self->handed = 0;
    s_action(self, fd, mask);
    if (self->handed < S_REST_MIN || self->handed >= S_REST_MAX)
        return;
    /* bulk: the socket rests, if libcurl still has it (the action may
       have ended its transfer and freed sk) */
    for (sk = self->socks; sk && sk->fd != fd; sk = sk->next)
        ;
    if (!sk || sk->rest || !(sk->events & EVR_LOOP_READ))
        return;
    evr_loop_fd_remove(loop, fd);
    sk->rest = evr_loop_timer_add(loop, S_REST_MS, s_on_rested, sk);
}

static void
s_on_due(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_http_t *self = arg;
    self->timer = 0;
    s_action(self, CURL_SOCKET_TIMEOUT, 0);
}

static void
s_sock_free(evr_http_t *self, s_sock_t *sk)
{
    for (s_sock_t **pp = &self->socks; *pp; pp = &(*pp)->next)
        if (*pp == sk) {
            *pp = sk->next;
            break;
        }
    evr_loop_timer_cancel(self->loop, sk->rest);
    free(sk);
}

/*  CURLMOPT_SOCKETFUNCTION: watch fd for what libcurl waits for (unless
    it rests: then from the rest's end on). */
static int
s_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void) easy;
    evr_http_t *self = userp;
    s_sock_t *sk = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sk)
            s_sock_free(self, sk);
        evr_loop_fd_remove(self->loop, fd);
        return 0;
    }
    if (!sk) {
        sk = evr_calloc(1, sizeof *sk);
        sk->http = self;
        sk->fd = fd;
        sk->next = self->socks;
        self->socks = sk;
        curl_multi_assign(self->multi, fd, sk);
    }
    sk->events = ((what & CURL_POLL_IN) ? EVR_LOOP_READ : 0)
               | ((what & CURL_POLL_OUT) ? EVR_LOOP_WRITE : 0);
    if (sk->rest)
        return 0;
    if (evr_loop_fd_add(self->loop, fd, sk->events, s_on_fd, sk) != EVR_OK) {
        /* EVR_LOOP_MAX_FDS at once: the transfer waits for its timeout */
        fprintf(stderr, "evr_http: socket %d: the event loop watches too many fds\n", (int) fd);
    }
    return 0;
}

/*  CURLMOPT_TIMERFUNCTION: one timer, replaced at each call (-1: none). */
static int
s_on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void) multi;
    evr_http_t *self = userp;
    evr_loop_timer_cancel(self->loop, self->timer);
    self->timer = 0;
    if (timeout_ms >= 0)
        self->timer = evr_loop_timer_add(self->loop, (uint64_t) timeout_ms, s_on_due, self);
    return 0;
}

static bool s_curl_ready;

evr_http_t *
evr_http_new(const char *base, evr_loop_t *loop, evr_err_t *err)
{
    if (!s_curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        s_curl_ready = true;
    }
    evr_http_t *self = evr_calloc(1, sizeof *self);
    self->loop = loop;
    self->base = evr_strdup(base);
    if (strncmp(base, "unix://", 7) == 0) {
        self->socket = evr_strdup(base + 7);
        self->prefix = evr_strdup("http://d");
        if (strlen(self->socket) > 107) {
            evr_err_set(err, EVR_ERR_CONFIG, "%s: a unix socket path holds at most 107 bytes",
                        base);
            evr_http_destroy(&self);
            return NULL;
        }
    }
    else
        self->prefix = evr_strdup(base);
    self->multi = curl_multi_init();
    curl_multi_setopt(self->multi, CURLMOPT_SOCKETFUNCTION, s_on_socket);
    curl_multi_setopt(self->multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt(self->multi, CURLMOPT_TIMERFUNCTION, s_on_timer);
    curl_multi_setopt(self->multi, CURLMOPT_TIMERDATA, self);
    return self;
}

static void
s_free_req(evr_http_req_t *req)
{
    evr_http_t *self = req->http;
    if (req->prev)
        req->prev->next = req->next;
    else
        self->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
    if (req->added)
        curl_multi_remove_handle(self->multi, req->easy);
    curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->headers);
    free(req->body_copy);
    if (req->body_fp)
        fclose(req->body_fp);
    free(req->url);
    free(req->resp);
    free(req);
}

void
evr_http_destroy(evr_http_t **self_p)
{
    evr_http_t *self = *self_p;
    if (!self)
        return;
    while (self->reqs) {
        evr_http_req_t *req = self->reqs;
        if (req->opts.on_drop)
            req->opts.on_drop(req->opts.arg);
        s_free_req(req);
    }
    if (self->multi)
        curl_multi_cleanup(self->multi);
    while (self->socks)   /* those libcurl did not remove */
        s_sock_free(self, self->socks);
    evr_loop_timer_cancel(self->loop, self->timer);
    free(self->base);
    free(self->socket);
    free(self->prefix);
    free(self);
    *self_p = NULL;
}

const char *
evr_http_base(const evr_http_t *self)
{
    return self->base;
}

char *
evr_http_escape(const char *s, const char *keep)
{
    char *out = evr_malloc(strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char) *s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || strchr(keep, c))
            *o++ = (char) c;
        else
            o += sprintf(o, "%%%02X", c);
    }
    *o = '\0';
    return out;
}

/*  scheme://host:port of url (the port made explicit), in out; false
    when url does not parse. */
static bool
s_origin(CURLU *u, char *out, size_t cap)
{
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK
           && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK
           && curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
    if (ok) {
        for (char *c = host; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char) (*c - 'A' + 'a');
        snprintf(out, cap, "%s://%s:%s", scheme, host, port);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    return ok;
}

/*  A Location header of a 3xx answer, under EVR_FETCH_REDIRECT_SAME: false
    (and req->refused says why) when it leads to another origin. */
static bool
s_redirect_ok(evr_http_req_t *req, const char *buf, size_t len)
{
    long status = 0;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 300 || status > 399)
        return true;   /* curl follows only 3xx answers */
    const char *v = buf + 9;
    const char *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    char *target = evr_strndup(v, (size_t) (end - v));
    char *here = NULL;
    curl_easy_getinfo(req->easy, CURLINFO_EFFECTIVE_URL, &here);
    CURLU *from = curl_url(), *to = curl_url();
    char a[512] = "", b[512] = "";
    bool ok = curl_url_set(from, CURLUPART_URL, req->url, 0) == CURLUE_OK
           && s_origin(from, a, sizeof a)
           && curl_url_set(to, CURLUPART_URL, here ? here : req->url, 0) == CURLUE_OK
           && curl_url_set(to, CURLUPART_URL, target, 0) == CURLUE_OK   /* relative to here */
           && s_origin(to, b, sizeof b) && strcmp(a, b) == 0;
    if (!ok)
        snprintf(req->refused, sizeof req->refused,
                 "redirect to \"%.150s\" refused: only redirects to the same scheme, host and "
                 "port (%.120s) are followed", target, a[0] ? a : req->url);
    curl_url_cleanup(from);
    curl_url_cleanup(to);
    free(target);
    return ok;
}

static size_t
s_on_header(char *buf, size_t size, size_t n, void *arg)
{
    evr_http_req_t *req = arg;
    size_t len = size * n;
    if (req->opts.redirects == EVR_FETCH_REDIRECT_SAME && len >= 9
        && strncasecmp(buf, "Location:", 9) == 0 && !s_redirect_ok(req, buf, len))
        return 0;   /* curl ends the transfer */
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0)
        req->head_done = false;   /* a new response (after 100-continue) */
    if (len <= 2 && (buf[0] == '\r' || buf[0] == '\n') && !req->head_done) {
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
        if (req->status >= 200) {
            req->head_done = true;
            if (req->opts.on_head)
                req->opts.on_head(req, req->status, req->opts.arg);
        }
    }
    return len;
}

static size_t
s_on_body(char *buf, size_t size, size_t n, void *arg)
{
    evr_http_req_t *req = arg;
    size_t len = size * n;
    if (req->opts.on_data) {
        req->http->handed += len;
        if (!req->opts.on_data(req, (const uint8_t *) buf, len, req->opts.arg)) {
            req->aborted = true;
            return 0;   /* curl ends the transfer with CURLE_WRITE_ERROR */
        }
        return len;
    }
    size_t max = req->opts.max_body ? req->opts.max_body : S_DEFAULT_MAX_BODY;
    size_t keep = len;
    if (req->resp_len + keep > max) {
        keep = max - req->resp_len;
        req->truncated = true;
    }
    if (req->resp_len + keep + 1 > req->resp_cap) {
        req->resp_cap = (req->resp_len + keep + 1) * 2;
        if (req->resp_cap > max + 1)
            req->resp_cap = max + 1;
        req->resp = evr_realloc(req->resp, req->resp_cap);
    }
    memcpy(req->resp + req->resp_len, buf, keep);
    req->resp_len += keep;
    req->resp[req->resp_len] = '\0';
    return len;
}

/*  Why the address is local (loopback, link-local, unspecified), or NULL. */
static const char *
s_local_kind(const struct sockaddr *sa, char *text, size_t cap)
{
    uint32_t v4;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) (const void *) sa;
        inet_ntop(AF_INET, &in->sin_addr, text, (socklen_t) cap);
        v4 = ntohl(in->sin_addr.s_addr);
    }
    else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) (const void *) sa;
        const struct in6_addr *a = &in6->sin6_addr;
        inet_ntop(AF_INET6, a, text, (socklen_t) cap);
        if (IN6_IS_ADDR_LOOPBACK(a))
            return "loopback";
        if (IN6_IS_ADDR_UNSPECIFIED(a))
            return "unspecified";
        if (IN6_IS_ADDR_LINKLOCAL(a))
            return "link-local";
        if (!IN6_IS_ADDR_V4MAPPED(a) && !IN6_IS_ADDR_V4COMPAT(a))
            return NULL;
        memcpy(&v4, a->s6_addr + 12, 4);
        v4 = ntohl(v4);
    }
    else
        return "not an IP";
    if ((v4 >> 24) == 127)
        return "loopback";
    if ((v4 >> 24) == 0)
        return "unspecified";
    if ((v4 >> 16) == 0xA9FE)
        return "link-local";
    return NULL;
}

/*  With deny_local: no socket for a local address (curl tries the next
    address of the name, or fails with CURLE_COULDNT_CONNECT). */
static curl_socket_t
s_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void) purpose;
    evr_http_req_t *req = arg;
    char text[INET6_ADDRSTRLEN] = "?";
    const char *kind = s_local_kind(&addr->addr, text, sizeof text);
    if (kind) {
        snprintf(req->refused, sizeof req->refused,
                 "address %s refused: it is %s, and local addresses are denied", text, kind);
        return CURL_SOCKET_BAD;
    }
    req->refused[0] = '\0';   /* an earlier address of the name was refused, not this one */
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static size_t
s_read_body(char *buf, size_t size, size_t n, void *arg)
{
    evr_http_req_t *req = arg;
    if (!req->body_fp)
        return CURL_READFUNC_ABORT;   /* it did not open: refused says why */
    size_t got = fread(buf, 1, size * n, req->body_fp);
    if (got == 0 && ferror(req->body_fp)) {
        snprintf(req->refused, sizeof req->refused, "reading the body to send: %s",
                 strerror(errno));
        return CURL_READFUNC_ABORT;
    }
    return got;
}

/*  The body from opts.body_file, streamed by curl (an upload). */
static void
s_body_file(evr_http_req_t *req)
{
    CURL *e = req->easy;
    struct stat sb;
    req->body_fp = fopen(req->opts.body_file, "rb");
    if (!req->body_fp || fstat(fileno(req->body_fp), &sb) != 0) {
        snprintf(req->refused, sizeof req->refused, "%s: %s", req->opts.body_file,
                 strerror(errno));
        if (req->body_fp)
            fclose(req->body_fp);
        req->body_fp = NULL;
        sb.st_size = 1;   /* so the read callback runs, and aborts */
    }
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, s_read_body);
    curl_easy_setopt(e, CURLOPT_READDATA, req);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t) sb.st_size);
}

/*  opts->auth on e: basic for USER:PASSWORD, else a bearer token.  curl
    copies the strings, and sends them to the first URL's origin only
    (CURLOPT_UNRESTRICTED_AUTH off: a redirect elsewhere goes without). */
static void
s_auth(CURL *e, const char *auth)
{
    const char *colon = strchr(auth, ':');
    if (colon) {
        char *user = evr_strndup(auth, (size_t) (colon - auth));
        curl_easy_setopt(e, CURLOPT_USERNAME, user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, colon + 1);
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
        free(user);
    }
    else {
        curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, auth);
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long) CURLAUTH_BEARER);
    }
    curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
}

evr_http_req_t *
evr_http_start(evr_http_t *self, const evr_http_opts_t *opts)
{
    evr_http_req_t *req = evr_calloc(1, sizeof *req);
    req->http = self;
    req->opts = *opts;
    req->easy = curl_easy_init();
    /* an absolute URL leaves the socket: resources share this loop */
    bool absolute = strncmp(opts->path, "http://", 7) == 0
                 || strncmp(opts->path, "https://", 8) == 0;
    const char *sock = absolute ? NULL : self->socket;
    req->url = absolute ? evr_strdup(opts->path) : evr_asprintf("%s%s", self->prefix, opts->path);
    CURL *e = req->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    if (sock)
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, opts->method);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, opts->timeout_ms);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    if (opts->on_data)
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, S_STREAM_BUFFER);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, sock ? "http" : "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    bool follow = absolute && opts->redirects != EVR_FETCH_REDIRECT_NONE;
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    if (absolute && opts->auth)
        s_auth(e, opts->auth);
    req->opts.auth = NULL;   /* the caller's, not kept */
    if (absolute && opts->deny_local) {
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, s_open_socket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, req);
    }
    req->headers = curl_slist_append(NULL, "Expect:");   /* no 100-continue round trip */
    if (opts->body_file) {
        s_body_file(req);
        char *ct = evr_asprintf("Content-Type: %s", opts->content_type ? opts->content_type
                                                                      : "application/octet-stream");
        req->headers = curl_slist_append(req->headers, ct);
        free(ct);
    }
    else if (opts->body) {
        req->body_copy = evr_malloc(opts->body_len);
        memcpy(req->body_copy, opts->body, opts->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body_copy);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) opts->body_len);
        char *ct = evr_asprintf("Content-Type: %s",
                                opts->content_type ? opts->content_type : "application/json");
        req->headers = curl_slist_append(req->headers, ct);
        free(ct);
    }
    else if (strcmp(opts->method, "POST") == 0 || strcmp(opts->method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (opts->header)
        req->headers = curl_slist_append(req->headers, opts->header);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    req->next = self->reqs;
    if (self->reqs)
        self->reqs->prev = req;
    self->reqs = req;
    if (!self->in_curl) {
        curl_multi_add_handle(self->multi, e);   /* its timer runs it next turn */
        req->added = true;
    }
    return req;
}

static void
s_finish(evr_http_req_t *req, CURLcode code)
{
    if (req->status == 0)
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
    if (req->refused[0] && code != CURLE_OK) {
        req->rc = EVR_ERR_IO;
        snprintf(req->msg, sizeof req->msg, "%s %s: %s", req->opts.method, req->url,
                 req->refused);
    }
    else if (req->aborted) {   /* the receiver refused the data: not a success */
        req->rc = EVR_ERR_IO;
        snprintf(req->msg, sizeof req->msg, "%s %s: aborted by the receiver", req->opts.method,
                 req->url);
    }
    else if (code != CURLE_OK) {
        req->rc = EVR_ERR_IO;
        const char *why = req->errbuf[0] ? req->errbuf : curl_easy_strerror(code);
        snprintf(req->msg, sizeof req->msg, "%s %s: %s", req->opts.method, req->url, why);
    }
    if (req->opts.on_done)
        req->opts.on_done(req, req->opts.arg);
    s_free_req(req);
}

void
evr_http_cancel(evr_http_t *self, evr_http_req_t *req)
{
    if (self->in_curl)
        req->cancelled = true;
    else
        s_cancel_now(req);
}

static void
s_cancel_now(evr_http_req_t *req)
{
    req->cancelled = false;
    req->rc = EVR_ERR_IO;
    snprintf(req->msg, sizeof req->msg, "%s %s: cancelled", req->opts.method, req->url);
    if (req->opts.on_done)
        req->opts.on_done(req, req->opts.arg);
    s_free_req(req);
}

long
evr_http_status(const evr_http_req_t *req)
{
    return req->status;
}

const char *
evr_http_answered_elsewhere(const evr_http_req_t *req, char *buf, size_t size)
{
    char *here = NULL;
    if (!req->status || curl_easy_getinfo(req->easy, CURLINFO_EFFECTIVE_URL, &here) != CURLE_OK
        || !here || !strcmp(here, req->url))
        return NULL;
    CURLU *from = curl_url(), *to = curl_url();
    char a[512] = "", b[512] = "";
    bool same = curl_url_set(from, CURLUPART_URL, req->url, 0) == CURLUE_OK
             && s_origin(from, a, sizeof a)
             && curl_url_set(to, CURLUPART_URL, here, 0) == CURLUE_OK
             && s_origin(to, b, sizeof b) && strcmp(a, b) == 0;
    char *shown = NULL;   /* without a user or password the Location may have had */
    if (!same) {
        curl_url_set(to, CURLUPART_USER, NULL, 0);
        curl_url_set(to, CURLUPART_PASSWORD, NULL, 0);
        if (curl_url_get(to, CURLUPART_URL, &shown, 0) != CURLUE_OK)
            shown = NULL;
        snprintf(buf, size, "%s", shown ? shown : b[0] ? b : "another origin");
    }
    curl_free(shown);
    curl_url_cleanup(from);
    curl_url_cleanup(to);
    return same ? NULL : buf;
}

const char *
evr_http_body(const evr_http_req_t *req, size_t *len)
{
    if (len)
        *len = req->resp_len;
    return req->resp ? req->resp : "";
}

evr_rc_t
evr_http_error(const evr_http_req_t *req, const char **msg)
{
    if (msg)
        *msg = req->msg;
    return req->rc;
}

bool
evr_http_truncated(const evr_http_req_t *req)
{
    return req->truncated;
}

typedef struct {
    bool done;
    long status;
    char *body;
    size_t len;
    evr_rc_t rc;
    char msg[EVR_ERR_MAX];
} s_sync_t;

static void
s_sync_done(evr_http_req_t *req, void *arg)
{
    s_sync_t *s = arg;
    s->done = true;
    s->status = req->status;
    const char *msg;
    s->rc = evr_http_error(req, &msg);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    s->body = req->resp;   /* take it over */
    s->len = req->resp_len;
    req->resp = NULL;
}

evr_rc_t
evr_http_call(evr_http_t *self, const evr_http_opts_t *opts, long *status, char **body,
              size_t *len, evr_err_t *err)
{
    s_sync_t s = { 0 };
    evr_http_opts_t o = *opts;
    o.on_done = s_sync_done;
    o.on_drop = NULL;
    o.arg = &s;
    evr_http_req_t *req = evr_http_start(self, &o);
    while (!s.done)
        if (evr_loop_once(self->loop, 100) < 0)
            evr_http_cancel(self, req);   /* poll failed: nothing would end it */
    if (status)
        *status = s.status;
    if (len)
        *len = s.len;
    if (body)
        *body = s.body ? s.body : evr_strdup("");
    else
        free(s.body);
    if (s.rc)
        return evr_err_set(err, s.rc, "%s", s.msg);
    return EVR_OK;
}
