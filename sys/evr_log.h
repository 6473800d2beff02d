/*  evr_log.h: the daemons' log lines on stderr.

    One line per call: an ISO 8601 UTC timestamp with milliseconds, the
    component ("evrun-broker", "evrun-runner build-01"), the message:
    2026-11-23T14:05:31.415Z evrun-broker: job 01M8... queued
*/
#ifndef EVR_LOG_H_INCLUDED
#define EVR_LOG_H_INCLUDED

#include <stdarg.h>

void evr_log(const char *component, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void evr_vlog(const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif
