/* grow: see grow.h. */
#include "writer/grow.h"

#include <errno.h>
#include <libfdisk/libfdisk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "util.h"

#define GROW_MIB UINT64_C(1048576)
/* UEFI spec, "Defined GPT Partition Entry - Partition Type GUIDs": the type
 * of FAT file systems (and so of the seed partition). */
#define GROW_TYPE_BASIC_DATA "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"

struct grow {
    struct fdisk_context *cxt;
    grow_layout layout;
    size_t last_index; /* libfdisk's 0-based partition number */
    bool committed;
};

/* libfdisk returns negative errno mostly, but -1 in places. */
static int fdisk_err(int r)
{
    return r == -1 ? -EIO : r;
}

/* The partition that ends last: its libfdisk index, start and size. */
static int find_last(struct fdisk_context *cxt, size_t *ret_index, uint64_t *ret_start,
                     uint64_t *ret_sectors)
{
    struct fdisk_table *tb = NULL;
    int r = fdisk_get_partitions(cxt, &tb);
    if (r < 0) {
        return fdisk_err(r);
    }
    bool found = false;
    uint64_t best_end = 0, best_start = 0;
    size_t best_index = 0;
    for (size_t i = 0; i < fdisk_table_get_nents(tb); i++) {
        struct fdisk_partition *pa = fdisk_table_get_partition(tb, i);
        if (!pa || !fdisk_partition_has_start(pa) || !fdisk_partition_has_end(pa) ||
            !fdisk_partition_has_partno(pa)) {
            continue;
        }
        uint64_t end = fdisk_partition_get_end(pa);
        if (!found || end > best_end) {
            found = true;
            best_end = end;
            best_start = fdisk_partition_get_start(pa);
            best_index = fdisk_partition_get_partno(pa);
        }
    }
    fdisk_unref_table(tb);
    if (!found) {
        return -ENOENT;
    }
    *ret_index = best_index;
    *ret_start = best_start;
    *ret_sectors = best_end - best_start + 1;
    return 0;
}

/* The layout for g's table, read already. */
static int plan(grow *g, const char *path, uint64_t reserve_bytes, char **ret_reason)
{
    grow_layout *l = &g->layout;
    l->sector_size = fdisk_get_sector_size(g->cxt);
    l->disk_sectors = fdisk_get_nsectors(g->cxt);
    /* libfdisk has moved the backup header to the disk's last LBA in its
     * copy of the table (its entries before it), and the last usable LBA
     * with it. */
    uint64_t last_usable = fdisk_get_last_lba(g->cxt);
    if (l->sector_size == 0 || last_usable == 0 || last_usable >= l->disk_sectors) {
        return errmsg_fail(ret_reason, -EINVAL, "%s: nonsense geometry", path);
    }
    int r = find_last(g->cxt, &g->last_index, &l->last_start_lba, &l->last_old_sectors);
    if (r < 0) {
        return errmsg_fail(ret_reason, r, "%s: the GPT has no partition to grow", path);
    }
    l->last_partno = (unsigned)g->last_index + 1;
    uint64_t last_end = l->last_start_lba + l->last_old_sectors - 1;
    if (last_end > last_usable) {
        return errmsg_fail(ret_reason, -EINVAL,
                           "%s: partition %u ends past the disk's last usable sector", path,
                           l->last_partno);
    }

    /* The tail ends on a MiB boundary at or before the last usable LBA and
     * is whole MiB long, so its file system is aligned on any disk. */
    uint64_t new_end = last_usable;
    if (reserve_bytes > 0) {
        uint64_t mib_sectors = GROW_MIB / l->sector_size;
        if (mib_sectors == 0 || GROW_MIB % l->sector_size != 0) {
            return errmsg_fail(ret_reason, -EINVAL, "%s: sector size %llu does not divide a MiB",
                               path, (unsigned long long)l->sector_size);
        }
        uint64_t sectors = (reserve_bytes + GROW_MIB - 1) / GROW_MIB * mib_sectors;
        uint64_t end_excl = (last_usable + 1) / mib_sectors * mib_sectors;
        if (end_excl < sectors || end_excl - sectors <= last_end) {
            return errmsg_fail(ret_reason, -ENOSPC,
                               "%s: no room for %llu bytes after partition %u (the disk is too "
                               "small for the image and the seed)",
                               path, (unsigned long long)(sectors * l->sector_size),
                               l->last_partno);
        }
        l->reserve_start_lba = end_excl - sectors;
        l->reserve_sectors = sectors;
        new_end = l->reserve_start_lba - 1;
    }
    l->last_new_sectors = new_end - l->last_start_lba + 1;
    if (l->last_new_sectors < l->last_old_sectors) {
        l->last_new_sectors = l->last_old_sectors; /* never shrink */
    }
    return 0;
}

int grow_open(const char *path, uint64_t reserve_bytes, grow **ret, char **ret_reason)
{
    if (!path || !ret || reserve_bytes > (UINT64_C(1) << 40)) {
        return -EINVAL;
    }
    grow *g = calloc(1, sizeof(*g));
    if (!g) {
        return -ENOMEM;
    }
    int r;
    g->cxt = fdisk_new_context();
    if (!g->cxt) {
        r = -ENOMEM;
        goto out;
    }
    /* Relocation on (the default, said anyway): a backup header that is not
     * at the disk's end is moved there, and the last usable LBA with it. */
    fdisk_gpt_disable_relocation(fdisk_get_label(g->cxt, "gpt"), 0);
    r = fdisk_err(fdisk_assign_device(g->cxt, path, 0));
    if (r < 0) {
        errmsg_fail(ret_reason, r, "cannot open %s: %s", path, errstr(r));
        goto out;
    }
    if (!fdisk_has_label(g->cxt) || !fdisk_is_label(g->cxt, GPT)) {
        r = errmsg_fail(ret_reason, -EMEDIUMTYPE, "%s has no GPT partition table", path);
        goto out;
    }
    r = plan(g, path, reserve_bytes, ret_reason);
    if (r < 0) {
        goto out;
    }
    *ret = g;
    return 0;
out:
    grow_free(g);
    return r;
}

grow *grow_free(grow *g)
{
    if (g) {
        if (g->cxt) {
            fdisk_unref_context(g->cxt); /* closes the device, writes nothing */
        }
        free(g);
    }
    return NULL;
}

void grow_get_layout(const grow *g, grow_layout *ret)
{
    *ret = g->layout;
}

static int add_reserved(grow *g, const char *name)
{
    struct fdisk_label *lb = fdisk_get_label(g->cxt, NULL);
    struct fdisk_parttype *type = fdisk_label_get_parttype_from_string(lb, GROW_TYPE_BASIC_DATA);
    struct fdisk_partition *pa = fdisk_new_partition();
    int r;
    if (!type || !pa) {
        r = -ENOMEM;
        goto out;
    }
    r = fdisk_partition_set_start(pa, g->layout.reserve_start_lba);
    if (r == 0) {
        r = fdisk_partition_set_size(pa, g->layout.reserve_sectors);
    }
    if (r == 0) {
        r = fdisk_partition_partno_follow_default(pa, 1);
    }
    if (r == 0) {
        r = fdisk_partition_set_type(pa, type);
    }
    if (r == 0 && name) {
        r = fdisk_partition_set_name(pa, name);
    }
    if (r == 0) {
        r = fdisk_add_partition(g->cxt, pa, NULL);
    }
    r = fdisk_err(r);
out:
    fdisk_unref_partition(pa);
    fdisk_unref_parttype(type);
    return r;
}

int grow_commit(grow *g, const char *reserve_name, char **ret_reason)
{
    if (!g || g->committed) {
        return -EINVAL;
    }
    const grow_layout *l = &g->layout;
    int r = 0;
    if (l->last_new_sectors > l->last_old_sectors) {
        struct fdisk_partition *pa = fdisk_new_partition();
        if (!pa) {
            return -ENOMEM;
        }
        r = fdisk_partition_set_size(pa, l->last_new_sectors);
        if (r == 0) {
            r = fdisk_set_partition(g->cxt, g->last_index, pa);
        }
        fdisk_unref_partition(pa);
        r = fdisk_err(r);
        if (r < 0) {
            errmsg_fail(ret_reason, r, "cannot grow partition %u: %s", l->last_partno, errstr(r));
            return r;
        }
    }
    if (l->reserve_sectors > 0) {
        r = add_reserved(g, reserve_name);
        if (r < 0) {
            errmsg_fail(ret_reason, r, "cannot add a partition at sector %llu: %s",
                        (unsigned long long)l->reserve_start_lba, errstr(r));
            return r;
        }
    }
    /* Written even when nothing grew: the backup header moves. */
    r = fdisk_err(fdisk_write_disklabel(g->cxt));
    if (r < 0) {
        errmsg_fail(ret_reason, r, "cannot write the partition table: %s", errstr(r));
        return r;
    }
    g->committed = true;
    /* Best effort: a kernel that holds a partition of it open says EBUSY,
     * and the reboot that follows reads the table anyway. Regular files:
     * libfdisk does nothing. */
    (void)fdisk_reread_partition_table(g->cxt);
    /* fsync and close; an error here means the table may not be durable. */
    r = fdisk_err(fdisk_deassign_device(g->cxt, 0));
    if (r < 0) {
        errmsg_fail(ret_reason, r, "cannot sync the partition table: %s", errstr(r));
        return r;
    }
    return 0;
}
