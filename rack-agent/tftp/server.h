/* The TFTP server's sockets on the agent's libuv loop: read-only, IPv6 and
 * v4-mapped IPv4.
 *
 * One listening socket receives requests with IPV6_RECVPKTINFO. Each read
 * request opens its file through files.h, negotiates (tftp/wire.h) and gets
 * a socket of its own on an ephemeral port, bound to the local address the
 * request was sent to (with the interface as scope for link-local), a
 * uv_poll and a uv_timer, driving a tftp/transfer.h state machine. A packet
 * on a transfer's port from anyone but its client gets ERROR 5 and the
 * transfer goes on (RFC 1350 §4). Write requests get ERROR 2, modes other
 * than octet ERROR 4, requests past max_transfers ERROR 0 "Server busy",
 * requests from an address that already has max_transfers_per_source open
 * ERROR 0 "Too many transfers from this address" (so one client, or one
 * spoofed source, cannot take every slot; see transfer.h for how long a
 * silent client keeps one).
 * Refusals of requests go out from the listening socket, from the address
 * the request was sent to.
 *
 * Per block the cost is what the protocol needs and no more: a window goes
 * out in one sendmmsg(2), its runs of full blocks as UDP GSO messages where
 * the kernel takes them; the file is read ahead into the transfer's buffer
 * after a window is out, not per block; ACKs are taken with recvmmsg(2);
 * the retransmission timer is moved only when it must fire earlier (one
 * firing early is armed again), not on every ACK. */
#pragma once

#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#include "files/files.h"
#include "metrics/metrics.h"

typedef struct tftp_server tftp_server;

/* A machine fetches a couple of files at a time (EDK2's tsize probe and the
 * real request, iPXE's next file); 8 leaves room for a few behind one NAT
 * or relay without letting one address take a rack's worth of slots. */
#define TFTP_DEFAULT_MAX_TRANSFERS_PER_SOURCE 8u

typedef struct tftp_server_config {
    struct sockaddr_in6 listen;
    unsigned max_transfers;
    /* Transfers open at once from one address (the port does not count);
     * 0: TFTP_DEFAULT_MAX_TRANSFERS_PER_SOURCE. */
    unsigned max_transfers_per_source;
    uint32_t max_blksize;    /* cap for negotiated blksize; the MTU lowers it */
    uint32_t max_windowsize; /* cap for negotiated windowsize */
    uint32_t timeout_ms;     /* first retransmission timeout (doubles, capped) */
    uint32_t max_timeout_ms;
    unsigned retries; /* retransmissions of one window before giving up */
} tftp_server_config;

typedef struct tftp_server_stats {
    uint64_t requests; /* RRQ and WRQ received */
    uint64_t transfers_ok;
    uint64_t transfers_failed;
    uint64_t transfers_aborted; /* client ERROR before data, e.g. EDK2's tsize probe */
    uint64_t refused;           /* requests answered with ERROR: not found, access, WRQ, mode */
    uint64_t busy;              /* refused for max_transfers */
    uint64_t per_source;        /* refused for max_transfers_per_source */
    uint64_t malformed;         /* requests that do not parse */
    uint64_t bytes_sent;        /* DATA payload, retransmissions included */
    uint64_t retransmits;
    uint64_t errors_sent; /* ERROR packets we sent */
    uint64_t unknown_tid; /* packets from a stranger on a transfer's port */
    uint64_t send_errors;
    uint64_t active; /* gauge: transfers open now */
} tftp_server_stats;

/* Binds cfg->listen and starts serving names through `f`, which must
 * outlive the server. Returns a negative errno (bind, socket) on failure. */
int tftp_server_open(uv_loop_t *loop, const tftp_server_config *cfg, files *f, tftp_server **ret);
/* Registers the counters as rackboot_tftp_* series. */
int tftp_server_register_metrics(tftp_server *s, metrics *m);
const tftp_server_stats *tftp_server_get_stats(const tftp_server *s);
/* What a transfer did, for an observer (the install flow's progress). */
typedef enum tftp_event {
    TFTP_EVENT_STARTED, /* its first DATA went out (a tsize probe that ends at the OACK never gets
                           here) */
    TFTP_EVENT_SENT,    /* every block was acknowledged: the client has the whole file */
} tftp_event;
/* `path` is the name the client asked for, as it asked. */
typedef void (*tftp_observer_fn)(void *userdata, tftp_event ev, const struct sockaddr_in6 *client,
                                 const char *path);
/* One observer (NULL: none); it runs on the loop, inside the server: it must
 * not close the server. */
void tftp_server_observe(tftp_server *s, tftp_observer_fn fn, void *userdata);

/* The bound port (useful with port 0). */
uint16_t tftp_server_port(const tftp_server *s);
/* Stops listening and ends every transfer; the memory goes once libuv has
 * closed the handles (run the loop). The stats stay readable until then.
 * Accepts NULL. */
void tftp_server_close(tftp_server *s);
