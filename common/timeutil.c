#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "util.h"

static uint64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    int r = clock_gettime(clock, &ts);
    /* Only fails for an invalid clock id, which would be our bug. */
    RB_ASSERT(r == 0);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t now_monotonic_ms(void)
{
    return now_ns(CLOCK_MONOTONIC) / 1000000u;
}

uint64_t now_monotonic_us(void)
{
    return now_ns(CLOCK_MONOTONIC) / 1000u;
}

uint64_t now_realtime_ms(void)
{
    return now_ns(CLOCK_REALTIME) / 1000000u;
}

int format_rfc3339_ms(uint64_t unix_ms, char *buf, size_t size)
{
    if (size > 0) {
        buf[0] = '\0';
    }
    if (size < RFC3339_MS_LEN) {
        return -ENOSPC;
    }
    /* 253402300800 s is 10000-01-01T00:00:00Z. */
    if (unix_ms / 1000 >= 253402300800u) {
        return -ERANGE;
    }
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        return -ERANGE;
    }
    int n =
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(unix_ms % 1000));
    if (n != RFC3339_MS_LEN - 1) {
        buf[0] = '\0';
        return -ERANGE;
    }
    return 0;
}
