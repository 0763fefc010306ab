#include "render/cmdline.h"

#include <errno.h>
#include <string.h>

#include "render/host-internal.h"
#include "sha256.h"
#include "util.h"

/* What follows the network words, by profile kind (model/profile.h): the
 * installer's, or the deploy ramdisk's (deploy-ramdisk/ramdisk-init.sh). */
typedef int (*kind_args_fn)(rbuf *b, const render_context *ctx, const render_host *h,
                            const uint8_t mac[6]);

static int install_args(rbuf *b, const render_context *ctx, const render_host *h,
                        const uint8_t mac[6])
{
    (void)mac;
    const intent *in = h->in;
    rbuf_printf(b, " inst.ks=%s/ks/%s?token=%s", ctx->base_url, in->install_id, in->token);
    if (model_profile_image(h->profile, IMAGE_STAGE2)) {
        rbuf_printf(b, " inst.stage2=%s/images/%s/", ctx->base_url, h->profile->name);
    }
    /* For a kickstart's %pre (/proc/cmdline); the profile's value was
     * checked at load (model_root_device_valid). */
    if (h->profile->root_device) {
        rbuf_printf(b, " rackboot.root_device=%s", h->profile->root_device);
    }
    return 0;
}

static int image_args(rbuf *b, const render_context *ctx, const render_host *h,
                      const uint8_t mac[6])
{
    const model_profile *p = h->profile;
    const model_image *disk = model_profile_image(p, IMAGE_DISK);
    /* The ramdisk brings up exactly the static address and a default route
     * through the gateway; it has no DHCPv6 client and does not wait for
     * router advertisements. */
    if (!disk || p->ip != IP_MODE_STATIC || !h->gateway[0]) {
        return -EINVAL;
    }
    _cleanup_free_ char *progress = NULL, *seed = NULL;
    int r = render_progress_url(ctx, h->in, &progress);
    if (r >= 0) {
        r = render_seed_url(ctx, h->in, mac, &seed);
    }
    if (r < 0) {
        return r;
    }
    char sha[SHA256_HEX_LEN + 1];
    sha256_to_hex(disk->sha256, sha);
    /* No rackboot.image_size: the ramdisk wants the uncompressed size,
     * which the profile does not know (model_image.size is the size as
     * served, compressed or not). */
    rbuf_printf(b, " rackboot.image=%s/images/%s/%s", ctx->base_url, p->name,
                model_image_path(disk));
    rbuf_printf(b, " rackboot.image_sha256=%s", sha);
    rbuf_printf(b, " rackboot.root_device=%s", p->root_device ? p->root_device : "auto");
    rbuf_printf(b, " rackboot.progress=%s", progress);
    rbuf_printf(b, " rackboot.seed=%s", seed);
    return 0;
}

/* Debian's installer: preseed's and netcfg's words (preseed.h). netcfg
 * reads these before it can fetch anything; with autoconfiguration off it
 * waits neither for DHCPv4 nor for router advertisements. A value with
 * spaces is quoted: the kernel passes it whole to init's environment, where
 * d-i's env2debconf reads it. */
static int debian_installer_args(rbuf *b, const render_context *ctx, const render_host *h,
                                 const uint8_t mac[6])
{
    (void)mac;
    if (!h->gateway[0]) {
        return -EINVAL; /* netcfg would ask for one: a stop at a prompt */
    }
    _cleanup_free_ char *url = NULL;
    int r = render_kickstart_url(ctx, h->in, &url);
    if (r < 0) {
        return r;
    }
    render_di_names names;
    render_host_di_names(h, &names);
    rbuf_printf(b, " auto=true priority=critical url=%s", url);
    rbuf_puts(b, " interface=auto netcfg/disable_autoconfig=true");
    rbuf_printf(b, " netcfg/get_ipaddress=%s/%u netcfg/get_gateway=%s", h->address,
                h->in->prefix_len, h->gateway);
    if (h->n_dns > 0) {
        rbuf_puts(b, h->n_dns > 1 ? " \"netcfg/get_nameservers=" : " netcfg/get_nameservers=");
        for (size_t i = 0; i < h->n_dns; i++) {
            char a[RENDER_ADDR_LEN];
            render_format_addr(&h->dns[i], a);
            rbuf_printf(b, "%s%s", i ? " " : "", a);
        }
        rbuf_puts(b, h->n_dns > 1 ? "\"" : "");
    }
    rbuf_printf(b, " netcfg/confirm_static=true hostname=%s", names.host);
    if (names.domain[0]) {
        rbuf_printf(b, " domain=%s", names.domain);
    }
    return 0;
}

/* By profile kind: whether the line starts with dracut's network words
 * (ifname=, ip=, nameserver=), and what follows them. */
static const struct {
    bool dracut_network;
    kind_args_fn args;
} kinds[] = {
    [PROFILE_INSTALL] = { true, install_args },
    [PROFILE_IMAGE] = { true, image_args },
    [PROFILE_DEBIAN_INSTALLER] = { false, debian_installer_args },
};

/* dracut.cmdline(7)'s network words, for what boots dracut (Anaconda's
 * initrd) or reads the same syntax (the deploy ramdisk). */
static void put_dracut_network(rbuf *b, const render_host *h, const uint8_t mac[6])
{
    rbuf_printf(b, "ifname=bootnet:%02x:%02x:%02x:%02x:%02x:%02x ", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
    if (h->profile->ip == IP_MODE_DHCP6) {
        rbuf_puts(b, "ip=bootnet:dhcp6 ");
    } else {
        /* ip=<client-IP>:[<peer>]:<gateway-IP>:<netmask>:<client_hostname>:
         * <interface>:{none|...}; IPv6 addresses in brackets, the prefix
         * length in the netmask field. */
        rbuf_printf(b, "ip=[%s]::", h->address);
        if (h->gateway[0]) {
            rbuf_printf(b, "[%s]", h->gateway);
        }
        rbuf_printf(b, ":%u:%s:bootnet:none ", h->in->prefix_len, h->hostname);
    }
    for (size_t i = 0; i < h->n_dns; i++) {
        char a[RENDER_ADDR_LEN];
        render_format_addr(&h->dns[i], a);
        rbuf_printf(b, "nameserver=%s ", a);
    }
}

int render_cmdline(const render_context *ctx, const intent *in, const uint8_t mac[6], char **ret,
                   size_t *ret_len)
{
    render_host h;
    int r = render_host_resolve(ctx, in, &h);
    if (r < 0) {
        return r;
    }
    if (!intent_has_mac(in, mac) || (size_t)h.profile->kind >= ARRAY_SIZE(kinds)) {
        return -EINVAL;
    }

    rbuf b = { 0 };
    if (kinds[h.profile->kind].dracut_network) {
        put_dracut_network(&b, &h, mac);
    }
    /* pxelinux's form: dracut and NetworkManager strip "01-"; d-i's netcfg
     * takes the interface of that MAC. */
    rbuf_printf(&b, "BOOTIF=01-%02x-%02x-%02x-%02x-%02x-%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
    r = kinds[h.profile->kind].args(&b, ctx, &h, mac);
    if (r < 0) {
        rbuf_fail(&b, r);
    }
    if (!strempty(h.profile->cmdline)) {
        rbuf_putc(&b, ' ');
        rbuf_puts(&b, h.profile->cmdline);
    }
    if (!b.err && b.len >= RENDER_CMDLINE_MAX) {
        rbuf_fail(&b, -E2BIG);
    }
    return rbuf_finish(&b, ret, ret_len);
}
