/* store/postgresql: the fleet store's PostgreSQL backend (store/backend.h),
 * on libpq.
 *
 * SQL and libpq only: the schema as the same numbered migrations as
 * store/sqlite.c (so store_schema_version() answers the same number on
 * both), one prepared statement per operation (prepared once per
 * connection, again after a reconnect), and the mapping of SQLSTATEs to
 * errnos. The rules that decide what to write are fleet.c's.
 *
 * Several controllers may share one database: open() takes no lock that
 * keeps another out (SQLite's backend does, its file has one writer).
 *
 * Writers are serialized, as SQLite's are. The rules were written against
 * SQLite's BEGIN IMMEDIATE: one write transaction at a time, each seeing
 * every earlier commit. They read, decide, then write inside one
 * transaction (an agent's stored_through from the events it has, a
 * host's active install before the next, a rack's generation before the
 * installs that record it), and event seqs are read by listeners in id
 * order, which is only safe if ids are committed in the order they are
 * drawn. So a write transaction takes one transaction-level advisory lock
 * (STORE_WRITER_LOCK) first, under READ COMMITTED: each statement then sees
 * every commit made before the lock was granted, exactly SQLite's one
 * writer. SERIALIZABLE would also be correct but fails transactions with
 * 40001 for the caller to retry, and the rules do not retry; row locks
 * would need the rules to name every row they read. Readers never take
 * the lock. Migrations take the same lock, so two controllers starting at
 * once against one empty database migrate it once.
 *
 * Connection loss: a statement that fails because the connection broke
 * answers -EIO; the next call outside a transaction reconnects
 * (PQreset), so a controller outlives a database restart. A transaction
 * the loss cut short is gone: in_transaction() is false, and the
 * transaction calls (savepoint, release, rollback_to, commit) answer -EIO
 * until the caller begins again, so a batch is never committed piecemeal.
 *
 * Several controllers, all active (issue 17):
 *   - every statement that moves a rack's generation also sends
 *     pg_notify(FEED_CHANNEL, rack name) in its transaction; PostgreSQL
 *     delivers it on commit (never for a rollback), once per transaction
 *     and payload. A controller's change feed (feed_open) is a connection
 *     of its own that LISTENs, so the agents parked on every controller
 *     hear of an install made through any of them;
 *   - the expiry lock is a session-level advisory lock (EXPIRY_LOCK) that
 *     a controller's connection takes and keeps: the controller that
 *     holds it runs the timeouts, and when it dies its session ends and
 *     the lock is free for the next to try. A run without it is still
 *     correct (expiry writes under the writer lock, and finds nothing left
 *     to do), only wasted.
 *
 * Results are read whole (PQexecPrepared) before callbacks run: a
 * callback may call this connection's lookups (backend.h), which a
 * row-by-row read would not allow.
 *
 * Cleanup style: __attribute__((cleanup)) throughout, as store/sqlite.c. */
#include "store-internal.h"
#include "store/backend.h"
#include "store/columns.h"
#include "store/pgarray.h"
#include "store/rowcache.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "util.h"

/* 'RBEX': the session-level lock of the controller that runs the expiry
 * (the writer's key, STORE_WRITER_LOCK, is backend.h's). */
#define EXPIRY_LOCK "1380074840"
/* The change feed's channel; the payload is the rack's name. */
#define FEED_CHANNEL "rackboot_racks"
/* Events were stored (the payload is empty): notified once per
 * transaction, however many batches it held (PostgreSQL folds a
 * transaction's equal notifications into one). */
#define FEED_EVENTS_CHANNEL "rackboot_events"

#define ACTIVE_STATES "('requested','dispatched','booting','installing')"
/* An install's new state $2 at $3, with the time it entered it. */
#define SET_STATE_STAMPS                                                                           \
    "state = $2, updated_ms = $3, "                                                                \
    "dispatched_ms = CASE WHEN $2::text = 'dispatched' THEN $3 ELSE dispatched_ms END, "           \
    "booting_ms = CASE WHEN $2::text = 'booting' THEN $3 ELSE booting_ms END, "                    \
    "installing_ms = CASE WHEN $2::text = 'installing' THEN $3 ELSE installing_ms END, "           \
    "finished_ms = CASE WHEN $2::text IN ('installed','failed','cancelled','timed_out') "          \
    "THEN $3 ELSE finished_ms END"

/* ---- Schema ------------------------------------------------------------ */

/* Migration N takes a store from version N-1 to N, in one transaction,
 * and is store/sqlite.c's step N for PostgreSQL: the same tables, columns,
 * keys, CHECKs and indexes. Append only, and a step here is added with
 * its SQLite twin.
 *
 * Types: ids are BIGINT identities; integers BIGINT where SQLite's 64-bit
 * INTEGER holds times, counts, seqs or any uint32 of the API, INTEGER or
 * SMALLINT for small enums; blobs BYTEA with the same length CHECKs;
 * SQLite's 0/1 flags BOOLEAN (the statements cast and read them as such),
 * enums that happen to be 0/1 (ip_mode, uefi_boot) stay numbers. Names
 * are COLLATE "C": pages continue after a name by byte order, as SQLite's
 * BINARY collation orders them, whatever the database's locale.
 *
 * Where SQLite rebuilds a table to change a constraint (steps 2, 7, 8,
 * 10), PostgreSQL alters it in place: the constraints that change are
 * named in the step that makes them. */
static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE racks ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  name TEXT COLLATE \"C\" NOT NULL UNIQUE,"
    "  generation BIGINT NOT NULL DEFAULT 1 CHECK (generation >= 1),"
    "  created_ms BIGINT NOT NULL"
    ");"
    "CREATE TABLE agents ("
    "  rack_id BIGINT PRIMARY KEY REFERENCES racks(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  version TEXT NOT NULL DEFAULT '',"
    "  last_seen_ms BIGINT NOT NULL DEFAULT 0,"
    "  acked_generation BIGINT NOT NULL DEFAULT 0,"
    "  stored_through BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE hosts ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  name TEXT COLLATE \"C\" NOT NULL UNIQUE,"
    "  rack_id BIGINT NOT NULL REFERENCES racks(id),"
    "  address BYTEA NOT NULL UNIQUE CHECK (length(address) = 16),"
    "  prefix_length INTEGER NOT NULL CHECK (prefix_length BETWEEN 1 AND 128),"
    "  gateway BYTEA CHECK (gateway IS NULL OR length(gateway) = 16),"
    "  hostname TEXT NOT NULL"
    ");"
    "CREATE INDEX hosts_rack ON hosts(rack_id, name);"
    "CREATE TABLE host_macs ("
    "  mac BYTEA PRIMARY KEY CHECK (length(mac) = 6),"
    "  host_id BIGINT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL"
    ");"
    "CREATE INDEX host_macs_host ON host_macs(host_id, position);"
    "CREATE TABLE host_duids ("
    "  duid BYTEA NOT NULL CHECK (length(duid) BETWEEN 3 AND 130),"
    "  mac BYTEA NOT NULL REFERENCES host_macs(mac) ON DELETE CASCADE,"
    "  first_seen_ms BIGINT NOT NULL,"
    "  last_seen_ms BIGINT NOT NULL,"
    "  PRIMARY KEY (duid, mac)"
    ");"
    "CREATE INDEX host_duids_mac ON host_duids(mac, last_seen_ms);"
    "CREATE TABLE images ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  sha256 BYTEA NOT NULL CHECK (length(sha256) = 32),"
    "  url TEXT NOT NULL,"
    "  size BIGINT NOT NULL DEFAULT 0 CHECK (size >= 0),"
    "  name TEXT NOT NULL,"
    "  kind INTEGER NOT NULL CONSTRAINT images_kind CHECK (kind BETWEEN 1 AND 4),"
    "  UNIQUE (sha256, url)"
    ");"
    "CREATE TABLE profiles ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  name TEXT COLLATE \"C\" NOT NULL UNIQUE,"
    "  cmdline TEXT NOT NULL,"
    "  kickstart TEXT NOT NULL,"
    "  kickstart_sha256 BYTEA NOT NULL CHECK (length(kickstart_sha256) = 32),"
    "  overlay BOOLEAN NOT NULL,"
    "  ip_mode SMALLINT NOT NULL CHECK (ip_mode IN (0, 1)),"
    "  keep_ra BOOLEAN NOT NULL,"
    "  updated_ms BIGINT NOT NULL"
    ");"
    "CREATE TABLE profile_images ("
    "  profile_id BIGINT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  image_id BIGINT NOT NULL REFERENCES images(id),"
    "  kind INTEGER NOT NULL CONSTRAINT profile_images_kind CHECK (kind BETWEEN 1 AND 4),"
    "  name TEXT COLLATE \"C\" NOT NULL,"
    "  PRIMARY KEY (profile_id, position),"
    "  UNIQUE (profile_id, name)"
    ");"
    "CREATE INDEX profile_images_image ON profile_images(image_id);"
    "CREATE TABLE installs ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  uuid TEXT NOT NULL UNIQUE,"
    "  host_id BIGINT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,"
    "  profile_id BIGINT NOT NULL REFERENCES profiles(id),"
    "  state TEXT NOT NULL CHECK (state IN ('requested','dispatched','booting','installing',"
    "                                       'installed','failed','cancelled','timed_out')),"
    "  token TEXT NOT NULL,"
    "  attempt BIGINT NOT NULL CHECK (attempt >= 1),"
    "  generation BIGINT NOT NULL,"
    "  created_ms BIGINT NOT NULL,"
    "  dispatched_ms BIGINT,"
    "  booting_ms BIGINT,"
    "  installing_ms BIGINT,"
    "  finished_ms BIGINT,"
    "  phase INTEGER NOT NULL DEFAULT 0,"
    "  percent INTEGER NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),"
    "  message TEXT NOT NULL DEFAULT '',"
    "  updated_ms BIGINT NOT NULL"
    ");"
    "CREATE UNIQUE INDEX installs_one_active ON installs(host_id) WHERE state IN " ACTIVE_STATES ";"
    "CREATE INDEX installs_host ON installs(host_id, id);"
    "CREATE INDEX installs_active_state ON installs(state) WHERE state IN " ACTIVE_STATES ";"
    "CREATE INDEX installs_profile ON installs(profile_id);"
    "CREATE TABLE events ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  rack_id BIGINT NOT NULL REFERENCES racks(id),"
    "  agent_seq BIGINT NOT NULL CHECK (agent_seq >= 1),"
    "  install_id BIGINT REFERENCES installs(id) ON DELETE CASCADE,"
    "  host TEXT NOT NULL,"
    "  time_ms BIGINT NOT NULL,"
    "  received_ms BIGINT NOT NULL,"
    "  phase INTEGER NOT NULL,"
    "  percent BIGINT NOT NULL,"
    "  message TEXT NOT NULL,"
    "  refused TEXT,"
    "  CONSTRAINT events_key UNIQUE (rack_id, agent_seq),"
    "  CONSTRAINT events_owner CHECK ((install_id IS NULL) = (refused IS NOT NULL))"
    ");"
    "CREATE INDEX events_install ON events(install_id, id) WHERE install_id IS NOT NULL;",
    /* 2: agents' journals; events unique per (rack, epoch, seq). */
    "ALTER TABLE agents ADD COLUMN journal TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE agents ADD COLUMN journal_epoch BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE events ADD COLUMN journal_epoch BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE events DROP CONSTRAINT events_key;"
    "ALTER TABLE events ADD CONSTRAINT events_key UNIQUE (rack_id, journal_epoch, agent_seq);",
    /* 3: profiles' any_source. */
    "ALTER TABLE profiles ADD COLUMN any_source BOOLEAN NOT NULL DEFAULT false;",
    /* 4: retention's indexes. */
    "CREATE INDEX events_received ON events(received_ms);"
    "CREATE INDEX events_refused ON events(id) WHERE refused IS NOT NULL;",
    /* 5: the audit log. */
    "CREATE TABLE audit ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  time_ms BIGINT NOT NULL,"
    "  who TEXT NOT NULL,"
    "  verb TEXT NOT NULL,"
    "  hosts TEXT NOT NULL,"
    "  host_count BIGINT NOT NULL CHECK (host_count >= 0),"
    "  profiles TEXT NOT NULL,"
    "  ok BOOLEAN NOT NULL,"
    "  result TEXT NOT NULL"
    ");"
    "CREATE INDEX audit_time ON audit(time_ms);",
    /* 6: a profile's root_device. */
    "ALTER TABLE profiles ADD COLUMN root_device TEXT NOT NULL DEFAULT '';",
    /* 7: BMCs and power; events may be a host's without an install. */
    "ALTER TABLE hosts ADD COLUMN bmc_url TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE hosts ADD COLUMN bmc_user TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE hosts ADD COLUMN bmc_password TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE hosts ADD COLUMN firmware SMALLINT NOT NULL DEFAULT 0 "
    "CHECK (firmware IN (0, 1, 2));"
    "ALTER TABLE hosts ADD COLUMN power_state SMALLINT NOT NULL DEFAULT 0 "
    "CHECK (power_state IN (0, 1, 2));"
    "ALTER TABLE hosts ADD COLUMN power_updated_ms BIGINT NOT NULL DEFAULT 0;"
    "CREATE INDEX hosts_bmc ON hosts(rack_id) WHERE bmc_url != '';"
    "CREATE TABLE power_commands ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  uuid TEXT NOT NULL UNIQUE,"
    "  host_id BIGINT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,"
    "  rack_id BIGINT NOT NULL REFERENCES racks(id),"
    "  action INTEGER NOT NULL CHECK (action BETWEEN 1 AND 5),"
    "  boot_device INTEGER NOT NULL CHECK (boot_device BETWEEN 0 AND 2),"
    "  efi BOOLEAN NOT NULL,"
    "  install_id BIGINT REFERENCES installs(id) ON DELETE SET NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),"
    "  power_state INTEGER NOT NULL DEFAULT 0,"
    "  message TEXT NOT NULL DEFAULT '',"
    "  created_ms BIGINT NOT NULL,"
    "  updated_ms BIGINT NOT NULL"
    ");"
    "CREATE INDEX power_pending ON power_commands(rack_id, id) WHERE state = 'pending';"
    "CREATE INDEX power_host ON power_commands(host_id);"
    "CREATE INDEX power_install ON power_commands(install_id) WHERE install_id IS NOT NULL;"
    "ALTER TABLE events ADD COLUMN host_id BIGINT REFERENCES hosts(id) ON DELETE CASCADE;"
    "ALTER TABLE events DROP CONSTRAINT events_owner;"
    "ALTER TABLE events ADD CONSTRAINT events_refused_alone "
    "CHECK (refused IS NULL OR (install_id IS NULL AND host_id IS NULL));"
    "ALTER TABLE events ADD CONSTRAINT events_owner "
    "CHECK (refused IS NOT NULL OR install_id IS NOT NULL OR host_id IS NOT NULL);"
    "CREATE INDEX events_host ON events(host_id, id) WHERE host_id IS NOT NULL;",
    /* 8: image profiles: a profile's kind, SSH keys, user-data; image kind
     * 5 (disk). */
    "ALTER TABLE profiles ADD COLUMN kind SMALLINT NOT NULL DEFAULT 0 "
    "CONSTRAINT profiles_kind CHECK (kind IN (0, 1));"
    "ALTER TABLE profiles ADD COLUMN ssh_authorized_keys TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE profiles ADD COLUMN user_data TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE images DROP CONSTRAINT images_kind;"
    "ALTER TABLE images ADD CONSTRAINT images_kind CHECK (kind BETWEEN 1 AND 5);"
    "ALTER TABLE profile_images DROP CONSTRAINT profile_images_kind;"
    "ALTER TABLE profile_images ADD CONSTRAINT profile_images_kind "
    "CHECK (kind BETWEEN 1 AND 5);",
    /* 9: how a profile's UEFI hosts boot: 0 iPXE, 1 a UKI. */
    "ALTER TABLE profiles ADD COLUMN uefi_boot SMALLINT NOT NULL DEFAULT 0 "
    "CHECK (uefi_boot IN (0, 1));",
    /* 10: profile kind 2, debian-installer. */
    "ALTER TABLE profiles DROP CONSTRAINT profiles_kind;"
    "ALTER TABLE profiles ADD CONSTRAINT profiles_kind CHECK (kind IN (0, 1, 2));",
    /* 11: what an agent reports of itself with its syncs. */
    "ALTER TABLE agents ADD COLUMN cache_bytes BIGINT NOT NULL DEFAULT 0 "
    "CHECK (cache_bytes >= 0);"
    "ALTER TABLE agents ADD COLUMN cache_limit_bytes BIGINT NOT NULL DEFAULT 0 "
    "CHECK (cache_limit_bytes >= 0);"
    "ALTER TABLE agents ADD COLUMN status_ms BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN render_context BYTEA;",
    /* 12: several agents per rack, keyed (rack, instance); events unique
     * per (rack, agent, journal epoch, seq). What was stored is agent 1's. */
    "ALTER TABLE agents ADD COLUMN instance INTEGER NOT NULL DEFAULT 1 "
    "CHECK (instance BETWEEN 1 AND 9);"
    "ALTER TABLE agents ALTER COLUMN instance DROP DEFAULT;"
    "ALTER TABLE agents DROP CONSTRAINT agents_pkey;"
    "ALTER TABLE agents ADD CONSTRAINT agents_pkey PRIMARY KEY (rack_id, instance);"
    "ALTER TABLE events ADD COLUMN agent_instance INTEGER NOT NULL DEFAULT 1 "
    "CHECK (agent_instance BETWEEN 1 AND 9);"
    "ALTER TABLE events DROP CONSTRAINT events_key;"
    "ALTER TABLE events ADD CONSTRAINT events_key "
    "UNIQUE (rack_id, agent_instance, journal_epoch, agent_seq);",
};

/* ---- Statements -------------------------------------------------------- */

/* The statements are store/sqlite.c's, column for column (the row readers
 * below follow the same numbering); what differs is PostgreSQL's: $N
 * parameters (cast where the context leaves a type open), IS DISTINCT
 * FROM, greatest(), a JSON array read by jsonb_array_elements_text, and
 * LIMIT NULL for "no limit" where SQLite takes -1. */
/* A host with its MACs (one BYTEA of 6 bytes each, in order) and its DUID
 * (host_from_row): in the row, as a sync reads 20 hosts and more, rather
 * than two statements a host after it. */
#define HOST_COLS                                                                                  \
    "h.id, h.name, r.name, h.address, h.prefix_length, h.gateway, h.hostname, "                    \
    "(SELECT string_agg(mac, ''::bytea ORDER BY position) FROM host_macs WHERE host_id = h.id), "  \
    "(SELECT d.duid FROM host_duids d JOIN host_macs m ON m.mac = d.mac "                          \
    "WHERE m.host_id = h.id ORDER BY d.last_seen_ms DESC LIMIT 1)"
#define HOST_COLS_N             9
#define INSTALL_COLS_FOR_INTENT "i.uuid, i.token, i.attempt, i.state, i.profile_id, " HOST_COLS
#define HOST_BMC_COLS                                                                              \
    "h.bmc_url, h.bmc_user, h.bmc_password != '', h.firmware, h.power_state, h.power_updated_ms"
#define STATUS_SELECT                                                                              \
    "SELECT h.name, r.name, i.uuid, p.name, i.state, i.phase, i.percent, i.updated_ms, "           \
    "i.attempt, i.message, h.power_state, h.power_updated_ms "                                     \
    "FROM hosts h JOIN racks r ON r.id = h.rack_id "                                               \
    "LEFT JOIN installs i ON i.id = (SELECT max(id) FROM installs WHERE host_id = h.id) "          \
    "LEFT JOIN profiles p ON p.id = i.profile_id "

/* A page of hosts by name (store_page): $1 the name to start after, $2
 * the limit (NULL: none), $3 the rack, or the racks as a JSON array. */
#define PAGE_ALL  "h.name > $1 ORDER BY h.name LIMIT $2"
#define PAGE_RACK "h.rack_id = (SELECT id FROM racks WHERE name = $3) AND " PAGE_ALL
#define PAGE_RACKS                                                                                 \
    "h.rack_id IN (SELECT id FROM racks WHERE name IN "                                            \
    "(SELECT jsonb_array_elements_text($3::jsonb))) AND " PAGE_ALL
#define HOSTS_PAGE(where)                                                                          \
    "SELECT h.id, h.name, r.name, h.address, h.prefix_length, h.gateway, h.hostname, h.duid, "     \
    "m.mac, " HOST_BMC_COLS " FROM (SELECT h.id, h.name, h.rack_id, h.address, h.prefix_length, "  \
    "h.gateway, h.hostname, h.bmc_url, h.bmc_user, h.bmc_password, h.firmware, h.power_state, "    \
    "h.power_updated_ms, (SELECT d.duid FROM host_macs dm JOIN host_duids d ON d.mac = dm.mac "    \
    "WHERE dm.host_id = h.id ORDER BY d.last_seen_ms DESC LIMIT 1) AS duid FROM hosts h "          \
    "WHERE " where ") h JOIN racks r ON r.id = h.rack_id "                                         \
    "LEFT JOIN host_macs m ON m.host_id = h.id ORDER BY h.name, m.position"

#define POWER_COLS                                                                                 \
    "p.uuid, h.name, p.action, p.boot_device, p.efi, coalesce(i.uuid, ''), p.state, "              \
    "p.power_state, p.message, p.updated_ms"

/* The current journal epoch of agent $n of the rack $1 (0 before it made
 * contact). */
#define JOURNAL_EPOCH_OF_AGENT(n)                                                                  \
    "coalesce((SELECT journal_epoch FROM agents WHERE rack_id = $1 AND instance = $" #n "), 0)"

/* Installs as install_find reads them (install_ref_from_row), uuid last. */
#define INSTALL_REF_SELECT                                                                         \
    "SELECT i.id, i.host_id, i.state, i.phase, p.kind, coalesce(i.dispatched_ms, 0), i.uuid "      \
    "FROM installs i JOIN profiles p ON p.id = i.profile_id "

enum {
    ST_RACK_BY_NAME,
    ST_RACK_INSERT,
    ST_RACK_BUMP,
    ST_RACKS_LIST,
    ST_AGENTS_LIST,
    ST_AGENT_ENSURE,
    ST_AGENT_JOURNAL,
    ST_AGENT_JOURNAL_SET,
    ST_AGENT_SEEN,
    ST_AGENT_ACK,
    ST_AGENT_STORED,
    ST_AGENT_THROUGH,
    ST_AGENT_STATUS,
    ST_AGENT_RENDER,
    ST_HOST_BY_NAME,
    ST_HOSTS_BY_NAMES,
    ST_HOSTS_WITH_INSTALLS_BY_NAMES,
    ST_HOST_ADDR_OWNER,
    ST_HOST_MAC_OWNER,
    ST_HOST_INSERT,
    ST_HOST_UPDATE,
    ST_HOST_DELETE,
    ST_HOST_GET,
    ST_HOSTS_PAGE,
    ST_HOSTS_PAGE_OF_RACK,
    ST_HOSTS_PAGE_OF_RACKS,
    ST_MACS_OF_HOST,
    ST_MAC_DELETE,
    ST_MAC_UPSERT,
    ST_DUID_UPSERT,
    ST_MAC_HOST,
    ST_ACTIVE_OF_HOST,
    ST_LAST_OF_HOST,
    ST_PROFILE_BY_NAME,
    ST_PROFILE_UPSERT,
    ST_PROFILE_GET,
    ST_PROFILES_LIST,
    ST_PROFILE_IMAGES_DELETE,
    ST_PROFILE_IMAGES_OF,
    ST_IMAGE_UPSERT,
    ST_PROFILE_IMAGE_INSERT,
    ST_IMAGES_GC,
    ST_IMAGES_LIST,
    ST_BUMP_RACKS_OF_PROFILE,
    ST_INSTALL_INSERT,
    ST_INSTALLS_INSERT_MANY,
    ST_INSTALL_SET_STATE,
    ST_INSTALL_SET_PHASE,
    ST_INSTALL_SET_NOTE,
    ST_INSTALL_BY_UUID,
    ST_INSTALLS_BY_UUIDS,
    ST_INSTALLS_COUNT,
    ST_INTENTS_OF_RACK,
    ST_REQUESTED_OF_RACK_SET_STATE,
    ST_OVERDUE,
    ST_EVENT_INSERT,
    ST_EVENTS_INSERT_MANY,
    ST_EVENT_EXISTS,
    ST_EVENTS_STORED_IN,
    ST_EVENT_PHASES_ELSEWHERE,
    ST_EVENTS_ANNOUNCE,
    ST_STATUS_HOST,
    ST_STATUS_PAGE,
    ST_STATUS_PAGE_OF_RACK,
    ST_STATUS_PAGE_OF_RACKS,
    ST_EVENTS_ALL,
    ST_EVENTS_HOST,
    ST_EVENTS_LAST,
    ST_EVENTS_PRUNE_OLD,
    ST_EVENTS_PRUNE_REFUSED,
    ST_AUDIT_INSERT,
    ST_AUDIT_LIST,
    ST_POWER_INSERT,
    ST_POWER_BY_UUID,
    ST_POWER_FINISH,
    ST_HOST_POWER_SET,
    ST_POWER_GET,
    ST_BMCS_OF_RACK,
    ST_POWER_PENDING_OF_RACK,
    ST_POWER_DUE,
    ST_SCHEMA_VERSION,
    ST_EXPIRY_LOCK,
    _ST_MAX,
};

static const char *const statements[_ST_MAX] = {
    [ST_RACK_BY_NAME] = "SELECT id, generation FROM racks WHERE name = $1",
    [ST_RACK_INSERT] = "INSERT INTO racks (name, created_ms) VALUES ($1, $2) "
                       "ON CONFLICT (name) DO UPDATE SET name = excluded.name "
                       "RETURNING id, generation",
    /* pg_notify: delivered to every controller's feed on commit. */
    [ST_RACK_BUMP] = "UPDATE racks SET generation = generation + 1 WHERE id = $1 "
                     "RETURNING pg_notify('" FEED_CHANNEL "', name)",
    /* The counts grouped once each: as subqueries per rack, the active
     * installs' was planned as a join of every active install for each
     * rack (3.3 s for 500 racks of 20 hosts, all installing). */
    [ST_RACKS_LIST] =
        "WITH hc AS (SELECT rack_id, count(*) AS n FROM hosts GROUP BY rack_id), "
        "ic AS (SELECT h.rack_id, count(*) AS n FROM installs i JOIN hosts h ON h.id = i.host_id "
        "WHERE i.state IN " ACTIVE_STATES " GROUP BY h.rack_id), "
        "ac AS (SELECT rack_id, count(*) AS n, min(instance) AS first FROM agents "
        "GROUP BY rack_id) "
        "SELECT r.name, coalesce(a.name, ''), coalesce(a.version, ''), "
        "coalesce(a.last_seen_ms, 0), r.generation, coalesce(a.acked_generation, 0), "
        "coalesce(a.stored_through, 0), coalesce(hc.n, 0), coalesce(ic.n, 0), "
        "coalesce(a.cache_bytes, 0), coalesce(a.cache_limit_bytes, 0), "
        "coalesce(a.status_ms, 0), a.render_context IS NOT NULL, coalesce(ac.n, 0) "
        "FROM racks r LEFT JOIN ac ON ac.rack_id = r.id "
        "LEFT JOIN agents a ON a.rack_id = r.id AND a.instance = ac.first "
        "LEFT JOIN hc ON hc.rack_id = r.id LEFT JOIN ic ON ic.rack_id = r.id ORDER BY r.name",
    [ST_AGENTS_LIST] = "SELECT r.name, a.instance, a.name, a.version, a.last_seen_ms, "
                       "a.acked_generation, a.stored_through, a.cache_bytes, "
                       "a.cache_limit_bytes, a.status_ms, a.render_context IS NOT NULL "
                       "FROM agents a JOIN racks r ON r.id = a.rack_id ORDER BY r.name, a.instance",
    [ST_AGENT_ENSURE] =
        "INSERT INTO agents (rack_id, instance) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    [ST_AGENT_SEEN] = "UPDATE agents SET name = $2, version = $3, last_seen_ms = $4 "
                      "WHERE rack_id = $1 AND instance = $5",
    [ST_AGENT_ACK] = "UPDATE agents SET acked_generation = $2, last_seen_ms = $3 "
                     "WHERE rack_id = $1 AND instance = $4",
    [ST_AGENT_STORED] = "UPDATE agents SET stored_through = $2, last_seen_ms = $3 "
                        "WHERE rack_id = $1 AND instance = $4",
    [ST_AGENT_THROUGH] = "SELECT stored_through FROM agents WHERE rack_id = $1 AND instance = $2",
    /* A row that would not change is not written unless its report is $6
     * ms old (store.h), as store/sqlite.c. */
    [ST_AGENT_STATUS] =
        "UPDATE agents SET cache_bytes = $2, cache_limit_bytes = $3, "
        "render_context = coalesce($4::bytea, render_context), status_ms = $5, "
        "last_seen_ms = $5 WHERE rack_id = $1 AND instance = $7 "
        "AND (cache_bytes IS DISTINCT FROM $2 "
        "OR cache_limit_bytes IS DISTINCT FROM $3 OR ($4::bytea IS NOT NULL AND "
        "render_context IS DISTINCT FROM $4::bytea) OR status_ms <= $5::bigint - $6::bigint)",
    [ST_AGENT_RENDER] = "SELECT render_context FROM agents WHERE rack_id = $1 "
                        "AND render_context IS NOT NULL ORDER BY status_ms DESC LIMIT 1",
    [ST_HOST_BY_NAME] = "SELECT id, rack_id FROM hosts WHERE name = $1",
    /* By names read ahead (lookups_prime): each through the name's index. */
    [ST_HOSTS_BY_NAMES] = "SELECT h.id, h.rack_id, h.name FROM unnest($1::text[]) AS u(name) "
                          "JOIN hosts h ON h.name = u.name",
    /* ... with what install_active_of_host and install_last_of_host read. */
    [ST_HOSTS_WITH_INSTALLS_BY_NAMES] =
        "SELECT h.id, h.rack_id, h.name, a.id, a.uuid, a.state, l.state, l.attempt "
        "FROM unnest($1::text[]) AS u(name) JOIN hosts h ON h.name = u.name "
        "LEFT JOIN LATERAL (SELECT id, uuid, state FROM installs WHERE host_id = h.id AND "
        "state IN " ACTIVE_STATES ") a ON true "
        "LEFT JOIN LATERAL (SELECT state, attempt FROM installs WHERE host_id = h.id "
        "ORDER BY id DESC LIMIT 1) l ON true",
    [ST_HOST_ADDR_OWNER] = "SELECT name FROM hosts WHERE address = $1 AND name != $2",
    [ST_HOST_MAC_OWNER] = "SELECT h.name FROM host_macs m JOIN hosts h ON h.id = m.host_id "
                          "WHERE m.mac = $1 AND h.name != $2",
    [ST_HOST_INSERT] =
        "INSERT INTO hosts (name, rack_id, address, prefix_length, gateway, hostname, bmc_url, "
        "bmc_user, bmc_password, firmware) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "RETURNING id",
    [ST_HOST_UPDATE] = "UPDATE hosts SET rack_id = $2, address = $3, prefix_length = $4, "
                       "gateway = $5, hostname = $6, bmc_url = $7, bmc_user = $8, "
                       "bmc_password = $9, firmware = $10 WHERE id = $1",
    [ST_HOST_DELETE] = "DELETE FROM hosts WHERE id = $1",
    [ST_HOST_GET] = "SELECT " HOST_COLS ", " HOST_BMC_COLS " FROM hosts h "
                    "JOIN racks r ON r.id = h.rack_id WHERE h.name = $1",
    [ST_HOSTS_PAGE] = HOSTS_PAGE(PAGE_ALL),
    [ST_HOSTS_PAGE_OF_RACK] = HOSTS_PAGE(PAGE_RACK),
    [ST_HOSTS_PAGE_OF_RACKS] = HOSTS_PAGE(PAGE_RACKS),
    [ST_MACS_OF_HOST] = "SELECT mac FROM host_macs WHERE host_id = $1 ORDER BY position",
    [ST_MAC_DELETE] = "DELETE FROM host_macs WHERE mac = $1",
    [ST_MAC_UPSERT] = "INSERT INTO host_macs (mac, host_id, position) VALUES ($1, $2, $3) "
                      "ON CONFLICT (mac) DO UPDATE SET host_id = excluded.host_id, "
                      "position = excluded.position",
    [ST_DUID_UPSERT] = "INSERT INTO host_duids (duid, mac, first_seen_ms, last_seen_ms) "
                       "VALUES ($1, $2, $3, $3) ON CONFLICT (duid, mac) DO UPDATE SET "
                       "last_seen_ms = greatest(host_duids.last_seen_ms, excluded.last_seen_ms)",
    [ST_MAC_HOST] = "SELECT host_id FROM host_macs WHERE mac = $1",
    [ST_ACTIVE_OF_HOST] =
        "SELECT id, uuid, state FROM installs WHERE host_id = $1 AND state IN " ACTIVE_STATES,
    [ST_LAST_OF_HOST] =
        "SELECT state, attempt FROM installs WHERE host_id = $1 ORDER BY id DESC LIMIT 1",
    [ST_PROFILE_BY_NAME] = "SELECT id FROM profiles WHERE name = $1",
    [ST_PROFILE_UPSERT] =
        "INSERT INTO profiles (name, cmdline, kickstart, kickstart_sha256, overlay, ip_mode, "
        "keep_ra, updated_ms, any_source, root_device, kind, ssh_authorized_keys, user_data, "
        "uefi_boot) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
        "ON CONFLICT (name) DO UPDATE "
        "SET cmdline = excluded.cmdline, kickstart = excluded.kickstart, "
        "kickstart_sha256 = excluded.kickstart_sha256, overlay = excluded.overlay, "
        "ip_mode = excluded.ip_mode, keep_ra = excluded.keep_ra, updated_ms = excluded.updated_ms, "
        "any_source = excluded.any_source, root_device = excluded.root_device, "
        "kind = excluded.kind, ssh_authorized_keys = excluded.ssh_authorized_keys, "
        "user_data = excluded.user_data, uefi_boot = excluded.uefi_boot "
        "RETURNING id",
    [ST_PROFILE_GET] = "SELECT id, name, cmdline, CASE WHEN $2::boolean THEN kickstart ELSE '' "
                       "END, kickstart_sha256, overlay, ip_mode, keep_ra, any_source, "
                       "root_device, kind, ssh_authorized_keys, "
                       "CASE WHEN $2::boolean THEN user_data ELSE '' END, uefi_boot "
                       "FROM profiles WHERE id = $1",
    [ST_PROFILES_LIST] = "SELECT id FROM profiles ORDER BY name",
    [ST_PROFILE_IMAGES_DELETE] = "DELETE FROM profile_images WHERE profile_id = $1",
    [ST_PROFILE_IMAGES_OF] = "SELECT pi.name, pi.kind, im.url, im.sha256, im.size "
                             "FROM profile_images pi JOIN images im ON im.id = pi.image_id "
                             "WHERE pi.profile_id = $1 ORDER BY pi.position",
    [ST_IMAGE_UPSERT] =
        "INSERT INTO images (sha256, url, size, name, kind) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (sha256, url) DO UPDATE SET size = excluded.size, "
        "name = excluded.name, kind = excluded.kind RETURNING id",
    [ST_PROFILE_IMAGE_INSERT] =
        "INSERT INTO profile_images (profile_id, position, image_id, kind, name) "
        "VALUES ($1, $2, $3, $4, $5)",
    [ST_IMAGES_GC] = "DELETE FROM images WHERE NOT EXISTS "
                     "(SELECT 1 FROM profile_images WHERE image_id = images.id)",
    [ST_IMAGES_LIST] = "SELECT p.name, pi.name, pi.kind, im.url, im.sha256, im.size "
                       "FROM profile_images pi JOIN profiles p ON p.id = pi.profile_id "
                       "JOIN images im ON im.id = pi.image_id ORDER BY p.name, pi.name",
    [ST_BUMP_RACKS_OF_PROFILE] =
        "UPDATE racks SET generation = generation + 1 WHERE id IN "
        "(SELECT h.rack_id FROM installs i JOIN hosts h ON h.id = i.host_id "
        "WHERE i.profile_id = $1 AND i.state IN " ACTIVE_STATES ") "
        "RETURNING pg_notify('" FEED_CHANNEL "', name)",
    [ST_INSTALL_INSERT] =
        "INSERT INTO installs (uuid, host_id, profile_id, state, token, attempt, generation, "
        "created_ms, updated_ms) VALUES ($1, $2, $3, 'requested', $4, $5, "
        "(SELECT generation FROM racks WHERE id = $6), $7, $7)",
    /* A slice's new installs in one statement (installs_pending_add). */
    [ST_INSTALLS_INSERT_MANY] =
        "INSERT INTO installs (uuid, host_id, profile_id, state, token, attempt, generation, "
        "created_ms, updated_ms) SELECT u.uuid, u.host_id, u.profile_id, 'requested', u.token, "
        "u.attempt, (SELECT generation FROM racks WHERE id = u.rack_id), u.now, u.now "
        "FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], "
        "$6::bigint[], $7::bigint[]) WITH ORDINALITY AS u(uuid, host_id, profile_id, token, "
        "attempt, rack_id, now, ord) ORDER BY u.ord",
    [ST_INSTALL_SET_STATE] = "UPDATE installs SET " SET_STATE_STAMPS ", "
                             "message = coalesce($4::text, message) WHERE id = $1",
    /* The rack's hosts' requested installs, host by host (as
     * ST_INTENTS_OF_RACK), not a scan of every requested install. */
    [ST_REQUESTED_OF_RACK_SET_STATE] =
        "UPDATE installs SET " SET_STATE_STAMPS " WHERE id IN (SELECT a.id FROM hosts h "
        "CROSS JOIN LATERAL (SELECT id FROM installs WHERE host_id = h.id "
        "AND state = 'requested' AND generation <= $4 OFFSET 0) a WHERE h.rack_id = $1)",
    [ST_INSTALL_SET_PHASE] = "UPDATE installs SET phase = $2, percent = $3, message = $4, "
                             "updated_ms = $5 WHERE id = $1",
    [ST_INSTALL_SET_NOTE] = "UPDATE installs SET message = $2, updated_ms = $3 WHERE id = $1",
    [ST_INSTALL_BY_UUID] = INSTALL_REF_SELECT "WHERE i.uuid = $1",
    [ST_INSTALLS_BY_UUIDS] =
        INSTALL_REF_SELECT "JOIN unnest($1::text[]) AS u(uuid) ON i.uuid = u.uuid",
    [ST_INSTALLS_COUNT] = "SELECT state, count(*) FROM installs GROUP BY state",
    /* Host by host (hosts_rack), then its active install (the partial
     * unique index installs_one_active): OFFSET 0 keeps the planner from
     * flattening the LATERAL into a join that reads every active install of
     * the fleet (a generic plan did: 10 ms a sync at 10,000 installs,
     * under the writer lock, pg_stat_statements on tests/bench/fanout). */
    [ST_INTENTS_OF_RACK] = "SELECT " INSTALL_COLS_FOR_INTENT " FROM hosts h "
                           "JOIN racks r ON r.id = h.rack_id "
                           "CROSS JOIN LATERAL (SELECT * FROM installs WHERE host_id = h.id "
                           "AND state IN " ACTIVE_STATES " OFFSET 0) i "
                           "WHERE h.rack_id = $1 ORDER BY i.id",
    /* A coarse filter; install_deadline() decides. $4 bounds the rows read
     * (results are read whole here, where SQLite stops stepping). */
    [ST_OVERDUE] = "SELECT i.id, i.state, i.created_ms, coalesce(i.dispatched_ms, 0), "
                   "coalesce(i.booting_ms, 0), coalesce(i.installing_ms, 0), h.rack_id "
                   "FROM installs i JOIN hosts h ON h.id = i.host_id "
                   "WHERE i.state IN " ACTIVE_STATES " AND ("
                   "($2::bigint > 0 AND i.state IN ('dispatched','booting') AND "
                   "coalesce(i.dispatched_ms, i.booting_ms) <= $1::bigint - $2::bigint) OR "
                   "($3::bigint > 0 AND i.state = 'installing' AND "
                   "i.installing_ms <= $1::bigint - $3::bigint)) ORDER BY i.id LIMIT $4",
    /* Exactly once by (rack, agent, epoch, seq): a re-sent event inserts
     * nothing. */
    [ST_EVENT_INSERT] =
        "INSERT INTO events (rack_id, agent_instance, journal_epoch, agent_seq, install_id, host, "
        "time_ms, received_ms, phase, percent, message, refused, host_id) VALUES ($1, "
        "$12, " JOURNAL_EPOCH_OF_AGENT(
            12) ", $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                "ON CONFLICT (rack_id, agent_instance, journal_epoch, agent_seq) DO NOTHING",
    /* A batch's rows in one statement, a column per array (pgarray.h), in
     * the order given: the ids (events_list's seq) follow it. */
    [ST_EVENTS_INSERT_MANY] =
        "INSERT INTO events (rack_id, agent_instance, journal_epoch, agent_seq, install_id, host, "
        "time_ms, received_ms, phase, percent, message, refused, host_id) "
        "SELECT u.rack_id, u.instance, coalesce((SELECT a.journal_epoch FROM agents a "
        "WHERE a.rack_id = u.rack_id AND a.instance = u.instance), 0), u.seq, u.install_id, "
        "u.host, u.time_ms, u.received_ms, u.phase, u.percent, u.message, u.refused, u.host_id "
        "FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bigint[], $5::text[], "
        "$6::bigint[], $7::bigint[], $8::int[], $9::bigint[], $10::text[], $11::text[], "
        "$12::bigint[]) WITH ORDINALITY AS u(rack_id, instance, seq, install_id, host, time_ms, "
        "received_ms, phase, percent, message, refused, host_id, ord) ORDER BY u.ord "
        "ON CONFLICT (rack_id, agent_instance, journal_epoch, agent_seq) DO NOTHING",
    [ST_EVENT_EXISTS] = "SELECT 1 FROM events WHERE rack_id = $1 AND agent_instance = $3 AND "
                        "journal_epoch = " JOURNAL_EPOCH_OF_AGENT(3) " AND agent_seq = $2",
    [ST_EVENTS_ANNOUNCE] = "SELECT pg_notify('" FEED_EVENTS_CHANNEL "', '')",
    [ST_EVENTS_STORED_IN] = "SELECT agent_seq FROM events WHERE rack_id = $1 AND "
                            "agent_instance = $2 AND journal_epoch = " JOURNAL_EPOCH_OF_AGENT(
                                2) " AND agent_seq > $3 AND agent_seq <= $4 ORDER BY agent_seq",
    /* Nothing to read unless the rack has another agent: the EXISTS is
     * evaluated once, before the rest, whatever the plan. Planned on an
     * events table still young (autovacuum's first ANALYZE comes a minute
     * in), the join was a scan of every event: 10 ms a batch at 200,000
     * events, each under the writer lock. */
    [ST_EVENT_PHASES_ELSEWHERE] =
        "SELECT DISTINCT u.id, e.phase FROM unnest($1::bigint[]) AS u(id) "
        "CROSS JOIN LATERAL (SELECT phase FROM events WHERE install_id = u.id "
        "AND agent_instance != $2) e "
        "WHERE EXISTS (SELECT 1 FROM agents WHERE rack_id = $3 AND instance != $2)",
    [ST_AGENT_JOURNAL] = "SELECT journal FROM agents WHERE rack_id = $1 AND instance = $2",
    [ST_AGENT_JOURNAL_SET] =
        "UPDATE agents SET journal = $2, journal_epoch = journal_epoch + $3::bigint, "
        "stored_through = CASE WHEN $3::bigint > 0 THEN 0 ELSE stored_through END "
        "WHERE rack_id = $1 AND instance = $4",
    [ST_STATUS_HOST] = STATUS_SELECT "WHERE h.name = $1",
    [ST_STATUS_PAGE] = STATUS_SELECT "WHERE " PAGE_ALL,
    [ST_STATUS_PAGE_OF_RACK] = STATUS_SELECT "WHERE " PAGE_RACK,
    [ST_STATUS_PAGE_OF_RACKS] = STATUS_SELECT "WHERE " PAGE_RACKS,
    [ST_EVENTS_ALL] = "SELECT e.id, e.time_ms, e.host, coalesce(i.uuid, ''), e.phase, e.percent, "
                      "e.message FROM events e LEFT JOIN installs i ON i.id = e.install_id "
                      "WHERE e.id > $1 AND e.refused IS NULL ORDER BY e.id LIMIT $2",
    [ST_EVENTS_LAST] = "SELECT coalesce(max(id), 0) FROM events",
    [ST_EVENTS_HOST] = "SELECT e.id, e.time_ms, e.host, coalesce(i.uuid, ''), e.phase, e.percent, "
                       "e.message FROM events e LEFT JOIN installs i ON i.id = e.install_id "
                       "WHERE e.id IN (SELECT ei.id FROM installs hi JOIN events ei "
                       "ON ei.install_id = hi.id AND ei.id > $1 WHERE hi.host_id = $2 "
                       "UNION SELECT eh.id FROM events eh WHERE eh.host_id = $2 AND eh.id > $1) "
                       "ORDER BY e.id LIMIT $3",
    [ST_EVENTS_PRUNE_OLD] =
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e "
        "JOIN agents a ON a.rack_id = e.rack_id AND a.instance = e.agent_instance "
        "WHERE e.received_ms < $1 AND "
        "(e.journal_epoch < a.journal_epoch OR e.agent_seq <= a.stored_through) "
        "ORDER BY e.received_ms LIMIT $2)",
    [ST_EVENTS_PRUNE_REFUSED] =
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e "
        "JOIN agents a ON a.rack_id = e.rack_id AND a.instance = e.agent_instance "
        "WHERE e.refused IS NOT NULL AND "
        "e.id <= (SELECT id FROM events WHERE refused IS NOT NULL ORDER BY id DESC "
        "LIMIT 1 OFFSET $1) AND "
        "(e.journal_epoch < a.journal_epoch OR e.agent_seq <= a.stored_through) "
        "ORDER BY e.id LIMIT $2)",
    [ST_AUDIT_INSERT] = "INSERT INTO audit (time_ms, who, verb, hosts, host_count, profiles, ok, "
                        "result) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    [ST_AUDIT_LIST] = "SELECT id, time_ms, who, verb, hosts, host_count, profiles, ok, result "
                      "FROM audit WHERE time_ms >= $1 AND id > $3 ORDER BY id LIMIT $2",
    [ST_POWER_INSERT] = "INSERT INTO power_commands (uuid, host_id, rack_id, action, boot_device, "
                        "efi, install_id, state, created_ms, updated_ms) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8)",
    [ST_POWER_BY_UUID] = "SELECT id, host_id, rack_id, state != 'pending' FROM power_commands "
                         "WHERE uuid = $1",
    [ST_POWER_FINISH] = "UPDATE power_commands SET state = CASE WHEN $2::boolean THEN 'done' "
                        "ELSE 'failed' END, power_state = $3, message = $4, updated_ms = $5 "
                        "WHERE id = $1 AND state = 'pending'",
    [ST_HOST_POWER_SET] = "UPDATE hosts SET power_state = $2, power_updated_ms = $3 WHERE id = $1",
    [ST_POWER_GET] = "SELECT " POWER_COLS " FROM power_commands p JOIN hosts h ON h.id = p.host_id "
                     "LEFT JOIN installs i ON i.id = p.install_id WHERE p.uuid = $1",
    [ST_BMCS_OF_RACK] = "SELECT name, bmc_url, bmc_user, bmc_password, firmware FROM hosts "
                        "WHERE rack_id = $1 AND bmc_url != '' ORDER BY name",
    [ST_POWER_PENDING_OF_RACK] =
        "SELECT " POWER_COLS " FROM power_commands p JOIN hosts h ON h.id = p.host_id "
        "LEFT JOIN installs i ON i.id = p.install_id WHERE p.rack_id = $1 AND "
        "p.state = 'pending' ORDER BY p.id",
    [ST_POWER_DUE] = "SELECT id, host_id, rack_id FROM power_commands WHERE state = 'pending' "
                     "AND created_ms < $1 ORDER BY id LIMIT $2",
    [ST_SCHEMA_VERSION] = "SELECT version FROM rackboot_schema",
    [ST_EXPIRY_LOCK] = "SELECT pg_try_advisory_lock(" EXPIRY_LOCK ")",
};

/* Kinds of rows inserted as one statement ("Rows inserted as one
 * statement" below), in the order they are sent. */
enum {
    RB_INSTALLS,
    RB_EVENTS,
    _RB_MAX,
};

/* The columns of ST_INSTALLS_INSERT_MANY, $1 on. */
enum {
    IN_UUID,
    IN_HOST,
    IN_PROFILE,
    IN_TOKEN,
    IN_ATTEMPT,
    IN_RACK,
    IN_NOW,
    _IN_COLS,
};

/* The columns of ST_EVENTS_INSERT_MANY, $1 on. */
enum {
    EV_RACK,
    EV_INSTANCE,
    EV_SEQ,
    EV_INSTALL,
    EV_HOST,
    EV_TIME,
    EV_RECEIVED,
    EV_PHASE,
    EV_PERCENT,
    EV_MESSAGE,
    EV_REFUSED,
    EV_HOST_ID,
    _EV_COLS,
};
#define ROW_COLS_MAX _EV_COLS

/* Results a write-behind pipeline may owe before it is read: far fewer
 * than would fill the socket buffers with small command results. */
#define PIPE_OWED_MAX 64

struct store_backend {
    PGconn *conn;
    char *conninfo; /* the whole URL, for connect() and PQreset */
    bool prepared[_ST_MAX];
    bool tx;          /* a transaction begun here is open */
    bool lost;        /* the connection broke inside it: its calls fail until begin */
    bool expiry_held; /* this session holds EXPIRY_LOCK */
    char *err;        /* the store's error buffer (open/connect) */
    size_t err_len;
    /* Write-behind (pipeline mode, see "Write-behind" below): sent, their
     * results not read yet, in order. */
    bool pipeline;
    int n_owed;
    /* Lookups answered in this write transaction (store/rowcache.h), valid
     * while `wtx`: racks and hosts by name, installs by uuid. */
    bool wtx;
    rowcache *racks, *hosts, *installs;
    /* Moves at every write of installs' states or rows: a host's installs
     * cached with it (rowcache_row.installs_epoch) are valid while equal. */
    uint64_t installs_epoch;
    /* Rows of this savepoint not sent yet ("Rows inserted as one
     * statement" below), of each kind a column array each. */
    pgarray rows[_RB_MAX][ROW_COLS_MAX];
    struct owed {
        int id;       /* statement, or -1 for SQL text */
        bool prepare; /* its PQsendPrepare */
    } owed[PIPE_OWED_MAX];
};

typedef store_backend backend;

/* ---- Helpers ----------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int fail(backend *b, int r, const char *fmt, ...)
{
    if (b->err && b->err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err, b->err_len, fmt, ap);
        va_end(ap);
        /* One line of text: libpq's messages end in (and may hold)
         * newlines, and tabs ("server closed the connection unexpectedly\n
         * \tThis probably means ..."), which a reply's message may not
         * carry (rbproto: the API answered "internal error"). */
        for (char *c = b->err; *c; c++) {
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                *c = c[1] ? ' ' : '\0';
            }
        }
    }
    return r;
}

/* A SQLSTATE as the errno store/sqlite.c gives for the same kind of
 * failure (backend.h). */
static int sqlstate_errno(const char *state)
{
    if (!state || strlen(state) != 5) {
        return -EIO;
    }
    if (strncmp(state, "23", 2) == 0) { /* integrity constraint violation */
        return -EEXIST;
    }
    static const struct {
        const char *state;
        int r;
    } map[] = {
        { "40001", -EBUSY },  /* serialization_failure */
        { "40P01", -EBUSY },  /* deadlock_detected */
        { "55P03", -EBUSY },  /* lock_not_available: lock_timeout */
        { "57014", -EBUSY },  /* query_canceled: statement_timeout */
        { "53100", -ENOSPC }, /* disk_full */
        { "53200", -ENOMEM }, /* out_of_memory */
        { "42501", -EACCES }, /* insufficient_privilege */
    };
    for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
        if (strcmp(state, map[i].state) == 0) {
            return map[i].r;
        }
    }
    return -EIO;
}

/* Turns a failed result (or none) into -errno with the reason in errbuf;
 * notes a connection that broke. */
static int db_fail(backend *b, const PGresult *res, const char *what)
{
    if (PQstatus(b->conn) == CONNECTION_BAD) {
        b->lost = b->tx;
        b->tx = false;
        return fail(b, -EIO, "%s: connection to the database lost: %s", what,
                    PQerrorMessage(b->conn));
    }
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    return fail(b, sqlstate_errno(res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL), "%s: %s",
                what, msg ? msg : PQerrorMessage(b->conn));
}

static void resultp_clear(PGresult **res)
{
    PQclear(*res);
    *res = NULL;
}
#define _cleanup_result_ _cleanup_(resultp_clear)

/* libpq prints the server's notices (a NOTICE of CREATE ... IF NOT EXISTS)
 * on stderr by default; a library does not log (CONVENTIONS.md). */
static void notice_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* The session's settings, on every (re)connection. bytea_output: the
 * readers decode hex. lock_timeout: a writer waits for the writer lock as
 * long as SQLite's busy_timeout (5 s) before -EBUSY. */
static int session_setup(backend *b)
{
    PQsetNoticeProcessor(b->conn, notice_quiet, NULL);
    _cleanup_result_ PGresult *res =
        PQexec(b->conn, "SET bytea_output = 'hex'; SET lock_timeout = '5s'; "
                        "SET client_min_messages = 'warning'");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        return db_fail(b, res, "session");
    }
    memset(b->prepared, 0, sizeof(b->prepared));
    b->expiry_held = false; /* a new session holds no session lock */
    return 0;
}

static void rows_drop(backend *b);

/* A usable connection: after a loss, reconnects (outside a transaction;
 * inside one the loss is the caller's -EIO). */
static int conn_ready(backend *b)
{
    if (PQstatus(b->conn) == CONNECTION_OK) {
        return 0;
    }
    if (b->lost) {
        return fail(b, -EIO, "connection to the database lost in a transaction");
    }
    rows_drop(b); /* of a transaction the loss ended */
    PQreset(b->conn);
    if (PQstatus(b->conn) != CONNECTION_OK) {
        return fail(b, -EIO, "cannot reconnect to the database: %s", PQerrorMessage(b->conn));
    }
    b->tx = false;
    return session_setup(b);
}

static int pipe_send_text(backend *b, const char *sql);
static int pipe_sync(backend *b, const char *what, PGresult **ret);
static int rows_before(backend *b, int id);
#define PIPE_ROOM 2 /* results one call may add to a pipeline */

/* Runs SQL text (transaction control, migrations: several statements
 * allowed) expecting no rows. */
static int exec(backend *b, const char *sql, const char *what)
{
    TRY(conn_ready(b));
    TRY(rows_before(b, -1));
    if (b->pipeline && b->n_owed + PIPE_ROOM > PIPE_OWED_MAX) {
        TRY(pipe_sync(b, what, NULL));
    }
    if (b->pipeline) {
        /* One statement joins the pipeline; several (BEGIN's) follow it. */
        if (!strchr(sql, ';')) {
            _cleanup_result_ PGresult *last = NULL;
            int r = pipe_send_text(b, sql);
            if (r < 0) {
                (void)pipe_sync(b, what, NULL);
                return r;
            }
            return pipe_sync(b, what, &last);
        }
        TRY(pipe_sync(b, what, NULL));
    }
    _cleanup_result_ PGresult *res = PQexec(b->conn, sql);
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        return db_fail(b, res, what);
    }
    return 0;
}

/* The parameters of one statement, $1 on, as text (binary for BYTEA). */
#define PARAMS_MAX 16
typedef struct params {
    int n;
    const char *v[PARAMS_MAX];
    int len[PARAMS_MAX];
    int fmt[PARAMS_MAX];
    char num[PARAMS_MAX][24];
} params;

static void p_i64(params *p, int64_t v)
{
    RB_ASSERT(p->n < PARAMS_MAX);
    snprintf(p->num[p->n], sizeof(p->num[0]), "%" PRId64, v);
    p->v[p->n] = p->num[p->n];
    p->n++;
}

/* Times, generations and seqs fit in 63 bits; clamped instead of
 * wrapping. */
static int64_t i64_of(uint64_t v)
{
    return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

static void p_u64(params *p, uint64_t v)
{
    p_i64(p, i64_of(v));
}

/* NULL is SQL NULL. */
static void p_text(params *p, const char *v)
{
    RB_ASSERT(p->n < PARAMS_MAX);
    p->v[p->n++] = v;
}

static void p_blob(params *p, const void *v, size_t n)
{
    RB_ASSERT(p->n < PARAMS_MAX && n <= INT32_MAX);
    p->v[p->n] = v;
    p->len[p->n] = (int)n;
    p->fmt[p->n] = 1;
    p->n++;
}

static void p_bool(params *p, bool v)
{
    p_text(p, v ? "t" : "f");
}

/* An id > 0, or NULL. */
static void p_id_or_null(params *p, int64_t id)
{
    if (id > 0) {
        p_i64(p, id);
    } else {
        p_text(p, NULL);
    }
}

/* A limit, 0 none (LIMIT NULL). */
static void p_limit(params *p, uint64_t limit)
{
    if (limit) {
        p_u64(p, limit);
    } else {
        p_text(p, NULL);
    }
}

/* ---- Write-behind ------------------------------------------------------
 *
 * Most writes answer nothing the rules read (backend.h: they return 0 or
 * an error), yet each was a network round trip, one after the other on the
 * queue's one connection: that, not the server's work, bounded an event
 * batch and a fleet's install (deploy/HA.md). Inside a transaction such a
 * write is sent in libpq's pipeline mode and not waited for; the next
 * statement whose answer is needed (a read, an event insert, SAVEPOINT's
 * RELEASE, COMMIT) joins the same pipeline, and one sync reads them all:
 * one round trip instead of several.
 *
 * Order and atomicity are PostgreSQL's own: one connection runs its
 * statements in the order sent, and a failed one aborts the rest of the
 * pipeline. A deferred write's failure is answered by the next call that
 * reads (never lost: RELEASE and COMMIT read), inside the same store call
 * (fleet_tx_end's RELEASE or COMMIT ends every one), so the rules roll
 * back exactly what they would have had the write answered itself; the
 * transaction is then in error as after any failed statement. */

/* Statements sent without waiting inside a transaction: their op returns
 * no count (a caller reading PQcmdTuples, like event_insert, needs the
 * answer), and no rule turns their failure into a decision. */
static const bool deferrable[_ST_MAX] = {
    [ST_RACK_BUMP] = true,
    [ST_BUMP_RACKS_OF_PROFILE] = true,
    [ST_AGENT_ENSURE] = true,
    [ST_AGENT_JOURNAL_SET] = true,
    [ST_AGENT_SEEN] = true,
    [ST_AGENT_STATUS] = true,
    [ST_AGENT_ACK] = true,
    [ST_AGENT_STORED] = true,
    [ST_HOST_DELETE] = true,
    [ST_MAC_UPSERT] = true,
    [ST_MAC_DELETE] = true,
    [ST_DUID_UPSERT] = true,
    [ST_PROFILE_IMAGES_DELETE] = true,
    [ST_PROFILE_IMAGE_INSERT] = true,
    [ST_INSTALL_INSERT] = true,
    [ST_INSTALL_SET_STATE] = true,
    [ST_INSTALL_SET_PHASE] = true,
    [ST_INSTALL_SET_NOTE] = true,
    [ST_POWER_INSERT] = true,
    [ST_POWER_FINISH] = true,
    [ST_HOST_POWER_SET] = true,
    [ST_AUDIT_INSERT] = true,
    [ST_EVENTS_ANNOUNCE] = true,
    [ST_EVENTS_INSERT_MANY] = true,
    [ST_INSTALLS_INSERT_MANY] = true,
};

static void stmt_name(int id, char name[16])
{
    snprintf(name, 16, "s%d", id);
}

static int pipe_enter(backend *b)
{
    if (b->pipeline) {
        return 0;
    }
    if (!PQenterPipelineMode(b->conn)) {
        return fail(b, -EIO, "pipeline: %s", PQerrorMessage(b->conn));
    }
    b->pipeline = true;
    b->n_owed = 0;
    return 0;
}

static void pipe_owe(backend *b, int id, bool prepare)
{
    RB_ASSERT(b->n_owed < PIPE_OWED_MAX);
    b->owed[b->n_owed++] = (struct owed){ .id = id, .prepare = prepare };
}

/* Sends statement `id` (its PREPARE first when this session has none). */
static int pipe_send(backend *b, int id, const params *p)
{
    char name[16];
    stmt_name(id, name);
    if (!b->prepared[id]) {
        if (!PQsendPrepare(b->conn, name, statements[id], 0, NULL)) {
            return db_fail(b, NULL, "prepare");
        }
        pipe_owe(b, id, true);
        b->prepared[id] = true; /* until its result says otherwise */
    }
    if (!PQsendQueryPrepared(b->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                             p ? p->fmt : NULL, 0)) {
        return db_fail(b, NULL, "query");
    }
    pipe_owe(b, id, false);
    return 0;
}

/* Sends SQL text of one statement. */
static int pipe_send_text(backend *b, const char *sql)
{
    if (!PQsendQueryParams(b->conn, sql, 0, NULL, NULL, NULL, NULL, 0)) {
        return db_fail(b, NULL, "query");
    }
    pipe_owe(b, -1, false);
    return 0;
}

/* Syncs the pipeline and reads every result it owes, leaving pipeline
 * mode: the first failure (as -errno, its message in errbuf), else 0 and
 * the last result in *ret (when ret is not NULL) for the caller to clear. */
static int pipe_sync(backend *b, const char *what, PGresult **ret)
{
    if (!b->pipeline) {
        return 0;
    }
    int r = 0;
    PGresult *last = NULL;
    if (!PQpipelineSync(b->conn)) {
        r = db_fail(b, NULL, what);
    }
    int i = 0, nulls = 0;
    while (r >= 0 || PQstatus(b->conn) == CONNECTION_OK) {
        PGresult *res = PQgetResult(b->conn);
        if (!res) {
            /* One NULL ends each statement's results. */
            if (PQstatus(b->conn) != CONNECTION_OK || ++nulls > b->n_owed + 1) {
                if (r >= 0) {
                    r = db_fail(b, NULL, what);
                }
                break;
            }
            continue;
        }
        ExecStatusType s = PQresultStatus(res);
        if (s == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        const struct owed *o = i < b->n_owed ? &b->owed[i] : NULL;
        i++;
        if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
            if (r >= 0 && ret && o && i == b->n_owed && !o->prepare) {
                last = res;
                continue;
            }
        } else {
            if (o && o->prepare) {
                b->prepared[o->id] = false;
            }
            if (r >= 0) {
                /* ABORTED only follows a failure: a lost connection's. */
                r = db_fail(b, s == PGRES_PIPELINE_ABORTED ? NULL : res, what);
            }
        }
        PQclear(res);
    }
    /* A lost connection may first show as the server's last error: it is
     * still a loss (the transaction is gone), as db_fail() notes it. */
    if (PQstatus(b->conn) == CONNECTION_BAD && (b->tx || r >= 0)) {
        r = db_fail(b, NULL, what);
    }
    if (!PQexitPipelineMode(b->conn) && r >= 0) {
        r = fail(b, -EIO, "pipeline: %s", PQerrorMessage(b->conn));
    }
    b->pipeline = false;
    b->n_owed = 0;
    if (r < 0 || !ret) {
        PQclear(last);
        return r;
    }
    if (!last) {
        return fail(b, -EIO, "%s: no result", what);
    }
    *ret = last;
    return 0;
}

/* Runs statement `id` (its name, prepared once per connection) with `p`,
 * outside pipeline mode. */
static int run_now(backend *b, int id, const char *name, const params *p, PGresult **ret)
{
    if (!b->prepared[id]) {
        _cleanup_result_ PGresult *res = PQprepare(b->conn, name, statements[id], 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            return db_fail(b, res, "prepare");
        }
        b->prepared[id] = true;
    }
    PGresult *res = PQexecPrepared(b->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                   p ? p->fmt : NULL, 0);
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        int r = db_fail(b, res, "query");
        PQclear(res);
        return r;
    }
    *ret = res;
    return 0;
}

/* Runs statement `id` (prepared once per connection) with `p`; its result
 * in *ret (rows or none) for the caller to clear. In a write-behind
 * pipeline, it joins it: one round trip for all. */
static int run(backend *b, int id, const params *p, PGresult **ret)
{
    char name[16];
    stmt_name(id, name);
    TRY(conn_ready(b));
    TRY(rows_before(b, id));
    if (b->pipeline && b->n_owed + PIPE_ROOM > PIPE_OWED_MAX) {
        TRY(pipe_sync(b, "query", NULL));
    }
    if (b->pipeline) {
        int r = pipe_send(b, id, p);
        if (r < 0) {
            (void)pipe_sync(b, "query", NULL);
            return r;
        }
        return pipe_sync(b, "query", ret);
    }
    bool in_tx = b->tx;
    int r = run_now(b, id, name, p, ret);
    if (r < 0 && !in_tx && PQstatus(b->conn) == CONNECTION_BAD) {
        /* Outside a transaction only reads run (backend.h; and the expiry
         * lock, a session's, which dies with it), and a server that
         * closed the idle connection (a restart, a failover) ran nothing:
         * once more on a new one (conn_ready), so that an operator's
         * first listing after the database came back is answered. A
         * write finds the loss in its transaction and fails. */
        TRY(conn_ready(b));
        r = run_now(b, id, name, p, ret);
    }
    return r;
}

/* Sends a deferrable write (write-behind): 0, or a failure to send. */
static int run_deferred(backend *b, int id, const params *p)
{
    TRY(conn_ready(b));
    TRY(rows_before(b, id));
    TRY(pipe_enter(b));
    int r = pipe_send(b, id, p);
    if (r < 0 || b->n_owed + PIPE_ROOM >= PIPE_OWED_MAX) {
        int s = pipe_sync(b, "query", NULL);
        return r < 0 ? r : s;
    }
    return 0;
}

/* Runs a statement whose rows are not needed: the number of rows it
 * changed (0 for a deferrable write in a transaction: sent, not waited
 * for). */
static int run_done(backend *b, int id, const params *p)
{
    if (deferrable[id] && b->tx && !b->lost) {
        return run_deferred(b, id, p);
    }
    _cleanup_result_ PGresult *res = NULL;
    TRY(run(b, id, p, &res));
    const char *n = PQcmdTuples(res);
    return *n ? (int)strtol(n, NULL, 10) : 0;
}

/* A statement with one integer parameter and no rows. */
static int run_id(backend *b, int id, int64_t arg)
{
    params p = { 0 };
    p_i64(&p, arg);
    int r = run_done(b, id, &p);
    return r < 0 ? r : 0;
}

/* ---- Rows inserted as one statement ------------------------------------
 *
 * New installs of a fleet-wide request (install_insert) and an event
 * batch's rows (event_insert with no answer wanted: the rules checked that
 * their keys are free) wait here, and go as one INSERT from unnest() of a
 * column array each (pgarray.h): one statement per slice or batch where a
 * row was one. They are sent write-behind before the first statement that
 * may see their table, and at the latest with RELEASE or COMMIT: they
 * belong to the savepoint they were made in, and ROLLBACK (TO) drops them.
 * Installs go before events, which may name them. */

/* Statements that can run while new installs wait: they name installs by
 * id (which a waiting one has not been given to anyone), or not at all. */
static const bool leaves_new_installs_alone[_ST_MAX] = {
    [ST_HOST_BY_NAME] = true,      [ST_HOSTS_BY_NAMES] = true,   [ST_INSTALL_SET_STATE] = true,
    [ST_INSTALL_SET_PHASE] = true, [ST_INSTALL_SET_NOTE] = true, [ST_AUDIT_INSERT] = true,
};

/* Statements that neither read nor write events: what the ingest rules
 * run between a batch's rows. */
static const bool leaves_events_alone[_ST_MAX] = {
    [ST_HOST_BY_NAME] = true,
    [ST_HOSTS_BY_NAMES] = true,
    [ST_HOSTS_WITH_INSTALLS_BY_NAMES] = true,
    [ST_INSTALL_BY_UUID] = true,
    [ST_INSTALLS_BY_UUIDS] = true,
    [ST_MAC_HOST] = true,
    [ST_POWER_BY_UUID] = true,
    [ST_INSTALL_SET_STATE] = true,
    [ST_INSTALL_SET_PHASE] = true,
    [ST_INSTALL_SET_NOTE] = true,
    [ST_DUID_UPSERT] = true,
    [ST_HOST_POWER_SET] = true,
    [ST_POWER_FINISH] = true,
    [ST_RACK_BUMP] = true,
    [ST_AGENT_ENSURE] = true,
    [ST_AGENT_STORED] = true,
    [ST_INSTALLS_INSERT_MANY] = true,
};

static const struct row_batch_kind {
    int stmt; /* takes a column array per parameter, $1 on */
    int n_cols;
    const bool *leaves_alone; /* [_ST_MAX] */
    const char *what;
} row_batch_kinds[_RB_MAX] = {
    [RB_INSTALLS] = { ST_INSTALLS_INSERT_MANY, _IN_COLS, leaves_new_installs_alone, "installs" },
    [RB_EVENTS] = { ST_EVENTS_INSERT_MANY, _EV_COLS, leaves_events_alone, "events" },
};

static void rows_drop(backend *b)
{
    for (int k = 0; k < _RB_MAX; k++) {
        for (int c = 0; c < row_batch_kinds[k].n_cols; c++) {
            pgarray_reset(&b->rows[k][c]);
        }
    }
}

/* Sends the waiting rows of kind k (write-behind), those of the kinds
 * before it first. */
static int rows_send(backend *b, int k)
{
    for (int before = 0; before < k; before++) {
        TRY(rows_send(b, before));
    }
    const struct row_batch_kind *kind = &row_batch_kinds[k];
    pgarray *cols = b->rows[k];
    if (cols[0].n == 0) {
        return 0;
    }
    params p = { 0 };
    for (int c = 0; c < kind->n_cols; c++) {
        const char *text = pgarray_text(&cols[c]);
        if (!text) {
            rows_drop(b);
            return fail(b, -ENOMEM, "%s: out of memory", kind->what);
        }
        p_text(&p, text);
    }
    int r = run_deferred(b, kind->stmt, &p); /* libpq copied the arrays */
    for (int c = 0; c < kind->n_cols; c++) {
        pgarray_reset(&cols[c]);
    }
    return r;
}

/* Before statement `id` (-1: SQL text) runs: the waiting rows it may see
 * go first. */
static int rows_before(backend *b, int id)
{
    for (int k = _RB_MAX - 1; k >= 0; k--) {
        const struct row_batch_kind *kind = &row_batch_kinds[k];
        if (id == kind->stmt || (id >= 0 && kind->leaves_alone[id])) {
            continue;
        }
        return rows_send(b, k); /* and the kinds before it */
    }
    return 0;
}

static void events_pending_add(backend *b, int64_t rack_id, unsigned instance, const store_event *e,
                               int64_t install_id, int64_t host_id, uint64_t now,
                               const char *refused)
{
    pgarray *col = b->rows[RB_EVENTS];
    pgarray_add_i64(&col[EV_RACK], rack_id);
    pgarray_add_i64(&col[EV_INSTANCE], instance);
    pgarray_add_i64(&col[EV_SEQ], i64_of(e->seq));
    if (install_id > 0) {
        pgarray_add_i64(&col[EV_INSTALL], install_id);
    } else {
        pgarray_add_text(&col[EV_INSTALL], NULL);
    }
    pgarray_add_text(&col[EV_HOST], e->host ? e->host : "");
    pgarray_add_i64(&col[EV_TIME], i64_of(e->time_ms));
    pgarray_add_i64(&col[EV_RECEIVED], i64_of(now));
    pgarray_add_i64(&col[EV_PHASE], (int64_t)e->phase);
    pgarray_add_i64(&col[EV_PERCENT], e->percent);
    pgarray_add_text(&col[EV_MESSAGE], e->message ? e->message : "");
    pgarray_add_text(&col[EV_REFUSED], refused);
    if (host_id > 0) {
        pgarray_add_i64(&col[EV_HOST_ID], host_id);
    } else {
        pgarray_add_text(&col[EV_HOST_ID], NULL);
    }
}

static void installs_pending_add(backend *b, const store_install_new *in)
{
    pgarray *col = b->rows[RB_INSTALLS];
    pgarray_add_text(&col[IN_UUID], in->uuid);
    pgarray_add_i64(&col[IN_HOST], in->host_id);
    pgarray_add_i64(&col[IN_PROFILE], in->profile_id);
    pgarray_add_text(&col[IN_TOKEN], in->token);
    pgarray_add_i64(&col[IN_ATTEMPT], in->attempt);
    pgarray_add_i64(&col[IN_RACK], in->rack_id);
    pgarray_add_i64(&col[IN_NOW], i64_of(in->now));
}

/* ---- Lookups kept for a write transaction (store/rowcache.h) ---------- */

/* Forgets every cached row: a transaction boundary, ROLLBACK TO. */
static void cache_reset(backend *b, bool write_tx)
{
    rowcache_clear(b->racks);
    rowcache_clear(b->hosts);
    rowcache_clear(b->installs);
    b->wtx = write_tx;
}

/* Whether lookups may be answered from the cache: inside this write
 * transaction, under the writer lock, while it is alive. */
static bool cache_on(const backend *b)
{
    return b->wtx && b->tx && !b->lost;
}

static const char *col_text(const PGresult *res, int row, int c)
{
    return PQgetisnull(res, row, c) ? "" : PQgetvalue(res, row, c);
}

static int64_t col_i64(const PGresult *res, int row, int c)
{
    return strtoll(col_text(res, row, c), NULL, 10);
}

static uint64_t col_u64(const PGresult *res, int row, int c)
{
    int64_t v = col_i64(res, row, c);
    return v < 0 ? 0 : (uint64_t)v;
}

static int col_int(const PGresult *res, int row, int c)
{
    return (int)col_i64(res, row, c);
}

static bool col_bool(const PGresult *res, int row, int c)
{
    return col_text(res, row, c)[0] == 't';
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A BYTEA column's length (hex output, session_setup), -1 when NULL or
 * not hex. */
static ssize_t col_blob_len(const PGresult *res, int row, int c)
{
    const char *v = PQgetvalue(res, row, c);
    if (PQgetisnull(res, row, c) || v[0] != '\\' || v[1] != 'x') {
        return -1;
    }
    size_t n = strlen(v + 2);
    return n % 2 ? -1 : (ssize_t)(n / 2);
}

/* A BYTEA column into buf when it is `want` bytes long (0: any length up
 * to max): its length, else -1 and buf untouched. */
static ssize_t col_blob(const PGresult *res, int row, int c, void *buf, size_t want, size_t max)
{
    ssize_t n = col_blob_len(res, row, c);
    if (n < 0 || (want && (size_t)n != want) || (size_t)n > max) {
        return -1;
    }
    const char *v = PQgetvalue(res, row, c) + 2;
    uint8_t *out = buf;
    for (ssize_t i = 0; i < n; i++) {
        int hi = hex_digit(v[2 * i]), lo = hex_digit(v[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return n;
}

static int col_state(backend *b, const PGresult *res, int row, int c, install_state *ret)
{
    if (install_state_from_string(col_text(res, row, c), ret) < 0) {
        return fail(b, -EIO, "store: unknown install state '%s'", col_text(res, row, c));
    }
    return 0;
}

/* ---- Open, migrate, close ---------------------------------------------- */

/* The schema's version inside a transaction: 0 before the first. */
static int read_version(backend *b, int *ret)
{
    _cleanup_result_ PGresult *res = NULL;
    TRY(run(b, ST_SCHEMA_VERSION, NULL, &res));
    *ret = PQntuples(res) > 0 ? col_int(res, 0, 0) : 0;
    return 0;
}

/* One step of the migration (or none when the store is current), in one
 * transaction under the writer lock: a second controller migrating at the
 * same time waits, then finds the step done. 1 when a step ran. */
static int migrate_step(backend *b)
{
    int version = 0;
    /* lock_timeout 0: wait for the other's migration however long it
     * takes. The version table is made under the lock too: two CREATE
     * TABLE IF NOT EXISTS at once can both try to create it. */
    TRY(exec(b,
             "BEGIN; SET LOCAL lock_timeout = 0; SELECT pg_advisory_xact_lock(" STORE_WRITER_LOCK
             ");"
             "CREATE TABLE IF NOT EXISTS rackboot_schema ("
             "  one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),"
             "  version INTEGER NOT NULL CHECK (version >= 0))",
             "migration"));
    int r = read_version(b, &version);
    if (r >= 0 && version > (int)ARRAY_SIZE(migrations)) {
        r = fail(b, -EPROTO,
                 "store schema version %d is newer than this controller's %d: "
                 "run a newer rackboot-controller",
                 version, (int)ARRAY_SIZE(migrations));
    }
    if (r >= 0 && version == (int)ARRAY_SIZE(migrations)) {
        return exec(b, "COMMIT", "migration");
    }
    if (r >= 0) {
        r = exec(b, migrations[version], "migration");
    }
    if (r >= 0) {
        char set[160];
        snprintf(set, sizeof(set),
                 "INSERT INTO rackboot_schema (version) VALUES (%d) "
                 "ON CONFLICT (one) DO UPDATE SET version = excluded.version",
                 version + 1);
        r = exec(b, set, "migration");
    }
    if (r >= 0) {
        r = exec(b, "COMMIT", "migration");
    }
    if (r < 0) {
        _cleanup_free_ char *saved = strdup(b->err ? b->err : "");
        if (PQtransactionStatus(b->conn) != PQTRANS_IDLE) {
            (void)exec(b, "ROLLBACK", "migration");
        }
        if (r == -EPROTO) {
            fail(b, r, "%s", saved ? saved : "");
        } else {
            fail(b, r, "migration to schema %d: %s", version + 1, saved ? saved : "");
        }
        return r;
    }
    return 1;
}

static int migrate(backend *b)
{
    int r;
    while ((r = migrate_step(b)) == 1) {
    }
    return r;
}

static void pg_close(backend *b)
{
    if (!b) {
        return;
    }
    PQfinish(b->conn);
    free(b->conninfo);
    rowcache_free(b->racks);
    rowcache_free(b->hosts);
    rowcache_free(b->installs);
    for (int k = 0; k < _RB_MAX; k++) {
        for (int c = 0; c < ROW_COLS_MAX; c++) {
            pgarray_done(&b->rows[k][c]);
        }
    }
    free(b);
}

/* A connection to `conninfo` with its session set up. */
static int new_backend(const char *conninfo, char *errbuf, size_t errlen, backend **ret)
{
    backend *b = calloc(1, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    b->err = errbuf;
    b->err_len = errlen;
    b->installs_epoch = 1; /* 0 is a cached host's "installs not read" */
    b->conninfo = strdup(conninfo);
    if (!b->conninfo) {
        pg_close(b);
        return -ENOMEM;
    }
    if (rowcache_new(&b->racks) < 0 || rowcache_new(&b->hosts) < 0 ||
        rowcache_new(&b->installs) < 0) {
        pg_close(b);
        return -ENOMEM;
    }
    b->conn = PQconnectdb(b->conninfo);
    if (!b->conn) {
        pg_close(b);
        return -ENOMEM;
    }
    int r = PQstatus(b->conn) == CONNECTION_OK
                ? session_setup(b)
                : fail(b, -EIO, "database connection: %s", PQerrorMessage(b->conn));
    if (r < 0) {
        pg_close(b);
        return r;
    }
    *ret = b;
    return 0;
}

/* The location is what follows postgresql:// (or postgres://); libpq takes
 * the whole URL, its query included (sslmode, sslrootcert, sslcert, ...:
 * TLS to the database is libpq's). */
static int pg_open(const char *location, char *errbuf, size_t errlen, backend **ret)
{
    _cleanup_free_ char *url = NULL;
    backend *b;
    if (asprintf(&url, "postgresql://%s", location) < 0) {
        return -ENOMEM;
    }
    TRY(new_backend(url, errbuf, errlen, &b));
    int r = migrate(b);
    if (r < 0) {
        pg_close(b);
        return r;
    }
    *ret = b;
    return 0;
}

static int pg_connect(const backend *parent, char *errbuf, size_t errlen, backend **ret)
{
    return new_backend(parent->conninfo, errbuf, errlen, ret);
}

static int pg_location_check(const char *location, const char **ret_why)
{
    /* The reason outlives this call (a static, as the other backends');
     * per thread, since config checks may run on any. */
    static _Thread_local char why[256];
    _cleanup_free_ char *url = NULL;
    char *err = NULL;
    if (asprintf(&url, "postgresql://%s", location) < 0) {
        *ret_why = "out of memory";
        return -ENOMEM;
    }
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    if (!opts) {
        snprintf(why, sizeof(why), "not a PostgreSQL connection URL: %s",
                 err ? err : "out of memory");
        for (char *c = why; *c; c++) {
            if (*c == '\n') {
                *c = c[1] ? ' ' : '\0';
            }
        }
        PQfreemem(err);
        *ret_why = why;
        return -EINVAL;
    }
    PQconninfoFree(opts);
    return 0;
}

static void pg_closep(backend **b)
{
    pg_close(*b);
    *b = NULL;
}

/* A database without the version table is one no controller has opened
 * yet: 0, as migrate_step() starts from. */
static int pg_peek_version(const char *location, char *errbuf, size_t errlen, int *ret_version)
{
    _cleanup_free_ char *url = NULL;
    if (asprintf(&url, "postgresql://%s", location) < 0) {
        return -ENOMEM;
    }
    _cleanup_(pg_closep) backend *b = NULL;
    TRY(new_backend(url, errbuf, errlen, &b));
    _cleanup_result_ PGresult *res =
        PQexec(b->conn, "SELECT to_regclass('rackboot_schema') IS NOT NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        return db_fail(b, res, "schema version");
    }
    int version = 0;
    if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        TRY(read_version(b, &version));
    }
    *ret_version = version;
    return 0;
}

static int pg_schema_version(backend *b)
{
    int v = 0;
    TRY(read_version(b, &v));
    return v;
}

/* ---- Transactions ------------------------------------------------------ */

/* A write transaction: READ COMMITTED under the writer lock (see the top
 * of this file). A BEGIN that fails leaves no transaction open: the rules
 * do not roll back a begin that failed. */
static int pg_begin(backend *b)
{
    rows_drop(b);
    b->lost = false;
    int r = exec(b,
                 "BEGIN ISOLATION LEVEL READ COMMITTED; "
                 "SELECT pg_advisory_xact_lock(" STORE_WRITER_LOCK ")",
                 "begin");
    if (r < 0) {
        if (PQstatus(b->conn) == CONNECTION_OK && PQtransactionStatus(b->conn) != PQTRANS_IDLE) {
            PQclear(PQexec(b->conn, "ROLLBACK"));
        }
        return r;
    }
    b->tx = true;
    cache_reset(b, true);
    return 0;
}

/* A read snapshot: what SQLite's deferred BEGIN gives a reader. On a
 * connection the server closed while idle, begun once more on a new one,
 * as run() reads (a write's BEGIN fails instead, and says so). */
static int pg_begin_read(backend *b)
{
    rows_drop(b);
    cache_reset(b, false);
    b->lost = false;
    int r = exec(b, "BEGIN ISOLATION LEVEL REPEATABLE READ", "begin");
    if (r < 0 && PQstatus(b->conn) == CONNECTION_BAD) {
        r = exec(b, "BEGIN ISOLATION LEVEL REPEATABLE READ", "begin"); /* as run() */
    }
    TRY(r);
    b->tx = true;
    return 0;
}

/* -EIO when the transaction was cut short by a lost connection. */
static int tx_alive(backend *b)
{
    if (b->lost) {
        return fail(b, -EIO, "connection to the database lost: the transaction was rolled back");
    }
    return 0;
}

static int pg_commit(backend *b)
{
    cache_reset(b, false);
    if (b->lost) {
        int r = tx_alive(b);
        rows_drop(b);
        b->lost = false;
        return r;
    }
    TRY(rows_send(b, _RB_MAX - 1));
    if (b->pipeline) {
        /* COMMIT joins the write-behind pipeline. When a write in it
         * failed, COMMIT is not run: the transaction stays open in error
         * for the caller to roll back (fleet_tx_end). */
        b->tx = false;
        _cleanup_result_ PGresult *res = NULL;
        int r = pipe_send_text(b, "COMMIT");
        if (r < 0) {
            (void)pipe_sync(b, "commit", NULL);
            return r;
        }
        TRY(pipe_sync(b, "commit", &res));
        if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
            return fail(b, -EIO, "commit: the transaction had failed and was rolled back");
        }
        return 0;
    }
    /* COMMIT of a transaction a statement failed in rolls it back and
     * answers success ("ROLLBACK"): the caller must hear it failed. */
    bool failed = PQtransactionStatus(b->conn) == PQTRANS_INERROR;
    b->tx = false;
    TRY(exec(b, "COMMIT", "commit"));
    if (failed) {
        return fail(b, -EIO, "commit: the transaction had failed and was rolled back");
    }
    return 0;
}

static int pg_rollback(backend *b)
{
    rows_drop(b);
    cache_reset(b, false);
    (void)pipe_sync(b, "rollback", NULL); /* its failure is what is rolled back */
    b->lost = false;
    b->tx = false;
    if (PQstatus(b->conn) != CONNECTION_OK || PQtransactionStatus(b->conn) == PQTRANS_IDLE) {
        return 0; /* nothing to roll back, or the server already did */
    }
    return exec(b, "ROLLBACK", "rollback");
}

static int pg_savepoint(backend *b)
{
    TRY(tx_alive(b));
    if (b->tx) {
        /* Write-behind: a job's first statement carries it. */
        TRY(conn_ready(b));
        TRY(rows_send(b, _RB_MAX - 1));
        if (b->pipeline && b->n_owed + PIPE_ROOM > PIPE_OWED_MAX) {
            TRY(pipe_sync(b, "savepoint", NULL));
        }
        TRY(pipe_enter(b));
        int r = pipe_send_text(b, "SAVEPOINT op");
        if (r < 0) {
            (void)pipe_sync(b, "savepoint", NULL);
        }
        return r;
    }
    return exec(b, "SAVEPOINT op", "savepoint");
}

static int pg_rollback_to(backend *b);

static int pg_release(backend *b)
{
    TRY(tx_alive(b));
    int r = exec(b, "RELEASE SAVEPOINT op", "release");
    PGTransactionStatusType ts = PQtransactionStatus(b->conn);
    if (r < 0 && !b->lost && PQstatus(b->conn) == CONNECTION_OK &&
        (ts == PQTRANS_INERROR || ts == PQTRANS_INTRANS)) {
        /* A write sent ahead (write-behind) failed, or the rows waiting
         * to be inserted could not be sent: this savepoint's work is
         * undone, as the rules undo a write that answered its failure
         * itself, and the batch goes on without it. The reason stays the
         * answer. */
        char saved[256] = "";
        if (b->err) {
            snprintf(saved, sizeof(saved), "%s", b->err);
        }
        if (pg_rollback_to(b) >= 0) {
            (void)exec(b, "RELEASE SAVEPOINT op", "release");
        }
        if (b->err && b->err_len > 0) {
            snprintf(b->err, b->err_len, "%s", saved);
        }
    }
    return r;
}

static int pg_rollback_to(backend *b)
{
    TRY(tx_alive(b));
    rows_drop(b);
    rowcache_clear(b->racks); /* what it read since may be undone */
    rowcache_clear(b->hosts);
    rowcache_clear(b->installs);
    return exec(b, "ROLLBACK TO SAVEPOINT op", "rollback to savepoint");
}

/* A transaction whose statement failed (PQTRANS_INERROR) is still open:
 * the rules roll it back, or back to the savepoint, as after SQLite's
 * failed statement. One cut short by a lost connection is not. */
static bool pg_in_transaction(backend *b)
{
    (void)pipe_sync(b, "query", NULL); /* the status after what was sent */
    if (PQstatus(b->conn) != CONNECTION_OK) {
        return false;
    }
    PGTransactionStatusType s = PQtransactionStatus(b->conn);
    return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
}

/* ---- Racks and agents -------------------------------------------------- */

static int pg_rack_find(backend *b, const char *name, int64_t *ret_id, uint64_t *ret_generation)
{
    const rowcache_row *c = cache_on(b) ? rowcache_get(b->racks, name) : NULL;
    if (c) {
        *ret_id = c->id;
        if (ret_generation) {
            *ret_generation = c->generation;
        }
        return 1;
    }
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_text(&p, name);
    TRY(run(b, ST_RACK_BY_NAME, &p, &res));
    if (PQntuples(res) == 0) {
        return 0;
    }
    rowcache_row row = { .id = col_i64(res, 0, 0), .generation = col_u64(res, 0, 1) };
    if (cache_on(b)) {
        rowcache_put(b->racks, name, &row);
    }
    *ret_id = row.id;
    if (ret_generation) {
        *ret_generation = row.generation;
    }
    return 1;
}

static int pg_rack_ensure(backend *b, const char *name, uint64_t now, int64_t *ret_id)
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_text(&p, name);
    p_u64(&p, now);
    TRY(run(b, ST_RACK_INSERT, &p, &res));
    if (PQntuples(res) != 1) {
        return fail(b, -EIO, "rack %s: not created", name);
    }
    *ret_id = col_i64(res, 0, 0);
    return 0;
}

static int pg_rack_bump(backend *b, int64_t rack_id)
{
    rowcache_drop_id(b->racks, rack_id);
    return run_id(b, ST_RACK_BUMP, rack_id);
}

static int pg_racks_bump_of_profile(backend *b, int64_t profile_id)
{
    rowcache_clear(b->racks);
    return run_id(b, ST_BUMP_RACKS_OF_PROFILE, profile_id);
}

static int pg_racks_list(backend *b, int (*cb)(const store_rack *r, void *userdata), void *userdata)
{
    _cleanup_result_ PGresult *res = NULL;
    TRY(run(b, ST_RACKS_LIST, NULL, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        store_rack row = {
            .name = col_text(res, i, 0),
            .agent = col_text(res, i, 1),
            .agent_version = col_text(res, i, 2),
            .last_seen_ms = col_u64(res, i, 3),
            .generation = col_u64(res, i, 4),
            .acked_generation = col_u64(res, i, 5),
            .stored_through = col_u64(res, i, 6),
            .hosts = (uint32_t)col_i64(res, i, 7),
            .active_installs = (uint32_t)col_i64(res, i, 8),
            .cache_bytes = col_u64(res, i, 9),
            .cache_limit_bytes = col_u64(res, i, 10),
            .status_ms = col_u64(res, i, 11),
            .has_render_context = col_bool(res, i, 12),
            .agents = (uint32_t)col_i64(res, i, 13),
        };
        TRY(cb(&row, userdata));
    }
    return 0;
}

static int pg_agents_list(backend *b, int (*cb)(const store_agent_row *a, void *userdata),
                          void *userdata)
{
    _cleanup_result_ PGresult *res = NULL;
    TRY(run(b, ST_AGENTS_LIST, NULL, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        store_agent_row row = {
            .rack = col_text(res, i, 0),
            .instance = (unsigned)col_i64(res, i, 1),
            .agent = col_text(res, i, 2),
            .version = col_text(res, i, 3),
            .last_seen_ms = col_u64(res, i, 4),
            .acked_generation = col_u64(res, i, 5),
            .stored_through = col_u64(res, i, 6),
            .cache_bytes = col_u64(res, i, 7),
            .cache_limit_bytes = col_u64(res, i, 8),
            .status_ms = col_u64(res, i, 9),
            .has_render_context = col_bool(res, i, 10),
        };
        TRY(cb(&row, userdata));
    }
    return 0;
}

static int pg_agent_ensure(backend *b, int64_t rack_id, unsigned instance)
{
    params p = { 0 };
    p_i64(&p, rack_id);
    p_u64(&p, instance);
    int r = run_done(b, ST_AGENT_ENSURE, &p);
    return r < 0 ? r : 0;
}

static int pg_agent_stored_through(backend *b, int64_t rack_id, unsigned instance, uint64_t *ret)
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_i64(&p, rack_id);
    p_u64(&p, instance);
    TRY(run(b, ST_AGENT_THROUGH, &p, &res));
    *ret = PQntuples(res) > 0 ? col_u64(res, 0, 0) : 0;
    return 0;
}

static int pg_agent_journal_get(backend *b, int64_t rack_id, unsigned instance, char *buf,
                                size_t len)
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_i64(&p, rack_id);
    p_u64(&p, instance);
    TRY(run(b, ST_AGENT_JOURNAL, &p, &res));
    snprintf(buf, len, "%s", PQntuples(res) > 0 ? col_text(res, 0, 0) : "");
    return 0;
}

static int pg_agent_journal_set(backend *b, int64_t rack_id, unsigned instance, const char *journal,
                                bool new_epoch)
{
    params p = { 0 };
    p_i64(&p, rack_id);
    p_text(&p, journal);
    p_i64(&p, new_epoch ? 1 : 0);
    p_u64(&p, instance);
    int r = run_done(b, ST_AGENT_JOURNAL_SET, &p);
    return r < 0 ? r : 0;
}

static int pg_agent_seen_set(backend *b, int64_t rack_id, unsigned instance, const char *agent,
                             const char *version, uint64_t now)
{
    params p = { 0 };
    p_i64(&p, rack_id);
    p_text(&p, agent);
    p_text(&p, version);
    p_u64(&p, now);
    p_u64(&p, instance);
    int r = run_done(b, ST_AGENT_SEEN, &p);
    return r < 0 ? r : 0;
}

static int pg_agent_status_set(backend *b, int64_t rack_id, unsigned instance,
                               const store_agent_status *status, uint64_t now)
{
    params p = { 0 };
    p_i64(&p, rack_id);
    p_u64(&p, status->cache_bytes);
    p_u64(&p, status->cache_limit_bytes);
    if (status->render_context) {
        p_blob(&p, status->render_context, status->render_context_len);
    } else {
        p_text(&p, NULL);
    }
    p_u64(&p, now);
    p_i64(&p, STORE_AGENT_STATUS_REFRESH_MS);
    p_u64(&p, instance);
    int r = run_done(b, ST_AGENT_STATUS, &p);
    return r < 0 ? r : 0;
}

static int pg_agent_render_get(backend *b, int64_t rack_id, void **ret, size_t *ret_len)
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_i64(&p, rack_id);
    TRY(run(b, ST_AGENT_RENDER, &p, &res));
    if (PQntuples(res) == 0) {
        return 0;
    }
    ssize_t n = col_blob_len(res, 0, 0);
    if (n < 0) {
        return fail(b, -EIO, "store: agent render context unreadable");
    }
    void *buf = malloc(n ? (size_t)n : 1);
    if (!buf) {
        return -ENOMEM;
    }
    if (col_blob(res, 0, 0, buf, 0, (size_t)n) != n) {
        free(buf);
        return fail(b, -EIO, "store: agent render context unreadable");
    }
    *ret = buf;
    *ret_len = (size_t)n;
    return 1;
}

static int pg_agent_acked_set(backend *b, int64_t rack_id, unsigned instance, uint64_t generation,
                              uint64_t now)
{
    params p = { 0 };
    p_i64(&p, rack_id);
    p_u64(&p, generation);
    p_u64(&p, now);
    p_u64(&p, instance);
    int r = run_done(b, ST_AGENT_ACK, &p);
    return r < 0 ? r : 0;
}

static int pg_agent_stored_set(backend *b, int64_t rack_id, unsigned instance, uint64_t through,
                               uint64_t now)
{
    params p = { 0 };
    p_i64(&p, rack_id);
    p_u64(&p, through);
    p_u64(&p, now);
    p_u64(&p, instance);
    int r = run_done(b, ST_AGENT_STORED, &p);
    return r < 0 ? r : 0;
}

/* ---- Hosts ------------------------------------------------------------- */

static int pg_host_find(backend *b, const char *name, int64_t *ret_id, int64_t *ret_rack_id)
{
    const rowcache_row *c = cache_on(b) ? rowcache_get(b->hosts, name) : NULL;
    if (c) {
        *ret_id = c->id;
        if (ret_rack_id) {
            *ret_rack_id = c->rack_id;
        }
        return 1;
    }
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_text(&p, name);
    TRY(run(b, ST_HOST_BY_NAME, &p, &res));
    if (PQntuples(res) == 0) {
        return 0;
    }
    rowcache_row row = { .id = col_i64(res, 0, 0), .rack_id = col_i64(res, 0, 1) };
    if (cache_on(b)) {
        rowcache_put(b->hosts, name, &row);
    }
    *ret_id = row.id;
    if (ret_rack_id) {
        *ret_rack_id = row.rack_id;
    }
    return 1;
}

static int pg_host_macs(backend *b, int64_t host_id, uint8_t (*ret)[6], size_t max, size_t *ret_n)
{
    _cleanup_result_ PGresult *res = NULL;
    size_t n = 0;
    params p = { 0 };
    p_i64(&p, host_id);
    TRY(run(b, ST_MACS_OF_HOST, &p, &res));
    for (int i = 0; i < PQntuples(res) && n < max; i++) {
        if (col_blob(res, i, 0, ret[n], 6, 6) == 6) {
            n++;
        }
    }
    *ret_n = n;
    return 0;
}

/* Fills h from a row of HOST_COLS (from column `c`), with MACs and DUID. */
static void host_from_row(const PGresult *row, int i, int c, store_host *h)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", col_text(row, i, c + 1));
    snprintf(h->rack, sizeof(h->rack), "%s", col_text(row, i, c + 2));
    (void)col_blob(row, i, c + 3, h->address, 16, 16);
    h->prefix_length = (uint32_t)col_int(row, i, c + 4);
    h->has_gateway = col_blob(row, i, c + 5, h->gateway, 16, 16) == 16;
    snprintf(h->hostname, sizeof(h->hostname), "%s", col_text(row, i, c + 6));
    uint8_t macs[STORE_MACS_MAX * 6];
    ssize_t n = col_blob(row, i, c + 7, macs, 0, sizeof(macs)); /* host_put keeps to the max */
    if (n > 0 && n % 6 == 0) {
        h->n_macs = (size_t)n / 6;
        memcpy(h->macs, macs, (size_t)n);
    }
    n = col_blob(row, i, c + 8, h->duid, 0, sizeof(h->duid));
    h->duid_len = n > 0 ? (size_t)n : 0;
}

/* Fills h's BMC fields from a row of HOST_BMC_COLS (from column `c`). */
static void host_bmc_from_row(const PGresult *row, int i, int c, store_host *h)
{
    snprintf(h->bmc_url, sizeof(h->bmc_url), "%s", col_text(row, i, c));
    snprintf(h->bmc_user, sizeof(h->bmc_user), "%s", col_text(row, i, c + 1));
    h->bmc_password[0] = '\0';
    h->bmc_password_set = col_bool(row, i, c + 2);
    h->firmware = (model_firmware)col_int(row, i, c + 3);
    h->power_state = col_int(row, i, c + 4);
    h->power_updated_ms = col_u64(row, i, c + 5);
}

static int pg_host_get(backend *b, const char *name, store_host *ret)
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_text(&p, name);
    TRY(run(b, ST_HOST_GET, &p, &res));
    if (PQntuples(res) == 0) {
        return 0;
    }
    host_from_row(res, 0, 0, ret);
    host_bmc_from_row(res, 0, HOST_COLS_N, ret);
    return 1;
}

/* A page's statements: of every rack, of one, of a set. */
static const int hosts_page_stmts[3] = { ST_HOSTS_PAGE, ST_HOSTS_PAGE_OF_RACK,
                                         ST_HOSTS_PAGE_OF_RACKS };
static const int status_page_stmts[3] = { ST_STATUS_PAGE, ST_STATUS_PAGE_OF_RACK,
                                          ST_STATUS_PAGE_OF_RACKS };

/* Runs the statement of a page (of `ids`, by its racks). */
static int page_run(backend *b, const int ids[3], const store_page *pg, PGresult **ret)
{
    _cleanup_free_ char *json = NULL;
    params p = { 0 };
    p_text(&p, pg->after ? pg->after : "");
    p_limit(&p, pg->limit);
    if (pg->n_racks == 1) {
        p_text(&p, pg->racks[0]);
    } else if (pg->n_racks > 1) {
        const char *bad = NULL;
        int r = store_col_racks_json(pg, &json, &bad);
        if (r < 0) {
            return r == -EINVAL ? fail(b, r, "rack name %s cannot be listed", bad) : r;
        }
        p_text(&p, json);
    }
    return run(b, ids[pg->n_racks < 2 ? pg->n_racks : 2], &p, ret);
}

static int pg_hosts_list(backend *b, const store_page *pg,
                         int (*cb)(const store_host *h, void *userdata), void *userdata)
{
    _cleanup_result_ PGresult *res = NULL;
    _cleanup_free_ store_host *h = malloc(sizeof(*h));
    int64_t id = 0; /* the host in h, 0: none yet */
    int count = 0;
    if (!h) {
        return -ENOMEM;
    }
    TRY(page_run(b, hosts_page_stmts, pg, &res));
    /* One row per MAC, a host's rows together: a host is complete when the
     * next one starts, or the rows end. */
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t row_id = col_i64(res, i, 0);
        if (row_id != id) {
            if (id) {
                TRY(cb(h, userdata));
                count++;
            }
            id = row_id;
            memset(h, 0, sizeof(*h));
            snprintf(h->name, sizeof(h->name), "%s", col_text(res, i, 1));
            snprintf(h->rack, sizeof(h->rack), "%s", col_text(res, i, 2));
            (void)col_blob(res, i, 3, h->address, 16, 16);
            h->prefix_length = (uint32_t)col_int(res, i, 4);
            h->has_gateway = col_blob(res, i, 5, h->gateway, 16, 16) == 16;
            snprintf(h->hostname, sizeof(h->hostname), "%s", col_text(res, i, 6));
            ssize_t n = col_blob(res, i, 7, h->duid, 0, sizeof(h->duid));
            h->duid_len = n > 0 ? (size_t)n : 0;
            host_bmc_from_row(res, i, 9, h);
        }
        if (h->n_macs < STORE_MACS_MAX && col_blob(res, i, 8, h->macs[h->n_macs], 6, 6) == 6) {
            h->n_macs++;
        }
    }
    if (id) {
        TRY(cb(h, userdata));
        count++;
    }
    return count;
}

/* The name in column 0 of statement `id` run on (blob, except). */
static int owner_of(backend *b, int id, const void *key, size_t key_len, const char *except,
                    char ret_owner[STORE_NAME_MAX + 1])
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_blob(&p, key, key_len);
    p_text(&p, except);
    TRY(run(b, id, &p, &res));
    if (PQntuples(res) == 0) {
        return 0;
    }
    snprintf(ret_owner, STORE_NAME_MAX + 1, "%s", col_text(res, 0, 0));
    return 1;
}

static int pg_host_address_owner(backend *b, const uint8_t address[16], const char *except,
                                 char ret_owner[STORE_NAME_MAX + 1])
{
    return owner_of(b, ST_HOST_ADDR_OWNER, address, 16, except, ret_owner);
}

static int pg_host_mac_owner(backend *b, const uint8_t mac[6], const char *except,
                             char ret_owner[STORE_NAME_MAX + 1])
{
    return owner_of(b, ST_HOST_MAC_OWNER, mac, 6, except, ret_owner);
}

static int pg_host_put(backend *b, int64_t host_id, int64_t rack_id, const store_host *h,
                       const char *hostname, int64_t *ret_id)
{
    rowcache_clear(b->hosts); /* its name or rack may move */
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    if (host_id) {
        p_i64(&p, host_id);
    } else {
        p_text(&p, h->name);
    }
    p_i64(&p, rack_id);
    p_blob(&p, h->address, 16);
    p_i64(&p, h->prefix_length);
    if (h->has_gateway) {
        p_blob(&p, h->gateway, 16);
    } else {
        p_text(&p, NULL);
    }
    p_text(&p, hostname);
    p_text(&p, h->bmc_url);
    p_text(&p, h->bmc_user);
    p_text(&p, h->bmc_password);
    p_i64(&p, (int64_t)h->firmware);
    TRY(run(b, host_id ? ST_HOST_UPDATE : ST_HOST_INSERT, &p, &res));
    if (!host_id) {
        if (PQntuples(res) != 1) {
            return fail(b, -EIO, "host %s: not inserted", h->name);
        }
        host_id = col_i64(res, 0, 0);
    }
    if (ret_id) {
        *ret_id = host_id;
    }
    return 0;
}

static int pg_host_delete(backend *b, int64_t host_id)
{
    rowcache_clear(b->hosts);
    rowcache_clear(b->installs);
    return run_id(b, ST_HOST_DELETE, host_id);
}

static int pg_mac_put(backend *b, const uint8_t mac[6], int64_t host_id, uint32_t position)
{
    params p = { 0 };
    p_blob(&p, mac, 6);
    p_i64(&p, host_id);
    p_i64(&p, position);
    int r = run_done(b, ST_MAC_UPSERT, &p);
    return r < 0 ? r : 0;
}

static int pg_mac_delete(backend *b, const uint8_t mac[6])
{
    params p = { 0 };
    p_blob(&p, mac, 6);
    int r = run_done(b, ST_MAC_DELETE, &p);
    return r < 0 ? r : 0;
}

static int pg_mac_find(backend *b, const uint8_t mac[6], int64_t *ret_host_id)
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_blob(&p, mac, 6);
    TRY(run(b, ST_MAC_HOST, &p, &res));
    if (PQntuples(res) == 0) {
        return 0;
    }
    *ret_host_id = col_i64(res, 0, 0);
    return 1;
}

static int pg_duid_put(backend *b, const uint8_t *duid, size_t duid_len, const uint8_t mac[6],
                       uint64_t now)
{
    params p = { 0 };
    p_blob(&p, duid, duid_len);
    p_blob(&p, mac, 6);
    p_u64(&p, now);
    int r = run_done(b, ST_DUID_UPSERT, &p);
    return r < 0 ? r : 0;
}

/* ---- Profiles and images ----------------------------------------------- */

static int pg_profile_find(backend *b, const char *name, int64_t *ret_id)
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_text(&p, name);
    TRY(run(b, ST_PROFILE_BY_NAME, &p, &res));
    if (PQntuples(res) == 0) {
        return 0;
    }
    if (ret_id) {
        *ret_id = col_i64(res, 0, 0);
    }
    return 1;
}

/* Stores one image of a profile (shared by content and origin) at its
 * position. */
static int profile_image_put(backend *b, int64_t profile_id, size_t position, const model_image *im)
{
    int64_t image_id;
    {
        _cleanup_result_ PGresult *res = NULL;
        params p = { 0 };
        p_blob(&p, im->sha256, 32);
        p_text(&p, im->url);
        p_u64(&p, im->size);
        p_text(&p, im->name);
        p_i64(&p, store_col_image_kind(im->kind));
        TRY(run(b, ST_IMAGE_UPSERT, &p, &res));
        if (PQntuples(res) != 1) {
            return fail(b, -EIO, "image %s: not stored", im->name);
        }
        image_id = col_i64(res, 0, 0);
    }
    params p = { 0 };
    p_i64(&p, profile_id);
    p_u64(&p, position);
    p_i64(&p, image_id);
    p_i64(&p, store_col_image_kind(im->kind));
    p_text(&p, im->name);
    int r = run_done(b, ST_PROFILE_IMAGE_INSERT, &p);
    return r < 0 ? r : 0;
}

static int pg_profile_put(backend *b, const model_profile *pr, const uint8_t kickstart_sha256[32],
                          uint64_t now, int64_t *ret_id)
{
    rowcache_clear(b->installs); /* an install's ending is its profile's kind */
    int64_t profile_id;
    {
        _cleanup_result_ PGresult *res = NULL;
        _cleanup_free_ char *keys = NULL;
        TRY(store_col_keys_join(pr, &keys));
        params p = { 0 };
        p_text(&p, pr->name);
        p_text(&p, pr->cmdline ? pr->cmdline : "");
        p_text(&p, pr->kickstart ? pr->kickstart : "");
        p_blob(&p, kickstart_sha256, 32);
        p_bool(&p, pr->overlay);
        p_i64(&p, store_col_ip_mode(pr->ip));
        p_bool(&p, pr->keep_ra);
        p_u64(&p, now);
        p_bool(&p, pr->any_source);
        p_text(&p, pr->root_device ? pr->root_device : "");
        p_i64(&p, store_col_profile_kind(pr->kind));
        p_text(&p, keys);
        p_text(&p, pr->user_data ? pr->user_data : "");
        p_i64(&p, pr->uefi == UEFI_BOOT_UKI ? 1 : 0);
        TRY(run(b, ST_PROFILE_UPSERT, &p, &res));
        if (PQntuples(res) != 1) {
            return fail(b, -EIO, "profile %s: not stored", pr->name);
        }
        profile_id = col_i64(res, 0, 0);
    }
    TRY(run_id(b, ST_PROFILE_IMAGES_DELETE, profile_id));
    for (size_t i = 0; i < pr->n_images; i++) {
        TRY(profile_image_put(b, profile_id, i, &pr->images[i]));
    }
    *ret_id = profile_id;
    return 0;
}

/* An image of a row: name, kind, url, sha256, size from column `c`. */
static model_image image_from_row(const PGresult *res, int i, int c)
{
    model_image im = {
        .name = RB_UNCONST(col_text(res, i, c)),
        .kind = store_col_image_kind_from(col_int(res, i, c + 1)),
        .url = RB_UNCONST(col_text(res, i, c + 2)),
        .size = col_u64(res, i, c + 4),
    };
    (void)col_blob(res, i, c + 3, im.sha256, 32, 32);
    return im;
}

static int pg_profile_load(backend *b, int64_t id, bool with_content, store_loaded_profile **ret)
{
    _cleanup_(store_loaded_profile_freep) store_loaded_profile *lp = NULL;
    {
        _cleanup_result_ PGresult *res = NULL;
        params p = { 0 };
        p_i64(&p, id);
        p_bool(&p, with_content);
        TRY(run(b, ST_PROFILE_GET, &p, &res));
        if (PQntuples(res) == 0) {
            return 0;
        }
        TRY(store_loaded_profile_new(id, col_text(res, 0, 1), col_text(res, 0, 2),
                                     col_text(res, 0, 3), &lp));
        (void)col_blob(res, 0, 4, lp->p.kickstart_sha256, 32, 32);
        lp->p.overlay = col_bool(res, 0, 5);
        lp->p.ip = store_col_ip_mode_from(col_int(res, 0, 6));
        lp->p.keep_ra = col_bool(res, 0, 7);
        lp->p.any_source = col_bool(res, 0, 8);
        const char *root_device = col_text(res, 0, 9);
        if (*root_device && !(lp->p.root_device = strdup(root_device))) {
            return -ENOMEM;
        }
        lp->p.kind = store_col_profile_kind_from(col_int(res, 0, 10));
        TRY(store_col_keys_split(col_text(res, 0, 11), &lp->p));
        const char *user_data = col_text(res, 0, 12);
        if (*user_data && !(lp->p.user_data = strdup(user_data))) {
            return -ENOMEM;
        }
        lp->p.uefi = col_int(res, 0, 13) == 1 ? UEFI_BOOT_UKI : UEFI_BOOT_IPXE;
    }
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_i64(&p, id);
    TRY(run(b, ST_PROFILE_IMAGES_OF, &p, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        model_image im = image_from_row(res, i, 0);
        TRY(store_loaded_profile_add_image(lp, &im));
    }
    *ret = TAKE_PTR(lp);
    return 1;
}

static int pg_profiles_list(backend *b, int (*cb)(int64_t id, void *userdata), void *userdata)
{
    _cleanup_result_ PGresult *res = NULL;
    TRY(run(b, ST_PROFILES_LIST, NULL, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        TRY(cb(col_i64(res, i, 0), userdata));
    }
    return 0;
}

static int pg_images_gc(backend *b)
{
    int r = run_done(b, ST_IMAGES_GC, NULL);
    return r < 0 ? r : 0;
}

static int pg_images_list(backend *b,
                          int (*cb)(const char *profile, const model_image *img, void *userdata),
                          void *userdata)
{
    _cleanup_result_ PGresult *res = NULL;
    TRY(run(b, ST_IMAGES_LIST, NULL, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        model_image im = image_from_row(res, i, 1);
        TRY(cb(col_text(res, i, 0), &im, userdata));
    }
    return 0;
}

/* ---- Installs ---------------------------------------------------------- */

static const rowcache_row *host_installs_cached(const backend *b, int64_t host_id);

static int pg_install_active_of_host(backend *b, int64_t host_id, store_install_ref *ret)
{
    const rowcache_row *c = host_installs_cached(b, host_id);
    if (c) {
        if (c->active.id == 0) {
            return 0;
        }
        *ret = c->active;
        return 1;
    }
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_i64(&p, host_id);
    TRY(run(b, ST_ACTIVE_OF_HOST, &p, &res));
    if (PQntuples(res) == 0) {
        return 0;
    }
    store_install_ref in = { .id = col_i64(res, 0, 0), .host_id = host_id };
    snprintf(in.uuid, sizeof(in.uuid), "%s", col_text(res, 0, 1));
    TRY(col_state(b, res, 0, 2, &in.state));
    *ret = in;
    return 1;
}

static int pg_install_last_of_host(backend *b, int64_t host_id, install_state *ret_state,
                                   uint32_t *ret_attempt)
{
    const rowcache_row *c = host_installs_cached(b, host_id);
    if (c) {
        if (!c->has_last) {
            return 0;
        }
        *ret_state = c->last_state;
        *ret_attempt = c->last_attempt;
        return 1;
    }
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_i64(&p, host_id);
    TRY(run(b, ST_LAST_OF_HOST, &p, &res));
    if (PQntuples(res) == 0) {
        return 0;
    }
    TRY(col_state(b, res, 0, 0, ret_state));
    *ret_attempt = (uint32_t)col_i64(res, 0, 1);
    return 1;
}

/* Row i of INSTALL_REF_SELECT. */
static int install_ref_from_row(backend *b, const PGresult *res, int i, store_install_ref *ret)
{
    store_install_ref in = {
        .id = col_i64(res, i, 0),
        .host_id = col_i64(res, i, 1),
        .phase = (Rackboot__V1__Phase)col_int(res, i, 3),
        .ending = profile_kind_ends_on_first_boot(store_col_profile_kind_from(col_int(res, i, 4)))
                      ? INSTALL_ENDS_FIRST_BOOT
                      : INSTALL_ENDS_INSTALLED,
        .dispatched_ms = col_u64(res, i, 5),
    };
    TRY(col_state(b, res, i, 2, &in.state));
    *ret = in;
    return 0;
}

static int pg_install_find(backend *b, const char *uuid, store_install_ref *ret)
{
    const rowcache_row *c = cache_on(b) ? rowcache_get(b->installs, uuid) : NULL;
    if (c) {
        *ret = c->install;
        return 1;
    }
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_text(&p, uuid);
    TRY(run(b, ST_INSTALL_BY_UUID, &p, &res));
    if (PQntuples(res) == 0) {
        return 0;
    }
    store_install_ref in;
    TRY(install_ref_from_row(b, res, 0, &in));
    if (cache_on(b)) {
        rowcache_put(b->installs, uuid, &(rowcache_row){ .id = in.id, .install = in });
    }
    *ret = in;
    return 1;
}

/* Runs statement `id` with the names as its $1 (text[]). */
static int run_names(backend *b, int id, const char *const *names, size_t n, PGresult **ret)
{
    _cleanup_(pgarray_done) pgarray a = { 0 };
    for (size_t i = 0; i < n; i++) {
        pgarray_add_text(&a, names[i]);
    }
    if (!pgarray_text(&a)) {
        return fail(b, -ENOMEM, "lookups: out of memory");
    }
    params p = { 0 };
    p_text(&p, pgarray_text(&a));
    return run(b, id, &p, ret);
}

/* A host row of ST_HOSTS_WITH_INSTALLS_BY_NAMES's columns 3..: its
 * active and latest installs. */
static int host_installs_from_row(backend *b, const PGresult *res, int i, rowcache_row *row)
{
    row->installs_epoch = b->installs_epoch;
    if (!PQgetisnull(res, i, 3)) {
        row->active = (store_install_ref){ .id = col_i64(res, i, 3), .host_id = row->id };
        snprintf(row->active.uuid, sizeof(row->active.uuid), "%s", col_text(res, i, 4));
        TRY(col_state(b, res, i, 5, &row->active.state));
    }
    if (!PQgetisnull(res, i, 6)) {
        row->has_last = true;
        TRY(col_state(b, res, i, 6, &row->last_state));
        row->last_attempt = (uint32_t)col_i64(res, i, 7);
    }
    return 0;
}

/* One statement for the hosts, one for the installs, into the cache that
 * host_find, install_find and (host_installs) install_active_of_host and
 * install_last_of_host answer from. */
static int pg_lookups_prime(backend *b, const store_lookahead *la)
{
    if (!cache_on(b)) {
        return 0; /* nowhere to keep them */
    }
    if (la->n_hosts > 0) {
        _cleanup_result_ PGresult *res = NULL;
        TRY(run_names(b, la->host_installs ? ST_HOSTS_WITH_INSTALLS_BY_NAMES : ST_HOSTS_BY_NAMES,
                      la->hosts, la->n_hosts, &res));
        for (int i = 0; i < PQntuples(res); i++) {
            rowcache_row row = { .id = col_i64(res, i, 0), .rack_id = col_i64(res, i, 1) };
            if (la->host_installs) {
                TRY(host_installs_from_row(b, res, i, &row));
            }
            rowcache_put(b->hosts, col_text(res, i, 2), &row);
        }
    }
    if (la->n_installs > 0) {
        _cleanup_result_ PGresult *res = NULL;
        TRY(run_names(b, ST_INSTALLS_BY_UUIDS, la->installs, la->n_installs, &res));
        for (int i = 0; i < PQntuples(res); i++) {
            store_install_ref in;
            TRY(install_ref_from_row(b, res, i, &in));
            rowcache_put(b->installs, col_text(res, i, 6),
                         &(rowcache_row){ .id = in.id, .install = in });
        }
    }
    return 0;
}

/* The host's installs as read ahead with it, if still valid. */
static const rowcache_row *host_installs_cached(const backend *b, int64_t host_id)
{
    const rowcache_row *c = cache_on(b) ? rowcache_get_id(b->hosts, host_id) : NULL;
    return c && c->installs_epoch != 0 && c->installs_epoch == b->installs_epoch ? c : NULL;
}

static int pg_installs_count(backend *b, int (*cb)(install_state state, uint64_t n, void *userdata),
                             void *userdata)
{
    _cleanup_result_ PGresult *res = NULL;
    TRY(run(b, ST_INSTALLS_COUNT, NULL, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        install_state state;
        TRY(col_state(b, res, i, 0, &state));
        TRY(cb(state, col_u64(res, i, 1), userdata));
    }
    return 0;
}

static int pg_install_insert(backend *b, const store_install_new *in)
{
    b->installs_epoch++; /* the host's active and latest install */
    if (cache_on(b)) {
        /* under the writer lock: with the others of the slice */
        installs_pending_add(b, in);
        return 0;
    }
    params p = { 0 };
    p_text(&p, in->uuid);
    p_i64(&p, in->host_id);
    p_i64(&p, in->profile_id);
    p_text(&p, in->token);
    p_i64(&p, in->attempt);
    p_i64(&p, in->rack_id);
    p_u64(&p, in->now);
    int r = run_done(b, ST_INSTALL_INSERT, &p);
    return r < 0 ? r : 0;
}

static int pg_install_set_state(backend *b, int64_t id, install_state state, uint64_t now,
                                const char *message)
{
    params p = { 0 };
    p_i64(&p, id);
    p_text(&p, store_col_state(state));
    p_u64(&p, now);
    p_text(&p, message);
    b->installs_epoch++; /* it may leave the active ones */
    rowcache_row *c = rowcache_get_id(b->installs, id);
    if (c) { /* written through: install_find reads it back */
        c->install.state = state;
        if (state == INSTALL_DISPATCHED) {
            c->install.dispatched_ms = now;
        }
    }
    int r = run_done(b, ST_INSTALL_SET_STATE, &p);
    return r < 0 ? r : 0;
}

static int pg_install_set_progress(backend *b, int64_t id, Rackboot__V1__Phase phase,
                                   uint32_t percent, const char *message, uint64_t now)
{
    params p = { 0 };
    p_i64(&p, id);
    p_i64(&p, (int64_t)phase);
    p_i64(&p, percent);
    p_text(&p, message);
    p_u64(&p, now);
    rowcache_row *c = rowcache_get_id(b->installs, id);
    if (c) {
        c->install.phase = phase;
    }
    int r = run_done(b, ST_INSTALL_SET_PHASE, &p);
    return r < 0 ? r : 0;
}

static int pg_install_set_message(backend *b, int64_t id, const char *message, uint64_t now)
{
    params p = { 0 };
    p_i64(&p, id);
    p_text(&p, message);
    p_u64(&p, now);
    int r = run_done(b, ST_INSTALL_SET_NOTE, &p);
    return r < 0 ? r : 0;
}

static int pg_installs_requested_set_state(backend *b, int64_t rack_id, uint64_t generation,
                                           install_state state, uint64_t now)
{
    params p = { 0 };
    p_i64(&p, rack_id);
    p_text(&p, store_col_state(state));
    p_u64(&p, now);
    p_u64(&p, generation);
    rowcache_clear(b->installs);
    b->installs_epoch++;
    return run_done(b, ST_REQUESTED_OF_RACK_SET_STATE, &p);
}

static int pg_installs_due(backend *b, uint64_t now, const install_timeouts *cfg,
                           store_install_due *rows, size_t max, size_t *ret_n)
{
    _cleanup_result_ PGresult *res = NULL;
    size_t n = 0;
    params p = { 0 };
    p_u64(&p, now);
    p_u64(&p, cfg->boot_ms);
    p_u64(&p, cfg->install_ms);
    p_u64(&p, max);
    TRY(run(b, ST_OVERDUE, &p, &res));
    for (int i = 0; i < PQntuples(res) && n < max; i++, n++) {
        rows[n].id = col_i64(res, i, 0);
        TRY(col_state(b, res, i, 1, &rows[n].state));
        rows[n].t = (install_times){
            .created_ms = col_u64(res, i, 2),
            .dispatched_ms = col_u64(res, i, 3),
            .booting_ms = col_u64(res, i, 4),
            .installing_ms = col_u64(res, i, 5),
        };
        rows[n].rack_id = col_i64(res, i, 6);
    }
    *ret_n = n;
    return 0;
}

static int pg_intents_of_rack(backend *b, int64_t rack_id,
                              int (*cb)(const store_intent_row *in, void *userdata), void *userdata)
{
    _cleanup_result_ PGresult *res = NULL;
    _cleanup_free_ store_host *h = malloc(sizeof(*h));
    if (!h) {
        return -ENOMEM;
    }
    params p = { 0 };
    p_i64(&p, rack_id);
    TRY(run(b, ST_INTENTS_OF_RACK, &p, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        store_intent_row in = {
            .uuid = col_text(res, i, 0),
            .token = col_text(res, i, 1),
            .attempt = (uint32_t)col_i64(res, i, 2),
            .profile_id = col_i64(res, i, 4),
            .host = h,
        };
        TRY(col_state(b, res, i, 3, &in.state));
        /* columns 5..: HOST_COLS */
        host_from_row(res, i, 5, h);
        TRY(cb(&in, userdata));
    }
    return 0;
}

/* ---- Events ------------------------------------------------------------ */

static int pg_event_insert(backend *b, int64_t rack_id, unsigned instance, const store_event *e,
                           int64_t install_id, int64_t host_id, uint64_t now, const char *refused,
                           bool *ret_inserted)
{
    if (!ret_inserted && cache_on(b)) {
        /* Known to be new, under the writer lock: with the batch. */
        events_pending_add(b, rack_id, instance, e, install_id, host_id, now, refused);
        return 0;
    }
    params p = { 0 };
    p_i64(&p, rack_id);
    p_u64(&p, e->seq);
    p_id_or_null(&p, install_id);
    p_text(&p, e->host ? e->host : "");
    p_u64(&p, e->time_ms);
    p_u64(&p, now);
    p_i64(&p, (int64_t)e->phase);
    p_i64(&p, e->percent);
    p_text(&p, e->message ? e->message : "");
    p_text(&p, refused);
    p_id_or_null(&p, host_id);
    p_u64(&p, instance);
    int r = run_done(b, ST_EVENT_INSERT, &p);
    TRY(r);
    if (ret_inserted) {
        *ret_inserted = r > 0;
    }
    return 0;
}

/* ---- Power ------------------------------------------------------------- */

static int pg_power_insert(backend *b, const store_power_new *pw)
{
    params p = { 0 };
    p_text(&p, pw->uuid);
    p_i64(&p, pw->host_id);
    p_i64(&p, pw->rack_id);
    p_i64(&p, pw->action);
    p_i64(&p, pw->boot_device);
    p_bool(&p, pw->efi);
    p_id_or_null(&p, pw->install_id);
    p_u64(&p, pw->now);
    int r = run_done(b, ST_POWER_INSERT, &p);
    return r < 0 ? r : 0;
}

static int pg_power_find(backend *b, const char *uuid, store_power_ref *ret)
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_text(&p, uuid);
    TRY(run(b, ST_POWER_BY_UUID, &p, &res));
    if (PQntuples(res) == 0) {
        return 0;
    }
    *ret = (store_power_ref){
        .id = col_i64(res, 0, 0),
        .host_id = col_i64(res, 0, 1),
        .rack_id = col_i64(res, 0, 2),
        .done = col_bool(res, 0, 3),
    };
    return 1;
}

static int pg_power_finish(backend *b, int64_t id, bool ok, int power_state, const char *message,
                           uint64_t now)
{
    params p = { 0 };
    p_i64(&p, id);
    p_bool(&p, ok);
    p_i64(&p, power_state);
    p_text(&p, message ? message : "");
    p_u64(&p, now);
    int r = run_done(b, ST_POWER_FINISH, &p);
    return r < 0 ? r : 0;
}

static int pg_host_power_set(backend *b, int64_t host_id, int power_state, uint64_t now)
{
    params p = { 0 };
    p_i64(&p, host_id);
    p_i64(&p, power_state);
    p_u64(&p, now);
    int r = run_done(b, ST_HOST_POWER_SET, &p);
    return r < 0 ? r : 0;
}

/* A row of POWER_COLS. */
static store_power power_from_row(const PGresult *res, int i)
{
    const char *state = col_text(res, i, 6);
    return (store_power){
        .id = col_text(res, i, 0),
        .host = col_text(res, i, 1),
        .action = col_int(res, i, 2),
        .boot_device = col_int(res, i, 3),
        .efi = col_bool(res, i, 4),
        .install_id = col_text(res, i, 5),
        .done = !streq(state, "pending"),
        .ok = streq(state, "done"),
        .power_state = col_int(res, i, 7),
        .message = col_text(res, i, 8),
        .updated_ms = col_u64(res, i, 9),
    };
}

static int pg_power_list(backend *b, const char *const *uuids, size_t n,
                         int (*cb)(const store_power *p, void *userdata), void *userdata)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        _cleanup_result_ PGresult *res = NULL;
        params p = { 0 };
        p_text(&p, uuids[i]);
        TRY(run(b, ST_POWER_GET, &p, &res));
        if (PQntuples(res) > 0) {
            store_power pw = power_from_row(res, 0);
            TRY(cb(&pw, userdata));
            count++;
        }
    }
    return count;
}

static int pg_rack_power(backend *b, int64_t rack_id,
                         int (*bmc_cb)(const store_bmc *bmc, void *userdata),
                         int (*cmd_cb)(const store_power *p, void *userdata), void *userdata)
{
    params p = { 0 };
    p_i64(&p, rack_id);
    if (bmc_cb) {
        _cleanup_result_ PGresult *res = NULL;
        TRY(run(b, ST_BMCS_OF_RACK, &p, &res));
        for (int i = 0; i < PQntuples(res); i++) {
            store_bmc bmc = {
                .host = col_text(res, i, 0),
                .url = col_text(res, i, 1),
                .user = col_text(res, i, 2),
                .password = col_text(res, i, 3),
                .firmware = (model_firmware)col_int(res, i, 4),
            };
            TRY(bmc_cb(&bmc, userdata));
        }
    }
    if (cmd_cb) {
        _cleanup_result_ PGresult *res = NULL;
        TRY(run(b, ST_POWER_PENDING_OF_RACK, &p, &res));
        for (int i = 0; i < PQntuples(res); i++) {
            store_power pw = power_from_row(res, i);
            TRY(cmd_cb(&pw, userdata));
        }
    }
    return 0;
}

static int pg_power_due(backend *b, uint64_t before_ms, store_power_ref *rows, size_t max,
                        size_t *ret_n)
{
    _cleanup_result_ PGresult *res = NULL;
    size_t n = 0;
    params p = { 0 };
    p_u64(&p, before_ms);
    p_u64(&p, max);
    TRY(run(b, ST_POWER_DUE, &p, &res));
    for (int i = 0; i < PQntuples(res) && n < max; i++) {
        rows[n++] = (store_power_ref){
            .id = col_i64(res, i, 0),
            .host_id = col_i64(res, i, 1),
            .rack_id = col_i64(res, i, 2),
        };
    }
    *ret_n = n;
    return 0;
}

static int pg_event_find(backend *b, int64_t rack_id, unsigned instance, uint64_t seq)
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_i64(&p, rack_id);
    p_u64(&p, seq);
    p_u64(&p, instance);
    TRY(run(b, ST_EVENT_EXISTS, &p, &res));
    return PQntuples(res) > 0;
}

static int pg_events_stored_in(backend *b, int64_t rack_id, unsigned instance, uint64_t after,
                               uint64_t upto, int (*cb)(uint64_t seq, void *userdata),
                               void *userdata)
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_i64(&p, rack_id);
    p_u64(&p, instance);
    p_u64(&p, after);
    p_u64(&p, upto);
    TRY(run(b, ST_EVENTS_STORED_IN, &p, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        TRY(cb(col_u64(res, i, 0), userdata));
    }
    return 0;
}

static int pg_events_phases_elsewhere(
    backend *b, int64_t rack_id, unsigned instance, const int64_t *install_ids, size_t n,
    int (*cb)(int64_t install_id, Rackboot__V1__Phase phase, void *userdata), void *userdata)
{
    if (n == 0) {
        return 0;
    }
    _cleanup_(pgarray_done) pgarray ids = { 0 };
    _cleanup_result_ PGresult *res = NULL;
    for (size_t i = 0; i < n; i++) {
        pgarray_add_i64(&ids, install_ids[i]);
    }
    if (!pgarray_text(&ids)) {
        return fail(b, -ENOMEM, "events: out of memory");
    }
    params p = { 0 };
    p_text(&p, pgarray_text(&ids));
    p_u64(&p, instance);
    p_i64(&p, rack_id);
    TRY(run(b, ST_EVENT_PHASES_ELSEWHERE, &p, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        TRY(cb(col_i64(res, i, 0), (Rackboot__V1__Phase)col_int(res, i, 1), userdata));
    }
    return 0;
}

static int pg_events_list(backend *b, int64_t host_id, uint64_t after_seq, uint32_t limit,
                          int (*cb)(const store_event_row *e, void *userdata), void *userdata)
{
    _cleanup_result_ PGresult *res = NULL;
    int count = 0;
    params p = { 0 };
    p_u64(&p, after_seq);
    if (host_id) {
        p_i64(&p, host_id);
    }
    p_limit(&p, limit);
    TRY(run(b, host_id ? ST_EVENTS_HOST : ST_EVENTS_ALL, &p, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        store_event_row row = {
            .seq = col_u64(res, i, 0),
            .time_ms = col_u64(res, i, 1),
            .host = col_text(res, i, 2),
            .install_id = col_text(res, i, 3),
            .phase = (Rackboot__V1__Phase)col_int(res, i, 4),
            .percent = (uint32_t)col_i64(res, i, 5),
            .message = col_text(res, i, 6),
        };
        TRY(cb(&row, userdata));
        count++;
    }
    return count;
}

static int pg_events_last_seq(backend *b, uint64_t *ret)
{
    _cleanup_result_ PGresult *res = NULL;
    TRY(run(b, ST_EVENTS_LAST, NULL, &res));
    *ret = PQntuples(res) > 0 ? col_u64(res, 0, 0) : 0;
    return 0;
}

static int prune_run(backend *b, int id, uint64_t arg, uint32_t limit)
{
    params p = { 0 };
    p_u64(&p, arg);
    p_i64(&p, limit);
    return run_done(b, id, &p);
}

static int pg_events_prune_received(backend *b, uint64_t before_ms, uint32_t limit)
{
    return prune_run(b, ST_EVENTS_PRUNE_OLD, before_ms, limit);
}

static int pg_events_prune_refused(backend *b, uint32_t keep, uint32_t limit)
{
    return prune_run(b, ST_EVENTS_PRUNE_REFUSED, keep, limit);
}

/* Each row of a STATUS_SELECT result to `cb`; the number of rows. */
static int status_rows(backend *b, const PGresult *res,
                       int (*cb)(const store_status *st, void *userdata), void *userdata)
{
    int count = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        store_status row = {
            .host = col_text(res, i, 0),
            .rack = col_text(res, i, 1),
            .install_id = col_text(res, i, 2),
            .profile = col_text(res, i, 3),
            .phase = (Rackboot__V1__Phase)col_int(res, i, 5),
            .percent = (uint32_t)col_i64(res, i, 6),
            .updated_ms = col_u64(res, i, 7),
            .attempt = (uint32_t)col_i64(res, i, 8),
            .message = col_text(res, i, 9),
            .power_state = col_int(res, i, 10),
            .power_updated_ms = col_u64(res, i, 11),
        };
        if (!PQgetisnull(res, i, 4)) {
            TRY(col_state(b, res, i, 4, &row.state));
        }
        TRY(cb(&row, userdata));
        count++;
    }
    return count;
}

static int pg_status_get(backend *b, const char *host,
                         int (*cb)(const store_status *st, void *userdata), void *userdata)
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_text(&p, host);
    TRY(run(b, ST_STATUS_HOST, &p, &res));
    int r = status_rows(b, res, cb, userdata);
    return r < 0 ? r : r > 0;
}

static int pg_status_list(backend *b, const store_page *pg,
                          int (*cb)(const store_status *st, void *userdata), void *userdata)
{
    _cleanup_result_ PGresult *res = NULL;
    TRY(page_run(b, status_page_stmts, pg, &res));
    return status_rows(b, res, cb, userdata);
}

/* ---- Audit log ---------------------------------------------------------- */

static int pg_audit_insert(backend *b, const store_audit *a, const char *hosts_text,
                           uint64_t host_count, const char *profiles_text)
{
    params p = { 0 };
    p_u64(&p, a->time_ms);
    p_text(&p, a->who);
    p_text(&p, a->verb);
    p_text(&p, hosts_text);
    p_u64(&p, host_count);
    p_text(&p, profiles_text);
    p_bool(&p, a->ok);
    p_text(&p, a->result ? a->result : "");
    int r = run_done(b, ST_AUDIT_INSERT, &p);
    return r < 0 ? r : 0;
}

static int pg_audit_list(backend *b, uint64_t since_ms, uint64_t after_seq, uint32_t limit,
                         int (*cb)(const store_audit *a, void *userdata), void *userdata)
{
    _cleanup_result_ PGresult *res = NULL;
    params p = { 0 };
    p_u64(&p, since_ms);
    p_limit(&p, limit);
    p_u64(&p, after_seq);
    TRY(run(b, ST_AUDIT_LIST, &p, &res));
    for (int i = 0; i < PQntuples(res); i++) {
        store_audit row = {
            .seq = col_u64(res, i, 0),
            .time_ms = col_u64(res, i, 1),
            .who = col_text(res, i, 2),
            .verb = col_text(res, i, 3),
            .hosts_text = col_text(res, i, 4),
            .host_count = (uint32_t)col_u64(res, i, 5),
            .profiles_text = col_text(res, i, 6),
            .ok = col_bool(res, i, 7),
            .result = col_text(res, i, 8),
        };
        int c = cb(&row, userdata);
        if (c != 0) {
            return c;
        }
    }
    return 0;
}

/* ---- Several controllers: change feed, expiry lock ---------------------- */

struct store_backend_feed {
    PGconn *conn;
    char *err;
    size_t err_len;
};

typedef store_backend_feed feed;

__attribute__((format(printf, 3, 4))) static int feed_fail(feed *f, int r, const char *fmt, ...)
{
    if (f->err && f->err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->err, f->err_len, fmt, ap);
        va_end(ap);
        /* One line: libpq's messages hold newlines and tabs. */
        for (char *c = f->err; *c; c++) {
            if (*c == '\n' || *c == '\r' || *c == '\t') {
                *c = c[1] ? ' ' : '\0';
            }
        }
    }
    return r;
}

/* LISTEN, on every (re)connection: it is the session's. */
static int feed_listen(feed *f)
{
    PQsetNoticeProcessor(f->conn, notice_quiet, NULL);
    _cleanup_result_ PGresult *res =
        PQexec(f->conn, "LISTEN " FEED_CHANNEL "; LISTEN " FEED_EVENTS_CHANNEL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        return feed_fail(f, -EIO, "change feed: LISTEN: %s", PQerrorMessage(f->conn));
    }
    return 0;
}

static void pg_feed_close(feed *f)
{
    if (f) {
        PQfinish(f->conn);
        free(f);
    }
}

static int pg_feed_open(const backend *parent, char *errbuf, size_t errlen, feed **ret)
{
    feed *f = calloc(1, sizeof(*f));
    if (!f) {
        return -ENOMEM;
    }
    f->err = errbuf;
    f->err_len = errlen;
    f->conn = PQconnectdb(parent->conninfo);
    if (!f->conn) {
        pg_feed_close(f);
        return -ENOMEM;
    }
    int r =
        PQstatus(f->conn) == CONNECTION_OK
            ? feed_listen(f)
            : feed_fail(f, -EIO, "change feed: database connection: %s", PQerrorMessage(f->conn));
    if (r < 0) {
        pg_feed_close(f);
        return r;
    }
    *ret = f;
    return 0;
}

static int pg_feed_fd(const feed *f)
{
    return PQstatus(f->conn) == CONNECTION_OK ? PQsocket(f->conn) : -1;
}

/* Notifications arrive between commands, so the connection only ever
 * reads here: PQconsumeInput takes what the socket holds without
 * blocking. Payloads are rack names (FEED_CHANNEL) or empty
 * (FEED_EVENTS_CHANNEL). */
static int pg_feed_read(feed *f,
                        void (*cb)(store_feed_topic topic, const char *rack, void *userdata),
                        void *userdata)
{
    if (PQstatus(f->conn) != CONNECTION_OK || !PQconsumeInput(f->conn) ||
        PQstatus(f->conn) != CONNECTION_OK) {
        return feed_fail(f, -EIO, "change feed: connection to the database lost: %s",
                         PQerrorMessage(f->conn));
    }
    int n = 0;
    PGnotify *note;
    while ((note = PQnotifies(f->conn))) {
        n += n < INT32_MAX;
        if (cb && streq(note->relname, FEED_EVENTS_CHANNEL)) {
            cb(STORE_FEED_EVENTS, NULL, userdata);
        } else if (cb) {
            cb(STORE_FEED_GENERATION, note->extra, userdata);
        }
        PQfreemem(note);
    }
    return n;
}

static int pg_feed_events_stored(backend *b)
{
    int r = run_done(b, ST_EVENTS_ANNOUNCE, NULL);
    return r < 0 ? r : 0;
}

static int pg_feed_reconnect(feed *f)
{
    PQreset(f->conn);
    if (PQstatus(f->conn) != CONNECTION_OK) {
        return feed_fail(f, -EIO, "change feed: cannot reconnect to the database: %s",
                         PQerrorMessage(f->conn));
    }
    return feed_listen(f);
}

/* Asked on every tick by the same connection: held, it is not taken again
 * (session advisory locks stack, and the count would need as many
 * unlocks). conn_ready() first: a reconnection is a new session that
 * holds nothing (session_setup). */
static int pg_expiry_lock(backend *b)
{
    TRY(conn_ready(b));
    if (b->expiry_held) {
        return 1;
    }
    _cleanup_result_ PGresult *res = NULL;
    TRY(run(b, ST_EXPIRY_LOCK, NULL, &res));
    b->expiry_held = PQntuples(res) == 1 && col_bool(res, 0, 0);
    return b->expiry_held;
}

const store_backend_ops store_postgresql_ops = {
    .name = "postgresql",
    .url_scheme = "postgresql://",
    .url_scheme_alias = "postgres://",
    .shared = true,
    .location_check = pg_location_check,
    .peek_version = pg_peek_version,
    .open = pg_open,
    .connect = pg_connect,
    .close = pg_close,
    .schema_version = pg_schema_version,
    .begin = pg_begin,
    .begin_read = pg_begin_read,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .rollback_to = pg_rollback_to,
    .in_transaction = pg_in_transaction,
    .rack_find = pg_rack_find,
    .rack_ensure = pg_rack_ensure,
    .rack_bump = pg_rack_bump,
    .racks_bump_of_profile = pg_racks_bump_of_profile,
    .racks_list = pg_racks_list,
    .agents_list = pg_agents_list,
    .agent_ensure = pg_agent_ensure,
    .agent_stored_through = pg_agent_stored_through,
    .agent_journal_get = pg_agent_journal_get,
    .agent_journal_set = pg_agent_journal_set,
    .agent_seen_set = pg_agent_seen_set,
    .agent_acked_set = pg_agent_acked_set,
    .agent_status_set = pg_agent_status_set,
    .agent_render_get = pg_agent_render_get,
    .agent_stored_set = pg_agent_stored_set,
    .lookups_prime = pg_lookups_prime,
    .host_find = pg_host_find,
    .host_get = pg_host_get,
    .hosts_list = pg_hosts_list,
    .host_address_owner = pg_host_address_owner,
    .host_mac_owner = pg_host_mac_owner,
    .host_put = pg_host_put,
    .host_delete = pg_host_delete,
    .host_macs = pg_host_macs,
    .mac_put = pg_mac_put,
    .mac_delete = pg_mac_delete,
    .mac_find = pg_mac_find,
    .duid_put = pg_duid_put,
    .profile_find = pg_profile_find,
    .profile_put = pg_profile_put,
    .profile_load = pg_profile_load,
    .profiles_list = pg_profiles_list,
    .images_gc = pg_images_gc,
    .images_list = pg_images_list,
    .install_active_of_host = pg_install_active_of_host,
    .install_last_of_host = pg_install_last_of_host,
    .install_find = pg_install_find,
    .installs_count = pg_installs_count,
    .install_insert = pg_install_insert,
    .install_set_state = pg_install_set_state,
    .install_set_progress = pg_install_set_progress,
    .install_set_message = pg_install_set_message,
    .installs_requested_set_state = pg_installs_requested_set_state,
    .installs_due = pg_installs_due,
    .intents_of_rack = pg_intents_of_rack,
    .power_insert = pg_power_insert,
    .power_find = pg_power_find,
    .power_finish = pg_power_finish,
    .host_power_set = pg_host_power_set,
    .power_list = pg_power_list,
    .rack_power = pg_rack_power,
    .power_due = pg_power_due,
    .event_insert = pg_event_insert,
    .event_find = pg_event_find,
    .events_stored_in = pg_events_stored_in,
    .events_phases_elsewhere = pg_events_phases_elsewhere,
    .events_list = pg_events_list,
    .events_last_seq = pg_events_last_seq,
    .events_prune_received = pg_events_prune_received,
    .events_prune_refused = pg_events_prune_refused,
    .status_get = pg_status_get,
    .status_list = pg_status_list,
    .audit_insert = pg_audit_insert,
    .audit_list = pg_audit_list,
    .feed_open = pg_feed_open,
    .feed_close = pg_feed_close,
    .feed_fd = pg_feed_fd,
    .feed_read = pg_feed_read,
    .feed_events_stored = pg_feed_events_stored,
    .feed_reconnect = pg_feed_reconnect,
    .expiry_lock = pg_expiry_lock,
};
