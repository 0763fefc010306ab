/* rackboot-controller: the fleet's controller daemon. One libuv loop owns
 * the store and every connection's state; nng does the network I/O on its
 * own threads and hands each request to the loop (rpc.h). This file wires
 * the configuration, the store, the agent hub and the operators' API, the
 * install timeouts, and the signals:
 *
 *   SIGTERM, SIGINT  clean shutdown (the store is closed, WAL checkpointed)
 *   SIGHUP           re-read the CRL (and the other PKI files): the identity
 *                    checks and the TLS listeners use them for every new
 *                    connection, and agents whose certificate it revokes
 *                    are cut at once. The same happens, without a signal,
 *                    when the files change on disk (checked every minute). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "api.h"
#include "config.h"
#include "daemon.h"
#include "daemon_args.h"
#include "diag.h"
#include "feed.h"
#include "fileio.h"
#include "hub.h"
#include "identity.h"
#include "log.h"
#include "logjson.h"
#include "parse.h"
#include "pki.h"
#include "rpc.h"
#include "scrape.h"
#include "store.h"
#include "store/queue.h"
#include "store_admin.h"
#include "timeutil.h"
#include "tls.h"
#include "util.h"
#include "version.h"
#include "web/server.h"

/* How often install deadlines are checked. */
#define EXPIRE_EVERY_MS 1000
/* How often the PKI files are looked at for a change (a CRL renewed by
 * cron without a SIGHUP): a stat() of each, a reload when one changed. */
#define PKI_CHECK_EVERY_MS 60000
/* Old events are deleted one bounded batch a minute (every tick while a
 * backlog drains). */
#define PRUNE_EVERY_TICKS 60

typedef struct controller {
    controller_config *cfg;
    uv_loop_t *loop;
    store *st;
    store_queue *queue; /* every store call of the hub, the API and the upkeep */
    /* The API's reads, each its own connection ([store] read_connections) */
    store_queue *read_queues[CONTROLLER_MAX_READ_CONNECTIONS];
    size_t n_read_queues;
    pki_verifier *verifier;
    nng_tls_config *tls;      /* what the TLS listeners use for new connections */
    nng_tls_config *tls_prev; /* the one before, kept until the next reload (rpc.h) */
    uint64_t pki_stamp;       /* rb_tls_files_stamp() at the last (re)load */
    hub *hub;
    feed *feed; /* the other controllers' writes, on a shared store */
    api *api;
    scrape *scrape;  /* [metrics] listen */
    web_server *web; /* [web] listen */
    uv_timer_t expire, pki_check;
    uint32_t prune_ticks;
    bool expiry_lead; /* this controller ran the last upkeep (store_expiry_lead()) */
    bool upkeep_busy; /* an upkeep_job is on the queue */
    uv_signal_t sig_term, sig_int, sig_hup;
} controller;

/* The sentences of --help that are this daemon's (common/daemon_args.h). */
static const daemon_program program = {
    .name = "rackboot-controller",
    .about = "The rackboot controller: holds the fleet store, pushes install intents to\n"
             "the rack agents and serves the operators' API (the rackboot CLI).\n",
    .example = "deploy/examples/controller.conf",
    .user_when = "once the sockets are open",
    .user_key = "[controller] user",
    .check_what = "the configuration and the PKI files",
    .store_options = true,
    .signals = "Signals: SIGTERM/SIGINT stop, SIGHUP re-reads the CRL (and the other PKI\n"
               "files) for new connections and closes revoked agents' connections.\n",
};

/* The directory of an ipc:// socket, so it can be created. */
static char *ipc_dir(const char *url)
{
    const char *path = url + strlen("ipc://");
    const char *slash = strrchr(path, '/');
    return slash && slash != path ? strndup(path, (size_t)(slash - path)) : NULL;
}

static rb_tls_files pki_files(const controller_config *cfg)
{
    return (rb_tls_files){ .ca = cfg->ca, .cert = cfg->cert, .key = cfg->key, .crl = cfg->crl };
}

/* The PKI pieces both listeners need: TLS config and identity verifier. The
 * name proofs must carry is our certificate's own name unless configured. */
static int pki_open(controller *c, diag *d)
{
    const controller_config *cfg = c->cfg;
    _cleanup_free_ char *error = NULL;
    rb_tls_files files = pki_files(cfg);
    c->pki_stamp = rb_tls_files_stamp(&files);
    int r = rb_tls_config_new(&files, true, &c->tls, &error);
    if (r < 0) {
        diag_add(d, cfg->path, 0, "%s", error ? error : errstr(r));
        return r;
    }
    pki_prover *self = NULL;
    pki_reason reason = { { 0 } };
    r = pki_prover_load(cfg->cert, cfg->key, &self, &reason);
    if (r < 0) {
        diag_add(d, cfg->path, 0, "[pki] cert %s / key %s: %s", cfg->cert, cfg->key,
                 reason.text[0] ? reason.text : errstr(r));
        return r;
    }
    const pki_identity *id = pki_prover_identity(self);
    if (id->role != PKI_ROLE_CONTROLLER) {
        diag_add(d, cfg->path, 0, "[pki] cert %s is a %s certificate, not a controller's",
                 cfg->cert, pki_role_to_string(id->role));
        pki_prover_free(self);
        return -EINVAL;
    }
    const char *name = cfg->server_name ? cfg->server_name : id->name;
    r = pki_verifier_new(cfg->ca, cfg->crl, name, &c->verifier, &reason);
    pki_prover_free(self);
    if (r < 0) {
        diag_add(d, cfg->path, 0, "[pki] ca %s%s%s: %s", cfg->ca, cfg->crl ? " / crl " : "",
                 cfg->crl ? cfg->crl : "", reason.text[0] ? reason.text : errstr(r));
        return r;
    }
    return 0;
}

/* nng 1.5.2's nng_tls_config_free() dereferences its argument: a controller
 * without TLS listeners has no configuration to free. */
static void tls_config_release(nng_tls_config *tls)
{
    if (tls) {
        nng_tls_config_free(tls);
    }
}

/* "[ADDR]:PORT" of `sa` with `port`, for messages. */
#define ADDR_TEXT_SIZE (INET6_ADDRSTRLEN + 8)
static const char *addr_text(const struct sockaddr_in6 *sa, uint16_t port,
                             char buf[static ADDR_TEXT_SIZE])
{
    char addr[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &sa->sin6_addr, addr, sizeof(addr));
    snprintf(buf, ADDR_TEXT_SIZE, "[%s]:%u", addr, (unsigned)port);
    return buf;
}

/* The address can be bound on this machine (port 0, so a running
 * controller holding the real port does not matter); else a problem that
 * names `key` and `shown`, the address as configured. */
static int check_bind(const controller_config *cfg, diag *d, const char *key, const char *shown,
                      const struct sockaddr_in6 *addr)
{
    struct sockaddr_in6 sa = *addr;
    sa.sin6_port = 0;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r = fd < 0 || bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0 ? negative_errno() : 0;
    if (fd >= 0) {
        close(fd);
    }
    if (r < 0) {
        diag_add(d, cfg->path, 0, "%s %s: cannot listen there: %s", key, shown, errstr(r));
    }
    return r;
}

/* A tls+tcp:// listen URL with an address literal must name an address of
 * this machine. Host names are left to nng. */
static int check_listen(const controller_config *cfg, diag *d, const char *key, const char *url)
{
    struct sockaddr_in6 sa;
    const char *hostport = url ? strstr(url, "://") : NULL;
    if (!hostport || parse_listen_address(hostport + 3, 0, &sa) < 0) {
        return 0;
    }
    return check_bind(cfg, d, key, url, &sa);
}

/* What start-up would refuse beyond the file itself. */
static int check_environment(controller *c, diag *d)
{
    int r = check_listen(c->cfg, d, "agents_listen", c->cfg->agents_listen);
    int r2 = check_listen(c->cfg, d, "operators_listen", c->cfg->operators_listen);
    r = r < 0 ? r : r2;
    const struct {
        bool on;
        const char *key;
        const struct sockaddr_in6 *sa;
    } http_listens[] = {
        { c->cfg->metrics, "[metrics] listen", &c->cfg->metrics_listen },
        { c->cfg->web, "[web] listen", &c->cfg->web_listen },
    };
    for (size_t i = 0; i < ARRAY_SIZE(http_listens); i++) {
        if (!http_listens[i].on) {
            continue;
        }
        const struct sockaddr_in6 *sa = http_listens[i].sa;
        char shown[ADDR_TEXT_SIZE];
        r2 = check_bind(c->cfg, d, http_listens[i].key, addr_text(sa, ntohs(sa->sin6_port), shown),
                        sa);
        r = r < 0 ? r : r2;
    }
    if (r >= 0 && (c->cfg->agents_listen || c->cfg->operators_listen)) {
        r = pki_open(c, d);
    }
    return r;
}

static int check_config(const char *path)
{
    diag *d = diag_new();
    if (!d) {
        return 1;
    }
    controller c = { 0 };
    int r = controller_config_load(path, d, &c.cfg);
    if (r >= 0) {
        r = check_environment(&c, d);
    }
    if (diag_count(d) > 0) {
        diag_print(d, stderr);
    }
    if (r >= 0) {
        printf("%s: configuration OK\n", path);
    }
    tls_config_release(c.tls);
    pki_verifier_free(c.verifier);
    controller_config_free(c.cfg);
    diag_free(d);
    return r >= 0 ? 0 : 1;
}

/* The hub stored an agent's events, or dispatched installs. */
static void on_fleet_change(void *userdata, bool events)
{
    controller *c = userdata;
    if (c->api) {
        api_poke(c->api);
    }
    if (c->web) {
        if (events) {
            web_server_poke(c->web);
        } else {
            web_server_changed(c->web);
        }
    }
}

/* An install or cancel was asked for (the CLI, or the web view). */
static void on_installs_changed(void *userdata)
{
    controller *c = userdata;
    if (c->web) {
        web_server_changed(c->web);
    }
}

/* Another controller moved a rack's generation or stored events (or may
 * have, while the feed was down): the agents parked here may have news,
 * and so may the operators' `watch` and the web view. */
static void on_feed_change(void *userdata, feed_change what, const char *rack)
{
    controller *c = userdata;
    if (what == FEED_EVENTS) {
        on_fleet_change(c, true);
        return;
    }
    if (rack) {
        hub_poke_rack(c->hub, rack);
    } else {
        hub_poke(c->hub);
    }
    on_fleet_change(c, false);
}

/* The upkeep of one tick, on the store queue: old events deleted (one
 * bounded batch, when due) and installs past their deadline timed out. */
typedef struct upkeep_job {
    controller *c;
    bool prune;
    uint64_t now;
    store_retention keep;
    const install_timeouts *timeouts;
    int pruned;        /* store_events_prune() */
    int expired;       /* store_expire() */
    int power_expired; /* store_power_expire() */
    int lead;          /* store_expiry_lead(): 0 another controller runs the upkeep */
    char errmsg[256];
} upkeep_job;

/* A power command its agent has not done in this long fails: the BMC
 * driver's own limits (attempts, retries, one at a time per BMC) end well
 * before it, so only an agent that is gone gets here. */
#define POWER_COMMAND_EXPIRY_MS (10u * 60u * 1000u)

static void upkeep_work(store *st, void *arg)
{
    upkeep_job *j = arg;
    /* On a store several controllers share, one at a time runs the
     * upkeep: the holder of the expiry lock, until it stops or dies. */
    j->lead = store_expiry_lead(st);
    if (j->lead <= 0) {
        if (j->lead < 0) {
            snprintf(j->errmsg, sizeof(j->errmsg), "%s", store_errmsg(st));
        }
        return;
    }
    if (j->prune) {
        j->pruned = store_events_prune(st, j->now, &j->keep);
        if (j->pruned < 0) {
            snprintf(j->errmsg, sizeof(j->errmsg), "%s", store_errmsg(st));
        }
    }
    j->expired = store_expire(st, j->now, j->timeouts);
    if (j->expired < 0) {
        snprintf(j->errmsg, sizeof(j->errmsg), "%s", store_errmsg(st));
    }
    j->power_expired = store_power_expire(st, j->now, POWER_COMMAND_EXPIRY_MS);
    if (j->power_expired < 0) {
        snprintf(j->errmsg, sizeof(j->errmsg), "%s", store_errmsg(st));
    }
}

static void upkeep_done(void *arg, int status)
{
    upkeep_job *j = arg;
    controller *c = j->c;
    c->upkeep_busy = false;
    if (status < 0) {
        free(j);
        return; /* shutting down */
    }
    if (j->lead <= 0) {
        if (j->lead < 0) {
            log_error("cannot tell which controller runs the expiry: %s (%s)", errstr(j->lead),
                      j->errmsg);
        } else {
            log_debug("expiry: another controller on this store runs it");
        }
        if (c->expiry_lead) {
            log_info("expiry: another controller on this store runs it now");
        }
        c->expiry_lead = false;
        c->prune_ticks = 0;
        free(j);
        return;
    }
    if (!c->expiry_lead && store_shared(c->st)) {
        log_info("expiry: this controller runs the timeouts of the shared store");
    }
    c->expiry_lead = true;
    if (j->prune) {
        c->prune_ticks = j->pruned == (int)STORE_PRUNE_BATCH ? PRUNE_EVERY_TICKS : 0;
        if (j->pruned < 0) {
            log_error("cannot delete old events: %s (%s)", errstr(j->pruned), j->errmsg);
        } else if (j->pruned > 0) {
            log_debug("events deleted=%d keep_events_days=%u", j->pruned, c->cfg->keep_events_days);
        }
    }
    if (j->power_expired < 0) {
        log_error("cannot expire power commands: %s (%s)", errstr(j->power_expired), j->errmsg);
    } else if (j->power_expired > 0) {
        log_warn("power commands not done by their agents in %u s, failed=%d",
                 POWER_COMMAND_EXPIRY_MS / 1000u, j->power_expired);
    }
    if (j->expired < 0) {
        log_error("cannot expire installs: %s (%s)", errstr(j->expired), j->errmsg);
    } else if (j->expired > 0) {
        log_info("installs timed out=%d", j->expired);
    }
    if (j->expired > 0 || j->power_expired > 0) {
        if (c->hub) {
            hub_poke(c->hub);
        }
        api_poke(c->api);
        if (c->web) {
            web_server_changed(c->web); /* timed out */
        }
    }
    free(j);
}

/* One upkeep at a time: a store slower than the tick skips ticks rather
 * than queueing them. */
static void on_expire(uv_timer_t *t)
{
    controller *c = t->data;
    if (c->upkeep_busy) {
        return;
    }
    upkeep_job *j = calloc(1, sizeof(*j));
    if (!j) {
        log_error("cannot expire installs: %s", errstr(-ENOMEM));
        return;
    }
    j->c = c;
    j->prune = ++c->prune_ticks >= PRUNE_EVERY_TICKS;
    j->now = now_realtime_ms();
    j->keep = (store_retention){ .keep_ms = (uint64_t)c->cfg->keep_events_days * 86400000u,
                                 .refused_max = STORE_REFUSED_EVENTS_MAX };
    j->timeouts = &c->cfg->timeouts;
    if (store_queue_submit(c->queue, upkeep_work, upkeep_done, j) < 0) {
        free(j);
        log_error("cannot expire installs: %s", errstr(-ENOMEM));
        return;
    }
    c->upkeep_busy = true;
}

static void close_handle(uv_handle_t *h)
{
    if (h->loop && !uv_is_closing(h)) { /* initialized and still open */
        uv_close(h, NULL);
    }
}

static void shutdown_all(controller *c)
{
    /* Before the queue, the hub and the API it renders: its scrapes still
     * waiting on the queue are cancelled. */
    c->scrape = scrape_free(c->scrape);
    /* First of the rest: its jobs hold the hub's calls, and end now. */
    c->queue = store_queue_free(c->queue);
    for (size_t i = 0; i < c->n_read_queues; i++) {
        c->read_queues[i] = store_queue_free(c->read_queues[i]);
    }
    if (c->web) {
        web_server_set_api(c->web, NULL);
    }
    c->api = api_free(c->api);
    /* Before the hub it pokes. */
    c->feed = feed_free(c->feed);
    /* After the API, whose web logins call it. */
    c->web = web_server_free(c->web);
    c->hub = hub_free(c->hub);
    close_handle((uv_handle_t *)&c->expire);
    close_handle((uv_handle_t *)&c->pki_check);
    close_handle((uv_handle_t *)&c->sig_term);
    close_handle((uv_handle_t *)&c->sig_int);
    close_handle((uv_handle_t *)&c->sig_hup);
}

/* Re-reads the PKI files for new connections, at both layers:
 *
 *  - the verifier's CRL, for the identity handshake (pki.h);
 *  - the TLS configuration of every listener. nng (mbedTLS) checks peers
 *    against the CRL it was given when the configuration was built, and
 *    refuses every peer once that CRL is past its nextUpdate: without this
 *    a controller would stop taking connections 30 days after its start,
 *    whatever CRL is on disk. A new configuration is built and swapped into
 *    the running listeners (rpc_tls_config_replace says how, and why not
 *    by closing them); connections already up keep theirs.
 *
 * Then agents whose certificate the new CRL revokes are cut. Each part
 * keeps what it had when its files do not load. */
static void pki_reload(controller *c, const char *why)
{
    if (!c->tls) {
        log_info("%s: no TLS listeners, nothing to reload", why);
        return;
    }
    rb_tls_files files = pki_files(c->cfg);
    /* Taken before the files are read and kept only once they loaded: a
     * reload that failed (a half-written CRL) is tried again by the next
     * check, not only when the files change once more. */
    uint64_t stamp = rb_tls_files_stamp(&files);
    if (c->cfg->crl) {
        /* The verifier checks the CRL's signature; mbedTLS would take a CRL
         * of another issuer and skip it, i.e. check no revocation at all.
         * So TLS only gets a CRL the verifier accepted. */
        pki_reason reason = { { 0 } };
        int r = pki_verifier_reload_crl(c->verifier, &reason);
        if (r < 0) {
            log_error("%s: CRL %s not reloaded, both layers keep the old one: %s", why, c->cfg->crl,
                      reason.text);
            return;
        }
    }
    _cleanup_free_ char *error = NULL;
    nng_tls_config *tls = NULL;
    int r = rb_tls_config_new(&files, true, &tls, &error);
    if (r < 0) {
        log_error("%s: TLS configuration not rebuilt, new connections keep the old one: %s", why,
                  error ? error : errstr(r));
    } else {
        int n = rpc_tls_config_replace(c->tls, tls);
        if (n < 0) {
            log_error("%s: not every TLS listener took the new configuration: %s", why, errstr(n));
        }
        tls_config_release(c->tls_prev);
        c->tls_prev = c->tls;
        c->tls = tls;
        c->pki_stamp = stamp;
        log_info("%s: PKI reloaded for new connections (TLS listeners=%d%s%s)", why, n < 0 ? 0 : n,
                 c->cfg->crl ? ", CRL " : "", c->cfg->crl ? c->cfg->crl : "");
    }
    if (c->cfg->crl && c->hub) {
        int cut = hub_cut_revoked(c->hub);
        if (cut < 0) {
            log_error("%s: cannot look for revoked agents: %s", why, errstr(cut));
        }
    }
    if (c->cfg->crl && c->api) {
        int cut = api_cut_revoked(c->api);
        if (cut < 0) {
            log_error("%s: cannot look for revoked operators: %s", why, errstr(cut));
        }
    }
}

static void on_pki_check(uv_timer_t *t)
{
    controller *c = t->data;
    rb_tls_files files = pki_files(c->cfg);
    if (rb_tls_files_stamp(&files) != c->pki_stamp) {
        pki_reload(c, "PKI files changed");
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    controller *c = s->data;
    if (signum == SIGHUP) {
        daemon_notify_reloading();
        pki_reload(c, "SIGHUP");
        daemon_notify_ready("serving");
        return;
    }
    log_info("signal %d: shutting down", signum);
    daemon_notify_stopping();
    shutdown_all(c);
}

/* A tls+tcp:// listen URL's port is below 1024 (binding it takes
 * CAP_NET_BIND_SERVICE). */
static bool url_port_privileged(const char *url)
{
    const char *colon = url ? strrchr(url, ':') : NULL;
    if (!colon || colon[1] < '0' || colon[1] > '9') {
        return false;
    }
    unsigned long port = strtoul(colon + 1, NULL, 10);
    return port > 0 && port < 1024;
}

/* Root is needed to read the keys and to open the API socket wherever the
 * configuration puts it (a root-owned directory such as /run/rackboot):
 * once the store and the listeners are open, the controller becomes
 * [controller] user (or --user) with no capability left
 * (CAP_NET_BIND_SERVICE only when a listen port is below 1024), in a state
 * directory that user owns. Nothing but the loop thread writes files, so
 * the state tree is complete when it is handed over. Under systemd's User=
 * it already is that user and nothing changes. */
static int become_service_user(controller *c)
{
    const controller_config *cfg = c->cfg;
    if (!cfg->user) {
        return 0;
    }
    daemon_user u;
    int r = daemon_user_lookup(cfg->user, &u);
    if (r < 0) {
        log_error("cannot run as user=%s: %s", cfg->user,
                  r == -ENOENT ? "no such user" : errstr(r));
        return r;
    }
    if (!daemon_is_root()) {
        if (geteuid() == u.uid) {
            return 0;
        }
        log_error("cannot run as user=%s: started as uid %u, not as root", cfg->user,
                  (unsigned)geteuid());
        return -EPERM;
    }
    r = daemon_chown_tree(cfg->state_dir, &u);
    if (r < 0) {
        log_error("cannot give %s to user=%s: %s", cfg->state_dir, cfg->user, errstr(r));
        return r;
    }
    static const cap_value_t bind_low[] = { CAP_NET_BIND_SERVICE };
    bool low =
        url_port_privileged(cfg->agents_listen) || url_port_privileged(cfg->operators_listen);
    r = daemon_drop_privileges(&u, bind_low, low ? 1 : 0);
    if (r < 0) {
        log_error("cannot drop root for user=%s: %s", cfg->user, errstr(r));
        return r;
    }
    /* A CRL reload (SIGHUP, or the files changing) reads them all again. */
    if (c->tls) {
        pki_prover *p = NULL;
        pki_reason reason = { { 0 } };
        r = pki_prover_load(cfg->cert, cfg->key, &p, &reason);
        pki_prover_free(p);
        if (r < 0) {
            log_error("as user=%s the PKI files cannot be read again at a reload: %s (give the "
                      "key to that user, mode 0600)",
                      cfg->user, reason.text[0] ? reason.text : errstr(r));
            return r;
        }
    }
    log_info("running as user=%s uid=%u gid=%u capabilities=%s", cfg->user, (unsigned)u.uid,
             (unsigned)u.gid, low ? "cap_net_bind_service" : "none");
    return 0;
}

static void log_started(const controller *c, const char *db)
{
    char metrics_at[ADDR_TEXT_SIZE] = "-", web_at[ADDR_TEXT_SIZE] = "-";
    if (c->scrape) {
        addr_text(&c->cfg->metrics_listen, scrape_port(c->scrape), metrics_at);
    }
    if (c->web) {
        addr_text(&c->cfg->web_listen, web_server_port(c->web), web_at);
    }
    log_info("rackboot-controller %s started store=%s api=%s agents=%s operators=%s metrics=%s "
             "web=%s",
             RACKBOOT_VERSION, db, c->cfg->api_listen,
             c->cfg->agents_listen ? c->cfg->agents_listen : "-",
             c->cfg->operators_listen ? c->cfg->operators_listen : "-", metrics_at, web_at);
}

/* Certificate chains and keys are a few KB; anything this large is not one. */
#define PEM_MAX (256u << 10)

/* api_config.web_login */
static int web_login(void *userdata, const char *who, bool operator_role, char **ret_url,
                     uint64_t *ret_expires_unix_ms)
{
    return web_server_login_url(userdata, who, operator_role, ret_url, ret_expires_unix_ms);
}

/* [web] listen: HTTPS with [web] cert and key, read now, before the
 * service user may no longer read the key. */
static int start_web(controller *c)
{
    _cleanup_free_ void *cert = NULL, *key = NULL;
    size_t len;
    int r = fileio_read_all(c->cfg->web_cert, PEM_MAX, &cert, &len);
    if (r < 0) {
        log_error("[web] cert %s: cannot read it: %s", c->cfg->web_cert, errstr(r));
        return r;
    }
    r = fileio_read_all(c->cfg->web_key, PEM_MAX, &key, &len);
    if (r < 0) {
        log_error("[web] key %s: cannot read it: %s", c->cfg->web_key, errstr(r));
        return r;
    }
    web_server_config wc = {
        .listen = c->cfg->web_listen,
        .cert_pem = cert,
        .key_pem = key,
        .url = c->cfg->web_url,
        .queue = c->queue,
    };
    r = web_server_new(c->loop, &wc, &c->web);
    explicit_bzero(key, len);
    if (r == -EIO) {
        /* libmicrohttpd's reason is at debug; the likely one is known. */
        log_error("[web] cert %s / key %s: GnuTLS cannot use them (not PEM, not a pair, or a "
                  "rackboot-pki certificate, whose identity extension GnuTLS cannot parse)",
                  c->cfg->web_cert, c->cfg->web_key);
    } else if (r < 0) {
        log_error("[web] listen: cannot serve the web view: %s", errstr(r));
    }
    return r;
}

static int run(const char *path, const char *user)
{
    controller c = { 0 };
    diag *d = diag_new();
    if (!d) {
        return 1;
    }
    int r = controller_config_load(path, d, &c.cfg);
    if (r >= 0 && user) {
        free(c.cfg->user);
        c.cfg->user = strdup(user);
        r = c.cfg->user ? 0 : -ENOMEM;
    }
    if (r >= 0) {
        r = check_environment(&c, d);
    }
    if (r < 0) {
        diag_print(d, stderr);
        diag_free(d);
        tls_config_release(c.tls);
        pki_verifier_free(c.verifier);
        controller_config_free(c.cfg);
        return 1;
    }
    diag_free(d);
    log_set_level(c.cfg->log_level);
    logjson_apply(c.cfg->log_format);

    int status = 1;
    /* db: the store's URL or path; db_shown: as logs show it (redacted) */
    _cleanup_free_ char *db = NULL, *db_shown = NULL, *sock_dir = ipc_dir(c.cfg->api_listen);
    _cleanup_free_ char *error = NULL;
    uv_signal_t *sigs[] = { &c.sig_term, &c.sig_int, &c.sig_hup };
    const int signums[] = { SIGTERM, SIGINT, SIGHUP };
    api_config ac = { .ipc_listen = c.cfg->api_listen,
                      .operators_listen = c.cfg->operators_listen,
                      .tls = c.tls,
                      .verifier = c.verifier };
    hub_config hc = { .listen = c.cfg->agents_listen,
                      .tls = c.tls,
                      .verifier = c.verifier,
                      .max_wait_ms = CONTROLLER_DEFAULT_SYNC_WAIT_MAX };
    r = fileio_mkdir_p(c.cfg->state_dir, 0700);
    if (r < 0) {
        log_error("cannot create state_dir %s: %s", c.cfg->state_dir, errstr(r));
        goto out;
    }
    if (sock_dir && (r = fileio_mkdir_p(sock_dir, 0755)) < 0) {
        log_error("cannot create %s for api_listen: %s", sock_dir, errstr(r));
        goto out;
    }
    if (store_admin_name(c.cfg, &db, &db_shown) < 0) {
        goto out;
    }
    r = store_admin_start_check(c.cfg, db, db_shown);
    if (r >= 0) {
        r = c.cfg->store_url ? store_open_url(db, &c.st, &error) : store_open(db, &c.st, &error);
        if (r < 0) {
            log_error("cannot open the store %s: %s", db_shown, error ? error : errstr(r));
        }
    }
    if (r < 0) {
        goto out;
    }

    c.loop = uv_default_loop();
    r = store_queue_new(c.loop, c.st, &c.queue, &error);
    if (r < 0) {
        log_error("cannot open the store %s for the work queue: %s", db_shown,
                  error ? error : errstr(r));
        goto out;
    }
    for (; c.n_read_queues < c.cfg->read_connections; c.n_read_queues++) {
        r = store_queue_new(c.loop, c.st, &c.read_queues[c.n_read_queues], &error);
        if (r < 0) {
            log_error("cannot open the store %s for reads ([store] read_connections): %s", db_shown,
                      error ? error : errstr(r));
            goto out;
        }
    }
    hc.queue = c.queue;
    ac.queue = c.queue;
    ac.read_queues = c.read_queues;
    ac.n_read_queues = c.n_read_queues;
    ac.on_installs_changed = on_installs_changed;
    ac.installs_userdata = &c;
    if (c.cfg->web) {
        r = start_web(&c);
        if (r < 0) {
            goto out;
        }
        ac.web_login = web_login;
        ac.web_userdata = c.web;
    }
    if (c.cfg->agents_listen) {
        r = hub_new(c.loop, &hc, on_fleet_change, &c, &c.hub, &error);
        if (r < 0) {
            log_error("agents_listen: %s", error ? error : errstr(r));
            goto out;
        }
    }
    if (c.hub) {
        r = feed_new(c.loop, c.st, on_feed_change, &c, &c.feed, &error);
        if (r < 0) {
            log_error("cannot listen to the store's change feed %s: %s", db_shown,
                      error ? error : errstr(r));
            goto out;
        }
    }
    r = api_new(c.loop, c.hub, &ac, &c.api, &error);
    if (r < 0) {
        log_error("api: %s", error ? error : errstr(r));
        goto out;
    }
    if (c.web) {
        web_server_set_api(c.web, c.api);
    }
    if (c.cfg->metrics) {
        scrape_config sc = {
            .listen = c.cfg->metrics_listen,
            .hub = c.hub,
            .api = c.api,
            .queue = c.queue,
            .feed = c.feed,
        };
        r = scrape_new(c.loop, &sc, &c.scrape);
        if (r < 0) {
            log_error("[metrics] listen: cannot serve /metrics: %s", errstr(r));
            goto out;
        }
    }
    r = become_service_user(&c);
    if (r < 0) {
        goto out;
    }

    uv_timer_init(c.loop, &c.expire);
    c.expire.data = &c;
    uv_timer_start(&c.expire, on_expire, EXPIRE_EVERY_MS, EXPIRE_EVERY_MS);
    if (c.tls) {
        uv_timer_init(c.loop, &c.pki_check);
        c.pki_check.data = &c;
        uv_timer_start(&c.pki_check, on_pki_check, PKI_CHECK_EVERY_MS, PKI_CHECK_EVERY_MS);
    }
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
        uv_signal_init(c.loop, sigs[i]);
        sigs[i]->data = &c;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    signal(SIGPIPE, SIG_IGN);

    log_started(&c, db_shown);
    daemon_notify_ready("serving");
    uv_run(c.loop, UV_RUN_DEFAULT);
    status = 0;
    log_info("rackboot-controller stopped");

out:
    if (c.loop) {
        shutdown_all(&c);
        uv_run(c.loop, UV_RUN_DEFAULT); /* finish closing handles */
        uv_loop_close(c.loop);
    }
    store_close(c.st);
    tls_config_release(c.tls);
    tls_config_release(c.tls_prev);
    pki_verifier_free(c.verifier);
    controller_config_free(c.cfg);
    return status;
}

int main(int argc, char **argv)
{
    log_set_ident("rackboot-controller");
    /* Before the first line: under journald every line carries its
     * priority. [log] format applies once the configuration is read. */
    log_set_journal(log_stderr_is_journal());
    daemon_args args;
    int status = daemon_args_parse(&program, argc, argv, stdout, stderr, &args);
    if (status != DAEMON_ARGS_RUN) {
        return status;
    }
    if (args.migrate) {
        return store_admin_migrate(args.config);
    }
    if (args.import_store) {
        return store_admin_import(args.config, args.import_store);
    }
    return args.check_config ? check_config(args.config) : run(args.config, args.user);
}
