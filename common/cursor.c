#include "cursor.h"

#include <errno.h>
#include <string.h>

#include "util.h"

static inline bool has(const cursor *c, size_t n)
{
    /* off <= len always holds, so the subtraction cannot wrap. */
    return c->len - c->off >= n;
}

int cursor_read_u8(cursor *c, uint8_t *ret)
{
    if (!has(c, 1)) {
        return -EBADMSG;
    }
    *ret = c->buf[c->off++];
    return 0;
}

int cursor_peek_u8(const cursor *c, uint8_t *ret)
{
    if (!has(c, 1)) {
        return -EBADMSG;
    }
    *ret = c->buf[c->off];
    return 0;
}

int cursor_peek_be16(const cursor *c, uint16_t *ret)
{
    if (!has(c, 2)) {
        return -EBADMSG;
    }
    const uint8_t *p = c->buf + c->off;
    *ret = (uint16_t)((p[0] << 8) | p[1]);
    return 0;
}

int cursor_read_be16(cursor *c, uint16_t *ret)
{
    int r = cursor_peek_be16(c, ret);
    if (r < 0) {
        return r;
    }
    c->off += 2;
    return 0;
}

int cursor_read_be32(cursor *c, uint32_t *ret)
{
    if (!has(c, 4)) {
        return -EBADMSG;
    }
    const uint8_t *p = c->buf + c->off;
    *ret = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    c->off += 4;
    return 0;
}

int cursor_read_be64(cursor *c, uint64_t *ret)
{
    if (!has(c, 8)) {
        return -EBADMSG;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++) {
        v = (v << 8) | c->buf[c->off + i];
    }
    *ret = v;
    c->off += 8;
    return 0;
}

int cursor_read_bytes(cursor *c, void *dst, size_t n)
{
    if (!has(c, n)) {
        return -EBADMSG;
    }
    if (n > 0) {
        memcpy(dst, c->buf + c->off, n);
    }
    c->off += n;
    return 0;
}

int cursor_read_ref(cursor *c, size_t n, const uint8_t **ret)
{
    if (!has(c, n)) {
        return -EBADMSG;
    }
    *ret = c->buf + c->off;
    c->off += n;
    return 0;
}

int cursor_read_sub(cursor *c, size_t n, cursor *ret)
{
    if (!has(c, n)) {
        return -EBADMSG;
    }
    *ret = cursor_make(c->buf + c->off, n);
    c->off += n;
    return 0;
}

int cursor_skip(cursor *c, size_t n)
{
    if (!has(c, n)) {
        return -EBADMSG;
    }
    c->off += n;
    return 0;
}

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

static inline bool room(const wcursor *w, size_t n)
{
    return w->cap - w->off >= n;
}

int wcursor_put_u8(wcursor *w, uint8_t v)
{
    if (!room(w, 1)) {
        return -ENOSPC;
    }
    w->buf[w->off++] = v;
    return 0;
}

int wcursor_put_be16(wcursor *w, uint16_t v)
{
    if (!room(w, 2)) {
        return -ENOSPC;
    }
    w->buf[w->off] = (uint8_t)(v >> 8);
    w->buf[w->off + 1] = (uint8_t)v;
    w->off += 2;
    return 0;
}

int wcursor_put_be32(wcursor *w, uint32_t v)
{
    if (!room(w, 4)) {
        return -ENOSPC;
    }
    for (size_t i = 0; i < 4; i++) {
        w->buf[w->off + i] = (uint8_t)(v >> (24 - 8 * i));
    }
    w->off += 4;
    return 0;
}

int wcursor_put_be64(wcursor *w, uint64_t v)
{
    if (!room(w, 8)) {
        return -ENOSPC;
    }
    for (size_t i = 0; i < 8; i++) {
        w->buf[w->off + i] = (uint8_t)(v >> (56 - 8 * i));
    }
    w->off += 8;
    return 0;
}

int wcursor_put_bytes(wcursor *w, const void *src, size_t n)
{
    if (!room(w, n)) {
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
    if (!room(w, n)) {
        return -ENOSPC;
    }
    memset(w->buf + w->off, 0, n);
    w->off += n;
    return 0;
}

int wcursor_reserve(wcursor *w, size_t n, size_t *ret_off)
{
    if (!room(w, n)) {
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
