/* The HTTP server: libmicrohttpd in external-epoll mode on the daemon's
 * libuv loop (see server.h). Everything here runs on the loop thread (the
 * controller's store worker never calls in), so no locks. */
#include "http/server.h"
#include "http/server-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "hex.h"
#include "http/range.h"
#include "log.h"
#include "timeutil.h"
#include "util.h"

/* Files a daemon needs besides HTTP connections (the agent's: sockets of
 * its other servers, TFTP transfers, cache files, the journal). */
#define NOFILE_MARGIN  256u
#define LISTEN_BACKLOG 1024
/* TCP_NOTSENT_LOWAT for connections, see on_connection(). */
#define NOTSENT_LOWAT (64u * 1024u)

typedef struct http_route {
    char *path;
    size_t len;
    bool prefix; /* path ends in '/' */
    unsigned methods;
    http_handler_fn fn;
    void *userdata;
} http_route;

typedef struct http_secret {
    char *prefix;
    size_t len;
    unsigned index;
} http_secret;

typedef struct http_header {
    struct http_header *next;
    char *name;
    char *value;
} http_header;

struct http_request {
    http_server *srv;
    struct MHD_Connection *conn;
    /* pending (suspended) requests, for shutdown */
    http_request *prev, *next;
    char *target; /* the request target as sent, for the log */
    char *path;   /* decoded; NULL when refused (bad_status says why) */
    unsigned bad_status;
    const char *method_name; /* libmicrohttpd's, valid for the request */
    unsigned method;
    struct sockaddr_in6 client;
    char client_str[INET6_ADDRSTRLEN + 8];
    uint64_t start_us;
    bool started;    /* the access handler saw the headers */
    bool dispatched; /* the route handler ran (or an error was chosen) */
    bool suspended;
    bool queued;
    bool answered;
    bool quiet; /* http_request_log_quietly() */
    uint8_t *body;
    size_t body_len;
    http_header *headers;
    void (*cancel)(void *);
    void *cancel_data;
    struct MHD_Response *response;
    unsigned status;
    uint64_t body_bytes;
    http_done_fn done;
    void *done_data;
    http_stream *stream; /* answered with http_reply_stream() */
};

/* A streamed answer (server.h). Its memory belongs to the libmicrohttpd
 * response, freed by stream_free() when the response is destroyed, which
 * is after the request ended (request_free() holds a reference until
 * then); `req` is cleared when the request ends. */
struct http_stream {
    http_server *srv;
    http_request *req;        /* NULL once the request ended */
    http_stream *prev, *next; /* the server's open streams */
    char *buf;
    size_t off, len, cap; /* bytes [off, len) wait to be sent */
    bool ended;
    bool parked;  /* the reader found nothing and suspended the connection */
    bool discard; /* HEAD: writes are taken and dropped */
    void (*on_close)(void *);
    void *userdata;
};

/* A connection, tracked for header_timeout (server.h). Created when
 * libmicrohttpd accepts it, freed when it is closed. While it waits for a
 * request's head it sits in the server's `waiting` list, which is in order
 * of `since_ms` (every entry gets the same timeout and is appended with
 * the current time), so the next deadline is always the first entry's. */
typedef struct http_conn {
    struct http_conn *prev, *next;
    bool waiting;
    bool kept_alive; /* answered a request already: waits for the next one */
    int fd;
    uint64_t since_ms; /* uv_now() when it began to wait */
    struct sockaddr_in6 client;
} http_conn;

struct http_server {
    uv_loop_t *loop;
    struct MHD_Daemon *daemon;
    uv_poll_t poll;
    uv_timer_t timer; /* libmicrohttpd's next deadline, header deadlines */
    uv_idle_t again;  /* work left over: run again on the next iteration */
    unsigned open_handles;
    bool closing;
    bool stopping; /* http_server_close() runs: new requests get 503 at once */
    bool in_run;   /* inside MHD_run() */
    bool kick;     /* a connection was resumed: run again soon */
    uint16_t port;
    size_t max_header;
    size_t max_body;
    http_route *routes;
    size_t n_routes, cap_routes;
    http_request *pending;
    uint64_t header_timeout_ms;
    http_conn *waiting, *waiting_tail;
    log_ratelimit rl;
    http_server_stats stats;
    /* Path segments the access log blanks (http_server_redact_segment()). */
    http_secret secrets[HTTP_MAX_SECRET_SEGMENTS];
    size_t n_secrets;
    http_stream *streams;     /* open, for shutdown */
    char *tls_cert, *tls_key; /* libmicrohttpd keeps the pointers */
};

/* ---- requests ---- */

static void header_list_free(http_header *h)
{
    while (h) {
        http_header *next = h->next;
        free(h->name);
        free(h->value);
        free(h);
        h = next;
    }
}

static void request_free(http_request *req)
{
    if (!req) {
        return;
    }
    if (req->response) {
        MHD_destroy_response(req->response);
    }
    header_list_free(req->headers);
    free(req->target);
    free(req->path);
    free(req->body);
    free(req);
}

static void pending_remove(http_request *req)
{
    if (req->prev) {
        req->prev->next = req->next;
    } else if (req->srv->pending == req) {
        req->srv->pending = req->next;
    }
    if (req->next) {
        req->next->prev = req->prev;
    }
    req->prev = req->next = NULL;
}

static void conn_stop_waiting(http_server *srv, http_conn *c)
{
    if (!c->waiting) {
        return;
    }
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        srv->waiting = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    } else {
        srv->waiting_tail = c->prev;
    }
    c->prev = c->next = NULL;
    c->waiting = false;
}

/* The connection waits for a request's head from now on. */
static void conn_start_waiting(http_server *srv, http_conn *c)
{
    conn_stop_waiting(srv, c);
    c->since_ms = uv_now(srv->loop);
    c->prev = srv->waiting_tail;
    if (srv->waiting_tail) {
        srv->waiting_tail->next = c;
    } else {
        srv->waiting = c;
    }
    srv->waiting_tail = c;
    c->waiting = true;
}

static http_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Decodes the path of a request target once: "%3A" and ':' give the same
 * path. Returns 0, or the status to refuse it with: 400 for a target that is
 * not a path (or absolute URL), a broken escape or an encoded NUL; 403 for
 * "." and ".." segments, literal or encoded (nothing we serve is reached
 * through them, and refusing them here keeps every route safe). */
unsigned http_decode_path(const char *target, char **ret)
{
    const char *p = target;
    /* RFC 9112 §3.2.2: absolute-form must be accepted; its path is ours. */
    if (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0) {
        p = strstr(p, "://") + 3;
        p += strcspn(p, "/?");
        if (*p != '/') {
            return 400;
        }
    }
    if (*p != '/') {
        return 400;
    }
    size_t n = strcspn(p, "?");
    char *out = malloc(n + 1);
    if (!out) {
        return 500;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            out[o++] = p[i];
            continue;
        }
        int hi = i + 2 < n ? hex_digit(p[i + 1]) : -1;
        int lo = i + 2 < n ? hex_digit(p[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return 400;
        }
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    for (const char *s = out; *s;) {
        s++; /* past '/' */
        size_t len = strcspn(s, "/");
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
            free(out);
            return 403;
        }
        s += len;
    }
    *ret = out;
    return 0;
}

static unsigned method_of(const char *m)
{
    static const struct {
        const char *name;
        unsigned bit;
    } table[] = {
        { "GET", HTTP_METHOD_GET }, { "HEAD", HTTP_METHOD_HEAD },     { "POST", HTTP_METHOD_POST },
        { "PUT", HTTP_METHOD_PUT }, { "DELETE", HTTP_METHOD_DELETE },
    };
    for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
        if (streq(m, table[i].name)) {
            return table[i].bit;
        }
    }
    return 0;
}

unsigned http_request_method(const http_request *req)
{
    return req->method;
}

const char *http_request_method_name(const http_request *req)
{
    return req->method_name ? req->method_name : "-";
}

const char *http_request_path(const http_request *req)
{
    return req->path;
}

void http_request_on_done(http_request *req, http_done_fn fn, void *userdata)
{
    req->done = fn;
    req->done_data = userdata;
}

uint64_t http_request_body_size(const http_request *req)
{
    return req->queued || req->response ? req->body_bytes : 0;
}

int http_request_socket(const http_request *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

const char *http_request_query(const http_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_request_header(const http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const struct sockaddr_in6 *http_request_client(const http_request *req)
{
    return &req->client;
}

const char *http_request_client_string(const http_request *req)
{
    return req->client_str;
}

const uint8_t *http_request_body(const http_request *req, size_t *ret_len)
{
    *ret_len = req->body_len;
    return req->body;
}

void http_request_log_quietly(http_request *req)
{
    req->quiet = true;
}

void http_request_on_cancel(http_request *req, void (*fn)(void *userdata), void *userdata)
{
    req->cancel = fn;
    req->cancel_data = userdata;
}

static bool header_text_ok(const char *s, bool name)
{
    if (!s || (name && !*s)) {
        return false;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || (name && (c == ':' || c == ' '))) {
            return false;
        }
    }
    return true;
}

int http_request_add_header(http_request *req, const char *name, const char *value)
{
    if (!header_text_ok(name, true) || !header_text_ok(value, false)) {
        return -EINVAL;
    }
    http_header *h = calloc(1, sizeof(*h));
    if (!h) {
        return -ENOMEM;
    }
    h->name = strdup(name);
    h->value = strdup(value);
    if (!h->name || !h->value) {
        header_list_free(h);
        return -ENOMEM;
    }
    h->next = req->headers;
    req->headers = h;
    return 0;
}

/* ---- answers ---- */

static void on_timer(uv_timer_t *t);
static void on_again(uv_idle_t *h);

/* Resumes a suspended connection. Without threads libmicrohttpd has no
 * wake-up channel of its own: it handles the resumed connection on its
 * next MHD_run(), which the next loop iteration does (never re-entered
 * from inside it). */
static void resume(http_server *srv, struct MHD_Connection *conn)
{
    MHD_resume_connection(conn);
    srv->kick = true;
    if (!srv->in_run && !srv->closing) {
        uv_idle_start(&srv->again, on_again);
    }
}

/* Takes `resp` (NULL: out of memory) as the answer and, when the handler
 * answers after it returned, wakes the suspended connection. */
static void answer(http_request *req, unsigned status, struct MHD_Response *resp, uint64_t bytes)
{
    RB_ASSERT(!req->answered);
    req->answered = true;
    req->cancel = NULL;
    req->cancel_data = NULL;
    if (!resp) {
        static char oom[] = "out of memory\n";
        status = 500;
        bytes = sizeof(oom) - 1;
        resp = MHD_create_response_from_buffer(bytes, oom, MHD_RESPMEM_PERSISTENT);
        if (!resp) {
            /* Not even that: the connection is closed when it is resumed. */
            status = 0;
        }
    }
    if (resp) {
        for (const http_header *h = req->headers; h; h = h->next) {
            MHD_add_response_header(resp, h->name, h->value);
        }
    }
    req->response = resp;
    req->status = status;
    /* HEAD: libmicrohttpd sends the headers only. */
    req->body_bytes = req->method == HTTP_METHOD_HEAD ? 0 : bytes;
    if (req->suspended) {
        req->suspended = false;
        pending_remove(req);
        resume(req->srv, req->conn);
    }
}

static struct MHD_Response *text_response(const char *content_type, const void *data, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)data, MHD_RESPMEM_MUST_COPY);
    if (r && content_type) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    }
    return r;
}

void http_reply_buffer(http_request *req, unsigned status, const char *content_type,
                       const void *data, size_t len)
{
    answer(req, status, text_response(content_type, len ? data : "", len), len);
}

void http_reply_owned(http_request *req, unsigned status, const char *content_type, void *data,
                      size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, data, free);
    if (!r) {
        free(data);
    } else if (content_type) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    }
    answer(req, status, r, len);
}

void http_reply_error(http_request *req, unsigned status, const char *text)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "%s\n", text);
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof(buf) ? sizeof(buf) - 1 : (size_t)n;
    answer(req, status, text_response("text/plain; charset=utf-8", buf, len), len);
}

void http_reply_metrics(http_request *req, const metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    if (metrics_render(m, &text, &len) < 0) {
        http_reply_error(req, 500, "metrics unavailable");
        return;
    }
    http_reply_owned(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

/* ---- streams ---- */

static void stream_wake(http_stream *s)
{
    if (s->parked && s->req) {
        s->parked = false;
        resume(s->srv, s->req->conn);
    }
}

/* libmicrohttpd asks for the next piece of the body when the previous one
 * is out. With nothing buffered the connection is suspended until a write
 * (or the end) resumes it, as libmicrohttpd's documentation asks of a
 * reader that returns 0. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    http_stream *s = cls;
    if (s->off < s->len) {
        size_t n = s->len - s->off < max ? s->len - s->off : max;
        memcpy(buf, s->buf + s->off, n);
        s->off += n;
        if (s->off == s->len) {
            s->off = s->len = 0;
        }
        if (s->req) {
            s->req->body_bytes += n;
        }
        return (ssize_t)n;
    }
    if (s->ended || !s->req) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    s->parked = true;
    MHD_suspend_connection(s->req->conn);
    return 0;
}

static void stream_free(void *cls)
{
    http_stream *s = cls;
    free(s->buf);
    free(s);
}

static void stream_unlink(http_stream *s)
{
    if (s->prev) {
        s->prev->next = s->next;
    } else if (s->srv->streams == s) {
        s->srv->streams = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    s->prev = s->next = NULL;
}

/* The request ended: tell the owner once, and let go of the request. */
static void stream_closed(http_stream *s)
{
    stream_unlink(s);
    s->req = NULL;
    if (s->on_close) {
        void (*fn)(void *) = s->on_close;
        s->on_close = NULL;
        fn(s->userdata);
    }
}

http_stream *http_reply_stream(http_request *req, unsigned status, const char *content_type,
                               void (*on_close)(void *userdata), void *userdata)
{
    http_stream *s = calloc(1, sizeof(*s));
    struct MHD_Response *r = NULL;
    if (s && req->method == HTTP_METHOD_HEAD) {
        /* libmicrohttpd 0.9.75 sends a chunked answer's last chunk even to
         * HEAD, a body HEAD must not have (RFC 9110 §9.3.2) that a client
         * keeping the connection would read as the next answer: HEAD gets
         * an empty body, and what is written is dropped. */
        static char empty[1];
        s->discard = true;
        r = MHD_create_response_from_buffer_with_free_callback_cls(0, empty, stream_free, s);
    } else if (s) {
        /* Pieces of up to 16 KiB: one TLS record each. */
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
    }
    if (!r) {
        free(s);
        answer(req, 500, NULL, 0);
        return NULL;
    }
    if (content_type) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    }
    s->srv = req->srv;
    s->req = req;
    s->on_close = on_close;
    s->userdata = userdata;
    s->next = req->srv->streams;
    if (s->next) {
        s->next->prev = s;
    }
    req->srv->streams = s;
    req->stream = s;
    answer(req, status, r, 0);
    return s;
}

int http_stream_write(http_stream *s, const void *data, size_t len)
{
    if (s->ended || !s->req) {
        return -EPIPE;
    }
    if (s->discard) {
        return 0;
    }
    size_t waiting = s->len - s->off;
    if (len > HTTP_STREAM_MAX_BUFFERED - waiting) {
        return -ENOBUFS;
    }
    if (s->off > 0) {
        memmove(s->buf, s->buf + s->off, waiting);
        s->off = 0;
        s->len = waiting;
    }
    if (s->cap - s->len < len) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap - s->len < len) {
            cap *= 2;
        }
        char *bigger = realloc(s->buf, cap);
        if (!bigger) {
            return -ENOMEM;
        }
        s->buf = bigger;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    stream_wake(s);
    return 0;
}

void http_stream_end(http_stream *s)
{
    s->ended = true;
    stream_wake(s);
}

/* The body of a file answer: an fd for sendfile(2), or bytes in memory. */
typedef struct file_body {
    int fd; /* -1: data */
    const void *data;
    void (*release)(void *);
    void *release_data;
} file_body;

static void body_release(file_body *b)
{
    if (b->fd >= 0) {
        close(b->fd);
        b->fd = -1;
    } else if (b->release) {
        b->release(b->release_data);
        b->release = NULL;
    }
}

static void reply_file_body(http_request *req, file_body *body, uint64_t size, const char *etag,
                            const char *content_type)
{
    char crange[80];
    /* RFC 9110 §13.2.2: If-None-Match first; §14.2: Range only for GET. */
    if (etag && http_if_none_match(http_request_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        body_release(body);
        static char empty[1];
        struct MHD_Response *r = MHD_create_response_from_buffer(0, empty, MHD_RESPMEM_PERSISTENT);
        if (r) {
            MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
        }
        answer(req, 304, r, 0);
        return;
    }
    http_range range = { 0, size };
    http_range_result rr = HTTP_RANGE_IGNORE;
    if (req->method == HTTP_METHOD_GET &&
        http_if_range_ok(http_request_header(req, MHD_HTTP_HEADER_IF_RANGE), etag)) {
        rr = http_range_parse(http_request_header(req, MHD_HTTP_HEADER_RANGE), size, &range);
    }
    struct MHD_Response *r;
    unsigned status = 200;
    uint64_t bytes = range.length;
    if (rr == HTTP_RANGE_UNSATISFIABLE) {
        body_release(body);
        static const char msg[] = "range not satisfiable\n";
        bytes = sizeof(msg) - 1;
        r = text_response("text/plain; charset=utf-8", msg, bytes);
        status = 416;
        snprintf(crange, sizeof(crange), "bytes */%" PRIu64, size);
    } else {
        if (range.length == 0) {
            /* An empty file: nothing for sendfile to do. */
            body_release(body);
            r = text_response(content_type, "", 0);
        } else if (body->fd >= 0) {
            /* Takes fd; libmicrohttpd sends it with sendfile(2). */
            r = MHD_create_response_from_fd_at_offset64(range.length, body->fd, range.offset);
            if (!r) {
                close(body->fd);
            }
            body->fd = -1;
        } else {
            /* Sent with the headers in one write; the release runs when
             * libmicrohttpd lets go of the response. */
            r = MHD_create_response_from_buffer_with_free_callback_cls(
                (size_t)range.length, (void *)((uintptr_t)body->data + range.offset), body->release,
                body->release_data);
            if (!r) {
                body_release(body);
            }
            body->release = NULL;
        }
        if (r && content_type) {
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        }
        if (rr == HTTP_RANGE_PARTIAL) {
            status = 206;
            snprintf(crange, sizeof(crange), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, range.offset,
                     range.offset + range.length - 1, size);
        }
    }
    if (r) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
        if (etag) {
            MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
        }
        if (status != 200) {
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
        }
    }
    answer(req, status, r, bytes);
}

void http_reply_file(http_request *req, int fd, uint64_t size, const char *etag,
                     const char *content_type)
{
    file_body body = { .fd = fd };
    reply_file_body(req, &body, size, etag, content_type);
}

void http_reply_memory(http_request *req, const void *data, uint64_t size, const char *etag,
                       const char *content_type, void (*release)(void *), void *release_data)
{
    file_body body = { .fd = -1, .data = data, .release = release, .release_data = release_data };
    reply_file_body(req, &body, size, etag, content_type);
}

/* ---- routing ---- */

static const http_route *route_find(const http_server *srv, const char *path)
{
    const http_route *best = NULL;
    for (size_t i = 0; i < srv->n_routes; i++) {
        const http_route *r = &srv->routes[i];
        bool match = r->prefix ? strncmp(path, r->path, r->len) == 0 : streq(path, r->path);
        if (match && (!best || r->len > best->len)) {
            best = r;
        }
    }
    return best;
}

int http_server_route(http_server *srv, unsigned methods, const char *path, http_handler_fn fn,
                      void *userdata)
{
    if (!path || path[0] != '/' || methods == 0 || !fn) {
        return -EINVAL;
    }
    for (size_t i = 0; i < srv->n_routes; i++) {
        if (streq(srv->routes[i].path, path)) {
            return -EEXIST;
        }
    }
    if (srv->n_routes == srv->cap_routes) {
        size_t cap = srv->cap_routes ? srv->cap_routes * 2 : 8;
        http_route *bigger = realloc(srv->routes, cap * sizeof(*bigger));
        if (!bigger) {
            return -ENOMEM;
        }
        srv->routes = bigger;
        srv->cap_routes = cap;
    }
    char *copy = strdup(path);
    if (!copy) {
        return -ENOMEM;
    }
    size_t len = strlen(path);
    if (methods & HTTP_METHOD_GET) {
        methods |= HTTP_METHOD_HEAD;
    }
    srv->routes[srv->n_routes++] = (http_route){
        .path = copy,
        .len = len,
        .prefix = path[len - 1] == '/',
        .methods = methods,
        .fn = fn,
        .userdata = userdata,
    };
    return 0;
}

static void reply_not_allowed(http_request *req, unsigned methods)
{
    static const char *const names[] = { "GET", "HEAD", "POST", "PUT", "DELETE" };
    char allow[64] = "";
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (methods & (1u << i)) {
            if (allow[0]) {
                strcat(allow, ", ");
            }
            strcat(allow, names[i]);
        }
    }
    http_request_add_header(req, MHD_HTTP_HEADER_ALLOW, allow);
    http_reply_error(req, 405, "method not allowed");
}

static void dispatch(http_request *req)
{
    req->dispatched = true;
    if (req->srv->stopping) {
        /* Not handed to a handler that could answer later: libmicrohttpd
         * cannot stop with a connection suspended. */
        http_reply_error(req, 503, "shutting down");
        return;
    }
    if (req->bad_status) {
        http_reply_error(req, req->bad_status,
                         req->bad_status == 403 ? "forbidden" : "bad request");
        return;
    }
    if (req->method == 0) {
        http_reply_error(req, 501, "method not implemented");
        return;
    }
    const http_route *r = route_find(req->srv, req->path);
    if (!r) {
        http_reply_error(req, 404, "not found");
        return;
    }
    if (!(r->methods & req->method)) {
        reply_not_allowed(req, r->methods);
        return;
    }
    r->fn(req, r->userdata);
}

/* ---- libmicrohttpd callbacks ---- */

/* Called once the request line is read, before the headers: the request
 * object starts here, so even requests refused for their headers are
 * logged. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    http_server *srv = cls;
    http_request *req = calloc(1, sizeof(*req));
    if (!req) {
        return NULL;
    }
    req->srv = srv;
    req->conn = conn;
    req->start_us = now_monotonic_us();
    req->target = strdup(uri);
    if (!req->target) {
        free(req);
        return NULL;
    }
    req->bad_status = http_decode_path(uri, &req->path);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char addr[INET6_ADDRSTRLEN] = "?";
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6) {
        memcpy(&req->client, ci->client_addr, sizeof(req->client));
        inet_ntop(AF_INET6, &req->client.sin6_addr, addr, sizeof(addr));
    }
    snprintf(req->client_str, sizeof(req->client_str), "[%s]:%u", addr,
             ntohs(req->client.sin6_port));
    return req;
}

typedef struct head_measure {
    size_t bytes;
    size_t count;
} head_measure;

static enum MHD_Result measure_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    head_measure *m = cls;
    m->bytes += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    m->count++;
    return MHD_YES;
}

/* True when the request line and headers as sent (give or take whitespace)
 * exceed max_header_size, or there are more than HTTP_MAX_HEADERS headers.
 * libmicrohttpd bounds them only by its memory pool, which holds other
 * things too, so the limits are checked here exactly; the pool is sized so
 * that these checks come first for all but absurd header counts (those
 * exhaust the pool and libmicrohttpd drops the connection). */
static bool request_head_too_large(const http_request *req, const char *method)
{
    head_measure m = {
        .bytes = strlen(method) + 1 + strlen(req->target) + 1 + strlen("HTTP/1.1\r\n") + 2,
    };
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, measure_header, &m);
    return m.bytes > req->srv->max_header || m.count > HTTP_MAX_HEADERS;
}

static enum MHD_Result queue(http_request *req)
{
    req->queued = true;
    if (!req->response) {
        return MHD_NO;
    }
    return MHD_queue_response(req->conn, req->status, req->response);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    http_request *req = *con_cls;
    if (!req) {
        return MHD_NO; /* out of memory in on_uri */
    }
    if (!req->started) {
        /* First call: the headers are in, the body (if any) is not. */
        req->started = true;
        http_conn *c = conn_of(conn);
        if (c) {
            conn_stop_waiting(req->srv, c);
        }
        req->method_name = method;
        req->method = method_of(method);
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (request_head_too_large(req, method)) {
            req->dispatched = true;
            http_reply_error(req, 431, "request header fields too large");
            return queue(req);
        }
        uint64_t declared = 0;
        if (cl && (sscanf(cl, "%" SCNu64, &declared) != 1 || declared > req->srv->max_body)) {
            req->dispatched = true;
            http_reply_error(req, 413, "request body too large");
            return queue(req);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->dispatched) {
            return MHD_YES; /* answered already (413): discard */
        }
        if (n > req->srv->max_body - req->body_len) {
            return MHD_NO; /* a chunked body past the limit: close */
        }
        uint8_t *bigger = realloc(req->body, req->body_len + n);
        if (!bigger) {
            return MHD_NO;
        }
        memcpy(bigger + req->body_len, upload_data, n);
        req->body = bigger;
        req->body_len += n;
        return MHD_YES;
    }
    if (req->queued) {
        return MHD_YES;
    }
    if (!req->dispatched) {
        dispatch(req);
    }
    if (req->answered) {
        /* In the handler, or later and now resumed. Without a response (not
         * even the out-of-memory one could be made) queue() closes. */
        return queue(req);
    }
    /* The handler answers later: park the connection until then. */
    if (!req->suspended) {
        req->suspended = true;
        req->next = req->srv->pending;
        if (req->next) {
            req->next->prev = req;
        }
        req->srv->pending = req;
        MHD_suspend_connection(conn);
    }
    return MHD_YES;
}

static const char *termination_name(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK:
        return "ok";
    case MHD_REQUEST_TERMINATED_WITH_ERROR:
        return "error";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
        return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
        return "shutdown";
    case MHD_REQUEST_TERMINATED_READ_ERROR:
        return "read_error";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
        return "client_abort";
    }
    return "unknown";
}

/* The request target for the access log, with the value of every `token`
 * query argument replaced by "-": install tokens are secrets (the installer
 * proves itself with one), logs are not. Truncates to `size`. */
static void redact_query_secrets(const char *target, char *out, size_t size)
{
    static const char key[] = "token=";
    const char *q = strchr(target, '?');
    size_t o = 0;
    for (const char *p = target; *p && o + 1 < size;) {
        bool at_arg = q && p > q && (p[-1] == '?' || p[-1] == '&');
        if (at_arg && strncmp(p, key, sizeof(key) - 1) == 0) {
            size_t n = sizeof(key) - 1;
            if (o + n + 2 > size) {
                break;
            }
            memcpy(out + o, p, n);
            o += n;
            out[o++] = '-';
            p += n;
            while (*p && *p != '&') {
                p++;
            }
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
}

int http_server_redact_segment(http_server *srv, const char *prefix, unsigned index)
{
    size_t len = prefix ? strlen(prefix) : 0;
    if (len < 2 || prefix[0] != '/' || prefix[len - 1] != '/') {
        return -EINVAL;
    }
    if (srv->n_secrets == ARRAY_SIZE(srv->secrets)) {
        return -E2BIG;
    }
    char *copy = strdup(prefix);
    if (!copy) {
        return -ENOMEM;
    }
    srv->secrets[srv->n_secrets++] = (http_secret){ copy, len, index };
    return 0;
}

/* `target` with the secret path segment of a matching rule replaced by "-"
 * (the rest as sent). Truncates to `size`. */
static void redact_path_secrets(const http_server *srv, const char *target, char *out, size_t size)
{
    snprintf(out, size, "%s", target);
    for (size_t i = 0; i < srv->n_secrets; i++) {
        if (strncmp(target, srv->secrets[i].prefix, srv->secrets[i].len) != 0) {
            continue;
        }
        const char *seg = target + srv->secrets[i].len;
        for (unsigned k = 0; k < srv->secrets[i].index && seg; k++) {
            seg = strpbrk(seg, "/?");
            seg = seg && *seg == '/' ? seg + 1 : NULL;
        }
        if (!seg) {
            return;
        }
        size_t end = strcspn(seg, "/?");
        snprintf(out, size, "%.*s-%s", (int)(seg - target), target, seg + end);
        return;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *srv = cls;
    http_request *req = *con_cls;
    *con_cls = NULL;
    /* A kept-alive connection now waits for its next request's head (if
     * it is closing instead, on_connection() frees it next). */
    http_conn *c = conn_of(conn);
    if (c) {
        c->kept_alive = true;
        conn_start_waiting(srv, c);
    }
    if (!req) {
        return;
    }
    if (req->suspended) {
        pending_remove(req);
    }
    if (req->stream) {
        stream_closed(req->stream);
        req->stream = NULL;
    }
    if (req->cancel) {
        req->cancel(req->cancel_data);
        req->cancel = NULL;
    }
    bool ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && req->queued;
    unsigned cls_idx = ok && req->status / 100 <= 5 ? req->status / 100 : 0;
    srv->stats.requests[cls_idx]++;
    if (ok) {
        srv->stats.response_bytes += req->body_bytes;
    } else {
        srv->stats.errors++;
    }
    log_level level = ok && req->quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
    if (log_enabled(level)) {
        /* The access log line; skipped whole (quoting, clock) below its
         * level. */
        char unpathed[512], redacted[512], target[512];
        redact_path_secrets(srv, req->target, unpathed, sizeof(unpathed));
        redact_query_secrets(unpathed, redacted, sizeof(redacted));
        log_quote(target, sizeof(target), redacted);
        uint64_t ms = (now_monotonic_us() - req->start_us) / 1000;
        if (ok) {
            log_msg(level, "http %s %s status=%u bytes=%" PRIu64 " ms=%" PRIu64 " client=%s",
                    http_request_method_name(req), target, req->status, req->body_bytes, ms,
                    req->client_str);
        } else {
            /* Refused by libmicrohttpd itself (e.g. 431 for oversized
             * headers), or the client went away, or it timed out. */
            log_info("http %s %s status=%u bytes=0 ms=%" PRIu64 " client=%s ended=%s",
                     http_request_method_name(req), target, req->queued ? req->status : 0, ms,
                     req->client_str, termination_name(toe));
        }
    }
    if (req->done) {
        req->done(req->done_data, ok, req->queued ? req->status : 0, ok ? req->body_bytes : 0);
    }
    request_free(req);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        /* libmicrohttpd's connection_timeout counts only its own reads and
         * writes as activity. A slow reader leaves the socket unwritable
         * until a third of the send buffer has drained, and with the buffer
         * autotuned to megabytes that takes longer than the timeout at a
         * few KB/s: a download that is still moving would be closed as
         * stalled. Bounding the bytes queued but not yet sent keeps the
         * socket writable (and the writes counted) every NOTSENT_LOWAT / 2
         * bytes the client takes, and keeps slow clients' data out of
         * kernel memory; throughput is unaffected, data in flight is not
         * limited. A client that takes nothing for connection_timeout is
         * still closed. */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        int lowat = NOTSENT_LOWAT;
        if (ci &&
            setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat)) < 0) {
            log_debug("http setsockopt(TCP_NOTSENT_LOWAT): %s", strerror(errno));
        }
        srv->stats.connections_active++;
        srv->stats.connections_total++;
        /* Without memory for the record the connection goes untracked:
         * the idle timeout still applies. */
        http_conn *c = calloc(1, sizeof(*c));
        if (c) {
            c->fd = ci ? ci->connect_fd : -1;
            const union MHD_ConnectionInfo *ai =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            if (ai && ai->client_addr && ai->client_addr->sa_family == AF_INET6) {
                memcpy(&c->client, ai->client_addr, sizeof(c->client));
            }
            conn_start_waiting(srv, c);
            *socket_context = c;
        }
    } else {
        if (srv->stats.connections_active > 0) {
            srv->stats.connections_active--;
        }
        http_conn *c = *socket_context;
        if (c) {
            conn_stop_waiting(srv, c);
            free(c);
            *socket_context = NULL;
        }
    }
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    /* libmicrohttpd's own messages are mostly about single misbehaving
     * clients: keep them at debug. Lines end in '\n' already. */
    if (log_enabled(LOG_LEVEL_DEBUG)) {
        char buf[512];
        vsnprintf(buf, sizeof(buf), fmt, ap);
        buf[strcspn(buf, "\n")] = '\0';
        log_debug("http libmicrohttpd: %s", buf);
    }
}

/* ---- the loop ---- */

/* Shuts down every connection whose request head is past header_timeout.
 * libmicrohttpd has no call to close a connection from outside, but it
 * sees the shutdown socket as closed by the client on its next read (the
 * MHD_run() that follows) and cleans up as usual; the descriptor stays
 * its to close. */
static void expire_heads(http_server *srv)
{
    uint64_t now = uv_now(srv->loop);
    while (srv->waiting && now - srv->waiting->since_ms >= srv->header_timeout_ms) {
        http_conn *c = srv->waiting;
        conn_stop_waiting(srv, c);
        if (c->fd < 0) {
            continue;
        }
        shutdown(c->fd, SHUT_RDWR);
        srv->stats.header_timeouts++;
        if (c->kept_alive) {
            /* An idle kept-alive client (Prometheus between two scrapes, a
             * browser): ordinary, not a slow client. */
            log_debug("http closed client fd=%d reason=idle_keepalive", c->fd);
            continue;
        }
        uint64_t suppressed = 0;
        if (log_ratelimit_ok(&srv->rl, now, &suppressed)) {
            char addr[INET6_ADDRSTRLEN] = "?";
            inet_ntop(AF_INET6, &c->client.sin6_addr, addr, sizeof(addr));
            log_warn("http closed client=[%s]:%u reason=header_timeout header_timeout=%" PRIu64
                     "s suppressed=%" PRIu64,
                     addr, ntohs(c->client.sin6_port), srv->header_timeout_ms / 1000, suppressed);
        }
    }
}

/* One pass of libmicrohttpd's work, then its next deadline: MHD_get_timeout()
 * says 0 when it has work left over (edge-triggered sockets it did not
 * drain, a large file still being sent), and then an idle handle runs it
 * again on the next loop iteration, after the loop has polled every other
 * socket and updated its clock. (A 0 ms timer re-armed from its own
 * callback would not do: libuv before 1.48, Debian 12 has 1.44, runs it
 * again in the same pass, so the loop spins on HTTP alone with a frozen
 * clock while a transfer lasts; libuv issue #4245.) The timer is for
 * real deadlines: libmicrohttpd's, and the first waiting connection's
 * header deadline. */
static void run_daemon(http_server *srv)
{
    if (srv->closing) {
        return;
    }
    expire_heads(srv);
    srv->in_run = true;
    srv->kick = false;
    MHD_run(srv->daemon);
    srv->in_run = false;
    MHD_UNSIGNED_LONG_LONG mhd_ms;
    uint64_t ms = UINT64_MAX;
    if (srv->kick) {
        ms = 0;
    } else if (MHD_get_timeout(srv->daemon, &mhd_ms) == MHD_YES) {
        ms = mhd_ms;
    }
    if (srv->waiting) {
        uint64_t due = srv->waiting->since_ms + srv->header_timeout_ms;
        uint64_t now = uv_now(srv->loop);
        uint64_t head_ms = due > now ? due - now : 0;
        ms = head_ms < ms ? head_ms : ms;
    }
    if (ms == 0) {
        uv_timer_stop(&srv->timer);
        uv_idle_start(&srv->again, on_again);
        return;
    }
    uv_idle_stop(&srv->again);
    if (ms == UINT64_MAX) {
        uv_timer_stop(&srv->timer);
    } else {
        uv_timer_start(&srv->timer, on_timer, ms, 0);
    }
}

static void on_timer(uv_timer_t *t)
{
    run_daemon(t->data);
}

static void on_again(uv_idle_t *h)
{
    run_daemon(h->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    run_daemon(p->data);
}

static int listen_socket(const struct sockaddr_in6 *addr, int *ret_fd, uint16_t *ret_port)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return negative_errno();
    }
    int one = 1;
    /* Dual stack for `::` and v4-mapped addresses, IPv6 only otherwise. */
    int v6only =
        !(IN6_IS_ADDR_UNSPECIFIED(&addr->sin6_addr) || IN6_IS_ADDR_V4MAPPED(&addr->sin6_addr));
    struct sockaddr_in6 bound;
    socklen_t len = sizeof(bound);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0 ||
        bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 ||
        listen(fd, LISTEN_BACKLOG) < 0 || getsockname(fd, (struct sockaddr *)&bound, &len) < 0) {
        int r = negative_errno();
        close(fd);
        return r;
    }
    *ret_fd = fd;
    *ret_port = ntohs(bound.sin6_port);
    return 0;
}

/* A server http_server_new() gave up on before its handles existed. */
static void free_unstarted(http_server *srv)
{
    free(srv->tls_cert);
    free(srv->tls_key);
    free(srv);
}

int http_server_new(uv_loop_t *loop, const http_server_config *cfg, http_server **ret)
{
    unsigned max_conn = cfg->max_connections ? cfg->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
    unsigned timeout =
        cfg->connection_timeout ? cfg->connection_timeout : HTTP_DEFAULT_CONNECTION_TIMEOUT;
    size_t max_header = cfg->max_header_size ? cfg->max_header_size : HTTP_DEFAULT_MAX_HEADER_SIZE;
    unsigned per_ip = cfg->max_connections_per_ip == 0 ? HTTP_DEFAULT_MAX_CONNECTIONS_PER_IP
                      : cfg->max_connections_per_ip == HTTP_NO_PER_IP_LIMIT
                          ? 0 /* libmicrohttpd's "no limit" */
                          : cfg->max_connections_per_ip;
    bool tls = cfg->tls_cert_pem || cfg->tls_key_pem;
    if (tls && !(cfg->tls_cert_pem && cfg->tls_key_pem)) {
        return -EINVAL;
    }
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        return -ENOTSUP;
    }
    http_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        return -ENOMEM;
    }
    if (tls) {
        srv->tls_cert = strdup(cfg->tls_cert_pem);
        srv->tls_key = strdup(cfg->tls_key_pem);
        if (!srv->tls_cert || !srv->tls_key) {
            free_unstarted(srv);
            return -ENOMEM;
        }
    }
    srv->loop = loop;
    srv->max_header = max_header;
    srv->header_timeout_ms =
        1000ull * (cfg->header_timeout ? cfg->header_timeout : HTTP_DEFAULT_HEADER_TIMEOUT);
    srv->rl = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 10);
    srv->max_body = cfg->max_body_size ? cfg->max_body_size : HTTP_DEFAULT_MAX_BODY_SIZE;
    int fd = -1;
    int r = listen_socket(&cfg->listen, &fd, &srv->port);
    if (r < 0) {
        free_unstarted(srv);
        return r;
    }
    /* The request line and headers live in the connection's memory pool,
     * with a small record per header and the response headers: room for
     * max_header_size of text twice over plus the records of
     * HTTP_MAX_HEADERS headers, so request_head_too_large() answers 431
     * before the pool runs out. */
    size_t pool = 2 * max_header + 8192;
    /* sendfile(2) cannot be told MSG_NOSIGNAL, so libmicrohttpd uses it only
     * when SIGPIPE cannot kill us (it copies through a buffer otherwise). */
    struct sigaction sa_pipe;
    int sigpipe_handled = sigaction(SIGPIPE, NULL, &sa_pipe) == 0 &&
                          ((sa_pipe.sa_flags & SA_SIGINFO) || sa_pipe.sa_handler != SIG_DFL);
    unsigned flags =
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_IPv6 | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    /* TLS options go in an array so the call below stays one call; with
     * TLS libmicrohttpd copies file bodies through GnuTLS instead of
     * sendfile(2). */
    struct MHD_OptionItem tls_options[] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key },
        { MHD_OPTION_END, 0, NULL },
    };
    if (tls) {
        flags |= MHD_USE_TLS;
    } else {
        tls_options[0].option = MHD_OPTION_END;
    }
    srv->daemon = MHD_start_daemon(
        flags, srv->port, NULL, NULL, on_access, srv, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, max_conn, MHD_OPTION_CONNECTION_TIMEOUT, timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        srv, MHD_OPTION_SIGPIPE_HANDLED_BY_APP, sigpipe_handled, MHD_OPTION_ARRAY, tls_options,
        MHD_OPTION_END);
    if (!srv->daemon) {
        close(fd);
        free_unstarted(srv);
        return -EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info) {
        MHD_stop_daemon(srv->daemon);
        free_unstarted(srv);
        return -EIO;
    }
    r = uv_poll_init(loop, &srv->poll, info->epoll_fd);
    if (r < 0) {
        MHD_stop_daemon(srv->daemon);
        free_unstarted(srv);
        return r;
    }
    uv_timer_init(loop, &srv->timer);
    uv_idle_init(loop, &srv->again);
    srv->poll.data = srv;
    srv->timer.data = srv;
    srv->again.data = srv;
    srv->open_handles = 3;
    uv_poll_start(&srv->poll, UV_READABLE, on_poll);
    /* The first pass (taking any connection already waiting, arming the
     * first deadline) runs on the loop's first iteration, not here: the
     * caller registers its routes after this returns, and a client retrying
     * against a restarting daemon may already sit in the backlog. Answered
     * now, its request would find no route and get a 404. */
    uv_idle_start(&srv->again, on_again);
    *ret = srv;
    return 0;
}

uint16_t http_server_port(const http_server *srv)
{
    return srv->port;
}

const http_server_stats *http_server_get_stats(const http_server *srv)
{
    return &srv->stats;
}

static void on_handle_closed(uv_handle_t *h)
{
    http_server *srv = h->data;
    if (--srv->open_handles > 0) {
        return;
    }
    for (size_t i = 0; i < srv->n_routes; i++) {
        free(srv->routes[i].path);
    }
    for (size_t i = 0; i < srv->n_secrets; i++) {
        free(srv->secrets[i].prefix);
    }
    free(srv->routes);
    free(srv->tls_cert);
    free(srv->tls_key);
    free(srv);
}

void http_server_close(http_server *srv)
{
    if (!srv || srv->closing) {
        return;
    }
    /* Answer what still waits on a handler, so no connection stays
     * suspended: libmicrohttpd cannot stop with suspended connections. A
     * request read during the passes below (a kept-alive client's next one)
     * is answered 503 at once (dispatch()). */
    srv->stopping = true;
    while (srv->pending) {
        http_request *req = srv->pending;
        if (req->cancel) {
            void (*cancel)(void *) = req->cancel;
            req->cancel = NULL;
            cancel(req->cancel_data);
        }
        http_reply_error(req, 503, "shutting down");
    }
    /* Streams end with what they hold; the passes below send it where the
     * socket takes it, and on_close follows as their requests end. */
    for (http_stream *s = srv->streams; s; s = s->next) {
        http_stream_end(s);
    }
    /* Give the resumed connections their 503 where the socket takes it now
     * (one pass resumes them, the next sends); MHD_stop_daemon() then
     * closes whatever is left. */
    bool resumed = srv->kick;
    for (int i = 0; resumed && i < 2; i++) {
        srv->in_run = true;
        MHD_run(srv->daemon);
        srv->in_run = false;
    }
    srv->closing = true;
    /* libuv drops the epoll fd from its own set here, before
     * libmicrohttpd closes it. */
    uv_close((uv_handle_t *)&srv->poll, on_handle_closed);
    uv_close((uv_handle_t *)&srv->timer, on_handle_closed);
    uv_close((uv_handle_t *)&srv->again, on_handle_closed);
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}

int http_raise_nofile_limit(unsigned connections, uint64_t *ret_limit)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        return negative_errno();
    }
    rlim_t need = (rlim_t)connections + NOFILE_MARGIN;
    if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            return negative_errno();
        }
    }
    if (ret_limit) {
        *ret_limit = (uint64_t)rl.rlim_cur;
    }
    return rl.rlim_cur < need ? -EMFILE : 0;
}

int http_server_register_metrics(const http_server *srv, metrics *m)
{
    static const char *const classes[] = { "class=\"none\"", "class=\"1xx\"", "class=\"2xx\"",
                                           "class=\"3xx\"",  "class=\"4xx\"", "class=\"5xx\"" };
    const http_server_stats *s = &srv->stats;
    int r = 0;
    for (size_t i = 0; i < ARRAY_SIZE(classes) && r == 0; i++) {
        r = metrics_register(m, METRIC_COUNTER, "rackboot_http_requests_total",
                             "HTTP requests by the class of their answer's status "
                             "(none: ended before an answer was sent).",
                             classes[i], &s->requests[i]);
    }
    if (r == 0) {
        r = metrics_register(m, METRIC_COUNTER, "rackboot_http_response_bytes_total",
                             "Body bytes of completed HTTP responses.", NULL, &s->response_bytes);
    }
    if (r == 0) {
        r = metrics_register(m, METRIC_COUNTER, "rackboot_http_errors_total",
                             "HTTP requests that ended before their answer was sent "
                             "(client gone, timeout, malformed request, shutdown).",
                             NULL, &s->errors);
    }
    if (r == 0) {
        r = metrics_register(m, METRIC_GAUGE, "rackboot_http_connections_active",
                             "Open HTTP connections.", NULL, &s->connections_active);
    }
    if (r == 0) {
        r = metrics_register(m, METRIC_COUNTER, "rackboot_http_connections_total",
                             "HTTP connections accepted.", NULL, &s->connections_total);
    }
    if (r == 0) {
        r = metrics_register(m, METRIC_COUNTER, "rackboot_http_header_timeouts_total",
                             "HTTP connections closed because the request line and headers "
                             "did not arrive within header_timeout.",
                             NULL, &s->header_timeouts);
    }
    return r;
}
