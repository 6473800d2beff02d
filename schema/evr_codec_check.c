/*  evr_codec_check.c: the pre-check of msgpack bytes (evr_codec_check,
    evr_codec_skip), the one place that reads msgpack bytes by hand, and
    only their headers: it exists so that untrusted input cannot make
    msgpack-c allocate more than the input could hold.
*/
#include "evr_codec.h"

#include <stdint.h>
#include <string.h>

static uint64_t
s_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*  Reads the header of the object at buf[*pos]: advances *pos past the
    header and any payload, and sets *children to the number of objects
    that follow inside it (2 per map entry). */
static evr_rc_t
s_check_one(const uint8_t *buf, size_t len, size_t *pos, uint64_t *children, evr_err_t *err)
{
    size_t p = *pos;
    uint8_t b = buf[p++];
    uint64_t payload = 0;
    unsigned lenbytes = 0;
    *children = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        ;
    else if (b >= 0x80 && b <= 0x8f)
        *children = 2u * (b & 0x0f);
    else if (b >= 0x90 && b <= 0x9f)
        *children = b & 0x0f;
    else if (b >= 0xa0 && b <= 0xbf)
        payload = b & 0x1f;
    else {
        switch (b) {
        case 0xc4: case 0xd9: lenbytes = 1; break;          /* bin8, str8 */
        case 0xc5: case 0xda: lenbytes = 2; break;
        case 0xc6: case 0xdb: lenbytes = 4; break;
        case 0xc7: lenbytes = 1; payload = 1; break;        /* ext: + type byte */
        case 0xc8: lenbytes = 2; payload = 1; break;
        case 0xc9: lenbytes = 4; payload = 1; break;
        case 0xca: payload = 4; break;
        case 0xcb: payload = 8; break;
        case 0xcc: case 0xd0: payload = 1; break;
        case 0xcd: case 0xd1: payload = 2; break;
        case 0xce: case 0xd2: payload = 4; break;
        case 0xcf: case 0xd3: payload = 8; break;
        case 0xd4: payload = 2; break;
        case 0xd5: payload = 3; break;
        case 0xd6: payload = 5; break;
        case 0xd7: payload = 9; break;
        case 0xd8: payload = 17; break;
        case 0xdc: case 0xdd: case 0xde: case 0xdf: {
            unsigned nb = (b == 0xdc || b == 0xde) ? 2 : 4;
            if (len - p < nb)
                return evr_err_set(err, EVR_ERR_PROTO, "truncated message");
            *children = s_be(buf + p, nb) * (b >= 0xde ? 2u : 1u);
            p += nb;
            break;
        }
        default:
            return evr_err_set(err, EVR_ERR_PROTO, "invalid msgpack byte 0x%02x at offset %zu",
                               b, p - 1);
        }
    }
    if (lenbytes) {
        if (len - p < lenbytes)
            return evr_err_set(err, EVR_ERR_PROTO, "truncated message");
        payload += s_be(buf + p, lenbytes);
        p += lenbytes;
    }
    if (payload > len - p)
        return evr_err_set(err, EVR_ERR_PROTO, "truncated message");
    p += payload;
    /* Every child takes at least one byte: a count beyond the input is a lie. */
    if (*children > len - p)
        return evr_err_set(err, EVR_ERR_PROTO, "truncated message");
    *pos = p;
    return EVR_OK;
}

/*  Walks the one object at buf[0..): *pos set past it.  The checks of
    evr_codec_check but for trailing bytes. */
static evr_rc_t
s_walk(const uint8_t *buf, size_t len, unsigned max_depth, size_t *pos, evr_err_t *err)
{
    uint64_t stack[EVR_CODEC_MAX_DEPTH + 1];   /* objects still due per level */
    if (max_depth > EVR_CODEC_MAX_DEPTH)
        max_depth = EVR_CODEC_MAX_DEPTH;
    unsigned depth = 0;
    stack[0] = 1;
    *pos = 0;
    while (true) {
        while (depth > 0 && stack[depth] == 0)
            depth--;
        if (depth == 0 && stack[0] == 0)
            break;
        if (*pos >= len)
            return evr_err_set(err, EVR_ERR_PROTO, "truncated message");
        uint64_t children;
        evr_rc_t rc = s_check_one(buf, len, pos, &children, err);
        if (rc)
            return rc;
        stack[depth]--;
        if (children) {
            if (depth + 1 > max_depth)
                return evr_err_set(err, EVR_ERR_LIMIT,
                                   "maps and arrays nested deeper than %u", max_depth);
            stack[++depth] = children;
        }
    }
    return EVR_OK;
}

evr_rc_t
evr_codec_check(const uint8_t *buf, size_t len, unsigned max_depth, evr_err_t *err)
{
    if (len == 0)
        return evr_err_set(err, EVR_ERR_PROTO, "empty message");
    size_t pos;
    evr_rc_t rc = s_walk(buf, len, max_depth, &pos, err);
    if (rc)
        return rc;
    if (pos != len)   /* JSON's '{' and '[' read as one small int, then the rest */
        return evr_err_set(err, EVR_ERR_PROTO, "%zu byte%s of trailing garbage after the message%s",
                           len - pos, len - pos == 1 ? "" : "s",
                           pos == 1 && (buf[0] == '{' || buf[0] == '[')
                               ? " (it starts with '{' or '[': JSON? a body is msgpack)"
                               : "");
    return EVR_OK;
}

size_t
evr_codec_skip(const uint8_t *buf, size_t len, unsigned max_depth)
{
    size_t pos;
    if (len == 0 || s_walk(buf, len, max_depth, &pos, NULL))
        return 0;
    return pos;
}
