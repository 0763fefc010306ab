/* rack-agent/cache: objects are fetched (file:// and a real HTTP origin in a
 * thread of this process), verified before they become visible, shared by
 * concurrent requests, evicted least-recently-used first, and found again
 * after a restart. Every test runs the cache on a real libuv loop. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "cache/cache.h"
#include "metrics/metrics.h"
#include "sha256.h"

/* ---- a small HTTP/1.0 origin: GET /NAME serves ORIGIN_DIR/NAME ---- */

typedef struct origin {
    int listen_fd;
    uint16_t port;
    char dir[128];
    pthread_t thread;
    atomic_bool stop;
    atomic_uint requests;
    atomic_uint delay_ms; /* before answering, so requests pile up */
} origin;

static void serve_one(origin *o, int fd)
{
    char req[2048];
    size_t n = 0;
    while (n < sizeof(req) - 1) {
        ssize_t k = read(fd, req + n, sizeof(req) - 1 - n);
        if (k <= 0) {
            return;
        }
        n += (size_t)k;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n")) {
            break;
        }
    }
    atomic_fetch_add(&o->requests, 1);
    char name[256] = "";
    if (sscanf(req, "GET /%255s HTTP/", name) != 1) {
        return;
    }
    unsigned delay = atomic_load(&o->delay_ms);
    if (delay) {
        usleep(delay * 1000);
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", o->dir, name);
    int ffd = open(path, O_RDONLY | O_CLOEXEC);
    char head[256];
    if (ffd < 0) {
        int len =
            snprintf(head, sizeof(head), "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        (void)!write(fd, head, (size_t)len);
        return;
    }
    struct stat st;
    fstat(ffd, &st);
    int len = snprintf(head, sizeof(head),
                       "HTTP/1.0 200 OK\r\nContent-Length: %lld\r\nConnection: close\r\n\r\n",
                       (long long)st.st_size);
    (void)!write(fd, head, (size_t)len);
    char buf[65536];
    ssize_t k;
    while ((k = read(ffd, buf, sizeof(buf))) > 0) {
        if (write(fd, buf, (size_t)k) != k) {
            break;
        }
    }
    close(ffd);
}

static void *origin_main(void *arg)
{
    origin *o = arg;
    while (!atomic_load(&o->stop)) {
        struct pollfd p = { .fd = o->listen_fd, .events = POLLIN };
        if (poll(&p, 1, 50) <= 0) {
            continue;
        }
        int fd = accept4(o->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        serve_one(o, fd);
        close(fd);
    }
    return NULL;
}

static void origin_start(origin *o, const char *dir)
{
    snprintf(o->dir, sizeof(o->dir), "%s", dir);
    o->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(o->listen_fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(o->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(o->listen_fd, 64), 0);
    socklen_t sl = sizeof(sa);
    getsockname(o->listen_fd, (struct sockaddr *)&sa, &sl);
    o->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&o->thread, NULL, origin_main, o), 0);
}

static void origin_stop(origin *o)
{
    atomic_store(&o->stop, true);
    pthread_join(o->thread, NULL);
    close(o->listen_fd);
}

/* ---- fixture ---- */

typedef struct fixture {
    char root[64];
    char origin_dir[128];
    char cache_dir[128];
    uv_loop_t loop;
    cache *c;
    origin http;
} fixture;

typedef struct result {
    bool called;
    int r;
    uint64_t size;
    char *data; /* the fd's content */
} result;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f) {
        return -1;
    }
    snprintf(f->root, sizeof(f->root), "/tmp/test_cache.XXXXXX");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    snprintf(f->origin_dir, sizeof(f->origin_dir), "%s/origin", f->root);
    snprintf(f->cache_dir, sizeof(f->cache_dir), "%s/cache", f->root);
    if (mkdir(f->origin_dir, 0755) < 0 || uv_loop_init(&f->loop) < 0) {
        return -1;
    }
    *state = f;
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

static void run_loop_closing(fixture *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->c) {
        cache_close(f->c);
        f->c = NULL;
    }
    run_loop_closing(f);
    int lr = uv_loop_close(&f->loop);
    if (f->http.port) {
        origin_stop(&f->http);
    }
    int r = nftw(f->root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return lr == 0 && r == 0 ? 0 : -1;
}

static void open_cache(fixture *f, uint64_t max_size, unsigned max_fetches)
{
    cache_config cfg = { .dir = f->cache_dir,
                         .max_size = max_size,
                         .max_fetches = max_fetches,
                         .connect_timeout_s = 5,
                         .low_speed_time_s = 10 };
    assert_int_equal(cache_new(&f->loop, &cfg, &f->c), 0);
}

static void close_cache(fixture *f)
{
    cache_close(f->c);
    f->c = NULL;
    run_loop_closing(f);
}

/* Writes `len` bytes derived from `seed` to the origin as NAME; returns its
 * digest. */
static void make_origin_file(fixture *f, const char *name, size_t len, unsigned seed,
                             uint8_t sha[32])
{
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    for (size_t i = 0; i < len; i++) {
        buf[i] = (char)((i * 131 + seed * 7 + (i >> 8)) & 0xff);
    }
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->origin_dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
    assert_int_equal(sha256_buffer(buf, len, sha), 0);
    free(buf);
}

static char *file_url(fixture *f, const char *name)
{
    char *u = NULL;
    assert_true(asprintf(&u, "file://%s/%s", f->origin_dir, name) > 0);
    return u;
}

static char *http_url(fixture *f, const char *name)
{
    char *u = NULL;
    assert_true(asprintf(&u, "http://127.0.0.1:%u/%s", f->http.port, name) > 0);
    return u;
}

static void on_done(void *userdata, int r, int fd, uint64_t size)
{
    result *res = userdata;
    assert_false(res->called);
    res->called = true;
    res->r = r;
    res->size = size;
    if (r == 0) {
        assert_true(fd >= 0);
        res->data = malloc(size + 1);
        assert_non_null(res->data);
        assert_int_equal(pread(fd, res->data, size, 0), (ssize_t)size);
        close(fd);
    } else {
        assert_int_equal(fd, -1);
    }
}

typedef struct waiter_ctx {
    cache *c;
    uv_timer_t timer;
    uint64_t deadline;
    bool timed_out;
} waiter_ctx;

static void on_check(uv_timer_t *t)
{
    waiter_ctx *w = t->data;
    if (cache_pending(w->c) == 0 || uv_now(t->loop) > w->deadline) {
        w->timed_out = cache_pending(w->c) != 0;
        uv_timer_stop(t);
        uv_stop(t->loop);
    }
}

/* Runs the loop until no fetch is pending (bounded). */
static void run_until_idle(fixture *f)
{
    waiter_ctx w = { .c = f->c };
    uv_update_time(&f->loop);
    w.deadline = uv_now(&f->loop) + 20000;
    uv_timer_init(&f->loop, &w.timer);
    w.timer.data = &w;
    uv_timer_start(&w.timer, on_check, 5, 5);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w.timer, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_false(w.timed_out);
}

static bool object_file_exists(fixture *f, const uint8_t sha[32])
{
    char hex[65], path[512];
    sha256_to_hex(sha, hex);
    snprintf(path, sizeof(path), "%s/objects/%.2s/%s", f->cache_dir, hex, hex);
    return access(path, F_OK) == 0;
}

static size_t count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        return 0;
    }
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static size_t count_tmp(fixture *f)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/tmp", f->cache_dir);
    return count_dir(p);
}

/* Fetches one object and waits for it. */
static void fetch_one(fixture *f, const uint8_t sha[32], const char *url, result *res)
{
    cache_object o = { .url = url };
    memcpy(o.sha256, sha, 32);
    *res = (result){ 0 };
    int r = cache_open(f->c, &o, on_done, res, NULL);
    assert_true(r == 0 || r == 1);
    run_until_idle(f);
    assert_true(res->called);
}

/* ---- tests ---- */

static void test_fetch_file_url_and_hit(void **state)
{
    fixture *f = *state;
    uint8_t sha[32];
    make_origin_file(f, "vmlinuz", 100000, 1, sha);
    open_cache(f, 1 << 20, 4);
    char *url = file_url(f, "vmlinuz");
    result res;
    fetch_one(f, sha, url, &res);
    assert_int_equal(res.r, 0);
    assert_int_equal(res.size, 100000);
    uint8_t got[32];
    sha256_buffer(res.data, res.size, got);
    assert_memory_equal(got, sha, 32);
    assert_true(object_file_exists(f, sha));
    assert_true(cache_contains(f->c, sha));
    assert_int_equal(count_tmp(f), 0);
    const cache_stats *st = cache_get_stats(f->c);
    assert_int_equal(st->fetches, 1);
    assert_int_equal(st->misses, 1);
    assert_int_equal(st->hits, 0);
    assert_int_equal(st->bytes_fetched, 100000);
    assert_int_equal(st->bytes_stored, 100000);
    assert_int_equal(st->objects, 1);
    free(res.data);

    /* A hit answers at once, without a URL and without a fetch. */
    cache_object o = { .url = NULL };
    memcpy(o.sha256, sha, 32);
    result hit = { 0 };
    cache_request *req = (cache_request *)&hit;
    assert_int_equal(cache_open(f->c, &o, on_done, &hit, &req), 1);
    assert_null(req);
    assert_true(hit.called);
    assert_int_equal(hit.r, 0);
    assert_int_equal(hit.size, 100000);
    assert_int_equal(st->hits, 1);
    assert_int_equal(st->fetches, 1);
    free(hit.data);
    free(url);
}

static void test_unknown_without_url_is_enoent(void **state)
{
    fixture *f = *state;
    open_cache(f, 1 << 20, 4);
    cache_object o = { .url = NULL };
    memset(o.sha256, 0xab, 32);
    result res = { 0 };
    assert_int_equal(cache_open(f->c, &o, on_done, &res, NULL), -ENOENT);
    assert_false(res.called);
}

static void test_sha256_mismatch_refused(void **state)
{
    fixture *f = *state;
    uint8_t sha[32], other[32];
    make_origin_file(f, "initrd.img", 50000, 2, sha);
    make_origin_file(f, "other", 10, 3, other);
    open_cache(f, 1 << 20, 4);
    char *url = file_url(f, "initrd.img");
    /* The origin's bytes hash to `sha`, the profile says `other`. */
    result res;
    fetch_one(f, other, url, &res);
    assert_int_equal(res.r, -EBADMSG);
    assert_false(cache_contains(f->c, other));
    assert_false(object_file_exists(f, other));
    assert_false(object_file_exists(f, sha));
    assert_int_equal(count_tmp(f), 0);
    const cache_stats *st = cache_get_stats(f->c);
    assert_int_equal(st->verify_failures, 1);
    assert_int_equal(st->objects, 0);
    assert_int_equal(st->bytes_stored, 0);

    /* Right digest, wrong size: refused too. */
    cache_object o = { .url = url, .size = 49999 };
    memcpy(o.sha256, sha, 32);
    result r2 = { 0 };
    assert_int_equal(cache_open(f->c, &o, on_done, &r2, NULL), 0);
    run_until_idle(f);
    assert_true(r2.called);
    assert_int_equal(r2.r, -EBADMSG);
    assert_false(object_file_exists(f, sha));
    assert_int_equal(st->verify_failures, 2);
    assert_int_equal(count_tmp(f), 0);

    /* And the right description is accepted afterwards. */
    o.size = 50000;
    result r3 = { 0 };
    assert_int_equal(cache_open(f->c, &o, on_done, &r3, NULL), 0);
    run_until_idle(f);
    assert_int_equal(r3.r, 0);
    assert_true(object_file_exists(f, sha));
    free(r3.data);
    free(url);
}

/* What cache_on_fetched() reported last. */
static char last_fetch_error[512];

static void on_fetched_error(void *userdata, const uint8_t sha256[32], const char *url, int r,
                             const char *error, uint64_t bytes)
{
    snprintf(last_fetch_error, sizeof(last_fetch_error), "%s", error ? error : "(none)");
}

static void test_http_errors_are_eio(void **state)
{
    fixture *f = *state;
    origin_start(&f->http, f->origin_dir);
    open_cache(f, 1 << 20, 4);
    cache_on_fetched(f->c, on_fetched_error, NULL);
    uint8_t sha[32];
    memset(sha, 0x11, 32);
    char *url = http_url(f, "missing");
    result res;
    fetch_one(f, sha, url, &res);
    assert_int_equal(res.r, -EIO);
    /* The log line names the status, not "Input/output error". */
    assert_string_equal(last_fetch_error, "HTTP 404 Not Found");
    assert_int_equal(cache_get_stats(f->c)->fetch_failures, 1);
    assert_int_equal(count_tmp(f), 0);
    free(url);
    /* Only http, https and file are fetched. */
    char *ftp = NULL;
    assert_true(asprintf(&ftp, "ftp://127.0.0.1:%u/missing", f->http.port) > 0);
    fetch_one(f, sha, ftp, &res);
    assert_int_equal(res.r, -EIO);
    free(ftp);
    assert_int_equal(atomic_load(&f->http.requests), 1);
    /* Nobody listens there. */
    assert_true(asprintf(&url, "http://127.0.0.1:1/x") > 0);
    fetch_one(f, sha, url, &res);
    assert_int_equal(res.r, -EIO);
    assert_non_null(strstr(last_fetch_error, "Couldn't connect to server"));
    free(url);
}

static void test_stalled_origin_times_out(void **state)
{
    fixture *f = *state;
    uint8_t sha[32];
    make_origin_file(f, "stalled", 1000, 60, sha);
    origin_start(&f->http, f->origin_dir);
    atomic_store(&f->http.delay_ms, 4000);
    cache_config cfg = { .dir = f->cache_dir, .max_size = 1 << 20, .low_speed_time_s = 1 };
    assert_int_equal(cache_new(&f->loop, &cfg, &f->c), 0);
    char *url = http_url(f, "stalled");
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    result res;
    fetch_one(f, sha, url, &res);
    uint64_t took = uv_now(&f->loop) - t0;
    assert_int_equal(res.r, -EIO);
    assert_true(took >= 900 && took < 3500);
    assert_false(object_file_exists(f, sha));
    assert_int_equal(count_tmp(f), 0);
    free(url);
}

static void test_object_too_large(void **state)
{
    fixture *f = *state;
    uint8_t sha[32];
    make_origin_file(f, "big", 5000, 4, sha);
    open_cache(f, 4096, 4);
    char *url = file_url(f, "big");
    result res;
    fetch_one(f, sha, url, &res);
    assert_int_equal(res.r, -EFBIG);
    assert_false(object_file_exists(f, sha));
    assert_int_equal(count_tmp(f), 0);
    /* Declared too large: refused before any fetch. */
    cache_object o = { .url = url, .size = 5000 };
    memcpy(o.sha256, sha, 32);
    assert_int_equal(cache_open(f->c, &o, on_done, &res, NULL), -EFBIG);
    assert_int_equal(cache_get_stats(f->c)->fetches, 1);
    free(url);
}

static void test_concurrent_requests_share_one_fetch(void **state)
{
    fixture *f = *state;
    uint8_t sha[32];
    make_origin_file(f, "squashfs.img", 3 << 20, 5, sha);
    origin_start(&f->http, f->origin_dir);
    atomic_store(&f->http.delay_ms, 200);
    open_cache(f, 64 << 20, 4);
    char *url = http_url(f, "squashfs.img");
    cache_object o = { .url = url };
    memcpy(o.sha256, sha, 32);
    result res[20] = { 0 };
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(cache_open(f->c, &o, on_done, &res[i], NULL), 0);
    }
    assert_int_equal(cache_pending(f->c), 1);
    run_until_idle(f);
    for (size_t i = 0; i < 20; i++) {
        assert_true(res[i].called);
        assert_int_equal(res[i].r, 0);
        assert_int_equal(res[i].size, 3 << 20);
        uint8_t got[32];
        sha256_buffer(res[i].data, res[i].size, got);
        assert_memory_equal(got, sha, 32);
        free(res[i].data);
    }
    assert_int_equal(atomic_load(&f->http.requests), 1);
    const cache_stats *st = cache_get_stats(f->c);
    assert_int_equal(st->fetches, 1);
    assert_int_equal(st->misses, 20);
    assert_int_equal(st->bytes_fetched, 3 << 20);
    free(url);
}

static void test_cancel_one_waiter(void **state)
{
    fixture *f = *state;
    uint8_t sha[32], sha2[32];
    make_origin_file(f, "a", 20000, 6, sha);
    make_origin_file(f, "b", 20000, 7, sha2);
    origin_start(&f->http, f->origin_dir);
    atomic_store(&f->http.delay_ms, 100);
    open_cache(f, 1 << 20, 4);
    char *url = http_url(f, "a");
    cache_object o = { .url = url };
    memcpy(o.sha256, sha, 32);
    result res[3] = { 0 };
    cache_request *req[3];
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cache_open(f->c, &o, on_done, &res[i], &req[i]), 0);
        assert_non_null(req[i]);
    }
    cache_request_cancel(req[1]);
    run_until_idle(f);
    assert_true(res[0].called);
    assert_int_equal(res[0].r, 0);
    assert_false(res[1].called);
    assert_true(res[2].called);
    assert_int_equal(res[2].r, 0);
    assert_int_equal(atomic_load(&f->http.requests), 1);
    free(res[0].data);
    free(res[2].data);

    /* Every waiter gone: the fetch still completes into the cache. */
    char *url2 = http_url(f, "b");
    cache_object o2 = { .url = url2 };
    memcpy(o2.sha256, sha2, 32);
    result lone = { 0 };
    cache_request *r2;
    assert_int_equal(cache_open(f->c, &o2, on_done, &lone, &r2), 0);
    cache_request_cancel(r2);
    run_until_idle(f);
    assert_false(lone.called);
    assert_true(cache_contains(f->c, sha2));
    assert_int_equal(atomic_load(&f->http.requests), 2);
    free(url);
    free(url2);
}

static void test_fetch_queue_bounded(void **state)
{
    fixture *f = *state;
    uint8_t sha[5][32];
    char *urls[5];
    origin_start(&f->http, f->origin_dir);
    open_cache(f, 1 << 20, 2);
    result res[5] = { 0 };
    for (size_t i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%zu", i);
        make_origin_file(f, name, 1000 + i, 10 + (unsigned)i, sha[i]);
        urls[i] = http_url(f, name);
        cache_object o = { .url = urls[i] };
        memcpy(o.sha256, sha[i], 32);
        assert_int_equal(cache_open(f->c, &o, on_done, &res[i], NULL), 0);
    }
    /* Two started, three queued. */
    assert_int_equal(cache_get_stats(f->c)->fetches, 2);
    assert_int_equal(cache_pending(f->c), 5);
    run_until_idle(f);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(res[i].r, 0);
        assert_int_equal(res[i].size, 1000 + i);
        free(res[i].data);
        free(urls[i]);
    }
    assert_int_equal(cache_get_stats(f->c)->fetches, 5);
}

static void hit(fixture *f, const uint8_t sha[32])
{
    cache_object o = { .url = NULL };
    memcpy(o.sha256, sha, 32);
    result res = { 0 };
    assert_int_equal(cache_open(f->c, &o, on_done, &res, NULL), 1);
    assert_int_equal(res.r, 0);
    free(res.data);
}

static void test_eviction_is_lru(void **state)
{
    fixture *f = *state;
    uint8_t sha[5][32];
    char *urls[5];
    for (size_t i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "o%zu", i);
        make_origin_file(f, name, 1000, 20 + (unsigned)i, sha[i]);
        urls[i] = file_url(f, name);
    }
    open_cache(f, 3000, 4);
    result res;
    for (size_t i = 0; i < 3; i++) { /* A, B, C: recency C B A */
        fetch_one(f, sha[i], urls[i], &res);
        assert_int_equal(res.r, 0);
        free(res.data);
    }
    hit(f, sha[0]);                      /* A C B */
    fetch_one(f, sha[3], urls[3], &res); /* D A C, B evicted */
    assert_int_equal(res.r, 0);
    free(res.data);
    assert_false(cache_contains(f->c, sha[1]));
    assert_false(object_file_exists(f, sha[1]));
    assert_true(cache_contains(f->c, sha[0]));
    assert_true(cache_contains(f->c, sha[2]));
    assert_true(cache_contains(f->c, sha[3]));
    hit(f, sha[2]);                      /* C D A */
    fetch_one(f, sha[4], urls[4], &res); /* E C D, A evicted */
    assert_int_equal(res.r, 0);
    free(res.data);
    assert_false(cache_contains(f->c, sha[0]));
    assert_false(object_file_exists(f, sha[0]));
    assert_true(object_file_exists(f, sha[2]));
    assert_true(object_file_exists(f, sha[3]));
    assert_true(object_file_exists(f, sha[4]));
    const cache_stats *st = cache_get_stats(f->c);
    assert_int_equal(st->evictions, 2);
    assert_int_equal(st->objects, 3);
    assert_true(st->bytes_stored <= 3000);
    for (size_t i = 0; i < 5; i++) {
        free(urls[i]);
    }
}

static void write_file(const char *path, const char *content)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
}

static void set_atime(fixture *f, const uint8_t sha[32], time_t when)
{
    char hex[65], path[512];
    sha256_to_hex(sha, hex);
    snprintf(path, sizeof(path), "%s/objects/%.2s/%s", f->cache_dir, hex, hex);
    struct timespec ts[2] = { { .tv_sec = when }, { .tv_nsec = UTIME_OMIT } };
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_restart_rebuilds_index(void **state)
{
    fixture *f = *state;
    uint8_t sha[3][32];
    char *urls[3];
    open_cache(f, 1 << 20, 4);
    for (size_t i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "r%zu", i);
        make_origin_file(f, name, 1000 + 100 * i, 30 + (unsigned)i, sha[i]);
        urls[i] = file_url(f, name);
        result res;
        fetch_one(f, sha[i], urls[i], &res);
        assert_int_equal(res.r, 0);
        free(res.data);
    }
    close_cache(f);

    /* What a crash and an operator leave behind. */
    char p[512], hex[65];
    snprintf(p, sizeof(p), "%s/tmp/partial.1.1", f->cache_dir);
    write_file(p, "half an image");
    snprintf(p, sizeof(p), "%s/tmp/partial.1.2", f->cache_dir);
    write_file(p, "another");
    snprintf(p, sizeof(p), "%s/objects/README", f->cache_dir);
    write_file(p, "notes");
    sha256_to_hex(sha[0], hex);
    snprintf(p, sizeof(p), "%s/objects/%.2s/not-a-digest", f->cache_dir, hex);
    write_file(p, "x");
    /* A valid digest in the wrong subdirectory. */
    snprintf(p, sizeof(p), "%s/objects/%.2s/%s", f->cache_dir, hex[0] == '0' ? "11" : "00", hex);
    char sub[512];
    snprintf(sub, sizeof(sub), "%s/objects/%s", f->cache_dir, hex[0] == '0' ? "11" : "00");
    mkdir(sub, 0755);
    write_file(p, "misplaced");
    /* Recency: r1 oldest, then r0, r2 newest. */
    set_atime(f, sha[1], 1000000);
    set_atime(f, sha[0], 2000000);
    set_atime(f, sha[2], 3000000);

    open_cache(f, 1 << 20, 4);
    const cache_stats *st = cache_get_stats(f->c);
    assert_int_equal(st->objects, 3);
    assert_int_equal(st->bytes_stored, 1000 + 1100 + 1200);
    assert_int_equal(st->rebuild_partials, 2);
    assert_int_equal(st->rebuild_ignored, 3);
    assert_int_equal(count_tmp(f), 0);
    assert_int_equal(access(p, F_OK), 0); /* ignored, not deleted */
    for (size_t i = 0; i < 3; i++) {
        assert_true(cache_contains(f->c, sha[i]));
    }
    /* Found by the scan, so hashed once before it is served. */
    cache_object o = { .url = NULL };
    memcpy(o.sha256, sha[1], 32);
    result res = { 0 };
    assert_int_equal(cache_open(f->c, &o, on_done, &res, NULL), 0);
    run_until_idle(f);
    assert_int_equal(res.r, 0);
    assert_int_equal(res.size, 1100);
    free(res.data);
    assert_int_equal(st->verifications, 1);
    hit(f, sha[1]);
    assert_int_equal(st->verifications, 1);
    close_cache(f);

    /* Rebuilt recency decides what a smaller cache keeps: r1 was just used,
     * r0 is now the oldest and goes first, then r2. */
    open_cache(f, 2500, 4);
    st = cache_get_stats(f->c);
    assert_int_equal(st->evictions, 1);
    assert_false(cache_contains(f->c, sha[0]));
    assert_false(object_file_exists(f, sha[0]));
    assert_true(cache_contains(f->c, sha[1]));
    assert_true(cache_contains(f->c, sha[2]));
    close_cache(f);
    open_cache(f, 1500, 4);
    assert_false(cache_contains(f->c, sha[2]));
    assert_true(cache_contains(f->c, sha[1]));
    for (size_t i = 0; i < 3; i++) {
        free(urls[i]);
    }
}

static void test_close_with_fetch_in_flight(void **state)
{
    fixture *f = *state;
    uint8_t sha[32];
    make_origin_file(f, "slow", 100000, 40, sha);
    origin_start(&f->http, f->origin_dir);
    atomic_store(&f->http.delay_ms, 300);
    open_cache(f, 1 << 20, 4);
    char *url = http_url(f, "slow");
    cache_object o = { .url = url };
    memcpy(o.sha256, sha, 32);
    result res = { 0 };
    assert_int_equal(cache_open(f->c, &o, on_done, &res, NULL), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    close_cache(f);
    assert_false(res.called);
    assert_int_equal(count_tmp(f), 0);
    assert_false(object_file_exists(f, sha));
    free(url);
}

/* ---- objects changed on disk behind the cache's back ---- */

static void object_path(fixture *f, const uint8_t sha[32], char *buf, size_t len)
{
    char hex[65];
    sha256_to_hex(sha, hex);
    snprintf(buf, len, "%s/objects/%.2s/%s", f->cache_dir, hex, hex);
}

static bool same_times(const struct stat *a, const struct stat *b)
{
    return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Overwrites `n` bytes at `at` with 0xff in place (size and name kept), as
 * the fault suite does with dd. A write within the same clock tick as the
 * store would leave the times as they were (no file system can tell); the
 * write is repeated until the times show it, which is what a real
 * corruption, long after the store, looks like. */
static void corrupt_object(fixture *f, const uint8_t sha[32], off_t at, size_t n)
{
    char path[512];
    object_path(f, sha, path, sizeof(path));
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    char *junk = malloc(n);
    assert_non_null(junk);
    memset(junk, 0xff, n);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(pwrite(fd, junk, n, at), (ssize_t)n);
        assert_int_equal(fstat(fd, &after), 0);
        if (!same_times(&before, &after)) {
            break;
        }
        usleep(2000);
    }
    assert_false(same_times(&before, &after));
    assert_int_equal(after.st_size, before.st_size);
    free(junk);
    close(fd);
}

static void truncate_object(fixture *f, const uint8_t sha[32], off_t size)
{
    char path[512];
    object_path(f, sha, path, sizeof(path));
    assert_int_equal(truncate(path, size), 0);
}

static bool object_file_is(fixture *f, const uint8_t sha[32])
{
    char path[512];
    object_path(f, sha, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    uint8_t got[32];
    int r = sha256_fd(fd, got);
    close(fd);
    return r == 0 && memcmp(got, sha, 32) == 0;
}

/* Opens and waits; asserts the bytes handed out are the object's. Returns
 * cache_open()'s 1 (answered at once) or 0 (waited). */
static int open_verified(fixture *f, const uint8_t sha[32], const char *url, uint64_t size)
{
    cache_object o = { .url = url };
    memcpy(o.sha256, sha, 32);
    result res = { 0 };
    int r = cache_open(f->c, &o, on_done, &res, NULL);
    assert_true(r == 0 || r == 1);
    if (r == 0) {
        assert_false(res.called);
        run_until_idle(f);
    }
    assert_true(res.called);
    assert_int_equal(res.r, 0);
    assert_int_equal(res.size, size);
    uint8_t got[32];
    sha256_buffer(res.data, res.size, got);
    assert_memory_equal(got, sha, 32);
    free(res.data);
    return r;
}

static void test_untouched_hits_are_not_rehashed(void **state)
{
    fixture *f = *state;
    uint8_t sha[32];
    make_origin_file(f, "k", 200000, 70, sha);
    open_cache(f, 1 << 20, 4);
    char *url = file_url(f, "k");
    assert_int_equal(open_verified(f, sha, url, 200000), 0);
    const cache_stats *st = cache_get_stats(f->c);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(open_verified(f, sha, url, 200000), 1);
    }
    /* Recency is written to the file (its ctime moves): still trusted. */
    usleep(1100 * 1000);
    assert_int_equal(open_verified(f, sha, url, 200000), 1);
    assert_int_equal(open_verified(f, sha, url, 200000), 1);
    assert_int_equal(st->hits, 7);
    assert_int_equal(st->verifications, 0);
    assert_int_equal(st->corrupt, 0);
    assert_int_equal(st->fetches, 1);
    free(url);
}

static void test_corrupt_in_place_is_refetched(void **state)
{
    fixture *f = *state;
    uint8_t sha[32];
    make_origin_file(f, "vmlinuz", 300000, 71, sha);
    origin_start(&f->http, f->origin_dir);
    open_cache(f, 1 << 20, 4);
    char *url = http_url(f, "vmlinuz");
    assert_int_equal(open_verified(f, sha, url, 300000), 0);
    assert_int_equal(atomic_load(&f->http.requests), 1);

    corrupt_object(f, sha, 150000, 64);
    assert_false(object_file_is(f, sha));
    /* Not served: verified, found wrong, fetched again, served whole. */
    assert_int_equal(open_verified(f, sha, url, 300000), 0);
    const cache_stats *st = cache_get_stats(f->c);
    assert_int_equal(st->verifications, 1);
    assert_int_equal(st->corrupt, 1);
    assert_int_equal(st->fetches, 2);
    assert_int_equal(atomic_load(&f->http.requests), 2);
    assert_true(object_file_is(f, sha));
    assert_int_equal(st->objects, 1);
    assert_int_equal(st->bytes_stored, 300000);
    /* The new copy is trusted again. */
    assert_int_equal(open_verified(f, sha, url, 300000), 1);
    assert_int_equal(st->verifications, 1);
    free(url);
}

static void test_truncated_is_refetched(void **state)
{
    fixture *f = *state;
    uint8_t sha[32];
    make_origin_file(f, "initrd.img", 300000, 72, sha);
    origin_start(&f->http, f->origin_dir);
    open_cache(f, 1 << 20, 4);
    char *url = http_url(f, "initrd.img");
    assert_int_equal(open_verified(f, sha, url, 300000), 0);
    truncate_object(f, sha, 1000);
    assert_int_equal(open_verified(f, sha, url, 300000), 0);
    const cache_stats *st = cache_get_stats(f->c);
    assert_int_equal(st->corrupt, 1);
    assert_int_equal(atomic_load(&f->http.requests), 2);
    assert_true(object_file_is(f, sha));
    assert_int_equal(st->bytes_stored, 300000);
    assert_int_equal(open_verified(f, sha, url, 300000), 1);
    free(url);
}

static void test_corrupt_concurrent_opens_share_one_check(void **state)
{
    fixture *f = *state;
    uint8_t sha[32];
    make_origin_file(f, "squashfs.img", 2 << 20, 73, sha);
    origin_start(&f->http, f->origin_dir);
    open_cache(f, 64 << 20, 4);
    char *url = http_url(f, "squashfs.img");
    assert_int_equal(open_verified(f, sha, url, 2 << 20), 0);
    corrupt_object(f, sha, 1 << 20, 64);
    cache_object o = { .url = url };
    memcpy(o.sha256, sha, 32);
    result res[8] = { 0 };
    cache_request *req[8];
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(cache_open(f->c, &o, on_done, &res[i], &req[i]), 0);
        assert_non_null(req[i]);
    }
    assert_int_equal(cache_pending(f->c), 1);
    cache_request_cancel(req[3]);
    run_until_idle(f);
    for (size_t i = 0; i < 8; i++) {
        if (i == 3) {
            assert_false(res[i].called);
            continue;
        }
        assert_true(res[i].called);
        assert_int_equal(res[i].r, 0);
        uint8_t got[32];
        sha256_buffer(res[i].data, res[i].size, got);
        assert_memory_equal(got, sha, 32);
        free(res[i].data);
    }
    const cache_stats *st = cache_get_stats(f->c);
    assert_int_equal(st->verifications, 1);
    assert_int_equal(st->corrupt, 1);
    assert_int_equal(atomic_load(&f->http.requests), 2);
    free(url);
}

static void test_corrupt_without_url_is_enoent(void **state)
{
    fixture *f = *state;
    uint8_t sha[32];
    make_origin_file(f, "x", 5000, 74, sha);
    open_cache(f, 1 << 20, 4);
    char *url = file_url(f, "x");
    assert_int_equal(open_verified(f, sha, url, 5000), 0);
    corrupt_object(f, sha, 100, 64);
    cache_object o = { .url = NULL };
    memcpy(o.sha256, sha, 32);
    result res = { 0 };
    int r = cache_open(f->c, &o, on_done, &res, NULL);
    if (r == 0) {
        run_until_idle(f);
    }
    assert_true(res.called);
    assert_int_equal(res.r, -ENOENT);
    assert_false(object_file_exists(f, sha));
    assert_false(cache_contains(f->c, sha));
    assert_int_equal(cache_get_stats(f->c)->corrupt, 1);
    assert_int_equal(cache_get_stats(f->c)->objects, 0);
    free(url);
}

/* Nothing remembers a stamp across a restart: what the scan finds is hashed
 * once before it is first served, and what rotted meanwhile is refetched. */
static void test_restart_verifies_once(void **state)
{
    fixture *f = *state;
    uint8_t sha[2][32];
    char *urls[2];
    origin_start(&f->http, f->origin_dir);
    open_cache(f, 1 << 20, 4);
    for (size_t i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof(name), "s%zu", i);
        make_origin_file(f, name, 40000, 75 + (unsigned)i, sha[i]);
        urls[i] = http_url(f, name);
        assert_int_equal(open_verified(f, sha[i], urls[i], 40000), 0);
    }
    close_cache(f);
    corrupt_object(f, sha[1], 20000, 64);
    open_cache(f, 1 << 20, 4);
    const cache_stats *st = cache_get_stats(f->c);
    assert_int_equal(st->objects, 2);
    assert_int_equal(open_verified(f, sha[0], urls[0], 40000), 0);
    assert_int_equal(st->verifications, 1);
    assert_int_equal(st->corrupt, 0);
    assert_int_equal(open_verified(f, sha[0], urls[0], 40000), 1);
    assert_int_equal(st->verifications, 1);
    assert_int_equal(open_verified(f, sha[1], urls[1], 40000), 0);
    assert_int_equal(st->verifications, 2);
    assert_int_equal(st->corrupt, 1);
    assert_int_equal(atomic_load(&f->http.requests), 3);
    assert_true(object_file_is(f, sha[1]));
    assert_int_equal(open_verified(f, sha[1], urls[1], 40000), 1);
    /* Pre-warming verifies too, without a request waiting. */
    close_cache(f);
    open_cache(f, 1 << 20, 4);
    cache_object o = { .url = urls[0] };
    memcpy(o.sha256, sha[0], 32);
    assert_int_equal(cache_prefetch(f->c, &o), 0);
    run_until_idle(f);
    assert_int_equal(cache_get_stats(f->c)->verifications, 1);
    assert_int_equal(cache_prefetch(f->c, &o), 1);
    assert_int_equal(open_verified(f, sha[0], urls[0], 40000), 1);
    for (size_t i = 0; i < 2; i++) {
        free(urls[i]);
    }
}

/* Closing while an object is being hashed: nothing leaks (ASan), nothing
 * is called back, the object stays. */
static void test_close_while_verifying(void **state)
{
    fixture *f = *state;
    uint8_t sha[32];
    make_origin_file(f, "big", 8 << 20, 76, sha);
    open_cache(f, 64 << 20, 4);
    char *url = file_url(f, "big");
    assert_int_equal(open_verified(f, sha, url, 8 << 20), 0);
    close_cache(f);
    open_cache(f, 64 << 20, 4);
    cache_object o = { .url = url };
    memcpy(o.sha256, sha, 32);
    result res = { 0 };
    assert_int_equal(cache_open(f->c, &o, on_done, &res, NULL), 0);
    assert_int_equal(cache_pending(f->c), 1);
    close_cache(f);
    assert_false(res.called);
    assert_true(object_file_is(f, sha));
    free(url);
}

static void test_metrics(void **state)
{
    fixture *f = *state;
    uint8_t sha[32], wrong[32];
    make_origin_file(f, "m", 4321, 50, sha);
    memset(wrong, 0x42, 32);
    open_cache(f, 1 << 20, 4);
    metrics *m = NULL;
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(cache_register_metrics(f->c, m), 0);
    char *url = file_url(f, "m");
    result res;
    fetch_one(f, sha, url, &res);
    free(res.data);
    fetch_one(f, wrong, url, &res);
    hit(f, sha);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(m, &text, &len), 0);
    static const char *const want[] = {
        "rackboot_cache_hits_total 1\n",
        "rackboot_cache_misses_total 2\n",
        "rackboot_cache_upstream_fetches_total 2\n",
        "rackboot_cache_fetch_failures_total 0\n",
        "rackboot_cache_verify_failures_total 1\n",
        "rackboot_cache_evictions_total 0\n",
        "rackboot_cache_verifications_total 0\n",
        "rackboot_cache_corrupt_total 0\n",
        "rackboot_cache_fetched_bytes_total 8642\n",
        "rackboot_cache_stored_bytes 4321\n",
        "rackboot_cache_objects 1\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!strstr(text, want[i])) {
            fail_msg("missing %s in:\n%s", want[i], text);
        }
    }
    free(text);
    metrics_free(m);
    free(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fetch_file_url_and_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_without_url_is_enoent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sha256_mismatch_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_errors_are_eio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_origin_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_requests_share_one_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_one_waiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_queue_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_is_lru, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_rebuilds_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_fetch_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untouched_hits_are_not_rehashed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_in_place_is_refetched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_is_refetched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_concurrent_opens_share_one_check, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_without_url_is_enoent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_verifies_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_while_verifying, setup, teardown),
    };
    /* The origin writes to connections the cache may have dropped. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
