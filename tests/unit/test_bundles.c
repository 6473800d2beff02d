/*  test_bundles.c: evr_bundles: the layout learned from a StaticDir that
    holds its container's id as a directory's name (and only then, and
    only once), guesses for well-formed ids only, forgetting; the list by
    name, replacing, taking, and giving up its oldest when full. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_bundles.h"
#include "evr_common.h"
#include "evr_test.h"

#define S_ID "b494f2dd783264db4cbbc05c6b9fbeba118373ce8ac417e4457cfe60707a5840"
#define S_ID2 "22f6815ede965dd7954b62b5e825517eee857282ec3bdc75e614527700b700de"
#define S_ROOT "/var/lib/containers/storage/overlay-containers/"

static void
test_layout(void)
{
    evr_bundles_t *b = evr_bundles_new();
    CHECK(evr_bundles_guess(b, S_ID2) == NULL);   /* nothing known yet */
    CHECK(!evr_bundles_learn(b, S_ID, "/somewhere/else/userdata"));   /* id not in it */
    CHECK(!evr_bundles_learn(b, S_ID, S_ROOT "x" S_ID "/userdata"));  /* not a whole name */
    CHECK(!evr_bundles_learn(b, S_ID, S_ROOT S_ID "x/userdata"));
    CHECK(!evr_bundles_learn(b, "abc", "/a/abc/userdata"));           /* too short an id */
    CHECK(!evr_bundles_learn(b, NULL, S_ROOT S_ID "/userdata"));
    CHECK(!evr_bundles_learn(b, S_ID, NULL));
    CHECK(evr_bundles_learn(b, S_ID, S_ROOT S_ID "/userdata"));
    CHECK(!evr_bundles_learn(b, S_ID2, "/other/" S_ID2 "/userdata"));   /* known already */
    char *g = evr_bundles_guess(b, S_ID2);
    CHECK(g && !strcmp(g, S_ROOT S_ID2 "/userdata"));
    free(g);
    /* ids that are not podman's: no guess (nothing of them in a path) */
    CHECK(evr_bundles_guess(b, "../../etc") == NULL);
    CHECK(evr_bundles_guess(b, NULL) == NULL);
    CHECK(evr_bundles_guess(b, S_ID2 "0") == NULL);
    char upper[] = S_ID2;
    upper[0] = 'A';
    CHECK(evr_bundles_guess(b, upper) == NULL);
    char slash[] = S_ID2;
    slash[10] = '/';
    CHECK(evr_bundles_guess(b, slash) == NULL);
    evr_bundles_forget(b);
    CHECK(evr_bundles_guess(b, S_ID2) == NULL);
    CHECK(evr_bundles_learn(b, S_ID2, "/other/" S_ID2 "/userdata"));
    g = evr_bundles_guess(b, S_ID);
    CHECK(g && !strcmp(g, "/other/" S_ID "/userdata"));
    free(g);
    evr_bundles_destroy(&b);
    CHECK(b == NULL);
    evr_bundles_destroy(&b);
}

static void
test_list(void)
{
    evr_bundles_t *b = evr_bundles_new();
    char *d = evr_strdup("/a");
    evr_bundles_put(b, "one", &d);
    CHECK(d == NULL);
    d = evr_strdup("/b");
    evr_bundles_put(b, "one", &d);   /* replaces */
    d = evr_strdup("/c");
    evr_bundles_put(b, "two", &d);
    char *t = evr_bundles_take(b, "one");
    CHECK(t && !strcmp(t, "/b"));
    free(t);
    CHECK(evr_bundles_take(b, "one") == NULL);
    for (int i = 0; i < EVR_BUNDLES_MAX; i++) {   /* "two" is the oldest: given up */
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        d = evr_asprintf("/n%d", i);
        evr_bundles_put(b, name, &d);
    }
    CHECK(evr_bundles_take(b, "two") == NULL);
    t = evr_bundles_take(b, "n0");
    CHECK(t && !strcmp(t, "/n0"));
    free(t);
    evr_bundles_destroy(&b);   /* frees what it holds */
}

int
main(void)
{
    EVR_TEST_RUN(test_layout);
    EVR_TEST_RUN(test_list);
    EVR_TEST_END();
}
