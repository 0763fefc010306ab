#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render-internal.h"
#include "util.h"

void rbuf_fail(rbuf *b, int err)
{
    if (b->err == 0) {
        b->err = err;
    }
}

static bool rbuf_reserve(rbuf *b, size_t n)
{
    if (b->err) {
        return false;
    }
    /* +1 for the terminating NUL; RENDER_MAX_OUTPUT keeps this from
     * overflowing. */
    if (n > RENDER_MAX_OUTPUT || b->len > RENDER_MAX_OUTPUT - n) {
        rbuf_fail(b, -E2BIG);
        return false;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        rbuf_fail(b, -ENOMEM);
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void rbuf_add(rbuf *b, const void *p, size_t n)
{
    if (!rbuf_reserve(b, n)) {
        return;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
}

void rbuf_puts(rbuf *b, const char *s)
{
    rbuf_add(b, s, strlen(s));
}

void rbuf_putc(rbuf *b, char c)
{
    rbuf_add(b, &c, 1);
}

void rbuf_printf(rbuf *b, const char *fmt, ...)
{
    if (b->err) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        rbuf_fail(b, -EINVAL);
        return;
    }
    if (!rbuf_reserve(b, (size_t)n)) {
        return;
    }
    va_start(ap, fmt);
    int m = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    RB_ASSERT(m == n);
    b->len += (size_t)n;
}

void rbuf_clear(rbuf *b)
{
    free(b->data);
    *b = (rbuf){ 0 };
}

int rbuf_finish(rbuf *b, char **ret, size_t *ret_len)
{
    /* An empty result is still a string. */
    if (!b->err && !b->data) {
        rbuf_reserve(b, 0);
        if (!b->err) {
            b->data[0] = '\0';
        }
    }
    if (b->err) {
        int r = b->err;
        rbuf_clear(b);
        return r;
    }
    *ret = b->data;
    if (ret_len) {
        *ret_len = b->len;
    }
    *b = (rbuf){ 0 };
    return 0;
}

bool render_value_safe(const char *s)
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

bool render_id_valid(const char *s)
{
    if (!s || !*s || streq(s, ".") || streq(s, "..")) {
        return false;
    }
    size_t n = 0;
    for (const char *p = s; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~';
        if (!ok || n >= 128) {
            return false;
        }
    }
    return true;
}

bool render_cmdline_extra_valid(const char *s)
{
    if (!s) {
        return true;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p >= 0x7f) {
            return false;
        }
    }
    return true;
}

void render_format_addr(const void *in6_addr, char buf[RENDER_ADDR_LEN])
{
    if (!inet_ntop(AF_INET6, in6_addr, buf, RENDER_ADDR_LEN)) {
        /* Cannot fail for AF_INET6 with a buffer of INET6_ADDRSTRLEN. */
        RB_ASSERT(!"inet_ntop failed");
    }
}
