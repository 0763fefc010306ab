#include "hashmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util.h"

typedef struct slot {
    const void *key; /* NULL: empty */
    uint64_t hash;
    size_t key_len;
    void *value;
} slot;

struct hashmap {
    slot *slots;
    size_t n_slots; /* a power of two */
    size_t size;
    uint8_t sipkey[16];
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

uint64_t siphash24(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    size_t full = len - len % 8;

    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = load_le64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    uint8_t tail[8] = { 0 };
    memcpy(tail, in + full, len % 8);
    b |= load_le64(tail);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static size_t round_up_pow2(size_t n)
{
    size_t p = 16;
    while (p < n) {
        p <<= 1;
    }
    return p;
}

int hashmap_new(size_t capacity_hint, hashmap **ret)
{
    hashmap *m = calloc(1, sizeof(*m));
    if (!m) {
        return -ENOMEM;
    }
    /* Keep the load factor at or under 1/2 so probe runs stay short. */
    if (capacity_hint > SIZE_MAX / 4) {
        free(m);
        return -ENOMEM;
    }
    m->n_slots = round_up_pow2(capacity_hint * 2);
    m->slots = calloc(m->n_slots, sizeof(slot));
    if (!m->slots) {
        free(m);
        return -ENOMEM;
    }
    if (getrandom(m->sipkey, sizeof(m->sipkey), 0) != (ssize_t)sizeof(m->sipkey)) {
        /* No entropy this early is a broken system, not an input problem. */
        free(m->slots);
        free(m);
        return -EIO;
    }
    *ret = m;
    return 0;
}

hashmap *hashmap_free(hashmap *m)
{
    if (m) {
        free(m->slots);
        free(m);
    }
    return NULL;
}

size_t hashmap_size(const hashmap *m)
{
    return m->size;
}

static slot *find(const hashmap *m, const void *key, size_t key_len, uint64_t h)
{
    size_t mask = m->n_slots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot *s = &m->slots[i];
        if (!s->key) {
            return s;
        }
        if (s->hash == h && s->key_len == key_len && memcmp(s->key, key, key_len) == 0) {
            return s;
        }
    }
}

static int grow(hashmap *m)
{
    size_t n = m->n_slots * 2;
    slot *fresh = calloc(n, sizeof(slot));
    if (!fresh) {
        return -ENOMEM;
    }
    slot *old = m->slots;
    size_t old_n = m->n_slots;
    m->slots = fresh;
    m->n_slots = n;
    for (size_t i = 0; i < old_n; i++) {
        if (old[i].key) {
            *find(m, old[i].key, old[i].key_len, old[i].hash) = old[i];
        }
    }
    free(old);
    return 0;
}

int hashmap_put(hashmap *m, const void *key, size_t key_len, void *value)
{
    RB_ASSERT(key);
    uint64_t h = siphash24(m->sipkey, key, key_len);
    slot *s = find(m, key, key_len, h);
    if (s->key) {
        s->key = key;
        s->value = value;
        return 0;
    }
    if ((m->size + 1) * 2 > m->n_slots) {
        int r = grow(m);
        if (r < 0) {
            return r;
        }
        s = find(m, key, key_len, h);
    }
    *s = (slot){ .key = key, .hash = h, .key_len = key_len, .value = value };
    m->size++;
    return 0;
}

void *hashmap_get(const hashmap *m, const void *key, size_t key_len)
{
    uint64_t h = siphash24(m->sipkey, key, key_len);
    slot *s = find(m, key, key_len, h);
    return s->key ? s->value : NULL;
}

void *hashmap_remove(hashmap *m, const void *key, size_t key_len)
{
    uint64_t h = siphash24(m->sipkey, key, key_len);
    slot *s = find(m, key, key_len, h);
    if (!s->key) {
        return NULL;
    }
    void *value = s->value;
    size_t mask = m->n_slots - 1;
    size_t hole = (size_t)(s - m->slots);
    s->key = NULL;
    m->size--;
    /* Backward-shift deletion: move later members of the probe run into the
     * hole when their home slot allows it, so no tombstones accumulate. */
    for (size_t j = (hole + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        bool movable = (j > hole) ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            m->slots[hole] = m->slots[j];
            m->slots[j].key = NULL;
            hole = j;
        }
    }
    return value;
}

void hashmap_clear(hashmap *m)
{
    memset(m->slots, 0, m->n_slots * sizeof(slot));
    m->size = 0;
}

bool hashmap_next(const hashmap *m, size_t *iter, void **ret_value)
{
    for (size_t i = *iter; i < m->n_slots; i++) {
        if (m->slots[i].key) {
            *ret_value = m->slots[i].value;
            *iter = i + 1;
            return true;
        }
    }
    *iter = m->n_slots;
    return false;
}
