/* The agent's configuration file (deploy/examples/agent.conf documents every
 * key and its default).
 *
 * agent_config_load() checks every section and key it knows and reports each
 * problem with its file and line in the diag, so `--check-config` can list
 * them all. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dhcp6/bindings.h"
#include "dhcp6/server.h"
#include "diag.h"
#include "log.h"

enum {
    AGENT_MAX_INTERFACES = 32,
    AGENT_MAX_DNS = 8,
    AGENT_MAX_SEARCH = 8,
    AGENT_MAX_TRUSTED_RELAYS = DHCP6_SERVER_MAX_TRUSTED_RELAYS,
    /* [controller] urls: a handful of active controllers, not a fleet's
     * worth (each is a series of rackboot_uplink_controller). */
    AGENT_MAX_CONTROLLERS = 8,
};

#define AGENT_DEFAULT_PREFERRED_LIFETIME 3600u
#define AGENT_DEFAULT_VALID_LIFETIME     7200u
/* The DHCPv6 Preference of a rack's only or primary agent
 * (DHCP6_PREFERENCE_MAX). */
#define AGENT_DEFAULT_DHCP6_PREFERENCE 255u
/* Pool bindings one interface may hold (deploy/examples/agent.conf). */
#define AGENT_DEFAULT_MAX_BINDINGS_PER_INTERFACE 1024u

typedef struct agent_config {
    char *path;
    /* [agent] */
    char *rack;
    char *state_dir;
    char *user; /* run as this user after binding (common/daemon.h); NULL: stay */
    struct in6_addr advertise_address;
    /* [agent] service_address: the rack's address that moves between a
     * redundant pair of agents (VRRP, deploy/HA.md); boot scripts and
     * answer files name it instead of advertise_address. */
    bool has_service_address;
    struct in6_addr service_address;
    bool has_gateway;
    struct in6_addr gateway;
    log_level log_level;
    log_format log_format; /* [log] format */
    /* [http] listen: only its port, for boot URLs. */
    uint16_t http_port;
    /* [http] (http/server.h): the whole listen address (default
     * [::]:80) and the server's limits. */
    struct sockaddr_in6 http_listen;
    uint32_t http_max_connections;
    uint32_t http_max_connections_per_ip; /* 0: no limit (default 32) */
    uint32_t http_connection_timeout;     /* seconds */
    uint32_t http_header_timeout;         /* seconds for request line + headers */
    uint32_t http_max_header_size;        /* bytes */
    /* [dhcp6] */
    char *interfaces[AGENT_MAX_INTERFACES];
    size_t n_interfaces;
    uint16_t dhcp6_port;
    struct in6_addr dns[AGENT_MAX_DNS];
    size_t n_dns;
    char *search[AGENT_MAX_SEARCH];
    size_t n_search;
    uint32_t preferred_lifetime;
    uint32_t valid_lifetime;
    bool rapid_commit;
    unsigned dhcp6_preference; /* in Advertises, 0-255 */
    bool has_pool;
    dhcp6_pool pool;
    uint32_t max_bindings_per_interface;
    /* Relay-forward messages are answered only from these sources. */
    dhcp6_prefix trusted_relays[AGENT_MAX_TRUSTED_RELAYS];
    size_t n_trusted_relays;
    /* [tftp] (rack-agent/tftp/server.h). root is resolved against the config
     * file's directory; default state_dir/tftp (tftp_root_default), which
     * the agent fills with copies of Debian's ipxe.efi and snponly.efi. */
    bool tftp_enabled;
    struct sockaddr_in6 tftp_listen;
    char *tftp_root;
    bool tftp_root_default;
    uint32_t tftp_max_transfers;
    uint32_t tftp_max_transfers_per_source;
    uint32_t tftp_max_blksize;
    uint32_t tftp_max_windowsize;
    uint32_t tftp_timeout_ms;
    uint32_t tftp_retries;
    /* [standalone] hosts, resolved against the config file's directory. */
    char *hosts_path;
    /* [controller] (rack-agent/uplink/uplink.h); paths resolved against the config
     * file's directory. */
    bool has_controller;
    /* `url = ONE` or `urls = ONE TWO ...` (they exclude each other), in
     * the order the uplink tries them (uplink/uplink.h). */
    char *controller_urls[AGENT_MAX_CONTROLLERS];
    size_t n_controller_urls;
    bool has_controller_url_key, has_controller_urls_key; /* which of the two was written */
    char *controller_server_name;                         /* NULL: the URL's host */
    char *controller_ca;
    char *controller_cert;
    char *controller_key;
    char *controller_crl;
    uint32_t controller_sync_wait; /* seconds */
    /* [cache] (rack-agent/cache/cache.h). dir is resolved against the config
     * file's directory; default state_dir/cache. */
    char *cache_dir;
    uint64_t cache_max_size;
    uint32_t cache_max_fetches;
    /* [deploy] ramdisk: the directory holding the deploy ramdisk's vmlinuz
     * and initrd.img (deploy-ramdisk/build-ramdisk.sh DIR), served at
     * /deploy/ to hosts of image profiles; resolved against the config
     * file's directory. NULL: none, and image profiles cannot be served. */
    char *deploy_ramdisk;
    /* [uki] (rack-agent/uki/cache.h): Unified Kernel Images for UEFI hosts
     * of `uefi_boot = uki` profiles. stub: systemd's EFI stub (default
     * UKI_STUB_DEFAULT); dir: default state_dir/uki; max_size: bytes kept. */
    char *uki_stub;
    char *uki_dir;
    uint64_t uki_max_size;
    /* [power] (rack-agent/powerctl/powerctl.h, power/power.h); with a
     * controller only (the BMCs come from it). */
    uint32_t power_poll_interval; /* seconds; 0: no poll */
    uint32_t power_poll_concurrency;
    uint32_t power_max_concurrent;
    uint32_t power_timeout; /* seconds, per attempt */
    uint32_t power_retries;
} agent_config;

/* Loads and validates `path`. Every problem goes to `d`; the result is then
 * -EINVAL (or the read error) and *ret is not written. */
int agent_config_load(const char *path, diag *d, agent_config **ret);
/* Accepts NULL, returns NULL. */
agent_config *agent_config_free(agent_config *cfg);
