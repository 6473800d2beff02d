/*  evr_codec_read.h: msgpack read by hand, for the fast readers
    (evr_eventread.c, the store's job listing).

    A cursor over untrusted bytes: each evr_codec_rd_* takes one object of its
    type at r->p, advances past it and answers true, or answers false and
    leaves r as it was when the object is of another type or runs past
    r->end.  Nothing is allocated or copied: strings and bins point into
    the input.  Containers give only their item count; their items are
    read (or skipped with evr_codec_skip) one by one after.  These are the
    plain readers; evr_codec_decode stays the one validating decoder.
*/
#ifndef EVR_CODEC_READ_H_INCLUDED
#define EVR_CODEC_READ_H_INCLUDED

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const uint8_t *p, *end;
} evr_codec_rd_t;

/*  n (1, 2, 4 or 8) big-endian bytes at p. */
static inline uint64_t
evr_codec_rd_be(const uint8_t *p, unsigned n)
{
    uint16_t v2;
    uint32_t v4;
    uint64_t v8;
    switch (n) {
    case 2: memcpy(&v2, p, 2); return be16toh(v2);
    case 4: memcpy(&v4, p, 4); return be32toh(v4);
    case 8: memcpy(&v8, p, 8); return be64toh(v8);
    default: break;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*  A container header: fix (tag | n, n < 16), or the 16- and 32-bit forms
    b16 and b16 + 1. */
static inline bool
evr_codec_rd_container(evr_codec_rd_t *r, uint8_t fix, uint8_t b16, uint32_t *n)
{
    if (r->p >= r->end)
        return false;
    uint8_t b = *r->p;
    if ((b & 0xf0) == fix) {
        *n = b & 0x0f;
        r->p++;
        return true;
    }
    unsigned nb = b == b16 ? 2 : b == b16 + 1 ? 4 : 0;
    if (!nb || (size_t) (r->end - r->p) < 1 + nb)
        return false;
    uint32_t count = (uint32_t) evr_codec_rd_be(r->p + 1, nb);
    /* every item takes at least a byte: a count beyond the input is a lie */
    if (count > (size_t) (r->end - r->p) - 1 - nb)
        return false;
    *n = count;
    r->p += 1 + nb;
    return true;
}

static inline bool
evr_codec_rd_map(evr_codec_rd_t *r, uint32_t *n)
{
    return evr_codec_rd_container(r, 0x80, 0xde, n);
}

static inline bool
evr_codec_rd_array(evr_codec_rd_t *r, uint32_t *n)
{
    return evr_codec_rd_container(r, 0x90, 0xdc, n);
}

/*  A str (bin false) or a bin: *s its bytes in the input, *n their count. */
static inline bool
evr_codec_rd_raw(evr_codec_rd_t *r, bool bin, const uint8_t **s, uint32_t *n)
{
    if (r->p >= r->end)
        return false;
    uint8_t b = *r->p;
    unsigned nb = 0;
    uint32_t len;
    if (!bin && b >= 0xa0 && b <= 0xbf)
        len = b & 0x1f;
    else if (b == (bin ? 0xc4 : 0xd9) || b == (bin ? 0xc5 : 0xda) || b == (bin ? 0xc6 : 0xdb)) {
        nb = 1u << (b - (bin ? 0xc4 : 0xd9));
        if ((size_t) (r->end - r->p) < 1 + nb)
            return false;
        len = (uint32_t) evr_codec_rd_be(r->p + 1, nb);
    }
    else
        return false;
    if ((size_t) (r->end - r->p) - 1 - nb < len)
        return false;
    *s = r->p + 1 + nb;
    *n = len;
    r->p += 1 + nb + len;
    return true;
}

/*  An integer, typed as msgpack-c types it: *neg when below zero (the
    value then in *i), else the value in *u. */
static inline bool
evr_codec_rd_int(evr_codec_rd_t *r, uint64_t *u, int64_t *i, bool *neg)
{
    if (r->p >= r->end)
        return false;
    uint8_t b = *r->p;
    *neg = false;
    if (b <= 0x7f || b >= 0xe0) {
        *neg = b >= 0xe0;
        if (*neg)
            *i = (int8_t) b;
        else
            *u = b;
        r->p++;
        return true;
    }
    if (b < 0xcc || b > 0xd3)
        return false;
    unsigned nb = 1u << ((b - 0xcc) & 3);
    if ((size_t) (r->end - r->p) < 1 + nb)
        return false;
    uint64_t v = evr_codec_rd_be(r->p + 1, nb);
    r->p += 1 + nb;
    if (b <= 0xcf) {
        *u = v;
        return true;
    }
    int64_t sv = nb == 1 ? (int8_t) v : nb == 2 ? (int16_t) v : nb == 4 ? (int32_t) v
                                                                        : (int64_t) v;
    *neg = sv < 0;
    if (*neg)
        *i = sv;
    else
        *u = (uint64_t) sv;
    return true;
}

#endif
