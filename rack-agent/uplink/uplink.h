/* uplink: the agent's connection to its controller (issue 6, "Agent
 * uplink"; [controller] in agent.conf).
 *
 * Two threads share one client session (client/session.h, mutual TLS and
 * the identity handshake, reconnecting with jittered backoff):
 *
 *   sync    long polls the rack's intents by generation. A new state is
 *           converted, checked, and persisted atomically in
 *           STATE_DIR/intents.pb BEFORE the next sync acknowledges it, then
 *           handed to the loop thread, which swaps it into the intents store.
 *   events  sends journal batches (journal.h) and acknowledges what the
 *           controller stored; the journal trims only after that.
 *
 * With the controller gone, nothing changes for the hosts: the agent serves
 * what it holds, and at start it loads what it last persisted. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "model/intent.h"
#include "powerctl/plan.h"
#include "rackboot.pb-c.h"
#include "render/context.h"
#include "uplink/journal.h"

/* Several controllers (sharing one store, all active) may serve the rack:
 * the uplink dials urls[0] first and, when a controller cannot be reached
 * or its connection is lost, the next one round the list, each attempt
 * after a backoff (uplink_backoff_next). Once connected it stays with
 * that controller until it fails: no return to urls[0] while it works.
 * Every controller's certificate is checked as TLS checks one: against
 * `server_name` when set (then every controller's certificate must carry
 * it, and each controller signs for it), else against the host of the URL
 * being dialled. */
#define UPLINK_MAX_URLS 8u

typedef struct uplink_config {
    const char *const *urls; /* tls+tcp://controller:port, in the order tried */
    size_t n_urls;           /* 1..UPLINK_MAX_URLS */
    const char *server_name; /* the controller certificates' DNS name; NULL: each URL's host */
    const char *ca, *cert, *key, *crl;
    const char *state_dir;
    const char *rack;      /* [agent] rack: must be the rack our certificate names */
    uint32_t sync_wait_ms; /* long poll; 0: UPLINK_DEFAULT_SYNC_WAIT_MS */
} uplink_config;

#define UPLINK_DEFAULT_SYNC_WAIT_MS 30000u
#define UPLINK_BATCH_MAX            500u
#define UPLINK_INTENTS_FILE         "intents.pb"

typedef struct uplink uplink;

/* Called on the loop thread with a new generation: its intents and its
 * power plan (BMCs and commands); the callee owns both. */
typedef void (*uplink_state_fn)(void *userdata, intent_set *set, power_plan *plan);

/* Starts both threads. `j` may be NULL (no events to send). */
int uplink_new(uv_loop_t *loop, const uplink_config *cfg, journal *j, uplink_state_fn fn,
               void *userdata, uplink **ret);
/* Stops the threads (closing the connection under them) and frees. */
uplink *uplink_free(uplink *u);

/* What the agent reports of itself with each sync (AgentStatus in
 * proto/rackboot.proto): its cache's use and what it renders with. */
typedef struct uplink_status {
    uint64_t cache_bytes;
    uint64_t cache_limit_bytes; /* 0: no limit */
    bool has_render;
    /* Its search names are borrowed: they must outlive the uplink (the
     * agent's config, as for the agent's own render_context). */
    render_context render;
} uplink_status;

/* Loop thread: the status the next syncs report (copied). Until the first
 * call the syncs report none, and the controller keeps what it had. */
void uplink_set_status(uplink *u, const uplink_status *st);

/* Registers rackboot_uplink_controller{url="..."} (1 for the controller in
 * use, 0 for the others and while none is) and
 * rackboot_uplink_switches_total (moves to another controller). The
 * uplink must outlive the registry's use of them. */
struct metrics;
int uplink_register_metrics(uplink *u, struct metrics *m);

/* Loop thread: events were appended and synced; send them soon. */
void uplink_events_ready(uplink *u);

/* Loop thread (SIGHUP): re-reads the TLS files (ca, cert, key, crl). When
 * they changed, the connection is made again under them, so a controller
 * whose certificate the new CRL revokes is dropped and a renewed CRL lets
 * the next connection through (rb_session_reload_tls). The uplink also does
 * this by itself when the files change on disk (checked every
 * UPLINK_PKI_CHECK_MS). */
void uplink_reload_tls(uplink *u, const char *why);
#define UPLINK_PKI_CHECK_MS 60000u

/* A session that stops making progress is replaced: closed, and a new one
 * opened after a jittered pause. nng redials a lost connection by itself,
 * but 1.5.2 can keep a dead TLS connection as its pipe forever (it never
 * redials then), and a dialer that gave up cannot be restarted. Stalled:
 * some calls failed and none got a reply for UPLINK_STALL_MS (3 × the
 * events call's 15 s timeout), or UPLINK_STALL_FAILURES in a row did for
 * at least UPLINK_STALL_MIN_MS. Counts the calls of both threads; a reply
 * that refuses (the controller is there) is progress. Pure; for tests. */
#define UPLINK_STALL_FAILURES 3u
#define UPLINK_STALL_MIN_MS   10000u
#define UPLINK_STALL_MS       45000u
bool uplink_session_stalled(unsigned failures, uint64_t since_ok_ms);

/* With more than one URL, a session whose connection has been down this
 * long is given up for the next controller (nng would redial the same one
 * for ever). Long enough for nng to redial a controller that restarts. */
#define UPLINK_FAILOVER_DOWN_MS 3000u

/* The pause before the next connection attempt or retried call:
 * "decorrelated jitter" (AWS Architecture Blog, "Exponential Backoff And
 * Jitter", 2015): uniform in [BASE, 3 × prev], capped at cap_ms, so a fleet
 * of agents spreads out while each one still backs off exponentially.
 * prev_ms 0 (after a success: the reset) starts again from
 * [BASE, 3 × BASE]. `rnd` is a uniformly random number. Pure; for tests. */
#define UPLINK_BACKOFF_BASE_MS 500u
#define UPLINK_BACKOFF_MAX_MS  30000u
uint32_t uplink_backoff_next(uint32_t prev_ms, uint32_t cap_ms, uint32_t rnd);

/* Writes `sr` to STATE_DIR/intents.pb atomically (write, fsync, rename,
 * fsync the directory). */
int uplink_persist(const char *state_dir, const Rackboot__V1__SyncResponse *sr);

/* The intents persisted by the last run, to serve before the controller
 * answers, and (when ret_plan is not NULL) its BMCs without the power
 * commands (plan.h: only the controller asks for an action, and now).
 * -ENOENT when there are none; -EBADMSG when the file is damaged. */
int uplink_load_persisted(const char *state_dir, intent_set **ret, power_plan **ret_plan);

/* A SyncResponse as an intent set (pure; exported for tests). -EINVAL when
 * the response contradicts itself (an intent naming a missing profile, a
 * MAC given twice). */
int uplink_intents_from_sync(const Rackboot__V1__SyncResponse *sr, intent_set **ret);
