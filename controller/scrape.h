/* scrape: the controller's GET /metrics, on its own listener ([metrics]
 * listen), in the Prometheus text format 0.0.4 (deploy/METRICS.md lists
 * every series).
 *
 * The server is http/server.h's, on the controller's loop. Plain HTTP: the
 * listener is meant for a management address (the example binds [::1]),
 * and what it tells is counts and latencies, no names, tokens or secrets
 * (deploy/METRICS.md says how to keep it off other networks).
 *
 * The hub, the API and the store queue keep their own counters and
 * histograms and register them here (their *_register_metrics()); what is
 * a state rather than a count is read at each scrape: the agents online
 * from the hub, the installs per state from the store (a job on the store
 * queue, so a scrape never blocks the loop on the store). */
#pragma once

#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#include "api.h"
#include "feed.h"
#include "hub.h"
#include "store/queue.h"

typedef struct scrape scrape;

typedef struct scrape_config {
    struct sockaddr_in6 listen; /* port 0: the kernel chooses (tests) */
    hub *hub;                   /* may be NULL (no agents_listen) */
    api *api;
    store_queue *queue; /* must outlive the scrape's jobs: freed before it */
    feed *feed;         /* NULL: the store has one controller */
} scrape_config;

/* Starts listening and registers every series. -EADDRINUSE and the like
 * when the address cannot be bound, -ENOMEM. */
int scrape_new(uv_loop_t *loop, const scrape_config *cfg, scrape **ret);

/* Stops listening (a scrape waiting for the store gets 503) and frees it
 * once libuv has closed the server's handles. Accepts NULL, returns NULL. */
scrape *scrape_free(scrape *s);

/* The bound port. */
uint16_t scrape_port(const scrape *s);
