/* The install flow's access rules and events: who counts as the host
 * (reserved address, or EUI-64 SLAAC address on a prefix of the host's
 * link, never under any prefix), the installer's form body,
 * and completed installs — withdrawn, remembered across a restart, and
 * filtered out of later intent sets. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "install/progress.h"
#include "install/routes.h"
#include "util.h"

int boot_form_get(const uint8_t *body, size_t len, const char *key, char *out, size_t out_size);

static intent make_intent(void)
{
    intent in = { 0 };
    const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    memcpy(in.macs[0], mac, 6);
    in.n_macs = 1;
    inet_pton(AF_INET6, "2001:db8:1::17", &in.address);
    in.prefix_len = 64;
    return in;
}

static struct sockaddr_in6 addr(const char *text)
{
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
    assert_int_equal(inet_pton(AF_INET6, text, &sa.sin6_addr), 1);
    return sa;
}

/* The agent's served links, as main.c answers from the interfaces: the
 * global prefix 2001:db8:5::/64 and link-local on ifindex 3. */
static int on_link_calls;

static bool served_link(void *userdata, const struct sockaddr_in6 *client)
{
    on_link_calls++;
    struct in6_addr served;
    inet_pton(AF_INET6, "2001:db8:5::", &served);
    if (IN6_IS_ADDR_LINKLOCAL(&client->sin6_addr)) {
        return client->sin6_scope_id == 3;
    }
    return memcmp(&client->sin6_addr, &served, 8) == 0;
}

static void test_client_is_host(void **state)
{
    intent in = make_intent();
    struct sockaddr_in6 a = addr("2001:db8:1::17");
    assert_true(boot_client_is_host(&in, &a, NULL, NULL));
    assert_true(boot_client_is_host(&in, &a, served_link, NULL));
    /* SLAAC: 52:54:00:12:34:56 → 5054:00ff:fe12:3456 in the reserved
     * address's /64 */
    a = addr("2001:db8:1:0:5054:ff:fe12:3456");
    assert_true(boot_client_is_host(&in, &a, NULL, NULL));
    assert_true(boot_client_is_host(&in, &a, served_link, NULL));
    /* link-local: on a served interface only, when the agent can tell */
    a = addr("fe80::5054:ff:fe12:3456");
    assert_true(boot_client_is_host(&in, &a, NULL, NULL));
    a.sin6_scope_id = 3;
    assert_true(boot_client_is_host(&in, &a, served_link, NULL));
    a.sin6_scope_id = 2;
    assert_false(boot_client_is_host(&in, &a, served_link, NULL));
    /* fe80::/10 outside fe80::/64 is not link-local unicast */
    a = addr("fe80:1::5054:ff:fe12:3456");
    a.sin6_scope_id = 3;
    assert_false(boot_client_is_host(&in, &a, NULL, NULL));
    assert_false(boot_client_is_host(&in, &a, served_link, NULL));
    /* a global prefix of a served interface */
    a = addr("2001:db8:5:0:5054:ff:fe12:3456");
    assert_false(boot_client_is_host(&in, &a, NULL, NULL));
    assert_true(boot_client_is_host(&in, &a, served_link, NULL));
    /* The EUI-64 of its MAC under a prefix of no served link: a machine
     * anywhere that knows the MAC. */
    a = addr("2001:db8:99:0:5054:ff:fe12:3456");
    assert_false(boot_client_is_host(&in, &a, NULL, NULL));
    assert_false(boot_client_is_host(&in, &a, served_link, NULL));
    a = addr("2001:db8:1:1:5054:ff:fe12:3456"); /* next to the reserved /64 */
    assert_false(boot_client_is_host(&in, &a, served_link, NULL));
    /* the universal/local bit not flipped: not its EUI-64 */
    on_link_calls = 0;
    a = addr("2001:db8:5:0:5254:ff:fe12:3456");
    assert_false(boot_client_is_host(&in, &a, served_link, NULL));
    assert_int_equal(on_link_calls, 0); /* no interface lookups for strangers */
    a = addr("2001:db8:1::18");
    assert_false(boot_client_is_host(&in, &a, served_link, NULL));
    a = addr("::ffff:192.0.2.17");
    assert_false(boot_client_is_host(&in, &a, served_link, NULL));
}

static void test_find_client(void **state)
{
    intent_set *set = NULL;
    assert_int_equal(intent_set_new(1, &set), 0);
    model_profile p = { .name = strdup("p") };
    assert_int_equal(intent_set_add_profile(set, &p), 0);
    intent in = make_intent();
    in.install_id = strdup("id-a");
    in.host = strdup("web17");
    in.hostname = strdup("web17");
    in.token = strdup("0123456789abcdef");
    assert_int_equal(intent_set_add(set, &in, "p"), 0);
    struct sockaddr_in6 a = addr("2001:db8:5:0:5054:ff:fe12:3456");
    const intent *found = boot_find_client(set, &a, served_link, NULL);
    assert_non_null(found);
    assert_string_equal(found->host, "web17");
    a = addr("2001:db8:99:0:5054:ff:fe12:3456");
    assert_null(boot_find_client(set, &a, served_link, NULL));
    assert_null(boot_find_client(NULL, &a, served_link, NULL));
    intent_set_free(set);
}

static void test_form(void **state)
{
    const char *body = "phase=installing&percent=42&message=Installing+package+%28bash%29&x";
    const uint8_t *b = (const uint8_t *)body;
    size_t n = strlen(body);
    char out[64];
    assert_int_equal(boot_form_get(b, n, "phase", out, sizeof(out)), 1);
    assert_string_equal(out, "installing");
    assert_int_equal(boot_form_get(b, n, "percent", out, sizeof(out)), 1);
    assert_string_equal(out, "42");
    assert_int_equal(boot_form_get(b, n, "message", out, sizeof(out)), 1);
    assert_string_equal(out, "Installing package (bash)");
    assert_int_equal(boot_form_get(b, n, "phas", out, sizeof(out)), 0);
    assert_int_equal(boot_form_get(b, n, "x", out, sizeof(out)), 0);
    assert_int_equal(boot_form_get(b, n, "message", out, 8), -E2BIG);
    /* a truncated escape is kept as is, never read past the end */
    const char *t = "message=ab%4";
    assert_int_equal(boot_form_get((const uint8_t *)t, strlen(t), "message", out, sizeof(out)), 1);
    assert_string_equal(out, "ab%4");
    assert_int_equal(boot_form_get(NULL, 0, "phase", out, sizeof(out)), 0);
}

/* A set with two installs of profile "p", of kind `kind`. */
static intent_set *two_installs_of(profile_kind kind)
{
    intent_set *set = NULL;
    assert_int_equal(intent_set_new(7, &set), 0);
    model_profile p = { .name = strdup("p"), .kind = kind };
    assert_int_equal(intent_set_add_profile(set, &p), 0);
    for (int i = 0; i < 2; i++) {
        intent in = make_intent();
        in.macs[0][5] = (uint8_t)(0x56 + i);
        in.install_id = strdup(i ? "id-b" : "id-a");
        in.host = strdup(i ? "web18" : "web17");
        in.hostname = strdup(in.host);
        in.token = strdup("0123456789abcdef");
        assert_int_equal(intent_set_add(set, &in, "p"), 0);
    }
    return set;
}

static intent_set *two_installs(void)
{
    return two_installs_of(PROFILE_INSTALL);
}

static char completed_seen[64];

/* Frees `p` and lets the loop close its handles. */
static void progress_done(progress *p, uv_loop_t *loop)
{
    progress_free(p);
    uv_run(loop, UV_RUN_DEFAULT);
}

static void remove_tree(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void on_completed(void *userdata, const char *install_id)
{
    snprintf(completed_seen, sizeof(completed_seen), "%s", install_id);
}

static void test_completed(void **state)
{
    char dir[] = "/tmp/test_boot.XXXXXX";
    assert_non_null(mkdtemp(dir));
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    progress *p = NULL;
    assert_int_equal(progress_new(&loop, dir, NULL, &p), 0);
    progress_on_completed(p, on_completed, NULL);

    intent_set *set = two_installs();
    const intent *a = intent_set_find_install(set, "id-a");
    assert_int_equal(
        progress_emit(p, a, RACKBOOT__V1__PHASE__PHASE_INSTALLING, 10, "x", NULL, NULL, 0), 0);
    assert_string_equal(completed_seen, "");
    assert_int_equal(
        progress_emit(p, a, RACKBOOT__V1__PHASE__PHASE_INSTALLED, 100, NULL, NULL, NULL, 0), 0);
    /* Completed after the loop's sync (at once here: no journal). */
    assert_string_equal(completed_seen, "");
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_string_equal(completed_seen, "id-a");
    assert_true(progress_is_completed(p, "id-a"));
    assert_false(progress_is_completed(p, "id-b"));

    intent_set *filtered = NULL;
    assert_int_equal(progress_filter(p, set, &filtered), 0);
    assert_int_equal(intent_set_size(filtered), 1);
    assert_int_equal(intent_set_generation(filtered), 7);
    assert_null(intent_set_find_install(filtered, "id-a"));
    const intent *b = intent_set_find_install(filtered, "id-b");
    assert_non_null(b);
    assert_string_equal(b->profile->name, "p");
    /* An image deploy: written marks the intent netboot_done (no more
     * answers to its netboots), it ends when the installed system phones
     * home. */
    assert_false(b->netboot_done);
    assert_int_equal(
        progress_emit(p, b, RACKBOOT__V1__PHASE__PHASE_WRITTEN, 100, NULL, NULL, NULL, 0), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_false(progress_is_completed(p, "id-b"));
    assert_true(progress_is_written(p, "id-b"));
    intent_set *marked = NULL;
    assert_int_equal(progress_filter(p, two_installs(), &marked), 0);
    assert_true(intent_set_find_install(marked, "id-b")->netboot_done);
    assert_null(intent_set_find_install(marked, "id-a"));
    intent_set_free(marked);
    assert_int_equal(
        progress_emit(p, b, RACKBOOT__V1__PHASE__PHASE_FIRST_BOOT, 100, NULL, NULL, NULL, 0), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_string_equal(completed_seen, "id-b");
    assert_true(progress_is_completed(p, "id-b"));
    intent_set_free(filtered);
    progress_done(p, &loop);

    /* A restart remembers; a set without completed installs is kept as is. */
    assert_int_equal(progress_new(&loop, dir, NULL, &p), 0);
    assert_true(progress_is_completed(p, "id-a"));
    assert_true(progress_is_completed(p, "id-b"));
    set = two_installs();
    assert_int_equal(progress_filter(p, set, &filtered), 0);
    assert_int_equal(intent_set_size(filtered), 0);
    intent_set_free(filtered);
    progress_done(p, &loop);
    assert_int_equal(uv_loop_close(&loop), 0);
    remove_tree(dir);
}

/* A Debian installer's (and an image deploy's) `installed` says the system
 * is on its disk: no more netboot answers, the intent stays for the
 * phone-home, and only first_boot completes the install. A kickstart
 * install's `installed` completes it (test_completed). */
static void test_installed_then_first_boot(void **state)
{
    static const profile_kind kinds[] = { PROFILE_DEBIAN_INSTALLER, PROFILE_IMAGE };
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        char dir[] = "/tmp/test_boot.XXXXXX";
        assert_non_null(mkdtemp(dir));
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        progress *p = NULL;
        assert_int_equal(progress_new(&loop, dir, NULL, &p), 0);
        completed_seen[0] = '\0';
        progress_on_completed(p, on_completed, NULL);

        intent_set *set = two_installs_of(kinds[k]);
        const intent *a = intent_set_find_install(set, "id-a");
        assert_int_equal(
            progress_emit(p, a, RACKBOOT__V1__PHASE__PHASE_INSTALLED, 100, NULL, NULL, NULL, 0), 0);
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        assert_string_equal(completed_seen, "");
        assert_false(progress_is_completed(p, "id-a"));
        assert_true(progress_is_written(p, "id-a"));
        intent_set *marked = NULL;
        assert_int_equal(progress_filter(p, set, &marked), 0);
        assert_int_equal(intent_set_size(marked), 2);
        assert_true(intent_set_find_install(marked, "id-a")->netboot_done);
        assert_false(intent_set_find_install(marked, "id-b")->netboot_done);

        a = intent_set_find_install(marked, "id-a");
        assert_int_equal(
            progress_emit(p, a, RACKBOOT__V1__PHASE__PHASE_FIRST_BOOT, 100, NULL, NULL, NULL, 0),
            0);
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        assert_string_equal(completed_seen, "id-a");
        assert_true(progress_is_completed(p, "id-a"));
        intent_set_free(marked);
        progress_done(p, &loop);
        assert_int_equal(uv_loop_close(&loop), 0);
        remove_tree(dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_is_host),
        cmocka_unit_test(test_find_client),
        cmocka_unit_test(test_form),
        cmocka_unit_test(test_completed),
        cmocka_unit_test(test_installed_then_first_boot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
