/* rack-agent/tftp/server: the sockets on a libuv loop over ::1, without
 * root or namespaces (the integration tests cover real clients): a whole
 * transfer, refusals with their error codes, the busy limit, the limit per
 * source address, a silent client's slot freed in time, ERROR 5 to a
 * stranger, stats and a clean close. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "files/files-internal.h"
#include "tftp/server.h"
#include "tftp/wire.h"

typedef struct fixture {
    uv_loop_t loop;
    files *files;
    tftp_server *server;
    char root[64];
    struct sockaddr_in6 addr;
} fixture;

static void put(const char *dir, const char *name, size_t size)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "we");
    assert_non_null(f);
    for (size_t i = 0; i < size; i++) {
        fputc((int)(i % 253), f);
    }
    fclose(f);
}

static int setup_cfg(void **state, unsigned max_transfers, uint32_t timeout_ms)
{
    fixture *fx = calloc(1, sizeof(*fx));
    strcpy(fx->root, "/tmp/test_tftp_server.XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    put(fx->root, "small.bin", 1300);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(files_new(fx->root, &fx->files), 0);
    tftp_server_config c = { .listen = { .sin6_family = AF_INET6, .sin6_addr = in6addr_loopback },
                             .max_transfers = max_transfers,
                             .max_blksize = 1428,
                             .max_windowsize = 64,
                             .timeout_ms = timeout_ms,
                             .max_timeout_ms = timeout_ms,
                             .retries = 1 };
    int r = tftp_server_open(&fx->loop, &c, fx->files, &fx->server);
    if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
        skip();
    }
    assert_int_equal(r, 0);
    fx->addr = c.listen;
    fx->addr.sin6_port = htons(tftp_server_port(fx->server));
    *state = fx;
    return 0;
}

static int setup_with(void **state, unsigned max_transfers)
{
    return setup_cfg(state, max_transfers, 5000);
}

static int setup(void **state)
{
    return setup_with(state, 4);
}

static int setup_one(void **state)
{
    return setup_with(state, 1);
}

/* Room for more transfers than one source may have. */
static int setup_many(void **state)
{
    return setup_with(state, 4 * TFTP_DEFAULT_MAX_TRANSFERS_PER_SOURCE);
}

/* 100 ms timeouts, one retry: an unanswered window lives 200 ms. */
static int setup_fast(void **state)
{
    return setup_cfg(state, 4, 100);
}

static int teardown(void **state)
{
    fixture *fx = *state;
    tftp_server_close(fx->server);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    files_free(fx->files);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->root);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static int client(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = in6addr_loopback };
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Runs the loop until a datagram arrives at fd (at most ~2 s). */
static ssize_t wait_recv(fixture *fx, int fd, uint8_t *buf, size_t cap, struct sockaddr_in6 *from)
{
    for (int i = 0; i < 2000; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        socklen_t fl = sizeof(*from);
        ssize_t n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)from, &fl);
        if (n >= 0) {
            return n;
        }
        usleep(1000);
    }
    return -1;
}

static void send_request(fixture *fx, int fd, uint16_t op, const char *name, const char *mode,
                         const char *const *opts, size_t n_opts)
{
    uint8_t buf[512];
    int n = tftp_build_request(op, name, mode, opts, n_opts, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&fx->addr, sizeof(fx->addr)),
                     n);
}

static void send_ack(int fd, const struct sockaddr_in6 *to, uint16_t block)
{
    uint8_t b[4];
    tftp_build_ack(block, b, sizeof(b));
    assert_int_equal(sendto(fd, b, 4, 0, (const struct sockaddr *)to, sizeof(*to)), 4);
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void expect_error(fixture *fx, int fd, uint16_t code)
{
    uint8_t buf[600];
    struct sockaddr_in6 from;
    ssize_t n = wait_recv(fx, fd, buf, sizeof(buf), &from);
    assert_true(n >= 4);
    assert_int_equal(be16(buf), TFTP_ERROR);
    assert_int_equal(be16(buf + 2), code);
}

static void test_whole_transfer(void **state)
{
    fixture *fx = *state;
    int fd = client();
    const char *opts[] = { "blksize", "1000", "tsize", "0" };
    send_request(fx, fd, TFTP_RRQ, "small.bin", "octet", opts, 2);
    uint8_t buf[2000];
    struct sockaddr_in6 peer;
    ssize_t n = wait_recv(fx, fd, buf, sizeof(buf), &peer);
    assert_true(n > 2);
    assert_int_equal(be16(buf), TFTP_OACK);
    static const uint8_t oack[] = "\x00\x06"
                                  "blksize\0"
                                  "1000\0"
                                  "tsize\0"
                                  "1300";
    assert_int_equal(n, sizeof(oack));
    assert_memory_equal(buf, oack, sizeof(oack));
    /* A new TID, from the address we asked. */
    assert_int_not_equal(peer.sin6_port, fx->addr.sin6_port);
    assert_memory_equal(&peer.sin6_addr, &in6addr_loopback, 16);
    send_ack(fd, &peer, 0);
    size_t got = 0;
    for (uint16_t block = 1;; block++) {
        struct sockaddr_in6 from;
        n = wait_recv(fx, fd, buf, sizeof(buf), &from);
        assert_true(n >= 4);
        assert_int_equal(be16(buf), TFTP_DATA);
        assert_int_equal(be16(buf + 2), block);
        assert_int_equal(from.sin6_port, peer.sin6_port);
        for (ssize_t i = 4; i < n; i++) {
            assert_int_equal(buf[i], (got + (size_t)(i - 4)) % 253);
        }
        got += (size_t)(n - 4);
        send_ack(fd, &peer, block);
        if (n - 4 < 1000) {
            break;
        }
    }
    assert_int_equal(got, 1300);
    const tftp_server_stats *st = tftp_server_get_stats(fx->server);
    for (int i = 0; i < 200 && st->transfers_ok == 0; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(st->transfers_ok, 1);
    assert_int_equal(st->bytes_sent, 1300);
    assert_int_equal(st->active, 0);
    close(fd);
}

static void test_refusals(void **state)
{
    fixture *fx = *state;
    int fd = client();
    send_request(fx, fd, TFTP_RRQ, "missing", "octet", NULL, 0);
    expect_error(fx, fd, TFTP_ERR_NOT_FOUND);
    send_request(fx, fd, TFTP_RRQ, "../etc/passwd", "octet", NULL, 0);
    expect_error(fx, fd, TFTP_ERR_ACCESS);
    send_request(fx, fd, TFTP_RRQ, "/etc/passwd", "octet", NULL, 0);
    expect_error(fx, fd, TFTP_ERR_ACCESS);
    send_request(fx, fd, TFTP_WRQ, "small.bin", "octet", NULL, 0);
    expect_error(fx, fd, TFTP_ERR_ACCESS);
    send_request(fx, fd, TFTP_RRQ, "small.bin", "netascii", NULL, 0);
    expect_error(fx, fd, TFTP_ERR_ILLEGAL_OP);
    send_request(fx, fd, TFTP_RRQ, "small.bin", "mail", NULL, 0);
    expect_error(fx, fd, TFTP_ERR_ILLEGAL_OP);
    /* A request without its mode's NUL. */
    static const uint8_t broken[] = { 0, 1, 'x', 0, 'o', 'c', 't' };
    assert_int_equal(
        sendto(fd, broken, sizeof(broken), 0, (struct sockaddr *)&fx->addr, sizeof(fx->addr)),
        sizeof(broken));
    expect_error(fx, fd, TFTP_ERR_ILLEGAL_OP);
    /* A stray ACK to port 69 is counted, not answered. */
    send_ack(fd, &fx->addr, 1);
    uint8_t buf[600];
    struct sockaddr_in6 from;
    for (int i = 0; i < 50; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    socklen_t fl = sizeof(from);
    assert_true(recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl) < 0);
    const tftp_server_stats *st = tftp_server_get_stats(fx->server);
    assert_int_equal(st->refused, 6);
    assert_int_equal(st->malformed, 2);
    assert_int_equal(st->errors_sent, 7);
    close(fd);
}

static void test_busy_and_unknown_tid(void **state)
{
    fixture *fx = *state;
    int a = client(), b = client();
    send_request(fx, a, TFTP_RRQ, "small.bin", "octet", NULL, 0);
    uint8_t buf[600];
    struct sockaddr_in6 peer;
    ssize_t n = wait_recv(fx, a, buf, sizeof(buf), &peer);
    assert_true(n == 4 + 512);
    assert_int_equal(be16(buf), TFTP_DATA);
    /* max_transfers = 1: the next request is refused. */
    send_request(fx, b, TFTP_RRQ, "small.bin", "octet", NULL, 0);
    expect_error(fx, b, TFTP_ERR_UNDEFINED);
    assert_int_equal(tftp_server_get_stats(fx->server)->busy, 1);
    /* b is a stranger to a's transfer: ERROR 5 from the transfer's port. */
    send_ack(b, &peer, 1);
    struct sockaddr_in6 from;
    n = wait_recv(fx, b, buf, sizeof(buf), &from);
    assert_true(n >= 4);
    assert_int_equal(be16(buf), TFTP_ERROR);
    assert_int_equal(be16(buf + 2), TFTP_ERR_UNKNOWN_TID);
    assert_int_equal(from.sin6_port, peer.sin6_port);
    /* a's transfer goes on. */
    send_ack(a, &peer, 1);
    n = wait_recv(fx, a, buf, sizeof(buf), &from);
    assert_true(n >= 4);
    assert_int_equal(be16(buf), TFTP_DATA);
    assert_int_equal(be16(buf + 2), 2);
    /* The client gives up: counted as a failure once data flowed. */
    uint8_t e[32];
    int len = tftp_build_error(0, "bye", e, sizeof(e));
    sendto(a, e, (size_t)len, 0, (struct sockaddr *)&peer, sizeof(peer));
    const tftp_server_stats *st = tftp_server_get_stats(fx->server);
    for (int i = 0; i < 200 && st->active > 0; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(st->active, 0);
    assert_int_equal(st->transfers_failed, 1);
    assert_int_equal(st->unknown_tid, 1);
    close(a);
    close(b);
}

/* Runs the loop until no transfer is open, for at most ~`ms`. */
static void wait_idle(fixture *fx, int ms)
{
    const tftp_server_stats *st = tftp_server_get_stats(fx->server);
    for (int i = 0; i < ms && st->active > 0; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static void test_per_source_limit(void **state)
{
    /* Without configuring it: the default holds. Every client here is ::1,
     * on ports of its own. */
    fixture *fx = *state;
    enum { N = TFTP_DEFAULT_MAX_TRANSFERS_PER_SOURCE };
    int held[N];
    struct sockaddr_in6 peer[N];
    uint8_t buf[600];
    for (int i = 0; i < N; i++) {
        held[i] = client();
        send_request(fx, held[i], TFTP_RRQ, "small.bin", "octet", NULL, 0);
        ssize_t n = wait_recv(fx, held[i], buf, sizeof(buf), &peer[i]);
        assert_int_equal(n, 4 + 512);
        assert_int_equal(be16(buf), TFTP_DATA);
    }
    /* One more from the same address: refused, though slots are free. */
    int extra = client();
    send_request(fx, extra, TFTP_RRQ, "small.bin", "octet", NULL, 0);
    expect_error(fx, extra, TFTP_ERR_UNDEFINED);
    const tftp_server_stats *st = tftp_server_get_stats(fx->server);
    assert_int_equal(st->per_source, 1);
    assert_int_equal(st->busy, 0);
    assert_int_equal(st->active, N);
    /* One of them ends: the address may start another. */
    uint8_t e[32];
    int len = tftp_build_error(0, "bye", e, sizeof(e));
    sendto(held[0], e, (size_t)len, 0, (struct sockaddr *)&peer[0], sizeof(peer[0]));
    for (int i = 0; i < 2000 && st->active == N; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(st->active, N - 1);
    send_request(fx, extra, TFTP_RRQ, "small.bin", "octet", NULL, 0);
    struct sockaddr_in6 from;
    assert_int_equal(wait_recv(fx, extra, buf, sizeof(buf), &from), 4 + 512);
    assert_int_equal(be16(buf), TFTP_DATA);
    assert_int_equal(st->per_source, 1);
    for (int i = 0; i < N; i++) {
        close(held[i]);
    }
    close(extra);
}

static void test_silent_client_slot_freed(void **state)
{
    /* timeout=255 and a big window, then silence: the slot must come back
     * after the server's own 100 + 100 ms, not after 2 x 255 s. */
    fixture *fx = *state;
    int fd = client();
    const char *opts[] = { "timeout", "255", "blksize", "1428", "windowsize", "64" };
    send_request(fx, fd, TFTP_RRQ, "small.bin", "octet", opts, 3);
    uint8_t buf[600];
    struct sockaddr_in6 peer;
    assert_true(wait_recv(fx, fd, buf, sizeof(buf), &peer) > 2);
    assert_int_equal(be16(buf), TFTP_OACK);
    const tftp_server_stats *st = tftp_server_get_stats(fx->server);
    assert_int_equal(st->active, 1);
    /* Generous: the limit is 200 ms, a busy CI machine may be slow. */
    wait_idle(fx, 5000);
    assert_int_equal(st->active, 0);
    assert_int_equal(st->transfers_failed, 1);
    close(fd);
}

static void test_close_with_transfer_open(void **state)
{
    fixture *fx = *state;
    int fd = client();
    send_request(fx, fd, TFTP_RRQ, "small.bin", "octet", NULL, 0);
    uint8_t buf[600];
    struct sockaddr_in6 peer;
    assert_true(wait_recv(fx, fd, buf, sizeof(buf), &peer) > 0);
    assert_int_equal(tftp_server_get_stats(fx->server)->active, 1);
    /* teardown closes the server with the transfer still open: the loop
     * must end and nothing may leak (ASan checks). */
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_whole_transfer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_and_unknown_tid, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_per_source_limit, setup_many, teardown),
        cmocka_unit_test_setup_teardown(test_silent_client_slot_freed, setup_fast, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_transfer_open, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
