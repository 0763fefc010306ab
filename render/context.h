/* What every rendered boot file needs besides the intent: where the agent
 * is, and the rack's defaults. Also the one place that fixes the agent's URL
 * layout, which the renderers write and the HTTP server must answer:
 *
 *   /boot/<mac>.ipxe                  the iPXE script (script.h). <mac> in any
 *                                     form render_boot_path_parse() accepts;
 *                                     the DHCPv6 bootfile-url uses colons.
 *   /boot/<mac>.efi                   the host's Unified Kernel Image (uefi_boot =
 *                                     uki profiles; rack-agent/uki/), also over
 *                                     TFTP as boot/<mac>.efi; the DHCPv6
 *                                     bootfile-url writes the MAC with '-'
 *   /boot/overlay.img                 the overlay initrd (overlay.h): one
 *                                     archive for every profile with
 *                                     `overlay = yes`; it holds nothing
 *                                     host- or profile-specific.
 *   /images/<profile>/vmlinuz         the kernel  } served by the image cache
 *   /images/<profile>/initrd.img      the initrd  } (cache/images.h)
 *   /images/<profile>/                inst.stage2= (Anaconda then fetches
 *                                     LiveOS/squashfs.img below it, after a
 *                                     .treeinfo that may 404)
 *   /ks/<install-id>?token=TOKEN      the rendered kickstart (kickstart.h), or
 *                                     the preseed of a debian-installer
 *                                     profile (preseed.h)
 *   /progress/<install-id>?token=TOKEN
 *                                     POST target of the installer's phases
 *                                     (form body phase=NAME)
 *   /phone-home/<install-id>?token=TOKEN
 *                                     POST target of cloud-init's phone_home
 *                                     on an image host's first boot from
 *                                     disk (nocloud.h; form body
 *                                     instance_id=...&hostname=...)
 *   /deploy/vmlinuz                   the deploy ramdisk's kernel } an image
 *   /deploy/initrd.img                its initrd                  } profile's
 *                                     netboot: the agent's own files
 *                                     ([deploy] ramdisk), one pair for every
 *                                     image profile
 *   /images/<profile>/disk.img        an image profile's disk image (the image
 *                                     cache), rackboot.image= of the ramdisk
 *   /seed/<install-id>/<token>/<mac>/{meta-data,network-config,user-data}
 *                                     the NoCloud seed of an image install
 *                                     (nocloud.h) for the host booted through
 *                                     <mac> ('-' separated). The token is a
 *                                     path segment, not a query: the ramdisk
 *                                     appends "/meta-data" etc. to the base
 *                                     URL it is given (rackboot.seed=). The
 *                                     HTTP access log blanks that segment.
 *
 * Install ids, tokens and profile names are restricted to RFC 3986
 * unreserved characters (render_id_valid), so none of these URLs needs
 * percent-encoding and all of them are safe on a kernel command line. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/intent.h"

/* "http://[" + 45 + "]:" + 5 + NUL, rounded up. */
#define RENDER_BASE_URL_MAX 64

/* The deploy ramdisk's files, as served and as named for the kernel. */
#define RENDER_DEPLOY_DIR         "/deploy/"
#define RENDER_DEPLOY_KERNEL_NAME "vmlinuz"
#define RENDER_DEPLOY_INITRD_NAME "initrd.img"

/* The seed route's prefix, and which document a request names. */
#define RENDER_SEED_DIR "/seed/"
typedef enum render_seed_doc {
    RENDER_SEED_META_DATA = 0,
    RENDER_SEED_NETWORK_CONFIG,
    RENDER_SEED_USER_DATA,
} render_seed_doc;

/* A parsed seed request path; id and token point into the path. */
typedef struct render_seed_path {
    const char *id;
    size_t id_len;
    const char *token;
    size_t token_len;
    uint8_t mac[6];
    render_seed_doc doc;
} render_seed_path;

typedef struct render_context {
    /* "http://[2001:db8::2]" (port 80) or "http://[2001:db8::2]:8080", no
     * trailing '/'. Every URL rendered starts with it, the progress URL too. */
    char base_url[RENDER_BASE_URL_MAX];
    /* The rack's defaults for intents that carry none. */
    struct in6_addr dns[INTENT_MAX_DNS];
    size_t n_dns;
    const char *search[INTENT_MAX_SEARCH]; /* borrowed; must outlive the context */
    size_t n_search;
    bool has_gateway;
    struct in6_addr gateway;
    /* The agent serves the deploy ramdisk at RENDER_DEPLOY_DIR ([deploy]
     * ramdisk): without it an image profile has no script (render_script
     * answers -ENOENT). */
    bool deploy_ramdisk;
} render_context;

/* Sets base_url from the agent's advertised address and HTTP port (0 or 80:
 * no port in the URL) and clears the defaults. -EINVAL for an IPv4-mapped or
 * unspecified address, which no IPv6-only host can reach. */
int render_context_init(render_context *ctx, const struct in6_addr *advertise, uint16_t http_port);

/* Parses the path of an iPXE script request, as the HTTP server has it
 * (leading '/' optional, percent-decoded or not): "/boot/<mac>.ipxe" with
 * the MAC's octets separated by ':', '-' or "%3A" (either case), hex digits
 * in either case — older iPXE percent-encodes ':' in paths, newer sends it
 * verbatim (NETBOOT-SPECS.md §4.3). -EINVAL for anything else. */
int render_boot_path_parse(const char *path, uint8_t ret_mac[6]);
/* The same for a UKI request, "/boot/<mac>.efi" (leading '/' optional: TFTP
 * names come without it). */
#define RENDER_UKI_SUFFIX ".efi"
int render_uki_path_parse(const char *path, uint8_t ret_mac[6]);

/* Parses "/ks/<install-id>", "/progress/<install-id>" or
 * "/phone-home/<install-id>" (leading '/'
 * optional; no query: the server hands the query separately). The id must
 * pass render_id_valid(). *ret_id points into `path` and *ret_len is its
 * length. -EINVAL for anything else. */
int render_ks_path_parse(const char *path, const char **ret_id, size_t *ret_len);
int render_progress_path_parse(const char *path, const char **ret_id, size_t *ret_len);
int render_phone_home_path_parse(const char *path, const char **ret_id, size_t *ret_len);

/* Parses "/seed/<install-id>/<token>/<mac>/<doc>" (leading '/' optional):
 * id and token pass render_id_valid(), the MAC parse_mac() with any of its
 * separators, doc one of "meta-data", "network-config", "user-data". Fills
 * *ret on success; -EINVAL for anything else (nothing written). */
int render_seed_path_parse(const char *path, render_seed_path *ret);

/* The URLs above for an intent, as new strings (free() them). -EINVAL if the
 * intent's install id or token fails render_id_valid(). */
int render_kickstart_url(const render_context *ctx, const intent *in, char **ret);
int render_progress_url(const render_context *ctx, const intent *in, char **ret);
int render_phone_home_url(const render_context *ctx, const intent *in, char **ret);
/* The seed's base URL for the host booted through `mac`, without a trailing
 * '/': "<base>/seed/<install-id>/<token>/<mac with '-'>". The deploy ramdisk
 * appends "/meta-data" and the others. -EINVAL as above. */
int render_seed_url(const render_context *ctx, const intent *in, const uint8_t mac[6], char **ret);
/* The name of a seed document ("meta-data", ...). */
const char *render_seed_doc_name(render_seed_doc doc);
