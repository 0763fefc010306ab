#include "output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "util.h"

int output_format_from_string(const char *s, output_format *ret)
{
    static const char *const names[] = {
        [OUTPUT_TABLE] = "table", [OUTPUT_WIDE] = "wide", [OUTPUT_JSON] = "json",
        [OUTPUT_YAML] = "yaml",   [OUTPUT_NAME] = "name",
    };
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (streq(s, names[i])) {
            *ret = (output_format)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- JSON ---------------------------------------------------------------- */

#define JSON_FLAGS (JSON_INDENT(2) | JSON_SORT_KEYS)

/* jansson's output of one element, at the depth of an array's element: two
 * more spaces after every line break (JSON strings hold none: jansson
 * escapes them), so the elements read as the whole array's would. */
static int json_write_nested(const char *buf, size_t size, void *data)
{
    FILE *f = data;
    while (size > 0) {
        const char *nl = memchr(buf, '\n', size);
        size_t n = nl ? (size_t)(nl - buf) + 1 : size;
        if (fwrite(buf, 1, n, f) != n || (nl && fputs("  ", f) == EOF)) {
            return -1;
        }
        buf += n;
        size -= n;
    }
    return 0;
}

int output_json_line(FILE *f, json_t *j)
{
    if (!j) {
        return -ENOMEM;
    }
    int r = json_dumpf(j, f, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    if (r < 0 || fputc('\n', f) == EOF || fflush(f) == EOF) {
        return -EIO;
    }
    return 0;
}

/* ---- YAML ---------------------------------------------------------------- */

/* Whether a string may be written plain: YAML 1.1 readers (PyYAML, and
 * libyaml-based ones) resolve plain scalars to bools, nulls, numbers,
 * base-60 numbers ("52:54:00:12:34:56") and timestamps. Only strings that
 * start with a letter or '/' and are none of the bool and null words are
 * left plain; libyaml quotes whatever else needs it (": ", "#", ...). */
static bool yaml_plain_safe(const char *s)
{
    static const char *const words[] = { "y",     "n",  "yes", "no",   "true",
                                         "false", "on", "off", "null", "~" };
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '/')) {
        return false;
    }
    for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
        if (strcasecmp(s, words[i]) == 0) {
            return false;
        }
    }
    return true;
}

static int yaml_put(yaml_emitter_t *y, yaml_event_t *ev, int ok)
{
    /* yaml_emitter_emit() takes the event, also on failure. */
    return ok && yaml_emitter_emit(y, ev) ? 0 : -EIO;
}

static int yaml_scalar(yaml_emitter_t *y, const char *s, bool plain)
{
    yaml_event_t ev;
    /* Text of several lines (a kickstart template) reads best as a literal
     * block; libyaml falls back to quotes where one is not allowed. */
    yaml_scalar_style_t style = strchr(s, '\n') ? YAML_LITERAL_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE;
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)s, (int)strlen(s),
                                          plain, 1, style);
    return yaml_put(y, &ev, ok);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int yaml_value(yaml_emitter_t *y, json_t *j);

static int yaml_object(yaml_emitter_t *y, json_t *j)
{
    size_t n = json_object_size(j), i = 0;
    _cleanup_free_ const char **keys = calloc(n ? n : 1, sizeof(*keys));
    if (!keys) {
        return -ENOMEM;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        keys[i++] = k;
    }
    qsort(keys, n, sizeof(*keys), key_cmp);
    yaml_event_t ev;
    TRY(yaml_put(
        y, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)));
    for (i = 0; i < n; i++) {
        TRY(yaml_scalar(y, keys[i], yaml_plain_safe(keys[i])));
        TRY(yaml_value(y, json_object_get(j, keys[i])));
    }
    return yaml_put(y, &ev, yaml_mapping_end_event_initialize(&ev));
}

static int yaml_value(yaml_emitter_t *y, json_t *j)
{
    char num[32];
    size_t i;
    json_t *e;
    yaml_event_t ev;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return yaml_object(y, j);
    case JSON_ARRAY:
        TRY(yaml_put(
            y, &ev,
            yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE)));
        json_array_foreach(j, i, e)
        {
            TRY(yaml_value(y, e));
        }
        return yaml_put(y, &ev, yaml_sequence_end_event_initialize(&ev));
    case JSON_STRING:
        return yaml_scalar(y, json_string_value(j), yaml_plain_safe(json_string_value(j)));
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return yaml_scalar(y, num, true);
    case JSON_REAL:
        /* No JSON shape of ours has one, and "%g" (1e+20, inf) is not a
         * YAML 1.1 float: refused rather than printed as a string. */
        return -EINVAL;
    case JSON_TRUE:
        return yaml_scalar(y, "true", true);
    case JSON_FALSE:
        return yaml_scalar(y, "false", true);
    case JSON_NULL:
        return yaml_scalar(y, "null", true);
    }
    return -EINVAL;
}

/* A new emitter on f, its stream and document started. */
static int yaml_open(FILE *f, yaml_emitter_t **ret)
{
    yaml_emitter_t *y = calloc(1, sizeof(*y));
    if (!y || !yaml_emitter_initialize(y)) {
        free(y);
        return -ENOMEM;
    }
    *ret = y;
    yaml_emitter_set_output_file(y, f);
    yaml_emitter_set_unicode(y, 1);
    yaml_emitter_set_width(y, -1); /* no folding of long lines */
    yaml_event_t ev;
    TRY(yaml_put(y, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)));
    return yaml_put(y, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
}

/* Ends the document and the stream (when `ok`), flushes and frees. */
static int yaml_close(yaml_emitter_t *y, bool ok)
{
    yaml_event_t ev;
    int r = 0;
    if (ok) {
        r = yaml_put(y, &ev, yaml_document_end_event_initialize(&ev, 1));
        if (r == 0) {
            r = yaml_put(y, &ev, yaml_stream_end_event_initialize(&ev));
        }
    }
    if (!yaml_emitter_flush(y) && r == 0) {
        r = -EIO;
    }
    yaml_emitter_delete(y);
    free(y);
    return r;
}

/* ---- names --------------------------------------------------------------- */

static int name_line(FILE *f, json_t *row, const char *key)
{
    json_t *v = json_object_get(row, key);
    int w;
    if (json_is_string(v)) {
        w = fprintf(f, "%s\n", json_string_value(v));
    } else if (json_is_integer(v)) {
        w = fprintf(f, "%" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
    } else {
        return -EINVAL; /* a row without its name: a bug of the caller */
    }
    return w < 0 ? -EIO : 0;
}

static int name_lines(FILE *f, json_t *j, const char *key)
{
    if (!json_is_array(j)) {
        return name_line(f, j, key);
    }
    size_t i;
    json_t *e;
    json_array_foreach(j, i, e)
    {
        TRY(name_line(f, e, key));
    }
    return 0;
}

/* ---- whole values -------------------------------------------------------- */

int output_print(FILE *f, output_format fmt, json_t *j, const char *name_key)
{
    if (!j) {
        return -ENOMEM;
    }
    int r = -EINVAL;
    yaml_emitter_t *y = NULL;
    switch (fmt) {
    case OUTPUT_JSON:
        r = json_dumpf(j, f, JSON_FLAGS) < 0 || fputc('\n', f) == EOF ? -EIO : 0;
        break;
    case OUTPUT_YAML:
        r = yaml_open(f, &y);
        if (r == 0) {
            r = yaml_value(y, j);
        }
        if (y) {
            int rc = yaml_close(y, r == 0);
            r = r ? r : rc;
        }
        break;
    case OUTPUT_NAME:
        r = name_lines(f, j, name_key);
        break;
    case OUTPUT_TABLE:
    case OUTPUT_WIDE:
        break;
    }
    json_decref(j);
    if (r == 0 && fflush(f) == EOF) {
        r = -EIO;
    }
    return r;
}

/* ---- listings, page by page --------------------------------------------- */

void output_seq_init(output_seq *s, FILE *f, output_format fmt, const char *name_key)
{
    *s = (output_seq){ .f = f, .fmt = fmt, .name_key = name_key };
}

static int seq_add_json(output_seq *s, json_t *rows)
{
    size_t i;
    json_t *e;
    json_array_foreach(rows, i, e)
    {
        if (fputs(s->rows == 0 ? "[\n  " : ",\n  ", s->f) == EOF ||
            json_dump_callback(e, json_write_nested, s->f, JSON_FLAGS) < 0) {
            return -EIO;
        }
        s->rows++;
    }
    return 0;
}

static int seq_add_yaml(output_seq *s, json_t *rows)
{
    if (!s->y) {
        yaml_event_t ev;
        TRY(yaml_open(s->f, &s->y));
        TRY(yaml_put(
            s->y, &ev,
            yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE)));
    }
    size_t i;
    json_t *e;
    json_array_foreach(rows, i, e)
    {
        TRY(yaml_value(s->y, e));
        s->rows++;
    }
    return yaml_emitter_flush(s->y) ? 0 : -EIO;
}

int output_seq_add(output_seq *s, json_t *rows)
{
    if (!rows && !s->error) {
        s->error = -ENOMEM;
    }
    if (!s->error) {
        switch (s->fmt) {
        case OUTPUT_JSON:
            s->error = seq_add_json(s, rows);
            break;
        case OUTPUT_YAML:
            s->error = seq_add_yaml(s, rows);
            break;
        case OUTPUT_NAME:
            s->error = name_lines(s->f, rows, s->name_key);
            s->rows += json_array_size(rows);
            break;
        case OUTPUT_TABLE:
        case OUTPUT_WIDE:
            s->error = -EINVAL;
            break;
        }
    }
    json_decref(rows);
    if ((fflush(s->f) == EOF || ferror(s->f)) && !s->error) {
        s->error = -EIO;
    }
    return s->error;
}

int output_seq_end(output_seq *s)
{
    if (s->fmt == OUTPUT_YAML && !s->error && !s->y) {
        s->error = seq_add_yaml(s, NULL); /* the empty sequence: "[]" */
    }
    if (s->y) {
        yaml_event_t ev;
        int r = s->error ? s->error : yaml_put(s->y, &ev, yaml_sequence_end_event_initialize(&ev));
        int rc = yaml_close(s->y, r == 0);
        s->y = NULL;
        s->error = r ? r : rc;
    }
    if (!s->error && s->fmt == OUTPUT_JSON &&
        (fputs(s->rows == 0 ? "[]\n" : "\n]\n", s->f) == EOF || fflush(s->f) == EOF)) {
        s->error = -EIO;
    }
    return s->error;
}
