/* The daemons' metrics, served at GET /metrics in the Prometheus text format
 * (version 0.0.4): the agent's on its HTTP server, the controller's on its
 * [metrics] listener.
 *
 * Modules keep counting in their own plain uint64_t fields and
 * metrics_histogram structs (no locks, no calls into the registry on the hot
 * path: each daemon updates and scrapes them on its one loop thread) and
 * register a pointer to each once; the registry reads them when scraped. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct metrics metrics;

typedef enum metric_type {
    METRIC_COUNTER,
    METRIC_GAUGE,
    METRIC_HISTOGRAM, /* metrics_register_histogram() only */
} metric_type;

/* A histogram with fixed bucket bounds (a latency in seconds, say), owned
 * and embedded by the module that observes it, like a counter field.
 * Prometheus derives quantiles from the cumulative buckets at query time,
 * so the bounds are chosen once per metric name and never change. */
#define METRICS_HISTOGRAM_MAX_BOUNDS 20u
typedef struct metrics_histogram {
    const double *bounds; /* upper bounds (le), finite, strictly increasing */
    size_t n_bounds;      /* at most METRICS_HISTOGRAM_MAX_BOUNDS */
    /* Observations per bucket, not cumulative: buckets[i] counts values in
     * (bounds[i-1], bounds[i]], buckets[n_bounds] those above the last
     * bound. The registry sums them when rendering. */
    uint64_t buckets[METRICS_HISTOGRAM_MAX_BOUNDS + 1];
    uint64_t count;
    double sum;
} metrics_histogram;

/* Empties `h` and gives it `bounds` (not copied: usually a static array,
 * which must outlive `h`). -EINVAL for no bounds, more than
 * METRICS_HISTOGRAM_MAX_BOUNDS, a bound that is not finite, or bounds
 * that do not strictly increase. */
int metrics_histogram_init(metrics_histogram *h, const double *bounds, size_t n_bounds);

/* Counts `value` in its bucket (the first whose bound is >= value, as
 * Prometheus's le means), in _count and in _sum. NaN is ignored. */
void metrics_histogram_observe(metrics_histogram *h, double value);

int metrics_new(metrics **ret);
metrics *metrics_free(metrics *m);

/* Registers `value` under `name` (e.g. "rackboot_dhcp6_received_total") with
 * optional `labels` in exposition syntax without braces (e.g.
 * "type=\"solicit\"", or NULL). Series sharing a name must share type and
 * help. Strings are copied; `value` must outlive the registry. -EINVAL for a
 * name or labels that are not valid Prometheus syntax, -ENOMEM. */
int metrics_register(metrics *m, metric_type type, const char *name, const char *help,
                     const char *labels, const uint64_t *value);

/* Registers the histogram `h` (initialized with metrics_histogram_init())
 * as the series name_bucket{labels,le="..."} (cumulative, ending with
 * le="+Inf"), name_sum{labels} and name_count{labels}. Rules as
 * metrics_register(); besides, series sharing a name must share their
 * bounds, and `labels` may not name "le" (the buckets' own label):
 * -EINVAL. `h` must outlive the registry. */
int metrics_register_histogram(metrics *m, const char *name, const char *help, const char *labels,
                               const metrics_histogram *h);

/* Renders every series, grouped by name with one # HELP and # TYPE each,
 * in the order names were first registered.
 * *ret is malloc'ed and NUL-terminated; the caller frees it. */
int metrics_render(const metrics *m, char **ret, size_t *ret_len);
