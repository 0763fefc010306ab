/* rack-agent/config: the [cache] section. Defaults, sizes with units, paths
 * relative to the config file, and every bad value reported with its line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_config_fixture.h"

#define HEAD                                                                                       \
    "[agent]\nrack = r1\nstate_dir = /var/lib/rb\nadvertise_address = 2001:db8::1\n"               \
    "[standalone]\nhosts = hosts.conf\n"
/* HEAD is 6 lines: [cache] is line 7, its first key line 8. */

static void test_defaults(void **state)
{
    diag *d;
    agent_config *c = NULL;
    assert_int_equal(load(HEAD, &d, &c), 0);
    assert_string_equal(c->cache_dir, "/var/lib/rb/cache");
    assert_int_equal(c->cache_max_size, 20ULL << 30);
    assert_int_equal(c->cache_max_fetches, 4);
    agent_config_free(c);
    diag_free(d);
}

static void test_values(void **state)
{
    diag *d;
    agent_config *c = NULL;
    assert_int_equal(load(HEAD "[cache]\ndir = objs\nmax_size = 512M\nmax_fetches = 16\n", &d, &c),
                     0);
    char want[128];
    snprintf(want, sizeof(want), "%s/objs", dir);
    assert_string_equal(c->cache_dir, want);
    assert_int_equal(c->cache_max_size, 512ULL << 20);
    assert_int_equal(c->cache_max_fetches, 16);
    agent_config_free(c);
    diag_free(d);

    assert_int_equal(load(HEAD "[cache]\ndir = /srv/cache\nmax_size = 2T\n", &d, &c), 0);
    assert_string_equal(c->cache_dir, "/srv/cache");
    assert_int_equal(c->cache_max_size, 2ULL << 40);
    agent_config_free(c);
    diag_free(d);
}

static void test_bad_values(void **state)
{
    diag *d;
    agent_config *c = NULL;
    int r = load(HEAD "[cache]\n"
                      "dir =\n"
                      "max_size = 20 G\n"
                      "max_fetches = 0\n"
                      "colour = blue\n"
                      "max_size = 1K\n"
                      "max_fetches = many\n",
                 &d, &c);
    assert_int_equal(r, -EINVAL);
    assert_null(c);
    assert_true(has_problem(d, 8, "dir: empty value"));
    assert_true(has_problem(d, 9, "max_size"));
    assert_true(has_problem(d, 10, "out of range"));
    assert_true(has_problem(d, 11, "unknown key \"colour\" in [cache]"));
    assert_true(has_problem(d, 12, "below the minimum"));
    assert_true(has_problem(d, 13, "not a number"));
    assert_int_equal(diag_count(d), 6);
    diag_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
