/*  evr_output.c: frame demultiplexing and secret masking.

    Masking looks at every byte of the output, so it skips fast to the
    next byte that begins a pattern (a secret, or a line of one: memchr
    when all begin with the same byte, a table lookup per byte otherwise),
    tries there only the patterns that begin with its first four bytes (a
    hash table) and the few shorter than four, and copies only the bytes
    it holds back, not all of its input: the thousands of lines a few PEM
    keys make are not tried one by one at every byte. */
#include "evr_output.h"

#include "evr_codec.h"
#include "evr_event.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>

bool
evr_demux_feed(evr_demux_t *d, const uint8_t *data, size_t len, evr_demux_fn *fn, void *arg)
{
    while (len > 0 && !d->bad) {
        if (d->left == 0) {
            size_t take = 8 - d->head_len;
            if (take > len)
                take = len;
            memcpy(d->head + d->head_len, data, take);
            d->head_len += take;
            data += take;
            len -= take;
            if (d->head_len < 8)
                break;
            d->head_len = 0;
            if (d->head[0] > 3 || d->head[1] || d->head[2] || d->head[3]) {
                d->bad = true;
                break;
            }
            d->stream = d->head[0] == 1 ? 1 : 2;
            d->left = (uint64_t) d->head[4] << 24 | (uint64_t) d->head[5] << 16
                    | (uint64_t) d->head[6] << 8 | d->head[7];
            continue;
        }
        size_t take = d->left < len ? (size_t) d->left : len;
        fn(d->stream, data, take, arg);
        d->left -= take;
        data += take;
        len -= take;
    }
    return !d->bad;
}

/*  A pattern: a secret's whole value, or one of its lines (a piece),
    pointing into the masker's copy of the secret. */
typedef struct {
    const char *s;
    size_t len;
} s_pat_t;

struct evr_mask {
    char **secrets;     /* copies, in the order added */
    size_t nsecrets;
    s_pat_t *pats;      /* by first byte, then longest first */
    size_t n, cap;
    size_t pieces;      /* lines masked on their own, as they came (repeats too) */
    size_t dropped;     /* lines not masked on their own: past EVR_MASK_PIECES_MAX */
    size_t start[257];  /* pats beginning with byte b: [start[b], start[b + 1]) */
    bool first[256];    /* bytes a pattern begins with */
    size_t nfirst;      /* how many different ones */
    uint8_t only;       /* the one, when nfirst is 1 */
    size_t shorts[256]; /* in [start[b], start[b + 1]), where those under S_KEY bytes begin */
    uint32_t *head;     /* hash of the first S_KEY bytes -> 1 + first of its chain; 0: none */
    uint32_t *chain;    /* pats' next in their chain, 1 + index; longest first */
    uint32_t hbits;
    uint64_t *seen;     /* a bit per hash of fbits bits: a quick "none begin so" */
    uint32_t fbits;
    uint8_t *pending;   /* raw bytes held back */
    size_t plen, pcap;
    size_t out_max;     /* evr_mask_limit; 0: none */
};

#define S_KEY 4   /* bytes a pattern is looked up by: as many as a line has at least */

/*  The first S_KEY bytes at p hashed to fbits bits (the filter's);
    their top hbits are the table's bucket. */
static uint32_t
s_hash(const evr_mask_t *self, const uint8_t *p)
{
    uint32_t k = (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
               | (uint32_t) p[3] << 24;
    return (k * 2654435761u) >> (32 - self->fbits);
}

static bool
s_seen(const evr_mask_t *self, uint32_t h)
{
    return self->seen[h >> 6] >> (h & 63) & 1;
}

static int
s_pat_order(const void *a, const void *b)
{
    const s_pat_t *x = a, *y = b;
    uint8_t fx = (uint8_t) x->s[0], fy = (uint8_t) y->s[0];
    if (fx != fy)
        return fx < fy ? -1 : 1;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return memcmp(x->s, y->s, x->len);
}

static void
s_pat_push(evr_mask_t *self, const char *s, size_t len)
{
    if (self->n == self->cap) {
        self->cap = self->cap ? 2 * self->cap : 8;
        self->pats = evr_realloc(self->pats, self->cap * sizeof *self->pats);
    }
    self->pats[self->n++] = (s_pat_t) { .s = s, .len = len };
}

/*  Whether a line of a secret is masked on its own: long enough, and not
    blanks only (which would mask every indentation). */
static bool
s_piece_ok(const char *s, size_t len)
{
    if (len < EVR_MASK_PIECE_MIN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return true;
    return false;
}

static bool
s_has(const evr_mask_t *self, const char *secret)
{
    for (size_t i = 0; i < self->nsecrets; i++)
        if (!strcmp(self->secrets[i], secret))
            return true;
    return false;
}

/*  The secret's patterns (nothing for an empty one or one it has): its
    whole value, and each of its lines (split on \n, a final \r dropped)
    when it has more than one, while there is room for them. */
static void
s_add_secret(evr_mask_t *self, const char *secret)
{
    if (!secret || !*secret || s_has(self, secret))
        return;
    char *copy = evr_strdup(secret);
    size_t total = strlen(copy);
    self->secrets = evr_realloc(self->secrets, (self->nsecrets + 1) * sizeof(char *));
    self->secrets[self->nsecrets++] = copy;
    s_pat_push(self, copy, total);
    if (!strchr(copy, '\n') && copy[total - 1] != '\r')
        return;
    for (const char *p = copy; p < copy + total;) {
        const char *nl = memchr(p, '\n', (size_t) (copy + total - p));
        size_t len = nl ? (size_t) (nl - p) : (size_t) (copy + total - p);
        const char *next = p + len + (nl ? 1 : 0);
        if (len && p[len - 1] == '\r')
            len--;
        if (len < total && s_piece_ok(p, len)) {
            if (self->pieces < EVR_MASK_PIECES_MAX) {
                s_pat_push(self, p, len);
                self->pieces++;
            }
            else
                self->dropped++;
        }
        p = next;
    }
}

/*  Sorts the patterns, drops the same one found twice, and indexes them:
    by first byte, by their first S_KEY bytes, the longest. */
static void
s_index(evr_mask_t *self)
{
    if (self->n)   /* pats is NULL until the first */
        qsort(self->pats, self->n, sizeof *self->pats, s_pat_order);
    size_t k = 0;
    for (size_t i = 0; i < self->n; i++)
        if (!k || self->pats[k - 1].len != self->pats[i].len
            || memcmp(self->pats[k - 1].s, self->pats[i].s, self->pats[i].len))
            self->pats[k++] = self->pats[i];
    self->n = k;
    memset(self->first, 0, sizeof self->first);
    self->nfirst = 0;
    /* buckets: two per pattern; filter bits: 64 per pattern (a position
       that begins none is let through once in about 64) */
    for (self->hbits = 4; ((size_t) 1 << self->hbits) < 2 * self->n; self->hbits++)
        ;
    self->fbits = self->hbits + 5 < 12 ? 12 : self->hbits + 5;
    free(self->head);
    free(self->chain);
    free(self->seen);
    self->head = evr_calloc((size_t) 1 << self->hbits, sizeof(uint32_t));
    self->seen = evr_calloc(((size_t) 1 << self->fbits) / 64, sizeof(uint64_t));
    self->chain = evr_calloc(self->n ? self->n : 1, sizeof(uint32_t));
    for (size_t i = 0; i < self->n; i++) {
        const s_pat_t *pt = &self->pats[i];
        uint8_t b = (uint8_t) pt->s[0];
        if (!self->first[b]) {
            self->first[b] = true;
            self->nfirst++;
            self->only = b;
        }
    }
    /* chains built from the end: each longest first, as pats are */
    for (size_t k2 = self->n; k2-- > 0;)
        if (self->pats[k2].len >= S_KEY) {
            uint32_t h = s_hash(self, (const uint8_t *) self->pats[k2].s);
            self->seen[h >> 6] |= (uint64_t) 1 << (h & 63);
            h >>= self->fbits - self->hbits;
            self->chain[k2] = self->head[h];
            self->head[h] = (uint32_t) k2 + 1;
        }
    size_t i = 0;
    for (size_t b = 0; b < 256; b++) {
        while (i < self->n && (uint8_t) self->pats[i].s[0] < b)
            i++;
        self->start[b] = i;
    }
    self->start[256] = self->n;
    for (size_t b = 0; b < 256; b++) {
        size_t k3 = self->start[b];
        while (k3 < self->start[b + 1] && self->pats[k3].len >= S_KEY)
            k3++;
        self->shorts[b] = k3;
    }
}

evr_mask_t *
evr_mask_new(const char *const *secrets, size_t n)
{
    evr_mask_t *self = evr_calloc(1, sizeof *self);
    for (size_t i = 0; i < n; i++)
        s_add_secret(self, secrets[i]);
    s_index(self);
    return self;
}

void
evr_mask_add(evr_mask_t *self, const char *secret)
{
    if (!secret || !*secret || s_has(self, secret))
        return;
    s_add_secret(self, secret);
    s_index(self);
}

void
evr_mask_destroy(evr_mask_t **self_p)
{
    evr_mask_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nsecrets; i++)
        free(self->secrets[i]);
    free(self->secrets);
    free(self->pats);
    free(self->head);
    free(self->chain);
    free(self->seen);
    free(self->pending);
    free(self);
    *self_p = NULL;
}

void
evr_mask_limit(evr_mask_t *self, size_t out_max)
{
    self->out_max = out_max;
}

bool
evr_mask_empty(const evr_mask_t *self)
{
    return self->n == 0;
}

size_t
evr_mask_pending(const evr_mask_t *self)
{
    return self->plen;
}

size_t
evr_mask_dropped(const evr_mask_t *self)
{
    return self->dropped;
}

static void
s_put(uint8_t **out, size_t *out_len, size_t *out_cap, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (*out_len + n > *out_cap) {
        *out_cap = (*out_len + n) * 2;
        *out = evr_realloc(*out, *out_cap);
    }
    memcpy(*out + *out_len, p, n);
    *out_len += n;
}

/*  The first position at or after i in p[0,n) that could begin a pattern
    (by its first byte, and its first S_KEY when there are as many to
    see), or n. */
static size_t
s_next_candidate(const evr_mask_t *self, const uint8_t *p, size_t i, size_t n)
{
    for (;; i++) {
        if (self->nfirst == 1) {
            const uint8_t *q = i < n ? memchr(p + i, self->only, n - i) : NULL;
            i = q ? (size_t) (q - p) : n;
        }
        else
            while (i < n && !self->first[p[i]])
                i++;
        if (i + S_KEY > n || self->shorts[p[i]] < self->start[p[i] + 1]
            || s_seen(self, s_hash(self, p + i)))
            return i;
    }
}

/*  Whether pattern pt stands at p[i, n): 1 matched, -1 could be when
    more comes (not final), 0 not. */
static int
s_try(const s_pat_t *pt, const uint8_t *p, size_t i, size_t n, bool final)
{
    if (i + pt->len <= n)
        return memcmp(p + i, pt->s, pt->len) == 0;
    return !final && memcmp(p + i, pt->s, n - i) == 0 ? -1 : 0;
}

/*  The longest pattern that stands at p[i, n): its index, or -1 none;
    *partial when a longer one could, once more comes. */
static ptrdiff_t
s_match(const evr_mask_t *self, const uint8_t *p, size_t i, size_t n, bool final, bool *partial)
{
    size_t from = self->start[p[i]], to = self->start[p[i] + 1];
    *partial = false;
    if (i + S_KEY <= n) {
        /* those of S_KEY bytes or more: the ones beginning with these */
        uint32_t h = s_hash(self, p + i) >> (self->fbits - self->hbits);
        for (uint32_t c = self->head[h]; c; c = self->chain[c - 1]) {
            int r = s_try(&self->pats[c - 1], p, i, n, final);
            if (r) {
                *partial = r < 0;
                return r > 0 ? (ptrdiff_t) c - 1 : -1;
            }
        }
        from = self->shorts[p[i]];
    }
    for (size_t s = from; s < to; s++) {
        int r = s_try(&self->pats[s], p, i, n, final);
        if (r) {
            *partial = r < 0;
            return r > 0 ? (ptrdiff_t) s : -1;
        }
    }
    return -1;
}

/*  Bytes compared, at most, to grow a match of len bytes (s_overlap). */
#define S_OVERLAP_WORK(len) (4096 + 16 * (len))

/*  A match p[i, end): grown by every pattern that begins inside it and
    ends past it (overlapping secrets, "12345678abcd" and "abcdWXYZ9876"
    in "12345678abcdWXYZ9876": one *** for all, not "***WXYZ9876"), into
    *out_end.  False when one that begins inside could, once more comes.
    The work is bounded by the match's length: a long secret that
    overlaps itself at every byte ("aaaa...") in a long run of it would
    else cost its length at each byte; past the bound the match ends
    there, and the scan goes on after it. */
static bool
s_overlap(const evr_mask_t *self, const uint8_t *p, size_t i, size_t end, size_t n, bool final,
          size_t *out_end)
{
    size_t work = 0;
    for (size_t j = i + 1; (j = s_next_candidate(self, p, j, end)) < end; j++) {
        if (work > S_OVERLAP_WORK(end - i))
            break;
        bool partial;
        ptrdiff_t m = s_match(self, p, j, n, final, &partial);
        if (partial)
            return false;
        work += m >= 0 ? self->pats[m].len : S_KEY;
        if (m >= 0 && j + self->pats[m].len > end)
            end = j + self->pats[m].len;
    }
    *out_end = end;
    return true;
}

/*  Masks p[0,n) into out; returns how many of its bytes are decided (the
    rest could still begin a pattern, unless final). */
static size_t
s_scan(const evr_mask_t *self, const uint8_t *p, size_t n, bool final, uint8_t **out,
       size_t *out_len, size_t *out_cap)
{
    size_t out_max = self->out_max ? self->out_max : SIZE_MAX;
    size_t i = 0, run = 0;   /* run: start of bytes copied as they are */
    while ((i = s_next_candidate(self, p, i, n)) < n) {
        bool partial;
        ptrdiff_t m = s_match(self, p, i, n, final, &partial);
        /* partial: could be a (longer) pattern: decide when more comes,
           rather than mask a shorter one and show the rest */
        if (partial)
            break;
        if (m < 0) {
            i++;
            continue;
        }
        size_t end;
        if (!s_overlap(self, p, i, i + self->pats[m].len, n, final, &end))
            break;   /* one that begins inside could go on: decide when more comes */
        if (*out_len + (i - run) + 3 > out_max)
            break;   /* masked from here on in a later feed */
        s_put(out, out_len, out_cap, p + run, i - run);
        s_put(out, out_len, out_cap, "***", 3);
        i = end;
        run = i;
    }
    size_t fit = out_max > *out_len ? out_max - *out_len : 0;
    if (i - run > fit)
        i = run + fit;   /* decided, but kept for a later feed */
    s_put(out, out_len, out_cap, p + run, i - run);
    return i;
}

size_t
evr_mask_feed(evr_mask_t *self, const uint8_t *raw, size_t len, bool final, uint8_t **out,
              size_t *out_len, size_t *out_cap)
{
    if (self->n == 0 && self->plen == 0 && (!self->out_max || *out_len + len <= self->out_max)) {
        s_put(out, out_len, out_cap, raw, len);
        return len;
    }
    if (len == 0 && self->plen == 0)
        return 0;
    const uint8_t *p = raw;   /* nothing held back: scanned where it is */
    size_t n = len;
    if (self->plen) {
        if (self->plen + len > self->pcap) {
            self->pcap = (self->plen + len) * 2;
            self->pending = evr_realloc(self->pending, self->pcap);
        }
        if (len)
            memcpy(self->pending + self->plen, raw, len);
        self->plen += len;
        p = self->pending;
        n = self->plen;
    }
    size_t consumed = s_scan(self, p, n, final, out, out_len, out_cap);
    size_t left = n - consumed;
    if (p == self->pending)
        memmove(self->pending, self->pending + consumed, left);
    else if (left) {
        if (left > self->pcap) {
            self->pcap = left * 2;
            self->pending = evr_realloc(self->pending, self->pcap);
        }
        memcpy(self->pending, p + consumed, left);
    }
    self->plen = left;
    return consumed;
}

/*  text masked; final false: what could still begin a secret is held
    back, and dropped. */
static char *
s_mask_text(const char *const *secrets, size_t n, const char *text, bool final)
{
    evr_mask_t *m = evr_mask_new(secrets, n);
    uint8_t *out = NULL;
    size_t len = 0, cap = 0;
    evr_mask_feed(m, (const uint8_t *) text, strlen(text), final, &out, &len, &cap);
    evr_mask_destroy(&m);
    char *s = evr_strndup(out ? (const char *) out : "", len);
    free(out);
    return s;
}

char *
evr_mask_text(const char *const *secrets, size_t n, const char *text)
{
    return s_mask_text(secrets, n, text, true);
}

char *
evr_mask_text_cut(const char *const *secrets, size_t n, const char *text)
{
    return s_mask_text(secrets, n, text, false);
}

/* ---------------------------------------------------------------- outputs */

static void
s_warn(char **warn, size_t line, const char *why)
{
    char *w = evr_asprintf("%s%sline %zu: %s", *warn ? *warn : "", *warn ? "\n" : "", line, why);
    free(*warn);
    *warn = w;
}

/*  The first control character of the UTF-8 text v[0,n) but a tab (C0,
    DEL, C1: what a terminal takes as a command, e.g. ESC or \r), as its
    code point, or -1.  A value shown by evrun-cli status must not move
    the cursor nor forge lines. */
static long
s_control(const char *v, size_t n)
{
    const unsigned char *p = (const unsigned char *) v;
    for (size_t i = 0; i < n; i++) {
        if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
            return p[i];
        if (p[i] == 0xc2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
            return p[i + 1];
    }
    return -1;
}

void
evr_outputs_parse(const char *buf, size_t n, evr_strmap_t *out, char **warn)
{
    *warn = NULL;
    size_t line = 0, warned = 0;
    for (size_t at = 0; at < n;) {
        const char *p = buf + at, *nl = memchr(p, '\n', n - at);
        size_t len = nl ? (size_t) (nl - p) : n - at;
        at += len + (nl ? 1 : 0);
        line++;
        if (len && p[len - 1] == '\r')
            len--;
        if (!len)
            continue;
        const char *eq = memchr(p, '=', len);
        const char *why = NULL;
        char key[EVR_SPEC_MAX_NAME + 1], ctl[96];
        long c;
        size_t klen = eq ? (size_t) (eq - p) : 0;
        if (!eq)
            why = "expected KEY=VALUE";
        else if (klen == 0 || klen > EVR_SPEC_MAX_NAME)
            why = "KEY is 1-64 bytes";
        else {
            memcpy(key, p, klen);
            key[klen] = '\0';
            if (!evr_spec_env_name_ok(key))
                why = "KEY is not an environment variable name (letters, digits, _)";
            else if (len - klen - 1 > EVR_OUTPUTS_MAX_VALUE)
                why = "VALUE over 4096 bytes";
            else if (memchr(eq + 1, '\0', len - klen - 1))
                why = "VALUE holds a NUL byte";
            else if (!evr_utf8_valid(eq + 1, len - klen - 1))
                why = "VALUE is not UTF-8 text";
            else if ((c = s_control(eq + 1, len - klen - 1)) >= 0) {
                snprintf(ctl, sizeof ctl, "VALUE holds a control character (U+%04lX): "
                         "one line of text, tabs allowed", (unsigned long) c);
                why = ctl;
            }
            else if (!evr_strmap_get(out, key) && out->n >= EVR_OUTPUTS_MAX_KEYS)
                why = "more than 64 keys: the rest are left out";
        }
        if (why) {
            if (warned++ < 8)   /* a few are enough to tell what is wrong */
                s_warn(warn, line, why);
            continue;
        }
        char *v = evr_strndup(eq + 1, len - klen - 1);
        evr_strmap_set(out, key, v);
        free(v);
    }
    if (warned > 8) {
        char *w = evr_asprintf("%s\n%zu more bad lines skipped", *warn, warned - 8);
        free(*warn);
        *warn = w;
    }
}

char *
evr_step_env_name(const char *prefix, const char *step)
{
    size_t n = strlen(step), p = strlen(prefix);
    if (n && step[n - 1] == ']' && strchr(step, '['))
        n--;
    char *s = evr_asprintf("%s%.*s", prefix, (int) n, step);
    for (char *c = s + p; c < s + p + n; c++)
        *c = (*c >= 'a' && *c <= 'z') ? (char) (*c - 'a' + 'A')
           : ((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')) ? *c : '_';
    return s;
}

char *
evr_outputs_env_name(const char *step, const char *key)
{
    char *name = evr_step_env_name("EVRUN_OUT_", step);
    char *s = evr_asprintf("%s_%s", name, key);
    free(name);
    return s;
}
