#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"
#include "model/intent.h"
#include "parse.h"
#include "util.h"

int agent_split_words(const char *s, char **out, size_t max, size_t *ret_n)
{
    size_t n = 0;
    const char *p = s;
    for (;;) {
        p += strspn(p, " \t");
        if (!*p) {
            break;
        }
        size_t len = strcspn(p, " \t");
        if (n == max) {
            goto fail_big;
        }
        out[n] = strndup(p, len);
        if (!out[n]) {
            goto fail_nomem;
        }
        n++;
        p += len;
    }
    *ret_n = n;
    return 0;
fail_big:
    for (size_t i = 0; i < n; i++) {
        out[i] = (free(out[i]), NULL);
    }
    return -E2BIG;
fail_nomem:
    for (size_t i = 0; i < n; i++) {
        out[i] = (free(out[i]), NULL);
    }
    return -ENOMEM;
}

char *agent_path_relative(const char *base, const char *rel)
{
    if (rel[0] == '/') {
        return strdup(rel);
    }
    const char *slash = strrchr(base, '/');
    if (!slash) {
        return strdup(rel);
    }
    size_t dir_len = (size_t)(slash - base);
    size_t len = dir_len + 1 + strlen(rel) + 1;
    char *p = malloc(len);
    if (p) {
        memcpy(p, base, dir_len);
        p[dir_len] = '/';
        memcpy(p + dir_len + 1, rel, strlen(rel) + 1);
    }
    return p;
}

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
    free(cfg->controller_url);
    free(cfg->controller_server_name);
    free(cfg->controller_ca);
    free(cfg->controller_cert);
    free(cfg->controller_key);
    free(cfg->controller_crl);
    free(cfg->tftp_root);
    free(cfg->cache_dir);
    free(cfg);
    return NULL;
}

typedef struct loader {
    const char *file;
    diag *d;
    unsigned errors;
    agent_config *cfg;
} loader;

#define problem(l, line, ...)                                                                      \
    do {                                                                                           \
        diag_add((l)->d, (l)->file, (line), __VA_ARGS__);                                          \
        (l)->errors++;                                                                             \
    } while (0)

static void set_string(loader *l, const ini_entry *e, char **dst)
{
    if (strempty(e->value)) {
        problem(l, e->line, "%s: empty value", e->key);
        return;
    }
    free(*dst);
    *dst = strdup(e->value);
    if (!*dst) {
        problem(l, e->line, "out of memory");
    }
}

static void set_path(loader *l, const ini_entry *e, char **dst);

static void set_addr(loader *l, const ini_entry *e, struct in6_addr *dst, bool *has)
{
    if (parse_ipv6(e->value, dst) < 0) {
        problem(l, e->line, "%s: not an IPv6 address: \"%s\"", e->key, e->value);
        return;
    }
    if (has) {
        *has = true;
    }
}

static void set_u32(loader *l, const ini_entry *e, uint32_t min, uint32_t max, uint32_t *dst)
{
    int r = parse_u32(e->value, min, max, dst);
    if (r == -ERANGE) {
        problem(l, e->line, "%s: %s is out of range [%u, %u]", e->key, e->value, min, max);
    } else if (r < 0) {
        problem(l, e->line, "%s: not a number: \"%s\"", e->key, e->value);
    }
}

static void set_bool(loader *l, const ini_entry *e, bool *dst)
{
    if (parse_bool(e->value, dst) < 0) {
        problem(l, e->line, "%s: expected yes or no, not \"%s\"", e->key, e->value);
    }
}

static void section_agent(loader *l, const ini_section *s)
{
    agent_config *c = l->cfg;
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "rack")) {
            set_string(l, e, &c->rack);
            if (c->rack && !fleet_name_valid(c->rack)) {
                problem(l, e->line,
                        "rack: \"%s\" is not a valid name (letters, digits, '-', '_', '.')",
                        e->value);
            }
        } else if (streq(e->key, "state_dir")) {
            /* Relative to the config file, like every other path here (and
             * the controller's state_dir). */
            set_path(l, e, &c->state_dir);
        } else if (streq(e->key, "user")) {
            set_string(l, e, &c->user);
            if (c->user && !user_name_valid(c->user)) {
                problem(l, e->line, "user: \"%s\" is not a user name", e->value);
            }
        } else if (streq(e->key, "advertise_address")) {
            bool has = false;
            set_addr(l, e, &c->advertise_address, &has);
            if (has && (IN6_IS_ADDR_LINKLOCAL(&c->advertise_address) ||
                        IN6_IS_ADDR_MULTICAST(&c->advertise_address) ||
                        IN6_IS_ADDR_UNSPECIFIED(&c->advertise_address))) {
                problem(l, e->line,
                        "advertise_address: must be a global unicast address hosts can reach");
            }
        } else if (streq(e->key, "gateway")) {
            set_addr(l, e, &c->gateway, &c->has_gateway);
        } else if (streq(e->key, "log_level")) {
            if (log_level_from_string(e->value, &c->log_level) < 0) {
                problem(l, e->line, "log_level: expected debug, info, warn or error, not \"%s\"",
                        e->value);
            }
        } else {
            problem(l, e->line, "unknown key \"%s\" in [agent]", e->key);
        }
    }
}

static void section_http(loader *l, const ini_section *s)
{
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "listen")) {
            struct sockaddr_in6 sa;
            if (parse_listen_address(e->value, 80, &sa) < 0) {
                problem(l, e->line, "listen: not an address to listen on: \"%s\"", e->value);
            } else {
                l->cfg->http_port = ntohs(sa.sin6_port);
                l->cfg->http_listen = sa;
            }
        } else if (streq(e->key, "max_connections")) {
            /* rack-agent/http/server.h: each needs a file descriptor. */
            set_u32(l, e, 1, 1000000, &l->cfg->http_max_connections);
        } else if (streq(e->key, "max_connections_per_ip")) {
            set_u32(l, e, 0, 1000000, &l->cfg->http_max_connections_per_ip);
        } else if (streq(e->key, "connection_timeout")) {
            set_u32(l, e, 1, 3600, &l->cfg->http_connection_timeout);
        } else if (streq(e->key, "header_timeout")) {
            set_u32(l, e, 1, 3600, &l->cfg->http_header_timeout);
        } else if (streq(e->key, "max_header_size")) {
            uint64_t v;
            if (parse_size(e->value, &v) < 0) {
                problem(l, e->line, "max_header_size: expected a size such as 8K, not \"%s\"",
                        e->value);
            } else if (v < 1024 || v > (1u << 20)) {
                problem(l, e->line, "max_header_size: %s is out of range [1K, 1M]", e->value);
            } else {
                l->cfg->http_max_header_size = (uint32_t)v;
            }
        } else {
            problem(l, e->line, "unknown key \"%s\" in [http]", e->key);
        }
    }
}

/* `trusted_relays = ADDR[/LEN], ...`: addresses or prefixes, separated by
 * commas and/or blanks; an empty value trusts none. */
static void set_trusted_relays(loader *l, const ini_entry *e)
{
    agent_config *c = l->cfg;
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
            problem(l, e->line, "trusted_relays: not an IPv6 address or prefix: \"%.*s\"", (int)len,
                    p);
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
            problem(l, e->line, "trusted_relays: not an IPv6 address or prefix: \"%s\"", word);
            continue;
        }
        pfx.len = (uint8_t)plen;
        if (c->n_trusted_relays == AGENT_MAX_TRUSTED_RELAYS) {
            problem(l, e->line, "trusted_relays: more than %d", AGENT_MAX_TRUSTED_RELAYS);
            return;
        }
        c->trusted_relays[c->n_trusted_relays++] = pfx;
    }
}

static void section_dhcp6(loader *l, const ini_section *s)
{
    agent_config *c = l->cfg;
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "interfaces")) {
            for (size_t k = 0; k < c->n_interfaces; k++) {
                c->interfaces[k] = (free(c->interfaces[k]), NULL);
            }
            c->n_interfaces = 0;
            int r =
                agent_split_words(e->value, c->interfaces, AGENT_MAX_INTERFACES, &c->n_interfaces);
            if (r == -E2BIG) {
                problem(l, e->line, "interfaces: more than %d", AGENT_MAX_INTERFACES);
            } else if (r < 0) {
                problem(l, e->line, "out of memory");
            }
            for (size_t k = 0; k < c->n_interfaces; k++) {
                if (strlen(c->interfaces[k]) >= 16) { /* IFNAMSIZ */
                    problem(l, e->line, "interfaces: \"%s\" is too long for an interface name",
                            c->interfaces[k]);
                }
            }
        } else if (streq(e->key, "port")) {
            uint32_t port;
            if (parse_u32(e->value, 1, 65535, &port) < 0) {
                problem(l, e->line, "port: expected 1-65535, not \"%s\"", e->value);
            } else {
                c->dhcp6_port = (uint16_t)port;
            }
        } else if (streq(e->key, "dns_servers")) {
            char *words[AGENT_MAX_DNS];
            size_t n = 0;
            int r = agent_split_words(e->value, words, AGENT_MAX_DNS, &n);
            if (r == -E2BIG) {
                problem(l, e->line, "dns_servers: more than %d", AGENT_MAX_DNS);
                continue;
            }
            c->n_dns = 0;
            for (size_t k = 0; r == 0 && k < n; k++) {
                if (parse_ipv6(words[k], &c->dns[c->n_dns]) < 0) {
                    problem(l, e->line, "dns_servers: not an IPv6 address: \"%s\"", words[k]);
                } else {
                    c->n_dns++;
                }
            }
            for (size_t k = 0; k < n; k++) {
                free(words[k]);
            }
        } else if (streq(e->key, "domain_search")) {
            for (size_t k = 0; k < c->n_search; k++) {
                c->search[k] = (free(c->search[k]), NULL);
            }
            c->n_search = 0;
            int r = agent_split_words(e->value, c->search, AGENT_MAX_SEARCH, &c->n_search);
            if (r == -E2BIG) {
                problem(l, e->line, "domain_search: more than %d", AGENT_MAX_SEARCH);
            }
            for (size_t k = 0; k < c->n_search; k++) {
                if (!dns_name_valid(c->search[k])) {
                    problem(l, e->line, "domain_search: not a DNS name: \"%s\"", c->search[k]);
                }
            }
        } else if (streq(e->key, "preferred_lifetime")) {
            set_u32(l, e, 1, UINT32_MAX - 1, &c->preferred_lifetime);
        } else if (streq(e->key, "valid_lifetime")) {
            set_u32(l, e, 1, UINT32_MAX - 1, &c->valid_lifetime);
        } else if (streq(e->key, "rapid_commit")) {
            set_bool(l, e, &c->rapid_commit);
        } else if (streq(e->key, "pool")) {
            char *words[2] = { NULL, NULL };
            size_t n = 0;
            int r = agent_split_words(e->value, words, 2, &n);
            if (r < 0 || n != 2) {
                problem(l, e->line, "pool: expected \"FIRST LAST\"");
            } else if (parse_ipv6(words[0], &c->pool.first) < 0 ||
                       parse_ipv6(words[1], &c->pool.last) < 0) {
                problem(l, e->line, "pool: not two IPv6 addresses: \"%s\"", e->value);
            } else if (memcmp(&c->pool.first, &c->pool.last, 8) != 0 ||
                       memcmp(&c->pool.first.s6_addr[8], &c->pool.last.s6_addr[8], 8) > 0) {
                problem(l, e->line, "pool: FIRST and LAST must be in one /64, FIRST <= LAST");
            } else {
                c->has_pool = true;
            }
            free(words[0]);
            free(words[1]);
        } else if (streq(e->key, "max_bindings_per_interface")) {
            set_u32(l, e, 1, 1000000, &c->max_bindings_per_interface);
        } else if (streq(e->key, "trusted_relays")) {
            set_trusted_relays(l, e);
        } else {
            problem(l, e->line, "unknown key \"%s\" in [dhcp6]", e->key);
        }
    }
}

static void section_standalone(loader *l, const ini_section *s)
{
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "hosts")) {
            if (strempty(e->value)) {
                problem(l, e->line, "hosts: empty value");
                continue;
            }
            free(l->cfg->hosts_path);
            l->cfg->hosts_path = agent_path_relative(l->file, e->value);
            if (!l->cfg->hosts_path) {
                problem(l, e->line, "out of memory");
            }
        } else {
            problem(l, e->line, "unknown key \"%s\" in [standalone]", e->key);
        }
    }
}

static void set_path(loader *l, const ini_entry *e, char **dst)
{
    if (strempty(e->value)) {
        problem(l, e->line, "%s: empty value", e->key);
        return;
    }
    free(*dst);
    *dst = agent_path_relative(l->file, e->value);
    if (!*dst) {
        problem(l, e->line, "out of memory");
    }
}

/* [controller]: the uplink (rack-agent/uplink/uplink.h). */
static void section_controller(loader *l, const ini_section *s)
{
    agent_config *c = l->cfg;
    c->has_controller = true;
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "url")) {
            if (strncmp(e->value, "tls+tcp://", 10) != 0) {
                problem(l, e->line, "url: expected tls+tcp://HOST:PORT, not \"%s\"", e->value);
                continue;
            }
            set_string(l, e, &c->controller_url);
        } else if (streq(e->key, "server_name")) {
            set_string(l, e, &c->controller_server_name);
        } else if (streq(e->key, "ca")) {
            set_path(l, e, &c->controller_ca);
        } else if (streq(e->key, "cert")) {
            set_path(l, e, &c->controller_cert);
        } else if (streq(e->key, "key")) {
            set_path(l, e, &c->controller_key);
        } else if (streq(e->key, "crl")) {
            set_path(l, e, &c->controller_crl);
        } else if (streq(e->key, "sync_wait")) {
            set_u32(l, e, 1, 600, &c->controller_sync_wait);
        } else {
            problem(l, e->line, "unknown key \"%s\" in [controller]", e->key);
        }
    }
    if (!c->controller_url || !c->controller_ca || !c->controller_cert || !c->controller_key) {
        problem(l, s->line, "[controller] needs url, ca, cert and key");
    }
}

/* [cache]: the image cache (rack-agent/cache/cache.h). */
static void section_cache(loader *l, const ini_section *s)
{
    agent_config *c = l->cfg;
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "dir")) {
            if (strempty(e->value)) {
                problem(l, e->line, "dir: empty value");
                continue;
            }
            free(c->cache_dir);
            c->cache_dir = agent_path_relative(l->file, e->value);
            if (!c->cache_dir) {
                problem(l, e->line, "out of memory");
            }
        } else if (streq(e->key, "max_size")) {
            uint64_t v;
            if (parse_size(e->value, &v) < 0) {
                problem(l, e->line, "max_size: expected a size such as 500M or 20G, not \"%s\"",
                        e->value);
            } else if (v < (1ULL << 20)) {
                problem(l, e->line, "max_size: %s is below the minimum of 1M", e->value);
            } else {
                c->cache_max_size = v;
            }
        } else if (streq(e->key, "max_fetches")) {
            set_u32(l, e, 1, 64, &c->cache_max_fetches);
        } else {
            problem(l, e->line, "unknown key \"%s\" in [cache]", e->key);
        }
    }
}

/* [tftp]: the TFTP server (rack-agent/tftp/server.h). */
static void section_tftp(loader *l, const ini_section *s)
{
    agent_config *c = l->cfg;
    for (size_t i = 0; i < s->n_entries; i++) {
        const ini_entry *e = &s->entries[i];
        if (streq(e->key, "enabled")) {
            set_bool(l, e, &c->tftp_enabled);
        } else if (streq(e->key, "listen")) {
            if (parse_listen_address(e->value, 69, &c->tftp_listen) < 0) {
                problem(l, e->line, "listen: not an address to listen on: \"%s\"", e->value);
            }
        } else if (streq(e->key, "root")) {
            if (strempty(e->value)) {
                problem(l, e->line, "root: empty value");
                continue;
            }
            free(c->tftp_root);
            c->tftp_root = agent_path_relative(l->file, e->value);
            c->tftp_root_default = false;
            if (!c->tftp_root) {
                problem(l, e->line, "out of memory");
            }
        } else if (streq(e->key, "max_transfers")) {
            set_u32(l, e, 1, 65536, &c->tftp_max_transfers);
        } else if (streq(e->key, "max_transfers_per_source")) {
            set_u32(l, e, 1, 65536, &c->tftp_max_transfers_per_source);
        } else if (streq(e->key, "max_blksize")) {
            set_u32(l, e, 8, 65464, &c->tftp_max_blksize); /* RFC 2348 */
        } else if (streq(e->key, "max_windowsize")) {
            set_u32(l, e, 1, 65535, &c->tftp_max_windowsize); /* RFC 7440 */
        } else if (streq(e->key, "timeout_ms")) {
            set_u32(l, e, 10, 255000, &c->tftp_timeout_ms);
        } else if (streq(e->key, "retries")) {
            set_u32(l, e, 0, 20, &c->tftp_retries);
        } else {
            problem(l, e->line, "unknown key \"%s\" in [tftp]", e->key);
        }
    }
}

static void check_section(loader *l, const ini_section *s)
{
    if (streq(s->name, "agent")) {
        section_agent(l, s);
    } else if (streq(s->name, "http")) {
        section_http(l, s);
    } else if (streq(s->name, "dhcp6")) {
        section_dhcp6(l, s);
    } else if (streq(s->name, "standalone")) {
        section_standalone(l, s);
    } else if (streq(s->name, "cache")) {
        section_cache(l, s);
    } else if (streq(s->name, "tftp")) {
        section_tftp(l, s);
    } else if (streq(s->name, "controller")) {
        section_controller(l, s);
    } else {
        problem(l, s->line, "unknown section [%s]", s->name);
    }
}

int agent_config_load(const char *path, diag *d, agent_config **ret)
{
    ini_doc *doc = NULL;
    int r = ini_load_file(path, d, &doc);
    if (r < 0) {
        return r;
    }
    agent_config *c = calloc(1, sizeof(*c));
    if (!c) {
        ini_doc_free(doc);
        return -ENOMEM;
    }
    c->path = strdup(path);
    c->log_level = LOG_LEVEL_INFO;
    c->http_port = 80;
    /* [http] defaults (rack-agent/http/server.h) */
    c->http_listen = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_port = htons(80) };
    c->http_max_connections = 1024;
    c->http_max_connections_per_ip = 32; /* HTTP_DEFAULT_MAX_CONNECTIONS_PER_IP */
    c->http_connection_timeout = 30;
    c->http_header_timeout = 10; /* HTTP_DEFAULT_HEADER_TIMEOUT */
    c->http_max_header_size = 8192;
    c->dhcp6_port = DHCP6_SERVER_PORT;
    c->preferred_lifetime = AGENT_DEFAULT_PREFERRED_LIFETIME;
    c->valid_lifetime = AGENT_DEFAULT_VALID_LIFETIME;
    c->max_bindings_per_interface = AGENT_DEFAULT_MAX_BINDINGS_PER_INTERFACE;
    /* [tftp] defaults */
    c->tftp_enabled = true;
    c->tftp_listen = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_port = htons(69) };
    c->tftp_root_default = true;
    c->tftp_max_transfers = 256;
    c->tftp_max_transfers_per_source = 8; /* TFTP_DEFAULT_MAX_TRANSFERS_PER_SOURCE */
    c->tftp_max_blksize = 1428;
    c->tftp_max_windowsize = 64;
    c->tftp_timeout_ms = 1000;
    c->tftp_retries = 5;
    c->cache_max_size = 20ULL << 30; /* CACHE_DEFAULT_MAX_SIZE */
    c->cache_max_fetches = 4;        /* CACHE_DEFAULT_MAX_FETCHES */
    c->controller_sync_wait = 30;
    loader l = { .file = path, .d = d, .cfg = c };
    if (!c->path) {
        problem(&l, 0, "out of memory");
    }

    /* A repeated section is most likely a merge mistake: say so rather than
     * silently reading both. */
    static const char *const unique[] = { "agent",      "http", "dhcp6", "standalone",
                                          "controller", "tftp", "cache" };
    unsigned first_line[ARRAY_SIZE(unique)] = { 0 };
    for (size_t i = 0; i < doc->n_sections; i++) {
        const ini_section *s = &doc->sections[i];
        for (size_t k = 0; k < ARRAY_SIZE(unique); k++) {
            if (streq(s->name, unique[k])) {
                if (first_line[k]) {
                    problem(&l, s->line, "section [%s] repeated (first at line %u)", s->name,
                            first_line[k]);
                } else {
                    first_line[k] = s->line;
                }
            }
        }
        check_section(&l, s);
    }

    if (!c->rack) {
        problem(&l, first_line[0], "[agent] rack is required");
    }
    if (!c->state_dir) {
        problem(&l, first_line[0], "[agent] state_dir is required");
    }
    if (IN6_IS_ADDR_UNSPECIFIED(&c->advertise_address)) {
        problem(&l, first_line[0], "[agent] advertise_address is required");
    }
    if (c->preferred_lifetime > c->valid_lifetime) {
        problem(&l, first_line[2],
                "[dhcp6] preferred_lifetime (%u) must not exceed valid_lifetime (%u)",
                c->preferred_lifetime, c->valid_lifetime);
    }
    if (!c->cache_dir && c->state_dir) {
        size_t n = strlen(c->state_dir) + sizeof("/cache");
        c->cache_dir = malloc(n);
        if (!c->cache_dir) {
            problem(&l, 0, "out of memory");
        } else {
            snprintf(c->cache_dir, n, "%s/cache", c->state_dir);
        }
    }
    if (!c->tftp_root && c->state_dir) {
        size_t n = strlen(c->state_dir) + sizeof("/tftp");
        c->tftp_root = malloc(n);
        if (!c->tftp_root) {
            problem(&l, 0, "out of memory");
        } else {
            snprintf(c->tftp_root, n, "%s/tftp", c->state_dir);
        }
    }
    if (!c->hosts_path && !c->has_controller) {
        problem(&l, 0, "no intent source: set [standalone] hosts or configure [controller]");
    }
    if (c->hosts_path && c->has_controller) {
        problem(&l, first_line[4],
                "[standalone] hosts and [controller] exclude each other: choose one source");
    }
    ini_doc_free(doc);
    if (l.errors > 0) {
        agent_config_free(c);
        return -EINVAL;
    }
    *ret = c;
    return 0;
}
