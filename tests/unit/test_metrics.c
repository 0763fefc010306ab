/* metrics/metrics: the Prometheus text format 0.0.4 as scraped, and the
 * registration rules (syntax, one type and help per name, one set of bucket
 * bounds per histogram). */
#include <errno.h>
#include <math.h>
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

/* Cumulative buckets, +Inf, _sum and _count; a value equal to a bound is in
 * that bound's bucket (le: less than or equal). Values are exact binary
 * fractions so the sum is too. */
static void test_histogram_rendered(void **state)
{
    static const double bounds[] = { 0.25, 0.5, 1, 2.5 };
    metrics *m = NULL;
    assert_int_equal(metrics_new(&m), 0);
    metrics_histogram h;
    assert_int_equal(metrics_histogram_init(&h, bounds, 4), 0);
    assert_int_equal(metrics_register_histogram(m, "rb_wait_seconds", "Wait.", NULL, &h), 0);
    char *text = render(m);
    assert_string_equal(text, "# HELP rb_wait_seconds Wait.\n"
                              "# TYPE rb_wait_seconds histogram\n"
                              "rb_wait_seconds_bucket{le=\"0.25\"} 0\n"
                              "rb_wait_seconds_bucket{le=\"0.5\"} 0\n"
                              "rb_wait_seconds_bucket{le=\"1\"} 0\n"
                              "rb_wait_seconds_bucket{le=\"2.5\"} 0\n"
                              "rb_wait_seconds_bucket{le=\"+Inf\"} 0\n"
                              "rb_wait_seconds_sum 0\n"
                              "rb_wait_seconds_count 0\n");
    free(text);
    metrics_histogram_observe(&h, 0.25); /* on the bound: its bucket */
    metrics_histogram_observe(&h, 0.125);
    metrics_histogram_observe(&h, 0.75);
    metrics_histogram_observe(&h, 0.75);
    metrics_histogram_observe(&h, 4); /* above every bound: +Inf only */
    metrics_histogram_observe(&h, NAN);
    text = render(m);
    assert_string_equal(text, "# HELP rb_wait_seconds Wait.\n"
                              "# TYPE rb_wait_seconds histogram\n"
                              "rb_wait_seconds_bucket{le=\"0.25\"} 2\n"
                              "rb_wait_seconds_bucket{le=\"0.5\"} 2\n"
                              "rb_wait_seconds_bucket{le=\"1\"} 4\n"
                              "rb_wait_seconds_bucket{le=\"2.5\"} 4\n"
                              "rb_wait_seconds_bucket{le=\"+Inf\"} 5\n"
                              "rb_wait_seconds_sum 5.875\n"
                              "rb_wait_seconds_count 5\n");
    free(text);
    metrics_free(m);
}

/* Labelled histograms of one name share a HELP/TYPE and their bounds, come
 * between other metrics in registration order, and put le last. Bounds and
 * sums are written as the shortest text that reads back as the same
 * double. */
static void test_histogram_labels_and_floats(void **state)
{
    static const double bounds[] = { 0.005, 0.1, 1e6 };
    metrics *m = NULL;
    assert_int_equal(metrics_new(&m), 0);
    uint64_t before = 1, after = 2;
    metrics_histogram w, c;
    assert_int_equal(metrics_histogram_init(&w, bounds, 3), 0);
    assert_int_equal(metrics_histogram_init(&c, bounds, 3), 0);
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "a_total", "A.", NULL, &before), 0);
    assert_int_equal(
        metrics_register_histogram(m, "rb_store_seconds", "Store.", "kind=\"job\"", &w), 0);
    assert_int_equal(metrics_register(m, METRIC_GAUGE, "b", "B.", NULL, &after), 0);
    assert_int_equal(
        metrics_register_histogram(m, "rb_store_seconds", "Store.", "kind=\"commit\"", &c), 0);
    metrics_histogram_observe(&w, 0.1);
    metrics_histogram_observe(&w, 0.2);
    metrics_histogram_observe(&c, 0.001);
    char *text = render(m);
    assert_string_equal(text, "# HELP a_total A.\n"
                              "# TYPE a_total counter\n"
                              "a_total 1\n"
                              "# HELP rb_store_seconds Store.\n"
                              "# TYPE rb_store_seconds histogram\n"
                              "rb_store_seconds_bucket{kind=\"job\",le=\"0.005\"} 0\n"
                              "rb_store_seconds_bucket{kind=\"job\",le=\"0.1\"} 1\n"
                              "rb_store_seconds_bucket{kind=\"job\",le=\"1e+06\"} 2\n"
                              "rb_store_seconds_bucket{kind=\"job\",le=\"+Inf\"} 2\n"
                              "rb_store_seconds_sum{kind=\"job\"} 0.30000000000000004\n"
                              "rb_store_seconds_count{kind=\"job\"} 2\n"
                              "rb_store_seconds_bucket{kind=\"commit\",le=\"0.005\"} 1\n"
                              "rb_store_seconds_bucket{kind=\"commit\",le=\"0.1\"} 1\n"
                              "rb_store_seconds_bucket{kind=\"commit\",le=\"1e+06\"} 1\n"
                              "rb_store_seconds_bucket{kind=\"commit\",le=\"+Inf\"} 1\n"
                              "rb_store_seconds_sum{kind=\"commit\"} 0.001\n"
                              "rb_store_seconds_count{kind=\"commit\"} 1\n"
                              "# HELP b B.\n"
                              "# TYPE b gauge\n"
                              "b 2\n");
    free(text);
    metrics_free(m);
}

static void test_histogram_rules(void **state)
{
    static const double ok[] = { 1, 2 };
    static const double other[] = { 1, 3 };
    static const double flat[] = { 1, 1 };
    static const double falling[] = { 2, 1 };
    static const double inf[] = { 1, INFINITY };
    static const double nan[] = { NAN };
    double many[METRICS_HISTOGRAM_MAX_BOUNDS + 1];
    for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++) {
        many[i] = (double)i;
    }
    metrics_histogram h, g;
    assert_int_equal(metrics_histogram_init(&h, ok, 0), -EINVAL);
    assert_int_equal(metrics_histogram_init(&h, NULL, 1), -EINVAL);
    assert_int_equal(metrics_histogram_init(&h, flat, 2), -EINVAL);
    assert_int_equal(metrics_histogram_init(&h, falling, 2), -EINVAL);
    assert_int_equal(metrics_histogram_init(&h, inf, 2), -EINVAL);
    assert_int_equal(metrics_histogram_init(&h, nan, 1), -EINVAL);
    assert_int_equal(metrics_histogram_init(&h, many, METRICS_HISTOGRAM_MAX_BOUNDS + 1), -EINVAL);
    assert_int_equal(metrics_histogram_init(&h, many, METRICS_HISTOGRAM_MAX_BOUNDS), 0);
    assert_int_equal(metrics_histogram_init(&h, ok, 2), 0);
    assert_int_equal(metrics_histogram_init(&g, other, 2), 0);

    metrics *m = NULL;
    assert_int_equal(metrics_new(&m), 0);
    uint64_t v = 0;
    /* le is the buckets' label; a histogram is not a plain value */
    assert_int_equal(metrics_register_histogram(m, "h", "H.", "le=\"1\"", &h), -EINVAL);
    assert_int_equal(metrics_register_histogram(m, "h", "H.", "a=\"x\",le=\"1\"", &h), -EINVAL);
    assert_int_equal(metrics_register_histogram(m, "h", "H.", NULL, NULL), -EINVAL);
    assert_int_equal(metrics_register_histogram(m, "1h", "H.", NULL, &h), -EINVAL);
    assert_int_equal(metrics_register(m, METRIC_HISTOGRAM, "h", "H.", NULL, &v), -EINVAL);
    /* a label merely ending in "le" is fine */
    assert_int_equal(metrics_register_histogram(m, "h", "H.", "role=\"a\\\"le=\"", &h), 0);
    assert_int_equal(metrics_register_histogram(m, "h", "H.", "role=\"a\\\"le=\"", &h), -EEXIST);
    /* one name, one set of bounds, one type */
    assert_int_equal(metrics_register_histogram(m, "h", "H.", "role=\"b\"", &g), -EINVAL);
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "h", "H.", "role=\"c\"", &v), -EINVAL);
    assert_int_equal(metrics_register(m, METRIC_COUNTER, "c", "C.", NULL, &v), 0);
    assert_int_equal(metrics_register_histogram(m, "c", "C.", "role=\"d\"", &h), -EINVAL);
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
        cmocka_unit_test(test_histogram_rendered),
        cmocka_unit_test(test_histogram_labels_and_floats),
        cmocka_unit_test(test_histogram_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
