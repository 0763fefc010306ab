#include "tftp/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net/udp6.h"
#include "tftp/transfer.h"
#include "tftp/wire.h"
#include "timeutil.h"
#include "util.h"

enum {
    /* Requests are at most 512 bytes (RFC 2347); a bigger datagram shows up
     * as truncated and is malformed. */
    REQ_BUF = TFTP_MAX_REQUEST + 1,
    RX_BUF = TFTP_MAX_ERROR_PACKET + 1,
    ROUNDS = 64, /* datagrams per wakeup, so other handles get their turn */
    /* Datagrams one recvmmsg(2) on a transfer socket takes: ACKs come one
     * per window, more are strays or duplicates. */
    RX_BATCH = 8,
    /* Send buffer asked for windowed transfers (the kernel caps it at
     * net.core.wmem_max): a whole window must fit, or sendmmsg stops short
     * and the rest waits for writability. */
    SNDBUF_MAX = 4 << 20,
    /* UDP GSO: segments per message (the kernel's UDP_MAX_SEGMENTS) and
     * bytes per message (an IPv6 payload without jumbograms). */
    GSO_MAX_SEGS = 64,
    GSO_MAX_BYTES = 65000,
};

typedef enum phase {
    PHASE_OPENING, /* files_open() pending */
    PHASE_ACTIVE,
    PHASE_CLOSING,
} phase;

typedef struct session session;

struct tftp_server {
    uv_loop_t *loop;
    files *files;
    tftp_server_config cfg;
    int fd;
    uint16_t port;
    uv_poll_t poll;
    bool closing;
    unsigned handles; /* open libuv handles: the listen poll plus 2 per session */
    session *sessions;
    tftp_server_stats stats;
    tftp_observer_fn observer;
    void *observer_data;
    log_ratelimit rl;
    uint8_t req_buf[REQ_BUF];
    uint8_t rx_buf[RX_BATCH][RX_BUF];
    /* One batch of a transfer's packets on its way into sendmmsg(2); all of
     * it goes out (or stays held in the session) before the loop runs
     * anything else, so the sessions share it. */
    struct mmsghdr tx_msgs[TFTP_BATCH_MAX];
    struct iovec tx_iov[2 * TFTP_BATCH_MAX];
    union {
        struct cmsghdr align;
        uint8_t buf[CMSG_SPACE(sizeof(uint16_t))];
    } tx_cmsg[TFTP_BATCH_MAX];
    uint8_t tx_count[TFTP_BATCH_MAX]; /* packets in each message */
};

struct session {
    tftp_server *server;
    session *prev, *next;
    phase phase;
    /* files_open() may answer before it returns: then the result waits
     * here until it has. */
    bool in_open, open_done;
    int open_r;
    files_result open_res;
    files_request *req;
    tftp_request rrq;
    struct sockaddr_in6 client;
    struct in6_addr local;
    unsigned ifindex;
    uint32_t path_blksize;
    int sock;
    int file_fd;
    uint64_t size;
    uv_poll_t poll;
    uv_timer_t timer;
    unsigned handles;
    int poll_events;
    tftp_transfer *xfer;
    tftp_params params;
    /* The timer runs at armed_deadline (0: stopped). It is moved earlier
     * when the transfer's deadline comes before it, but not later on every
     * ACK: when it fires early it is just armed again (no timer churn per
     * block). */
    uint64_t armed_deadline;
    uint64_t start_ms;
    /* Packets of the last batch the socket would not take yet (EAGAIN),
     * sent when it is writable: out[sent..n_out). */
    tftp_out out[TFTP_BATCH_MAX];
    size_t n_out, sent;
    bool gso; /* send runs of DATA as one UDP GSO message */
    uint64_t reported_bytes, reported_retransmits;
    bool started; /* the observer heard TFTP_EVENT_STARTED */
};

static const char *fmt_client(const struct sockaddr_in6 *sa, char *buf, size_t size)
{
    char a[INET6_ADDRSTRLEN] = "?";
    if (IN6_IS_ADDR_V4MAPPED(&sa->sin6_addr)) {
        inet_ntop(AF_INET, &sa->sin6_addr.s6_addr[12], a, sizeof(a));
        snprintf(buf, size, "%s:%u", a, ntohs(sa->sin6_port));
    } else {
        inet_ntop(AF_INET6, &sa->sin6_addr, a, sizeof(a));
        snprintf(buf, size, "[%s]:%u", a, ntohs(sa->sin6_port));
    }
    return buf;
}

static bool log_ok(tftp_server *s)
{
    return log_ratelimit_ok(&s->rl, now_monotonic_ms(), NULL);
}

/* An ERROR for a request, from the listening socket and from the address
 * the request was sent to. */
static void reply_error(tftp_server *s, const struct sockaddr_in6 *to, const struct in6_addr *local,
                        unsigned ifindex, uint16_t code, const char *msg)
{
    uint8_t buf[TFTP_MAX_ERROR_PACKET];
    int len = tftp_build_error(code, msg, buf, sizeof(buf));
    RB_ASSERT(len > 0);
    ssize_t n = udp6_send(s->fd, to, buf, (size_t)len, local, ifindex);
    if (n < 0) {
        s->stats.send_errors++;
    } else {
        s->stats.errors_sent++;
    }
}

/* The largest blksize that fits the interface's MTU unfragmented (RFC 2348
 * with IPv6: MTU - 40 - 8 - 4), 0 when unknown. */
static uint32_t path_blksize(tftp_server *s, unsigned ifindex, bool v4)
{
    char name[IF_NAMESIZE];
    if (ifindex == 0 || !if_indextoname(ifindex, name)) {
        return 0;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, name,
           sizeof(ifr.ifr_name) < sizeof(name) ? sizeof(ifr.ifr_name) : sizeof(name));
    if (ioctl(s->fd, SIOCGIFMTU, &ifr) < 0 || ifr.ifr_mtu <= 0) {
        return 0;
    }
    int overhead = v4 ? 20 + 8 + 4 : 40 + 8 + 4;
    int b = ifr.ifr_mtu - overhead;
    if (b < (int)TFTP_MIN_BLKSIZE) {
        return 0;
    }
    return b > (int)TFTP_MAX_BLKSIZE ? TFTP_MAX_BLKSIZE : (uint32_t)b;
}

static void session_unlink_free(session *ss)
{
    tftp_server *s = ss->server;
    if (ss->prev) {
        ss->prev->next = ss->next;
    } else {
        s->sessions = ss->next;
    }
    if (ss->next) {
        ss->next->prev = ss->prev;
    }
    s->stats.active--;
    tftp_transfer_free(ss->xfer);
    if (ss->file_fd >= 0) {
        close(ss->file_fd);
    }
    free(ss);
}

static void maybe_free_server(tftp_server *s)
{
    if (s->closing && s->handles == 0 && !s->sessions) {
        free(s);
    }
}

static void on_session_handle_closed(uv_handle_t *h)
{
    session *ss = h->data;
    tftp_server *s = ss->server;
    s->handles--;
    if (--ss->handles == 0) {
        session_unlink_free(ss);
        maybe_free_server(s);
    }
}

/* Ends a session in any phase: cancels a pending open, closes its socket
 * and handles; the memory goes in the close callbacks. */
static void session_end(session *ss)
{
    if (ss->phase == PHASE_CLOSING) {
        return;
    }
    phase was = ss->phase;
    ss->phase = PHASE_CLOSING;
    if (was == PHASE_OPENING) {
        if (ss->req) {
            files_request_cancel(ss->req);
            ss->req = NULL;
        }
        tftp_server *s = ss->server;
        session_unlink_free(ss);
        maybe_free_server(s);
        return;
    }
    uv_poll_stop(&ss->poll);
    uv_timer_stop(&ss->timer);
    close(ss->sock);
    ss->sock = -1;
    uv_close((uv_handle_t *)&ss->poll, on_session_handle_closed);
    uv_close((uv_handle_t *)&ss->timer, on_session_handle_closed);
}

static void account(session *ss)
{
    const tftp_transfer_stats *st = tftp_transfer_get_stats(ss->xfer);
    tftp_server_stats *g = &ss->server->stats;
    if (!ss->started && st->bytes_sent > 0) {
        ss->started = true;
        if (ss->server->observer) {
            ss->server->observer(ss->server->observer_data, TFTP_EVENT_STARTED, &ss->client,
                                 ss->rrq.filename);
        }
    }
    g->bytes_sent += st->bytes_sent - ss->reported_bytes;
    g->retransmits += st->retransmits - ss->reported_retransmits;
    ss->reported_bytes = st->bytes_sent;
    ss->reported_retransmits = st->retransmits;
}

static void session_finished(session *ss)
{
    tftp_server *s = ss->server;
    account(ss);
    const tftp_transfer_stats *st = tftp_transfer_get_stats(ss->xfer);
    tftp_transfer_state state = tftp_transfer_get_state(ss->xfer);
    char client[INET6_ADDRSTRLEN + 16], file[300];
    fmt_client(&ss->client, client, sizeof(client));
    log_quote(file, sizeof(file), ss->rrq.filename);
    uint64_t ms = uv_now(s->loop) - ss->start_ms;
    switch (state) {
    case TFTP_XFER_DONE:
        s->stats.transfers_ok++;
        if (s->observer) {
            s->observer(s->observer_data, TFTP_EVENT_SENT, &ss->client, ss->rrq.filename);
        }
        log_info("tftp done file=%s client=%s bytes=%" PRIu64 " blksize=%u windowsize=%u "
                 "ms=%" PRIu64 " retransmits=%" PRIu64,
                 file, client, ss->size, ss->params.blksize, ss->params.windowsize, ms,
                 st->retransmits);
        break;
    case TFTP_XFER_ABORTED:
        s->stats.transfers_aborted++;
        log_info("tftp aborted by client file=%s client=%s error=%u message=\"%s\" ms=%" PRIu64,
                 file, client, st->client_error_code, st->client_error_msg, ms);
        break;
    default:
        s->stats.transfers_failed++;
        if (log_ok(s)) {
            log_warn("tftp failed file=%s client=%s reason=%s bytes_acked=%" PRIu64 " of=%" PRIu64
                     " retransmits=%" PRIu64 " ms=%" PRIu64,
                     file, client,
                     tftp_transfer_reason_to_string(tftp_transfer_get_reason(ss->xfer)),
                     st->bytes_acked, ss->size, st->retransmits, ms);
        }
        break;
    }
    session_end(ss);
}

static void on_session_io(uv_poll_t *h, int status, int events);
static void on_session_timer(uv_timer_t *t);

static bool is_data(const tftp_out *o)
{
    return o->head_len == TFTP_HEADER_LEN && o->head[1] == TFTP_DATA;
}

/* Sends out[sent..n_out) with as few sendmmsg(2) calls as the socket takes.
 * With UDP GSO (UDP_SEGMENT, Linux 4.18) a run of full DATA blocks (the
 * last of the run may be short) is one message the kernel cuts into
 * datagrams of 4 + blksize bytes: a window crosses the network stack as a
 * handful of packets instead of one per block. Where the kernel refuses
 * that (EINVAL, EIO: a blksize over the path MTU, no offload), the session
 * falls back to a datagram per message. Returns false when the send queue
 * is full (the rest stays held). */
static bool send_held(session *ss)
{
    tftp_server *s = ss->server;
    size_t seg = TFTP_HEADER_LEN + ss->params.blksize;
    size_t max_segs = GSO_MAX_BYTES / seg;
    if (max_segs > GSO_MAX_SEGS) {
        max_segs = GSO_MAX_SEGS;
    }
    while (ss->sent < ss->n_out) {
        size_t nmsg = 0, niov = 0;
        for (size_t i = ss->sent; i < ss->n_out;) {
            const tftp_out *o = &ss->out[i];
            size_t count = 1;
            if (ss->gso && is_data(o) && o->body_len == ss->params.blksize) {
                while (i + count < ss->n_out && count < max_segs && is_data(&ss->out[i + count])) {
                    count++;
                    if (ss->out[i + count - 1].body_len != ss->params.blksize) {
                        break; /* the short last block ends the run */
                    }
                }
            }
            struct msghdr *mh = &s->tx_msgs[nmsg].msg_hdr;
            *mh = (struct msghdr){ .msg_name = &ss->client,
                                   .msg_namelen = sizeof(ss->client),
                                   .msg_iov = &s->tx_iov[niov] };
            for (size_t c = 0; c < count; c++) {
                const tftp_out *p = &ss->out[i + c];
                s->tx_iov[niov++] = (struct iovec){ .iov_base = (void *)(uintptr_t)p->head,
                                                    .iov_len = p->head_len };
                if (p->body_len) {
                    s->tx_iov[niov++] = (struct iovec){ .iov_base = (void *)(uintptr_t)p->body,
                                                        .iov_len = p->body_len };
                }
            }
            mh->msg_iovlen = (size_t)(&s->tx_iov[niov] - mh->msg_iov);
            if (count > 1) {
                mh->msg_control = s->tx_cmsg[nmsg].buf;
                mh->msg_controllen = sizeof(s->tx_cmsg[nmsg].buf);
                struct cmsghdr *cm = CMSG_FIRSTHDR(mh);
                cm->cmsg_level = SOL_UDP;
                cm->cmsg_type = UDP_SEGMENT;
                cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                uint16_t gso = (uint16_t)seg;
                memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
            }
            s->tx_count[nmsg++] = (uint8_t)count;
            i += count;
        }
        int k;
        do {
            k = sendmmsg(ss->sock, s->tx_msgs, (unsigned)nmsg, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (k < 0 && errno == EINTR);
        if (k < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
            return false;
        }
        if (k < 0 && s->tx_count[0] > 1 && (errno == EINVAL || errno == EIO)) {
            log_debug("tftp UDP GSO refused (%s): a datagram per block from now on",
                      strerror(errno));
            ss->gso = false;
            continue;
        }
        if (k < 0) {
            /* This message is refused: lost like any datagram (the timer
             * resends); the rest still go. */
            s->stats.send_errors++;
            ss->sent += s->tx_count[0];
            continue;
        }
        for (int m = 0; m < k; m++) {
            const tftp_out *o = &ss->out[ss->sent];
            if (o->body_len == 0 && o->head_len >= 2 && o->head[1] == TFTP_ERROR) {
                s->stats.errors_sent++;
            }
            ss->sent += s->tx_count[m];
        }
    }
    return true;
}

/* Hands every packet the transfer has to the socket, a window per
 * sendmmsg(2), then reads ahead and arms the timer or ends the session. */
static void pump(session *ss)
{
    tftp_server *s = ss->server;
    for (;;) {
        if (!send_held(ss)) {
            /* The send queue is full: go on when the socket is writable. */
            if (ss->poll_events != (UV_READABLE | UV_WRITABLE)) {
                uv_poll_start(&ss->poll, UV_READABLE | UV_WRITABLE, on_session_io);
                ss->poll_events = UV_READABLE | UV_WRITABLE;
            }
            return;
        }
        ss->n_out = tftp_transfer_next_batch(ss->xfer, ss->out, TFTP_BATCH_MAX);
        ss->sent = 0;
        if (ss->n_out == 0) {
            break;
        }
    }
    if (ss->poll_events != UV_READABLE) {
        uv_poll_start(&ss->poll, UV_READABLE, on_session_io);
        ss->poll_events = UV_READABLE;
    }
    account(ss);
    if (tftp_transfer_finished(ss->xfer)) {
        session_finished(ss);
        return;
    }
    /* The window is out: read the next one while the client takes it. */
    tftp_transfer_read_ahead(ss->xfer);
    uint64_t deadline = tftp_transfer_deadline(ss->xfer);
    if (ss->armed_deadline == 0 || deadline < ss->armed_deadline) {
        uint64_t now = uv_now(s->loop);
        uv_timer_start(&ss->timer, on_session_timer, deadline > now ? deadline - now : 0, 0);
        ss->armed_deadline = deadline;
    }
}

static void on_session_timer(uv_timer_t *t)
{
    session *ss = t->data;
    ss->armed_deadline = 0;
    /* Early (the deadline moved on with the ACKs since): nothing happens
     * but the timer is armed again for the real deadline. */
    tftp_transfer_timeout(ss->xfer, uv_now(ss->server->loop));
    pump(ss);
}

static bool same_tid(const struct sockaddr_in6 *a, const struct sockaddr_in6 *b)
{
    return a->sin6_port == b->sin6_port &&
           memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
}

static void on_session_io(uv_poll_t *h, int status, int events)
{
    session *ss = h->data;
    tftp_server *s = ss->server;
    if (status < 0) {
        /* The socket is broken: the transfer cannot go on. */
        s->stats.transfers_failed++;
        if (log_ok(s)) {
            log_warn("tftp transfer socket failed file=%s err=%s", ss->rrq.filename,
                     uv_strerror(status));
        }
        session_end(ss);
        return;
    }
    if (events & UV_READABLE) {
        struct mmsghdr mm[RX_BATCH];
        struct iovec iov[RX_BATCH];
        struct sockaddr_in6 from[RX_BATCH];
        for (int round = 0; round < ROUNDS / RX_BATCH; round++) {
            for (int i = 0; i < RX_BATCH; i++) {
                iov[i] = (struct iovec){ .iov_base = s->rx_buf[i], .iov_len = RX_BUF };
                mm[i].msg_hdr = (struct msghdr){ .msg_name = &from[i],
                                                 .msg_namelen = sizeof(from[i]),
                                                 .msg_iov = &iov[i],
                                                 .msg_iovlen = 1 };
            }
            int k = recvmmsg(ss->sock, mm, RX_BATCH, MSG_DONTWAIT, NULL);
            if (k <= 0) {
                break;
            }
            for (int i = 0; i < k && !tftp_transfer_finished(ss->xfer); i++) {
                if (mm[i].msg_hdr.msg_namelen < sizeof(from[i]) ||
                    from[i].sin6_family != AF_INET6) {
                    continue;
                }
                if (!same_tid(&from[i], &ss->client)) {
                    /* RFC 1350 §4: ERROR 5 to the stranger, the transfer goes on. */
                    s->stats.unknown_tid++;
                    uint8_t e[64];
                    int len =
                        tftp_build_error(TFTP_ERR_UNKNOWN_TID, "Unknown transfer ID", e, sizeof(e));
                    if (sendto(ss->sock, e, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL,
                               (const struct sockaddr *)&from[i], sizeof(from[i])) > 0) {
                        s->stats.errors_sent++;
                    }
                    continue;
                }
                tftp_transfer_receive(ss->xfer, s->rx_buf[i], mm[i].msg_len, uv_now(s->loop));
            }
            if (k < RX_BATCH || tftp_transfer_finished(ss->xfer)) {
                break;
            }
        }
    }
    pump(ss);
}

static int open_transfer_socket(session *ss)
{
    _cleanup_close_ int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return negative_errno();
    }
    int off = 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0) {
        return negative_errno();
    }
    struct sockaddr_in6 la = { .sin6_family = AF_INET6, .sin6_addr = ss->local };
    if (IN6_IS_ADDR_LINKLOCAL(&ss->local)) {
        la.sin6_scope_id = ss->ifindex;
    }
    if (bind(fd, (const struct sockaddr *)&la, sizeof(la)) < 0) {
        return negative_errno();
    }
    if (ss->params.windowsize > 1) {
        /* Room for a whole window (sendmmsg stops at a full queue), with
         * the kernel's per-datagram overhead; it caps this at wmem_max. */
        uint64_t want = (uint64_t)ss->params.windowsize * (ss->params.blksize + 1024u);
        int sz = want > SNDBUF_MAX ? SNDBUF_MAX : (int)want;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) < 0) {
            log_debug("tftp setsockopt(SO_SNDBUF): %s", strerror(errno));
        }
    }
    ss->sock = TAKE_FD(fd);
    return 0;
}

static uint16_t error_code_for(int r)
{
    switch (r) {
    case -ENOENT:
        return TFTP_ERR_NOT_FOUND;
    case -EACCES:
    case -ENAMETOOLONG:
        return TFTP_ERR_ACCESS;
    default:
        return TFTP_ERR_UNDEFINED;
    }
}

static const char *error_msg_for(int r)
{
    switch (r) {
    case -ENOENT:
        return "File not found";
    case -EACCES:
        return "Access violation";
    case -ENAMETOOLONG:
        return "File name too long";
    case -EBADMSG:
        return "File failed verification";
    default:
        return "Cannot open file";
    }
}

/* The file is open (or not): refuse, or start the transfer. */
static void session_opened(session *ss, int r, const files_result *res)
{
    tftp_server *s = ss->server;
    char client[INET6_ADDRSTRLEN + 16], file[300];
    if (r < 0) {
        s->stats.refused++;
        if (log_ok(s)) {
            log_info("tftp refused file=%s client=%s err=%s",
                     log_quote(file, sizeof(file), ss->rrq.filename),
                     fmt_client(&ss->client, client, sizeof(client)), errstr(r));
        }
        reply_error(s, &ss->client, &ss->local, ss->ifindex, error_code_for(r), error_msg_for(r));
        session_end(ss);
        return;
    }
    ss->file_fd = res->fd;
    ss->size = res->size;
    tftp_limits lim = { .max_blksize = s->cfg.max_blksize,
                        .path_blksize = ss->path_blksize,
                        .max_windowsize = s->cfg.max_windowsize };
    tftp_transfer_config tc = { .fd = ss->file_fd,
                                .size = res->size,
                                .timeout_ms = s->cfg.timeout_ms,
                                .max_timeout_ms = s->cfg.max_timeout_ms,
                                .retries = s->cfg.retries };
    tftp_negotiate(&ss->rrq, &lim, res->size, &tc.params);
    ss->params = tc.params;
    r = tftp_transfer_new(&tc, uv_now(s->loop), &ss->xfer);
    if (r == 0) {
        r = open_transfer_socket(ss);
    }
    if (r < 0) {
        s->stats.refused++;
        if (log_ok(s)) {
            log_warn("tftp transfer setup failed file=%s client=%s err=%s",
                     log_quote(file, sizeof(file), ss->rrq.filename),
                     fmt_client(&ss->client, client, sizeof(client)), errstr(r));
        }
        reply_error(s, &ss->client, &ss->local, ss->ifindex, TFTP_ERR_UNDEFINED,
                    "Cannot start transfer");
        session_end(ss);
        return;
    }
    ss->phase = PHASE_ACTIVE;
    ss->gso = tc.params.windowsize > 1;
    uv_poll_init(s->loop, &ss->poll, ss->sock);
    uv_timer_init(s->loop, &ss->timer);
    ss->poll.data = ss;
    ss->timer.data = ss;
    ss->handles = 2;
    s->handles += 2;
    ss->poll_events = 0;
    log_debug("tftp start file=%s client=%s size=%" PRIu64 " blksize=%u windowsize=%u oack=%s",
              log_quote(file, sizeof(file), ss->rrq.filename),
              fmt_client(&ss->client, client, sizeof(client)), ss->size, tc.params.blksize,
              tc.params.windowsize,
              /* not tc.params: the transfer may decline the timeout option */
              tftp_transfer_get_state(ss->xfer) == TFTP_XFER_WAIT_OACK_ACK ? "yes" : "no");
    pump(ss);
}

static void on_opened(void *userdata, int r, const files_result *res)
{
    session *ss = userdata;
    if (ss->in_open) {
        ss->open_done = true;
        ss->open_r = r;
        if (r == 0) {
            ss->open_res = *res;
            ss->open_res.profile = NULL;
        }
        return;
    }
    ss->req = NULL;
    session_opened(ss, r, res);
}

/* Transfers open from this address, any port. A walk over at most
 * max_transfers sessions per request, which costs less than the request's
 * own system calls. */
static unsigned transfers_from(const tftp_server *s, const struct in6_addr *addr)
{
    unsigned n = 0;
    for (const session *ss = s->sessions; ss; ss = ss->next) {
        if (memcmp(&ss->client.sin6_addr, addr, sizeof(*addr)) == 0) {
            n++;
        }
    }
    return n;
}

static void handle_request(tftp_server *s, size_t len, const struct sockaddr_in6 *from,
                           const struct in6_addr *local, unsigned ifindex)
{
    s->stats.requests++;
    char client[INET6_ADDRSTRLEN + 16];
    session *ss = calloc(1, sizeof(*ss));
    if (!ss) {
        reply_error(s, from, local, ifindex, TFTP_ERR_UNDEFINED, "Out of memory");
        return;
    }
    tftp_request *rq = &ss->rrq;
    if (len > TFTP_MAX_REQUEST || tftp_request_parse(s->req_buf, len, rq) < 0) {
        s->stats.malformed++;
        free(ss);
        unsigned op = len >= 2 ? (unsigned)(s->req_buf[0] << 8 | s->req_buf[1]) : 0u;
        log_debug("tftp malformed request client=%s len=%zu opcode=%u",
                  fmt_client(from, client, sizeof(client)), len, op);
        /* Only a broken request is answered. Anything else here is a
         * stray, e.g. tftp-hpa's parting ACK after our ERROR: answering
         * strays could start an error ping-pong. */
        if (op == TFTP_RRQ || op == TFTP_WRQ) {
            reply_error(s, from, local, ifindex, TFTP_ERR_ILLEGAL_OP, "Malformed request");
        }
        return;
    }
    if (rq->opcode == TFTP_WRQ) {
        /* The server is read-only (NETBOOT-SPECS §3.4: no WRQ at all). */
        s->stats.refused++;
        free(ss);
        reply_error(s, from, local, ifindex, TFTP_ERR_ACCESS, "Write not allowed");
        return;
    }
    if (rq->mode != TFTP_MODE_OCTET) {
        s->stats.refused++;
        free(ss);
        reply_error(s, from, local, ifindex, TFTP_ERR_ILLEGAL_OP, "Only octet mode is served");
        return;
    }
    if (s->stats.active >= s->cfg.max_transfers) {
        s->stats.busy++;
        free(ss);
        if (log_ok(s)) {
            log_warn("tftp busy client=%s max_transfers=%u",
                     fmt_client(from, client, sizeof(client)), s->cfg.max_transfers);
        }
        reply_error(s, from, local, ifindex, TFTP_ERR_UNDEFINED, "Server busy");
        return;
    }
    if (transfers_from(s, &from->sin6_addr) >= s->cfg.max_transfers_per_source) {
        s->stats.per_source++;
        free(ss);
        if (log_ok(s)) {
            log_warn("tftp refused client=%s reason=per-source max_transfers_per_source=%u",
                     fmt_client(from, client, sizeof(client)), s->cfg.max_transfers_per_source);
        }
        reply_error(s, from, local, ifindex, TFTP_ERR_UNDEFINED,
                    "Too many transfers from this address");
        return;
    }
    ss->server = s;
    ss->phase = PHASE_OPENING;
    ss->client = *from;
    ss->local = *local;
    ss->ifindex = ifindex;
    ss->sock = -1;
    ss->file_fd = -1;
    ss->start_ms = uv_now(s->loop);
    ss->path_blksize = path_blksize(s, ifindex, IN6_IS_ADDR_V4MAPPED(local));
    ss->next = s->sessions;
    if (s->sessions) {
        s->sessions->prev = ss;
    }
    s->sessions = ss;
    s->stats.active++;

    files_request *req = NULL;
    ss->in_open = true;
    int r = files_open_from(s->files, rq->filename, &ss->client, on_opened, ss, &req);
    ss->in_open = false;
    if (ss->open_done) {
        session_opened(ss, ss->open_r, ss->open_r == 0 ? &ss->open_res : NULL);
    } else if (r < 0) {
        session_opened(ss, r, NULL);
    } else {
        ss->req = req;
    }
}

static void on_listen_readable(uv_poll_t *h, int status, int events)
{
    tftp_server *s = h->data;
    if (status < 0) {
        return;
    }
    for (int round = 0; round < ROUNDS && !s->closing; round++) {
        struct sockaddr_in6 from;
        union {
            struct cmsghdr align;
            uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + 64];
        } control;
        struct iovec iov = { .iov_base = s->req_buf, .iov_len = sizeof(s->req_buf) };
        struct msghdr mh = { .msg_name = &from,
                             .msg_namelen = sizeof(from),
                             .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT);
        if (n < 0) {
            return;
        }
        if (mh.msg_namelen < sizeof(from) || from.sin6_family != AF_INET6) {
            continue;
        }
        struct in6_pktinfo pi;
        if (!udp6_pktinfo(&mh, &pi) || IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr)) {
            /* No local address to answer from, or a multicast request. */
            s->stats.malformed++;
            continue;
        }
        if (mh.msg_flags & MSG_TRUNC) {
            n = (ssize_t)sizeof(s->req_buf); /* over 512: refused as malformed */
        }
        handle_request(s, (size_t)n, &from, &pi.ipi6_addr, pi.ipi6_ifindex);
    }
}

int tftp_server_open(uv_loop_t *loop, const tftp_server_config *cfg, files *f, tftp_server **ret)
{
    if (cfg->max_transfers == 0 || cfg->max_blksize < TFTP_MIN_BLKSIZE ||
        cfg->max_blksize > TFTP_MAX_BLKSIZE || cfg->max_windowsize < 1 ||
        cfg->max_windowsize > TFTP_MAX_WINDOWSIZE || cfg->timeout_ms == 0) {
        return -EINVAL;
    }
    /* Dual stack: IPv4 clients arrive as v4-mapped addresses. */
    _cleanup_close_ int fd = -1;
    uint16_t port;
    int r = udp6_open(&cfg->listen, false, &fd, &port);
    if (r < 0) {
        return r;
    }
    tftp_server *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->loop = loop;
    s->files = f;
    s->cfg = *cfg;
    if (s->cfg.max_timeout_ms < s->cfg.timeout_ms) {
        s->cfg.max_timeout_ms = s->cfg.timeout_ms;
    }
    if (s->cfg.max_transfers_per_source == 0) {
        s->cfg.max_transfers_per_source = TFTP_DEFAULT_MAX_TRANSFERS_PER_SOURCE;
    }
    s->port = port;
    s->rl = (log_ratelimit)LOG_RATELIMIT_INIT(1000, 20);
    r = uv_poll_init(loop, &s->poll, fd);
    if (r < 0) {
        free(s);
        return r;
    }
    s->fd = TAKE_FD(fd);
    s->poll.data = s;
    s->handles = 1;
    uv_poll_start(&s->poll, UV_READABLE, on_listen_readable);
    *ret = s;
    return 0;
}

static void on_listen_closed(uv_handle_t *h)
{
    tftp_server *s = h->data;
    close(s->fd);
    s->fd = -1;
    s->handles--;
    maybe_free_server(s);
}

void tftp_server_close(tftp_server *s)
{
    if (!s || s->closing) {
        return;
    }
    s->closing = true;
    session *next;
    for (session *ss = s->sessions; ss; ss = next) {
        next = ss->next;
        session_end(ss);
    }
    uv_close((uv_handle_t *)&s->poll, on_listen_closed);
}

const tftp_server_stats *tftp_server_get_stats(const tftp_server *s)
{
    return &s->stats;
}

void tftp_server_observe(tftp_server *s, tftp_observer_fn fn, void *userdata)
{
    s->observer = fn;
    s->observer_data = userdata;
}

uint16_t tftp_server_port(const tftp_server *s)
{
    return s->port;
}

int tftp_server_register_metrics(tftp_server *s, metrics *m)
{
    static const struct {
        metric_type type;
        const char *name, *help, *labels;
        size_t off;
    } series[] = {
#define C(name, help, labels, field)                                                               \
    { METRIC_COUNTER, name, help, labels, offsetof(tftp_server_stats, field) }
        C("rackboot_tftp_requests_total", "TFTP read and write requests received.", NULL, requests),
        C("rackboot_tftp_transfers_total", "TFTP transfers by outcome.", "result=\"ok\"",
          transfers_ok),
        C("rackboot_tftp_transfers_total", "TFTP transfers by outcome.", "result=\"failed\"",
          transfers_failed),
        C("rackboot_tftp_transfers_total", "TFTP transfers by outcome.", "result=\"aborted\"",
          transfers_aborted),
        C("rackboot_tftp_refused_total", "TFTP requests refused.", "reason=\"error\"", refused),
        C("rackboot_tftp_refused_total", "TFTP requests refused.", "reason=\"busy\"", busy),
        C("rackboot_tftp_refused_total", "TFTP requests refused.", "reason=\"per_source\"",
          per_source),
        C("rackboot_tftp_refused_total", "TFTP requests refused.", "reason=\"malformed\"",
          malformed),
        C("rackboot_tftp_sent_bytes_total", "TFTP DATA payload sent, retransmissions included.",
          NULL, bytes_sent),
        C("rackboot_tftp_retransmits_total", "TFTP packets sent again after a timeout.", NULL,
          retransmits),
        C("rackboot_tftp_errors_sent_total", "TFTP ERROR packets sent.", NULL, errors_sent),
        C("rackboot_tftp_unknown_tid_total", "Packets from an unknown transfer ID.", NULL,
          unknown_tid),
        C("rackboot_tftp_send_errors_total", "TFTP datagrams the kernel refused to send.", NULL,
          send_errors),
#undef C
        { METRIC_GAUGE, "rackboot_tftp_active_transfers", "TFTP transfers in progress.", NULL,
          offsetof(tftp_server_stats, active) },
    };
    for (size_t i = 0; i < ARRAY_SIZE(series); i++) {
        const uint64_t *v = (const uint64_t *)((const uint8_t *)&s->stats + series[i].off);
        int r = metrics_register(m, series[i].type, series[i].name, series[i].help,
                                 series[i].labels, v);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}
