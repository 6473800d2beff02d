/*  evr_follow.h: following jobs' events live, with late-join backfill.

    The Clone pattern of schema/PROTOCOL.md "History": subscribe to the
    event stream first, then ask `history`; print each job's events once,
    in per-job seq (jseq) order; a live event beyond the next expected
    jseq reveals a gap (a publication dropped) and history is asked again
    from the first missing one.  While the stream is quiet the followed
    job's history is asked again each second, so a lost last publication
    (job.finished) cannot leave a follower waiting forever.

    A request (history, status, jobs) the broker does not answer in time,
    or that cannot be sent (EVR_ERR_IO: busy, stopped a while,
    restarting), does not end a follow: it is said once an outage on
    stderr, the client's connection is made afresh (evr_client_reconnect:
    a late answer is never taken for another request's), what is owed is
    asked again a second after each failure (those jobs first), each wait
    twice the last up to a cap (a slow broker gets no more work), and the
    broker's first answer (the wait is timeout_ms again), or publication
    while nothing is owed, after it is said too.  A history cut short (error{unavailable}) is
    asked again from there.  Another `error` answer (no such job) ends
    it, as does any failure without `follow`.

    How each event is printed (lines assembled across chunks, a line
    with no newline yet shown live, a failed write to `out`) is
    evr_fprint.h's.  A write to `out` that fails ends the follow: its
    reader gone (EPIPE) sets *stop, as a signal would; another error is
    said on stderr (exit 2).
*/
#ifndef EVR_FOLLOW_H_INCLUDED
#define EVR_FOLLOW_H_INCLUDED

#include <signal.h>
#include <stdio.h>

#include "evr_client.h"

typedef struct {
    const char *job;        /* one job; NULL: jobs of pipeline, or every job */
    const char *pipeline;
    const char *step;       /* only this step's output and events; with job, a name
                               of none of its steps (from its job.accepted, or
                               while queued its `status`) ends it, exit 2 */
    bool events;            /* lifecycle events too */
    bool json;              /* one JSON object per event instead of lines */
    bool job_prefix;        /* "job/step | line" (else "step | line") */
    bool follow;            /* false: what is stored now, then return */
    bool from_start;        /* --pipeline/--all: jobs finished before too */
    bool job_end;           /* without events: a line for a job that ended other
                               than succeeded ("job ID failed: REASON") */
    bool queued_note;       /* with job, following: a job still in the queue (queued
                               or paused) 2 s after the start says so once on
                               stderr, as without follow (logs --follow,
                               evrun-tail --job; not run --follow: its submit
                               said whether a runner takes work) */
    bool any_step;          /* step not checked against the job's: one naming none
                               prints nothing, no error (the gateway's log, which
                               checks it itself with evr_follow_step_named) */
    FILE *out;
} evr_follow_opts_t;

/*  Whether want (--step) names one of a job's steps: the same name, a
    combination of a matrix step's written name, or on_error; when not,
    names gets the steps, ", "-joined (cut at size). */
bool evr_follow_step_named(const char *want, const evr_strlist_t *steps, char *names,
                           size_t size);

/*  Follows until the job ends (job mode), the stream has nothing more
    (follow false) or *stop is set (seen within 100 ms, in a wait for the
    broker's answer too: client's stop flag, evr_client_set_stop, is stop
    while it runs).  Returns the exit status: 0 the job
    succeeded (or no job mode), 1 it failed, was cancelled or timed out,
    2 the broker was unreachable, or (following) its event stream at
    events_endpoint (evr_client_subscribe), knows no such job, the job has no step
    `step`, or `out` could not be written (message on stderr, prefixed
    with prog); not for a broker that stops answering while following
    (see above), nor for a reader of `out` that went away (*stop set). */
int evr_follow(const char *prog, const evr_config_t *cfg, evr_client_t *client,
               const evr_follow_opts_t *o, volatile sig_atomic_t *stop);

/*  The same on *sub_p, a subscription to the job's events ("ev.JOB.",
    evr_client_subscribe) made before, when not NULL: taken over (*sub_p
    set to NULL), so that `run --follow` checks its event stream before
    it submits and nothing fails on it after (a NULL sub_p or *sub_p:
    subscribes, as evr_follow). */
int evr_follow_on(const char *prog, const evr_config_t *cfg, evr_client_t *client,
                  const evr_follow_opts_t *o, zsock_t **sub_p, volatile sig_atomic_t *stop);

#endif
