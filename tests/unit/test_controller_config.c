/* controller/config: the controller's configuration file, good and bad.
 * Every problem names its file and line, and all of them are reported. */
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

#include "config.h"

static char path[64];

static int load(const char *text, diag **ret_d, controller_config **ret)
{
    snprintf(path, sizeof(path), "/tmp/test_controller_config.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    *ret_d = diag_new();
    assert_non_null(*ret_d);
    int r = controller_config_load(path, *ret_d, ret);
    unlink(path);
    return r;
}

static bool has_problem(const diag *d, const char *needle)
{
    for (size_t i = 0; i < diag_count(d); i++) {
        if (strstr(diag_get(d, i), needle)) {
            return true;
        }
    }
    return false;
}

static void test_good_file(void **state)
{
    diag *d = NULL;
    controller_config *c = NULL;
    assert_int_equal(load("[controller]\n"
                          "state_dir = state\n"
                          "agents_listen = tls+tcp://[::]:7443\n"
                          "api_listen = ipc:///run/rb/api.sock\n"
                          "operators_listen = tls+tcp://[::]:7444\n"
                          "log_level = debug\n"
                          "[pki]\n"
                          "ca = pki/ca.crt\n"
                          "cert = /etc/rb/ctl.crt\n"
                          "key = /etc/rb/ctl.key\n"
                          "crl = crl.pem\n"
                          "server_name = ctl.example.net\n"
                          "[installs]\n"
                          "boot_timeout = 600\n"
                          "install_timeout = 0\n"
                          "[store]\n"
                          "keep_events_days = 30\n"
                          "read_connections = 4\n",
                          &d, &c),
                     0);
    assert_int_equal(diag_count(d), 0);
    /* relative paths are the file's directory's */
    assert_string_equal(c->state_dir, "/tmp/state");
    assert_string_equal(c->ca, "/tmp/pki/ca.crt");
    assert_string_equal(c->cert, "/etc/rb/ctl.crt");
    assert_string_equal(c->crl, "/tmp/crl.pem");
    assert_string_equal(c->agents_listen, "tls+tcp://[::]:7443");
    assert_string_equal(c->api_listen, "ipc:///run/rb/api.sock");
    assert_string_equal(c->operators_listen, "tls+tcp://[::]:7444");
    assert_string_equal(c->server_name, "ctl.example.net");
    assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(c->timeouts.boot_ms, 600000);
    assert_int_equal(c->timeouts.install_ms, 0);
    assert_int_equal(c->keep_events_days, 30);
    assert_int_equal(c->read_connections, 4);
    controller_config_free(c);
    diag_free(d);
}

static void test_defaults(void **state)
{
    diag *d = NULL;
    controller_config *c = NULL;
    assert_int_equal(load("[controller]\nstate_dir = /var/lib/rb\n", &d, &c), 0);
    assert_string_equal(c->api_listen, CONTROLLER_DEFAULT_API_LISTEN);
    assert_null(c->agents_listen);
    assert_null(c->operators_listen);
    assert_null(c->crl);
    assert_int_equal(c->timeouts.boot_ms, CONTROLLER_DEFAULT_BOOT_TIMEOUT * 1000ull);
    assert_int_equal(c->timeouts.install_ms, CONTROLLER_DEFAULT_INSTALL_TIMEOUT * 1000ull);
    assert_int_equal(c->keep_events_days, 90);
    assert_int_equal(c->read_connections, CONTROLLER_DEFAULT_READ_CONNECTIONS);
    assert_null(c->store_url); /* the store stays <state_dir>/fleet.db */
    controller_config_free(c);
    diag_free(d);
}

/* Every problem at once, each with its line. */
static void test_problems(void **state)
{
    diag *d = NULL;
    controller_config *c = NULL;
    assert_int_equal(load("[controller]\n"
                          "agents_listen = tcp://[::]:7443\n"
                          "api_listen = /run/api.sock\n"
                          "colour = blue\n"
                          "[installs]\n"
                          "boot_timeout = soon\n"
                          "[mystery]\n",
                          &d, &c),
                     -EINVAL);
    assert_null(c);
    assert_true(has_problem(d, ":2: agents_listen: expected a URL starting with tls+tcp://"));
    assert_true(has_problem(d, ":3: api_listen: expected a URL starting with ipc://"));
    assert_true(has_problem(d, ":4: unknown key \"colour\" in [controller]"));
    assert_true(has_problem(d, ":6: boot_timeout: expected seconds"));
    assert_true(has_problem(d, ":7: unknown section [mystery]"));
    assert_true(has_problem(d, "state_dir is required"));
    diag_free(d);
}

/* [store] keep_events_days: days, 0 keeps events for ever. */
static void test_keep_events_days(void **state)
{
    diag *d = NULL;
    controller_config *c = NULL;
    assert_int_equal(load("[controller]\nstate_dir = s\n[store]\nkeep_events_days = 0\n", &d, &c),
                     0);
    assert_int_equal(c->keep_events_days, 0);
    controller_config_free(c);
    diag_free(d);
    assert_int_equal(load("[controller]\nstate_dir = s\n[store]\nkeep_events_days = -1\n"
                          "keep_events_days = 36501\nkeep_events_days = many\nfoo = 1\n",
                          &d, &c),
                     -EINVAL);
    assert_true(has_problem(d, ":4: keep_events_days: expected days"));
    assert_true(has_problem(d, ":5: keep_events_days: expected days"));
    assert_true(has_problem(d, ":6: keep_events_days: expected days"));
    assert_true(has_problem(d, ":7: unknown key \"foo\" in [store]"));
    diag_free(d);
    /* read_connections: 0 (reads wait with the writes) to 16 */
    assert_int_equal(load("[controller]\nstate_dir = s\n[store]\nread_connections = 0\n", &d, &c),
                     0);
    assert_int_equal(c->read_connections, 0);
    controller_config_free(c);
    diag_free(d);
    assert_int_equal(load("[controller]\nstate_dir = s\n[store]\nread_connections = 17\n", &d, &c),
                     -EINVAL);
    assert_true(has_problem(d, ":4: read_connections: expected a number of connections"));
    diag_free(d);
}

/* [metrics] listen: off unless set; an address without a port gets 9464;
 * a bad address or an unknown key is a problem with its line. */
static void test_metrics_listen(void **state)
{
    diag *d = NULL;
    controller_config *c = NULL;
    assert_int_equal(load("[controller]\nstate_dir = s\n", &d, &c), 0);
    assert_false(c->metrics);
    controller_config_free(c);
    diag_free(d);

    assert_int_equal(load("[controller]\nstate_dir = s\n[metrics]\nlisten = [::1]\n", &d, &c), 0);
    assert_true(c->metrics);
    assert_int_equal(ntohs(c->metrics_listen.sin6_port), 9464);
    assert_true(IN6_IS_ADDR_LOOPBACK(&c->metrics_listen.sin6_addr));
    controller_config_free(c);
    diag_free(d);

    assert_int_equal(
        load("[controller]\nstate_dir = s\n[metrics]\nlisten = [2001:db8::9]:9100\n", &d, &c), 0);
    assert_true(c->metrics);
    assert_int_equal(ntohs(c->metrics_listen.sin6_port), 9100);
    controller_config_free(c);
    diag_free(d);

    assert_int_equal(
        load("[controller]\nstate_dir = s\n[metrics]\nlisten = nowhere:x\nport = 1\n", &d, &c),
        -EINVAL);
    assert_true(has_problem(d, ":4: listen"));
    assert_true(has_problem(d, ":5: unknown key \"port\" in [metrics]"));
    diag_free(d);
}

/* [web]: off unless listen is set, 8443 without a port, HTTPS so its cert
 * and key are required; url must be https://. */
static void test_web(void **state)
{
    diag *d = NULL;
    controller_config *c = NULL;
    assert_int_equal(load("[controller]\nstate_dir = s\n", &d, &c), 0);
    assert_false(c->web);
    assert_null(c->web_url);
    controller_config_free(c);
    diag_free(d);

    assert_int_equal(load("[controller]\nstate_dir = s\n[web]\nlisten = [::1]\n"
                          "url = https://rb.example:8443\ncert = w.crt\nkey = w.key\n",
                          &d, &c),
                     0);
    assert_true(c->web);
    assert_int_equal(ntohs(c->web_listen.sin6_port), 8443);
    assert_true(IN6_IS_ADDR_LOOPBACK(&c->web_listen.sin6_addr));
    assert_string_equal(c->web_url, "https://rb.example:8443");
    assert_non_null(strstr(c->web_cert, "w.crt"));
    assert_non_null(strstr(c->web_key, "w.key"));
    controller_config_free(c);
    diag_free(d);

    assert_int_equal(load("[controller]\nstate_dir = s\n[web]\nlisten = [::1]:9443\n"
                          "url = http://rb.example\n",
                          &d, &c),
                     -EINVAL);
    assert_true(has_problem(d, "[web] cert and key are required with [web] listen"));
    assert_true(has_problem(d, ":5: url"));
    diag_free(d);
}

/* [store] url picks the backend; an unknown scheme is a configuration
 * error that names the scheme's problem and the line. */
static void test_store_url(void **state)
{
    diag *d = NULL;
    controller_config *c = NULL;
    assert_int_equal(
        load("[controller]\nstate_dir = s\n[store]\nurl = sqlite:///var/lib/rb/fleet.db\n", &d, &c),
        0);
    assert_string_equal(c->store_url, "sqlite:///var/lib/rb/fleet.db");
    c = controller_config_free(c);
    diag_free(d);
    /* PostgreSQL: libpq's URL, checked without connecting */
    assert_int_equal(load("[controller]\nstate_dir = s\n[store]\n"
                          "url = postgresql://rb@db1,db2/fleet?target_session_attrs=read-write\n",
                          &d, &c),
                     0);
    assert_string_equal(c->store_url,
                        "postgresql://rb@db1,db2/fleet?target_session_attrs=read-write");
    c = controller_config_free(c);
    diag_free(d);
    assert_int_equal(
        load("[controller]\nstate_dir = s\n[store]\nurl = postgresql://db/fleet?nosuch=1\n", &d,
             &c),
        -EINVAL);
    assert_true(has_problem(d, ":4: url: not a PostgreSQL connection URL: "));
    diag_free(d);
    assert_int_equal(load("[controller]\nstate_dir = s\n[store]\n"
                          "url = mysql://db.example/fleet\n"
                          "url = sqlite://fleet.db\n"
                          "url = /var/lib/rb/fleet.db\n"
                          "url = sqlite:///x.db?mode=ro\n"
                          "url =\n",
                          &d, &c),
                     -EINVAL);
    assert_null(c);
    assert_true(has_problem(d, ":4: url: unknown store backend (this build has sqlite://, "
                               "postgresql://): \"mysql://db.example/fleet\""));
    assert_true(has_problem(d, ":5: url: expected sqlite:///PATH with an absolute PATH"));
    assert_true(has_problem(d, ":6: url: not a URL (expected sqlite:///PATH)"));
    assert_true(has_problem(d, ":7: url: a sqlite:// URL takes no query or fragment"));
    assert_true(has_problem(d, ":8: url: empty URL"));
    diag_free(d);
}

/* The user the controller drops root for (common/daemon.h). */
static void test_user(void **state)
{
    diag *d = NULL;
    controller_config *c = NULL;
    assert_int_equal(load("[controller]\nstate_dir = s\nuser = rackboot\n", &d, &c), 0);
    assert_string_equal(c->user, "rackboot");
    controller_config_free(c);
    diag_free(d);
    assert_int_equal(load("[controller]\nstate_dir = s\nuser = rack boot\n", &d, &c), -EINVAL);
    assert_true(has_problem(d, ":3: user: \"rack boot\" is not a user name"));
    diag_free(d);
}

static void test_tls_needs_pki(void **state)
{
    diag *d = NULL;
    controller_config *c = NULL;
    assert_int_equal(load("[controller]\nstate_dir = s\nagents_listen = tls+tcp://[::]:1\n"
                          "[pki]\nca = ca.crt\n",
                          &d, &c),
                     -EINVAL);
    assert_true(has_problem(d, "[pki] ca, cert and key are required"));
    diag_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_problems),
        cmocka_unit_test(test_tls_needs_pki),
        cmocka_unit_test(test_keep_events_days),
        cmocka_unit_test(test_store_url),
        cmocka_unit_test(test_user),
        cmocka_unit_test(test_metrics_listen),
        cmocka_unit_test(test_web),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
