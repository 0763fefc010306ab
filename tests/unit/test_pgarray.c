/* test_pgarray: PostgreSQL array literals (controller/store/pgarray.h), in
 * the input syntax of the manual's 8.15.6; integration.store_postgresql
 * sends them to a real server (the event batch insert). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store/pgarray.h"

static void test_empty(void **state)
{
    (void)state;
    pgarray a = { 0 };
    assert_string_equal(pgarray_text(&a), "{}");
    pgarray_add_i64(&a, 7);
    assert_string_equal(pgarray_text(&a), "{7}");
    pgarray_done(&a);
}

static void test_integers(void **state)
{
    (void)state;
    pgarray a = { 0 };
    pgarray_add_i64(&a, 1);
    pgarray_add_i64(&a, -2);
    pgarray_add_i64(&a, INT64_MAX);
    pgarray_add_i64(&a, INT64_MIN);
    assert_string_equal(pgarray_text(&a), "{1,-2,9223372036854775807,-9223372036854775808}");
    /* Read again, and added to after a read: the brace moves. */
    assert_string_equal(pgarray_text(&a), "{1,-2,9223372036854775807,-9223372036854775808}");
    pgarray_add_i64(&a, 0);
    assert_string_equal(pgarray_text(&a), "{1,-2,9223372036854775807,-9223372036854775808,0}");
    assert_int_equal(a.n, 5);
    pgarray_done(&a);
}

/* Every text quoted: values the array parser would otherwise read as
 * NULL, as several elements, or with their spaces trimmed. */
static void test_text_quoting(void **state)
{
    (void)state;
    pgarray a = { 0 };
    pgarray_add_text(&a, "plain");
    pgarray_add_text(&a, "");
    pgarray_add_text(&a, "NULL");
    pgarray_add_text(&a, NULL);
    pgarray_add_text(&a, "a,b {c}");
    pgarray_add_text(&a, " padded ");
    pgarray_add_text(&a, "say \"hi\"");
    pgarray_add_text(&a, "C:\\path\\");
    pgarray_add_text(&a, "h\xc3\xa9t\xc3\xa9rog\xc3\xa8ne\n");
    assert_string_equal(pgarray_text(&a), "{\"plain\",\"\",\"NULL\",NULL,\"a,b {c}\","
                                          "\" padded \",\"say \\\"hi\\\"\",\"C:\\\\path\\\\\","
                                          "\"h\xc3\xa9t\xc3\xa9rog\xc3\xa8ne\n\"}");
    assert_int_equal(pgarray_error(&a), 0);
    pgarray_done(&a);
}

/* Grows past its first buffer; reset keeps the memory and starts over. */
static void test_growth_and_reset(void **state)
{
    (void)state;
    pgarray a = { 0 };
    char big[3000];
    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 100; i++) {
        pgarray_add_text(&a, big);
    }
    const char *t = pgarray_text(&a);
    assert_non_null(t);
    /* 100 x (quote, 2 x 2999 escaped, quote), 99 commas, two braces */
    assert_int_equal(strlen(t), 100 * (2 + 2 * 2999) + 99 + 2);
    char *cap_before = a.buf;
    pgarray_reset(&a);
    assert_string_equal(pgarray_text(&a), "{}");
    pgarray_add_text(&a, "x");
    assert_string_equal(pgarray_text(&a), "{\"x\"}");
    assert_ptr_equal(a.buf, cap_before);
    pgarray_done(&a);
    assert_null(a.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_text_quoting),
        cmocka_unit_test(test_growth_and_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
