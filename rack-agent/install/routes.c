#include "install/routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <zlib.h>

#include "files/http_route.h"
#include "files/source.h"
#include "hex.h"
#include "log.h"
#include "parse.h"
#include "rbproto.h"
#include "render/cmdline.h"
#include "render/kickstart.h"
#include "render/nocloud.h"
#include "render/overlay.h"
#include "render/preseed.h"
#include "render/script.h"
#include "sha256.h"
#include "tcpinfo.h"
#include "uki/cache.h"
#include "util.h"

/* How long the overlay's hook waits for an IPv6 default route. */
#define OVERLAY_WAIT_SECONDS 60u
#define FORM_VALUE_MAX       512u
/* How often stage2 downloads are looked at for their quarter marks. */
#define TRANSFER_TICK_MS 500u

/* An image being sent to a host with an install: its event when the whole
 * file went out, and for stage2 the quarters on the way (from TCP_INFO's
 * bytes acknowledged: libmicrohttpd's sendfile reports no progress). */
typedef struct transfer {
    boot_routes *b;
    http_request *req; /* NULL once done */
    char install_id[129];
    Rackboot__V1__Phase phase;
    bool uki; /* a UKI: kernel_fetched and initrd_fetched when whole */
    uint64_t acked_at_start;
    unsigned quarters; /* progress events sent: 1, 2, 3 */
    struct transfer *prev, *next;
} transfer;

struct boot_routes {
    const render_context *ctx;
    const intents_store *intents;
    progress *prog;
    files *files;
    files *ramdisk; /* the deploy ramdisk's directory; NULL: none */
    boot_on_link_fn on_link;
    void *on_link_data;
    transfer *transfers;
    uv_timer_t tick;
    bool tick_open;
    uint8_t *overlay;
    size_t overlay_len;
    char overlay_etag[24]; /* "16 hex digits" */
    uki_cache *uki;        /* NULL: no UKIs served */
};

/* ---- Who is asking ----------------------------------------------------- */

static bool same_prefix64(const struct in6_addr *a, const struct in6_addr *b)
{
    return memcmp(a->s6_addr, b->s6_addr, 8) == 0;
}

static bool eui64_of_a_mac(const intent *in, const struct in6_addr *a)
{
    /* Modified EUI-64 (RFC 4291 Appendix A): the MAC with ff:fe in the
     * middle and the universal/local bit flipped. */
    for (size_t i = 0; i < in->n_macs; i++) {
        const uint8_t *m = in->macs[i];
        const uint8_t iid[8] = { (uint8_t)(m[0] ^ 0x02), m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5] };
        if (memcmp(a->s6_addr + 8, iid, 8) == 0) {
            return true;
        }
    }
    return false;
}

bool boot_client_is_host(const intent *in, const struct sockaddr_in6 *client,
                         boot_on_link_fn on_link, void *userdata)
{
    static const struct in6_addr link_local = { { { 0xfe, 0x80 } } };
    const struct in6_addr *a = &client->sin6_addr;
    if (memcmp(a, &in->address, sizeof(*a)) == 0) {
        return true;
    }
    if (!eui64_of_a_mac(in, a)) {
        return false;
    }
    /* The interface identifier is the MAC, which anyone may know and put
     * under a prefix of their own: only the prefix can say the sender is on
     * the host's link. The reserved address's /64 is that link's. */
    if (!IN6_IS_ADDR_UNSPECIFIED(&in->address) && same_prefix64(a, &in->address)) {
        return true;
    }
    /* RFC 4291 §2.5.6: link-local unicast is fe80::/64, the rest of
     * fe80::/10 is not assigned. */
    bool ll = same_prefix64(a, &link_local);
    if (IN6_IS_ADDR_LINKLOCAL(a) && !ll) {
        return false;
    }
    return on_link ? on_link(userdata, client) : ll;
}

const intent *boot_find_client(const intent_set *set, const struct sockaddr_in6 *client,
                               boot_on_link_fn on_link, void *userdata)
{
    if (!set) {
        return NULL;
    }
    for (size_t i = 0; i < intent_set_size(set); i++) {
        const intent *in = intent_set_at(set, i);
        if (boot_client_is_host(in, client, on_link, userdata)) {
            return in;
        }
    }
    return NULL;
}

/* Scripts, kickstarts and progress posts: from the host itself (install/routes.h),
 * unless its profile opts out. Answers 403 itself when not. */
static bool source_allowed(boot_routes *b, const intent *in, http_request *req, const char *what)
{
    if (in->profile->any_source ||
        boot_client_is_host(in, http_request_client(req), b->on_link, b->on_link_data)) {
        return true;
    }
    log_warn("boot: %s of host=%s refused to client=%s (not the host's address)", what, in->host,
             http_request_client_string(req));
    http_reply_error(req, 403, "Forbidden");
    return false;
}

/* The install `id` (id_len bytes) when `token` (token_len bytes) is its
 * token, compared in constant time; NULL for an unknown install and for a
 * wrong token alike (an id alone tells nobody anything). */
static const intent *install_with_token(boot_routes *b, const char *id, size_t id_len,
                                        const char *token, size_t token_len)
{
    char key[129];
    if (id_len >= sizeof(key) || !token) {
        return NULL;
    }
    memcpy(key, id, id_len);
    key[id_len] = '\0';
    const intent_set *set = intents_store_current(b->intents);
    const intent *in = set ? intent_set_find_install(set, key) : NULL;
    size_t n = in ? strlen(in->token) : 0;
    if (!in || token_len != n || CRYPTO_memcmp(token, in->token, n) != 0) {
        return NULL;
    }
    return in;
}

/* ---- Routes ------------------------------------------------------------ */

static void reply_text(http_request *req, char *body, size_t len)
{
    http_request_add_header(req, "Cache-Control", "no-store");
    http_reply_owned(req, 200, "text/plain; charset=utf-8", body, len);
}

static void on_uki(boot_routes *b, http_request *req, const uint8_t mac[6]);

static void on_boot(http_request *req, void *userdata)
{
    boot_routes *b = userdata;
    const char *path = http_request_path(req);
    const intent_set *set = intents_store_current(b->intents);
    if (streq(path, "/boot/overlay.img")) {
        http_request_add_header(req, "Cache-Control", "no-cache");
        http_reply_memory(req, b->overlay, b->overlay_len, b->overlay_etag,
                          "application/octet-stream", NULL, NULL);
        const intent *in =
            boot_find_client(set, http_request_client(req), b->on_link, b->on_link_data);
        if (in && http_request_method(req) == HTTP_METHOD_GET) {
            progress_emit(b->prog, in, RACKBOOT__V1__PHASE__PHASE_OVERLAY_FETCHED, 0, NULL, NULL,
                          NULL, 0);
        }
        return;
    }
    uint8_t mac[6];
    if (render_uki_path_parse(path, mac) == 0) {
        on_uki(b, req, mac);
        return;
    }
    if (render_boot_path_parse(path, mac) < 0) {
        http_reply_error(req, 404, "Not Found");
        return;
    }
    const intent *in = set ? intent_set_find_mac(set, mac) : NULL;
    if (!in || in->netboot_done) {
        http_reply_error(req, 404, "no install for this host");
        return;
    }
    if (!source_allowed(b, in, req, "script")) {
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
    const char *token = http_request_query(req, "token");
    const intent *in = install_with_token(b, id, id_len, token, token ? strlen(token) : 0);
    if (!in) {
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
    if (!source_allowed(b, in, req, "kickstart")) {
        return;
    }
    /* One route for the answer file of every kind: Debian's installer
     * reads a preseed, Anaconda a kickstart. */
    bool d_i = in->profile->kind == PROFILE_DEBIAN_INSTALLER;
    char *ks = NULL;
    size_t len = 0;
    int r = d_i ? render_preseed(b->ctx, in, &ks, &len) : render_kickstart(b->ctx, in, &ks, &len);
    if (r < 0) {
        log_error("boot: cannot render the %s of host=%s install=%s: %s",
                  d_i ? "preseed" : "kickstart", in->host, in->install_id, errstr(r));
        http_reply_error(req, 500,
                         d_i ? "cannot render the preseed" : "cannot render the kickstart");
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
                } else if (c == '%' && k + 2 < end + 1 && k + 2 < len && hexval(body[k + 1]) >= 0 &&
                           hexval(body[k + 2]) >= 0) {
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

/* The event is durable (r 0) or will never be (progress.h). */
static void on_progress_recorded(void *userdata, int r)
{
    http_request *req = userdata;
    if (r < 0) {
        http_reply_error(req, 503, "cannot record the event, try again");
        return;
    }
    http_reply_buffer(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void on_progress_cancel(void *userdata)
{
    progress_post_detach(userdata);
}

/* What an installer (installing, installed) or the deploy ramdisk
 * (writing, written) may post; failed from either. first_boot comes only
 * from the installed system, through /phone-home/. */
static bool phase_postable(Rackboot__V1__Phase phase)
{
    switch (phase) {
    case RACKBOOT__V1__PHASE__PHASE_INSTALLING:
    case RACKBOOT__V1__PHASE__PHASE_INSTALLED:
    case RACKBOOT__V1__PHASE__PHASE_WRITING:
    case RACKBOOT__V1__PHASE__PHASE_WRITTEN:
    case RACKBOOT__V1__PHASE__PHASE_FAILED:
        return true;
    default:
        return false;
    }
}

static void on_progress(http_request *req, void *userdata)
{
    boot_routes *b = userdata;
    const intent *in = authorized(b, req, render_progress_path_parse);
    if (!in || !source_allowed(b, in, req, "progress")) {
        return;
    }
    size_t len = 0;
    const uint8_t *body = http_request_body(req, &len);
    char phase_s[32], percent_s[16], message[FORM_VALUE_MAX];
    Rackboot__V1__Phase phase;
    if (boot_form_get(body, len, "phase", phase_s, sizeof(phase_s)) != 1 ||
        rbproto_phase_from_string(phase_s, &phase) < 0 || !phase_postable(phase)) {
        http_reply_error(req, 400,
                         "phase must be installing, installed, writing, written or failed");
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
    /* The installer takes a 200 as "heard": it goes out only once the
     * event is durable (a power cut cannot take it back) and, for
     * `installed`, the intent withdrawn. Until then the request waits. */
    progress_post *w = NULL;
    int r =
        progress_post_event(b->prog, in, phase, percent, message, on_progress_recorded, req, &w);
    if (r < 0) {
        http_reply_error(req, 503, "cannot record the event, try again");
        return;
    }
    http_request_on_cancel(req, on_progress_cancel, w);
}

/* cloud-init's phone_home from the deployed system's first boot: the
 * install is done only now (progress.h completes it on first_boot). Its
 * form carries instance_id (our meta-data's: the install id) and hostname;
 * an instance_id of another install is refused, so a stale image that
 * still holds an old seed cannot complete this one. */
static void on_phone_home(http_request *req, void *userdata)
{
    boot_routes *b = userdata;
    const intent *in = authorized(b, req, render_phone_home_path_parse);
    if (!in || !source_allowed(b, in, req, "phone-home")) {
        return;
    }
    size_t len = 0;
    const uint8_t *body = http_request_body(req, &len);
    char instance[FORM_VALUE_MAX], hostname[FORM_VALUE_MAX], message[FORM_VALUE_MAX + 32];
    if (boot_form_get(body, len, "instance_id", instance, sizeof(instance)) == 1 &&
        !streq(instance, in->install_id)) {
        sanitize_line(instance);
        log_warn("boot: phone-home of host=%s install=%s refused: instance_id=%s", in->host,
                 in->install_id, instance);
        http_reply_error(req, 409, "instance_id is not this install's");
        return;
    }
    if (boot_form_get(body, len, "hostname", hostname, sizeof(hostname)) == 1) {
        sanitize_line(hostname);
        snprintf(message, sizeof(message), "booted from disk as %s", hostname);
    } else {
        snprintf(message, sizeof(message), "booted from disk");
    }
    progress_post *w = NULL;
    int r = progress_post_event(b->prog, in, RACKBOOT__V1__PHASE__PHASE_FIRST_BOOT, 100, message,
                                on_progress_recorded, req, &w);
    if (r < 0) {
        http_reply_error(req, 503, "cannot record the event, try again");
        return;
    }
    http_request_on_cancel(req, on_progress_cancel, w);
}

/* GET /seed/<id>/<token>/<mac>/<doc>: the NoCloud seed the deploy ramdisk
 * writes beside the image. The rules of /ks/: the install's token (compared
 * in constant time; one 403 for an unknown install and a wrong token) and
 * the host's own address; and only for an image install and one of its
 * MACs. The token is in the path: nothing here logs the path (the access
 * log blanks that segment, http_server_redact_segment()). */
static void on_seed(http_request *req, void *userdata)
{
    boot_routes *b = userdata;
    render_seed_path sp;
    if (render_seed_path_parse(http_request_path(req), &sp) < 0) {
        http_reply_error(req, 404, "Not Found");
        return;
    }
    const intent *in = install_with_token(b, sp.id, sp.id_len, sp.token, sp.token_len);
    if (!in) {
        log_warn("boot: seed of install=%.*s refused to client=%s (unknown install or wrong "
                 "token)",
                 (int)sp.id_len, sp.id, http_request_client_string(req));
        http_reply_error(req, 403, "Forbidden");
        return;
    }
    if (!source_allowed(b, in, req, "seed")) {
        return;
    }
    char mac[FORMAT_MAC_LEN];
    format_mac(sp.mac, mac);
    if (in->profile->kind != PROFILE_IMAGE) {
        http_reply_error(req, 404, "not an image install");
        return;
    }
    if (!intent_has_mac(in, sp.mac)) {
        log_warn("boot: seed of host=%s install=%s refused for mac=%s (not the host's)", in->host,
                 in->install_id, mac);
        http_reply_error(req, 404, "not a MAC of this host");
        return;
    }
    render_nocloud_seed seed = { 0 };
    int r = render_nocloud(b->ctx, in, sp.mac, &seed);
    if (r < 0) {
        log_error("boot: cannot render the seed of host=%s install=%s: %s", in->host,
                  in->install_id, errstr(r));
        http_reply_error(req, 500, "cannot render the seed");
        return;
    }
    struct {
        char **text;
        size_t len;
    } docs[] = {
        [RENDER_SEED_META_DATA] = { &seed.meta_data, seed.meta_data_len },
        [RENDER_SEED_NETWORK_CONFIG] = { &seed.network_config, seed.network_config_len },
        [RENDER_SEED_USER_DATA] = { &seed.user_data, seed.user_data_len },
    };
    RB_ASSERT((size_t)sp.doc < ARRAY_SIZE(docs));
    char *body = *docs[sp.doc].text;
    size_t len = docs[sp.doc].len;
    *docs[sp.doc].text = NULL; /* the reply owns it now */
    render_nocloud_clear(&seed);
    reply_text(req, body, len);
    log_info("boot: seed %s served host=%s install=%s mac=%s", render_seed_doc_name(sp.doc),
             in->host, in->install_id, mac);
}

/* ---- Images: kernel_fetched, initrd_fetched, stage2 progress ------------ */

static void transfer_emit(transfer *t, Rackboot__V1__Phase phase, uint32_t percent)
{
    const intent_set *set = intents_store_current(t->b->intents);
    const intent *in = set ? intent_set_find_install(set, t->install_id) : NULL;
    if (in) {
        progress_emit(t->b->prog, in, phase, percent, NULL, NULL, NULL, 0);
    }
}

static void transfer_free(transfer *t)
{
    boot_routes *b = t->b;
    if (t->prev) {
        t->prev->next = t->next;
    } else {
        b->transfers = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    free(t);
    if (!b->transfers && b->tick_open) {
        uv_timer_stop(&b->tick);
    }
}

static void on_image_done(void *userdata, bool complete, unsigned status, uint64_t bytes)
{
    transfer *t = userdata;
    /* The whole file (not a range, not a HEAD, not a 304). */
    if (complete && status == 200 && bytes > 0) {
        if (t->phase == RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS) {
            /* Quarters the tick did not see (a fast download) still count:
             * watchers expect 25, 50, 75, 100 in order. */
            while (t->quarters < 3) {
                t->quarters++;
                transfer_emit(t, RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS, 25 * t->quarters);
            }
            transfer_emit(t, t->phase, 100);
        } else {
            transfer_emit(t, t->phase, 0);
        }
        if (t->uki) {
            /* One file held both. */
            transfer_emit(t, RACKBOOT__V1__PHASE__PHASE_INITRD_FETCHED, 0);
        }
    }
    transfer_free(t);
}

static void on_tick(uv_timer_t *timer)
{
    boot_routes *b = timer->data;
    for (transfer *t = b->transfers, *next; t; t = next) {
        next = t->next;
        if (t->phase != RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS || !t->req) {
            continue;
        }
        uint64_t size = http_request_body_size(t->req), acked = 0;
        if (size == 0 || tcpinfo_bytes_acked(http_request_socket(t->req), &acked) < 0 ||
            acked < t->acked_at_start) {
            continue;
        }
        uint64_t done = acked - t->acked_at_start;
        unsigned quarter = done >= size ? 3 : (unsigned)(done * 4 / size);
        if (quarter > 3) {
            quarter = 3;
        }
        while (t->quarters < quarter) {
            t->quarters++;
            transfer_emit(t, RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS, 25 * t->quarters);
        }
    }
}

/* Watches `req` for the whole file going out to host `in` (phase 0: does
 * nothing): transfer_emit() on completion, quarters on the way for stage2. */
static transfer *watch_transfer(boot_routes *b, http_request *req, const intent *in,
                                Rackboot__V1__Phase phase)
{
    transfer *t = phase ? calloc(1, sizeof(*t)) : NULL;
    if (!t) {
        return NULL;
    }
    t->b = b;
    t->req = req;
    t->phase = phase;
    snprintf(t->install_id, sizeof(t->install_id), "%s", in->install_id);
    (void)tcpinfo_bytes_acked(http_request_socket(req), &t->acked_at_start);
    t->next = b->transfers;
    if (b->transfers) {
        b->transfers->prev = t;
    }
    b->transfers = t;
    http_request_on_done(req, on_image_done, t);
    if (phase == RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS && b->tick_open &&
        !uv_is_active((uv_handle_t *)&b->tick)) {
        uv_timer_start(&b->tick, on_tick, TRANSFER_TICK_MS, TRANSFER_TICK_MS);
    }
    return t;
}

/* /images/<profile>/<file>: served by the image cache (files.h); when the
 * client is a host installing that profile, its progress is watched. */
static void on_image(http_request *req, void *userdata)
{
    boot_routes *b = userdata;
    const char *path = http_request_path(req);
    const intent_set *set = intents_store_current(b->intents);
    const intent *in = boot_find_client(set, http_request_client(req), b->on_link, b->on_link_data);
    const char *rest = path + strlen("/images/");
    size_t plen = in ? strlen(in->profile->name) : 0;
    Rackboot__V1__Phase phase = RACKBOOT__V1__PHASE__PHASE_UNSPECIFIED;
    if (in && http_request_method(req) == HTTP_METHOD_GET &&
        strncmp(rest, in->profile->name, plen) == 0 && rest[plen] == '/') {
        const char *file = rest + plen + 1;
        switch (image_kind_of_path(file)) {
        case IMAGE_KERNEL:
            phase = RACKBOOT__V1__PHASE__PHASE_KERNEL_FETCHED;
            break;
        case IMAGE_INITRD:
            phase = RACKBOOT__V1__PHASE__PHASE_INITRD_FETCHED;
            break;
        case IMAGE_STAGE2:
            phase = RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS;
            break;
        case IMAGE_OTHER:
        case IMAGE_DISK: /* the deploy ramdisk reports its own writing % */
            break;
        }
    }
    watch_transfer(b, req, in, phase);
    http_reply_files(req, b->files, path + 1);
}

/* /deploy/vmlinuz and /deploy/initrd.img: the deploy ramdisk, from its
 * directory (files.h: opened beneath it, sendfile, ranges, validators).
 * Only those two names: the directory may hold other things. A host
 * deploying an image gets kernel_fetched and initrd_fetched as with an
 * install profile's own. */
static void on_deploy(http_request *req, void *userdata)
{
    boot_routes *b = userdata;
    const char *name = http_request_path(req) + strlen(RENDER_DEPLOY_DIR);
    Rackboot__V1__Phase phase;
    if (streq(name, RENDER_DEPLOY_KERNEL_NAME)) {
        phase = RACKBOOT__V1__PHASE__PHASE_KERNEL_FETCHED;
    } else if (streq(name, RENDER_DEPLOY_INITRD_NAME)) {
        phase = RACKBOOT__V1__PHASE__PHASE_INITRD_FETCHED;
    } else {
        http_reply_error(req, 404, "Not Found");
        return;
    }
    if (!b->ramdisk) {
        http_reply_error(req, 404, "no deploy ramdisk on this agent ([deploy] ramdisk)");
        return;
    }
    const intent_set *set = intents_store_current(b->intents);
    const intent *in = boot_find_client(set, http_request_client(req), b->on_link, b->on_link_data);
    if (in && in->profile->kind == PROFILE_IMAGE && http_request_method(req) == HTTP_METHOD_GET) {
        watch_transfer(b, req, in, phase);
    }
    http_reply_files(req, b->ramdisk, name);
}

/* ---- UKIs: /boot/<mac>.efi over HTTP and TFTP ---------------------------- */

/* The install a UKI request is for, under the script's rules: an intent for
 * the MAC that still netboots, of a `uefi_boot = uki` profile, asked for by
 * the host itself (or anyone, with `source_check = no`). NULL with *ret_r
 * -ENOENT (nothing to boot) or -EACCES (not the host: logged). */
static const intent *uki_intent(boot_routes *b, const uint8_t mac[6],
                                const struct sockaddr_in6 *client, int *ret_r)
{
    const intent_set *set = intents_store_current(b->intents);
    const intent *in = set ? intent_set_find_mac(set, mac) : NULL;
    if (!in || in->netboot_done || in->profile->uefi != UEFI_BOOT_UKI || !b->uki) {
        *ret_r = -ENOENT;
        return NULL;
    }
    if (!in->profile->any_source &&
        !(client && boot_client_is_host(in, client, b->on_link, b->on_link_data))) {
        char addr[INET6_ADDRSTRLEN] = "?";
        if (client) {
            inet_ntop(AF_INET6, &client->sin6_addr, addr, sizeof(addr));
        }
        log_warn("boot: kernel image of host=%s refused to client=%s (not the host's address)",
                 in->host, addr);
        *ret_r = -EACCES;
        return NULL;
    }
    return in;
}

/* Asks the UKI cache for the image of `in` booted through `mac`: its
 * profile's kernel and initrd (the deploy ramdisk's for an image profile),
 * the overlay when the profile has one, and the host's command line. */
static int uki_open(boot_routes *b, const intent *in, const uint8_t mac[6], uki_done_fn done,
                    void *userdata, uki_request **ret_req)
{
    *ret_req = NULL;
    _cleanup_free_ char *cmdline = NULL, *kernel = NULL, *initrd = NULL, *what = NULL;
    int r = render_cmdline(b->ctx, in, mac, &cmdline, NULL);
    if (r < 0) {
        log_error("boot: cannot render the command line of host=%s install=%s: %s", in->host,
                  in->install_id, errstr(r));
        return r;
    }
    uki_spec spec = { .cmdline = cmdline };
    const model_profile *p = in->profile;
    if (p->kind == PROFILE_IMAGE) {
        if (!b->ramdisk) {
            return -ENOENT;
        }
        spec.kernel = (uki_part){ b->ramdisk, RENDER_DEPLOY_KERNEL_NAME };
        spec.initrd = (uki_part){ b->ramdisk, RENDER_DEPLOY_INITRD_NAME };
    } else {
        const model_image *k = model_profile_image(p, IMAGE_KERNEL);
        const model_image *i = model_profile_image(p, IMAGE_INITRD);
        if (!k || !b->files) {
            return -ENOENT;
        }
        if (asprintf(&kernel, "images/%s/%s", p->name, model_image_path(k)) < 0 ||
            (i && asprintf(&initrd, "images/%s/%s", p->name, model_image_path(i)) < 0)) {
            return -ENOMEM;
        }
        spec.kernel = (uki_part){ b->files, kernel };
        spec.initrd = (uki_part){ i ? b->files : NULL, initrd };
        spec.overlay = p->overlay;
    }
    if (asprintf(&what, "host=%s install=%s", in->host, in->install_id) < 0) {
        return -ENOMEM;
    }
    spec.what = what;
    return uki_cache_open(b->uki, &spec, done, userdata, ret_req);
}

/* An HTTP request waiting for its UKI. */
typedef struct uki_http {
    boot_routes *b;
    http_request *req;
    uki_request *open;
    char install_id[129];
    uint8_t mac[6];
    bool done, waiting; /* as files/http_route.c: the answer may come at once */
} uki_http;

static void on_uki_http_opened(void *userdata, int r, int fd, uint64_t size, const char *etag)
{
    uki_http *h = userdata;
    boot_routes *b = h->b;
    h->done = true;
    if (r < 0) {
        http_reply_error(h->req, http_files_status(r),
                         r == -ENOENT ? "no install for this host"
                                      : "cannot build the kernel image");
    } else {
        const intent_set *set = intents_store_current(b->intents);
        const intent *in = set ? intent_set_find_install(set, h->install_id) : NULL;
        if (in && http_request_method(h->req) == HTTP_METHOD_GET) {
            /* The image is the script, kernel and initrd in one: served
             * now, and the rest once the whole file went out. */
            progress_emit(b->prog, in, RACKBOOT__V1__PHASE__PHASE_SCRIPT_SERVED, 0, NULL, h->mac,
                          NULL, 0);
            transfer *t = watch_transfer(b, h->req, in, RACKBOOT__V1__PHASE__PHASE_KERNEL_FETCHED);
            if (t) {
                t->uki = true;
            }
        }
        http_request_add_header(h->req, "Cache-Control", "no-store");
        http_reply_file(h->req, fd, size, etag, "application/efi");
    }
    if (h->waiting) {
        free(h);
    }
}

static void on_uki_http_cancel(void *userdata)
{
    uki_http *h = userdata;
    uki_request_cancel(h->open);
    free(h);
}

static void on_uki(boot_routes *b, http_request *req, const uint8_t mac[6])
{
    int r;
    const intent *in = uki_intent(b, mac, http_request_client(req), &r);
    if (!in) {
        http_reply_error(req, http_files_status(r),
                         r == -EACCES ? "Forbidden" : "no install for this host");
        return;
    }
    uki_http *h = calloc(1, sizeof(*h));
    if (!h) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    h->b = b;
    h->req = req;
    memcpy(h->mac, mac, sizeof(h->mac));
    snprintf(h->install_id, sizeof(h->install_id), "%s", in->install_id);
    uki_request *open = NULL;
    r = uki_open(b, in, mac, on_uki_http_opened, h, &open);
    if (r < 0) {
        free(h);
        http_reply_error(req, r == -ENOENT ? 404 : 500,
                         r == -ENOENT ? "no kernel image for this host" : "internal error");
        return;
    }
    if (h->done) {
        free(h);
        return;
    }
    h->open = open;
    h->waiting = true;
    http_request_on_cancel(req, on_uki_http_cancel, h);
}

/* A TFTP open of boot/<mac>.efi (files/source.h, prefix "boot"). */
typedef struct uki_tftp {
    files_request base; /* first: files_request_cancel() */
    uki_request *open;
    files_done_fn done;
    void *userdata;
    bool in_open, answered;
} uki_tftp;

static void on_uki_tftp_opened(void *userdata, int r, int fd, uint64_t size, const char *etag)
{
    uki_tftp *w = userdata;
    if (r < 0) {
        w->done(w->userdata, r, NULL);
    } else {
        files_result res = { .fd = fd,
                             .size = size,
                             .content_type = "application/efi",
                             .verified = false,
                             .image_kind = -1 };
        snprintf(res.etag, sizeof(res.etag), "%s", etag);
        w->done(w->userdata, 0, &res);
    }
    w->answered = true;
    if (!w->in_open) {
        free(w);
    }
}

static void uki_tftp_cancel(files_request *req)
{
    uki_tftp *w = (uki_tftp *)req;
    uki_request_cancel(w->open);
    free(w);
}

static int uki_source(void *userdata, const char *path, const struct sockaddr_in6 *client,
                      files_done_fn done, void *done_userdata, files_request **ret_req)
{
    boot_routes *b = userdata;
    *ret_req = NULL;
    uint8_t mac[6];
    int r = -ENOENT;
    const intent *in = NULL;
    char full[64]; /* "boot/" and the longest MAC form render_uki_path_parse() takes */
    if (snprintf(full, sizeof(full), "boot/%s", path) < (int)sizeof(full) &&
        render_uki_path_parse(full, mac) == 0) {
        in = uki_intent(b, mac, client, &r);
    }
    uki_tftp *w = in ? calloc(1, sizeof(*w)) : NULL;
    if (in && !w) {
        r = -ENOMEM;
    }
    if (!w) {
        done(done_userdata, r, NULL);
        return 0;
    }
    w->base.cancel = uki_tftp_cancel;
    w->done = done;
    w->userdata = done_userdata;
    w->in_open = true;
    uki_request *open = NULL;
    r = uki_open(b, in, mac, on_uki_tftp_opened, w, &open);
    w->in_open = false;
    if (r < 0) {
        free(w);
        done(done_userdata, r, NULL);
        return 0;
    }
    if (w->answered) {
        free(w);
        return 0;
    }
    w->open = open;
    *ret_req = &w->base;
    return 0;
}

void boot_routes_tftp_event(void *userdata, tftp_event ev, const struct sockaddr_in6 *client,
                            const char *path)
{
    boot_routes *b = userdata;
    uint8_t mac[6];
    int r;
    if (render_uki_path_parse(path, mac) < 0) {
        return;
    }
    const intent *in = uki_intent(b, mac, client, &r);
    if (!in) {
        return;
    }
    if (ev == TFTP_EVENT_STARTED) {
        progress_emit(b->prog, in, RACKBOOT__V1__PHASE__PHASE_SCRIPT_SERVED, 0, NULL, mac, NULL, 0);
    } else {
        progress_emit(b->prog, in, RACKBOOT__V1__PHASE__PHASE_KERNEL_FETCHED, 0, NULL, NULL, NULL,
                      0);
        progress_emit(b->prog, in, RACKBOOT__V1__PHASE__PHASE_INITRD_FETCHED, 0, NULL, NULL, NULL,
                      0);
    }
}

int boot_routes_serve_uki(boot_routes *b, uv_loop_t *loop, const char *dir, const char *stub,
                          uint64_t max_bytes, files *tftp_files)
{
    uki_cache_config cfg = { .dir = dir,
                             .stub = stub,
                             .max_bytes = max_bytes,
                             .overlay = b->overlay,
                             .overlay_len = b->overlay_len };
    int r = uki_cache_new(loop, &cfg, &b->uki);
    if (r < 0) {
        return r;
    }
    if (tftp_files) {
        r = files_add_source(tftp_files, "boot", uki_source, b);
    }
    return r;
}

int boot_routes_register_metrics(boot_routes *b, metrics *m)
{
    return b->uki ? uki_cache_register_metrics(b->uki, m) : 0;
}

/* ---- Lifecycle --------------------------------------------------------- */

/* The overlay as served: gzip'ed. The kernel's EFI stub loads the initrd=
 * files back to back without padding, and Linux takes an uncompressed newc
 * archive only at a 4-byte aligned offset (init/initramfs.c), so after a
 * distro initrd of any size a plain cpio is lost under UEFI ("invalid magic
 * at start of compressed archive"); a gzip member is found at any offset
 * (iPXE's BIOS path aligns initrds itself, which hid this). */
static int overlay_gzip(boot_routes *b)
{
    _cleanup_free_ uint8_t *cpio = NULL;
    size_t cpio_len = 0;
    int r = render_overlay(OVERLAY_WAIT_SECONDS, &cpio, &cpio_len);
    if (r < 0) {
        return r;
    }
    z_stream z = { 0 };
    /* windowBits 15 + 16: a gzip wrapper, not zlib's. */
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        return -ENOMEM;
    }
    size_t cap = deflateBound(&z, cpio_len) + 32;
    uint8_t *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return -ENOMEM;
    }
    z.next_in = cpio;
    z.avail_in = (uInt)cpio_len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(out);
        return -EIO;
    }
    b->overlay = out;
    b->overlay_len = len;
    return 0;
}

int boot_routes_new(uv_loop_t *loop, http_server *srv, const render_context *ctx,
                    const intents_store *intents, progress *prog, files *f, boot_routes **ret)
{
    boot_routes *b = calloc(1, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    b->ctx = ctx;
    b->intents = intents;
    b->prog = prog;
    b->files = f;
    int r = overlay_gzip(b);
    if (r >= 0) {
        uint8_t sum[32];
        char hex[2 * 8 + 1];
        r = sha256_buffer(b->overlay, b->overlay_len, sum);
        hex_encode(sum, 8, hex);
        snprintf(b->overlay_etag, sizeof(b->overlay_etag), "\"%s\"", hex);
    }
    if (r >= 0) {
        r = uv_timer_init(loop, &b->tick);
        b->tick.data = b;
        b->tick_open = r >= 0;
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
    if (r >= 0) {
        r = http_server_route(srv, HTTP_METHOD_POST, "/phone-home/", on_phone_home, b);
    }
    if (r >= 0 && f) {
        r = http_server_route(srv, HTTP_METHOD_GET, "/images/", on_image, b);
    }
    if (r >= 0) {
        r = http_server_route(srv, HTTP_METHOD_GET, RENDER_SEED_DIR, on_seed, b);
    }
    if (r >= 0) {
        /* /seed/<id>/<token>/...: segment 1 is the token. */
        r = http_server_redact_segment(srv, RENDER_SEED_DIR, 1);
    }
    if (r >= 0) {
        r = http_server_route(srv, HTTP_METHOD_GET, RENDER_DEPLOY_DIR, on_deploy, b);
    }
    if (r < 0) {
        boot_routes_close(b);
        return r;
    }
    *ret = b;
    return 0;
}

void boot_routes_serve_ramdisk(boot_routes *b, files *ramdisk)
{
    b->ramdisk = ramdisk;
}

void boot_routes_on_link(boot_routes *b, boot_on_link_fn fn, void *userdata)
{
    b->on_link = fn;
    b->on_link_data = userdata;
}

static void free_after_close(uv_handle_t *h)
{
    boot_routes *b = h->data;
    free(b->overlay);
    free(b);
}

void boot_routes_close(boot_routes *b)
{
    if (!b) {
        return;
    }
    while (b->transfers) {
        transfer_free(b->transfers);
    }
    uki_cache_close(b->uki);
    b->uki = NULL;
    if (b->tick_open) {
        b->tick_open = false;
        uv_close((uv_handle_t *)&b->tick, free_after_close);
    } else {
        free(b->overlay);
        free(b);
    }
}
