/*  test_engine_chan.c: the engine's side of the steps' control channels
    (runner/evr_step_chan.c), over the fake executor: a secret a step
    registers is masked in what it prints next and given to the step
    after it; after a runner killed and recovered it is masked still; its
    file and the unit's directory go at the end; a bad registration gets a
    clear answer and changes nothing.  Triggers: the spec's checks, the
    follow-up's id and its sending; the pipeline files kept (their
    capture, in a child, cancelled: its directory goes at once, and the
    child never makes a removed job's directory again). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_diag.h"
#include "evr_engine_int.h"   /* evr_eng_trigger_files_capture */
#include "evr_etest.h"
#include "evr_sha256.h"
#include "evr_test.h"
#include "evr_trigger.h"
#include "evr_yaml.h"

#define S_MAX_MS 30000   /* a bound for a failing test only: ASan on a loaded machine is slow */

static char s_ctl[300], s_sec[300];

/*  A world whose engine has control channels and a job secrets directory. */
static evr_etest_t *
s_world(void)
{
    evr_etest_t *t = evr_etest_new();
    evr_etest_kill(t, false);
    snprintf(s_ctl, sizeof s_ctl, "%s/ctl", t->dir);
    snprintf(s_sec, sizeof s_sec, "%s/job-secrets", t->dir);
    t->opts.control_dir = s_ctl;
    t->opts.job_secrets_dir = s_sec;
    evr_etest_engine(t);
    return t;
}

/*  The socket of step's first unit of job n (caller frees). */
static char *
s_sock(int n, const char *step)
{
    char *unit = evr_etest_unit(evr_etest_job(n), step, 1);
    char hex[EVR_SHA256_HEX];
    evr_sha256_t *h = evr_sha256_new();
    evr_sha256_update(h, unit, strlen(unit));
    evr_sha256_finish(&h, hex);
    free(unit);
    return evr_asprintf("%s/%.16s/control.sock", s_ctl, hex);
}

/*  Sends line to the step's channel, turns the engine until the answer
    comes; returns it (caller frees), NULL when none came. */
static char *
s_ask(evr_etest_t *t, int n, const char *step, const char *line)
{
    char *path = s_sock(n, step);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    free(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa)) {
        close(fd);
        return NULL;
    }
    CHECK(send(fd, line, strlen(line), MSG_NOSIGNAL) == (ssize_t) strlen(line));
    char buf[4096];
    size_t len = 0;
    for (int i = 0; i < 200 && !memchr(buf, '\n', len); i++) {
        evr_etest_turns(t, 5);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 0) == 1) {
            ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
            if (r <= 0)
                break;
            len += (size_t) r;
        }
    }
    close(fd);
    buf[len] = '\0';
    return len ? evr_strdup(buf) : NULL;
}

#define S_SECRET_LINE "{\"cmd\":\"secret\",\"name\":\"TOKEN\",\"value\":\"tok-9931\"}\n"
#define S_STEPS EVR_ETEST_HEAD "steps:\n"                                                      \
    "  - name: a\n    run: echo before; sleep 0.3; echo \"value tok-9931 end\"\n"             \
    "  - name: b\n    needs: [a]\n    run: echo \"later $TOKEN\"\n"

static bool
s_file_gone(int n)
{
    char *f = evr_asprintf("%s/%s", s_sec, evr_etest_job(n));
    bool gone = access(f, F_OK) != 0;
    free(f);
    return gone;
}

static void
test_secret_masked(void)
{
    evr_etest_t *t = s_world();
    CHECK(evr_etest_submit(t, evr_etest_job(1), S_STEPS) == EVR_OK);
    CHECK(evr_etest_until_event(t, 1, "step.output a 1 stdout"));
    char *ans = s_ask(t, 1, "a", "{\"cmd\":\"hello\",\"id\":\"h\"}\n");
    CHECK_CONTAINS(ans, "\"step\":\"a\"");
    CHECK_CONTAINS(ans, evr_etest_job(1));
    CHECK_CONTAINS(ans, "\"id\":\"h\"");
    free(ans);
    ans = s_ask(t, 1, "a", "{\"cmd\":\"secret\",\"name\":\"9X\",\"value\":\"v\"}\n");
    CHECK_CONTAINS(ans, "is not a variable name");
    free(ans);
    ans = s_ask(t, 1, "a", "{\"cmd\":\"secret\",\"name\":\"X\",\"value_hex\":\"7\"}\n");
    CHECK_CONTAINS(ans, "even number of hex digits");
    free(ans);
    ans = s_ask(t, 1, "a", "{\"cmd\":\"secret\",\"name\":\"X\",\"value_hex\":\"610062\"}\n");
    CHECK_CONTAINS(ans, "expected 1 to 32768 bytes without NUL");   /* a NUL inside */
    free(ans);
    ans = s_ask(t, 1, "a", "{\"cmd\":\"secret\",\"name\":\"X\"}\n");
    CHECK_CONTAINS(ans, "expected {\\\"cmd\\\": \\\"secret\\\"");
    free(ans);
    /* value or value_hex, not both, whatever the other holds (a value
       with a value_hex not a string was registered) */
    ans = s_ask(t, 1, "a", "{\"cmd\":\"secret\",\"name\":\"X\",\"value\":\"v1v1v1\","
                "\"value_hex\":5}\n");
    CHECK_CONTAINS(ans, "expected {\\\"cmd\\\": \\\"secret\\\"");
    free(ans);
    ans = s_ask(t, 1, "a", "{\"cmd\":\"secret\",\"name\":\"X\",\"value\":null,"
                "\"value_hex\":\"763176317631\"}\n");
    CHECK_CONTAINS(ans, "expected {\\\"cmd\\\": \\\"secret\\\"");
    free(ans);
    ans = s_ask(t, 1, "a", S_SECRET_LINE);
    CHECK_STR(ans, "{\"ok\":true}\n");
    free(ans);
    char *f = evr_asprintf("%s/%s", s_sec, evr_etest_job(1));
    struct stat sb;
    CHECK(stat(f, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    free(f);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(1)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_output_is(t, 1, "a", 1, "stdout", "before\nvalue *** end\n"));
    CHECK(evr_etest_output_is(t, 1, "b", 1, "stdout", "later ***\n"));
    CHECK(s_file_gone(1));
    char *sock = s_sock(1, "a");
    CHECK(access(sock, F_OK) != 0);
    *strrchr(sock, '/') = '\0';
    CHECK(access(sock, F_OK) != 0);   /* the unit's directory */
    free(sock);
    CHECK(evr_etest_clean(t, 1));
    evr_etest_destroy(&t);
}

/*  Killed after the registration, before the print: the recovered
    engine reads the secret back and masks it. */
static void
test_secret_recovered(void)
{
    evr_etest_t *t = s_world();
    CHECK(evr_etest_submit(t, evr_etest_job(2), S_STEPS) == EVR_OK);
    CHECK(evr_etest_until_event(t, 2, "step.output a 1 stdout"));
    char *ans = s_ask(t, 2, "a", S_SECRET_LINE);
    CHECK_STR(ans, "{\"ok\":true}\n");
    free(ans);
    evr_etest_kill(t, true);
    evr_etest_engine(t);
    uint32_t jobs = 0;
    evr_err_t err;
    CHECK(evr_engine_recover(t->eng, &jobs, &err) == EVR_OK);
    CHECK(jobs == 1);
    CHECK(evr_etest_until_event(t, 2, "step.recovered a 1 reattached"));
    ans = s_ask(t, 2, "a", "{\"cmd\":\"hello\"}\n");   /* listening again */
    CHECK_CONTAINS(ans, "\"step\":\"a\"");
    free(ans);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(2)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_output_is(t, 2, "a", 1, "stdout", "before\nvalue *** end\n"));
    CHECK(evr_etest_output_is(t, 2, "b", 1, "stdout", "later ***\n"));
    CHECK(s_file_gone(2));
    CHECK(evr_etest_clean(t, 2));
    evr_etest_destroy(&t);
}

/*  Without the secrets directory, registering is refused and nothing is
    masked that was not declared. */
static void
test_secret_refused(void)
{
    evr_etest_t *t = s_world();
    evr_etest_kill(t, false);
    t->opts.job_secrets_dir = NULL;
    evr_etest_engine(t);
    CHECK(evr_etest_submit(t, evr_etest_job(3), S_STEPS) == EVR_OK);
    CHECK(evr_etest_until_event(t, 3, "step.output a 1 stdout"));
    char *ans = s_ask(t, 3, "a", S_SECRET_LINE);
    CHECK_CONTAINS(ans, "not registered: this runner keeps no job secrets");
    free(ans);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_output_is(t, 3, "a", 1, "stdout", "before\nvalue tok-9931 end\n"));
    CHECK(evr_etest_clean(t, 3));
    evr_etest_destroy(&t);
}

/*  A value that is not UTF-8 (value_hex) in a podman pipeline: refused,
    saying why and what to do, since a container's environment cannot
    carry it (it was registered and masked, and the later steps ran
    without the variable, silently).  A process pipeline's steps get it. */
static void
test_secret_not_utf8(void)
{
    static const char line[] = "{\"cmd\":\"secret\",\"name\":\"TOKEN\","
                               "\"value_hex\":\"746f6bff39\"}\n";   /* tok\xff9 */
    evr_etest_t *t = s_world();
    CHECK(evr_etest_submit(t, evr_etest_job(4), S_STEPS) == EVR_OK);
    CHECK(evr_etest_until_event(t, 4, "step.output a 1 stdout"));
    char *ans = s_ask(t, 4, "a", line);
    CHECK_CONTAINS(ans, "secret: the value is not valid UTF-8, which a container's environment "
                   "cannot carry (podman takes it as JSON text), so the later steps of this "
                   "podman pipeline could not get TOKEN: not registered, nor masked; register "
                   "it encoded (base64, for one) and decode it in the step");
    CHECK(!strstr(ans ? ans : "", "\"ok\":true"));
    free(ans);
    CHECK(evr_etest_run(t, S_MAX_MS));
    char *ev = evr_etest_events_of(t, 4);
    CHECK(evr_etest_count(ev, "secret.registered") == 0);
    free(ev);
    CHECK(evr_etest_output_is(t, 4, "b", 1, "stdout", "later \n"));
    CHECK(s_file_gone(4));
    CHECK(evr_etest_clean(t, 4));
    /* a process pipeline: registered, and the later step has it */
    evr_etest_kill(t, false);
    evr_etest_with_process(t);
    evr_etest_engine(t);
    CHECK(evr_etest_submit(t, evr_etest_job(5), "pipeline: t\nexecutor: process\nsteps:\n"
                           "  - name: a\n    run: echo before; sleep 0.3; echo done\n"
                           "  - name: b\n    needs: [a]\n    run: echo \"later $TOKEN\"\n")
          == EVR_OK);
    CHECK(evr_etest_until_event(t, 5, "step.output a 1 stdout"));
    ans = s_ask(t, 5, "a", line);
    CHECK_STR(ans, "{\"ok\":true}\n");
    free(ans);
    CHECK(evr_etest_run(t, S_MAX_MS));
    CHECK(evr_etest_job_status(t, evr_etest_job(5)) == EVR_JOB_SUCCEEDED);
    CHECK(evr_etest_output_is(t, 5, "b", 1, "stdout", "later ***\n"));
    evr_etest_destroy(&t);
}

/* ------------------------------------------------------------- triggers */

#define S_TRIG_STEPS EVR_ETEST_HEAD "triggers: [deploy, notify]\nsteps:\n"                    \
    "  - name: a\n    run: echo up; sleep 0.8; echo done\n"
#define S_CALL "01JDX5QG0000000000000000AB"
#define S_TRIG_LINE(p) "{\"cmd\":\"trigger\",\"pipeline\":\"" p "\",\"call\":\"" S_CALL       \
    "\",\"args\":{\"ENV\":\"it's\"}}\n"

static int s_sent;
static char s_sent_job[EVR_ULID_LEN + 1], s_sent_parent[EVR_ULID_LEN + 1], s_sent_env[64];

static void
s_record(void *arg, const char *job, const char *pipeline, const evr_strmap_t *args,
         const char *parent_job, const char *parent_step, const evr_trigger_file_t *file)
{
    (void) arg;
    CHECK(file == NULL);
    CHECK_STR(pipeline, "deploy");
    CHECK_STR(parent_step, "a");
    s_sent++;
    snprintf(s_sent_job, sizeof s_sent_job, "%s", job);
    snprintf(s_sent_parent, sizeof s_sent_parent, "%s", parent_job);
    const char *env = evr_strmap_get(args, "ENV");
    snprintf(s_sent_env, sizeof s_sent_env, "%s", env ? env : "");
}

/*  The child's id: the same for the same call, another for another call,
    pipeline or attempt; a call that is no ULID is refused. */
static void
test_trigger_child_id(void)
{
    char a[EVR_ULID_LEN + 1], b[EVR_ULID_LEN + 1];
    evr_err_t err;
    const char *job = evr_etest_job(1);
    CHECK(evr_trigger_child_id(job, "a", 1, S_CALL, "deploy", a, &err) == EVR_OK);
    CHECK(evr_ulid_valid(a));
    CHECK(strncmp(a, S_CALL, 10) == 0);     /* the call's time */
    CHECK(evr_trigger_child_id(job, "a", 1, S_CALL, "deploy", b, &err) == EVR_OK);
    CHECK_STR(a, b);
    CHECK(evr_trigger_child_id(job, "a", 2, S_CALL, "deploy", b, &err) == EVR_OK);
    CHECK(strcmp(a, b) != 0);
    CHECK(evr_trigger_child_id(job, "a", 1, S_CALL, "notify", b, &err) == EVR_OK);
    CHECK(strcmp(a, b) != 0);
    CHECK(evr_trigger_child_id(job, "a", 1, "01JDX5QG0000000000000000AC", "deploy", b, &err)
          == EVR_OK);
    CHECK(strcmp(a, b) != 0);
    CHECK(evr_trigger_child_id(job, "a", 1, "nope", "deploy", b, &err) == EVR_ERR_PROTO);
    CHECK_CONTAINS(err.msg, "\"call\"");
}

/*  triggers: is checked where it is written: each item a pipeline name. */
static void
test_trigger_spec_key(void)
{
    const char *bad = "pipeline: t\nimage: img\nsteps:\n  - name: a\n    run: x\n"
                      "triggers: [deploy, \"no way\"]\n";
    evr_spec_t spec = { 0 };
    evr_diag_t *diag = evr_diag_new("p.yml");
    CHECK(evr_yaml_load(bad, strlen(bad), &spec, diag) != EVR_OK);
    CHECK(evr_diag_count(diag) >= 1);
    CHECK_CONTAINS(evr_diag_get(diag, 0), "p.yml:6:20: triggers[1]: \"no way\": no pipeline "
                                          "name");
    evr_diag_destroy(&diag);
    evr_rec_free(&evr_spec_type, &spec);
    /* file: entries: relative paths inside the source, globs allowed */
    static const char *const bad_files[][2] = {
        { "file:/etc/x.yml", "an absolute path" }, { "file:ci/../x.yml", "\"..\" component" },
        { "file:", "expected a path of 1-256 bytes" }, { "file:ci//x.yml", "an empty" },
        { "file:./x.yml", "component" }, { "file:ci/", "ending in /" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad_files); i++) {
        char *y = evr_asprintf("pipeline: t\nimage: img\nsteps:\n  - name: a\n    run: x\n"
                               "triggers: [\"%s\"]\n", bad_files[i][0]);
        memset(&spec, 0, sizeof spec);
        diag = evr_diag_new("p.yml");
        CHECK(evr_yaml_load(y, strlen(y), &spec, diag) != EVR_OK);
        CHECK(evr_diag_count(diag) >= 1);
        if (evr_diag_count(diag))
            CHECK_CONTAINS(evr_diag_get(diag, 0), bad_files[i][1]);
        evr_diag_destroy(&diag);
        evr_rec_free(&evr_spec_type, &spec);
        free(y);
    }
    const char *files = "pipeline: t\nimage: img\nsteps:\n  - name: a\n    run: x\n"
                        "triggers: [deploy, file:ci/deploy.yml, \"file:ci/*.yml\"]\n";
    memset(&spec, 0, sizeof spec);
    diag = evr_diag_new("p.yml");
    CHECK(evr_yaml_load(files, strlen(files), &spec, diag) == EVR_OK);
    CHECK(spec.triggers.n == 3 && !strcmp(spec.triggers.v[2], "file:ci/*.yml"));
    CHECK(evr_spec_trigger_path_problem("ci/deploy.yml") == NULL);
    CHECK(evr_spec_trigger_path_problem("ci/*.yml") != NULL);
    CHECK(evr_spec_trigger_path_problem("../x.yml") != NULL);
    evr_diag_destroy(&diag);
    evr_rec_free(&evr_spec_type, &spec);
    memset(&spec, 0, sizeof spec);
    const char *good = "pipeline: t\nimage: img\nsteps:\n  - name: a\n    run: x\n"
                       "triggers: [deploy, notify.v2]\n";
    diag = evr_diag_new("p.yml");
    CHECK(evr_yaml_load(good, strlen(good), &spec, diag) == EVR_OK);
    CHECK(spec.triggers.n == 2 && !strcmp(spec.triggers.v[1], "notify.v2"));
    evr_diag_destroy(&diag);
    evr_rec_free(&evr_spec_type, &spec);
}

/*  With a broker: a pipeline not in triggers: is refused, naming it; one
    in it is sent once (polls send nothing new), pending until the
    broker's answer, then accepted; a refusal is said with the broker's
    words. */
static void
test_trigger_broker(void)
{
    evr_etest_t *t = s_world();
    s_sent = 0;
    evr_engine_set_trigger(t->eng, s_record, NULL, NULL);
    CHECK(evr_etest_submit(t, evr_etest_job(4), S_TRIG_STEPS) == EVR_OK);
    CHECK(evr_etest_until_event(t, 4, "step.output a 1 stdout"));
    char *ans = s_ask(t, 4, "a", S_TRIG_LINE("other"));
    CHECK_CONTAINS(ans, "pipeline other is not in the triggers: of pipeline t (deploy, notify)");
    CHECK_CONTAINS(ans, "\"ok\":false");
    free(ans);
    CHECK(s_sent == 0);
    ans = s_ask(t, 4, "a", S_TRIG_LINE("deploy"));
    CHECK_CONTAINS(ans, "\"state\":\"pending\"");
    CHECK(s_sent == 1);
    CHECK_STR(s_sent_parent, evr_etest_job(4));
    CHECK_STR(s_sent_env, "it's");
    CHECK_CONTAINS(ans, s_sent_job);
    free(ans);
    ans = s_ask(t, 4, "a", S_TRIG_LINE("deploy"));
    CHECK_CONTAINS(ans, "\"state\":\"pending\"");
    CHECK(s_sent == 1);
    free(ans);
    evr_engine_triggered(t->eng, s_sent_job, false, NULL, NULL);
    ans = s_ask(t, 4, "a", S_TRIG_LINE("deploy"));
    CHECK_CONTAINS(ans, "\"state\":\"accepted\"");
    CHECK_CONTAINS(ans, s_sent_job);
    free(ans);
    char other[] = "{\"cmd\":\"trigger\",\"pipeline\":\"deploy\",\"call\":"
                   "\"01JDX5QG0000000000000000AC\"}\n";
    ans = s_ask(t, 4, "a", other);
    CHECK(s_sent == 2);
    free(ans);
    evr_engine_triggered(t->eng, s_sent_job, false, "not_found", "no registered pipeline");
    ans = s_ask(t, 4, "a", other);
    CHECK_CONTAINS(ans, "the broker refused to start pipeline deploy: no registered pipeline "
                        "(not_found)");
    free(ans);
    CHECK(evr_etest_run(t, S_MAX_MS));
    evr_etest_destroy(&t);
}

/*  Without a broker (--exec): the next job and the command that runs it,
    args quoted for a shell. */
static void
test_trigger_local(void)
{
    evr_etest_t *t = s_world();
    CHECK(evr_etest_submit(t, evr_etest_job(5), S_TRIG_STEPS) == EVR_OK);
    CHECK(evr_etest_until_event(t, 5, "step.output a 1 stdout"));
    char *ans = s_ask(t, 5, "a", S_TRIG_LINE("notify"));
    CHECK_CONTAINS(ans, "\"local\":true");
    CHECK_CONTAINS(ans, "evrun-cli start notify -a 'ENV=it'\\\\''s'");
    free(ans);
    /* pipeline or file, not both, whatever the other holds (a pipeline
       with a file not a string was taken) */
    ans = s_ask(t, 5, "a", "{\"cmd\":\"trigger\",\"pipeline\":\"notify\",\"file\":1,\"call\":\""
                S_CALL "\"}\n");
    CHECK_CONTAINS(ans, "trigger: expected {");
    free(ans);
    CHECK(evr_etest_run(t, S_MAX_MS));
    evr_etest_destroy(&t);
}

static uint64_t s_qseq;

static void
s_query_rec(void *arg, uint64_t seq, const char *job, const char *pipeline)
{
    (void) arg;
    (void) job;
    (void) pipeline;
    s_qseq = seq;
}

/*  result and running: pending until the broker's answer, then it once;
    a pipeline without a job, a job of a pipeline not allowed, and no
    broker at all are refused with their reasons. */
static void
test_trigger_queries(void)
{
    evr_etest_t *t = s_world();
    CHECK(evr_etest_submit(t, evr_etest_job(6), S_TRIG_STEPS) == EVR_OK);
    CHECK(evr_etest_until_event(t, 6, "step.output a 1 stdout"));
    char *ans = s_ask(t, 6, "a", "{\"cmd\":\"result\",\"pipeline\":\"deploy\"}\n");
    CHECK_CONTAINS(ans, "result: no broker here");
    free(ans);
    evr_engine_set_trigger(t->eng, s_record, s_query_rec, NULL);
    ans = s_ask(t, 6, "a", "{\"cmd\":\"result\",\"pipeline\":\"other\"}\n");
    CHECK_CONTAINS(ans, "result: pipeline other is neither this job's nor in its triggers:");
    free(ans);
    /* job or pipeline, one of the two, whatever the other holds */
    ans = s_ask(t, 6, "a", "{\"cmd\":\"result\",\"pipeline\":\"deploy\",\"job\":null}\n");
    CHECK_CONTAINS(ans, "result: expected {");
    free(ans);
    ans = s_ask(t, 6, "a", "{\"cmd\":\"result\",\"pipeline\":\"deploy\"}\n");
    CHECK_CONTAINS(ans, "\"state\":\"pending\"");
    free(ans);
    evr_msg_t m = { .type = EVR_MSG_QUERIED, .seq = s_qseq, .pipeline = (char *) "deploy" };
    evr_engine_queried(t->eng, &m);
    ans = s_ask(t, 6, "a", "{\"cmd\":\"result\",\"pipeline\":\"deploy\"}\n");
    CHECK_CONTAINS(ans, "result: no job of pipeline deploy yet");
    free(ans);
    ans = s_ask(t, 6, "a", "{\"cmd\":\"running\",\"pipeline\":\"notify\"}\n");
    CHECK_CONTAINS(ans, "\"state\":\"pending\"");
    free(ans);
    m = (evr_msg_t) { .type = EVR_MSG_QUERIED, .seq = s_qseq, .pipeline = (char *) "notify",
                      .waiting = 1, .running = 2 };
    evr_engine_queried(t->eng, &m);
    ans = s_ask(t, 6, "a", "{\"cmd\":\"running\",\"pipeline\":\"notify\"}\n");
    CHECK_CONTAINS(ans, "\"waiting\":1,\"running\":2,\"state\":\"done\"");
    free(ans);
    const char *jq = "{\"cmd\":\"result\",\"job\":\"01JDX5QG00VJA2H610M3R9SMMC\"}\n";
    ans = s_ask(t, 6, "a", jq);
    free(ans);
    m = (evr_msg_t) { .type = EVR_MSG_QUERIED, .seq = s_qseq, .pipeline = (char *) "other",
                      .job = (char *) "01JDX5QG00VJA2H610M3R9SMMC", .status = (char *) "failed" };
    evr_engine_queried(t->eng, &m);
    ans = s_ask(t, 6, "a", jq);
    CHECK_CONTAINS(ans, "result: job 01JDX5QG00VJA2H610M3R9SMMC is of pipeline other, which the "
                        "triggers: of pipeline t does not name");
    free(ans);
    ans = s_ask(t, 6, "a", jq);
    free(ans);
    m.pipeline = (char *) "deploy";
    m.seq = s_qseq;     /* the answer taken, this is a new query */
    evr_engine_queried(t->eng, &m);
    ans = s_ask(t, 6, "a", jq);
    CHECK_CONTAINS(ans, "\"status\":\"failed\"");
    CHECK_CONTAINS(ans, "\"state\":\"done\"");
    free(ans);
    CHECK(evr_etest_run(t, S_MAX_MS));
    evr_etest_destroy(&t);
}

/*  fnmatch, as libc's, but in a child process (a source's capture of
    its trigger files; the test's own calls pass) while s_tf.on: its
    second match of a path under ci/ marks s_tf.mark (one file was kept
    before it) and waits there until killed. */
static struct {
    bool on;
    pid_t main;
    int calls;
    char mark[320];
} s_tf;

typedef int (s_fnmatch_fn)(const char *, const char *, int);

int
fnmatch(const char *pattern, const char *string, int flags)
{
    if (s_tf.on && getpid() != s_tf.main && !strncmp(string, "ci/", 3) && ++s_tf.calls == 2) {
        close(open(s_tf.mark, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
        for (;;)
            pause();
    }
    s_fnmatch_fn *real = (s_fnmatch_fn *) dlsym(RTLD_NEXT, "fnmatch");
    return real ? real(pattern, string, flags) : FNM_NOMATCH;
}

static bool
s_exists(evr_etest_t *t, const void *path)
{
    (void) t;
    return access(path, F_OK) == 0;
}

static void
s_write(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

/*  A job cancelled while its source's tar is read for its trigger files
    (the child waits in its second file, the first kept): the directory
    of the kept files goes with the cancel, at once, as the tar does;
    in the end nothing of the job is left under ARTIFACTS. */
static void
test_trigger_files_cancelled(void)
{
    evr_etest_t *t = evr_etest_new();
    t->opts.source_copy_local = true;   /* --exec: the runner's own directory */
    evr_etest_engine(t);
    char src[320], p[400], yaml[800];
    snprintf(src, sizeof src, "%s/src", t->dir);
    snprintf(p, sizeof p, "%s/ci", src);
    CHECK(mkdir(src, 0700) == 0 && mkdir(p, 0700) == 0);
    snprintf(p, sizeof p, "%s/ci/a.yml", src);
    s_write(p, "pipeline: a\nimage: img\nsteps:\n  - name: a\n    run: x\n");
    snprintf(p, sizeof p, "%s/ci/b.yml", src);
    s_write(p, "pipeline: b\nimage: img\nsteps:\n  - name: a\n    run: x\n");
    snprintf(yaml, sizeof yaml, EVR_ETEST_HEAD "source: {copy: \"%s\"}\ntriggers: "
             "[\"file:ci/*.yml\"]\nsteps:\n  - name: a\n    run: echo hi\n", src);
    s_tf = (typeof(s_tf)) { .on = true, .main = getpid() };
    snprintf(s_tf.mark, sizeof s_tf.mark, "%s/gated", t->dir);
    CHECK(evr_etest_submit(t, evr_etest_job(11), yaml) == EVR_OK);
    CHECK(evr_etest_until(t, s_exists, s_tf.mark, S_MAX_MS));
    char kept[480], jobdir[400];
    snprintf(jobdir, sizeof jobdir, "%s/%s", t->opts.artifacts_dir, evr_etest_job(11));
    snprintf(kept, sizeof kept, "%s/.trigger-files", jobdir);
    CHECK(access(kept, F_OK) == 0);   /* the child's, as it waits */
    evr_err_t err;
    CHECK(evr_engine_cancel(t->eng, evr_etest_job(11), "not now", false, &err) == EVR_OK);
    CHECK(access(kept, F_OK) != 0 && errno == ENOENT);   /* at once */
    CHECK(evr_etest_run(t, S_MAX_MS));
    s_tf.on = false;
    CHECK(evr_etest_job_status(t, evr_etest_job(11)) == EVR_JOB_CANCELLED);
    char *evs = evr_etest_events(t, evr_etest_job(11));
    CHECK(evs && strstr(evs, "the job was cancelled while its tar was made"));
    free(evs);
    siginfo_t si;
    for (int i = 0; i < 500; i++) {   /* the killed child reaped */
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD)
            break;
        evr_loop_once(t->loop, 10);
    }
    CHECK(access(jobdir, F_OK) != 0 && errno == ENOENT);   /* nothing left of the job */
    evr_etest_destroy(&t);
}

/*  The capture (in its child) makes the directory of the kept files
    only, never the job's: once the job's end has removed that, a child
    that comes late writes nothing there, it says why it kept none. */
static void
test_trigger_files_no_job_dir(void)
{
    char dir[] = "/tmp/evr-test-tf-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char arts[300], jobdir[400];
    snprintf(arts, sizeof arts, "%s/artifacts", dir);
    snprintf(jobdir, sizeof jobdir, "%s/J1", arts);
    evr_engine_t *e = evr_calloc(1, sizeof *e);
    e->opts.artifacts_dir = arts;
    evr_eng_job_t *job = evr_calloc(1, sizeof *job);
    job->eng = e;
    job->id = "J1";
    job->spec = evr_spec_new();
    const char *y = EVR_ETEST_HEAD "triggers: [\"file:ci/*.yml\"]\nsteps:\n  - name: a\n"
                    "    run: x\n";
    evr_diag_t *diag = evr_diag_new("p.yml");
    CHECK(evr_yaml_load(y, strlen(y), job->spec, diag) == EVR_OK);
    evr_diag_destroy(&diag);
    CHECK(evr_eng_trigger_files_wanted(job, 1));
    evr_eng_trigger_capture_t cap;
    char tar[480];
    snprintf(tar, sizeof tar, "%s/.source-x", jobdir);
    evr_eng_trigger_files_capture(job, 1, tar, &cap);
    CHECK(cap.kept == 0 && cap.problem[0]);
    CHECK_CONTAINS(cap.problem, ".trigger-files: No such file or directory");
    CHECK(access(arts, F_OK) != 0 && errno == ENOENT);   /* nothing made */
    evr_spec_destroy(&job->spec);
    free(job);
    free(e);
    CHECK(rmdir(dir) == 0);
}

int
main(void)
{
    EVR_TEST_RUN(test_secret_masked);
    EVR_TEST_RUN(test_secret_recovered);
    EVR_TEST_RUN(test_secret_refused);
    EVR_TEST_RUN(test_secret_not_utf8);
    EVR_TEST_RUN(test_trigger_child_id);
    EVR_TEST_RUN(test_trigger_spec_key);
    EVR_TEST_RUN(test_trigger_broker);
    EVR_TEST_RUN(test_trigger_local);
    EVR_TEST_RUN(test_trigger_queries);
    EVR_TEST_RUN(test_trigger_files_cancelled);
    EVR_TEST_RUN(test_trigger_files_no_job_dir);
    EVR_TEST_END();
}
