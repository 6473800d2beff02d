/*  test_protocol: schema/PROTOCOL.md against the real field tables.

    Walks every message type, event type and spec record through the
    public schema API and checks that PROTOCOL.md has its heading
    (### message `submit`, ### event `step.output`, ### record `step`) and,
    between that heading and the next one, a table row | `key` | for every
    field; that a type without fields says "No fields."; that no section
    documents a field or a type the tables do not have; and that every
    error code of evr_msg_codes is listed.  A field added to a table and
    not to the document fails here, naming the type and the field.
*/
#include "evr_event.h"
#include "evr_msg.h"
#include "evr_spec.h"
#include "evr_test.h"

#define DOC_PATH EVR_SOURCE_DIR "/schema/PROTOCOL.md"

static char *s_doc;   /* the whole document, NUL-terminated */

/*  The spec records and the event envelope, by the names PROTOCOL.md uses. */
static const evr_rectype_t *const *
s_records(size_t *n)
{
    static const evr_rectype_t *const records[] = {
        &evr_event_type,    &evr_spec_type,  &evr_step_type,  &evr_arg_type,
        &evr_resource_type, &evr_queue_type, &evr_retry_type, &evr_limits_type,
        &evr_source_type, &evr_git_type, &evr_artifacts_type, &evr_cache_type,
        &evr_matrix_type,
        &evr_on_type, &evr_on_github_type,
    };
    *n = EVR_ARRAY_LEN(records);
    return records;
}

static char *
s_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    while (!feof(f) && !ferror(f)) {
        if (cap - len < 4096) {
            cap = cap ? 2 * cap : 65536;
            buf = evr_realloc(buf, cap + 1);
        }
        len += fread(buf + len, 1, cap - len, f);
    }
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    if (!buf)
        buf = evr_malloc(1);
    buf[len] = '\0';
    return buf;
}

/*  Length of the line at p, without its line ending. */
static size_t
s_line_len(const char *p)
{
    size_t n = strcspn(p, "\n");
    if (n > 0 && p[n - 1] == '\r')
        n--;
    return n;
}

/*  Start of the next line after p, or NULL at the end of the text. */
static const char *
s_next_line(const char *p)
{
    const char *nl = strchr(p, '\n');
    return nl ? nl + 1 : NULL;
}

/*  True when the line at p starts a section: "## " or "### ". */
static bool
s_is_heading(const char *p)
{
    return strncmp(p, "## ", 3) == 0 || strncmp(p, "### ", 4) == 0;
}

/*  Finds the line that is exactly heading.  Sets *body to the line after
    it and *end to the start of the next heading (or the end of the text)
    and returns how many times the heading occurs. */
static int
s_find_section(const char *doc, const char *heading, const char **body, const char **end)
{
    size_t hlen = strlen(heading);
    int found = 0;
    for (const char *p = doc; p && *p; p = s_next_line(p)) {
        if (s_line_len(p) != hlen || strncmp(p, heading, hlen) != 0)
            continue;
        if (found++ == 0) {
            const char *b = s_next_line(p);
            const char *e = b;
            while (e && *e && !s_is_heading(e))
                e = s_next_line(e);
            *body = b ? b : p + hlen;
            *end = e ? e : doc + strlen(doc);
        }
    }
    return found;
}

/*  True when some line in [body, end) starts with prefix. */
static bool
s_has_line(const char *body, const char *end, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = body; p && p < end && *p; p = s_next_line(p))
        if ((size_t) (end - p) >= n && strncmp(p, prefix, n) == 0)
            return true;
    return false;
}

/*  Checks one type's section in doc.  kind is "message", "event" or
    "record"; fields may be NULL for a type without fields.  Prints one
    line per problem unless quiet; returns the number of problems. */
static int
s_check_type(const char *doc, const char *kind, const char *name, const evr_rectype_t *fields,
             bool quiet)
{
    char heading[128], row[128];
    snprintf(heading, sizeof heading, "### %s `%s`", kind, name);
    const char *body = NULL, *end = NULL;
    int n = s_find_section(doc, heading, &body, &end);
    if (n != 1) {
        if (!quiet)
            fprintf(stderr, "PROTOCOL.md: %s `%s`: %s heading \"%s\"\n", kind, name,
                    n ? "more than one" : "missing", heading);
        return 1;
    }
    int problems = 0;
    size_t nfields = fields ? fields->nfields : 0;
    for (size_t i = 0; i < nfields; i++) {
        const char *key = fields->fields[i].key;
        snprintf(row, sizeof row, "| `%s` |", key);
        if (!s_has_line(body, end, row)) {
            if (!quiet)
                fprintf(stderr, "PROTOCOL.md: %s `%s`: field `%s` is not documented "
                        "(no row \"%s\" under \"%s\")\n", kind, name, key, row, heading);
            problems++;
        }
    }
    if (nfields == 0 && !s_has_line(body, end, "No fields.")) {
        if (!quiet)
            fprintf(stderr, "PROTOCOL.md: %s `%s` has no fields: say \"No fields.\" under "
                    "its heading\n", kind, name);
        problems++;
    }
    /* The other way: every documented row names a field the table has. */
    for (const char *p = body; p && p < end && *p; p = s_next_line(p)) {
        if (strncmp(p, "| `", 3) != 0)
            continue;
        const char *k = p + 3;
        size_t klen = strcspn(k, "`\n");
        if (k[klen] != '`' || strncmp(k + klen, "` |", 3) != 0)
            continue;
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int) klen, k);
        if (!fields || !evr_rec_field(fields, key)) {
            if (!quiet)
                fprintf(stderr, "PROTOCOL.md: %s `%s` documents a field `%s` that its table "
                        "does not have\n", kind, name, key);
            problems++;
        }
    }
    return problems;
}

/*  Every typed heading in doc names a type the tables have. */
static int
s_check_headings(const char *doc, bool quiet)
{
    static const char *const kinds[] = { "message", "event", "record" };
    int problems = 0;
    for (const char *p = doc; p && *p; p = s_next_line(p)) {
        for (size_t k = 0; k < EVR_ARRAY_LEN(kinds); k++) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "### %s `", kinds[k]);
            size_t plen = strlen(prefix);
            if (strncmp(p, prefix, plen) != 0)
                continue;
            char name[64];
            size_t nlen = strcspn(p + plen, "`\n");
            snprintf(name, sizeof name, "%.*s", (int) nlen, p + plen);
            bool known = false;
            if (k == 0)
                known = evr_msgtype_parse(name) != EVR_MSG_NONE;
            else if (k == 1)
                known = evr_evtype_parse(name) != EVR_EV_NONE;
            else {
                size_t nrec;
                const evr_rectype_t *const *recs = s_records(&nrec);
                for (size_t r = 0; r < nrec && !known; r++)
                    known = strcmp(recs[r]->name, name) == 0;
            }
            if (!known) {
                if (!quiet)
                    fprintf(stderr, "PROTOCOL.md: heading \"%.*s\" names no %s type of the "
                            "schema\n", (int) s_line_len(p), p, kinds[k]);
                problems++;
            }
        }
    }
    return problems;
}

/*  All checks over doc; returns the number of problems. */
static int
s_check_doc(const char *doc, bool quiet)
{
    int problems = 0;
    for (int t = EVR_MSG_NONE + 1; t < EVR_MSG_COUNT_; t++) {
        const char *name = evr_msgtype_name((evr_msgtype_t) t);
        if (!name) {
            if (!quiet)
                fprintf(stderr, "schema: message type %d has no name\n", t);
            problems++;
            continue;
        }
        problems += s_check_type(doc, "message", name, evr_msgtype_fields((evr_msgtype_t) t),
                                 quiet);
    }
    for (int t = EVR_EV_NONE + 1; t < EVR_EV_COUNT_; t++) {
        const char *name = evr_evtype_name((evr_evtype_t) t);
        if (!name) {
            if (!quiet)
                fprintf(stderr, "schema: event type %d has no name\n", t);
            problems++;
            continue;
        }
        problems += s_check_type(doc, "event", name, evr_evtype_data((evr_evtype_t) t), quiet);
    }
    size_t nrec;
    const evr_rectype_t *const *recs = s_records(&nrec);
    for (size_t r = 0; r < nrec; r++)
        problems += s_check_type(doc, "record", recs[r]->name, recs[r], quiet);
    for (size_t i = 0; evr_msg_codes[i][0]; i++) {
        char row[64];
        snprintf(row, sizeof row, "| `%s` |", evr_msg_codes[i][0]);
        if (!s_has_line(doc, doc + strlen(doc), row)) {
            if (!quiet)
                fprintf(stderr, "PROTOCOL.md: error code `%s` is not listed (no row \"%s\")\n",
                        evr_msg_codes[i][0], row);
            problems++;
        }
    }
    problems += s_check_headings(doc, quiet);
    return problems;
}

static void
test_read(void)
{
    s_doc = s_read_file(DOC_PATH);
    if (!s_doc)
        fprintf(stderr, "cannot read %s\n", DOC_PATH);
    CHECK(s_doc != NULL);
}

static void
test_doc_matches_tables(void)
{
    if (!s_doc)
        return;
    int problems = s_check_doc(s_doc, false);
    if (problems)
        fprintf(stderr, "PROTOCOL.md: %d problem(s): document every type and field of the "
                "schema tables (see the lines above)\n", problems);
    CHECK(problems == 0);
}

/*  The checker itself: a field added to a table, a row taken out, a
    heading renamed or a code dropped must each be caught.  Counts are
    relative to the document as it is, so a broken document fails once,
    above, and not again here. */
static void
test_checker_catches_gaps(void)
{
    if (!s_doc)
        return;
    int base = s_check_doc(s_doc, true);

    /* A new field in the step table that the document does not know. */
    evr_field_t fields[64];
    size_t n = evr_step_type.nfields;
    CHECK(n < EVR_ARRAY_LEN(fields));
    if (n < EVR_ARRAY_LEN(fields)) {
        memcpy(fields, evr_step_type.fields, n * sizeof fields[0]);
        fields[n] = (evr_field_t) { .key = "new_field", .type = EVR_FT_STR, .doc = "new" };
        evr_rectype_t grown = evr_step_type;
        grown.fields = fields;
        grown.nfields = n + 1;
        CHECK(s_check_type(s_doc, "record", "step", &grown, true)
              == s_check_type(s_doc, "record", "step", &evr_step_type, true) + 1);
    }

    char *copy = evr_strdup(s_doc);
    char *row = strstr(copy, "| `run` |");
    CHECK(row != NULL);
    if (row) {
        row[3] = 'X';   /* "| `Xun` |": step.run undocumented, Xun unknown */
        CHECK(s_check_doc(copy, true) == base + 2);
        row[3] = 'r';
    }
    char *head = strstr(copy, "### message `credit`");
    CHECK(head != NULL);
    if (head) {
        memcpy(head + strlen("### message `"), "cREDIT", 6);
        CHECK(s_check_doc(copy, true) == base + 2);   /* credit missing, cREDIT unknown */
        memcpy(head + strlen("### message `"), "credit", 6);
    }
    char *nofields = strstr(copy, "No fields.");
    CHECK(nofields != NULL);
    if (nofields) {
        nofields[0] = 'n';
        CHECK(s_check_doc(copy, true) == base + 1);
        nofields[0] = 'N';
    }
    char *code = strstr(copy, "| `queue_full` |");
    CHECK(code != NULL);
    if (code) {
        code[3] = 'Q';
        CHECK(s_check_doc(copy, true) == base + 1);
        code[3] = 'q';
    }
    CHECK(strcmp(copy, s_doc) == 0);
    free(copy);
}

int
main(void)
{
    EVR_TEST_RUN(test_read);
    EVR_TEST_RUN(test_doc_matches_tables);
    EVR_TEST_RUN(test_checker_catches_gaps);
    free(s_doc);
    EVR_TEST_END();
}
