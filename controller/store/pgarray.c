/* store/pgarray: see pgarray.h. */
#include "store/pgarray.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for `more` bytes and the closing "}\0". */
static int reserve(pgarray *a, size_t more)
{
    if (a->err) {
        return a->err;
    }
    size_t need = a->len + more + 2;
    if (need <= a->cap) {
        return 0;
    }
    size_t cap = a->cap ? a->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    char *buf = realloc(a->buf, cap);
    if (!buf) {
        a->err = -ENOMEM;
        return a->err;
    }
    a->buf = buf;
    a->cap = cap;
    return 0;
}

/* The separator before an element: "{" for the first, "," after. */
static void separate(pgarray *a)
{
    a->buf[a->len++] = a->n == 0 ? '{' : ',';
    a->n++;
}

void pgarray_add_i64(pgarray *a, int64_t v)
{
    char num[24];
    int k = snprintf(num, sizeof(num), "%" PRId64, v);
    if (reserve(a, 1 + (size_t)k) < 0) {
        return;
    }
    separate(a);
    memcpy(a->buf + a->len, num, (size_t)k);
    a->len += (size_t)k;
}

void pgarray_add_text(pgarray *a, const char *v)
{
    if (!v) {
        if (reserve(a, 5) < 0) {
            return;
        }
        separate(a);
        memcpy(a->buf + a->len, "NULL", 4);
        a->len += 4;
        return;
    }
    size_t n = strlen(v);
    /* Worst case every byte escaped, plus the separator and quotes. */
    if (n > (SIZE_MAX - 8) / 2 || reserve(a, 2 * n + 3) < 0) {
        a->err = a->err ? a->err : -ENOMEM;
        return;
    }
    separate(a);
    a->buf[a->len++] = '"';
    for (const char *c = v; *c; c++) {
        if (*c == '"' || *c == '\\') {
            a->buf[a->len++] = '\\';
        }
        a->buf[a->len++] = *c;
    }
    a->buf[a->len++] = '"';
}

const char *pgarray_text(pgarray *a)
{
    if (reserve(a, 1) < 0) {
        return NULL;
    }
    if (a->n == 0) {
        memcpy(a->buf, "{}", 3);
        return a->buf;
    }
    /* Closed in place; the next add overwrites the brace. */
    a->buf[a->len] = '}';
    a->buf[a->len + 1] = '\0';
    return a->buf;
}

int pgarray_error(const pgarray *a)
{
    return a->err;
}

void pgarray_reset(pgarray *a)
{
    a->len = 0;
    a->n = 0;
    a->err = 0;
}

void pgarray_done(pgarray *a)
{
    free(a->buf);
    *a = (pgarray){ 0 };
}
