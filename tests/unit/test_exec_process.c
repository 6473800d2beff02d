/*  test_exec_process: the process executor (runner/evr_exec_process.c)
    through the executor interface, with a real loop and real processes:
    exact output on both streams (2 MB of each compared byte for byte),
    exit codes, stop of a whole process group (TERM, then KILL for a step
    that ignores TERM), pause and resume, put and get, list, workspaces,
    an environment that keeps the runner's own out, and recovery: a
    second executor on the same state directory (a restarted runner)
    finds a step the first left running, reads its output from offsets
    and waits for its end.  Also: a wait that sleeps with the loop (its
    CPU time and loop turns bounded), damaged unit files (env without its
    last NUL, pid), a limit that cannot be set, the supervisor's start
    where close_range fails (seccomp), a workspace removal that follows
    no link and goes deeper than PATH_MAX, and what missing artifact
    paths are called.

    The supervisor of each step is this binary itself (--shim), as it is
    evrun-runner in production: main() hands over to evr_shim_main.
*/
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_exec_process.h"
#include "evr_shim.h"
#include "evr_test.h"
#include "evr_unit.h"

/* ------------------------------------------------------------ harness */

typedef struct {
    bool called;
    int calls;
    evr_exec_result_t r;
    char msg[EVR_ERR_MAX], id[64], names[4096];
} s_res_t;

static void
s_on(const evr_exec_result_t *r, void *arg)
{
    s_res_t *res = arg;
    res->called = true;
    res->calls++;
    res->r = *r;
    snprintf(res->msg, sizeof res->msg, "%s", r->msg ? r->msg : "");
    snprintf(res->id, sizeof res->id, "%s", r->id ? r->id : "");
    snprintf(res->names, sizeof res->names, "%s", r->names ? r->names : "");
    res->r.msg = res->msg;
    res->r.id = res->id;
    res->r.names = res->names;
}

typedef struct {
    uint8_t *p;
    size_t n, cap;
} s_buf_t;

static void
s_buf_add(s_buf_t *b, const uint8_t *d, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = evr_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/*  What an attach or logs collected. */
typedef struct {
    s_buf_t out[2];
    s_res_t head, done;
    evr_exec_t *ex;       /* attach: started when head comes */
    const char *start;    /* that unit's name */
    s_res_t started;
    size_t pieces;
} s_tail_t;

static void
s_tail_free(s_tail_t *t)
{
    free(t->out[0].p);
    free(t->out[1].p);
    memset(t, 0, sizeof *t);
}

static void
s_on_out(int stream, const uint8_t *data, size_t len, void *arg)
{
    s_tail_t *t = arg;
    CHECK(stream == 1 || stream == 2);
    CHECK(len > 0 && len <= 65536);
    t->pieces++;
    s_buf_add(&t->out[stream == 1 ? 0 : 1], data, len);
}

static void
s_on_head(const evr_exec_result_t *r, void *arg)
{
    s_tail_t *t = arg;
    s_on(r, &t->head);
    if (t->start)
        t->ex->ops->start(t->ex, t->start, s_on, &t->started);
}

static void
s_on_done(const evr_exec_result_t *r, void *arg)
{
    s_on(r, &((s_tail_t *) arg)->done);
}

/*  Turns the loop until *flag (5 s at most: a hung case fails, the
    suite goes on). */
static void
s_until(evr_loop_t *loop, const bool *flag)
{
    uint64_t end = evr_mono_ns() + 5000000000ull;
    while (!*flag && evr_mono_ns() < end)
        evr_loop_once(loop, 50);
    if (!*flag)
        fprintf(stderr, "  (timed out waiting)\n");
}

typedef struct {
    char dir[64];
    evr_loop_t *loop;
    evr_exec_t *ex;
} s_env_t;

static void
s_setup(s_env_t *e)
{
    snprintf(e->dir, sizeof e->dir, "/tmp/evr-proc-XXXXXX");
    CHECK(mkdtemp(e->dir) != NULL);
    e->loop = evr_loop_new();
    evr_err_t err;
    e->ex = evr_exec_process_new(e->dir, e->loop, &err);
    CHECK(e->ex != NULL);
    s_res_t r = { 0 };
    e->ex->ops->workspace_create(e->ex, "JOB1", s_on, &r);
    CHECK(!r.called);   /* never from inside the call */
    s_until(e->loop, &r.called);
    CHECK(r.r.rc == EVR_OK);
}

static void
s_teardown(s_env_t *e)
{
    evr_exec_destroy(&e->ex);
    CHECK(e->ex == NULL);
    evr_loop_destroy(&e->loop);
    evr_err_t err;
    if (!getenv("EVR_TEST_KEEP"))
        CHECK(evr_unit_rmtree(e->dir, &err) == EVR_OK);
}

/*  A call whose outcome comes through s_on: its result. */
#define CALL(e, res, op, ...)                                                                    \
    do {                                                                                         \
        memset(&(res), 0, sizeof(res));                                                          \
        (e)->ex->ops->op((e)->ex, __VA_ARGS__, s_on, &(res));                                    \
        CHECK(!(res).called);                                                                    \
        s_until((e)->loop, &(res).called);                                                       \
    } while (0)

static void
s_create(s_env_t *e, const char *name, const char *script, const evr_strmap_t *env)
{
    evr_exec_spec_t spec = { .name = name, .job_id = "JOB1", .script = script, .env = env };
    s_res_t r;
    CALL(e, r, create, &spec);
    CHECK(r.r.rc == EVR_OK);
    if (r.r.rc)
        fprintf(stderr, "  create: %s\n", r.msg);
}

/*  Creates, attaches, starts (from head) and follows name to its end. */
static void
s_run(s_env_t *e, const char *name, const char *script, const evr_strmap_t *env, s_tail_t *t)
{
    s_create(e, name, script, env);
    t->ex = e->ex;
    t->start = name;
    void *h = e->ex->ops->attach(e->ex, name, s_on_out, s_on_head, s_on_done, t);
    CHECK(h != NULL);
    CHECK(!t->head.called);
    s_until(e->loop, &t->done.called);
    s_until(e->loop, &t->started.called);   /* its report may come later */
    CHECK(t->head.called && t->head.r.rc == EVR_OK);
    CHECK(t->started.called && t->started.r.rc == EVR_OK);
    if (t->started.r.rc)
        fprintf(stderr, "  start: %s\n", t->started.msg);
    CHECK(t->done.r.rc == EVR_OK);
    if (t->done.r.rc)
        fprintf(stderr, "  attach: %s\n", t->done.msg);
}

static int64_t
s_wait(s_env_t *e, const char *name)
{
    s_res_t r;
    CALL(e, r, wait, name);
    CHECK(r.r.rc == EVR_OK);
    return r.r.exit_code;
}

/* -------------------------------------------------------------- cases */

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

static void
test_exit_codes(void)
{
    s_env_t e;
    s_setup(&e);
    static const struct { const char *name, *script; int64_t code; } cases[] = {
        { "evrun-JOB1-zero-1", "true", 0 },
        { "evrun-JOB1-three-1", "exit 3", 3 },
        { "evrun-JOB1-term-1", "kill -TERM $$", 128 + SIGTERM },
        { "evrun-JOB1-kill-1", "kill -KILL $$", 128 + SIGKILL },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(cases); i++) {
        s_tail_t t = { 0 };
        s_run(&e, cases[i].name, cases[i].script, NULL, &t);
        int64_t code = s_wait(&e, cases[i].name);
        if (code != cases[i].code)
            fprintf(stderr, "  %s: exit %lld\n", cases[i].name, (long long) code);
        CHECK(code == cases[i].code);
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

/*  Starts name and waits until the step made the file ready. */
static void
s_start_ready(s_env_t *e, const char *name, const char *script, s_tail_t *t)
{
    s_create(e, name, script, NULL);
    t->ex = e->ex;
    t->start = name;
    e->ex->ops->attach(e->ex, name, s_on_out, s_on_head, s_on_done, t);
    uint64_t end = evr_mono_ns() + 5000000000ull;
    while ((!t->started.called || !strstr(t->out[0].p ? (char *) t->out[0].p : "", "ready"))
           && evr_mono_ns() < end)
        evr_loop_once(e->loop, 20);
    CHECK(t->started.r.rc == EVR_OK);
    CHECK(t->out[0].p && strstr((char *) t->out[0].p, "ready"));
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

static void
test_put_get(void)
{
    s_env_t e;
    s_setup(&e);
    char tarp[128];
    snprintf(tarp, sizeof tarp, "%s/in.tar", e.dir);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    CHECK(archive_write_open_filename(a, tarp) == ARCHIVE_OK);
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

/*  Exactly the step's env over PATH and HOME: a variable of the runner
    (a secret of its own) does not reach the step. */
static void
test_env_isolated(void)
{
    s_env_t e;
    s_setup(&e);
    setenv("EVR_TEST_RUNNER_SECRET", "leaked", 1);
    evr_strmap_t env = { 0 };
    evr_strmap_set(&env, "GREETING", "hello world");
    evr_strmap_set(&env, "EMPTY", "");
    s_tail_t t = { 0 };
    s_run(&e, "evrun-JOB1-env-1", "env | sort; pwd; grep -E '^Sig(Ign|Blk)' /proc/self/status",
          &env, &t);
    const char *out = (const char *) t.out[0].p;
    CHECK(!strstr(out, "EVR_TEST_RUNNER_SECRET") && !strstr(out, "leaked"));
    CHECK_CONTAINS(out, "GREETING=hello world\n");
    CHECK_CONTAINS(out, "EMPTY=\n");
    CHECK_CONTAINS(out, "PATH=" EVR_EXEC_PROCESS_PATH "\n");
    char want[256];
    snprintf(want, sizeof want, "HOME=%s/work/JOB1\n", e.dir);
    CHECK_CONTAINS(out, want);
    snprintf(want, sizeof want, "\n%s/work/JOB1\n", e.dir);
    CHECK_CONTAINS(out, want);   /* pwd */
    /* no signal blocked or ignored (the runner ignores SIGPIPE, its loop
       blocks what it takes through a signalfd) */
    CHECK_CONTAINS(out, "SigBlk:\t0000000000000000\n");
    CHECK_CONTAINS(out, "SigIgn:\t0000000000000000\n");
    /* the environment file is gone once the step runs */
    char envf[160];
    snprintf(envf, sizeof envf, "%s/units/evrun-JOB1-env-1/env", e.dir);
    CHECK(access(envf, F_OK) != 0);
    /* the step's own PATH wins */
    evr_strmap_set(&env, "PATH", "/bin");
    s_tail_t t2 = { 0 };
    s_run(&e, "evrun-JOB1-env-2", "echo $PATH", &env, &t2);
    CHECK_STR((char *) t2.out[0].p, "/bin\n");
    unsetenv("EVR_TEST_RUNNER_SECRET");
    evr_strmap_free(&env);
    s_tail_free(&t);
    s_tail_free(&t2);
    s_teardown(&e);
}

/*  An environment file whose last entry has no NUL after it (made by
    hand: the runner always ends each): the supervisor passes every entry,
    the last one too, in a NULL-terminated list. */
static void
test_env_file_unterminated(void)
{
    s_env_t e;
    s_setup(&e);
    s_create(&e, "evrun-JOB1-envf-1", "env", NULL);
    char path[160];
    snprintf(path, sizeof path, "%s/units/evrun-JOB1-envf-1/env", e.dir);
    int fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK(write(fd, "A=1\0B=2\0C=3", 11) == 11);
    close(fd);
    s_tail_t t = { .ex = e.ex, .start = "evrun-JOB1-envf-1" };
    e.ex->ops->attach(e.ex, "evrun-JOB1-envf-1", s_on_out, s_on_head, s_on_done, &t);
    s_until(e.loop, &t.done.called);
    CHECK(t.started.r.rc == EVR_OK);
    if (t.started.r.rc)
        fprintf(stderr, "  start: %s\n", t.started.msg);
    const char *out = t.out[0].p ? (const char *) t.out[0].p : "";
    CHECK_CONTAINS(out, "A=1\n");
    CHECK_CONTAINS(out, "B=2\n");
    CHECK_CONTAINS(out, "C=3\n");
    CHECK(s_wait(&e, "evrun-JOB1-envf-1") == 0);
    s_tail_free(&t);
    s_teardown(&e);
}

/*  A step's resource limits: set, soft and hard, in its processes. */
static void
test_limits(void)
{
    s_env_t e;
    s_setup(&e);
    evr_limits_t lim = { .present = true, .nofile = 64, .nproc = 500, .cpu = 1500,
                         .memory = 512u << 20 };
    evr_exec_spec_t spec = { .name = "evrun-JOB1-lim-1", .job_id = "JOB1",
                             .script = "cat /proc/self/limits", .limits = &lim };
    s_res_t r;
    CALL(&e, r, create, &spec);
    CHECK(r.r.rc == EVR_OK);
    s_tail_t t = { .ex = e.ex, .start = "evrun-JOB1-lim-1" };
    e.ex->ops->attach(e.ex, "evrun-JOB1-lim-1", s_on_out, s_on_head, s_on_done, &t);
    s_until(e.loop, &t.done.called);
    const char *out = t.out[0].p ? (const char *) t.out[0].p : "";
    static const char *const want[][2] = {
        { "Max open files", "64                   64" },
        { "Max processes", "500                  500" },
        { "Max cpu time", "2                    2" },   /* 1.5 s: whole seconds, up */
        { "Max address space", "536870912            536870912" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(want); i++) {
        const char *line = strstr(out, want[i][0]);
        CHECK(line && !strncmp(line + 26, want[i][1], strlen(want[i][1])));
        if (!line || strncmp(line + 26, want[i][1], strlen(want[i][1])))
            fprintf(stderr, "  %s: want %s in\n%s", want[i][0], want[i][1], out);
    }
    /* a limit that cannot be set: the start fails, naming it and its value */
    evr_limits_t big = { .present = true, .nofile = 99999999999ull };
    evr_exec_spec_t spec3 = { .name = "evrun-JOB1-lim-3", .job_id = "JOB1", .script = "true",
                              .limits = &big };
    CALL(&e, r, create, &spec3);
    CHECK(r.r.rc == EVR_OK);
    CALL(&e, r, start, "evrun-JOB1-lim-3");
    CHECK(r.r.rc != EVR_OK);
    CHECK_STR(r.msg, "starting evrun-JOB1-lim-3: limits.nofile = 99999999999: "
                     "setrlimit(RLIMIT_NOFILE): Operation not permitted (above the runner's "
                     "hard limit?)");
    CALL(&e, r, inspect, "evrun-JOB1-lim-3");
    CHECK(r.r.state == EVR_EXEC_CREATED);
    /* none asked: the supervisor's own limits */
    s_tail_t t2 = { 0 };
    s_run(&e, "evrun-JOB1-lim-2", "cat /proc/self/limits", NULL, &t2);
    CHECK(!strstr((char *) t2.out[0].p, "Max open files            64 "));
    s_tail_free(&t);
    s_tail_free(&t2);
    s_teardown(&e);
}

/*  The CPU seconds (user + system) this process has used. */
static double
s_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
           + (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*  A wait on a step that runs a second sleeps with the loop: its own look
    at the unit (the lock tested) wakes nothing, so the loop turns a few
    times (the watch's events, the backstop), not thousands, and the
    runner's CPU time stays far below the step's run time. */
static void
test_wait_idles(void)
{
    s_env_t e;
    s_setup(&e);
    s_tail_t t = { 0 };
    s_start_ready(&e, "evrun-JOB1-idle-1", "echo ready; sleep 1", &t);
    s_res_t w = { 0 };
    e.ex->ops->wait(e.ex, "evrun-JOB1-idle-1", s_on, &w);
    double cpu0 = s_cpu_s();
    long turns = 0;
    uint64_t end = evr_mono_ns() + 5000000000ull;
    while (!w.called && evr_mono_ns() < end) {
        int n = evr_loop_once(e.loop, 1000);
        turns += n > 0 ? n : 0;
    }
    double cpu = s_cpu_s() - cpu0;
    CHECK(w.called && w.r.rc == EVR_OK && w.r.exit_code == 0);
    CHECK(turns < 100);
    CHECK(cpu < 0.3);
    if (getenv("EVR_TEST_SHOW") || turns >= 100 || cpu >= 0.3)
        fprintf(stderr, "  %ld callbacks, %.3f s of CPU during a 1 s wait\n", turns, cpu);
    s_until(e.loop, &t.done.called);
    s_tail_free(&t);
    s_teardown(&e);
}

/*  The pid of the supervisor of the unit dir (its command line is
    "BINARY --shim DIR"), or 0. */
static long
s_shim_pid(const char *dir)
{
    DIR *d = opendir("/proc");
    long found = 0;
    struct dirent *e;
    while (d && !found && (e = readdir(d))) {
        long pid = atol(e->d_name);
        char path[64], cmd[512];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        FILE *f = pid > 0 ? fopen(path, "r") : NULL;
        if (!f)
            continue;
        size_t n = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        cmd[n] = '\0';
        size_t a = strlen(cmd) + 1;
        if (a < n && !strcmp(cmd + a, "--shim") && a + 7 < n && !strcmp(cmd + a + 7, dir))
            found = pid;
    }
    if (d)
        closedir(d);
    return found;
}

/*  A supervisor killed (SIGKILL, by hand): the unit is lost, and said so. */
static void
test_lost(void)
{
    s_env_t e;
    s_setup(&e);
    s_tail_t t = { 0 };
    s_start_ready(&e, "evrun-JOB1-lost-1", "echo ready; sleep 30", &t);
    char dir[160];
    snprintf(dir, sizeof dir, "%s/units/evrun-JOB1-lost-1", e.dir);
    long shim = s_shim_pid(dir), step = atol(t.started.id);
    CHECK(shim > 1 && step > 1);
    s_res_t w = { 0 };
    e.ex->ops->wait(e.ex, "evrun-JOB1-lost-1", s_on, &w);
    CHECK(kill((pid_t) shim, SIGKILL) == 0);
    s_until(e.loop, &w.called);
    CHECK(w.r.rc != EVR_OK);
    CHECK_CONTAINS(w.msg, "ended without writing its exit status");
    s_until(e.loop, &t.done.called);
    CHECK(t.done.r.rc != EVR_OK);
    s_res_t r;
    CALL(&e, r, inspect, "evrun-JOB1-lost-1");
    CHECK(r.r.state == EVR_EXEC_EXITED && r.r.exit_code == -1);
    /* the hint names the group, to be checked first (its id may have been
       reused since), and the unit's directory */
    char hint[256], want[256];
    e.ex->ops->remove_hint(e.ex, "evrun-JOB1-lost-1", hint, sizeof hint);
    snprintf(want, sizeof want,
             "check ps -o pid,pgid,lstart,args -g %ld: if still the step's group (started ", step);
    CHECK_CONTAINS(hint, want);
    snprintf(want, sizeof want, "), kill -KILL -- -%ld; then rm -rf %s", step, dir);
    CHECK_CONTAINS(hint, want);
    /* its step, orphaned, is this test's to end; remove takes the unit */
    kill((pid_t) -step, SIGKILL);
    CALL(&e, r, remove, "evrun-JOB1-lost-1");
    CHECK(r.r.rc == EVR_OK);
    s_tail_free(&t);
    s_teardown(&e);
}

/*  A damaged pid file while the supervisor lives (its lock held): the
    unit runs (its pid not known), it is neither an error nor lost, and
    its end is found as ever. */
static void
test_pid_damaged(void)
{
    s_env_t e;
    s_setup(&e);
    const char *name = "evrun-JOB1-pidd-1";
    s_tail_t t = { 0 };
    s_start_ready(&e, name, "echo ready; while [ ! -f go ]; do sleep 0.01; done", &t);
    char path[160];
    snprintf(path, sizeof path, "%s/units/%s/pid", e.dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("garbage\n", f);
        fclose(f);
    }
    s_res_t r;
    CALL(&e, r, inspect, name);
    CHECK(r.r.rc == EVR_OK && r.r.state == EVR_EXEC_RUNNING);
    if (r.r.rc)
        fprintf(stderr, "  inspect: %s\n", r.msg);
    char go[128];
    snprintf(go, sizeof go, "%s/work/JOB1/go", e.dir);
    close(open(go, O_CREAT | O_WRONLY, 0600));
    CHECK(s_wait(&e, name) == 0);
    CALL(&e, r, inspect, name);
    CHECK(r.r.rc == EVR_OK && r.r.state == EVR_EXEC_EXITED && r.r.exit_code == 0);
    s_until(e.loop, &t.done.called);
    CHECK(t.done.r.rc == EVR_OK);
    s_tail_free(&t);
    s_teardown(&e);
}

/*  Makes close_range(2) fail with ENOSYS in this process and what it
    starts (as on a kernel older than 5.9); false when seccomp is not to
    be had. */
static bool
s_no_close_range(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_close_range, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = EVR_ARRAY_LEN(f), .filter = f };
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
           && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

/*  Where close_range fails, the supervisor is still started with no fd of
    the runner's but its report pipe: an fd left open without close-on-
    exec (50 here) does not reach it.  The step lists its parent's (the
    supervisor's) fds. */
static void
test_spawn_without_close_range(void)
{
#if defined(__x86_64__) && defined(__NR_close_range)
    s_env_t e;
    s_setup(&e);
    const char *name = "evrun-JOB1-fds-1";
    s_create(&e, name, "ls /proc/$PPID/fd | sort -n", NULL);
    char dir[160];
    snprintf(dir, sizeof dir, "%s/units/%s", e.dir, name);
    pid_t c = fork();
    if (c == 0) {
        if (dup2(open("/dev/null", O_RDONLY), 50) != 50 || !s_no_close_range())
            _exit(2);
        int rfd = -1;
        evr_err_t err;
        if (evr_shim_spawn(dir, &rfd, &err))
            _exit(3);
        char line[128] = "";
        size_t n = 0;
        struct pollfd pfd = { .fd = rfd, .events = POLLIN };
        while (n < sizeof line - 1 && poll(&pfd, 1, 5000) > 0) {
            ssize_t r = read(rfd, line + n, sizeof line - 1 - n);
            if (r <= 0)
                break;
            n += (size_t) r;
        }
        _exit(strncmp(line, "started ", 8) ? 4 : 0);
    }
    int status = -1;
    CHECK(c > 0 && waitpid(c, &status, 0) == c);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
        fprintf(stderr, "  (skipped: no seccomp here)\n");
    else {
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(s_wait(&e, name) == 0);
        char path[200], out[1024] = "";
        snprintf(path, sizeof path, "%s/stdout", dir);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
        out[n] = '\0';
        if (f)
            fclose(f);
        CHECK_CONTAINS(out, "0\n1\n2\n");
        CHECK(!strstr(out, "\n50\n"));
        if (strstr(out, "\n50\n"))
            fprintf(stderr, "  the supervisor's fds:\n%s", out);
    }
    s_teardown(&e);
#endif
}

/*  Logs from offsets, collected into t. */
static void
s_logs(s_env_t *e, evr_exec_t *ex, const char *name, uint64_t o, uint64_t er, bool so_far,
       s_tail_t *t)
{
    memset(t, 0, sizeof *t);
    uint64_t from[2] = { o, er };
    ex->ops->logs(ex, name, from, so_far, s_on_out, s_on_done, t);
    CHECK(!t->done.called);
    s_until(e->loop, &t->done.called);
    CHECK(t->done.r.rc == EVR_OK);
}

/*  The runner dies (its executor destroyed) while the step runs; a new
    one on the same state directory finds it running, reads its output
    from offsets, and waits for its end. */
static void
test_recovery(void)
{
    s_env_t e;
    s_setup(&e);
    const char *name = "evrun-JOB1-rec-1";
    s_tail_t t = { 0 };
    s_start_ready(&e, name, "echo ready; echo err1 >&2; while [ ! -f go ]; do sleep 0.01; done; "
                            "echo second; echo err2 >&2; exit 7", &t);
    while (t.out[1].n < 5 && !t.done.called)
        evr_loop_once(e.loop, 20);
    evr_exec_destroy(&e.ex);   /* the runner is gone; its attach with it */
    CHECK(!t.done.called);
    evr_err_t err;
    e.ex = evr_exec_process_new(e.dir, e.loop, &err);
    CHECK(e.ex != NULL);
    s_res_t r;
    CALL(&e, r, inspect, name);
    CHECK(r.r.state == EVR_EXEC_RUNNING);
    CHECK_STR(r.id, t.started.id);
    s_tail_t l = { 0 };
    s_logs(&e, e.ex, name, 0, 0, true, &l);
    CHECK_STR((char *) l.out[0].p, "ready\n");
    CHECK_STR((char *) l.out[1].p, "err1\n");
    s_tail_free(&l);
    s_logs(&e, e.ex, name, 2, 1, true, &l);
    CHECK_STR((char *) l.out[0].p, "ady\n");
    CHECK_STR((char *) l.out[1].p, "rr1\n");
    s_tail_free(&l);
    s_logs(&e, e.ex, name, 6, 5, true, &l);
    CHECK(l.out[0].n == 0 && l.out[1].n == 0);
    s_tail_free(&l);
    char go[128];
    snprintf(go, sizeof go, "%s/work/JOB1/go", e.dir);
    close(open(go, O_CREAT | O_WRONLY, 0600));
    CHECK(s_wait(&e, name) == 7);
    s_logs(&e, e.ex, name, 6, 5, false, &l);
    CHECK_STR((char *) l.out[0].p, "second\n");
    CHECK_STR((char *) l.out[1].p, "err2\n");
    s_tail_free(&l);
    s_logs(&e, e.ex, name, 0, 0, false, &l);
    CHECK_STR((char *) l.out[0].p, "ready\nsecond\n");
    CHECK_STR((char *) l.out[1].p, "err1\nerr2\n");
    s_tail_free(&l);
    /* a created unit is found created, and starts */
    s_create(&e, "evrun-JOB1-rec-2", "echo late", NULL);
    evr_exec_destroy(&e.ex);
    e.ex = evr_exec_process_new(e.dir, e.loop, &err);
    CALL(&e, r, inspect, "evrun-JOB1-rec-2");
    CHECK(r.r.state == EVR_EXEC_CREATED);
    s_tail_t t2 = { 0 };
    t2.ex = e.ex;
    t2.start = "evrun-JOB1-rec-2";
    e.ex->ops->attach(e.ex, "evrun-JOB1-rec-2", s_on_out, s_on_head, s_on_done, &t2);
    s_until(e.loop, &t2.done.called);
    CHECK_STR((char *) t2.out[0].p, "late\n");
    s_tail_free(&t);
    s_tail_free(&t2);
    s_teardown(&e);
}

/*  Detach ends an attach with an error, once; destroy drops what is in
    flight without calling back. */
static void
test_detach_and_destroy(void)
{
    s_env_t e;
    s_setup(&e);
    s_tail_t t = { 0 };
    s_start_ready(&e, "evrun-JOB1-d-1", "echo ready; sleep 30", &t);
    s_tail_t t2 = { 0 };
    void *h2 = e.ex->ops->logs(e.ex, "evrun-JOB1-d-1", (uint64_t[2]) { 0, 0 }, true, s_on_out,
                               s_on_done, &t2);
    e.ex->ops->detach(e.ex, h2);
    s_until(e.loop, &t2.done.called);
    CHECK(t2.done.r.rc != EVR_OK && t2.done.calls == 1);
    CHECK(t2.out[0].n == 0);
    s_res_t w = { 0 };
    e.ex->ops->wait(e.ex, "evrun-JOB1-d-1", s_on, &w);
    s_res_t k;
    CALL(&e, k, stop, "evrun-JOB1-d-1", -1);
    CHECK(k.r.rc == EVR_OK);
    s_until(e.loop, &w.called);
    CHECK(w.r.exit_code == 128 + SIGKILL);
    s_res_t late = { 0 };
    e.ex->ops->inspect(e.ex, "evrun-JOB1-d-1", s_on, &late);
    evr_exec_destroy(&e.ex);
    evr_loop_once(e.loop, 10);
    CHECK(!late.called);
    s_tail_free(&t);
    s_tail_free(&t2);
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
    EVR_TEST_RUN(test_list_and_workspaces);
    EVR_TEST_RUN(test_workspace_remove_links_and_depth);
    EVR_TEST_RUN(test_remove_running);
    EVR_TEST_RUN(test_env_isolated);
    EVR_TEST_RUN(test_env_file_unterminated);
    EVR_TEST_RUN(test_limits);
    EVR_TEST_RUN(test_lost);
    EVR_TEST_RUN(test_pid_damaged);
    EVR_TEST_RUN(test_spawn_without_close_range);
    EVR_TEST_RUN(test_recovery);
    EVR_TEST_RUN(test_detach_and_destroy);
    EVR_TEST_RUN(test_wait_idles);
    EVR_TEST_END();
}
