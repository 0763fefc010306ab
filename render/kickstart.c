#include "render/kickstart.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/template.h"
#include "render/host-internal.h"
#include "util.h"

/* Best effort: a progress report must never fail or stall the install for
 * long (at most 6 tries of 10 s plus the delays). */
#define CURL_POST "curl -g -fsS -m 10 --retry 5 --retry-delay 2 -o /dev/null -d phase="

static void put_post(rbuf *b, const char *phase, const char *url)
{
    /* url passed template_value_safe() (and is made of id characters), so
     * double quotes hold it. */
    rbuf_printf(b, CURL_POST "%s \"%s\" || true\n", phase, url);
}

static const char keep_ra_pre[] =
    "%pre\n"
    "# rackboot keep_ra: NetworkManager ignores router advertisements with\n"
    "# ipv6.method manual or dhcp; method auto keeps the static addresses and\n"
    "# takes the default route from the routers' advertisements.\n"
    "for rb_uuid in $(nmcli -g UUID connection show --active 2>/dev/null); do\n"
    "    case \"$(nmcli -g ipv6.method connection show \"$rb_uuid\" 2>/dev/null)\" in\n"
    "    manual | dhcp)\n"
    "        rb_dev=$(nmcli -g GENERAL.DEVICES connection show \"$rb_uuid\" 2>/dev/null)\n"
    "        nmcli connection modify \"$rb_uuid\" ipv6.method auto &&\n"
    "            nmcli device reapply \"$rb_dev\" || true\n"
    "        ;;\n"
    "    esac\n"
    "done\n"
    "%end\n";

static const char keep_ra_post[] =
    "%post\n"
    "# rackboot keep_ra: the same for the installed system (keyfiles on EL9,\n"
    "# ifcfg files on EL8), before its first boot.\n"
    "for rb_f in /etc/NetworkManager/system-connections/*.nmconnection; do\n"
    "    [ -f \"$rb_f\" ] || continue\n"
    "    sed -i -e '/^\\[ipv6\\]/,/^\\[/ { s/^method=manual$/method=auto/; "
    "s/^method=dhcp$/method=auto/; }' \"$rb_f\"\n"
    "done\n"
    "for rb_f in /etc/sysconfig/network-scripts/ifcfg-*; do\n"
    "    [ -f \"$rb_f\" ] || continue\n"
    "    sed -i -e 's/^IPV6_AUTOCONF=\"\\{0,1\\}no\"\\{0,1\\}$/IPV6_AUTOCONF=yes/' \"$rb_f\"\n"
    "done\n"
    "%end\n";

int render_kickstart(const render_context *ctx, const intent *in, char **ret, size_t *ret_len)
{
    render_host h;
    int r = render_host_resolve(ctx, in, &h);
    if (r < 0) {
        return r;
    }
    _cleanup_free_ char *progress = NULL;
    r = render_progress_url(ctx, in, &progress);
    if (r < 0) {
        return r;
    }
    _cleanup_free_ char *body = NULL;
    size_t body_len = 0;
    r = render_host_expand(ctx, &h, h.profile->kickstart, &body, &body_len);
    if (r < 0) {
        return r;
    }

    rbuf b = { 0 };
    rbuf_add(&b, body, body_len);
    if (body_len > 0 && body[body_len - 1] != '\n') {
        rbuf_putc(&b, '\n');
    }
    rbuf_printf(&b, "\n# Added by rackboot for install %s.\n", in->install_id);
    rbuf_puts(&b, "%pre\n");
    put_post(&b, "installing", progress);
    rbuf_puts(&b, "%end\n");
    if (h.profile->keep_ra) {
        rbuf_puts(&b, keep_ra_pre);
        rbuf_puts(&b, keep_ra_post);
    }
    rbuf_puts(&b, "%post --nochroot\n");
    put_post(&b, "installed", progress);
    rbuf_puts(&b, "%end\n");
    rbuf_puts(&b, "%onerror\n");
    put_post(&b, "failed", progress);
    rbuf_puts(&b, "%end\n");
    return rbuf_finish(&b, ret, ret_len);
}
