/*  evr_spec_image.c: the grammar of a container image reference, checked
    where a pipeline names an image (the spec's and each step's `image`)
    and where the provisioner's config does (a podman provider's runner
    image), so that a reference podman cannot parse is refused at
    validation rather than at the pull.

    The grammar is the distribution project's (docker/distribution
    reference, which podman's containers/image uses), in its small form:

        [HOST[:PORT]/]COMPONENT[/COMPONENT]...[:TAG][@ALGORITHM:HEX]

    A component is lower-case letters and digits, parts of it joined by
    one separator: `.`, `_`, `__` or any run of `-`.  The first of
    several components is a registry host when it holds a `.`, a `:PORT`
    or an upper-case letter, or is `localhost` (docker's rule, which
    podman keeps: `team/tool` is a path on the default registry,
    `Team/tool` the image `tool` at the host `Team`).  The name (host and components) is at most 255
    bytes; a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; a digest's
    algorithm is [A-Za-z][A-Za-z0-9]* parts joined by + . _ -, its hex at
    least 32 digits (sha256: 64 and sha512: 128, lower case).  Nothing
    more is checked here: whether the image exists is the pull's to say.
*/
#include "evr_spec.h"

#include <stdio.h>
#include <string.h>

#define S_NAME_MAX 255
#define S_TAG_MAX 128

static bool
s_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
s_alnum(char c)
{
    return s_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool
s_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*  Whether the n bytes at p are a path component: [a-z0-9]+ parts
    joined by `.`, `_`, `__` or a run of `-`. */
static bool
s_component_ok(const char *p, size_t n)
{
    if (n == 0 || !s_lower_alnum(p[0]) || !s_lower_alnum(p[n - 1]))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (s_lower_alnum(p[i]))
            continue;
        size_t j = i;   /* the separator p[i..j) */
        if (p[i] == '-')
            while (j < n && p[j] == '-')
                j++;
        else if (p[i] == '_')
            j += i + 1 < n && p[i + 1] == '_' ? 2 : 1;
        else if (p[i] == '.')
            j++;
        else
            return false;
        if (j >= n || !s_lower_alnum(p[j]))
            return false;   /* two separators in a row, or one last */
        i = j;
    }
    return true;
}

/*  Whether the n bytes at p are a registry host: DNS labels of
    [A-Za-z0-9-] (no - first or last) joined by dots, or an IPv6 address
    in brackets, then an optional :PORT, 1 to 65535 (podman would take a
    larger one, and every pull of it fail). */
static bool
s_host_ok(const char *p, size_t n)
{
    size_t i = 0;
    if (n && p[0] == '[') {
        while (i < n && p[i] != ']')
            i++;
        if (i == n || i < 3 || strspn(p + 1, "0123456789abcdefABCDEF:") < i - 1)
            return false;
        i++;
    }
    else {
        size_t label = 0;
        for (; i < n && p[i] != ':'; i++) {
            if (p[i] == '.') {
                if (label == 0 || p[i - 1] == '-')
                    return false;
                label = 0;
            }
            else if (s_alnum(p[i]) || (p[i] == '-' && label > 0))
                label++;
            else
                return false;
        }
        if (label == 0 || p[i - 1] == '-')
            return false;
    }
    if (i == n)
        return true;
    const char *colon = p + i;
    size_t digits = n - i - 1;
    if (*colon != ':' || digits < 1 || digits > 5 || strspn(colon + 1, "0123456789") < digits)
        return false;
    unsigned long port = 0;
    for (size_t k = 1; k <= digits; k++)
        port = port * 10 + (unsigned long) (colon[k] - '0');
    return port >= 1 && port <= 65535;
}

/*  Why the digest d (after the @) is not ALGORITHM:HEX, or NULL. */
static const char *
s_digest_problem(const char *d)
{
    const char *colon = strchr(d, ':');
    const char *p = d;
    bool ok = colon && colon > d;
    while (ok && p < colon) {   /* [A-Za-z][A-Za-z0-9]* parts joined by + . _ - */
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');
        for (p++; ok && p < colon && s_alnum(*p); p++)
            ;
        if (ok && p < colon)
            ok = strchr("+._-", *p++) != NULL && p < colon;
    }
    size_t n = ok ? strlen(colon + 1) : 0, hex = 0;
    while (hex < n && s_hex(colon[1 + hex]))
        hex++;
    size_t alg = ok ? (size_t) (colon - d) : 0;
    size_t want = alg == 6 && !memcmp(d, "sha256", 6) ? 64
                : alg == 6 && !memcmp(d, "sha512", 6) ? 128 : 0;
    if (!ok || hex != n || n < 32 || (want && n != want))
        return want == 128 ? "is not sha512: and 128 hex digits"
                           : "is not ALGORITHM:HEX (sha256: and 64 hex digits)";
    if (want && strspn(colon + 1, "0123456789abcdef") != n)
        return "has hex digits in upper case (lower case only)";
    return NULL;
}

const char *
evr_spec_image_problem(const char *ref)
{
    static __thread char why[320];
    if (!*ref)
        return "an empty reference";
    const char *at = strchr(ref, '@');
    if (at) {
        const char *bad = s_digest_problem(at + 1);
        if (bad) {
            snprintf(why, sizeof why, "the digest \"%.140s\" %s", at + 1, bad);
            return why;
        }
    }
    size_t end = at ? (size_t) (at - ref) : strlen(ref);  /* NAME[:TAG] */
    size_t slash = end;                                   /* after the last / */
    while (slash > 0 && ref[slash - 1] != '/')
        slash--;
    const char *tag = memchr(ref + slash, ':', end - slash);
    size_t name = tag ? (size_t) (tag - ref) : end;
    if (tag) {
        size_t n = end - (size_t) (tag - ref) - 1;
        if (n == 0)
            return "an empty tag after the \":\" (write NAME:TAG, or NAME alone for the tag "
                   "latest)";
        bool ok = n <= S_TAG_MAX && (s_alnum(tag[1]) || tag[1] == '_');
        for (size_t i = 2; ok && i <= n; i++)
            ok = s_alnum(tag[i]) || tag[i] == '_' || tag[i] == '.' || tag[i] == '-';
        if (!ok) {
            snprintf(why, sizeof why, "the tag \"%.*s\" is not 1-128 of letters, digits, _ . "
                     "- (the first not . or -)", (int) (n > 64 ? 64 : n), tag + 1);
            return why;
        }
    }
    if (name == 0)
        return "no name before the tag or digest";
    if (name > S_NAME_MAX)
        return "the name (before any tag or digest) is over 255 bytes";
    const char *first_end = memchr(ref, '/', name);
    size_t i = 0;
    if (first_end) {
        size_t n = (size_t) (first_end - ref);
        bool upper = false;
        for (size_t k = 0; k < n; k++)
            upper = upper || (ref[k] >= 'A' && ref[k] <= 'Z');
        bool host = memchr(ref, '.', n) || memchr(ref, ':', n) || ref[0] == '['
                 || (n == 9 && !memcmp(ref, "localhost", 9)) || upper;
        if (host && !s_host_ok(ref, n)) {
            snprintf(why, sizeof why, "\"%.*s\" is not a registry host (HOST or HOST:PORT, a "
                     "host name of letters, digits, - and dots, a PORT 1-65535)", (int) (n > 64 ? 64 : n),
                     ref);
            return why;
        }
        if (host)
            i = n + 1;
    }
    while (i <= name) {
        const char *e = memchr(ref + i, '/', name - i);
        size_t n = e ? (size_t) (e - (ref + i)) : name - i;
        if (!s_component_ok(ref + i, n)) {
            if (n == 0)
                return "an empty component in the name (a / first, last or twice)";
            bool first = i == 0 && first_end;   /* not taken for a host */
            snprintf(why, sizeof why, "\"%.*s\" is not a name component (lower-case letters and "
                     "digits, joined by one . _ __ or -)%s", (int) (n > 64 ? 64 : n), ref + i,
                     first ? "; a registry host, first, holds a ., a :PORT or an "
                           "upper-case letter, or is localhost"
                           : "");
            return why;
        }
        i += n + 1;
    }
    return NULL;
}
