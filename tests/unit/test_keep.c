/*  test_keep: a runner's retention on its loop (runner/evr_keep.c), on a
    real LMDB: the artifact directories of the jobs it removed go in a
    child process, never on the loop.

    This binary's unlinkat proves it: for the name evr-gate it first
    opens a FIFO for writing, which waits for a reader.  No reader comes
    at first: the loop turns on while the removal waits (it sees the
    child), where a removal on the loop would wait for ever (the alarm
    then fails the test).  That retention destroyed, its child is killed
    and reaped; a new one, the FIFO read from its loop, removes the rest
    (the store no longer knows the jobs).

    Which directories go is decided on the loop, a store lookup each: the
    scan looks at a bounded share of STATE/artifacts a turn.  This
    binary's readdir notes the turn each directory of a removed job is
    read at.
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_keep.h"
#include "evr_loopfifo.h"
#include "evr_store.h"
#include "evr_synth.h"
#include "evr_test.h"

static struct {
    char fifo[300];
    bool on;
} s_gate;

/*  unlinkat, as libc's but for the name evr-gate (see above). */
int
unlinkat(int dirfd, const char *path, int flags)
{
    if (s_gate.on && !strcmp(path, "evr-gate")) {
        evr_loopfifo_say(s_gate.fifo, "gone\n");   /* short: the test sees no "gone" */
    }
    return (int) syscall(SYS_unlinkat, dirfd, path, flags);
}

static char s_root[64];

/*  The names of test_sweep_bounded's directories of removed jobs: ULIDs
    below those of s_job_id. */
#define S_GONE "01JQ7ZK3M8X2V9T4B6M"

/*  The turns of the loop the tests take (set by them), and the most
    S_GONE entries readdir returned in one. */
static struct {
    int turn, at, in_turn, most;
    bool off;       /* the test's own reading: not counted */
} s_reads;

/*  readdir, as libc's, counting the S_GONE entries per turn. */
struct dirent *
readdir(DIR *d)
{
    static struct dirent *(*real)(DIR *);
    if (!real)
        real = (struct dirent * (*)(DIR *)) dlsym(RTLD_NEXT, "readdir");
    struct dirent *e = real(d);
    if (e && !s_reads.off && !strncmp(e->d_name, S_GONE, strlen(S_GONE))) {
        if (s_reads.at != s_reads.turn) {
            s_reads.at = s_reads.turn;
            s_reads.in_turn = 0;
        }
        if (++s_reads.in_turn > s_reads.most)
            s_reads.most = s_reads.in_turn;
    }
    return e;
}

static char *
s_job_id(int i)
{
    return evr_asprintf("01JQ7ZK3M8X2V9T4B6N%07d", i);
}

/*  Appends one finished synthetic job of pipeline p, and makes its
    artifact directory STATE/artifacts/JOB/sub/evr-gate. */
static void
s_job(evr_store_t *st, int i)
{
    char *id = s_job_id(i);
    size_t n;
    evr_event_t **evs = evr_synth_job(id, 1, 100, 50, &n);
    free(evs[0]->data.pipeline);
    evs[0]->data.pipeline = evr_strdup("p");
    evr_err_t err;
    CHECK(evr_store_append(st, evs, n, &err) == EVR_OK);
    evr_synth_free(evs, n);
    char *dir = evr_asprintf("%s/artifacts/%s/sub", s_root, id);
    CHECK(evr_mkdirs(dir, &err) == EVR_OK);
    char *gate = evr_asprintf("%s/evr-gate", dir);
    close(open(gate, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    free(gate);
    free(dir);
    free(id);
}

static bool
s_exists(int i)
{
    char *id = s_job_id(i);
    char *dir = evr_asprintf("%s/artifacts/%s", s_root, id);
    bool there = access(dir, F_OK) == 0;
    free(dir);
    free(id);
    return there;
}

static uint64_t
s_acked(void *arg)
{
    (void) arg;
    return UINT64_MAX >> 1;   /* the broker holds everything */
}

typedef struct {
    evr_store_t *st;
    evr_loopfifo_t r;
} s_watch_t;

/*  Every 5 ms until the store no longer knows job 1, then the FIFO's
    reading end opened. */
static void
s_watch(evr_loop_t *loop, void *arg)
{
    s_watch_t *w = arg;
    char *id = s_job_id(1);
    evr_job_t job = { 0 };
    evr_err_t err;
    bool gone = evr_store_get_job(w->st, id, &job, &err) == EVR_ERR_NOTFOUND;
    evr_rec_free(&evr_job_type, &job);
    free(id);
    if (gone && w->r.fd < 0)
        CHECK(evr_loopfifo_open(loop, s_gate.fifo, &w->r));
    if (w->r.fd < 0)
        evr_loop_timer_add(loop, 5, s_watch, w);
}

static bool
s_no_child(void)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD;
}

static void
test_sweep_off_loop(void)
{
    char *dir = evr_asprintf("%s/store", s_root);
    evr_store_t *st = NULL;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    free(dir);
    for (int i = 1; i <= 3; i++)
        s_job(st, i);
    snprintf(s_gate.fifo, sizeof s_gate.fifo, "%s/gate.fifo", s_root);
    CHECK(mkfifo(s_gate.fifo, 0600) == 0);
    evr_loop_t *loop = evr_loop_new();
    evr_prune_policy_t pol = { .keep_per_pipeline = 1 };   /* jobs 1 and 2 go */
    s_gate.on = true;
    evr_loopfifo_guard("test_keep: the loop stopped turning while retention removed artifact "
                       "directories (the removal ran on the loop)");
    /* destroyed while the child waits at the FIFO: killed, reaped */
    evr_keep_t *k = evr_keep_new(loop, st, &pol, 100, s_root, s_acked, NULL);
    for (int i = 0; i < 400 && s_no_child(); i++)   /* the first tick, at 100 ms */
        evr_loop_once(loop, 10);
    CHECK(!s_no_child());
    evr_keep_destroy(&k);
    for (int i = 0; i < 500 && !s_no_child(); i++)
        evr_loop_once(loop, 10);
    CHECK(s_no_child());
    CHECK(s_exists(1) || s_exists(2));   /* the child stopped at the first gate */
    CHECK(s_exists(3));
    /* a new retention: its sweep removes them, off the loop */
    s_watch_t w = { .st = st, .r.fd = -1 };
    k = evr_keep_new(loop, st, &pol, 100, s_root, s_acked, NULL);
    evr_loop_timer_add(loop, 0, s_watch, &w);
    for (int i = 0; i < 1000 && (s_exists(1) || s_exists(2)); i++)
        evr_loop_once(loop, 10);
    evr_loopfifo_guard(NULL);
    s_gate.on = false;
    CHECK(!s_exists(1) && !s_exists(2) && s_exists(3));
    for (int i = 0; i < 100 && w.r.n < 5 && !w.r.eof; i++)
        evr_loop_once(loop, 10);
    CHECK(strncmp(w.r.got, "gone\n", 5) == 0);   /* written by the sweep's child */
    for (int i = 0; i < 500 && !s_no_child(); i++)
        evr_loop_once(loop, 10);
    CHECK(s_no_child());
    evr_keep_destroy(&k);
    if (w.r.fd >= 0) {
        if (!w.r.eof)
            evr_loop_fd_remove(loop, w.r.fd);
        close(w.r.fd);
    }
    evr_loop_destroy(&loop);
    evr_store_destroy(&st);
}

/*  S_GONE directories left in STATE/artifacts. */
static int
s_gone_left(void)
{
    char *dir = evr_asprintf("%s/artifacts", s_root);
    s_reads.off = true;
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += !strncmp(e->d_name, S_GONE, strlen(S_GONE));
    if (d)
        closedir(d);
    s_reads.off = false;
    free(dir);
    return n;
}

/*  A runner keeps any number of jobs' artifact directories: retention's
    scan of them (a store lookup each) looks at a bounded share a turn,
    never all at once, and then removes those of the jobs the store no
    longer knows (1,000 of them here, and jobs 1 and 2 it removed). */
static void
test_sweep_bounded(void)
{
    char *dir = evr_asprintf("%s/store", s_root);
    evr_store_t *st = NULL;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    free(dir);
    for (int i = 1; i <= 3; i++)
        s_job(st, i);
    for (int i = 0; i < 1000; i++) {
        dir = evr_asprintf("%s/artifacts/%s%07d", s_root, S_GONE, i);
        CHECK(mkdir(dir, 0700) == 0);
        free(dir);
    }
    evr_loop_t *loop = evr_loop_new();
    evr_prune_policy_t pol = { .keep_per_pipeline = 1 };   /* jobs 1 and 2 go */
    evr_keep_t *k = evr_keep_new(loop, st, &pol, 100, s_root, s_acked, NULL);
    s_reads = (typeof(s_reads)) { 0 };
    for (int i = 0; i < 3000 && (s_gone_left() || s_exists(1) || s_exists(2)); i++) {
        s_reads.turn++;
        evr_loop_once(loop, 10);
    }
    CHECK(s_gone_left() == 0 && !s_exists(1) && !s_exists(2) && s_exists(3));
    if (s_reads.most > 200)
        fprintf(stderr, "  %d directories looked at in one turn\n", s_reads.most);
    CHECK(s_reads.most > 0 && s_reads.most <= 200);
    evr_keep_destroy(&k);
    for (int i = 0; i < 500 && !s_no_child(); i++)
        evr_loop_once(loop, 10);
    evr_loop_destroy(&loop);
    evr_store_destroy(&st);
}

/*  A fresh STATE for each test, removed after it. */
static bool
s_root_new(void)
{
    snprintf(s_root, sizeof s_root, "/tmp/evr-test-keep-XXXXXX");
    return mkdtemp(s_root) != NULL;
}

static void
s_root_rm(void)
{
    char *cmd = evr_asprintf("rm -rf '%s'", s_root);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed: %s\n", cmd);
    free(cmd);
}

int
main(void)
{
    if (!s_root_new())
        return 2;
    EVR_TEST_RUN(test_sweep_off_loop);
    s_root_rm();
    if (!s_root_new())
        return 2;
    EVR_TEST_RUN(test_sweep_bounded);
    s_root_rm();
    EVR_TEST_END();
}
