/*  test_paths: the state directory is used only when private (evr_paths):
    a missing tree is made 0700, parents too; a link, a file, a directory
    writable by group or others (and, as root, one of another user's) is
    refused naming the path and the fix; so is a directory above it that
    is another user's (not root's) or writable by others and not sticky;
    files are opened and pid files written without following a link, and
    a hard link is refused. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
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
    CHECK_CONTAINS(err.msg, "then inspect what is in it (links or sockets planted while it was "
                            "open stay after the chmod");
    chmod(dir, 0770);
    CHECK(evr_paths_dir(dir, true, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "writable by its group (mode 0770)");
    chmod(dir, 0755);
    CHECK(evr_paths_dir(dir, true, &err) == EVR_OK);
    CHECK(symlink(dir, link) == 0);
    CHECK(evr_paths_dir(link, true, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "link: a symbolic link");
    char *slashed = evr_asprintf("%s//", link);   /* lstat("link/") would follow it */
    CHECK(evr_paths_dir(slashed, true, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "link: a symbolic link");
    free(slashed);
    CHECK(evr_paths_dir("/", false, &err) == (geteuid() == 0 ? EVR_OK : EVR_ERR_CONFIG));
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
    chmod(bus, 01777);   /* sticky, like /tmp: the name could be taken while free */
    CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "bus: writable by others (mode 1777): the directory of the socket");
    CHECK_CONTAINS(err.msg, "must be yours or root's and writable by no one else (even sticky");
    chmod(bus, 0770);
    CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "bus: writable by its group (mode 0770)");
    CHECK_CONTAINS(err.msg, "chmod go-w ");
    CHECK(strstr(err.msg, "chown") == NULL && strstr(err.msg, "--state-dir") == NULL);
    chmod(bus, 0700);
    chmod(s_root, 0777);   /* bus/ could be renamed away and replaced */
    CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, ": writable by others (mode 0777)");
    chmod(s_root, 0700);
    CHECK(evr_paths_socket("/tmp/evr-none/clients", &err) == EVR_OK);
    CHECK(evr_paths_socket("/clients", &err) == EVR_OK);
    if (geteuid() == 0) {   /* a socket directory of another user's: no state-dir advice */
        CHECK(chown(bus, 65534, 65534) == 0);
        CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
        CHECK_CONTAINS(err.msg, "is owned by uid 65534, neither you (uid 0) nor root: a socket's "
                                "directory must be yours or root's");
        CHECK(strstr(err.msg, "chown") == NULL && strstr(err.msg, "--state-dir") == NULL);
        CHECK(chown(bus, 0, 0) == 0);
        CHECK(chown(sock, 65534, 65534) == 0);
        CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
        CHECK_CONTAINS(err.msg, "clients: a socket of uid 65534");
    }
    unlink(sock);
    CHECK(symlink("/tmp", sock) == 0);
    CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "clients: a symbolic link, not a socket");
    unlink(sock);   /* a directory (ipc://STATE given for ipc://STATE/bus/clients): no rm */
    CHECK(mkdir(sock, 0700) == 0);
    CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "clients: a directory, not a socket: an ipc:// endpoint names the "
                            "socket itself");
    CHECK(strstr(err.msg, "rm ") == NULL);
    rmdir(sock);
    CHECK(mkfifo(sock, 0600) == 0);
    CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "clients: a FIFO, not a socket: remove it (rm ");
    unlink(sock);
    close(s);
    free(sock);
    free(bus);
}

/*  Every directory above a state directory: a shared one (0777, not
    sticky) lets anyone rename the state directory away and put their own
    in its place; a sticky one (like /tmp) does not. */
static void
test_ancestors(void)
{
    evr_err_t err;
    char *shared = s_path("shared"), *state = s_path("shared/state");
    char *deep = s_path("shared/new/state"), *made = s_path("shared/new");
    mkdir(shared, 0700);
    mkdir(state, 0700);
    CHECK(evr_paths_dir(state, false, &err) == EVR_OK);
    CHECK(evr_paths_dir(s_root, false, &err) == EVR_OK);   /* mkdtemp in /tmp (1777) */
    chmod(shared, 0777);
    CHECK(evr_paths_dir(state, false, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "shared: writable by others (mode 0777) and not sticky");
    CHECK_CONTAINS(err.msg, "could rename ");
    CHECK_CONTAINS(err.msg, "shared/state (which is under it) away");
    CHECK_CONTAINS(err.msg, "chmod go-w ");
    CHECK(evr_paths_dir(deep, true, &err) == EVR_ERR_CONFIG);   /* checked before made */
    CHECK_CONTAINS(err.msg, "shared: writable by others");
    CHECK(s_mode(made) == 0);
    chmod(shared, 0775);
    CHECK(evr_paths_dir(state, false, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "shared: writable by its group (mode 0775)");
    /* through a link, and relative: the directories actually looked in */
    char *via = s_path("via"), *vstate = s_path("via/state");
    CHECK(symlink("shared", via) == 0);
    CHECK(evr_paths_dir(vstate, false, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "shared: writable by its group");
    char *cwd = getcwd(NULL, 0);
    CHECK(chdir(state) == 0);
    CHECK(evr_paths_dir("../state/", false, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "shared: writable by its group");
    CHECK(evr_paths_dir(".", false, &err) == EVR_ERR_CONFIG);
    CHECK(cwd && chdir(cwd) == 0);
    free(cwd);
    chmod(shared, 01777);   /* sticky: only the state directory's owner renames it */
    CHECK(evr_paths_dir(state, false, &err) == EVR_OK);
    CHECK(evr_paths_dir(vstate, false, &err) == EVR_OK);
    CHECK(evr_paths_dir(deep, true, &err) == EVR_OK && s_mode(made) == 0700);
    chmod(shared, 0755);
    if (geteuid() == 0) {   /* another user's (not root's) directory above */
        CHECK(chown(shared, 65534, 65534) == 0);
        CHECK(evr_paths_dir(state, false, &err) == EVR_ERR_CONFIG);
        CHECK_CONTAINS(err.msg, "shared: owned by uid 65534, neither you (uid 0) nor root");
        CHECK(chown(shared, 0, 0) == 0);
    }
    /* a socket two levels down: every directory above is looked at */
    char *bus = s_path("shared/state/bus"), *sock = s_path("shared/state/bus/clients");
    mkdir(bus, 0700);
    CHECK(evr_paths_socket(sock, &err) == EVR_OK);
    chmod(shared, 0777);
    CHECK(evr_paths_socket(sock, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "shared: writable by others (mode 0777) and not sticky");
    chmod(shared, 0755);
    free(sock);
    free(bus);
    free(vstate);
    free(via);
    free(made);
    free(deep);
    free(state);
    free(shared);
}

/*  evr_paths_state: the subdirectories asked for, made or skipped;
    curve never made. */
static void
test_state(void)
{
    evr_err_t err;
    char *st = s_path("st"), *curve = s_path("st/curve"), *r2 = s_path("st/runners/2");
    char *bus = s_path("st/bus"), *logs = s_path("st/logs");
    CHECK(evr_paths_state(st, EVR_PATHS_ALL, 2, false, &err) == EVR_OK);   /* missing: skipped */
    CHECK(s_mode(st) == 0);
    CHECK(evr_paths_state(st, EVR_PATHS_BROKER, 0, true, &err) == EVR_OK);
    CHECK(s_mode(st) == 0700 && s_mode(bus) == 0);
    CHECK(evr_paths_state(st, EVR_PATHS_ALL, 2, true, &err) == EVR_OK);
    CHECK(s_mode(bus) == 0700 && s_mode(r2) == 0700 && s_mode(curve) == 0);
    mkdir(curve, 0777);
    chmod(curve, 0777);
    CHECK(evr_paths_state(st, EVR_PATHS_BROKER, 0, true, &err) == EVR_OK);
    CHECK(evr_paths_state(st, EVR_PATHS_CURVE, 0, true, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "st/curve: writable by others");
    chmod(curve, 0700);
    chmod(logs, 0770);
    CHECK(evr_paths_state(st, EVR_PATHS_ALL, 0, false, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "st/logs: writable by its group");
    free(logs);
    free(bus);
    free(r2);
    free(curve);
    free(st);
}

/*  A pid file that cannot be written whole: the descriptor is closed,
    the error says why (a short write: no space), nothing is left. */
static void
test_pid_short(void)
{
    evr_err_t err;
    char *pid = s_path("home/short.pid"), *tmp = s_path("home/short.pid.new");
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    for (rlim_t max = 0; max <= 2; max += 2) {   /* 0: write fails; 2: short write */
        int before = dup(0);
        close(before);
        lim = old;
        lim.rlim_cur = max;
        CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
        evr_rc_t rc = evr_paths_write_pid(pid, 12345, &err);
        setrlimit(RLIMIT_FSIZE, &old);
        CHECK(rc == EVR_ERR_IO);
        CHECK_CONTAINS(err.msg, "cannot write the pid file ");
        CHECK_CONTAINS(err.msg, max ? "No space left on device" : "File too large");
        int after = dup(0);
        close(after);
        CHECK(after == before);   /* no descriptor leaked */
        CHECK(s_mode(tmp) == 0 && s_mode(pid) == 0);
    }
    signal(SIGXFSZ, SIG_DFL);
    free(tmp);
    free(pid);
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
    EVR_TEST_RUN(test_ancestors);
    EVR_TEST_RUN(test_state);
    EVR_TEST_RUN(test_pid_short);
    char *rm = evr_asprintf("rm -rf '%s'", s_root);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", s_root);
    free(rm);
    EVR_TEST_END();
}
