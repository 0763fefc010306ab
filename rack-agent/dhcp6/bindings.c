#include "bindings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "util.h"

/* An offered-but-not-requested pool address is held this long, so the
 * Request that follows an Advertise finds the same address. */
#define OFFER_HOLD_SECONDS 60

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

struct dhcp6_bindings {
    hashmap *by_mac;  /* HOST bindings, key = mac */
    hashmap *by_duid; /* POOL bindings, key = duid */
    hashmap *by_addr; /* POOL bindings, key = addr */
    bool has_pool;
    dhcp6_pool pool;
    uint64_t pool_size;       /* addresses in the pool (low 64 bits differ) */
    uint64_t pool_next;       /* offset where the next free-address scan starts */
    dhcp6_binding *free_list; /* released bindings kept for reuse */
    dhcp6_bindings_sink sink;
    void *sink_userdata;
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

static void pool_unlink(dhcp6_bindings *t, dhcp6_binding *b)
{
    if (hashmap_get(t->by_duid, b->duid, b->duid_len) == b) {
        hashmap_remove(t->by_duid, b->duid, b->duid_len);
    }
    if (hashmap_get(t->by_addr, &b->addr, 16) == b) {
        hashmap_remove(t->by_addr, &b->addr, 16);
    }
}

/* Finds a free pool address. Among any n+1 consecutive addresses at least
 * one is free when n are taken, so the scan is bounded by the binding count. */
static int pool_pick(dhcp6_bindings *t, uint64_t now, struct in6_addr *ret)
{
    uint64_t tries = hashmap_size(t->by_addr) + 1;
    if (tries > t->pool_size) {
        tries = t->pool_size;
    }
    uint64_t base = low64(&t->pool.first);
    for (uint64_t i = 0; i < tries; i++) {
        uint64_t off = (t->pool_next + i) % t->pool_size;
        struct in6_addr a = t->pool.first;
        set_low64(&a, base + off);
        dhcp6_binding *holder = hashmap_get(t->by_addr, &a, 16);
        if (holder && holder->expires < now) {
            /* An expired holder gives its address up on the spot. */
            pool_unlink(t, holder);
            binding_recycle(t, holder);
            holder = NULL;
        }
        if (!holder) {
            t->pool_next = (off + 1) % t->pool_size;
            *ret = a;
            return 0;
        }
    }
    return -ENOSPC;
}

int dhcp6_bindings_pool(dhcp6_bindings *t, const uint8_t *duid, size_t duid_len, uint64_t now,
                        dhcp6_binding **ret)
{
    if (!t->has_pool) {
        return -ENOENT;
    }
    if (duid_len == 0 || duid_len > DHCP6_MAX_DUID) {
        return -EINVAL;
    }
    dhcp6_binding *b = hashmap_get(t->by_duid, duid, duid_len);
    if (b && !b->declined) {
        *ret = b;
        return 0;
    }
    if (b) {
        /* The client declined its address: keep that one blocked (indexed by
         * address only) and give it a new one. */
        hashmap_remove(t->by_duid, b->duid, b->duid_len);
    }
    struct in6_addr addr;
    int r = pool_pick(t, now, &addr);
    if (r < 0) {
        return r;
    }
    b = binding_alloc(t);
    if (!b) {
        return -ENOMEM;
    }
    b->kind = DHCP6_BINDING_POOL;
    b->addr = addr;
    b->expires = now + OFFER_HOLD_SECONDS;
    memcpy(b->duid, duid, duid_len);
    b->duid_len = (uint8_t)duid_len;
    if (hashmap_put(t->by_duid, b->duid, b->duid_len, b) < 0) {
        binding_recycle(t, b);
        return -ENOMEM;
    }
    if (hashmap_put(t->by_addr, &b->addr, 16, b) < 0) {
        hashmap_remove(t->by_duid, b->duid, b->duid_len);
        binding_recycle(t, b);
        return -ENOMEM;
    }
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
        b = binding_alloc(t);
        if (!b) {
            return -ENOMEM;
        }
        *b = *src;
        if (hashmap_put(t->by_duid, b->duid, b->duid_len, b) < 0) {
            binding_recycle(t, b);
            return -ENOMEM;
        }
        if (hashmap_put(t->by_addr, &b->addr, 16, b) < 0) {
            hashmap_remove(t->by_duid, b->duid, b->duid_len);
            binding_recycle(t, b);
            return -ENOMEM;
        }
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
