#include "hub.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "hashmap.h"
#include "log.h"
#include "rbproto.h"
#include "store/queue.h"
#include "timeutil.h"
#include "util.h"
#include "version.h"
#include "wire.h"

/* How often parked syncs are checked for their deadline. */
#define PARK_TICK_MS 100

/* Fan-out buckets, seconds: "well under a second" is the design's goal
 * for a fleet's agents; an agent that persists slowly or a store that
 * stalls shows in the upper ones. */
static const double fanout_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1,     2.5,  5,     10,   30,  60 };
/* Install milestone buckets, seconds: a power cycle and firmware to the
 * first DHCPv6 exchange takes one to a few minutes, an install tens. */
static const double milestone_bounds[] = { 5,    10,   30,   60,   120,  300,  600,  900,
                                           1200, 1800, 2700, 3600, 5400, 7200, 10800 };

_Static_assert(PKI_AGENT_INSTANCE_MAX == STORE_AGENT_INSTANCE_MAX, "one range of agent instances");

/* An agent as the store knows it: agent `instance` of `rack` (pki.h:
 * agent 1 is named after its rack, agent N "RACK/N"), and its name, which
 * the logs and the fan-out's measurements go by. */
typedef struct hub_agent {
    char name[PKI_NAME_MAX + 1];
    char rack[PKI_NAME_MAX + 1];
    unsigned instance;
} hub_agent;

/* The agent a proven agent identity names; -EINVAL if it names none
 * (auth proved the role, so only a bug gets there). */
static int hub_agent_of(const auth_peer *peer, hub_agent *ret)
{
    snprintf(ret->name, sizeof(ret->name), "%s", peer->id.name);
    return pki_agent_name_split(peer->id.name, ret->rack, &ret->instance);
}

/* A rack's generation announced to its waiting agent and not acked yet:
 * when the hub learned of it (the poke after the write that moved it). */
typedef struct fanout_wait {
    char rack[STORE_NAME_MAX + 1]; /* the map's key */
    uint64_t generation;
    uint64_t since_ms; /* monotonic */
} fanout_wait;

typedef struct parked {
    rpc_call *call;
    uint32_t pipe;
    hub_agent agent;
    uint64_t held;
    uint64_t deadline_ms; /* monotonic */
    struct parked *prev, *next;
} parked;

struct hub {
    uv_loop_t *loop;
    store_queue *queue; /* every store call runs there, off the loop */
    size_t jobs;        /* submitted to the queue and not yet done */
    rpc_server *rpc;
    auth *auth;
    uint32_t max_wait_ms;
    parked *parked;
    size_t n_parked;
    uv_timer_t tick;
    bool tick_open;
    hub_change_fn on_change;
    void *userdata;
    log_ratelimit bad_rl;
    /* Metrics (hub_register_metrics()), loop only. */
    hashmap *fanout; /* rack name -> fanout_wait */
    metrics_histogram fanout_seconds;
    metrics_histogram to_dhcp_seconds, to_installed_seconds;
    uint64_t events[STORE_EVENT_REFUSED_INVALID + 1]; /* by store_event_result */
};

/* ---- Fan-out latency --------------------------------------------------- */

/* `rack`'s waiting agent is being sent `generation`, which the hub learned
 * of at `since_ms`. An older announcement still unacked keeps its start:
 * the agent's ack of the newer one ends both. */
static void fanout_start(hub *h, const char *rack, uint64_t generation, uint64_t since_ms)
{
    fanout_wait *w = hashmap_get(h->fanout, rack, strlen(rack));
    if (w) {
        w->generation = generation > w->generation ? generation : w->generation;
        return;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        return; /* one measurement lost */
    }
    snprintf(w->rack, sizeof(w->rack), "%s", rack);
    w->generation = generation;
    w->since_ms = since_ms;
    if (hashmap_put(h->fanout, w->rack, strlen(w->rack), w) < 0) {
        free(w);
    }
}

/* The agent of `rack` says it persisted `acked`. */
static void fanout_acked(hub *h, const char *rack, uint64_t acked)
{
    fanout_wait *w = hashmap_get(h->fanout, rack, strlen(rack));
    if (!w || acked < w->generation) {
        return;
    }
    uint64_t now = now_monotonic_ms();
    metrics_histogram_observe(&h->fanout_seconds,
                              (double)(now > w->since_ms ? now - w->since_ms : 0) / 1000.0);
    hashmap_remove(h->fanout, rack, strlen(rack));
    free(w);
}

/* The agent went away: its reconnection is not a fan-out. */
static void fanout_forget(hub *h, const char *rack)
{
    free(hashmap_remove(h->fanout, rack, strlen(rack)));
}

/* ---- Replies ----------------------------------------------------------- */

static void reply(rpc_call *call, Rackboot__V1__AgentReply *rep)
{
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len = 0;
    int r = rbproto_pack(&rep->base, RBPROTO_MAX_MESSAGE, &buf, &len);
    if (r < 0) {
        log_error("hub: cannot pack a reply: %s", errstr(r));
        rpc_call_drop(call);
        return;
    }
    rpc_call_reply(call, buf, len);
}

static void reply_error(rpc_call *call, Rackboot__V1__Status code, const char *message)
{
    Rackboot__V1__Error err = RACKBOOT__V1__ERROR__INIT;
    err.code = code;
    err.message = RB_UNCONST(message);
    Rackboot__V1__AgentReply rep = RACKBOOT__V1__AGENT_REPLY__INIT;
    rep.body_case = RACKBOOT__V1__AGENT_REPLY__BODY_ERROR;
    rep.error = &err;
    reply(call, &rep);
}

/* ---- Sync -------------------------------------------------------------- */

typedef struct sync_build {
    wire_arena *a;
    Rackboot__V1__SyncResponse *resp;
    void **seen; /* profiles already added, by store pointer */
    size_t n_seen;
} sync_build;

static int add_intent(const store_intent *in, void *userdata)
{
    sync_build *b = userdata;
    wire_arena *a = b->a;
    bool seen = false;
    for (size_t i = 0; i < b->n_seen; i++) {
        seen |= b->seen[i] == in->profile;
    }
    if (!seen) {
        wire_append(a, b->n_seen, b->seen, RB_UNCONST(in->profile));
        wire_append(a, b->resp->n_profiles, b->resp->profiles, wire_profile(a, in->profile));
    }
    Rackboot__V1__Intent *m = wire_intent(a, in);
    if (!m) {
        return -ENOMEM;
    }
    wire_append(a, b->resp->n_intents, b->resp->intents, m);
    return wire_arena_failed(a) ? -ENOMEM : 0;
}

static int add_bmc(const store_bmc *bmc, void *userdata)
{
    sync_build *b = userdata;
    Rackboot__V1__Bmc *m = wire_bmc(b->a, bmc);
    if (m) {
        wire_append(b->a, b->resp->n_bmcs, b->resp->bmcs, m);
    }
    return wire_arena_failed(b->a) ? -ENOMEM : 0;
}

static int add_power(const store_power *p, void *userdata)
{
    sync_build *b = userdata;
    Rackboot__V1__PowerCommand *m = wire_power_command(b->a, p);
    if (m) {
        wire_append(b->a, b->resp->n_power, b->resp->power, m);
    }
    return wire_arena_failed(b->a) ? -ENOMEM : 0;
}

/* A sync on the store queue: the agent's ack recorded, the rack's
 * generation read and, when the agent does not hold it, the rack's state
 * built. The loop then answers, or parks the call when nothing changed and
 * the agent is willing to wait.
 *
 * No poke is lost between a job's read and its park: the queue runs jobs
 * one at a time in the order they were submitted and calls their `done` in
 * that order, and every write that moves a generation runs there too, its
 * poke in its own `done`. A sync read before the write is parked before
 * that poke looks; a sync submitted after it reads the new generation. */
typedef struct sync_job {
    hub *h;
    rpc_call *call;
    uint32_t pipe;
    hub_agent agent;
    uint64_t acked;            /* the agent's ack to record first; 0: none */
    uint64_t held;             /* the generation the agent holds */
    uint32_t wait_ms;          /* park for that long when unchanged; 0: answer */
    uint64_t now;              /* wall clock of the request, for the ack */
    bool has_status;           /* the agent reported its status: record it first */
    store_agent_status status; /* its render_context: packed, owned */
    int status_r;              /* store_agent_status_set() */
    int ack_r;                 /* store_agent_ack(): dispatched installs, or < 0 */
    int r;                     /* < 0: the store failed (errmsg) */
    bool unchanged;            /* the agent holds resp.generation */
    wire_arena *a;             /* the rack's state when built */
    Rackboot__V1__SyncResponse resp;
    char errmsg[256];
} sync_job;

static sync_job *sync_job_free(sync_job *j)
{
    if (j) {
        wire_arena_free(j->a);
        free(RB_UNCONST(j->status.render_context));
        free(j);
    }
    return NULL;
}

/* Any thread. */
static void sync_work(store *st, void *arg)
{
    sync_job *j = arg;
    if (j->has_status) {
        /* Not the sync's business: a failure is logged, the sync goes on. */
        j->status_r =
            store_agent_status_set(st, j->agent.rack, j->agent.instance, &j->status, j->now);
        if (j->status_r < 0) {
            log_debug("hub: rack=%s status not recorded: %s", j->agent.name, store_errmsg(st));
        }
    }
    if (j->acked > 0) {
        j->ack_r = store_agent_ack(st, j->agent.rack, j->agent.instance, j->acked, j->now);
        if (j->ack_r == -EINVAL) {
            /* Ahead of the rack: the agent holds state from another store
             * (restored from a backup, or a rebuilt controller). Its ack
             * means nothing here; the full state replaces what it holds,
             * and it acknowledges that. */
            j->held = 0;
            j->wait_ms = 0;
        } else if (j->ack_r < 0) {
            j->r = j->ack_r;
            snprintf(j->errmsg, sizeof(j->errmsg), "%s", store_errmsg(st));
            return;
        }
    }
    uint64_t gen = 0;
    j->r = store_rack_get(st, j->agent.rack, &gen, NULL);
    if (j->r >= 0 && gen == j->held) {
        j->resp.generation = gen;
        j->unchanged = true;
        return;
    }
    if (j->r >= 0) {
        sync_build b = { .a = j->a, .resp = &j->resp };
        j->r = store_rack_intents(st, j->agent.rack, &j->resp.generation, add_intent, &b);
        /* A read of its own, after the intents' snapshot: a command made
         * in between comes with this answer or the next, and one ended in
         * between is withdrawn by the next (its event bumped the rack). */
        if (j->r >= 0) {
            j->r = store_rack_power(st, j->agent.rack, add_bmc, add_power, &b);
        }
    }
    if (j->r < 0) {
        snprintf(j->errmsg, sizeof(j->errmsg), "%s", store_errmsg(st));
    }
}

static void park(hub *h, sync_job *j)
{
    parked *p = calloc(1, sizeof(*p));
    if (!p) {
        /* Answer now: the agent asks again. */
        Rackboot__V1__AgentReply rep = RACKBOOT__V1__AGENT_REPLY__INIT;
        rep.body_case = RACKBOOT__V1__AGENT_REPLY__BODY_SYNC;
        rep.sync = &j->resp;
        reply(j->call, &rep);
        return;
    }
    p->call = j->call;
    p->pipe = j->pipe;
    p->agent = j->agent;
    p->held = j->resp.generation;
    p->deadline_ms = now_monotonic_ms() + j->wait_ms;
    p->next = h->parked;
    if (h->parked) {
        h->parked->prev = p;
    }
    h->parked = p;
    h->n_parked++;
    log_debug("hub: rack=%s parked generation=%" PRIu64 " wait_ms=%" PRIu32, p->agent.name, p->held,
              j->wait_ms);
}

static void sync_log_ack(const sync_job *j)
{
    if (j->acked == 0) {
        return;
    }
    if (j->ack_r == -EINVAL) {
        log_warn("hub: rack=%s agent acked generation %" PRIu64 " that this store never had; "
                 "sending the rack's state",
                 j->agent.name, j->acked);
    } else if (j->ack_r < 0) {
        log_error("hub: rack=%s ack generation=%" PRIu64 " failed: %s (%s)", j->agent.name,
                  j->acked, errstr(j->ack_r), j->errmsg);
    } else if (j->ack_r > 0) {
        log_info("hub: rack=%s acked generation=%" PRIu64 " dispatched=%d", j->agent.name, j->acked,
                 j->ack_r);
    }
}

/* Answers (or parks) what sync_work found, unless the connection lost its
 * identity meanwhile (closed, or its certificate revoked: hub_cut_revoked). */
static void sync_send(hub *h, sync_job *j)
{
    sync_log_ack(j);
    if (j->ack_r > 0 && h->on_change) {
        h->on_change(h->userdata, false); /* installs dispatched */
    }
    if (j->r < 0) {
        if (j->ack_r >= 0) {
            log_error("hub: rack=%s cannot read its intents: %s (%s)", j->agent.name, errstr(j->r),
                      j->errmsg);
        }
        reply_error(j->call, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "the store failed");
        return;
    }
    if (!auth_identity(h->auth, j->pipe)) {
        rpc_call_drop(j->call);
        return;
    }
    if (j->unchanged) {
        j->resp.unchanged = true;
        if (j->wait_ms > 0) {
            park(h, j);
            return;
        }
    } else {
        log_debug("hub: rack=%s sync generation=%" PRIu64 " intents=%zu profiles=%zu bmcs=%zu "
                  "power=%zu",
                  j->agent.name, j->resp.generation, j->resp.n_intents, j->resp.n_profiles,
                  j->resp.n_bmcs, j->resp.n_power);
    }
    Rackboot__V1__AgentReply rep = RACKBOOT__V1__AGENT_REPLY__INIT;
    rep.body_case = RACKBOOT__V1__AGENT_REPLY__BODY_SYNC;
    rep.sync = &j->resp;
    reply(j->call, &rep);
}

static void sync_done(void *arg, int status)
{
    sync_job *j = arg;
    hub *h = j->h;
    h->jobs--;
    if (status == -ECANCELED) {
        rpc_call_drop(j->call); /* shutting down */
    } else if (status < 0) {
        log_error("hub: rack=%s sync: the store did not commit: %s", j->agent.name, errstr(status));
        reply_error(j->call, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "the store failed");
    } else {
        sync_send(h, j);
    }
    sync_job_free(j);
}

/* Hands a sync to the store queue; answers it at once when that fails. */
static void sync_submit(hub *h, rpc_call *call, const hub_agent *agent, uint64_t acked,
                        uint64_t held, uint32_t wait_ms, const Rackboot__V1__AgentStatus *status)
{
    sync_job *j = calloc(1, sizeof(*j));
    if (j) {
        j->a = wire_arena_new();
    }
    if (j && status) {
        j->has_status = true;
        j->status.cache_bytes = status->cache_bytes;
        j->status.cache_limit_bytes = status->cache_limit_bytes;
        if (status->render) {
            /* Stored packed, as the agent sent it (validated with the
             * request): the web view unpacks and renders with it. */
            size_t n = protobuf_c_message_get_packed_size(&status->render->base);
            uint8_t *buf = malloc(n ? n : 1);
            if (buf) {
                protobuf_c_message_pack(&status->render->base, buf);
                j->status.render_context = buf;
                j->status.render_context_len = n;
            } else {
                j->has_status = false; /* not worth failing the sync for */
            }
        }
    }
    if (!j || !j->a) {
        sync_job_free(j);
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "out of memory");
        return;
    }
    j->h = h;
    j->call = call;
    j->pipe = rpc_call_pipe(call);
    j->agent = *agent;
    j->acked = acked;
    j->held = held;
    j->wait_ms = wait_ms;
    j->now = now_realtime_ms();
    rackboot__v1__sync_response__init(&j->resp);
    j->resp.rack = j->agent.rack;
    if (store_queue_submit_grouped(h->queue, sync_work, sync_done, j) < 0) {
        sync_job_free(j);
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "out of memory");
        return;
    }
    h->jobs++;
}

static void park_remove(hub *h, parked *p)
{
    if (p->prev) {
        p->prev->next = p->next;
    } else {
        h->parked = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    }
    h->n_parked--;
    free(p);
}

static void handle_sync(hub *h, rpc_call *call, const auth_peer *peer,
                        const Rackboot__V1__SyncRequest *req)
{
    uint32_t wait = req->max_wait_ms < h->max_wait_ms ? req->max_wait_ms : h->max_wait_ms;
    hub_agent agent;
    if (hub_agent_of(peer, &agent) < 0) {
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED, "not an agent's identity");
        return;
    }
    if (req->acked_generation > 0) {
        fanout_acked(h, agent.name, req->acked_generation);
    }
    sync_submit(h, call, &agent, req->acked_generation, req->held_generation, wait, req->status);
}

/* ---- Pokes ------------------------------------------------------------- */

/* The generations of the racks that have parked syncs, read on the store
 * queue: a poke reads each rack once, however many agents wait. */
typedef struct rack_gen {
    char rack[STORE_NAME_MAX + 1];
    uint64_t generation;
    bool read; /* generation is the rack's */
} rack_gen;

typedef struct poke_job {
    hub *h;
    rack_gen *racks; /* sorted by name, no duplicates */
    size_t n;
    uint64_t poked_ms; /* monotonic: when a write said generations may have moved */
} poke_job;

static int rack_gen_cmp(const void *a, const void *b)
{
    return strcmp(((const rack_gen *)a)->rack, ((const rack_gen *)b)->rack);
}

static void poke_work(store *st, void *arg)
{
    poke_job *j = arg;
    for (size_t i = 0; i < j->n; i++) {
        j->racks[i].read = store_rack_get(st, j->racks[i].rack, &j->racks[i].generation, NULL) >= 0;
    }
}

/* Answers the parked syncs whose rack moved past the generation they hold:
 * each by a sync that builds the rack's state. */
static void poke_done(void *arg, int status)
{
    poke_job *j = arg;
    hub *h = j->h;
    h->jobs--;
    /* Not committed (-EIO): what it read may have been undone; the parked
     * syncs are answered at their deadline instead. */
    parked *p = h->parked;
    while (status >= 0 && p) {
        parked *next = p->next;
        rack_gen key;
        snprintf(key.rack, sizeof(key.rack), "%s", p->agent.rack);
        const rack_gen *g = bsearch(&key, j->racks, j->n, sizeof(*j->racks), rack_gen_cmp);
        if (g && g->read && g->generation != p->held) {
            fanout_start(h, p->agent.name, g->generation, j->poked_ms);
            sync_submit(h, p->call, &p->agent, 0, p->held, 0, NULL);
            park_remove(h, p);
        }
        p = next;
    }
    free(j->racks);
    free(j);
}

/* Checks the parked syncs (of `rack`, NULL: of every rack) for a new
 * generation. */
static void poke(hub *h, const char *rack)
{
    /* Sized for the racks it reads: one after an agent's event batch, not
     * the whole fleet's parked syncs (2,000 agents' batches each queued
     * with a poke of 2,000 racks held 300 MiB). */
    size_t want = 0;
    for (const parked *p = h->parked; p; p = p->next) {
        want += !rack || streq(p->agent.rack, rack);
    }
    if (want == 0) {
        return;
    }
    poke_job *j = calloc(1, sizeof(*j));
    rack_gen *racks = j ? calloc(want, sizeof(*racks)) : NULL;
    if (!racks) {
        free(j);
        log_error("hub: out of memory: parked syncs wait for their deadline");
        return;
    }
    size_t n = 0;
    for (const parked *p = h->parked; p; p = p->next) {
        if (!rack || streq(p->agent.rack, rack)) {
            snprintf(racks[n++].rack, sizeof(racks->rack), "%s", p->agent.rack);
        }
    }
    qsort(racks, n, sizeof(*racks), rack_gen_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u == 0 || !streq(racks[u - 1].rack, racks[i].rack)) {
            racks[u++] = racks[i];
        }
    }
    j->h = h;
    j->racks = racks;
    j->n = u;
    j->poked_ms = now_monotonic_ms();
    if (u == 0 || store_queue_submit_grouped(h->queue, poke_work, poke_done, j) < 0) {
        if (u > 0) {
            log_error("hub: out of memory: parked syncs wait for their deadline");
        }
        free(racks);
        free(j);
        return;
    }
    h->jobs++;
}

void hub_poke(hub *h)
{
    poke(h, NULL);
}

void hub_poke_rack(hub *h, const char *rack)
{
    poke(h, rack);
}

static void on_tick(uv_timer_t *t)
{
    hub *h = t->data;
    uint64_t now = now_monotonic_ms();
    parked *p = h->parked;
    while (p) {
        parked *next = p->next;
        if (p->deadline_ms <= now) {
            sync_submit(h, p->call, &p->agent, 0, p->held, 0, NULL);
            park_remove(h, p);
        }
        p = next;
    }
}

/* ---- Events ------------------------------------------------------------ */

/* An event batch stored by the store queue. */
typedef struct events_job {
    hub *h;
    rpc_call *call;
    uint32_t pipe;
    hub_agent agent;
    Rackboot__V1__AgentRequest *req; /* owned: the events point into it */
    const char *journal_id;
    store_event *evs;
    store_event_result *results;
    store_event_timing *timings;
    size_t n;
    uint64_t now;
    int fresh;  /* store_agent_journal() */
    int stored; /* store_events_ingest() */
    uint64_t through;
    char errmsg[256];
} events_job;

static events_job *events_job_free(events_job *j)
{
    if (j) {
        if (j->req) {
            rbproto_free(&j->req->base);
        }
        free(j->evs);
        free(j->results);
        free(j->timings);
        free(j);
    }
    return NULL;
}

/* Records the agent's journal and stores the batch (any thread). */
static void events_work(store *st, void *arg)
{
    events_job *j = arg;
    j->fresh = store_agent_journal(st, j->agent.rack, j->agent.instance, j->journal_id);
    if (j->fresh >= 0) {
        j->stored = store_events_ingest_timed(st, j->agent.rack, j->agent.instance, j->evs, j->n,
                                              j->now, j->results, j->timings, &j->through);
    }
    if (j->fresh < 0 || j->stored < 0) {
        snprintf(j->errmsg, sizeof(j->errmsg), "%s", store_errmsg(st));
    }
}

/* An event's part in the metrics: its result, and how long its install
 * took to get where it took it. */
static void hub_count_event(hub *h, store_event_result res, const store_event_timing *t)
{
    if (res >= STORE_EVENT_STORED && res <= STORE_EVENT_REFUSED_INVALID) {
        h->events[res]++;
    }
    double seconds = (double)t->since_dispatch_ms / 1000.0;
    if (t->milestone == STORE_MILESTONE_DHCP_BOUND) {
        metrics_histogram_observe(&h->to_dhcp_seconds, seconds);
    } else if (t->milestone == STORE_MILESTONE_INSTALLED) {
        metrics_histogram_observe(&h->to_installed_seconds, seconds);
    }
}

/* Logs what events_work did and acknowledges it, unless the connection
 * lost its identity meanwhile (then the agent re-sends: events are
 * idempotent). */
static void events_send(hub *h, events_job *j)
{
    const char *rack = j->agent.name;
    if (j->fresh < 0) {
        log_error("hub: rack=%s cannot record the agent's journal: %s (%s)", rack, errstr(j->fresh),
                  j->errmsg);
        reply_error(j->call, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "the store failed");
        return;
    }
    if (j->fresh > 0) {
        log_warn("hub: rack=%s agent sends from a new journal %s (its state was reset): its "
                 "event seqs start over",
                 rack, j->journal_id);
    }
    if (j->stored < 0) {
        log_error("hub: rack=%s cannot store %zu events: %s (%s)", rack, j->n, errstr(j->stored),
                  j->errmsg);
        reply_error(j->call, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "the store failed");
        return;
    }
    for (size_t i = 0; i < j->n; i++) {
        hub_count_event(h, j->results[i], &j->timings[i]);
        if (j->results[i] >= STORE_EVENT_REFUSED_HOST &&
            log_ratelimit_ok(&h->bad_rl, now_monotonic_ms(), NULL)) {
            char host[80];
            log_warn("hub: rack=%s event refused seq=%" PRIu64 " host=%s phase=%s: %s", rack,
                     j->evs[i].seq, log_quote(host, sizeof(host), j->evs[i].host),
                     rbproto_phase_to_string(j->evs[i].phase),
                     store_event_result_to_string(j->results[i]));
        }
    }
    log_debug("hub: rack=%s events=%zu stored=%d through=%" PRIu64, rack, j->n, j->stored,
              j->through);

    if (auth_identity(h->auth, j->pipe)) {
        Rackboot__V1__EventAck ack = RACKBOOT__V1__EVENT_ACK__INIT;
        ack.stored_through = j->through;
        Rackboot__V1__AgentReply rep = RACKBOOT__V1__AGENT_REPLY__INIT;
        rep.body_case = RACKBOOT__V1__AGENT_REPLY__BODY_EVENT_ACK;
        rep.event_ack = &ack;
        reply(j->call, &rep);
    } else {
        rpc_call_drop(j->call);
    }

    if (j->stored > 0) {
        /* An install that ended withdraws its intent, from this rack only:
         * one read, not one per parked agent of the fleet. */
        poke(h, j->agent.rack);
        if (h->on_change) {
            h->on_change(h->userdata, true);
        }
    }
}

static void events_done(void *arg, int status)
{
    events_job *j = arg;
    hub *h = j->h;
    h->jobs--;
    if (status == -ECANCELED) {
        rpc_call_drop(j->call); /* shutting down; the agent re-sends */
    } else if (status < 0) {
        log_error("hub: rack=%s cannot store %zu events: the store did not commit: %s",
                  j->agent.name, j->n, errstr(status));
        reply_error(j->call, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "the store failed");
    } else {
        events_send(h, j);
    }
    events_job_free(j);
}

/* Consumes `req`. */
static void handle_events(hub *h, rpc_call *call, const auth_peer *peer,
                          Rackboot__V1__AgentRequest *req)
{
    const Rackboot__V1__EventBatch *batch = req->events;
    size_t n = batch->n_events;
    events_job *j = calloc(1, sizeof(*j));
    if (j) {
        j->req = req;
        j->evs = calloc(n ? n : 1, sizeof(*j->evs));
        j->results = calloc(n ? n : 1, sizeof(*j->results));
        j->timings = calloc(n ? n : 1, sizeof(*j->timings));
    } else {
        rbproto_free(&req->base);
    }
    if (!j || !j->evs || !j->results || !j->timings) {
        events_job_free(j);
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "out of memory");
        return;
    }
    j->h = h;
    j->call = call;
    j->pipe = rpc_call_pipe(call);
    if (hub_agent_of(peer, &j->agent) < 0) {
        events_job_free(j);
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED, "not an agent's identity");
        return;
    }
    j->journal_id = batch->journal_id;
    j->n = n;
    j->now = now_realtime_ms();
    for (size_t i = 0; i < n; i++) {
        const Rackboot__V1__Event *e = batch->events[i];
        j->evs[i] = (store_event){
            .seq = e->seq,
            .time_ms = e->time_unix_ms,
            .install_id = e->install_id,
            .host = e->host,
            .mac = e->mac.len == 6 ? e->mac.data : NULL,
            .phase = e->phase,
            .percent = e->percent,
            .message = e->message,
            .duid = e->duid.len ? e->duid.data : NULL,
            .duid_len = e->duid.len,
            .power_id = e->power_id,
            .power_state = (int)e->power_state,
        };
    }
    if (store_queue_submit_grouped(h->queue, events_work, events_done, j) < 0) {
        events_job_free(j);
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "out of memory");
        return;
    }
    h->jobs++;
}

/* ---- Handshake --------------------------------------------------------- */

static void handle_hello(hub *h, rpc_call *call, const Rackboot__V1__AuthHello *hello)
{
    uint8_t nonce[PKI_NONCE_SIZE];
    pki_reason reason = { { 0 } };
    int r = auth_hello(h->auth, rpc_call_pipe(call), hello, nonce, &reason);
    if (r < 0) {
        char claim[80];
        log_warn("hub: agent refused (claimed rack %s): %s",
                 log_quote(claim, sizeof(claim), hello->rack_claim), reason.text);
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED, reason.text);
        return;
    }
    Rackboot__V1__AuthChallenge ch = RACKBOOT__V1__AUTH_CHALLENGE__INIT;
    ch.nonce.data = nonce;
    ch.nonce.len = sizeof(nonce);
    Rackboot__V1__AgentReply rep = RACKBOOT__V1__AGENT_REPLY__INIT;
    rep.body_case = RACKBOOT__V1__AGENT_REPLY__BODY_AUTH_CHALLENGE;
    rep.auth_challenge = &ch;
    reply(call, &rep);
}

/* An agent that proved its identity, recorded on the store queue before
 * it is told so. */
typedef struct seen_job {
    hub *h;
    rpc_call *call;
    uint32_t pipe;
    hub_agent agent;
    char version[sizeof(((auth_peer *)0)->version)];
    uint64_t now;
    int r;
    char errmsg[256];
} seen_job;

static void seen_work(store *st, void *arg)
{
    seen_job *j = arg;
    j->r =
        store_agent_seen(st, j->agent.rack, j->agent.instance, j->agent.name, j->version, j->now);
    if (j->r < 0) {
        snprintf(j->errmsg, sizeof(j->errmsg), "%s", store_errmsg(st));
    }
}

static void seen_done(void *arg, int status)
{
    seen_job *j = arg;
    hub *h = j->h;
    h->jobs--;
    if (status < 0 && j->r >= 0) {
        j->r = status; /* the group it was in was not committed */
        snprintf(j->errmsg, sizeof(j->errmsg), "not committed");
    }
    if (status == -ECANCELED || !auth_identity(h->auth, j->pipe)) {
        rpc_call_drop(j->call); /* shutting down, or gone meanwhile */
    } else if (j->r < 0) {
        log_error("hub: rack=%s cannot record the agent: %s (%s)", j->agent.name, errstr(j->r),
                  j->errmsg);
        auth_pipe_closed(h->auth, j->pipe);
        reply_error(j->call, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "the store failed");
    } else {
        char version[80];
        log_info("hub: agent of rack=%s connected version=%s", j->agent.name,
                 log_quote(version, sizeof(version), j->version));
        Rackboot__V1__AuthResult res = RACKBOOT__V1__AUTH_RESULT__INIT;
        res.role = RACKBOOT__V1__ROLE__ROLE_AGENT;
        res.name = j->agent.name;
        res.rack = j->agent.rack;
        res.controller_version = RB_UNCONST(RACKBOOT_VERSION);
        Rackboot__V1__AgentReply rep = RACKBOOT__V1__AGENT_REPLY__INIT;
        rep.body_case = RACKBOOT__V1__AGENT_REPLY__BODY_AUTH_RESULT;
        rep.auth_result = &res;
        reply(j->call, &rep);
    }
    free(j);
}

static void handle_proof(hub *h, rpc_call *call, const Rackboot__V1__AuthProof *proof)
{
    const auth_peer *peer = NULL;
    pki_reason reason = { { 0 } };
    int r = auth_proof(h->auth, rpc_call_pipe(call), proof, &peer, &reason);
    if (r < 0) {
        log_warn("hub: agent identity proof refused: %s", reason.text);
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED, reason.text);
        return;
    }
    seen_job *j = calloc(1, sizeof(*j));
    if (!j) {
        auth_pipe_closed(h->auth, rpc_call_pipe(call));
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "out of memory");
        return;
    }
    j->h = h;
    j->call = call;
    j->pipe = rpc_call_pipe(call);
    if (hub_agent_of(peer, &j->agent) < 0) {
        free(j);
        log_warn("hub: %s is not an agent's name", peer->id.name);
        auth_pipe_closed(h->auth, rpc_call_pipe(call));
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED, "not an agent's identity");
        return;
    }
    snprintf(j->version, sizeof(j->version), "%s", peer->version);
    j->now = now_realtime_ms();
    if (store_queue_submit_grouped(h->queue, seen_work, seen_done, j) < 0) {
        free(j);
        auth_pipe_closed(h->auth, rpc_call_pipe(call));
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "out of memory");
        return;
    }
    h->jobs++;
}

/* ---- Dispatch ---------------------------------------------------------- */

static void on_request(void *userdata, rpc_call *call)
{
    hub *h = userdata;
    size_t len = 0;
    const uint8_t *body = rpc_call_body(call, &len);
    uint32_t pipe = rpc_call_pipe(call);
    const auth_peer *peer = auth_identity(h->auth, pipe);
    Rackboot__V1__AgentRequest *req = NULL;
    int r = rbproto_unpack_agent_request(
        body, len, peer ? RBPROTO_MAX_MESSAGE : RBPROTO_MAX_UNAUTHENTICATED, &req);
    if (r < 0) {
        if (log_ratelimit_ok(&h->bad_rl, now_monotonic_ms(), NULL)) {
            log_warn("hub: malformed request on connection %u (%zu bytes): %s", pipe, len,
                     errstr(r));
        }
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_INVALID, "malformed request");
        return;
    }
    switch (req->body_case) {
    case RACKBOOT__V1__AGENT_REQUEST__BODY_AUTH_HELLO:
        handle_hello(h, call, req->auth_hello);
        break;
    case RACKBOOT__V1__AGENT_REQUEST__BODY_AUTH_PROOF:
        handle_proof(h, call, req->auth_proof);
        break;
    case RACKBOOT__V1__AGENT_REQUEST__BODY_SYNC:
    case RACKBOOT__V1__AGENT_REQUEST__BODY_EVENTS:
        if (!peer) {
            reply_error(call, RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED,
                        "prove the connection's identity first");
        } else if (req->body_case == RACKBOOT__V1__AGENT_REQUEST__BODY_SYNC) {
            handle_sync(h, call, peer, req->sync);
        } else {
            handle_events(h, call, peer, req);
            req = NULL; /* consumed */
        }
        break;
    default:
        reply_error(call, RACKBOOT__V1__STATUS__STATUS_INVALID, "unknown request");
        break;
    }
    if (req) {
        rbproto_free(&req->base);
    }
}

static void on_pipe_closed(void *userdata, uint32_t pipe)
{
    hub *h = userdata;
    const auth_peer *peer = auth_identity(h->auth, pipe);
    if (peer) {
        log_info("hub: agent of rack=%s disconnected", peer->id.name);
        fanout_forget(h, peer->id.name);
    }
    auth_pipe_closed(h->auth, pipe);
    parked *p = h->parked;
    while (p) {
        parked *next = p->next;
        if (p->pipe == pipe) {
            rpc_call_drop(p->call);
            park_remove(h, p);
        }
        p = next;
    }
}

int hub_cut_revoked(hub *h)
{
    uint32_t *pipes = NULL;
    size_t n = 0;
    int r = auth_revoked_pipes(h->auth, &pipes, &n);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; i < n; i++) {
        const auth_peer *peer = auth_identity(h->auth, pipes[i]);
        log_warn("hub: certificate of %s%s revoked: closing connection %u",
                 peer ? "the agent of rack=" : "an unproven agent connection",
                 peer ? peer->id.name : "", pipes[i]);
        /* Forget it first: nothing the loop handles after this answers it,
         * whatever nng still delivers before the close takes effect. */
        on_pipe_closed(h, pipes[i]);
        rpc_server_close_pipe(h->rpc, pipes[i]);
    }
    free(pipes);
    return (int)n;
}

/* ---- Lifecycle --------------------------------------------------------- */

int hub_new(uv_loop_t *loop, const hub_config *cfg, hub_change_fn on_change, void *userdata,
            hub **ret, char **ret_error)
{
    if (!cfg->queue) {
        return -EINVAL;
    }
    hub *h = calloc(1, sizeof(*h));
    if (!h) {
        return -ENOMEM;
    }
    h->loop = loop;
    h->queue = cfg->queue;
    h->max_wait_ms = cfg->max_wait_ms;
    h->on_change = on_change;
    h->userdata = userdata;
    h->bad_rl = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 20);
    RB_ASSERT(
        metrics_histogram_init(&h->fanout_seconds, fanout_bounds, ARRAY_SIZE(fanout_bounds)) == 0);
    RB_ASSERT(metrics_histogram_init(&h->to_dhcp_seconds, milestone_bounds,
                                     ARRAY_SIZE(milestone_bounds)) == 0);
    RB_ASSERT(metrics_histogram_init(&h->to_installed_seconds, milestone_bounds,
                                     ARRAY_SIZE(milestone_bounds)) == 0);
    int r = hashmap_new(16, &h->fanout);
    if (r >= 0) {
        r = auth_new(cfg->verifier, PKI_ROLE_AGENT, &h->auth);
    }
    if (r >= 0) {
        r = uv_timer_init(loop, &h->tick);
    }
    if (r >= 0) {
        h->tick_open = true;
        h->tick.data = h;
        r = uv_timer_start(&h->tick, on_tick, PARK_TICK_MS, PARK_TICK_MS);
    }
    if (r >= 0) {
        rpc_handlers hs = { .request = on_request, .pipe_closed = on_pipe_closed };
        r = rpc_server_new(loop, &hs, h, RBPROTO_MAX_MESSAGE, &h->rpc);
    }
    if (r >= 0) {
        r = rpc_server_listen(h->rpc, cfg->listen, cfg->tls, 0, ret_error);
    }
    if (r < 0) {
        hub_free(h);
        return r;
    }
    *ret = h;
    return 0;
}

static void free_after_close(uv_handle_t *handle)
{
    free(handle->data);
}

hub *hub_free(hub *h)
{
    if (!h) {
        return NULL;
    }
    /* Its jobs hold calls of its server: the queue goes first. */
    RB_ASSERT(h->jobs == 0);
    while (h->parked) {
        rpc_call_drop(h->parked->call);
        park_remove(h, h->parked);
    }
    rpc_server_free(h->rpc);
    auth_free(h->auth);
    if (h->fanout) {
        void *w;
        for (size_t it = 0; hashmap_next(h->fanout, &it, &w);) {
            free(w);
        }
        h->fanout = hashmap_free(h->fanout);
    }
    if (h->tick_open) {
        uv_close((uv_handle_t *)&h->tick, free_after_close);
    } else {
        free(h);
    }
    return NULL;
}

int hub_bound_port(const hub *h)
{
    return rpc_server_bound_port(h->rpc);
}

ssize_t hub_agents_online(const hub *h)
{
    return auth_count_proven(h->auth);
}

int hub_register_metrics(hub *h, metrics *m)
{
    static const struct {
        store_event_result result;
        const char *labels;
    } results[] = {
        { STORE_EVENT_STORED, "result=\"stored\"" },
        { STORE_EVENT_DUPLICATE, "result=\"duplicate\"" },
        { STORE_EVENT_REFUSED_HOST, "result=\"refused_host\"" },
        { STORE_EVENT_REFUSED_INSTALL, "result=\"refused_install\"" },
        { STORE_EVENT_REFUSED_INVALID, "result=\"refused_invalid\"" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(results); i++) {
        int r = metrics_register(m, METRIC_COUNTER, "rackboot_events_ingested_total",
                                 "Agents' events the store took, by what became of each.",
                                 results[i].labels, &h->events[results[i].result]);
        if (r < 0) {
            return r;
        }
    }
    int r = metrics_register_histogram(
        m, "rackboot_fanout_duration_seconds",
        "Time from a write that moved a rack's generation to the ack of that generation by the "
        "rack's waiting agent.",
        NULL, &h->fanout_seconds);
    static const char milestone_help[] =
        "Time from an install's dispatch to its first dhcp_bound, or to installed.";
    if (r >= 0) {
        r = metrics_register_histogram(m, "rackboot_install_since_dispatch_seconds", milestone_help,
                                       "milestone=\"dhcp_bound\"", &h->to_dhcp_seconds);
    }
    if (r >= 0) {
        r = metrics_register_histogram(m, "rackboot_install_since_dispatch_seconds", milestone_help,
                                       "milestone=\"installed\"", &h->to_installed_seconds);
    }
    return r;
}
