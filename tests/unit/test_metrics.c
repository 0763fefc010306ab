/* rack-agent/metrics: the Prometheus text format 0.0.4 as scraped, and the
 * registration rules (syntax, one type and help per name). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/metrics.h"

static char *render(const metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(m, &text, &len), 0);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void test_render_grouped(void **state)
{
    metrics *m = NULL;
    assert_int_equal(metrics_new(&m), 0);
    uint64_t rx = 5, solicit = 3, request = 2, active = 7;
    assert_int_equal(
        metrics_register(m, METRIC_COUNTER, "rb_rx_total", "Packets received.", NULL, &rx), 0);
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "rb_by_type_total", "By type.",
                                      "type=\"solicit\"", &solicit),
                     0);
    assert_int_equal(metrics_register(m, METRIC_GAUGE, "rb_active", "Open now.", NULL, &active), 0);
    /* a later series of an earlier name is rendered with its group */
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "rb_by_type_total", "By type.",
                                      "type=\"request\",relayed=\"no\"", &request),
                     0);
    char *text = render(m);
    assert_string_equal(text, "# HELP rb_rx_total Packets received.\n"
                              "# TYPE rb_rx_total counter\n"
                              "rb_rx_total 5\n"
                              "# HELP rb_by_type_total By type.\n"
                              "# TYPE rb_by_type_total counter\n"
                              "rb_by_type_total{type=\"solicit\"} 3\n"
                              "rb_by_type_total{type=\"request\",relayed=\"no\"} 2\n"
                              "# HELP rb_active Open now.\n"
                              "# TYPE rb_active gauge\n"
                              "rb_active 7\n");
    free(text);
    metrics_free(m);
}

static void test_values_read_live(void **state)
{
    metrics *m = NULL;
    assert_int_equal(metrics_new(&m), 0);
    uint64_t n = 0;
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "x_total", "X.", NULL, &n), 0);
    char *text = render(m);
    assert_non_null(strstr(text, "\nx_total 0\n"));
    free(text);
    n = UINT64_MAX;
    text = render(m);
    assert_non_null(strstr(text, "\nx_total 18446744073709551615\n"));
    free(text);
    metrics_free(m);
}

static void test_help_escaped(void **state)
{
    metrics *m = NULL;
    assert_int_equal(metrics_new(&m), 0);
    uint64_t n = 1;
    assert_int_equal(metrics_register(m, METRIC_GAUGE, "h", "a\\b\nc", NULL, &n), 0);
    char *text = render(m);
    assert_string_equal(text, "# HELP h a\\\\b\\nc\n# TYPE h gauge\nh 1\n");
    free(text);
    metrics_free(m);
}

static void test_empty_registry(void **state)
{
    metrics *m = NULL;
    assert_int_equal(metrics_new(&m), 0);
    char *text = render(m);
    assert_string_equal(text, "");
    free(text);
    assert_null(metrics_free(m));
    assert_null(metrics_free(NULL));
}

static void test_names_and_labels_checked(void **state)
{
    metrics *m = NULL;
    assert_int_equal(metrics_new(&m), 0);
    uint64_t v = 0;
    static const char *const bad_names[] = { "", "1abc", "a-b", "a b", "a.b", "é" };
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        assert_int_equal(metrics_register(m, METRIC_COUNTER, bad_names[i], "h", NULL, &v), -EINVAL);
    }
    assert_int_equal(metrics_register(m, METRIC_COUNTER, NULL, "h", NULL, &v), -EINVAL);
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "ok", NULL, NULL, &v), -EINVAL);
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "ok", "h", NULL, NULL), -EINVAL);
    static const char *const bad_labels[] = {
        "",                 /* use NULL for none */
        "a",                /* no value */
        "a=b",              /* unquoted */
        "a=\"b",            /* unterminated */
        "a=\"b\",",         /* trailing comma */
        "a=\"b\" ,c=\"d\"", /* space */
        "{a=\"b\"}",        /* braces are ours */
        "1a=\"b\"",         /* bad label name */
        "a-b=\"c\"",
        "__name__=\"x\"", /* reserved */
        "a=\"b\nc\"",     /* raw newline */
        "a=\"b\\x\"",     /* unknown escape */
    };
    for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
        assert_int_equal(metrics_register(m, METRIC_COUNTER, "ok", "h", bad_labels[i], &v),
                         -EINVAL);
    }
    assert_int_equal(
        metrics_register(m, METRIC_COUNTER, "ok:sub_1", "h", "a=\"q\\\"\\\\\\n\",_b2=\"\"", &v), 0);
    char *text = render(m);
    assert_non_null(strstr(text, "\nok:sub_1{a=\"q\\\"\\\\\\n\",_b2=\"\"} 0\n"));
    free(text);
    metrics_free(m);
}

static void test_one_type_and_help_per_name(void **state)
{
    metrics *m = NULL;
    assert_int_equal(metrics_new(&m), 0);
    uint64_t a = 1, b = 2;
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "n", "Help.", "k=\"1\"", &a), 0);
    assert_int_equal(metrics_register(m, METRIC_GAUGE, "n", "Help.", "k=\"2\"", &b), -EINVAL);
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "n", "Other.", "k=\"2\"", &b), -EINVAL);
    /* the same series twice */
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "n", "Help.", "k=\"1\"", &b), -EEXIST);
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "n", "Help.", NULL, &b), 0);
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "n", "Help.", NULL, &b), -EEXIST);
    char *text = render(m);
    assert_string_equal(text, "# HELP n Help.\n# TYPE n counter\nn{k=\"1\"} 1\nn 2\n");
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_grouped),
        cmocka_unit_test(test_values_read_live),
        cmocka_unit_test(test_help_escaped),
        cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_names_and_labels_checked),
        cmocka_unit_test(test_one_type_and_help_per_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
