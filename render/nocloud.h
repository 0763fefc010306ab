/* The cloud-init NoCloud seed of an image install: the three files the
 * deploy ramdisk writes to a small file system labelled CIDATA beside the
 * image, which cloud-init in the installed system reads on its first boot
 * (cloud-init docs, "NoCloud"; checked against Debian 12's 22.4.2).
 *
 *   meta-data       instance-id = the install id (a new install is a new
 *                   instance, so cloud-init runs its per-instance modules
 *                   again on a re-deploy) and local-hostname.
 *   network-config  version 2, one ethernet matched by the MAC the host
 *                   booted from and renamed RENDER_NOCLOUD_IFNAME (set-name:
 *                   cloud-init 22.4's networkd renderer matches Name= and
 *                   MACAddress= both, and rackboot cannot know the kernel's
 *                   name for a MAC); dhcp4 and dhcp6 off, the static
 *                   address/prefix, the default route via the gateway written
 *                   out as gateway6 (never left to router advertisements;
 *                   22.4 renders `routes: [{to: ::/0}]` as ::/64), DNS servers
 *                   and search domains. accept-ra false when there is a
 *                   gateway (without one, RAs are the only default route).
 *                   A profile with `ip = dhcp6` gets dhcp6 and RAs instead.
 *   user-data       #cloud-config: hostname (and fqdn: the hostname if it
 *                   has a dot, else hostname.<first search domain>), the
 *                   profile's SSH keys, phone_home (POST instance_id and
 *                   hostname to /phone-home/<install-id>?token=..., the
 *                   install's first_boot), and, with a gateway, a
 *                   systemd-networkd drop-in IPv6AcceptRA=no for the file
 *                   cloud-init writes (10-cloud-init-IFNAME.network: 22.4
 *                   writes IPv6AcceptRA only with DHCPv6, so `accept-ra:
 *                   false` alone is dropped and networkd's default takes
 *                   RAs, SLAAC and DHCPv6 beside the static address) and a
 *                   runcmd that reloads networkd so it applies on the first
 *                   boot, before phone_home (final stage, after runcmd).
 *
 * YAML: every document is written as JSON (jansson, indented, UTF-8, keys
 * in a fixed order), which is YAML 1.2 flow style and which PyYAML, the
 * loader cloud-init uses, reads too. Every value is a JSON string, so no
 * operator-provided text (an SSH key's comment, a hostname) can end a
 * scalar or add a key, whatever quotes, colons, '#' or newlines it holds;
 * values are checked anyway (model_ssh_key_valid: printable ASCII, so no
 * byte that PyYAML's reader refuses, such as DEL or C1 controls, is ever
 * written raw). A hand-written YAML quoter would be a second escaping
 * scheme to get right; JSON strings are one, and jansson's.
 *
 * The operator's user_data template: rendered with the kickstart's
 * placeholders (model/template.h), it becomes the second part of a MIME
 * multipart/mixed user-data (cloud-init's user_data.py sees
 * "MIME-Version:" in the first 4 KiB), after rackboot's text/cloud-config
 * part. It goes as text/plain, so cloud-init picks its handler from its
 * first line (#cloud-config, #!, #cloud-boothook, #include,
 * "## template: jinja", ...), and with the header
 *   Merge-Type: dict(no_replace,recurse_list)+list(append)+str()
 * which cloud-init's cloud-config handler applies when it merges that part
 * into the parts before it: keys rackboot set (hostname, fqdn, phone_home)
 * stay rackboot's, lists (runcmd, write_files, ssh_authorized_keys,
 * packages, ...) are appended to, keys rackboot did not set are the
 * operator's. (Without the header the default is dict(replace)+list():
 * an operator's write_files or runcmd would replace rackboot's.) A
 * `merge_how` key in the operator's own document takes precedence: then
 * the operator decides. Merging two YAML documents here would need a YAML
 * parser in the agent; cloud-init has one. The part is sent as-is when it
 * is 7-bit, base64 otherwise (Python's email module, which cloud-init
 * parses with, mangles 8-bit text in a part without a transfer encoding).
 * The boundary is derived from the parts' sha256, so it cannot occur in
 * them and the output is reproducible. Without a template, user-data is
 * the #cloud-config document alone.
 *
 * Pure: no I/O. The deploy ramdisk and the agent wire it in. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "model/intent.h"
#include "render/context.h"

/* The name the seed gives the install interface (set-name). Not a kernel
 * name (eth0 is one, and renaming into the kernel's ethN space races with
 * its own naming of another NIC). */
#define RENDER_NOCLOUD_IFNAME "boot0"

typedef struct render_nocloud_seed {
    char *meta_data;
    size_t meta_data_len;
    char *network_config;
    size_t network_config_len;
    char *user_data;
    size_t user_data_len;
} render_nocloud_seed;

/* The seed for intent `in` (its profile should be an image profile: the
 * kind is not checked here) booted through `mac`. On success *ret holds
 * three new NUL-terminated documents (render_nocloud_clear() frees them).
 * -EINVAL when a value fails validation (see render_host_resolve(); an SSH
 * key failing model_ssh_key_valid(); a user_data template that is MIME
 * itself); -EBADMSG or -ENOENT for a malformed template or an unknown
 * placeholder (profile load refuses those first); -ENOMEM; -E2BIG over
 * RBUF_MAX. Nothing is allocated on failure. */
int render_nocloud(const render_context *ctx, const intent *in, const uint8_t mac[6],
                   render_nocloud_seed *ret);

/* Frees the documents and zeroes *s. */
void render_nocloud_clear(render_nocloud_seed *s);
