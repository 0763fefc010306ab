#include "render/context.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "render/host-internal.h"
#include "util.h"

int render_context_init(render_context *ctx, const struct in6_addr *advertise, uint16_t http_port)
{
    if (IN6_IS_ADDR_UNSPECIFIED(advertise) || IN6_IS_ADDR_V4MAPPED(advertise)) {
        return -EINVAL;
    }
    char addr[RENDER_ADDR_LEN];
    render_format_addr(advertise, addr);
    render_context c = { 0 };
    int n;
    if (http_port == 0 || http_port == 80) {
        n = snprintf(c.base_url, sizeof(c.base_url), "http://[%s]", addr);
    } else {
        n = snprintf(c.base_url, sizeof(c.base_url), "http://[%s]:%u", addr, http_port);
    }
    RB_ASSERT(n > 0 && (size_t)n < sizeof(c.base_url));
    *ctx = c;
    return 0;
}

/* `path` without its optional leading '/', if it starts with "<dir>/":
 * what follows, else NULL. */
static const char *after_dir(const char *path, const char *dir)
{
    if (path[0] == '/') {
        path++;
    }
    size_t n = strlen(dir);
    if (strncmp(path, dir, n) != 0 || path[n] != '/') {
        return NULL;
    }
    return path + n + 1;
}

/* "/boot/<mac><ext>": the MAC of a path under /boot/ ending in `ext`. */
static int boot_path_parse(const char *path, const char *ext, uint8_t ret_mac[6])
{
    const char *rest = after_dir(path, "boot");
    if (!rest) {
        return -EINVAL;
    }
    /* The longest form: 6 * 2 digits + 5 * "%3A". */
    char mac[6 * 2 + 5 * 3 + 1];
    size_t n = strlen(rest), e = strlen(ext);
    if (n <= e || strcmp(rest + n - e, ext) != 0 || n - e >= sizeof(mac)) {
        return -EINVAL;
    }
    memcpy(mac, rest, n - e);
    mac[n - e] = '\0';
    return parse_mac(mac, ret_mac);
}

int render_boot_path_parse(const char *path, uint8_t ret_mac[6])
{
    return boot_path_parse(path, ".ipxe", ret_mac);
}

int render_uki_path_parse(const char *path, uint8_t ret_mac[6])
{
    return boot_path_parse(path, RENDER_UKI_SUFFIX, ret_mac);
}

static int id_path_parse(const char *path, const char *dir, const char **ret_id, size_t *ret_len)
{
    const char *id = after_dir(path, dir);
    if (!id || !render_id_valid(id)) {
        return -EINVAL;
    }
    *ret_id = id;
    *ret_len = strlen(id);
    return 0;
}

int render_ks_path_parse(const char *path, const char **ret_id, size_t *ret_len)
{
    return id_path_parse(path, "ks", ret_id, ret_len);
}

int render_progress_path_parse(const char *path, const char **ret_id, size_t *ret_len)
{
    return id_path_parse(path, "progress", ret_id, ret_len);
}

int render_phone_home_path_parse(const char *path, const char **ret_id, size_t *ret_len)
{
    return id_path_parse(path, "phone-home", ret_id, ret_len);
}

static const char *const seed_doc_names[] = {
    [RENDER_SEED_META_DATA] = "meta-data",
    [RENDER_SEED_NETWORK_CONFIG] = "network-config",
    [RENDER_SEED_USER_DATA] = "user-data",
};

const char *render_seed_doc_name(render_seed_doc doc)
{
    RB_ASSERT((size_t)doc < ARRAY_SIZE(seed_doc_names));
    return seed_doc_names[doc];
}

/* The next '/'-terminated segment of *p, as a string in `buf`; *p moves
 * past its '/'. -EINVAL without a '/' or when it does not fit. */
static int next_segment(const char **p, char *buf, size_t size, const char **ret_start)
{
    const char *slash = strchr(*p, '/');
    if (!slash || slash == *p || (size_t)(slash - *p) >= size) {
        return -EINVAL;
    }
    size_t n = (size_t)(slash - *p);
    memcpy(buf, *p, n);
    buf[n] = '\0';
    if (ret_start) {
        *ret_start = *p;
    }
    *p = slash + 1;
    return 0;
}

int render_seed_path_parse(const char *path, render_seed_path *ret)
{
    const char *p = after_dir(path, "seed");
    if (!p) {
        return -EINVAL;
    }
    render_seed_path s = { 0 };
    /* Ids and tokens are short (the controller's are 32 characters); the
     * longest MAC form is 6 * 2 digits + 5 * "%3A". */
    char id[129], token[129], mac[6 * 2 + 5 * 3 + 1];
    if (next_segment(&p, id, sizeof(id), &s.id) < 0 || !render_id_valid(id) ||
        next_segment(&p, token, sizeof(token), &s.token) < 0 || !render_id_valid(token) ||
        next_segment(&p, mac, sizeof(mac), NULL) < 0 || parse_mac(mac, s.mac) < 0) {
        return -EINVAL;
    }
    s.id_len = strlen(id);
    s.token_len = strlen(token);
    for (size_t i = 0; i < ARRAY_SIZE(seed_doc_names); i++) {
        if (streq(p, seed_doc_names[i])) {
            s.doc = (render_seed_doc)i;
            *ret = s;
            return 0;
        }
    }
    return -EINVAL;
}

static int install_url(const render_context *ctx, const intent *in, const char *dir, char **ret)
{
    if (!render_id_valid(in->install_id) || !render_id_valid(in->token)) {
        return -EINVAL;
    }
    rbuf b = { 0 };
    rbuf_printf(&b, "%s/%s/%s?token=%s", ctx->base_url, dir, in->install_id, in->token);
    return rbuf_finish(&b, ret, NULL);
}

int render_kickstart_url(const render_context *ctx, const intent *in, char **ret)
{
    return install_url(ctx, in, "ks", ret);
}

int render_progress_url(const render_context *ctx, const intent *in, char **ret)
{
    return install_url(ctx, in, "progress", ret);
}

int render_phone_home_url(const render_context *ctx, const intent *in, char **ret)
{
    return install_url(ctx, in, "phone-home", ret);
}

int render_seed_url(const render_context *ctx, const intent *in, const uint8_t mac[6], char **ret)
{
    if (!render_id_valid(in->install_id) || !render_id_valid(in->token)) {
        return -EINVAL;
    }
    rbuf b = { 0 };
    rbuf_printf(&b, "%s" RENDER_SEED_DIR "%s/%s/%02x-%02x-%02x-%02x-%02x-%02x", ctx->base_url,
                in->install_id, in->token, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    return rbuf_finish(&b, ret, NULL);
}

int render_host_resolve(const render_context *ctx, const intent *in, render_host *ret)
{
    const model_profile *p = in->profile;
    if (!p || !render_id_valid(p->name) || !render_id_valid(in->install_id) ||
        !render_id_valid(in->token) || !render_cmdline_extra_valid(p->cmdline)) {
        return -EINVAL;
    }
    render_host h = { .in = in, .profile = p };
    h.hostname = in->hostname ? in->hostname : in->host;
    /* The hostname lands in ip=, in kickstart lines and in shell: a quote or
     * a newline in it must never get that far. */
    if (!h.hostname || !dns_name_valid(h.hostname) || !template_value_safe(h.hostname)) {
        return -EINVAL;
    }
    if (in->prefix_len < 1 || in->prefix_len > 128) {
        return -EINVAL;
    }
    render_format_addr(&in->address, h.address);
    if (in->has_gateway) {
        render_format_addr(&in->gateway, h.gateway);
    } else if (ctx->has_gateway) {
        render_format_addr(&ctx->gateway, h.gateway);
    }
    if (in->n_dns > 0) {
        h.dns = in->dns;
        h.n_dns = in->n_dns;
    } else {
        h.dns = ctx->dns;
        h.n_dns = ctx->n_dns;
    }
    if (in->n_search > 0) {
        h.search = (const char *const *)in->search;
        h.n_search = in->n_search;
    } else {
        h.search = ctx->search;
        h.n_search = ctx->n_search;
    }
    if (h.n_dns > INTENT_MAX_DNS || h.n_search > INTENT_MAX_SEARCH) {
        return -EINVAL;
    }
    for (size_t i = 0; i < h.n_search; i++) {
        if (!h.search[i] || !dns_name_valid(h.search[i]) || !template_value_safe(h.search[i])) {
            return -EINVAL;
        }
    }
    *ret = h;
    return 0;
}

void render_put_dns_list(rbuf *b, const render_host *h)
{
    for (size_t i = 0; i < h->n_dns; i++) {
        char a[RENDER_ADDR_LEN];
        render_format_addr(&h->dns[i], a);
        if (i > 0) {
            rbuf_putc(b, ',');
        }
        rbuf_puts(b, a);
    }
}

void render_put_search_list(rbuf *b, const render_host *h)
{
    for (size_t i = 0; i < h->n_search; i++) {
        if (i > 0) {
            rbuf_putc(b, ',');
        }
        rbuf_puts(b, h->search[i]);
    }
}

int render_host_expand(const render_context *ctx, const render_host *h, const char *tmpl,
                       char **ret, size_t *ret_len)
{
    const intent *in = h->in;
    _cleanup_free_ char *progress = NULL;
    int r = render_progress_url(ctx, in, &progress);
    if (r < 0) {
        return r;
    }
    char prefix[4];
    snprintf(prefix, sizeof(prefix), "%u", in->prefix_len);

    rbuf lists = { 0 };
    render_put_dns_list(&lists, h);
    rbuf_putc(&lists, '\0');
    size_t search_at = lists.len;
    render_put_search_list(&lists, h);
    _cleanup_free_ char *listbuf = NULL;
    r = rbuf_finish(&lists, &listbuf, NULL);
    if (r < 0) {
        return r;
    }

    const template_var vars[] = {
        { "hostname", h->hostname },
        { "address", h->address },
        { "prefix", prefix },
        { "gateway", h->gateway },
        { "dns", listbuf },
        { "search", listbuf + search_at },
        { "install_id", in->install_id },
        { "token", in->token },
        { "progress_url", progress },
        { "profile", h->profile->name },
        { "agent_url", ctx->base_url },
    };
    if (!tmpl) {
        tmpl = "";
    }
    return template_expand(tmpl, strlen(tmpl), vars, ARRAY_SIZE(vars), ret, ret_len);
}
