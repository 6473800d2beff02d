/*  test_paths: the state directory is used only when private (evr_paths):
    a missing tree is made 0700, parents too; a link, a file, a directory
    writable by group or others (and, as root, one of another user's) is
    refused naming the path and the fix; files are opened and pid files
    written without following a link, and a hard link is refused. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "evr_paths.h"
#include "evr_test.h"

static char s_root[64];

static char *
s_path(const char *rel)
{
    return evr_asprintf("%s/%s", s_root, rel);
}

static unsigned
s_mode(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 ? (unsigned) (st.st_mode & 07777) : 0;
}

static void
test_make(void)
{
    evr_err_t err;
    char *deep = s_path("home/.local/state/evrun"), *home = s_path("home");
    char *local = s_path("home/.local");
    CHECK(evr_paths_dir(deep, false, &err) == EVR_ERR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "no such directory");
    CHECK(evr_paths_dir(deep, true, &err) == EVR_OK);
    CHECK(s_mode(home) == 0700 && s_mode(local) == 0700 && s_mode(deep) == 0700);
    CHECK(evr_paths_dir(deep, false, &err) == EVR_OK);
    char *file = s_path("home/file");
    close(open(file, O_WRONLY | O_CREAT, 0600));
    CHECK(evr_paths_dir(file, true, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "file: not a directory");
    char *under = s_path("home/file/sub");
    CHECK(evr_paths_dir(under, true, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "file/sub: Not a directory");
    free(under);
    free(file);
    free(local);
    free(home);
    free(deep);
}

static void
test_refused(void)
{
    evr_err_t err;
    char *dir = s_path("open"), *link = s_path("link");
    mkdir(dir, 0700);
    chmod(dir, 0777);
    CHECK(evr_paths_dir(dir, true, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "open: writable by others (mode 0777)");
    CHECK_CONTAINS(err.msg, "chmod go-w ");
    chmod(dir, 0770);
    CHECK(evr_paths_dir(dir, true, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "writable by its group (mode 0770)");
    chmod(dir, 0755);
    CHECK(evr_paths_dir(dir, true, &err) == EVR_OK);
    CHECK(symlink(dir, link) == 0);
    CHECK(evr_paths_dir(link, true, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "link: a symbolic link");
    if (geteuid() == 0) {   /* another user: nobody */
        CHECK(chown(dir, 65534, 65534) == 0);
        CHECK(evr_paths_dir(dir, true, &err) == EVR_ERR_CONFIG);
        CHECK_CONTAINS(err.msg, "owned by uid 65534, not by you (uid 0)");
        CHECK_CONTAINS(err.msg, "chown -R 0 ");
        CHECK(chown(dir, 0, 0) == 0);
    }
    free(link);
    free(dir);
}

static void
test_files(void)
{
    evr_err_t err;
    char *victim = s_path("victim"), *pid = s_path("home/broker.pid");
    char *log = s_path("home/broker.log"), *hard = s_path("home/hard");
    FILE *fp = fopen(victim, "w");
    fputs("someone else's\n", fp);
    fclose(fp);
    CHECK(symlink(victim, log) == 0);
    CHECK(evr_paths_open(log, O_WRONLY | O_CREAT | O_APPEND, &err) < 0);
    CHECK_CONTAINS(err.msg, "broker.log: a symbolic link");
    CHECK(link(victim, hard) == 0);
    CHECK(evr_paths_open(hard, O_RDONLY, &err) < 0);
    CHECK_CONTAINS(err.msg, "more than one hard link");
    CHECK(symlink(victim, pid) == 0);
    CHECK(evr_paths_open(pid, O_RDONLY, &err) < 0);
    CHECK(evr_paths_write_pid(pid, 4242, &err) == EVR_OK);   /* replaces the link */
    int fd = evr_paths_open(pid, O_RDONLY, &err);
    char buf[64] = "";
    CHECK(fd >= 0 && read(fd, buf, sizeof buf - 1) == 5);
    CHECK_STR(buf, "4242\n");
    if (fd >= 0)
        close(fd);
    CHECK(s_mode(pid) == 0600);
    fp = fopen(victim, "r");
    CHECK(fp && fgets(buf, sizeof buf, fp));
    CHECK_STR(buf, "someone else's\n");
    if (fp)
        fclose(fp);
    char *none = s_path("home/none.pid");
    CHECK(evr_paths_open(none, O_RDONLY, &err) < 0 && errno == ENOENT);
    free(none);
    free(hard);
    free(log);
    free(pid);
    free(victim);
}

static void
test_socket(void)
{
    evr_err_t err;
    char *bus = s_path("bus"), *sock = s_path("bus/clients");
    mkdir(bus, 0700);
    CHECK(evr_paths_socket(sock, &err) == EVR_OK);   /* missing: the connect says so */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    CHECK(bind(s, (struct sockaddr *) &sa, sizeof sa) == 0);
    CHECK(evr_paths_socket(sock, &err) == EVR_OK);
    chmod(bus, 0777);
    CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "bus: writable by others");
    chmod(bus, 01777);   /* sticky, like /tmp */
    CHECK(evr_paths_socket(sock, &err) == EVR_OK);
    chmod(bus, 0700);
    chmod(s_root, 0777);   /* bus/ could be renamed away and replaced */
    CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, ": writable by others (mode 0777)");
    chmod(s_root, 0700);
    CHECK(evr_paths_socket("/tmp/evr-none/clients", &err) == EVR_OK);
    CHECK(evr_paths_socket("/clients", &err) == EVR_OK);
    if (geteuid() == 0) {
        CHECK(chown(sock, 65534, 65534) == 0);
        CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
        CHECK_CONTAINS(err.msg, "clients: a socket of uid 65534");
    }
    unlink(sock);
    CHECK(symlink("/tmp", sock) == 0);
    CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "clients: a symbolic link, not a socket");
    close(s);
    free(sock);
    free(bus);
}

int
main(void)
{
    snprintf(s_root, sizeof s_root, "/tmp/evr-test-paths-XXXXXX");
    if (!mkdtemp(s_root))
        return 2;
    EVR_TEST_RUN(test_make);
    EVR_TEST_RUN(test_refused);
    EVR_TEST_RUN(test_files);
    EVR_TEST_RUN(test_socket);
    char *rm = evr_asprintf("rm -rf '%s'", s_root);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", s_root);
    free(rm);
    EVR_TEST_END();
}
