/* model/hostsfile: a [host]'s BMC keys (bmc, bmc_user, bmc_password_file
 * relative to the hosts file, firmware), their errors with file and line,
 * and that no error quotes a password or a URL's credentials; a kind =
 * debian-installer profile's keys and what it refuses, at its line. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "diag.h"
#include "model/hostsfile.h"

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/test_hostsfile.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void write_file(const char *name, const char *content, mode_t mode, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* All the problems of a diag, one per line, for strstr. */
static char *problems(const diag *d)
{
    size_t n = 1;
    for (size_t i = 0; i < diag_count(d); i++) {
        n += strlen(diag_get(d, i)) + 1;
    }
    char *s = calloc(1, n);
    assert_non_null(s);
    for (size_t i = 0; i < diag_count(d); i++) {
        strcat(s, diag_get(d, i));
        strcat(s, "\n");
    }
    return s;
}

/* `all` (problems()) has "CONF:LINE: TEXT". */
static void expect_problem(const char *all, const char *conf, int line, const char *text)
{
    char want[512];
    snprintf(want, sizeof(want), "%s:%d: %s", conf, line, text);
    if (!strstr(all, want)) {
        fail_msg("no \"%s\" in:\n%s", want, all);
    }
}

static void test_bmc_keys(void **state)
{
    char conf[128], pw[128];
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/secrets", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file("secrets/web17.pw", "Hunter2\n", 0600, pw, sizeof(pw));
    write_file("hosts.conf",
               "[host web17]\n"
               "mac = 52:54:00:12:34:56\n"
               "address = 2001:db8:1::17\n"
               "bmc = ipmi://[2001:db8:ff::17]:623\n"
               "bmc_user = admin\n"
               "bmc_password_file = secrets/web17.pw\n"
               "firmware = UEFI\n"
               "[host web18]\n"
               "mac = 52:54:00:12:34:57\n"
               "address = 2001:db8:1::18\n"
               "firmware = bios\n"
               "[host web19]\n"
               "mac = 52:54:00:12:34:58\n"
               "address = 2001:db8:1::19\n"
               "bmc = ipmi://bmc19.example.com\n",
               0600, conf, sizeof(conf));
    diag *d = diag_new();
    hostsfile *hf = NULL;
    assert_int_equal(hostsfile_read(conf, NULL, d, &hf), 0);
    assert_int_equal(diag_count(d), 0);
    assert_int_equal(hf->n_hosts, 3);
    const hostsfile_host *h = &hf->hosts[0];
    assert_string_equal(h->bmc_url, "ipmi://[2001:db8:ff::17]:623");
    assert_string_equal(h->bmc_user, "admin");
    assert_string_equal(h->bmc_password, "Hunter2"); /* relative to the hosts file */
    assert_int_equal(h->firmware, MODEL_FIRMWARE_UEFI);
    h = &hf->hosts[1];
    assert_null(h->bmc_url);
    assert_null(h->bmc_user);
    assert_null(h->bmc_password);
    assert_int_equal(h->firmware, MODEL_FIRMWARE_BIOS);
    h = &hf->hosts[2];
    assert_string_equal(h->bmc_url, "ipmi://bmc19.example.com");
    assert_null(h->bmc_user);
    assert_null(h->bmc_password); /* a BMC without a password */
    assert_int_equal(h->firmware, MODEL_FIRMWARE_UNKNOWN);
    hostsfile_free(hf);
    diag_free(d);
}

static void test_bmc_key_errors(void **state)
{
    char conf[128], pw[128];
    write_file("loose.pw", "Hunter2\n", 0644, pw, sizeof(pw));
    write_file("empty.pw", "\n", 0600, pw, sizeof(pw));
    write_file("hosts.conf",
               "[host a1]\n"                                  /* 1 */
               "mac = 52:54:00:12:34:01\n"                    /* 2 */
               "address = 2001:db8:1::1\n"                    /* 3 */
               "bmc = ipmi://root:Hunter2@[2001:db8:ff::1]\n" /* 4 */
               "bmc_user = admin\n"                           /* 5 */
               "[host a2]\n"                                  /* 6 */
               "mac = 52:54:00:12:34:02\n"                    /* 7 */
               "address = 2001:db8:1::2\n"                    /* 8 */
               "bmc = http://[2001:db8:ff::2]\n"              /* 9 */
               "bmc_password_file = loose.pw\n"               /* 10 */
               "firmware = efi\n"                             /* 11 */
               "[host a3]\n"                                  /* 12 */
               "mac = 52:54:00:12:34:03\n"                    /* 13 */
               "address = 2001:db8:1::3\n"                    /* 14 */
               "bmc = ipmi://2001:db8:ff::3\n"                /* 15 */
               "bmc_password_file = empty.pw\n"               /* 16 */
               "bmc_user =\n"                                 /* 17 */
               "[host a4]\n"                                  /* 18 */
               "mac = 52:54:00:12:34:04\n"                    /* 19 */
               "address = 2001:db8:1::4\n"                    /* 20 */
               "bmc = ipmi://[2001:db8:ff::4]\n"              /* 21 */
               "bmc_password_file = missing.pw\n",            /* 22 */
               0600, conf, sizeof(conf));
    diag *d = diag_new();
    hostsfile *hf = NULL;
    assert_int_equal(hostsfile_read(conf, NULL, d, &hf), -EINVAL);
    assert_null(hf);
    char *all = problems(d);
    expect_problem(all, conf, 4, "bmc: ");
    expect_problem(
        all, conf, 1,
        "[host a1]: bmc_user and bmc_password_file need a bmc URL"); /* the bad URL is none */
    expect_problem(all, conf, 9, "bmc: ");
    char loose[160];
    snprintf(loose, sizeof(loose), "bmc_password_file: %s/loose.pw: mode 0644 gives others access",
             dir);
    expect_problem(all, conf, 10, loose);
    expect_problem(all, conf, 11, "firmware: expected uefi or bios, not \"efi\"");
    expect_problem(all, conf, 15, "bmc: ");
    snprintf(loose, sizeof(loose), "bmc_password_file: %s/empty.pw: empty", dir);
    expect_problem(all, conf, 16, loose);
    expect_problem(all, conf, 17, "bmc_user: expected printable ASCII");
    snprintf(loose, sizeof(loose), "bmc_password_file: %s/missing.pw: No such file", dir);
    expect_problem(all, conf, 22, loose);
    /* Neither the URL's nor the files' secrets are quoted. */
    assert_null(strstr(all, "Hunter2"));
    free(all);
    diag_free(d);
}

#define SHA_A "sha256=00000000000000000000000000000000000000000000000000000000000000aa"

static void test_debian_installer_profile(void **state)
{
    char conf[128], tmpl[128];
    write_file("deb12.preseed", "d-i mirror/suite string bookworm\n# {{hostname}}\n", 0644, tmpl,
               sizeof(tmpl));
    write_file("hosts.conf",
               "[profile deb12-di]\n"
               "kind = debian-installer\n"
               "kernel = http://m/linux " SHA_A "\n"
               "initrd = http://m/initrd.gz " SHA_A "\n"
               "preseed = deb12.preseed\n"
               "ssh_authorized_keys = ssh-ed25519 AAAAC3Nz ops@example.com\n"
               "root_device = /dev/vda\n",
               0600, conf, sizeof(conf));
    diag *d = diag_new();
    hostsfile *hf = NULL;
    assert_int_equal(hostsfile_read(conf, NULL, d, &hf), 0);
    assert_int_equal(diag_count(d), 0);
    assert_int_equal(hf->n_profiles, 1);
    const model_profile *p = &hf->profiles[0].p;
    assert_int_equal(p->kind, PROFILE_DEBIAN_INSTALLER);
    assert_string_equal(p->kickstart, "d-i mirror/suite string bookworm\n# {{hostname}}\n");
    assert_int_equal(p->n_ssh_keys, 1);
    assert_false(p->overlay);
    hostsfile_free(hf);
    diag_free(d);

    write_file("hosts.conf",
               "[profile bad-di]\n"                        /* 1 */
               "kind = debian-installer\n"                 /* 2 */
               "kernel = http://m/linux " SHA_A "\n"       /* 3 */
               "kickstart = deb12.preseed\n"               /* 4 */
               "stage2 = http://m/install.img " SHA_A "\n" /* 5 */
               "overlay = yes\n"                           /* 6 */
               "ip = dhcp6\n"                              /* 7 */
               "user_data = deb12.preseed\n"               /* 8 */
               "[profile el9]\n"                           /* 9 */
               "kernel = http://m/vmlinuz " SHA_A "\n"     /* 10 */
               "initrd = http://m/initrd.img " SHA_A "\n"  /* 11 */
               "preseed = deb12.preseed\n",                /* 12 */
               0600, conf, sizeof(conf));
    d = diag_new();
    assert_int_equal(hostsfile_read(conf, NULL, d, &hf), -EINVAL);
    char *all = problems(d);
    expect_problem(all, conf, 1,
                   "[profile bad-di] kind = debian-installer needs a valid kernel and initrd");
    expect_problem(all, conf, 4,
                   "kickstart: kind = debian-installer reads a preseed: preseed = FILE");
    expect_problem(all, conf, 5, "stage2: not for kind = debian-installer");
    expect_problem(all, conf, 6, "overlay: not for kind = debian-installer");
    expect_problem(all, conf, 7,
                   "ip: kind = debian-installer configures the host's static address");
    expect_problem(all, conf, 8, "user_data: only for kind = image");
    expect_problem(all, conf, 12, "preseed: only for kind = debian-installer");
    free(all);
    diag_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bmc_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bmc_key_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debian_installer_profile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
