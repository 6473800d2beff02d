/*  evr_exec_process_int.h: the process executor's parts, shared by its
    files: evr_exec_process.c (the operations' records, their turns and
    reports, inotify, create, start, list, workspaces, get),
    evr_exec_process_out.c (attach, logs, detach) and
    evr_exec_process_ctl.c (wait, inspect, pause, resume, stop, remove).  Not for other modules: evr_exec_process.h is the interface. */
#ifndef EVR_EXEC_PROCESS_INT_H_INCLUDED
#define EVR_EXEC_PROCESS_INT_H_INCLUDED

#include "evr_exec.h"
#include "evr_offload.h"
#include "evr_tarout.h"
#include "evr_unit.h"

#define EVR_XP_CHUNK 65536          /* bytes per stream per turn */
#define EVR_XP_LINE 600             /* the supervisor's report, at most */

typedef enum {
    EVR_XP_CALL, EVR_XP_START, EVR_XP_ATTACH, EVR_XP_LOGS, EVR_XP_WAIT, EVR_XP_STOP,
    EVR_XP_REMOVE, EVR_XP_GET
} evr_xp_kind_t;

typedef struct evr_xp_op evr_xp_op_t;

typedef struct {
    evr_exec_t base;
    char *state_dir, *units, *work, *describe;
    int ino;                    /* inotify fd, -1 without */
    evr_xp_op_t *ops;           /* in flight */
    uint64_t seq;               /* names of temporary directories */
    /* trees renamed aside whose removal's child could not start (fork
       failed): removed later, by a child of their own (evr_xp_put_off) */
    char **trash;
    uint32_t ntrash, trash_taken;   /* ... the first trash_taken by trash_work */
    evr_offload_t *trash_work;
    uint64_t trash_timer, trash_ms; /* the next try, and its wait */
    uint64_t trash_at;          /* ... that timer's deadline (evr_mono_ns) */
    uint64_t trash_turn;        /* non-zero: trash_work waits for a removal's turn */
    uint64_t trash_late;        /* trash_work's time limit */
    uint32_t removing;          /* removals' children under way, trash_work's
                                   included (EVR_XP_RM_MAX) */
    uint64_t rm_seq;            /* the order of the removals waiting for their turn */
    uint64_t rm_limit_ms;       /* a removal's time limit (EVR_XP_RM_LIMIT_MS) */
    bool closing;               /* destroyed: no waiting removal starts */
    evr_offload_t *sweep;       /* the removal of an earlier run's leftovers, in a child */
    char **swept;               /* those it removes (renamed aside) */
    size_t nswept;
    uint8_t buf[EVR_XP_CHUNK];
} evr_xp_t;

struct evr_xp_op {
    evr_xp_op_t *next;
    evr_xp_t *ex;
    evr_xp_kind_t kind;
    char *name;                 /* the unit (or the job) */
    char *dir;                  /* the unit's directory (remove: where it was moved) */
    uint64_t timer;             /* the next turn, or the report */
    uint64_t kill_timer;        /* stop: SIGKILL after the grace */
    int wd;                     /* inotify watch of dir, -1 */
    int fd[2];                  /* attach, logs: the output files; start: fd[0] the pipe */
    uint64_t off[2], end[2];    /* attach, logs: read from, up to */
    bool headed;                /* attach: head called */
    bool final;                 /* attach: end[] is the output's final size */
    bool done;                  /* the outcome is set; s_fire reports it */
    bool soon;                  /* its next turn is the loop's next one */
    evr_exec_fn *fn, *head;
    evr_exec_output_fn *out;
    evr_exec_data_fn *data;
    void *arg;
    evr_exec_result_t r;
    char *msg, *id, *names;
    char line[EVR_XP_LINE];     /* start: the supervisor's report */
    size_t llen;
    evr_tarout_t *tar;          /* get */
    char *file;                 /* put: the tar */
    evr_offload_t *work;        /* put: the unpack; remove, workspace_remove: the
                                   tree's removal; in a child */
    evr_offload_work_fn *rm_work;   /* remove, workspace_remove: the child's work */
    evr_offload_done_fn *rm_done;   /* ... and its end */
    uint64_t rm_turn;           /* non-zero: waits for a removal's turn (in this order) */
    bool rm_counted;            /* its removal counts in ex->removing */
    uint64_t rm_timer;          /* its removal's time limit */
};

/*  What a child removing a tree (a unit's, a workspace's) reports. */
typedef struct {
    int32_t rc;
    char msg[EVR_ERR_MAX];
} evr_xp_rm_t;
EVR_OFFLOAD_FITS(evr_xp_rm_t);

/*  A new op for a unit name, its directory in op->dir; done already
    (failed) when the name is bad. */
evr_xp_op_t *evr_xp_unit_op(evr_xp_t *ex, evr_xp_kind_t kind, const char *name,
                            evr_exec_fn *fn, void *arg);
/*  Probes op->dir; false once the op has failed (it could not be read). */
bool evr_xp_probe(evr_xp_op_t *op, evr_unit_info_t *info);
/*  The outcome set (success, or rc and the message; once): reported from
    the next turn of the loop. */
void evr_xp_ok(evr_xp_op_t *op);
void evr_xp_fail(evr_xp_op_t *op, evr_rc_t rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void evr_xp_not_found(evr_xp_op_t *op);
/*  The unit's supervisor ended without its exit status: what is left of
    the step's group is killed (evr_xp_kill_lost), and op fails saying so
    with the last lines of the supervisor's log (the unit goes with the
    step).  info: the unit as just probed. */
void evr_xp_lost(evr_xp_op_t *op, const evr_unit_info_t *info);
/*  A lost unit (info: as just probed): what is left of its step's group
    killed (evr_unit_kill_lost), logged. */
void evr_xp_kill_lost(evr_xp_op_t *op, const evr_unit_info_t *info);
/*  The operation's next turn in ms (replacing one planned). */
void evr_xp_kick(evr_xp_op_t *op, uint64_t ms);
/*  Nothing to do until the unit changes: the watch, or the backstop. */
void evr_xp_idle(evr_xp_op_t *op);
/*  Watches op->dir (nothing without inotify: the timer polls then). */
void evr_xp_watch(evr_xp_op_t *op);

/*  evr_exec_process_ctl.c: the operations (evr_exec.h's contracts), and
    the turns of those that wait on their unit. */
void evr_xp_wait(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg);
void evr_xp_wait_turn(evr_xp_op_t *op);
void evr_xp_inspect(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg);
void evr_xp_pause(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg);
void evr_xp_resume(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg);
void evr_xp_stop(evr_exec_t *base, const char *name, int grace_s, evr_exec_fn *fn, void *arg);
void evr_xp_stop_turn(evr_xp_op_t *op);
void evr_xp_remove(evr_exec_t *base, const char *name, evr_exec_fn *fn, void *arg);
void evr_xp_remove_turn(evr_xp_op_t *op);

/*  evr_exec_process_out.c: attach, logs and detach (evr_exec.h's
    contracts), and the turn of an attach or a logs. */
void *evr_xp_attach(evr_exec_t *base, const char *name, evr_exec_output_fn *out,
                    evr_exec_fn *head, evr_exec_fn *done, void *arg);
void *evr_xp_logs(evr_exec_t *base, const char *name, const uint64_t from[2], bool so_far,
                  evr_exec_output_fn *out, evr_exec_fn *done, void *arg);
void evr_xp_detach(evr_exec_t *base, void *handle);
void evr_xp_tail_turn(evr_xp_op_t *op);

/*  The most removals' children (units' and workspaces' trees, and that
    of the trees put off) under way at once for an executor: more wait
    their turn, in the order asked. */
#define EVR_XP_RM_MAX 4
/*  A removal's child under way longer (a tree on a mount that hangs, or
    huge) is killed, its slot given to the next: the tree is put off
    (evr_xp_put_off; what the child removed stays removed, the next try
    goes on from there) and the call reports success, its name free; the
    child of the trees put off is killed too and tried again later.  A
    large workspace is removed in well under a minute; 5 minutes bounds
    how long four stalled removals hold every other one.  Test hook
    (tests only): EVR_TEST_RM_LIMIT_MS=N in the environment when the
    executor is made makes it N ms. */
#define EVR_XP_RM_LIMIT_MS 300000
/*  Starts op's tree removal in a child (work, then done from the loop;
    done calls evr_xp_rm_end first), or queues it until a removal ends.
    Past the time limit, done gets EVR_ERR_LIMIT (as for a child that
    could not start) and a message saying so. */
void evr_xp_rm_start(evr_xp_op_t *op, evr_offload_work_fn *work, evr_offload_done_fn *done);
/*  op's removal is over (its child reaped or killed): the oldest waiting
    starts (none once the executor is closing). */
void evr_xp_rm_end(evr_xp_op_t *op);

/*  The most trees put off at once (more are left to the next start's
    sweep, evr_unit_sweep, and said so). */
#define EVR_XP_TRASH_MAX 256
/*  The tree path (what: the unit or workspace it was, renamed aside)
    whose removal's child could not start, or was stopped at its time
    limit (why): said in the log, and removed later in a child, tried
    again after 1 s, then after twice as long each time up to a minute,
    and with the next removal (in its turn, as one: EVR_XP_RM_MAX). */
void evr_xp_put_off(evr_xp_t *ex, const char *what, const char *path, const char *why);
/*  A removal comes: the trees put off, if any, tried now, or once a
    removal under way ends when EVR_XP_RM_MAX are. */
void evr_xp_trash_kick(evr_xp_t *ex);
/*  The executor destroyed: a removal of them under way killed, the rest
    left to the next start's sweep. */
void evr_xp_trash_free(evr_xp_t *ex);
/*  The leftovers of an earlier run in units/ and work/ (a runner killed
    while it made or removed one): renamed aside now (evr_unit_sweep_aside:
    their names free at once), removed in a child process, the executor
    serving meanwhile; a failure is logged as a warning.  sweep_stop (at
    destroy) kills the child: what it had not removed is swept by the
    next start. */
void evr_xp_sweep_start(evr_xp_t *ex);
void evr_xp_sweep_stop(evr_xp_t *ex);

#endif
