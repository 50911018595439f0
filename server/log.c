#include "thou/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum thou_log_level thou_log_threshold = THOU_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void thou_log_set_level(enum thou_log_level level)
{
    thou_log_threshold = level;
}

bool thou_log_level_parse(const char *name, enum thou_log_level *level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (enum thou_log_level)i;
            return true;
        }
    }
    return false;
}

const char *thou_log_level_name(enum thou_log_level level)
{
    if ((unsigned)level < sizeof(level_names) / sizeof(level_names[0]))
        return level_names[level];
    return "unknown";
}

void thou_log_write(enum thou_log_level level, const char *fmt, ...)
{
    /* Format the whole line first so concurrent threads never interleave
     * within a line: one fputs of a complete line is atomic enough for
     * stderr, which is unbuffered. */
    char line[1024];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf(line + off, sizeof(line) - off, ".%03ldZ %s ", now.tv_nsec / 1000000L,
                     thou_log_level_name(level));
    if (n > 0)
        off += (size_t)n;

    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(line + off, sizeof(line) - off - 1, fmt, ap);
    va_end(ap);
    if (n > 0)
        off += (size_t)n < sizeof(line) - off - 1 ? (size_t)n : sizeof(line) - off - 2;
    line[off++] = '\n';
    line[off] = '\0';
    fputs(line, stderr);
}
