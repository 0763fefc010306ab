/* web/server: the controller's web view ([web] listen, issue 18), HTTPS on
 * the shared http/server with the controller's own certificate.
 *
 * Sign-in (web/session.h): the API's WebLoginRequest calls
 * web_server_login_url(), which issues a one-time token for the caller and
 * returns https://HOST:PORT/login/TOKEN. GET /login/TOKEN redeems it: a
 * session cookie and 303 to /hosts, or 403 and a plain page saying the
 * link is not valid. Every other page needs the session cookie; without
 * one it gets 401 and a page saying how to sign in. POST /logout ends the
 * session.
 *
 * The pages' data (web/data.h) needs a session as the pages do.
 *
 * Every answer carries headers that keep the pages to themselves: no
 * caching, no framing, scripts and styles from this origin only, no
 * Referer (a login URL must not leak through one). The access log blanks
 * the login token.
 *
 * Loop thread only. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "api.h"
#include "store/queue.h"

typedef struct web_server web_server;

typedef struct web_server_config {
    struct sockaddr_in6 listen; /* port 0: the kernel chooses (tests) */
    const char *cert_pem;       /* the controller's certificate and key, PEM text */
    const char *key_pem;
    /* What login URLs start with, "https://HOST[:PORT]"; NULL: the listen
     * address and the bound port. Copied. */
    const char *url;
    /* The store's work queue, for the pages' data; must be freed before
     * the server. */
    store_queue *queue;
} web_server_config;

/* Starts listening. -EADDRINUSE and the like when the address cannot be
 * bound, -ENOTSUP without TLS in libmicrohttpd, -EIO for a certificate or
 * key it cannot use, -ENOMEM. */
int web_server_new(uv_loop_t *loop, const web_server_config *cfg, web_server **ret);

/* Stops listening and frees it once libuv has closed the server's
 * handles. Accepts NULL, returns NULL. */
web_server *web_server_free(web_server *w);

uint16_t web_server_port(const web_server *w);

/* The API that runs the pages' installs and cancels (web/actions.h);
 * NULL before it exists and before it is freed. */
void web_server_set_api(web_server *w, api *a);

/* New events are stored: the live views read them. */
void web_server_poke(web_server *w);

/* Install states changed without an event: the live views read again
 * (web_data_changed()). */
void web_server_changed(web_server *w);

/* A one-time sign-in URL for `who` ("operator:alice", as the audit log
 * names callers), as an operator (may install and cancel) or a viewer.
 * *ret_url is malloc'd; *ret_expires_unix_ms says until when it works.
 * -ENOSPC when too many logins are pending, -EINVAL for a bad `who`,
 * -EIO, -ENOMEM. */
int web_server_login_url(web_server *w, const char *who, bool operator_role, char **ret_url,
                         uint64_t *ret_expires_unix_ms);
