/* store/rowcache: what a backend's lookups by name answered (a rack's,
 * a host's, an install's row), kept for the length of one write
 * transaction.
 *
 * Under PostgreSQL's writer lock no other connection writes, so inside a
 * write transaction a row read once stays as read until this connection
 * writes it: the backend drops (or writes through) what its own writes
 * change, and clears everything at every transaction boundary and
 * ROLLBACK TO. An event batch names the same few hosts and installs again
 * and again, and a sync reads its rack three times: each read answered
 * here is a statement the server does not run (deploy/HA.md).
 *
 * Bounded: a full cache starts over empty. Not thread-safe (one
 * connection, one thread: backend.h). */
#pragma once

#include <stdint.h>

#include "store/backend.h"

typedef struct rowcache rowcache;

/* A cached row; which fields mean something is the cache's business. */
typedef struct rowcache_row {
    int64_t id;                /* the row's id (> 0) */
    int64_t rack_id;           /* a host's */
    uint64_t generation;       /* a rack's */
    store_install_ref install; /* an install's, as install_find reads it */
    /* A host's installs, when read with it (the backend says until when:
     * installs_epoch): its active one (id 0: none) and its latest one. */
    uint64_t installs_epoch; /* 0: not read */
    store_install_ref active;
    bool has_last;
    install_state last_state;
    uint32_t last_attempt;
} rowcache_row;

int rowcache_new(rowcache **ret);
rowcache *rowcache_free(rowcache *c);
void rowcache_clear(rowcache *c);

/* The row cached under `key` / with this id, or NULL; the pointer lives
 * until the cache next changes. */
rowcache_row *rowcache_get(const rowcache *c, const char *key);
rowcache_row *rowcache_get_id(const rowcache *c, int64_t id);

/* Caches a copy of `row` under `key`, replacing any. A key too long or
 * no memory: nothing is cached (a later lookup asks the database). */
void rowcache_put(rowcache *c, const char *key, const rowcache_row *row);

/* Forgets the row with this id. */
void rowcache_drop_id(rowcache *c, int64_t id);
