/* Standalone mode: the rack's intents come from a local hosts file instead of
 * the controller (small sites, labs, tests). deploy/examples/hosts.conf shows
 * the format:
 *
 *     [profile el9]
 *     kernel = http://mirror/el9/vmlinuz sha256=HEX
 *     initrd = http://mirror/el9/initrd.img sha256=HEX
 *     stage2 = http://mirror/el9/install.img sha256=HEX
 *     file.NAME = URL sha256=HEX       (extra files, any number)
 *     cmdline = console=ttyS0
 *     kickstart = el9.ks               (relative to the hosts file)
 *     overlay = no
 *     ip = static                      (static | dhcp6)
 *     keep_ra = yes
 *     root_device = auto               (or a /dev/ path; rackboot.root_device=)
 *
 *     [host web17]
 *     mac = 52:54:00:12:34:56 52:54:00:12:34:57
 *     address = 2001:db8:1::17
 *     prefix = 64
 *     gateway = 2001:db8:1::1
 *     hostname = web17
 *     dns = 2001:db8:1::53
 *     search = rack1.example.com
 *     install = el9                    (absent or "none": no intent)
 *
 * Without a controller there is nobody to create installs, so the agent does:
 * each host with an intent gets an install id (random UUID) and token (32
 * random bytes in hex), kept in STATE_DIR/installs keyed by host name and a
 * fingerprint of the host's entry and its profile. A restart or a reload of an
 * unchanged file keeps them; a changed entry or profile is a new install. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "model/hostsfile.h"
#include "model/intent.h"

/* The file is parsed by hostsfile.h, which the rackboot CLI shares. */
#define STANDALONE_MAX_KICKSTART HOSTSFILE_MAX_KICKSTART

typedef struct standalone_defaults {
    bool has_gateway;
    struct in6_addr gateway;
    bool has_agent_address; /* [agent] advertise_address: no host may have it */
    struct in6_addr agent_address;
} standalone_defaults;

/* The persisted install ids and tokens. */
typedef struct standalone_installs standalone_installs;

/* Reads STATE_DIR/installs (missing: empty). -EBADMSG when it is corrupt. */
int standalone_installs_load(const char *state_dir, standalone_installs **ret);
standalone_installs *standalone_installs_free(standalone_installs *reg);

/* Parses the hosts file at `path` into a new intent set. Every problem goes
 * to `d` with its file and line, and the result is then -EINVAL with no set.
 * On success the install registry holds exactly the hosts of the new set and
 * has been written to disk if it changed (a write error fails the load: ids
 * that would not survive a restart must not be handed out). `reg` NULL only
 * checks the file (--check-config): placeholder ids, nothing written. */
int standalone_load(const char *path, const standalone_defaults *defs, standalone_installs *reg,
                    uint64_t generation, diag *d, intent_set **ret);
