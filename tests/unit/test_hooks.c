/*  test_hooks.c: the runner's lifecycle hooks (runner/evr_hooks.h): the
    settings' `hooks:` list read, checked (file:line:col errors) and
    sorted by phase, priority and file order; answers read; a hook run on
    the loop (its stdin, stdout, stderr and exit; a timeout that kills its
    process group); its group recorded while it runs, and the groups a
    killed runner left swept (evr_hook_pg.h). */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_hook_pg.h"
#include "evr_hooks.h"
#include "evr_test.h"

static evr_rc_t
s_load(const char *text, evr_hooks_t **out, evr_err_t *err)
{
    return evr_hooks_load_buf("s.yml", text, strlen(text), out, err);
}

static void
test_sorted(void)
{
    evr_hooks_t *hs = NULL;
    evr_err_t err = { 0 };
    const char *text = "state_dir: /tmp/x\n"
                       "hooks:\n"
                       "  - { phase: CLEANUP, run: c }\n"
                       "  - { phase: PRE_EXECUTION, run: b, priority: 5, name: late }\n"
                       "  - { phase: PRE_EXECUTION, run: a, priority: -2, timeout: 7 }\n"
                       "  - { phase: PRE_EXECUTION, run: d, priority: 5, optional: true }\n"
                       "  - { phase: PRE_VALIDATION, run: e }\n";
    CHECK(s_load(text, &hs, &err) == EVR_OK);
    if (!hs)
        return;
    CHECK(hs->n == 5);
    const char *order[] = { "e", "a", "b", "d", "c" };
    for (size_t i = 0; i < 5 && i < hs->n; i++)
        CHECK_STR(hs->v[i].run, order[i]);
    CHECK_STR(hs->v[2].name, "late");
    CHECK_STR(hs->v[1].name, "PRE_EXECUTION-3");   /* PHASE-N: N its place in the file */
    CHECK(hs->v[1].timeout == 7);
    CHECK(hs->v[2].timeout == EVR_HOOK_TIMEOUT_DEFAULT);
    CHECK(hs->v[3].optional && !hs->v[2].optional);
    CHECK(hs->v[1].line == 5);
    evr_hooks_destroy(&hs);
    /* the bounds README gives: priority, timeout, name and run's length,
       optional's words */
    char text2[8192];
    char run[4097], name[65];
    memset(run, 'x', 4096);
    run[4096] = '\0';
    memset(name, 'n', 64);
    name[64] = '\0';
    snprintf(text2, sizeof text2, "hooks:\n"
             "  - { phase: CLEANUP, run: %s, priority: -1000000, timeout: 3600, optional: yes }\n"
             "  - { phase: CLEANUP, run: y, priority: 1000000, timeout: 1, optional: no, name: %s }\n",
             run, name);
    CHECK(s_load(text2, &hs, &err) == EVR_OK);
    if (hs && hs->n == 2) {
        CHECK(hs->v[0].priority == -1000000 && hs->v[0].timeout == 3600 && hs->v[0].optional);
        CHECK(strlen(hs->v[0].run) == 4096);
        CHECK(hs->v[1].priority == 1000000 && hs->v[1].timeout == 1 && !hs->v[1].optional);
        CHECK_STR(hs->v[1].name, name);
    }
    evr_hooks_destroy(&hs);
    /* no hooks key: none */
    CHECK(s_load("state_dir: /tmp/x\n", &hs, &err) == EVR_OK && hs == NULL);
}

static void
s_bad(const char *text, const char *want)
{
    evr_hooks_t *hs = NULL;
    evr_err_t err = { 0 };
    CHECK(s_load(text, &hs, &err) == EVR_ERR_CONFIG);
    CHECK(hs == NULL);
    CHECK_CONTAINS(err.msg, want);
}

static void
test_refused(void)
{
    s_bad("hooks:\n  - { phase: PRE_BUILD, run: x }\n", "s.yml:2:14: hooks[0].phase: unknown phase");
    s_bad("hooks:\n  - { phase: pre_execution, run: x }\n", "(upper case)");
    s_bad("hooks:\n  - { phase: CLEANUP }\n", "s.yml:2:5: hooks[0].run: missing");
    s_bad("hooks:\n  - { run: x }\n", "hooks[0].phase: missing");
    s_bad("hooks:\n  - { phase: CLEANUP, run: \"\" }\n", "hooks[0].run: expected a command");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, timeout: 0 }\n", "hooks[0].timeout: expected");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, timeout: 10s }\n", "hooks[0].timeout: expected");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, priority: high }\n", "hooks[0].priority");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, priority: 1000001 }\n",
          "hooks[0].priority: expected an integer from -1000000 to 1000000");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, timeout: 3601 }\n",
          "hooks[0].timeout: expected whole seconds from 1 to 3600");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, name: nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn }\n",
          "hooks[0].name: expected letters, digits, _ . - (at most 64");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, name: -a }\n", "hooks[0].name: expected");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, optional: maybe }\n", "expected true or false");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, when: always }\n", "hooks[0].when: unknown field");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, timout: 5 }\n",
          "s.yml:2:31: hooks[0].timout: unknown field; did you mean timeout?");
    s_bad("hooks:\n  - { phase: CLEANUP, command: x }\n",
          "hooks[0].command: unknown field; did you mean run?");
    /* near-misses of a phase and a field cut short get what they mean */
    s_bad("hooks:\n  - { phase: PRE_VALIDATON, run: x }\n",
          "s.yml:2:14: hooks[0].phase: unknown phase: expected one of PRE_VALIDATION, ");
    s_bad("hooks:\n  - { phase: PRE_VALIDATON, run: x }\n",
          "got \"PRE_VALIDATON\"; did you mean PRE_VALIDATION?");
    s_bad("hooks:\n  - { phase: pre_execution, run: x }\n", "did you mean PRE_EXECUTION?");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, prio: 5 }\n",
          "s.yml:2:31: hooks[0].prio: unknown field; did you mean priority?");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, name: a }\n  - { phase: ON_ERROR, run: y, name: a }\n",
          "s.yml:3:38: hooks[1].name: \"a\" is the name of hooks[0] (line 2) too");
    /* the other given on a line of its own: its name's line */
    s_bad("hooks:\n  - phase: CLEANUP\n    name: a\n    run: x\n  - phase: ON_ERROR\n    run: y\n    name: a\n",
          "s.yml:7:11: hooks[1].name: \"a\" is the name of hooks[0] (line 3) too");
    s_bad("hooks:\n  - { phase: CLEANUP, run: x, name: \"a b\" }\n", "hooks[0].name: expected");
    s_bad("hooks: { phase: CLEANUP }\n", "s.yml:1:8: hooks: expected a list");
    s_bad("hooks:\n  - x\n", "hooks[0]: expected a mapping");
    /* a hook after one that is no mapping: its name compared with that
       one's (a segfault), the problem said */
    s_bad("hooks:\n  - x\n  - { phase: CLEANUP, run: y }\n", "s.yml:2:5: hooks[0]: expected a mapping");
    s_bad("hooks:\n  - { phase: CLEANUP, run: y }\n  - [a]\n  - 7\n", "s.yml:4:5: hooks[2]: expected a mapping");
    s_bad("hooks:\n  - { phase: [CLEANUP], run: x }\n", "hooks[0].phase: expected a single value");
    s_bad("hooks: [\n", "s.yml:");
    /* checked as the settings file is (the same messages): libyaml's
       loader would drop the tag, and run `grep -q x f` */
    s_bad("hooks:\n  - { phase: CLEANUP, run: ! grep -q x f }\n",
          "s.yml:2:28: a \"!\" that starts a YAML tag: YAML tags mean nothing to evrun");
    s_bad("hooks:\n  - { phase: !p CLEANUP, run: x }\n",
          "s.yml:2:14: the YAML tag \"!p\": YAML tags mean nothing to evrun");
    char big[EVR_HOOKS_MAX * 40 + 64];
    size_t n = (size_t) snprintf(big, sizeof big, "hooks:\n");
    for (int i = 0; i <= EVR_HOOKS_MAX; i++)
        n += (size_t) snprintf(big + n, sizeof big - n, "  - { phase: CLEANUP, run: x }\n");
    s_bad(big, "at most 64");
}

/*  Every problem of the list at once, one a line, in file order: two of
    one hook, then the next hook's; past what one message holds, the rest
    counted. */
static void
test_all_problems(void)
{
    evr_hooks_t *hs = NULL;
    evr_err_t err = { 0 };
    CHECK(s_load("hooks:\n"
                 "  - { phase: CLEANUP, run: x, timeout: 2h, optional: maybe }\n"
                 "  - { run: y }\n", &hs, &err) == EVR_ERR_CONFIG);
    CHECK(hs == NULL);
    CHECK_STR(err.msg, "s.yml:2:40: hooks[0].timeout: expected whole seconds from 1 to 3600\n"
                       "s.yml:2:54: hooks[0].optional: expected true or false\n"
                       "s.yml:3:5: hooks[1].phase: missing: every hook needs a phase");
    char big[8192] = "hooks:\n";
    size_t n = strlen(big);
    for (int i = 0; i < 40; i++)
        n += (size_t) snprintf(big + n, sizeof big - n, "  - { phase: LATER, run: x }\n");
    CHECK(s_load(big, &hs, &err) == EVR_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "s.yml:2:14: hooks[0].phase: unknown phase");
    CHECK_CONTAINS(err.msg, "s.yml: hooks: and ");
    CHECK_CONTAINS(err.msg, " more problems");
    CHECK(strlen(err.msg) < sizeof err.msg - 1);
}

static void
test_answer(void)
{
    evr_strmap_t env = { 0 }, sec = { 0 };
    evr_err_t err = { 0 };
    CHECK(evr_hook_answer(" \n", 2, &env, &sec, &err) == EVR_OK && !env.n && !sec.n);
    const char *a = "{\"env\": {\"A\": \"1\"}, \"secrets\": {\"TOKEN\": \"xyz\"}}";
    CHECK(evr_hook_answer(a, strlen(a), &env, &sec, &err) == EVR_OK);
    CHECK_STR(evr_strmap_get(&env, "A"), "1");
    CHECK_STR(evr_strmap_get(&sec, "TOKEN"), "xyz");
    const char *bad[] = { "not json", "[1]", "{\"envs\": {}}", "{\"env\": {\"1A\": \"x\"}}",
                          "{\"env\": {\"A\": 1}}", "{\"secrets\": []}",
                          "{\"env\": {\"EVRUN_OUTPUT\": \"/tmp/x\"}}",
                          "{\"secrets\": {\"EVRUN_JOB_ID\": \"x\"}}" };
    const char *why[] = { "not JSON", "expected a JSON object", "unknown key \"envs\"",
                          "\"1A\": expected an environment variable name", "env.A: expected a string",
                          "\"secrets\": expected an object",
                          "answer: env.EVRUN_OUTPUT: EVRUN_* names are the runner's own",
                          "answer: secrets.EVRUN_JOB_ID: EVRUN_* names are the runner's own" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        CHECK(evr_hook_answer(bad[i], strlen(bad[i]), &env, &sec, &err) == EVR_ERR_PROTO);
        CHECK_CONTAINS(err.msg, why[i]);
    }
    /* the answer holds secrets: jansson's "near '...'" (the token it
       stopped at) is not quoted, only where */
    const char *leak[] = { "{\"secrets\": {\"T\": \"s3cr3t-v4lue\n\"}}",
                           "{\"secrets\": {\"T\": \"s3cr3t-\\q\"}}",
                           "{\"secrets\": {\"T\": s3cr3t}}",
                           "{\"secrets\": {\"T\": \"s3cr3t-v4lue" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(leak); i++) {
        CHECK(evr_hook_answer(leak[i], strlen(leak[i]), &env, &sec, &err) == EVR_ERR_PROTO);
        CHECK_CONTAINS(err.msg, "answer: not JSON (line 1, column ");
        CHECK(strstr(err.msg, "s3cr3t") == NULL);
    }
    /* a NUL, a byte that is not UTF-8: said in words, not jansson's
       ("without JSON_ALLOW_NUL", its flag's name) */
    const char *nul = "{\"env\": {\"A\": \"x\\u0000y\"}}";
    CHECK(evr_hook_answer(nul, strlen(nul), &env, &sec, &err) == EVR_ERR_PROTO);
    CHECK_CONTAINS(err.msg, "answer: not JSON (line 1, column ");
    CHECK_CONTAINS(err.msg, ": a NUL character (\\u0000): a value may hold none): ");
    CHECK(strstr(err.msg, "JSON_ALLOW_NUL") == NULL);
    const char *latin = "{\"env\": {\"A\": \"caf\xe9\"}}";
    CHECK(evr_hook_answer(latin, strlen(latin), &env, &sec, &err) == EVR_ERR_PROTO);
    CHECK_CONTAINS(err.msg, ": a byte that is not UTF-8: JSON is UTF-8 text): ");
    /* a key twice: refused, saying where (one of the two was dropped) */
    const char *twice[] = { "{\"env\": {\"A\": \"1\"}, \"env\": {\"B\": \"2\"}}",
                            "{\"secrets\": {\"T\": \"s3cr3t-1\", \"T\": \"s3cr3t-2\"}}" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(twice); i++) {
        evr_strmap_t e2 = { 0 }, s2 = { 0 };
        CHECK(evr_hook_answer(twice[i], strlen(twice[i]), &e2, &s2, &err) == EVR_ERR_PROTO);
        CHECK_CONTAINS(err.msg, "answer: a key written twice (line 1, column ");
        CHECK(strstr(err.msg, "s3cr3t") == NULL);
        evr_strmap_free(&e2);
        evr_strmap_free(&s2);
    }
    evr_strmap_free(&env);
    evr_strmap_free(&sec);
}

typedef struct {
    bool done;
    evr_hook_end_t end;
    int code;
    int held;
    uint64_t ms;
    char out[256], errt[256];
    evr_loop_t *loop;
} s_res_t;

static void
s_done(const evr_hook_result_t *r, void *arg)
{
    s_res_t *res = arg;
    res->done = true;
    res->end = r->end;
    res->code = r->exit_code;
    res->held = r->held;
    res->ms = r->duration_ms;
    snprintf(res->out, sizeof res->out, "%s", r->out);
    snprintf(res->errt, sizeof res->errt, "%s", r->err_text);
}

static s_res_t
s_run_in(const char *dir, const char *run, uint32_t timeout, const char *input)
{
    evr_loop_t *loop = evr_loop_new();
    evr_hook_t h = { .phase = EVR_HOOK_PRE_EXECUTION, .name = "t", .run = (char *) run,
                     .timeout = timeout };
    s_res_t res = { 0 };
    evr_hook_run(loop, &h, dir, input, strlen(input), s_done, &res);
    for (int i = 0; i < 2000 && !res.done; i++)
        evr_loop_once(loop, 100);
    evr_loop_destroy(&loop);
    return res;
}

static s_res_t
s_run(const char *run, uint32_t timeout, const char *input)
{
    return s_run_in(NULL, run, timeout, input);
}

/*  pid has ended: no such process, or a zombie its new parent has not
    reaped yet. */
static bool
s_gone(int pid)
{
    char path[64], st[512] = "";
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return true;
    size_t n = fread(st, 1, sizeof st - 1, fp);
    fclose(fp);
    st[n] = '\0';
    const char *p = strrchr(st, ')');
    return p && (p[2] == 'Z' || p[2] == 'X');
}

static void
test_run(void)
{
    s_res_t r = s_run("read -r x; echo \"got $x\"; echo oops >&2; exit 3", 10, "{\"a\":1}\n");
    CHECK(r.done && r.end == EVR_HOOK_EXITED && r.code == 3);
    CHECK_STR(r.out, "got {\"a\":1}\n");
    CHECK_STR(r.errt, "oops\n");   /* as written: the engine masks it, then trims it */
    /* no reader of its stdin: no SIGPIPE for the runner */
    r = s_run("exec 0<&-; echo fine", 10, "x");
    CHECK(r.done && r.end == EVR_HOOK_EXITED && r.code == 0);
    /* its timeout kills the group: the background child that holds the
       pipes open too */
    char pidfile[32];
    snprintf(pidfile, sizeof pidfile, "/tmp/evr-hook-XXXXXX");
    int fd = mkstemp(pidfile);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "sleep 60 & echo $! > %s; wait", pidfile);
    r = s_run(cmd, 1, "");
    CHECK(r.done && r.end == EVR_HOOK_TIMED_OUT);
    FILE *fp = fopen(pidfile, "r");
    int bg = 0;
    CHECK(fp && fscanf(fp, "%d", &bg) == 1);
    if (fp)
        fclose(fp);
    unlink(pidfile);
    usleep(100000);
    CHECK(bg > 0 && s_gone(bg));
    /* it exits, leaving a child that holds its stdout: the run ends then
       (not at its timeout), the child killed */
    snprintf(pidfile, sizeof pidfile, "/tmp/evr-hook-XXXXXX");
    fd = mkstemp(pidfile);
    close(fd);
    snprintf(cmd, sizeof cmd, "sleep 60 & echo $! > %s; echo '{}'", pidfile);
    r = s_run(cmd, 30, "");
    CHECK(r.done && r.end == EVR_HOOK_EXITED && r.code == 0);
    fp = fopen(pidfile, "r");
    bg = 0;
    CHECK(fp && fscanf(fp, "%d", &bg) == 1);
    if (fp)
        fclose(fp);
    unlink(pidfile);
    usleep(100000);
    CHECK(bg > 0 && s_gone(bg));
    /* it exits, but a process it moved out of its group (setsid) holds
       its stdout: at its timeout the run times out saying so (held), its
       exit status kept; it was reported as exited 0 (succeeded) then */
    snprintf(pidfile, sizeof pidfile, "/tmp/evr-hook-XXXXXX");
    fd = mkstemp(pidfile);
    close(fd);
    snprintf(cmd, sizeof cmd, "setsid sh -c 'echo $$ > %s; exec sleep 60' 2>/dev/null & "
             "while [ ! -s %s ]; do sleep 0.01; done; echo '{}'", pidfile, pidfile);
    r = s_run(cmd, 1, "");
    CHECK(r.done && r.end == EVR_HOOK_TIMED_OUT && r.held == 1 && r.code == 0);
    CHECK(r.ms >= 900);
    CHECK_STR(r.out, "{}\n");
    fp = fopen(pidfile, "r");
    bg = 0;
    CHECK(fp && fscanf(fp, "%d", &bg) == 1);
    if (fp)
        fclose(fp);
    unlink(pidfile);
    CHECK(bg > 0 && !s_gone(bg));   /* not the hook's group: left running */
    if (bg > 0)
        kill(bg, SIGKILL);
    /* a plain timeout holds nothing */
    r = s_run("sleep 30", 1, "");
    CHECK(r.done && r.end == EVR_HOOK_TIMED_OUT && r.held == 0);
}

/*  The files in dir ending in .pg. */
static int
s_records(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strlen(de->d_name) > 3 && !strcmp(de->d_name + strlen(de->d_name) - 3, ".pg");
    if (d)
        closedir(d);
    return n;
}

/*  A child in a group of its own running sh -c cmd. */
static pid_t
s_group(const char *cmd)
{
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

static void
test_pg(void)
{
    char dir[] = "/tmp/evr-hookpg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    /* recorded while it runs (the command sees it), removed at its end */
    char cmd[640];
    snprintf(cmd, sizeof cmd, "ls %s", dir);
    s_res_t r = s_run_in(dir, cmd, 10, "");
    CHECK(r.done && r.end == EVR_HOOK_EXITED && r.code == 0);
    CHECK(strstr(r.out, ".pg\n") != NULL);
    CHECK(s_records(dir) == 0);
    /* a record not writable: not run, saying why */
    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/no/such", dir);
    r = s_run_in(nodir, "echo ran", 10, "");
    CHECK(r.done && r.end == EVR_HOOK_NOT_RUN && !r.out[0]);

    /* a killed runner's hook: its shell killed (as by the parent-death
       signal), its foreground child left running in the group */
    char pidfile[300];
    snprintf(pidfile, sizeof pidfile, "%s/child", dir);
    snprintf(cmd, sizeof cmd, "sleep 60 & echo $! > %s; wait", pidfile);
    pid_t lead = s_group(cmd);
    evr_err_t err;
    CHECK(evr_hook_pg_keep(dir, lead, &err) == EVR_OK);
    int child = 0;
    for (int i = 0; i < 100 && !child; i++) {
        FILE *fp = fopen(pidfile, "r");
        if (!fp || fscanf(fp, "%d", &child) != 1)
            child = 0;
        if (fp)
            fclose(fp);
        if (!child)
            usleep(20000);
    }
    CHECK(child > 0);
    kill(lead, SIGKILL);
    waitpid(lead, NULL, 0);
    CHECK(child > 0 && !s_gone(child));
    uint32_t killed = 9;
    CHECK(evr_hook_pg_sweep(dir, &killed, &err) == EVR_OK);
    CHECK(killed == 1);
    CHECK(child > 0 && s_gone(child));
    CHECK(s_records(dir) == 0);

    /* a record whose group id is another group's now (its leader started
       at another time): left alone, the record removed */
    pid_t other = s_group("exec sleep 60");
    char path[300];
    snprintf(path, sizeof path, "%s/%d.pg", dir, (int) other);
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (fp) {
        fprintf(fp, "%d 1 %d -\n", (int) other, (int) getsid(0));
        fclose(fp);
    }
    /* and one cut short (the runner killed while writing it) */
    snprintf(path, sizeof path, "%s/77.pg", dir);
    fp = fopen(path, "w");
    if (fp)
        fclose(fp);
    CHECK(evr_hook_pg_sweep(dir, &killed, &err) == EVR_OK);
    CHECK(killed == 0);
    CHECK(!s_gone(other));
    CHECK(s_records(dir) == 0);
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    unlink(pidfile);
    rmdir(dir);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    EVR_TEST_RUN(test_sorted);
    EVR_TEST_RUN(test_refused);
    EVR_TEST_RUN(test_all_problems);
    EVR_TEST_RUN(test_answer);
    EVR_TEST_RUN(test_run);
    EVR_TEST_RUN(test_pg);
    EVR_TEST_END();
}
