/* hub: where rack agents meet the controller (issue 5 "Agent hub").
 *
 * Agents dial agents_listen over mutual TLS and prove, per connection, the
 * rack their certificate names (auth.h); nothing else is accepted on a
 * connection before that, and an agent is only ever believed about its own
 * rack. Then:
 *
 *   sync    level-triggered intents: the agent says which generation it
 *           holds and which it has persisted (acked). An ack dispatches the
 *           installs of that generation. If the rack's generation differs
 *           from the one held, the reply is the rack's whole desired state;
 *           otherwise the call is parked until the generation changes or
 *           the agent's wait (bounded) runs out, then "unchanged".
 *   events  a batch from the agent's journal: stored once per (rack, seq),
 *           events about hosts outside the rack refused and logged, the
 *           reply acknowledges the highest contiguous seq stored.
 *
 * Parked syncs hold only their own REP context (rpc.h): a slow or silent
 * agent holds up nobody. */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#include "metrics/metrics.h"
#include "pki.h"
#include "rpc.h"
#include "store.h"

typedef struct hub hub;

typedef struct hub_config {
    const char *listen; /* tls+tcp://... */
    nng_tls_config *tls;
    pki_verifier *verifier;
    uint32_t max_wait_ms; /* upper bound on an agent's long poll */
    /* Every store call of the hub runs there, off the loop (required). It
     * must be freed before the hub. */
    struct store_queue *queue;
} hub_config;

/* `on_change` (may be NULL) runs on the loop after an agent's events were
 * stored (`events` true) or its ack dispatched installs (false), so the API
 * and the web view can wake their watchers. */
typedef void (*hub_change_fn)(void *userdata, bool events);
int hub_new(uv_loop_t *loop, const hub_config *cfg, hub_change_fn on_change, void *userdata,
            hub **ret, char **ret_error);
hub *hub_free(hub *h);

/* Generations may have changed (an install, a cancel, a timeout): answer
 * every parked sync whose rack moved on. */
void hub_poke(hub *h);
/* The same for the syncs parked for `rack` only (another controller moved
 * its generation: controller/feed.h); nothing when none is. */
void hub_poke_rack(hub *h, const char *rack);

int hub_bound_port(const hub *h);

/* The verifier's CRL was reloaded: every agent connection whose certificate
 * it now revokes is closed at once (its parked sync dropped unanswered, its
 * identity forgotten). Its redials are refused by TLS once the listener has
 * the new configuration (rpc_tls_config_replace), and by the identity check
 * in any case. Returns how many connections were cut. */
int hub_cut_revoked(hub *h);

/* Racks whose agent is connected now and proved its identity, each once
 * however many connections it holds (deploy/METRICS.md:
 * rackboot_agents_online); -ENOMEM. */
ssize_t hub_agents_online(const hub *h);

/* Registers the hub's series (deploy/METRICS.md): events ingested by
 * result, the fan-out latency (from a write that moved a rack's generation,
 * as the hub learns of it, to the ack of that generation by the rack's
 * agent, measured for agents waiting in their long poll), and install
 * milestones since dispatch (first dhcp_bound, installed). `h` must
 * outlive the registry's renders. */
int hub_register_metrics(hub *h, metrics *m);
