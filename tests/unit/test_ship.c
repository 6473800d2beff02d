/*  test_ship.c: the shipper's looks at its queue directory
    (runner/evr_ship.h).

    A long queue (thousands of artifact files of a job, or a backlog
    after the broker was away) ships with a bounded number of directory
    reads, not one or two a file: this binary's opendir counts the opens
    of the queue directory, and the broker's side is played by hand (each
    file's first chunk answered done).  Every entry ships exactly once and
    in the order of its name, also those queued while the shipper is
    under way (they ship after the names it holds, at its next look).
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_log.h"
#include "evr_ship.h"
#include "evr_test.h"

#define S_N 3000        /* entries queued before the shipper starts */
#define S_MORE 700      /* queued while it ships */
#define S_JOB "01ARZ3NDEKTSV4RRFFQ69G5FAV"
#define S_SHA "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static char s_dir[64], s_queue[128], s_art[128];
static unsigned s_opens;    /* of s_queue */

/*  opendir, as libc's, counting the opens of the queue directory. */
DIR *
opendir(const char *name)
{
    static DIR *(*real)(const char *);
    if (!real)
        real = (DIR * (*)(const char *)) dlsym(RTLD_NEXT, "opendir");
    if (s_queue[0] && !strcmp(name, s_queue))
        s_opens++;
    return real(name);
}

/*  Queues the artifact files fNNNNN.txt, from to from + n - 1 (made,
    3 bytes each), as the artifact unpack's child does: each entry
    written, then all renamed into place (as evr_ship_sync, but not
    synced: thousands of fdatasyncs took half a minute, and this test
    needs no crash of the machine); their entries' paths into entries
    (when not NULL; caller frees). */
static void
s_queue_files(unsigned from, unsigned n, char **entries)
{
    char **e = evr_calloc(n, sizeof *e);
    for (unsigned i = 0; i < n; i++) {
        char path[32], file[300];
        snprintf(path, sizeof path, "f%05u.txt", from + i);
        snprintf(file, sizeof file, "%s/%s/s1/%s", s_art, S_JOB, path);
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        CHECK(fd >= 0 && write(fd, "abc", 3) == 3);
        if (fd >= 0)
            close(fd);
        evr_err_t err;
        CHECK(evr_ship_enqueue_unsynced(s_queue, file, S_JOB, "s1", path, 3, S_SHA, &e[i],
                                        &err) == EVR_OK);
    }
    for (unsigned i = 0; i < n; i++) {
        char tmp[400];
        snprintf(tmp, sizeof tmp, "%s.tmp", e[i]);
        CHECK(rename(tmp, e[i]) == 0);
    }
    for (unsigned i = 0; i < n; i++)
        if (entries)
            entries[i] = e[i];
        else
            free(e[i]);
    free(e);
}

/*  Ships the next file (its first chunk answered done at once); its
    number, or -1 when there is none. */
static int
s_ship_one(evr_ship_t *sh, uint64_t *now)
{
    evr_msg_t m = { 0 };
    *now += 1000000000ull;      /* past the next look when idle */
    if (!evr_ship_next(sh, *now, &m))
        return -1;
    int i = -1;
    CHECK(m.type == EVR_MSG_ARTIFACT_CHUNK && m.offset == 0 && m.data.len == 0);
    CHECK(m.path && sscanf(m.path, "f%d.txt", &i) == 1);
    evr_msg_t ack = { .type = EVR_MSG_ARTIFACT_ACK, .job = m.job, .step = m.step,
                      .path = m.path, .sha256 = m.sha256, .offset = 3, .done = true };
    evr_ship_on_ack(sh, &ack);
    evr_msg_clear(&m);
    return i;
}

static void
test_long_queue(void)
{
    char jd[256];
    snprintf(jd, sizeof jd, "%s/%s/s1", s_art, S_JOB);
    evr_err_t err;
    CHECK(evr_mkdirs(jd, &err) == EVR_OK);
    s_queue_files(0, S_N, NULL);
    s_opens = 0;
    evr_ship_t *sh = evr_ship_new(s_queue, s_art);
    CHECK(evr_ship_pending(sh, false) == S_N);
    static unsigned shipped[S_N + S_MORE];
    unsigned n = 0, more = 0, dup = 0;
    uint64_t now = 0;
    for (int i; (i = s_ship_one(sh, &now)) >= 0;) {
        if (i < S_N + S_MORE && n < S_N + S_MORE)
            shipped[n] = (unsigned) i;
        n++;
        /* a step's files queued while the shipper is under way: some
           after the first thousand, the rest near the end */
        if (n == 1000) {
            s_queue_files(S_N, S_MORE / 2, NULL);
            more = S_MORE / 2;
        }
        if (n == S_N - 10)
            s_queue_files(S_N + more, S_MORE - more, NULL);
        CHECK(evr_ship_pending(sh, false) > 0 || n == S_N + S_MORE);
    }
    CHECK(n == S_N + S_MORE);
    for (unsigned k = 0; k < n && k < S_N + S_MORE; k++)
        if (shipped[k] != k)
            dup++;
    CHECK(dup == 0);    /* each once, in the order queued */
    CHECK(evr_ship_pending(sh, false) == 0);
    fprintf(stderr, "%u entries shipped, %u opens of the queue directory\n", n, s_opens);
    CHECK(s_opens < 20);
    evr_ship_destroy(&sh);
}

/*  A queue of more than the names the shipper holds from one read of it
    (4096): it reads the queue again once it has taken them all, the
    files still in order; evr_ship_pending without look counts
    as of the last read, with look reads it again. */
static void
test_over_the_hold(void)
{
    enum { N = 5000, FROM = 20000 };
    s_queue_files(FROM, N, NULL);
    s_opens = 0;
    evr_ship_t *sh = evr_ship_new(s_queue, s_art);
    CHECK(evr_ship_pending(sh, false) == N);
    uint64_t now = 0;
    unsigned n = 0, wrong = 0;
    for (int i; (i = s_ship_one(sh, &now)) >= 0; n++) {
        if (i != (int) (FROM + n))
            wrong++;
        if (n == 99) {
            s_queue_files(FROM + N, 1, NULL);   /* the newest: shipped last */
            CHECK(evr_ship_pending(sh, false) == N - 100);
            unsigned before = s_opens;
            CHECK(evr_ship_pending(sh, true) == N - 100 + 1);
            CHECK(s_opens == before + 1);
        }
    }
    CHECK(n == N + 1 && wrong == 0);
    fprintf(stderr, "%u entries shipped, %u opens of the queue directory\n", n, s_opens);
    CHECK(s_opens < 10);
    evr_ship_destroy(&sh);
}

/*  An entry that shows up late with a name older than those the shipper
    holds (a slow unpack's, queued before the ones taken) still ships,
    once, at the shipper's next look; one removed meanwhile by its queuer
    (evr_ship_unqueue: a failed batch) is passed over without a word. */
static void
test_late_and_gone(void)
{
    char *entries[4];
    s_queue_files(10000, 4, entries);
    evr_ship_t *sh = evr_ship_new(s_queue, s_art);
    CHECK(evr_ship_pending(sh, false) == 4);
    uint64_t now = 0;
    CHECK(s_ship_one(sh, &now) == 10000);
    /* f10000 queued again, its entry named older than all (as if
       queued at the epoch) */
    char file[300], *late = NULL, old[400], oldtmp[420], tmp[420];
    snprintf(file, sizeof file, "%s/%s/s1/f10000.txt", s_art, S_JOB);
    evr_err_t err;
    CHECK(evr_ship_enqueue_unsynced(s_queue, file, S_JOB, "s1", "f10000.txt", 3, S_SHA, &late,
                                    &err) == EVR_OK);
    snprintf(old, sizeof old, "%s/00000000000000000001-000000-1.ship", s_queue);
    snprintf(oldtmp, sizeof oldtmp, "%s.tmp", old);
    snprintf(tmp, sizeof tmp, "%s.tmp", late);
    CHECK(rename(tmp, oldtmp) == 0);
    char *olds[1] = { old };
    CHECK(evr_ship_sync(s_queue, olds, 1, &err) == EVR_OK);
    /* the next one goes away before it is taken */
    evr_ship_unqueue(entries[1]);
    int got[8], n = 0;
    for (int i; n < 8 && (i = s_ship_one(sh, &now)) >= 0;)
        got[n++] = i;
    /* 10001 was removed; 10002, 10003, then the late one (f10000 again) */
    CHECK(n == 3 && got[0] == 10002 && got[1] == 10003 && got[2] == 10000);
    CHECK(evr_ship_pending(sh, false) == 0);
    CHECK(access(old, F_OK) != 0);
    for (unsigned i = 0; i < 4; i++)
        free(entries[i]);
    free(late);
    evr_ship_destroy(&sh);
}

/*  A directory named as an entry (none of the runner's: it cannot be
    removed as one) is passed over: the files around it ship, then the
    shipper says there is nothing, at once (it looked at the directory
    again and again, in one call, for ever). */
static void
test_stuck_entry(void)
{
    char dir[200];
    snprintf(dir, sizeof dir, "%s/00000000000000000000-000000-1.ship", s_queue);
    CHECK(mkdir(dir, 0700) == 0);
    s_queue_files(20000, 2, NULL);
    evr_ship_t *sh = evr_ship_new(s_queue, s_art);
    CHECK(evr_ship_pending(sh, false) == 2);
    uint64_t now = 0;
    CHECK(s_ship_one(sh, &now) == 20000);
    CHECK(s_ship_one(sh, &now) == 20001);
    unsigned before = s_opens;
    CHECK(s_ship_one(sh, &now) == -1);
    CHECK(s_opens - before <= 1);
    CHECK(evr_ship_pending(sh, true) == 0);
    evr_ship_destroy(&sh);
    CHECK(rmdir(dir) == 0);
}

/*  A probe the broker leaves unanswered (it is reading a large copy's
    sha256) is asked again after 1 s; a piece of data unanswered waits
    10 s, then the runner probes where the bytes end. */
static void
test_unanswered(void)
{
    s_queue_files(30000, 1, NULL);
    evr_ship_t *sh = evr_ship_new(s_queue, s_art);
    uint64_t now = 5000000000ull;
    evr_msg_t m = { 0 };
    CHECK(evr_ship_next(sh, now, &m) && m.data.len == 0 && m.offset == 0);
    evr_msg_clear(&m);
    CHECK(!evr_ship_next(sh, now + 999000000ull, &m));
    CHECK(evr_ship_next(sh, now + 1000000000ull, &m) && m.data.len == 0 && m.offset == 0);
    now += 1000000000ull;
    /* the broker holds nothing of it: the bytes go */
    evr_msg_t ack = { .type = EVR_MSG_ARTIFACT_ACK, .job = m.job, .step = m.step,
                      .path = m.path, .sha256 = m.sha256, .offset = 0 };
    evr_ship_on_ack(sh, &ack);
    evr_msg_clear(&m);
    CHECK(evr_ship_next(sh, now, &m) && m.data.len == 3 && m.offset == 0);
    evr_msg_clear(&m);
    CHECK(!evr_ship_next(sh, now + 9999000000ull, &m));
    CHECK(evr_ship_next(sh, now + 10000000000ull, &m) && m.data.len == 0 && m.offset == 0);
    ack = (evr_msg_t) { .type = EVR_MSG_ARTIFACT_ACK, .job = m.job, .step = m.step,
                        .path = m.path, .sha256 = m.sha256, .offset = 3, .done = true };
    evr_ship_on_ack(sh, &ack);
    evr_msg_clear(&m);
    CHECK(evr_ship_pending(sh, true) == 0);
    evr_ship_destroy(&sh);
}

int
main(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/evr-test-ship-XXXXXX");
    if (!mkdtemp(s_dir))
        return 2;
    snprintf(s_queue, sizeof s_queue, "%s/ship", s_dir);
    snprintf(s_art, sizeof s_art, "%s/art", s_dir);
    evr_log_set_level(EVR_LOG_WARN);    /* not a line a file shipped */
    EVR_TEST_RUN(test_long_queue);
    EVR_TEST_RUN(test_over_the_hold);
    EVR_TEST_RUN(test_late_and_gone);
    EVR_TEST_RUN(test_stuck_entry);
    EVR_TEST_RUN(test_unanswered);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system(cmd) != 0)
        return 2;
    EVR_TEST_END();
}
