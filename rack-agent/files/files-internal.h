/* What files.h leaves to the agent: building the resolver, its limits, the
 * path rules (exposed for tests), and filling the TFTP root. Sources of
 * files (the image cache) plug in through files/source.h. */
#pragma once

#include <stddef.h>

#include "files/source.h"

enum {
    FILES_MAX_PATH = 1024,     /* whole path, bytes */
    FILES_MAX_COMPONENT = 255, /* one name between slashes */
    FILES_MAX_SOURCES = 8,
    /* The small-file cache of files_open_cached(). */
    FILES_CACHE_MAX_FILE = 64 * 1024,         /* bytes of one file */
    FILES_CACHE_MAX_BYTES = 16 * 1024 * 1024, /* bytes of all of them */
    FILES_CACHE_MAX_ENTRIES = 1024,
    FILES_CACHE_SETTLE_S = 2, /* seconds since the last change before a file is kept */
};

/* The small-file cache, for tests: files kept and bytes held. */
typedef struct files_cache_stats {
    uint64_t entries, bytes;
    uint64_t hits, misses, fills, invalidations, evictions;
} files_cache_stats;
const files_cache_stats *files_get_cache_stats(const files *f);
/* Tests only: the settle time in seconds (default FILES_CACHE_SETTLE_S). */
void files_set_cache_settle(files *f, unsigned seconds);

/* Opens the TFTP root `root_dir` (a directory, kept open as a dirfd:
 * renaming it later does not matter). -ENOENT, -ENOTDIR, -ENOMEM. */
int files_new(const char *root_dir, files **ret);
/* Accepts NULL, returns NULL. */
files *files_free(files *f);
const char *files_root(const files *f);

/* The path rules, on `len` bytes (so an embedded NUL can be seen): 0 when
 * acceptable; -EACCES for an empty or absolute path, a NUL, a backslash, a
 * "." or ".." component; -ENAMETOOLONG past FILES_MAX_PATH or a component
 * past FILES_MAX_COMPONENT. */
int files_path_check(const char *path, size_t len);

/* Content type by extension: application/efi for .efi, text/plain for
 * .ipxe, .cfg, .txt, .ks, .conf, application/octet-stream otherwise. */
const char *files_content_type(const char *path);

/* Makes `<root_dir>/<name>` a real copy of `src` (following a symlink at
 * src, e.g. Debian's /usr/lib/ipxe/ipxe.efi -> /boot/ipxe.efi), written
 * atomically, when it does not exist yet. Returns 1 when copied, 0 when it
 * was already there, -ENOENT when src is missing, else a negative errno. */
int files_seed_copy(const char *root_dir, const char *name, const char *src);
