/* model/template: the check profile load runs (errors with line
 * numbers) and expansion with validated values. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/template.h"
#include "util.h"

static void expect_ok(const char *t)
{
    template_error err = { 0 };
    int r = template_check(t, strlen(t), &err);
    if (r != 0) {
        fail_msg("refused (%s): %s", err.message, t);
    }
}

static void expect_error(const char *t, unsigned line, unsigned column, const char *message)
{
    template_error err = { 0 };
    assert_int_equal(template_check(t, strlen(t), &err), -EBADMSG);
    assert_int_equal(err.line, line);
    assert_int_equal(err.column, column);
    assert_string_equal(err.message, message);
    /* err is optional */
    assert_int_equal(template_check(t, strlen(t), NULL), -EBADMSG);
}

static void test_check_accepts(void **state)
{
    expect_ok("");
    expect_ok("text without placeholders\n");
    for (size_t i = 0; i < template_n_placeholders; i++) {
        char t[64];
        snprintf(t, sizeof(t), "x {{%s}} y", template_placeholders[i].name);
        expect_ok(t);
    }
    expect_ok("{{ hostname }} {{\thostname\t}}{{hostname}}");
    expect_ok("a lone }} or } or { is text");
    expect_ok("awk '{ print $1 }' and ${VAR} and {x}");
    expect_ok("%pre\necho {{install_id}}\n%end\n");
}

/* What the unknown-placeholder error lists: every name a template may use. */
#define KNOWN                                                                                      \
    " (known: hostname, address, prefix, gateway, dns, search, install_id, token, "                \
    "progress_url, profile, agent_url)"

static void test_check_errors(void **state)
{
    expect_error("network --hostname={{hostnme}}\n", 1, 20,
                 "line 1: unknown placeholder {{hostnme}}" KNOWN);
    expect_error("text\n\n  {{ Hostname }}\n", 3, 3, "line 3: \"{{\" without a placeholder name");
    expect_error("one\ntwo {{hostname\n}}\n", 2, 5,
                 "line 2: unterminated or malformed placeholder (expected {{name}})");
    expect_error("{{host-name}}", 1, 1,
                 "line 1: unterminated or malformed placeholder (expected {{name}})");
    expect_error("{{}}", 1, 1, "line 1: \"{{\" without a placeholder name");
    expect_error("x {{", 1, 3, "line 1: \"{{\" without a placeholder name");
    expect_error("x {{hostname}", 1, 3,
                 "line 1: unterminated or malformed placeholder (expected {{name}})");
    expect_error("{{hostname}} {{ dns search }}", 1, 14,
                 "line 1: unterminated or malformed placeholder (expected {{name}})");
    expect_error("{{a_very_long_name_that_goes_on_and_on_and_on}}", 1, 1,
                 "line 1: unknown placeholder {{a_very_long_name_that_goes_on_an}}" KNOWN);
    /* The first error wins. */
    expect_error("{{hostname}}\n{{nope}}\n{{bad", 2, 1,
                 "line 2: unknown placeholder {{nope}}" KNOWN);

    /* A NUL byte inside the given length. */
    static const char nul[] = "ok\nx\0y";
    template_error err = { 0 };
    assert_int_equal(template_check(nul, sizeof(nul) - 1, &err), -EBADMSG);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, 2);
}

static void expand(const char *t, const template_var *vars, size_t n, int want,
                   const char *want_out)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(template_expand(t, strlen(t), vars, n, &out, &len), want);
    if (want == 0) {
        assert_string_equal(out, want_out);
        assert_int_equal(len, strlen(want_out));
        free(out);
    } else {
        assert_null(out);
    }
}

static void test_expand(void **state)
{
    const template_var vars[] = {
        { "hostname", "web17.rack1.example.com" },
        { "dns", "2001:db8::53,2001:db8::54" },
        { "gateway", "" },
    };
    expand("", vars, ARRAY_SIZE(vars), 0, "");
    expand("plain", vars, ARRAY_SIZE(vars), 0, "plain");
    expand("network --hostname={{hostname}} --nameserver={{ dns }}\n", vars, ARRAY_SIZE(vars), 0,
           "network --hostname=web17.rack1.example.com --nameserver=2001:db8::53,2001:db8::54\n");
    expand("[{{gateway}}]{{hostname}}{{hostname}}", vars, ARRAY_SIZE(vars), 0,
           "[]web17.rack1.example.comweb17.rack1.example.com");
    /* Known, but the caller gave no value. */
    expand("{{token}}", vars, ARRAY_SIZE(vars), -ENOENT, NULL);
    /* Unknown, or malformed: the same error as the check. */
    expand("{{tokn}}", vars, ARRAY_SIZE(vars), -EBADMSG, NULL);
    expand("{{token", vars, ARRAY_SIZE(vars), -EBADMSG, NULL);
}

/* A value never carries quoting, expansion or line breaks into the output. */
static void test_expand_refuses_unsafe_values(void **state)
{
    static const char *const bad[] = {
        "web17\"",   "web'17", "web17\n", "web\r17", "a b",      "a\tb",
        "$(reboot)", "`id`",   "a\\b",    "\x7f",    "\xc3\xa9", "\x1b[2J",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        const template_var v[] = { { "hostname", bad[i] } };
        char *out = NULL;
        if (template_expand("h={{hostname}}", 14, v, 1, &out, NULL) != -EINVAL) {
            fail_msg("accepted value %zu", i);
        }
        assert_null(out);
    }
    /* A NULL value is refused as well; an unused bad value does not matter. */
    const template_var v[] = { { "hostname", NULL }, { "dns", "x\ny" } };
    char *out = NULL;
    assert_int_equal(template_expand("{{hostname}}", 12, v, 2, &out, NULL), -EINVAL);
    assert_int_equal(template_expand("{{prefix}}", 10, v, 2, &out, NULL), -ENOENT);
    assert_int_equal(template_expand("no placeholder", 14, v, 2, &out, NULL), 0);
    assert_string_equal(out, "no placeholder");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_accepts),
        cmocka_unit_test(test_check_errors),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_expand_refuses_unsafe_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
