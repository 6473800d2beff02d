/*  evr_getopt.h: the command line of every evrun binary, its errors
    said alike.

    getopt_long's own messages name argv[0] (a whole path) and its
    callers used to follow them with the whole --help, which scrolled the
    one line that mattered away.  Here getopt's messages are off and ours
    say the program ("evrun-broker: unrecognized option '--heartbeat'; did
    you mean --heartbeat-ms? (see --help)"), and after a usage error only
    the usage lines of the help are repeated, with where the rest is.
*/
#ifndef EVR_GETOPT_H_INCLUDED
#define EVR_GETOPT_H_INCLUDED

#include <getopt.h>
#include <stdio.h>

/*  Writes a program's (or command's) whole help to out. */
typedef void (evr_help_fn)(FILE *out, const void *arg);

/*  After a usage error (said on a line of its own): the usage lines of
    what help writes (up to its first blank line, at most 6) and where
    the rest is ("PROG --help: every option"), on stderr. */
void evr_usage_brief(const char *prog, evr_help_fn *help, const void *arg);

/*  getopt_long with getopt's own messages off and ours instead, each
    starting with prog: an unknown or ambiguous option, a missing
    argument, an argument to an option that takes none; an unknown long
    option near one gets "did you mean --NAME?".  Returns as getopt_long
    does, '?' for each of those (said).  `PROG --version`, alone, of a
    program (a prog without a space: not one of evrun-cli's commands)
    prints "PROG VERSION" and exits 0, as every binary's --help says. */
int evr_getopt(const char *prog, int argc, char **argv, const char *shortopts,
               const struct option *opts);

#endif
