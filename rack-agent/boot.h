/* boot: the HTTP routes of the install flow (URL layout in render/context.h):
 *
 *   GET  /boot/<mac>.ipxe          the host's iPXE script          → script_served
 *   GET  /boot/overlay.img         the route-wait overlay initrd,  → overlay_fetched
 *                                  gzip'ed newc (render/overlay.h)
 *   GET  /ks/<id>?token=T          the rendered kickstart          → kickstart_fetched
 *   POST /progress/<id>?token=T    phase=installing|installed|failed
 *                                  [&percent=N][&message=TEXT]
 *   GET  /images/<profile>/...     the image cache's files (files.h); for a
 *                                  host installing that profile, the whole
 *                                  vmlinuz → kernel_fetched, initrd.img →
 *                                  initrd_fetched, LiveOS/squashfs.img →
 *                                  stage2_progress at 25/50/75 % (TCP_INFO's
 *                                  bytes acknowledged) and 100 %
 *
 * Only a host with an intent gets a script; a kickstart or a progress post
 * needs the install's token (403 without it, nothing recorded). Scripts and
 * kickstarts carry the install's token, so only the host itself may fetch
 * them: its reserved address, or an address whose EUI-64 interface
 * identifier is one of its MACs (a SLAAC address, with the A flag in the
 * rack's router advertisements); others get 403, unless the profile opts
 * out (`source_check = no`: hosts behind a proxy or NAT64). */
#pragma once

#include "files.h"
#include "http/server.h"
#include "intents.h"
#include "progress.h"
#include "render/context.h"

typedef struct boot_routes boot_routes;

/* `ctx`, `intents`, `prog` and `f` are borrowed and must outlive the
 * routes; `f` NULL: no /images/ route. */
int boot_routes_new(uv_loop_t *loop, http_server *srv, const render_context *ctx,
                    const intents_store *intents, progress *prog, files *f, boot_routes **ret);
/* After the HTTP server closed; frees once the loop ran the close. */
void boot_routes_close(boot_routes *b);

/* The install of the host at `client`: the intent whose reserved address it
 * is, or whose MAC its EUI-64 interface identifier names. NULL if none. */
const intent *boot_find_client(const intent_set *set, const struct sockaddr_in6 *client);
/* True when `client` may act for `in` (the rule above). */
bool boot_client_is_host(const intent *in, const struct sockaddr_in6 *client);
