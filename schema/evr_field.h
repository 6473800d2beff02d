/*  evr_field.h: field tables, the one description of every record.

    Every wire message, event payload and pipeline spec element is a C
    struct described by a table of fields: the key, a type, whether it is
    required, a limit (string bytes or item count) and the offset of the
    value in the struct.  The same table drives msgpack encoding, msgpack
    decoding with validation (evr_codec), JSON output (evr_json) and the
    YAML pipeline loader (evr_yaml), so a new field is one line.

    Containers used by records own what they hold; evr_rec_free() releases
    every field of a record according to its table.
*/
#ifndef EVR_FIELD_H_INCLUDED
#define EVR_FIELD_H_INCLUDED

#include "evr_common.h"

typedef enum {
    EVR_FT_STR,       /* char *, NUL-terminated UTF-8; limit = max bytes */
    EVR_FT_U64,       /* uint64_t */
    EVR_FT_U32,       /* uint32_t */
    EVR_FT_I64,       /* int64_t */
    EVR_FT_BOOL,      /* bool */
    EVR_FT_BIN,       /* evr_bin_t; limit = max bytes */
    EVR_FT_STRLIST,   /* evr_strlist_t; limit = max items (strings max EVR_STR_MAX) */
    EVR_FT_STRMAP,    /* evr_strmap_t; limit = max entries */
    EVR_FT_DURATION,  /* uint64_t milliseconds; YAML "90s"/"5m"/"1h30m" */
    EVR_FT_RECORD,    /* an embedded record of type sub, with a presence flag */
    EVR_FT_RECLIST,   /* evr_reclist_t of records of type sub; limit = max items */
    EVR_FT_RECMAP,    /* evr_reclist_t keyed by the record's first field (a STR) */
    EVR_FT_RECPTR,    /* pointer to one record of type sub, NULL when absent */
    EVR_FT_ENUM,      /* uint32_t index into names; a string on the wire */
    EVR_FT_BYTES,     /* uint64_t bytes; YAML "512M", "2g", "1GiB" or a number */
    EVR_FT_U32_OPT,   /* evr_u32opt_t: a uint32 whose absence differs from 0 (set) */
    EVR_FT_VARIANT    /* embedded record whose fields depend on the parent:
                         select(parent) gives the table used on the wire,
                         sub is the superset table used to free and copy */
} evr_ftype_t;

/*  Strings inside lists and maps are bounded by this. */
#define EVR_STR_MAX 4096

typedef struct {
    uint8_t *data;
    uint32_t len;
} evr_bin_t;

typedef struct {
    char **v;
    uint32_t n;
} evr_strlist_t;

typedef struct {
    char **k;
    char **v;
    uint32_t n;
} evr_strmap_t;

/*  An optional uint32 where 0 is a value: `set` says it was given (and
    makes it encoded, 0 too). */
typedef struct {
    bool set;
    uint32_t v;
} evr_u32opt_t;

typedef struct {
    void *v;        /* n records, each sub->size bytes */
    uint32_t n;
} evr_reclist_t;

typedef struct evr_rectype evr_rectype_t;

/*  An extra check on a decoded value (enum membership, id syntax...).
    Returns NULL when the value is acceptable, else a static reason such as
    "expected one of append, replace". */
typedef const char *(evr_check_fn)(const void *value);

typedef struct {
    const char *key;
    evr_ftype_t type;
    bool required;
    uint32_t limit;             /* bytes for STR/BIN, items for lists/maps; 0 = default */
    size_t off;                 /* offset of the value in the record */
    const evr_rectype_t *sub;   /* record type for RECORD/RECLIST/RECMAP/RECPTR */
    evr_check_fn *check;        /* optional extra validation */
    const evr_rectype_t *(*select)(const void *parent);   /* VARIANT only */
    const char *doc;            /* one line for PROTOCOL.md and --help */
    const char *const *names;   /* ENUM: the values, NULL-terminated; index 0 is
                                   the zero value, left out when encoding unless
                                   required; an empty name is never accepted.
                                   RECORD: words a pipeline file may write in
                                   place of the mapping for "absent" (none) */
    const char *short_key;      /* RECORD: optional, the key of the sub's field
                                   that a value other than a map stands for
                                   (`artifacts: [a]` is `artifacts: {paths: [a]}`);
                                   encoding writes the map */
} evr_field_t;

struct evr_rectype {
    const char *name;
    size_t size;                /* sizeof the struct */
    const evr_field_t *fields;
    size_t nfields;
    size_t present_off;         /* offset of a bool set when decoded; SIZE_MAX if none */
    /* Optional whole-record check run after decoding: NULL when the
       record is acceptable, else the reason. */
    const char *(*post)(const void *rec);
};

#define EVR_NO_PRESENT ((size_t) -1)

/*  Releases everything the fields of rec own (not rec itself) and zeroes
    them.  Safe on a zeroed or partially filled record. */
void evr_rec_free(const evr_rectype_t *type, void *rec);

/*  Deep-copies src into dst (zeroed by the caller). */
void evr_rec_copy(const evr_rectype_t *type, void *dst, const void *src);

/*  Equality of one field's values at a and b (pointers to the values). */
bool evr_field_equal(const evr_field_t *f, const void *a, const void *b);

/*  Structural equality of two records by their table. */
bool evr_rec_equal(const evr_rectype_t *type, const void *a, const void *b);

/*  True when the field at p holds a value worth encoding: absent values
    (NULL strings, empty lists, zero optional numbers, false optional
    booleans, records not present) are left out of msgpack and JSON. */
bool evr_field_present(const evr_field_t *f, const void *p);

/*  Deep-copies the list s of records of type sub into d (empty). */
void evr_reclist_copy(const evr_rectype_t *sub, evr_reclist_t *d, const evr_reclist_t *s);

/*  The i-th record of a list. */
void *evr_reclist_at(const evr_rectype_t *sub, const evr_reclist_t *l, uint32_t i);

/*  Finds the field called key in type, or NULL. */
const evr_field_t *evr_rec_field(const evr_rectype_t *type, const char *key);

/*  Effective limit of a field (its own, or the default of its type). */
uint32_t evr_field_limit(const evr_field_t *f);

/*  Name of a field type as the wire sees it, e.g. "str", "uint", "map". */
const char *evr_ftype_name(evr_ftype_t t);

/*  Free the contents of a list or map and zero it. */
void evr_strlist_free(evr_strlist_t *l);
void evr_strmap_free(evr_strmap_t *m);
/*  Appends a copy of s to l (no limit check; callers check first). */
void evr_strlist_push(evr_strlist_t *l, const char *s);
/*  Sets k to v in m, replacing an existing value. */
void evr_strmap_set(evr_strmap_t *m, const char *k, const char *v);
/*  Value of k in m, or NULL. */
const char *evr_strmap_get(const evr_strmap_t *m, const char *k);

/*  ENUM fields: the name of value v ("?" when out of range); the value of
    the name s[0..n) (false when unknown); the list of names for an error
    message ("a, b, c"). */
const char *evr_enum_name(const evr_field_t *f, uint32_t v);
bool evr_enum_parse(const evr_field_t *f, const char *s, size_t n, uint32_t *v);
void evr_enum_expected(const evr_field_t *f, char *buf, size_t size);

/*  Parses a duration: a plain number of seconds ("90") or a sequence of
    number+unit with units d, h, m, s, ms, largest first, each once
    ("1h30m", "500ms").  Returns false on anything else or on overflow
    (which evr_duration_overflows tells apart). */
bool evr_duration_parse(const char *s, uint64_t *ms);

/*  Whether s has the form of a duration but is more milliseconds than a
    uint64 holds. */
bool evr_duration_overflows(const char *s);
/*  Parses a size in bytes: a plain number, or a number with a binary
    unit k, m, g or t (any case, an optional "i" and "b" after it:
    "512m", "2G", "1GiB", "64kb"), as podman's --memory.  False on
    anything else or on overflow (which evr_bytes_overflows tells
    apart). */
bool evr_bytes_parse(const char *s, uint64_t *bytes);
/*  Whether s has the form of a size but is more bytes than a uint64
    holds ("17179869184T"). */
bool evr_bytes_overflows(const char *s);
/*  Formats ms as the shortest unit string ("1h30m", "500ms", "0s"). */
void evr_duration_format(uint64_t ms, char *buf, size_t size);

#endif
