/*  evr_yaml_words.h: what the pipeline loader says about an unknown key:
    the keys a record takes, and evrun's word for another CI system's. */
#ifndef EVR_YAML_WORDS_H_INCLUDED
#define EVR_YAML_WORDS_H_INCLUDED

#include "evr_spec.h"

#include <yaml.h>

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

/*  What the loader says of the unknown key k (not empty) of type, whose
    value is vn in doc, written into buf: another system's word or layout
    answered with evrun's (a GitLab job at the top of the file), a
    near-miss spelling, a step's key at the top of the file or the
    pipeline's in a step, then the keys type takes.  comma: k has no value
    and follows another key in a {...} mapping (`{run: echo "a, b"}` makes
    a key `b"`).  Returns the key suggested instead, or NULL. */
const char *evr_yaml_unknown_key(yaml_document_t *doc, const yaml_node_t *vn,
                                 const evr_rectype_t *type, const char *k, bool comma,
                                 char *buf, size_t size);

/*  The words after "expected a mapping, got ..." for a record of type
    written as node, not a mapping: another system's form answered with
    evrun's (GitLab's retry: 2, Buildkite's - wait, GitHub's on: [push],
    git: URL, on_error: COMMAND), " (...)" into buf, or "" when there is
    none. */
void evr_yaml_mapping_hint(const evr_rectype_t *type, const yaml_node_t *node, char *buf,
                           size_t size);

/*  The same for the map field f written as node, not a mapping: an env
    written as a list (Docker Compose's and GitHub services' - A=1,
    Kubernetes' - {name: A, value: "1"}) gets the mapping of its first
    items, args as a list their form; "" into buf for any other. */
void evr_yaml_map_hint(yaml_document_t *doc, const evr_field_t *f, const yaml_node_t *node,
                          char *buf, size_t size);

/*  What to add to the error of the value v that a step's `when` does not
    take, another system's word (GitLab's manual, never, delayed; GitHub's
    if: always()) answered with evrun's form, or NULL (f another enum). */
const char *evr_yaml_enum_hint(const evr_field_t *f, const char *v);

#endif
