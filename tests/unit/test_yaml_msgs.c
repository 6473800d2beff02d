/*  test_yaml_msgs: the words of the pipeline loader's errors, as a
    reviewer found them unclear: each names the field and says what was
    expected in plain words, and a field that failed to load brings no
    follow-on error about it. */
#include "evr_test.h"
#include "evr_ytest.h"
#include "evr_yaml.h"

#define S_HEAD "pipeline: p\nimage: i\nsteps:\n"

/*  A matrix key whose list failed to load has that error only, not also
    "no value"; nor does a queue key that failed bring a follow-on. */
static void
test_no_follow_ons(void)
{
    size_t n;
    char vals[1024] = "";
    for (int i = 0; i < 65; i++)
        snprintf(vals + strlen(vals), sizeof vals - strlen(vals), "%sv%d", i ? ", " : "", i);
    char text[1200];
    snprintf(text, sizeof text, S_HEAD "  - {name: a, run: x, matrix: {K: [%s]}}\n", vals);
    char *e = evr_ytest_load(text, &n, NULL);
    CHECK_CONTAINS(e, "steps[0].matrix.K.values: 65 items exceed the limit of 64");
    CHECK(strstr(e, "no value") == NULL);
    CHECK(n == 1);
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, matrix: {K: [{a: b}]}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:36: steps[0].matrix.K.values[0]: expected a string, got a mapping");
    CHECK(n == 1);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nqueue: {strategy: [replace], partition_by: X}\n"
                       "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:19: queue.strategy: expected a string, got a list");
    CHECK(n == 1);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nqueue: {strategy: partitioned_replace, "
                       "partition_by: [X]}\nsteps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:54: queue.partition_by: expected a string, got a list");
    CHECK(n == 1);
    free(e);
}

/*  A key that is too long or not a string is said to be a key, with what
    the keys of its mapping are. */
static void
test_keys(void)
{
    size_t n;
    char k[120], text[400];
    memset(k, 'k', 100);
    k[100] = '\0';
    snprintf(text, sizeof text, "pipeline: p\nimage: i\n%s: x\nsteps: [{name: a, run: x}]\n", k);
    char *e = evr_ytest_load(text, &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:1: a key of 100 bytes at the top of the file, over the limit of "
                      "64: expected a key name, one of: pipeline, executor, image,");
    CHECK(strstr(e, "pipeline: value") == NULL);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\n? [a, b]\n: c\nsteps: [{name: a, run: x}]\n", &n,
                       NULL);
    CHECK_CONTAINS(e, "f.yml:3:3: a key at the top of the file that is a list: expected a key "
                      "name, one of: pipeline,");
    free(e);
    char env[300];
    memset(env, 'E', 299);
    env[299] = '\0';
    snprintf(text, sizeof text, S_HEAD "  - {name: a, run: x, env: {%s: v}}\n", env);
    e = evr_ytest_load(text, &n, NULL);
    CHECK_CONTAINS(e, "steps[0].env: a key of 299 bytes in this mapping, over the limit of 256: "
                      "expected a name");
    free(e);
    k[80] = '\0';
    snprintf(text, sizeof text, "pipeline: p\nimage: i\nargs: {%s: {default: x}}\n"
             "steps: [{name: a, run: x}]\n", k);
    e = evr_ytest_load(text, &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:8: args: a key of 80 bytes in this mapping, over the limit of 64: "
                      "expected a name of at most 64 bytes");
    free(e);
}

/*  Empty or wrongly typed values are described in plain words, as the
    field takes them. */
static void
test_plain_words(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:7: steps: expected a list of step mappings, got nothing");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, retry: {on: ~, max: ~}, artifacts: "
                       "{paths: ~}}\n", &n, NULL);
    CHECK_CONTAINS(e, "steps[0].retry.on: expected a list of strings, got nothing");
    CHECK_CONTAINS(e, "steps[0].retry.max: expected a non-negative whole number, got nothing");
    CHECK_CONTAINS(e, "steps[0].artifacts.paths: expected a list of strings, got nothing");
    CHECK(strstr(e, "uint32") == NULL && strstr(e, "array of") == NULL);
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, allow_failure: {exit_codes: [1]}, "
                       "timeout: [], when: [always]}\nconcurrency: [1]\n", &n, NULL);
    CHECK_CONTAINS(e, "steps[0].allow_failure: expected true or false, got a mapping");
    CHECK_CONTAINS(e, "steps[0].timeout: expected a duration like 90s or 1h30m, got a list");
    CHECK_CONTAINS(e, "steps[0].when: expected one of: on_success, on_failure, always, got a "
                      "list");
    CHECK_CONTAINS(e, "concurrency: expected a non-negative whole number, got a list");
    CHECK(strstr(e, "expected a string") == NULL);
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, allow_failure: True}\n", &n, NULL);
    CHECK_CONTAINS(e, "steps[0].allow_failure: expected true or false (also yes, no, on, off; "
                      "lower case only), got \"True\"");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, allow_failure: off, untrusted: yes}\n", &n,
                       NULL);
    CHECK(n == 0);   /* what is accepted is unchanged */
    free(e);
}

/*  Names: what a name may be, the first character included. */
static void
test_names(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: _p\nimage: i\nlabels: [\"executor:process\"]\n"
                             "resources: [{name: a b, url: \"http://x/y\", path: p}]\n"
                             "steps: [{name: -a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "pipeline: invalid name \"_p\" (letters, digits, _ . -, the first a "
                      "letter or digit; at most 64)");
    CHECK_CONTAINS(e, "labels[0]: invalid label \"executor:process\": a label is a name "
                      "(letters, digits, _ . -, the first a letter or digit, no \":\"; at most "
                      "64); the executor's label comes from executor:");
    CHECK_CONTAINS(e, "resources[0].name: invalid resource name \"a b\" (letters, digits, _ . "
                      "-, the first a letter or digit; at most 64)");
    CHECK_CONTAINS(e, "steps[0].name: invalid step name \"-a\" (letters, digits, _ . -, the "
                      "first a letter or digit; at most 64)");
    free(e);
}

/*  Durations: units largest first, each once; a number too large for
    any duration is over the longest, as a large one is. */
static void
test_durations(void)
{
    uint64_t ms;
    CHECK(evr_duration_parse("1h30m", &ms) && ms == 5400000);
    CHECK(evr_duration_parse("1d2h3m4s5ms", &ms));
    CHECK(evr_duration_parse("90", &ms) && ms == 90000);
    CHECK(!evr_duration_parse("1h1h1h1h", &ms));
    CHECK(!evr_duration_parse("1m1h", &ms));
    CHECK(!evr_duration_parse("10ms0s", &ms));
    CHECK(!evr_duration_overflows("1m1h"));
    CHECK(evr_duration_overflows("99999999999999999999"));
    CHECK(evr_duration_overflows("99999999999999999d"));
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\ntimeout: 99999999999999999999\n"
                             "steps: [{name: a, run: x, timeout: 1m1h}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:10: timeout: 99999999999999999999 is over the longest duration, "
                      "315360000000 ms (3650d: 10 years)");
    CHECK_CONTAINS(e, "steps[0].timeout: bad duration \"1m1h\" (expected e.g. 90s, 5m, 1h30m, "
                      "500ms: units d h m s ms, largest first, each once)");
    free(e);
}

/*  on_error's unknown keys are answered with the keys it takes only. */
static void
test_on_error_keys(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\non_error: {run: x, nam: y}\n"
                             "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:20: on_error.nam: unknown key (expected one of: run, image,");
    CHECK(strstr(e, "did you mean") == NULL);
    CHECK(strstr(e, "needs") == NULL && strstr(e, "matrix") == NULL
          && strstr(e, "allow_failure") == NULL && strstr(e, ", when") == NULL);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\non_error: {run: x, imgae: y}\n"
                       "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "on_error.imgae: unknown key; did you mean image?");
    free(e);
}

/*  A matrix step's needs: itself by its name; a combination beside the
    name that covers it. */
static void
test_matrix_needs(void)
{
    size_t n;
    char *e = evr_ytest_load(S_HEAD "  - {name: a, run: x, matrix: {OS: [a, b]}, needs: [a]}\n",
                             &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:53: steps[0].needs[0]: step \"a\" needs itself");
    CHECK(strstr(e, "unknown step") == NULL);
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: b, run: x, matrix: {OS: [a, b]}}\n"
                       "  - {name: c, run: x, needs: [b, \"b[OS=a]\"]}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:34: steps[1].needs[1]: b already covers \"b[OS=a]\" (a matrix "
                      "step's name stands for all its combinations): keep one");
    CHECK(strstr(e, "listed twice") == NULL);
    CHECK(n == 1);
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: b, run: x, matrix: {OS: [a, b]}}\n"
                       "  - {name: c, run: x, needs: [\"b[OS=a]\", b]}\n", &n, NULL);
    CHECK_CONTAINS(e, "steps[1].needs[1]: b already covers \"b[OS=a]\"");
    CHECK(n == 1);
    free(e);
}

/*  Buildkite's and GitLab's words, and jobs written as a mapping. */
static void
test_foreign_hints(void)
{
    size_t n;
    char *e = evr_ytest_load(S_HEAD "  - {name: a, run: x, label: A, key: a, soft_fail: true, "
                             "agents: {q: x}, tags: [x], parallel: 2, rules: []}\ntags: [x]\n",
                             &n, NULL);
    CHECK_CONTAINS(e, "steps[0].label: unknown key: Buildkite's label is a step's name here");
    CHECK_CONTAINS(e, "steps[0].key: unknown key: Buildkite's key is a step's name here: needs");
    CHECK_CONTAINS(e, "steps[0].soft_fail: unknown key: Buildkite's soft_fail is allow_failure");
    CHECK_CONTAINS(e, "steps[0].agents: unknown key: which runners take a job is the "
                      "pipeline's labels here");
    CHECK_CONTAINS(e, "steps[0].tags: unknown key: which runners take a job is the pipeline's "
                      "labels here");
    CHECK_CONTAINS(e, "steps[0].parallel: unknown key: GitLab's parallel (copies of a step) is "
                      "a step's matrix here");
    CHECK_CONTAINS(e, "steps[0].rules: unknown key: GitLab's rules: a step's when here");
    CHECK_CONTAINS(e, "f.yml:5:1: tags: unknown key; did you mean labels?");
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n  build: {run: x}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:3: steps: expected a list, got a mapping of names to steps: "
                      "steps is a list, each step with its name (steps: [{name: build, run: "
                      "...}])");
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nsteps: {name: a, run: x}\n", &n, NULL);
    CHECK_CONTAINS(e, "steps: expected a list, got a mapping: a list of one is [{...}]");
    free(e);
}

/*  An empty item of a list, or ~, was taken as the text "" or "~" (an
    artifact "~" the step then failed for, a label "~"); an empty step
    was said as "got a scalar". */
static void
test_null_items(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nlabels:\n  -\n  - a\nsteps:\n"
                             "  - {name: a, run: x, artifacts: [~], needs: [null]}\n"
                             "  -\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:4: labels[0]: expected a string, got nothing (an empty item, "
                      "or ~: remove it, or quote it)\n");
    CHECK_CONTAINS(e, "f.yml:7:35: steps[0].artifacts.paths[0]: expected a string, got "
                      "nothing");
    CHECK_CONTAINS(e, "f.yml:7:47: steps[0].needs[0]: expected a string, got nothing");
    CHECK_CONTAINS(e, "f.yml:8:4: steps[1]: expected a mapping, got nothing\n");
    CHECK(n == 4);
    free(e);
    /* quoted, it is the text */
    e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n"
                       "  - {name: a, run: x, artifacts: [\"~\"]}\n", &n, NULL);
    CHECK(n == 0);
    free(e);
}

/*  An empty key was said as "f.yml:3:1: unknown key", with no name, or
    at "steps[0]."; a key over libyaml's 1024 characters as a key
    without its ":" only. */
static void
test_key_words(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\n\"\": x\n"
                             "steps:\n  - {name: a, run: x, \"\": 1}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:1: an empty key (\"\"): expected one of: pipeline, ");
    CHECK_CONTAINS(e, "f.yml:5:23: steps[0]: an empty key (\"\"): expected one of: name, ");
    CHECK(n == 2);
    free(e);
    char text[1200];
    snprintf(text, sizeof text, "pipeline: p\nimage: i\n%01030d: 1\nsteps: [{name: a, run: x}]\n",
             0);
    e = evr_ytest_load(text, &n, NULL);
    CHECK_CONTAINS(e, "or a key of over 1024 characters (YAML's most for a key)");
    CHECK(n == 1);
    free(e);
}

/*  A pipeline's key written in a step (labels, secrets, concurrency) was
    said as any unknown key; a step's at the top of the file says where it
    goes, and so does this now. */
static void
test_pipeline_key_in_step(void)
{
    size_t n;
    char *e = evr_ytest_load(S_HEAD "  - {name: a, run: x, secrets: [Q], concurrency: 1}\n",
                             &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:23: steps[0].secrets: unknown key in a step: secrets is a key "
                      "of the pipeline, for all its steps; write it at the top of the file, at "
                      "the column of steps: (expected one of: name, run, ");
    CHECK_CONTAINS(e, "f.yml:4:37: steps[0].concurrency: unknown key in a step: concurrency is");
    CHECK(n == 2);
    free(e);
}

int
main(void)
{
    EVR_TEST_RUN(test_no_follow_ons);
    EVR_TEST_RUN(test_keys);
    EVR_TEST_RUN(test_plain_words);
    EVR_TEST_RUN(test_names);
    EVR_TEST_RUN(test_durations);
    EVR_TEST_RUN(test_on_error_keys);
    EVR_TEST_RUN(test_matrix_needs);
    EVR_TEST_RUN(test_foreign_hints);
    EVR_TEST_RUN(test_null_items);
    EVR_TEST_RUN(test_key_words);
    EVR_TEST_RUN(test_pipeline_key_in_step);
    EVR_TEST_END();
}
