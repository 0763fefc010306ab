/* A small INI reader for the daemons' configuration files.
 *
 *     # comment                      ; comment too (whole lines only)
 *     [agent]
 *     listen = [::]:69
 *     [host web17]
 *     mac = 52:54:00:12:34:56
 *     file.kernel = http://[2001:db8::1]/vmlinuz sha256=9f86d0...
 *
 * Lines end in "\n" ("\r\n" is tolerated). Comments are whole lines starting
 * with '#' or ';' after optional blanks; there are no inline comments, so a
 * '#' or ';' inside a value is part of it (URLs with fragments, `sha256=`
 * suffixes). Section names are trimmed, non-empty, and may contain spaces
 * ("host web17"). Keys are [A-Za-z0-9._-]+; key and value are trimmed of
 * blanks (space, tab); the value may be empty and is otherwise opaque bytes
 * (no UTF-8 check), but no line may contain a NUL byte. Lines have no length
 * limit; the whole file is capped at INI_MAX_FILE. A UTF-8 byte order mark
 * at the start is skipped.
 *
 * Every syntax error is added to the diag with file and line, and parsing
 * goes on to find the next, so `--check-config` can list them all; the result
 * is then -EBADMSG and no document. Entries after a broken section header
 * are still checked for syntax, but not reported as being outside a section
 * (one typo in a header should give one error, not one per key below it).
 *
 * The reader knows no key names: each daemon walks the document, checks its
 * own keys, and reports problems with the entry's line. Repeated sections are
 * kept in file order; whether that is an error is the caller's choice. */
#pragma once

#include <stddef.h>

#include "diag.h"

#define INI_MAX_FILE (16u * 1024u * 1024u)

typedef struct ini_entry {
    char *key;
    char *value;
    unsigned line;
} ini_entry;

typedef struct ini_section {
    char *name;
    unsigned line;
    ini_entry *entries;
    size_t n_entries;
} ini_section;

typedef struct ini_doc {
    char *path;
    ini_section *sections;
    size_t n_sections;
} ini_doc;

/* Parses len bytes of buf. `path` names the input in messages (NULL: none);
 * `d` may be NULL. -EBADMSG on syntax errors, -EFBIG past INI_MAX_FILE,
 * -ENOMEM; *ret is written only on success. */
int ini_parse(const char *path, const void *buf, size_t len, diag *d, ini_doc **ret);
/* Reads and parses a file; read errors (-ENOENT, -EACCES, -EFBIG...) are
 * reported in `d` too. */
int ini_load_file(const char *path, diag *d, ini_doc **ret);
/* Accepts NULL, returns NULL. */
ini_doc *ini_doc_free(ini_doc *doc);

/* First section with exactly this name, NULL if none. */
const ini_section *ini_doc_find_section(const ini_doc *doc, const char *name);
/* Last entry with this key (a later line overrides an earlier one), NULL if
 * none. */
const ini_entry *ini_section_find(const ini_section *s, const char *key);

/* Splits a section name at its first blank: "host web17" gives kind "host"
 * (kind_len 4, not NUL-terminated) and arg "web17"; "agent" gives kind
 * "agent" and arg NULL. Both point into `name`. -EINVAL for an empty name. */
int ini_section_split(const char *name, const char **ret_kind, size_t *ret_kind_len,
                      const char **ret_arg);
