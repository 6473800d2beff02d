/*  evr_log.c: see evr_log.h. */
#include "evr_log.h"

#include <stdio.h>
#include <time.h>

void
evr_vlog(const char *component, const char *fmt, va_list ap)
{
    char ts[32], line[2048];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    vsnprintf(line, sizeof line, fmt, ap);
    /* one write per line, so lines of processes sharing a log stay whole */
    fprintf(stderr, "%s.%03ldZ %s: %s\n", ts, now.tv_nsec / 1000000, component, line);
}

void
evr_log(const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evr_vlog(component, fmt, ap);
    va_end(ap);
}
