/* The DHCPv6 server's decisions (RFC 8415 §16, §18.3; RFC 9915): given one
 * received datagram, which answer to send, if any.
 *
 * No sockets and no clock: the caller passes the time and where the datagram
 * came from, and sends what comes back. Only hosts with an install intent
 * (or, when configured, the pool) are answered; everyone else is ignored so
 * it falls through to its local disk. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dhcp6/bindings.h"
#include "dhcp6/wire.h"
#include "model/intent.h"

enum {
    DHCP6_SERVER_MAX_DNS = 8,
    DHCP6_SERVER_MAX_SEARCH = 8,
    /* Answers are small (~200 bytes), but nested Relay-replies and a long
     * Interface-Id can add up; UDP fragments anything past the MTU. */
    DHCP6_SERVER_MAX_PACKET = 4096,
    DHCP6_SERVER_MAX_TRUSTED_RELAYS = 32,
    DHCP6_PREFERENCE_MAX = 255,
};

/* An address prefix: `len` leading bits of `addr` (128 names one address). */
typedef struct dhcp6_prefix {
    struct in6_addr addr;
    uint8_t len;
} dhcp6_prefix;

/* True if `a` lies in `p`. */
bool dhcp6_prefix_contains(const dhcp6_prefix *p, const struct in6_addr *a);

typedef struct dhcp6_server_config {
    uint8_t duid[DHCP6_MAX_DUID]; /* our persistent server DUID */
    uint16_t duid_len;
    uint32_t preferred_lifetime;
    uint32_t valid_lifetime;
    bool rapid_commit;
    /* The Preference option of our Advertises (RFC 8415 §21.8). A client
     * Requests at once from a server advertising DHCP6_PREFERENCE_MAX
     * instead of collecting Advertises for its first retransmission time
     * (§18.2.1): the usual value, and a rack's primary agent's. A second
     * agent of the rack advertises less, so while the primary answers,
     * clients take the primary; once it is gone they take the second one
     * after that wait (about 1 s). */
    uint8_t preference;
    struct in6_addr dns[DHCP6_SERVER_MAX_DNS]; /* rack defaults */
    size_t n_dns;
    const char *search[DHCP6_SERVER_MAX_SEARCH]; /* rack defaults, not copied */
    size_t n_search;
    struct in6_addr advertise_address; /* hosts reach this agent here */
    uint16_t http_port;                /* in boot URLs when not 80 */
    bool has_pool;
    dhcp6_pool pool;
    /* Relays whose Relay-forward messages are answered (by source address).
     * None by default: a relayed message carries the client's identity
     * (option 79, the peer-address) in the relay's words, so only relays
     * the operator names are believed. */
    dhcp6_prefix trusted_relays[DHCP6_SERVER_MAX_TRUSTED_RELAYS];
    size_t n_trusted_relays;
} dhcp6_server_config;

/* Where a datagram came from. */
typedef struct dhcp6_rx_info {
    struct in6_addr src;
    uint16_t src_port;
    int ifindex;
    bool dst_multicast; /* sent to ff02::1:2 (or ff05::1:3) */
} dhcp6_rx_info;

/* What to send back. */
typedef struct dhcp6_tx {
    uint8_t buf[DHCP6_SERVER_MAX_PACKET];
    size_t len;
    struct in6_addr dst;
    uint16_t dst_port;
    int ifindex;
} dhcp6_tx;

/* How the client was recognized, for logs and events. */
typedef enum dhcp6_client_kind {
    DHCP6_CLIENT_GENERIC = 0,
    DHCP6_CLIENT_IPXE,
    DHCP6_CLIENT_UEFI_PXE,
    DHCP6_CLIENT_UEFI_HTTP,
} dhcp6_client_kind;

const char *dhcp6_client_kind_to_string(dhcp6_client_kind k);

/* Told when a host is bound (Reply to Request or Rapid Commit), so the agent
 * can journal `dhcp_bound` and the DUID-to-MAC binding. */
typedef void (*dhcp6_bound_fn)(void *userdata, const intent *in, const uint8_t mac[6],
                               const struct in6_addr *addr, const uint8_t *duid, size_t duid_len,
                               dhcp6_client_kind kind);

/* Answers whether `addr` is on the link the message came from: for direct
 * messages the interface's own global prefixes, for relayed ones the link
 * named by the innermost relay's link-address. */
typedef bool (*dhcp6_on_link_fn)(void *userdata, int ifindex, const struct in6_addr *link_addr,
                                 const struct in6_addr *addr);

typedef struct dhcp6_server_stats {
    uint64_t received;
    uint64_t malformed;
    uint64_t dropped;           /* RFC 8415 §16 discards (server id rules, unicast ...) */
    uint64_t ignored_no_intent; /* hosts without intent or pool: left to boot from disk */
    uint64_t advertise;
    uint64_t reply;
    uint64_t no_addrs;              /* pool exhausted */
    uint64_t relay_untrusted;       /* Relay-forward from a source not in trusted_relays */
    uint64_t direct_not_link_local; /* direct message from a non-link-local source */
    uint64_t by_type[14];           /* received, per message type */
} dhcp6_server_stats;

typedef struct dhcp6_server dhcp6_server;

/* The server reads intents from `store` and keeps bindings in `bindings`;
 * both must outlive it. The config is copied. */
int dhcp6_server_new(const dhcp6_server_config *cfg, intents_store *store, dhcp6_bindings *bindings,
                     dhcp6_server **ret);
dhcp6_server *dhcp6_server_free(dhcp6_server *s);

void dhcp6_server_on_bound(dhcp6_server *s, dhcp6_bound_fn fn, void *userdata);
void dhcp6_server_on_link(dhcp6_server *s, dhcp6_on_link_fn fn, void *userdata);

/* Handles one datagram at unix time `now`. Returns 1 with *tx filled when an
 * answer is to be sent, 0 when the datagram is dropped or ignored. Never
 * fails on input: malformed datagrams are counted and dropped. */
int dhcp6_server_handle(dhcp6_server *s, const uint8_t *data, size_t len, const dhcp6_rx_info *rx,
                        uint64_t now, dhcp6_tx *tx);

const dhcp6_server_stats *dhcp6_server_get_stats(const dhcp6_server *s);
