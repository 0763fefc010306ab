/* progress: see progress.h. */
#include "writer/progress.h"

void progress_throttle_init(progress_throttle *t)
{
    *t = (progress_throttle){ .last_percent = -1 };
}

int progress_percent(uint64_t received, uint64_t total)
{
    if (total == 0) {
        return -1;
    }
    if (received >= total) {
        return 100;
    }
    /* received < total <= 2^64-1: divide first so nothing overflows. */
    if (received > UINT64_MAX / 100) {
        /* total / 100 rounds down, so cap below the 100 of a full image. */
        uint64_t p = received / (total / 100);
        return p > 99 ? 99 : (int)p;
    }
    return (int)(received * 100 / total);
}

bool progress_throttle_ok(progress_throttle *t, int percent, uint64_t now_ms)
{
    if (percent < 0 || percent <= t->last_percent) {
        return false;
    }
    if (t->last_percent >= 0 && now_ms - t->last_ms < PROGRESS_MIN_INTERVAL_MS) {
        return false;
    }
    t->last_percent = percent;
    t->last_ms = now_ms;
    return true;
}
