/* common/hex: encoding, strict decoding, nothing written on failure. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hex.h"

static void test_round_trip(void **state)
{
    static const uint8_t bytes[] = { 0x00, 0x04, 0xab, 0xCD, 0xff };
    char text[2 * sizeof(bytes) + 1];
    hex_encode(bytes, sizeof(bytes), text);
    assert_string_equal(text, "0004abcdff");
    uint8_t back[sizeof(bytes)];
    assert_int_equal(hex_decode("0004ABcdff", back, sizeof(back)), 0);
    assert_memory_equal(back, bytes, sizeof(bytes));
    hex_encode(bytes, 0, text);
    assert_string_equal(text, "");
}

static void test_strict_decoding(void **state)
{
    uint8_t out[2] = { 0x55, 0x55 };
    assert_int_equal(hex_decode("abc", out, 2), -EINVAL);   /* short */
    assert_int_equal(hex_decode("abcde", out, 2), -EINVAL); /* long */
    assert_int_equal(hex_decode("abcg", out, 2), -EINVAL);  /* not hex */
    assert_int_equal(hex_decode("ab c", out, 2), -EINVAL);  /* space */
    assert_int_equal(hex_decode("-1ab", out, 2), -EINVAL);
    assert_int_equal(out[0], 0x55);
    assert_int_equal(out[1], 0x55);
    assert_int_equal(hex_digit('F'), 15);
    assert_int_equal(hex_digit('g'), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_strict_decoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
