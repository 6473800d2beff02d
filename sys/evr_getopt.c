/*  evr_getopt.c: see evr_getopt.h. */
#include "evr_getopt.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "evr_common.h"
#include "evr_diag.h"

/*  The long option of opts whose name token (after "--", before any '=')
    begins, with value val; NULL when none. */
static const struct option *
s_long_opt(const struct option *opts, const char *token, int val)
{
    size_t n = strcspn(token, "=");
    for (const struct option *o = opts; o->name; o++)
        if (o->val == val && !strncmp(o->name, token, n))
            return o;
    return NULL;
}

void
evr_usage_brief(const char *prog, evr_help_fn *help, const void *arg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        return;
    help(m, arg);
    fclose(m);
    size_t end = 0;   /* the usage lines: up to the first blank one, at most 6 */
    for (int lines = 0; lines < 6 && text[end] && text[end] != '\n'; lines++) {
        end += strcspn(text + end, "\n");
        if (text[end])
            end++;
    }
    while (end && text[end - 1] == '\n')
        end--;
    fprintf(stderr, "%.*s\n(%s --help: every option)\n", (int) end, text, prog);
    free(text);
}

int
evr_getopt(const char *prog, int argc, char **argv, const char *shortopts,
           const struct option *opts)
{
    if (argc == 2 && optind <= 1 && !strcmp(argv[1], "--version") && !strchr(prog, ' ')) {
        printf("%s %s\n", prog, EVR_VERSION);
        exit(0);
    }
    char spec[64];
    snprintf(spec, sizeof spec, ":%s", shortopts);   /* ':' tells a missing argument */
    opterr = 0;
    int c = getopt_long(argc, argv, spec, opts, NULL);
    if (c != '?' && c != ':')
        return c;
    /* a long option's error has moved optind past it; a short one's only
       when it ended its cluster of letters */
    const char *tok = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    bool islong = !strncmp(tok, "--", 2) && tok[2];
    const struct option *o = islong && optopt ? s_long_opt(opts, tok + 2, optopt) : NULL;
    size_t n = islong ? strcspn(tok + 2, "=") : 0;
    /* an abbreviation is named as typed, then as taken: `status --events`
       is --events-endpoint, which wants an argument */
    bool abbrev = o && strlen(o->name) != n;
    if (o && c == ':')
        fprintf(stderr, "%s: option '%.*s'%s%s%s requires an argument (see --help)\n", prog,
                (int) n + 2, tok, abbrev ? " (taken as --" : "", abbrev ? o->name : "",
                abbrev ? ")" : "");
    else if (o)
        fprintf(stderr, "%s: option '%.*s'%s%s%s takes no argument (see --help)\n", prog,
                (int) n + 2, tok, abbrev ? " (taken as --" : "", abbrev ? o->name : "",
                abbrev ? ")" : "");
    else if (islong && !optopt) {
        char names[256] = "";
        int matches = 0;
        for (const struct option *p = opts; p->name; p++)
            if (!strncmp(p->name, tok + 2, n) && matches++ < 6)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s--%s",
                         names[0] ? ", " : "", p->name);
        if (matches > 1)
            fprintf(stderr, "%s: option '%.*s' is ambiguous: %s (see --help)\n", prog,
                    (int) n + 2, tok, names);
        else {
            char *name = evr_strndup(tok + 2, n);
            const char *all[128];
            size_t k = 0;
            for (const struct option *p = opts; p->name && k < 128; p++)
                all[k++] = p->name;
            const char *near = evr_diag_near(name, all, k);
            fprintf(stderr, "%s: unrecognized option '%.*s'%s%s%s (see --help)\n", prog,
                    (int) n + 2, tok, near ? "; did you mean --" : "", near ? near : "",
                    near ? "?" : "");
            free(name);
        }
    }
    else if (c == ':')
        fprintf(stderr, "%s: option '-%c' requires an argument (see --help)\n", prog, optopt);
    else if (optopt > ' ' && optopt < 127)
        fprintf(stderr, "%s: invalid option '-%c' (see --help)\n", prog, optopt);
    else
        fprintf(stderr, "%s: invalid option (see --help)\n", prog);
    return '?';
}

