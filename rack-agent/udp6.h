/* IPv6 UDP sockets that know their local address: what the DHCPv6 and TFTP
 * servers both need and uv_udp cannot give (it delivers no IPV6_PKTINFO).
 * The socket is read with recvmsg/recvmmsg under uv_poll by the caller. */
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
