/*  test_spec_checks: pipeline files a review found wrong but accepted, or
    answered unlike their neighbours: an image reference podman cannot
    parse (evr_spec_image_problem, the grammar alone, then where a file
    or a spec on the wire names an image), `image:` with no value,
    `catchup` without `schedule`, `retry: {on: []}` and a list item
    written twice where a repeat means nothing; what an independent
    check of the loader found (test_checker_*); a resource's and a
    tarball's secret in a spec from the wire.
*/
#include <time.h>

#include "evr_codec.h"
#include "evr_test.h"
#include "evr_ytest.h"
#include "evr_spec.h"
#include "evr_yaml.h"

#define S_HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/*  The grammar: [HOST[:PORT]/]NAME[/NAME]...[:TAG][@ALGORITHM:HEX]. */
static void
test_image_grammar(void)
{
    char tag128[200], tag129[200], long_name[300];
    snprintf(tag128, sizeof tag128, "img:%0128d", 0);
    snprintf(tag129, sizeof tag129, "img:%0129d", 0);
    memset(long_name, 'a', 256);
    long_name[256] = '\0';
    const char *good[] = {
        "i", "busybox", "localhost/evrun-busybox:latest", "registry.example:5000/team/node:20",
        "127.0.0.1:5000/evrun/tool:1", "reg.io:65535/x", "reg.io:1/x", "docker.io/library/alpine:3.19", "a__b/c-d---e.f_g",
        "x:Tag_1.0-rc", "img:_x", "img@sha256:" S_HEX64, "img:1@sha256:" S_HEX64,
        "[::1]:5000/img", "localhost:5000", "localhost/x", "Example.COM/x", "my-reg.io/a/b/c",
        "UPPER/case", "Foo/bar", "LOCALHOST/x",   /* docker's rule: an upper-case first part is a host */
        "quay.io/org/x@sha512:" S_HEX64 S_HEX64, "x@sha384:" S_HEX64 S_HEX64,
        "x@multihash+base58:" S_HEX64, tag128, long_name + 1,
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(good); i++) {
        const char *why = evr_spec_image_problem(good[i]);
        if (why)
            fprintf(stderr, "  %.80s: %s\n", good[i], why);
        CHECK(why == NULL);
    }
    const struct {
        const char *ref, *why;
    } bad[] = {
        { "", "an empty reference" },
        { "Foo Bar", "\"Foo Bar\" is not a name component (lower-case letters and digits, "
                     "joined by one . _ __ or -)" },
        { "x::y", "the tag \":y\" is not 1-128 of letters, digits, _ . - (the first not . "
                  "or -)" },
        { "UPPER", "\"UPPER\" is not a name component (lower-case letters and digits, "
                   "joined by one . _ __ or -)" },
        { "-up/case", "\"-up\" is not a name component (lower-case letters and digits, "
                      "joined by one . _ __ or -); a registry host, first, holds a ., a :PORT "
                      "or an upper-case letter, or is localhost" },
        { "Up_per/x", "\"Up_per\" is not a registry host" },
        { "team/Tool", "\"Tool\" is not a name component" },
        { "img:", "an empty tag after the \":\" (write NAME:TAG, or NAME alone for the tag "
                  "latest)" },
        { "img@sha256:xyz", "the digest \"sha256:xyz\" is not ALGORITHM:HEX (sha256: and 64 "
                            "hex digits)" },
        { "img@sha256:" S_HEX64 "0", "is not ALGORITHM:HEX" },
        { "img@sha512:" S_HEX64, "the digest \"sha512:" S_HEX64 "\" is not sha512: and 128 "
                                 "hex digits" },
        { "img@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
          "has hex digits in upper case (lower case only)" },
        { "img@", "the digest \"\" is not ALGORITHM:HEX" },
        { "img@1sha:" S_HEX64, "is not ALGORITHM:HEX" },
        { "img@sha256", "is not ALGORITHM:HEX" },
        { "@sha256:" S_HEX64, "no name before the tag or digest" },
        { ":tag", "no name before the tag or digest" },
        { "a//b", "an empty component in the name (a / first, last or twice)" },
        { "/a", "an empty component in the name" },
        { "a/", "an empty component in the name" },
        { "a..b", "\"a..b\" is not a name component" },
        { "a___b", "\"a___b\" is not a name component" },
        { "a-", "\"a-\" is not a name component" },
        { "-a", "\"-a\" is not a name component" },
        { "_a", "\"_a\" is not a name component" },
        { "img:.x", "the tag \".x\" is not" },
        { "img:-x", "the tag \"-x\" is not" },
        { "img:a/b", "\"img:a\" is not a registry host" },   /* a : before the last / */
        { tag129, "the tag \"0000" },
        { long_name, "the name (before any tag or digest) is over 255 bytes" },
        { "reg.io:port/x", "\"reg.io:port\" is not a registry host (HOST or HOST:PORT, a host "
                           "name of letters, digits, - and dots, a PORT 1-65535)" },
        { "reg.io:123456/x", "\"reg.io:123456\" is not a registry host" },
        { "reg.io:99999/x", "\"reg.io:99999\" is not a registry host (HOST or HOST:PORT, a "
                            "host name of letters, digits, - and dots, a PORT 1-65535)" },
        { "reg.io:0/x", "\"reg.io:0\" is not a registry host" },
        { "[::1]:65536/x", "\"[::1]:65536\" is not a registry host" },
        { "reg.io:/x", "\"reg.io:\" is not a registry host" },
        { "-reg.io/x", "\"-reg.io\" is not a registry host" },
        { "reg-.io/x", "\"reg-.io\" is not a registry host" },
        { "reg..io/x", "\"reg..io\" is not a registry host" },
        { "reg_x.io/x", "\"reg_x.io\" is not a registry host" },
        { "[::1/x", "\"[::1\" is not a registry host" },
        { "[zz]:1/x", "\"[zz]:1\" is not a registry host" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        const char *why = evr_spec_image_problem(bad[i].ref);
        if (!why || !strstr(why, bad[i].why))
            fprintf(stderr, "  %.80s: %s\n", bad[i].ref, why ? why : "(accepted)");
        CHECK(why && strstr(why, bad[i].why));
    }
}

/*  Where a pipeline names an image: the spec's, a step's, on_error's,
    each refused at its line with the reference and why; a spec on the
    wire (no source map) the same. */
static void
test_image_refs(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: \"Foo Bar\"\non_error: {run: x, image: \"x::y\"}\n"
                             "steps:\n  - {name: a, run: x, image: \"img:\"}\n"
                             "  - {name: b, run: x, image: \"img@sha256:xyz\"}\n"
                             "  - {name: c, run: x, image: \"UPPER\"}\n"
                             "  - {name: d, run: x, image: \"localhost/evrun-busybox:latest\"}\n",
                             &n, NULL);
    CHECK_CONTAINS(e, "f.yml:2:8: image: \"Foo Bar\" is not an image reference "
                      "([HOST[:PORT]/]NAME[:TAG][@DIGEST]): \"Foo Bar\" is not a name "
                      "component (lower-case letters and digits, joined by one . _ __ or -)\n");
    CHECK_CONTAINS(e, "f.yml:3:27: on_error.image: \"x::y\" is not an image reference "
                      "([HOST[:PORT]/]NAME[:TAG][@DIGEST]): the tag \":y\" is not");
    CHECK_CONTAINS(e, "f.yml:5:30: steps[0].image: \"img:\" is not an image reference "
                      "([HOST[:PORT]/]NAME[:TAG][@DIGEST]): an empty tag after the \":\"");
    CHECK_CONTAINS(e, "f.yml:6:30: steps[1].image: \"img@sha256:xyz\" is not an image "
                      "reference ([HOST[:PORT]/]NAME[:TAG][@DIGEST]): the digest \"sha256:xyz\" "
                      "is not ALGORITHM:HEX");
    CHECK_CONTAINS(e, "f.yml:7:30: steps[2].image: \"UPPER\" is not an image reference");
    CHECK(n == 5);
    free(e);
    /* a process pipeline's image is refused for being there, not for its form */
    e = evr_ytest_load("pipeline: p\nexecutor: process\nimage: \"Foo Bar\"\n"
                       "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "image: a process pipeline runs on the host; remove image");
    CHECK(n == 1);
    free(e);
    /* on the wire */
    evr_spec_t *spec = evr_spec_new();
    spec->pipeline = evr_strdup("p");
    spec->image = evr_strdup("img:");
    spec->steps.v = evr_calloc(1, sizeof(evr_step_t));
    spec->steps.n = 1;
    evr_spec_step(spec, 0)->name = evr_strdup("a");
    evr_spec_step(spec, 0)->run = evr_strdup("x");
    evr_spec_step(spec, 0)->image = evr_strdup("a//b");
    evr_diag_t *diag = evr_diag_new("spec");
    CHECK(evr_spec_validate(spec, diag) == EVR_ERR_SPEC);
    CHECK(evr_diag_count(diag) == 2);
    CHECK_CONTAINS(evr_diag_get(diag, 0), "image: \"img:\" is not an image reference");
    CHECK_CONTAINS(evr_diag_get(diag, 1), "steps[0].image: \"a//b\" is not an image reference");
    evr_diag_destroy(&diag);
    free(spec->image);
    spec->image = evr_strdup("registry.example:5000/team/tool:1");
    free(evr_spec_step(spec, 0)->image);
    evr_spec_step(spec, 0)->image = evr_strdup("img@sha256:" S_HEX64);
    diag = evr_diag_new("spec");
    CHECK(evr_spec_validate(spec, diag) == EVR_OK);
    evr_diag_destroy(&diag);
    evr_spec_destroy(&spec);
}

/*  A spec on the wire (the broker's check at submit) with a resource's or
    a tarball's secret: its name checked as the items of `secrets`, and a
    source's secret only beside a tarball. */
static void
test_fetch_secret_wire(void)
{
    evr_spec_t *spec = evr_spec_new();
    spec->pipeline = evr_strdup("p");
    spec->image = evr_strdup("img");
    spec->steps.v = evr_calloc(1, sizeof(evr_step_t));
    spec->steps.n = 1;
    evr_spec_step(spec, 0)->name = evr_strdup("a");
    evr_spec_step(spec, 0)->run = evr_strdup("x");
    spec->resources.v = evr_calloc(2, sizeof(evr_resource_t));
    spec->resources.n = 2;
    for (uint32_t i = 0; i < 2; i++) {
        evr_resource_t *r = evr_spec_resource(spec, i);
        r->name = evr_strdup(i ? "b" : "a");
        r->url = evr_strdup("https://h/x");
        r->path = evr_strdup(i ? "b" : "a");
        r->secret = evr_strdup(i ? "1NOPE" : "FILES_AUTH");
    }
    spec->source.present = true;
    spec->source.tarball = evr_strdup("https://h/app.tgz");
    spec->source.secret = evr_strdup("APP_TOKEN");
    spec->ci_source.present = true;
    spec->ci_source.copy = evr_strdup("ci");
    spec->ci_source.secret = evr_strdup("CI_AUTH");
    evr_diag_t *diag = evr_diag_new("spec");
    CHECK(evr_spec_validate(spec, diag) == EVR_ERR_SPEC);
    CHECK(evr_diag_count(diag) == 2);
    char all[1024] = "";
    for (size_t i = 0; i < evr_diag_count(diag); i++)
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s\n", evr_diag_get(diag, i));
    CHECK_CONTAINS(all, "resources[1].secret: invalid secret name \"1NOPE\" (an environment "
                        "variable name, as under secrets)");
    CHECK_CONTAINS(all, "ci_source.secret: only a tarball is fetched with a secret beside it: a "
                        "copy is not fetched");
    evr_diag_destroy(&diag);
    free(spec->ci_source.secret);
    spec->ci_source.secret = NULL;
    free(evr_spec_resource(spec, 1)->secret);
    evr_spec_resource(spec, 1)->secret = evr_strdup("B_AUTH");
    diag = evr_diag_new("spec");
    CHECK(evr_spec_validate(spec, diag) == EVR_OK);
    evr_diag_destroy(&diag);
    evr_spec_destroy(&spec);
}

/*  `image:` with no value is no image, as a list, a mapping or a number
    with no value is absent: a step takes the pipeline's, or has none. */
static void
test_null_image(void)
{
    size_t n;
    evr_spec_t spec = { 0 };
    char *e = evr_ytest_load("pipeline: p\nimage:\nsteps:\n  - {name: a, run: x, image: i}\n",
                             &n, &spec);
    CHECK(n == 0);
    CHECK(spec.image == NULL);
    free(e);
    evr_rec_free(&evr_spec_type, &spec);
    e = evr_ytest_load("pipeline: p\nimage: i\non_error: {run: x, image: ~}\nsteps:\n"
                       "  - name: a\n    run: x\n    image:\n", &n, &spec);
    CHECK(n == 0);
    CHECK_STR(spec.image, "i");
    CHECK(evr_spec_step(&spec, 0)->image == NULL);
    CHECK(spec.on_error.image == NULL);
    free(e);
    evr_rec_free(&evr_spec_type, &spec);
    /* none anywhere: said once, at the image: written with no value */
    e = evr_ytest_load("pipeline: p\nimage:\nsteps:\n  - {name: a, run: x}\n"
                       "  - {name: b, run: x}\n  - {name: c, run: x, image: i}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:2:1: image: no value, and a step has no image of its own: name the "
                      "steps' image here, or set image: on each step");
    CHECK(n == 1);
    free(e);
    /* a step's image: with no value, no pipeline image: the step's error */
    e = evr_ytest_load("pipeline: p\nsteps:\n  - {name: a, run: x, image: null}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:5: steps[0]: no image: set image: on the step or at the top of "
                      "the file");
    CHECK(n == 1);
    free(e);
    /* other strings with no value are refused as before; "" is a value */
    e = evr_ytest_load("pipeline: p\nimage: \"\"\nregistry_auth:\nsteps: [{name: a, run: x}]\n",
                       &n, NULL);
    CHECK_CONTAINS(e, "f.yml:2:8: image: empty image: name an image, or leave the key out");
    CHECK_CONTAINS(e, "f.yml:3:15: registry_auth: expected a string, got nothing");
    CHECK(n == 2);
    free(e);
}

/*  catchup is about the fire times of schedule: without one it is refused,
    the default written out too (a file's); on the wire, none. */
static void
test_catchup(void)
{
    size_t n;
    const char *words = "catchup: catchup says what becomes of the fire times of schedule "
                        "missed while the broker was down: add a schedule, or remove catchup";
    char *e = evr_ytest_load("pipeline: p\nimage: i\ncatchup: none\nsteps: [{name: a, run: x}]\n",
                             &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:10: ");
    CHECK_CONTAINS(e, words);
    CHECK(n == 1);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\ncatchup: one\nsteps: [{name: a, run: x}]\n", &n,
                       NULL);
    CHECK_CONTAINS(e, words);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nschedule: \"0 3 * * *\"\ncatchup: none\n"
                       "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK(n == 0);
    free(e);
    /* a bad value is said once, not also "add a schedule" */
    e = evr_ytest_load("pipeline: p\nimage: i\ncatchup: lots\nsteps: [{name: a, run: x}]\n", &n,
                       NULL);
    CHECK_CONTAINS(e, "catchup: expected one of one, none, got \"lots\"");
    CHECK(n == 1);
    free(e);
    /* nor beside a schedule that failed to load */
    e = evr_ytest_load("pipeline: p\nimage: i\nschedule: [x]\ncatchup: none\n"
                       "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:11: schedule: expected a string, got a list");
    CHECK(n == 1);
    free(e);
    evr_spec_t *spec = evr_spec_new();
    spec->pipeline = evr_strdup("p");
    spec->image = evr_strdup("i");
    spec->steps.v = evr_calloc(1, sizeof(evr_step_t));
    spec->steps.n = 1;
    evr_spec_step(spec, 0)->name = evr_strdup("a");
    evr_spec_step(spec, 0)->run = evr_strdup("x");
    spec->catchup = EVR_CATCHUP_NONE;
    evr_diag_t *diag = evr_diag_new("spec");
    CHECK(evr_spec_validate(spec, diag) == EVR_ERR_SPEC);
    CHECK_CONTAINS(evr_diag_get(diag, 0), words);
    evr_diag_destroy(&diag);
    evr_spec_destroy(&spec);
}

/*  retry.on: [] retries on nothing. */
static void
test_retry_on_empty(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n"
                             "  - {name: a, run: x, retry: {on: [], max: 2}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:31: steps[0].retry.on: an empty list retries on nothing: list "
                      "the outcomes that retry the step (lost, failed, timed_out), or remove "
                      "retry");
    CHECK(n == 1);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n"
                       "  - {name: a, run: x, retry: {on: [lost], max: 2}}\n", &n, NULL);
    CHECK(n == 0);
    free(e);
}

/*  A list where a repeat means nothing refuses an item written twice,
    naming it at the repeat: labels, triggers, retry.on and on.github's
    events and branches (these were said at the list's key, "(items 1 and
    3)"). */
static void
test_repeats(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nlabels: [a, b, a]\n"
                             "triggers: [x, \"file:ci/*.yml\", \"file:ci/*.yml\"]\n"
                             "on: {github: {events: [push, pull_request, push], "
                             "branches: [main, main]}}\n"
                             "steps:\n  - {name: a, run: x, retry: {on: [failed, lost, failed], "
                             "max: 1}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:16: labels[2]: \"a\" is listed twice\n");
    CHECK_CONTAINS(e, "f.yml:4:32: triggers[2]: \"file:ci/*.yml\" is listed twice\n");
    CHECK_CONTAINS(e, "f.yml:5:44: on.github.events[2]: \"push\" is listed twice\n");
    CHECK_CONTAINS(e, "f.yml:5:68: on.github.branches[1]: \"main\" is listed twice\n");
    CHECK_CONTAINS(e, "f.yml:7:50: steps[0].retry.on[2]: \"failed\" is listed twice\n");
    CHECK(n == 5);
    free(e);
    /* as before: needs and secrets (at the repeat) */
    e = evr_ytest_load("pipeline: p\nimage: i\nsecrets: [S, S]\nsteps:\n  - {name: a, run: x}\n"
                       "  - {name: b, run: x, needs: [a, a]}\n", &n, NULL);
    CHECK_CONTAINS(e, "secrets[1]: \"S\" is listed twice");
    CHECK_CONTAINS(e, "steps[1].needs[1]: \"a\" is listed twice");
    CHECK(n == 2);
    free(e);
    /* an item written three times: said once at each repeat (the loops
       of secrets and needs added the third's twice, which the diag kept
       once: one error per path) */
    e = evr_ytest_load("pipeline: p\nimage: i\nlabels: [l, l, l]\nsecrets: [S, S, S]\n"
                       "steps:\n  - {name: a, run: x}\n"
                       "  - {name: b, run: x, needs: [a, a, a], artifacts: {paths: [o, o, o]}}\n",
                       &n, NULL);
    CHECK_CONTAINS(e, "labels[1]: \"l\" is listed twice\n");
    CHECK_CONTAINS(e, "labels[2]: \"l\" is listed twice\n");
    CHECK_CONTAINS(e, "secrets[1]: \"S\" is listed twice\n");
    CHECK_CONTAINS(e, "secrets[2]: \"S\" is listed twice\n");
    CHECK_CONTAINS(e, "needs[1]: \"a\" is listed twice\n");
    CHECK_CONTAINS(e, "needs[2]: \"a\" is listed twice\n");
    CHECK_CONTAINS(e, "paths[1]: \"o\" is listed twice\n");
    CHECK_CONTAINS(e, "paths[2]: \"o\" is listed twice\n");
    CHECK(n == 8);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n  - {name: c, run: x, matrix: {v: [x, x, x]}}\n",
                       &n, NULL);
    CHECK_CONTAINS(e, "values[1]: \"x\" is listed twice\n");
    CHECK_CONTAINS(e, "values[2]: \"x\" is listed twice\n");
    CHECK(n == 2);
    free(e);
    /* a wrong item is said as wrong (at each), not as a repeat */
    e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n"
                       "  - {name: a, run: x, retry: {on: [wifi, wifi], max: 1}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:36: steps[0].retry.on[0]: expected a list of: lost, failed, "
                      "timed_out, got \"wifi\"\n");
    CHECK_CONTAINS(e, "f.yml:4:42: steps[0].retry.on[1]: expected a list of: lost, failed, "
                      "timed_out, got \"wifi\"\n");
    CHECK(n == 2);
    free(e);
    /* events: [] written: refused at its line; left out: push, no error */
    e = evr_ytest_load("pipeline: p\nimage: i\non: {github: {events: []}}\n"
                       "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:15: on.github.events: an empty list starts the pipeline on no "
                      "event");
    CHECK(n == 1);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\non: {github: {branches: [main]}}\n"
                       "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK(n == 0);
    free(e);
    /* the repeats and an empty retry.on are the whole spec's checks: a
       spec an older version took and logged still decodes */
    evr_spec_t old = { 0 };
    e = evr_ytest_load("pipeline: p\nimage: i\ntriggers: [x, x]\n"
                       "on: {github: {events: [push, push], branches: [m, m]}}\nsteps:\n"
                       "  - {name: a, run: x, retry: {on: [failed, failed], max: 1}}\n"
                       "  - {name: b, run: x, retry: {on: [], max: 1}}\n", &n, &old);
    CHECK(n == 5);
    free(e);
    uint8_t *buf = NULL;
    size_t len = 0;
    evr_codec_encode(&evr_spec_type, &old, &buf, &len);
    evr_spec_t back = { 0 };
    evr_err_t err;
    CHECK(evr_codec_decode(buf, len, &evr_spec_type, &back, "spec", &err) == EVR_OK);
    CHECK(back.triggers.n == 2 && back.on.github.branches.n == 2);
    evr_diag_t *d = evr_diag_new("spec");
    CHECK(evr_spec_validate(&back, d) != EVR_OK);
    CHECK(evr_diag_count(d) == 5);
    evr_diag_destroy(&d);
    free(buf);
    evr_rec_free(&evr_spec_type, &back);
    evr_rec_free(&evr_spec_type, &old);
}

/*  A matrix key written twice was said twice: as a duplicate key, then
    as "more than 64 combinations" (the refused key, nameless, counted
    as a key of no value). */
static void
test_checker_matrix_key_twice(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n"
                             "  - {name: b, run: x, matrix: {A: [1], A: [2]}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:40: steps[0].matrix.A: duplicate key (first at line 4)\n");
    CHECK(strstr(e, "combinations") == NULL);
    CHECK(n == 1);
    free(e);
}

/*  256 steps, each needing every step above it (within the bounds): the
    matrix check of needs looked each pair's name up, a billion compares
    (1.7 s); now about 50 ms. */
static void
test_checker_many_needs_fast(void)
{
    char *text = evr_strdup("pipeline: p\nimage: i\nsteps:\n");
    for (int i = 0; i < 256; i++) {
        char *more = evr_asprintf("%s  - {name: s%d, run: x, needs: [", text, i);
        free(text);
        text = more;
        for (int j = 0; j < i; j++) {
            more = evr_asprintf("%s%ss%d", text, j ? ", " : "", j);
            free(text);
            text = more;
        }
        more = evr_asprintf("%s]}\n", text);
        free(text);
        text = more;
    }
    size_t n;
    clock_t t0 = clock();
    uint64_t w0 = evr_spec_lookup_work();
    char *e = evr_ytest_load(text, &n, NULL);
    uint64_t work = evr_spec_lookup_work() - w0;
    double secs = (double) (clock() - t0) / CLOCKS_PER_SEC;
    /* its time is said, not asserted (tests assert no speed): ~0.17 s
       here, 1.7 s before the needs check was made linear */
    fprintf(stderr, "  256 steps with all needs loaded in %.2f s, %llu steps looked at\n", secs,
            (unsigned long long) work);
    CHECK(n == 0);
    /* the work asserted: each of the 32640 needs looked up a few times
       (each lookup at most 256 steps), not once per pair of a step's needs */
    CHECK(work > 0 && work <= 8ull * 32640 * 256);
    free(e);
    free(text);
}

/*  Artifact paths in another form than the runner records (`dist/`,
    `./dist`, `a//b`, `a/.`) were taken, and their files then lost ("not
    recorded") or the step failed ("dist/: a symbolic link"); `.` kept
    nothing; a line break in a path was taken.  A file's are made tidy,
    `.` and a control character refused; a spec sent in another form is
    refused naming the tidy one. */
static void
test_checker_artifact_paths(void)
{
    char *t = evr_spec_path_tidy("./out//sub/./");
    CHECK_STR(t, "out/sub");
    free(t);
    t = evr_spec_path_tidy("./.");
    CHECK_STR(t, "");
    free(t);
    size_t n;
    evr_spec_t spec = { 0 };
    char *e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n"
                             "  - name: a\n    run: x\n"
                             "    artifacts: [./dist, out/, c//d/., \"app/[slug]\", dist]\n"
                             "on_error: {run: x, artifacts: {paths: [logs/], when: always}}\n",
                             &n, &spec);
    CHECK_CONTAINS(e, "f.yml:6:53: steps[0].artifacts.paths[4]: \"dist\" is listed twice\n");
    CHECK(n == 1);
    const evr_strlist_t *l = &evr_spec_step(&spec, 0)->artifacts.paths;
    CHECK(l->n == 5);
    if (l->n == 5) {
        CHECK_STR(l->v[0], "dist");
        CHECK_STR(l->v[1], "out");
        CHECK_STR(l->v[2], "c/d");
        CHECK_STR(l->v[3], "app/[slug]");
    }
    CHECK(spec.on_error.artifacts.paths.n == 1);
    if (spec.on_error.artifacts.paths.n == 1)
        CHECK_STR(spec.on_error.artifacts.paths.v[0], "logs");
    evr_rec_free(&evr_spec_type, &spec);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n"
                       "  - {name: a, run: x, artifacts: [., ./, \"a\\tb\"]}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:35: steps[0].artifacts.paths[0]: \".\" is the workspace "
                      "itself: name the files or directories to keep\n");
    CHECK_CONTAINS(e, "f.yml:4:38: steps[0].artifacts.paths[1]: \"./\" is the workspace "
                      "itself");
    CHECK_CONTAINS(e, "f.yml:4:42: steps[0].artifacts.paths[2]: the path holds a control "
                      "character");
    CHECK(n == 3);
    free(e);
    /* on the wire: refused, naming the form to send */
    e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n  - {name: a, run: x, artifacts: [x]}\n",
                       &n, &spec);
    CHECK(n == 0);
    free(e);
    evr_step_t *st = evr_spec_step(&spec, 0);
    free(st->artifacts.paths.v[0]);
    st->artifacts.paths.v[0] = evr_strdup("./x/");
    evr_diag_t *d = evr_diag_new("spec");
    CHECK(evr_spec_validate(&spec, d) == EVR_ERR_SPEC);
    CHECK(evr_diag_count(d) == 1);
    CHECK_CONTAINS(evr_diag_get(d, 0), "steps[0].artifacts.paths[0]: \"./x/\": an empty or "
                                       "\".\" component, or a / at the end: write \"x\"");
    evr_diag_destroy(&d);
    evr_rec_free(&evr_spec_type, &spec);
}

/*  A cache or resource path with a line break was taken: the runner's
    record of a job's cache mounts (one a line) then read as damaged. */
static void
test_checker_control_paths(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\ncache: [{key: k, path: \"a\\nb\"}]\n"
                             "resources: [{name: r, url: \"http://h/x\", path: \"c\\td\"}]\n"
                             "steps:\n  - {name: a, run: x, cache: [{key: k, path: \"/x\\ty\"}]}\n",
                             &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:24: cache[0].path: the path holds a control character");
    CHECK_CONTAINS(e, "f.yml:4:48: resources[0].path: the path holds a control character");
    CHECK_CONTAINS(e, "f.yml:6:46: steps[0].cache[0].path: the path holds a control character");
    CHECK(n == 3);
    free(e);
}

/*  In the /job layout (a pipeline with a source) a cache at /job, /job/src
    or /job/ci was taken: it would hide the workspace, the checked-out
    source (every step's working directory) or the read-only CI source.
    A directory inside /job/src is fine, and without a source /job is no
    mount of evrun's. */
static void
test_checker_cache_job_layout(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nsource: {tarball: \"https://h/x.tgz\"}\n"
                             "cache: [{key: k, path: /job/src/}, {key: k, path: /job},\n"
                             "        {key: k, path: /job/ci/x}, {key: k, path: /job/src/deps}]\n"
                             "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:24: cache[0].path: /job/src cannot be a cache: the source is "
                      "checked out there");
    CHECK_CONTAINS(e, "f.yml:4:51: cache[1].path: /job itself cannot be a cache");
    CHECK_CONTAINS(e, "f.yml:5:24: cache[2].path: the CI source is mounted read-only at "
                      "/job/ci");
    CHECK(n == 3);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\ncache: [{key: k, path: /job}]\n"
                       "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK(n == 0);
    free(e);
}

/*  In the /job layout a resource under ci/ was taken and hidden by the CI
    source's read-only volume (the job went on without it), and one at
    src itself failed the source's copy with podman's request dumped;
    inside src/ it is fine, and without a source ci is a directory like
    any other. */
static void
test_checker_resource_job_layout(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nsource: {tarball: \"https://h/x.tgz\"}\n"
                             "resources: [{name: a, url: \"https://h/a\", path: ci/x},\n"
                             "            {name: b, url: \"https://h/b\", path: ./src/},\n"
                             "            {name: c, url: \"https://h/c\", path: src/c}]\n"
                             "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:49: resources[0].path: the CI source is mounted read-only at "
                      "/job/ci, over anything put there");
    CHECK_CONTAINS(e, "f.yml:5:49: resources[1].path: /job/src is the source's directory: put "
                      "the resource inside it (src/NAME) or beside it");
    CHECK(n == 2);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nresources: [{name: a, url: \"https://h/a\", "
                       "path: ci}]\nsteps: [{name: a, run: x}]\n", &n, NULL);
    CHECK(n == 0);
    free(e);
}

/*  A cache path that is /workspace, the workspace or the root with an
    empty or "." component was taken ("/./workspace", "./.", "//" said
    'path contains ".."'), and the step's mount then failed in podman
    ("duplicate mount destination"); "nm" and "./nm" in one list are one
    path, said twice. */
static void
test_checker_cache_untidy(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\n"
                             "cache: [{key: k, path: /./workspace}, {key: k, path: \"./.\"},\n"
                             "        {key: k, path: /workspace/.}, {key: k, path: //},\n"
                             "        {key: k, path: nm}, {key: k, path: ./nm//}]\n"
                             "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:24: cache[0].path: /workspace itself cannot be a cache");
    CHECK_CONTAINS(e, "f.yml:3:54: cache[1].path: the workspace itself cannot be a cache");
    CHECK_CONTAINS(e, "f.yml:4:24: cache[2].path: /workspace itself cannot be a cache");
    CHECK_CONTAINS(e, "f.yml:4:54: cache[3].path: the root cannot be a cache: \"//\"");
    CHECK_CONTAINS(e, "f.yml:5:44: cache[5].path: \"./nm//\" is the path of cache[4] already");
    CHECK(n == 5);
    free(e);
}

/*  A matrix step named on_error was taken: its combinations on_error[K=v]
    are what `logs --step on_error` takes too. */
static void
test_checker_on_error_matrix(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nsteps:\n  - {name: a, run: x}\n"
                             "  - {name: on_error, run: x, matrix: {A: [1, 2]}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:12: steps[1].name: \"on_error\" is the name of the pipeline's "
                      "on_error step");
    CHECK(n == 1);
    free(e);
}

/*  A wrong item of triggers, retry.on or on.github's lists was said at the
    list's key (triggers: at the line of "triggers:", "item 2: ..."): it is
    said at the item, each one; on the wire (no lines) the list's check
    still names the value. */
static void
test_checker_list_items(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\ntriggers:\n  - ok\n  - \"bad name\"\n"
                             "  - \"file:/x\"\n"
                             "on: {github: {events: [push, tag], branches: [main, \"\"]}}\n"
                             "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:5: triggers[1]: \"bad name\": no pipeline name");
    CHECK_CONTAINS(e, "f.yml:6:5: triggers[2]: \"file:/x\": an absolute path");
    CHECK_CONTAINS(e, "f.yml:7:30: on.github.events[1]: expected a list of: push, "
                      "pull_request, workflow_job, got \"tag\"\n");
    CHECK_CONTAINS(e, "f.yml:7:53: on.github.branches[1]: expected a list of branch names");
    CHECK(n == 4);
    free(e);
    evr_strlist_t l = { 0 };
    evr_strlist_push(&l, "ok");
    evr_strlist_push(&l, "bad name");
    const evr_field_t *f = evr_rec_field(&evr_spec_type, "triggers");
    /* on the wire the list's check says which item (a file's says it at
       the item: checked alone, with no number) */
    CHECK_STR(f->check(&l), "item 2: \"bad name\": no pipeline name (1-64 bytes of "
                            "[A-Za-z0-9][A-Za-z0-9_.-]*) nor file:PATH");
    evr_strlist_free(&l);
}

/*  on_error with needs: [], when: on_success or allow_failure: false (the
    defaults written) was taken, though README says those keys are
    refused: they mean nothing there. */
static void
test_checker_on_error_defaults(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\non_error:\n  run: x\n  needs: []\n"
                             "  when: on_success\n  allow_failure: false\n  matrix:\n"
                             "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:3: on_error.needs: on_error runs after every step once the "
                      "job has failed: it takes no needs (remove needs)\n");
    CHECK_CONTAINS(e, "f.yml:6:9: on_error.when: on_error runs once the job has failed or "
                      "timed out: it takes no when (remove when)\n");
    CHECK_CONTAINS(e, "f.yml:7:18: on_error.allow_failure: the job has failed when on_error "
                      "runs");
    CHECK_CONTAINS(e, "f.yml:8:3: on_error.matrix: on_error runs once");
    CHECK(n == 4);
    free(e);
}

int
main(void)
{
    EVR_TEST_RUN(test_image_grammar);
    EVR_TEST_RUN(test_image_refs);
    EVR_TEST_RUN(test_fetch_secret_wire);
    EVR_TEST_RUN(test_null_image);
    EVR_TEST_RUN(test_catchup);
    EVR_TEST_RUN(test_retry_on_empty);
    EVR_TEST_RUN(test_repeats);
    EVR_TEST_RUN(test_checker_matrix_key_twice);
    EVR_TEST_RUN(test_checker_many_needs_fast);
    EVR_TEST_RUN(test_checker_artifact_paths);
    EVR_TEST_RUN(test_checker_control_paths);
    EVR_TEST_RUN(test_checker_cache_job_layout);
    EVR_TEST_RUN(test_checker_cache_untidy);
    EVR_TEST_RUN(test_checker_resource_job_layout);
    EVR_TEST_RUN(test_checker_on_error_matrix);
    EVR_TEST_RUN(test_checker_list_items);
    EVR_TEST_RUN(test_checker_on_error_defaults);
    EVR_TEST_END();
}
