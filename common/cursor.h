/* Bounds-checked cursors over untrusted bytes.
 *
 * Every byte that comes from the network is read through a `cursor`, every
 * packet we build is written through a `wcursor`. Each read or write either
 * succeeds whole or fails with nothing consumed and no out-parameter written,
 * so a parser can give up at any point without leaving half-read state.
 * Bounds are checked as subtractions (`len - off < need`), never as
 * `off + need > len`, so no check can overflow.
 *
 * Errors: -EBADMSG when a read runs past the end (malformed input),
 *         -ENOSPC when a write does not fit (our buffer is too small). */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct cursor {
    const uint8_t *buf;
    size_t len;
    size_t off;
} cursor;

static inline cursor cursor_make(const void *buf, size_t len)
{
    return (cursor){ .buf = (const uint8_t *)buf, .len = len, .off = 0 };
}

static inline size_t cursor_remaining(const cursor *c)
{
    return c->len - c->off;
}

static inline bool cursor_at_end(const cursor *c)
{
    return c->off == c->len;
}

static inline bool cursor_has_(const cursor *c, size_t n)
{
    /* off <= len always holds, so the subtraction cannot wrap. */
    return c->len - c->off >= n;
}

/* Pointer to the current position (valid for cursor_remaining() bytes). */
static inline const uint8_t *cursor_pos(const cursor *c)
{
    return c->buf + c->off;
}

static inline int cursor_read_u8(cursor *c, uint8_t *ret)
{
    if (!cursor_has_(c, 1)) {
        return -EBADMSG;
    }
    *ret = c->buf[c->off++];
    return 0;
}

static inline int cursor_read_be16(cursor *c, uint16_t *ret)
{
    if (!cursor_has_(c, 2)) {
        return -EBADMSG;
    }
    const uint8_t *p = c->buf + c->off;
    *ret = (uint16_t)((p[0] << 8) | p[1]);
    c->off += 2;
    return 0;
}

static inline int cursor_read_be32(cursor *c, uint32_t *ret)
{
    if (!cursor_has_(c, 4)) {
        return -EBADMSG;
    }
    const uint8_t *p = c->buf + c->off;
    *ret = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    c->off += 4;
    return 0;
}

static inline int cursor_read_be64(cursor *c, uint64_t *ret)
{
    if (!cursor_has_(c, 8)) {
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

/* Copies n bytes into dst. */
int cursor_read_bytes(cursor *c, void *dst, size_t n);

/* Borrows the next n bytes: *ret points into the cursor's buffer. */
static inline int cursor_read_ref(cursor *c, size_t n, const uint8_t **ret)
{
    if (!cursor_has_(c, n)) {
        return -EBADMSG;
    }
    *ret = c->buf + c->off;
    c->off += n;
    return 0;
}

/* Splits off the next n bytes as a cursor of their own and skips them. */
static inline int cursor_read_sub(cursor *c, size_t n, cursor *ret)
{
    if (!cursor_has_(c, n)) {
        return -EBADMSG;
    }
    *ret = cursor_make(c->buf + c->off, n);
    c->off += n;
    return 0;
}

static inline int cursor_skip(cursor *c, size_t n)
{
    if (!cursor_has_(c, n)) {
        return -EBADMSG;
    }
    c->off += n;
    return 0;
}

static inline int cursor_peek_u8(const cursor *c, uint8_t *ret)
{
    if (!cursor_has_(c, 1)) {
        return -EBADMSG;
    }
    *ret = c->buf[c->off];
    return 0;
}

static inline int cursor_peek_be16(const cursor *c, uint16_t *ret)
{
    if (!cursor_has_(c, 2)) {
        return -EBADMSG;
    }
    const uint8_t *p = c->buf + c->off;
    *ret = (uint16_t)((p[0] << 8) | p[1]);
    return 0;
}

/* Reads up to and including the next `delim` byte. *ret points at the
 * content, *ret_len excludes the delimiter. -EBADMSG if there is none. */
int cursor_read_until(cursor *c, uint8_t delim, const uint8_t **ret, size_t *ret_len);

typedef struct wcursor {
    uint8_t *buf;
    size_t cap;
    size_t off;
} wcursor;

static inline wcursor wcursor_make(void *buf, size_t cap)
{
    return (wcursor){ .buf = (uint8_t *)buf, .cap = cap, .off = 0 };
}

static inline size_t wcursor_remaining(const wcursor *w)
{
    return w->cap - w->off;
}

static inline bool wcursor_room_(const wcursor *w, size_t n)
{
    return w->cap - w->off >= n;
}

/* Bytes written so far. */
static inline size_t wcursor_len(const wcursor *w)
{
    return w->off;
}

static inline int wcursor_put_u8(wcursor *w, uint8_t v)
{
    if (!wcursor_room_(w, 1)) {
        return -ENOSPC;
    }
    w->buf[w->off++] = v;
    return 0;
}

static inline int wcursor_put_be16(wcursor *w, uint16_t v)
{
    if (!wcursor_room_(w, 2)) {
        return -ENOSPC;
    }
    w->buf[w->off] = (uint8_t)(v >> 8);
    w->buf[w->off + 1] = (uint8_t)v;
    w->off += 2;
    return 0;
}

static inline int wcursor_put_be32(wcursor *w, uint32_t v)
{
    if (!wcursor_room_(w, 4)) {
        return -ENOSPC;
    }
    for (size_t i = 0; i < 4; i++) {
        w->buf[w->off + i] = (uint8_t)(v >> (24 - 8 * i));
    }
    w->off += 4;
    return 0;
}

static inline int wcursor_put_be64(wcursor *w, uint64_t v)
{
    if (!wcursor_room_(w, 8)) {
        return -ENOSPC;
    }
    for (size_t i = 0; i < 8; i++) {
        w->buf[w->off + i] = (uint8_t)(v >> (56 - 8 * i));
    }
    w->off += 8;
    return 0;
}

int wcursor_put_bytes(wcursor *w, const void *src, size_t n);

int wcursor_put_zeros(wcursor *w, size_t n);

/* Reserves n bytes to be filled in later (e.g. a length field written once
 * the body is known). *ret_off is the offset to pass to wcursor_patch_*(). */
int wcursor_reserve(wcursor *w, size_t n, size_t *ret_off);

/* Overwrites bytes already written at `at`. The range must lie inside what
 * was written: patching outside it is a caller bug and aborts. */
void wcursor_patch_be16(wcursor *w, size_t at, uint16_t v);
void wcursor_patch_be32(wcursor *w, size_t at, uint32_t v);
