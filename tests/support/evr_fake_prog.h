/*  evr_fake_prog.h: what a unit of the fake executor does, as a program.

    A program is a list of actions a unit carries out from its start:
    print bytes on a stream, write a workspace file, sleep, exit.  It comes
    either from a behaviour a test registered for the unit's name
    (evr_fake_behave_t: output bytes per stream, run time, exit code), or
    from the unit's script read by a very small shell: `echo`, `printf`,
    `sleep`, `exit`, `kill -N` (the unit ends by signal N: 128+N, as a
    host step's supervisor tells it), `trap '' TERM`, `seq`, `cat`,
    `true`, `false`, `:`,
    with `$VAR` from the unit's environment, quotes, `;`, `&&` and newlines
    between commands, and `>&2`, `> FILE`, `>> FILE` redirections.  An
    unknown command prints "sh: NAME: not found" on stderr and sets status
    127, as a shell does.  Private to tests/support (evr_exec_fake.c).
*/
#ifndef EVR_FAKE_PROG_H_INCLUDED
#define EVR_FAKE_PROG_H_INCLUDED

#include "evr_exec_fake.h"

typedef enum {
    EVR_FAKE_A_OUT,     /* bytes on stream (1 stdout, 2 stderr) */
    EVR_FAKE_A_FILE,    /* bytes into workspace file path (append or not) */
    EVR_FAKE_A_CAT,     /* workspace file path onto stream, or an error */
    EVR_FAKE_A_STATUS,  /* the last command's status is code */
    EVR_FAKE_A_SLEEP,   /* ms; EVR_FAKE_FOREVER: until stopped */
    EVR_FAKE_A_EXIT,    /* exits with code (-1: the last command's status), by
                           signal sig when not 0 */
} evr_fake_akind_t;

#define EVR_FAKE_FOREVER UINT64_MAX

typedef struct {
    evr_fake_akind_t kind;
    int stream;
    uint8_t *data;
    size_t len;
    char *path;
    bool append;
    uint64_t ms;
    int code;
    int sig;
} evr_fake_act_t;

typedef struct {
    evr_fake_act_t *v;
    size_t n, cap;
    bool ignore_term;   /* SIGTERM does nothing: a stop ends it by SIGKILL */
    bool oom;           /* its exit is the OOM killer's (137) */
} evr_fake_prog_t;

/*  The program of a behaviour (see evr_exec_fake_behave). */
void evr_fake_prog_behave(evr_fake_prog_t *p, const evr_fake_behave_t *b);
/*  The program of script, $VAR expanded from env (may be NULL). */
void evr_fake_prog_script(evr_fake_prog_t *p, const char *script, const evr_strmap_t *env);
void evr_fake_prog_free(evr_fake_prog_t *p);

#endif
