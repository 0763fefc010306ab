#include "ini.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "fileio.h"
#include "util.h"

typedef struct parser {
    const char *path;
    diag *d;
    ini_doc *doc;
    size_t sections_cap;
    /* Capacity of the last section's entries; earlier sections are done. */
    size_t entries_cap;
    size_t errors;
    /* After a broken section header: its entries belong to no section we
     * know, so they are dropped instead of reported one by one. */
    bool skipping;
} parser;

#define parser_error(ps, line, ...)                                                                \
    do {                                                                                           \
        (ps)->errors++;                                                                            \
        diag_add((ps)->d, (ps)->path, (line), __VA_ARGS__);                                        \
    } while (0)

static bool is_blank(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static bool is_key_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static bool is_control(uint8_t c)
{
    return c < 0x20 || c == 0x7f;
}

/* Narrows [*p, *p + *n) to exclude leading and trailing blanks. */
static void trim(const uint8_t **p, size_t *n)
{
    while (*n > 0 && is_blank((*p)[0])) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && is_blank((*p)[*n - 1])) {
        (*n)--;
    }
}

/* Doubles *cap until it exceeds `used`; -ENOMEM instead of overflowing. */
static int grow(void **array, size_t *cap, size_t used, size_t elem)
{
    if (used < *cap) {
        return 0;
    }
    size_t ncap = *cap ? *cap * 2 : 8;
    if (ncap < *cap || ncap > SIZE_MAX / elem) {
        return -ENOMEM;
    }
    void *n = realloc(*array, ncap * elem);
    if (!n) {
        return -ENOMEM;
    }
    *array = n;
    *cap = ncap;
    return 0;
}

static int add_section(parser *ps, const uint8_t *name, size_t n, unsigned line)
{
    ini_doc *doc = ps->doc;
    void *array = doc->sections;
    int r = grow(&array, &ps->sections_cap, doc->n_sections, sizeof(ini_section));
    doc->sections = array;
    if (r < 0) {
        return r;
    }
    char *s = memdup_str(name, n);
    if (!s) {
        return -ENOMEM;
    }
    doc->sections[doc->n_sections++] = (ini_section){ .name = s, .line = line };
    ps->entries_cap = 0;
    return 0;
}

static int add_entry(parser *ps, const uint8_t *key, size_t key_len, const uint8_t *value,
                     size_t value_len, unsigned line)
{
    ini_section *s = &ps->doc->sections[ps->doc->n_sections - 1];
    void *array = s->entries;
    int r = grow(&array, &ps->entries_cap, s->n_entries, sizeof(ini_entry));
    s->entries = array;
    if (r < 0) {
        return r;
    }
    /* Key and value share one allocation ("key\0value\0"): half the
     * mallocs for files with many entries. ini_doc_free() frees key only.
     * Both lengths are below INI_MAX_FILE, so the sum cannot wrap. */
    char *kv = malloc(key_len + value_len + 2);
    if (!kv) {
        return -ENOMEM;
    }
    memcpy(kv, key, key_len);
    kv[key_len] = '\0';
    if (value_len > 0) {
        memcpy(kv + key_len + 1, value, value_len);
    }
    kv[key_len + 1 + value_len] = '\0';
    s->entries[s->n_entries++] = (ini_entry){ .key = kv, .value = kv + key_len + 1, .line = line };
    return 0;
}

static int parse_section(parser *ps, const uint8_t *p, size_t n, unsigned line)
{
    /* p[0] is '[' and p[n - 1] is not blank (the line is trimmed). */
    const uint8_t *close = memchr(p + 1, ']', n - 1);
    if (!close) {
        parser_error(ps, line, "unterminated section header, expected ']'");
        ps->skipping = true;
        return 0;
    }
    if (close != p + n - 1) {
        /* No inline comments anywhere, headers included: "[a] # x" is an
         * error rather than a silently different rule from values. */
        parser_error(ps, line, "unexpected text after ']'");
        ps->skipping = true;
        return 0;
    }
    const uint8_t *name = p + 1;
    size_t name_len = (size_t)(close - name);
    trim(&name, &name_len);
    if (name_len == 0) {
        parser_error(ps, line, "empty section name");
        ps->skipping = true;
        return 0;
    }
    for (size_t i = 0; i < name_len; i++) {
        if (is_control(name[i]) && name[i] != '\t') {
            parser_error(ps, line, "control character 0x%02x in section name", name[i]);
            ps->skipping = true;
            return 0;
        }
    }
    ps->skipping = false;
    return add_section(ps, name, name_len, line);
}

static int parse_entry(parser *ps, const uint8_t *p, size_t n, unsigned line)
{
    const uint8_t *eq = memchr(p, '=', n);
    if (!eq) {
        parser_error(ps, line, "expected 'key = value' or '[section]'");
        return 0;
    }
    const uint8_t *key = p;
    size_t key_len = (size_t)(eq - p);
    trim(&key, &key_len);
    if (key_len == 0) {
        parser_error(ps, line, "empty key before '='");
        return 0;
    }
    for (size_t i = 0; i < key_len; i++) {
        if (is_key_char(key[i])) {
            continue;
        }
        if (key[i] >= 0x20 && key[i] < 0x7f) {
            parser_error(ps, line, "invalid character '%c' in key", key[i]);
        } else {
            parser_error(ps, line, "invalid byte 0x%02x in key", key[i]);
        }
        return 0;
    }
    const uint8_t *value = eq + 1;
    size_t value_len = n - (size_t)(value - p);
    trim(&value, &value_len);

    if (ps->doc->n_sections == 0 || ps->skipping) {
        if (!ps->skipping) {
            parser_error(ps, line, "key outside of any [section]");
        }
        return 0;
    }
    return add_entry(ps, key, key_len, value, value_len, line);
}

static int parse_line(parser *ps, const uint8_t *p, size_t n, unsigned line)
{
    if (n > 0 && p[n - 1] == '\r') {
        n--;
    }
    if (n > 0 && memchr(p, '\0', n)) {
        parser_error(ps, line, "NUL byte in line");
        return 0;
    }
    trim(&p, &n);
    if (n == 0 || p[0] == '#' || p[0] == ';') {
        return 0;
    }
    if (p[0] == '[') {
        return parse_section(ps, p, n, line);
    }
    return parse_entry(ps, p, n, line);
}

ini_doc *ini_doc_free(ini_doc *doc)
{
    if (!doc) {
        return NULL;
    }
    for (size_t i = 0; i < doc->n_sections; i++) {
        ini_section *s = &doc->sections[i];
        for (size_t j = 0; j < s->n_entries; j++) {
            /* value lives in the same allocation as key. */
            free(s->entries[j].key);
        }
        free(s->entries);
        free(s->name);
    }
    free(doc->sections);
    free(doc->path);
    free(doc);
    return NULL;
}

int ini_parse(const char *path, const void *buf, size_t len, diag *d, ini_doc **ret)
{
    static const uint8_t bom[] = { 0xef, 0xbb, 0xbf };
    int r = 0;
    parser ps = { .path = path, .d = d };
    cursor c;

    if (len > INI_MAX_FILE) {
        diag_add(d, path, 0, "file larger than %u bytes", INI_MAX_FILE);
        return -EFBIG;
    }
    ps.doc = calloc(1, sizeof(ini_doc));
    if (!ps.doc) {
        r = -ENOMEM;
        goto out;
    }
    if (path) {
        ps.doc->path = strdup(path);
        if (!ps.doc->path) {
            r = -ENOMEM;
            goto out;
        }
    }

    c = cursor_make(buf, len);
    if (len >= sizeof(bom) && memcmp(buf, bom, sizeof(bom)) == 0) {
        cursor_skip(&c, sizeof(bom));
    }
    /* INI_MAX_FILE bytes hold fewer lines than UINT_MAX. */
    for (unsigned line = 1; !cursor_at_end(&c); line++) {
        const uint8_t *p;
        size_t n;
        if (cursor_read_until(&c, '\n', &p, &n) < 0) {
            /* Last line without a newline. */
            n = cursor_remaining(&c);
            p = cursor_pos(&c);
            cursor_skip(&c, n);
        }
        r = parse_line(&ps, p, n, line);
        if (r < 0) {
            goto out;
        }
    }
    if (ps.errors > 0) {
        r = -EBADMSG;
        goto out;
    }
    *ret = TAKE_PTR(ps.doc);
out:
    if (r == -ENOMEM) {
        diag_add(d, path, 0, "out of memory");
    }
    ini_doc_free(ps.doc);
    return r;
}

int ini_load_file(const char *path, diag *d, ini_doc **ret)
{
    void *buf;
    size_t len;
    int r = fileio_read_all(path, INI_MAX_FILE, &buf, &len);
    if (r < 0) {
        diag_add(d, path, 0, "cannot read: %s", errstr(r));
        return r;
    }
    r = ini_parse(path, buf, len, d, ret);
    free(buf);
    return r;
}

const ini_section *ini_doc_find_section(const ini_doc *doc, const char *name)
{
    for (size_t i = 0; i < doc->n_sections; i++) {
        if (streq(doc->sections[i].name, name)) {
            return &doc->sections[i];
        }
    }
    return NULL;
}

const ini_entry *ini_section_find(const ini_section *s, const char *key)
{
    for (size_t i = s->n_entries; i > 0; i--) {
        if (streq(s->entries[i - 1].key, key)) {
            return &s->entries[i - 1];
        }
    }
    return NULL;
}

int ini_section_split(const char *name, const char **ret_kind, size_t *ret_kind_len,
                      const char **ret_arg)
{
    if (strempty(name)) {
        return -EINVAL;
    }
    size_t kind_len = strcspn(name, " \t");
    const char *arg = name + kind_len;
    arg += strspn(arg, " \t");

    *ret_kind = name;
    *ret_kind_len = kind_len;
    *ret_arg = *arg ? arg : NULL;
    return 0;
}
