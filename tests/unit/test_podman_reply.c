/*  test_podman_reply: the readers of podman's answers (evr_podman_reply.c)
    on real podman 4.3.1 answers (the fuzz seeds, tests/fuzz/corpus_podman)
    and on broken ones: truncated JSON, wrong types, huge numbers, missing
    fields, bytes that are not UTF-8, names that would split a list.
    Links the reader alone: no curl, no podman. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_codec.h"
#include "evr_podman_reply.h"
#include "evr_test.h"

#define S_SEEDS EVR_SOURCE_DIR "/tests/fuzz/corpus_podman/"
#define S_ID_A "b494f2dd783264db4cbbc05c6b9fbeba118373ce8ac417e4457cfe60707a5840"

/*  A seed: "STATUS WORDS\n" then the body (caller frees *body). */
static long
s_seed(const char *name, char **body, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, S_SEEDS "%s", name);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    char *nl = memchr(buf, '\n', n);
    if (!nl)
        exit(2);
    size_t skip = (size_t) (nl - buf) + 1;
    *len = n - skip;
    *body = malloc(*len + 1);
    memcpy(*body, buf + skip, *len);
    (*body)[*len] = '\0';
    return strtol(buf, NULL, 10);
}

/*  Every text of r is valid UTF-8; a failure keeps no field. */
static bool
s_sane(const evr_podman_reply_t *r)
{
    bool ok = evr_utf8_valid(r->msg, strlen(r->msg)) && evr_utf8_valid(r->id, strlen(r->id))
              && evr_utf8_valid(r->state, strlen(r->state));
    if (r->rc)
        ok = ok && r->msg[0] && !r->id[0] && !r->state[0] && !r->names;
    return ok;
}

static void
test_create(void)
{
    char *body;
    size_t len;
    evr_podman_reply_t r;
    long st = s_seed("create", &body, &len);
    CHECK(st == 201);
    CHECK(evr_podman_reply_create(st, body, len, &r) == EVR_OK);
    CHECK_STR(r.id, S_ID_A);
    CHECK(!r.exists && !r.msg[0]);
    free(body);

    st = s_seed("create-exists", &body, &len);
    CHECK(evr_podman_reply_create(st, body, len, &r) == EVR_ERR_PODMAN);
    CHECK(st == 500 && r.exists && !r.not_found && !r.id[0]);
    CHECK_CONTAINS(r.msg, "creating container storage: the container name \"evrun-fuzzseed-a\"");
    CHECK_CONTAINS(r.msg, "that name is already in use");
    CHECK(s_sane(&r));
    free(body);

    st = s_seed("create-noimage", &body, &len);
    CHECK(evr_podman_reply_create(st, body, len, &r) == EVR_ERR_PODMAN);
    CHECK_STR(r.msg, "localhost/evrun-nosuch:latest: image not known");
    CHECK(!r.exists);
    free(body);

    st = s_seed("volume-create-exists", &body, &len);
    CHECK(evr_podman_reply_plain(st, body, len, &r) == EVR_ERR_PODMAN);
    CHECK(r.exists);
    CHECK_STR(r.msg, "volume with name evrun-fuzzseed-vol already exists: volume already exists");
    free(body);

    /* broken answers to create */
    const char *bad[][2] = {
        { "{\"Id\":5}", "Id: expected a string, got an integer" },
        { "{\"Warnings\":[]}", "Id: expected a string, got nothing" },
        { "{\"Id\":\"\"}", "Id: \"\" is not an id" },
        { "{\"Id\":\"abc\\ndef\"}", "Id: \"abc\\x0adef\" is not an id" },
        { "[\"Id\"]", "podman's answer to create: expected an object, got an array" },
        { "{\"Id\":\"b494f2dd", "podman answered with a body that is not JSON (create: " },
        { "", "podman answered with a body that is not JSON" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        CHECK(evr_podman_reply_create(201, bad[i][0], strlen(bad[i][0]), &r) == EVR_ERR_PODMAN);
        CHECK_CONTAINS(r.msg, bad[i][1]);
        CHECK(s_sane(&r) && !r.exists);
    }
    char id[300];
    snprintf(id, sizeof id, "{\"Id\":\"%0200d\"}", 7);   /* an id over 127 bytes */
    CHECK(evr_podman_reply_create(201, id, strlen(id), &r) == EVR_ERR_PODMAN);
    CHECK_CONTAINS(r.msg, "is not an id");
}

static void
test_wait(void)
{
    char *body;
    size_t len;
    evr_podman_reply_t r;
    long st = s_seed("wait-exit3", &body, &len);
    CHECK(evr_podman_reply_wait(st, body, len, &r) == EVR_OK && r.exit_code == 3);
    free(body);
    st = s_seed("wait-oom", &body, &len);
    CHECK(evr_podman_reply_wait(st, body, len, &r) == EVR_OK && r.exit_code == 137);
    free(body);
    st = s_seed("wait-missing", &body, &len);
    CHECK(evr_podman_reply_wait(st, body, len, &r) == EVR_ERR_PODMAN && r.not_found);
    CHECK_STR(r.msg, "no container with name or ID \"evrun-fuzzseed-nosuch\" found: "
                     "no such container");
    free(body);

    struct { const char *body; int64_t code; } good[] = {
        { "0", 0 }, { " 3\r\n", 3 }, { "-1", -1 }, { "2147483647", 2147483647 },
        { "-2147483648", -2147483648LL },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(good); i++) {
        CHECK(evr_podman_reply_wait(200, good[i].body, strlen(good[i].body), &r) == EVR_OK);
        CHECK(r.exit_code == good[i].code);
    }
    const char *bad[] = { "", "\n", "3abc", "+3", "-", "2147483648", "-2147483649",
                          "99999999999999999999999", "3 4", "{\"StatusCode\":0}", "\xff\xfe" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        CHECK(evr_podman_reply_wait(200, bad[i], strlen(bad[i]), &r) == EVR_ERR_PODMAN);
        CHECK_CONTAINS(r.msg, "wait: podman answered \"");
        CHECK_CONTAINS(r.msg, ", not an exit code");
        CHECK(s_sane(&r) && r.exit_code == 0);
    }
    CHECK(evr_podman_reply_wait(200, "\xff\xfe", 2, &r) == EVR_ERR_PODMAN);
    CHECK_STR(r.msg, "wait: podman answered \"\\xff\\xfe\", not an exit code");
    /* not NUL-terminated: the length is the end */
    CHECK(evr_podman_reply_wait(200, "12345", 2, &r) == EVR_OK && r.exit_code == 12);
}

static void
test_inspect_real(void)
{
    char *body;
    size_t len;
    evr_podman_reply_t r;
    struct { const char *seed, *state; int64_t code; uint64_t started, finished; } cases[] = {
        { "inspect-created", "created", 0, 0, 0 },
        { "inspect-running", "running", 0, 1795983225524743180ull, 0 },
        { "inspect-paused", "paused", 0, 1795983225524743180ull, 0 },
        { "inspect-exited", "exited", 3, 1795983230379078950ull, 1795983230378571819ull },
        { "inspect-oom", "exited", 137, 1795983230627681161ull, 1795983230658571831ull },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(cases); i++) {
        long st = s_seed(cases[i].seed, &body, &len);
        CHECK(evr_podman_reply_inspect(st, body, len, &r) == EVR_OK);
        CHECK_STR(r.state, cases[i].state);
        CHECK(r.exit_code == cases[i].code);
        /* created: "0001-01-01T00:00:00Z", never started */
        CHECK(r.started_at == cases[i].started);
        /* not finished: "0001-01-01T00:00:00Z" too */
        CHECK(r.finished_at == cases[i].finished);
        CHECK(strlen(r.id) == 64);
        /* podman 4.3 with runc on cgroup v1 says OOMKilled false even
           after a real OOM kill (PODMAN.md): exit 137 under a memory
           limit (HostConfig.Memory) counts as one */
        CHECK(r.oom_killed == (cases[i].code == 137));
        /* StaticDir: the bundle directory, where conmon's attach socket is */
        CHECK(r.dir && !strncmp(r.dir, "/var/lib/containers/storage/overlay-containers/", 47)
              && strstr(r.dir, "/userdata"));
        evr_podman_reply_clear(&r);
        CHECK(!r.dir);
        free(body);
    }
    s_seed("inspect-running", &body, &len);
    CHECK(evr_podman_reply_inspect(200, body, len, &r) == EVR_OK);
    CHECK_STR(r.id, S_ID_A);
    evr_podman_reply_clear(&r);
    free(body);

    /* the same answer with OOMKilled true */
    s_seed("inspect-oom", &body, &len);
    char *p = strstr(body, "\"OOMKilled\":false");
    CHECK(p != NULL);
    if (p) {
        memcpy(p, "\"OOMKilled\":true ", 17);
        CHECK(evr_podman_reply_inspect(200, body, len, &r) == EVR_OK);
        CHECK(r.oom_killed && r.exit_code == 137);
        evr_podman_reply_clear(&r);
    }
    /* truncated anywhere: never accepted, always said */
    bool all = true;
    for (size_t cut = 0; cut < len; cut += 7) {
        all &= evr_podman_reply_inspect(200, body, cut, &r) == EVR_ERR_PODMAN;
        all &= strstr(r.msg, "not JSON") != NULL && s_sane(&r);
    }
    CHECK(all);
    free(body);

    long st = s_seed("inspect-missing", &body, &len);
    CHECK(evr_podman_reply_inspect(st, body, len, &r) == EVR_ERR_PODMAN);
    CHECK(r.not_found && !r.state[0]);
    free(body);
}

static void
test_inspect_bad(void)
{
    evr_podman_reply_t r;
#define S_ST(x) "{\"Id\":\"abc123\",\"State\":{" x "}}"
    const char *bad[][2] = {
        { "{\"State\":{\"Status\":\"running\",\"ExitCode\":0}}", "Id: expected a string, got nothing" },
        { "{\"Id\":\"abc123\"}", "State: expected an object, got nothing" },
        { "{\"Id\":\"abc123\",\"State\":[]}", "State: expected an object, got an array" },
        { S_ST("\"ExitCode\":0"), "State.Status: expected a string, got nothing" },
        { S_ST("\"Status\":7,\"ExitCode\":0"), "State.Status: expected a string, got an integer" },
        { S_ST("\"Status\":\"Running!\",\"ExitCode\":0"),
          "State.Status: \"Running!\" is not a state (one lowercase word)" },
        { S_ST("\"Status\":\"\",\"ExitCode\":0"), "State.Status: \"\" is not a state" },
        { S_ST("\"Status\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"ExitCode\":0"),
          "is not a state" },
        { S_ST("\"Status\":\"exited\""), "State.ExitCode: expected an integer, got nothing" },
        { S_ST("\"Status\":\"exited\",\"ExitCode\":\"3\""),
          "State.ExitCode: expected an integer, got a string" },
        { S_ST("\"Status\":\"exited\",\"ExitCode\":3.5"),
          "State.ExitCode: expected an integer, got a real number" },
        { S_ST("\"Status\":\"exited\",\"ExitCode\":null"),
          "State.ExitCode: expected an integer, got null" },
        { S_ST("\"Status\":\"exited\",\"ExitCode\":4294967296"),
          "State.ExitCode: 4294967296 is not an exit code (an int32)" },
        { S_ST("\"Status\":\"exited\",\"ExitCode\":99999999999999999999"), "too big integer" },
        { S_ST("\"Status\":\"exited\",\"ExitCode\":1e999"), "real number overflow" },
        { S_ST("\"Status\":\"exited\",\"ExitCode\":0,\"OOMKilled\":\"yes\""),
          "State.OOMKilled: expected true or false, got a string" },
        { S_ST("\"Status\":\"exited\",\"ExitCode\":0,\"StartedAt\":5"),
          "State.StartedAt: expected a string, got an integer" },
        { S_ST("\"Status\":\"exited\",\"ExitCode\":0,\"StartedAt\":\"yesterday\""),
          "State.StartedAt: \"yesterday\" is not an RFC 3339 time" },
        { S_ST("\"Status\":\"exited\",\"ExitCode\":0,\"FinishedAt\":[]"),
          "State.FinishedAt: expected a string, got an array" },
        { S_ST("\"Status\":\"exited\",\"ExitCode\":0,\"FinishedAt\":\"2026-13-01T00:00:00Z\""),
          "State.FinishedAt: \"2026-13-01T00:00:00Z\" is not an RFC 3339 time" },
        { S_ST("\"Status\":\"\xff\",\"ExitCode\":0"), "not JSON (inspect: line 1, column " },
        { "{\"Id\":\"abc123\",\"State\":{\"Status\":\"exited\",\"ExitCode\":0}",
          "not JSON (inspect: line 1, column " },
        { "null", "not JSON" },
        { "[]", "podman's answer to inspect: expected an object, got an array" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        CHECK(evr_podman_reply_inspect(200, bad[i][0], strlen(bad[i][0]), &r) == EVR_ERR_PODMAN);
        CHECK_CONTAINS(r.msg, bad[i][1]);
        CHECK(s_sane(&r) && r.exit_code == 0 && !r.started_at && !r.finished_at && !r.oom_killed);
    }
    /* the least it takes */
    const char *least = S_ST("\"Status\":\"stopping\",\"ExitCode\":-1");
    CHECK(evr_podman_reply_inspect(200, least, strlen(least), &r) == EVR_OK);
    CHECK_STR(r.state, "stopping");
    CHECK(r.exit_code == -1 && !r.oom_killed && r.started_at == 0);
    CHECK(!r.dir);
    /* a StaticDir that is no absolute path: none, and no error */
    const char *dirs[][2] = {
        { ",\"StaticDir\":\"/run/x/userdata\"", "/run/x/userdata" },
        { ",\"StaticDir\":\"run/x\"", NULL },
        { ",\"StaticDir\":\"/\"", NULL },
        { ",\"StaticDir\":\"/a\\u007fb\"", NULL },
        { ",\"StaticDir\":\"/a\\nb\"", NULL },
        { ",\"StaticDir\":7", NULL },
        { ",\"StaticDir\":null", NULL },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(dirs); i++) {
        char *body = evr_asprintf("{\"Id\":\"abc123\"%s,\"State\":{\"Status\":\"running\","
                                  "\"ExitCode\":0}}", dirs[i][0]);
        CHECK(evr_podman_reply_inspect(200, body, strlen(body), &r) == EVR_OK);
        CHECK(dirs[i][1] ? r.dir && !strcmp(r.dir, dirs[i][1]) : !r.dir);
        evr_podman_reply_clear(&r);
        free(body);
    }
#undef S_ST
    /* nested past jansson's depth: refused, no stack overflow */
    size_t n = 200000;
    char *deep = malloc(2 * n);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    CHECK(evr_podman_reply_inspect(200, deep, 2 * n, &r) == EVR_ERR_PODMAN);
    CHECK_CONTAINS(r.msg, "not JSON");
    free(deep);
    /* over the size limit: refused unread */
    CHECK(evr_podman_reply_inspect(200, "{}", EVR_PODMAN_REPLY_MAX + 1, &r) == EVR_ERR_PODMAN);
    CHECK_CONTAINS(r.msg, "over the limit of 1048576");
}

static void
test_list(void)
{
    char *body;
    size_t len;
    evr_podman_reply_t r;
    long st = s_seed("list", &body, &len);
    CHECK(evr_podman_reply_list(st, body, len, "evrun-fuzzseed-", &r) == EVR_OK);
    CHECK_STR(r.names, "evrun-fuzzseed-a\nevrun-fuzzseed-b\nevrun-fuzzseed-oom\n");
    evr_podman_reply_clear(&r);
    CHECK(evr_podman_reply_list(st, body, len, "evrun-fuzzseed-o", &r) == EVR_OK);
    CHECK_STR(r.names, "evrun-fuzzseed-oom\n");
    evr_podman_reply_clear(&r);
    CHECK(evr_podman_reply_list(st, body, len, "other-", &r) == EVR_OK);
    CHECK_STR(r.names, "");
    evr_podman_reply_clear(&r);
    CHECK(!r.names);
    free(body);

    st = s_seed("list-empty", &body, &len);
    CHECK(evr_podman_reply_list(st, body, len, "evrun-", &r) == EVR_OK);
    CHECK_STR(r.names, "");
    evr_podman_reply_clear(&r);
    free(body);
    st = s_seed("volume-list", &body, &len);
    CHECK(evr_podman_reply_list(st, body, len, "evrun-", &r) == EVR_OK);
    CHECK_STR(r.names, "evrun-fuzzseed-vol\n");
    evr_podman_reply_clear(&r);
    free(body);
    st = s_seed("bad-filter", &body, &len);
    CHECK(evr_podman_reply_list(st, body, len, "evrun-", &r) == EVR_ERR_PODMAN && !r.names);
    CHECK_CONTAINS(r.msg, "failed to decode filter parameters");
    free(body);

    const char *bad[][2] = {
        { "{}", "podman's answer to list: expected an array, got an object" },
        { "[1]", "[0]: expected an object, got an integer" },
        { "[{\"Names\":[\"evrun-a\"]},{\"Names\":[]}]", "[1].Names: expected an array of strings, "
                                                      "got an array without one" },
        { "[{\"Names\":\"evrun-a\"}]", "[0].Names: expected an array of strings, got a string" },
        { "[{\"Names\":[7]}]", "[0].Names: expected an array of strings" },
        { "[{\"Id\":\"x\"}]", "[0].Name: expected a string, got nothing" },
        /* a name that would split into two, one of them someone else's */
        { "[{\"Names\":[\"evrun-a\\nevrun-victim\"]}]",
          "[0]: \"evrun-a\\x0aevrun-victim\" is not a container or volume name" },
        { "[{\"Name\":\"evrun-a/../b\"}]", "is not a container or volume name" },
        { "[{\"Names\":[\"evrun-\xc3\xa9\"]}]", "is not a container or volume name" },
        { "[{\"Names\":[\"evrun-a\"]}", "not JSON" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        CHECK(evr_podman_reply_list(200, bad[i][0], strlen(bad[i][0]), "evrun-", &r)
              == EVR_ERR_PODMAN);
        CHECK_CONTAINS(r.msg, bad[i][1]);
        CHECK(s_sane(&r));
    }
    /* a long name, and names not ours whatever they are */
    char big[600];
    snprintf(big, sizeof big, "[{\"Names\":[\"evrun-%0260d\"]}]", 1);
    CHECK(evr_podman_reply_list(200, big, strlen(big), "evrun-", &r) == EVR_ERR_PODMAN);
    const char *others = "[{\"Names\":[\"x\\ny\"]},{\"Name\":\"\"},{\"Names\":[\"evrun-ok_1.2\"]}]";
    CHECK(evr_podman_reply_list(200, others, strlen(others), "evrun-", &r) == EVR_OK);
    CHECK_STR(r.names, "evrun-ok_1.2\n");
    evr_podman_reply_clear(&r);
}

static void
test_errors(void)
{
    char *body;
    size_t len;
    evr_podman_reply_t r;
    /* every real error seed: its message, valid UTF-8 */
    const char *seeds[] = { "archive-get-missing", "archive-put-bad", "image-missing",
                            "kill-exited", "logs-missing", "notfound-path", "pause-exited",
                            "remove-missing", "unpause-running", "volume-remove-missing" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(seeds); i++) {
        long st = s_seed(seeds[i], &body, &len);
        CHECK(evr_podman_reply_plain(st, body, len, &r) == EVR_ERR_PODMAN);
        CHECK(r.not_found == (st == 404) && s_sane(&r));
        CHECK(strlen(r.msg) < EVR_PODMAN_MSG_MAX);
        free(body);
    }
    long st = s_seed("notfound-path", &body, &len);
    evr_podman_reply_plain(st, body, len, &r);
    CHECK_STR(r.msg, "Not Found");   /* not JSON: as it is, without its newline */
    free(body);
    st = s_seed("archive-put-bad", &body, &len);
    evr_podman_reply_plain(st, body, len, &r);
    CHECK(r.cut);
    CHECK(strncmp(r.msg, "error during bulk transfer for copier.request{", 46) == 0);
    const char *cause = ": reading tar stream: expected EOF: archive/tar: invalid tar header";
    size_t n = strlen(r.msg);
    CHECK(n > strlen(cause) && strcmp(r.msg + n - strlen(cause), cause) == 0);
    CHECK_CONTAINS(r.msg, " [...] ");
    free(body);
    st = s_seed("unpause-running", &body, &len);
    evr_podman_reply_plain(st, body, len, &r);
    CHECK_CONTAINS(r.msg, "is not paused, can't unpause: container state improper");
    free(body);

    /* successes say nothing, whatever the body */
    CHECK(evr_podman_reply_plain(304, NULL, 0, &r) == EVR_OK && !r.msg[0]);
    CHECK(evr_podman_reply_plain(204, "\xff", 1, &r) == EVR_OK);

    /* bodies that are no podman error */
    CHECK(evr_podman_reply_plain(500, NULL, 0, &r) == EVR_ERR_PODMAN);
    CHECK_STR(r.msg, "podman answered HTTP 500 with no message");
    CHECK(evr_podman_reply_plain(404, " \n", 2, &r) == EVR_ERR_PODMAN && r.not_found);
    CHECK_STR(r.msg, "podman answered HTTP 404 with no message");
    CHECK(evr_podman_reply_plain(502, "bad \xff\xfe gateway", 14, &r) == EVR_ERR_PODMAN);
    CHECK_STR(r.msg, "bad ?? gateway");
    CHECK(evr_podman_reply_plain(500, "a\0b", 3, &r) == EVR_ERR_PODMAN);
    CHECK_STR(r.msg, "a?b");
    CHECK(evr_podman_reply_plain(500, "{\"message\":5}", 13, &r) == EVR_ERR_PODMAN);
    CHECK_STR(r.msg, "{\"message\":5}");
    CHECK(evr_podman_reply_plain(409, "{\"message\":\"taken\"}", 19, &r) == EVR_ERR_PODMAN);
    CHECK(r.exists);
    /* a long body that is not UTF-8 nor JSON: cut, and valid */
    char junk[5000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char) (0x80 + i % 100);
    CHECK(evr_podman_reply_plain(500, junk, sizeof junk, &r) == EVR_ERR_PODMAN);
    CHECK(r.cut && s_sane(&r) && strlen(r.msg) < EVR_PODMAN_MSG_MAX);
    /* every size from the least on: within the buffer, valid */
    bool ok = true;
    for (size_t size = 64; size < 200; size++) {
        char buf[200];
        evr_podman_reply_message(junk, sizeof junk, buf, size);
        ok &= strlen(buf) < size && evr_utf8_valid(buf, strlen(buf));
    }
    CHECK(ok);
}

static void
test_time(void)
{
    uint64_t ns = 1;
    CHECK(evr_podman_reply_time("0001-01-01T00:00:00Z", 20, &ns) && ns == 0);
    CHECK(evr_podman_reply_time("1970-01-01T00:00:01Z", 20, &ns) && ns == 1000000000u);
    CHECK(evr_podman_reply_time("1970-01-01T00:00:00.5Z", 22, &ns) && ns == 500000000u);
    const char *t = "2026-11-29T20:13:45.52474318Z";
    CHECK(evr_podman_reply_time(t, strlen(t), &ns) && ns == 1795983225524743180ull);
    t = "2024-02-29T12:00:00+02:00";
    CHECK(evr_podman_reply_time(t, strlen(t), &ns) && ns == 1709200800000000000ull);
    t = "2024-02-29T08:30:00-01:30";
    CHECK(evr_podman_reply_time(t, strlen(t), &ns) && ns == 1709200800000000000ull);
    t = "2554-07-21T23:34:33.709551615Z";   /* the last ns of a uint64 */
    CHECK(evr_podman_reply_time(t, strlen(t), &ns) && ns == UINT64_MAX);
    const char *bad[] = { "", "2024", "2554-07-21T23:34:33.709551616Z", "9999-12-31T23:59:59Z",
                          "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-04-31T00:00:00Z",
                          "2024-01-01T24:00:00Z", "2024-01-01T00:00:00", "2024-01-01 00:00:00Z",
                          "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00.1234567890Z",
                          "2024-01-01T00:00:00Zjunk", "2024-01-01T00:00:00+0200",
                          "-024-01-01T00:00:00Z", "2024-01-01T00:00:00+24:00" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        bool got = evr_podman_reply_time(bad[i], strlen(bad[i]), &ns);
        if (got)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK(!got && ns == 0);
    }
    /* the length is the end */
    CHECK(!evr_podman_reply_time("1970-01-01T00:00:01Z", 19, &ns));
}

/*  A volume's Mountpoint: an absolute path, nothing else. */
static void
test_volume(void)
{
    static const char ok[] = "{\"Name\":\"v\",\"Mountpoint\":\"/var/lib/v/_data\"}";
    evr_podman_reply_t r;
    CHECK(evr_podman_reply_volume(200, ok, strlen(ok), &r) == EVR_OK);
    CHECK(r.names && !strcmp(r.names, "/var/lib/v/_data"));
    evr_podman_reply_clear(&r);
    static const char *bad[] = { "{\"Mountpoint\":\"rel/x\"}", "{\"Mountpoint\":\"/a\\nb\"}",
                                 "{\"Mountpoint\":7}", "{}", "[]" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        CHECK(evr_podman_reply_volume(200, bad[i], strlen(bad[i]), &r) == EVR_ERR_PODMAN);
        CHECK(!r.names && r.msg[0]);
        evr_podman_reply_clear(&r);
    }
    static const char gone[] = "{\"cause\":\"no such volume\",\"message\":\"no volume\","
                               "\"response\":404}";
    CHECK(evr_podman_reply_volume(404, gone, strlen(gone), &r) == EVR_ERR_PODMAN && r.not_found);
    evr_podman_reply_clear(&r);
}

/*  GET /libpod/info: rootless, cgroupVersion, cgroupManager; a body of
    another shape fails naming the field, and keeps nothing. */
static void
test_info(void)
{
    static const char root[] = "{\"host\":{\"cgroupManager\":\"cgroupfs\",\"cgroupVersion\":"
                               "\"v1\",\"security\":{\"rootless\":false}},\"store\":{}}";
    static const char rl[] = "{\"host\":{\"cgroupVersion\":\"v2\",\"cgroupManager\":\"systemd\","
                             "\"security\":{\"rootless\":true}}}";
    static const char old[] = "{\"host\":{\"cgroupVersion\":\"v1\",\"security\":"
                              "{\"rootless\":true}}}";
    evr_podman_reply_t r;
    CHECK(evr_podman_reply_info(200, root, strlen(root), &r) == EVR_OK);
    CHECK(!r.rootless && !strcmp(r.cgroup_version, "v1") && !strcmp(r.cgroup_manager, "cgroupfs"));
    CHECK(evr_podman_reply_info(200, rl, strlen(rl), &r) == EVR_OK);
    CHECK(r.rootless && !strcmp(r.cgroup_version, "v2") && !strcmp(r.cgroup_manager, "systemd"));
    CHECK(evr_podman_reply_info(200, old, strlen(old), &r) == EVR_OK);
    CHECK(r.rootless && !strcmp(r.cgroup_version, "v1") && !r.cgroup_manager[0]);
    static const struct { const char *body, *says; } bad[] = {
        { "{}", "host: expected an object, got nothing" },
        { "{\"host\":[]}", "host: expected an object, got an array" },
        { "{\"host\":{\"cgroupVersion\":\"v1\"}}",
          "host.security.rootless: expected true or false, got nothing" },
        { "{\"host\":{\"cgroupVersion\":\"v1\",\"security\":{\"rootless\":\"yes\"}}}",
          "host.security.rootless: expected true or false, got a string" },
        { "{\"host\":{\"security\":{\"rootless\":true}}}",
          "host.cgroupVersion: expected a string, got nothing" },
        { "{\"host\":{\"cgroupVersion\":\"v 1\",\"security\":{\"rootless\":true}}}",
          "host.cgroupVersion: \"v 1\" is not a word of letters and digits" },
        { "{\"host\":{\"cgroupVersion\":\"v1\",\"cgroupManager\":7,\"security\":"
          "{\"rootless\":true}}}", "host.cgroupManager: expected a string, got an integer" },
        { "[]", "expected an object, got an array" },
        { "nope", "not JSON" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        CHECK(evr_podman_reply_info(200, bad[i].body, strlen(bad[i].body), &r) == EVR_ERR_PODMAN);
        CHECK(strstr(r.msg, bad[i].says) != NULL);
        CHECK(!r.rootless && !r.cgroup_version[0] && !r.cgroup_manager[0]);
    }
    static const char err[] = "{\"cause\":\"x\",\"message\":\"info failed\",\"response\":500}";
    CHECK(evr_podman_reply_info(500, err, strlen(err), &r) == EVR_ERR_PODMAN);
    CHECK(!strcmp(r.msg, "info failed"));
}

/*  start: podman's 204 and 304 alone; remove: its reports read */
static void
test_start_remove(void)
{
    evr_podman_reply_t r;
    CHECK(evr_podman_reply_start(204, NULL, 0, &r) == EVR_OK);
    CHECK(evr_podman_reply_start(304, NULL, 0, &r) == EVR_OK);
    CHECK(evr_podman_reply_start(200, "<html>a page", 12, &r) == EVR_ERR_PODMAN);
    CHECK_CONTAINS(r.msg, "the start was answered HTTP 200 (\"<html>a page\"), where podman "
                          "answers 204 (started) or 304 (running): the container may not have "
                          "started");
    CHECK(evr_podman_reply_start(404, "{\"message\":\"no container\"}", 26, &r)
          == EVR_ERR_PODMAN && r.not_found);

    const char *ok = "[{\"Id\":\"7d8a\",\"RawInput\":\"p2del\"}]";
    CHECK(evr_podman_reply_remove(200, ok, strlen(ok), &r) == EVR_OK);
    CHECK(evr_podman_reply_remove(200, NULL, 0, &r) == EVR_OK);
    CHECK(evr_podman_reply_remove(204, NULL, 0, &r) == EVR_OK);
    const char *nul = "[{\"Id\":\"7d8a\",\"Err\":null}]";
    CHECK(evr_podman_reply_remove(200, nul, strlen(nul), &r) == EVR_OK);
    const char *err = "[{\"Id\":\"7d8a\",\"Err\":\"container is busy\"}]";
    CHECK(evr_podman_reply_remove(200, err, strlen(err), &r) == EVR_ERR_PODMAN);
    CHECK_STR(r.msg, "podman did not remove it: container is busy");
    CHECK(evr_podman_reply_remove(200, "<html>x", 7, &r) == EVR_ERR_PODMAN);
    CHECK_CONTAINS(r.msg, "podman answered with a body that is not JSON (remove: ");
    CHECK(evr_podman_reply_remove(200, "[5]", 3, &r) == EVR_ERR_PODMAN);
    CHECK_STR(r.msg, "podman's answer to remove: [0]: expected an object, got an integer");
    CHECK(evr_podman_reply_remove(200, "{}", 2, &r) == EVR_ERR_PODMAN);
    CHECK(evr_podman_reply_remove(404, "{\"message\":\"no such\"}", 21, &r) == EVR_ERR_PODMAN
          && r.not_found);
}

int
main(void)
{
    EVR_TEST_RUN(test_create);
    EVR_TEST_RUN(test_wait);
    EVR_TEST_RUN(test_inspect_real);
    EVR_TEST_RUN(test_inspect_bad);
    EVR_TEST_RUN(test_list);
    EVR_TEST_RUN(test_errors);
    EVR_TEST_RUN(test_time);
    EVR_TEST_RUN(test_volume);
    EVR_TEST_RUN(test_info);
    EVR_TEST_RUN(test_start_remove);
    EVR_TEST_END();
}
