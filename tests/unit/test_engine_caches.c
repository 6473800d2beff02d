/*  test_engine_caches.c: a job's caches measured, and the git cache
    trimmed, off the loop.

    The fake executor gets the two operations caches need (dir, a
    volume's host directory here: one directory of the test's for every
    volume; cache_remove), answered from a later turn.  When a job ends,
    the engine measures each cache's size by walking that directory:
    the walk (nftw) runs in a child process, never on the loop.  This
    binary's nftw proves it: for the gated directory it first opens a
    FIFO for writing, which waits for a reader, and the loop opens the
    reading end only once the engine's dir callback has returned.  A walk
    on the loop would wait for ever (the alarm then fails the test).
    Walks are bounded: at most EVR_ENG_WALKS_MAX at once, each stopped
    at its time limit (a test hook makes it short), all killed with the
    engine.  The git cache's trim after a checkout walks each entry the same way: the
    loop opens the FIFO once the job has gone on (its job.source stored),
    and a second job's checkout waits for the trim's end (a third,
    cancelled as it waits, ends cancelled).
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_engine_int.h"   /* EVR_ENG_WALKS_MAX */
#include "evr_etest.h"
#include "evr_loopfifo.h"
#include "evr_test.h"

#define S_MAX_MS 30000   /* a bound for a failing test only */
#define S_YAML EVR_ETEST_HEAD "cache:\n  - {key: k1, path: deps}\nsteps:\n" \
               "  - name: a\n    run: echo hi\n"

typedef int (s_nftw_fn)(const char *, __nftw_func_t, int, int);

/*  The walk's gate: nftw of a directory whose path starts with path
    first writes "du\n" into the FIFO fifo (an open that waits for its
    reader). */
static struct {
    char path[320], fifo[300];
    bool on;
} s_gate;

int
nftw(const char *dir, __nftw_func_t fn, int fdlimit, int flags)
{
    if (s_gate.on && !strncmp(dir, s_gate.path, strlen(s_gate.path))) {
        evr_loopfifo_say(s_gate.fifo, "du\n");   /* short: the test sees no "du" */
    }
    s_nftw_fn *real = (s_nftw_fn *) dlsym(RTLD_NEXT, "nftw");
    return real ? real(dir, fn, fdlimit, flags) : -1;
}

/*  The test's dir and cache_remove, over the fake's other operations. */
static evr_exec_ops_t s_ops;
static evr_loop_t *s_loop;
static evr_loopfifo_t s_fifo = { .fd = -1 };
static bool s_open_fifo;    /* the FIFO opened once the engine's callback returned */
static int s_dirs;          /* dir calls answered */

typedef struct {
    evr_exec_fn *fn;
    void *arg;
} s_call_t;

static void
s_dir_answer(evr_loop_t *loop, void *arg)
{
    s_call_t *c = arg;
    evr_exec_result_t r = { .rc = EVR_OK, .names = s_gate.path };
    s_dirs++;
    c->fn(&r, c->arg);
    free(c);
    if (s_open_fifo && s_fifo.fd < 0)
        CHECK(evr_loopfifo_open(loop, s_gate.fifo, &s_fifo));
}

static void
s_dir(evr_exec_t *ex, const char *job_id, const char *volume, evr_exec_fn *fn, void *arg)
{
    (void) ex, (void) job_id, (void) volume;
    s_call_t *c = evr_calloc(1, sizeof *c);
    *c = (s_call_t) { fn, arg };
    evr_loop_timer_add(s_loop, 0, s_dir_answer, c);
}

static void
s_cache_remove(evr_exec_t *ex, const char *volume, evr_exec_fn *fn, void *arg)
{
    (void) ex, (void) volume;
    CHECK(fn == NULL);   /* the engine asks for no answer */
    (void) arg;
}

/*  A world whose executor keeps caches in DIR/vol (a 1234-byte file),
    their records in DIR/caches; the FIFO at DIR/gate.fifo. */
static evr_etest_t *
s_world(void)
{
    evr_etest_t *t = evr_etest_new();
    if (!t)
        abort();
    static char caches[300];
    snprintf(caches, sizeof caches, "%s/caches", t->dir);
    t->opts.caches_dir = caches;
    t->opts.cache_max_bytes = 1u << 30;
    evr_etest_engine(t);
    s_ops = *t->execs[0]->ops;
    s_ops.dir = s_dir;
    s_ops.cache_remove = s_cache_remove;
    t->execs[0]->ops = &s_ops;
    s_loop = t->loop;
    snprintf(s_gate.path, sizeof s_gate.path, "%s/vol", t->dir);
    snprintf(s_gate.fifo, sizeof s_gate.fifo, "%s/gate.fifo", t->dir);
    CHECK(mkdir(s_gate.path, 0700) == 0);
    CHECK(mkfifo(s_gate.fifo, 0600) == 0);
    char file[320];
    snprintf(file, sizeof file, "%s/vol/data", t->dir);
    FILE *fp = fopen(file, "w");
    CHECK(fp != NULL);
    if (fp) {
        for (int i = 0; i < 1234; i++)
            fputc('x', fp);
        fclose(fp);
    }
    s_fifo = (evr_loopfifo_t) { .fd = -1 };
    s_dirs = 0;
    return t;
}

/*  The size recorded for the job's one cache (the record's first line),
    -1 without a record. */
static long
s_recorded(const evr_etest_t *t)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "cat %s/caches/evrun-cache-* 2>/dev/null", t->dir);
    FILE *p = popen(cmd, "r");
    long v = -1;
    if (p) {
        if (fscanf(p, "%ld", &v) != 1)
            v = -1;
        pclose(p);
    }
    return v;
}

static void
s_fifo_close(evr_etest_t *t)
{
    if (s_fifo.fd >= 0) {
        if (!s_fifo.eof)
            evr_loop_fd_remove(t->loop, s_fifo.fd);
        close(s_fifo.fd);
    }
    s_fifo.fd = -1;
}

/*  The job's end measures its cache in a child: the size recorded is the
    directory's, and the walk wrote "du" to the FIFO the loop opened. */
static void
test_measure_off_loop(void)
{
    evr_etest_t *t = s_world();
    s_gate.on = true;
    s_open_fifo = true;
    evr_loopfifo_guard("test_engine_caches: the loop stopped turning while a cache's size was "
                       "measured (the walk ran on the loop)");
    CHECK(evr_etest_submit(t, evr_etest_job(71), S_YAML) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    evr_loopfifo_guard(NULL);
    s_gate.on = false;
    CHECK(evr_etest_job_status(t, evr_etest_job(71)) == EVR_JOB_SUCCEEDED);
    /* two dirs asked: the workspace's (the step's outputs file removed
       unread) and the cache's (measured) */
    CHECK(s_dirs == 2);
    CHECK(s_recorded(t) == 1234);
    for (int i = 0; i < 100 && s_fifo.n < 3 && !s_fifo.eof; i++)
        evr_loop_once(t->loop, 10);
    CHECK(strcmp(s_fifo.got, "du\n") == 0);   /* written by the walk's child */
    s_fifo_close(t);
    evr_etest_destroy(&t);
}

/*  Whether this process has no child (none reaped here: WNOWAIT). */
static bool
s_no_child(void)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD;
}

static bool
s_dir_answered(evr_etest_t *t, const void *arg)
{
    (void) t, (void) arg;
    return s_dirs > 0;
}

/*  The engine destroyed (the runner shutting down) while a walk waits:
    its child is killed and reaped, no size recorded. */
static void
test_measure_dropped(void)
{
    evr_etest_t *t = s_world();
    s_gate.on = true;
    s_open_fifo = false;   /* the walk waits for ever */
    evr_loopfifo_guard("test_engine_caches: the loop stopped turning while a cache's size was "
                       "measured (the walk ran on the loop)");
    CHECK(evr_etest_submit(t, evr_etest_job(72), S_YAML) == EVR_OK);
    CHECK(evr_etest_until(t, s_dir_answered, NULL, S_MAX_MS));
    evr_etest_turns(t, 20);
    evr_loopfifo_guard(NULL);
    evr_engine_destroy(&t->eng);
    s_gate.on = false;
    for (int i = 0; i < 500 && !s_no_child(); i++)   /* reaped from the loop's turns */
        evr_loop_once(t->loop, 10);
    CHECK(s_no_child());
    CHECK(s_recorded(t) == 0);   /* marked used at the start, never measured */
    evr_etest_destroy(&t);
}

/*  The cache records whose size (first line) is size. */
static int
s_recorded_as(const evr_etest_t *t, long size)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "head -qn1 %s/caches/evrun-cache-* 2>/dev/null | grep -cx %ld",
             t->dir, size);
    FILE *p = popen(cmd, "r");
    int v = -1;
    if (p) {
        if (fscanf(p, "%d", &v) != 1)
            v = -1;
        pclose(p);
    }
    return v;
}

static bool
s_dirs_at(evr_etest_t *t, const void *arg)
{
    (void) t;
    return s_dirs >= *(const int *) arg;
}

/*  Two jobs' seven caches measured: at most EVR_ENG_WALKS_MAX walks (each
    a child) under way at once, the others queued; every one measured in
    the end, both jobs' (none starved). */
static void
test_walks_bounded(void)
{
    evr_etest_t *t = s_world();
    s_gate.on = true;
    s_open_fifo = false;   /* the walks under way wait at the gate */
    evr_loopfifo_guard("test_engine_caches: the loop stopped turning while caches' sizes were "
                       "measured");
    char yaml[2][600];
    for (int j = 0; j < 2; j++) {
        int at = snprintf(yaml[j], sizeof yaml[j], EVR_ETEST_HEAD "cache:\n");
        for (int i = 0; i < (j ? 2 : 5); i++)
            at += snprintf(yaml[j] + at, sizeof yaml[j] - (size_t) at,
                           "  - {key: j%dk%d, path: d%d}\n", j, i, i);
        snprintf(yaml[j] + at, sizeof yaml[j] - (size_t) at, "steps:\n  - name: a\n"
                 "    run: echo hi\n");
    }
    CHECK(evr_etest_submit(t, evr_etest_job(77), yaml[0]) == EVR_OK);
    CHECK(evr_etest_submit(t, evr_etest_job(78), yaml[1]) == EVR_OK);
    int all = 7;
    CHECK(evr_etest_until(t, s_dirs_at, &all, S_MAX_MS));
    evr_etest_turns(t, 300);
    int kids = evr_loopfifo_children();
    CHECK(kids >= 1 && kids <= EVR_ENG_WALKS_MAX);
    if (kids > EVR_ENG_WALKS_MAX)
        fprintf(stderr, "  %d walks under way at once\n", kids);
    s_gate.on = false;   /* the walks to come pass */
    CHECK(evr_loopfifo_open(t->loop, s_gate.fifo, &s_fifo));
    CHECK(evr_etest_run(t, S_MAX_MS));
    evr_loopfifo_guard(NULL);
    CHECK(evr_etest_job_status(t, evr_etest_job(77)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_job_status(t, evr_etest_job(78)) == EVR_JOB_SUCCEEDED);
    CHECK(s_recorded_as(t, 1234) == 7);
    for (int i = 0; i < 500 && !s_no_child(); i++)
        evr_loop_once(t->loop, 10);
    CHECK(s_no_child());
    s_fifo_close(t);
    evr_etest_destroy(&t);
}

/*  stderr into DIR/log while a test reads what the engine logged
    (s_log_to); s_log_back gives it back and returns the log's text
    (static), copied to stderr too when a check failed meanwhile (its
    message went into the log). */
static int s_saved_err = -1, s_failed_before;
static char s_log_text[16384];

static void
s_log_to(const evr_etest_t *t)
{
    char log[300];
    snprintf(log, sizeof log, "%s/log", t->dir);
    fflush(stderr);
    s_saved_err = dup(2);
    int fd = open(log, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(s_saved_err >= 0 && fd >= 0 && dup2(fd, 2) == 2);
    if (fd >= 0)
        close(fd);
    s_failed_before = evr_test_failed;
}

static const char *
s_log_back(const evr_etest_t *t)
{
    fflush(stderr);
    if (s_saved_err >= 0) {
        dup2(s_saved_err, 2);
        close(s_saved_err);
        s_saved_err = -1;
    }
    char log[300];
    snprintf(log, sizeof log, "%s/log", t->dir);
    FILE *fp = fopen(log, "r");
    size_t n = fp ? fread(s_log_text, 1, sizeof s_log_text - 1, fp) : 0;
    s_log_text[n] = '\0';
    if (fp)
        fclose(fp);
    if (evr_test_failed != s_failed_before)
        fprintf(stderr, "  (the log meanwhile:)\n%s", s_log_text);
    return s_log_text;
}

/*  A job with the cache k1, then n-1 more (k2...), into yaml. */
static void
s_caches_yaml(char *yaml, size_t len, int n)
{
    int at = snprintf(yaml, len, EVR_ETEST_HEAD "cache:\n");
    for (int i = 1; i <= n; i++)
        at += snprintf(yaml + at, len - (size_t) at, "  - {key: k%d, path: d%d}\n", i, i);
    snprintf(yaml + at, len - (size_t) at, "steps:\n  - name: a\n    run: echo hi\n");
}

/*  Walks that never end (gated, the FIFO never opened) are stopped at
    their time limit (the test hook EVR_TEST_WALK_LIMIT_MS: 300 ms): each
    said in the log, nothing recorded (k1's size measured by the job
    before, 1234, is kept though its directory has grown), the waiting
    walk gets a slot, and the job's cleanup goes on (its workspace
    removed, the job done). */
static void
test_walk_limit(void)
{
    evr_etest_t *t = s_world();
    s_gate.on = false;
    CHECK(evr_etest_submit(t, evr_etest_job(79), S_YAML) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(s_recorded_as(t, 1234) == 1);
    char more[400];
    snprintf(more, sizeof more, "%s/more", s_gate.path);
    FILE *fp = fopen(more, "w");
    CHECK(fp && fputs("0123456789", fp) >= 0);
    if (fp)
        fclose(fp);
    setenv("EVR_TEST_WALK_LIMIT_MS", "300", 1);
    s_log_to(t);
    s_gate.on = true;
    s_open_fifo = false;   /* the walks wait at the gate for ever */
    evr_loopfifo_guard("test_engine_caches: the loop stopped turning while caches' sizes were "
                       "measured");
    char yaml[600];
    s_caches_yaml(yaml, sizeof yaml, 3);
    CHECK(evr_etest_submit(t, evr_etest_job(80), yaml) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));   /* the cleanup went on */
    evr_loopfifo_guard(NULL);
    s_gate.on = false;
    unsetenv("EVR_TEST_WALK_LIMIT_MS");
    CHECK(evr_etest_job_status(t, evr_etest_job(80)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_clean(t, 80));   /* its workspace removed */
    CHECK(s_recorded_as(t, 1234) == 1 && s_recorded_as(t, 1244) == 0);   /* kept */
    for (int i = 0; i < 500 && !s_no_child(); i++)   /* the killed walks reaped */
        evr_loop_once(t->loop, 10);
    CHECK(s_no_child());
    const char *log = s_log_back(t);
    CHECK(evr_etest_count(log, "took longer than 300 ms: stopped (its recorded size kept)")
          == 3);
    evr_etest_destroy(&t);
}

/*  The engine destroyed (the runner shutting down) with two walks under
    way (gated) and five waiting: the two children killed and reaped,
    none of the five started, no size recorded, and nothing called back
    once the engine is gone (not the walks' time limit, 1 s here:
    nothing said once it has passed). */
static void
test_walks_destroyed(void)
{
    evr_etest_t *t = s_world();
    setenv("EVR_TEST_WALK_LIMIT_MS", "1000", 1);
    s_log_to(t);
    s_gate.on = true;
    s_open_fifo = false;
    evr_loopfifo_guard("test_engine_caches: the loop stopped turning while caches' sizes were "
                       "measured");
    char yaml[2][600];
    s_caches_yaml(yaml[0], sizeof yaml[0], 5);
    s_caches_yaml(yaml[1], sizeof yaml[1], 2);
    CHECK(evr_etest_submit(t, evr_etest_job(81), yaml[0]) == EVR_OK);
    CHECK(evr_etest_submit(t, evr_etest_job(82), yaml[1]) == EVR_OK);
    int all = 7;
    CHECK(evr_etest_until(t, s_dirs_at, &all, S_MAX_MS));
    for (int i = 0; i < 100 && evr_loopfifo_children() < EVR_ENG_WALKS_MAX; i++)
        evr_etest_turns(t, 10);
    CHECK(evr_loopfifo_children() == EVR_ENG_WALKS_MAX);   /* under way, the rest waiting */
    evr_engine_destroy(&t->eng);
    uint64_t end = evr_mono_ns() + 1200000000ull;   /* past the walks' time limit */
    while (evr_mono_ns() < end)
        evr_loop_once(t->loop, 10);
    evr_loopfifo_guard(NULL);
    s_gate.on = false;
    unsetenv("EVR_TEST_WALK_LIMIT_MS");
    for (int i = 0; i < 500 && !s_no_child(); i++)
        evr_loop_once(t->loop, 10);
    CHECK(s_no_child());
    CHECK(s_recorded_as(t, 1234) == 0);
    const char *log = s_log_back(t);
    CHECK(!strstr(log, "took longer than"));
    evr_etest_destroy(&t);
}

/*  The names in dir starting with '.rm-' or ending with ".git". */
static int
s_git_entries(const char *dir)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls -a %s | grep -c -e '^\\.rm-' -e '\\.git$'", dir);
    FILE *p = popen(cmd, "r");
    int v = -1;
    if (p) {
        if (fscanf(p, "%d", &v) != 1)
            v = -1;
        pclose(p);
    }
    return v;
}

/*  A world whose git cache (into git, 300 bytes) is capped at 1 byte,
    its trims' walks gated (the FIFO not opened by the loop), a
    repository r of one commit, and in yaml a job checking it out. */
static evr_etest_t *
s_trim_world(char *git, char *yaml, size_t len)
{
    evr_etest_t *t = s_world();
    snprintf(git, 300, "%s/git", t->dir);
    t->opts.source_cache_dir = git;
    t->opts.source_cache_max_bytes = 1;
    evr_etest_engine(t);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "set -e; cd %s; git init -q -b main r; cd r; echo one > f; "
             "git add f; git -c user.email=t@t -c user.name=t commit -qm one", t->dir);
    CHECK(system(cmd) == 0);
    snprintf(yaml, len, EVR_ETEST_HEAD "source:\n  git: {url: \"file://%s/r\", ref: main}"
             "\nsteps:\n  - name: a\n    run: echo hi\n", t->dir);
    snprintf(s_gate.path, sizeof s_gate.path, "%s/", git);
    s_gate.on = true;
    s_open_fifo = false;
    evr_loopfifo_guard("test_engine_caches: the loop stopped turning while the git cache was "
                       "trimmed (the trim ran on the loop)");
    return t;
}

/*  A checkout's trim of the git cache runs in a child (its walk waits
    at the FIFO until the loop, turning on, opens it); a second job's
    checkout waits for the trim's end.  The cap of 1 byte removes every
    entry not in use: renamed aside, then removed, nothing left. */
static void
test_trim_off_loop(void)
{
    static char git[300];
    char yaml[600];
    evr_etest_t *t = s_trim_world(git, yaml, sizeof yaml);
    CHECK(evr_etest_submit(t, evr_etest_job(73), yaml) == EVR_OK);
    evr_etest_event_t ev1 = { evr_etest_job(73), "job.source" };
    CHECK(evr_etest_until(t, evr_etest_has_event, &ev1, S_MAX_MS));
    CHECK(evr_etest_submit(t, evr_etest_job(74), yaml) == EVR_OK);
    evr_etest_turns(t, 300);
    evr_etest_event_t ev2 = { evr_etest_job(74), "job.source" };
    CHECK(!evr_etest_has_event(t, &ev2));   /* held while the trim waits */
    CHECK(evr_etest_submit(t, evr_etest_job(75), yaml) == EVR_OK);   /* held, then cancelled */
    evr_etest_turns(t, 50);
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(75), "not now", false, &err) == EVR_OK);
    evr_etest_event_t ev3 = { evr_etest_job(75), "job.finished" };
    CHECK(evr_etest_until(t, evr_etest_has_event, &ev3, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(75)) == EVR_JOB_CANCELLED);
    char *evs = evr_etest_events(t, evr_etest_job(75));
    CHECK(evs && strstr(evs, "source: the job was cancelled while it was checked out"));
    if (evs && !strstr(evs, "while it was checked out"))
        fprintf(stderr, "  job 75's events:\n%s", evs);
    free(evs);
    CHECK(s_fifo.fd < 0);
    CHECK(evr_loopfifo_open(t->loop, s_gate.fifo, &s_fifo));
    CHECK(evr_etest_run(t, S_MAX_MS));
    evr_loopfifo_guard(NULL);
    s_gate.on = false;
    CHECK(evr_etest_job_status(t, evr_etest_job(73)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_job_status(t, evr_etest_job(74)) == EVR_JOB_SUCCEEDED);
    for (int i = 0; i < 100 && s_fifo.n < 3 && !s_fifo.eof; i++)
        evr_loop_once(t->loop, 10);
    CHECK(strncmp(s_fifo.got, "du\n", 3) == 0);   /* written by the trim's child */
    for (int i = 0; i < 500 && !s_no_child(); i++)   /* the last trim's child reaped */
        evr_loop_once(t->loop, 10);
    CHECK(s_no_child());
    CHECK(s_git_entries(git) == 0);
    s_fifo_close(t);
    evr_etest_destroy(&t);
}

/*  A trim still running once every job is done keeps the engine's work
    open (evr_engine_turn above 0): an --exec run waits for it instead of
    killing it as it ends. */
static void
test_trim_holds_exit(void)
{
    static char git[300];
    char yaml[600];
    evr_etest_t *t = s_trim_world(git, yaml, sizeof yaml);
    CHECK(evr_etest_submit(t, evr_etest_job(76), yaml) == EVR_OK);
    evr_etest_event_t ev = { evr_etest_job(76), "job.finished" };
    CHECK(evr_etest_until(t, evr_etest_has_event, &ev, S_MAX_MS));
    evr_etest_turns(t, 100);   /* its cleanup done */
    CHECK(evr_engine_turn(t->eng, 5) > 0);   /* the trim waits for its gate */
    CHECK(evr_loopfifo_open(t->loop, s_gate.fifo, &s_fifo));
    CHECK(evr_etest_run(t, S_MAX_MS));   /* until the trim is over */
    evr_loopfifo_guard(NULL);
    s_gate.on = false;
    CHECK(evr_engine_turn(t->eng, 5) == 0);
    CHECK(evr_etest_job_status(t, evr_etest_job(76)) == EVR_JOB_SUCCEEDED);
    CHECK(s_git_entries(git) == 0);   /* trimmed, not killed */
    for (int i = 0; i < 500 && !s_no_child(); i++)
        evr_loop_once(t->loop, 10);
    s_fifo_close(t);
    evr_etest_destroy(&t);
}

int
main(void)
{
    EVR_TEST_RUN(test_measure_off_loop);
    EVR_TEST_RUN(test_measure_dropped);
    EVR_TEST_RUN(test_walks_bounded);
    EVR_TEST_RUN(test_walk_limit);
    EVR_TEST_RUN(test_walks_destroyed);
    EVR_TEST_RUN(test_trim_off_loop);
    EVR_TEST_RUN(test_trim_holds_exit);
    EVR_TEST_END();
}
