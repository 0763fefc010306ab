/* The standalone hosts file: [profile NAME] and [host NAME] sections
 * (deploy/examples/hosts.conf, the format is described in standalone.h).
 *
 * One parser for everyone who reads the format, so a site moving from a
 * standalone agent to a controller rewrites nothing: the agent's standalone
 * mode turns the result into intents (standalone.c), the rackboot CLI's
 * `hosts import` and `profiles import` into API requests.
 *
 * This module checks each section on its own and what relates sections to
 * each other in the file's own terms (a name defined twice, a MAC on two
 * hosts, an address on two hosts). That a host's `install =` names a profile of the file is checked
 * only on request: the CLI imports hosts and profiles separately. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "ini.h"
#include "model/bmc.h"
#include "model/intent.h"

/* Largest kickstart template read from a profile's `kickstart =` file. */
#define HOSTSFILE_MAX_KICKSTART (1024u * 1024u)

typedef struct hostsfile_options {
    bool has_gateway; /* a [host] without `gateway =` gets this one */
    struct in6_addr gateway;
    /* Also check that every `install = NAME` names a [profile] of the file
     * (the agent's standalone mode, where it is an error like any other and
     * --check-config should list it with the rest). */
    bool check_installs;
    /* The agent's own address ([agent] advertise_address): no host may be
     * given it. */
    bool has_agent_address;
    struct in6_addr agent_address;
} hostsfile_options;

typedef struct hostsfile_profile {
    model_profile p;            /* p.name is the section's NAME */
    const ini_section *section; /* owned by the hostsfile; line, raw entries */
} hostsfile_profile;

typedef struct hostsfile_host {
    const char *name; /* the section's NAME, owned by the hostsfile */
    /* macs, address, prefix_len (default 64), gateway, hostname (default the
     * name), dns, search. install_id, host, token, attempt are left unset. */
    intent in;
    char *profile;         /* `install = NAME`; NULL for none or absent */
    unsigned mac_line;     /* line of the `mac =` entry */
    unsigned address_line; /* line of a valid `address =` entry, 0 if none */
    unsigned install_line; /* line of the `install =` entry, 0 if absent */
    /* The host's BMC: `bmc =` (checked with model_bmc_url_parse()),
     * `bmc_user =`, the password read from `bmc_password_file =` (relative
     * to the hosts file; model_bmc_password_read_file()'s rules), each NULL
     * when absent, and `firmware =`. bmc_password is a secret: print it
     * nowhere; hostsfile_free() overwrites it. */
    char *bmc_url;
    char *bmc_user;
    char *bmc_password;
    model_firmware firmware;
    const ini_section *section;
} hostsfile_host;

/* Public so callers can take the parsed structs over (intent_set_add_profile()
 * and intent_set_add() clear what they take; hostsfile_free() frees the rest). */
typedef struct hostsfile {
    char *path;
    ini_doc *doc;
    hostsfile_profile *profiles;
    size_t n_profiles;
    hostsfile_host *hosts;
    size_t n_hosts;
} hostsfile;

/* Reads and checks the file at `path`. A profile's kickstart is read from
 * its path relative to `path`. Every problem goes to `d` with the file and
 * line; the result is then -EINVAL (or the read error) and *ret is not
 * written. `opts` may be NULL (no default gateway, no install check). */
int hostsfile_read(const char *path, const hostsfile_options *opts, diag *d, hostsfile **ret);

/* The profile named `name`, NULL if none. */
const hostsfile_profile *hostsfile_find_profile(const hostsfile *hf, const char *name);
/* Accepts NULL, returns NULL. */
hostsfile *hostsfile_free(hostsfile *hf);
