/* The iPXE script served at /boot/<mac>.ipxe (context.h has the layout):
 *
 *   #!ipxe
 *   echo rackboot: install <install-id>, profile <profile>
 *   kernel <base>/images/<profile>/vmlinuz initrd=initrd.img [initrd=overlay.img] <cmdline>
 *   initrd --name initrd.img <base>/images/<profile>/initrd.img
 *   initrd --name overlay.img <base>/boot/overlay.img        (profile overlay = yes)
 *   boot
 *
 * "#!ipxe" is byte 0 (iPXE's script_probe() accepts nothing before it).
 * Every initrd is named on the kernel line: the EFI stub of older kernels,
 * or under older iPXE, loads only the initrds named by initrd= (NETBOOT-SPECS
 * §4.2). The overlay comes second, so its files override the distro
 * initrd's; it is served as a ready newc cpio and fetched without a path
 * argument, so iPXE adds no cpio header of its own. Lines end in "\n".
 *
 * An image profile boots the agent's deploy ramdisk instead of images of
 * its own (the same for every image profile; cmdline.h has its words):
 *
 *   #!ipxe
 *   echo rackboot: image deploy <install-id>, profile <profile>
 *   kernel <base>/deploy/vmlinuz initrd=initrd.img <cmdline>
 *   initrd --name initrd.img <base>/deploy/initrd.img
 *   boot */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "model/intent.h"
#include "render/context.h"

/* *ret: a new NUL-terminated script (free() it); *ret_len (if not NULL) its
 * length. -ENOENT when the profile has no kernel image, or is an image
 * profile and the agent serves no deploy ramdisk (ctx->deploy_ramdisk);
 * -EINVAL and -E2BIG
 * as render_cmdline() (cmdline.h), the limit applying to the whole kernel
 * argument line, initrd= arguments included. */
int render_script(const render_context *ctx, const intent *in, const uint8_t mac[6], char **ret,
                  size_t *ret_len);
