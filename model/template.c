#include "model/template.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbuf.h"
#include "util.h"

/* Longer names cannot be one of ours; the limit keeps error messages short. */
#define NAME_MAX_LEN 32

const template_placeholder template_placeholders[] = {
    { "hostname", "the host's name (the intent's, else its inventory name)" },
    { "address", "its reserved IPv6 address, without prefix: 2001:db8::10" },
    { "prefix", "the prefix length: 64" },
    { "gateway", "the gateway (the intent's, else the rack's); empty if none" },
    { "dns", "DNS servers, comma-separated: 2001:db8::53,2001:db8::54" },
    { "search", "search domains, comma-separated: rack1.example.com,example.com" },
    { "install_id", "the install's id" },
    { "token", "the install's token (secret: only in what the host fetches)" },
    { "progress_url", "the URL the installer POSTs phases to (has '?': quote it in shell)" },
    { "profile", "the profile's name" },
    { "agent_url", "the agent's HTTP base URL: http://[2001:db8::2]:8080" },
};
const size_t template_n_placeholders = ARRAY_SIZE(template_placeholders);

static bool name_known(const char *name, size_t n)
{
    for (size_t i = 0; i < template_n_placeholders; i++) {
        const char *known = template_placeholders[i].name;
        if (strlen(known) == n && memcmp(known, name, n) == 0) {
            return true;
        }
    }
    return false;
}

/* " (known: hostname, address, ...)" for the unknown-placeholder error. */
static void known_names(char *buf, size_t size)
{
    size_t off = (size_t)snprintf(buf, size, " (known:");
    for (size_t i = 0; i < template_n_placeholders && off < size; i++) {
        off += (size_t)snprintf(buf + off, size - off, "%s %s", i ? "," : "",
                                template_placeholders[i].name);
    }
    if (off < size) {
        snprintf(buf + off, size - off, ")");
    }
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_name_char(char c, bool first)
{
    if (c >= 'a' && c <= 'z') {
        return true;
    }
    return !first && ((c >= '0' && c <= '9') || c == '_');
}

/* One placeholder starting at t[pos] == "{{". On success the name is
 * t[*name_at .. *name_at + *name_len) and the placeholder ends before
 * t[*end]. Otherwise a reason for the error message. */
static const char *scan_placeholder(const char *t, size_t len, size_t pos, size_t *name_at,
                                    size_t *name_len, size_t *end)
{
    size_t i = pos + 2;
    while (i < len && is_blank(t[i])) {
        i++;
    }
    size_t start = i;
    while (i < len && is_name_char(t[i], i == start)) {
        i++;
    }
    size_t n = i - start;
    while (i < len && is_blank(t[i])) {
        i++;
    }
    if (n == 0) {
        return "\"{{\" without a placeholder name";
    }
    if (len - i < 2 || t[i] != '}' || t[i + 1] != '}') {
        /* A newline, a bad character or the end of the text came first. */
        return "unterminated or malformed placeholder (expected {{name}})";
    }
    *name_at = start;
    *name_len = n;
    *end = i + 2;
    return NULL;
}

/* "line N: <what><detail><tail>" into *err (if not NULL). */
static void set_error(template_error *err, unsigned line, unsigned column, const char *what,
                      const char *detail, size_t detail_len, const char *tail)
{
    if (!err) {
        return;
    }
    err->line = line;
    err->column = column;
    snprintf(err->message, sizeof(err->message), "line %u: %s%.*s%s", line, what, (int)detail_len,
             detail ? detail : "", tail);
}

/* Walks the template; with `out` NULL it only checks. */
static int walk(const char *t, size_t len, const template_var *vars, size_t n_vars, rbuf *out,
                template_error *err)
{
    unsigned line = 1;
    size_t line_start = 0;
    size_t copied = 0; /* t[copied .. i) is pending text */

    for (size_t i = 0; i < len;) {
        if (t[i] == '\0') {
            set_error(err, line, (unsigned)(i - line_start + 1), "NUL byte in template", NULL, 0,
                      "");
            return -EBADMSG;
        }
        if (t[i] == '\n') {
            line++;
            line_start = ++i;
            continue;
        }
        if (t[i] != '{' || len - i < 2 || t[i + 1] != '{') {
            i++;
            continue;
        }
        unsigned column = (unsigned)(i - line_start + 1);
        size_t name_at, name_len, end;
        const char *why = scan_placeholder(t, len, i, &name_at, &name_len, &end);
        if (why) {
            set_error(err, line, column, why, NULL, 0, "");
            return -EBADMSG;
        }
        if (name_len > NAME_MAX_LEN || !name_known(t + name_at, name_len)) {
            char tail[200] = "}}";
            known_names(tail + 2, sizeof(tail) - 2);
            set_error(err, line, column, "unknown placeholder {{", t + name_at,
                      name_len > NAME_MAX_LEN ? NAME_MAX_LEN : name_len, tail);
            return -EBADMSG;
        }
        if (out) {
            const template_var *v = NULL;
            for (size_t k = 0; k < n_vars; k++) {
                if (strlen(vars[k].name) == name_len &&
                    memcmp(vars[k].name, t + name_at, name_len) == 0) {
                    v = &vars[k];
                    break;
                }
            }
            if (!v) {
                return -ENOENT;
            }
            if (!template_value_safe(v->value)) {
                return -EINVAL;
            }
            rbuf_add(out, t + copied, i - copied);
            rbuf_puts(out, v->value);
            copied = end;
        }
        i = end;
    }
    if (out) {
        rbuf_add(out, t + copied, len - copied);
    }
    return 0;
}

int template_check(const char *tmpl, size_t len, template_error *err)
{
    return walk(tmpl, len, NULL, 0, NULL, err);
}

int template_expand(const char *tmpl, size_t len, const template_var *vars, size_t n_vars,
                    char **ret, size_t *ret_len)
{
    rbuf out = { 0 };
    int r = walk(tmpl, len, vars, n_vars, &out, NULL);
    if (r < 0) {
        rbuf_clear(&out);
        return r;
    }
    return rbuf_finish(&out, ret, ret_len);
}

bool template_value_safe(const char *s)
{
    if (!s) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f) {
            return false;
        }
        if (strchr("\"'`\\$", *p)) {
            return false;
        }
    }
    return true;
}
