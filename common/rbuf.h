/* rbuf: a growable output buffer with a sticky error, for whatever renders
 * text (templates, boot scripts, command lines).
 *
 * Appends after a failure do nothing, so a renderer appends freely and
 * checks once, in rbuf_finish(). */
#pragma once

#include <stddef.h>

/* No rendered file comes near this; a bigger one is a bug or a hostile
 * template, refused with -E2BIG rather than grown without bound. */
#define RBUF_MAX (1024u * 1024u)

typedef struct rbuf {
    char *data;
    size_t len;
    size_t cap;
    int err; /* 0, -ENOMEM or -E2BIG */
} rbuf;

void rbuf_add(rbuf *b, const void *p, size_t n);
void rbuf_puts(rbuf *b, const char *s);
void rbuf_putc(rbuf *b, char c);
__attribute__((format(printf, 2, 3))) void rbuf_printf(rbuf *b, const char *fmt, ...);
/* Marks the buffer failed with `err` (the first error sticks). */
void rbuf_fail(rbuf *b, int err);
/* Hands the NUL-terminated result to *ret (and its length, without the NUL,
 * to *ret_len if not NULL) and returns 0; or frees it and returns the sticky
 * error. The buffer is empty afterwards either way. */
int rbuf_finish(rbuf *b, char **ret, size_t *ret_len);
void rbuf_clear(rbuf *b);
