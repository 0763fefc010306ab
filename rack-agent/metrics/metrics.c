/* The metrics registry (see metrics.h): a flat array of series, rendered in
 * the Prometheus text exposition format 0.0.4, grouped by metric name in the
 * order names were first registered. */
#include "metrics/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct metric_series {
    char *name;
    char *help;
    char *labels; /* NULL: no labels */
    metric_type type;
    const uint64_t *value;
    size_t group; /* index of the first series with this name */
} metric_series;

struct metrics {
    metric_series *series;
    size_t n, cap;
};

int metrics_new(metrics **ret)
{
    metrics *m = calloc(1, sizeof(*m));
    if (!m) {
        return -ENOMEM;
    }
    *ret = m;
    return 0;
}

metrics *metrics_free(metrics *m)
{
    if (!m) {
        return NULL;
    }
    for (size_t i = 0; i < m->n; i++) {
        free(m->series[i].name);
        free(m->series[i].help);
        free(m->series[i].labels);
    }
    free(m->series);
    free(m);
    return NULL;
}

static bool is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]* */
static bool valid_name(const char *s)
{
    if (!s || !(is_alpha_(*s) || *s == ':')) {
        return false;
    }
    for (s++; *s; s++) {
        if (!is_alpha_(*s) && !is_digit(*s) && *s != ':') {
            return false;
        }
    }
    return true;
}

/* `name="value"` pairs separated by commas; label names are
 * [a-zA-Z_][a-zA-Z0-9_]* and not reserved (leading "__"); values escape
 * only \\, \" and \n, and hold no raw newline. No spaces: what we register is
 * what we render. */
static bool valid_labels(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (;;) {
        const char *name = s;
        if (!is_alpha_(*s)) {
            return false;
        }
        while (is_alpha_(*s) || is_digit(*s)) {
            s++;
        }
        if (s - name >= 2 && name[0] == '_' && name[1] == '_') {
            return false;
        }
        if (s[0] != '=' || s[1] != '"') {
            return false;
        }
        s += 2;
        for (; *s != '"'; s++) {
            if (*s == '\0' || *s == '\n') {
                return false;
            }
            if (*s == '\\') {
                s++;
                if (*s != '\\' && *s != '"' && *s != 'n') {
                    return false;
                }
            }
        }
        s++;
        if (*s == '\0') {
            return true;
        }
        if (*s != ',') {
            return false;
        }
        s++;
    }
}

static bool same_labels(const char *a, const char *b)
{
    if (!a || !b) {
        return a == b;
    }
    return streq(a, b);
}

int metrics_register(metrics *m, metric_type type, const char *name, const char *help,
                     const char *labels, const uint64_t *value)
{
    if (!valid_name(name) || !help || !value || (type != METRIC_COUNTER && type != METRIC_GAUGE)) {
        return -EINVAL;
    }
    if (labels && !valid_labels(labels)) {
        return -EINVAL;
    }
    size_t group = m->n;
    for (size_t i = 0; i < m->n; i++) {
        const metric_series *s = &m->series[i];
        if (!streq(s->name, name)) {
            continue;
        }
        if (s->type != type || !streq(s->help, help)) {
            return -EINVAL;
        }
        if (same_labels(s->labels, labels)) {
            return -EEXIST;
        }
        group = s->group;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 32;
        metric_series *bigger = realloc(m->series, cap * sizeof(*bigger));
        if (!bigger) {
            return -ENOMEM;
        }
        m->series = bigger;
        m->cap = cap;
    }
    metric_series s = {
        .name = strdup(name),
        .help = strdup(help),
        .labels = labels ? strdup(labels) : NULL,
        .type = type,
        .value = value,
        .group = group,
    };
    if (!s.name || !s.help || (labels && !s.labels)) {
        free(s.name);
        free(s.help);
        free(s.labels);
        return -ENOMEM;
    }
    m->series[m->n++] = s;
    return 0;
}

/* HELP text escapes backslash and newline (exposition format 0.0.4). */
static void put_help(FILE *f, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\') {
            fputs("\\\\", f);
        } else if (*p == '\n') {
            fputs("\\n", f);
        } else {
            fputc(*p, f);
        }
    }
}

int metrics_render(const metrics *m, char **ret, size_t *ret_len)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        return -ENOMEM;
    }
    for (size_t g = 0; g < m->n; g++) {
        const metric_series *first = &m->series[g];
        if (first->group != g) {
            continue;
        }
        fprintf(f, "# HELP %s ", first->name);
        put_help(f, first->help);
        fprintf(f, "\n# TYPE %s %s\n", first->name,
                first->type == METRIC_COUNTER ? "counter" : "gauge");
        for (size_t i = g; i < m->n; i++) {
            const metric_series *s = &m->series[i];
            if (s->group != g) {
                continue;
            }
            if (s->labels) {
                fprintf(f, "%s{%s} %" PRIu64 "\n", s->name, s->labels, *s->value);
            } else {
                fprintf(f, "%s %" PRIu64 "\n", s->name, *s->value);
            }
        }
    }
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return -ENOMEM;
    }
    if (fclose(f) != 0) {
        free(buf);
        return -ENOMEM;
    }
    *ret = buf;
    *ret_len = len;
    return 0;
}
