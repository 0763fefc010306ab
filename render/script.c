#include "render/script.h"

#include <errno.h>
#include <stdlib.h>

#include "render/cmdline.h"
#include "render/host-internal.h"
#include "render/overlay.h"
#include "util.h"

/* Where a profile's kernel and initrd come from, by profile kind: served
 * at <base><dir><kernel>; initrd NULL when there is none. -ENOENT when the
 * agent cannot boot that kind of profile. */
typedef struct boot_files {
    const char *what; /* for the script's echo line */
    const char *dir;  /* "/images/<profile>/" or "/deploy/", with both '/' */
    const char *kernel;
    const char *initrd;
    bool overlay;
} boot_files;

typedef int (*kind_files_fn)(const render_context *ctx, const model_profile *p, rbuf *dir,
                             boot_files *ret);

static int install_files(const render_context *ctx, const model_profile *p, rbuf *dir,
                         boot_files *ret)
{
    (void)ctx;
    const model_image *kernel = model_profile_image(p, IMAGE_KERNEL);
    const model_image *initrd = model_profile_image(p, IMAGE_INITRD);
    if (!kernel) {
        return -ENOENT;
    }
    rbuf_printf(dir, "/images/%s/", p->name);
    ret->what = p->kind == PROFILE_DEBIAN_INSTALLER ? "debian-installer" : "install";
    ret->kernel = model_image_path(kernel);
    ret->initrd = initrd ? model_image_path(initrd) : NULL;
    ret->overlay = p->overlay;
    return 0;
}

static int image_files(const render_context *ctx, const model_profile *p, rbuf *dir,
                       boot_files *ret)
{
    (void)p;
    if (!ctx->deploy_ramdisk) {
        return -ENOENT;
    }
    rbuf_puts(dir, RENDER_DEPLOY_DIR);
    ret->what = "image deploy";
    ret->kernel = RENDER_DEPLOY_KERNEL_NAME;
    ret->initrd = RENDER_DEPLOY_INITRD_NAME;
    return 0;
}

static const kind_files_fn kind_files[] = {
    [PROFILE_INSTALL] = install_files,
    [PROFILE_IMAGE] = image_files,
    [PROFILE_DEBIAN_INSTALLER] = install_files,
};

int render_script(const render_context *ctx, const intent *in, const uint8_t mac[6], char **ret,
                  size_t *ret_len)
{
    _cleanup_free_ char *cmdline = NULL;
    size_t cmdline_len = 0;
    int r = render_cmdline(ctx, in, mac, &cmdline, &cmdline_len);
    if (r < 0) {
        return r;
    }
    /* render_cmdline() checked the profile, its name and its kind. */
    const model_profile *p = in->profile;
    boot_files f = { 0 };
    rbuf dirbuf = { 0 };
    r = kind_files[p->kind](ctx, p, &dirbuf, &f);
    if (r < 0) {
        rbuf_clear(&dirbuf);
        return r;
    }
    _cleanup_free_ char *dir = NULL;
    r = rbuf_finish(&dirbuf, &dir, NULL);
    if (r < 0) {
        return r;
    }

    /* The initrd is named for the kernel (initrd=NAME) by its kind, not by the
     * name the profile gave it: that name only says where it came from. */
    const char *initrd_name = image_kind_file(IMAGE_INITRD);
    rbuf args = { 0 };
    if (f.initrd) {
        rbuf_printf(&args, "initrd=%s ", initrd_name);
    }
    if (f.overlay) {
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
    rbuf_printf(&b, "echo rackboot: %s %s, profile %s\n", f.what, in->install_id, p->name);
    rbuf_printf(&b, "kernel %s%s%s ", ctx->base_url, dir, f.kernel);
    rbuf_add(&b, kargs, kargs_len);
    rbuf_putc(&b, '\n');
    if (f.initrd) {
        rbuf_printf(&b, "initrd --name %s %s%s%s\n", initrd_name, ctx->base_url, dir, f.initrd);
    }
    if (f.overlay) {
        rbuf_printf(&b, "initrd --name %s %s%s\n", RENDER_OVERLAY_NAME, ctx->base_url,
                    RENDER_OVERLAY_PATH);
    }
    rbuf_puts(&b, "boot\n");
    return rbuf_finish(&b, ret, ret_len);
}
