/*  evr_output.c: frame demultiplexing and secret masking.

    Masking looks at every byte of the output, so it skips fast to the
    next byte that begins a secret (memchr when all secrets begin with
    the same byte, a table lookup per byte otherwise) and copies only the
    bytes it holds back, not all of its input. */
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

struct evr_mask {
    char **secrets;     /* longest first */
    size_t *lens;
    size_t n, maxlen;
    bool first[256];    /* bytes a secret begins with */
    size_t nfirst;      /* how many different ones */
    uint8_t only;       /* the one, when nfirst is 1 */
    uint8_t *pending;   /* raw bytes held back */
    size_t plen, pcap;
    size_t out_max;     /* evr_mask_limit; 0: none */
};

static int
s_longer_first(const void *a, const void *b)
{
    size_t la = strlen(*(char *const *) a), lb = strlen(*(char *const *) b);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

/*  The lengths, the longest and the first bytes, from the secrets
    (sorted longest first). */
static void
s_index(evr_mask_t *self)
{
    qsort(self->secrets, self->n, sizeof(char *), s_longer_first);
    free(self->lens);
    self->lens = evr_calloc(self->n ? self->n : 1, sizeof(size_t));
    memset(self->first, 0, sizeof self->first);
    self->nfirst = 0;
    self->maxlen = 0;
    for (size_t i = 0; i < self->n; i++) {
        self->lens[i] = strlen(self->secrets[i]);
        if (self->lens[i] > self->maxlen)
            self->maxlen = self->lens[i];
        uint8_t b = (uint8_t) self->secrets[i][0];
        if (!self->first[b]) {
            self->first[b] = true;
            self->nfirst++;
            self->only = b;
        }
    }
}

evr_mask_t *
evr_mask_new(const char *const *secrets, size_t n)
{
    evr_mask_t *self = evr_calloc(1, sizeof *self);
    self->secrets = evr_calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        if (secrets[i] && *secrets[i])
            self->secrets[self->n++] = evr_strdup(secrets[i]);
    s_index(self);
    return self;
}

void
evr_mask_add(evr_mask_t *self, const char *secret)
{
    if (!secret || !*secret)
        return;
    for (size_t i = 0; i < self->n; i++)
        if (!strcmp(self->secrets[i], secret))
            return;
    self->secrets = evr_realloc(self->secrets, (self->n + 1) * sizeof(char *));
    self->secrets[self->n++] = evr_strdup(secret);
    s_index(self);
}

void
evr_mask_destroy(evr_mask_t **self_p)
{
    evr_mask_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++)
        free(self->secrets[i]);
    free(self->secrets);
    free(self->lens);
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

/*  The first position at or after i in p[0,n) that begins a secret, or n. */
static size_t
s_next_candidate(const evr_mask_t *self, const uint8_t *p, size_t i, size_t n)
{
    if (self->nfirst == 1) {
        const uint8_t *q = i < n ? memchr(p + i, self->only, n - i) : NULL;
        return q ? (size_t) (q - p) : n;
    }
    while (i < n && !self->first[p[i]])
        i++;
    return i;
}

/*  Masks p[0,n) into out; returns how many of its bytes are decided (the
    rest could still begin a secret, unless final). */
static size_t
s_scan(const evr_mask_t *self, const uint8_t *p, size_t n, bool final, uint8_t **out,
       size_t *out_len, size_t *out_cap)
{
    size_t out_max = self->out_max ? self->out_max : SIZE_MAX;
    size_t i = 0, run = 0;   /* run: start of bytes copied as they are */
    bool full = false;
    while (!full && (i = s_next_candidate(self, p, i, n)) < n) {
        bool matched = false, partial = false;
        for (size_t s = 0; s < self->n; s++) {
            size_t sl = self->lens[s];
            if (p[i] != (uint8_t) self->secrets[s][0])
                continue;
            if (i + sl <= n) {
                if (memcmp(p + i, self->secrets[s], sl) == 0) {
                    if (*out_len + (i - run) + 3 > out_max) {
                        full = true;   /* masked from here on in a later feed */
                        break;
                    }
                    s_put(out, out_len, out_cap, p + run, i - run);
                    s_put(out, out_len, out_cap, "***", 3);
                    i += sl;
                    run = i;
                    matched = true;
                    break;
                }
            }
            else if (!final && memcmp(p + i, self->secrets[s], n - i) == 0) {
                /* could be this (longer) secret: decide when more comes,
                   rather than mask a shorter one and show the rest */
                partial = true;
                break;
            }
        }
        if (partial || full)
            break;
        if (!matched)
            i++;
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

/* ---------------------------------------------------------------- outputs */

static void
s_warn(char **warn, size_t line, const char *why)
{
    char *w = evr_asprintf("%s%sline %zu: %s", *warn ? *warn : "", *warn ? "\n" : "", line, why);
    free(*warn);
    *warn = w;
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
        char key[EVR_SPEC_MAX_NAME + 1];
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
            else if (memchr(eq + 1, '\0', len - klen - 1)
                     || !evr_utf8_valid(eq + 1, len - klen - 1))
                why = "VALUE is not UTF-8 text";
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
