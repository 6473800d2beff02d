/*  evr_conmon_exit.c: a container's exit code and OOM mark from conmon's
    files (evr_conmon_exit.h).

    conmon's command line is read once, when the attach socket has been
    connected (conmon is alive then: it holds the listening socket), and
    only what identifies the files is taken: -c (the container's id, the
    exit file's name), -b (the bundle directory, checked against the one
    the socket was found in: the conmon of another container never
    answers for this one) and --exit-dir.  The values of the options that
    pass arguments on to other programs (the exit command's, the
    runtime's) are skipped, and each option counts once: a second one
    makes the line unusable, never a guess.  Reading the exit is one
    open(2) of a small file: "not there yet" is the common answer for a
    moment after the socket closed (conmon closes its readers first). */
#define _GNU_SOURCE
#include "evr_conmon_exit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_common.h"

#define S_PATH_MAX 4096
#define S_ID_MAX 128
#define S_FILE_MAX 31   /* "-2147483648" and room: conmon writes "%d" */

struct evr_conmon_exit {
    char *exit_file;    /* EXIT_DIR/ID */
    char *oom_file;     /* BUNDLE/oom */
    char *oom_persist;  /* PERSIST_DIR/oom (podman after 4.3 looks there), or NULL */
};

/*  id as a file name: 1-S_ID_MAX letters, digits, '_', '-', '.', and not
    "." or "..". */
static bool
s_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > S_ID_MAX || !strcmp(id, ".") || !strcmp(id, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/*  Whether arg is option `short_name` (may be NULL) or `long_name`: its
    value then in *val, from `--long=value` or from the next argument
    (*i moved past it; NULL when there is none). */
static bool
s_option(const char *const *argv, size_t argc, size_t *i, const char *short_name,
         const char *long_name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(long_name);
    if (!strncmp(a, long_name, n) && a[n] == '=') {
        *val = a + n + 1;
        return true;
    }
    if (strcmp(a, long_name) && (!short_name || strcmp(a, short_name)))
        return false;
    *val = *i + 1 < argc ? argv[++*i] : NULL;
    return true;
}

/*  Sets *slot to val; false when val is missing or *slot was set. */
static bool
s_once(const char **slot, const char *val)
{
    if (!val || *slot)
        return false;
    *slot = val;
    return true;
}

evr_conmon_exit_t *
evr_conmon_exit_parse(const char *args, size_t len, const char *bundle)
{
    if (!args || !bundle || len == 0 || len > EVR_CONMON_EXIT_ARGS_MAX || args[len - 1] != '\0')
        return NULL;
    size_t argc = 0;
    for (size_t k = 0; k < len; k++)
        argc += args[k] == '\0';
    const char **argv = evr_calloc(argc, sizeof *argv);
    size_t at = 0;
    for (size_t k = 0; k < argc; k++) {
        argv[k] = args + at;
        at += strlen(args + at) + 1;
    }
    static const char *const skip[] = { "--exit-command-arg", "--exit-command", "--runtime-arg",
                                        "--runtime-opt" };
    const char *id = NULL, *b = NULL, *dir = NULL, *persist = NULL, *val;
    bool ok = true;
    for (size_t i = 1; ok && i < argc; i++) {
        bool skipped = false;
        for (size_t s = 0; s < EVR_ARRAY_LEN(skip) && !skipped; s++)
            skipped = s_option(argv, argc, &i, NULL, skip[s], &val);
        if (skipped)
            continue;
        if (s_option(argv, argc, &i, "-c", "--cid", &val))
            ok = s_once(&id, val);
        else if (s_option(argv, argc, &i, "-b", "--bundle", &val))
            ok = s_once(&b, val);
        else if (s_option(argv, argc, &i, NULL, "--exit-dir", &val))
            ok = s_once(&dir, val);
        else if (s_option(argv, argc, &i, NULL, "--persist-dir", &val))
            ok = s_once(&persist, val);
    }
    ok = ok && id && b && dir && s_id_ok(id) && !strcmp(b, bundle) && dir[0] == '/'
         && strlen(dir) < S_PATH_MAX && strlen(b) < S_PATH_MAX
         && (!persist || (persist[0] == '/' && strlen(persist) < S_PATH_MAX));
    evr_conmon_exit_t *self = NULL;
    if (ok) {
        self = evr_calloc(1, sizeof *self);
        self->exit_file = evr_asprintf("%s/%s", dir, id);
        self->oom_file = evr_asprintf("%s/oom", b);
        if (persist && strcmp(persist, b))
            self->oom_persist = evr_asprintf("%s/oom", persist);
    }
    free(argv);
    return self;
}

evr_conmon_exit_t *
evr_conmon_exit_new(pid_t pid, const char *bundle)
{
    if (pid <= 0 || !bundle)
        return NULL;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long) pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = evr_malloc(EVR_CONMON_EXIT_ARGS_MAX + 1);
    size_t len = 0;
    ssize_t n;
    while (len <= EVR_CONMON_EXIT_ARGS_MAX
           && (n = read(fd, buf + len, EVR_CONMON_EXIT_ARGS_MAX + 1 - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            len = 0;
            break;
        }
        len += (size_t) n;
    }
    close(fd);
    evr_conmon_exit_t *self = len <= EVR_CONMON_EXIT_ARGS_MAX
                                  ? evr_conmon_exit_parse(buf, len, bundle) : NULL;
    free(buf);
    /* the exit dir must be there to be read (a runner in a container may
       see conmon's process and bundle but not podman's run dir): else the
       step would wait out the retries before asking podman */
    if (self) {
        char *slash = strrchr(self->exit_file, '/');
        struct stat sb;
        *slash = '\0';
        bool there = stat(self->exit_file[0] ? self->exit_file : "/", &sb) == 0
                     && S_ISDIR(sb.st_mode);
        *slash = '/';
        if (!there)
            evr_conmon_exit_destroy(&self);
    }
    return self;
}

int
evr_conmon_exit_read(const evr_conmon_exit_t *self, int64_t *code, bool *oom)
{
    int fd = open(self->exit_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct stat sb;
    char text[S_FILE_MAX + 2];
    ssize_t n = -1;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode))
        do
            n = read(fd, text, sizeof text);
        while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0 || n > S_FILE_MAX)
        return -1;
    size_t k = text[0] == '-' ? 1 : 0, digits = 0;
    int64_t v = 0;
    for (; k < (size_t) n && digits < 11; k++, digits++) {
        if (text[k] < '0' || text[k] > '9')
            return -1;
        v = v * 10 + (text[k] - '0');
    }
    if (k != (size_t) n || digits == 0 || digits > 10)
        return -1;
    v = text[0] == '-' ? -v : v;
    if (v < INT32_MIN || v > INT32_MAX)
        return -1;
    *code = v;
    *oom = stat(self->oom_file, &sb) == 0
           || (self->oom_persist && stat(self->oom_persist, &sb) == 0);
    return 1;
}

const char *
evr_conmon_exit_file(const evr_conmon_exit_t *self)
{
    return self->exit_file;
}

void
evr_conmon_exit_destroy(evr_conmon_exit_t **self_p)
{
    evr_conmon_exit_t *self = *self_p;
    if (!self)
        return;
    free(self->exit_file);
    free(self->oom_file);
    free(self->oom_persist);
    free(self);
    *self_p = NULL;
}
