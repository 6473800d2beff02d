/*  test_exec_process: the process executor (runner/evr_exec_process.c)
    through the executor interface, with a real loop and real processes:
    exact output on both streams (2 MB of each compared byte for byte),
    exit codes, stop of a whole process group (TERM, then KILL for a step
    that ignores TERM), pause and resume, put and get, list, workspaces
    (a removal that follows no link and goes deeper than PATH_MAX), the
    put's unpack off the loop (a FIFO only the loop reads), and what
    missing artifact paths are called.  The removals' children are in
    test_exec_process_rm.c; the environment, limits, damaged unit files
    and recovery in test_exec_process_units.c.

    The supervisor of each step is this binary itself (--shim), as it is
    evrun-runner in production: main() hands over to evr_shim_main.
*/
#define _GNU_SOURCE   /* F_OFD_SETLK */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_loopfifo.h"
#include "evr_ptest.h"
#include "evr_shim.h"


static void
test_output_both_streams(void)
{
    s_env_t e;
    s_setup(&e);
    s_tail_t t = { 0 };
    s_run(&e, "evrun-JOB1-a-1", "echo out1; echo err1 >&2; printf 'no newline'; "
                                "printf 'x\\000y' >&2", NULL, &t);
    CHECK_STR((char *) t.out[0].p, "out1\nno newline");
    CHECK(t.out[1].n == 8 && !memcmp(t.out[1].p, "err1\nx\0y", 8));
    CHECK(s_wait(&e, "evrun-JOB1-a-1") == 0);
    /* inspect: exited, its pid as id, when it started */
    s_res_t r;
    CALL(&e, r, inspect, "evrun-JOB1-a-1");
    CHECK(r.r.rc == EVR_OK && r.r.state == EVR_EXEC_EXITED && r.r.exit_code == 0);
    CHECK(atol(r.id) > 1 && !strcmp(r.id, t.started.id));
    CHECK(r.r.started_at > 0 && r.r.started_at <= evr_now_ns());
    /* attach after the end: the whole output again, from its first byte */
    s_tail_t again = { 0 };
    e.ex->ops->attach(e.ex, "evrun-JOB1-a-1", s_on_out, s_on_head, s_on_done, &again);
    s_until(e.loop, &again.done.called);
    CHECK(again.done.r.rc == EVR_OK && again.out[0].n == t.out[0].n && again.out[1].n == 8);
    /* a second create of the name: exists; start of a finished unit: refused */
    evr_exec_spec_t spec = { .name = "evrun-JOB1-a-1", .job_id = "JOB1", .script = "true" };
    CALL(&e, r, create, &spec);
    CHECK(r.r.rc != EVR_OK && r.r.exists);
    CALL(&e, r, start, "evrun-JOB1-a-1");
    CHECK(r.r.rc != EVR_OK);
    CHECK_CONTAINS(r.msg, "has run already");
    /* unknown and bad names */
    CALL(&e, r, inspect, "evrun-nope");
    CHECK(r.r.not_found && r.r.state == EVR_EXEC_ABSENT);
    CALL(&e, r, wait, "evrun-nope");
    CHECK(r.r.not_found);
    CALL(&e, r, inspect, "../etc");
    CHECK(r.r.rc != EVR_OK);
    CHECK_CONTAINS(r.msg, "not a unit name");
    s_tail_free(&t);
    s_tail_free(&again);
    s_teardown(&e);
}

/*  2 MB on each stream, compared byte for byte, in pieces of at most
    64 KiB. */
static void
test_large_output(void)
{
    s_env_t e;
    s_setup(&e);
    s_tail_t t = { 0 };
    s_run(&e, "evrun-JOB1-big-1", "seq 1 320000; seq 320001 640000 >&2", NULL, &t);
    s_buf_t want[2] = { 0 };
    char line[32];
    for (int i = 1; i <= 640000; i++) {
        int n = snprintf(line, sizeof line, "%d\n", i);
        s_buf_add(&want[i > 320000], (const uint8_t *) line, (size_t) n);
    }
    for (int s = 0; s < 2; s++) {
        CHECK(want[s].n > 2000000);
        CHECK(t.out[s].n == want[s].n && !memcmp(t.out[s].p, want[s].p, want[s].n));
        free(want[s].p);
    }
    CHECK(t.pieces >= 2 * 2000000 / 65536);
    s_tail_free(&t);
    s_teardown(&e);
}

/*  The exit code as a shell says it (128+N after signal N), and the
    signal apart: a step that exits 137 was not killed.  Inspect says the
    same as wait. */
static void
test_exit_codes(void)
{
    s_env_t e;
    s_setup(&e);
    static const struct { const char *name, *script; int64_t code; int sig; } cases[] = {
        { "evrun-JOB1-zero-1", "true", 0, 0 },
        { "evrun-JOB1-three-1", "exit 3", 3, 0 },
        { "evrun-JOB1-term-1", "kill -TERM $$", 128 + SIGTERM, SIGTERM },
        { "evrun-JOB1-kill-1", "kill -KILL $$", 128 + SIGKILL, SIGKILL },
        { "evrun-JOB1-137-1", "exit 137", 137, 0 },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(cases); i++) {
        s_tail_t t = { 0 };
        s_run(&e, cases[i].name, cases[i].script, NULL, &t);
        int sig = -1;
        int64_t code = s_wait_sig(&e, cases[i].name, &sig);
        if (code != cases[i].code || sig != cases[i].sig)
            fprintf(stderr, "  %s: exit %lld, signal %d\n", cases[i].name, (long long) code,
                    sig);
        CHECK(code == cases[i].code);
        CHECK(sig == cases[i].sig);
        s_res_t r;
        CALL(&e, r, inspect, cases[i].name);
        CHECK(r.r.rc == EVR_OK && r.r.exit_code == cases[i].code
              && r.r.signal == cases[i].sig);
        s_tail_free(&t);
    }
    s_teardown(&e);
}

/*  The pid a step wrote into the workspace file name (0 when none). */
static long
s_read_pid(const s_env_t *e, const char *file)
{
    char path[256], buf[32] = "";
    snprintf(path, sizeof path, "%s/work/JOB1/%s", e->dir, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    fclose(f);
    return atol(buf);
}

static void
test_stop_whole_group(void)
{
    s_env_t e;
    s_setup(&e);
    /* a grandchild in the background, in the step's group */
    s_tail_t t = { 0 };
    s_start_ready(&e, "evrun-JOB1-grp-1",
                  "sh -c 'sleep 30 & echo $! > bg.pid; wait' & "
                  "while [ ! -s bg.pid ]; do sleep 0.01; done; echo ready; wait", &t);
    long bg = s_read_pid(&e, "bg.pid");
    CHECK(bg > 1 && kill((pid_t) bg, 0) == 0);
    s_res_t r;
    CALL(&e, r, stop, "evrun-JOB1-grp-1", 5);
    CHECK(r.r.rc == EVR_OK);
    CHECK(s_wait(&e, "evrun-JOB1-grp-1") == 128 + SIGTERM);
    CHECK(kill((pid_t) bg, 0) != 0 && errno == ESRCH);
    s_until(e.loop, &t.done.called);
    CHECK(t.done.r.rc == EVR_OK);
    s_tail_free(&t);

    /* a step that ignores TERM (and its background child too): KILL
       after the grace (0 s: at once after TERM) */
    s_tail_t t2 = { 0 };
    s_start_ready(&e, "evrun-JOB1-stubborn-1",
                  "trap '' TERM; sleep 30 & echo $! > bg2.pid; echo ready; "
                  "while :; do wait; done", &t2);
    long bg2 = s_read_pid(&e, "bg2.pid");
    CALL(&e, r, stop, "evrun-JOB1-stubborn-1", 0);
    CHECK(r.r.rc == EVR_OK);
    CHECK(s_wait(&e, "evrun-JOB1-stubborn-1") == 128 + SIGKILL);
    CHECK(bg2 > 1 && kill((pid_t) bg2, 0) != 0 && errno == ESRCH);
    /* stopping a finished unit is no error; an unknown one is not found */
    CALL(&e, r, stop, "evrun-JOB1-stubborn-1", 1);
    CHECK(r.r.rc == EVR_OK);
    CALL(&e, r, stop, "evrun-nope", 1);
    CHECK(r.r.not_found);
    s_until(e.loop, &t2.done.called);
    s_tail_free(&t2);
    s_teardown(&e);
}

/*  The state letter of /proc/PID/stat ('T' stopped), or 0. */
static char s_proc_state(long pid);

/*  Whether pid comes to be stopped (want) or not within a second: a
    signal is delivered when the process next runs. */
static bool
s_proc_stopped(long pid, bool want)
{
    for (int i = 0; i < 100; i++) {
        char c = s_proc_state(pid);
        if (c && (c == 'T') == want)
            return true;
        usleep(10000);
    }
    return false;
}

static char
s_proc_state(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

static void
test_pause_resume(void)
{
    s_env_t e;
    s_setup(&e);
    s_tail_t t = { 0 };
    /* builtins only: a shell waiting for a child it vforked cannot stop
       before that child does, and would not show 'T' */
    s_start_ready(&e, "evrun-JOB1-p-1", "echo ready; while [ ! -f go ]; do :; done; echo went",
                  &t);
    long pid = atol(t.started.id);
    s_res_t r;
    CALL(&e, r, pause, "evrun-JOB1-p-1");
    CHECK(r.r.rc == EVR_OK);
    CHECK(s_proc_stopped(pid, true));
    CALL(&e, r, inspect, "evrun-JOB1-p-1");
    CHECK(r.r.state == EVR_EXEC_PAUSED);
    /* a restarted runner sees it paused too */
    evr_err_t err;
    evr_exec_t *ex2 = evr_exec_process_new(e.dir, e.loop, &err);
    s_res_t r2 = { 0 };
    ex2->ops->inspect(ex2, "evrun-JOB1-p-1", s_on, &r2);
    s_until(e.loop, &r2.called);
    CHECK(r2.r.state == EVR_EXEC_PAUSED);
    evr_exec_destroy(&ex2);
    CALL(&e, r, resume, "evrun-JOB1-p-1");
    CHECK(r.r.rc == EVR_OK);
    CHECK(s_proc_stopped(pid, false));
    CALL(&e, r, inspect, "evrun-JOB1-p-1");
    CHECK(r.r.state == EVR_EXEC_RUNNING);
    char go[128];
    snprintf(go, sizeof go, "%s/work/JOB1/go", e.dir);
    close(open(go, O_CREAT | O_WRONLY, 0600));
    CHECK(s_wait(&e, "evrun-JOB1-p-1") == 0);
    s_until(e.loop, &t.done.called);
    CHECK_STR((char *) t.out[0].p, "ready\nwent\n");
    /* pausing what has ended is refused */
    CALL(&e, r, pause, "evrun-JOB1-p-1");
    CHECK(r.r.rc != EVR_OK);
    CHECK_CONTAINS(r.msg, "is not running");
    s_tail_free(&t);
    s_teardown(&e);
}

/* ------------------------------------------------------------ put, get */

static void
s_tar_add(struct archive *a, const char *name, const char *data, bool dir)
{
    struct archive_entry *en = archive_entry_new();
    archive_entry_set_pathname(en, name);
    archive_entry_set_filetype(en, dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(en, dir ? 0755 : 0644);
    archive_entry_set_size(en, dir ? 0 : (la_int64_t) strlen(data));
    archive_write_header(a, en);
    if (!dir)
        archive_write_data(a, data, strlen(data));
    archive_entry_free(en);
}

/*  A tar at DIR/in.tar (its path into tarp) made for writing, in pax. */
static struct archive *
s_tar_new(const s_env_t *e, char tarp[128])
{
    snprintf(tarp, 128, "%s/in.tar", e->dir);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    CHECK(archive_write_open_filename(a, tarp) == ARCHIVE_OK);
    return a;
}

/*  A get: its stream and its outcome (one arg for both callbacks). */
typedef struct {
    s_buf_t buf;
    s_res_t r;
    bool refuse;
} s_get_t;

static bool
s_collect(const uint8_t *data, size_t len, void *arg)
{
    s_get_t *g = arg;
    s_buf_add(&g->buf, data, len);
    return !g->refuse;
}

static void
s_on_get(const evr_exec_result_t *r, void *arg)
{
    s_on(r, &((s_get_t *) arg)->r);
}

/*  Copies path out of JOB1's workspace into g (reset first). */
static void
s_getp(s_env_t *e, const char *path, bool refuse, s_get_t *g)
{
    free(g->buf.p);
    memset(g, 0, sizeof *g);
    g->refuse = refuse;
    e->ex->ops->get(e->ex, "evrun-JOB1-build-1", "JOB1", EVR_EXEC_LAYOUT_WORKSPACE, path,
                    s_collect, s_on_get, g);
    CHECK(!g->r.called);
    s_until(e->loop, &g->r.called);
}

/*  Whether the bytes of b hold text. */
static bool
s_buf_has(const s_buf_t *b, const char *text)
{
    size_t n = strlen(text);
    for (size_t i = 0; i + n <= b->n; i++)
        if (!memcmp((const char *) b->p + i, text, n))
            return true;
    return false;
}

static void
test_put_get(void)
{
    s_env_t e;
    s_setup(&e);
    char tarp[128];
    struct archive *a = s_tar_new(&e, tarp);
    s_tar_add(a, "src", NULL, true);
    s_tar_add(a, "src/a.txt", "alpha\n", false);
    archive_write_free(a);
    s_res_t r;
    CALL(&e, r, put, "JOB1", EVR_EXEC_AREA_WORKSPACE, NULL, tarp);
    CHECK(r.r.rc == EVR_OK);
    s_tail_t t = { 0 };
    s_run(&e, "evrun-JOB1-build-1",
          "mkdir -p out/dist && cat src/a.txt > out/dist/a.txt && echo beta > out/dist/b.txt",
          NULL, &t);
    /* get: a tar holding the path's last component */
    s_get_t g = { 0 };
    s_getp(&e, "out/dist", false, &g);
    CHECK(g.r.r.rc == EVR_OK);
    struct archive *in = archive_read_new();
    archive_read_support_format_tar(in);
    CHECK(archive_read_open_memory(in, g.buf.p, g.buf.n) == ARCHIVE_OK);
    struct archive_entry *en;
    int files = 0, dirs = 0;
    while (archive_read_next_header(in, &en) == ARCHIVE_OK) {
        const char *n = archive_entry_pathname(en);
        char data[64] = "";
        la_ssize_t k = archive_read_data(in, data, sizeof data - 1);
        data[k > 0 ? k : 0] = '\0';
        if (archive_entry_filetype(en) == AE_IFDIR) {
            dirs++;
            CHECK(!strcmp(n, "dist") || !strcmp(n, "dist/"));
        }
        else if (!strcmp(n, "dist/a.txt")) {
            files++;
            CHECK_STR(data, "alpha\n");
        }
        else if (!strcmp(n, "dist/b.txt")) {
            files++;
            CHECK_STR(data, "beta\n");
        }
        else
            fprintf(stderr, "  unexpected entry %s\n", n);
    }
    CHECK(files == 2 && dirs == 1);
    archive_read_free(in);
    /* a socket a step left (a test server's) is left out, as podman's
       archive does: it failed the copy ("pax format cannot archive
       sockets"), the artifact lost */
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/work/JOB1/out/dist/s.sock", e.dir);
    int sfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(sfd >= 0 && bind(sfd, (struct sockaddr *) &sa, sizeof sa) == 0);
    close(sfd);
    s_getp(&e, "out/dist", false, &g);
    CHECK(g.r.r.rc == EVR_OK);
    CHECK(!s_buf_has(&g.buf, "s.sock") && s_buf_has(&g.buf, "dist/b.txt"));
    /* missing path, unsafe path, a receiver that stops */
    s_getp(&e, "nope", false, &g);
    CHECK(g.r.r.not_found);
    CHECK_STR(g.r.msg, "no such file or directory: nope (in the job's workspace)");
    s_getp(&e, "nodir/file", false, &g);
    CHECK(g.r.r.not_found);
    CHECK_STR(g.r.msg, "no such file or directory: nodir/file (in the job's workspace)");
    s_getp(&e, "out/dist/a.txt/x", false, &g);
    CHECK(g.r.r.rc != EVR_OK && !g.r.r.not_found);
    CHECK_STR(g.r.msg, "out/dist/a.txt/x (in the job's workspace): Not a directory");
    s_getp(&e, "../x", false, &g);
    CHECK(g.r.r.rc != EVR_OK);
    CHECK_CONTAINS(g.r.msg, "..");
    s_getp(&e, "out", true, &g);
    CHECK(g.r.r.rc != EVR_OK);
    CHECK_CONTAINS(g.r.msg, "the receiver stopped the copy");
    /* a link out of the workspace is not followed */
    char link[160];
    snprintf(link, sizeof link, "%s/work/JOB1/up", e.dir);
    CHECK(symlink("/etc", link) == 0);
    s_getp(&e, "up/hostname", false, &g);
    CHECK(g.r.r.rc != EVR_OK);
    CHECK_CONTAINS(g.r.msg, "leaves the workspace");
    free(g.buf.p);
    /* put into a missing workspace */
    CALL(&e, r, put, "JOB2", EVR_EXEC_AREA_WORKSPACE, NULL, tarp);
    CHECK(r.r.not_found);
    s_tail_free(&t);
    s_teardown(&e);
}

/*  test_put_off_loop's FIFO, read from the loop. */
typedef struct {
    char path[128];
    evr_loopfifo_t r;
} s_fifo_t;

static void
s_fifo_open(evr_loop_t *loop, void *arg)
{
    s_fifo_t *f = arg;
    evr_loopfifo_open(loop, f->path, &f->r);
}

/*  A put unpacks its tar in a child process, never on the loop: the
    temporary name of the file it writes is a FIFO that a timer of the
    loop opens for reading only once the put has returned.  Unpacked
    inside the call, the open would wait for that timer for ever (the
    alarm then fails the test).  What goes through a FIFO cannot be
    fsync'ed: the put then fails, saying so. */
static void
test_put_off_loop(void)
{
    s_env_t e;
    s_setup(&e);
    char tarp[128];
    struct archive *a = s_tar_new(&e, tarp);
    s_tar_add(a, "a.txt", "alpha\n", false);
    archive_write_free(a);
    s_fifo_t f = { .r.fd = -1 };
    snprintf(f.path, sizeof f.path, "%s/work/JOB1/a.txt.evrun-partial", e.dir);
    CHECK(mkfifo(f.path, 0600) == 0);
    evr_loopfifo_guard("test_exec_process: the loop stopped turning while a put unpacked its "
                       "tar (the unpack ran on the loop)");
    s_res_t r = { 0 };
    e.ex->ops->put(e.ex, "JOB1", EVR_EXEC_AREA_WORKSPACE, NULL, tarp, s_on, &r);
    evr_loop_timer_add(e.loop, 0, s_fifo_open, &f);
    s_until(e.loop, &r.called);
    evr_loopfifo_guard(NULL);
    CHECK(f.r.fd >= 0);
    for (int i = 0; i < 100 && f.r.n < 6; i++)
        evr_loop_once(e.loop, 10);
    CHECK(strcmp(f.r.got, "alpha\n") == 0);   /* written by the put's child */
    CHECK(r.called && r.r.rc == EVR_ERR_IO);
    CHECK_CONTAINS(r.msg, "a.txt.evrun-partial");
    if (f.r.fd >= 0) {
        if (!f.r.eof)
            evr_loop_fd_remove(e.loop, f.r.fd);
        close(f.r.fd);
    }
    s_teardown(&e);
}

static void
test_list_and_workspaces(void)
{
    s_env_t e;
    s_setup(&e);
    s_create(&e, "evrun-AAA-x-1", "true", NULL);
    s_create(&e, "evrun-AAA-y-1", "true", NULL);
    s_create(&e, "evrun-BBB-x-1", "true", NULL);
    s_res_t r;
    CALL(&e, r, list, "evrun-AAA-");
    CHECK(r.r.rc == EVR_OK);
    CHECK(strstr(r.names, "evrun-AAA-x-1\n") && strstr(r.names, "evrun-AAA-y-1\n"));
    CHECK(!strstr(r.names, "BBB"));
    /* remove: gone from the list and from inspect */
    CALL(&e, r, remove, "evrun-AAA-x-1");
    CHECK(r.r.rc == EVR_OK);
    CALL(&e, r, inspect, "evrun-AAA-x-1");
    CHECK(r.r.state == EVR_EXEC_ABSENT && r.r.not_found);
    CALL(&e, r, list, "evrun-");
    CHECK(!strstr(r.names, "evrun-AAA-x-1") && strstr(r.names, "evrun-BBB-x-1"));
    CALL(&e, r, remove, "evrun-AAA-x-1");
    CHECK(r.r.not_found);
    /* workspaces: owner-only, made once, listed, removed with what is in
       them (a read-only directory too) */
    char ws[128];
    snprintf(ws, sizeof ws, "%s/work/JOB1", e.dir);
    struct stat st;
    CHECK(stat(ws, &st) == 0 && (st.st_mode & 0777) == 0700);
    CALL(&e, r, workspace_create, "JOB1");
    CHECK(r.r.rc != EVR_OK && r.r.exists);
    CALL(&e, r, workspace_create, "JOB2");
    CHECK(r.r.rc == EVR_OK);
    memset(&r, 0, sizeof r);
    e.ex->ops->workspace_list(e.ex, s_on, &r);
    s_until(e.loop, &r.called);
    CHECK(strstr(r.names, "JOB1\n") && strstr(r.names, "JOB2\n"));
    s_tail_t t = { 0 };
    s_run(&e, "evrun-JOB1-ro-1", "mkdir -p ro/deep && echo x > ro/deep/f && chmod 500 ro/deep ro",
          NULL, &t);
    CALL(&e, r, workspace_remove, "JOB1");
    CHECK(r.r.rc == EVR_OK);
    if (r.r.rc)
        fprintf(stderr, "  workspace_remove: %s\n", r.msg);
    CHECK(access(ws, F_OK) != 0);
    CALL(&e, r, workspace_remove, "JOB1");
    CHECK(r.r.not_found);
    CALL(&e, r, workspace_create, "../JOB3");
    CHECK(r.r.rc != EVR_OK);
    memset(&r, 0, sizeof r);
    e.ex->ops->workspace_list(e.ex, s_on, &r);
    s_until(e.loop, &r.called);
    CHECK_STR(r.names, "JOB2\n");
    /* a start whose workspace is gone: the reason names it */
    s_create(&e, "evrun-JOB1-late-1", "true", NULL);
    CALL(&e, r, start, "evrun-JOB1-late-1");
    CHECK(r.r.rc != EVR_OK);
    CHECK_CONTAINS(r.msg, "chdir");
    CHECK_CONTAINS(r.msg, ws);
    CALL(&e, r, inspect, "evrun-JOB1-late-1");
    CHECK(r.r.state == EVR_EXEC_CREATED);
    s_tail_free(&t);
    s_teardown(&e);
}

/*  Removing a workspace removes a link in it as a link: what it points
    to, outside, stays.  A tree deeper than PATH_MAX goes too (the removal
    works through directory fds, not paths). */
static void
test_workspace_remove_links_and_depth(void)
{
    s_env_t e;
    s_setup(&e);
    char outside[128], keep[160], link[160];
    snprintf(outside, sizeof outside, "%s/outside", e.dir);
    snprintf(keep, sizeof keep, "%s/keep.txt", outside);
    CHECK(mkdir(outside, 0700) == 0);
    close(open(keep, O_CREAT | O_WRONLY, 0600));
    snprintf(link, sizeof link, "%s/work/JOB1/out", e.dir);
    CHECK(symlink(outside, link) == 0);
    snprintf(link, sizeof link, "%s/work/JOB1/file", e.dir);
    CHECK(symlink(keep, link) == 0);
    /* 300 levels of 20-byte names: over 6000 bytes of path */
    char ws[128];
    snprintf(ws, sizeof ws, "%s/work/JOB1", e.dir);
    int fd = open(ws, O_RDONLY | O_DIRECTORY);
    for (int i = 0; i < 300 && fd >= 0; i++) {
        const char *n = "a-directory-name-20b";
        CHECK(mkdirat(fd, n, 0700) == 0);
        if (i == 150)
            CHECK(symlinkat(outside, fd, "deep-link") == 0);
        int sub = openat(fd, n, O_RDONLY | O_DIRECTORY);
        close(fd);
        fd = sub;
    }
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(openat(fd, "bottom.txt", O_CREAT | O_WRONLY, 0600));
        close(fd);
    }
    s_res_t r;
    CALL(&e, r, workspace_remove, "JOB1");
    CHECK(r.r.rc == EVR_OK);
    if (r.r.rc)
        fprintf(stderr, "  workspace_remove: %.300s\n", r.msg);
    CHECK(access(ws, F_OK) != 0 && errno == ENOENT);
    CHECK(access(keep, F_OK) == 0);
    /* evr_unit_rmtree itself: a link given is removed, not followed */
    char l2[160];
    snprintf(l2, sizeof l2, "%s/l2", e.dir);
    CHECK(symlink(outside, l2) == 0);
    evr_err_t err;
    CHECK(evr_unit_rmtree(l2, &err) == EVR_OK);
    CHECK(access(keep, F_OK) == 0);
    CHECK(evr_unit_rmtree(l2, &err) == EVR_OK);   /* missing: no error */
    s_teardown(&e);
}

/*  Removing a running unit kills its group first. */
/*  Two starts of one unit at once, from two executors on one state
    directory: the supervisor an earlier run of the runner spawned as it
    was killed (its start not in the log) and the one recovery starts,
    having probed the unit before the first took its lock.  The second
    supervisor finds the lock held: both starts are done while the step
    runs, and the step runs once.  The second used to wait for the lock,
    until the step's end, and then fail the start ("started already"),
    failing a step that had run well (seen once in the crash matrix). */
static void
test_start_held(void)
{
    s_env_t e;
    s_setup(&e);
    const char *name = "evrun-JOB1-held-1";
    s_create(&e, name, "echo ran >> ran.txt; sleep 2", NULL);
    evr_err_t err;
    evr_exec_t *ex2 = evr_exec_process_new(e.dir, e.loop, &err);
    CHECK(ex2 != NULL);
    s_res_t r1 = { 0 }, r2 = { 0 };
    e.ex->ops->start(e.ex, name, s_on, &r1);
    if (ex2)
        ex2->ops->start(ex2, name, s_on, &r2);
    s_until(e.loop, &r1.called);
    s_until(e.loop, &r2.called);
    CHECK(r1.called && r1.r.rc == EVR_OK);
    CHECK(r2.called && r2.r.rc == EVR_OK);
    if (r2.called && r2.r.rc)
        fprintf(stderr, "  the second start: %s\n", r2.msg);
    char *exit_file = evr_asprintf("%s/units/%s/exit", e.dir, name);
    CHECK(access(exit_file, F_OK) != 0);   /* both answered while the step runs */
    free(exit_file);
    CHECK(s_wait(&e, name) == 0);
    char text[64] = "";
    char *ran = evr_asprintf("%s/work/JOB1/ran.txt", e.dir);
    FILE *f = fopen(ran, "r");
    CHECK(f != NULL);
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    CHECK_STR(text, "ran\n");   /* once */
    free(ran);
    evr_exec_destroy(&ex2);
    s_teardown(&e);
}

static void
test_remove_running(void)
{
    s_env_t e;
    s_setup(&e);
    s_tail_t t = { 0 };
    s_start_ready(&e, "evrun-JOB1-rm-1", "sleep 30 & echo $! > rm.pid; echo ready; wait", &t);
    long bg = s_read_pid(&e, "rm.pid");
    s_res_t r;
    CALL(&e, r, remove, "evrun-JOB1-rm-1");
    CHECK(r.r.rc == EVR_OK);
    CHECK(bg > 1 && kill((pid_t) bg, 0) != 0);
    CALL(&e, r, inspect, "evrun-JOB1-rm-1");
    CHECK(r.r.not_found);
    s_until(e.loop, &t.done.called);
    CHECK(t.done.r.rc != EVR_OK);   /* the output was cut short: said */
    char hint[256];
    e.ex->ops->remove_hint(e.ex, "evrun-JOB1-x-1", hint, sizeof hint);
    CHECK_CONTAINS(hint, "rm -rf ");
    CHECK_CONTAINS(hint, "/units/evrun-JOB1-x-1");
    CHECK_STR(e.ex->ops->unit_word, "process");
    CHECK_STR(e.ex->ops->workspace_word, "the workspace directory");
    CHECK_CONTAINS(e.ex->ops->describe(e.ex), "process (host commands in ");
    s_tail_free(&t);
    s_teardown(&e);
}

int
main(int argc, char **argv)
{
    if (evr_shim_wanted(argc, argv))
        return evr_shim_main(argv[2]);
    signal(SIGPIPE, SIG_IGN);   /* as the runner: the steps get it back */
    EVR_TEST_RUN(test_output_both_streams);
    EVR_TEST_RUN(test_large_output);
    EVR_TEST_RUN(test_exit_codes);
    EVR_TEST_RUN(test_stop_whole_group);
    EVR_TEST_RUN(test_pause_resume);
    EVR_TEST_RUN(test_put_get);
    EVR_TEST_RUN(test_put_off_loop);
    EVR_TEST_RUN(test_list_and_workspaces);
    EVR_TEST_RUN(test_workspace_remove_links_and_depth);
    EVR_TEST_RUN(test_start_held);
    EVR_TEST_RUN(test_remove_running);
    EVR_TEST_END();
}
