/*  test_matrix: a step's `matrix` expanded by the loader (evr_spec_expand):
    names, order, env, needs, the source map of the expanded steps, the
    names accepted as step names, their container form, and a spec on
    the wire that still holds a matrix (refused).  The bad inputs are
    files of tests/data/pipelines/bad/matrix_*.yml (test_pipeline). */
#include "evr_codec.h"
#include "evr_msg.h"
#include "evr_test.h"
#include "evr_yaml.h"

static const char s_yml[] =
    "pipeline: m\n"
    "image: busybox\n"
    "steps:\n"
    "  - name: prep\n"
    "    run: \"true\"\n"
    "  - name: build\n"
    "    run: echo $OS $V\n"
    "    needs: [prep]\n"
    "    env: {X: \"1\"}\n"
    "    matrix:\n"
    "      OS: [linux, bsd]\n"
    "      V: [\"1\", \"2\"]\n"
    "  - name: test\n"
    "    run: \"true\"\n"
    "    needs: [build, prep]\n";

static void
test_expand(void)
{
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *diag = evr_diag_new("m.yml");
    CHECK(evr_yaml_load(s_yml, sizeof s_yml - 1, spec, diag) == EVR_OK);
    CHECK(spec->steps.n == 6);
    static const char *const names[] = { "prep", "build[OS=linux,V=1]", "build[OS=linux,V=2]",
                                         "build[OS=bsd,V=1]", "build[OS=bsd,V=2]", "test" };
    for (uint32_t i = 0; i < 6 && i < spec->steps.n; i++) {
        const evr_step_t *st = evr_spec_step(spec, i);
        CHECK_STR(st->name, names[i]);
        CHECK(st->matrix.n == 0);
    }
    const evr_step_t *b = evr_spec_step(spec, 3);
    CHECK_STR(evr_strmap_get(&b->env, "OS"), "bsd");
    CHECK_STR(evr_strmap_get(&b->env, "V"), "1");
    CHECK_STR(evr_strmap_get(&b->env, "X"), "1");
    CHECK_STR(b->run, "echo $OS $V");
    CHECK(b->needs.n == 1 && !strcmp(b->needs.v[0], "prep"));
    /* needs: [build, prep]: the first combination in build's place, prep
       kept at its index, the other combinations appended */
    const evr_step_t *t = evr_spec_step(spec, 5);
    CHECK(t->needs.n == 5);
    if (t->needs.n == 5) {
        CHECK_STR(t->needs.v[0], "build[OS=linux,V=1]");
        CHECK_STR(t->needs.v[1], "prep");
        CHECK_STR(t->needs.v[4], "build[OS=bsd,V=2]");
    }
    /* the expanded steps point at the written step */
    uint32_t line = 0, col = 0;
    CHECK(evr_diag_pos(diag, "steps[4].name", &line, &col) && line == 6);
    CHECK(evr_diag_pos(diag, "steps[5].needs[1]", &line, &col) && line == 15);
    /* what the wire carries: the expanded steps, which validate */
    evr_diag_t *d2 = evr_diag_new("wire");
    CHECK(evr_spec_validate(spec, d2) == EVR_OK);
    evr_diag_destroy(&d2);
    evr_diag_destroy(&diag);
    evr_spec_destroy(&spec);
}

/*  An error about an expanded step is reported at the written step. */
static void
test_expanded_error_position(void)
{
    static const char yml[] = "pipeline: m\n"
                              "image: busybox\n"
                              "steps:\n"
                              "  - name: a\n"
                              "    run: \"true\"\n"
                              "    matrix: {K: [x, y]}\n"
                              "    needs: [nope]\n";
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *diag = evr_diag_new("m.yml");
    CHECK(evr_yaml_load(yml, sizeof yml - 1, spec, diag) == EVR_ERR_SPEC);
    CHECK(evr_diag_count(diag) >= 1);
    CHECK(strstr(evr_diag_get(diag, 0), "m.yml:7:13: steps[0].needs[0]: unknown step \"nope\"")
          != NULL);
    evr_diag_destroy(&diag);
    evr_spec_destroy(&spec);
}

/*  The errors of a file, one a line, and how many of them hold needle. */
static size_t
s_errors_with(const evr_diag_t *diag, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < evr_diag_count(diag) && i < EVR_DIAG_MAX; i++)
        n += strstr(evr_diag_get(diag, i), needle) != NULL;
    return n;
}

static void
s_dump(const evr_diag_t *diag)
{
    for (size_t i = 0; i < evr_diag_count(diag) && i < EVR_DIAG_MAX; i++)
        fprintf(stderr, "    %s\n", evr_diag_get(diag, i));
}

/*  An error of a matrix step's keys names the step as written (its index
    in the file, its line), once, not once per combination: after a matrix
    of two combinations above it, the written steps[1] is expanded
    steps[2] and [3]. */
static void
test_error_once_as_written(void)
{
    static const char yml[] = "pipeline: m\n"
                              "image: busybox\n"
                              "steps:\n"
                              "  - {name: prep, run: \"true\", matrix: {K: [x, y]}}\n"
                              "  - name: build\n"
                              "    run: \"true\"\n"
                              "    matrix: {OS: [linux, bsd]}\n"
                              "    timeout: 5 parsecs\n"
                              "    artifacts: [\"out/*.bin\"]\n"
                              "    retry: {on: [failed], max: 101}\n";
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *diag = evr_diag_new("m.yml");
    CHECK(evr_yaml_load(yml, sizeof yml - 1, spec, diag) == EVR_ERR_SPEC);
    CHECK(evr_diag_count(diag) == 3);
    CHECK(s_errors_with(diag, "m.yml:8:14: steps[1].timeout: bad duration \"5 parsecs\"") == 1);
    CHECK(s_errors_with(diag, "m.yml:9:17: steps[1].artifacts.paths[0]: \"out/*.bin\" holds a "
                              "glob character (* ?): artifact paths are copied as named, not "
                              "matched; name the directory (\"out\", copied whole) or each "
                              "file") == 1);
    CHECK(s_errors_with(diag, "m.yml:10:32: steps[1].retry.max: 101: at most 100") == 1);
    CHECK(s_errors_with(diag, "steps[2]") == 0 && s_errors_with(diag, "steps[3]") == 0);
    CHECK(s_errors_with(diag, "combination") == 0);
    if (evr_diag_count(diag) != 3)
        s_dump(diag);
    evr_diag_destroy(&diag);
    evr_spec_destroy(&spec);
}

/*  An error that arises for some combinations only says which; the
    indexes in its message are the file's too. */
static void
test_error_of_one_combination(void)
{
    static const char yml[] = "pipeline: m\n"
                              "image: busybox\n"
                              "steps:\n"
                              "  - {name: prep, run: \"true\", matrix: {K: [x, y]}}\n"
                              "  - {name: a, run: \"true\", needs: [\"build[OS=bsd]\"]}\n"
                              "  - name: build\n"
                              "    run: \"true\"\n"
                              "    when: on_failure\n"
                              "    matrix: {OS: [linux, bsd]}\n";
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *diag = evr_diag_new("m.yml");
    CHECK(evr_yaml_load(yml, sizeof yml - 1, spec, diag) == EVR_ERR_SPEC);
    CHECK(evr_diag_count(diag) == 1);
    CHECK_STR(evr_diag_get(diag, 0),
              "m.yml:8:11: steps[2].when: a when: on_failure step without needs waits for "
              "every step above it, but steps[1] (a) needs it: give it needs, or move it "
              "above steps[1] (combination build[OS=bsd] only)");
    if (evr_diag_count(diag) != 1)
        s_dump(diag);
    evr_diag_destroy(&diag);
    evr_spec_destroy(&spec);
}

/*  Steps after a matrix step, and messages naming another field, keep
    the file's indexes too. */
static void
test_error_indexes_after_matrix(void)
{
    static const char yml[] = "pipeline: m\n"
                              "image: busybox\n"
                              "steps:\n"
                              "  - {name: prep, run: \"true\", matrix: {K: [x, y, z]}}\n"
                              "  - name: build\n"
                              "    run: \"true\"\n"
                              "    matrix: {OS: [linux, bsd]}\n"
                              "    cache: [{key: a, path: /c}, {key: b, path: /c}]\n"
                              "  - {name: after, run: \"true\", image: \"\"}\n";
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *diag = evr_diag_new("m.yml");
    CHECK(evr_yaml_load(yml, sizeof yml - 1, spec, diag) == EVR_ERR_SPEC);
    CHECK(evr_diag_count(diag) == 2);
    CHECK(s_errors_with(diag, "m.yml:8:48: steps[1].cache[1].path: \"/c\" is the path of "
                              "steps[1].cache[0] already") == 1);
    CHECK(s_errors_with(diag, "m.yml:9:39: steps[2].image: empty image") == 1);
    if (evr_diag_count(diag) != 2)
        s_dump(diag);
    evr_diag_destroy(&diag);
    evr_spec_destroy(&spec);
}

/*  needs may name one combination (quoted: brackets in a flow list). */
static void
test_needs_one_combination(void)
{
    static const char yml[] = "pipeline: m\n"
                              "image: busybox\n"
                              "steps:\n"
                              "  - {name: b, run: \"true\", matrix: {OS: [linux, bsd]}}\n"
                              "  - {name: t, run: \"true\", needs: [\"b[OS=bsd]\"]}\n"
                              "  - name: u\n"
                              "    run: \"true\"\n"
                              "    needs:\n"
                              "      - b[OS=linux]\n";
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *diag = evr_diag_new("m.yml");
    CHECK(evr_yaml_load(yml, sizeof yml - 1, spec, diag) == EVR_OK);
    if (evr_diag_count(diag))
        fprintf(stderr, "  %s\n", evr_diag_get(diag, 0));
    CHECK(spec->steps.n == 4);
    if (spec->steps.n == 4) {
        const evr_step_t *t = evr_spec_step(spec, 2), *u = evr_spec_step(spec, 3);
        CHECK(t->needs.n == 1 && !strcmp(t->needs.v[0], "b[OS=bsd]"));
        CHECK(u->needs.n == 1 && !strcmp(u->needs.v[0], "b[OS=linux]"));
    }
    evr_diag_destroy(&diag);
    evr_spec_destroy(&spec);
}

static void
test_names(void)
{
    CHECK(evr_spec_step_name_ok("build"));
    CHECK(evr_spec_step_name_ok("build[OS=linux]"));
    CHECK(evr_spec_step_name_ok("b[OS=linux,V=1.2,_X=-a]"));
    CHECK(!evr_spec_step_name_ok("[OS=linux]"));
    CHECK(!evr_spec_step_name_ok("b[]"));
    CHECK(!evr_spec_step_name_ok("b[OS]"));
    CHECK(!evr_spec_step_name_ok("b[OS=]"));
    CHECK(!evr_spec_step_name_ok("b[OS=a,]"));
    CHECK(!evr_spec_step_name_ok("b[OS=a"));
    CHECK(!evr_spec_step_name_ok("b[1S=a]"));
    CHECK(!evr_spec_step_name_ok("b[OS=a b]"));
    CHECK(!evr_spec_step_name_ok("b[OS=a]x"));
    CHECK(!evr_spec_step_name_ok("b[OS=a=b]"));
    CHECK(!evr_spec_step_name_ok("b[OS=a][V=1]"));
    char long_name[80];
    snprintf(long_name, sizeof long_name, "%s[K=v]", "0123456789012345678901234567890123456789"
                                                     "01234567890123456789");
    CHECK(strlen(long_name) == 65 && !evr_spec_step_name_ok(long_name));
    char *u = evr_spec_step_unit_form("build[OS=linux,V=1]");
    CHECK_STR(u, "build.OS-linux.V-1");
    free(u);
    u = evr_spec_step_unit_form("plain-name");
    CHECK_STR(u, "plain-name");
    free(u);
}

/*  A submit whose spec still holds a matrix is refused by the decoder
    (nobody on the wire expands it). */
static void
test_wire_refuses_matrix(void)
{
    evr_spec_t *spec = evr_spec_new();
    spec->pipeline = evr_strdup("m");
    spec->image = evr_strdup("busybox");
    spec->steps.v = evr_calloc(1, sizeof(evr_step_t));
    spec->steps.n = 1;
    evr_step_t *st = evr_spec_step(spec, 0);
    st->name = evr_strdup("a");
    st->run = evr_strdup("true");
    st->matrix.v = evr_calloc(1, sizeof(evr_matrix_t));
    st->matrix.n = 1;
    evr_matrix_t *m = st->matrix.v;
    m->name = evr_strdup("K");
    evr_strlist_push(&m->values, "x");
    evr_diag_t *diag = evr_diag_new("wire");
    CHECK(evr_spec_validate(spec, diag) == EVR_ERR_SPEC);
    CHECK(strstr(evr_diag_get(diag, 0), "steps[0].matrix: a matrix is expanded") != NULL);
    evr_diag_destroy(&diag);
    evr_spec_destroy(&spec);
}

/*  --step NAME of logs, artifacts and evrun-tail: a written matrix
    step's name stands for all its combinations. */
static void
test_step_matches(void)
{
    CHECK(evr_spec_step_matches("build", "build"));
    CHECK(evr_spec_step_matches("build", "build[OS=linux]"));
    CHECK(evr_spec_step_matches("build[OS=linux]", "build[OS=linux]"));
    CHECK(!evr_spec_step_matches("build[OS=linux]", "build[OS=bsd]"));
    CHECK(!evr_spec_step_matches("build", "builder"));
    CHECK(!evr_spec_step_matches("build", "build2[OS=linux]"));
    CHECK(!evr_spec_step_matches("", "[x]"));
    CHECK(!evr_spec_step_matches(NULL, "build"));
}

/*  A matrix key's $KEY and ${KEY} in an artifact path are the
    combination's value (each combination keeps files of its own in the
    shared workspace); any other $NAME, or $OS_X for key OS, stays as
    written; a value of ".." makes a path the check refuses, at the step as
    written. */
static void
test_artifact_paths(void)
{
    static const char yml[] = "pipeline: m\n"
                              "image: busybox\n"
                              "steps:\n"
                              "  - name: b\n"
                              "    run: \"true\"\n"
                              "    matrix: {OS: [linux, bsd], CC: [gcc]}\n"
                              "    artifacts: [\"dist/$OS\", \"out/${OS}-${CC}.tar\", \"x/$OS_X\","
                              " \"y/$HOME/$\", \"$CC$OS\"]\n";
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *diag = evr_diag_new("m.yml");
    CHECK(evr_yaml_load(yml, sizeof yml - 1, spec, diag) == EVR_OK);
    CHECK(spec->steps.n == 2);
    if (spec->steps.n == 2) {
        const evr_step_t *b = evr_spec_step(spec, 1);
        CHECK_STR(b->name, "b[OS=bsd,CC=gcc]");
        CHECK(b->artifacts.paths.n == 5);
        if (b->artifacts.paths.n == 5) {
            CHECK_STR(b->artifacts.paths.v[0], "dist/bsd");
            CHECK_STR(b->artifacts.paths.v[1], "out/bsd-gcc.tar");
            CHECK_STR(b->artifacts.paths.v[2], "x/$OS_X");
            CHECK_STR(b->artifacts.paths.v[3], "y/$HOME/$");
            CHECK_STR(b->artifacts.paths.v[4], "gccbsd");
        }
        CHECK_STR(evr_spec_step(spec, 0)->artifacts.paths.v[0], "dist/linux");
    }
    evr_diag_destroy(&diag);
    evr_spec_destroy(&spec);

    static const char up[] = "pipeline: m\n"
                             "image: busybox\n"
                             "steps:\n"
                             "  - name: b\n"
                             "    run: \"true\"\n"
                             "    matrix: {D: [a, \"..\"]}\n"
                             "    artifacts: [\"dist/$D\"]\n";
    spec = evr_spec_new();
    diag = evr_diag_new("m.yml");
    CHECK(evr_yaml_load(up, sizeof up - 1, spec, diag) != EVR_OK);
    CHECK(s_errors_with(diag, "steps[0].artifacts.paths[0]") == 1);
    s_dump(diag);
    evr_diag_destroy(&diag);
    evr_spec_destroy(&spec);
}

int
main(void)
{
    EVR_TEST_RUN(test_expand);
    EVR_TEST_RUN(test_expanded_error_position);
    EVR_TEST_RUN(test_error_once_as_written);
    EVR_TEST_RUN(test_error_of_one_combination);
    EVR_TEST_RUN(test_error_indexes_after_matrix);
    EVR_TEST_RUN(test_needs_one_combination);
    EVR_TEST_RUN(test_names);
    EVR_TEST_RUN(test_wire_refuses_matrix);
    EVR_TEST_RUN(test_step_matches);
    EVR_TEST_RUN(test_artifact_paths);
    EVR_TEST_END();
}
