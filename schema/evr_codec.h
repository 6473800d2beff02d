/*  evr_codec.h: msgpack encoding and validated decoding of table-described
    records (see evr_field.h).

    Encoding writes one msgpack map per record; fields that are absent
    (NULL strings, empty lists, zero optional numbers, false optional
    booleans, records not present) are left out, so decode(encode(x)) == x.

    Decoding is for untrusted bytes.  evr_codec_check() first walks the raw
    bytes without allocating (msgpack-c allocates a container's elements
    before reading them, so a 5-byte array header could otherwise claim
    gigabytes): every container must fit in the remaining input, nesting is
    bounded, and the object must end exactly where the input ends.  Only
    then msgpack-c unpacks it and evr_codec_unpack() checks every field
    against the table: wrong types, missing required fields, oversize
    strings and lists, invalid UTF-8 and failed field checks each give an
    error naming the field path ("submit.spec.steps[1].run: expected str,
    got int").  Unknown keys are ignored for forward compatibility.
*/
#ifndef EVR_CODEC_H_INCLUDED
#define EVR_CODEC_H_INCLUDED

#include <msgpack.h>

#include "evr_field.h"

/*  Deepest nesting of maps and arrays accepted in a message. */
#define EVR_CODEC_MAX_DEPTH 16

/*  Packs rec as a msgpack map. */
void evr_codec_pack(msgpack_packer *pk, const evr_rectype_t *type, const void *rec);

/*  Encodes rec into a new buffer; caller owns *buf (free()). */
void evr_codec_encode(const evr_rectype_t *type, const void *rec, uint8_t **buf, size_t *len);

/*  Bytes evr_codec_encode would write for rec, counted without a buffer. */
size_t evr_codec_size(const evr_rectype_t *type, const void *rec);

/*  Encodes rec into dst, which has exactly evr_codec_size(type, rec)
    bytes (an LMDB value reserved for it: no buffer, no copy). */
void evr_codec_encode_to(const evr_rectype_t *type, const void *rec, uint8_t *dst, size_t size);

/*  Checks that buf[0..len) holds exactly one well-formed msgpack object
    nested at most max_depth deep, every length within the input.
    Returns EVR_OK, or EVR_ERR_PROTO/EVR_ERR_LIMIT with the reason. */
evr_rc_t evr_codec_check(const uint8_t *buf, size_t len, unsigned max_depth, evr_err_t *err);

/*  Bytes of the one well-formed object at the start of buf[0..len),
    nested at most max_depth deep (0: a scalar only), every length within
    the input, as evr_codec_check walks it; 0 when there is none. */
size_t evr_codec_skip(const uint8_t *buf, size_t len, unsigned max_depth);

/*  Fills rec (zeroed by the caller) from a decoded msgpack map.  path
    names the record in error messages.  On error rec may be partly
    filled: release it with evr_rec_free(). */
evr_rc_t evr_codec_unpack(const msgpack_object *obj, const evr_rectype_t *type,
                          void *rec, const char *path, evr_err_t *err);

/*  evr_codec_check + msgpack unpack + evr_codec_unpack.  rec is zeroed
    first (it must hold nothing that needs freeing); on error it is left
    zeroed (everything it took is released). */
evr_rc_t evr_codec_decode(const uint8_t *buf, size_t len, const evr_rectype_t *type,
                          void *rec, const char *path, evr_err_t *err);

/*  How many map keys the last evr_codec_decode on this thread skipped
    (keys no table knows: taken as a newer version's, forward compatible).
    The broker journals a submit's body as it came only when none was. */
unsigned evr_codec_skipped(void);

/*  True when s[0..n) is valid UTF-8 (no overlongs, no surrogates). */
bool evr_utf8_valid(const char *s, size_t n);

/*  Where s[0..len) may be cut between UTF-8 characters near n: n moved
    back (up false: at most n bytes kept before it) or forward (up true:
    at most len - n bytes kept after it) over continuation bytes; len when
    n >= len. */
size_t evr_utf8_cut(const char *s, size_t len, size_t n, bool up);

/*  Makes the NUL-terminated s valid UTF-8 in place: each byte that starts
    no valid character becomes '?'. */
void evr_utf8_clean(char *s);

#endif
