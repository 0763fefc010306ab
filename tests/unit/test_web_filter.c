/* controller/web/filter: the host list's query is read strictly (unknown
 * states, phases, bad names and limits are refused with a reason) and
 * matched row by row as the page shows it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "install_fsm.h"
#include "util.h"
#include "web/filter.h"

/* A query as key=value pairs, NULL-terminated. */
static const char *lookup(void *userdata, const char *key)
{
    const char *const *q = userdata;
    for (; q[0]; q += 2) {
        if (streq(q[0], key)) {
            return q[1];
        }
    }
    return NULL;
}

static int parse(const char *const *q, web_host_filter *f, const char **why)
{
    *why = NULL;
    return web_host_filter_parse(lookup, (void *)(uintptr_t)q, f, why);
}

static store_status row(const char *host, const char *rack, install_state s, Rackboot__V1__Phase p)
{
    return (store_status){ .host = host, .rack = rack, .state = s, .phase = p };
}

static void test_defaults(void **state)
{
    const char *q[] = { NULL };
    web_host_filter f;
    const char *why;
    assert_int_equal(parse(q, &f, &why), 0);
    assert_int_equal(f.limit, WEB_PAGE_DEFAULT);
    assert_int_equal(f.states, 0);
    assert_int_equal(f.phases, 0);
    store_status r = row("web1", "a1", 0, 0);
    assert_true(web_host_filter_match(&f, &r));
}

static void test_match(void **state)
{
    const char *q[] = { "rack",           "a1",     "state", "installing,none", "phase",
                        "kernel_fetched", "prefix", "web",   "after",           "web1",
                        "limit",          "1000",   NULL };
    web_host_filter f;
    const char *why;
    assert_int_equal(parse(q, &f, &why), 0);
    assert_int_equal(f.limit, 1000);
    store_status yes =
        row("web2", "a1", INSTALL_INSTALLING, RACKBOOT__V1__PHASE__PHASE_KERNEL_FETCHED);
    assert_true(web_host_filter_match(&f, &yes));
    store_status other_rack = yes, before = yes, other_name = yes, other_state = yes,
                 other_phase = yes;
    other_rack.rack = "a2";
    before.host = "web1"; /* not after "web1" */
    other_name.host = "db1";
    other_state.state = INSTALL_INSTALLED;
    other_phase.phase = RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND;
    assert_false(web_host_filter_match(&f, &other_rack));
    assert_false(web_host_filter_match(&f, &before));
    assert_false(web_host_filter_match(&f, &other_name));
    assert_false(web_host_filter_match(&f, &other_state));
    assert_false(web_host_filter_match(&f, &other_phase));
    /* "none": never installed (state 0, phase unspecified). */
    const char *q2[] = { "state", "none", NULL };
    assert_int_equal(parse(q2, &f, &why), 0);
    store_status never = row("web9", "a1", 0, 0);
    assert_true(web_host_filter_match(&f, &never));
    assert_false(web_host_filter_match(&f, &yes));
}

static void test_refused(void **state)
{
    static const char *const bad[][3] = {
        { "state", "installing,bogus", "state:" },
        { "state", "installing,", "state:" },
        { "state", ",installing", "state:" },
        { "phase", "kernel", "phase:" },
        { "rack", "a 1", "rack:" },
        { "prefix", "web/", "prefix:" },
        { "after", "1234567890123456789012345678901234567890123456789012345678901234", "after:" },
        { "limit", "0", "limit:" },
        { "limit", "1001", "limit:" },
        { "limit", "ten", "limit:" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        const char *q[] = { bad[i][0], bad[i][1], NULL };
        web_host_filter f = { .limit = 7 };
        const char *why;
        assert_int_equal(parse(q, &f, &why), -EINVAL);
        assert_non_null(why);
        assert_int_equal(strncmp(why, bad[i][2], strlen(bad[i][2])), 0);
        assert_int_equal(f.limit, 7); /* untouched */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
