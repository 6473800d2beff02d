/*  evr_common.h: the few things every evrun module shares.

    One error enum (evr_rc_t) propagated the same way everywhere, with
    evr_strerror(); allocation helpers that abort on out-of-memory so call
    sites carry no OOM branches; and evr_err_t, a bounded buffer that
    carries a human-readable message ("steps[1].needs: unknown step") next
    to the code.  Modules that wrap a library translate its codes here and
    keep the library's own text in the message.
*/
#ifndef EVR_COMMON_H_INCLUDED
#define EVR_COMMON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum {
    EVR_OK = 0,
    EVR_ERR_PROTO,      /* malformed or invalid message on the wire */
    EVR_ERR_SPEC,       /* invalid pipeline specification */
    EVR_ERR_STORE,      /* event store failure */
    EVR_ERR_PODMAN,     /* podman REST API failure */
    EVR_ERR_CONFIG,     /* bad configuration or command line */
    EVR_ERR_IO,         /* file or socket I/O failure */
    EVR_ERR_LIMIT,      /* a fixed size, count or depth limit was exceeded */
    EVR_ERR_NOTFOUND,   /* the thing asked for does not exist */
    EVR_ERR_STATE       /* illegal state transition */
} evr_rc_t;

/*  Returns a static, never-NULL description of rc. */
const char *evr_strerror(evr_rc_t rc);

/*  A message to go with an evr_rc_t.  Fixed size, as long as the
    protocol's reasons (EVR_REASON_MAX, which an error often becomes):
    longer messages are cut on a character, ending with EVR_CUT_MARK,
    never overflow. */
#define EVR_ERR_MAX 1024
typedef struct {
    char msg[EVR_ERR_MAX];
} evr_err_t;

/*  The protocol's longest `reason` (events, control, status) and
    `message` (error, ok) in bytes (schema/PROTOCOL.md). */
#define EVR_REASON_MAX 1024
#define EVR_MESSAGE_MAX 4096

/*  What a text cut to fit its limit ends with: "…" (U+2026, 3 bytes). */
#define EVR_CUT_MARK "\xe2\x80\xa6"

/*  Cuts the UTF-8 text s in place to at most max bytes when it is
    longer: on a character boundary, EVR_CUT_MARK last (max of 3 or more).
    Returns its length. */
size_t evr_text_fit(char *s, size_t max);
/*  The same when s is known to be cut already (a vsnprintf that did not
    fit): cut to at most max bytes with EVR_CUT_MARK, whatever its
    length. */
size_t evr_text_cut(char *s, size_t max);
/*  Copies s into out (len bytes, len > 0) with each control character
    written as \n, \r, \t, \xHH (below 0x20, and 0x7f) or \u00HH (C1,
    U+0080-U+009F), and each byte that is not part of a valid UTF-8
    character as \xHH, so that a value quoted in a message stays on its
    line, sends no terminal escape and is UTF-8; when it does not fit, cut between
    characters and escapes, EVR_CUT_MARK last.  Returns out. */
char *evr_text_escape_ctl(const char *s, char *out, size_t len);
/*  As evr_text_escape_ctl, and each backslash written as \\, so that the
    escaped text says what the sender sent: a reason that holds the four
    characters \x1b reads \\x1b, one that held ESC \x1b.  For a text
    escaped once and shown as it is (a client's reason); a message that
    quotes values escaped already (evr_diag) keeps evr_text_escape_ctl. */
char *evr_text_escape(const char *s, char *out, size_t len);
/*  Whether s holds a control character (below 0x20, or 0x7f). */
bool evr_text_has_ctl(const char *s);

/*  How a child that a wait status st describes ended, in the words
    evrun's reasons use: "exit N", or "killed by SIGNAME (signal N)" (as
    a host step that a limit ended is "killed by SIGKILL"; "killed by
    signal N" for a real-time one); into buf (64
    bytes or more), returned. */
const char *evr_wait_text(int st, char *buf, size_t size);

/*  A binary heap of pointers, its root the item before (below) every
    other by before(a, b) (true when a goes before b): the item at i of
    the heap h (n items) sifted up, or down, to its place. */
typedef bool(evr_heap_before_fn)(const void *a, const void *b);
void evr_heap_up(void **h, size_t i, evr_heap_before_fn *before);
void evr_heap_down(void **h, size_t n, size_t i, evr_heap_before_fn *before);

/*  Formats a message into err (if err is not NULL) and returns rc, so a
    failing function can end with `return evr_err_set(err, rc, ...)`.  The
    arguments may include err->msg itself, to wrap a cause:
    `evr_err_set(err, rc, "sending to %s: %s", ep, err->msg)`. */
evr_rc_t evr_err_set(evr_err_t *err, evr_rc_t rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  A failed write of path (errnum an errno) as EVR_ERR_IO, saying the
    cause first: "no space left on device writing PATH", "disk quota
    exceeded writing PATH", else "writing PATH: <strerror>". */
evr_rc_t evr_err_write(evr_err_t *err, const char *path, int errnum);

/*  Allocation that aborts the process with a message on failure.  The
    result of each is owned by the caller and released with free(). */
void *evr_malloc(size_t size);
void *evr_calloc(size_t n, size_t size);
void *evr_realloc(void *p, size_t size);
char *evr_strdup(const char *s);
char *evr_strndup(const char *s, size_t n);
/*  printf into a new string, caller owns it. */
char *evr_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*  Wall-clock time in nanoseconds since the epoch, and a monotonic clock
    in nanoseconds for measuring durations. */
uint64_t evr_now_ns(void);
uint64_t evr_mono_ns(void);
/*  Wall-clock ns as local "YYYY-MM-DD HH:MM:SS" in buf ("-" for 0). */
void evr_time_format(uint64_t ns, char *buf, size_t size);

/*  Saturating arithmetic for times: a + b, and ms in ns, UINT64_MAX
    (never) where the exact value would not fit.  Specs bound their
    durations (EVR_SPEC_MAX_DURATION_MS); these keep a deadline computed
    from one in range all the same. */
static inline uint64_t
evr_add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static inline uint64_t
evr_ms_to_ns(uint64_t ms)
{
    return ms > UINT64_MAX / 1000000u ? UINT64_MAX : ms * 1000000u;
}

#define EVR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*  The 64-bit FNV-1a hash of len bytes at data (inline: the broker hashes
    every submit's routing id and job id). */
static inline uint64_t
evr_fnv1a(const void *data, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ ((const uint8_t *) data)[i]) * 1099511628211ull;
    return h;
}

/*  mkdir -p (0755 for new directories). */
evr_rc_t evr_mkdirs(const char *path, evr_err_t *err);
/*  The same with mode for each directory it makes (what exists is left
    as it is): 0700 for a private tree and its missing parents. */
evr_rc_t evr_mkdirs_mode(const char *path, mode_t mode, evr_err_t *err);

#endif
