/* store: see store.h.
 *
 * Durability: WAL with synchronous=FULL. In WAL mode NORMAL cannot corrupt
 * the file, but a power loss may drop the last commits; the controller acks
 * events (stored_through) and the agent then deletes them from its journal,
 * so an acked event lost that way would be lost for good. FULL syncs the
 * WAL on every commit; batches keep commits few (one per EventBatch).
 *
 * Cleanup style: __attribute__((cleanup)) throughout (stmt_resetp resets a
 * cached statement when it goes out of scope, so no read transaction stays
 * open and no statement keeps stale bindings). */
#include "store.h"
#include "fleet.h"
#include "store-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "hex.h"
#include "parse.h"
#include "rbproto.h"
#include "sha256.h"
#include "timeutil.h"
#include "util.h"

/* 'RBST': tells a rackboot store from any other SQLite file. */
#define STORE_APPLICATION_ID 0x52425354

#define ACTIVE_STATES "('requested','dispatched','booting','installing')"

/* ---- Schema ------------------------------------------------------------ */

/* Migration N takes a store from user_version N-1 to N, in one transaction.
 * Append only: a released step is never edited. */
static const char *const migrations[] = {
    /* 1: the initial schema. Internal integer keys; names, MACs, addresses
     * and install UUIDs are UNIQUE so every lookup path has an index. */
    /* STORE_APPLICATION_ID, 'RBST', in decimal as PRAGMA wants it. */
    "PRAGMA application_id = 1380078420;"
    "CREATE TABLE racks ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  generation INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1),"
    "  created_ms INTEGER NOT NULL"
    ") STRICT;"
    /* One agent per rack (its certificate names the rack), so the agent's
     * sync and event state is per rack: acked generation and the highest
     * contiguous event seq stored (the agent_seq of the design). */
    "CREATE TABLE agents ("
    "  rack_id INTEGER PRIMARY KEY REFERENCES racks(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  version TEXT NOT NULL DEFAULT '',"
    "  last_seen_ms INTEGER NOT NULL DEFAULT 0,"
    "  acked_generation INTEGER NOT NULL DEFAULT 0,"
    "  stored_through INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    "CREATE TABLE hosts ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  rack_id INTEGER NOT NULL REFERENCES racks(id),"
    "  address BLOB NOT NULL UNIQUE CHECK (length(address) = 16),"
    "  prefix_length INTEGER NOT NULL CHECK (prefix_length BETWEEN 1 AND 128),"
    "  gateway BLOB CHECK (gateway IS NULL OR length(gateway) = 16),"
    "  hostname TEXT NOT NULL"
    ") STRICT;"
    "CREATE INDEX hosts_rack ON hosts(rack_id, name);"
    "CREATE TABLE host_macs ("
    "  mac BLOB PRIMARY KEY CHECK (length(mac) = 6),"
    "  host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX host_macs_host ON host_macs(host_id, position);"
    /* DUID -> MAC bindings the agents learned (DUID-UUID clients). */
    "CREATE TABLE host_duids ("
    "  duid BLOB NOT NULL CHECK (length(duid) BETWEEN 3 AND 130),"
    "  mac BLOB NOT NULL REFERENCES host_macs(mac) ON DELETE CASCADE,"
    "  first_seen_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (duid, mac)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX host_duids_mac ON host_duids(mac, last_seen_ms);"
    /* An image is its content at its origin: sha256 + url. */
    "CREATE TABLE images ("
    "  id INTEGER PRIMARY KEY,"
    "  sha256 BLOB NOT NULL CHECK (length(sha256) = 32),"
    "  url TEXT NOT NULL,"
    "  size INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),"
    "  name TEXT NOT NULL,"
    "  kind INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 4),"
    "  UNIQUE (sha256, url)"
    ") STRICT;"
    "CREATE TABLE profiles ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  cmdline TEXT NOT NULL,"
    "  kickstart TEXT NOT NULL,"
    "  kickstart_sha256 BLOB NOT NULL CHECK (length(kickstart_sha256) = 32),"
    "  overlay INTEGER NOT NULL CHECK (overlay IN (0, 1)),"
    "  ip_mode INTEGER NOT NULL CHECK (ip_mode IN (0, 1)),"
    "  keep_ra INTEGER NOT NULL CHECK (keep_ra IN (0, 1)),"
    "  updated_ms INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE profile_images ("
    "  profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  image_id INTEGER NOT NULL REFERENCES images(id),"
    "  kind INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 4),"
    "  name TEXT NOT NULL,"
    "  PRIMARY KEY (profile_id, position),"
    "  UNIQUE (profile_id, name)"
    ") STRICT;"
    "CREATE INDEX profile_images_image ON profile_images(image_id);"
    /* Timestamps: NULL until the state is entered. generation: the rack
     * generation that first carried the intent (an ack of it or later
     * dispatches the install). */
    "CREATE TABLE installs ("
    "  id INTEGER PRIMARY KEY,"
    "  uuid TEXT NOT NULL UNIQUE,"
    "  host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,"
    "  profile_id INTEGER NOT NULL REFERENCES profiles(id),"
    "  state TEXT NOT NULL CHECK (state IN ('requested','dispatched','booting','installing',"
    "                                       'installed','failed','cancelled','timed_out')),"
    "  token TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL CHECK (attempt >= 1),"
    "  generation INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  dispatched_ms INTEGER,"
    "  booting_ms INTEGER,"
    "  installing_ms INTEGER,"
    "  finished_ms INTEGER,"
    "  phase INTEGER NOT NULL DEFAULT 0,"
    "  percent INTEGER NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),"
    "  message TEXT NOT NULL DEFAULT '',"
    "  updated_ms INTEGER NOT NULL"
    ") STRICT;"
    /* A host has at most one active install. */
    "CREATE UNIQUE INDEX installs_one_active ON installs(host_id) WHERE state IN " ACTIVE_STATES ";"
    "CREATE INDEX installs_host ON installs(host_id, id);"
    "CREATE INDEX installs_active_state ON installs(state) WHERE state IN " ACTIVE_STATES ";"
    "CREATE INDEX installs_profile ON installs(profile_id);"
    /* id is the controller-wide event seq (EventRow.seq). Refused events
     * are kept (install_id NULL, refused says why) so a re-sent one is
     * recognised, and for audit. */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  rack_id INTEGER NOT NULL REFERENCES racks(id),"
    "  agent_seq INTEGER NOT NULL CHECK (agent_seq >= 1),"
    "  install_id INTEGER REFERENCES installs(id) ON DELETE CASCADE,"
    "  host TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  received_ms INTEGER NOT NULL,"
    "  phase INTEGER NOT NULL,"
    "  percent INTEGER NOT NULL,"
    "  message TEXT NOT NULL,"
    "  refused TEXT,"
    "  UNIQUE (rack_id, agent_seq),"
    "  CHECK ((install_id IS NULL) = (refused IS NOT NULL))"
    ") STRICT;"
    "CREATE INDEX events_install ON events(install_id, id) WHERE install_id IS NOT NULL;",
    /* 2: agents' journals. An agent whose state was wiped starts a new
     * journal at seq 1; its events must not be taken for the old journal's.
     * Each journal id the rack's agent sends starts a new epoch, and events
     * are unique per (rack, epoch, seq). SQLite cannot change a UNIQUE
     * constraint in place: the events table is rebuilt, ids kept. */
    "ALTER TABLE agents ADD COLUMN journal TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE agents ADD COLUMN journal_epoch INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE events_v2 ("
    "  id INTEGER PRIMARY KEY,"
    "  rack_id INTEGER NOT NULL REFERENCES racks(id),"
    "  journal_epoch INTEGER NOT NULL DEFAULT 0,"
    "  agent_seq INTEGER NOT NULL CHECK (agent_seq >= 1),"
    "  install_id INTEGER REFERENCES installs(id) ON DELETE CASCADE,"
    "  host TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  received_ms INTEGER NOT NULL,"
    "  phase INTEGER NOT NULL,"
    "  percent INTEGER NOT NULL,"
    "  message TEXT NOT NULL,"
    "  refused TEXT,"
    "  UNIQUE (rack_id, journal_epoch, agent_seq),"
    "  CHECK ((install_id IS NULL) = (refused IS NOT NULL))"
    ") STRICT;"
    "INSERT INTO events_v2 (id, rack_id, journal_epoch, agent_seq, install_id, host, time_ms, "
    "  received_ms, phase, percent, message, refused) "
    "  SELECT id, rack_id, 0, agent_seq, install_id, host, time_ms, received_ms, phase, percent, "
    "  message, refused FROM events;"
    "DROP TABLE events;"
    "ALTER TABLE events_v2 RENAME TO events;"
    "CREATE INDEX events_install ON events(install_id, id) WHERE install_id IS NOT NULL;",
    /* 3: profiles may let any address fetch their hosts' scripts and
     * kickstarts (hosts file `source_check = no`). */
    "ALTER TABLE profiles ADD COLUMN any_source INTEGER NOT NULL DEFAULT 0 "
    "CHECK (any_source IN (0, 1));",
    /* 4: retention (store_events_prune): old events are found by the time
     * they were received, refused ones by their own index, so neither
     * search reads the whole table. */
    "CREATE INDEX events_received ON events(received_ms);"
    "CREATE INDEX events_refused ON events(id) WHERE refused IS NOT NULL;",
    /* 5: the audit log of the operators' API (store_audit_append). Names
     * are space-separated text: they hold no spaces, and the log is read
     * whole, never searched by name. */
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  time_ms INTEGER NOT NULL,"
    "  who TEXT NOT NULL,"
    "  verb TEXT NOT NULL,"
    "  hosts TEXT NOT NULL,"
    "  host_count INTEGER NOT NULL CHECK (host_count >= 0),"
    "  profiles TEXT NOT NULL,"
    "  ok INTEGER NOT NULL CHECK (ok IN (0, 1)),"
    "  result TEXT NOT NULL"
    ") STRICT;"
    "CREATE INDEX audit_time ON audit(time_ms);",
};

/* ---- Statements -------------------------------------------------------- */

#define INSTALL_COLS_FOR_INTENT                                                                    \
    "i.uuid, i.token, i.attempt, i.state, i.profile_id, h.id, h.name, r.name, h.address, "         \
    "h.prefix_length, h.gateway, h.hostname"
#define HOST_COLS "h.id, h.name, r.name, h.address, h.prefix_length, h.gateway, h.hostname"
#define STATUS_SELECT                                                                              \
    "SELECT h.name, r.name, i.uuid, p.name, i.state, i.phase, i.percent, i.updated_ms, "           \
    "i.attempt, i.message FROM hosts h JOIN racks r ON r.id = h.rack_id "                          \
    "LEFT JOIN installs i ON i.id = (SELECT max(id) FROM installs WHERE host_id = h.id) "          \
    "LEFT JOIN profiles p ON p.id = i.profile_id "

/* The current journal epoch of the rack ?1 (0 before any agent). */
#define JOURNAL_EPOCH_OF_RACK "coalesce((SELECT journal_epoch FROM agents WHERE rack_id = ?1), 0)"

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_RACK_BY_NAME,
    ST_RACK_INSERT,
    ST_RACK_BUMP,
    ST_RACKS_LIST,
    ST_AGENT_ENSURE,
    ST_AGENT_JOURNAL,
    ST_AGENT_JOURNAL_SET,
    ST_AGENT_SEEN,
    ST_AGENT_ACK,
    ST_AGENT_STORED,
    ST_AGENT_THROUGH,
    ST_HOST_BY_NAME,
    ST_HOST_ADDR_OWNER,
    ST_HOST_MAC_OWNER,
    ST_HOST_INSERT,
    ST_HOST_UPDATE,
    ST_HOST_DELETE,
    ST_HOST_GET,
    ST_HOSTS_LIST,
    ST_HOSTS_OF_RACK,
    ST_MACS_OF_HOST,
    ST_MAC_DELETE,
    ST_MAC_UPSERT,
    ST_DUID_OF_HOST,
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
    ST_INSTALL_SET_STATE,
    ST_INSTALL_SET_PHASE,
    ST_INSTALL_SET_NOTE,
    ST_INSTALL_BY_UUID,
    ST_INTENTS_OF_RACK,
    ST_REQUESTED_OF_RACK,
    ST_OVERDUE,
    ST_EVENT_INSERT,
    ST_EVENT_EXISTS,
    ST_STATUS_HOST,
    ST_STATUS_LIST,
    ST_STATUS_OF_RACK,
    ST_EVENTS_ALL,
    ST_EVENTS_HOST,
    ST_EVENTS_PRUNE_OLD,
    ST_EVENTS_PRUNE_REFUSED,
    ST_AUDIT_INSERT,
    ST_AUDIT_LIST,
    _ST_MAX,
};

static const char *const statements[_ST_MAX] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT op",
    [ST_RELEASE] = "RELEASE op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO op",
    [ST_RACK_BY_NAME] = "SELECT id, generation FROM racks WHERE name = ?1",
    [ST_RACK_INSERT] = "INSERT INTO racks (name, created_ms) VALUES (?1, ?2) "
                       "ON CONFLICT (name) DO UPDATE SET name = name RETURNING id, generation",
    [ST_RACK_BUMP] = "UPDATE racks SET generation = generation + 1 WHERE id = ?1",
    [ST_RACKS_LIST] = "SELECT r.name, coalesce(a.name, ''), coalesce(a.version, ''), "
                      "coalesce(a.last_seen_ms, 0), r.generation, coalesce(a.acked_generation, 0), "
                      "coalesce(a.stored_through, 0), "
                      "(SELECT count(*) FROM hosts WHERE rack_id = r.id), "
                      "(SELECT count(*) FROM hosts h JOIN installs i ON i.host_id = h.id AND "
                      "i.state IN " ACTIVE_STATES " WHERE h.rack_id = r.id) "
                      "FROM racks r LEFT JOIN agents a ON a.rack_id = r.id ORDER BY r.name",
    [ST_AGENT_ENSURE] = "INSERT INTO agents (rack_id) VALUES (?1) ON CONFLICT DO NOTHING",
    [ST_AGENT_SEEN] =
        "UPDATE agents SET name = ?2, version = ?3, last_seen_ms = ?4 WHERE rack_id = ?1",
    [ST_AGENT_ACK] =
        "UPDATE agents SET acked_generation = ?2, last_seen_ms = ?3 WHERE rack_id = ?1",
    [ST_AGENT_STORED] =
        "UPDATE agents SET stored_through = ?2, last_seen_ms = ?3 WHERE rack_id = ?1 "
        "RETURNING stored_through",
    [ST_AGENT_THROUGH] = "SELECT stored_through FROM agents WHERE rack_id = ?1",
    [ST_HOST_BY_NAME] = "SELECT id, rack_id FROM hosts WHERE name = ?1",
    [ST_HOST_ADDR_OWNER] = "SELECT name FROM hosts WHERE address = ?1 AND name != ?2",
    [ST_HOST_MAC_OWNER] = "SELECT h.name FROM host_macs m JOIN hosts h ON h.id = m.host_id "
                          "WHERE m.mac = ?1 AND h.name != ?2",
    [ST_HOST_INSERT] =
        "INSERT INTO hosts (name, rack_id, address, prefix_length, gateway, hostname) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
    [ST_HOST_UPDATE] = "UPDATE hosts SET rack_id = ?2, address = ?3, prefix_length = ?4, "
                       "gateway = ?5, hostname = ?6 WHERE id = ?1",
    [ST_HOST_DELETE] = "DELETE FROM hosts WHERE id = ?1",
    [ST_HOST_GET] = "SELECT " HOST_COLS " FROM hosts h JOIN racks r ON r.id = h.rack_id "
                    "WHERE h.name = ?1",
    /* Separate statements with and without a rack: "?1 IS NULL OR r.name =
     * ?1" keeps SQLite from using the rack's index (a scan of every host per
     * rack, 500 times for an install of 500 racks). */
    [ST_HOSTS_LIST] = "SELECT " HOST_COLS " FROM hosts h JOIN racks r ON r.id = h.rack_id "
                      "ORDER BY h.name",
    [ST_HOSTS_OF_RACK] = "SELECT " HOST_COLS " FROM hosts h JOIN racks r ON r.id = h.rack_id "
                         "WHERE r.name = ?1 ORDER BY h.name",
    [ST_MACS_OF_HOST] = "SELECT mac FROM host_macs WHERE host_id = ?1 ORDER BY position",
    [ST_MAC_DELETE] = "DELETE FROM host_macs WHERE mac = ?1",
    [ST_MAC_UPSERT] = "INSERT INTO host_macs (mac, host_id, position) VALUES (?1, ?2, ?3) "
                      "ON CONFLICT (mac) DO UPDATE SET host_id = excluded.host_id, "
                      "position = excluded.position",
    [ST_DUID_OF_HOST] = "SELECT d.duid FROM host_duids d JOIN host_macs m ON m.mac = d.mac "
                        "WHERE m.host_id = ?1 ORDER BY d.last_seen_ms DESC LIMIT 1",
    [ST_DUID_UPSERT] = "INSERT INTO host_duids (duid, mac, first_seen_ms, last_seen_ms) "
                       "VALUES (?1, ?2, ?3, ?3) ON CONFLICT (duid, mac) DO UPDATE SET "
                       "last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
    [ST_MAC_HOST] = "SELECT host_id FROM host_macs WHERE mac = ?1",
    [ST_ACTIVE_OF_HOST] =
        "SELECT id, uuid, state FROM installs WHERE host_id = ?1 AND state IN " ACTIVE_STATES,
    [ST_LAST_OF_HOST] =
        "SELECT state, attempt FROM installs WHERE host_id = ?1 ORDER BY id DESC LIMIT 1",
    [ST_PROFILE_BY_NAME] = "SELECT id FROM profiles WHERE name = ?1",
    [ST_PROFILE_UPSERT] =
        "INSERT INTO profiles (name, cmdline, kickstart, kickstart_sha256, overlay, ip_mode, "
        "keep_ra, updated_ms, any_source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
        "ON CONFLICT (name) DO UPDATE "
        "SET cmdline = excluded.cmdline, kickstart = excluded.kickstart, "
        "kickstart_sha256 = excluded.kickstart_sha256, overlay = excluded.overlay, "
        "ip_mode = excluded.ip_mode, keep_ra = excluded.keep_ra, updated_ms = excluded.updated_ms, "
        "any_source = excluded.any_source "
        "RETURNING id",
    [ST_PROFILE_GET] = "SELECT id, name, cmdline, CASE WHEN ?2 THEN kickstart ELSE '' END, "
                       "kickstart_sha256, overlay, ip_mode, keep_ra, any_source FROM profiles "
                       "WHERE id = ?1",
    [ST_PROFILES_LIST] = "SELECT id FROM profiles ORDER BY name",
    [ST_PROFILE_IMAGES_DELETE] = "DELETE FROM profile_images WHERE profile_id = ?1",
    [ST_PROFILE_IMAGES_OF] = "SELECT pi.name, pi.kind, im.url, im.sha256, im.size "
                             "FROM profile_images pi JOIN images im ON im.id = pi.image_id "
                             "WHERE pi.profile_id = ?1 ORDER BY pi.position",
    [ST_IMAGE_UPSERT] =
        "INSERT INTO images (sha256, url, size, name, kind) VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT (sha256, url) DO UPDATE SET size = excluded.size, "
        "name = excluded.name, kind = excluded.kind RETURNING id",
    [ST_PROFILE_IMAGE_INSERT] =
        "INSERT INTO profile_images (profile_id, position, image_id, kind, name) "
        "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_IMAGES_GC] = "DELETE FROM images WHERE NOT EXISTS "
                     "(SELECT 1 FROM profile_images WHERE image_id = images.id)",
    [ST_IMAGES_LIST] = "SELECT p.name, pi.name, pi.kind, im.url, im.sha256, im.size "
                       "FROM profile_images pi JOIN profiles p ON p.id = pi.profile_id "
                       "JOIN images im ON im.id = pi.image_id ORDER BY p.name, pi.name",
    [ST_BUMP_RACKS_OF_PROFILE] =
        "UPDATE racks SET generation = generation + 1 WHERE id IN "
        "(SELECT h.rack_id FROM installs i JOIN hosts h ON h.id = i.host_id "
        "WHERE i.profile_id = ?1 AND i.state IN " ACTIVE_STATES ")",
    [ST_INSTALL_INSERT] =
        "INSERT INTO installs (uuid, host_id, profile_id, state, token, attempt, generation, "
        "created_ms, updated_ms) VALUES (?1, ?2, ?3, 'requested', ?4, ?5, "
        "(SELECT generation FROM racks WHERE id = ?6), ?7, ?7)",
    [ST_INSTALL_SET_STATE] =
        "UPDATE installs SET state = ?2, updated_ms = ?3, "
        "dispatched_ms = CASE WHEN ?2 = 'dispatched' THEN ?3 ELSE dispatched_ms END, "
        "booting_ms = CASE WHEN ?2 = 'booting' THEN ?3 ELSE booting_ms END, "
        "installing_ms = CASE WHEN ?2 = 'installing' THEN ?3 ELSE installing_ms END, "
        "finished_ms = CASE WHEN ?2 IN ('installed','failed','cancelled','timed_out') "
        "THEN ?3 ELSE finished_ms END, message = coalesce(?4, message) WHERE id = ?1",
    [ST_INSTALL_SET_PHASE] = "UPDATE installs SET phase = ?2, percent = ?3, message = ?4, "
                             "updated_ms = ?5 WHERE id = ?1",
    [ST_INSTALL_SET_NOTE] = "UPDATE installs SET message = ?2, updated_ms = ?3 WHERE id = ?1",
    [ST_INSTALL_BY_UUID] = "SELECT id, host_id, state, phase FROM installs WHERE uuid = ?1",
    [ST_INTENTS_OF_RACK] = "SELECT " INSTALL_COLS_FOR_INTENT " FROM hosts h "
                           "JOIN racks r ON r.id = h.rack_id "
                           "JOIN installs i ON i.host_id = h.id AND i.state IN " ACTIVE_STATES
                           " WHERE h.rack_id = ?1 ORDER BY i.id",
    [ST_REQUESTED_OF_RACK] =
        "SELECT i.id, i.state FROM hosts h JOIN installs i ON i.host_id = h.id "
        "AND i.state IN " ACTIVE_STATES " WHERE h.rack_id = ?1 "
        "AND i.state = 'requested' AND i.generation <= ?2",
    /* A coarse filter; install_deadline() decides. */
    [ST_OVERDUE] = "SELECT i.id, i.state, i.created_ms, coalesce(i.dispatched_ms, 0), "
                   "coalesce(i.booting_ms, 0), coalesce(i.installing_ms, 0), h.rack_id "
                   "FROM installs i JOIN hosts h ON h.id = i.host_id "
                   "WHERE i.state IN " ACTIVE_STATES " AND ("
                   "(?2 > 0 AND i.state IN ('dispatched','booting') AND "
                   "coalesce(i.dispatched_ms, i.booting_ms) <= ?1 - ?2) OR "
                   "(?3 > 0 AND i.state = 'installing' AND i.installing_ms <= ?1 - ?3))",
    [ST_EVENT_INSERT] =
        "INSERT INTO events (rack_id, journal_epoch, agent_seq, install_id, host, time_ms, "
        "received_ms, phase, percent, message, refused) VALUES (?1, " JOURNAL_EPOCH_OF_RACK
        ", ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
        "ON CONFLICT (rack_id, journal_epoch, agent_seq) DO NOTHING",
    [ST_EVENT_EXISTS] =
        "SELECT 1 FROM events WHERE rack_id = ?1 AND journal_epoch = " JOURNAL_EPOCH_OF_RACK
        " AND agent_seq = ?2",
    [ST_AGENT_JOURNAL] = "SELECT journal FROM agents WHERE rack_id = ?1",
    [ST_AGENT_JOURNAL_SET] =
        "UPDATE agents SET journal = ?2, journal_epoch = journal_epoch + ?3, "
        "stored_through = CASE WHEN ?3 > 0 THEN 0 ELSE stored_through END WHERE rack_id = ?1",
    [ST_STATUS_HOST] = STATUS_SELECT "WHERE h.name = ?1",
    [ST_STATUS_LIST] = STATUS_SELECT "ORDER BY h.name",
    [ST_STATUS_OF_RACK] = STATUS_SELECT "WHERE r.name = ?1 ORDER BY h.name",
    [ST_EVENTS_ALL] = "SELECT e.id, e.time_ms, h.name, i.uuid, e.phase, e.percent, e.message "
                      "FROM events e JOIN installs i ON i.id = e.install_id "
                      "JOIN hosts h ON h.id = i.host_id WHERE e.id > ?1 ORDER BY e.id LIMIT ?2",
    [ST_EVENTS_HOST] = "SELECT e.id, e.time_ms, h.name, i.uuid, e.phase, e.percent, e.message "
                       "FROM hosts h JOIN installs i ON i.host_id = h.id "
                       "JOIN events e ON e.install_id = i.id AND e.id > ?1 "
                       "WHERE h.id = ?2 ORDER BY e.id LIMIT ?3",
    /* An event may go once its agent cannot send it again as new: its seq
     * is at or below the rack's stored_through (a re-sent one is then a
     * duplicate without its row), or it is of an older journal. */
    [ST_EVENTS_PRUNE_OLD] =
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e "
        "JOIN agents a ON a.rack_id = e.rack_id WHERE e.received_ms < ?1 AND "
        "(e.journal_epoch < a.journal_epoch OR e.agent_seq <= a.stored_through) "
        "ORDER BY e.received_ms LIMIT ?2)",
    /* Refused events older than the ?1 newest ones. */
    [ST_EVENTS_PRUNE_REFUSED] =
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e "
        "JOIN agents a ON a.rack_id = e.rack_id WHERE e.refused IS NOT NULL AND "
        "e.id <= (SELECT id FROM events WHERE refused IS NOT NULL ORDER BY id DESC "
        "LIMIT 1 OFFSET ?1) AND "
        "(e.journal_epoch < a.journal_epoch OR e.agent_seq <= a.stored_through) "
        "ORDER BY e.id LIMIT ?2)",
    [ST_AUDIT_INSERT] = "INSERT INTO audit (time_ms, who, verb, hosts, host_count, profiles, ok, "
                        "result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    /* By id, not time: pages continue after a seq (a clock stepped back
     * must not hide rows from the next page). */
    [ST_AUDIT_LIST] = "SELECT id, time_ms, who, verb, hosts, host_count, profiles, ok, result "
                      "FROM audit WHERE time_ms >= ?1 AND id > ?3 ORDER BY id LIMIT ?2",
};

struct store {
    sqlite3 *db;
    char *path;  /* for store_connect() */
    int lock_fd; /* -1 on a store_connect() connection: its parent holds the lock */
    sqlite3_stmt *stmts[_ST_MAX];
    bool in_batch; /* store_batch_begin(): operations are savepoints */
    char errmsg[512];
};

/* ---- Helpers ----------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int fail(store *s, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
    return r;
}

static int sqlite_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_NOTADB:
        return -EPROTO;
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return -EACCES;
    default:
        return -EIO;
    }
}

/* Turns an SQLite result into -errno with the reason in errmsg. */
static int db_fail(store *s, int rc, const char *what)
{
    return fail(s, sqlite_errno(rc) ?: -EIO, "%s: %s", what, sqlite3_errmsg(s->db));
}

static int stmt_get(store *s, int id, sqlite3_stmt **ret)
{
    if (!s->stmts[id]) {
        int rc = sqlite3_prepare_v3(s->db, statements[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            return db_fail(s, rc, "prepare");
        }
    }
    *ret = s->stmts[id];
    return 0;
}

static void stmt_resetp(sqlite3_stmt **st)
{
    if (*st) {
        sqlite3_reset(*st);
        sqlite3_clear_bindings(*st);
    }
}
#define _cleanup_stmt_ _cleanup_(stmt_resetp)

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        int _r = (expr);                                                                           \
        if (_r < 0) {                                                                              \
            return _r;                                                                             \
        }                                                                                          \
    } while (0)

/* Steps a statement: 1 with a row, 0 when done, -errno on failure. */
static int step(store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    return db_fail(s, rc, "step");
}

/* Runs a statement that returns no rows we need. */
static int step_done(store *s, sqlite3_stmt *st)
{
    int r;
    while ((r = step(s, st)) == 1) {
    }
    return r;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v) {
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, i);
    }
}

static void bind_blob(sqlite3_stmt *st, int i, const void *v, size_t n)
{
    sqlite3_bind_blob(st, i, v, (int)n, SQLITE_STATIC);
}

static void bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
    /* Times and generations fit in 63 bits; clamp instead of wrapping. */
    sqlite3_bind_int64(st, i, v > INT64_MAX ? INT64_MAX : (sqlite3_int64)v);
}

static uint64_t col_u64(sqlite3_stmt *st, int i)
{
    sqlite3_int64 v = sqlite3_column_int64(st, i);
    return v < 0 ? 0 : (uint64_t)v;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static int exec(store *s, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        int r = fail(s, sqlite_errno(rc) ?: -EIO, "%s", err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        return r;
    }
    return 0;
}

static int tx_run(store *s, int id)
{
    sqlite3_stmt *st;
    TRY(stmt_get(s, id, &st));
    int r = step_done(s, st);
    sqlite3_reset(st);
    return r;
}

/* One operation: a transaction of its own, or a savepoint inside a batch
 * (so a failed operation undoes only itself). */
static int tx_begin(store *s)
{
    return tx_run(s, s->in_batch ? ST_SAVEPOINT : ST_BEGIN);
}

/* Commits when r >= 0, else rolls back; returns r, or the commit's error. */
static int tx_end(store *s, int r)
{
    if (s->in_batch) {
        if (r < 0 && sqlite3_get_autocommit(s->db)) {
            /* SQLite rolled the whole batch back (disk full, I/O error):
             * there is no savepoint left, and going on would commit the
             * rest of the batch piecemeal. */
            return -EIO;
        }
        if (r < 0) {
            char saved[sizeof(s->errmsg)];
            memcpy(saved, s->errmsg, sizeof(saved));
            (void)tx_run(s, ST_ROLLBACK_TO);
            memcpy(s->errmsg, saved, sizeof(saved));
        }
        int c = tx_run(s, ST_RELEASE);
        return r < 0 ? r : c < 0 ? c : r;
    }
    if (r >= 0) {
        int c = tx_run(s, ST_COMMIT);
        if (c >= 0) {
            return r;
        }
        r = c;
    }
    if (!sqlite3_get_autocommit(s->db)) {
        char saved[sizeof(s->errmsg)];
        memcpy(saved, s->errmsg, sizeof(saved));
        (void)tx_run(s, ST_ROLLBACK);
        memcpy(s->errmsg, saved, sizeof(saved));
    }
    return r;
}

int store_batch_begin(store *s)
{
    RB_ASSERT(!s->in_batch);
    int r = tx_run(s, ST_BEGIN);
    if (r >= 0) {
        s->in_batch = true;
    }
    return r;
}

int store_batch_end(store *s, bool commit)
{
    RB_ASSERT(s->in_batch);
    s->in_batch = false;
    if (!commit) {
        return tx_run(s, ST_ROLLBACK);
    }
    return tx_end(s, 0);
}

static const char *state_name(install_state st)
{
    const char *n = install_state_to_string(st);
    RB_ASSERT(n);
    return n;
}

static int col_state(store *s, sqlite3_stmt *st, int i, install_state *ret)
{
    if (install_state_from_string(col_text(st, i), ret) < 0) {
        return fail(s, -EIO, "store: unknown install state '%s'", col_text(st, i));
    }
    return 0;
}

static void format_addr(const uint8_t a[16], char buf[INET6_ADDRSTRLEN])
{
    if (!inet_ntop(AF_INET6, a, buf, INET6_ADDRSTRLEN)) {
        snprintf(buf, INET6_ADDRSTRLEN, "?");
    }
}

/* ---- Open, migrate, close ---------------------------------------------- */

static int read_pragma_int(store *s, const char *pragma, int *ret)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, pragma, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return db_fail(s, rc, pragma);
    }
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int r = db_fail(s, rc, pragma);
        sqlite3_finalize(st);
        return r;
    }
    *ret = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

const char *store_migration_sql(int version)
{
    return version >= 1 && version <= (int)ARRAY_SIZE(migrations) ? migrations[version - 1] : NULL;
}

static int migrate(store *s)
{
    int version, app_id;

    TRY(read_pragma_int(s, "PRAGMA user_version", &version));
    TRY(read_pragma_int(s, "PRAGMA application_id", &app_id));
    if (app_id != 0 && app_id != STORE_APPLICATION_ID) {
        return fail(s, -EPROTO, "not a rackboot store (application_id %d)", app_id);
    }
    if (version > (int)ARRAY_SIZE(migrations)) {
        return fail(s, -EPROTO,
                    "store schema version %d is newer than this controller's %d: "
                    "run a newer rackboot-controller",
                    version, (int)ARRAY_SIZE(migrations));
    }
    if (version < 0) {
        return fail(s, -EPROTO, "store schema version %d is invalid", version);
    }
    for (int v = version + 1; v <= (int)ARRAY_SIZE(migrations); v++) {
        char set[64];
        snprintf(set, sizeof(set), "PRAGMA user_version = %d", v);
        TRY(exec(s, "BEGIN IMMEDIATE"));
        int r = exec(s, migrations[v - 1]);
        if (r >= 0) {
            r = exec(s, set);
        }
        if (r >= 0) {
            r = exec(s, "COMMIT");
        }
        if (r < 0) {
            char saved[sizeof(s->errmsg)];
            memcpy(saved, s->errmsg, sizeof(saved));
            (void)exec(s, "ROLLBACK");
            snprintf(s->errmsg, sizeof(s->errmsg), "migration to schema %d: %s", v, saved);
            return r;
        }
    }
    return 0;
}

/* The store holds install tokens and the fleet's layout: its files are
 * 0600 whatever the umask and the directory. SQLite creates the database
 * 0644 & ~umask and gives -wal and -shm the database's mode, so the
 * database is created (or tightened) here, before SQLite opens it. `suffix`
 * "" is the database itself (created when missing); other files are only
 * tightened when they exist. */
static int db_files_private(store *s, const char *path, const char *suffix)
{
    _cleanup_free_ char *name = NULL;
    if (asprintf(&name, "%s%s", path, suffix) < 0) {
        return -ENOMEM;
    }
    int flags = O_RDWR | O_CLOEXEC | O_NOCTTY | (*suffix ? 0 : O_CREAT);
    _cleanup_close_ int fd = open(name, flags, 0600);
    if (fd < 0 && errno == ENOENT && *suffix) {
        return 0;
    }
    if (fd < 0 || fchmod(fd, 0600) < 0) {
        int r = negative_errno();
        return fail(s, r, "%s: %s", name, strerror(-r));
    }
    return 0;
}

/* The connection and its settings, on a file already made private. */
static int connect_db(store *s, const char *path)
{
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        return fail(s, sqlite_errno(rc) ?: -EIO, "%s: %s", path,
                    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    }
    sqlite3_extended_result_codes(s->db, 1);
    TRY(exec(s, "PRAGMA busy_timeout = 5000"));
    return exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
}

static int open_db(store *s, const char *path)
{
    _cleanup_free_ char *lock_path = NULL;
    if (asprintf(&lock_path, "%s.lock", path) < 0) {
        return -ENOMEM;
    }
    s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0 || fchmod(s->lock_fd, 0600) < 0) {
        int r = negative_errno();
        return fail(s, r, "%s: %s", lock_path, strerror(-r));
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        int r = negative_errno();
        if (r == -EWOULDBLOCK) {
            return fail(s, -EBUSY, "%s is in use by another process", path);
        }
        return fail(s, r, "%s: %s", lock_path, strerror(-r));
    }
    TRY(db_files_private(s, path, ""));
    int rc = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        return fail(s, sqlite_errno(rc) ?: -EIO, "%s: %s", path,
                    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    }
    sqlite3_extended_result_codes(s->db, 1);
    TRY(exec(s, "PRAGMA busy_timeout = 5000"));
    /* journal_mode answers with the mode it got; WAL may be refused (e.g. on
     * a file system without shared memory), and we rely on it. */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_ROW) {
        int r = db_fail(s, rc, path);
        sqlite3_finalize(st);
        return r;
    }
    bool wal = strcmp(col_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (!wal) {
        return fail(s, -EIO, "%s: WAL mode not available", path);
    }
    /* SQLite gives -wal and -shm the database's mode, but files left by
     * an older version may be looser. */
    TRY(db_files_private(s, path, "-wal"));
    TRY(db_files_private(s, path, "-shm"));
    TRY(exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"));
    return migrate(s);
}

int store_open(const char *path, store **ret, char **ret_errmsg)
{
    if (!path || !ret) {
        return -EINVAL;
    }
    store *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->lock_fd = -1;
    s->path = strdup(path);
    int r = s->path ? open_db(s, path) : -ENOMEM;
    if (r < 0) {
        if (ret_errmsg) {
            *ret_errmsg = strdup(s->errmsg[0] ? s->errmsg : strerror(-r));
        }
        store_close(s);
        return r;
    }
    *ret = s;
    return 0;
}

#define SQLITE_URL_PREFIX "sqlite://"

/* Splits a store URL: 0 and *ret_path (pointing into `url`) for
 * sqlite:///PATH, else a negative errno and *ret_why. */
static int url_parse(const char *url, const char **ret_path, const char **ret_why)
{
    size_t n = strlen(SQLITE_URL_PREFIX);
    if (!url || !*url) {
        *ret_why = "empty URL";
        return -EINVAL;
    }
    if (strncmp(url, SQLITE_URL_PREFIX, n) != 0) {
        if (strstr(url, "://")) {
            *ret_why = "unknown store backend (this build has sqlite://)";
            return -EPROTONOSUPPORT;
        }
        *ret_why = "not a URL (expected sqlite:///PATH)";
        return -EINVAL;
    }
    if (url[n] != '/' || url[n + 1] == '\0' || url[n + 1] == '/') {
        *ret_why = "expected sqlite:///PATH with an absolute PATH to the database file";
        return -EINVAL;
    }
    if (strpbrk(url + n, "?#")) {
        *ret_why = "a sqlite:// URL takes no query or fragment";
        return -EINVAL;
    }
    *ret_path = url + n;
    return 0;
}

int store_url_check(const char *url, const char **ret_why)
{
    const char *path = NULL;
    const char *why = NULL;
    int r = url_parse(url, &path, &why);
    if (r < 0 && ret_why) {
        *ret_why = why;
    }
    return r;
}

int store_open_url(const char *url, store **ret, char **ret_errmsg)
{
    const char *path = NULL;
    const char *why = NULL;
    int r = url_parse(url, &path, &why);
    if (r < 0) {
        if (ret_errmsg) {
            *ret_errmsg = strdup(why);
        }
        return r;
    }
    return store_open(path, ret, ret_errmsg);
}

int store_connect(const store *parent, store **ret, char **ret_errmsg)
{
    if (!parent || !ret) {
        return -EINVAL;
    }
    store *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->lock_fd = -1;
    s->path = strdup(parent->path);
    int r = s->path ? connect_db(s, s->path) : -ENOMEM;
    if (r < 0) {
        if (ret_errmsg) {
            *ret_errmsg = strdup(s->errmsg[0] ? s->errmsg : strerror(-r));
        }
        store_close(s);
        return r;
    }
    *ret = s;
    return 0;
}

store *store_close(store *s)
{
    if (!s) {
        return NULL;
    }
    free(s->path);
    for (size_t i = 0; i < _ST_MAX; i++) {
        sqlite3_finalize(s->stmts[i]);
    }
    sqlite3_close(s->db);
    if (s->lock_fd >= 0) {
        close(s->lock_fd);
    }
    free(s);
    return NULL;
}

const char *store_errmsg(const store *s)
{
    return s ? s->errmsg : "";
}

int store_schema_version(store *s)
{
    int v = 0;
    s->errmsg[0] = '\0';
    TRY(read_pragma_int(s, "PRAGMA user_version", &v));
    return v;
}

/* ---- Racks ------------------------------------------------------------- */

static int rack_find(store *s, const char *name, int64_t *ret_id, uint64_t *ret_generation)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_RACK_BY_NAME, &st));
    bind_text(st, 1, name);
    int r = step(s, st);
    if (r <= 0) {
        return r < 0 ? r : fail(s, -ENOENT, "no rack %s", name);
    }
    *ret_id = sqlite3_column_int64(st, 0);
    if (ret_generation) {
        *ret_generation = col_u64(st, 1);
    }
    return 0;
}

static int rack_ensure(store *s, const char *name, int64_t *ret_id)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_RACK_INSERT, &st));
    bind_text(st, 1, name);
    bind_u64(st, 2, now_realtime_ms());
    int r = step(s, st);
    if (r <= 0) {
        return r < 0 ? r : fail(s, -EIO, "rack %s: not created", name);
    }
    *ret_id = sqlite3_column_int64(st, 0);
    return step_done(s, st);
}

static int rack_bump(store *s, int64_t rack_id)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_RACK_BUMP, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    return step_done(s, st);
}

static int agent_ensure(store *s, int64_t rack_id)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_AGENT_ENSURE, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    return step_done(s, st);
}

/* The highest contiguous event seq stored for the rack; 0 before any. */
static int agent_through(store *s, int64_t rack_id, uint64_t *ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_AGENT_THROUGH, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    int r = step(s, st);
    TRY(r);
    *ret = r == 1 ? col_u64(st, 0) : 0;
    return 0;
}

static int agent_journal_tx(store *s, const char *rack, const char *journal_id)
{
    int64_t rack_id;
    TRY(rack_find(s, rack, &rack_id, NULL));
    TRY(agent_ensure(s, rack_id));
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_AGENT_JOURNAL, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    int r = step(s, st);
    TRY(r);
    const char *held = r == 1 ? col_text(st, 0) : "";
    if (streq(held, journal_id)) {
        return 0;
    }
    /* The first id on record is adopted as is (an agent that sent none
     * before); any other change is a new journal. */
    int new_epoch = *held != '\0';
    _cleanup_stmt_ sqlite3_stmt *up = NULL;
    TRY(stmt_get(s, ST_AGENT_JOURNAL_SET, &up));
    sqlite3_bind_int64(up, 1, rack_id);
    bind_text(up, 2, journal_id);
    sqlite3_bind_int(up, 3, new_epoch);
    TRY(step_done(s, up));
    return new_epoch;
}

int store_agent_journal(store *s, const char *rack, const char *journal_id)
{
    s->errmsg[0] = '\0';
    if (!journal_id || strlen(journal_id) > RBPROTO_MAX_ID) {
        return fail(s, -EINVAL, "invalid journal id");
    }
    if (!*journal_id) {
        return 0;
    }
    TRY(tx_begin(s));
    return tx_end(s, agent_journal_tx(s, rack, journal_id));
}

int store_racks_list(store *s, int (*cb)(const store_rack *r, void *userdata), void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;
    s->errmsg[0] = '\0';
    TRY(stmt_get(s, ST_RACKS_LIST, &st));
    while ((r = step(s, st)) == 1) {
        store_rack row = {
            .name = col_text(st, 0),
            .agent = col_text(st, 1),
            .agent_version = col_text(st, 2),
            .last_seen_ms = col_u64(st, 3),
            .generation = col_u64(st, 4),
            .acked_generation = col_u64(st, 5),
            .stored_through = col_u64(st, 6),
            .hosts = (uint32_t)sqlite3_column_int64(st, 7),
            .active_installs = (uint32_t)sqlite3_column_int64(st, 8),
        };
        TRY(cb(&row, userdata));
    }
    return r;
}

int store_rack_get(store *s, const char *rack, uint64_t *ret_generation,
                   uint64_t *ret_stored_through)
{
    int64_t id = 0;
    uint64_t gen = 0;
    s->errmsg[0] = '\0';
    TRY(rack_find(s, rack, &id, &gen));
    uint64_t through = 0;
    if (ret_stored_through) {
        TRY(agent_through(s, id, &through));
        *ret_stored_through = through;
    }
    if (ret_generation) {
        *ret_generation = gen;
    }
    return 0;
}

int store_agent_seen(store *s, const char *rack, const char *agent, const char *version,
                     uint64_t now)
{
    s->errmsg[0] = '\0';
    if (!fleet_object_name_valid(rack) || !fleet_object_name_valid(agent) || !version ||
        strlen(version) > RBPROTO_MAX_VERSION) {
        return fail(s, -EINVAL, "invalid rack, agent name or version");
    }
    int r = tx_begin(s);
    if (r < 0) {
        return r;
    }
    int64_t rack_id;
    r = rack_ensure(s, rack, &rack_id);
    if (r >= 0) {
        r = agent_ensure(s, rack_id);
    }
    if (r >= 0) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        r = stmt_get(s, ST_AGENT_SEEN, &st);
        if (r >= 0) {
            sqlite3_bind_int64(st, 1, rack_id);
            bind_text(st, 2, agent);
            bind_text(st, 3, version);
            bind_u64(st, 4, now);
            r = step_done(s, st);
        }
    }
    return tx_end(s, r);
}

/* ---- Hosts ------------------------------------------------------------- */

static int host_find(store *s, const char *name, int64_t *ret_id, int64_t *ret_rack_id)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_HOST_BY_NAME, &st));
    bind_text(st, 1, name);
    int r = step(s, st);
    if (r <= 0) {
        return r < 0 ? r : fail(s, -ENOENT, "no host %s", name);
    }
    *ret_id = sqlite3_column_int64(st, 0);
    if (ret_rack_id) {
        *ret_rack_id = sqlite3_column_int64(st, 1);
    }
    return 0;
}

/* The host's active install: 1 and its id, uuid, state; 0 if none. */
static int host_active(store *s, int64_t host_id, int64_t *ret_id, char ret_uuid[STORE_ID_LEN + 1],
                       install_state *ret_state)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_ACTIVE_OF_HOST, &st));
    sqlite3_bind_int64(st, 1, host_id);
    int r = step(s, st);
    if (r <= 0) {
        return r;
    }
    if (ret_id) {
        *ret_id = sqlite3_column_int64(st, 0);
    }
    if (ret_uuid) {
        snprintf(ret_uuid, STORE_ID_LEN + 1, "%s", col_text(st, 1));
    }
    if (ret_state) {
        TRY(col_state(s, st, 2, ret_state));
    }
    return 1;
}

static int host_add_tx(store *s, const store_host *h, bool update)
{
    int64_t host_id = 0, old_rack = 0, rack_id;
    int r = host_find(s, h->name, &host_id, &old_rack);
    if (r < 0 && r != -ENOENT) {
        return r;
    }
    bool exists = r == 0;
    s->errmsg[0] = '\0';
    if (exists && !update) {
        return fail(s, -EEXIST, "host %s exists", h->name);
    }
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_HOST_ADDR_OWNER, &st));
        bind_blob(st, 1, h->address, 16);
        bind_text(st, 2, h->name);
        r = step(s, st);
        if (r != 0) {
            char a[INET6_ADDRSTRLEN];
            format_addr(h->address, a);
            return r < 0 ? r
                         : fail(s, -EEXIST, "address %s is used by host %s", a, col_text(st, 0));
        }
    }
    for (size_t i = 0; i < h->n_macs; i++) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_HOST_MAC_OWNER, &st));
        bind_blob(st, 1, h->macs[i], 6);
        bind_text(st, 2, h->name);
        r = step(s, st);
        if (r != 0) {
            char m[FORMAT_MAC_LEN];
            format_mac(h->macs[i], m);
            return r < 0 ? r : fail(s, -EEXIST, "mac %s is used by host %s", m, col_text(st, 0));
        }
    }
    TRY(rack_ensure(s, h->rack, &rack_id));
    bool active = false;
    if (exists) {
        r = host_active(s, host_id, NULL, NULL, NULL);
        TRY(r);
        active = r == 1;
        if (active && rack_id != old_rack) {
            return fail(s, -EBUSY, "host %s has an active install: cancel it before moving racks",
                        h->name);
        }
    }
    const char *hostname = h->hostname[0] ? h->hostname : h->name;
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, exists ? ST_HOST_UPDATE : ST_HOST_INSERT, &st));
        if (exists) {
            sqlite3_bind_int64(st, 1, host_id);
        } else {
            bind_text(st, 1, h->name);
        }
        sqlite3_bind_int64(st, 2, rack_id);
        bind_blob(st, 3, h->address, 16);
        sqlite3_bind_int(st, 4, (int)h->prefix_length);
        if (h->has_gateway) {
            bind_blob(st, 5, h->gateway, 16);
        } else {
            sqlite3_bind_null(st, 5);
        }
        bind_text(st, 6, hostname);
        r = step(s, st);
        TRY(r);
        if (!exists) {
            if (r != 1) {
                return fail(s, -EIO, "host %s: not inserted", h->name);
            }
            host_id = sqlite3_column_int64(st, 0);
        }
        TRY(step_done(s, st));
    }
    if (exists) {
        /* Drop the MACs no longer listed (their learned DUIDs go with them);
         * keep the others, so their DUIDs stay. */
        uint8_t old[STORE_MACS_MAX * 2][6];
        size_t n_old = 0;
        {
            _cleanup_stmt_ sqlite3_stmt *st = NULL;
            TRY(stmt_get(s, ST_MACS_OF_HOST, &st));
            sqlite3_bind_int64(st, 1, host_id);
            while ((r = step(s, st)) == 1) {
                if (sqlite3_column_bytes(st, 0) == 6 && n_old < ARRAY_SIZE(old)) {
                    memcpy(old[n_old++], sqlite3_column_blob(st, 0), 6);
                }
            }
            TRY(r);
        }
        for (size_t i = 0; i < n_old; i++) {
            bool kept = false;
            for (size_t j = 0; j < h->n_macs && !kept; j++) {
                kept = memcmp(old[i], h->macs[j], 6) == 0;
            }
            if (!kept) {
                _cleanup_stmt_ sqlite3_stmt *st = NULL;
                TRY(stmt_get(s, ST_MAC_DELETE, &st));
                bind_blob(st, 1, old[i], 6);
                TRY(step_done(s, st));
            }
        }
    }
    for (size_t i = 0; i < h->n_macs; i++) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_MAC_UPSERT, &st));
        bind_blob(st, 1, h->macs[i], 6);
        sqlite3_bind_int64(st, 2, host_id);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)i);
        TRY(step_done(s, st));
    }
    if (active) {
        TRY(rack_bump(s, rack_id)); /* the intent carries MACs and addresses */
    }
    return 0;
}

int store_host_add(store *s, const store_host *h, bool update)
{
    s->errmsg[0] = '\0';
    TRY(fleet_host_validate(h, s->errmsg, sizeof(s->errmsg)));
    TRY(tx_begin(s));
    return tx_end(s, host_add_tx(s, h, update));
}

int store_host_remove(store *s, const char *name)
{
    int64_t host_id;
    s->errmsg[0] = '\0';
    TRY(tx_begin(s));
    int r = host_find(s, name, &host_id, NULL);
    if (r >= 0) {
        char uuid[STORE_ID_LEN + 1];
        r = host_active(s, host_id, NULL, uuid, NULL);
        if (r == 1) {
            r = fail(s, -EBUSY, "host %s has an active install %s: cancel it first", name, uuid);
        }
    }
    if (r >= 0) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        r = stmt_get(s, ST_HOST_DELETE, &st);
        if (r >= 0) {
            sqlite3_bind_int64(st, 1, host_id);
            r = step_done(s, st);
        }
    }
    return tx_end(s, r);
}

/* Fills h from a row of HOST_COLS (from column `c`), with MACs and DUID. */
static int host_from_row(store *s, sqlite3_stmt *row, int c, store_host *h)
{
    int64_t id = sqlite3_column_int64(row, c);
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", col_text(row, c + 1));
    snprintf(h->rack, sizeof(h->rack), "%s", col_text(row, c + 2));
    if (sqlite3_column_bytes(row, c + 3) == 16) {
        memcpy(h->address, sqlite3_column_blob(row, c + 3), 16);
    }
    h->prefix_length = (uint32_t)sqlite3_column_int(row, c + 4);
    if (sqlite3_column_bytes(row, c + 5) == 16) {
        h->has_gateway = true;
        memcpy(h->gateway, sqlite3_column_blob(row, c + 5), 16);
    }
    snprintf(h->hostname, sizeof(h->hostname), "%s", col_text(row, c + 6));

    int r;
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_MACS_OF_HOST, &st));
        sqlite3_bind_int64(st, 1, id);
        while ((r = step(s, st)) == 1) {
            if (sqlite3_column_bytes(st, 0) == 6 && h->n_macs < STORE_MACS_MAX) {
                memcpy(h->macs[h->n_macs++], sqlite3_column_blob(st, 0), 6);
            }
        }
        TRY(r);
    }
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_DUID_OF_HOST, &st));
    sqlite3_bind_int64(st, 1, id);
    r = step(s, st);
    TRY(r);
    if (r == 1) {
        int n = sqlite3_column_bytes(st, 0);
        if (n > 0 && (size_t)n <= sizeof(h->duid)) {
            memcpy(h->duid, sqlite3_column_blob(st, 0), (size_t)n);
            h->duid_len = (size_t)n;
        }
    }
    return 0;
}

int store_host_get(store *s, const char *name, store_host *ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    s->errmsg[0] = '\0';
    TRY(stmt_get(s, ST_HOST_GET, &st));
    bind_text(st, 1, name);
    int r = step(s, st);
    if (r <= 0) {
        return r < 0 ? r : fail(s, -ENOENT, "no host %s", name);
    }
    store_host h;
    TRY(host_from_row(s, st, 0, &h));
    *ret = h;
    return 0;
}

int store_hosts_list(store *s, const char *rack, int (*cb)(const store_host *h, void *userdata),
                     void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    _cleanup_free_ store_host *h = malloc(sizeof(*h));
    int r;
    s->errmsg[0] = '\0';
    if (!h) {
        return -ENOMEM;
    }
    TRY(stmt_get(s, rack ? ST_HOSTS_OF_RACK : ST_HOSTS_LIST, &st));
    if (rack) {
        bind_text(st, 1, rack);
    }
    while ((r = step(s, st)) == 1) {
        TRY(host_from_row(s, st, 0, h));
        TRY(cb(h, userdata));
    }
    return r;
}

/* ---- Profiles and images ----------------------------------------------- */

static int profile_import_tx(store *s, const store_profile *p, bool update)
{
    int64_t profile_id;
    bool exists;
    int r;
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_PROFILE_BY_NAME, &st));
        bind_text(st, 1, p->name);
        r = step(s, st);
        TRY(r);
        exists = r == 1;
    }
    if (exists && !update) {
        return fail(s, -EEXIST, "profile %s exists", p->name);
    }
    const char *kickstart = p->kickstart ? p->kickstart : "";
    uint8_t digest[32];
    TRY(sha256_buffer(kickstart, strlen(kickstart), digest));
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_PROFILE_UPSERT, &st));
        bind_text(st, 1, p->name);
        bind_text(st, 2, p->cmdline ? p->cmdline : "");
        bind_text(st, 3, kickstart);
        bind_blob(st, 4, digest, sizeof(digest));
        sqlite3_bind_int(st, 5, p->overlay);
        sqlite3_bind_int(st, 6, (int)p->ip_mode);
        sqlite3_bind_int(st, 7, p->keep_ra);
        bind_u64(st, 8, now_realtime_ms());
        sqlite3_bind_int(st, 9, p->any_source);
        r = step(s, st);
        TRY(r);
        if (r != 1) {
            return fail(s, -EIO, "profile %s: not stored", p->name);
        }
        profile_id = sqlite3_column_int64(st, 0);
        TRY(step_done(s, st));
    }
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_PROFILE_IMAGES_DELETE, &st));
        sqlite3_bind_int64(st, 1, profile_id);
        TRY(step_done(s, st));
    }
    for (size_t i = 0; i < p->n_images; i++) {
        const store_image *im = &p->images[i];
        int64_t image_id;
        {
            _cleanup_stmt_ sqlite3_stmt *st = NULL;
            TRY(stmt_get(s, ST_IMAGE_UPSERT, &st));
            bind_blob(st, 1, im->sha256, 32);
            bind_text(st, 2, im->url);
            bind_u64(st, 3, im->size);
            bind_text(st, 4, im->name);
            sqlite3_bind_int(st, 5, (int)im->kind);
            r = step(s, st);
            TRY(r);
            if (r != 1) {
                return fail(s, -EIO, "image %s: not stored", im->name);
            }
            image_id = sqlite3_column_int64(st, 0);
            TRY(step_done(s, st));
        }
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_PROFILE_IMAGE_INSERT, &st));
        sqlite3_bind_int64(st, 1, profile_id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        sqlite3_bind_int64(st, 3, image_id);
        sqlite3_bind_int(st, 4, (int)im->kind);
        bind_text(st, 5, im->name);
        TRY(step_done(s, st));
    }
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_IMAGES_GC, &st));
        TRY(step_done(s, st));
    }
    if (exists) {
        /* Agents holding intents of this profile must get the new one. */
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_BUMP_RACKS_OF_PROFILE, &st));
        sqlite3_bind_int64(st, 1, profile_id);
        TRY(step_done(s, st));
    }
    return 0;
}

int store_profile_import(store *s, const store_profile *p, bool update)
{
    s->errmsg[0] = '\0';
    TRY(fleet_profile_validate(p, s->errmsg, sizeof(s->errmsg)));
    TRY(tx_begin(s));
    return tx_end(s, profile_import_tx(s, p, update));
}

/* A profile loaded for callers: owns its strings and images. */
typedef struct loaded_profile {
    int64_t id;
    store_profile p;
    char *name, *cmdline, *kickstart;
    store_image *images;
    char **owned; /* the images' name and url strings, 2 per image */
    size_t n_images;
} loaded_profile;

static loaded_profile *loaded_profile_free(loaded_profile *lp)
{
    if (!lp) {
        return NULL;
    }
    for (size_t i = 0; i < 2 * lp->n_images; i++) {
        free(lp->owned[i]);
    }
    free(lp->owned);
    free(lp->images);
    free(lp->name);
    free(lp->cmdline);
    free(lp->kickstart);
    free(lp);
    return NULL;
}

static void loaded_profile_freep(loaded_profile **lp)
{
    *lp = loaded_profile_free(*lp);
}

static int profile_load(store *s, int64_t id, bool with_content, loaded_profile **ret)
{
    _cleanup_(loaded_profile_freep) loaded_profile *lp = calloc(1, sizeof(*lp));
    int r;
    if (!lp) {
        return -ENOMEM;
    }
    lp->id = id;
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_PROFILE_GET, &st));
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, with_content);
        r = step(s, st);
        if (r <= 0) {
            return r < 0 ? r : fail(s, -ENOENT, "no profile id %" PRId64, id);
        }
        lp->name = strdup(col_text(st, 1));
        lp->cmdline = strdup(col_text(st, 2));
        lp->kickstart = strdup(col_text(st, 3));
        if (!lp->name || !lp->cmdline || !lp->kickstart) {
            return -ENOMEM;
        }
        if (sqlite3_column_bytes(st, 4) == 32) {
            memcpy(lp->p.kickstart_sha256, sqlite3_column_blob(st, 4), 32);
        }
        lp->p.overlay = sqlite3_column_int(st, 5) != 0;
        lp->p.ip_mode = (Rackboot__V1__IpMode)sqlite3_column_int(st, 6);
        lp->p.keep_ra = sqlite3_column_int(st, 7) != 0;
        lp->p.any_source = sqlite3_column_int(st, 8) != 0;
    }
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_PROFILE_IMAGES_OF, &st));
    sqlite3_bind_int64(st, 1, id);
    size_t cap = 0;
    while ((r = step(s, st)) == 1) {
        if (lp->n_images == cap) {
            size_t ncap = cap ? 2 * cap : 4;
            store_image *n = reallocarray(lp->images, ncap, sizeof(*n));
            if (!n) {
                return -ENOMEM;
            }
            lp->images = n;
            char **o = reallocarray(lp->owned, 2 * ncap, sizeof(*o));
            if (!o) {
                return -ENOMEM;
            }
            lp->owned = o;
            cap = ncap;
        }
        store_image *im = &lp->images[lp->n_images];
        char **owned = &lp->owned[2 * lp->n_images];
        memset(im, 0, sizeof(*im));
        owned[0] = strdup(col_text(st, 0));
        owned[1] = strdup(col_text(st, 2));
        lp->n_images++;
        if (!owned[0] || !owned[1]) {
            return -ENOMEM;
        }
        im->name = owned[0];
        im->url = owned[1];
        im->kind = (Rackboot__V1__ImageKind)sqlite3_column_int(st, 1);
        if (sqlite3_column_bytes(st, 3) == 32) {
            memcpy(im->sha256, sqlite3_column_blob(st, 3), 32);
        }
        im->size = col_u64(st, 4);
    }
    TRY(r);
    lp->p.name = lp->name;
    lp->p.cmdline = lp->cmdline;
    lp->p.kickstart = lp->kickstart;
    lp->p.images = lp->images;
    lp->p.n_images = lp->n_images;
    *ret = TAKE_PTR(lp);
    return 0;
}

int store_profiles_list(store *s, bool with_content,
                        int (*cb)(const store_profile *p, void *userdata), void *userdata)
{
    s->errmsg[0] = '\0';
    /* Ids first, then each profile: no statement is stepped re-entrantly. */
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int r;
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        r = stmt_get(s, ST_PROFILES_LIST, &st);
        while (r >= 0 && (r = step(s, st)) == 1) {
            if (n == cap) {
                size_t ncap = cap ? 2 * cap : 16;
                int64_t *nids = reallocarray(ids, ncap, sizeof(*nids));
                if (!nids) {
                    r = -ENOMEM;
                    break;
                }
                ids = nids;
                cap = ncap;
            }
            ids[n++] = sqlite3_column_int64(st, 0);
        }
    }
    for (size_t i = 0; r >= 0 && i < n; i++) {
        _cleanup_(loaded_profile_freep) loaded_profile *lp = NULL;
        r = profile_load(s, ids[i], with_content, &lp);
        if (r >= 0) {
            r = cb(&lp->p, userdata);
        }
    }
    free(ids);
    return r < 0 ? r : 0;
}

int store_profile_get(store *s, const char *name, bool with_content,
                      int (*cb)(const store_profile *p, void *userdata), void *userdata)
{
    int64_t id;
    s->errmsg[0] = '\0';
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_PROFILE_BY_NAME, &st));
        bind_text(st, 1, name);
        int r = step(s, st);
        if (r <= 0) {
            return r < 0 ? r : fail(s, -ENOENT, "no profile %s", name);
        }
        id = sqlite3_column_int64(st, 0);
    }
    _cleanup_(loaded_profile_freep) loaded_profile *lp = NULL;
    TRY(profile_load(s, id, with_content, &lp));
    return cb(&lp->p, userdata);
}

int store_images_list(store *s,
                      int (*cb)(const char *profile, const store_image *img, void *userdata),
                      void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;
    s->errmsg[0] = '\0';
    TRY(stmt_get(s, ST_IMAGES_LIST, &st));
    while ((r = step(s, st)) == 1) {
        store_image im = {
            .name = col_text(st, 1),
            .kind = (Rackboot__V1__ImageKind)sqlite3_column_int(st, 2),
            .url = col_text(st, 3),
            .size = col_u64(st, 5),
        };
        if (sqlite3_column_bytes(st, 4) == 32) {
            memcpy(im.sha256, sqlite3_column_blob(st, 4), 32);
        }
        TRY(cb(col_text(st, 0), &im, userdata));
    }
    return r;
}

/* ---- Installs ---------------------------------------------------------- */

/* Moves install `id` from `from` by `input` through the FSM and writes the
 * new state with its timestamp. Returns what install_transition() did. */
static int install_apply(store *s, int64_t id, install_state from, install_input input,
                         Rackboot__V1__Phase phase, uint64_t now, const char *message,
                         install_state *ret_next)
{
    install_state next;
    int r = install_transition(from, input, phase, &next);
    if (r <= 0) {
        return r;
    }
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_INSTALL_SET_STATE, &st));
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, state_name(next));
    bind_u64(st, 3, now);
    bind_text(st, 4, message);
    TRY(step_done(s, st));
    if (ret_next) {
        *ret_next = next;
    }
    return 1;
}

static int install_create_tx(store *s, const char *host, const char *profile, bool replace,
                             uint64_t now, char id[STORE_ID_LEN + 1])
{
    int64_t host_id, rack_id, profile_id, active_id;
    install_state active_state;
    char active_uuid[STORE_ID_LEN + 1];
    int r;

    TRY(host_find(s, host, &host_id, &rack_id));
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_PROFILE_BY_NAME, &st));
        bind_text(st, 1, profile);
        r = step(s, st);
        if (r <= 0) {
            return r < 0 ? r : fail(s, -ENOENT, "no profile %s", profile);
        }
        profile_id = sqlite3_column_int64(st, 0);
    }
    uint32_t attempt = 1;
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_LAST_OF_HOST, &st));
        sqlite3_bind_int64(st, 1, host_id);
        r = step(s, st);
        TRY(r);
        /* A retry until the host installs; after a success, a new series. */
        if (r == 1 && !streq(col_text(st, 0), "installed")) {
            attempt = (uint32_t)sqlite3_column_int64(st, 1) + 1;
        }
    }
    r = host_active(s, host_id, &active_id, active_uuid, &active_state);
    TRY(r);
    if (r == 1) {
        if (!replace) {
            return fail(s, -EBUSY, "host %s has an active install %s (%s)", host, active_uuid,
                        state_name(active_state));
        }
        TRY(install_apply(s, active_id, active_state, INSTALL_INPUT_CANCEL, 0, now,
                          "replaced by a new install", NULL));
    }
    char token[STORE_TOKEN_LEN + 1];
    TRY(fleet_install_secrets(id, token, s->errmsg, sizeof(s->errmsg)));
    /* Bump first: the install records the generation that carries it. */
    TRY(rack_bump(s, rack_id));
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_INSTALL_INSERT, &st));
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, host_id);
    sqlite3_bind_int64(st, 3, profile_id);
    bind_text(st, 4, token);
    sqlite3_bind_int64(st, 5, attempt);
    sqlite3_bind_int64(st, 6, rack_id);
    bind_u64(st, 7, now);
    return step_done(s, st);
}

int store_install_create(store *s, const char *host, const char *profile, bool replace,
                         uint64_t now, char ret_id[STORE_ID_LEN + 1])
{
    char id[STORE_ID_LEN + 1];
    s->errmsg[0] = '\0';
    if (!host || !profile) {
        return fail(s, -EINVAL, "host and profile required");
    }
    TRY(tx_begin(s));
    int r = tx_end(s, install_create_tx(s, host, profile, replace, now, id));
    if (r >= 0 && ret_id) {
        memcpy(ret_id, id, sizeof(id));
    }
    return r;
}

static int install_cancel_tx(store *s, const char *host, uint64_t now, char id[STORE_ID_LEN + 1])
{
    int64_t host_id, rack_id, install_id;
    install_state state;
    TRY(host_find(s, host, &host_id, &rack_id));
    int r = host_active(s, host_id, &install_id, id, &state);
    TRY(r);
    if (r == 0) {
        return fail(s, -ENOENT, "host %s has no active install", host);
    }
    r = install_apply(s, install_id, state, INSTALL_INPUT_CANCEL, 0, now, "cancelled", NULL);
    TRY(r);
    RB_ASSERT(r == 1); /* an active install can always be cancelled */
    return rack_bump(s, rack_id);
}

int store_install_cancel(store *s, const char *host, uint64_t now, char ret_id[STORE_ID_LEN + 1])
{
    char id[STORE_ID_LEN + 1];
    s->errmsg[0] = '\0';
    TRY(tx_begin(s));
    int r = tx_end(s, install_cancel_tx(s, host, now, id));
    if (r >= 0 && ret_id) {
        memcpy(ret_id, id, sizeof(id));
    }
    return r;
}

int store_rack_intents(store *s, const char *rack, uint64_t *ret_generation,
                       int (*cb)(const store_intent *in, void *userdata), void *userdata)
{
    int64_t rack_id;
    uint64_t generation;
    s->errmsg[0] = '\0';
    /* One read transaction: the generation and the intents are one snapshot
     * (inside a batch, the batch's transaction already is). */
    if (!s->in_batch) {
        TRY(exec(s, "BEGIN"));
    }
    int r = rack_find(s, rack, &rack_id, &generation);
    loaded_profile **profiles = NULL;
    size_t n_profiles = 0, cap = 0;
    store_host *h = NULL;
    if (r >= 0 && cb) {
        h = malloc(sizeof(*h));
        r = h ? 0 : -ENOMEM;
    }
    if (r >= 0 && cb) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        r = stmt_get(s, ST_INTENTS_OF_RACK, &st);
        if (r >= 0) {
            sqlite3_bind_int64(st, 1, rack_id);
        }
        while (r >= 0 && (r = step(s, st)) == 1) {
            store_intent in = {
                .install_id = col_text(st, 0),
                .token = col_text(st, 1),
                .attempt = (uint32_t)sqlite3_column_int64(st, 2),
                .host = h,
            };
            r = col_state(s, st, 3, &in.state);
            if (r < 0) {
                break;
            }
            int64_t profile_id = sqlite3_column_int64(st, 4);
            for (size_t i = 0; i < n_profiles; i++) {
                if (profiles[i]->id == profile_id) {
                    in.profile = &profiles[i]->p;
                }
            }
            if (!in.profile) {
                if (n_profiles == cap) {
                    size_t ncap = cap ? 2 * cap : 4;
                    loaded_profile **np = reallocarray(profiles, ncap, sizeof(*np));
                    if (!np) {
                        r = -ENOMEM;
                        break;
                    }
                    profiles = np;
                    cap = ncap;
                }
                r = profile_load(s, profile_id, true, &profiles[n_profiles]);
                if (r < 0) {
                    break;
                }
                in.profile = &profiles[n_profiles++]->p;
            }
            /* columns 5..: HOST_COLS */
            r = host_from_row(s, st, 5, h);
            if (r >= 0) {
                r = cb(&in, userdata);
            }
        }
    }
    for (size_t i = 0; i < n_profiles; i++) {
        loaded_profile_free(profiles[i]);
    }
    free(profiles);
    free(h);
    if (!s->in_batch) {
        (void)exec(s, "COMMIT");
    }
    if (r < 0) {
        return r;
    }
    if (ret_generation) {
        *ret_generation = generation;
    }
    return 0;
}

static int agent_ack_tx(store *s, int64_t rack_id, uint64_t generation, uint64_t now)
{
    enum { PAGE = 512 };
    int64_t ids[PAGE];
    install_state states[PAGE];
    int dispatched = 0, r;

    TRY(agent_ensure(s, rack_id));
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_AGENT_ACK, &st));
        sqlite3_bind_int64(st, 1, rack_id);
        bind_u64(st, 2, generation);
        bind_u64(st, 3, now);
        TRY(step_done(s, st));
    }
    /* Read a page, then write it: a dispatched install leaves the query's
     * result, so repeating until a page comes back short visits each once. */
    for (;;) {
        size_t n = 0;
        {
            _cleanup_stmt_ sqlite3_stmt *st = NULL;
            TRY(stmt_get(s, ST_REQUESTED_OF_RACK, &st));
            sqlite3_bind_int64(st, 1, rack_id);
            bind_u64(st, 2, generation);
            while (n < PAGE && (r = step(s, st)) == 1) {
                ids[n] = sqlite3_column_int64(st, 0);
                TRY(col_state(s, st, 1, &states[n]));
                n++;
            }
            TRY(r);
        }
        for (size_t i = 0; i < n; i++) {
            r = install_apply(s, ids[i], states[i], INSTALL_INPUT_ACK, 0, now, NULL, NULL);
            TRY(r);
            RB_ASSERT(r == 1); /* the query selects requested installs only */
            dispatched++;
        }
        if (n < PAGE) {
            return dispatched;
        }
    }
}

int store_agent_ack(store *s, const char *rack, uint64_t generation, uint64_t now)
{
    int64_t rack_id;
    uint64_t current;
    s->errmsg[0] = '\0';
    TRY(tx_begin(s));
    int r = rack_find(s, rack, &rack_id, &current);
    if (r >= 0 && generation > current) {
        r = fail(s, -EINVAL, "rack %s: ack of generation %" PRIu64 " above the current %" PRIu64,
                 rack, generation, current);
    }
    if (r >= 0) {
        r = agent_ack_tx(s, rack_id, generation, now);
    }
    return tx_end(s, r);
}

/* ---- Events ------------------------------------------------------------ */

const char *store_event_result_to_string(store_event_result r)
{
    switch (r) {
    case STORE_EVENT_STORED:
        return "stored";
    case STORE_EVENT_DUPLICATE:
        return "duplicate";
    case STORE_EVENT_REFUSED_HOST:
        return "refused_host";
    case STORE_EVENT_REFUSED_INSTALL:
        return "refused_install";
    case STORE_EVENT_REFUSED_INVALID:
        return "refused_invalid";
    }
    return NULL;
}

static int event_insert(store *s, int64_t rack_id, const store_event *e, int64_t install_id,
                        uint64_t now, const char *refused, bool *ret_inserted)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, ST_EVENT_INSERT, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    bind_u64(st, 2, e->seq);
    if (install_id > 0) {
        sqlite3_bind_int64(st, 3, install_id);
    } else {
        sqlite3_bind_null(st, 3);
    }
    bind_text(st, 4, e->host ? e->host : "");
    bind_u64(st, 5, e->time_ms);
    bind_u64(st, 6, now);
    sqlite3_bind_int(st, 7, (int)e->phase);
    sqlite3_bind_int64(st, 8, e->percent);
    bind_text(st, 9, e->message ? e->message : "");
    bind_text(st, 10, refused);
    TRY(step_done(s, st));
    *ret_inserted = sqlite3_changes(s->db) > 0;
    return 0;
}

/* Why an event cannot be applied, or NULL. */
static store_event_result event_check(store *s, int64_t rack_id, const store_event *e,
                                      int64_t *ret_install, install_state *ret_state,
                                      Rackboot__V1__Phase *ret_phase, const char **ret_why,
                                      int *ret_err)
{
    install_state target;
    *ret_err = 0;
    if (!e->install_id || !e->host || install_phase_target(e->phase, &target) < 0 ||
        e->percent > 100 || (e->message && strlen(e->message) > RBPROTO_MAX_LINE)) {
        *ret_why = "invalid event";
        return STORE_EVENT_REFUSED_INVALID;
    }
    if (e->phase == RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED &&
        (!e->mac || !e->duid || e->duid_len < RBPROTO_DUID_MIN || e->duid_len > RBPROTO_DUID_MAX)) {
        *ret_why = "duid_learned without mac and duid";
        return STORE_EVENT_REFUSED_INVALID;
    }
    int64_t host_id, host_rack;
    int r = host_find(s, e->host, &host_id, &host_rack);
    if (r == -ENOENT || (r == 0 && host_rack != rack_id)) {
        s->errmsg[0] = '\0';
        *ret_why = "host not in the agent's rack";
        return STORE_EVENT_REFUSED_HOST;
    }
    if (r < 0) {
        *ret_err = r;
        return 0;
    }
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    r = stmt_get(s, ST_INSTALL_BY_UUID, &st);
    if (r < 0) {
        *ret_err = r;
        return 0;
    }
    bind_text(st, 1, e->install_id);
    r = step(s, st);
    if (r < 0) {
        *ret_err = r;
        return 0;
    }
    if (r == 0 || sqlite3_column_int64(st, 1) != host_id) {
        *ret_why = "unknown install for this host";
        return STORE_EVENT_REFUSED_INSTALL;
    }
    *ret_install = sqlite3_column_int64(st, 0);
    *ret_phase = (Rackboot__V1__Phase)sqlite3_column_int(st, 3);
    r = col_state(s, st, 2, ret_state);
    if (r < 0) {
        *ret_err = r;
        return 0;
    }
    if (e->phase == RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED) {
        _cleanup_stmt_ sqlite3_stmt *mst = NULL;
        r = stmt_get(s, ST_MAC_HOST, &mst);
        if (r < 0) {
            *ret_err = r;
            return 0;
        }
        bind_blob(mst, 1, e->mac, 6);
        r = step(s, mst);
        if (r < 0) {
            *ret_err = r;
            return 0;
        }
        if (r == 0 || sqlite3_column_int64(mst, 0) != host_id) {
            *ret_why = "duid_learned for a mac of another host";
            return STORE_EVENT_REFUSED_INVALID;
        }
    }
    return STORE_EVENT_STORED;
}

/* Phases that describe where the host is, in the order a host goes
 * through them: the status shows the furthest one seen. A switch, not a
 * range of the enum: a phase added to the proto must be placed here on
 * purpose (-Wswitch names this function until it is). */
static bool phase_is_progress(Rackboot__V1__Phase p)
{
    switch (p) {
    case RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND:
    case RACKBOOT__V1__PHASE__PHASE_SCRIPT_SERVED:
    case RACKBOOT__V1__PHASE__PHASE_KERNEL_FETCHED:
    case RACKBOOT__V1__PHASE__PHASE_INITRD_FETCHED:
    case RACKBOOT__V1__PHASE__PHASE_OVERLAY_FETCHED:
    case RACKBOOT__V1__PHASE__PHASE_KICKSTART_FETCHED:
    case RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS:
    case RACKBOOT__V1__PHASE__PHASE_INSTALLING:
    case RACKBOOT__V1__PHASE__PHASE_INSTALLED:
    case RACKBOOT__V1__PHASE__PHASE_FAILED:
        return true;
    case RACKBOOT__V1__PHASE__PHASE_UNSPECIFIED:
    case RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED:
    case RACKBOOT__V1__PHASE__PHASE_IMAGES_CACHED:
    case RACKBOOT__V1__PHASE__PHASE_IMAGES_FAILED:
    case _RACKBOOT__V1__PHASE_IS_INT_SIZE:
        return false;
    }
    return false;
}

static int event_apply(store *s, const store_event *e, int64_t install_id, install_state state,
                       Rackboot__V1__Phase shown_phase, uint64_t now, bool *bump)
{
    install_state next = state;
    int r = install_apply(s, install_id, state, INSTALL_INPUT_EVENT, e->phase, now, NULL, &next);
    TRY(r);
    bool moved = r == 1;
    if (moved && (next == INSTALL_INSTALLED || next == INSTALL_FAILED)) {
        *bump = true; /* withdraw the intent */
    }
    if (e->phase == RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_DUID_UPSERT, &st));
        bind_blob(st, 1, e->duid, e->duid_len);
        bind_blob(st, 2, e->mac, 6);
        bind_u64(st, 3, now);
        TRY(step_done(s, st));
    }
    /* What status shows: a terminal install keeps its final phase; an active
     * one shows the furthest progress phase (a late kernel_fetched does not
     * replace installing), and notes (images_cached, duid_learned, ...)
     * update only its message. */
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    if (moved || (install_state_is_active(next) && phase_is_progress(e->phase) &&
                  (!phase_is_progress(shown_phase) || e->phase >= shown_phase))) {
        TRY(stmt_get(s, ST_INSTALL_SET_PHASE, &st));
        sqlite3_bind_int64(st, 1, install_id);
        sqlite3_bind_int(st, 2, (int)e->phase);
        sqlite3_bind_int64(st, 3,
                           e->phase == RACKBOOT__V1__PHASE__PHASE_INSTALLED ? 100 : e->percent);
        bind_text(st, 4, e->message ? e->message : "");
        bind_u64(st, 5, now);
    } else if (install_state_is_active(next) && !phase_is_progress(e->phase)) {
        TRY(stmt_get(s, ST_INSTALL_SET_NOTE, &st));
        sqlite3_bind_int64(st, 1, install_id);
        bind_text(st, 2, e->message ? e->message : "");
        bind_u64(st, 3, now);
    } else {
        return 0; /* late: recorded in events only */
    }
    return step_done(s, st);
}

static int ingest_tx(store *s, int64_t rack_id, const store_event *events, size_t n, uint64_t now,
                     store_event_result *results, uint64_t *ret_through)
{
    uint64_t through = 0;
    int stored = 0;
    bool bump = false;
    int r;

    TRY(agent_ensure(s, rack_id));
    TRY(agent_through(s, rack_id, &through));
    for (size_t i = 0; i < n; i++) {
        const store_event *e = &events[i];
        store_event_result res;
        if (e->seq == 0 || e->seq > INT64_MAX) {
            res = STORE_EVENT_REFUSED_INVALID; /* cannot be keyed: not kept */
        } else if (e->seq <= through) {
            res = STORE_EVENT_DUPLICATE; /* fast path for a re-sent batch */
        } else {
            int64_t install_id = 0;
            install_state state = 0;
            Rackboot__V1__Phase shown = 0;
            const char *why = NULL;
            int err;
            res = event_check(s, rack_id, e, &install_id, &state, &shown, &why, &err);
            TRY(err);
            bool inserted;
            TRY(event_insert(s, rack_id, e, res == STORE_EVENT_STORED ? install_id : 0, now,
                             res == STORE_EVENT_STORED ? NULL : why, &inserted));
            if (!inserted) {
                res = STORE_EVENT_DUPLICATE;
            } else if (res == STORE_EVENT_STORED) {
                TRY(event_apply(s, e, install_id, state, shown, now, &bump));
                stored++;
            }
        }
        if (results) {
            results[i] = res;
        }
    }
    /* A batch is the agent's journal from its oldest unacknowledged event
     * on, in order (rack-agent/journal.h): a seq missing before or between
     * its events no longer exists at the agent (dropped to stay bounded, or
     * lost to damage) and will never come. Once every event of the batch is
     * handled, everything through its last seq is; acknowledging less would
     * make the agent send the same batch for ever. */
    if (n > 0 && events[n - 1].seq > through && events[n - 1].seq <= INT64_MAX) {
        through = events[n - 1].seq;
    }
    /* Then over every seq stored beyond it (none, from our own agent). */
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_EVENT_EXISTS, &st));
        for (;;) {
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, rack_id);
            bind_u64(st, 2, through + 1);
            r = step(s, st);
            TRY(r);
            if (r == 0) {
                break;
            }
            through++;
        }
    }
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(s, ST_AGENT_STORED, &st));
        sqlite3_bind_int64(st, 1, rack_id);
        bind_u64(st, 2, through);
        bind_u64(st, 3, now);
        TRY(step_done(s, st));
    }
    if (bump) {
        TRY(rack_bump(s, rack_id));
    }
    *ret_through = through;
    return stored;
}

int store_events_ingest(store *s, const char *rack, const store_event *events, size_t n,
                        uint64_t now, store_event_result *results, uint64_t *ret_stored_through)
{
    int64_t rack_id;
    uint64_t through = 0;
    s->errmsg[0] = '\0';
    if (n > 0 && !events) {
        return fail(s, -EINVAL, "no events");
    }
    TRY(tx_begin(s));
    int r = rack_find(s, rack, &rack_id, NULL);
    if (r >= 0) {
        r = ingest_tx(s, rack_id, events, n, now, results, &through);
    }
    r = tx_end(s, r);
    if (r >= 0 && ret_stored_through) {
        *ret_stored_through = through;
    }
    return r;
}

static int expire_tx(store *s, uint64_t now, const install_timeouts *cfg)
{
    enum { PAGE = 512 };
    struct {
        int64_t id, rack_id;
        install_state state;
        install_times t;
    } *rows = calloc(PAGE, sizeof(*rows));
    int expired = 0, r = 0;
    if (!rows) {
        return -ENOMEM;
    }
    bool more = true;
    while (more && r >= 0) {
        size_t n = 0;
        {
            _cleanup_stmt_ sqlite3_stmt *st = NULL;
            r = stmt_get(s, ST_OVERDUE, &st);
            if (r < 0) {
                break;
            }
            bind_u64(st, 1, now);
            bind_u64(st, 2, cfg->boot_ms);
            bind_u64(st, 3, cfg->install_ms);
            while (n < PAGE && (r = step(s, st)) == 1) {
                rows[n].id = sqlite3_column_int64(st, 0);
                r = col_state(s, st, 1, &rows[n].state);
                if (r < 0) {
                    break;
                }
                rows[n].t = (install_times){
                    .created_ms = col_u64(st, 2),
                    .dispatched_ms = col_u64(st, 3),
                    .booting_ms = col_u64(st, 4),
                    .installing_ms = col_u64(st, 5),
                };
                rows[n].rack_id = sqlite3_column_int64(st, 6);
                n++;
            }
        }
        if (r < 0) {
            break;
        }
        more = n == PAGE;
        size_t moved = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
            uint64_t deadline;
            r = install_deadline(rows[i].state, &rows[i].t, cfg, &deadline);
            if (r < 0) {
                r = fail(s, -EIO, "install %" PRId64 ": %s without its start time", rows[i].id,
                         state_name(rows[i].state));
                break;
            }
            if (r == 0 || deadline > now) {
                r = 0;
                continue;
            }
            r = install_apply(s, rows[i].id, rows[i].state, INSTALL_INPUT_TIMEOUT, 0, now,
                              "timed out", NULL);
            if (r == 1) {
                r = rack_bump(s, rows[i].rack_id);
                expired++;
                moved++;
            }
        }
        /* Rows the SQL filter chose but the FSM kept would come back on
         * every page: stop when a full page moved nothing. */
        if (moved == 0) {
            more = false;
        }
    }
    free(rows);
    return r < 0 ? r : expired;
}

int store_expire(store *s, uint64_t now, const install_timeouts *cfg)
{
    s->errmsg[0] = '\0';
    if (!cfg) {
        return fail(s, -EINVAL, "no timeouts");
    }
    TRY(tx_begin(s));
    return tx_end(s, expire_tx(s, now, cfg));
}

/* ---- Status and history ------------------------------------------------ */

static int status_from_row(store *s, sqlite3_stmt *st, store_status *ret)
{
    *ret = (store_status){
        .host = col_text(st, 0),
        .rack = col_text(st, 1),
        .install_id = col_text(st, 2),
        .profile = col_text(st, 3),
        .phase = (Rackboot__V1__Phase)sqlite3_column_int(st, 5),
        .percent = (uint32_t)sqlite3_column_int64(st, 6),
        .updated_ms = col_u64(st, 7),
        .attempt = (uint32_t)sqlite3_column_int64(st, 8),
        .message = col_text(st, 9),
    };
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
        TRY(col_state(s, st, 4, &ret->state));
    }
    return 0;
}

int store_status_get(store *s, const char *host, int (*cb)(const store_status *st, void *userdata),
                     void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    store_status row;
    s->errmsg[0] = '\0';
    TRY(stmt_get(s, ST_STATUS_HOST, &st));
    bind_text(st, 1, host);
    int r = step(s, st);
    if (r <= 0) {
        return r < 0 ? r : fail(s, -ENOENT, "no host %s", host);
    }
    TRY(status_from_row(s, st, &row));
    return cb(&row, userdata);
}

int store_status_list(store *s, const char *rack, int (*cb)(const store_status *st, void *userdata),
                      void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    store_status row;
    int r;
    s->errmsg[0] = '\0';
    TRY(stmt_get(s, rack ? ST_STATUS_OF_RACK : ST_STATUS_LIST, &st));
    if (rack) {
        bind_text(st, 1, rack);
    }
    while ((r = step(s, st)) == 1) {
        TRY(status_from_row(s, st, &row));
        TRY(cb(&row, userdata));
    }
    return r;
}

int store_events_list(store *s, const char *host, uint64_t after_seq, uint32_t limit,
                      int (*cb)(const store_event_row *e, void *userdata), void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int count = 0, r;
    s->errmsg[0] = '\0';
    if (host) {
        int64_t host_id;
        TRY(host_find(s, host, &host_id, NULL));
        TRY(stmt_get(s, ST_EVENTS_HOST, &st));
        bind_u64(st, 1, after_seq);
        sqlite3_bind_int64(st, 2, host_id);
        sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : -1);
    } else {
        TRY(stmt_get(s, ST_EVENTS_ALL, &st));
        bind_u64(st, 1, after_seq);
        sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
    }
    while ((r = step(s, st)) == 1) {
        store_event_row row = {
            .seq = col_u64(st, 0),
            .time_ms = col_u64(st, 1),
            .host = col_text(st, 2),
            .install_id = col_text(st, 3),
            .phase = (Rackboot__V1__Phase)sqlite3_column_int(st, 4),
            .percent = (uint32_t)sqlite3_column_int64(st, 5),
            .message = col_text(st, 6),
        };
        TRY(cb(&row, userdata));
        count++;
    }
    return r < 0 ? r : count;
}

/* ---- Retention --------------------------------------------------------- */

static int prune_run(store *s, int id, uint64_t arg, uint32_t limit)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(s, id, &st));
    bind_u64(st, 1, arg);
    sqlite3_bind_int64(st, 2, limit);
    TRY(step_done(s, st));
    return sqlite3_changes(s->db);
}

static int prune_tx(store *s, uint64_t now, const store_retention *keep, uint32_t batch)
{
    int deleted = 0;
    if (keep->keep_ms > 0 && now > keep->keep_ms) {
        int n = prune_run(s, ST_EVENTS_PRUNE_OLD, now - keep->keep_ms, batch);
        TRY(n);
        deleted += n;
    }
    if (keep->refused_max > 0 && (uint32_t)deleted < batch) {
        int n = prune_run(s, ST_EVENTS_PRUNE_REFUSED, keep->refused_max, batch - (uint32_t)deleted);
        TRY(n);
        deleted += n;
    }
    return deleted;
}

int store_events_prune(store *s, uint64_t now, const store_retention *keep)
{
    s->errmsg[0] = '\0';
    if (!keep) {
        return fail(s, -EINVAL, "no retention");
    }
    if (keep->keep_ms == 0 && keep->refused_max == 0) {
        return 0;
    }
    uint32_t batch = keep->batch ? keep->batch : STORE_PRUNE_BATCH;
    TRY(tx_begin(s));
    return tx_end(s, prune_tx(s, now, keep, batch));
}

/* ---- Audit log ---------------------------------------------------------- */

/* The first STORE_AUDIT_NAMES_MAX names, space-separated (malloc'd). */
static char *names_join(const char *const *names, size_t n)
{
    n = n < STORE_AUDIT_NAMES_MAX ? n : STORE_AUDIT_NAMES_MAX;
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        len += strlen(names[i]) + 1;
    }
    char *out = malloc(len), *p = out;
    if (!out) {
        return NULL;
    }
    *p = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (i > 0) {
            *p++ = ' ';
        }
        memcpy(p, names[i], l);
        p += l;
        *p = '\0';
    }
    return out;
}

int store_audit_append(store *s, const store_audit *a)
{
    s->errmsg[0] = '\0';
    if (!a || strempty(a->who) || strempty(a->verb)) {
        return fail(s, -EINVAL, "audit: who and verb are required");
    }
    _cleanup_free_ char *hosts = names_join(a->hosts, a->hosts ? a->n_hosts : 0);
    _cleanup_free_ char *profiles = names_join(a->profiles, a->profiles ? a->n_profiles : 0);
    if (!hosts || !profiles) {
        return -ENOMEM;
    }
    TRY(tx_begin(s));
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_AUDIT_INSERT, &st);
    if (r >= 0) {
        bind_u64(st, 1, a->time_ms);
        bind_text(st, 2, a->who);
        bind_text(st, 3, a->verb);
        bind_text(st, 4, hosts);
        bind_u64(st, 5, a->host_count > a->n_hosts ? a->host_count : a->n_hosts);
        bind_text(st, 6, profiles);
        sqlite3_bind_int(st, 7, a->ok ? 1 : 0);
        bind_text(st, 8, a->result ? a->result : "");
        r = step_done(s, st);
    }
    stmt_resetp(&st);
    return tx_end(s, r);
}

int store_batch_commit_audited(store *s, const store_audit *a)
{
    RB_ASSERT(s->in_batch);
    int r = store_audit_append(s, a); /* a savepoint inside the batch */
    if (r < 0) {
        char saved[sizeof(s->errmsg)];
        memcpy(saved, s->errmsg, sizeof(saved));
        (void)store_batch_end(s, false);
        memcpy(s->errmsg, saved, sizeof(saved));
        return r;
    }
    return store_batch_end(s, true);
}

int store_audit_list(store *s, uint64_t since_ms, uint64_t after_seq, uint32_t limit,
                     int (*cb)(const store_audit *a, void *userdata), void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int count = 0, r;
    s->errmsg[0] = '\0';
    TRY(stmt_get(s, ST_AUDIT_LIST, &st));
    bind_u64(st, 1, since_ms);
    sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
    bind_u64(st, 3, after_seq);
    while ((r = step(s, st)) == 1) {
        store_audit row = {
            .seq = col_u64(st, 0),
            .time_ms = col_u64(st, 1),
            .who = col_text(st, 2),
            .verb = col_text(st, 3),
            .hosts_text = col_text(st, 4),
            .host_count = (uint32_t)col_u64(st, 5),
            .profiles_text = col_text(st, 6),
            .ok = sqlite3_column_int(st, 7) != 0,
            .result = col_text(st, 8),
        };
        int c = cb(&row, userdata);
        if (c < 0) {
            return c;
        }
        if (c > 0) {
            return count; /* the caller's page is full */
        }
        count++;
    }
    return r < 0 ? r : count;
}
