/* http/server: the server on a real libuv loop and a loopback
 * socket, with test routes; a client thread speaks raw HTTP/1.1 so every byte
 * of the answers is checked (status lines, headers, order of pipelined
 * answers, bodies), including what curl would hide. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "http/server.h"
#include "loopback_client.h"
#include "metrics/metrics.h"
#include "util.h"

#define MAX_JOBS 8

/* listen(2) as the server calls it (tests/http.cmake links this test with
 * -Wl,--wrap=listen). With a request queued, the hook dials the new socket
 * and sends it before http_server_new() returns: the client of a restarting
 * daemon that is already in the backlog when the socket opens. */
int __real_listen(int fd, int backlog);
int __wrap_listen(int fd, int backlog);
static const char *listen_hook_request;
static int listen_hook_client = -1;

int __wrap_listen(int fd, int backlog)
{
    int r = __real_listen(fd, backlog);
    if (r < 0 || !listen_hook_request) {
        return r;
    }
    struct sockaddr_in6 sa;
    socklen_t len = sizeof(sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        listen_hook_client = loopback_dial(ntohs(sa.sin6_port));
    }
    if (listen_hook_client >= 0) {
        size_t n = strlen(listen_hook_request);
        if (send(listen_hook_client, listen_hook_request, n, MSG_NOSIGNAL) != (ssize_t)n) {
            close(listen_hook_client);
            listen_hook_client = -1;
        }
    }
    return r;
}

typedef struct fixture {
    uv_loop_t loop;
    http_server *srv;
    uv_async_t done;
    uv_timer_t later_timer;
    http_request *later_req;
    http_request *never_req;
    unsigned never_calls;
    bool never_cancelled;
    char file_path[64];
    /* client side */
    uint16_t port;
    const char *requests[MAX_JOBS];
    size_t n_requests;
    bool close_after_send; /* ask the loop to close the server once sent */
    bool hold;             /* the client's end does not close the server */
    bool client_finished;
    char *responses[MAX_JOBS];
    pthread_t thread;
    /* results of the limit tests' client threads */
    double drip_closed_after; /* seconds; < 0: never closed */
    size_t drip_sent;
    char *during_drip, *kept_alive;
    double kept_alive_closed_after;
    bool over_limit_answered, freed_slot_served;
    /* streams */
    http_stream *stream;
    uv_timer_t stream_timer;
    unsigned stream_closed; /* on_close calls */
    unsigned ticks_written;
    int overflow_r;
} fixture;

static const char file_data[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* ---- routes ---- */

static void on_hello(http_request *req, void *userdata)
{
    http_reply_buffer(req, 200, "text/plain", "hello\n", 6);
}

static void on_later_timer(uv_timer_t *t)
{
    fixture *f = t->data;
    http_reply_buffer(f->later_req, 200, "text/plain", "later\n", 6);
    f->later_req = NULL;
}

static void on_later(http_request *req, void *userdata)
{
    fixture *f = userdata;
    f->later_req = req;
    uv_timer_start(&f->later_timer, on_later_timer, 100, 0);
}

static void never_cancel(void *userdata)
{
    fixture *f = userdata;
    f->never_cancelled = true;
    f->never_req = NULL;
}

static void on_never(http_request *req, void *userdata)
{
    fixture *f = userdata;
    f->never_req = req;
    f->never_calls++;
    http_request_on_cancel(req, never_cancel, f);
}

static void on_file(http_request *req, void *userdata)
{
    fixture *f = userdata;
    const char *name = http_request_path(req) + strlen("/file/");
    if (!streq(name, "a:b")) {
        http_reply_error(req, 404, "no such file");
        return;
    }
    int fd = open(f->file_path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    http_reply_file(req, fd, sizeof(file_data) - 1, "\"v1\"", "application/octet-stream");
}

static void on_query(http_request *req, void *userdata)
{
    char buf[256];
    const char *x = http_request_query(req, "x");
    const char *h = http_request_header(req, "x-test");
    int n = snprintf(buf, sizeof(buf), "x=%s h=%s path=%s", x ? x : "-", h ? h : "-",
                     http_request_path(req));
    assert_int_equal(http_request_add_header(req, "Cache-Control", "no-store"), 0);
    assert_int_equal(http_request_add_header(req, "Bad:Name", "v"), -EINVAL);
    assert_int_equal(http_request_add_header(req, "X", "a\r\nb"), -EINVAL);
    http_reply_buffer(req, 200, "text/plain", buf, (size_t)n);
}

static void on_echo(http_request *req, void *userdata)
{
    size_t len;
    const uint8_t *body = http_request_body(req, &len);
    void *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, body ? (const void *)body : "", len);
    http_reply_owned(req, 201, "application/octet-stream", copy, len);
}

/* A stream that sends "first\n" at once and "second\n" from a timer, then
 * ends: the second piece wakes a connection parked for lack of data. */
static void on_stream_closed(void *userdata)
{
    fixture *f = userdata;
    f->stream_closed++;
    f->stream = NULL;
    uv_timer_stop(&f->stream_timer);
}

static void on_stream_later(uv_timer_t *t)
{
    fixture *f = t->data;
    assert_int_equal(http_stream_write(f->stream, "second\n", 7), 0);
    http_stream_end(f->stream);
    assert_int_equal(http_stream_write(f->stream, "late", 4), -EPIPE);
}

static void on_stream(http_request *req, void *userdata)
{
    fixture *f = userdata;
    f->stream = http_reply_stream(req, 200, "text/event-stream", on_stream_closed, f);
    assert_non_null(f->stream);
    assert_int_equal(http_stream_write(f->stream, "first\n", 6), 0);
    uv_timer_start(&f->stream_timer, on_stream_later, 50, 0);
}

/* Fills the stream's buffer before the client has taken anything. */
static void on_stream_full(http_request *req, void *userdata)
{
    fixture *f = userdata;
    f->stream = http_reply_stream(req, 200, "application/octet-stream", on_stream_closed, f);
    assert_non_null(f->stream);
    static char block[64 * 1024];
    memset(block, 'z', sizeof(block));
    for (size_t i = 0; i < HTTP_STREAM_MAX_BUFFERED / sizeof(block); i++) {
        assert_int_equal(http_stream_write(f->stream, block, sizeof(block)), 0);
    }
    f->overflow_r = http_stream_write(f->stream, "z", 1);
    http_stream_end(f->stream);
}

/* A stream that never ends: a tick every 20 ms until its client is gone. */
static void on_stream_tick(uv_timer_t *t)
{
    fixture *f = t->data;
    if (http_stream_write(f->stream, "tick\n", 5) == 0) {
        f->ticks_written++;
    }
}

static void on_stream_forever(http_request *req, void *userdata)
{
    fixture *f = userdata;
    f->stream = http_reply_stream(req, 200, "text/event-stream", on_stream_closed, f);
    assert_non_null(f->stream);
    uv_timer_start(&f->stream_timer, on_stream_tick, 20, 20);
}

/* ---- client thread ---- */

static char *exchange(uint16_t port, const char *request, fixture *f)
{
    int fd = loopback_dial(port);
    if (fd < 0) {
        return strdup("connect failed");
    }
    size_t len = strlen(request);
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, request + off, len - off);
        if (n <= 0) {
            break;
        }
        off += (size_t)n;
    }
    if (f->close_after_send) {
        usleep(100 * 1000);
        uv_async_send(&f->done);
    }
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (got + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = read(fd, buf + got, cap - got - 1);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    return buf;
}

static void *client_main(void *arg)
{
    fixture *f = arg;
    for (size_t i = 0; i < f->n_requests; i++) {
        f->responses[i] = exchange(f->port, f->requests[i], f);
    }
    if (!f->close_after_send) {
        uv_async_send(&f->done);
    }
    return NULL;
}

static void on_done(uv_async_t *a)
{
    fixture *f = a->data;
    if (f->hold) {
        f->client_finished = true;
        return;
    }
    http_server_close(f->srv);
    f->srv = NULL;
    uv_close((uv_handle_t *)&f->done, NULL);
    uv_close((uv_handle_t *)&f->later_timer, NULL);
    uv_close((uv_handle_t *)&f->stream_timer, NULL);
}

static int setup_with(void **state, unsigned header_timeout)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    /* as the agent does, so file bodies go out with sendfile(2) */
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    http_server_config cfg = { .listen = { .sin6_family = AF_INET6,
                                           .sin6_addr = IN6ADDR_LOOPBACK_INIT },
                               .max_header_size = 4096,
                               .max_body_size = 64,
                               .header_timeout = header_timeout };
    int r = http_server_new(&f->loop, &cfg, &f->srv);
    if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
        uv_loop_close(&f->loop);
        free(f);
        skip();
    }
    assert_int_equal(r, 0);
    f->port = http_server_port(f->srv);
    assert_true(f->port != 0);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "/hello", on_hello, f), 0);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "/later", on_later, f), 0);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "/never", on_never, f), 0);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "/file/", on_file, f), 0);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "/q/", on_query, f), 0);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_POST, "/echo", on_echo, f), 0);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "/stream", on_stream, f), 0);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "/full", on_stream_full, f), 0);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "/forever", on_stream_forever, f),
                     0);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "/hello", on_hello, f), -EEXIST);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "rel", on_hello, f), -EINVAL);
    assert_int_equal(http_server_route(f->srv, 0, "/x", on_hello, f), -EINVAL);
    uv_async_init(&f->loop, &f->done, on_done);
    f->done.data = f;
    uv_timer_init(&f->loop, &f->later_timer);
    f->later_timer.data = f;
    uv_timer_init(&f->loop, &f->stream_timer);
    f->stream_timer.data = f;
    snprintf(f->file_path, sizeof(f->file_path), "/tmp/test_http_server.XXXXXX");
    int fd = mkstemp(f->file_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, file_data, sizeof(file_data) - 1), sizeof(file_data) - 1);
    close(fd);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 0);
}

/* A deadline of 1 s for the request line and headers (idle timeout left at
 * its 30 s). */
static int setup_header_timeout(void **state)
{
    return setup_with(state, 1);
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (!f) {
        return 0;
    }
    if (f->srv) {
        http_server_close(f->srv);
        uv_close((uv_handle_t *)&f->done, NULL);
        uv_close((uv_handle_t *)&f->later_timer, NULL);
        uv_close((uv_handle_t *)&f->stream_timer, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
    }
    assert_int_equal(uv_loop_close(&f->loop), 0);
    unlink(f->file_path);
    for (size_t i = 0; i < MAX_JOBS; i++) {
        free(f->responses[i]);
    }
    free(f);
    return 0;
}

/* Runs the loop while the client thread sends f->requests, one connection
 * each; returns once every answer is in and the server is closed. */
static void run(fixture *f)
{
    assert_int_equal(pthread_create(&f->thread, NULL, client_main, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(f->thread, NULL);
}

static void add(fixture *f, const char *request)
{
    assert_true(f->n_requests < MAX_JOBS);
    f->requests[f->n_requests++] = request;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle)) {
        fail_msg("expected \"%s\" in:\n%s", needle, haystack);
    }
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

static void test_routing(void **state)
{
    fixture *f = *state;
    add(f, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f, "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f, "POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    add(f, "BREW /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f, "HEAD /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f, "GET /q/a%3Ab%20c?x=1%202&y HTTP/1.1\r\nHost: t\r\nX-Test: yes\r\n"
           "Connection: close\r\n\r\n");
    add(f, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
           "abcde");
    add(f, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65\r\nConnection: close\r\n\r\n");
    run(f);
    assert_status(f->responses[0], 200);
    assert_string_equal(body_of(f->responses[0]), "hello\n");
    assert_status(f->responses[1], 404);
    assert_status(f->responses[2], 405);
    assert_contains(f->responses[2], "Allow: GET, HEAD\r\n");
    assert_status(f->responses[3], 501);
    assert_status(f->responses[4], 200);
    assert_contains(f->responses[4], "Content-Length: 6\r\n");
    assert_string_equal(body_of(f->responses[4]), "");
    assert_status(f->responses[5], 200);
    assert_contains(f->responses[5], "Cache-Control: no-store\r\n");
    assert_string_equal(body_of(f->responses[5]), "x=1 2 h=yes path=/q/a:b c");
    assert_status(f->responses[6], 201);
    assert_string_equal(body_of(f->responses[6]), "abcde");
    assert_status(f->responses[7], 413);
}

static void test_pipelined_in_order(void **state)
{
    fixture *f = *state;
    /* The first answer comes 100 ms later from a timer, the second at once:
     * the second must still arrive after the first, on the same connection. */
    add(f, "GET /later HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /later HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    run(f);
    const char *r = f->responses[0];
    const char *a = strstr(r, "later\n");
    assert_non_null(a);
    const char *b = strstr(a, "hello\n");
    assert_non_null(b);
    assert_non_null(strstr(b, "later\n"));
    /* three status lines on one connection */
    const char *p = r;
    int n = 0;
    while ((p = strstr(p, "HTTP/1.1 200 OK\r\n"))) {
        n++;
        p++;
    }
    assert_int_equal(n, 3);
}

static void test_file_answers(void **state)
{
    fixture *f = *state;
    add(f, "GET /file/a:b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f,
        "GET /file/a%3Ab HTTP/1.1\r\nHost: t\r\nRange: bytes=10-15\r\nConnection: close\r\n\r\n");
    add(f, "GET /file/a%3ab HTTP/1.1\r\nHost: t\r\nRange: bytes=-4\r\nConnection: close\r\n\r\n");
    add(f, "GET /file/a:b HTTP/1.1\r\nHost: t\r\nRange: bytes=36-\r\nConnection: close\r\n\r\n");
    add(f, "GET /file/a:b HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"x\", W/\"v1\"\r\n"
           "Connection: close\r\n\r\n");
    add(f, "HEAD /file/a:b HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\nConnection: close\r\n\r\n");
    add(f, "GET /file/a:b HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\nIf-Range: \"v0\"\r\n"
           "Connection: close\r\n\r\n");
    add(f,
        "GET /file/a:b HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1,3-4\r\nConnection: close\r\n\r\n");
    run(f);
    assert_status(f->responses[0], 200);
    assert_contains(f->responses[0], "Accept-Ranges: bytes\r\n");
    assert_contains(f->responses[0], "ETag: \"v1\"\r\n");
    assert_contains(f->responses[0], "Content-Type: application/octet-stream\r\n");
    assert_string_equal(body_of(f->responses[0]), file_data);
    assert_status(f->responses[1], 206);
    assert_contains(f->responses[1], "Content-Range: bytes 10-15/36\r\n");
    assert_contains(f->responses[1], "Content-Length: 6\r\n");
    assert_string_equal(body_of(f->responses[1]), "abcdef");
    assert_status(f->responses[2], 206);
    assert_string_equal(body_of(f->responses[2]), "wxyz");
    assert_status(f->responses[3], 416);
    assert_contains(f->responses[3], "Content-Range: bytes */36\r\n");
    assert_status(f->responses[4], 304);
    assert_contains(f->responses[4], "ETag: \"v1\"\r\n");
    assert_string_equal(body_of(f->responses[4]), "");
    /* HEAD ignores Range (RFC 9110 §14.2): the whole length, no body */
    assert_status(f->responses[5], 200);
    assert_contains(f->responses[5], "Content-Length: 36\r\n");
    assert_string_equal(body_of(f->responses[5]), "");
    /* If-Range with another tag: the whole entity */
    assert_status(f->responses[6], 200);
    assert_string_equal(body_of(f->responses[6]), file_data);
    assert_status(f->responses[7], 200);
    assert_string_equal(body_of(f->responses[7]), file_data);
}

static void test_paths_refused(void **state)
{
    fixture *f = *state;
    add(f, "GET /file/../x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f, "GET /file/%2e%2e/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f, "GET /file/./a:b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f, "GET /file/a%00b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f, "GET /file/a%zzb HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f, "GET /file/a% HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f, "GET http://t/file/a:b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f, "GET /file/..%2fx HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    run(f);
    assert_status(f->responses[0], 403);
    assert_status(f->responses[1], 403);
    assert_status(f->responses[2], 403);
    assert_status(f->responses[3], 400);
    assert_status(f->responses[4], 400);
    assert_status(f->responses[5], 400);
    assert_status(f->responses[6], 200); /* absolute-form, RFC 9112 §3.2.2 */
    assert_status(f->responses[7], 403); /* an encoded '/' still makes a segment */
}

static char big_request[8192];

static void test_limits(void **state)
{
    fixture *f = *state;
    /* headers past max_header_size (4096) */
    int n = snprintf(big_request, sizeof(big_request),
                     "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Big: ");
    memset(big_request + n, 'a', 6000);
    memcpy(big_request + n + 6000, "\r\n\r\n", 5);
    add(f, big_request);
    add(f, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    run(f);
    assert_true(strncmp(f->responses[0], "HTTP/1.1 431 ", 13) == 0 ||
                strncmp(f->responses[0], "HTTP/1.1 413 ", 13) == 0);
    assert_status(f->responses[1], 200);
}

static void test_metrics_and_stats(void **state)
{
    fixture *f = *state;
    metrics *m = NULL;
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(http_server_register_metrics(f->srv, m), 0);
    const http_server_stats *st = http_server_get_stats(f->srv);
    add(f, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n"
           "Connection: close\r\n\r\n");
    add(f, "GET /file/a:b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    /* Turn the loop until both answers are in and the connections closed,
     * then read the counters while the server still exists. */
    f->hold = true;
    assert_int_equal(pthread_create(&f->thread, NULL, client_main, f), 0);
    while (!f->client_finished || st->connections_active > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(st->requests[2], 2);
    assert_int_equal(st->requests[4], 1);
    assert_int_equal(st->response_bytes, 6 + strlen("not found\n") + 36);
    assert_int_equal(st->connections_total, 2);
    assert_int_equal(st->connections_active, 0);
    char *text = NULL;
    size_t len;
    assert_int_equal(metrics_render(m, &text, &len), 0);
    assert_non_null(strstr(text, "\nrackboot_http_requests_total{class=\"2xx\"} 2\n"));
    assert_non_null(strstr(text, "\nrackboot_http_requests_total{class=\"4xx\"} 1\n"));
    assert_non_null(strstr(text, "# TYPE rackboot_http_connections_active gauge\n"));
    free(text);
    pthread_join(f->thread, NULL);
    f->hold = false;
    on_done(&f->done);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    metrics_free(m);
}

/* ---- limits against slow and greedy clients (issue #10) ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(uint16_t port)
{
    int fd = loopback_dial(port);
    assert_true(fd >= 0);
    return fd;
}

/* True when the server closed `fd` within `ms` (EOF or reset), with
 * nothing sent first. */
static bool closed_within(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, ms) <= 0) {
        return false;
    }
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static char *get_on(int fd, const char *request)
{
    size_t len = strlen(request);
    char *buf = calloc(1, 4096);
    if (send(fd, request, len, MSG_NOSIGNAL) != (ssize_t)len) {
        return buf; /* closed already: no answer */
    }
    /* one small answer: read until its body ("hello\n") is in */
    size_t got = 0;
    while (got < 4095 && !strstr(buf, "\r\n\r\nhello\n")) {
        ssize_t n = recv(fd, buf + got, 4095 - got, 0);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    return buf;
}

static void *drip_client(void *arg)
{
    fixture *f = arg;
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: yes\r\n\r\n";
    int slow = connect_to(f->port);
    double start = now_s();
    f->drip_closed_after = -1;
    /* One byte every 250 ms, each well inside the 30 s idle timeout: the
     * whole head would take 12 s. */
    for (size_t i = 0; i < sizeof(req) - 1; i++) {
        if (send(slow, req + i, 1, MSG_NOSIGNAL) != 1) {
            f->drip_closed_after = now_s() - start;
            break;
        }
        f->drip_sent = i + 1;
        if (i == 2) {
            /* A normal client meanwhile is served at once. */
            int fast = connect_to(f->port);
            f->during_drip = get_on(fast, "GET /hello HTTP/1.1\r\nHost: t\r\n"
                                          "Connection: close\r\n\r\n");
            close(fast);
        }
        if (closed_within(slow, 250)) {
            f->drip_closed_after = now_s() - start;
            break;
        }
    }
    close(slow);
    /* A kept-alive connection waiting for its next request is held to the
     * same deadline, counted from its last answer. */
    int keep = connect_to(f->port);
    f->kept_alive = get_on(keep, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    start = now_s();
    f->kept_alive_closed_after = closed_within(keep, 8000) ? now_s() - start : -1;
    close(keep);
    uv_async_send(&f->done);
    return NULL;
}

/* Runs `fn` as the client while the loop turns; the server stays open
 * afterwards so its counters can be read. */
static void run_client(fixture *f, void *(*fn)(void *))
{
    f->hold = true;
    assert_int_equal(pthread_create(&f->thread, NULL, fn, f), 0);
    while (!f->client_finished) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    pthread_join(f->thread, NULL);
}

static void test_header_deadline(void **state)
{
    fixture *f = *state;
    run_client(f, drip_client);
    /* The drip-feeder is cut off after the 1 s deadline (generous upper
     * bound for a busy machine), long before its head would be complete. */
    if (f->drip_closed_after < 0) {
        fail_msg("drip-feeding client never closed (%zu bytes sent)", f->drip_sent);
    }
    assert_true(f->drip_closed_after >= 0.9);
    assert_true(f->drip_closed_after < 6.0);
    assert_non_null(f->during_drip);
    assert_status(f->during_drip, 200);
    assert_string_equal(body_of(f->during_drip), "hello\n");
    assert_status(f->kept_alive, 200);
    assert_true(f->kept_alive_closed_after >= 0.9 && f->kept_alive_closed_after < 6.0);
    const http_server_stats *st = http_server_get_stats(f->srv);
    assert_int_equal(st->header_timeouts, 2);
    metrics *m = NULL;
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(http_server_register_metrics(f->srv, m), 0);
    char *text = NULL;
    size_t len;
    assert_int_equal(metrics_render(m, &text, &len), 0);
    assert_non_null(strstr(text, "\nrackboot_http_header_timeouts_total 2\n"));
    free(text);
    metrics_free(m);
    free(f->during_drip);
    free(f->kept_alive);
    f->hold = false;
    on_done(&f->done);
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static void *greedy_client(void *arg)
{
    fixture *f = arg;
    enum { N = HTTP_DEFAULT_MAX_CONNECTIONS_PER_IP };
    int held[N];
    for (int i = 0; i < N; i++) {
        held[i] = connect_to(f->port);
    }
    /* The server takes connections from its backlog in order: this one
     * comes after the N others, all from ::1. */
    int over = connect_to(f->port);
    char *r = get_on(over, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    f->over_limit_answered = r[0] != '\0';
    free(r);
    close(over);
    /* One goes: a new connection is served (retried while the server has
     * not noticed yet). */
    close(held[0]);
    for (int tries = 0; tries < 100 && !f->freed_slot_served; tries++) {
        int fd = connect_to(f->port);
        r = get_on(fd, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        f->freed_slot_served = strncmp(r, "HTTP/1.1 200 ", 13) == 0;
        free(r);
        close(fd);
        if (!f->freed_slot_served) {
            usleep(20 * 1000);
        }
    }
    for (int i = 1; i < N; i++) {
        close(held[i]);
    }
    uv_async_send(&f->done);
    return NULL;
}

static void test_per_ip_limit_by_default(void **state)
{
    /* setup() leaves max_connections_per_ip unset. */
    fixture *f = *state;
    run_client(f, greedy_client);
    assert_false(f->over_limit_answered);
    assert_true(f->freed_slot_served);
    f->hold = false;
    on_done(&f->done);
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* ---- a long transfer does not take the loop ---- */

#define BIG_SIZE (512ull * 1024 * 1024) /* sparse: sendfile reads holes fast */

typedef struct ticker {
    uv_timer_t t;
    bool counting;
    uint64_t ticks;
} ticker;

static void on_tick(uv_timer_t *t)
{
    ticker *k = t->data;
    if (k->counting) {
        k->ticks++;
    }
}

static void *big_fixture;

static void on_big(http_request *req, void *userdata)
{
    fixture *f = userdata;
    int fd = open(f->file_path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    http_reply_file(req, fd, BIG_SIZE, "\"big\"", "application/octet-stream");
}

#define BIG_CLIENTS 4

static uint64_t big_received[BIG_CLIENTS];
static double big_seconds;

static void *big_one(void *arg)
{
    uint64_t *received = arg;
    fixture *f = (fixture *)big_fixture;
    int fd = connect_to(f->port);
    const char *req = "GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req)) {
        char *buf = malloc(1 << 20);
        ssize_t n;
        while (buf && (n = recv(fd, buf, 1 << 20, 0)) > 0) {
            *received += (uint64_t)n;
        }
        free(buf);
    }
    close(fd);
    return NULL;
}

/* Several clients at once, as in a boot storm: libmicrohttpd then has
 * sendfile work left over after most passes. */
static void *big_client(void *arg)
{
    fixture *f = arg;
    pthread_t t[BIG_CLIENTS];
    double t0 = now_s();
    for (size_t i = 0; i < BIG_CLIENTS; i++) {
        pthread_create(&t[i], NULL, big_one, &big_received[i]);
    }
    for (size_t i = 0; i < BIG_CLIENTS; i++) {
        pthread_join(t[i], NULL);
    }
    big_seconds = now_s() - t0;
    uv_async_send(&f->done);
    return NULL;
}

/* While a client takes a large file as fast as loopback goes, the loop
 * still runs its other handles: a 10 ms timer keeps ticking. (Re-arming a
 * 0 ms timer from its own callback, as the server once did while
 * libmicrohttpd had work left, spins libuv 1.44 on HTTP alone with its
 * clock frozen: no tick at all until the transfer ends.) */
static void test_transfer_leaves_loop_running(void **state)
{
    fixture *f = *state;
    assert_int_equal(truncate(f->file_path, (off_t)BIG_SIZE), 0);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "/big", on_big, f), 0);
    big_fixture = f;
    ticker k = { .counting = true };
    uv_timer_init(&f->loop, &k.t);
    k.t.data = &k;
    uv_timer_start(&k.t, on_tick, 10, 10);
    run_client(f, big_client);
    k.counting = false;
    uv_close((uv_handle_t *)&k.t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < BIG_CLIENTS; i++) {
        assert_true(big_received[i] > BIG_SIZE); /* headers + body */
    }
    double expected = big_seconds * 100.0;
    print_message("%d x 512 MiB in %.2f s, %llu ticks of 10 ms (%.0f expected)\n", BIG_CLIENTS,
                  big_seconds, (unsigned long long)k.ticks, expected);
    /* Generous for a busy machine: a tenth of the ticks, once the
     * transfer lasted long enough to tell. */
    if (big_seconds >= 0.2) {
        assert_true((double)k.ticks >= expected / 10);
    }
}

static void test_close_cancels_pending(void **state)
{
    fixture *f = *state;
    f->close_after_send = true;
    add(f, "GET /never HTTP/1.1\r\nHost: t\r\n\r\n");
    run(f);
    assert_true(f->never_cancelled);
    assert_status(f->responses[0], 503);
}

/* A kept-alive client's next request, read while the server closes, is
 * answered 503 at once: handed to a handler it could be suspended, and
 * libmicrohttpd cannot stop with a suspended connection. */
static void test_close_answers_late_requests(void **state)
{
    fixture *f = *state;
    f->close_after_send = true;
    add(f, "GET /never HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /never HTTP/1.1\r\nHost: t\r\n\r\n");
    run(f);
    assert_true(f->never_cancelled);
    assert_int_equal(f->never_calls, 1);
    assert_status(f->responses[0], 503);
}

/* The chunked body of `response` joined, or NULL when it is not chunked
 * or not ended by the last chunk. */
static char *dechunk(const char *response)
{
    if (!strstr(response, "Transfer-Encoding: chunked\r\n")) {
        return NULL;
    }
    const char *p = body_of(response);
    char *out = calloc(1, strlen(p) + 1);
    size_t o = 0;
    for (;;) {
        char *end;
        unsigned long n = strtoul(p, &end, 16);
        if (end == p || strncmp(end, "\r\n", 2) != 0) {
            free(out);
            return NULL;
        }
        p = end + 2;
        if (n == 0) {
            return out;
        }
        if (strlen(p) < n + 2) {
            free(out);
            return NULL;
        }
        memcpy(out + o, p, n);
        o += n;
        p += n + 2;
    }
}

/* Written pieces arrive in order, the second after a pause with nothing
 * to send, and the end closes the chunked body; on_close runs once. */
static void test_stream(void **state)
{
    fixture *f = *state;
    add(f, "GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    add(f, "HEAD /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    run(f);
    assert_status(f->responses[0], 200);
    assert_contains(f->responses[0], "Content-Type: text/event-stream\r\n");
    char *body = dechunk(f->responses[0]);
    if (!body) {
        fail_msg("not a complete chunked body:\n%s", f->responses[0]);
    }
    assert_string_equal(body, "first\nsecond\n");
    free(body);
    assert_status(f->responses[1], 200);
    assert_string_equal(body_of(f->responses[1]), "");
    assert_int_equal(f->stream_closed, 2);
}

/* The buffer takes HTTP_STREAM_MAX_BUFFERED bytes and refuses more; all
 * of it reaches the client. */
static void test_stream_buffer_bound(void **state)
{
    fixture *f = *state;
    add(f, "GET /full HTTP/1.0\r\n\r\n");
    run(f);
    assert_int_equal(f->overflow_r, -ENOBUFS);
    assert_status(f->responses[0], 200);
    /* HTTP/1.0: not chunked, the end of the connection ends the body. */
    assert_int_equal(strlen(body_of(f->responses[0])), HTTP_STREAM_MAX_BUFFERED);
    assert_int_equal(f->stream_closed, 1);
}

static void *gone_client(void *arg)
{
    fixture *f = arg;
    int fd = loopback_dial(f->port);
    const char req[] = "GET /forever HTTP/1.1\r\nHost: t\r\n\r\n";
    char buf[4096];
    size_t got = 0;
    if (fd >= 0 && write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1)) {
        while (got + 1 < sizeof(buf)) {
            ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
            if (n <= 0) {
                break;
            }
            got += (size_t)n;
            buf[got] = '\0';
            if (strstr(buf, "tick\n")) {
                break;
            }
        }
    }
    buf[got] = '\0';
    f->responses[0] = strdup(buf);
    if (fd >= 0) {
        close(fd);
    }
    uv_async_send(&f->done);
    return NULL;
}

/* A client that goes away is noticed at the next write: on_close runs and
 * the writes stop. */
static void test_stream_client_gone(void **state)
{
    fixture *f = *state;
    run_client(f, gone_client);
    assert_contains(f->responses[0], "tick\n");
    while (f->stream_closed == 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(f->stream_closed, 1);
    assert_null(f->stream);
    assert_true(f->ticks_written >= 1);
}

/* Closing the server ends open streams: on_close runs from inside
 * http_server_close(). */
static void test_stream_server_close(void **state)
{
    fixture *f = *state;
    f->close_after_send = true;
    add(f, "GET /forever HTTP/1.1\r\nHost: t\r\n\r\n");
    run(f);
    assert_status(f->responses[0], 200);
    assert_int_equal(f->stream_closed, 1);
}

/* A request already waiting when the socket opens is answered by the routes
 * registered after http_server_new(), not with a 404: an agent restarted
 * under its hosts' retries registers /progress/ only after the server
 * exists (faults.agent_kill once failed a host this way). */
static void test_request_waiting_before_routes(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    http_server_config cfg = { .listen = { .sin6_family = AF_INET6,
                                           .sin6_addr = IN6ADDR_LOOPBACK_INIT } };
    http_server *srv = NULL;
    listen_hook_request = "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    int r = http_server_new(&loop, &cfg, &srv);
    listen_hook_request = NULL;
    int client = listen_hook_client;
    listen_hook_client = -1;
    if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
        uv_loop_close(&loop);
        skip();
    }
    assert_int_equal(r, 0);
    assert_true(client >= 0);
    assert_int_equal(http_server_route(srv, HTTP_METHOD_GET, "/hello", on_hello, NULL), 0);
    char response[1024];
    size_t got = 0;
    bool eof = false;
    /* The loop and the client share this thread: each pass runs the loop
     * once, then reads what the server sent (up to 10 s in all). */
    for (int pass = 0; pass < 1000 && !eof; pass++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        struct pollfd p = { .fd = client, .events = POLLIN };
        if (poll(&p, 1, 10) <= 0) {
            continue;
        }
        ssize_t n = recv(client, response + got, sizeof(response) - 1 - got, 0);
        assert_true(n >= 0);
        got += (size_t)n;
        eof = n == 0 || got == sizeof(response) - 1;
    }
    response[got] = '\0';
    close(client);
    assert_true(eof);
    assert_status(response, 200);
    assert_string_equal(body_of(response), "hello\n");
    http_server_close(srv);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paths_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_and_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_answers_late_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_deadline, setup_header_timeout, teardown),
        cmocka_unit_test_setup_teardown(test_per_ip_limit_by_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_leaves_loop_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_buffer_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_client_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_server_close, setup, teardown),
        cmocka_unit_test(test_request_waiting_before_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
