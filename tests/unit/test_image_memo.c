/*  test_image_memo: the runner's memo of images present (evr_image_memo.h):
    fresh for its time and no longer, renewed only when held, forgotten
    when dropped, and a full memo gives up the entry stale first. */
#include <stdio.h>

#include "evr_image_memo.h"
#include "evr_test.h"

#define S_MS 1000000ull

static void
test_fresh_then_stale(void)
{
    evr_image_memo_t *m = evr_image_memo_new(2000 * S_MS);
    CHECK(!evr_image_memo_fresh(m, "a:1", 0));
    evr_image_memo_set(m, "a:1", 10 * S_MS);
    CHECK(evr_image_memo_fresh(m, "a:1", 10 * S_MS));
    CHECK(evr_image_memo_fresh(m, "a:1", 2009 * S_MS));
    CHECK(!evr_image_memo_fresh(m, "a:1", 2010 * S_MS));
    CHECK(!evr_image_memo_fresh(m, "a:2", 10 * S_MS));
    evr_image_memo_renew(m, "a:1", 3000 * S_MS);     /* held, stale: renewed */
    CHECK(evr_image_memo_fresh(m, "a:1", 4000 * S_MS));
    evr_image_memo_renew(m, "b:1", 3000 * S_MS);     /* not held: stays out */
    CHECK(!evr_image_memo_fresh(m, "b:1", 3000 * S_MS));
    CHECK(evr_image_memo_drop(m, "a:1"));
    CHECK(!evr_image_memo_fresh(m, "a:1", 3000 * S_MS));
    CHECK(!evr_image_memo_drop(m, "a:1"));
    evr_image_memo_destroy(&m);
    CHECK(m == NULL);
    evr_image_memo_destroy(&m);
}

static void
test_zero_never_fresh(void)
{
    evr_image_memo_t *m = evr_image_memo_new(0);
    evr_image_memo_set(m, "a:1", 5);
    CHECK(!evr_image_memo_fresh(m, "a:1", 5));
    CHECK(evr_image_memo_drop(m, "a:1"));    /* held all the same */
    evr_image_memo_destroy(&m);
}

static void
test_full_gives_up_the_stalest(void)
{
    evr_image_memo_t *m = evr_image_memo_new(100);
    char name[32];
    for (int i = 0; i < EVR_IMAGE_MEMO_MAX; i++) {
        snprintf(name, sizeof name, "img:%d", i);
        evr_image_memo_set(m, name, (uint64_t) (i == 3 ? 1 : 10 + i));
    }
    evr_image_memo_set(m, "new:1", 50);
    CHECK(evr_image_memo_fresh(m, "new:1", 50));
    CHECK(!evr_image_memo_drop(m, "img:3"));     /* the stalest went */
    for (int i = 0; i < EVR_IMAGE_MEMO_MAX; i++) {
        snprintf(name, sizeof name, "img:%d", i);
        CHECK(i == 3 || evr_image_memo_fresh(m, name, 50));
    }
    evr_image_memo_destroy(&m);
}

int
main(void)
{
    EVR_TEST_RUN(test_fresh_then_stale);
    EVR_TEST_RUN(test_zero_never_fresh);
    EVR_TEST_RUN(test_full_gives_up_the_stalest);
    EVR_TEST_END();
}
