/* Logging for the daemons and tools: one line per event on stderr,
 *
 *   2026-11-25T03:34:17.123Z info rackboot-agent: dhcp6 bound mac=52:54:00:12:34:56
 * addr=2001:db8::10
 *
 * The message is free text followed by `key=value` fields, written by the
 * caller in the format string. Values that may hold spaces or quotes go
 * through log_quote(). Library-like modules do not log above debug; the
 * daemon layer logs once, with context.
 *
 * That text line is the default. A daemon may install a formatter (the JSON
 * one is common/logjson.h, kept out of this library so the tools need no
 * jansson), and under journald (log_stderr_is_journal()) every line starts
 * with its syslog priority and carries no timestamp of ours:
 *
 *   <6>info rackboot-agent: dhcp6 bound mac=52:54:00:12:34:56 addr=2001:db8::10 */
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

/* `[log] format`: "text" (the line above) or "json" (common/logjson.h). */
typedef enum log_format {
    LOG_FORMAT_TEXT = 0,
    LOG_FORMAT_JSON,
} log_format;

/* Parses "text" or "json". -EINVAL otherwise. */
int log_format_from_string(const char *s, log_format *ret);

/* One line as a formatter sees it. */
typedef struct log_record {
    log_level level;
    const char *ts;    /* "2026-11-25T03:34:17.123Z", NULL under journald */
    const char *ident; /* log_set_ident() */
    const char *body;  /* the rendered message with its fields, maybe cut short */
} log_record;

/* Returns the line (no newline, no journald prefix) in malloc'd memory, or
 * NULL (out of memory), in which case the text line is written. Called from
 * whichever thread logs, so it must keep no state. */
typedef char *(*log_formatter_fn)(const log_record *rec);

/* NULL restores the text line. Set it before other threads log. */
void log_set_formatter(log_formatter_fn fn);

/* True when stderr is the systemd journal: $JOURNAL_STREAM names stderr's
 * "st_dev:st_ino" (systemd.exec(5)). A stderr merely redirected to a file
 * or a terminal inherits no such match, so a child started from a unit
 * with its stderr elsewhere does not take it for the journal. */
bool log_stderr_is_journal(void);

/* On: each line starts with its syslog priority (sd-daemon(3): <3> error,
 * <4> warn, <6> info, <7> debug) and has no timestamp, as journald stamps
 * it. Off (the default): neither. */
void log_set_journal(bool on);

static inline bool log_enabled(log_level level)
{
    return level >= log_get_level();
}

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG)) {                                                        \
            log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                                 \
        }                                                                                          \
    } while (0)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

/* Writes `s` into buf as a log field value: as is when it has no space, quote,
 * backslash, '=' or control character, else in double quotes with those
 * escaped (\" \\ \n \xHH). Truncates to fit, always NUL-terminates. Returns buf. */
const char *log_quote(char *buf, size_t size, const char *s);

/* One `key=value` field of a rendered message (log_fields_split()). Both
 * point into the message; a quoted value is given between its quotes with
 * its escapes still in (log_field_unquote() undoes them). */
typedef struct log_field {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    bool quoted;
} log_field;

/* Splits a rendered message into its free text and its trailing fields: the
 * longest run of blank-separated `key=value` words at its end, where a key
 * is [A-Za-z_][A-Za-z0-9_.-]* and a value is either a bare word or a
 * log_quote()d string (escapes honoured, so a quoted value may hold blanks,
 * '=' and \"). A key=value word followed by free text is free text. Fills
 * at most `max` fields, the last ones (the earlier become free text), and
 * sets *ret_n to their number. Returns the length of the free text, blanks
 * before the fields left out. */
size_t log_fields_split(const char *body, log_field *fields, size_t max, size_t *ret_n);

/* Writes a field's value into buf without quotes and escapes (log_quote()'s
 * inverse; an unknown escape stands for the character after the '\').
 * Truncates to fit, always NUL-terminates (size > 0); the value may hold a
 * NUL from "\x00", so the length is returned: at most value_len. */
size_t log_field_unquote(const log_field *f, char *buf, size_t size);

/* A rate limit for log lines caused by the network (a flood of bad packets
 * must not flood the log): at most `burst` lines per `interval_ms`. */
typedef struct log_ratelimit {
    uint64_t interval_ms;
    unsigned burst;
    uint64_t window_start_ms;
    unsigned count;
    uint64_t suppressed;
} log_ratelimit;

#define LOG_RATELIMIT_INIT(interval, n)                                                            \
    {                                                                                              \
        .interval_ms = (interval), .burst = (n)                                                    \
    }

/* True when a line may be logged now. *ret_suppressed (if not NULL) gets the
 * number of lines suppressed in the window that just closed, else 0, so the
 * caller can say "N similar lines suppressed". */
bool log_ratelimit_ok(log_ratelimit *rl, uint64_t now_ms, uint64_t *ret_suppressed);
