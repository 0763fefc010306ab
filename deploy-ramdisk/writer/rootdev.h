/* rootdev: which disk the image goes to.
 *
 * `--root-device auto` chooses among the machine's disks with a pure rule
 * (rootdev_choose()), fed by rootdev_scan() from /sys/block, so the rule is
 * tested with arrays and the scan with a fake sysfs tree. An explicit path
 * goes through rootdev_resolve().
 *
 * The auto rule: among disks that are not removable, not read-only, not of
 * a virtual kind (loop, ram, zram, sr, dm-: never a machine's own disk) and
 * not empty, and at least as large as the image (when its size is known),
 * take the smallest; refuse when there is none, and refuse when two or more
 * tie for smallest, since then nothing says which one the operator meant.
 * Smallest, because a machine with a small boot disk and large data disks is
 * the common case, and writing over a data disk is the costly mistake.
 *
 * Errors: -ENODEV (no candidate), -ENOSPC (candidates, none large enough),
 * -ENOTUNIQ (a tie), -ENOTBLK (an explicit path that is no block device),
 * -ENOENT, -ENOMEM, and errors from reading sysfs. Refusals explain
 * themselves in *ret_reason (malloc'ed; when ret_reason is not NULL, written
 * only on failure). Other ret_* are written only on success. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rootdev_disk {
    char *name; /* kernel name, "vda", "nvme0n1" */
    uint64_t size_bytes;
    bool removable;
    bool read_only;
} rootdev_disk;

/* Picks from disks[0..n) for an image of image_size bytes (0: unknown).
 * *ret_index is the chosen disk. */
int rootdev_choose(const rootdev_disk *disks, size_t n, uint64_t image_size, size_t *ret_index,
                   char **ret_reason);

/* Whether the kernel name is of a kind auto never picks. */
bool rootdev_name_is_virtual(const char *name);

/* Reads every entry of sysfs_block (normally "/sys/block"): NAME/size (in
 * 512-byte sectors, whatever the disk's sector size), NAME/removable,
 * NAME/ro. An entry whose files cannot be read is skipped. The array and the
 * names are the caller's: free with rootdev_disks_free(). */
int rootdev_scan(const char *sysfs_block, rootdev_disk **ret_disks, size_t *ret_n);
/* Accepts NULL, returns NULL. */
rootdev_disk *rootdev_disks_free(rootdev_disk *disks, size_t n);

/* An explicit --root-device: resolves symlinks (/dev/disk/by-id/…) and
 * requires a block device, or with allow_regular also a regular file (tests
 * and benchmarks write images to files). *ret_path is the resolved path,
 * malloc'ed. */
int rootdev_resolve(const char *path, bool allow_regular, char **ret_path, char **ret_reason);

/* `auto` end to end: scans sysfs_block, chooses, and returns "/dev/NAME"
 * (malloc'ed) in *ret_path. */
int rootdev_find_auto(const char *sysfs_block, uint64_t image_size, char **ret_path,
                      char **ret_reason);
