#include "render/cmdline.h"

#include <errno.h>
#include <string.h>

#include "render/host-internal.h"
#include "util.h"

static bool intent_has_mac(const intent *in, const uint8_t mac[6])
{
    for (size_t i = 0; i < in->n_macs && i < INTENT_MAX_MACS; i++) {
        if (memcmp(in->macs[i], mac, 6) == 0) {
            return true;
        }
    }
    return false;
}

int render_cmdline(const render_context *ctx, const intent *in, const uint8_t mac[6], char **ret,
                   size_t *ret_len)
{
    render_host h;
    int r = render_host_resolve(ctx, in, &h);
    if (r < 0) {
        return r;
    }
    if (!intent_has_mac(in, mac)) {
        return -EINVAL;
    }

    rbuf b = { 0 };
    rbuf_printf(&b, "ifname=bootnet:%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
    if (h.profile->ip == IP_MODE_DHCP6) {
        rbuf_puts(&b, " ip=bootnet:dhcp6");
    } else {
        /* dracut.cmdline(7): ip=<client-IP>:[<peer>]:<gateway-IP>:<netmask>:
         * <client_hostname>:<interface>:{none|...}; IPv6 addresses in
         * brackets, the prefix length in the netmask field. */
        rbuf_printf(&b, " ip=[%s]::", h.address);
        if (h.gateway[0]) {
            rbuf_printf(&b, "[%s]", h.gateway);
        }
        rbuf_printf(&b, ":%u:%s:bootnet:none", h.in->prefix_len, h.hostname);
    }
    for (size_t i = 0; i < h.n_dns; i++) {
        char a[RENDER_ADDR_LEN];
        render_format_addr(&h.dns[i], a);
        rbuf_printf(&b, " nameserver=%s", a);
    }
    rbuf_printf(&b, " BOOTIF=01-%02x-%02x-%02x-%02x-%02x-%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
    rbuf_printf(&b, " inst.ks=%s/ks/%s?token=%s", ctx->base_url, in->install_id, in->token);
    if (model_profile_image(h.profile, IMAGE_STAGE2)) {
        rbuf_printf(&b, " inst.stage2=%s/images/%s/", ctx->base_url, h.profile->name);
    }
    /* For the image deploy and a kickstart's %pre (/proc/cmdline); the
     * profile's value was checked at load (model_root_device_valid). */
    if (h.profile->root_device) {
        rbuf_printf(&b, " rackboot.root_device=%s", h.profile->root_device);
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
