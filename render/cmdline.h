/* The kernel command line for an install (dracut and Anaconda read it;
 * Debian's installer reads other words, below):
 *
 *   ifname=bootnet:<mac>
 *   ip=[<address>]::[<gateway>]:<prefix>:<hostname>:bootnet:none
 *      (static, the default; "::" with an empty gateway field when neither
 *      the intent nor the rack has one) or ip=bootnet:dhcp6 (profile
 *      `ip = dhcp6`). Without an IPv6 ip= Anaconda falls back to IPv4 DHCP
 *      (NETBOOT-SPECS.md §5.2).
 *   nameserver=<address>   once per DNS server, unbracketed: dracut's
 *      network-legacy writes the value verbatim into resolv.conf (ifup.sh),
 *      where "[...]" is invalid; NetworkManager's initrd generator accepts
 *      both forms (nmi-cmdline-reader.c get_word() strips brackets).
 *   BOOTIF=01-<mac with '-'>   (pxelinux form; dracut and NM strip "01-")
 * then, for an install profile (kind = install):
 *   inst.ks=<base>/ks/<install-id>?token=<token>
 *   inst.stage2=<base>/images/<profile>/   only when the profile has a
 *      stage2 image
 *   rackboot.root_device=<root_device>     when the profile sets one
 * or, for an image profile (kind = image; the deploy ramdisk's contract,
 * deploy-ramdisk/ramdisk-init.sh):
 *   rackboot.image=<base>/images/<profile>/disk.img
 *   rackboot.image_sha256=<the disk image's sha256>
 *   rackboot.root_device=<root_device, or auto>
 *   rackboot.progress=<base>/progress/<install-id>?token=<token>
 *   rackboot.seed=<base>/seed/<install-id>/<token>/<mac with '-'>
 *   (no rackboot.image_size: the profile knows the size as served, not the
 *   uncompressed size the ramdisk checks; no inst.* words)
 * or, for a Debian installer profile (kind = debian-installer; preseed.h),
 * without the dracut words ifname=, ip= and nameserver=:
 *   BOOTIF=01-<mac with '-'>   (netcfg picks the interface of that MAC)
 *   auto=true priority=critical url=<base>/ks/<install-id>?token=<token>
 *   interface=auto netcfg/disable_autoconfig=true
 *   netcfg/get_ipaddress=<address>/<prefix> netcfg/get_gateway=<gateway>
 *   netcfg/get_nameservers=<dns>   ("netcfg/get_nameservers=<a> <b>", quoted
 *      whole, for several: the kernel hands it to init's environment as one
 *      value, d-i's env2debconf preseeds it)
 *   netcfg/confirm_static=true hostname=<host> [domain=<domain>]
 *      (render_host_di_names: a dotted hostname is split)
 * then the profile's own `cmdline`, verbatim.
 *
 * `mac` is the MAC the host booted with (from the script's URL); it must be
 * one of the intent's. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "model/intent.h"
#include "render/context.h"

/* The kernel's COMMAND_LINE_SIZE on x86 and arm64, NUL included: a longer
 * line is cut silently by the kernel, so we refuse to render one. */
#define RENDER_CMDLINE_MAX 2048

/* *ret: a new NUL-terminated string, no trailing newline (free() it);
 * *ret_len (if not NULL) its length. -EINVAL for an intent whose values fail
 * validation (host-internal.h, render_host_resolve), a `mac` that is not
 * the intent's, an image profile without a disk image, with `ip =
 * dhcp6` or without a gateway (the ramdisk configures the static address
 * and a default route only), or a debian-installer profile without a
 * gateway (netcfg would stop to ask); -E2BIG when the line would not fit
 * RENDER_CMDLINE_MAX. */
int render_cmdline(const render_context *ctx, const intent *in, const uint8_t mac[6], char **ret,
                   size_t *ret_len);
