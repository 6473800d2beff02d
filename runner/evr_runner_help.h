/*  evr_runner_help.h: evrun-runner's --help text. */
#ifndef EVR_RUNNER_HELP_H_INCLUDED
#define EVR_RUNNER_HELP_H_INCLUDED

#include <stdio.h>

/*  Prints the usage, options, modes and exit statuses to out. */
void evr_runner_help(FILE *out);

#endif
