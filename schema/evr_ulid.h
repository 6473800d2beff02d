/*  evr_ulid.h: ULIDs, the ids of jobs.

    A ULID is 128 bits: a 48-bit millisecond timestamp and 80 random bits,
    written as 26 characters of Crockford base32, so ids sort by creation
    time as strings.  Clients generate the id of a job they submit, which
    makes a retried submit idempotent.  Ids made by one process within the
    same millisecond are strictly increasing (the random part is
    incremented), as the ULID spec asks.
*/
#ifndef EVR_ULID_H_INCLUDED
#define EVR_ULID_H_INCLUDED

#include "evr_common.h"

#define EVR_ULID_LEN 26

/*  Writes a new ULID and a terminating NUL into out (27 bytes). Uses the
    kernel's random source; aborts only if it is unavailable. */
void evr_ulid_new(char out[EVR_ULID_LEN + 1]);

/*  Makes the ULID of the given millisecond time and random bytes: for
    tests and for callers that need a reproducible id. */
void evr_ulid_make(uint64_t ms, const uint8_t rnd[10], char out[EVR_ULID_LEN + 1]);

/*  Parses a ULID string of exactly 26 characters (case-insensitive).
    On success stores its timestamp in *ms (if not NULL) and returns
    EVR_OK; otherwise EVR_ERR_PROTO with the reason in err (as
    evr_ulid_problem's). */
evr_rc_t evr_ulid_parse(const char *s, uint64_t *ms, evr_err_t *err);

/*  NULL when s is a ULID as the wire wants it (26 characters, upper case:
    ids are compared as strings, so one id has one spelling), else the
    reason, for field checks: the length, or which character at which
    position is not Crockford base32, or a first character above 7, or
    lower case (a buffer of the calling thread, valid until its next
    call). */
const char *evr_ulid_problem(const char *s);

/*  True when s is a valid ULID. */
bool evr_ulid_valid(const char *s);

#endif
