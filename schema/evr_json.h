/*  evr_json.h: records as JSON (jansson), for --json and --print output.

    Driven by the same field tables as the msgpack codec and with the same
    rule for absent fields (left out).  Durations print as strings ("5m"),
    binary output as a string when it is valid UTF-8, else as
    {"base64": "..."}.
*/
#ifndef EVR_JSON_H_INCLUDED
#define EVR_JSON_H_INCLUDED

#include <jansson.h>

#include "evr_field.h"

/*  A new JSON object for rec; caller owns the reference (json_decref). */
json_t *evr_json_from_rec(const evr_rectype_t *type, const void *rec);
/*  Bytes as JSON, as a record's binary field prints: a string when they
    are valid UTF-8 without NUL, else {"base64": "..."}; caller owns the
    reference. */
json_t *evr_json_bin(const uint8_t *p, size_t n);
/*  An unsigned 64-bit value as JSON: an integer up to INT64_MAX (jansson's
    range), above it a real (positive, rounded), never a negative number. */
json_t *evr_json_u64(uint64_t v);

#endif
