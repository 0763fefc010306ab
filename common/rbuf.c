#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbuf.h"
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
    /* +1 for the terminating NUL; RBUF_MAX keeps this from
     * overflowing. */
    if (n > RBUF_MAX || b->len > RBUF_MAX - n) {
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
