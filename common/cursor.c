#include "cursor.h"

#include <errno.h>
#include <string.h>

#include "util.h"

int cursor_read_until(cursor *c, uint8_t delim, const uint8_t **ret, size_t *ret_len)
{
    const uint8_t *start = c->buf + c->off;
    const uint8_t *hit = memchr(start, delim, cursor_remaining(c));
    if (!hit) {
        return -EBADMSG;
    }
    size_t n = (size_t)(hit - start);
    *ret = start;
    *ret_len = n;
    c->off += n + 1;
    return 0;
}

int cursor_read_bytes(cursor *c, void *dst, size_t n)
{
    if (!cursor_has_(c, n)) {
        return -EBADMSG;
    }
    if (n > 0) {
        memcpy(dst, c->buf + c->off, n);
    }
    c->off += n;
    return 0;
}

int wcursor_put_bytes(wcursor *w, const void *src, size_t n)
{
    if (!wcursor_room_(w, n)) {
        return -ENOSPC;
    }
    if (n > 0) {
        memcpy(w->buf + w->off, src, n);
    }
    w->off += n;
    return 0;
}

int wcursor_put_zeros(wcursor *w, size_t n)
{
    if (!wcursor_room_(w, n)) {
        return -ENOSPC;
    }
    memset(w->buf + w->off, 0, n);
    w->off += n;
    return 0;
}

int wcursor_reserve(wcursor *w, size_t n, size_t *ret_off)
{
    if (!wcursor_room_(w, n)) {
        return -ENOSPC;
    }
    *ret_off = w->off;
    memset(w->buf + w->off, 0, n);
    w->off += n;
    return 0;
}

void wcursor_patch_be16(wcursor *w, size_t at, uint16_t v)
{
    RB_ASSERT(at <= w->off && w->off - at >= 2);
    w->buf[at] = (uint8_t)(v >> 8);
    w->buf[at + 1] = (uint8_t)v;
}

void wcursor_patch_be32(wcursor *w, size_t at, uint32_t v)
{
    RB_ASSERT(at <= w->off && w->off - at >= 4);
    for (size_t i = 0; i < 4; i++) {
        w->buf[at + i] = (uint8_t)(v >> (24 - 8 * i));
    }
}
