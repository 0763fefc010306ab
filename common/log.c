#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *log_ident = "rackboot";
static log_level current_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {
    [LOG_LEVEL_DEBUG] = "debug",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_ERROR] = "error",
};

void log_set_ident(const char *ident)
{
    log_ident = ident ? ident : "rackboot";
}

void log_set_level(log_level level)
{
    current_level = level;
}

log_level log_get_level(void)
{
    return current_level;
}

int log_level_from_string(const char *s, log_level *ret)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *ret = (log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *ret = LOG_LEVEL_WARN;
        return 0;
    }
    return -EINVAL;
}

const char *log_level_to_string(log_level level)
{
    if ((size_t)level < sizeof(level_names) / sizeof(level_names[0])) {
        return level_names[level];
    }
    return "unknown";
}

void log_vmsg(log_level level, const char *fmt, va_list ap)
{
    if (level < current_level) {
        return;
    }
    int saved_errno = errno;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);

    /* One fprintf-free write per line so lines from threads do not interleave. */
    char line[4096];
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, log_level_to_string(level), log_ident);
    if (n < 0) {
        errno = saved_errno;
        return;
    }
    size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
    if (m >= 0) {
        used += (size_t)m < sizeof(line) - used ? (size_t)m : sizeof(line) - used - 1;
    }
    if (used >= sizeof(line) - 1) {
        /* Truncated: mark it so nobody mistakes the cut for the whole line. */
        memcpy(line + sizeof(line) - 5, "...", 3);
        used = sizeof(line) - 2;
    }
    line[used++] = '\n';
    fwrite(line, 1, used, stderr);
    errno = saved_errno;
}

void log_msg(log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

static bool needs_quoting(const char *s)
{
    if (*s == '\0') {
        return true;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '=' || *p == 0x7f) {
            return true;
        }
    }
    return false;
}

const char *log_quote(char *buf, size_t size, const char *s)
{
    if (size == 0) {
        return buf;
    }
    if (!s) {
        s = "(null)";
    }
    if (!needs_quoting(s)) {
        snprintf(buf, size, "%s", s);
        return buf;
    }
    size_t o = 0;
    /* Leave room for the closing quote and the NUL. */
    if (size < 3) {
        buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[5];
        size_t n;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            n = 2;
        } else if (*p == '\n') {
            memcpy(esc, "\\n", 2);
            n = 2;
        } else if (*p < ' ' || *p == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", *p);
            n = 4;
        } else {
            esc[0] = (char)*p;
            n = 1;
        }
        if (size - o < n + 2) {
            break;
        }
        memcpy(buf + o, esc, n);
        o += n;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

bool log_ratelimit_ok(log_ratelimit *rl, uint64_t now_ms, uint64_t *ret_suppressed)
{
    if (ret_suppressed) {
        *ret_suppressed = 0;
    }
    if (rl->window_start_ms == 0 || now_ms - rl->window_start_ms >= rl->interval_ms) {
        if (ret_suppressed) {
            *ret_suppressed = rl->suppressed;
        }
        rl->window_start_ms = now_ms ? now_ms : 1;
        rl->count = 0;
        rl->suppressed = 0;
    }
    if (rl->count < rl->burst) {
        rl->count++;
        return true;
    }
    rl->suppressed++;
    return false;
}
