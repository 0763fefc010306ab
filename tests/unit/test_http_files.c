/* rack-agent/files/http_route: request → files_open() → answer, for the TFTP
 * root and for a source that answers later (as the image cache does): the
 * connection waits without holding the loop, errors map to their statuses,
 * and a close while waiting cancels the open. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
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

#include "files/files-internal.h"
#include "files/http_route.h"
#include "http/server.h"
#include "util.h"

#define N_REQUESTS 7

static const char object_data[] = "verified object bytes\n";

typedef struct slow_open {
    files_request base; /* first: files_request_cancel() gets this */
    struct fixture *f;
    uv_timer_t timer;
    files_done_fn done;
    void *done_userdata;
    int result;
} slow_open;

typedef struct fixture {
    uv_loop_t loop;
    http_server *srv;
    files *files;
    uv_async_t close_now;
    char root[64];
    char object_path[96];
    uint16_t port;
    unsigned cancelled;
    unsigned opens_live;
    char *responses[N_REQUESTS];
    pthread_t thread;
} fixture;

static void slow_freed(uv_handle_t *h)
{
    slow_open *o = h->data;
    o->f->opens_live--;
    free(o);
}

static void slow_fire(uv_timer_t *t)
{
    slow_open *o = t->data;
    if (o->result == 0) {
        files_result res = { .fd = open(o->f->object_path, O_RDONLY | O_CLOEXEC),
                             .size = sizeof(object_data) - 1,
                             .etag = "\"0123abcd\"",
                             .content_type = "application/octet-stream",
                             .verified = true,
                             .image_kind = -1 };
        assert_true(res.fd >= 0);
        o->done(o->done_userdata, 0, &res);
    } else {
        o->done(o->done_userdata, o->result, NULL);
    }
    uv_close((uv_handle_t *)&o->timer, slow_freed);
}

static void slow_cancel(files_request *req)
{
    slow_open *o = (slow_open *)req;
    o->f->cancelled++;
    uv_close((uv_handle_t *)&o->timer, slow_freed);
}

/* A source like the cache's: "ok" and "bad" answer 50 ms later, "never"
 * never, "gone" at once with -ENOENT. */
static int slow_source(void *userdata, const char *path, const struct sockaddr_in6 *client,
                       files_done_fn done, void *done_userdata, files_request **ret_req)
{
    (void)client;
    fixture *f = userdata;
    if (streq(path, "gone")) {
        done(done_userdata, -ENOENT, NULL);
        return 0;
    }
    slow_open *o = calloc(1, sizeof(*o));
    assert_non_null(o);
    o->base.cancel = slow_cancel;
    o->f = f;
    o->done = done;
    o->done_userdata = done_userdata;
    o->result = streq(path, "ok") ? 0 : streq(path, "bad") ? -EBADMSG : -EIO;
    uv_timer_init(&f->loop, &o->timer);
    o->timer.data = o;
    f->opens_live++;
    if (!streq(path, "never")) {
        uv_timer_start(&o->timer, slow_fire, 50, 0);
    }
    if (ret_req) {
        *ret_req = &o->base;
    }
    return 0;
}

static const char *const requests[N_REQUESTS] = {
    "GET /slow/ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    "GET /slow/ok HTTP/1.1\r\nHost: t\r\nRange: bytes=-6\r\nConnection: close\r\n\r\n",
    "GET /slow/bad HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    "GET /slow/gone HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    "GET /files/hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    "GET /files/escape HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    /* last: still waiting when the server closes */
    "GET /slow/never HTTP/1.1\r\nHost: t\r\n\r\n",
};

static char *exchange(fixture *f, const char *request, bool last)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
                               .sin6_port = htons(f->port),
                               .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    if (last) {
        usleep(100 * 1000);
        uv_async_send(&f->close_now);
    }
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while (got + 1 < cap && (n = read(fd, buf + got, cap - got - 1)) > 0) {
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    return buf;
}

static void *client_main(void *arg)
{
    fixture *f = arg;
    for (size_t i = 0; i < N_REQUESTS; i++) {
        f->responses[i] = exchange(f, requests[i], i == N_REQUESTS - 1);
    }
    return NULL;
}

static void on_close_now(uv_async_t *a)
{
    fixture *f = a->data;
    http_server_close(f->srv);
    f->srv = NULL;
    uv_close((uv_handle_t *)a, NULL);
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void assert_status(const char *response, unsigned status)
{
    char line[32];
    snprintf(line, sizeof(line), "HTTP/1.1 %u ", status);
    if (strncmp(response, line, strlen(line)) != 0) {
        fail_msg("expected status %u, got:\n%s", status, response);
    }
}

static const char *body_of(const char *response)
{
    const char *b = strstr(response, "\r\n\r\n");
    assert_non_null(b);
    return b + 4;
}

static void test_files_routes(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    strcpy(f->root, "/tmp/test_http_files.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    char path[128];
    snprintf(path, sizeof(path), "%s/hello.txt", f->root);
    write_file(path, "hello from the root\n");
    snprintf(f->object_path, sizeof(f->object_path), "%s.object", f->root);
    write_file(f->object_path, object_data);
    snprintf(path, sizeof(path), "%s/escape", f->root);
    assert_int_equal(symlink(f->object_path, path), 0);

    assert_int_equal(files_new(f->root, &f->files), 0);
    assert_int_equal(files_add_source(f->files, "slow", slow_source, f), 0);
    http_server_config cfg = { .listen = { .sin6_family = AF_INET6,
                                           .sin6_addr = IN6ADDR_LOOPBACK_INIT } };
    int r = http_server_new(&f->loop, &cfg, &f->srv);
    if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
        skip();
    }
    assert_int_equal(r, 0);
    f->port = http_server_port(f->srv);
    assert_int_equal(
        http_server_route(f->srv, HTTP_METHOD_GET, "/files/", http_files_handler, f->files), 0);
    assert_int_equal(
        http_server_route(f->srv, HTTP_METHOD_GET, "/slow/", http_files_handler, f->files), 0);
    uv_async_init(&f->loop, &f->close_now, on_close_now);
    f->close_now.data = f;

    assert_int_equal(pthread_create(&f->thread, NULL, client_main, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(f->thread, NULL);

    assert_status(f->responses[0], 200);
    assert_string_equal(body_of(f->responses[0]), object_data);
    assert_non_null(strstr(f->responses[0], "ETag: \"0123abcd\"\r\n"));
    assert_status(f->responses[1], 206);
    assert_string_equal(body_of(f->responses[1]), "bytes\n");
    assert_status(f->responses[2], 502); /* failed verification: no body of it */
    assert_null(strstr(f->responses[2], "verified object"));
    assert_status(f->responses[3], 404);
    assert_status(f->responses[4], 200);
    assert_non_null(strstr(f->responses[4], "Content-Type: text/plain\r\n"));
    assert_string_equal(body_of(f->responses[4]), "hello from the root\n");
    assert_status(f->responses[5], 403); /* symlink out of the root */
    assert_status(f->responses[6], 503);
    assert_int_equal(f->cancelled, 1);
    assert_int_equal(f->opens_live, 0);

    assert_int_equal(uv_loop_close(&f->loop), 0);
    files_free(f->files);
    unlink(path);
    snprintf(path, sizeof(path), "%s/hello.txt", f->root);
    unlink(path);
    unlink(f->object_path);
    rmdir(f->root);
    for (size_t i = 0; i < N_REQUESTS; i++) {
        free(f->responses[i]);
    }
    free(f);
}

/* Small files of the root come from memory (files_open_cached()), with the
 * same answers as from a file, and a change of the file shows at once. */
#define N_SMALL 8

typedef struct small_fixture {
    fixture base;
    char path[128];
    char *responses[N_SMALL];
} small_fixture;

static void *small_client(void *arg)
{
    small_fixture *sf = arg;
    fixture *f = &sf->base;
    char req[256];
    sf->responses[0] = exchange(f,
                                "GET /files/small.txt HTTP/1.1\r\nHost: t\r\n"
                                "Connection: close\r\n\r\n",
                                false);
    sf->responses[1] = exchange(f,
                                "GET /files/small.txt HTTP/1.1\r\nHost: t\r\n"
                                "Connection: close\r\n\r\n",
                                false);
    sf->responses[2] = exchange(f,
                                "GET /files/small.txt HTTP/1.1\r\nHost: t\r\n"
                                "Range: bytes=0-4\r\nConnection: close\r\n\r\n",
                                false);
    const char *etag = strstr(sf->responses[0], "ETag: ");
    assert_non_null(etag);
    int elen = (int)strcspn(etag + 6, "\r");
    snprintf(req, sizeof(req),
             "GET /files/small.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: %.*s\r\n"
             "Connection: close\r\n\r\n",
             elen, etag + 6);
    sf->responses[3] = exchange(f, req, false);
    sf->responses[4] = exchange(f,
                                "HEAD /files/small.txt HTTP/1.1\r\nHost: t\r\n"
                                "Connection: close\r\n\r\n",
                                false);
    sf->responses[5] = exchange(f,
                                "GET /files/small.txt HTTP/1.1\r\nHost: t\r\n"
                                "Range: bytes=100-\r\nConnection: close\r\n\r\n",
                                false);
    /* Rewritten: the next answer has the new bytes and a new validator. */
    write_file(sf->path, "small, version 2\n");
    sf->responses[6] = exchange(f,
                                "GET /files/small.txt HTTP/1.1\r\nHost: t\r\n"
                                "Connection: close\r\n\r\n",
                                false);
    sf->responses[7] = exchange(f,
                                "GET /files/small.txt HTTP/1.1\r\nHost: t\r\n"
                                "Connection: close\r\n\r\n",
                                true);
    return NULL;
}

static void test_small_files_from_memory(void **state)
{
    small_fixture *sf = calloc(1, sizeof(*sf));
    assert_non_null(sf);
    fixture *f = &sf->base;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    strcpy(f->root, "/tmp/test_http_files.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(sf->path, sizeof(sf->path), "%s/small.txt", f->root);
    write_file(sf->path, "small v1\n");
    assert_int_equal(files_new(f->root, &f->files), 0);
    files_set_cache_settle(f->files, 0);
    http_server_config cfg = { .listen = { .sin6_family = AF_INET6,
                                           .sin6_addr = IN6ADDR_LOOPBACK_INIT } };
    int r = http_server_new(&f->loop, &cfg, &f->srv);
    if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
        skip();
    }
    assert_int_equal(r, 0);
    f->port = http_server_port(f->srv);
    assert_int_equal(
        http_server_route(f->srv, HTTP_METHOD_GET, "/files/", http_files_handler, f->files), 0);
    uv_async_init(&f->loop, &f->close_now, on_close_now);
    f->close_now.data = f;
    assert_int_equal(pthread_create(&f->thread, NULL, small_client, sf), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(f->thread, NULL);

    for (int i = 0; i < 2; i++) {
        assert_status(sf->responses[i], 200);
        assert_string_equal(body_of(sf->responses[i]), "small v1\n");
        assert_non_null(strstr(sf->responses[i], "Content-Length: 9\r\n"));
        assert_non_null(strstr(sf->responses[i], "Accept-Ranges: bytes\r\n"));
        assert_non_null(strstr(sf->responses[i], "Content-Type: text/plain\r\n"));
    }
    assert_status(sf->responses[2], 206);
    assert_string_equal(body_of(sf->responses[2]), "small");
    assert_non_null(strstr(sf->responses[2], "Content-Range: bytes 0-4/9\r\n"));
    assert_status(sf->responses[3], 304);
    assert_string_equal(body_of(sf->responses[3]), "");
    assert_status(sf->responses[4], 200);
    assert_non_null(strstr(sf->responses[4], "Content-Length: 9\r\n"));
    assert_string_equal(body_of(sf->responses[4]), "");
    assert_status(sf->responses[5], 416);
    assert_non_null(strstr(sf->responses[5], "Content-Range: bytes */9\r\n"));
    assert_status(sf->responses[6], 200);
    assert_string_equal(body_of(sf->responses[6]), "small, version 2\n");
    const char *e1 = strstr(sf->responses[0], "ETag: ");
    const char *e2 = strstr(sf->responses[6], "ETag: ");
    assert_non_null(e2);
    assert_true(strncmp(e1, e2, strcspn(e1, "\r")) != 0);
    assert_string_equal(body_of(sf->responses[7]), "small, version 2\n");
    /* From memory: read once per version, every other answer a hit. */
    const files_cache_stats *st = files_get_cache_stats(f->files);
    assert_int_equal(st->fills, 2);
    assert_int_equal(st->invalidations, 1);
    assert_int_equal(st->hits, 6);

    assert_int_equal(uv_loop_close(&f->loop), 0);
    /* Every response let go of its reference: LeakSanitizer sees the rest. */
    files_free(f->files);
    unlink(sf->path);
    rmdir(f->root);
    for (size_t i = 0; i < N_SMALL; i++) {
        free(sf->responses[i]);
    }
    free(sf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_routes),
        cmocka_unit_test(test_small_files_from_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
