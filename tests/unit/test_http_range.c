/* http/range: Range (RFC 9110 §14.2), If-None-Match (§13.1.2) and
 * If-Range (§13.1.5) as a client writes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/range.h"

#define SIZE 10000u

static void expect_partial(const char *value, uint64_t size, uint64_t offset, uint64_t length)
{
    http_range r = { 0 };
    assert_int_equal(http_range_parse(value, size, &r), HTTP_RANGE_PARTIAL);
    assert_int_equal(r.offset, offset);
    assert_int_equal(r.length, length);
}

static void expect(const char *value, uint64_t size, http_range_result want)
{
    http_range r = { .offset = 77, .length = 77 };
    assert_int_equal(http_range_parse(value, size, &r), want);
    /* ret is written only for a partial answer */
    assert_int_equal(r.offset, 77);
    assert_int_equal(r.length, 77);
}

static void test_three_forms(void **state)
{
    expect_partial("bytes=0-499", SIZE, 0, 500); /* RFC 9110 §14.1.2 examples */
    expect_partial("bytes=500-999", SIZE, 500, 500);
    expect_partial("bytes=-500", SIZE, 9500, 500);
    expect_partial("bytes=9500-", SIZE, 9500, 500);
    expect_partial("bytes=0-0", SIZE, 0, 1);
    expect_partial("bytes=9999-9999", SIZE, 9999, 1);
    expect_partial("bytes=0-", SIZE, 0, SIZE);
    expect_partial("BYTES=1-2", SIZE, 1, 2); /* range-unit is case-insensitive */
}

static void test_clipping(void **state)
{
    /* last-pos at or past the end means "to the end" (§14.1.2) */
    expect_partial("bytes=9000-20000", SIZE, 9000, 1000);
    expect_partial("bytes=0-9999", SIZE, 0, SIZE);
    /* a suffix longer than the entity is the whole entity, still a 206 */
    expect_partial("bytes=-20000", SIZE, 0, SIZE);
    expect_partial("bytes=-10000", SIZE, 0, SIZE);
}

static void test_unsatisfiable(void **state)
{
    expect("bytes=10000-", SIZE, HTTP_RANGE_UNSATISFIABLE);
    expect("bytes=10000-10005", SIZE, HTTP_RANGE_UNSATISFIABLE);
    expect("bytes=20000-30000", SIZE, HTTP_RANGE_UNSATISFIABLE);
    expect("bytes=-0", SIZE, HTTP_RANGE_UNSATISFIABLE); /* suffix-length 0, §14.1.1 */
    expect("bytes=0-0", 0, HTTP_RANGE_UNSATISFIABLE);   /* nothing in an empty entity */
    expect("bytes=0-", 0, HTTP_RANGE_UNSATISFIABLE);
}

static void test_ignored(void **state)
{
    expect(NULL, SIZE, HTTP_RANGE_IGNORE);
    expect("", SIZE, HTTP_RANGE_IGNORE);
    expect("bytes=", SIZE, HTTP_RANGE_IGNORE);
    expect("bytes=,", SIZE, HTTP_RANGE_IGNORE);
    expect("bytes", SIZE, HTTP_RANGE_IGNORE);
    expect("bytes=-", SIZE, HTTP_RANGE_IGNORE);
    expect("bytes=a-b", SIZE, HTTP_RANGE_IGNORE);
    expect("bytes=1-2x", SIZE, HTTP_RANGE_IGNORE);
    expect("bytes=+1-2", SIZE, HTTP_RANGE_IGNORE);
    expect("bytes=--5", SIZE, HTTP_RANGE_IGNORE);
    expect("bytes=5", SIZE, HTTP_RANGE_IGNORE);
    expect("bytes=500-400", SIZE, HTTP_RANGE_IGNORE); /* last < first: invalid */
    expect("items=0-1", SIZE, HTTP_RANGE_IGNORE);     /* unit we do not know */
    expect("bytes =0-1", SIZE, HTTP_RANGE_IGNORE);    /* no space before '=' */
    expect("bytes=0 -1", SIZE, HTTP_RANGE_IGNORE);    /* spaces inside a range-spec */
    expect("bytes=0- 1", SIZE, HTTP_RANGE_IGNORE);
    /* several ranges: the whole entity, no multipart/byteranges */
    expect("bytes=0-1,5-6", SIZE, HTTP_RANGE_IGNORE);
    expect("bytes=0-1, -5", SIZE, HTTP_RANGE_IGNORE);
    expect("bytes=20000-,0-1", SIZE, HTTP_RANGE_IGNORE);
    /* an empty entity goes out whole for a suffix */
    expect("bytes=-5", 0, HTTP_RANGE_IGNORE);
}

static void test_list_whitespace(void **state)
{
    /* §5.6.1: OWS around list members and empty members are fine */
    expect_partial("bytes= 1-2", SIZE, 1, 2);
    expect_partial("bytes=1-2 ", SIZE, 1, 2);
    expect_partial("bytes=\t1-2\t", SIZE, 1, 2);
    expect_partial("bytes=, 1-2 ,", SIZE, 1, 2);
    expect_partial("  bytes=1-2", SIZE, 1, 2);
}

static void test_huge_numbers(void **state)
{
    /* 2^64 - 1, 2^64 and far beyond: no wrap-around to small numbers */
    expect("bytes=18446744073709551615-", SIZE, HTTP_RANGE_UNSATISFIABLE);
    expect("bytes=18446744073709551616-", SIZE, HTTP_RANGE_UNSATISFIABLE);
    expect("bytes=99999999999999999999999999999999999999-", SIZE, HTTP_RANGE_UNSATISFIABLE);
    expect_partial("bytes=0-18446744073709551616", SIZE, 0, SIZE);
    expect_partial("bytes=10-99999999999999999999999999999", SIZE, 10, SIZE - 10);
    expect_partial("bytes=-99999999999999999999999999999", SIZE, 0, SIZE);
    /* an entity of the largest size */
    expect_partial("bytes=18446744073709551613-", UINT64_MAX, UINT64_MAX - 2, 2);
    expect_partial("bytes=0-", UINT64_MAX, 0, UINT64_MAX);
    expect_partial("bytes=-1", UINT64_MAX, UINT64_MAX - 1, 1);
    expect("bytes=18446744073709551615-", UINT64_MAX, HTTP_RANGE_UNSATISFIABLE);
}

static void test_if_none_match(void **state)
{
    const char *etag = "\"abc-10-5\"";
    assert_true(http_if_none_match("\"abc-10-5\"", etag));
    assert_true(http_if_none_match("*", etag));
    assert_true(http_if_none_match(" * ", etag));
    assert_true(http_if_none_match("\"x\", \"abc-10-5\"", etag));
    assert_true(http_if_none_match("\"x\",\"abc-10-5\"", etag));
    assert_true(http_if_none_match(" , \"x\" ,, \"abc-10-5\" ", etag));
    /* weak comparison: W/ on either side does not matter */
    assert_true(http_if_none_match("W/\"abc-10-5\"", etag));
    assert_true(http_if_none_match("\"abc-10-5\"", "W/\"abc-10-5\""));
    assert_true(http_if_none_match("W/\"abc-10-5\"", "W/\"abc-10-5\""));

    assert_false(http_if_none_match(NULL, etag));
    assert_false(http_if_none_match("", etag));
    assert_false(http_if_none_match("\"abc-10-6\"", etag));
    assert_false(http_if_none_match("\"abc-10-5", etag));     /* unterminated */
    assert_false(http_if_none_match("abc-10-5", etag));       /* unquoted */
    assert_false(http_if_none_match("w/\"abc-10-5\"", etag)); /* W/ is case-sensitive */
    assert_false(http_if_none_match("\"ABC-10-5\"", etag));   /* opaque tags are exact */
    assert_false(http_if_none_match("\"abc-10-5x\"", etag));  /* no prefix match */
    assert_false(http_if_none_match("\"abc\"", etag));
    assert_false(http_if_none_match("*, \"abc-10-5\"", etag)); /* "*" stands alone */
    /* a malformed member ends the list */
    assert_false(http_if_none_match("\"x\" junk, \"abc-10-5\"", etag));
    assert_false(http_if_none_match("\"a\"b\", \"abc-10-5\"", etag));
}

static void test_if_range(void **state)
{
    const char *etag = "\"abc\"";
    assert_true(http_if_range_ok(NULL, etag));
    assert_true(http_if_range_ok("\"abc\"", etag));
    assert_true(http_if_range_ok(" \"abc\" ", etag));
    assert_false(http_if_range_ok("\"abd\"", etag));
    assert_false(http_if_range_ok("W/\"abc\"", etag)); /* strong comparison only */
    assert_false(http_if_range_ok("\"abc\"", "W/\"abc\""));
    assert_false(http_if_range_ok("Wed, 21 Oct 2015 07:28:00 GMT", etag));
    assert_false(http_if_range_ok("", etag));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_forms),     cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_unsatisfiable),   cmocka_unit_test(test_ignored),
        cmocka_unit_test(test_list_whitespace), cmocka_unit_test(test_huge_numbers),
        cmocka_unit_test(test_if_none_match),   cmocka_unit_test(test_if_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
