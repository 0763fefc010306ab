/* grow: makes a freshly written image's GPT fit the disk it landed on.
 *
 * An image is built for a small disk: its backup GPT header sits at the
 * image's end, its last partition (the root file system) ends there too. On
 * a larger disk that leaves the space after it unused and the backup header
 * where no tool looks for it. grow moves the backup header (and its entry
 * array) to the disk's end, grows the last partition to fill the disk except
 * for an optional reserved tail, and can add a partition in that tail (the
 * NoCloud seed, "CIDATA"). Only the partition table changes: growing the
 * file system inside is the installed OS's job (cloud-init's growpart and
 * resizefs, run on every boot by Debian's cloud images; growpart then finds
 * nothing to do, resize2fs the room).
 *
 * libfdisk does the GPT work (CRCs, the protective MBR's size, the backup
 * header's place, the last usable LBA), on its own file descriptor.
 *
 * Use: grow_open() reads the table and plans; grow_get_layout() tells where
 * the reserved tail starts, so the caller can fill it (the seed's file
 * system) before grow_commit() writes the table: the table is always the
 * last thing written. Nothing reaches the disk before grow_commit().
 *
 * Errors: -EMEDIUMTYPE when the disk has no GPT (an MBR or a bare file
 * system image), -ENOSPC when the reserved tail does not fit after the last
 * partition, -EINVAL for bad arguments or calls out of order, -ENOMEM, and
 * errors from libfdisk (negative errno). A reason for the log goes to
 * *ret_reason (malloc'ed, when not NULL; written only on failure). ret_* are
 * written only on success. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct grow grow;

typedef struct grow_layout {
    uint64_t sector_size;
    uint64_t disk_sectors;
    /* The last partition (by position on disk), 1-based as the kernel names
     * it (vda3), before and after. */
    unsigned last_partno;
    uint64_t last_start_lba;
    uint64_t last_old_sectors;
    uint64_t last_new_sectors; /* == last_old_sectors when nothing to grow */
    /* The reserved tail; 0 sectors when none was asked for. */
    uint64_t reserve_start_lba;
    uint64_t reserve_sectors;
} grow_layout;

/* Reads the GPT of path (a block device or an image file) and plans: the
 * last partition grows up to a reserved tail of reserve_bytes (0: none; else
 * rounded up to whole MiB) that ends at the last usable LBA rounded down to
 * a MiB. The last partition never shrinks: -ENOSPC when the tail would cut
 * into it. */
int grow_open(const char *path, uint64_t reserve_bytes, grow **ret, char **ret_reason);
/* Accepts NULL, returns NULL. Writes nothing. */
grow *grow_free(grow *g);

void grow_get_layout(const grow *g, grow_layout *ret);

/* Writes the table: the backup header at the disk's end, the last partition
 * grown, and, when a tail was reserved, a partition over it named
 * reserve_name (GPT partition name, ASCII) of type "Microsoft basic data"
 * (what a FAT file system's partition is, and what Linux mounts by label).
 * Then asks the kernel to read the table again (a block device; a busy one
 * is not an error: the next boot reads it). */
int grow_commit(grow *g, const char *reserve_name, char **ret_reason);
