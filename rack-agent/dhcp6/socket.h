/* The DHCPv6 server's socket: libuv I/O around the pure dhcp6_server.
 *
 * uv_udp cannot deliver IPV6_PKTINFO (which interface and destination a
 * datagram had), so the socket is opened here and read with recvmmsg(2) in
 * batches into fixed buffers under a uv_poll: no allocation per packet.
 * The answers to one batch go out together with one sendmmsg(2). Under
 * steady load a wake-up that read only a few datagrams waits 300 us and
 * reads again, so fewer wake-ups carry more datagrams (the bounds of that
 * are in socket-internal.h). Datagrams on interfaces that are not served are
 * ignored unless they come from a relay (relays unicast to us on any
 * interface). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dhcp6/server.h"

typedef struct dhcp6_socket_config {
    uint16_t port;
    const unsigned *ifindexes; /* served on-link interfaces: ff02::1:2 is joined there */
    size_t n_ifindexes;
    bool no_wait; /* never wait for more datagrams after a small batch */
} dhcp6_socket_config;

typedef struct dhcp6_socket_stats {
    uint64_t batches;         /* recvmmsg(2) calls that returned datagrams */
    uint64_t received;        /* datagrams read */
    uint64_t sent;            /* answers sent */
    uint64_t flushes;         /* sendmmsg(2) batches: one per batch read with answers */
    uint64_t waits;           /* pacer waits before reading again */
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
