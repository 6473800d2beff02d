/*  evrun-bench-submit: acknowledged submits per second, N clients, one
    long-lived connection each (tests/bench/bench-submit runs it).

        evrun-bench-submit evrun ENDPOINT CLIENTS SECONDS
        evrun-bench-submit redis HOST:PORT CLIENTS SECONDS
        evrun-bench-submit beanstalkd HOST:PORT CLIENTS SECONDS

    Each client has one request outstanding: it sends the next as soon as
    the answer to the last has come (a closed loop, like redis-benchmark
    without -P).  evrun: a `submit` of a one-step trivial job on a DEALER
    socket (bus/evr_bus.h), encoded once and sent with a fresh job id
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

/*  The submit, encoded once (as the Redis and beanstalkd sides send one
    prepared text): its header frame and its body, in which each send
    writes a fresh job id over the first one's (a ULID string of fixed
    length, at id_at). */
typedef struct {
    char hdr[EVR_MSG_HEADER_MAX];
    uint8_t *body;
    size_t len, id_at;
} s_wire_t;

static int
s_wire_make(evr_msg_t *req, s_wire_t *w)
{
    char id[EVR_ULID_LEN + 1];
    evr_ulid_new(id);
    free(req->job);
    req->job = evr_strdup(id);
    evr_msg_header(req->type, w->hdr);
    evr_msg_encode(req, &w->body, &w->len);
    const uint8_t *at = memmem(w->body, w->len, id, EVR_ULID_LEN);
    if (!at) {
        fprintf(stderr, "evrun-bench-submit: the job id is not in the encoded submit\n");
        return 1;
    }
    w->id_at = (size_t) (at - w->body);
    return 0;
}

static evr_rc_t
s_evrun_send(zsock_t *sock, s_wire_t *w)
{
    char id[EVR_ULID_LEN + 1];
    evr_ulid_new(id);
    memcpy(w->body + w->id_at, id, EVR_ULID_LEN);
    void *h = zsock_resolve(sock);
    if (zmq_send(h, w->hdr, strlen(w->hdr), ZMQ_SNDMORE) < 0
        || zmq_send(h, w->body, w->len, 0) < 0) {
        fprintf(stderr, "evrun-bench-submit: send: %s\n", zmq_strerror(zmq_errno()));
        return EVR_ERR_IO;
    }
    return EVR_OK;
}

/*  Reads one answer on sock if one waits (its two frames with libzmq's
    own calls, no czmq message): 0 for an `accepted` of a new job, -1
    when none waits, else 1 (said on stderr). */
static int
s_evrun_answer(zsock_t *sock)
{
    void *h = zsock_resolve(sock);
    zmq_msg_t hdr, body;
    zmq_msg_init(&hdr);
    if (zmq_msg_recv(&hdr, h, ZMQ_DONTWAIT) < 0 && zmq_errno() == EAGAIN) {
        zmq_msg_close(&hdr);
        return -1;
    }
    zmq_msg_init(&body);
    evr_msg_t m = { 0 };
    const char *code;
    evr_err_t err;
    int bad = 0;
    if (!zmq_msg_size(&hdr) || !zmq_msg_more(&hdr) || zmq_msg_recv(&body, h, 0) < 0
        || zmq_msg_more(&body)) {
        fprintf(stderr, "evrun-bench-submit: bad answer: not a header and a body frame\n");
        bad = 1;
    }
    else if (evr_msg_decode(zmq_msg_data(&hdr), zmq_msg_size(&hdr), zmq_msg_data(&body),
                            zmq_msg_size(&body), &m, &code, &err)) {
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
    zmq_msg_close(&hdr);
    zmq_msg_close(&body);
    return bad;
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
    s_wire_t w = { .body = NULL };
    if (s_wire_make(&req, &w)) {
        evr_msg_clear(&req);
        return 1;
    }
    zsock_t **socks = evr_calloc((size_t) n, sizeof *socks);
    struct pollfd *pfd = evr_calloc((size_t) n, sizeof *pfd);
    int status = 0;
    for (int i = 0; i < n && !status; i++) {
        socks[i] = zsock_new(ZMQ_DEALER);
        evr_bus_setup(socks[i]);
        zsock_set_linger(socks[i], 0);
        if (zsock_connect(socks[i], "%s", ep) < 0) {
            fprintf(stderr, "evrun-bench-submit: cannot connect to %s\n", ep);
            status = 1;
        }
        pfd[i] = (struct pollfd) { zsock_fd(socks[i]), POLLIN, 0 };
    }
    s_clock_t c;
    s_clock_start(&c, seconds);
    for (int i = 0; i < n && !status; i++)
        status = s_evrun_send(socks[i], &w) != EVR_OK;
    /* poll(2) on the sockets' ZMQ_FDs (zmq_poll asks each of the n sockets
       for its events, two system calls each, every time): a socket whose
       fd fired is read without waiting until a receive finds nothing (only
       then does libzmq signal its fd again).  Every 100 ms without any,
       all are tried (a lost signal would only slow the run). */
    while (!status && evr_mono_ns() < c.end) {
        int ready = poll(pfd, (nfds_t) n, 100);
        if (ready < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n && !status; i++) {
            if (ready > 0 && !pfd[i].revents)
                continue;
            int a;
            while (!status && (a = s_evrun_answer(socks[i])) >= 0) {
                status = a;
                s_clock_ack(&c);
                if (!status)
                    status = s_evrun_send(socks[i], &w) != EVR_OK;
            }
        }
    }
    if (!status)
        s_clock_print(&c, seconds);
    for (int i = 0; i < n; i++)
        zsock_destroy(&socks[i]);
    free(socks);
    free(pfd);
    free(w.body);
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
s_write_all(int fd, const char *p, size_t n)
{
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
    if (strcmp(argv[1], "evrun") == 0) {
        zsys_init();
        zsys_handler_set(NULL);
        return s_evrun(argv[2], n, seconds);
    }
    if (strcmp(argv[1], "redis") == 0 || strcmp(argv[1], "beanstalkd") == 0)
        return s_text(argv[1], argv[2], n, seconds);
    fprintf(stderr, "evrun-bench-submit: unknown target %s (evrun, redis or beanstalkd)\n",
            argv[1]);
    return 2;
}
