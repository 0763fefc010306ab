/* deploy-ramdisk/writer/stream against a small HTTP server in this test, on
 * [::1] in a thread, that can misbehave the ways origins and caches do: drop
 * the connection after N bytes, ignore Range (200 with the whole file),
 * answer a Range with other bytes than asked, serve wrong bytes, refuse.
 * What a user would notice is checked: the file written equals the image,
 * a bad image leaves the first MiB zero, retries end. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cmocka.h>

#include "sha256.h"
#include "writer/sink.h"
#include "writer/stream-internal.h"
#include "writer/stream.h"

#define MiB ((size_t)1 << 20)

/* ---- the server ---- */

typedef struct server {
    /* What to serve, and how to misbehave (set before server_start()). */
    const uint8_t *body;
    size_t len;
    size_t drop_after; /* close after this many body bytes of a response */
    int drops;         /* responses that drop; -1: every one */
    bool ignore_range; /* always 200 with the whole body */
    bool wrong_range;  /* a 206 that starts 100 bytes early */
    int status;        /* answer only this status, no body */
    size_t corrupt_at; /* flip this byte of the body (0: none) */
    /* The server's side. */
    int fd;
    int port;
    pthread_t thread;
    atomic_bool stop;
    atomic_int requests;
    atomic_int ranged;
    uint64_t range_starts[64]; /* the Range starts asked, in order */
} server;

static void send_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        if (n <= 0) {
            return; /* the client went away: fine */
        }
        b += n;
        len -= (size_t)n;
    }
}

static void serve_one(server *sv, int c)
{
    char req[8192];
    size_t have = 0;
    while (have < sizeof(req) - 1) {
        ssize_t n = recv(c, req + have, sizeof(req) - 1 - have, 0);
        if (n <= 0) {
            return;
        }
        have += (size_t)n;
        req[have] = '\0';
        if (strstr(req, "\r\n\r\n")) {
            break;
        }
    }
    int k = atomic_fetch_add(&sv->requests, 1);
    char head[512];
    if (sv->status) {
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 %d Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                         sv->status);
        send_all(c, head, (size_t)n);
        return;
    }
    uint64_t from = 0;
    bool ranged = false;
    const char *r = strcasestr(req, "\r\nRange: bytes=");
    if (r) {
        from = strtoull(r + 15, NULL, 10);
        ranged = true;
        int i = atomic_fetch_add(&sv->ranged, 1);
        if (i < 64) {
            sv->range_starts[i] = from;
        }
    }
    size_t start = 0;
    int n;
    if (ranged && !sv->ignore_range && from < sv->len) {
        start = (size_t)from;
        uint64_t claimed = sv->wrong_range && from >= 100 ? from - 100 : from;
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 206 Partial Content\r\nContent-Length: %zu\r\n"
                     "Content-Range: bytes %llu-%zu/%zu\r\nConnection: close\r\n\r\n",
                     sv->len - start, (unsigned long long)claimed, sv->len - 1, sv->len);
    } else {
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     sv->len);
    }
    send_all(c, head, (size_t)n);
    size_t end = sv->len;
    bool drop = sv->drop_after > 0 && (sv->drops < 0 || k < sv->drops);
    if (drop && sv->len - start > sv->drop_after) {
        end = start + sv->drop_after;
    }
    if (sv->corrupt_at > start && sv->corrupt_at < end) {
        send_all(c, sv->body + start, sv->corrupt_at - start);
        uint8_t bad = sv->body[sv->corrupt_at] ^ 0x01;
        send_all(c, &bad, 1);
        send_all(c, sv->body + sv->corrupt_at + 1, end - sv->corrupt_at - 1);
    } else {
        send_all(c, sv->body + start, end - start);
    }
}

static void *server_main(void *arg)
{
    server *sv = arg;
    while (!atomic_load(&sv->stop)) {
        struct pollfd p = { .fd = sv->fd, .events = POLLIN };
        if (poll(&p, 1, 50) <= 0) {
            continue;
        }
        int c = accept4(sv->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            continue;
        }
        serve_one(sv, c);
        close(c);
    }
    return NULL;
}

static void server_start(server *sv)
{
    sv->fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(sv->fd >= 0);
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    assert_int_equal(bind(sv->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(sv->fd, 8), 0);
    socklen_t alen = sizeof(a);
    assert_int_equal(getsockname(sv->fd, (struct sockaddr *)&a, &alen), 0);
    sv->port = ntohs(a.sin6_port);
    atomic_store(&sv->stop, false);
    assert_int_equal(pthread_create(&sv->thread, NULL, server_main, sv), 0);
}

static void server_stop(server *sv)
{
    atomic_store(&sv->stop, true);
    pthread_join(sv->thread, NULL);
    close(sv->fd);
}

/* ---- fixture: an image, its zstd form, a target file ---- */

typedef struct fixture {
    uint8_t *image;
    size_t image_len;
    uint8_t *zst;
    size_t zst_len;
    char zst_hex[SHA256_HEX_LEN + 1];
    char raw_hex[SHA256_HEX_LEN + 1];
    char dir[64];
    char target[128];
    char url[128];
    server sv;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f) {
        return -1;
    }
    f->image_len = 3 * MiB + 4567;
    f->image = malloc(f->image_len);
    uint32_t x = 12345;
    for (size_t i = 0; i < f->image_len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        f->image[i] = (i / 65536) % 2 ? 0 : (uint8_t)x;
    }
    size_t cap = ZSTD_compressBound(f->image_len);
    f->zst = malloc(cap);
    f->zst_len = ZSTD_compress(f->zst, cap, f->image, f->image_len, 3);
    if (ZSTD_isError(f->zst_len)) {
        return -1;
    }
    uint8_t d[SHA256_LEN];
    sha256_buffer(f->zst, f->zst_len, d);
    sha256_to_hex(d, f->zst_hex);
    sha256_buffer(f->image, f->image_len, d);
    sha256_to_hex(d, f->raw_hex);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_stream.XXXXXX");
    if (!mkdtemp(f->dir)) {
        return -1;
    }
    snprintf(f->target, sizeof(f->target), "%s/disk", f->dir);
    /* The "disk": 8 MiB of an old installation. */
    int fd = open(f->target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    uint8_t *old = malloc(8 * MiB);
    memset(old, 0xee, 8 * MiB);
    if (fd < 0 || write(fd, old, 8 * MiB) != (ssize_t)(8 * MiB)) {
        return -1;
    }
    close(fd);
    free(old);
    f->sv.body = f->zst;
    f->sv.len = f->zst_len;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unlink(f->target);
    rmdir(f->dir);
    free(f->zst);
    free(f->image);
    free(f);
    return 0;
}

static void start(fixture *f)
{
    server_start(&f->sv);
    snprintf(f->url, sizeof(f->url), "http://[::1]:%d/images/disk.zst", f->sv.port);
}

typedef struct progress_seen {
    uint64_t last_received;
    uint64_t last_total;
    int calls;
} progress_seen;

static void on_progress(uint64_t received, uint64_t total, void *userdata)
{
    progress_seen *p = userdata;
    p->last_received = received;
    p->last_total = total;
    p->calls++;
}

static int fetch(fixture *f, const char *hex, stream_result *res, char **err, progress_seen *ps)
{
    sink *s = NULL;
    sink_options so = { .limit = 8 * MiB };
    assert_int_equal(sink_open(f->target, &so, &s), 0);
    stream_options o = {
        .url = f->url,
        .sha256_hex = hex,
        .max_stalls = 3,
        .backoff_ms = 1,
        .connect_timeout_s = 5,
        .stall_timeout_s = 10,
        .on_progress = ps ? on_progress : NULL,
        .userdata = ps,
    };
    int r = stream_fetch(&o, s, res, err);
    sink_free(s);
    return r;
}

static uint8_t *read_target(fixture *f)
{
    uint8_t *p = malloc(8 * MiB);
    assert_non_null(p);
    int fd = open(f->target, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, p, 8 * MiB), (ssize_t)(8 * MiB));
    close(fd);
    return p;
}

static void assert_written(fixture *f)
{
    uint8_t *got = read_target(f);
    assert_memory_equal(got, f->image, f->image_len);
    free(got);
}

static void assert_head_zero(fixture *f)
{
    uint8_t *got = read_target(f);
    for (size_t i = 0; i < MiB; i++) {
        if (got[i] != 0) {
            fail_msg("byte %zu of the first MiB is %#x", i, got[i]);
        }
    }
    free(got);
}

/* ---- tests ---- */

static void test_plain(void **state)
{
    fixture *f = *state;
    stream_result res;
    char *err = NULL;
    progress_seen ps = { 0 };
    start(f);
    assert_int_equal(fetch(f, f->zst_hex, &res, &err, &ps), 0);
    server_stop(&f->sv);
    assert_null(err);
    assert_written(f);
    assert_int_equal(res.format, DECOMP_FORMAT_ZSTD);
    assert_int_equal(res.received, f->zst_len);
    assert_int_equal(res.written, f->image_len);
    assert_int_equal(res.attempts, 1);
    assert_int_equal(res.restarts, 0);
    assert_int_equal(ps.last_received, f->zst_len);
    assert_int_equal(ps.last_total, f->zst_len);
}

static void test_raw(void **state)
{
    fixture *f = *state;
    stream_result res;
    char *err = NULL;
    f->sv.body = f->image;
    f->sv.len = f->image_len;
    start(f);
    assert_int_equal(fetch(f, f->raw_hex, &res, &err, NULL), 0);
    server_stop(&f->sv);
    assert_written(f);
    assert_int_equal(res.format, DECOMP_FORMAT_RAW);
}

/* Dropped every 300000 bytes: resumed with Range from where it was, each
 * time, to the end. */
static void test_resume_after_drops(void **state)
{
    fixture *f = *state;
    stream_result res;
    char *err = NULL;
    f->sv.drop_after = 300000;
    f->sv.drops = -1;
    start(f);
    assert_int_equal(fetch(f, f->zst_hex, &res, &err, NULL), 0);
    server_stop(&f->sv);
    assert_null(err);
    assert_written(f);
    size_t want = (f->zst_len + 299999) / 300000;
    assert_int_equal(res.attempts, want);
    assert_int_equal(res.restarts, 0);
    assert_int_equal(atomic_load(&f->sv.ranged), (int)want - 1);
    for (size_t i = 0; i + 1 < want && i < 64; i++) {
        assert_int_equal(f->sv.range_starts[i], (i + 1) * 300000);
    }
}

/* A server that ignores Range: the 200 is taken from its first byte, with
 * hash, decompressor and sink started over. */
static void test_restart_on_200(void **state)
{
    fixture *f = *state;
    stream_result res;
    char *err = NULL;
    f->sv.drop_after = 500000;
    f->sv.drops = 2;
    f->sv.ignore_range = true;
    start(f);
    assert_int_equal(fetch(f, f->zst_hex, &res, &err, NULL), 0);
    server_stop(&f->sv);
    assert_null(err);
    assert_written(f);
    assert_int_equal(res.attempts, 3);
    assert_int_equal(res.restarts, 2);
}

/* A 206 for other bytes than asked is not spliced in: the download starts
 * over without Range. */
static void test_wrong_content_range(void **state)
{
    fixture *f = *state;
    stream_result res;
    char *err = NULL;
    f->sv.drop_after = 400000;
    f->sv.drops = 1;
    f->sv.wrong_range = true;
    start(f);
    assert_int_equal(fetch(f, f->zst_hex, &res, &err, NULL), 0);
    server_stop(&f->sv);
    assert_null(err);
    assert_written(f);
    assert_int_equal(res.attempts, 3); /* dropped, wrong range, whole */
    assert_int_equal(res.restarts, 1);
    assert_int_equal(atomic_load(&f->sv.ranged), 1);
}

/* Wrong bytes: refused with both hashes named, and the partition table
 * region left zero, not the old disk's nor the bad image's. */
static void test_hash_mismatch(void **state)
{
    fixture *f = *state;
    stream_result res = { 0 };
    char *err = NULL;
    /* Flip a byte of the raw image's data past its first MiB, where a
     * decompressor would not notice: only the hash can. */
    f->sv.body = f->image;
    f->sv.len = f->image_len;
    f->sv.corrupt_at = 2 * MiB + 3;
    start(f);
    assert_int_equal(fetch(f, f->raw_hex, &res, &err, NULL), -EBADMSG);
    server_stop(&f->sv);
    assert_non_null(err);
    assert_non_null(strstr(err, f->raw_hex));
    assert_non_null(strstr(err, "mismatch"));
    free(err);
    assert_int_equal(res.attempts, 0); /* not written on failure */
    assert_head_zero(f);
}

/* Corrupt compressed data stops the download at once: no retry cures it. */
static void test_corrupt_zstd(void **state)
{
    fixture *f = *state;
    stream_result res;
    char *err = NULL;
    f->sv.corrupt_at = 4; /* the frame header */
    start(f);
    assert_int_equal(fetch(f, f->zst_hex, &res, &err, NULL), -EBADMSG);
    server_stop(&f->sv);
    free(err);
    assert_int_equal(atomic_load(&f->sv.requests), 1);
    assert_head_zero(f);
}

/* Always dropped at the same place and never resumable: retries end. */
static void test_retries_bounded(void **state)
{
    fixture *f = *state;
    stream_result res;
    char *err = NULL;
    f->sv.drop_after = 100000;
    f->sv.drops = -1;
    f->sv.ignore_range = true;
    start(f);
    assert_int_equal(fetch(f, f->zst_hex, &res, &err, NULL), -EIO);
    server_stop(&f->sv);
    assert_non_null(err);
    free(err);
    /* One that got somewhere, then max_stalls (3) that got no further. */
    assert_int_equal(atomic_load(&f->sv.requests), 4);
    assert_head_zero(f);
}

static void test_http_errors(void **state)
{
    fixture *f = *state;
    stream_result res;
    char *err = NULL;
    f->sv.status = 404;
    start(f);
    assert_int_equal(fetch(f, f->zst_hex, &res, &err, NULL), -ENOENT);
    free(err);
    err = NULL;
    assert_int_equal(atomic_load(&f->sv.requests), 1); /* a 404 is final */
    f->sv.status = 503;
    assert_int_equal(fetch(f, f->zst_hex, &res, &err, NULL), -EIO);
    free(err);
    assert_int_equal(atomic_load(&f->sv.requests), 1 + 3);
    server_stop(&f->sv);
}

static void test_no_server(void **state)
{
    fixture *f = *state;
    stream_result res;
    char *err = NULL;
    start(f);
    server_stop(&f->sv); /* the port is closed now */
    assert_int_equal(fetch(f, f->zst_hex, &res, &err, NULL), -EIO);
    assert_non_null(err);
    free(err);
}

static void test_image_too_large(void **state)
{
    fixture *f = *state;
    stream_result res;
    char *err = NULL;
    sink *s = NULL;
    sink_options so = { .limit = 2 * MiB };
    start(f);
    assert_int_equal(sink_open(f->target, &so, &s), 0);
    stream_options o = { .url = f->url, .sha256_hex = f->zst_hex, .backoff_ms = 1 };
    assert_int_equal(stream_fetch(&o, s, &res, &err), -ENOSPC);
    free(err);
    err = NULL;
    sink_free(s);
    /* With the size known, before a byte is fetched. */
    assert_int_equal(sink_open(f->target, &so, &s), 0);
    o.image_size = f->image_len;
    int before = atomic_load(&f->sv.requests);
    assert_int_equal(stream_fetch(&o, s, &res, &err), -ENOSPC);
    assert_int_equal(atomic_load(&f->sv.requests), before);
    free(err);
    sink_free(s);
    server_stop(&f->sv);
}

static void test_bad_options(void **state)
{
    stream_result res;
    char *err = NULL;
    sink *s = NULL;
    sink_options so = { .dry_run = true };
    assert_int_equal(sink_open("unused", &so, &s), 0);
    stream_options o = { .url = "http://[::1]:9/", .sha256_hex = "abc" };
    assert_int_equal(stream_fetch(&o, s, &res, &err), -EINVAL);
    free(err);
    sink_free(s);
}

static void test_content_range_parse(void **state)
{
    uint64_t a, b, c;
#define CR(s) stream_parse_content_range((s), strlen(s), &a, &b, &c)
    assert_int_equal(CR("bytes 100-199/1000"), 0);
    assert_int_equal(a, 100);
    assert_int_equal(b, 199);
    assert_int_equal(c, 1000);
    assert_int_equal(CR(" bytes 0-0/*\t"), 0);
    assert_int_equal(c, 0);
    assert_int_equal(CR("Bytes 5-9/10"), 0);
    assert_int_equal(CR("bytes 5-9/9"), -EBADMSG);  /* last past complete */
    assert_int_equal(CR("bytes 9-5/10"), -EBADMSG); /* backwards */
    assert_int_equal(CR("bytes */10"), -EBADMSG);   /* a 416's form */
    assert_int_equal(CR("bytes=5-9/10"), -EBADMSG);
    assert_int_equal(CR("bytes 5-9/10x"), -EBADMSG);
    assert_int_equal(CR("bytes -5-9/10"), -EBADMSG);
    assert_int_equal(CR("bytes 5-/10"), -EBADMSG);
    assert_int_equal(CR("bytes 99999999999999999999-1/2"), -EBADMSG);
    assert_int_equal(CR(""), -EBADMSG);
    assert_int_equal(CR("byte"), -EBADMSG);
#undef CR
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_on_200, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_content_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_zstd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_too_large, setup, teardown),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_content_range_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
