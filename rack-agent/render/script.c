#include "render/script.h"

#include <errno.h>
#include <stdlib.h>

#include "render/cmdline.h"
#include "render/host-internal.h"
#include "render/overlay.h"
#include "util.h"

int render_script(const render_context *ctx, const intent *in, const uint8_t mac[6], char **ret,
                  size_t *ret_len)
{
    _cleanup_free_ char *cmdline = NULL;
    size_t cmdline_len = 0;
    int r = render_cmdline(ctx, in, mac, &cmdline, &cmdline_len);
    if (r < 0) {
        return r;
    }
    /* render_cmdline() checked the profile and its name. */
    const model_profile *p = in->profile;
    const model_image *kernel = model_profile_image(p, IMAGE_KERNEL);
    const model_image *initrd = model_profile_image(p, IMAGE_INITRD);
    if (!kernel) {
        return -ENOENT;
    }

    /* The initrd is named for the kernel (initrd=NAME) by its kind, not by the
     * name the profile gave it: that name only says where it came from. */
    const char *initrd_name = image_kind_file(IMAGE_INITRD);
    rbuf args = { 0 };
    if (initrd) {
        rbuf_printf(&args, "initrd=%s ", initrd_name);
    }
    if (p->overlay) {
        rbuf_puts(&args, "initrd=" RENDER_OVERLAY_NAME " ");
    }
    rbuf_add(&args, cmdline, cmdline_len);
    if (!args.err && args.len >= RENDER_CMDLINE_MAX) {
        rbuf_fail(&args, -E2BIG);
    }
    _cleanup_free_ char *kargs = NULL;
    size_t kargs_len = 0;
    r = rbuf_finish(&args, &kargs, &kargs_len);
    if (r < 0) {
        return r;
    }

    rbuf b = { 0 };
    rbuf_puts(&b, "#!ipxe\n");
    rbuf_printf(&b, "echo rackboot: install %s, profile %s\n", in->install_id, p->name);
    rbuf_printf(&b, "kernel %s/images/%s/%s ", ctx->base_url, p->name, model_image_path(kernel));
    rbuf_add(&b, kargs, kargs_len);
    rbuf_putc(&b, '\n');
    if (initrd) {
        rbuf_printf(&b, "initrd --name %s %s/images/%s/%s\n", initrd_name, ctx->base_url, p->name,
                    model_image_path(initrd));
    }
    if (p->overlay) {
        rbuf_printf(&b, "initrd --name %s %s%s\n", RENDER_OVERLAY_NAME, ctx->base_url,
                    RENDER_OVERLAY_PATH);
    }
    rbuf_puts(&b, "boot\n");
    return rbuf_finish(&b, ret, ret_len);
}
