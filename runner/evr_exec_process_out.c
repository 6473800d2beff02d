/*  evr_exec_process_out.c: the process executor's output (see
    evr_exec_process_int.h): attach follows a unit's stdout and stderr
    files as they grow (inotify, then a turn a chunk), logs reads them
    from an offset to their end so far, detach stops following. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_exec_process_int.h"
#include "evr_log.h"

/*  Opens the output files of op->dir; false once the op has failed. */
static bool
s_open_output(evr_xp_op_t *op)
{
    static const char *const files[2] = { "stdout", "stderr" };
    for (int i = 0; i < 2; i++) {
        char *p = evr_asprintf("%s/%s", op->dir, files[i]);
        op->fd[i] = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        int e = errno;
        free(p);
        if (op->fd[i] < 0) {
            if (e == ENOENT)
                evr_xp_not_found(op);
            else
                evr_xp_fail(op, EVR_ERR_IO, "opening %s/%s: %s", op->dir, files[i], strerror(e));
            return false;
        }
    }
    return true;
}

/*  Reads at most EVR_XP_CHUNK of each stream and passes it on; true when
    something was read (more may follow).  The op may be done after. */
static bool
s_read_some(evr_xp_op_t *op)
{
    static const char *const files[2] = { "stdout", "stderr" };
    bool more = false;
    for (int si = 0; si < 2 && !op->done; si++) {
        if (op->off[si] >= op->end[si])
            continue;
        uint64_t want = op->end[si] - op->off[si];
        ssize_t n = pread(op->fd[si], op->ex->buf,
                          want < EVR_XP_CHUNK ? (size_t) want : EVR_XP_CHUNK, (off_t) op->off[si]);
        if (n < 0 && errno == EINTR) {
            more = true;
            continue;
        }
        if (n < 0) {
            evr_xp_fail(op, EVR_ERR_IO, "reading %s/%s at %" PRIu64 ": %s", op->dir, files[si],
                   op->off[si], strerror(errno));
            return false;
        }
        if (n == 0)
            continue;
        op->off[si] += (uint64_t) n;
        op->out(si + 1, op->ex->buf, (size_t) n, op->arg);
        more = true;
    }
    return more;
}

/*  One turn of an attach or logs. */
void
evr_xp_tail_turn(evr_xp_op_t *op)
{
    if (op->kind == EVR_XP_ATTACH && !op->headed) {
        op->headed = true;
        evr_exec_result_t r = { 0 };
        if (op->head)
            op->head(&r, op->arg);
        evr_xp_kick(op, 0);   /* nothing when head detached it */
        return;
    }
    if (s_read_some(op)) {
        evr_xp_kick(op, 0);
        return;
    }
    if (op->done)
        return;
    if (op->kind == EVR_XP_LOGS || op->final) {
        evr_xp_ok(op);
        return;
    }
    evr_unit_info_t info;
    if (!evr_xp_probe(op, &info))
        return;
    if (info.state == EVR_EXEC_ABSENT) {
        evr_xp_fail(op, EVR_ERR_IO, "%s was removed while its output was read", op->name);
        return;
    }
    if (info.lost) {
        evr_xp_lost(op, &info);
        return;
    }
    if (info.state == EVR_EXEC_EXITED) {
        /* the output is the files' first size[] bytes: read up to there */
        op->end[0] = info.size[0];
        op->end[1] = info.size[1];
        op->final = true;
        evr_xp_kick(op, 0);
        return;
    }
    evr_xp_idle(op);
}


void *
evr_xp_attach(evr_exec_t *base, const char *name, evr_exec_output_fn *out, evr_exec_fn *head,
         evr_exec_fn *done, void *arg)
{
    evr_xp_op_t *op = evr_xp_unit_op((evr_xp_t *) base, EVR_XP_ATTACH, name, done, arg);
    op->out = out;
    op->head = head;
    op->end[0] = op->end[1] = UINT64_MAX;
    if (!op->done && s_open_output(op)) {
        evr_xp_watch(op);
        evr_xp_kick(op, 0);
    }
    return op;
}

/*  The files hold raw output, every byte of them final once written: a
    read so far is a prefix of the final output whether so_far or not. */
void *
evr_xp_logs(evr_exec_t *base, const char *name, const uint64_t from[2], bool so_far,
       evr_exec_output_fn *out, evr_exec_fn *done, void *arg)
{
    (void) so_far;
    evr_xp_op_t *op = evr_xp_unit_op((evr_xp_t *) base, EVR_XP_LOGS, name, done, arg);
    op->out = out;
    evr_unit_info_t info;
    if (op->done || !evr_xp_probe(op, &info))
        return op;
    if (info.state == EVR_EXEC_ABSENT) {
        evr_xp_not_found(op);
        return op;
    }
    if (!s_open_output(op))
        return op;
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (info.state == EVR_EXEC_EXITED && !info.lost)
            op->end[i] = info.size[i];
        else if (fstat(op->fd[i], &st) == 0)
            op->end[i] = (uint64_t) st.st_size;
        op->off[i] = from ? from[i] : 0;
    }
    evr_xp_kick(op, 0);
    return op;
}

void
evr_xp_detach(evr_exec_t *base, void *handle)
{
    (void) base;
    evr_xp_op_t *op = handle;
    if (op && !op->done)
        evr_xp_fail(op, EVR_ERR_IO, "%s: output no longer followed (detached)", op->name);
}
