/* store: the controller's fleet store (issue 5 "Fleet store").
 *
 * Hosts, racks and their agents, images, profiles, installs and events.
 * The rules behind these calls are fleet.h's; they reach the rows through
 * a backend ops table (store/backend.h), chosen by `[store] url`: so far
 * SQLite (store/sqlite.c), one file in WAL mode, which the guarantees
 * below describe. One store object is one connection, used by
 * one thread at a time: the controller's loop holds one, its work queue
 * (store/queue.h) another (store_connect()), and SQLite serializes their
 * writes (an advisory lock on "<path>.lock" keeps a second controller off
 * the same file). Every write is one transaction, so a crash at any point
 * leaves either all of an operation or none of it.
 *
 * Installs move through install_fsm only. Whenever the intents a rack's
 * agent must hold change (an install created, cancelled, ended, timed out; a
 * host or profile with an active install changed), the rack's generation is
 * bumped in the same transaction.
 *
 * Times are Unix milliseconds passed in by the caller (`now`), so tests
 * control the clock. Strings handed to callbacks are valid until the
 * callback returns. Callbacks must not call into the same store (a listing
 * holds its statement, store_rack_intents() its read transaction).
 *
 * Errors are negative errno values:
 *   -EINVAL  invalid argument (a name, MAC count, prefix, ...)
 *   -ENOENT  no such host, profile, install or rack
 *   -EEXIST  a name, MAC or address already in use
 *   -EBUSY   the host has an active install; the store is locked by another
 *            process
 *   -EPROTO  the file's schema is newer than this code, or not a store
 *   -EIO     SQLite failed (disk full, I/O error, corruption)
 *   -ENOMEM
 * After a failure store_errmsg() says why in one line ("mac
 * 52:54:00:00:00:01 is used by host web3"), for the daemon to log or return
 * to the operator. Callback errors (a negative return) abort the listing and
 * are returned as is. This module does not log above debug. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "install_fsm.h"
#include "rackboot.pb-c.h"
#include "store/types.h"

typedef struct store store;

#define STORE_ID_LEN    36u /* install id: a UUID, 8-4-4-4-12 hex */
#define STORE_TOKEN_LEN 32u /* install token: 128 random bits, hex */

/* Current schema version (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 12

/* Opens (creating the file, and the schema, when missing) and migrates the
 * store at `path`. -EPROTO if the file's schema is newer than this code
 * knows (store_errmsg() names both versions); -EBUSY if another process has
 * it open. On failure *ret_errmsg (if not NULL) gets a malloc()ed reason for
 * the caller to free. */
int store_open(const char *path, store **ret, char **ret_errmsg);
/* Which backend a `[store] url` names, and where: "sqlite:///ABS/PATH" is
 * the SQLite file at /ABS/PATH; "postgresql://..." (or "postgres://...")
 * a PostgreSQL database, the whole URL libpq's (its query takes sslmode,
 * sslrootcert, ...), shared by any number of controllers. 0 when this
 * build can open `url`; -EPROTONOSUPPORT for a scheme it does not know,
 * -EINVAL for a malformed URL; either way *ret_why (if not NULL) gets a
 * static one-line reason for the configuration's diagnostics. */
int store_url_check(const char *url, const char **ret_why);
/* `url` as logs may show it: a password in it (postgresql://USER:PASS@...
 * or a password=... query parameter) replaced by "***". NULL when out of
 * memory; the caller frees it. */
char *store_url_redacted(const char *url);
/* store_open() on what `url` names (store_url_check() first); the same
 * errors, and those of store_url_check(). */
int store_open_url(const char *url, store **ret, char **ret_errmsg);
/* The schema version of the SQLite file at `path` (store_open's) / of
 * the store `url` names, as it is: nothing created, migrated or locked,
 * so a running controller may hold it. 0 when it has no schema yet (no
 * file, an empty database). -EPROTO when it is not a store; the errors of
 * store_open() / store_open_url() otherwise, *ret_errmsg as theirs. */
int store_peek_version(const char *path, int *ret_version, char **ret_errmsg);
int store_peek_version_url(const char *url, int *ret_version, char **ret_errmsg);
/* Whether `url` names a store several controllers share (PostgreSQL),
 * whose schema an explicit --migrate moves (controller/main.c). */
bool store_url_is_shared(const char *url);
/* Another connection to the store `parent` has open, for another thread
 * (the loop's work queue): each connection is used by one thread at a
 * time, and each operation is a transaction of its own, so operations on
 * two connections are serialized by the store as a whole (a writer waits
 * for the other's commit, readers see committed states only). `parent`
 * keeps the lock and must outlive it; the schema is the parent's. */
int store_connect(const store *parent, store **ret, char **ret_errmsg);
/* Closes (checkpointing the WAL). Accepts NULL, returns NULL. */
store *store_close(store *s);
/* One line saying why the last call on `s` failed, "" if it did not. */
const char *store_errmsg(const store *s);
/* The schema version of the open store. */
int store_schema_version(store *s);

/* A batch: the operations between begin and end are one transaction, each
 * of them a savepoint that a failure undoes alone; end commits them all (one
 * fsync for a whole import) or, with commit false, undoes them all. Not
 * nestable; store_rack_intents() and listings work inside a batch. */
int store_batch_begin(store *s);
int store_batch_end(store *s, bool commit);
/* Whether the batch still has its transaction: false once the backend
 * rolled it back whole (disk full, I/O error), when nothing done in it can
 * be committed any more. */
bool store_batch_open(store *s);

/* ---- Several controllers on one store (issue 17) ----------------------- */

/* Whether other controllers may write this store too (PostgreSQL): then
 * a rack's generation may move without this controller's doing. */
bool store_shared(const store *s);

/* What a change feed hears: a rack's generation moved, or events were
 * stored (then the rack is NULL). */
typedef enum store_feed_topic {
    STORE_FEED_GENERATION = 1,
    STORE_FEED_EVENTS,
} store_feed_topic;

/* A change feed: a connection of its own to the store `s` has open, that
 * hears of every committed write that moved a rack's generation or stored
 * events, made by any controller. -EOPNOTSUPP when the backend has none (SQLite: one
 * controller writes its file). Used by one thread at a time; *ret_errmsg
 * (if not NULL) gets a malloc()ed reason on failure. */
typedef struct store_feed store_feed;
int store_feed_open(const store *s, store_feed **ret, char **ret_errmsg);
/* Accepts NULL, returns NULL. */
store_feed *store_feed_close(store_feed *f);
/* The socket to wait on for readability, -1 while disconnected. It may
 * change across store_feed_reconnect(). */
int store_feed_fd(const store_feed *f);
/* Without blocking: how many changes arrived (0: none), or -EIO when the
 * connection is lost (then store_feed_reconnect()). `cb` (may be NULL)
 * gets each change: its topic and the rack of a generation move, a rack
 * perhaps more than once. */
int store_feed_read(store_feed *f,
                    void (*cb)(store_feed_topic topic, const char *rack, void *userdata),
                    void *userdata);
/* Blocks until connected and listening again, or -EIO. Changes made while
 * the feed was down are not announced: the caller checks every rack once. */
int store_feed_reconnect(store_feed *f);
/* One line saying why the last call on `f` failed. */
const char *store_feed_errmsg(const store_feed *f);

/* Whether this connection holds the store's expiry lock, which one
 * controller at a time holds (so that one runs the timeouts): 1, taking it
 * when it is free; 0 when another connection holds it, until that closes
 * or its controller dies. A store with one controller: always 1. */
int store_expiry_lead(store *s);

/* ---- Hosts ------------------------------------------------------------- */

/* store_host: store/types.h; profiles and images: model/profile.h. */

/* Adds a host, creating its rack if new. With `update`, a host of the same
 * name is replaced (its MACs too); otherwise -EEXIST. A MAC or address in
 * use by another host: -EEXIST naming that host. Moving a host with an
 * active install to another rack: -EBUSY. Changing a host with an active
 * install bumps its rack's generation (the intent changes). */
int store_host_add(store *s, const store_host *h, bool update);
/* Removes a host with its MACs, DUIDs, past installs and their events.
 * -ENOENT; -EBUSY while it has an active install (cancel it first). */
int store_host_remove(store *s, const char *name);
int store_host_get(store *s, const char *name, store_host *ret);

/* Which hosts a listing by host name gives (hosts, status): those of the
 * racks (n_racks 0: of every rack) whose names sort after `after` (byte
 * order, as SQLite's BINARY collation and strcmp(); NULL or "": from the
 * first), by name, at most `limit` (0: all of them). A caller pages with
 * after = the last name it got: each page is one query, however many
 * racks or hosts. A rack that does not exist has no hosts. */
typedef struct store_page {
    const char *const *racks;
    size_t n_racks;
    const char *after;
    uint32_t limit;
} store_page;

/* The hosts `page` names (NULL: every host), with their MACs and DUID.
 * -EINVAL for a rack or `after` that is not a name. Returns the number of
 * hosts. */
int store_hosts_list(store *s, const store_page *page,
                     int (*cb)(const store_host *h, void *userdata), void *userdata);

/* ---- Racks and agents -------------------------------------------------- */

/* A rack may have several agents (issue 17: a redundant pair), each
 * named by its certificate: agent 1 by the rack's name, agent N (2 ..
 * STORE_AGENT_INSTANCE_MAX) by "RACK/N" (pki_agent_name()). Each has its
 * own acks, journal and event seqs; the rack's intents and generation are
 * shared. */
#define STORE_AGENT_INSTANCE_MAX 9u

/* A rack, with the first of its agents (the lowest instance, normally the
 * primary; store_agents_list() lists them all). */
typedef struct store_rack {
    const char *name;
    uint32_t agents;           /* how many agents have made contact */
    const char *agent;         /* "" before the agent's first contact */
    const char *agent_version; /* "" likewise */
    uint64_t last_seen_ms;     /* 0: never */
    uint64_t generation;       /* from 1 */
    uint64_t acked_generation; /* 0: nothing acked */
    uint64_t stored_through;   /* highest contiguous event seq stored */
    uint32_t hosts;
    uint32_t active_installs;
    /* The agent's last report (store_agent_status); status_ms 0: none. */
    uint64_t cache_bytes;
    uint64_t cache_limit_bytes; /* 0: no limit */
    uint64_t status_ms;
    bool has_render_context;
} store_rack;

int store_racks_list(store *s, int (*cb)(const store_rack *r, void *userdata), void *userdata);
/* The rack's generation and its agent 1's stored_through (0 without one). */
int store_rack_get(store *s, const char *rack, uint64_t *ret_generation,
                   uint64_t *ret_stored_through);

/* One agent of a rack, as store_agents_list() reports it. */
typedef struct store_agent_row {
    const char *rack;
    unsigned instance; /* 1 .. STORE_AGENT_INSTANCE_MAX */
    const char *agent; /* its name, "" before its first contact */
    const char *version;
    uint64_t last_seen_ms;
    uint64_t acked_generation;
    uint64_t stored_through;
    uint64_t cache_bytes;
    uint64_t cache_limit_bytes;
    uint64_t status_ms;
    bool has_render_context;
} store_agent_row;

/* Every agent of every rack, by rack name then instance. */
int store_agents_list(store *s, int (*cb)(const store_agent_row *a, void *userdata),
                      void *userdata);

/* The hub calls this when agent `instance` of `rack` has proven its
 * identity: creates the rack if new and records the agent's name, version
 * and last contact. */
int store_agent_seen(store *s, const char *rack, unsigned instance, const char *agent,
                     const char *version, uint64_t now);

/* What an agent reports of itself with its syncs (AgentStatus). */
typedef struct store_agent_status {
    uint64_t cache_bytes;
    uint64_t cache_limit_bytes;
    /* The packed RenderContext message as the agent sent it (validated by
     * the caller), or NULL: keep the one stored. */
    const void *render_context;
    size_t render_context_len;
} store_agent_status;

/* The hub records an agent's status (and so its contact) at `now`. Agents
 * report with every sync (each ~30 s while idle), so a report equal to the
 * stored one writes nothing unless the stored one is older than
 * STORE_AGENT_STATUS_REFRESH_MS: at most one write (one fsync) per rack a
 * minute for "last seen", not one per sync. -ENOENT for a rack without an
 * agent row (store_agent_seen comes first). */
#define STORE_AGENT_STATUS_REFRESH_MS 60000u
int store_agent_status_set(store *s, const char *rack, unsigned instance,
                           const store_agent_status *status, uint64_t now);
/* The render context the rack's agents last sent (of the one that
 * reported last), packed, in a new buffer (free() it). -ENOENT for an
 * unknown rack or one whose agents never sent one. */
int store_agent_render_context(store *s, const char *rack, void **ret, size_t *ret_len);

/* ---- Images and profiles ----------------------------------------------- */

/* Creates a profile with its images and kickstart, in one transaction. An
 * existing profile of that name is replaced when `update` (its images are
 * replaced, images no profile uses any more are dropped, and racks with
 * active installs of it get a new generation), else -EEXIST. Exactly one
 * kernel and one initrd image, file names unique within the profile. */
int store_profile_import(store *s, const model_profile *p, bool update);
/* Profiles by name (with_content false leaves kickstart ""). */
int store_profiles_list(store *s, bool with_content,
                        int (*cb)(const model_profile *p, void *userdata), void *userdata);
int store_profile_get(store *s, const char *name, bool with_content,
                      int (*cb)(const model_profile *p, void *userdata), void *userdata);
/* Every image with the profile that uses it, by profile then file name. */
int store_images_list(store *s,
                      int (*cb)(const char *profile, const model_image *img, void *userdata),
                      void *userdata);

/* ---- Installs ---------------------------------------------------------- */

/* Records a new install of `host` with `profile` (state requested, a random
 * UUID id and a random 128-bit token from getrandom(2)) and bumps the rack's
 * generation. -EBUSY if the host has an active install, unless `replace`,
 * which cancels that one in the same transaction. ret_id gets the id. */
int store_install_create(store *s, const char *host, const char *profile, bool replace,
                         uint64_t now, char ret_id[STORE_ID_LEN + 1]);
/* Cancels the host's active install and bumps the rack's generation.
 * -ENOENT for an unknown host or when it has no active install (errmsg
 * says which). ret_id (if not NULL) gets the cancelled install's id. */
int store_install_cancel(store *s, const char *host, uint64_t now, char ret_id[STORE_ID_LEN + 1]);

/* Many hosts at once, inside a batch (store_batch_begin()): what happened
 * to each host. A host that fails changes nothing; the others go on. */
typedef struct store_host_outcome {
    /* 0 done; -ENOENT no such host; -EBUSY (install) an active install and
     * not `replace`; -ENODATA (cancel) no active install */
    int result;
    char id[STORE_ID_LEN + 1];  /* the install created, cancelled, or (-EBUSY) active */
    install_state active_state; /* -EBUSY: the active install's */
} store_host_outcome;

/* store_install_create() for each of hosts[0..n) (distinct names: a host
 * twice fails the batch), out[i] its outcome; each rack touched is bumped
 * once. Returns how many hosts were done, or < 0:
 * the profile does not exist (-ENOENT, nothing done), or the store failed
 * (the batch must then end without committing). */
int store_installs_create(store *s, const char *const *hosts, size_t n, const char *profile,
                          bool replace, uint64_t now, store_host_outcome *out);
/* store_install_cancel() for each of hosts[0..n), likewise. */
int store_installs_cancel(store *s, const char *const *hosts, size_t n, uint64_t now,
                          store_host_outcome *out);

/* One active install as its rack's agent needs it (an Intent). */
typedef struct store_intent {
    const char *install_id;
    const char *token;
    uint32_t attempt;
    install_state state;
    const store_host *host;
    const model_profile *profile;
} store_intent;

/* The rack's generation and its active intents (requested, dispatched,
 * booting, installing), in install order; `cb` may be NULL to ask only for
 * the generation. Profiles are loaded once per call: intents sharing a
 * profile get the same pointer, so the hub can send each profile once.
 * -ENOENT for an unknown rack. */
int store_rack_intents(store *s, const char *rack, uint64_t *ret_generation,
                       int (*cb)(const store_intent *in, void *userdata), void *userdata);

/* Agent `instance` of `rack` has persisted `generation`: installs of that
 * rack created in that generation or before, still requested, become
 * dispatched (the first of the rack's agents to ack dispatches them).
 * Records the ack and last contact. -EINVAL for a generation above the
 * rack's. Returns the number of installs dispatched. */
int store_agent_ack(store *s, const char *rack, unsigned instance, uint64_t generation,
                    uint64_t now);

/* ---- Events ------------------------------------------------------------ */

/* One event from an agent (rackboot.v1.Event). */
typedef struct store_event {
    uint64_t seq; /* per-agent journal sequence, from 1 */
    uint64_t time_ms;
    const char *install_id; /* NULL or "": none (power events only) */
    const char *host;
    const uint8_t *mac; /* 6 bytes or NULL; required with duid_learned */
    Rackboot__V1__Phase phase;
    uint32_t percent;
    const char *message; /* NULL: "" */
    const uint8_t *duid; /* with duid_learned */
    size_t duid_len;
    const char *power_id; /* power phases: the command, NULL or "" for a poll */
    int power_state;      /* power phases: Rackboot__V1__PowerState, 0 unknown */
} store_event;

typedef enum store_event_result {
    STORE_EVENT_STORED = 1,      /* recorded now (the install may or may not have moved) */
    STORE_EVENT_DUPLICATE,       /* already handled: stored or refused before */
    STORE_EVENT_REFUSED_HOST,    /* host unknown or in another rack */
    STORE_EVENT_REFUSED_INSTALL, /* install unknown or of another host */
    STORE_EVENT_REFUSED_INVALID, /* bad phase, percent, MAC or DUID */
} store_event_result;

const char *store_event_result_to_string(store_event_result r);

/* Agent `instance` of `rack` sends events from the journal `journal_id`
 * (EventBatch.journal_id). A journal other than the one on record (the
 * agent's state was wiped or the machine replaced) starts a new sequence
 * space: its seqs count from 1 again, none of them a duplicate of the old
 * journal's, and stored_through restarts at 0. Returns 1 when a new space
 * began, 0 otherwise (the same journal, the first id on record, or an empty
 * id from an agent that sends none). -ENOENT for an unknown rack. */
int store_agent_journal(store *s, const char *rack, unsigned instance, const char *journal_id);

/* Stores a batch of events from agent `instance` of `rack`, in ONE
 * transaction: events already handled (rack, instance, journal, seq) are
 * skipped; events about hosts
 * outside the rack or unknown installs are refused (their seq counts as
 * handled, so the agent can drop them, and the refusal is kept for audit
 * but never shown as the host's event); every other event is recorded and
 * applied to its install through install_fsm (recorded even when it does
 * not move the state); duid_learned events record the DUID to MAC binding;
 * an install reaching installed or failed bumps the rack's generation.
 * A progress phase of an install that another agent of the rack already
 * reported (both agents of a pair saw the host) is a duplicate: each phase
 * counts once, and the install only ever moves forwards, so the phases
 * reported by both count in order whichever agent's arrives first.
 * results (if not NULL, n entries) gets each event's result; it is
 * meaningful only when the call succeeds (on failure nothing was stored and
 * the agent re-sends the batch).
 * *ret_stored_through gets the highest seq such that it and every lower one
 * is handled. A batch is taken as the agent's journal from its oldest
 * unacknowledged event on: seqs it skips (before or between its events) no
 * longer exist at the agent and count as handled, so a gap in an agent's
 * journal never stalls its stream. Returns the number of events stored now. */
int store_events_ingest(store *s, const char *rack, unsigned instance, const store_event *events,
                        size_t n, uint64_t now, store_event_result *results,
                        uint64_t *ret_stored_through);

/* How long an install took to get somewhere, for the controller's metrics
 * (deploy/METRICS.md): from its dispatch (the ack of its agent) to the
 * moment an event of this batch first took it there, by the store's clock
 * (`now` of the call that stored the event). */
typedef enum store_milestone {
    STORE_MILESTONE_NONE = 0,
    STORE_MILESTONE_DHCP_BOUND, /* the install's first dhcp_bound */
    STORE_MILESTONE_INSTALLED,  /* it became installed */
} store_milestone;

typedef struct store_event_timing {
    store_milestone milestone; /* NONE for most events */
    uint64_t since_dispatch_ms;
} store_event_timing;

/* store_events_ingest() that also fills timings[0..n) (if not NULL): the
 * milestone each stored event took its install to, when the install was
 * dispatched (an install that skipped dispatched has no start to measure
 * from). Meaningful only when the call succeeds. */
int store_events_ingest_timed(store *s, const char *rack, unsigned instance,
                              const store_event *events, size_t n, uint64_t now,
                              store_event_result *results, store_event_timing *timings,
                              uint64_t *ret_stored_through);

/* Moves every install whose phase deadline (install_deadline()) is at or
 * before `now` to timed_out, bumping their racks' generations. Returns the
 * number of installs timed out. */
int store_expire(store *s, uint64_t now, const install_timeouts *cfg);

/* ---- Power ------------------------------------------------------------- */

/* A power command for each of hosts[0..n) inside a batch: `action` after
 * setting `boot_device` (0: leave it), with the EFI flag when the host's
 * firmware is UEFI; install_ids[i] (NULL, or NULL entries: none) names the
 * install a command starts. Each host's rack is bumped once (the command
 * goes out with the rack's state). out[i].result: 0 done (out[i].id the
 * command), -ENOENT no such host, -ENODEV the host has no BMC. Returns how
 * many commands were made, or < 0 when the store failed. */
typedef struct store_power_outcome {
    int result;
    char id[STORE_POWER_ID_LEN + 1];
} store_power_outcome;
int store_power_create(store *s, const char *const *hosts, size_t n, int action, int boot_device,
                       const char *const *install_ids, uint64_t now, store_power_outcome *out);

/* The commands ids[0..n) names, in that order (unknown ids are left out). */
int store_power_results(store *s, const char *const *ids, size_t n,
                        int (*cb)(const store_power *p, void *userdata), void *userdata);

/* What the rack's agent needs to drive its hosts' BMCs: every host of
 * `rack` with a BMC (with its secret), and the commands it has not done,
 * oldest first. Either callback may be NULL. */
int store_rack_power(store *s, const char *rack, int (*bmc_cb)(const store_bmc *b, void *userdata),
                     int (*cmd_cb)(const store_power *p, void *userdata), void *userdata);

/* Commands still not done `older_ms` after they were made fail ("the
 * rack's agent did not do it"), so a caller waiting on them and the
 * rack's state are not held for ever by an agent that is gone. Returns
 * how many failed. */
int store_power_expire(store *s, uint64_t now, uint64_t older_ms);

/* ---- Status and history ------------------------------------------------ */

/* How many installs the store holds in each state (past ones included, as
 * long as their host is on record): ret_counts[state] for every valid
 * state, 0 where there are none; index 0 is unused. */
int store_installs_count(store *s, uint64_t ret_counts[INSTALL_STATE_LAST + 1]);

typedef struct store_status {
    const char *host;
    const char *rack;
    const char *install_id;    /* "" when the host never had an install */
    const char *profile;       /* "" likewise */
    install_state state;       /* 0 when the host never had an install */
    Rackboot__V1__Phase phase; /* last phase seen, UNSPECIFIED before any */
    uint32_t percent;
    uint64_t updated_ms;
    uint32_t attempt;
    const char *message; /* last event's message, or "timed out" / "cancelled" */
    /* What the host's BMC last said (Rackboot__V1__PowerState, 0: never
     * read), and when; independent of installs. */
    int power_state;
    uint64_t power_updated_ms;
} store_status;

/* The host's latest install (the active one if any). -ENOENT. */
int store_status_get(store *s, const char *host, int (*cb)(const store_status *st, void *userdata),
                     void *userdata);
/* One row per host of `page` (NULL: every host), by host name. -EINVAL
 * as store_hosts_list(). Returns the number of rows. */
int store_status_list(store *s, const store_page *page,
                      int (*cb)(const store_status *st, void *userdata), void *userdata);

typedef struct store_event_row {
    uint64_t seq; /* controller-wide, increasing */
    uint64_t time_ms;
    const char *host;
    const char *install_id;
    Rackboot__V1__Phase phase;
    uint32_t percent;
    const char *message;
} store_event_row;

/* Stored events (not refused ones) with seq > after_seq, of `host` (NULL:
 * every host), oldest first, at most `limit` (0: no limit). -ENOENT for an
 * unknown host. Returns the number of rows. */
int store_events_list(store *s, const char *host, uint64_t after_seq, uint32_t limit,
                      int (*cb)(const store_event_row *e, void *userdata), void *userdata);
/* The highest event seq stored so far (0: none): where a reader that wants
 * only what comes next starts. */
int store_events_last_seq(store *s, uint64_t *ret);

/* ---- Retention --------------------------------------------------------- */

typedef struct store_retention {
    uint64_t keep_ms;     /* events received longer ago are deleted; 0: kept for ever */
    uint32_t refused_max; /* refused events kept at most (the newest); 0: no count cap */
    uint32_t batch;       /* rows deleted per call at most (0: STORE_PRUNE_BATCH) */
} store_retention;

#define STORE_PRUNE_BATCH        1000u
#define STORE_REFUSED_EVENTS_MAX 10000u /* the controller's cap on refused events */

/* Deletes events past the retention, at most `batch` rows in one short
 * transaction, oldest first: call it periodically, and again soon while it
 * returns a full batch. Refused events also go beyond the newest
 * refused_max. An event is deleted only once its agent no longer needs it
 * for de-duplication (its seq is at or below the rack's stored_through, or
 * of an older journal), so a re-sent old event is still a duplicate.
 * Returns the number of rows deleted. */
int store_events_prune(store *s, uint64_t now, const store_retention *keep);

/* ---- Audit log ---------------------------------------------------------- */

#define STORE_AUDIT_NAMES_MAX 1000u /* RBPROTO_MAX_AUDIT_NAMES: names kept per row */
#define STORE_AUDIT_WHO_MAX   95u   /* "<role>:<name>", "local:uid=N" */

/* One write through the operators' API, as it was asked and how it ended. */
typedef struct store_audit {
    uint64_t seq;     /* output: increasing */
    uint64_t time_ms; /* when it was asked */
    const char *who;  /* "operator:alice", "local:uid=0" */
    const char *verb; /* "install", "hosts add", ... */
    /* Hosts (and, for imports, profiles) it named. Input: a list (only the
     * first STORE_AUDIT_NAMES_MAX are kept; host_count keeps the total);
     * output: the kept names separated by single spaces (names hold none). */
    const char *const *hosts;
    size_t n_hosts;
    const char *hosts_text; /* output */
    uint32_t host_count;
    const char *const *profiles;
    size_t n_profiles;
    const char *profiles_text; /* output */
    bool ok;
    const char *result; /* "ok" or the error the caller was given */
} store_audit;

/* Appends a row in its own transaction (a failed write leaves its row
 * too). -EINVAL for a missing who or verb. */
int store_audit_append(store *s, const store_audit *a);
/* Ends a batch of writes that succeeded together with their audit row:
 * `a` is appended inside the batch and both are committed, or neither (a
 * failed append or commit undoes the writes too), so the store never holds
 * a write without its row nor an "ok" row for a write that was undone.
 * The batch is over either way; after a failure the caller records the
 * failed attempt with store_audit_append(). */
int store_batch_commit_audited(store *s, const store_audit *a);
/* Rows with time_ms >= since_ms and seq > after_seq, in the order they
 * were written (seq), at most `limit` (0: no limit): a caller pages with
 * after_seq = the last seq it got. `cb` returns 0 to go on, > 0 to stop
 * without taking the row it was given (a page is full), < 0 to fail with
 * that error. Returns the number of rows taken. */
int store_audit_list(store *s, uint64_t since_ms, uint64_t after_seq, uint32_t limit,
                     int (*cb)(const store_audit *a, void *userdata), void *userdata);
