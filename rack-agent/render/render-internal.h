/* What the render modules share and white-box tests may use: a growable
 * output buffer with a sticky error, and the checks every value passes before
 * it lands in a script, a command line or a kickstart. Not for callers
 * outside rack-agent/render/. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* No rendered file comes near this; a bigger one is a bug or a hostile
 * template, refused with -E2BIG rather than grown without bound. */
#define RENDER_MAX_OUTPUT (1024u * 1024u)

/* An output under construction. Appends after a failure do nothing, so a
 * renderer appends freely and checks once, in rbuf_finish(). */
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

/* A value that may be substituted anywhere we render: non-empty is not
 * required, but no byte below 0x21 (so no space, tab, newline or other
 * control character), no DEL or non-ASCII byte, and none of " ' ` \ $ — the
 * characters that end or re-open quoting in a shell script, a kickstart
 * line, an iPXE line (`${`) or a kernel command line. */
bool render_value_safe(const char *s);

/* An install id, a token or a profile name: 1-128 characters of RFC 3986
 * "unreserved" (letters, digits, '-', '.', '_', '~'), so it goes into a URL
 * path or query and onto a kernel command line without any encoding. "." and
 * ".." are refused (they are path segments). */
bool render_id_valid(const char *s);

/* The profile's extra kernel arguments: any printable ASCII, no control
 * characters (a newline would start a new iPXE command). */
bool render_cmdline_extra_valid(const char *s);

/* "2001:db8::1" (RFC 5952 form, as inet_ntop writes it). */
#define RENDER_ADDR_LEN 46
void render_format_addr(const void *in6_addr, char buf[RENDER_ADDR_LEN]);
