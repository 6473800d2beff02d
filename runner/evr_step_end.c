/*  evr_step_end.c: a step's end (part of evr_step.c's story): once its
    output has ended and its exit code is known (evr_eng_maybe_end), the
    rest of the output is stored and artifacts copied out; then its status
    and reason (a command the shell could not run, the OOM killer),
    step.finished, a retry when its policy covers how it ended, and the
    unit's removal after the event is committed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_engine_int.h"

static void
s_removed(const evr_exec_result_t *r, void *arg)
{
    evr_eng_job_t *job = arg;
    if (r->rc && !r->not_found) {
        job->doubt = true;   /* its cleanup looks for it again */
        if (job->eng->opts.print)
            printf("evrun-runner: removing a %s of job %s: %s\n", job->ex->ops->unit_word,
                   job->id, r->msg);
    }
    job->calls--;
}

/*  After step.finished is committed: remove the unit (data: its name,
    which a retry has already replaced in the step). */
static void
s_do_remove(void *arg, void *data, size_t len)
{
    (void) len;
    evr_eng_step_t *st = arg;
    evr_eng_test_pause("between_steps", st);
    if (st->job->eng->opts.keep)
        return;
    st->job->calls++;
    st->job->ex->ops->remove(st->job->ex, data, s_removed, st->job);
}

/*  Whether the step's retry policy covers how it ended, with attempts left.
    A failure that stops the job (on_failure: stop) ends the retries of
    the steps of its course, not of those that run after a failure (when:
    always | on_failure, on_error: the failure does not stop them); none
    after a cancel or a timeout of the job. */
static bool
s_retryable(const evr_eng_step_t *st)
{
    const evr_retry_t *r = &st->spec->retry;
    const evr_eng_job_t *job = st->job;
    if (!r->present || st->attempt > r->max || job->cancelling || job->timed_out
        || job->eng->failure
        || (job->failed && job->spec->on_failure == EVR_ON_FAILURE_STOP
            && !evr_eng_after_failure(st)))
        return false;
    const char *how = evr_step_status_name(st->status);
    for (uint32_t i = 0; i < r->on.n; i++)
        if (strcmp(r->on.v[i], how) == 0)
            return true;
    return false;
}

/*  The next attempt: a fresh unit, output counted from zero. */
static void
s_retry(evr_eng_step_t *st)
{
    evr_eng_step_log(st, "retrying (attempt %u of %u)", st->attempt + 1,
                     st->spec->retry.max + 1);
    st->attempt++;
    st->status = EVR_STEP_PENDING;
    st->attach_done = st->exit_known = st->stop_sent = st->kill_sent = false;
    st->timed_out = st->cancelled = st->lost = false;
    evr_eng_step_freeze_reset(st);
    st->paused_ns = 0;
    st->peek_at = 0;
    st->retakes = 0;
    st->exit_code = 0;
    st->oom_killed = false;
    st->signal = 0;
    st->err_head_len = 0;
    st->err_head_done = false;
    st->err_head[0] = '\0';
    st->t_start = st->t_end = st->exited_at = 0;
    free(st->reason);
    st->reason = NULL;
    free(st->unit_id);
    st->unit_id = NULL;
    evr_strmap_free(&st->outputs);
    st->outputs_read = false;
    for (int si = 0; si < 2; si++) {
        st->out[si].raw_off = 0;
        st->out[si].len = 0;
        st->out[si].raw_in_buf = 0;
        st->skip[si] = 0;
    }
    free(st->unit);
    evr_eng_step_to(st, EVR_ENG_STEP_PENDING);
    evr_eng_step_begin(st);
}

/*  bytes for people: "512 MiB" when a whole number of KiB, MiB, GiB, TiB,
    else "N bytes". */
static void
s_size_text(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
    int u = -1;
    while (u < 3 && bytes && bytes % 1024 == 0) {
        bytes /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(buf, size, "%llu bytes", (unsigned long long) bytes);
    else
        snprintf(buf, size, "%llu %s", (unsigned long long) bytes, units[u]);
}

#define S_FEW_FILES 32   /* limits.nofile this low may be why a program cannot start */

/*  The shell's codes for a command it could not run (126, 127) get a
    reason that says where to look, unless the engine stopped the step:
    in a host step with few open files (limits.nofile), that limit. */
static void
s_shell_reason(evr_eng_step_t *st)
{
    if ((st->exit_code != 127 && st->exit_code != 126) || st->reason || st->stop_sent
        || st->kill_sent || st->timed_out || st->cancelled || st->lost)
        return;
    const evr_spec_t *spec = st->job->spec;
    if (spec->executor == EVR_EXECUTOR_PROCESS) {
        /* a host step's few open files: the shell, or a program it runs,
           cannot open its libraries (EMFILE) and the shell says 127 */
        evr_limits_t lim;
        evr_spec_limits_merge(spec, st->spec, &lim);
        uint64_t nofile = lim.nofile;
        evr_rec_free(&evr_limits_type, &lim);
        if (nofile && nofile <= S_FEW_FILES) {
            evr_eng_set_reason(st, "a command could not be started: limits.nofile is %llu open "
                               "files, which may be too few for a program to open its "
                               "libraries (\"Error 24\" in the output); raise limits.nofile, "
                               "or leave it out (the step's output names it)",
                               (unsigned long long) nofile);
            return;
        }
    }
    const char *where = "is it on the runner host's PATH?";
    char in_image[600];
    if (spec->executor != EVR_EXECUTOR_PROCESS) {
        snprintf(in_image, sizeof in_image, "is it installed in the image %.512s?",
                 st->spec->image ? st->spec->image : spec->image ? spec->image : "?");
        where = in_image;
    }
    if (st->exit_code == 127)
        evr_eng_set_reason(st, "a command was not found: %s (the step's output names it)",
                           where);
    else
        evr_eng_set_reason(st, "a command could not be run: not executable, or not a program "
                           "(the step's output names it)");
}

#define S_PID1_HEAD "ERROR (catatonit:"
#define S_PID1_WHAT "): failed to exec pid1: "

/*  A container step whose init (catatonit: podman's "init": true) could
    not start its /bin/sh -c SCRIPT (an image with no shell, a /bin/sh
    that is no program of this machine's): it exits 1, and the first line
    of its stderr, whole by now (the output has ended), says so. */
static void
s_entry_reason(evr_eng_step_t *st)
{
    if (st->exit_code != 1 || st->reason || st->stop_sent || st->kill_sent || st->timed_out
        || st->cancelled || st->lost || st->job->spec->executor == EVR_EXECUTOR_PROCESS
        || strncmp(st->err_head, S_PID1_HEAD, strlen(S_PID1_HEAD)))
        return;
    const char *why = strstr(st->err_head, S_PID1_WHAT);
    if (!why)
        return;
    why += strlen(S_PID1_WHAT);
    const evr_spec_t *spec = st->job->spec;
    const char *image = st->spec->image ? st->spec->image : spec->image ? spec->image : "?";
    /* the shell itself: missing, not executable, not a program of this
       machine's; any other (E2BIG: Argument list too long) is not the
       image's */
    if (!strcmp(why, "No such file or directory") || !strcmp(why, "Permission denied")
        || !strcmp(why, "Exec format error") || !strcmp(why, "Not a directory"))
        evr_eng_set_reason(st, "the image %.512s has no /bin/sh that runs (%.100s): a step's "
                           "run is a /bin/sh -c script; use an image with a shell", image, why);
    else
        evr_eng_set_reason(st, "the container's init could not start the step's /bin/sh -c "
                           "(%.100s): its environment and script are the arguments of that "
                           "exec", why);
}

/*  A host step that a signal ended, which the engine did not send, under
    a limit of its own that ends a process that way: a reason that names
    the limit (the exit alone says nothing of it).  RLIMIT_CPU ends a
    process with SIGXCPU, then SIGKILL; under RLIMIT_AS an allocation
    fails, and many programs then abort or crash. */
static void
s_limit_reason(evr_eng_step_t *st)
{
    const evr_spec_t *spec = st->job->spec;
    if (spec->executor != EVR_EXECUTOR_PROCESS || st->reason || st->stop_sent || st->kill_sent
        || st->timed_out || st->cancelled || st->lost)
        return;
    evr_limits_t lim;
    evr_spec_limits_merge(spec, st->spec, &lim);
    char text[32];
    int sig = st->signal;   /* the supervisor's word: an exit 137 is no SIGKILL */
    if (lim.cpu && (sig == SIGKILL || sig == SIGXCPU))
        evr_eng_set_reason(st, "killed by %s, which evrun did not send: limits.cpu is %llu s "
                           "of CPU time per process, and a process that uses it up is ended "
                           "so (raise limits.cpu, or leave it out)",
                           sig == SIGKILL ? "SIGKILL" : "SIGXCPU",
                           (unsigned long long) ((lim.cpu + 999) / 1000));
    else if (lim.memory && (sig == SIGSEGV || sig == SIGABRT || sig == SIGBUS)) {
        s_size_text(lim.memory, text, sizeof text);
        evr_eng_set_reason(st, "killed by %s: limits.memory is %s of address space per "
                           "process, and a program whose allocation fails past it may end so "
                           "(raise limits.memory, or leave it out)",
                           sig == SIGSEGV ? "SIGSEGV" : sig == SIGABRT ? "SIGABRT" : "SIGBUS",
                           text);
    }
    evr_rec_free(&evr_limits_type, &lim);
}

/*  A container step that exited 137 (128 + SIGKILL), which the engine
    did not send and no memory limit explains (the executor marks those
    oom_killed): podman's exit alone does not tell a kill from a
    program's exit 137, so the reason says what may have done it. */
static void
s_kill_reason(evr_eng_step_t *st)
{
    if (st->exit_code != 128 + SIGKILL || st->signal || st->oom_killed || st->reason
        || st->stop_sent || st->kill_sent || st->timed_out || st->cancelled || st->lost
        || st->job->spec->executor == EVR_EXECUTOR_PROCESS)
        return;
    evr_eng_set_reason(st, "exit 137: a SIGKILL that evrun did not send ended it or its last "
                       "command (or it exited 137 itself): the kernel's OOM killer (the host's "
                       "kernel log says), or another process (podman kill, stop or rm -f of "
                       "its container)");
}

/*  A step that a signal ended, which the engine did not send, and no
    limit explains: its reason names the signal, as a hook's does
    (evr_wait_text), where the exit code 128+N alone could be a program
    that exited so.  Only an executor that knows says it (the process
    executor's supervisor; podman's 128+N is not told from an exit). */
static void
s_signal_reason(evr_eng_step_t *st)
{
    if (!st->signal || st->reason || st->stop_sent || st->kill_sent || st->timed_out
        || st->cancelled || st->lost)
        return;
    char how[64];
    evr_wait_text(st->signal, how, sizeof how);   /* a wait status of signal N is N */
    if (st->signal == SIGKILL)
        evr_eng_set_reason(st, "%s, which evrun did not send (another process, or the "
                           "kernel's OOM killer: the host's kernel log says which)", how);
    else
        evr_eng_set_reason(st, "%s", how);
}

void
evr_eng_step_finish(evr_eng_step_t *st)
{
    evr_eng_job_t *job = st->job;
    s_shell_reason(st);
    s_entry_reason(st);
    s_limit_reason(st);
    s_signal_reason(st);
    s_kill_reason(st);
    /* killed by the OOM killer, not by a stop of the engine's */
    if (st->oom_killed && st->exit_code && !st->stop_sent && !st->kill_sent && !st->timed_out
        && !st->cancelled) {
        char lim[32] = "none";
        if (st->memory_limit)
            s_size_text(st->memory_limit, lim, sizeof lim);
        evr_eng_set_reason(st, "out of memory (limit %s)", lim);
    }
    if (st->timed_out && st->stop_sent && !st->kill_sent && st->exit_code == 137 && st->reason) {
        /* SIGTERM did not end it: the runner's grace passed and SIGKILL
           did, which the exit alone does not say */
        char *why = st->reason;
        st->reason = NULL;
        evr_eng_set_reason(st, "%s; it did not end on SIGTERM and was killed (SIGKILL) %d s "
                           "later, the runner's --grace", why, job->eng->opts.grace_s);
        free(why);
    }
    if (st->timed_out)
        st->status = EVR_STEP_TIMED_OUT;
    else if (st->cancelled)
        st->status = EVR_STEP_CANCELLED;
    else if (st->lost)
        st->status = EVR_STEP_LOST;
    else if (st->exit_code == 0 && !st->reason)
        st->status = EVR_STEP_SUCCEEDED;
    else
        st->status = EVR_STEP_FAILED;
    /* failed after an exit 0 (an artifact): said, so no one takes the 0 for the cause */
    if (st->status == EVR_STEP_FAILED && st->exit_code == 0) {
        char *why = st->reason;
        st->reason = NULL;
        evr_eng_set_reason(st, "its command exited 0, but %s", why);
        free(why);
    }
    /* allow_failure: a failure, not a cancel, that does not fail the job
       (a retry comes first) */
    st->allowed = st->spec->allow_failure && st->status != EVR_STEP_SUCCEEDED
               && st->status != EVR_STEP_CANCELLED && !s_retryable(st);
    evr_eng_step_to(st, EVR_ENG_STEP_FINISHED);
    evr_eng_chan_close(st);
    job->running--;
    uint64_t ms = st->t_start && st->t_end > st->t_start ? (st->t_end - st->t_start) / 1000000u : 0;
    evr_event_t *ev = evr_eng_emit(job, EVR_EV_STEP_FINISHED, st);
    ev->data.exit_code = st->exit_code;
    ev->data.duration = ms;
    ev->data.status = evr_strdup(evr_step_status_name(st->status));
    if (st->reason)
        ev->data.reason = evr_strdup(st->reason);
    ev->data.allowed = st->allowed;
    char code[32] = "", dur[32] = "never started";   /* a step that did has no duration */
    if (evr_step_exit_told(st->exit_code, st->status == EVR_STEP_SUCCEEDED))
        snprintf(code, sizeof code, "exit %lld, ", (long long) st->exit_code);
    if (st->t_start)
        snprintf(dur, sizeof dur, "%llu.%03llus", (unsigned long long) (ms / 1000),
                 (unsigned long long) (ms % 1000));
    evr_eng_step_log(st, "%s%s (%s%s)%s%s", evr_step_status_name(st->status),
               st->allowed ? " (allowed)" : "", code, dur, st->reason ? ": " : "",
               st->reason ? st->reason : "");
    evr_eng_after(job->eng, s_do_remove, st, st->unit, strlen(st->unit) + 1);
    if (st->status != EVR_STEP_SUCCEEDED && s_retryable(st))
        s_retry(st);
    else if (st->status != EVR_STEP_SUCCEEDED && !st->cancelled && !st->allowed)
        job->failed = true;
}

/*  Output ended and the exit code is known: store the rest of the output,
    copy artifacts out, record the result. */
void
evr_eng_maybe_end(evr_eng_step_t *st)
{
    if (!st->attach_done || !st->exit_known || st->state == EVR_ENG_STEP_ENDING
        || evr_eng_step_done(st))
        return;
    evr_eng_test_pause("after_exit", st);
    if (!st->t_end)
        st->t_end = evr_mono_ns();
    evr_eng_step_to(st, EVR_ENG_STEP_ENDING);
    for (int si = 0; si < 2; si++)
        evr_eng_emit_output(st, si, true);
    evr_eng_step_collect(st);   /* outputs, artifacts, then the end */
}
