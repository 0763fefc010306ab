/* common/logjson: `[log] format = json`, one object per line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "logjson.h"

static void check(const char *ts, const char *body, const char *want)
{
    log_record rec = { .level = LOG_LEVEL_INFO, .ts = ts, .ident = "rackboot-agent", .body = body };
    char *got = logjson_format(&rec);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_format(void **state)
{
    /* The example of the README and log.h, member for member. */
    check("2026-11-25T03:34:17.123Z", "dhcp6 bound mac=52:54:00:12:34:56 addr=2001:db8::10",
          "{\"ts\":\"2026-11-25T03:34:17.123Z\",\"level\":\"info\",\"ident\":\"rackboot-agent\","
          "\"msg\":\"dhcp6 bound\",\"mac\":\"52:54:00:12:34:56\",\"addr\":\"2001:db8::10\"}");
    /* Under journald: no "ts". A quoted value comes out unquoted, its
     * escapes undone and JSON's own applied. */
    check(NULL, "image fetch failed url=http://[::1]/x error=\"HTTP 404 \\\"Not\\\" Found\"",
          "{\"level\":\"info\",\"ident\":\"rackboot-agent\",\"msg\":\"image fetch failed\","
          "\"url\":\"http://[::1]/x\",\"error\":\"HTTP 404 \\\"Not\\\" Found\"}");
    /* Free text with '=' in it stays in msg; no fields at all. */
    check(NULL, "set a=b then stopped",
          "{\"level\":\"info\",\"ident\":\"rackboot-agent\","
          "\"msg\":\"set a=b then stopped\"}");
    /* A field may not hide a fixed member; a control character and a byte
     * that is not UTF-8 still give valid JSON. */
    check(NULL, "x level=debug msg=\"a\\x01\" host=w\xff",
          "{\"level\":\"info\",\"ident\":\"rackboot-agent\",\"msg\":\"x\",\"_level\":\"debug\","
          "\"_msg\":\"a\\u0001\",\"host\":\"w?\"}");
}

/* A line with more fields than the formatter takes: the last 64 become
 * members, the earlier ones stay in msg. */
static void test_many_fields(void **state)
{
    char body[2048] = "many";
    size_t off = strlen(body);
    for (int i = 0; i < 70; i++) {
        off += (size_t)snprintf(body + off, sizeof(body) - off, " k%d=%d", i, i);
    }
    log_record rec = { .level = LOG_LEVEL_INFO, .ident = "x", .body = body };
    char *got = logjson_format(&rec);
    assert_non_null(got);
    assert_non_null(strstr(got, "\"msg\":\"many k0=0 k1=1 k2=2 k3=3 k4=4 k5=5\""));
    assert_non_null(strstr(got, "\"k6\":\"6\""));
    assert_non_null(strstr(got, "\"k69\":\"69\"}"));
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_many_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
