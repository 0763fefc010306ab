#include "diag.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct diag {
    char **msgs;
    size_t n;
    size_t cap;
    /* Problems reported but not stored: past DIAG_MAX or out of memory. */
    size_t dropped;
    bool oom;
    /* The trailing summary entry; rewritten on every drop so no allocation
     * is needed to report that allocations failed. */
    char tail[96];
};

diag *diag_new(void)
{
    return calloc(1, sizeof(diag));
}

diag *diag_free(diag *d)
{
    if (!d) {
        return NULL;
    }
    for (size_t i = 0; i < d->n; i++) {
        free(d->msgs[i]);
    }
    free(d->msgs);
    free(d);
    return NULL;
}

static void diag_drop(diag *d, bool oom)
{
    d->dropped++;
    d->oom = d->oom || oom;
    if (d->oom) {
        snprintf(d->tail, sizeof(d->tail), "%zu more problem(s) not shown (out of memory)",
                 d->dropped);
    } else {
        snprintf(d->tail, sizeof(d->tail), "too many errors, %zu more not shown", d->dropped);
    }
}

/* vasprintf() would do, but its failure leaves the pointer undefined; two
 * vsnprintf() passes keep every path explicit. */
static char *format_entry(const char *file, unsigned line, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static char *format_entry(const char *file, unsigned line, const char *fmt, va_list ap)
{
    char prefix[64];
    int plen = 0;
    if (file && line > 0) {
        plen = snprintf(prefix, sizeof(prefix), ":%u: ", line);
    } else if (file) {
        plen = snprintf(prefix, sizeof(prefix), ": ");
    } else {
        prefix[0] = '\0';
    }
    if (plen < 0 || (size_t)plen >= sizeof(prefix)) {
        return NULL;
    }

    va_list aq;
    va_copy(aq, ap);
    int mlen = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (mlen < 0) {
        return NULL;
    }

    size_t flen = file ? strlen(file) : 0;
    size_t total = flen + (size_t)plen + (size_t)mlen + 1;
    char *s = malloc(total);
    if (!s) {
        return NULL;
    }
    if (flen > 0) {
        memcpy(s, file, flen);
    }
    memcpy(s + flen, prefix, (size_t)plen);
    vsnprintf(s + flen + (size_t)plen, (size_t)mlen + 1, fmt, ap);
    return s;
}

void diag_add(diag *d, const char *file, unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_addv(d, file, line, fmt, ap);
    va_end(ap);
}

void diag_addv(diag *d, const char *file, unsigned line, const char *fmt, va_list ap)
{
    if (!d) {
        return;
    }
    if (d->n >= DIAG_MAX) {
        diag_drop(d, false);
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        if (cap > DIAG_MAX) {
            cap = DIAG_MAX;
        }
        char **msgs = realloc(d->msgs, cap * sizeof(*msgs));
        if (!msgs) {
            diag_drop(d, true);
            return;
        }
        d->msgs = msgs;
        d->cap = cap;
    }

    char *s = format_entry(file, line, fmt, ap);
    if (!s) {
        diag_drop(d, true);
        return;
    }
    d->msgs[d->n++] = s;
}

size_t diag_count(const diag *d)
{
    if (!d) {
        return 0;
    }
    return d->n + (d->dropped > 0 ? 1 : 0);
}

const char *diag_get(const diag *d, size_t i)
{
    if (!d) {
        return NULL;
    }
    if (i < d->n) {
        return d->msgs[i];
    }
    if (i == d->n && d->dropped > 0) {
        return d->tail;
    }
    return NULL;
}

void diag_print(const diag *d, FILE *f)
{
    size_t n = diag_count(d);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s\n", diag_get(d, i));
    }
}
