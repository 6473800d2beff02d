/*  evr_ytest.h: a pipeline file's text loaded as "f.yml" for the tests of
    the loader (test_pipeline.c, test_yaml_merge.c): its errors, one a
    line.  Static, as evr_test.h's counters are: each test program has its
    own copy.
*/
#ifndef EVR_YTEST_H_INCLUDED
#define EVR_YTEST_H_INCLUDED

#include <stdlib.h>
#include <string.h>

#include "evr_yaml.h"

/*  Loads text; returns the errors, one a line (caller frees), *n their
    count (those past EVR_DIAG_MAX too), and the spec in *spec (caller
    frees) when spec is not NULL. */
static inline char *
evr_ytest_load(const char *text, size_t *n, evr_spec_t *spec)
{
    evr_diag_t *diag = evr_diag_new("f.yml");
    evr_spec_t local = { 0 };
    evr_spec_t *sp = spec ? spec : &local;
    (void) evr_yaml_load(text, strlen(text), sp, diag);
    *n = evr_diag_count(diag);
    char *all = evr_strdup("");
    for (size_t i = 0; i < *n && i < EVR_DIAG_MAX; i++) {
        char *more = evr_asprintf("%s%s\n", all, evr_diag_get(diag, i));
        free(all);
        all = more;
    }
    evr_rec_free(&evr_spec_type, &local);
    evr_diag_destroy(&diag);
    return all;
}

#endif
