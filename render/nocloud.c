#include "render/nocloud.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "render/host-internal.h"
#include "sha256.h"
#include "util.h"

/* cloud-init 22.4's networkd renderer writes the interface's settings to
 * this file (cloudinit/net/networkd.py create_network_file); a drop-in
 * beside it is read after it. */
#define NETWORKD_FILE "/etc/systemd/network/10-cloud-init-" RENDER_NOCLOUD_IFNAME ".network"
#define NO_RA_DROP_IN NETWORKD_FILE ".d/50-rackboot-no-ra.conf"
#define NO_RA_CONTENT                                                                              \
    "# rackboot: the static address and gateway only; no SLAAC, no DHCPv6\n"                       \
    "# started by a router advertisement's M flag.\n"                                              \
    "[Network]\n"                                                                                  \
    "IPv6AcceptRA=no\n"
/* Only where networkd runs (an image may use another renderer, for which
 * network-config's accept-ra says the same and the drop-in is inert). */
#define NO_RA_APPLY                                                                                \
    "if command -v networkctl >/dev/null 2>&1 && systemctl is-active --quiet systemd-networkd; "   \
    "then networkctl reload && networkctl reconfigure " RENDER_NOCLOUD_IFNAME "; fi"

#define PHONE_HOME_TRIES 10

/* How cloud-init merges the operator's part into rackboot's (nocloud.h). */
#define OPERATOR_MERGE_TYPE "dict(no_replace,recurse_list)+list(append)+str()"

void render_nocloud_clear(render_nocloud_seed *s)
{
    free(s->meta_data);
    free(s->network_config);
    free(s->user_data);
    memset(s, 0, sizeof(*s));
}

/* Building JSON: a failed allocation anywhere makes the document NULL (the
 * jansson setters steal their value and fail on NULL), checked once. */
static void put(json_t *o, const char *key, json_t *v, bool *failed)
{
    if (!o || json_object_set_new(o, key, v) < 0) {
        *failed = true;
    }
}

static void push(json_t *a, json_t *v, bool *failed)
{
    if (!a || json_array_append_new(a, v) < 0) {
        *failed = true;
    }
}

/* The document as text, with a final newline; `header` (may be NULL) is
 * written first. */
static int dump(json_t *doc, bool failed, const char *header, char **ret, size_t *ret_len)
{
    char *text = (doc && !failed) ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (!text) {
        return -ENOMEM;
    }
    rbuf b = { 0 };
    if (header) {
        rbuf_puts(&b, header);
    }
    rbuf_puts(&b, text);
    rbuf_putc(&b, '\n');
    free(text);
    return rbuf_finish(&b, ret, ret_len);
}

static json_t *addr_array(const struct in6_addr *addrs, size_t n, bool *failed)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        char s[RENDER_ADDR_LEN];
        render_format_addr(&addrs[i], s);
        push(a, json_string(s), failed);
    }
    return a;
}

static json_t *string_array(const char *const *v, size_t n, bool *failed)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        push(a, json_string(v[i]), failed);
    }
    return a;
}

/* The host's short name and, when known, its FQDN. */
typedef struct names {
    char hostname[INTENT_MAX_NAME + 1];
    char fqdn[INTENT_MAX_NAME + 1]; /* "" when unknown */
} names;

static void host_names(const render_host *h, names *ret)
{
    names n = { 0 };
    const char *dot = strchr(h->hostname, '.');
    int w;
    if (dot) {
        w = snprintf(n.hostname, sizeof(n.hostname), "%.*s", (int)(dot - h->hostname), h->hostname);
        w = w < 0 ? w : snprintf(n.fqdn, sizeof(n.fqdn), "%s", h->hostname);
    } else {
        w = snprintf(n.hostname, sizeof(n.hostname), "%s", h->hostname);
        if (w >= 0 && h->n_search > 0) {
            w = snprintf(n.fqdn, sizeof(n.fqdn), "%s.%s", h->hostname, h->search[0]);
        }
    }
    /* A longer FQDN is no DNS name: the host keeps its short name. */
    if (w < 0 || (size_t)w >= sizeof(n.fqdn)) {
        n.fqdn[0] = '\0';
    }
    *ret = n;
}

static int meta_data(const render_host *h, const names *n, render_nocloud_seed *s)
{
    bool failed = false;
    json_t *doc = json_object();
    put(doc, "instance-id", json_string(h->in->install_id), &failed);
    put(doc, "local-hostname", json_string(n->fqdn[0] ? n->fqdn : n->hostname), &failed);
    return dump(doc, failed, NULL, &s->meta_data, &s->meta_data_len);
}

/* Static with a gateway: the only case where RAs are turned off. */
static bool static_only(const render_host *h)
{
    return h->profile->ip == IP_MODE_STATIC && h->gateway[0] != '\0';
}

static int network_config(const render_host *h, const uint8_t mac[6], render_nocloud_seed *s)
{
    bool failed = false;
    char macs[FORMAT_MAC_LEN];
    snprintf(macs, sizeof(macs), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5]);

    json_t *eth = json_object();
    json_t *match = json_object();
    put(match, "macaddress", json_string(macs), &failed);
    put(eth, "match", match, &failed);
    put(eth, "set-name", json_string(RENDER_NOCLOUD_IFNAME), &failed);
    put(eth, "dhcp4", json_false(), &failed);
    if (h->profile->ip == IP_MODE_DHCP6) {
        put(eth, "dhcp6", json_true(), &failed);
        put(eth, "accept-ra", json_true(), &failed);
    } else {
        char cidr[RENDER_ADDR_LEN + 4];
        snprintf(cidr, sizeof(cidr), "%s/%u", h->address, h->in->prefix_len);
        put(eth, "dhcp6", json_false(), &failed);
        /* Without a gateway, the routers' advertisements are the only
         * default route the host can have. */
        put(eth, "accept-ra", json_boolean(!static_only(h)), &failed);
        json_t *addrs = json_array();
        push(addrs, json_string(cidr), &failed);
        put(eth, "addresses", addrs, &failed);
        /* gateway6, not routes: [{to: "::/0", via: GW}]: cloud-init 22.4's v2
         * parser takes the 0 prefix for none and its networkd renderer
         * writes Destination=::/64, which is no default route
         * (tests/tools/nocloud_check.py renders it to see). */
        if (h->gateway[0]) {
            put(eth, "gateway6", json_string(h->gateway), &failed);
        }
    }
    if (h->n_dns > 0 || h->n_search > 0) {
        json_t *ns = json_object();
        if (h->n_dns > 0) {
            put(ns, "addresses", addr_array(h->dns, h->n_dns, &failed), &failed);
        }
        if (h->n_search > 0) {
            put(ns, "search", string_array(h->search, h->n_search, &failed), &failed);
        }
        put(eth, "nameservers", ns, &failed);
    }
    json_t *ethernets = json_object();
    put(ethernets, RENDER_NOCLOUD_IFNAME, eth, &failed);
    json_t *doc = json_object();
    put(doc, "version", json_integer(2), &failed);
    put(doc, "ethernets", ethernets, &failed);
    return dump(doc, failed, NULL, &s->network_config, &s->network_config_len);
}

/* rackboot's #cloud-config document. */
static int cloud_config(const render_context *ctx, const render_host *h, const names *n, char **ret,
                        size_t *ret_len)
{
    const model_profile *p = h->profile;
    _cleanup_free_ char *phone_home = NULL;
    int r = render_phone_home_url(ctx, h->in, &phone_home);
    if (r < 0) {
        return r;
    }
    bool failed = false;
    json_t *doc = json_object();
    put(doc, "hostname", json_string(n->hostname), &failed);
    if (n->fqdn[0]) {
        put(doc, "fqdn", json_string(n->fqdn), &failed);
    }
    put(doc, "preserve_hostname", json_false(), &failed);
    if (p->n_ssh_keys > 0) {
        put(doc, "ssh_authorized_keys",
            string_array((const char *const *)p->ssh_keys, p->n_ssh_keys, &failed), &failed);
    }
    if (static_only(h)) {
        json_t *file = json_object();
        put(file, "path", json_string(NO_RA_DROP_IN), &failed);
        put(file, "owner", json_string("root:root"), &failed);
        put(file, "permissions", json_string("0644"), &failed);
        put(file, "content", json_string(NO_RA_CONTENT), &failed);
        json_t *files = json_array();
        push(files, file, &failed);
        put(doc, "write_files", files, &failed);
        json_t *cmd = json_array();
        push(cmd, json_string("sh"), &failed);
        push(cmd, json_string("-c"), &failed);
        push(cmd, json_string(NO_RA_APPLY), &failed);
        json_t *runcmd = json_array();
        push(runcmd, cmd, &failed);
        put(doc, "runcmd", runcmd, &failed);
    }
    json_t *ph = json_object();
    put(ph, "url", json_string(phone_home), &failed);
    json_t *post = json_array();
    push(post, json_string("instance_id"), &failed);
    push(post, json_string("hostname"), &failed);
    put(ph, "post", post, &failed);
    put(ph, "tries", json_integer(PHONE_HOME_TRIES), &failed);
    put(doc, "phone_home", ph, &failed);
    return dump(doc, failed, "#cloud-config\n", ret, ret_len);
}

static bool is_7bit(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] >= 0x80) {
            return false;
        }
    }
    return true;
}

/* RFC 2045 §6.8: base64 in lines of 76 characters. */
static void put_base64(rbuf *b, const unsigned char *s, size_t len)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t col = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)s[i + 1] << 8;
        }
        if (i + 2 < len) {
            v |= s[i + 2];
        }
        char q[4] = { digits[(v >> 18) & 63], digits[(v >> 12) & 63],
                      i + 1 < len ? digits[(v >> 6) & 63] : '=',
                      i + 2 < len ? digits[v & 63] : '=' };
        rbuf_add(b, q, 4);
        col += 4;
        if (col == 76) {
            rbuf_putc(b, '\n');
            col = 0;
        }
    }
    if (col > 0) {
        rbuf_putc(b, '\n');
    }
}

/* user-data: rackboot's part and the operator's, as nocloud.h explains. */
static int multipart(const char *ours, size_t ours_len, const char *theirs, size_t theirs_len,
                     char **ret, size_t *ret_len)
{
    uint8_t digest[SHA256_LEN];
    rbuf both = { 0 };
    rbuf_add(&both, ours, ours_len);
    rbuf_add(&both, theirs, theirs_len);
    _cleanup_free_ char *joined = NULL;
    size_t joined_len = 0;
    int r = rbuf_finish(&both, &joined, &joined_len);
    if (r < 0) {
        return r;
    }
    r = sha256_buffer(joined, joined_len, digest);
    if (r < 0) {
        return r;
    }
    char hex[SHA256_HEX_LEN + 1];
    sha256_to_hex(digest, hex);
    hex[32] = '\0';

    bool seven = is_7bit(theirs, theirs_len);
    rbuf b = { 0 };
    /* MIME-Version first: cloud-init looks for it in the first 4 KiB. */
    rbuf_puts(&b, "MIME-Version: 1.0\n");
    rbuf_printf(&b, "Content-Type: multipart/mixed; boundary=\"rackboot-%s\"\n\n", hex);
    rbuf_printf(&b, "--rackboot-%s\n", hex);
    rbuf_puts(&b, "Content-Type: text/cloud-config; charset=\"us-ascii\"\n"
                  "Content-Transfer-Encoding: 7bit\n"
                  "Content-Disposition: attachment; filename=\"rackboot.cfg\"\n\n");
    rbuf_add(&b, ours, ours_len);
    rbuf_printf(&b, "\n--rackboot-%s\n", hex);
    rbuf_printf(&b,
                "Content-Type: text/plain; charset=\"utf-8\"\n"
                "Content-Transfer-Encoding: %s\n"
                "Content-Disposition: attachment; filename=\"user-data\"\n"
                "Merge-Type: " OPERATOR_MERGE_TYPE "\n\n",
                seven ? "7bit" : "base64");
    if (seven) {
        rbuf_add(&b, theirs, theirs_len);
        if (theirs_len > 0 && theirs[theirs_len - 1] != '\n') {
            rbuf_putc(&b, '\n');
        }
    } else {
        put_base64(&b, (const unsigned char *)theirs, theirs_len);
    }
    rbuf_printf(&b, "\n--rackboot-%s--\n", hex);
    return rbuf_finish(&b, ret, ret_len);
}

static int user_data(const render_context *ctx, const render_host *h, const names *n,
                     render_nocloud_seed *s)
{
    const model_profile *p = h->profile;
    _cleanup_free_ char *ours = NULL;
    size_t ours_len = 0;
    int r = cloud_config(ctx, h, n, &ours, &ours_len);
    if (r < 0) {
        return r;
    }
    if (!p->user_data) {
        s->user_data = TAKE_PTR(ours);
        s->user_data_len = ours_len;
        return 0;
    }
    _cleanup_free_ char *theirs = NULL;
    size_t theirs_len = 0;
    r = render_host_expand(ctx, h, p->user_data, &theirs, &theirs_len);
    if (r < 0) {
        return r;
    }
    return multipart(ours, ours_len, theirs, theirs_len, &s->user_data, &s->user_data_len);
}

int render_nocloud(const render_context *ctx, const intent *in, const uint8_t mac[6],
                   render_nocloud_seed *ret)
{
    render_host h;
    int r = render_host_resolve(ctx, in, &h);
    if (r < 0) {
        return r;
    }
    const model_profile *p = h.profile;
    if (p->n_ssh_keys > MODEL_SSH_KEYS_MAX || model_user_data_is_mime(p->user_data)) {
        return -EINVAL;
    }
    for (size_t i = 0; i < p->n_ssh_keys; i++) {
        if (!model_ssh_key_valid(p->ssh_keys[i])) {
            return -EINVAL;
        }
    }
    names n;
    host_names(&h, &n);
    render_nocloud_seed s = { 0 };
    r = meta_data(&h, &n, &s);
    if (r >= 0) {
        r = network_config(&h, mac, &s);
    }
    if (r >= 0) {
        r = user_data(ctx, &h, &n, &s);
    }
    if (r < 0) {
        render_nocloud_clear(&s);
        return r;
    }
    *ret = s;
    return 0;
}
