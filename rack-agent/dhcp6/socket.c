#include "dhcp6/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "dhcp6/socket-internal.h"
#include "timeutil.h"
#include "net/udp6.h"
#include "util.h"

enum {
    BATCH = 32,
    /* A client message is small; nested Relay-forwards add 34 bytes a hop
     * plus options. Bigger datagrams are not DHCPv6 we answer. */
    RX_BUF = 4096,
    MAX_IFS = 64,
    /* Room for bursts while the loop is busy elsewhere (or waits, see the
     * pacer): ~1,000 small datagrams. The kernel caps it at rmem_max. */
    RCVBUF = 2 * 1024 * 1024,
};

_Static_assert((int)BATCH <= (int)UDP6_SENDQ_MAX, "one read's answers fit one send queue");

struct dhcp6_socket {
    uv_loop_t *loop;
    uv_poll_t poll;
    int fd;
    uint16_t port;
    dhcp6_server *server;
    unsigned ifindexes[MAX_IFS];
    size_t n_ifindexes;
    dhcp6_socket_stats stats;
    log_ratelimit rl;
    dhcp6_pacer pacer;
    /* Fixed receive state for one batch. */
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in6 src[BATCH];
    uint8_t data[BATCH][RX_BUF];
    uint8_t cmsg[BATCH][CMSG_SPACE(sizeof(struct in6_pktinfo))];
    /* The answers to one batch, sent together with one sendmmsg(2):
     * answer k is tx[k], queued as sendq entry k. */
    dhcp6_tx tx[BATCH];
    udp6_sendq sendq;
};

/* ---- the pacer (socket-internal.h) --------------------------------------- */

void dhcp6_pacer_wake(dhcp6_pacer *p, uint64_t now_us)
{
    p->steady = p->idle_since_us != 0 && now_us - p->idle_since_us < p->steady_gap_us;
    p->woke_us = now_us;
    p->round = 0;
}

bool dhcp6_pacer_next(dhcp6_pacer *p, size_t n, size_t batch, uint64_t now_us,
                      uint32_t *ret_wait_us)
{
    p->round++;
    if (p->round >= p->max_rounds || n == 0) {
        return false;
    }
    uint64_t spent = now_us - p->woke_us;
    if (n >= batch) {
        /* More is queued, most likely: read on while the budget lasts. */
        if (spent >= p->budget_us) {
            return false;
        }
        *ret_wait_us = 0;
        return true;
    }
    if (p->wait_us == 0 || !p->steady || n >= p->small || spent + p->wait_us > p->budget_us) {
        return false;
    }
    *ret_wait_us = p->wait_us;
    return true;
}

void dhcp6_pacer_idle(dhcp6_pacer *p, uint64_t now_us)
{
    p->idle_since_us = now_us;
}

/* ---- the socket ----------------------------------------------------------- */

static const char *const type_names[] = {
    [1] = "solicit",
    [2] = "advertise",
    [3] = "request",
    [4] = "confirm",
    [5] = "renew",
    [6] = "rebind",
    [7] = "reply",
    [8] = "release",
    [9] = "decline",
    [10] = "reconfigure",
    [11] = "information-request",
    [12] = "relay-forw",
    [13] = "relay-repl",
};

static const char *type_name(unsigned t)
{
    return t < ARRAY_SIZE(type_names) && type_names[t] ? type_names[t] : "unknown";
}

static bool served(const dhcp6_socket *s, unsigned ifindex)
{
    for (size_t i = 0; i < s->n_ifindexes; i++) {
        if (s->ifindexes[i] == ifindex) {
            return true;
        }
    }
    return false;
}

/* Queues the answer in `tx` (the send queue's next slot) for this batch's
 * sendmmsg(2). */
static void queue_answer(dhcp6_socket *s, const dhcp6_tx *tx, const struct in6_addr *req_dst,
                         bool req_multicast)
{
    struct sockaddr_in6 dst = { .sin6_family = AF_INET6,
                                .sin6_port = htons(tx->dst_port),
                                .sin6_addr = tx->dst };
    bool scoped = IN6_IS_ADDR_LINKLOCAL(&tx->dst) || IN6_IS_ADDR_MULTICAST(&tx->dst);
    if (scoped) {
        dst.sin6_scope_id = (uint32_t)tx->ifindex;
    }
    /* Out the interface the request came in on for link-scoped answers;
     * from the address the request was sent to when it was unicast (a relay
     * expects the answer from where it sent), else the kernel's choice. */
    int r = udp6_sendq_add(&s->sendq, &dst, tx->buf, tx->len, req_multicast ? NULL : req_dst,
                           scoped ? (unsigned)tx->ifindex : 0);
    /* One answer per datagram read, and the queue holds a whole batch. */
    RB_ASSERT(r == 0);
}

static void send_answers(dhcp6_socket *s)
{
    size_t queued = s->sendq.n;
    if (queued == 0) {
        return;
    }
    int err = 0;
    size_t sent = udp6_sendq_flush(s->fd, &s->sendq, &err);
    s->stats.flushes++;
    s->stats.sent += sent;
    if (sent < queued) {
        s->stats.send_errors += queued - sent;
        if (log_ratelimit_ok(&s->rl, uv_now(s->loop), NULL)) {
            log_warn("dhcp6 send failed unsent=%zu of=%zu err=%s", queued - sent, queued,
                     errstr(err));
        }
    }
}

static void handle_one(dhcp6_socket *s, size_t i, uint64_t now)
{
    struct msghdr *mh = &s->msgs[i].msg_hdr;
    size_t len = s->msgs[i].msg_len;
    if (mh->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        s->stats.truncated++;
        return;
    }
    struct in6_pktinfo pi;
    if (!udp6_pktinfo(mh, &pi) || len == 0) {
        s->stats.truncated++;
        return;
    }
    const uint8_t *data = s->data[i];
    bool relayed = data[0] == DHCP6_RELAY_FORW;
    if (!relayed && !served(s, pi.ipi6_ifindex)) {
        s->stats.foreign_ifindex++;
        return;
    }
    dhcp6_rx_info rx = { .src = s->src[i].sin6_addr,
                         .src_port = ntohs(s->src[i].sin6_port),
                         .ifindex = (int)pi.ipi6_ifindex,
                         .dst_multicast = IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr) };
    const dhcp6_server_stats *st = dhcp6_server_get_stats(s->server);
    /* The counters are copied only for the debug line that needs them. */
    bool debug = log_enabled(LOG_LEVEL_DEBUG);
    uint64_t before[ARRAY_SIZE(st->by_type)] = { 0 };
    uint64_t ignored = 0;
    if (debug) {
        memcpy(before, st->by_type, sizeof(before));
        ignored = st->ignored_no_intent;
    }
    dhcp6_tx *tx = &s->tx[s->sendq.n];
    int answered = dhcp6_server_handle(s->server, data, len, &rx, now, tx);
    if (debug) {
        /* The server counts the inner message type; the change tells which
         * one this was, relayed or not. */
        unsigned type = data[0];
        for (size_t t = 0; t < ARRAY_SIZE(before); t++) {
            if (st->by_type[t] != before[t]) {
                type = (unsigned)t;
            }
        }
        char src[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &rx.src, src, sizeof(src));
        if (st->ignored_no_intent != ignored) {
            log_debug("dhcp6 ignored type=%s src=%s ifindex=%d relayed=%s reason=no-intent "
                      "ignored_total=%" PRIu64,
                      type_name(type), src, rx.ifindex, relayed ? "yes" : "no",
                      st->ignored_no_intent);
        } else {
            /* In a Relay-reply the answer's own type sits after the
             * headers; the first byte says 13 then. */
            log_debug("dhcp6 rx type=%s src=%s ifindex=%d relayed=%s answer=%s len=%zu",
                      type_name(type), src, rx.ifindex, relayed ? "yes" : "no",
                      answered == 1 ? type_name(tx->buf[0]) : "none", len);
        }
    }
    if (answered == 1) {
        queue_answer(s, tx, &pi.ipi6_addr, rx.dst_multicast);
    }
}

/* Reads one batch into the fixed buffers: the count, or a negative errno
 * (-EAGAIN when there was nothing). */
static int read_batch(dhcp6_socket *s)
{
    for (size_t i = 0; i < BATCH; i++) {
        struct msghdr *mh = &s->msgs[i].msg_hdr;
        s->iov[i] = (struct iovec){ .iov_base = s->data[i], .iov_len = RX_BUF };
        *mh = (struct msghdr){ .msg_name = &s->src[i],
                               .msg_namelen = sizeof(s->src[i]),
                               .msg_iov = &s->iov[i],
                               .msg_iovlen = 1,
                               .msg_control = s->cmsg[i],
                               .msg_controllen = sizeof(s->cmsg[i]) };
        s->msgs[i].msg_len = 0;
    }
    int n;
    do {
        n = recvmmsg(s->fd, s->msgs, BATCH, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? negative_errno() : n;
}

static void wait_us(uint32_t us)
{
    struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)us * 1000 };
    /* An interrupted wait just reads a little earlier. */
    (void)clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)events;
    dhcp6_socket *s = h->data;
    if (status < 0) {
        log_error("dhcp6 socket poll failed err=%s", uv_strerror(status));
        return;
    }
    /* The clocks are read once per batch (vDSO, no syscall): the datagrams
     * of a batch arrived together. The pacer bounds the work per wake-up so
     * other handles get their turn. */
    uint64_t now_us = now_monotonic_us();
    dhcp6_pacer_wake(&s->pacer, now_us);
    for (;;) {
        int n = read_batch(s);
        if (n < 0) {
            if (n != -EAGAIN && log_ratelimit_ok(&s->rl, uv_now(s->loop), NULL)) {
                log_warn("dhcp6 recvmmsg failed err=%s", errstr(n));
            }
            n = 0;
        } else {
            s->stats.batches++;
            s->stats.received += (uint64_t)n;
            uint64_t now = (uint64_t)time(NULL);
            for (int i = 0; i < n; i++) {
                handle_one(s, (size_t)i, now);
            }
            send_answers(s);
        }
        now_us = now_monotonic_us();
        uint32_t wait = 0;
        if (!dhcp6_pacer_next(&s->pacer, (size_t)n, BATCH, now_us, &wait)) {
            break;
        }
        if (wait > 0) {
            s->stats.waits++;
            wait_us(wait);
        }
    }
    dhcp6_pacer_idle(&s->pacer, now_us);
}

int dhcp6_socket_open(uv_loop_t *loop, const dhcp6_socket_config *cfg, dhcp6_server *server,
                      dhcp6_socket **ret)
{
    if (cfg->n_ifindexes > MAX_IFS) {
        return -E2BIG;
    }
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
                               .sin6_port = htons(cfg->port),
                               .sin6_addr = in6addr_any };
    _cleanup_close_ int fd = -1;
    uint16_t port;
    int r = udp6_open(&sa, true, &fd, &port);
    if (r < 0) {
        return r;
    }
    /* Best effort: without it bursts beyond the default buffer are dropped
     * and the clients retransmit. */
    int rcvbuf = RCVBUF;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    /* Answers to link-local clients must not be looped back to us. */
    int off = 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &off, sizeof(off)) < 0) {
        return negative_errno();
    }
    /* RFC 8415 §7.1: All_DHCP_Relay_Agents_and_Servers. */
    struct ipv6_mreq mreq = { 0 };
    inet_pton(AF_INET6, "ff02::1:2", &mreq.ipv6mr_multiaddr);
    for (size_t i = 0; i < cfg->n_ifindexes; i++) {
        mreq.ipv6mr_interface = cfg->ifindexes[i];
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof(mreq)) < 0) {
            return negative_errno();
        }
    }
    dhcp6_socket *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->loop = loop;
    s->server = server;
    s->port = port;
    s->rl = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 10);
    s->pacer = DHCP6_PACER_DEFAULT;
    if (cfg->no_wait) {
        s->pacer.wait_us = 0;
    }
    if (cfg->n_ifindexes > 0) {
        memcpy(s->ifindexes, cfg->ifindexes, cfg->n_ifindexes * sizeof(unsigned));
    }
    s->n_ifindexes = cfg->n_ifindexes;
    r = uv_poll_init(loop, &s->poll, fd);
    if (r < 0) {
        free(s);
        return r;
    }
    s->fd = TAKE_FD(fd);
    s->poll.data = s;
    r = uv_poll_start(&s->poll, UV_READABLE, on_readable);
    if (r < 0) {
        dhcp6_socket_close(s);
        return r;
    }
    *ret = s;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    dhcp6_socket *s = h->data;
    close(s->fd);
    free(s);
}

void dhcp6_socket_close(dhcp6_socket *s)
{
    if (s) {
        uv_close((uv_handle_t *)&s->poll, on_closed);
    }
}

const dhcp6_socket_stats *dhcp6_socket_get_stats(const dhcp6_socket *s)
{
    return &s->stats;
}

uint16_t dhcp6_socket_port(const dhcp6_socket *s)
{
    return s->port;
}
