/*  evr_fprint.h: how a follow prints jobs' events (evr_follow.c decides
    which events, in which order; this prints each one it is given).

    Output lines are printed whole, as "job/step | line" (or "step | line"
    when following one job from evrun-cli), assembled across chunks; a
    line over 64 KiB in pieces, never cut inside a UTF-8 character.  A
    line with no newline yet that waited 100 ms (a step printing dots, a
    prompt) is printed by evr_fprint_show as it is and left open: more of
    it goes on it, and anything else printed first ends it there, its rest
    printed later as a line of its own, as `evrun-runner --exec` prints
    it.  Without --events, a step or job that ended other than succeeded,
    a skipped step and a retry get one line each; images and hooks always
    do.  With --json, one JSON object per event (output only, without
    --events).  A write to `out` that fails ends the printing: its reader
    gone (EPIPE) sets *stop, as a signal would; another error is said on
    stderr (evr_fprint_failed: exit 2).
*/
#ifndef EVR_FPRINT_H_INCLUDED
#define EVR_FPRINT_H_INCLUDED

#include "evr_follow.h"

typedef struct evr_fprint evr_fprint_t;
/*  One job's lines in progress and the attempts of its steps that started. */
typedef struct evr_fprint_job evr_fprint_job_t;

/*  A printer to o->out with o's choices (job_prefix, events, json, step,
    job_end); prog prefixes its messages; stop is set when out's reader
    went away (may be NULL). */
evr_fprint_t *evr_fprint_new(const char *prog, const evr_follow_opts_t *o,
                             volatile sig_atomic_t *stop);
/*  Frees the printer and its jobs (what is not flushed is not printed). */
void evr_fprint_destroy(evr_fprint_t **self_p);

/*  A job of id (a ULID) to print events of (the jobs' lines are shown and
    flushed newest job first); the printer owns it until
    evr_fprint_job_destroy. */
evr_fprint_job_t *evr_fprint_job_new(evr_fprint_t *self, const char *id);
/*  Forgets a job and its lines not printed yet; accepts NULL. */
void evr_fprint_job_destroy(evr_fprint_t *self, evr_fprint_job_t **job_p);

/*  Prints ev (of job), the next of its events in order; a step's or the
    job's end prints that step's (every step's) line in progress first. */
void evr_fprint_event(evr_fprint_t *self, evr_fprint_job_t *job, const evr_event_t *ev);
/*  Shows the lines with no newline that waited 100 ms (while following
    live: call it at least that often). */
void evr_fprint_show(evr_fprint_t *self);
/*  Prints every job's lines in progress, each ended (the follow's end). */
void evr_fprint_flush(evr_fprint_t *self);

/*  Whether a write to out failed: nothing more is printed. */
bool evr_fprint_ended(const evr_fprint_t *self);
/*  Whether it failed other than by its reader going away, said on stderr. */
bool evr_fprint_failed(const evr_fprint_t *self);

#endif
