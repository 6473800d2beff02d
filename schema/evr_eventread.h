/*  evr_eventread.h: stored events decoded fast, for replay.

    evr_event_decode() copies every string and every output byte onto the
    heap through msgpack-c, ~1.3 us an event; replaying a log of millions
    of events spends most of its time there.  A reader decodes the same
    bytes by hand into one reused event whose strings live in the
    reader's own buffer: no allocation, no copy of output bytes, and of a
    job.accepted's spec only what evr_job_apply() reads (the step names).

    The reader checks everything it decodes as the full decoder does (types,
    limits, UTF-8, NUL bytes, the field checks, required fields, duplicate
    keys, nesting depth, trailing bytes).  Whatever it does not take as
    given (an unusual but valid encoding, or bytes that are not a valid
    event) it hands to evr_event_decode(): the result, or the error
    message, is then exactly the full decoder's.  What it skips: the
    spec's fields other than the step names and the required keys of the
    spec and its steps are only walked (well-formed msgpack within the
    depth limit), not checked value by value, and `args` is checked but
    left out (a step.outputs' `outputs` is kept).
*/
#ifndef EVR_EVENTREAD_H_INCLUDED
#define EVR_EVENTREAD_H_INCLUDED

#include "evr_event.h"

typedef struct evr_eventread evr_eventread_t;

enum {
    /*  step.output: data.bytes points into the decoded buffer (valid as
        long as it is); without it bytes is empty (len 0, data NULL). */
    EVR_EVENTREAD_BYTES = 1 << 0,
    /*  An event with a spec (job.accepted) is decoded by evr_event_decode
        too, so that every value of it is checked (--verify): the event is
        then the full decoder's (its spec whole), an error its; a spec of
        the same bytes as one taken so before is not decoded again (the
        event is then the fast one). */
    EVR_EVENTREAD_CHECK = 1 << 1,
};

/*  A reader; what is a set of EVR_EVENTREAD_* flags. */
evr_eventread_t *evr_eventread_new(unsigned what);
void evr_eventread_destroy(evr_eventread_t **self_p);

/*  Decodes buf[0..len) (untrusted) into *ev, an event owned by the reader
    and valid until its next decode or its destruction: never free it.
    Its data carries every field of its type except as said above: for a
    job.accepted, spec holds only the steps' count and names (steps.n,
    steps[i].name; every other field of the spec and its steps zero) and
    args is empty.  Errors: those of
    evr_event_decode(), with its messages. */
evr_rc_t evr_eventread_decode(evr_eventread_t *self, const uint8_t *buf, size_t len,
                              const evr_event_t **ev, evr_err_t *err);

/*  Decodes the fast path declined, handed to evr_event_decode() so far
    (tests, benchmarks); a spec's check (EVR_EVENTREAD_CHECK) is not one. */
uint64_t evr_eventread_fallbacks(const evr_eventread_t *self);

#endif
