/*  test_http.c: evr_http's streams against a real server on a unix socket
    (a child process of the test): a body that is there at once comes
    whole; a trickle comes piece by piece, never held back for more; a
    bulk stream sent in podman's 8 KiB frames is read at most once a
    millisecond (its socket rests between reads) and comes whole and in
    order; a transport destroyed while its socket rests frees everything;
    and evr_http_escape, the percent-encoding of podman's paths. */
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_http.h"
#include "evr_loop.h"
#include "evr_test.h"

typedef enum { S_AT_ONCE, S_TRICKLE, S_FRAMES } s_mode_t;

#define S_BIG (512u * 1024)
#define S_FRAMES_TOTAL (2u * 1024 * 1024)
#define S_FRAME 8192u           /* a write every 200 us, as podman's frames come */

static char s_dir[64], s_path[96];

static uint8_t
s_byte(size_t i)
{
    return (uint8_t) (i % 251);
}

static void
s_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w <= 0)
            _exit(3);
        b += w;
        n -= (size_t) w;
    }
}

/*  The child: answers one request on lfd in mode, then exits.  go: a
    pipe it waits on between the trickle's two pieces. */
static void
s_serve(int lfd, s_mode_t mode, int go)
{
    int c = accept(lfd, NULL, NULL);
    if (c < 0)
        _exit(2);
    char req[4096];
    size_t got = 0;
    while (got < sizeof req - 1) {   /* the request's head */
        ssize_t n = read(c, req + got, sizeof req - 1 - got);
        if (n <= 0)
            _exit(2);
        got += (size_t) n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    char head[128];
    size_t total = mode == S_AT_ONCE ? S_BIG : mode == S_TRICKLE ? 12 : S_FRAMES_TOTAL;
    int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", total);
    if (mode == S_TRICKLE) {
        s_write_all(c, head, (size_t) hl);
        s_write_all(c, "line1\n", 6);
        char b;
        if (read(go, &b, 1) != 1)   /* the client has the first line */
            _exit(4);
        s_write_all(c, "line2\n", 6);
    }
    else {
        uint8_t *body = malloc(total);
        for (size_t i = 0; i < total; i++)
            body[i] = s_byte(i);
        s_write_all(c, head, (size_t) hl);
        if (mode == S_AT_ONCE)
            s_write_all(c, body, total);
        else
            for (size_t at = 0; at < total; at += S_FRAME) {
                s_write_all(c, body + at, S_FRAME);
                usleep(200);
            }
        free(body);
    }
    close(c);
    _exit(0);
}

/*  A server in a child process for one request; returns its pid. */
static pid_t
s_server(s_mode_t mode, int go)
{
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", s_path);
    unlink(s_path);
    if (lfd < 0 || bind(lfd, (struct sockaddr *) &a, sizeof a) != 0 || listen(lfd, 4) != 0) {
        perror("test_http: server socket");
        exit(1);
    }
    pid_t pid = fork();
    if (pid == 0)
        s_serve(lfd, mode, go);
    close(lfd);
    return pid;
}

typedef struct {
    size_t total, pieces;
    bool in_order, done;
    evr_rc_t rc;
    char first[16];
    int go;             /* the trickle: told once the first line is in */
    /* reads: the pieces handed on in one turn of the loop are one read */
    size_t reads, turn_bytes;
    uint64_t turn_first, turn_last, prev_last, prev_bytes;
    uint64_t min_gap_after_bulk;    /* ns from a read of 8 to 128 KiB to the next */
} s_got_t;

/*  The turn just run: close its read, if it had one. */
static void
s_turn_ended(s_got_t *g)
{
    if (!g->turn_bytes)
        return;
    if (g->reads && g->prev_bytes >= 8192 && g->prev_bytes < 128 * 1024) {
        uint64_t gap = g->turn_first - g->prev_last;
        if (!g->min_gap_after_bulk || gap < g->min_gap_after_bulk)
            g->min_gap_after_bulk = gap;
    }
    g->reads++;
    g->prev_last = g->turn_last;
    g->prev_bytes = g->turn_bytes;
    g->turn_bytes = 0;
}

static bool
s_on_data(evr_http_req_t *req, const uint8_t *data, size_t len, void *arg)
{
    (void) req;
    s_got_t *g = arg;
    if (g->pieces == 0)
        snprintf(g->first, sizeof g->first, "%.*s", (int) (len < 15 ? len : 15),
                 (const char *) data);
    for (size_t i = 0; i < len; i++)
        if (data[i] != s_byte(g->total + i))
            g->in_order = false;
    g->pieces++;
    g->total += len;
    uint64_t now = evr_mono_ns();
    if (!g->turn_bytes)
        g->turn_first = now;
    g->turn_last = now;
    g->turn_bytes += len;
    if (g->go >= 0 && strstr(g->first, "line1\n")) {
        if (write(g->go, "g", 1) != 1)
            perror("test_http: pipe");
        close(g->go);
        g->go = -1;
    }
    return true;
}

static void
s_on_done(evr_http_req_t *req, void *arg)
{
    s_got_t *g = arg;
    g->done = true;
    g->rc = evr_http_error(req, NULL);
}

static void
s_on_drop(void *arg)
{
    s_got_t *g = arg;
    g->done = true;
    g->rc = EVR_ERR_IO;
}

/*  One streamed GET against a server in mode; turns the loop until it
    ends (at most some 10 s: a stream that waits for more than a trickle
    sends never ends, and fails here rather than hangs). */
static void
s_stream(s_mode_t mode, s_got_t *g)
{
    int go[2] = { -1, -1 };
    if (mode == S_TRICKLE && pipe(go) != 0)
        return;
    pid_t pid = s_server(mode, go[0]);
    if (go[0] >= 0)
        close(go[0]);
    memset(g, 0, sizeof *g);
    g->in_order = true;
    g->go = go[1];
    evr_loop_t *loop = evr_loop_new();
    char *base = evr_asprintf("unix://%s", s_path);
    evr_err_t err;
    evr_http_t *http = evr_http_new(base, loop, &err);
    evr_http_opts_t o = { .method = "GET", .path = "/stream", .on_data = s_on_data,
                          .on_done = s_on_done, .on_drop = s_on_drop, .arg = g };
    evr_http_start(http, &o);
    /* by the clock, not by turns: a turn may be short under load */
    uint64_t until = evr_mono_ns() + 10000000000ull;
    while (!g->done && evr_mono_ns() < until) {
        evr_loop_once(loop, 10);
        s_turn_ended(g);
    }
    evr_http_destroy(&http);
    evr_loop_destroy(&loop);
    free(base);
    if (g->go >= 0)
        close(g->go);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void
test_at_once_comes_whole(void)
{
    s_got_t g;
    s_stream(S_AT_ONCE, &g);
    CHECK(g.done && g.rc == EVR_OK);
    CHECK(g.total == S_BIG);
    CHECK(g.in_order);
}

static void
test_trickle_comes_at_once(void)
{
    s_got_t g;
    s_stream(S_TRICKLE, &g);
    CHECK(g.done && g.rc == EVR_OK);
    CHECK_STR(g.first, "line1\n");   /* not held back for more */
    CHECK(g.total == 12);
    CHECK(g.pieces == 2);
}

/*  Frames as podman sends them, 8 KiB every 200 us: read one by one,
    100 MB of output took 12,000 turns of the loop (a poll and reads
    each).  A read of 8 KiB or more (but under 128 KiB: a sender faster
    than that is read on at once) lets its socket rest 1 ms: the next
    read takes what came meanwhile. */
static void
test_frames_are_read_in_bulk(void)
{
    s_got_t g;
    s_stream(S_FRAMES, &g);
    CHECK(g.done && g.rc == EVR_OK);
    CHECK(g.total == S_FRAMES_TOTAL);
    CHECK(g.in_order);
    CHECK(g.reads >= 2 && g.min_gap_after_bulk >= 1000000);
    fprintf(stderr, "  (%zu frames in %zu reads, %.2f ms at least between a bulk read and the next)\n",
            (size_t) (S_FRAMES_TOTAL / S_FRAME), g.reads, (double) g.min_gap_after_bulk / 1e6);
}

/*  Destroyed while its socket rests after a bulk read: the request is
    dropped (on_drop), the rest's timer and the socket's record freed. */
static void
test_destroy_while_resting(void)
{
    pid_t pid = s_server(S_FRAMES, -1);
    s_got_t g = { .in_order = true, .go = -1 };
    evr_loop_t *loop = evr_loop_new();
    char *base = evr_asprintf("unix://%s", s_path);
    evr_err_t err;
    evr_http_t *http = evr_http_new(base, loop, &err);
    evr_http_opts_t o = { .method = "GET", .path = "/stream", .on_data = s_on_data,
                          .on_done = s_on_done, .on_drop = s_on_drop, .arg = &g };
    evr_http_start(http, &o);
    for (int i = 0; i < 1000 && g.turn_bytes < 8192; i++) {   /* a bulk read: it rests */
        g.turn_bytes = 0;
        evr_loop_once(loop, 10);
    }
    CHECK(g.total > 0 && !g.done);
    evr_http_destroy(&http);
    CHECK(g.done && g.rc == EVR_ERR_IO);   /* dropped */
    CHECK(evr_loop_once(loop, 5) == 0);     /* nothing of it left in the loop */
    evr_loop_destroy(&loop);
    free(base);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/*  Percent-encoding as podman's paths and queries take it: letters,
    digits and the caller's bytes stay, the rest %XX, each byte of UTF-8
    on its own. */
static void
test_escape(void)
{
    static const struct {
        const char *s, *keep, *want;
    } cases[] = {
        { "evrun-01J-step_1.2", "-._/~", "evrun-01J-step_1.2" },
        { "/workspace/a b~c", "-._/~", "/workspace/a%20b~c" },
        { "quay.io/x/y:1@sha256", "-._~/:@", "quay.io/x/y:1@sha256" },
        { "{\"label\":[\"evrun.provisioner=/tmp/p d\"]}", "-._",
          "%7B%22label%22%3A%5B%22evrun.provisioner%3D%2Ftmp%2Fp%20d%22%5D%7D" },
        { "a~b", "-._", "a%7Eb" },
        { "\xc3\xa9%&?#", "", "%C3%A9%25%26%3F%23" },
        { "", "-._", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = evr_http_escape(cases[i].s, cases[i].keep);
        CHECK_STR(got, cases[i].want);
        free(got);
    }
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(s_dir, sizeof s_dir, "/tmp/evr-http-XXXXXX");
    if (!mkdtemp(s_dir)) {
        perror("test_http: mkdtemp");
        return 1;
    }
    snprintf(s_path, sizeof s_path, "%s/s.sock", s_dir);
    EVR_TEST_RUN(test_at_once_comes_whole);
    EVR_TEST_RUN(test_trickle_comes_at_once);
    EVR_TEST_RUN(test_frames_are_read_in_bulk);
    EVR_TEST_RUN(test_destroy_while_resting);
    EVR_TEST_RUN(test_escape);
    unlink(s_path);
    rmdir(s_dir);
    EVR_TEST_END();
}
