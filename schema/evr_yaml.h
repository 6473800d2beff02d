/*  evr_yaml.h: the pipeline file loader (libyaml).

    Parses a pipeline file into an evr_spec_t using the spec's field
    tables: every key must be one the table knows, every value of the type
    it says; each problem becomes one `file:line:column: field: message`
    error in the diag, whose source map then lets evr_spec_validate() point
    at the right line too.  Input is bounded: file size, nesting depth,
    number of nodes (which also defuses alias bombs).  YAML merge keys
    (`<<: *a`, evr_yaml_merge.h) are resolved; top-level keys starting
    with `.` hold anchors and are skipped (GitLab's hidden keys).
*/
#ifndef EVR_YAML_H_INCLUDED
#define EVR_YAML_H_INCLUDED

#include <yaml.h>

#include "evr_spec.h"

#define EVR_YAML_MAX_BYTES (1u << 20)   /* 1 MiB pipeline files */
#define EVR_YAML_MAX_DEPTH 16           /* nesting of maps and lists */
#define EVR_YAML_MAX_NODES 100000       /* nodes visited, aliases counted each time */

/*  The YAML work done in this thread so far: the events
    evr_yaml_precheck read and the steps of the merge walk
    (evr_yaml_merge.h: each merged mapping entered, each of its pairs and
    each list item looked at).  Each is bounded by a limit checked where it
    is done (EVR_YAML_MAX_DEPTH, EVR_YAML_MAX_NODES): a test bounds the
    difference across a call, where a time would measure the machine. */
uint64_t evr_yaml_work(void);

/*  Loads the YAML text buf[0..len) into spec (zeroed by the caller) and
    runs evr_spec_validate().  Errors go to diag.  Returns EVR_OK, or
    EVR_ERR_SPEC when diag holds errors (spec may then be partly filled:
    release it with evr_rec_free(&evr_spec_type, spec)). */
evr_rc_t evr_yaml_load(const char *buf, size_t len, evr_spec_t *spec, evr_diag_t *diag);

/*  What to do about a libyaml syntax error whose problem text is problem
    ("a tab; YAML indents with spaces only"), or NULL when there is no
    hint for it.  For every YAML file evrun reads. */
const char *evr_yaml_hint(const char *problem);

/*  parser's syntax error over the text it read, buf[0..len), as the
    pipeline loader says it, into out: "LINE:COL: YAML syntax error:
    PROBLEM (CONTEXT): HINT" (the hint as for a pipeline file; a reader
    error, bytes that are not UTF-8 text, at the byte it is about).  For
    the settings files, whose loaders have no diag. */
void evr_yaml_syntax_text(const yaml_parser_t *parser, const char *buf, size_t len, char *out,
                          size_t size);

/*  A first pass over buf[0..len)'s events, before libyaml builds a node
    graph: a syntax error (with evr_yaml_hint's hint), maps and lists
    nested deeper than EVR_YAML_MAX_DEPTH, or more than
    EVR_YAML_MAX_NODES nodes (scalars, aliases, maps and lists) is one
    error in diag (false), found at once; so is each tag other than
    YAML's own (!!str), which libyaml's loader would drop from its value
    ("! grep" is "grep").  For every YAML file evrun reads. */
bool evr_yaml_precheck(const char *buf, size_t len, evr_diag_t *diag);

/*  Reads the file named by evr_diag_file(diag) and loads it as above.
    A missing or unreadable file is one error in diag. */
evr_rc_t evr_yaml_load_file(evr_spec_t *spec, evr_diag_t *diag);

#endif
