/* common/log: level parsing, field quoting and the network rate limit. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

static void test_levels(void **state)
{
    log_level l;
    assert_int_equal(log_level_from_string("debug", &l), 0);
    assert_int_equal(l, LOG_LEVEL_DEBUG);
    assert_int_equal(log_level_from_string("WARNING", &l), 0);
    assert_int_equal(l, LOG_LEVEL_WARN);
    assert_int_equal(log_level_from_string("verbose", &l), -EINVAL);
    assert_string_equal(log_level_to_string(LOG_LEVEL_ERROR), "error");

    log_set_level(LOG_LEVEL_WARN);
    assert_false(log_enabled(LOG_LEVEL_INFO));
    assert_true(log_enabled(LOG_LEVEL_ERROR));
    log_set_level(LOG_LEVEL_INFO);
}

static void test_quote(void **state)
{
    char buf[64];
    assert_string_equal(log_quote(buf, sizeof(buf), "plain"), "plain");
    assert_string_equal(log_quote(buf, sizeof(buf), ""), "\"\"");
    assert_string_equal(log_quote(buf, sizeof(buf), "two words"), "\"two words\"");
    assert_string_equal(log_quote(buf, sizeof(buf), "a=b"), "\"a=b\"");
    assert_string_equal(log_quote(buf, sizeof(buf), "say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    assert_string_equal(log_quote(buf, sizeof(buf), "\x01"), "\"\\x01\"");

    /* Truncation keeps the closing quote and the NUL inside the buffer. */
    char small[8];
    log_quote(small, sizeof(small), "a long value with spaces");
    assert_int_equal(strlen(small), 7);
    assert_int_equal(small[0], '"');
    assert_int_equal(small[6], '"');
}

static void test_ratelimit(void **state)
{
    log_ratelimit rl = LOG_RATELIMIT_INIT(1000, 3);
    uint64_t suppressed = 99;
    assert_true(log_ratelimit_ok(&rl, 5000, &suppressed));
    assert_int_equal(suppressed, 0);
    assert_true(log_ratelimit_ok(&rl, 5001, NULL));
    assert_true(log_ratelimit_ok(&rl, 5002, NULL));
    assert_false(log_ratelimit_ok(&rl, 5003, NULL));
    assert_false(log_ratelimit_ok(&rl, 5999, NULL));
    /* A new window reports the two lines that were dropped. */
    assert_true(log_ratelimit_ok(&rl, 6000, &suppressed));
    assert_int_equal(suppressed, 2);
    assert_true(log_ratelimit_ok(&rl, 6001, &suppressed));
    assert_int_equal(suppressed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_ratelimit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
