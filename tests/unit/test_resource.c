/*  test_resource: the tar for /workspace built from a job's resources
    (a plain file, a tar or a compressed tar): limits checked before bytes
    are inflated, memory bounded, odd entries and hard links answered, and
    nothing of a failed build left behind. */
#define _XOPEN_SOURCE 700   /* nftw, mkdtemp */
#include "evr_artifact.h"
#include "evr_test.h"
#include "evr_atest.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void
test_resource_declared_size_first(void)
{
    /* the header claims 1 MiB, 512 bytes follow: refused at the header,
       before any byte is inflated or copied (a bomb) */
    char tar[128], out[128];
    snprintf(tar, sizeof tar, "%s/bomb.tar", s_dir);
    snprintf(out, sizeof out, "%s/bomb.out.tar", s_dir);
    const char *names[] = { "big.bin" };
    const size_t sizes[] = { 1 << 20 };
    s_tar(tar, names, sizes, 1);
    CHECK(truncate(tar, 2048) == 0);
    evr_err_t err;
    CHECK(evr_resource_tar(tar, "src", 65536, out, &err) == EVR_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "over the limit of 65536 bytes");
    CHECK(access(out, F_OK) != 0);   /* no output left */
}

/*  A tar of one entry: name, type (AE_IF*), perm (mode bits), 3 bytes of
    data for a regular file. */
static void
s_tar_odd(const char *path, const char *name, mode_t type, mode_t perm)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open_filename(a, path);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_size(e, type == AE_IFREG ? 3 : 0);
    archive_write_header(a, e);
    if (type == AE_IFREG)
        archive_write_data(a, "abc", 3);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
}

/*  The mode of the first entry of the tar at path. */
static mode_t
s_first_mode(const char *path)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    struct archive_entry *e;
    mode_t m = 0;
    if (archive_read_open_filename(a, path, 65536) == ARCHIVE_OK
        && archive_read_next_header(a, &e) == ARCHIVE_OK)
        m = archive_entry_mode(e);
    archive_read_free(a);
    return m;
}

/*  Odd entries of a source tarball: a device or FIFO refused naming it
    (it was dropped unsaid), setuid and setgid bits dropped (kept), a
    name component over 255 bytes refused up front (podman's copier
    failed with 2 KB of error), a name that is not UTF-8 refused with
    its bytes escaped (no raw byte, no path of the runner's). */
static void
test_resource_odd_entries(void)
{
    char tar[128], out[128];
    snprintf(tar, sizeof tar, "%s/odd.tar", s_dir);
    snprintf(out, sizeof out, "%s/odd.out.tar", s_dir);
    evr_err_t err;
    s_tar_odd(tar, "dev/null0", AE_IFCHR, 0666);
    CHECK(evr_resource_tar(tar, "src", 65536, out, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "entry \"dev/null0\": a character device: only files and "
                            "directories are unpacked");
    CHECK(access(out, F_OK) != 0);
    s_tar_odd(tar, "pipe", AE_IFIFO, 0644);
    CHECK(evr_resource_tar(tar, "src", 65536, out, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "entry \"pipe\": a FIFO: only files and directories are unpacked");
    s_tar_odd(tar, "bin/su", AE_IFREG, 06755);
    CHECK(evr_resource_tar(tar, "src", 65536, out, &err) == EVR_OK);
    CHECK((s_first_mode(out) & 07777) == 0755);
    s_tar_odd(tar, "tmp", AE_IFDIR, 01777);
    CHECK(evr_resource_tar(tar, "src", 65536, out, &err) == EVR_OK);
    CHECK((s_first_mode(out) & 07777) == 01777);   /* sticky kept: harmless */
    char longname[400];
    memset(longname, 'n', 300);
    snprintf(longname + 300, sizeof longname - 300, ".txt");
    s_tar_odd(tar, longname, AE_IFREG, 0644);
    CHECK(evr_resource_tar(tar, "src", 65536, out, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "a name of 304 bytes in it: at most 255 bytes a component");
    CHECK(strlen(err.msg) < 400);
    s_tar_odd(tar, "bad\xff\x1b[31mname", AE_IFREG, 0644);
    CHECK(evr_resource_tar(tar, "src", 65536, out, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "entry \"bad\\xff\\x1b[31mname\": ");
    CHECK(!strstr(err.msg, s_dir));
    CHECK(!strchr(err.msg, '\x1b') && !strchr(err.msg, '\xff'));
    /* a path past what a system can open, each component short: refused
       up front too, not by the copy's error with the name cut off */
    char deep[3200];
    size_t at = 0;
    while (at + 201 < sizeof deep - 8) {
        memset(deep + at, 'd', 200);
        deep[at + 200] = '/';
        at += 201;
    }
    snprintf(deep + at, sizeof deep - at, "f");   /* 15 * 201 + 1 = 3016 bytes */
    s_tar_odd(tar, deep, AE_IFREG, 0644);
    CHECK(evr_resource_tar(tar, "src", 65536, out, &err) == EVR_OK);   /* 3020 in all */
    snprintf(deep + at, sizeof deep - at, "%060d", 0);   /* 3075 + 4 */
    s_tar_odd(tar, deep, AE_IFREG, 0644);
    CHECK(evr_resource_tar(tar, "src", 65536, out, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "\": a path of 3079 bytes in the workspace (src/...): at most "
                            "3072 bytes");
    CHECK(strlen(err.msg) < 400);
    CHECK(access(out, F_OK) != 0);
}

static bool s_tar_holds(const char *out, const char *name, uint64_t size);

/*  A ustar header of name, type flag and size into b (512 bytes). */
static void
s_ustar(uint8_t *b, const char *name, char type, size_t size)
{
    memset(b, 0, 512);
    snprintf((char *) b, 100, "%s", name);
    snprintf((char *) b + 100, 8, "%07o", 0644);
    snprintf((char *) b + 124, 12, "%011zo", size);
    b[156] = (uint8_t) type;
    memcpy(b + 257, "ustar\0" "00", 8);
    memset(b + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += b[i];
    snprintf((char *) b + 148, 8, "%06o", sum);
}

/*  What is no tar to unpack: a plain download at the workspace itself
    (".": it names no file) went to podman's copier, which failed with
    its request dumped; a source tarball that is no tar archive became a
    file where the source's tree was to be; a tar whose first header is
    damaged (too many pax headers) was taken for a plain file and copied
    whole.  An empty tar is a source's empty tree, and a file that starts
    with zeros (an ISO image) still a file. */
static void
test_resource_not_a_tar(void)
{
    char plain[128], out[128], tar[128];
    snprintf(plain, sizeof plain, "%s/nat.txt", s_dir);
    snprintf(out, sizeof out, "%s/nat.out.tar", s_dir);
    snprintf(tar, sizeof tar, "%s/nat.tar", s_dir);
    FILE *fp = fopen(plain, "w");
    CHECK(fp && fputs("hello\n", fp) >= 0);
    if (fp)
        fclose(fp);
    evr_err_t err;
    CHECK(evr_resource_tar(plain, ".", 65536, out, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "path \".\" is the workspace itself, and the download is no tar "
                            "archive to unpack there: name the file it is to be (path: NAME)");
    CHECK(access(out, F_OK) != 0);
    CHECK(evr_resource_tar(plain, "a/./", 65536, out, &err) == EVR_OK);
    CHECK(evr_resource_tar(plain, "./", 65536, out, &err) == EVR_ERR_IO);
    CHECK(evr_resource_tar_dir(plain, "src", 65536, out, &err) == EVR_ERR_IO);
    CHECK_STR(err.msg, "not a tar archive (plain, or compressed with gzip, bzip2 or xz)");
    CHECK(access(out, F_OK) != 0);
    /* an empty tar: a source's empty tree, a resource's plain file */
    uint8_t zeros[1024] = { 0 };
    fp = fopen(tar, "w");
    CHECK(fp && fwrite(zeros, 1, sizeof zeros, fp) == sizeof zeros);
    if (fp)
        fclose(fp);
    CHECK(evr_resource_tar_dir(tar, "src", 65536, out, &err) == EVR_OK);
    CHECK(evr_resource_tar(tar, "disk.img", 65536, out, &err) == EVR_OK);
    CHECK(s_tar_holds(out, "disk.img", sizeof zeros));
    /* 40 pax global headers before the first file: libarchive takes 32 */
    fp = fopen(tar, "w");
    uint8_t b[512], data[512] = "11 comment=\n";
    for (int i = 0; fp && i < 40; i++) {
        s_ustar(b, "pax_global_header", 'g', 12);
        fwrite(b, 1, 512, fp);
        fwrite(data, 1, 512, fp);
    }
    s_ustar(b, "f", '0', 0);
    if (fp) {
        fwrite(b, 1, 512, fp);
        fwrite(zeros, 1, sizeof zeros, fp);
        fclose(fp);
    }
    CHECK(evr_resource_tar(tar, "data", 65536, out, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "a damaged tar archive: ");
    CHECK(access(out, F_OK) != 0);
}

static void
test_resource_ok_and_plain(void)
{
    char tar[128], out[128], plain[128];
    snprintf(tar, sizeof tar, "%s/res.tar", s_dir);
    snprintf(out, sizeof out, "%s/res.out.tar", s_dir);
    snprintf(plain, sizeof plain, "%s/plain.txt", s_dir);
    const char *names[] = { "./a.txt", "sub/b.txt" };
    const size_t sizes[] = { 1000, 1000 };
    s_tar(tar, names, sizes, 2);
    evr_err_t err;
    CHECK(evr_resource_tar(tar, "src", 2000, out, &err) == EVR_OK);
    struct stat sb;
    CHECK(stat(out, &sb) == 0 && sb.st_size > 2000);
    CHECK(evr_resource_tar(tar, "src", 1999, out, &err) == EVR_ERR_LIMIT);
    CHECK(access(out, F_OK) != 0);
    FILE *fp = fopen(plain, "w");
    for (int i = 0; i < 300; i++)
        fputs("0123456789", fp);
    fclose(fp);
    CHECK(evr_resource_tar(plain, "docs/p.txt", 3000, out, &err) == EVR_OK);
    CHECK(evr_resource_tar(plain, "docs/p.txt", 2999, out, &err) == EVR_ERR_LIMIT);
    CHECK(access(out, F_OK) != 0);
}

/*  The first line of path, or "" */
static void
test_resource_disk_full(void)
{
    /* the tar written to a full disk: said so, naming the file */
    char plain[128], out[128];
    snprintf(plain, sizeof plain, "%s/full.txt", s_dir);
    snprintf(out, sizeof out, "%s/full.tar", s_dir);
    FILE *fp = fopen(plain, "w");
    for (int i = 0; i < 10000; i++)
        fputs("0123456789", fp);
    fclose(fp);
    CHECK(symlink("/dev/full", out) == 0);   /* the symbolic link is what is removed */
    evr_err_t err;
    CHECK(evr_resource_tar(plain, "p.txt", 1 << 20, out, &err) == EVR_ERR_IO);
    char want[192];
    snprintf(want, sizeof want, "no space left on device writing %s", out);
    CHECK_CONTAINS(err.msg, want);
    unlink(out);
}

static void
test_resource_read_error(void)
{
    /* a download that cannot be read (here a directory) is refused, never
       made up with zeros */
    char dir[128], out[128];
    snprintf(dir, sizeof dir, "%s/notafile", s_dir);
    snprintf(out, sizeof out, "%s/notafile.tar", s_dir);
    CHECK(mkdir(dir, 0755) == 0);
    evr_err_t err;
    CHECK(evr_resource_tar(dir, "p.txt", 1 << 20, out, &err) == EVR_ERR_IO);
    char want[192];
    snprintf(want, sizeof want, "reading %s: Is a directory", dir);
    CHECK_CONTAINS(err.msg, want);
    CHECK(access(out, F_OK) != 0);
}

/* ------------------------------------------------- bounded memory */

/*  A resource bigger than any buffer the runner should hold, and the most
    a tar of it may add to the peak resident size: streamed in blocks,
    its bytes never are in memory at once. */
#define S_BIG (80u << 20)
#define S_RSS_SLACK (24u << 20)

/*  The resident size now, in bytes. */
static uint64_t
s_rss_now(void)
{
    unsigned long pages = 0, resident = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    if (fp) {
        if (fscanf(fp, "%lu %lu", &pages, &resident) != 2)
            resident = 0;
        fclose(fp);
    }
    return (uint64_t) resident * (uint64_t) sysconf(_SC_PAGESIZE);
}

/*  The peak resident size so far, in bytes. */
static uint64_t
s_rss_peak(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t) ru.ru_maxrss * 1024u;
}

/*  out holds one regular file entry named name of size bytes, all zero. */
static bool
s_tar_holds(const char *out, const char *name, uint64_t size)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    struct archive_entry *e;
    bool ok = archive_read_open_filename(a, out, 65536) == ARCHIVE_OK
              && archive_read_next_header(a, &e) == ARCHIVE_OK
              && strcmp(archive_entry_pathname(e), name) == 0
              && (uint64_t) archive_entry_size(e) == size;
    char buf[65536];
    la_ssize_t n;
    uint64_t got = 0;
    while (ok && (n = archive_read_data(a, buf, sizeof buf)) > 0) {
        for (la_ssize_t i = 0; i < n; i++)
            ok &= buf[i] == 0;
        got += (uint64_t) n;
    }
    ok = ok && got == size && archive_read_next_header(a, &e) == ARCHIVE_EOF;
    archive_read_free(a);
    return ok;
}

static void
test_resource_big_plain_bounded(void)
{
    /* a download of 80 MiB that is no tar (a sparse file: cheap to make,
       read as zeros) becomes the tar to upload without its bytes being
       held: the peak resident size grows by far less than the file */
    char plain[128], out[128];
    snprintf(plain, sizeof plain, "%s/big.bin", s_dir);
    snprintf(out, sizeof out, "%s/big.out.tar", s_dir);
    int fd = open(plain, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && ftruncate(fd, S_BIG) == 0);
    close(fd);
    uint64_t before = s_rss_now();
    evr_err_t err;
    CHECK(evr_resource_tar(plain, "data/big.bin", S_BIG, out, &err) == EVR_OK);
    uint64_t grew = s_rss_peak() > before ? s_rss_peak() - before : 0;
    fprintf(stderr, "  80 MiB plain: peak resident size grew by %llu KiB\n",
            (unsigned long long) (grew >> 10));
    CHECK(grew < S_RSS_SLACK);
    CHECK(s_tar_holds(out, "data/big.bin", S_BIG));
    CHECK(evr_resource_tar(plain, "data/big.bin", S_BIG - 1, out, &err) == EVR_ERR_LIMIT);
    unlink(plain);
    unlink(out);
}

static void
test_resource_big_tar_gz_bounded(void)
{
    /* a gzip-compressed tar of 80 KiB inflating to an 80 MiB entry: read
       in blocks, inflated and re-rooted entry by entry, never whole */
    char tgz[128], out[128];
    snprintf(tgz, sizeof tgz, "%s/big.tar.gz", s_dir);
    snprintf(out, sizeof out, "%s/big.tgz.out.tar", s_dir);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    archive_write_set_filter_option(a, "gzip", "compression-level", "1");
    archive_write_open_filename(a, tgz);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "./zeros.bin");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, S_BIG);
    archive_write_header(a, e);
    static char zeros[1 << 16];
    for (uint32_t left = S_BIG; left; left -= sizeof zeros)
        archive_write_data(a, zeros, sizeof zeros);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    struct stat sb;
    CHECK(stat(tgz, &sb) == 0 && sb.st_size < (1 << 20));
    uint64_t before = s_rss_now();
    evr_err_t err;
    CHECK(evr_resource_tar(tgz, "src", S_BIG, out, &err) == EVR_OK);
    uint64_t grew = s_rss_peak() > before ? s_rss_peak() - before : 0;
    fprintf(stderr, "  80 MiB tar.gz: peak resident size grew by %llu KiB\n",
            (unsigned long long) (grew >> 10));
    CHECK(grew < S_RSS_SLACK);
    CHECK(s_tar_holds(out, "src/zeros.bin", S_BIG));
    unlink(tgz);
    unlink(out);
}

/*  A tree with hard links, as `cp -l` or git's packs leave one: a.txt
    (1000 bytes), sub/b.txt a second name of it, sub/c.txt (500 bytes). */
static void
s_linked_tree(const char *tree)
{
    char path[256], other[256];
    snprintf(path, sizeof path, "%s/sub", tree);
    CHECK(mkdir(tree, 0755) == 0 && mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/a.txt", tree);
    FILE *fp = fopen(path, "w");
    for (int i = 0; fp && i < 100; i++)
        fputs("0123456789", fp);
    if (fp)
        fclose(fp);
    snprintf(other, sizeof other, "%s/sub/b.txt", tree);
    CHECK(link(path, other) == 0);
    snprintf(path, sizeof path, "%s/sub/c.txt", tree);
    fp = fopen(path, "w");
    for (int i = 0; fp && i < 50; i++)
        fputs("abcdefghij", fp);
    if (fp)
        fclose(fp);
}

/*  tree written to the tar at path by libarchive as bsdtar does: read
    from the disk, each file's second name made a hard link entry by
    archive_entry_linkresolver (pax). */
static void
s_libarchive_tar(const char *tree, const char *path)
{
    struct archive *disk = archive_read_disk_new(), *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    CHECK(archive_write_open_filename(a, path) == ARCHIVE_OK);
    struct archive_entry_linkresolver *lr = archive_entry_linkresolver_new();
    archive_entry_linkresolver_set_strategy(lr, archive_format(a));
    CHECK(archive_read_disk_open(disk, tree) == ARCHIVE_OK);
    struct archive_entry *e;
    while (archive_read_next_header(disk, &e) == ARCHIVE_OK) {
        archive_read_disk_descend(disk);
        const char *full = archive_entry_pathname(e);
        size_t n = strlen(tree);
        struct archive_entry *c = archive_entry_clone(e), *spare = NULL;
        archive_entry_set_pathname(c, full[n] == '/' ? full + n + 1 : ".");
        char src[512];
        snprintf(src, sizeof src, "%s", full);
        archive_entry_linkify(lr, &c, &spare);
        if (c && archive_entry_hardlink(c)) {   /* the link's name relative too */
            const char *to = archive_entry_hardlink(c);
            char rel[512];
            snprintf(rel, sizeof rel, "%s", strncmp(to, tree, n) == 0 ? to + n + 1 : to);
            archive_entry_copy_hardlink(c, rel);
        }
        if (c) {
            CHECK(archive_write_header(a, c) == ARCHIVE_OK);
            if (archive_entry_size(c) > 0) {
                char buf[4096];
                int fd = open(src, O_RDONLY);
                ssize_t k;
                while (fd >= 0 && (k = read(fd, buf, sizeof buf)) > 0)
                    archive_write_data(a, buf, (size_t) k);
                if (fd >= 0)
                    close(fd);
            }
            archive_entry_free(c);
        }
        archive_entry_free(spare);
    }
    archive_entry_linkresolver_free(lr);
    archive_read_free(disk);
    archive_write_close(a);
    archive_write_free(a);
}

/*  The hard link entries of the tar at path, "NAME=>TARGET" joined by ",". */
static void
s_links_of(const char *path, char *out, size_t size)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    struct archive_entry *e;
    out[0] = '\0';
    if (archive_read_open_filename(a, path, 65536) == ARCHIVE_OK)
        while (archive_read_next_header(a, &e) == ARCHIVE_OK)
            if (archive_entry_hardlink(e))
                snprintf(out + strlen(out), size - strlen(out), "%s%s=>%s", out[0] ? "," : "",
                         archive_entry_pathname(e), archive_entry_hardlink(e));
    archive_read_free(a);
}

/*  A resource's tar with a hard link, made by GNU tar (plain and gzip)
    and by libarchive: re-rooted with the link kept (its target under the
    resource's path too), the link's file counted against the limit again,
    and unpacked into a workspace (the process executor) as a second name
    of the same file.  They were refused: "links are not unpacked". */
static void
test_resource_hard_links(void)
{
    char tree[128], tar[128], tgz[128], latar[128], out[128], ws[160], cmd[1024];
    snprintf(tree, sizeof tree, "%s/hltree", s_dir);
    snprintf(tar, sizeof tar, "%s/hl-gnu.tar", s_dir);
    snprintf(tgz, sizeof tgz, "%s/hl-gnu.tar.gz", s_dir);
    snprintf(latar, sizeof latar, "%s/hl-la.tar", s_dir);
    snprintf(out, sizeof out, "%s/hl.out.tar", s_dir);
    s_linked_tree(tree);
    snprintf(cmd, sizeof cmd, "tar -C '%s' -cf '%s' . && tar -C '%s' -czf '%s' a.txt sub",
             tree, tar, tree, tgz);
    CHECK(system(cmd) == 0);
    s_libarchive_tar(tree, latar);
    const char *tars[] = { tar, tgz, latar };
    for (int i = 0; i < 3; i++) {
        evr_err_t err;
        char links[512];
        s_links_of(tars[i], links, sizeof links);
        CHECK(strstr(links, "=>") != NULL);   /* the tool made a link entry */
        evr_rc_t rc = evr_resource_tar(tars[i], "res", 2500, out, &err);
        if (rc)
            fprintf(stderr, "  %s: %s\n", tars[i], err.msg);
        CHECK(rc == EVR_OK);
        s_links_of(out, links, sizeof links);   /* the first name read is the file */
        CHECK(strcmp(links, "res/sub/b.txt=>res/a.txt") == 0
              || strcmp(links, "res/a.txt=>res/sub/b.txt") == 0);
        CHECK(evr_resource_tar(tars[i], "res", 2499, out, &err) == EVR_ERR_LIMIT);
        CHECK_CONTAINS(err.msg, "over the limit of 2499 bytes");
        CHECK(access(out, F_OK) != 0);
        CHECK(evr_resource_tar(tars[i], "res", 2500, out, &err) == EVR_OK);
        /* the process executor's workspace: one file, two names */
        snprintf(ws, sizeof ws, "%s/hlws%d", s_dir, i);
        uint32_t files = 0;
        CHECK(evr_artifact_unpack(out, ws, UINT64_MAX, &files, &err) == EVR_OK);
        CHECK(files == 2);
        char a[200], b[200];
        snprintf(a, sizeof a, "%s/res/a.txt", ws);
        snprintf(b, sizeof b, "%s/res/sub/b.txt", ws);
        struct stat sa, sb;
        CHECK(stat(a, &sa) == 0 && stat(b, &sb) == 0);
        CHECK(sa.st_ino == sb.st_ino && sa.st_nlink == 2 && sb.st_size == 1000);
    }
}

/*  Hard links that would reach past what the tar unpacked are refused,
    naming the entry, and leave no tar: to a later entry, out of the tree,
    absolute, to a directory, to itself, through a symbolic link (the
    link refused first).  A workspace's unpack links only to a file it
    wrote: not to one that was there before. */
static void
test_resource_hard_link_refusals(void)
{
    char tar[128], out[128], ws[128], path[200];
    snprintf(tar, sizeof tar, "%s/hlbad.tar", s_dir);
    snprintf(out, sizeof out, "%s/hlbad.out.tar", s_dir);
    const struct {
        const char *names[2];
        const char *says;
    } cases[] = {
        { { "l=>a.txt", "a.txt" }, "entry \"l\": a hard link to \"a.txt\", which no earlier "
                                    "entry of the archive unpacked" },
        { { "a.txt", "l=>../../etc/passwd" }, "entry \"l\": a hard link to "
                                               "\"../../etc/passwd\": " },
        { { "a.txt", "l=>/etc/passwd" }, "entry \"l\": a hard link to \"/etc/passwd\": " },
        { { "a.txt", "l=>./../a.txt" }, "entry \"l\": a hard link to \"./../a.txt\": " },
        { { "d/", "l=>d" }, "entry \"l\": a hard link to \"d\", a directory" },
        { { "a.txt", "l=>l" }, "entry \"l\": a hard link to itself" },
        { { "s->/etc/passwd", "l=>s" }, "entry \"s\": symbolic links are not unpacked" },
    };
    const size_t sizes[] = { 10, 10 };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_tar(tar, cases[i].names, sizes, 2);
        evr_err_t err;
        CHECK(evr_resource_tar(tar, "res", 65536, out, &err) == EVR_ERR_IO);
        CHECK_CONTAINS(err.msg, cases[i].says);
        CHECK(access(out, F_OK) != 0);
    }
    /* the workspace: a file there before is no target */
    snprintf(ws, sizeof ws, "%s/hlws-old", s_dir);
    CHECK(mkdir(ws, 0755) == 0);
    snprintf(path, sizeof path, "%s/secret", ws);
    FILE *fp = fopen(path, "w");
    if (fp)
        fclose(fp);
    const char *names[] = { "a.txt", "l=>secret" };
    s_tar(tar, names, sizes, 2);
    uint32_t files = 0;
    evr_err_t err;
    CHECK(evr_artifact_unpack(tar, ws, UINT64_MAX, &files, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "entry \"l\": a hard link to \"secret\", which is no file this "
                            "archive unpacked before it");
    snprintf(path, sizeof path, "%s/a.txt", ws);
    CHECK(access(path, F_OK) != 0);   /* all taken back */
    snprintf(path, sizeof path, "%s/l", ws);
    CHECK(access(path, F_OK) != 0);
}

int
main(void)
{
    if (!s_dir_begin("resource"))
        return 2;
    /* first: the peak resident size is not raised yet by other tests */
    EVR_TEST_RUN(test_resource_big_plain_bounded);
    EVR_TEST_RUN(test_resource_big_tar_gz_bounded);
    EVR_TEST_RUN(test_resource_declared_size_first);
    EVR_TEST_RUN(test_resource_ok_and_plain);
    EVR_TEST_RUN(test_resource_not_a_tar);
    EVR_TEST_RUN(test_resource_disk_full);
    EVR_TEST_RUN(test_resource_odd_entries);
    EVR_TEST_RUN(test_resource_read_error);
    EVR_TEST_RUN(test_resource_hard_links);
    EVR_TEST_RUN(test_resource_hard_link_refusals);
    s_dir_end();
    EVR_TEST_END();
}
