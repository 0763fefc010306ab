/* The preseed served at /ks/<install-id>?token=TOKEN for a kind =
 * debian-installer profile (context.h): what Debian's installer (d-i)
 * reads instead of a kickstart. The kernel command line (cmdline.h) gives
 * d-i `auto=true priority=critical url=<this>` and the netcfg/ answers it
 * needs before it can fetch anything; this file repeats them and answers
 * the rest. Three parts, in this order (for one question the last line
 * wins, so the operator's template overrides rackboot's defaults, and
 * rackboot's commands override the template's):
 *
 *   1. rackboot's defaults
 *      network      netcfg static: the host's reserved address/prefix, the
 *                   gateway (required), the DNS servers, hostname and
 *                   domain (a dotted hostname is split; else the first
 *                   search domain); no autoconfiguration, so no DHCP wait
 *      locale       en_US.UTF-8, keymap us, UTC, no NTP
 *      mirror       http://deb.debian.org/debian (the template sets the
 *                   site's; d-i downloads its own components from it)
 *      partitioning partman-auto regular, recipe atomic, on the profile's
 *                   root_device when it names a /dev/ path (else d-i's
 *                   choice), every confirmation answered
 *      accounts     root login disabled; user `debian`, password locked,
 *                   the profile's SSH keys, sudo without a password
 *      packages     standard + ssh-server, openssh-server, no upgrade
 *      boot loader  GRUB on root_device, or d-i's default
 *   2. the profile's template, {{name}} placeholders filled (template.h)
 *   3. rackboot's commands
 *      preseed/early_command  writes /tmp/rackboot-progress (shown in the
 *                   preseed as a comment, carried in base64 so no quote or
 *                   backslash of it meets d-i's preseed parser or debconf),
 *                   posts `installing` and starts the step watcher: each
 *                   installer step main-menu starts is posted as
 *                   `installing` with the step's name, a step that fails
 *                   as `failed`
 *      preseed/late_command   posts `installing late_command`, installs the
 *                   SSH keys, the sudoers line and the phone-home (a bash
 *                   script and a systemd unit, enabled) into /target, then
 *                   posts `installed`: the system is on its disk. The
 *                   installed system's first boot posts `first_boot` to
 *                   /phone-home/<id>?token=, which ends the install
 *                   (model/profile.h profile_kind_ends_on_first_boot()),
 *                   then disables the unit and deletes the script
 *      finish-install/reboot_in_progress  no "installation complete" stop
 *
 * Progress goes to /progress/<id>?token= as kickstarts' does, through
 * busybox `nc` (d-i's wget cannot POST), six tries, never failing the
 * install. */
#pragma once

#include <stddef.h>

#include "model/intent.h"
#include "render/context.h"

/* The installed system's user (also cloud-init's default on Debian images). */
#define RENDER_PRESEED_USER "debian"

/* *ret: a new NUL-terminated preseed (free() it), *ret_len (if not NULL) its
 * length. -EINVAL for values that fail validation (render_host_resolve), a
 * profile that is not kind = debian-installer or an intent without a
 * gateway; -EBADMSG for a malformed template; -E2BIG over RBUF_MAX. */
int render_preseed(const render_context *ctx, const intent *in, char **ret, size_t *ret_len);
