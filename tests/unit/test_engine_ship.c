/*  test_engine_ship.c: a step's artifact files queued for the broker
    (runner/evr_step_artifact.c, runner/evr_ship.h), off the loop.

    The queue entries are written in the child process that unpacked the
    files, then synced at once, before the loop appends the step.artifact
    events that name them, in the list's order.  This binary's rename
    proves it runs off the loop: renaming the first entry into place
    (a name ending in .ship), it first makes a marker file, then opens a
    FIFO for writing, which waits for a reader.  The loop opens the
    reading end only once it sees the marker: queueing on the loop would
    wait for ever (the alarm then fails the test).
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "evr_etest.h"
#include "evr_exec_process_ws.h"
#include "evr_loopfifo.h"
#include "evr_test.h"

#define S_MAX_MS 30000   /* a bound for a failing test only: ASan on a loaded machine is slow */

static struct {
    char fifo[300], marker[300];
    bool on;            /* the next entry renamed into place waits */
} s_gate;

/*  rename, as libc's but for the gate (see above). */
int
rename(const char *from, const char *to)
{
    size_t n = strlen(to);
    if (s_gate.on && n > 5 && !strcmp(to + n - 5, ".ship")) {
        s_gate.on = false;   /* in this process: the child's copy, or the loop's */
        close(open(s_gate.marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
        evr_loopfifo_say(s_gate.fifo, "q\n");
    }
    return (int) syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to);
}

typedef struct {
    evr_loopfifo_t r;
} s_watch_t;

/*  From the loop, every 2 ms until the gate's marker is there: then the
    FIFO's reading end opened. */
static void
s_watch(evr_loop_t *loop, void *arg)
{
    s_watch_t *w = arg;
    if (access(s_gate.marker, F_OK) != 0) {
        evr_loop_timer_add(loop, 2, s_watch, w);
        return;
    }
    CHECK(evr_loopfifo_open(loop, s_gate.fifo, &w->r));
}

/*  The paths of a job's step.artifact events, in their order, one a line. */
static int
s_artifact_line(const evr_event_t *ev, void *arg)
{
    char **text = arg;
    if (evr_event_kind(ev) != EVR_EV_STEP_ARTIFACT)
        return 0;
    char *t = evr_asprintf("%s%s\n", *text, ev->data.path);
    free(*text);
    *text = t;
    return 0;
}

static char *
s_artifact_events(evr_etest_t *t, int n)
{
    char *text = evr_strdup("");
    evr_err_t err;
    CHECK(evr_store_job_events(t->store, evr_etest_job(n), 1, s_artifact_line, &text, &err)
          == EVR_OK);
    return text;
}

static int
s_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/*  The paths the entries in dir name (their 4th line), in the order of
    the entries' names (the order they ship in), one a line. */
static char *
s_queued(const char *dir)
{
    DIR *d = opendir(dir);
    char *names[64];
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.' && n < 64)
            names[n++] = evr_strdup(e->d_name);
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, s_cmp);
    char *text = evr_strdup("");
    for (size_t i = 0; i < n; i++) {
        char *p = evr_asprintf("%s/%s", dir, names[i]);
        FILE *fp = fopen(p, "rb");
        char line[512] = "";
        for (int k = 0; fp && k < 4 && fgets(line, sizeof line, fp); k++)
            ;
        if (fp)
            fclose(fp);
        size_t len = strlen(names[i]);
        char *t = evr_asprintf("%s%s", text, len > 5 && !strcmp(names[i] + len - 5, ".ship")
                                                 ? line : "(not an entry)\n");
        free(text);
        text = t;
        free(p);
        free(names[i]);
    }
    return text;
}

/*  A world whose engine ships (its queue in DIR/ship). */
static evr_etest_t *
s_world(char *ship, size_t cap)
{
    evr_etest_t *t = evr_etest_new();
    snprintf(ship, cap, "%s/ship", t->dir);
    t->opts.ship_dir = ship;
    evr_etest_engine(t);
    return t;
}

static const char *s_three = EVR_ETEST_HEAD "steps:\n  - name: a\n"
                             "    run: echo a > out/a.txt; echo b > out/b.txt; echo c > out/c.txt\n"
                             "    artifacts: [out]\n";

/*  Three files: queued in the unpack's child, the first entry's rename
    waiting at the gate until the loop (turning on meanwhile) reads it;
    then their events, in the order of the queue. */
static void
test_queued_off_loop(void)
{
    static char ship[300];
    evr_etest_t *t = s_world(ship, sizeof ship);
    snprintf(s_gate.fifo, sizeof s_gate.fifo, "%s/gate.fifo", t->dir);
    snprintf(s_gate.marker, sizeof s_gate.marker, "%s/gate.marker", t->dir);
    CHECK(mkfifo(s_gate.fifo, 0600) == 0);
    s_watch_t w = { .r.fd = -1 };
    s_gate.on = true;
    evr_loopfifo_guard("test_engine_ship: the loop stopped turning while a step's artifact "
                       "files were queued for the broker (queued on the loop)");
    evr_loop_timer_add(t->loop, 2, s_watch, &w);
    CHECK(evr_etest_submit(t, evr_etest_job(1), s_three) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    evr_loopfifo_guard(NULL);
    s_gate.on = false;
    CHECK(w.r.fd >= 0 && strcmp(w.r.got, "q\n") == 0);   /* said by the child */
    CHECK(evr_etest_job_status(t, evr_etest_job(1)) == EVR_JOB_SUCCEEDED);
    char *ev = s_artifact_events(t, 1), *q = s_queued(ship);
    CHECK(evr_etest_count(ev, "\n") == 3);
    CHECK(strstr(ev, "out/a.txt\n") && strstr(ev, "out/b.txt\n") && strstr(ev, "out/c.txt\n"));
    CHECK_STR(q, ev);   /* one entry per event, shipped in the events' order */
    free(ev);
    free(q);
    CHECK(evr_etest_clean(t, 1));
    if (w.r.fd >= 0) {
        if (!w.r.eof)
            evr_loop_fd_remove(t->loop, w.r.fd);
        close(w.r.fd);
    }
    evr_etest_destroy(&t);
}

/*  A queue that cannot be written (its directory is a file): the step
    fails naming the first file and why, and no event names a file. */
static void
test_queue_fails(void)
{
    static char ship[300];
    evr_etest_t *t = s_world(ship, sizeof ship);
    close(open(ship, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    CHECK(evr_etest_submit(t, evr_etest_job(2), s_three) == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 2), *paths = s_artifact_events(t, 2);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 failed exit=0",
                             "reason=its command exited 0, but artifact out: file out/",
                             ": queueing it for the broker: ", ship, NULL));
    /* the job's reason: the 0 is not given as the cause */
    CHECK(evr_etest_in_order(ev, "job.finished failed reason=step a failed: its command exited "
                             "0, but artifact out: file out/", NULL));
    CHECK_STR(paths, "");
    free(paths);
    free(ev);
    CHECK(evr_etest_clean(t, 2));
    evr_etest_destroy(&t);
}

/*  Files whose names an event cannot carry (a byte that is not UTF-8, a
    control character: a terminal's escape): neither recorded, nor
    queued, nor kept, and the step fails naming the first, escaped, on
    its stderr and in its reason; the other file is kept.  (They were
    kept on the runner unsaid, the name printed raw by --exec.) */
static void
test_names_refused(void)
{
    static char ship[300];
    evr_etest_t *t = s_world(ship, sizeof ship);
    const char *job = evr_etest_job(3);
    evr_exec_fake_ws_write(t->fake, job, "out/r\xe9sum\xe9.txt", "L", 1);
    evr_exec_fake_ws_write(t->fake, job, "out/\x1b[31m/red", "E", 1);
    CHECK(evr_etest_submit(t, job, EVR_ETEST_HEAD "steps:\n  - name: a\n"
                           "    run: echo a > out/a.txt\n    artifacts: [out]\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 3), *paths = s_artifact_events(t, 3), *q = s_queued(ship);
    CHECK_STR(paths, "out/a.txt\n");
    CHECK_STR(q, paths);
    CHECK(evr_etest_in_order(ev, "step.finished a 1 failed exit=0 reason=its command exited 0, "
                             "but artifact out: file out/", ": not recorded, not kept (rename "
                             "it)", NULL));
    CHECK(strstr(ev, "out/r\\xe9sum\\xe9.txt: path is not UTF-8")
          || strstr(ev, "out/\\x1b[31m/red: path holds a control character"));
    CHECK(!strchr(ev, '\x1b') && !strstr(ev, "\xe9"));
    size_t len;
    bool exact;
    char *err = evr_etest_output(t, job, "a", 1, "stderr", &len, &exact);
    CHECK_CONTAINS(err, "evrun: artifact out: file out/");
    CHECK(!strchr(err, '\x1b') && !strstr(err, "\xe9"));
    char *dir = evr_asprintf("%s/%s/a/out", t->opts.artifacts_dir, job);
    evr_err_t e2;
    char *names = evr_exec_process_ws_names(dir, NULL, &e2);
    CHECK(names && strcmp(names, "a.txt\n") == 0);   /* the refused ones gone, an emptied
                                                       directory refused too */
    free(names);
    free(dir);
    free(err);
    free(q);
    free(paths);
    free(ev);
    CHECK(evr_etest_clean(t, 3));
    evr_etest_destroy(&t);
}

/*  An artifact's failure quotes what the step's code chose (a file's
    name in a system error, as the executor's get says it): escaped in
    the reason and on stderr, no terminal escape, no line of its own. */
static void
test_failure_escaped(void)
{
    static char ship[300];
    evr_etest_t *t = s_world(ship, sizeof ship);
    evr_etest_fault(t, 4, "a", 1, (evr_fake_fault_t) { .op = EVR_FAKE_GET, .kind = EVR_FAKE_FAIL,
                                                       .msg = "reading out/\x1b[2J\nevrun: "
                                                              "forged: Permission denied" });
    CHECK(evr_etest_submit(t, evr_etest_job(4), EVR_ETEST_HEAD "steps:\n  - name: a\n"
                           "    run: echo a > out/a.txt\n    artifacts: [out]\n") == EVR_OK);
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 4);
    CHECK_CONTAINS(ev, "reason=its command exited 0, but artifact out: reading out/\\x1b[2J"
                       "\\nevrun: forged: Permission denied");
    CHECK(!strchr(ev, '\x1b'));
    size_t len;
    bool exact;
    char *err = evr_etest_output(t, evr_etest_job(4), "a", 1, "stderr", &len, &exact);
    CHECK(!strchr(err, '\x1b') && !strstr(err, "\nevrun: forged"));
    free(err);
    free(ev);
    CHECK(evr_etest_clean(t, 4));
    evr_etest_destroy(&t);
}

int
main(void)
{
    EVR_TEST_RUN(test_queued_off_loop);
    EVR_TEST_RUN(test_queue_fails);
    EVR_TEST_RUN(test_names_refused);
    EVR_TEST_RUN(test_failure_escaped);
    EVR_TEST_END();
}
