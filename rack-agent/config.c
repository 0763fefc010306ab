#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confload.h"
#include "parse.h"
#include "util.h"

agent_config *agent_config_free(agent_config *cfg)
{
    if (!cfg) {
        return NULL;
    }
    free(cfg->path);
    free(cfg->rack);
    free(cfg->state_dir);
    free(cfg->user);
    for (size_t i = 0; i < cfg->n_interfaces; i++) {
        free(cfg->interfaces[i]);
    }
    for (size_t i = 0; i < cfg->n_search; i++) {
        free(cfg->search[i]);
    }
    free(cfg->hosts_path);
    for (size_t i = 0; i < cfg->n_controller_urls; i++) {
        free(cfg->controller_urls[i]);
    }
    free(cfg->controller_server_name);
    free(cfg->controller_ca);
    free(cfg->controller_cert);
    free(cfg->controller_key);
    free(cfg->controller_crl);
    free(cfg->tftp_root);
    free(cfg->cache_dir);
    free(cfg->deploy_ramdisk);
    free(cfg->uki_stub);
    free(cfg->uki_dir);
    free(cfg);
    return NULL;
}

/* [agent] rack: a name in the fleet. */
static void check_rack(confload *l, const ini_entry *e, const char *rack)
{
    if (!fleet_name_valid(rack)) {
        confload_problem(l, e->line,
                         "rack: \"%s\" is not a valid name (letters, digits, '-', '_', '.')",
                         e->value);
    }
}

/* An address hosts reach the agent at: global unicast. */
static void parse_host_facing(confload *l, const ini_entry *e, struct in6_addr *ret)
{
    if (parse_ipv6(e->value, ret) < 0) {
        confload_problem(l, e->line, "%s: not an IPv6 address: \"%s\"", e->key, e->value);
        return;
    }
    if (IN6_IS_ADDR_LINKLOCAL(ret) || IN6_IS_ADDR_MULTICAST(ret) || IN6_IS_ADDR_UNSPECIFIED(ret)) {
        confload_problem(l, e->line, "%s: must be a global unicast address hosts can reach",
                         e->key);
    }
}

static void parse_advertise_address(confload *l, const ini_entry *e, void *obj)
{
    agent_config *c = obj;
    parse_host_facing(l, e, &c->advertise_address);
}

static void parse_service_address(confload *l, const ini_entry *e, void *obj)
{
    agent_config *c = obj;
    parse_host_facing(l, e, &c->service_address);
    c->has_service_address = true;
}

/* [dhcp6] interfaces: names the kernel can hold. */
static void check_interface(confload *l, const ini_entry *e, const char *name)
{
    if (strlen(name) >= 16) { /* IFNAMSIZ */
        confload_problem(l, e->line, "interfaces: \"%s\" is too long for an interface name", name);
    }
}

static void check_search(confload *l, const ini_entry *e, const char *name)
{
    if (!dns_name_valid(name)) {
        confload_problem(l, e->line, "domain_search: not a DNS name: \"%s\"", name);
    }
}

/* [dhcp6] pool = FIRST LAST, within one /64. */
static void parse_pool(confload *l, const ini_entry *e, void *obj)
{
    agent_config *c = obj;
    char *words[2] = { NULL, NULL };
    size_t n = 0;
    int r = parse_words(e->value, words, 2, &n);
    if (r < 0 || n != 2) {
        confload_problem(l, e->line, "pool: expected \"FIRST LAST\"");
    } else if (parse_ipv6(words[0], &c->pool.first) < 0 ||
               parse_ipv6(words[1], &c->pool.last) < 0) {
        confload_problem(l, e->line, "pool: not two IPv6 addresses: \"%s\"", e->value);
    } else if (memcmp(&c->pool.first, &c->pool.last, 8) != 0 ||
               memcmp(&c->pool.first.s6_addr[8], &c->pool.last.s6_addr[8], 8) > 0) {
        confload_problem(l, e->line, "pool: FIRST and LAST must be in one /64, FIRST <= LAST");
    } else {
        c->has_pool = true;
    }
    free(words[0]);
    free(words[1]);
}

/* `trusted_relays = ADDR[/LEN], ...`: addresses or prefixes, separated by
 * commas and/or blanks; an empty value trusts none. */
static void parse_trusted_relays(confload *l, const ini_entry *e, void *obj)
{
    agent_config *c = obj;
    c->n_trusted_relays = 0;
    const char *p = e->value;
    for (;;) {
        p += strspn(p, ", \t");
        if (!*p) {
            break;
        }
        size_t len = strcspn(p, ", \t");
        char word[INET6_ADDRSTRLEN + 5];
        if (len >= sizeof(word)) {
            confload_problem(l, e->line, "trusted_relays: not an IPv6 address or prefix: \"%.*s\"",
                             (int)len, p);
            p += len;
            continue;
        }
        memcpy(word, p, len);
        word[len] = '\0';
        p += len;
        dhcp6_prefix pfx = { .len = 128 };
        char *slash = strchr(word, '/');
        uint32_t plen = 128;
        if (slash) {
            *slash = '\0';
        }
        if (parse_ipv6(word, &pfx.addr) < 0 || (slash && parse_u32(slash + 1, 0, 128, &plen) < 0)) {
            if (slash) {
                *slash = '/';
            }
            confload_problem(l, e->line, "trusted_relays: not an IPv6 address or prefix: \"%s\"",
                             word);
            continue;
        }
        pfx.len = (uint8_t)plen;
        if (c->n_trusted_relays == AGENT_MAX_TRUSTED_RELAYS) {
            confload_problem(l, e->line, "trusted_relays: more than %d", AGENT_MAX_TRUSTED_RELAYS);
            return;
        }
        c->trusted_relays[c->n_trusted_relays++] = pfx;
    }
}

/* [controller] url and urls: the scheme nng dials (an empty rest is nng's
 * to refuse). */
static bool controller_url_valid(confload *l, const ini_entry *e, const char *url)
{
    if (strncmp(url, "tls+tcp://", 10) != 0) {
        confload_problem(l, e->line, "%s: expected tls+tcp://HOST:PORT, not \"%s\"", e->key, url);
        return false;
    }
    /* It becomes a label value of rackboot_uplink_controller. */
    if (strpbrk(url, "\"\\")) {
        confload_problem(l, e->line, "%s: \"%s\" holds a quote or a backslash", e->key, url);
        return false;
    }
    return true;
}

static void check_controller_url(confload *l, const ini_entry *e, const char *url)
{
    (void)controller_url_valid(l, e, url);
}

/* `url = ONE`: the whole value, blanks and commas included, so that a URL
 * nng would refuse is reported as one word rather than split. */
static void parse_controller_url(confload *l, const ini_entry *e, void *obj)
{
    agent_config *c = obj;
    c->has_controller_url_key = true;
    if (!controller_url_valid(l, e, e->value)) {
        return;
    }
    for (size_t i = 0; i < c->n_controller_urls; i++) {
        free(c->controller_urls[i]);
    }
    c->n_controller_urls = 0;
    c->controller_urls[0] = strdup(e->value);
    if (!c->controller_urls[0]) {
        confload_problem(l, e->line, "out of memory");
        return;
    }
    c->n_controller_urls = 1;
}

#define AT(member)             CONFLOAD_FIELD(agent_config, member)
#define LIST(member, n_member) AT(member), .count_offset = offsetof(agent_config, n_member)
#define UINT(lo, hi)           .type = CONFLOAD_UINT, .min = (lo), .max = (hi)

static const confload_key agent_keys[] = {
    { "rack", CONFLOAD_STRING, AT(rack), .required = true, .check = check_rack },
    /* Relative to the config file, like every other path here (and the
     * controller's state_dir). */
    { "state_dir", CONFLOAD_PATH, AT(state_dir), .required = true },
    { "user", CONFLOAD_USER, AT(user) },
    /* Required, but checked in finish(): "::" counts as missing. */
    { "advertise_address", CONFLOAD_CUSTOM, .parse = parse_advertise_address },
    { "service_address", CONFLOAD_CUSTOM, .parse = parse_service_address },
    { "gateway", CONFLOAD_IPV6, AT(gateway), .flag = CONFLOAD_FLAG(agent_config, has_gateway) },
    { "log_level", CONFLOAD_LOG_LEVEL, AT(log_level) },
};

/* [log] level stays [agent] log_level, as it always was. */
static const confload_key log_keys[] = {
    { "format", CONFLOAD_LOG_FORMAT, AT(log_format) },
};

/* http/server.h; http_port follows listen (finish()). */
static const confload_key http_keys[] = {
    { "listen", CONFLOAD_LISTEN, AT(http_listen), .port = 80 },
    /* Each needs a file descriptor. */
    { "max_connections", AT(http_max_connections), UINT(1, 1000000) },
    { "max_connections_per_ip", AT(http_max_connections_per_ip), UINT(0, 1000000) },
    { "connection_timeout", AT(http_connection_timeout), UINT(1, 3600) },
    { "header_timeout", AT(http_header_timeout), UINT(1, 3600) },
    { "max_header_size", CONFLOAD_SIZE, AT(http_max_header_size), .min = 1024, .max = 1u << 20,
      .expect = "a size such as 8K", .range = "out of range [1K, 1M]" },
};

static const confload_key dhcp6_keys[] = {
    { "interfaces", CONFLOAD_WORDS, LIST(interfaces, n_interfaces), .max = AGENT_MAX_INTERFACES,
      .check = check_interface },
    { "port", CONFLOAD_UINT, AT(dhcp6_port), .min = 1, .max = 65535, .expect = "1-65535" },
    { "dns_servers", CONFLOAD_IPV6_LIST, LIST(dns, n_dns), .max = AGENT_MAX_DNS },
    { "domain_search", CONFLOAD_WORDS, LIST(search, n_search), .max = AGENT_MAX_SEARCH,
      .check = check_search },
    { "preferred_lifetime", AT(preferred_lifetime), UINT(1, UINT32_MAX - 1) },
    { "valid_lifetime", AT(valid_lifetime), UINT(1, UINT32_MAX - 1) },
    { "rapid_commit", CONFLOAD_BOOL, AT(rapid_commit) },
    { "preference", AT(dhcp6_preference), UINT(0, 255) },
    { "pool", CONFLOAD_CUSTOM, .parse = parse_pool },
    { "max_bindings_per_interface", AT(max_bindings_per_interface), UINT(1, 1000000) },
    { "trusted_relays", CONFLOAD_CUSTOM, .parse = parse_trusted_relays },
};

static const confload_key standalone_keys[] = {
    { "hosts", CONFLOAD_PATH, AT(hosts_path) },
};

/* The uplink (rack-agent/uplink.h). */
static const confload_key controller_keys[] = {
    { "url", CONFLOAD_CUSTOM, .parse = parse_controller_url },
    /* Several controllers sharing one store: tried in order, the next one
     * when the one in use fails (uplink.h). Commas and/or blanks separate
     * them, as in RACKBOOT_CONTROLLER for the CLI. */
    { "urls", CONFLOAD_WORDS, LIST(controller_urls, n_controller_urls),
      .max = AGENT_MAX_CONTROLLERS, .commas = true, .check = check_controller_url,
      .flag = CONFLOAD_FLAG(agent_config, has_controller_urls_key) },
    { "server_name", CONFLOAD_STRING, AT(controller_server_name) },
    { "ca", CONFLOAD_PATH, AT(controller_ca) },
    { "cert", CONFLOAD_PATH, AT(controller_cert) },
    { "key", CONFLOAD_PATH, AT(controller_key) },
    { "crl", CONFLOAD_PATH, AT(controller_crl) },
    { "sync_wait", AT(controller_sync_wait), UINT(1, 600) },
};

/* The image cache (rack-agent/cache/cache.h). */
static const confload_key cache_keys[] = {
    { "dir", CONFLOAD_PATH, AT(cache_dir) },
    { "max_size", CONFLOAD_SIZE, AT(cache_max_size), .min = 1u << 20, .max = UINT64_MAX,
      .expect = "a size such as 500M or 20G", .range = "below the minimum of 1M" },
    { "max_fetches", AT(cache_max_fetches), UINT(1, 64) },
};

/* The TFTP server (rack-agent/tftp/server.h). */
static const confload_key tftp_keys[] = {
    { "enabled", CONFLOAD_BOOL, AT(tftp_enabled) },
    { "listen", CONFLOAD_LISTEN, AT(tftp_listen), .port = 69 },
    /* Default state_dir/tftp; tftp_root_default says which (finish()). */
    { "root", CONFLOAD_PATH, AT(tftp_root) },
    { "max_transfers", AT(tftp_max_transfers), UINT(1, 65536) },
    { "max_transfers_per_source", AT(tftp_max_transfers_per_source), UINT(1, 65536) },
    { "max_blksize", AT(tftp_max_blksize), UINT(8, 65464) },       /* RFC 2348 */
    { "max_windowsize", AT(tftp_max_windowsize), UINT(1, 65535) }, /* RFC 7440 */
    { "timeout_ms", AT(tftp_timeout_ms), UINT(10, 255000) },
    { "retries", AT(tftp_retries), UINT(0, 20) },
};

/* The deploy ramdisk of image profiles (install/routes.h, /deploy/). */
static const confload_key deploy_keys[] = {
    { "ramdisk", CONFLOAD_PATH, AT(deploy_ramdisk) },
};

/* Unified Kernel Images (rack-agent/uki/cache.h). */
static const confload_key uki_keys[] = {
    { "stub", CONFLOAD_PATH, AT(uki_stub) },
    { "dir", CONFLOAD_PATH, AT(uki_dir) },
    { "max_size", CONFLOAD_SIZE, AT(uki_max_size), .min = 1u << 20, .max = UINT64_MAX,
      .expect = "a size such as 500M or 4G", .range = "below the minimum of 1M" },
};

/* Power (rack-agent/powerctl/powerctl.h). */
static const confload_key power_keys[] = {
    { "poll_interval", AT(power_poll_interval), UINT(0, 86400) },
    { "poll_concurrency", AT(power_poll_concurrency), UINT(1, 64) },
    { "max_concurrent", AT(power_max_concurrent), UINT(1, 64) },
    { "timeout", AT(power_timeout), UINT(1, 120) },
    { "retries", AT(power_retries), UINT(0, 10) },
};

#undef AT
#undef LIST
#undef UINT

static void end_controller(confload *l, const ini_section *s, void *obj)
{
    agent_config *c = obj;
    c->has_controller = true;
    bool no_url = !c->has_controller_url_key && !c->has_controller_urls_key;
    if (no_url || !c->controller_ca || !c->controller_cert || !c->controller_key) {
        confload_problem(l, s->line, "[controller] needs url (or urls), ca, cert and key");
    }
    if (c->has_controller_url_key && c->has_controller_urls_key) {
        /* They fill the same list: whichever came last would win silently. */
        confload_problem(l, s->line,
                         "[controller] url and urls exclude each other: list every controller "
                         "in urls");
    } else if (c->has_controller_urls_key && c->n_controller_urls == 0) {
        confload_problem(l, s->line, "[controller] urls: empty: name at least one controller");
    }
}

/* `state_dir/name`, or NULL with a problem when out of memory. */
static char *under_state_dir(confload *l, const agent_config *c, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", c->state_dir, name) < 0) {
        confload_problem(l, 0, "out of memory");
        return NULL;
    }
    return p;
}

static void finish(confload *l, void *obj)
{
    agent_config *c = obj;
    unsigned agent_line = confload_section_line(l, "agent");
    if (!c->path) {
        confload_problem(l, 0, "out of memory");
    }
    if (IN6_IS_ADDR_UNSPECIFIED(&c->advertise_address)) {
        confload_problem(l, agent_line, "[agent] advertise_address is required");
    }
    if (c->has_service_address && IN6_ARE_ADDR_EQUAL(&c->service_address, &c->advertise_address)) {
        confload_problem(l, agent_line,
                         "[agent] service_address is the rack's shared address: it cannot be "
                         "this agent's own advertise_address");
    }
    if (c->preferred_lifetime > c->valid_lifetime) {
        confload_problem(l, confload_section_line(l, "dhcp6"),
                         "[dhcp6] preferred_lifetime (%u) must not exceed valid_lifetime (%u)",
                         c->preferred_lifetime, c->valid_lifetime);
    }
    c->http_port = ntohs(c->http_listen.sin6_port);
    c->tftp_root_default = !c->tftp_root;
    if (!c->cache_dir && c->state_dir) {
        c->cache_dir = under_state_dir(l, c, "cache");
    }
    if (!c->uki_dir && c->state_dir) {
        c->uki_dir = under_state_dir(l, c, "uki");
    }
    if (!c->tftp_root && c->state_dir) {
        c->tftp_root = under_state_dir(l, c, "tftp");
    }
    if (!c->hosts_path && !c->has_controller) {
        confload_problem(l, 0,
                         "no intent source: set [standalone] hosts or configure [controller]");
    }
    if (c->hosts_path && c->has_controller) {
        confload_problem(
            l, confload_section_line(l, "controller"),
            "[standalone] hosts and [controller] exclude each other: choose one source");
    }
}

#define SECTION(name, keys, ...)                                                                   \
    {                                                                                              \
        name, keys, ARRAY_SIZE(keys), .unique = true, __VA_ARGS__                                  \
    }

/* Every section is unique: a repeated one is most likely a merge mistake. */
static const confload_section sections[] = {
    SECTION("agent", agent_keys),
    SECTION("http", http_keys),
    SECTION("dhcp6", dhcp6_keys),
    SECTION("standalone", standalone_keys),
    SECTION("controller", controller_keys, .end = end_controller),
    SECTION("tftp", tftp_keys),
    SECTION("cache", cache_keys),
    SECTION("power", power_keys),
    SECTION("deploy", deploy_keys),
    SECTION("uki", uki_keys),
    SECTION("log", log_keys),
};

static const confload_schema schema = { sections, ARRAY_SIZE(sections), finish };

int agent_config_load(const char *path, diag *d, agent_config **ret)
{
    agent_config *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    c->path = strdup(path);
    c->log_level = LOG_LEVEL_INFO;
    /* [http] defaults (http/server.h) */
    c->http_listen = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_port = htons(80) };
    c->http_max_connections = 1024;
    c->http_max_connections_per_ip = 32; /* HTTP_DEFAULT_MAX_CONNECTIONS_PER_IP */
    c->http_connection_timeout = 30;
    c->http_header_timeout = 10; /* HTTP_DEFAULT_HEADER_TIMEOUT */
    c->http_max_header_size = 8192;
    c->dhcp6_port = DHCP6_SERVER_PORT;
    c->preferred_lifetime = AGENT_DEFAULT_PREFERRED_LIFETIME;
    c->valid_lifetime = AGENT_DEFAULT_VALID_LIFETIME;
    c->dhcp6_preference = AGENT_DEFAULT_DHCP6_PREFERENCE;
    c->max_bindings_per_interface = AGENT_DEFAULT_MAX_BINDINGS_PER_INTERFACE;
    /* [tftp] defaults */
    c->tftp_enabled = true;
    c->tftp_listen = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_port = htons(69) };
    c->tftp_max_transfers = 256;
    c->tftp_max_transfers_per_source = 8; /* TFTP_DEFAULT_MAX_TRANSFERS_PER_SOURCE */
    c->tftp_max_blksize = 1428;
    c->tftp_max_windowsize = 64;
    c->tftp_timeout_ms = 1000;
    c->tftp_retries = 5;
    c->cache_max_size = 20ULL << 30; /* CACHE_DEFAULT_MAX_SIZE */
    c->cache_max_fetches = 4;        /* CACHE_DEFAULT_MAX_FETCHES */
    c->uki_max_size = 4ULL << 30;
    c->controller_sync_wait = 30;
    c->power_poll_interval = 300; /* POWERCTL_DEFAULT_POLL_MS */
    c->power_poll_concurrency = 2;
    c->power_max_concurrent = 4;
    c->power_timeout = 10;
    c->power_retries = 2;

    int r = confload_load(path, &schema, c, d);
    if (r < 0) {
        agent_config_free(c);
        return r;
    }
    *ret = c;
    return 0;
}
