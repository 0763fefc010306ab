/* store/pgarray: a PostgreSQL array literal ('{1,2,NULL}', '{"a","b\"c"}')
 * built one element at a time, to send a column of many rows as one
 * parameter: `INSERT ... SELECT FROM unnest($1::bigint[], $2::text[], ...)`
 * is one statement for a whole batch of rows where one INSERT per row was
 * a statement each (store/postgresql.c).
 *
 * Elements are written in the array input syntax of PostgreSQL's manual
 * (8.15.6 "Array Value Input"): every text element double-quoted with `"`
 * and `\` escaped, so no value (empty, "NULL", braces, commas, spaces) is
 * read as anything but itself; NULL unquoted. A literal is sent as a text
 * parameter, never spliced into SQL.
 *
 * Not common/rbuf.h: it refuses text past 1 MiB (a rendered file), and a
 * batch's message column may reach 2 MiB (1,000 events of 1,024-byte
 * lines, each byte possibly escaped); a literal is also read, then added
 * to, where rbuf hands its text over once. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct pgarray {
    char *buf; /* "{e1,e2" while open; see pgarray_text() */
    size_t len, cap;
    size_t n; /* elements */
    int err;  /* the first failure (-ENOMEM), then every call is a no-op */
} pgarray;

void pgarray_add_i64(pgarray *a, int64_t v);
/* NULL adds SQL NULL. */
void pgarray_add_text(pgarray *a, const char *v);
/* The literal of what was added ("{}" for nothing), valid until the next
 * change; NULL after a failure (pgarray_error()). */
const char *pgarray_text(pgarray *a);
/* 0, or the first failure. */
int pgarray_error(const pgarray *a);
/* Empties it (keeping its memory). */
void pgarray_reset(pgarray *a);
void pgarray_done(pgarray *a);
