/*  evr_atest.h: what the tar tests share (test_artifact.c, test_resource.c):
    a temporary directory each case works in, tars written with libarchive,
    counting the regular files under a directory and removing a tree.
    Static, as evr_test.h's counters are: each test program has its own
    copy.
*/
#ifndef EVR_ATEST_H_INCLUDED
#define EVR_ATEST_H_INCLUDED

#include <archive.h>
#include <archive_entry.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char s_dir[64];

/*  Writes a tar to path: entries "name" with size bytes of 'x', a
    symbolic link for "name->target", a hard link for "name=>target", a
    directory for "name/". */
static inline void
s_tar(const char *path, const char *const *names, const size_t *sizes, size_t n)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open_filename(a, path);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        const char *arrow = strstr(names[i], "->");
        const char *hard = strstr(names[i], "=>");
        arrow = arrow ? arrow : hard;
        char name[128];
        snprintf(name, sizeof name, "%.*s", arrow ? (int) (arrow - names[i]) : 127, names[i]);
        archive_entry_set_pathname(e, name);
        archive_entry_set_perm(e, 0644);
        if (hard) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, arrow + 2);
        }
        else if (arrow) {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, arrow + 2);
        }
        else if (name[0] && name[strlen(name) - 1] == '/') {
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
            arrow = name;   /* no data */
        }
        else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t) sizes[i]);
        }
        archive_write_header(a, e);
        char buf[4096];
        memset(buf, 'x', sizeof buf);
        for (size_t left = arrow ? 0 : sizes[i]; left;) {
            size_t k = left < sizeof buf ? left : sizeof buf;
            archive_write_data(a, buf, k);
            left -= k;
        }
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

static int s_files;

static inline int
s_count_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void) path, (void) sb, (void) ftw;
    if (type == FTW_F)
        s_files++;
    return 0;
}

/*  Regular files under path. */
static inline int
s_files_under(const char *path)
{
    s_files = 0;
    nftw(path, s_count_one, 16, FTW_PHYS);
    return s_files;
}

static inline int
s_rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void) sb, (void) type, (void) ftw;
    return remove(path);
}

/*  Makes s_dir, /tmp/evr-test-NAME-XXXXXX; false when it cannot. */
static inline bool
s_dir_begin(const char *name)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/evr-test-%s-XXXXXX", name);
    return mkdtemp(s_dir) != NULL;
}

/*  Removes s_dir and all in it. */
static inline void
s_dir_end(void)
{
    nftw(s_dir, s_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
