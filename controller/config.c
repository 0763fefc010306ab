#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "confload.h"
#include "store.h"
#include "util.h"

controller_config *controller_config_free(controller_config *cfg)
{
    if (!cfg) {
        return NULL;
    }
    free(cfg->path);
    free(cfg->state_dir);
    free(cfg->user);
    free(cfg->agents_listen);
    free(cfg->api_listen);
    free(cfg->operators_listen);
    free(cfg->ca);
    free(cfg->cert);
    free(cfg->key);
    free(cfg->crl);
    free(cfg->server_name);
    free(cfg->store_url);
    free(cfg->web_url);
    free(cfg->web_cert);
    free(cfg->web_key);
    free(cfg);
    return NULL;
}

/* [store] url: a backend this build has (store_url_check()). */
static void parse_store_url(confload *l, const ini_entry *e, void *obj)
{
    controller_config *c = obj;
    const char *why = NULL;
    if (store_url_check(e->value, &why) < 0) {
        confload_problem(l, e->line, "url: %s: \"%s\"", why, e->value);
        return;
    }
    if (strempty(e->value)) {
        confload_problem(l, e->line, "%s: empty value", e->key);
        return;
    }
    free(c->store_url);
    c->store_url = strdup(e->value);
    if (!c->store_url) {
        confload_problem(l, e->line, "out of memory");
    }
}

#define AT(member) CONFLOAD_FIELD(controller_config, member)
/* [installs]: 0 disables a timeout. */
#define SECONDS(member)                                                                            \
    AT(member), .type = CONFLOAD_DURATION_MS, .max = 30u * 24 * 3600,                              \
                .expect = "seconds (0 disables, at most 30 days)"

/* state_dir is required, but reported for the whole file (finish()). */
static const confload_key controller_keys[] = {
    { "state_dir", CONFLOAD_PATH, AT(state_dir) },
    { "user", CONFLOAD_USER, AT(user) },
    { "agents_listen", CONFLOAD_URL, AT(agents_listen), .prefix = "tls+tcp://" },
    { "api_listen", CONFLOAD_URL, AT(api_listen), .prefix = "ipc://" },
    { "operators_listen", CONFLOAD_URL, AT(operators_listen), .prefix = "tls+tcp://" },
    { "log_level", CONFLOAD_LOG_LEVEL, AT(log_level) },
};

static const confload_key pki_keys[] = {
    { "ca", CONFLOAD_PATH, AT(ca) },
    { "cert", CONFLOAD_PATH, AT(cert) },
    { "key", CONFLOAD_PATH, AT(key) },
    { "crl", CONFLOAD_PATH, AT(crl) },
    { "server_name", CONFLOAD_STRING, AT(server_name) },
};

static const confload_key log_keys[] = {
    { "format", CONFLOAD_LOG_FORMAT, AT(log_format) },
};

static const confload_key installs_keys[] = {
    { "boot_timeout", SECONDS(timeouts.boot_ms) },
    { "install_timeout", SECONDS(timeouts.install_ms) },
};

static const confload_key store_keys[] = {
    { "keep_events_days", CONFLOAD_UINT, AT(keep_events_days), .max = 36500,
      .expect = "days (0 keeps events for ever, at most 36500)" },
    { "read_connections", CONFLOAD_UINT, AT(read_connections),
      .max = CONTROLLER_MAX_READ_CONNECTIONS,
      .expect = "a number of connections, 0 to 16 (0: reads wait with the writes)" },
    { "url", CONFLOAD_CUSTOM, .parse = parse_store_url },
};

/* Off unless set: the address is the operator's choice (a management
 * network, or loopback for a local Prometheus). */
static const confload_key metrics_keys[] = {
    { "listen", CONFLOAD_LISTEN, AT(metrics_listen), .port = CONTROLLER_DEFAULT_METRICS_PORT,
      .flag = CONFLOAD_FLAG(controller_config, metrics) },
};

/* Off unless set. url: what `rackboot web login` prints when the listen
 * address is not what browsers reach (a name in the certificate, a proxy). */
static const confload_key web_keys[] = {
    { "listen", CONFLOAD_LISTEN, AT(web_listen), .port = CONTROLLER_DEFAULT_WEB_PORT,
      .flag = CONFLOAD_FLAG(controller_config, web) },
    { "url", CONFLOAD_URL, AT(web_url), .prefix = "https://" },
    { "cert", CONFLOAD_PATH, AT(web_cert) },
    { "key", CONFLOAD_PATH, AT(web_key) },
};

#undef AT
#undef SECONDS

static void finish(confload *l, void *obj)
{
    controller_config *c = obj;
    if (!c->api_listen) {
        c->api_listen = strdup(CONTROLLER_DEFAULT_API_LISTEN);
    }
    if (!c->state_dir) {
        confload_problem(l, 0, "[controller] state_dir is required");
    }
    bool tls = c->agents_listen || c->operators_listen;
    if (tls && (!c->ca || !c->cert || !c->key)) {
        confload_problem(l, 0,
                         "[pki] ca, cert and key are required with agents_listen or "
                         "operators_listen");
    }
    if (c->web && (!c->web_cert || !c->web_key)) {
        confload_problem(l, 0, "[web] cert and key are required with [web] listen (HTTPS)");
    }
    if (c->web_url && strcspn(c->web_url, " \t\"<>\\^`{|}") != strlen(c->web_url)) {
        confload_problem(l, 0, "[web] url: characters a URL cannot hold: \"%s\"", c->web_url);
    }
    if (!c->path || !c->api_listen) {
        confload_problem(l, 0, "out of memory");
    }
}

/* Sections may repeat: their keys are read in file order. */
static const confload_section sections[] = {
    { "controller", controller_keys, ARRAY_SIZE(controller_keys) },
    { "pki", pki_keys, ARRAY_SIZE(pki_keys) },
    { "installs", installs_keys, ARRAY_SIZE(installs_keys) },
    { "store", store_keys, ARRAY_SIZE(store_keys) },
    { "metrics", metrics_keys, ARRAY_SIZE(metrics_keys) },
    { "web", web_keys, ARRAY_SIZE(web_keys) },
    { "log", log_keys, ARRAY_SIZE(log_keys) },
};

static const confload_schema schema = { sections, ARRAY_SIZE(sections), finish };

int controller_config_load(const char *path, diag *d, controller_config **ret)
{
    controller_config *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    c->path = strdup(path);
    c->log_level = LOG_LEVEL_INFO;
    c->timeouts.boot_ms = (uint64_t)CONTROLLER_DEFAULT_BOOT_TIMEOUT * 1000;
    c->timeouts.install_ms = (uint64_t)CONTROLLER_DEFAULT_INSTALL_TIMEOUT * 1000;
    c->keep_events_days = CONTROLLER_DEFAULT_KEEP_EVENTS;
    c->read_connections = CONTROLLER_DEFAULT_READ_CONNECTIONS;

    int r = confload_load(path, &schema, c, d);
    if (r < 0) {
        controller_config_free(c);
        return r;
    }
    *ret = c;
    return 0;
}
