/*  evr_eventread.c: the replay decoder of stored events (evr_eventread.h).

    A cursor reads the msgpack bytes by hand, driven by the same field
    tables as evr_codec.c: the event's table for the header, the type's
    data table for the payload.  Each reading function answers true (taken)
    or false (declined); a decline is never an error here: the bytes go to
    evr_event_decode(), which either decodes them (an encoding this reader
    does not take, such as a str8 header for a short string) or says
    exactly what is wrong.  So the checks below only need to be at least
    as strict as the full decoder's, never to word an error.
*/
#include "evr_eventread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_codec.h"
#include "evr_codec_read.h"

/*  The strings of one event: the header's job id, the data's strings (all
    limits together under 2 KiB) and up to EVR_SPEC_MAX_STEPS step names. */
#define S_ARENA (EVR_SPEC_MAX_STEPS * (EVR_SPEC_MAX_NAME + 1) + 8192)
/*  ... plus a step.outputs map of the usual size (a larger one falls back). */
#define S_ARENA_KEPT (EVR_OUTPUTS_MAX_BYTES + EVR_OUTPUTS_MAX_KEYS * 2)

/*  EVR_EVENTREAD_CHECK: specs the full decoder took, by their bytes (a
    spec's check reads nothing outside it, and most jobs of a log share a
    few pipelines' specs): one met again is not decoded again. */
#define S_CHECKED 64
#define S_CHECKED_BYTES (1u << 20)

typedef struct {
    uint64_t hash;
    size_t len;
    uint8_t *bytes;
} s_checked_t;

/*  A table's keys as s_key compares them: each key's length and its first
    8 bytes (zero-padded) as a word, and the mask of its required fields;
    made the first time a table is met.  The tables an event can hold are
    the header's, the data types', the spec's and the step's (about 30):
    S_TYPES slots, probed by the table's address; a table met when they
    are full is read by the plain comparisons. */
#define S_TYPES 64

/*  The event types' names, by the hash of their length and first 8 bytes:
    slots for at most S_TYPE_SLOTS - 1 names. */
#define S_TYPE_SLOTS 64

static inline size_t
s_type_hash(uint64_t w, uint32_t n)
{
    return (size_t) (((w ^ n) * 0x9E3779B97F4A7C15ull) >> 58);   /* 6 bits: 64 slots */
}

typedef struct {
    uint64_t w, w2;   /* bytes 0-7 and 8-15 */
    uint32_t n;
} s_kinfo_t;

typedef struct {
    const evr_rectype_t *type;
    uint64_t required;
    s_kinfo_t *k;   /* type->nfields */
} s_keys_t;

struct evr_eventread {
    unsigned what;
    uint64_t fallbacks;
    bool walked;            /* this decode only walked a spec (EVR_EVENTREAD_CHECK) ... */
    const uint8_t *spec_at; /* ... these bytes */
    size_t spec_len;
    s_checked_t checked[S_CHECKED];
    size_t nchecked, checked_bytes;
    const evr_field_t *job_f;           /* the header's job id ... */
    char job_ok[EVR_ULID_LEN + 1];      /* ... and the last one that passed its check */
    const evr_field_t *steps_f;         /* the spec's steps */
    const evr_field_t *type_f;          /* the header's type ... */
    size_t type_len[EVR_EV_COUNT_ + 1]; /* ... the lengths of its names ... */
    uint8_t type_slot[S_TYPE_SLOTS];    /* ... and their index + 1 by s_type_hash (0: none) */
    bool type_hashed;                   /* (false: too many names, searched in turn) */
    evr_event_t ev;         /* the fast result: strings in arena */
    evr_event_t full;       /* a fallback's result, heap-owned */
    evr_spec_t spec;        /* job.accepted: the step names only */
    evr_step_t steps[EVR_SPEC_MAX_STEPS];
    char *kept_k[EVR_OUTPUTS_MAX_KEYS], *kept_v[EVR_OUTPUTS_MAX_KEYS];   /* step.outputs */
    s_keys_t keys[S_TYPES];
    uint64_t mask[9];       /* mask[n]: the first n bytes of a word */
    size_t used;
    char arena[S_ARENA + S_ARENA_KEPT];
};

evr_eventread_t *
evr_eventread_new(unsigned what)
{
    evr_eventread_t *self = evr_calloc(1, sizeof *self);
    self->what = what;
    self->job_f = evr_rec_field(&evr_event_type, "job");
    self->type_f = evr_rec_field(&evr_event_type, "type");
    self->steps_f = evr_rec_field(&evr_spec_type, "steps");
    for (size_t i = 0; i < EVR_EV_COUNT_ + 1 && self->type_f->names[i]; i++)
        self->type_len[i] = strlen(self->type_f->names[i]);
    for (unsigned n = 0; n <= 8; n++) {   /* byte order: as memcpy loads a word */
        uint8_t b[8] = { 0 };
        memset(b, 0xff, n);
        memcpy(&self->mask[n], b, sizeof b);
    }
    size_t names = 0;
    while (self->type_f->names[names])
        names++;
    self->type_hashed = names < S_TYPE_SLOTS && names < UINT8_MAX
                     && names <= EVR_EV_COUNT_ + 1;   /* type_len's room */
    for (size_t v = 0; self->type_hashed && v < names; v++) {
        const char *name = self->type_f->names[v];
        if (!*name)
            continue;   /* the zero value: never accepted */
        uint64_t w;
        uint8_t b[8] = { 0 };
        memcpy(b, name, self->type_len[v] < 8 ? self->type_len[v] : 8);
        memcpy(&w, b, sizeof b);
        size_t h = s_type_hash(w, (uint32_t) self->type_len[v]);
        while (self->type_slot[h])
            h = (h + 1) & (S_TYPE_SLOTS - 1);
        self->type_slot[h] = (uint8_t) (v + 1);
    }
    return self;
}

void
evr_eventread_destroy(evr_eventread_t **self_p)
{
    evr_eventread_t *self = *self_p;
    if (!self)
        return;
    evr_rec_free(&evr_event_type, &self->full);
    for (size_t i = 0; i < self->nchecked; i++)
        free(self->checked[i].bytes);
    for (size_t i = 0; i < S_TYPES; i++)
        free(self->keys[i].k);
    free(self);
    *self_p = NULL;
}

static uint64_t
s_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;     /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/*  The spec just walked is one the full decoder took before (its hash
    into *hash, for s_spec_remember). */
static bool
s_spec_checked(const evr_eventread_t *self, uint64_t *hash)
{
    uint64_t h = *hash = s_hash(self->spec_at, self->spec_len);
    for (size_t i = 0; i < self->nchecked; i++) {
        const s_checked_t *c = &self->checked[i];
        if (c->hash == h && c->len == self->spec_len
            && memcmp(c->bytes, self->spec_at, c->len) == 0)
            return true;
    }
    return false;
}

/*  The spec just walked, of hash h, as one the full decoder took, while
    there is room. */
static void
s_spec_remember(evr_eventread_t *self, uint64_t h)
{
    if (self->nchecked < S_CHECKED && self->checked_bytes + self->spec_len <= S_CHECKED_BYTES) {
        s_checked_t *c = &self->checked[self->nchecked++];
        c->hash = h;
        c->len = self->spec_len;
        c->bytes = evr_malloc(c->len ? c->len : 1);
        memcpy(c->bytes, self->spec_at, c->len);
        self->checked_bytes += c->len;
    }
}

uint64_t
evr_eventread_fallbacks(const evr_eventread_t *self)
{
    return self->fallbacks;
}

/*  Skips one object nested in `level` containers, within the full
    decoder's depth limit. */
static bool
s_skip(evr_codec_rd_t *r, unsigned level)
{
    if (level > EVR_CODEC_MAX_DEPTH)
        return false;
    size_t n = evr_codec_skip(r->p, (size_t) (r->end - r->p), EVR_CODEC_MAX_DEPTH - level);
    r->p += n;
    return n > 0;
}

/* ------------------------------------------------------------ fields */

/*  A string checked as evr_codec.c checks one (limit, no NUL, UTF-8),
    copied into the arena; bytes above 0x7f (a word's OR, 8 bytes at a
    time) send it to the UTF-8 check. */
static bool
s_str(evr_eventread_t *self, evr_codec_rd_t *r, uint32_t limit, char **out)
{
    const uint8_t *s;
    uint32_t n;
    if (!evr_codec_rd_raw(r, false, &s, &n) || n > limit
        || n + 1 > sizeof self->arena - self->used)
        return false;
    if (memchr(s, '\0', n))
        return false;
    uint64_t seen = 0;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, sizeof w);
        seen |= w;
    }
    for (; i < n; i++)
        seen |= s[i];
    if ((seen & 0x8080808080808080ull) && !evr_utf8_valid((const char *) s, n))
        return false;
    char *dst = self->arena + self->used;
    memcpy(dst, s, n);
    dst[n] = '\0';
    self->used += n + 1;
    *out = dst;
    return true;
}

/*  True when the NUL-terminated name is s[0..n). */
static bool
s_is(const char *name, const uint8_t *s, uint32_t n)
{
    uint32_t i = 0;
    while (i < n && name[i] && name[i] == (char) s[i])
        i++;
    return i == n && name[i] == '\0';
}

/*  The first min(n, 8) bytes at s as a word (zero-padded, as s_keys_slow
    makes a key's); a whole word is loaded when it lies before end. */
static inline uint64_t
s_word(const evr_eventread_t *self, const uint8_t *s, uint32_t n, const uint8_t *end)
{
    uint64_t w;
    if (end - s >= 8) {
        memcpy(&w, s, sizeof w);
        return w & self->mask[n < 8 ? n : 8];
    }
    uint8_t b[8] = { 0 };
    memcpy(b, s, n < 8 ? n : 8);
    memcpy(&w, b, sizeof b);
    return w;
}

static const s_keys_t *s_keys_slow(evr_eventread_t *self, const evr_rectype_t *type, size_t h);

/*  type's keys as s_key compares them (made the first time); NULL when
    its slots are full. */
static inline const s_keys_t *
s_keys(evr_eventread_t *self, const evr_rectype_t *type)
{
    size_t h = ((uintptr_t) type >> 4) & (S_TYPES - 1);
    return self->keys[h].type == type ? &self->keys[h] : s_keys_slow(self, type, h);
}

static const s_keys_t *
s_keys_slow(evr_eventread_t *self, const evr_rectype_t *type, size_t h)
{
    if (type->nfields > 64)
        return NULL;   /* no table has as many: the plain comparisons */
    for (size_t i = 0; i < S_TYPES; i++, h = (h + 1) & (S_TYPES - 1)) {
        s_keys_t *e = &self->keys[h];
        if (e->type == type)
            return e;
        if (e->type)
            continue;
        e->type = type;
        e->k = evr_calloc(type->nfields ? type->nfields : 1, sizeof *e->k);
        for (size_t f = 0; f < type->nfields; f++) {
            const char *key = type->fields[f].key;
            size_t n = strlen(key);
            uint8_t b[16] = { 0 };
            memcpy(b, key, n < 16 ? n : 16);
            memcpy(&e->k[f].w, b, 8);
            memcpy(&e->k[f].w2, b + 8, 8);
            e->k[f].n = (uint32_t) n;
            if (type->fields[f].required)
                e->required |= 1ull << f;
        }
        return e;
    }
    return NULL;
}

/*  The table entry of the key at r (advanced past it); NULL for a key the
    table does not know (forward compatible) or one that is not a str.
    *index is where the search starts (the encoder writes the keys in
    table order, so it is the one after the last key found), and is set
    to the entry found.  keys: type's, from s_keys, or NULL. */
static inline __attribute__((always_inline)) const evr_field_t *
s_key(const evr_eventread_t *self, evr_codec_rd_t *r, const evr_rectype_t *type,
      const s_keys_t *keys, size_t *index, bool *ok)
{
    const uint8_t *k;
    uint32_t kn;
    *ok = evr_codec_rd_raw(r, false, &k, &kn);
    if (!*ok || kn == 0)
        return NULL;   /* a key that is no string is skipped by the full decoder too */
    size_t n = type->nfields, at = *index < n ? *index : 0;
    if (!keys) {
        for (size_t i = 0; i < n; i++, at = at + 1 < n ? at + 1 : 0)
            if (s_is(type->fields[at].key, k, kn)) {
                *index = at;
                return &type->fields[at];
            }
        return NULL;
    }
    uint64_t w = s_word(self, k, kn, r->end);
    for (size_t i = 0; i < n; i++, at = at + 1 < n ? at + 1 : 0) {
        const s_kinfo_t *ki = &keys->k[at];
        if (ki->w != w || ki->n != kn)
            continue;
        if (kn > 8) {   /* the rest: a second word, or (past 16 bytes) memcmp */
            if (kn <= 16 ? s_word(self, k + 8, kn - 8, r->end) != ki->w2
                         : memcmp(type->fields[at].key + 8, k + 8, kn - 8) != 0)
                continue;
        }
        *index = at;
        return &type->fields[at];
    }
    return NULL;
}

/*  `args`: every check of the full decoder's strmap, nothing kept. */
static bool
s_strmap(evr_codec_rd_t *r, const evr_field_t *f)
{
    uint32_t n;
    if (!evr_codec_rd_map(r, &n) || n > evr_field_limit(f))
        return false;
    const uint8_t *keys[64];
    uint32_t lens[64];
    if (n > EVR_ARRAY_LEN(keys))
        return false;
    for (uint32_t i = 0; i < 2 * n; i++) {
        const uint8_t *s;
        uint32_t len;
        if (!evr_codec_rd_raw(r, false, &s, &len) || len > EVR_STR_MAX || memchr(s, '\0', len)
            || !evr_utf8_valid((const char *) s, len))
            return false;
        if (i % 2)
            continue;
        for (uint32_t j = 0; j < i / 2; j++)
            if (lens[j] == len && memcmp(keys[j], s, len) == 0)
                return false;   /* a duplicate key */
        keys[i / 2] = s;
        lens[i / 2] = len;
    }
    return true;
}

/*  `outputs` of step.outputs: kept (strings in the arena, the arrays the
    reader's), checked as the full decoder checks a strmap. */
static bool
s_strmap_kept(evr_eventread_t *self, evr_codec_rd_t *r, const evr_field_t *f, evr_strmap_t *m)
{
    uint32_t n;
    if (!evr_codec_rd_map(r, &n) || n > evr_field_limit(f) || n > EVR_OUTPUTS_MAX_KEYS)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        if (!s_str(self, r, EVR_STR_MAX, &self->kept_k[i])
            || !s_str(self, r, EVR_STR_MAX, &self->kept_v[i]))
            return false;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(self->kept_k[j], self->kept_k[i]) == 0)
                return false;   /* a duplicate key */
    }
    m->k = self->kept_k;
    m->v = self->kept_v;
    m->n = n;
    return true;
}

/*  The required fields of type are all in seen. */
static bool
s_required(const evr_rectype_t *type, const s_keys_t *keys, uint64_t seen)
{
    if (keys)
        return (seen & keys->required) == keys->required;
    for (size_t i = 0; i < type->nfields; i++)
        if (type->fields[i].required && !(seen & (1ull << i)))
            return false;
    return true;
}

/*  One step of a spec, at level: its name; its other keys walked. */
static bool
s_step(evr_eventread_t *self, evr_codec_rd_t *r, evr_step_t *st, unsigned level)
{
    const s_keys_t *keys = s_keys(self, &evr_step_type);
    uint32_t n;
    uint64_t seen = 0;
    size_t hint = 0;   /* where the next key is looked for first */
    if (!evr_codec_rd_map(r, &n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        size_t idx = hint;
        bool ok;
        const evr_field_t *f = s_key(self, r, &evr_step_type, keys, &idx, &ok);
        hint = f ? idx + 1 : hint;
        if (!ok && !s_skip(r, level + 1))
            return false;   /* a key that is no string: skip it too */
        if (f && (seen & (1ull << idx)))
            return false;
        if (f)
            seen |= 1ull << idx;
        if (f && f->off == offsetof(evr_step_t, name) && f->type == EVR_FT_STR) {
            if (!s_str(self, r, evr_field_limit(f), &st->name))
                return false;
        }
        else if (!s_skip(r, level + 1))
            return false;
    }
    return s_required(&evr_step_type, keys, seen);
}

/*  job.accepted's spec, at level: the step names and whether it has an
    on_error (what apply reads). */
static bool
s_spec(evr_eventread_t *self, evr_codec_rd_t *r, const evr_field_t *steps_f, unsigned level)
{
    const s_keys_t *keys = s_keys(self, &evr_spec_type);
    uint32_t n;
    uint64_t seen = 0;
    size_t hint = 0;   /* where the next key is looked for first */
    if (!evr_codec_rd_map(r, &n))
        return false;
    const uint8_t *at = r->p;
    evr_spec_t *spec = &self->spec;
    spec->steps.n = 0;
    spec->on_error.present = false;
    for (uint32_t i = 0; i < n; i++) {
        size_t idx = hint;
        bool ok;
        const evr_field_t *f = s_key(self, r, &evr_spec_type, keys, &idx, &ok);
        hint = f ? idx + 1 : hint;
        if (!ok && !s_skip(r, level + 1))
            return false;
        if (f && (seen & (1ull << idx)))
            return false;
        if (f)
            seen |= 1ull << idx;
        if (f != steps_f) {
            if (!s_skip(r, level + 1))
                return false;
            if (f && f->off == offsetof(evr_spec_t, on_error))
                spec->on_error.present = true;   /* a step of the job: named, not read */
            continue;
        }
        uint32_t k;
        if (!evr_codec_rd_array(r, &k) || k > evr_field_limit(f) || level + 2 > EVR_CODEC_MAX_DEPTH)
            return false;
        memset(self->steps, 0, k * sizeof *self->steps);
        for (uint32_t j = 0; j < k; j++)
            if (!s_step(self, r, &self->steps[j], level + 2))
                return false;
        spec->steps.v = self->steps;
        spec->steps.n = k;
    }
    self->spec_at = at;
    self->spec_len = (size_t) (r->p - at);
    return s_required(&evr_spec_type, keys, seen);
}

static bool s_rec(evr_eventread_t *self, evr_codec_rd_t *r, const evr_rectype_t *type, void *rec,
                  unsigned level);

/*  One value of a field of the header or of the data. */
static bool
s_field(evr_eventread_t *self, evr_codec_rd_t *r, const evr_field_t *f, void *rec, unsigned level)
{
    void *p = (char *) rec + f->off;
    uint64_t u = 0;
    int64_t i = 0;
    bool neg;
    switch (f->type) {
    case EVR_FT_STR:
        if (f == self->job_f && self->job_ok[0]) {
            /* the last event's job, met again: its checked copy */
            evr_codec_rd_t peek = *r;
            const uint8_t *s;
            uint32_t n;
            if (evr_codec_rd_raw(&peek, false, &s, &n) && n == EVR_ULID_LEN
                && memcmp(s, self->job_ok, n) == 0) {
                *r = peek;
                *(char **) p = self->job_ok;
                return true;
            }
        }
        if (!s_str(self, r, evr_field_limit(f), (char **) p))
            return false;
        if (f == self->job_f) {   /* another job: checked, and kept for the next */
            if (f->check(p))
                return false;
            snprintf(self->job_ok, sizeof self->job_ok, "%s", *(char **) p);
            return true;
        }
        break;
    case EVR_FT_U64:
    case EVR_FT_DURATION:
    case EVR_FT_U32:
    case EVR_FT_U32_OPT:
        if (!evr_codec_rd_int(r, &u, &i, &neg) || neg
            || ((f->type == EVR_FT_U32 || f->type == EVR_FT_U32_OPT) && u > UINT32_MAX))
            return false;
        if (f->type == EVR_FT_U32_OPT)
            *(evr_u32opt_t *) p = (evr_u32opt_t) { true, (uint32_t) u };
        else if (f->type == EVR_FT_U32)
            *(uint32_t *) p = (uint32_t) u;
        else
            *(uint64_t *) p = u;
        break;
    case EVR_FT_I64:
        if (!evr_codec_rd_int(r, &u, &i, &neg) || (!neg && u > INT64_MAX))
            return false;
        *(int64_t *) p = neg ? i : (int64_t) u;
        break;
    case EVR_FT_ENUM: {
        const uint8_t *s;
        uint32_t n;
        if (!evr_codec_rd_raw(r, false, &s, &n))
            return false;
        uint32_t v = 0;
        if (f == self->type_f && self->type_hashed) {   /* the type: by its hash */
            size_t h = s_type_hash(s_word(self, s, n, r->end), n);
            for (v = UINT32_MAX; v == UINT32_MAX && self->type_slot[h];
                 h = (h + 1) & (S_TYPE_SLOTS - 1)) {
                uint32_t c = self->type_slot[h] - 1u;
                if (self->type_len[c] == n && memcmp(f->names[c], s, n) == 0)
                    v = c;
            }
            if (v == UINT32_MAX)
                return false;   /* evr_enum_parse's "unknown value" */
        }
        else if (f == self->type_f)   /* names of another length are passed over */
            while (f->names[v] && !(self->type_len[v] == n && *f->names[v]
                                    && memcmp(f->names[v], s, n) == 0))
                v++;
        else
            while (f->names[v] && !(*f->names[v] && s_is(f->names[v], s, n)))
                v++;
        if (!f->names[v])
            return false;   /* evr_enum_parse's "unknown value" */
        *(uint32_t *) p = v;
        break;
    }
    case EVR_FT_BIN: {
        const uint8_t *s;
        uint32_t n;
        if (!evr_codec_rd_raw(r, true, &s, &n) || n > evr_field_limit(f))
            return false;
        if (self->what & EVR_EVENTREAD_BYTES) {
            ((evr_bin_t *) p)->data = (uint8_t *) s;   /* the caller gets it as const */
            ((evr_bin_t *) p)->len = n;
        }
        break;
    }
    case EVR_FT_STRMAP:
        if (!f->check)
            return s_strmap(r, f);   /* `args`: left out */
        if (!s_strmap_kept(self, r, f, p))
            return false;
        break;
    case EVR_FT_RECPTR:
        if (f->sub != &evr_spec_type
            || !s_spec(self, r, self->steps_f, level))
            return false;
        *(evr_spec_t **) p = &self->spec;
        self->walked = true;
        break;
    case EVR_FT_VARIANT: {
        const evr_rectype_t *vt = f->select(rec);
        return vt && s_rec(self, r, vt, p, level);
    }
    default: return false;   /* no such field in an event: the full decoder's case */
    }
    return !f->check || !f->check(p);
}

/*  A record of type at level, as evr_codec.c's s_unpack_rec: the variant
    (the data) after the other fields, wherever it stands. */
static bool
s_rec(evr_eventread_t *self, evr_codec_rd_t *r, const evr_rectype_t *type, void *rec, unsigned level)
{
    const s_keys_t *keys = s_keys(self, type);
    uint32_t n;
    uint64_t seen = 0;
    size_t hint = 0;   /* where the next key is looked for first */
    if (!evr_codec_rd_map(r, &n))
        return false;
    if (n && level + 1 > EVR_CODEC_MAX_DEPTH)
        return false;
    const evr_field_t *variant = NULL;
    evr_codec_rd_t later = { NULL, NULL };
    for (uint32_t k = 0; k < n; k++) {
        size_t idx = hint;
        bool ok;
        const evr_field_t *f = s_key(self, r, type, keys, &idx, &ok);
        hint = f ? idx + 1 : hint;
        if (!ok && !s_skip(r, level + 1))
            return false;
        if (!f) {
            if (!s_skip(r, level + 1))
                return false;
            continue;
        }
        if (seen & (1ull << idx))
            return false;
        seen |= 1ull << idx;
        if (f->type == EVR_FT_VARIANT && f->select(rec)) {
            /* its layout is known already (the event's type came first) */
            if (!s_field(self, r, f, rec, level + 1))
                return false;
        }
        else if (f->type == EVR_FT_VARIANT) {
            variant = f;
            later.p = r->p;
            if (!s_skip(r, level + 1))
                return false;
            later.end = r->p;
        }
        else if (!s_field(self, r, f, rec, level + 1))
            return false;
    }
    if (variant && !s_field(self, &later, variant, rec, level + 1))
        return false;
    if (!s_required(type, keys, seen))
        return false;
    return !type->post || !type->post(rec);
}

/* ------------------------------------------------------------ decode */

evr_rc_t
evr_eventread_decode(evr_eventread_t *self, const uint8_t *buf, size_t len,
                     const evr_event_t **ev, evr_err_t *err)
{
    memset(&self->ev, 0, sizeof self->ev);
    self->used = 0;
    self->walked = false;
    evr_codec_rd_t r = { buf, buf + len };
    bool fast = len && s_rec(self, &r, &evr_event_type, &self->ev, 0) && r.p == r.end;
    bool check = fast && self->walked && (self->what & EVR_EVENTREAD_CHECK);
    uint64_t spec_hash = 0;
    if (fast && (!check || s_spec_checked(self, &spec_hash))) {
        *ev = &self->ev;
        return EVR_OK;
    }
    /* declined, or a spec to check: the full decoder decodes it, or says
       what is wrong */
    self->fallbacks += !fast;
    evr_rec_free(&evr_event_type, &self->full);
    memset(&self->ev, 0, sizeof self->ev);
    evr_rc_t rc = evr_event_decode(buf, len, &self->full, err);
    *ev = rc ? NULL : &self->full;
    if (check && !rc)   /* taken whole: its spec needs no decode again */
        s_spec_remember(self, spec_hash);
    return rc;
}
