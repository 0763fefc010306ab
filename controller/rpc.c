#include "rpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <nng/protocol/reqrep0/rep.h>
#include <nng/transport/ipc/ipc.h>

#include "errmsg.h"
#include "tls.h"
#include "util.h"

/* Contexts kept waiting for a request. More only cost memory; fewer than
 * the peers sending at once only delays them by a loop iteration. */
#define RECEIVERS 16
/* A reply that cannot be handed to the connection in this long is dropped
 * (the peer stopped reading). */
#define SEND_TIMEOUT_MS 10000
#define MAX_LISTENERS   4

typedef enum call_state {
    CALL_RECEIVING,
    CALL_HELD, /* with the handler */
    CALL_SENDING,
} call_state;

struct rpc_call {
    rpc_server *srv;
    nng_ctx ctx;
    nng_aio *aio;
    nng_msg *req;
    call_state state;
    rpc_call *next_done;           /* completion queue, under srv->lock */
    rpc_call *prev_all, *next_all; /* every call, loop thread only */
};

typedef struct pipe_event {
    uint32_t pipe_id;
    struct pipe_event *next;
} pipe_event;

struct rpc_server {
    uv_loop_t *loop;
    uv_async_t wake;
    nng_socket sock;
    rpc_handlers h;
    void *userdata;
    nng_listener listeners[MAX_LISTENERS];
    nng_tls_config *listener_tls[MAX_LISTENERS]; /* what each was given; NULL: no TLS */
    size_t n_listeners;
    rpc_server *reg_prev, *reg_next; /* every server, for rpc_tls_config_replace */
    int bound_port;

    /* Filled by nng threads, drained by the loop. */
    pthread_mutex_t lock;
    rpc_call *done_head, *done_tail;
    pipe_event *pipes_head;
    bool closing;

    /* Loop thread only. */
    unsigned receiving;
    rpc_call *all;
};

/* Every live server, so that a new TLS configuration reaches the listeners
 * of all of them (rpc_tls_config_replace). */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static rpc_server *registry;

static void registry_add(rpc_server *s)
{
    pthread_mutex_lock(&registry_lock);
    s->reg_next = registry;
    if (registry) {
        registry->reg_prev = s;
    }
    registry = s;
    pthread_mutex_unlock(&registry_lock);
}

static void registry_remove(rpc_server *s)
{
    pthread_mutex_lock(&registry_lock);
    if (s->reg_prev) {
        s->reg_prev->reg_next = s->reg_next;
    } else if (registry == s) {
        registry = s->reg_next;
    }
    if (s->reg_next) {
        s->reg_next->reg_prev = s->reg_prev;
    }
    s->reg_prev = s->reg_next = NULL;
    pthread_mutex_unlock(&registry_lock);
}

static void on_aio(void *arg)
{
    rpc_call *c = arg;
    rpc_server *s = c->srv;
    pthread_mutex_lock(&s->lock);
    if (s->closing) {
        /* rpc_server_free() frees every call through s->all while nng
         * aborts them: the queue would link freed calls. */
        pthread_mutex_unlock(&s->lock);
        return;
    }
    c->next_done = NULL;
    if (s->done_tail) {
        s->done_tail->next_done = c;
    } else {
        s->done_head = c;
    }
    s->done_tail = c;
    pthread_mutex_unlock(&s->lock);
    uv_async_send(&s->wake);
}

static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    rpc_server *s = arg;
    if (ev != NNG_PIPE_EV_REM_POST) {
        return;
    }
    pipe_event *pe = malloc(sizeof(*pe));
    if (!pe) {
        return; /* the identity stays until the id is reused; ids are 31-bit random */
    }
    pe->pipe_id = (uint32_t)nng_pipe_id(p);
    pthread_mutex_lock(&s->lock);
    pe->next = s->pipes_head;
    s->pipes_head = pe;
    bool wake = !s->closing;
    pthread_mutex_unlock(&s->lock);
    if (wake) {
        uv_async_send(&s->wake);
    }
}

static void call_free(rpc_call *c)
{
    rpc_server *s = c->srv;
    if (c->state == CALL_SENDING) {
        nng_aio_stop(c->aio);
        nng_msg *unsent = nng_aio_get_msg(c->aio);
        if (unsent && nng_aio_result(c->aio) != 0) {
            nng_msg_free(unsent); /* a failed send leaves the message with us */
        }
    }
    nng_aio_free(c->aio); /* waits for a running callback */
    nng_ctx_close(c->ctx);
    if (c->req) {
        nng_msg_free(c->req);
    }
    if (c->prev_all) {
        c->prev_all->next_all = c->next_all;
    } else {
        s->all = c->next_all;
    }
    if (c->next_all) {
        c->next_all->prev_all = c->prev_all;
    }
    free(c);
}

static void call_receive(rpc_call *c)
{
    c->state = CALL_RECEIVING;
    c->srv->receiving++;
    nng_aio_set_timeout(c->aio, NNG_DURATION_INFINITE);
    nng_ctx_recv(c->ctx, c->aio);
}

static int call_new(rpc_server *s)
{
    rpc_call *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    c->srv = s;
    int rv = nng_ctx_open(&c->ctx, s->sock);
    if (rv != 0) {
        free(c);
        return rb_nng_errno(rv);
    }
    rv = nng_aio_alloc(&c->aio, on_aio, c);
    if (rv != 0) {
        nng_ctx_close(c->ctx);
        free(c);
        return rb_nng_errno(rv);
    }
    c->next_all = s->all;
    if (s->all) {
        s->all->prev_all = c;
    }
    s->all = c;
    call_receive(c);
    return 0;
}

static void ensure_receivers(rpc_server *s)
{
    while (s->receiving < RECEIVERS && call_new(s) == 0) {
    }
}

/* A call the handler is done with: receive again on its context, or close
 * it when enough others are receiving. */
static void call_recycle(rpc_call *c)
{
    rpc_server *s = c->srv;
    if (c->req) {
        nng_msg_free(c->req);
        c->req = NULL;
    }
    if (s->receiving < RECEIVERS) {
        call_receive(c);
    } else {
        call_free(c);
    }
}

static void on_wake(uv_async_t *handle)
{
    rpc_server *s = handle->data;
    pthread_mutex_lock(&s->lock);
    rpc_call *done = s->done_head;
    s->done_head = s->done_tail = NULL;
    pipe_event *pipes = s->pipes_head;
    s->pipes_head = NULL;
    pthread_mutex_unlock(&s->lock);

    /* Requests first, then closed pipes: a hello and its connection's close
     * drained together must leave no identity (or parked call) behind. */
    while (done) {
        rpc_call *c = done;
        done = c->next_done;
        int rv = nng_aio_result(c->aio);
        if (c->state == CALL_RECEIVING) {
            s->receiving--;
            if (rv == 0) {
                c->req = nng_aio_get_msg(c->aio);
                c->state = CALL_HELD;
                ensure_receivers(s);
                s->h.request(s->userdata, c);
            } else if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
                call_free(c);
            } else {
                call_recycle(c);
            }
        } else if (c->state == CALL_SENDING) {
            if (rv != 0) {
                nng_msg_free(nng_aio_get_msg(c->aio)); /* not sent: still ours */
                nng_aio_set_msg(c->aio, NULL);
            }
            c->state = CALL_HELD; /* the send is over, whatever call_free sees */
            if (rv == NNG_ECLOSED) {
                call_free(c);
            } else {
                call_recycle(c);
            }
        }
    }
    while (pipes) {
        pipe_event *next = pipes->next;
        if (s->h.pipe_closed) {
            s->h.pipe_closed(s->userdata, pipes->pipe_id);
        }
        free(pipes);
        pipes = next;
    }
}

int rpc_server_new(uv_loop_t *loop, const rpc_handlers *h, void *userdata, size_t max_message,
                   rpc_server **ret)
{
    rpc_server *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->loop = loop;
    s->h = *h;
    s->userdata = userdata;
    pthread_mutex_init(&s->lock, NULL);
    int r = uv_async_init(loop, &s->wake, on_wake);
    if (r < 0) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return r;
    }
    s->wake.data = s;
    registry_add(s);
    int rv = nng_rep0_open(&s->sock);
    if (rv != 0) {
        rpc_server_free(s);
        return rb_nng_errno(rv);
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, max_message);
    nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, on_pipe, s);
    ensure_receivers(s);
    if (s->receiving == 0) {
        rpc_server_free(s);
        return -ENOMEM;
    }
    *ret = s;
    return 0;
}

static void on_closed(uv_handle_t *handle)
{
    rpc_server *s = handle->data;
    pthread_mutex_destroy(&s->lock);
    free(s);
}

rpc_server *rpc_server_free(rpc_server *s)
{
    if (!s) {
        return NULL;
    }
    registry_remove(s);
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    pthread_mutex_unlock(&s->lock);
    nng_close(s->sock); /* completes every aio with NNG_ECLOSED */
    while (s->all) {
        call_free(s->all);
    }
    pthread_mutex_lock(&s->lock);
    s->done_head = s->done_tail = NULL; /* those calls are freed */
    while (s->pipes_head) {
        pipe_event *next = s->pipes_head->next;
        free(s->pipes_head);
        s->pipes_head = next;
    }
    pthread_mutex_unlock(&s->lock);
    /* The loop frees the server once the async handle is closed. */
    uv_close((uv_handle_t *)&s->wake, on_closed);
    return NULL;
}

int rpc_server_listen(rpc_server *s, const char *url, nng_tls_config *tls, int ipc_mode,
                      char **ret_error)
{
    if (s->n_listeners == MAX_LISTENERS) {
        return errmsg_fail(ret_error, -ENOSPC, "too many listeners");
    }
    nng_listener l;
    int rv = nng_listener_create(&l, s->sock, url);
    if (rv != 0) {
        return errmsg_fail(ret_error, rb_nng_errno(rv), "%s: %s", url, nng_strerror(rv));
    }
    if (tls) {
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tls);
    }
    if (rv == 0 && strncmp(url, "ipc://", 6) == 0 && ipc_mode) {
        rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, ipc_mode);
    }
    if (rv == 0) {
        rv = nng_listener_start(l, 0);
    }
    if (rv != 0) {
        nng_listener_close(l);
        return errmsg_fail(ret_error, rb_nng_errno(rv), "cannot listen on %s: %s", url,
                           nng_strerror(rv));
    }
    if (strncmp(url, "tls+tcp://", 10) == 0) {
        int port = 0;
        if (nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
            s->bound_port = port;
        }
    }
    s->listener_tls[s->n_listeners] = tls;
    s->listeners[s->n_listeners++] = l;
    return 0;
}

int rpc_server_bound_port(const rpc_server *s)
{
    return s->bound_port;
}

/* Swapping the TLS configuration of a running listener (nng 1.5.2, read in
 * src/supplemental/tls/tls_common.c and src/sp/transport/tls/tls.c):
 *
 *  - NNG_OPT_TLS_CONFIG may be set on a started tls+tcp listener: the TLS
 *    stream listener swaps its pointer under its lock and holds the new
 *    configuration. A configuration in use cannot be changed instead (its
 *    ca_chain call fails with NNG_EBUSY, and mbedTLS reads it unlocked from
 *    every handshake), so a reload always builds a new one.
 *  - Closing the listener and listening again is not an option: closing a
 *    listener closes every pipe it accepted (listener_shutdown_impl in
 *    src/core/socket.c), i.e. every agent, and the port is not free while
 *    the old listener holds it.
 *  - Connections already up keep the configuration they were accepted with
 *    (TLS verified the peer once, at their handshake): a revoked peer's
 *    live connections are closed by the caller (rpc_server_close_pipe).
 *  - The transport keeps exactly one accept pending, and its connection
 *    object took the configuration when that accept started, i.e. before
 *    the swap. The next peer would get the old configuration (an expired
 *    CRL: refused; a revoked certificate: accepted). One throw-away TCP
 *    connection of our own completes that accept now; the accept started
 *    after it takes the new configuration. Peers already waiting in the
 *    kernel's accept queue connected before the reload and may still get
 *    the old one. */
static void flush_pending_accept(nng_listener l)
{
    nng_sockaddr sa;
    if (nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa) != 0) {
        return;
    }
    struct sockaddr_storage ss = { 0 };
    socklen_t len;
    if (sa.s_family == NNG_AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = sa.s_in.sa_port; /* both in network order */
        in->sin_addr.s_addr = sa.s_in.sa_addr ? sa.s_in.sa_addr : htonl(INADDR_LOOPBACK);
        len = sizeof(*in);
    } else if (sa.s_family == NNG_AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = sa.s_in6.sa_port;
        memcpy(&in6->sin6_addr, sa.s_in6.sa_addr, 16);
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) {
            in6->sin6_addr = in6addr_loopback;
        }
        in6->sin6_scope_id = sa.s_in6.sa_scope;
        len = sizeof(*in6);
    } else {
        return;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    /* Local and listening: connect() returns at once unless the backlog is
     * full, and then the loop must not wait long for it. */
    struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    (void)connect(fd, (struct sockaddr *)&ss, len);
    close(fd);
}

int rpc_tls_config_replace(nng_tls_config *old, nng_tls_config *tls)
{
    if (!old || !tls) {
        return -EINVAL;
    }
    int n = 0, r = 0;
    pthread_mutex_lock(&registry_lock);
    for (rpc_server *s = registry; s; s = s->reg_next) {
        for (size_t i = 0; i < s->n_listeners; i++) {
            if (s->listener_tls[i] != old) {
                continue;
            }
            int rv = nng_listener_set_ptr(s->listeners[i], NNG_OPT_TLS_CONFIG, tls);
            if (rv != 0) {
                r = rb_nng_errno(rv);
                continue;
            }
            s->listener_tls[i] = tls;
            flush_pending_accept(s->listeners[i]);
            n++;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return r < 0 ? r : n;
}

void rpc_server_close_pipe(rpc_server *s, uint32_t pipe_id)
{
    nng_pipe p = NNG_PIPE_INITIALIZER;
    p.id = pipe_id;
    /* Only our own: pipe ids are process-wide. */
    if (nng_socket_id(nng_pipe_socket(p)) == nng_socket_id(s->sock)) {
        nng_pipe_close(p);
    }
}

const uint8_t *rpc_call_body(const rpc_call *c, size_t *ret_len)
{
    *ret_len = nng_msg_len(c->req);
    return nng_msg_body(c->req);
}

uint32_t rpc_call_pipe(const rpc_call *c)
{
    return (uint32_t)nng_pipe_id(nng_msg_get_pipe(c->req));
}

void rpc_call_reply(rpc_call *c, const void *buf, size_t len)
{
    RB_ASSERT(c->state == CALL_HELD);
    nng_msg *m = NULL;
    if (nng_msg_alloc(&m, len) != 0) {
        rpc_call_drop(c); /* the peer's request times out and it asks again */
        return;
    }
    memcpy(nng_msg_body(m), buf, len);
    nng_msg_free(c->req);
    c->req = NULL;
    c->state = CALL_SENDING;
    nng_aio_set_msg(c->aio, m);
    nng_aio_set_timeout(c->aio, SEND_TIMEOUT_MS);
    nng_ctx_send(c->ctx, c->aio);
}

void rpc_call_drop(rpc_call *c)
{
    RB_ASSERT(c->state == CALL_HELD);
    call_recycle(c);
}
