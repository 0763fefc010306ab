/* progress: when rackboot-deploy tells the agent how far it got. Pure: the
 * caller supplies the clock, so the rule is tested without waiting.
 *
 * The agent turns each report into an event in its journal and a line in the
 * operator's view; a 10 GiB image on a fast disk would otherwise send
 * thousands a second. So: at most one report per whole percent step, and at
 * most one a second. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define PROGRESS_MIN_INTERVAL_MS 1000

typedef struct progress_throttle {
    int last_percent; /* -1: nothing reported yet */
    uint64_t last_ms;
} progress_throttle;

void progress_throttle_init(progress_throttle *t);

/* 0..100 from bytes received of total, rounded down; -1 when total is 0
 * (unknown). Never above 100, even if received overshoots. */
int progress_percent(uint64_t received, uint64_t total);

/* Whether to report `percent` at now_ms; when true, it is recorded as
 * reported. A percent of -1 is never reported. */
bool progress_throttle_ok(progress_throttle *t, int percent, uint64_t now_ms);
