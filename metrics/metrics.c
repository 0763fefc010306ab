/* The metrics registry (see metrics.h): a flat array of series, rendered in
 * the Prometheus text exposition format 0.0.4, grouped by metric name in the
 * order names were first registered. */
#include "metrics/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
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
    const uint64_t *value;         /* counters and gauges */
    const metrics_histogram *hist; /* histograms */
    size_t group;                  /* index of the first series with this name */
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

/* Whether `labels` (valid) names the label `name`. */
static bool labels_name(const char *labels, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = labels; *p;) {
        if (strncmp(p, name, len) == 0 && p[len] == '=') {
            return true;
        }
        /* skip to the next pair: past the quoted value */
        p = strchr(p, '"') + 1;
        for (; *p != '"'; p++) {
            if (*p == '\\') {
                p++;
            }
        }
        p++;
        if (*p == ',') {
            p++;
        }
    }
    return false;
}

static bool same_bounds(const metrics_histogram *a, const metrics_histogram *b)
{
    if (a->n_bounds != b->n_bounds) {
        return false;
    }
    for (size_t i = 0; i < a->n_bounds; i++) {
        if (a->bounds[i] != b->bounds[i]) {
            return false;
        }
    }
    return true;
}

/* Adds one series after the checks every type shares. */
static int add_series(metrics *m, metric_type type, const char *name, const char *help,
                      const char *labels, const uint64_t *value, const metrics_histogram *hist)
{
    if (!valid_name(name) || !help) {
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
        if (hist && !same_bounds(s->hist, hist)) {
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
        .hist = hist,
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

int metrics_register(metrics *m, metric_type type, const char *name, const char *help,
                     const char *labels, const uint64_t *value)
{
    if (!value || (type != METRIC_COUNTER && type != METRIC_GAUGE)) {
        return -EINVAL;
    }
    return add_series(m, type, name, help, labels, value, NULL);
}

int metrics_register_histogram(metrics *m, const char *name, const char *help, const char *labels,
                               const metrics_histogram *h)
{
    if (!h || h->n_bounds == 0 || h->n_bounds > METRICS_HISTOGRAM_MAX_BOUNDS || !h->bounds) {
        return -EINVAL;
    }
    if (labels && valid_labels(labels) && labels_name(labels, "le")) {
        return -EINVAL;
    }
    return add_series(m, METRIC_HISTOGRAM, name, help, labels, NULL, h);
}

int metrics_histogram_init(metrics_histogram *h, const double *bounds, size_t n_bounds)
{
    if (!bounds || n_bounds == 0 || n_bounds > METRICS_HISTOGRAM_MAX_BOUNDS) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n_bounds; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
            return -EINVAL;
        }
    }
    *h = (metrics_histogram){ .bounds = bounds, .n_bounds = n_bounds };
    return 0;
}

void metrics_histogram_observe(metrics_histogram *h, double value)
{
    if (isnan(value)) {
        return;
    }
    /* A linear search: a histogram has a handful of bounds, and an
     * observation is rare next to a packet. */
    size_t i = 0;
    while (i < h->n_bounds && value > h->bounds[i]) {
        i++;
    }
    h->buckets[i]++;
    h->count++;
    h->sum += value;
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

/* A float the way Prometheus's own clients write it (Go's
 * strconv.FormatFloat(v, 'g', -1, 64)): the shortest text that reads back
 * as the same double, so a bound is "0.005", not "0.0050000000000000001". */
static const char *format_double(char buf[static 32], double v)
{
    if (isinf(v)) {
        return v > 0 ? "+Inf" : "-Inf";
    }
    if (isnan(v)) {
        return "NaN";
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, 32, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }
    return buf;
}

/* name_suffix{labels[,extra]} */
static void put_series_name(FILE *f, const metric_series *s, const char *suffix, const char *extra)
{
    fprintf(f, "%s%s", s->name, suffix);
    if (s->labels || extra) {
        fprintf(f, "{%s%s%s}", s->labels ? s->labels : "", s->labels && extra ? "," : "",
                extra ? extra : "");
    }
    fputc(' ', f);
}

static void put_histogram(FILE *f, const metric_series *s)
{
    const metrics_histogram *h = s->hist;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h->n_bounds; i++) {
        cumulative += h->buckets[i];
        char bound[32], le[40];
        snprintf(le, sizeof(le), "le=\"%s\"", format_double(bound, h->bounds[i]));
        put_series_name(f, s, "_bucket", le);
        fprintf(f, "%" PRIu64 "\n", cumulative);
    }
    put_series_name(f, s, "_bucket", "le=\"+Inf\"");
    fprintf(f, "%" PRIu64 "\n", h->count);
    char sum[32];
    put_series_name(f, s, "_sum", NULL);
    fprintf(f, "%s\n", format_double(sum, h->sum));
    put_series_name(f, s, "_count", NULL);
    fprintf(f, "%" PRIu64 "\n", h->count);
}

static const char *type_name(metric_type t)
{
    switch (t) {
    case METRIC_COUNTER:
        return "counter";
    case METRIC_GAUGE:
        return "gauge";
    case METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
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
        fprintf(f, "\n# TYPE %s %s\n", first->name, type_name(first->type));
        for (size_t i = g; i < m->n; i++) {
            const metric_series *s = &m->series[i];
            if (s->group != g) {
                continue;
            }
            if (s->type == METRIC_HISTOGRAM) {
                put_histogram(f, s);
            } else if (s->labels) {
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
