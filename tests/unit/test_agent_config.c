/* rack-agent/config: the agent's configuration file, good and bad. Every
 * problem must name its file and line, and all of them are reported. */
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

static struct in6_addr addr6(const char *s)
{
    struct in6_addr a;
    assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
    return a;
}

static void test_good_file(void **state)
{
    diag *d;
    agent_config *c = NULL;
    int r = load("[agent]\n"
                 "rack = rack1\n"
                 "state_dir = /var/lib/rb\n"
                 "advertise_address = 2001:db8:1::1\n"
                 "gateway = 2001:db8:1::fffe\n"
                 "log_level = debug\n"
                 "[http]\n"
                 "listen = [::]:8080\n"
                 "max_connections = 2000\n"
                 "[dhcp6]\n"
                 "interfaces = eth1  eth2\n"
                 "port = 1547\n"
                 "dns_servers = 2001:db8:1::53 2001:db8:1::54\n"
                 "domain_search = rack1.example.com example.com\n"
                 "preferred_lifetime = 100\n"
                 "valid_lifetime = 200\n"
                 "rapid_commit = yes\n"
                 "preference = 100\n"
                 "pool = 2001:db8:1::1000 2001:db8:1::1fff\n"
                 "[standalone]\n"
                 "hosts = hosts.conf\n"
                 "[tftp]\n"
                 "max_transfers = 10\n",
                 &d, &c);
    diag_print(d, stderr);
    assert_int_equal(r, 0);
    assert_string_equal(c->rack, "rack1");
    assert_string_equal(c->state_dir, "/var/lib/rb");
    struct in6_addr adv = addr6("2001:db8:1::1"), gw = addr6("2001:db8:1::fffe");
    assert_memory_equal(&c->advertise_address, &adv, 16);
    assert_true(c->has_gateway);
    assert_memory_equal(&c->gateway, &gw, 16);
    assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(c->http_port, 8080);
    assert_int_equal(c->n_interfaces, 2);
    assert_string_equal(c->interfaces[1], "eth2");
    assert_int_equal(c->dhcp6_port, 1547);
    assert_int_equal(c->n_dns, 2);
    assert_int_equal(c->n_search, 2);
    assert_string_equal(c->search[0], "rack1.example.com");
    assert_int_equal(c->preferred_lifetime, 100);
    assert_int_equal(c->valid_lifetime, 200);
    assert_true(c->rapid_commit);
    assert_int_equal(c->dhcp6_preference, 100);
    assert_true(c->has_pool);
    char expect[160];
    snprintf(expect, sizeof(expect), "%s/hosts.conf", dir);
    assert_string_equal(c->hosts_path, expect);
    agent_config_free(c);
    diag_free(d);
}

static void test_defaults(void **state)
{
    diag *d;
    agent_config *c = NULL;
    assert_int_equal(load("[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
                          "[standalone]\nhosts = /etc/hosts.conf\n",
                          &d, &c),
                     0);
    assert_int_equal(c->http_port, 80);
    assert_int_equal(c->dhcp6_port, 547);
    assert_int_equal(c->preferred_lifetime, AGENT_DEFAULT_PREFERRED_LIFETIME);
    assert_int_equal(c->valid_lifetime, AGENT_DEFAULT_VALID_LIFETIME);
    assert_false(c->rapid_commit);
    assert_int_equal(c->dhcp6_preference, 255);
    assert_false(c->has_pool);
    assert_false(c->has_gateway);
    assert_int_equal(c->log_level, LOG_LEVEL_INFO);
    assert_string_equal(c->hosts_path, "/etc/hosts.conf");
    agent_config_free(c);
    diag_free(d);
}

/* A Preference is one octet (RFC 8415 §21.8). */
static void test_dhcp6_preference_range(void **state)
{
    diag *d;
    agent_config *c = NULL;
    assert_int_equal(load("[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
                          "[standalone]\nhosts = /etc/hosts.conf\n"
                          "[dhcp6]\npreference = 256\n",
                          &d, &c),
                     -EINVAL);
    assert_true(has_problem(d, 8, "preference"));
    diag_free(d);
    assert_int_equal(load("[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
                          "[standalone]\nhosts = /etc/hosts.conf\n"
                          "[dhcp6]\npreference = 0\n",
                          &d, &c),
                     0);
    assert_int_equal(c->dhcp6_preference, 0);
    agent_config_free(c);
    diag_free(d);
}

/* A pair's shared address: global unicast, not the agent's own. */
static void test_service_address(void **state)
{
    diag *d;
    agent_config *c = NULL;
    assert_int_equal(load("[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
                          "[standalone]\nhosts = /etc/hosts.conf\n",
                          &d, &c),
                     0);
    assert_false(c->has_service_address);
    agent_config_free(c);
    diag_free(d);
    assert_int_equal(load("[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
                          "service_address = 2001:db8::100\n"
                          "[standalone]\nhosts = /etc/hosts.conf\n",
                          &d, &c),
                     0);
    assert_true(c->has_service_address);
    struct in6_addr want = addr6("2001:db8::100");
    assert_memory_equal(&c->service_address, &want, 16);
    agent_config_free(c);
    diag_free(d);
    assert_int_equal(load("[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
                          "service_address = fe80::100\n"
                          "[standalone]\nhosts = /etc/hosts.conf\n",
                          &d, &c),
                     -EINVAL);
    assert_true(has_problem(d, 5, "service_address: must be a global unicast address"));
    diag_free(d);
    assert_int_equal(load("[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
                          "service_address = 2001:db8::1\n"
                          "[standalone]\nhosts = /etc/hosts.conf\n",
                          &d, &c),
                     -EINVAL);
    assert_true(has_problem(d, 1, "cannot be this agent's own advertise_address"));
    diag_free(d);
}

static void test_every_error_with_its_line(void **state)
{
    diag *d;
    agent_config *c = NULL;
    int r = load("[agent]\n"                              /* 1 */
                 "rack = bad name!\n"                     /* 2 */
                 "advertise_address = fe80::1\n"          /* 3 */
                 "gateway = 2001:db8::zz\n"               /* 4 */
                 "log_level = loud\n"                     /* 5 */
                 "colour = blue\n"                        /* 6 */
                 "[dhcp6]\n"                              /* 7 */
                 "port = 70000\n"                         /* 8 */
                 "dns_servers = 2001:db8::53 nope\n"      /* 9 */
                 "domain_search = ok.example bad..name\n" /* 10 */
                 "preferred_lifetime = 10\n"              /* 11 */
                 "valid_lifetime = five\n"                /* 12 */
                 "rapid_commit = maybe\n"                 /* 13 */
                 "pool = 2001:db8:1::10 2001:db8:2::10\n" /* 14 */
                 "[http]\n"                               /* 15 */
                 "listen = [::]:notaport\n"               /* 16 */
                 "[weird]\n"                              /* 17 */
                 "[agent]\n",                             /* 18 */
                 &d, &c);
    assert_int_equal(r, -EINVAL);
    assert_null(c);
    assert_true(has_problem(d, 2, "rack"));
    assert_true(has_problem(d, 3, "advertise_address"));
    assert_true(has_problem(d, 4, "gateway"));
    assert_true(has_problem(d, 5, "log_level"));
    assert_true(has_problem(d, 6, "unknown key \"colour\""));
    assert_true(has_problem(d, 8, "port"));
    assert_true(has_problem(d, 9, "\"nope\""));
    assert_true(has_problem(d, 10, "bad..name"));
    assert_true(has_problem(d, 12, "valid_lifetime"));
    assert_true(has_problem(d, 13, "rapid_commit"));
    assert_true(has_problem(d, 14, "pool"));
    assert_true(has_problem(d, 16, "listen"));
    assert_true(has_problem(d, 17, "unknown section [weird]"));
    assert_true(has_problem(d, 18, "repeated (first at line 1)"));
    /* Missing required keys point at the [agent] header. */
    assert_true(has_problem(d, 1, "state_dir is required"));
    diag_free(d);
}

static void test_cross_checks(void **state)
{
    diag *d;
    agent_config *c = NULL;
    int r = load("[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
                 "[dhcp6]\npreferred_lifetime = 500\nvalid_lifetime = 400\n",
                 &d, &c);
    assert_int_equal(r, -EINVAL);
    assert_true(has_problem(d, 5, "must not exceed valid_lifetime"));
    bool no_source = false;
    for (size_t i = 0; i < diag_count(d); i++) {
        no_source |= strstr(diag_get(d, i), "no intent source") != NULL;
    }
    assert_true(no_source);
    diag_free(d);
}

/* [tftp]: every key, the defaults, and each bad value with its line. */
static void test_tftp_section(void **state)
{
    diag *d;
    agent_config *c = NULL;
    static const char head[] =
        "[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
        "[standalone]\nhosts = /h\n";
    assert_int_equal(load(head, &d, &c), 0);
    assert_true(c->tftp_enabled);
    assert_int_equal(ntohs(c->tftp_listen.sin6_port), 69);
    assert_true(IN6_IS_ADDR_UNSPECIFIED(&c->tftp_listen.sin6_addr));
    assert_string_equal(c->tftp_root, "/s/tftp");
    assert_true(c->tftp_root_default);
    assert_int_equal(c->tftp_max_transfers, 256);
    assert_int_equal(c->tftp_max_transfers_per_source, 8);
    assert_int_equal(c->tftp_max_blksize, 1428);
    assert_int_equal(c->tftp_max_windowsize, 64);
    assert_int_equal(c->tftp_timeout_ms, 1000);
    assert_int_equal(c->tftp_retries, 5);
    agent_config_free(c);
    diag_free(d);

    char text[1024];
    snprintf(text, sizeof(text),
             "%s[tftp]\nenabled = no\nlisten = [2001:db8::1]:6969\nroot = tftproot\n"
             "max_transfers = 3\nmax_blksize = 8\nmax_windowsize = 65535\ntimeout_ms = 10\n"
             "retries = 0\nmax_transfers_per_source = 2\n",
             head);
    assert_int_equal(load(text, &d, &c), 0);
    assert_false(c->tftp_enabled);
    assert_int_equal(ntohs(c->tftp_listen.sin6_port), 6969);
    char expect[160];
    snprintf(expect, sizeof(expect), "%s/tftproot", dir);
    assert_string_equal(c->tftp_root, expect);
    assert_false(c->tftp_root_default);
    assert_int_equal(c->tftp_max_transfers, 3);
    assert_int_equal(c->tftp_max_blksize, 8);
    assert_int_equal(c->tftp_max_windowsize, 65535);
    assert_int_equal(c->tftp_timeout_ms, 10);
    assert_int_equal(c->tftp_retries, 0);
    assert_int_equal(c->tftp_max_transfers_per_source, 2);
    c = agent_config_free(c);
    diag_free(d);

    snprintf(text, sizeof(text),
             "%s[tftp]\n"                      /* 7 */
             "listen = nowhere\n"              /* 8 */
             "max_transfers = 0\n"             /* 9 */
             "max_blksize = 7\n"               /* 10 */
             "max_blksize = 65465\n"           /* 11 */
             "max_windowsize = 0\n"            /* 12 */
             "timeout_ms = 9\n"                /* 13 */
             "retries = 21\n"                  /* 14 */
             "enabled = perhaps\n"             /* 15 */
             "root =\n"                        /* 16 */
             "colour = blue\n"                 /* 17 */
             "max_transfers_per_source = 0\n", /* 18 */
             head);
    assert_int_equal(load(text, &d, &c), -EINVAL);
    assert_null(c);
    assert_true(has_problem(d, 8, "listen"));
    assert_true(has_problem(d, 9, "max_transfers"));
    assert_true(has_problem(d, 10, "max_blksize"));
    assert_true(has_problem(d, 11, "max_blksize"));
    assert_true(has_problem(d, 12, "max_windowsize"));
    assert_true(has_problem(d, 13, "timeout_ms"));
    assert_true(has_problem(d, 14, "retries"));
    assert_true(has_problem(d, 15, "enabled"));
    assert_true(has_problem(d, 16, "root"));
    assert_true(has_problem(d, 17, "unknown key \"colour\" in [tftp]"));
    assert_true(has_problem(d, 18, "max_transfers_per_source"));
    diag_free(d);
}

/* [dhcp6] trusted_relays and max_bindings_per_interface (issue #10). */
/* The user the agent drops root for (common/daemon.h). */
static void test_user(void **state)
{
    diag *d;
    agent_config *c = NULL;
    static const char fmt[] = "[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
                              "user = %s\n" /* line 5 */
                              "[standalone]\nhosts = /etc/hosts.conf\n";
    char text[256];
    snprintf(text, sizeof(text), fmt, "rackboot");
    assert_int_equal(load(text, &d, &c), 0);
    assert_string_equal(c->user, "rackboot");
    agent_config_free(c);
    diag_free(d);
    snprintf(text, sizeof(text), fmt, "-x");
    assert_int_equal(load(text, &d, &c), -EINVAL);
    assert_true(has_problem(d, 5, "user: \"-x\" is not a user name"));
    diag_free(d);
}

/* [controller] url (one) or urls (several, in the order the uplink tries
 * them): commas and/or blanks separate them; both keys, none, a wrong
 * scheme or an empty list are each a problem at its line. */
static void test_controller_urls(void **state)
{
    diag *d;
    agent_config *c = NULL;
    static const char fmt[] = "[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
                              "[controller]\n" /* line 5 */
                              "%s\n"
                              "ca = ca.crt\ncert = a.crt\nkey = a.key\n";
    char text[512];
    /* `url` as before: one. */
    snprintf(text, sizeof(text), fmt, "url = tls+tcp://[2001:db8::10]:7443");
    assert_int_equal(load(text, &d, &c), 0);
    assert_int_equal(c->n_controller_urls, 1);
    assert_string_equal(c->controller_urls[0], "tls+tcp://[2001:db8::10]:7443");
    c = agent_config_free(c);
    diag_free(d);
    /* `urls`: blanks, commas, or both, in order. */
    snprintf(
        text, sizeof(text), fmt,
        "urls = tls+tcp://ctl1:7443, tls+tcp://ctl2:7443,tls+tcp://[::1]:1\ttls+tcp://ctl4:7443");
    assert_int_equal(load(text, &d, &c), 0);
    assert_int_equal(c->n_controller_urls, 4);
    assert_string_equal(c->controller_urls[0], "tls+tcp://ctl1:7443");
    assert_string_equal(c->controller_urls[1], "tls+tcp://ctl2:7443");
    assert_string_equal(c->controller_urls[2], "tls+tcp://[::1]:1");
    assert_string_equal(c->controller_urls[3], "tls+tcp://ctl4:7443");
    c = agent_config_free(c);
    diag_free(d);
    snprintf(text, sizeof(text), fmt, "urls = tls+tcp://only:7443");
    assert_int_equal(load(text, &d, &c), 0);
    assert_int_equal(c->n_controller_urls, 1);
    c = agent_config_free(c);
    diag_free(d);

    /* Both: a clear problem, whichever comes first. */
    snprintf(text, sizeof(text), fmt, "url = tls+tcp://a:1\nurls = tls+tcp://b:1 tls+tcp://c:1");
    assert_int_equal(load(text, &d, &c), -EINVAL);
    assert_true(has_problem(d, 5, "url and urls exclude each other"));
    diag_free(d);
    snprintf(text, sizeof(text), fmt, "urls = tls+tcp://b:1\nurl = tls+tcp://a:1");
    assert_int_equal(load(text, &d, &c), -EINVAL);
    assert_true(has_problem(d, 5, "url and urls exclude each other"));
    diag_free(d);
    /* Neither. */
    snprintf(text, sizeof(text), fmt, "sync_wait = 5");
    assert_int_equal(load(text, &d, &c), -EINVAL);
    assert_true(has_problem(d, 5, "needs url (or urls), ca, cert and key"));
    diag_free(d);
    /* A wrong scheme in the list is named; so is an empty list. */
    snprintf(text, sizeof(text), fmt, "urls = tls+tcp://a:1, http://b:1");
    assert_int_equal(load(text, &d, &c), -EINVAL);
    assert_true(has_problem(d, 6, "urls: expected tls+tcp://HOST:PORT, not \"http://b:1\""));
    diag_free(d);
    snprintf(text, sizeof(text), fmt, "urls = ,");
    assert_int_equal(load(text, &d, &c), -EINVAL);
    assert_true(has_problem(d, 5, "urls: empty"));
    diag_free(d);
    /* More than AGENT_MAX_CONTROLLERS. */
    snprintf(text, sizeof(text), fmt,
             "urls = tls+tcp://a:1 tls+tcp://b:1 tls+tcp://c:1 tls+tcp://d:1 tls+tcp://e:1 "
             "tls+tcp://f:1 tls+tcp://g:1 tls+tcp://h:1 tls+tcp://i:1");
    assert_int_equal(load(text, &d, &c), -EINVAL);
    assert_true(has_problem(d, 6, "urls: more than 8"));
    diag_free(d);
    /* A quote would break the metrics label the URL becomes. */
    snprintf(text, sizeof(text), fmt, "url = tls+tcp://a\"b:1");
    assert_int_equal(load(text, &d, &c), -EINVAL);
    assert_true(has_problem(d, 6, "holds a quote or a backslash"));
    diag_free(d);
}

static void test_dhcp6_relays_and_cap(void **state)
{
    diag *d;
    agent_config *c = NULL;
    static const char head[] =
        "[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
        "[standalone]\nhosts = /etc/hosts.conf\n"
        "[dhcp6]\n"; /* line 7 */
    int r = load("[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
                 "[standalone]\nhosts = /etc/hosts.conf\n"
                 "[dhcp6]\n"
                 "trusted_relays = 2001:db8:ff::1, 2001:db8:fe::/64 2001:db8:fd::/48,\n"
                 "max_bindings_per_interface = 64\n",
                 &d, &c);
    diag_print(d, stderr);
    assert_int_equal(r, 0);
    assert_int_equal(c->n_trusted_relays, 3);
    struct in6_addr a = addr6("2001:db8:ff::1"), b = addr6("2001:db8:fe::"),
                    e = addr6("2001:db8:fd::");
    assert_memory_equal(&c->trusted_relays[0].addr, &a, 16);
    assert_int_equal(c->trusted_relays[0].len, 128);
    assert_memory_equal(&c->trusted_relays[1].addr, &b, 16);
    assert_int_equal(c->trusted_relays[1].len, 64);
    assert_memory_equal(&c->trusted_relays[2].addr, &e, 16);
    assert_int_equal(c->trusted_relays[2].len, 48);
    assert_int_equal(c->max_bindings_per_interface, 64);
    agent_config_free(c);
    diag_free(d);

    /* Defaults: no relay is trusted, a cap applies. */
    assert_int_equal(load(head, &d, &c), 0);
    assert_int_equal(c->n_trusted_relays, 0);
    assert_int_equal(c->max_bindings_per_interface, AGENT_DEFAULT_MAX_BINDINGS_PER_INTERFACE);
    agent_config_free(c);
    diag_free(d);

    c = NULL;
    r = load("[agent]\nrack = r\nstate_dir = /s\nadvertise_address = 2001:db8::1\n"
             "[standalone]\nhosts = /etc/hosts.conf\n"
             "[dhcp6]\n"
             "trusted_relays = 2001:db8:ff::1 relay.example.com\n" /* 8 */
             "max_bindings_per_interface = 0\n"                    /* 9 */
             "trusted_relays = 2001:db8:fe::/129\n",               /* 10 */
             &d, &c);
    assert_int_equal(r, -EINVAL);
    assert_null(c);
    assert_true(has_problem(d, 8, "relay.example.com"));
    assert_true(has_problem(d, 9, "max_bindings_per_interface"));
    assert_true(has_problem(d, 10, "2001:db8:fe::/129"));
    diag_free(d);
}

static void test_missing_file(void **state)
{
    diag *d = diag_new();
    agent_config *c = NULL;
    assert_int_equal(agent_config_load("/nonexistent/agent.conf", d, &c), -ENOENT);
    assert_true(diag_count(d) >= 1);
    diag_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dhcp6_preference_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_error_with_its_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tftp_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dhcp6_relays_and_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controller_urls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
