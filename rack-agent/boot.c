#include "boot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "hex.h"
#include "rbproto.h"
#include "render/cmdline.h"
#include "render/kickstart.h"
#include "render/overlay.h"
#include "render/script.h"
#include "sha256.h"
#include "util.h"

/* How long the overlay's hook waits for an IPv6 default route. */
#define OVERLAY_WAIT_SECONDS 60u
#define FORM_VALUE_MAX       512u

struct boot_routes {
    const render_context *ctx;
    const intents_store *intents;
    progress *prog;
    uint8_t *overlay;
    size_t overlay_len;
    char overlay_etag[24]; /* "16 hex digits" */
};

/* ---- Who is asking ----------------------------------------------------- */

static void client_addr(const struct sockaddr_in6 *client, struct in6_addr *ret)
{
    *ret = client->sin6_addr;
}

bool boot_client_is_host(const intent *in, const struct sockaddr_in6 *client)
{
    struct in6_addr a;
    client_addr(client, &a);
    if (memcmp(&a, &in->address, sizeof(a)) == 0) {
        return true;
    }
    /* Modified EUI-64 (RFC 4291 Appendix A): the MAC with ff:fe in the
     * middle and the universal/local bit flipped. */
    for (size_t i = 0; i < in->n_macs; i++) {
        const uint8_t *m = in->macs[i];
        const uint8_t iid[8] = { (uint8_t)(m[0] ^ 0x02), m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5] };
        if (memcmp(a.s6_addr + 8, iid, 8) == 0) {
            return true;
        }
    }
    return false;
}

const intent *boot_find_client(const intent_set *set, const struct sockaddr_in6 *client)
{
    if (!set) {
        return NULL;
    }
    for (size_t i = 0; i < intent_set_size(set); i++) {
        const intent *in = intent_set_at(set, i);
        if (boot_client_is_host(in, client)) {
            return in;
        }
    }
    return NULL;
}

static bool token_ok(const intent *in, const char *token)
{
    size_t n = strlen(in->token);
    return token && strlen(token) == n && CRYPTO_memcmp(token, in->token, n) == 0;
}

/* ---- Routes ------------------------------------------------------------ */

static void reply_text(http_request *req, char *body, size_t len)
{
    http_request_add_header(req, "Cache-Control", "no-store");
    http_reply_owned(req, 200, "text/plain; charset=utf-8", body, len);
}

static void on_boot(http_request *req, void *userdata)
{
    boot_routes *b = userdata;
    const char *path = http_request_path(req);
    const intent_set *set = intents_store_current(b->intents);
    if (streq(path, "/boot/overlay.img")) {
        http_request_add_header(req, "Cache-Control", "no-cache");
        http_reply_memory(req, b->overlay, b->overlay_len, b->overlay_etag,
                          "application/octet-stream", NULL, NULL);
        const intent *in = boot_find_client(set, http_request_client(req));
        if (in && http_request_method(req) == HTTP_METHOD_GET) {
            progress_emit(b->prog, in, RACKBOOT__V1__PHASE__PHASE_OVERLAY_FETCHED, 0, NULL, NULL,
                          NULL, 0);
        }
        return;
    }
    uint8_t mac[6];
    if (render_boot_path_parse(path, mac) < 0) {
        http_reply_error(req, 404, "Not Found");
        return;
    }
    const intent *in = set ? intent_set_find_mac(set, mac) : NULL;
    if (!in) {
        http_reply_error(req, 404, "no install for this host");
        return;
    }
    if (!boot_client_is_host(in, http_request_client(req))) {
        log_warn("boot: script of host=%s refused to client=%s (not the host's address)", in->host,
                 http_request_client_string(req));
        http_reply_error(req, 403, "Forbidden");
        return;
    }
    char *script = NULL;
    size_t len = 0;
    int r = render_script(b->ctx, in, mac, &script, &len);
    if (r < 0) {
        log_error("boot: cannot render the script of host=%s install=%s: %s", in->host,
                  in->install_id, errstr(r));
        http_reply_error(req, 500, "cannot render the script");
        return;
    }
    reply_text(req, script, len);
    if (http_request_method(req) == HTTP_METHOD_GET) {
        progress_emit(b->prog, in, RACKBOOT__V1__PHASE__PHASE_SCRIPT_SERVED, 0, NULL, mac, NULL, 0);
    }
}

/* The intent of /ks/<id> or /progress/<id> after the token check; answers
 * the request itself and returns NULL when there is none. */
static const intent *authorized(boot_routes *b, http_request *req,
                                int (*parse)(const char *, const char **, size_t *))
{
    const char *id = NULL;
    size_t id_len = 0;
    if (parse(http_request_path(req), &id, &id_len) < 0) {
        http_reply_error(req, 404, "Not Found");
        return NULL;
    }
    char key[129];
    if (id_len >= sizeof(key)) {
        http_reply_error(req, 404, "Not Found");
        return NULL;
    }
    memcpy(key, id, id_len);
    key[id_len] = '\0';
    const intent_set *set = intents_store_current(b->intents);
    const intent *in = set ? intent_set_find_install(set, key) : NULL;
    if (!in || !token_ok(in, http_request_query(req, "token"))) {
        /* One answer for "no such install" and "wrong token": an id alone
         * tells nobody anything. */
        log_warn("boot: %s %s refused to client=%s (unknown install or wrong token)",
                 http_request_method_name(req), http_request_path(req),
                 http_request_client_string(req));
        http_reply_error(req, 403, "Forbidden");
        return NULL;
    }
    return in;
}

static void on_kickstart(http_request *req, void *userdata)
{
    boot_routes *b = userdata;
    const intent *in = authorized(b, req, render_ks_path_parse);
    if (!in) {
        return;
    }
    if (!boot_client_is_host(in, http_request_client(req))) {
        log_warn("boot: kickstart of host=%s refused to client=%s (not the host's address)",
                 in->host, http_request_client_string(req));
        http_reply_error(req, 403, "Forbidden");
        return;
    }
    char *ks = NULL;
    size_t len = 0;
    int r = render_kickstart(b->ctx, in, &ks, &len);
    if (r < 0) {
        log_error("boot: cannot render the kickstart of host=%s install=%s: %s", in->host,
                  in->install_id, errstr(r));
        http_reply_error(req, 500, "cannot render the kickstart");
        return;
    }
    reply_text(req, ks, len);
    if (http_request_method(req) == HTTP_METHOD_GET) {
        progress_emit(b->prog, in, RACKBOOT__V1__PHASE__PHASE_KICKSTART_FETCHED, 0, NULL, NULL,
                      NULL, 0);
    }
}

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The value of `key` in an application/x-www-form-urlencoded body,
 * decoded ('+' is a space). 1 found, 0 absent, -E2BIG too long. */
int boot_form_get(const uint8_t *body, size_t len, const char *key, char *out, size_t out_size);
int boot_form_get(const uint8_t *body, size_t len, const char *key, char *out, size_t out_size)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&') {
            end++;
        }
        if (end - i > klen && memcmp(body + i, key, klen) == 0 && body[i + klen] == '=') {
            size_t o = 0;
            for (size_t k = i + klen + 1; k < end; k++) {
                int c = body[k];
                if (c == '+') {
                    c = ' ';
                } else if (c == '%' && k + 2 < end + 1 && k + 2 < len &&
                           hexval(body[k + 1]) >= 0 && hexval(body[k + 2]) >= 0) {
                    c = hexval(body[k + 1]) * 16 + hexval(body[k + 2]);
                    k += 2;
                }
                if (o + 1 >= out_size) {
                    return -E2BIG;
                }
                out[o++] = (char)c;
            }
            out[o] = '\0';
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

/* A message for people: one line of printable text. */
static void sanitize_line(char *s)
{
    for (char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
}

static void on_progress(http_request *req, void *userdata)
{
    boot_routes *b = userdata;
    const intent *in = authorized(b, req, render_progress_path_parse);
    if (!in) {
        return;
    }
    size_t len = 0;
    const uint8_t *body = http_request_body(req, &len);
    char phase_s[32], percent_s[16], message[FORM_VALUE_MAX];
    Rackboot__V1__Phase phase;
    if (boot_form_get(body, len, "phase", phase_s, sizeof(phase_s)) != 1 ||
        rbproto_phase_from_string(phase_s, &phase) < 0 ||
        (phase != RACKBOOT__V1__PHASE__PHASE_INSTALLING &&
         phase != RACKBOOT__V1__PHASE__PHASE_INSTALLED &&
         phase != RACKBOOT__V1__PHASE__PHASE_FAILED)) {
        http_reply_error(req, 400, "phase must be installing, installed or failed");
        return;
    }
    uint32_t percent = 0;
    if (boot_form_get(body, len, "percent", percent_s, sizeof(percent_s)) == 1) {
        char *end = NULL;
        unsigned long v = strtoul(percent_s, &end, 10);
        if (!*percent_s || *end || v > 100) {
            http_reply_error(req, 400, "percent must be 0 to 100");
            return;
        }
        percent = (uint32_t)v;
    }
    if (boot_form_get(body, len, "message", message, sizeof(message)) != 1) {
        message[0] = '\0';
    }
    sanitize_line(message);
    /* The intent may be withdrawn by the emit (installed): keep what the
     * reply needs first. */
    int r = progress_emit(b->prog, in, phase, percent, message, NULL, NULL, 0);
    if (r < 0) {
        http_reply_error(req, 503, "cannot record the event, try again");
        return;
    }
    http_reply_buffer(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

/* ---- Lifecycle --------------------------------------------------------- */

int boot_routes_new(http_server *srv, const render_context *ctx, const intents_store *intents,
                    progress *prog, boot_routes **ret)
{
    boot_routes *b = calloc(1, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    b->ctx = ctx;
    b->intents = intents;
    b->prog = prog;
    int r = render_overlay(OVERLAY_WAIT_SECONDS, &b->overlay, &b->overlay_len);
    if (r >= 0) {
        uint8_t sum[32];
        char hex[2 * 8 + 1];
        r = sha256_buffer(b->overlay, b->overlay_len, sum);
        hex_encode(sum, 8, hex);
        snprintf(b->overlay_etag, sizeof(b->overlay_etag), "\"%s\"", hex);
    }
    if (r >= 0) {
        r = http_server_route(srv, HTTP_METHOD_GET, "/boot/", on_boot, b);
    }
    if (r >= 0) {
        r = http_server_route(srv, HTTP_METHOD_GET, "/ks/", on_kickstart, b);
    }
    if (r >= 0) {
        r = http_server_route(srv, HTTP_METHOD_POST, "/progress/", on_progress, b);
    }
    if (r < 0) {
        free(b->overlay);
        free(b);
        return r;
    }
    *ret = b;
    return 0;
}

boot_routes *boot_routes_free(boot_routes *b)
{
    if (b) {
        free(b->overlay);
        free(b);
    }
    return NULL;
}
