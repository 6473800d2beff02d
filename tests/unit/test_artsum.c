/*  test_artsum: digests of whole artifact files kept in memory (no file
    read again while its inode, size and mtime stay), least recently used
    dropped, small files read at once, large ones by the worker. */
#include <czmq.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_artsum.h"
#include "evr_test.h"

static char s_dir[64];

static void
s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static evr_artsum_rc_t
s_get(evr_artsum_t *as, const char *key, const char *path, char hex[EVR_SHA256_HEX])
{
    struct stat sb;
    stat(path, &sb);
    evr_err_t err;
    return evr_artsum_get(as, key, path, &sb, hex, &err);
}

static void
test_small_kept(void)
{
    evr_artsum_t *as = evr_artsum_new(2, 100);
    char p[128], hex[EVR_SHA256_HEX];
    snprintf(p, sizeof p, "%s/a", s_dir);
    s_write(p, "abc");
    CHECK(s_get(as, "J/s/a", p, hex) == EVR_ARTSUM_KNOWN);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(evr_artsum_reads(as) == 1);
    CHECK(s_get(as, "J/s/a", p, hex) == EVR_ARTSUM_KNOWN); /* a later piece */
    CHECK(evr_artsum_reads(as) == 1);
    /* another file at the path (renamed over: another inode): read again */
    char q[128];
    snprintf(q, sizeof q, "%s/a.new", s_dir);
    s_write(q, "xyz");
    rename(q, p);
    CHECK(s_get(as, "J/s/a", p, hex) == EVR_ARTSUM_KNOWN);
    CHECK_STR(hex, "3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282");
    CHECK(evr_artsum_reads(as) == 2);
    /* at most 2 kept: the least recently used dropped */
    struct stat sb;
    stat(p, &sb);
    evr_artsum_put(as, "J/s/b", &sb, "b");
    CHECK(s_get(as, "J/s/a", p, hex) == EVR_ARTSUM_KNOWN); /* a used: b the oldest */
    evr_artsum_put(as, "J/s/c", &sb, "c");
    CHECK(evr_artsum_size(as) == 2);
    CHECK(!evr_artsum_lookup(as, "J/s/b", &sb, hex));
    CHECK(evr_artsum_lookup(as, "J/s/c", &sb, hex));
    CHECK(evr_artsum_reads(as) == 2);
    evr_artsum_destroy(&as);
    CHECK(as == NULL);
}

static int s_done;

static void
s_on_done(void *arg, const char *key, const struct stat *sb, const char *hex)
{
    (void) arg, (void) sb, (void) hex;
    if (!strcmp(key, "J/s/big"))
        s_done++;
}

static void
test_large_by_worker(void)
{
    evr_artsum_t *as = evr_artsum_new(8, 2);
    char p[128], hex[EVR_SHA256_HEX];
    snprintf(p, sizeof p, "%s/big", s_dir);
    s_write(p, "abc");
    CHECK(s_get(as, "J/s/big", p, hex) == EVR_ARTSUM_READING);
    CHECK(s_get(as, "J/s/big", p, hex) == EVR_ARTSUM_READING); /* asked once */
    zpoller_t *poller = zpoller_new(evr_artsum_sock(as), NULL);
    CHECK(zpoller_wait(poller, 5000) != NULL);
    zpoller_destroy(&poller);
    CHECK(evr_artsum_collect(as, s_on_done, NULL) == 1);
    CHECK(s_done == 1);
    CHECK(evr_artsum_reads(as) == 1);
    CHECK(s_get(as, "J/s/big", p, hex) == EVR_ARTSUM_KNOWN);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(evr_artsum_reads(as) == 1);
    /* changed (its mtime) while read: the digest dropped, not kept */
    struct stat sb;
    stat(p, &sb);
    sb.st_mtim.tv_nsec ^= 1; /* the file asked for is not the one there */
    evr_err_t err;
    CHECK(evr_artsum_get(as, "J/s/big", p, &sb, hex, &err) == EVR_ARTSUM_READING);
    poller = zpoller_new(evr_artsum_sock(as), NULL);
    CHECK(zpoller_wait(poller, 5000) != NULL);
    zpoller_destroy(&poller);
    CHECK(evr_artsum_collect(as, s_on_done, NULL) == 0);
    CHECK(!evr_artsum_lookup(as, "J/s/big", &sb, hex));
    evr_artsum_destroy(&as);
}

static void
s_wait(evr_artsum_t *as)
{
    zpoller_t *poller = zpoller_new(evr_artsum_sock(as), NULL);
    CHECK(zpoller_wait(poller, 10000) != NULL);
    zpoller_destroy(&poller);
}

/*  destroy stops the worker within a read of the file being read and
    drops those waiting (it once read every one of them first) */
static void
test_destroy_stops(void)
{
    evr_artsum_t *as = evr_artsum_new(8, 2);
    char p[128], key[32], hex[EVR_SHA256_HEX];
    const uint64_t big = 256ull << 20;
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/sparse%d", s_dir, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        CHECK(fd >= 0 && ftruncate(fd, (off_t) big) == 0);
        close(fd);
        snprintf(key, sizeof key, "J/s/sparse%d", i);
        CHECK(s_get(as, key, p, hex) == EVR_ARTSUM_READING);
    }
    while (evr_artsum_worker_bytes(as) == 0)   /* the first is being read */
        zclock_sleep(1);
    evr_artsum_stop(as);
    /* before, all four were read (1 GiB) first; now the first is left at
       its next 1 MiB and the rest dropped: under two files' bytes even
       on a slow machine that read all of the first meanwhile */
    uint64_t read = evr_artsum_worker_bytes(as);
    CHECK(read > 0 && read < 2 * big);
    CHECK(s_get(as, "J/s/sparse0", p, hex) == EVR_ARTSUM_BUSY);   /* no worker: not asked */
    evr_artsum_destroy(&as);
    CHECK(as == NULL);
}

/*  an older copy's digest, read after the current one was put, does not
    replace it; a file the worker cannot read is not read again */
static void
test_stale_and_failed(void)
{
    evr_artsum_t *as = evr_artsum_new(8, 2);
    char p[128], q[128], hex[EVR_SHA256_HEX];
    snprintf(p, sizeof p, "%s/stale", s_dir);
    s_write(p, "abc");
    CHECK(s_get(as, "J/s/stale", p, hex) == EVR_ARTSUM_READING);
    /* meanwhile a new copy is placed and its digest put (as when received) */
    snprintf(q, sizeof q, "%s/stale.new", s_dir);
    s_write(q, "xyz");
    rename(q, p);
    struct stat sb;
    stat(p, &sb);
    evr_artsum_put(as, "J/s/stale", &sb,
                   "3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282");
    s_wait(as);
    s_done = 0;
    CHECK(evr_artsum_collect(as, s_on_done, NULL) == 0);   /* the old file: gone, "-" */
    CHECK(evr_artsum_lookup(as, "J/s/stale", &sb, hex));
    CHECK_STR(hex, "3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282");
    /* a result for an old copy still readable (a hard link keeps it) */
    snprintf(q, sizeof q, "%s/stale2", s_dir);
    s_write(q, "abc");
    struct stat old;
    stat(q, &old);
    evr_err_t err;
    CHECK(evr_artsum_get(as, "J/s/stale2", q, &old, hex, &err) == EVR_ARTSUM_READING);
    evr_artsum_put(as, "J/s/stale2", &sb, "feed");   /* the current copy's, meanwhile */
    s_wait(as);
    CHECK(evr_artsum_collect(as, s_on_done, NULL) == 0);   /* the old copy's: dropped */
    CHECK(evr_artsum_lookup(as, "J/s/stale2", &sb, hex));
    CHECK_STR(hex, "feed");
    CHECK(!evr_artsum_lookup(as, "J/s/stale2", &old, hex));
    /* a file the worker cannot take (asked for a stat the file does not
       have, as one that changed while read): FAILED at once after, not
       read again */
    snprintf(q, sizeof q, "%s/unreadable", s_dir);
    s_write(q, "abc");
    stat(q, &sb);
    sb.st_mtim.tv_nsec ^= 2;
    CHECK(evr_artsum_get(as, "J/s/u", q, &sb, hex, &err) == EVR_ARTSUM_READING);
    s_wait(as);
    CHECK(evr_artsum_collect(as, s_on_done, NULL) == 0);
    uint64_t reads = evr_artsum_reads(as);
    CHECK(evr_artsum_get(as, "J/s/u", q, &sb, hex, &err) == EVR_ARTSUM_FAILED);
    CHECK(strstr(err.msg, "could not be read") != NULL);
    CHECK(evr_artsum_reads(as) == reads);
    CHECK(!evr_artsum_lookup(as, "J/s/u", &sb, hex));
    /* another copy at the path (another stat): asked again */
    sb.st_mtim.tv_nsec ^= 1;
    CHECK(evr_artsum_get(as, "J/s/u", q, &sb, hex, &err) == EVR_ARTSUM_READING);
    evr_artsum_destroy(&as);
}

/*  at most 64 files wait: the 65th is not asked, and said so (BUSY) */
static void
test_busy(void)
{
    evr_artsum_t *as = evr_artsum_new(128, 2);
    char p[128], key[32], hex[EVR_SHA256_HEX];
    snprintf(p, sizeof p, "%s/busy", s_dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && ftruncate(fd, (off_t) (256ull << 20)) == 0);
    close(fd);
    struct stat sb;
    stat(p, &sb);
    evr_err_t err;
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof key, "J/s/busy%d", i);
        CHECK(evr_artsum_get(as, key, p, &sb, hex, &err) == EVR_ARTSUM_READING);
    }
    CHECK(evr_artsum_get(as, "J/s/busy64", p, &sb, hex, &err) == EVR_ARTSUM_BUSY);
    CHECK(evr_artsum_get(as, "J/s/busy64", p, &sb, hex, &err) == EVR_ARTSUM_BUSY);
    CHECK(evr_artsum_get(as, "J/s/busy0", p, &sb, hex, &err) == EVR_ARTSUM_READING);
    evr_artsum_destroy(&as);
}

int
main(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/test_artsum.XXXXXX");
    if (!mkdtemp(s_dir))
        return 1;
    EVR_TEST_RUN(test_small_kept);
    EVR_TEST_RUN(test_large_by_worker);
    EVR_TEST_RUN(test_destroy_stops);
    EVR_TEST_RUN(test_stale_and_failed);
    EVR_TEST_RUN(test_busy);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system(cmd) != 0)
        return 1;
    EVR_TEST_END();
}
