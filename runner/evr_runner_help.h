/*  evr_runner_help.h: evrun-runner's --help text. */
#ifndef EVR_RUNNER_HELP_H_INCLUDED
#define EVR_RUNNER_HELP_H_INCLUDED

#include <stdio.h>

/*  Prints the usage, options, modes and exit statuses to out. */
void evr_runner_help(FILE *out);

/*  After a usage error: the usage lines alone and where the rest is, so
    the error stays on the screen. */
void evr_runner_usage(FILE *out);

#endif
