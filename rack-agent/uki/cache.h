/* uki/cache: the agent's Unified Kernel Images, built on demand and kept by
 * content (uki.h builds one).
 *
 * A request names the parts: the kernel and the initrd as files.h paths
 * (the image cache's images/<profile>/..., or the deploy ramdisk's
 * directory), whether the overlay initrd follows, and the host's command
 * line. They are opened (the image cache may fetch them first), their
 * validators (files.h ETags: the sha256 of a cached object, inode, size and
 * mtime of a local file) and the command line make the key (uki_key()), and
 * DIR/<key>.efi answers it: from disk when it is there (a hit), else built
 * by objcopy in a libuv worker. Concurrent requests of one key share one
 * build; a rack-wide reinstall builds each distinct image once (the command
 * line holds the host's address and install token, so that is one per host
 * and install, and the firmware's repeated fetches, a TFTP tsize probe, an
 * HTTP retry, are hits).
 *
 * DIR holds at most max_bytes of images: after a build the least recently
 * used (mtime, refreshed on each hit) go. Files left half-written by a
 * crash (*.tmp, tmp.*) are removed at start. The images carry install
 * tokens: DIR is made 0700 and the images 0600. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "files/files.h"
#include "metrics/metrics.h"

typedef struct uki_cache uki_cache;
typedef struct uki_request uki_request;

typedef struct uki_cache_config {
    const char *dir;  /* made if missing */
    const char *stub; /* systemd's EFI stub (UKI_STUB_DEFAULT) */
    uint64_t max_bytes;
    /* The overlay initrd, appended after a request's initrd when it asks
     * (written once to DIR, as a file objcopy's input can name). */
    const uint8_t *overlay;
    size_t overlay_len;
} uki_cache_config;

typedef struct uki_cache_stats {
    uint64_t builds;         /* images built */
    uint64_t build_failures; /* builds that failed (objcopy, a missing stub, disk) */
    uint64_t hits;           /* requests answered by an image already on disk */
    uint64_t joins;          /* requests that waited for a build another started */
    uint64_t evictions;      /* images removed to stay under max_bytes */
} uki_cache_stats;

/* -errno from mkdir/open of dir or writing the overlay. A missing stub is not
 * an error here (each request then fails with a message naming the package):
 * an agent without UEFI UKI hosts needs none. */
int uki_cache_new(uv_loop_t *loop, const uki_cache_config *cfg, uki_cache **ret);
/* Running builds finish in their workers first (uv_queue_work cannot be
 * stopped); their requests are not answered. Accepts NULL. Run the loop
 * afterwards until it is empty: the memory goes with the last worker. */
void uki_cache_close(uki_cache *c);
const uki_cache_stats *uki_cache_get_stats(const uki_cache *c);
/* rackboot_uki_builds_total, _build_failures_total, _hits_total,
 * _joins_total, _evictions_total. */
int uki_cache_register_metrics(const uki_cache *c, metrics *m);

typedef struct uki_part {
    files *f;         /* NULL: no such part (only for the initrd) */
    const char *path; /* as files_open() takes it */
} uki_part;

typedef struct uki_spec {
    uki_part kernel;
    uki_part initrd;
    bool overlay;
    const char *cmdline;
    const char *what; /* for logs: "host=web17 install=..." */
} uki_spec;

/* r == 0: `fd` (O_RDONLY, the receiver's) holds the image, `size` bytes,
 * `etag` its quoted key. r < 0: -ENOENT (a part does not exist), -EIO (a part
 * could not be fetched, or the build failed: logged with objcopy's words),
 * -EBADMSG (a part failed verification), -ENOMEM. */
typedef void (*uki_done_fn)(void *userdata, int r, int fd, uint64_t size, const char *etag);

/* Opens the image of `spec` (copied: need not outlive the call). `done`
 * runs exactly once, from the loop, possibly before this returns (then
 * *ret_req is NULL); until then uki_request_cancel() withdraws it. Returns
 * 0, or -ENOMEM / -EINVAL with `done` never called. */
int uki_cache_open(uki_cache *c, const uki_spec *spec, uki_done_fn done, void *userdata,
                   uki_request **ret_req);
/* `done` will not run. Accepts NULL. */
void uki_request_cancel(uki_request *req);
