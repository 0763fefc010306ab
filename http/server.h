/* rackboot's HTTP/1.1 server (the agent's boot files and installer API, the
 * controller's /metrics): libmicrohttpd 0.9.75 driven from the daemon's
 * single libuv loop (CONVENTIONS.md, "Libraries chosen").
 *
 * libmicrohttpd runs without threads of its own (MHD_USE_EPOLL): its epoll
 * fd sits in a uv_poll, each readiness runs MHD_run(), and a uv_timer armed
 * from MHD_get_timeout() after every run drives its timeouts. It parses the
 * requests, keeps connections alive, answers pipelined requests in order,
 * bounds request line and headers (`max_header_size` and HTTP_MAX_HEADERS,
 * answered with 431), closes idle and slow clients (`connection_timeout`) and sends file
 * bodies with sendfile(2).
 *
 * Two limits are ours, because libmicrohttpd's idle timeout alone lets a
 * client that sends one byte every connection_timeout - 1 seconds hold a
 * connection for ever (slowloris), and it has no total deadline:
 *  - `header_timeout`: the request line and all headers must be in within
 *    this many seconds of the connection opening, or of the previous answer
 *    on a kept-alive connection (so an idle kept-alive connection is closed
 *    after it too, as Apache's mod_reqtimeout and nginx's
 *    client_header_timeout do). Checked from the loop's timer; a late
 *    connection is shut down, counted (header_timeouts) and logged at a
 *    rate limit. Request bodies and answers are not covered: bodies are
 *    small and bounded, answers to slow readers are legitimate.
 *  - `max_connections_per_ip`, on by default, so one address cannot take
 *    every connection slot.
 *
 * The daemon registers routes; a handler gets an http_request and answers it
 * with exactly one http_reply_*() call, either before it returns or later
 * from the loop (the connection is suspended meanwhile, so a slow answer
 * holds no other client up). File answers get HEAD, ETag / If-None-Match
 * (304), Range / If-Range (206, 416) and Accept-Ranges from the server.
 *
 * Every request ends in one access log line at info:
 *   http GET /files/ipxe.efi status=206 bytes=1024 ms=0 client=[2001:db8::17]:40512
 * and in the counters of http_server_stats. */
#pragma once

#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "metrics/metrics.h"

typedef struct http_server http_server;
typedef struct http_request http_request;

/* Method sets for http_server_route(). A route that takes GET also takes
 * HEAD (RFC 9110 §9.3.2). */
enum {
    HTTP_METHOD_GET = 1u << 0,
    HTTP_METHOD_HEAD = 1u << 1,
    HTTP_METHOD_POST = 1u << 2,
    HTTP_METHOD_PUT = 1u << 3,
    HTTP_METHOD_DELETE = 1u << 4,
};

/* 32 per address: a booting machine fetches a few files at once, and a
 * handful may sit behind one NAT or proxy. HTTP_NO_PER_IP_LIMIT as
 * max_connections_per_ip turns the per-address limit off. */
#define HTTP_DEFAULT_MAX_CONNECTIONS        1024u
#define HTTP_DEFAULT_MAX_CONNECTIONS_PER_IP 32u
#define HTTP_NO_PER_IP_LIMIT                UINT_MAX
#define HTTP_DEFAULT_CONNECTION_TIMEOUT     30u   /* seconds */
#define HTTP_DEFAULT_HEADER_TIMEOUT         10u   /* seconds for request line + headers */
#define HTTP_DEFAULT_MAX_HEADER_SIZE        8192u /* request line + headers, bytes */
#define HTTP_DEFAULT_MAX_BODY_SIZE          65536u
/* Request headers per request (Apache's LimitRequestFields); more get 431. */
#define HTTP_MAX_HEADERS 100u

typedef struct http_server_config {
    /* Where to listen; `::` (or a v4-mapped address) listens dual-stack.
     * Port 0 lets the kernel choose (see http_server_port()). */
    struct sockaddr_in6 listen;
    unsigned max_connections;        /* 0: HTTP_DEFAULT_MAX_CONNECTIONS */
    unsigned max_connections_per_ip; /* 0: the default (see above) */
    unsigned connection_timeout;     /* seconds idle or stalled; 0: the default */
    unsigned header_timeout;         /* seconds for a request's head; 0: the default */
    size_t max_header_size;          /* 0: HTTP_DEFAULT_MAX_HEADER_SIZE */
    size_t max_body_size;            /* request bodies; 0: HTTP_DEFAULT_MAX_BODY_SIZE */
    /* HTTPS (libmicrohttpd's GnuTLS): the certificate, with its chain, and
     * its private key as PEM text, both or neither (plain HTTP). Copied. */
    const char *tls_cert_pem;
    const char *tls_key_pem;
} http_server_config;

typedef struct http_server_stats {
    uint64_t requests[6];    /* answered, by status class: [1] 1xx ... [5] 5xx; [0] none sent */
    uint64_t response_bytes; /* body bytes handed to completed responses */
    uint64_t errors;         /* requests that ended before their answer was sent
                              * (client gone, timeout, malformed, shutdown) */
    uint64_t connections_active;
    uint64_t connections_total;
    uint64_t header_timeouts; /* connections closed for header_timeout */
} http_server_stats;

/* Starts listening on `loop`; requests are read, and routed, only once the
 * loop runs, so routes registered before that answer every request, even
 * one already waiting when the socket opened. -EADDRINUSE and friends when the socket cannot
 * be bound, -ENOMEM, -EINVAL for a certificate without a key or the other
 * way round, -ENOTSUP for TLS when libmicrohttpd was built without it,
 * -EIO when libmicrohttpd refuses for another reason, e.g. a certificate
 * or key it cannot read (it logs why at debug). */
int http_server_new(uv_loop_t *loop, const http_server_config *cfg, http_server **ret);

/* Stops accepting and answering: pending handlers are cancelled (their
 * requests get 503), open connections are closed, and the memory is freed
 * once libuv has closed the server's handles. Accepts NULL. */
void http_server_close(http_server *srv);

/* The bound port (the chosen one when the configuration said 0). */
uint16_t http_server_port(const http_server *srv);

const http_server_stats *http_server_get_stats(const http_server *srv);

/* Registers the counters above as rackboot_http_* series. */
int http_server_register_metrics(const http_server *srv, metrics *m);

/* A route handler: answers `req` with one http_reply_*() call, now or later
 * from the loop. `req` stays valid until then (or until the cancel function
 * set with http_request_on_cancel() runs). */
typedef void (*http_handler_fn)(http_request *req, void *userdata);

/* Routes requests whose percent-decoded path is `path` to `fn`; a `path`
 * ending in '/' matches every path under it ("/files/" takes "/files/a/b").
 * The longest matching path wins; a path that matches with a method outside
 * `methods` gets 405 with Allow. `path` is copied. -EINVAL for a path not
 * starting with '/' or an empty method set, -EEXIST for a path already
 * routed, -ENOMEM. */
int http_server_route(http_server *srv, unsigned methods, const char *path, http_handler_fn fn,
                      void *userdata);

/* A secret carried in the path rather than the query (an install token in
 * /seed/<id>/<token>/...: the client appends names to the URL it is given):
 * in the access log line of every request whose target starts with `prefix`
 * (which starts and ends with '/'), path segment `index` after it (0: the
 * first) is written as "-". Query `token=` values are always blanked.
 * -EINVAL for a bad prefix, -E2BIG past HTTP_MAX_SECRET_SEGMENTS rules,
 * -ENOMEM. */
#define HTTP_MAX_SECRET_SEGMENTS 4u
int http_server_redact_segment(http_server *srv, const char *prefix, unsigned index);

/* Raises the soft RLIMIT_NOFILE to the hard limit when it is below
 * `connections` plus a margin for the daemon's other files. *ret_limit (may be
 * NULL) gets the soft limit in force. -EMFILE when the hard limit is still
 * below what is needed (the soft limit is raised anyway). */
int http_raise_nofile_limit(unsigned connections, uint64_t *ret_limit);

/* ---- the request, for handlers ---- */

unsigned http_request_method(const http_request *req); /* one HTTP_METHOD_* */
const char *http_request_method_name(const http_request *req);
/* The path, percent-decoded once, without the query: "/files/a:b" whether the
 * client sent ':' or "%3A" (iPXE up to 1.21 encodes it). Never holds NUL
 * bytes, "." or ".." segments (those requests are refused before routing). */
const char *http_request_path(const http_request *req);
/* A query argument, percent-decoded; NULL when absent. */
const char *http_request_query(const http_request *req, const char *key);
/* A request header (name case-insensitive); NULL when absent. */
const char *http_request_header(const http_request *req, const char *name);
/* The client's address (v4-mapped for IPv4 clients) and as "[ADDR]:PORT". */
const struct sockaddr_in6 *http_request_client(const http_request *req);
const char *http_request_client_string(const http_request *req);
/* The request body (at most max_body_size bytes; larger bodies get 413 before
 * any handler runs). Not NUL-terminated; NULL with length 0 when empty. */
const uint8_t *http_request_body(const http_request *req, size_t *ret_len);

/* `fn(userdata)` runs instead of the answer when the request ends before the
 * handler answered (the server closes); after it the handler must not touch
 * `req`. Cleared by any http_reply_*(). */
void http_request_on_cancel(http_request *req, void (*fn)(void *userdata), void *userdata);

/* The request's access log line goes out at debug, not info, when it
 * succeeds: a health check polled every second (keepalived's, deploy/HA.md)
 * would drown the log. A failed one is logged at info as always. */
void http_request_log_quietly(http_request *req);

/* Told once when the request ends, after the access log line: `complete`
 * when the whole answer was handed to the kernel, with its status and body
 * bytes (0 when not complete). For progress events ("the kernel was sent");
 * `req` is gone when it runs. */
typedef void (*http_done_fn)(void *userdata, bool complete, unsigned status, uint64_t bytes);
void http_request_on_done(http_request *req, http_done_fn fn, void *userdata);

/* The size of the answer's body once an http_reply_*() chose it (a range:
 * the range's), else 0. */
uint64_t http_request_body_size(const http_request *req);

/* The connection's socket, e.g. to read TCP_INFO for how much of a long
 * answer the client has acknowledged; -1 if unknown. Never close it. */
int http_request_socket(const http_request *req);

/* Adds a header to the answer still to come (e.g. "Cache-Control"). Both
 * strings are copied. -EINVAL for names or values with control characters,
 * -ENOMEM. */
int http_request_add_header(http_request *req, const char *name, const char *value);

/* ---- answers: exactly one per request ---- */

/* Serves `size` bytes of `fd` (consumed: the server closes it) with its
 * strong `etag` (quoted) and `content_type`: HEAD, If-None-Match → 304,
 * Range (GET only, subject to If-Range) → 206 or 416, otherwise 200. */
void http_reply_file(http_request *req, int fd, uint64_t size, const char *etag,
                     const char *content_type);

/* http_reply_file() for a file already in memory: the same validators,
 * ranges and statuses, the body sent from `data` (`size` bytes) together
 * with the headers. `data` must stay valid until the server calls
 * `release(release_data)`, exactly once, whatever the answer (it may be
 * NULL when nothing needs releasing). */
void http_reply_memory(http_request *req, const void *data, uint64_t size, const char *etag,
                       const char *content_type, void (*release)(void *), void *release_data);

/* Answers `status` with a copy of `data`. */
void http_reply_buffer(http_request *req, unsigned status, const char *content_type,
                       const void *data, size_t len);

/* Answers `status` with `data`, a malloc'ed buffer the server frees. */
void http_reply_owned(http_request *req, unsigned status, const char *content_type, void *data,
                      size_t len);

/* Answers `status` with `text` and a newline as text/plain. */
void http_reply_error(http_request *req, unsigned status, const char *text);

/* A body of unknown length written as it comes (Server-Sent Events, long
 * logs): sent chunked to HTTP/1.1 clients, until the end of the connection
 * to HTTP/1.0 ones. What is written is buffered in the stream, at most
 * HTTP_STREAM_MAX_BUFFERED bytes not yet taken by the client; while there is
 * nothing to send the connection is suspended (it holds no loop time and
 * no idle timeout runs), and a write wakes it. A client that goes away
 * while nothing is written is noticed at the next write, so a long-lived
 * stream should write a keep-alive now and then. */
typedef struct http_stream http_stream;
#define HTTP_STREAM_MAX_BUFFERED (1024u * 1024u)

/* Answers `status` with a stream (to HEAD: headers only, the writes are
 * dropped). `on_close(userdata)` runs exactly once,
 * when the request ends: the end was sent, the client went away or timed
 * out, or the server closed (then from inside http_server_close()); the
 * stream is gone after it and must not be written to. NULL when out of memory (the request is
 * answered 500 and on_close never runs). */
http_stream *http_reply_stream(http_request *req, unsigned status, const char *content_type,
                               void (*on_close)(void *userdata), void *userdata);

/* Appends `len` bytes to the stream (copied). -ENOBUFS when that would put
 * more than HTTP_STREAM_MAX_BUFFERED bytes in waiting (a client that does
 * not read: the caller usually ends the stream), -EPIPE after
 * http_stream_end(), -ENOMEM. */
int http_stream_write(http_stream *s, const void *data, size_t len);

/* Ends the stream once what is buffered has been sent; on_close follows. */
void http_stream_end(http_stream *s);

/* Answers a scrape: `m` rendered in the Prometheus text format 0.0.4 with
 * its content type, or 500 when it cannot be rendered (out of memory). */
void http_reply_metrics(http_request *req, const metrics *m);
