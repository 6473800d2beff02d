/*  evr_yaml_syntax.h: libyaml's syntax errors as the pipeline loader
    reports them (evr_yaml_syntax.c).  Used by evr_yaml.c only; the
    hint and the precheck every YAML reader uses are in evr_yaml.h. */
#ifndef EVR_YAML_SYNTAX_H_INCLUDED
#define EVR_YAML_SYNTAX_H_INCLUDED

#include <stddef.h>
#include <yaml.h>

#include "evr_diag.h"

/*  Reports parser's syntax error over buf[0..len) in diag, at its line
    and column, with a hint where libyaml's words do not say what to do
    (evr_yaml_hint; a tab where the error is, or in the line's
    indentation, says so).  Errors of libyaml's reader (bytes that are not
    UTF-8 text) carry a byte offset instead of a mark: it is counted into
    a line and a column. */
void evr_yaml_syntax_error(const yaml_parser_t *parser, const char *buf, size_t len,
                           evr_diag_t *diag);

#endif
