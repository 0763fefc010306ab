/* rack-agent/config: the [http] section (listen address and the server's
 * limits), defaults and file:line errors. */
#include <arpa/inet.h>
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
    "[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"                         \
    "[standalone]\nhosts = h.conf\n"
/* HEAD is 6 lines: [http] is line 7, its first key line 8. */

static void test_defaults(void **state)
{
    diag *d;
    agent_config *c = NULL;
    assert_int_equal(load(HEAD, &d, &c), 0);
    assert_int_equal(c->http_port, 80);
    assert_int_equal(ntohs(c->http_listen.sin6_port), 80);
    assert_true(IN6_IS_ADDR_UNSPECIFIED(&c->http_listen.sin6_addr));
    assert_int_equal(c->http_max_connections, 1024);
    /* on by default (issue #10) */
    assert_int_equal(c->http_max_connections_per_ip, 32);
    assert_int_equal(c->http_connection_timeout, 30);
    assert_int_equal(c->http_header_timeout, 10);
    assert_int_equal(c->http_max_header_size, 8192);
    agent_config_free(c);
    diag_free(d);
}

static void test_values(void **state)
{
    diag *d;
    agent_config *c = NULL;
    int r = load(HEAD "[http]\n"
                      "listen = [2001:db8::1]:8080\n"
                      "max_connections = 5000\n"
                      "max_connections_per_ip = 50\n"
                      "connection_timeout = 10\n"
                      "header_timeout = 5\n"
                      "max_header_size = 16K\n",
                 &d, &c);
    diag_print(d, stderr);
    assert_int_equal(r, 0);
    struct in6_addr want;
    inet_pton(AF_INET6, "2001:db8::1", &want);
    assert_memory_equal(&c->http_listen.sin6_addr, &want, 16);
    assert_int_equal(ntohs(c->http_listen.sin6_port), 8080);
    assert_int_equal(c->http_port, 8080); /* boot URLs follow the listen port */
    assert_int_equal(c->http_max_connections, 5000);
    assert_int_equal(c->http_max_connections_per_ip, 50);
    assert_int_equal(c->http_connection_timeout, 10);
    assert_int_equal(c->http_header_timeout, 5);
    assert_int_equal(c->http_max_header_size, 16384);
    agent_config_free(c);
    diag_free(d);
    /* 0 still turns the per-address limit off */
    r = load(HEAD "[http]\nmax_connections_per_ip = 0\n", &d, &c);
    assert_int_equal(r, 0);
    assert_int_equal(c->http_max_connections_per_ip, 0);
    agent_config_free(c);
    diag_free(d);
}

static void test_errors_name_their_line(void **state)
{
    diag *d;
    agent_config *c = NULL;
    int r = load(HEAD "[http]\n"                      /* 7 */
                      "listen = [::]:99999\n"         /* 8 */
                      "max_connections = 0\n"         /* 9 */
                      "connection_timeout = soon\n"   /* 10 */
                      "max_header_size = 100\n"       /* 11 */
                      "max_header_size = 2M\n"        /* 12 */
                      "max_header_size = big\n"       /* 13 */
                      "max_connections_per_ip = -1\n" /* 14 */
                      "root = /srv\n"                 /* 15 */
                      "header_timeout = 0\n",         /* 16 */
                 &d, &c);
    assert_int_equal(r, -EINVAL);
    assert_null(c);
    assert_true(has_problem(d, 8, "listen"));
    assert_true(has_problem(d, 9, "max_connections"));
    assert_true(has_problem(d, 10, "connection_timeout"));
    assert_true(has_problem(d, 11, "max_header_size"));
    assert_true(has_problem(d, 12, "max_header_size"));
    assert_true(has_problem(d, 13, "max_header_size"));
    assert_true(has_problem(d, 14, "max_connections_per_ip"));
    assert_true(has_problem(d, 15, "unknown key \"root\" in [http]"));
    assert_true(has_problem(d, 16, "header_timeout"));
    diag_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_name_their_line, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
