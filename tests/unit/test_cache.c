/*  test_cache: cache keys resolved against a workspace directory (a link
    is never followed out of it), a step's entry over the pipeline's, the
    volume names, and least-recently-used eviction of the records; the
    artifact ship queue's entries. */
#define _GNU_SOURCE
#include "evr_cache.h"
#include "evr_ship.h"
#include "evr_test.h"
#include "evr_yaml.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char s_dir[64];

static void
s_write(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    FILE *fp = fopen(path, "w");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

static evr_spec_t *
s_spec(const char *yml)
{
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *diag = evr_diag_new("t.yml");
    CHECK(evr_yaml_load(yml, strlen(yml), spec, diag) == EVR_OK);
    evr_diag_destroy(&diag);
    return spec;
}

static void
test_resolve(void)
{
    char ws[128];
    snprintf(ws, sizeof ws, "%s/ws", s_dir);
    mkdir(ws, 0700);
    s_write("ws/lock.txt", "one\n");
    s_write("secret.txt", "outside\n");
    char link[160];
    snprintf(link, sizeof link, "%s/link.txt", ws);
    CHECK(symlink("../secret.txt", link) == 0);
    evr_spec_t *spec = s_spec(
        "pipeline: p\nimage: i\n"
        "cache: [{key: \"k-{{ sha256 lock.txt }}\", path: deps}, {key: t, path: /root/.t}]\n"
        "steps:\n"
        "  - {name: a, run: x}\n"
        "  - {name: b, run: x, cache: [{key: other, path: ./deps/}]}\n");
    CHECK(evr_cache_reads_files(spec));
    evr_cache_job_t *cj = NULL;
    evr_err_t err;
    CHECK(evr_cache_resolve(spec, ws, &cj, &err) == EVR_OK);
    uint32_t n = 0;
    const evr_exec_mount_t *m = evr_cache_mounts(cj, 0, &n);
    CHECK(n == 2);
    /* printf 'p\0k-' + sha256("one\n") | sha256sum, first 24 digits */
    char key[128], cmd[512], want[64] = "";
    snprintf(key, sizeof key, "k-2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806");
    snprintf(cmd, sizeof cmd, "printf 'p\\0%s' | sha256sum | cut -c1-24", key);
    FILE *p = popen(cmd, "r");
    if (p) {
        CHECK(fgets(want, sizeof want, p) != NULL);
        pclose(p);
    }
    want[strcspn(want, "\n")] = '\0';
    char vol[96];
    snprintf(vol, sizeof vol, "evrun-cache-%s", want);
    if (n == 2) {
        CHECK_STR(m[0].volume, vol);
        CHECK_STR(m[0].dest, "/workspace/deps");
        CHECK_STR(m[1].dest, "/root/.t");
    }
    const evr_exec_mount_t *mb = evr_cache_mounts(cj, 1, &n);
    CHECK(n == 2);   /* the step's deps replaces the pipeline's, "./deps/" as "deps" */
    if (n == 2) {
        CHECK_STR(mb[0].dest, "/workspace/deps");
        CHECK(strcmp(mb[0].volume, vol) != 0);
    }
    const char *const *vols;
    CHECK(evr_cache_volumes(cj, &vols) == 3);
    CHECK(evr_cache_uses(cj, vol));
    /* kept for a restart, and read back the same */
    char saved[160];
    snprintf(saved, sizeof saved, "%s/job.mounts", s_dir);
    CHECK(evr_cache_job_save(cj, saved, &err) == EVR_OK);
    evr_cache_job_t *back = evr_cache_job_load(saved, 2);
    const evr_exec_mount_t *mm = evr_cache_mounts(back, 1, &n);
    CHECK(back && n == 2 && !strcmp(mm[0].volume, mb[0].volume) && !strcmp(mm[1].dest, "/root/.t"));
    CHECK(evr_cache_volumes(back, &vols) == 3);
    evr_cache_job_destroy(&back);
    s_write("job.mounts", "0\tnot-a-cache\t/x\n");
    CHECK(evr_cache_job_load(saved, 2) == NULL);
    evr_cache_job_destroy(&cj);
    evr_spec_destroy(&spec);

    /* a link out of the workspace is not followed; a missing file named */
    spec = s_spec("pipeline: p\nimage: i\ncache: [{key: \"{{ sha256 link.txt }}\", path: d}]\n"
                  "steps: [{name: a, run: x}]\n");
    CHECK(evr_cache_resolve(spec, ws, &cj, &err) == EVR_ERR_CONFIG && !cj);
    CHECK_CONTAINS(err.msg, "cache[0] (key \"{{ sha256 link.txt }}\"): {{ sha256 link.txt }}: a link");
    evr_spec_destroy(&spec);
    spec = s_spec("pipeline: p\nimage: i\ncache: [{key: \"{{ sha256 no.txt }}\", path: d}]\n"
                  "steps: [{name: a, run: x}]\n");
    CHECK(evr_cache_resolve(spec, ws, &cj, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "no such file in the workspace");
    evr_spec_destroy(&spec);
    /* hashed on the runner's loop: a file over 16 MiB is refused (a
       sparse one: its size is what counts) */
    char big[160];
    snprintf(big, sizeof big, "%s/big.bin", ws);
    FILE *bf = fopen(big, "w");
    CHECK(bf && ftruncate(fileno(bf), (16 << 20) + 1) == 0);
    if (bf)
        fclose(bf);
    spec = s_spec("pipeline: p\nimage: i\ncache: [{key: \"{{ sha256 big.bin }}\", path: d}]\n"
                  "steps: [{name: a, run: x}]\n");
    CHECK(evr_cache_resolve(spec, ws, &cj, &err) == EVR_ERR_CONFIG && !cj);
    CHECK_CONTAINS(err.msg, "{{ sha256 big.bin }}: over 16 MiB (16777217 bytes), more than a "
                   "cache key hashes");
    evr_spec_destroy(&spec);
    bf = fopen(big, "r+");
    CHECK(bf && ftruncate(fileno(bf), 16 << 20) == 0);      /* at the limit: hashed */
    if (bf)
        fclose(bf);
    spec = s_spec("pipeline: p\nimage: i\ncache: [{key: \"{{ sha256 big.bin }}\", path: d}]\n"
                  "steps: [{name: a, run: x}]\n");
    CHECK(evr_cache_resolve(spec, ws, &cj, &err) == EVR_OK && cj);
    evr_cache_job_destroy(&cj);
    evr_spec_destroy(&spec);
    unlink(big);
    /* a key's line break or terminal escape is quoted escaped: it went
       raw into the job's reason, and to the screen */
    spec = s_spec("pipeline: p\nimage: i\ncache: [{key: \"a\\nb\\x1b[31m{{ sha256 no.txt }}\", "
                  "path: d}]\nsteps: [{name: a, run: x}]\n");
    CHECK(evr_cache_resolve(spec, ws, &cj, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "cache[0] (key \"a\\nb\\x1b[31m{{ sha256 no.txt }}\"): ");
    CHECK(!strchr(err.msg, '\n') && !strchr(err.msg, '\x1b'));
    evr_spec_destroy(&spec);
    spec = s_spec("pipeline: p\nimage: i\nsteps: [{name: a, run: x}]\n");
    CHECK(evr_cache_resolve(spec, NULL, &cj, &err) == EVR_OK && cj == NULL);
    evr_spec_destroy(&spec);
}

/*  The /job layout (a source, or only a CI source): a key's file is read
    in src/, the steps' directory, where the cache's path goes too; a
    missing src/ or file is named as /job/src. */
static void
test_resolve_job_layout(void)
{
    char ws[128];
    snprintf(ws, sizeof ws, "%s/jws", s_dir);
    mkdir(ws, 0700);
    s_write("jws/lock.txt", "top\n");
    evr_spec_t *spec = s_spec(
        "pipeline: p\nimage: i\nci_source: {copy: ci}\n"
        "cache: [{key: \"k-{{ sha256 lock.txt }}\", path: deps}]\n"
        "steps: [{name: a, run: x}]\n");
    evr_cache_job_t *cj = NULL;
    evr_err_t err;
    CHECK(evr_cache_resolve(spec, ws, &cj, &err) == EVR_ERR_CONFIG && !cj);
    CHECK_CONTAINS(err.msg, "cache[0] (key \"k-{{ sha256 lock.txt }}\"): {{ sha256 lock.txt }}: "
                   "no such file in /job/src, the source's directory");
    CHECK(strstr(err.msg, ws) == NULL);   /* no host path */
    evr_spec_destroy(&spec);

    char src[160];
    snprintf(src, sizeof src, "%s/src", ws);
    mkdir(src, 0700);
    s_write("jws/src/lock.txt", "one\n");
    spec = s_spec("pipeline: p\nimage: i\nsource: {git: {url: \"file:///r\", ref: main}}\n"
                  "cache: [{key: \"k-{{ sha256 lock.txt }}\", path: deps}]\n"
                  "steps: [{name: a, run: x}]\n");
    CHECK(evr_cache_resolve(spec, ws, &cj, &err) == EVR_OK);
    uint32_t n = 0;
    const evr_exec_mount_t *m = evr_cache_mounts(cj, 0, &n);
    CHECK(n == 1);
    if (n == 1) {
        CHECK_STR(m[0].dest, "/job/src/deps");
        /* the same volume as a workspace whose lock.txt says one */
        evr_spec_t *flat = s_spec("pipeline: p\nimage: i\n"
                                  "cache: [{key: \"k-{{ sha256 lock.txt }}\", path: deps}]\n"
                                  "steps: [{name: a, run: x}]\n");
        evr_cache_job_t *fj = NULL;
        CHECK(evr_cache_resolve(flat, src, &fj, &err) == EVR_OK);
        uint32_t fn = 0;
        const evr_exec_mount_t *fm = evr_cache_mounts(fj, 0, &fn);
        CHECK(fn == 1 && !strcmp(fm[0].volume, m[0].volume));
        evr_cache_job_destroy(&fj);
        evr_spec_destroy(&flat);
    }
    evr_cache_job_destroy(&cj);
    evr_spec_destroy(&spec);
}

static bool
s_busy(const char *volume, void *arg)
{
    return strcmp(volume, arg) == 0;
}

static void
s_age(const char *dir, const char *vol, time_t secs_ago)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, vol);
    struct timespec t[2] = { { time(NULL) - secs_ago, 0 }, { time(NULL) - secs_ago, 0 } };
    utimensat(AT_FDCWD, path, t, 0);
}

static void
test_evict(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/caches", s_dir);
    evr_err_t err;
    const char *v[] = { "evrun-cache-aaa", "evrun-cache-bbb", "evrun-cache-ccc" };
    for (int i = 0; i < 3; i++) {
        CHECK(evr_cache_touch(dir, v[i], &err) == EVR_OK);
        evr_cache_set_size(dir, v[i], 100);
        s_age(dir, v[i], 30 - 10 * i);   /* aaa oldest */
    }
    uint32_t n = 0;
    char **gone = evr_cache_evict(dir, 300, s_busy, (void *) "", &n);
    CHECK(n == 0);   /* 300 fits */
    free(gone);
    /* over: the oldest not in use goes (aaa is in use: bbb) */
    gone = evr_cache_evict(dir, 250, s_busy, (void *) "evrun-cache-aaa", &n);
    CHECK(n == 1);
    if (n == 1)
        CHECK_STR(gone[0], "evrun-cache-bbb");
    for (uint32_t i = 0; i < n; i++)
        free(gone[i]);
    free(gone);
    char path[256];
    snprintf(path, sizeof path, "%s/evrun-cache-bbb", dir);
    CHECK(access(path, F_OK) != 0);
    /* touching makes it the most recent */
    CHECK(evr_cache_touch(dir, "evrun-cache-aaa", &err) == EVR_OK);
    gone = evr_cache_evict(dir, 150, s_busy, (void *) "", &n);
    CHECK(n == 1);
    if (n == 1)
        CHECK_STR(gone[0], "evrun-cache-ccc");
    for (uint32_t i = 0; i < n; i++)
        free(gone[i]);
    free(gone);
}

/*  The ship queue: an entry taken up, a file that changed since dropped. */
static void
test_ship(void)
{
    char q[128], art[128];
    snprintf(q, sizeof q, "%s/ship", s_dir);
    snprintf(art, sizeof art, "%s/art", s_dir);
    const char *job = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    char dir[256];
    snprintf(dir, sizeof dir, "%s/%s/s1", art, job);
    evr_err_t err;
    CHECK(evr_mkdirs(dir, &err) == EVR_OK);
    char rel[300];
    snprintf(rel, sizeof rel, "art/%s/s1/f.txt", job);
    s_write(rel, "xxx");
    char file[320];
    snprintf(file, sizeof file, "%s/f.txt", dir);
    CHECK(evr_ship_enqueue(q, file, job, "s1", "f.txt", 3,
                           "cd2eb0837c9b4c962c22d2ff8b5441b7b45805887f051d39bf133b583baf6860",
                           &err) == EVR_OK);
    /* a later copy replaces the file: the first entry's is not it */
    char tmpf[340];
    snprintf(tmpf, sizeof tmpf, "%s.new", file);
    FILE *fp = fopen(tmpf, "w");
    if (fp) {
        fputs("xxy", fp);
        fclose(fp);
    }
    CHECK(rename(tmpf, file) == 0);
    CHECK(evr_ship_enqueue(q, file, job, "s1", "f.txt", 3,
                           "0000000000000000000000000000000000000000000000000000000000000000",
                           &err) == EVR_OK);
    evr_ship_t *sh = evr_ship_new(q, art);
    CHECK(evr_ship_pending(sh, false) == 2);
    evr_msg_t m = { 0 };
    /* the first entry's file was replaced: dropped; the second ships */
    CHECK(evr_ship_next(sh, 1, &m));
    CHECK(m.sha256 && m.sha256[0] == '0');
    CHECK(m.type == EVR_MSG_ARTIFACT_CHUNK && m.offset == 0 && m.data.len == 0 && m.size == 3);
    CHECK(!evr_ship_next(sh, 2, &m));   /* waits for the ack */
    evr_msg_t ack = { .type = EVR_MSG_ARTIFACT_ACK, .job = m.job, .step = m.step,
                      .path = m.path, .sha256 = m.sha256, .offset = 1 };
    evr_ship_on_ack(sh, &ack);
    evr_msg_t d = { 0 };
    CHECK(evr_ship_next(sh, 3, &d));
    CHECK(d.offset == 1 && d.data.len == 2 && !memcmp(d.data.data, "xy", 2));
    ack.offset = 3;
    ack.done = true;
    evr_ship_on_ack(sh, &ack);
    evr_msg_clear(&d);
    evr_msg_clear(&m);
    CHECK(evr_ship_pending(sh, false) == 0);
    CHECK(!evr_ship_next(sh, 4, &m));
    evr_ship_destroy(&sh);
}

/*  Entries queued unsynced (evr_ship_enqueue_unsynced, as the artifact
    unpack's child does) are not the shipper's until evr_ship_sync has
    renamed them into place: a shipper taking and finishing one meanwhile
    would leave the sync nothing to sync (it failed the step). */
static void
test_ship_unsynced(void)
{
    char q[128], art[128];
    snprintf(q, sizeof q, "%s/ship2", s_dir);
    snprintf(art, sizeof art, "%s/art", s_dir);
    const char *job = "01ARZ3NDEKTSV4RRFFQ69G5FAW";
    char dir[256], file[320];
    snprintf(dir, sizeof dir, "%s/%s/s1", art, job);
    evr_err_t err;
    CHECK(evr_mkdirs(dir, &err) == EVR_OK);
    char rel[300];
    snprintf(rel, sizeof rel, "art/%s/s1/g.txt", job);
    s_write(rel, "abc");
    snprintf(file, sizeof file, "%s/g.txt", dir);
    const char *sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    evr_ship_t *sh = evr_ship_new(q, art);   /* the runner's shipper, made at its start */
    char *entries[2] = { NULL, NULL };
    for (int i = 0; i < 2; i++)
        CHECK(evr_ship_enqueue_unsynced(q, file, job, "s1", "g.txt", 3, sha, &entries[i],
                                        &err) == EVR_OK && entries[i]);
    evr_msg_t m = { 0 };
    CHECK(evr_ship_pending(sh, false) == 0);
    CHECK(!evr_ship_next(sh, 1, &m));        /* nothing of them taken before the sync */
    CHECK(evr_ship_sync(q, entries, 2, &err) == EVR_OK);
    CHECK(access(entries[0], F_OK) == 0 && access(entries[1], F_OK) == 0);
    CHECK(evr_ship_pending(sh, false) == 2);
    CHECK(evr_ship_next(sh, 1000000000ull, &m));   /* past its next look at the queue */
    CHECK(m.type == EVR_MSG_ARTIFACT_CHUNK && m.size == 3);
    evr_msg_clear(&m);
    /* a batch whose sync fails (an entry's temporary file gone): an error
       naming it, and evr_ship_unqueue removes what is left of each */
    char *more[2] = { NULL, NULL };
    for (int i = 0; i < 2; i++)
        CHECK(evr_ship_enqueue_unsynced(q, file, job, "s1", "g.txt", 3, sha, &more[i],
                                        &err) == EVR_OK);
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s.tmp", more[1]);
    CHECK(unlink(tmp) == 0);
    CHECK(evr_ship_sync(q, more, 2, &err) == EVR_ERR_IO && strstr(err.msg, tmp));
    for (int i = 0; i < 2; i++) {
        evr_ship_unqueue(more[i]);
        snprintf(tmp, sizeof tmp, "%s.tmp", more[i]);
        CHECK(access(more[i], F_OK) != 0 && access(tmp, F_OK) != 0);
        free(more[i]);
    }
    /* ... one whose rename fails (a directory in the way of the second):
       the first renamed already, removed by evr_ship_unqueue */
    for (int i = 0; i < 2; i++)
        CHECK(evr_ship_enqueue_unsynced(q, file, job, "s1", "g.txt", 3, sha, &more[i],
                                        &err) == EVR_OK);
    CHECK(mkdir(more[1], 0700) == 0);
    CHECK(evr_ship_sync(q, more, 2, &err) == EVR_ERR_IO && strstr(err.msg, "rename"));
    CHECK(access(more[0], F_OK) == 0);
    evr_ship_unqueue(more[0]);
    evr_ship_unqueue(more[1]);
    snprintf(tmp, sizeof tmp, "%s.tmp", more[0]);
    CHECK(access(more[0], F_OK) != 0 && access(tmp, F_OK) != 0);
    snprintf(tmp, sizeof tmp, "%s.tmp", more[1]);
    CHECK(access(tmp, F_OK) != 0);
    CHECK(rmdir(more[1]) == 0);
    for (int i = 0; i < 2; i++) {
        free(more[i]);
        free(entries[i]);
    }
    evr_ship_destroy(&sh);
}

int
main(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/evr-test-cache-XXXXXX");
    if (!mkdtemp(s_dir))
        return 2;
    EVR_TEST_RUN(test_resolve);
    EVR_TEST_RUN(test_resolve_job_layout);
    EVR_TEST_RUN(test_evict);
    EVR_TEST_RUN(test_ship);
    EVR_TEST_RUN(test_ship_unsynced);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system(cmd) != 0)
        return 2;
    EVR_TEST_END();
}
