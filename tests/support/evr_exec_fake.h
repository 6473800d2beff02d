/*  evr_exec_fake.h: an executor in memory, for the engine's unit tests.

    It implements every operation of evr_exec.h on the real evr_loop and
    keeps each of its promises: an operation answers from a later turn of
    the loop, never from inside the call; an attach passes on a unit's
    output from its first byte, then calls done once; detach ends a stream
    with an error.  By default it behaves like a working backend: create,
    attach and start succeed, and the unit then carries out its program
    (evr_fake_prog.h: a behaviour registered for its name, else its script
    read by a very small shell), printing on its streams over time, and
    exits.  A stop ends it with 143 (SIGTERM), or with 137 after the grace
    when it ignores SIGTERM; pause and resume freeze its timer; workspaces
    and the files put into them live in memory.

    It records every call (operation and name) so that a test asserts
    their order, and the breaches of the interface's contract it sees
    (evr_exec_fake_violation).  Faults are injected per operation and unit
    name (evr_exec_fake_fault): an error, an answer that never comes (or
    comes when the test releases it: "late after a cancel"), a delay, a
    name found taken, a stream that breaks, a wait that finds no unit or
    cannot say the exit code.  Units outlive an engine: a test destroys an
    engine mid-run, evr_exec_fake_crash drops what the dead engine was
    waiting for, and a second engine recovers over the same units.
*/
#ifndef EVR_EXEC_FAKE_H_INCLUDED
#define EVR_EXEC_FAKE_H_INCLUDED

#include "evr_exec.h"

typedef struct evr_exec_fake evr_exec_fake_t;

/*  The operations, as the call record names them. */
typedef enum {
    EVR_FAKE_CREATE,
    EVR_FAKE_START,
    EVR_FAKE_ATTACH,
    EVR_FAKE_DETACH,
    EVR_FAKE_LOGS,
    EVR_FAKE_WAIT,
    EVR_FAKE_INSPECT,
    EVR_FAKE_PAUSE,
    EVR_FAKE_RESUME,
    EVR_FAKE_STOP,
    EVR_FAKE_REMOVE,
    EVR_FAKE_LIST,
    EVR_FAKE_WS_CREATE,
    EVR_FAKE_WS_REMOVE,
    EVR_FAKE_WS_LIST,
    EVR_FAKE_PUT,
    EVR_FAKE_GET,
    EVR_FAKE_OPS_
} evr_fake_op_t;

/*  "create", "start", ..., "workspace_create", "put", "get". */
const char *evr_fake_op_name(evr_fake_op_t op);

/*  A fake executor on loop, named name ("podman", "process": what
    evr_exec_find and a pipeline's `executor` look for).  Errors it
    reports carry EVR_ERR_PODMAN when named "podman", else EVR_ERR_IO.
    Caller owns the result: evr_exec_fake_destroy, or evr_exec_destroy on
    its evr_exec_fake_exec. */
evr_exec_fake_t *evr_exec_fake_new(evr_loop_t *loop, const char *name);
void evr_exec_fake_destroy(evr_exec_fake_t **self_p);
/*  The executor to give the engine (the same object). */
evr_exec_t *evr_exec_fake_exec(evr_exec_fake_t *self);

/*  A unit's grace period: a stop's grace_s seconds last grace_s * ms_per_s
    milliseconds (default 1000; tests make it short). */
void evr_exec_fake_set_grace_scale(evr_exec_fake_t *self, uint64_t ms_per_s);

/*  With early, a wait answers as soon as its unit exits, ahead of output
    still on its way to an attach (the race podman has between its wait
    and attach streams); by default the output and the end of the stream
    come first. */
void evr_exec_fake_set_wait_early(evr_exec_fake_t *self, bool early);

/*  With own, the fake says it runs a unit created without a job id
    (own_workspace, as podman does); such a unit has no workspace here:
    a file it writes fails, so give it scripts that write none. */
void evr_exec_fake_set_own_workspace(evr_exec_fake_t *self, bool own);

/* ------------------------------------------------------------ behaviours */

/*  What a unit whose name matches a pattern does once started, in place
    of its script: it prints out (then err) in pieces of piece bytes
    (0: whole), one piece of each every piece_ms; then runs run_ms more
    and exits with exit_code.  forever: it runs until stopped.
    ignore_term: a stop ends it only by SIGKILL after the grace.  oom: it
    ends OOM-killed (137, oom_killed) after run_ms. */
typedef struct {
    const char *out;
    size_t out_len;         /* 0: strlen(out) */
    const char *err;
    size_t err_len;         /* 0: strlen(err) */
    size_t piece;
    uint64_t piece_ms;
    uint64_t run_ms;
    int exit_code;
    bool forever;
    bool ignore_term;
    bool oom;
} evr_fake_behave_t;

/*  Units created from now on whose name matches pattern (fnmatch(3)) do
    b (copied); the latest matching registration wins. */
void evr_exec_fake_behave(evr_exec_fake_t *self, const char *pattern, const evr_fake_behave_t *b);

/* ---------------------------------------------------------------- faults */

typedef enum {
    EVR_FAKE_FAIL = 1,      /* answers an error (msg), does nothing */
    EVR_FAKE_TRANSPORT,     /* the same, as a broken transport (r->transport) */
    EVR_FAKE_NOT_FOUND,     /* answers not_found, does nothing */
    EVR_FAKE_EXISTS,        /* create: answers exists; the name is held by
                               something inspect does not show */
    EVR_FAKE_HOLD,          /* no answer until evr_exec_fake_release */
    EVR_FAKE_DELAY,         /* the answer comes ms later */
    EVR_FAKE_DROP,          /* attach, logs: the stream breaks (transport)
                               after after_bytes bytes were passed on */
    EVR_FAKE_LATE,          /* takes effect in turn, but answers ms later */
    EVR_FAKE_HOLD_ANSWER,   /* takes effect in turn, but answers only once
                               released (evr_exec_fake_release) */
    EVR_FAKE_LOST,          /* answers an error with r->lost (a host unit
                               whose supervisor was killed), does nothing */
} evr_fake_kind_t;

/*  A fault for the calls of op on names matching pattern (the unit name;
    the job id for workspace operations and put; the prefix for list; NULL
    matches every call).  It applies to the next times matching calls (0:
    to every one).  LATE and HOLD_ANSWER apply to operations with a
    callback fn (not attach, logs).  A wait's FAIL / NOT_FOUND / TRANSPORT / LOST come when the
    unit exits (the exit is then unknown), or at once when it has exited
    or is gone. */
typedef struct {
    evr_fake_op_t op;
    const char *pattern;
    evr_fake_kind_t kind;
    const char *msg;        /* FAIL, TRANSPORT: the message (NULL: a default) */
    uint64_t ms;            /* DELAY, LATE */
    uint64_t after_bytes;   /* DROP */
    uint32_t times;
} evr_fake_fault_t;

void evr_exec_fake_fault(evr_exec_fake_t *self, const evr_fake_fault_t *fault);
void evr_exec_fake_clear_faults(evr_exec_fake_t *self);
/*  Lets the held answers of op on names matching pattern (NULL: all) come,
    in a later turn.  Returns how many. */
size_t evr_exec_fake_release(evr_exec_fake_t *self, evr_fake_op_t op, const char *pattern);
/*  Answers held now. */
size_t evr_exec_fake_held(const evr_exec_fake_t *self);

/* ------------------------------------------------------------- the calls */

/*  Calls made so far, and the i-th: its op, and *name (the unit, job id
    or prefix; "" for workspace_list; valid until the fake is destroyed). */
size_t evr_exec_fake_ncalls(const evr_exec_fake_t *self);
evr_fake_op_t evr_exec_fake_call(const evr_exec_fake_t *self, size_t i, const char **name);
/*  Index of the first call at or after from of op on a name matching
    pattern (NULL: any), or -1. */
long evr_exec_fake_find(const evr_exec_fake_t *self, size_t from, evr_fake_op_t op,
                        const char *pattern);
/*  Calls of op on names matching pattern. */
size_t evr_exec_fake_count(const evr_exec_fake_t *self, evr_fake_op_t op, const char *pattern);
/*  The calls, one "op name" per line.  Caller frees. */
char *evr_exec_fake_trace(const evr_exec_fake_t *self);
/*  The breaches of evr_exec.h's contract the fake saw (a detach of a
    stream that had ended, a create into no workspace...), and the first's
    description (NULL when none). */
size_t evr_exec_fake_violations(const evr_exec_fake_t *self, const char **first);

/* ------------------------------------------------------------- the units */

/*  A unit's state (ABSENT when there is none) and *exit_code (may be NULL). */
evr_exec_state_t evr_exec_fake_state(const evr_exec_fake_t *self, const char *name,
                                     int64_t *exit_code);
/*  Units whose name matches pattern (NULL: all). */
size_t evr_exec_fake_units(const evr_exec_fake_t *self, const char *pattern);
/*  A unit made outside any call (a killed runner's, another's): created
    (not started), running its program, or exited with exit_code. */
void evr_exec_fake_add_unit(evr_exec_fake_t *self, const char *name, const char *job_id,
                            const char *script, evr_exec_state_t state, int64_t exit_code);
/*  Bytes unit name printed on stream (1, 2) so far (0 when none). */
uint64_t evr_exec_fake_printed(const evr_exec_fake_t *self, const char *name, int stream);

/*  Workspaces: whether job_id has one; a file in it (*data valid until it
    changes; EVR_ERR_NOTFOUND when missing); a file written into it (the
    workspace is made when missing). */
bool evr_exec_fake_ws_exists(const evr_exec_fake_t *self, const char *job_id);
evr_rc_t evr_exec_fake_ws_file(const evr_exec_fake_t *self, const char *job_id,
                               const char *path, const uint8_t **data, size_t *len);
void evr_exec_fake_ws_write(evr_exec_fake_t *self, const char *job_id, const char *path,
                            const void *data, size_t len);

/*  Operations whose answer has not come yet (held ones included), and
    streams still open. */
size_t evr_exec_fake_pending(const evr_exec_fake_t *self);

/*  The runner died: every answer, stream and callback in flight is
    dropped (never called); the units carry on.  With carry_out, the
    operations not answered yet take effect first (a create the backend
    carried out though its caller died), else they are lost. */
void evr_exec_fake_crash(evr_exec_fake_t *self, bool carry_out);

#endif
