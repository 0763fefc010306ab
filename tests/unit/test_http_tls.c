/* http/server with TLS (http_server_config.tls_cert_pem/tls_key_pem): a
 * self-signed P-256 certificate made here, the server on a loopback socket,
 * and an OpenSSL client thread that verifies the certificate and checks
 * every byte of the answers, plain and streamed. Apart from
 * test_http_server.c because it needs a certificate and a TLS client. */
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
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
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "http/server.h"
#include "loopback_client.h"
#include "util.h"

typedef struct fixture {
    uv_loop_t loop;
    http_server *srv;
    uv_async_t done;
    uint16_t port;
    char *cert_pem, *key_pem;
    X509 *cert;
    /* client results */
    char *hello, *stream, *plain;
    bool handshake_ok;
    unsigned stream_closed;
} fixture;

static char *bio_text(BIO *b)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = malloc((size_t)n + 1);
    assert_non_null(out);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    return out;
}

/* A self-signed certificate for "localhost", valid for a day. */
static void make_cert(fixture *f)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    BIO *cb = BIO_new(BIO_s_mem());
    BIO *kb = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_X509(cb, x) == 1);
    assert_true(PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) == 1);
    f->cert_pem = bio_text(cb);
    f->key_pem = bio_text(kb);
    BIO_free(cb);
    BIO_free(kb);
    EVP_PKEY_free(key);
    f->cert = x;
}

/* ---- routes ---- */

static void on_hello(http_request *req, void *userdata)
{
    http_reply_buffer(req, 200, "text/plain", "hello\n", 6);
}

static void on_stream_closed(void *userdata)
{
    fixture *f = userdata;
    f->stream_closed++;
}

static void on_stream(http_request *req, void *userdata)
{
    fixture *f = userdata;
    http_stream *s = http_reply_stream(req, 200, "text/event-stream", on_stream_closed, f);
    assert_non_null(s);
    assert_int_equal(http_stream_write(s, "data: one\n\n", 11), 0);
    http_stream_end(s);
}

/* ---- client ---- */

/* One request over TLS, verifying the server's certificate as a browser
 * would (trusted, named localhost); NULL when the handshake fails. */
static char *tls_exchange(fixture *f, const char *request)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), f->cert);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set1_host(ssl, "localhost");
    SSL_set_tlsext_host_name(ssl, "localhost");
    int fd = loopback_dial(f->port);
    char *out = NULL;
    if (fd >= 0 && SSL_set_fd(ssl, fd) == 1 && SSL_connect(ssl) == 1) {
        f->handshake_ok = true;
        SSL_write(ssl, request, (int)strlen(request));
        size_t cap = 4096, got = 0;
        out = malloc(cap);
        for (;;) {
            if (got + 1 == cap) {
                cap *= 2;
                out = realloc(out, cap);
            }
            int n = SSL_read(ssl, out + got, (int)(cap - got - 1));
            if (n <= 0) {
                break;
            }
            got += (size_t)n;
        }
        out[got] = '\0';
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0) {
        close(fd);
    }
    return out;
}

/* Plain HTTP to the TLS port. */
static char *plain_exchange(fixture *f)
{
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    int fd = loopback_dial(f->port);
    if (fd < 0) {
        return strdup("connect failed");
    }
    char buf[1024];
    size_t got = 0;
    if (write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1)) {
        ssize_t n;
        while (got + 1 < sizeof(buf) && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0) {
            got += (size_t)n;
        }
    }
    buf[got] = '\0';
    close(fd);
    return strdup(buf);
}

static void *client_main(void *arg)
{
    fixture *f = arg;
    f->hello = tls_exchange(f, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    f->stream = tls_exchange(f, "GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    f->plain = plain_exchange(f);
    uv_async_send(&f->done);
    return NULL;
}

static void on_done(uv_async_t *a)
{
    fixture *f = a->data;
    http_server_close(f->srv);
    f->srv = NULL;
    uv_close((uv_handle_t *)&f->done, NULL);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    signal(SIGPIPE, SIG_IGN);
    make_cert(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->srv) {
        http_server_close(f->srv);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    X509_free(f->cert);
    free(f->cert_pem);
    free(f->key_pem);
    free(f->hello);
    free(f->stream);
    free(f->plain);
    free(f);
    return 0;
}

static http_server_config config(const char *cert, const char *key)
{
    return (http_server_config){
        .listen = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT },
        .tls_cert_pem = cert,
        .tls_key_pem = key,
    };
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle)) {
        fail_msg("expected \"%s\" in:\n%s", needle, haystack ? haystack : "(nothing)");
    }
}

/* Answers and streams go out over TLS; plain HTTP gets no HTTP answer. */
static void test_https(void **state)
{
    fixture *f = *state;
    http_server_config cfg = config(f->cert_pem, f->key_pem);
    int r = http_server_new(&f->loop, &cfg, &f->srv);
    if (r == -ENOTSUP || r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
        skip();
    }
    assert_int_equal(r, 0);
    f->port = http_server_port(f->srv);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "/hello", on_hello, f), 0);
    assert_int_equal(http_server_route(f->srv, HTTP_METHOD_GET, "/stream", on_stream, f), 0);
    uv_async_init(&f->loop, &f->done, on_done);
    f->done.data = f;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_main, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    assert_true(f->handshake_ok);
    assert_contains(f->hello, "HTTP/1.1 200 ");
    assert_contains(f->hello, "\r\n\r\nhello\n");
    assert_contains(f->stream, "HTTP/1.1 200 ");
    assert_contains(f->stream, "Transfer-Encoding: chunked\r\n");
    assert_contains(f->stream, "\r\nB\r\ndata: one\n\n\r\n0\r\n\r\n");
    assert_int_equal(f->stream_closed, 1);
    assert_null(strstr(f->plain, "HTTP/1.1 200"));
}

/* A certificate without a key (or the other way round) is a caller's
 * mistake; a key GnuTLS cannot read makes the server refuse to start. */
static void test_bad_credentials(void **state)
{
    fixture *f = *state;
    http_server *srv = NULL;
    http_server_config cfg = config(f->cert_pem, NULL);
    assert_int_equal(http_server_new(&f->loop, &cfg, &srv), -EINVAL);
    cfg = config(NULL, f->key_pem);
    assert_int_equal(http_server_new(&f->loop, &cfg, &srv), -EINVAL);
    cfg =
        config(f->cert_pem, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
    int r = http_server_new(&f->loop, &cfg, &srv);
    if (r == -ENOTSUP) {
        skip();
    }
    assert_int_equal(r, -EIO);
    assert_null(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_https, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_credentials, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
