/* Diagnostics: a list of configuration problems, each with its file and line.
 *
 * Parsers and validators add every problem they find and carry on, so
 * `--check-config` can show all of them at once instead of the first only.
 * Entries read "FILE:LINE: message", or "FILE: message" when the line is 0,
 * or just "message" when there is no file.
 *
 * The list is bounded: after DIAG_MAX entries further problems are counted,
 * not stored, and one last entry says how many were not shown. A failed
 * allocation is counted the same way, so diag_add() never fails and callers
 * need not check it. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#define DIAG_MAX 1000

typedef struct diag diag;

/* NULL when out of memory. */
diag *diag_new(void);
/* Accepts NULL, returns NULL. */
diag *diag_free(diag *d);

/* Records one problem. `d` may be NULL (the caller only wants the return
 * value of the parser, not the messages); `file` may be NULL; `line` 0 means
 * the problem belongs to the whole file. */
void diag_add(diag *d, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* diag_add() with a va_list, for callers that take a format themselves. */
void diag_addv(diag *d, const char *file, unsigned line, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Number of entries, including the final "too many errors" entry if any. */
size_t diag_count(const diag *d);
/* Entry i (0-based) as formatted text, NULL when i is out of range. Valid until
 * the next diag_add() or diag_free(). */
const char *diag_get(const diag *d, size_t i);
/* Writes every entry, one per line. */
void diag_print(const diag *d, FILE *f);
