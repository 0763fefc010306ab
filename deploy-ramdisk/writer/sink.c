/* sink: see sink.h. */
#include "writer/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "writer/sink-internal.h"

/* Where a backup GPT lives: the last 33 sectors of 512 bytes (or 5 of 4096)
 * of the disk. A MiB covers both sector sizes with room to spare. */
#define SINK_TAIL_WIPE_BYTES (UINT64_C(1) << 20)

typedef enum sink_state {
    SINK_OPENED,
    SINK_WRITING,
    SINK_COMMITTED,
    SINK_ABORTED,
} sink_state;

struct sink {
    int fd;
    bool is_blk;
    bool direct;
    bool dry_run;
    sink_state state;
    uint64_t limit; /* 0: none */
    /* End of the target as it is now: the limit for a block device, the
     * file's size (capped by the limit) for a regular file. Zeroing stays
     * inside it, so a test file does not grow. */
    uint64_t end;
    uint8_t *head; /* SINK_HOLD_BYTES, the held-back start of the image */
    size_t head_len;
    uint8_t *buf; /* SINK_BUFFER_BYTES, aligned */
    size_t buf_len;
    uint64_t buf_at;     /* target offset of buf[0] */
    uint64_t written;    /* image bytes accepted */
    uint64_t disk_reach; /* highest target offset image bytes were written to */
    sink_pwrite_fn pwrite_fn;
    void *pwrite_data;
};

static ssize_t plain_pwrite(int fd, const void *buf, size_t len, off_t offset, void *userdata)
{
    return pwrite(fd, buf, len, offset);
}

void sink_set_pwrite(sink *s, sink_pwrite_fn fn, void *userdata)
{
    s->pwrite_fn = fn ? fn : plain_pwrite;
    s->pwrite_data = userdata;
}

static void *aligned_alloc_zero(size_t len)
{
    void *p = NULL;
    if (posix_memalign(&p, SINK_ALIGN, len) != 0) {
        return NULL;
    }
    memset(p, 0, len);
    return p;
}

static int fd_set_direct(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, on ? (fl | O_DIRECT) : (fl & ~O_DIRECT)) < 0) {
        return negative_errno();
    }
    return 0;
}

static bool is_aligned(const void *p, uint64_t off)
{
    return ((uintptr_t)p % SINK_ALIGN) == 0 && off % SINK_ALIGN == 0;
}

/* All of p at off, through short writes and EINTR. */
static int pwrite_all(sink *s, const uint8_t *p, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = s->pwrite_fn(s->fd, p, len, (off_t)off, s->pwrite_data);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return negative_errno();
        }
        if (n == 0 || (size_t)n > len) {
            return -EIO; /* no progress, or a broken pwrite replacement */
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* O_DIRECT wants aligned buffers, offsets and lengths. The whole blocks go
 * directly; a tail that is not a whole block (the image's last bytes) goes
 * through the page cache, which the fsync at the end makes durable. A device
 * that refuses O_DIRECT altogether (EINVAL) loses it for good. */
static int write_full(sink *s, const uint8_t *p, size_t len, uint64_t off)
{
    if (!s->direct) {
        return pwrite_all(s, p, len, off);
    }
    size_t whole = is_aligned(p, off) ? len - len % SINK_ALIGN : 0;
    if (whole > 0) {
        int r = pwrite_all(s, p, whole, off);
        if (r == -EINVAL) {
            r = fd_set_direct(s->fd, false);
            if (r < 0) {
                return r;
            }
            s->direct = false;
            /* Rewriting what may have landed already is harmless. */
            return pwrite_all(s, p, len, off);
        }
        if (r < 0) {
            return r;
        }
        p += whole;
        len -= whole;
        off += whole;
    }
    if (len == 0) {
        return 0;
    }
    int r = fd_set_direct(s->fd, false);
    if (r < 0) {
        return r;
    }
    r = pwrite_all(s, p, len, off);
    int rd = fd_set_direct(s->fd, true);
    return r < 0 ? r : rd;
}

static int write_zeros(sink *s, uint64_t from, uint64_t to)
{
    if (s->dry_run || to <= from) {
        return 0;
    }
    size_t chunk = (size_t)SINK_TAIL_WIPE_BYTES;
    _cleanup_free_ uint8_t *zeros = aligned_alloc_zero(chunk);
    if (!zeros) {
        return -ENOMEM;
    }
    while (from < to) {
        size_t n = to - from < chunk ? (size_t)(to - from) : chunk;
        int r = write_full(s, zeros, n, from);
        if (r < 0) {
            return r;
        }
        from += n;
    }
    return 0;
}

static int sync_target(sink *s)
{
    if (s->dry_run) {
        return 0;
    }
    if (fsync(s->fd) < 0) {
        return negative_errno();
    }
    /* Drop the block device's buffer cache, so what runs next (partprobe,
     * the reboot's firmware via a kexec, a verify pass) reads the disk. */
    if (s->is_blk && ioctl(s->fd, BLKFLSBUF, 0) < 0) {
        return negative_errno();
    }
    return 0;
}

int sink_open(const char *path, const sink_options *opts, sink **ret)
{
    static const sink_options defaults = { 0 };
    if (!opts) {
        opts = &defaults;
    }
    sink *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->fd = -1;
    s->pwrite_fn = plain_pwrite;
    s->dry_run = opts->dry_run;
    s->limit = opts->limit;
    s->buf_at = SINK_HOLD_BYTES;
    struct stat st;
    bool exists;
    int r;
    s->head = aligned_alloc_zero(SINK_HOLD_BYTES);
    s->buf = aligned_alloc_zero(SINK_BUFFER_BYTES);
    if (!s->head || !s->buf) {
        r = -ENOMEM;
        goto out;
    }
    if (s->dry_run) {
        s->end = s->limit;
        *ret = s;
        return 0;
    }

    exists = stat(path, &st) == 0;
    if (!exists && errno != ENOENT) {
        r = negative_errno();
        goto out;
    }
    if (exists && S_ISBLK(st.st_mode)) {
        s->is_blk = true;
        /* O_EXCL on a block device: refuse one that is mounted or otherwise
         * claimed (a partition of it in use), instead of writing under it. */
        int flags = O_WRONLY | O_CLOEXEC | O_EXCL;
        if (!opts->no_direct) {
            s->fd = open(path, flags | O_DIRECT);
            s->direct = s->fd >= 0;
        }
        if (s->fd < 0) {
            s->fd = open(path, flags);
        }
        if (s->fd < 0) {
            r = negative_errno();
            goto out;
        }
        uint64_t size = 0;
        if (ioctl(s->fd, BLKGETSIZE64, &size) < 0) {
            r = negative_errno();
            goto out;
        }
        if (s->limit == 0 || s->limit > size) {
            s->limit = size;
        }
        s->end = s->limit;
    } else if (!exists || S_ISREG(st.st_mode)) {
        /* A regular file: tests and benchmarks. Never truncated, so a sparse
         * file stands for a disk of its size. */
        s->fd = open(path, O_WRONLY | O_CLOEXEC | O_CREAT, 0644);
        if (s->fd < 0) {
            r = negative_errno();
            goto out;
        }
        if (fstat(s->fd, &st) < 0) {
            r = negative_errno();
            goto out;
        }
        if (!S_ISREG(st.st_mode)) {
            r = -ENOTBLK; /* replaced under us */
            goto out;
        }
        s->end = (uint64_t)st.st_size;
        if (s->limit > 0 && s->end > s->limit) {
            s->end = s->limit;
        }
    } else {
        r = -ENOTBLK;
        goto out;
    }
    *ret = s;
    return 0;
out:
    sink_free(s);
    return r;
}

sink *sink_free(sink *s)
{
    if (s) {
        if (s->fd >= 0) {
            close(s->fd);
        }
        free(s->head);
        free(s->buf);
        free(s);
    }
    return NULL;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* The target's first MiB and last MiB (within what exists of it). */
static int wipe_ends(sink *s)
{
    int r = write_zeros(s, 0, min_u64(SINK_HOLD_BYTES, s->end));
    if (r < 0) {
        return r;
    }
    if (s->end > SINK_HOLD_BYTES) {
        uint64_t from = s->end - min_u64(SINK_TAIL_WIPE_BYTES, s->end - SINK_HOLD_BYTES);
        r = write_zeros(s, from, s->end);
    }
    return r;
}

int sink_begin(sink *s, uint64_t image_size)
{
    if (s->state != SINK_OPENED) {
        return -EINVAL;
    }
    if (image_size > 0 && s->limit > 0 && image_size > s->limit) {
        return -ENOSPC;
    }
    int r = wipe_ends(s);
    if (r < 0) {
        return r;
    }
    /* The old partition table must be gone for good before the first image
     * byte lands: a power cut mid-deploy then leaves a blank-looking disk,
     * not an old table over new partitions. */
    r = sync_target(s);
    if (r < 0) {
        return r;
    }
    s->state = SINK_WRITING;
    return 0;
}

static int flush_buf(sink *s)
{
    if (s->buf_len == 0) {
        return 0;
    }
    if (!s->dry_run) {
        int r = write_full(s, s->buf, s->buf_len, s->buf_at);
        if (r < 0) {
            return r;
        }
    }
    s->buf_at += s->buf_len;
    s->buf_len = 0;
    if (s->buf_at > s->disk_reach) {
        s->disk_reach = s->buf_at;
    }
    return 0;
}

int sink_write(sink *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (s->state != SINK_WRITING) {
        return -EINVAL;
    }
    /* written <= limit always holds, so the subtraction cannot wrap. */
    if (s->limit > 0 && len > s->limit - s->written) {
        return -ENOSPC;
    }
    while (len > 0) {
        size_t n;
        if (s->written < SINK_HOLD_BYTES) {
            n = min_u64(len, SINK_HOLD_BYTES - s->written);
            memcpy(s->head + s->head_len, p, n);
            s->head_len += n;
        } else {
            n = min_u64(len, SINK_BUFFER_BYTES - s->buf_len);
            memcpy(s->buf + s->buf_len, p, n);
            s->buf_len += n;
            if (s->buf_len == SINK_BUFFER_BYTES) {
                int r = flush_buf(s);
                if (r < 0) {
                    return r;
                }
            }
        }
        p += n;
        len -= n;
        s->written += n;
    }
    return 0;
}

int sink_commit(sink *s)
{
    if (s->state != SINK_WRITING) {
        return -EINVAL;
    }
    int r = flush_buf(s);
    if (r < 0) {
        return r;
    }
    /* Everything but the partition table is durable before the partition
     * table is written: a power cut in between leaves a disk that does not
     * boot, never one that boots into half an image. */
    r = sync_target(s);
    if (r < 0) {
        return r;
    }
    if (!s->dry_run && s->head_len > 0) {
        r = write_full(s, s->head, s->head_len, 0);
        if (r < 0) {
            return r;
        }
    }
    r = sync_target(s);
    if (r < 0) {
        return r;
    }
    s->state = SINK_COMMITTED;
    return 0;
}

/* Leaves no partition table anywhere the image or a GPT tool would look:
 * the first MiB, the target's last MiB, the last MiB the image reached. */
static int unbless(sink *s)
{
    s->buf_len = 0;
    s->head_len = 0;
    memset(s->head, 0, SINK_HOLD_BYTES);
    /* The held-back region was never written (abort) or was (revoke); zero
     * it all the same, so the promise holds whatever happened before (a
     * crashed earlier run). */
    int r = wipe_ends(s);
    if (r < 0) {
        return r;
    }
    /* The image's own backup GPT sits at its end, which is the disk's end
     * only when the image fills the disk; wipe it wherever it landed. */
    if (s->disk_reach > SINK_HOLD_BYTES) {
        uint64_t from =
            s->disk_reach - min_u64(SINK_TAIL_WIPE_BYTES, s->disk_reach - SINK_HOLD_BYTES);
        r = write_zeros(s, from, s->disk_reach);
        if (r < 0) {
            return r;
        }
    }
    r = sync_target(s);
    if (r < 0) {
        return r;
    }
    s->state = SINK_ABORTED;
    return 0;
}

int sink_abort(sink *s)
{
    if (s->state == SINK_COMMITTED) {
        return -EINVAL;
    }
    return unbless(s);
}

int sink_revoke(sink *s)
{
    if (s->state != SINK_COMMITTED) {
        return -EINVAL;
    }
    return unbless(s);
}

int sink_write_at(sink *s, uint64_t offset, const void *data, size_t len)
{
    if (s->state != SINK_COMMITTED) {
        return -EINVAL;
    }
    /* Past the image and the held-back region, inside the target: never
     * over the image's bytes. */
    if (offset < s->written || offset < SINK_HOLD_BYTES ||
        (s->end > 0 && (offset > s->end || len > s->end - offset))) {
        return -ERANGE;
    }
    if (s->dry_run || len == 0) {
        return 0;
    }
    /* (O_DIRECT wants an aligned buffer: copy into ours, a buffer at a
     * time.) */
    const uint8_t *p = data;
    while (len > 0) {
        size_t n = len < SINK_BUFFER_BYTES ? len : SINK_BUFFER_BYTES;
        memcpy(s->buf, p, n);
        int r = write_full(s, s->buf, n, offset);
        if (r < 0) {
            return r;
        }
        p += n;
        len -= n;
        offset += n;
    }
    return sync_target(s);
}

int sink_reset(sink *s)
{
    if (s->state != SINK_WRITING) {
        return -EINVAL;
    }
    s->head_len = 0;
    s->buf_len = 0;
    s->buf_at = SINK_HOLD_BYTES;
    s->written = 0;
    return 0;
}

uint64_t sink_get_written(const sink *s)
{
    return s->written;
}

uint64_t sink_get_limit(const sink *s)
{
    return s->limit;
}

bool sink_is_direct(const sink *s)
{
    return s->direct;
}
