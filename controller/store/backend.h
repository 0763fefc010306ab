/* store/backend: the fleet store's repository interface (issue 12 item 3).
 *
 * A backend is a table of primitive operations on stored rows, in the
 * manner of nng's protocol ops: transactions, get/put/delete of hosts (with
 * their MACs), racks, agents, profiles (with their images), installs,
 * events and audit rows, and listings through callbacks. The fleet's rules
 * (fleet.h: validation, generation bumps, event de-duplication and refusal,
 * the install FSM, expiry, ids and tokens) decide; a backend only does what
 * it is told, each operation a plain statement or two of SQL, so that a
 * PostgreSQL backend can implement the same table. store/sqlite.c is the
 * first backend, store/postgresql.c the second.
 *
 * Rows are named by the backend's integer ids (int64_t, > 0), which the
 * rules only pass back. A connection (store_backend) is used by one thread
 * at a time.
 *
 * Conventions of every operation:
 *   - returns a negative errno on failure, with one line in the error
 *     buffer given at open/connect (sqlite: -EEXIST for a constraint,
 *     -EBUSY, -ENOSPC, -EIO, -ENOMEM, -EPROTO);
 *   - a lookup (`find`, `get`, `*_owner`) returns 1 when found, 0 when not
 *     (then it writes nothing: "no such" is the caller's message to say);
 *   - a write outside a transaction is the caller's bug: the rules open
 *     one (begin/savepoint) around every public store call;
 *   - strings handed to callbacks live until the callback returns; a
 *     callback's negative return ends the listing and is returned as is;
 *     a callback may call the lookup operations (reads) of the same
 *     connection, never its writes;
 *   - times are Unix milliseconds given by the caller.
 *
 * Install states and phases cross this interface as install_state and
 * Rackboot__V1__Phase; how a backend stores them is its own business (the
 * SQLite schema keeps state names). The "active" states (install_fsm.h:
 * requested, dispatched, booting, installing) are part of the contract:
 * the backend enforces at most one active install per host, and its
 * set operations (intents_of_rack, racks_bump_of_profile, installs_due,
 * racks_list's counts) select by them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "install_fsm.h"
#include "rackboot.pb-c.h"
#include "store.h"

typedef struct store_backend store_backend;
/* A backend's change feed connection (feed_open below). */
typedef struct store_backend_feed store_backend_feed;

/* 'RBST': SQLite's application_id of a store file (tells it from any other
 * SQLite file), and PostgreSQL's advisory lock key of the store's one
 * writer, as SQL text (store/postgresql.c; store/copy.c takes it too).
 * Advisory locks are per database, so two stores in one cluster do not
 * wait for each other. */
#define STORE_APPLICATION_ID 0x52425354
#define STORE_WRITER_LOCK    "1380078420"

/* An install as the rules read it back. */
typedef struct store_install_ref {
    int64_t id;
    int64_t host_id;             /* install_find only */
    char uuid[STORE_ID_LEN + 1]; /* install_active_of_host only */
    install_state state;
    Rackboot__V1__Phase phase; /* install_find only: the phase status shows */
    install_ending ending;     /* install_find only: from its profile's kind */
    uint64_t dispatched_ms;    /* install_find only: when it was dispatched, 0: never */
} store_install_ref;

/* What lookups_prime reads ahead. */
typedef struct store_lookahead {
    const char *const *hosts; /* for host_find */
    size_t n_hosts;
    /* and each host's install_active_of_host and install_last_of_host */
    bool host_installs;
    const char *const *installs; /* for install_find */
    size_t n_installs;
} store_lookahead;

/* A new install row (state requested). */
typedef struct store_install_new {
    const char *uuid;
    const char *token;
    int64_t host_id;
    int64_t profile_id;
    int64_t rack_id; /* the install records this rack's current generation */
    uint32_t attempt;
    uint64_t now;
} store_install_new;

/* An active install with the times its deadline is computed from. */
typedef struct store_install_due {
    int64_t id;
    int64_t rack_id;
    install_state state;
    install_times t;
} store_install_due;

/* One active install of a rack, for its intent. */
typedef struct store_intent_row {
    const char *uuid;
    const char *token;
    uint32_t attempt;
    install_state state;
    int64_t profile_id;
    const store_host *host; /* with MACs and DUID */
} store_intent_row;

/* A new power command row (pending). */
typedef struct store_power_new {
    const char *uuid;
    int64_t host_id;
    int64_t rack_id;
    int action;      /* Rackboot__V1__PowerAction */
    int boot_device; /* Rackboot__V1__BootDevice */
    bool efi;
    int64_t install_id; /* 0: none */
    uint64_t now;
} store_power_new;

/* A power command as the rules read it back. */
typedef struct store_power_ref {
    int64_t id;
    int64_t host_id;
    int64_t rack_id;
    bool done;
} store_power_ref;

/* A profile read from the backend, owning its strings and images. Backends
 * build it with the helpers below (store.c), the rules free it. */
typedef struct store_loaded_profile {
    int64_t id;
    model_profile p;
    size_t cap; /* of p.images */
} store_loaded_profile;

/* A loaded profile with its row's strings copied (images to be added); ""
 * for cmdline or kickstart is none (NULL). */
int store_loaded_profile_new(int64_t id, const char *name, const char *cmdline,
                             const char *kickstart, store_loaded_profile **ret);
/* Appends a copy of `im` (its name and url copied) to the profile. */
int store_loaded_profile_add_image(store_loaded_profile *lp, const model_image *im);
store_loaded_profile *store_loaded_profile_free(store_loaded_profile *lp);
void store_loaded_profile_freep(store_loaded_profile **lp);

typedef struct store_backend_ops {
    const char *name;             /* "sqlite" */
    const char *url_scheme;       /* "sqlite://": [store] url = SCHEME + location */
    const char *url_scheme_alias; /* another spelling of it ("postgres://"), or NULL */
    /* Several controllers share the store (PostgreSQL): a rack's
     * generation may move without this controller's doing (it listens to
     * the change feed below), and the schema changes under running
     * controllers, so a normal start migrates only an empty one,
     * --migrate the rest (controller/main.c). SQLite's file has one
     * controller. */
    bool shared;

    /* ---- Connections ---- */

    /* 0 when `location` (the URL after the scheme) is one this backend can
     * open, else -EINVAL and a static reason. */
    int (*location_check)(const char *location, const char **ret_why);
    /* Opens the store at `location`, creating and migrating its schema.
     * A backend whose database has one writer (SQLite's file) holds it
     * against a second controller (-EBUSY); one that serves several
     * controllers (PostgreSQL) must not. Failure reasons
     * go to errbuf, which the connection keeps for its later errors. */
    int (*open)(const char *location, char *errbuf, size_t errlen, store_backend **ret);
    /* The schema version of the store at `location` as it is, without
     * creating, migrating or holding it (--migrate's "from", and the
     * daemon's choice to migrate at start): 0 when it has none yet (no
     * file, an empty database); -EPROTO when it is not a store. */
    int (*peek_version)(const char *location, char *errbuf, size_t errlen, int *ret_version);
    /* Another connection to what `parent` opened (same backend). */
    int (*connect)(const store_backend *parent, char *errbuf, size_t errlen, store_backend **ret);
    void (*close)(store_backend *b);
    /* The schema version of the open store (>= 0). */
    int (*schema_version)(store_backend *b);

    /* ---- Transactions ---- */

    int (*begin)(store_backend *b);      /* a write transaction */
    int (*begin_read)(store_backend *b); /* a read snapshot */
    int (*commit)(store_backend *b);
    int (*rollback)(store_backend *b);
    /* One savepoint level inside a transaction (batches). */
    int (*savepoint)(store_backend *b);
    int (*release)(store_backend *b);
    int (*rollback_to)(store_backend *b);
    /* Whether a transaction is open: false after a failure the backend
     * answered by rolling the whole transaction back. */
    bool (*in_transaction)(store_backend *b);

    /* ---- Racks and agents ---- */

    int (*rack_find)(store_backend *b, const char *name, int64_t *ret_id, uint64_t *ret_generation);
    /* The rack's id, creating it (generation 1) if new. */
    int (*rack_ensure)(store_backend *b, const char *name, uint64_t now, int64_t *ret_id);
    int (*rack_bump)(store_backend *b, int64_t rack_id);
    /* Bumps every rack holding an active install of the profile. */
    int (*racks_bump_of_profile)(store_backend *b, int64_t profile_id);
    /* By name, with their agents' rows and counts. */
    int (*racks_list)(store_backend *b, int (*cb)(const store_rack *r, void *userdata),
                      void *userdata);
    /* A rack's agents are rows keyed (rack_id, instance), instance 1 ..
     * STORE_AGENT_INSTANCE_MAX (store.h). */
    int (*agents_list)(store_backend *b, int (*cb)(const store_agent_row *a, void *userdata),
                       void *userdata);
    /* Creates the agent's row (all zero) if missing. */
    int (*agent_ensure)(store_backend *b, int64_t rack_id, unsigned instance);
    /* The agent's stored_through; 0 without an agent row. */
    int (*agent_stored_through)(store_backend *b, int64_t rack_id, unsigned instance,
                                uint64_t *ret);
    /* The agent's journal id into buf ("" without one). */
    int (*agent_journal_get)(store_backend *b, int64_t rack_id, unsigned instance, char *buf,
                             size_t len);
    /* Records the journal id; with new_epoch, the events that follow are
     * keyed in a new sequence space and stored_through restarts at 0. */
    int (*agent_journal_set)(store_backend *b, int64_t rack_id, unsigned instance,
                             const char *journal, bool new_epoch);
    int (*agent_seen_set)(store_backend *b, int64_t rack_id, unsigned instance, const char *agent,
                          const char *version, uint64_t now);
    int (*agent_acked_set)(store_backend *b, int64_t rack_id, unsigned instance,
                           uint64_t generation, uint64_t now);
    /* Records the agent's report (its contact too); a NULL render_context
     * keeps the one stored. */
    int (*agent_status_set)(store_backend *b, int64_t rack_id, unsigned instance,
                            const store_agent_status *status, uint64_t now);
    /* The packed RenderContext the rack's agents last reported (the one
     * that reported last), as a new buffer (free() it): 1, or 0 when none
     * did. */
    int (*agent_render_get)(store_backend *b, int64_t rack_id, void **ret, size_t *ret_len);
    int (*agent_stored_set)(store_backend *b, int64_t rack_id, unsigned instance, uint64_t through,
                            uint64_t now);

    /* ---- Hosts ---- */

    /* Optional (NULL where a lookup is cheap: SQLite in the process):
     * reads ahead what an operation over many hosts or events is about to
     * look up, so that in this write transaction each lookup after needs
     * no statement of its own. Names not found are no error. */
    int (*lookups_prime)(store_backend *b, const store_lookahead *la);
    int (*host_find)(store_backend *b, const char *name, int64_t *ret_id, int64_t *ret_rack_id);
    int (*host_get)(store_backend *b, const char *name, store_host *ret);
    /* The hosts of the page (store.h: names checked by the rules, after
     * "" from the first, limit 0 all), by name, with their MACs and DUID,
     * in one query. Returns the number of hosts. */
    int (*hosts_list)(store_backend *b, const store_page *page,
                      int (*cb)(const store_host *h, void *userdata), void *userdata);
    /* The host other than `except` that holds the address / MAC. */
    int (*host_address_owner)(store_backend *b, const uint8_t address[16], const char *except,
                              char ret_owner[STORE_NAME_MAX + 1]);
    int (*host_mac_owner)(store_backend *b, const uint8_t mac[6], const char *except,
                          char ret_owner[STORE_NAME_MAX + 1]);
    /* Writes the host's row (not its MACs): inserts when host_id is 0 and
     * gives the new id, else updates that row. */
    int (*host_put)(store_backend *b, int64_t host_id, int64_t rack_id, const store_host *h,
                    const char *hostname, int64_t *ret_id);
    /* Deletes the host with its MACs, DUIDs, installs and their events. */
    int (*host_delete)(store_backend *b, int64_t host_id);
    /* The host's MACs in order, at most `max`. */
    int (*host_macs)(store_backend *b, int64_t host_id, uint8_t (*ret)[6], size_t max,
                     size_t *ret_n);
    /* Binds a MAC to the host at `position` (moving it from any other). */
    int (*mac_put)(store_backend *b, const uint8_t mac[6], int64_t host_id, uint32_t position);
    /* Unbinds a MAC, with the DUIDs learned for it. */
    int (*mac_delete)(store_backend *b, const uint8_t mac[6]);
    int (*mac_find)(store_backend *b, const uint8_t mac[6], int64_t *ret_host_id);
    /* Records (or refreshes) a DUID learned for a MAC. */
    int (*duid_put)(store_backend *b, const uint8_t *duid, size_t duid_len, const uint8_t mac[6],
                    uint64_t now);

    /* ---- Profiles and images ---- */

    int (*profile_find)(store_backend *b, const char *name, int64_t *ret_id);
    /* Inserts or replaces the profile of p->name, and replaces its image
     * list with p's (images are shared by content and origin). */
    int (*profile_put)(store_backend *b, const model_profile *p, const uint8_t kickstart_sha256[32],
                       uint64_t now, int64_t *ret_id);
    /* The profile with its images (kickstart "" unless with_content). */
    int (*profile_load)(store_backend *b, int64_t id, bool with_content,
                        store_loaded_profile **ret);
    /* Every profile's id, by name. */
    int (*profiles_list)(store_backend *b, int (*cb)(int64_t id, void *userdata), void *userdata);
    /* Deletes the images no profile uses. */
    int (*images_gc)(store_backend *b);
    /* Every image with its profile, by profile then file name. */
    int (*images_list)(store_backend *b,
                       int (*cb)(const char *profile, const model_image *img, void *userdata),
                       void *userdata);

    /* ---- Installs ---- */

    int (*install_active_of_host)(store_backend *b, int64_t host_id, store_install_ref *ret);
    /* The host's latest install's state and attempt. */
    int (*install_last_of_host)(store_backend *b, int64_t host_id, install_state *ret_state,
                                uint32_t *ret_attempt);
    int (*install_find)(store_backend *b, const char *uuid, store_install_ref *ret);
    int (*install_insert)(store_backend *b, const store_install_new *in);
    /* Writes the state, stamps its entry time, and the message unless NULL. */
    int (*install_set_state)(store_backend *b, int64_t id, install_state state, uint64_t now,
                             const char *message);
    /* The phase, percent and message status shows. */
    int (*install_set_progress)(store_backend *b, int64_t id, Rackboot__V1__Phase phase,
                                uint32_t percent, const char *message, uint64_t now);
    int (*install_set_message)(store_backend *b, int64_t id, const char *message, uint64_t now);
    /* Moves every requested install of the rack carried by `generation` or
     * an earlier one to `state`, stamped as install_set_state() does; the
     * number moved. One statement: an ack covers a rack's whole fleet. */
    int (*installs_requested_set_state)(store_backend *b, int64_t rack_id, uint64_t generation,
                                        install_state state, uint64_t now);
    /* Up to `max` active installs that may be past a deadline at `now`
     * with these timeouts (a superset: the rules decide). */
    int (*installs_due)(store_backend *b, uint64_t now, const install_timeouts *cfg,
                        store_install_due *rows, size_t max, size_t *ret_n);
    /* How many installs (of every host, past ones included) are in each
     * state: `cb` once per state that has any. */
    int (*installs_count)(store_backend *b,
                          int (*cb)(install_state state, uint64_t n, void *userdata),
                          void *userdata);
    /* The rack's active installs, in install order. */
    int (*intents_of_rack)(store_backend *b, int64_t rack_id,
                           int (*cb)(const store_intent_row *in, void *userdata), void *userdata);

    /* ---- Power ---- */

    int (*power_insert)(store_backend *b, const store_power_new *p);
    int (*power_find)(store_backend *b, const char *uuid, store_power_ref *ret);
    /* Ends a pending command: ok or not, the state read, the message. */
    int (*power_finish)(store_backend *b, int64_t id, bool ok, int power_state, const char *message,
                        uint64_t now);
    /* The power state the host's agent read, and when. */
    int (*host_power_set)(store_backend *b, int64_t host_id, int power_state, uint64_t now);
    /* The commands of uuids[0..n), in that order, unknown ones skipped. */
    int (*power_list)(store_backend *b, const char *const *uuids, size_t n,
                      int (*cb)(const store_power *p, void *userdata), void *userdata);
    /* The rack's hosts with a BMC (with secrets), then its pending
     * commands, oldest first; either callback may be NULL. */
    int (*rack_power)(store_backend *b, int64_t rack_id,
                      int (*bmc_cb)(const store_bmc *bmc, void *userdata),
                      int (*cmd_cb)(const store_power *p, void *userdata), void *userdata);
    /* Up to `max` pending commands made before `before_ms`. */
    int (*power_due)(store_backend *b, uint64_t before_ms, store_power_ref *rows, size_t max,
                     size_t *ret_n);

    /* ---- Events ---- */

    /* Records an event keyed (rack, agent instance, its current journal,
     * seq): of install_id (> 0), or refused for `refused` (install_id 0);
     * host_id (> 0) keys a host's power events, which may have no install.
     * *ret_inserted is false when that key is already stored (nothing
     * written). A NULL ret_inserted says the caller knows the key is free
     * (events_stored_in, in this transaction): the backend may then send
     * the row later, with the others of the batch, before any statement
     * that reads events and at the latest by RELEASE or COMMIT. */
    int (*event_insert)(store_backend *b, int64_t rack_id, unsigned instance, const store_event *e,
                        int64_t install_id, int64_t host_id, uint64_t now, const char *refused,
                        bool *ret_inserted);
    /* Whether (rack, agent instance, its current journal, seq) is stored. */
    int (*event_find)(store_backend *b, int64_t rack_id, unsigned instance, uint64_t seq);
    /* The seqs in (after, upto] stored for the agent's current journal,
     * in order: `cb` once each. */
    int (*events_stored_in)(store_backend *b, int64_t rack_id, unsigned instance, uint64_t after,
                            uint64_t upto, int (*cb)(uint64_t seq, void *userdata), void *userdata);
    /* The phases stored for these installs from agents other than
     * `instance`, when the rack has another agent: `cb` once per
     * (install, phase). */
    int (*events_phases_elsewhere)(
        store_backend *b, int64_t rack_id, unsigned instance, const int64_t *install_ids, size_t n,
        int (*cb)(int64_t install_id, Rackboot__V1__Phase phase, void *userdata), void *userdata);
    /* Stored (not refused) events with seq > after_seq, of host_id (0:
     * every host: its installs' and its power events), oldest first, at
     * most limit (0: no limit). */
    int (*events_list)(store_backend *b, int64_t host_id, uint64_t after_seq, uint32_t limit,
                       int (*cb)(const store_event_row *e, void *userdata), void *userdata);
    /* The highest event seq stored (refused events included), 0 when none. */
    int (*events_last_seq)(store_backend *b, uint64_t *ret);
    /* Deletes, oldest first, at most `limit` events received before
     * `before_ms` / refused events beyond the newest `keep`, among those
     * their agent has acknowledged (seq at or below its stored_through, or
     * of an older journal). Returns the number deleted. */
    int (*events_prune_received)(store_backend *b, uint64_t before_ms, uint32_t limit);
    int (*events_prune_refused)(store_backend *b, uint32_t keep, uint32_t limit);
    /* The host's latest install (a lookup: 1 found, 0 not). */
    int (*status_get)(store_backend *b, const char *host,
                      int (*cb)(const store_status *st, void *userdata), void *userdata);
    /* Each host's latest install, for the hosts of the page as
     * hosts_list gives them, in one query. Returns the number of rows. */
    int (*status_list)(store_backend *b, const store_page *page,
                       int (*cb)(const store_status *st, void *userdata), void *userdata);

    /* ---- Audit ---- */

    int (*audit_insert)(store_backend *b, const store_audit *a, const char *hosts_text,
                        uint64_t host_count, const char *profiles_text);
    /* Rows with time_ms >= since_ms and seq > after_seq, by seq, at most
     * limit (0: no limit); stops at the callback's first non-zero return
     * and returns it, else 0. */
    int (*audit_list)(store_backend *b, uint64_t since_ms, uint64_t after_seq, uint32_t limit,
                      int (*cb)(const store_audit *a, void *userdata), void *userdata);

    /* ---- Several controllers on one store (issue 17) ---- */

    /* The change feed, all NULL when the backend has none (a store with
     * one controller needs none): a connection of its own, opened from
     * `parent`, that hears of every committed write moving a rack's
     * generation or storing events, whoever made it. Used by one thread
     * at a time. */
    int (*feed_open)(const store_backend *parent, char *errbuf, size_t errlen,
                     store_backend_feed **ret);
    void (*feed_close)(store_backend_feed *f);
    /* The socket to wait on for readability; -1 while disconnected. It
     * may change across feed_reconnect(). */
    int (*feed_fd)(const store_backend_feed *f);
    /* Without blocking: takes what arrived and returns how many changes
     * it announced (0: none yet), or -EIO when the connection is lost
     * (then feed_reconnect()). `cb` (may be NULL) gets the topic of each
     * and the rack of a generation move, a rack perhaps more than once. */
    int (*feed_read)(store_backend_feed *f,
                     void (*cb)(store_feed_topic topic, const char *rack, void *userdata),
                     void *userdata);
    /* In the current write transaction: the feeds hear on its commit that
     * events were stored (however many calls it made). */
    int (*feed_events_stored)(store_backend *b);
    /* Blocks until connected again and listening (or failed: -EIO).
     * Changes made while it was down are not announced. */
    int (*feed_reconnect)(store_backend_feed *f);

    /* The expiry lock: 1 when this connection holds it (taking it when
     * free), 0 when another connection does, which keeps it until it
     * closes or its session ends. NULL: this connection is always the
     * holder (one controller per store). */
    int (*expiry_lock)(store_backend *b);
} store_backend_ops;

/* The backends of this build. */
extern const store_backend_ops store_sqlite_ops;
extern const store_backend_ops store_postgresql_ops;

/* A store on the backend `ops` at `location` (what follows its URL
 * scheme): store_open() and store_open_url() come here. */
int store_open_backend(const store_backend_ops *ops, const char *location, store **ret,
                       char **ret_errmsg);
