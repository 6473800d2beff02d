/*  evr_yaml_merge.h: YAML 1.1 merge keys for the pipeline loader.

    `<<: *defaults` (or `<<: [*a, *b]`) in a mapping stands for the pairs
    of the mappings named, under the mapping's own: a key written in the
    mapping wins over a merged one, and of the merged mappings the earlier
    in the list wins.  A merged mapping's own merge keys count too.  The
    pairs keep their nodes, so an error about a merged value points at the
    anchor's text.  Used by evr_yaml.c only.
*/
#ifndef EVR_YAML_MERGE_H_INCLUDED
#define EVR_YAML_MERGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "evr_diag.h"

typedef struct {
    yaml_node_t *key, *value;
} evr_ypair_t;

/*  The pairs of mapping node map, merge keys resolved: the pairs written
    in map other than `<<` (in order, duplicates kept for the caller to
    report) and, in the place of each `<<`, the pairs it merges whose keys
    are not taken yet (by a written pair or an earlier merge).  Each
    pair visited in a merged mapping costs one node of *budget (so that
    aliases of aliases stay bounded); when it runs out, the error is
    reported and *budget is 0.  A `<<` whose value is not a mapping or a
    list of mappings is reported at path + ".<<" (and left out).  Sets
    *pairs (caller frees) and *n; returns false when an error was added. */
bool evr_yaml_pairs(yaml_document_t *doc, yaml_node_t *map, const char *path,
                    size_t *budget, evr_diag_t *diag, evr_ypair_t **pairs, size_t *n);

/*  Counts n steps of work in evr_yaml_work (evr_yaml_syntax.c). */
void evr_yaml_work_add(uint64_t n);

#endif
