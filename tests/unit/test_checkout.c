/*  test_checkout.c: evr_source: a directory made into a tar (.evrunignore,
    limits, links), the cache's paths, a git checkout through the loop
    against a repository this test makes with the git command (and one
    with a submodule, its tars merged off the loop), and the
    cache kept under its cap (least recently used first, one in use kept,
    no link followed). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_loopfifo.h"
#include "evr_source.h"
#include "evr_artifact.h"
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

/*  A .evrunignore past what is read (256 patterns, lines of 1023 bytes)
    is refused: the patterns after the 256th were dropped unsaid, and a
    longer line read as two, so what they left out (a file of secrets)
    was sent. */
static void
test_copy_ignore_limits(void)
{
    char dir[300], tar[300], cmd[1024];
    snprintf(dir, sizeof dir, "%s/ign", s_tmp);
    snprintf(tar, sizeof tar, "%s/ign.tar", s_tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cd %s && echo k > .env && "
             "{ echo '# many'; seq 1 255 | sed 's/^/p/'; echo .env; } > .evrunignore", dir, dir);
    CHECK(system(cmd) == 0);   /* 256 patterns and a comment: read whole */
    uint64_t bytes;
    evr_err_t err;
    CHECK(evr_source_copy_tar(dir, "", 1 << 20, 0, tar, &bytes, &err) == EVR_OK);
    char *names = s_names(tar);
    CHECK(strstr(names, ".env") == NULL && strstr(names, ".evrunignore\n") != NULL);
    free(names);
    snprintf(cmd, sizeof cmd, "cd %s && { seq 1 256 | sed 's/^/p/'; echo .env; } > .evrunignore",
             dir);
    CHECK(system(cmd) == 0);
    CHECK(evr_source_copy_tar(dir, "", 1 << 20, 0, tar, &bytes, &err) == EVR_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "/.evrunignore: more than 256 patterns (at line 257): join some "
                            "with a shell glob");
    CHECK(access(tar, F_OK) != 0);
    snprintf(cmd, sizeof cmd, "cd %s && { head -c 1500 /dev/zero | tr '\\0' a; echo; "
             "echo .env; } > .evrunignore", dir);
    CHECK(system(cmd) == 0);
    CHECK(evr_source_copy_tar(dir, "", 1 << 20, 0, tar, &bytes, &err) == EVR_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "/.evrunignore: line 1 is over 1023 bytes");
    CHECK(access(tar, F_OK) != 0);
}

/*  A copy sent to a runner holds at most what a runner unpacks of one
    (EVR_ARTIFACT_MAX_ENTRIES files and directories): the client refuses
    more before sending (it was sent, and the job failed at the runner);
    a runner's own copy (--exec, no flag) is not unpacked and takes them. */
static void
test_copy_entries(void)
{
    char dir[300], tar[300], cmd[1024];
    snprintf(dir, sizeof dir, "%s/many", s_tmp);
    snprintf(tar, sizeof tar, "%s/many.tar", s_tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/d && cd %s/d && seq 1 %d | xargs touch", dir, dir,
             EVR_ARTIFACT_MAX_ENTRIES - 1);
    CHECK(system(cmd) == 0);   /* with d itself: the most */
    uint64_t bytes;
    evr_err_t err;
    unsigned sent = EVR_SOURCE_GZIP | EVR_SOURCE_NO_LINKS | EVR_SOURCE_MAX_ENTRIES;
    CHECK(evr_source_copy_tar(dir, "", 1 << 20, sent, tar, &bytes, &err) == EVR_OK);
    snprintf(cmd, sizeof cmd, "touch %s/one-more", dir);
    CHECK(system(cmd) == 0);
    CHECK(evr_source_copy_tar(dir, "", 1 << 20, sent, tar, &bytes, &err) == EVR_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "more than 10000 files and directories, which a runner does not "
                            "unpack (leave some out with .evrunignore, or use git:)");
    CHECK(access(tar, F_OK) != 0);
    CHECK(evr_source_copy_tar(dir, "", 1 << 20, 0, tar, &bytes, &err) == EVR_OK);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
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
    /* no such repository: git's fatal line says so, not the advice after it */
    g = s_checkout(loop, "file:///nonexistent/evr-repo.git", "main", tar);
    CHECK(g.rc == EVR_ERR_IO);
    CHECK(strstr(g.msg, "fetching file:///nonexistent/evr-repo.git failed: fatal: ") != NULL);
    CHECK(strstr(g.msg, "'/nonexistent/evr-repo.git' does not appear to be a git repository")
          != NULL);
    if (evr_test_failed)
        fprintf(stderr, "  message: %s\n", g.msg);
    /* a cancel kills the child and returns without waiting for it (one in
       uninterruptible sleep would hold the loop up: it waited in
       waitpid): the loop reaps it; no callback, no child left */
    char cache[300];
    snprintf(cache, sizeof cache, "%s/cache", s_tmp);
    evr_git_t git = { .present = true, .url = url, .ref = "main" };
    evr_source_git_opts_t o = { .cache_dir = cache, .git = &git, .prefix = "",
                                .tar_out = tar, .max_bytes = 1 << 20 };
    s_got_t c = { 0 };
    evr_source_req_t *req = evr_source_git_start(loop, &o, s_on_checkout, &c);
    evr_source_cancel(&req);
    CHECK(req == NULL);
    siginfo_t si;
    CHECK(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0);   /* not reaped yet */
    for (int i = 0; i < 500 && waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0; i++)
        evr_loop_once(loop, 10);
    CHECK(!c.done);
    CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
    evr_loop_destroy(&loop);
}

/* ------------------------------------------- submodules merged off the loop */

/*  What the merge wrote into the FIFO a test put at TAR.merged, drained
    from the loop into a file; eof once the writer closed it. */
typedef struct {
    int fd;
    FILE *to;
    uint64_t bytes;
    bool eof, once;     /* once: stop watching after the first bytes */
} s_drain_t;

static void
s_drain(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) events;
    s_drain_t *d = arg;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0)
        return;
    if (n > 0) {
        d->bytes += (uint64_t) n;
        if (d->to)
            fwrite(buf, 1, (size_t) n, d->to);
        if (d->once)
            evr_loop_fd_remove(loop, fd);
        return;
    }
    d->eof = true;
    evr_loop_fd_remove(loop, fd);
}

/*  A FIFO at TAR.merged (the merge's temporary file), its reading end
    opened and watched on the loop: the merge's writes then go through a
    pipe that only the loop empties.  A merge on the loop itself would
    fill it and wait for the loop forever. */
static void
s_drain_start(evr_loop_t *loop, const char *tar, s_drain_t *d)
{
    char fifo[400];
    snprintf(fifo, sizeof fifo, "%s.merged", tar);
    CHECK(mkfifo(fifo, 0600) == 0);
    d->fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    CHECK(d->fd >= 0);
    CHECK(evr_loop_fd_add(loop, d->fd, EVR_LOOP_READ, s_drain, d) == EVR_OK);
}

/*  Whether this process has no child, reaped or not (it reaps none). */
static bool
s_no_child(void)
{
    siginfo_t si;
    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

/*  Whether any file named TAR.* is left. */
static bool
s_leftovers(const char *tar)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -d %s.* > /dev/null 2>&1", tar);
    return system(cmd) == 0;
}

/*  A commit with a submodule holding 1 MB: the commit's tar and the
    submodule's are merged in a child process (evr_offload.h), never on
    the loop: the loop drains the merge's output while it runs; a cancel
    during the merge, or the checkout's time limit, stops it and leaves
    no temporary file. */
static void
test_git_submodules(void)
{
    char cmd[2048], url[300], tar[300], out[300];
    snprintf(cmd, sizeof cmd,
             "set -e; cd %s; g='git -c user.email=t@t -c user.name=t'; "
             "git init -q -b main sub; cd sub; head -c 1048576 /dev/zero > big; "
             "$g add big; $g commit -qm s; cd ..; git init -q -b main sup; cd sup; "
             "echo top > top.txt; printf x > \"$(printf 'r\\351s.txt')\"; "
             "$g -c protocol.file.allow=always submodule -q add "
             "file://%s/sub lib/sub; $g add .; $g commit -qm sup", s_tmp, s_tmp);
    CHECK(system(cmd) == 0);
    snprintf(url, sizeof url, "file://%s/sup", s_tmp);
    snprintf(tar, sizeof tar, "%s/sm.tar", s_tmp);
    snprintf(out, sizeof out, "%s/drained.tar", s_tmp);
    char cache[300];
    snprintf(cache, sizeof cache, "%s/cache", s_tmp);
    evr_git_t git = { .present = true, .url = url, .ref = "main", .submodules = true };
    evr_source_git_opts_t o = { .cache_dir = cache, .git = &git, .prefix = "src/",
                                .tar_out = tar, .max_bytes = 16 << 20 };
    evr_loop_t *loop = evr_loop_new();
    evr_loopfifo_guard("test_checkout: the loop stopped turning while the submodules' tars "
                       "were merged (the merge ran on the loop)");
    s_drain_t d = { .fd = -1, .to = fopen(out, "w") };
    s_drain_start(loop, tar, &d);
    s_got_t g = { 0 };
    evr_source_req_t *req = evr_source_git_start(loop, &o, s_on_checkout, &g);
    for (int i = 0; i < 3000 && !g.done; i++)
        evr_loop_once(loop, 10);
    for (int i = 0; i < 100 && !d.eof; i++)
        evr_loop_once(loop, 10);
    CHECK(g.done && g.rc == EVR_OK);
    if (g.rc)
        fprintf(stderr, "  %s\n", g.msg);
    CHECK(d.eof && d.bytes > 1048576);
    fclose(d.to);
    close(d.fd);
    char *names = s_names(out);
    CHECK(strstr(names, "src/top.txt\n") != NULL);
    CHECK(strstr(names, "src/lib/sub/big\n") != NULL);
    /* a name that is not UTF-8 (Latin-1 r\xe9s.txt) merged as git wrote
       it, as a checkout without submodules is: it failed the merge
       ("Can't translate pathname") */
    CHECK(strstr(names, "src/r\xe9s.txt\n") != NULL);
    free(names);
    unlink(tar);
    CHECK(!s_leftovers(tar));
    /* the limit holds for the trees together: the commit's (10 KiB) and
       its submodule's (1 MiB and a bit) each fit 1060000 bytes, both not
       (each tree was checked alone: n submodules took n times the limit) */
    o.max_bytes = 1060000;
    g = (s_got_t) { 0 };
    req = evr_source_git_start(loop, &o, s_on_checkout, &g);
    for (int i = 0; i < 3000 && !g.done; i++)
        evr_loop_once(loop, 10);
    CHECK(g.done && g.rc == EVR_ERR_LIMIT);
    CHECK_CONTAINS(g.msg, "the tree is over the limit of 1060000 bytes");
    CHECK(!s_leftovers(tar) && access(tar, F_OK) != 0);
    o.max_bytes = 16 << 20;
    /* cancelled while the merge runs (it has written, and waits for the
       pipe to be emptied): no callback, no child left, no file */
    d = (s_drain_t) { .fd = -1, .once = true };
    s_drain_start(loop, tar, &d);
    g = (s_got_t) { 0 };
    req = evr_source_git_start(loop, &o, s_on_checkout, &g);
    for (int i = 0; i < 3000 && !d.bytes; i++)
        evr_loop_once(loop, 10);
    CHECK(d.bytes > 0 && !g.done);
    evr_source_cancel(&req);
    CHECK(req == NULL);
    unlink(tar);   /* as its caller does */
    for (int i = 0; i < 500 && !s_no_child(); i++)
        evr_loop_once(loop, 10);
    CHECK(s_no_child());   /* reaped, from the loop */
    for (int i = 0; i < 5; i++)
        evr_loop_once(loop, 10);
    CHECK(!g.done);
    CHECK(!s_leftovers(tar));
    close(d.fd);
    /* a merge that outlasts the checkout's time limit (nothing reads
       what it writes): ended as a checkout that took too long is */
    char fifo[400];
    snprintf(fifo, sizeof fifo, "%s.merged", tar);
    CHECK(mkfifo(fifo, 0600) == 0);
    o.timeout_ms = 3000;
    g = (s_got_t) { 0 };
    req = evr_source_git_start(loop, &o, s_on_checkout, &g);
    for (int i = 0; i < 1000 && !g.done; i++)
        evr_loop_once(loop, 10);
    CHECK(g.done && g.rc == EVR_ERR_IO);
    CHECK_CONTAINS(g.msg, "took longer than its time limit (3 s)");
    for (int i = 0; i < 500 && !s_no_child(); i++)
        evr_loop_once(loop, 10);
    CHECK(s_no_child());
    CHECK(!s_leftovers(tar) && access(tar, F_OK) != 0);
    evr_loopfifo_guard(NULL);
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
    /* released, c is the oldest: it goes first; what a removal cut short
       left (renamed aside) goes too, not counted */
    close(fd);
    s_entry(dir, ".rm-d.git-1", 3000, 10);
    gone = evr_source_cache_trim(dir, 3000, &n);
    CHECK(!s_exists(dir, ".rm-d.git-1"));
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
    evr_source_locale();   /* as evrun-runner */
    EVR_TEST_RUN(test_copy_ignore);
    EVR_TEST_RUN(test_copy_entries);
    EVR_TEST_RUN(test_copy_ignore_limits);
    EVR_TEST_RUN(test_cache_path);
    EVR_TEST_RUN(test_git);
    EVR_TEST_RUN(test_git_submodules);
    EVR_TEST_RUN(test_cache_trim);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "test_checkout: could not remove %s\n", s_tmp);
    EVR_TEST_END();
}
