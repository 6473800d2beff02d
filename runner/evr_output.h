/*  evr_output.h: the step output path, before the store.

    evr_demux_t splits podman's multiplexed stream (frames of 1 byte stream
    id, 3 zero bytes, u32 big-endian length, payload) incrementally: frames
    may be split across reads anywhere, even inside the 8-byte header.
    Payload is passed through as it arrives, never buffered whole.

    evr_mask_t replaces each secret value with "***" in one stream's bytes,
    and each line of a secret of several lines too (a PEM key's line
    printed alone: `head -2 key`), also when a value or a line is split
    across two reads: it holds back the bytes that could still begin one
    until more input (or the end) decides.  It reports how many raw bytes
    each masked piece stands for, so stored chunks keep exact raw offsets.
*/
#ifndef EVR_OUTPUT_H_INCLUDED
#define EVR_OUTPUT_H_INCLUDED

#include "evr_common.h"
#include "evr_field.h"

/* ------------------------------------------------------------------ demux */

typedef void (evr_demux_fn)(int stream, const uint8_t *data, size_t len, void *arg);

typedef struct {
    uint8_t head[8];
    size_t head_len;        /* header bytes collected */
    uint64_t left;          /* payload bytes left in the current frame */
    int stream;             /* of the current frame: 1 stdout, 2 stderr */
    bool bad;               /* a header with an unknown stream id was seen */
} evr_demux_t;

/*  Feeds bytes; calls fn for each run of payload.  Stream 0 (stdin echo)
    and 3 (podman's system errors) are passed as stderr.  Returns false
    once the stream is corrupt (a nonzero padding byte or unknown id);
    the caller should then stop reading. */
bool evr_demux_feed(evr_demux_t *d, const uint8_t *data, size_t len, evr_demux_fn *fn, void *arg);

/* ------------------------------------------------------------------- mask */

typedef struct evr_mask evr_mask_t;

/*  A line of a secret is masked on its own from this many bytes. */
#define EVR_MASK_PIECE_MIN 4
/*  Lines masked on their own, at most, by one masker (all its secrets). */
#define EVR_MASK_PIECES_MAX 4096

/*  secrets: values to hide (empty ones and repeats are ignored).  Copies
    them.  Each is masked whole, whatever its length (a secret of one byte
    masks every such byte); secrets that overlap where they stand are
    masked as one "***" (nothing of either shows).  A secret with a \n (or ending in \r) is
    split into lines, on \n, a final \r of each dropped; each line of at
    least EVR_MASK_PIECE_MIN bytes, not only blanks (spaces, tabs), is
    masked on its own too, wherever it stands; shorter ones are not (they
    are masked as part of the whole).  Past EVR_MASK_PIECES_MAX lines (in
    the order the secrets come, repeats counted), a secret's lines are
    not masked on their own (its whole value still is): evr_mask_dropped
    counts them. */
evr_mask_t *evr_mask_new(const char *const *secrets, size_t n);
void evr_mask_destroy(evr_mask_t **self_p);

/*  Adds a secret (copied; nothing for an empty one or one it has) from
    the next byte fed on; the bytes held back (pending) are scanned for
    it too, so a value split across the feeds around the call is masked. */
void evr_mask_add(evr_mask_t *self, const char *secret);

/*  Adds raw bytes.  Appends to out (grown as needed, *out_len updated) the
    masked bytes that are now certain, and returns how many raw bytes they
    stand for.  With final, nothing is held back (but for evr_mask_limit). */
size_t evr_mask_feed(evr_mask_t *self, const uint8_t *raw, size_t len, bool final,
                     uint8_t **out, size_t *out_len, size_t *out_cap);

/*  Bounds what feed appends: *out_len never passes out_max (0: no bound;
    at least 3, the length of a mask).  A secret shorter than its mask
    ("***") makes the output longer than the input, three times for a
    secret of one byte; what does not fit is held back (pending) for the
    next feed, also a final one: the caller empties *out and feeds again
    while evr_mask_pending says bytes are left. */
void evr_mask_limit(evr_mask_t *self, size_t out_max);

/*  Raw bytes held back, waiting for more input. */
size_t evr_mask_pending(const evr_mask_t *self);

/*  Lines of secrets not masked on their own, for EVR_MASK_PIECES_MAX. */
size_t evr_mask_dropped(const evr_mask_t *self);

/*  text masked with secrets (as evr_mask_new takes them), NUL-terminated;
    caller frees. */
char *evr_mask_text(const char *const *secrets, size_t n, const char *text);
/*  The same for a text cut short (a bounded read of a longer one): a tail
    that could be the start of a secret (or of a line of one) is dropped,
    so a secret cut through shows none of its bytes. */
char *evr_mask_text_cut(const char *const *secrets, size_t n, const char *text);

/*  True when there is nothing to mask (feed then copies straight through). */
bool evr_mask_empty(const evr_mask_t *self);

/* ---------------------------------------------------------------- outputs */

/*  Parses what a step wrote to $EVRUN_OUTPUT (buf[0..n), untrusted):
    KEY=VALUE lines, KEY an environment variable name of at most 64 bytes,
    VALUE the rest of the line (a final CR dropped; at most
    EVR_OUTPUTS_MAX_VALUE bytes of UTF-8, no control character but a
    tab); blank lines are skipped, a later KEY replaces an earlier one; at
    most EVR_OUTPUTS_MAX_KEYS keys.  Each line
    that is not so is skipped and said in *warn (one line per problem,
    "line N: why"; NULL when none; caller frees).  Fills out (zeroed by the
    caller; caller frees). */
void evr_outputs_parse(const char *buf, size_t n, evr_strmap_t *out, char **warn);

/*  PREFIX<STEP>: an environment variable named after a step, as every
    such variable is (EVRUN_OUT_, EVRUN_FAILED_REASON_): STEP is the
    step's name upper-cased, each byte other than a letter or digit as
    '_', a matrix name's final ']' dropped (build[OS=linux] ->
    BUILD_OS_LINUX).  Caller frees. */
char *evr_step_env_name(const char *prefix, const char *step);
/*  EVRUN_OUT_<STEP>_<KEY>: the variable a later step gets for output key
    of step (STEP as evr_step_env_name makes it).  Caller frees. */
char *evr_outputs_env_name(const char *step, const char *key);

#endif
