/* The overlay initrd: a small newc cpio the agent builds itself, appended as
 * a second initrd (script.h) so distro initrds need no rebuilding. The
 * kernel unpacks concatenated archives in order, later entries over earlier
 * ones (NETBOOT-SPECS.md §4.2).
 *
 * It carries one dracut hook, RENDER_OVERLAY_HOOK, that waits (bounded) for
 * an IPv6 default route and for DAD to finish before the kickstart is
 * fetched: initqueue/online hooks run in glob order once an interface is up
 * (nm-run.sh under NetworkManager calls `source_hook initqueue/online
 * $ifname`), and Anaconda fetches the kickstart from 11-fetch-kickstart-net.sh
 * (§5.4), so "05-" runs first. Hooks are *sourced*: the script never calls
 * `exit`, and unsets the variables it sets. It says how long it waited
 * (dracut's `info`: the console and the kernel log); without a route after
 * the wait it warns instead and lets the install go on (the agent may be
 * on-link).
 *
 * Entries, all owned by root, mtime 0, inode numbers 1..n, so the bytes
 * depend only on wait_seconds (golden tests, HTTP caching):
 *
 *   usr/  usr/lib/  usr/lib/dracut/  .../hooks/  .../hooks/initqueue/
 *   .../initqueue/online/            directories, 0755
 *   RENDER_OVERLAY_HOOK               regular file, 0755
 *   TRAILER!!!
 *
 * Names are relative (the kernel unpacks in "/"; GNU cpio -i unpacks where
 * it runs). There is deliberately no entry for "lib": on EL systems /lib is a
 * symlink to usr/lib, and the kernel replaces an entry of another type
 * (clean_path()), so a "lib" directory entry would cut every /lib path of
 * the distro initrd off. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Where the script fetches it (context.h) and the name iPXE gives it. */
#define RENDER_OVERLAY_PATH "/boot/overlay.img"
#define RENDER_OVERLAY_NAME "overlay.img"
#define RENDER_OVERLAY_HOOK "usr/lib/dracut/hooks/initqueue/online/05-rackboot-wait-ipv6.sh"

#define RENDER_OVERLAY_WAIT_DEFAULT 60u
#define RENDER_OVERLAY_WAIT_MAX     3600u

/* The hook's text for a wait of `wait_seconds` (1..RENDER_OVERLAY_WAIT_MAX;
 * it polls every 0.5 s). -EINVAL outside that range. */
int render_overlay_hook(unsigned wait_seconds, char **ret, size_t *ret_len);

/* The whole archive; *ret is new (free() it). -EINVAL as above. */
int render_overlay(unsigned wait_seconds, uint8_t **ret, size_t *ret_len);
