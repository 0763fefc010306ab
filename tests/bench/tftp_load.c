/* tftp_load: a TFTP read load client for tests/bench/serving.
 *
 * Runs COUNT read transfers of one file, at most CONC at a time, from one
 * thread: RFC 1350 with RFC 2347 options, blksize (RFC 2348), tsize (RFC
 * 2349) and windowsize (RFC 7440). Each transfer has a socket of its own,
 * connected to the server's transfer ID after its first answer; all of them
 * sit in one epoll set and every readiness drains a socket with recvmmsg(2),
 * so the client costs few system calls per window and is not what limits a
 * fast server (atftp, as a client, reads one datagram per call and tops out
 * near what atftpd serves).
 *
 * Receiving (RFC 7440 §4): DATA blocks are taken in order; after
 * `windowsize` new blocks, or the last (short) block, the client ACKs the
 * highest block it holds in order. A block out of order (one was lost) is
 * answered once with an ACK of the last block in order, which makes the
 * server resend from there. Nothing heard for --timeout: the last ACK (or
 * the request) goes again, at most --retries times, then the transfer fails.
 *
 * Checks: the received size must equal the size the server announced in the
 * OACK (tsize) and, with -S, the expected size; with -k FILE every byte is
 * compared with FILE. A transfer that fails any check counts as failed.
 *
 * Bounded in count (-c) and time (-d: no new transfer starts after it, and
 * the ones still running are abandoned as failed a --timeout later).
 *
 * Output, one line: ok=N failed=N bytes=N secs=S mibs=M acks=N
 * out_of_order=N timeouts=N, and a line per failure on stderr (first 10).
 *
 * Not a test; built by tests/bench/serving:
 *     cc -O2 -o tftp_load tftp_load.c
 *     tftp_load -a ADDR [-p PORT] -f NAME [-b BLKSIZE] [-w WINDOWSIZE] [-n CONC]
 *               [-c COUNT] [-d SECONDS] [-S SIZE] [-k FILE] [-t TIMEOUT_MS] [-r RETRIES]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { OP_RRQ = 1, OP_DATA = 3, OP_ACK = 4, OP_ERROR = 5, OP_OACK = 6 };

#define BATCH     64
#define MAX_BLK   65464
#define RCVBUF    (8 << 20)
#define MAX_FAILS 10

typedef enum { ST_IDLE, ST_REQUESTED, ST_RECEIVING, ST_DONE, ST_FAILED } state;

typedef struct xfer {
    int fd;
    state st;
    bool connected;
    uint64_t next;      /* next block expected, 64-bit (wire: mod 65536) */
    uint64_t bytes;     /* payload received in order */
    uint64_t tsize;     /* from the OACK; UINT64_MAX when not announced */
    unsigned since_ack; /* in-order blocks since the last ACK */
    uint64_t nak_for;   /* the ACK already sent for a gap at this block */
    unsigned tries;
    uint64_t deadline; /* ns */
    uint32_t blksize;
    uint32_t window;
} xfer;

static struct {
    struct sockaddr_in6 server;
    const char *file;
    uint32_t blksize, window;
    unsigned conc, count;
    double seconds;
    uint64_t expect_size; /* 0: not checked */
    const uint8_t *ref;   /* -k: the expected bytes */
    uint64_t ref_size;
    uint64_t timeout_ns;
    unsigned retries;
} opt = { .blksize = 512,
          .window = 1,
          .conc = 1,
          .count = 0,
          .seconds = 60,
          .timeout_ns = 1000000000ull,
          .retries = 10 };

static struct {
    uint64_t ok, failed, bytes, acks, out_of_order, timeouts;
    unsigned fails_logged;
} res;

static uint8_t rx[BATCH][MAX_BLK + 4];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr, "usage: tftp_load -a ADDR [-p PORT] -f NAME [-b BLKSIZE] [-w WINDOWSIZE] "
                    "[-n CONC] [-c COUNT] [-d SECONDS] [-S SIZE] [-k FILE] [-t TIMEOUT_MS] "
                    "[-r RETRIES]\n");
    exit(2);
}

static void fail(xfer *x, const char *why)
{
    if (x->st == ST_DONE || x->st == ST_FAILED) {
        return;
    }
    x->st = ST_FAILED;
    res.failed++;
    if (res.fails_logged++ < MAX_FAILS) {
        fprintf(stderr, "tftp_load: transfer failed: %s (block %" PRIu64 ", %" PRIu64 " bytes)\n",
                why, x->next, x->bytes);
    }
    close(x->fd);
    x->fd = -1;
}

static size_t put_str(uint8_t *p, size_t off, const char *s)
{
    size_t n = strlen(s) + 1;
    memcpy(p + off, s, n);
    return off + n;
}

static int send_request(xfer *x)
{
    uint8_t b[600];
    char v[32];
    size_t o = 2;
    b[0] = 0;
    b[1] = OP_RRQ;
    o = put_str(b, o, opt.file);
    o = put_str(b, o, "octet");
    if (opt.blksize != 512) {
        o = put_str(b, o, "blksize");
        snprintf(v, sizeof(v), "%u", opt.blksize);
        o = put_str(b, o, v);
    }
    if (opt.window > 1) {
        o = put_str(b, o, "windowsize");
        snprintf(v, sizeof(v), "%u", opt.window);
        o = put_str(b, o, v);
    }
    o = put_str(b, o, "tsize");
    o = put_str(b, o, "0");
    return sendto(x->fd, b, o, 0, (const struct sockaddr *)&opt.server, sizeof(opt.server)) < 0
               ? -errno
               : 0;
}

static void send_ack(xfer *x, uint64_t block)
{
    uint8_t b[4] = { 0, OP_ACK, (uint8_t)(block >> 8), (uint8_t)block };
    res.acks++;
    /* Lost like any datagram when refused: the timeout resends. */
    (void)send(x->fd, b, sizeof(b), MSG_DONTWAIT);
}

static int start(xfer *x, int ep, uint64_t now)
{
    memset(x, 0, sizeof(*x));
    x->fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (x->fd < 0) {
        return -errno;
    }
    int sz = RCVBUF;
    setsockopt(x->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    x->st = ST_REQUESTED;
    x->next = 1;
    x->tsize = UINT64_MAX;
    x->blksize = 512;
    x->window = 1;
    x->deadline = now + opt.timeout_ns;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = x };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &ev) < 0) {
        return -errno;
    }
    return send_request(x);
}

/* Option values of an OACK; unknown options fail the transfer (RFC 2347:
 * the server answers only options that were asked). */
static bool parse_oack(xfer *x, const uint8_t *p, size_t len)
{
    size_t o = 2;
    while (o < len) {
        const char *name = (const char *)p + o;
        const uint8_t *z = memchr(p + o, 0, len - o);
        if (!z) {
            return false;
        }
        o = (size_t)(z - p) + 1;
        const uint8_t *z2 = o < len ? memchr(p + o, 0, len - o) : NULL;
        if (!z2) {
            return false;
        }
        const char *val = (const char *)p + o;
        o = (size_t)(z2 - p) + 1;
        char *end;
        unsigned long long v = strtoull(val, &end, 10);
        if (*end) {
            return false;
        }
        if (strcasecmp(name, "blksize") == 0) {
            if (v < 8 || v > opt.blksize) {
                return false;
            }
            x->blksize = (uint32_t)v;
        } else if (strcasecmp(name, "windowsize") == 0) {
            if (v < 1 || v > opt.window) {
                return false;
            }
            x->window = (uint32_t)v;
        } else if (strcasecmp(name, "tsize") == 0) {
            x->tsize = v;
        } else if (strcasecmp(name, "timeout") != 0) {
            return false;
        }
    }
    return true;
}

static void finish(xfer *x)
{
    if (x->tsize != UINT64_MAX && x->bytes != x->tsize) {
        fail(x, "size differs from tsize");
        return;
    }
    if (opt.expect_size && x->bytes != opt.expect_size) {
        fail(x, "size differs from the expected size");
        return;
    }
    x->st = ST_DONE;
    res.ok++;
    res.bytes += x->bytes;
    close(x->fd);
    x->fd = -1;
}

static void on_packet(xfer *x, const uint8_t *p, size_t len, uint64_t now)
{
    if (len < 4) {
        return;
    }
    unsigned op = (unsigned)p[0] << 8 | p[1];
    if (op == OP_ERROR) {
        fail(x, "ERROR from the server");
        return;
    }
    if (op == OP_OACK && x->st == ST_REQUESTED) {
        if (!parse_oack(x, p, len)) {
            fail(x, "bad OACK");
            return;
        }
        x->st = ST_RECEIVING;
        x->tries = 0;
        x->deadline = now + opt.timeout_ns;
        send_ack(x, 0);
        return;
    }
    if (op != OP_DATA) {
        return;
    }
    if (x->st == ST_REQUESTED) {
        /* DATA 1 without OACK: the server ignored every option. */
        x->st = ST_RECEIVING;
    }
    uint16_t wire = (uint16_t)(p[2] << 8 | p[3]);
    size_t n = len - 4;
    if (wire != (uint16_t)x->next) {
        /* A duplicate of a block we hold, or a gap. */
        uint16_t behind = (uint16_t)((uint16_t)x->next - wire);
        if (behind > 0 && behind <= x->window) {
            return; /* resent block we already have */
        }
        res.out_of_order++;
        if (x->nak_for != x->next) {
            /* RFC 7440 §4: ACK the last block in order, once per gap. */
            x->nak_for = x->next;
            x->since_ack = 0;
            send_ack(x, x->next - 1);
        }
        return;
    }
    if (n > x->blksize) {
        fail(x, "block larger than blksize");
        return;
    }
    uint64_t off = (x->next - 1) * (uint64_t)x->blksize;
    if (opt.ref && (off + n > opt.ref_size || memcmp(opt.ref + off, p + 4, n) != 0)) {
        fail(x, "content differs from the reference file");
        return;
    }
    x->bytes += n;
    x->tries = 0;
    x->deadline = now + opt.timeout_ns;
    bool last = n < x->blksize;
    if (++x->since_ack >= x->window || last) {
        x->since_ack = 0;
        send_ack(x, x->next);
    }
    x->next++;
    if (last) {
        finish(x);
    }
}

static void on_readable(xfer *x, uint64_t now)
{
    struct mmsghdr mm[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in6 from[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){ .iov_base = rx[i], .iov_len = sizeof(rx[i]) };
            mm[i].msg_hdr = (struct msghdr){ .msg_name = &from[i],
                                             .msg_namelen = sizeof(from[i]),
                                             .msg_iov = &iov[i],
                                             .msg_iovlen = 1 };
        }
        int k = recvmmsg(x->fd, mm, BATCH, MSG_DONTWAIT, NULL);
        if (k <= 0) {
            return;
        }
        for (int i = 0; i < k && (x->st == ST_REQUESTED || x->st == ST_RECEIVING); i++) {
            if (!x->connected) {
                /* The server's transfer ID: from now on the kernel drops
                 * anything from elsewhere. */
                if (connect(x->fd, (const struct sockaddr *)&from[i], sizeof(from[i])) < 0) {
                    fail(x, "connect");
                    return;
                }
                x->connected = true;
            }
            on_packet(x, rx[i], mm[i].msg_len, now);
        }
        if (x->st != ST_REQUESTED && x->st != ST_RECEIVING) {
            return;
        }
        if (k < BATCH) {
            return;
        }
    }
}

static void on_timeout(xfer *x, uint64_t now)
{
    if (x->tries >= opt.retries) {
        fail(x, "timeout");
        return;
    }
    x->tries++;
    res.timeouts++;
    x->deadline = now + opt.timeout_ns;
    if (x->st == ST_REQUESTED) {
        send_request(x);
    } else {
        x->since_ack = 0;
        send_ack(x, x->next - 1);
    }
}

static int parse_addr(const char *s, struct sockaddr_in6 *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, s, &sa->sin6_addr) == 1) {
        return 0;
    }
    struct in_addr v4;
    if (inet_pton(AF_INET, s, &v4) == 1) {
        sa->sin6_addr.s6_addr[10] = 0xff;
        sa->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&sa->sin6_addr.s6_addr[12], &v4, 4);
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    const char *addr = NULL, *ref_path = NULL;
    unsigned port = 69;
    int c;
    while ((c = getopt(argc, argv, "a:p:f:b:w:n:c:d:S:k:t:r:")) != -1) {
        switch (c) {
        case 'a':
            addr = optarg;
            break;
        case 'p':
            port = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'f':
            opt.file = optarg;
            break;
        case 'b':
            opt.blksize = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'w':
            opt.window = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'n':
            opt.conc = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            opt.count = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'd':
            opt.seconds = strtod(optarg, NULL);
            break;
        case 'S':
            opt.expect_size = strtoull(optarg, NULL, 10);
            break;
        case 'k':
            ref_path = optarg;
            break;
        case 't':
            opt.timeout_ns = strtoull(optarg, NULL, 10) * 1000000ull;
            break;
        case 'r':
            opt.retries = (unsigned)strtoul(optarg, NULL, 10);
            break;
        default:
            usage();
        }
    }
    if (!addr || !opt.file || strlen(opt.file) > 400 || port == 0 || port > 65535 ||
        opt.blksize < 8 || opt.blksize > MAX_BLK || opt.window < 1 || opt.window > 65535 ||
        opt.conc < 1 || opt.conc > 10000 || opt.seconds <= 0 || opt.timeout_ns == 0) {
        usage();
    }
    if (opt.count == 0) {
        opt.count = opt.conc;
    }
    if (parse_addr(addr, &opt.server) < 0) {
        fprintf(stderr, "tftp_load: bad address %s\n", addr);
        return 2;
    }
    opt.server.sin6_port = htons((uint16_t)port);
    if (ref_path) {
        int fd = open(ref_path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            perror(ref_path);
            return 2;
        }
        opt.ref_size = (uint64_t)st.st_size;
        if (opt.ref_size) {
            opt.ref = mmap(NULL, opt.ref_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (opt.ref == MAP_FAILED) {
                perror("mmap");
                return 2;
            }
        }
        close(fd);
        if (!opt.expect_size) {
            opt.expect_size = opt.ref_size;
        }
    }
    xfer *xs = calloc(opt.conc, sizeof(*xs));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!xs || ep < 0) {
        perror("tftp_load");
        return 1;
    }
    for (unsigned i = 0; i < opt.conc; i++) {
        xs[i].st = ST_IDLE;
        xs[i].fd = -1;
    }
    uint64_t t0 = now_ns();
    uint64_t stop_starting = t0 + (uint64_t)(opt.seconds * 1e9);
    uint64_t hard_stop = stop_starting + opt.timeout_ns;
    unsigned started = 0, running = 0;
    for (;;) {
        uint64_t now = now_ns();
        /* Fill free slots. */
        running = 0;
        for (unsigned i = 0; i < opt.conc; i++) {
            xfer *x = &xs[i];
            if (x->st == ST_DONE || x->st == ST_FAILED || x->st == ST_IDLE) {
                if (started < opt.count && now < stop_starting) {
                    started++;
                    int r = start(x, ep, now);
                    if (r < 0) {
                        fprintf(stderr, "tftp_load: cannot start a transfer: %s\n", strerror(-r));
                        if (x->fd >= 0) {
                            close(x->fd);
                        }
                        x->st = ST_FAILED;
                        res.failed++;
                        continue;
                    }
                } else {
                    continue;
                }
            }
            running++;
        }
        if (running == 0) {
            break;
        }
        if (now >= hard_stop) {
            for (unsigned i = 0; i < opt.conc; i++) {
                if (xs[i].st == ST_REQUESTED || xs[i].st == ST_RECEIVING) {
                    fail(&xs[i], "time limit");
                }
            }
            break;
        }
        uint64_t next_deadline = hard_stop;
        for (unsigned i = 0; i < opt.conc; i++) {
            xfer *x = &xs[i];
            if ((x->st == ST_REQUESTED || x->st == ST_RECEIVING) && x->deadline < next_deadline) {
                next_deadline = x->deadline;
            }
        }
        int wait_ms = next_deadline > now ? (int)((next_deadline - now + 999999) / 1000000) : 0;
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, wait_ms);
        if (k < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        now = now_ns();
        for (int i = 0; i < k; i++) {
            xfer *x = evs[i].data.ptr;
            if (x->st == ST_REQUESTED || x->st == ST_RECEIVING) {
                on_readable(x, now);
            }
        }
        for (unsigned i = 0; i < opt.conc; i++) {
            xfer *x = &xs[i];
            if ((x->st == ST_REQUESTED || x->st == ST_RECEIVING) && now >= x->deadline) {
                on_timeout(x, now);
            }
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("ok=%" PRIu64 " failed=%" PRIu64 " bytes=%" PRIu64 " secs=%.3f mibs=%.1f acks=%" PRIu64
           " out_of_order=%" PRIu64 " timeouts=%" PRIu64 "\n",
           res.ok, res.failed, res.bytes, secs, (double)res.bytes / 1048576.0 / secs, res.acks,
           res.out_of_order, res.timeouts);
    return res.failed ? 1 : 0;
}
