/* An open-addressing hash map from byte-string keys to pointers.
 *
 * Keys are not copied: each key points into the value it indexes (a MAC
 * inside a host record, a DUID inside a binding), so an entry costs 24 bytes
 * and lookups do no allocation. Keys come from the network, so the hash is
 * SipHash-2-4 under a random per-map key: a peer cannot choose keys that all
 * land in one bucket. Not thread-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hashmap hashmap;

/* `capacity_hint` entries fit without rehashing. */
int hashmap_new(size_t capacity_hint, hashmap **ret);
hashmap *hashmap_free(hashmap *m);

size_t hashmap_size(const hashmap *m);

/* Inserts or replaces. `key` must stay valid and unchanged while the entry
 * exists. Returns 0, or -ENOMEM (the map is unchanged). */
int hashmap_put(hashmap *m, const void *key, size_t key_len, void *value);
void *hashmap_get(const hashmap *m, const void *key, size_t key_len);
/* Removes the entry and returns its value, or NULL if there was none. */
void *hashmap_remove(hashmap *m, const void *key, size_t key_len);
void hashmap_clear(hashmap *m);

/* Iteration: `*iter` starts at 0; returns false when done. The map must not
 * change while iterating (removal shifts entries between slots). */
bool hashmap_next(const hashmap *m, size_t *iter, void **ret_value);

/* SipHash-2-4 of data under a 16-byte key (Aumasson & Bernstein, 2012). */
uint64_t siphash24(const uint8_t key[16], const void *data, size_t len);
