/* model/profile: the one image-kind table, a profile's rules, and that a
 * copy of a profile carries every field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/profile.h"

static void test_image_kind_table(void **state)
{
    assert_string_equal(image_kind_file(IMAGE_KERNEL), "vmlinuz");
    assert_string_equal(image_kind_path(IMAGE_KERNEL), "vmlinuz");
    assert_string_equal(image_kind_file(IMAGE_INITRD), "initrd.img");
    assert_string_equal(image_kind_path(IMAGE_INITRD), "initrd.img");
    /* Anaconda's inst.stage2=<dir>/ looks for LiveOS/squashfs.img. */
    assert_string_equal(image_kind_file(IMAGE_STAGE2), "squashfs.img");
    assert_string_equal(image_kind_path(IMAGE_STAGE2), "LiveOS/squashfs.img");
    assert_null(image_kind_file(IMAGE_OTHER));
    assert_null(image_kind_path(IMAGE_OTHER));

    assert_int_equal(image_kind_of_path("vmlinuz"), IMAGE_KERNEL);
    assert_int_equal(image_kind_of_path("initrd.img"), IMAGE_INITRD);
    assert_int_equal(image_kind_of_path("LiveOS/squashfs.img"), IMAGE_STAGE2);
    /* The stage2's name is not where it is served. */
    assert_int_equal(image_kind_of_path("squashfs.img"), IMAGE_OTHER);
    assert_int_equal(image_kind_of_path("updates.img"), IMAGE_OTHER);

    model_image stage2 = { .name = (char[]){ "squashfs.img" }, .kind = IMAGE_STAGE2 };
    model_image extra = { .name = (char[]){ "updates.img" }, .kind = IMAGE_OTHER };
    assert_string_equal(model_image_path(&stage2), "LiveOS/squashfs.img");
    assert_string_equal(model_image_path(&extra), "updates.img");

    image_kind k;
    /* An image profile's disk image: one name whatever its compression. */
    assert_string_equal(image_kind_file(IMAGE_DISK), "disk.img");
    assert_string_equal(image_kind_path(IMAGE_DISK), "disk.img");
    assert_int_equal(image_kind_of_path("disk.img"), IMAGE_DISK);

    for (image_kind i = IMAGE_KERNEL; i <= IMAGE_DISK; i++) {
        assert_int_equal(image_kind_from_string(image_kind_to_string(i), &k), 0);
        assert_int_equal(k, i);
    }
    assert_int_equal(image_kind_from_string("KERNEL", &k), 0);
    assert_int_equal(image_kind_from_string("kernels", &k), -EINVAL);
    assert_string_equal(image_kind_to_string((image_kind)99), "unknown");
}

static void test_root_device_valid(void **state)
{
    static const char *const good[] = {
        "auto",
        "/dev/vda",
        "/dev/nvme0n1",
        "/dev/disk/by-path/pci-0000:00:04.0",
        "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4",
        "/dev/disk/by-id/ata-Samsung_SSD_860_EVO_1TB_S3Z9NB0K123456X",
        "/dev/disk/by-path/pci-0000:00:1f.2-ata-1.0+x",
    };
    static const char *const bad[] = {
        "",
        "AUTO",
        "vda",
        "/dev/",
        "/dev",
        "/etc/passwd",
        "/dev/../etc",
        "/dev/./vda",
        "/dev/vda/",
        "/dev//vda",
        "/dev/disk/..",
        "/dev/disk/.",
        "/dev/v da",
        "/dev/vda\"",
        "/dev/$(reboot)",
        "/dev/vda;x",
        "/dev/vd`a`",
        "/dev/vd\\a",
        "/dev/vda\n",
        "/dev/vda\t",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(model_root_device_valid(good[i]));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(model_root_device_valid(bad[i]));
    }
    char long_path[MODEL_ROOT_DEVICE_MAX + 2];
    memset(long_path, 'a', sizeof(long_path) - 1);
    memcpy(long_path, "/dev/", 5);
    long_path[MODEL_ROOT_DEVICE_MAX] = '\0';
    assert_true(model_root_device_valid(long_path));
    long_path[MODEL_ROOT_DEVICE_MAX] = 'a';
    long_path[MODEL_ROOT_DEVICE_MAX + 1] = '\0';
    assert_false(model_root_device_valid(long_path));
}

/* A deep copy equals its source field by field and shares no pointer: a
 * field added to model_profile is carried without a copy of its own. */
static void test_profile_copy(void **state)
{
    model_image images[2] = {
        { .name = (char[]){ "vmlinuz" },
          .kind = IMAGE_KERNEL,
          .url = (char[]){ "http://m/k" },
          .size = 7 },
        { .name = (char[]){ "initrd.img" }, .kind = IMAGE_INITRD, .url = (char[]){ "http://m/i" } },
    };
    images[0].sha256[0] = 0xaa;
    model_profile src = {
        .name = (char[]){ "el9" },
        .images = images,
        .n_images = 2,
        .cmdline = (char[]){ "console=ttyS0" },
        .kickstart = (char[]){ "text\n" },
        .overlay = true,
        .ip = IP_MODE_DHCP6,
        .uefi = UEFI_BOOT_UKI,
        .keep_ra = true,
        .any_source = true,
        .root_device = (char[]){ "/dev/vda" },
        .kind = PROFILE_IMAGE,
        .ssh_keys = (char *[]){ (char[]){ "ssh-ed25519 AAAA a" }, (char[]){ "ssh-rsa BBBB b" } },
        .n_ssh_keys = 2,
        .user_data = (char[]){ "#cloud-config\n" },
    };
    src.kickstart_sha256[31] = 0x55;
    model_profile dst;
    assert_int_equal(model_profile_copy(&src, &dst), 0);
    assert_string_equal(dst.name, "el9");
    assert_ptr_not_equal(dst.name, src.name);
    assert_string_equal(dst.cmdline, "console=ttyS0");
    assert_string_equal(dst.kickstart, "text\n");
    assert_string_equal(dst.root_device, "/dev/vda");
    assert_ptr_not_equal(dst.root_device, src.root_device);
    assert_memory_equal(dst.kickstart_sha256, src.kickstart_sha256, 32);
    assert_true(dst.overlay && dst.keep_ra && dst.any_source);
    assert_int_equal(dst.ip, IP_MODE_DHCP6);
    assert_int_equal(dst.uefi, UEFI_BOOT_UKI);
    assert_int_equal(dst.n_images, 2);
    assert_ptr_not_equal(dst.images, src.images);
    assert_string_equal(dst.images[0].url, "http://m/k");
    assert_int_equal(dst.images[0].size, 7);
    assert_int_equal(dst.images[0].sha256[0], 0xaa);
    assert_int_equal(dst.images[1].kind, IMAGE_INITRD);
    assert_ptr_equal(model_profile_image(&dst, IMAGE_INITRD), &dst.images[1]);
    assert_null(model_profile_image(&dst, IMAGE_STAGE2));
    assert_int_equal(dst.kind, PROFILE_IMAGE);
    assert_int_equal(dst.n_ssh_keys, 2);
    assert_ptr_not_equal(dst.ssh_keys, src.ssh_keys);
    assert_string_equal(dst.ssh_keys[1], "ssh-rsa BBBB b");
    assert_ptr_not_equal(dst.ssh_keys[1], src.ssh_keys[1]);
    assert_string_equal(dst.user_data, "#cloud-config\n");
    model_profile_clear(&dst);
    assert_null(dst.ssh_keys);
    assert_null(dst.name);
    assert_int_equal(dst.n_images, 0);

    /* Unset strings stay unset. */
    model_profile bare = { .name = (char[]){ "x" } };
    assert_int_equal(model_profile_copy(&bare, &dst), 0);
    assert_null(dst.cmdline);
    assert_null(dst.root_device);
    assert_null(dst.images);
    model_profile_clear(&dst);
}

/* The rules every profile the fleet holds obeys, each with its reason. */
static void test_profile_check(void **state)
{
    model_image images[3] = {
        { .name = (char[]){ "vmlinuz" }, .kind = IMAGE_KERNEL, .url = (char[]){ "http://m/k" } },
        { .name = (char[]){ "initrd.img" },
          .kind = IMAGE_INITRD,
          .url = (char[]){ "https://m/i" } },
        { .name = (char[]){ "vmlinuz" }, .kind = IMAGE_OTHER, .url = (char[]){ "http://m/x" } },
    };
    model_profile p = { .name = (char[]){ "el9" }, .images = images, .n_images = 2 };
    char why[160];
    assert_int_equal(model_profile_check(&p, why, sizeof(why)), 0);

    model_profile bad = p;
    bad.name = (char[]){ "-el9" };
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "invalid profile name");

    bad = p;
    bad.n_images = 1;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "exactly one kernel and one initrd"));

    bad = p;
    bad.n_images = 3;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "vmlinuz used twice"));

    bad = p;
    bad.ip = (ip_mode)7;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "ip mode"));

    bad = p;
    bad.root_device = (char[]){ "sda" };
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "root_device"));

    char cmdline[MODEL_CMDLINE_MAX + 2];
    memset(cmdline, 'x', sizeof(cmdline) - 1);
    cmdline[sizeof(cmdline) - 1] = '\0';
    bad = p;
    bad.cmdline = cmdline;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "cmdline too long"));
    cmdline[MODEL_CMDLINE_MAX] = '\0';
    assert_int_equal(model_profile_check(&bad, NULL, 0), 0);

    /* The controller takes http:// and https:// only (a standalone hosts
     * file may also name file:///: the agent itself fetches those). */
    model_image local[2] = { images[0], images[1] };
    local[1].url = (char[]){ "file:///srv/initrd.img" };
    bad = p;
    bad.images = local;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "http:// or https://"));
    local[1].url = images[1].url;
    local[1].name = (char[]){ ".hidden" };
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "invalid image file name"));

    assert_true(model_file_name_valid("updates.img"));
    assert_true(model_file_name_valid("a+b_c-1.2"));
    assert_false(model_file_name_valid(""));
    assert_false(model_file_name_valid(NULL));
    assert_false(model_file_name_valid("../x"));
    assert_false(model_file_name_valid("a/b"));
}

/* kind = image: one disk image and nothing an installer would boot; SSH
 * keys one printable line each; the image keys only with kind = image. */
static void test_image_profile_check(void **state)
{
    model_image disk = { .name = (char[]){ "disk.img" },
                         .kind = IMAGE_DISK,
                         .url = (char[]){ "http://m/deb12.raw.zst" } };
    char *keys[] = { (char[]){ "ssh-ed25519 AAAAC3Nz ops@example" },
                     (char[]){ "from=\"::1\" ssh-rsa AAAAB3 it's \"odd\": #x" } };
    model_profile p = { .name = (char[]){ "deb12" },
                        .kind = PROFILE_IMAGE,
                        .images = &disk,
                        .n_images = 1,
                        .ssh_keys = keys,
                        .n_ssh_keys = 2,
                        .user_data = (char[]){ "#cloud-config\npackages: [htop]\n" },
                        .root_device = (char[]){ "auto" } };
    char why[200];
    assert_int_equal(model_profile_check(&p, why, sizeof(why)), 0);

    model_profile bad = p;
    bad.kind = PROFILE_INSTALL;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "exactly one kernel"));

    model_image two[2] = {
        disk,
        { .name = (char[]){ "vmlinuz" }, .kind = IMAGE_KERNEL, .url = (char[]){ "http://m/k" } }
    };
    bad = p;
    bad.images = two;
    bad.n_images = 2;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "no kernel, initrd or stage2"));
    bad.n_images = 0;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);

    bad = p;
    bad.kickstart = (char[]){ "text\n" };
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "no kickstart"));
    bad = p;
    bad.overlay = true;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);

    char *evil[] = { (char[]){ "ssh-ed25519 AAAA ops\nhostname: evil" } };
    bad = p;
    bad.ssh_keys = evil;
    bad.n_ssh_keys = 1;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "ssh_authorized_keys line 1"));

    bad = p;
    bad.user_data = (char[]){ "MIME-Version: 1.0\nContent-Type: multipart/mixed\n" };
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "MIME"));

    bad = p;
    bad.kind = (profile_kind)9;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "invalid kind"));

    /* An install profile with image settings is refused too. */
    model_image kernel_initrd[2] = {
        { .name = (char[]){ "vmlinuz" }, .kind = IMAGE_KERNEL, .url = (char[]){ "http://m/k" } },
        { .name = (char[]){ "initrd.img" }, .kind = IMAGE_INITRD, .url = (char[]){ "http://m/i" } },
    };
    model_profile inst = { .name = (char[]){ "el9" }, .images = kernel_initrd, .n_images = 2 };
    assert_int_equal(model_profile_check(&inst, NULL, 0), 0);
    inst.ssh_keys = keys;
    inst.n_ssh_keys = 1;
    assert_int_equal(model_profile_check(&inst, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "need kind = image"));

    profile_kind k;
    assert_int_equal(profile_kind_from_string("image", &k), 0);
    assert_int_equal(k, PROFILE_IMAGE);
    assert_string_equal(profile_kind_to_string(PROFILE_INSTALL), "install");
    assert_int_equal(profile_kind_from_string("Image", &k), -EINVAL);
    assert_string_equal(profile_kind_to_string((profile_kind)5), "unknown");
}

/* kind = debian-installer: a kernel and an initrd, a preseed template, SSH
 * keys; no stage2, disk image, overlay, user-data or DHCPv6 addressing. */
static void test_debian_installer_profile_check(void **state)
{
    model_image ki[3] = {
        { .name = (char[]){ "vmlinuz" }, .kind = IMAGE_KERNEL, .url = (char[]){ "http://m/k" } },
        { .name = (char[]){ "initrd.img" }, .kind = IMAGE_INITRD, .url = (char[]){ "http://m/i" } },
        { .name = (char[]){ "squashfs.img" },
          .kind = IMAGE_STAGE2,
          .url = (char[]){ "http://m/s" } },
    };
    char *keys[] = { (char[]){ "ssh-ed25519 AAAAC3Nz ops@example" } };
    model_profile p = { .name = (char[]){ "deb12-di" },
                        .kind = PROFILE_DEBIAN_INSTALLER,
                        .images = ki,
                        .n_images = 2,
                        .kickstart = (char[]){ "d-i mirror/suite string bookworm\n" },
                        .ssh_keys = keys,
                        .n_ssh_keys = 1 };
    char why[200];
    assert_int_equal(model_profile_check(&p, why, sizeof(why)), 0);
    model_profile bad = p;
    bad.n_images = 3;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "no stage2 or image"));
    bad = p;
    bad.overlay = true;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "no overlay"));
    bad = p;
    bad.ip = IP_MODE_DHCP6;
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    bad = p;
    bad.user_data = (char[]){ "#cloud-config\n" };
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    bad = p;
    bad.ssh_keys = (char *[]){ (char[]){ "ssh-ed25519" } };
    assert_int_equal(model_profile_check(&bad, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "ssh_authorized_keys line 1"));

    profile_kind k;
    assert_int_equal(profile_kind_from_string("debian-installer", &k), 0);
    assert_int_equal(k, PROFILE_DEBIAN_INSTALLER);
    assert_string_equal(profile_kind_to_string(PROFILE_DEBIAN_INSTALLER), "debian-installer");
}

static void test_ssh_key_valid(void **state)
{
    assert_true(model_ssh_key_valid("ssh-ed25519 AAAA"));
    assert_true(model_ssh_key_valid("ssh-ed25519 AAAA comment with: \"quotes\" # and - [x]"));
    assert_true(model_ssh_key_valid("command=\"echo\",no-pty ssh-rsa AAAA x"));
    assert_false(model_ssh_key_valid(NULL));
    assert_false(model_ssh_key_valid(""));
    assert_false(model_ssh_key_valid("ssh-ed25519"));
    assert_false(model_ssh_key_valid(" ssh-ed25519 AAAA"));
    assert_false(model_ssh_key_valid("ssh-ed25519 AAAA "));
    assert_false(model_ssh_key_valid("ssh-ed25519 AAAA\n"));
    assert_false(model_ssh_key_valid("ssh-ed25519 AAAA\rx"));
    assert_false(model_ssh_key_valid("ssh-ed25519\tAAAA"));
    assert_false(model_ssh_key_valid("ssh-ed25519 AAAA \x7f"));
    assert_false(model_ssh_key_valid("ssh-ed25519 AAAA caf\xc3\xa9"));
    char big[MODEL_SSH_KEY_MAX + 2];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[3] = ' ';
    assert_false(model_ssh_key_valid(big));
    big[MODEL_SSH_KEY_MAX] = '\0';
    assert_true(model_ssh_key_valid(big));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_kind_table),
        cmocka_unit_test(test_root_device_valid),
        cmocka_unit_test(test_profile_copy),
        cmocka_unit_test(test_profile_check),
        cmocka_unit_test(test_image_profile_check),
        cmocka_unit_test(test_ssh_key_valid),
        cmocka_unit_test(test_debian_installer_profile_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
