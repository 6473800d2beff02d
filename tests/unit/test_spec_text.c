/*  test_spec_text.c: what a pipeline file's values may put in its errors
    and keep in the job: URLs of resources and source tarballs (a host, no
    credentials, no spaces or control characters; an error about
    credentials does not repeat them), and values with control characters
    quoted escaped, so that an error stays on its line.
*/
#include <signal.h>
#include <stdio.h>

#include "evr_test.h"
#include "evr_ytest.h"

static char *
s_res(const char *url, size_t *n)
{
    char text[1024];
    snprintf(text, sizeof text, "pipeline: p\nimage: i\nresources:\n  - {name: s, path: s, "
             "url: \"%s\"}\nsteps: [{name: a, run: x}]\n", url);
    return evr_ytest_load(text, n, NULL);
}

static void
test_resource_urls(void)
{
    size_t n;
    char *e = s_res("http://alice:s3cret@127.0.0.1:18751/x.tgz", &n);
    CHECK_CONTAINS(e, "f.yml:4:29: resources[0].url: credentials in the URL would be stored "
                      "with the job and printed in its log");
    CHECK(strstr(e, "s3cret") == NULL);
    CHECK(n == 1);
    free(e);
    e = s_res("https://TOKEN@example.org/x", &n);  /* a token as the user */
    CHECK_CONTAINS(e, "resources[0].url: credentials in the URL");
    CHECK(strstr(e, "TOKEN") == NULL);
    free(e);
    e = s_res("http://", &n);
    CHECK_CONTAINS(e, "resources[0].url: the URL names no host, got \"http://\"");
    free(e);
    e = s_res("https://:8080/x", &n);
    CHECK_CONTAINS(e, "resources[0].url: the URL names no host");
    free(e);
    e = s_res("http://x y/z", &n);
    CHECK_CONTAINS(e, "resources[0].url: a URL cannot contain spaces or control characters");
    free(e);
    e = s_res("ftp://user:s3cret@example/x", &n);   /* another scheme: not echoed either */
    CHECK_CONTAINS(e, "resources[0].url: credentials in the URL");
    CHECK(strstr(e, "s3cret") == NULL);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nsource: {git: {url: \"HTTPS://u:s3cret@x/r\"}}\n"
                       "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "source.git.url: credentials in the URL would be stored with the job");
    CHECK(strstr(e, "s3cret") == NULL);
    free(e);
    /* a git URL's control characters (a terminal's escape, a tab) were
       taken, only a space or a line break refused, and went raw into
       the messages that quote the URL */
    e = evr_ytest_load("pipeline: p\nimage: i\nsource: {git: {url: \"https://x/r\\x1b[31m\"}}\n"
                       "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "source.git.url: a URL cannot contain spaces or control characters");
    CHECK(n == 1);
    free(e);
    e = s_res("ftp://example/x", &n);
    CHECK_CONTAINS(e, "resources[0].url: expected an http:// or https:// URL, got \"ftp://example/x\"");
    free(e);
    /* what stays valid: a port, a query with @ after the host */
    e = s_res("https://example.org:8443/a/b.tgz?who=a@b", &n);
    CHECK(n == 0);
    free(e);
}

static void
test_tarball_urls(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nsource: {tarball: \"https://u:p4ss@x/t.tgz\"}\n"
                             "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:19: source.tarball: credentials in the URL");
    CHECK(strstr(e, "p4ss") == NULL);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nci_source: {tarball: \"https://\\t/t.tgz\"}\n"
                       "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "ci_source.tarball: a URL cannot contain spaces or control characters "
                      "(write a space as %20), got \"https://\\t/t.tgz\"");
    free(e);
}

static void
test_control_characters_escaped(void)
{
    size_t n;
    /* a value that would forge an error line of its own, and an escape */
    char *e = evr_ytest_load("pipeline: p\nimage: i\ntimeout: \"5\\nfake.yml:1:1: injected\"\n"
                             "labels: [\"x\\e[31my\"]\nsteps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:10: timeout: bad duration \"5\\nfake.yml:1:1: injected\"");
    CHECK_CONTAINS(e, "\"x\\x1b[31my\"");
    CHECK(strchr(e, '\033') == NULL);
    /* one line an error */
    size_t lines = 0;
    for (const char *c = e; *c; c++)
        lines += *c == '\n';
    CHECK(lines == n);
    CHECK(n == 2);
    free(e);
}

static void
test_escape_ctl(void)
{
    char out[16];
    CHECK(strcmp(evr_text_escape_ctl("a\tb\r\n\x7f", out, sizeof out), "a\\tb\\r\\n\\x7f") == 0);
    CHECK(strcmp(evr_text_escape_ctl("plain é", out, sizeof out), "plain é") == 0);
    /* cut with the mark, never in the middle of an escape or a character */
    evr_text_escape_ctl("\x01\x02\x03\x04\x05", out, sizeof out);
    CHECK(strcmp(out, "\\x01\\x02\\x03" EVR_CUT_MARK) == 0);
    evr_text_escape_ctl("abcdefghijkl\xc3\xa9zz", out, sizeof out);
    CHECK(strcmp(out, "abcdefghijkl" EVR_CUT_MARK) == 0);
    CHECK(strcmp(evr_text_escape_ctl("abcdefghijklmno", out, sizeof out), "abcdefghijklmno") == 0);
    /* C1 controls (CSI as U+009B) */
    CHECK(strcmp(evr_text_escape_ctl("a\xc2\x9b" "1m", out, sizeof out), "a\\u009b1m") == 0);
    /* bytes that are no UTF-8 character, one escape each; the valid
       ones around them kept */
    CHECK(strcmp(evr_text_escape_ctl("a\xff" "b", out, sizeof out), "a\\xffb") == 0);
    CHECK(strcmp(evr_text_escape_ctl("\xe2\x82" "x\xc3", out, sizeof out),
                 "\\xe2\\x82x\\xc3") == 0);
    CHECK(strcmp(evr_text_escape_ctl("\x80\xe2\x82\xac", out, sizeof out), "\\x80\xe2\x82\xac") == 0);
    /* a stray continuation byte after a character, valid or ASCII */
    CHECK(strcmp(evr_text_escape_ctl("a\x80" "b", out, sizeof out), "a\\x80b") == 0);
    CHECK(strcmp(evr_text_escape_ctl("\xc3\xa9\x80", out, sizeof out), "\xc3\xa9\\x80") == 0);
    /* a text that fits is not cut: each character counted once */
    char eight[8];
    CHECK(strcmp(evr_text_escape_ctl("abcde\xc3\xa9", eight, sizeof eight), "abcde\xc3\xa9") == 0);
    CHECK(strcmp(evr_text_escape_ctl("\xc3\xa9\xc3\xa9 \xc3\xa9", eight, sizeof eight),
                 "\xc3\xa9\xc3\xa9 \xc3\xa9") == 0);
    char tiny[2];
    CHECK(strcmp(evr_text_escape_ctl("\x1b", tiny, sizeof tiny), "") == 0);
    CHECK(evr_text_has_ctl("a\x1b") && !evr_text_has_ctl("ab"));
}

/*  evr_text_escape (a client's reason): a backslash is escaped too, so a
    reason holding the four characters \x1b is not shown as one that held
    ESC; evr_text_escape_ctl keeps a backslash as it is (it quotes text
    escaped already). */
static void
test_escape_backslash(void)
{
    char a[32], b[32];
    CHECK_STR(evr_text_escape("a\x1b[2J", a, sizeof a), "a\\x1b[2J");
    CHECK_STR(evr_text_escape("a\\x1b[2J", b, sizeof b), "a\\\\x1b[2J");
    CHECK(strcmp(a, b) != 0);
    CHECK_STR(evr_text_escape("C:\\dir\t", a, sizeof a), "C:\\\\dir\\t");
    CHECK_STR(evr_text_escape_ctl("a\\x1b", a, sizeof a), "a\\x1b");
    /* cut between escapes: never half of a \\ */
    char six[6];
    CHECK_STR(evr_text_escape("\\\\\\", six, sizeof six), "\\\\" EVR_CUT_MARK "");
}

/*  How a child ended, as reasons say it: a signal by name and number,
    never as the 128+N an exit could be too. */
static void
test_wait_text(void)
{
    char buf[64];
    CHECK_STR(evr_wait_text(3 << 8, buf, sizeof buf), "exit 3");
    CHECK_STR(evr_wait_text(137 << 8, buf, sizeof buf), "exit 137");
    CHECK_STR(evr_wait_text(SIGKILL, buf, sizeof buf), "killed by SIGKILL (signal 9)");
    CHECK_STR(evr_wait_text(SIGTERM | 0x80, buf, sizeof buf), "killed by SIGTERM (signal 15)");
    CHECK_STR(evr_wait_text(SIGRTMIN + 1, buf, sizeof buf), "killed by signal 35");
}

int
main(void)
{
    EVR_TEST_RUN(test_resource_urls);
    EVR_TEST_RUN(test_tarball_urls);
    EVR_TEST_RUN(test_control_characters_escaped);
    EVR_TEST_RUN(test_escape_ctl);
    EVR_TEST_RUN(test_escape_backslash);
    EVR_TEST_RUN(test_wait_text);
    EVR_TEST_END();
}
