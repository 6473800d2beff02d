/*  test_store: the LMDB event log on a real LMDB in a temporary directory:
    group commit, readers, refusal of illegal batches, map growth, readers
    across read transactions, a write failure that leaves the log as it
    was, retention, verify (clean and with a tampered projection), and a
    read-only reader in another process beside a live writer.  Opening it
    (formats, kinds, damaged files) is test_store_open's. */
#include <lmdb.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_codec.h"
#include "evr_rebuild.h"
#include "evr_stest.h"
#include "evr_store.h"
#include "evr_synth.h"
#include "evr_test.h"

static char *
s_job_id(int i)
{
    /* valid, distinct, increasing ULIDs */
    char *id = evr_asprintf("01JQ7ZK3M8X2V9T4B6N%07d", i);
    return id;
}

/*  Appends one synthetic job; returns the number of events. */
static size_t
s_append_job(evr_store_t *st, const char *id, uint32_t steps, uint32_t bytes, uint32_t chunk)
{
    size_t n;
    evr_event_t **evs = evr_synth_job(id, steps, bytes, chunk, &n);
    evr_err_t err;
    evr_rc_t rc = evr_store_append(st, evs, n, &err);
    if (rc)
        fprintf(stderr, "  append %s: %s\n", id, err.msg);
    CHECK(rc == EVR_OK);
    evr_synth_free(evs, n);
    return n;
}

static void
s_print(const char *line, void *arg)
{
    int *count = arg;
    (*count)++;
    fprintf(stderr, "  verify: %s\n", line);
}

typedef struct {
    char text[2048];   /* the lines said, joined */
} s_said_t;

static void
s_keep(const char *line, void *arg)
{
    s_said_t *s = arg;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof s->text - n, "%s\n", line);
}

static int
s_verify_clean(evr_store_t *st)
{
    evr_rebuild_verify_t v;
    evr_err_t err;
    int lines = 0;
    CHECK(evr_rebuild_verify(st, s_print, &lines, &v, &err) == EVR_OK);
    CHECK(v.differences == 0 && lines == 0);
    return (int) v.differences;
}

typedef struct {
    uint64_t last_seq;
    uint32_t last_jseq;
    int count;
    bool ordered;
} s_walk_t;

static int
s_walk(const evr_event_t *ev, void *arg)
{
    s_walk_t *w = arg;
    if (w->count && (ev->seq <= w->last_seq || ev->jseq <= w->last_jseq))
        w->ordered = false;
    w->last_seq = ev->seq;
    w->last_jseq = ev->jseq;
    w->count++;
    return 0;
}

typedef struct {
    char buf[8192];
    size_t len;
    int chunks;
} s_collect_t;

static int
s_collect(const char *step, uint32_t attempt, const char *stream, const uint8_t *bytes,
          size_t len, void *arg)
{
    (void) step;
    (void) attempt;
    s_collect_t *c = arg;
    if (strcmp(stream, "stdout") == 0 && c->len + len <= sizeof c->buf) {
        memcpy(c->buf + c->len, bytes, len);
        c->len += len;
    }
    c->chunks++;
    return 0;
}

static int
s_count_job(const evr_job_t *job, void *arg)
{
    (void) job;
    (*(int *) arg)++;
    return 0;
}

/*  A data.mdb cut short (a copy that stopped early) is refused at open
    with what is wrong, for a reader and a writer, instead of a SIGBUS
    at the first read of a page past its end; an empty one is no store
    to a reader. */
static void
test_cut_short(void)
{
    char *dir = evr_stest_dir("cut");
    char *file = evr_asprintf("%s/data.mdb", dir);
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, 0, &st, &err) == EVR_OK);
    for (int i = 0; i < 40; i++) {
        char *id = s_job_id(i);
        s_append_job(st, id, 3, 20000, 4096);
        free(id);
    }
    evr_store_destroy(&st);
    long psize = sysconf(_SC_PAGESIZE);
    CHECK(truncate(file, 3 * psize) == 0);
    for (int ro = 0; ro < 2; ro++) {
        CHECK(evr_store_open(dir, ro ? EVR_STORE_RDONLY : 0, &st, &err) == EVR_ERR_STORE);
        CHECK_CONTAINS(err.msg, "data.mdb is");
        CHECK_CONTAINS(err.msg, "the file is cut short");
        evr_store_destroy(&st);
    }
    CHECK(truncate(file, 100) == 0);
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "data.mdb is 100 bytes, less than the two meta pages");
    CHECK(truncate(file, 0) == 0);
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "data.mdb is empty (0 bytes)");
    evr_stest_rm_rf(dir);
    free(file);
    free(dir);
}

static void
test_append_and_read(void)
{
    char *dir = evr_stest_dir("append");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    char *a = s_job_id(1), *b = s_job_id(2);
    size_t na = s_append_job(st, a, 3, 1000, 256);
    /* b interleaved with a runner event in one batch */
    size_t nb;
    evr_event_t **evs = evr_synth_job(b, 2, 10, 10, &nb);
    evr_event_t *runner = evr_event_new(EVR_EV_RUNNER_STARTED);
    runner->data.runner = evr_strdup("runner-a");
    runner->data.version = evr_strdup("0.1.0");
    evr_event_t *batch[64];
    batch[0] = runner;
    for (size_t i = 0; i < nb; i++)
        batch[i + 1] = evs[i];
    CHECK(evr_store_append(st, batch, nb + 1, &err) == EVR_OK);
    CHECK(runner->seq == na + 1 && runner->jseq == 0);
    CHECK(evs[0]->seq == na + 2 && evs[0]->jseq == 1);
    CHECK(evs[nb - 1]->jseq == nb);
    evr_event_destroy(&runner);
    evr_synth_free(evs, nb);

    uint64_t last;
    CHECK(evr_store_last_seq(st, &last, &err) == EVR_OK && last == na + nb + 1);
    evr_job_t job = { 0 };
    CHECK(evr_store_get_job(st, a, &job, &err) == EVR_OK);
    CHECK(job.status == EVR_JOB_SUCCEEDED && job.steps.n == 3 && job.last_jseq == na);
    CHECK_STR(job.pipeline, "synthetic");
    evr_rec_free(&evr_job_type, &job);
    bool has = false;   /* the broker's check of a submit's job id */
    CHECK(evr_store_has_job(st, a, &has, &err) == EVR_OK && has);
    CHECK(evr_store_has_job(st, "01ARZ3NDEKTSV4RRFFQ69G5FAV", &has, &err) == EVR_OK && !has);
    CHECK(evr_store_has_job(st, "short", &has, &err) == EVR_OK && !has);

    s_walk_t w = { 0, 0, 0, true };
    CHECK(evr_store_job_events(st, b, 1, s_walk, &w, &err) == EVR_OK);
    CHECK(w.count == (int) nb && w.ordered);
    w = (s_walk_t) { 0, 0, 0, true };
    CHECK(evr_store_job_events(st, b, 3, s_walk, &w, &err) == EVR_OK);
    CHECK(w.count == (int) nb - 2);
    w = (s_walk_t) { 0, 0, 0, true };
    CHECK(evr_store_scan(st, 5, 9, s_walk, &w, &err) == EVR_OK);
    CHECK(w.count == 5 && w.last_seq == 9);
    w = (s_walk_t) { 0, 0, 0, true };
    CHECK(evr_store_scan(st, 0, 0, s_walk, &w, &err) == EVR_OK);
    CHECK(w.count == (int) (na + nb + 1) && w.last_seq == na + nb + 1);
    CHECK(evr_store_job_events(st, "01JQ7ZK3M8X2V9T4B6N9999999", 1, s_walk, &w, &err)
          == EVR_ERR_NOTFOUND);

    /* output reassembled: stdout chunks of step-1 in order */
    s_collect_t c = { .len = 0 };
    CHECK(evr_store_output(st, a, "step-1", s_collect, &c, &err) == EVR_OK);
    CHECK(c.chunks == 4);
    size_t n;
    evr_event_t **ref = evr_synth_job(a, 3, 1000, 256, &n);
    char want[8192];
    size_t wl = 0;
    for (size_t i = 0; i < n; i++)
        if (evr_event_kind(ref[i]) == EVR_EV_STEP_OUTPUT && !strcmp(ref[i]->data.step, "step-1")
            && !strcmp(ref[i]->data.stream, "stdout")) {
            memcpy(want + wl, ref[i]->data.bytes.data, ref[i]->data.bytes.len);
            wl += ref[i]->data.bytes.len;
        }
    evr_synth_free(ref, n);
    CHECK(c.len == wl && memcmp(c.buf, want, wl) == 0);

    int jobs = 0;
    CHECK(evr_store_jobs(st, EVR_JOB_NONE, s_count_job, &jobs, &err) == EVR_OK && jobs == 2);
    jobs = 0;
    CHECK(evr_store_jobs(st, EVR_JOB_RUNNING, s_count_job, &jobs, &err) == EVR_OK && jobs == 0);
    s_verify_clean(st);

    evr_rebuild_t *rb;
    CHECK(evr_rebuild_new(st, na, NULL, NULL, &rb, &err) == EVR_OK);   /* as of the end of a */
    CHECK(evr_rebuild_count(rb) == 1);
    CHECK(evr_rebuild_job(rb, a) && evr_rebuild_job(rb, a)->status == EVR_JOB_SUCCEEDED);
    evr_rebuild_destroy(&rb);
    CHECK(evr_rebuild_new(st, 4, NULL, NULL, &rb, &err) == EVR_OK);
    CHECK(evr_rebuild_job(rb, a)->status == EVR_JOB_RUNNING);
    CHECK(evr_job_find_step(evr_rebuild_job(rb, a), "step-1")->status == EVR_STEP_STARTING);
    evr_rebuild_destroy(&rb);

    free(a);
    free(b);
    evr_store_destroy(&st);
    free(dir);
}

static void
test_illegal_batch(void)
{
    char *dir = evr_stest_dir("illegal");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    char *a = s_job_id(3);
    size_t n = s_append_job(st, a, 1, 10, 10);
    /* a second job in the same batch as an event after a's job.finished */
    char *b = s_job_id(4);
    size_t nb;
    evr_event_t **evs = evr_synth_job(b, 1, 10, 10, &nb);
    evr_event_t *late = evr_event_new(EVR_EV_JOB_CANCEL_REQUESTED);
    late->job = evr_strdup(a);
    evr_event_t *batch[32];
    for (size_t i = 0; i < nb; i++)
        batch[i] = evs[i];
    batch[nb] = late;
    CHECK(evr_store_append(st, batch, nb + 1, &err) == EVR_ERR_STATE);
    CHECK_CONTAINS(err.msg, "job.cancel_requested");
    CHECK_CONTAINS(err.msg, "the job has finished");
    CHECK(evs[0]->seq == 0);   /* nothing was assigned */
    uint64_t last;
    CHECK(evr_store_last_seq(st, &last, &err) == EVR_OK && last == n);
    evr_job_t job = { 0 };
    CHECK(evr_store_get_job(st, b, &job, &err) == EVR_ERR_NOTFOUND);
    /* an event of a job never accepted */
    evr_event_t *orphan = evr_event_new(EVR_EV_JOB_STARTED);
    orphan->job = s_job_id(5);
    CHECK(evr_store_append(st, &orphan, 1, &err) == EVR_ERR_STATE);
    CHECK(evr_store_get_job(st, orphan->job, &job, &err) == EVR_ERR_NOTFOUND);
    evr_event_destroy(&orphan);
    s_verify_clean(st);
    evr_event_destroy(&late);
    evr_synth_free(evs, nb);
    free(a);
    free(b);
    evr_store_destroy(&st);
    free(dir);
}

static void
test_map_growth(void)
{
    /* 80 jobs x 1 MiB of output passes the initial 64 MiB map */
    char *dir = evr_stest_dir("grow");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    size_t initial = evr_store_mapsize(st), total = 0;
    for (int i = 0; i < 80; i++) {
        char *id = s_job_id(100 + i);
        total += s_append_job(st, id, 4, 256 * 1024, 64 * 1024);
        free(id);
    }
    CHECK(evr_store_mapsize(st) > initial);
    uint64_t last;
    CHECK(evr_store_last_seq(st, &last, &err) == EVR_OK && last == total);
    s_verify_clean(st);
    evr_store_destroy(&st);
    /* reopening keeps the bigger map and the data */
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
    CHECK(evr_store_last_seq(st, &last, &err) == EVR_OK && last == total);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);
}

/*  Appends one synthetic job in batches of at most 1000 events (a job
    may have more than a batch holds); returns the number of events. */
static size_t
s_append_batched(evr_store_t *st, const char *id, uint32_t steps, uint32_t bytes,
                 uint32_t chunk)
{
    size_t n;
    evr_event_t **evs = evr_synth_job(id, steps, bytes, chunk, &n);
    evr_err_t err;
    for (size_t i = 0; i < n; i += 1000) {
        size_t m = n - i < 1000 ? n - i : 1000;
        evr_rc_t rc = evr_store_append(st, evs + i, m, &err);
        if (rc)
            fprintf(stderr, "  append %s: %s\n", id, err.msg);
        CHECK(rc == EVR_OK);
    }
    evr_synth_free(evs, n);
    return n;
}

typedef struct {
    int count, stop_at;
    uint64_t first_seq;
} s_upto_t;

static int
s_upto(const evr_event_t *ev, void *arg)
{
    s_upto_t *u = arg;
    if (u->count++ == 0)
        u->first_seq = ev->seq;
    return u->stop_at && u->count == u->stop_at;
}

static int
s_upto_job(const evr_job_t *job, void *arg)
{
    (void) job;
    s_upto_t *u = arg;
    u->count++;
    return u->stop_at && u->count == u->stop_at;
}

/*  The bytes LMDB uses in dir's data.mdb: (last page + 1) * page size. */
static off_t
s_used(const char *dir)
{
    MDB_env *env;
    MDB_envinfo info;
    MDB_stat ms;
    off_t used = -1;
    if (mdb_env_create(&env))
        return -1;
    mdb_env_set_maxdbs(env, 8);
    if (!mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600) && !mdb_env_info(env, &info)
        && !mdb_env_stat(env, &ms))
        used = (off_t) ((info.me_last_pgno + 1) * ms.ms_psize);
    mdb_env_close(env);
    return used;
}

/*  A store that syncs keeps zeros written ahead of LMDB's last page, so
    that a commit's flush writes no file size or allocation: after a
    small append data.mdb is 256 KiB past its used pages, and reopened it
    reads as written; a store that does not sync is left as LMDB makes it
    (its pages only). */
static void
test_file_ahead(void)
{
    char *dir = evr_stest_dir("ahead");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_SYNC, &st, &err) == EVR_OK);
    char *id = s_job_id(7);
    size_t n = s_append_job(st, id, 1, 100, 100);
    evr_store_destroy(&st);
    char *path = evr_asprintf("%s/data.mdb", dir);
    struct stat fs;
    CHECK(stat(path, &fs) == 0 && s_used(dir) > 0
          && fs.st_size >= (off_t) (256u << 10) + s_used(dir));
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
    uint64_t last;
    CHECK(evr_store_last_seq(st, &last, &err) == EVR_OK && last == n);
    s_verify_clean(st);
    evr_store_destroy(&st);
    CHECK(evr_store_open(dir, EVR_STORE_SYNC, &st, &err) == EVR_OK);   /* and writes on */
    char *id2 = s_job_id(8);
    n += s_append_job(st, id2, 1, 100, 100);
    CHECK(evr_store_last_seq(st, &last, &err) == EVR_OK && last == n);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    char *nodir = evr_stest_dir("ahead-nosync");
    CHECK(evr_store_open(nodir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    s_append_job(st, id, 1, 100, 100);
    evr_store_destroy(&st);
    free(path);
    path = evr_asprintf("%s/data.mdb", nodir);
    CHECK(stat(path, &fs) == 0 && fs.st_size == s_used(nodir));
    evr_stest_rm_rf(nodir);
    free(nodir);
    free(path);
    free(id2);
    free(id);
    free(dir);
}

/*  Bytes of data.mdb in unwritten extents (allocated, never written), by
    FIEMAP; -1 when the file system cannot tell. */
static long long
s_unwritten(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t size = sizeof(struct fiemap) + 64 * sizeof(struct fiemap_extent);
    struct fiemap *fm = calloc(1, size);
    fm->fm_length = FIEMAP_MAX_OFFSET;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = 64;
    long long n = -1;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) == 0) {
        n = 0;
        for (unsigned i = 0; i < fm->fm_mapped_extents; i++)
            if (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN)
                n += (long long) fm->fm_extents[i].fe_length;
    }
    free(fm);
    close(fd);
    return n;
}

/*  After a commit of bulk output (1 MiB or more) the room ahead is
    allocated, not written with zeros (which would write each page of
    bulk output twice): data.mdb keeps room past its used pages, in
    unwritten extents where the file system has them (ext4, xfs), and
    reads back whole, also after more commits into that room. */
static void
test_file_ahead_bulk(void)
{
    char *dir = evr_stest_dir("ahead-bulk");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_SYNC, &st, &err) == EVR_OK);
    char *id = s_job_id(9), *id2 = s_job_id(10), *id3 = s_job_id(11);
    size_t n = s_append_job(st, id, 1, 100, 100);
    n += s_append_job(st, id2, 1, 4u << 20, 65536);   /* one commit of 4 MiB */
    char *path = evr_asprintf("%s/data.mdb", dir);
    struct stat fs;
    CHECK(stat(path, &fs) == 0 && fs.st_size >= (off_t) (512u << 10) + s_used(dir));
    long long unwritten = s_unwritten(path);
    if (unwritten < 0)
        fprintf(stderr, "  (no FIEMAP here: unwritten extents not checked)\n");
    else
        CHECK(unwritten >= (512 << 10));
    n += s_append_job(st, id3, 1, 100, 100);          /* into the allocated room */
    evr_store_destroy(&st);
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
    uint64_t last;
    CHECK(evr_store_last_seq(st, &last, &err) == EVR_OK && last == n);
    CHECK(s_verify_clean(st) == 0);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(path);
    free(id3);
    free(id2);
    free(id);
    free(dir);
}

/*  Readers go on past the 4096 entries of one read transaction: every
    event, job and index entry once, in order; an early stop right after
    a transaction's end stops there. */
static void
test_chunked_reads(void)
{
    char *dir = evr_stest_dir("chunks");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    char *a = s_job_id(1), *b = s_job_id(2);
    size_t na = s_append_batched(st, a, 2, 2100, 1);   /* over 4200 events */
    size_t nb = s_append_batched(st, b, 1, 10, 1);
    size_t total = na + nb;
    CHECK(na > 4200);
    s_walk_t w = { .ordered = true };
    CHECK(evr_store_scan(st, 0, 0, s_walk, &w, &err) == EVR_OK);
    CHECK((size_t) w.count == total);
    s_upto_t u = { 0 };
    CHECK(evr_store_scan(st, 10, 4200, s_upto, &u, &err) == EVR_OK);
    CHECK(u.count == 4191 && u.first_seq == 10);
    u = (s_upto_t) { .stop_at = 4097 };
    CHECK(evr_store_scan(st, 0, 0, s_upto, &u, &err) == EVR_OK);
    CHECK(u.count == 4097);
    u = (s_upto_t) { .stop_at = 4096 };
    CHECK(evr_store_scan(st, 0, 0, s_upto, &u, &err) == EVR_OK);
    CHECK(u.count == 4096);
    /* by job: only that job's, across transactions */
    w = (s_walk_t) { .ordered = true };
    CHECK(evr_store_job_events(st, a, 1, s_walk, &w, &err) == EVR_OK);
    CHECK((size_t) w.count == na && w.ordered && w.last_jseq == na);
    w = (s_walk_t) { .ordered = true };
    CHECK(evr_store_job_events(st, a, 4100, s_walk, &w, &err) == EVR_OK);
    CHECK((size_t) w.count == na - 4099 && w.ordered);
    w = (s_walk_t) { .ordered = true };
    CHECK(evr_store_job_events(st, b, 1, s_walk, &w, &err) == EVR_OK);
    CHECK((size_t) w.count == nb && w.ordered);
    u = (s_upto_t) { .stop_at = 4097 };
    CHECK(evr_store_job_events(st, a, 1, s_upto, &u, &err) == EVR_OK);
    CHECK(u.count == 4097);
    /* jobs: more than one transaction's worth */
    size_t batch = 0;
    evr_event_t **evs = NULL;
    for (int i = 0; i < 4200; i++) {
        char *id = s_job_id(1000 + i);
        size_t n;
        evr_event_t **one = evr_synth_job(id, 1, 0, 1, &n);
        evs = evr_realloc(evs, (batch + n) * sizeof *evs);
        memcpy(evs + batch, one, n * sizeof *evs);
        free(one);
        batch += n;
        if (batch > 3000 || i == 4199) {
            CHECK(evr_store_append(st, evs, batch, &err) == EVR_OK);
            evr_synth_free(evs, batch);
            evs = NULL;
            batch = 0;
        }
        free(id);
    }
    u = (s_upto_t) { 0 };
    CHECK(evr_store_jobs(st, EVR_JOB_NONE, s_upto_job, &u, &err) == EVR_OK);
    CHECK(u.count == 4202);
    u = (s_upto_t) { 0 };
    CHECK(evr_store_jobs(st, EVR_JOB_SUCCEEDED, s_upto_job, &u, &err) == EVR_OK);
    CHECK(u.count == 4202);
    u = (s_upto_t) { .stop_at = 4097 };
    CHECK(evr_store_jobs(st, EVR_JOB_NONE, s_upto_job, &u, &err) == EVR_OK);
    CHECK(u.count == 4097);
    u = (s_upto_t) { 0 };
    CHECK(evr_store_jobs(st, EVR_JOB_RUNNING, s_upto_job, &u, &err) == EVR_OK);
    CHECK(u.count == 0);
    free(a);
    free(b);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);
}

static int
s_keep_reason(const evr_event_t *ev, void *arg)
{
    if (ev->data.reason)
        snprintf(arg, 2048, "%s", ev->data.reason);
    return 0;
}

/*  A reason cut mid-character, with a stray byte, and over its limit is
    fitted on append, so the log still reads back (and can be sent). */
static void
test_append_fits_strings(void)
{
    char *dir = evr_stest_dir("fit");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    char *id = s_job_id(777);
    size_t n;
    evr_event_t **evs = evr_synth_job(id, 1, 10, 10, &n);
    evr_event_t *fin = evs[n - 1];
    CHECK(evr_event_kind(fin) == EVR_EV_JOB_FINISHED);
    free(fin->data.reason);
    char *r = fin->data.reason = evr_malloc(2001);
    for (int i = 0; i < 1000; i++)
        memcpy(r + 2 * i, "\xc3\xa9", 2);   /* é */
    r[10] = (char) 0xff;                      /* a byte no character starts with */
    r[1999] = '\0';                           /* the last é cut in two */
    CHECK(evr_store_append(st, evs, n, &err) == EVR_OK);
    uint64_t last = evs[n - 1]->seq;
    evr_synth_free(evs, n);
    char got[2048] = "";
    CHECK(evr_store_scan(st, 1, last, s_keep_reason, got, &err) == EVR_OK);
    CHECK(strlen(got) <= 1024 && strlen(got) >= 1020);
    CHECK(evr_utf8_valid(got, strlen(got)));
    CHECK(got[10] == '?');
    evr_store_destroy(&st);
    free(id);
    free(dir);
}

/*  A full disk (a 1 MiB tmpfs; needs root to mount, skipped otherwise):
    LMDB reports a short write as EIO, the message says what it is and
    names the file. */
static void
test_disk_full(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "  skipped: mounting a small tmpfs needs root\n");
        return;
    }
    char *dir = evr_stest_dir("full");
    CHECK(mkdir(dir, 0755) == 0);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0) {
        fprintf(stderr, "  skipped: mount tmpfs: %s\n", strerror(errno));
        free(dir);
        return;
    }
    char *sub = evr_asprintf("%s/store", dir);
    evr_store_t *st;
    evr_err_t err;
    evr_rc_t rc = evr_store_open(sub, EVR_STORE_SYNC, &st, &err);
    CHECK(rc == EVR_OK);
    for (int i = 0; !rc && i < 1000; i++) {
        char *id = s_job_id(900 + i);
        size_t n;
        evr_event_t **evs = evr_synth_job(id, 2, 32 * 1024, 8 * 1024, &n);
        rc = evr_store_append(st, evs, n, &err);
        evr_synth_free(evs, n);
        free(id);
    }
    CHECK(rc == EVR_ERR_STORE);
    char *want = evr_asprintf("store: no space left on device writing %s/data.mdb", sub);
    CHECK_CONTAINS(err.msg, want);
    free(want);
    evr_store_destroy(&st);
    CHECK(umount2(dir, MNT_DETACH) == 0);
    free(sub);
    free(dir);
}

static void
test_write_failure(void)
{
    /* A child limited to a small file size appends until a write fails
       (EFBIG, as a full disk would); the log must be exactly what the
       successful appends wrote. */
    char *dir = evr_stest_dir("efbig");
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        signal(SIGXFSZ, SIG_IGN);
        evr_store_t *st;
        evr_err_t err;
        if (evr_store_open(dir, EVR_STORE_SYNC, &st, &err))
            _exit(3);
        struct rlimit rl = { 2u << 20, 2u << 20 };   /* 2 MiB */
        setrlimit(RLIMIT_FSIZE, &rl);
        uint64_t ok_seq = 0;
        for (int i = 0; i < 1000; i++) {
            char *id = s_job_id(500 + i);
            size_t n;
            evr_event_t **evs = evr_synth_job(id, 2, 32 * 1024, 8 * 1024, &n);
            evr_rc_t rc = evr_store_append(st, evs, n, &err);
            if (rc == EVR_OK)
                ok_seq = evs[n - 1]->seq;
            evr_synth_free(evs, n);
            free(id);
            if (rc) {
                /* report the last good seq and the error */
                dprintf(pipefd[1], "%llu %d %s", (unsigned long long) ok_seq, (int) rc, err.msg);
                break;
            }
        }
        evr_store_destroy(&st);
        _exit(0);
    }
    close(pipefd[1]);
    char msg[1024] = "";
    ssize_t got = read(pipefd[0], msg, sizeof msg - 1);
    msg[got > 0 ? got : 0] = '\0';
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unsigned long long ok_seq = 0;
    int rc = 0;
    CHECK(sscanf(msg, "%llu %d", &ok_seq, &rc) == 2);
    CHECK(rc == EVR_ERR_STORE);
    CHECK_CONTAINS(msg, "store: the file size limit of this process (RLIMIT_FSIZE, ulimit -f: "
                        "2097152 bytes) stops ");
    CHECK(ok_seq > 0);
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
    uint64_t last = 0;
    CHECK(evr_store_last_seq(st, &last, &err) == EVR_OK);
    if (last != ok_seq)
        fprintf(stderr, "  last seq %llu, last good append %llu (%s)\n", (unsigned long long) last,
                ok_seq, msg);
    CHECK(last == ok_seq);
    s_verify_clean(st);
    evr_store_destroy(&st);
    evr_stest_rm_rf(dir);
    free(dir);
}

static void
test_verify_detects_tampering(void)
{
    char *dir = evr_stest_dir("tamper");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    char *a = s_job_id(20);
    s_append_job(st, a, 2, 100, 50);
    evr_store_destroy(&st);

    /* rewrite the stored projection with a wrong status and exit code */
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    evr_job_t job = { 0 };
    CHECK(evr_store_get_job(st, a, &job, &err) == EVR_OK);
    evr_store_destroy(&st);
    job.status = EVR_JOB_FAILED;
    evr_job_step(&job, 1)->exit_code = 3;
    uint8_t *buf;
    size_t len;
    evr_codec_encode(&evr_job_type, &job, &buf, &len);
    CHECK(evr_stest_raw_put(dir, "jobs", false, a, 26, buf, len));
    free(buf);
    evr_rec_free(&evr_job_type, &job);

    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
    evr_rebuild_verify_t ver;
    int lines = 0;
    CHECK(evr_rebuild_verify(st, s_print, &lines, &ver, &err) == EVR_OK);
    CHECK(ver.differences == 2 && lines == 2);   /* status, and steps */
    evr_store_destroy(&st);
    free(a);
    free(dir);
}

/*  A page of a database whose header LMDB would read past (lower above
    upper): --verify's page check says which database is damaged and
    walks none of them (LMDB would read out of the page). */
static void
test_verify_detects_damaged_page(void)
{
    char *dir = evr_stest_dir("damaged");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    char *a = s_job_id(21);
    s_append_job(st, a, 2, 100, 50);
    CHECK(s_verify_clean(st) == 0);
    evr_store_destroy(&st);
    /* the by_job database's root page, from its record in the main one
       (MDB_db: md_root at offset 40) */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi main_dbi;
    MDB_val k = { 6, (void *) "by_job" }, v = { 0, NULL };
    uint64_t root = 0;
    unsigned psize = 0;
    MDB_stat ms;
    CHECK(mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 16) == 0
          && mdb_env_open(env, dir, MDB_RDONLY, 0600) == 0);
    CHECK(mdb_env_stat(env, &ms) == 0 && mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0);
    psize = ms.ms_psize;
    CHECK(mdb_dbi_open(txn, NULL, 0, &main_dbi) == 0 && mdb_get(txn, main_dbi, &k, &v) == 0
          && v.mv_size == 48);
    if (v.mv_size == 48)
        memcpy(&root, (const uint8_t *) v.mv_data + 40, 8);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    CHECK(root >= 2);
    char *path = evr_asprintf("%s/data.mdb", dir);
    int fd = open(path, O_WRONLY);
    uint16_t bad[2] = { 4000, 100 };   /* lower, upper: lower above upper */
    CHECK(fd >= 0 && pwrite(fd, bad, sizeof bad, (off_t) (root * psize + 12)) == sizeof bad);
    if (fd >= 0)
        close(fd);
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
    evr_rebuild_verify_t ver;
    s_said_t said = { 0 };
    CHECK(evr_rebuild_verify(st, s_keep, &said, &ver, &err) == EVR_OK);
    CHECK(ver.differences == 1 && ver.events == 0);   /* said, and nothing walked */
    CHECK_CONTAINS(said.text, "by_job: ");
    CHECK_CONTAINS(said.text, "the database is damaged (LMDB would read past its pages); not read");
    evr_store_destroy(&st);
    free(path);
    free(a);
    free(dir);
}

static void
test_reader_beside_writer(void)
{
    /* The parent appends while a child process reads read-only. */
    char *dir = evr_stest_dir("live");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_SYNC, &st, &err) == EVR_OK);
    char *first = s_job_id(30);
    s_append_job(st, first, 1, 10, 10);
    free(first);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        for (int round = 0; round < 20; round++) {
            evr_store_t *r;
            evr_err_t e;
            if (evr_store_open(dir, EVR_STORE_RDONLY, &r, &e)) {
                bad++;
                continue;
            }
            evr_rebuild_verify_t v;
            if (evr_rebuild_verify(r, NULL, NULL, &v, &e) || v.differences || v.events == 0)
                bad++;
            evr_store_destroy(&r);
        }
        _exit(bad ? 1 : 0);
    }
    for (int i = 0; i < 40; i++) {
        char *id = s_job_id(31 + i);
        s_append_job(st, id, 2, 4096, 1024);
        free(id);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    evr_store_destroy(&st);
    free(dir);
}

/*  evr_store_has_job: a stored job is found whether its id is the
    largest (no look past the largest key) or not, before and after a
    reopen (the largest key read at open); ids above every key are not. */
static void
test_has_job(void)
{
    char *dir = evr_stest_dir("hasjob");
    evr_store_t *st;
    evr_err_t err;
    bool has = true;
    char *a = s_job_id(20), *b = s_job_id(21), *c = s_job_id(22), *d = s_job_id(23);
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    CHECK(evr_store_has_job(st, a, &has, &err) == EVR_OK && !has);     /* empty */
    s_append_job(st, b, 1, 10, 10);
    CHECK(evr_store_has_job(st, b, &has, &err) == EVR_OK && has);
    CHECK(evr_store_has_job(st, a, &has, &err) == EVR_OK && !has);
    CHECK(evr_store_has_job(st, c, &has, &err) == EVR_OK && !has);
    evr_store_destroy(&st);
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &st, &err) == EVR_OK);
    CHECK(evr_store_has_job(st, b, &has, &err) == EVR_OK && has);
    CHECK(evr_store_has_job(st, c, &has, &err) == EVR_OK && !has);
    s_append_job(st, d, 1, 10, 10);
    s_append_job(st, a, 1, 10, 10);   /* below the largest */
    CHECK(evr_store_has_job(st, a, &has, &err) == EVR_OK && has);
    CHECK(evr_store_has_job(st, d, &has, &err) == EVR_OK && has);
    CHECK(evr_store_has_job(st, c, &has, &err) == EVR_OK && !has);
    evr_store_destroy(&st);
    free(a);
    free(b);
    free(c);
    free(d);
    free(dir);
}

int
main(void)
{
    if (!evr_stest_begin("store"))
        return 1;
    EVR_TEST_RUN(test_cut_short);
    EVR_TEST_RUN(test_append_and_read);
    EVR_TEST_RUN(test_illegal_batch);
    EVR_TEST_RUN(test_map_growth);
    EVR_TEST_RUN(test_file_ahead);
    EVR_TEST_RUN(test_file_ahead_bulk);
    EVR_TEST_RUN(test_chunked_reads);
    EVR_TEST_RUN(test_write_failure);
    EVR_TEST_RUN(test_disk_full);
    EVR_TEST_RUN(test_append_fits_strings);
    EVR_TEST_RUN(test_verify_detects_tampering);
    EVR_TEST_RUN(test_verify_detects_damaged_page);
    EVR_TEST_RUN(test_reader_beside_writer);
    EVR_TEST_RUN(test_has_job);
    evr_stest_rm_rf(evr_stest_root);
    EVR_TEST_END();
}
