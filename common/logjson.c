#include "logjson.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Fields of one line made members; the earlier ones of a longer line stay
 * in "msg" (our lines carry a dozen at most). */
#define LOGJSON_MAX_FIELDS 64

/* Members no field may replace. */
static const char *const fixed[] = { "ts", "level", "ident", "msg" };

/* A JSON string of n bytes. jansson refuses bytes that are not UTF-8 (a
 * hostname from the network may hold anything), so those bytes become '?'
 * rather than losing the whole line. */
static json_t *string_n(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j) {
        return j;
    }
    char *copy = malloc(n + 1);
    if (!copy) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    }
    j = json_stringn(copy, n);
    free(copy);
    return j;
}

static int set_field(json_t *o, const log_field *f)
{
    char key[80];
    const char *prefix = "";
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (strlen(fixed[i]) == f->key_len && memcmp(fixed[i], f->key, f->key_len) == 0) {
            prefix = "_";
        }
    }
    int n = snprintf(key, sizeof(key), "%s%.*s", prefix, (int)f->key_len, f->key);
    if (n < 0 || (size_t)n >= sizeof(key)) {
        return -1; /* a "key" this long is free text in all but name */
    }
    char *value = malloc(f->value_len + 1);
    if (!value) {
        return -1;
    }
    size_t len = log_field_unquote(f, value, f->value_len + 1);
    int r = json_object_set_new(o, key, string_n(value, len));
    free(value);
    return r;
}

char *logjson_format(const log_record *rec)
{
    /* More fields than our lines ever carry stay in the free text
     * (log_fields_split() keeps the last `max`), so the array is small and
     * on the stack rather than sized by the line. */
    log_field fields[LOGJSON_MAX_FIELDS];
    size_t max = ARRAY_SIZE(fields), n = 0, text = 0;
    json_t *o = json_object();
    char *out = NULL;
    if (!o) {
        goto out;
    }
    text = log_fields_split(rec->body, fields, max, &n);
    if ((rec->ts && json_object_set_new(o, "ts", json_string(rec->ts)) < 0) ||
        json_object_set_new(o, "level", json_string(log_level_to_string(rec->level))) < 0 ||
        json_object_set_new(o, "ident", string_n(rec->ident, strlen(rec->ident))) < 0 ||
        json_object_set_new(o, "msg", string_n(rec->body, text)) < 0) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        /* A field that cannot be a member is dropped, not the line. */
        (void)set_field(o, &fields[i]);
    }
    out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
    json_decref(o);
    return out;
}

void logjson_apply(log_format format)
{
    log_set_formatter(format == LOG_FORMAT_JSON ? logjson_format : NULL);
}
