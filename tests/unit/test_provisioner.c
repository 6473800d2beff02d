/*  test_provisioner: evrun-provisioner's model (provisioner/evr_prov.h):
    the config file's errors (file:line:col), label matching and the
    reasons a provider did not match, the start rate's token bucket, the
    pause after 3 failed starts, and the command templates. */
#include "evr_prov.h"
#include "evr_prov_podman.h"
#include "evr_prov_run.h"
#include "evr_test.h"
#include "evr_yaml.h"

/*  Parses text; returns the errors joined by newlines ("" when none). */
static char *
s_parse(const char *text, evr_prov_config_t *cfg)
{
    evr_diag_t *diag = evr_diag_new("p.yml");
    evr_prov_config_parse(text, strlen(text), "p.yml", cfg, diag);
    char *all = evr_strdup("");
    for (size_t i = 0; i < evr_diag_count(diag) && i < EVR_DIAG_MAX; i++) {
        char *n = evr_asprintf("%s%s\n", all, evr_diag_get(diag, i));
        free(all);
        all = n;
    }
    evr_diag_destroy(&diag);
    return all;
}

static void
test_config_good(void)
{
    evr_prov_config_t cfg;
    char *e = s_parse("max_runners: 5\nstart_rate: 30/min\nregister_timeout: 2m\n"
                      "providers:\n"
                      "  - { name: local, labels: [linux, small], kind: process, max: 4,\n"
                      "      executors: [process] }\n"
                      "  - name: nomad\n    labels: [big]\n    kind: command\n"
                      "    start: nomad job dispatch {job}\n    stop: nomad job stop {handle}\n",
                      &cfg);
    CHECK_STR(e, "");
    CHECK(cfg.max_runners == 5);
    CHECK(cfg.rate > 0.49 && cfg.rate < 0.51);
    CHECK(cfg.burst == 30);
    CHECK(cfg.register_timeout_s == 120);
    CHECK(cfg.nproviders == 2);
    CHECK_STR(cfg.providers[0].match.v[2], "executor:process");
    CHECK(cfg.providers[1].kind == EVR_PROV_COMMAND);
    CHECK_STR(cfg.providers[1].match.v[1], "executor:podman");   /* the default */
    CHECK(cfg.providers[1].max == 4);
    free(e);
    evr_prov_config_free(&cfg);
}

static void
test_config_bad(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        { "providers: [\n", "p.yml:2:1: YAML syntax error: did not find expected node content" },
        { "max_runners: 0\nproviders: [ { name: a } ]\n",
          "p.yml:1:14: max_runners: expected a whole number from 1 to 1024, got \"0\"" },
        { "start_rate: fast\nproviders: [ { name: a } ]\n",
          "p.yml:1:13: start_rate: expected starts per second or per minute" },
        { "start_rate: 5/h\nproviders: [ { name: a } ]\n", "start_rate: expected" },
        { "register_timeout: -1\nproviders: [ { name: a } ]\n",
          "p.yml:1:19: register_timeout: expected seconds" },
        { "colour: red\nproviders: [ { name: a } ]\n",
          "p.yml:1:1: colour: unknown setting \"colour\"" },
        { "max_runners: 3\n", "p.yml:1:1: providers: missing" },
        { "providers: {}\n", "providers: expected a list of providers" },
        { "providers: [ { labels: [a] } ]\n", "providers[0].name: missing" },
        { "providers: [ { name: a }, { name: a } ]\n",
          "p.yml:1:35: providers[1].name: provider \"a\" named twice (as providers[0])" },
        { "providers: [ { name: a, kind: docker } ]\n",
          "p.yml:1:31: providers[0].kind: expected process, podman or command, got \"docker\"" },
        { "providers: [ { name: a, kind: podman, network: wifi } ]\n",
          "p.yml:1:48: providers[0].network: expected host (the default), bridge or none" },
        { "providers: [ { name: a, kind: podman, image: \"a b\" } ]\n",
          "providers[0].image: expected an image name" },
        /* the grammar a pipeline's image is checked against (evr_spec_image_problem) */
        { "providers: [ { name: a, kind: podman, image: \"Reg/runner:\" } ]\n",
          "p.yml:1:46: providers[0].image: expected an image name ([HOST[:PORT]/]NAME[:TAG]"
          "[@DIGEST], e.g. localhost/evrun-runner:latest), got \"Reg/runner:\": an empty tag" },
        { "providers: [ { name: a, kind: podman, image: \"reg/Runner\" } ]\n",
          "got \"reg/Runner\": \"Runner\" is not a name component" },
        { "providers: [ { name: a, kind: podman, volumes: [/x] } ]\n",
          "p.yml:1:49: providers[0].volumes[0]: \"/x\": expected SOURCE:DEST[:ro]" },
        { "providers: [ { name: a, kind: podman, volumes: [\"v:/d:rx\"] } ]\n",
          "expected SOURCE:DEST[:ro]" },
        { "providers: [ { name: a, kind: podman, env: [A] } ]\n",
          "providers[0].env: expected a map of NAME: value" },
        { "providers: [ { name: a, kind: podman, env: { 1A: x } } ]\n",
          "p.yml:1:46: providers[0].env.1A: \"1A\": expected at most 64 NAME: value" },
        { "providers: [ { name: a, kind: process, image: x } ]\n",
          "p.yml:1:40: providers[0].image: image, network, volumes and env go with kind: podman only" },
        { "providers: [ { name: a, kind: command, start: x, args: [y] } ]\n",
          "p.yml:1:50: providers[0].args: args go with kind: process or podman only" },
        { "podman_url: \"\"\nproviders: [ { name: a } ]\n", "podman_url: expected 1 to 1024 bytes" },
        { "podman_url: tcp://h:1\nproviders: [ { name: a } ]\n",
          "p.yml:1:13: podman_url: expected unix:///PATH" },
        { "providers: [ { name: a, kind: command } ]\n", "providers[0].start: missing" },
        { "providers: [ { name: a, start: x } ]\n",
          "p.yml:1:25: providers[0].start: start and stop go with kind: command only" },
        { "providers: [ { name: a, labels: [\"a b\"] } ]\n", "expected a name" },
        { "providers: [ { name: a, labels: [executor:podman] } ]\n",
          "p.yml:1:34: providers[0].labels[0]: label \"executor:podman\": executor labels come from "
          "executors" },
        { "providers: [ { name: a, executors: [vm] } ]\n",
          "p.yml:1:36: providers[0].executors: expected podman or process" },
        { "providers: [ { name: a, max: 5000 } ]\n", "from 1 to 1024" },
        /* one name alone, as a pipeline's labels: the list to write */
        { "providers: [ { name: a, labels: linux } ]\n",
          "p.yml:1:33: providers[0].labels: expected a list, got a scalar: write [linux]" },
        { "providers: [ { name: a, executors: process } ]\n",
          "p.yml:1:36: providers[0].executors: expected a list, got a scalar: write [process]" },
        /* near-misses */
        { "providers: [ { name: a, kind: proces } ]\n",
          "p.yml:1:31: providers[0].kind: expected process, podman or command, got \"proces\"; "
          "did you mean process?" },
        { "providers: [ { name: a, lables: [x] } ]\n",
          "providers[0].lables: unknown key \"lables\"; did you mean labels?" },
        { "max_runner: 3\nproviders: [ { name: a } ]\n",
          "p.yml:1:1: max_runner: unknown setting \"max_runner\"; did you mean max_runners?" },
        { "providers: [ { name: a, max: [1] } ]\n", "expected a single value" },
        { "providers: [ 7 ]\n", "providers[0]: expected a map" },
        { "providers: [ { name: a, kind: command, start: \"x {jobz}\" } ]\n",
          "p.yml:1:47: providers[0].start: \"{jobz}\": expected {job}, {labels}, {runner_id} or "
          "{broker} ({handle} goes in stop only)" },
        { "providers: [ { name: a, kind: command, start: x, stop: \"y {hndl}\" } ]\n",
          "providers[0].stop: \"{hndl}\": expected {runner_id}, {broker} or {handle} ({job} and "
          "{labels} go in start only)" },
        /* a stop has no job nor labels: {job} was put in as '' in silence */
        { "providers: [ { name: a, kind: command, start: x, stop: \"nomad job stop {job}\" } ]\n",
          "p.yml:1:56: providers[0].stop: \"{job}\": expected {runner_id}, {broker} or {handle} "
          "({job} and {labels} go in start only)" },
        { "providers: [ { name: a, kind: command, start: x, stop: \"k {labels}\" } ]\n",
          "providers[0].stop: \"{labels}\": expected {runner_id}, {broker} or {handle}" },
        { "- a\n", "p.yml:1:1: expected a map of settings" },
        /* an empty file, or comments only: said where */
        { "", "p.yml:1:1: empty file: expected a map of settings" },
        { "# nothing\n", "p.yml:1:1: empty file: expected a map of settings" },
        /* a merge key: pipeline files read it, a providers file not: said
           so, not 'unknown key' as if a typo */
        { "providers:\n  - &p { name: a, labels: [x] }\n  - { <<: *p, name: b }\n",
          "p.yml:3:7: providers[1].<<: a merge key (<<: *anchor) is not read in a providers "
          "file: write the keys out" },
        { "d: &d { max_runners: 2 }\n<<: *d\nproviders: [ { name: a } ]\n",
          "p.yml:2:1: <<: a merge key (<<: *anchor) is not read in a providers file" },
        /* duplicate keys, as in pipeline files */
        { "max_runners: 2\nmax_runners: 3\nproviders: [ { name: a } ]\n",
          "p.yml:2:1: max_runners: duplicate key" },
        { "providers: [ { name: a } ]\nproviders: [ { name: b } ]\n",
          "p.yml:2:1: providers: duplicate key" },
        { "providers:\n  - name: a\n    labels: [x]\n    labels: [y]\n",
          "p.yml:4:5: providers[0].labels: duplicate key" },
        { "providers: [ { name: a, kind: podman, env: { A: x, A: y } } ]\n",
          "p.yml:1:52: providers[0].env.A: duplicate key" },
        /* a number that would overflow once multiplied: refused, not wrapped */
        { "register_timeout: 307445734561825861m\nproviders: [ { name: a } ]\n",
          "p.yml:1:19: register_timeout: expected seconds (N, Ns or Nm), from 1 s to 24 h" },
        /* a bad item of a list is said at the item */
        { "providers:\n  - name: a\n    kind: podman\n    volumes:\n      - /a:/a\n"
          "      - /b:/b:ro\n      - nope\n",
          "p.yml:7:9: providers[0].volumes[2]: \"nope\": expected SOURCE:DEST[:ro]" },
        /* args that set what the provisioner sets itself */
        { "providers: [ { name: a, kind: process, args: [--heartbeat-ms, \"5\", --broker, x] } ]\n",
          "p.yml:1:68: providers[0].args[2]: \"--broker\": the provisioner sets --broker itself" },
        { "providers: [ { name: a, kind: process, args: [\"--state=/x\"] } ]\n",
          "providers[0].args[0]: \"--state=/x\": the provisioner sets --state-dir itself" },
        { "providers: [ { name: a, kind: podman, args: [--podman-url, x] } ]\n",
          "providers[0].args[0]: \"--podman-url\": the provisioner sets --podman-url itself" },
        /* labels and executors are sets: a repeat is refused, naming the first */
        { "providers: [ { name: a, labels: [gpu, x, gpu] } ]\n",
          "p.yml:1:42: providers[0].labels[2]: \"gpu\" repeats providers[0].labels[0]" },
        { "providers: [ { name: a, executors: [process, process] } ]\n",
          "providers[0].executors[1]: \"process\" repeats providers[0].executors[0]" },
        /* a label no job can have (a job's labels take no colon) */
        { "providers: [ { name: a, labels: [gpu:a100] } ]\n",
          "p.yml:1:34: providers[0].labels[0]: expected a name of [A-Za-z0-9_.-] (1-64 bytes, "
          "as a job's labels), got \"gpu:a100\"" },
        /* more labels than a runner says hello with: its every start failed */
        { "providers: [ { name: a, executors: [process, podman], labels: [l0, l1, l2, l3, l4, "
          "l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, "
          "l23, l24, l25, l26, l27, l28, l29, l30, l31] } ]\n",
          "p.yml:1:63: providers[0].labels: 32 labels, and 2 executor labels (one per executor), "
          "come to 34: a runner has at most 32; drop 2" },
        /* no executor: it was podman's, the default, without a word */
        { "providers: [ { name: a, kind: process, executors: [] } ]\n",
          "p.yml:1:51: providers[0].executors: expected podman, process or both (an empty list; "
          "leave the key out for the default, [podman])" },
        /* a runner endpoint no runner could take: each start failed */
        { "runner_endpoint: foo\nproviders: [ { name: a } ]\n",
          "p.yml:1:18: runner_endpoint: foo: expected tcp://HOST:PORT or ipc://PATH" },
        { "runner_endpoint: \"tcp://h:99999\"\nproviders: [ { name: a } ]\n",
          "runner_endpoint: tcp://h:99999: expected tcp://HOST:PORT, PORT from 1 to 65535" },
        { "runner_endpoint: inproc://b\nproviders: [ { name: a } ]\n",
          "runner_endpoint: inproc://b: expected tcp://HOST:PORT or ipc://PATH" },
        /* a second document: its settings were dropped in silence */
        { "providers: [ { name: a } ]\n---\nmax_runners: 0\n",
          "p.yml:3:1: a second YAML document: a providers file holds one mapping" },
        { "providers: &a [ *a ]\n", "" },   /* a recursive alias: libyaml's own error, or ours */
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(cases); i++) {
        evr_prov_config_t cfg;
        char *e = s_parse(cases[i].text, &cfg);
        CHECK(*e != '\0');
        CHECK_CONTAINS(e, cases[i].want);
        CHECK(cfg.providers == NULL);   /* freed on error */
        free(e);
    }
}

/*  Every bad item is said, each at its place (not only the first of a
    field); YAML nested past 16 levels is refused at once, at its place. */
static void
test_config_all_errors(void)
{
    evr_prov_config_t cfg;
    char *e = s_parse("providers:\n  - name: a\n    labels: [ok, \"b c\", gpu:x, \"d/e\"]\n", &cfg);
    CHECK_CONTAINS(e, "p.yml:3:18: providers[0].labels[1]: expected a name");
    CHECK_CONTAINS(e, "p.yml:3:25: providers[0].labels[2]: expected a name");
    CHECK_CONTAINS(e, "p.yml:3:32: providers[0].labels[3]: expected a name");
    free(e);
    e = s_parse("providers: [ { name: a, kind: process, args: [--id, x, --labels, y] } ]\n", &cfg);
    CHECK_CONTAINS(e, "providers[0].args[0]: \"--id\": the provisioner sets --id itself");
    CHECK_CONTAINS(e, "providers[0].args[2]: \"--labels\": the provisioner sets --labels itself");
    free(e);
    e = s_parse("providers: [ { name: a, kind: process, args: [--once-wait, \"60\", --stop-timeout,"
                " \"5\", --secrets-dir, /s] } ]\n", &cfg);
    CHECK_STR(e, "");   /* the runner's other options are the provider's to give */
    free(e);
    evr_prov_config_free(&cfg);
    size_t depth = 40000;
    char *deep = evr_malloc(depth + 32);
    memcpy(deep, "providers: ", 11);
    memset(deep + 11, '[', depth);
    strcpy(deep + 11 + depth, "\n");
    uint64_t t0 = evr_mono_ns(), w0 = evr_yaml_work();
    e = s_parse(deep, &cfg);
    uint64_t work = evr_yaml_work() - w0;
    fprintf(stderr, "  40000 levels refused after %llu YAML events in %.3f s\n",
            (unsigned long long) work, (double) (evr_mono_ns() - t0) / 1e9);
    CHECK_CONTAINS(e, "p.yml:1:27: nested deeper than 16 levels");
    /* at once: the precheck stops at the 17th level (the stream's and
       document's events, the key, 17 starts: 20), no node graph built
       first and no event past it read; the time is said, not asserted
       (tests assert no speed) */
    CHECK(work > 0 && work <= EVR_YAML_MAX_DEPTH + 4);
    CHECK(cfg.providers == NULL);
    free(e);
    free(deep);
}

/*  kind: podman: its defaults, and the create body of its container. */
static void
test_config_podman(void)
{
    evr_prov_config_t cfg;
    char *e = s_parse("podman_url: unix:///run/p.sock\nproviders:\n"
                      "  - { name: pods, kind: podman, labels: [pod] }\n"
                      "  - name: own\n    kind: podman\n    image: example.org/r:1\n"
                      "    network: none\n    volumes: [\"/srv/x:/x:ro\", \"cache:/c\"]\n"
                      "    env: { A: \"1\", B_2: two }\n    args: [--grace, \"2\"]\n", &cfg);
    CHECK_STR(e, "");
    free(e);
    CHECK_STR(cfg.podman_url, "unix:///run/p.sock");
    CHECK(cfg.providers[0].kind == EVR_PROV_PODMAN);
    CHECK_STR(cfg.providers[0].image, "localhost/evrun-runner:latest");
    CHECK_STR(cfg.providers[0].network, "host");
    CHECK_STR(cfg.providers[1].image, "example.org/r:1");
    CHECK(cfg.providers[1].env.n == 2);
    CHECK_STR(cfg.providers[1].env.v[1], "B_2=two");
    evr_strlist_t args = { 0 }, binds = { 0 };
    evr_strlist_push(&args, "--once");
    evr_strlist_push(&binds, "/run/p.sock");
    evr_prov_podman_spec_t spec = { .name = "evrun-runner-own-1", .image = "example.org/r:1",
                                    .args = &args, .env = &cfg.providers[1].env,
                                    .binds = &binds, .volumes = &cfg.providers[1].volumes,
                                    .network = "none", .log = "/d/logs/own-1.log",
                                    .provisioner = "/d", .runner = "own-1" };
    char *body = evr_prov_podman_body(&spec);
    CHECK_CONTAINS(body, "\"command\":[\"--once\"]");
    CHECK_CONTAINS(body, "\"env\":{\"A\":\"1\",\"B_2\":\"two\"}");
    CHECK_CONTAINS(body, "{\"type\":\"bind\",\"source\":\"/run/p.sock\",\"destination\":"
                   "\"/run/p.sock\",\"options\":[\"rbind\"]}");
    CHECK_CONTAINS(body, "{\"type\":\"bind\",\"source\":\"/srv/x\",\"destination\":\"/x\","
                   "\"options\":[\"ro\",\"rbind\"]}");
    CHECK_CONTAINS(body, "\"volumes\":[{\"Name\":\"cache\",\"Dest\":\"/c\",\"Options\":[]}]");
    CHECK_CONTAINS(body, "\"remove\":true");
    CHECK_CONTAINS(body, "\"netns\":{\"nsmode\":\"none\"}");
    CHECK_CONTAINS(body, "\"log_configuration\":{\"driver\":\"k8s-file\",\"path\":"
                   "\"/d/logs/own-1.log\"}");
    CHECK_CONTAINS(body, "\"evrun.runner\":\"own-1\"");
    free(body);
    evr_strlist_free(&args);
    evr_strlist_free(&binds);
    evr_prov_config_free(&cfg);
}

/*  A podman start refused before podman is asked: a state directory too
    long for the control sockets, a relative ipc:// endpoint; a URL that
    is not a unix socket. */
static void
test_podman_refused(void)
{
    evr_err_t err;
    CHECK(evr_prov_podman_new("tcp://127.0.0.1:1", &err) == NULL);
    CHECK_CONTAINS(err.msg, "expected unix:///PATH");
    evr_prov_podman_t *pm = evr_prov_podman_new("unix:///nonexistent/podman.sock", &err);
    CHECK(pm != NULL);
    CHECK_STR(evr_prov_podman_socket(pm), "/nonexistent/podman.sock");
    evr_prov_config_t cfg;
    char *e = s_parse("providers: [ { name: pods, kind: podman } ]\n", &cfg);
    CHECK_STR(e, "");
    free(e);
    char dir[80];
    memset(dir, 'd', sizeof dir - 1);
    dir[0] = '/';
    dir[sizeof dir - 1] = '\0';
    CHECK(evr_prov_podman_start(pm, &cfg.providers[0], "pods-1", dir, "ipc:///b/runners", "",
                                "podman", &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "too long for the runner's control sockets under it (at most 73)");
    CHECK(evr_prov_podman_start(pm, &cfg.providers[0], "pods-1", "/d", "ipc://b/runners", "",
                                "podman", &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "needs an absolute ipc:// path");
    /* no service at the socket: the message names the socket, not curl's placeholder host */
    bool there = true, exited = false;
    CHECK(evr_prov_podman_state(pm, "evrun-runner-x", &there, &exited, &err) != EVR_OK);
    CHECK_CONTAINS(err.msg, "podman at unix:///nonexistent/podman.sock: ");
    evr_prov_config_free(&cfg);
    evr_prov_podman_destroy(&pm);
    CHECK(pm == NULL);
}

static evr_strlist_t
s_list(const char *a, const char *b, const char *c)
{
    evr_strlist_t l = { 0 };
    const char *v[] = { a, b, c };
    for (int i = 0; i < 3; i++)
        if (v[i])
            evr_strlist_push(&l, v[i]);
    return l;
}

static void
test_match(void)
{
    evr_prov_config_t cfg;
    char *e = s_parse("max_runners: 3\nproviders:\n"
                      "  - { name: small, labels: [linux], executors: [process], max: 1 }\n"
                      "  - { name: pods, labels: [linux, big] }\n"
                      "  - { name: big, labels: [linux, big], executors: [process], max: 2 }\n",
                      &cfg);
    CHECK_STR(e, "");
    free(e);
    char why[1024];
    evr_strlist_t need = s_list("linux", "executor:process", NULL);
    CHECK(evr_prov_match(&cfg, &need, 0, why, sizeof why) == 0);
    CHECK_STR(why, "");
    cfg.providers[0].running = 1;
    CHECK(evr_prov_match(&cfg, &need, 1, why, sizeof why) == 2);
    CHECK_STR(why, "small: full (max 1)\npods: labels lack executor:process");
    evr_strlist_t big = s_list("big", "executor:process", NULL);
    CHECK(evr_prov_match(&cfg, &big, 3, why, sizeof why) == -1);
    CHECK_CONTAINS(why, "max_runners 3 reached");
    evr_strlist_t none = s_list("gpu", NULL, NULL);
    CHECK(evr_prov_match(&cfg, &none, 0, why, sizeof why) == -1);
    CHECK_STR(why, "small: labels lack gpu\npods: labels lack gpu\nbig: labels lack gpu");
    evr_strlist_t empty = { 0 };
    CHECK(evr_prov_subset(&empty, &need));
    CHECK(!evr_prov_subset(&need, &empty));
    cfg.providers[2].paused = evr_strdup("3 failed starts in a row, the last: x");
    CHECK(evr_prov_match(&cfg, &big, 0, why, sizeof why) == -1);
    CHECK_CONTAINS(why, "big: paused: 3 failed starts in a row");
    char tiny[8];
    CHECK(evr_prov_match(&cfg, &none, 0, tiny, sizeof tiny) == -1);   /* cut, terminated */
    CHECK(strlen(tiny) < sizeof tiny);
    evr_strlist_free(&need);
    evr_strlist_free(&big);
    evr_strlist_free(&none);
    evr_prov_config_free(&cfg);
}

static void
test_rate(void)
{
    evr_prov_config_t cfg;
    char *e = s_parse("start_rate: 2/s\nproviders: [ { name: a } ]\n", &cfg);
    CHECK_STR(e, "");
    free(e);
    evr_prov_bucket_t b = { 0 };
    uint64_t t = 1000000000ull;
    CHECK(evr_prov_bucket_take(&b, &cfg, t));       /* a burst of 2 */
    CHECK(evr_prov_bucket_take(&b, &cfg, t));
    CHECK(!evr_prov_bucket_take(&b, &cfg, t));
    CHECK(!evr_prov_bucket_take(&b, &cfg, t + 400000000ull));   /* 0.8 token */
    CHECK(evr_prov_bucket_take(&b, &cfg, t + 500000000ull));    /* 1 */
    CHECK(evr_prov_bucket_take(&b, &cfg, t + 60000000000ull));  /* capped at the burst */
    CHECK(evr_prov_bucket_take(&b, &cfg, t + 60000000000ull));
    CHECK(!evr_prov_bucket_take(&b, &cfg, t + 60000000000ull));
    evr_prov_config_free(&cfg);
    e = s_parse("start_rate: 1/min\nproviders: [ { name: a } ]\n", &cfg);
    free(e);
    evr_prov_bucket_t m = { 0 };
    CHECK(evr_prov_bucket_take(&m, &cfg, t));
    CHECK(!evr_prov_bucket_take(&m, &cfg, t + 59000000000ull));
    CHECK(evr_prov_bucket_take(&m, &cfg, t + 60000000000ull));
    evr_prov_config_free(&cfg);
}

static void
test_pause(void)
{
    evr_prov_provider_t p = { .name = "a" };
    char buf[256];
    CHECK(!evr_prov_start_done(&p, false, "one"));
    CHECK(!evr_prov_start_done(&p, false, "two"));
    CHECK(!evr_prov_start_done(&p, true, NULL));    /* a success resets the count */
    CHECK(!evr_prov_start_done(&p, false, "one"));
    CHECK(!evr_prov_start_done(&p, false, "two"));
    CHECK_STR(evr_prov_state(&p, buf, sizeof buf), "active");
    CHECK(evr_prov_start_done(&p, false, "exit 7"));
    CHECK_STR(evr_prov_state(&p, buf, sizeof buf),
              "paused: 3 failed starts in a row, the last: exit 7");
    CHECK(!evr_prov_start_done(&p, false, "again"));   /* paused once */
    CHECK(p.failed == 6);
    free(p.paused);
    /* a last reason near 1024 bytes (a hello lacking 32 long labels, a
       podman error): the pause's reason is the provider report's, at
       most 1024 bytes, or the broker refused every report (the provider
       never listed paused) */
    evr_prov_provider_t q = { .name = "b" };
    char why[1024];
    memset(why, 'x', sizeof why - 1);
    why[sizeof why - 1] = '\0';
    for (int i = 0; i < 3; i++)
        evr_prov_start_done(&q, false, why);
    CHECK(q.paused != NULL);
    CHECK(strlen(q.paused) <= EVR_REASON_MAX);
    CHECK_CONTAINS(q.paused, "3 failed starts in a row, the last: xxx");
    CHECK_CONTAINS(q.paused, EVR_CUT_MARK);
    free(q.paused);
}

static void
test_expand(void)
{
    evr_err_t err;
    char *s = evr_prov_expand("run {job} --labels {labels} --id {runner_id} {broker}", "J1",
                              "a,b", "r-1", "ipc:///x y", NULL, &err);
    CHECK_STR(s, "run 'J1' --labels 'a,b' --id 'r-1' 'ipc:///x y'");
    free(s);
    s = evr_prov_expand("stop {handle}", NULL, NULL, "r", "b", "it's", &err);
    CHECK_STR(s, "stop 'it'\\''s'");
    free(s);
    CHECK(evr_prov_expand("start {handle}", "J", "", "r", "b", NULL, &err) == NULL);
    CHECK_CONTAINS(err.msg, "{handle} goes in stop only");
    CHECK(evr_prov_expand("start {jobs}", "J", "", "r", "b", NULL, &err) == NULL);
    CHECK_CONTAINS(err.msg, "\"{jobs}\": expected {job}");
    s = evr_prov_expand("a {job ${HOME} {a,b} { x; } {} ${job}", "J", "", "r", "b", NULL, &err);
    CHECK_STR(s, "a {job ${HOME} {a,b} { x; } {} ${job}");   /* the shell's braces stay */
    free(s);
}

/*  A dry pass: which job gets a free slot, which a provider, which none. */
static void
test_pass_dry(void)
{
    evr_prov_config_t cfg;
    char *e = s_parse("max_runners: 2\nproviders:\n"
                      "  - { name: a, labels: [x], executors: [process], max: 1 }\n"
                      "  - { name: b, labels: [x, y], executors: [process], max: 5 }\n", &cfg);
    CHECK_STR(e, "");
    free(e);
    evr_prov_t *pv = evr_prov_new(&cfg, "/nonexistent", "evrun-runner", "ipc:///x");
    evr_strlist_t lx = s_list("x", "executor:process", NULL);
    evr_strlist_t ly = s_list("y", "executor:process", NULL);
    evr_strlist_t lz = s_list("z", NULL, NULL);
    evr_strlist_t rl = s_list("x", "executor:process", NULL);
    evr_prov_runner_t runners[] = {
        { "r1", &rl, "idle", 1, 0 }, { "r2", &rl, "busy", 0, 1 }, { "r3", &rl, "lost", 1, 0 },
        { "r4", &rl, "stopped", 1, 0 },   /* no slot: it said goodbye (the broker says 0) */
    };
    evr_prov_job_t jobs[] = { { .id = "J1", .labels = &lx }, { .id = "J2", .labels = &lx },
                              { .id = "J3", .labels = &lx }, { .id = "J4", .labels = &ly },
                              { .id = "J5", .labels = &lz } };
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    evr_prov_pass(pv, jobs, 5, runners, 4, true, f, 1);
    fclose(f);
    CHECK_CONTAINS(out, "job J1 (labels x,executor:process): a free slot of runner r1\n");
    CHECK_CONTAINS(out, "job J2 (labels x,executor:process): provider a would start a process "
                        "runner (0/1 running)\n");
    CHECK_CONTAINS(out, "job J3 (labels x,executor:process): provider b would start a process "
                        "runner (0/5 running)\n  not a: full (max 1)\n");
    /* start_rate (the default 1/s): the first start goes at once, the
       second a second later; --dry-run said both would start now */
    CHECK(!strstr(out, "J2 (labels x,executor:process): provider a would start a process "
                       "runner (0/1 running)\n  not at once"));
    CHECK_CONTAINS(out, "(max 1)\n  not at once: start_rate allows 1 start at once, then one "
                        "each 1 s: this one in about 1 s\n");
    CHECK_CONTAINS(out, "job J4 (labels y,executor:process): no provider can start a runner "
                        "now\n  not a: labels lack y\n  max_runners 2 reached\n");
    CHECK_CONTAINS(out, "job J5 (labels z): no provider has these labels: none will start a "
                        "runner for it\n"
                        "  not a: labels lack z\n  not b: labels lack z\n");
    free(out);
    evr_strlist_free(&lx);
    evr_strlist_free(&ly);
    evr_strlist_free(&lz);
    evr_strlist_free(&rl);
    evr_prov_destroy(&pv);
}

/*  Demand entries count as waiting jobs, after the queued ones: each
    runner wanted gets a free slot or a provider; a job takes a slot
    first. */
static void
test_pass_demand(void)
{
    evr_prov_config_t cfg;
    char *e = s_parse("max_runners: 3\nproviders:\n"
                      "  - { name: a, labels: [x, gh], executors: [process], max: 2 }\n", &cfg);
    CHECK_STR(e, "");
    free(e);
    evr_prov_t *pv = evr_prov_new(&cfg, "/nonexistent", "evrun-runner", "ipc:///x");
    evr_strlist_t lx = s_list("x", "executor:process", NULL);
    evr_strlist_t lg = s_list("gh", NULL, NULL);
    evr_strlist_t lq = s_list("other", NULL, NULL);
    evr_strlist_t rl = s_list("x", "gh", "executor:process");
    evr_prov_runner_t runners[] = { { "r1", &rl, "idle", 1, 0 } };
    evr_prov_job_t jobs[] = {
        { .id = "J1", .labels = &lx },
        { .id = "D1", .labels = &lg, .demand = 3, .ttl = 250, .reason = "github workflow_job 7" },
        { .id = "D2", .labels = &lq, .demand = 1, .ttl = 9 },
    };
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    evr_prov_pass(pv, jobs, 3, runners, 1, true, f, 1);
    fclose(f);
    CHECK_CONTAINS(out, "job J1 (labels x,executor:process): a free slot of runner r1\n"
                        "demand D1: 3 runners wanted, 250 s left: github workflow_job 7\n"
                        "demand D1 runner 1 of 3 (250 s left) (labels gh): provider a would "
                        "start a process runner (0/2 running)\n"
                        "demand D1 runner 2 of 3 (250 s left) (labels gh): provider a would "
                        "start a process runner (1/2 running)\n"
                        "  not at once: start_rate allows 1 start at once, then one each 1 s: "
                        "this one in about 1 s\n"
                        "demand D1 runner 3 of 3 (250 s left) (labels gh): no provider can "
                        "start a runner now\n  not a: full (max 2)\n"
                        "demand D2: 1 runner wanted, 9 s left\n"
                        "demand D2 runner 1 of 1 (9 s left) (labels other): no provider has "
                        "these labels: none will start a runner for it\n  not a: labels lack other\n");
    free(out);
    evr_strlist_free(&lx);
    evr_strlist_free(&lg);
    evr_strlist_free(&lq);
    evr_strlist_free(&rl);
    evr_prov_destroy(&pv);
}

int
main(void)
{
    EVR_TEST_RUN(test_config_good);
    EVR_TEST_RUN(test_config_bad);
    EVR_TEST_RUN(test_config_all_errors);
    EVR_TEST_RUN(test_config_podman);
    EVR_TEST_RUN(test_podman_refused);
    EVR_TEST_RUN(test_match);
    EVR_TEST_RUN(test_rate);
    EVR_TEST_RUN(test_pause);
    EVR_TEST_RUN(test_expand);
    EVR_TEST_RUN(test_pass_dry);
    EVR_TEST_RUN(test_pass_demand);
    EVR_TEST_END();
}
