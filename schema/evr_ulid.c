/*  evr_ulid.c: ULID generation and parsing (Crockford base32). */
#include "evr_ulid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char s_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/*  Value + 1 of each base32 character (either case); 0 for the rest. */
static const uint8_t s_values[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['A'] = 11, ['a'] = 11, ['B'] = 12, ['b'] = 12, ['C'] = 13,
    ['c'] = 13, ['D'] = 14, ['d'] = 14, ['E'] = 15, ['e'] = 15, ['F'] = 16, ['f'] = 16,
    ['G'] = 17, ['g'] = 17, ['H'] = 18, ['h'] = 18, ['J'] = 19, ['j'] = 19, ['K'] = 20,
    ['k'] = 20, ['M'] = 21, ['m'] = 21, ['N'] = 22, ['n'] = 22, ['P'] = 23, ['p'] = 23,
    ['Q'] = 24, ['q'] = 24, ['R'] = 25, ['r'] = 25, ['S'] = 26, ['s'] = 26, ['T'] = 27,
    ['t'] = 27, ['V'] = 28, ['v'] = 28, ['W'] = 29, ['w'] = 29, ['X'] = 30, ['x'] = 30,
    ['Y'] = 31, ['y'] = 31, ['Z'] = 32, ['z'] = 32,
};

/*  Value of a base32 character, or -1. */
static int
s_value(char c)
{
    return (int) s_values[(unsigned char) c] - 1;
}

void
evr_ulid_make(uint64_t ms, const uint8_t rnd[10], char out[EVR_ULID_LEN + 1])
{
    /* 128 bits (48 of time, 80 random) in 26 groups of 5 from the low
       end, the first group holding the top 3 bits */
#ifdef __SIZEOF_INT128__
    unsigned __int128 v = ms & 0xffffffffffffull;
    for (int i = 0; i < 10; i++)
        v = (v << 8) | rnd[i];
    for (int i = EVR_ULID_LEN - 1; i >= 0; i--, v >>= 5)
        out[i] = s_alphabet[(unsigned) (v & 31)];
#else
    uint8_t b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t) (ms >> (8 * (5 - i)));
    memcpy(b + 6, rnd, 10);
    for (int i = 0; i < EVR_ULID_LEN; i++) {
        int bit = 128 - 5 * (EVR_ULID_LEN - i);   /* may be negative for i=0 */
        unsigned g = 0;
        for (int k = 0; k < 5; k++) {
            int pos = bit + k;
            if (pos >= 0)
                g |= (unsigned) ((b[pos / 8] >> (7 - pos % 8)) & 1) << (4 - k);
        }
        out[i] = s_alphabet[g];
    }
#endif
    out[EVR_ULID_LEN] = '\0';
}

void
evr_ulid_new(char out[EVR_ULID_LEN + 1])
{
    /* Monotonic within a millisecond: keep the last random part and add
       one.  Not thread-safe by design: one generator per process thread
       that submits, which today is the CLI's main thread. */
    static uint64_t last_ms;
    static uint8_t last_rnd[10];
    uint64_t ms = evr_now_ns() / 1000000u;
    if (ms == last_ms) {
        for (int i = 9; i >= 0 && ++last_rnd[i] == 0; i--)
            ;
    }
    else {
        if (getrandom(last_rnd, sizeof last_rnd, 0) != (ssize_t) sizeof last_rnd) {
            fprintf(stderr, "evrun: getrandom failed\n");
            abort();
        }
        last_ms = ms;
    }
    evr_ulid_make(ms, last_rnd, out);
}

/*  NULL when s (NUL-terminated) is a ULID, any case; else what is wrong
    with it in buf: the length, or the first character that is not
    Crockford base32 (which, where), or a first character above 7. */
static const char *
s_problem(const char *s, uint64_t *ms, char *buf, size_t size)
{
    size_t n = strnlen(s, EVR_ULID_LEN + 1);
    if (n != EVR_ULID_LEN) {
        if (n > EVR_ULID_LEN)
            snprintf(buf, size, "expected a ULID: 26 characters, got more");
        else
            snprintf(buf, size, "expected a ULID: 26 characters, got %zu", n);
        return buf;
    }
    uint64_t t = 0;
    for (int i = 0; i < EVR_ULID_LEN; i++) {
        int v = s_value(s[i]);
        if (v < 0) {
            unsigned char c = (unsigned char) s[i];
            char shown[8];
            if (c > 0x20 && c < 0x7f)
                snprintf(shown, sizeof shown, "'%c'", c);
            else
                snprintf(shown, sizeof shown, "0x%02x", c);
            snprintf(buf, size, "expected a ULID: %s at position %d is not Crockford base32 "
                     "(0-9 and A-Z without I, L, O, U)", shown, i + 1);
            return buf;
        }
        if (i == 0 && v > 7) {
            snprintf(buf, size, "expected a ULID: the first character is '%c', above 7 (the "
                     "time would overflow 48 bits)", s[0]);
            return buf;
        }
        if (i < 10)
            t = (t << 5) | (uint64_t) v;
    }
    if (ms)
        *ms = t;
    return NULL;
}

evr_rc_t
evr_ulid_parse(const char *s, uint64_t *ms, evr_err_t *err)
{
    char why[160];
    if (s_problem(s, ms, why, sizeof why))
        return evr_err_set(err, EVR_ERR_PROTO, "%s", why);
    return EVR_OK;
}

bool
evr_ulid_valid(const char *s)
{
    char why[160];
    return s && !s_problem(s, NULL, why, sizeof why);
}

const char *
evr_ulid_problem(const char *s)
{
    static __thread char why[160];   /* per thread, as the field checks' reasons */
    if (!s)
        return "expected a ULID, got none";
    if (s_problem(s, NULL, why, sizeof why))
        return why;
    for (int i = 0; s[i]; i++)
        if (s[i] >= 'a' && s[i] <= 'z') {
            snprintf(why, sizeof why, "expected a ULID in upper case ('%c' at position %d): "
                     "one id has one spelling", s[i], i + 1);
            return why;
        }
    return NULL;
}
