/*  evrun-bench-submit: acknowledged submits per second, N clients, one
    long-lived connection each (tests/bench/bench-submit runs it).

        evrun-bench-submit evrun ENDPOINT CLIENTS SECONDS
        evrun-bench-submit redis HOST:PORT CLIENTS SECONDS
        evrun-bench-submit beanstalkd HOST:PORT CLIENTS SECONDS

    Each client has one request outstanding: it sends the next as soon as
    the answer to the last has come (a closed loop, like redis-benchmark
    without -P).  evrun: a `submit` of a one-step trivial job to the
    broker's ipc:// client endpoint, ZMTP spoken here as a DEALER would
    (see s_zmtp_connect), encoded once and sent with a fresh job id
    written into its bytes each time (the other two send a prepared
    text too), counted when `accepted` comes (the broker answers only
    after its journal's flush); redis: `LPUSH` of a small value (its
    reply comes after the AOF is written, and with appendfsync always
    after its fsync); beanstalkd: `put` of the same value (INSERTED comes
    after its binlog write, fsynced with -f0).  One thread polls every
    connection.  After a warm-up of a fifth of SECONDS, prints

        submits_per_s: N

    counted over SECONDS.  Any refused request (error, queue full) ends
    the run with status 1 and the answer on stderr.
*/
#define _GNU_SOURCE     /* memmem */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "evr_bus.h"
#include "evr_msg.h"
#include "evr_spec.h"
#include "evr_ulid.h"
#include "evr_yaml.h"

#define S_MAX_CLIENTS 1024
#define S_VALUE "evrun-bench-submit:0123456789"

static const char s_pipeline[] =
    "pipeline: bench-submit\n"
    "image: localhost/evrun-busybox:latest\n"
    "queue: {limit: 1000000}\n"
    "steps:\n"
    "  - { name: s, run: \":\" }\n";

/*  The measuring window: counting starts after warm, stops at end. */
typedef struct {
    uint64_t warm, end;
    uint64_t count;
} s_clock_t;

static void
s_clock_start(s_clock_t *c, double seconds)
{
    uint64_t now = evr_mono_ns();
    c->warm = now + (uint64_t) (seconds * 0.2e9);
    c->end = c->warm + (uint64_t) (seconds * 1e9);
    c->count = 0;
}

static void
s_clock_ack(s_clock_t *c)
{
    uint64_t now = evr_mono_ns();
    if (now >= c->warm && now < c->end)
        c->count++;
}

static void
s_clock_print(const s_clock_t *c, double seconds)
{
    printf("submits_per_s: %.0f\n", (double) c->count / seconds);
}

/* -------------------------------------------------------------- evrun */

/*  The broker's client socket is a ZeroMQ ROUTER: each client here speaks
    ZMTP 3.0 (rfc.zeromq.org 23) to it itself, as a DEALER with the NULL
    mechanism on the --local ipc:// socket, as the Redis and beanstalkd
    sides speak RESP and beanstalkd's protocol over a plain socket: one
    write(2) a request, one read(2) for what has come.  A libzmq socket
    costs each side its I/O thread's wake-ups, several system calls a
    message, which are the client library's, not the broker's. */

#define S_ZMTP_GREETING 64
#define S_ZMTP_MORE 0x01
#define S_ZMTP_LONG 0x02
#define S_ZMTP_COMMAND 0x04

/*  The submit, encoded once (as the Redis and beanstalkd sides send one
    prepared text) as its two ZMTP frames, header and body, in which each
    send writes a fresh job id over the first one's (a ULID string of
    fixed length, at id_at). */
typedef struct {
    uint8_t *bytes;
    size_t len, id_at;
} s_wire_t;

static size_t
s_frame_head(uint8_t *p, uint8_t flags, size_t len)
{
    if (len < 256) {
        p[0] = flags;
        p[1] = (uint8_t) len;
        return 2;
    }
    p[0] = flags | S_ZMTP_LONG;
    for (int i = 8; i >= 1; i--, len >>= 8)
        p[i] = (uint8_t) len;
    return 9;
}

static int
s_wire_make(evr_msg_t *req, s_wire_t *w)
{
    char id[EVR_ULID_LEN + 1], hdr[EVR_MSG_HEADER_MAX];
    evr_ulid_new(id);
    free(req->job);
    req->job = evr_strdup(id);
    evr_msg_header(req->type, hdr);
    uint8_t *body;
    size_t blen, hl = strlen(hdr);
    evr_msg_encode(req, &body, &blen);
    const uint8_t *at = memmem(body, blen, id, EVR_ULID_LEN);
    if (!at) {
        fprintf(stderr, "evrun-bench-submit: the job id is not in the encoded submit\n");
        free(body);
        return 1;
    }
    w->bytes = evr_malloc(18 + hl + blen);
    size_t n = s_frame_head(w->bytes, S_ZMTP_MORE, hl);
    memcpy(w->bytes + n, hdr, hl);
    n += hl;
    n += s_frame_head(w->bytes + n, 0, blen);
    w->id_at = n + (size_t) (at - body);
    memcpy(w->bytes + n, body, blen);
    w->len = n + blen;
    free(body);
    return 0;
}

/*  One client's connection: what it has read and not yet taken. */
typedef struct {
    int fd;
    uint8_t buf[4096];
    size_t len;
} s_zconn_t;

static int
s_write_all(int fd, const void *buf, size_t n);

static int
s_read_some(s_zconn_t *c)
{
    if (c->len == sizeof c->buf) {
        fprintf(stderr, "evrun-bench-submit: an answer over %zu bytes\n", sizeof c->buf);
        return -1;
    }
    ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    if (r < 0 && errno == EINTR)
        return 0;
    if (r <= 0) {
        fprintf(stderr, "evrun-bench-submit: the broker closed a connection%s%s\n",
                r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
        return -1;
    }
    c->len += (size_t) r;
    return 0;
}

/*  The frame at c->buf + *at, if whole: its flags, data and size; *at
    moves past it.  0 when it is whole, 1 when more must be read. */
static int
s_frame_next(const s_zconn_t *c, size_t *at, uint8_t *flags, const uint8_t **data, size_t *len)
{
    const uint8_t *p = c->buf + *at;
    size_t have = c->len - *at, hl = 2, n;
    if (have < 2 || ((p[0] & S_ZMTP_LONG) && have < 9))
        return 1;
    if (p[0] & S_ZMTP_LONG) {
        hl = 9;
        n = 0;
        for (int i = 1; i <= 8; i++)
            n = n << 8 | p[i];
    }
    else
        n = p[1];
    if (n > have - hl)
        return 1;
    *flags = p[0];
    *data = p + hl;
    *len = n;
    *at += hl + n;
    return 0;
}

/*  Connects to the broker's ipc:// client endpoint and does the ZMTP
    handshake (greeting, READY); the socket, or -1 (said on stderr). */
static int
s_zmtp_connect(const char *ep, s_zconn_t *c)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strncmp(ep, "ipc://", 6) != 0 || strlen(ep + 6) >= sizeof sa.sun_path) {
        fprintf(stderr, "evrun-bench-submit: %s: expected the broker's ipc:// client "
                "endpoint (--local)\n", ep);
        return -1;
    }
    memcpy(sa.sun_path, ep + 6, strlen(ep + 6));
    c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        fprintf(stderr, "evrun-bench-submit: cannot connect to %s: %s\n", ep, strerror(errno));
        return -1;
    }
    static const uint8_t ready[] = "\x04\x1c\x05READY\x0bSocket-Type\0\0\0\x06" "DEALER";
    uint8_t hello[S_ZMTP_GREETING + sizeof ready - 1] = { 0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F,
                                                          3, 0, 'N', 'U', 'L', 'L' };
    memcpy(hello + S_ZMTP_GREETING, ready, sizeof ready - 1);
    if (s_write_all(c->fd, hello, sizeof hello))
        return -1;
    while (c->len < S_ZMTP_GREETING)
        if (s_read_some(c))
            return -1;
    if (c->buf[0] != 0xFF || c->buf[9] != 0x7F || c->buf[10] < 3) {
        fprintf(stderr, "evrun-bench-submit: %s does not greet as ZMTP 3\n", ep);
        return -1;
    }
    size_t at = S_ZMTP_GREETING;
    uint8_t flags;
    const uint8_t *d;
    size_t n;
    while (s_frame_next(c, &at, &flags, &d, &n))
        if (s_read_some(c))
            return -1;
    if (!(flags & S_ZMTP_COMMAND) || n < 6 || memcmp(d, "\x05READY", 6) != 0) {
        fprintf(stderr, "evrun-bench-submit: the broker refused the handshake: %.*s\n",
                (int) n, (const char *) d);
        return -1;
    }
    memmove(c->buf, c->buf + at, c->len - at);
    c->len -= at;
    return c->fd;
}

static int
s_evrun_send(s_zconn_t *c, s_wire_t *w)
{
    char id[EVR_ULID_LEN + 1];
    evr_ulid_new(id);
    memcpy(w->bytes + w->id_at, id, EVR_ULID_LEN);
    return s_write_all(c->fd, w->bytes, w->len);
}

/*  Checks one answer (its header and body frame): 0 for an `accepted` of
    a new job, else 1 (said on stderr). */
static int
s_evrun_check(const uint8_t *hdr, size_t hl, const uint8_t *body, size_t bl)
{
    evr_msg_t m = { 0 };
    const char *code;
    evr_err_t err;
    int bad = 0;
    if (evr_msg_decode((const char *) hdr, hl, body, bl, &m, &code, &err)) {
        fprintf(stderr, "evrun-bench-submit: bad answer: %s\n", err.msg);
        bad = 1;
    }
    else if (m.type != EVR_MSG_ACCEPTED || m.existing) {
        fprintf(stderr, "evrun-bench-submit: answer %s%s: %s %s\n", evr_msgtype_name(m.type),
                m.existing ? " (existing)" : "", m.code ? m.code : "",
                m.message ? m.message : "");
        bad = 1;
    }
    evr_msg_clear(&m);
    return bad;
}

/*  Takes the whole answers c has read: how many (each `accepted`), -1
    when one is not (said on stderr). */
static int
s_evrun_answers(s_zconn_t *c)
{
    size_t at = 0, next = 0;
    int answers = 0;
    uint8_t f1, f2;
    const uint8_t *hdr, *body;
    size_t hl, bl;
    while (!s_frame_next(c, &next, &f1, &hdr, &hl)) {
        if (f1 & S_ZMTP_COMMAND) {  /* e.g. a PING: nothing to answer here */
            at = next;
            continue;
        }
        if (!(f1 & S_ZMTP_MORE)) {
            fprintf(stderr, "evrun-bench-submit: bad answer: not a header and a body frame\n");
            return -1;
        }
        if (s_frame_next(c, &next, &f2, &body, &bl))
            break;
        if ((f2 & (S_ZMTP_MORE | S_ZMTP_COMMAND)) || s_evrun_check(hdr, hl, body, bl)) {
            if (f2 & (S_ZMTP_MORE | S_ZMTP_COMMAND))
                fprintf(stderr, "evrun-bench-submit: bad answer: not a header and a body "
                        "frame\n");
            return -1;
        }
        answers++;
        at = next;
    }
    memmove(c->buf, c->buf + at, c->len - at);
    c->len -= at;
    return answers;
}

static int
s_evrun(const char *ep, int n, double seconds)
{
    evr_msg_t req = { .type = EVR_MSG_SUBMIT };
    req.spec = evr_spec_new();
    evr_diag_t *d = evr_diag_new("bench-submit.yml");
    if (evr_yaml_load(s_pipeline, strlen(s_pipeline), req.spec, d)) {
        fprintf(stderr, "evrun-bench-submit: %s\n", evr_diag_count(d) ? evr_diag_get(d, 0) : "");
        return 1;
    }
    evr_diag_destroy(&d);
    s_wire_t w = { .bytes = NULL };
    if (s_wire_make(&req, &w)) {
        evr_msg_clear(&req);
        return 1;
    }
    s_zconn_t *conns = evr_calloc((size_t) n, sizeof *conns);
    struct pollfd *pfd = evr_calloc((size_t) n, sizeof *pfd);
    int status = 0;
    for (int i = 0; i < n; i++)
        conns[i].fd = -1;
    for (int i = 0; i < n && !status; i++) {
        status = s_zmtp_connect(ep, &conns[i]) < 0;
        pfd[i] = (struct pollfd) { conns[i].fd, POLLIN, 0 };
    }
    s_clock_t c;
    s_clock_start(&c, seconds);
    for (int i = 0; i < n && !status; i++)
        status = s_evrun_send(&conns[i], &w) != 0;
    while (!status && evr_mono_ns() < c.end) {
        if (poll(pfd, (nfds_t) n, 1000) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n && !status; i++) {
            if (!pfd[i].revents)
                continue;
            int got = s_read_some(&conns[i]) ? -1 : s_evrun_answers(&conns[i]);
            status = got < 0;
            for (int k = 0; k < got && !status; k++) {
                s_clock_ack(&c);
                status = s_evrun_send(&conns[i], &w) != 0;
            }
        }
    }
    if (!status)
        s_clock_print(&c, seconds);
    for (int i = 0; i < n; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    free(conns);
    free(pfd);
    free(w.bytes);
    evr_msg_clear(&req);
    return status;
}

/* ------------------------------------------------- redis, beanstalkd */

typedef struct {
    int fd;
    char buf[256];
    size_t len;
} s_conn_t;

static int
s_connect(const char *hostport)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t) (colon - hostport) >= sizeof host)
        return -1;
    snprintf(host, sizeof host, "%.*s", (int) (colon - hostport), hostport);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) atoi(colon + 1)) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
s_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/*  Reads what c has: the number of whole answer lines ("...\r\n") taken,
    -1 when the connection failed or an answer is not ok_prefix. */
static int
s_read_lines(s_conn_t *c, const char *ok_prefix)
{
    ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
    if (r <= 0)
        return -1;
    c->len += (size_t) r;
    c->buf[c->len] = '\0';
    int lines = 0;
    char *eol;
    while ((eol = strstr(c->buf, "\r\n"))) {
        if (strncmp(c->buf, ok_prefix, strlen(ok_prefix)) != 0) {
            fprintf(stderr, "evrun-bench-submit: answer: %.*s\n", (int) (eol - c->buf), c->buf);
            return -1;
        }
        size_t used = (size_t) (eol + 2 - c->buf);
        memmove(c->buf, eol + 2, c->len - used + 1);
        c->len -= used;
        lines++;
    }
    if (c->len >= sizeof c->buf - 1)
        return -1;
    return lines;
}

static int
s_text(const char *kind, const char *hostport, int n, double seconds)
{
    bool redis = strcmp(kind, "redis") == 0;
    char req[256];
    const char *ok;
    size_t vl = strlen(S_VALUE);
    if (redis) {
        snprintf(req, sizeof req, "*3\r\n$5\r\nLPUSH\r\n$12\r\nbench-submit\r\n$%zu\r\n%s\r\n",
                 vl, S_VALUE);
        ok = ":";
    }
    else {
        snprintf(req, sizeof req, "put 0 0 60 %zu\r\n%s\r\n", vl, S_VALUE);
        ok = "INSERTED ";
    }
    size_t rl = strlen(req);
    s_conn_t *conns = evr_calloc((size_t) n, sizeof *conns);
    struct pollfd *pfd = evr_calloc((size_t) n, sizeof *pfd);
    int status = 0;
    for (int i = 0; i < n && !status; i++) {
        conns[i].fd = s_connect(hostport);
        if (conns[i].fd < 0) {
            fprintf(stderr, "evrun-bench-submit: cannot connect to %s: %s\n", hostport,
                    strerror(errno));
            status = 1;
        }
        pfd[i] = (struct pollfd) { conns[i].fd, POLLIN, 0 };
    }
    s_clock_t c;
    s_clock_start(&c, seconds);
    for (int i = 0; i < n && !status; i++)
        status = s_write_all(conns[i].fd, req, rl) != 0;
    while (!status && evr_mono_ns() < c.end) {
        if (poll(pfd, (nfds_t) n, 1000) < 0)
            break;
        for (int i = 0; i < n && !status; i++) {
            if (!pfd[i].revents)
                continue;
            int lines = s_read_lines(&conns[i], ok);
            status = lines < 0;
            for (int k = 0; k < lines && !status; k++) {
                s_clock_ack(&c);
                status = s_write_all(conns[i].fd, req, rl) != 0;
            }
        }
    }
    if (!status)
        s_clock_print(&c, seconds);
    for (int i = 0; i < n; i++)
        if (conns[i].fd > 0)
            close(conns[i].fd);
    free(conns);
    free(pfd);
    return status;
}

int
main(int argc, char **argv)
{
    int n = argc == 5 ? atoi(argv[3]) : 0;
    double seconds = argc == 5 ? atof(argv[4]) : 0;
    if (argc != 5 || n < 1 || n > S_MAX_CLIENTS || seconds <= 0 || seconds > 3600) {
        fprintf(stderr, "usage: evrun-bench-submit evrun|redis|beanstalkd ENDPOINT CLIENTS "
                "SECONDS\n  (CLIENTS 1..%d; ENDPOINT a bus endpoint for evrun, else "
                "127.0.0.1:PORT)\n", S_MAX_CLIENTS);
        return 2;
    }
    if (strcmp(argv[1], "evrun") == 0)
        return s_evrun(argv[2], n, seconds);
    if (strcmp(argv[1], "redis") == 0 || strcmp(argv[1], "beanstalkd") == 0)
        return s_text(argv[1], argv[2], n, seconds);
    fprintf(stderr, "evrun-bench-submit: unknown target %s (evrun, redis or beanstalkd)\n",
            argv[1]);
    return 2;
}
