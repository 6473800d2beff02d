/*  evr_test.h: the smallest test harness that says where it failed.

    CHECK(cond) records a failure with file:line and the expression and
    carries on; CHECK_STR(a, b) compares strings (NULL-safe) and prints
    both; EVR_TEST_RUN(fn) runs one test function and prints its name with
    ok or FAILED; EVR_TEST_END() prints "N passed, N failed" (checks) and
    returns from main non-zero when any check failed.
*/
#ifndef EVR_TEST_H_INCLUDED
#define EVR_TEST_H_INCLUDED

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int evr_test_passed, evr_test_failed;

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (cond)                                                                                \
            evr_test_passed++;                                                                   \
        else {                                                                                   \
            evr_test_failed++;                                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);             \
        }                                                                                        \
    } while (0)

#define CHECK_STR(a, b)                                                                          \
    do {                                                                                         \
        const char *a_ = (a), *b_ = (b);                                                         \
        if ((a_ && b_ && strcmp(a_, b_) == 0) || (!a_ && !b_))                                   \
            evr_test_passed++;                                                                   \
        else {                                                                                   \
            evr_test_failed++;                                                                   \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s\n  got:      %s\n  expected: %s\n", \
                    __FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");         \
        }                                                                                        \
    } while (0)

/*  True when haystack contains needle (for error messages). */
#define CHECK_CONTAINS(hay, needle)                                                              \
    do {                                                                                         \
        const char *h_ = (hay), *n_ = (needle);                                                  \
        if (h_ && strstr(h_, n_))                                                                \
            evr_test_passed++;                                                                   \
        else {                                                                                   \
            evr_test_failed++;                                                                   \
            fprintf(stderr, "%s:%d: CHECK_CONTAINS failed\n  in:       %s\n  expected: %s\n",    \
                    __FILE__, __LINE__, h_ ? h_ : "(null)", n_);                                  \
        }                                                                                        \
    } while (0)

#define EVR_TEST_RUN(fn)                                                                         \
    do {                                                                                         \
        int before_ = evr_test_failed;                                                           \
        fn();                                                                                    \
        fprintf(stderr, "%-40s %s\n", #fn, evr_test_failed == before_ ? "ok" : "FAILED");        \
    } while (0)

#define EVR_TEST_END()                                                                           \
    do {                                                                                         \
        printf("%d passed, %d failed\n", evr_test_passed, evr_test_failed);                      \
        return evr_test_failed ? 1 : 0;                                                          \
    } while (0)

#endif
