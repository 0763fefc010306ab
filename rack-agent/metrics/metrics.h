/* The agent's metrics, served at GET /metrics in the Prometheus text format
 * (version 0.0.4).
 *
 * Modules keep counting in their own plain uint64_t fields (no locks, no
 * calls on the hot path: everything runs on the agent's loop) and register a
 * pointer to each field once; the registry reads them when scraped. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct metrics metrics;

typedef enum metric_type {
    METRIC_COUNTER,
    METRIC_GAUGE,
} metric_type;

int metrics_new(metrics **ret);
metrics *metrics_free(metrics *m);

/* Registers `value` under `name` (e.g. "rackboot_dhcp6_received_total") with
 * optional `labels` in exposition syntax without braces (e.g.
 * "type=\"solicit\"", or NULL). Series sharing a name must share type and
 * help. Strings are copied; `value` must outlive the registry. -EINVAL for a
 * name or labels that are not valid Prometheus syntax, -ENOMEM. */
int metrics_register(metrics *m, metric_type type, const char *name, const char *help,
                     const char *labels, const uint64_t *value);

/* Renders every series, grouped by name with one # HELP and # TYPE each.
 * *ret is malloc'ed and NUL-terminated; the caller frees it. */
int metrics_render(const metrics *m, char **ret, size_t *ret_len);
