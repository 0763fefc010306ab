/* deploy-ramdisk/writer/progress: reports at most once per percent step and
 * at most once a second, never for an unknown total, never above 100. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "writer/progress.h"

static void test_percent(void **state)
{
    assert_int_equal(progress_percent(0, 0), -1);
    assert_int_equal(progress_percent(5, 0), -1);
    assert_int_equal(progress_percent(0, 1000), 0);
    assert_int_equal(progress_percent(9, 1000), 0);
    assert_int_equal(progress_percent(10, 1000), 1);
    assert_int_equal(progress_percent(999, 1000), 99);
    assert_int_equal(progress_percent(1000, 1000), 100);
    assert_int_equal(progress_percent(2000, 1000), 100);
    /* Sizes where received * 100 would overflow 64 bits. */
    uint64_t big = UINT64_MAX - 5;
    assert_int_equal(progress_percent(big / 2, big), 50);
    assert_int_equal(progress_percent(big - 1, big), 99);
    assert_int_equal(progress_percent(big, big), 100);
}

static void test_throttle(void **state)
{
    progress_throttle t;
    progress_throttle_init(&t);
    assert_false(progress_throttle_ok(&t, -1, 0));
    assert_true(progress_throttle_ok(&t, 0, 1000));  /* the first report goes at once */
    assert_false(progress_throttle_ok(&t, 0, 5000)); /* same step */
    assert_false(progress_throttle_ok(&t, 1, 1500)); /* next step, too soon */
    assert_true(progress_throttle_ok(&t, 3, 2000));  /* a second later: skips to 3 */
    assert_false(progress_throttle_ok(&t, 2, 9000)); /* never backwards */
    assert_false(progress_throttle_ok(&t, 100, 2999));
    assert_true(progress_throttle_ok(&t, 100, 3000));
    assert_false(progress_throttle_ok(&t, 100, 9000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_throttle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
