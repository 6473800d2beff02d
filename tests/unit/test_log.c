/*  test_log.c: the levelled log lines (sys/evr_log): the level names, the
    threshold, a line below it neither written nor
    formatted (its arguments are not even evaluated), and the line format:
    timestamp, component, the level for all but info, the message, a long
    message cut but still ending its line. */
#include <regex.h>
#include <unistd.h>

#include "evr_log.h"
#include "evr_test.h"

static int s_calls;

/*  An argument with a side effect: counts its evaluations. */
static const char *
s_counted(void)
{
    s_calls++;
    return "counted";
}

/*  Runs fn with stderr going to a temporary file; returns what it wrote
    (caller frees). */
static char *
s_capture(void (*fn)(void))
{
    char path[] = "/tmp/evr-test-log-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    char *buf = evr_calloc(1, (size_t) len + 1);
    CHECK(pread(fd, buf, (size_t) len, 0) == len);
    close(fd);
    unlink(path);
    return buf;
}

static void
test_level_names(void)
{
    const char *names[] = { "error", "warn", "info", "debug" };
    CHECK(EVR_LOG_NLEVELS == 4);
    for (int i = 0; i < 4; i++) {
        CHECK_STR(evr_log_level_names[i], names[i]);
        CHECK_STR(evr_log_level_name((evr_log_level_t) i), names[i]);
    }
    CHECK(EVR_LOG_ERROR < EVR_LOG_WARN && EVR_LOG_WARN < EVR_LOG_INFO
          && EVR_LOG_INFO < EVR_LOG_DEBUG);
}

static void
s_each_level(void)
{
    evr_log_error("comp", "e %s", s_counted());
    evr_log_warn("comp", "w %s", s_counted());
    evr_log_info("comp", "i %s", s_counted());
    evr_log_debug("comp", "d %s", s_counted());
    evr_log("comp", "plain %d", 1);
}

/*  The lines of s_each_level written at threshold level, their count, and
    how many arguments were evaluated. */
static void
s_at(evr_log_level_t level, int *lines, int *calls, char **out)
{
    evr_log_set_level(level);
    CHECK(evr_log_level() == level);
    s_calls = 0;
    *out = s_capture(s_each_level);
    *calls = s_calls;
    *lines = 0;
    for (const char *p = *out; *p; p++)
        *lines += *p == '\n';
}

static void
test_threshold(void)
{
    CHECK(evr_log_level() == EVR_LOG_INFO);   /* the default */
    CHECK(evr_log_enabled(EVR_LOG_INFO) && !evr_log_enabled(EVR_LOG_DEBUG));
    int lines, calls;
    char *out;
    s_at(EVR_LOG_ERROR, &lines, &calls, &out);
    CHECK(lines == 1 && calls == 1);   /* below the threshold: not even evaluated */
    CHECK(strstr(out, "comp: error: e counted\n") != NULL);
    free(out);
    s_at(EVR_LOG_WARN, &lines, &calls, &out);
    CHECK(lines == 2 && calls == 2);
    CHECK(strstr(out, "comp: warn: w counted\n") != NULL);
    CHECK(strstr(out, "plain") == NULL);   /* evr_log() is info */
    free(out);
    s_at(EVR_LOG_INFO, &lines, &calls, &out);
    CHECK(lines == 4 && calls == 3);
    CHECK(strstr(out, "comp: i counted\n") != NULL);
    CHECK(strstr(out, "comp: plain 1\n") != NULL);
    CHECK(strstr(out, "d counted") == NULL);
    free(out);
    s_at(EVR_LOG_DEBUG, &lines, &calls, &out);
    CHECK(lines == 5 && calls == 4);
    CHECK(strstr(out, "comp: debug: d counted\n") != NULL);
    free(out);
    evr_log_set_level(EVR_LOG_INFO);
}

static void
s_format_lines(void)
{
    evr_log_info("evrun-broker", "job %s queued", "01M8");
    evr_log_warn("evrun-runner r-1", "lost");
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    evr_log_error("c", "%s", big);
}

static void
test_format(void)
{
    char *out = s_capture(s_format_lines);
    regex_t re;
    CHECK(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                       "evrun-broker: job 01M8 queued\n"
                       "[0-9T:.-]{23}Z evrun-runner r-1: warn: lost\n"
                       "[0-9T:.-]{23}Z c: error: x{100,2047}\n$", REG_EXTENDED) == 0);
    CHECK(regexec(&re, out, 0, NULL, 0) == 0);
    if (regexec(&re, out, 0, NULL, 0) != 0)
        fprintf(stderr, "  got: %.300s\n", out);
    regfree(&re);
    free(out);
}

int
main(void)
{
    EVR_TEST_RUN(test_level_names);
    EVR_TEST_RUN(test_threshold);
    EVR_TEST_RUN(test_format);
    EVR_TEST_END();
}
