/*  cli.h: the subcommands of evrun-cli, one file per group.

    Each takes the arguments after the subcommand name (argv[0] is the
    subcommand) and returns the process exit status: 0 ok, 1 the job
    failed or the command was refused (for validate: a file is invalid),
    2 usage or connection errors (and no such job for logs, artifacts).
*/
#ifndef EVR_CLI_H_INCLUDED
#define EVR_CLI_H_INCLUDED

int evr_cli_validate(int argc, char **argv);
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
/* cli_pipelines.c */
int evr_cli_pipelines(int argc, char **argv);
int evr_cli_start(int argc, char **argv);
/* cli_artifacts.c */
int evr_cli_artifacts(int argc, char **argv);
/* cli_prune.c */
int evr_cli_prune(int argc, char **argv);
/* cli_up.c */
int evr_cli_up(int argc, char **argv);
int evr_cli_down(int argc, char **argv);
/* cli_token.c */
int evr_cli_token(int argc, char **argv);
int evr_cli_hook_token(int argc, char **argv);

#endif
