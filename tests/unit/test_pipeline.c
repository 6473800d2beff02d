/*  test_pipeline: the YAML loader, spec validation and arg binding.

    Every file in tests/data/pipelines/bad/ carries `# expect: ...` lines;
    each must be found in the errors the loader reports for that file
    (file:line:column: field: message).  Every file in good/ and examples/
    must load without error.
*/
#include <dirent.h>
#include <unistd.h>

#include "evr_codec.h"
#include "evr_event.h"
#include "evr_json.h"
#include "evr_test.h"
#include "evr_ytest.h"
#include "evr_yaml.h"

#define PIPES EVR_DATA_DIR "/pipelines"

/*  Loads a file and binds args from given; returns the diag (caller
    destroys) and leaves the spec in *spec. */
static evr_diag_t *
s_load(const char *file, const evr_strmap_t *given, evr_spec_t *spec, evr_rc_t *rc)
{
    evr_diag_t *diag = evr_diag_new(file);
    *rc = evr_yaml_load_file(spec, diag);
    if (*rc == EVR_OK && given) {
        evr_strmap_t resolved = { 0 };
        *rc = evr_spec_bind_args(spec, given, &resolved, diag);
        evr_strmap_free(&resolved);
    }
    return diag;
}

static void
s_expect_dir_valid(const char *dir)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int files = 0;
    struct dirent *e;
    evr_strmap_t none = { 0 };
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".yml"))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        evr_spec_t spec = { 0 };
        evr_rc_t rc;
        evr_diag_t *diag = s_load(path, &none, &spec, &rc);
        if (rc)
            fprintf(stderr, "  %s\n", evr_diag_get(diag, 0));
        CHECK(rc == EVR_OK);
        evr_diag_destroy(&diag);
        evr_rec_free(&evr_spec_type, &spec);
        files++;
    }
    if (d)
        closedir(d);
    CHECK(files >= 2);
}

static void
test_examples_valid(void)
{
    s_expect_dir_valid(EVR_SOURCE_DIR "/examples");
    s_expect_dir_valid(PIPES "/good");
}

static void
test_bad_files(void)
{
    DIR *d = opendir(PIPES "/bad");
    CHECK(d != NULL);
    if (!d)
        return;
    char cwd[1024];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(PIPES "/bad") == 0);   /* errors name the file as given */
    int files = 0;
    struct dirent *e;
    evr_strmap_t none = { 0 };
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".yml"))
            continue;
        files++;
        evr_spec_t spec = { 0 };
        evr_rc_t rc;
        evr_diag_t *diag = s_load(e->d_name, &none, &spec, &rc);
        if (rc == EVR_OK)
            fprintf(stderr, "  %s: accepted, but it is invalid\n", e->d_name);
        CHECK(rc == EVR_ERR_SPEC);
        FILE *fp = fopen(e->d_name, "r");
        char line[1024];
        int expects = 0;
        while (fp && fgets(line, sizeof line, fp)) {
            if (strncmp(line, "# expect: ", 10))
                continue;
            expects++;
            line[strcspn(line, "\n")] = '\0';
            const char *want = line + 10;
            bool found = false;
            for (size_t i = 0; i < evr_diag_count(diag) && i < EVR_DIAG_MAX && !found; i++)
                found = strstr(evr_diag_get(diag, i), want) != NULL;
            if (!found) {
                fprintf(stderr, "  %s: no error matches \"%s\"; got:\n", e->d_name, want);
                for (size_t i = 0; i < evr_diag_count(diag) && i < EVR_DIAG_MAX; i++)
                    fprintf(stderr, "    %s\n", evr_diag_get(diag, i));
            }
            CHECK(found);
        }
        if (fp)
            fclose(fp);
        CHECK(expects > 0);
        evr_diag_destroy(&diag);
        evr_rec_free(&evr_spec_type, &spec);
    }
    closedir(d);
    CHECK(chdir(cwd) == 0);
    CHECK(files >= 15);
}

static void
test_full_values(void)
{
    evr_spec_t spec = { 0 };
    evr_rc_t rc;
    evr_diag_t *diag = s_load(PIPES "/good/full.yml", NULL, &spec, &rc);
    CHECK(rc == EVR_OK);
    CHECK_STR(spec.pipeline, "full");
    CHECK(spec.labels.n == 2);
    CHECK(spec.concurrency == 1 && spec.parallel == 2);
    CHECK(spec.on_failure == EVR_ON_FAILURE_FINISH);
    CHECK(spec.queue.present && spec.queue.limit.set && spec.queue.limit.v == 10);
    CHECK_STR(spec.queue.strategy, "replace");
    CHECK(spec.timeout == 30 * 60 * 1000);
    CHECK_STR(evr_strmap_get(&spec.env, "COUNT"), "3");
    CHECK(spec.args.n == 2);
    CHECK_STR(evr_spec_arg(&spec, 0)->name, "TARGET");
    CHECK_STR(evr_spec_arg(&spec, 0)->def, "world");
    CHECK_STR(evr_spec_arg(&spec, 1)->def, "");
    CHECK(spec.resources.n == 1);
    CHECK_STR(evr_spec_resource(&spec, 0)->path, "src");
    CHECK(spec.steps.n == 2);
    evr_step_t *greet = evr_spec_step(&spec, 0), *test = evr_spec_step(&spec, 1);
    CHECK(greet->retry.present && greet->retry.max == 2 && greet->retry.on.n == 2);
    CHECK(!test->retry.present);
    CHECK(greet->image == NULL);
    CHECK_STR(test->image, "localhost/other:latest");
    CHECK_STR(test->run, "./run-tests.sh\necho done\n");
    CHECK(test->timeout == 5 * 60 * 1000);
    CHECK(test->needs.n == 1);
    CHECK_STR(test->needs.v[0], "greet");
    CHECK(test->artifacts.paths.n == 2 && test->artifacts.present);
    CHECK_STR(evr_strmap_get(&test->env, "MODE"), "ci");

    /* spec -> msgpack -> spec, and -> JSON */
    uint8_t *buf;
    size_t len;
    evr_codec_encode(&evr_spec_type, &spec, &buf, &len);
    evr_spec_t back = { 0 };
    evr_err_t err;
    CHECK(evr_codec_decode(buf, len, &evr_spec_type, &back, "spec", &err) == EVR_OK);
    CHECK(evr_rec_equal(&evr_spec_type, &spec, &back));
    free(buf);
    json_t *j = evr_json_from_rec(&evr_spec_type, &back);
    CHECK_STR(json_string_value(json_object_get(j, "timeout")), "30m");
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(json_object_get(j, "args"), "TARGET"), "default")),
              "world");
    CHECK(json_array_size(json_object_get(j, "steps")) == 2);
    CHECK(json_object_get(j, "secrets") != NULL);
    json_decref(j);
    evr_rec_free(&evr_spec_type, &back);
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
}

/*  queue.limit 0 is a value (no wait list), not absence: it survives
    msgpack and JSON, and a spec without it stays without; the partition
    of a job is its partition_by arg after defaults. */
static void
test_queue_policy(void)
{
    evr_spec_t spec = { 0 };
    evr_rc_t rc;
    evr_diag_t *diag = s_load(PIPES "/good/queue.yml", NULL, &spec, &rc);
    CHECK(rc == EVR_OK);
    CHECK(spec.queue.limit.set && spec.queue.limit.v == 0);
    CHECK(spec.queue.interrupt && spec.start_delay == 90000);
    CHECK(evr_spec_queue_strategy(&spec) == EVR_QUEUE_PARTITIONED);
    uint8_t *buf;
    size_t len;
    evr_codec_encode(&evr_spec_type, &spec, &buf, &len);
    evr_spec_t back = { 0 };
    evr_err_t err;
    CHECK(evr_codec_decode(buf, len, &evr_spec_type, &back, "spec", &err) == EVR_OK);
    CHECK(back.queue.limit.set && back.queue.limit.v == 0);
    CHECK(evr_rec_equal(&evr_spec_type, &spec, &back));
    free(buf);
    json_t *j = evr_json_from_rec(&evr_spec_type, &back);
    json_t *lim = json_object_get(json_object_get(j, "queue"), "limit");
    CHECK(json_is_integer(lim) && json_integer_value(lim) == 0);
    json_decref(j);
    evr_strmap_t args = { 0 };
    CHECK_STR(evr_spec_queue_partition(&back, &args), "");
    evr_strmap_set(&args, "BRANCH", "dev");
    CHECK_STR(evr_spec_queue_partition(&back, &args), "dev");
    evr_strmap_free(&args);
    /* absent: not set, and not encoded */
    back.queue.limit = (evr_u32opt_t) { 0 };
    evr_codec_encode(&evr_spec_type, &back, &buf, &len);
    evr_rec_free(&evr_spec_type, &back);
    CHECK(evr_codec_decode(buf, len, &evr_spec_type, &back, "spec", &err) == EVR_OK);
    CHECK(back.queue.present && !back.queue.limit.set);
    free(buf);
    evr_rec_free(&evr_spec_type, &back);
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
}

static void
test_bind_args(void)
{
    evr_spec_t spec = { 0 };
    evr_rc_t rc;
    evr_diag_t *diag = s_load(PIPES "/bad/args.yml", NULL, &spec, &rc);
    CHECK(rc == EVR_OK);   /* loading alone is fine; binding decides */
    evr_strmap_t given = { 0 }, resolved = { 0 };
    CHECK(evr_spec_parse_arg("TARGET=prod=eu", &given));
    CHECK(!evr_spec_parse_arg("=x", &given));
    CHECK(!evr_spec_parse_arg("noequals", &given));
    CHECK(!evr_spec_parse_arg("BAD-NAME=x", &given));
    CHECK(evr_spec_bind_args(&spec, &given, &resolved, diag) == EVR_OK);
    CHECK_STR(evr_strmap_get(&resolved, "TARGET"), "prod=eu");
    CHECK_STR(evr_strmap_get(&resolved, "MODE"), "fast");
    evr_strmap_free(&resolved);
    CHECK(evr_spec_parse_arg("MODE=slow", &given));
    CHECK(evr_spec_parse_arg("EXTRA=1", &given));
    CHECK(evr_spec_bind_args(&spec, &given, &resolved, diag) == EVR_ERR_SPEC);
    CHECK_CONTAINS(evr_diag_get(diag, 0), "args.EXTRA: the pipeline declares no arg \"EXTRA\"");
    CHECK_STR(evr_strmap_get(&resolved, "MODE"), "slow");
    evr_strmap_free(&resolved);
    evr_strmap_free(&given);
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
}

static void
test_durations(void)
{
    static const struct { const char *s; uint64_t ms; bool ok; } cases[] = {
        { "90", 90000, true },     { "90s", 90000, true },  { "5m", 300000, true },
        { "1h30m", 5400000, true }, { "500ms", 500, true },  { "2d", 172800000, true },
        { "1m30s250ms", 90250, true }, { "5x", 0, false },  { "", 0, false },
        { "m", 0, false },         { "1h30", 0, false },    { "-1s", 0, false },
        { "99999999999999999999s", 0, false }, { "1.5h", 0, false },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(cases); i++) {
        uint64_t ms = 0;
        bool ok = evr_duration_parse(cases[i].s, &ms);
        if (ok != cases[i].ok || (ok && ms != cases[i].ms))
            fprintf(stderr, "  duration \"%s\": got %d %llu\n", cases[i].s, ok,
                    (unsigned long long) ms);
        CHECK(ok == cases[i].ok && (!ok || ms == cases[i].ms));
    }
    char buf[64];
    evr_duration_format(5400000, buf, sizeof buf);
    CHECK_STR(buf, "1h30m");
    evr_duration_format(90250, buf, sizeof buf);
    CHECK_STR(buf, "1m30s250ms");
    evr_duration_format(0, buf, sizeof buf);
    CHECK_STR(buf, "0s");
    /* what the runner and broker compute from durations saturates */
    CHECK(evr_ms_to_ns(EVR_SPEC_MAX_DURATION_MS) == EVR_SPEC_MAX_DURATION_MS * 1000000u);
    CHECK(evr_ms_to_ns(18446744073710ull) == UINT64_MAX);
    CHECK(evr_ms_to_ns(UINT64_MAX) == UINT64_MAX);
    CHECK(evr_add_sat(UINT64_MAX - 1, 2) == UINT64_MAX);
    CHECK(evr_add_sat(1, 2) == 3);
}

static void
test_topo_order(void)
{
    evr_spec_t spec = { 0 };
    evr_rc_t rc;
    evr_diag_t *diag = s_load(EVR_SOURCE_DIR "/examples/dag.yml", NULL, &spec, &rc);
    CHECK(rc == EVR_OK);
    uint32_t order[16];
    CHECK(spec.steps.n == 5);
    CHECK(evr_spec_topo_order(&spec, order));
    /* every step after all its needs */
    for (uint32_t pos = 0; pos < spec.steps.n; pos++) {
        evr_step_t *st = evr_spec_step(&spec, order[pos]);
        for (uint32_t k = 0; k < st->needs.n; k++) {
            int j = evr_spec_step_index(&spec, st->needs.v[k]);
            bool before = false;
            for (uint32_t q = 0; q < pos; q++)
                before |= order[q] == (uint32_t) j;
            CHECK(before);
        }
    }
    CHECK_STR(evr_spec_step(&spec, order[4])->name, "report");
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
}

static void
test_limits(void)
{
    /* over the file size limit */
    size_t big = EVR_YAML_MAX_BYTES + 10;
    char *buf = evr_malloc(big);
    memset(buf, '#', big);
    evr_spec_t spec = { 0 };
    evr_diag_t *diag = evr_diag_new("big.yml");
    CHECK(evr_yaml_load(buf, big, &spec, diag) == EVR_ERR_SPEC);
    CHECK_CONTAINS(evr_diag_get(diag, 0), "exceeds the limit of 1048576 bytes");
    evr_diag_destroy(&diag);
    free(buf);

    /* aliases reuse one big step 256 times: the node budget stops the walk */
    size_t bcap = 64 * 1024;
    char *bomb = evr_malloc(bcap);
    size_t n = (size_t) snprintf(bomb, bcap, "pipeline: p\nimage: i\nsteps:\n  - &s\n"
                                             "    name: a\n    run: x\n    env:\n");
    for (int i = 0; i < 250; i++)
        n += (size_t) snprintf(bomb + n, bcap - n, "      V%d: x\n", i);
    for (int i = 1; i < 256; i++)
        n += (size_t) snprintf(bomb + n, bcap - n, "  - *s\n");
    diag = evr_diag_new("bomb.yml");
    CHECK(evr_yaml_load(bomb, n, &spec, diag) == EVR_ERR_SPEC);
    bool budget = false;
    for (size_t i = 0; i < evr_diag_count(diag) && i < EVR_DIAG_MAX; i++)
        budget |= strstr(evr_diag_get(diag, i), "document too large: more than 100000 nodes") != NULL;
    CHECK(budget);
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
    free(bomb);

    /* exactly EVR_YAML_MAX_NODES nodes load, one more is refused (the
       precheck counted libyaml's events, ends of maps and lists too, so
       it refused some 400 nodes under the limit) */
    for (size_t extra = 0; extra < 2; extra++) {
        size_t ncap = 900 * 1024, left = EVR_YAML_MAX_NODES + extra - 7, steps = 0;
        char *doc = evr_malloc(ncap);   /* root, pipeline: p, image: i, steps: [ = 7 */
        size_t at = (size_t) snprintf(doc, ncap, "pipeline: p\nimage: i\nsteps:\n");
        while (left) {
            /* a step: its map, name: s, run: x, env: {...} = 7 + 2 per
               entry; the last one artifacts: [...] too, 2 + 1 per item */
            bool last = left <= 517;
            size_t items = last ? 2 - (left - 9) % 2 : 0;
            size_t k = last ? (left - 9 - items) / 2 : 250;
            at += (size_t) snprintf(doc + at, ncap - at, "  - {name: s%zu, run: x, env: {",
                                    steps++);
            for (size_t i = 0; i < k; i++)
                at += (size_t) snprintf(doc + at, ncap - at, "%sV%zu: x", i ? ", " : "", i);
            at += (size_t) snprintf(doc + at, ncap - at, "}%s", last ? ", artifacts: [" : "");
            for (size_t i = 0; i < items; i++)
                at += (size_t) snprintf(doc + at, ncap - at, "%sa%zu", i ? ", " : "", i);
            at += (size_t) snprintf(doc + at, ncap - at, "%s}\n", last ? "]" : "");
            left -= last ? left : 7 + 2 * k;
        }
        CHECK(at < ncap && at <= EVR_YAML_MAX_BYTES && steps <= EVR_SPEC_MAX_STEPS);
        diag = evr_diag_new("nodes.yml");
        CHECK(evr_yaml_load(doc, at, &spec, diag) == (extra ? EVR_ERR_SPEC : EVR_OK));
        if (extra)
            CHECK_CONTAINS(evr_diag_get(diag, 0), "document too large: more than 100000 nodes");
        else if (evr_diag_count(diag))
            fprintf(stderr, "  %s\n", evr_diag_get(diag, 0));
        evr_rec_free(&evr_spec_type, &spec);
        memset(&spec, 0, sizeof spec);
        evr_diag_destroy(&diag);
        free(doc);
    }

    /* more steps than the limit */
    size_t cap = 64 * (EVR_SPEC_MAX_STEPS + 2);
    char *many = evr_malloc(cap);
    size_t used = (size_t) snprintf(many, cap, "pipeline: many\nimage: i\nsteps:\n");
    for (int i = 0; i <= EVR_SPEC_MAX_STEPS; i++)
        used += (size_t) snprintf(many + used, cap - used, "  - {name: s%d, run: x}\n", i);
    diag = evr_diag_new("many.yml");
    CHECK(evr_yaml_load(many, used, &spec, diag) == EVR_ERR_SPEC);
    CHECK_CONTAINS(evr_diag_get(diag, 0), "steps: 257 items exceed the limit of 256");
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
    free(many);

    /* a run script over its limit */
    size_t rl = EVR_SPEC_MAX_RUN + 100;
    char *longrun = evr_malloc(rl + 200);
    used = (size_t) snprintf(longrun, rl + 200, "pipeline: p\nimage: i\nsteps:\n  - name: a\n    run: ");
    memset(longrun + used, 'x', EVR_SPEC_MAX_RUN + 1);
    used += EVR_SPEC_MAX_RUN + 1;
    longrun[used++] = '\n';
    diag = evr_diag_new("long.yml");
    CHECK(evr_yaml_load(longrun, used, &spec, diag) == EVR_ERR_SPEC);
    CHECK_CONTAINS(evr_diag_get(diag, 0), "steps[0].run: value of 65537 bytes exceeds the limit of 65536");
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
    free(longrun);

    /* missing file */
    diag = evr_diag_new("/nonexistent/x.yml");
    CHECK(evr_yaml_load_file(&spec, diag) == EVR_ERR_SPEC);
    CHECK_CONTAINS(evr_diag_get(diag, 0), "/nonexistent/x.yml: cannot open: No such file");
    evr_diag_destroy(&diag);
}

/*  The spec's size bound (EVR_SPEC_MAX_BYTES): one check, met by the
    loader even when aliases repeat one big script; the stub of a spec
    keeps its steps' names. */
static void
test_spec_size(void)
{
    /* one 60000-byte script aliased into 20 steps: 1.2 MB as sent */
    size_t cap = 70000;
    char *yml = evr_malloc(cap);
    size_t n = (size_t) snprintf(yml, cap, "pipeline: p\nimage: i\nsteps:\n  - name: s0\n"
                                           "    run: &r ");
    memset(yml + n, 'x', 60000);
    n += 60000;
    yml[n++] = '\n';
    for (int i = 1; i < 20; i++)
        n += (size_t) snprintf(yml + n, cap - n, "  - {name: s%d, run: *r}\n", i);
    evr_spec_t spec = { 0 };
    evr_diag_t *diag = evr_diag_new("alias.yml");
    CHECK(evr_yaml_load(yml, n, &spec, diag) == EVR_ERR_SPEC);
    CHECK_CONTAINS(evr_diag_get(diag, 0), "more than 1048576 bytes, the limit of a pipeline spec");
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
    free(yml);

    /* 16 steps of 64000 bytes fit, 17 do not */
    evr_spec_t *big = evr_spec_new();
    big->pipeline = evr_strdup("big");
    big->image = evr_strdup("i");
    big->steps.v = evr_calloc(17, sizeof(evr_step_t));
    char *run = evr_malloc(64001);
    memset(run, 'x', 64000);
    run[64000] = '\0';
    for (uint32_t i = 0; i < 17; i++) {
        evr_step_t *st = (evr_step_t *) big->steps.v + i;
        st->name = evr_asprintf("s%u", i);
        st->run = evr_strdup(run);
    }
    free(run);
    evr_err_t err;
    big->steps.n = 16;
    CHECK(evr_spec_check_size(big, &err) == EVR_OK);
    big->steps.n = 17;
    CHECK(evr_spec_check_size(big, &err) == EVR_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "over the limit of 1048576 bytes");
    CHECK(evr_codec_size(&evr_spec_type, big) > EVR_SPEC_MAX_BYTES);
    uint8_t *buf;
    size_t len;
    evr_codec_encode(&evr_spec_type, big, &buf, &len);
    CHECK(len == evr_codec_size(&evr_spec_type, big));
    free(buf);

    /* its stub: every step's name, no script, small */
    evr_spec_t *stub = evr_spec_stub(big);
    CHECK(stub->steps.n == 17);
    CHECK_STR(evr_spec_step(stub, 16)->name, "s16");
    CHECK_STR(evr_spec_step(stub, 0)->run, "");
    CHECK_STR(stub->pipeline, "big");
    CHECK(evr_codec_size(&evr_spec_type, stub) < 1024);
    evr_spec_destroy(&stub);
    evr_spec_destroy(&big);
}

/*  A process pipeline: no image is no error, and its stub (what
    job.accepted may carry) keeps the executor, so it validates too. */
static void
test_process_stub(void)
{
    evr_spec_t spec = { 0 };
    evr_rc_t rc;
    evr_diag_t *diag = s_load(PIPES "/good/process.yml", NULL, &spec, &rc);
    CHECK(rc == EVR_OK);
    CHECK(spec.executor == EVR_EXECUTOR_PROCESS);
    evr_spec_t *stub = evr_spec_stub(&spec);
    CHECK(stub->executor == EVR_EXECUTOR_PROCESS);
    evr_diag_t *d2 = evr_diag_new("stub");
    CHECK(evr_spec_validate(stub, d2) == EVR_OK);
    if (evr_diag_count(d2))
        fprintf(stderr, "  %s\n", evr_diag_get(d2, 0));
    evr_diag_destroy(&d2);
    evr_spec_destroy(&stub);
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
}

/*  The label a job needs for its executor, and how a runner's labels meet
    it: executor:NAME; a runner naming no executor offers podman only. */
static void
test_executor_labels(void)
{
    evr_spec_t spec = { .executor = EVR_EXECUTOR_PODMAN };
    CHECK_STR(evr_spec_executor_label(&spec), "executor:podman");
    spec.executor = EVR_EXECUTOR_PROCESS;
    CHECK_STR(evr_spec_executor_label(&spec), "executor:process");
    evr_strlist_t none = { 0 }, old = { 0 }, proc = { 0 }, both = { 0 };
    evr_strlist_push(&old, "gpu");
    evr_strlist_push(&proc, "gpu");
    evr_strlist_push(&proc, "executor:process");
    evr_strlist_push(&both, "executor:process");
    evr_strlist_push(&both, "executor:podman");
    CHECK(evr_spec_runner_has_label(&none, "executor:podman"));
    CHECK(evr_spec_runner_has_label(&old, "executor:podman"));
    CHECK(!evr_spec_runner_has_label(&old, "executor:process"));
    CHECK(evr_spec_runner_has_label(&old, "gpu"));
    CHECK(!evr_spec_runner_has_label(&proc, "executor:podman"));
    CHECK(evr_spec_runner_has_label(&proc, "executor:process"));
    CHECK(evr_spec_runner_has_label(&proc, "gpu"));
    CHECK(!evr_spec_runner_has_label(&proc, "cpu"));
    CHECK(evr_spec_runner_has_label(&both, "executor:podman"));
    CHECK(evr_spec_runner_has_label(&both, "executor:process"));
    evr_strlist_free(&old);
    evr_strlist_free(&proc);
    evr_strlist_free(&both);
}

/*  pull, network and limits: the step's over the pipeline's over the
    defaults; limits key by key; sizes and CPUs as written. */
static void
test_run_options(void)
{
    const char *yml = "pipeline: p\nimage: i\npull: always\n"
                      "limits: {cpus: 1.5, memory: 512M, pids: 64}\nsteps:\n"
                      "  - {name: a, run: x, network: host, pull: never,"
                      " limits: {memory: 1GiB}}\n"
                      "  - {name: b, run: x}\n";
    evr_spec_t spec = { 0 };
    evr_diag_t *diag = evr_diag_new("run.yml");
    CHECK(evr_yaml_load(yml, strlen(yml), &spec, diag) == EVR_OK);
    const evr_step_t *a = evr_spec_step(&spec, 0), *b = evr_spec_step(&spec, 1);
    CHECK(evr_spec_step_pull(&spec, a) == EVR_PULL_NEVER);
    CHECK(evr_spec_step_pull(&spec, b) == EVR_PULL_ALWAYS);
    CHECK(evr_spec_step_network(&spec, a) == EVR_NETWORK_HOST);
    CHECK(evr_spec_step_network(&spec, b) == EVR_NETWORK_BRIDGE);   /* the default */
    evr_limits_t l;
    evr_spec_limits_merge(&spec, a, &l);
    CHECK(l.present && l.memory == 1ull << 30 && l.pids == 64);
    CHECK_STR(l.cpus, "1.5");
    evr_rec_free(&evr_limits_type, &l);
    evr_spec_limits_merge(&spec, b, &l);
    CHECK(l.memory == 512ull << 20);
    evr_rec_free(&evr_limits_type, &l);
    evr_spec_t none = { 0 };
    CHECK(evr_spec_step_pull(&none, NULL) == EVR_PULL_MISSING);   /* the default */
    evr_spec_limits_merge(&none, NULL, &l);
    CHECK(!l.present && !l.cpus);
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);

    uint64_t n;
    CHECK(evr_bytes_parse("512M", &n) && n == 512ull << 20);
    CHECK(evr_bytes_parse("2g", &n) && n == 2ull << 30);
    CHECK(evr_bytes_parse("64kb", &n) && n == 64ull << 10);
    CHECK(evr_bytes_parse("1TiB", &n) && n == 1ull << 40);
    CHECK(evr_bytes_parse("1000", &n) && n == 1000);
    CHECK(!evr_bytes_parse("", &n) && !evr_bytes_parse("M", &n) && !evr_bytes_parse("1.5G", &n));
    CHECK(!evr_bytes_parse("12 apples", &n) && !evr_bytes_parse("1Ki", &n));
    CHECK(!evr_bytes_parse("20000000000000000T", &n));   /* overflow */
    CHECK(evr_bytes_overflows("20000000000000000T") && evr_bytes_overflows("18446744073709551616"));
    CHECK(evr_bytes_parse("18446744073709551615", &n) && n == UINT64_MAX);
    CHECK(!evr_bytes_overflows("1.5G") && !evr_bytes_overflows("99999999999999999999x"));
    uint32_t m;
    CHECK(evr_spec_cpus_milli("1.5", &m) && m == 1500);
    CHECK(evr_spec_cpus_milli("0.001", &m) && m == 1);
    CHECK(evr_spec_cpus_milli("1024", &m) && m == 1024000);
    CHECK(!evr_spec_cpus_milli("0", &m) && !evr_spec_cpus_milli("1025", &m));
    CHECK(!evr_spec_cpus_milli("0.0001", &m) && !evr_spec_cpus_milli("1.", &m));
    CHECK(!evr_spec_cpus_milli("-1", &m) && !evr_spec_cpus_milli("2x", &m));
    CHECK(!evr_spec_cpus_milli("99999999999999999999", &m));
}

/*  evr_spec_path_idx writes what snprintf("%s%u%s") would, cut alike. */
static void
test_path_idx(void)
{
    char p[32], q[32];
    const uint32_t idx[] = { 0, 7, 10, 255, 4294967295u };
    for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++) {
        evr_spec_path_idx(p, sizeof p, "steps[", idx[i], "].limits");
        snprintf(q, sizeof q, "steps[%u].limits", idx[i]);
        CHECK(strcmp(p, q) == 0);
    }
    static const char whole[] = "steps[123].x";
    for (size_t len = 1; len <= sizeof whole; len++) {   /* cut in each part */
        evr_spec_path_idx(p, len, "steps[", 123, "].x");
        CHECK(strlen(p) == len - 1 && strncmp(p, whole, len - 1) == 0);
    }
}

/*  A resource's and a tarball's secret (README "Private downloads"): read
    from YAML, kept through msgpack and JSON; a spec without them (an
    older sender's) decodes with none; a secret beside copy, or beside no
    form, is refused naming the field. */
static void
test_fetch_secret(void)
{
    size_t n;
    evr_spec_t spec = { 0 };
    char *e = evr_ytest_load("pipeline: p\nimage: i\nsteps: [{name: a, run: x}]\n"
                             "source: {tarball: \"https://h/app.tgz\", secret: APP_AUTH}\n"
                             "resources:\n"
                             "  - {name: a, url: \"https://h/a\", path: a}\n"
                             "  - {name: b, url: \"http://h/b\", path: b, secret: B_TOKEN}\n",
                             &n, &spec);
    CHECK(n == 0);
    free(e);
    CHECK_STR(spec.source.tarball, "https://h/app.tgz");
    CHECK_STR(spec.source.secret, "APP_AUTH");
    CHECK(evr_spec_resource(&spec, 0)->secret == NULL);
    CHECK_STR(evr_spec_resource(&spec, 1)->secret, "B_TOKEN");
    uint8_t *buf;
    size_t len;
    evr_codec_encode(&evr_spec_type, &spec, &buf, &len);
    evr_spec_t back = { 0 };
    evr_err_t err;
    CHECK(evr_codec_decode(buf, len, &evr_spec_type, &back, "spec", &err) == EVR_OK);
    CHECK(evr_rec_equal(&evr_spec_type, &spec, &back));
    CHECK_STR(evr_spec_resource(&back, 1)->secret, "B_TOKEN");
    free(buf);
    json_t *j = evr_json_from_rec(&evr_spec_type, &back);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "source"), "secret")),
              "APP_AUTH");
    CHECK_STR(json_string_value(json_object_get(
                  json_array_get(json_object_get(j, "resources"), 1), "secret")), "B_TOKEN");
    CHECK(json_object_get(json_array_get(json_object_get(j, "resources"), 0), "secret")
          == NULL);
    json_decref(j);
    /* an older sender's spec: no secret key anywhere, decoded with none */
    free(evr_spec_resource(&back, 1)->secret);
    evr_spec_resource(&back, 1)->secret = NULL;
    free(back.source.secret);
    back.source.secret = NULL;
    evr_codec_encode(&evr_spec_type, &back, &buf, &len);
    bool named = false;
    for (size_t i = 0; i + 6 <= len; i++)
        named |= !memcmp(buf + i, "secret", 6);
    CHECK(!named);
    evr_rec_free(&evr_spec_type, &back);
    CHECK(evr_codec_decode(buf, len, &evr_spec_type, &back, "spec", &err) == EVR_OK);
    CHECK(back.source.secret == NULL && evr_spec_resource(&back, 1)->secret == NULL);
    CHECK_STR(back.source.tarball, "https://h/app.tgz");
    free(buf);
    evr_rec_free(&evr_spec_type, &back);
    evr_rec_free(&evr_spec_type, &spec);

    e = evr_ytest_load("pipeline: p\nimage: i\nsteps: [{name: a, run: x}]\n"
                       "source: {copy: ., secret: A}\nci_source: {secret: B}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:27: source.secret: only a tarball is fetched with a secret "
                      "beside it: a copy is not fetched");
    CHECK_CONTAINS(e, "f.yml:5:1: ci_source: no form: expected exactly one of git, copy, "
                      "tarball");
    CHECK(n == 2);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nsteps: [{name: a, run: x}]\n"
                       "resources: [{name: a, url: \"https://h/a\", path: a, secret: a.b}]\n",
                       &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:60: resources[0].secret: invalid secret name \"a.b\" (an "
                      "environment variable name, as under secrets)");
    CHECK(n == 1);
    free(e);
}

/*  A source's kind and where it comes from (git's url, copy's directory,
    the tarball's URL), as the gateway's job view, job.source, a hook's
    context and EVRUN_SOURCE_URL take them; none without a source. */
static void
test_source_url(void)
{
    static const struct {
        const char *yaml, *kind, *url, *ci_url;
    } cases[] = {
        { "source: {git: {url: \"https://h/r.git\", ref: main}}\n", "git", "https://h/r.git",
          NULL },
        { "source: {copy: src}\n", "copy", "src", NULL },
        { "source: {tarball: \"https://h/r.tar.gz\"}\n", "tarball", "https://h/r.tar.gz", NULL },
        { "source: none\n", NULL, NULL, NULL },
        { "", NULL, NULL, NULL },
        { "ci_source: {tarball: \"https://h/ci.tgz\"}\n", NULL, NULL, "https://h/ci.tgz" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = evr_asprintf("pipeline: p\nimage: i\n%ssteps: [{name: a, run: x}]\n",
                                  cases[i].yaml);
        evr_spec_t spec = { 0 };
        size_t n;
        char *e = evr_ytest_load(text, &n, &spec);
        if (n)
            fprintf(stderr, "  %s", e);
        CHECK(n == 0);
        CHECK_STR(evr_source_kind(&spec.source), cases[i].kind);
        CHECK_STR(evr_source_url(&spec.source), cases[i].url);
        CHECK_STR(evr_source_url(&spec.ci_source), cases[i].ci_url);
        free(e);
        free(text);
        evr_rec_free(&evr_spec_type, &spec);
    }
    /* what is not present has none, whatever its fields say */
    evr_source_t absent = { .present = false, .tarball = "https://h/x.tgz" };
    CHECK(evr_source_url(&absent) == NULL);
}

/*  A uint above jansson's int64 range reads as a positive number in
    JSON (evrun-tail --json, the gateway), not a negative one. */
static void
test_json_u64(void)
{
    evr_event_t ev = { .seq = UINT64_MAX, .type = EVR_EV_RUNNER_STARTED, .time = 1ull << 63 };
    json_t *j = evr_json_from_rec(&evr_event_type, &ev);
    CHECK(json_is_real(json_object_get(j, "seq")));
    CHECK(json_real_value(json_object_get(j, "seq")) > 1.8e19);
    CHECK(json_real_value(json_object_get(j, "time")) > 9.2e18);
    json_decref(j);
    ev.seq = INT64_MAX;
    j = evr_json_from_rec(&evr_event_type, &ev);
    CHECK(json_integer_value(json_object_get(j, "seq")) == INT64_MAX);
    json_decref(j);
}

int
main(void)
{
    EVR_TEST_RUN(test_examples_valid);
    EVR_TEST_RUN(test_bad_files);
    EVR_TEST_RUN(test_full_values);
    EVR_TEST_RUN(test_queue_policy);
    EVR_TEST_RUN(test_bind_args);
    EVR_TEST_RUN(test_durations);
    EVR_TEST_RUN(test_topo_order);
    EVR_TEST_RUN(test_limits);
    EVR_TEST_RUN(test_spec_size);
    EVR_TEST_RUN(test_process_stub);
    EVR_TEST_RUN(test_executor_labels);
    EVR_TEST_RUN(test_run_options);
    EVR_TEST_RUN(test_path_idx);
    EVR_TEST_RUN(test_json_u64);
    EVR_TEST_RUN(test_source_url);
    EVR_TEST_RUN(test_fetch_secret);
    EVR_TEST_END();
}
