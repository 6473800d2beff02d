/*  test_output: podman frame demultiplexing split at every byte, and
    secret masking across chunk boundaries with exact raw counts. */
#include "evr_event.h"
#include "evr_output.h"
#include "evr_podman.h"
#include "evr_test.h"

typedef struct {
    char out[2][256];
    size_t len[2];
    int calls;
} s_sink_t;

static void
s_sink(int stream, const uint8_t *data, size_t len, void *arg)
{
    s_sink_t *s = arg;
    int i = stream == 1 ? 0 : 1;
    memcpy(s->out[i] + s->len[i], data, len);
    s->len[i] += len;
    s->calls++;
}

static size_t
s_frame(uint8_t *buf, int stream, const char *payload)
{
    size_t n = strlen(payload);
    buf[0] = (uint8_t) stream;
    buf[1] = buf[2] = buf[3] = 0;
    buf[4] = (uint8_t) (n >> 24);
    buf[5] = (uint8_t) (n >> 16);
    buf[6] = (uint8_t) (n >> 8);
    buf[7] = (uint8_t) n;
    memcpy(buf + 8, payload, n);
    return 8 + n;
}

static void
test_demux_every_split(void)
{
    uint8_t stream[512];
    size_t n = 0;
    n += s_frame(stream + n, 1, "hello\n");
    n += s_frame(stream + n, 2, "oops\n");
    n += s_frame(stream + n, 1, "");
    n += s_frame(stream + n, 1, "world\n");
    /* every way of cutting the stream in two, and byte by byte */
    for (size_t cut = 0; cut <= n; cut++) {
        evr_demux_t d = { 0 };
        s_sink_t s = { 0 };
        CHECK(evr_demux_feed(&d, stream, cut, s_sink, &s));
        CHECK(evr_demux_feed(&d, stream + cut, n - cut, s_sink, &s));
        CHECK(s.len[0] == 12 && memcmp(s.out[0], "hello\nworld\n", 12) == 0);
        CHECK(s.len[1] == 5 && memcmp(s.out[1], "oops\n", 5) == 0);
    }
    evr_demux_t d = { 0 };
    s_sink_t s = { 0 };
    for (size_t i = 0; i < n; i++)
        CHECK(evr_demux_feed(&d, stream + i, 1, s_sink, &s));
    CHECK(s.len[0] == 12 && s.len[1] == 5);
    /* a corrupt header stops the stream */
    evr_demux_t bad = { 0 };
    uint8_t junk[8] = { 7, 1, 0, 0, 0, 0, 0, 1 };
    CHECK(!evr_demux_feed(&bad, junk, sizeof junk, s_sink, &s));
}

/*  Feeds text in pieces of `piece` bytes; returns the masked output and
    checks the raw counts add up. */
static void
s_mask_run(const char *const *secrets, size_t ns, const char *text, size_t piece, char *out)
{
    evr_mask_t *m = evr_mask_new(secrets, ns);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, raw = 0, n = strlen(text);
    for (size_t i = 0; i < n; i += piece) {
        size_t take = n - i < piece ? n - i : piece;
        raw += evr_mask_feed(m, (const uint8_t *) text + i, take, false, &buf, &len, &cap);
    }
    raw += evr_mask_feed(m, NULL, 0, true, &buf, &len, &cap);
    CHECK(raw == n);
    CHECK(evr_mask_pending(m) == 0);
    memcpy(out, buf, len);
    out[len] = '\0';
    free(buf);
    evr_mask_destroy(&m);
}

static void
test_mask(void)
{
    const char *secrets[] = { "hunter2", "abc", "abcdef", "" };
    char out[512];
    for (size_t piece = 1; piece <= 40; piece++) {
        s_mask_run(secrets, 4, "pw=hunter2; a=abc; b=abcdef; c=abcdeX; hunter", piece, out);
        CHECK_STR(out, "pw=***; a=***; b=***; c=***deX; hunter");
    }
    /* secrets that overlap in the text: one ***, nothing of either shown */
    const char *over[] = { "12345678abcd", "abcdWXYZ9876", "9876-tail" };
    for (size_t piece = 1; piece <= 40; piece++) {
        s_mask_run(over, 2, "<12345678abcdWXYZ9876>", piece, out);
        CHECK_STR(out, "<***>");
        s_mask_run(over, 3, "<12345678abcdWXYZ9876-tail> <abcdWXYZ9876-tai>", piece, out);
        CHECK_STR(out, "<***> <***-tai>");
    }
    s_mask_run(secrets, 0, "no secrets here", 3, out);
    CHECK_STR(out, "no secrets here");
    /* held back while it could still be a secret, released when not */
    evr_mask_t *m = evr_mask_new(secrets, 1);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    CHECK(evr_mask_feed(m, (const uint8_t *) "xhunt", 5, false, &buf, &len, &cap) == 1);
    CHECK(evr_mask_pending(m) == 4 && len == 1);
    CHECK(evr_mask_feed(m, (const uint8_t *) "ing", 3, false, &buf, &len, &cap) == 7);
    CHECK(len == 8 && memcmp(buf, "xhunting", 8) == 0);
    free(buf);
    evr_mask_destroy(&m);
}

/*  A secret of several lines (a PEM key): each line printed alone is
    masked too (head -2, sed -n 2p, CRLF), split across feeds anywhere;
    a line under EVR_MASK_PIECE_MIN bytes, or of blanks only, is not
    masked on its own, the whole secret is, however short. */
static void
test_mask_lines(void)
{
    const char *pem = "-----BEGIN KEY-----\n"
                      "MIIEpAIBAAKCAQEA1x\n"
                      "q2Vb7Zk9LmN0pQ==\r\n"
                      "    \n"
                      "ab=\n"
                      "-----END KEY-----";
    const char *secrets[] = { pem };
    char text[1024], out[1024];
    snprintf(text, sizeof text, "all:%s.\n"
             "head: -----BEGIN KEY-----\nMIIEpAIBAAKCAQEA1x\n"
             "md: MIIEpAIBAAKCAQEA1x|q2Vb7Zk9LmN0pQ==\r\n"
             "short: ab= blanks:    .\n", pem);
    for (size_t piece = 1; piece <= 60; piece++) {
        s_mask_run(secrets, 1, text, piece, out);
        CHECK_STR(out, "all:***.\n"
                       "head: ***\n***\n"
                       "md: ***|***\r\n"
                       "short: ab= blanks:    .\n");
    }
    /* lines of a secret that ends in a newline, or in CRLF */
    const char *crlf[] = { "line-one\r\nline-two\r\n", "x" };
    s_mask_run(crlf, 1, "a line-one b line-two\r\n c", 5, out);
    CHECK_STR(out, "a *** b ***\r\n c");
    /* one line with a final CR: the line without it too */
    const char *cr[] = { "token-value\r" };
    s_mask_run(cr, 1, "t=token-value\n", 3, out);
    CHECK_STR(out, "t=***\n");
    /* a one-line secret and a short one are masked whole, as ever */
    s_mask_run(crlf + 1, 1, "text", 2, out);
    CHECK_STR(out, "te***t");
    const char *tiny[] = { "a\nbc" };
    s_mask_run(tiny, 1, "a\nbc; a; bc", 4, out);
    CHECK_STR(out, "***; a; bc");
    /* a line that is the whole of another secret, or found twice */
    const char *twice[] = { "dup-line\ndup-line\nother", "dup-line" };
    evr_mask_t *m = evr_mask_new(twice, 2);
    CHECK(evr_mask_dropped(m) == 0);
    evr_mask_destroy(&m);
    s_mask_run(twice, 2, "dup-line other dup-lin", 7, out);
    CHECK_STR(out, "*** *** dup-lin");
}

/*  A secret of several lines registered while output is held back: the
    held bytes are scanned for its lines too. */
static void
test_mask_add_lines(void)
{
    const char *before[] = { "sec-zzz" };   /* holds back "sec" */
    evr_mask_t *m = evr_mask_new(before, 1);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, raw = 0;
    raw += evr_mask_feed(m, (const uint8_t *) "see sec", 7, false, &buf, &len, &cap);
    CHECK(evr_mask_pending(m) == 3);
    evr_mask_add(m, "first-line\nsecond-line\n");
    raw += evr_mask_feed(m, (const uint8_t *) "ond-li", 6, false, &buf, &len, &cap);
    raw += evr_mask_feed(m, (const uint8_t *) "ne, first-line\n", 15, true, &buf, &len, &cap);
    CHECK(raw == 28 && evr_mask_pending(m) == 0);
    CHECK(len == 13 && memcmp(buf, "see ***, ***\n", 13) == 0);
    free(buf);
    evr_mask_destroy(&m);
}

/*  The bound on lines: past EVR_MASK_PIECES_MAX a secret's lines are not
    masked on their own, its whole value still is; counted. */
static void
test_mask_pieces_max(void)
{
    enum { LINES = EVR_MASK_PIECES_MAX + 10 };
    char *big = malloc((size_t) LINES * 8 + 1);
    size_t n = 0;
    for (int i = 0; i < LINES; i++)
        n += (size_t) sprintf(big + n, "L%05d\n", i);
    const char *secrets[] = { big, "two-line\nsecret" };
    evr_mask_t *m = evr_mask_new(secrets, 2);
    CHECK(evr_mask_dropped(m) == 10 + 2);
    evr_mask_destroy(&m);
    char out[256];
    s_mask_run(secrets, 2, "L00000 L04095 L04096 secret", 3, out);
    CHECK_STR(out, "*** *** L04096 secret");
    char *text = malloc(n + 8);
    snprintf(text, n + 8, "<%s>", big);
    char *all = evr_mask_text(secrets, 2, text);
    CHECK_STR(all, "<***>");
    free(all);
    free(text);
    free(big);
}

/*  evr_mask_text: one string masked, a NUL-terminated copy. */
static void
test_mask_text(void)
{
    const char *secrets[] = { "pass-word\nline-two", "" };
    char *s = evr_mask_text(secrets, 2, "why: line-two failed; pass-word");
    CHECK_STR(s, "why: *** failed; ***");
    free(s);
    s = evr_mask_text(NULL, 0, "");
    CHECK_STR(s, "");
    free(s);
    /* a text cut short: a tail that could begin a secret (or a line of
       one) is dropped, a whole one masked, other text kept */
    s = evr_mask_text_cut(secrets, 2, "why: pass-word, then hunter pass-w");
    CHECK_STR(s, "why: ***, then hunter ");
    free(s);
    s = evr_mask_text_cut(secrets, 2, "ends in line-t");
    CHECK_STR(s, "ends in ");
    free(s);
    s = evr_mask_text_cut(secrets, 2, "ends clean");
    CHECK_STR(s, "ends clean");
    free(s);
}

/*  Bounded output: a secret of one byte triples what it masks, and a
    long secret's prefix can hold back 60 KiB at once; no feed appends
    past the limit, and feeding on (empty, final) masks all of it. */
static void
test_mask_limit(void)
{
    enum { N = 100000, LIMIT = 1000 };
    char *longs = malloc(60001);
    memset(longs, 'x', 59999);
    longs[59999] = 'y';
    longs[60000] = '\0';
    const char *secrets[] = { "x", longs };
    for (int set = 1; set <= 2; set++) {
        evr_mask_t *m = evr_mask_new(secrets, (size_t) set);
        evr_mask_limit(m, LIMIT);
        uint8_t *text = malloc(N), *buf = NULL;
        memset(text, 'x', N);
        text[N - 1] = 'z';
        size_t len = 0, cap = 0, raw = 0, out = 0, feeds = 0;
        bool over = false, masks_only = true;
        raw += evr_mask_feed(m, text, N, false, &buf, &len, &cap);
        for (bool final = false;; final = true) {
            over |= len > LIMIT;
            for (size_t i = 0; i + 1 < len; i++)   /* all of it "***", the 'z' last */
                masks_only &= buf[i] == '*';
            out += len;
            len = 0;
            if (++feeds > 1000 || (final && evr_mask_pending(m) == 0))
                break;
            raw += evr_mask_feed(m, NULL, 0, final, &buf, &len, &cap);
        }
        CHECK(!over);
        CHECK(masks_only);
        CHECK(raw == N);
        CHECK(out == 3 * (N - 1) + 1);
        free(buf);
        free(text);
        evr_mask_destroy(&m);
    }
    free(longs);
    /* no secrets: the limit holds too */
    evr_mask_t *m = evr_mask_new(NULL, 0);
    evr_mask_limit(m, 10);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    CHECK(evr_mask_feed(m, (const uint8_t *) "0123456789abcdef", 16, false, &buf, &len, &cap) == 10);
    CHECK(len == 10 && evr_mask_pending(m) == 6);
    len = 0;
    CHECK(evr_mask_feed(m, NULL, 0, true, &buf, &len, &cap) == 6);
    CHECK(len == 6 && memcmp(buf, "abcdef", 6) == 0);
    free(buf);
    evr_mask_destroy(&m);
}

/*  The masker as it was first written (every input byte copied, each
    position tried against every secret; a match grown by the secrets
    that overlap it): the reference the fast one
    must agree with, piece by piece. */
typedef struct {
    const char *const *secrets;     /* longest first */
    size_t n;
    uint8_t pending[4096];
    size_t plen;
} s_ref_t;

static size_t
s_ref_feed(s_ref_t *r, const uint8_t *raw, size_t len, bool final, uint8_t *out, size_t *out_len)
{
    if (len)
        memcpy(r->pending + r->plen, raw, len);
    r->plen += len;
    const uint8_t *p = r->pending;
    size_t n = r->plen, i = 0, run = 0;
    while (i < n) {
        bool matched = false, partial = false;
        for (size_t s = 0; s < r->n; s++) {
            size_t sl = strlen(r->secrets[s]);
            if (p[i] != (uint8_t) r->secrets[s][0])
                continue;
            if (i + sl <= n) {
                if (memcmp(p + i, r->secrets[s], sl) == 0) {
                    /* grown by each secret that begins inside and ends
                       past it; wait when one could */
                    size_t end = i + sl;
                    for (size_t j = i + 1; j < end && !partial; j++)
                        for (size_t t = 0; t < r->n; t++) {
                            size_t tl = strlen(r->secrets[t]);
                            if (j + tl <= n) {
                                if (memcmp(p + j, r->secrets[t], tl) == 0 && j + tl > end)
                                    end = j + tl;
                            }
                            else if (!final && memcmp(p + j, r->secrets[t], n - j) == 0)
                                partial = true;
                        }
                    if (partial)
                        break;
                    memcpy(out + *out_len, p + run, i - run);
                    *out_len += i - run;
                    memcpy(out + *out_len, "***", 3);
                    *out_len += 3;
                    i = end;
                    run = i;
                    matched = true;
                    break;
                }
            }
            else if (!final && memcmp(p + i, r->secrets[s], n - i) == 0) {
                partial = true;
                break;
            }
        }
        if (matched)
            continue;
        if (partial)
            break;
        i++;
    }
    memcpy(out + *out_len, p + run, i - run);
    *out_len += i - run;
    memmove(r->pending, r->pending + i, n - i);
    r->plen = n - i;
    return i;
}

/*  Random texts over a small alphabet, cut at random, against random
    secret sets (one first byte: the memchr path; several: the table):
    the same output and the same raw counts as the reference, each piece. */
static void
test_mask_agrees_with_reference(void)
{
    static const char *const sets[][4] = {
        { "abab", "aab", "ab", NULL },          /* one first byte */
        { "b\nb", "aab", "ba", NULL },          /* several */
        { "abcab", "cab", "bc", "c" },
        { "abca\ncab\nbcbc", "cab", NULL, NULL },   /* lines: abca, bcbc */
    };
    /* what the reference is given: the patterns, longest first */
    static const char *const refs[][4] = {
        { "abab", "aab", "ab", NULL },
        { "b\nb", "aab", "ba", NULL },
        { "abcab", "cab", "bc", "c" },
        { "abca\ncab\nbcbc", "abca", "bcbc", "cab" },
    };
    unsigned seed = 4711;
    int bad = 0;
    for (size_t set = 0; set < 4; set++) {
        const char *const *sec = sets[set];
        size_t ns = sec[3] ? 4 : sec[2] ? 3 : 2;
        for (int round = 0; round < 300 && !bad; round++) {
            char text[600];
            size_t tn = (size_t) (rand_r(&seed) % 500);
            for (size_t i = 0; i < tn; i++)
                text[i] = "abc\n"[rand_r(&seed) % 4];
            evr_mask_t *m = evr_mask_new(sec, ns);
            s_ref_t r = { .secrets = refs[set], .n = refs[set][3] ? 4 : 3 };
            uint8_t *buf = NULL, want[2048];
            size_t len = 0, cap = 0, wlen = 0;
            for (size_t at = 0; at <= tn;) {
                size_t take = (size_t) (rand_r(&seed) % 40);
                if (take > tn - at)
                    take = tn - at;
                bool final = at + take == tn && rand_r(&seed) % 2;
                size_t a = evr_mask_feed(m, (const uint8_t *) text + at, take, final, &buf, &len,
                                         &cap);
                size_t b = s_ref_feed(&r, (const uint8_t *) text + at, take, final, want, &wlen);
                if (a != b || len != wlen || (len && memcmp(buf, want, len) != 0)
                    || evr_mask_pending(m) != r.plen)
                    bad++;
                at += take;
                if (final || (take == 0 && at == tn))
                    break;
            }
            size_t a = evr_mask_feed(m, NULL, 0, true, &buf, &len, &cap);
            size_t b = s_ref_feed(&r, NULL, 0, true, want, &wlen);
            if (a != b || len != wlen || (len && memcmp(buf, want, len) != 0)
                || evr_mask_pending(m))
                bad++;
            free(buf);
            evr_mask_destroy(&m);
        }
    }
    CHECK(bad == 0);
}

/*  A long secret that overlaps itself at every byte, in a long run of
    it: masked in bounded work (its length compared at each byte took
    20 s for this MiB), all but the run's last bytes. */
static void
test_mask_overlap_bounded(void)
{
    size_t len = 32768, n = 1 << 20;
    char *sec = evr_malloc(len + 1), *text = evr_malloc(n);
    memset(sec, 'a', len);
    sec[len] = '\0';
    memset(text, 'a', n);
    const char *secrets[] = { sec };
    evr_mask_t *m = evr_mask_new(secrets, 1);
    uint8_t *out = NULL;
    size_t olen = 0, cap = 0, raw = 0;
    uint64_t t0 = evr_mono_ns();
    for (size_t i = 0; i < n; i += 65536)
        raw += evr_mask_feed(m, (const uint8_t *) text + i, 65536, false, &out, &olen, &cap);
    raw += evr_mask_feed(m, NULL, 0, true, &out, &olen, &cap);
    /* its time is said, not asserted (tests assert no speed): 6 ms here,
       20 s without the bound */
    fprintf(stderr, "  1 MiB masked in %.3f s\n", (double) (evr_mono_ns() - t0) / 1e9);
    CHECK(raw == n);
    CHECK(olen >= 3 && memcmp(out, "***", 3) == 0);
    size_t shown = 0;
    for (size_t i = 0; i < olen; i++)
        shown += out[i] == 'a';
    CHECK(shown < len);
    free(out);
    evr_mask_destroy(&m);
    free(text);
    free(sec);
}

/*  A long podman error keeps its head and its cause, in valid UTF-8. */
static void
test_podman_message(void)
{
    char body[4096];
    size_t n = (size_t) snprintf(body, sizeof body, "{\"cause\":\"x\",\"message\":\"error during "
                                 "bulk transfer for copier.request{");
    for (int i = 0; i < 1000; i++)
        n += (size_t) snprintf(body + n, sizeof body - n, "\u00e9");   /* 2 bytes each */
    n += (size_t) snprintf(body + n, sizeof body - n, "}: reading tar stream: expected EOF: "
                           "unexpected EOF\",\"response\":500}");
    char buf[384];
    CHECK(evr_podman_message(body, n, buf, sizeof buf));   /* cut */
    CHECK(strlen(buf) < sizeof buf);
    CHECK(strncmp(buf, "error during bulk transfer for copier.request{", 46) == 0);
    CHECK_CONTAINS(buf, " [...] ");
    size_t len = strlen(buf);
    const char *cause = "}: reading tar stream: expected EOF: unexpected EOF";
    CHECK(len > strlen(cause) && strcmp(buf + len - strlen(cause), cause) == 0);
    /* no character cut in two: every 0xc3 is followed by its 0xa9 */
    bool whole = true;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) buf[i] == 0xc3)
            whole &= (unsigned char) buf[i + 1] == 0xa9;
        else if ((unsigned char) buf[i] == 0xa9)
            whole &= i > 0 && (unsigned char) buf[i - 1] == 0xc3;
    CHECK(whole);
    /* a short one is kept as it is */
    const char *small = "{\"message\":\"no such container\"}";
    CHECK(!evr_podman_message(small, strlen(small), buf, sizeof buf));
    CHECK_STR(buf, "no such container");
    /* a body that is no JSON, nor UTF-8, with a NUL: valid UTF-8 all
       through, for the events it goes into */
    CHECK(!evr_podman_message("bad \xff gate\0way\n", 15, buf, sizeof buf));
    CHECK_STR(buf, "bad ? gate?way");
}

/*  $EVRUN_OUTPUT: good lines kept, bad ones skipped with a warning each,
    bounds held; never a crash on any bytes. */
static void
test_outputs_parse(void)
{
    static const char text[] = "A=1\n"
                               "\n"
                               "B_2=two words = and more\r\n"
                               "no equals sign\n"
                               "1X=bad key\n"
                               "=empty key\n"
                               "A=replaced\n"
                               "EMPTY=\n"
                               "LAST=no newline";
    evr_strmap_t m = { 0 };
    char *warn = NULL;
    evr_outputs_parse(text, sizeof text - 1, &m, &warn);
    CHECK(m.n == 4);
    CHECK_STR(evr_strmap_get(&m, "A"), "replaced");
    CHECK_STR(evr_strmap_get(&m, "B_2"), "two words = and more");
    CHECK_STR(evr_strmap_get(&m, "EMPTY"), "");
    CHECK_STR(evr_strmap_get(&m, "LAST"), "no newline");
    CHECK(warn && strstr(warn, "line 4: expected KEY=VALUE"));
    CHECK(warn && strstr(warn, "line 5: KEY is not an environment variable name"));
    CHECK(warn && strstr(warn, "line 6: KEY is 1-64 bytes"));
    free(warn);
    evr_strmap_free(&m);

    /* 100 keys: 64 kept, the rest said once each (at most 8 lines, then a count) */
    char *many = evr_calloc(1, 100 * 16);
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t) sprintf(many + n, "K%d=%d\n", i, i);
    evr_outputs_parse(many, n, &m, &warn);
    CHECK(m.n == EVR_OUTPUTS_MAX_KEYS);
    CHECK(warn && strstr(warn, "line 65: more than 64 keys"));
    CHECK(warn && strstr(warn, "28 more bad lines skipped"));
    free(warn);
    evr_strmap_free(&m);
    free(many);

    /* a value over 4096 bytes, a NUL, invalid UTF-8 */
    char big[5000 + 8];
    memset(big, 'x', sizeof big);
    memcpy(big, "BIG=", 4);
    big[sizeof big - 1] = '\n';
    evr_outputs_parse(big, sizeof big, &m, &warn);
    CHECK(m.n == 0 && warn && strstr(warn, "VALUE over 4096 bytes"));
    free(warn);
    static const char bin[] = "N=a\0b\nU=\xff\xfe\nOK=1\n";
    evr_outputs_parse(bin, sizeof bin - 1, &m, &warn);
    CHECK(m.n == 1 && !strcmp(m.k[0], "OK"));
    CHECK(warn && strstr(warn, "line 1: VALUE holds a NUL byte"));   /* was "not UTF-8" */
    CHECK(warn && strstr(warn, "line 2: VALUE is not UTF-8 text"));
    free(warn);
    evr_strmap_free(&m);

    /* control characters: a terminal's commands in what evrun-cli status
       prints (a \r mid-line, an ESC, DEL, a C1 CSI), refused; a tab kept */
    static const char ctl[] = "CR=a\rb\nESC=\x1b[2Kforged\nDEL=x\x7f\nCSI=\xc2\x9b" "31m\n"
                              "TAB=a\tb\nLAT=\xc2\xa0\xc3\xa9\nEND=ok\r\n";
    evr_outputs_parse(ctl, sizeof ctl - 1, &m, &warn);
    CHECK(m.n == 3);
    CHECK_STR(evr_strmap_get(&m, "TAB"), "a\tb");
    CHECK_STR(evr_strmap_get(&m, "LAT"), "\xc2\xa0\xc3\xa9");
    CHECK_STR(evr_strmap_get(&m, "END"), "ok");
    CHECK(warn && strstr(warn, "line 1: VALUE holds a control character (U+000D): one line "
                               "of text, tabs allowed"));
    CHECK(warn && strstr(warn, "line 2: VALUE holds a control character (U+001B)"));
    CHECK(warn && strstr(warn, "line 3: VALUE holds a control character (U+007F)"));
    CHECK(warn && strstr(warn, "line 4: VALUE holds a control character (U+009B)"));
    free(warn);
    evr_strmap_free(&m);

    /* random bytes: no crash, every key kept is a name */
    uint32_t seed = 42;
    char rnd[2048];
    for (int round = 0; round < 200; round++) {
        for (size_t k = 0; k < sizeof rnd; k++) {
            seed = seed * 1103515245u + 12345u;
            rnd[k] = "AB_=\n\r x1\xc3\xa9"[(seed >> 16) % 12];
        }
        evr_outputs_parse(rnd, sizeof rnd, &m, &warn);
        for (uint32_t k = 0; k < m.n; k++)
            CHECK(evr_spec_env_name_ok(m.k[k]) && !strchr(m.v[k], '\n')
                  && !strchr(m.v[k], '\r'));
        free(warn);
        evr_strmap_free(&m);
    }
    evr_outputs_parse("", 0, &m, &warn);
    CHECK(m.n == 0 && warn == NULL);
}

static void
test_outputs_env_name(void)
{
    char *s = evr_outputs_env_name("build", "VERSION");
    CHECK_STR(s, "EVRUN_OUT_BUILD_VERSION");
    free(s);
    s = evr_outputs_env_name("my-step.2", "x");
    CHECK_STR(s, "EVRUN_OUT_MY_STEP_2_x");
    free(s);
    s = evr_outputs_env_name("build[OS=linux,V=1.2]", "K");
    CHECK_STR(s, "EVRUN_OUT_BUILD_OS_LINUX_V_1_2_K");
    free(s);
    s = evr_step_env_name("EVRUN_FAILED_REASON_", "build[OS=linux]");
    CHECK_STR(s, "EVRUN_FAILED_REASON_BUILD_OS_LINUX");
    free(s);
    s = evr_step_env_name("P_", "a[b");   /* no final ']': every byte kept */
    CHECK_STR(s, "P_A_B");
    free(s);
}

/*  A step's container logs to k8s-file (its directory, removed with it),
    never to podman's default when that is journald: the log holds the
    output unmasked. */
static void
test_create_log_driver(void)
{
    evr_podman_spec_t spec = { .name = "evrun-x-s-1", .image = "busybox", .script = "true" };
    char *body = evr_podman_create_body(&spec);
    CHECK_CONTAINS(body, "\"log_configuration\":{\"driver\":\"k8s-file\"}");
    free(body);
}

int
main(void)
{
    EVR_TEST_RUN(test_demux_every_split);
    EVR_TEST_RUN(test_mask);
    EVR_TEST_RUN(test_mask_agrees_with_reference);
    EVR_TEST_RUN(test_mask_limit);
    EVR_TEST_RUN(test_mask_overlap_bounded);
    EVR_TEST_RUN(test_mask_lines);
    EVR_TEST_RUN(test_mask_add_lines);
    EVR_TEST_RUN(test_mask_pieces_max);
    EVR_TEST_RUN(test_mask_text);
    EVR_TEST_RUN(test_podman_message);
    EVR_TEST_RUN(test_outputs_parse);
    EVR_TEST_RUN(test_outputs_env_name);
    EVR_TEST_RUN(test_create_log_driver);
    EVR_TEST_END();
}
