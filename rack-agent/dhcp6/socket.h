/* The DHCPv6 server's socket: libuv I/O around the pure dhcp6_server.
 *
 * uv_udp cannot deliver IPV6_PKTINFO (which interface and destination a
 * datagram had), so the socket is opened here and read with recvmmsg(2) in
 * batches into fixed buffers under a uv_poll: no allocation per packet.
 * Datagrams on interfaces that are not served are ignored unless they come
 * from a relay (relays unicast to us on any interface). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server.h"

typedef struct dhcp6_socket_config {
    uint16_t port;
    const unsigned *ifindexes; /* served on-link interfaces: ff02::1:2 is joined there */
    size_t n_ifindexes;
} dhcp6_socket_config;

typedef struct dhcp6_socket_stats {
    uint64_t batches;
    uint64_t truncated;       /* larger than our buffer: dropped */
    uint64_t foreign_ifindex; /* direct messages on an interface we do not serve */
    uint64_t send_errors;
} dhcp6_socket_stats;

typedef struct dhcp6_socket dhcp6_socket;

/* Opens, binds [::]:port, joins ff02::1:2 on every interface and starts
 * reading. `server` must outlive the socket. */
int dhcp6_socket_open(uv_loop_t *loop, const dhcp6_socket_config *cfg, dhcp6_server *server,
                      dhcp6_socket **ret);
/* Stops reading; the memory is freed once libuv closed the poll handle. */
void dhcp6_socket_close(dhcp6_socket *s);
const dhcp6_socket_stats *dhcp6_socket_get_stats(const dhcp6_socket *s);
/* The port actually bound (useful with port 0 in tests). */
uint16_t dhcp6_socket_port(const dhcp6_socket *s);
