/* rack-agent/standalone: the local hosts file becomes intents, its mistakes
 * are reported with their lines, and install ids survive reloads. */
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

#include "fileio.h"
#include "standalone/standalone.h"

static char dir[64];
static char hosts[96];
static char ks[96];
static char installs[96];

#define SHA_A                                                                                      \
    "sha256="                                                                                      \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B                                                                                      \
    "sha256="                                                                                      \
    "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

static const char good[] = "[profile el9]\n"
                           "kernel = http://m/vmlinuz " SHA_A "\n"
                           "initrd = http://m/initrd.img " SHA_B "\n"
                           "stage2 = https://m/install.img " SHA_A "\n"
                           "file.updates.img = http://m/updates.img " SHA_B "\n"
                           "cmdline = console=ttyS0 inst.debug\n"
                           "kickstart = el9.ks\n"
                           "overlay = yes\n"
                           "ip = dhcp6\n"
                           "keep_ra = no\n"
                           "root_device = /dev/disk/by-path/pci-0000:00:04.0\n"
                           "uefi_boot = uki\n"
                           "[host web17]\n"
                           "mac = 52:54:00:12:34:56 52-54-00-12-34-57\n"
                           "address = 2001:db8:1::17\n"
                           "prefix = 48\n"
                           "dns = 2001:db8:1::53 2001:db8:1::54\n"
                           "search = a.example b.example\n"
                           "install = el9\n"
                           "[host web18]\n"
                           "mac = 52:54:00:12:34:58\n"
                           "address = 2001:db8:1::18\n"
                           "gateway = 2001:db8:1::2\n"
                           "hostname = web18.rack1\n"
                           "install = none\n"
                           "[host web19]\n"
                           "mac = 52:54:00:12:34:59\n"
                           "address = 2001:db8:1::19\n"
                           "install = el9\n";

static void write_file(const char *p, const char *text)
{
    assert_int_equal(fileio_write_atomic(p, text, strlen(text), 0644), 0);
}

static int setup(void **state)
{
    strcpy(dir, "/tmp/test_agent_standalone.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(hosts, sizeof(hosts), "%s/hosts.conf", dir);
    snprintf(ks, sizeof(ks), "%s/el9.ks", dir);
    snprintf(installs, sizeof(installs), "%s/installs", dir);
    write_file(ks, "text\nreboot\n");
    return 0;
}

static int teardown(void **state)
{
    unlink(hosts);
    unlink(ks);
    unlink(installs);
    rmdir(dir);
    return 0;
}

static const standalone_defaults defs = {
    .has_gateway = true,
    .gateway = { .s6_addr = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 1 } },
};

static int load(standalone_installs *reg, diag **ret_d, intent_set **ret)
{
    *ret_d = diag_new();
    assert_non_null(*ret_d);
    return standalone_load(hosts, &defs, reg, 1, *ret_d, ret);
}

static bool has_problem(const diag *d, unsigned line, const char *needle)
{
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "%s:%u: ", hosts, line);
    for (size_t i = 0; i < diag_count(d); i++) {
        const char *e = diag_get(d, i);
        if (strncmp(e, prefix, strlen(prefix)) == 0 && strstr(e, needle)) {
            return true;
        }
    }
    return false;
}

static void test_hosts_and_profiles(void **state)
{
    write_file(hosts, good);
    standalone_installs *reg;
    assert_int_equal(standalone_installs_load(dir, &reg), 0);
    diag *d;
    intent_set *set = NULL;
    int r = load(reg, &d, &set);
    diag_print(d, stderr);
    assert_int_equal(r, 0);
    /* web18 has install = none: no intent. */
    assert_int_equal(intent_set_size(set), 2);
    const uint8_t mac2[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x57 };
    const intent *in = intent_set_find_mac(set, mac2);
    assert_non_null(in);
    assert_string_equal(in->host, "web17");
    assert_string_equal(in->hostname, "web17");
    assert_int_equal(in->n_macs, 2);
    assert_int_equal(in->prefix_len, 48);
    assert_true(in->has_gateway);
    assert_memory_equal(&in->gateway, &defs.gateway, 16);
    assert_int_equal(in->n_dns, 2);
    assert_int_equal(in->n_search, 2);
    assert_string_equal(in->search[1], "b.example");
    assert_int_equal(strlen(in->install_id), 36);
    assert_true(strlen(in->token) >= 32);

    const uint8_t mac18[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x58 };
    assert_null(intent_set_find_mac(set, mac18));

    const model_profile *p = in->profile;
    assert_string_equal(p->name, "el9");
    assert_int_equal(p->n_images, 4);
    assert_string_equal(p->images[0].name, "vmlinuz");
    assert_int_equal(p->images[0].kind, IMAGE_KERNEL);
    assert_string_equal(p->images[0].url, "http://m/vmlinuz");
    assert_int_equal(p->images[0].sha256[0], 0xaa);
    assert_string_equal(p->images[1].name, "initrd.img");
    assert_int_equal(p->images[1].kind, IMAGE_INITRD);
    assert_int_equal(p->images[1].sha256[31], 0xbb);
    assert_string_equal(p->images[2].name, "squashfs.img");
    assert_int_equal(p->images[2].kind, IMAGE_STAGE2);
    assert_string_equal(p->images[3].name, "updates.img");
    assert_int_equal(p->images[3].kind, IMAGE_OTHER);
    assert_string_equal(p->cmdline, "console=ttyS0 inst.debug");
    assert_string_equal(p->kickstart, "text\nreboot\n");
    assert_true(p->overlay);
    assert_int_equal(p->ip, IP_MODE_DHCP6);
    assert_false(p->keep_ra);
    assert_string_equal(p->root_device, "/dev/disk/by-path/pci-0000:00:04.0");
    assert_int_equal(p->uefi, UEFI_BOOT_UKI);

    intent_set_free(set);
    diag_free(d);
    standalone_installs_free(reg);
}

static void test_errors_with_lines(void **state)
{
    write_file(hosts, "[profile el9]\n"                             /* 1 */
                      "kernel = http://m/vmlinuz\n"                 /* 2 */
                      "initrd = ftp://m/initrd " SHA_A "\n"         /* 3 */
                      "ip = sometimes\n"                            /* 4 */
                      "kickstart = missing.ks\n"                    /* 5 */
                      "[host a]\n"                                  /* 6 */
                      "mac = 52:54:00:00:00:01\n"                   /* 7 */
                      "address = 2001:db8::zz\n"                    /* 8 */
                      "install = el9\n"                             /* 9 */
                      "[host b]\n"                                  /* 10 */
                      "mac = 52:54:00:00:00:02 52:54:00:00:00:01\n" /* 11 */
                      "address = 2001:db8::2\n"                     /* 12 */
                      "install = el10\n"                            /* 13 */
                      "[host c]\n"                                  /* 14 */
                      "mac = 52:54:00:00:00:0g\n"                   /* 15 */
                      "address = fe80::1\n"                         /* 16 */
                      "prefix = 129\n"                              /* 17 */
                      "size = xl\n"                                 /* 18 */
                      "[host a]\n"                                  /* 19 */
                      "[rack x]\n");                                /* 20 */
    diag *d;
    intent_set *set = NULL;
    assert_int_equal(load(NULL, &d, &set), -EINVAL);
    assert_null(set);
    assert_true(has_problem(d, 2, "URL sha256=HEX"));
    assert_true(has_problem(d, 3, "http://"));
    assert_true(has_problem(d, 1, "needs a valid kernel"));
    assert_true(has_problem(d, 4, "static or dhcp6"));
    assert_true(has_problem(d, 5, "missing.ks"));
    assert_true(has_problem(d, 8, "not an IPv6 address"));
    /* The duplicate names both hosts' lines. */
    assert_true(
        has_problem(d, 11, "52:54:00:00:00:01 of host b is already used by host a (line 7)"));
    assert_true(has_problem(d, 13, "unknown profile \"el10\""));
    assert_true(has_problem(d, 15, "not a MAC"));
    assert_true(has_problem(d, 16, "cannot be given"));
    assert_true(has_problem(d, 17, "prefix"));
    assert_true(has_problem(d, 18, "unknown key \"size\""));
    assert_true(has_problem(d, 19, "host a defined twice (first at line 6)"));
    assert_true(has_problem(d, 20, "unknown section"));
    diag_free(d);
}

/* uefi_boot is ipxe (the default) or uki; anything else is named. */
static void test_uefi_boot(void **state)
{
    (void)state;
    write_file(hosts, "[profile el9]\n"
                      "kernel = http://m/vmlinuz " SHA_A "\n"
                      "initrd = http://m/initrd.img " SHA_B "\n"
                      "uefi_boot = UKI\n"); /* 4 */
    diag *d;
    intent_set *set = NULL;
    assert_int_equal(load(NULL, &d, &set), -EINVAL);
    assert_true(has_problem(d, 4, "uefi_boot: expected ipxe or uki, not \"UKI\""));
    diag_free(d);

    write_file(hosts, "[profile el9]\n"
                      "kernel = http://m/vmlinuz " SHA_A "\n"
                      "initrd = http://m/initrd.img " SHA_B "\n"
                      "uefi_boot = ipxe\n"
                      "[profile el10]\n"
                      "kernel = http://m/vmlinuz " SHA_A "\n"
                      "initrd = http://m/initrd.img " SHA_B "\n");
    assert_int_equal(load(NULL, &d, &set), 0);
    assert_int_equal(intent_set_find_profile(set, "el9")->uefi, UEFI_BOOT_IPXE);
    assert_int_equal(intent_set_find_profile(set, "el10")->uefi, UEFI_BOOT_IPXE);
    intent_set_free(set);
    diag_free(d);
}

/* root_device is auto or a /dev/ path that goes on a command line as is. */
static void test_root_device(void **state)
{
    write_file(hosts, "[profile el9]\n"
                      "kernel = http://m/vmlinuz " SHA_A "\n"
                      "initrd = http://m/initrd.img " SHA_B "\n"
                      "root_device = /dev/vda; reboot\n" /* 4 */
                      "[profile el10]\n"
                      "kernel = http://m/vmlinuz " SHA_A "\n"
                      "initrd = http://m/initrd.img " SHA_B "\n"
                      "root_device = /etc/shadow\n"); /* 8 */
    diag *d;
    intent_set *set = NULL;
    assert_int_equal(load(NULL, &d, &set), -EINVAL);
    assert_true(has_problem(d, 4, "root_device: expected auto or a /dev/ path"));
    assert_true(has_problem(d, 8, "root_device: expected auto or a /dev/ path"));
    diag_free(d);

    write_file(hosts, "[profile el9]\n"
                      "kernel = http://m/vmlinuz " SHA_A "\n"
                      "initrd = http://m/initrd.img " SHA_B "\n"
                      "root_device = auto\n"
                      "[profile el10]\n"
                      "kernel = http://m/vmlinuz " SHA_A "\n"
                      "initrd = http://m/initrd.img " SHA_B "\n");
    assert_int_equal(load(NULL, &d, &set), 0);
    assert_string_equal(intent_set_find_profile(set, "el9")->root_device, "auto");
    assert_null(intent_set_find_profile(set, "el10")->root_device);
    intent_set_free(set);
    diag_free(d);
}

static char *id_of(const intent_set *set, uint8_t last)
{
    const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, last };
    const intent *in = intent_set_find_mac(set, mac);
    assert_non_null(in);
    char *s = NULL;
    assert_true(asprintf(&s, "%s %s", in->install_id, in->token) > 0);
    return s;
}

static void test_install_ids_persist(void **state)
{
    write_file(hosts, good);
    standalone_installs *reg;
    diag *d;
    intent_set *set;
    assert_int_equal(standalone_installs_load(dir, &reg), 0);
    assert_int_equal(load(reg, &d, &set), 0);
    char *web17 = id_of(set, 0x56), *web19 = id_of(set, 0x59);
    assert_string_not_equal(web17, web19);
    intent_set_free(set);
    diag_free(d);
    standalone_installs_free(reg);

    /* A restart: the registry is read back from disk, ids are the same. */
    assert_int_equal(standalone_installs_load(dir, &reg), 0);
    assert_int_equal(load(reg, &d, &set), 0);
    char *again17 = id_of(set, 0x56), *again19 = id_of(set, 0x59);
    assert_string_equal(web17, again17);
    assert_string_equal(web19, again19);
    intent_set_free(set);
    diag_free(d);

    /* web19's entry changes: a new install for it only (same registry, a
     * SIGHUP reload). */
    size_t len = strlen(good);
    char *edited = malloc(len + 32);
    assert_non_null(edited);
    snprintf(edited, len + 32, "%sprefix = 56\n", good);
    write_file(hosts, edited);
    assert_int_equal(load(reg, &d, &set), 0);
    char *new17 = id_of(set, 0x56), *new19 = id_of(set, 0x59);
    assert_string_equal(web17, new17);
    assert_string_not_equal(web19, new19);
    intent_set_free(set);
    diag_free(d);

    /* An invalid file on reload fails and leaves the registry as it was:
     * the edited file loaded again keeps the ids it had. */
    write_file(hosts, "[host x]\n");
    assert_int_equal(load(reg, &d, &set), -EINVAL);
    diag_free(d);
    write_file(hosts, edited);
    assert_int_equal(load(reg, &d, &set), 0);
    char *after17 = id_of(set, 0x56), *after19 = id_of(set, 0x59);
    assert_string_equal(after17, new17);
    assert_string_equal(after19, new19);
    intent_set_free(set);
    diag_free(d);
    standalone_installs_free(reg);
    free(edited);
    free(after17);
    free(after19);
    free(web17);
    free(web19);
    free(again17);
    free(again19);
    free(new17);
    free(new19);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hosts_and_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_with_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uefi_boot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_install_ids_persist, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
