/*  evr_yaml_syntax.c: the pipeline loader's view of the text before
    the node graph (evr_yaml.c walks that): libyaml's syntax errors with
    what to do about the usual slips (a tab, a binary file, the
    indentation, a value YAML reads as its own syntax), and the precheck
    of every YAML file evrun reads, over libyaml's events: syntax, tags,
    nesting depth and size, found at once. */
#include "evr_yaml.h"
#include "evr_yaml_merge.h"
#include "evr_yaml_syntax.h"

#include <stdio.h>
#include <string.h>

/*  The offset in buf of line (0-based); len when buf has fewer lines. */
static size_t
s_line(const char *buf, size_t len, size_t line)
{
    size_t i = 0;
    for (size_t l = 0; l < line && i < len; i++)
        if (buf[i] == '\n')
            l++;
    return i;
}

/*  Whether line (0-based) of buf has a tab in its indentation or at
    column col (0-based, in characters). */
static bool
s_tab_at(const char *buf, size_t len, size_t line, size_t col)
{
    size_t i = s_line(buf, len, line);
    bool indent = true;
    for (size_t c = 0; i < len && buf[i] != '\n'; i++) {
        if ((buf[i] & 0xC0) == 0x80)
            continue;   /* a UTF-8 continuation byte: the same character */
        if (buf[i] == '\t' && (indent || c == col))
            return true;
        indent = indent && buf[i] == ' ';
        if (c++ > col && !indent)
            break;
    }
    return false;
}

/*  libyaml's words for the usual slips, and what to do about them. */
static const struct {
    const char *problem, *hint;
} s_hints[] = {
    { "tab character", "a tab; YAML indents with spaces only" },
    { "UTF-8", "the file must be UTF-8 text (saved as Latin-1 or another 8-bit encoding? "
      "convert it: iconv -f latin1 -t utf-8; or is this a binary file?)" },
    { "Unicode character", "the file must be UTF-8 text (is this a binary file?)" },
    { "control characters", "the file must be text without control characters (is this a "
      "binary file?)" },
    { "did not find expected '-' indicator", "check the indentation: the items of a list "
      "start with - at one column, the keys of a mapping at one column" },
    { "did not find expected key", "check the indentation: the keys of a mapping start at one "
      "column" },
    { "mapping values are not allowed", "a key indented deeper than the one above it, or "
      "\": \" inside a value: check the indentation, or quote the value ('...')" },
    { "found unexpected end of stream", "a quote or bracket opened and never closed" },
    { "could not find expected ':'", "a key without its \":\", a quote opened and never "
      "closed, or a key of over 1024 characters (YAML's most for a key)" },
    { "did not find expected ',' or ']'", "a [ or ] inside an item of a [...] list (a matrix "
      "step's name, build[OS=linux]): quote the item (\"build[OS=linux]\")" },
    { "undefined alias", "a value that starts with * is an alias of an anchor (&NAME) in YAML: "
      "quote the value ('*...') when it is text" },
    { "block sequence entries are not allowed", "\"- \" after \"KEY: \" on one line: a list's "
      "items go on the lines below it, each after \"- \"; quote a value that starts with "
      "\"- \" ('- ...')" },
    { "did not find expected node content", "a value missing where one was due: a [ or { "
      "never closed, or a \",\" with nothing before it" },
    { "did not find expected comment or line break", "after | or > (a block of lines) only a "
      "comment may follow on its line: the text goes on the lines below, indented; quote a "
      "value that starts with | or > ('> out.txt')" },
};

/*  The hints that depend on the text at the error, not only on libyaml's
    words (s_hint_at): a value that starts with a character YAML
    reserves, a key with no space after its ":", a bracket left open or
    closed by the other one, text after a quoted value. */
static const char *s_hint_reserved = "a value that starts with @, ` or % (characters YAML "
                                     "reserves): quote the value ('@...')";
static const char *s_hint_no_space = "a \"KEY:VALUE\" with no space after the \":\" (on "
                                     "the line libyaml names) is no key: write KEY: VALUE "
                                     "(timeout: 5m)";
static const char *s_hint_unclosed_seq = "a [ opened and never closed: end the list with ]";
static const char *s_hint_unclosed_map = "a { opened and never closed: end the mapping with }";
static const char *s_hint_crossed_seq = "a list opened with [ and closed with }: close it "
                                        "with ]";
static const char *s_hint_crossed_map = "a mapping opened with { and closed with ]: close it "
                                        "with }";
static const char *s_hint_in_map = "in {...} the pairs are KEY: VALUE, split by \",\": a "
                                   "\",\" missing, or a value that holds \": \" (quote it)";
static const char *s_hint_bom = "a byte order mark (U+FEFF) inside the file, where YAML "
                                "takes one only at its start (two files joined, each with "
                                "its own?): delete it";
static const char *s_hint_after_quote = "text after a quoted value, or after a [...] or "
                                        "{...}, on its line: quote the whole value with the "
                                        "other quote ('echo \"a\" b')";

/*  The byte of buf at line and column col (0-based, in characters), or
    NULL past the end of that line. */
static const char *
s_at(const char *buf, size_t len, size_t line, size_t col)
{
    size_t i = s_line(buf, len, line);
    for (size_t c = 0; i < len && buf[i] != '\n'; i++) {
        if ((buf[i] & 0xC0) == 0x80)
            continue;
        if (c++ == col)
            return buf + i;
    }
    return NULL;
}

/*  The hint above that applies to the error problem at line and col
    (0-based), else NULL (evr_yaml_hint's then).  kline: the line of
    libyaml's context (the key it scanned, the bracket it opened). */
static const char *
s_hint_at(const char *problem, const char *buf, size_t len, size_t line, size_t col,
          size_t kline)
{
    /* a BOM past the file's start (libyaml skips only the first) */
    for (size_t i = s_line(buf, len, line); i + 2 < len && buf[i] != '\n'; i++)
        if (i && !memcmp(buf + i, "\xEF\xBB\xBF", 3))
            return s_hint_bom;
    if (strstr(problem, "could not find expected ':'")) {
        /* `timeout:5m`: a plain scalar where a key was to be */
        const char *k = s_at(buf, len, kline, 0), *end = k;
        while (end && end < buf + len && *end != '\n')
            end++;
        for (const char *c = k; c && c + 1 < end; c++)
            if (*c == ':' && c[1] != ' ' && c[1] != '\r' && c[1] != '/')
                return s_hint_no_space;
        return NULL;
    }
    const char *at = s_at(buf, len, line, col);
    bool seq = strstr(problem, "expected ',' or ']'") != NULL;
    if (seq || strstr(problem, "expected ',' or '}'")) {
        /* the list or mapping that was open: never closed, or closed by
           the other bracket (a [ inside a list's item has its own hint) */
        const char *rest = at ? at : buf + len;
        while (rest < buf + len && *rest && strchr(" \t\r\n", *rest))
            rest++;
        if (rest == buf + len || line > kline)   /* at the end, or lines below it */
            return seq ? s_hint_unclosed_seq : s_hint_unclosed_map;
        if (*rest == (seq ? '}' : ']'))
            return seq ? s_hint_crossed_seq : s_hint_crossed_map;
        return seq || *rest == '[' ? NULL : s_hint_in_map;
    }
    if (!at)
        return NULL;
    if (strstr(problem, "cannot start any token") && *at && strchr("@`%", *at))
        return s_hint_reserved;
    if (!strstr(problem, "did not find expected key"))
        return NULL;
    const char *start = s_at(buf, len, line, 0);
    const char *p = at;
    while (p > start && p[-1] == ' ')
        p--;
    return p > start && p[-1] && strchr("\"']}", p[-1]) ? s_hint_after_quote : NULL;
}

const char *
evr_yaml_hint(const char *problem)
{
    for (size_t i = 0; problem && i < sizeof s_hints / sizeof s_hints[0]; i++)
        if (strstr(problem, s_hints[i].problem))
            return s_hints[i].hint;
    return NULL;
}

/*  parser's error over buf[0..len): its 0-based line and column, and
    the words after "YAML syntax error: " into msg. */
static void
s_syntax(const yaml_parser_t *parser, const char *buf, size_t len, size_t *line_p,
         size_t *col_p, char *msg, size_t size)
{
    char ctx[256] = "";
    if (parser->context)
        snprintf(ctx, sizeof ctx, " (%s at line %zu)", parser->context,
                 parser->context_mark.line + 1);
    const char *problem = parser->problem ? parser->problem : "unknown";
    size_t line = parser->problem_mark.line, col = parser->problem_mark.column;
    if (parser->error == YAML_READER_ERROR) {
        size_t at = parser->problem_offset;
        int value = parser->problem_value;
        /* libyaml names the byte after a lead byte that it does not
           continue (the space after a Latin-1 "é"): the lead byte is
           the one to fix */
        bool trailing = strstr(problem, "trailing") && at <= len && at > 0;
        if (trailing) {
            while (at > 0 && ((unsigned char) buf[at - 1] & 0xC0) == 0x80)
                at--;
            at = at > 0 ? at - 1 : 0;
            value = (unsigned char) buf[at];
        }
        line = col = 0;
        for (size_t i = 0; i < at && i < len; i++) {
            if (buf[i] == '\n')
                line++, col = 0;
            else if ((buf[i] & 0xC0) != 0x80)
                col++;
        }
        if (trailing)
            snprintf(ctx, sizeof ctx, " (byte 0x%02x starts a UTF-8 sequence that the bytes "
                     "after it do not continue)", (unsigned) value);
        else if (value < 0 && at < len && ((unsigned char) buf[at] & 0x80))
            snprintf(ctx, sizeof ctx, " (byte 0x%02x)", (unsigned char) buf[at]);
        else if (value >= 0 && value < 0x100)
            snprintf(ctx, sizeof ctx, " (byte 0x%02x)", (unsigned) value);
        else if (value >= 0)
            snprintf(ctx, sizeof ctx, " (U+%04X)", (unsigned) value);
    }
    const char *hint = s_tab_at(buf, len, line, col) ? s_hints[0].hint
                     : parser->error != YAML_READER_ERROR
                           && s_hint_at(problem, buf, len, line, col, parser->context_mark.line)
                         ? s_hint_at(problem, buf, len, line, col, parser->context_mark.line)
                         : evr_yaml_hint(problem);
    snprintf(msg, size, "%s%s%s%s", problem, ctx, hint ? ": " : "", hint ? hint : "");
    *line_p = line;
    *col_p = col;
}

void
evr_yaml_syntax_error(const yaml_parser_t *parser, const char *buf, size_t len,
                      evr_diag_t *diag)
{
    char msg[900];
    size_t line, col;
    s_syntax(parser, buf, len, &line, &col, msg, sizeof msg);
    evr_diag_add_at(diag, (uint32_t) line + 1, (uint32_t) col + 1, "", "YAML syntax error: %s",
                    msg);
}

void
evr_yaml_syntax_text(const yaml_parser_t *parser, const char *buf, size_t len, char *out,
                     size_t size)
{
    char msg[900];
    size_t line, col;
    s_syntax(parser, buf, len, &line, &col, msg, sizeof msg);
    snprintf(out, size, "%zu:%zu: YAML syntax error: %s", line + 1, col + 1, msg);
}

static __thread uint64_t s_work;   /* evr_yaml_work */

uint64_t
evr_yaml_work(void)
{
    return s_work;
}

void
evr_yaml_work_add(uint64_t n)
{
    s_work += n;
}

/*  Whether ev's node has YAML's own tag !!NAME (own: the part after
    tag:yaml.org,2002:) that evrun cannot take, said in diag.  A value is
    read as the text written: the tags that name what that text already
    is (!!str, !!int...) change nothing, but !!binary (base64 YAML
    decodes), !!set, !!omap, !!pairs and the like would be taken as their
    text, and !!null on a value as that value. */
static bool
s_own_tag(const yaml_event_t *ev, const char *own, evr_diag_t *diag)
{
    static const char *const plain[] = { "str", "int", "float", "bool", "null", "map", "seq",
                                         "timestamp" };
    bool known = false;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0] && !known; i++)
        known = !strcmp(own, plain[i]);
    const char *v = ev->type == YAML_SCALAR_EVENT ? (const char *) ev->data.scalar.value : "";
    bool null_value = !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null")
                   || !strcmp(v, "NULL");
    if (known && (strcmp(own, "null") || null_value))
        return false;
    char q[68];
    evr_diag_add_at(diag, (uint32_t) ev->start_mark.line + 1,
                    (uint32_t) ev->start_mark.column + 1, "",
                    "the YAML tag \"!!%s\": evrun reads a value as the text written, so %s "
                    "(of YAML's own tags it takes !!str, !!int, !!float, !!bool, !!timestamp, "
                    "!!map, !!seq, and !!null on no value)",
                    evr_text_escape_ctl(own, q, sizeof q),
                    !strcmp(own, "binary") ? "a !!binary value would be its base64 text, not "
                                             "the bytes YAML decodes: write the text itself"
                    : !strcmp(own, "null") ? "!!null would not make the value null: write "
                                             "nothing, or ~, for no value"
                                           : "the tag would be dropped from the value: remove "
                                             "it");
    return true;
}

/*  Whether ev's node has a tag other than YAML's own (!!str...), said in
    diag.  libyaml's loader drops "!" from the value, so `run: ! grep -q
    x f` would run `grep -q x f`, the opposite: evrun's files take no
    tags, and a value that starts with "!" is quoted. */
static bool
s_tag(const yaml_event_t *ev, evr_diag_t *diag)
{
    const yaml_char_t *tag = ev->type == YAML_SCALAR_EVENT ? ev->data.scalar.tag
                           : ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.tag
                           : ev->type == YAML_MAPPING_START_EVENT ? ev->data.mapping_start.tag
                           : NULL;
    if (!tag)
        return false;
    char q[68];
    if (!strncmp((const char *) tag, "tag:yaml.org,2002:", 18))
        return s_own_tag(ev, (const char *) tag + 18, diag);
    evr_diag_add_at(diag, (uint32_t) ev->start_mark.line + 1,
                    (uint32_t) ev->start_mark.column + 1, "", "%s%s%s: YAML tags mean nothing "
                    "to evrun, and the tag is not part of the value (run: ! grep "
                    "-q x f would run grep -q x f): quote a value that starts with \"!\" "
                    "('! ...'), or remove the tag", strcmp((const char *) tag, "!")
                    ? "the YAML tag \"" : "a \"!\" that starts a YAML tag",
                    strcmp((const char *) tag, "!")
                    ? evr_text_escape_ctl((const char *) tag, q, sizeof q) : "",
                    strcmp((const char *) tag, "!") ? "\"" : "");
    return true;
}

bool
evr_yaml_precheck(const char *buf, size_t len, evr_diag_t *diag)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        evr_diag_add_at(diag, 0, 0, "", "yaml_parser_initialize failed");
        return false;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *) buf, len);
    bool ok = true, done = false, tagged = false;
    unsigned depth = 0;
    size_t nodes = 0;
    while (ok && !done) {
        yaml_event_t ev;
        s_work++;
        if (!yaml_parser_parse(&parser, &ev)) {
            evr_yaml_syntax_error(&parser, buf, len, diag);
            ok = false;
            break;
        }
        tagged = s_tag(&ev, diag) || tagged;
        if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
            if (++depth > EVR_YAML_MAX_DEPTH) {
                evr_diag_add_at(diag, (uint32_t) ev.start_mark.line + 1,
                                (uint32_t) ev.start_mark.column + 1, "",
                                "nested deeper than %d levels", EVR_YAML_MAX_DEPTH);
                ok = false;
            }
        }
        else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
            depth--;
        else if (ev.type == YAML_STREAM_END_EVENT)
            done = true;
        /* the nodes the loader's walk counts (an alias once here):
           the ends of maps and lists and the stream's and document's
           marks are no nodes, and each is bound to one that is */
        bool node = ev.type == YAML_SCALAR_EVENT || ev.type == YAML_ALIAS_EVENT
                 || ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT;
        if (ok && node && ++nodes > EVR_YAML_MAX_NODES) {
            evr_diag_add_at(diag, (uint32_t) ev.start_mark.line + 1,
                            (uint32_t) ev.start_mark.column + 1, "",
                            "document too large: more than %u nodes", EVR_YAML_MAX_NODES);
            ok = false;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return ok && !tagged;
}
