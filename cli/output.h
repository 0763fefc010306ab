/* The CLI's output formats for scripts: a value built as JSON (render.h's
 * render_*_json) printed as JSON, YAML or names, whole or a page at a time.
 *
 *   json  jansson, keys sorted, two-space indent (the --json of old)
 *   yaml  the same tree through libyaml's emitter: block style, keys
 *         sorted, strings quoted wherever a YAML reader would take them for
 *         something else (a number, a bool, null, a MAC in base 60)
 *   name  one line per row: the value of the row's naming key (a host's
 *         name, a rack, an event's seq), for `xargs` and loops
 *
 * The people's formats (table, wide) are render.h's. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

typedef enum output_format {
    OUTPUT_TABLE = 0, /* the default */
    OUTPUT_WIDE,      /* a table with every column */
    OUTPUT_JSON,
    OUTPUT_YAML,
    OUTPUT_NAME,
} output_format;

/* "table", "wide", "json", "yaml", "name". -EINVAL otherwise. */
int output_format_from_string(const char *s, output_format *ret);

/* JSON, YAML and names are built from the JSON tree; tables are not. */
static inline bool output_structured(output_format f)
{
    return f >= OUTPUT_JSON;
}

/* Prints j (may be NULL: out of memory, -ENOMEM) in a structured format
 * and drops the reference. With OUTPUT_NAME, j is an array of objects (or
 * one object) and `name_key` their naming key. -EIO when the stream fails,
 * -EINVAL for a table format. */
int output_print(FILE *f, output_format fmt, json_t *j, const char *name_key);

/* One compact JSON object per line (JSON Lines): `watch --json`. Drops the
 * reference. */
int output_json_line(FILE *f, json_t *j);

/* A structured listing printed page by page, in constant memory: JSON as
 * one array written element by element (byte for byte output_print() of
 * the whole array, which is never built), YAML as one block sequence, names
 * a line each. */
typedef struct output_seq {
    FILE *f;
    output_format fmt;
    const char *name_key;
    size_t rows;              /* printed so far */
    struct yaml_emitter_s *y; /* open once the first YAML page came */
    int error;                /* the first error, or 0: every later call returns it */
} output_seq;

void output_seq_init(output_seq *s, FILE *f, output_format fmt, const char *name_key);
/* Prints the elements of `rows` (an array; the reference is dropped; NULL
 * is out of memory). */
int output_seq_add(output_seq *s, json_t *rows);
/* Ends the listing ("]" or "[]" for JSON, the sequence's end for YAML) and
 * frees what it holds. A listing that failed midway is left unfinished: its
 * output must not pass for a whole one. Returns the first error. */
int output_seq_end(output_seq *s);
