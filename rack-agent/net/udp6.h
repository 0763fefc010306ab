/* IPv6 UDP sockets that know their local address: what the DHCPv6 and TFTP
 * servers both need and uv_udp cannot give (it delivers no IPV6_PKTINFO).
 * The socket is read with recvmsg/recvmmsg under uv_poll by the caller, and
 * written one datagram at a time (udp6_send) or a batch at a time through a
 * send queue (udp6_sendq_*, one sendmmsg(2) for many answers). */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Opens a non-blocking, close-on-exec AF_INET6 datagram socket with
 * SO_REUSEADDR and IPV6_RECVPKTINFO, IPV6_V6ONLY as asked, bound to `addr`.
 * *ret_port gets the bound port (useful when `addr` asked for port 0). */
int udp6_open(const struct sockaddr_in6 *addr, bool v6only, int *ret_fd, uint16_t *ret_port);

/* The IPV6_PKTINFO of a received message: the destination address it was
 * sent to and the interface it arrived on. False when there is none. */
bool udp6_pktinfo(struct msghdr *mh, struct in6_pktinfo *ret);

/* Sends one datagram to `to`, out of interface `ifindex` (0: the kernel's
 * choice) from source `src` (NULL or :: for the kernel's choice). Returns
 * the bytes sent or a negative errno; retries on EINTR, never blocks. */
ssize_t udp6_send(int fd, const struct sockaddr_in6 *to, const void *buf, size_t len,
                  const struct in6_addr *src, unsigned ifindex);

enum {
    /* Datagrams one send queue holds (and one sendmmsg(2) sends at most;
     * the kernel's own cap, UIO_MAXIOV, is 1024). */
    UDP6_SENDQ_MAX = 64,
};

/* Ancillary data of one queued datagram: its IPV6_PKTINFO. */
typedef union udp6_cmsg {
    struct cmsghdr align;
    uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
} udp6_cmsg;

/* A batch of datagrams for one sendmmsg(2). Fixed size, no allocation:
 * embed it in the struct that owns the socket. The payloads are NOT copied:
 * each must stay where it is until udp6_sendq_flush() returns. */
typedef struct udp6_sendq {
    size_t n;
    struct mmsghdr msgs[UDP6_SENDQ_MAX];
    struct iovec iov[UDP6_SENDQ_MAX];
    struct sockaddr_in6 to[UDP6_SENDQ_MAX];
    udp6_cmsg control[UDP6_SENDQ_MAX];
} udp6_sendq;

/* Queues one datagram with the same addressing as udp6_send(). The queue
 * refers to `buf` until it is flushed. -ENOSPC when the queue is full. */
int udp6_sendq_add(udp6_sendq *q, const struct sockaddr_in6 *to, const void *buf, size_t len,
                   const struct in6_addr *src, unsigned ifindex);

/* Sends every queued datagram with as few sendmmsg(2) calls as the kernel
 * allows (one, normally) and empties the queue. Returns how many were sent.
 * *err (may be NULL) gets 0, or the negative errno of the first datagram
 * that was not sent. A datagram the kernel refuses on its own (EMSGSIZE,
 * ENETUNREACH, ...) is skipped and the rest still go; when the socket's send
 * buffer is full (EAGAIN) the rest are dropped at once instead of being
 * tried one call each, since they would fail the same way (UDP: the peers
 * retransmit). Never blocks; retries on EINTR. */
size_t udp6_sendq_flush(int fd, udp6_sendq *q, int *err);
