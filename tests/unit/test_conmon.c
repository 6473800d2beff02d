/*  test_conmon.c: evr_conmon against a fake conmon (a child process of
    the test listening on a SOCK_SEQPACKET socket named "attach" in a
    directory, as conmon does in a container's bundle): packets of both
    streams come whole and in order, and the end once the socket closes;
    a directory whose path is too long for a socket address is reached
    all the same; bulk output is read in batches (the socket rests after
    a bulk read); conmon is not held up while the loop is busy (the
    reader's thread takes its packets), up to the reader's bound (then
    conmon waits); a packet of an unknown stream, or
    one longer than the
    reader takes, ends the read with an error and nothing after it is
    passed on; no socket is an error at once; destroying the reader from
    its output callback stops it there; the reader knows the process
    that listens (conmon, whose command line says where its exit goes). */
#define _GNU_SOURCE   /* O_PATH */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_conmon.h"
#include "evr_loop.h"
#include "evr_test.h"

typedef enum { S_MIXED, S_BULK, S_BAD_STREAM, S_TOO_LONG, S_BURST, S_FLOOD } s_mode_t;

#define S_PACKETS 3000
#define S_BULK_PACKETS 256          /* 8 KiB each, one every 200 us, as conmon's come */
#define S_BURST_PACKETS 512         /* 4 MiB at once: more than conmon's socket holds */
#define S_FLOOD_PACKETS 3000        /* ~24 MiB at once: more than the reader holds (16 MiB) */

static int s_sent = -1;             /* S_BURST: the child writes a byte here once all is sent */

static char s_dir[64];
static char s_long[400];            /* a bundle directory deeper than 107 bytes */

static uint8_t
s_byte(int stream, size_t i)
{
    return (uint8_t) ((i * (stream == 1 ? 7 : 13) + 1) % 251);
}

/*  The payload length of packet k of the mixed mode (0: a header alone). */
static size_t
s_len(size_t k)
{
    return k % 97 == 0 ? 0 : 1 + (k * 7919) % 8192;
}

static void
s_send(int c, uint8_t id, const uint8_t *p, size_t n)
{
    uint8_t buf[64 * 1024 + 1];
    buf[0] = id;
    memcpy(buf + 1, p, n);
    if (send(c, buf, n + 1, 0) != (ssize_t) (n + 1))
        _exit(3);
}

/*  The child: one reader on lfd, sent the packets of mode, then closed. */
static void
s_serve(int lfd, s_mode_t mode)
{
    int c = accept(lfd, NULL, NULL);
    if (c < 0)
        _exit(2);
    static uint8_t data[64 * 1024];
    size_t at[2] = { 0, 0 };
    size_t n = mode == S_MIXED ? S_PACKETS : mode == S_BULK ? S_BULK_PACKETS
             : mode == S_BURST ? S_BURST_PACKETS : mode == S_FLOOD ? S_FLOOD_PACKETS : 3;
    for (size_t k = 0; k < n; k++) {
        int stream = mode == S_MIXED && k % 3 == 2 ? 2 : 1;
        size_t len = mode == S_MIXED ? s_len(k)
                   : mode == S_BULK || mode == S_BURST || mode == S_FLOOD ? 8192 : 100;
        if (mode == S_TOO_LONG && k == 1)
            len = sizeof data;
        for (size_t i = 0; i < len; i++)
            data[i] = s_byte(stream, at[stream - 1] + i);
        at[stream - 1] += len;
        s_send(c, mode == S_BAD_STREAM && k == 1 ? 4 : (uint8_t) (stream + 1), data, len);
        if (mode == S_BULK)
            usleep(200);
    }
    if ((mode == S_BURST || mode == S_FLOOD) && write(s_sent, "s", 1) != 1)
        _exit(5);
    close(c);
    _exit(0);
}

/*  A fake conmon listening in dir; returns its pid. */
static pid_t
s_conmon(const char *dir, s_mode_t mode)
{
    char path[512];
    snprintf(path, sizeof path, "%s/attach", dir);
    unlink(path);
    int lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int dfd = open(dir, O_PATH | O_DIRECTORY);   /* as conmon binds a long path */
    snprintf(a.sun_path, sizeof a.sun_path, "/proc/self/fd/%d/attach", dfd);
    if (lfd < 0 || bind(lfd, (struct sockaddr *) &a, sizeof a) != 0 || listen(lfd, 4) != 0) {
        perror("test_conmon: server socket");
        exit(1);
    }
    close(dfd);
    pid_t pid = fork();
    if (pid == 0)
        s_serve(lfd, mode);
    close(lfd);
    return pid;
}

typedef struct {
    size_t got[2];
    size_t pieces, turns, turn_pieces, batched;
    bool in_order, ended, destroy_in_out;
    evr_rc_t rc;
    char msg[200];
    evr_conmon_t *cm;
} s_got_t;

static void
s_out(int stream, const uint8_t *data, size_t len, void *arg)
{
    s_got_t *g = arg;
    CHECK(stream == 1 || stream == 2);
    CHECK(len > 0);
    int si = stream == 2;
    for (size_t i = 0; i < len; i++)
        if (data[i] != s_byte(stream, g->got[si] + i))
            g->in_order = false;
    g->got[si] += len;
    g->pieces++;
    g->turn_pieces++;
    if (g->destroy_in_out)
        evr_conmon_destroy(&g->cm);
}

static void
s_end(evr_rc_t rc, const char *msg, void *arg)
{
    s_got_t *g = arg;
    CHECK(!g->ended);
    g->ended = true;
    g->rc = rc;
    snprintf(g->msg, sizeof g->msg, "%s", msg);
    evr_conmon_destroy(&g->cm);   /* from its own callback */
}

/*  Reads dir's fake conmon in mode to its end (at most ~10 s). */
static void
s_read(const char *dir, s_mode_t mode, s_got_t *g, bool destroy_in_out)
{
    pid_t pid = s_conmon(dir, mode);
    memset(g, 0, sizeof *g);
    g->in_order = true;
    g->destroy_in_out = destroy_in_out;
    evr_loop_t *loop = evr_loop_new();
    evr_err_t err;
    g->cm = evr_conmon_attach(loop, dir, s_out, s_end, g, &err);
    CHECK(g->cm != NULL);
    /* the process that listens (it made the socket, then forked) */
    CHECK(g->cm && evr_conmon_pid(g->cm) == getpid());
    for (int i = 0; i < 1000 && g->cm; i++) {
        g->turn_pieces = 0;
        evr_loop_once(loop, 10);
        if (g->turn_pieces)
            g->turns++;
        if (g->turn_pieces > 1)
            g->batched++;
    }
    CHECK(evr_loop_once(loop, 5) == 0);   /* nothing of it left in the loop */
    evr_loop_destroy(&loop);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void
test_mixed_whole_and_in_order(void)
{
    size_t want[2] = { 0, 0 };
    for (size_t k = 0; k < S_PACKETS; k++)
        want[k % 3 == 2] += s_len(k);
    s_got_t g;
    s_read(s_dir, S_MIXED, &g, false);
    CHECK(g.ended && g.rc == EVR_OK && !g.msg[0]);
    CHECK(g.got[0] == want[0] && g.got[1] == want[1]);
    CHECK(g.in_order);
}

/*  A bundle directory too deep for a socket address (podman's are ~125
    bytes with "/attach"): reached through /proc/self/fd. */
static void
test_long_path(void)
{
    s_got_t g;
    s_read(s_long, S_MIXED, &g, false);
    CHECK(g.ended && g.rc == EVR_OK);
    CHECK(g.in_order && g.got[0] + g.got[1] > 0);
}

/*  8 KiB packets every 200 us: a bulk read lets the socket rest, so most
    turns take more than one packet. */
static void
test_bulk_in_batches(void)
{
    s_got_t g;
    s_read(s_dir, S_BULK, &g, false);
    CHECK(g.ended && g.rc == EVR_OK);
    CHECK(g.got[0] == (size_t) S_BULK_PACKETS * 8192 && g.in_order);
    CHECK(g.batched > 0 && g.turns < S_BULK_PACKETS);
    fprintf(stderr, "  (%d packets in %zu turns, %zu of them batched)\n", S_BULK_PACKETS,
            g.turns, g.batched);
}

static void
test_bad_packets(void)
{
    s_got_t g;
    s_read(s_dir, S_BAD_STREAM, &g, false);
    CHECK(g.ended && g.rc == EVR_ERR_PODMAN);
    CHECK_CONTAINS(g.msg, "a packet of stream 4 (expected 2, stdout, or 3, stderr)");
    CHECK(g.got[0] == 100 && g.got[1] == 0);   /* the first only */
    s_read(s_dir, S_TOO_LONG, &g, false);
    CHECK(g.ended && g.rc == EVR_ERR_PODMAN);
    CHECK_CONTAINS(g.msg, "a packet of more than 8256 bytes (conmon sends at most 8193");
    CHECK(g.got[0] == 100);
}

static void
test_destroy_in_output(void)
{
    s_got_t g;
    s_read(s_dir, S_MIXED, &g, true);
    CHECK(!g.ended && g.pieces == 1 && !g.cm);
}

/*  A fake conmon in mode (s_conmon) and a reader of it
    attached on a new *loop into g; returns the fake's pid, and in *sent
    the fd that turns readable (closed) once it has sent all. */
static pid_t
s_sender(s_mode_t mode, int *sent, s_got_t *g, evr_loop_t **loop)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    s_sent = fds[1];
    pid_t pid = s_conmon(s_dir, mode);
    close(fds[1]);
    *sent = fds[0];
    *g = (s_got_t) { .in_order = true };
    *loop = evr_loop_new();
    evr_err_t err;
    g->cm = evr_conmon_attach(*loop, s_dir, s_out, s_end, g, &err);
    CHECK(g->cm != NULL);
    return pid;
}

/*  The loop busy (a commit's fdatasync can take ~100 ms on a busy disk)
    while conmon sends more than its socket and the reader's pipe hold:
    conmon is not held up, the reader's thread takes it and holds it;
    all of it comes after.  With destroy, the reader is destroyed while
    its thread holds what the loop has not taken. */
static void
s_busy_loop(bool destroy)
{
    int sent;
    s_got_t g;
    evr_loop_t *loop;
    pid_t pid = s_sender(S_BURST, &sent, &g, &loop);
    struct pollfd p = { .fd = sent, .events = POLLIN };
    CHECK(poll(&p, 1, 20000) == 1);   /* all sent, the loop not run once */
    if (destroy) {
        evr_conmon_destroy(&g.cm);    /* the thread ends (joined), nothing more comes */
        CHECK(evr_loop_once(loop, 5) == 0);
        CHECK(g.got[0] == 0 && !g.ended);
    }
    for (int i = 0; i < 1000 && g.cm; i++)
        evr_loop_once(loop, 10);
    CHECK(destroy || (g.ended && g.rc == EVR_OK));
    CHECK(destroy || (g.got[0] == (size_t) S_BURST_PACKETS * 8192 && g.in_order));
    evr_loop_destroy(&loop);
    close(sent);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void
test_busy_loop_does_not_block_conmon(void)
{
    s_busy_loop(false);
    s_busy_loop(true);
}

/*  The loop stopped while conmon sends more than the reader holds: the
    reader's thread stops taking packets at its bound (16 MiB), so conmon
    waits (it has not sent all after a second); once the loop runs, all
    of it comes, whole and in order. */
static void
test_bound_holds_conmon(void)
{
    int sent;
    s_got_t g;
    evr_loop_t *loop;
    pid_t pid = s_sender(S_FLOOD, &sent, &g, &loop);
    struct pollfd p = { .fd = sent, .events = POLLIN };
    CHECK(poll(&p, 1, 1000) == 0);   /* conmon is held up */
    for (int i = 0; i < 3000 && g.cm; i++)
        evr_loop_once(loop, 10);
    CHECK(g.ended && g.rc == EVR_OK);
    CHECK(g.got[0] == (size_t) S_FLOOD_PACKETS * 8192 && g.in_order);
    CHECK(poll(&p, 1, 5000) == 1);   /* and it sent all */
    evr_loop_destroy(&loop);
    close(sent);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void
test_no_socket(void)
{
    evr_loop_t *loop = evr_loop_new();
    evr_err_t err;
    char path[512];
    snprintf(path, sizeof path, "%s/attach", s_dir);
    unlink(path);
    s_got_t g = { 0 };
    CHECK(evr_conmon_attach(loop, s_dir, s_out, s_end, &g, &err) == NULL);
    CHECK_CONTAINS(err.msg, "conmon's attach socket ");
    CHECK_CONTAINS(err.msg, "/attach: No such file or directory");
    CHECK(evr_conmon_attach(loop, "/nonexistent/evr-test-dir-with-a-long-name-that-goes-on-and"
                                  "-on-past-the-length-of-a-socket-address-of-linux-sockets",
                            s_out, s_end, &g, &err) == NULL);
    CHECK_CONTAINS(err.msg, "No such file or directory");
    CHECK(evr_loop_once(loop, 1) == 0);
    evr_loop_destroy(&loop);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(s_dir, sizeof s_dir, "/tmp/evr-conmon-XXXXXX");
    if (!mkdtemp(s_dir)) {
        perror("test_conmon: mkdtemp");
        return 1;
    }
    snprintf(s_long, sizeof s_long, "%s/overlay-containers/"
             "b494f2dd783264db4cbbc05c6b9fbeba118373ce8ac417e4457cfe60707a5840", s_dir);
    char sub[sizeof s_long];
    snprintf(sub, sizeof sub, "%s/overlay-containers", s_dir);
    if (mkdir(sub, 0700) != 0 || mkdir(s_long, 0700) != 0) {
        perror("test_conmon: mkdir");
        return 1;
    }
    snprintf(s_long + strlen(s_long), sizeof s_long - strlen(s_long), "/userdata");
    if (mkdir(s_long, 0700) != 0) {
        perror("test_conmon: mkdir");
        return 1;
    }
    EVR_TEST_RUN(test_mixed_whole_and_in_order);
    EVR_TEST_RUN(test_long_path);
    EVR_TEST_RUN(test_bulk_in_batches);
    EVR_TEST_RUN(test_bad_packets);
    EVR_TEST_RUN(test_destroy_in_output);
    EVR_TEST_RUN(test_busy_loop_does_not_block_conmon);
    EVR_TEST_RUN(test_bound_holds_conmon);
    EVR_TEST_RUN(test_no_socket);
    char path[512];
    snprintf(path, sizeof path, "%s/attach", s_long);
    unlink(path);
    rmdir(s_long);
    *strrchr(s_long, '/') = '\0';
    rmdir(s_long);
    rmdir(sub);
    snprintf(path, sizeof path, "%s/attach", s_dir);
    unlink(path);
    rmdir(s_dir);
    EVR_TEST_END();
}
