/* api: the operators' API (the rackboot CLI's requests, ApiRequest /
 * ApiReply in proto/rackboot.proto).
 *
 * Served on api_listen (ipc://, where the socket file's mode and group are
 * the access control: 0660 and group rackboot when that group exists, else
 * 0600; callers there may do everything) and, when configured, on
 * operators_listen (tls+tcp://), where every connection must first prove an
 * operator or viewer certificate (auth.h). A viewer may make only the
 * reads listed for it (lists, show, status, events): every other request,
 * writes (hosts add/remove, profiles import, install, cancel), the audit log
 * and any request kind added later, is refused: "permission denied: viewer
 * may not install". Every write, and every refused attempt at one, is recorded
 * in the store's audit log (who, verb, hosts, result, time).
 * Writes of one request are one store batch: an import of 10,000 hosts is
 * one transaction and one fsync, and a refused row leaves nothing behind.
 * A write's audit row is committed in that same transaction (both or
 * neither); a refused or failed attempt gets its row on its own.
 * EventsRequest with max_wait_ms is a long poll, answered when new events
 * are stored (api_poke) or the wait runs out. */
#pragma once

#include <uv.h>

#include "hub.h"
#include "metrics/metrics.h"
#include "pki.h"
#include "store/queue.h"

typedef struct api api;

typedef struct api_config {
    const char *ipc_listen;       /* ipc://PATH */
    const char *operators_listen; /* tls+tcp://... or NULL */
    nng_tls_config *tls;          /* with operators_listen */
    pki_verifier *verifier;       /* with operators_listen */
    /* Every request's store work runs there, off the loop (required); the
     * loop keeps the handshake and the answers that need no store. It must
     * be freed before the API. */
    store_queue *queue;
    /* Reads (listings, status, events and their long polls, the audit
     * log) run on the least busy of these instead, each its own store
     * connection: a long write batch on `queue` (a fleet install, agents'
     * event batches) does not hold them, nor they it. None: on `queue`.
     * The array outlives the API; the queues are freed before it too. */
    store_queue *const *read_queues;
    size_t n_read_queues;
    /* `rackboot web login` (WebLoginRequest, operators and viewers): a
     * one-time sign-in URL for `who` in the caller's role (web/server.h's
     * web_server_login_url()). NULL: the web view is off, and the request
     * is answered UNAVAILABLE. */
    int (*web_login)(void *userdata, const char *who, bool operator_role, char **ret_url,
                     uint64_t *ret_expires_unix_ms);
    void *web_userdata;
    /* Runs (may be NULL) after every install or cancel, whoever asked and
     * whatever it did, so the web view's live streams say states changed. */
    void (*on_installs_changed)(void *userdata);
    void *installs_userdata;
} api_config;

/* `hub` (may be NULL) is poked after every write that may change what an
 * agent must hold. */
int api_new(uv_loop_t *loop, hub *hb, const api_config *cfg, api **ret, char **ret_error);
api *api_free(api *a);

/* Registers rackboot_api_requests_total{verb,result}: every answered
 * request counted by kind and by how its status reads (deploy/METRICS.md).
 * `a` must outlive the registry's renders. */
int api_register_metrics(api *a, metrics *m);

/* A write made for someone on another channel (the web view's install and
 * cancel): `buf` is a packed ApiRequest (install or cancel, else -EINVAL;
 * -EBADMSG and the like when it does not unpack and validate), run as
 * `who` ("operator:alice (web)") with an operator's rights when
 * `unrestricted`, else a viewer's, through the same rules, store batches
 * and audit rows as requests on the API's sockets (a viewer's attempt is
 * refused and audited). `done(userdata, reply)` runs once on the loop with
 * the reply (valid during the call), or with NULL when the API is shutting
 * down. 0 when queued (done follows), else nothing ran. */
typedef void (*api_reply_fn)(void *userdata, const Rackboot__V1__ApiReply *reply);
int api_submit_as(api *a, const char *who, bool unrestricted, const uint8_t *buf, size_t len,
                  api_reply_fn done, void *userdata);

/* New events or states: answer the parked event polls. */
void api_poke(api *a);

int api_operators_port(const api *a);

/* The CRL was reloaded: closes the operators_listen connections whose
 * certificate it now revokes (operators and viewers, proven or still in
 * their handshake) and forgets their identity and parked polls, as
 * hub_cut_revoked() does for agents. Their redials meet the new CRL in TLS.
 * Returns how many were cut, or a negative errno. Loop thread only. */
int api_cut_revoked(api *a);
