/*  test_journal: the submit journal (store/evr_journal.h) on a real file:
    records read back in order after a reopen, only those above the
    checkpoint; a torn tail (a record cut short, or one byte of it
    changed) ends the reading there, and what follows it is written anew;
    a batch whose last record is torn is not read at all;
    after a rewind the older records a new batch did not overwrite are not
    read (their seq does not follow); damage before a whole batch is read
    past and said (test_damage); a write past the file size limit
    fails and takes no more records. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_journal.h"
#include "evr_test.h"

/*  CRC-32C (Castagnoli, reflected, as iSCSI and ext4) of the 12 header
    bytes {9, 0, 0, 0x80, 1, 0 x 7} and "123456789", computed by a bitwise
    implementation whose check value (of "123456789" alone) is the
    standard 0xe3069283. */
#define S_WANT_CRC 0x0100813cu

static char s_root[256];

typedef struct {
    uint64_t seq[64];
    char text[64][32];
    size_t n;
} s_seen_t;

static int
s_take(uint64_t seq, const uint8_t *data, size_t len, void *arg)
{
    s_seen_t *s = arg;
    if (s->n < 64) {
        s->seq[s->n] = seq;
        snprintf(s->text[s->n], sizeof s->text[s->n], "%.*s", (int) len, (const char *) data);
        s->n++;
    }
    return 0;
}

/*  Adds "rec-<i>" for i in [from, to) and writes and flushes them. */
static void
s_batch(evr_journal_t *j, int from, int to)
{
    evr_err_t err;
    for (int i = from; i < to; i++) {
        char text[32];
        int n = snprintf(text, sizeof text, "rec-%d", i);
        uint64_t seq;
        memcpy(evr_journal_add(j, (size_t) n, &seq), text, (size_t) n);
    }
    CHECK(evr_journal_write(j, &err) == EVR_OK);
    CHECK(evr_journal_sync(j, &err) == EVR_OK);
}

/*  Reopens path and reads the records above after into s. */
static void
s_read(const char *path, uint64_t after, s_seen_t *s, evr_journal_t **out)
{
    evr_journal_t *j;
    evr_err_t err;
    uint64_t last;
    memset(s, 0, sizeof *s);
    CHECK(evr_journal_open(path, false, &j, &err) == EVR_OK);
    CHECK(evr_journal_replay(j, after, s_take, NULL, s, &last, &err) == EVR_OK);
    CHECK(last == (s->n ? s->seq[s->n - 1] : after));
    if (out)
        *out = j;
    else
        evr_journal_destroy(&j);
}

/*  The records' checksum is CRC-32C: a file written elsewhere reads the
    same (a known record, byte for byte). */
static void
test_format(void)
{
    char *path = evr_asprintf("%s/format.journal", s_root);
    evr_journal_t *j;
    evr_err_t err;
    uint64_t last, seq;
    CHECK(evr_journal_open(path, false, &j, &err) == EVR_OK);
    CHECK(evr_journal_replay(j, 0, s_take, NULL, &(s_seen_t) { 0 }, &last, &err) == EVR_OK);
    memcpy(evr_journal_add(j, 9, &seq), "123456789", 9);
    CHECK(evr_journal_write(j, &err) == EVR_OK);
    evr_journal_destroy(&j);
    uint8_t rec[EVR_JOURNAL_HDR + 9];
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, rec, sizeof rec, 0) == (ssize_t) sizeof rec);
    close(fd);
    /* "EVJ1", length 9 | the batch's last, seq 1, then the CRC-32C of those
       12 bytes and the payload (computed independently: crc32c) */
    static const uint8_t want[16] = { 'E', 'V', 'J', '1', 9, 0, 0, 0x80, 1, 0, 0, 0, 0, 0, 0, 0 };
    CHECK(memcmp(rec, want, 16) == 0);
    uint32_t crc = rec[16] | rec[17] << 8 | rec[18] << 16 | (uint32_t) rec[19] << 24;
    CHECK(crc == S_WANT_CRC);
    CHECK(memcmp(rec + 20, "123456789", 9) == 0);
    free(path);
}

static void
test_order(void)
{
    char *path = evr_asprintf("%s/order.journal", s_root);
    evr_journal_t *j;
    evr_err_t err;
    uint64_t last;
    CHECK(evr_journal_open(path, false, &j, &err) == EVR_OK);
    CHECK(evr_journal_replay(j, 0, s_take, NULL, &(s_seen_t) { 0 }, &last, &err) == EVR_OK);
    CHECK(last == 0);
    s_batch(j, 1, 4);
    s_batch(j, 4, 6);
    CHECK(evr_journal_seq(j) == 5);
    CHECK(evr_journal_used(j) == 5 * EVR_JOURNAL_HDR + 5 * 5);
    evr_journal_destroy(&j);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size >= (off_t) EVR_JOURNAL_AHEAD);   /* zeros ahead */
    s_seen_t s;
    s_read(path, 0, &s, NULL);
    CHECK(s.n == 5);
    CHECK(s.seq[0] == 1 && s.seq[4] == 5);
    CHECK(strcmp(s.text[0], "rec-1") == 0 && strcmp(s.text[4], "rec-5") == 0);
    s_read(path, 3, &s, NULL);  /* the checkpoint: 3 */
    CHECK(s.n == 2 && s.seq[0] == 4 && strcmp(s.text[1], "rec-5") == 0);
    s_read(path, 9, &s, NULL);  /* all older than the checkpoint */
    CHECK(s.n == 0);
    free(path);
}

/*  A torn tail: the last record cut in its payload, then one byte of a
    record changed: the reading stops before it; records written after a
    reopen follow the last whole one. */
static void
test_torn_tail(void)
{
    char *path = evr_asprintf("%s/torn.journal", s_root);
    evr_journal_t *j;
    evr_err_t err;
    CHECK(evr_journal_open(path, false, &j, &err) == EVR_OK);
    for (int i = 1; i < 4; i++)
        s_batch(j, i, i + 1);   /* 3 batches of one record of 5 bytes */
    evr_journal_destroy(&j);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    off_t third = 2 * (EVR_JOURNAL_HDR + 5);
    /* the third's payload half written: zeros where its last bytes were */
    CHECK(pwrite(fd, "\0\0\0", 3, third + EVR_JOURNAL_HDR + 2) == 3);
    s_seen_t s;
    s_read(path, 0, &s, NULL);
    CHECK(s.n == 2 && s.seq[1] == 2);
    /* a record cut in its header */
    CHECK(pwrite(fd, "\0\0\0\0\0\0\0\0", 8, third + 8) == 8);
    s_read(path, 0, &s, NULL);
    CHECK(s.n == 2);
    /* one changed byte in the second: only the first is read */
    char c;
    CHECK(pread(fd, &c, 1, EVR_JOURNAL_HDR + 5 + EVR_JOURNAL_HDR) == 1);
    c ^= 0x20;
    CHECK(pwrite(fd, &c, 1, EVR_JOURNAL_HDR + 5 + EVR_JOURNAL_HDR) == 1);
    close(fd);
    s_read(path, 0, &s, &j);
    CHECK(s.n == 1 && s.seq[0] == 1);
    /* the owner checkpoints what it read, then writes anew from the start */
    s_batch(j, 10, 12);
    evr_journal_destroy(&j);
    s_read(path, 1, &s, NULL);
    CHECK(s.n == 2 && s.seq[0] == 2 && s.seq[1] == 3);
    CHECK(strcmp(s.text[0], "rec-10") == 0 && strcmp(s.text[1], "rec-11") == 0);
    free(path);
}

/*  A batch whose last record is torn is not read at all, its whole
    records neither; the seqs they had are not given again. */
static void
test_torn_batch(void)
{
    char *path = evr_asprintf("%s/batch.journal", s_root);
    evr_journal_t *j;
    evr_err_t err;
    CHECK(evr_journal_open(path, false, &j, &err) == EVR_OK);
    s_batch(j, 1, 3);   /* seq 1, 2 */
    s_batch(j, 3, 6);   /* seq 3, 4, 5: 5 torn below */
    evr_journal_destroy(&j);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    CHECK(pwrite(fd, "\0", 1, 5 * (EVR_JOURNAL_HDR + 5) - 1) == 1);
    close(fd);
    s_seen_t s;
    s_read(path, 0, &s, &j);
    CHECK(s.n == 2 && s.seq[1] == 2);
    uint64_t seq;
    memcpy(evr_journal_add(j, 1, &seq), "x", 1);
    CHECK(seq == 5);    /* after the torn batch's whole records (3, 4) */
    evr_journal_destroy(&j);
    free(path);
}

typedef struct {
    uint64_t off, bytes, first, last;
    int n;
} s_gap_t;

static void
s_gap(uint64_t off, uint64_t bytes, uint64_t first, uint64_t last, void *arg)
{
    s_gap_t *g = ((void **) arg)[1];
    *g = (s_gap_t) { off, bytes, first, last, g->n + 1 };
}

static int
s_take2(uint64_t seq, const uint8_t *data, size_t len, void *arg)
{
    return s_take(seq, data, len, ((void **) arg)[0]);
}

/*  Reopens path and reads the records above after into s, the gaps into g. */
static void
s_read_gaps(const char *path, uint64_t after, s_seen_t *s, s_gap_t *g)
{
    evr_journal_t *j;
    evr_err_t err;
    uint64_t last;
    memset(s, 0, sizeof *s);
    memset(g, 0, sizeof *g);
    void *args[2] = { s, g };
    CHECK(evr_journal_open(path, false, &j, &err) == EVR_OK);
    CHECK(evr_journal_replay(j, after, s_take2, s_gap, args, &last, &err) == EVR_OK);
    CHECK(last == (s->n ? s->seq[s->n - 1] : after));
    evr_journal_destroy(&j);
}

static void
s_flip(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    char c;
    CHECK(fd >= 0 && pread(fd, &c, 1, at) == 1);
    c ^= 0x20;
    CHECK(pwrite(fd, &c, 1, at) == 1);
    close(fd);
}

/*  Damage inside the file (a whole batch of newer records after it) is
    not a torn tail: the records after it are read on, and the gap said
    once, with the seqs it held; a damaged record in the last batch is a
    torn tail still (no gap said).  After a rewind, the older records
    left behind are not taken for the ones after a damaged record. */
static void
test_damage(void)
{
    char *path = evr_asprintf("%s/damage.journal", s_root);
    evr_journal_t *j;
    evr_err_t err;
    CHECK(evr_journal_open(path, false, &j, &err) == EVR_OK);
    s_batch(j, 1, 2);   /* seq 1 */
    s_batch(j, 2, 3);   /* seq 2: damaged below */
    s_batch(j, 3, 5);   /* seq 3, 4 */
    s_batch(j, 5, 6);   /* seq 5 */
    evr_journal_destroy(&j);
    const off_t rec = EVR_JOURNAL_HDR + 5;
    s_flip(path, rec + EVR_JOURNAL_HDR + 2);    /* a byte of record 2's payload */
    s_seen_t s;
    s_gap_t g;
    s_read_gaps(path, 0, &s, &g);
    CHECK(s.n == 4 && s.seq[0] == 1 && s.seq[1] == 3 && s.seq[3] == 5);
    CHECK(strcmp(s.text[1], "rec-3") == 0);
    CHECK(g.n == 1 && g.off == (uint64_t) rec && g.bytes == (uint64_t) rec);
    CHECK(g.first == 2 && g.last == 2);
    /* records 3's header too: 2 and 3 lost, 4 (the rest of its batch) read */
    s_flip(path, 2 * rec + 9);
    s_read_gaps(path, 0, &s, &g);
    CHECK(s.n == 3 && s.seq[1] == 4 && s.seq[2] == 5);
    CHECK(g.n == 1 && g.off == (uint64_t) rec && g.bytes == 2 * (uint64_t) rec);
    CHECK(g.first == 2 && g.last == 3);
    /* checkpointed past the gap: nothing lost is said */
    s_read_gaps(path, 3, &s, &g);
    CHECK(s.n == 2 && s.seq[0] == 4 && g.n == 0);
    /* the last batch damaged: a torn tail, said nothing of */
    s_flip(path, 4 * rec + EVR_JOURNAL_HDR);
    s_read_gaps(path, 0, &s, &g);
    CHECK(s.n == 2 && s.seq[1] == 4 && g.n == 1 && g.last == 3);
    free(path);

    path = evr_asprintf("%s/damage-rewind.journal", s_root);
    CHECK(evr_journal_open(path, false, &j, &err) == EVR_OK);
    s_batch(j, 1, 6);   /* seq 1..5, checkpointed */
    evr_journal_rewind(j);
    s_batch(j, 6, 7);   /* seq 6, damaged below */
    s_batch(j, 7, 8);   /* seq 7; 3..5 left behind it */
    evr_journal_destroy(&j);
    s_flip(path, EVR_JOURNAL_HDR + 1);
    s_read_gaps(path, 5, &s, &g);
    CHECK(s.n == 1 && s.seq[0] == 7);
    CHECK(g.n == 1 && g.off == 0 && g.first == 6 && g.last == 6);
    s_flip(path, rec + EVR_JOURNAL_HDR + 1);   /* 7 too: only older records after */
    s_read_gaps(path, 5, &s, &g);
    CHECK(s.n == 0 && g.n == 0);
    free(path);
}

/*  After a rewind, a shorter batch leaves older records behind it: they
    are not read (their seq does not follow the new ones'). */
static void
test_rewind(void)
{
    char *path = evr_asprintf("%s/rewind.journal", s_root);
    evr_journal_t *j;
    evr_err_t err;
    uint64_t last;
    CHECK(evr_journal_open(path, false, &j, &err) == EVR_OK);
    CHECK(evr_journal_replay(j, 0, s_take, NULL, &(s_seen_t) { 0 }, &last, &err) == EVR_OK);
    s_batch(j, 1, 6);   /* seq 1..5 */
    evr_journal_rewind(j);  /* 1..5 are checkpointed elsewhere */
    CHECK(evr_journal_used(j) == 0);
    s_batch(j, 6, 8);   /* seq 6, 7 over the first two */
    evr_journal_destroy(&j);
    s_seen_t s;
    s_read(path, 5, &s, NULL);
    CHECK(s.n == 2 && s.seq[0] == 6 && s.seq[1] == 7);
    CHECK(strcmp(s.text[1], "rec-7") == 0);
    /* the checkpoint after a rewind is at least the old records' seq:
       nothing older is read even from checkpoint 0 past the new ones */
    s_read(path, 0, &s, NULL);
    CHECK(s.n == 2);
    free(path);
}

/*  A write past RLIMIT_FSIZE fails (EFBIG, as a full disk would) and the
    journal takes nothing after it. */
static void
test_write_fails(void)
{
    char *path = evr_asprintf("%s/small.journal", s_root);
    struct rlimit old, small = { 64 << 10, 0 };
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    evr_journal_t *j;
    evr_err_t err;
    uint64_t last, seq;
    CHECK(evr_journal_open(path, false, &j, &err) == EVR_OK);
    CHECK(evr_journal_replay(j, 0, s_take, NULL, &(s_seen_t) { 0 }, &last, &err) == EVR_OK);
    memset(evr_journal_add(j, 100 << 10, &seq), 'x', 100 << 10);
    CHECK(evr_journal_write(j, &err) == EVR_ERR_STORE);
    CHECK(strncmp(err.msg, "store: write ", 13) == 0);
    memcpy(evr_journal_add(j, 3, &seq), "abc", 3);
    CHECK(evr_journal_write(j, &err) == EVR_ERR_STORE);
    CHECK(evr_journal_sync(j, &err) == EVR_ERR_STORE);
    evr_journal_destroy(&j);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, SIG_DFL);
    s_seen_t s;
    s_read(path, 0, &s, NULL);
    CHECK(s.n == 0);
    free(path);
}

int
main(void)
{
    snprintf(s_root, sizeof s_root, "/tmp/evr-test-journal-XXXXXX");
    if (!mkdtemp(s_root)) {
        perror("mkdtemp");
        return 1;
    }
    EVR_TEST_RUN(test_format);
    EVR_TEST_RUN(test_order);
    EVR_TEST_RUN(test_torn_tail);
    EVR_TEST_RUN(test_torn_batch);
    EVR_TEST_RUN(test_rewind);
    EVR_TEST_RUN(test_damage);
    EVR_TEST_RUN(test_write_fails);
    char *cmd = evr_asprintf("rm -rf '%s'", s_root);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    free(cmd);
    EVR_TEST_END();
}
