/* The agent's verified image cache.
 *
 * Objects are named by their sha256 and stored content-addressed:
 *
 *   DIR/objects/ab/<64 hex digits>   complete, verified objects
 *   DIR/tmp/<hex>.XXXXXX             fetches in progress
 *
 * An object missing from the cache is fetched from its origin URL (http,
 * https, file; see fetch.h) into a temporary file while it is hashed; only
 * when its sha256 (and size, when known) match is it fsync'ed and renamed
 * into objects/, so nothing unverified is ever visible or served. Concurrent
 * requests for one missing object share one upstream fetch; at most
 * `max_fetches` fetches run at once, the others queue. Least-recently-used
 * objects are evicted (unlinked) to keep the total under `max_size`; a reader
 * holding an fd of an evicted object keeps reading it (Linux keeps an
 * unlinked file until its last fd closes).
 *
 * An object is never served unverified, not even after it was stored: bit
 * rot, a bad block or an operator's mistake can change it on disk. When it is
 * stored (verified) the cache remembers its file's stamp (device, inode,
 * size, mtime, ctime, from fstat after the rename); every open fstats the fd
 * and serves it at once only while the stamp is unchanged. Otherwise, and for
 * objects this process has no stamp of, it is hashed again in the libuv
 * thread pool first (requests wait, as on a miss, and share one
 * verification); when it does not match (or cannot be read) it is removed,
 * counted (`corrupt`), reported to cache_on_corrupt()'s callback, and fetched
 * again from its origin as on a miss. A write within the same file system
 * clock tick as the store leaves the times unchanged; nothing short of
 * hashing on every open could tell.
 *
 * On start the index is rebuilt from disk: objects/ is scanned (recency from
 * each file's atime, which the cache sets itself on use, so `noatime` mounts
 * do not matter), tmp/ is emptied, and names that are not a sha256 in their
 * right subdirectory are ignored and counted. Objects are not hashed at start
 * (minutes for a large cache) and stamps are not kept across runs: each is
 * verified once, when first opened or pre-fetched.
 *
 * Everything runs on the caller's libuv loop; fsync, rename and hashing of
 * cached objects go to the libuv thread pool (whose size, not the cache,
 * bounds concurrent verifications). Like other library modules, the cache
 * logs at debug at most and returns negative errnos. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define CACHE_DEFAULT_MAX_SIZE    (20ULL << 30)
#define CACHE_DEFAULT_MAX_FETCHES 4u

typedef struct cache cache;
typedef struct cache_request cache_request;

typedef struct cache_config {
    const char *dir;          /* created if missing */
    uint64_t max_size;        /* bytes; 0: CACHE_DEFAULT_MAX_SIZE */
    unsigned max_fetches;     /* concurrent upstream fetches; 0: default */
    uint64_t max_object_size; /* 0 or more than max_size: max_size */
    long connect_timeout_s;   /* 0: 10 */
    long low_speed_time_s;    /* abort below 1 byte/s for this long; 0: 30 */
    long max_redirects;       /* <0: 5 */
} cache_config;

/* Counters (monotonic) and gauges, read in place by the metrics registry. */
typedef struct cache_stats {
    uint64_t hits;            /* opens answered from disk (at once, or verified) */
    uint64_t misses;          /* opens that had to wait for a fetch */
    uint64_t fetches;         /* upstream fetches started */
    uint64_t fetch_failures;  /* fetches that failed (network, status, size) */
    uint64_t verify_failures; /* fetches whose sha256 or size did not match */
    uint64_t evictions;
    uint64_t verifications; /* cached objects re-hashed before serving */
    uint64_t corrupt;       /* cached objects that failed it and were removed */
    uint64_t bytes_fetched; /* body bytes received from origins */
    uint64_t bytes_stored;  /* gauge: size of all objects */
    uint64_t objects;       /* gauge */
    /* From the last index rebuild. */
    uint64_t rebuild_ignored;  /* files that are not objects */
    uint64_t rebuild_partials; /* temporary files removed */
} cache_stats;

/* What to open: the object's digest, and where to get it when missing. */
typedef struct cache_object {
    uint8_t sha256[32];
    const char *url; /* NULL: only if cached already */
    uint64_t size;   /* expected size, 0 when unknown */
} cache_object;

/* Creates the directories, rebuilds the index and evicts down to max_size.
 * The loop must outlive the cache. */
int cache_new(uv_loop_t *loop, const cache_config *cfg, cache **ret);

/* Stops every fetch (their temporary files are removed, waiting requests are
 * dropped without callback) and closes the handles; memory is released once
 * the loop has run the close callbacks. Accepts NULL. Must not be called from
 * a cache callback. */
void cache_close(cache *c);

/* r == 0: fd (O_RDONLY|O_CLOEXEC, the receiver's to close) holds the verified
 * object of `size` bytes. r < 0: -EBADMSG (the origin's bytes did not match
 * the sha256 or size), -EIO (fetch failed), -EFBIG (larger than the cache's
 * object limit), or a local errno (-ENOSPC, ...). */
typedef void (*cache_done_fn)(void *userdata, int r, int fd, uint64_t size);

/* Opens an object, fetching it first when it is missing. Returns 1 when the
 * callback already ran (a hit; *ret_req is set to NULL), 0 when the request
 * waits for a fetch or for the object's verification (*ret_req, if given, can
 * cancel it until the callback runs), -ENOENT when the object is missing and
 * obj->url is NULL, other negative errnos when nothing could be started (the
 * callback is then not called). A cached object found corrupt is fetched
 * from obj->url, or answered -ENOENT without one: pass the URL whenever it is
 * known. `obj` is copied. */
int cache_open(cache *c, const cache_object *obj, cache_done_fn done, void *userdata,
               cache_request **ret_req);

/* The callback will not be called; the fetch goes on for the other requests
 * (and completes into the cache even when none is left). */
void cache_request_cancel(cache_request *req);

/* Fetches the object when it is neither cached nor being fetched, and
 * verifies it when cached but not known good (as an open would). Returns 1
 * when cached and known good, 0 when a fetch or a verification runs or is
 * queued for it. Does not count as a hit or a miss and does not refresh
 * recency. */
int cache_prefetch(cache *c, const cache_object *obj);

/* Told after every upstream fetch, before the waiters: r == 0 when the
 * object was stored, else why not (as in cache_done_fn). When r is -EIO,
 * `error` says why in the operator's words (fetch.h: "HTTP 404 Not Found",
 * "... Couldn't connect to server"), else it is NULL. For the daemon's log
 * lines; `url` and `error` are valid during the call. */
typedef void (*cache_fetched_fn)(void *userdata, const uint8_t sha256[32], const char *url, int r,
                                 const char *error, uint64_t bytes);
void cache_on_fetched(cache *c, cache_fetched_fn fn, void *userdata);

/* Told when a cached object failed its verification and was removed, before
 * it is fetched again: r is -EBADMSG (its bytes or size were wrong) or the
 * error that kept it from being read. For the daemon's log line. */
typedef void (*cache_corrupt_fn)(void *userdata, const uint8_t sha256[32], int r);
void cache_on_corrupt(cache *c, cache_corrupt_fn fn, void *userdata);

/* True when the object is in the cache now (stored verified; it is checked
 * again before it is served). */
bool cache_contains(const cache *c, const uint8_t sha256[32]);

/* Fetches and verifications running or queued. */
size_t cache_pending(const cache *c);

const cache_stats *cache_get_stats(const cache *c);

/* Registers the stats as rackboot_cache_* series (hits_total, misses_total,
 * upstream_fetches_total, fetch_failures_total, verify_failures_total,
 * evictions_total, verifications_total, corrupt_total, fetched_bytes_total;
 * gauges stored_bytes, objects). The
 * cache must outlive the registry's use of them. */
struct metrics;
int cache_register_metrics(const cache *c, struct metrics *m);
const char *cache_dir(const cache *c);
uint64_t cache_max_size(const cache *c);
