/* Fuzzes the split of a log line into text and key=value fields and its
 * JSON form: any text must split into a prefix of itself and fields that lie
 * inside it after that prefix, unquote within their length, and give a
 * JSON object that jansson reads back. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "logjson.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size + 1);
    if (!body) {
        return 0;
    }
    memcpy(body, data, size);
    body[size] = '\0';
    size_t len = strlen(body), n = 0;
    log_field fields[16];
    size_t text = log_fields_split(body, fields, 16, &n);
    RB_ASSERT(text <= len && n <= 16);
    for (size_t i = 0; i < n; i++) {
        const log_field *f = &fields[i];
        RB_ASSERT(f->key >= body + text && f->key_len > 0);
        RB_ASSERT(f->value >= f->key + f->key_len && f->value + f->value_len <= body + len);
        char v[64];
        RB_ASSERT(log_field_unquote(f, v, sizeof(v)) <= f->value_len);
    }

    log_record rec = { .level = LOG_LEVEL_WARN, .ts = NULL, .ident = "fuzz", .body = body };
    char *line = logjson_format(&rec);
    if (line) {
        json_error_t err;
        json_t *o = json_loads(line, JSON_ALLOW_NUL, &err);
        RB_ASSERT(json_is_object(o) && strchr(line, '\n') == NULL);
        json_decref(o);
        free(line);
    }
    free(body);
    return 0;
}
