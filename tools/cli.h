/*  cli.h: the subcommands of evrun-cli, one file each.

    Each takes the arguments after the subcommand name (argv[0] is the
    subcommand) and returns the process exit status: 0 ok, 1 the job
    failed or the command was refused (for validate: a file is invalid),
    2 usage or connection errors.
*/
#ifndef EVR_CLI_H_INCLUDED
#define EVR_CLI_H_INCLUDED

int evr_cli_validate(int argc, char **argv);

#endif
