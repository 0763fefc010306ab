/* common/diag: entry formatting, order, and the cap that keeps a file full
 * of errors from using unbounded memory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diag.h"

static void test_formats(void **state)
{
    diag *d = diag_new();
    assert_non_null(d);
    assert_int_equal(diag_count(d), 0);
    assert_null(diag_get(d, 0));

    diag_add(d, "/etc/rackboot/agent.conf", 12, "unknown key '%s'", "lisen");
    diag_add(d, "/etc/rackboot/hosts.conf", 0, "cannot read: %s", "No such file or directory");
    diag_add(d, NULL, 7, "no file, line %u is not shown", 7u);

    assert_int_equal(diag_count(d), 3);
    assert_string_equal(diag_get(d, 0), "/etc/rackboot/agent.conf:12: unknown key 'lisen'");
    assert_string_equal(diag_get(d, 1),
                        "/etc/rackboot/hosts.conf: cannot read: No such file or directory");
    assert_string_equal(diag_get(d, 2), "no file, line 7 is not shown");
    assert_null(diag_get(d, 3));
    assert_null(diag_free(d));
}

static void test_null_is_harmless(void **state)
{
    /* Parsers take a NULL diag when only the return value matters. */
    diag_add(NULL, "f", 1, "ignored");
    assert_int_equal(diag_count(NULL), 0);
    assert_null(diag_get(NULL, 0));
    assert_null(diag_free(NULL));
}

static void test_cap(void **state)
{
    diag *d = diag_new();
    assert_non_null(d);
    for (unsigned i = 1; i <= DIAG_MAX + 5; i++) {
        diag_add(d, "big.conf", i, "error %u", i);
    }
    /* DIAG_MAX real entries, then one summary of the 5 that were dropped. */
    assert_int_equal(diag_count(d), DIAG_MAX + 1);
    assert_string_equal(diag_get(d, 0), "big.conf:1: error 1");
    char want[64];
    snprintf(want, sizeof(want), "big.conf:%u: error %u", DIAG_MAX, DIAG_MAX);
    assert_string_equal(diag_get(d, DIAG_MAX - 1), want);
    assert_string_equal(diag_get(d, DIAG_MAX), "too many errors, 5 more not shown");
    assert_null(diag_get(d, DIAG_MAX + 1));
    diag_free(d);
}

static void test_print(void **state)
{
    diag *d = diag_new();
    assert_non_null(d);
    diag_add(d, "a.conf", 1, "first");
    diag_add(d, "a.conf", 3, "second");

    char *out = NULL;
    size_t out_len = 0;
    FILE *f = open_memstream(&out, &out_len);
    assert_non_null(f);
    diag_print(d, f);
    fclose(f);
    assert_string_equal(out, "a.conf:1: first\na.conf:3: second\n");
    free(out);
    diag_free(d);
}

static void test_long_message(void **state)
{
    /* No fixed message buffer: a long value quoted in an error survives. */
    size_t n = 10000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';

    diag *d = diag_new();
    assert_non_null(d);
    diag_add(d, "f", 2, "%s", big);
    assert_int_equal(strlen(diag_get(d, 0)), strlen("f:2: ") + n);
    diag_free(d);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),      cmocka_unit_test(test_null_is_harmless),
        cmocka_unit_test(test_cap),          cmocka_unit_test(test_print),
        cmocka_unit_test(test_long_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
