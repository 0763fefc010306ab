/* store/rowcache: see rowcache.h. Two hash maps (common/hashmap.h) over one
 * array of entries, by key and by id; entries are taken in order and all
 * given back at once (clear), so a dropped entry's slot waits for that. */
#include "store/rowcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "store/types.h"

/* Rows a transaction keeps: a group of 256 agents' jobs names more, and
 * then the cache starts over (still correct, only asked again). */
#define ROWCACHE_MAX 1024
/* Keys: names (STORE_NAME_MAX) and install ids (STORE_ID_LEN). */
#define ROWCACHE_KEY_MAX STORE_NAME_MAX

typedef struct entry {
    char key[ROWCACHE_KEY_MAX + 1];
    int64_t id; /* the by-id map's key */
    rowcache_row row;
} entry;

struct rowcache {
    hashmap *by_key, *by_id;
    size_t n; /* entries taken */
    entry entries[ROWCACHE_MAX];
};

int rowcache_new(rowcache **ret)
{
    rowcache *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    int r = hashmap_new(ROWCACHE_MAX, &c->by_key);
    if (r >= 0) {
        r = hashmap_new(ROWCACHE_MAX, &c->by_id);
    }
    if (r < 0) {
        rowcache_free(c);
        return r;
    }
    *ret = c;
    return 0;
}

rowcache *rowcache_free(rowcache *c)
{
    if (c) {
        hashmap_free(c->by_key);
        hashmap_free(c->by_id);
        free(c);
    }
    return NULL;
}

void rowcache_clear(rowcache *c)
{
    if (c && c->n > 0) {
        hashmap_clear(c->by_key);
        hashmap_clear(c->by_id);
        c->n = 0;
    }
}

rowcache_row *rowcache_get(const rowcache *c, const char *key)
{
    size_t len = strlen(key);
    if (!c || c->n == 0 || len > ROWCACHE_KEY_MAX) {
        return NULL;
    }
    entry *e = hashmap_get(c->by_key, key, len);
    return e ? &e->row : NULL;
}

rowcache_row *rowcache_get_id(const rowcache *c, int64_t id)
{
    if (!c || c->n == 0) {
        return NULL;
    }
    entry *e = hashmap_get(c->by_id, &id, sizeof(id));
    return e ? &e->row : NULL;
}

static void forget(rowcache *c, entry *e)
{
    hashmap_remove(c->by_key, e->key, strlen(e->key));
    hashmap_remove(c->by_id, &e->id, sizeof(e->id));
}

void rowcache_put(rowcache *c, const char *key, const rowcache_row *row)
{
    size_t len = strlen(key);
    if (!c || len > ROWCACHE_KEY_MAX) {
        return;
    }
    entry *old = hashmap_get(c->by_key, key, len);
    if (old) {
        forget(c, old);
    }
    old = hashmap_get(c->by_id, &row->id, sizeof(row->id));
    if (old) {
        forget(c, old);
    }
    if (c->n == ROWCACHE_MAX) {
        rowcache_clear(c);
    }
    entry *e = &c->entries[c->n];
    memcpy(e->key, key, len + 1);
    e->id = row->id;
    e->row = *row;
    if (hashmap_put(c->by_key, e->key, len, e) < 0) {
        return;
    }
    if (hashmap_put(c->by_id, &e->id, sizeof(e->id), e) < 0) {
        hashmap_remove(c->by_key, e->key, len);
        return;
    }
    c->n++;
}

void rowcache_drop_id(rowcache *c, int64_t id)
{
    if (!c || c->n == 0) {
        return;
    }
    entry *e = hashmap_get(c->by_id, &id, sizeof(id));
    if (e) {
        forget(c, e);
    }
}
