/* rackboot-agent: the rack agent daemon. One libuv loop drives everything;
 * this file wires the configuration, the intent source, the DHCPv6 server
 * and its socket and lease file together, and handles signals:
 *
 *   SIGTERM, SIGINT  clean shutdown (lease file flushed, stats logged)
 *   SIGHUP           re-read the standalone hosts file
 *   SIGUSR1          log the DHCPv6 counters */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "config.h"
#include "dhcp6/leasefile.h"
#include "dhcp6/links.h"
#include "dhcp6/socket.h"
#include "diag.h"
#include "hex.h"
#include "intents.h"
#include "log.h"
#include "parse.h"
#include "server.h"
#include "standalone.h"
#include "state.h"
#include "util.h"
#include "version.h"

#define LEASE_FLUSH_MS  1000
#define EXPIRE_EVERY_MS 60000
/* Compact the lease file when it holds more than this many appended records
 * and more than FACTOR times the live bindings. */
#define LEASE_COMPACT_MIN    10000
#define LEASE_COMPACT_FACTOR 4

typedef struct agent {
    agent_config *cfg;
    uv_loop_t *loop;
    intents_store *store;
    standalone_installs *installs;
    uint64_t generation;
    dhcp6_bindings *bindings;
    dhcp6_server *server;
    dhcp6_links *links;
    dhcp6_socket *socket;
    dhcp6_leasefile *leases;
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
    uv_timer_t expire_timer;
    int exit_code;
} agent;

static void usage(FILE *f)
{
    fprintf(f, "Usage: rackboot-agent --config FILE [--check-config]\n"
               "\n"
               "The rackboot rack agent: serves its rack's install intents over DHCPv6.\n"
               "\n"
               "  -c, --config FILE   configuration file (see deploy/examples/agent.conf)\n"
               "      --check-config  validate the configuration and hosts file, then exit\n"
               "  -h, --help          show this help\n"
               "  -V, --version       show the version\n"
               "\n"
               "Signals: SIGTERM/SIGINT stop, SIGHUP reloads the hosts file, SIGUSR1 logs\n"
               "the DHCPv6 counters.\n");
}

static standalone_defaults defaults_of(const agent_config *cfg)
{
    return (standalone_defaults){ .has_gateway = cfg->has_gateway, .gateway = cfg->gateway };
}

static int check_config(const char *path)
{
    diag *d = diag_new();
    agent_config *cfg = NULL;
    int r = d ? agent_config_load(path, d, &cfg) : -ENOMEM;
    if (r == 0 && cfg->hosts_path) {
        intent_set *set = NULL;
        standalone_defaults defs = defaults_of(cfg);
        r = standalone_load(cfg->hosts_path, &defs, NULL, 0, d, &set);
        intent_set_free(set);
    }
    if (r < 0) {
        if (diag_count(d) == 0) {
            fprintf(stderr, "%s: %s\n", path, errstr(r));
        }
        diag_print(d, stderr);
    } else {
        printf("%s: ok\n", path);
    }
    agent_config_free(cfg);
    diag_free(d);
    return r < 0 ? 1 : 0;
}

static void log_stats(agent *a, const char *why)
{
    const dhcp6_server_stats *s = dhcp6_server_get_stats(a->server);
    const dhcp6_socket_stats *k = a->socket ? dhcp6_socket_get_stats(a->socket) : NULL;
    log_info("dhcp6 stats why=%s received=%" PRIu64 " malformed=%" PRIu64 " dropped=%" PRIu64
             " ignored_no_intent=%" PRIu64 " advertise=%" PRIu64 " reply=%" PRIu64
             " no_addrs=%" PRIu64 " solicit=%" PRIu64 " request=%" PRIu64 " renew=%" PRIu64
             " rebind=%" PRIu64 " confirm=%" PRIu64 " release=%" PRIu64 " foreign_ifindex=%" PRIu64
             " truncated=%" PRIu64 " send_errors=%" PRIu64 " bindings=%zu",
             why, s->received, s->malformed, s->dropped, s->ignored_no_intent, s->advertise,
             s->reply, s->no_addrs, s->by_type[DHCP6_SOLICIT], s->by_type[DHCP6_REQUEST],
             s->by_type[DHCP6_RENEW], s->by_type[DHCP6_REBIND], s->by_type[DHCP6_CONFIRM],
             s->by_type[DHCP6_RELEASE], k ? k->foreign_ifindex : 0, k ? k->truncated : 0,
             k ? k->send_errors : 0, dhcp6_bindings_count(a->bindings));
}

static void on_bound(void *userdata, const intent *in, const uint8_t mac[6],
                     const struct in6_addr *addr, const uint8_t *duid, size_t duid_len,
                     dhcp6_client_kind kind)
{
    char m[FORMAT_MAC_LEN], ad[INET6_ADDRSTRLEN], hex[2 * DHCP6_MAX_DUID + 1];
    format_mac(mac, m);
    inet_ntop(AF_INET6, addr, ad, sizeof(ad));
    hex_encode(duid, duid_len <= DHCP6_MAX_DUID ? duid_len : DHCP6_MAX_DUID, hex);
    log_info("dhcp6 bound host=%s mac=%s addr=%s duid=%s client=%s install=%s", in->host, m, ad,
             hex, dhcp6_client_kind_to_string(kind), in->install_id);
}

static int load_hosts(agent *a, const char *why)
{
    diag *d = diag_new();
    if (!d) {
        return -ENOMEM;
    }
    intent_set *set = NULL;
    standalone_defaults defs = defaults_of(a->cfg);
    int r = standalone_load(a->cfg->hosts_path, &defs, a->installs, a->generation + 1, d, &set);
    if (r < 0) {
        log_error("standalone hosts file not loaded (%s) path=%s err=%s problems=%zu%s", why,
                  a->cfg->hosts_path, errstr(r), diag_count(d),
                  a->generation ? ", keeping the previous intents" : "");
        for (size_t i = 0; i < diag_count(d); i++) {
            log_error("standalone %s", diag_get(d, i));
        }
        diag_free(d);
        return r;
    }
    diag_free(d);
    a->generation++;
    log_info("standalone hosts loaded (%s) path=%s intents=%zu profiles=%zu generation=%" PRIu64,
             why, a->cfg->hosts_path, intent_set_size(set), intent_set_n_profiles(set),
             a->generation);
    intents_store_replace(a->store, set);
    return 0;
}

static void stop(agent *a)
{
    log_info("shutting down");
    uv_signal_stop(&a->sig_term);
    uv_signal_stop(&a->sig_int);
    uv_close((uv_handle_t *)&a->sig_term, NULL);
    uv_close((uv_handle_t *)&a->sig_int, NULL);
    uv_close((uv_handle_t *)&a->sig_hup, NULL);
    uv_close((uv_handle_t *)&a->sig_usr1, NULL);
    uv_close((uv_handle_t *)&a->expire_timer, NULL);
    dhcp6_socket_close(a->socket);
    log_stats(a, "shutdown");
    a->socket = NULL;
    dhcp6_leasefile_close(a->leases);
    a->leases = NULL;
}

static void on_signal(uv_signal_t *h, int signum)
{
    agent *a = h->data;
    switch (signum) {
    case SIGHUP:
        if (a->cfg->hosts_path) {
            load_hosts(a, "reload");
        }
        break;
    case SIGUSR1:
        log_stats(a, "sigusr1");
        break;
    default:
        stop(a);
        break;
    }
}

static void on_expire(uv_timer_t *t)
{
    agent *a = t->data;
    size_t n = dhcp6_bindings_expire(a->bindings, (uint64_t)time(NULL));
    if (n > 0) {
        log_debug("dhcp6 expired bindings=%zu", n);
    }
    /* Renewals append a line each: rewrite the file once the log holds
     * several times more records than there are live bindings. */
    uint64_t appended = dhcp6_leasefile_appended(a->leases);
    uint64_t live = dhcp6_bindings_count(a->bindings);
    if (appended > LEASE_COMPACT_MIN && appended > LEASE_COMPACT_FACTOR * live) {
        int r = dhcp6_leasefile_compact_async(a->leases, a->bindings);
        if (r < 0 && r != -EBUSY) {
            log_error("dhcp6 lease file compaction not started err=%s", errstr(r));
        }
    }
}

static int setup_leases(agent *a)
{
    _cleanup_free_ char *path = state_path(a->cfg->state_dir, "dhcp6.leases");
    if (!path) {
        return -ENOMEM;
    }
    dhcp6_leasefile_stats st;
    int r = dhcp6_leasefile_load(path, a->bindings, (uint64_t)time(NULL), &st);
    if (r == -EBADMSG) {
        /* Not our format: keep it for a human, start without bindings. */
        _cleanup_free_ char *aside = state_path(a->cfg->state_dir, "dhcp6.leases.corrupt");
        log_error("dhcp6 lease file has no valid header, moved aside path=%s to=%s", path,
                  aside ? aside : "?");
        if (!aside || rename(path, aside) < 0) {
            return -EBADMSG;
        }
    } else if (r < 0) {
        log_error("dhcp6 lease file unreadable path=%s err=%s", path, errstr(r));
        return r;
    } else {
        log_info("dhcp6 leases restored path=%s records=%zu bad=%zu truncated_tail=%s "
                 "bindings=%zu",
                 path, st.records, st.bad, st.truncated ? "yes" : "no",
                 dhcp6_bindings_count(a->bindings));
    }
    r = dhcp6_leasefile_compact(path, a->bindings);
    if (r < 0) {
        log_error("dhcp6 lease file compaction failed path=%s err=%s", path, errstr(r));
        return r;
    }
    r = dhcp6_leasefile_open(a->loop, path, LEASE_FLUSH_MS, &a->leases);
    if (r < 0) {
        log_error("dhcp6 lease file open failed path=%s err=%s", path, errstr(r));
        return r;
    }
    dhcp6_bindings_set_sink(a->bindings, dhcp6_leasefile_sink, a->leases);
    return 0;
}

static int setup_dhcp6(agent *a)
{
    const agent_config *c = a->cfg;
    dhcp6_server_config sc = {
        .preferred_lifetime = c->preferred_lifetime,
        .valid_lifetime = c->valid_lifetime,
        .rapid_commit = c->rapid_commit,
        .n_dns = c->n_dns,
        .n_search = c->n_search,
        .advertise_address = c->advertise_address,
        .http_port = c->http_port,
        .has_pool = c->has_pool,
        .pool = c->pool,
    };
    memcpy(sc.dns, c->dns, c->n_dns * sizeof(c->dns[0]));
    for (size_t i = 0; i < c->n_search; i++) {
        sc.search[i] = c->search[i];
    }
    size_t duid_len = 0;
    int r = state_server_duid(c->state_dir, sc.duid, sizeof(sc.duid), &duid_len);
    if (r < 0) {
        log_error("dhcp6 server DUID unavailable state_dir=%s err=%s", c->state_dir, errstr(r));
        return r;
    }
    sc.duid_len = (uint16_t)duid_len;
    char hex[2 * DHCP6_MAX_DUID + 1];
    hex_encode(sc.duid, duid_len, hex);
    log_info("dhcp6 server duid=%s", hex);

    r = dhcp6_bindings_new(c->has_pool ? &c->pool : NULL, &a->bindings);
    if (r < 0) {
        return r;
    }
    r = setup_leases(a);
    if (r < 0) {
        return r;
    }
    r = dhcp6_server_new(&sc, a->store, a->bindings, &a->server);
    if (r < 0) {
        log_error("dhcp6 server configuration rejected err=%s", errstr(r));
        return r;
    }
    dhcp6_server_on_bound(a->server, on_bound, a);
    r = dhcp6_links_new(&a->links);
    if (r < 0) {
        return r;
    }
    dhcp6_server_on_link(a->server, dhcp6_links_on_link, a->links);

    unsigned ifindexes[AGENT_MAX_INTERFACES];
    for (size_t i = 0; i < c->n_interfaces; i++) {
        ifindexes[i] = if_nametoindex(c->interfaces[i]);
        if (ifindexes[i] == 0) {
            log_error("dhcp6 interface not found interface=%s", c->interfaces[i]);
            return -ENODEV;
        }
    }
    dhcp6_socket_config kc = { .port = c->dhcp6_port,
                               .ifindexes = ifindexes,
                               .n_ifindexes = c->n_interfaces };
    r = dhcp6_socket_open(a->loop, &kc, a->server, &a->socket);
    if (r < 0) {
        log_error("dhcp6 socket failed port=%u err=%s", c->dhcp6_port, errstr(r));
        return r;
    }
    log_info("dhcp6 serving port=%u interfaces=%zu pool=%s rapid_commit=%s",
             dhcp6_socket_port(a->socket), c->n_interfaces, c->has_pool ? "yes" : "no",
             c->rapid_commit ? "yes" : "no");
    return 0;
}

static int start_signal(agent *a, uv_signal_t *h, int signum)
{
    uv_signal_init(a->loop, h);
    h->data = a;
    return uv_signal_start(h, on_signal, signum);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static int run(const char *config_path)
{
    diag *d = diag_new();
    agent a = { .exit_code = 0 };
    int r = d ? agent_config_load(config_path, d, &a.cfg) : -ENOMEM;
    if (r < 0) {
        fprintf(stderr, "rackboot-agent: configuration not valid: %s\n", config_path);
        diag_print(d, stderr);
        diag_free(d);
        return 1;
    }
    d = diag_free(d);
    log_set_level(a.cfg->log_level);
    log_info("starting version=%s rack=%s config=%s", RACKBOOT_VERSION, a.cfg->rack, config_path);
    uv_loop_t loop;
    r = uv_loop_init(&loop);
    if (r < 0) {
        log_error("event loop init failed err=%s", uv_strerror(r));
        agent_config_free(a.cfg);
        return 1;
    }
    a.loop = &loop;
    r = state_dir_ensure(a.cfg->state_dir);
    if (r < 0) {
        log_error("state_dir unusable path=%s err=%s", a.cfg->state_dir, errstr(r));
        goto out;
    }
    r = intents_store_new(&a.store);
    if (r < 0) {
        goto out;
    }
    if (a.cfg->hosts_path) {
        r = standalone_installs_load(a.cfg->state_dir, &a.installs);
        if (r < 0) {
            log_error("standalone install ids unreadable state_dir=%s err=%s", a.cfg->state_dir,
                      errstr(r));
            goto out;
        }
        r = load_hosts(&a, "start");
        if (r < 0) {
            goto out;
        }
    } else {
        log_warn("no [standalone] hosts and no controller uplink yet: serving no intents");
    }
    r = setup_dhcp6(&a);
    if (r < 0) {
        goto out;
    }
    uv_timer_init(&loop, &a.expire_timer);
    a.expire_timer.data = &a;
    uv_timer_start(&a.expire_timer, on_expire, EXPIRE_EVERY_MS, EXPIRE_EVERY_MS);
    r = start_signal(&a, &a.sig_term, SIGTERM);
    if (r == 0) {
        r = start_signal(&a, &a.sig_int, SIGINT);
    }
    if (r == 0) {
        r = start_signal(&a, &a.sig_hup, SIGHUP);
    }
    if (r == 0) {
        r = start_signal(&a, &a.sig_usr1, SIGUSR1);
    }
    if (r < 0) {
        log_error("signal setup failed err=%s", uv_strerror(r));
        goto out;
    }
    log_info("ready");
    uv_run(&loop, UV_RUN_DEFAULT);
    log_info("stopped");
out:
    if (r < 0) {
        a.exit_code = 1;
        /* Started handles must close before the loop can. */
        if (a.socket) {
            dhcp6_socket_close(a.socket);
        }
        if (a.leases) {
            dhcp6_leasefile_close(a.leases);
        }
        uv_walk(&loop, close_walk, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    dhcp6_server_free(a.server);
    dhcp6_links_free(a.links);
    dhcp6_bindings_free(a.bindings);
    standalone_installs_free(a.installs);
    intents_store_free(a.store);
    agent_config_free(a.cfg);
    return a.exit_code;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", no_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    const char *config = NULL;
    bool check = false;
    log_set_ident("rackboot-agent");
    int c;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'C':
            check = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("rackboot-agent %s\n", RACKBOOT_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || !config) {
        usage(stderr);
        return 2;
    }
    return check ? check_config(config) : run(config);
}
