/*  test_chan.c: the control channel (runner/evr_chan.h): the answers to
    good and bad request lines, and a real socket on a real loop: lines
    split across writes, several per write, an oversized line and one of
    the most bytes however it ends, many sent to a client that reads
    none, too many
    connections, a silent client beside a talking one.  Also evr_mask_add,
    the masker's half of registered secrets. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "evr_chan.h"
#include "evr_output.h"
#include "evr_test.h"

static evr_rc_t
s_echo(const json_t *req, json_t *ans, evr_err_t *err, void *arg)
{
    (void) err;
    (*(int *) arg)++;
    json_object_set(ans, "said", json_object_get(req, "say"));
    return EVR_OK;
}

static evr_rc_t
s_refuse(const json_t *req, json_t *ans, evr_err_t *err, void *arg)
{
    (void) req;
    (void) ans;
    (void) arg;
    return evr_err_set(err, EVR_ERR_PROTO, "not today");
}

static const evr_chan_cmd_t s_cmds[] = {
    { "echo", s_echo },
    { "refuse", s_refuse },
    { NULL, NULL },
};

static char *
s_ans(const char *line)
{
    int calls = 0;
    return evr_chan_answer(s_cmds, &calls, line, strlen(line));
}

static void
test_answers(void)
{
    char *a = s_ans("{\"cmd\": \"echo\", \"say\": \"hi\", \"id\": 7}");
    CHECK_CONTAINS(a, "\"ok\":true");
    CHECK_CONTAINS(a, "\"said\":\"hi\"");
    CHECK_CONTAINS(a, "\"id\":7");
    free(a);
    a = s_ans("{\"cmd\": \"echo\"");
    CHECK_CONTAINS(a, "\"ok\":false");
    CHECK_CONTAINS(a, "request is not JSON");
    free(a);
    a = s_ans("not json at all");
    CHECK_CONTAINS(a, "request is not JSON");
    free(a);
    a = s_ans("[\"echo\"]");
    CHECK_CONTAINS(a, "not a JSON object");
    free(a);
    a = s_ans("\"echo\"");   /* JSON, not an object */
    CHECK_CONTAINS(a, "request is not a JSON object");
    free(a);
    a = s_ans("null");
    CHECK_CONTAINS(a, "request is not a JSON object");
    free(a);
    a = s_ans("{\"command\": \"echo\", \"id\": \"x1\"}");
    CHECK_CONTAINS(a, "no string \\\"cmd\\\"");
    CHECK_CONTAINS(a, "\"id\":\"x1\"");
    free(a);
    a = s_ans("{\"cmd\": 3}");
    CHECK_CONTAINS(a, "no string \\\"cmd\\\"");
    free(a);
    a = s_ans("{\"cmd\": \"trigger\"}");
    CHECK_CONTAINS(a, "\"ok\":false");
    CHECK_CONTAINS(a, "unknown command \\\"trigger\\\" (this runner knows: echo, refuse)");
    free(a);
    a = s_ans("{\"cmd\": \"refuse\", \"id\": 1}");
    CHECK_CONTAINS(a, "\"error\":\"refuse: not today\"");
    CHECK_CONTAINS(a, "\"id\":1");
    free(a);
    a = s_ans("{\"cmd\": \"echo\", \"cmd\": \"refuse\"}");
    CHECK_CONTAINS(a, "request is not JSON");   /* a key twice */
    free(a);
    /* an id that cannot be echoed as sent: refused, not dropped */
    a = s_ans("{\"cmd\": \"echo\", \"say\": \"hi\", \"id\": 1.5}");
    CHECK_CONTAINS(a, "\"ok\":false");
    CHECK_CONTAINS(a, "request \\\"id\\\" is a number with a fraction: expected a string or an "
                      "integer");
    free(a);
    a = s_ans("{\"cmd\": \"echo\", \"id\": {\"a\": 1}}");
    CHECK_CONTAINS(a, "request \\\"id\\\" is an object");
    CHECK(strstr(a, "said") == NULL);
    free(a);
    /* an unknown command's name cut (at 64 bytes) inside a character: the
       error was not valid UTF-8, jansson made no answer of it, and the
       runner crashed on the NULL */
    char line[256];
    snprintf(line, sizeof line, "{\"cmd\": \"%s\xc3\xa9\"}",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    a = s_ans(line);
    CHECK(a != NULL);
    if (a) {
        CHECK_CONTAINS(a, "\"ok\":false");
        CHECK_CONTAINS(a, "unknown command \\\"aaaa");
    }
    free(a);
}

/* ------------------------------------------------------------ live socket */

typedef struct {
    evr_loop_t *loop;
    evr_chan_t *chan;
    char dir[64];
    int calls;
} s_fix_t;

static void
s_fix_new(s_fix_t *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/evr-test-chan-XXXXXX");
    CHECK(mkdtemp(f->dir) != NULL);
    f->loop = evr_loop_new();
    evr_err_t err;
    f->chan = evr_chan_new(f->loop, f->dir, s_cmds, &f->calls, &err);
    CHECK(f->chan != NULL);
}

static void
s_fix_free(s_fix_t *f)
{
    evr_chan_destroy(&f->chan);
    char sock[128];
    snprintf(sock, sizeof sock, "%s/%s", f->dir, EVR_CHAN_SOCKET);
    CHECK(access(sock, F_OK) != 0);   /* removed with the channel */
    rmdir(f->dir);
    evr_loop_destroy(&f->loop);
}

static int
s_connect(const s_fix_t *f)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", f->dir, EVR_CHAN_SOCKET);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0);
    return fd;
}

static void
s_send(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t) w;
    }
}

/*  Turns the loop until fd has n lines to read or is closed (or 400
    turns); returns what was read (caller frees), *closed when EOF came. */
static char *
s_read(s_fix_t *f, int fd, int lines, bool *closed)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    int got = 0;
    *closed = false;
    for (int turn = 0; turn < 400 && got < lines && !*closed; turn++) {
        evr_loop_once(f->loop, 5);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        while (poll(&p, 1, 0) == 1) {
            ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
            if (r <= 0) {
                *closed = true;
                break;
            }
            for (ssize_t i = 0; i < r; i++)
                got += buf[len + (size_t) i] == '\n';
            len += (size_t) r;
        }
    }
    buf[len] = '\0';
    return buf;
}

static void
test_socket_lines(void)
{
    s_fix_t f;
    s_fix_new(&f);
    char sock[128];
    snprintf(sock, sizeof sock, "%s/%s", f.dir, EVR_CHAN_SOCKET);
    struct stat sb;
    CHECK(stat(sock, &sb) == 0 && S_ISSOCK(sb.st_mode) && (sb.st_mode & 0777) == 0600);
    int fd = s_connect(&f);
    /* two requests in one write, a third split across two */
    const char *two = "{\"cmd\":\"echo\",\"say\":\"a\"}\n{\"cmd\":\"nope\"}\r\n{\"cmd\":\"ec";
    s_send(fd, two, strlen(two));
    bool closed;
    char *got = s_read(&f, fd, 2, &closed);
    CHECK_CONTAINS(got, "{\"said\":\"a\",\"ok\":true}\n{\"ok\":false");
    CHECK_CONTAINS(got, "unknown command \\\"nope\\\"");
    free(got);
    const char *rest = "ho\",\"say\":\"b\"}\n\n";   /* an empty line is no request */
    s_send(fd, rest, strlen(rest));
    got = s_read(&f, fd, 1, &closed);
    CHECK_STR(got, "{\"said\":\"b\",\"ok\":true}\n");
    CHECK(!closed);
    free(got);
    /* a last line without newline is answered at the client's shutdown */
    s_send(fd, "{\"cmd\":\"echo\",\"say\":\"c\"}", 24);
    shutdown(fd, SHUT_WR);
    got = s_read(&f, fd, 2, &closed);
    CHECK_STR(got, "{\"said\":\"c\",\"ok\":true}\n");
    CHECK(closed);
    free(got);
    close(fd);
    CHECK(f.calls == 3);
    s_fix_free(&f);
}

static void
test_socket_oversized(void)
{
    s_fix_t f;
    s_fix_new(&f);
    int fd = s_connect(&f);
    int other = s_connect(&f);   /* the channel serves it meanwhile */
    size_t n = EVR_CHAN_LINE_MAX + 100;
    char *big = malloc(n);
    memset(big, 'x', n);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    size_t sent = 0;
    bool closed = false;
    char *got = NULL;
    for (int turn = 0; turn < 2000 && sent < n; turn++) {
        ssize_t w = send(fd, big + sent, n - sent, MSG_NOSIGNAL);
        if (w > 0)
            sent += (size_t) w;
        evr_loop_once(f.loop, 1);
    }
    fcntl(fd, F_SETFL, fl);
    got = s_read(&f, fd, 1, &closed);
    CHECK_CONTAINS(got, "\"ok\":false");
    CHECK_CONTAINS(got, "request line longer than 262144 bytes");
    free(got);
    if (!closed) {
        got = s_read(&f, fd, 1, &closed);
        free(got);
    }
    CHECK(closed);
    s_send(other, "{\"cmd\":\"echo\",\"say\":1}\n", 23);
    got = s_read(&f, other, 1, &closed);
    CHECK_STR(got, "{\"said\":1,\"ok\":true}\n");
    free(got);
    free(big);
    close(fd);
    close(other);
    s_fix_free(&f);
}

/*  Sends n bytes of buf on fd, turning the loop meanwhile (the channel
    reads as it is sent). */
static void
s_send_turning(s_fix_t *f, int fd, const char *buf, size_t n)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    size_t sent = 0;
    for (int turn = 0; turn < 4000 && sent < n; turn++) {
        ssize_t w = send(fd, buf + sent, n - sent, MSG_NOSIGNAL);
        if (w > 0)
            sent += (size_t) w;
        evr_loop_once(f->loop, 1);
    }
    fcntl(fd, F_SETFL, fl);
    CHECK(sent == n);
}

/*  A line of EVR_CHAN_LINE_MAX bytes is a request, however it ends: with
    \n, with \r\n (the \r is not the line's), or at the client's
    shutdown; one more byte is too long.  (A line of the most bytes ended
    by \r\n was refused as too long.) */
static void
test_socket_line_max(void)
{
    static const char *const ends[] = { "\n", "\r\n", "\r", "" };   /* "\r", "": then shut */
    for (int over = 0; over < 2; over++)
        for (size_t e = 0; e < EVR_ARRAY_LEN(ends); e++) {
            s_fix_t f;
            s_fix_new(&f);
            int fd = s_connect(&f);
            size_t n = EVR_CHAN_LINE_MAX + (size_t) over, el = strlen(ends[e]);
            char *line = malloc(n + el);
            memset(line, ' ', n);   /* {"cmd":"echo","say":7} and blanks: JSON */
            memcpy(line, "{\"cmd\":\"echo\",\"say\":7}", 22);
            memcpy(line + n, ends[e], el);
            s_send_turning(&f, fd, line, n + el);
            if (!strchr(ends[e], '\n'))
                shutdown(fd, SHUT_WR);
            bool closed;
            char *got = s_read(&f, fd, 1, &closed);
            if (over)
                CHECK_CONTAINS(got, "request line longer than 262144 bytes");
            else
                CHECK_STR(got, "{\"said\":7,\"ok\":true}\n");
            free(got);
            free(line);
            close(fd);
            s_fix_free(&f);
        }
}

/*  Many requests sent at once to a client that reads nothing: the
    channel answers them one at a time, each once the one before it is
    written, so what waits for the client is its socket and one answer,
    not an answer to each line (17,000 lines in one read, after a line of
    the most bytes grew the connection's buffer, were all answered into
    the runner's memory).  Once the client reads, every answer comes, in
    order, and then a last line without newline at its shutdown. */
static void
test_socket_pipelined_unread(void)
{
    s_fix_t f;
    s_fix_new(&f);
    int fd = s_connect(&f);
    size_t n = EVR_CHAN_LINE_MAX;
    char *buf = malloc(n + 1);
    memset(buf, ' ', n);
    memcpy(buf, "{\"cmd\":\"echo\",\"say\":0}", 22);
    buf[n] = '\n';
    s_send_turning(&f, fd, buf, n + 1);
    bool closed;
    char *got = s_read(&f, fd, 1, &closed);
    CHECK_STR(got, "{\"said\":0,\"ok\":true}\n");
    free(got);
    /* 17,476 requests of 15 bytes, unread */
    static const char req[] = "{\"cmd\":\"echo\"}\n";
    size_t per = sizeof req - 1, lines = n / per;
    for (size_t i = 0; i < lines; i++)
        memcpy(buf + i * per, req, per);
    f.calls = 0;
    s_send_turning(&f, fd, buf, lines * per);
    for (int turn = 0; turn < 50; turn++)
        evr_loop_once(f.loop, 1);
    CHECK(f.calls > 0 && (size_t) f.calls < lines / 2);
    s_send(fd, "{\"cmd\":\"echo\",\"say\":\"end\"}", 26);
    shutdown(fd, SHUT_WR);
    size_t answers = 0, cap = 1 << 20, len = 0;
    char *all = malloc(cap);
    closed = false;
    for (int turn = 0; turn < 20000 && !closed; turn++) {
        evr_loop_once(f.loop, 1);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        while (!closed && poll(&p, 1, 0) == 1) {
            if (len + 65536 > cap)
                all = realloc(all, cap *= 2);
            ssize_t r = recv(fd, all + len, 65536, 0);
            closed = r <= 0;
            len += r > 0 ? (size_t) r : 0;
        }
    }
    CHECK(closed);
    for (size_t i = 0; i < len; i++)
        answers += all[i] == '\n';
    CHECK(answers == lines + 1);
    all[len] = '\0';
    CHECK(len > 25 && strcmp(all + len - 25, "{\"said\":\"end\",\"ok\":true}\n") == 0);
    CHECK((size_t) f.calls == lines + 1);
    free(all);
    free(buf);
    close(fd);
    s_fix_free(&f);
}

static void
test_socket_connections(void)
{
    s_fix_t f;
    s_fix_new(&f);
    int fds[EVR_CHAN_MAX_CONNS + 1];
    for (int i = 0; i < EVR_CHAN_MAX_CONNS; i++) {
        fds[i] = s_connect(&f);
        s_send(fds[i], "{\"cmd\":\"e", 10);   /* silent from here on */
        evr_loop_once(f.loop, 5);
    }
    fds[EVR_CHAN_MAX_CONNS] = s_connect(&f);
    bool closed;
    char *got = s_read(&f, fds[EVR_CHAN_MAX_CONNS], 1, &closed);
    CHECK_CONTAINS(got, "too many connections to this step's channel (at most 8 at once)");
    free(got);
    close(fds[EVR_CHAN_MAX_CONNS]);
    /* one silent client gone: a new one is served beside the others */
    close(fds[0]);
    for (int i = 0; i < 5; i++)
        evr_loop_once(f.loop, 5);
    fds[0] = s_connect(&f);
    s_send(fds[0], "{\"cmd\":\"echo\",\"say\":true}\n", 26);
    got = s_read(&f, fds[0], 1, &closed);
    CHECK_STR(got, "{\"said\":true,\"ok\":true}\n");
    free(got);
    for (int i = 0; i < EVR_CHAN_MAX_CONNS; i++)
        close(fds[i]);
    s_fix_free(&f);
}

/*  Out of fds: the channel stops polling its socket (no turn spins on a
    connection it cannot accept) and listens again after a second. */
static void
test_socket_out_of_fds(void)
{
    s_fix_t f;
    s_fix_new(&f);
    struct rlimit old;
    getrlimit(RLIMIT_NOFILE, &old);
    int fd = s_connect(&f);
    int top = dup(0);   /* the lowest free fd: below the limit set next, no other */
    close(top);
    struct rlimit low = { (rlim_t) top, old.rlim_max };
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    int ran = 0;
    for (int i = 0; i < 20; i++)
        ran += evr_loop_once(f.loop, 0);
    CHECK(ran == 1);   /* the one accept that failed; then nothing to poll */
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    s_send(fd, "{\"cmd\":\"echo\",\"say\":2}\n", 23);
    bool closed;
    char *got = NULL;
    for (int i = 0; i < 30 && !(got && *got); i++) {   /* the backoff is 1 s */
        free(got);
        got = s_read(&f, fd, 1, &closed);
    }
    CHECK_STR(got, "{\"said\":2,\"ok\":true}\n");
    free(got);
    close(fd);
    s_fix_free(&f);
}

static void
test_socket_path_too_long(void)
{
    char dir[200];
    memset(dir, 'd', sizeof dir - 1);
    dir[0] = '/';
    dir[sizeof dir - 1] = '\0';
    evr_loop_t *loop = evr_loop_new();
    evr_err_t err;
    evr_chan_t *c = evr_chan_new(loop, dir, s_cmds, NULL, &err);
    CHECK(c == NULL);
    CHECK_CONTAINS(err.msg, "longer than a unix socket address holds (107)");
    evr_loop_destroy(&loop);
}

/* ------------------------------------------------------------- mask_add */

static char *
s_feed(evr_mask_t *m, const char *s, bool final)
{
    uint8_t *out = NULL;
    size_t len = 0, cap = 0;
    evr_mask_feed(m, (const uint8_t *) s, strlen(s), final, &out, &len, &cap);
    char *r = evr_strndup((const char *) out, len);
    free(out);
    return r;
}

static void
test_mask_add(void)
{
    const char *none[] = { NULL };
    evr_mask_t *m = evr_mask_new(none, 0);
    char *a = s_feed(m, "before tok", false);
    CHECK_STR(a, "before tok");   /* nothing to mask yet: straight through */
    free(a);
    evr_mask_add(m, "token-123");
    evr_mask_add(m, "");   /* ignored */
    a = s_feed(m, "now token-", false);
    CHECK_STR(a, "now ");   /* what may begin it is held back */
    free(a);
    char *b = s_feed(m, "123 and token-123!", true);
    CHECK_STR(b, "*** and ***!");
    free(b);
    evr_mask_add(m, "abc");
    evr_mask_add(m, "token-123");   /* twice: once */
    a = s_feed(m, "abc token-123 ab", true);
    CHECK_STR(a, "*** *** ab");
    free(a);
    evr_mask_destroy(&m);
}

int
main(void)
{
    EVR_TEST_RUN(test_answers);
    EVR_TEST_RUN(test_socket_lines);
    EVR_TEST_RUN(test_socket_oversized);
    EVR_TEST_RUN(test_socket_line_max);
    EVR_TEST_RUN(test_socket_pipelined_unread);
    EVR_TEST_RUN(test_socket_connections);
    EVR_TEST_RUN(test_socket_out_of_fds);
    EVR_TEST_RUN(test_socket_path_too_long);
    EVR_TEST_RUN(test_mask_add);
    EVR_TEST_END();
}
