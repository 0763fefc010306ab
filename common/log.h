/* Logging for the daemons and tools: one line per event on stderr,
 *
 *   2026-11-25T03:34:17.123Z info rackboot-agent: dhcp6 bound mac=52:54:00:12:34:56 addr=2001:db8::10
 *
 * The message is free text followed by `key=value` fields, written by the
 * caller in the format string. Values that may hold spaces or quotes go
 * through log_quote(). Library-like modules do not log above debug; the
 * daemon layer logs once, with context. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVEL_ERROR,
} log_level;

/* Name shown before the message, usually the program name. Not copied. */
void log_set_ident(const char *ident);
void log_set_level(log_level level);
log_level log_get_level(void);
/* Parses "debug", "info", "warn"/"warning", "error". -EINVAL otherwise. */
int log_level_from_string(const char *s, log_level *ret);
const char *log_level_to_string(log_level level);

static inline bool log_enabled(log_level level)
{
    return level >= log_get_level();
}

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define log_debug(...)                                                                         \
    do {                                                                                       \
        if (log_enabled(LOG_LEVEL_DEBUG)) {                                                    \
            log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                             \
        }                                                                                      \
    } while (0)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

/* Writes `s` into buf as a log field value: as is when it has no space, quote,
 * backslash, '=' or control character, else in double quotes with those
 * escaped (\" \\ \n \xHH). Truncates to fit, always NUL-terminates. Returns buf. */
const char *log_quote(char *buf, size_t size, const char *s);

/* A rate limit for log lines caused by the network (a flood of bad packets
 * must not flood the log): at most `burst` lines per `interval_ms`. */
typedef struct log_ratelimit {
    uint64_t interval_ms;
    unsigned burst;
    uint64_t window_start_ms;
    unsigned count;
    uint64_t suppressed;
} log_ratelimit;

#define LOG_RATELIMIT_INIT(interval, n) { .interval_ms = (interval), .burst = (n) }

/* True when a line may be logged now. *ret_suppressed (if not NULL) gets the
 * number of lines suppressed in the window that just closed, else 0, so the
 * caller can say "N similar lines suppressed". */
bool log_ratelimit_ok(log_ratelimit *rl, uint64_t now_ms, uint64_t *ret_suppressed);
