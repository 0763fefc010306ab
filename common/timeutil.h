/* Clocks and timestamps.
 *
 * Monotonic time measures intervals (timeouts, rate limits, lease ages): it
 * never jumps when NTP or an operator sets the wall clock. Realtime is for
 * what people read: log lines, journal records, "last seen". */
#pragma once

#include <stddef.h>
#include <stdint.h>

uint64_t now_monotonic_ms(void);
uint64_t now_monotonic_us(void);
/* Milliseconds since the Unix epoch. */
uint64_t now_realtime_ms(void);

/* "2026-11-25T03:34:17.123Z" plus NUL. */
#define RFC3339_MS_LEN 25

/* RFC 3339 §5.6 timestamp in UTC with milliseconds. -ENOSPC when size is
 * below RFC3339_MS_LEN (buf then holds ""), -ERANGE past year 9999, which
 * RFC 3339 cannot write. */
int format_rfc3339_ms(uint64_t unix_ms, char *buf, size_t size);
