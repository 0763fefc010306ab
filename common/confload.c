#include "confload.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "log.h"
#include "parse.h"
#include "util.h"

struct confload {
    const char *file;
    diag *d;
    const ini_doc *doc;
    unsigned errors;
};

void confload_problem(confload *l, unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_addv(l->d, l->file, line, fmt, ap);
    va_end(ap);
    l->errors++;
}

const char *confload_file(const confload *l)
{
    return l->file;
}

unsigned confload_section_line(const confload *l, const char *name)
{
    const ini_section *s = ini_doc_find_section(l->doc, name);
    return s ? s->line : 0;
}

char *confload_resolve(confload *l, unsigned line, const char *rel)
{
    char *p = fileio_path_relative(l->file, rel);
    if (!p) {
        confload_problem(l, line, "out of memory");
    }
    return p;
}

static void free_words(char **out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = (free(out[i]), NULL);
    }
}

/* The field `k` describes inside the daemon's struct. */
static void *field(void *obj, size_t offset)
{
    return (char *)obj + offset;
}

/* A bad number, with the key's own wording when it has one. */
static void bad_number(confload *l, const confload_key *k, const ini_entry *e, bool out_of_range)
{
    if (out_of_range && k->range) {
        confload_problem(l, e->line, "%s: %s is %s", e->key, e->value, k->range);
    } else if (k->expect) {
        confload_problem(l, e->line, "%s: expected %s, not \"%s\"", e->key, k->expect, e->value);
    } else if (out_of_range) {
        confload_problem(l, e->line, "%s: %s is out of range [%" PRIu64 ", %" PRIu64 "]", e->key,
                         e->value, k->min, k->max);
    } else {
        confload_problem(l, e->line, "%s: not a number: \"%s\"", e->key, e->value);
    }
}

/* STRING, PATH, URL, USER: replaces the field with a copy of the value. */
static bool store_string(confload *l, const confload_key *k, const ini_entry *e, char **dst)
{
    if (strempty(e->value)) {
        confload_problem(l, e->line, "%s: empty value", e->key);
        return false;
    }
    free(*dst);
    if (k->type == CONFLOAD_PATH) {
        *dst = confload_resolve(l, e->line, e->value);
    } else {
        *dst = strdup(e->value);
        if (!*dst) {
            confload_problem(l, e->line, "out of memory");
        }
    }
    return *dst != NULL;
}

static bool store_words(confload *l, const confload_key *k, const ini_entry *e, void *obj)
{
    char **words = field(obj, k->offset);
    size_t *n = field(obj, k->count_offset);
    free_words(words, *n);
    *n = 0;
    int r = k->commas ? parse_list(e->value, words, (size_t)k->max, n)
                      : parse_words(e->value, words, (size_t)k->max, n);
    if (r == -E2BIG) {
        confload_problem(l, e->line, "%s: more than %" PRIu64, e->key, k->max);
        return false;
    }
    if (r < 0) {
        confload_problem(l, e->line, "out of memory");
        return false;
    }
    if (k->check) {
        for (size_t i = 0; i < *n; i++) {
            k->check(l, e, words[i]);
        }
    }
    return true;
}

static bool store_addresses(confload *l, const confload_key *k, const ini_entry *e, void *obj)
{
    struct in6_addr *addrs = field(obj, k->offset);
    size_t *n = field(obj, k->count_offset);
    char *words[64];
    size_t max = (size_t)k->max;
    RB_ASSERT(max <= ARRAY_SIZE(words));
    size_t n_words = 0;
    int r = parse_words(e->value, words, max, &n_words);
    if (r == -E2BIG) {
        confload_problem(l, e->line, "%s: more than %" PRIu64, e->key, k->max);
        return false;
    }
    if (r < 0) {
        confload_problem(l, e->line, "out of memory");
        return false;
    }
    *n = 0;
    for (size_t i = 0; i < n_words; i++) {
        if (parse_ipv6(words[i], &addrs[*n]) < 0) {
            confload_problem(l, e->line, "%s: not an IPv6 address: \"%s\"", e->key, words[i]);
        } else {
            (*n)++;
        }
    }
    free_words(words, n_words);
    return true;
}

/* A number into a field of k->width bytes; a `max` too large for the field
 * is a bug in the daemon's table. */
static void store_unsigned(const confload_key *k, void *dst, uint64_t v)
{
    switch (k->width) {
    case sizeof(uint16_t):
        RB_ASSERT(v <= UINT16_MAX);
        *(uint16_t *)dst = (uint16_t)v;
        break;
    case sizeof(uint32_t):
        RB_ASSERT(v <= UINT32_MAX);
        *(uint32_t *)dst = (uint32_t)v;
        break;
    case sizeof(uint64_t):
        *(uint64_t *)dst = v;
        break;
    default:
        RB_ASSERT(!"confload: a number's field is 2, 4 or 8 bytes");
    }
}

/* Parses one entry into its field; true when a value was stored. */
static bool store(confload *l, const confload_key *k, const ini_entry *e, void *obj)
{
    void *dst = field(obj, k->offset);
    uint64_t v;
    int r;
    switch (k->type) {
    case CONFLOAD_STRING:
    case CONFLOAD_PATH:
        if (!store_string(l, k, e, dst)) {
            return false;
        }
        if (k->check) {
            k->check(l, e, *(char **)dst);
        }
        return true;
    case CONFLOAD_URL: {
        size_t n = strlen(k->prefix);
        if (strncmp(e->value, k->prefix, n) != 0 || !e->value[n]) {
            confload_problem(l, e->line, "%s: expected a URL starting with %s, not \"%s\"", e->key,
                             k->prefix, e->value);
            return false;
        }
        if (!store_string(l, k, e, dst)) {
            return false;
        }
        if (k->check) {
            k->check(l, e, *(char **)dst);
        }
        return true;
    }
    case CONFLOAD_USER:
        if (!store_string(l, k, e, dst)) {
            return false;
        }
        if (!user_name_valid(*(char **)dst)) {
            confload_problem(l, e->line, "%s: \"%s\" is not a user name", e->key, e->value);
        }
        return true;
    case CONFLOAD_BOOL:
        if (parse_bool(e->value, dst) < 0) {
            confload_problem(l, e->line, "%s: expected yes or no, not \"%s\"", e->key, e->value);
            return false;
        }
        return true;
    case CONFLOAD_UINT:
    case CONFLOAD_DURATION_MS:
        r = parse_u64(e->value, k->min, k->max, &v);
        if (r < 0) {
            bad_number(l, k, e, r == -ERANGE);
            return false;
        }
        store_unsigned(k, dst, k->type == CONFLOAD_DURATION_MS ? v * 1000 : v);
        return true;
    case CONFLOAD_SIZE:
        /* A size too large for 64 bits is malformed, not out of [min, max]. */
        if (parse_size(e->value, &v) < 0) {
            bad_number(l, k, e, false);
            return false;
        }
        if (v < k->min || v > k->max) {
            bad_number(l, k, e, true);
            return false;
        }
        store_unsigned(k, dst, v);
        return true;
    case CONFLOAD_IPV6:
        if (parse_ipv6(e->value, dst) < 0) {
            confload_problem(l, e->line, "%s: not an IPv6 address: \"%s\"", e->key, e->value);
            return false;
        }
        return true;
    case CONFLOAD_LISTEN:
        if (parse_listen_address(e->value, k->port, dst) < 0) {
            confload_problem(l, e->line, "%s: not an address to listen on: \"%s\"", e->key,
                             e->value);
            return false;
        }
        return true;
    case CONFLOAD_LOG_LEVEL:
        if (log_level_from_string(e->value, dst) < 0) {
            confload_problem(l, e->line, "%s: expected debug, info, warn or error, not \"%s\"",
                             e->key, e->value);
            return false;
        }
        return true;
    case CONFLOAD_LOG_FORMAT:
        if (log_format_from_string(e->value, dst) < 0) {
            confload_problem(l, e->line, "%s: expected text or json, not \"%s\"", e->key, e->value);
            return false;
        }
        return true;
    case CONFLOAD_WORDS:
        return store_words(l, k, e, obj);
    case CONFLOAD_IPV6_LIST:
        return store_addresses(l, k, e, obj);
    case CONFLOAD_CUSTOM:
        k->parse(l, e, obj);
        /* The callback stores what it may; "required" is its own to check. */
        return true;
    }
    RB_ASSERT(!"confload: unknown key type");
    return false;
}

static const confload_section *find_section(const confload_schema *schema, const char *name,
                                            size_t *ret_index)
{
    for (size_t i = 0; i < schema->n_sections; i++) {
        if (streq(schema->sections[i].name, name)) {
            *ret_index = i;
            return &schema->sections[i];
        }
    }
    return NULL;
}

static const confload_key *find_key(const confload_section *sec, const char *name,
                                    size_t *ret_index)
{
    for (size_t i = 0; i < sec->n_keys; i++) {
        if (streq(sec->keys[i].name, name)) {
            *ret_index = i;
            return &sec->keys[i];
        }
    }
    return NULL;
}

int confload_load(const char *path, const confload_schema *schema, void *obj, diag *d)
{
    ini_doc *doc = NULL;
    int r = ini_load_file(path, d, &doc);
    if (r < 0) {
        return r;
    }
    confload l = { .file = path, .d = d, .doc = doc };
    /* Per section of the schema: its first line, and where its keys'
     * "stored" bits start in `stored`. */
    size_t n_keys = 0;
    for (size_t i = 0; i < schema->n_sections; i++) {
        n_keys += schema->sections[i].n_keys;
    }
    unsigned *first_line = calloc(schema->n_sections + 1, sizeof(*first_line));
    size_t *key_base = calloc(schema->n_sections + 1, sizeof(*key_base));
    bool *stored = calloc(n_keys + 1, sizeof(*stored));
    if (!first_line || !key_base || !stored) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 1; i < schema->n_sections; i++) {
        key_base[i] = key_base[i - 1] + schema->sections[i - 1].n_keys;
    }

    for (size_t i = 0; i < doc->n_sections; i++) {
        const ini_section *s = &doc->sections[i];
        size_t si;
        const confload_section *sec = find_section(schema, s->name, &si);
        if (!sec) {
            confload_problem(&l, s->line, "unknown section [%s]", s->name);
            continue;
        }
        /* A repeated section is most likely a merge mistake: say so rather
         * than silently reading both. */
        if (first_line[si] == 0) {
            first_line[si] = s->line;
        } else if (sec->unique) {
            confload_problem(&l, s->line, "section [%s] repeated (first at line %u)", s->name,
                             first_line[si]);
        }
        for (size_t j = 0; j < s->n_entries; j++) {
            const ini_entry *e = &s->entries[j];
            size_t ki;
            const confload_key *k = find_key(sec, e->key, &ki);
            if (!k) {
                confload_problem(&l, e->line, "unknown key \"%s\" in [%s]", e->key, s->name);
                continue;
            }
            if (store(&l, k, e, obj)) {
                stored[key_base[si] + ki] = true;
                if (k->flag) {
                    *(bool *)field(obj, k->flag - 1) = true;
                }
            }
        }
        if (sec->end) {
            sec->end(&l, s, obj);
        }
    }
    for (size_t si = 0; si < schema->n_sections; si++) {
        const confload_section *sec = &schema->sections[si];
        for (size_t ki = 0; ki < sec->n_keys; ki++) {
            if (sec->keys[ki].required && !stored[key_base[si] + ki]) {
                confload_problem(&l, first_line[si], "[%s] %s is required", sec->name,
                                 sec->keys[ki].name);
            }
        }
    }
    if (schema->finish) {
        schema->finish(&l, obj);
    }
    r = l.errors > 0 ? -EINVAL : 0;
out:
    free(stored);
    free(key_base);
    free(first_line);
    ini_doc_free(doc);
    return r;
}
