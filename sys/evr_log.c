/*  evr_log.c: see evr_log.h.  The threshold is a process-wide value set
    once at start, before any thread that logs exists. */
#include "evr_log.h"

#include <stdio.h>
#include <time.h>

#define S_MSG_MAX 2048

const char *const evr_log_level_names[EVR_LOG_NLEVELS] = { "error", "warn", "info", "debug" };

static evr_log_level_t s_threshold = EVR_LOG_INFO;

void
evr_log_set_level(evr_log_level_t level)
{
    s_threshold = level;
}

evr_log_level_t
evr_log_level(void)
{
    return s_threshold;
}

bool
evr_log_enabled(evr_log_level_t level)
{
    return level <= s_threshold;
}

const char *
evr_log_level_name(evr_log_level_t level)
{
    return (size_t) level < EVR_LOG_NLEVELS ? evr_log_level_names[level] : "?";
}

void
evr_log_vwrite(evr_log_level_t level, const char *component, const char *fmt, va_list ap)
{
    char ts[32], msg[S_MSG_MAX], line[S_MSG_MAX + 160];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    vsnprintf(msg, sizeof msg, fmt, ap);
    bool info = level == EVR_LOG_INFO;   /* the usual line shows no level */
    int n = snprintf(line, sizeof line, "%s.%03ldZ %.100s: %s%s%s\n", ts, now.tv_nsec / 1000000,
                     component, info ? "" : evr_log_level_name(level), info ? "" : ": ", msg);
    if (n < 0)
        return;
    if ((size_t) n >= sizeof line) {   /* cut: the line still ends with its newline */
        n = (int) sizeof line - 1;
        line[n - 1] = '\n';
    }
    /* one write per line (stderr is unbuffered), so lines of processes
       sharing a log stay whole */
    fwrite(line, 1, (size_t) n, stderr);
}

void
evr_log_write(evr_log_level_t level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evr_log_vwrite(level, component, fmt, ap);
    va_end(ap);
}

void
evr_vlog(const char *component, const char *fmt, va_list ap)
{
    if (evr_log_enabled(EVR_LOG_INFO))
        evr_log_vwrite(EVR_LOG_INFO, component, fmt, ap);
}

void
evr_log(const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evr_vlog(component, fmt, ap);
    va_end(ap);
}
