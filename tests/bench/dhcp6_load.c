/* dhcp6_load: a closed-loop DHCPv6 load generator for tests/bench/dhcp6.
 *
 * Many simulated clients, each with its own DUID-LL, run full 4-way
 * exchanges (Solicit -> Advertise -> Request with the Server ID and the
 * offered IAADDR -> Reply) from one UDP socket bound to the interface's
 * link-local address, port 546, multicasting to ff02::1:2 port 547. Sends and
 * receives are batched with sendmmsg/recvmmsg. At most WINDOW exchanges are
 * outstanding at a time, so the server (not a fixed rate) sets the pace; an
 * optional --rate caps the Solicit rate.
 *
 * Bounded: stops starting exchanges after --count Solicits or --seconds,
 * then waits at most --timeout for the outstanding ones. A message not
 * answered within --timeout is counted as unanswered and its exchange ends.
 *
 * Prints one line of key=value results. Not a test; built by tests/bench/dhcp6:
 *     cc -O2 -o dhcp6_load dhcp6_load.c
 *     dhcp6_load -i IFACE [-c COUNT] [-s SECONDS] [-n CLIENTS] [-w WINDOW] [-r RATE] [-t
 * TIMEOUT_MS]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PKT   1500

enum { FREE = 0, SOLICITED, REQUESTED };

struct slot {
    int state;
    uint32_t xid;
    uint32_t client;
    uint64_t t_start; /* ns, Solicit sent */
    uint64_t t_sent;  /* ns, current message sent */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr, "usage: dhcp6_load -i IFACE [-c COUNT] [-s SECONDS] [-n CLIENTS] "
                    "[-w WINDOW] [-r RATE] [-t TIMEOUT_MS]\n");
    exit(2);
}

static size_t put_opt(uint8_t *p, uint16_t code, const void *data, uint16_t len)
{
    p[0] = code >> 8;
    p[1] = code & 0xff;
    p[2] = len >> 8;
    p[3] = len & 0xff;
    if (len) {
        memcpy(p + 4, data, len);
    }
    return 4u + len;
}

/* DUID-LL (type 3, hardware type 1) with a MAC made from the client index. */
static void make_duid(uint32_t client, uint8_t duid[10])
{
    duid[0] = 0;
    duid[1] = 3;
    duid[2] = 0;
    duid[3] = 1;
    duid[4] = 0x02; /* locally administered */
    duid[5] = 0xdb;
    duid[6] = client >> 24;
    duid[7] = client >> 16;
    duid[8] = client >> 8;
    duid[9] = client;
}

static size_t build(uint8_t *buf, int type, uint32_t xid, uint32_t client, const uint8_t *srvid,
                    size_t srvid_len, const uint8_t *addr)
{
    uint8_t *p = buf;
    uint8_t duid[10];
    p[0] = (uint8_t)type;
    p[1] = xid >> 16;
    p[2] = xid >> 8;
    p[3] = xid;
    p += 4;
    make_duid(client, duid);
    p += put_opt(p, 1, duid, sizeof(duid));
    if (srvid) {
        p += put_opt(p, 2, srvid, (uint16_t)srvid_len);
    }
    uint8_t ia[12 + 28];
    size_t ialen = 12;
    uint32_t iaid = htonl(client + 1);
    memcpy(ia, &iaid, 4);
    memset(ia + 4, 0, 8); /* T1, T2 */
    if (addr) {
        uint8_t iaaddr[24];
        memcpy(iaaddr, addr, 16);
        memset(iaaddr + 16, 0, 8); /* lifetimes: the server's choice */
        ialen += put_opt(ia + 12, 5, iaaddr, sizeof(iaaddr));
    }
    p += put_opt(p, 3, ia, (uint16_t)ialen);
    uint8_t elapsed[2] = { 0, 0 };
    p += put_opt(p, 8, elapsed, 2);
    uint8_t oro[2] = { 0, 23 }; /* DNS servers */
    p += put_opt(p, 6, oro, 2);
    return (size_t)(p - buf);
}

/* Finds option CODE in [p, end); returns its data and length, or NULL. */
static const uint8_t *find_opt(const uint8_t *p, const uint8_t *end, uint16_t code, uint16_t *len)
{
    while (end - p >= 4) {
        uint16_t c = (uint16_t)(p[0] << 8 | p[1]);
        uint16_t l = (uint16_t)(p[2] << 8 | p[3]);
        if (end - p - 4 < l) {
            return NULL;
        }
        if (c == code) {
            *len = l;
            return p + 4;
        }
        p += 4 + l;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *ifname = NULL;
    uint64_t count = 1000000;
    double seconds = 10;
    uint32_t nclients = 10000;
    uint32_t window = 256;
    double rate = 0;
    uint64_t timeout_ns = 1000000000ull;
    int opt;
    while ((opt = getopt(argc, argv, "i:c:s:n:w:r:t:h")) != -1) {
        switch (opt) {
        case 'i':
            ifname = optarg;
            break;
        case 'c':
            count = strtoull(optarg, NULL, 10);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'n':
            nclients = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'w':
            window = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            rate = atof(optarg);
            break;
        case 't':
            timeout_ns = strtoull(optarg, NULL, 10) * 1000000ull;
            break;
        default:
            usage();
        }
    }
    if (!ifname || nclients == 0 || window == 0 || window > 65536 || seconds <= 0 ||
        seconds > 3600) {
        usage();
    }
    unsigned ifindex = if_nametoindex(ifname);
    if (!ifindex) {
        fprintf(stderr, "dhcp6_load: no interface %s\n", ifname);
        return 1;
    }
    /* The interface's link-local address. */
    struct sockaddr_in6 local = { .sin6_family = AF_INET6, .sin6_port = htons(546) };
    struct ifaddrs *ifa, *i;
    int found = 0;
    if (getifaddrs(&ifa) < 0) {
        perror("getifaddrs");
        return 1;
    }
    for (i = ifa; i; i = i->ifa_next) {
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET6 && strcmp(i->ifa_name, ifname) == 0) {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)i->ifa_addr;
            if (IN6_IS_ADDR_LINKLOCAL(&s->sin6_addr)) {
                local.sin6_addr = s->sin6_addr;
                found = 1;
                break;
            }
        }
    }
    freeifaddrs(ifa);
    if (!found) {
        fprintf(stderr, "dhcp6_load: no link-local address on %s\n", ifname);
        return 1;
    }
    local.sin6_scope_id = ifindex;
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    int one = 1, zero = 0, hops = 1, bufsz = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex));
    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof(zero));
    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops));
    if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
        perror("bind [link-local]:546");
        return 1;
    }
    struct sockaddr_in6 dst = { .sin6_family = AF_INET6,
                                .sin6_port = htons(547),
                                .sin6_scope_id = ifindex };
    inet_pton(AF_INET6, "ff02::1:2", &dst.sin6_addr);

    struct slot *slots = calloc(window, sizeof(*slots));
    uint32_t *freelist = malloc(window * sizeof(uint32_t));
    if (!slots || !freelist) {
        return 1;
    }
    uint32_t nfree = window;
    for (uint32_t k = 0; k < window; k++) {
        freelist[k] = window - 1 - k;
    }
    static uint8_t sbuf[BATCH][PKT], rbuf[BATCH][PKT];
    struct mmsghdr smsg[BATCH], rmsg[BATCH];
    struct iovec siov[BATCH], riov[BATCH];
    memset(smsg, 0, sizeof(smsg));
    memset(rmsg, 0, sizeof(rmsg));
    for (int k = 0; k < BATCH; k++) {
        siov[k].iov_base = sbuf[k];
        smsg[k].msg_hdr.msg_iov = &siov[k];
        smsg[k].msg_hdr.msg_iovlen = 1;
        smsg[k].msg_hdr.msg_name = &dst;
        smsg[k].msg_hdr.msg_namelen = sizeof(dst);
        riov[k].iov_base = rbuf[k];
        riov[k].iov_len = PKT;
        rmsg[k].msg_hdr.msg_iov = &riov[k];
        rmsg[k].msg_hdr.msg_iovlen = 1;
    }
    int nsend = 0;

    uint64_t solicits = 0, advertises = 0, requests = 0, replies = 0;
    uint64_t lost_solicit = 0, lost_request = 0, no_addr = 0, stray = 0, send_err = 0;
    uint64_t lat_sum = 0, lat_max = 0, lat_min = UINT64_MAX;
    uint32_t next_client = 0, gen = 0;
    uint64_t t0 = now_ns(), t_end_send = t0 + (uint64_t)(seconds * 1e9);
    uint64_t t_first_reply = 0, t_last_reply = 0, last_scan = t0;
    uint32_t outstanding = 0;
    int sending = 1;

#define FLUSH()                                                                                    \
    do {                                                                                           \
        int off = 0;                                                                               \
        while (off < nsend) {                                                                      \
            int r = sendmmsg(fd, smsg + off, (unsigned)(nsend - off), 0);                          \
            if (r < 0) {                                                                           \
                if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) {                       \
                    struct pollfd pw = { .fd = fd, .events = POLLOUT };                            \
                    poll(&pw, 1, 1);                                                               \
                    continue;                                                                      \
                }                                                                                  \
                send_err += (uint64_t)(nsend - off);                                               \
                break;                                                                             \
            }                                                                                      \
            off += r;                                                                              \
        }                                                                                          \
        nsend = 0;                                                                                 \
    } while (0)

    for (;;) {
        uint64_t t = now_ns();
        if (sending && (solicits >= count || t >= t_end_send)) {
            sending = 0;
            t_end_send = t;
        }
        if (!sending && (outstanding == 0 || t >= t_end_send + timeout_ns + 100000000ull)) {
            break;
        }
        /* Start new exchanges while the window (and the rate cap) allow. */
        while (sending && nfree > 0 && solicits < count) {
            if (rate > 0 && (double)solicits >= rate * (double)(t - t0) / 1e9 + 1) {
                break;
            }
            uint32_t s = freelist[--nfree];
            struct slot *sl = &slots[s];
            gen = (gen + 1) & 0xff;
            sl->xid = (gen << 16) | s; /* window <= 65536 */
            sl->client = next_client;
            next_client = (next_client + 1) % nclients;
            sl->state = SOLICITED;
            sl->t_start = sl->t_sent = t;
            siov[nsend].iov_len = build(sbuf[nsend], 1, sl->xid, sl->client, NULL, 0, NULL);
            nsend++;
            solicits++;
            outstanding++;
            if (nsend == BATCH) {
                FLUSH();
            }
        }
        if (nsend) {
            FLUSH();
        }
        /* Receive whatever has arrived; wait briefly if nothing has. */
        for (int k = 0; k < BATCH; k++) {
            riov[k].iov_len = PKT;
            rmsg[k].msg_hdr.msg_namelen = 0;
        }
        int n = recvmmsg(fd, rmsg, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            struct pollfd pr = { .fd = fd, .events = POLLIN };
            poll(&pr, 1, 1);
            n = 0;
        }
        t = now_ns();
        for (int k = 0; k < n; k++) {
            const uint8_t *m = rbuf[k];
            size_t len = rmsg[k].msg_len;
            if (len < 4) {
                stray++;
                continue;
            }
            uint32_t xid = (uint32_t)(m[1] << 16 | m[2] << 8 | m[3]);
            uint32_t s = xid & 0xffff;
            if (s >= window || slots[s].state == FREE || slots[s].xid != xid) {
                stray++; /* late answer to a timed-out message, or not ours */
                continue;
            }
            struct slot *sl = &slots[s];
            const uint8_t *end = m + len;
            uint16_t cl, sl_len, ial;
            const uint8_t *cid = find_opt(m + 4, end, 1, &cl);
            uint8_t duid[10];
            make_duid(sl->client, duid);
            if (!cid || cl != 10 || memcmp(cid, duid, 10) != 0) {
                stray++;
                continue;
            }
            const uint8_t *ia = find_opt(m + 4, end, 3, &ial);
            const uint8_t *addr = NULL;
            if (ia && ial >= 12) {
                uint16_t al;
                const uint8_t *a = find_opt(ia + 12, ia + ial, 5, &al);
                if (a && al >= 24) {
                    addr = a;
                }
            }
            if (sl->state == SOLICITED && m[0] == 2) { /* Advertise */
                const uint8_t *sid = find_opt(m + 4, end, 2, &sl_len);
                advertises++;
                if (!sid || !addr) {
                    no_addr++;
                    sl->state = FREE;
                    freelist[nfree++] = s;
                    outstanding--;
                    continue;
                }
                gen = (gen + 1) & 0xff;
                sl->xid = (gen << 16) | s;
                sl->state = REQUESTED;
                sl->t_sent = t;
                siov[nsend].iov_len = build(sbuf[nsend], 3, sl->xid, sl->client, sid, sl_len, addr);
                nsend++;
                requests++;
                if (nsend == BATCH) {
                    FLUSH();
                }
            } else if (sl->state == REQUESTED && m[0] == 7) { /* Reply */
                if (!addr) {
                    no_addr++;
                } else {
                    replies++;
                    uint64_t lat = t - sl->t_start;
                    lat_sum += lat;
                    if (lat > lat_max)
                        lat_max = lat;
                    if (lat < lat_min)
                        lat_min = lat;
                    if (!t_first_reply)
                        t_first_reply = t;
                    t_last_reply = t;
                }
                sl->state = FREE;
                freelist[nfree++] = s;
                outstanding--;
            } else {
                stray++;
            }
        }
        if (nsend) {
            FLUSH();
        }
        /* Expire unanswered messages, every 10 ms. */
        if (t - last_scan >= 10000000ull) {
            last_scan = t;
            for (uint32_t s = 0; s < window; s++) {
                struct slot *sl = &slots[s];
                if (sl->state != FREE && t - sl->t_sent > timeout_ns) {
                    if (sl->state == SOLICITED)
                        lost_solicit++;
                    else
                        lost_request++;
                    sl->state = FREE;
                    freelist[nfree++] = s;
                    outstanding--;
                }
            }
        }
    }
    uint64_t t1 = now_ns();
    /* Still outstanding at the hard stop count as unanswered. */
    for (uint32_t s = 0; s < window; s++) {
        if (slots[s].state == SOLICITED)
            lost_solicit++;
        else if (slots[s].state == REQUESTED)
            lost_request++;
    }
    double send_secs = (double)(t_end_send - t0) / 1e9;
    double rep_secs = t_last_reply > t0 ? (double)(t_last_reply - t0) / 1e9 : 0;
    printf("solicits=%llu advertises=%llu requests=%llu replies=%llu unanswered_solicit=%llu "
           "unanswered_request=%llu no_addr=%llu stray=%llu send_errors=%llu send_secs=%.3f "
           "total_secs=%.3f rate=%.1f lat_min_ms=%.3f lat_avg_ms=%.3f lat_max_ms=%.3f\n",
           (unsigned long long)solicits, (unsigned long long)advertises,
           (unsigned long long)requests, (unsigned long long)replies,
           (unsigned long long)lost_solicit, (unsigned long long)lost_request,
           (unsigned long long)no_addr, (unsigned long long)stray, (unsigned long long)send_err,
           send_secs, (double)(t1 - t0) / 1e9, rep_secs > 0 ? (double)replies / rep_secs : 0.0,
           replies ? (double)lat_min / 1e6 : 0.0, replies ? (double)lat_sum / replies / 1e6 : 0.0,
           (double)lat_max / 1e6);
    return 0;
}
