/*  evr_diag.h: diagnostics for pipeline files.

    evr_diag_t collects the errors found in one file, each formatted as
    `file:line:column: field: message` (or `file: field: message` when no
    position is known), up to a fixed count; the field as written in the
    file, also when the checks ran on a spec whose matrix steps were
    expanded.  It also holds the source map
    of the file: for each field path the loader saw ("steps[1].needs[0]"),
    the line and column where it stands, so checks that run after loading
    can still point at the right place.
*/
#ifndef EVR_DIAG_H_INCLUDED
#define EVR_DIAG_H_INCLUDED

#include <stdio.h>

#include "evr_common.h"

/*  At most this many errors are kept per file; more are counted. */
#define EVR_DIAG_MAX 50

typedef struct evr_diag evr_diag_t;

/*  Creates a diagnostics list for the file named file (copied). */
evr_diag_t *evr_diag_new(const char *file);
void evr_diag_destroy(evr_diag_t **self_p);

/*  Records that path stands at line:col (1-based).  The first position
    recorded for a path wins on lookup; recording is O(1), lookup linear
    (lookups happen only when reporting an error). */
void evr_diag_mark(evr_diag_t *self, const char *path, uint32_t line, uint32_t col);

/*  Moves the marks of a list's items when the list is rewritten: the
    marks under LIST[i] (i < n; "steps[2]", "steps[2].name") are replaced
    by the same marks under LIST[first[i]] ... LIST[first[i] + count[i] -
    1] (count 0: dropped); marks of items i >= n and other paths stay. */
void evr_diag_remap_list(evr_diag_t *self, const char *list, const uint32_t *first,
                         const uint32_t *count, uint32_t n);
/*  Says that a list was expanded (a matrix step into one step per
    combination): item first[i] + c (c < count[i]) of the new list is item
    i of the file, combination names[first[i] + c] (names NULL, or a NULL
    entry: an item that was not expanded, count[i] 1).  Moves the marks as
    evr_diag_remap_list does.  From then on an error about LIST[k]... is
    shown about the item as written, LIST[i]...; the same message about
    the same field of other combinations is not repeated, and one that
    arose for some combinations only names them: "(combination
    build[OS=bsd] only)" (unless its message names the one). */
void evr_diag_expand_list(evr_diag_t *self, const char *list, const uint32_t *first,
                          const uint32_t *count, uint32_t n, char *const *names);

/*  The index in the file of item i of list (evr_diag_expand_list); i when
    the list was not expanded.  For messages that name another item. */
uint32_t evr_diag_written_index(const evr_diag_t *self, const char *list, uint32_t i);

/*  Looks up the position of path, falling back to its parents
    ("steps[1].needs[0]" -> "steps[1].needs" -> "steps[1]").  Returns false
    when nothing is known. */
bool evr_diag_pos(const evr_diag_t *self, const char *path, uint32_t *line, uint32_t *col);

/*  Whether the loader recorded path itself (no fallback to its parents):
    the key was written, whatever its value. */
bool evr_diag_marked(const evr_diag_t *self, const char *path);

/*  Whether an error about path, or a field under it ("source.git" for
    "source"; of an expanded list: about the item as written), was added: a check of the whole field that would only
    repeat it in other words stays silent. */
bool evr_diag_reported(const evr_diag_t *self, const char *path);

/*  Adds an error about path at the position the source map knows.  Only
    the first error about a given (non-empty) path is kept (of a matrix
    step: per combination, see evr_diag_expand_list). */
void evr_diag_add(evr_diag_t *self, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  Adds an error at an explicit position (line 0: none). */
void evr_diag_add_at(evr_diag_t *self, uint32_t line, uint32_t col, const char *path,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*  Number of errors added (including those beyond EVR_DIAG_MAX). */
size_t evr_diag_count(const evr_diag_t *self);
/*  Whether self has a source map: the spec was loaded from a file (a
    spec from the wire has none). */
bool evr_diag_mapped(const evr_diag_t *self);

/*  Puts the errors kept in file order (line, then column; those with no
    place last, each group in the order found): a file's errors read top
    to bottom whatever check found them. */
void evr_diag_sort(evr_diag_t *self);

/*  The i-th kept error as a full line (no newline), i < EVR_DIAG_MAX. */
const char *evr_diag_get(const evr_diag_t *self, size_t i);

/*  Writes the errors kept to out, a line each, then, when more were
    found than kept, "FILE: N more errors not shown" (a user who fixes
    the ones shown knows that more follow). */
void evr_diag_print(const evr_diag_t *self, FILE *out);

/*  The candidate closest to word, for a "did you mean ...?": the first of
    the nearest within an edit distance (letters inserted, deleted,
    replaced or two swapped; case ignored) of 0 for words of 1 or 2
    characters, 1 for 3 or 4, else 2; NULL when none is that close.
    candidates holds n strings. */
const char *evr_diag_near(const char *word, const char *const *candidates, size_t n);

/*  The words of every error about a value outside a fixed set, as the
    pipeline loader says them: `expected one of A, B, C, got "V"` and, for
    a near-miss, `; did you mean B?`.  names ends with NULL.  NULL when v
    is one of names.  The text is in a thread-local buffer, valid until
    the next call in the thread. */
const char *evr_diag_one_of(const char *v, const char *const *names);

/*  The file name given to evr_diag_new. */
const char *evr_diag_file(const evr_diag_t *self);

#endif
