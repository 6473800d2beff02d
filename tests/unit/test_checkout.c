/*  test_checkout.c: evr_source: a directory made into a tar (.evrunignore,
    limits, links), the cache's paths, a git checkout through the loop
    against a repository this test makes with the git command, and the
    cache kept under its cap (least recently used first, one in use kept,
    no link followed). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_source.h"
#include "evr_test.h"

static char s_tmp[256];

static void
s_write(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", s_tmp, rel);
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

/*  The entry names of a tar, one per line ("name\n" each, in order). */
static char *
s_names(const char *tar)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    archive_read_support_filter_all(a);
    size_t cap = 4096, n = 0;
    char *out = calloc(1, cap);
    struct archive_entry *e;
    if (archive_read_open_filename(a, tar, 10240) == ARCHIVE_OK)
        while (archive_read_next_header(a, &e) == ARCHIVE_OK)
            n += (size_t) snprintf(out + n, cap - n, "%s%s\n", archive_entry_pathname(e),
                                   archive_entry_filetype(e) == AE_IFLNK ? " (link)" : "");
    archive_read_free(a);
    return out;
}

static void
test_copy_ignore(void)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/d/keep %s/d/build/x %s/d/.git %s/d/sub", s_tmp, s_tmp,
             s_tmp, s_tmp);
    CHECK(system(cmd) == 0);
    s_write("d/keep/a.txt", "a");
    s_write("d/build/x/o.o", "o");
    s_write("d/debug.log", "l");
    s_write("d/sub/debug.log", "l");
    s_write("d/top", "t");
    s_write("d/sub/top", "t");
    s_write("d/.git/HEAD", "h");
    s_write("d/.evrunignore", "# comment\n\n  *.log  \nbuild/\n/top\n");
    snprintf(cmd, sizeof cmd, "ln -s keep/a.txt %s/d/link", s_tmp);
    CHECK(system(cmd) == 0);
    char dir[300], tar[300];
    snprintf(dir, sizeof dir, "%s/d", s_tmp);
    snprintf(tar, sizeof tar, "%s/d.tar", s_tmp);
    uint64_t bytes = 0;
    evr_err_t err;
    CHECK(evr_source_copy_tar(dir, "src/", 1 << 20, 0, tar, &bytes, &err) == EVR_OK);
    CHECK(bytes > 0);
    char *names = s_names(tar);
    CHECK(strstr(names, "src/\n") != NULL);
    CHECK(strstr(names, "src/keep/a.txt\n") != NULL);
    CHECK(strstr(names, "src/sub/top\n") != NULL);       /* "/top": the root's only */
    CHECK(strstr(names, "src/link (link)\n") != NULL);
    CHECK(strstr(names, "src/.evrunignore\n") != NULL);
    CHECK(strstr(names, "build") == NULL);
    CHECK(strstr(names, ".log") == NULL);
    CHECK(strstr(names, ".git") == NULL);
    CHECK(strstr(names, "src/top\n") == NULL);
    if (evr_test_failed)
        fprintf(stderr, "  entries:\n%s", names);
    free(names);
    /* no links wanted: the link named */
    CHECK(evr_source_copy_tar(dir, "", 1 << 20, EVR_SOURCE_NO_LINKS | EVR_SOURCE_GZIP, tar,
                              &bytes, &err) == EVR_ERR_IO);
    CHECK(strstr(err.msg, "link is a symbolic link") != NULL);
    CHECK(access(tar, F_OK) != 0);   /* removed */
    /* over the limit: the limit named, nothing left */
    s_write("d/keep/big", "0123456789abcdef0123456789abcdef");
    CHECK(evr_source_copy_tar(dir, "", 16, 0, tar, &bytes, &err) == EVR_ERR_LIMIT);
    CHECK(strstr(err.msg, "over the limit of 16 bytes") != NULL);
    CHECK(access(tar, F_OK) != 0);
    /* not there, not a directory */
    snprintf(dir, sizeof dir, "%s/nothing", s_tmp);
    CHECK(evr_source_copy_tar(dir, "", 16, 0, tar, &bytes, &err) == EVR_ERR_IO);
    CHECK(strstr(err.msg, "No such file or directory") != NULL);
    snprintf(dir, sizeof dir, "%s/d/top", s_tmp);
    CHECK(evr_source_copy_tar(dir, "", 16, 0, tar, &bytes, &err) == EVR_ERR_IO);
    CHECK(strstr(err.msg, "not a directory") != NULL);
}

static void
test_cache_path(void)
{
    char *a = evr_source_cache_path("/c", "https://example.org/a/b.git");
    char *b = evr_source_cache_path("/c", "https://example.org/a/b.git");
    char *c = evr_source_cache_path("/c", "https://example.org/a/c.git");
    CHECK_STR(a, b);
    CHECK(strcmp(a, c) != 0);
    CHECK(strncmp(a, "/c/example.org_a_b.git-", 23) == 0);
    CHECK(strchr(a + 3, '/') == NULL);
    free(a);
    free(b);
    free(c);
}

typedef struct {
    bool done;
    evr_rc_t rc;
    char msg[1024];
    char commit[72];
    uint64_t objects;
} s_got_t;

static void
s_on_checkout(const evr_source_result_t *r, void *arg)
{
    s_got_t *g = arg;
    g->done = true;
    g->rc = r->rc;
    snprintf(g->msg, sizeof g->msg, "%s", r->msg);
    snprintf(g->commit, sizeof g->commit, "%s", r->commit ? r->commit : "");
    g->objects = r->objects;
}

static s_got_t
s_checkout(evr_loop_t *loop, const char *url, const char *ref, const char *tar)
{
    char cache[300];
    snprintf(cache, sizeof cache, "%s/cache", s_tmp);
    evr_git_t git = { .present = true, .url = (char *) url, .ref = (char *) ref };
    evr_source_git_opts_t o = { .cache_dir = cache, .git = &git, .prefix = "src/",
                                .tar_out = tar, .max_bytes = 1 << 20 };
    s_got_t g = { 0 };
    evr_source_req_t *req = evr_source_git_start(loop, &o, s_on_checkout, &g);
    CHECK(req != NULL);
    for (int i = 0; i < 3000 && !g.done; i++)
        evr_loop_once(loop, 10);
    CHECK(g.done);
    return g;
}

static void
test_git(void)
{
    char cmd[2048], url[300], tar[300];
    snprintf(cmd, sizeof cmd,
             "set -e; cd %s; git init -q -b main r; cd r; echo one > f; git add f; "
             "git -c user.email=t@t -c user.name=t commit -qm one; git rev-parse HEAD > ../sha",
             s_tmp);
    CHECK(system(cmd) == 0);
    snprintf(url, sizeof url, "file://%s/r", s_tmp);
    snprintf(tar, sizeof tar, "%s/git.tar", s_tmp);
    char sha[64] = "";
    snprintf(cmd, sizeof cmd, "%s/sha", s_tmp);
    FILE *fp = fopen(cmd, "r");
    CHECK(fp && fscanf(fp, "%63s", sha) == 1);
    if (fp)
        fclose(fp);
    evr_loop_t *loop = evr_loop_new();
    s_got_t g = s_checkout(loop, url, "main", tar);
    CHECK(g.rc == EVR_OK);
    CHECK_STR(g.commit, sha);
    CHECK(g.objects == 3);   /* commit, tree, blob */
    char *names = s_names(tar);
    CHECK(strstr(names, "src/f\n") != NULL);
    free(names);
    g = s_checkout(loop, url, sha, tar);   /* by SHA, from the cache */
    CHECK(g.rc == EVR_OK);
    CHECK(g.objects == 0);
    g = s_checkout(loop, url, "nope", tar);
    CHECK(g.rc == EVR_ERR_IO);
    CHECK(strstr(g.msg, "ref \"nope\" is not in file://") != NULL);
    CHECK(strstr(g.msg, "couldn't find remote ref nope") != NULL);
    CHECK(access(tar, F_OK) != 0);
    /* a cancel kills and reaps the child: no callback, no child left */
    char cache[300];
    snprintf(cache, sizeof cache, "%s/cache", s_tmp);
    evr_git_t git = { .present = true, .url = url, .ref = "main" };
    evr_source_git_opts_t o = { .cache_dir = cache, .git = &git, .prefix = "",
                                .tar_out = tar, .max_bytes = 1 << 20 };
    s_got_t c = { 0 };
    evr_source_req_t *req = evr_source_git_start(loop, &o, s_on_checkout, &c);
    evr_source_cancel(&req);
    CHECK(req == NULL);
    for (int i = 0; i < 5; i++)
        evr_loop_once(loop, 10);
    CHECK(!c.done);
    CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
    evr_loop_destroy(&loop);
}

/*  An entry of the cache trim test: a directory of `bytes` bytes whose
    last use is `when` (seconds since the epoch). */
static void
s_entry(const char *dir, const char *name, size_t bytes, time_t when)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(mkdir(path, 0700) == 0);
    char file[600];
    snprintf(file, sizeof file, "%s/pack", path);
    FILE *fp = fopen(file, "w");
    CHECK(fp != NULL);
    for (size_t i = 0; fp && i < bytes; i++)
        fputc('x', fp);
    if (fp)
        fclose(fp);
    struct timespec ts[2] = { { when, 0 }, { when, 0 } };
    CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
}

static bool
s_exists(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static void
test_cache_trim(void)
{
    char dir[300], outside[300], lock[400];
    snprintf(dir, sizeof dir, "%s/trim", s_tmp);
    snprintf(outside, sizeof outside, "%s/outside.git", s_tmp);
    CHECK(mkdir(dir, 0700) == 0);
    s_entry(dir, "c.git", 3000, 100);        /* the oldest, but in use */
    s_entry(dir, "a.git", 3000, 200);
    s_entry(dir, "sub-x.git", 3000, 300);
    s_entry(dir, "b.git", 3000, 400);
    s_entry(s_tmp, "outside.git", 3000, 50); /* reached by a link: not an entry */
    char link[400];
    snprintf(link, sizeof link, "%s/link.git", dir);
    CHECK(symlink(outside, link) == 0);
    snprintf(lock, sizeof lock, "%s/c.git.lock", dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0);
    uint32_t n = 0;
    /* under the cap: nothing goes */
    char **gone = evr_source_cache_trim(dir, 12000, &n);
    CHECK(n == 0 && gone == NULL);
    /* 12000 bytes over 7000: a (200) and sub-x (300) go; c is in use */
    gone = evr_source_cache_trim(dir, 7000, &n);
    CHECK(n == 2);
    if (n == 2) {
        CHECK_STR(gone[0], "a.git");
        CHECK_STR(gone[1], "sub-x.git");
    }
    for (uint32_t i = 0; i < n; i++)
        free(gone[i]);
    free(gone);
    CHECK(!s_exists(dir, "a.git") && !s_exists(dir, "a.git.lock"));
    CHECK(!s_exists(dir, "sub-x.git"));
    CHECK(s_exists(dir, "c.git") && s_exists(dir, "b.git") && s_exists(dir, "link.git"));
    CHECK(s_exists(s_tmp, "outside.git/pack"));
    /* released, c is the oldest: it goes first */
    close(fd);
    gone = evr_source_cache_trim(dir, 3000, &n);
    CHECK(n == 1 && gone && !strcmp(gone[0], "c.git"));
    for (uint32_t i = 0; i < n; i++)
        free(gone[i]);
    free(gone);
    CHECK(s_exists(dir, "b.git"));
    /* a missing directory: nothing, no error */
    CHECK(evr_source_cache_trim("/nonexistent/evr-trim", 0, &n) == NULL && n == 0);
}

int
main(void)
{
    snprintf(s_tmp, sizeof s_tmp, "/tmp/evr-test-checkout-XXXXXX");
    if (!mkdtemp(s_tmp))
        return 2;
    EVR_TEST_RUN(test_copy_ignore);
    EVR_TEST_RUN(test_cache_path);
    EVR_TEST_RUN(test_git);
    EVR_TEST_RUN(test_cache_trim);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "test_checkout: could not remove %s\n", s_tmp);
    EVR_TEST_END();
}
