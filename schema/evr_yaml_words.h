/*  evr_yaml_words.h: what the pipeline loader says about an unknown key:
    the keys a record takes, and evrun's word for another CI system's. */
#ifndef EVR_YAML_WORDS_H_INCLUDED
#define EVR_YAML_WORDS_H_INCLUDED

#include "evr_spec.h"

/*  Writes the keys type takes, ", " between them, into buf (cut to size;
    the keys on_error refuses left out). */
void evr_yaml_expected_keys(const evr_rectype_t *type, char *buf, size_t size);

/*  The key of type that the unknown key k probably means (a near-miss
    spelling of one of its keys, or another system's word for one), or
    NULL. */
const char *evr_yaml_suggest(const evr_rectype_t *type, const char *k);

/*  What to write instead of k, another CI system's key that evrun has no
    key for in type (stages, Buildkite's soft_fail, a step's tags), or
    NULL. */
const char *evr_yaml_foreign(const evr_rectype_t *type, const char *k);

#endif
