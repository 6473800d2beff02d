/*  test_exec_process_rm: the process executor's removals of workspaces'
    and units' trees (runner/evr_exec_process_ctl.c), with a real loop
    and real processes: off the loop, in a child (a FIFO only the loop
    reads gates evr_unit_rmtree's unlinkat: see s_gate); at most
    EVR_XP_RM_MAX children at once, the child of the trees put off among
    them; each stopped at its time limit (a test hook makes it short);
    all killed with the executor; a removal whose child cannot be forked
    (put off, removed later, said with the delay of the next try); and
    the sweep, at the start, of what an earlier run left.

    The supervisor of each step is this binary itself (--shim), as it is
    evrun-runner in production: main() hands over to evr_shim_main.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "evr_exec_process_int.h"   /* EVR_XP_RM_MAX, the put-off trees' state */
#include "evr_loopfifo.h"
#include "evr_ptest.h"
#include "evr_shim.h"

/*  A FIFO, read from the loop. */
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

/*  unlinkat, as libc's but for the name s_gate.name: first that opens the
    FIFO s_gate.fifo for writing (waiting for a reader) and writes
    "gone\n" into it.  evr_unit_rmtree's unlinkat comes here (this binary
    defines the symbol); the child of an offload inherits s_gate. */
static struct {
    const char *name, *fifo;
} s_gate;

int
unlinkat(int dirfd, const char *path, int flags)
{
    if (s_gate.name && !strcmp(path, s_gate.name)) {
        evr_loopfifo_say(s_gate.fifo, "gone\n");   /* short: the test sees no "gone" */
    }
    return (int) syscall(SYS_unlinkat, dirfd, path, flags);
}

/*  Removes name (a workspace: job, or a unit) whose tree holds the file
    evr-gate, whose unlinkat waits for the FIFO's reader: a timer of the
    loop opens it only once the call has returned.  True when the call
    reported success and the FIFO got "gone". */
static bool
s_remove_gated(s_env_t *e, const char *job, const char *unit)
{
    s_fifo_t f = { .r.fd = -1 };
    snprintf(f.path, sizeof f.path, "%s/gate.fifo", e->dir);
    unlink(f.path);
    CHECK(mkfifo(f.path, 0600) == 0);
    s_gate.fifo = f.path;
    s_gate.name = "evr-gate";
    s_res_t r = { 0 };
    if (job)
        e->ex->ops->workspace_remove(e->ex, job, s_on, &r);
    else
        e->ex->ops->remove(e->ex, unit, s_on, &r);
    evr_loop_timer_add(e->loop, 0, s_fifo_open, &f);
    s_until(e->loop, &r.called);
    for (int i = 0; i < 100 && f.r.n < 5 && !f.r.eof; i++)
        evr_loop_once(e->loop, 10);
    s_gate.name = NULL;
    if (r.r.rc)
        fprintf(stderr, "  remove: %s\n", r.msg);
    if (f.r.fd >= 0) {
        if (!f.r.eof)
            evr_loop_fd_remove(e->loop, f.r.fd);
        close(f.r.fd);
    }
    return r.called && r.r.rc == EVR_OK && !strcmp(f.r.got, "gone\n");
}

/*  What an earlier run left in the executor's directory sub (work,
    units): .rm- and .new- entries (JOB2 too, in work). */
static int
s_leftovers(s_env_t *e, const char *sub)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", e->dir, sub);
    DIR *d = opendir(p);
    struct dirent *de;
    int left = 0;
    while (d && (de = readdir(d)))
        left += !strncmp(de->d_name, ".rm-", 4) || !strncmp(de->d_name, ".new-", 5)
                || !strcmp(de->d_name, "JOB2");
    if (d)
        closedir(d);
    return left;
}

/*  A workspace's tree, and a unit's directory, are removed in a child
    process, never on the loop: a file in them is unlinked only once the
    loop has opened a FIFO, from a timer of the loop (see s_gate).  Done
    inside the call, the removal would wait for that timer for ever (the
    alarm then fails the test).  An executor destroyed while a removal
    runs leaves its .rm- directory, which the next start sweeps. */
static void
test_removals_off_loop(void)
{
    s_env_t e;
    s_setup(&e);
    char p[160];
    snprintf(p, sizeof p, "%s/work/JOB1/sub", e.dir);
    CHECK(mkdir(p, 0700) == 0);
    snprintf(p, sizeof p, "%s/work/JOB1/sub/evr-gate", e.dir);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    evr_loopfifo_guard("test_exec_process: the loop stopped turning while a workspace was "
                       "removed (the removal ran on the loop)");
    CHECK(s_remove_gated(&e, "JOB1", NULL));
    snprintf(p, sizeof p, "%s/work/JOB1", e.dir);
    CHECK(access(p, F_OK) != 0 && errno == ENOENT);
    s_create(&e, "evrun-JOB1-g-1", "true", NULL);
    snprintf(p, sizeof p, "%s/units/evrun-JOB1-g-1/evr-gate", e.dir);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    evr_loopfifo_guard("test_exec_process: the loop stopped turning while a unit was removed "
                       "(the removal ran on the loop)");
    CHECK(s_remove_gated(&e, NULL, "evrun-JOB1-g-1"));
    evr_loopfifo_guard(NULL);
    s_res_t r;
    CALL(&e, r, inspect, "evrun-JOB1-g-1");
    CHECK(r.r.not_found);
    /* destroyed during a removal (its child waiting for the FIFO): the
       child is killed, the .rm- directory left to the next start */
    CALL(&e, r, workspace_create, "JOB2");
    snprintf(p, sizeof p, "%s/work/JOB2/evr-gate", e.dir);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(p, sizeof p, "%s/gate.fifo", e.dir);
    s_gate.fifo = p;
    s_gate.name = "evr-gate";
    memset(&r, 0, sizeof r);
    e.ex->ops->workspace_remove(e.ex, "JOB2", s_on, &r);
    evr_loop_once(e.loop, 10);
    evr_exec_destroy(&e.ex);
    s_gate.name = NULL;
    CHECK(!r.called);
    evr_err_t err;
    e.ex = evr_exec_process_new(e.dir, e.loop, &err);
    CHECK(e.ex != NULL);
    for (int i = 0; i < 500 && s_leftovers(&e, "work"); i++)   /* swept in a child */
        evr_loop_once(e.loop, 10);
    CHECK(s_leftovers(&e, "work") == 0);
    s_teardown(&e);
}

/*  What an earlier run left (a workspace's tree, a unit's) is removed in
    a child process, never on the loop: the executor starts serving at
    once.  A file in the tree is unlinked only once the loop has opened a
    FIFO, from a timer added once the executor is made (see s_gate):
    swept inside evr_exec_process_new, the removal would wait for that
    timer for ever (the alarm then fails the test).  The leftovers'
    names are free at once (renamed aside). */
static void
test_sweep_off_loop(void)
{
    s_env_t e;
    s_setup(&e);
    evr_exec_destroy(&e.ex);
    char p[200], q[200];
    snprintf(p, sizeof p, "%s/work/.rm-JOB7-1-1/sub", e.dir);
    evr_err_t err;
    CHECK(evr_mkdirs(p, &err) == EVR_OK);
    snprintf(p, sizeof p, "%s/work/.rm-JOB7-1-1/sub/evr-gate", e.dir);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(q, sizeof q, "%s/units/.new-evrun-JOB7-a-1-1-1", e.dir);
    CHECK(mkdir(q, 0700) == 0);
    s_fifo_t f = { .r.fd = -1 };
    snprintf(f.path, sizeof f.path, "%s/gate.fifo", e.dir);
    CHECK(mkfifo(f.path, 0600) == 0);
    s_gate.fifo = f.path;
    s_gate.name = "evr-gate";
    evr_loopfifo_guard("test_exec_process: the loop stopped turning while an earlier run's "
                       "leftovers were removed (the sweep ran on the loop)");
    e.ex = evr_exec_process_new(e.dir, e.loop, &err);
    CHECK(e.ex != NULL);
    evr_loop_timer_add(e.loop, 0, s_fifo_open, &f);
    snprintf(p, sizeof p, "%s/work/.rm-JOB7-1-1", e.dir);
    CHECK(access(p, F_OK) != 0 && access(q, F_OK) != 0);   /* their names free at once */
    s_res_t r;
    CALL(&e, r, workspace_create, "JOB8");   /* served meanwhile */
    CHECK(r.r.rc == EVR_OK);
    /* until both are gone and the child's word has been read off the
       FIFO (it can come a turn after the last removal) */
    for (int i = 0; i < 500 && (s_leftovers(&e, "work") + s_leftovers(&e, "units")
                                || strcmp(f.r.got, "gone\n") != 0); i++)
        evr_loop_once(e.loop, 10);
    evr_loopfifo_guard(NULL);
    s_gate.name = NULL;
    CHECK(s_leftovers(&e, "work") == 0 && s_leftovers(&e, "units") == 0);
    CHECK(strcmp(f.r.got, "gone\n") == 0);   /* said by the sweep's child */
    if (f.r.fd >= 0) {
        if (!f.r.eof)
            evr_loop_fd_remove(e.loop, f.r.fd);
        close(f.r.fd);
    }
    s_teardown(&e);
}

/*  The .rm- directories in dir. */
static int
s_aside(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while (d && (de = readdir(d)))
        n += !strncmp(de->d_name, ".rm-", 4);
    if (d)
        closedir(d);
    return n;
}

/*  Six workspaces removed at once: at most EVR_XP_RM_MAX children under
    way (each waits at the gate), the others waiting their turn; all
    removed in the end. */
static void
test_removals_bounded(void)
{
    s_env_t e;
    s_setup(&e);
    s_fifo_t f = { .r.fd = -1 };
    snprintf(f.path, sizeof f.path, "%s/gate.fifo", e.dir);
    CHECK(mkfifo(f.path, 0600) == 0);
    s_gate.fifo = f.path;
    s_gate.name = "evr-gate";
    s_res_t r[6];
    char p[160];
    for (int i = 0; i < 6; i++) {
        char job[16];
        snprintf(job, sizeof job, "JOBR%d", i);
        CALL(&e, r[i], workspace_create, job);
        snprintf(p, sizeof p, "%s/work/%s/evr-gate", e.dir, job);
        close(open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    }
    evr_loopfifo_guard("test_exec_process: the loop stopped turning while workspaces were "
                       "removed");
    for (int i = 0; i < 6; i++) {
        char job[16];
        snprintf(job, sizeof job, "JOBR%d", i);
        memset(&r[i], 0, sizeof r[i]);
        e.ex->ops->workspace_remove(e.ex, job, s_on, &r[i]);
    }
    for (int i = 0; i < 20; i++)
        evr_loop_once(e.loop, 10);
    int kids = evr_loopfifo_children();
    CHECK(kids >= 1 && kids <= EVR_XP_RM_MAX);
    if (kids > EVR_XP_RM_MAX)
        fprintf(stderr, "  %d removals under way at once\n", kids);
    s_gate.name = NULL;   /* those to come pass */
    CHECK(evr_loopfifo_open(e.loop, f.path, &f.r));
    for (int i = 0; i < 6; i++) {
        s_until(e.loop, &r[i].called);
        CHECK(r[i].called && r[i].r.rc == EVR_OK);
    }
    evr_loopfifo_guard(NULL);
    snprintf(p, sizeof p, "%s/work", e.dir);
    CHECK(s_aside(p) == 0);
    if (f.r.fd >= 0) {
        if (!f.r.eof)
            evr_loop_fd_remove(e.loop, f.r.fd);
        close(f.r.fd);
    }
    s_teardown(&e);
}

/*  stderr into DIR/log while a test reads what the executor logged
    (s_log_to); s_log_back gives it back and returns the log's text
    (static), copied to stderr too when a check failed meanwhile (its
    message went into the log, not lost with the directory). */
static int s_saved_err = -1, s_failed_before;
static char s_log_text[16384];

static void
s_log_to(const s_env_t *e)
{
    char log[128];
    snprintf(log, sizeof log, "%s/log", e->dir);
    fflush(stderr);
    s_saved_err = dup(2);
    int fd = open(log, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(s_saved_err >= 0 && fd >= 0 && dup2(fd, 2) == 2);
    if (fd >= 0)
        close(fd);
    s_failed_before = evr_test_failed;
}

/*  The log so far (stderr still into it). */
static const char *
s_log_read(const s_env_t *e)
{
    fflush(stderr);
    char log[128];
    snprintf(log, sizeof log, "%s/log", e->dir);
    FILE *fp = fopen(log, "r");
    size_t n = fp ? fread(s_log_text, 1, sizeof s_log_text - 1, fp) : 0;
    s_log_text[n] = '\0';
    if (fp)
        fclose(fp);
    return s_log_text;
}

static const char *
s_log_back(const s_env_t *e)
{
    s_log_read(e);
    if (s_saved_err >= 0) {
        dup2(s_saved_err, 2);
        close(s_saved_err);
        s_saved_err = -1;
    }
    if (evr_test_failed != s_failed_before)
        fprintf(stderr, "  (the log meanwhile:)\n%s", s_log_text);
    return s_log_text;
}

/*  The delays said by the log's lines "is removed later (tried again in
    N s", in order, into at (at most max); how many. */
static int
s_delays_said(const char *log, long *at, int max)
{
    int n = 0;
    const char *key = "is removed later (tried again in ";
    for (const char *p = strstr(log, key); p && n < max; p = strstr(p + 1, key))
        at[n++] = atol(p + strlen(key));
    return n;
}

/*  Occurrences of needle in text. */
static int
s_count_in(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/*  Makes the workspace job with the gated file evr-gate in it. */
static void
s_gated_ws(s_env_t *e, const char *job)
{
    s_res_t r;
    char p[160];
    CALL(e, r, workspace_create, job);
    CHECK(r.r.rc == EVR_OK);
    snprintf(p, sizeof p, "%s/work/%s/evr-gate", e->dir, job);
    close(open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
}

/*  Makes n gated workspaces PREFIX0..PREFIX(n-1) (s_gated_ws), then asks
    each one's removal, its answer into r[i]. */
static void
s_remove_gated_n(s_env_t *e, const char *prefix, int n, s_res_t *r)
{
    char job[16];
    for (int i = 0; i < n; i++) {
        snprintf(job, sizeof job, "%s%d", prefix, i);
        s_gated_ws(e, job);
    }
    for (int i = 0; i < n; i++) {
        snprintf(job, sizeof job, "%s%d", prefix, i);
        memset(&r[i], 0, sizeof r[i]);
        e->ex->ops->workspace_remove(e->ex, job, s_on, &r[i]);
    }
}

/*  Removals whose child cannot be forked (the test hook
    EVR_TEST_OFFLOAD_FORK_FAIL, as past RLIMIT_NPROC): each reports
    success (its name free), its tree is put off, said in the log, and
    removed later, from a timer once forks work again; a removal asked
    meanwhile tries the trees put off at once. */
static void
test_removal_fork_fails(void)
{
    s_env_t e;
    s_setup(&e);
    char flag[128], units[128], work[128], p[160];
    snprintf(flag, sizeof flag, "%s/nofork", e.dir);
    snprintf(units, sizeof units, "%s/units", e.dir);
    snprintf(work, sizeof work, "%s/work", e.dir);
    close(open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    setenv("EVR_TEST_OFFLOAD_FORK_FAIL", flag, 1);
    s_log_to(&e);   /* the log, read below */
    snprintf(p, sizeof p, "%s/JOB1/f", work);
    close(open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    s_res_t r;
    CALL(&e, r, workspace_remove, "JOB1");
    CHECK(r.r.rc == EVR_OK);
    if (r.r.rc)
        fprintf(stderr, "  workspace_remove: %s\n", r.msg);
    s_create(&e, "evrun-JOB1-f-1", "true", NULL);
    CALL(&e, r, remove, "evrun-JOB1-f-1");
    CHECK(r.r.rc == EVR_OK);
    CALL(&e, r, inspect, "evrun-JOB1-f-1");
    CHECK(r.r.not_found);
    snprintf(p, sizeof p, "%s/JOB1", work);
    CHECK(access(p, F_OK) != 0);   /* its name free */
    CHECK(s_aside(work) == 1 && s_aside(units) == 1);   /* put off */
    evr_loop_once(e.loop, 10);
    /* forks work again: the next try (a timer) removes both */
    unlink(flag);
    for (int i = 0; i < 500 && s_aside(work) + s_aside(units) > 0; i++)
        evr_loop_once(e.loop, 10);
    CHECK(s_aside(work) == 0 && s_aside(units) == 0);
    /* put off again, two at once (the next try 10 minutes away: a timer
       that cannot be what removes them below; the second one's line
       says the delay of that timer, not the one after it), then another
       removal: tried at once with it */
    evr_xp_t *ex = (evr_xp_t *) e.ex;
    for (int i = 0; i < 500 && ex->trash_work; i++)   /* the first trees' child reaped */
        evr_loop_once(e.loop, 10);
    ex->trash_ms = 600000;
    close(open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    CALL(&e, r, workspace_create, "JOB2");
    CALL(&e, r, workspace_create, "JOB4");
    s_res_t r4 = { 0 };
    memset(&r, 0, sizeof r);
    e.ex->ops->workspace_remove(e.ex, "JOB2", s_on, &r);
    e.ex->ops->workspace_remove(e.ex, "JOB4", s_on, &r4);
    s_until(e.loop, &r.called);
    s_until(e.loop, &r4.called);
    CHECK(r.r.rc == EVR_OK && r4.r.rc == EVR_OK && s_aside(work) == 2);
    long said[8];
    int nsaid = s_delays_said(s_log_read(&e), said, 8);
    CHECK(nsaid == 4 && said[2] == 600 && said[3] >= 590 && said[3] <= 600);
    if (nsaid == 4 && (said[2] != 600 || said[3] < 590))
        fprintf(stderr, "  said: tried again in %ld s, then in %ld s\n", said[2], said[3]);
    CHECK(ex->trash_timer != 0);
    unlink(flag);
    CALL(&e, r, workspace_create, "JOB3");
    CALL(&e, r, workspace_remove, "JOB3");
    CHECK(ex->trash_timer == 0);   /* tried with it: the timer cancelled */
    for (int i = 0; i < 500 && s_aside(work) > 0; i++)
        evr_loop_once(e.loop, 10);
    CHECK(s_aside(work) == 0);
    unsetenv("EVR_TEST_OFFLOAD_FORK_FAIL");
    const char *text = s_log_back(&e);
    CHECK_CONTAINS(text, "process executor: removing the workspace");
    CHECK_CONTAINS(text, "process executor: removing evrun-JOB1-f-1: fork: Resource "
                         "temporarily unavailable: its tree");
    CHECK_CONTAINS(text, "is removed later");
    CHECK_CONTAINS(text, "put off removed");
    s_teardown(&e);
}

/*  The gate's FIFO at DIR/gate.fifo, made, its writers waiting (s_gate
    on) until the test opens it. */
static void
s_gate_fifo(s_env_t *e, s_fifo_t *f)
{
    *f = (s_fifo_t) { .r.fd = -1 };
    snprintf(f->path, sizeof f->path, "%s/gate.fifo", e->dir);
    unlink(f->path);
    CHECK(mkfifo(f->path, 0600) == 0);
    s_gate.fifo = f->path;
    s_gate.name = "evr-gate";
}

static void
s_fifo_close(s_env_t *e, s_fifo_t *f)
{
    if (f->r.fd >= 0) {
        if (!f->r.eof)
            evr_loop_fd_remove(e->loop, f->r.fd);
        close(f->r.fd);
    }
    f->r.fd = -1;
}

/*  Turns the loop until this process has no child left (5 s at most). */
static bool
s_no_children(s_env_t *e)
{
    for (int i = 0; i < 500 && evr_loopfifo_children() > 0; i++)
        evr_loop_once(e->loop, 10);
    return evr_loopfifo_children() == 0;
}

/*  The child removing the trees put off counts in EVR_XP_RM_MAX: a tree
    put off (no fork), then four removals asked once forks work, all
    gated: the put-off one's child and three of theirs under way, the
    fourth waiting (five children at once before); all removed once the
    gate opens. */
static void
test_trash_counted(void)
{
    s_env_t e;
    s_setup(&e);
    char flag[128], work[128];
    snprintf(flag, sizeof flag, "%s/nofork", e.dir);
    snprintf(work, sizeof work, "%s/work", e.dir);
    s_fifo_t f;
    s_gate_fifo(&e, &f);
    s_log_to(&e);
    ((evr_xp_t *) e.ex)->trash_ms = 600000;   /* tried with the next removal, not by a timer */
    s_gated_ws(&e, "JOBP");
    close(open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    setenv("EVR_TEST_OFFLOAD_FORK_FAIL", flag, 1);
    s_res_t r;
    CALL(&e, r, workspace_remove, "JOBP");
    CHECK(r.r.rc == EVR_OK && s_aside(work) == 1);   /* put off */
    unlink(flag);
    unsetenv("EVR_TEST_OFFLOAD_FORK_FAIL");
    evr_loopfifo_guard("test_exec_process: the loop stopped turning while workspaces were "
                       "removed");
    s_res_t q[4];
    s_remove_gated_n(&e, "JOBQ", 4, q);
    for (int i = 0; i < 20; i++)
        evr_loop_once(e.loop, 10);
    int kids = evr_loopfifo_children();
    CHECK(kids == EVR_XP_RM_MAX);
    if (kids != EVR_XP_RM_MAX)
        fprintf(stderr, "  %d removals under way at once\n", kids);
    CHECK(((evr_xp_t *) e.ex)->trash_work != NULL);   /* among them */
    s_gate.name = NULL;   /* those to come pass */
    CHECK(evr_loopfifo_open(e.loop, f.path, &f.r));
    for (int i = 0; i < 4; i++) {
        s_until(e.loop, &q[i].called);
        CHECK(q[i].called && q[i].r.rc == EVR_OK);
    }
    for (int i = 0; i < 500 && (s_aside(work) > 0 || ((evr_xp_t *) e.ex)->trash_work); i++)
        evr_loop_once(e.loop, 10);   /* until its child is reaped, said */
    evr_loopfifo_guard(NULL);
    CHECK(s_aside(work) == 0);
    CHECK(s_no_children(&e));
    s_fifo_close(&e, &f);
    CHECK_CONTAINS(s_log_back(&e), "put off removed");
    s_teardown(&e);
}

/*  Removals past their time limit (the test hook EVR_TEST_RM_LIMIT_MS:
    300 ms), their children never ending (gated, the FIFO not opened):
    each child killed, the call reports success (its name free), its tree
    put off, said; the fifth, waiting, gets a slot (and is stopped too);
    the child of the trees put off is stopped the same way.  Once the
    gate opens, the trees put off are removed. */
static void
test_removal_limit(void)
{
    setenv("EVR_TEST_RM_LIMIT_MS", "300", 1);
    s_env_t e;
    s_setup(&e);
    unsetenv("EVR_TEST_RM_LIMIT_MS");
    char work[128];
    snprintf(work, sizeof work, "%s/work", e.dir);
    s_fifo_t f;
    s_gate_fifo(&e, &f);
    s_log_to(&e);
    ((evr_xp_t *) e.ex)->trash_ms = 50;   /* the trees put off tried soon */
    evr_loopfifo_guard("test_exec_process: the loop stopped turning while workspaces were "
                       "removed");
    s_res_t r[5];
    s_remove_gated_n(&e, "JOBL", 5, r);
    for (int i = 0; i < 5; i++) {
        s_until(e.loop, &r[i].called);
        CHECK(r[i].called && r[i].r.rc == EVR_OK);
    }
    const char *stopped = "its removal stopped after 300 ms (the time limit of a removal): "
                          "its tree";
    const char *trash = "put off (";
    for (int i = 0; i < 300 && !strstr(s_log_read(&e), trash); i++)
        evr_loop_once(e.loop, 10);
    const char *log = s_log_read(&e);
    CHECK(evr_loopfifo_children() <= EVR_XP_RM_MAX);
    CHECK(s_aside(work) == 5);
    s_gate.name = NULL;
    CHECK(evr_loopfifo_open(e.loop, f.path, &f.r));
    for (int i = 0; i < 500 && (s_aside(work) > 0 || ((evr_xp_t *) e.ex)->trash_work); i++)
        evr_loop_once(e.loop, 10);   /* until its child is reaped, said */
    evr_loopfifo_guard(NULL);
    CHECK(s_aside(work) == 0);
    CHECK(s_no_children(&e));
    s_fifo_close(&e, &f);
    log = s_log_back(&e);
    CHECK(s_count_in(log, stopped) == 5);
    CHECK_CONTAINS(log, "put off (");
    CHECK_CONTAINS(log, "): stopped after 300 ms (the time limit of a removal): tried again in");
    CHECK_CONTAINS(log, "put off removed");
    s_teardown(&e);
}

/*  Turns the loop for ms (timers due meanwhile fire). */
static void
s_turn_for(s_env_t *e, uint64_t ms)
{
    uint64_t end = evr_mono_ns() + ms * 1000000;
    while (evr_mono_ns() < end)
        evr_loop_once(e->loop, 10);
}

/*  The executor destroyed with six removals asked (gated: four under way,
    two waiting), then with the child of the trees put off under way
    (gated; a tree put off meanwhile is said to go once it ends): no
    child left, no call answered, nothing fired once it is gone (not the
    removals' time limit, 1 s here), and the next start sweeps what
    they left. */
static void
test_removals_destroyed(void)
{
    setenv("EVR_TEST_RM_LIMIT_MS", "1000", 1);
    s_env_t e;
    s_setup(&e);
    char flag[128], work[128];
    snprintf(flag, sizeof flag, "%s/nofork", e.dir);
    snprintf(work, sizeof work, "%s/work", e.dir);
    s_fifo_t f;
    s_gate_fifo(&e, &f);
    s_log_to(&e);
    evr_loopfifo_guard("test_exec_process: the loop stopped turning while workspaces were "
                       "removed");
    s_res_t r[6];
    s_remove_gated_n(&e, "JOBD", 6, r);
    for (int i = 0; i < 100 && evr_loopfifo_children() < EVR_XP_RM_MAX; i++)
        evr_loop_once(e.loop, 10);
    CHECK(evr_loopfifo_children() == EVR_XP_RM_MAX);
    evr_exec_destroy(&e.ex);
    s_turn_for(&e, 1200);   /* past the time limit */
    CHECK(s_no_children(&e));
    for (int i = 0; i < 6; i++)
        CHECK(!r[i].called);
    evr_err_t err;
    s_gate.name = NULL;   /* the next start's sweep passes */
    e.ex = evr_exec_process_new(e.dir, e.loop, &err);
    CHECK(e.ex != NULL);
    for (int i = 0; i < 500 && s_leftovers(&e, "work"); i++)
        evr_loop_once(e.loop, 10);
    CHECK(s_aside(work) == 0);
    /* the trees put off: their child gated, then another put off */
    s_gate.name = "evr-gate";
    ((evr_xp_t *) e.ex)->trash_ms = 600000;
    s_gated_ws(&e, "JOBT");
    close(open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    setenv("EVR_TEST_OFFLOAD_FORK_FAIL", flag, 1);
    s_res_t q;
    CALL(&e, q, workspace_remove, "JOBT");
    CHECK(q.r.rc == EVR_OK && s_aside(work) == 1);   /* put off */
    unlink(flag);
    CALL(&e, q, workspace_create, "JOBU");
    CALL(&e, q, workspace_remove, "JOBU");   /* not gated: the put-off one's child starts */
    CHECK(q.r.rc == EVR_OK && ((evr_xp_t *) e.ex)->trash_work != NULL);
    for (int i = 0; i < 100 && evr_loopfifo_children() < 1; i++)
        evr_loop_once(e.loop, 10);
    CHECK(evr_loopfifo_children() == 1);
    close(open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    CALL(&e, q, workspace_create, "JOBV");
    CALL(&e, q, workspace_remove, "JOBV");   /* put off while the child runs */
    CHECK(q.r.rc == EVR_OK && s_aside(work) == 2);
    unlink(flag);
    unsetenv("EVR_TEST_OFFLOAD_FORK_FAIL");
    evr_exec_destroy(&e.ex);
    s_turn_for(&e, 1200);
    unsetenv("EVR_TEST_RM_LIMIT_MS");
    evr_loopfifo_guard(NULL);
    CHECK(s_no_children(&e));
    s_gate.name = NULL;   /* the next start's sweep passes */
    e.ex = evr_exec_process_new(e.dir, e.loop, &err);
    CHECK(e.ex != NULL);
    for (int i = 0; i < 500 && s_leftovers(&e, "work"); i++)
        evr_loop_once(e.loop, 10);
    CHECK(s_aside(work) == 0);
    s_fifo_close(&e, &f);
    const char *log = s_log_back(&e);
    CHECK_CONTAINS(log, "is removed later (once the removal under way of those put off before "
                        "ends)");
    CHECK(!strstr(log, "time limit"));
    s_teardown(&e);
}

int
main(int argc, char **argv)
{
    if (evr_shim_wanted(argc, argv))
        return evr_shim_main(argv[2]);
    signal(SIGPIPE, SIG_IGN);   /* as the runner: the steps get it back */
    EVR_TEST_RUN(test_removals_off_loop);
    EVR_TEST_RUN(test_removal_fork_fails);
    EVR_TEST_RUN(test_removals_bounded);
    EVR_TEST_RUN(test_trash_counted);
    EVR_TEST_RUN(test_removal_limit);
    EVR_TEST_RUN(test_removals_destroyed);
    EVR_TEST_RUN(test_sweep_off_loop);
    EVR_TEST_END();
}
