/* What files.h leaves to the agent: building the resolver, the hook through
 * which other sources (the image cache: images/, objects/) plug in, the
 * path rules (exposed for tests), and filling the TFTP root.
 *
 * Resolution order for a path:
 *   1. "files/<name>"             -> <name> in the TFTP root
 *   2. "<prefix>/..." of a hook   -> that hook (files_add_source)
 *   3. anything else              -> the bare name in the TFTP root
 * Every path first passes files_path_check(). */
#pragma once

#include <stddef.h>

#include "files.h"

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

/* A pending open of a source. A source embeds this as its request's first
 * member; files_request_cancel() calls `cancel`, which must release it
 * without calling the done callback. */
struct files_request {
    void (*cancel)(files_request *req);
};

/* Opens `path` (the part after "<prefix>/", already checked) the way
 * files_open() does; same contract for the callback and *ret_req. */
typedef int (*files_source_fn)(void *userdata, const char *path, files_done_fn done,
                               void *done_userdata, files_request **ret_req);

/* Opens the TFTP root `root_dir` (a directory, kept open as a dirfd:
 * renaming it later does not matter). -ENOENT, -ENOTDIR, -ENOMEM. */
int files_new(const char *root_dir, files **ret);
/* Accepts NULL, returns NULL. */
files *files_free(files *f);
const char *files_root(const files *f);

/* Routes "<prefix>/..." to `fn` (prefix without slashes, e.g. "images").
 * -E2BIG past FILES_MAX_SOURCES, -EEXIST for a prefix already taken or
 * "files", -EINVAL for an empty prefix or one with a '/'. */
int files_add_source(files *f, const char *prefix, files_source_fn fn, void *userdata);

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
