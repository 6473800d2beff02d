/*  test_yaml_merge: YAML merge keys (`<<: *defaults`, `<<: [*a, *b]`) and
    GitLab's hidden top-level keys (`.defaults:`) in pipeline files: what
    is merged, which key wins, where an error in merged text points, and
    that merges of merges stay within the node budget.
*/
#include <time.h>

#include "evr_test.h"
#include "evr_ytest.h"

/*  The GitLab form: an anchor under a hidden key, merged into steps;
    explicit keys win over merged ones, earlier merged maps over later;
    a merged mapping's own merges count; env maps merge too. */
static void
test_merge_keys(void)
{
    size_t n;
    evr_spec_t spec = { 0 };
    char *e = evr_ytest_load("pipeline: p\n"
                     "image: i\n"
                     ".defaults: &defaults\n"
                     "  timeout: 5m\n"
                     "  env: &env {A: \"1\", B: \"2\"}\n"
                     ".other: &other {timeout: 9s, retry: {max: 1, on: [failed]}}\n"
                     ".both: &both {<<: *other, allow_failure: true}\n"
                     "steps:\n"
                     "  - name: a\n"
                     "    <<: *defaults\n"
                     "    run: x\n"
                     "  - name: b\n"
                     "    <<: [*defaults, *other]\n"
                     "    env:\n"
                     "      <<: *env\n"
                     "      B: \"3\"\n"
                     "    run: y\n"
                     "  - {name: c, <<: [*other, *defaults], timeout: 1m, run: z}\n"
                     "  - {name: d, <<: *both, run: w}\n",
                     &n, &spec);
    CHECK_STR(e, "");
    CHECK(n == 0);
    CHECK(spec.steps.n == 4);
    if (spec.steps.n == 4) {
        const evr_step_t *a = evr_spec_step(&spec, 0), *b = evr_spec_step(&spec, 1);
        const evr_step_t *c = evr_spec_step(&spec, 2), *d = evr_spec_step(&spec, 3);
        CHECK(a->timeout == 300000);
        CHECK_STR(evr_strmap_get(&a->env, "B"), "2");
        CHECK(b->timeout == 300000);             /* *defaults before *other */
        CHECK(b->retry.present && b->retry.max == 1);
        CHECK_STR(evr_strmap_get(&b->env, "A"), "1");
        CHECK_STR(evr_strmap_get(&b->env, "B"), "3");   /* its own key wins */
        CHECK(c->timeout == 60000);              /* its own key over both */
        CHECK(d->timeout == 9000 && d->allow_failure && d->retry.present);
    }
    evr_rec_free(&evr_spec_type, &spec);
    free(e);
}

/*  A merge's keys take the place of its <<: a matrix's order of keys
    names its combinations (README "Matrix steps": keys in the order
    written), so {<<: *m, CC: [gcc]} is m's keys, then CC; an env's order
    follows the same rule, and the written key still wins. */
static void
test_merge_order(void)
{
    size_t n;
    evr_spec_t spec = { 0 };
    char *e = evr_ytest_load("pipeline: p\n"
                     "image: i\n"
                     ".m: &m {OS: [linux, bsd]}\n"
                     ".e: &e {A: \"1\", B: \"2\"}\n"
                     "steps:\n"
                     "  - {name: b, matrix: {<<: *m, CC: [gcc]}, run: x}\n"
                     "  - {name: c, matrix: {CC: [gcc], <<: *m}, run: x}\n"
                     "  - {name: d, env: {Z: \"0\", <<: *e, B: \"3\", C: \"4\"}, run: x}\n",
                     &n, &spec);
    CHECK_STR(e, "");
    CHECK(spec.steps.n == 5);
    if (spec.steps.n == 5) {
        CHECK_STR(evr_spec_step(&spec, 0)->name, "b[OS=linux,CC=gcc]");
        CHECK_STR(evr_spec_step(&spec, 1)->name, "b[OS=bsd,CC=gcc]");
        CHECK_STR(evr_spec_step(&spec, 2)->name, "c[CC=gcc,OS=linux]");
        const evr_strmap_t *env = &evr_spec_step(&spec, 4)->env;
        CHECK(env->n == 4);
        if (env->n == 4) {
            CHECK_STR(env->k[0], "Z");
            CHECK_STR(env->k[1], "A");
            CHECK_STR(env->k[2], "B");
            CHECK_STR(env->v[2], "3");
            CHECK_STR(env->k[3], "C");
        }
    }
    evr_rec_free(&evr_spec_type, &spec);
    free(e);
}

/*  Errors in merged text name the field where it is merged, at the
    line and column of the anchor's text; a bad `<<` value says what to
    write; a hidden key is not "unknown" but a step key still is. */
static void
test_merge_errors(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\n"
                     "image: i\n"
                     ".d: &d {timeout: 5x, runs: y}\n"
                     "steps:\n"
                     "  - {name: a, run: x, <<: *d}\n"
                     "  - {name: b, run: x, <<: 3}\n"
                     "  - {name: c, run: x, <<: [*d, 3]}\n",
                     &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:18: steps[0].timeout: bad duration \"5x\"");
    CHECK_CONTAINS(e, "f.yml:3:22: steps[0].runs: unknown key; did you mean run?");
    CHECK_CONTAINS(e, "f.yml:6:27: steps[1].<<: expected a mapping to merge (e.g. <<: "
                      "*defaults, the alias of an anchored mapping) or a list of them, got a "
                      "scalar");
    CHECK_CONTAINS(e, "f.yml:7:32: steps[2].<<: expected a list of mappings to merge");
    CHECK_CONTAINS(e, "f.yml:3:18: steps[2].timeout: bad duration");
    CHECK(strstr(e, ".d:") == NULL);
    CHECK(strstr(e, "unknown key (expected") == NULL);
    free(e);
    /* `<<:` with no value was "got a scalar"; a word, the alias it means */
    e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n  - {name: a, run: x, <<: }\n"
                       "  - {name: b, run: x, <<: defaults}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:27: steps[0].<<: expected a mapping to merge (e.g. <<: "
                      "*defaults, the alias of an anchored mapping) or a list of them, got "
                      "nothing\n");
    CHECK_CONTAINS(e, "f.yml:5:27: steps[1].<<: expected a mapping to merge (e.g. <<: "
                      "*defaults, the alias of an anchored mapping) or a list of them, got the "
                      "scalar \"defaults\" (an alias starts with *: <<: *defaults)\n");
    free(e);
    /* only the top level's keys are hidden ones */
    e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n  - {name: a, run: x, .x: 1}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:23: steps[0]..x: unknown key");
    free(e);
}

/*  Merges of merges (a billion laughs through `<<`: 4 * 11^6 pairs, 7
    million, where 9 levels made 9 billion) stop at the node budget, the
    walk's work (evr_yaml_work) bounded by it, not by the document's
    expansion (a walk that charged no budget did 7 million steps here, and
    would not end at 9 levels); a mapping that merges itself stops at the
    depth limit.  The time is said, not asserted: tests assert no speed. */
static void
test_merge_bounded(void)
{
    char *doc = evr_strdup("pipeline: p\nimage: i\n.l0: &l0 {a: 1, b: 2, c: 3, d: 4}\n");
    for (int i = 1; i <= 6; i++) {
        char *more = evr_asprintf("%s.l%d: &l%d {<<: [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, "
                                  "*l%d, *l%d, *l%d]}\n", doc, i, i, i - 1, i - 1, i - 1, i - 1,
                                  i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        free(doc);
        doc = more;
    }
    char *more = evr_asprintf("%senv: {<<: *l6}\nsteps: [{name: a, run: x}]\n", doc);
    free(doc);
    size_t n;
    clock_t t0 = clock();
    uint64_t w0 = evr_yaml_work();
    char *e = evr_ytest_load(more, &n, NULL);
    uint64_t work = evr_yaml_work() - w0;
    fprintf(stderr, "  merge bomb refused after %llu steps of work in %.3f s\n",
            (unsigned long long) work, (double) (clock() - t0) / CLOCKS_PER_SEC);
    CHECK_CONTAINS(e, "document too large: more than 100000 nodes");
    /* each step a pair or list item of a merged mapping, each pair a node
       of the budget: twice it (two passes over a mapping's pairs), with
       the events read before the walk */
    CHECK(work > 0 && work <= 3ull * EVR_YAML_MAX_NODES);
    free(e);
    free(more);
    /* the same with items that are no mappings: each was an error, and
       no node of the budget (10^7 errors, seconds, from 500 bytes) */
    doc = evr_strdup("pipeline: p\nimage: i\n.l1: &l1 {<<: [x, x, x, x, x, x, x, x, x, x]}\n");
    for (int i = 2; i <= 7; i++) {
        more = evr_asprintf("%s.l%d: &l%d {<<: [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, "
                            "*l%d, *l%d, *l%d]}\n", doc, i, i, i - 1, i - 1, i - 1, i - 1,
                            i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        free(doc);
        doc = more;
    }
    more = evr_asprintf("%senv: {<<: *l7}\nsteps: [{name: a, run: x}]\n", doc);
    free(doc);
    w0 = evr_yaml_work();
    e = evr_ytest_load(more, &n, NULL);
    work = evr_yaml_work() - w0;
    CHECK_CONTAINS(e, "env.<<: expected a list of mappings to merge");
    CHECK_CONTAINS(e, "document too large: more than 100000 nodes");
    CHECK(work > 0 && work <= 3ull * EVR_YAML_MAX_NODES);
    free(e);
    free(more);
    e = evr_ytest_load("pipeline: p\nimage: i\n.s: &s {A: x, <<: *s}\nenv: {<<: *s}\n"
               "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK(n >= 1);   /* refused, whatever libyaml makes of it, without hanging */
    free(e);
}

int
main(void)
{
    EVR_TEST_RUN(test_merge_keys);
    EVR_TEST_RUN(test_merge_order);
    EVR_TEST_RUN(test_merge_errors);
    EVR_TEST_RUN(test_merge_bounded);
    EVR_TEST_END();
}
