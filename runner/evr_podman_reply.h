/*  evr_podman_reply.h: podman's answers, read.

    One pure function per kind of answer the runner reads from the libpod
    REST API: the HTTP status and the body in, an evr_podman_reply_t out.
    No I/O and no curl here, so the unit tests and the fuzzer link this
    file alone (with evr_schema and jansson).

    Nothing in a body is trusted: it may be any bytes, of any length (a
    body over EVR_PODMAN_REPLY_MAX is refused unread), any JSON of any
    shape.  A body that is not what podman 4.3 sends gives EVR_ERR_PODMAN
    with a message that says which answer, which field, what was expected
    and what came; never a crash, never a field taken half-checked.  Every
    text a reply holds (msg, id, state, names) is NUL-terminated valid
    UTF-8 (msg: bytes that are not become '?'), so it may go into events.

    A status of 400 or more is podman's error ({"cause", "message",
    "response"}): msg is its message, for every kind of call ("podman
    answered HTTP 404 with no message" for an empty one).
*/
#ifndef EVR_PODMAN_REPLY_H_INCLUDED
#define EVR_PODMAN_REPLY_H_INCLUDED

#include "evr_common.h"

/*  Bodies longer than this are refused without being parsed: jansson
    takes up to about 20 times a body's size for a body of tiny values.
    The same as evr_http keeps of a body; podman's largest answer, a list,
    takes about 1.5 KB per container. */
#define EVR_PODMAN_REPLY_MAX (1u << 20)
/*  Podman's message at most (its head and its cause), so that the
    callers' "step x: what: " still fits around it in EVR_ERR_MAX. */
#define EVR_PODMAN_MSG_MAX 384
#define EVR_PODMAN_ID_MAX 128      /* an id, NUL included (podman's are 64) */
#define EVR_PODMAN_STATE_MAX 32    /* a state word, NUL included */
#define EVR_PODMAN_NAME_MAX 255    /* a container or volume name, NUL excluded */

typedef struct {
    evr_rc_t rc;                    /* EVR_OK or EVR_ERR_PODMAN */
    char msg[EVR_ERR_MAX];          /* why, when rc; "" otherwise */
    bool cut;                       /* msg is podman's message cut in its middle
                                       (evr_podman_reply_message) */
    bool not_found;                 /* status 404 */
    bool exists;                    /* the name is taken already (create) */
    char id[EVR_PODMAN_ID_MAX];     /* create, inspect: the container's id */
    char state[EVR_PODMAN_STATE_MAX];   /* inspect: "created", "running", ... */
    int64_t exit_code;              /* wait; inspect (0 until it exited) */
    bool oom_killed;                /* inspect: State.OOMKilled, or exit 137 under a
                                       memory limit (HostConfig.Memory) */
    uint64_t finished_at;           /* inspect: State.FinishedAt, wall ns since
                                       1970 (0: absent, or not finished) */
    uint64_t started_at;            /* inspect: State.StartedAt, wall ns since
                                       the epoch (0: never started) */
    char *names;                    /* list: the names, each followed by '\n'
                                       ("" for none); freed by
                                       evr_podman_reply_clear */
    char *dir;                      /* inspect: StaticDir, the container's bundle
                                       directory (conmon's attach socket is in
                                       it), or NULL; freed by
                                       evr_podman_reply_clear */
    bool rootless;                  /* info: host.security.rootless */
    char cgroup_version[EVR_PODMAN_STATE_MAX];  /* info: host.cgroupVersion ("v1", "v2") */
    char cgroup_manager[EVR_PODMAN_STATE_MAX];  /* info: host.cgroupManager ("systemd",
                                                   "cgroupfs"), "" when absent */
} evr_podman_reply_t;

/*  Each parser zeroes *r first and returns r->rc.  status is the HTTP
    status; body need not be NUL-terminated (len bytes; NULL with len 0
    is an empty body). */

/*  An answer whose body says nothing (start, stop, pause, remove, ...):
    EVR_OK below 400 (304 included), else podman's error. */
evr_rc_t evr_podman_reply_plain(long status, const char *body, size_t len,
                                evr_podman_reply_t *r);

/*  POST /containers/{name}/start: 204 (started) or 304 (running);
    another status below 400 (a proxy's page: no podman's) is an error
    that says so (the container may not have started), 400 and above
    podman's error. */
evr_rc_t evr_podman_reply_start(long status, const char *body, size_t len,
                                evr_podman_reply_t *r);

/*  DELETE /containers/{name}: 200 with podman's reports, [{"Id": ...,
    "Err": ...}, ...]: an Err that is a string not empty fails, and a
    body that is no JSON array of objects (an empty one passes: 204);
    400 and above podman's error. */
evr_rc_t evr_podman_reply_remove(long status, const char *body, size_t len,
                                 evr_podman_reply_t *r);

/*  POST /containers/create: {"Id": ...} -> r->id.  An error with "already
    in use" / "already exists" in it (podman answers 500, not 409, for a
    taken name), or a 409, sets r->exists. */
evr_rc_t evr_podman_reply_create(long status, const char *body, size_t len,
                                 evr_podman_reply_t *r);

/*  POST /containers/{name}/wait: a decimal exit code (an int32, spaces
    and a newline around it allowed) -> r->exit_code. */
evr_rc_t evr_podman_reply_wait(long status, const char *body, size_t len,
                               evr_podman_reply_t *r);

/*  GET /containers/{name}/json: Id, State.Status (one lowercase word),
    State.ExitCode (an int32), State.OOMKilled (a boolean; false when
    absent), State.StartedAt (RFC 3339; absent or before 1970, as podman's
    "0001-01-01T00:00:00Z" for a container never started: 0); StaticDir
    in r->dir when it is an absolute path of printable characters of at
    most 4096 bytes (absent, or any other: NULL, not an error). */
evr_rc_t evr_podman_reply_inspect(long status, const char *body, size_t len,
                                  evr_podman_reply_t *r);
/*  A volume's inspect: its Mountpoint (an absolute path of at most 4096
    bytes, no control character) in r->names. */
evr_rc_t evr_podman_reply_volume(long status, const char *body, size_t len,
                                 evr_podman_reply_t *r);

/*  GET /containers/json, /volumes/json: [{"Names": [name, ...]}, ...] or
    [{"Name": name}, ...] -> r->names, those starting with prefix (podman's
    filter is a pattern match).  A name that is not a podman name
    ([A-Za-z0-9][A-Za-z0-9_.-]*, at most EVR_PODMAN_NAME_MAX) fails the
    whole answer: names go back into requests and are split at '\n'. */
evr_rc_t evr_podman_reply_list(long status, const char *body, size_t len, const char *prefix,
                               evr_podman_reply_t *r);

/*  GET /libpod/info: host.security.rootless (true or false),
    host.cgroupVersion (a word of letters and digits: "v1", "v2") and
    host.cgroupManager (such a word when present; absent: ""). */
evr_rc_t evr_podman_reply_info(long status, const char *body, size_t len,
                               evr_podman_reply_t *r);

/*  Frees what a reply holds (names); r stays usable. */
void evr_podman_reply_clear(evr_podman_reply_t *r);

/*  The text of podman's error body ({"cause", "message", "response"}: its
    message; any other body as it is, but for trailing white space) in
    buf, NUL-terminated valid UTF-8 (a byte that is not UTF-8, or a NUL,
    becomes '?').  A text longer than
    buf keeps its head and its tail joined by " [...] ", cut between
    characters: Go wraps errors as "context: ...: cause", so the cause is
    at the end (e.g. after a 2 KB dump of the copier's request).  size at
    least 64.  True when the text was cut. */
bool evr_podman_reply_message(const char *body, size_t len, char *buf, size_t size);

/*  RFC 3339 time ("2026-11-29T20:13:45.52474318Z", "...+02:00") as wall
    ns since the epoch in *ns (0 for a time before 1970).  False when s[0,
    len) is not such a time or lies past the year 2554 (where uint64 ns
    end). */
bool evr_podman_reply_time(const char *s, size_t len, uint64_t *ns);

#endif
