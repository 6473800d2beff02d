/*  fuzz_podman: libFuzzer target for the readers of podman's answers
    (runner/evr_podman_reply.c).

    An input is "STATUS WORDS\n" and a body (the seeds in corpus_podman/
    are real podman 4.3.1 answers in that form, "200 inspect\n{...}";
    bad-* are made by hand); an input that does not start with three
    digits and a space or newline is a body answered with 200.  Every
    reader runs on the body, whatever the words say, each time on an
    exact-size copy so an over-read is caught: plain, create, wait,
    inspect, list (prefix "evrun-"), volume, info, the error text, and the RFC 3339 time
    reader.

    Checked beyond "no crash, no leak":
    - rc is EVR_OK or EVR_ERR_PODMAN; a status of 400 or more always fails;
    - a failure says why (msg not empty) and keeps nothing half-read (no
      id, state, names);
    - every text is NUL-terminated valid UTF-8 within its buffer;
    - an id is letters and digits, a state lowercase letters, an exit code
      an int32, each listed name starts with the prefix and is a podman
      name;
    - the same input read again gives the same reply.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_codec.h"
#include "evr_podman_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_CHECK(cond, ...)                                                                       \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_podman: check failed: %s: ", #cond);                           \
            fprintf(stderr, __VA_ARGS__);                                                        \
            fprintf(stderr, "\n");                                                               \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

#define S_PREFIX "evrun-"

typedef enum { S_PLAIN, S_CREATE, S_WAIT, S_INSPECT, S_LIST, S_VOLUME, S_INFO, S_KINDS } s_kind_t;
static const char *const s_names[] = { "plain", "create", "wait", "inspect", "list", "volume",
                                       "info" };

/*  s is NUL-terminated within size and valid UTF-8. */
static void
s_check_text(const char *what, const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    S_CHECK(n < size, "%s is not NUL-terminated", what);
    S_CHECK(evr_utf8_valid(s, n), "%s is not UTF-8", what);
}

static bool
s_all(const char *s, const char *set)
{
    return strspn(s, set) == strlen(s);
}

#define S_LOWER "abcdefghijklmnopqrstuvwxyz"
#define S_ALNUM S_LOWER "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

static void
s_check_names(const char *names)
{
    size_t n = strlen(names);
    S_CHECK(n == 0 || names[n - 1] == '\n', "names do not end with a newline");
    for (const char *p = names; *p;) {
        const char *nl = strchr(p, '\n');
        size_t k = (size_t) (nl - p);
        S_CHECK(k >= strlen(S_PREFIX) && memcmp(p, S_PREFIX, strlen(S_PREFIX)) == 0,
                "a name without the prefix: %.*s", (int) k, p);
        S_CHECK(k <= EVR_PODMAN_NAME_MAX, "a name of %zu bytes", k);
        for (size_t i = 0; i < k; i++)
            S_CHECK(strchr(S_ALNUM "_.-", p[i]) && p[i], "a name with byte %02x", p[i]);
        p = nl + 1;
    }
}

static evr_rc_t
s_read(s_kind_t kind, long status, const char *body, size_t len, evr_podman_reply_t *r)
{
    switch (kind) {
    case S_CREATE: return evr_podman_reply_create(status, body, len, r);
    case S_WAIT: return evr_podman_reply_wait(status, body, len, r);
    case S_INSPECT: return evr_podman_reply_inspect(status, body, len, r);
    case S_LIST: return evr_podman_reply_list(status, body, len, S_PREFIX, r);
    case S_VOLUME: return evr_podman_reply_volume(status, body, len, r);
    case S_INFO: return evr_podman_reply_info(status, body, len, r);
    default: return evr_podman_reply_plain(status, body, len, r);
    }
}

static void
s_check_reply(s_kind_t kind, long status, const char *body, size_t len)
{
    const char *k = s_names[kind];
    evr_podman_reply_t r, again;
    evr_rc_t rc = s_read(kind, status, body, len, &r);
    S_CHECK(rc == r.rc, "%s: returned %d, r.rc %d", k, (int) rc, (int) r.rc);
    S_CHECK(rc == EVR_OK || rc == EVR_ERR_PODMAN, "%s: rc %s", k, evr_strerror(rc));
    s_check_text("msg", r.msg, sizeof r.msg);
    s_check_text("id", r.id, sizeof r.id);
    s_check_text("state", r.state, sizeof r.state);
    s_check_text("cgroup_version", r.cgroup_version, sizeof r.cgroup_version);
    s_check_text("cgroup_manager", r.cgroup_manager, sizeof r.cgroup_manager);
    if (status >= 400)
        S_CHECK(rc, "%s: status %ld accepted", k, status);
    S_CHECK(r.not_found == (rc && status == 404), "%s: not_found %d for %ld", k, r.not_found,
            status);
    if (rc) {
        S_CHECK(r.msg[0], "%s: failed without a message", k);
        S_CHECK(!r.id[0] && !r.state[0] && !r.names && !r.oom_killed && !r.started_at
                    && !r.rootless && !r.cgroup_version[0] && !r.cgroup_manager[0],
                "%s: failed and kept a field: %s", k, r.msg);
    }
    else {
        S_CHECK(!r.msg[0] && !r.cut && !r.exists, "%s: succeeded with a message: %s", k, r.msg);
        S_CHECK(s_all(r.id, S_ALNUM), "%s: id %s", k, r.id);
        S_CHECK(s_all(r.state, S_LOWER), "%s: state %s", k, r.state);
        S_CHECK(r.exit_code >= INT32_MIN && r.exit_code <= INT32_MAX, "%s: exit code %lld", k,
                (long long) r.exit_code);
        S_CHECK((kind == S_CREATE || kind == S_INSPECT) == (r.id[0] != '\0'), "%s: id %s", k,
                r.id);
        S_CHECK((kind == S_INSPECT) == (r.state[0] != '\0'), "%s: state %s", k, r.state);
        S_CHECK((kind == S_INFO) == (r.cgroup_version[0] != '\0'), "%s: cgroup version %s", k,
                r.cgroup_version);
        S_CHECK(s_all(r.cgroup_version, S_ALNUM) && s_all(r.cgroup_manager, S_ALNUM),
                "%s: cgroup words %s %s", k, r.cgroup_version, r.cgroup_manager);
        S_CHECK(kind == S_INFO || !r.rootless, "%s: rootless", k);
        S_CHECK((kind == S_LIST || kind == S_VOLUME) == (r.names != NULL), "%s: names", k);
        if (r.dir)   /* inspect: an absolute path, no control character */
            for (const char *c = r.dir; *c; c++)
                S_CHECK(r.dir[0] == '/' && (unsigned char) *c >= 0x20 && *c != 0x7f,
                        "inspect: StaticDir byte %02x", *c);
        if (r.names && kind == S_LIST)
            s_check_names(r.names);
        if (r.names && kind == S_VOLUME) {   /* an absolute path, no control character */
            S_CHECK(r.names[0] == '/' && strlen(r.names) <= 4096, "volume: %s", r.names);
            for (const char *c = r.names; *c; c++)
                S_CHECK((unsigned char) *c >= 0x20 && *c != 0x7f, "volume: byte %02x", *c);
        }
    }
    s_read(kind, status, body, len, &again);
    S_CHECK(again.rc == r.rc && !strcmp(again.msg, r.msg) && !strcmp(again.id, r.id)
            && !strcmp(again.state, r.state) && again.exit_code == r.exit_code
            && again.oom_killed == r.oom_killed && again.started_at == r.started_at
            && !again.names == !r.names && (!r.names || !strcmp(again.names, r.names))
            && !again.dir == !r.dir && (!r.dir || !strcmp(again.dir, r.dir))
            && again.rootless == r.rootless && !strcmp(again.cgroup_version, r.cgroup_version)
            && !strcmp(again.cgroup_manager, r.cgroup_manager),
            "%s: read twice, two replies", k);
    evr_podman_reply_clear(&again);
    evr_podman_reply_clear(&r);
    S_CHECK(!r.names && !r.dir, "clear left names");
}

static void
s_check_message(const char *body, size_t len)
{
    static const size_t sizes[] = { 64, 100, 384, 2048 };
    for (size_t i = 0; i < EVR_ARRAY_LEN(sizes); i++) {
        char *buf = malloc(sizes[i]);
        bool cut = evr_podman_reply_message(body, len, buf, sizes[i]);
        s_check_text("message", buf, sizes[i]);
        if (cut)
            S_CHECK(strstr(buf, " [...] "), "cut without the mark: %s", buf);
        free(buf);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long status = 200;
    size_t skip = 0;
    if (size >= 4 && memchr("0123456789", data[0], 10) && memchr("0123456789", data[1], 10)
        && memchr("0123456789", data[2], 10) && (data[3] == ' ' || data[3] == '\n')) {
        status = (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0');
        const uint8_t *nl = memchr(data, '\n', size < 64 ? size : 64);
        skip = nl ? (size_t) (nl - data) + 1 : 4;
    }
    size_t len = size - skip;
    char *body = malloc(len ? len : 1);   /* exact size: an over-read is caught */
    memcpy(body, data + skip, len);
    for (int k = 0; k < S_KINDS; k++)
        s_check_reply((s_kind_t) k, status, body, len);
    s_check_message(body, len);
    uint64_t ns;
    if (evr_podman_reply_time(body, len, &ns))
        S_CHECK(len >= 20, "a time of %zu bytes", len);
    free(body);
    return 0;
}
