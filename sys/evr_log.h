/*  evr_log.h: the daemons' log lines on stderr, with levels.

    One line per call: an ISO 8601 UTC timestamp with milliseconds, the
    component ("evrun-broker", "evrun-runner build-01"), the level unless
    it is info, the message:
      2026-11-23T14:05:31.415Z evrun-broker: job 01M8... queued
      2026-11-23T14:05:36.002Z evrun-broker: warn: runner build-01 lost: ...
    Levels, most severe first: error (something failed: the store, events
    refused and dropped), warn (something is wrong and the process carries
    on), info (what happens: jobs, runners; the default threshold), debug
    (every request, every transition).  A line less severe than the
    threshold is never formatted: the evr_log_error/warn/info/debug macros
    test the level before they evaluate their arguments.  The threshold is
    set once, at start (the daemons' log_level setting).
*/
#ifndef EVR_LOG_H_INCLUDED
#define EVR_LOG_H_INCLUDED

#include <stdarg.h>
#include <stdbool.h>

#include "evr_common.h"

typedef enum {
    EVR_LOG_ERROR = 0,
    EVR_LOG_WARN,
    EVR_LOG_INFO,       /* the default threshold */
    EVR_LOG_DEBUG,
} evr_log_level_t;

/*  The names of the levels, in their order: "error", "warn", "info",
    "debug" (the log_level setting, evr_config_choice). */
#define EVR_LOG_NLEVELS 4
extern const char *const evr_log_level_names[EVR_LOG_NLEVELS];

/*  Sets the threshold: lines of level and more severe ones are written. */
void evr_log_set_level(evr_log_level_t level);
evr_log_level_t evr_log_level(void);

/*  Whether a line of level would be written now. */
bool evr_log_enabled(evr_log_level_t level);

/*  The name of level ("warn"). */
const char *evr_log_level_name(evr_log_level_t level);

/*  A line of level, when level passes the threshold (the arguments are
    evaluated only then). */
#define evr_log_at(level, component, ...)                                                        \
    do {                                                                                         \
        if (evr_log_enabled(level))                                                              \
            evr_log_write((level), (component), __VA_ARGS__);                                    \
    } while (0)
#define evr_log_error(component, ...) evr_log_at(EVR_LOG_ERROR, component, __VA_ARGS__)
#define evr_log_warn(component, ...) evr_log_at(EVR_LOG_WARN, component, __VA_ARGS__)
#define evr_log_info(component, ...) evr_log_at(EVR_LOG_INFO, component, __VA_ARGS__)
#define evr_log_debug(component, ...) evr_log_at(EVR_LOG_DEBUG, component, __VA_ARGS__)

/*  Writes the line, whatever the threshold (one write(2), so lines of
    processes sharing a log stay whole; a message is cut at 2 KiB).  Call
    through the macros above, which check the threshold first. */
void evr_log_write(evr_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void evr_log_vwrite(evr_log_level_t level, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/*  An info line, checked against the threshold inside (its arguments are
    evaluated in any case): for callers not yet on the macros. */
void evr_log(const char *component, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void evr_vlog(const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif
