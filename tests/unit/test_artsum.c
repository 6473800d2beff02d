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

int
main(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/test_artsum.XXXXXX");
    if (!mkdtemp(s_dir))
        return 1;
    EVR_TEST_RUN(test_small_kept);
    EVR_TEST_RUN(test_large_by_worker);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system(cmd) != 0)
        return 1;
    EVR_TEST_END();
}
