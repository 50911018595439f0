#pragma once

#include <stdbool.h>

/*
 * One log line per event on stderr: an ISO-8601 UTC time, the level, then
 * the message. Messages are lowercase without a trailing period and quote
 * their subject ('cannot open database '%s''). Never log a token, a secret,
 * an answer or a peer address.
 */
enum thou_log_level {
    THOU_LOG_ERROR = 0,
    THOU_LOG_WARN = 1,
    THOU_LOG_INFO = 2,
    THOU_LOG_DEBUG = 3,
};

/** The level at and below which lines are written; default THOU_LOG_INFO. */
extern enum thou_log_level thou_log_threshold;

/** Set the threshold. Not thread-safe against concurrent logging; call at start-up. */
void thou_log_set_level(enum thou_log_level level);

/** Parse "error", "warn", "info" or "debug". Returns false on anything else. */
bool thou_log_level_parse(const char *name, enum thou_log_level *level);

/** Name of a level ("error", ...). */
const char *thou_log_level_name(enum thou_log_level level);

/** Write one line; use the macros below, which skip formatting below the threshold. */
void thou_log_write(enum thou_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define thou_log(level, ...)                                                                       \
    do {                                                                                           \
        if ((level) <= thou_log_threshold)                                                         \
            thou_log_write((level), __VA_ARGS__);                                                  \
    } while (0)

#define thou_log_error(...) thou_log(THOU_LOG_ERROR, __VA_ARGS__)
#define thou_log_warn(...)  thou_log(THOU_LOG_WARN, __VA_ARGS__)
#define thou_log_info(...)  thou_log(THOU_LOG_INFO, __VA_ARGS__)
#define thou_log_debug(...) thou_log(THOU_LOG_DEBUG, __VA_ARGS__)
