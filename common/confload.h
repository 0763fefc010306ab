/* confload: a daemon's configuration file, described as a table.
 *
 * A daemon lists the sections it knows and the keys in each: the key's
 * type, where its value goes in the daemon's config struct (an offset), and
 * for the odd key a callback. confload_load() reads the file (common/ini.h),
 * walks every section and entry in file order, parses each value with
 * common/parse.h and adds every problem to the diag with its file and line,
 * so `--check-config` lists them all:
 *
 *     unknown section [NAME]                  at the section's line
 *     unknown key "KEY" in [NAME]             at the entry's line
 *     KEY: <what is wrong with the value>     at the entry's line
 *     section [NAME] repeated (first at line N)   for unique sections
 *     [NAME] KEY is required                  at the section's first line,
 *                                             or for the file when absent
 *
 * A key given twice takes the later line's value (each line is checked).
 * Defaults are not in the table: the daemon fills its struct before the load
 * (typed, with the constants its header names), and a key only overwrites
 * its field when its value is good. Checks across keys and derived values go
 * in the schema's `finish`, which runs after every section was read.
 *
 * Nothing here knows a daemon's keys; library code, so nothing is logged. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "ini.h"

/* The state of one load, passed to the callbacks. */
typedef struct confload confload;

typedef enum confload_type {
    CONFLOAD_STRING,      /* char *: non-empty, copied */
    CONFLOAD_PATH,        /* char *: non-empty, relative to the file's directory */
    CONFLOAD_URL,         /* char *: `prefix` and something after it */
    CONFLOAD_USER,        /* char *: a user name (user_name_valid()) */
    CONFLOAD_BOOL,        /* bool (parse_bool()) */
    CONFLOAD_UINT,        /* unsigned: decimal in [min, max] */
    CONFLOAD_SIZE,        /* unsigned: a byte count (parse_size()) in [min, max] */
    CONFLOAD_DURATION_MS, /* unsigned: whole seconds in [min, max], kept in ms */
    CONFLOAD_IPV6,        /* struct in6_addr (parse_ipv6()) */
    CONFLOAD_LISTEN,      /* struct sockaddr_in6 (parse_listen_address(), `port`) */
    CONFLOAD_LOG_LEVEL,   /* log_level (common/log.h) */
    CONFLOAD_LOG_FORMAT,  /* log_format (common/log.h) */
    CONFLOAD_WORDS,       /* char *[max] and a size_t count: blank-separated words */
    CONFLOAD_IPV6_LIST,   /* struct in6_addr[max] and a size_t count, blank-separated */
    CONFLOAD_CUSTOM,      /* `parse` does it all */
} confload_type;

/* Further rules for a stored string (STRING, PATH, URL) or for each word of
 * a WORDS list; reports its own problems with confload_problem(). */
typedef void (*confload_check_fn)(confload *l, const ini_entry *e, const char *item);
/* A CUSTOM key: parses e->value into `obj` (the daemon's struct) and
 * reports its own problems. */
typedef void (*confload_parse_fn)(confload *l, const ini_entry *e, void *obj);

/* Where a key's value goes: `.offset` and, for numbers, `.width`, the size
 * of the unsigned field (2, 4 or 8 bytes; `max` must fit it). */
#define CONFLOAD_FIELD(type, member)                                                               \
    .offset = offsetof(type, member), .width = sizeof(((type *)0)->member)

/* `flag` below: offset + 1 of a bool set when the key's value was stored, so
 * the zero an unset designated initializer leaves means "none". */
#define CONFLOAD_FLAG(type, member) (offsetof(type, member) + 1)

typedef struct confload_key {
    const char *name;
    confload_type type;
    size_t offset;       /* of the field (lists: of the array) */
    size_t width;        /* numbers: sizeof the field (CONFLOAD_FIELD()) */
    size_t count_offset; /* lists: of the size_t count */
    size_t flag;         /* CONFLOAD_FLAG() or 0 */
    uint64_t min, max;   /* numbers: the bounds; lists: max is the most items */
    uint16_t port;       /* LISTEN: the port when the address names none */
    const char *prefix;  /* URL: the scheme, "tls+tcp://" */
    /* Numbers: a bad value reads "KEY: expected EXPECT, not \"VALUE\"" (an
     * out-of-range one too unless `range` is set) instead of "not a number"
     * and "out of range [MIN, MAX]"; an out-of-range one reads
     * "KEY: VALUE is RANGE" when `range` is set. */
    const char *expect;
    const char *range;
    bool required; /* "[SECTION] KEY is required" when no line stores a value */
    bool commas;   /* WORDS: commas separate words too (parse_list) */
    confload_check_fn check;
    confload_parse_fn parse;
} confload_key;

typedef struct confload_section {
    const char *name;
    const confload_key *keys;
    size_t n_keys;
    /* A second [NAME] is reported (its keys are read all the same). */
    bool unique;
    /* Runs after each [NAME] section's entries (e.g. keys needed together). */
    void (*end)(confload *l, const ini_section *s, void *obj);
} confload_section;

typedef struct confload_schema {
    const confload_section *sections;
    size_t n_sections;
    /* Runs once after every section and the required keys were checked. */
    void (*finish)(confload *l, void *obj);
} confload_schema;

/* Reads `path` into `obj`, which holds the defaults. Every problem goes to
 * `d` (which may be NULL). Returns 0; the read error (-ENOENT, -EBADMSG for
 * INI syntax, ...), reported in `d` too; or -EINVAL when a problem was
 * reported. On failure `obj` may hold some parsed values: the caller frees
 * it as it would a loaded one. */
int confload_load(const char *path, const confload_schema *schema, void *obj, diag *d);

/* For callbacks: adds a problem ("FILE:LINE: message"; line 0 for the whole
 * file) and makes the load fail. */
void confload_problem(confload *l, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The file being loaded, as given to confload_load(). */
const char *confload_file(const confload *l);
/* The line of the first [name] section, 0 when there is none. */
unsigned confload_section_line(const confload *l, const char *name);
/* `rel` against the loaded file's directory (fileio_path_relative()), or
 * a problem "out of memory" at `line` and NULL. */
char *confload_resolve(confload *l, unsigned line, const char *rel);
