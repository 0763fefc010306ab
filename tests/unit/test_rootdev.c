/* deploy-ramdisk/writer/rootdev: the auto rule over arrays of disks (the
 * smallest fixed, writable disk that fits; ties, nothing and too small are
 * refused with a reason), the sysfs scan over a fake /sys/block, and explicit
 * paths (symlinks resolved, only block devices). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include "util.h"
#include "writer/rootdev.h"

#define GB (UINT64_C(1000000000))

#define DISK(n, sz, rm, ro_)                                                                       \
    {                                                                                              \
        .name = RB_UNCONST(n), .size_bytes = (sz), .removable = (rm), .read_only = (ro_)           \
    }

static const char *choose(const rootdev_disk *d, size_t n, uint64_t image, int *ret_r)
{
    size_t pick = 999;
    char *reason = NULL;
    int r = rootdev_choose(d, n, image, &pick, &reason);
    *ret_r = r;
    if (r < 0) {
        assert_non_null(reason); /* a refusal always says why */
        assert_int_equal(pick, 999);
        free(reason);
        return NULL;
    }
    assert_null(reason);
    return d[pick].name;
}

static void test_auto_smallest_fixed_writable(void **state)
{
    const rootdev_disk disks[] = {
        DISK("sda", 4000 * GB, false, false), /* data disk */
        DISK("nvme0n1", 480 * GB, false, false),
        DISK("sdb", 16 * GB, true, false),   /* USB stick: removable */
        DISK("sr0", 1 * GB, false, true),    /* optical */
        DISK("loop0", 2 * GB, false, false), /* never a machine's disk */
        DISK("zram0", 4 * GB, false, false),
        DISK("ram0", 4 * GB, false, false),
        DISK("dm-0", 100 * GB, false, false),
        DISK("sdc", 200 * GB, false, true), /* read-only */
        DISK("sdd", 0, false, false),       /* empty card reader */
    };
    int r;
    assert_string_equal(choose(disks, 10, 10 * GB, &r), "nvme0n1");
    /* Unknown image size: the smallest candidate all the same. */
    assert_string_equal(choose(disks, 10, 0, &r), "nvme0n1");
    /* Too big for the small disk: the next one that fits. */
    assert_string_equal(choose(disks, 10, 481 * GB, &r), "sda");
    /* Exactly the disk's size fits. */
    assert_string_equal(choose(disks, 10, 480 * GB, &r), "nvme0n1");
}

static void test_auto_refusals(void **state)
{
    const rootdev_disk tie[] = {
        DISK("sda", 960 * GB, false, false),
        DISK("sdb", 480 * GB, false, false),
        DISK("sdc", 480 * GB, false, false),
    };
    const rootdev_disk none[] = {
        DISK("sdb", 16 * GB, true, false),
        DISK("loop0", 2 * GB, false, false),
        DISK("sdc", 200 * GB, false, true),
    };
    int r;
    assert_null(choose(tie, 3, 10 * GB, &r));
    assert_int_equal(r, -ENOTUNIQ);
    assert_null(choose(tie, 3, 0, &r));
    assert_int_equal(r, -ENOTUNIQ);
    /* Too large for the tied pair: the one that fits is unambiguous. */
    assert_string_equal(choose(tie, 3, 500 * GB, &r), "sda");
    /* Two ties, but a smaller unique disk wins. */
    const rootdev_disk tie_above[] = {
        DISK("sda", 960 * GB, false, false),
        DISK("sdb", 960 * GB, false, false),
        DISK("vda", 20 * GB, false, false),
    };
    assert_string_equal(choose(tie_above, 3, 0, &r), "vda");

    assert_null(choose(none, 3, 0, &r));
    assert_int_equal(r, -ENODEV);
    assert_null(choose(none, 0, 0, &r));
    assert_int_equal(r, -ENODEV);
    assert_null(choose(tie, 3, 2000 * GB, &r));
    assert_int_equal(r, -ENOSPC);
}

static void test_virtual_names(void **state)
{
    assert_true(rootdev_name_is_virtual("loop7"));
    assert_true(rootdev_name_is_virtual("ram15"));
    assert_true(rootdev_name_is_virtual("zram0"));
    assert_true(rootdev_name_is_virtual("sr1"));
    assert_true(rootdev_name_is_virtual("dm-3"));
    assert_false(rootdev_name_is_virtual("sda"));
    assert_false(rootdev_name_is_virtual("vda"));
    assert_false(rootdev_name_is_virtual("nvme0n1"));
    assert_false(rootdev_name_is_virtual("mmcblk0"));
}

static void put(const char *dir, const char *name, const char *file, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", dir, name, file);
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

/* A fake /sys/block: sizes in 512-byte sectors, whatever the disk's own. */
static void test_scan_fake_sysfs(void **state)
{
    char dir[] = "/tmp/test_rootdev.XXXXXX";
    assert_non_null(mkdtemp(dir));
    put(dir, "vda", "size", "41943040\n"); /* 20 GiB */
    put(dir, "vda", "removable", "0\n");
    put(dir, "vda", "ro", "0\n");
    put(dir, "vdb", "size", "83886080\n"); /* 40 GiB */
    put(dir, "vdb", "removable", "0\n");
    put(dir, "vdb", "ro", "0\n");
    put(dir, "sr0", "size", "2097152\n");
    put(dir, "sr0", "removable", "1\n");
    put(dir, "sr0", "ro", "0\n");
    put(dir, "broken", "size", "not a number\n"); /* skipped, not fatal */

    rootdev_disk *disks = NULL;
    size_t n = 0;
    assert_int_equal(rootdev_scan(dir, &disks, &n), 0);
    assert_int_equal(n, 3);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(disks[i].name, "vda") == 0) {
            assert_int_equal(disks[i].size_bytes, UINT64_C(20) << 30);
        }
        if (strcmp(disks[i].name, "sr0") == 0) {
            assert_true(disks[i].removable);
        }
        total += disks[i].size_bytes;
    }
    assert_int_equal(total, (UINT64_C(61) << 30));
    disks = rootdev_disks_free(disks, n);
    assert_null(disks);

    char *path = NULL, *reason = NULL;
    assert_int_equal(rootdev_find_auto(dir, UINT64_C(10) << 30, &path, &reason), 0);
    assert_string_equal(path, "/dev/vda");
    free(path);
    path = NULL;
    assert_int_equal(rootdev_find_auto(dir, UINT64_C(30) << 30, &path, &reason), 0);
    assert_string_equal(path, "/dev/vdb");
    free(path);
    path = NULL;
    assert_int_equal(rootdev_find_auto(dir, UINT64_C(50) << 30, &path, &reason), -ENOSPC);
    assert_null(path);
    assert_non_null(reason);
    free(reason);
    reason = NULL;
    assert_int_equal(rootdev_find_auto("/nonexistent/sys/block", 0, &path, &reason), -ENOENT);
    free(reason);
    assert_int_equal(nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void test_explicit_paths(void **state)
{
    char dir[] = "/tmp/test_rootdev.XXXXXX";
    char file[128], link[128], dangling[128];
    char *path = NULL, *reason = NULL;
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/disk.img", dir);
    snprintf(link, sizeof(link), "%s/by-id-link", dir);
    snprintf(dangling, sizeof(dangling), "%s/dangling", dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(symlink("disk.img", link), 0);
    assert_int_equal(symlink("nothing-here", dangling), 0);

    /* A regular file is not a disk, unless the caller allows it (tests). */
    assert_int_equal(rootdev_resolve(file, false, &path, &reason), -ENOTBLK);
    assert_null(path);
    assert_non_null(reason);
    free(reason);
    reason = NULL;
    /* Symlinks (as under /dev/disk/by-id) resolve to their target. */
    assert_int_equal(rootdev_resolve(link, true, &path, &reason), 0);
    assert_string_equal(path, file);
    free(path);
    path = NULL;
    assert_int_equal(rootdev_resolve(dangling, true, &path, &reason), -ENOENT);
    free(reason);
    reason = NULL;
    assert_int_equal(rootdev_resolve("/dev/null", true, &path, &reason), -ENOTBLK);
    free(reason);
    reason = NULL;

    /* A real block device, where the machine has one visible. */
    struct stat st;
    static const char *const candidates[] = { "/dev/loop0", "/dev/vda", "/dev/sda",
                                              "/dev/nvme0n1" };
    for (size_t i = 0; i < 4; i++) {
        if (stat(candidates[i], &st) == 0 && S_ISBLK(st.st_mode)) {
            assert_int_equal(rootdev_resolve(candidates[i], false, &path, &reason), 0);
            assert_string_equal(path, candidates[i]);
            free(path);
            path = NULL;
            break;
        }
    }
    unlink(dangling);
    unlink(link);
    unlink(file);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_smallest_fixed_writable),
        cmocka_unit_test(test_auto_refusals),
        cmocka_unit_test(test_virtual_names),
        cmocka_unit_test(test_scan_fake_sysfs),
        cmocka_unit_test(test_explicit_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
