#include "cache/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/fetch.h"
#include "fileio.h"
#include "hashmap.h"
#include "hex.h"
#include "log.h"
#include "metrics/metrics.h"
#include "sha256.h"
#include "timeutil.h"
#include "util.h"

/* "ab/" + 64 hex digits + NUL: an object's name relative to objects/. */
#define OBJECT_REL_LEN (3 + SHA256_HEX_LEN + 1)
/* "<hex>.<pid>.<seq>" relative to tmp/. */
#define TMP_NAME_LEN (SHA256_HEX_LEN + 48)
/* Recency is written to the file's atime at most this often per object. */
#define TOUCH_PERSIST_MS 1000
/* Read size of a verification. */
#define VERIFY_CHUNK (1u << 20)

/* The identity of an object's file as the cache last knew it verified: any
 * write, truncation, replacement or metadata change moves one of these. */
typedef struct stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} stamp;

typedef struct entry {
    uint8_t sha256[SHA256_LEN];
    char hex[SHA256_HEX_LEN + 1];
    uint64_t size;
    uint64_t persisted_ms;     /* when atime was last written */
    bool stamped;              /* false: never verified by this process */
    stamp st;                  /* valid when stamped */
    struct entry *prev, *next; /* LRU list, head = most recent */
} entry;

typedef enum pending_state {
    PENDING_QUEUED,
    PENDING_RUNNING,
    PENDING_COMMITTING,
    PENDING_VERIFYING, /* a cached object re-hashed in the thread pool */
} pending_state;

struct cache_request {
    struct pending *p;
    cache_done_fn done;
    void *userdata;
    cache_request *prev, *next;
};

typedef struct pending {
    cache *c;
    uint8_t sha256[SHA256_LEN];
    char hex[SHA256_HEX_LEN + 1];
    char *url;
    char *error; /* the fetcher's words for a failed fetch, or NULL */
    uint64_t expect_size;
    pending_state state;
    cache_request *waiters, *waiters_tail;
    fetch_transfer *xfer;
    int fd;
    char tmp_name[TMP_NAME_LEN];
    sha256_ctx *hash;
    uint64_t bytes;
    uv_work_t work;
    int work_r;
    stamp work_stamp;      /* the file as committed or verified */
    bool work_stamped;     /* work_stamp is valid */
    uint64_t verify_size;  /* PENDING_VERIFYING: size it must have, 0: unknown */
    struct pending *qnext; /* queue of PENDING_QUEUED */
} pending;

struct cache {
    uv_loop_t *loop;
    char *dir;
    int objects_fd;
    int tmp_fd;
    uint64_t max_size;
    uint64_t max_object_size;
    unsigned max_fetches;
    fetcher *fetcher;
    hashmap *index;   /* sha256 → entry */
    hashmap *pending; /* sha256 → pending */
    entry *lru_head, *lru_tail;
    pending *queue_head, *queue_tail;
    unsigned n_running;
    unsigned n_in_pool; /* commits and verifications in the thread pool */
    uint64_t tmp_seq;
    bool closing;
    cache_stats stats;
    cache_fetched_fn on_fetched;
    void *on_fetched_userdata;
    cache_corrupt_fn on_corrupt;
    void *on_corrupt_userdata;
};

static void object_rel(const char *hex, char buf[OBJECT_REL_LEN])
{
    snprintf(buf, OBJECT_REL_LEN, "%.2s/%s", hex, hex);
}

static void stamp_from(stamp *s, const struct stat *st)
{
    *s = (stamp){ .dev = st->st_dev,
                  .ino = st->st_ino,
                  .size = st->st_size,
                  .mtime = st->st_mtim,
                  .ctime = st->st_ctim };
}

static bool ts_eq(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* Everything but the ctime, which the cache moves itself (touch()). */
static bool stamp_same_content(const stamp *s, const struct stat *st)
{
    return s->dev == st->st_dev && s->ino == st->st_ino && s->size == st->st_size &&
           ts_eq(s->mtime, st->st_mtim);
}

static bool stamp_matches(const stamp *s, const struct stat *st)
{
    return stamp_same_content(s, st) && ts_eq(s->ctime, st->st_ctim);
}

/* ---- LRU index ---- */

static void lru_unlink(cache *c, entry *e)
{
    if (e->prev) {
        e->prev->next = e->next;
    } else {
        c->lru_head = e->next;
    }
    if (e->next) {
        e->next->prev = e->prev;
    } else {
        c->lru_tail = e->prev;
    }
    e->prev = e->next = NULL;
}

static void lru_push_head(cache *c, entry *e)
{
    e->prev = NULL;
    e->next = c->lru_head;
    if (c->lru_head) {
        c->lru_head->prev = e;
    } else {
        c->lru_tail = e;
    }
    c->lru_head = e;
}

static int index_add(cache *c, const uint8_t sha[SHA256_LEN], uint64_t size, entry **ret)
{
    entry *e = calloc(1, sizeof(*e));
    if (!e) {
        return -ENOMEM;
    }
    memcpy(e->sha256, sha, SHA256_LEN);
    sha256_to_hex(sha, e->hex);
    e->size = size;
    int r = hashmap_put(c->index, e->sha256, SHA256_LEN, e);
    if (r < 0) {
        free(e);
        return r;
    }
    lru_push_head(c, e);
    c->stats.bytes_stored += size;
    c->stats.objects++;
    if (ret) {
        *ret = e;
    }
    return 0;
}

static void index_drop(cache *c, entry *e)
{
    hashmap_remove(c->index, e->sha256, SHA256_LEN);
    lru_unlink(c, e);
    c->stats.bytes_stored -= e->size;
    c->stats.objects--;
    free(e);
}

/* Unlinks least-recently-used objects until the total fits, never `keep`. */
static void evict(cache *c, const entry *keep)
{
    while (c->stats.bytes_stored > c->max_size && c->lru_tail && c->lru_tail != keep) {
        entry *e = c->lru_tail;
        char rel[OBJECT_REL_LEN];
        object_rel(e->hex, rel);
        if (unlinkat(c->objects_fd, rel, 0) < 0 && errno != ENOENT) {
            log_debug("cache evict unlink failed object=%s err=%s", e->hex, strerror(errno));
        }
        log_debug("cache evicted object=%s size=%llu", e->hex, (unsigned long long)e->size);
        c->stats.evictions++;
        index_drop(c, e);
    }
}

/* Makes e the most recent; with `fd` (e's file, just checked against its
 * stamp), also writes that to the file's atime now and then. */
static void touch(cache *c, entry *e, int fd)
{
    if (c->lru_head != e) {
        lru_unlink(c, e);
        lru_push_head(c, e);
    }
    uint64_t now = now_monotonic_ms();
    if (fd >= 0 && now - e->persisted_ms >= TOUCH_PERSIST_MS) {
        /* Recency for the next index rebuild, independent of mount options. */
        struct timespec ts[2] = { { .tv_nsec = UTIME_NOW }, { .tv_nsec = UTIME_OMIT } };
        (void)futimens(fd, ts);
        e->persisted_ms = now;
        /* That moved the ctime: take the new one into the stamp, unless
         * anything else moved too (then the next open verifies). */
        struct stat st;
        if (e->stamped && fstat(fd, &st) == 0 && stamp_same_content(&e->st, &st)) {
            e->st.ctime = st.st_ctim;
        }
    }
}

/* ---- index rebuild ---- */

typedef struct found {
    uint8_t sha256[SHA256_LEN];
    uint64_t size;
    struct timespec atime;
} found;

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return s[n] == '\0';
}

static int cmp_atime(const void *a, const void *b)
{
    const found *x = a, *y = b;
    if (x->atime.tv_sec != y->atime.tv_sec) {
        return x->atime.tv_sec < y->atime.tv_sec ? -1 : 1;
    }
    if (x->atime.tv_nsec != y->atime.tv_nsec) {
        return x->atime.tv_nsec < y->atime.tv_nsec ? -1 : 1;
    }
    return memcmp(x->sha256, y->sha256, SHA256_LEN);
}

static int scan_subdir(cache *c, const char *sub, found **list, size_t *n, size_t *cap)
{
    int fd = openat(c->objects_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return negative_errno();
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int r = negative_errno();
        close(fd);
        return r;
    }
    struct dirent *de;
    int r = 0;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (streq(name, ".") || streq(name, "..")) {
            continue;
        }
        struct stat st;
        if (!is_lower_hex(name, SHA256_HEX_LEN) || strncmp(name, sub, 2) != 0 ||
            fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
            log_debug("cache ignoring file that is not an object path=objects/%s/%s", sub, name);
            c->stats.rebuild_ignored++;
            continue;
        }
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 256;
            found *grown = realloc(*list, ncap * sizeof(**list));
            if (!grown) {
                r = -ENOMEM;
                break;
            }
            *list = grown;
            *cap = ncap;
        }
        found *f = &(*list)[(*n)++];
        RB_ASSERT(sha256_from_hex(name, f->sha256) == 0);
        f->size = (uint64_t)st.st_size;
        f->atime = st.st_atim;
    }
    closedir(d);
    return r;
}

static int rebuild(cache *c)
{
    /* Partial fetches of an earlier run: never complete, never verified. */
    int dup = fcntl(c->tmp_fd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
    if (!d) {
        int r = negative_errno();
        if (dup >= 0) {
            close(dup);
        }
        return r;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (streq(de->d_name, ".") || streq(de->d_name, "..")) {
            continue;
        }
        if (unlinkat(c->tmp_fd, de->d_name, 0) == 0) {
            c->stats.rebuild_partials++;
        } else {
            log_debug("cache cannot remove tmp/%s err=%s", de->d_name, strerror(errno));
        }
    }
    closedir(d);

    dup = fcntl(c->objects_fd, F_DUPFD_CLOEXEC, 0);
    d = dup >= 0 ? fdopendir(dup) : NULL;
    if (!d) {
        int r = negative_errno();
        if (dup >= 0) {
            close(dup);
        }
        return r;
    }
    found *list = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    while (r == 0 && (de = readdir(d))) {
        const char *name = de->d_name;
        if (streq(name, ".") || streq(name, "..")) {
            continue;
        }
        struct stat st;
        if (!is_lower_hex(name, 2) || fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode)) {
            log_debug("cache ignoring entry that is not an object directory path=objects/%s", name);
            c->stats.rebuild_ignored++;
            continue;
        }
        r = scan_subdir(c, name, &list, &n, &cap);
    }
    closedir(d);
    if (r == 0 && n > 0) {
        qsort(list, n, sizeof(*list), cmp_atime);
        /* Oldest first: each push to the head makes the newest end up there. */
        for (size_t i = 0; r == 0 && i < n; i++) {
            r = index_add(c, list[i].sha256, list[i].size, NULL);
        }
    }
    free(list);
    return r;
}

/* ---- fetches ---- */

static void pending_free(pending *p)
{
    RB_ASSERT(!p->waiters);
    if (p->fd >= 0) {
        close(p->fd);
    }
    sha256_free(p->hash);
    free(p->url);
    free(p->error);
    free(p);
}

static void remove_tmp(pending *p)
{
    if (p->tmp_name[0]) {
        (void)unlinkat(p->c->tmp_fd, p->tmp_name, 0);
        p->tmp_name[0] = '\0';
    }
}

/* Hands each waiter its own fd of the committed object, or the error. The
 * pending is out of the table already, so callbacks may open again. */
static void complete_waiters(pending *p, int r, uint64_t size)
{
    cache *c = p->c;
    while (p->waiters) {
        cache_request *w = p->waiters;
        p->waiters = w->next;
        if (p->waiters) {
            p->waiters->prev = NULL;
        } else {
            p->waiters_tail = NULL;
        }
        int fd = -1, wr = r;
        if (wr == 0) {
            char rel[OBJECT_REL_LEN];
            object_rel(p->hex, rel);
            fd = openat(c->objects_fd, rel, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                wr = negative_errno();
            }
        }
        cache_done_fn done = w->done;
        void *ud = w->userdata;
        free(w);
        done(ud, wr, fd, wr == 0 ? size : 0);
    }
}

static void start_queued(cache *c);

static void pending_finish(pending *p, int r)
{
    cache *c = p->c;
    hashmap_remove(c->pending, p->sha256, SHA256_LEN);
    if (r < 0) {
        remove_tmp(p);
    }
    start_queued(c);
    if (c->on_fetched) {
        c->on_fetched(c->on_fetched_userdata, p->sha256, p->url, r, r == -EIO ? p->error : NULL,
                      p->bytes);
    }
    complete_waiters(p, r, p->bytes);
    pending_free(p);
}

static void on_commit_work(uv_work_t *w)
{
    pending *p = w->data;
    cache *c = p->c;
    char rel[OBJECT_REL_LEN];
    object_rel(p->hex, rel);
    char sub[3] = { p->hex[0], p->hex[1], '\0' };
    int r = 0;
    if (fsync(p->fd) < 0) {
        r = negative_errno();
    }
    if (r == 0 && mkdirat(c->objects_fd, sub, 0755) < 0 && errno != EEXIST) {
        r = negative_errno();
    }
    if (r == 0 && renameat(c->tmp_fd, p->tmp_name, c->objects_fd, rel) < 0) {
        r = negative_errno();
    }
    if (r == 0) {
        int dfd = openat(c->objects_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0) {
            r = negative_errno();
        }
        if (dfd >= 0) {
            close(dfd);
        }
    }
    /* The object as stored (the rename moved its ctime): what later opens
     * compare against instead of hashing it again. */
    struct stat st;
    p->work_stamped = r == 0 && fstat(p->fd, &st) == 0;
    if (p->work_stamped) {
        stamp_from(&p->work_stamp, &st);
    }
    p->work_r = r;
}

static void cache_free_now(cache *c);

static void on_commit_done(uv_work_t *w, int status)
{
    pending *p = w->data;
    cache *c = p->c;
    c->n_in_pool--;
    int r = status < 0 ? -ECANCELED : p->work_r;
    char rel[OBJECT_REL_LEN];
    object_rel(p->hex, rel);
    if (r == 0) {
        /* The rename happened: the tmp name is gone. */
        p->tmp_name[0] = '\0';
    }
    if (c->closing) {
        /* Nobody waits any more; a committed object is found on the next
         * start. */
        remove_tmp(p);
        p->waiters = NULL;
        pending_free(p);
        if (c->n_in_pool == 0) {
            cache_free_now(c);
        }
        return;
    }
    c->n_running--;
    if (r < 0) {
        log_debug("cache commit failed object=%s err=%s", p->hex, errstr(r));
        c->stats.fetch_failures++;
        pending_finish(p, r);
        return;
    }
    entry *e = NULL;
    r = index_add(c, p->sha256, p->bytes, &e);
    if (r < 0) {
        (void)unlinkat(c->objects_fd, rel, 0);
        pending_finish(p, r);
        return;
    }
    e->persisted_ms = now_monotonic_ms();
    e->stamped = p->work_stamped;
    e->st = p->work_stamp;
    evict(c, e);
    log_debug("cache stored object=%s size=%llu", p->hex, (unsigned long long)p->bytes);
    pending_finish(p, 0);
}

static int on_data(void *userdata, const void *data, size_t len)
{
    pending *p = userdata;
    cache *c = p->c;
    if (len > c->max_object_size - p->bytes) {
        return -EFBIG;
    }
    if (p->expect_size && len > p->expect_size - p->bytes) {
        return -EBADMSG; /* more bytes than the object has */
    }
    int r = fileio_write_all(p->fd, data, len);
    if (r < 0) {
        return r;
    }
    r = sha256_update(p->hash, data, len);
    if (r < 0) {
        return r;
    }
    p->bytes += len;
    c->stats.bytes_fetched += len;
    return 0;
}

static void on_fetched(void *userdata, int r, long http_status, const char *errmsg)
{
    pending *p = userdata;
    cache *c = p->c;
    p->xfer = NULL;
    if (r == 0 && p->expect_size && p->bytes != p->expect_size) {
        r = -EBADMSG;
    }
    if (r == 0) {
        uint8_t digest[SHA256_LEN];
        r = sha256_final(p->hash, digest);
        if (r == 0 && memcmp(digest, p->sha256, SHA256_LEN) != 0) {
            r = -EBADMSG;
        }
    }
    if (r < 0) {
        if (r == -EBADMSG) {
            c->stats.verify_failures++;
        } else {
            c->stats.fetch_failures++;
        }
        log_debug("cache fetch failed object=%s url=%s status=%ld err=%s detail=%s", p->hex, p->url,
                  http_status, errstr(r), errmsg ? errmsg : "-");
        if (r == -EIO && errmsg && errmsg[0]) {
            free(p->error);
            p->error = strdup(errmsg); /* NULL: the log line says errstr() */
        }
        c->n_running--;
        pending_finish(p, r);
        return;
    }
    p->state = PENDING_COMMITTING;
    p->work.data = p;
    c->n_in_pool++;
    r = uv_queue_work(c->loop, &p->work, on_commit_work, on_commit_done);
    if (r < 0) {
        c->n_in_pool--;
        c->n_running--;
        c->stats.fetch_failures++;
        pending_finish(p, -EIO);
    }
}

/* Opens the temporary file and starts the transfer. On failure nothing of
 * the attempt is left behind. */
static int pending_start(pending *p)
{
    cache *c = p->c;
    snprintf(p->tmp_name, sizeof(p->tmp_name), "%s.%ld.%llu", p->hex, (long)getpid(),
             (unsigned long long)++c->tmp_seq);
    p->fd = openat(c->tmp_fd, p->tmp_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (p->fd < 0) {
        p->tmp_name[0] = '\0';
        return negative_errno();
    }
    p->hash = sha256_new();
    int r = p->hash ? fetcher_start(c->fetcher, p->url, on_data, on_fetched, p, &p->xfer) : -ENOMEM;
    if (r < 0) {
        remove_tmp(p);
        close(p->fd);
        p->fd = -1;
        p->hash = sha256_free(p->hash);
        return r;
    }
    p->state = PENDING_RUNNING;
    c->n_running++;
    c->stats.fetches++;
    log_debug("cache fetch started object=%s url=%s", p->hex, p->url);
    return 0;
}

static void start_queued(cache *c)
{
    while (!c->closing && c->queue_head && c->n_running < c->max_fetches) {
        pending *p = c->queue_head;
        c->queue_head = p->qnext;
        if (!c->queue_head) {
            c->queue_tail = NULL;
        }
        p->qnext = NULL;
        int r = pending_start(p);
        if (r < 0) {
            c->stats.fetch_failures++;
            hashmap_remove(c->pending, p->sha256, SHA256_LEN);
            if (c->on_fetched) {
                c->on_fetched(c->on_fetched_userdata, p->sha256, p->url, r, NULL, 0);
            }
            complete_waiters(p, r, 0);
            pending_free(p);
        }
    }
}

/* Finds or creates the fetch of `obj`. */
static int pending_get(cache *c, const cache_object *obj, pending **ret)
{
    pending *p = hashmap_get(c->pending, obj->sha256, SHA256_LEN);
    if (p) {
        *ret = p;
        return 0;
    }
    if (!obj->url) {
        return -ENOENT;
    }
    if (obj->size > c->max_object_size) {
        return -EFBIG;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        return -ENOMEM;
    }
    p->c = c;
    p->fd = -1;
    memcpy(p->sha256, obj->sha256, SHA256_LEN);
    sha256_to_hex(obj->sha256, p->hex);
    p->expect_size = obj->size;
    p->url = strdup(obj->url);
    int r = p->url ? hashmap_put(c->pending, p->sha256, SHA256_LEN, p) : -ENOMEM;
    if (r < 0) {
        pending_free(p);
        return r;
    }
    if (c->n_running < c->max_fetches) {
        r = pending_start(p);
        if (r < 0) {
            hashmap_remove(c->pending, p->sha256, SHA256_LEN);
            pending_free(p);
            return r;
        }
    } else {
        p->state = PENDING_QUEUED;
        if (c->queue_tail) {
            c->queue_tail->qnext = p;
        } else {
            c->queue_head = p;
        }
        c->queue_tail = p;
    }
    *ret = p;
    return 0;
}

/* ---- verification of cached objects ----
 *
 * An object is trusted while its file still has the stamp it had when the
 * cache last verified it (stored it, or hashed it): one fstat per open.
 * Anything else (no stamp since this process started, another size, inode,
 * mtime or ctime) is hashed again in the thread pool before it is served,
 * the requests waiting on a pending like on a fetch. A mismatch removes the
 * object and turns the pending into its fetch. */

static void on_verify_work(uv_work_t *w)
{
    pending *p = w->data;
    struct stat before, after;
    uint8_t digest[SHA256_LEN];
    uint8_t *buf = NULL;
    uint64_t off = 0;
    int r = 0;
    if (fstat(p->fd, &before) < 0) {
        r = negative_errno();
        goto out;
    }
    if (!S_ISREG(before.st_mode) ||
        (p->verify_size && (uint64_t)before.st_size != p->verify_size)) {
        r = -EBADMSG;
        goto out;
    }
    buf = malloc(VERIFY_CHUNK);
    if (!buf) {
        r = -ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t k = pread(p->fd, buf, VERIFY_CHUNK, (off_t)off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            r = negative_errno(); /* -EIO: a bad block is as bad as bad bytes */
            goto out;
        }
        if (k == 0) {
            break;
        }
        r = sha256_update(p->hash, buf, (size_t)k);
        if (r < 0) {
            goto out;
        }
        off += (uint64_t)k;
    }
    r = sha256_final(p->hash, digest);
    if (r < 0) {
        goto out;
    }
    if (memcmp(digest, p->sha256, SHA256_LEN) != 0 || off != (uint64_t)before.st_size) {
        r = -EBADMSG;
        goto out;
    }
    /* Written to while it was read: what was hashed may not be what is
     * there now. */
    stamp_from(&p->work_stamp, &before);
    if (fstat(p->fd, &after) < 0 || !stamp_matches(&p->work_stamp, &after)) {
        r = -EBADMSG;
        goto out;
    }
    p->work_stamped = true;
    p->bytes = off;
out:
    free(buf);
    p->work_r = r;
}

static size_t count_waiters(const pending *p)
{
    size_t n = 0;
    for (const cache_request *w = p->waiters; w; w = w->next) {
        n++;
    }
    return n;
}

/* Removes an object found wrong: its name only while it still leads to the
 * file that was hashed (`fd`), its entry in any case. */
static void drop_corrupt(cache *c, entry *e, int fd, int r)
{
    char rel[OBJECT_REL_LEN];
    object_rel(e->hex, rel);
    struct stat a, b;
    if (fstat(fd, &a) == 0 && fstatat(c->objects_fd, rel, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
        a.st_dev == b.st_dev && a.st_ino == b.st_ino && unlinkat(c->objects_fd, rel, 0) < 0) {
        log_debug("cache cannot remove corrupt object=%s err=%s", e->hex, strerror(errno));
    }
    log_debug("cache object corrupt on disk, removed object=%s err=%s", e->hex, errstr(r));
    c->stats.corrupt++;
    index_drop(c, e);
}

/* The cached copy is gone or wrong: the waiters get the object the way a
 * miss does, from its origin, or -ENOENT when nobody said where that is. */
static void verify_failed(pending *p)
{
    cache *c = p->c;
    close(p->fd);
    p->fd = -1;
    p->hash = sha256_free(p->hash);
    p->bytes = 0;
    p->work_stamped = false;
    if (!p->url || p->expect_size > c->max_object_size) {
        hashmap_remove(c->pending, p->sha256, SHA256_LEN);
        complete_waiters(p, p->url ? -EFBIG : -ENOENT, 0);
        pending_free(p);
        return;
    }
    c->stats.misses += count_waiters(p);
    if (c->n_running < c->max_fetches) {
        int r = pending_start(p);
        if (r < 0) {
            c->stats.fetch_failures++;
            pending_finish(p, r);
        }
        return;
    }
    p->state = PENDING_QUEUED;
    if (c->queue_tail) {
        c->queue_tail->qnext = p;
    } else {
        c->queue_head = p;
    }
    c->queue_tail = p;
}

static void on_verify_done(uv_work_t *w, int status)
{
    pending *p = w->data;
    cache *c = p->c;
    c->n_in_pool--;
    if (c->closing) {
        p->waiters = NULL; /* dropped by cache_close() */
        pending_free(p);
        if (c->n_in_pool == 0) {
            cache_free_now(c);
        }
        return;
    }
    int r = status < 0 ? -ECANCELED : p->work_r;
    c->stats.verifications++;
    /* Only a fetch adds an entry, and none runs while this pending stands
     * for the object: an entry is the one that was hashed. It is missing
     * only when evicted meanwhile. */
    entry *e = hashmap_get(c->index, p->sha256, SHA256_LEN);
    size_t n = count_waiters(p);
    if (r == 0 && e) {
        c->stats.bytes_stored = c->stats.bytes_stored - e->size + p->bytes;
        e->size = p->bytes;
        e->stamped = true;
        e->st = p->work_stamp;
        if (n > 0) {
            touch(c, e, p->fd);
        }
        c->stats.hits += n;
        hashmap_remove(c->pending, p->sha256, SHA256_LEN);
        complete_waiters(p, 0, e->size);
        pending_free(p);
        return;
    }
    if (e) {
        drop_corrupt(c, e, p->fd, r);
        if (c->on_corrupt) {
            c->on_corrupt(c->on_corrupt_userdata, p->sha256, r);
        }
    } else if (n == 0) {
        /* Evicted while a pre-warm checked it: nobody wants it now. */
        hashmap_remove(c->pending, p->sha256, SHA256_LEN);
        pending_free(p);
        return;
    }
    verify_failed(p);
}

/* Starts hashing e's file `fd` (consumed) again; requests wait on *ret. */
static int verify_start(cache *c, const entry *e, const cache_object *obj, int fd, pending **ret)
{
    pending *p = calloc(1, sizeof(*p));
    if (!p) {
        close(fd);
        return -ENOMEM;
    }
    p->c = c;
    p->fd = fd;
    memcpy(p->sha256, e->sha256, SHA256_LEN);
    memcpy(p->hex, e->hex, sizeof(p->hex));
    p->expect_size = obj->size;
    /* What it was verified at, else what the caller expects (0: unknown). */
    p->verify_size = e->stamped ? e->size : obj->size;
    p->state = PENDING_VERIFYING;
    p->work.data = p;
    int r = 0;
    if (obj->url && !(p->url = strdup(obj->url))) {
        r = -ENOMEM;
    }
    if (r == 0 && !(p->hash = sha256_new())) {
        r = -ENOMEM;
    }
    if (r == 0) {
        r = hashmap_put(c->pending, p->sha256, SHA256_LEN, p);
    }
    if (r == 0) {
        r = uv_queue_work(c->loop, &p->work, on_verify_work, on_verify_done);
        if (r < 0) {
            hashmap_remove(c->pending, p->sha256, SHA256_LEN);
        }
    }
    if (r < 0) {
        pending_free(p);
        return r;
    }
    c->n_in_pool++;
    log_debug("cache verifying object=%s stamped=%d", p->hex, e->stamped);
    *ret = p;
    return 0;
}

/* A request joins a verification: what it knows of the origin serves the
 * refetch if the copy turns out wrong. Best effort. */
static void verify_learn(pending *p, const cache_object *obj)
{
    if (!p->url && obj->url) {
        p->url = strdup(obj->url);
    }
    if (!p->expect_size) {
        p->expect_size = obj->size;
    }
}

/* Opens e's file. Returns 1 when its stamp vouches for it (serve as is), 0
 * when it must be verified first (*ret_fd set for both), -ENOENT when it is
 * gone, another negative errno when it cannot be opened. */
static int entry_open(cache *c, const entry *e, int *ret_fd)
{
    char rel[OBJECT_REL_LEN];
    object_rel(e->hex, rel);
    int fd = openat(c->objects_fd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return negative_errno();
    }
    struct stat st;
    bool trusted = e->stamped && fstat(fd, &st) == 0 && stamp_matches(&e->st, &st);
    *ret_fd = fd;
    return trusted ? 1 : 0;
}

/* ---- public ---- */

static int open_dir_at(int dirfd, const char *path, int *ret)
{
    if (mkdirat(dirfd, path, 0755) < 0 && errno != EEXIST) {
        return negative_errno();
    }
    int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return negative_errno();
    }
    *ret = fd;
    return 0;
}

int cache_new(uv_loop_t *loop, const cache_config *cfg, cache **ret)
{
    if (!cfg->dir || !cfg->dir[0]) {
        return -EINVAL;
    }
    cache *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    c->loop = loop;
    c->objects_fd = c->tmp_fd = -1;
    c->max_size = cfg->max_size ? cfg->max_size : CACHE_DEFAULT_MAX_SIZE;
    c->max_fetches = cfg->max_fetches ? cfg->max_fetches : CACHE_DEFAULT_MAX_FETCHES;
    c->max_object_size = cfg->max_object_size && cfg->max_object_size < c->max_size
                             ? cfg->max_object_size
                             : c->max_size;
    c->dir = strdup(cfg->dir);
    int r = c->dir ? 0 : -ENOMEM;
    int dfd = -1;
    if (r == 0 && mkdir(c->dir, 0755) < 0 && errno != EEXIST) {
        r = negative_errno();
    }
    if (r == 0) {
        dfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
            r = negative_errno();
        }
    }
    if (r == 0) {
        r = open_dir_at(dfd, "objects", &c->objects_fd);
    }
    if (r == 0) {
        r = open_dir_at(dfd, "tmp", &c->tmp_fd);
    }
    if (dfd >= 0) {
        close(dfd);
    }
    if (r == 0) {
        r = hashmap_new(1024, &c->index);
    }
    if (r == 0) {
        r = hashmap_new(64, &c->pending);
    }
    if (r == 0) {
        r = rebuild(c);
    }
    if (r == 0) {
        fetch_limits lim = { .connect_timeout_s = cfg->connect_timeout_s,
                             .low_speed_limit = 1,
                             .low_speed_time_s = cfg->low_speed_time_s,
                             .max_redirects = cfg->max_redirects };
        r = fetcher_new(loop, &lim, &c->fetcher);
    }
    if (r < 0) {
        cache_free_now(c);
        return r;
    }
    evict(c, NULL);
    *ret = c;
    return 0;
}

static void cache_free_now(cache *c)
{
    if (c->index) {
        while (c->lru_head) {
            index_drop(c, c->lru_head);
        }
    }
    hashmap_free(c->index);
    hashmap_free(c->pending);
    if (c->objects_fd >= 0) {
        close(c->objects_fd);
    }
    if (c->tmp_fd >= 0) {
        close(c->tmp_fd);
    }
    free(c->dir);
    free(c);
}

static void drop_waiters(pending *p)
{
    while (p->waiters) {
        cache_request *w = p->waiters;
        p->waiters = w->next;
        free(w);
    }
    p->waiters_tail = NULL;
}

void cache_close(cache *c)
{
    if (!c) {
        return;
    }
    c->closing = true;
    /* Collect first: freeing while iterating would shift the map. */
    size_t n = hashmap_size(c->pending), k = 0, iter = 0;
    pending **all = n ? calloc(n, sizeof(*all)) : NULL;
    void *v;
    while (all && hashmap_next(c->pending, &iter, &v)) {
        all[k++] = v;
    }
    RB_ASSERT(n == 0 || all);
    hashmap_clear(c->pending);
    for (size_t i = 0; i < k; i++) {
        pending *p = all[i];
        drop_waiters(p);
        if (p->state == PENDING_COMMITTING || p->state == PENDING_VERIFYING) {
            continue; /* on_commit_done / on_verify_done frees it */
        }
        if (p->xfer) {
            fetch_transfer_abort(p->xfer);
            p->xfer = NULL;
        }
        remove_tmp(p);
        pending_free(p);
    }
    free(all);
    c->queue_head = c->queue_tail = NULL;
    fetcher_close(c->fetcher);
    c->fetcher = NULL;
    if (c->n_in_pool == 0) {
        cache_free_now(c);
    }
}

int cache_open(cache *c, const cache_object *obj, cache_done_fn done, void *userdata,
               cache_request **ret_req)
{
    if (c->closing) {
        return -ECANCELED;
    }
    /* A fetch or a verification of it runs already: wait for that. */
    pending *p = hashmap_get(c->pending, obj->sha256, SHA256_LEN);
    entry *e = p ? NULL : hashmap_get(c->index, obj->sha256, SHA256_LEN);
    int r;
    if (e) {
        int fd = -1;
        r = entry_open(c, e, &fd);
        if (r == 1) {
            c->stats.hits++;
            touch(c, e, fd);
            if (ret_req) {
                *ret_req = NULL;
            }
            done(userdata, 0, fd, e->size);
            return 1;
        }
        if (r == 0) {
            touch(c, e, -1);
            r = verify_start(c, e, obj, fd, &p);
            if (r < 0) {
                return r;
            }
        } else if (r == -ENOENT) {
            /* Removed behind our back: forget it and fetch it again. */
            index_drop(c, e);
        } else {
            return r;
        }
    }
    cache_request *w = calloc(1, sizeof(*w));
    if (!w) {
        return -ENOMEM; /* a verification started goes on without us */
    }
    if (!p) {
        r = pending_get(c, obj, &p);
        if (r < 0) {
            free(w);
            return r;
        }
    }
    if (p->state == PENDING_VERIFYING) {
        verify_learn(p, obj); /* counted as a hit or a miss when it ends */
    } else {
        c->stats.misses++;
    }
    w->p = p;
    w->done = done;
    w->userdata = userdata;
    w->prev = p->waiters_tail;
    if (p->waiters_tail) {
        p->waiters_tail->next = w;
    } else {
        p->waiters = w;
    }
    p->waiters_tail = w;
    if (ret_req) {
        *ret_req = w;
    }
    return 0;
}

void cache_request_cancel(cache_request *w)
{
    if (!w) {
        return;
    }
    pending *p = w->p;
    if (w->prev) {
        w->prev->next = w->next;
    } else {
        p->waiters = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    } else {
        p->waiters_tail = w->prev;
    }
    free(w);
}

int cache_prefetch(cache *c, const cache_object *obj)
{
    if (c->closing) {
        return -ECANCELED;
    }
    pending *p = hashmap_get(c->pending, obj->sha256, SHA256_LEN);
    if (p) {
        return 0;
    }
    entry *e = hashmap_get(c->index, obj->sha256, SHA256_LEN);
    if (e) {
        /* Checked like an open, so that the first request after a start
         * does not wait for the hash of a big image. */
        int fd = -1;
        int r = entry_open(c, e, &fd);
        if (r == 1) {
            close(fd);
            return 1;
        }
        if (r == 0) {
            return verify_start(c, e, obj, fd, &p);
        }
        if (r != -ENOENT) {
            return r;
        }
        index_drop(c, e);
    }
    return pending_get(c, obj, &p);
}

void cache_on_fetched(cache *c, cache_fetched_fn fn, void *userdata)
{
    c->on_fetched = fn;
    c->on_fetched_userdata = userdata;
}

void cache_on_corrupt(cache *c, cache_corrupt_fn fn, void *userdata)
{
    c->on_corrupt = fn;
    c->on_corrupt_userdata = userdata;
}

bool cache_contains(const cache *c, const uint8_t sha256[32])
{
    return hashmap_get(c->index, sha256, SHA256_LEN) != NULL;
}

size_t cache_pending(const cache *c)
{
    return hashmap_size(c->pending);
}

const cache_stats *cache_get_stats(const cache *c)
{
    return &c->stats;
}

const char *cache_dir(const cache *c)
{
    return c->dir;
}

uint64_t cache_max_size(const cache *c)
{
    return c->max_size;
}

int cache_register_metrics(const cache *c, metrics *m)
{
    static const struct {
        metric_type type;
        const char *name;
        const char *help;
        size_t offset;
    } series[] = {
        { METRIC_COUNTER, "rackboot_cache_hits_total", "Opens answered from the image cache.",
          offsetof(cache_stats, hits) },
        { METRIC_COUNTER, "rackboot_cache_misses_total", "Opens that waited for an upstream fetch.",
          offsetof(cache_stats, misses) },
        { METRIC_COUNTER, "rackboot_cache_upstream_fetches_total",
          "Upstream fetches started (concurrent misses share one).",
          offsetof(cache_stats, fetches) },
        { METRIC_COUNTER, "rackboot_cache_fetch_failures_total",
          "Upstream fetches that failed (network, HTTP status, size limit, disk).",
          offsetof(cache_stats, fetch_failures) },
        { METRIC_COUNTER, "rackboot_cache_verify_failures_total",
          "Fetched objects refused because their sha256 or size did not match.",
          offsetof(cache_stats, verify_failures) },
        { METRIC_COUNTER, "rackboot_cache_evictions_total",
          "Objects removed to stay under max_size.", offsetof(cache_stats, evictions) },
        { METRIC_COUNTER, "rackboot_cache_verifications_total",
          "Cached objects hashed again before serving (changed on disk, or not verified since "
          "the agent started).",
          offsetof(cache_stats, verifications) },
        { METRIC_COUNTER, "rackboot_cache_corrupt_total",
          "Cached objects that failed that check (bytes, size or read error), removed and "
          "fetched again.",
          offsetof(cache_stats, corrupt) },
        { METRIC_COUNTER, "rackboot_cache_fetched_bytes_total", "Body bytes received from origins.",
          offsetof(cache_stats, bytes_fetched) },
        { METRIC_GAUGE, "rackboot_cache_stored_bytes", "Bytes of all cached objects.",
          offsetof(cache_stats, bytes_stored) },
        { METRIC_GAUGE, "rackboot_cache_objects", "Objects in the cache.",
          offsetof(cache_stats, objects) },
    };
    for (size_t i = 0; i < ARRAY_SIZE(series); i++) {
        const uint64_t *v = (const uint64_t *)((const char *)&c->stats + series[i].offset);
        int r = metrics_register(m, series[i].type, series[i].name, series[i].help, NULL, v);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}
