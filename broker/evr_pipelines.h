/*  evr_pipelines.h: the broker's registered pipelines and their schedules
    (private to the broker, as evr_broker_int.h).

    evr_pipelines.c keeps the directory of pipeline files (pipelines_dir):
    each *.yml / *.yaml file is loaded with the loader of `evrun-cli
    validate`; a file that fails keeps its last good version (the error is
    logged and listed); the directory is read again on SIGHUP
    (evr_broker_reload) and when inotify says it changed.  A pipeline is
    registered under its spec's `pipeline` name, by the first file (in
    name order) that has it.  `start` submits a registered pipeline
    through the queue's submit (evr_queue_submit), as a client's `submit`.

    evr_sched.c fires the schedules: each fire is recorded in the store
    (kv "sched/<name>") before its submit, which goes through the same
    submit as a client's (its answer comes back through the bus loopback),
    so a restart of the broker neither repeats nor drops a fire.
*/
#ifndef EVR_PIPELINES_H_INCLUDED
#define EVR_PIPELINES_H_INCLUDED

#include <sys/types.h>

#include "evr_broker_int.h"
#include "evr_cron.h"

#define EVR_PIPES_MAX_FILES 256        /* pipeline files read from the directory */
#define EVR_PIPES_MAX_ERROR 4000       /* bytes of a file's load error kept */

typedef struct evr_pipe {
    char *file;             /* base name in the directory */
    evr_spec_t *spec;       /* the last good version; NULL: none yet */
    bool registered;        /* spec serves under spec->pipeline */
    char *error;            /* why the file's content is not used; NULL: it is */
    char *dup;              /* its pipeline name is registered by an earlier file */
    char *named;            /* the pipeline: of a file refused (its errors) when
                               no version of it serves that name: a start of
                               that name says so */
    bool loaded;            /* spec loaded by this scan: logged once registered, or not */
    bool seen;              /* met by the current scan */
    struct timespec mtime;  /* of the content loaded or refused */
    off_t size;
    ino_t ino;
    /* the schedule (evr_sched.c) */
    bool scheduled;         /* registered with a schedule */
    char *sched_expr, *sched_tz;    /* the schedule taken up (copies) */
    char *sched_name;       /* of the pipeline it was taken up for */
    evr_cron_t cron;
    int64_t last_fire;      /* s: the last fire, or when the schedule was registered */
    int64_t next_fire;      /* s; 0: none */
    char fire_job[EVR_ULID_LEN + 1];
    char *fire_status;      /* accepted, refused: ..., skipped ..., firing */
    struct evr_pipe *next;
} evr_pipe_t;

typedef struct evr_pipelines {
    char *dir;
    int ifd;                /* inotify; -1: none */
    uint64_t reload_at;     /* mono ns of a reload asked for; 0: none */
    evr_pipe_t *list;       /* in file name order */
    int64_t clock_offset;   /* s added to the wall clock (EVRUN_TEST_CLOCK_OFFSET) */
    int64_t started;        /* s (offset included): fires before it were missed */
    zframe_t *loop_rid;     /* the routing id of the broker's own submits */
    bool loaded;            /* the first scan is done */
    evr_pipe_t *firing;     /* whose fire is being submitted now */
} evr_pipelines_t;

/* evr_pipelines.c */
/*  Sets up the directory (made 0700 when missing), its inotify watch and
    the first load (with the fires due).  EVR_ERR_CONFIG / EVR_ERR_IO when
    the directory is not private (evr_paths_dir) or cannot be made. */
evr_rc_t evr_pipelines_init(evr_broker_t *b, evr_err_t *err);
void evr_pipelines_fini(evr_broker_t *b);
/*  The inotify fd to poll (-1: none). */
int evr_pipelines_fd(const evr_broker_t *b);
/*  Ms until the registry needs a turn (a reload or a fire), at most cap. */
long evr_pipelines_wait_ms(const evr_broker_t *b, long cap);
/*  Each turn: reads inotify, reloads when asked, fires what is due. */
void evr_pipelines_turn(evr_broker_t *b);
/*  Asks for a reload of the directory (SIGHUP). */
void evr_pipelines_reload(evr_broker_t *b);
/*  The registered pipeline of name, or NULL. */
evr_pipe_t *evr_pipelines_find(const evr_broker_t *b, const char *name);
/*  Why name is not registered, into why: as a rule that no file has it,
    or, when a file whose `pipeline:` is name is refused (and no version
    of it serves that name), so, with its first error.  A job's trigger (job: true) is told no path of the
    broker's host: the file by its name in the directory. */
void evr_pipelines_unknown(const evr_broker_t *b, const char *name, bool job, char *why,
                           size_t len);
/*  Client requests `pipelines` and `start` (a start refused at once
    commits the staged submits first: their answers come before its). */
void evr_pipelines_list(evr_broker_t *b, zframe_t *rid);
void evr_pipelines_start(evr_broker_t *b, zframe_t *rid, const evr_msg_t *req);
/*  waiting, running, last_job and last_status of pipeline name into m
    (strings owned by m). */
void evr_pipelines_jobs_of(evr_broker_t *b, const char *name, evr_msg_t *m);
/*  m: the submit of pipeline p as job (its last good spec, args and
    labels copied); the caller clears it. */
void evr_pipelines_submit_msg(const evr_pipe_t *p, const char *job, const evr_strmap_t *args,
                              const evr_strlist_t *labels, evr_msg_t *m);
/*  Submits p's spec as job (args, labels borrowed; NULL: none) through
    evr_queue_submit, as its schedule's fire (a refusal says "schedule:
    ..."); rid is answered. */
void evr_pipelines_submit(evr_broker_t *b, zframe_t *rid, const evr_pipe_t *p, const char *job,
                          const evr_strmap_t *args, const evr_strlist_t *labels);

/* evr_sched.c */
/*  The wall clock of schedules, in s (the test offset added). */
int64_t evr_sched_now(const evr_broker_t *b);
/*  After a scan: p's schedule is taken up when it changed (at the first
    scan from its store record, as at a start of the broker; later from
    now), dropped when p no longer has one. */
void evr_sched_update(evr_broker_t *b, evr_pipe_t *p);
/*  Fires the due schedules. */
void evr_sched_fire_due(evr_broker_t *b);
/*  The answer to a fire's submit (the bus loopback). */
void evr_sched_answer(void *arg, const evr_msg_t *msg);

#endif
