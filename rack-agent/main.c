/* rackboot-agent: the rack agent daemon. One libuv loop drives everything;
 * this file wires the configuration, the intent source, the DHCPv6 server
 * and its socket and lease file together, and handles signals:
 *
 *   SIGTERM, SIGINT  clean shutdown (lease file flushed, stats logged)
 *   SIGHUP           re-read the standalone hosts file, or the uplink's TLS
 *                    files (a renewed CRL; uplink_reload_tls)
 *
 * The intents come from the standalone hosts file or from the controller
 * (uplink.h); either way they pass through progress.h, which withdraws
 * installs that completed.
 *   SIGUSR1          log the DHCPv6 counters */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cache/cache.h"
#include "cache/images.h"
#include "config.h"
#include "daemon.h"
#include "daemon_args.h"
#include "dhcp6/leasefile.h"
#include "dhcp6/links.h"
#include "dhcp6/server.h"
#include "dhcp6/socket.h"
#include "diag.h"
#include "files/files-internal.h"
#include "files/http_route.h"
#include "hex.h"
#include "http/server.h"
#include "identity.h"
#include "install/progress.h"
#include "install/routes.h"
#include "log.h"
#include "logjson.h"
#include "metrics/metrics.h"
#include "model/intent.h"
#include "parse.h"
#include "powerctl/powerctl.h"
#include "preflight.h"
#include "render/context.h"
#include "sha256.h"
#include "standalone/standalone.h"
#include "state/state.h"
#include "tftp/server.h"
#include "uki/uki.h"
#include "uplink/journal.h"
#include "uplink/uplink.h"
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
    /* The image cache (rack-agent/cache/) and its served paths. */
    cache *cache;
    cache_images *images;
    /* TFTP: the served names (files.h) and the TFTP server. */
    files *files;
    files *ramdisk; /* [deploy] ramdisk, served at /deploy/ */
    tftp_server *tftp;
    /* HTTP (http/, files/http_route.h) and the metrics it serves at /metrics. */
    http_server *http;
    metrics *metrics;
    /* The install flow: rendered boot files, events, and the uplink. */
    render_context render;
    boot_routes *boot;
    journal *journal; /* with a controller only */
    progress *progress;
    uplink *uplink;
    powerctl *power; /* with a controller only: the BMCs come from it */
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
    uv_timer_t expire_timer;
    int exit_code;
} agent;

static void close_cache(agent *a);

/* The sentences of --help that are this daemon's (common/daemon_args.h). */
static const daemon_program program = {
    .name = "rackboot-agent",
    .about = "The rackboot rack agent: serves its rack's install intents over DHCPv6.\n",
    .example = "deploy/examples/agent.conf",
    .user_when = "once the ports are bound",
    .user_key = "[agent] user",
    .check_what = "the configuration and hosts file",
    .signals = "Signals: SIGTERM/SIGINT stop, SIGHUP reloads the hosts file, SIGUSR1 logs\n"
               "the DHCPv6 counters.\n",
};

static standalone_defaults defaults_of(const agent_config *cfg)
{
    return (standalone_defaults){ .has_gateway = cfg->has_gateway,
                                  .gateway = cfg->gateway,
                                  .has_agent_address = true,
                                  .agent_address = cfg->advertise_address };
}

static int check_config(const char *path)
{
    diag *d = diag_new();
    agent_config *cfg = NULL;
    int r = d ? agent_config_load(path, d, &cfg) : -ENOMEM;
    if (r == 0) {
        r = agent_preflight(cfg, d);
    }
    if (r == 0) {
        r = agent_preflight_trust(cfg, d);
    }
    if (r == 0 && cfg->hosts_path) {
        intent_set *set = NULL;
        standalone_defaults defs = defaults_of(cfg);
        r = standalone_load(cfg->hosts_path, &defs, NULL, 0, d, &set);
        if (r == 0) {
            r = agent_preflight_image_profiles(cfg, set, d);
        }
        intent_set_free(set);
    }
    if (r < 0) {
        if (diag_count(d) == 0) {
            fprintf(stderr, "%s: %s\n", path, errstr(r));
        }
        diag_print(d, stderr);
    } else {
        printf("%s: ok\n", path);
        if (!cfg->deploy_ramdisk) {
            printf("%s: note: no [deploy] ramdisk: hosts of image profiles (kind = image) "
                   "cannot be served\n",
                   path);
        }
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
             " truncated=%" PRIu64 " send_errors=%" PRIu64 " reads=%" PRIu64 " sends=%" PRIu64
             " waits=%" PRIu64 " bindings=%zu",
             why, s->received, s->malformed, s->dropped, s->ignored_no_intent, s->advertise,
             s->reply, s->no_addrs, s->by_type[DHCP6_SOLICIT], s->by_type[DHCP6_REQUEST],
             s->by_type[DHCP6_RENEW], s->by_type[DHCP6_REBIND], s->by_type[DHCP6_CONFIRM],
             s->by_type[DHCP6_RELEASE], k ? k->foreign_ifindex : 0, k ? k->truncated : 0,
             k ? k->send_errors : 0, k ? k->batches : 0, k ? k->flushes : 0, k ? k->waits : 0,
             dhcp6_bindings_count(a->bindings));
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
    agent *a = userdata;
    /* A DUID that does not carry the MAC (DUID-EN 2, DUID-UUID 4) was
     * resolved another way: tell the controller which host it is. */
    uint16_t duid_type = duid_len >= 2 ? (uint16_t)(duid[0] << 8 | duid[1]) : 0;
    if (duid_type == 2 || duid_type == 4) {
        progress_emit(a->progress, in, RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED, 0, NULL, mac, duid,
                      duid_len);
    }
    char message[96];
    snprintf(message, sizeof(message), "%s %s", dhcp6_client_kind_to_string(kind), ad);
    progress_emit(a->progress, in, RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND, 0, message, mac, NULL, 0);
}

static bool keep_unfinished(const intent *in, void *userdata)
{
    return !progress_is_completed(userdata, in->install_id);
}

/* Every new intent set goes through here: completed installs are filtered
 * out before the servers see it. */
static void install_intents(agent *a, intent_set *set, const char *why)
{
    intent_set *filtered = NULL;
    int r = progress_filter(a->progress, set, &filtered);
    if (r < 0) {
        log_error("intents (%s) not filtered for completed installs: %s; serving them as they are",
                  why, errstr(r));
        filtered = set;
    }
    intents_store_replace(a->store, filtered);
}

/* An install reported installed: its intent goes at once, so the host's
 * next boot gets no DHCPv6 answer and falls through to its disk. */
static void on_install_completed(void *userdata, const char *install_id)
{
    agent *a = userdata;
    const intent_set *now = intents_store_current(a->store);
    const intent *in = now ? intent_set_find_install(now, install_id) : NULL;
    if (!in) {
        return;
    }
    log_info("install completed install=%s host=%s: intent withdrawn", install_id, in->host);
    intent_set *filtered = NULL;
    int r = intent_set_filter(now, keep_unfinished, a->progress, &filtered);
    if (r < 0) {
        log_error("install %s completed but its intent stays until the next sync: %s", install_id,
                  errstr(r));
        return;
    }
    intents_store_replace(a->store, filtered);
}

static bool keep_all(const intent *in, void *userdata)
{
    return true;
}

/* An install that ends on its first boot is on its disk (an image written,
 * a Debian installer's `installed`): its intent stays (for the phone-home
 * of the system on that disk) but gets no netboot answers any more. */
static void on_install_written(void *userdata, const char *install_id)
{
    agent *a = userdata;
    const intent_set *now = intents_store_current(a->store);
    const intent *in = now ? intent_set_find_install(now, install_id) : NULL;
    if (!in) {
        return;
    }
    log_info("install on disk install=%s host=%s: no more netboot answers, waiting for its "
             "phone-home",
             install_id, in->host);
    intent_set *copy = NULL;
    int r = intent_set_filter(now, keep_all, NULL, &copy);
    if (r < 0) {
        log_error("install %s on disk but its host still netboots until the next sync: %s",
                  install_id, errstr(r));
        return;
    }
    install_intents(a, copy, "written");
}

/* The uplink has a new generation from the controller (persisted). */
static void on_uplink_state(void *userdata, intent_set *set, power_plan *plan)
{
    agent *a = userdata;
    log_info("intents from the controller generation=%" PRIu64 " intents=%zu profiles=%zu "
             "bmcs=%zu power_commands=%zu",
             intent_set_generation(set), intent_set_size(set), intent_set_n_profiles(set),
             plan ? plan->n_bmcs : 0, plan ? plan->n_commands : 0);
    install_intents(a, set, "controller");
    if (plan) {
        powerctl_apply(a->power, plan);
    }
}

/* powerctl's events (power_on, power_failed, ...) go to the journal like
 * the install flow's. */
static int on_power_event(void *userdata, const Rackboot__V1__Event *ev)
{
    agent *a = userdata;
    return progress_emit_host_event(a->progress, ev);
}

static int setup_power(agent *a)
{
    const agent_config *c = a->cfg;
    powerctl_options o = {
        .poll_interval_ms = c->power_poll_interval * 1000,
        .poll_concurrency = c->power_poll_concurrency,
        .state_dir = c->state_dir,
        .executor = { .max_concurrent = c->power_max_concurrent,
                      .attempt_timeout_ms = c->power_timeout * 1000,
                      .retries = (int)c->power_retries },
    };
    int r = powerctl_new(a->loop, &o, on_power_event, a, &a->power);
    if (r < 0) {
        log_error("power control not started err=%s", errstr(r));
        return r;
    }
    log_info("power control poll_interval=%us poll_concurrency=%u max_concurrent=%u timeout=%us "
             "retries=%u",
             c->power_poll_interval, c->power_poll_concurrency, c->power_max_concurrent,
             c->power_timeout, c->power_retries);
    return 0;
}

static void on_events_durable(void *userdata)
{
    agent *a = userdata;
    if (a->uplink) {
        uplink_events_ready(a->uplink);
    }
}

/* The progress module and, with a controller, the journal and the uplink.
 * The intents the agent persisted last are served at once; the controller
 * may be down. */
static int setup_install_flow(agent *a)
{
    const agent_config *c = a->cfg;
    if (c->has_controller) {
        _cleanup_free_ char *dir = state_path(c->state_dir, "journal");
        int r = dir ? journal_open(dir, NULL, &a->journal) : -ENOMEM;
        if (r < 0) {
            log_error("event journal unusable dir=%s err=%s", dir ? dir : "?", errstr(r));
            return r;
        }
        journal_stats st;
        journal_get_stats(a->journal, &st);
        log_info("event journal dir=%s next_seq=%" PRIu64 " unacked=%" PRIu64 " damaged=%" PRIu64,
                 dir, st.next_seq, st.pending, st.damaged_total);
    }
    int r = progress_new(a->loop, c->state_dir, a->journal, &a->progress);
    if (r < 0) {
        log_error("progress state unusable state_dir=%s err=%s", c->state_dir, errstr(r));
        return r;
    }
    progress_on_completed(a->progress, on_install_completed, a);
    progress_on_written(a->progress, on_install_written, a);
    progress_on_durable(a->progress, on_events_durable, a);
    /* DHCPv6's boot file URL names this agent (advertise_address): the
     * agent that answered is alive. What the host fetches next names the
     * rack's service address when there is one, which VRRP moves to the
     * other agent of the pair if this one dies mid-install. */
    const struct in6_addr *base =
        c->has_service_address ? &c->service_address : &c->advertise_address;
    r = render_context_init(&a->render, base, c->http_port);
    if (r < 0) {
        log_error("%s cannot be used in boot URLs err=%s",
                  c->has_service_address ? "service_address" : "advertise_address", errstr(r));
        return r;
    }
    memcpy(a->render.dns, c->dns, c->n_dns * sizeof(c->dns[0]));
    a->render.n_dns = c->n_dns;
    for (size_t i = 0; i < c->n_search; i++) {
        a->render.search[i] = c->search[i];
    }
    a->render.n_search = c->n_search;
    a->render.has_gateway = c->has_gateway;
    a->render.gateway = c->gateway;
    if (!c->has_controller) {
        return 0;
    }
    r = setup_power(a);
    if (r < 0) {
        return r;
    }
    intent_set *held = NULL;
    power_plan *held_plan = NULL;
    r = uplink_load_persisted(c->state_dir, &held, &held_plan);
    if (r >= 0) {
        log_info("intents restored from %s/%s generation=%" PRIu64 " intents=%zu bmcs=%zu",
                 c->state_dir, UPLINK_INTENTS_FILE, intent_set_generation(held),
                 intent_set_size(held), held_plan->n_bmcs);
        install_intents(a, held, "restored");
        powerctl_apply(a->power, held_plan);
    } else if (r != -ENOENT) {
        log_error("persisted intents unreadable (%s/%s): %s; waiting for the controller",
                  c->state_dir, UPLINK_INTENTS_FILE, errstr(r));
    }
    _Static_assert(AGENT_MAX_CONTROLLERS <= UPLINK_MAX_URLS,
                   "[controller] urls the uplink refuses");
    uplink_config uc = {
        .urls = (const char *const *)c->controller_urls,
        .n_urls = c->n_controller_urls,
        .server_name = c->controller_server_name,
        .ca = c->controller_ca,
        .cert = c->controller_cert,
        .key = c->controller_key,
        .crl = c->controller_crl,
        .state_dir = c->state_dir,
        .rack = c->rack,
        .sync_wait_ms = c->controller_sync_wait * 1000,
    };
    r = uplink_new(a->loop, &uc, a->journal, on_uplink_state, a, &a->uplink);
    if (r < 0) {
        log_error("controller uplink not started err=%s", errstr(r));
        return r;
    }
    log_info("controller uplink started url=%s%s", c->controller_urls[0],
             c->n_controller_urls > 1 ? " (first of [controller] urls)" : "");
    return 0;
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
    install_intents(a, set, why);
    return 0;
}

/* ---- TFTP: the root, its server, its stats line ---- */

static void log_tftp_stats(agent *a, const char *why)
{
    if (!a->tftp) {
        return;
    }
    const tftp_server_stats *t = tftp_server_get_stats(a->tftp);
    log_info("tftp stats why=%s requests=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64
             " aborted=%" PRIu64 " refused=%" PRIu64 " busy=%" PRIu64 " per_source=%" PRIu64
             " malformed=%" PRIu64 " bytes=%" PRIu64 " retransmits=%" PRIu64 " errors_sent=%" PRIu64
             " unknown_tid=%" PRIu64 " active=%" PRIu64,
             why, t->requests, t->transfers_ok, t->transfers_failed, t->transfers_aborted,
             t->refused, t->busy, t->per_source, t->malformed, t->bytes_sent, t->retransmits,
             t->errors_sent, t->unknown_tid, t->active);
}

/* Debian's ipxe package installs /usr/lib/ipxe/ipxe.efi as a symlink into
 * /boot, which the TFTP root rightly refuses to follow: the default root
 * holds real copies instead. */
static void tftp_seed_root(const char *root)
{
    static const char *const names[] = { "ipxe.efi", "snponly.efi" };
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        char src[64];
        snprintf(src, sizeof(src), "/usr/lib/ipxe/%s", names[i]);
        int r = files_seed_copy(root, names[i], src);
        if (r == 1) {
            log_info("tftp root seeded file=%s from=%s root=%s", names[i], src, root);
        } else if (r == -ENOENT) {
            log_warn("tftp %s missing (Debian package ipxe not installed?), not in the root "
                     "root=%s",
                     src, root);
        } else if (r < 0) {
            log_warn("tftp root seeding failed file=%s from=%s err=%s", names[i], src, errstr(r));
        }
    }
}

static int setup_tftp(agent *a)
{
    const agent_config *c = a->cfg;
    if (c->tftp_root_default) {
        if (mkdir(c->tftp_root, 0755) < 0 && errno != EEXIST) {
            int r = negative_errno();
            log_error("tftp root not created root=%s err=%s", c->tftp_root, errstr(r));
            return r;
        }
        tftp_seed_root(c->tftp_root);
    }
    int r = files_new(c->tftp_root, &a->files);
    if (r < 0) {
        log_error("tftp root unusable root=%s err=%s", c->tftp_root, errstr(r));
        return r;
    }
    if (!c->tftp_enabled) {
        log_info("tftp disabled by configuration");
        return 0;
    }
    tftp_server_config tc = {
        .listen = c->tftp_listen,
        .max_transfers = c->tftp_max_transfers,
        .max_transfers_per_source = c->tftp_max_transfers_per_source,
        .max_blksize = c->tftp_max_blksize,
        .max_windowsize = c->tftp_max_windowsize,
        .timeout_ms = c->tftp_timeout_ms,
        .max_timeout_ms = 8 * c->tftp_timeout_ms,
        .retries = c->tftp_retries,
    };
    r = tftp_server_open(a->loop, &tc, a->files, &a->tftp);
    char addr[INET6_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET6, &c->tftp_listen.sin6_addr, addr, sizeof(addr));
    if (r < 0) {
        log_error("tftp socket failed listen=[%s]:%u err=%s", addr, ntohs(c->tftp_listen.sin6_port),
                  errstr(r));
        return r;
    }
    log_info("tftp serving listen=[%s]:%u root=%s max_transfers=%u max_transfers_per_source=%u "
             "max_blksize=%u max_windowsize=%u",
             addr, tftp_server_port(a->tftp), c->tftp_root, c->tftp_max_transfers,
             c->tftp_max_transfers_per_source, c->tftp_max_blksize, c->tftp_max_windowsize);
    return 0;
}

/* The uplink's threads stop first (they hand sets to the loop), then power
 * control (its running BMC operations end and are journaled), then the
 * progress module syncs the journal one last time. */
static void close_install_flow(agent *a)
{
    boot_routes_close(a->boot);
    a->boot = NULL;
    a->uplink = uplink_free(a->uplink);
    a->power = powerctl_free(a->power);
    a->progress = progress_free(a->progress);
}

static void stop(agent *a)
{
    log_info("shutting down");
    daemon_notify_stopping();
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
    log_tftp_stats(a, "shutdown");
    tftp_server_close(a->tftp);
    a->tftp = NULL;
    dhcp6_leasefile_close(a->leases);
    a->leases = NULL;
    http_server_close(a->http); /* before the cache: it cancels waiting opens */
    a->http = NULL;
    close_cache(a);
    close_install_flow(a);
}

static void on_signal(uv_signal_t *h, int signum)
{
    agent *a = h->data;
    switch (signum) {
    case SIGHUP:
        daemon_notify_reloading();
        if (a->cfg->hosts_path) {
            load_hosts(a, "reload");
        }
        if (a->uplink) {
            uplink_reload_tls(a->uplink, "SIGHUP");
        }
        daemon_notify_ready("serving");
        break;
    case SIGUSR1:
        log_stats(a, "sigusr1");
        log_tftp_stats(a, "sigusr1");
        break;
    default:
        stop(a);
        break;
    }
}

/* The controller's view of this agent (uplink_set_status): cache use and
 * what answer files are rendered with. Sent with the next sync. */
static void report_status(agent *a)
{
    if (!a->uplink) {
        return;
    }
    uplink_status st = { .has_render = true, .render = a->render };
    if (a->cache) {
        st.cache_bytes = cache_get_stats(a->cache)->bytes_stored;
        st.cache_limit_bytes = cache_max_size(a->cache);
    }
    uplink_set_status(a->uplink, &st);
}

static void on_expire(uv_timer_t *t)
{
    agent *a = t->data;
    report_status(a);
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
    /* The file stays bounded: past its cap it is rewritten from the bindings. */
    dhcp6_leasefile_set_limits(a->leases, a->bindings, 0, 0);
    return 0;
}

static int setup_dhcp6(agent *a)
{
    const agent_config *c = a->cfg;
    dhcp6_server_config sc = {
        .preferred_lifetime = c->preferred_lifetime,
        .valid_lifetime = c->valid_lifetime,
        .rapid_commit = c->rapid_commit,
        .preference = (uint8_t)c->dhcp6_preference,
        .n_dns = c->n_dns,
        .n_search = c->n_search,
        .advertise_address = c->advertise_address,
        .http_port = c->http_port,
        .has_pool = c->has_pool,
        .pool = c->pool,
        .n_trusted_relays = c->n_trusted_relays,
    };
    memcpy(sc.dns, c->dns, c->n_dns * sizeof(c->dns[0]));
    memcpy(sc.trusted_relays, c->trusted_relays,
           c->n_trusted_relays * sizeof(c->trusted_relays[0]));
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
    dhcp6_bindings_set_max_per_interface(a->bindings, c->max_bindings_per_interface);
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
    log_info("dhcp6 serving port=%u interfaces=%zu pool=%s rapid_commit=%s preference=%u",
             dhcp6_socket_port(a->socket), c->n_interfaces, c->has_pool ? "yes" : "no",
             c->rapid_commit ? "yes" : "no", c->dhcp6_preference);
    return 0;
}

/* ---- image cache: setup, pre-warm, fetch log lines ---- */

static void on_cache_fetched(void *userdata, const uint8_t sha256[32], const char *url, int r,
                             const char *error, uint64_t bytes)
{
    char hex[SHA256_HEX_LEN + 1];
    char qerr[4 * 256 + 3]; /* curl's CURL_ERROR_SIZE bytes, each escaped to at most 4 */
    sha256_to_hex(sha256, hex);
    if (r == 0) {
        log_info("cache stored object=%s url=%s bytes=%" PRIu64, hex, url, bytes);
        report_status(userdata); /* the cache grew: say so with the next sync */
    } else if (r == -EBADMSG) {
        log_error("cache object failed verification, refused object=%s url=%s bytes=%" PRIu64, hex,
                  url, bytes);
    } else {
        /* The origin's status or curl's words, not "Input/output error". */
        log_error("cache fetch failed object=%s url=%s err=%s", hex, url,
                  log_quote(qerr, sizeof(qerr), error ? error : errstr(r)));
    }
}

static void on_cache_corrupt(void *userdata, const uint8_t sha256[32], int r)
{
    (void)userdata;
    char hex[SHA256_HEX_LEN + 1];
    sha256_to_hex(sha256, hex);
    /* A "cache stored" line follows when it is fetched again. */
    log_error("cache object corrupt on disk, removed object=%s err=%s", hex, errstr(r));
}

static void cache_prewarm(agent *a, const intent_set *set, const char *why)
{
    cache_prewarm_stats st;
    cache_images_prewarm(a->images, set, &st);
    log_info("cache prewarm (%s) profiles=%zu images=%zu cached=%zu fetching=%zu failed=%zu", why,
             st.profiles, st.images, st.cached, st.started, st.failed);
}

/* Image profiles the agent cannot boot (preflight.h): said loudly, since
 * their hosts get no script. */
static void warn_unservable(agent *a, const intent_set *set)
{
    diag *d = diag_new();
    if (d && agent_preflight_image_profiles(a->cfg, set, d) < 0) {
        for (size_t i = 0; i < diag_count(d); i++) {
            log_error("deploy: %s", diag_get(d, i));
        }
    }
    diag_free(d);
}

static void on_intents_changed(void *userdata, const intent_set *now)
{
    agent *a = userdata;
    cache_prewarm(a, now, "intents changed");
    warn_unservable(a, now);
}

static int setup_cache(agent *a)
{
    const agent_config *c = a->cfg;
    cache_config cc = {
        .dir = c->cache_dir,
        .max_size = c->cache_max_size,
        .max_fetches = c->cache_max_fetches,
        .max_redirects = -1,
    };
    int r = cache_new(a->loop, &cc, &a->cache);
    if (r < 0) {
        log_error("cache unusable dir=%s err=%s", c->cache_dir, errstr(r));
        return r;
    }
    const cache_stats *st = cache_get_stats(a->cache);
    log_info("cache ready dir=%s objects=%" PRIu64 " bytes=%" PRIu64 " max_size=%" PRIu64
             " max_fetches=%u partials_removed=%" PRIu64 " ignored_files=%" PRIu64
             " evicted=%" PRIu64,
             c->cache_dir, st->objects, st->bytes_stored, c->cache_max_size, c->cache_max_fetches,
             st->rebuild_partials, st->rebuild_ignored, st->evictions);
    if (st->rebuild_ignored > 0) {
        log_warn("cache ignored files that are not objects dir=%s count=%" PRIu64
                 " (see debug log for names)",
                 c->cache_dir, st->rebuild_ignored);
    }
    cache_on_fetched(a->cache, on_cache_fetched, a);
    cache_on_corrupt(a->cache, on_cache_corrupt, a);
    r = cache_images_new(a->cache, a->store, &a->images);
    if (r < 0) {
        return r;
    }
    /* images/ and objects/ for HTTP and TFTP alike (files.h). */
    if (a->files) {
        r = files_add_source(a->files, "images", cache_images_source_images, a->images);
        if (r == 0) {
            r = files_add_source(a->files, "objects", cache_images_source_objects, a->images);
        }
        if (r < 0) {
            log_error("cache paths not added to the served files err=%s", errstr(r));
            return r;
        }
    }
    r = intents_store_listen(a->store, on_intents_changed, a);
    if (r < 0) {
        return r;
    }
    /* Intents loaded before the listener existed. */
    cache_prewarm(a, intents_store_current(a->store), "start");
    warn_unservable(a, intents_store_current(a->store));
    return 0;
}

/* Requests into the cache must be gone (the servers closed) before this. */
static void close_cache(agent *a)
{
    a->images = cache_images_free(a->images);
    cache_close(a->cache);
    a->cache = NULL;
}

/* ---- HTTP: the server, its routes, and the metrics it serves ---- */

static int register_dhcp6_metrics(agent *a)
{
    static const char *const types[] = {
        [DHCP6_SOLICIT] = "solicit",
        [DHCP6_ADVERTISE] = "advertise",
        [DHCP6_REQUEST] = "request",
        [DHCP6_CONFIRM] = "confirm",
        [DHCP6_RENEW] = "renew",
        [DHCP6_REBIND] = "rebind",
        [DHCP6_REPLY] = "reply",
        [DHCP6_RELEASE] = "release",
        [DHCP6_DECLINE] = "decline",
        [DHCP6_RECONFIGURE] = "reconfigure",
        [DHCP6_INFORMATION_REQUEST] = "information_request",
        [DHCP6_RELAY_FORW] = "relay_forw",
        [DHCP6_RELAY_REPL] = "relay_repl",
    };
    static const struct {
        const char *name, *help;
        size_t offset;
    } counters[] = {
        { "rackboot_dhcp6_received_total", "DHCPv6 messages received.",
          offsetof(dhcp6_server_stats, received) },
        { "rackboot_dhcp6_malformed_total", "DHCPv6 messages that did not parse.",
          offsetof(dhcp6_server_stats, malformed) },
        { "rackboot_dhcp6_dropped_total",
          "DHCPv6 messages discarded by RFC 8415 rules (server id, unicast, ...).",
          offsetof(dhcp6_server_stats, dropped) },
        { "rackboot_dhcp6_ignored_no_intent_total",
          "DHCPv6 messages from hosts without an install intent (left to boot from disk).",
          offsetof(dhcp6_server_stats, ignored_no_intent) },
        { "rackboot_dhcp6_advertise_total", "DHCPv6 Advertise messages sent.",
          offsetof(dhcp6_server_stats, advertise) },
        { "rackboot_dhcp6_reply_total", "DHCPv6 Reply messages sent.",
          offsetof(dhcp6_server_stats, reply) },
        { "rackboot_dhcp6_no_addrs_total", "DHCPv6 answers with NoAddrsAvail (pool exhausted).",
          offsetof(dhcp6_server_stats, no_addrs) },
        { "rackboot_dhcp6_relay_untrusted_total",
          "DHCPv6 Relay-forward messages dropped: the source is not in [dhcp6] trusted_relays.",
          offsetof(dhcp6_server_stats, relay_untrusted) },
        { "rackboot_dhcp6_direct_not_link_local_total",
          "DHCPv6 client messages dropped: sent from a source that is not link-local.",
          offsetof(dhcp6_server_stats, direct_not_link_local) },
    };
    const dhcp6_server_stats *s = dhcp6_server_get_stats(a->server);
    int r = 0;
    for (size_t i = 0; i < ARRAY_SIZE(counters) && r == 0; i++) {
        const uint64_t *v = (const uint64_t *)((const char *)s + counters[i].offset);
        r = metrics_register(a->metrics, METRIC_COUNTER, counters[i].name, counters[i].help, NULL,
                             v);
    }
    if (r == 0) {
        r = metrics_register(a->metrics, METRIC_COUNTER, "rackboot_dhcp6_pool_capped_total",
                             "DHCPv6 pool addresses refused: the interface holds "
                             "[dhcp6] max_bindings_per_interface.",
                             NULL, &dhcp6_bindings_get_stats(a->bindings)->pool_capped);
    }
    if (r == 0 && a->socket) {
        r = metrics_register(a->metrics, METRIC_COUNTER, "rackboot_dhcp6_foreign_interface_total",
                             "DHCPv6 client messages dropped: received on an interface not in "
                             "[dhcp6] interfaces.",
                             NULL, &dhcp6_socket_get_stats(a->socket)->foreign_ifindex);
    }
    _Static_assert(ARRAY_SIZE(types) <= ARRAY_SIZE(s->by_type), "a type without a counter");
    for (size_t t = 1; t < ARRAY_SIZE(types) && r == 0; t++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "type=\"%s\"", types[t]);
        r = metrics_register(a->metrics, METRIC_COUNTER, "rackboot_dhcp6_received_by_type_total",
                             "DHCPv6 messages received, by message type.", labels, &s->by_type[t]);
    }
    return r;
}

static int register_progress_metrics(agent *a)
{
    const progress_stats *ps = progress_get_stats(a->progress);
    static const struct {
        metric_type type;
        const char *name, *help;
        size_t offset;
    } series[] = {
        { METRIC_COUNTER, "rackboot_events_total", "Install events recorded.",
          offsetof(progress_stats, events) },
        { METRIC_COUNTER, "rackboot_events_failed_total",
          "Install events the journal could not record.", offsetof(progress_stats, events_failed) },
        { METRIC_GAUGE, "rackboot_journal_pending_events",
          "Events in the journal the controller has not stored yet.",
          offsetof(progress_stats, journal_pending) },
        { METRIC_COUNTER, "rackboot_journal_dropped_total",
          "Unacknowledged events dropped to keep the journal bounded.",
          offsetof(progress_stats, journal_dropped) },
        { METRIC_COUNTER, "rackboot_journal_damaged_total", "Damaged journal records found.",
          offsetof(progress_stats, journal_damaged) },
        { METRIC_GAUGE, "rackboot_installs_completed", "Completed installs remembered.",
          offsetof(progress_stats, completed) },
    };
    int r = 0;
    for (size_t i = 0; i < ARRAY_SIZE(series) && r == 0; i++) {
        const uint64_t *v = (const uint64_t *)((const char *)ps + series[i].offset);
        r = metrics_register(a->metrics, series[i].type, series[i].name, series[i].help, NULL, v);
    }
    return r;
}

static int register_power_metrics(agent *a)
{
    const powerctl_stats *ps = powerctl_get_stats(a->power);
    static const struct {
        metric_type type;
        const char *name, *help, *labels;
        size_t offset;
    } series[] = {
        { METRIC_GAUGE, "rackboot_power_bmcs", "BMCs of the rack's hosts known to the agent.", NULL,
          offsetof(powerctl_stats, bmcs) },
        { METRIC_COUNTER, "rackboot_power_commands_total", "Power commands run, by result.",
          "result=\"ok\"", offsetof(powerctl_stats, commands_ok) },
        { METRIC_COUNTER, "rackboot_power_commands_total", "Power commands run, by result.",
          "result=\"failed\"", offsetof(powerctl_stats, commands_failed) },
        { METRIC_COUNTER, "rackboot_power_polls_total", "Power status polls made.", NULL,
          offsetof(powerctl_stats, polls) },
        { METRIC_COUNTER, "rackboot_power_polls_failed_total", "Power status polls that failed.",
          NULL, offsetof(powerctl_stats, polls_failed) },
    };
    int r = 0;
    for (size_t i = 0; i < ARRAY_SIZE(series) && r == 0; i++) {
        const uint64_t *v = (const uint64_t *)((const char *)ps + series[i].offset);
        r = metrics_register(a->metrics, series[i].type, series[i].name, series[i].help,
                             series[i].labels, v);
    }
    return r;
}

static int register_metrics(agent *a)
{
    int r = metrics_new(&a->metrics);
    if (r == 0) {
        r = register_dhcp6_metrics(a);
    }
    if (r == 0) {
        r = http_server_register_metrics(a->http, a->metrics);
    }
    if (r == 0 && a->tftp) {
        r = tftp_server_register_metrics(a->tftp, a->metrics);
    }
    if (r == 0 && a->cache) {
        r = cache_register_metrics(a->cache, a->metrics);
    }
    if (r == 0 && a->boot) {
        r = boot_routes_register_metrics(a->boot, a->metrics);
    }
    if (r == 0 && a->progress) {
        r = register_progress_metrics(a);
    }
    if (r == 0 && a->uplink) {
        r = uplink_register_metrics(a->uplink, a->metrics);
    }
    if (r == 0 && a->power) {
        r = register_power_metrics(a);
    }
    return r;
}

static void on_healthz(http_request *req, void *userdata)
{
    http_request_log_quietly(req); /* polled every second by keepalived */
    http_reply_buffer(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void on_metrics(http_request *req, void *userdata)
{
    agent *a = userdata;
    if (a->progress) {
        progress_refresh_stats(a->progress);
    }
    http_reply_metrics(req, a->metrics);
}

/* A SLAAC source of the boot routes (install/routes.h) is on a served link: a global
 * prefix of a [dhcp6] interface (the prefixes DHCPv6 checks, dhcp6/links.h),
 * or link-local with that interface as its scope. */
static bool boot_client_on_link(void *userdata, const struct sockaddr_in6 *client)
{
    agent *a = userdata;
    for (size_t i = 0; a->links && i < a->cfg->n_interfaces; i++) {
        unsigned ifindex = if_nametoindex(a->cfg->interfaces[i]);
        if (ifindex == 0) {
            continue;
        }
        if (IN6_IS_ADDR_LINKLOCAL(&client->sin6_addr)
                ? client->sin6_scope_id == ifindex
                : dhcp6_links_on_link(a->links, (int)ifindex, NULL, &client->sin6_addr)) {
            return true;
        }
    }
    return false;
}

/* The deploy ramdisk's directory, opened once (files.h keeps a directory
 * fd and opens the two files beneath it for every request, so a rebuilt
 * ramdisk is served at once). Without [deploy] ramdisk image profiles
 * cannot be served: a warning, not a failure (install profiles can). */
static int setup_deploy_ramdisk(agent *a)
{
    const agent_config *c = a->cfg;
    if (!c->deploy_ramdisk) {
        log_warn("deploy: no [deploy] ramdisk in %s: hosts of image profiles cannot be served",
                 c->path);
        return 0;
    }
    int r = files_new(c->deploy_ramdisk, &a->ramdisk);
    if (r < 0) {
        log_error("deploy: [deploy] ramdisk unusable dir=%s err=%s", c->deploy_ramdisk, errstr(r));
        return r;
    }
    a->render.deploy_ramdisk = true;
    log_info("deploy: serving the deploy ramdisk at " RENDER_DEPLOY_DIR " dir=%s",
             c->deploy_ramdisk);
    return 0;
}

/* UEFI hosts of `uefi_boot = uki` profiles boot a kernel image built for
 * them (install/routes.h), over HTTP and TFTP. A missing stub fails only
 * those hosts' requests, with the package to install in the log. */
static int setup_uki(agent *a)
{
    const agent_config *c = a->cfg;
    const char *stub = c->uki_stub ? c->uki_stub : UKI_STUB_DEFAULT;
    int r = boot_routes_serve_uki(a->boot, a->loop, c->uki_dir, stub, c->uki_max_size,
                                  a->tftp ? a->files : NULL);
    if (r < 0) {
        log_error("uki: cannot serve kernel images dir=%s err=%s", c->uki_dir, errstr(r));
        return r;
    }
    if (a->tftp) {
        tftp_server_observe(a->tftp, boot_routes_tftp_event, a->boot);
    }
    if (access(stub, R_OK) < 0) {
        log_warn("uki: no EFI stub at %s: hosts of uefi_boot = uki profiles cannot boot "
                 "(install systemd-boot-efi, or set [uki] stub)",
                 stub);
    }
    log_info("uki: serving kernel images at /boot/<mac>.efi dir=%s stub=%s max_size=%" PRIu64,
             c->uki_dir, stub, c->uki_max_size);
    return 0;
}

static int setup_http(agent *a)
{
    const agent_config *c = a->cfg;
    uint64_t nofile = 0;
    int r = http_raise_nofile_limit(c->http_max_connections, &nofile);
    if (r == -EMFILE) {
        log_warn("http open files limit is below max_connections plus a margin limit=%" PRIu64
                 " max_connections=%u",
                 nofile, c->http_max_connections);
    } else if (r < 0) {
        log_warn("http open files limit not raised err=%s", errstr(r));
    }
    /* A client closing early must not kill the agent, and sendfile(2) needs
     * this (http/server.h). */
    signal(SIGPIPE, SIG_IGN);
    http_server_config hc = {
        .listen = c->http_listen,
        .max_connections = c->http_max_connections,
        /* 0 in the file turns the limit off (agent.conf) */
        .max_connections_per_ip =
            c->http_max_connections_per_ip ? c->http_max_connections_per_ip : HTTP_NO_PER_IP_LIMIT,
        .connection_timeout = c->http_connection_timeout,
        .header_timeout = c->http_header_timeout,
        .max_header_size = c->http_max_header_size,
    };
    char addr[INET6_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET6, &c->http_listen.sin6_addr, addr, sizeof(addr));
    r = http_server_new(a->loop, &hc, &a->http);
    if (r < 0) {
        log_error("http listen failed listen=[%s]:%u err=%s", addr, ntohs(c->http_listen.sin6_port),
                  errstr(r));
        return r;
    }
    r = http_server_route(a->http, HTTP_METHOD_GET, "/healthz", on_healthz, a);
    if (r == 0) {
        r = http_server_route(a->http, HTTP_METHOD_GET, "/metrics", on_metrics, a);
    }
    if (r == 0 && a->files) {
        /* The TFTP root, read-only: UEFI HTTP boot fetches /files/ipxe.efi. */
        r = http_server_route(a->http, HTTP_METHOD_GET, "/files/", http_files_handler, a->files);
    }
    /* The image cache's paths (setup_cache() added them to the files). */
    if (r == 0 && a->files && a->images) {
        r = http_server_route(a->http, HTTP_METHOD_GET, "/objects/", http_files_handler, a->files);
    }
    if (r == 0) {
        /* /boot/, /ks/, /progress/ and, watching the hosts' downloads,
         * /images/ (install/routes.h) */
        r = boot_routes_new(a->loop, a->http, &a->render, a->store, a->progress,
                            a->images ? a->files : NULL, &a->boot);
    }
    if (r == 0) {
        boot_routes_on_link(a->boot, boot_client_on_link, a);
        boot_routes_serve_ramdisk(a->boot, a->ramdisk);
        r = setup_uki(a);
    }
    if (r == 0) {
        r = register_metrics(a);
    }
    if (r < 0) {
        log_error("http setup failed err=%s", errstr(r));
        return r;
    }
    log_info("http serving listen=[%s]:%u max_connections=%u max_connections_per_ip=%u "
             "connection_timeout=%u header_timeout=%u max_header_size=%u "
             "open_files_limit=%" PRIu64,
             addr, http_server_port(a->http), c->http_max_connections,
             c->http_max_connections_per_ip, c->http_connection_timeout, c->http_header_timeout,
             c->http_max_header_size, nofile);
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

/* Root is needed only to create the state and cache directories: the agent
 * becomes [agent] user (or --user) before it starts a thread, opens a
 * socket or writes a file, so everything it makes is that user's, and keeps
 * only CAP_NET_BIND_SERVICE, which lets it bind DHCPv6, TFTP and HTTP
 * ports afterwards. Under systemd's User= it already is that user and
 * nothing changes. */
static int become_service_user(agent *a)
{
    const agent_config *c = a->cfg;
    if (!c->user) {
        return 0;
    }
    daemon_user u;
    int r = daemon_user_lookup(c->user, &u);
    if (r < 0) {
        log_error("cannot run as user=%s: %s", c->user, r == -ENOENT ? "no such user" : errstr(r));
        return r;
    }
    if (!daemon_is_root()) {
        if (geteuid() == u.uid) {
            return 0;
        }
        log_error("cannot run as user=%s: started as uid %u, not as root", c->user,
                  (unsigned)geteuid());
        return -EPERM;
    }
    /* A cache outside state_dir (/var/cache/...) lives in a directory
     * the user may not write: make it now. */
    if (c->cache_dir && mkdir(c->cache_dir, 0750) < 0 && errno != EEXIST) {
        r = negative_errno();
        log_error("cannot create cache dir %s: %s", c->cache_dir, errstr(r));
        return r;
    }
    const char *trees[] = { c->state_dir, c->cache_dir };
    for (size_t i = 0; i < ARRAY_SIZE(trees); i++) {
        if (trees[i] && (r = daemon_chown_tree(trees[i], &u)) < 0) {
            log_error("cannot give %s to user=%s: %s", trees[i], c->user, errstr(r));
            return r;
        }
    }
    static const cap_value_t keep[] = { CAP_NET_BIND_SERVICE };
    r = daemon_drop_privileges(&u, keep, ARRAY_SIZE(keep));
    if (r < 0) {
        log_error("cannot drop root for user=%s: %s", c->user, errstr(r));
        return r;
    }
    /* The uplink reads its certificate and key as this user. */
    if (c->has_controller) {
        pki_prover *p = NULL;
        pki_reason reason = { { 0 } };
        r = pki_prover_load(c->controller_cert, c->controller_key, &p, &reason);
        pki_prover_free(p);
        if (r < 0) {
            log_error("as user=%s the uplink cannot load its certificate and key: %s (give the "
                      "key to that user, mode 0600)",
                      c->user, reason.text[0] ? reason.text : errstr(r));
            return r;
        }
    }
    log_info("running as user=%s uid=%u gid=%u capabilities=cap_net_bind_service", c->user,
             (unsigned)u.uid, (unsigned)u.gid);
    return 0;
}

static int run(const char *config_path, const char *user)
{
    diag *d = diag_new();
    agent a = { .exit_code = 0 };
    int r = d ? agent_config_load(config_path, d, &a.cfg) : -ENOMEM;
    if (r >= 0 && user) {
        free(a.cfg->user);
        a.cfg->user = strdup(user);
        r = a.cfg->user ? 0 : -ENOMEM;
    }
    if (r >= 0) {
        /* What would only fail later (a missing certificate: the uplink
         * would retry it forever) fails now, as --check-config says. */
        r = agent_preflight(a.cfg, d);
    }
    if (r < 0) {
        fprintf(stderr, "rackboot-agent: configuration not valid: %s\n", config_path);
        diag_print(d, stderr);
        diag_free(d);
        agent_config_free(a.cfg);
        return 1;
    }
    log_set_level(a.cfg->log_level);
    logjson_apply(a.cfg->log_format);
    if (agent_preflight_trust(a.cfg, d) < 0) {
        for (size_t i = 0; i < diag_count(d); i++) {
            log_error("uplink will not work: %s", diag_get(d, i));
        }
    }
    d = diag_free(d);
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
    r = become_service_user(&a);
    if (r < 0) {
        goto out;
    }
    r = intents_store_new(&a.store);
    if (r < 0) {
        goto out;
    }
    r = setup_install_flow(&a);
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
    }
    r = setup_dhcp6(&a);
    if (r < 0) {
        goto out;
    }
    r = setup_tftp(&a);
    if (r < 0) {
        goto out;
    }
    r = setup_cache(&a);
    if (r < 0) {
        goto out;
    }
    r = setup_deploy_ramdisk(&a);
    if (r < 0) {
        goto out;
    }
    r = setup_http(&a);
    if (r < 0) {
        goto out;
    }
    report_status(&a);
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
    daemon_notify_ready("serving");
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
        tftp_server_close(a.tftp);
        http_server_close(a.http);
        close_cache(&a);
        close_install_flow(&a);
        uv_walk(&loop, close_walk, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    files_free(a.files);
    files_free(a.ramdisk);
    dhcp6_server_free(a.server);
    dhcp6_links_free(a.links);
    dhcp6_bindings_free(a.bindings);
    standalone_installs_free(a.installs);
    cache_images_free(a.images);
    intents_store_free(a.store);
    journal_free(a.journal);
    metrics_free(a.metrics);
    agent_config_free(a.cfg);
    return a.exit_code;
}

int main(int argc, char **argv)
{
    log_set_ident("rackboot-agent");
    /* Before the first line: under journald every line carries its
     * priority. [log] format applies once the configuration is read. */
    log_set_journal(log_stderr_is_journal());
    daemon_args args;
    int status = daemon_args_parse(&program, argc, argv, stdout, stderr, &args);
    if (status != DAEMON_ARGS_RUN) {
        return status;
    }
    return args.check_config ? check_config(args.config) : run(args.config, args.user);
}
