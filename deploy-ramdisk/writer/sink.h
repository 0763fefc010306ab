/* sink: writes a decompressed image to the target disk (or, for tests and
 * benchmarks, a regular file) in large aligned writes.
 *
 * The first SINK_HOLD_BYTES of the image (MBR and primary GPT, and whatever
 * a boot loader keeps there) are held in memory and reach the disk only in
 * sink_commit(), which the caller calls after the image's hash has been
 * verified. Until then, and forever after sink_abort(), that region is zeros,
 * so a failed or tampered deploy never leaves a disk that firmware would boot
 * or the kernel would read a partition table from. Where a GPT's backup
 * header may sit (the disk's last MiB and the last MiB written), the sink
 * zeroes too: see sink_begin() and sink_abort().
 *
 * Lifecycle: sink_open() → sink_begin() → sink_write()… → sink_commit() or
 * sink_abort(); sink_reset() goes back to before the first sink_write() (a
 * download that restarts from byte 0). After sink_commit(), sink_write_at()
 * puts more bytes past the image (the NoCloud seed), and sink_revoke() undoes
 * the commit's partition table when a step after it failed.
 *
 * Errors: negative errno from open/write/fsync/ioctl; -ENOSPC when the image
 * does not fit the target (refused before anything past the end is written),
 * -ENOTBLK when a path is neither a block device nor a regular file,
 * -EINVAL for calls out of order. ret_* are written only on success. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 1 MiB: the MBR, the primary GPT (34 sectors of 512 bytes, 6 of 4096) and
 * the gap partitioning tools leave before the first partition. */
#define SINK_HOLD_BYTES (UINT64_C(1) << 20)
/* Writes go out in buffers of this size, aligned for O_DIRECT. */
#define SINK_BUFFER_BYTES ((size_t)4 << 20)
#define SINK_ALIGN        4096

typedef struct sink sink;

typedef struct sink_options {
    /* Bytes the target holds. 0: a block device's size (BLKGETSIZE64);
     * no limit for a regular file. A smaller limit than the device is
     * honoured (an image must not run into a partition kept on purpose). */
    uint64_t limit;
    /* Never use O_DIRECT, even on a block device. */
    bool no_direct;
    /* Write nothing at all (--dry-run): the sink only counts bytes and still
     * refuses an image larger than the limit. path is ignored. */
    bool dry_run;
} sink_options;

/* Opens the target for writing (a regular file is created if missing, never
 * truncated: a sparse test file keeps its size). opts may be NULL. */
int sink_open(const char *path, const sink_options *opts, sink **ret);
/* Accepts NULL, returns NULL. Closes the target without committing: a sink
 * freed before sink_commit() leaves whatever sink_begin() left (zeros). */
sink *sink_free(sink *s);

/* Before the first write: zeroes the held-back region and the target's last
 * MiB (an old backup GPT would let a tool "repair" the old partition table
 * onto the new bytes). image_size, when known (0: unknown), is checked
 * against the limit here, so a too-large image is refused before any write. */
int sink_begin(sink *s, uint64_t image_size);
/* Appends image bytes. -ENOSPC, writing nothing of this call, when they
 * would go past the limit. */
int sink_write(sink *s, const void *data, size_t len);
/* The image is verified: writes what is buffered, fsyncs, then writes the
 * held-back first MiB, fsyncs again and (block device) flushes the buffer
 * cache, so the partition table is the last thing to become valid. */
int sink_commit(sink *s);
/* The image is bad or incomplete: leaves the held-back region zero, and
 * zeroes the last MiB written (the image's own backup GPT, which sits at its
 * end) and the target's last MiB. Buffered bytes are dropped. */
int sink_abort(sink *s);
/* After sink_commit(): writes len bytes at offset, which must lie past the
 * image's end and inside the target (-ERANGE otherwise), and fsyncs. */
int sink_write_at(sink *s, uint64_t offset, const void *data, size_t len);
/* After sink_commit(), when what had to follow it failed: zeroes the first
 * MiB, the last MiB the image reached and the target's last MiB, as
 * sink_abort() does, so the disk does not look bootable. */
int sink_revoke(sink *s);
/* Back to the state after sink_begin(): drops buffered and held bytes and
 * counts from 0 again. The bytes already on the target get overwritten. */
int sink_reset(sink *s);

/* Image bytes accepted so far (held, buffered or written). */
uint64_t sink_get_written(const sink *s);
/* The limit in force: opts->limit, the device size, or 0 for none. */
uint64_t sink_get_limit(const sink *s);
/* Whether whole blocks go through O_DIRECT (false for regular files, with
 * no_direct, and after the device refused it). */
bool sink_is_direct(const sink *s);
