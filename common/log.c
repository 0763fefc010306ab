#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"

static const char *log_ident = "rackboot";
static log_level current_level = LOG_LEVEL_INFO;
static log_formatter_fn formatter;
static bool journal;

/* Only the macros of sd-daemon.h: this library does not link libsystemd. */
static const char *const priorities[] = {
    [LOG_LEVEL_DEBUG] = SD_DEBUG,
    [LOG_LEVEL_INFO] = SD_INFO,
    [LOG_LEVEL_WARN] = SD_WARNING,
    [LOG_LEVEL_ERROR] = SD_ERR,
};

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

int log_format_from_string(const char *s, log_format *ret)
{
    if (strcasecmp(s, "text") == 0) {
        *ret = LOG_FORMAT_TEXT;
        return 0;
    }
    if (strcasecmp(s, "json") == 0) {
        *ret = LOG_FORMAT_JSON;
        return 0;
    }
    return -EINVAL;
}

void log_set_formatter(log_formatter_fn fn)
{
    formatter = fn;
}

void log_set_journal(bool on)
{
    journal = on;
}

bool log_stderr_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    uintmax_t dev, ino;
    char tail;
    struct stat st;
    if (!v || sscanf(v, "%" SCNuMAX ":%" SCNuMAX "%c", &dev, &ino, &tail) != 2) {
        return false;
    }
    if (fstat(STDERR_FILENO, &st) < 0) {
        return false;
    }
    return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

/* Writes a formatter's line with the journald priority, in one write. */
static bool write_formatted(log_level level, const char *ts, const char *body)
{
    log_record rec = { .level = level, .ts = ts, .ident = log_ident, .body = body };
    char *s = formatter(&rec);
    if (!s) {
        return false;
    }
    const char *prio = journal ? priorities[level] : "";
    size_t plen = strlen(prio), slen = strlen(s);
    char *out = malloc(plen + slen + 1);
    if (out) {
        memcpy(out, prio, plen);
        memcpy(out + plen, s, slen);
        out[plen + slen] = '\n';
        fwrite(out, 1, plen + slen + 1, stderr);
    }
    free(s);
    free(out);
    return out != NULL;
}

void log_vmsg(log_level level, const char *fmt, va_list ap)
{
    if (level < current_level || (size_t)level >= sizeof(priorities) / sizeof(priorities[0])) {
        return;
    }
    int saved_errno = errno;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[96] = ""; /* room for any int the compiler can imagine */
    if (!journal) {
        snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(ts.tv_nsec / 1000000));
    }

    /* One fprintf-free write per line so lines from threads do not interleave.
     * Under journald the priority replaces the timestamp (journald stamps
     * the line itself). */
    char line[4096];
    int n = snprintf(line, sizeof(line), "%s%s%s%s %s: ", journal ? priorities[level] : "", stamp,
                     journal ? "" : " ", log_level_to_string(level), log_ident);
    if (n < 0) {
        errno = saved_errno;
        return;
    }
    size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    size_t body = used;
    int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
    if (m >= 0) {
        used += (size_t)m < sizeof(line) - used ? (size_t)m : sizeof(line) - used - 1;
    }
    if (used >= sizeof(line) - 1) {
        /* Truncated: mark it so nobody mistakes the cut for the whole line. */
        memcpy(line + sizeof(line) - 5, "...", 3);
        used = sizeof(line) - 2;
    }
    line[used] = '\0';
    if (formatter && write_formatted(level, journal ? NULL : stamp, line + body)) {
        errno = saved_errno;
        return;
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

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_key_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_key_char(char c)
{
    return is_key_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/* A `key=value` word at p: fills *f and returns where it ends (a blank or
 * the NUL), or NULL when the word is free text. */
static const char *parse_field(const char *p, log_field *f)
{
    const char *key = p;
    if (!is_key_start(*p)) {
        return NULL;
    }
    while (is_key_char(*p)) {
        p++;
    }
    if (*p != '=') {
        return NULL;
    }
    size_t key_len = (size_t)(p - key);
    p++;
    if (*p == '"') {
        const char *v = ++p;
        while (*p != '"') {
            if (*p == '\0' || (*p == '\\' && p[1] == '\0')) {
                return NULL;
            }
            p += *p == '\\' ? 2 : 1;
        }
        *f = (log_field){ key, key_len, v, (size_t)(p - v), true };
        p++;
        return *p == '\0' || is_blank(*p) ? p : NULL;
    }
    const char *v = p;
    while (*p != '\0' && !is_blank(*p)) {
        p++;
    }
    *f = (log_field){ key, key_len, v, (size_t)(p - v), false };
    return p;
}

size_t log_fields_split(const char *body, log_field *fields, size_t max, size_t *ret_n)
{
    const char *p = body, *run = NULL, *text_end = body;
    size_t n = 0;
    log_field f;
    /* First the run of fields that reaches the end... */
    for (;;) {
        while (is_blank(*p)) {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        const char *end = parse_field(p, &f);
        if (end) {
            run = run ? run : p;
            n++;
            p = end;
            continue;
        }
        run = NULL;
        n = 0;
        while (*p != '\0' && !is_blank(*p)) {
            p++;
        }
        text_end = p;
    }
    /* ...then its last `max` fields; those before them are free text. */
    size_t skip = n > max ? n - max : 0, out = 0;
    for (size_t i = 0; i < n; i++) {
        while (is_blank(*run)) {
            run++;
        }
        const char *end = parse_field(run, &f);
        if (i < skip) {
            text_end = end;
        } else {
            fields[out++] = f;
        }
        run = end;
    }
    *ret_n = out;
    return (size_t)(text_end - body);
}

size_t log_field_unquote(const log_field *f, char *buf, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t o = 0;
    for (size_t i = 0; i < f->value_len && o < size - 1; i++) {
        char c = f->value[i];
        if (f->quoted && c == '\\' && i + 1 < f->value_len) {
            c = f->value[++i];
            if (c == 'n') {
                c = '\n';
            } else if (c == 'x' && i + 2 < f->value_len && hex_digit(f->value[i + 1]) >= 0 &&
                       hex_digit(f->value[i + 2]) >= 0) {
                c = (char)(hex_digit(f->value[i + 1]) * 16 + hex_digit(f->value[i + 2]));
                i += 2;
            }
        }
        buf[o++] = c;
    }
    buf[o] = '\0';
    return o;
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
