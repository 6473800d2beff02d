/*  evr_prov_child.c: the processes of evrun-provisioner's runners
    (evr_prov_run_int.h; what is done with them: evr_prov_run.c).

    A process provider's runner is evrun-runner run here, a podman
    provider's a container of the podman service, a command provider's
    its start (and stop) command under /bin/sh -c.  Each child runs in a
    session of its own, stdin from /dev/null, its output in the runner's
    log DIR/logs/ID.log; a start command's stdout is a pipe (its first
    line is the handle, evr_prov_run.c reads it), and a start or stop
    command's stderr is a pipe whose last EVR_PROV_ERR_KEEP bytes are
    kept and written to that log once it ends, with how much was left
    out before them: a command that writes without end fills neither the
    memory nor the disk.  A command provider's runner also has a record,
    DIR/commands/ID, for a provisioner started again after a kill.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_log.h"
#include "evr_prov_podman.h"
#include "evr_prov_run.h"
#include "evr_prov_run_int.h"

#define S_WHO "evrun-provisioner"

/* -------------------------------------------------------------- children */

/*  The parent's side of a child's pipe p once forked: the write end
    closed, the read end non-blocking into *fd (closed when no child). */
static void
s_pipe_kept(int p[2], pid_t pid, int *fd)
{
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    *fd = p[0];
}

/*  Forks a child in its own session: stdin /dev/null, stdout into
    out_pipe, else into err_pipe, else into log, stderr into err_pipe,
    else into log; argv run (execv).
    out_pipe, err_pipe: the read end of its stdout, its stderr
    (non-blocking).  Returns the pid, or -1 (why in err). */
static pid_t
s_spawn(char *const *argv, const char *log, int *out_pipe, int *err_pipe, evr_err_t *err)
{
    int p[2] = { -1, -1 }, q[2] = { -1, -1 };
    /* close-on-exec: the child has them as its stdout and stderr only
       (dup2), so that what it leaves running with other output (a runner
       started `>> FILE 2>&1 &`) does not hold them open */
    if ((out_pipe && pipe2(p, O_CLOEXEC)) || (err_pipe && pipe2(q, O_CLOEXEC))) {
        evr_err_set(err, EVR_ERR_IO, "pipe: %s", strerror(errno));
        for (int i = 0; i < 2; i++)
            if (p[i] >= 0)
                close(p[i]);
        return -1;
    }
    int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (lfd < 0) {
        evr_err_set(err, EVR_ERR_IO, "%s: %s", log, strerror(errno));
        for (int i = 0; i < 2; i++) {
            if (p[i] >= 0)
                close(p[i]);
            if (q[i] >= 0)
                close(q[i]);
        }
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        dup2(out_pipe ? p[1] : err_pipe ? q[1] : lfd, 1);   /* a stop's: kept as its stderr */
        dup2(err_pipe ? q[1] : lfd, 2);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execvp(argv[0], argv);
        dprintf(2, "evrun-provisioner: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int e = errno;
    close(lfd);
    if (out_pipe)
        s_pipe_kept(p, pid, out_pipe);
    if (err_pipe)
        s_pipe_kept(q, pid, err_pipe);
    if (pid < 0)
        evr_err_set(err, EVR_ERR_IO, "fork: %s", strerror(e));
    return pid;
}

static char *
s_log_path(const evr_prov_t *pv, const char *id)
{
    return evr_asprintf("%s/logs/%s.log", pv->dir, id);
}

/* ------------------------------------------------- a command's stderr */

/*  t's kept bytes (the last EVR_PROV_ERR_KEEP) into in's log, how many
    were left out before them said first; t is closed. */
void
evr_prov_child_err_write(const evr_prov_t *pv, const evr_prov_inst_t *in, evr_prov_errtail_t *t,
            const char *what)
{
    close(t->fd);
    t->fd = -1;
    size_t off = t->len > EVR_PROV_ERR_KEEP ? t->len - EVR_PROV_ERR_KEEP : 0;
    size_t kept = t->len - off;
    char *log = s_log_path(pv, in->id);
    FILE *fp = kept ? fopen(log, "ae") : NULL;
    if (fp) {
        if (t->total > kept)
            fprintf(fp, "evrun-provisioner: the %s: %llu bytes left out, the last "
                    "%zu follow\n", what, (unsigned long long) (t->total - kept), kept);
        fwrite(t->buf + off, 1, kept, fp);
        if (t->buf[t->len - 1] != '\n')
            fputc('\n', fp);
        if (fclose(fp))
            evr_log_warn(S_WHO, "runner %s: %s: %s", in->id, log, strerror(errno));
    }
    else if (kept)
        evr_log_warn(S_WHO, "runner %s: %s: %s", in->id, log, strerror(errno));
    free(log);
    t->len = 0;
}

/*  Reads what t's command wrote to its stderr since, keeping the last
    EVR_PROV_ERR_KEEP bytes; written to in's log once it ends (what:
    "start command", "stop command's output"). */
void
evr_prov_child_err_read(const evr_prov_t *pv, const evr_prov_inst_t *in, evr_prov_errtail_t *t,
           const char *what)
{
    while (t->fd >= 0) {
        if (t->len == sizeof t->buf) {   /* full: the older half goes */
            memmove(t->buf, t->buf + t->len - EVR_PROV_ERR_KEEP, EVR_PROV_ERR_KEEP);
            t->len = EVR_PROV_ERR_KEEP;
        }
        ssize_t n = read(t->fd, t->buf + t->len, sizeof t->buf - t->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            evr_prov_child_err_write(pv, in, t, what);
            return;
        }
        t->len += (size_t) n;
        t->total += (uint64_t) n;
    }
}

/* ------------------------------------------------ command runners' records */

static bool
s_is_command(const evr_prov_t *pv, const evr_prov_inst_t *in)
{
    return pv->cfg.providers[in->provider].kind == EVR_PROV_COMMAND;
}

/*  in's record (a command provider's runner; evr_prov_record_save). */
evr_rc_t
evr_prov_child_record_save(const evr_prov_t *pv, const evr_prov_inst_t *in, evr_err_t *err)
{
    return evr_prov_record_save(pv->dir, in->id, in->have_handle ? in->handle : NULL,
                                in->registered, err);
}

/*  evr_prov_child_record_save for what changed of a started runner (a failure is said:
    a provisioner started again would know less of it). */
void
evr_prov_child_record_update(const evr_prov_t *pv, const evr_prov_inst_t *in)
{
    evr_err_t err;
    if (s_is_command(pv, in) && evr_prov_child_record_save(pv, in, &err))
        evr_log_warn(S_WHO, "runner %s: its record: %s", in->id, err.msg);
}

/*  in is gone: its record too (a command provider's). */
void
evr_prov_child_record_forget(const evr_prov_t *pv, const evr_prov_inst_t *in)
{
    if (s_is_command(pv, in))
        evr_prov_record_forget(pv->dir, in->id);
}

char *
evr_prov_joined(const evr_strlist_t *l)
{
    char *s = evr_strdup("");
    size_t len = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        if (i)
            evr_prov_append(&s, &len, ",", 1);
        evr_prov_append(&s, &len, l->v[i], strlen(l->v[i]));
    }
    return s;
}

/*  evrun-runner --once --clean for in (a process provider). */
pid_t
evr_prov_child_process(evr_prov_t *pv, const evr_prov_provider_t *p, evr_prov_inst_t *in, evr_err_t *err)
{
    char *labels = evr_prov_joined(&p->labels), *execs = evr_prov_joined(&p->executors);
    char *state = evr_asprintf("%s/runners/%s", pv->dir, in->id);
    char *log = s_log_path(pv, in->id);
    const char *fixed[] = { pv->runner, "--broker", pv->endpoint, "--once", "--clean", "--id",
                            in->id, "--labels", labels, "--executors", execs, "--state-dir",
                            state };
    size_t nf = EVR_ARRAY_LEN(fixed);
    char **argv = evr_calloc(nf + p->args.n + 1, sizeof *argv);
    for (size_t i = 0; i < nf; i++)
        argv[i] = (char *) fixed[i];
    for (uint32_t i = 0; i < p->args.n; i++)
        argv[nf + i] = p->args.v[i];
    pid_t pid = s_spawn(argv, log, NULL, NULL, err);
    free(argv);
    free(labels);
    free(execs);
    free(state);
    free(log);
    return pid;
}

/*  A runner in a container (a podman provider); the service's client is
    made at the first start.  EVR_OK, or why in err. */
evr_rc_t
evr_prov_child_podman(evr_prov_t *pv, const evr_prov_provider_t *p, evr_prov_inst_t *in, evr_err_t *err)
{
    if (!evr_prov_podman_client(pv, err))
        return EVR_ERR_CONFIG;
    char abs[PATH_MAX];
    if (!realpath(pv->dir, abs))
        return evr_err_set(err, EVR_ERR_IO, "%s: %s", pv->dir, strerror(errno));
    char *labels = evr_prov_joined(&p->labels), *execs = evr_prov_joined(&p->executors);
    evr_rc_t rc = evr_prov_podman_start(pv->podman, p, in->id, abs, pv->endpoint, labels,
                                        execs, err);
    in->ctr = !rc;
    free(labels);
    free(execs);
    return rc;
}

/*  /bin/sh -c CMD, its stdout a pipe when out, its stderr a pipe into
    err_fd (evr_prov_errtail_t). */
pid_t
evr_prov_child_shell(evr_prov_t *pv, const char *cmd, const char *id, int *out, int *err_fd,
              evr_err_t *err)
{
    char *log = s_log_path(pv, id);
    char *argv[] = { "/bin/sh", "-c", (char *) cmd, NULL };
    pid_t pid = s_spawn(argv, log, out, err_fd, err);
    free(log);
    return pid;
}
