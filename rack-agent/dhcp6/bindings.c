#include "dhcp6/bindings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "util.h"

/* Interfaces whose pool bindings are counted at once (served ones, and those
 * relays reach us on); more are refused rather than left uncounted. An entry
 * whose count fell to 0 is reused (iface_find()). */
#define MAX_IFACES 256

/* Identifies a client IA (DUID and IAID) among a host's holders. A fixed
 * key is enough: a collision only keeps a binding a little longer. */
static const uint8_t holder_key[16] = "rackboot-holder";

static uint64_t holder_id(const uint8_t *duid, size_t duid_len, uint32_t iaid)
{
    uint8_t buf[DHCP6_MAX_DUID + 4];
    size_t n = duid_len <= DHCP6_MAX_DUID ? duid_len : DHCP6_MAX_DUID;
    memcpy(buf, duid, n);
    buf[n] = (uint8_t)(iaid >> 24);
    buf[n + 1] = (uint8_t)(iaid >> 16);
    buf[n + 2] = (uint8_t)(iaid >> 8);
    buf[n + 3] = (uint8_t)iaid;
    return siphash24(holder_key, buf, n + 4);
}

static void holder_add(dhcp6_binding *b, uint64_t id)
{
    for (size_t i = 0; i < b->n_holders; i++) {
        if (b->holders[i] == id) {
            return;
        }
    }
    if (b->n_holders == DHCP6_BINDING_MAX_HOLDERS) {
        /* Forget the oldest: stages come and go, the newest matter. */
        memmove(b->holders, b->holders + 1, (DHCP6_BINDING_MAX_HOLDERS - 1) * sizeof(uint64_t));
        b->n_holders--;
    }
    b->holders[b->n_holders++] = id;
}

typedef struct iface_count {
    int ifindex;
    uint32_t n;
} iface_count;

/* The pool allocator does constant work per address (issue #10: a scan per
 * Solicit over a full pool of 4,096 took 3.3 ms). Pool addresses are
 * offsets from the pool's first address, and each is in one of three
 * places:
 *  - at or past `pool_fresh`: never handed out, taken in order;
 *  - in `freed`: given back (released, expired, or an offer reclaimed),
 *    reused first, last in first out;
 *  - held by a binding in `by_addr`.
 * Bindings restored from the lease file hold addresses anywhere, so both
 * `freed` and the fresh range may name an address that is held: it is
 * skipped when met, once (each restore or removal adds at most one such
 * entry, so this is constant work on average).
 * Offers that were never Requested wait in `offers`, oldest first; all are
 * held for the same time, so the head expires first and reclaiming it costs
 * one look. */
struct dhcp6_bindings {
    hashmap *by_mac;  /* HOST bindings, key = mac */
    hashmap *by_duid; /* POOL bindings, key = duid */
    hashmap *by_addr; /* POOL bindings, key = addr */
    bool has_pool;
    dhcp6_pool pool;
    uint64_t pool_size;  /* addresses in the pool (low 64 bits differ) */
    uint64_t pool_fresh; /* offsets below this were handed out before */
    uint64_t *freed;     /* offsets given back, a stack */
    size_t n_freed;
    /* Always at least n_freed + the pool bindings, so that giving an
     * address back never allocates (and cannot fail). */
    size_t cap_freed;
    dhcp6_binding *offers_head, *offers_tail;
    iface_count ifaces[MAX_IFACES];
    size_t n_ifaces;
    dhcp6_binding *free_list; /* released bindings kept for reuse */
    dhcp6_bindings_sink sink;
    void *sink_userdata;
    uint32_t max_per_interface;
    dhcp6_bindings_stats stats;
};

static dhcp6_binding *binding_alloc(dhcp6_bindings *t)
{
    dhcp6_binding *b = t->free_list;
    if (b) {
        t->free_list = b->free_next;
        memset(b, 0, sizeof(*b));
        return b;
    }
    return calloc(1, sizeof(*b));
}

static void binding_recycle(dhcp6_bindings *t, dhcp6_binding *b)
{
    b->free_next = t->free_list;
    t->free_list = b;
}

static uint64_t low64(const struct in6_addr *a)
{
    uint64_t v = 0;
    for (int i = 8; i < 16; i++) {
        v = (v << 8) | a->s6_addr[i];
    }
    return v;
}

static void set_low64(struct in6_addr *a, uint64_t v)
{
    for (int i = 15; i >= 8; i--) {
        a->s6_addr[i] = (uint8_t)v;
        v >>= 8;
    }
}

int dhcp6_bindings_new(const dhcp6_pool *pool, dhcp6_bindings **ret)
{
    dhcp6_bindings *t = calloc(1, sizeof(*t));
    if (!t) {
        return -ENOMEM;
    }
    if (pool) {
        /* A pool lies inside one /64 (the served link's prefix). */
        if (memcmp(&pool->first, &pool->last, 8) != 0 || low64(&pool->first) > low64(&pool->last)) {
            free(t);
            return -EINVAL;
        }
        t->has_pool = true;
        t->pool = *pool;
        t->pool_size = low64(&pool->last) - low64(&pool->first) + 1;
        if (t->pool_size == 0) {
            t->pool_size = UINT64_MAX; /* the whole /64 */
        }
    }
    if (hashmap_new(256, &t->by_mac) < 0 || hashmap_new(256, &t->by_duid) < 0 ||
        hashmap_new(256, &t->by_addr) < 0) {
        dhcp6_bindings_free(t);
        return -ENOMEM;
    }
    *ret = t;
    return 0;
}

dhcp6_bindings *dhcp6_bindings_free(dhcp6_bindings *t)
{
    if (!t) {
        return NULL;
    }
    void *v;
    size_t it = 0;
    while (t->by_mac && hashmap_next(t->by_mac, &it, &v)) {
        free(v);
    }
    /* Every pool binding is indexed by address (a declined one only there). */
    it = 0;
    while (t->by_addr && hashmap_next(t->by_addr, &it, &v)) {
        free(v);
    }
    while (t->free_list) {
        dhcp6_binding *b = t->free_list;
        t->free_list = b->free_next;
        free(b);
    }
    hashmap_free(t->by_mac);
    hashmap_free(t->by_duid);
    hashmap_free(t->by_addr);
    free(t->freed);
    free(t);
    return NULL;
}

void dhcp6_bindings_set_sink(dhcp6_bindings *t, dhcp6_bindings_sink fn, void *userdata)
{
    t->sink = fn;
    t->sink_userdata = userdata;
}

size_t dhcp6_bindings_count(const dhcp6_bindings *t)
{
    return hashmap_size(t->by_mac) + hashmap_size(t->by_addr);
}

dhcp6_binding *dhcp6_bindings_find_host(dhcp6_bindings *t, const uint8_t mac[6])
{
    return hashmap_get(t->by_mac, mac, 6);
}

dhcp6_binding *dhcp6_bindings_find_duid(dhcp6_bindings *t, const uint8_t *duid, size_t len)
{
    return hashmap_get(t->by_duid, duid, len);
}

int dhcp6_bindings_host(dhcp6_bindings *t, const uint8_t mac[6], const struct in6_addr *reserved,
                        dhcp6_binding **ret)
{
    dhcp6_binding *b = hashmap_get(t->by_mac, mac, 6);
    if (!b) {
        b = binding_alloc(t);
        if (!b) {
            return -ENOMEM;
        }
        b->kind = DHCP6_BINDING_HOST;
        memcpy(b->mac, mac, 6);
        if (hashmap_put(t->by_mac, b->mac, 6, b) < 0) {
            binding_recycle(t, b);
            return -ENOMEM;
        }
    }
    if (memcmp(&b->addr, reserved, sizeof(*reserved)) != 0) {
        /* The reservation changed: the old address is no longer the host's. */
        b->addr = *reserved;
        b->committed = false;
        b->declined = false;
    }
    *ret = b;
    return 0;
}

bool dhcp6_bindings_in_pool(const dhcp6_bindings *t, const struct in6_addr *addr)
{
    if (!t->has_pool || memcmp(addr, &t->pool.first, 8) != 0) {
        return false;
    }
    uint64_t v = low64(addr);
    return v >= low64(&t->pool.first) && v <= low64(&t->pool.last);
}

static iface_count *iface_find(dhcp6_bindings *t, int ifindex, bool create)
{
    for (size_t i = 0; i < t->n_ifaces; i++) {
        if (t->ifaces[i].ifindex == ifindex) {
            return &t->ifaces[i];
        }
    }
    if (!create) {
        return NULL;
    }
    /* An interface that holds nothing gives up its entry: ifindexes are not
     * reused soon (VLANs, hot-plugged NICs, veths each get a new one), so
     * keeping entries would refuse every new interface once MAX_IFACES had
     * been seen. Only MAX_IFACES interfaces that hold bindings at once fill
     * the table. */
    iface_count *c = NULL;
    if (t->n_ifaces < MAX_IFACES) {
        c = &t->ifaces[t->n_ifaces++];
    } else {
        for (size_t i = 0; i < t->n_ifaces && !c; i++) {
            if (t->ifaces[i].n == 0) {
                c = &t->ifaces[i];
            }
        }
        if (!c) {
            return NULL;
        }
    }
    *c = (iface_count){ .ifindex = ifindex };
    return c;
}

static void offer_unqueue(dhcp6_bindings *t, dhcp6_binding *b)
{
    if (!b->offered) {
        return;
    }
    if (b->offer_prev) {
        b->offer_prev->offer_next = b->offer_next;
    } else {
        t->offers_head = b->offer_next;
    }
    if (b->offer_next) {
        b->offer_next->offer_prev = b->offer_prev;
    } else {
        t->offers_tail = b->offer_prev;
    }
    b->offer_prev = b->offer_next = NULL;
    b->offered = false;
}

static void offer_queue(dhcp6_bindings *t, dhcp6_binding *b)
{
    offer_unqueue(t, b);
    b->offer_prev = t->offers_tail;
    b->offer_next = NULL;
    if (t->offers_tail) {
        t->offers_tail->offer_next = b;
    } else {
        t->offers_head = b;
    }
    t->offers_tail = b;
    b->offered = true;
}

/* Room to give back every pool address held, plus one more binding. */
static int reserve_freed(dhcp6_bindings *t)
{
    size_t need = t->n_freed + hashmap_size(t->by_addr) + 1;
    if (need <= t->cap_freed) {
        return 0;
    }
    size_t cap = t->cap_freed ? t->cap_freed : 64;
    while (cap < need) {
        cap *= 2;
    }
    uint64_t *grown = realloc(t->freed, cap * sizeof(*grown));
    if (!grown) {
        return -ENOMEM;
    }
    t->freed = grown;
    t->cap_freed = cap;
    return 0;
}

/* Takes a pool binding out of every index and gives its address back. */
static void pool_unlink(dhcp6_bindings *t, dhcp6_binding *b)
{
    if (hashmap_get(t->by_duid, b->duid, b->duid_len) == b) {
        hashmap_remove(t->by_duid, b->duid, b->duid_len);
    }
    offer_unqueue(t, b);
    if (hashmap_get(t->by_addr, &b->addr, 16) == b) {
        hashmap_remove(t->by_addr, &b->addr, 16);
        /* reserve_freed() made room when the binding was indexed. */
        RB_ASSERT(t->n_freed < t->cap_freed);
        t->freed[t->n_freed++] = low64(&b->addr) - low64(&t->pool.first);
        iface_count *c = iface_find(t, b->ifindex, false);
        if (c && c->n > 0) {
            c->n--;
        }
    }
}

static void pool_addr(const dhcp6_bindings *t, uint64_t off, struct in6_addr *ret)
{
    *ret = t->pool.first;
    set_low64(ret, low64(&t->pool.first) + off);
}

/* Finds a free pool address: one given back, else one never handed out,
 * else the address of the oldest offer whose hold is over. */
static int pool_pick(dhcp6_bindings *t, uint64_t now, struct in6_addr *ret)
{
    struct in6_addr a;
    while (t->n_freed > 0) {
        pool_addr(t, t->freed[--t->n_freed], &a);
        t->stats.pool_probes++;
        if (!hashmap_get(t->by_addr, &a, 16)) {
            *ret = a;
            return 0;
        }
        /* Held by a binding restored after it was freed: drop the entry. */
    }
    while (t->pool_fresh < t->pool_size) {
        pool_addr(t, t->pool_fresh++, &a);
        t->stats.pool_probes++;
        if (!hashmap_get(t->by_addr, &a, 16)) {
            *ret = a;
            return 0;
        }
        /* Held by a restored binding: skipped once, never met again. */
    }
    dhcp6_binding *oldest = t->offers_head;
    t->stats.pool_probes++;
    if (oldest && oldest->expires < now) {
        t->stats.offers_reclaimed++;
        a = oldest->addr;
        pool_unlink(t, oldest);
        binding_recycle(t, oldest);
        t->n_freed--; /* pool_unlink() pushed it: take it straight back */
        *ret = a;
        return 0;
    }
    t->stats.pool_exhausted++;
    return -ENOSPC;
}

/* Drops the oldest offers whose hold is over, a few per call so no call does
 * more than a constant amount of work; the periodic expiry sweep catches
 * whatever is left. */
static void reclaim_offers(dhcp6_bindings *t, uint64_t now)
{
    for (int i = 0; i < 2 && t->offers_head && t->offers_head->expires < now; i++) {
        dhcp6_binding *b = t->offers_head;
        t->stats.offers_reclaimed++;
        pool_unlink(t, b);
        binding_recycle(t, b);
    }
}

void dhcp6_bindings_set_max_per_interface(dhcp6_bindings *t, uint32_t max)
{
    t->max_per_interface = max;
}

const dhcp6_bindings_stats *dhcp6_bindings_get_stats(const dhcp6_bindings *t)
{
    return &t->stats;
}

int dhcp6_bindings_pool(dhcp6_bindings *t, const uint8_t *duid, size_t duid_len, int ifindex,
                        uint64_t now, dhcp6_binding **ret)
{
    if (!t->has_pool) {
        return -ENOENT;
    }
    if (duid_len == 0 || duid_len > DHCP6_MAX_DUID) {
        return -EINVAL;
    }
    dhcp6_binding *b = hashmap_get(t->by_duid, duid, duid_len);
    if (b && !b->declined) {
        if (!b->committed) {
            /* Soliciting again: the offer is held anew (and queued last,
             * which keeps the queue in expiry order). */
            b->expires = now + DHCP6_BINDINGS_OFFER_HOLD;
            offer_queue(t, b);
        }
        *ret = b;
        return 0;
    }
    if (b) {
        /* The client declined its address: keep that one blocked (indexed by
         * address only) and give it a new one. */
        hashmap_remove(t->by_duid, b->duid, b->duid_len);
    }
    /* Offers past their hold free their address and their interface's
     * share before the cap is looked at. */
    reclaim_offers(t, now);
    iface_count *c = iface_find(t, ifindex, true);
    if (!c || (t->max_per_interface > 0 && c->n >= t->max_per_interface)) {
        t->stats.pool_capped++;
        return -EDQUOT;
    }
    if (reserve_freed(t) < 0) {
        return -ENOMEM;
    }
    struct in6_addr addr;
    int r = pool_pick(t, now, &addr);
    if (r < 0) {
        return r;
    }
    b = binding_alloc(t);
    if (!b) {
        t->freed[t->n_freed++] = low64(&addr) - low64(&t->pool.first);
        return -ENOMEM;
    }
    b->kind = DHCP6_BINDING_POOL;
    b->addr = addr;
    b->expires = now + DHCP6_BINDINGS_OFFER_HOLD;
    b->ifindex = ifindex;
    memcpy(b->duid, duid, duid_len);
    b->duid_len = (uint8_t)duid_len;
    if (hashmap_put(t->by_duid, b->duid, b->duid_len, b) < 0) {
        t->freed[t->n_freed++] = low64(&addr) - low64(&t->pool.first);
        binding_recycle(t, b);
        return -ENOMEM;
    }
    if (hashmap_put(t->by_addr, &b->addr, 16, b) < 0) {
        hashmap_remove(t->by_duid, b->duid, b->duid_len);
        t->freed[t->n_freed++] = low64(&addr) - low64(&t->pool.first);
        binding_recycle(t, b);
        return -ENOMEM;
    }
    c->n++;
    offer_queue(t, b);
    *ret = b;
    return 0;
}

void dhcp6_bindings_commit(dhcp6_bindings *t, dhcp6_binding *b, const uint8_t *duid,
                           size_t duid_len, uint32_t iaid, uint64_t expires)
{
    if (b->kind == DHCP6_BINDING_HOST && duid_len <= DHCP6_MAX_DUID) {
        /* The newest client of this host replaces the older one. */
        memcpy(b->duid, duid, duid_len);
        b->duid_len = (uint8_t)duid_len;
    }
    b->iaid = iaid;
    b->expires = expires;
    b->committed = true;
    offer_unqueue(t, b); /* requested: no longer only an offer */
    if (b->kind == DHCP6_BINDING_HOST) {
        holder_add(b, holder_id(duid, duid_len, iaid));
    }
    if (t->sink) {
        t->sink(t->sink_userdata, b, false);
    }
}

void dhcp6_bindings_release(dhcp6_bindings *t, dhcp6_binding *b)
{
    if (t->sink) {
        t->sink(t->sink_userdata, b, true);
    }
    if (b->kind == DHCP6_BINDING_HOST) {
        hashmap_remove(t->by_mac, b->mac, 6);
    } else {
        pool_unlink(t, b);
    }
    binding_recycle(t, b);
}

bool dhcp6_bindings_release_holder(dhcp6_bindings *t, dhcp6_binding *b, const uint8_t *duid,
                                   size_t duid_len, uint32_t iaid)
{
    if (b->kind == DHCP6_BINDING_HOST && b->n_holders > 0) {
        uint64_t id = holder_id(duid, duid_len, iaid);
        for (size_t i = 0; i < b->n_holders; i++) {
            if (b->holders[i] == id) {
                memmove(b->holders + i, b->holders + i + 1,
                        (b->n_holders - i - 1) * sizeof(uint64_t));
                b->n_holders--;
                break;
            }
        }
        if (b->n_holders > 0) {
            return false;
        }
    }
    dhcp6_bindings_release(t, b);
    return true;
}

void dhcp6_bindings_decline(dhcp6_bindings *t, dhcp6_binding *b, uint64_t expires)
{
    b->declined = true;
    b->expires = expires;
    offer_unqueue(t, b); /* held until `expires`, not reclaimed as an offer */
    if (t->sink) {
        t->sink(t->sink_userdata, b, false);
    }
}

int dhcp6_bindings_restore(dhcp6_bindings *t, const dhcp6_binding *src, uint64_t now)
{
    if (src->expires < now) {
        return 0;
    }
    dhcp6_binding *b;
    if (src->kind == DHCP6_BINDING_HOST) {
        int r = dhcp6_bindings_host(t, src->mac, &src->addr, &b);
        if (r < 0) {
            return r;
        }
    } else if (src->kind == DHCP6_BINDING_POOL) {
        if (!dhcp6_bindings_in_pool(t, &src->addr) || src->duid_len == 0) {
            return 0; /* the pool changed since: forget it */
        }
        b = hashmap_get(t->by_duid, src->duid, src->duid_len);
        if (b) {
            pool_unlink(t, b);
            binding_recycle(t, b);
        }
        dhcp6_binding *holder = hashmap_get(t->by_addr, &src->addr, 16);
        if (holder) {
            pool_unlink(t, holder);
            binding_recycle(t, holder);
        }
        /* Counted against no interface's cap (ifindex 0): interface
         * numbers do not outlive a reboot. */
        iface_count *c = iface_find(t, 0, true);
        if (!c || reserve_freed(t) < 0) {
            return -ENOMEM;
        }
        b = binding_alloc(t);
        if (!b) {
            return -ENOMEM;
        }
        *b = *src;
        b->ifindex = 0;
        b->free_next = b->offer_prev = b->offer_next = NULL;
        b->offered = false;
        if (hashmap_put(t->by_duid, b->duid, b->duid_len, b) < 0) {
            binding_recycle(t, b);
            return -ENOMEM;
        }
        if (hashmap_put(t->by_addr, &b->addr, 16, b) < 0) {
            hashmap_remove(t->by_duid, b->duid, b->duid_len);
            binding_recycle(t, b);
            return -ENOMEM;
        }
        c->n++;
        return 0;
    } else {
        return -EINVAL;
    }
    b->expires = src->expires;
    b->committed = src->committed;
    b->declined = src->declined;
    b->iaid = src->iaid;
    b->duid_len = src->duid_len;
    memcpy(b->duid, src->duid, src->duid_len);
    return 0;
}

size_t dhcp6_bindings_expire(dhcp6_bindings *t, uint64_t now)
{
    size_t n = 0;
    /* Pool bindings are all in by_addr (declined ones only there). */
    hashmap *maps[] = { t->by_mac, t->by_addr };
    for (size_t m = 0; m < ARRAY_SIZE(maps); m++) {
        /* The map must not change while iterating: collect a batch, then
         * remove it, until a pass finds nothing. */
        dhcp6_binding *batch[256];
        size_t found;
        do {
            found = 0;
            size_t it = 0;
            void *v;
            while (found < ARRAY_SIZE(batch) && hashmap_next(maps[m], &it, &v)) {
                if (((dhcp6_binding *)v)->expires < now) {
                    batch[found++] = v;
                }
            }
            for (size_t i = 0; i < found; i++) {
                dhcp6_binding *victim = batch[i];
                if (victim->kind == DHCP6_BINDING_HOST) {
                    hashmap_remove(t->by_mac, victim->mac, 6);
                } else {
                    pool_unlink(t, victim);
                }
                binding_recycle(t, victim);
            }
            n += found;
        } while (found == ARRAY_SIZE(batch));
    }
    return n;
}

bool dhcp6_bindings_next(const dhcp6_bindings *t, size_t *iter, const dhcp6_binding **ret)
{
    /* One iterator over both maps: values below the first map's slot count
     * walk by_mac, the rest by_addr (offset by a large constant). */
    const size_t split = (size_t)1 << (sizeof(size_t) * 8 - 2);
    void *v;
    if (*iter < split) {
        size_t it = *iter;
        if (hashmap_next(t->by_mac, &it, &v)) {
            *iter = it;
            *ret = v;
            return true;
        }
        *iter = split;
    }
    size_t it = *iter - split;
    if (hashmap_next(t->by_addr, &it, &v)) {
        *iter = it + split;
        *ret = v;
        return true;
    }
    return false;
}
