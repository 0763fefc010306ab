/* feed: the generation moves and stored events of the other controllers
 * on a shared store, heard on the loop (issue 17 §1 "Several controllers
 * share one database, all active").
 *
 * A controller knows of the writes it makes itself (hub_poke() from the
 * API and the expiry). On a store several controllers write (PostgreSQL),
 * an install made through one must also wake the agents parked on the
 * others, within the fan-out budget. The store's change feed
 * (store_feed_open()) is a connection of its own that hears of every
 * committed generation move; this module watches its socket from the
 * loop and calls `on_change` when moves arrived:
 *
 *   - at once for each read that brought notifications: once per rack
 *     named in them (a rack moved by many writes in a burst is checked
 *     once), or once for every rack when they named more than
 *     FEED_RACKS_MAX;
 *   - for every rack once after the feed reconnected (moves made while
 *     it was down were not announced), reconnecting off the loop
 *     (libuv's thread pool) every FEED_RETRY_MS until it succeeds;
 *   - for every rack every FEED_SAFETY_MS anyway, a safety net for a
 *     notification lost in a way the connection did not notice.
 *
 * Events stored through another controller are heard the same way
 * (FEED_EVENTS, once per read that brought any, and with every "every
 * rack" above): the operators' `watch` and the web view here show them.
 *
 * On a store with one controller (SQLite) there is nothing to hear:
 * feed_new() gives no feed and succeeds. */
#pragma once

#include <stdint.h>
#include <uv.h>

#include "metrics/metrics.h"
#include "store.h"

#define FEED_SAFETY_MS 5000u
#define FEED_RETRY_MS  1000u
#define FEED_RACKS_MAX 64u /* distinct racks told one by one per read */

typedef struct feed feed;
typedef enum feed_change {
    FEED_GENERATION = 1, /* `rack` moved; NULL: any rack may have */
    FEED_EVENTS,         /* events were stored (rack NULL) */
} feed_change;
typedef void (*feed_change_fn)(void *userdata, feed_change what, const char *rack);

/* A feed on `loop` for the store `st` has open (the loop thread's: the
 * feed opens a connection of its own). *ret is NULL when the store is not
 * shared. *ret_error (if not NULL) gets a malloc()ed reason on failure. */
int feed_new(uv_loop_t *loop, const store *st, feed_change_fn on_change, void *userdata, feed **ret,
             char **ret_error);
/* Stops the feed; its memory goes once its handles are closed and a
 * reconnection under way has returned (uv_run the loop). Accepts NULL,
 * returns NULL. */
feed *feed_free(feed *f);

/* Registers the feed's series (deploy/METRICS.md): notifications heard and
 * reconnections. `f` must outlive the registry's renders. */
int feed_register_metrics(feed *f, metrics *m);
