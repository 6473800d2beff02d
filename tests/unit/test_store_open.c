/*  test_store_open: opening the LMDB event log on a real LMDB in a
    temporary directory: a new store and its meta, reopening read-only, and
    what is refused with a message that says why (a format this build does
    not read, a foreign or empty LMDB environment, a data.mdb that is no
    LMDB file, a broker's store for a runner and a runner's for a broker,
    a directory this user may not search),
    and a dry run's open that writes nothing.
    Appending, reading and verifying are test_store's. */
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_stest.h"
#include "evr_store.h"
#include "evr_test.h"

static void
test_open(void)
{
    char *dir = evr_stest_dir("open");
    evr_store_t *st;
    evr_err_t err;
    /* a reader needs an existing store */
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "No such file or directory");
    CHECK(evr_store_open(dir, EVR_STORE_SYNC, &st, &err) == EVR_OK);
    struct stat sb;
    CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
    char *v = NULL;
    CHECK(evr_store_meta_get(st, "format", &v, &err) == EVR_OK);
    CHECK_STR(v, EVR_STORE_FORMAT);
    free(v);
    CHECK(evr_store_meta_set(st, "runner_id", "runner-a", &err) == EVR_OK);
    uint64_t last = 99;
    CHECK(evr_store_last_seq(st, &last, &err) == EVR_OK && last == 0);
    evr_store_destroy(&st);
    CHECK(st == NULL);
    /* reopen: values survive */
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
    CHECK(evr_store_meta_get(st, "runner_id", &v, &err) == EVR_OK);
    CHECK_STR(v, "runner-a");
    free(v);
    CHECK(evr_store_meta_get(st, "nothing", &v, &err) == EVR_ERR_NOTFOUND);
    CHECK(evr_store_meta_set(st, "x", "y", &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "read-only");
    evr_store_destroy(&st);

    /* a format this build does not read */
    CHECK(evr_stest_raw_put(dir, "meta", false, "format", 6, "evrun-store 99", 14));
    CHECK(evr_store_open(dir, EVR_STORE_SYNC, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "format \"evrun-store 99\", but this evrun reads \"evrun-store 1\": "
                   "a newer evrun wrote it; use that evrun (or a newer one) with this directory");
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "a newer evrun wrote it");
    /* one no evrun wrote: no such advice */
    CHECK(evr_stest_raw_put(dir, "meta", false, "format", 6, "evrun-store 0x", 14));
    CHECK(evr_store_open(dir, EVR_STORE_RDONLY, &st, &err) == EVR_ERR_STORE);
    CHECK(!strstr(err.msg, "newer") && strstr(err.msg, "format \"evrun-store 0x\""));

    /* a foreign LMDB environment */
    char *foreign = evr_stest_dir("foreign");
    mkdir(foreign, 0700);
    CHECK(evr_stest_raw_put(foreign, "accounts", true, NULL, 0, NULL, 0));
    CHECK(evr_store_open(foreign, EVR_STORE_RDONLY, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "not an evrun store");
    CHECK(evr_store_open(foreign, EVR_STORE_SYNC, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "not an evrun store");
    /* one with a `meta` database of its own and no format record: refused,
       and not written to (it was adopted: format put into its meta) */
    char *meta_only = evr_stest_dir("meta-only");
    mkdir(meta_only, 0700);
    CHECK(evr_stest_raw_put(meta_only, "meta", true, "owner", 5, "someone", 7));
    CHECK(evr_store_open(meta_only, EVR_STORE_SYNC, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "not an evrun store (a meta database without evrun's format");
    CHECK(!evr_stest_raw_put(meta_only, "events", false, NULL, 0, NULL, 0));   /* none made */
    CHECK(evr_store_open(meta_only, EVR_STORE_RDONLY, &st, &err) == EVR_ERR_STORE);
    free(meta_only);
    /* an LMDB environment nothing was committed to (a process killed
       before its first commit): read-only, no store yet, not a foreign one */
    char *fresh = evr_stest_dir("fresh");
    mkdir(fresh, 0700);
    MDB_env *env = NULL;
    CHECK(mdb_env_create(&env) == MDB_SUCCESS);
    CHECK(mdb_env_open(env, fresh, 0, 0600) == MDB_SUCCESS);
    mdb_env_close(env);
    CHECK(evr_store_open(fresh, EVR_STORE_RDONLY, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "no evrun store here (an empty LMDB environment");
    free(fresh);
    /* a directory without LMDB files, read-only */
    char *empty = evr_stest_dir("empty");
    mkdir(empty, 0700);
    CHECK(evr_store_open(empty, EVR_STORE_RDONLY, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "no evrun store here");
    /* a data.mdb that is no LMDB file (shorter than its meta pages): the
       message names the directory */
    char *junk = evr_asprintf("%s/data.mdb", empty);
    FILE *fp = fopen(junk, "w");
    fputs("not an lmdb file\n", fp);
    fclose(fp);
    CHECK(evr_store_open(empty, EVR_STORE_SYNC, &st, &err) == EVR_ERR_STORE);
    char *want = evr_asprintf("store: %s: data.mdb is 17 bytes, less than the two meta pages "
                              "of an LMDB file", empty);
    CHECK_CONTAINS(err.msg, want);
    free(want);
    free(junk);
    free(empty);
    free(foreign);
    free(dir);
}

/*  A store in a directory this user may not search, and a data.mdb that
    cannot be looked at (a link to itself): said as such, not "no evrun
    store here (no data.mdb)" (a reader was told no store was there). */
static void
test_unsearchable(void)
{
    char *dir = evr_stest_dir("locked");
    evr_store_t *st;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_SYNC, &st, &err) == EVR_OK);
    evr_store_destroy(&st);
    CHECK(chmod(dir, 0) == 0);
    CHECK(chmod(evr_stest_root, 0711) == 0);    /* the directory itself is the one refused */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {     /* root searches any directory: as nobody */
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
            perror("  setuid nobody");
            _exit(3);
        }
        evr_store_t *ro = NULL;
        evr_rc_t rc = evr_store_open(dir, EVR_STORE_RDONLY, &ro, &err);
        evr_store_destroy(&ro);
        bool said = rc == EVR_ERR_STORE && strstr(err.msg, "/data.mdb: Permission denied: run as "
                                                  "the user who owns the directory")
                 && !strstr(err.msg, "no evrun store here");
        if (!said)
            fprintf(stderr, "  said: %s\n", err.msg);
        _exit(said ? 0 : 1);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)
          && WEXITSTATUS(status) == 0);
    CHECK(chmod(dir, 0700) == 0 && chmod(evr_stest_root, 0700) == 0);
    char *loop = evr_stest_dir("loop");
    mkdir(loop, 0700);
    char *link = evr_asprintf("%s/data.mdb", loop);
    CHECK(symlink("data.mdb", link) == 0);
    CHECK(evr_store_open(loop, EVR_STORE_RDONLY, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "/data.mdb: Too many levels of symbolic links");
    CHECK(!strstr(err.msg, "no evrun store here"));
    free(link);
    free(loop);
    free(dir);
}

/*  A broker's store and a runner's say which they are (meta "kind"), and
    one is refused for the other, naming what it is; a store written
    before kinds were kept takes the kind of its first writer, unless it
    bears the other's mark (a broker's kv "journal/submits", a runner's
    meta "runner_id").  A reader or a writer saying no kind opens either. */
static void
test_kind(void)
{
    char *b = evr_stest_dir("kind-broker"), *r = evr_stest_dir("kind-runner");
    evr_store_t *st;
    evr_err_t err;
    char *v = NULL;
    CHECK(evr_store_open(b, EVR_STORE_BROKER, &st, &err) == EVR_OK);
    CHECK(evr_store_meta_get(st, "kind", &v, &err) == EVR_OK);
    CHECK_STR(v, "broker");
    free(v);
    evr_store_destroy(&st);
    CHECK(evr_store_open(b, EVR_STORE_RUNNER, &st, &err) == EVR_ERR_STORE);
    char *want = evr_asprintf("store: %s: a broker's event store, not a runner's: a runner "
                              "keeps a store of its own in its --state-dir", b);
    CHECK_CONTAINS(err.msg, want);
    free(want);
    CHECK(evr_store_open(b, EVR_STORE_BROKER, &st, &err) == EVR_OK);
    evr_store_destroy(&st);
    CHECK(evr_store_open(b, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
    evr_store_destroy(&st);
    CHECK(evr_store_open(r, EVR_STORE_RUNNER, &st, &err) == EVR_OK);
    evr_store_destroy(&st);
    CHECK(evr_store_open(r, EVR_STORE_BROKER, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "a runner's event store, not a broker's: the broker keeps its "
                            "store in STATE/broker");
    /* stores without a kind: the marks of the other kind, or none */
    char *ob = evr_stest_dir("old-broker"), *orr = evr_stest_dir("old-runner");
    char *plain = evr_stest_dir("old-plain");
    CHECK(evr_store_open(ob, EVR_STORE_SYNC, &st, &err) == EVR_OK);
    evr_store_destroy(&st);
    CHECK(evr_stest_raw_put(ob, "kv", false, "journal/submits", 15, "7", 1));
    CHECK(evr_store_open(ob, EVR_STORE_RUNNER, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "a broker's event store, not a runner's");
    CHECK(evr_store_open(ob, EVR_STORE_BROKER, &st, &err) == EVR_OK);
    evr_store_destroy(&st);
    CHECK(evr_store_open(orr, EVR_STORE_SYNC, &st, &err) == EVR_OK);
    CHECK(evr_store_meta_set(st, "runner_id", "r-1", &err) == EVR_OK);
    evr_store_destroy(&st);
    CHECK(evr_store_open(orr, EVR_STORE_BROKER, &st, &err) == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "a runner's event store, not a broker's");
    CHECK(evr_store_open(plain, EVR_STORE_SYNC, &st, &err) == EVR_OK);
    evr_store_destroy(&st);
    CHECK(evr_store_open(plain, EVR_STORE_RUNNER, &st, &err) == EVR_OK);
    CHECK(evr_store_meta_get(st, "kind", &v, &err) == EVR_OK);
    CHECK_STR(v, "runner");
    free(v);
    evr_store_destroy(&st);
    free(ob);
    free(orr);
    free(plain);
    free(b);
    free(r);
}

/*  EVR_STORE_NOMARK (evrun-runner --prune --dry-run): the open writes
    nothing, neither the kind of an older store without one (recorded
    before) nor a new store where there is none (made before); the other
    kind is still refused. */
static void
test_nomark(void)
{
    char *old = evr_stest_dir("nomark-old"), *empty = evr_stest_dir("nomark-empty");
    evr_store_t *st;
    evr_err_t err;
    char *v = NULL;
    CHECK(evr_store_open(old, EVR_STORE_SYNC, &st, &err) == EVR_OK);   /* no kind */
    evr_store_destroy(&st);
    CHECK(evr_store_open(old, EVR_STORE_RUNNER | EVR_STORE_NOMARK, &st, &err) == EVR_OK);
    evr_store_destroy(&st);
    CHECK(evr_store_open(old, EVR_STORE_RDONLY, &st, &err) == EVR_OK);
    CHECK(evr_store_meta_get(st, "kind", &v, &err) == EVR_ERR_NOTFOUND);
    free(v);
    v = NULL;
    evr_store_destroy(&st);
    /* a store of the other kind: refused all the same */
    CHECK(evr_store_open(old, EVR_STORE_BROKER, &st, &err) == EVR_OK);
    evr_store_destroy(&st);
    CHECK(evr_store_open(old, EVR_STORE_RUNNER | EVR_STORE_NOMARK, &st, &err)
          == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "a broker's event store, not a runner's");
    /* no store: refused, nothing made */
    CHECK(mkdir(empty, 0700) == 0);
    CHECK(evr_store_open(empty, EVR_STORE_RUNNER | EVR_STORE_NOMARK, &st, &err)
          == EVR_ERR_STORE);
    CHECK_CONTAINS(err.msg, "no evrun store here (no data.mdb)");
    char *data = evr_asprintf("%s/data.mdb", empty), *lock = evr_asprintf("%s/lock.mdb", empty);
    struct stat sb;
    CHECK(stat(data, &sb) != 0 && stat(lock, &sb) != 0);
    free(data);
    free(lock);
    free(old);
    free(empty);
}

int
main(void)
{
    if (!evr_stest_begin("store-open"))
        return 1;
    EVR_TEST_RUN(test_open);
    EVR_TEST_RUN(test_kind);
    EVR_TEST_RUN(test_nomark);
    EVR_TEST_RUN(test_unsearchable);
    evr_stest_rm_rf(evr_stest_root);
    EVR_TEST_END();
}
