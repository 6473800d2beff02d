/*  evr_hooks.h: the runner's lifecycle hooks (README "Lifecycle hooks").

    The `hooks:` list of the runner's settings file, read here with libyaml
    (sys/evr_config.c reads the flat keys of the same file and leaves this
    one alone), checked, and kept sorted by phase, then priority (lower
    first), then file order.  A hook runs as `/bin/sh -c RUN` in its own
    process group, a child of the runner watched on its event loop: the
    job's context as JSON on its stdin, its stdout (up to PRE_EXECUTION,
    an answer: JSON) and stderr read up to a bound, its timeout killing
    the whole group, the group recorded in the state directory while it
    runs (evr_hook_pg.h) so that the next runner kills what a killed one
    left.  The engine (evr_eng_hooks.c) decides when each phase fires and
    what a result means for the job.
*/
#ifndef EVR_HOOKS_H_INCLUDED
#define EVR_HOOKS_H_INCLUDED

#include <stdio.h>

#include "evr_common.h"
#include "evr_field.h"
#include "evr_loop.h"

typedef enum {
    EVR_HOOK_PRE_VALIDATION,
    EVR_HOOK_POST_VALIDATION,
    EVR_HOOK_PRE_SOURCE_PREP,
    EVR_HOOK_POST_SOURCE_PREP,
    EVR_HOOK_PRE_EXECUTION,
    EVR_HOOK_POST_EXECUTION,
    EVR_HOOK_ON_ERROR,
    EVR_HOOK_CLEANUP,
} evr_hook_phase_t;
#define EVR_HOOK_NPHASES (EVR_HOOK_CLEANUP + 1)

#define EVR_HOOKS_MAX 64                /* hooks in one settings file */
#define EVR_HOOK_RUN_MAX 4096           /* bytes of a hook's `run` */
#define EVR_HOOK_TIMEOUT_DEFAULT 60     /* seconds */
#define EVR_HOOK_TIMEOUT_MAX 3600       /* seconds */
#define EVR_HOOK_OUT_MAX (64u * 1024u)  /* bytes of a hook's stdout read (its answer) */
#define EVR_HOOK_ERR_MAX 1024u          /* bytes of its stderr kept (its message) */
#define EVR_HOOK_ANSWER_MAX 64          /* env plus secrets entries of one answer */

typedef struct {
    evr_hook_phase_t phase;
    char *name;         /* given, or "PHASE-N" (N its position in the file, from 1) */
    char *run;          /* given to /bin/sh -c */
    int64_t priority;   /* lower runs first; ties in file order */
    uint32_t timeout;   /* seconds */
    bool optional;      /* its failure does not fail the job */
    uint32_t line;      /* where the settings file says it (1-based) */
    uint32_t name_line, name_col;   /* where its name is given (1-based); 0: defaulted */
} evr_hook_t;

typedef struct {
    evr_hook_t *v;      /* sorted by phase, priority, file order */
    size_t n;
} evr_hooks_t;

/*  The phase's name as written in settings and events ("PRE_EXECUTION"),
    and the reverse (false for an unknown name). */
const char *evr_hook_phase_name(evr_hook_phase_t p);
bool evr_hook_phase_parse(const char *s, evr_hook_phase_t *out);
/*  Whether p is a PRE_* phase (a non-zero exit there is a refusal). */
bool evr_hook_phase_pre(evr_hook_phase_t p);

/*  Reads the `hooks:` list of the settings file path into *out (NULL
    when the file has none: no hooks).  Every problem is EVR_ERR_CONFIG
    with "FILE:LINE:COL: hooks[I].FIELD: what is wrong, what to do": an
    unknown phase or field, a missing or empty run, a bad priority or
    timeout, a duplicate name, more than EVR_HOOKS_MAX hooks; every field
    of every hook is checked, and err holds each problem on a line of its
    own, in file order (those past what it holds counted on a last line,
    "FILE: hooks: and N more problems").  Caller owns *out
    (evr_hooks_destroy). */
evr_rc_t evr_hooks_load(const char *path, evr_hooks_t **out, evr_err_t *err);
/*  The same from a buffer (name: what errors call it). */
evr_rc_t evr_hooks_load_buf(const char *name, const char *buf, size_t len, evr_hooks_t **out,
                            evr_err_t *err);
void evr_hooks_destroy(evr_hooks_t **self_p);
/*  Prints the hooks in the order they run, as --print-config shows them:
    a `hooks:` list in YAML (a comment when there are none). */
void evr_hooks_print(const evr_hooks_t *self, FILE *out);

/* ------------------------------------------------------------------ a run */

typedef enum {
    EVR_HOOK_EXITED,        /* exit_code says how */
    EVR_HOOK_TIMED_OUT,     /* its process group was killed; or it had exited, and
                               its stdout or stderr was still open (held) */
    EVR_HOOK_NOT_RUN,       /* it could not be started (msg) */
    EVR_HOOK_STOPPED,       /* stopped by evr_hook_run_stop (a cancel) */
} evr_hook_end_t;

typedef struct {
    evr_hook_end_t end;
    int exit_code;          /* EXITED: 0..255, or 128+N for a signal N */
    int wait_status;        /* EXITED (or held): its wait status, for evr_wait_text */
    const char *out;        /* its stdout, NUL-terminated (at most EVR_HOOK_OUT_MAX bytes) */
    size_t out_len;
    bool out_cut;           /* it wrote more than EVR_HOOK_OUT_MAX bytes */
    const char *err_text;   /* its stderr as written (up to a NUL byte), at most
                               EVR_HOOK_ERR_MAX bytes: not trimmed, its newlines and tabs
                               kept, so that a secret holding them is still masked whole
                               before the text is made one line */
    bool err_cut;           /* it wrote more: err_text is cut short (may end inside a secret) */
    uint64_t duration_ms;
    const char *msg;        /* NOT_RUN: why */
    int held;               /* TIMED_OUT after it exited (exit_code says how): a process it
                               left outside its group held open its stdout (1), its stderr
                               (2) or both (3) up to its timeout; 0 otherwise */
} evr_hook_result_t;

typedef struct evr_hook_run evr_hook_run_t;
typedef void (evr_hook_done_fn)(const evr_hook_result_t *r, void *arg);

/*  Starts h on loop with input on its stdin; fn(arg) runs once, from a
    turn of the loop, when it has exited and its stdout and stderr ended
    (or its timeout passed: the group is killed; TIMED_OUT, with `held`
    when it had exited but a process it moved out of its group kept its
    stdout or stderr open).  While it runs, its
    process group is recorded in dir (evr_hook_pg.h; NULL: not recorded),
    so a runner started after this one is killed kills what it left.
    The run frees itself after fn returns.  Never NULL: a failure to
    start (or to record the group) is reported to fn (from the next turn)
    as NOT_RUN. */
evr_hook_run_t *evr_hook_run(evr_loop_t *loop, const evr_hook_t *h, const char *dir,
                             const char *input, size_t len, evr_hook_done_fn *fn, void *arg);
/*  Kills a run's process group and frees it; fn is not called. */
void evr_hook_run_abort(evr_hook_run_t *run);
/*  Stops a run: SIGTERM to its process group, SIGKILL grace_ms later if
    it has not ended; fn then reports STOPPED (whatever its exit).  A
    second stop only makes the grace none (grace_ms 0: SIGKILL now). */
void evr_hook_run_stop(evr_hook_run_t *run, uint32_t grace_ms);

/*  Reads a hook's answer: empty (or only white space), or a JSON object
    with optional "env" and "secrets", each an object of environment
    variable names to strings, added to env and secrets.  EVR_ERR_PROTO
    with why (naming the key) otherwise: an EVRUN_* name too (the
    runner's own variables are not a hook's to set). */
evr_rc_t evr_hook_answer(const char *out, size_t len, evr_strmap_t *env, evr_strmap_t *secrets,
                         evr_err_t *err);

#endif
