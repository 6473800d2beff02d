/*  evr_wire_msgpack.h: msgpack bodies from a short text, and a check of
    an answer against a field table, for evr-wire-audit.  Written from
    schema/PROTOCOL.md alone with msgpack-c: none of evrun's code.

    The text of a body is JSON-like:
        {job:"01ARYZ6S41TSV4RRFFQ69G5FAV", limit:5, x:[1,-2,1.5,nil,true]}
    keys are bare words or values; strings take \" \\ \0 \n and \xHH;
    S(N) is a str of N 'x', B(N) a bin of N zero bytes, A(N) an array of N
    1s, L(N) an array of N names "l0".."l<N-1>", M(N) a map of N entries
    "K0":"v"..., R(HEX) raw bytes written as they are (garbage). */
#ifndef EVR_WIRE_MSGPACK_H_INCLUDED
#define EVR_WIRE_MSGPACK_H_INCLUDED

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/*  Returns the bytes the text (a printf format) stands for, their length
    in *len; aborts on a text it cannot read (a bug of the test). */
uint8_t *evr_wmp_body(size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*  Field types of the tables of PROTOCOL.md. */
enum {
    WT_STR, WT_ULID, WT_NAME, WT_ENUM, WT_PATH, WT_UINT, WT_U32, WT_BOOL, WT_BIN,
    WT_ASTR, WT_MSS, WT_MAP, WT_AMAP, WT_INT
};

typedef struct {
    const char *name;
    int type;
    int required;
    size_t limit;         /* bytes, items or entries; 0: the default */
    const char *values;   /* WT_ENUM: " a b c " (NULL: any) */
} evr_wfield_t;

/*  The entry of map named key, or NULL. */
msgpack_object *evr_wmp_get(const msgpack_object *map, const char *key);

/*  NULL when map holds exactly what the table allows (every required
    field, no unknown one, each of its type and within its limit, no
    optional field sent with its zero value); else what is wrong, in a
    static buffer. */
const char *evr_wmp_conform(const msgpack_object *map, const evr_wfield_t *table);

#endif
