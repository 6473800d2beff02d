/*  evr_exec_podman_attach.c: the podman executor's attach (evr_exec.h's
    attach, detach and wait), and the exit of an attached unit.

    The output of a container this process made is read from conmon's
    socket in its bundle directory (evr_conmon.h); any other through
    podman's attach.  A socket that breaks (ECONNRESET: conmon exited
    with the connection never taken) is followed by podman's wait and
    podman's log of the container, past the bytes passed on: conmon
    writes its log before its sockets.

    The exit of an attached unit is read before podman's wait answers:
    podman 4.3 answers a wait only once conmon's cleanup process has
    finished, ~90 ms after the output ended.  conmon, once the
    container's output has ended, closes its attach sockets and then
    writes the exit code to its exit file (evr_conmon_exit.h), the file
    podman's inspect reads too; so when the output from conmon's socket
    ends, that file is read in the loop's next turn (and while it is not
    there yet, again 1, 2, 4 ... 512 ms later, S_FILE_TRIES times: it is
    there at once but for a few ms now and then under load), and the
    unit's wait is answered with its exit code and OOM mark, without a
    call to the podman service (but a connect to its socket: a service
    that went away during the step and stays away cannot remove the
    container, and the wait then fails saying so, s_service_check).  No
    file is looked for when conmon's
    --exit-dir is not a directory this process sees (a runner in a
    container that sees conmon but not podman's run directory), nor,
    once one file never came, for any later unit (pe->no_exit_files, a
    warning said so): no step waits out the retries twice.  Where the
    file is not known (the output came through podman's attach, or
    conmon's command line did not tell), not looked for, not there in
    time or not of conmon's form, and for an exit of
    137 without the OOM mark (a SIGKILL: conmon 2.1 writes its mark into
    its working directory, which podman 4.3 leaves the service's, not
    the bundle where it looks, so the OOM killer's goes unmarked; the
    executor's inspect counts one under a memory limit as such), the
    unit is inspected (again every S_EXIT_RETRY_MS, S_EXIT_TRIES times,
    while it still says running), and "exited" answers the wait.
    Podman's wait is the last resort: the wait of an attached unit is
    sent to podman only when neither can answer it (the stream broke or
    was detached, the unit is removed, or inspect showed neither running
    nor exited, or still running after S_EXIT_TRIES asks), so a step
    costs podman no polling wait (interval 1 ms) while it runs.  A wait
    without an attach (recovery) is podman's wait alone.
*/
#include <stdlib.h>
#include <string.h>

#include "evr_exec_podman_int.h"
#include "evr_log.h"

#define S_EXIT_RETRY_MS 5
#define S_EXIT_TRIES 8
#define S_FILE_TRIES 10         /* reads again of the exit file, 1, 2, 4 ... 512 ms apart */
#define S_SVC_TRIES 8           /* looks again at a service's socket found gone */
#define S_FILE_SIGKILL 137      /* an exit inspect tells apart (the OOM killer's or not) */

evr_pe_unit_t *
evr_pe_unit_find(evr_pe_t *pe, const char *name)
{
    for (evr_pe_unit_t *u = pe->units; u; u = u->next)
        if (!strcmp(u->name, name))
            return u;
    return NULL;
}

/*  A unit record for name, a fresh one (an old one of the same name, a
    second attach, is dropped: its wait falls back on podman's). */
static evr_pe_unit_t *
s_unit_new(evr_pe_t *pe, const char *name)
{
    evr_pe_unit_t *u = evr_calloc(1, sizeof *u);
    u->pe = pe;
    u->name = evr_strdup(name);
    u->next = pe->units;
    if (pe->units)
        pe->units->prev = u;
    pe->units = u;
    return u;
}

/*  Frees u; a wait it holds and has not answered is sent to podman now
    (dropped when the executor goes: pm is gone then), one it answered
    goes.  An inspect under way is told by its unit pointer going
    (evr_pe_unit_find). */
void
evr_pe_unit_free(evr_pe_unit_t *u)
{
    evr_pe_t *pe = u->pe;
    if (u->timer)
        evr_loop_timer_cancel(pe->base.loop, u->timer);
    evr_pe_op_t *w = u->wait;
    if (w) {
        w->unit = NULL;
        if (!w->sent && w->fn && pe->pm) {
            w->sent = true;
            evr_podman_wait(pe->pm, u->name, evr_pe_done, w);
        }
        else if (!w->sent)
            evr_pe_op_free(w);
    }
    if (u->attach)
        u->attach->unit = NULL;
    if (u->probe)
        u->probe->unit = NULL;
    evr_conmon_exit_destroy(&u->exit);
    free(u->gone);
    if (u->prev)
        u->prev->next = u->next;
    else
        pe->units = u->next;
    if (u->next)
        u->next->prev = u->prev;
    free(u->name);
    free(u);
}

static void
s_head(const evr_podman_result_t *pr, void *arg)
{
    evr_pe_op_t *op = arg;
    evr_exec_result_t r = evr_pe_result(pr);
    if (op->head)
        op->head(&r, op->arg);
}

/*  The unit's wait answered with the exit inspect read; u goes first (the
    callback may remove the unit), and with it the wait's record (podman
    was never asked). */
static void
s_unit_answer(evr_pe_unit_t *u)
{
    evr_pe_op_t *w = u->wait;
    evr_exec_fn *fn = w->fn;
    void *arg = w->arg;
    char *gone = u->gone;
    u->gone = NULL;
    evr_exec_result_t r = { .rc = gone ? EVR_ERR_PODMAN : EVR_OK, .msg = gone ? gone : "",
                            .exit_code = u->exit_code, .oom_killed = u->oom_killed };
    if (gone)   /* the step ended when the file was read, not after the looks */
        r.finished_at = evr_now_ns() - (evr_mono_ns() - u->read_ns);
    w->fn = NULL;
    evr_pe_unit_free(u);
    if (fn)
        fn(&r, arg);
    free(gone);
}

static void s_exit_probe(evr_pe_unit_t *u);
static void s_exit_file(evr_pe_unit_t *u);
static void s_service_check(evr_pe_unit_t *u);

static void
s_exit_retry(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_pe_unit_t *u = arg;
    u->timer = 0;
    if (u->checking)
        s_service_check(u);
    else if (u->known)
        s_unit_answer(u);       /* the wait came after the exit was read */
    else if (u->exit)
        s_exit_file(u);
    else
        s_exit_probe(u);
}

/*  The exit file after the output ended: read, it answers the wait (or
    keeps the exit for a wait yet to come); not there yet, it is read
    again shortly; else (not there in time, not of conmon's form, or
    137) inspect tells. */
static void
s_exit_file(evr_pe_unit_t *u)
{
    int64_t code = 0;
    bool oom = false;
    int r = evr_conmon_exit_read(u->exit, &code, &oom);
    if (r > 0 && (code != S_FILE_SIGKILL || oom)) {
        evr_conmon_exit_destroy(&u->exit);
        u->exit_code = code;
        u->oom_killed = oom;
        u->read_ns = evr_mono_ns();
        u->checking = true;
        s_service_check(u);
        return;
    }
    if (r == 0 && u->file_tries < S_FILE_TRIES) {
        u->timer = evr_loop_timer_add(u->pe->base.loop, 1u << u->file_tries++, s_exit_retry, u);
        return;
    }
    if (r == 0 && !u->pe->no_exit_files) {   /* not the exit dir conmon writes (a mount) */
        u->pe->no_exit_files = true;
        evr_log_warn("evrun-runner", "conmon's exit file %s did not come within ~1 s: exits "
                     "are asked of podman (inspect) from now on",
                     evr_conmon_exit_file(u->exit));
    }
    evr_conmon_exit_destroy(&u->exit);
    s_exit_probe(u);
}

/*  The exit read from conmon's file needed no podman: its service is
    looked at (a connect to its socket) before the exit answers the wait.
    One that went away during the step (stopped, crashed) cannot remove
    the container, nor copy anything out of it: looked at again 10, 20,
    40 ... 1280 ms later (S_SVC_TRIES times: a service restarting comes
    back within that), still gone, the wait is answered with why, what was
    read and what to do, and the step fails rather than pass with its
    container left in podman. */
static void
s_service_check(evr_pe_unit_t *u)
{
    const char *why = evr_podman_unreachable(u->pe->pm);
    if (why && u->svc_tries < S_SVC_TRIES) {
        u->timer = evr_loop_timer_add(u->pe->base.loop, 10u << u->svc_tries++, s_exit_retry, u);
        return;
    }
    u->checking = false;
    u->known = true;
    if (why)
        u->gone = evr_asprintf("podman's service at %s went away during the step (%s) and did "
                               "not come back: the container's exit (%lld) was read from "
                               "conmon's exit file, but the container %s stays in podman, "
                               "unremoved; start the service again, to stay (podman system "
                               "service --time=0 %s: without --time=0 it ends after 5 s "
                               "without a call) and remove it: podman rm -f %s",
                               evr_podman_url(u->pe->pm), why, (long long) u->exit_code,
                               u->name, evr_podman_url(u->pe->pm), u->name);
    if (u->wait)
        s_unit_answer(u);
}

/*  The inspect after the output ended: exited answers the wait (or keeps
    the exit for a wait yet to come); running asks again shortly; anything
    else leaves the wait to podman. */
static void
s_exit_inspected(const evr_podman_result_t *pr, void *arg)
{
    evr_pe_op_t *op = arg;
    evr_pe_unit_t *u = op->unit;
    evr_pe_op_free(op);
    if (!u)
        return;                 /* removed, or podman's wait answered */
    u->probe = NULL;
    evr_exec_state_t st = pr->rc ? EVR_EXEC_ABSENT : evr_pe_state(pr->state);
    if (st == EVR_EXEC_EXITED) {
        u->known = true;
        u->exit_code = pr->exit_code;
        u->oom_killed = pr->oom_killed;
        if (u->wait)
            s_unit_answer(u);
    }
    else if (st == EVR_EXEC_RUNNING && ++u->tries < S_EXIT_TRIES)
        u->timer = evr_loop_timer_add(u->pe->base.loop, S_EXIT_RETRY_MS, s_exit_retry, u);
    else
        evr_pe_unit_free(u);
}

static void
s_exit_probe(evr_pe_unit_t *u)
{
    u->probe = evr_pe_op_new(u->pe, EVR_PE_PLAIN, NULL, NULL);
    u->probe->unit = u;
    evr_podman_inspect(u->pe->pm, u->name, s_exit_inspected, u->probe);
}

/*  The attach's end: once the output ended, the exit is read, from
    conmon's exit file in a turn of the loop to come, or by inspect
    (started before the caller hears of the end, which may remove the
    unit); a broken or detached stream leaves the wait to podman. */
static void
s_attach_done(const evr_podman_result_t *pr, void *arg)
{
    evr_pe_op_t *op = arg;
    evr_pe_unit_t *u = op->unit;
    if (u) {
        u->attach = NULL;
        op->unit = NULL;
        /* test hook: EVR_TEST_WAIT_FALLBACK=1 leaves every exit to
           podman's wait, as when the inspect cannot tell */
        if (pr->rc || getenv("EVR_TEST_WAIT_FALLBACK"))
            evr_pe_unit_free(u);
        else if (u->exit)
            u->timer = evr_loop_timer_add(u->pe->base.loop, 0, s_exit_retry, u);
        else
            s_exit_probe(u);
    }
    evr_pe_done(pr, op);
}

static void
s_out(int stream, const uint8_t *data, size_t len, void *arg)
{
    evr_pe_op_t *op = arg;
    op->from[stream == 1 ? 0 : 1] += len;
    op->out(stream, data, len, op->arg);
}

/*  conmon's socket is connected: the stream is set up. */
static void
s_conmon_head(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_pe_op_t *op = arg;
    op->timer = 0;
    evr_podman_result_t pr = { .rc = EVR_OK, .msg = "", .status = 200 };
    s_head(&pr, op);
}

/*  The unit of an attach whose socket broke has exited (or podman's wait
    failed: its log is read all the same): its log, past what was passed
    on, ends the attach. */
static void
s_reset_waited(const evr_podman_result_t *pr, void *arg)
{
    (void) pr;
    evr_pe_op_t *op = arg;
    if (op->detached || !op->unit) {
        evr_podman_result_t d = { .rc = EVR_ERR_PODMAN, .msg = "the output stream was detached" };
        s_attach_done(&d, op);
        return;
    }
    op->call = evr_podman_logs(op->pe->pm, op->unit->name, false, evr_pe_log_out, s_attach_done,
                               op);
}

/*  The end of conmon's socket, as the end of podman's attach. */
static void
s_conmon_end(evr_rc_t rc, const char *msg, void *arg)
{
    evr_pe_op_t *op = arg;
    evr_conmon_destroy(&op->conmon);
    /* test hook: EVR_TEST_CONMON_RESET=1 takes a whole stream's end for a
       reset socket (what conmon's close of a connection it never took
       gives) */
    if (!rc && !op->detached && getenv("EVR_TEST_CONMON_RESET")) {
        rc = EVR_ERR_PODMAN;
        msg = "reading conmon's attach socket: Connection reset by peer (EVR_TEST_CONMON_RESET)";
    }
    if (rc && !op->detached && !op->timer && op->unit) {
        /* the socket broke (conmon closed it with our connection not yet
           taken, under load: ECONNRESET): conmon writes every byte to the
           container's log before its sockets, so once the container has
           exited (podman's followed log is not whole) the rest comes from
           podman's log of it, past what was passed on */
        evr_log_warn("evrun-runner", "container %s: conmon's attach socket: %s; the rest of "
                     "its output is read from podman's log once it has exited", op->unit->name,
                     msg);
        op->read[0] = op->read[1] = 0;
        /* podman's wait lets its cleanup take conmon's exit file: the exit
           is then inspect's, and exit files stay in use for other units */
        evr_conmon_exit_destroy(&op->unit->exit);
        evr_podman_wait(op->pe->pm, op->unit->name, s_reset_waited, op);
        return;
    }
    if (op->timer) {   /* ended before its head's turn: never set up */
        evr_loop_timer_cancel(op->pe->base.loop, op->timer);
        op->timer = 0;
        if (!rc) {
            rc = EVR_ERR_PODMAN;
            msg = "conmon closed its attach socket before the stream was set up";
        }
    }
    evr_podman_result_t pr = { .rc = rc, .msg = msg, .status = rc ? 0 : 200 };
    s_attach_done(&pr, op);
}

/*  The output of a container this process made is read from conmon's
    socket in its bundle directory (evr_conmon.h): no copy through the
    podman service.  Any other (recovery's, or a socket this process
    cannot reach: a podman of another user or host) through podman's
    attach. */
void *
evr_pe_attach(evr_exec_t *ex, const char *name, evr_exec_output_fn *out, evr_exec_fn *head,
         evr_exec_fn *done, void *arg)
{
    evr_pe_t *pe = evr_pe(ex);
    evr_pe_op_t *op = evr_pe_op_new(pe, EVR_PE_PLAIN, done, arg);
    op->out = out;
    op->head = head;
    evr_pe_unit_t *old = evr_pe_unit_find(pe, name);
    if (old)
        evr_pe_unit_free(old);
    op->unit = s_unit_new(pe, name);
    op->unit->attach = op;
    char *dir = evr_bundles_take(pe->bundles, name);
    evr_err_t err;
    if (dir)
        op->conmon = evr_conmon_attach(ex->loop, dir, s_out, s_conmon_end, op, &err);
    if (dir && !op->conmon)
        evr_bundles_forget(pe->bundles);   /* the next create learns it anew */
    if (op->conmon && !pe->no_exit_files)   /* where its exit will be written */
        op->unit->exit = evr_conmon_exit_new(evr_conmon_pid(op->conmon), dir);
    free(dir);
    if (op->conmon)   /* its head from a turn of the loop, as podman's */
        op->timer = evr_loop_timer_add(ex->loop, 0, s_conmon_head, op);
    else
        op->call = evr_podman_attach(pe->pm, name, s_out, s_head, s_attach_done, op);
    return op;
}

void
evr_pe_detach(evr_exec_t *ex, void *handle)
{
    evr_pe_op_t *op = handle;
    op->detached = true;
    if (op->conmon)
        s_conmon_end(EVR_ERR_PODMAN, "the output stream was detached", op);
    else if (op->call)
        evr_podman_detach(evr_pe(ex)->pm, op->call);
    /* else: a broken socket's wait for the exit, which ends it as detached */
}

void
evr_pe_wait(evr_exec_t *ex, const char *name, evr_exec_fn *fn, void *arg)
{
    evr_pe_t *pe = evr_pe(ex);
    evr_pe_op_t *op = evr_pe_op_new(pe, EVR_PE_WAIT, fn, arg);
    evr_pe_unit_t *u = evr_pe_unit_find(pe, name);
    if (u && !u->wait) {
        /* the unit's inspect answers it, or sends it to podman */
        u->wait = op;
        op->unit = u;
        if (u->known)   /* answered from a turn of the loop, not from here */
            u->timer = evr_loop_timer_add(pe->base.loop, 0, s_exit_retry, u);
        return;
    }
    op->sent = true;
    evr_podman_wait(pe->pm, name, evr_pe_done, op);
}
