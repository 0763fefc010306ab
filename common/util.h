/* Small helpers every module uses: errno conversion, cleanup attributes,
 * invariant checks. Header-only. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Drops const where a C API's struct wants a non-const pointer it will only
 * read (protobuf-c string fields of a message we pack, iovecs). */
#define RB_UNCONST(p) ((void *)(uintptr_t)(p))

/* libc reports failure as -1 with errno set; rackboot returns -errno. */
static inline int negative_errno(void)
{
    return errno > 0 ? -errno : -EIO;
}

static inline bool streq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static inline bool strempty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* A broken internal invariant is a bug, never a network condition: abort with
 * the location so the core dump points at it (CONVENTIONS.md, "Errors"). */
#define RB_ASSERT(expr)                                                                            \
    do {                                                                                           \
        if (__builtin_expect(!(expr), 0)) {                                                        \
            fprintf(stderr, "rackboot: assertion failed: %s (%s:%d %s)\n", #expr, __FILE__,        \
                    __LINE__, __func__);                                                           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Returns from the function with expr's value when it is negative (-errno). */
#define TRY(expr)                                                                                  \
    do {                                                                                           \
        int _r = (expr);                                                                           \
        if (_r < 0) {                                                                              \
            return _r;                                                                             \
        }                                                                                          \
    } while (0)

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
    free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
    if (*f) {
        fclose(*f);
    }
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hand a pointer's ownership on: returns it and leaves NULL behind. */
#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _taken = (p);                                                                \
        (p) = NULL;                                                                                \
        _taken;                                                                                    \
    })

#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int _taken = (fd);                                                                         \
        (fd) = -1;                                                                                 \
        _taken;                                                                                    \
    })

/* Copies n bytes that need not be NUL-terminated (e.g. a slice of a packet
 * or file) into a new NUL-terminated string. strndup() is specified to read a
 * string, which such a slice is not. Returns NULL on allocation failure. */
static inline char *memdup_str(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* A description of a negative errno code, for log lines. */
static inline const char *errstr(int r)
{
    return strerror(r < 0 ? -r : r);
}
