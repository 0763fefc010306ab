/* boot: the HTTP routes of the install flow (URL layout in render/context.h):
 *
 *   GET  /boot/<mac>.ipxe          the host's iPXE script          → script_served
 *   GET  /boot/<mac>.efi           the host's Unified Kernel Image    → script_served,
 *                                  for a `uefi_boot = uki` profile     then kernel_fetched
 *                                  (rack-agent/uki/; also over TFTP     and initrd_fetched
 *                                  as boot/<mac>.efi)                   once sent whole
 *   GET  /boot/overlay.img         the route-wait overlay initrd,  → overlay_fetched
 *                                  gzip'ed newc (render/overlay.h)
 *   GET  /ks/<id>?token=T          the rendered kickstart          → kickstart_fetched
 *   POST /progress/<id>?token=T    phase=installing|installed|failed, or the
 *                                  deploy ramdisk's writing|written
 *                                  [&percent=N][&message=TEXT]
 *   POST /phone-home/<id>?token=T  cloud-init's phone_home from the deployed
 *                                  system, or the preseed's hook in a Debian
 *                                  installer's (instance_id=<id>&hostname=...)
 *                                  → first_boot, which ends the install
 *   GET  /seed/<id>/<token>/<mac>/{meta-data,network-config,user-data}
 *                                  an image install's NoCloud seed for the
 *                                  host booted through <mac> (render/nocloud.h;
 *                                  the token in the path, see context.h)
 *   GET  /deploy/{vmlinuz,initrd.img}
 *                                  the deploy ramdisk ([deploy] ramdisk) →
 *                                  kernel_fetched, initrd_fetched for a host
 *                                  deploying an image
 *   GET  /images/<profile>/...     the image cache's files (files.h); for a
 *                                  host installing that profile, the whole
 *                                  vmlinuz → kernel_fetched, initrd.img →
 *                                  initrd_fetched, LiveOS/squashfs.img →
 *                                  stage2_progress at 25/50/75 % (TCP_INFO's
 *                                  bytes acknowledged) and 100 %
 *
 * Only a host with an intent gets a script; a kickstart, a seed or a progress
 * post needs the install's token (403 without it, nothing recorded). Scripts and
 * kickstarts carry the install's token, so only the host itself may fetch
 * them or post progress: its reserved address, or an address whose EUI-64
 * interface identifier is one of its MACs (a SLAAC address, with the A flag
 * in the rack's router advertisements) inside a prefix on the host's link:
 * the reserved address's /64, a global prefix of an interface the agent
 * serves, or fe80::/64 on one. A MAC is no secret (any machine may carry
 * its EUI-64 under a prefix of its own), the link is what the rack vouches
 * for. Others get 403, unless the profile opts out (`source_check = no`:
 * hosts behind a proxy or NAT64). Then the token alone guards the
 * kickstart and progress, and the script that carries it goes to anyone
 * who names the MAC.
 *
 * POST /progress is answered once the event is durable in the journal
 * (progress_post_event(): the loop's next sync), 503 when it is not (a full
 * disk, a failed sync: nothing changed, the installer retries); `installed`
 * (of a kickstart install) and `first_boot` withdraw the intent before the
 * 200 goes out, an image's `written` or a Debian installer's `installed`
 * stops its netboot answers (install/progress.h). The same
 * source rules hold for /phone-home/ and /seed/; a seed is served only for
 * an image profile and one of the intent's MACs (404 otherwise). */
#pragma once

#include "files/files.h"
#include "http/server.h"
#include "install/progress.h"
#include "metrics/metrics.h"
#include "model/intent.h"
#include "render/context.h"
#include "tftp/server.h"

typedef struct boot_routes boot_routes;

/* True when `client`'s address is on a link the agent serves: inside a
 * global prefix of one of its interfaces, or link-local with one as scope. */
typedef bool (*boot_on_link_fn)(void *userdata, const struct sockaddr_in6 *client);

/* `ctx`, `intents`, `prog` and `f` are borrowed and must outlive the
 * routes; `f` NULL: no /images/ route. */
int boot_routes_new(uv_loop_t *loop, http_server *srv, const render_context *ctx,
                    const intents_store *intents, progress *prog, files *f, boot_routes **ret);
/* How the routes tell whether a SLAAC source is on a served link (the
 * daemon: its DHCPv6 interfaces' prefixes). Without it only the reserved
 * address's /64 and fe80::/64 count. */
void boot_routes_on_link(boot_routes *b, boot_on_link_fn fn, void *userdata);
/* Serves the deploy ramdisk's vmlinuz and initrd.img from `ramdisk` (a
 * files.h rooted at [deploy] ramdisk; borrowed, must outlive the routes) at
 * /deploy/. Without it /deploy/ answers 404. */
void boot_routes_serve_ramdisk(boot_routes *b, files *ramdisk);
/* Serves Unified Kernel Images (uki/cache.h: built into `dir` from `stub`,
 * at most max_bytes kept) to hosts of `uefi_boot = uki` profiles, at
 * /boot/<mac>.efi and, when `tftp_files` is given, as the TFTP name
 * boot/<mac>.efi (a files.h source with the prefix "boot": it takes that
 * prefix from the TFTP root). The image holds the host's command line and so
 * its install token: the script's rules decide who gets it (403/TFTP access
 * violation otherwise). */
int boot_routes_serve_uki(boot_routes *b, uv_loop_t *loop, const char *dir, const char *stub,
                          uint64_t max_bytes, files *tftp_files);
/* rackboot_uki_* (uki/cache.h); nothing without boot_routes_serve_uki(). */
int boot_routes_register_metrics(boot_routes *b, metrics *m);
/* The TFTP server's observer (tftp_server_observe(), userdata: the routes):
 * a UKI's first DATA is script_served, its last block acknowledged
 * kernel_fetched and initrd_fetched. */
void boot_routes_tftp_event(void *userdata, tftp_event ev, const struct sockaddr_in6 *client,
                            const char *path);
/* After the HTTP server closed; frees once the loop ran the close. */
void boot_routes_close(boot_routes *b);

/* The install of the host at `client`: the intent whose reserved address it
 * is, or whose MAC its EUI-64 interface identifier names on an allowed
 * prefix (the rule above; `on_link` may be NULL). NULL if none. */
const intent *boot_find_client(const intent_set *set, const struct sockaddr_in6 *client,
                               boot_on_link_fn on_link, void *userdata);
/* True when `client` may act for `in` (the rule above; `on_link` may be
 * NULL). */
bool boot_client_is_host(const intent *in, const struct sockaddr_in6 *client,
                         boot_on_link_fn on_link, void *userdata);
