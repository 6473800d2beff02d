/*  cli.h: the subcommands of evrun-cli, one file per group.

    Each takes the arguments after the subcommand name (argv[0] is the
    subcommand) and returns the process exit status: 0 ok, 1 the job
    failed or the command was refused (for validate: a file is invalid),
    2 usage or connection errors (and no such job for logs, artifacts),
    130 (EVR_CLI_INTERRUPTED) a --follow or --wait stopped by SIGINT or
    SIGTERM before the job ended.
*/
#ifndef EVR_CLI_H_INCLUDED
#define EVR_CLI_H_INCLUDED

#include <sys/types.h>

#include "evr_diag.h"
#include "evr_field.h"
#include "evr_spec.h"

int evr_cli_validate(int argc, char **argv);
/*  The warnings of a valid pipeline file FILE (spec as loaded, diag its
    loader's), on stderr: validate, run and submit print them. */
void evr_cli_warn_dag(const char *file, const evr_spec_t *spec, const evr_diag_t *diag);
/* cli_jobs.c */
int evr_cli_run(int argc, char **argv);
int evr_cli_submit(int argc, char **argv);
int evr_cli_cancel(int argc, char **argv);
int evr_cli_pause(int argc, char **argv);
int evr_cli_resume(int argc, char **argv);
int evr_cli_status(int argc, char **argv);
int evr_cli_jobs(int argc, char **argv);
int evr_cli_logs(int argc, char **argv);
int evr_cli_runners(int argc, char **argv);
int evr_cli_drain(int argc, char **argv);
/*  The tar a submit carries of a `copy:` source: directory copy (relative
    to the pipeline file's directory), gzip-compressed, at most
    EVR_MSG_MAX_COPY_BYTES, into *tar (NULL: checked only, as validate
    does); false with the error printed as "PROG: KEY: ...", or with diag
    (the file's, holding its source map) added to diag at KEY.copy, so
    that it names the line and column of the copy: value. */
bool evr_cli_copy_tar(const char *prog, const char *file, const char *key, const char *copy,
                      evr_bin_t *tar, evr_diag_t *diag);
/* cli_pipelines.c */
int evr_cli_pipelines(int argc, char **argv);
int evr_cli_start(int argc, char **argv);
/* cli_artifacts.c */
int evr_cli_artifacts(int argc, char **argv);
/* cli_prune.c */
int evr_cli_prune(int argc, char **argv);
/* cli_up.c */
int evr_cli_up(int argc, char **argv);
/*  The directory of this evrun-cli binary, where the other binaries are
    ("." when /proc/self/exe cannot be read); caller owns the result. */
char *evr_cli_up_bindir(void);
/*  The live evrun process STATE/run/NAME.pid names: its pid; 0 when there
    is none (no file, or a stale one: no process, or one that is not an
    evrun binary with --state-dir STATE, a runner's STATE/runners/I, the
    directory compared by identity); -1 when the file is refused (not a
    regular file of the user's, e.g. a link), with err saying why. */
pid_t evr_cli_up_pid(const char *state, const char *name, evr_err_t *err);
/* cli_down.c */
int evr_cli_down(int argc, char **argv);
/* cli_token.c */
int evr_cli_token(int argc, char **argv);
int evr_cli_hook_token(int argc, char **argv);

#endif
