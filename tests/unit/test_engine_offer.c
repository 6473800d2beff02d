/*  test_engine_offer.c: a job goes only to an executor the runner offers.

    The engine is given one executor that does nothing (no operation may
    be called: submitting must fail before any); a job asking for another
    is refused with EVR_ERR_CONFIG and a message saying what the runner
    offers and how to start it with the executor, and nothing is recorded
    (the daemon then records the refusal with evr_engine_reject).

    Before the engine, evr_offer: the executors setting, the refusal of a
    pipeline whose executor is not offered, of a store holding unfinished
    jobs whose executor is not offered (one line per job, bounded), and
    the labels of the runner's hello (executor:NAME for each executor
    offered, 32 at most in all).
*/
#include <stdlib.h>
#include <unistd.h>

#include "evr_engine.h"
#include "evr_offer.h"
#include "evr_test.h"
#include "evr_yaml.h"

static const evr_exec_ops_t s_ops = { .name = "other", .unit_word = "thing" };

static void
s_spec(evr_spec_t *spec, const char *yaml)
{
    evr_diag_t *diag = evr_diag_new("test.yml");
    CHECK(evr_yaml_load(yaml, strlen(yaml), spec, diag) == EVR_OK);
    for (size_t i = 0; i < evr_diag_count(diag); i++)
        fprintf(stderr, "%s\n", evr_diag_get(diag, i));
    evr_diag_destroy(&diag);
}

static void
test_not_offered(void)
{
    char dir[] = "/tmp/evr-test-offer-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    evr_store_t *store = NULL;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &store, &err) == EVR_OK);
    evr_loop_t *loop = evr_loop_new();
    evr_exec_t fake = { .ops = &s_ops, .loop = loop };
    evr_exec_t *execs[] = { &fake, NULL };
    evr_engine_opts_t o = { .artifacts_dir = dir };
    evr_engine_t *eng = evr_engine_new(&o, store, loop, execs);
    CHECK(evr_engine_loop(eng) == loop);

    evr_spec_t spec = { 0 };
    s_spec(&spec, "pipeline: p\nimage: localhost/evrun-busybox:latest\n"
                  "steps:\n  - { name: s, run: 'true' }\n");
    const char *id = "01M8MG1YBCCTYQ16TWVBQKRF8E";
    CHECK(evr_engine_submit(eng, id, &spec, NULL, &err) == EVR_ERR_CONFIG);
    CHECK_STR(err.msg, "this runner does not offer executor podman (it offers: other); start "
                       "it with --executors other,podman or send the job to one that does");
    CHECK(evr_engine_active(eng) == 0);
    evr_job_t rec = { 0 };
    CHECK(evr_store_get_job(store, id, &rec, NULL) != EVR_OK);   /* nothing recorded */
    evr_rec_free(&evr_job_type, &rec);

    /* as the daemon does: the refusal recorded, the job failed for it */
    evr_err_t e2;
    CHECK(evr_engine_reject(eng, id, &spec, NULL, err.msg, &e2) == EVR_OK);
    CHECK(evr_store_get_job(store, id, &rec, NULL) == EVR_OK);
    CHECK(rec.status == EVR_JOB_FAILED);
    CHECK_CONTAINS(rec.reason, "does not offer executor podman");
    evr_rec_free(&evr_job_type, &rec);

    evr_rec_free(&evr_spec_type, &spec);
    evr_engine_destroy(&eng);
    evr_store_destroy(&store);
    evr_loop_destroy(&loop);
    char *rm = evr_asprintf("rm -rf '%s'", dir);
    CHECK(system(rm) == 0);
    free(rm);
}

static void
test_offer_parse(void)
{
    evr_offer_t o;
    evr_err_t err;
    CHECK(evr_offer_parse("podman", &o, &err) == EVR_OK);
    CHECK(evr_offer_has(&o, EVR_EXECUTOR_PODMAN) && !evr_offer_has(&o, EVR_EXECUTOR_PROCESS));
    CHECK(!evr_offer_has(&o, 7) && !evr_offer_has(&o, 1000));
    CHECK(evr_offer_parse("process, podman", &o, &err) == EVR_OK);
    CHECK(evr_offer_has(&o, EVR_EXECUTOR_PODMAN) && evr_offer_has(&o, EVR_EXECUTOR_PROCESS));
    CHECK(evr_offer_parse("podman,procss", &o, &err) == EVR_ERR_CONFIG);
    CHECK_STR(err.msg, "executors: unknown executor \"procss\" (expected podman, process, "
                       "comma-separated)");
    CHECK(evr_offer_parse(" , ", &o, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "executors: item 1 of \" , \" is empty (a comma too many?)");
    CHECK(evr_offer_parse("", &o, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "executors: empty (expected podman, process");

    CHECK(evr_offer_parse("podman", &o, &err) == EVR_OK);
    CHECK(evr_offer_check(&o, EVR_EXECUTOR_PODMAN, &err) == EVR_OK);
    CHECK(evr_offer_check(&o, EVR_EXECUTOR_PROCESS, &err) == EVR_ERR_CONFIG);
    CHECK_STR(err.msg, "this runner does not offer executor process (it offers: podman); "
                       "start it with --executors podman,process");
    CHECK(evr_offer_parse("process", &o, &err) == EVR_OK);
    CHECK(evr_offer_check(&o, EVR_EXECUTOR_PODMAN, &err) == EVR_ERR_CONFIG);
    CHECK_STR(err.msg, "this runner does not offer executor podman (it offers: process); "
                       "start it with --executors podman,process");
    CHECK(evr_offer_check(&o, 9, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "executor number 9 is unknown");
}

static void
test_offer_labels(void)
{
    evr_offer_t o;
    evr_err_t err;
    const char *lv[EVR_OFFER_LABELS_MAX + 1];
    char *buf = NULL;
    CHECK(evr_offer_parse("podman,process", &o, &err) == EVR_OK);
    CHECK(evr_offer_labels(&o, "gpu, big", lv, &buf, &err) == EVR_OK);
    CHECK_STR(lv[0], "gpu");
    CHECK_STR(lv[1], "big");
    CHECK_STR(lv[2], "executor:podman");
    CHECK_STR(lv[3], "executor:process");
    CHECK(lv[4] == NULL);
    free(buf);
    CHECK(evr_offer_labels(&o, "", lv, &buf, &err) == EVR_OK);
    CHECK_STR(lv[0], "executor:podman");
    CHECK(lv[2] == NULL);
    free(buf);
    CHECK(evr_offer_labels(&o, "a,executor:podman", lv, &buf, &err) == EVR_ERR_CONFIG);
    CHECK(buf == NULL);
    CHECK_CONTAINS(err.msg, "\"executor:podman\": executor labels come from the executors");
    /* a label twice: the broker would refuse the hello (labels are a set) */
    CHECK(evr_offer_labels(&o, "gpu,big gpu", lv, &buf, &err) == EVR_ERR_CONFIG);
    CHECK(buf == NULL);
    CHECK_STR(err.msg, "labels: \"gpu\" given twice (each label once)");

    /* 30 labels and the two executors' fill the 32; one more is refused,
       however many more (nothing dropped or replaced in silence) */
    char many[400] = "";
    for (int i = 1, at = 0; i <= 40; i++) {
        at += snprintf(many + at, sizeof many - (size_t) at, "%sl%d", i > 1 ? "," : "", i);
        if (i == 30) {
            CHECK(evr_offer_labels(&o, many, lv, &buf, &err) == EVR_OK);
            CHECK_STR(lv[29], "l30");
            CHECK_STR(lv[31], "executor:process");
            CHECK(lv[32] == NULL);
            free(buf);
        }
        if (i == 31) {
            CHECK(evr_offer_labels(&o, many, lv, &buf, &err) == EVR_ERR_CONFIG);
            CHECK_STR(err.msg, "labels: 31 labels, and 2 executor labels (one per executor "
                               "offered), come to 33: a runner has at most 32; drop 1");
        }
    }
    CHECK(evr_offer_labels(&o, many, lv, &buf, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "40 labels, and 2 executor labels");
    CHECK(evr_offer_parse("podman", &o, &err) == EVR_OK);
    many[strlen(many) - strlen(",l33,l34,l35,l36,l37,l38,l39,l40")] = '\0';
    CHECK(evr_offer_labels(&o, many, lv, &buf, &err) == EVR_ERR_CONFIG);   /* 32 + 1 */
    CHECK_CONTAINS(err.msg, "32 labels, and 1 executor label (");
    many[strlen(many) - strlen(",l32")] = '\0';
    CHECK(evr_offer_labels(&o, many, lv, &buf, &err) == EVR_OK);           /* 31 + 1 */
    CHECK_STR(lv[30], "l31");
    CHECK_STR(lv[31], "executor:podman");
    free(buf);
}

/*  job.accepted of a job of pipeline name with executor, unfinished. */
static void
s_accept(evr_store_t *store, const char *name, uint32_t executor, char id[EVR_ULID_LEN + 1])
{
    evr_ulid_new(id);
    evr_event_t *ev = evr_event_new(EVR_EV_JOB_ACCEPTED);
    ev->job = evr_strdup(id);
    ev->data.pipeline = evr_strdup(name);
    ev->data.runner = evr_strdup("exec");
    evr_spec_t *spec = ev->data.spec = evr_spec_new();
    char *y = evr_asprintf("pipeline: %s\nexecutor: %s\n%ssteps:\n  - { name: s, run: 'true' }\n",
                           name, evr_executor_names[executor],
                           executor ? "" : "image: localhost/evrun-busybox:latest\n");
    s_spec(spec, y);
    free(y);
    evr_err_t err;
    CHECK(evr_store_append(store, &ev, 1, &err) == EVR_OK);
    evr_event_destroy(&ev);
}

static void
test_offer_store(void)
{
    char dir[] = "/tmp/evr-test-offer-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    evr_store_t *store = NULL;
    evr_err_t err;
    CHECK(evr_store_open(dir, EVR_STORE_NOSYNC, &store, &err) == EVR_OK);
    evr_offer_t podman, process, both;
    CHECK(evr_offer_parse("podman", &podman, &err) == EVR_OK);
    CHECK(evr_offer_parse("process", &process, &err) == EVR_OK);
    CHECK(evr_offer_parse("podman,process", &both, &err) == EVR_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    CHECK(evr_offer_check_store(&podman, store, "r", out, &err) == EVR_OK);   /* empty */
    char a[EVR_ULID_LEN + 1], b[EVR_ULID_LEN + 1];
    s_accept(store, "pa", EVR_EXECUTOR_PODMAN, a);
    s_accept(store, "pb", EVR_EXECUTOR_PROCESS, b);
    CHECK(evr_offer_check_store(&both, store, "r", out, &err) == EVR_OK);
    fflush(out);
    CHECK(len == 0);
    CHECK(evr_offer_check_store(&podman, store, "r", out, &err) == EVR_ERR_CONFIG);
    fflush(out);
    char *want = evr_asprintf("r: job %s (pipeline pb) is unfinished and runs with executor "
                              "process, which this runner does not offer: start it with "
                              "--executors podman,process\n", b);
    CHECK_STR(text, want);
    free(want);
    CHECK_STR(err.msg, "1 unfinished job needs an executor this runner does not offer: none "
                       "is taken up");
    rewind(out);
    CHECK(evr_offer_check_store(&process, store, "r", out, &err) == EVR_ERR_CONFIG);
    fflush(out);
    CHECK_CONTAINS(text, "(pipeline pa) is unfinished and runs with executor podman");
    CHECK_CONTAINS(text, "--executors podman,process\n");

    /* a finished job is no obstacle; a dozen unfinished: ten named, the
       rest counted */
    evr_event_t *fin = evr_event_new(EVR_EV_JOB_FINISHED);
    fin->job = evr_strdup(b);
    fin->data.status = evr_strdup("failed");
    CHECK(evr_store_append(store, &fin, 1, &err) == EVR_OK);
    evr_event_destroy(&fin);
    CHECK(evr_offer_check_store(&podman, store, "r", out, &err) == EVR_OK);
    for (int i = 0; i < 12; i++)
        s_accept(store, "many", EVR_EXECUTOR_PROCESS, b);
    rewind(out);
    CHECK(evr_offer_check_store(&podman, store, "r", out, &err) == EVR_ERR_CONFIG);
    fflush(out);
    size_t lines = 0;
    for (const char *p = text; p < text + ftell(out); p++)
        lines += *p == '\n';
    CHECK(lines == 11);
    CHECK_CONTAINS(text, "r: ... and 2 more unfinished jobs like these\n");
    CHECK_STR(err.msg, "12 unfinished jobs need an executor this runner does not offer: none "
                       "is taken up");

    fclose(out);
    free(text);
    evr_store_destroy(&store);
    char *rm = evr_asprintf("rm -rf '%s'", dir);
    CHECK(system(rm) == 0);
    free(rm);
}

int
main(void)
{
    EVR_TEST_RUN(test_not_offered);
    EVR_TEST_RUN(test_offer_parse);
    EVR_TEST_RUN(test_offer_labels);
    EVR_TEST_RUN(test_offer_store);
    EVR_TEST_END();
}
