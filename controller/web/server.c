/* web/server: routes, sign-in and the guards every page shares (see
 * server.h). */
#include "web/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/server.h"
#include "log.h"
#include "timeutil.h"
#include "util.h"
#include "web/actions.h"
#include "web/assets.h"
#include "web/data.h"
#include "web/session.h"

#define LOGIN_PREFIX "/login/"
#define HTML         "text/html; charset=utf-8"

struct web_server {
    uv_loop_t *loop;
    http_server *http;
    web_sessions *sessions;
    web_data *data;
    api *api;       /* the writes go through it; NULL: not (yet, or any more) */
    char *base_url; /* "https://HOST:PORT", no trailing '/' */
};

/* ---- answers ---- */

/* On every answer: nothing cached (pages show who is signed in), nothing
 * framed, scripts and styles from here only, and no Referer to carry a
 * login URL elsewhere. */
static void guard_headers(http_request *req)
{
    static const char *const headers[][2] = {
        { "Cache-Control", "no-store" },
        { "X-Content-Type-Options", "nosniff" },
        { "X-Frame-Options", "DENY" },
        { "Referrer-Policy", "no-referrer" },
        { "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; "
                                     "base-uri 'none'; form-action 'self'" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(headers); i++) {
        http_request_add_header(req, headers[i][0], headers[i][1]);
    }
}

/* `text` with the five characters HTML gives meaning escaped, into `out`
 * (truncated to `size`). */
static void html_escape(const char *text, char *out, size_t size)
{
    size_t o = 0;
    for (const char *p = text; *p && o + 7 < size; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            out[o++] = *p;
            continue;
        }
        size_t n = strlen(rep);
        memcpy(out + o, rep, n);
        o += n;
    }
    out[o] = '\0';
}

/* A small page: a title and one paragraph of plain (escaped) text. */
static void reply_page(http_request *req, unsigned status, const char *title, const char *text)
{
    char t[256], body[1024], page[2048];
    html_escape(title, t, sizeof(t));
    html_escape(text, body, sizeof(body));
    int n = snprintf(page, sizeof(page),
                     "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                     "<title>%s - rackboot</title></head>\n<body><main><h1>%s</h1><p>%s</p>"
                     "</main></body></html>\n",
                     t, t, body);
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof(page) ? sizeof(page) - 1 : (size_t)n;
    guard_headers(req);
    http_reply_buffer(req, status, HTML, page, len);
}

static void reply_redirect(http_request *req, const char *location)
{
    guard_headers(req);
    http_request_add_header(req, "Location", location);
    http_reply_buffer(req, 303, "text/plain; charset=utf-8", "", 0);
}

/* ---- guards ---- */

/* The signed-in identity of a request, or NULL. */
static const web_identity *session_of(web_server *w, http_request *req)
{
    char token[WEB_TOKEN_CHARS + 1];
    if (web_cookie_find(http_request_header(req, "Cookie"), WEB_COOKIE_NAME, token, sizeof(token)) <
        0) {
        return NULL;
    }
    return web_session_find(w->sessions, token, now_monotonic_ms());
}

/* Answers 401 and returns NULL when the request is not signed in. */
static const web_identity *require_session(web_server *w, http_request *req)
{
    const web_identity *id = session_of(w, req);
    if (!id) {
        reply_page(req, 401, "Not signed in",
                   "Sign in with the one-time URL that `rackboot web login` prints.");
    }
    return id;
}

/* A write must come from our own pages. SameSite=Strict keeps the cookie
 * off other sites' requests already; browsers also say where a request
 * comes from (Sec-Fetch-Site, Origin), and a write that says another site
 * is refused even so. Clients that say nothing (curl) are not browsers
 * another site can drive. */
static bool same_origin(http_request *req)
{
    const char *site = http_request_header(req, "Sec-Fetch-Site");
    if (site && !streq(site, "same-origin")) {
        return false;
    }
    const char *origin = http_request_header(req, "Origin");
    const char *host = http_request_header(req, "Host");
    if (!origin) {
        return true;
    }
    return host && strncmp(origin, "https://", 8) == 0 && streq(origin + 8, host);
}

/* ---- routes ---- */

static void on_login(http_request *req, void *userdata)
{
    web_server *w = userdata;
    const char *token = http_request_path(req) + strlen(LOGIN_PREFIX);
    char session[WEB_TOKEN_CHARS + 1];
    const web_identity *id = NULL;
    int r = web_login_redeem(w->sessions, token, now_monotonic_ms(), session, &id);
    if (r < 0) {
        log_warn("web: login refused client=%s: %s", http_request_client_string(req),
                 r == -EACCES ? "unknown, used or expired login URL" : errstr(r));
        reply_page(req, r == -EACCES ? 403 : 500, "Login link not valid",
                   "This login link is not valid: it was used already, it has expired, or it "
                   "was never issued. Run `rackboot web login` for a new one.");
        return;
    }
    char cookie[256];
    r = web_session_cookie(session, WEB_SESSION_TTL_MS / 1000, cookie, sizeof(cookie));
    RB_ASSERT(r == 0);
    log_info("web: %s signed in (%s) client=%s", id->who,
             id->role == WEB_ROLE_OPERATOR ? "operator" : "viewer",
             http_request_client_string(req));
    http_request_add_header(req, "Set-Cookie", cookie);
    reply_redirect(req, "/hosts");
}

static void on_root(http_request *req, void *userdata)
{
    web_server *w = userdata;
    if (require_session(w, req)) {
        reply_redirect(req, "/hosts");
    }
}

/* An embedded file as it is: validators and 304 from http_reply_memory(). */
static void reply_asset(http_request *req, const web_asset *a)
{
    guard_headers(req);
    http_reply_memory(req, a->data, a->len, a->etag, a->type, NULL, NULL);
}

/* The pages: one document (page.html) whose script draws the page the path
 * names from /api/ data. Signed in only, so a page never shows an empty
 * frame to someone who cannot read its data. */
static void on_page(http_request *req, void *userdata)
{
    web_server *w = userdata;
    const web_asset *a = web_asset_find("page.html");
    if (require_session(w, req)) {
        RB_ASSERT(a);
        reply_asset(req, a);
    }
}

/* /static/NAME: the style sheet and script, for anyone (they hold no data;
 * the sign-in pages use the style sheet too). */
static void on_static(http_request *req, void *userdata)
{
    const char *name = http_request_path(req) + strlen("/static/");
    const web_asset *a = strchr(name, '/') ? NULL : web_asset_find(name);
    if (!a || strcmp(name, "page.html") == 0) {
        guard_headers(req);
        http_reply_error(req, 404, "not found");
        return;
    }
    reply_asset(req, a);
}

/* Who is signed in, for the page's header and for what it offers. */
static void on_me(http_request *req, void *userdata)
{
    web_server *w = userdata;
    const web_identity *id = require_session(w, req);
    if (!id) {
        return;
    }
    char who[2 * WEB_WHO_MAX + 1], body[2 * WEB_WHO_MAX + 64];
    /* JSON string escaping for the characters an identity could hold
     * (pki names and "local:uid=N" have no others). */
    size_t o = 0;
    for (const char *p = id->who; *p && o + 2 < sizeof(who); p++) {
        if (*p == '"' || *p == '\\') {
            who[o++] = '\\';
        }
        who[o++] = (unsigned char)*p < 0x20 ? '?' : *p;
    }
    who[o] = '\0';
    int n = snprintf(body, sizeof(body), "{\"who\":\"%s\",\"role\":\"%s\"}", who,
                     id->role == WEB_ROLE_OPERATOR ? "operator" : "viewer");
    guard_headers(req);
    http_reply_buffer(req, 200, "application/json", body, (size_t)n);
}

/* The pages' data: JSON and the events stream, for the signed-in. */
#define DATA_ROUTE(name)                                                                           \
    static void on_data_##name(http_request *req, void *userdata)                                  \
    {                                                                                              \
        web_server *w = userdata;                                                                  \
        if (require_session(w, req)) {                                                             \
            guard_headers(req);                                                                    \
            web_data_##name(w->data, req);                                                         \
        }                                                                                          \
    }
DATA_ROUTE(hosts)
DATA_ROUTE(racks)
DATA_ROUTE(answer)
DATA_ROUTE(events)
DATA_ROUTE(stream)
#undef DATA_ROUTE

/* Install and cancel: signed in, from our own pages; the API decides
 * what the role may do, and audits. */
static void on_action(http_request *req, web_server *w, bool install)
{
    const web_identity *id = require_session(w, req);
    if (!id) {
        return;
    }
    guard_headers(req);
    if (!same_origin(req)) {
        log_warn("web: cross-site %s refused for %s client=%s", install ? "install" : "cancel",
                 id->who, http_request_client_string(req));
        http_reply_error(req, 403, "a request from another site was refused");
        return;
    }
    web_action_run(w->api, req, id, install);
}

static void on_install(http_request *req, void *userdata)
{
    on_action(req, userdata, true);
}

static void on_cancel(http_request *req, void *userdata)
{
    on_action(req, userdata, false);
}

static void on_logout(http_request *req, void *userdata)
{
    web_server *w = userdata;
    if (!same_origin(req)) {
        reply_page(req, 403, "Refused", "A request from another site was refused.");
        return;
    }
    char token[WEB_TOKEN_CHARS + 1];
    if (web_cookie_find(http_request_header(req, "Cookie"), WEB_COOKIE_NAME, token,
                        sizeof(token)) == 0) {
        web_session_end(w->sessions, token);
    }
    char cookie[256];
    /* Max-Age=0: the browser drops it (RFC 6265 §5.2.2). */
    if (web_session_cookie("", 0, cookie, sizeof(cookie)) == 0) {
        http_request_add_header(req, "Set-Cookie", cookie);
    }
    reply_page(req, 200, "Signed out", "Signed out.");
}

/* ---- the server ---- */

/* "https://[ADDR]:PORT" for the listen address; the host name for an
 * unspecified one, which no browser can open. */
static char *base_url_of(const web_server_config *cfg, uint16_t port)
{
    char *url = NULL;
    if (cfg->url) {
        url = strdup(cfg->url);
        size_t n = url ? strlen(url) : 0;
        while (n > strlen("https://") && url[n - 1] == '/') {
            url[--n] = '\0';
        }
        return url;
    }
    char host[256 + 2];
    if (IN6_IS_ADDR_UNSPECIFIED(&cfg->listen.sin6_addr)) {
        if (gethostname(host, sizeof(host) - 2) < 0) {
            snprintf(host, sizeof(host), "localhost");
        }
        host[sizeof(host) - 3] = '\0';
    } else {
        char addr[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &cfg->listen.sin6_addr, addr, sizeof(addr));
        snprintf(host, sizeof(host), "[%s]", addr);
    }
    if (asprintf(&url, "https://%s:%u", host, (unsigned)port) < 0) {
        return NULL;
    }
    return url;
}

int web_server_new(uv_loop_t *loop, const web_server_config *cfg, web_server **ret)
{
    web_server *w = calloc(1, sizeof(*w));
    if (!w) {
        return -ENOMEM;
    }
    w->loop = loop;
    int r = web_sessions_new(&w->sessions);
    if (r < 0) {
        free(w);
        return r;
    }
    r = web_data_new(loop, cfg->queue, &w->data);
    if (r < 0) {
        web_sessions_free(w->sessions);
        free(w);
        return r;
    }
    http_server_config hc = {
        .listen = cfg->listen,
        .tls_cert_pem = cfg->cert_pem,
        .tls_key_pem = cfg->key_pem,
        /* Browsers open a few connections each; the live view holds one. */
        .max_connections = 256,
    };
    r = http_server_new(loop, &hc, &w->http);
    if (r < 0) {
        web_data_free(w->data);
        web_sessions_free(w->sessions);
        free(w);
        return r;
    }
    w->base_url = base_url_of(cfg, http_server_port(w->http));
    const struct {
        unsigned methods;
        const char *path;
        http_handler_fn fn;
    } routes[] = {
        { HTTP_METHOD_GET, LOGIN_PREFIX, on_login },
        { HTTP_METHOD_GET, "/", on_root },
        { HTTP_METHOD_GET, "/hosts", on_page },
        { HTTP_METHOD_GET, "/racks", on_page },
        { HTTP_METHOD_GET, "/events", on_page },
        { HTTP_METHOD_GET, "/install", on_page },
        { HTTP_METHOD_GET, "/static/", on_static },
        { HTTP_METHOD_GET, "/api/me", on_me },
        { HTTP_METHOD_POST, "/api/install", on_install },
        { HTTP_METHOD_POST, "/api/cancel", on_cancel },
        { HTTP_METHOD_POST, "/logout", on_logout },
        { HTTP_METHOD_GET, "/api/hosts", on_data_hosts },
        { HTTP_METHOD_GET, "/api/racks", on_data_racks },
        { HTTP_METHOD_GET, "/api/answer", on_data_answer },
        { HTTP_METHOD_GET, "/api/events", on_data_events },
        { HTTP_METHOD_GET, "/api/events/stream", on_data_stream },
    };
    for (size_t i = 0; i < ARRAY_SIZE(routes) && r == 0; i++) {
        r = http_server_route(w->http, routes[i].methods, routes[i].path, routes[i].fn, w);
    }
    if (r == 0) {
        r = http_server_redact_segment(w->http, LOGIN_PREFIX, 0);
    }
    if (r == 0 && !w->base_url) {
        r = -ENOMEM;
    }
    if (r < 0) {
        web_server_free(w);
        return r;
    }
    *ret = w;
    return 0;
}

web_server *web_server_free(web_server *w)
{
    if (!w) {
        return NULL;
    }
    /* The server first: it ends the streams the data module holds. */
    http_server_close(w->http);
    web_data_free(w->data);
    web_sessions_free(w->sessions);
    free(w->base_url);
    free(w);
    return NULL;
}

uint16_t web_server_port(const web_server *w)
{
    return http_server_port(w->http);
}

void web_server_set_api(web_server *w, api *a)
{
    w->api = a;
}

void web_server_poke(web_server *w)
{
    web_data_poke(w->data);
}

void web_server_changed(web_server *w)
{
    web_data_changed(w->data);
}

int web_server_login_url(web_server *w, const char *who, bool operator_role, char **ret_url,
                         uint64_t *ret_expires_unix_ms)
{
    char token[WEB_TOKEN_CHARS + 1];
    int r = web_login_issue(w->sessions, who, operator_role ? WEB_ROLE_OPERATOR : WEB_ROLE_VIEWER,
                            now_monotonic_ms(), token);
    if (r < 0) {
        return r;
    }
    char *url = NULL;
    if (asprintf(&url, "%s" LOGIN_PREFIX "%s", w->base_url, token) < 0) {
        return -ENOMEM;
    }
    *ret_url = url;
    *ret_expires_unix_ms = now_realtime_ms() + WEB_LOGIN_TTL_MS;
    return 0;
}
