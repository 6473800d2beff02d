/*  test_artifact: tar streams unpacked into directories (artifacts):
    limits checked before bytes are written, and nothing of a failed
    unpack left behind.  The tar for /workspace (resources):
    test_resource.c. */
#define _XOPEN_SOURCE 700   /* nftw, mkdtemp */
#include "evr_artifact.h"
#include "evr_test.h"
#include "evr_atest.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static void
test_unpack_ok(void)
{
    char tar[128], dest[128];
    snprintf(tar, sizeof tar, "%s/ok.tar", s_dir);
    snprintf(dest, sizeof dest, "%s/ok", s_dir);
    const char *names[] = { "out/a.txt", "out/sub/b.txt" };
    const size_t sizes[] = { 100, 2000 };
    s_tar(tar, names, sizes, 2);
    uint32_t files = 0;
    evr_err_t err;
    CHECK(evr_artifact_unpack(tar, dest, 2100, &files, &err) == EVR_OK);
    CHECK(files == 2);
    CHECK(s_files_under(dest) == 2);
}

/*  An artifact's FIFOs and devices are left out, each named (they were
    dropped unsaid), the files around them kept. */
static void
test_unpack_list_names_specials(void)
{
    char tar[128], dest[128];
    snprintf(tar, sizeof tar, "%s/special.tar", s_dir);
    snprintf(dest, sizeof dest, "%s/special", s_dir);
    static const struct { const char *name; mode_t type; } ents[] = {
        { "out/a.txt", AE_IFREG }, { "out/fifo", AE_IFIFO }, { "out/null", AE_IFCHR },
        { "out/sub/b.txt", AE_IFREG },
    };
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open_filename(a, tar);
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, ents[i].name);
        archive_entry_set_filetype(e, ents[i].type);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, ents[i].type == AE_IFREG ? 3 : 0);
        archive_write_header(a, e);
        if (ents[i].type == AE_IFREG)
            archive_write_data(a, "abc", 3);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    evr_artifact_list_t list = { 0 };
    evr_err_t err = { 0 };
    CHECK(evr_artifact_unpack_list(tar, dest, 1 << 20, 1 << 20, "out", &list, &err) == EVR_OK);
    CHECK(list.n == 2 && list.nlinks == 0);
    CHECK(list.nspecials == 2);
    if (list.nspecials == 2) {
        CHECK_STR(list.specials[0], "out/fifo");
        CHECK_STR(list.specials[1], "out/null");
    }
    CHECK(s_files_under(dest) == 2);
    evr_artifact_list_free(&list);
}

/*  A workspace's unpack (the process executor's put of a resource) keeps
    each entry's permission bits as podman's does: an executable stays
    one (every file was 0644: a tool from a tarball failed with "Permission
    denied"), a private file private, setuid dropped, a read-only
    directory read-only once filled. */
static void
test_unpack_keeps_modes(void)
{
    char tar[128], dest[128], p[256];
    snprintf(tar, sizeof tar, "%s/modes.tar", s_dir);
    snprintf(dest, sizeof dest, "%s/modes", s_dir);
    static const struct { const char *name; mode_t type, perm; } ents[] = {
        { "t/ro", AE_IFDIR, 0555 },        { "t/ro/run.sh", AE_IFREG, 0755 },
        { "t/key", AE_IFREG, 0600 },       { "t/suid", AE_IFREG, 04755 },
        { "t/plain", AE_IFREG, 0644 },
    };
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open_filename(a, tar);
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, ents[i].name);
        archive_entry_set_filetype(e, ents[i].type);
        archive_entry_set_perm(e, ents[i].perm);
        archive_entry_set_size(e, ents[i].type == AE_IFREG ? 3 : 0);
        archive_write_header(a, e);
        if (ents[i].type == AE_IFREG)
            archive_write_data(a, "abc", 3);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    uint32_t files = 0;
    evr_err_t err;
    CHECK(evr_artifact_unpack(tar, dest, 1 << 20, &files, &err) == EVR_OK);
    CHECK(files == 4);
    struct stat sb;
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dest, ents[i].name);
        CHECK(stat(p, &sb) == 0);
        CHECK((sb.st_mode & 07777) == (ents[i].perm & 0777));
    }
    snprintf(p, sizeof p, "%s/t/ro", dest);
    chmod(p, 0755);   /* removable by the cleanup, whoever runs it */
}

/*  The list: each file with its size and sha256; the job's room checked
    before anything is written. */
static void
test_unpack_list(void)
{
    char tar[128], dest[128];
    snprintf(tar, sizeof tar, "%s/list.tar", s_dir);
    snprintf(dest, sizeof dest, "%s/list", s_dir);
    const char *names[] = { "out/a.txt", "out/sub/b.txt" };
    const size_t sizes[] = { 3, 0 };
    s_tar(tar, names, sizes, 2);
    evr_artifact_list_t list = { 0 };
    evr_err_t err;
    CHECK(evr_artifact_unpack_list(tar, dest, 100, 2, "out", &list, &err) == EVR_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "3 bytes of files, over the room of 2 bytes");
    CHECK(list.n == 0 && s_files_under(dest) == 0);
    CHECK(evr_artifact_unpack_list(tar, dest, 100, 3, "out", &list, &err) == EVR_OK);
    CHECK(list.n == 2);
    if (list.n == 2) {
        CHECK_STR(list.v[0].path, "out/a.txt");
        CHECK(list.v[0].size == 3);
        /* printf xxx | sha256sum */
        CHECK_STR(list.v[0].sha256,
                  "cd2eb0837c9b4c962c22d2ff8b5441b7b45805887f051d39bf133b583baf6860");
        CHECK_STR(list.v[1].path, "out/sub/b.txt");
        CHECK(list.v[1].size == 0);
        CHECK_STR(list.v[1].sha256,
                  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
    evr_artifact_list_free(&list);
}

static void
test_unpack_over_limit_writes_nothing(void)
{
    char tar[128], dest[128];
    snprintf(tar, sizeof tar, "%s/big.tar", s_dir);
    snprintf(dest, sizeof dest, "%s/big", s_dir);
    const char *names[] = { "out/a.txt", "out/b.txt" };
    const size_t sizes[] = { 1000, 3000 };
    s_tar(tar, names, sizes, 2);
    uint32_t files = 9;
    evr_err_t err;
    CHECK(evr_artifact_unpack(tar, dest, 2048, &files, &err) == EVR_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "over the limit of 2048 bytes");
    CHECK(files == 0);
    CHECK(s_files_under(dest) == 0);   /* not even the first file, under the limit */
}

static void
test_unpack_link_leaves_nothing(void)
{
    char tar[128], dest[128];
    snprintf(tar, sizeof tar, "%s/link.tar", s_dir);
    snprintf(dest, sizeof dest, "%s/link", s_dir);
    const char *names[] = { "out/a.txt", "out/sub/b.txt", "out/z->a.txt" };
    const size_t sizes[] = { 10, 10, 0 };
    s_tar(tar, names, sizes, 3);
    uint32_t files = 0;
    evr_err_t err;
    CHECK(evr_artifact_unpack(tar, dest, 1 << 20, &files, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "entry \"out/z\": symbolic links are not copied out");
    CHECK(s_files_under(dest) == 0);
}

/*  An artifact's symbolic links are left out and named, the rest kept;
    none is made or followed.  A hard link is a copy of the file it names
    (the tar holds that file's bytes once), left out when that is no file
    of this unpack. */
static void
test_unpack_list_leaves_links_out(void)
{
    char tar[128], dest[128], path[192];
    snprintf(tar, sizeof tar, "%s/artlink.tar", s_dir);
    snprintf(dest, sizeof dest, "%s/artlink", s_dir);
    const char *names[] = { "out/a.txt", "out/rel->a.txt", "out/pw->/etc/passwd",
                            "out/h=>out/a.txt", "out/h2=>out/rel", "out/sub/b.txt" };
    const size_t sizes[] = { 10, 0, 0, 0, 0, 4 };
    s_tar(tar, names, sizes, 6);
    evr_artifact_list_t list = { 0 };
    evr_err_t err = { 0 };
    CHECK(evr_artifact_unpack_list(tar, dest, 1 << 20, 1 << 20, "out", &list, &err) == EVR_OK);
    CHECK(list.n == 3);
    if (list.n == 3) {
        CHECK_STR(list.v[1].path, "out/h");
        CHECK(list.v[1].size == 10);
        CHECK_STR(list.v[1].sha256, list.v[0].sha256);
    }
    CHECK(list.nlinks == 3);
    if (list.nlinks == 3) {
        CHECK_STR(list.links[0], "out/rel");
        CHECK_STR(list.links[1], "out/pw");
        CHECK_STR(list.links[2], "out/h2");
    }
    CHECK(s_files_under(dest) == 3);
    struct stat sb;
    snprintf(path, sizeof path, "%s/out/rel", dest);
    CHECK(lstat(path, &sb) != 0);
    snprintf(path, sizeof path, "%s/out/pw", dest);
    CHECK(lstat(path, &sb) != 0);
    snprintf(path, sizeof path, "%s/out/h", dest);
    CHECK(lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_nlink == 1 && sb.st_size == 10);
    evr_artifact_list_free(&list);
    /* the copies count against the job's room: over it, nothing kept */
    CHECK(evr_artifact_unpack_list(tar, dest, 1 << 20, 16, "out", &list, &err)
          == EVR_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "over the room of 16 bytes");
    CHECK(list.n == 0);
    evr_artifact_list_free(&list);
}

/*  The artifact's own path a link: refused, nothing written; a link
    entry at the top, or (as podman copies one) entries named otherwise. */
static void
test_unpack_list_path_a_link(void)
{
    char tar[128], dest[128];
    snprintf(tar, sizeof tar, "%s/toplink.tar", s_dir);
    snprintf(dest, sizeof dest, "%s/toplink", s_dir);
    const char *names[] = { "lnk->out" };
    const size_t sizes[] = { 0 };
    s_tar(tar, names, sizes, 1);
    evr_artifact_list_t list = { 0 };
    evr_err_t err = { 0 };
    CHECK(evr_artifact_unpack_list(tar, dest, 1 << 20, 1 << 20, "lnk", &list, &err)
          == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "a symbolic link (to \"out\"): links are not followed");
    const char *followed[] = { "out/a.txt", "out/b.txt" };
    const size_t fsizes[] = { 3, 3 };
    s_tar(tar, followed, fsizes, 2);
    CHECK(evr_artifact_unpack_list(tar, dest, 1 << 20, 1 << 20, "lnk", &list, &err)
          == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "a symbolic link (to a path named \"out\"): links are not followed");
    CHECK(list.n == 0 && s_files_under(dest) == 0);
    /* "outer" is not under "out" */
    const char *outer[] = { "out/a.txt", "outer/b.txt" };
    s_tar(tar, outer, fsizes, 2);
    CHECK(evr_artifact_unpack_list(tar, dest, 1 << 20, 1 << 20, "out", &list, &err)
          == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "a path named \"outer\"");
    CHECK(s_files_under(dest) == 0);
    /* what the step's link points to is its code's choice: quoted
       escaped, no terminal escape nor line (a forged one) in the reason */
    const char *odd[] = { "lnk->x\x1b[31mRED\nevrun: forged" };
    s_tar(tar, odd, sizes, 1);
    CHECK(evr_artifact_unpack_list(tar, dest, 1 << 20, 1 << 20, "lnk", &list, &err)
          == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "a symbolic link (to \"x\\x1b[31mRED\\nevrun: forged\")");
    const char *odd2[] = { "o\x1b" "dd/a.txt" };
    s_tar(tar, odd2, fsizes, 1);
    CHECK(evr_artifact_unpack_list(tar, dest, 1 << 20, 1 << 20, "lnk", &list, &err)
          == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "a symbolic link (to a path named \"o\\x1bdd\")");
    evr_artifact_list_free(&list);
}

static void
test_unpack_keeps_what_was_there(void)
{
    /* a failed artifact takes back only what it wrote itself */
    char tar[128], dest[128], keep[160];
    snprintf(tar, sizeof tar, "%s/bad.tar", s_dir);
    snprintf(dest, sizeof dest, "%s/keep", s_dir);
    snprintf(keep, sizeof keep, "%s/out/before.txt", dest);
    evr_err_t err;
    char sub[160];
    snprintf(sub, sizeof sub, "%s/out", dest);
    evr_mkdirs(sub, &err);
    FILE *fp = fopen(keep, "w");
    fputs("earlier artifact\n", fp);
    fclose(fp);
    /* the tar passes the header scan; its second entry fails while
       written (its directory is a file), after out/a.txt was written */
    const char *names[] = { "out/a.txt", "out/a.txt/b.txt" };
    const size_t sizes[] = { 10, 10 };
    s_tar(tar, names, sizes, 2);
    uint32_t files = 0;
    CHECK(evr_artifact_unpack(tar, dest, 1 << 20, &files, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "out/a.txt");
    CHECK(s_files_under(dest) == 1);
    CHECK(access(keep, F_OK) == 0);
}

static void
s_read_line(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *fp = fopen(path, "r");
    if (fp) {
        if (!fgets(buf, (int) size, fp))
            buf[0] = '\0';
        fclose(fp);
    }
}

static void
test_unpack_failed_keeps_older_file(void)
{
    /* an earlier attempt's out/a.txt, written over by this unpack, which
       then fails: the earlier file is back, whole */
    char tar[128], dest[128], a[160], sub[160], line[64];
    snprintf(tar, sizeof tar, "%s/again.tar", s_dir);
    snprintf(dest, sizeof dest, "%s/again", s_dir);
    snprintf(sub, sizeof sub, "%s/out", dest);
    snprintf(a, sizeof a, "%s/out/a.txt", dest);
    evr_err_t err;
    evr_mkdirs(sub, &err);
    FILE *fp = fopen(a, "w");
    fputs("earlier artifact\n", fp);
    fclose(fp);
    /* the tar passes the scan; its third entry fails while written (its
       directory is a file) */
    const char *names[] = { "out/a.txt", "out/a.txt", "out/a.txt/c.txt" };
    const size_t sizes[] = { 10, 20, 5 };
    s_tar(tar, names, sizes, 3);
    uint32_t files = 0;
    CHECK(evr_artifact_unpack(tar, dest, 1 << 20, &files, &err) != EVR_OK);
    s_read_line(a, line, sizeof line);
    CHECK_STR(line, "earlier artifact\n");
    CHECK(s_files_under(dest) == 1);   /* nothing kept aside left over */
    /* a complete unpack replaces it, and leaves nothing aside */
    s_tar(tar, names, sizes, 2);
    CHECK(evr_artifact_unpack(tar, dest, 1 << 20, &files, &err) == EVR_OK);
    s_read_line(a, line, sizeof line);
    CHECK(strlen(line) == 20);
    CHECK(s_files_under(dest) == 1);
    /* a file of the artifact named as the older one kept aside: refused,
       not lost */
    const char *clash[] = { "out/a.txt.evrun-old", "out/a.txt" };
    s_tar(tar, clash, sizes, 2);
    CHECK(evr_artifact_unpack(tar, dest, 1 << 20, &files, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "a.txt.evrun-old: a file of this artifact, in the way of");
    s_read_line(a, line, sizeof line);
    CHECK(strlen(line) == 20);
    CHECK(s_files_under(dest) == 1);
}

int
main(void)
{
    if (!s_dir_begin("artifact"))
        return 2;
    EVR_TEST_RUN(test_unpack_ok);
    EVR_TEST_RUN(test_unpack_keeps_modes);
    EVR_TEST_RUN(test_unpack_list);
    EVR_TEST_RUN(test_unpack_over_limit_writes_nothing);
    EVR_TEST_RUN(test_unpack_link_leaves_nothing);
    EVR_TEST_RUN(test_unpack_list_leaves_links_out);
    EVR_TEST_RUN(test_unpack_list_path_a_link);
    EVR_TEST_RUN(test_unpack_list_names_specials);
    EVR_TEST_RUN(test_unpack_keeps_what_was_there);
    EVR_TEST_RUN(test_unpack_failed_keeps_older_file);
    s_dir_end();
    EVR_TEST_END();
}
