/* store/sqlite: the fleet store's SQLite backend (store/backend.h).
 *
 * SQL and SQLite only: the schema and its migrations, one prepared
 * statement per operation (cached per connection), WAL, and the advisory
 * lock file that keeps a second controller off the database. The rules
 * that decide what to write are fleet.c's.
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
#include "store-internal.h"
#include "store/backend.h"
#include "store/columns.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util.h"

#define ACTIVE_STATES "('requested','dispatched','booting','installing')"
/* An install's new state ?2 at ?3, with the time it entered it. */
#define SET_STATE_STAMPS                                                                           \
    "state = ?2, updated_ms = ?3, "                                                                \
    "dispatched_ms = CASE WHEN ?2 = 'dispatched' THEN ?3 ELSE dispatched_ms END, "                 \
    "booting_ms = CASE WHEN ?2 = 'booting' THEN ?3 ELSE booting_ms END, "                          \
    "installing_ms = CASE WHEN ?2 = 'installing' THEN ?3 ELSE installing_ms END, "                 \
    "finished_ms = CASE WHEN ?2 IN ('installed','failed','cancelled','timed_out') "                \
    "THEN ?3 ELSE finished_ms END"

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
    /* 6: a profile's root_device (model/profile.h): "auto" or a /dev/ path;
     * '' when not set. */
    "ALTER TABLE profiles ADD COLUMN root_device TEXT NOT NULL DEFAULT '';",
    /* 7: BMCs and power (issue 15). A host's BMC (bmc_url '' for none) and
     * the power state its agent last read; power commands for the agents,
     * pending until the agent's event ends them. Events may now be a
     * host's without an install (power events: host_id set), so the
     * events table is rebuilt without the old "install or refused" check,
     * ids kept. host_id is set on power events only: the install path's
     * inserts keep their indexes as they were. */
    "ALTER TABLE hosts ADD COLUMN bmc_url TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE hosts ADD COLUMN bmc_user TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE hosts ADD COLUMN bmc_password TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE hosts ADD COLUMN firmware INTEGER NOT NULL DEFAULT 0 CHECK (firmware IN (0, 1, "
    "2));"
    "ALTER TABLE hosts ADD COLUMN power_state INTEGER NOT NULL DEFAULT 0 "
    "CHECK (power_state IN (0, 1, 2));"
    "ALTER TABLE hosts ADD COLUMN power_updated_ms INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX hosts_bmc ON hosts(rack_id) WHERE bmc_url != '';"
    "CREATE TABLE power_commands ("
    "  id INTEGER PRIMARY KEY,"
    "  uuid TEXT NOT NULL UNIQUE,"
    "  host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,"
    "  rack_id INTEGER NOT NULL REFERENCES racks(id),"
    "  action INTEGER NOT NULL CHECK (action BETWEEN 1 AND 5),"
    "  boot_device INTEGER NOT NULL CHECK (boot_device BETWEEN 0 AND 2),"
    "  efi INTEGER NOT NULL CHECK (efi IN (0, 1)),"
    "  install_id INTEGER REFERENCES installs(id) ON DELETE SET NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),"
    "  power_state INTEGER NOT NULL DEFAULT 0,"
    "  message TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX power_pending ON power_commands(rack_id, id) WHERE state = 'pending';"
    "CREATE INDEX power_host ON power_commands(host_id);"
    "CREATE INDEX power_install ON power_commands(install_id) WHERE install_id IS NOT NULL;"
    "CREATE TABLE events_v7 ("
    "  id INTEGER PRIMARY KEY,"
    "  rack_id INTEGER NOT NULL REFERENCES racks(id),"
    "  journal_epoch INTEGER NOT NULL DEFAULT 0,"
    "  agent_seq INTEGER NOT NULL CHECK (agent_seq >= 1),"
    "  install_id INTEGER REFERENCES installs(id) ON DELETE CASCADE,"
    "  host_id INTEGER REFERENCES hosts(id) ON DELETE CASCADE,"
    "  host TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  received_ms INTEGER NOT NULL,"
    "  phase INTEGER NOT NULL,"
    "  percent INTEGER NOT NULL,"
    "  message TEXT NOT NULL,"
    "  refused TEXT,"
    "  UNIQUE (rack_id, journal_epoch, agent_seq),"
    "  CHECK (refused IS NULL OR (install_id IS NULL AND host_id IS NULL)),"
    "  CHECK (refused IS NOT NULL OR install_id IS NOT NULL OR host_id IS NOT NULL)"
    ") STRICT;"
    "INSERT INTO events_v7 (id, rack_id, journal_epoch, agent_seq, install_id, host_id, host, "
    "  time_ms, received_ms, phase, percent, message, refused) "
    "  SELECT id, rack_id, journal_epoch, agent_seq, install_id, NULL, host, time_ms, "
    "  received_ms, phase, percent, message, refused FROM events;"
    "DROP TABLE events;"
    "ALTER TABLE events_v7 RENAME TO events;"
    "CREATE INDEX events_install ON events(install_id, id) WHERE install_id IS NOT NULL;"
    "CREATE INDEX events_host ON events(host_id, id) WHERE host_id IS NOT NULL;"
    "CREATE INDEX events_received ON events(received_ms);"
    "CREATE INDEX events_refused ON events(id) WHERE refused IS NOT NULL;",
    /* 8: image profiles (issue 14). A profile's kind (0 install, 1 image),
     * its SSH keys (authorized_keys lines joined by '\n'; a key holds no
     * newline, model_ssh_key_valid) and its cloud-init user-data template
     * ('' when none). A disk image is image kind 5: images and
     * profile_images are rebuilt for their kind CHECK, ids kept. The child
     * goes first and the new parent is renamed last, so no foreign key
     * ever points at a dropped table (foreign_keys is on, and a PRAGMA
     * cannot turn it off inside the migration's transaction); SQLite's
     * RENAME rewrites profile_images' reference to the new name. */
    "ALTER TABLE profiles ADD COLUMN kind INTEGER NOT NULL DEFAULT 0 CHECK (kind IN (0, 1));"
    "ALTER TABLE profiles ADD COLUMN ssh_authorized_keys TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE profiles ADD COLUMN user_data TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE images_v8 ("
    "  id INTEGER PRIMARY KEY,"
    "  sha256 BLOB NOT NULL CHECK (length(sha256) = 32),"
    "  url TEXT NOT NULL,"
    "  size INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),"
    "  name TEXT NOT NULL,"
    "  kind INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 5),"
    "  UNIQUE (sha256, url)"
    ") STRICT;"
    "INSERT INTO images_v8 (id, sha256, url, size, name, kind) "
    "  SELECT id, sha256, url, size, name, kind FROM images;"
    "CREATE TABLE profile_images_v8 ("
    "  profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  image_id INTEGER NOT NULL REFERENCES images_v8(id),"
    "  kind INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 5),"
    "  name TEXT NOT NULL,"
    "  PRIMARY KEY (profile_id, position),"
    "  UNIQUE (profile_id, name)"
    ") STRICT;"
    "INSERT INTO profile_images_v8 (profile_id, position, image_id, kind, name) "
    "  SELECT profile_id, position, image_id, kind, name FROM profile_images;"
    "DROP TABLE profile_images;"
    "DROP TABLE images;"
    "ALTER TABLE images_v8 RENAME TO images;"
    "ALTER TABLE profile_images_v8 RENAME TO profile_images;"
    "CREATE INDEX profile_images_image ON profile_images(image_id);",
    /* 9: how a profile's UEFI hosts boot (issue 19): 0 iPXE, 1 a Unified
     * Kernel Image (model/profile.h uefi_boot). */
    "ALTER TABLE profiles ADD COLUMN uefi_boot INTEGER NOT NULL DEFAULT 0 "
    "CHECK (uefi_boot IN (0, 1));",
    /* 10: profile kind 2, debian-installer (issue 16). A column's CHECK
     * cannot be altered: a new column takes the values, the old one goes
     * (a column's own CHECK does not stop DROP COLUMN) and the new one
     * takes its name. */
    "ALTER TABLE profiles ADD COLUMN kind_v10 INTEGER NOT NULL DEFAULT 0 "
    "CHECK (kind_v10 IN (0, 1, 2));"
    "UPDATE profiles SET kind_v10 = kind;"
    "ALTER TABLE profiles DROP COLUMN kind;"
    "ALTER TABLE profiles RENAME COLUMN kind_v10 TO kind;",
    /* 11: what an agent reports of itself with its syncs (AgentStatus):
     * its image cache's use and limit, and its render context (the packed
     * RenderContext message, kept as the agent sent it so that the web
     * view renders with exactly that; NULL until reported). status_ms: when
     * it last reported, 0 never. */
    "ALTER TABLE agents ADD COLUMN cache_bytes INTEGER NOT NULL DEFAULT 0 "
    "CHECK (cache_bytes >= 0);"
    "ALTER TABLE agents ADD COLUMN cache_limit_bytes INTEGER NOT NULL DEFAULT 0 "
    "CHECK (cache_limit_bytes >= 0);"
    "ALTER TABLE agents ADD COLUMN status_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN render_context BLOB;",
    /* 12: several agents per rack (issue 17), keyed (rack, instance):
     * agent 1 is the rack's name, agent N its certificate's "RACK/N". Each
     * keeps its own acks, journal and seqs, so events are unique per
     * (rack, agent, journal epoch, seq). Both tables are rebuilt for their
     * new keys, ids kept; what was stored is agent 1's. */
    "CREATE TABLE agents_v12 ("
    "  rack_id INTEGER NOT NULL REFERENCES racks(id) ON DELETE CASCADE,"
    "  instance INTEGER NOT NULL CHECK (instance BETWEEN 1 AND 9),"
    "  name TEXT NOT NULL DEFAULT '',"
    "  version TEXT NOT NULL DEFAULT '',"
    "  last_seen_ms INTEGER NOT NULL DEFAULT 0,"
    "  acked_generation INTEGER NOT NULL DEFAULT 0,"
    "  stored_through INTEGER NOT NULL DEFAULT 0,"
    "  journal TEXT NOT NULL DEFAULT '',"
    "  journal_epoch INTEGER NOT NULL DEFAULT 0,"
    "  cache_bytes INTEGER NOT NULL DEFAULT 0 CHECK (cache_bytes >= 0),"
    "  cache_limit_bytes INTEGER NOT NULL DEFAULT 0 CHECK (cache_limit_bytes >= 0),"
    "  status_ms INTEGER NOT NULL DEFAULT 0,"
    "  render_context BLOB,"
    "  PRIMARY KEY (rack_id, instance)"
    ") STRICT;"
    "INSERT INTO agents_v12 (rack_id, instance, name, version, last_seen_ms, acked_generation, "
    "  stored_through, journal, journal_epoch, cache_bytes, cache_limit_bytes, status_ms, "
    "  render_context) "
    "  SELECT rack_id, 1, name, version, last_seen_ms, acked_generation, stored_through, "
    "  journal, journal_epoch, cache_bytes, cache_limit_bytes, status_ms, render_context "
    "  FROM agents;"
    "DROP TABLE agents;"
    "ALTER TABLE agents_v12 RENAME TO agents;"
    "CREATE TABLE events_v12 ("
    "  id INTEGER PRIMARY KEY,"
    "  rack_id INTEGER NOT NULL REFERENCES racks(id),"
    "  agent_instance INTEGER NOT NULL DEFAULT 1 CHECK (agent_instance BETWEEN 1 AND 9),"
    "  journal_epoch INTEGER NOT NULL DEFAULT 0,"
    "  agent_seq INTEGER NOT NULL CHECK (agent_seq >= 1),"
    "  install_id INTEGER REFERENCES installs(id) ON DELETE CASCADE,"
    "  host_id INTEGER REFERENCES hosts(id) ON DELETE CASCADE,"
    "  host TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  received_ms INTEGER NOT NULL,"
    "  phase INTEGER NOT NULL,"
    "  percent INTEGER NOT NULL,"
    "  message TEXT NOT NULL,"
    "  refused TEXT,"
    "  UNIQUE (rack_id, agent_instance, journal_epoch, agent_seq),"
    "  CHECK (refused IS NULL OR (install_id IS NULL AND host_id IS NULL)),"
    "  CHECK (refused IS NOT NULL OR install_id IS NOT NULL OR host_id IS NOT NULL)"
    ") STRICT;"
    "INSERT INTO events_v12 (id, rack_id, agent_instance, journal_epoch, agent_seq, install_id, "
    "  host_id, host, time_ms, received_ms, phase, percent, message, refused) "
    "  SELECT id, rack_id, 1, journal_epoch, agent_seq, install_id, host_id, host, time_ms, "
    "  received_ms, phase, percent, message, refused FROM events;"
    "DROP TABLE events;"
    "ALTER TABLE events_v12 RENAME TO events;"
    "CREATE INDEX events_install ON events(install_id, id) WHERE install_id IS NOT NULL;"
    "CREATE INDEX events_host ON events(host_id, id) WHERE host_id IS NOT NULL;"
    "CREATE INDEX events_received ON events(received_ms);"
    "CREATE INDEX events_refused ON events(id) WHERE refused IS NOT NULL;",
};

/* ---- Statements -------------------------------------------------------- */

#define INSTALL_COLS_FOR_INTENT                                                                    \
    "i.uuid, i.token, i.attempt, i.state, i.profile_id, h.id, h.name, r.name, h.address, "         \
    "h.prefix_length, h.gateway, h.hostname"
#define HOST_COLS "h.id, h.name, r.name, h.address, h.prefix_length, h.gateway, h.hostname"
/* A host's BMC columns as host_bmc_from_row() reads them (no password: only
 * the rack's sync reads it, ST_BMCS_OF_RACK). */
#define HOST_BMC_COLS                                                                              \
    "h.bmc_url, h.bmc_user, h.bmc_password != '', h.firmware, h.power_state, h.power_updated_ms"
#define STATUS_SELECT                                                                              \
    "SELECT h.name, r.name, i.uuid, p.name, i.state, i.phase, i.percent, i.updated_ms, "           \
    "i.attempt, i.message, h.power_state, h.power_updated_ms "                                     \
    "FROM hosts h JOIN racks r ON r.id = h.rack_id "                                               \
    "LEFT JOIN installs i ON i.id = (SELECT max(id) FROM installs WHERE host_id = h.id) "          \
    "LEFT JOIN profiles p ON p.id = i.profile_id "

/* A page of hosts by name (store_page): ?1 the name to start after ("":
 * from the first), ?2 the limit (-1: none), ?3 the rack, or the racks as
 * a JSON array of names (json_each: one statement for any number of
 * racks). Each reads one range of an index in name order, from ?1 on,
 * until the page is full:
 *  - every rack: hosts' UNIQUE (name);
 *  - one rack: hosts_rack (rack_id, name), that rack's hosts only;
 *  - a set of racks: hosts' UNIQUE (name) too, skipping other racks' hosts
 *    (the unary + keeps SQLite off hosts_rack). By hosts_rack SQLite
 *    would read every selected host after ?1 and sort them for each page:
 *    a listing of 100 racks of 1,000 took 1.9 s, against 0.2 s for
 *    every host. This way the pages of a listing read each host once in
 *    all; one page reads at most the whole index (20 ms at 100,000). */
#define PAGE_ALL  "h.name > ?1 ORDER BY h.name LIMIT ?2"
#define PAGE_RACK "h.rack_id = (SELECT id FROM racks WHERE name = ?3) AND " PAGE_ALL
#define PAGE_RACKS                                                                                 \
    "+h.rack_id IN (SELECT id FROM racks WHERE name IN (SELECT value FROM json_each(?3))) "        \
    "AND " PAGE_ALL
/* A page of hosts with their MACs, one row per MAC (in position order)
 * and the DUID most recently learned for any of them: the host's row and
 * its MACs in one query, not three per host. */
#define HOSTS_PAGE(where)                                                                          \
    "SELECT h.id, h.name, r.name, h.address, h.prefix_length, h.gateway, h.hostname, h.duid, "     \
    "m.mac, " HOST_BMC_COLS " FROM (SELECT h.id, h.name, h.rack_id, h.address, h.prefix_length, "  \
    "h.gateway, h.hostname, h.bmc_url, h.bmc_user, h.bmc_password, h.firmware, h.power_state, "    \
    "h.power_updated_ms, (SELECT d.duid FROM host_macs dm JOIN host_duids d ON d.mac = dm.mac "    \
    "WHERE dm.host_id = h.id ORDER BY d.last_seen_ms DESC LIMIT 1) AS duid FROM hosts h "          \
    "WHERE " where ") h JOIN racks r ON r.id = h.rack_id "                                         \
    "LEFT JOIN host_macs m ON m.host_id = h.id ORDER BY h.name, m.position"

/* A power command as power_from_row() reads it (p: power_commands, h: its
 * host, i: its install if any). */
#define POWER_COLS                                                                                 \
    "p.uuid, h.name, p.action, p.boot_device, p.efi, coalesce(i.uuid, ''), p.state, "              \
    "p.power_state, p.message, p.updated_ms"

/* The current journal epoch of agent ?n of the rack ?1 (0 before it made
 * contact). */
#define JOURNAL_EPOCH_OF_AGENT(n)                                                                  \
    "coalesce((SELECT journal_epoch FROM agents WHERE rack_id = ?1 AND instance = ?" #n "), 0)"

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
    ST_INSTALLS_COUNT,
    ST_INTENTS_OF_RACK,
    ST_REQUESTED_OF_RACK_SET_STATE,
    ST_OVERDUE,
    ST_EVENT_INSERT,
    ST_EVENT_EXISTS,
    ST_EVENTS_STORED_IN,
    ST_EVENT_PHASES_ELSEWHERE,
    ST_AGENT_OTHER,
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
                      "i.state IN " ACTIVE_STATES " WHERE h.rack_id = r.id), "
                      "coalesce(a.cache_bytes, 0), coalesce(a.cache_limit_bytes, 0), "
                      "coalesce(a.status_ms, 0), a.render_context IS NOT NULL, "
                      "(SELECT count(*) FROM agents WHERE rack_id = r.id) "
                      "FROM racks r LEFT JOIN agents a ON a.rack_id = r.id AND a.instance = "
                      "(SELECT min(instance) FROM agents WHERE rack_id = r.id) ORDER BY r.name",
    [ST_AGENTS_LIST] = "SELECT r.name, a.instance, a.name, a.version, a.last_seen_ms, "
                       "a.acked_generation, a.stored_through, a.cache_bytes, "
                       "a.cache_limit_bytes, a.status_ms, a.render_context IS NOT NULL "
                       "FROM agents a JOIN racks r ON r.id = a.rack_id ORDER BY r.name, a.instance",
    [ST_AGENT_ENSURE] =
        "INSERT INTO agents (rack_id, instance) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    [ST_AGENT_SEEN] = "UPDATE agents SET name = ?2, version = ?3, last_seen_ms = ?4 "
                      "WHERE rack_id = ?1 AND instance = ?5",
    [ST_AGENT_ACK] = "UPDATE agents SET acked_generation = ?2, last_seen_ms = ?3 "
                     "WHERE rack_id = ?1 AND instance = ?4",
    [ST_AGENT_STORED] = "UPDATE agents SET stored_through = ?2, last_seen_ms = ?3 "
                        "WHERE rack_id = ?1 AND instance = ?4 RETURNING stored_through",
    [ST_AGENT_THROUGH] = "SELECT stored_through FROM agents WHERE rack_id = ?1 AND instance = ?2",
    /* A row that would not change is not written (no WAL frame, no fsync)
     * unless its report is ?6 ms old (store.h). */
    [ST_AGENT_STATUS] =
        "UPDATE agents SET cache_bytes = ?2, cache_limit_bytes = ?3, "
        "render_context = coalesce(?4, render_context), status_ms = ?5, "
        "last_seen_ms = ?5 WHERE rack_id = ?1 AND instance = ?7 AND (cache_bytes IS NOT ?2 "
        "OR cache_limit_bytes IS NOT ?3 OR (?4 IS NOT NULL AND "
        "render_context IS NOT ?4) OR status_ms <= ?5 - ?6)",
    [ST_AGENT_RENDER] = "SELECT render_context FROM agents WHERE rack_id = ?1 "
                        "AND render_context IS NOT NULL ORDER BY status_ms DESC LIMIT 1",
    [ST_HOST_BY_NAME] = "SELECT id, rack_id FROM hosts WHERE name = ?1",
    [ST_HOST_ADDR_OWNER] = "SELECT name FROM hosts WHERE address = ?1 AND name != ?2",
    [ST_HOST_MAC_OWNER] = "SELECT h.name FROM host_macs m JOIN hosts h ON h.id = m.host_id "
                          "WHERE m.mac = ?1 AND h.name != ?2",
    [ST_HOST_INSERT] =
        "INSERT INTO hosts (name, rack_id, address, prefix_length, gateway, hostname, bmc_url, "
        "bmc_user, bmc_password, firmware) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
        "RETURNING id",
    [ST_HOST_UPDATE] = "UPDATE hosts SET rack_id = ?2, address = ?3, prefix_length = ?4, "
                       "gateway = ?5, hostname = ?6, bmc_url = ?7, bmc_user = ?8, "
                       "bmc_password = ?9, firmware = ?10 WHERE id = ?1",
    [ST_HOST_DELETE] = "DELETE FROM hosts WHERE id = ?1",
    [ST_HOST_GET] = "SELECT " HOST_COLS ", " HOST_BMC_COLS " FROM hosts h "
                    "JOIN racks r ON r.id = h.rack_id WHERE h.name = ?1",
    /* Separate statements for every rack, one and a set: "?3 IS NULL OR
     * ..." keeps SQLite from using the rack's index (a scan of every host
     * per rack, 500 times for an install of 500 racks). */
    [ST_HOSTS_PAGE] = HOSTS_PAGE(PAGE_ALL),
    [ST_HOSTS_PAGE_OF_RACK] = HOSTS_PAGE(PAGE_RACK),
    [ST_HOSTS_PAGE_OF_RACKS] = HOSTS_PAGE(PAGE_RACKS),
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
        "keep_ra, updated_ms, any_source, root_device, kind, ssh_authorized_keys, user_data, "
        "uefi_boot) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
        "ON CONFLICT (name) DO UPDATE "
        "SET cmdline = excluded.cmdline, kickstart = excluded.kickstart, "
        "kickstart_sha256 = excluded.kickstart_sha256, overlay = excluded.overlay, "
        "ip_mode = excluded.ip_mode, keep_ra = excluded.keep_ra, updated_ms = excluded.updated_ms, "
        "any_source = excluded.any_source, root_device = excluded.root_device, "
        "kind = excluded.kind, ssh_authorized_keys = excluded.ssh_authorized_keys, "
        "user_data = excluded.user_data, uefi_boot = excluded.uefi_boot "
        "RETURNING id",
    [ST_PROFILE_GET] = "SELECT id, name, cmdline, CASE WHEN ?2 THEN kickstart ELSE '' END, "
                       "kickstart_sha256, overlay, ip_mode, keep_ra, any_source, root_device, "
                       "kind, ssh_authorized_keys, CASE WHEN ?2 THEN user_data ELSE '' END, "
                       "uefi_boot "
                       "FROM profiles "
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
    [ST_INSTALL_SET_STATE] = "UPDATE installs SET " SET_STATE_STAMPS ", "
                             "message = coalesce(?4, message) WHERE id = ?1",
    [ST_REQUESTED_OF_RACK_SET_STATE] =
        "UPDATE installs SET " SET_STATE_STAMPS " WHERE state = 'requested' "
        "AND generation <= ?4 AND host_id IN (SELECT id FROM hosts WHERE rack_id = ?1)",
    [ST_INSTALL_SET_PHASE] = "UPDATE installs SET phase = ?2, percent = ?3, message = ?4, "
                             "updated_ms = ?5 WHERE id = ?1",
    [ST_INSTALL_SET_NOTE] = "UPDATE installs SET message = ?2, updated_ms = ?3 WHERE id = ?1",
    [ST_INSTALL_BY_UUID] = "SELECT i.id, i.host_id, i.state, i.phase, p.kind, "
                           "coalesce(i.dispatched_ms, 0) FROM installs i "
                           "JOIN profiles p ON p.id = i.profile_id WHERE i.uuid = ?1",
    [ST_INSTALLS_COUNT] = "SELECT state, count(*) FROM installs GROUP BY state",
    [ST_INTENTS_OF_RACK] = "SELECT " INSTALL_COLS_FOR_INTENT " FROM hosts h "
                           "JOIN racks r ON r.id = h.rack_id "
                           "JOIN installs i ON i.host_id = h.id AND i.state IN " ACTIVE_STATES
                           " WHERE h.rack_id = ?1 ORDER BY i.id",
    /* A coarse filter; install_deadline() decides. */
    [ST_OVERDUE] = "SELECT i.id, i.state, i.created_ms, coalesce(i.dispatched_ms, 0), "
                   "coalesce(i.booting_ms, 0), coalesce(i.installing_ms, 0), h.rack_id "
                   "FROM installs i JOIN hosts h ON h.id = i.host_id "
                   "WHERE i.state IN " ACTIVE_STATES " AND ("
                   "(?2 > 0 AND i.state IN ('dispatched','booting') AND "
                   "coalesce(i.dispatched_ms, i.booting_ms) <= ?1 - ?2) OR "
                   "(?3 > 0 AND i.state = 'installing' AND i.installing_ms <= ?1 - ?3))",
    [ST_EVENT_INSERT] =
        "INSERT INTO events (rack_id, agent_instance, journal_epoch, agent_seq, install_id, host, "
        "time_ms, received_ms, phase, percent, message, refused, host_id) VALUES (?1, "
        "?12, " JOURNAL_EPOCH_OF_AGENT(
            12) ", ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
                "ON CONFLICT (rack_id, agent_instance, journal_epoch, agent_seq) DO NOTHING",
    [ST_EVENT_EXISTS] = "SELECT 1 FROM events WHERE rack_id = ?1 AND agent_instance = ?3 AND "
                        "journal_epoch = " JOURNAL_EPOCH_OF_AGENT(3) " AND agent_seq = ?2",
    [ST_EVENTS_STORED_IN] = "SELECT agent_seq FROM events WHERE rack_id = ?1 AND "
                            "agent_instance = ?2 AND journal_epoch = " JOURNAL_EPOCH_OF_AGENT(
                                2) " AND agent_seq > ?3 AND agent_seq <= ?4 ORDER BY agent_seq",
    /* An install's events are few: events_install's range of it. */
    [ST_EVENT_PHASES_ELSEWHERE] = "SELECT DISTINCT phase FROM events WHERE install_id = ?1 "
                                  "AND agent_instance != ?2",
    [ST_AGENT_OTHER] = "SELECT 1 FROM agents WHERE rack_id = ?1 AND instance != ?2 LIMIT 1",
    [ST_AGENT_JOURNAL] = "SELECT journal FROM agents WHERE rack_id = ?1 AND instance = ?2",
    [ST_AGENT_JOURNAL_SET] = "UPDATE agents SET journal = ?2, journal_epoch = journal_epoch + ?3, "
                             "stored_through = CASE WHEN ?3 > 0 THEN 0 ELSE stored_through END "
                             "WHERE rack_id = ?1 AND instance = ?4",
    [ST_STATUS_HOST] = STATUS_SELECT "WHERE h.name = ?1",
    [ST_STATUS_PAGE] = STATUS_SELECT "WHERE " PAGE_ALL,
    [ST_STATUS_PAGE_OF_RACK] = STATUS_SELECT "WHERE " PAGE_RACK,
    [ST_STATUS_PAGE_OF_RACKS] = STATUS_SELECT "WHERE " PAGE_RACKS,
    /* Stored events are an install's (install_id), a host's power events
     * (host_id), or both; refused ones neither. e.host is the host's name
     * as checked when it was stored. */
    [ST_EVENTS_ALL] = "SELECT e.id, e.time_ms, e.host, coalesce(i.uuid, ''), e.phase, e.percent, "
                      "e.message FROM events e LEFT JOIN installs i ON i.id = e.install_id "
                      "WHERE e.id > ?1 AND e.refused IS NULL ORDER BY e.id LIMIT ?2",
    /* The rowid's maximum: one step down the table's b-tree. */
    [ST_EVENTS_LAST] = "SELECT coalesce(max(id), 0) FROM events",
    /* The host's installs' events and its power events: two index ranges
     * (events_install per install, events_host), merged by id. */
    [ST_EVENTS_HOST] = "SELECT e.id, e.time_ms, e.host, coalesce(i.uuid, ''), e.phase, e.percent, "
                       "e.message FROM events e LEFT JOIN installs i ON i.id = e.install_id "
                       "WHERE e.id IN (SELECT ei.id FROM installs hi JOIN events ei "
                       "ON ei.install_id = hi.id AND ei.id > ?1 WHERE hi.host_id = ?2 "
                       "UNION SELECT eh.id FROM events eh WHERE eh.host_id = ?2 AND eh.id > ?1) "
                       "ORDER BY e.id LIMIT ?3",
    /* An event may go once its agent cannot send it again as new: its seq
     * is at or below the rack's stored_through (a re-sent one is then a
     * duplicate without its row), or it is of an older journal. */
    [ST_EVENTS_PRUNE_OLD] =
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e "
        "JOIN agents a ON a.rack_id = e.rack_id AND a.instance = e.agent_instance "
        "WHERE e.received_ms < ?1 AND "
        "(e.journal_epoch < a.journal_epoch OR e.agent_seq <= a.stored_through) "
        "ORDER BY e.received_ms LIMIT ?2)",
    /* Refused events older than the ?1 newest ones. */
    [ST_EVENTS_PRUNE_REFUSED] =
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e "
        "JOIN agents a ON a.rack_id = e.rack_id AND a.instance = e.agent_instance "
        "WHERE e.refused IS NOT NULL AND "
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
    [ST_POWER_INSERT] = "INSERT INTO power_commands (uuid, host_id, rack_id, action, boot_device, "
                        "efi, install_id, state, created_ms, updated_ms) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)",
    [ST_POWER_BY_UUID] = "SELECT id, host_id, rack_id, state != 'pending' FROM power_commands "
                         "WHERE uuid = ?1",
    [ST_POWER_FINISH] = "UPDATE power_commands SET state = CASE WHEN ?2 THEN 'done' ELSE "
                        "'failed' END, power_state = ?3, message = ?4, updated_ms = ?5 "
                        "WHERE id = ?1 AND state = 'pending'",
    [ST_HOST_POWER_SET] = "UPDATE hosts SET power_state = ?2, power_updated_ms = ?3 WHERE id = ?1",
    [ST_POWER_GET] = "SELECT " POWER_COLS " FROM power_commands p JOIN hosts h ON h.id = p.host_id "
                     "LEFT JOIN installs i ON i.id = p.install_id WHERE p.uuid = ?1",
    [ST_BMCS_OF_RACK] = "SELECT name, bmc_url, bmc_user, bmc_password, firmware FROM hosts "
                        "WHERE rack_id = ?1 AND bmc_url != '' ORDER BY name",
    [ST_POWER_PENDING_OF_RACK] =
        "SELECT " POWER_COLS " FROM power_commands p JOIN hosts h ON h.id = p.host_id "
        "LEFT JOIN installs i ON i.id = p.install_id WHERE p.rack_id = ?1 AND "
        "p.state = 'pending' ORDER BY p.id",
    [ST_POWER_DUE] = "SELECT id, host_id, rack_id FROM power_commands WHERE state = 'pending' "
                     "AND created_ms < ?1 ORDER BY id LIMIT ?2",
};

struct store_backend {
    sqlite3 *db;
    char *path;  /* for connect() */
    int lock_fd; /* -1 on a connect() connection: its parent holds the lock */
    sqlite3_stmt *stmts[_ST_MAX];
    char *err; /* the store's error buffer (open/connect) */
    size_t err_len;
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
    }
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
static int db_fail(backend *b, int rc, const char *what)
{
    return fail(b, sqlite_errno(rc) ?: -EIO, "%s: %s", what, sqlite3_errmsg(b->db));
}

static int stmt_get(backend *b, int id, sqlite3_stmt **ret)
{
    if (!b->stmts[id]) {
        int rc = sqlite3_prepare_v3(b->db, statements[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &b->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            return db_fail(b, rc, "prepare");
        }
    }
    *ret = b->stmts[id];
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

/* Steps a statement: 1 with a row, 0 when done, -errno on failure. */
static int step(backend *b, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    return db_fail(b, rc, "step");
}

/* Runs a statement that returns no rows we need. */
static int step_done(backend *b, sqlite3_stmt *st)
{
    int r;
    while ((r = step(b, st)) == 1) {
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

static int exec(backend *b, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(b->db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        int r = fail(b, sqlite_errno(rc) ?: -EIO, "%s", err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        return r;
    }
    return 0;
}

/* A statement with one integer parameter and no rows. */
static int run_id(backend *b, int id, int64_t arg)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, id, &st));
    sqlite3_bind_int64(st, 1, arg);
    return step_done(b, st);
}

static int col_state(backend *b, sqlite3_stmt *st, int i, install_state *ret)
{
    if (install_state_from_string(col_text(st, i), ret) < 0) {
        return fail(b, -EIO, "store: unknown install state '%s'", col_text(st, i));
    }
    return 0;
}

/* ---- Open, migrate, close ---------------------------------------------- */

static int read_pragma_int(backend *b, const char *pragma, int *ret)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(b->db, pragma, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return db_fail(b, rc, pragma);
    }
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int r = db_fail(b, rc, pragma);
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

const char *store_page_sql(unsigned i)
{
    static const int pages[] = {
        ST_HOSTS_PAGE,          ST_HOSTS_PAGE_OF_RACK,   ST_HOSTS_PAGE_OF_RACKS, ST_STATUS_PAGE,
        ST_STATUS_PAGE_OF_RACK, ST_STATUS_PAGE_OF_RACKS, ST_EVENTS_ALL,          ST_EVENTS_HOST,
    };
    return i < ARRAY_SIZE(pages) ? statements[pages[i]] : NULL;
}

static int migrate(backend *b)
{
    int version, app_id;

    TRY(read_pragma_int(b, "PRAGMA user_version", &version));
    TRY(read_pragma_int(b, "PRAGMA application_id", &app_id));
    if (app_id != 0 && app_id != STORE_APPLICATION_ID) {
        return fail(b, -EPROTO, "not a rackboot store (application_id %d)", app_id);
    }
    if (version > (int)ARRAY_SIZE(migrations)) {
        return fail(b, -EPROTO,
                    "store schema version %d is newer than this controller's %d: "
                    "run a newer rackboot-controller",
                    version, (int)ARRAY_SIZE(migrations));
    }
    if (version < 0) {
        return fail(b, -EPROTO, "store schema version %d is invalid", version);
    }
    for (int v = version + 1; v <= (int)ARRAY_SIZE(migrations); v++) {
        char set[64];
        snprintf(set, sizeof(set), "PRAGMA user_version = %d", v);
        TRY(exec(b, "BEGIN IMMEDIATE"));
        int r = exec(b, migrations[v - 1]);
        if (r >= 0) {
            r = exec(b, set);
        }
        if (r >= 0) {
            r = exec(b, "COMMIT");
        }
        if (r < 0) {
            _cleanup_free_ char *saved = strdup(b->err ? b->err : "");
            (void)exec(b, "ROLLBACK");
            fail(b, r, "migration to schema %d: %s", v, saved ? saved : "");
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
static int db_files_private(backend *b, const char *path, const char *suffix)
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
        return fail(b, r, "%s: %s", name, strerror(-r));
    }
    return 0;
}

/* The connection and its settings, on a file already made private. */
static int connect_db(backend *b, const char *path)
{
    int rc = sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        return fail(b, sqlite_errno(rc) ?: -EIO, "%s: %s", path,
                    b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc));
    }
    sqlite3_extended_result_codes(b->db, 1);
    TRY(exec(b, "PRAGMA busy_timeout = 5000"));
    return exec(b, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
}

static int open_db(backend *b, const char *path)
{
    _cleanup_free_ char *lock_path = NULL;
    if (asprintf(&lock_path, "%s.lock", path) < 0) {
        return -ENOMEM;
    }
    b->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (b->lock_fd < 0 || fchmod(b->lock_fd, 0600) < 0) {
        int r = negative_errno();
        return fail(b, r, "%s: %s", lock_path, strerror(-r));
    }
    if (flock(b->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        int r = negative_errno();
        if (r == -EWOULDBLOCK) {
            return fail(b, -EBUSY, "%s is in use by another process", path);
        }
        return fail(b, r, "%s: %s", lock_path, strerror(-r));
    }
    TRY(db_files_private(b, path, ""));
    int rc = sqlite3_open_v2(
        path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        return fail(b, sqlite_errno(rc) ?: -EIO, "%s: %s", path,
                    b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc));
    }
    sqlite3_extended_result_codes(b->db, 1);
    TRY(exec(b, "PRAGMA busy_timeout = 5000"));
    /* journal_mode answers with the mode it got; WAL may be refused (e.g. on
     * a file system without shared memory), and we rely on it. */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(b->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_ROW) {
        int r = db_fail(b, rc, path);
        sqlite3_finalize(st);
        return r;
    }
    bool wal = strcmp(col_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (!wal) {
        return fail(b, -EIO, "%s: WAL mode not available", path);
    }
    /* SQLite gives -wal and -shm the database's mode, but files left by
     * an older version may be looser. */
    TRY(db_files_private(b, path, "-wal"));
    TRY(db_files_private(b, path, "-shm"));
    TRY(exec(b, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"));
    return migrate(b);
}

static void sq_close(backend *b)
{
    if (!b) {
        return;
    }
    free(b->path);
    for (size_t i = 0; i < _ST_MAX; i++) {
        sqlite3_finalize(b->stmts[i]);
    }
    sqlite3_close(b->db);
    if (b->lock_fd >= 0) {
        close(b->lock_fd);
    }
    free(b);
}

static void sq_closep(backend **b)
{
    sq_close(*b);
    *b = NULL;
}

static int new_backend(const char *path, char *errbuf, size_t errlen, backend **ret)
{
    backend *b = calloc(1, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    b->lock_fd = -1;
    b->err = errbuf;
    b->err_len = errlen;
    b->path = strdup(path);
    if (!b->path) {
        sq_close(b);
        return -ENOMEM;
    }
    *ret = b;
    return 0;
}

static int sq_open(const char *path, char *errbuf, size_t errlen, backend **ret)
{
    backend *b;
    TRY(new_backend(path, errbuf, errlen, &b));
    int r = open_db(b, path);
    if (r < 0) {
        sq_close(b);
        return r;
    }
    *ret = b;
    return 0;
}

static int sq_connect(const backend *parent, char *errbuf, size_t errlen, backend **ret)
{
    backend *b;
    TRY(new_backend(parent->path, errbuf, errlen, &b));
    int r = connect_db(b, b->path);
    if (r < 0) {
        sq_close(b);
        return r;
    }
    *ret = b;
    return 0;
}

/* sqlite:///ABS/PATH: the location is the absolute path. */
static int sq_location_check(const char *loc, const char **ret_why)
{
    if (loc[0] != '/' || loc[1] == '\0' || loc[1] == '/') {
        *ret_why = "expected sqlite:///PATH with an absolute PATH to the database file";
        return -EINVAL;
    }
    if (strpbrk(loc, "?#")) {
        *ret_why = "a sqlite:// URL takes no query or fragment";
        return -EINVAL;
    }
    return 0;
}

/* Read-only, taking no lock: a running controller may hold the file. A
 * missing file is a store to be made (version 0), as sq_open would make
 * it. */
static int sq_peek_version(const char *path, char *errbuf, size_t errlen, int *ret_version)
{
    if (access(path, F_OK) < 0) {
        if (errno != ENOENT) {
            int r = negative_errno();
            snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
            return r;
        }
        *ret_version = 0;
        return 0;
    }
    _cleanup_(sq_closep) backend *b = NULL;
    TRY(new_backend(path, errbuf, errlen, &b));
    int rc = sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        return fail(b, sqlite_errno(rc) ?: -EIO, "%s: %s", path,
                    b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc));
    }
    TRY(exec(b, "PRAGMA busy_timeout = 5000"));
    int version, app_id;
    TRY(read_pragma_int(b, "PRAGMA user_version", &version));
    TRY(read_pragma_int(b, "PRAGMA application_id", &app_id));
    if ((app_id != 0 && app_id != STORE_APPLICATION_ID) || version < 0) {
        return fail(b, -EPROTO, "%s: not a rackboot store", path);
    }
    *ret_version = version;
    return 0;
}

static int sq_schema_version(backend *b)
{
    int v = 0;
    TRY(read_pragma_int(b, "PRAGMA user_version", &v));
    return v;
}

/* ---- Transactions ------------------------------------------------------ */

static int tx_run(backend *b, int id)
{
    sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, id, &st));
    int r = step_done(b, st);
    sqlite3_reset(st);
    return r;
}

static int sq_begin(backend *b)
{
    return tx_run(b, ST_BEGIN);
}

static int sq_begin_read(backend *b)
{
    return exec(b, "BEGIN");
}

static int sq_commit(backend *b)
{
    return tx_run(b, ST_COMMIT);
}

static int sq_rollback(backend *b)
{
    return tx_run(b, ST_ROLLBACK);
}

static int sq_savepoint(backend *b)
{
    return tx_run(b, ST_SAVEPOINT);
}

static int sq_release(backend *b)
{
    return tx_run(b, ST_RELEASE);
}

static int sq_rollback_to(backend *b)
{
    return tx_run(b, ST_ROLLBACK_TO);
}

static bool sq_in_transaction(backend *b)
{
    return !sqlite3_get_autocommit(b->db);
}

/* ---- Racks and agents -------------------------------------------------- */

static int sq_rack_find(backend *b, const char *name, int64_t *ret_id, uint64_t *ret_generation)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_RACK_BY_NAME, &st));
    bind_text(st, 1, name);
    int r = step(b, st);
    if (r <= 0) {
        return r;
    }
    *ret_id = sqlite3_column_int64(st, 0);
    if (ret_generation) {
        *ret_generation = col_u64(st, 1);
    }
    return 1;
}

static int sq_rack_ensure(backend *b, const char *name, uint64_t now, int64_t *ret_id)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_RACK_INSERT, &st));
    bind_text(st, 1, name);
    bind_u64(st, 2, now);
    int r = step(b, st);
    if (r <= 0) {
        return r < 0 ? r : fail(b, -EIO, "rack %s: not created", name);
    }
    *ret_id = sqlite3_column_int64(st, 0);
    return step_done(b, st);
}

static int sq_rack_bump(backend *b, int64_t rack_id)
{
    return run_id(b, ST_RACK_BUMP, rack_id);
}

static int sq_racks_bump_of_profile(backend *b, int64_t profile_id)
{
    return run_id(b, ST_BUMP_RACKS_OF_PROFILE, profile_id);
}

static int sq_racks_list(backend *b, int (*cb)(const store_rack *r, void *userdata), void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;
    TRY(stmt_get(b, ST_RACKS_LIST, &st));
    while ((r = step(b, st)) == 1) {
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
            .cache_bytes = col_u64(st, 9),
            .cache_limit_bytes = col_u64(st, 10),
            .status_ms = col_u64(st, 11),
            .has_render_context = sqlite3_column_int(st, 12) != 0,
            .agents = (uint32_t)sqlite3_column_int64(st, 13),
        };
        TRY(cb(&row, userdata));
    }
    return r;
}

static int sq_agents_list(backend *b, int (*cb)(const store_agent_row *a, void *userdata),
                          void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;
    TRY(stmt_get(b, ST_AGENTS_LIST, &st));
    while ((r = step(b, st)) == 1) {
        store_agent_row row = {
            .rack = col_text(st, 0),
            .instance = (unsigned)sqlite3_column_int(st, 1),
            .agent = col_text(st, 2),
            .version = col_text(st, 3),
            .last_seen_ms = col_u64(st, 4),
            .acked_generation = col_u64(st, 5),
            .stored_through = col_u64(st, 6),
            .cache_bytes = col_u64(st, 7),
            .cache_limit_bytes = col_u64(st, 8),
            .status_ms = col_u64(st, 9),
            .has_render_context = sqlite3_column_int(st, 10) != 0,
        };
        TRY(cb(&row, userdata));
    }
    return r;
}

static int sq_agent_ensure(backend *b, int64_t rack_id, unsigned instance)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_AGENT_ENSURE, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    sqlite3_bind_int(st, 2, (int)instance);
    return step_done(b, st);
}

static int sq_agent_stored_through(backend *b, int64_t rack_id, unsigned instance, uint64_t *ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_AGENT_THROUGH, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    sqlite3_bind_int(st, 2, (int)instance);
    int r = step(b, st);
    TRY(r);
    *ret = r == 1 ? col_u64(st, 0) : 0;
    return 0;
}

static int sq_agent_journal_get(backend *b, int64_t rack_id, unsigned instance, char *buf,
                                size_t len)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_AGENT_JOURNAL, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    sqlite3_bind_int(st, 2, (int)instance);
    int r = step(b, st);
    TRY(r);
    snprintf(buf, len, "%s", r == 1 ? col_text(st, 0) : "");
    return 0;
}

static int sq_agent_journal_set(backend *b, int64_t rack_id, unsigned instance, const char *journal,
                                bool new_epoch)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_AGENT_JOURNAL_SET, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    bind_text(st, 2, journal);
    sqlite3_bind_int(st, 3, new_epoch ? 1 : 0);
    sqlite3_bind_int(st, 4, (int)instance);
    return step_done(b, st);
}

static int sq_agent_seen_set(backend *b, int64_t rack_id, unsigned instance, const char *agent,
                             const char *version, uint64_t now)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_AGENT_SEEN, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    bind_text(st, 2, agent);
    bind_text(st, 3, version);
    bind_u64(st, 4, now);
    sqlite3_bind_int(st, 5, (int)instance);
    return step_done(b, st);
}

static int sq_agent_status_set(backend *b, int64_t rack_id, unsigned instance,
                               const store_agent_status *status, uint64_t now)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_AGENT_STATUS, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    bind_u64(st, 2, status->cache_bytes);
    bind_u64(st, 3, status->cache_limit_bytes);
    if (status->render_context) {
        bind_blob(st, 4, status->render_context, status->render_context_len);
    } else {
        sqlite3_bind_null(st, 4);
    }
    bind_u64(st, 5, now);
    sqlite3_bind_int64(st, 6, STORE_AGENT_STATUS_REFRESH_MS);
    sqlite3_bind_int(st, 7, (int)instance);
    return step_done(b, st);
}

static int sq_agent_render_get(backend *b, int64_t rack_id, void **ret, size_t *ret_len)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_AGENT_RENDER, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    int r = step(b, st);
    if (r != 1) {
        return r;
    }
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    void *p = malloc(n ? n : 1);
    if (!p) {
        return -ENOMEM;
    }
    if (n > 0) {
        memcpy(p, sqlite3_column_blob(st, 0), n);
    }
    *ret = p;
    *ret_len = n;
    return 1;
}

static int sq_agent_acked_set(backend *b, int64_t rack_id, unsigned instance, uint64_t generation,
                              uint64_t now)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_AGENT_ACK, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    bind_u64(st, 2, generation);
    bind_u64(st, 3, now);
    sqlite3_bind_int(st, 4, (int)instance);
    return step_done(b, st);
}

static int sq_agent_stored_set(backend *b, int64_t rack_id, unsigned instance, uint64_t through,
                               uint64_t now)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_AGENT_STORED, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    bind_u64(st, 2, through);
    bind_u64(st, 3, now);
    sqlite3_bind_int(st, 4, (int)instance);
    return step_done(b, st);
}

/* ---- Hosts ------------------------------------------------------------- */

static int sq_host_find(backend *b, const char *name, int64_t *ret_id, int64_t *ret_rack_id)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_HOST_BY_NAME, &st));
    bind_text(st, 1, name);
    int r = step(b, st);
    if (r <= 0) {
        return r;
    }
    *ret_id = sqlite3_column_int64(st, 0);
    if (ret_rack_id) {
        *ret_rack_id = sqlite3_column_int64(st, 1);
    }
    return 1;
}

static int sq_host_macs(backend *b, int64_t host_id, uint8_t (*ret)[6], size_t max, size_t *ret_n)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    size_t n = 0;
    int r;
    TRY(stmt_get(b, ST_MACS_OF_HOST, &st));
    sqlite3_bind_int64(st, 1, host_id);
    while ((r = step(b, st)) == 1) {
        if (sqlite3_column_bytes(st, 0) == 6 && n < max) {
            memcpy(ret[n++], sqlite3_column_blob(st, 0), 6);
        }
    }
    TRY(r);
    *ret_n = n;
    return 0;
}

/* Fills h from a row of HOST_COLS (from column `c`), with MACs and DUID. */
static int host_from_row(backend *b, sqlite3_stmt *row, int c, store_host *h)
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
    TRY(sq_host_macs(b, id, h->macs, STORE_MACS_MAX, &h->n_macs));

    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_DUID_OF_HOST, &st));
    sqlite3_bind_int64(st, 1, id);
    int r = step(b, st);
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

/* Fills h's BMC fields from a row of HOST_BMC_COLS (from column `c`). */
static void host_bmc_from_row(sqlite3_stmt *row, int c, store_host *h)
{
    snprintf(h->bmc_url, sizeof(h->bmc_url), "%s", col_text(row, c));
    snprintf(h->bmc_user, sizeof(h->bmc_user), "%s", col_text(row, c + 1));
    h->bmc_password[0] = '\0';
    h->bmc_password_set = sqlite3_column_int(row, c + 2) != 0;
    h->firmware = (model_firmware)sqlite3_column_int(row, c + 3);
    h->power_state = sqlite3_column_int(row, c + 4);
    h->power_updated_ms = col_u64(row, c + 5);
}

static int sq_host_get(backend *b, const char *name, store_host *ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_HOST_GET, &st));
    bind_text(st, 1, name);
    int r = step(b, st);
    if (r <= 0) {
        return r;
    }
    TRY(host_from_row(b, st, 0, ret));
    host_bmc_from_row(st, 7, ret);
    return 1;
}

/* A page's statements: of every rack, of one, of a set. */
static const int hosts_page_stmts[3] = { ST_HOSTS_PAGE, ST_HOSTS_PAGE_OF_RACK,
                                         ST_HOSTS_PAGE_OF_RACKS };
static const int status_page_stmts[3] = { ST_STATUS_PAGE, ST_STATUS_PAGE_OF_RACK,
                                          ST_STATUS_PAGE_OF_RACKS };

/* The statement of a page (of `ids`, by its racks), with its parameters
 * bound. `json` keeps the racks' JSON text alive while the statement runs
 * (the caller frees it). */
static int page_stmt(backend *b, const int ids[3], const store_page *pg, sqlite3_stmt **ret,
                     char **json)
{
    sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ids[pg->n_racks < 2 ? pg->n_racks : 2], &st));
    bind_text(st, 1, pg->after ? pg->after : "");
    sqlite3_bind_int64(st, 2, pg->limit ? (sqlite3_int64)pg->limit : -1);
    if (pg->n_racks == 1) {
        bind_text(st, 3, pg->racks[0]);
    } else if (pg->n_racks > 1) {
        const char *bad = NULL;
        int r = store_col_racks_json(pg, json, &bad);
        if (r < 0) {
            sqlite3_clear_bindings(st);
            return r == -EINVAL ? fail(b, r, "rack name %s cannot be listed", bad) : r;
        }
        bind_text(st, 3, *json);
    }
    *ret = st;
    return 0;
}

static int sq_hosts_list(backend *b, const store_page *pg,
                         int (*cb)(const store_host *h, void *userdata), void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    _cleanup_free_ char *json = NULL;
    _cleanup_free_ store_host *h = malloc(sizeof(*h));
    int64_t id = 0; /* the host in h, 0: none yet */
    int count = 0, r;
    if (!h) {
        return -ENOMEM;
    }
    TRY(page_stmt(b, hosts_page_stmts, pg, &st, &json));
    /* One row per MAC, a host's rows together: a host is complete when the
     * next one starts, or the rows end. */
    while ((r = step(b, st)) == 1) {
        int64_t row_id = sqlite3_column_int64(st, 0);
        if (row_id != id) {
            if (id) {
                TRY(cb(h, userdata));
                count++;
            }
            id = row_id;
            memset(h, 0, sizeof(*h));
            snprintf(h->name, sizeof(h->name), "%s", col_text(st, 1));
            snprintf(h->rack, sizeof(h->rack), "%s", col_text(st, 2));
            if (sqlite3_column_bytes(st, 3) == 16) {
                memcpy(h->address, sqlite3_column_blob(st, 3), 16);
            }
            h->prefix_length = (uint32_t)sqlite3_column_int(st, 4);
            if (sqlite3_column_bytes(st, 5) == 16) {
                h->has_gateway = true;
                memcpy(h->gateway, sqlite3_column_blob(st, 5), 16);
            }
            snprintf(h->hostname, sizeof(h->hostname), "%s", col_text(st, 6));
            int n = sqlite3_column_bytes(st, 7);
            if (n > 0 && (size_t)n <= sizeof(h->duid)) {
                memcpy(h->duid, sqlite3_column_blob(st, 7), (size_t)n);
                h->duid_len = (size_t)n;
            }
            host_bmc_from_row(st, 9, h);
        }
        if (sqlite3_column_bytes(st, 8) == 6 && h->n_macs < STORE_MACS_MAX) {
            memcpy(h->macs[h->n_macs++], sqlite3_column_blob(st, 8), 6);
        }
    }
    TRY(r);
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
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, id, &st));
    bind_blob(st, 1, key, key_len);
    bind_text(st, 2, except);
    int r = step(b, st);
    if (r == 1) {
        snprintf(ret_owner, STORE_NAME_MAX + 1, "%s", col_text(st, 0));
    }
    return r;
}

static int sq_host_address_owner(backend *b, const uint8_t address[16], const char *except,
                                 char ret_owner[STORE_NAME_MAX + 1])
{
    return owner_of(b, ST_HOST_ADDR_OWNER, address, 16, except, ret_owner);
}

static int sq_host_mac_owner(backend *b, const uint8_t mac[6], const char *except,
                             char ret_owner[STORE_NAME_MAX + 1])
{
    return owner_of(b, ST_HOST_MAC_OWNER, mac, 6, except, ret_owner);
}

static int sq_host_put(backend *b, int64_t host_id, int64_t rack_id, const store_host *h,
                       const char *hostname, int64_t *ret_id)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, host_id ? ST_HOST_UPDATE : ST_HOST_INSERT, &st));
    if (host_id) {
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
    bind_text(st, 7, h->bmc_url);
    bind_text(st, 8, h->bmc_user);
    bind_text(st, 9, h->bmc_password);
    sqlite3_bind_int(st, 10, (int)h->firmware);
    int r = step(b, st);
    TRY(r);
    if (!host_id) {
        if (r != 1) {
            return fail(b, -EIO, "host %s: not inserted", h->name);
        }
        host_id = sqlite3_column_int64(st, 0);
    }
    TRY(step_done(b, st));
    if (ret_id) {
        *ret_id = host_id;
    }
    return 0;
}

static int sq_host_delete(backend *b, int64_t host_id)
{
    return run_id(b, ST_HOST_DELETE, host_id);
}

static int sq_mac_put(backend *b, const uint8_t mac[6], int64_t host_id, uint32_t position)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_MAC_UPSERT, &st));
    bind_blob(st, 1, mac, 6);
    sqlite3_bind_int64(st, 2, host_id);
    sqlite3_bind_int64(st, 3, position);
    return step_done(b, st);
}

static int sq_mac_delete(backend *b, const uint8_t mac[6])
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_MAC_DELETE, &st));
    bind_blob(st, 1, mac, 6);
    return step_done(b, st);
}

static int sq_mac_find(backend *b, const uint8_t mac[6], int64_t *ret_host_id)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_MAC_HOST, &st));
    bind_blob(st, 1, mac, 6);
    int r = step(b, st);
    if (r == 1) {
        *ret_host_id = sqlite3_column_int64(st, 0);
    }
    return r;
}

static int sq_duid_put(backend *b, const uint8_t *duid, size_t duid_len, const uint8_t mac[6],
                       uint64_t now)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_DUID_UPSERT, &st));
    bind_blob(st, 1, duid, duid_len);
    bind_blob(st, 2, mac, 6);
    bind_u64(st, 3, now);
    return step_done(b, st);
}

/* ---- Profiles and images ----------------------------------------------- */

static int sq_profile_find(backend *b, const char *name, int64_t *ret_id)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_PROFILE_BY_NAME, &st));
    bind_text(st, 1, name);
    int r = step(b, st);
    if (r == 1 && ret_id) {
        *ret_id = sqlite3_column_int64(st, 0);
    }
    return r;
}

static int sq_profile_put(backend *b, const model_profile *p, const uint8_t kickstart_sha256[32],
                          uint64_t now, int64_t *ret_id)
{
    int64_t profile_id;
    int r;
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(b, ST_PROFILE_UPSERT, &st));
        bind_text(st, 1, p->name);
        bind_text(st, 2, p->cmdline ? p->cmdline : "");
        bind_text(st, 3, p->kickstart ? p->kickstart : "");
        bind_blob(st, 4, kickstart_sha256, 32);
        sqlite3_bind_int(st, 5, p->overlay);
        sqlite3_bind_int(st, 6, store_col_ip_mode(p->ip));
        sqlite3_bind_int(st, 7, p->keep_ra);
        bind_u64(st, 8, now);
        sqlite3_bind_int(st, 9, p->any_source);
        bind_text(st, 10, p->root_device ? p->root_device : "");
        sqlite3_bind_int(st, 11, store_col_profile_kind(p->kind));
        _cleanup_free_ char *keys = NULL;
        TRY(store_col_keys_join(p, &keys));
        bind_text(st, 12, keys);
        bind_text(st, 13, p->user_data ? p->user_data : "");
        sqlite3_bind_int(st, 14, p->uefi == UEFI_BOOT_UKI ? 1 : 0);
        r = step(b, st);
        TRY(r);
        if (r != 1) {
            return fail(b, -EIO, "profile %s: not stored", p->name);
        }
        profile_id = sqlite3_column_int64(st, 0);
        TRY(step_done(b, st));
    }
    TRY(run_id(b, ST_PROFILE_IMAGES_DELETE, profile_id));
    for (size_t i = 0; i < p->n_images; i++) {
        const model_image *im = &p->images[i];
        int64_t image_id;
        {
            _cleanup_stmt_ sqlite3_stmt *st = NULL;
            TRY(stmt_get(b, ST_IMAGE_UPSERT, &st));
            bind_blob(st, 1, im->sha256, 32);
            bind_text(st, 2, im->url);
            bind_u64(st, 3, im->size);
            bind_text(st, 4, im->name);
            sqlite3_bind_int(st, 5, store_col_image_kind(im->kind));
            r = step(b, st);
            TRY(r);
            if (r != 1) {
                return fail(b, -EIO, "image %s: not stored", im->name);
            }
            image_id = sqlite3_column_int64(st, 0);
            TRY(step_done(b, st));
        }
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(b, ST_PROFILE_IMAGE_INSERT, &st));
        sqlite3_bind_int64(st, 1, profile_id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        sqlite3_bind_int64(st, 3, image_id);
        sqlite3_bind_int(st, 4, store_col_image_kind(im->kind));
        bind_text(st, 5, im->name);
        TRY(step_done(b, st));
    }
    *ret_id = profile_id;
    return 0;
}

static int sq_profile_load(backend *b, int64_t id, bool with_content, store_loaded_profile **ret)
{
    _cleanup_(store_loaded_profile_freep) store_loaded_profile *lp = NULL;
    int r;
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(b, ST_PROFILE_GET, &st));
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, with_content);
        r = step(b, st);
        if (r <= 0) {
            return r;
        }
        TRY(store_loaded_profile_new(id, col_text(st, 1), col_text(st, 2), col_text(st, 3), &lp));
        if (sqlite3_column_bytes(st, 4) == 32) {
            memcpy(lp->p.kickstart_sha256, sqlite3_column_blob(st, 4), 32);
        }
        lp->p.overlay = sqlite3_column_int(st, 5) != 0;
        lp->p.ip = store_col_ip_mode_from(sqlite3_column_int(st, 6));
        lp->p.keep_ra = sqlite3_column_int(st, 7) != 0;
        lp->p.any_source = sqlite3_column_int(st, 8) != 0;
        const char *root_device = col_text(st, 9);
        if (*root_device && !(lp->p.root_device = strdup(root_device))) {
            return -ENOMEM;
        }
        lp->p.kind = store_col_profile_kind_from(sqlite3_column_int(st, 10));
        TRY(store_col_keys_split(col_text(st, 11), &lp->p));
        const char *user_data = col_text(st, 12);
        if (*user_data && !(lp->p.user_data = strdup(user_data))) {
            return -ENOMEM;
        }
        lp->p.uefi = sqlite3_column_int(st, 13) == 1 ? UEFI_BOOT_UKI : UEFI_BOOT_IPXE;
    }
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_PROFILE_IMAGES_OF, &st));
    sqlite3_bind_int64(st, 1, id);
    while ((r = step(b, st)) == 1) {
        model_image im = {
            .name = RB_UNCONST(col_text(st, 0)),
            .kind = store_col_image_kind_from(sqlite3_column_int(st, 1)),
            .url = RB_UNCONST(col_text(st, 2)),
            .size = col_u64(st, 4),
        };
        if (sqlite3_column_bytes(st, 3) == 32) {
            memcpy(im.sha256, sqlite3_column_blob(st, 3), 32);
        }
        TRY(store_loaded_profile_add_image(lp, &im));
    }
    TRY(r);
    *ret = TAKE_PTR(lp);
    return 1;
}

static int sq_profiles_list(backend *b, int (*cb)(int64_t id, void *userdata), void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;
    TRY(stmt_get(b, ST_PROFILES_LIST, &st));
    while ((r = step(b, st)) == 1) {
        TRY(cb(sqlite3_column_int64(st, 0), userdata));
    }
    return r;
}

static int sq_images_gc(backend *b)
{
    return tx_run(b, ST_IMAGES_GC);
}

static int sq_images_list(backend *b,
                          int (*cb)(const char *profile, const model_image *img, void *userdata),
                          void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;
    TRY(stmt_get(b, ST_IMAGES_LIST, &st));
    while ((r = step(b, st)) == 1) {
        model_image im = {
            .name = RB_UNCONST(col_text(st, 1)),
            .kind = store_col_image_kind_from(sqlite3_column_int(st, 2)),
            .url = RB_UNCONST(col_text(st, 3)),
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

static int sq_install_active_of_host(backend *b, int64_t host_id, store_install_ref *ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_ACTIVE_OF_HOST, &st));
    sqlite3_bind_int64(st, 1, host_id);
    int r = step(b, st);
    if (r <= 0) {
        return r;
    }
    store_install_ref in = { .id = sqlite3_column_int64(st, 0), .host_id = host_id };
    snprintf(in.uuid, sizeof(in.uuid), "%s", col_text(st, 1));
    TRY(col_state(b, st, 2, &in.state));
    *ret = in;
    return 1;
}

static int sq_install_last_of_host(backend *b, int64_t host_id, install_state *ret_state,
                                   uint32_t *ret_attempt)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_LAST_OF_HOST, &st));
    sqlite3_bind_int64(st, 1, host_id);
    int r = step(b, st);
    if (r <= 0) {
        return r;
    }
    TRY(col_state(b, st, 0, ret_state));
    *ret_attempt = (uint32_t)sqlite3_column_int64(st, 1);
    return 1;
}

static int sq_install_find(backend *b, const char *uuid, store_install_ref *ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_INSTALL_BY_UUID, &st));
    bind_text(st, 1, uuid);
    int r = step(b, st);
    if (r <= 0) {
        return r;
    }
    store_install_ref in = {
        .id = sqlite3_column_int64(st, 0),
        .host_id = sqlite3_column_int64(st, 1),
        .phase = (Rackboot__V1__Phase)sqlite3_column_int(st, 3),
        .ending =
            profile_kind_ends_on_first_boot(store_col_profile_kind_from(sqlite3_column_int(st, 4)))
                ? INSTALL_ENDS_FIRST_BOOT
                : INSTALL_ENDS_INSTALLED,
        .dispatched_ms = col_u64(st, 5),
    };
    TRY(col_state(b, st, 2, &in.state));
    *ret = in;
    return 1;
}

static int sq_installs_count(backend *b, int (*cb)(install_state state, uint64_t n, void *userdata),
                             void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;
    TRY(stmt_get(b, ST_INSTALLS_COUNT, &st));
    while ((r = step(b, st)) == 1) {
        install_state state;
        TRY(col_state(b, st, 0, &state));
        TRY(cb(state, col_u64(st, 1), userdata));
    }
    return r;
}

static int sq_install_insert(backend *b, const store_install_new *in)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_INSTALL_INSERT, &st));
    bind_text(st, 1, in->uuid);
    sqlite3_bind_int64(st, 2, in->host_id);
    sqlite3_bind_int64(st, 3, in->profile_id);
    bind_text(st, 4, in->token);
    sqlite3_bind_int64(st, 5, in->attempt);
    sqlite3_bind_int64(st, 6, in->rack_id);
    bind_u64(st, 7, in->now);
    return step_done(b, st);
}

static int sq_install_set_state(backend *b, int64_t id, install_state state, uint64_t now,
                                const char *message)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_INSTALL_SET_STATE, &st));
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, store_col_state(state));
    bind_u64(st, 3, now);
    bind_text(st, 4, message);
    return step_done(b, st);
}

static int sq_install_set_progress(backend *b, int64_t id, Rackboot__V1__Phase phase,
                                   uint32_t percent, const char *message, uint64_t now)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_INSTALL_SET_PHASE, &st));
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, (int)phase);
    sqlite3_bind_int64(st, 3, percent);
    bind_text(st, 4, message);
    bind_u64(st, 5, now);
    return step_done(b, st);
}

static int sq_install_set_message(backend *b, int64_t id, const char *message, uint64_t now)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_INSTALL_SET_NOTE, &st));
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, message);
    bind_u64(st, 3, now);
    return step_done(b, st);
}

static int sq_installs_requested_set_state(backend *b, int64_t rack_id, uint64_t generation,
                                           install_state state, uint64_t now)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_REQUESTED_OF_RACK_SET_STATE, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    bind_text(st, 2, store_col_state(state));
    bind_u64(st, 3, now);
    bind_u64(st, 4, generation);
    TRY(step_done(b, st));
    return sqlite3_changes(b->db);
}

static int sq_installs_due(backend *b, uint64_t now, const install_timeouts *cfg,
                           store_install_due *rows, size_t max, size_t *ret_n)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    size_t n = 0;
    int r = 0;
    TRY(stmt_get(b, ST_OVERDUE, &st));
    bind_u64(st, 1, now);
    bind_u64(st, 2, cfg->boot_ms);
    bind_u64(st, 3, cfg->install_ms);
    while (n < max && (r = step(b, st)) == 1) {
        rows[n].id = sqlite3_column_int64(st, 0);
        TRY(col_state(b, st, 1, &rows[n].state));
        rows[n].t = (install_times){
            .created_ms = col_u64(st, 2),
            .dispatched_ms = col_u64(st, 3),
            .booting_ms = col_u64(st, 4),
            .installing_ms = col_u64(st, 5),
        };
        rows[n].rack_id = sqlite3_column_int64(st, 6);
        n++;
    }
    if (n < max) {
        TRY(r);
    }
    *ret_n = n;
    return 0;
}

static int sq_intents_of_rack(backend *b, int64_t rack_id,
                              int (*cb)(const store_intent_row *in, void *userdata), void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    _cleanup_free_ store_host *h = malloc(sizeof(*h));
    int r;
    if (!h) {
        return -ENOMEM;
    }
    TRY(stmt_get(b, ST_INTENTS_OF_RACK, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    while ((r = step(b, st)) == 1) {
        store_intent_row in = {
            .uuid = col_text(st, 0),
            .token = col_text(st, 1),
            .attempt = (uint32_t)sqlite3_column_int64(st, 2),
            .profile_id = sqlite3_column_int64(st, 4),
            .host = h,
        };
        TRY(col_state(b, st, 3, &in.state));
        /* columns 5..: HOST_COLS */
        TRY(host_from_row(b, st, 5, h));
        TRY(cb(&in, userdata));
    }
    return r;
}

/* ---- Events ------------------------------------------------------------ */

static int sq_event_insert(backend *b, int64_t rack_id, unsigned instance, const store_event *e,
                           int64_t install_id, int64_t host_id, uint64_t now, const char *refused,
                           bool *ret_inserted)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_EVENT_INSERT, &st));
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
    if (host_id > 0) {
        sqlite3_bind_int64(st, 11, host_id);
    } else {
        sqlite3_bind_null(st, 11);
    }
    sqlite3_bind_int(st, 12, (int)instance);
    TRY(step_done(b, st));
    if (ret_inserted) {
        *ret_inserted = sqlite3_changes(b->db) > 0;
    }
    return 0;
}

/* ---- Power ------------------------------------------------------------- */

static int sq_power_insert(backend *b, const store_power_new *p)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_POWER_INSERT, &st));
    bind_text(st, 1, p->uuid);
    sqlite3_bind_int64(st, 2, p->host_id);
    sqlite3_bind_int64(st, 3, p->rack_id);
    sqlite3_bind_int(st, 4, p->action);
    sqlite3_bind_int(st, 5, p->boot_device);
    sqlite3_bind_int(st, 6, p->efi);
    if (p->install_id > 0) {
        sqlite3_bind_int64(st, 7, p->install_id);
    } else {
        sqlite3_bind_null(st, 7);
    }
    bind_u64(st, 8, p->now);
    return step_done(b, st);
}

static int sq_power_find(backend *b, const char *uuid, store_power_ref *ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_POWER_BY_UUID, &st));
    bind_text(st, 1, uuid);
    int r = step(b, st);
    if (r == 1) {
        *ret = (store_power_ref){
            .id = sqlite3_column_int64(st, 0),
            .host_id = sqlite3_column_int64(st, 1),
            .rack_id = sqlite3_column_int64(st, 2),
            .done = sqlite3_column_int(st, 3) != 0,
        };
    }
    return r;
}

static int sq_power_finish(backend *b, int64_t id, bool ok, int power_state, const char *message,
                           uint64_t now)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_POWER_FINISH, &st));
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, ok);
    sqlite3_bind_int(st, 3, power_state);
    bind_text(st, 4, message ? message : "");
    bind_u64(st, 5, now);
    return step_done(b, st);
}

static int sq_host_power_set(backend *b, int64_t host_id, int power_state, uint64_t now)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_HOST_POWER_SET, &st));
    sqlite3_bind_int64(st, 1, host_id);
    sqlite3_bind_int(st, 2, power_state);
    bind_u64(st, 3, now);
    return step_done(b, st);
}

/* A row of POWER_COLS. */
static store_power power_from_row(sqlite3_stmt *st)
{
    const char *state = col_text(st, 6);
    return (store_power){
        .id = col_text(st, 0),
        .host = col_text(st, 1),
        .action = sqlite3_column_int(st, 2),
        .boot_device = sqlite3_column_int(st, 3),
        .efi = sqlite3_column_int(st, 4) != 0,
        .install_id = col_text(st, 5),
        .done = !streq(state, "pending"),
        .ok = streq(state, "done"),
        .power_state = sqlite3_column_int(st, 7),
        .message = col_text(st, 8),
        .updated_ms = col_u64(st, 9),
    };
}

static int sq_power_list(backend *b, const char *const *uuids, size_t n,
                         int (*cb)(const store_power *p, void *userdata), void *userdata)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(b, ST_POWER_GET, &st));
        bind_text(st, 1, uuids[i]);
        int r = step(b, st);
        TRY(r);
        if (r == 1) {
            store_power p = power_from_row(st);
            TRY(cb(&p, userdata));
            count++;
        }
    }
    return count;
}

static int sq_rack_power(backend *b, int64_t rack_id,
                         int (*bmc_cb)(const store_bmc *bmc, void *userdata),
                         int (*cmd_cb)(const store_power *p, void *userdata), void *userdata)
{
    int r;
    if (bmc_cb) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(b, ST_BMCS_OF_RACK, &st));
        sqlite3_bind_int64(st, 1, rack_id);
        while ((r = step(b, st)) == 1) {
            store_bmc bmc = {
                .host = col_text(st, 0),
                .url = col_text(st, 1),
                .user = col_text(st, 2),
                .password = col_text(st, 3),
                .firmware = (model_firmware)sqlite3_column_int(st, 4),
            };
            TRY(bmc_cb(&bmc, userdata));
        }
        TRY(r);
    }
    if (cmd_cb) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(b, ST_POWER_PENDING_OF_RACK, &st));
        sqlite3_bind_int64(st, 1, rack_id);
        while ((r = step(b, st)) == 1) {
            store_power p = power_from_row(st);
            TRY(cmd_cb(&p, userdata));
        }
        TRY(r);
    }
    return 0;
}

static int sq_power_due(backend *b, uint64_t before_ms, store_power_ref *rows, size_t max,
                        size_t *ret_n)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    size_t n = 0;
    int r;
    TRY(stmt_get(b, ST_POWER_DUE, &st));
    bind_u64(st, 1, before_ms);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    while (n < max && (r = step(b, st)) == 1) {
        rows[n++] = (store_power_ref){
            .id = sqlite3_column_int64(st, 0),
            .host_id = sqlite3_column_int64(st, 1),
            .rack_id = sqlite3_column_int64(st, 2),
        };
    }
    if (n < max) {
        TRY(r);
    }
    *ret_n = n;
    return 0;
}

static int sq_event_find(backend *b, int64_t rack_id, unsigned instance, uint64_t seq)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_EVENT_EXISTS, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    bind_u64(st, 2, seq);
    sqlite3_bind_int(st, 3, (int)instance);
    return step(b, st);
}

static int sq_events_stored_in(backend *b, int64_t rack_id, unsigned instance, uint64_t after,
                               uint64_t upto, int (*cb)(uint64_t seq, void *userdata),
                               void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_EVENTS_STORED_IN, &st));
    sqlite3_bind_int64(st, 1, rack_id);
    sqlite3_bind_int(st, 2, (int)instance);
    bind_u64(st, 3, after);
    bind_u64(st, 4, upto);
    int r;
    while ((r = step(b, st)) == 1) {
        TRY(cb((uint64_t)sqlite3_column_int64(st, 0), userdata));
    }
    return r;
}

/* In the process, one indexed statement per install costs less than
 * building one for the set. */
static int sq_events_phases_elsewhere(
    backend *b, int64_t rack_id, unsigned instance, const int64_t *install_ids, size_t n,
    int (*cb)(int64_t install_id, Rackboot__V1__Phase phase, void *userdata), void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *other = NULL;
    TRY(stmt_get(b, ST_AGENT_OTHER, &other));
    sqlite3_bind_int64(other, 1, rack_id);
    sqlite3_bind_int(other, 2, (int)instance);
    int r = step(b, other);
    if (r <= 0) {
        return r; /* the rack's only agent */
    }
    for (size_t i = 0; i < n; i++) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        TRY(stmt_get(b, ST_EVENT_PHASES_ELSEWHERE, &st));
        sqlite3_bind_int64(st, 1, install_ids[i]);
        sqlite3_bind_int(st, 2, (int)instance);
        while ((r = step(b, st)) == 1) {
            TRY(cb(install_ids[i], (Rackboot__V1__Phase)sqlite3_column_int(st, 0), userdata));
        }
        TRY(r);
    }
    return 0;
}

static int sq_events_list(backend *b, int64_t host_id, uint64_t after_seq, uint32_t limit,
                          int (*cb)(const store_event_row *e, void *userdata), void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int count = 0, r;
    if (host_id) {
        TRY(stmt_get(b, ST_EVENTS_HOST, &st));
        bind_u64(st, 1, after_seq);
        sqlite3_bind_int64(st, 2, host_id);
        sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : -1);
    } else {
        TRY(stmt_get(b, ST_EVENTS_ALL, &st));
        bind_u64(st, 1, after_seq);
        sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
    }
    while ((r = step(b, st)) == 1) {
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

static int sq_events_last_seq(backend *b, uint64_t *ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;
    TRY(stmt_get(b, ST_EVENTS_LAST, &st));
    r = step(b, st);
    if (r < 0) {
        return r;
    }
    *ret = r == 1 ? col_u64(st, 0) : 0;
    return 0;
}

static int prune_run(backend *b, int id, uint64_t arg, uint32_t limit)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, id, &st));
    bind_u64(st, 1, arg);
    sqlite3_bind_int64(st, 2, limit);
    TRY(step_done(b, st));
    return sqlite3_changes(b->db);
}

static int sq_events_prune_received(backend *b, uint64_t before_ms, uint32_t limit)
{
    return prune_run(b, ST_EVENTS_PRUNE_OLD, before_ms, limit);
}

static int sq_events_prune_refused(backend *b, uint32_t keep, uint32_t limit)
{
    return prune_run(b, ST_EVENTS_PRUNE_REFUSED, keep, limit);
}

/* Each row of a STATUS_SELECT statement to `cb`; the number of rows. */
static int status_rows(backend *b, sqlite3_stmt *st,
                       int (*cb)(const store_status *st, void *userdata), void *userdata)
{
    int count = 0, r;
    while ((r = step(b, st)) == 1) {
        store_status row = {
            .host = col_text(st, 0),
            .rack = col_text(st, 1),
            .install_id = col_text(st, 2),
            .profile = col_text(st, 3),
            .phase = (Rackboot__V1__Phase)sqlite3_column_int(st, 5),
            .percent = (uint32_t)sqlite3_column_int64(st, 6),
            .updated_ms = col_u64(st, 7),
            .attempt = (uint32_t)sqlite3_column_int64(st, 8),
            .message = col_text(st, 9),
            .power_state = sqlite3_column_int(st, 10),
            .power_updated_ms = col_u64(st, 11),
        };
        if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
            TRY(col_state(b, st, 4, &row.state));
        }
        TRY(cb(&row, userdata));
        count++;
    }
    return r < 0 ? r : count;
}

static int sq_status_get(backend *b, const char *host,
                         int (*cb)(const store_status *st, void *userdata), void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_STATUS_HOST, &st));
    bind_text(st, 1, host);
    int r = status_rows(b, st, cb, userdata);
    return r < 0 ? r : r > 0;
}

static int sq_status_list(backend *b, const store_page *pg,
                          int (*cb)(const store_status *st, void *userdata), void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    _cleanup_free_ char *json = NULL;
    TRY(page_stmt(b, status_page_stmts, pg, &st, &json));
    return status_rows(b, st, cb, userdata);
}

/* ---- Audit log ---------------------------------------------------------- */

static int sq_audit_insert(backend *b, const store_audit *a, const char *hosts_text,
                           uint64_t host_count, const char *profiles_text)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    TRY(stmt_get(b, ST_AUDIT_INSERT, &st));
    bind_u64(st, 1, a->time_ms);
    bind_text(st, 2, a->who);
    bind_text(st, 3, a->verb);
    bind_text(st, 4, hosts_text);
    bind_u64(st, 5, host_count);
    bind_text(st, 6, profiles_text);
    sqlite3_bind_int(st, 7, a->ok ? 1 : 0);
    bind_text(st, 8, a->result ? a->result : "");
    return step_done(b, st);
}

static int sq_audit_list(backend *b, uint64_t since_ms, uint64_t after_seq, uint32_t limit,
                         int (*cb)(const store_audit *a, void *userdata), void *userdata)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;
    TRY(stmt_get(b, ST_AUDIT_LIST, &st));
    bind_u64(st, 1, since_ms);
    sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
    bind_u64(st, 3, after_seq);
    while ((r = step(b, st)) == 1) {
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
        if (c != 0) {
            return c;
        }
    }
    return r;
}

const store_backend_ops store_sqlite_ops = {
    .name = "sqlite",
    .url_scheme = "sqlite://",
    .location_check = sq_location_check,
    .peek_version = sq_peek_version,
    .open = sq_open,
    .connect = sq_connect,
    .close = sq_close,
    .schema_version = sq_schema_version,
    .begin = sq_begin,
    .begin_read = sq_begin_read,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .rollback_to = sq_rollback_to,
    .in_transaction = sq_in_transaction,
    .rack_find = sq_rack_find,
    .rack_ensure = sq_rack_ensure,
    .rack_bump = sq_rack_bump,
    .racks_bump_of_profile = sq_racks_bump_of_profile,
    .racks_list = sq_racks_list,
    .agents_list = sq_agents_list,
    .agent_ensure = sq_agent_ensure,
    .agent_stored_through = sq_agent_stored_through,
    .agent_journal_get = sq_agent_journal_get,
    .agent_journal_set = sq_agent_journal_set,
    .agent_seen_set = sq_agent_seen_set,
    .agent_acked_set = sq_agent_acked_set,
    .agent_status_set = sq_agent_status_set,
    .agent_render_get = sq_agent_render_get,
    .agent_stored_set = sq_agent_stored_set,
    .host_find = sq_host_find,
    .host_get = sq_host_get,
    .hosts_list = sq_hosts_list,
    .host_address_owner = sq_host_address_owner,
    .host_mac_owner = sq_host_mac_owner,
    .host_put = sq_host_put,
    .host_delete = sq_host_delete,
    .host_macs = sq_host_macs,
    .mac_put = sq_mac_put,
    .mac_delete = sq_mac_delete,
    .mac_find = sq_mac_find,
    .duid_put = sq_duid_put,
    .profile_find = sq_profile_find,
    .profile_put = sq_profile_put,
    .profile_load = sq_profile_load,
    .profiles_list = sq_profiles_list,
    .images_gc = sq_images_gc,
    .images_list = sq_images_list,
    .install_active_of_host = sq_install_active_of_host,
    .install_last_of_host = sq_install_last_of_host,
    .install_find = sq_install_find,
    .installs_count = sq_installs_count,
    .install_insert = sq_install_insert,
    .install_set_state = sq_install_set_state,
    .install_set_progress = sq_install_set_progress,
    .install_set_message = sq_install_set_message,
    .installs_requested_set_state = sq_installs_requested_set_state,
    .installs_due = sq_installs_due,
    .intents_of_rack = sq_intents_of_rack,
    .power_insert = sq_power_insert,
    .power_find = sq_power_find,
    .power_finish = sq_power_finish,
    .host_power_set = sq_host_power_set,
    .power_list = sq_power_list,
    .rack_power = sq_rack_power,
    .power_due = sq_power_due,
    .event_insert = sq_event_insert,
    .event_find = sq_event_find,
    .events_stored_in = sq_events_stored_in,
    .events_phases_elsewhere = sq_events_phases_elsewhere,
    .events_list = sq_events_list,
    .events_last_seq = sq_events_last_seq,
    .events_prune_received = sq_events_prune_received,
    .events_prune_refused = sq_events_prune_refused,
    .status_get = sq_status_get,
    .status_list = sq_status_list,
    .audit_insert = sq_audit_insert,
    .audit_list = sq_audit_list,
};
