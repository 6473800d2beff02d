/*  test_config: layered settings: defaults < file < environment < flags,
    the source of each value, errors that name file, line, column and key,
    numbers, booleans, durations and choices checked, endpoints derived
    for local mode, the `retention:` mapping. */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_config.h"
#include "evr_test.h"

static const evr_config_key_t s_keys[] = {
    { "state_dir", NULL, "state" },
    { "capacity", "2", "jobs at once" },
    { "labels", "", "labels" },
    { "local", "false", "local mode" },
    { "client_endpoint", NULL, "clients" },
    { "runner_endpoint", NULL, "runners" },
    { "events_endpoint", NULL, "events" },
};

static char *
s_file(const char *text)
{
    char *path = evr_asprintf("/tmp/evr-test-config-%d.yml", (int) getpid());
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

static void
test_layers(void)
{
    char *path = s_file("capacity: 4\nlabels: gpu,linux\nlease_ms: 9\n");
    setenv("EVRUN_LABELS", "env-label", 1);
    unsetenv("EVRUN_CAPACITY");
    evr_config_t *c = evr_config_new(s_keys, EVR_ARRAY_LEN(s_keys));
    const char *flags[] = { "state_dir", "/tmp/st" };
    evr_err_t err;
    CHECK(evr_config_layer(c, path, flags, 1, &err) == EVR_OK);
    CHECK_STR(evr_config_get(c, "capacity"), "4");          /* file over default */
    CHECK_STR(evr_config_get(c, "labels"), "env-label");    /* env over file */
    CHECK_STR(evr_config_get(c, "state_dir"), "/tmp/st");   /* flag */
    uint64_t cap;
    CHECK(evr_config_uint(c, "capacity", 1, 10, &cap, &err) == EVR_OK && cap == 4);
    CHECK(evr_config_uint(c, "capacity", 5, 10, &cap, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "capacity = \"4\" (from file /tmp/evr-test-config-");
    CHECK_CONTAINS(err.msg, ".yml:1:11): expected a whole number from 5 to 10");   /* its place */
    evr_config_set(c, "local", "maybe", "flag");
    bool b;
    CHECK(evr_config_bool(c, "local", &b, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "expected true or false");
    const char *const modes[] = { "alpha", "beta" };
    size_t idx = 9;
    evr_config_set(c, "local", "beta", "flag");
    CHECK(evr_config_choice(c, "local", modes, 2, &idx, &err) == EVR_OK && idx == 1);
    evr_config_set(c, "local", "Beta", "flag");
    CHECK(evr_config_choice(c, "local", modes, 2, &idx, &err) == EVR_ERR_CONFIG && idx == 1);
    CHECK_STR(err.msg, "local = \"Beta\" (from flag): expected one of alpha, beta");
    /* a copy: the same values and sources, apart from then on */
    evr_config_t *d = evr_config_dup(c);
    CHECK_STR(evr_config_get(d, "labels"), "env-label");
    CHECK_STR(evr_config_source(d, "labels"), "env");
    CHECK_STR(evr_config_source(d, "capacity"), "file");
    CHECK(evr_config_get(d, "client_endpoint") == NULL);
    evr_config_endpoints(d, false);
    CHECK_STR(evr_config_get(d, "client_endpoint"), "tcp://127.0.0.1:7700");
    CHECK_STR(evr_config_source(d, "client_endpoint"), "derived");
    evr_config_destroy(&d);
    evr_config_endpoints(c, true);
    CHECK_STR(evr_config_get(c, "client_endpoint"), "ipc:///tmp/st/bus/clients");
    CHECK_STR(evr_config_get(c, "events_endpoint"), "ipc:///tmp/st/bus/events");
    FILE *out = tmpfile();
    evr_config_print(c, out);
    char buf[2048] = "";
    rewind(out);
    size_t n = fread(buf, 1, sizeof buf - 1, out);
    buf[n] = '\0';
    fclose(out);
    CHECK_CONTAINS(buf, "labels: env-label");
    CHECK_CONTAINS(buf, "(env)");
    CHECK_CONTAINS(buf, "(derived)");
    evr_config_destroy(&c);
    unsetenv("EVRUN_LABELS");
    unlink(path);
    free(path);
}

static void
test_bad_files(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        { "capacity: 2\nbogus: 1\n", ":2:1: bogus: unknown setting" },
        { "labels: [a, b]\n", ":1:9: labels: expected a single value" },
        { "- a\n- b\n", ":1:1: expected a mapping" },
        { "capacity: [\n", ":2:1:" },
        { "capacty: 2\n", ":1:1: capacty: unknown setting; did you mean capacity?" },
        { "hooks:\n  - {phase: CLEANUP, run: echo '{\"a\": 1}'}\n",
          ":3:1: YAML syntax error: found unexpected end of stream (while scanning a quoted "
          "scalar at line 2): a quote or bracket opened" },
        /* bytes that are not UTF-8 were said at 1:1 (libyaml gives their
           offset, not a line), and after the one to fix */
        { "capacity: 2\n# caf\xe9 au lait\n", ":2:6: YAML syntax error: invalid trailing UTF-8 "
          "octet (byte 0xe9 starts a UTF-8 sequence" },
        { "labels: a\ncapacity: 1: 2\n", ":2:12: YAML syntax error: mapping values are not allowed "
          "in this context: a key indented deeper than the one above it, or \": \" inside a value" },
        { "hook:\n  - {phase: CLEANUP, run: x}\n", ":1:1: hook: unknown setting; did you mean hooks?" },
        /* checked as a pipeline file is: a tag (libyaml's loader drops it
           from the value), nesting */
        { "capacity: !int 2\n", ":1:11: the YAML tag \"!int\": YAML tags mean nothing to evrun" },
        { "hooks:\n  - {phase: CLEANUP, run: ! grep -q x f}\n",
          ":2:27: a \"!\" that starts a YAML tag: YAML tags mean nothing to evrun" },
        { "labels: [[[[[[[[[[[[[[[[[[[[a]]]]]]]]]]]]]]]]]]]]\n", "nested deeper than 16 levels" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(cases); i++) {
        char *path = s_file(cases[i].text);
        evr_config_t *c = evr_config_new(s_keys, EVR_ARRAY_LEN(s_keys));
        evr_err_t err;
        CHECK(evr_config_load_file(c, path, evr_config_known, &err) == EVR_ERR_CONFIG);
        CHECK_CONTAINS(err.msg, cases[i].want);
        evr_config_destroy(&c);
        unlink(path);
        free(path);
    }
    /* hooks: a list, read by the runner's own module, let through */
    char *path = s_file("capacity: 3\nhooks:\n  - { phase: CLEANUP, run: x }\n");
    evr_config_t *h = evr_config_new(s_keys, EVR_ARRAY_LEN(s_keys));
    evr_err_t herr;
    CHECK(evr_config_load_file(h, path, evr_config_known, &herr) == EVR_OK);
    evr_config_destroy(&h);
    unlink(path);
    free(path);
    /* bounded as a pipeline file is: 1 MiB */
    char *big = evr_malloc(EVR_CONFIG_FILE_MAX + 2);
    memset(big, '#', EVR_CONFIG_FILE_MAX + 1);
    big[EVR_CONFIG_FILE_MAX + 1] = '\0';
    path = s_file(big);
    free(big);
    h = evr_config_new(s_keys, EVR_ARRAY_LEN(s_keys));
    CHECK(evr_config_load_file(h, path, evr_config_known, &herr) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(herr.msg, ".yml: larger than 1048576 bytes (1 MiB), the limit for a settings "
                   "file");
    evr_config_destroy(&h);
    unlink(path);
    free(path);
    evr_config_t *c = evr_config_new(s_keys, EVR_ARRAY_LEN(s_keys));
    evr_err_t err;
    CHECK(evr_config_load_file(c, "/nonexistent/evrun.yml", NULL, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "/nonexistent/evrun.yml: No such file");
    evr_config_destroy(&c);
}

/*  `retention:` as a mapping: its keys are the settings retention_KEY;
    durations checked. */
static void
test_retention_group(void)
{
    static const evr_config_key_t keys[] = {
        { "retention_max_age", "30d", "age" },
        { "retention_keep_per_pipeline", "0", "count" },
    };
    char *path = s_file("retention:\n  max_age: 12h\n  keep_per_pipeline: 3\n");
    evr_config_t *c = evr_config_new(keys, EVR_ARRAY_LEN(keys));
    evr_err_t err;
    CHECK(evr_config_load_file(c, path, evr_config_known, &err) == EVR_OK);
    CHECK_STR(evr_config_get(c, "retention_keep_per_pipeline"), "3");
    uint64_t ms = 0;
    CHECK(evr_config_duration(c, "retention_max_age", 0, 86400000ull * 365, &ms, &err) == EVR_OK
          && ms == 12ull * 3600000);
    evr_config_set(c, "retention_max_age", "2 weeks", "flag");
    CHECK(evr_config_duration(c, "retention_max_age", 0, 86400000ull, &ms, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "retention_max_age = \"2 weeks\" (from flag): expected a duration");
    evr_config_destroy(&c);
    unlink(path);
    free(path);
    static const struct {
        const char *text, *want;
    } bad[] = {
        { "retention:\n  max_age: 1d\n  keep: 3\n", ":3:3: retention.keep: unknown setting" },
        { "retention:\n  max_age: [1d]\n", ":2:12: retention_max_age: expected a single value" },
        { "labels:\n  a: 1\n", ":2:3: labels: expected a single value" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        path = s_file(bad[i].text);
        c = evr_config_new(keys, EVR_ARRAY_LEN(keys));
        CHECK(evr_config_load_file(c, path, evr_config_known, &err) == EVR_ERR_CONFIG);
        CHECK_CONTAINS(err.msg, bad[i].want);
        evr_config_destroy(&c);
        unlink(path);
        free(path);
    }
}

/*  Every error of a settings file at once, as a binary that runs all its
    getters before giving up reports them: unknown keys (with did you
    mean, in retention: too) and bad values; a value from the
    environment names its variable. */
static void
test_all_at_once(void)
{
    static const evr_config_key_t keys[] = {
        { "lease_ms", "30000", "lease" },
        { "log_level", "info", "level" },
        { "capacity", "2", "jobs" },
        { "retention_max_age", "30d", "age" },
    };
    char *path = s_file("leas_ms: 10\nlog_level: loud\ncapacity: two\n"
                        "retention: {max_agee: 1d}\n");
    unsetenv("EVRUN_LEASE_MS");
    evr_config_t *c = evr_config_new(keys, EVR_ARRAY_LEN(keys));
    evr_err_t err;
    CHECK(evr_config_layer(c, path, NULL, 0, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, ":1:1: leas_ms: unknown setting; did you mean lease_ms?");
    static const char *const levels[] = { "error", "warn", "info", "debug" };
    size_t level;
    uint64_t cap, lease;
    CHECK(evr_config_choice(c, "log_level", levels, 4, &level, &err) == EVR_ERR_CONFIG);
    CHECK(evr_config_uint(c, "capacity", 1, 1024, &cap, &err) == EVR_ERR_CONFIG);
    CHECK(evr_config_uint(c, "lease_ms", 100, 86400000, &lease, &err) == EVR_OK);
    FILE *out = tmpfile();
    CHECK(evr_config_report(c, "prog", out));
    char buf[4096] = "";
    rewind(out);
    buf[fread(buf, 1, sizeof buf - 1, out)] = '\0';
    fclose(out);
    CHECK_CONTAINS(buf, "prog: ");
    CHECK_CONTAINS(buf, ":1:1: leas_ms: unknown setting; did you mean lease_ms?\n");
    CHECK_CONTAINS(buf, ":4:13: retention.max_agee: unknown setting; did you mean max_age?\n");
    CHECK_CONTAINS(buf, "prog: log_level = \"loud\" (from file /tmp/evr-test-config-");
    CHECK_CONTAINS(buf, ".yml:2:12): expected one of error, warn, info, debug\n");
    CHECK_CONTAINS(buf, "prog: capacity = \"two\" (from file /tmp/evr-test-config-");
    CHECK_CONTAINS(buf, ".yml:3:11): expected a whole number from 1 to 1024\n");
    evr_config_destroy(&c);
    unlink(path);
    free(path);
    setenv("EVRUN_LEASE_MS", "abc", 1);
    c = evr_config_new(keys, EVR_ARRAY_LEN(keys));
    evr_config_load_env(c);
    CHECK(evr_config_uint(c, "lease_ms", 100, 86400000, &lease, &err) == EVR_ERR_CONFIG);
    CHECK_STR(err.msg, "lease_ms = \"abc\" (from env EVRUN_LEASE_MS): expected a whole number "
                       "from 100 to 86400000");
    evr_config_destroy(&c);
    unsetenv("EVRUN_LEASE_MS");
}

/*  A local broker is up when its client socket is there, or while a
    live evrun-broker (the pid in STATE/broker/evrun.lock) has made
    STATE/bus and not bound the socket yet (a restart after a kill, the
    killed one's socket replaced): not for a pid of another program. */
static void
test_local_up(void)
{
    char dir[] = "/tmp/evr-test-config-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cmd[200];
    CHECK(!evr_config_local_up(dir));
    snprintf(cmd, sizeof cmd, "mkdir -p %s/bus %s/broker", dir, dir);
    CHECK(system(cmd) == 0);
    char lock[100];
    snprintf(lock, sizeof lock, "%s/broker/evrun.lock", dir);
    FILE *f = fopen(lock, "w");
    fprintf(f, "%ld\n", (long) getpid());   /* alive, but not a broker */
    fclose(f);
    CHECK(!evr_config_local_up(dir));
    int go[2];
    CHECK(pipe(go) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_NAME, "evrun-broker");
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(go[0]);
    f = fopen(lock, "w");
    fprintf(f, "%ld\n", (long) pid);
    fclose(f);
    for (int i = 0; i < 200 && !evr_config_local_up(dir); i++)   /* its name set */
        usleep(5000);
    CHECK(evr_config_local_up(dir));
    snprintf(cmd, sizeof cmd, "rmdir %s/bus", dir);
    CHECK(system(cmd) == 0);
    CHECK(!evr_config_local_up(dir));   /* no bus: not a local broker */
    close(go[1]);
    waitpid(pid, NULL, 0);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/bus", dir);
    CHECK(system(cmd) == 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/bus/clients", dir);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(ls >= 0 && bind(ls, (struct sockaddr *) &sa, sizeof sa) == 0 && listen(ls, 4) == 0);
    CHECK(evr_config_local_up(dir));   /* a socket someone listens on, alone */
    close(ls);
    CHECK(!evr_config_local_up(dir));  /* the socket left, nothing listening: no broker */
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/*  The first empty item of a comma-separated list, from 1; 0: none. */
static void
test_list_empty(void)
{
    CHECK(evr_config_list_empty(NULL) == 0);
    CHECK(evr_config_list_empty("") == 0);
    CHECK(evr_config_list_empty("  ") == 0);
    CHECK(evr_config_list_empty("a") == 0);
    CHECK(evr_config_list_empty("a,b, c") == 0);
    CHECK(evr_config_list_empty("a b") == 0);
    CHECK(evr_config_list_empty("a,,b") == 2);
    CHECK(evr_config_list_empty("a, ,b") == 2);
    CHECK(evr_config_list_empty(",a") == 1);
    CHECK(evr_config_list_empty("a,b,") == 3);
    CHECK(evr_config_list_empty("a,b, ") == 3);
    CHECK(evr_config_list_empty(",") == 1);
}

int
main(void)
{
    EVR_TEST_RUN(test_layers);
    EVR_TEST_RUN(test_bad_files);
    EVR_TEST_RUN(test_retention_group);
    EVR_TEST_RUN(test_all_at_once);
    EVR_TEST_RUN(test_local_up);
    EVR_TEST_RUN(test_list_empty);
    EVR_TEST_END();
}
