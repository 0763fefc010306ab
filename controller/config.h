/* The controller's configuration file (deploy/examples/controller.conf
 * documents every key and its default).
 *
 * controller_config_load() checks every section and key and reports each
 * problem with its file and line in the diag, so `--check-config` lists
 * them all at once. Paths are resolved against the file's directory. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "install_fsm.h"
#include "log.h"

#define CONTROLLER_DEFAULT_API_LISTEN       "ipc:///run/rackboot/api.sock"
#define CONTROLLER_DEFAULT_BOOT_TIMEOUT     1800u  /* s: dispatched → installing */
#define CONTROLLER_DEFAULT_INSTALL_TIMEOUT  7200u  /* s: installing → installed */
#define CONTROLLER_DEFAULT_SYNC_WAIT_MAX    60000u /* ms: longest long poll */
#define CONTROLLER_DEFAULT_KEEP_EVENTS      90u    /* days: [store] keep_events_days */
#define CONTROLLER_DEFAULT_READ_CONNECTIONS 2u     /* [store] read_connections */
#define CONTROLLER_MAX_READ_CONNECTIONS     16u
#define CONTROLLER_DEFAULT_METRICS_PORT     9464u /* [metrics] listen without a port */
#define CONTROLLER_DEFAULT_WEB_PORT         8443u /* [web] listen without a port */

typedef struct controller_config {
    char *path;
    /* [controller] */
    char *state_dir;
    char *user;             /* run as this user after binding (common/daemon.h); NULL: stay */
    char *agents_listen;    /* tls+tcp://HOST:PORT; NULL: no agents (API only) */
    char *api_listen;       /* ipc://PATH */
    char *operators_listen; /* tls+tcp://HOST:PORT or NULL */
    log_level log_level;
    log_format log_format; /* [log] format */
    /* [pki] */
    char *ca;
    char *cert;
    char *key;
    char *crl;         /* NULL: none */
    char *server_name; /* the name in our certificate that peers sign for;
                          NULL: the certificate's own name */
    /* [installs] */
    install_timeouts timeouts;
    /* [store] */
    char *store_url; /* "sqlite:///PATH" (store_url_check()); NULL: <state_dir>/fleet.db */
    uint32_t keep_events_days; /* events are deleted after this; 0: kept for ever */
    uint32_t read_connections; /* the API's reads' own store connections; 0: none */
    /* [metrics] */
    bool metrics;                       /* listen was set: serve GET /metrics there */
    struct sockaddr_in6 metrics_listen; /* plain HTTP (controller/scrape.h) */
    /* [web]: the web view over HTTPS. Its own certificate: browsers do not
     * trust the fleet CA, and GnuTLS (libmicrohttpd's TLS) cannot read
     * rackboot-pki's certificates, whose identity extension's OID has a
     * 128-bit arc (2.25.UUID) that libtasn1 refuses as "Error in DER
     * parsing". */
    bool web; /* listen was set */
    struct sockaddr_in6 web_listen;
    char *web_cert; /* PEM: the certificate (and chain) browsers are shown */
    char *web_key;
    char *web_url; /* https://HOST[:PORT] login URLs start with; NULL: from web_listen */
} controller_config;

/* -EINVAL with the problems in `d` when the file is not valid. */
int controller_config_load(const char *path, diag *d, controller_config **ret);
controller_config *controller_config_free(controller_config *cfg);
