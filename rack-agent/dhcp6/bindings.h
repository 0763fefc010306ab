/* DHCPv6 bindings: which address each client holds and until when.
 *
 * A binding belongs to a *host*, not to a DUID/IAID pair: netboot stages
 * (firmware, iPXE, the installer) come back under new DUIDs and IAIDs, and
 * EDK2 runs two clients under one DUID at once. Every IA that resolves to a
 * host's MAC gets the host's one reserved address, and the newest client
 * identity simply replaces the older one. Hosts without a reservation (the
 * optional pool) are keyed by their DUID instead, since there may be no MAC.
 *
 * Changes are reported to a sink (the lease file) so bindings survive a
 * restart; this module does no I/O. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dhcp6/wire.h"

typedef enum dhcp6_binding_kind {
    DHCP6_BINDING_HOST = 1, /* keyed by MAC; the address is the host's reservation */
    DHCP6_BINDING_POOL = 2, /* keyed by client DUID; the address comes from the pool */
} dhcp6_binding_kind;

enum { DHCP6_BINDING_MAX_HOLDERS = 4 };

typedef struct dhcp6_binding {
    dhcp6_binding_kind kind;
    struct in6_addr addr;
    uint64_t expires; /* unix seconds */
    bool committed;   /* false while only offered (Advertise) */
    bool declined;    /* the client said the address is in use elsewhere */
    uint8_t mac[6];   /* HOST: the key; POOL: the MAC if known, else zero */
    uint8_t duid_len; /* the newest client DUID seen for this binding */
    uint8_t duid[DHCP6_MAX_DUID];
    uint32_t iaid; /* the newest IAID seen */
    /* HOST bindings: the client IAs (hash of DUID and IAID) that currently
     * hold the address. EDK2 binds two IAs at once and releases them one at
     * a time; the binding goes only when the last holder releases it. Not
     * persisted: after a restart any holder's Release frees the binding. */
    uint64_t holders[DHCP6_BINDING_MAX_HOLDERS];
    uint8_t n_holders;
    /* POOL: the interface the address was handed out on, which the
     * per-interface cap counts it against (0: restored from the lease file). */
    int ifindex;
    /* Internal to bindings.c. */
    struct dhcp6_binding *free_next;               /* free-list link */
    struct dhcp6_binding *offer_prev, *offer_next; /* the queue of open offers */
    bool offered;                                  /* in that queue */
} dhcp6_binding;

typedef struct dhcp6_bindings dhcp6_bindings;

/* Called after every committed change (add, renew, release, decline) so the
 * caller can journal it. `removed` is true for a release. */
typedef void (*dhcp6_bindings_sink)(void *userdata, const dhcp6_binding *b, bool removed);

typedef struct dhcp6_pool {
    struct in6_addr first;
    struct in6_addr last;
} dhcp6_pool;

/* `pool` may be NULL (no pool: unknown hosts get nothing). */
int dhcp6_bindings_new(const dhcp6_pool *pool, dhcp6_bindings **ret);
dhcp6_bindings *dhcp6_bindings_free(dhcp6_bindings *t);
void dhcp6_bindings_set_sink(dhcp6_bindings *t, dhcp6_bindings_sink fn, void *userdata);

size_t dhcp6_bindings_count(const dhcp6_bindings *t);

dhcp6_binding *dhcp6_bindings_find_host(dhcp6_bindings *t, const uint8_t mac[6]);
dhcp6_binding *dhcp6_bindings_find_duid(dhcp6_bindings *t, const uint8_t *duid, size_t len);

/* The host's binding, created (uncommitted) if missing, the address set to
 * `reserved` (a changed reservation moves the binding). -ENOMEM. */
int dhcp6_bindings_host(dhcp6_bindings *t, const uint8_t mac[6], const struct in6_addr *reserved,
                        dhcp6_binding **ret);

/* How long an address offered in an Advertise is held for the Request that
 * should follow (RFC 8415 §18.3.1 lets a server keep it only briefly). A
 * client that Solicits again is held anew. */
#define DHCP6_BINDINGS_OFFER_HOLD 60

/* The DUID's pool binding, created if missing with a free pool address,
 * offered (uncommitted) for DHCP6_BINDINGS_OFFER_HOLD seconds, counted
 * against `ifindex`. Constant work per call, whatever the pool's size or
 * fill: addresses given back are reused first, then addresses never handed
 * out, then the oldest offer whose hold is over. -ENOSPC when the pool is
 * exhausted, -EDQUOT when `ifindex` holds its maximum of pool bindings,
 * -ENOENT when there is no pool. */
int dhcp6_bindings_pool(dhcp6_bindings *t, const uint8_t *duid, size_t duid_len, int ifindex,
                        uint64_t now, dhcp6_binding **ret);

/* Pool bindings one interface may hold at most (0: no limit). Offers,
 * leases and declined addresses count; reservations do not (the hosts file
 * bounds them). Relayed clients count against the interface their relay's
 * messages arrive on. */
void dhcp6_bindings_set_max_per_interface(dhcp6_bindings *t, uint32_t max);

typedef struct dhcp6_bindings_stats {
    uint64_t pool_probes;      /* address lookups made to find free pool addresses */
    uint64_t pool_exhausted;   /* -ENOSPC: no free address */
    uint64_t pool_capped;      /* -EDQUOT: the interface's cap reached */
    uint64_t offers_reclaimed; /* never-Requested offers whose address went to another client */
} dhcp6_bindings_stats;

const dhcp6_bindings_stats *dhcp6_bindings_get_stats(const dhcp6_bindings *t);

/* True if `addr` is inside the pool. */
bool dhcp6_bindings_in_pool(const dhcp6_bindings *t, const struct in6_addr *addr);

/* Records the client that now holds `b`, commits it until `expires` and
 * reports it to the sink. */
void dhcp6_bindings_commit(dhcp6_bindings *t, dhcp6_binding *b, const uint8_t *duid,
                           size_t duid_len, uint32_t iaid, uint64_t expires);

/* Releases a binding (the client gave the address back). */
void dhcp6_bindings_release(dhcp6_bindings *t, dhcp6_binding *b);

/* One client IA of a host gives the address back: the binding is released
 * only when no other IA recorded by dhcp6_bindings_commit() still holds it.
 * Returns true when the binding was released (and `b` freed). */
bool dhcp6_bindings_release_holder(dhcp6_bindings *t, dhcp6_binding *b, const uint8_t *duid,
                                   size_t duid_len, uint32_t iaid);

/* Marks a binding declined (the address is in use by someone else). A pool
 * address stays out of use until it expires; a reservation is kept, because
 * the host has no other address to go to, and the caller reports it. */
void dhcp6_bindings_decline(dhcp6_bindings *t, dhcp6_binding *b, uint64_t expires);

/* Restores a binding read back from the lease file (no sink call). Entries
 * that are already expired at `now` are skipped. */
int dhcp6_bindings_restore(dhcp6_bindings *t, const dhcp6_binding *b, uint64_t now);

/* Drops bindings expired before `now`; returns how many. */
size_t dhcp6_bindings_expire(dhcp6_bindings *t, uint64_t now);

/* Iterates over all bindings (for compaction of the lease file). */
bool dhcp6_bindings_next(const dhcp6_bindings *t, size_t *iter, const dhcp6_binding **ret);
