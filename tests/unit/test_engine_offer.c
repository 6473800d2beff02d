/*  test_engine_offer.c: a job goes only to an executor the runner offers.

    The engine is given one executor that does nothing (no operation may
    be called: submitting must fail before any); a job asking for another
    is refused with EVR_ERR_CONFIG and a message saying what the runner
    offers and how to start it with the executor, and nothing is recorded
    (the daemon then records the refusal with evr_engine_reject).
*/
#include <stdlib.h>
#include <unistd.h>

#include "evr_engine.h"
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

int
main(void)
{
    EVR_TEST_RUN(test_not_offered);
    EVR_TEST_END();
}
