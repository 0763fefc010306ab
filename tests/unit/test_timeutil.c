/* common/timeutil: clocks move forward in the right units, and timestamps
 * match hand-checked RFC 3339 strings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "timeutil.h"

static void test_clocks(void **state)
{
    uint64_t ms0 = now_monotonic_ms();
    uint64_t us0 = now_monotonic_us();
    struct timespec nap = { .tv_nsec = 20 * 1000 * 1000 };
    nanosleep(&nap, NULL);
    uint64_t ms1 = now_monotonic_ms();
    uint64_t us1 = now_monotonic_us();

    assert_true(ms1 - ms0 >= 20);
    assert_true(us1 - us0 >= 20000);
    /* Same clock, different units: the two readings agree within a second. */
    assert_true(us1 / 1000 - ms1 < 1000);

    /* Wall clock: after 2020-01-01 and within a second of time(2). */
    uint64_t rt = now_realtime_ms();
    assert_true(rt > 1577836800000ULL);
    uint64_t t = (uint64_t)time(NULL);
    assert_true(rt / 1000 + 1 >= t && rt / 1000 <= t + 1);
}

static void test_format(void **state)
{
    char buf[RFC3339_MS_LEN];
    assert_int_equal(format_rfc3339_ms(0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    /* 2026-11-25T03:34:17Z is 1795577657 s since the epoch. */
    assert_int_equal(format_rfc3339_ms(1795577657123ULL, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "2026-11-25T03:34:17.123Z");
    /* Leap day, and milliseconds with leading zeros. */
    assert_int_equal(format_rfc3339_ms(951782400007ULL, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "2000-02-29T00:00:00.007Z");
    assert_int_equal(format_rfc3339_ms(253402300799999ULL, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "9999-12-31T23:59:59.999Z");

    assert_int_equal(format_rfc3339_ms(253402300800000ULL, buf, sizeof(buf)), -ERANGE);
    assert_int_equal(format_rfc3339_ms(UINT64_MAX, buf, sizeof(buf)), -ERANGE);

    char small[RFC3339_MS_LEN - 1];
    memset(small, 'x', sizeof(small));
    assert_int_equal(format_rfc3339_ms(0, small, sizeof(small)), -ENOSPC);
    assert_string_equal(small, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
