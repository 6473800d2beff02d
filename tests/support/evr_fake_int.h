/*  evr_fake_int.h: the fake executor's insides, shared by evr_fake_core.c
    (the queue, the units, carrying out operations) and evr_exec_fake.c
    (the calls of evr_exec.h and the test's API).  Private to
    tests/support.
*/
#ifndef EVR_FAKE_INT_H_INCLUDED
#define EVR_FAKE_INT_H_INCLUDED

#include "evr_fake_prog.h"
#include "evr_fake_ws.h"

typedef struct {
    int stream;
    uint8_t *data;
    size_t len;
} evr_fake_rec_t;

typedef struct evr_fake_unit {
    evr_exec_fake_t *f;
    char *name, *job_id, *id;
    evr_exec_state_t state;
    int64_t exit_code;
    int signal;             /* exited: the signal that ended it (kill -N), 0: none */
    bool oom;
    uint64_t started_at;
    evr_fake_prog_t prog;
    size_t pc;
    int status;             /* of the last command */
    uint64_t timer;         /* the program's sleep (a loop timer), 0: none */
    uint64_t wake_at;       /* mono ns that sleep ends */
    uint64_t left_ms;       /* paused in a sleep: what was left of it */
    bool slept;             /* paused in a sleep (not a forever one) */
    bool term_pending;      /* SIGTERM sent while it was frozen */
    uint64_t kill_timer;    /* SIGKILL after the grace */
    evr_fake_rec_t *log;
    size_t nlog, logcap;
    uint64_t printed[2];
    struct evr_fake_unit *next;
} evr_fake_unit_t;

typedef struct evr_fake_stream {
    bool logs;              /* a read of the log, not an attach */
    char *name;
    evr_exec_output_fn *out;
    evr_exec_fn *head, *done;
    void *arg;
    bool live;              /* attach: following the unit's output */
    bool ended;             /* its end is queued */
    bool done_called;
    bool detached;
    bool dead;              /* its caller died (evr_exec_fake_crash) */
    uint64_t drop_after, passed;
    struct evr_fake_stream *next;
} evr_fake_stream_t;

/*  An item: an operation to carry out, output or the end of a stream to
    pass on, or the answer of an operation carried out already (LATE,
    HOLD_ANSWER). */
enum { EVR_FAKE_I_OP, EVR_FAKE_I_OUT, EVR_FAKE_I_END, EVR_FAKE_I_ANSWER };

typedef struct evr_fake_item {
    uint64_t seq, due;
    int kind;
    evr_fake_op_t op;
    evr_fake_kind_t fault;  /* 0: none */
    char *fault_msg;
    bool held;
    char *name;             /* unit, job id or prefix */
    char *job_id, *path, *script;
    evr_strmap_t env;
    int grace_s;
    uint64_t from[2];
    uint64_t after_bytes;   /* a DROP fault's */
    uint64_t late_ms;       /* a LATE fault's */
    bool exited;            /* a parked wait: its unit exited with exit_code, signal, oom */
    int64_t exit_code;
    int signal;
    bool oom;
    evr_exec_fn *fn;
    void *arg;
    evr_exec_data_fn *data_fn;
    evr_fake_stream_t *s;
    int stream;             /* EVR_FAKE_I_OUT */
    uint8_t *data;
    size_t len;
    evr_exec_result_t end;  /* EVR_FAKE_I_END (msg owned) */
    struct evr_fake_item *next;
} evr_fake_item_t;

typedef struct evr_fake_faultrec {
    evr_fake_fault_t f;
    uint32_t left;
    struct evr_fake_faultrec *next;
} evr_fake_faultrec_t;

typedef struct evr_fake_behaverec {
    char *pattern;
    evr_fake_behave_t b;
    struct evr_fake_behaverec *next;
} evr_fake_behaverec_t;

typedef struct {
    evr_fake_op_t op;
    char *name;
} evr_fake_call_t;

struct evr_exec_fake {
    evr_exec_t base;
    evr_exec_ops_t ops;
    char *name;
    evr_rc_t err_rc;
    uint64_t grace_ms_per_s;
    evr_fake_unit_t *units;
    evr_fake_ws_t **ws;
    size_t nws;
    evr_fake_stream_t *streams;
    evr_fake_item_t *queue, **qtail;
    evr_fake_item_t *parked;
    evr_fake_faultrec_t *faults;
    evr_fake_behaverec_t *behaves;
    evr_fake_call_t *calls;
    size_t ncalls, ccap;
    char **viol;
    size_t nviol;
    uint64_t next_seq, next_id;
    uint64_t pump_timer, pump_due;
    bool in_pump, mute;
    bool wait_early;        /* waits answer ahead of output in flight */
    char describe[64];
};


bool evr_fake_match(const char *pattern, const char *name);
void evr_fake_violation(evr_exec_fake_t *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*  Queues an item (due 0: now), and sets the pump's timer. */
void evr_fake_enqueue(evr_exec_fake_t *f, evr_fake_item_t *it);
/*  The same, ahead of every item queued (for the next run of the pump). */
void evr_fake_enqueue_front(evr_exec_fake_t *f, evr_fake_item_t *it);
void evr_fake_arm(evr_exec_fake_t *f);
void evr_fake_item_free(evr_fake_item_t *it);
/*  Carries out one item (it is freed, or parked). */
void evr_fake_run(evr_exec_fake_t *f, evr_fake_item_t *it);
/*  Queues the end of stream s (once). */
void evr_fake_end(evr_exec_fake_t *f, evr_fake_stream_t *s, bool ok, bool not_found, bool transport,
                  const char *msg);
evr_fake_unit_t *evr_fake_unit(const evr_exec_fake_t *f, const char *name);
evr_fake_unit_t *evr_fake_unit_new(evr_exec_fake_t *f, const char *name, const char *job_id,
                            const char *script, const evr_strmap_t *env);
void evr_fake_unit_free(evr_exec_fake_t *f, evr_fake_unit_t *u);
void evr_fake_unit_start(evr_fake_unit_t *u);
void evr_fake_unit_freeze(evr_fake_unit_t *u, bool frozen);
evr_fake_ws_t *evr_fake_ws_of(const evr_exec_fake_t *f, const char *job_id);

#endif
