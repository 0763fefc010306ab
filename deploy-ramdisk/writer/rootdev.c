/* rootdev: see rootdev.h. */
#include "writer/rootdev.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "util.h"

bool rootdev_name_is_virtual(const char *name)
{
    /* loop: files; ram/zram: memory; sr: optical drives; dm-: device-mapper
     * (LVM, crypt) built on the real disks, which are candidates themselves. */
    static const char *const prefixes[] = { "loop", "ram", "zram", "sr", "dm-" };
    for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    return false;
}

int rootdev_choose(const rootdev_disk *disks, size_t n, uint64_t image_size, size_t *ret_index,
                   char **ret_reason)
{
    size_t best = SIZE_MAX, eligible = 0;
    bool tie = false;

    for (size_t i = 0; i < n; i++) {
        const rootdev_disk *d = &disks[i];
        if (!d->name || rootdev_name_is_virtual(d->name) || d->removable || d->read_only ||
            d->size_bytes == 0) {
            continue;
        }
        eligible++;
        if (image_size > 0 && d->size_bytes < image_size) {
            continue;
        }
        if (best == SIZE_MAX || d->size_bytes < disks[best].size_bytes) {
            best = i;
            tie = false;
        } else if (d->size_bytes == disks[best].size_bytes) {
            tie = true;
        }
    }
    if (eligible == 0) {
        return errmsg_fail(ret_reason, -ENODEV,
                           "no disk to write to: none of %zu is a fixed, writable disk", n);
    }
    if (best == SIZE_MAX) {
        return errmsg_fail(ret_reason, -ENOSPC,
                           "no disk is large enough for the image of %llu bytes (%zu candidates)",
                           (unsigned long long)image_size, eligible);
    }
    if (tie) {
        return errmsg_fail(ret_reason, -ENOTUNIQ,
                           "more than one disk of %llu bytes (e.g. %s) ties for smallest: "
                           "name one with --root-device",
                           (unsigned long long)disks[best].size_bytes, disks[best].name);
    }
    *ret_index = best;
    return 0;
}

rootdev_disk *rootdev_disks_free(rootdev_disk *disks, size_t n)
{
    if (disks) {
        for (size_t i = 0; i < n; i++) {
            free(disks[i].name);
        }
        free(disks);
    }
    return NULL;
}

/* One decimal number from a small sysfs attribute file. */
static int read_attr_u64(int dirfd, const char *path, uint64_t *ret)
{
    char buf[64];
    _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return negative_errno();
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0) {
        return negative_errno();
    }
    buf[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno != 0 || end == buf || (*end != '\n' && *end != '\0')) {
        return -EBADMSG;
    }
    *ret = v;
    return 0;
}

int rootdev_scan(const char *sysfs_block, rootdev_disk **ret_disks, size_t *ret_n)
{
    DIR *dir = opendir(sysfs_block);
    if (!dir) {
        return negative_errno();
    }
    rootdev_disk *disks = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        char path[PATH_MAX];
        uint64_t sectors, removable, ro;
        int rs = snprintf(path, sizeof(path), "%s/size", de->d_name);
        if (rs < 0 || (size_t)rs >= sizeof(path) || read_attr_u64(dirfd(dir), path, &sectors) < 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/removable", de->d_name);
        if (read_attr_u64(dirfd(dir), path, &removable) < 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/ro", de->d_name);
        if (read_attr_u64(dirfd(dir), path, &ro) < 0) {
            continue;
        }
        if (sectors > UINT64_MAX / 512) {
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            rootdev_disk *nd = realloc(disks, ncap * sizeof(*nd));
            if (!nd) {
                r = -ENOMEM;
                goto out;
            }
            disks = nd;
            cap = ncap;
        }
        disks[n] = (rootdev_disk){ .name = strdup(de->d_name),
                                   .size_bytes = sectors * 512,
                                   .removable = removable != 0,
                                   .read_only = ro != 0 };
        if (!disks[n].name) {
            r = -ENOMEM;
            goto out;
        }
        n++;
    }
out:
    closedir(dir);
    if (r < 0) {
        rootdev_disks_free(disks, n);
        return r;
    }
    *ret_disks = disks;
    *ret_n = n;
    return 0;
}

int rootdev_resolve(const char *path, bool allow_regular, char **ret_path, char **ret_reason)
{
    char *real = realpath(path, NULL);
    if (!real) {
        int r = negative_errno();
        return errmsg_fail(ret_reason, r, "cannot resolve %s: %s", path, errstr(r));
    }
    struct stat st;
    if (stat(real, &st) < 0) {
        int r = negative_errno();
        errmsg_fail(ret_reason, r, "cannot stat %s: %s", real, errstr(r));
        free(real);
        return r;
    }
    if (!S_ISBLK(st.st_mode) && !(allow_regular && S_ISREG(st.st_mode))) {
        errmsg_fail(ret_reason, -ENOTBLK, "%s (%s) is not a block device", path, real);
        free(real);
        return -ENOTBLK;
    }
    *ret_path = real;
    return 0;
}

int rootdev_find_auto(const char *sysfs_block, uint64_t image_size, char **ret_path,
                      char **ret_reason)
{
    rootdev_disk *disks = NULL;
    size_t n = 0, pick = 0;
    int r = rootdev_scan(sysfs_block, &disks, &n);
    if (r < 0) {
        return errmsg_fail(ret_reason, r, "cannot list disks in %s: %s", sysfs_block, errstr(r));
    }
    r = rootdev_choose(disks, n, image_size, &pick, ret_reason);
    if (r == 0) {
        char *path = NULL;
        if (asprintf(&path, "/dev/%s", disks[pick].name) < 0) {
            r = errmsg_fail(ret_reason, -ENOMEM, "out of memory");
        } else {
            *ret_path = path;
        }
    }
    rootdev_disks_free(disks, n);
    return r;
}
