/* The cache as the agent serves it: request paths of profiles' images and of
 * objects by content (files.h documents the layout), and pre-warming.
 *
 *   images/<profile>/vmlinuz               the profile's IMAGE_KERNEL
 *   images/<profile>/initrd.img            its IMAGE_INITRD
 *   images/<profile>/LiveOS/squashfs.img   its IMAGE_STAGE2
 *   images/<profile>/<name>                its IMAGE_OTHER called <name>
 *   objects/<sha256 hex>                   a cached object, or any image of
 *                                          a profile in the current intents
 *
 * Profiles come from the store's current intent set at the time of the
 * request. Answers carry the quoted sha256 as ETag and are always verified:
 * an object whose origin bytes fail verification is never served. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cache/cache.h"
#include "files/files.h"
#include "files/source.h"
#include "model/intent.h"

typedef struct cache_images cache_images;
typedef struct cache_images_request cache_images_request;

/* Neither is owned; both must outlive the result. */
int cache_images_new(cache *c, const intents_store *store, cache_images **ret);
/* Pending requests are cancelled (no callbacks). Accepts NULL, returns NULL. */
cache_images *cache_images_free(cache_images *ci);

/* True for the paths this module answers ("images/..." and "objects/..."),
 * whether or not they name something. */
bool cache_images_handles(const char *path);

/* Opens `path` (no leading '/', already percent-decoded, untrusted). The
 * callback gets 0 and a files_result whose fd the receiver owns, or -ENOENT
 * (no such profile, image or object), -EBADMSG (the origin's bytes failed
 * verification), -EIO (the fetch failed, or the object exceeds the cache's
 * limits), -ENAMETOOLONG. It may run before this returns, in which case
 * *ret_req is NULL. Returns 0, or a negative errno when nothing was started
 * (the callback is then not called). */
int cache_images_open(cache_images *ci, const char *path, files_done_fn done, void *userdata,
                      cache_images_request **ret_req);

/* The callback will not be called. */
void cache_images_request_cancel(cache_images_request *req);

/* Sources for files_add_source() (files/source.h; userdata: the
 * cache_images), so HTTP and TFTP serve the paths through files_open():
 *
 *     files_add_source(f, "images", cache_images_source_images, ci);
 *     files_add_source(f, "objects", cache_images_source_objects, ci);
 *
 * `path` is the part after the prefix. Unlike cache_images_open(), errors go
 * to the callback too (as files.c does for the TFTP root), and 0 is
 * returned. */
int cache_images_source_images(void *ci, const char *path, const struct sockaddr_in6 *client,
                               files_done_fn done, void *userdata, files_request **ret_req);
int cache_images_source_objects(void *ci, const char *path, const struct sockaddr_in6 *client,
                                files_done_fn done, void *userdata, files_request **ret_req);

typedef struct cache_prewarm_stats {
    size_t profiles; /* profiles with at least one intent */
    size_t images;   /* their images */
    size_t cached;   /* already in the cache */
    size_t started;  /* fetching or verifying (started or queued; includes running ones) */
    size_t failed;   /* could not be started */
} cache_prewarm_stats;

/* Fetches every image of every profile of `set` that has at least one
 * intent, at once (fetches beyond the cache's max_fetches queue). */
void cache_images_prewarm(cache_images *ci, const intent_set *set, cache_prewarm_stats *ret);
