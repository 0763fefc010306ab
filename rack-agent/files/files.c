/* files.h for the TFTP root, plus the hook other sources register through
 * (files-internal.h, files/source.h). The root is opened once as a directory fd; every name
 * is opened beneath it with openat2(RESOLVE_BENEATH), so neither "..",
 * nor an absolute symlink, nor a relative one climbing out can leave it,
 * whatever the string checks before it miss. */
#include "files/files-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "hashmap.h"
#include "util.h"

struct files_blob {
    unsigned refs;
    size_t size;
    uint8_t data[];
};

/* A small file of the root kept in memory, and the identity it had when it
 * was read: the cache serves it while a stat of the name still shows that. */
typedef struct cache_entry {
    struct cache_entry *prev, *next; /* least recently used last */
    char *name;                      /* the hashmap key */
    size_t name_len;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    files_blob *blob;
    char etag[72];
    const char *content_type;
} cache_entry;

typedef struct files_source {
    char *prefix;
    size_t prefix_len;
    files_source_fn fn;
    void *userdata;
} files_source;

struct files {
    int root_fd;
    char *root;
    files_source sources[FILES_MAX_SOURCES];
    size_t n_sources;
    hashmap *cache; /* root name -> cache_entry */
    cache_entry *lru_head, *lru_tail;
    unsigned settle_s;
    files_cache_stats cache_stats;
};

const uint8_t *files_blob_data(const files_blob *b)
{
    return b->data;
}

size_t files_blob_size(const files_blob *b)
{
    return b->size;
}

files_blob *files_blob_ref(files_blob *b)
{
    b->refs++;
    return b;
}

files_blob *files_blob_unref(files_blob *b)
{
    if (b && --b->refs == 0) {
        free(b);
    }
    return NULL;
}

const files_cache_stats *files_get_cache_stats(const files *f)
{
    return &f->cache_stats;
}

void files_set_cache_settle(files *f, unsigned seconds)
{
    f->settle_s = seconds;
}

static void lru_unlink(files *f, cache_entry *e)
{
    if (e->prev) {
        e->prev->next = e->next;
    } else {
        f->lru_head = e->next;
    }
    if (e->next) {
        e->next->prev = e->prev;
    } else {
        f->lru_tail = e->prev;
    }
    e->prev = e->next = NULL;
}

static void lru_push_front(files *f, cache_entry *e)
{
    e->prev = NULL;
    e->next = f->lru_head;
    if (f->lru_head) {
        f->lru_head->prev = e;
    } else {
        f->lru_tail = e;
    }
    f->lru_head = e;
}

static void cache_drop(files *f, cache_entry *e)
{
    hashmap_remove(f->cache, e->name, e->name_len);
    lru_unlink(f, e);
    f->cache_stats.entries--;
    f->cache_stats.bytes -= e->blob->size;
    files_blob_unref(e->blob);
    free(e->name);
    free(e);
}

int files_new(const char *root_dir, files **ret)
{
    _cleanup_close_ int fd = open(root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return negative_errno();
    }
    files *f = calloc(1, sizeof(*f));
    if (!f) {
        return -ENOMEM;
    }
    f->root = strdup(root_dir);
    if (!f->root) {
        free(f);
        return -ENOMEM;
    }
    int r = hashmap_new(64, &f->cache);
    if (r < 0) {
        free(f->root);
        free(f);
        return r;
    }
    f->settle_s = FILES_CACHE_SETTLE_S;
    f->root_fd = TAKE_FD(fd);
    *ret = f;
    return 0;
}

files *files_free(files *f)
{
    if (!f) {
        return NULL;
    }
    for (size_t i = 0; i < f->n_sources; i++) {
        free(f->sources[i].prefix);
    }
    while (f->lru_head) {
        cache_drop(f, f->lru_head);
    }
    hashmap_free(f->cache);
    if (f->root_fd >= 0) {
        close(f->root_fd);
    }
    free(f->root);
    free(f);
    return NULL;
}

const char *files_root(const files *f)
{
    return f->root;
}

int files_add_source(files *f, const char *prefix, files_source_fn fn, void *userdata)
{
    if (strempty(prefix) || strchr(prefix, '/')) {
        return -EINVAL;
    }
    if (streq(prefix, "files")) {
        return -EEXIST;
    }
    for (size_t i = 0; i < f->n_sources; i++) {
        if (streq(f->sources[i].prefix, prefix)) {
            return -EEXIST;
        }
    }
    if (f->n_sources == FILES_MAX_SOURCES) {
        return -E2BIG;
    }
    char *p = strdup(prefix);
    if (!p) {
        return -ENOMEM;
    }
    f->sources[f->n_sources++] =
        (files_source){ .prefix = p, .prefix_len = strlen(p), .fn = fn, .userdata = userdata };
    return 0;
}

int files_path_check(const char *path, size_t len)
{
    if (len == 0 || path[0] == '/') {
        return -EACCES;
    }
    if (len > FILES_MAX_PATH) {
        return -ENAMETOOLONG;
    }
    if (memchr(path, '\0', len) || memchr(path, '\\', len)) {
        /* A NUL would cut the name short; backslashes are DOS paths some
         * ROMs send, which we do not guess at. */
        return -EACCES;
    }
    size_t start = 0;
    while (start <= len) {
        const char *slash = memchr(path + start, '/', len - start);
        size_t end = slash ? (size_t)(slash - path) : len;
        size_t n = end - start;
        if (n > FILES_MAX_COMPONENT) {
            return -ENAMETOOLONG;
        }
        if ((n == 1 && path[start] == '.') ||
            (n == 2 && path[start] == '.' && path[start + 1] == '.')) {
            return -EACCES;
        }
        start = end + 1;
    }
    return 0;
}

const char *files_content_type(const char *path)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        { ".efi", "application/efi" }, { ".ipxe", "text/plain" }, { ".cfg", "text/plain" },
        { ".txt", "text/plain" },      { ".ks", "text/plain" },   { ".conf", "text/plain" },
    };
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot) {
        for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
            if (strcasecmp(dot, types[i].ext) == 0) {
                return types[i].type;
            }
        }
    }
    return "application/octet-stream";
}

/* Opens a checked relative name beneath the root: symlinks are followed
 * only while they stay beneath it (an absolute one or one climbing out
 * fails with EXDEV), "/proc"-style magic links never. */
static int open_beneath(const files *f, const char *name, files_result *res, struct stat *ret_st)
{
    struct open_how how = {
        /* O_NONBLOCK: a FIFO planted in the root must not block the loop;
         * it is refused below anyway. */
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long k = syscall(SYS_openat2, f->root_fd, name, &how, sizeof(how));
    if (k < 0) {
        switch (errno) {
        case ENOENT:
        case ENOTDIR:
            return -ENOENT;
        case ENAMETOOLONG:
            return -ENAMETOOLONG;
        case EXDEV:
        case ELOOP:
        case EACCES:
        case EPERM:
            return -EACCES;
        default:
            return negative_errno();
        }
    }
    _cleanup_close_ int fd = (int)k;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        return negative_errno();
    }
    if (!S_ISREG(st.st_mode)) {
        /* Directories, devices, FIFOs, sockets: not files we serve. */
        return S_ISDIR(st.st_mode) ? -ENOENT : -EACCES;
    }
    /* Back to blocking reads for the regular file. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        return negative_errno();
    }
    *res = (files_result){
        .blob = NULL,
        .size = (uint64_t)st.st_size,
        .content_type = files_content_type(name),
        .verified = false,
        .image_kind = -1,
        .profile = NULL,
    };
    /* Strong validator: changes whenever the file is replaced (inode) or
     * rewritten (size, mtime to the nanosecond). */
    snprintf(res->etag, sizeof(res->etag), "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"",
             (uint64_t)st.st_ino, (uint64_t)st.st_size,
             (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec);
    res->fd = TAKE_FD(fd);
    if (ret_st) {
        *ret_st = st;
    }
    return 0;
}

int files_open(files *f, const char *path, files_done_fn done, void *userdata,
               files_request **ret_req)
{
    return files_open_from(f, path, NULL, done, userdata, ret_req);
}

int files_open_from(files *f, const char *path, const struct sockaddr_in6 *client,
                    files_done_fn done, void *userdata, files_request **ret_req)
{
    if (ret_req) {
        *ret_req = NULL;
    }
    size_t len = strnlen(path, FILES_MAX_PATH + 1);
    int r = files_path_check(path, len);
    if (r == 0) {
        const char *name = path;
        if (strncmp(path, "files/", 6) == 0) {
            name = path + 6;
        } else {
            for (size_t i = 0; i < f->n_sources; i++) {
                const files_source *s = &f->sources[i];
                if (strncmp(path, s->prefix, s->prefix_len) == 0 && path[s->prefix_len] == '/') {
                    return s->fn(s->userdata, path + s->prefix_len + 1, client, done, userdata,
                                 ret_req);
                }
            }
        }
        files_result res;
        if (name[0] == '\0') {
            r = -ENOENT;
        } else {
            r = open_beneath(f, name, &res, NULL);
        }
        if (r == 0) {
            done(userdata, 0, &res);
            return 0;
        }
    }
    /* The root answers at once: refusals go through the callback too, so
     * callers have one path for every outcome. */
    done(userdata, r, NULL);
    return 0;
}

static int pread_all(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t k = pread(fd, buf + got, len - got, (off_t)got);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            return negative_errno();
        }
        if (k == 0) {
            return -EIO; /* shrank under us */
        }
        got += (size_t)k;
    }
    return 0;
}

static bool same_file(const cache_entry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           e->ctime.tv_sec == st->st_ctim.tv_sec && e->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* The cached copy of root name `name`, when the name still leads to the
 * file it was read from. The stat follows symlinks without the openat2()
 * fence, which is safe here: it only ever confirms the identity of a file
 * that open_beneath() let us read, and anything else is a miss that goes
 * through the fence again. */
static cache_entry *cache_lookup(files *f, const char *name, size_t len)
{
    cache_entry *e = hashmap_get(f->cache, name, len);
    if (!e) {
        return NULL;
    }
    struct stat st;
    if (fstatat(f->root_fd, name, &st, 0) < 0 || !same_file(e, &st)) {
        f->cache_stats.invalidations++;
        cache_drop(f, e);
        return NULL;
    }
    if (f->lru_head != e) {
        lru_unlink(f, e);
        lru_push_front(f, e);
    }
    return e;
}

/* Reads the just opened small file into a new cache entry. NULL when it
 * is not worth keeping or not stable: too big, changed too recently, or
 * changed while it was read. */
static cache_entry *cache_fill(files *f, const char *name, size_t len, const files_result *res,
                               const struct stat *st)
{
    if (st->st_size > FILES_CACHE_MAX_FILE || len > FILES_MAX_PATH) {
        return NULL;
    }
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) < 0 ||
        now.tv_sec - st->st_ctim.tv_sec < (time_t)f->settle_s ||
        now.tv_sec - st->st_mtim.tv_sec < (time_t)f->settle_s) {
        return NULL;
    }
    size_t size = (size_t)st->st_size;
    files_blob *b = malloc(sizeof(*b) + size);
    if (!b) {
        return NULL;
    }
    b->refs = 1;
    b->size = size;
    if (pread_all(res->fd, b->data, size) < 0) {
        free(b);
        return NULL;
    }
    struct stat after;
    cache_entry *e = calloc(1, sizeof(*e));
    char *key = strndup(name, len);
    if (!e || !key || fstat(res->fd, &after) < 0) {
        goto fail;
    }
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = st->st_size;
    e->mtime = st->st_mtim;
    e->ctime = st->st_ctim;
    if (!same_file(e, &after)) {
        goto fail;
    }
    e->name = key;
    e->name_len = len;
    e->blob = b;
    memcpy(e->etag, res->etag, sizeof(e->etag));
    e->content_type = res->content_type;
    /* Room first: the least recently used go. */
    while (f->lru_tail && (f->cache_stats.bytes + size > FILES_CACHE_MAX_BYTES ||
                           f->cache_stats.entries + 1 > FILES_CACHE_MAX_ENTRIES)) {
        f->cache_stats.evictions++;
        cache_drop(f, f->lru_tail);
    }
    if (hashmap_put(f->cache, e->name, e->name_len, e) < 0) {
        goto fail;
    }
    lru_push_front(f, e);
    f->cache_stats.entries++;
    f->cache_stats.bytes += size;
    f->cache_stats.fills++;
    return e;
fail:
    free(key);
    free(e);
    free(b);
    return NULL;
}

int files_open_cached(files *f, const char *path, const struct sockaddr_in6 *client,
                      files_done_fn done, void *userdata, files_request **ret_req)
{
    size_t len = strnlen(path, FILES_MAX_PATH + 1);
    const char *name = path;
    if (strncmp(path, "files/", 6) == 0) {
        name = path + 6;
    } else {
        for (size_t i = 0; i < f->n_sources; i++) {
            const files_source *s = &f->sources[i];
            if (strncmp(path, s->prefix, s->prefix_len) == 0 && path[s->prefix_len] == '/') {
                return files_open_from(f, path, client, done, userdata, ret_req); /* a source's */
            }
        }
    }
    size_t name_len = len - (size_t)(name - path);
    if (files_path_check(path, len) < 0 || name_len == 0) {
        return files_open(f, path, done, userdata, ret_req); /* its refusal */
    }
    if (ret_req) {
        *ret_req = NULL;
    }
    files_result res;
    cache_entry *e = cache_lookup(f, name, name_len);
    if (!e) {
        f->cache_stats.misses++;
        struct stat st;
        int r = open_beneath(f, name, &res, &st);
        if (r < 0) {
            done(userdata, r, NULL);
            return 0;
        }
        e = cache_fill(f, name, name_len, &res, &st);
        if (!e) {
            done(userdata, 0, &res); /* from the fd, as files_open() */
            return 0;
        }
        close(res.fd);
    } else {
        f->cache_stats.hits++;
    }
    res = (files_result){
        .fd = -1,
        .blob = files_blob_ref(e->blob),
        .size = e->blob->size,
        .content_type = e->content_type,
        .image_kind = -1,
    };
    memcpy(res.etag, e->etag, sizeof(res.etag));
    done(userdata, 0, &res);
    return 0;
}

void files_request_cancel(files_request *req)
{
    if (req) {
        req->cancel(req);
    }
}

int files_seed_copy(const char *root_dir, const char *name, const char *src)
{
    _cleanup_free_ char *dst = NULL;
    if (asprintf(&dst, "%s/%s", root_dir, name) < 0) {
        return -ENOMEM;
    }
    struct stat st;
    if (lstat(dst, &st) == 0) {
        return 0;
    }
    if (errno != ENOENT) {
        return negative_errno();
    }
    _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return negative_errno();
    }
    if (fstat(in, &st) < 0) {
        return negative_errno();
    }
    if (!S_ISREG(st.st_mode)) {
        return -EINVAL;
    }
    fileio_atomic *a = NULL;
    int r = fileio_atomic_begin(dst, 0644, &a);
    if (r < 0) {
        return r;
    }
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            r = negative_errno();
            fileio_atomic_abort(a);
            return r;
        }
        if (n == 0) {
            break;
        }
        r = fileio_write_all(fileio_atomic_fd(a), buf, (size_t)n);
        if (r < 0) {
            fileio_atomic_abort(a);
            return r;
        }
    }
    r = fileio_atomic_commit(a);
    return r < 0 ? r : 1;
}
