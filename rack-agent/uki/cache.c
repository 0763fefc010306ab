#include "uki/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "uki/uki.h"
#include "util.h"

/* What .osrel says: boot menus (and `bootctl`) show it. */
#define UKI_OSREL "ID=rackboot\nNAME=\"rackboot install\"\nPRETTY_NAME=\"rackboot install\"\n"

enum { PART_KERNEL, PART_INITRD, N_PARTS };

typedef struct build build;

struct uki_request {
    uki_cache *c;
    uki_done_fn done;
    void *userdata;
    files_request *open[N_PARTS];
    /* files_open() may answer before it returns: the answer waits in
     * fds/etags until every part was asked for (starting). */
    bool asked[N_PARTS], answered[N_PARTS], starting;
    int fd[N_PARTS];
    char etag[N_PARTS][72];
    int open_r;
    bool overlay;
    char *cmdline, *what;
    build *joined; /* waiting for this build */
    uki_request *next_waiter;
};

struct build {
    uki_cache *c;
    uv_work_t work;
    build *prev, *next;
    char key[SHA256_HEX_LEN + 1];
    /* Inputs, owned: the first request's parts. */
    int kernel_fd, initrd_fd;
    bool overlay;
    char *cmdline, *what;
    /* Results, from the worker. */
    int r;
    char *error;
    uint64_t evicted;
    uki_request *waiters;
};

struct uki_cache {
    uv_loop_t *loop;
    char *dir, *stub, *overlay_path;
    char overlay_etag[SHA256_HEX_LEN + 3];
    uint64_t max_bytes;
    int dir_fd;
    build *builds;
    bool closing;
    uki_cache_stats stats;
};

/* ---- The directory ---------------------------------------------------------- */

/* Removes what a crash mid-build left: tmp.* directories, *.tmp files. */
static void remove_leftovers(uki_cache *c)
{
    DIR *d = opendir(c->dir);
    if (!d) {
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "tmp.", 4) == 0) {
            _cleanup_free_ char *sub = NULL;
            if (asprintf(&sub, "%s/%s", c->dir, e->d_name) >= 0) {
                DIR *s = opendir(sub);
                for (struct dirent *f; s && (f = readdir(s));) {
                    unlinkat(dirfd(s), f->d_name, 0);
                }
                if (s) {
                    closedir(s);
                }
                unlinkat(c->dir_fd, e->d_name, AT_REMOVEDIR);
            }
        } else if (n > 4 && streq(e->d_name + n - 4, ".tmp")) {
            unlinkat(c->dir_fd, e->d_name, 0);
        }
    }
    closedir(d);
}

typedef struct image_file {
    char name[SHA256_HEX_LEN + 5];
    uint64_t size;
    struct timespec mtime;
} image_file;

static int by_mtime(const void *a, const void *b)
{
    const image_file *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec) {
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    }
    return (x->mtime.tv_nsec > y->mtime.tv_nsec) - (x->mtime.tv_nsec < y->mtime.tv_nsec);
}

/* Keeps the images under max_bytes, least recently used first out; never
 * `keep` (just built). From a worker: unlinking a file another request has
 * open is harmless (its fd stays good). Returns how many went. */
static uint64_t evict(int dir_fd, const char *dir, uint64_t max_bytes, const char *keep)
{
    DIR *d = opendir(dir);
    if (!d) {
        return 0;
    }
    image_file *v = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0, evicted = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        struct stat st;
        if (len != SHA256_HEX_LEN + 4 || !streq(e->d_name + SHA256_HEX_LEN, ".efi") ||
            fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        total += (uint64_t)st.st_size;
        if (streq(e->d_name, keep)) {
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            image_file *nv = reallocarray(v, ncap, sizeof(*v));
            if (!nv) {
                break;
            }
            v = nv;
            cap = ncap;
        }
        snprintf(v[n].name, sizeof(v[n].name), "%s", e->d_name);
        v[n].size = (uint64_t)st.st_size;
        v[n].mtime = st.st_mtim;
        n++;
    }
    closedir(d);
    if (n > 1) {
        qsort(v, n, sizeof(*v), by_mtime);
    }
    for (size_t i = 0; i < n && total > max_bytes; i++) {
        if (unlinkat(dir_fd, v[i].name, 0) == 0) {
            total -= v[i].size;
            evicted++;
        }
    }
    free(v);
    return evicted;
}

/* ---- Builds, in workers --------------------------------------------------- */

static int copy_fd(int in, const char *path)
{
    _cleanup_close_ int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        return negative_errno();
    }
    uint8_t buf[1 << 16];
    for (off_t off = 0;;) {
        ssize_t k = pread(in, buf, sizeof(buf), off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            return negative_errno();
        }
        if (k == 0) {
            return 0;
        }
        int r = fileio_write_all(out, buf, (size_t)k);
        if (r < 0) {
            return r;
        }
        off += k;
    }
}

/* uki_build() of build `b`'s parts; then the directory is trimmed. */
static int build_image(build *b, const char *kernel, const char *initrd, const char *out)
{
    uki_cache *c = b->c;
    const char *initrds[2];
    size_t n = 0;
    if (initrd) {
        initrds[n++] = initrd;
    }
    if (b->overlay) {
        initrds[n++] = c->overlay_path;
    }
    uki_parts p = { .stub = c->stub,
                    .kernel = kernel,
                    .initrds = initrds,
                    .n_initrds = n,
                    .cmdline = b->cmdline,
                    .osrel = UKI_OSREL };
    _cleanup_free_ char *tmpdir = strdup(kernel);
    if (!tmpdir) {
        return -ENOMEM;
    }
    *strrchr(tmpdir, '/') = '\0';
    int r = uki_build(&p, tmpdir, out, &b->error);
    if (r == 0) {
        /* The image holds the install's token: the owner's only. */
        (void)chmod(out, 0600);
        char keep[SHA256_HEX_LEN + 5];
        snprintf(keep, sizeof(keep), "%s.efi", b->key);
        b->evicted = evict(c->dir_fd, c->dir, c->max_bytes, keep);
    }
    return r;
}

static void build_work(uv_work_t *w)
{
    build *b = w->data;
    uki_cache *c = b->c;
    _cleanup_free_ char *tmp = NULL, *kernel = NULL, *initrd = NULL, *out = NULL;
    if (asprintf(&tmp, "%s/tmp.XXXXXX", c->dir) < 0 || !mkdtemp(tmp)) {
        b->r = tmp ? negative_errno() : -ENOMEM;
        b->error = strdup("cannot make a build directory");
        return;
    }
    /* objcopy, a child process, needs the kernel by name: a copy of the
     * fd's file (the cache may evict the original meanwhile). The initrds
     * are read here, in this process, through /proc/self/fd. */
    if (asprintf(&kernel, "%s/vmlinuz", tmp) < 0 ||
        (b->initrd_fd >= 0 && asprintf(&initrd, "/proc/self/fd/%d", b->initrd_fd) < 0) ||
        asprintf(&out, "%s/%s.efi", c->dir, b->key) < 0) {
        b->r = -ENOMEM;
        goto done;
    }
    b->r = copy_fd(b->kernel_fd, kernel);
    if (b->r < 0) {
        if (asprintf(&b->error, "cannot copy the kernel: %s", errstr(b->r)) < 0) {
            b->error = NULL;
        }
        goto done;
    }
    b->r = build_image(b, kernel, initrd, out);
done:
    if (kernel) {
        unlink(kernel);
    }
    rmdir(tmp);
}

static void build_free(build *b)
{
    uki_cache *c = b->c;
    if (b->prev) {
        b->prev->next = b->next;
    } else if (c->builds == b) {
        c->builds = b->next;
    }
    if (b->next) {
        b->next->prev = b->prev;
    }
    if (b->kernel_fd >= 0) {
        close(b->kernel_fd);
    }
    if (b->initrd_fd >= 0) {
        close(b->initrd_fd);
    }
    free(b->cmdline);
    free(b->what);
    free(b->error);
    free(b);
}

static void request_free(uki_request *q)
{
    for (size_t i = 0; i < N_PARTS; i++) {
        files_request_cancel(q->open[i]);
        if (q->fd[i] >= 0) {
            close(q->fd[i]);
        }
    }
    free(q->cmdline);
    free(q->what);
    free(q);
}

/* Answers `q` with the image `key` (opened now) or `r`, and frees it. */
static void request_finish(uki_request *q, int r, const char *key)
{
    int fd = -1;
    uint64_t size = 0;
    char etag[SHA256_HEX_LEN + 3] = "";
    if (r == 0) {
        char name[SHA256_HEX_LEN + 5];
        snprintf(name, sizeof(name), "%s.efi", key);
        fd = openat(q->c->dir_fd, name, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            r = negative_errno();
            log_error("uki: cannot open %s/%s for %s: %s", q->c->dir, name, q->what, errstr(r));
            r = -EIO;
        } else {
            size = (uint64_t)st.st_size;
            snprintf(etag, sizeof(etag), "\"%s\"", key);
        }
    }
    uki_done_fn done = q->done;
    void *userdata = q->userdata;
    request_free(q);
    if (r < 0 && fd >= 0) {
        close(fd);
        fd = -1;
    }
    done(userdata, r, fd, size, etag);
}

static void build_done(uv_work_t *w, int status)
{
    build *b = w->data;
    uki_cache *c = b->c;
    if (c->closing) {
        /* uki_cache_close(): no answers; the last worker frees. */
        while (b->waiters) {
            uki_request *q = b->waiters;
            b->waiters = q->next_waiter;
            request_free(q);
        }
        build_free(b);
        if (!c->builds) {
            free(c->dir);
            free(c->stub);
            free(c->overlay_path);
            free(c);
        }
        return;
    }
    int r = status < 0 ? status : b->r;
    if (r == 0) {
        c->stats.builds++;
        c->stats.evictions += b->evicted;
        log_info("uki: built %s/%s.efi for %s", c->dir, b->key, b->what);
    } else {
        c->stats.build_failures++;
        log_error("uki: cannot build the image for %s: %s", b->what,
                  b->error ? b->error : errstr(r));
        r = -EIO;
    }
    uki_request *q = b->waiters;
    b->waiters = NULL;
    char key[SHA256_HEX_LEN + 1];
    memcpy(key, b->key, sizeof(key));
    build_free(b);
    while (q) {
        uki_request *next = q->next_waiter;
        q->joined = NULL;
        request_finish(q, r, key);
        q = next;
    }
}

/* ---- Requests ---------------------------------------------------------------- */

/* The stub's validator, from a stat each time: an upgrade of
 * systemd-boot-efi changes it, and with it every key. */
static int stub_validator(const uki_cache *c, char *buf, size_t size)
{
    struct stat st;
    if (stat(c->stub, &st) < 0) {
        return negative_errno();
    }
    snprintf(buf, size, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 ".%09ld\"", (uint64_t)st.st_ino,
             (uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    return 0;
}

/* Every part is open: a hit, a join, or a new build. True when `q` waits
 * for a build (still the caller's to cancel); false when it was answered. */
static bool request_parts_ready(uki_request *q)
{
    uki_cache *c = q->c;
    if (q->open_r < 0) {
        request_finish(q, q->open_r, NULL);
        return false;
    }
    char stub[96];
    int r = stub_validator(c, stub, sizeof(stub));
    if (r < 0) {
        log_error("uki: no EFI stub at %s (%s): install systemd-boot-efi, or set [uki] stub; "
                  "cannot serve %s",
                  c->stub, errstr(r), q->what);
        c->stats.build_failures++;
        request_finish(q, -EIO, NULL);
        return false;
    }
    const char *initrds[2];
    size_t n = 0;
    if (q->fd[PART_INITRD] >= 0) {
        initrds[n++] = q->etag[PART_INITRD];
    }
    if (q->overlay) {
        initrds[n++] = c->overlay_etag;
    }
    uki_key_input in = { .stub = stub,
                         .kernel = q->etag[PART_KERNEL],
                         .initrds = initrds,
                         .n_initrds = n,
                         .cmdline = q->cmdline,
                         .osrel = UKI_OSREL };
    char key[SHA256_HEX_LEN + 1];
    r = uki_key(&in, key);
    if (r < 0) {
        request_finish(q, r, NULL);
        return false;
    }
    char name[SHA256_HEX_LEN + 5];
    snprintf(name, sizeof(name), "%s.efi", key);
    if (faccessat(c->dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        c->stats.hits++;
        /* Recently used: the last to be evicted. */
        (void)utimensat(c->dir_fd, name, NULL, AT_SYMLINK_NOFOLLOW);
        request_finish(q, 0, key);
        return false;
    }
    for (build *b = c->builds; b; b = b->next) {
        if (streq(b->key, key)) {
            c->stats.joins++;
            q->joined = b;
            q->next_waiter = b->waiters;
            b->waiters = q;
            return true;
        }
    }
    build *b = calloc(1, sizeof(*b));
    if (!b) {
        request_finish(q, -ENOMEM, NULL);
        return false;
    }
    b->c = c;
    memcpy(b->key, key, sizeof(key));
    b->kernel_fd = TAKE_FD(q->fd[PART_KERNEL]);
    b->initrd_fd = TAKE_FD(q->fd[PART_INITRD]);
    b->overlay = q->overlay;
    b->cmdline = TAKE_PTR(q->cmdline);
    b->what = strdup(q->what);
    b->work.data = b;
    if (!b->what || uv_queue_work(c->loop, &b->work, build_work, build_done) < 0) {
        build_free(b);
        request_finish(q, -ENOMEM, NULL);
        return false;
    }
    b->next = c->builds;
    if (c->builds) {
        c->builds->prev = b;
    }
    c->builds = b;
    q->joined = b;
    b->waiters = q;
    log_info("uki: building %s.efi for %s", key, b->what);
    return true;
}

static void request_part_check(uki_request *q)
{
    for (size_t i = 0; i < N_PARTS; i++) {
        if (q->asked[i] && !q->answered[i]) {
            return;
        }
    }
    if (!q->starting) {
        (void)request_parts_ready(q);
    }
}

static void on_part(uki_request *q, size_t i, int r, const files_result *res)
{
    q->answered[i] = true;
    q->open[i] = NULL;
    if (r < 0) {
        if (q->open_r == 0) {
            q->open_r = r;
        }
    } else if (res->fd < 0) {
        /* A blob from memory: files_open() never gives one. */
        files_blob_unref(res->blob);
        q->open_r = -EIO;
    } else {
        q->fd[i] = res->fd;
        snprintf(q->etag[i], sizeof(q->etag[i]), "%s", res->etag);
    }
    request_part_check(q);
}

static void on_kernel(void *userdata, int r, const files_result *res)
{
    on_part(userdata, PART_KERNEL, r, res);
}

static void on_initrd(void *userdata, int r, const files_result *res)
{
    on_part(userdata, PART_INITRD, r, res);
}

int uki_cache_open(uki_cache *c, const uki_spec *spec, uki_done_fn done, void *userdata,
                   uki_request **ret_req)
{
    *ret_req = NULL;
    if (!spec->kernel.f || !spec->kernel.path || !spec->cmdline ||
        (spec->initrd.f && !spec->initrd.path)) {
        return -EINVAL;
    }
    uki_request *q = calloc(1, sizeof(*q));
    if (!q) {
        return -ENOMEM;
    }
    q->c = c;
    q->done = done;
    q->userdata = userdata;
    q->fd[PART_KERNEL] = q->fd[PART_INITRD] = -1;
    q->overlay = spec->overlay;
    q->cmdline = strdup(spec->cmdline);
    q->what = strdup(spec->what ? spec->what : "?");
    if (!q->cmdline || !q->what) {
        request_free(q);
        return -ENOMEM;
    }
    static const files_done_fn part_done[N_PARTS] = { on_kernel, on_initrd };
    const uki_part *parts[N_PARTS] = { &spec->kernel, &spec->initrd };
    q->starting = true;
    for (size_t i = 0; i < N_PARTS; i++) {
        if (!parts[i]->f) {
            continue;
        }
        q->asked[i] = true;
        files_request *open = NULL;
        int r = files_open(parts[i]->f, parts[i]->path, part_done[i], q, &open);
        if (r < 0) {
            q->answered[i] = true;
            if (q->open_r == 0) {
                q->open_r = r;
            }
        } else if (!q->answered[i]) {
            q->open[i] = open;
        }
    }
    q->starting = false;
    /* Until the parts are in, the caller may cancel; once they are, the
     * request may already be answered (a hit) and gone. */
    bool pending = false;
    for (size_t i = 0; i < N_PARTS; i++) {
        pending = pending || (q->asked[i] && !q->answered[i]);
    }
    if (!pending && !request_parts_ready(q)) {
        return 0; /* answered already */
    }
    *ret_req = q;
    return 0;
}

void uki_request_cancel(uki_request *q)
{
    if (!q) {
        return;
    }
    build *b = q->joined;
    if (b) {
        for (uki_request **p = &b->waiters; *p; p = &(*p)->next_waiter) {
            if (*p == q) {
                *p = q->next_waiter;
                break;
            }
        }
    }
    request_free(q);
}

/* ---- Lifecycle ------------------------------------------------------------------ */

int uki_cache_new(uv_loop_t *loop, const uki_cache_config *cfg, uki_cache **ret)
{
    if (mkdir(cfg->dir, 0700) < 0 && errno != EEXIST) {
        return negative_errno();
    }
    _cleanup_close_ int dir_fd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        return negative_errno();
    }
    uki_cache *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    c->loop = loop;
    c->dir_fd = -1;
    c->max_bytes = cfg->max_bytes;
    c->dir = strdup(cfg->dir);
    c->stub = strdup(cfg->stub ? cfg->stub : UKI_STUB_DEFAULT);
    int r = c->dir && c->stub ? 0 : -ENOMEM;
    if (r == 0) {
        c->dir_fd = TAKE_FD(dir_fd);
        remove_leftovers(c);
        /* The overlay by content: an agent upgrade that changes it changes
         * its name, its validator and so every key that includes it. */
        uint8_t sum[SHA256_LEN];
        char hex[SHA256_HEX_LEN + 1];
        r = sha256_buffer(cfg->overlay, cfg->overlay_len, sum);
        if (r >= 0) {
            sha256_to_hex(sum, hex);
            snprintf(c->overlay_etag, sizeof(c->overlay_etag), "\"%s\"", hex);
            r = asprintf(&c->overlay_path, "%s/overlay-%.16s.img", c->dir, hex) < 0 ? -ENOMEM : 0;
        }
        if (r == 0) {
            r = fileio_write_atomic(c->overlay_path, cfg->overlay, cfg->overlay_len, 0600);
        }
    }
    if (r < 0) {
        uki_cache_close(c);
        return r;
    }
    *ret = c;
    return 0;
}

void uki_cache_close(uki_cache *c)
{
    if (!c) {
        return;
    }
    if (c->dir_fd >= 0) {
        close(c->dir_fd);
        c->dir_fd = -1;
    }
    if (c->builds) {
        c->closing = true; /* build_done() frees with the last */
        return;
    }
    free(c->dir);
    free(c->stub);
    free(c->overlay_path);
    free(c);
}

const uki_cache_stats *uki_cache_get_stats(const uki_cache *c)
{
    return &c->stats;
}

int uki_cache_register_metrics(const uki_cache *c, metrics *m)
{
    static const struct {
        const char *name;
        const char *help;
        size_t offset;
    } series[] = {
        { "rackboot_uki_builds_total", "Unified Kernel Images built.",
          offsetof(uki_cache_stats, builds) },
        { "rackboot_uki_build_failures_total",
          "Unified Kernel Images that could not be built (objcopy, the EFI stub, disk).",
          offsetof(uki_cache_stats, build_failures) },
        { "rackboot_uki_hits_total", "Requests answered by an image already built.",
          offsetof(uki_cache_stats, hits) },
        { "rackboot_uki_joins_total", "Requests that waited for a build already running.",
          offsetof(uki_cache_stats, joins) },
        { "rackboot_uki_evictions_total", "Images removed to stay under [uki] max_size.",
          offsetof(uki_cache_stats, evictions) },
    };
    for (size_t i = 0; i < ARRAY_SIZE(series); i++) {
        const uint64_t *v = (const uint64_t *)((const char *)&c->stats + series[i].offset);
        int r = metrics_register(m, METRIC_COUNTER, series[i].name, series[i].help, NULL, v);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}
